"""A rendering as files, and files back into the engine: the one export the app, its API and the CLI share.

    image.png    the picture
    labels.png   its label map as a palette PNG: pixel values are the class ids, shown in the class colors
    wplus.npy    the w+ latent, (n_latent, style_dim) float32

Reading checks sizes before decoding, so a file from a stranger costs bounded memory.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from editgan.colors import Color, snap_to_palette
from editgan.errors import ImageError

IMAGE_FILE, LABELS_FILE, LATENT_FILE = "image.png", "labels.png", "wplus.npy"
MAX_NPY_BYTES = 16 * 2**20
"""A w+ latent of the largest generator (18 × 512 float32) is 37 kB, a 1024² label map of int64 8 MB; a .npy file
above this is refused unread."""


def write_rendering(folder: str | Path, image: np.ndarray, labels: np.ndarray | None, palette: Sequence[Color],
                    wplus: np.ndarray) -> list[Path]:
    """Write the picture, its label map (when the model has one) and its latent into ``folder``; their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / IMAGE_FILE]
    Image.fromarray(image).save(written[0])
    if labels is not None:
        written.append(folder / LABELS_FILE)
        label_image = Image.fromarray(labels.astype(np.uint8), "P")
        label_image.putpalette([v for color in palette for v in color])
        label_image.save(written[-1])
    written.append(folder / LATENT_FILE)
    np.save(written[-1], np.asarray(wplus, dtype=np.float32))
    return written


def read_latent(source: str | Path | bytes) -> np.ndarray:
    """A ``.npy`` latent (no pickles), refused when larger than any latent can be; check its shape with
    ``engine.latents.as_latent``."""
    return _read_npy(source, "latent")


def _read_npy(source: str | Path | bytes, what: str) -> np.ndarray:
    if isinstance(source, bytes):
        data = source
    else:
        path = Path(source)
        try:
            if path.stat().st_size > MAX_NPY_BYTES:
                raise ImageError(f"{path.name} is {path.stat().st_size / 2**20:.0f} MB; a {what} is far smaller")
            data = path.read_bytes()
        except OSError as e:
            raise ImageError(f"cannot read the {what} file {path.name}: {e.strerror or e}") from None
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise ImageError(f"not a .npy {what} file ({type(e).__name__}): save it with numpy.save") from None


def read_label_map(source: str | Path | bytes, palette: Sequence[Color], shape: tuple[int, int]) -> np.ndarray:
    """A label map file → (h, w) class ids. A ``.npy`` holds the ids; a PNG is a palette PNG whose values are the
    ids or a picture in the class colors (each pixel snapped to the nearest class color). It must be ``shape``."""
    if isinstance(source, (str, Path)) and Path(source).suffix.lower() == ".npy":
        ids = _read_npy(source, "label map")
    else:
        ids = _ids_from_image(source, palette, shape)
    if ids.shape != tuple(shape):
        size = f"{ids.shape[1]}×{ids.shape[0]}" if ids.ndim == 2 else f"an array of shape {ids.shape}"
        raise ImageError(f"the label map is {size}; this model's maps are {shape[1]}×{shape[0]}")
    if not np.issubdtype(ids.dtype, np.integer) or ids.min() < 0 or ids.max() >= len(palette):
        raise ImageError(f"the label map must hold class ids 0..{len(palette) - 1}")
    return ids.astype(np.int64)


def _ids_from_image(source: str | Path | bytes, palette: Sequence[Color], shape: tuple[int, int]) -> np.ndarray:
    try:
        image = Image.open(io.BytesIO(source) if isinstance(source, bytes) else Path(source), formats=["PNG"])
        if image.size != (shape[1], shape[0]):  # from the header: nothing of another size is decoded
            raise ImageError(f"the label map is {image.width}×{image.height}; this model's maps are "
                             f"{shape[1]}×{shape[0]}")
        if image.mode == "P" and _palette_of(image)[: len(palette)] == [tuple(c) for c in palette]:
            return np.asarray(image)
        if image.mode in ("L", "I;16", "I"):  # gray values: class ids, as the Teach tab's annotation files hold them
            ids = np.asarray(image)
            if ids.size and 0 <= ids.min() and ids.max() < len(palette):
                return ids
        return snap_to_palette(np.asarray(image.convert("RGB")), palette)
    except ImageError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"the label map is not a readable PNG ({type(e).__name__})") from None


def _palette_of(image: Image.Image) -> list[tuple[int, ...]]:
    flat = image.getpalette() or []
    return [tuple(flat[i:i + 3]) for i in range(0, len(flat), 3)]
