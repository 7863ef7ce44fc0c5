"""The discriminator of the embedded model's adversarial term, and the StyleGAN2 losses that go with it.

It sees the face parameters as well as the image (a projection discriminator: the score is a plain linear
read-out plus the dot product of the image features with an embedding of the parameters). Every real image is
``render(params)`` and every fake is ``G(z)`` with the same ``params = Φ(z[:NUM_PARAMS])``, so the adversarial term
asks "is this a sharp render *of this face*" rather than "is this some sharp face"; an unconditional one pulled
eyes and hair toward a few templates in the exploratory runs (``shared/reference/training_notes.md``).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from editgan.toy.faces import NUM_PARAMS


def _conv(in_channels: int, out_channels: int, kernel: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2)


class _DownBlock(nn.Module):
    """Two 3×3 convolutions and a 2× average-pool, with a pooled 1×1 skip (StyleGAN2's residual D block)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = _conv(in_channels, in_channels, 3)
        self.conv2 = _conv(in_channels, out_channels, 3)
        self.skip = _conv(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.leaky_relu(self.conv1(x), 0.2)
        y = F.avg_pool2d(F.leaky_relu(self.conv2(y), 0.2), 2)
        return (y + self.skip(F.avg_pool2d(x, 2))) / math.sqrt(2)


class FaceDiscriminator(nn.Module):
    """(N, 3, size, size) images in [−1, 1] and (N, NUM_PARAMS) parameters in [0, 1] → (N,) realness scores."""

    def __init__(self, size: int = 64, channels: dict[int, int] | None = None, num_params: int = NUM_PARAMS):
        super().__init__()
        channels = channels or {64: 16, 32: 32, 16: 64, 8: 128, 4: 128}
        self.from_rgb = _conv(3, channels[size], 1)
        blocks, resolution = [], size
        while resolution > 4:
            blocks.append(_DownBlock(channels[resolution], channels[resolution // 2]))
            resolution //= 2
        self.blocks = nn.Sequential(*blocks)
        width = channels[4]
        self.final_conv = _conv(width + 1, width, 3)  # +1: the minibatch standard deviation
        self.final_linear = nn.Linear(width * 16, width)
        self.score = nn.Linear(width, 1)
        self.embed_params = nn.Linear(num_params, width, bias=False)
        self.apply(_he_init)

    def forward(self, image: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.from_rgb(image), 0.2)
        x = self.blocks(x)
        x = torch.cat([x, _minibatch_stddev(x)], dim=1)
        x = F.leaky_relu(self.final_conv(x), 0.2)
        h = F.leaky_relu(self.final_linear(x.flatten(1)), 0.2)
        return self.score(h)[:, 0] + (self.embed_params(params) * h).sum(1)


def _he_init(module: nn.Module) -> None:
    """He initialization for leaky-ReLU layers. PyTorch's default init shrinks the signal about 3× per layer:
    through this many layers the scores start near zero with vanishing gradients, and on a generator already
    close to its targets the discriminator then never started to learn (loss stuck at log 4)."""
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        nn.init.kaiming_normal_(module.weight, a=0.2, nonlinearity="leaky_relu")
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def _minibatch_stddev(x: torch.Tensor, group: int = 4) -> torch.Tensor:
    """One feature map holding how much the batch varies (StyleGAN's cue against collapse)."""
    n, _, h, w = x.shape
    group = math.gcd(group, n)
    y = x.reshape(group, n // group, -1, h, w)
    std = (y.var(0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # (n // group,)
    return std.repeat(group)[:, None, None, None].expand(n, 1, h, w)


def discriminator_loss(d: FaceDiscriminator, real: torch.Tensor, fake: torch.Tensor, params: torch.Tensor,
                       drift: float = 0.0) -> tuple[torch.Tensor, dict[str, float]]:
    """The non-saturating loss for D, softplus(D(fake)) + softplus(−D(real)), plus ``drift`` · D(real)²."""
    real_score, fake_score = d(real, params), d(fake.detach(), params)
    loss = F.softplus(fake_score).mean() + F.softplus(-real_score).mean() + drift * real_score.pow(2).mean()
    return loss, {"d_loss": loss.item(), "d_real": real_score.mean().item(), "d_fake": fake_score.mean().item()}


def r1_penalty(d: FaceDiscriminator, real: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """Mean squared gradient norm of D's score with respect to real images (R1)."""
    real = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(d(real, params).sum(), real, create_graph=True)
    return grad.pow(2).sum(dim=(1, 2, 3)).mean()


def generator_adversarial_loss(d: FaceDiscriminator, fake: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """The non-saturating loss for G: softplus(−D(fake))."""
    return F.softplus(-d(fake, params)).mean()
