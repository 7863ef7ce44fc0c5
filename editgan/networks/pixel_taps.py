"""Reading feature maps at chosen pixels of a bigger canvas, exactly as bilinear (or nearest) upsampling with
``F.interpolate(..., align_corners=False)`` would: the source indices and weights ("taps") of each output pixel,
the sparse matrix that applies them, the row bands a full map is computed in, and the process's cache of the
taps of those bands. The segmenter (:mod:`editgan.networks.segmenter`) reads its projections through them; the
branch's training reads its labelled pixels the same way."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch
import torch.nn.functional as F

from editgan.lru import LRUCache

BAND_TAPS_BYTES = 64 * 2 ** 20
"""Bound of the banded path's cache of pixel taps (:class:`BandTaps`), about: a 64-px map's two bands take 2.1 MB
and were rebuilt on every map (about 6 ms of a 41-ms map on a busy 2-core CPU); a 512-px map's 128
bands take more than the bound, so only the latest of them stay."""


def axis_taps(dst: torch.Tensor, n_in: int, n_out: int, mode: str = "bilinear"
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Along one axis: the source indices (i0, i1) and weight of i1 that ``F.interpolate(..., mode,
    align_corners=False)`` uses for output positions ``dst`` when resizing ``n_in`` to ``n_out``."""
    scale = n_in / n_out
    if mode == "nearest":
        i0 = (dst.float() * scale).floor().long().clamp(max=n_in - 1)
        return i0, i0, torch.zeros_like(dst, dtype=torch.float32)
    src = ((dst.float() + 0.5) * scale - 0.5).clamp(min=0)
    i0 = src.floor().long().clamp(max=n_in - 1)
    i1 = (i0 + 1).clamp(max=n_in - 1)
    return i0, i1, src - i0.float()


def pixel_bands(size: tuple[int, int], chunk: int, device: torch.device | str = "cpu") -> Iterator[torch.Tensor]:
    """The pixels (P, 2) = (row, col) of a ``size`` canvas in row-major bands of whole rows, about ``chunk`` pixels
    each: how a full map is computed with the memory of one band."""
    band_rows = max(1, chunk // size[1])
    columns = torch.arange(size[1], device=device)
    for top in range(0, size[0], band_rows):
        rows = torch.arange(top, min(top + band_rows, size[0]), device=device)
        yield torch.stack(torch.meshgrid(rows, columns, indexing="ij"), -1).reshape(-1, 2)


def upsample_to(x: torch.Tensor, size: tuple[int, int], mode: str = "bilinear") -> torch.Tensor:
    """Resize feature maps to ``size`` (no-op when already there); bilinear without corner alignment."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if mode == "nearest":
        return F.interpolate(x, size=size, mode="nearest")
    return F.interpolate(x, size=size, mode=mode, align_corners=False)


def bilinear_taps(pixels: torch.Tensor, source: tuple[int, int], size: tuple[int, int], mode: str = "bilinear"
                  ) -> tuple[torch.Tensor, ...]:
    """Source indices and weights that ``F.interpolate(..., size, mode, align_corners=False)`` uses for
    the output ``pixels`` (P, 2): (y0, y1, x0, x1, wy, wx), each (P,)."""
    y0, y1, wy = axis_taps(pixels[:, 0], source[0], size[0], mode)
    x0, x1, wx = axis_taps(pixels[:, 1], source[1], size[1], mode)
    return y0, y1, x0, x1, wy, wx


def tap_corners(taps: tuple[torch.Tensor, ...], width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat source indices (4, P) of the taps' corners (y0x0, y0x1, y1x0, y1x1) in a map ``width`` wide, and
    their bilinear weights (4, P)."""
    y0, y1, x0, x1, wy, wx = taps
    corners = torch.stack([y0 * width + x0, y0 * width + x1, y1 * width + x0, y1 * width + x1])
    weights = torch.stack([(1 - wy) * (1 - wx), (1 - wy) * wx, wy * (1 - wx), wy * wx])
    return corners, weights


@dataclass
class InterpolationMatrix:
    """out[n, p] = Σ_k weights[k, p] · values[n, columns[k, p]]: (N, U, C) → (N, P, C), the bilinear taps of P
    pixels as a (P, U) matrix with K non-zeros a row."""
    columns: torch.Tensor  # (K, P) int64
    weights: torch.Tensor  # (K, P)
    n_sources: int
    _sparse: dict = field(default_factory=dict, repr=False)

    def __call__(self, values: torch.Tensor, sparse: bool | None = None) -> torch.Tensor:
        """By default a sparse matrix product: far faster on CPU than gathering the K·P rows and summing them,
        in both the forward and the backward pass. MPS has no sparse matrix product, so there the rows are
        gathered."""
        if not (values.device.type != "mps" if sparse is None else sparse):
            k, p = self.columns.shape
            columns = self.columns.to(values.device)
            gathered = values.index_select(1, columns.reshape(-1)).reshape(values.shape[0], k, p, -1)
            return torch.einsum("nkpc,kp->npc", gathered, self.weights.to(values))
        matrix = self._sparse_matrix(values.device, values.dtype)
        return torch.stack([torch.sparse.mm(matrix, v) for v in values])

    def _sparse_matrix(self, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        key = (device, dtype)
        if key not in self._sparse:
            k, p = self.columns.shape
            keep = self.weights != 0  # a tap with weight 0 (exact or border pixels) need not be stored
            rows = torch.arange(p).expand(k, p)
            indices = torch.stack([rows[keep], self.columns[keep]]).to(device)
            self._sparse[key] = torch.sparse_coo_tensor(indices, self.weights[keep].to(device, dtype),
                                                        (p, self.n_sources), check_invariants=False).coalesce()
        return self._sparse[key]


@dataclass
class PixelTaps:
    """Where a segmenter reads feature maps for P pixels of a canvas: the source pixels of each map resolution
    (flat indices) and the matrix that interpolates their projections to the P pixels. Maps of the canvas's own
    size (``direct``) are read at the P pixels themselves, in order, and need no interpolation."""
    sources: dict[tuple[int, int], torch.Tensor]
    interpolate: InterpolationMatrix | None
    direct: tuple[tuple[int, int], ...] = ()


class BandTaps:
    """The pixel taps of the banded path's bands (they depend on the canvas, the band, the maps' sizes, the
    upsampling mode and the device only), each with the sparse matrices built from it, kept for the next map; the
    least recently used go when they hold more than ``max_bytes`` (estimated). Shared by the process's models."""

    def __init__(self, max_bytes: int = BAND_TAPS_BYTES):
        self._taps: LRUCache[tuple, PixelTaps] = LRUCache(max_bytes, taps_bytes)

    def get(self, key: tuple, make: Callable[[], "PixelTaps"]) -> "PixelTaps":
        return self._taps.get_or_make(key, make)

    def clear(self) -> None:
        self._taps.clear()

    def __len__(self) -> int:
        return len(self._taps)


def taps_bytes(taps: "PixelTaps") -> int:
    """About what ``taps`` hold: the source indices, the taps' columns and weights, and a sparse matrix of them
    (two int64 indices and a value per tap) for one dtype."""
    total = sum(t.numel() * t.element_size() for t in taps.sources.values())
    if taps.interpolate is not None:
        total += taps.interpolate.columns.numel() * (8 + 4 + 2 * 8 + 4)
    return total


BAND_TAPS = BandTaps()
"""The process's cache of the banded path's pixel taps (see :class:`BandTaps`)."""
