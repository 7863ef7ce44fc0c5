"""EditGAN's image → w+ encoder: a ResNet-50 bottom-up path, a feature pyramid, and one small head per w+ row.

The module tree and parameter names follow the official release (``FPNEncoder`` in nv-tlabs/editGAN_release), so
its ``BEST_loss*.pth`` state dict loads with ``strict=True`` (see ``editgan.modelio.convert.editgan_car``):

- ``FPN_module``: stem (7×7 stride-2 conv, BN, ReLU, 3×3 stride-2 max pool), four stages of Bottleneck blocks
  (``layer1..4``, blocks [3, 4, 6, 3], a 1×1 ``shortcut`` conv + BN only where the shape changes), then the
  top-down pathway: ``toplayer`` on c5, lateral 1×1 convs ``latlayer1..3`` on c4, c3, c2, bilinear upsample-add
  (align_corners=False) and 3×3 ``smooth1..3``, giving p4 (1/16 of the input), p3 (1/8) and p2 (1/4).
- ``course_styles`` (3 heads on p4), ``medium_styles`` (4 on p3), ``fine_styles`` (n_latent − 7 on p2): each head is
  k stride-2 3×3 convs with LeakyReLU(0.01) (k = 5, 6, 7) that bring its map down to 1×1, then a Linear.

The output is w+ itself, (N, n_latent, style_dim), with no mean-latent offset; the input is an RGB canvas in [−1, 1]
(for the car model the letterboxed 512×512 canvas). Widths are configurable so tests can build the same structure
small; the release's values are the defaults.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

EXPANSION = 4
"""Bottleneck blocks widen their output to 4× their planes."""


@dataclass
class FPNEncoderConfig:
    n_latent: int = 16
    style_dim: int = 512
    in_channels: int = 3
    base_width: int = 64
    """Stem width; stage k has base_width·2^k planes and base_width·2^k·4 output channels."""
    blocks: tuple[int, ...] = (3, 4, 6, 3)
    fpn_dim: int = 512
    head_dim: int = 512
    """Width of the style heads' convolutions (the release uses 512, the same as style_dim)."""
    head_convs: tuple[int, int, int] = (5, 6, 7)
    """Stride-2 convs in a coarse, medium and fine head."""
    n_coarse: int = 3
    n_medium: int = 4

    @property
    def n_fine(self) -> int:
        return self.n_latent - self.n_coarse - self.n_medium

    def to_dict(self) -> dict:
        d = asdict(self)
        d["blocks"], d["head_convs"] = list(self.blocks), list(self.head_convs)
        return {"type": "fpn", **d}

    @classmethod
    def from_dict(cls, d: dict) -> "FPNEncoderConfig":
        d = {k: v for k, v in d.items() if k != "type"}
        for key in ("blocks", "head_convs"):
            if key in d:
                d[key] = tuple(int(v) for v in d[key])
        return cls(**d)

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor]) -> "FPNEncoderConfig":
        """Read the architecture off a state dict's key names and shapes (raises KeyError if a key is missing)."""
        stem = state["FPN_module.conv1.weight"]
        blocks = []
        for stage in range(1, 5):
            count = 0
            while f"FPN_module.layer{stage}.{count}.conv1.weight" in state:
                count += 1
            blocks.append(count)

        def heads(group: str) -> int:
            count = 0
            while f"{group}.{count}.linear.weight" in state:
                count += 1
            return count

        def convs(group: str) -> int:
            count = 0
            while f"{group}.0.convs.{2 * count}.weight" in state:
                count += 1
            return count

        n_coarse, n_medium, n_fine = heads("course_styles"), heads("medium_styles"), heads("fine_styles")
        return cls(n_latent=n_coarse + n_medium + n_fine,
                   style_dim=int(state["course_styles.0.linear.weight"].shape[0]),
                   in_channels=int(stem.shape[1]), base_width=int(stem.shape[0]), blocks=tuple(blocks),
                   fpn_dim=int(state["FPN_module.toplayer.weight"].shape[0]),
                   head_dim=int(state["course_styles.0.convs.0.weight"].shape[0]),
                   head_convs=(convs("course_styles"), convs("medium_styles"), convs("fine_styles")),
                   n_coarse=n_coarse, n_medium=n_medium)


class Bottleneck(nn.Module):
    """1×1 reduce → 3×3 (carries the stride) → 1×1 expand, plus the shortcut, then ReLU."""

    def __init__(self, in_channels: int, planes: int, stride: int = 1):
        super().__init__()
        out_channels = planes * EXPANSION
        self.conv1 = nn.Conv2d(in_channels, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(out_channels))
        else:
            self.shortcut = nn.Sequential()  # identity; holds no parameters, so no state-dict keys

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + self.shortcut(x))


class FeaturePyramid(nn.Module):
    """ResNet bottom-up stages and the FPN top-down pathway; returns (p2, p3, p4)."""

    def __init__(self, config: FPNEncoderConfig):
        super().__init__()
        base, dim = config.base_width, config.fpn_dim
        self.conv1 = nn.Conv2d(config.in_channels, base, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(base)
        in_channels = base
        stage_out = []
        for stage, count in enumerate(config.blocks):
            planes = base * 2 ** stage
            stride = 1 if stage == 0 else 2
            layers = []
            for i in range(count):
                layers.append(Bottleneck(in_channels, planes, stride if i == 0 else 1))
                in_channels = planes * EXPANSION
            setattr(self, f"layer{stage + 1}", nn.Sequential(*layers))
            stage_out.append(in_channels)
        c2, c3, c4, c5 = stage_out
        self.toplayer = nn.Conv2d(c5, dim, 1)
        self.smooth1 = nn.Conv2d(dim, dim, 3, padding=1)
        self.smooth2 = nn.Conv2d(dim, dim, 3, padding=1)
        self.smooth3 = nn.Conv2d(dim, dim, 3, padding=1)
        self.latlayer1 = nn.Conv2d(c4, dim, 1)
        self.latlayer2 = nn.Conv2d(c3, dim, 1)
        self.latlayer3 = nn.Conv2d(c2, dim, 1)

    @staticmethod
    def _upsample_add(top: torch.Tensor, lateral: torch.Tensor) -> torch.Tensor:
        return F.interpolate(top, size=lateral.shape[-2:], mode="bilinear", align_corners=False) + lateral

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        c1 = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), kernel_size=3, stride=2, padding=1)
        c2 = self.layer1(c1)
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        p5 = self.toplayer(c5)
        p4 = self._upsample_add(p5, self.latlayer1(c4))
        p3 = self._upsample_add(p4, self.latlayer2(c3))
        p2 = self._upsample_add(p3, self.latlayer3(c2))
        return self.smooth3(p2), self.smooth2(p3), self.smooth1(p4)


class StyleHead(nn.Module):
    """k stride-2 3×3 convs with LeakyReLU(0.01) down to 1×1, then a Linear: one w+ row."""

    def __init__(self, n_convs: int, in_channels: int, width: int, style_dim: int):
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(n_convs):
            layers += [nn.Conv2d(in_channels if i == 0 else width, width, 3, stride=2, padding=1), nn.LeakyReLU(0.01)]
        self.convs = nn.Sequential(*layers)  # convs at even indices: convs.0, convs.2, …
        self.linear = nn.Linear(width, style_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.convs(x)
        if x.shape[-2:] != (1, 1):
            raise ValueError(f"the encoder's style heads reduce its input to {tuple(x.shape[-2:])}, not 1×1: the "
                             f"input image is larger than the encoder supports")
        return self.linear(x.flatten(1))


class FPNEncoder(nn.Module):
    def __init__(self, config: FPNEncoderConfig):
        super().__init__()
        if config.n_fine < 1:
            raise ValueError(f"an FPN encoder needs n_latent > {config.n_coarse + config.n_medium}, "
                             f"got {config.n_latent}")
        self.config = config
        dim, width, style_dim = config.fpn_dim, config.head_dim, config.style_dim
        k_coarse, k_medium, k_fine = config.head_convs
        self.FPN_module = FeaturePyramid(config)
        # "course" is the release's spelling; the key names must match its checkpoint
        self.course_styles = nn.ModuleList(StyleHead(k_coarse, dim, width, style_dim) for _ in range(config.n_coarse))
        self.medium_styles = nn.ModuleList(StyleHead(k_medium, dim, width, style_dim) for _ in range(config.n_medium))
        self.fine_styles = nn.ModuleList(StyleHead(k_fine, dim, width, style_dim) for _ in range(config.n_fine))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [−1, 1] → w+ (N, n_latent, style_dim)."""
        p2, p3, p4 = self.FPN_module(image)
        rows = [head(p4) for head in self.course_styles]
        rows += [head(p3) for head in self.medium_styles]
        rows += [head(p2) for head in self.fine_styles]
        return torch.stack(rows, dim=1)
