"""The label map outside a model's picture box, kept for the latents rendered lately.

Callers see label maps cropped to the picture box (cars: 384×512 of the 512×512 canvas), but an edit reads the
whole canvas's map: outside the box the wanted map is the old one, and the region of interest may reach there. An
edit started from a rendering the caller kept has the inside; the outside, a quarter of a car's canvas and so a
quarter of its label map's cost, is kept here when the rendering is made, so that the edit computes none of it.
"""
from __future__ import annotations

import numpy as np
import torch

from editgan.engine.latents import latent_key
from editgan.lru import LRUCache

Rows = tuple[int, int]


def outside_rows(size: int, box: tuple[int, int, int, int]) -> list[Rows]:
    """The canvas rows (first, stop) that hold pixels outside ``box`` = (top, left, height, width): the bands above
    and below it, or every row when the box leaves columns out."""
    top, left, height, width = box
    if left > 0 or left + width < size:
        return [(0, size)]
    rows = [(0, top)] if top > 0 else []
    return rows + ([(top + height, size)] if top + height < size else [])


class MarginLabels:
    """The outside rows' labels of the latest ``capacity`` latents (a 512-px car: 64 KB each as uint8)."""

    def __init__(self, capacity: int = 64):
        self._kept: LRUCache[str, list[torch.Tensor]] = LRUCache(capacity)

    def put(self, wplus: np.ndarray, canvas_labels: torch.Tensor, rows: list[Rows]) -> None:
        """Keep ``rows`` of a (H, W) canvas label map."""
        if not rows:
            return
        small = torch.uint8 if int(canvas_labels.max()) < 256 else torch.int64
        self._kept.put(latent_key(wplus), [canvas_labels[first:stop].to("cpu", small) for first, stop in rows])

    def get(self, wplus: np.ndarray) -> list[torch.Tensor] | None:
        """The kept rows (int64, on the CPU) in the order they were put, or None."""
        kept = self._kept.get(latent_key(wplus))
        return None if kept is None else [rows.long() for rows in kept]

    def clear(self) -> None:
        self._kept.clear()
