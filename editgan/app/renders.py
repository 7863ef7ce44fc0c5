"""Renderings kept by model and latent, so that undo, redo, reset, export and the before/after view show a
picture without running the model again, and so without waiting behind another visitor's edit."""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Callable

import numpy as np

from editgan.engine.model import Rendering


def latent_key(wplus: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(wplus, dtype=np.float32).tobytes()).hexdigest()


class RenderCache:
    """At most ``max_bytes`` of renderings (images and label maps), the least recently used dropped first.
    Keyed by the latent's bytes: a visitor only ever asks for latents of its own session."""

    def __init__(self, max_bytes: int = 128 * 2**20):
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[str, str], Rendering] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @staticmethod
    def _size(r: Rendering) -> int:
        return r.image.nbytes + (r.labels.nbytes if r.labels is not None else 0) + r.wplus.nbytes

    def put(self, model: str, rendering: Rendering) -> Rendering:
        kept = Rendering(np.array(rendering.wplus, np.float32), rendering.image,
                         rendering.labels.astype(np.uint8) if rendering.labels is not None
                         and rendering.labels.max(initial=0) < 256 else rendering.labels)
        key = (model, latent_key(kept.wplus))
        with self._lock:
            if key in self._items:
                self._bytes -= self._size(self._items.pop(key))
            self._items[key] = kept
            self._bytes += self._size(kept)
            while self._bytes > self.max_bytes and len(self._items) > 1:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= self._size(dropped)
        return rendering

    def get(self, model: str, wplus: np.ndarray) -> Rendering | None:
        key = (model, latent_key(wplus))
        with self._lock:
            found = self._items.get(key)
            if found is None:
                return None
            self._items.move_to_end(key)
        labels = found.labels.astype(np.int64) if found.labels is not None else None
        return Rendering(found.wplus.copy(), found.image, labels)

    def render(self, model: str, wplus: np.ndarray, render: Callable[[np.ndarray], Rendering]) -> Rendering:
        """The cached rendering of ``wplus``, or ``render(wplus)`` kept for next time."""
        found = self.get(model, wplus)
        return found if found is not None else self.put(model, render(wplus))
