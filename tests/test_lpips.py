"""LPIPS-VGG16 perceptual loss: key layouts, the distance's math, Hub loading from an offline cache, the fallback.

No network: every test runs with HF_HUB_OFFLINE=1 against a Hugging Face cache the tests fill themselves, in the
hub's on-disk layout (models--org--name/{blobs/<sha256>, snapshots/<commit>/<file> -> blob, refs/main}), with
random weights under the real key names and shapes.
"""
from __future__ import annotations

import hashlib
import io
import logging
import os
from pathlib import Path

import huggingface_hub.constants
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save as safetensors_bytes

from editgan.networks import lpips as L

CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
CONV_WIDTHS = (64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512)
WRONG_KEYS_REPO = "test/lpips-heads-wrong-keys"
CORRUPT_BACKBONE_REPO = "test/vgg16-corrupt"


# --- Building weights and a Hub cache --------------------------------------------------------------------------
def timm_vgg16_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """timm `vgg16` keys: real `features.*` shapes (He init, so activations stay O(1)), plus stand-ins for the
    `pre_logits`/`head` keys the loader must ignore (tiny shapes: the real fc1 alone is 400 MB)."""
    g = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    c_in = 3
    for index, c_out in zip(CONV_INDICES, CONV_WIDTHS):
        fan_in = c_in * 9
        state[f"features.{index}.weight"] = torch.randn(c_out, c_in, 3, 3, generator=g) * (2.0 / fan_in) ** 0.5
        state[f"features.{index}.bias"] = torch.randn(c_out, generator=g) * 0.01
        c_in = c_out
    state["pre_logits.fc1.weight"] = torch.randn(8, 512, 1, 1, generator=g)
    state["pre_logits.fc1.bias"] = torch.zeros(8)
    state["pre_logits.fc2.weight"] = torch.randn(8, 8, 1, 1, generator=g)
    state["pre_logits.fc2.bias"] = torch.zeros(8)
    state["head.fc.weight"] = torch.randn(10, 8, generator=g)
    state["head.fc.bias"] = torch.zeros(10)
    return state


def head_weights(seed: int = 1) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(1, c, 1, 1, generator=g) for c in (64, 128, 256, 512, 512)]


def put_in_hf_cache(cache: Path, repo_id: str, filename: str, data: bytes) -> Path:
    """Store a file the way hf_hub_download does: content-addressed blob, snapshot symlink, refs/main."""
    repo_dir = cache / ("models--" + repo_id.replace("/", "--"))
    commit = hashlib.sha1(repo_id.encode()).hexdigest()
    blob = repo_dir / "blobs" / hashlib.sha256(data).hexdigest()
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(data)
    pointer = repo_dir / "snapshots" / commit / filename
    pointer.parent.mkdir(parents=True, exist_ok=True)
    if pointer.is_symlink() or pointer.exists():
        pointer.unlink()
    pointer.symlink_to(os.path.relpath(blob, pointer.parent))
    (repo_dir / "refs").mkdir(exist_ok=True)
    (repo_dir / "refs" / "main").write_text(commit)
    return pointer


def torch_bytes(obj: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def backbone_state() -> dict[str, torch.Tensor]:
    return timm_vgg16_state()


@pytest.fixture(scope="session")
def filled_cache(tmp_path_factory, backbone_state) -> Path:
    """One HF cache for the session: good backbone and heads (both layouts), plus broken variants."""
    cache = tmp_path_factory.mktemp("hf_home") / "hub"
    heads = head_weights()
    put_in_hf_cache(cache, L.BACKBONE_REPO, L.BACKBONE_FILENAME, safetensors_bytes(backbone_state))
    put_in_hf_cache(cache, L.HEADS_REPO, L.HEADS_FILENAME,
                    safetensors_bytes({f"{i}.weight": w for i, w in enumerate(heads)}))
    put_in_hf_cache(cache, L.ALT_HEADS_REPO, L.ALT_HEADS_FILENAME,
                    torch_bytes({f"lin{i}.model.1.weight": w for i, w in enumerate(heads)}))
    wrong = {f"{i}.weight": w for i, w in enumerate(heads[:4])} | {"5.weight": heads[4]}
    put_in_hf_cache(cache, WRONG_KEYS_REPO, L.HEADS_FILENAME, safetensors_bytes(wrong))
    put_in_hf_cache(cache, CORRUPT_BACKBONE_REPO, L.BACKBONE_FILENAME, b"\x00\x01 this is not safetensors" * 4)
    return cache


def go_offline(monkeypatch: pytest.MonkeyPatch, cache: Path) -> None:
    # huggingface_hub reads these variables once, at import; set the env for anything started later and patch the
    # module constants it actually consults.
    monkeypatch.setenv("HF_HOME", str(cache.parent))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


@pytest.fixture(autouse=True)
def fresh_loss_cache():
    L.clear_perceptual_loss_cache()
    yield
    L.clear_perceptual_loss_cache()


@pytest.fixture
def offline_cache(monkeypatch, filled_cache) -> Path:
    go_offline(monkeypatch, filled_cache)
    return filled_cache


@pytest.fixture
def empty_offline_cache(monkeypatch, tmp_path) -> Path:
    cache = tmp_path / "hf_home" / "hub"
    cache.mkdir(parents=True)
    go_offline(monkeypatch, cache)
    return cache


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> L.LPIPS:
    """A loaded LPIPS for the math tests (loaded from the files directly; Hub loading has its own tests)."""
    folder = tmp_path_factory.mktemp("lpips_files")
    (folder / "backbone.safetensors").write_bytes(safetensors_bytes(timm_vgg16_state()))
    (folder / "heads.safetensors").write_bytes(
        safetensors_bytes({f"{i}.weight": w for i, w in enumerate(head_weights())}))
    return L.lpips_from_files(folder / "backbone.safetensors", folder / "heads.safetensors")


def smooth_images(n: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Images in [-1, 1] with structure at several scales, so every tap sees something."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 4, 4, generator=g) * 2 - 1
    fine = torch.rand(n, 3, size, size, generator=g) * 2 - 1
    blurred = F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    return (0.8 * blurred + 0.2 * fine).clamp(-1, 1)


# --- Architecture and key layout ---------------------------------------------------------------------------------
def test_vgg_keys_and_taps_follow_timm_layout():
    net = L.VGG16Features()
    state = net.state_dict()
    expected = [f"features.{i}.{p}" for i in CONV_INDICES for p in ("weight", "bias")]
    assert list(state) == expected
    for i, width in zip(CONV_INDICES, CONV_WIDTHS):
        assert state[f"features.{i}.weight"].shape[0] == width
    assert all(isinstance(net.features[i], torch.nn.ReLU) for i in L.TAP_LAYERS)
    with torch.no_grad():
        taps = net(torch.zeros(1, 3, 32, 32))
    assert [tuple(t.shape[1:]) for t in taps] == [(64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4), (512, 2, 2)]
    heads = L.LPIPS().heads
    assert [tuple(h.weight.shape) for h in heads] == [(1, c, 1, 1) for c in (64, 128, 256, 512, 512)]
    assert all(h.bias is None for h in heads)


# --- The math ----------------------------------------------------------------------------------------------------
def test_single_tap_math_by_hand():
    # Tap A, 2 channels, 2 pixels: pixel 0 is (3,4) vs (0,2) -> unit (.6,.8) vs (0,1) -> squared diff (.36,.04);
    # heads (1,2) -> .44. Pixel 1 is equal in both -> 0. Spatial mean -> .22.
    fx_a = torch.tensor([[3.0, 1.0], [4.0, 0.0]]).view(1, 2, 1, 2)
    fy_a = torch.tensor([[0.0, 1.0], [2.0, 0.0]]).view(1, 2, 1, 2)
    w_a = torch.tensor([1.0, 2.0]).view(1, 2, 1, 1)
    # Tap B, 1 channel, 1 pixel: 5 vs -2 -> unit 1 vs -1 -> 4; head .5 -> 2. Taps add: 2.22.
    fx_b, fy_b = torch.tensor(5.0).view(1, 1, 1, 1), torch.tensor(-2.0).view(1, 1, 1, 1)
    w_b = torch.full((1, 1, 1, 1), 0.5)
    nx = [L.normalize_channels(fx_a), L.normalize_channels(fx_b)]
    ny = [L.normalize_channels(fy_a), L.normalize_channels(fy_b)]
    d = L.lpips_from_normalized(nx, ny, [w_a, w_b])
    assert d.shape == (1,)
    torch.testing.assert_close(d, torch.tensor([2.22]))
    assert torch.equal(L.normalize_channels(torch.zeros(1, 4, 2, 2)), torch.zeros(1, 4, 2, 2))  # eps: no NaN
    # eps is added to the norm, not under the square root: a tiny vector still comes out (nearly) unit length.
    tiny = torch.tensor([3e-6, 4e-6]).view(1, 2, 1, 1)
    torch.testing.assert_close(L.normalize_channels(tiny).flatten(), torch.tensor([0.6, 0.8]), rtol=1e-3, atol=0)


def manual_lpips(state: dict[str, torch.Tensor], heads: list[torch.Tensor], x: torch.Tensor, y: torch.Tensor):
    """LPIPS v0.1 recomputed from scratch with functional ops and the reference constants typed in again."""
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
    tap_after = {2, 7, 14, 21, 28}  # relu1_2 ... relu5_3 follow these convs
    pool_after = {2, 7, 14, 21}

    def taps(img):
        h, out = (img - shift) / scale, []
        for i in CONV_INDICES:
            h = F.relu(F.conv2d(h, state[f"features.{i}.weight"], state[f"features.{i}.bias"], padding=1))
            if i in tap_after:
                out.append(h)
            if i in pool_after:
                h = F.max_pool2d(h, 2)
        return out

    total = torch.zeros(x.shape[0])
    for tx, ty, w in zip(taps(x), taps(y), heads):
        ux = tx / (torch.sqrt((tx ** 2).sum(1, keepdim=True)) + 1e-10)
        uy = ty / (torch.sqrt((ty ** 2).sum(1, keepdim=True)) + 1e-10)
        total += (((ux - uy) ** 2) * w.view(1, -1, 1, 1)).sum(1).mean((1, 2))
    return total


@torch.no_grad()
def test_distance_matches_independent_recomputation(model):
    x, y = smooth_images(2, seed=1), smooth_images(2, seed=2)
    expected = manual_lpips(timm_vgg16_state(), head_weights(), x, y)
    got = model(x, y)
    assert got.shape == (2,)
    assert (expected > 0).all()
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6)


@torch.no_grad()
def test_identity_and_growth_with_noise(model):
    x = smooth_images(1)
    assert model(x, x).item() == 0.0
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(3))
    levels = (0.02, 0.1, 0.3, 0.8)
    d = torch.cat([model(x, (x + s * noise).clamp(-1, 1)) for s in levels])
    assert (d > 0).all()
    assert (d[1:] > d[:-1]).all(), d


@torch.no_grad()
def test_mask_ignores_changes_inside_region(model):
    x = smooth_images(1, seed=4)
    keep = torch.ones(1, 1, 32, 32)
    keep[..., 8:24, 8:24] = 0  # the edit region
    inside = x.clone()
    inside[..., 10:22, 10:22] = -x[..., 10:22, 10:22]
    outside = x.clone()
    outside[..., :6, :] = -x[..., :6, :]
    assert model(inside, x).item() > 1e-3  # without a mask the change counts
    assert model(inside, x, mask=keep).item() < 1e-7
    assert model(outside, x, mask=keep).item() > 1e-3


def test_prepared_target_matches_direct_and_keeps_its_mask(model):
    original = smooth_images(1, seed=5)
    candidates = torch.cat([original, smooth_images(3, seed=6)])
    keep = torch.ones(1, 1, 32, 32)
    keep[..., 4:12, 20:30] = 0
    target = model.precompute_target(original, mask=keep)
    assert target.prepared_by == L.LPIPS_NAME and len(target.features) == 5
    assert not any(f.requires_grad for f in target.features)
    with torch.no_grad():
        via_target = model(candidates, target)
        direct = model(candidates, original.expand_as(candidates), mask=keep)
    assert via_target.shape == (4,)
    torch.testing.assert_close(via_target, direct, rtol=1e-5, atol=1e-7)
    assert via_target[0].abs().item() < 1e-7
    assert torch.equal(model(candidates, target, mask=keep), via_target)  # the same mask is allowed
    with pytest.raises(ValueError, match="own mask"):
        model(candidates, target, mask=torch.ones(1, 1, 32, 32))
    with pytest.raises(ValueError, match="prepared by"):
        L.PixelMSELoss()(candidates, target)


def test_gradients_reach_input_not_weights(model):
    original = smooth_images(1, seed=7)
    keep = torch.ones(1, 1, 32, 32)
    keep[..., 16:, 16:] = 0
    target = model.precompute_target(original, mask=keep)
    x = smooth_images(2, seed=8).requires_grad_(True)
    model(x, target).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert x.grad[..., :16, :].abs().sum() > 0
    assert x.grad[..., 16:, 16:].abs().sum() == 0  # masked-out pixels get no gradient
    assert all(p.grad is None and not p.requires_grad for p in model.parameters())


def test_input_checks(model):
    with pytest.raises(ValueError, match="at least 16x16"):
        model(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        model(torch.zeros(1, 1, 32, 32), torch.zeros(1, 1, 32, 32))
    with pytest.raises(ValueError, match="mask"):
        model(torch.zeros(1, 3, 32, 32), torch.zeros(1, 3, 32, 32), mask=torch.ones(1, 3, 32, 32))


# --- Loading from the (offline) Hub cache ------------------------------------------------------------------------
def test_load_lpips_from_offline_cache(offline_cache, backbone_state):
    model = L.load_lpips("cpu")
    assert isinstance(model, L.LPIPS) and isinstance(model, L.PerceptualLoss)
    assert model.name == "lpips-vgg16-v0.1"
    assert torch.equal(model.net.features[28].weight, backbone_state["features.28.weight"])
    for head, w in zip(model.heads, head_weights()):
        assert torch.equal(head.weight, w)
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    model.train()
    assert not model.training
    x = smooth_images(1)
    with torch.no_grad():
        assert model(x, x).item() == 0.0
        assert model(x, smooth_images(1, seed=9)).item() > 0


def test_reference_pth_heads_load_the_same(offline_cache):
    model = L.load_lpips(heads_repo=L.ALT_HEADS_REPO, heads_filename=L.ALT_HEADS_FILENAME)
    for head, w in zip(model.heads, head_weights()):
        assert torch.equal(head.weight, w)


def test_perceptual_loss_loads_lpips_once_per_device(offline_cache, caplog):
    with caplog.at_level(logging.WARNING, logger=L.__name__):
        first = L.perceptual_loss("cpu")
        second = L.perceptual_loss(torch.device("cpu"))
    assert isinstance(first, L.LPIPS) and first is second
    assert not caplog.records


# --- Broken or missing weights -----------------------------------------------------------------------------------
def test_corrupt_backbone_is_reported(offline_cache):
    with pytest.raises(L.LPIPSWeightsError, match=r"model\.safetensors is not a readable safetensors file"):
        L.load_lpips(backbone_repo=CORRUPT_BACKBONE_REPO)


def test_heads_with_wrong_keys_are_named(offline_cache):
    with pytest.raises(L.LPIPSWeightsError) as info:
        L.load_lpips(heads_repo=WRONG_KEYS_REPO)
    message = str(info.value)
    assert "missing keys ['4.weight']" in message and "unexpected keys ['5.weight']" in message
    assert L.HEADS_FILENAME in message


def test_backbone_and_head_mismatches_are_named(backbone_state):
    model = L.LPIPS()
    torchvision_style = dict(backbone_state) | {"classifier.0.weight": torch.zeros(1)}
    del torchvision_style["features.26.bias"]
    with pytest.raises(L.LPIPSWeightsError, match=r"missing keys \['features.26.bias'\]; "
                                                  r"unexpected keys \['classifier.0.weight'\]"):
        L.load_backbone_state(model.net, torchvision_style)
    bad_shape = {f"lin{i}.model.1.weight": w for i, w in enumerate(head_weights())}
    bad_shape["lin2.model.1.weight"] = torch.rand(1, 128, 1, 1)
    with pytest.raises(L.LPIPSWeightsError, match=r"lin2.model.1.weight has shape \(1, 128, 1, 1\), "
                                                  r"expected \(1, 256, 1, 1\)"):
        L.load_heads_state(model, bad_shape)
    negative = {f"{i}.weight": w for i, w in enumerate(head_weights())}
    negative["0.weight"] = -negative["0.weight"]
    with pytest.raises(L.LPIPSWeightsError, match="negative"):
        L.load_heads_state(model, negative)


def test_empty_cache_offline_raises_clear_error(empty_offline_cache):
    with pytest.raises(L.LPIPSWeightsError, match=r"could not get timm/vgg16\.tv_in1k/model\.safetensors"):
        L.load_lpips()


def test_fallback_to_pixel_loss_warns_once(empty_offline_cache, caplog):
    with caplog.at_level(logging.WARNING, logger=L.__name__):
        first = L.perceptual_loss("cpu")
        second = L.perceptual_loss("cpu")
        other = L.perceptual_loss("cpu", heads_filename="other.safetensors")  # not cached either: still silent
    assert isinstance(first, L.PixelMSELoss) and isinstance(other, L.PixelMSELoss) and first is second
    assert isinstance(first, L.PerceptualLoss) and first.name == "pixel-mse"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    text = warnings[0].getMessage()
    assert "timm/vgg16.tv_in1k/model.safetensors" in text and "pixel loss (pixel-mse)" in text

    x, y = smooth_images(2, seed=10), smooth_images(2, seed=11)
    torch.testing.assert_close(first(x, y), ((x - y) ** 2).mean(dim=(1, 2, 3)))
    assert torch.equal(first(x, x), torch.zeros(2))
    torch.testing.assert_close(first(x, x + 2 * (y - x)), 4 * first(x, y))
    keep = torch.ones(1, 1, 32, 32)
    keep[..., :16, :] = 0
    torch.testing.assert_close(first(x, y, mask=keep), ((keep * (x - y)) ** 2).mean(dim=(1, 2, 3)))
    target = first.precompute_target(y[:1], mask=keep)
    torch.testing.assert_close(first(x, target), first(x, y[:1].expand_as(x), mask=keep))


def test_fallback_on_corrupt_file_names_it(offline_cache, caplog):
    with caplog.at_level(logging.WARNING, logger=L.__name__):
        loss = L.perceptual_loss("cpu", backbone_repo=CORRUPT_BACKBONE_REPO)
    assert isinstance(loss, L.PixelMSELoss)
    assert len(caplog.records) == 1 and "not a readable safetensors file" in caplog.records[0].getMessage()
