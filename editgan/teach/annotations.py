"""Annotated samples for teaching a segmentation branch: in memory, and as a folder a person can make by hand.

The folder::

    classes.json     {"classes": [{"name": "background", "color": [0, 0, 0]}, ...], "truncation": 0.7}
    <seed>.png       a label map of the model's sample with that seed (its w+ is recomputed: the model's
                     sampling at classes.json's "truncation", else at the model's default truncation)
    <name>.png       a label map of any picture whose w+ is given beside it ...
    <name>.npy       ... as a (n_latent, style_dim) float32 array (numpy.save; no pickles)

A label map is a PNG of the picture's size (the model's picture box). A palette PNG (as written here) holds the
class ids as pixel values; an RGB PNG holds the class colours, each pixel exactly one of classes.json's colours
(anti-aliased strokes are refused, not guessed); a greyscale PNG holds the ids. A ``<seed>.png`` with a
``<seed>.npy`` beside it uses the given w+. The writer puts a w+ beside every map, so a folder it wrote does not
depend on how a model samples.

Every file is checked before anything is trained, and a problem is one line naming the file
(:class:`AnnotationError`): sizes are read from the PNG header before any pixel is decoded, and ``.npy`` files
are read without pickles and refused above a size no latent reaches.
"""
from __future__ import annotations

import io
import json
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from editgan.colors import Color, hex_color, parse_color
from editgan.engine.latents import as_latent
from editgan.engine.model import EditGANModel
from editgan.errors import AnnotationError

log = logging.getLogger(__name__)

CLASSES_FILE = "classes.json"
MAX_SAMPLES = 1000
"""A folder with more label maps than this is refused (the point is a few dozen)."""
MAX_CLASSES = 256
"""A palette PNG holds at most 256 ids."""
MAX_JSON_BYTES = 1 << 20
MAX_NPY_BYTES = 1 << 20
"""The largest w+ (18 × 512 float32) is 37 kB."""
MAX_SIDE = 4096
SEED = re.compile(r"^[0-9]{1,18}$")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass
class AnnotatedSample:
    """One annotated picture: its label map and where its latent comes from (a seed, or the w+ itself)."""
    labels: np.ndarray
    """(h, w) uint8 class ids (a branch has at most :data:`MAX_CLASSES`), the size of the model's pictures: a
    session's 32 annotations of 1024-px pictures keep 32 MB, not the 256 MB of int64."""
    wplus: np.ndarray | None = None
    """(n_latent, style_dim) float32; None until a seed sample's latent is recomputed (:func:`resolve_latents`)."""
    seed: int | None = None
    name: str | None = None

    @property
    def key(self) -> str:
        """The sample's file stem: its name, else its seed."""
        return self.name if self.name is not None else str(self.seed)


@dataclass
class AnnotationSet:
    """The classes and the annotated samples that a branch is taught from."""
    class_names: list[str]
    palette: list[Color]
    samples: list[AnnotatedSample] = field(default_factory=list)
    truncation: float | None = None
    """The truncation at which seed samples are drawn; None: the model's default."""

    def __post_init__(self) -> None:
        check_classes(self.class_names, self.palette, "the class list")
        self.class_names = list(self.class_names)
        self.palette = [tuple(int(v) for v in color) for color in self.palette]
        if self.truncation is not None and not 0.0 <= self.truncation <= 1.0:
            raise AnnotationError(f"truncation must be between 0 and 1, got {self.truncation}")

    @classmethod
    def for_model(cls, model: EditGANModel) -> "AnnotationSet":
        """An empty set with the model's own classes (when it has a branch to correct)."""
        return cls(list(model.config.class_names), [tuple(c) for c in model.config.palette])

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def add(self, labels: np.ndarray, wplus: np.ndarray | None = None, seed: int | None = None,
            name: str | None = None) -> AnnotatedSample:
        """Add a sample (or replace the one with the same seed or name); ``labels`` must hold class ids."""
        if (seed is None) == (name is None):
            raise AnnotationError("a sample has either a seed or a name")
        if seed is not None and not SEED.match(str(seed)):
            raise AnnotationError(f"a seed is a whole number ≥ 0, got {seed!r}")
        if name is not None and not NAME.match(name):
            raise AnnotationError(f"sample name {name!r} must be letters, digits, '.', '_' or '-' (a file name)")
        if name is not None and wplus is None:
            raise AnnotationError(f"sample {name!r} needs its w+ (only seed samples can recompute theirs)")
        labels = np.asarray(labels)
        key = name if name is not None else str(seed)
        if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
            raise AnnotationError(f"sample {key}: a label map is an (h, w) array of class ids")
        if labels.size and (labels.min() < 0 or labels.max() >= self.n_classes):
            raise AnnotationError(f"sample {key}: class ids must be 0..{self.n_classes - 1}, the map holds "
                                  f"{int(labels.min())}..{int(labels.max())}")
        if wplus is not None:
            wplus = as_latent(wplus, error=AnnotationError)
        sample = AnnotatedSample(labels.astype(np.uint8), wplus, None if seed is None else int(seed), name)
        self.samples = [s for s in self.samples if s.key != sample.key] + [sample]
        return sample

    def remove(self, key: str) -> None:
        self.samples = [s for s in self.samples if s.key != key]


def check_classes(names: Sequence[str], palette: Sequence[Color], where: str) -> None:
    """Names unique and non-empty, one distinct colour each, 2..256 classes; else AnnotationError."""
    if len(names) != len(palette):
        raise AnnotationError(f"{where}: {len(names)} names but {len(palette)} colours")
    if not 2 <= len(names) <= MAX_CLASSES:
        raise AnnotationError(f"{where} lists {len(names)} classes; a branch tells 2 to {MAX_CLASSES} apart")
    seen_names, seen_colors = {}, {}
    for i, (name, color) in enumerate(zip(names, palette)):
        if not isinstance(name, str) or not name.strip():
            raise AnnotationError(f"{where}: class {i} has no name")
        if name in seen_names:
            raise AnnotationError(f"{where}: class name {name!r} is used twice (ids {seen_names[name]} and {i})")
        color = tuple(color)
        if color in seen_colors:
            raise AnnotationError(f"{where}: classes {names[seen_colors[color]]!r} and {name!r} have the same "
                                  f"colour {hex_color(color)}")
        seen_names[name], seen_colors[color] = i, i


# -- reading ------------------------------------------------------------------------------------------------------
def read_classes(path: Path) -> tuple[list[str], list[Color], float | None]:
    """classes.json → (names, colours, truncation or None)."""
    if not path.is_file():
        raise AnnotationError(f"the folder has no {CLASSES_FILE} (it lists the classes: "
                              '{"classes": [{"name": "background", "color": [0, 0, 0]}, ...]})')
    if path.stat().st_size > MAX_JSON_BYTES:
        raise AnnotationError(f"{CLASSES_FILE} is {path.stat().st_size} bytes; a class list is far smaller")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise AnnotationError(f"{CLASSES_FILE} is not valid JSON ({e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("classes"), list):
        raise AnnotationError(f'{CLASSES_FILE} must be an object with a "classes" list of {{"name", "color"}}')
    names, palette = [], []
    for i, entry in enumerate(data["classes"]):
        if not isinstance(entry, dict) or "name" not in entry or "color" not in entry:
            raise AnnotationError(f'{CLASSES_FILE}: class {i} must be {{"name": ..., "color": [r, g, b]}}')
        names.append(entry["name"])
        palette.append(_color(entry["color"], f"{CLASSES_FILE}: class {i} ({entry['name']!r})"))
    check_classes(names, palette, CLASSES_FILE)
    truncation = data.get("truncation")
    if truncation is not None:
        if isinstance(truncation, bool) or not isinstance(truncation, (int, float)) \
                or not math.isfinite(truncation) or not 0.0 <= truncation <= 1.0:
            raise AnnotationError(f'{CLASSES_FILE}: "truncation" must be a number from 0 to 1, got {truncation!r}')
        truncation = float(truncation)
    return names, palette, truncation


def _color(value, where: str) -> Color:
    if isinstance(value, (list, tuple)) and (len(value) != 3 or not all(
            isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in value)):
        raise AnnotationError(f"{where}: a colour is [r, g, b] with each 0..255, got {value!r}")
    try:
        return parse_color(value)
    except (TypeError, ValueError):
        raise AnnotationError(f'{where}: a colour is [r, g, b] or "#rrggbb", got {value!r}') from None


def read_annotations(folder: str | Path, size: tuple[int, int] | None = None,
                     latent_shape: tuple[int, int] | None = None) -> AnnotationSet:
    """An annotation folder, every file checked: label maps of ``size`` (h, w) (else all of the first one's),
    latents of ``latent_shape``. Seed samples without a ``.npy`` come back with ``wplus`` None
    (:func:`resolve_latents` draws them)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise AnnotationError(f"{folder.name or folder} is not a folder")
    names, palette, truncation = read_classes(folder / CLASSES_FILE)
    maps = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png" and p.is_file())
    if not maps:
        raise AnnotationError(f"{folder.name} holds no label maps (<seed>.png, or <name>.png beside <name>.npy)")
    if len(maps) > MAX_SAMPLES:
        raise AnnotationError(f"{folder.name} holds {len(maps)} label maps; at most {MAX_SAMPLES} are read")
    stems = {p.stem for p in maps}
    for stray in sorted(p.name for p in folder.glob("*.npy") if p.stem not in stems):
        log.warning("annotations: %s has no label map beside it; not used", stray)
    annotations = AnnotationSet(names, palette, truncation=truncation)
    for path in maps:
        npy = path.with_suffix(".npy")
        if not npy.is_file() and not SEED.match(path.stem):
            raise AnnotationError(f"{path.name}: {path.stem!r} is not a seed (a whole number) and there is no "
                                  f"{path.stem}.npy beside it holding its w+")
        labels = read_label_map(path, palette, size, "this model's pictures are" if size else "the first map is")
        size = size or labels.shape
        wplus = read_wplus(npy, latent_shape) if npy.is_file() else None
        if SEED.match(path.stem):
            annotations.add(labels, wplus, seed=int(path.stem))
        else:
            annotations.add(labels, wplus, name=_checked_name(path))
    annotations.samples.sort(key=_order)
    return annotations


def _checked_name(path: Path) -> str:
    if not NAME.match(path.stem):
        raise AnnotationError(f"{path.name}: a sample name must be letters, digits, '.', '_' or '-'")
    return path.stem


def _order(sample: AnnotatedSample) -> tuple:
    return (0, sample.seed, "") if sample.name is None else (1, 0, sample.name)


def read_label_map(path: Path, palette: Sequence[Color], size: tuple[int, int] | None,
                   expected: str = "this model's pictures are") -> np.ndarray:
    """One label map file → (h, w) int64 class ids; the size comes from the header and is checked first."""
    try:
        with Image.open(path, formats=["PNG"]) as image:
            width, height = image.size
            if size is not None and (height, width) != tuple(size):
                raise AnnotationError(f"{path.name}: the label map is {width}×{height}; {expected} "
                                      f"{size[1]}×{size[0]}")
            if max(width, height) > MAX_SIDE:
                raise AnnotationError(f"{path.name}: {width}×{height} is larger than any model's pictures")
            image.load()
            return _class_ids(image, palette, path.name)
    except AnnotationError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise AnnotationError(f"{path.name}: not a readable PNG") from None


def _class_ids(image: Image.Image, palette: Sequence[Color], name: str) -> np.ndarray:
    colors = np.asarray(palette, dtype=np.int64)
    if image.mode in ("L", "I", "I;16"):  # greyscale: the values are the ids
        return _checked_ids(np.asarray(image).astype(np.int64), len(palette), name)
    if image.mode == "P":
        image_palette = np.asarray(image.getpalette() or [], dtype=np.int64).reshape(-1, 3)
        indices = np.asarray(image).astype(np.int64)
        if np.array_equal(image_palette[:len(palette)], colors):
            return _checked_ids(indices, len(palette), name)  # our own palette PNG: the values are the class ids
        _checked_ids(indices, len(image_palette), name, "entry of the PNG's palette")
        codes = _codes(image_palette)[indices]
    else:
        if "A" in image.getbands() and (alpha := np.asarray(image.getchannel("A"))).min() < 255:
            raise AnnotationError(f"{name}: {int((alpha < 255).sum())} pixels are (partly) transparent; every "
                                  "pixel needs a class colour")
        codes = _codes(np.asarray(image.convert("RGB")).astype(np.int64))
    return _ids_of_codes(codes, colors, name)


def _codes(rgb: np.ndarray) -> np.ndarray:
    """(…, 3) colours → (…) int codes 0xRRGGBB."""
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def _ids_of_codes(codes: np.ndarray, colors: np.ndarray, name: str) -> np.ndarray:
    used, inverse, counts = np.unique(codes, return_inverse=True, return_counts=True)
    known = {int(c): i for i, c in enumerate(_codes(colors))}
    unknown = [(int(c), int(n)) for c, n in zip(used, counts) if int(c) not in known]
    if unknown:
        unknown.sort(key=lambda item: -item[1])
        code, count = unknown[0]
        more = (f" (and {len(unknown) - 1} more colours, {sum(n for _, n in unknown[1:])} pixels)"
                if len(unknown) > 1 else "")
        raise AnnotationError(f"{name}: colour #{code:06x} ({count} pixels) is not one of classes.json's "
                              f"colours{more}")
    lookup = np.asarray([known[int(c)] for c in used], dtype=np.int64)
    return lookup[inverse].reshape(codes.shape)


def _checked_ids(ids: np.ndarray, n: int, name: str, what: str = "class id") -> np.ndarray:
    """``ids`` when all are 0..n-1; else an error naming the commonest wrong value and its pixel count."""
    wrong = (ids < 0) | (ids >= n)
    if wrong.any():
        values, counts = np.unique(ids[wrong], return_counts=True)
        order = np.argsort(-counts, kind="stable")
        values, counts = values[order], counts[order]
        more = f" (and {len(values) - 1} more values, {int(counts[1:].sum())} pixels)" if len(values) > 1 else ""
        limit = f"classes.json lists 0..{n - 1}" if what == "class id" else f"it has {n} entries"
        raise AnnotationError(f"{name}: value {values[0]} ({counts[0]} pixels) is not a {what} ({limit}){more}")
    return ids


def read_wplus(path: Path, shape: tuple[int, int] | None) -> np.ndarray:
    """A ``.npy`` w+ (no pickles, bounded size) of ``shape`` when given."""
    if path.stat().st_size > MAX_NPY_BYTES:
        raise AnnotationError(f"{path.name} is {path.stat().st_size} bytes; a w+ latent is far smaller")
    try:
        array = np.load(io.BytesIO(path.read_bytes()), allow_pickle=False)
    except (ValueError, OSError, EOFError):
        raise AnnotationError(f"{path.name}: not a .npy array (save the w+ with numpy.save; pickles are not "
                              "read)") from None
    if shape is not None and array.shape not in (tuple(shape), (1, *shape)):
        raise AnnotationError(f"{path.name}: holds an array of shape {array.shape}; this model's w+ is "
                              f"{tuple(shape)}")
    try:
        return as_latent(array, shape, error=AnnotationError)
    except AnnotationError as e:
        raise AnnotationError(f"{path.name}: {e}") from None


def resolve_latents(annotations: AnnotationSet, model: EditGANModel) -> AnnotationSet:
    """Draw the w+ of every seed sample that has none, as the model samples it (at the set's truncation, else
    the model's default), in place; returns the set."""
    for sample in annotations.samples:
        if sample.wplus is None:
            sample.wplus = model.sample_latent(sample.seed, annotations.truncation)
    return annotations


def load_annotations(folder: str | Path, model: EditGANModel) -> AnnotationSet:
    """An annotation folder checked against ``model`` (picture size, w+ shape), every latent present."""
    _, _, height, width = model.config.box
    annotations = read_annotations(folder, (height, width), (model.n_latent, model.style_dim))
    return resolve_latents(annotations, model)


# -- writing ------------------------------------------------------------------------------------------------------
def write_annotations(folder: str | Path, annotations: AnnotationSet, overwrite: bool = False) -> Path:
    """Write the set in the folder format (palette PNGs, a w+ beside every map that has one, classes.json).

    An existing non-empty folder is replaced only with ``overwrite`` and only if it is an annotation folder
    (holds classes.json); its old label maps and latents are removed first."""
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        if not overwrite:
            raise AnnotationError(f"{folder.name} exists and is not empty (overwrite to replace it)")
        if not (folder / CLASSES_FILE).is_file():
            raise AnnotationError(f"{folder.name} is not empty and is not an annotation folder; not replaced")
        for old in list(folder.glob("*.png")) + list(folder.glob("*.npy")):
            old.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CLASSES_FILE).write_text(classes_json(annotations), encoding="utf-8")
    flat_palette = [v for color in annotations.palette for v in color]
    for sample in annotations.samples:
        image = Image.fromarray(sample.labels, "P")
        image.putpalette(flat_palette)
        image.save(folder / f"{sample.key}.png")
        if sample.wplus is not None:
            np.save(folder / f"{sample.key}.npy", np.asarray(sample.wplus, dtype=np.float32))
    return folder


def classes_json(annotations: AnnotationSet) -> str:
    """classes.json's text: one class a line, so that a person can read and edit it."""
    rows = [json.dumps({"name": n, "color": list(c)}, ensure_ascii=False)
            for n, c in zip(annotations.class_names, annotations.palette)]
    text = '{"classes": [\n  ' + ",\n  ".join(rows) + "\n]"
    if annotations.truncation is not None:
        text += f', "truncation": {json.dumps(annotations.truncation)}'
    return text + "}\n"
