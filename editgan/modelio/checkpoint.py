"""The one reader and the one writer of the checkpoint layout (a local folder or a downloaded Hub snapshot):

    config.json                  ModelConfig: generator, classes + palette, segmenter, encoder, presets, ...
    generator.safetensors        rosinality ``g_ema`` keys
    segmenter.safetensors        members.K.layers.*  (only when config.json describes a segmenter)
    encoder.safetensors          only when config.json describes an encoder
    vectors/<name>.safetensors   the presets config.json lists
    README.md                    model card

Weights are read with safetensors only and checked key by key before anything is loaded, so a file that does not fit
the config gives one message naming the file and the keys. Converters, the toy pipeline, Teach and
``EditGANModel.save_pretrained`` all write through :func:`write_model`.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping

import torch

from editgan.errors import ConfigError, EditGANError, ModelLoadError, VectorError
from editgan.modelio.config import EncoderSettings, ModelConfig, PresetInfo
from editgan.modelio.model_card import write_model_card
from editgan.modelio.vectors import EditingVector
from editgan.networks.encoder import EncoderConfig, LatentEncoder
from editgan.networks.fpn_encoder import FPNEncoder
from editgan.networks.segmenter import Segmenter
from editgan.networks.stylegan2 import Generator

Shapes = Mapping[str, tuple[int, ...]]


@dataclass
class ModelParts:
    """The networks and settings of one model folder, on the CPU, before an engine puts them on a device."""
    config: ModelConfig
    generator: Generator
    segmenter: Segmenter | None = None
    encoder: torch.nn.Module | None = None
    presets: list[EditingVector] = field(default_factory=list)


# -- strict loading ---------------------------------------------------------------------------------------------------
def few(items: Iterable[str], n: int = 6) -> str:
    """The first ``n`` items joined, and how many more there are: for messages that name keys."""
    items = list(items)
    return ", ".join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")


def shapes_of(module: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def state_mismatch(expected: Shapes, state: Mapping[str, torch.Tensor]) -> str | None:
    """What keeps ``state`` from fitting ``expected`` (missing and unexpected keys, wrong shapes), or None."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {tuple(state[k].shape)} (expected {tuple(expected[k])})" for k in expected
             if k in state and tuple(state[k].shape) != tuple(expected[k])]
    parts = ([f"missing keys {few(missing)}"] if missing else []) + \
            ([f"unexpected keys {few(unexpected)}"] if unexpected else []) + \
            ([f"wrong shapes {few(wrong)}"] if wrong else [])
    return "; ".join(parts) or None


def load_strict(module: torch.nn.Module, state: Mapping[str, torch.Tensor], failure: str,
                error: type[EditGANError] = ModelLoadError) -> torch.nn.Module:
    """Load ``state`` into ``module`` after checking every key and shape; a mismatch raises ``error`` with the
    message ``"<failure>: <what does not fit>"``."""
    problem = state_mismatch(shapes_of(module), state)
    if problem:
        raise error(f"{failure}: {problem}")
    module.load_state_dict(dict(state), strict=True)
    return module


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """A safetensors file's tensors; a clear ModelLoadError when it is missing or unreadable."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise ModelLoadError(f"the model folder has no {path.name}")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise ModelLoadError(f"{path.name} is not a readable safetensors file (corrupt or truncated?): {e}") from e


def _load_file(module: torch.nn.Module, path: Path) -> torch.nn.Module:
    return load_strict(module, read_weights(path), f"{path.name} does not fit the model in config.json")


# -- building networks from a config ----------------------------------------------------------------------------------
def build_encoder(settings: EncoderSettings) -> torch.nn.Module:
    """The encoder that config.json's ``encoder`` entry describes."""
    try:
        return LatentEncoder(settings) if isinstance(settings, EncoderConfig) else FPNEncoder(settings)
    except (TypeError, ValueError) as e:
        raise ModelLoadError(f"config.json's encoder entry is malformed: {e}") from e


def build_segmenter(config: ModelConfig, generator: Generator) -> Segmenter:
    return Segmenter(config.segmenter.network_config(tuple(generator.feature_channels()), config.n_classes))


def preset_info(vector: EditingVector) -> PresetInfo:
    return PresetInfo(vector.name, vector.display_name, vector.scale_range, vector.default_scale, vector.refine_steps)


# -- reading ----------------------------------------------------------------------------------------------------------
def read_config(folder: Path) -> ModelConfig:
    try:
        return ModelConfig.load(folder)
    except ConfigError as e:
        raise ModelLoadError(str(e)) from e


def read_model(folder: str | Path) -> ModelParts:
    """Every part of a model folder, checked and loaded on the CPU (raises ModelLoadError saying what is wrong)."""
    folder = Path(folder)
    config = read_config(folder)
    generator = _load_file(Generator(**config.generator.kwargs()), folder / "generator.safetensors")
    segmenter = None
    if config.segmenter is not None:
        if not (folder / "segmenter.safetensors").is_file():
            raise ModelLoadError("config.json describes a segmenter but the model folder has no segmenter.safetensors")
        segmenter = _load_file(build_segmenter(config, generator), folder / "segmenter.safetensors")
    encoder = None
    if config.encoder is not None:
        encoder = _load_file(build_encoder(config.encoder), folder / "encoder.safetensors")
    presets = []
    for info in config.presets:
        try:
            vector = EditingVector.load(folder / "vectors" / f"{info.name}.safetensors")
            vector.set_slider(info.display_name, info.scale_range, info.default_scale, info.refine_steps)
            vector.check_fits(generator.n_latent, generator.style_dim, config.n_classes)
        except VectorError as e:
            raise ModelLoadError(f"preset {info.name!r}: {e}") from e
        presets.append(vector)
    return ModelParts(config, generator, segmenter, encoder, presets)


# -- writing ----------------------------------------------------------------------------------------------------------
def module_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A module's tensors as safetensors wants them: detached, on the CPU, contiguous."""
    return {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}


def _readable_mode() -> int:
    """The mode a new file gets under the process's umask (safetensors writes through a private temp file)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def save_weights(module: torch.nn.Module, path: Path) -> None:
    from safetensors.torch import save_file

    save_file(module_state(module), str(path))
    os.chmod(path, _readable_mode())


def write_model(folder: str | Path, parts: ModelParts, overwrite_card: bool = False) -> Path:
    """Write ``parts`` in the checkpoint layout into ``folder`` (created if needed).

    config.json lists exactly ``parts.presets`` (the caller's config is not changed). The model card is written when
    the folder has none, or always with ``overwrite_card``. Files of parts the model lacks are removed, so the folder
    never holds a segmenter or encoder that config.json does not describe.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = dataclasses.replace(parts.config, presets=[preset_info(v) for v in parts.presets])
    config.save(folder)
    os.chmod(folder / "config.json", _readable_mode())
    save_weights(parts.generator, folder / "generator.safetensors")
    for name, module in (("segmenter", parts.segmenter), ("encoder", parts.encoder)):
        path = folder / f"{name}.safetensors"
        if module is not None:
            save_weights(module, path)
        elif path.exists():
            path.unlink()
    for vector in parts.presets:
        vector.save(folder / "vectors" / f"{vector.name}.safetensors")
    write_model_card(folder, config, overwrite=overwrite_card)
    return folder


def write_new_model(out: str | Path, parts: ModelParts, overwrite: bool = False,
                    say: Callable[[str], None] = lambda message: None, error: type[EditGANError] = ModelLoadError
                    ) -> Path:
    """Write a complete model folder all or nothing: into ``<out>.partial``, read back with :func:`read_model`, then
    moved to ``out``. A failure leaves ``out`` as it was. ``overwrite`` replaces an existing model folder (never a
    folder that is not one)."""
    out = Path(out)
    check_output_folder(out, overwrite, error)
    partial = out.with_name(out.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    try:
        say(f"writing {out}")
        write_model(partial, parts, overwrite_card=True)
        say("checking that the new folder loads")
        read_model(partial)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    partial.rename(out)
    return out


def add_preset(folder: str | Path, vector: EditingVector) -> Path:
    """Make ``vector`` a preset of the model folder: ``vectors/<name>.safetensors``, listed in config.json with its
    display name, scale range and refine steps (a preset of the same name is replaced). The vector must fit the
    folder's generator and classes; config.json is replaced in one rename. Returns the vector's file."""
    folder = Path(folder)
    config = read_config(folder)
    vector.check_fits(config.generator.n_latent, config.generator.style_dim, config.n_classes)
    path = vector.save(folder / "vectors" / f"{vector.name}.safetensors")
    os.chmod(path, _readable_mode())
    names = [p.name for p in config.presets]
    presets = list(config.presets)
    if vector.name in names:  # replaced where it was: the sliders keep their order
        presets[names.index(vector.name)] = preset_info(vector)
    else:
        presets.append(preset_info(vector))
    partial = folder / "config.json.partial"
    partial.write_text(json.dumps(dataclasses.replace(config, presets=presets).to_dict(), indent=1) + "\n")
    os.chmod(partial, _readable_mode())
    partial.replace(folder / "config.json")
    return path


def check_output_folder(out: Path, overwrite: bool, error: type[EditGANError] = ModelLoadError) -> None:
    """Refuse to write over a non-empty folder unless ``overwrite`` and it is a model folder."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not overwrite:
            raise error(f"{out} exists and is not empty (pass --overwrite to replace it)")
        if not (out / "config.json").is_file():
            raise error(f"{out} is not empty and is not a model folder; refusing to replace it")
