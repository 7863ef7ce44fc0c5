"""Checkpoints in the formats found in the wild, scaled down: same key names and structure, smaller widths.

- rosinality stylegan2-pytorch: ``{"g", "d", "g_ema", "g_optim", "args", ...}`` (training) or
  ``{"g_ema", "latent_avg"}`` (converted from TF, as EditGAN's car generator);
- DatasetGAN pixel classifiers: ``{"model_state_dict": {"module.layers.{0,2,3,5,6}.*"}}`` (DataParallel);
- EditGAN's FPN encoder: ``{"model_state_dict": {"FPN_module.*", "course_styles.*", ...}}``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from editgan.networks.fpn_encoder import FPNEncoder, FPNEncoderConfig
from editgan.networks.stylegan2 import Generator

# A 512-px generator (n_latent 16, style_dim 512, like the car model) that is fast on a CPU: tiny widths.
CAR_CHANNELS = {4: 8, 8: 8, 16: 8, 32: 8, 64: 4, 128: 4, 256: 2, 512: 2}
CAR_STYLE_DIM = 512
CAR_N_MLP = 2
CLASSIFIER_HIDDEN = (4, 4)
N_CLASSES = 32
ENCODER = FPNEncoderConfig(n_latent=16, style_dim=512, base_width=4, fpn_dim=8, head_dim=8)


def tiny_car_generator(seed: int = 0) -> Generator:
    torch.manual_seed(seed)
    g = Generator(512, style_dim=CAR_STYLE_DIM, n_mlp=CAR_N_MLP, channels=CAR_CHANNELS)
    with torch.no_grad():  # a little spread in biases and noise strengths so features are not degenerate
        for name, p in g.named_parameters():
            if name.endswith("noise.weight") or name.endswith("activate.bias"):
                p.normal_(0, 0.1)
    return g.eval()


def save_rosinality(path: Path, g_ema: dict[str, torch.Tensor], training: bool = True) -> Path:
    """A rosinality checkpoint around ``g_ema``: training layout (with g, d, optimizers and the argparse
    namespace) or the TF-converted layout (g_ema and latent_avg only)."""
    if training:
        checkpoint = {
            "g": {k: v.clone() for k, v in g_ema.items()},
            "d": {"convs.0.0.weight": torch.randn(4, 3, 1, 1), "final_linear.1.bias": torch.zeros(1)},
            "g_ema": g_ema,
            "g_optim": {"state": {}, "param_groups": [{"lr": 0.002, "betas": (0.0, 0.99), "params": [0, 1]}]},
            "d_optim": {"state": {}, "param_groups": [{"lr": 0.002, "params": [0]}]},
            "args": argparse.Namespace(size=512, channel_multiplier=2, latent=512, n_mlp=8, iter=800000),
            "ada_aug_p": 0.0,
            "iter": 123,
        }
    else:
        checkpoint = {"g_ema": g_ema, "latent_avg": torch.zeros(next(iter(g_ema.values())).shape[-1])}
    torch.save(checkpoint, path)
    return path


def datasetgan_classifier(in_channels: int, n_classes: int = N_CLASSES, hidden=CLASSIFIER_HIDDEN,
                          seed: int = 0) -> nn.Module:
    """DatasetGAN's ``pixel_classifier`` layout (Linear → ReLU → BN → Linear → ReLU → BN → Linear) in DataParallel,
    with non-trivial BatchNorm statistics, in eval mode."""
    torch.manual_seed(seed)
    h1, h2 = hidden
    layers = nn.Sequential(nn.Linear(in_channels, h1), nn.ReLU(), nn.BatchNorm1d(h1), nn.Linear(h1, h2), nn.ReLU(),
                           nn.BatchNorm1d(h2), nn.Linear(h2, n_classes))
    with torch.no_grad():
        for bn in (layers[2], layers[5]):
            bn.running_mean.uniform_(0, 1)
            bn.running_var.uniform_(0.5, 2)
            bn.weight.normal_(1, 0.2)
            bn.bias.normal_(0, 0.2)
            bn.num_batches_tracked.fill_(1000 + seed)

    class PixelClassifier(nn.Module):  # the attribute name gives the "layers." keys
        def __init__(self):
            super().__init__()
            self.layers = layers

        def forward(self, x):
            return self.layers(x)

    return nn.DataParallel(PixelClassifier()).eval()


def save_classifiers(folder: Path, in_channels: int, count: int, prefix: str = "car_model_") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(count):
        model = datasetgan_classifier(in_channels, seed=100 + k)
        paths.append(folder / f"{prefix}{k}.pth")
        torch.save({"model_state_dict": model.state_dict()}, paths[-1])
    return paths


def save_fpn_encoder(path: Path, config: FPNEncoderConfig = ENCODER, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    encoder = FPNEncoder(config)
    with torch.no_grad():
        for name, p in encoder.named_parameters():
            if name.endswith("linear.weight"):
                p.mul_(0.1)
    torch.save({"model_state_dict": encoder.state_dict()}, path)
    return path


def parity_state_dict(spec_path: Path) -> dict[str, torch.Tensor]:
    """The rosinality state dict of the shared StyleGAN2 parity fixture, rebuilt from its recipe."""
    spec = json.loads(spec_path.read_text())
    rng = np.random.default_rng(spec["seed"])
    taps = np.array(spec["config"]["blur_kernel"], dtype=np.float64)
    kernel = np.outer(taps, taps) / np.outer(taps, taps).sum() * 4  # both kernels are upsampling ones: gain 2²
    state = {}
    for key, shape in spec["state_dict"]:
        if key.endswith("kernel"):
            state[key] = torch.tensor(kernel, dtype=torch.float32)
            continue
        scale = 0.1 if key.endswith("bias") or key.endswith("noise.weight") else 1.0
        state[key] = torch.from_numpy((rng.standard_normal(shape) * scale).astype(np.float32))
    return state
