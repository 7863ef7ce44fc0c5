"""Label-map math of an edit: the wanted map from the paint, and the region of interest the edit may change."""
from __future__ import annotations

from typing import Iterable

import numpy as np
import torch
import torch.nn.functional as F


def apply_paint(old_labels: np.ndarray, painted: np.ndarray, painted_ids: np.ndarray) -> np.ndarray:
    """The label map the user asks for: the old map with the painted pixels replaced."""
    new = old_labels.copy()
    new[painted] = painted_ids[painted]
    return new


def dilate(mask: torch.Tensor, pixels: int) -> torch.Tensor:
    """Grow a boolean (H, W) mask by ``pixels`` with a square structuring element (like cv2.dilate with 3×3)."""
    if pixels <= 0:
        return mask
    grown = F.max_pool2d(mask[None, None].float(), kernel_size=2 * pixels + 1, stride=1, padding=pixels)
    return grown[0, 0] > 0


def region_of_interest(old_labels: torch.Tensor, new_labels: torch.Tensor, painted: torch.Tensor | None,
                       classes: Iterable[int], dilation: int = 3) -> torch.Tensor:
    """Pixels an edit may change: painted ∪ pixels of the edited classes in the old and new maps, dilated.

    All arguments are (H, W) tensors on one device; returns a boolean (H, W) mask.
    """
    roi = torch.zeros_like(old_labels, dtype=torch.bool) if painted is None else painted.bool().clone()
    for c in classes:
        roi |= (old_labels == c) | (new_labels == c)
    return dilate(roi, dilation)


def class_ious(predicted: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> dict[int, float]:
    """IoU of every class present in either map (within ``mask``)."""
    if mask is not None:
        predicted, truth = predicted[mask], truth[mask]
    ious = {}
    for c in np.union1d(np.unique(predicted), np.unique(truth)):
        p, t = predicted == c, truth == c
        ious[int(c)] = float((p & t).sum() / max((p | t).sum(), 1))
    return ious


def mean_iou(ious: dict[int, float]) -> float:
    """The mean of :func:`class_ious` (1 when no class is present: an empty mask)."""
    return float(np.mean(list(ious.values()))) if ious else 1.0


def miou(predicted: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean IoU over the classes present in either map (within ``mask``): how the toy evaluation and Teach's
    agreement report score a label map against another."""
    return mean_iou(class_ious(predicted, truth, mask))
