"""The embedded default model: loads offline with no arguments, segments faces, and edits move the right way.

A reduced version of `python -m editgan evaluate` (few faces, few steps); truth comes from the renderer.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import editgan
from editgan.engine.editing import EmbedOptions
from editgan.toy import faces
from editgan.toy.edits import paint_true_edit
from editgan.toy.evaluate import miou, psnr
from editgan.toy.prior import z_from_params

EYES = (faces.CLASS_NAMES.index("eye_white"), faces.CLASS_NAMES.index("iris"), faces.CLASS_NAMES.index("pupil"))
PUPIL = faces.CLASS_NAMES.index("pupil")
SEEDS = (900_000, 900_001, 900_002)  # held out: the evaluation's faces


@pytest.fixture(scope="module")
def model():
    m = editgan.load(device="cpu")
    if not m.has_segmenter:
        pytest.fail("the embedded model has no segmentation branch")
    return m


def face(model, seed):
    params = faces.sample_params(seed)
    z = z_from_params(params, model.style_dim, seed)
    with torch.no_grad():
        wplus = model.generator.to_wplus(model.generator.mapping(z))
    return params, model.render(wplus[0].numpy())


def test_default_model_is_the_embedded_toy_faces(model):
    assert model.config.name == "toy-faces" and model.device.type == "cpu"
    assert list(model.config.class_names) == list(faces.CLASS_NAMES)
    assert {"bigger_eyes", "close_mouth", "open_mouth", "look_left", "look_right", "more_hair"} <= set(model.presets)
    assert model.encoder is not None


def test_segmentation_matches_the_renderers_truth(model):
    scores = []
    for seed in SEEDS:
        params, picture = face(model, seed)
        _, truth = faces.render(params, model.generator.size)
        scores.append(miou(picture.labels, truth))
    assert np.mean(scores) > 0.6


def test_mask_edit_moves_toward_the_true_edit_and_keeps_the_rest(model):
    params, picture = face(model, SEEDS[0])
    wanted, painted = paint_true_edit(model, params, "bigger_eyes", picture.labels)
    outcome = model.edit(picture.wplus, wanted, painted, classes=faces.EDITS["bigger_eyes"].classes, steps=40)
    _, truth = faces.render(faces.apply_edit(params, "bigger_eyes"), model.generator.size)
    roi = outcome.roi
    assert miou(outcome.labels, truth, roi) > miou(picture.labels, truth, roi) + 0.05
    assert np.isin(outcome.labels, EYES).sum() > np.isin(picture.labels, EYES).sum()
    assert psnr(outcome.image, picture.image, ~roi) > 25


def test_presets_transfer_to_a_new_face(model):
    _, picture = face(model, SEEDS[1])
    bigger = model.apply_vector(picture.wplus, "bigger_eyes", 1.0)
    assert np.isin(bigger.labels, EYES).sum() > np.isin(picture.labels, EYES).sum()
    left = model.apply_vector(picture.wplus, "look_left", 1.0)
    right = model.apply_vector(picture.wplus, "look_right", 1.0)
    x_left = np.nonzero(left.labels == PUPIL)[1].mean()
    x_right = np.nonzero(right.labels == PUPIL)[1].mean()
    assert x_left < x_right


def test_its_embedding_setting_reproduces_photos_closer_than_editgans(model):
    """The model's lighter latent regularizer (config ``embed_encoder_weight``) against EditGAN's weight 1."""
    assert model.config.embed_encoder_weight < 1.0
    for seed in SEEDS[:2]:
        photo, truth = faces.render(faces.sample_params(seed), model.generator.size)
        shipped = model.embed(photo, steps=100)
        editgans = model.embed(photo, steps=100, options=EmbedOptions(encoder_weight=1.0))
        assert psnr(shipped.image, photo) > psnr(editgans.image, photo)
        assert miou(shipped.labels, truth) > miou(editgans.labels, truth)
