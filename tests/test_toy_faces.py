"""Tests for the procedural cartoon-face renderer (editgan.toy.faces)."""
from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from editgan.toy import faces as F

C = {name: i for i, name in enumerate(F.CLASS_NAMES)}
EYE = [C["eye_white"], C["iris"], C["pupil"]]
PARTS = [C[n] for n in ("eyebrow", "eye_white", "iris", "pupil", "nose", "lips", "mouth_interior")]


def _count(labels: np.ndarray, classes: list[int] | int) -> int:
    return int(np.isin(labels, np.atleast_1d(classes)).sum())


def _touches(labels: np.ndarray, a: int, b: int) -> bool:
    """Whether any pixel of class a is 4-adjacent to a pixel of class b."""
    A, B = labels == a, labels == b
    horiz = (A[:, :-1] & B[:, 1:]) | (B[:, :-1] & A[:, 1:])
    vert = (A[:-1] & B[1:]) | (B[:-1] & A[1:])
    return bool(horiz.any() or vert.any())


def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
    out = mask.copy()
    for dy, dx in itertools.product(range(-r, r + 1), repeat=2):
        out |= np.roll(np.roll(mask, dy, 0), dx, 1)
    return out


def _pupil_x(labels: np.ndarray) -> tuple[float, float]:
    """Pupil centroid x of the left and of the right eye (image halves)."""
    half = labels.shape[1] // 2
    left = np.nonzero(labels[:, :half] == C["pupil"])[1]
    right = np.nonzero(labels[:, half:] == C["pupil"])[1] + half
    return float(left.mean()), float(right.mean())


@pytest.fixture(scope="module")
def prior_faces() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    params = F.sample_params_batch(50, 1234)
    images, labels = F.render_batch(params, 64)
    return params, images, labels


@pytest.fixture(scope="module")
def stress_params() -> np.ndarray:
    """Prior samples plus corners of the unit cube (the CDF of extreme latents)."""
    rng = np.random.default_rng(99)
    corners = (rng.random((40, F.NUM_PARAMS)) < 0.5).astype(np.float32)
    fixed = np.stack([np.zeros(F.NUM_PARAMS), np.ones(F.NUM_PARAMS)]).astype(np.float32)
    return np.concatenate([F.sample_params_batch(40, rng), corners, fixed])


# ---------------------------------------------------------------------------- constants


def test_class_names_and_palette() -> None:
    assert F.CLASS_NAMES == (
        "background", "skin", "hair", "eyebrow", "eye_white", "iris", "pupil", "nose", "lips", "mouth_interior",
    )
    assert len(F.PALETTE) == len(F.CLASS_NAMES)
    assert F.PALETTE[0] == (0, 0, 0)
    pal = np.array(F.PALETTE, dtype=int)
    dists = np.abs(pal[:, None] - pal[None]).sum(-1) + np.eye(len(pal), dtype=int) * 999
    assert dists.min() >= 100, "palette colours must be clearly distinguishable"


def test_parameter_names() -> None:
    assert 16 <= len(F.PARAM_NAMES) <= 24
    assert len(set(F.PARAM_NAMES)) == len(F.PARAM_NAMES)
    required = (
        "face_width", "face_height", "skin_tone", "hair_style", "hair_amount", "hair_color", "brow_thickness",
        "brow_height", "eye_size", "eye_spacing", "gaze_x", "gaze_y", "iris_color", "nose_size", "mouth_width",
        "mouth_open", "background_hue",
    )
    for name in required:
        assert name in F.PARAM_NAMES
        assert F.PARAM_NAMES[F.param_index(name)] == name


def test_sample_params_is_uniform_prior() -> None:
    p = F.sample_params(0)
    assert p.shape == (F.NUM_PARAMS,) and p.dtype == np.float32
    np.testing.assert_array_equal(p, F.sample_params(0))
    np.testing.assert_array_equal(F.sample_params(np.random.default_rng(5)), F.sample_params(5))
    batch = F.sample_params_batch(4000, 1)
    assert batch.shape == (4000, F.NUM_PARAMS) and batch.dtype == np.float32
    assert batch.min() >= 0.0 and batch.max() <= 1.0
    np.testing.assert_allclose(batch.mean(0), 0.5, atol=0.03)
    np.testing.assert_allclose(batch.std(0), np.sqrt(1 / 12), atol=0.02)


def test_make_params() -> None:
    p = F.make_params(eye_size=0.9, gaze_x=2.0)
    assert p[F.param_index("eye_size")] == pytest.approx(0.9)
    assert p[F.param_index("gaze_x")] == 1.0  # clipped
    assert p[F.param_index("nose_size")] == 0.5
    with pytest.raises(ValueError):
        F.make_params(not_a_param=0.3)


# ---------------------------------------------------------------------------- rendering


@pytest.mark.parametrize("size", [64, 128])
def test_render_shapes_dtypes_determinism(size: int) -> None:
    p = F.sample_params(3)
    img, lab = F.render(p, size)
    assert img.shape == (size, size, 3) and img.dtype == np.uint8
    assert lab.shape == (size, size) and lab.dtype == np.uint8
    assert lab.max() < len(F.CLASS_NAMES)
    img2, lab2 = F.render(p.copy(), size)
    np.testing.assert_array_equal(img, img2)
    np.testing.assert_array_equal(lab, lab2)


def test_render_batch_matches_render() -> None:
    params = F.sample_params_batch(3, 8)
    imgs, labs = F.render_batch(params, 64)
    assert imgs.shape == (3, 64, 64, 3) and labs.shape == (3, 64, 64)
    for i, p in enumerate(params):
        img, lab = F.render(p, 64)
        np.testing.assert_array_equal(imgs[i], img)
        np.testing.assert_array_equal(labs[i], lab)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError):
        F.render(np.zeros(F.NUM_PARAMS - 1))
    with pytest.raises(ValueError):
        F.render(F.sample_params(0), size=4)
    img, lab = F.render(F.sample_params(0), size=40)
    assert img.shape == (40, 40, 3) and lab.shape == (40, 40)


def test_every_point_of_the_cube_is_a_face(stress_params: np.ndarray) -> None:
    must_have = [C[n] for n in ("skin", "hair", "eyebrow", "eye_white", "iris", "pupil", "nose", "lips")]
    for p in stress_params:
        _, lab = F.render(p, 64)
        present = set(np.unique(lab).tolist())
        assert set(must_have) <= present, (p, present)


def test_sizes_are_consistent() -> None:
    """128 px is the same picture as 64 px, only sharper."""
    for seed in range(3):
        p = F.sample_params(seed)
        _, small = F.render(p, 64)
        _, big = F.render(p, 128)
        assert np.mean(big[::2, ::2] == small) > 0.93


def test_anti_aliasing(prior_faces) -> None:
    params, images, _ = prior_faces
    hi_rgb, hi_lab = F.render_supersampled(params[0], 64)
    assert hi_rgb.shape == (256, 256, 3) and hi_lab.shape == (256, 256)
    # The RGB is a box filter of the 4x supersampled drawing ...
    box = hi_rgb.reshape(64, 4, 64, 4, 3).astype(float).mean(axis=(1, 3))
    assert np.abs(box - images[0].astype(float)).max() <= 0.5 + 1e-9
    # ... so on boundaries between two flat colours the output lies strictly between them.
    blocks = hi_rgb.reshape(64, 4, 64, 4, 3).transpose(0, 2, 1, 3, 4).reshape(64, 64, 16, 3).astype(int)
    lo, hi = blocks.min(axis=2), blocks.max(axis=2)
    mixed = (hi - lo).max(axis=-1) >= 30
    out = images[0].astype(int)
    strictly_between = mixed & np.all((out > lo) | (lo == hi), -1) & np.all((out < hi) | (lo == hi), -1)
    assert strictly_between.sum() >= 100
    # ... and the label of each pixel is the majority label of its block.
    hb = hi_lab.reshape(64, 4, 64, 4).transpose(0, 2, 1, 3).reshape(64, 64, 16)
    counts = (hb[..., None] == np.arange(len(F.CLASS_NAMES))).sum(2)
    _, lab = F.render(params[0], 64)
    assert np.all(counts[np.arange(64)[:, None], np.arange(64)[None, :], lab] == counts.max(-1))
    # Many more colours than the handful of flat ones drawn.
    assert len(np.unique(images[0].reshape(-1, 3), axis=0)) > 100


# ---------------------------------------------------------------------------- layout


def test_classes_present_across_prior(prior_faces) -> None:
    params, _, labels = prior_faces
    present = np.array([[np.any(lab == c) for c in range(len(F.CLASS_NAMES))] for lab in labels])
    for c, name in enumerate(F.CLASS_NAMES):
        share = present[:, c].mean()
        assert share >= (0.3 if name == "mouth_interior" else 0.95), (name, share)
    eyes = present[:, C["eye_white"]]
    assert np.all(present[eyes, C["pupil"]]), "pupils must be visible whenever eyes are"
    open_mouth = params[:, F.param_index("mouth_open")] >= F.MOUTH_CLOSED_BELOW + 0.05
    assert np.all(present[open_mouth, C["mouth_interior"]])
    assert not np.any(present[params[:, F.param_index("mouth_open")] < F.MOUTH_CLOSED_BELOW, C["mouth_interior"]])


def test_face_fills_the_frame_and_parts_are_big_enough(prior_faces) -> None:
    _, _, labels = prior_faces
    assert np.mean(labels == C["background"]) <= 0.4
    eye_w, pupil_w, pupil_h, mouth_w = [], [], [], []
    for lab in labels:
        left = lab[:, :32]
        xs = np.nonzero(np.isin(left, EYE))[1]
        eye_w.append(xs.max() - xs.min() + 1)
        ys, xs = np.nonzero(left == C["pupil"])
        pupil_w.append(xs.max() - xs.min() + 1)
        pupil_h.append(ys.max() - ys.min() + 1)
        xs = np.nonzero(np.isin(lab, [C["lips"], C["mouth_interior"]]))[1]
        mouth_w.append(xs.max() - xs.min() + 1)
    assert np.mean(eye_w) >= 7
    assert np.mean(pupil_w) >= 2 and np.mean(pupil_h) >= 2
    assert np.mean(mouth_w) >= 12


def test_parts_never_overlap_nonsensically(stress_params: np.ndarray) -> None:
    forbidden = [
        ("hair", "eyebrow"), ("hair", "eye_white"), ("hair", "iris"), ("hair", "nose"), ("hair", "lips"),
        ("eyebrow", "eye_white"), ("iris", "skin"), ("pupil", "skin"), ("pupil", "eye_white"),
        ("nose", "lips"), ("nose", "eye_white"), ("mouth_interior", "skin"),
    ]
    for p in stress_params:
        _, lab = F.render_supersampled(p, 64)
        for a, b in forbidden:
            assert not _touches(lab, C[a], C[b]), (a, b, p)
        # Facial parts stay inside the frame.
        border = np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]])
        assert not np.isin(border, PARTS).any()
        # Brows above the eyes, on each side; eyes mirror each other about the centre line.
        half = lab.shape[1] // 2
        for side in (lab[:, :half], lab[:, half:]):
            brow_rows = np.nonzero(side == C["eyebrow"])[0]
            eye_rows = np.nonzero(np.isin(side, EYE))[0]
            assert brow_rows.max() < eye_rows.min()
        eye = np.isin(lab, EYE)
        assert (eye != eye[:, ::-1]).sum() <= 0.1 * eye.sum()
        cols = np.nonzero(eye.any(0))[0]
        assert abs((cols.min() + cols.max()) / 2 - (lab.shape[1] - 1) / 2) <= 1.0


# ---------------------------------------------------------------------------- variety


def test_variety_across_seeds(prior_faces) -> None:
    params, images, labels = prior_faces
    imgs = images[:16].astype(np.int16)
    for i, j in itertools.combinations(range(16), 2):
        assert np.abs(imgs[i] - imgs[j]).mean() > 8, (i, j)
        assert np.mean(labels[i] != labels[j]) > 0.02, (i, j)
    # Every discrete hair style and both mouth states show up among 50 faces.
    styles = {min(int(v * len(F.HAIR_STYLES)), len(F.HAIR_STYLES) - 1) for v in params[:, F.param_index("hair_style")]}
    assert styles == set(range(len(F.HAIR_STYLES)))


def test_hair_styles_look_different() -> None:
    base = F.sample_params(11)
    masks = [F.render(F.make_params(base, hair_style=(s + 0.5) / len(F.HAIR_STYLES)))[1] == C["hair"]
             for s in range(len(F.HAIR_STYLES))]
    for a, b in itertools.combinations(masks, 2):
        assert np.mean(a != b) > 0.02


# ---------------------------------------------------------------------------- edits


def test_edit_registry() -> None:
    for name in ("bigger_eyes", "close_mouth", "open_mouth", "look_left", "look_right", "more_hair"):
        assert name in F.EDITS
    for name, edit in F.EDITS.items():
        assert edit.name == name and edit.display_name
        assert 1 <= len(edit.targets) <= 2
        assert all(pname in F.PARAM_NAMES and 0.0 <= t <= 1.0 for pname, t in edit.targets)
        assert edit.classes and all(0 <= c < len(F.CLASS_NAMES) for c in edit.classes)
    assert set(F.EDITS["bigger_eyes"].classes) == set(EYE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        F.EDITS["bigger_eyes"].name = "x"  # type: ignore[misc]


def test_apply_edit_strength() -> None:
    p = F.make_params(F.sample_params(2), eye_size=0.2)
    i = F.param_index("eye_size")
    np.testing.assert_array_equal(F.apply_edit(p, "bigger_eyes", 0.0), p)
    assert F.apply_edit(p, "bigger_eyes")[i] == pytest.approx(1.0)
    assert F.apply_edit(p, "bigger_eyes", 0.5)[i] == pytest.approx(0.6)
    assert F.apply_edit(p, "bigger_eyes", 3.0)[i] == 1.0  # clipped
    q = F.apply_edit(p, "bigger_eyes", 0.5)
    assert q.dtype == np.float32
    np.testing.assert_array_equal(np.delete(q, i), np.delete(p, i))
    np.testing.assert_array_equal(F.EDITS["bigger_eyes"].apply(p, 0.5), q)
    with pytest.raises(KeyError):
        F.apply_edit(p, "no_such_edit")


EDIT_SEEDS = range(8)


def _before_after(name: str, seed: int, **start: float) -> tuple[np.ndarray, ...]:
    p = F.make_params(F.sample_params(seed), **start)
    img_a, lab_a = F.render(p)
    img_b, lab_b = F.render(F.apply_edit(p, name))
    return img_a, lab_a, img_b, lab_b


@pytest.mark.parametrize("seed", EDIT_SEEDS)
def test_bigger_eyes(seed: int) -> None:
    _, a, _, b = _before_after("bigger_eyes", seed, eye_size=0.35)
    assert _count(b, EYE) >= 1.3 * _count(a, EYE)
    for c in ("hair", "background", "eyebrow", "nose", "lips"):
        np.testing.assert_array_equal(a == C[c], b == C[c])


@pytest.mark.parametrize("seed", EDIT_SEEDS)
def test_mouth_edits(seed: int) -> None:
    _, a, _, b = _before_after("close_mouth", seed, mouth_open=0.9)
    assert _count(a, C["mouth_interior"]) > 0 and _count(b, C["mouth_interior"]) == 0
    _, a, _, b = _before_after("open_mouth", seed, mouth_open=0.1)
    assert _count(a, C["mouth_interior"]) == 0 and _count(b, C["mouth_interior"]) > 0


@pytest.mark.parametrize("seed", EDIT_SEEDS)
def test_gaze_edits(seed: int) -> None:
    p = F.make_params(F.sample_params(seed), gaze_x=0.5)
    _, mid = F.render(p)
    _, left = F.render(F.apply_edit(p, "look_left"))
    _, right = F.render(F.apply_edit(p, "look_right"))
    for lx, mx, rx in zip(_pupil_x(left), _pupil_x(mid), _pupil_x(right)):
        assert lx < mx < rx
    # The eyes themselves do not move: exact at the drawing resolution, to a pixel or so at 64 px.
    eye_hi = np.isin(F.render_supersampled(p)[1], EYE)
    for name in ("look_left", "look_right"):
        np.testing.assert_array_equal(eye_hi, np.isin(F.render_supersampled(F.apply_edit(p, name))[1], EYE))
    for lab in (left, right):
        assert abs(_count(lab, EYE) - _count(mid, EYE)) <= 3
        assert abs(_count(lab, C["eye_white"]) - _count(mid, C["eye_white"])) <= 0.15 * _count(mid, C["eye_white"])


@pytest.mark.parametrize("seed", EDIT_SEEDS)
def test_more_hair(seed: int) -> None:
    _, a, _, b = _before_after("more_hair", seed, hair_amount=0.3)
    assert _count(b, C["hair"]) > _count(a, C["hair"])


@pytest.mark.parametrize("name", sorted(F.EDITS))
def test_edits_are_local(name: str) -> None:
    """Labels change only within the edit's classes (plus displaced skin/background);
    colours change only on or right next to those classes."""
    edit = F.EDITS[name]
    allowed = list(edit.classes) + [C["skin"], C["background"]]
    changed_any = False
    for seed in range(6):
        img_a, a, img_b, b = _before_after(name, seed)
        diff = a != b
        changed_any |= bool(diff.any())
        assert np.isin(a[diff], allowed).all() and np.isin(b[diff], allowed).all(), name
        near = _dilate(np.isin(a, edit.classes) | np.isin(b, edit.classes), 2)
        np.testing.assert_array_equal(img_a[~near], img_b[~near])
    assert changed_any, f"{name} never changed anything"


def test_small_sizes_render_without_errors():
    for seed in range(60):
        image, labels = F.render(F.sample_params(seed), 16)
        assert image.shape == (16, 16, 3) and labels.shape == (16, 16)
