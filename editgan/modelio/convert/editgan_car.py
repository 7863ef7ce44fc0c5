"""The official EditGAN car release → a model folder (32 classes, 384×512 picture box, presets).

    python -m editgan convert editgan-car --generator stylegan2-car-config-f.pt --classifiers classifier/ \\
        --vectors editing_vectors/ --encoder BEST_loss2.841871976852417.pth --out models/editgan-car

The generator is a rosinality checkpoint; the segmentation branch is DatasetGAN's pixel classifiers (one file per
ensemble member); the encoder is EditGAN's FPN encoder; the vectors are ``.npy`` arrays. What the release holds is
data in :mod:`editgan.modelio.convert.editgan_car_release`.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import torch

from editgan.colors import parse_color
from editgan.errors import ConversionError, VectorError
from editgan.modelio.checkpoint import ModelParts, check_output_folder, few, shapes_of, write_new_model
from editgan.modelio.config import ModelConfig, SegmenterSettings
from editgan.modelio.convert import editgan_car_release as car
from editgan.modelio.convert.common import (
    Progress,
    StateDict,
    check_keys,
    file_record,
    load_into,
    read_checkpoint,
    reporter,
    strip_prefix,
    tensor_dict,
)
from editgan.modelio.convert.rosinality import convert_generator
from editgan.modelio.vectors import EditingVector
from editgan.networks.fpn_encoder import FPNEncoder, FPNEncoderConfig
from editgan.networks.segmenter import Segmenter

log = logging.getLogger(__name__)


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
    state = strip_prefix(tensor_dict(checkpoint, path, "pixel classifier"))
    if "layers.0.weight" not in state:
        raise ConversionError(f"{path}: not a DatasetGAN pixel classifier (no 'module.layers.0.weight'; keys: "
                              f"{few(sorted(state))})")
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
                              f"{few(k for k in needed if k not in first)}")
    h1, in_channels = (int(s) for s in first["layers.0.weight"].shape)
    h2 = int(first["layers.3.weight"].shape[0])
    if in_channels != sum(feature_channels):
        raise ConversionError(f"{files[0]}: the classifier reads {in_channels} feature channels but the generator "
                              f"gives {sum(feature_channels)} ({len(feature_channels)} maps): wrong generator?")
    settings = SegmenterSettings(n_members=len(files), hidden=(h1, h2), upsample_mode="bilinear")
    segmenter = Segmenter(settings.network_config(tuple(feature_channels), n_classes))
    expected = shapes_of(segmenter)
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
    return settings, load_into(segmenter, merged, files[0].parent, "segmenter")


# -- the FPN encoder ------------------------------------------------------------------------------------------------
def convert_encoder(path: str | Path, n_latent: int, style_dim: int) -> tuple[FPNEncoderConfig, FPNEncoder]:
    path = Path(path)
    checkpoint = read_checkpoint(path)
    if isinstance(checkpoint, Mapping) and "model_state_dict" in checkpoint:
        checkpoint = checkpoint["model_state_dict"]
    state = strip_prefix(tensor_dict(checkpoint, path, "encoder"))
    try:
        config = FPNEncoderConfig.from_state_dict(state)
    except KeyError as e:
        raise ConversionError(f"{path}: not an EditGAN FPN encoder (missing key {e}; keys: {few(sorted(state))})") \
            from e
    if (config.n_latent, config.style_dim) != (n_latent, style_dim):
        raise ConversionError(f"{path}: the encoder predicts w+ of {config.n_latent}×{config.style_dim}, the "
                              f"generator needs {n_latent}×{style_dim}")
    return config, load_into(FPNEncoder(config), state, path, "FPN encoder")


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


def convert_editgan_car(generator: str | Path, classifiers: Iterable[str | Path], out: str | Path,
                        vectors: Iterable[str | Path] = (), encoder: str | Path | None = None,
                        name: str = "editgan-car", overwrite: bool = False,
                        progress: Progress | None = None, license: str | None = None) -> Path:
    """Files in the layout of the official EditGAN car release → a model folder (32 classes, 384×512 picture box,
    presets). ``license``: the files' license; by default the release's, which holds when they are its files."""
    say = reporter(progress)
    out, generator = Path(out), Path(generator)
    check_output_folder(out, overwrite, ConversionError)
    say(f"reading the generator {generator.name}")
    gen_config, g = convert_generator(generator)
    sources = [file_record(generator, "generator (g_ema)")]
    if g.n_latent != car.N_LATENT:
        log.warning("the car release's generator has %d w+ rows; this one has %d", car.N_LATENT, g.n_latent)
    files = classifier_files(classifiers)
    say(f"reading {len(files)} pixel classifiers")
    names = [n for n, _ in car.CLASSES]
    settings, segmenter = convert_classifiers(files, g.feature_channels(), len(names))
    sources += [file_record(p, f"pixel classifier {k}") for k, p in enumerate(files)]
    enc_config = enc = None
    if encoder is not None:
        say(f"reading the encoder {Path(encoder).name}")
        enc_config, enc = convert_encoder(encoder, g.n_latent, g.style_dim)
        sources.append(file_record(Path(encoder), "FPN encoder"))
    npys = vector_files(vectors)
    presets = npy_vectors(npys, car.PRESETS, car.SEMANTIC_IDS, car.SCALE_RANGE, car.DEFAULT_SCALE, car.REFINE_STEPS)
    for v in presets:
        try:
            v.check_fits(g.n_latent, g.style_dim, len(names))
        except VectorError as e:
            raise ConversionError(str(e)) from e
    sources += [file_record(p, f"editing vector {v.name}") for p, v in zip(npys, presets)]
    given = [generator.name, f"{len(files)} pixel classifier file{'s' if len(files) != 1 else ''}"]
    given += [Path(encoder).name] if encoder is not None else []
    given += [f"{len(presets)} editing vector file{'s' if len(presets) != 1 else ''}"] if presets else []
    extra = {"notes": list(car.NOTES), "sources": sources, "tags": ["cars", "datasetgan"]}
    if license is None:
        extra |= {"license_id": car.LICENSE, "license_name": car.LICENSE_NAME, "license_link": car.LICENSE_LINK}
    config = ModelConfig(
        name=name, generator=gen_config, class_names=names, palette=[parse_color(c) for _, c in car.CLASSES],
        segmenter=settings, encoder=enc_config, image_box=car.IMAGE_BOX, truncation=car.TRUNCATION,
        license=car.LICENSE_TEXT if license is None else license,
        provenance=car.provenance(given), extra=extra)
    parts = ModelParts(config, g, segmenter, enc, presets)
    return write_new_model(out, parts, overwrite, say, ConversionError)
