"""Train the segmentation branch the DatasetGAN way: a few labelled generator samples → an ensemble of MLPs.

Each labelled sample is a w+ latent whose image a person (or, for the toy domain, the renderer) annotated. The
generator's feature maps at the annotated pixels become training rows; every ensemble member is an MLP trained
on those rows with cross-entropy from its own random initialisation and shuffling.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from editgan.networks.segmenter import Segmenter, SegmenterConfig, upsample_to
from editgan.networks.stylegan2 import Generator

log = logging.getLogger(__name__)


@dataclass
class SegmenterTrainingOptions:
    epochs: int = 4
    batch_size: int = 2048
    lr: float = 1e-3
    pixels_per_image: int | None = None
    """Rows sampled from each image; None takes every pixel (fine up to ~128 px)."""
    class_balance: float = 0.5
    """Cross-entropy weights ∝ frequency^(−class_balance): 0 = plain CE; >0 helps tiny parts (pupils)."""
    seed: int = 0


@torch.no_grad()
def feature_rows(generator: Generator, wplus: torch.Tensor, labels: torch.Tensor, mode: str = "bilinear",
                 pixels_per_image: int | None = None, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel feature vectors (P, ΣC) in float16 and their labels (P,), one image at a time.

    Upsampling one map at a time and keeping only the sampled pixels bounds memory at large resolutions.
    """
    gen = torch.Generator().manual_seed(seed)
    all_rows, all_targets = [], []
    size = tuple(labels.shape[-2:])
    for i in range(wplus.shape[0]):
        _, feats = generator.synthesis(wplus[i:i + 1], return_features=True)
        flat_labels = labels[i].reshape(-1)
        if pixels_per_image is None or pixels_per_image >= flat_labels.numel():
            index = torch.arange(flat_labels.numel())
        else:
            index = torch.randperm(flat_labels.numel(), generator=gen)[:pixels_per_image]
        columns = [upsample_to(f, size, mode)[0].reshape(f.shape[1], -1)[:, index.to(f.device)].t().half()
                   for f in feats]
        all_rows.append(torch.cat(columns, dim=1).cpu())
        all_targets.append(flat_labels[index].cpu())
    return torch.cat(all_rows), torch.cat(all_targets).long()


def class_weights(targets: torch.Tensor, n_classes: int, power: float) -> torch.Tensor | None:
    if power <= 0:
        return None
    counts = torch.bincount(targets, minlength=n_classes).float().clamp_min(1)
    weights = (counts / counts.sum()).pow(-power)
    return weights / (weights * counts).sum() * counts.sum()  # keep the average per-row weight at 1


def train_segmenter(generator: Generator, wplus: torch.Tensor, labels: torch.Tensor, config: SegmenterConfig,
                    options: SegmenterTrainingOptions | None = None,
                    progress: Callable[[int, int, float], None] | None = None) -> Segmenter:
    """Fit an ensemble on labelled samples: ``wplus`` (N, n_latent, D), ``labels`` (N, H, W) class ids."""
    options = options or SegmenterTrainingOptions()
    device = wplus.device
    rows, targets = feature_rows(generator, wplus, labels, config.upsample_mode, options.pixels_per_image,
                                 options.seed)
    if rows.shape[1] != sum(config.feature_channels):
        raise ValueError(f"features have {rows.shape[1]} channels, config expects {sum(config.feature_channels)}")
    weights = class_weights(targets, config.n_classes, options.class_balance)
    weights = weights.to(device) if weights is not None else None
    segmenter = Segmenter(config).to(device)
    total_steps = config.n_members * options.epochs * -(-rows.shape[0] // options.batch_size)
    step = 0
    for k, member in enumerate(segmenter.members):
        torch.manual_seed(options.seed * 1000 + k)
        member.train()
        optimizer = torch.optim.Adam(member.parameters(), lr=options.lr)
        for _ in range(options.epochs):
            order = torch.randperm(rows.shape[0])
            for start in range(0, rows.shape[0], options.batch_size):
                batch = order[start:start + options.batch_size]
                if batch.numel() < 2:  # BatchNorm needs two rows
                    continue
                x = rows[batch].to(device).float()
                loss = F.cross_entropy(member(x), targets[batch].to(device), weight=weights)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
                if progress is not None:
                    progress(step, total_steps, loss.item())
        member.eval()
        log.info("segmenter member %d/%d trained (last loss %.3f)", k + 1, config.n_members, loss.item())
    return segmenter.eval()
