"""The engine's two phases (a picture first, its label map after) and an edit started from a rendering the caller
has: the same results as the one-phase paths, bit for bit."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_models import tiny_model_folder

from editgan.engine.model import EditGANModel, Picture, Rendering


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return {"whole": tiny_model_folder(root / "whole", with_encoder=False),
            "rows": tiny_model_folder(root / "rows", with_encoder=False, image_box=(8, 0, 16, 32)),
            "inset": tiny_model_folder(root / "inset", with_encoder=False, image_box=(8, 4, 16, 24))}


@pytest.fixture(scope="module")
def model(folders):
    return EditGANModel.from_folder(folders["whole"], device="cpu")


def same(a: Rendering, b: Rendering) -> None:
    assert np.array_equal(a.wplus, b.wplus)
    assert np.array_equal(a.image, b.image)
    assert a.labels is not None and np.array_equal(a.labels, b.labels)


def test_two_phase_sample_and_render_equal_the_one_phase_ones(model):
    picture = model.sample_picture(seed=3, truncation=0.6)
    assert isinstance(picture, Picture) and picture.features is not None
    one = model.sample(seed=3, truncation=0.6)
    assert np.array_equal(picture.image, one.image)
    same(model.segment(picture), one)
    assert picture.features is None  # read once, then dropped
    same(model.segment(picture), one)  # without them, the map is computed from the latent again
    same(model.segment(model.draw(one.wplus)), model.render(one.wplus))
    assert model.label_map_s is not None and model.label_map_s >= 0


def test_segmenter_rows_are_the_full_maps_rows_bitwise(model):
    with torch.no_grad():
        _, feats = model.generator.synthesis(model.mean_wplus, return_features=True)
        full = model.segmenter.forward(feats, (32, 32), chunk=96)  # bands of 3 rows: (5, 20) cuts two of them
        part = model.segmenter.forward(feats, (32, 32), chunk=96, rows=(5, 20))
    assert torch.equal(part, full[..., 5:20, :])
    with pytest.raises(ValueError, match="rows"):
        model.segmenter.forward(feats, (32, 32), rows=(20, 5))


def _paint(start: Rendering) -> tuple[np.ndarray, np.ndarray]:
    h, w = start.labels.shape
    painted = np.zeros((h, w), bool)
    painted[h // 4:h // 2, w // 4:w // 2] = True
    wanted = start.labels.copy()
    wanted[painted] = 1 - np.bincount(start.labels[painted], minlength=2).argmax()
    return wanted, painted


@pytest.mark.parametrize("box", ["whole", "rows", "inset"])
def test_an_edit_from_the_callers_rendering_equals_one_that_renders_it(folders, box):
    model = EditGANModel.from_folder(folders[box], device="cpu")
    start = model.sample(seed=1)
    wanted, painted = _paint(start)
    computed = model.edit(start.wplus, wanted, painted, steps=4)
    kept = model.margins.get(start.wplus)  # the labels outside the box, kept when the sample was rendered
    assert (kept is None) == (box == "whole")
    given = model.edit(start.wplus, wanted, painted, steps=4, original=start)
    model.margins.clear()  # now computed outside the box only
    given_computed = model.edit(start.wplus, wanted, painted, steps=4, original=start)
    for outcome in (given, given_computed):
        same(outcome, computed)
        assert outcome.losses == computed.losses and outcome.best_step == computed.best_step
        assert np.array_equal(outcome.vector.delta, computed.vector.delta)
        assert np.array_equal(outcome.roi, computed.roi)


def test_an_edit_refuses_a_rendering_of_another_latent(model):
    start, other = model.sample(seed=1), model.sample(seed=2)
    wanted, painted = _paint(start)
    with pytest.raises(ValueError, match="another latent"):
        model.edit(start.wplus, wanted, painted, steps=1, original=other)
    with pytest.raises(ValueError, match="label map must be 32×32"):
        model.edit(start.wplus, wanted, painted, steps=1,
                   original=Rendering(start.wplus, start.image, start.labels[:8]))


def test_outcomes_without_their_label_map_leave_it_to_segment(model):
    start = model.sample(seed=1)
    wanted, painted = _paint(start)
    whole = model.edit(start.wplus, wanted, painted, steps=3)
    first = model.edit(start.wplus, wanted, painted, steps=3, original=start, label_map=False)
    assert first.labels is None and first.pending is not None
    assert np.array_equal(first.image, whole.image)
    same(model.segment(first.pending), whole)
    preset = [(model.presets["redder"], 1.5)]
    slid = model.apply_vectors(start.wplus, preset, label_map=False)
    assert slid.labels is None
    same(model.segment(slid.pending), model.apply_vectors(start.wplus, preset))


def test_a_plain_slider_loads_no_perceptual_network(folders):
    model = EditGANModel.from_folder(folders["whole"], device="cpu")  # offline, loading it waits on Hub retries
    model.apply_vectors(model.sample(seed=1).wplus, [(model.presets["redder"], 1.0)], label_map=False)
    assert model._perceptual is None


@pytest.mark.parametrize("box", ["whole", "rows", "inset"])
def test_a_refinement_from_the_callers_rendering_equals_one_that_renders_it(folders, box):
    from editgan.networks.lpips import PixelMSELoss

    model = EditGANModel.from_folder(folders[box], device="cpu")
    model.perceptual = PixelMSELoss()
    start = model.sample(seed=1)
    preset = [(model.presets["redder"], 1.5)]
    computed = model.apply_vectors(start.wplus, preset, refine_steps=4)
    predicted: list[int] = []
    predict = model.segmenter.predict

    def counted(*args, **kwargs):
        predicted.append(kwargs.get("rows") is None)
        return predict(*args, **kwargs)

    model.segmenter.predict = counted
    given = model.apply_vectors(start.wplus, preset, refine_steps=4, original=start, label_map=False)
    assert predicted.count(True) == 1, "one full label map before the steps: the moved latent's, its target"
    same(model.segment(given.pending), computed)
    assert given.losses == computed.losses and given.best_step == computed.best_step
    assert np.array_equal(given.roi, computed.roi)
    with pytest.raises(ValueError, match="another latent"):
        model.apply_vectors(start.wplus, preset, refine_steps=1, original=model.sample(seed=2))
