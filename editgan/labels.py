"""Label maps: palettes, label map ↔ RGB, snapping painted colors to classes, and the edit's region of interest."""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

Color = tuple[int, int, int]


def hex_color(rgb: Sequence[int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*(int(c) for c in rgb))


def parse_color(value: str | Sequence[int]) -> Color:
    """'#rrggbb' or (r, g, b) → (r, g, b)."""
    if isinstance(value, str):
        v = value.lstrip("#")
        if len(v) != 6:
            raise ValueError(f"not a #rrggbb color: {value!r}")
        return int(v[0:2], 16), int(v[2:4], 16), int(v[4:6], 16)
    r, g, b = (int(c) for c in value)
    return r, g, b


def colorize(labels: np.ndarray, palette: Sequence[Color]) -> np.ndarray:
    """(H, W) class ids → (H, W, 3) uint8 RGB."""
    table = np.asarray(palette, dtype=np.uint8)
    if labels.size and labels.max() >= len(table):
        raise ValueError(f"label {int(labels.max())} has no palette color ({len(table)} classes)")
    return table[labels]


def snap_to_palette(rgb: np.ndarray, palette: Sequence[Color]) -> np.ndarray:
    """(H, W, 3) colors → (H, W) ids of the nearest palette color (painted pixels may be antialiased)."""
    table = np.asarray(palette, dtype=np.int32)
    diff = rgb[..., None, :3].astype(np.int32) - table[None, None]
    return np.argmin((diff * diff).sum(-1), axis=-1).astype(np.int64)


def painted_layer_to_labels(layer_rgba: np.ndarray, palette: Sequence[Color], alpha_threshold: int = 128
                            ) -> tuple[np.ndarray, np.ndarray]:
    """A transparent paint layer (H, W, 4) → (painted mask (H, W) bool, class id of each painted pixel)."""
    if layer_rgba.ndim != 3 or layer_rgba.shape[2] != 4:
        raise ValueError(f"a paint layer must be RGBA (H, W, 4), got shape {layer_rgba.shape}")
    painted = layer_rgba[..., 3] >= alpha_threshold
    return painted, snap_to_palette(layer_rgba[..., :3], palette)


def apply_paint(old_labels: np.ndarray, painted: np.ndarray, painted_ids: np.ndarray) -> np.ndarray:
    """The label map the user asks for: the old map with the painted pixels replaced."""
    new = old_labels.copy()
    new[painted] = painted_ids[painted]
    return new


def dilate(mask: torch.Tensor, pixels: int) -> torch.Tensor:
    """Grow a boolean (H, W) mask by ``pixels`` with a square structuring element (like cv2.dilate with 3×3)."""
    if pixels <= 0:
        return mask
    grown = F.max_pool2d(mask[None, None].float(), kernel_size=2 * pixels + 1, stride=1, padding=pixels)
    return grown[0, 0] > 0


def edited_classes(old_labels: np.ndarray, new_labels: np.ndarray, painted: np.ndarray) -> list[int]:
    """Classes the user painted with (the colors they picked), like EditGAN's eyedropper selections."""
    return sorted(int(c) for c in np.unique(new_labels[painted]))


def region_of_interest(old_labels: torch.Tensor, new_labels: torch.Tensor, painted: torch.Tensor | None,
                       classes: Iterable[int], dilation: int = 3) -> torch.Tensor:
    """Pixels an edit may change: painted ∪ pixels of the edited classes in the old and new maps, dilated.

    All arguments are (H, W) tensors on one device; returns a boolean (H, W) mask.
    """
    roi = torch.zeros_like(old_labels, dtype=torch.bool) if painted is None else painted.bool().clone()
    for c in classes:
        roi |= (old_labels == c) | (new_labels == c)
    return dilate(roi, dilation)


def flatten_layers(layers: Sequence[np.ndarray]) -> np.ndarray | None:
    """Paint layers (H, W, 4) uint8, bottom first → one RGBA layer (later layers cover earlier ones); None if none."""
    from PIL import Image

    flat: Image.Image | None = None
    for layer in layers:
        if layer is None:
            continue
        array = np.asarray(layer)
        if array.ndim != 3 or array.shape[2] != 4:
            raise ValueError(f"a paint layer must be RGBA (H, W, 4), got shape {array.shape}")
        image = Image.fromarray(array.astype(np.uint8), "RGBA")
        if flat is None:
            flat = image
        else:
            flat = Image.alpha_composite(flat, image.resize(flat.size, Image.NEAREST))
    return None if flat is None else np.asarray(flat)


def difference_layer(composite: np.ndarray, background: np.ndarray, tolerance: int = 24) -> np.ndarray:
    """A paint layer from a flattened canvas: the composite's pixels that differ from the background, opaque.

    For clients that send only the composite (the painted picture) and no layers. ``tolerance`` absorbs lossy
    encodings: a pixel counts as painted when a channel differs by more than it.
    """
    from PIL import Image

    comp = np.asarray(composite)[..., :3].astype(np.int16)
    back = np.asarray(background)[..., :3]
    if back.shape[:2] != comp.shape[:2]:
        back = np.asarray(Image.fromarray(back.astype(np.uint8)).resize(comp.shape[1::-1], Image.NEAREST))
    changed = np.abs(comp - back.astype(np.int16)).max(-1) > tolerance
    layer = np.zeros((*comp.shape[:2], 4), dtype=np.uint8)
    layer[..., :3] = comp.astype(np.uint8)
    layer[..., 3] = np.where(changed, 255, 0)
    return layer


def downscale_paint(layer_rgba: np.ndarray, shape: tuple[int, int], palette: Sequence[Color],
                    alpha_threshold: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """A paint layer drawn on an enlarged canvas → (painted mask, class ids), both (h, w) = ``shape``.

    The canvas shows the label map enlarged k times (nearest neighbour); the layer is brought to exactly k·h × k·w
    (nearest) if it is not, each pixel is snapped to the nearest palette color and its alpha thresholded, and then
    each k × k block becomes one label pixel: painted when at least half of the block is painted, with the most
    frequent class among the block's painted pixels (ties go to the lower class id).
    """
    from PIL import Image

    h, w = shape
    layer = np.asarray(layer_rgba)
    if layer.ndim != 3 or layer.shape[2] != 4:
        raise ValueError(f"a paint layer must be RGBA (H, W, 4), got shape {layer.shape}")
    k = max(1, int(round(layer.shape[0] / h)))
    if layer.shape[:2] != (k * h, k * w):
        layer = np.asarray(Image.fromarray(layer.astype(np.uint8), "RGBA").resize((k * w, k * h), Image.NEAREST))
    painted, ids = painted_layer_to_labels(layer, palette, alpha_threshold)
    blocks = painted.reshape(h, k, w, k).sum(axis=(1, 3))
    painted_small = 2 * blocks >= k * k
    votes = np.stack([((ids == c) & painted).reshape(h, k, w, k).sum(axis=(1, 3)) for c in range(len(palette))])
    return painted_small, np.argmax(votes, axis=0).astype(np.int64)
