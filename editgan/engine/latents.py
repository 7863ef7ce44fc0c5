"""The one check of a w+ latent that crosses the engine's edge (from a session, a file, an API call)."""
from __future__ import annotations

import hashlib

import numpy as np


def as_latent(wplus, shape: tuple[int, int] | None = None, error: type[Exception] = ValueError) -> np.ndarray:
    """``wplus`` as a fresh (n_latent, style_dim) float32 array; a leading batch axis of 1 is dropped.

    Raises ``error`` when it is not 2-D, has another ``shape`` than the one given, or holds NaN or infinities.
    """
    if hasattr(wplus, "detach"):  # a torch tensor
        wplus = wplus.detach().cpu().numpy()
    try:
        w = np.array(wplus, dtype=np.float32, copy=True)
    except (TypeError, ValueError) as e:
        raise error(f"a latent must be an array of numbers: {e}") from None
    if w.ndim == 3 and w.shape[0] == 1:
        w = w[0]
    if w.ndim != 2:
        raise error(f"a latent must be (n_latent, style_dim), got shape {w.shape}")
    if shape is not None and w.shape != tuple(shape):
        raise error(f"a latent of shape {w.shape} does not fit this model's {tuple(shape)}")
    if not np.isfinite(w).all():
        raise error("the latent holds NaN or infinite values")
    return w


def latent_key(wplus: np.ndarray) -> str:
    """A name of a latent's exact values, for caches kept by latent."""
    return hashlib.sha1(np.ascontiguousarray(wplus, dtype=np.float32).tobytes()).hexdigest()
