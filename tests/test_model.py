"""The model object: load/save in the checkpoint layout, and every action with numpy/PIL at its edges."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tiny_models import tiny_model_folder

import editgan
from editgan.engine.editing import EditOptions, EmbedOptions
from editgan.engine.model import EditGANModel
from editgan.errors import ImageError, ModelLoadError
from editgan.modelio.vectors import EditingVector


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tiny_model_folder(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def model(folder):
    return editgan.load(str(folder), device="cpu")


def test_folder_layout(folder):
    names = {p.name for p in folder.iterdir()}
    assert {"config.json", "generator.safetensors", "segmenter.safetensors", "encoder.safetensors",
            "vectors"} <= names
    config = json.loads((folder / "config.json").read_text())
    assert config["format"] == "editgan-studio" and config["classes"][1] == {"id": 1, "name": "reddish",
                                                                             "color": "#ff0000"}
    assert config["presets"][0]["name"] == "redder"


def test_sample_is_deterministic_and_labelled(model):
    a, b, c = model.sample(seed=5), model.sample(seed=5), model.sample(seed=6)
    assert a.image.shape == (32, 32, 3) and a.image.dtype == np.uint8
    assert a.labels.shape == (32, 32) and set(np.unique(a.labels)) <= {0, 1}
    assert a.wplus.shape == (model.n_latent, model.style_dim)
    assert np.array_equal(a.image, b.image) and not np.array_equal(a.image, c.image)
    again = model.render(a.wplus)
    assert np.array_equal(again.image, a.image) and np.array_equal(again.labels, a.labels)


def test_save_and_reload_gives_the_same_pictures(model, tmp_path):
    model.save_pretrained(tmp_path / "copy")
    copy = EditGANModel.from_folder(tmp_path / "copy", device="cpu")
    assert np.array_equal(copy.sample(seed=2).image, model.sample(seed=2).image)
    assert list(copy.presets) == ["redder"] and copy.presets["redder"].display_name == "Redder"


def test_edit_changes_the_painted_region_and_returns_a_vector(model):
    start = model.sample(seed=1)
    painted = np.zeros((32, 32), bool)
    painted[4:14, 4:14] = True
    wanted = start.labels.copy()
    wanted[painted] = 1 - np.bincount(start.labels[painted], minlength=2).argmax()  # the rarer class there
    outcome = model.edit(start.wplus, wanted, painted, classes=[], steps=60,
                         options=EditOptions(lr=0.02, rgb_weight=5.0))
    changed = (outcome.labels[painted] == wanted[painted]).mean()
    before = (start.labels[painted] == wanted[painted]).mean()
    assert changed > before + 0.3
    assert outcome.vector is not None and outcome.vector.delta.shape == start.wplus.shape
    np.testing.assert_allclose(outcome.vector.delta, outcome.wplus - start.wplus, atol=1e-5)
    assert outcome.roi[painted].all()
    # the vector transfers: applying it to the same latent reproduces the edit
    again = model.apply_vector(start.wplus, outcome.vector, 1.0)
    np.testing.assert_allclose(again.wplus, outcome.wplus, atol=1e-5)


def test_edit_input_errors(model):
    start = model.sample(seed=1)
    with pytest.raises(ValueError, match="nothing painted"):
        model.edit(start.wplus, start.labels, np.zeros((32, 32), bool))
    with pytest.raises(ValueError, match="class ids"):
        model.edit(start.wplus, start.labels + 5, np.ones((32, 32), bool))
    with pytest.raises(ValueError, match="does not fit this model"):
        model.render(np.zeros((3, 3), np.float32))


def test_preset_sliders_sum_and_check_their_range(model):
    start = model.sample(seed=3)
    preset = model.presets["redder"]
    out = model.apply_vectors(start.wplus, [(preset, 1.5), (preset, -0.5)])
    np.testing.assert_allclose(out.wplus, start.wplus + preset.delta, atol=1e-5)
    with pytest.raises(ValueError, match="within"):
        model.apply_vector(start.wplus, "redder", 5.0)
    with pytest.raises(ValueError, match="finite"):
        model.apply_vector(start.wplus, "redder", float("nan"))
    with pytest.raises(ValueError, match="unknown preset"):
        model.apply_vector(start.wplus, "bluer", 1.0)
    refined = model.apply_vector(start.wplus, "redder", 1.0, refine_steps=3)
    assert len(refined.losses) == 3 and refined.perceptual != "none"


def test_embed_a_generated_picture_with_the_encoder_start(model):
    target = model.sample(seed=4)
    progress = []
    out = model.embed(Image.fromarray(target.image), steps=30, on_step=progress.append)
    assert len(progress) == 30 and progress[-1].image.shape == (32, 32, 3)
    start_error = np.abs(model.render(model.mean_wplus[0].numpy()).image.astype(float) - target.image).mean()
    end_error = np.abs(out.image.astype(float) - target.image).mean()
    assert end_error < start_error


def test_embedding_takes_its_regularizer_weight_from_the_config(folder, tmp_path):
    import shutil
    loose = tmp_path / "loose"
    shutil.copytree(folder, loose)
    config = json.loads((loose / "config.json").read_text())
    assert config["embed_encoder_weight"] == 1.0  # EditGAN's, unless a model says otherwise
    config["embed_encoder_weight"] = 0.0
    (loose / "config.json").write_text(json.dumps(config))
    strict, free = editgan.load(str(folder), device="cpu"), editgan.load(str(loose), device="cpu")
    photo = Image.fromarray(strict.sample(seed=4).image)
    by_config = free.embed(photo, steps=10).wplus
    np.testing.assert_allclose(by_config, strict.embed(photo, steps=10, options=EmbedOptions(encoder_weight=0.0)).wplus)
    assert not np.allclose(by_config, strict.embed(photo, steps=10).wplus)

    del config["embed_encoder_weight"]  # configs written before the setting existed
    (loose / "config.json").write_text(json.dumps(config))
    assert editgan.load(str(loose), device="cpu").config.embed_encoder_weight == 1.0
    config["embed_encoder_weight"] = -1
    (loose / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="embed_encoder_weight must be a number ≥ 0"):
        editgan.load(str(loose), device="cpu")


def test_embed_rejects_bad_uploads(model):
    with pytest.raises(ImageError, match="not a readable image"):
        model.embed(b"definitely not a png", steps=1)
    with pytest.raises(ImageError, match="at least"):
        model.embed(Image.new("RGB", (4, 4)), steps=1)


def test_missing_and_corrupt_files_give_clear_errors(folder, tmp_path):
    import shutil
    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    (broken / "segmenter.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(ModelLoadError, match="segmenter.safetensors is not a readable safetensors"):
        EditGANModel.from_folder(broken)
    (broken / "segmenter.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="no segmenter.safetensors"):
        EditGANModel.from_folder(broken)
    with pytest.raises(ModelLoadError, match="unknown model"):
        editgan.load("no such model!")


def test_generator_only_model_samples_but_refuses_mask_editing(folder, tmp_path):
    import shutil
    only_g = tmp_path / "g_only"
    shutil.copytree(folder, only_g)
    config = json.loads((only_g / "config.json").read_text())
    config["segmenter"] = None
    (only_g / "config.json").write_text(json.dumps(config))
    (only_g / "segmenter.safetensors").unlink()
    model = EditGANModel.from_folder(only_g)
    sample = model.sample(seed=0)
    assert sample.labels is None
    with pytest.raises(ValueError, match="segmentation branch"):
        model.edit(sample.wplus, np.zeros((32, 32), int), np.ones((32, 32), bool))


def test_image_box_crops_pictures_and_maps(tmp_path):
    boxed = EditGANModel.from_folder(tiny_model_folder(tmp_path / "boxed", with_encoder=False,
                                                       image_box=(8, 0, 16, 32)))
    sample = boxed.sample(seed=0)
    assert sample.image.shape == (16, 32, 3) and sample.labels.shape == (16, 32)
    painted = np.zeros((16, 32), bool)
    painted[4:10, 4:12] = True
    wanted = sample.labels.copy()
    wanted[painted] = 1
    outcome = boxed.edit(sample.wplus, wanted, painted, steps=2)
    assert outcome.image.shape == (16, 32, 3) and outcome.roi.shape == (16, 32)


def test_vector_file_round_trip_and_errors(tmp_path):
    v = EditingVector("wheel_enlarge", np.ones((1, 4, 8), np.float32), classes=[21, 22])
    assert v.delta.shape == (4, 8) and v.display_name == "Wheel enlarge"
    again = EditingVector.load(v.save(tmp_path / "v.safetensors"))
    assert again.classes == [21, 22] and np.array_equal(again.delta, v.delta)
    (tmp_path / "bad.safetensors").write_bytes(b"nope")
    from editgan.errors import VectorError
    with pytest.raises(VectorError, match="not a readable"):
        EditingVector.load(tmp_path / "bad.safetensors")
    with pytest.raises(VectorError, match="shape"):
        again.check_fits(16, 512, 32)


def test_a_vector_write_that_fails_leaves_the_file_it_replaces_whole(tmp_path, monkeypatch):
    """A preset replaced in a model folder, with the disk full halfway: the old preset still loads."""
    first = EditingVector("wider", np.ones((4, 8), np.float32), classes=[1])
    path = first.save(tmp_path / "vectors" / "wider.safetensors")
    write_bytes = Path.write_bytes

    def disk_full(self, data):
        write_bytes(self, data[: len(data) // 2])
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(Path, "write_bytes", disk_full)
    with pytest.raises(OSError, match="No space left"):
        EditingVector("wider", np.full((4, 8), 2, np.float32), classes=[1]).save(path)
    monkeypatch.undo()
    assert np.array_equal(EditingVector.load(path).delta, first.delta)
    assert [f.name for f in path.parent.iterdir()] == ["wider.safetensors"]  # no partial file left


def vector_file(**metadata) -> bytes:
    from safetensors.numpy import save

    fields = {"name": "v", "classes": "[1]", "scale_range": "[-2, 2]", "default_scale": "1", "refine_steps": "5"}
    return save({"delta": np.ones((4, 8), np.float32)}, metadata={**fields, **metadata})


@pytest.mark.parametrize("metadata, message", [
    ({"scale_range": "[-1e30, 1e30]"}, "scale range must go from -100"),
    ({"scale_range": "[-Infinity, Infinity]"}, "scale range must go from -100"),
    ({"scale_range": "[1, 2]"}, "scale range must go from -100"),
    ({"scale_range": "[2, -2]"}, "scale range must go from -100"),
    ({"scale_range": "[1]"}, "scale range must be two numbers"),
    ({"scale_range": "3"}, "scale range must be two numbers"),
    ({"scale_range": "[\"a\", 1]"}, "scale range must be two numbers"),
    ({"default_scale": "nan"}, "default scale must be a number within"),
    ({"refine_steps": "100000"}, "refine steps must be 0 to 500"),
    ({"refine_steps": "-1"}, "refine steps must be 0 to 500"),
    ({"classes": "[\"x\"]"}, "metadata is malformed"),
    ({"classes": json.dumps(list(range(1000)))}, "names 1000 classes; a model has at most 256"),
])
def test_a_vector_files_slider_settings_are_checked(metadata, message):
    """A vector uploaded by a stranger: its slider's range, default, refinement and classes are refused with a
    sentence when out of bounds (a scale of 1e29 made a garbage picture; [1] was an IndexError)."""
    from editgan.errors import VectorError

    with pytest.raises(VectorError, match=message):
        EditingVector.from_bytes(vector_file(**metadata))


def test_a_vector_files_long_label_is_cut_and_its_classes_counted_once():
    v = EditingVector.from_bytes(vector_file(display_name="x" * 5_000_000, classes=json.dumps([3, 1, 3] * 100)))
    assert v.display_name == "x" * 80 and v.classes == [3, 1]
    assert (v.scale_range, v.default_scale, v.refine_steps) == ((-2.0, 2.0), 1.0, 5)


def test_a_model_folders_preset_settings_are_checked(tiny_model_dir, tmp_path):
    import shutil

    from editgan.modelio.checkpoint import read_model

    folder = shutil.copytree(tiny_model_dir, tmp_path / "model")
    config = json.loads((folder / "config.json").read_text())
    config["presets"][0]["scale_range"] = [-1e9, 1e9]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="scale range must go from -100"):
        read_model(folder)


def test_config_format_version_follows_the_generator_fields_it_uses():
    from editgan.errors import ConfigError
    from editgan.modelio.config import GeneratorConfig, ModelConfig
    plain = ModelConfig("plain", GeneratorConfig(16, style_dim=8, n_mlp=1)).to_dict()
    assert plain["format_version"] == 1
    assert "conv_clamp" not in plain["generator"] and "stored_mean_latent" not in plain["generator"]
    assert ModelConfig.from_dict(plain).generator.conv_clamp is None  # a version-1 file loads with the defaults
    nvidia = ModelConfig("nv", GeneratorConfig(16, style_dim=8, n_mlp=1, conv_clamp=256.0,
                                               stored_mean_latent=True)).to_dict()
    assert nvidia["format_version"] == 2 and nvidia["generator"]["conv_clamp"] == 256.0
    again = ModelConfig.from_dict(json.loads(json.dumps(nvidia))).generator
    assert again.conv_clamp == 256.0 and again.stored_mean_latent is True
    with pytest.raises(ConfigError, match="newer than this app understands"):
        ModelConfig.from_dict({**nvidia, "format_version": 3})


@pytest.mark.parametrize("array, described", [(np.int64(3), "an array of shape ()"),
                                              (np.zeros((2, 4, 4), np.int64), "an array of shape (2, 4, 4)"),
                                              (np.zeros((4, 5), np.int64), "5×4")])
def test_a_label_map_array_of_another_shape_is_refused_with_its_shape(tmp_path, array, described):
    from editgan.modelio.picture_files import read_label_map

    np.save(tmp_path / "labels.npy", array)
    with pytest.raises(ImageError, match=rf"the label map is {re.escape(described)}; this model's maps are 8×4"):
        read_label_map(tmp_path / "labels.npy", [(0, 0, 0), (255, 0, 0)], (4, 8))
