"""Checkpoints from the wild → an EditGAN Studio model folder (config.json, *.safetensors, vectors/, README.md).

    python -m editgan convert editgan-car --generator stylegan2-car-config-f.pt --classifiers classifier/ \\
        --vectors editing_vectors/ --encoder BEST_loss2.841871976852417.pth --out models/editgan-car
    python -m editgan convert rosinality --checkpoint 550000.pt --size 256 --out models/my-gan
    python -m editgan convert nvidia --checkpoint ffhq.pkl --out models/ffhq   (see editgan/nvidia_pickle.py)

Foreign ``.pt``/``.pth`` files are read with ``torch.load(weights_only=True)`` (no code from the file runs) and every
key is mapped explicitly; a file whose keys do not fit raises :class:`ConversionError` naming the file and the
missing or unexpected keys. The output holds safetensors only, and is loaded once before the converter returns,
so a folder that converts is a folder that loads.
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import re
import shutil
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import torch

from .config import GeneratorConfig, ModelConfig, PresetInfo, SegmenterSettings
from .labels import parse_color
from .model_card import NO_SEGMENTER_NOTE, write_model_card
from .networks.fpn_encoder import FPNEncoder, FPNEncoderConfig
from .networks.segmenter import Segmenter, SegmenterConfig
from .networks.stylegan2 import Generator, default_channels
from .presets import editgan_car as car
from .vectors import EditingVector, VectorError

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
StateDict = dict[str, torch.Tensor]


class ConversionError(ValueError):
    """A foreign checkpoint cannot be converted; the message names the file and what does not fit."""


# -- reading foreign files ----------------------------------------------------------------------------------------
def read_checkpoint(path: str | Path) -> Any:
    """``torch.load(path, weights_only=True, map_location="cpu")``.

    ``argparse.Namespace`` is allowed as well: rosinality's training checkpoints store their command line under
    ``"args"``, and a namespace is plain data. Anything else that is not tensors and containers is refused.
    """
    import pickle

    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"{path}: no such file")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as e:
        detail = str(e).split("WeightsUnpickler error:")[-1].strip()
        reason = detail.splitlines()[0] if detail else type(e).__name__
        if "global" not in reason.lower():
            raise ConversionError(f"{path}: not a readable PyTorch checkpoint (corrupt or truncated?): {reason}") from e
        raise ConversionError(f"{path}: holds Python objects other than tensors, which weights-only loading refuses "
                              f"({reason}). Re-save just the state dict from an environment you trust, e.g. "
                              f"torch.save(ckpt['g_ema'], 'g_ema.pt').") from e
    except (RuntimeError, OSError, EOFError, ValueError) as e:
        raise ConversionError(f"{path}: not a readable PyTorch checkpoint (corrupt or truncated?): "
                              f"{type(e).__name__}: {e}") from e


def _tensor_dict(obj: Any, path: Path, what: str) -> StateDict:
    if not isinstance(obj, Mapping) or not obj:
        raise ConversionError(f"{path}: expected a {what} state dict, found {type(obj).__name__}")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not torch.is_tensor(v)]
    if bad:
        raise ConversionError(f"{path}: the {what} state dict holds non-tensor entries {_few(map(str, bad))}")
    return dict(obj)


def _strip_prefix(state: StateDict, prefix: str = "module.") -> StateDict:
    """Remove DataParallel's ``module.`` from every key (when all keys carry it)."""
    if state and all(k.startswith(prefix) for k in state):
        return {k[len(prefix):]: v for k, v in state.items()}
    return state


def _few(items: Iterable[str], n: int = 6) -> str:
    items = list(items)
    return ", ".join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")


def check_keys(path: Path, what: str, expected: Mapping[str, tuple[int, ...]], state: Mapping[str, torch.Tensor]
               ) -> None:
    """Raise if ``state`` has other keys than ``expected`` or a tensor of another shape."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {tuple(state[k].shape)} (expected {tuple(expected[k])})" for k in expected
             if k in state and tuple(state[k].shape) != tuple(expected[k])]
    if missing or unexpected or wrong:
        parts = ([f"missing keys {_few(missing)}"] if missing else []) + \
                ([f"unexpected keys {_few(unexpected)}"] if unexpected else []) + \
                ([f"wrong shapes {_few(wrong)}"] if wrong else [])
        raise ConversionError(f"{path}: the {what} does not fit: " + "; ".join(parts))


def _shapes(module: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def _load_into(module: torch.nn.Module, state: StateDict, path: Path, what: str) -> torch.nn.Module:
    check_keys(path, what, _shapes(module), state)
    module.load_state_dict(state, strict=True)
    return module


def _file_record(path: Path, role: str) -> dict:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"role": role, "file": path.name, "bytes": path.stat().st_size, "sha256": digest.hexdigest()}


# -- StyleGAN2 generator (rosinality layout) ----------------------------------------------------------------------
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
                                  f"{_few(sorted(state))})")
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
        return _strip_prefix(_tensor_dict(checkpoint["g_ema"], path, "g_ema"))
    if isinstance(checkpoint, Mapping) and "style.1.weight" in _strip_prefix(
            {k: v for k, v in checkpoint.items() if isinstance(k, str)}):
        return _strip_prefix(_tensor_dict(checkpoint, path, "generator"))
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
    expected = _shapes(generator)
    keys = rosinality_generator_keys(config.n_mlp, config.size.bit_length() - 1)
    if set(keys) != set(expected):
        raise RuntimeError("internal: our generator's state dict no longer follows rosinality's layout")
    check_keys(path, "StyleGAN2 generator (g_ema)", {k: expected[k] for k in keys}, state)
    generator.load_state_dict({k: state[k] for k in keys}, strict=True)
    return config, generator


# -- DatasetGAN pixel classifiers -----------------------------------------------------------------------------------
_CLASSIFIER_NAME = re.compile(r"^(?:car_)?model_(?:iter(\d+)_number_)?(\d+)\.pth$")
_CLASSIFIER_LAYERS = {  # DatasetGAN's pixel_classifier: Linear → ReLU → BN → Linear → ReLU → BN → Linear
    0: ("weight", "bias"), 2: ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"),
    3: ("weight", "bias"), 5: ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"),
    6: ("weight", "bias")}


def classifier_files(sources: Iterable[str | Path]) -> list[Path]:
    """Files as given, or, for a folder, its ``car_model_{k}.pth`` (or ``model_{k}.pth``) files ordered by k."""
    files: list[Path] = []
    for source in sources:
        source = Path(source)
        if source.is_dir():
            found = []
            for p in source.iterdir():
                m = _CLASSIFIER_NAME.match(p.name)
                if m:
                    found.append((m.group(1) or "", int(m.group(2)), p))
            iterations = {it for it, _, _ in found}
            if len(iterations) > 1:
                raise ConversionError(f"{source}: classifiers of several training iterations "
                                      f"({', '.join(sorted(i or '0' for i in iterations))}); pass the files to use")
            if not found:
                raise ConversionError(f"{source}: no classifier files (car_model_<k>.pth or model_<k>.pth)")
            files += [p for _, _, p in sorted(found, key=lambda t: t[1])]
        elif source.is_file():
            files.append(source)
        else:
            raise ConversionError(f"{source}: no such file or folder")
    return files


def classifier_state(path: Path) -> StateDict:
    """One DatasetGAN classifier file → its ``layers.*`` state dict (``module.`` removed)."""
    checkpoint = read_checkpoint(path)
    if isinstance(checkpoint, Mapping) and "model_state_dict" in checkpoint:
        checkpoint = checkpoint["model_state_dict"]
    state = _strip_prefix(_tensor_dict(checkpoint, path, "pixel classifier"))
    if "layers.0.weight" not in state:
        raise ConversionError(f"{path}: not a DatasetGAN pixel classifier (no 'module.layers.0.weight'; keys: "
                              f"{_few(sorted(state))})")
    return state


def convert_classifiers(files: list[Path], feature_channels: list[int], n_classes: int
                        ) -> tuple[SegmenterSettings, Segmenter]:
    """DatasetGAN classifier files → our Segmenter: ``layers.*`` of file k becomes ``members.k.layers.*``."""
    if not files:
        raise ConversionError("no classifier files given")
    states = [classifier_state(p) for p in files]
    first = states[0]
    needed = [f"layers.{i}.weight" for i in (0, 3, 6)]
    if any(k not in first for k in needed):
        raise ConversionError(f"{files[0]}: not a DatasetGAN pixel classifier: missing keys "
                              f"{_few(k for k in needed if k not in first)}")
    h1, in_channels = (int(s) for s in first["layers.0.weight"].shape)
    h2 = int(first["layers.3.weight"].shape[0])
    if in_channels != sum(feature_channels):
        raise ConversionError(f"{files[0]}: the classifier reads {in_channels} feature channels but the generator "
                              f"gives {sum(feature_channels)} ({len(feature_channels)} maps): wrong generator?")
    settings = SegmenterSettings(n_members=len(files), hidden=(h1, h2), upsample_mode="bilinear")
    segmenter = Segmenter(SegmenterConfig(tuple(feature_channels), n_classes, settings.n_members, settings.hidden,
                                          settings.upsample_mode))
    expected = _shapes(segmenter)
    merged: StateDict = {}
    for k, (path, state) in enumerate(zip(files, states)):
        member = {f"layers.{i}.{p}": expected[f"members.{k}.layers.{i}.{p}"]
                  for i, params in _CLASSIFIER_LAYERS.items() for p in params}
        state = dict(state)
        for i in (2, 5):  # checkpoints from torch < 0.4.1 have no BN step counter; it does not affect eval
            state.setdefault(f"layers.{i}.num_batches_tracked", torch.tensor(0, dtype=torch.long))
        if "layers.6.weight" in state and int(state["layers.6.weight"].shape[0]) != n_classes:
            raise ConversionError(f"{path}: the classifier predicts {int(state['layers.6.weight'].shape[0])} "
                                  f"classes, the model has {n_classes}")
        check_keys(path, f"pixel classifier {k}", member, state)
        merged |= {f"members.{k}.{name}": value for name, value in state.items()}
    return settings, _load_into(segmenter, merged, files[0].parent, "segmenter")


# -- the FPN encoder ------------------------------------------------------------------------------------------------
def convert_encoder(path: str | Path, n_latent: int, style_dim: int) -> tuple[FPNEncoderConfig, FPNEncoder]:
    path = Path(path)
    checkpoint = read_checkpoint(path)
    if isinstance(checkpoint, Mapping) and "model_state_dict" in checkpoint:
        checkpoint = checkpoint["model_state_dict"]
    state = _strip_prefix(_tensor_dict(checkpoint, path, "encoder"))
    try:
        config = FPNEncoderConfig.from_state_dict(state)
    except KeyError as e:
        raise ConversionError(f"{path}: not an EditGAN FPN encoder (missing key {e}; keys: {_few(sorted(state))})") \
            from e
    if (config.n_latent, config.style_dim) != (n_latent, style_dim):
        raise ConversionError(f"{path}: the encoder predicts w+ of {config.n_latent}×{config.style_dim}, the "
                              f"generator needs {n_latent}×{style_dim}")
    return config, _load_into(FPNEncoder(config), state, path, "FPN encoder")


# -- editing vectors --------------------------------------------------------------------------------------------------
def vector_files(sources: Iterable[str | Path]) -> list[Path]:
    """``.npy`` files as given, or those in a folder (sorted by name)."""
    files: list[Path] = []
    for source in sources:
        source = Path(source)
        if source.is_dir():
            files += sorted(source.glob("*.npy"))
        elif source.is_file():
            files.append(source)
        else:
            raise ConversionError(f"{source}: no such file or folder")
    return files


def npy_vectors(files: Iterable[Path], known: list[dict], semantic_ids: Mapping[str, list[int]],
                scale_range: tuple[float, float], default_scale: float, refine_steps: int) -> list[EditingVector]:
    """EditGAN ``.npy`` vectors ((1, n_latent, dim) float32) → EditingVectors; classes from ``known`` by name, else
    by the release's rule (the name up to its first "_" looked up in ``semantic_ids``)."""
    by_name = {p["name"]: p for p in known}
    vectors = []
    for path in files:
        try:
            delta = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as e:
            raise ConversionError(f"{path}: not a readable .npy array: {e}") from e
        name = path.stem
        info = by_name.get(name)
        if info is not None:
            classes, display = info["classes"], info["display_name"]
        else:
            classes, display = semantic_ids.get(name.split("_")[0], []), ""
            if not classes:
                log.warning("%s: no classes known for this vector; it can be applied but not refined", path.name)
        try:
            vectors.append(EditingVector(name, delta, classes, display, scale_range, default_scale,
                                         refine_steps if classes else 0))
        except VectorError as e:
            raise ConversionError(f"{path}: {e}") from e
    return vectors


# -- writing a folder -------------------------------------------------------------------------------------------------
def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not overwrite:
            raise ConversionError(f"{out} exists and is not empty (pass --overwrite to replace it)")
        if not (out / "config.json").is_file():
            raise ConversionError(f"{out} is not empty and is not a model folder; refusing to replace it")


def _save_module(module: torch.nn.Module, path: Path) -> None:
    from safetensors.torch import save_file
    save_file({k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}, str(path))


def _write(out: Path, overwrite: bool, config: ModelConfig, generator: Generator, segmenter: Segmenter | None,
           encoder: torch.nn.Module | None, vectors: list[EditingVector], say: Progress) -> Path:
    """Write into ``<out>.partial``, load it back, then move it to ``out``: a failed conversion leaves nothing."""
    _check_out(out, overwrite)
    partial = out.with_name(out.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    try:
        say(f"writing {out}")
        config.save(partial)
        _save_module(generator, partial / "generator.safetensors")
        if segmenter is not None:
            _save_module(segmenter, partial / "segmenter.safetensors")
        if encoder is not None:
            _save_module(encoder, partial / "encoder.safetensors")
        for vector in vectors:
            vector.save(partial / "vectors" / f"{vector.name}.safetensors")
        write_model_card(partial, config, overwrite=True)
        say("checking that the converted folder loads")
        from .model import EditGANModel
        EditGANModel.from_folder(partial, device="cpu")
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    partial.rename(out)
    return out


def _say(progress: Progress | None) -> Progress:
    def say(message: str) -> None:
        log.info(message)
        if progress is not None:
            progress(message)
    return say


def convert_editgan_car(generator: str | Path, classifiers: Iterable[str | Path], out: str | Path,
                        vectors: Iterable[str | Path] = (), encoder: str | Path | None = None,
                        name: str = "editgan-car", overwrite: bool = False,
                        progress: Progress | None = None) -> Path:
    """The official EditGAN car release → a model folder (32 classes, 384×512 picture box, presets)."""
    say = _say(progress)
    out, generator = Path(out), Path(generator)
    _check_out(out, overwrite)
    say(f"reading the generator {generator.name}")
    gen_config, g = convert_generator(generator)
    sources = [_file_record(generator, "generator (g_ema)")]
    if g.n_latent != car.N_LATENT:
        log.warning("the car release's generator has %d w+ rows; this one has %d", car.N_LATENT, g.n_latent)
    files = classifier_files(classifiers)
    say(f"reading {len(files)} pixel classifiers")
    names = [n for n, _ in car.CLASSES]
    settings, segmenter = convert_classifiers(files, g.feature_channels(), len(names))
    sources += [_file_record(p, f"pixel classifier {k}") for k, p in enumerate(files)]
    enc_config = enc = None
    if encoder is not None:
        say(f"reading the encoder {Path(encoder).name}")
        enc_config, enc = convert_encoder(encoder, g.n_latent, g.style_dim)
        sources.append(_file_record(Path(encoder), "FPN encoder"))
    npys = vector_files(vectors)
    presets = npy_vectors(npys, car.PRESETS, car.SEMANTIC_IDS, car.SCALE_RANGE, car.DEFAULT_SCALE, car.REFINE_STEPS)
    for v in presets:
        try:
            v.check_fits(g.n_latent, g.style_dim, len(names))
        except VectorError as e:
            raise ConversionError(str(e)) from e
    sources += [_file_record(p, f"editing vector {v.name}") for p, v in zip(npys, presets)]
    config = ModelConfig(
        name=name, generator=gen_config, class_names=names, palette=[parse_color(c) for _, c in car.CLASSES],
        segmenter=settings, encoder=enc_config.to_dict() if enc_config else None, image_box=car.IMAGE_BOX,
        truncation=car.TRUNCATION,
        presets=[PresetInfo(v.name, v.display_name, v.scale_range, v.default_scale, v.refine_steps) for v in presets],
        license=car.LICENSE_TEXT, provenance=car.PROVENANCE,
        extra={"license_id": car.LICENSE, "license_name": car.LICENSE_NAME, "license_link": car.LICENSE_LINK,
               "notes": list(car.NOTES), "sources": sources, "tags": ["cars", "datasetgan"]})
    return _write(out, overwrite, config, g, segmenter, enc, presets, say)


def convert_rosinality(checkpoint: str | Path, out: str | Path, size: int | None = None,
                       channel_multiplier: int | None = None, name: str | None = None, license: str = "unknown",
                       license_link: str | None = None, truncation: float = 0.7, overwrite: bool = False,
                       progress: Progress | None = None) -> Path:
    """A rosinality stylegan2-pytorch checkpoint → a generator-only model folder (sampling and embedding work;
    mask editing needs a segmentation branch, which such a checkpoint does not have)."""
    say = _say(progress)
    checkpoint, out = Path(checkpoint), Path(out)
    _check_out(out, overwrite)
    if not 0.0 <= truncation <= 1.0:
        raise ConversionError(f"truncation must be between 0 and 1, got {truncation}")
    say(f"reading the generator {checkpoint.name}")
    gen_config, g = convert_generator(checkpoint, size, channel_multiplier)
    extra: dict = {"notes": [NO_SEGMENTER_NOTE], "sources": [_file_record(checkpoint, "generator (g_ema)")]}
    if license_link:
        extra["license_link"] = license_link
    config = ModelConfig(
        name=name or out.name, generator=gen_config, truncation=truncation, license=license,
        provenance=f"Converted with `python -m editgan convert rosinality` from {checkpoint.name} "
                   f"(rosinality stylegan2-pytorch layout, checkpoint['g_ema']).", extra=extra)
    return _write(out, overwrite, config, g, None, None, [], say)


# -- command line ---------------------------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> Path:
    def progress(message: str) -> None:
        print(message, flush=True)

    if args.format == "editgan-car":
        return convert_editgan_car(args.generator, args.classifiers, args.out, args.vectors, args.encoder, args.name,
                                   args.overwrite, progress)
    if args.format == "nvidia":
        from .nvidia_pickle import convert_nvidia  # imports this module: loaded only when asked for
        return convert_nvidia(args.checkpoint, args.out, args.name, args.license, args.license_link, args.truncation,
                              tuple(args.image_box) if args.image_box else None, args.overwrite, progress)
    return convert_rosinality(args.checkpoint, args.out, args.size, args.channel_multiplier, args.name, args.license,
                              args.license_link, args.truncation, args.overwrite, progress)
