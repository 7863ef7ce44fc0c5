"""The fill tool of a label-map canvas: give one class to a connected region picked by a click.

The region is the pixels 4-connected to the clicked one that are alike, either in the picture (every channel
within ``tolerance`` of the clicked pixel's colour: a part of one colour, say a car's window, takes one click) or
in the label map (the clicked pixel's class: relabel a wrongly predicted part). Pure numpy, bounded by the map's
size: the region is found run by run (the horizontal stretches of alike pixels in each row), so the Python loop
runs once per run, not per pixel.
"""
from __future__ import annotations

from collections import deque
from typing import Literal

import numpy as np


def fill_region(label_map: np.ndarray, picture: np.ndarray | None, x: int, y: int, class_id: int,
                tolerance: int = 0, source: Literal["picture", "labels"] = "picture") -> np.ndarray:
    """A new label map: ``label_map`` (h, w) with the region at column ``x``, row ``y`` set to ``class_id``.

    ``source="picture"`` grows the region over pixels of ``picture`` (h, w, 3) whose every channel is within
    ``tolerance`` (0..255) of the clicked pixel's; ``source="labels"`` over pixels of the clicked pixel's class.
    """
    labels = np.asarray(label_map)
    if labels.ndim != 2:
        raise ValueError(f"a label map is (h, w), got shape {labels.shape}")
    height, width = labels.shape
    if not (0 <= int(x) < width and 0 <= int(y) < height):
        raise ValueError(f"({x}, {y}) is outside the {width}×{height} map")
    if int(class_id) < 0:
        raise ValueError(f"class ids are ≥ 0, got {class_id}")
    if source == "labels":
        alike = labels == labels[y, x]
    elif source == "picture":
        if picture is None:
            raise ValueError("filling by the picture needs the picture")
        image = np.asarray(picture)
        if image.shape[:2] != labels.shape:
            raise ValueError(f"the picture is {image.shape[1]}×{image.shape[0]}, the label map {width}×{height}")
        if not 0 <= tolerance <= 255:
            raise ValueError(f"tolerance is 0..255, got {tolerance}")
        pixels = image.reshape(height, width, -1)[..., :3].astype(np.int16)
        alike = (np.abs(pixels - pixels[y, x]) <= tolerance).all(-1)
    else:
        raise ValueError(f"source is 'picture' or 'labels', got {source!r}")
    out = labels.copy()
    out[connected_region(alike, int(x), int(y))] = class_id
    return out


def connected_region(mask: np.ndarray, x: int, y: int) -> np.ndarray:
    """The pixels of boolean ``mask`` (h, w) 4-connected to (x, y) (which must be in the mask), as a bool map."""
    starts, ends = _runs(mask)
    region = np.zeros_like(mask, dtype=bool)
    first = _run_at(starts[y], ends[y], x)
    seen = {(y, first)}
    queue = deque(seen)
    while queue:
        row, k = queue.popleft()
        s, e = int(starts[row][k]), int(ends[row][k])
        region[row, s:e] = True
        for other in (row - 1, row + 1):
            if 0 <= other < mask.shape[0]:
                # runs of the next row that overlap [s, e): they start before e and end after s
                lo = int(np.searchsorted(ends[other], s, side="right"))
                hi = int(np.searchsorted(starts[other], e, side="left"))
                for j in range(lo, hi):
                    if (other, j) not in seen:
                        seen.add((other, j))
                        queue.append((other, j))
    return region


def _runs(mask: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per row, the sorted starts and (exclusive) ends of its stretches of True."""
    padded = np.zeros((mask.shape[0], mask.shape[1] + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    edges = np.diff(padded, axis=1)
    rising_rows, rising_cols = np.nonzero(edges == 1)
    falling_rows, falling_cols = np.nonzero(edges == -1)
    split_rise = np.searchsorted(rising_rows, np.arange(1, mask.shape[0]))
    split_fall = np.searchsorted(falling_rows, np.arange(1, mask.shape[0]))
    return np.split(rising_cols, split_rise), np.split(falling_cols, split_fall)


def _run_at(starts: np.ndarray, ends: np.ndarray, x: int) -> int:
    k = int(np.searchsorted(starts, x, side="right")) - 1
    if k < 0 or ends[k] <= x:
        raise ValueError(f"column {x} is not in the mask")
    return k
