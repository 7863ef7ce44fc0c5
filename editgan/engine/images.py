"""Images at the engine's edges: decoding user uploads safely, and converting between uint8 pictures and tensors."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from editgan.errors import ImageError

MAX_PIXELS = 40_000_000
"""Larger uploads are refused before decoding (a 50 MP photo would take seconds and GBs for nothing)."""
MIN_SIDE = 16
PHOTO_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")
"""What an upload may be (JPEG includes the MPO files of many phone cameras); Pillow would otherwise open any
format it knows, EPS included, whose decoding runs Ghostscript."""
HIGH_DEPTH_ROWS = 512
"""Rows of a 16/32-bit picture scaled at once (the whole of a 40 MP one in float64 was a gigabyte)."""



def load_image(source: str | Path | bytes | np.ndarray | Image.Image) -> Image.Image:
    """Open and validate a picture → RGB PIL image (EXIF rotation applied; gray, alpha, CMYK, palette handled)."""
    if isinstance(source, Image.Image):
        image = source
    elif isinstance(source, np.ndarray):
        image = _from_array(source)
    else:
        data = source if isinstance(source, bytes) else _read(Path(source))
        try:
            image = Image.open(io.BytesIO(data), formats=PHOTO_FORMATS)
            _check_size(image.size)
            image.load()
        except ImageError:
            raise
        except Image.DecompressionBombError as e:
            raise ImageError(f"the image is too large to open safely ({e})") from e
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
            raise ImageError("this file is not a readable image (PNG, JPEG, WebP, …); it may be corrupt") from e
    _check_size(image.size)
    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # noqa: BLE001 - a damaged EXIF block fails in many ways: the photo is kept as stored
        pass
    return _to_rgb(image)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise ImageError(f"cannot read {path.name}: {e.strerror or e}") from e


def _from_array(array: np.ndarray) -> Image.Image:
    if array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (1, 3, 4)):
        if array.dtype != np.uint8:
            if not np.isfinite(array).all():
                raise ImageError("the image holds NaN or infinite values")
            array = np.clip(array, 0, 255).astype(np.uint8)
        return Image.fromarray(array.squeeze(-1) if array.ndim == 3 and array.shape[2] == 1 else array)
    raise ImageError(f"an image array must be (H, W), (H, W, 3) or (H, W, 4), got shape {array.shape}")


def _check_size(size: tuple[int, int]) -> None:
    width, height = size
    if width * height > MAX_PIXELS:
        raise ImageError(f"the image is {width}×{height} ({width * height / 1e6:.0f} MP); the limit is "
                         f"{MAX_PIXELS / 1e6:.0f} MP: downscale it first")
    if min(width, height) < MIN_SIDE:
        raise ImageError(f"the image is {width}×{height}; it needs at least {MIN_SIDE} px on each side")


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))  # transparent areas become white
        return Image.alpha_composite(white, rgba).convert("RGB")
    if image.mode.startswith("I") or image.mode == "F":
        return _high_depth_to_rgb(image)
    return image.convert("RGB")  # L, CMYK, YCbCr, P …


def _high_depth_to_rgb(image: Image.Image) -> Image.Image:
    """16-bit and 32-bit grayscale (PIL modes I;16, I, F) → 8-bit RGB. PIL's own conversion clips such values to
    255, which turns a 16-bit photo white; the values are scaled instead: 16-bit integers by 1/257, floats in [0, 1]
    by 255, anything else by its own maximum."""
    values = np.asarray(image)
    top = float(values.max()) if values.size else 0.0
    if image.mode == "F" and top <= 1.0:
        scale = 255.0
    elif top <= 255:
        scale = 1.0
    elif top <= 65535:
        scale = 255.0 / 65535.0
    else:
        scale = 255.0 / top
    gray = np.empty(values.shape, np.uint8)
    for start in range(0, len(values), HIGH_DEPTH_ROWS):
        rows = values[start:start + HIGH_DEPTH_ROWS].astype(np.float64)
        gray[start:start + HIGH_DEPTH_ROWS] = np.clip(np.round(rows * scale), 0, 255)
    return Image.fromarray(gray, "L").convert("RGB")


def crop(image: Image.Image, box: tuple[int, int, int, int] | None) -> Image.Image:
    """Crop to (left, top, right, bottom) in pixels, clipped to the picture; None keeps it whole."""
    if box is None:
        return image
    left, top, right, bottom = (int(round(v)) for v in box)
    left, top = max(0, left), max(0, top)
    right, bottom = min(image.width, right), min(image.height, bottom)
    if right - left < MIN_SIDE or bottom - top < MIN_SIDE:
        raise ImageError(f"the crop box is too small (needs at least {MIN_SIDE}×{MIN_SIDE} px inside the picture)")
    return image.crop((left, top, right, bottom))


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) raw generator output (about −1..1) → (N, H, W, 3) uint8, as EditGAN converts it."""
    return (images.detach() * 127.5 + 128).clamp(0, 255).floor().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def to_tensor(image: Image.Image | np.ndarray) -> torch.Tensor:
    """uint8 RGB picture → (1, 3, H, W) float in [−1, 1]."""
    array = np.asarray(image, dtype=np.float32)
    return torch.from_numpy(array).permute(2, 0, 1)[None] / 127.5 - 1


def square_box(width: int, height: int, size: float = 1.0, x: float = 0.5, y: float = 0.5
               ) -> tuple[int, int, int, int]:
    """A square crop box (left, top, right, bottom) inside a width × height picture.

    ``size`` is the side as a fraction of the shorter side (0 < size ≤ 1); ``x`` and ``y`` place the box from the
    left/top edge (0) through the centre (0.5) to the right/bottom edge (1), so every value gives a valid box.
    """
    for name, value, lo in (("size", size, 1e-6), ("x", x, 0.0), ("y", y, 0.0)):
        if not (isinstance(value, (int, float)) and np.isfinite(value) and lo <= value <= 1.0):
            raise ImageError(f"the crop {name} must be a fraction between 0 and 1 (size above 0), got {value!r}")
    side = max(1, int(round(size * min(width, height))))
    left = int(round((width - side) * x))
    top = int(round((height - side) * y))
    return left, top, left + side, top + side
