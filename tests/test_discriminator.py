"""The embedded model's discriminator learns what its adversarial term is for: telling a crisp render of a face
from a blurred one of the same face, and a render from one of a different face."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from editgan.toy.prior import params_from_z
from editgan.toy.train_generator import Adversary, GeneratorRecipe, render_faces

RECIPE = GeneratorRecipe(size=32, style_dim=32, d_channels={32: 16, 16: 32, 8: 32, 4: 32}, d_lr=2e-3)


def _renders(seed: int, n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    z = torch.randn(n, RECIPE.style_dim, generator=torch.Generator().manual_seed(seed))
    return render_faces(z, RECIPE.size)[0], params_from_z(z)


def _blurred(images: torch.Tensor) -> torch.Tensor:
    return F.interpolate(F.avg_pool2d(images, 4), scale_factor=4, mode="bilinear", align_corners=False)


def test_the_discriminator_learns_to_tell_crisp_renders_from_blurred_ones():
    torch.manual_seed(0)
    adversary = Adversary.fresh(RECIPE)
    for step in range(60):
        real, params = _renders(step)
        adversary.step(real, _blurred(real), params, RECIPE)
    real, params = _renders(10_000, n=16)  # faces it never saw
    with torch.no_grad():
        assert (adversary.d(real, params) > adversary.d(_blurred(real), params)).float().mean() >= 0.875


def test_the_discriminator_checks_the_image_against_the_face_parameters():
    torch.manual_seed(0)
    adversary = Adversary.fresh(RECIPE)
    for step in range(100):
        real, params = _renders(step)
        adversary.step(real, real.roll(1, dims=0), params, RECIPE)  # fake: a crisp render of another face
    real, params = _renders(10_000, n=16)
    with torch.no_grad():
        matched, mismatched = adversary.d(real, params), adversary.d(real.roll(1, dims=0), params)
    assert (matched > mismatched).float().mean() >= 0.75
