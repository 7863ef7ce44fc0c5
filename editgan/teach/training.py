"""Train the segmentation branch the DatasetGAN way: a few labelled generator samples → an ensemble of MLPs.

Each labelled sample is a w+ latent whose picture a person (or, for the toy domain, the renderer) annotated. The
generator's features at a sample of the labelled pixels become training rows; every ensemble member is an MLP
trained on those rows with cross-entropy from its own random initialisation and shuffling.

The rows are read at the sampled pixels only. DatasetGAN upsamples every feature map to full resolution,
concatenates them and then picks pixels: at 1024 px that is ≈ 6000 channels × 1 M pixels per sample, the reason
its training needs 160 GB of RAM. Here each map is read at its own resolution through the four bilinear taps of
each sampled pixel (:func:`pixel_features`, the same taps the segmenter's factorized path uses), which gives the
same numbers as upsampling and picking, so the memory is rows × channels whatever the resolution: 16 samples ×
4096 pixels of a 1024-px generator are ≈ 0.7 GB of float16 rows.
"""
from __future__ import annotations

import copy
import dataclasses
import logging
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from editgan.errors import TeachCancelled
from editgan.networks.pixel_taps import bilinear_taps, tap_corners
from editgan.networks.segmenter import Segmenter, SegmenterConfig
from editgan.networks.stylegan2 import Generator

log = logging.getLogger(__name__)

IGNORE = -1
"""A label that marks a pixel as not annotated: it is never sampled."""


@dataclass
class SegmenterTrainingOptions:
    epochs: int = 4
    batch_size: int = 2048
    lr: float = 1e-3
    pixels_per_image: int | None = None
    """Rows sampled from each image's labelled pixels; None takes every labelled pixel (fine up to ~128 px)."""
    class_balance: float = 0.5
    """Cross-entropy weights ∝ frequency^(−class_balance): 0 = plain CE; >0 helps tiny parts (pupils)."""
    seed: int = 0


@dataclass
class TrainingProgress:
    """Reported after every epoch of every member (and so a few hundred times per run at most)."""
    member: int
    """1-based."""
    members: int
    epoch: int
    """1-based."""
    epochs: int
    loss: float
    """Mean cross-entropy over the epoch's batches."""


ProgressCallback = Callable[[TrainingProgress], None]
PartialCallback = Callable[[Segmenter], None]
"""Gets a usable branch of the members trained so far (copies: training goes on untouched)."""


def pixel_features(features: list[torch.Tensor], pixels: torch.Tensor, size: tuple[int, int],
                   mode: str = "bilinear") -> torch.Tensor:
    """The concatenated feature vectors (N, P, ΣC) of the ``size`` canvas at ``pixels`` (P, 2) = (row, col).

    Equal to upsampling every map to ``size`` (``F.interpolate`` without corner alignment, or nearest), then
    concatenating and picking the pixels, without making any full-resolution map: each map is read at its own
    resolution at the four source pixels that each pixel's interpolation reads.
    """
    columns, taps = [], {}
    for f in features:
        h, w = f.shape[-2:]
        flat = f.flatten(2)  # (N, C, h·w)
        if (h, w) == tuple(size):
            columns.append(flat[:, :, pixels[:, 0] * w + pixels[:, 1]])
            continue
        if (h, w) not in taps:
            corners, weights = tap_corners(bilinear_taps(pixels, (h, w), size, mode), w)
            taps[(h, w)] = corners.to(f.device), weights.to(f.device, f.dtype)
        corners, weights = taps[(h, w)]
        gathered = flat[:, :, corners.reshape(-1)].reshape(*flat.shape[:2], *corners.shape)  # (N, C, 4, P)
        columns.append((gathered * weights).sum(2))
    return torch.cat(columns, 1).transpose(1, 2)


def sample_pixels(labels: torch.Tensor, count: int | None, generator: torch.Generator) -> torch.Tensor:
    """``count`` labelled pixels (P, 2) of an (H, W) map drawn without replacement (all of them when None or
    more), in row-major order."""
    flat = (labels.reshape(-1) != IGNORE).nonzero()[:, 0].cpu()
    if count is not None and count < flat.numel():
        flat = flat[torch.randperm(flat.numel(), generator=generator)[:count]].sort().values
    width = labels.shape[-1]
    return torch.stack([flat // width, flat % width], 1).to(labels.device)


def labelled_counts(labels: torch.Tensor) -> list[int]:
    """How many labelled pixels each (H, W) map of ``labels`` (N, H, W) has."""
    return (labels != IGNORE).flatten(1).sum(1).tolist()


def row_count(counts: list[int], pixels_per_image: int | None) -> int:
    """How many training rows samples with ``counts`` labelled pixels give when each is sampled to
    ``pixels_per_image`` (None: all)."""
    return sum(c if pixels_per_image is None else min(c, pixels_per_image) for c in counts)


@torch.no_grad()
def feature_rows(generator: Generator, wplus: torch.Tensor, labels: torch.Tensor, mode: str = "bilinear",
                 pixels_per_image: int | None = None, seed: int = 0,
                 should_stop: Callable[[], bool] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel feature vectors (P, ΣC) in float16 and their labels (P,), read at a sample of each image's
    labelled pixels (``labels`` (N, H, W) on the canvas; :data:`IGNORE` marks pixels without a label).
    ``should_stop`` is asked before every sample's rendering (:class:`TeachCancelled` when it answers True).
    The rows are written into one tensor made at the first sample's size, so that the peak is the rows once (a
    list of per-sample rows joined at the end held them twice)."""
    draw = torch.Generator().manual_seed(seed)
    size = tuple(labels.shape[-2:])
    total = row_count(labelled_counts(labels), pixels_per_image)
    if total == 0:
        raise ValueError("no labelled pixels to train on")
    rows: torch.Tensor | None = None
    targets = torch.empty(total, dtype=torch.long, device=labels.device)
    filled = 0
    for i in range(wplus.shape[0]):
        if should_stop is not None and should_stop():
            raise TeachCancelled("teaching was cancelled")
        pixels = sample_pixels(labels[i], pixels_per_image, draw)
        if pixels.shape[0] == 0:
            continue
        _, feats = generator.synthesis(wplus[i:i + 1], return_features=True)
        sample_rows = pixel_features(feats, pixels.to(feats[0].device), size, mode)[0]
        if rows is None:
            rows = torch.empty(total, sample_rows.shape[1], dtype=torch.float16, device=sample_rows.device)
        end = filled + pixels.shape[0]
        rows[filled:end] = sample_rows
        targets[filled:end] = labels[i][pixels[:, 0], pixels[:, 1]]
        filled = end
    return rows, targets


def class_weights(targets: torch.Tensor, n_classes: int, power: float) -> torch.Tensor | None:
    if power <= 0:
        return None
    counts = torch.bincount(targets, minlength=n_classes).float().clamp_min(1)
    weights = (counts / counts.sum()).pow(-power)
    return weights / (weights * counts).sum() * counts.sum()  # keep the average per-row weight at 1


def train_segmenter(generator: Generator, wplus: torch.Tensor, labels: torch.Tensor, config: SegmenterConfig,
                    options: SegmenterTrainingOptions | None = None, progress: ProgressCallback | None = None,
                    should_stop: Callable[[], bool] | None = None,
                    on_partial: PartialCallback | None = None) -> Segmenter:
    """Fit an ensemble on labelled samples: ``wplus`` (N, n_latent, D), ``labels`` (N, H, W) class ids on the
    generator's canvas (:data:`IGNORE` where unlabelled). ``should_stop`` is asked before every sample's rendering
    and every batch (a caller may step aside there); when it answers True, :class:`TeachCancelled` is raised.
    ``on_partial`` gets the members trained so far after each member but the last (see :func:`partial_segmenter`);
    it changes nothing of the result (each member's randomness starts from its own seed)."""
    options = options or SegmenterTrainingOptions()
    device = wplus.device
    labels = labels.to(device)
    if int(labels.max()) >= config.n_classes:
        raise ValueError(f"labels go up to {int(labels.max())}, the branch has {config.n_classes} classes")
    rows, targets = feature_rows(generator, wplus, labels, config.upsample_mode, options.pixels_per_image,
                                 options.seed, should_stop)
    if rows.shape[1] != sum(config.feature_channels):
        raise ValueError(f"features have {rows.shape[1]} channels, config expects {sum(config.feature_channels)}")
    weights = class_weights(targets, config.n_classes, options.class_balance)
    log.info("segmenter: %d rows of %d features (%.0f MB) from %d samples", rows.shape[0], rows.shape[1],
             rows.numel() * rows.element_size() / 2**20, wplus.shape[0])
    segmenter = Segmenter(config).to(device)
    for k, member in enumerate(segmenter.members):
        torch.manual_seed(options.seed * 1000 + k)
        _reinitialise(member)
        member.train()
        optimizer = torch.optim.Adam(member.parameters(), lr=options.lr)
        for epoch in range(options.epochs):
            order = torch.randperm(rows.shape[0]).to(device)
            total, batches = 0.0, 0
            for start in range(0, rows.shape[0], options.batch_size):
                if should_stop is not None and should_stop():
                    raise TeachCancelled("teaching was cancelled")
                batch = order[start:start + options.batch_size]
                if batch.numel() < 2:  # BatchNorm needs two rows
                    continue
                loss = F.cross_entropy(member(rows[batch].float()), targets[batch], weight=weights)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total, batches = total + loss.item(), batches + 1
            if progress is not None:
                progress(TrainingProgress(k + 1, config.n_members, epoch + 1, options.epochs,
                                          total / max(batches, 1)))
        member.eval()
        log.info("segmenter member %d/%d trained (last epoch's loss %.3f)", k + 1, config.n_members,
                 total / max(batches, 1))
        if on_partial is not None and k + 1 < config.n_members:
            on_partial(partial_segmenter(segmenter, k + 1))
    return segmenter.eval()


def partial_segmenter(segmenter: Segmenter, count: int) -> Segmenter:
    """A branch of ``segmenter``'s first ``count`` members, copied (in eval mode): its prediction is theirs."""
    partial = Segmenter(dataclasses.replace(segmenter.config, n_members=count))
    partial.members = torch.nn.ModuleList(copy.deepcopy(m).eval() for m in segmenter.members[:count])
    return partial.to(next(segmenter.parameters()).device).eval()


def _reinitialise(member: torch.nn.Module) -> None:
    """Draw a member's weights again from the seeded generator, so that each member's start depends only on the
    seed and its index (not on how many were built before it)."""
    for module in member.modules():
        if isinstance(module, (torch.nn.Linear, torch.nn.BatchNorm1d)):
            module.reset_parameters()
