"""Class colors: parsing, formatting, and label maps ↔ RGB. A leaf module that every layer may use."""
from __future__ import annotations

import re
from typing import Sequence

import numpy as np

Color = tuple[int, int, int]


def hex_color(rgb: Sequence[int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*(int(c) for c in rgb))


_HEX6 = re.compile(r"[0-9a-fA-F]{6}")


def parse_color(value: str | Sequence[int]) -> Color:
    """'#rrggbb' or (r, g, b) with each 0..255 → (r, g, b); ValueError otherwise ('#-1-2-3' too: int() would
    read each '-1' as a number)."""
    if isinstance(value, str):
        v = value.lstrip("#")
        if not _HEX6.fullmatch(v):
            raise ValueError(f"not a #rrggbb color: {value[:40]!r}")
        return int(v[0:2], 16), int(v[2:4], 16), int(v[4:6], 16)
    r, g, b = (int(c) for c in value)
    if not all(0 <= c <= 255 for c in (r, g, b)):
        raise ValueError(f"a color's parts go from 0 to 255, got {(r, g, b)}")
    return r, g, b


def colorize(labels: np.ndarray, palette: Sequence[Color]) -> np.ndarray:
    """(H, W) class ids → (H, W, 3) uint8 RGB."""
    table = np.asarray(palette, dtype=np.uint8)
    if labels.size and labels.max() >= len(table):
        raise ValueError(f"label {int(labels.max())} has no palette color ({len(table)} classes)")
    return table[labels]


SNAP_CHUNK = 2**20
"""Color × palette distances computed at once when snapping (12 MB of int32 for each 2^20)."""


def snap_to_palette(rgb: np.ndarray, palette: Sequence[Color]) -> np.ndarray:
    """(H, W, 3) colors → (H, W) ids of the nearest palette color (painted pixels may be antialiased; ties go to the
    lower id). Each distinct color is snapped once, a bounded number of distances at a time: memory stays near the
    picture's own size whatever the number of classes (256 classes × a 1024² canvas at once were gigabytes)."""
    table = np.asarray(palette, dtype=np.int32)
    codes = rgb[..., :3].astype(np.int32) @ np.array([1 << 16, 1 << 8, 1], np.int32)
    distinct, inverse = np.unique(codes.ravel(), return_inverse=True)
    colors = np.stack([distinct >> 16, (distinct >> 8) & 255, distinct & 255], axis=-1)
    nearest = np.empty(len(colors), np.int64)
    step = max(1, SNAP_CHUNK // max(len(table), 1))
    for start in range(0, len(colors), step):
        diff = colors[start:start + step, None, :] - table[None]
        nearest[start:start + step] = np.argmin((diff * diff).sum(-1), axis=-1)
    return nearest[inverse].reshape(codes.shape)
