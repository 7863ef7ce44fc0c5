"""A config.json from a stranger cannot make the loader allocate without bound: it is refused before any network is
built, in one line that names what it asked for."""
from __future__ import annotations

import json

import pytest

from editgan.errors import ModelLoadError
from editgan.modelio.checkpoint import read_model
from editgan.modelio.config import GeneratorConfig, ModelConfig, SegmenterSettings


def write_config(folder, **changes) -> None:
    config = ModelConfig("big", GeneratorConfig(64, style_dim=64, n_mlp=2), class_names=["a", "b"],
                         palette=[(0, 0, 0), (255, 0, 0)], segmenter=SegmenterSettings(2, (8, 8))).to_dict()
    for path, value in changes.items():
        target = config
        *parents, key = path.split(".")
        for parent in parents:
            target = target[parent]
        target[key] = value
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize("changes, message", [
    ({"generator.size": 4096}, "a generator of size 4096; this app allows at most 1024"),
    ({"generator.size": 100}, "must be a power of two"),
    ({"generator.style_dim": 100_000}, "style_dim 100000"),
    ({"generator.n_mlp": 500}, "mapping layers 500"),
    ({"generator.channels": {str(4 * 2**i): 4096 for i in range(5)}}, "channel widths up to 4096"),
    ({"generator.size": 1024, "generator.style_dim": 1024, "generator.channels":
      {str(4 * 2**i): 1024 for i in range(9)}}, "M parameters"),
    ({"segmenter.n_members": 1000}, "segmenter members: 1000"),
    ({"segmenter.hidden": [100_000, 8]}, "hidden widths up to 100000"),
    ({"image_box": [0, 0, 128, 64]}, "not inside the 64×64 canvas"),
])
def test_configs_that_ask_too_much_are_refused_before_anything_is_built(tmp_path, changes, message):
    write_config(tmp_path / "m", **changes)
    with pytest.raises(ModelLoadError, match=message.replace("(", r"\(")) as info:
        read_model(tmp_path / "m")  # no weights in the folder: the refusal comes first
    assert "\n" not in str(info.value)


def test_too_many_classes_are_refused(tmp_path):
    config = ModelConfig("many", GeneratorConfig(64, style_dim=64, n_mlp=2), class_names=[f"c{i}" for i in range(300)],
                         palette=[(i % 256, 0, 0) for i in range(300)]).to_dict()
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="classes: 300"):
        read_model(tmp_path)


def test_published_generators_are_within_the_limits():
    for config in (GeneratorConfig(1024), GeneratorConfig(512), GeneratorConfig(256, channel_multiplier=1)):
        assert config.parameter_estimate() < 40_000_000
