"""StyleGAN2 generator in plain PyTorch (no custom CUDA ops).

The module tree and parameter names follow the widely used rosinality port, so a ``checkpoint["g_ema"]`` state
dict from EditGAN's release or from Hub mirrors loads with ``strict=True`` and produces the same image.

Two optional additions, both off by default so rosinality checkpoints keep their exact key layout (they exist
for generators converted from NVIDIA's StyleGAN2-ADA pickles, see ``editgan.modelio.convert.nvidia``):
- ``conv_clamp`` clamps every synthesis layer's output (after bias and activation) and every ToRGB output (after
  its bias, before the skip sum) to ±conv_clamp, where NVIDIA's code applies it;
- ``stored_mean_latent`` adds a ``latent_avg`` buffer (the w average tracked during training) that
  :meth:`Generator.mean_latent` returns instead of a sampled mean, so truncation pulls toward the original centre.

Two deliberate differences from that port, neither visible in the state dict:
- upfirdn2d and the fused bias + leaky ReLU are written with ordinary torch ops, so the model runs on CPU, CUDA
  and MPS alike;
- modulated convolutions use the "non-fused" form (scale the activations by the style, convolve with the shared
  weight, scale the output by the demodulation coefficients). It computes the same function as modulating the
  weights per sample, but needs no per-sample weight tensors, which makes the editing loop (gradients w.r.t. w+
  only) noticeably faster on CPU.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

SQRT2 = math.sqrt(2.0)


def default_channels(channel_multiplier: int = 2) -> dict[int, int]:
    """Feature-map widths per resolution of the standard StyleGAN2 configs (config-f has multiplier 2)."""
    cm = channel_multiplier
    return {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * cm, 128: 128 * cm, 256: 64 * cm, 512: 32 * cm,
            1024: 16 * cm}


def fused_leaky_relu(x: torch.Tensor, bias: torch.Tensor | None = None, negative_slope: float = 0.2,
                     scale: float = SQRT2) -> torch.Tensor:
    """Bias add, leaky ReLU and the √2 gain that keeps activations at unit variance."""
    if bias is not None:
        shape = [1, -1] + [1] * (x.ndim - 2)
        x = x + bias.view(shape)
    return F.leaky_relu(x, negative_slope) * scale


def make_blur_kernel(taps: Sequence[float]) -> torch.Tensor:
    k = torch.tensor(taps, dtype=torch.float32)
    if k.ndim == 1:
        k = k[None, :] * k[:, None]
    return k / k.sum()


def upfirdn2d(x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1,
              pad: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """Upsample by zero insertion, pad, filter with a 2-D FIR kernel, downsample (same for x and y)."""
    n, c, h, w = x.shape
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    pad0, pad1 = pad
    x = F.pad(x, [max(pad0, 0), max(pad1, 0), max(pad0, 0), max(pad1, 0)])
    if pad0 < 0 or pad1 < 0:  # negative padding crops
        x = x[:, :, max(-pad0, 0): x.shape[2] - max(-pad1, 0), max(-pad0, 0): x.shape[3] - max(-pad1, 0)]
    weight = torch.flip(kernel, [0, 1]).to(x.dtype)[None, None].expand(c, 1, *kernel.shape)
    x = F.conv2d(x, weight, groups=c)
    if down > 1:
        x = x[:, :, ::down, ::down]
    return x


class PixelNorm(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


class EqualLinear(nn.Module):
    """Linear layer with the equalized learning rate: weights stored as N(0,1)/lr_mul and scaled at run time."""

    def __init__(self, in_dim: int, out_dim: int, bias: bool = True, bias_init: float = 0.0,
                 lr_mul: float = 1.0, activation: str | None = None):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init))) if bias else None
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias * self.lr_mul if self.bias is not None else None
        if self.activation:
            return fused_leaky_relu(F.linear(x, self.weight * self.scale), bias)
        return F.linear(x, self.weight * self.scale, bias)


class Blur(nn.Module):
    def __init__(self, taps: Sequence[float], pad: tuple[int, int], upsample_factor: int = 1):
        super().__init__()
        kernel = make_blur_kernel(taps)
        if upsample_factor > 1:
            kernel = kernel * upsample_factor ** 2  # zero insertion lowers the mean; the gain restores it
        self.register_buffer("kernel", kernel)
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)


class Upsample(nn.Module):
    """2× FIR upsampling of the skip (RGB) path."""

    def __init__(self, taps: Sequence[float], factor: int = 2):
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", make_blur_kernel(taps) * factor ** 2)
        p = len(taps) - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


class ModulatedConv2d(nn.Module):
    """Convolution whose input channels are scaled by a per-sample style, with optional demodulation."""

    def __init__(self, in_channel: int, out_channel: int, kernel_size: int, style_dim: int,
                 demodulate: bool = True, upsample: bool = False, blur_kernel: Sequence[float] = (1, 3, 3, 1)):
        super().__init__()
        self.in_channel, self.out_channel, self.kernel_size = in_channel, out_channel, kernel_size
        self.demodulate, self.upsample = demodulate, upsample
        self.scale = 1 / math.sqrt(in_channel * kernel_size ** 2)
        self.padding = kernel_size // 2
        if upsample:
            factor = 2
            p = (len(blur_kernel) - factor) - (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2 + factor - 1, p // 2 + 1), upsample_factor=factor)
        self.weight = nn.Parameter(torch.randn(1, out_channel, in_channel, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_channel, bias_init=1)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        style = self.modulation(w)  # (N, in)
        weight = self.weight[0] * self.scale  # (out, in, k, k)
        x = x * style[:, :, None, None]
        if self.upsample:
            # conv_transpose2d wants (in, out, k, k); the blur afterwards anti-aliases the stride-2 upsampling
            x = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2)
            x = self.blur(x)
        else:
            x = F.conv2d(x, weight, padding=self.padding)
        if self.demodulate:
            # ‖W ⊙ s‖ over (in, k, k) for every output channel, without materialising per-sample weights
            demod = torch.rsqrt(style.pow(2) @ weight.pow(2).sum(dim=(2, 3)).t() + 1e-8)  # (N, out)
            x = x * demod[:, :, None, None]
        return x


class NoiseInjection(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return x + self.weight * noise


class ConstantInput(nn.Module):
    def __init__(self, channel: int, size: int = 4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channel, size, size))

    def forward(self, batch: int) -> torch.Tensor:
        return self.input.expand(batch, -1, -1, -1)


def _clamp(x: torch.Tensor, limit: float | None) -> torch.Tensor:
    return x if limit is None else x.clamp(-limit, limit)


class StyledConv(nn.Module):
    """Modulated conv → noise → bias + leaky ReLU (→ optional clamp). Its output is one feature map of the
    segmentation branch."""

    def __init__(self, in_channel: int, out_channel: int, kernel_size: int, style_dim: int,
                 upsample: bool = False, blur_kernel: Sequence[float] = (1, 3, 3, 1), clamp: float | None = None):
        super().__init__()
        self.conv = ModulatedConv2d(in_channel, out_channel, kernel_size, style_dim, upsample=upsample,
                                    blur_kernel=blur_kernel)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_channel)
        self.clamp = clamp

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return _clamp(self.activate(self.noise(self.conv(x, w), noise)), self.clamp)


class FusedLeakyReLU(nn.Module):
    def __init__(self, channel: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channel))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fused_leaky_relu(x, self.bias)


class ToRGB(nn.Module):
    def __init__(self, in_channel: int, style_dim: int, upsample: bool = True,
                 blur_kernel: Sequence[float] = (1, 3, 3, 1), clamp: float | None = None):
        super().__init__()
        if upsample:
            self.upsample = Upsample(blur_kernel)
        self.conv = ModulatedConv2d(in_channel, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))
        self.clamp = clamp

    def forward(self, x: torch.Tensor, w: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        out = _clamp(self.conv(x, w) + self.bias, self.clamp)  # this block's RGB is clamped, not the running sum
        if skip is not None:
            out = out + self.upsample(skip)
        return out


class Noises(nn.Module):
    """Holds the fixed per-layer noise maps as buffers ``noise_0 .. noise_{L-1}`` (rosinality's ``noises``)."""

    def __init__(self, num_layers: int):
        super().__init__()
        for i in range(num_layers):
            res = 2 ** ((i + 5) // 2)
            self.register_buffer(f"noise_{i}", torch.randn(1, 1, res, res))
        self.num_layers = num_layers

    def get(self, i: int) -> torch.Tensor:
        return getattr(self, f"noise_{i}")


class Generator(nn.Module):
    """StyleGAN2 generator: mapping network z → w and synthesis network w+ → image.

    ``channels`` optionally overrides the width per resolution (small models); otherwise the standard widths
    of ``channel_multiplier`` are used. ``n_latent`` = 2·log2(size) − 2 rows of w+. ``conv_clamp`` and
    ``stored_mean_latent`` are the optional NVIDIA additions described in the module docstring.
    """

    def __init__(self, size: int, style_dim: int = 512, n_mlp: int = 8, channel_multiplier: int = 2,
                 blur_kernel: Sequence[float] = (1, 3, 3, 1), lr_mlp: float = 0.01,
                 channels: dict[int, int] | None = None, conv_clamp: float | None = None,
                 stored_mean_latent: bool = False):
        super().__init__()
        if conv_clamp is not None and not conv_clamp > 0:
            raise ValueError(f"conv_clamp must be a positive number or None, got {conv_clamp}")
        self.size, self.style_dim, self.n_mlp = size, style_dim, n_mlp
        self.conv_clamp = None if conv_clamp is None else float(conv_clamp)
        self.stored_mean_latent = bool(stored_mean_latent)
        self.log_size = int(math.log2(size))
        if 2 ** self.log_size != size or size < 4:
            raise ValueError(f"generator size must be a power of two ≥ 4, got {size}")
        self.channels = {int(k): int(v) for k, v in (channels or default_channels(channel_multiplier)).items()}
        missing = [2 ** r for r in range(2, self.log_size + 1) if 2 ** r not in self.channels]
        if missing:
            raise ValueError(f"channel widths missing for resolutions {missing}")
        self.n_latent = self.log_size * 2 - 2
        self.num_layers = (self.log_size - 2) * 2 + 1

        self.style = nn.Sequential(PixelNorm(), *[
            EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, activation="fused_lrelu") for _ in range(n_mlp)])

        clamp = self.conv_clamp
        self.input = ConstantInput(self.channels[4])
        self.conv1 = StyledConv(self.channels[4], self.channels[4], 3, style_dim, blur_kernel=blur_kernel,
                                clamp=clamp)
        self.to_rgb1 = ToRGB(self.channels[4], style_dim, upsample=False, clamp=clamp)
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        in_channel = self.channels[4]
        for i in range(3, self.log_size + 1):
            out_channel = self.channels[2 ** i]
            self.convs.append(StyledConv(in_channel, out_channel, 3, style_dim, upsample=True,
                                         blur_kernel=blur_kernel, clamp=clamp))
            self.convs.append(StyledConv(out_channel, out_channel, 3, style_dim, blur_kernel=blur_kernel,
                                         clamp=clamp))
            self.to_rgbs.append(ToRGB(out_channel, style_dim, blur_kernel=blur_kernel, clamp=clamp))
            in_channel = out_channel
        self.noises = Noises(self.num_layers)
        if self.stored_mean_latent:  # only then: rosinality's key layout has no such entry
            self.register_buffer("latent_avg", torch.zeros(style_dim))

    # -- latent spaces -------------------------------------------------------------------------------------
    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        """z (N, style_dim) → w (N, style_dim)."""
        return self.style(z)

    @torch.no_grad()
    def mean_latent(self, n: int = 4096, seed: int = 0) -> torch.Tensor:
        """The centre that truncation pulls toward, (1, style_dim): the stored ``latent_avg`` when the generator
        has one (the average its training tracked), else the mean of ``n`` mapped normal samples."""
        if self.stored_mean_latent:
            return self.latent_avg[None].clone()
        gen = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.style_dim, generator=gen).to(self.input.input.device)
        return self.mapping(z).mean(0, keepdim=True)

    def to_wplus(self, w: torch.Tensor) -> torch.Tensor:
        """Repeat a single w (N, style_dim) over all synthesis layers → (N, n_latent, style_dim)."""
        return w[:, None, :].expand(-1, self.n_latent, -1)

    # -- synthesis -----------------------------------------------------------------------------------------
    def synthesis(self, wplus: torch.Tensor, return_features: bool = False
                  ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """w+ (N, n_latent, style_dim) → image (N, 3, size, size), raw values (about −1..1).

        With ``return_features`` also returns the feature maps the segmentation branch reads, in EditGAN's
        order: the constant input, conv1, then every StyledConv output (after its activation).
        """
        if wplus.ndim != 3 or wplus.shape[1] != self.n_latent:
            raise ValueError(f"expected w+ of shape (N, {self.n_latent}, {self.style_dim}), got {tuple(wplus.shape)}")
        batch = wplus.shape[0]
        const = self.input(batch)
        x = self.conv1(const, wplus[:, 0], self.noises.get(0))
        features = [const, x] if return_features else []
        skip = self.to_rgb1(x, wplus[:, 1])
        row = 1
        for k, to_rgb in enumerate(self.to_rgbs):
            up_conv, conv = self.convs[2 * k], self.convs[2 * k + 1]
            x = up_conv(x, wplus[:, row], self.noises.get(2 * k + 1))
            if return_features:
                features.append(x)
            x = conv(x, wplus[:, row + 1], self.noises.get(2 * k + 2))
            if return_features:
                features.append(x)
            skip = to_rgb(x, wplus[:, row + 2], skip)
            row += 2
        return (skip, features) if return_features else skip

    def forward(self, z: torch.Tensor, truncation: float = 1.0, truncation_latent: torch.Tensor | None = None
                ) -> torch.Tensor:
        """z (N, style_dim) → image, with optional truncation toward ``truncation_latent``."""
        w = self.mapping(z)
        if truncation < 1.0:
            if truncation_latent is None:
                raise ValueError("truncation < 1 needs truncation_latent (see mean_latent)")
            w = truncation_latent + truncation * (w - truncation_latent)
        return self.synthesis(self.to_wplus(w))

    def feature_channels(self) -> list[int]:
        """Channel count of every map that ``synthesis(return_features=True)`` returns, in order."""
        out = [self.channels[4], self.channels[4]]
        for i in range(3, self.log_size + 1):
            out += [self.channels[2 ** i]] * 2
        return out

    def feature_resolutions(self) -> list[int]:
        out = [4, 4]
        for i in range(3, self.log_size + 1):
            out += [2 ** i] * 2
        return out
