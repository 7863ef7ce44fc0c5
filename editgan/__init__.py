"""EditGAN Studio: high-precision semantic image editing with a StyleGAN2 generator and a segmentation branch.

    import editgan
    model = editgan.load()                  # the embedded default model (offline, CPU)
    picture = model.sample(seed=3)          # .image (h, w, 3) uint8, .labels (h, w), .wplus (n_latent, dim)
"""
from __future__ import annotations

__version__ = "0.1.0"

from editgan.engine.model import EditGANModel, EditOutcome, Rendering, load  # noqa: E402

__all__ = ["EditGANModel", "EditOutcome", "Rendering", "load", "__version__"]
