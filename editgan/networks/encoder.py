"""Image → w+ encoder: a fast first guess for embedding uploads, refined afterwards by optimization.

A plain convolutional pyramid down to 4×4, then an MLP that predicts the offset of every w+ row from the
generator's mean latent (predicting offsets makes an untrained encoder start at the average image).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
from torch import nn


@dataclass
class EncoderConfig:
    size: int
    n_latent: int
    style_dim: int
    channels: list[int] = field(default_factory=lambda: [32, 64, 128, 128])
    hidden: int = 512

    def to_dict(self) -> dict:
        return {"type": "conv", **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict) -> "EncoderConfig":
        d = {k: v for k, v in d.items() if k != "type"}
        return cls(**d)


class DownBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(out_channels, out_channels, 3, stride=2, padding=1), nn.LeakyReLU(0.2))
        self.skip = nn.Conv2d(in_channels, out_channels, 1, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.body(x) + self.skip(x)) / math.sqrt(2)


class LatentEncoder(nn.Module):
    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.config = config
        steps = int(math.log2(config.size // 4))
        if 4 * 2 ** steps != config.size:
            raise ValueError(f"encoder size must be 4·2^k, got {config.size}")
        widths = (config.channels + [config.channels[-1]] * steps)[:steps]
        blocks, in_channels = [], 3
        for width in widths:
            blocks.append(DownBlock(in_channels, width))
            in_channels = width
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(in_channels * 16, config.hidden), nn.LeakyReLU(0.2),
            nn.Linear(config.hidden, config.n_latent * config.style_dim))
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)
        self.register_buffer("latent_avg", torch.zeros(1, 1, config.style_dim))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """(N, 3, size, size) in [−1, 1] → w+ (N, n_latent, style_dim)."""
        offsets = self.head(self.blocks(image)).view(-1, self.config.n_latent, self.config.style_dim)
        return self.latent_avg + offsets
