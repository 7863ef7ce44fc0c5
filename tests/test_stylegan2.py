"""The generator reproduces the rosinality StyleGAN2 port: the parity fixture in tests/fixtures, exactly."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from editgan.networks.stylegan2 import Generator, upfirdn2d


def build_fixture_generator(fixture: Path) -> tuple[Generator, dict, dict]:
    spec = json.loads((fixture / "spec.json").read_text())
    io = dict(np.load(fixture / "io.npz"))
    cfg = spec["config"]
    g = Generator(cfg["size"], cfg["style_dim"], cfg["n_mlp"], channel_multiplier=cfg["channel_multiplier"],
                  blur_kernel=cfg["blur_kernel"], lr_mlp=cfg["lr_mlp"])
    defaults = g.state_dict()
    rng = np.random.default_rng(spec["seed"])
    state = {}
    for key, shape in spec["state_dict"]:
        if key.endswith("kernel"):
            state[key] = defaults[key]
            continue
        scale = 0.1 if key.endswith("bias") or key.endswith("noise.weight") else 1.0
        state[key] = torch.from_numpy((rng.standard_normal(shape) * scale).astype(np.float32))
    g.load_state_dict(state, strict=True)
    return g.eval(), spec, io


def test_state_dict_layout_matches_rosinality(parity_fixture):
    g, spec, _ = build_fixture_generator(parity_fixture)
    ours = {k: tuple(v.shape) for k, v in g.state_dict().items()}
    theirs = {k: tuple(shape) for k, shape in spec["state_dict"]}
    assert ours == theirs
    assert g.n_latent == spec["n_latent"]


@torch.no_grad()
def test_parity_with_fixture_images(parity_fixture):
    g, _, io = build_fixture_generator(parity_fixture)
    z = torch.from_numpy(io["z"])
    w = g.mapping(z)
    np.testing.assert_allclose(w.numpy(), io["w"], atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(g(z).numpy(), io["rgb_from_z"], atol=1e-4)
    mean_w = torch.from_numpy(io["mean_w"])
    np.testing.assert_allclose(g(z, truncation=0.7, truncation_latent=mean_w).numpy(), io["rgb_truncated"],
                               atol=1e-4)
    np.testing.assert_allclose(g.synthesis(torch.from_numpy(io["wplus"])).numpy(), io["rgb_from_wplus"], atol=1e-4)


@torch.no_grad()
def test_features_follow_editgan_order(parity_fixture):
    g, _, io = build_fixture_generator(parity_fixture)
    image, feats = g.synthesis(torch.from_numpy(io["wplus"]), return_features=True)
    assert [f.shape[1] for f in feats] == g.feature_channels()
    assert [f.shape[-1] for f in feats] == g.feature_resolutions() == [4, 4, 8, 8, 16, 16, 32, 32]
    assert torch.equal(feats[0][0], g.input.input[0])  # the constant input comes first, untouched
    assert (feats[1] >= -0.2 * 2 ** 0.5 * feats[1].abs().max()).all()  # post-activation (leaky ReLU applied)
    np.testing.assert_allclose(image.numpy(), io["rgb_from_wplus"], atol=1e-4)


def test_small_generator_with_explicit_widths_trains_end_to_end():
    g = Generator(16, style_dim=32, n_mlp=2, channels={4: 16, 8: 8, 16: 8})
    wplus = g.to_wplus(g.mapping(torch.randn(2, 32))).detach().requires_grad_(True)
    image, feats = g.synthesis(wplus, return_features=True)
    assert image.shape == (2, 3, 16, 16) and [f.shape[1] for f in feats] == [16, 16, 8, 8, 8, 8]
    image.square().mean().backward()
    assert wplus.grad is not None and wplus.grad.abs().sum() > 0


def test_bad_size_and_bad_latent_shape_give_clear_errors():
    with pytest.raises(ValueError, match="power of two"):
        Generator(48, style_dim=8, n_mlp=1, channels={4: 4, 8: 4, 16: 4, 32: 4})
    g = Generator(8, style_dim=8, n_mlp=1, channels={4: 4, 8: 4})
    with pytest.raises(ValueError, match="w\\+ of shape"):
        g.synthesis(torch.zeros(1, 3, 8))


def test_upfirdn2d_upsampling_preserves_a_constant_image():
    kernel = torch.tensor([[1.0, 3, 3, 1]]).T @ torch.tensor([[1.0, 3, 3, 1]])
    kernel = kernel / kernel.sum() * 4
    out = upfirdn2d(torch.ones(1, 2, 6, 6), kernel, up=2, pad=(2, 1))
    assert out.shape == (1, 2, 12, 12)
    torch.testing.assert_close(out[:, :, 2:-2, 2:-2], torch.ones(1, 2, 8, 8))


@torch.no_grad()
def test_conv_clamp_bounds_every_layer_and_rgb_output_and_keeps_the_key_layout():
    torch.manual_seed(0)
    plain = Generator(16, style_dim=8, n_mlp=1, channels={4: 8, 8: 8, 16: 4})
    clamped = Generator(16, style_dim=8, n_mlp=1, channels={4: 8, 8: 8, 16: 4}, conv_clamp=0.3)
    assert clamped.state_dict().keys() == plain.state_dict().keys()
    clamped.load_state_dict(plain.state_dict(), strict=True)
    wplus = plain.to_wplus(plain.mapping(torch.randn(2, 8)))
    image, feats = clamped.synthesis(wplus, return_features=True)
    assert all(f.abs().max() <= 0.3 + 1e-6 for f in feats[1:])  # the constant input is not a layer output
    # three RGB outputs, each clamped, summed with upsampling: the picture is bounded by their sum, not by 0.3
    assert image.abs().max() <= 3 * 0.3 + 1e-5 and image.abs().max() > 0.3
    assert not torch.allclose(image, plain.synthesis(wplus))
    with pytest.raises(ValueError, match="conv_clamp"):
        Generator(8, style_dim=8, n_mlp=1, channels={4: 4, 8: 4}, conv_clamp=0)


def test_stored_mean_latent_is_an_optional_buffer_used_as_truncation_centre():
    g = Generator(8, style_dim=8, n_mlp=1, channels={4: 4, 8: 4})
    assert "latent_avg" not in g.state_dict()
    stored = Generator(8, style_dim=8, n_mlp=1, channels={4: 4, 8: 4}, stored_mean_latent=True)
    assert set(stored.state_dict()) == set(g.state_dict()) | {"latent_avg"}
    stored.latent_avg.copy_(torch.arange(8.0))
    torch.testing.assert_close(stored.mean_latent(), torch.arange(8.0)[None])
