"""Where the segmentation branch is unsure of a picture: the map that tells a person what to annotate next.

Two measures, both (N, H, W) in [0, 1]:

- ``disagreement``: the fraction of ensemble members whose own prediction differs from the ensemble's. It is
  0 where every member agrees and (M − 1)/M at most; it needs two members or more. DatasetGAN uses the same
  signal (the members' disagreement) to throw away unsure samples when it generates a dataset.
- ``entropy``: the entropy of the ensemble's mean softmax divided by log(n_classes), for a single-member branch.

Both are computed band by band, as the label map is, so the memory is that of one band at any resolution.
"""
from __future__ import annotations

import math
from typing import Literal

import torch

from editgan.networks.pixel_taps import pixel_bands
from editgan.networks.segmenter import Segmenter

Measure = Literal["disagreement", "entropy"]


@torch.no_grad()
def uncertainty(segmenter: Segmenter, features: list[torch.Tensor], size: tuple[int, int] | None = None,
                measure: Measure = "disagreement", chunk: int = 2048) -> torch.Tensor:
    """(N, H, W) float32 in [0, 1] for the pictures whose generator ``features`` are given."""
    if measure not in ("disagreement", "entropy"):
        raise ValueError(f"measure is 'disagreement' or 'entropy', got {measure!r}")
    members = len(segmenter.members)
    if measure == "disagreement" and members < 2:
        raise ValueError("disagreement needs an ensemble of two members or more; this branch has one (use "
                         "measure='entropy')")
    size = size or tuple(features[-1].shape[-2:])
    resolutions = list(dict.fromkeys(tuple(f.shape[-2:]) for f in features))
    bands = []
    for pixels in pixel_bands(size, chunk, features[0].device):
        logits = segmenter.member_logits_at(features, segmenter.pixel_taps(pixels, size, resolutions))  # (M,N,P,K)
        mean = logits.mean(0)
        if measure == "disagreement":
            value = (logits.argmax(-1) != mean.argmax(-1)).float().mean(0)
        else:
            p = mean.softmax(-1)
            value = -(p * p.clamp_min(1e-12).log()).sum(-1) / math.log(p.shape[-1])
        bands.append(value.reshape(value.shape[0], -1, size[1]))
    return torch.cat(bands, 1).clamp_(0.0, 1.0)
