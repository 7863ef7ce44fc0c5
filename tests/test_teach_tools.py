"""The engine helpers a Teach canvas calls: the fill tool and the ensemble's uncertainty map."""
from __future__ import annotations

import copy
from collections import deque

import numpy as np
import pytest
import torch
from tiny_models import tiny_model_folder

from editgan.engine.fill import connected_region, fill_region
from editgan.engine.model import EditGANModel
from editgan.engine.uncertainty import uncertainty


def reference_region(mask: np.ndarray, x: int, y: int) -> np.ndarray:
    """Pixel-by-pixel breadth-first search: the obvious, slow flood fill."""
    region = np.zeros_like(mask)
    queue = deque([(y, x)])
    region[y, x] = True
    while queue:
        r, c = queue.popleft()
        for rr, cc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
            if 0 <= rr < mask.shape[0] and 0 <= cc < mask.shape[1] and mask[rr, cc] and not region[rr, cc]:
                region[rr, cc] = True
                queue.append((rr, cc))
    return region


def test_connected_region_matches_a_pixel_by_pixel_search():
    rng = np.random.default_rng(0)
    for _ in range(100):
        mask = rng.random((rng.integers(1, 25), rng.integers(1, 25))) < rng.uniform(0.3, 0.8)
        if not mask.any():
            continue
        y, x = np.argwhere(mask)[rng.integers(mask.sum())]
        np.testing.assert_array_equal(connected_region(mask, x, y), reference_region(mask, x, y))


def test_fill_by_picture_colour_and_by_class():
    picture = np.zeros((6, 8, 3), dtype=np.uint8)
    picture[:, :4] = (200, 10, 10)  # a red left half ...
    picture[1, 1] = (205, 12, 8)  # ... with a slightly different pixel
    picture[:, 4:] = (10, 10, 200)
    picture[0, 4] = (200, 10, 10)  # red, but touching the left half only at its edge: 4-connected to (3, 0)
    picture[5, 7] = (200, 10, 10)  # red, not connected
    labels = np.zeros((6, 8), dtype=np.int64)
    exact = fill_region(labels, picture, 0, 0, 2, tolerance=0)
    assert exact[1, 1] == 0 and exact[0, 0] == 2 and exact[0, 4] == 2 and exact[5, 7] == 0
    tolerant = fill_region(labels, picture, 0, 0, 2, tolerance=5)
    assert tolerant[:, :4].min() == 2 and tolerant[:, 5:].max() == 0 and tolerant[5, 7] == 0
    assert labels.max() == 0  # a new map; the old one is untouched
    by_class = fill_region(tolerant, None, 6, 3, 1, source="labels")  # the right half's class 0 region
    assert (by_class[:, 5:7] == 1).all() and by_class[5, 7] == 1 and (by_class[:, :4] == 2).all()
    diagonal = np.eye(4, dtype=np.int64)
    assert fill_region(diagonal, None, 0, 0, 3, source="labels").tolist()[1][1] == 1  # diagonals do not connect
    with pytest.raises(ValueError, match="outside"):
        fill_region(labels, picture, 8, 0, 1)
    with pytest.raises(ValueError, match="tolerance"):
        fill_region(labels, picture, 0, 0, 1, tolerance=300)
    with pytest.raises(ValueError, match="source"):
        fill_region(labels, picture, 0, 0, 1, source="paint")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return EditGANModel.from_folder(tiny_model_folder(tmp_path_factory.mktemp("tiny"), with_encoder=False),
                                    device="cpu")


def test_uncertainty_is_the_share_of_members_that_disagree_with_the_ensemble(model):
    wplus = model.sample(3).wplus
    disagreement = model.uncertainty(wplus)
    assert disagreement.shape == (32, 32) and disagreement.dtype == np.float32
    members = len(model.segmenter.members)
    assert set(np.unique(disagreement)) <= {k / members for k in range(members)}
    with torch.no_grad():
        image, feats = model.generator.synthesis(torch.from_numpy(wplus)[None], return_features=True)
        upsampled = torch.cat([torch.nn.functional.interpolate(f, size=(32, 32), mode="bilinear",
                                                               align_corners=False) for f in feats], 1)
        rows = upsampled[0].flatten(1).T
        votes = torch.stack([m(rows).argmax(1) for m in model.segmenter.members])
    ensemble = model.render(wplus).labels.reshape(-1)
    expected = (votes != torch.from_numpy(ensemble)).float().mean(0).reshape(32, 32).numpy()
    np.testing.assert_allclose(disagreement, expected)
    entropy = model.uncertainty(wplus, "entropy")
    assert 0 <= entropy.min() and entropy.max() <= 1 and entropy.std() > 0


def test_uncertainty_needs_two_members_for_disagreement(model):
    single = copy.deepcopy(model.segmenter)
    del single.members[1:]
    with torch.no_grad():
        _, feats = model.generator.synthesis(torch.from_numpy(model.sample(0).wplus)[None], return_features=True)
    with pytest.raises(ValueError, match="two members"):
        uncertainty(single, feats)
    assert uncertainty(single, feats, measure="entropy").shape == (1, 32, 32)
