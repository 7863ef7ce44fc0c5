"""rosinality stylegan2-pytorch checkpoints (``checkpoint["g_ema"]``) → a generator-only model folder.

    python -m editgan convert rosinality --checkpoint 550000.pt --size 256 --out models/my-gan

Our generator has rosinality's module tree, so every key maps to itself; the list below makes the check exact.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

from editgan.errors import ConversionError
from editgan.modelio.checkpoint import ModelParts, few, shapes_of, write_new_model
from editgan.modelio.config import GeneratorConfig, ModelConfig
from editgan.modelio.convert.common import (
    Progress,
    StateDict,
    begin_conversion,
    check_keys,
    file_record,
    read_checkpoint,
    strip_prefix,
    tensor_dict,
)
from editgan.modelio.model_card import NO_SEGMENTER_NOTE
from editgan.networks.stylegan2 import Generator, default_channels

log = logging.getLogger(__name__)


def rosinality_generator_keys(n_mlp: int, log_size: int) -> list[str]:
    """Every key of rosinality's ``Generator.state_dict()``, in module order: the mapping from the foreign layout.

    Our generator uses the same module tree, so each key maps to itself; listing them makes the check exact.
    """
    keys = [f"style.{i}.{p}" for i in range(1, n_mlp + 1) for p in ("weight", "bias")]
    keys.append("input.input")

    def styled_conv(prefix: str, upsample: bool) -> list[str]:
        out = [f"{prefix}.conv.weight"]
        if upsample:
            out.append(f"{prefix}.conv.blur.kernel")
        return out + [f"{prefix}.conv.modulation.weight", f"{prefix}.conv.modulation.bias",
                      f"{prefix}.noise.weight", f"{prefix}.activate.bias"]

    def to_rgb(prefix: str, upsample: bool) -> list[str]:
        return ([f"{prefix}.upsample.kernel"] if upsample else []) + [
            f"{prefix}.conv.weight", f"{prefix}.conv.modulation.weight", f"{prefix}.conv.modulation.bias",
            f"{prefix}.bias"]

    keys += styled_conv("conv1", False) + to_rgb("to_rgb1", False)
    for i in range(2 * (log_size - 2)):
        keys += styled_conv(f"convs.{i}", upsample=i % 2 == 0)
    for k in range(log_size - 2):
        keys += to_rgb(f"to_rgbs.{k}", True)
    keys += [f"noises.noise_{i}" for i in range(2 * (log_size - 2) + 1)]
    return keys


def _count(state: Mapping[str, Any], pattern: str, start: int = 0) -> int:
    i = start
    while pattern.format(i) in state:
        i += 1
    return i - start


def infer_generator_config(state: StateDict, path: Path, size: int | None = None,
                           channel_multiplier: int | None = None, lr_mlp: float = 0.01) -> GeneratorConfig:
    """Size, style_dim, n_mlp and channel widths from a g_ema state dict's shapes, checked against the arguments."""
    for key in ("style.1.weight", "input.input", "conv1.conv.weight", "to_rgbs.0.conv.weight"):
        if key not in state:
            raise ConversionError(f"{path}: not a rosinality StyleGAN2 generator (no {key!r}; keys: "
                                  f"{few(sorted(state))})")
    style_dim = int(state["style.1.weight"].shape[1])
    n_mlp = _count(state, "style.{}.weight", start=1)
    log_size = _count(state, "to_rgbs.{}.conv.weight") + 2
    inferred = 2 ** log_size
    if size is not None and int(size) != inferred:
        raise ConversionError(f"{path}: --size {size} does not match the checkpoint, whose generator is "
                              f"{inferred}×{inferred} ({log_size - 2} upsampling blocks)")
    channels = {4: int(state["input.input"].shape[1])}
    for k in range(log_size - 2):
        key = f"convs.{2 * k}.conv.weight"
        if key not in state:
            raise ConversionError(f"{path}: generator state dict lacks {key!r}")
        channels[2 ** (k + 3)] = int(state[key].shape[1])
    kernel = state.get("convs.0.conv.blur.kernel")
    if kernel is not None and tuple(kernel.shape) != (4, 4):
        raise ConversionError(f"{path}: blur kernel of shape {tuple(kernel.shape)}; only the standard 4-tap "
                              f"[1, 3, 3, 1] kernel is supported")
    matches = [cm for cm in (1, 2, 4) if all(default_channels(cm)[r] == c for r, c in channels.items())]
    if channel_multiplier is not None and matches and channel_multiplier not in matches:
        raise ConversionError(f"{path}: --channel-multiplier {channel_multiplier} does not match the checkpoint, "
                              f"whose widths {channels} are those of multiplier {matches[0]}")
    if channel_multiplier is not None and not matches:
        raise ConversionError(f"{path}: --channel-multiplier {channel_multiplier} does not match the checkpoint, "
                              f"whose widths {channels} are not a standard multiplier's")
    if matches:
        cm = channel_multiplier if channel_multiplier is not None else (2 if 2 in matches else matches[0])
        return GeneratorConfig(size=inferred, style_dim=style_dim, n_mlp=n_mlp, channel_multiplier=cm,
                               lr_mlp=lr_mlp)
    return GeneratorConfig(size=inferred, style_dim=style_dim, n_mlp=n_mlp, channels=channels, lr_mlp=lr_mlp)


def generator_state(checkpoint: Any, path: Path) -> StateDict:
    """The ``g_ema`` state dict of a rosinality checkpoint (other entries are dropped), or the dict itself when the
    file is a bare generator state dict."""
    if isinstance(checkpoint, Mapping) and "g_ema" in checkpoint:
        dropped = sorted(str(k) for k in checkpoint if k != "g_ema")
        if dropped:
            log.info("%s: using 'g_ema'; ignoring %s", path.name, ", ".join(dropped))
        return strip_prefix(tensor_dict(checkpoint["g_ema"], path, "g_ema"))
    if isinstance(checkpoint, Mapping) and "style.1.weight" in strip_prefix(
            {k: v for k, v in checkpoint.items() if isinstance(k, str)}):
        return strip_prefix(tensor_dict(checkpoint, path, "generator"))
    keys = sorted(map(str, checkpoint)) if isinstance(checkpoint, Mapping) else type(checkpoint).__name__
    raise ConversionError(f"{path}: no 'g_ema' generator in this checkpoint (found {keys}); expected a rosinality "
                          f"stylegan2-pytorch checkpoint")


def convert_generator(path: str | Path, size: int | None = None, channel_multiplier: int | None = None
                      ) -> tuple[GeneratorConfig, Generator]:
    """Read a rosinality checkpoint and return its generator config and our Generator holding its weights."""
    path = Path(path)
    state = generator_state(read_checkpoint(path), path)
    config = infer_generator_config(state, path, size, channel_multiplier)
    generator = Generator(**config.kwargs())
    expected = shapes_of(generator)
    keys = rosinality_generator_keys(config.n_mlp, config.size.bit_length() - 1)
    if set(keys) != set(expected):
        raise RuntimeError("internal: our generator's state dict no longer follows rosinality's layout")
    check_keys(path, "StyleGAN2 generator (g_ema)", {k: expected[k] for k in keys}, state)
    generator.load_state_dict({k: state[k] for k in keys}, strict=True)
    return config, generator


def convert_rosinality(checkpoint: str | Path, out: str | Path, size: int | None = None,
                       channel_multiplier: int | None = None, name: str | None = None, license: str = "unknown",
                       license_link: str | None = None, truncation: float = 0.7, overwrite: bool = False,
                       progress: Progress | None = None) -> Path:
    """A rosinality stylegan2-pytorch checkpoint → a generator-only model folder (sampling and embedding work;
    mask editing needs a segmentation branch, which such a checkpoint does not have)."""
    say, checkpoint, out = begin_conversion(checkpoint, out, overwrite, truncation, progress)
    say(f"reading the generator {checkpoint.name}")
    gen_config, g = convert_generator(checkpoint, size, channel_multiplier)
    extra: dict = {"notes": [NO_SEGMENTER_NOTE], "sources": [file_record(checkpoint, "generator (g_ema)")]}
    if license_link:
        extra["license_link"] = license_link
    config = ModelConfig(
        name=name or out.name, generator=gen_config, truncation=truncation, license=license,
        provenance=f"Converted with `python -m editgan convert rosinality` from {checkpoint.name} "
                   f"(rosinality stylegan2-pytorch layout, checkpoint['g_ema']).", extra=extra)
    return write_new_model(out, ModelParts(config, g), overwrite, say, ConversionError)
