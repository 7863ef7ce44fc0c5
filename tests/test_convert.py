"""Converting checkpoints from the wild: the EditGAN car release (scaled down, same keys) and rosinality StyleGAN2."""
from __future__ import annotations

import dataclasses
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import SHARED
from foreign_checkpoints import (
    CLASSIFIER_HIDDEN,
    ENCODER,
    N_CLASSES,
    parity_state_dict,
    save_classifiers,
    save_fpn_encoder,
    save_rosinality,
    tiny_car_generator,
)
from PIL import Image
from safetensors.torch import load_file

import editgan
from editgan.cli import main as cli_main
from editgan.engine.editing import EmbedOptions
from editgan.engine.model import EditGANModel
from editgan.errors import ConversionError
from editgan.modelio.convert import editgan_car_release as car
from editgan.modelio.convert.common import read_checkpoint
from editgan.modelio.convert.editgan_car import classifier_files, convert_editgan_car
from editgan.modelio.convert.rosinality import convert_rosinality, infer_generator_config, rosinality_generator_keys
from editgan.networks.fpn_encoder import FPNEncoder, FPNEncoderConfig
from editgan.networks.lpips import PixelMSELoss
from editgan.networks.stylegan2 import Generator

VECTOR_NAMES = ["frontlight_enlarge", "license_plate_disappear", "wheel_enlarge"]


@pytest.fixture(scope="module")
def vectors_dir(tmp_path_factory) -> Path:
    """The official release's three editing vectors when they sit beside the repository (../shared), else stand-ins
    in their format: (1, 16, 512) float32 .npy files of the same names and a similar spread."""
    folder = SHARED / "reference" / "editgan_car" / "editing_vectors"
    if folder.is_dir():
        assert sorted(p.stem for p in folder.glob("*.npy")) == VECTOR_NAMES
        return folder
    folder = tmp_path_factory.mktemp("editing_vectors")
    rng = np.random.default_rng(7)
    for name in VECTOR_NAMES:
        np.save(folder / f"{name}.npy", (0.1 * rng.standard_normal((1, 16, 512))).astype(np.float32))
    return folder


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> dict:
    """The car release's files in their own formats, scaled down: generator .pt (as converted from TF, with
    latent_avg), classifiers car_model_{0,1}.pth (DataParallel keys), the FPN encoder's BEST_loss*.pth."""
    root = tmp_path_factory.mktemp("release")
    g = tiny_car_generator()
    files = {"generator": save_rosinality(root / "stylegan2_networks_stylegan2-car-config-f.pt", g.state_dict(),
                                          training=False),
             "classifier_dir": root / "classifier",
             "encoder": save_fpn_encoder(root / "BEST_loss2.841871976852417.pth"),
             "feature_channels": sum(g.feature_channels()), "root": root}
    files["classifiers"] = save_classifiers(files["classifier_dir"], files["feature_channels"], 2)
    return files


@pytest.fixture(scope="module")
def car_folder(release, vectors_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("converted") / "editgan-car"
    messages: list[str] = []
    folder = convert_editgan_car(release["generator"], [release["classifier_dir"]], out, vectors=[vectors_dir],
                                 encoder=release["encoder"], progress=messages.append)
    assert folder == out and any("checking" in m for m in messages)
    return folder


@pytest.fixture(scope="module")
def car_model(car_folder) -> EditGANModel:
    model = editgan.load(str(car_folder), device="cpu")
    model.perceptual = PixelMSELoss()  # LPIPS weights come from the Hub, which tests do not reach
    return model


def test_generator_key_list_is_rosinality_layout(parity_fixture):
    spec = json.loads((parity_fixture / "spec.json").read_text())
    assert set(rosinality_generator_keys(8, 5)) == {k for k, _ in spec["state_dict"]}
    with torch.device("meta"):  # shapes only
        full = Generator(512, 512, 8, channel_multiplier=2)  # the car generator's keys (reference §7)
    keys = rosinality_generator_keys(8, 9)
    assert set(keys) == set(full.state_dict()) and len(keys) == len(full.state_dict())
    shapes = {k: tuple(v.shape) for k, v in full.state_dict().items()}
    assert shapes["convs.13.conv.weight"] == (1, 64, 64, 3, 3) and shapes["noises.noise_14"] == (1, 1, 512, 512)
    assert sum(full.feature_channels()) == car.FEATURE_CHANNELS


def test_fpn_encoder_has_the_release_keys():
    with torch.device("meta"):  # the release's full size, shapes only
        shapes = {k: tuple(v.shape) for k, v in FPNEncoder(FPNEncoderConfig()).state_dict().items()}
    expected = {  # reference §6
        "FPN_module.conv1.weight": (64, 3, 7, 7), "FPN_module.bn1.running_var": (64,),
        "FPN_module.layer1.0.conv1.weight": (64, 64, 1, 1), "FPN_module.layer1.0.conv3.weight": (256, 64, 1, 1),
        "FPN_module.layer1.0.shortcut.0.weight": (256, 64, 1, 1), "FPN_module.layer1.0.shortcut.1.bias": (256,),
        "FPN_module.layer2.0.shortcut.0.weight": (512, 256, 1, 1),
        "FPN_module.layer3.5.conv3.weight": (1024, 256, 1, 1),
        "FPN_module.layer4.0.conv3.weight": (2048, 512, 1, 1), "FPN_module.toplayer.weight": (512, 2048, 1, 1),
        "FPN_module.latlayer1.weight": (512, 1024, 1, 1), "FPN_module.latlayer2.weight": (512, 512, 1, 1),
        "FPN_module.latlayer3.weight": (512, 256, 1, 1), "FPN_module.smooth3.weight": (512, 512, 3, 3),
        "course_styles.2.convs.8.weight": (512, 512, 3, 3), "medium_styles.3.convs.10.bias": (512,),
        "fine_styles.8.convs.12.weight": (512, 512, 3, 3), "fine_styles.8.linear.weight": (512, 512)}
    for key, shape in expected.items():
        assert shapes[key] == shape, key
    assert "FPN_module.bn1.num_batches_tracked" in shapes and "FPN_module.conv1.bias" not in shapes
    assert {k.split(".shortcut")[0] for k in shapes if ".shortcut." in k} == \
        {f"FPN_module.layer{i}.0" for i in range(1, 5)}  # only the first block of each stage
    assert "course_styles.0.convs.10.weight" not in shapes and "fine_styles.9.linear.weight" not in shapes


def test_car_folder_layout_config_and_card(car_folder):
    names = sorted(str(p.relative_to(car_folder)) for p in car_folder.rglob("*") if p.is_file())
    assert names == ["README.md", "config.json", "encoder.safetensors", "generator.safetensors",
                     "segmenter.safetensors"] + [f"vectors/{n}.safetensors" for n in VECTOR_NAMES]
    config = json.loads((car_folder / "config.json").read_text())
    assert config["image_box"] == [64, 0, 384, 512] and config["truncation"] == 0.7
    classes = config["classes"]
    assert len(classes) == 32 and classes[14] == {"id": 14, "name": "licence_plate_back", "color": "#e905db"}
    assert classes[0]["color"] == "#ffffff" and classes[31] == {"id": 31, "name": "windshield", "color": "#48b8e2"}
    assert config["segmenter"] == {"n_members": 2, "hidden": list(CLASSIFIER_HIDDEN), "upsample_mode": "bilinear"}
    assert config["encoder"]["type"] == "fpn" and config["encoder"]["n_latent"] == 16
    presets = {p["name"]: p for p in config["presets"]}
    assert presets["wheel_enlarge"]["display_name"] == "Wheel size"
    assert presets["frontlight_enlarge"]["display_name"] == "Front light size"
    assert all(p["scale_range"] == [-2.0, 2.0] and p["refine_steps"] == 10 for p in presets.values())
    assert config["extra"]["license_id"] == "other" and len(config["extra"]["sources"]) == 1 + 2 + 1 + 3

    from huggingface_hub import ModelCard
    card = ModelCard.load(car_folder / "README.md")
    assert card.data.library_name == "editgan-studio" and card.data.license == "other"
    assert card.data.license_name == "nvidia-source-code-license-nc" and "editgan" in card.data.tags
    text = card.text
    assert "| 14 | licence_plate_back | `#e905db` |" in text and "| wheel_enlarge | Wheel size | -2 … 2 |" in text
    assert "nearest" in text and "KeyError" in text and "non-commercial" in text


def test_vector_classes_follow_the_release_with_the_plate_bug_fixed(car_model, vectors_dir):
    assert car_model.presets["wheel_enlarge"].classes == [21, 22, 24, 25, 26, 27]
    assert car_model.presets["frontlight_enlarge"].classes == [4, 5]
    assert car_model.presets["license_plate_disappear"].classes == [13, 14]
    for name in VECTOR_NAMES:
        np.testing.assert_array_equal(car_model.presets[name].delta, np.load(vectors_dir / f"{name}.npy")[0])


def test_converted_weights_equal_the_foreign_ones(car_folder, release):
    g_ema = torch.load(release["generator"], weights_only=True)["g_ema"]
    ours = load_file(str(car_folder / "generator.safetensors"))
    assert set(ours) == set(g_ema) and all(torch.equal(ours[k], g_ema[k]) for k in g_ema)
    encoder = torch.load(release["encoder"], weights_only=True)["model_state_dict"]
    ours = load_file(str(car_folder / "encoder.safetensors"))
    assert set(ours) == set(encoder) and all(torch.equal(ours[k], encoder[k]) for k in encoder)


def test_segmenter_matches_datasetgan_on_concatenated_features(car_model, release):
    """DatasetGAN's computation, with the foreign classifiers themselves: upsample every map bilinearly,
    concatenate, run each classifier per pixel, average the logits."""
    from foreign_checkpoints import datasetgan_classifier
    torch.manual_seed(0)
    channels = car_model.generator.feature_channels()
    features = [torch.randn(1, c, min(4 * 2 ** (i // 2), 32), min(4 * 2 ** (i // 2), 32))
                for i, c in enumerate(channels)]
    size = (32, 32)
    stacked = torch.cat([F.interpolate(f, size=size, mode="bilinear", align_corners=False)
                         if f.shape[-1] != 32 else f for f in features], 1)
    rows = stacked.permute(0, 2, 3, 1).reshape(-1, stacked.shape[1])
    logits = []
    for path in release["classifiers"]:
        foreign = datasetgan_classifier(release["feature_channels"])
        foreign.load_state_dict(torch.load(path, weights_only=True)["model_state_dict"])
        logits.append(foreign.eval()(rows))
    expected = torch.stack(logits).mean(0).reshape(1, *size, N_CLASSES).permute(0, 3, 1, 2)
    with torch.no_grad():
        ours = car_model.segmenter(features, size)
    torch.testing.assert_close(ours, expected, atol=1e-4, rtol=1e-4)


def test_converted_car_model_samples_edits_and_applies_the_official_vectors(car_model, vectors_dir):
    start = car_model.sample(seed=0)
    assert start.image.shape == (384, 512, 3) and start.labels.shape == (384, 512)
    assert start.wplus.shape == (16, 512) and 0 <= start.labels.min() and start.labels.max() < 32
    for name in VECTOR_NAMES:
        delta = np.load(vectors_dir / f"{name}.npy")[0]
        moved = car_model.apply_vector(start.wplus, name, 1.5)
        np.testing.assert_allclose(moved.wplus, start.wplus + 1.5 * delta, atol=1e-5)
        assert not np.array_equal(moved.image, start.image)
    with pytest.raises(ValueError, match="within"):
        car_model.apply_vector(start.wplus, "wheel_enlarge", 2.5)
    painted = np.zeros((384, 512), bool)
    painted[150:190, 60:140] = True  # paint a front wheel
    wanted = start.labels.copy()
    wanted[painted] = 22
    edited = car_model.edit(start.wplus, wanted, painted, steps=2)
    assert len(edited.losses) == 2 and edited.vector.delta.shape == (16, 512)
    assert edited.vector.classes == [22]


def test_converted_car_model_embeds_with_the_fpn_encoder(car_model):
    assert isinstance(car_model.encoder, FPNEncoder)
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 256, (384, 512, 3), dtype=np.uint8))
    out = car_model.embed(photo, steps=1, options=EmbedOptions(encoder_weight=0.0))
    assert out.image.shape == (384, 512, 3) and len(out.losses) == 1 and np.isfinite(out.losses[0])


def test_ten_classifiers_in_a_folder_become_ten_members_in_order(release, tmp_path):
    folder = tmp_path / "classifier"
    paths = save_classifiers(folder, release["feature_channels"], 10)
    (folder / "notes.txt").write_text("not a classifier")
    assert classifier_files([folder]) == paths
    out = convert_editgan_car(release["generator"], [folder], tmp_path / "out")
    state = load_file(str(out / "segmenter.safetensors"))
    for k, path in enumerate(paths):
        foreign = torch.load(path, weights_only=True)["model_state_dict"]
        assert torch.equal(state[f"members.{k}.layers.0.weight"], foreign["module.layers.0.weight"])
        assert torch.equal(state[f"members.{k}.layers.5.running_var"], foreign["module.layers.5.running_var"])
    assert json.loads((out / "config.json").read_text())["presets"] == []


def test_car_card_records_the_files_given_and_the_license_the_user_names(release, tmp_path):
    out = convert_editgan_car(release["generator"], release["classifiers"][:1], tmp_path / "mine",
                              license="my own license")
    config = json.loads((out / "config.json").read_text())
    assert config["license"] == "my own license" and "license_id" not in config["extra"]
    assert "stylegan2_networks_stylegan2-car-config-f.pt, 1 pixel classifier file" in config["provenance"]
    assert "encoder" not in config["provenance"].split("(sha256")[0]  # no encoder was given
    assert "not where they came from" in config["provenance"]


def test_converted_files_are_readable_under_the_usual_umask(release, tmp_path):
    import os
    old = os.umask(0o022)
    try:
        out = convert_editgan_car(release["generator"], release["classifiers"], tmp_path / "modes",
                                  vectors=[], encoder=release["encoder"])
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in out.rglob("*") if p.is_file()}
    assert set(modes.values()) == {0o644}, modes


def test_foreign_files_that_do_not_fit_give_errors_naming_file_and_keys(release, tmp_path):
    state = torch.load(release["classifiers"][0], weights_only=True)["model_state_dict"]
    renamed = {k.replace("layers.5.", "layers.4."): v for k, v in state.items()}
    bad = tmp_path / "car_model_0.pth"
    torch.save({"model_state_dict": renamed}, bad)
    with pytest.raises(ConversionError, match=r"car_model_0\.pth.*missing keys layers\.5\.weight.*unexpected keys "
                                              r"layers\.4\.weight"):
        convert_editgan_car(release["generator"], [bad], tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()

    narrow = {k: v[:, :5] if k == "module.layers.0.weight" else v for k, v in state.items()}
    torch.save({"model_state_dict": narrow}, bad)
    with pytest.raises(ConversionError, match="reads 5 feature channels"):
        convert_editgan_car(release["generator"], [bad], tmp_path / "out")

    torch.save({"d": {"x": torch.zeros(1)}}, tmp_path / "d_only.pt")
    with pytest.raises(ConversionError, match=r"d_only\.pt: no 'g_ema'"):
        convert_editgan_car(tmp_path / "d_only.pt", release["classifiers"], tmp_path / "out")

    g_ema = torch.load(release["generator"], weights_only=True)["g_ema"]
    del g_ema["convs.3.noise.weight"]
    g_ema["convs.3.extra"] = torch.zeros(1)
    save_rosinality(tmp_path / "g.pt", g_ema, training=False)
    with pytest.raises(ConversionError, match=r"g\.pt: the StyleGAN2 generator \(g_ema\) does not fit: missing keys "
                                              r"convs\.3\.noise\.weight; unexpected keys convs\.3\.extra"):
        convert_editgan_car(tmp_path / "g.pt", release["classifiers"], tmp_path / "out")

    save_fpn_encoder(tmp_path / "enc14.pth", dataclasses.replace(ENCODER, n_latent=14))
    with pytest.raises(ConversionError, match=r"enc14\.pth: the encoder predicts w\+ of 14×512"):
        convert_editgan_car(release["generator"], release["classifiers"], tmp_path / "out",
                            encoder=tmp_path / "enc14.pth")

    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(ConversionError, match=r"garbage\.pt: not a readable PyTorch checkpoint"):
        read_checkpoint(tmp_path / "garbage.pt")


class _Custom:  # pickled by reference: weights-only loading must refuse it
    pass


def test_checkpoints_with_code_objects_are_refused_but_training_namespaces_are_read(tmp_path):
    with open(tmp_path / "evil.pt", "wb") as f:
        torch.save({"g_ema": {}, "extra": _Custom()}, f, pickle_module=pickle)
    with pytest.raises(ConversionError, match=r"evil\.pt: holds Python objects other than tensors"):
        read_checkpoint(tmp_path / "evil.pt")
    g = Generator(8, style_dim=16, n_mlp=1, channels={4: 4, 8: 4})
    checkpoint = read_checkpoint(save_rosinality(tmp_path / "train.pt", g.state_dict(), training=True))
    assert checkpoint["args"].size == 512 and set(checkpoint) >= {"g", "d", "g_ema", "g_optim"}


def test_rosinality_conversion_reproduces_the_parity_fixture(parity_fixture, tmp_path):
    """The parity case as a rosinality training checkpoint → a generator-only model with the same images."""
    fixture = parity_fixture
    ckpt = save_rosinality(tmp_path / "550000.pt", parity_state_dict(fixture / "spec.json"), training=True)
    with pytest.raises(ConversionError, match="--size 64 does not match.*32×32"):
        convert_rosinality(ckpt, tmp_path / "bad", size=64)
    with pytest.raises(ConversionError, match="--channel-multiplier 3 does not match"):
        convert_rosinality(ckpt, tmp_path / "bad", channel_multiplier=3)
    out = convert_rosinality(ckpt, tmp_path / "parity", size=32, channel_multiplier=2, license="mit")
    config = json.loads((out / "config.json").read_text())
    assert config["generator"]["channel_multiplier"] == 2 and config["generator"]["channels"] is None
    assert config["segmenter"] is None and config["classes"] == []
    model = EditGANModel.from_folder(out, device="cpu")
    io = np.load(fixture / "io.npz")
    with torch.no_grad():
        image = model.generator.synthesis(torch.from_numpy(io["wplus"]))
    np.testing.assert_allclose(image.numpy(), io["rgb_from_wplus"], atol=1e-3)
    sample = model.sample(seed=0)
    assert sample.labels is None and sample.image.shape == (32, 32, 3)
    with pytest.raises(ValueError, match="segmentation branch"):
        model.edit(sample.wplus, np.zeros((32, 32), int), np.ones((32, 32), bool))
    card = (out / "README.md").read_text()
    assert "license: mit" in card and "Mask editing is not available" in card


def test_generator_config_is_inferred_from_shapes():
    def shapes(g: Generator) -> dict[str, torch.Tensor]:
        return {k: torch.empty(v.shape) for k, v in g.state_dict().items()}
    path = Path("x.pt")
    with torch.device("meta"):
        standard = Generator(64, 32, 2, channel_multiplier=1)
        custom = Generator(16, 32, 3, channels={4: 16, 8: 8, 16: 4})
    config = infer_generator_config(shapes(standard), path)
    assert (config.size, config.style_dim, config.n_mlp, config.channel_multiplier, config.channels) == \
        (64, 32, 2, 1, None)
    with pytest.raises(ConversionError, match="multiplier 1"):
        infer_generator_config(shapes(standard), path, channel_multiplier=2)
    config = infer_generator_config(shapes(custom), path)
    assert (config.size, config.n_mlp, config.channels) == (16, 3, {4: 16, 8: 8, 16: 4})
    with pytest.raises(ConversionError, match="not a rosinality StyleGAN2 generator"):
        infer_generator_config({"weight": torch.zeros(1)}, path)


def test_command_line_convert_and_its_errors(release, vectors_dir, tmp_path, capsys):
    out = tmp_path / "cli-car"
    code = cli_main(["convert", "editgan-car", "--generator", str(release["generator"]), "--classifiers",
                     *map(str, release["classifiers"]), "--vectors", str(vectors_dir / "wheel_enlarge.npy"),
                     "--out", str(out)])
    assert code == 0 and f"converted: {out}" in capsys.readouterr().out
    assert [p["name"] for p in json.loads((out / "config.json").read_text())["presets"]] == ["wheel_enlarge"]
    code = cli_main(["convert", "editgan-car", "--generator", str(release["generator"]), "--classifiers",
                     str(release["classifier_dir"]), "--out", str(out)])
    assert code == 2 and "not empty (pass --overwrite" in capsys.readouterr().err
    code = cli_main(["convert", "rosinality", "--checkpoint", str(tmp_path / "missing.pt"), "--out",
                     str(tmp_path / "x")])
    assert code == 2 and "missing.pt: no such file" in capsys.readouterr().err
