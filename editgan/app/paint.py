"""Paint decoding for the app's canvas: the editor's paint layers (drawn on an enlarged label map) → the painted
pixels and their class ids at label-map resolution. No model here: colors are snapped to the model's palette."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image

from editgan.colors import Color, colorize, snap_to_palette


def painted_layer_to_labels(layer_rgba: np.ndarray, palette: Sequence[Color], alpha_threshold: int = 128
                            ) -> tuple[np.ndarray, np.ndarray]:
    """A transparent paint layer (H, W, 4) → (painted mask (H, W) bool, class id of each painted pixel)."""
    if layer_rgba.ndim != 3 or layer_rgba.shape[2] != 4:
        raise ValueError(f"a paint layer must be RGBA (H, W, 4), got shape {layer_rgba.shape}")
    painted = layer_rgba[..., 3] >= alpha_threshold
    return painted, snap_to_palette(layer_rgba[..., :3], palette)


def flatten_layers(layers: Sequence[np.ndarray]) -> np.ndarray | None:
    """Paint layers (H, W, 4) uint8, bottom first → one RGBA layer (later layers cover earlier ones); None if none."""
    flat: Image.Image | None = None
    for layer in layers:
        if layer is None:
            continue
        array = np.asarray(layer)
        if array.ndim != 3 or array.shape[2] != 4:
            raise ValueError(f"a paint layer must be RGBA (H, W, 4), got shape {array.shape}")
        image = Image.fromarray(array.astype(np.uint8), "RGBA")
        if flat is not None and image.size != flat.size:
            raise ValueError(f"paint layers of different sizes ({flat.width}×{flat.height} and "
                             f"{image.width}×{image.height}): reload the page and paint again")
        flat = image if flat is None else Image.alpha_composite(flat, image)
    return None if flat is None else np.asarray(flat)


def difference_layer(composite: np.ndarray, background: np.ndarray, tolerance: int = 24) -> np.ndarray:
    """A paint layer from a flattened canvas: the composite's pixels that differ from the background, opaque.

    For clients that send only the composite (the painted picture) and no layers. ``tolerance`` absorbs lossy
    encodings: a pixel counts as painted when a channel differs by more than it.
    """
    comp = np.asarray(composite)[..., :3].astype(np.int16)
    back = np.asarray(background)[..., :3]
    if back.shape[:2] != comp.shape[:2]:
        raise ValueError(f"the canvas's composite is {comp.shape[1]}×{comp.shape[0]} but its background is "
                         f"{back.shape[1]}×{back.shape[0]}: reload the page and paint again")
    changed = np.abs(comp - back.astype(np.int16)).max(-1) > tolerance
    layer = np.zeros((*comp.shape[:2], 4), dtype=np.uint8)
    layer[..., :3] = comp.astype(np.uint8)
    layer[..., 3] = np.where(changed, 255, 0)
    return layer


def check_canvas_size(picture: np.ndarray, shape: tuple[int, int], k: int, what: str = "paint layer") -> None:
    """A layer, background or composite must be the canvas: the label map ``shape`` enlarged ``k`` times."""
    h, w = shape
    if tuple(picture.shape[:2]) != (k * h, k * w):
        raise ValueError(f"the {what} is {picture.shape[1]}×{picture.shape[0]} but the canvas is {k * w}×{k * h}: "
                         f"reload the page and paint again")


def downscale_paint(layer_rgba: np.ndarray, shape: tuple[int, int], palette: Sequence[Color], k: int,
                    alpha_threshold: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """A paint layer drawn on the canvas (the label map enlarged ``k`` times) → (painted mask, class ids), both
    (h, w) = ``shape``.

    Each pixel is snapped to the nearest palette color and its alpha thresholded, and then each k × k block becomes
    one label pixel: painted when at least half of the block is painted, with the most frequent class among the
    block's painted pixels (ties go to the lower class id). A layer of another size than the canvas is refused.
    """
    h, w = shape
    layer = np.asarray(layer_rgba)
    if layer.ndim != 3 or layer.shape[2] != 4:
        raise ValueError(f"a paint layer must be RGBA (H, W, 4), got shape {layer.shape}")
    check_canvas_size(layer, shape, k)
    painted, ids = painted_layer_to_labels(layer, palette, alpha_threshold)
    blocks = painted.reshape(h, k, w, k).sum(axis=(1, 3))
    painted_small = 2 * blocks >= k * k
    # the vote, one painted class at a time (a stack of every class's counts was classes × canvas)
    best_votes, best_ids = np.zeros((h, w), np.int64), np.zeros((h, w), np.int64)
    for c in np.unique(ids[painted]):
        votes = ((ids == c) & painted).reshape(h, k, w, k).sum(axis=(1, 3))
        wins = votes > best_votes  # ascending ids and a strict win: ties stay with the lower id
        best_votes[wins], best_ids[wins] = votes[wins], c
    return painted_small, best_ids


def decode_canvas(canvas: dict | None, labels: np.ndarray, palette: Sequence[Color], k: int, require: bool = True
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The editor's value (``layers``, ``background``, ``composite``) over the label map ``labels`` shown enlarged
    ``k`` times → (painted mask, class ids) at label-map resolution. Raises ValueError when nothing is painted, or,
    without ``require``, returns an empty mask."""
    shape = labels.shape
    if not canvas and not require:
        return np.zeros(shape, dtype=bool), np.zeros(shape, dtype=np.int64)
    if not canvas:
        raise ValueError("nothing painted: pick a class color and paint on the label map where it should change")
    layer = flatten_layers([x for x in (canvas.get("layers") or []) if x is not None])
    painted = np.zeros(shape, dtype=bool)
    ids = np.zeros(shape, dtype=np.int64)
    if layer is not None:
        painted, ids = downscale_paint(layer, shape, palette, k)
    if not painted.any() and canvas.get("composite") is not None:
        # a client that sends no layers: the paint is where its composite differs from its background
        composite = np.asarray(canvas["composite"])
        check_canvas_size(composite, shape, k, "canvas")
        background = canvas.get("background")
        if background is None:
            background = np.repeat(np.repeat(colorize(labels, palette), k, axis=0), k, axis=1)
        painted, ids = downscale_paint(difference_layer(composite, background), shape, palette, k)
    if not painted.any() and require:
        raise ValueError(f"nothing painted: pick a class color and paint on the label map where it should change "
                         f"(each label pixel is {k}×{k} pixels on the canvas; strokes covering less than half of "
                         f"one are ignored)")
    return painted, ids
