"""The link between the toy model's latent z and the renderer's face parameters.

The renderer's prior is independent Uniform(0, 1) per parameter, and the normal CDF maps a standard normal to
exactly that. So the first ``NUM_PARAMS`` entries of z *are* the face (through Φ); the other entries are ignored
by the renderer. Sampling z ~ N(0, I) as any StyleGAN2 does therefore draws faces from the renderer's prior, and
every sample has a known true image and label map.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from editgan.toy.faces import NUM_PARAMS

_EPS = 1e-6


def params_from_z(z: torch.Tensor) -> torch.Tensor:
    """(N, style_dim) normal latents → (N, NUM_PARAMS) face parameters in [0, 1]."""
    return 0.5 * (1 + torch.erf(z[:, :NUM_PARAMS] / math.sqrt(2)))


def z_from_params(params: np.ndarray | torch.Tensor, style_dim: int, seed: int = 0) -> torch.Tensor:
    """Inverse of :func:`params_from_z`; the unused entries are drawn from N(0, 1) with ``seed``."""
    p = torch.as_tensor(np.asarray(params, dtype=np.float32)).reshape(-1, NUM_PARAMS).clamp(_EPS, 1 - _EPS)
    head = math.sqrt(2) * torch.erfinv(2 * p - 1)
    tail = torch.randn(p.shape[0], style_dim - NUM_PARAMS, generator=torch.Generator().manual_seed(seed))
    return torch.cat([head, tail], dim=1)
