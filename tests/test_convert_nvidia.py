"""NVIDIA StyleGAN2-ADA network pickles → model folders, read as data: parity with an independent evaluation of
NVIDIA's generator (tests/nvidia_reference.py), and refusals of everything else, with nothing from a file run."""
from __future__ import annotations

import dataclasses
import io
import json
import os
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from huggingface_hub import ModelCard
from nvidia_reference import (
    MARKER_NAME,
    EasyDict,
    Spec,
    dump_network_pickle,
    network,
    nvidia_generator,
    reference_mapping,
    reference_synthesis,
    resample_filter,
    stand_in_modules,
    training_snapshot,
)
from safetensors.torch import load_file

import editgan
from editgan.cli import main as cli_main
from editgan.engine.images import to_uint8
from editgan.modelio.convert.nvidia import (
    CAR_CONFIG_F_BOX,
    NvidiaPickleError,
    convert_nvidia,
    convert_nvidia_generator,
    read_pickle,
)
from editgan.modelio.vectors import EditingVector
from editgan.networks.lpips import PixelMSELoss

SPECS = {
    # 32 px, widths 64/32/16/8 (channel_base 256, channel_max 64), 2 mapping layers, w_dim 32, a clamp that bites
    "small-clamped": Spec(resolution=32, w_dim=32, mapping_layers=2, channel_base=256, channel_max=64,
                          conv_clamp=0.5),
    # config-f's rules at a small scale: widths capped by channel_max, 8 mapping layers at lr 0.01, no clamp
    "capped-8-layers": Spec(resolution=16, w_dim=48, mapping_layers=8, channel_base=512, channel_max=24),
    # no noise inputs, another lr multiplier, NVIDIA's usual clamp value (rarely reached)
    "no-noise": Spec(resolution=8, w_dim=16, mapping_layers=3, lr_multiplier=0.05, channel_base=128,
                     channel_max=32, conv_clamp=256, use_noise=False),
}


@pytest.fixture(scope="module")
def pickles(tmp_path_factory) -> dict[str, tuple[Path, Spec, dict]]:
    """Each spec's training snapshot pickle, with its G_ema's NVIDIA-layout state dict."""
    made = {}
    for name, spec in SPECS.items():
        g = nvidia_generator(spec, seed=len(made))
        path = dump_network_pickle(tmp_path_factory.mktemp(name) / "network-snapshot-000100.pkl",
                                   training_snapshot(g))
        made[name] = (path, spec, {k: v.detach().clone() for k, v in g.state_dict().items()})
    return made


@pytest.fixture(scope="module")
def folder(pickles, tmp_path_factory) -> Path:
    path, _, _ = pickles["small-clamped"]
    out = tmp_path_factory.mktemp("converted") / "toy-nvidia"
    messages: list[str] = []
    assert convert_nvidia(path, out, license="cc-by-nc-4.0", truncation=0.5, progress=messages.append) == out
    assert any("none of its code runs" in m for m in messages)
    return out


def no_marker(path: Path) -> bool:
    return not (path.parent / MARKER_NAME).exists()


@pytest.mark.parametrize("name", list(SPECS))
@torch.no_grad()
def test_converted_generator_matches_nvidias_forward(pickles, name):
    path, spec, state = pickles[name]
    config, g, _ = convert_nvidia_generator(path)
    assert no_marker(path)  # the module_src in the file would have left it
    assert config.channels == spec.channels and config.n_mlp == spec.mapping_layers
    assert config.style_dim == spec.w_dim and config.lr_mlp == pytest.approx(spec.lr_multiplier)
    assert config.conv_clamp == spec.conv_clamp and config.stored_mean_latent and g.n_latent == spec.num_ws
    torch.testing.assert_close(g.latent_avg, state["mapping.w_avg"])
    gen = torch.Generator().manual_seed(1)
    z = torch.randn(3, spec.w_dim, generator=gen)
    w = g.mapping(z)
    torch.testing.assert_close(w, reference_mapping(state, spec, z), atol=1e-5, rtol=1e-5)
    ws = torch.randn(3, spec.num_ws, spec.w_dim, generator=gen)  # a different w per layer
    expected = reference_synthesis(state, spec, ws)
    assert (g.synthesis(ws) - expected).abs().max() <= 1e-3
    images = g.synthesis(g.to_wplus(w))
    assert (images - reference_synthesis(state, spec, w[:, None].repeat(1, spec.num_ws, 1))).abs().max() <= 1e-3


@pytest.mark.parametrize("protocol", [2, 3])
def test_older_pickle_protocols_convert_the_same(pickles, tmp_path, protocol):
    """Python 3.7 (NVIDIA's) pickles with protocol 3; protocol 2 writes bytes through _codecs.encode."""
    path, spec, state = pickles["no-noise"]
    old = dump_network_pickle(tmp_path / "old.pkl", training_snapshot(nvidia_generator(spec, seed=2)),
                              protocol=protocol)
    assert old.read_bytes()[1] == protocol
    _, g, _ = convert_nvidia_generator(old)
    _, same, _ = convert_nvidia_generator(dump_network_pickle(tmp_path / "new.pkl", training_snapshot(
        nvidia_generator(spec, seed=2))))
    assert all(torch.equal(a, b) for a, b in zip(g.state_dict().values(), same.state_dict().values()))


@torch.no_grad()
def test_the_clamp_is_exercised_where_nvidia_applies_it(pickles):
    path, spec, state = pickles["small-clamped"]
    _, g, _ = convert_nvidia_generator(path)
    ws = torch.randn(2, spec.num_ws, spec.w_dim, generator=torch.Generator().manual_seed(2))
    unclamped = reference_synthesis(state, dataclasses.replace(spec, conv_clamp=None), ws)
    clamped = g.synthesis(ws)
    assert (unclamped - clamped).abs().max() > 1.0  # without the clamp the parity test would fail
    _, feats = g.synthesis(ws, return_features=True)
    assert max(f.abs().max() for f in feats[1:]) <= 0.5 + 1e-6


def test_folder_holds_config_weights_and_card(folder, pickles):
    path, _, state = pickles["small-clamped"]
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "generator.safetensors"]
    config = json.loads((folder / "config.json").read_text())
    assert config["format_version"] == 2 and config["segmenter"] is None and config["image_box"] is None
    g = config["generator"]
    assert (g["size"], g["style_dim"], g["n_mlp"], g["conv_clamp"], g["stored_mean_latent"]) == (32, 32, 2, 0.5, True)
    assert g["channels"] == {"4": 64, "8": 32, "16": 16, "32": 8} and config["truncation"] == 0.5
    weights = load_file(str(folder / "generator.safetensors"))
    torch.testing.assert_close(weights["latent_avg"], state["mapping.w_avg"])
    torch.testing.assert_close(weights["convs.0.conv.weight"][0], state["synthesis.b8.conv0.weight"])
    torch.testing.assert_close(weights["to_rgbs.2.bias"].flatten(), state["synthesis.b32.torgb.bias"])
    source = config["extra"]["sources"][0]
    assert source["file"] == path.name and source["bytes"] == path.stat().st_size
    import hashlib
    assert source["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    card = ModelCard.load(folder / "README.md")
    assert card.data.license == "cc-by-nc-4.0" and card.data.library_name == "editgan-studio"
    text = card.text
    for needle in (path.name, source["sha256"], str(source["bytes"]), "convert nvidia", "G_ema",
                   "without running the pickle's code", "original channel_base | 256", "±0.5", "latent_avg",
                   "Mask editing is not available", "## Conversion"):
        assert needle in text, needle


def test_loaded_model_samples_around_nvidias_w_avg_embeds_and_applies_vectors(folder, pickles):
    _, spec, state = pickles["small-clamped"]
    model = editgan.load(str(folder), device="cpu")
    model.perceptual = PixelMSELoss()  # LPIPS comes from the Hub, which tests do not reach
    torch.testing.assert_close(model.mean_wplus[0, 0], state["mapping.w_avg"])
    sample = model.sample(seed=3, truncation=0.6)
    assert sample.image.shape == (32, 32, 3) and sample.labels is None and sample.wplus.shape == (8, 32)
    z = torch.randn(1, spec.w_dim, generator=torch.Generator().manual_seed(3))  # as model.sample draws it
    w_avg = state["mapping.w_avg"]
    w = w_avg + 0.6 * (reference_mapping(state, spec, z) - w_avg)  # NVIDIA's truncation: w_avg.lerp(w, psi)
    expected = to_uint8(reference_synthesis(state, spec, w[:, None].repeat(1, spec.num_ws, 1)))[0]
    assert np.abs(sample.image.astype(int) - expected.astype(int)).max() <= 1
    embedded = model.embed(sample.image, steps=2)
    assert embedded.image.shape == (32, 32, 3) and len(embedded.losses) == 2 and np.isfinite(embedded.losses).all()
    vector = EditingVector("brighter", np.full((8, 32), 0.1, np.float32))
    moved = model.apply_vector(sample.wplus, vector, 1.5)
    np.testing.assert_allclose(moved.wplus, sample.wplus + 0.15, atol=1e-6)
    assert not np.array_equal(moved.image, sample.image)


def test_image_box_option_and_the_known_car_box(pickles, tmp_path):
    path, _, _ = pickles["small-clamped"]
    out = convert_nvidia(path, tmp_path / "boxed", image_box=(4, 0, 24, 32))
    model = editgan.load(str(out), device="cpu")
    assert model.config.image_box == (4, 0, 24, 32) and model.sample(seed=0).image.shape == (24, 32, 3)
    with pytest.raises(NvidiaPickleError, match=r"image box .*does not fit inside the 32×32 canvas"):
        convert_nvidia(path, tmp_path / "bad", image_box=(16, 0, 24, 32))
    car = dump_network_pickle(tmp_path / "stylegan2-car-config-f.pkl", training_snapshot(nvidia_generator(
        Spec(resolution=512, w_dim=8, mapping_layers=1, channel_base=1024, channel_max=2))))
    messages: list[str] = []
    out = convert_nvidia(car, tmp_path / "car", progress=messages.append)
    assert json.loads((out / "config.json").read_text())["image_box"] == list(CAR_CONFIG_F_BOX)
    assert any("(64, 0, 384, 512)" in m and "--image-box overrides" in m for m in messages)


def test_command_line_converts_and_reports_a_bad_file_in_one_line(pickles, tmp_path, capsys):
    path, _, _ = pickles["capped-8-layers"]
    out = tmp_path / "cli"
    code = cli_main(["convert", "nvidia", "--checkpoint", str(path), "--out", str(out), "--name", "toy",
                     "--license", "cc-by-nc-4.0", "--truncation", "0.8", "--image-box", "0", "2", "16", "12"])
    assert code == 0 and f"converted: {out}" in capsys.readouterr().out
    config = json.loads((out / "config.json").read_text())
    assert (config["name"], config["license"], config["truncation"], config["image_box"]) == \
        ("toy", "cc-by-nc-4.0", 0.8, [0, 2, 16, 12])
    bad = tmp_path / "network.pkl"
    bad.write_bytes(b"\x80\x04\x95 this is not a network")
    code = cli_main(["convert", "nvidia", "--checkpoint", str(bad), "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "network.pkl: not a readable network pickle" in err
    assert not (tmp_path / "x").exists() and not (tmp_path / "x.partial").exists()


# -- refusals: nothing runs, and the message names what was found ----------------------------------------------------
class _Call:
    """Pickles as a call of ``func(*args)``: what a malicious pickle does."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.mark.parametrize("make, named", [
    (lambda m: _Call(os.system, f"touch {m}"), f"{os.system.__module__}.system"),
    (lambda m: _Call(exec, f"open({str(m)!r}, 'w')"), "builtins.exec"),
    (lambda m: _Call(eval, f"open({str(m)!r}, 'w')"), "builtins.eval"),
    (lambda m: _Call(__import__("subprocess").call, ["touch", str(m)]), "subprocess.call"),
    (lambda m: _Call(getattr, _Call(__import__, "os"), "system"), "builtins.getattr"),
])
def test_malicious_pickles_are_refused_before_anything_runs(tmp_path, make, named):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": make(marker)}))
    with pytest.raises(NvidiaPickleError, match=rf"^{re.escape(str(path))}: refused: the pickle calls {named}, ") \
            as info:
        read_pickle(path)
    assert "\n" not in str(info.value) and not marker.exists()


def test_a_call_hidden_inside_a_network_is_refused_too(tmp_path):
    marker = tmp_path / "pwned"
    g = nvidia_generator(Spec(resolution=8, w_dim=8, mapping_layers=1))
    g.synthesis.b8.conv1.activation = _Call(os.system, f"touch {marker}")
    path = dump_network_pickle(tmp_path / "ffhq.pkl", {"G_ema": g})
    with pytest.raises(NvidiaPickleError, match=rf"^{re.escape(str(path))}: refused: the pickle calls "
                                                rf"{os.system.__module__}\.system"):
        convert_nvidia(path, tmp_path / "out")
    assert not marker.exists() and no_marker(path) and not (tmp_path / "out").exists()


def test_a_pickle_cannot_change_the_loaders_classes(tmp_path):
    """BUILD with slot state on a class the pickle names would set class attributes for the whole process."""
    path = tmp_path / "sneaky.pkl"
    path.write_bytes(b"\x80\x02cdnnlib.util\nEasyDict\nN}X\x05\x00\x00\x00itemsK\x01s\x86b.")
    with pytest.raises(NvidiaPickleError, match="tries to change the class EasyDict"):
        read_pickle(path)
    path.write_bytes(b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\nN}X\x05\x00\x00\x00_funcK\x01s\x86b.")
    with pytest.raises(NvidiaPickleError, match="tries to change a function"):
        read_pickle(path)
    from editgan.modelio.convert import nvidia_pickle
    assert nvidia_pickle.EasyDict.items is dict.items


def test_tensors_views_numpy_values_and_easydicts_are_read_as_data(tmp_path):
    base = torch.arange(12.0).reshape(3, 4)
    data = {"t": base.t(), "view": base[1], "half": base.half(), "param": torch.nn.Parameter(base.clone()),
            "gain": np.float64(0.25), "arr": np.arange(3, dtype=np.int16), "kw": EasyDict(a=1)}
    path = tmp_path / "data.pkl"
    with stand_in_modules():
        path.write_bytes(pickle.dumps(data))
    back = read_pickle(path)
    assert torch.equal(back["t"], base.t()) and torch.equal(back["view"], base[1])
    assert back["half"].dtype == torch.float16 and type(back["param"]) is torch.Tensor
    assert back["gain"] == 0.25 and back["arr"].tolist() == [0, 1, 2] and back["kw"] == {"a": 1}


def test_corrupt_truncated_and_other_files_are_refused_in_one_line(pickles, tmp_path):
    path, _, _ = pickles["no-noise"]
    raw = path.read_bytes()
    truncated = r"not a readable network pickle \(truncated or corrupt\?\)"
    cases = {f"cut{n}.pkl": (raw[: len(raw) * n // 100], truncated) for n in (1, 50, 99)}
    cases |= {"garbage.pkl": (b"\x80\x04" + bytes(range(7, 250)), truncated),
              "empty.pkl": (b"", "not a network pickle"), "text.pkl": (b"hello, world", "not a network pickle")}
    buffer = io.BytesIO()
    torch.save({"g_ema": {}}, buffer)
    cases["archive.pkl"] = (buffer.getvalue(), "a zip archive .*convert rosinality")
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(NvidiaPickleError, match=message) as info:
            convert_nvidia(tmp_path / name, tmp_path / "out")
        assert str(info.value).startswith(str(tmp_path / name)) and "\n" not in str(info.value)
    with pytest.raises(NvidiaPickleError, match="missing.pkl: no such file"):
        convert_nvidia(tmp_path / "missing.pkl", tmp_path / "out")


def _stylegan3_like() -> torch.nn.Module:
    affine = network("FullyConnectedLayer", activation="linear", weight=torch.nn.Parameter(torch.zeros(4, 8)),
                     bias=torch.nn.Parameter(torch.tensor([1.0, 0, 0, 0])), weight_gain=np.float64(8 ** -0.5),
                     bias_gain=1)
    synthesis = network("SynthesisNetwork", w_dim=8, img_resolution=16, num_ws=16,
                        input=network("SynthesisInput", affine=affine, weight=torch.nn.Parameter(torch.eye(4)),
                                      buffers={"freqs": torch.zeros(4, 2), "phases": torch.zeros(4)}),
                        L0_36_512=network("SynthesisLayer", conv_clamp=256, weight=torch.nn.Parameter(
                            torch.zeros(4, 4, 3, 3)), buffers={"up_filter": torch.ones(6)}))
    mapping = nvidia_generator(Spec(resolution=8, w_dim=8, mapping_layers=1)).mapping
    return network("Generator", z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, synthesis=synthesis,
                   mapping=mapping)


def _stylegan_xl_like() -> torch.nn.Module:
    g = nvidia_generator(Spec(resolution=8, w_dim=8, mapping_layers=1, c_dim=5))
    g.mapping.embed = torch.nn.Embedding(5, 8)  # XL's pretrained class embedding: a plain torch module
    g.mapping.embed_proj = network("FullyConnectedLayer", activation="lrelu",
                                   weight=torch.nn.Parameter(torch.zeros(8, 8)), bias=torch.nn.Parameter(
                                       torch.zeros(8)), weight_gain=np.float64(8 ** -0.5), bias_gain=1)
    return g


class _TFNetwork:
    """Pickles like dnnlib.tflib.network.Network of NVIDIA's TensorFlow releases (state set by BUILD)."""

    def __init__(self, name, func):
        self.state = {"version": 4, "name": name, "build_func_name": func, "build_module_src": "raise SystemExit",
                      "static_kwargs": {}, "components": {}, "variables": [("dlatent_avg", np.zeros(4, np.float32))]}

    def __getstate__(self):
        return self.state


_TFNetwork.__module__, _TFNetwork.__qualname__ = "dnnlib.tflib.network", "Network"


def _tensorflow_pickle(path: Path, func: str) -> Path:
    import sys
    import types
    module = types.ModuleType("dnnlib.tflib.network")
    module.Network = _TFNetwork
    made = [name for name in ("dnnlib", "dnnlib.tflib", "dnnlib.tflib.network") if name not in sys.modules]
    for name in made:
        sys.modules[name] = module if name == "dnnlib.tflib.network" else types.ModuleType(name)
    try:
        path.write_bytes(pickle.dumps((_TFNetwork("G", func), _TFNetwork("D", "D_main"), _TFNetwork("Gs", func))))
    finally:
        for name in made:
            del sys.modules[name]
    return path


@pytest.mark.parametrize("build, message", [
    (lambda p: dump_network_pickle(p, {"G_ema": nvidia_generator(Spec(resolution=8, w_dim=8, mapping_layers=1,
                                                                        c_dim=10))}),
     r"a conditional generator \(c_dim = 10\)"),
    (lambda p: dump_network_pickle(p, {"G_ema": _stylegan3_like()}),
     r"a StyleGAN3 generator \(synthesis\.L0_36_512, synthesis\.input"),
    (lambda p: dump_network_pickle(p, {"G_ema": _stylegan_xl_like()}), r"a StyleGAN-XL generator"),
    (lambda p: dump_network_pickle(p, {"G_ema": nvidia_generator(Spec(resolution=8, w_dim=8, mapping_layers=1))},
                                   module_src="# stand-in source of a StyleGAN-XL network module\n"),
     r"a StyleGAN-XL generator"),
    (lambda p: _tensorflow_pickle(p, "G_style"),
     r"a TensorFlow pickle of StyleGAN \(1\) \(dnnlib\.tflib Network 'G', built by G_style\)"),
    (lambda p: _tensorflow_pickle(p, "G_main"), r"a TensorFlow pickle of StyleGAN2 / StyleGAN2-ADA .*legacy\.py"),
    (lambda p: dump_network_pickle(p, {"G": nvidia_generator(Spec(resolution=8, w_dim=8, mapping_layers=1)),
                                       "D": None}), r"no 'G_ema' generator in this pickle \(found D, G\)"),
    (lambda p: dump_network_pickle(p, {"G_ema": nvidia_generator(Spec(resolution=8, w_dim=8, z_dim=4,
                                                                      mapping_layers=1))}),
     r"z_dim 4 differs from w_dim 8"),
    (lambda p: dump_network_pickle(p, {"G_ema": nvidia_generator(Spec(resolution=8, w_dim=8, mapping_layers=1,
                                                                      architecture="resnet"))}),
     r"synthesis\.b4 uses the 'resnet' architecture"),
    (lambda p: dump_network_pickle(p, [1, 2, 3]), r"not an NVIDIA network pickle \(it holds a list"),
])
def test_other_generators_are_refused_naming_what_was_found(tmp_path, build, message):
    path = build(tmp_path / "other.pkl")
    with pytest.raises(NvidiaPickleError, match=rf"^{re.escape(str(path))}: {message}") as info:
        convert_nvidia(path, tmp_path / "out")
    assert "\n" not in str(info.value) and no_marker(path) and not (tmp_path / "out").exists()


def test_a_resampling_filter_other_than_1331_is_refused(tmp_path):
    g = nvidia_generator(Spec(resolution=8, w_dim=8, mapping_layers=1))
    g.synthesis.b8.conv0.resample_filter = resample_filter().roll(1, 0)
    path = dump_network_pickle(tmp_path / "filter.pkl", {"G_ema": g})
    with pytest.raises(NvidiaPickleError, match=rf"^{re.escape(str(path))}: synthesis\.b8\.conv0\.resample_filter "
                                                r"is not the \[1, 3, 3, 1\]"):
        convert_nvidia_generator(path)


def test_tensors_the_converter_does_not_know_are_refused_by_name(tmp_path):
    g = nvidia_generator(Spec(resolution=8, w_dim=8, mapping_layers=1))
    g.synthesis.b8.conv1.register_buffer("magnitude_ema", torch.ones(()))
    path = dump_network_pickle(tmp_path / "extra.pkl", {"G_ema": g})
    with pytest.raises(NvidiaPickleError, match=rf"^{re.escape(str(path))}: G_ema holds tensors this converter does "
                                                r"not know: synthesis\.b8\.conv1\.magnitude_ema$"):
        convert_nvidia_generator(path)
