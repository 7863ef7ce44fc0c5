"""Editing by latent optimization on a tiny random model whose segmenter labels reddish pixels."""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from tiny_models import tiny_model

from editgan.engine.editing import EditOptions, EmbedOptions, apply_vector, edit_from_mask, embed, render

OPTIONS = EditOptions(steps=60, lr=0.02, rgb_weight=5.0)


@pytest.fixture(scope="module")
def model():
    return tiny_model()


def least_class_square(labels: torch.Tensor, cls: int, side: int = 8) -> torch.Tensor:
    """The side×side square (on a 4-px grid) where ``cls`` is rarest: where painting it is a real change."""
    best = None
    for y in range(0, labels.shape[0] - side + 1, 4):
        for x in range(0, labels.shape[1] - side + 1, 4):
            mask = torch.zeros_like(labels, dtype=torch.bool)
            mask[y:y + side, x:x + side] = True
            share = (labels[mask] == cls).float().mean()
            if best is None or share < best[0]:
                best = (share, mask)
    return best[1]


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = (a - b).pow(2).mean().item()
    return 10 * math.log10(4.0 / mse)  # images span [-1, 1]


def paint_square(labels, cls=1):
    painted = least_class_square(labels, cls)
    target = labels.clone()
    target[painted] = cls
    return painted, target


@pytest.mark.parametrize("max_roi_pixels", [None, 32], ids=["whole-roi", "sampled-roi"])
def test_edit_moves_segmentation_toward_painting_and_keeps_the_rest(model, max_roi_pixels):
    g, seg, wplus = model
    w = wplus[:1]
    image, labels = render(g, seg, w)
    painted, target = paint_square(labels[0])
    agreement_before = (labels[0][painted] == 1).float().mean().item()

    options = dataclasses.replace(OPTIONS, max_roi_pixels=max_roi_pixels)
    result = edit_from_mask(g, seg, w, target, painted, classes=[], options=options)
    if max_roi_pixels is not None:
        assert result.roi.sum() > 3 * max_roi_pixels  # the CE really read a sample of the ROI each step

    new_image, new_labels = render(g, seg, result.wplus)
    agreement_after = (new_labels[0][painted] == 1).float().mean().item()
    assert agreement_before < 0.3 and agreement_after > 0.7
    change = (new_image - image).abs().mean(1)[0]
    assert change[~result.roi].mean() < 0.4 * change[result.roi].mean()
    assert torch.allclose(result.delta, (result.wplus - w)[0])
    assert result.losses[result.best_step] == min(result.losses)
    assert result.perceptual  # the loss used is named


def test_default_roi_spans_the_painted_classes_in_old_and_new_maps(model):
    g, seg, wplus = model
    _, labels = render(g, seg, wplus[:1])
    painted, target = paint_square(labels[0])
    result = edit_from_mask(g, seg, wplus[:1], target, painted, options=EditOptions(steps=1))
    assert result.roi[painted].all()
    assert result.roi[labels[0] == 1].all()  # class 1 was painted: all of its old pixels may change


def test_progress_callback_and_cancel(model):
    g, seg, wplus = model
    _, labels = render(g, seg, wplus[:1])
    painted, target = paint_square(labels[0])
    seen = []
    result = edit_from_mask(g, seg, wplus[:1], target, painted, options=EditOptions(steps=20, lr=0.01),
                            on_step=seen.append, should_stop=lambda: len(seen) >= 3)
    assert result.cancelled and len(result.losses) == 3
    assert [s.step for s in seen] == [1, 2, 3] and seen[0].steps == 20
    assert seen[-1].image.shape == (1, 3, 32, 32)


def test_nothing_painted_is_an_error(model):
    g, seg, wplus = model
    _, labels = render(g, seg, wplus[:1])
    with pytest.raises(ValueError, match="nothing painted"):
        edit_from_mask(g, seg, wplus[:1], labels[0], torch.zeros_like(labels[0], dtype=torch.bool))


def test_vector_transfers_to_another_image_and_refinement_restores_the_outside(model):
    g, seg, wplus = model
    image, labels = render(g, seg, wplus[:1])
    painted, target = paint_square(labels[0])
    vector = edit_from_mask(g, seg, wplus[:1], target, painted, classes=[], options=OPTIONS).delta

    same = apply_vector(g, seg, wplus[:1], vector, scale=0.0, refine_steps=10)
    assert torch.equal(same.wplus, wplus[:1])
    other = wplus[1:2]
    other_image, other_labels = render(g, seg, other)
    plain = apply_vector(g, seg, other, vector, scale=1.0)
    assert torch.allclose(plain.wplus, other + vector) and plain.losses == []
    refined = apply_vector(g, seg, other, vector, scale=1.0, refine_steps=20, classes=[1],
                           options=EditOptions(lr=0.01))
    assert len(refined.losses) == 20 and refined.losses[refined.best_step] <= refined.losses[0]
    plain_image, _ = render(g, seg, plain.wplus)
    refined_image, _ = render(g, seg, refined.wplus)
    outside = ~refined.roi
    assert psnr(refined_image[..., outside], other_image[..., outside]) >= \
        psnr(plain_image[..., outside], other_image[..., outside])


def test_bad_scale_is_rejected(model):
    g, seg, wplus = model
    with pytest.raises(ValueError, match="finite"):
        apply_vector(g, seg, wplus[:1], torch.zeros(wplus.shape[1:]), scale=float("nan"))


def test_embedding_reconstructs_a_generated_image(model):
    g, _, wplus = model
    with torch.no_grad():
        target = g.synthesis(wplus[2:3])
    mean = g.to_wplus(g.mean_latent(512))
    with torch.no_grad():
        start_psnr = psnr(g.synthesis(mean), target)
    result = embed(g, target, options=EmbedOptions(steps=60, lr=0.05), mean_wplus=mean)
    with torch.no_grad():
        end_psnr = psnr(g.synthesis(result.wplus), target)
    assert end_psnr > start_psnr + 3
    assert result.losses[-1] < result.losses[1]
