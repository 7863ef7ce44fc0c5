"""The label map outside a model's picture box, kept for the latents rendered lately.

Callers see label maps cropped to the picture box (cars: 384×512 of the 512×512 canvas), but an edit reads the
whole canvas's map: outside the box the wanted map is the old one, and the region of interest may reach there. An
edit started from a rendering the caller kept has the inside; the outside, a quarter of a car's canvas and so a
quarter of its label map's cost, is kept here when the rendering is made, so that the edit computes none of it.
"""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

import numpy as np
import torch

Rows = tuple[int, int]


def outside_rows(size: int, box: tuple[int, int, int, int]) -> list[Rows]:
    """The canvas rows (first, stop) that hold pixels outside ``box`` = (top, left, height, width): the bands above
    and below it, or every row when the box leaves columns out."""
    top, left, height, width = box
    if left > 0 or left + width < size:
        return [(0, size)]
    rows = [(0, top)] if top > 0 else []
    return rows + ([(top + height, size)] if top + height < size else [])


def latent_key(wplus: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(wplus, dtype=np.float32).tobytes()).hexdigest()


class MarginLabels:
    """The outside rows' labels of the latest ``capacity`` latents (a 512-px car: 64 KB each as uint8)."""

    def __init__(self, capacity: int = 64):
        self.capacity = capacity
        self._items: OrderedDict[str, list[torch.Tensor]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, wplus: np.ndarray, canvas_labels: torch.Tensor, rows: list[Rows]) -> None:
        """Keep ``rows`` of a (H, W) canvas label map."""
        if not rows or self.capacity <= 0:
            return
        small = torch.uint8 if int(canvas_labels.max()) < 256 else torch.int64
        kept = [canvas_labels[first:stop].to("cpu", small) for first, stop in rows]
        key = latent_key(wplus)
        with self._lock:
            self._items[key] = kept
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def get(self, wplus: np.ndarray) -> list[torch.Tensor] | None:
        """The kept rows (int64, on the CPU) in the order they were put, or None."""
        key = latent_key(wplus)
        with self._lock:
            kept = self._items.get(key)
            if kept is None:
                return None
            self._items.move_to_end(key)
        return [rows.long() for rows in kept]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
