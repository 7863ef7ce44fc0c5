"""Renderings kept by model and latent, so that undo, redo, reset, export and the before/after view show a
picture without running the model again, and so without waiting behind another visitor's edit."""
from __future__ import annotations

from typing import Callable

import numpy as np

from editgan.engine.latents import latent_key
from editgan.engine.model import Rendering
from editgan.lru import LRUCache


def _size(r: Rendering) -> int:
    return r.image.nbytes + (r.labels.nbytes if r.labels is not None else 0) + r.wplus.nbytes


class RenderCache:
    """At most ``max_bytes`` of renderings (images and label maps), the least recently used dropped first.
    Keyed by the latent's bytes: a visitor only ever asks for latents of its own session."""

    def __init__(self, max_bytes: int = 128 * 2**20):
        self._kept: LRUCache[tuple[str, str], Rendering] = LRUCache(max_bytes, _size)

    def put(self, model: str, rendering: Rendering) -> Rendering:
        """Keep ``rendering`` (its label map as uint8 where the classes fit); returns it unchanged."""
        kept = Rendering(np.array(rendering.wplus, np.float32), rendering.image,
                         rendering.labels.astype(np.uint8) if rendering.labels is not None
                         and rendering.labels.max(initial=0) < 256 else rendering.labels)
        self._kept.put((model, latent_key(kept.wplus)), kept)
        return rendering

    def get(self, model: str, wplus: np.ndarray) -> Rendering | None:
        found = self._kept.get((model, latent_key(wplus)))
        if found is None:
            return None
        labels = found.labels.astype(np.int64) if found.labels is not None else None
        return Rendering(found.wplus.copy(), found.image, labels)

    def render(self, model: str, wplus: np.ndarray, render: Callable[[np.ndarray], Rendering]) -> Rendering:
        """The cached rendering of ``wplus``, or ``render(wplus)`` kept for next time."""
        found = self.get(model, wplus)
        return found if found is not None else self.put(model, render(wplus))
