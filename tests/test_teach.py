"""Teaching a branch: features at sampled pixels, training, the taught model (saved, reloaded, editing) and the
``teach`` command, on the tiny test model."""
from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
import torch
from tiny_models import STYLE_DIM, tiny_generator, tiny_model_folder

import editgan
from editgan.cli import main
from editgan.engine.model import EditGANModel
from editgan.errors import TeachCancelled, TeachError
from editgan.networks.pixel_taps import upsample_to
from editgan.networks.segmenter import Segmenter, SegmenterConfig
from editgan.teach.annotations import AnnotationSet, write_annotations
from editgan.teach.branch import TeachOptions, fitted_pixels_per_image, save_taught_model, teach_branch
from editgan.teach.training import (
    IGNORE,
    SegmenterTrainingOptions,
    feature_rows,
    pixel_features,
    sample_pixels,
    train_segmenter,
)

CLASSES = ["dark", "middle", "bright"]
PALETTE = [(0, 0, 0), (128, 128, 128), (255, 255, 255)]
FAST = TeachOptions(members=2, epochs=8, pixels_per_image=512, batch_size=1024, lr=3e-3, class_balance=0,
                    agreement_folds=3)


TEACHERS: dict[int, tuple] = {}


def teacher_classes(model: EditGANModel, wplus: np.ndarray) -> np.ndarray:
    """Three classes by thresholds at the terciles of a fixed random classifier's score of the generator's
    features: a labelling that the features determine, as a person's is meant to be."""
    def score(w: np.ndarray) -> torch.Tensor:
        with torch.no_grad():
            _, feats = model.generator.synthesis(torch.from_numpy(w)[None], return_features=True)
            return teacher(feats)[0, 0]
    if id(model.generator) not in TEACHERS:
        torch.manual_seed(5)
        teacher = Segmenter(SegmenterConfig(tuple(model.generator.feature_channels()), 1, 1, (8, 8))).eval()
        pooled = torch.cat([score(model.sample(seed).wplus).ravel() for seed in range(12)])
        TEACHERS[id(model.generator)] = teacher, pooled.quantile(1 / 3), pooled.quantile(2 / 3)
    teacher, low, high = TEACHERS[id(model.generator)]
    value = score(wplus)
    return ((value > low).long() + (value > high).long()).numpy()


def annotate(model: EditGANModel, seeds) -> AnnotationSet:
    annotations = AnnotationSet(CLASSES, PALETTE, truncation=model.config.truncation)
    for seed in seeds:
        rendering = model.sample(seed)
        annotations.add(teacher_classes(model, rendering.wplus), seed=seed)
    return annotations


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return tiny_model_folder(tmp_path_factory.mktemp("tiny") / "tiny", with_encoder=False)


@pytest.fixture(scope="module")
def model(source):
    return EditGANModel.from_folder(source, device="cpu")


@pytest.fixture(scope="module")
def taught(model):
    return teach_branch(model, annotate(model, range(9)), FAST)


# -- features and training ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@torch.no_grad()
def test_features_at_sampled_pixels_equal_upsampling_every_map_then_picking(mode):
    g = tiny_generator(2)
    _, feats = g.synthesis(g.to_wplus(g.mapping(torch.randn(2, STYLE_DIM))), return_features=True)
    pixels = torch.stack([torch.randint(0, 32, (300,)), torch.randint(0, 32, (300,))], 1)
    upsampled = torch.cat([upsample_to(f, (32, 32), mode) for f in feats], 1)  # DatasetGAN's way, the reference
    expected = upsampled[:, :, pixels[:, 0], pixels[:, 1]].transpose(1, 2)
    got = pixel_features(feats, pixels, (32, 32), mode)
    assert got.shape == (2, 300, sum(g.feature_channels()))
    assert (got - expected).abs().max() <= 1e-5
    labels = torch.randint(0, 3, (2, 32, 32))
    rows, targets = feature_rows(g, g.to_wplus(g.mapping(torch.randn(2, STYLE_DIM))), labels, mode, 100)
    assert rows.shape == (200, sum(g.feature_channels())) and rows.dtype == torch.float16 and targets.shape == (200,)


@torch.no_grad()
def test_feature_rows_are_each_samples_features_in_order_skipping_unlabelled_samples():
    g = tiny_generator(3)
    wplus = g.to_wplus(g.mapping(torch.randn(3, STYLE_DIM)))
    labels = torch.full((3, 32, 32), IGNORE)
    labels[0, :4] = 1
    labels[2, 10:12, 3:9] = 2  # the middle sample has no label: it gives no rows
    rows, targets = feature_rows(g, wplus, labels, "bilinear", None)
    expected = []
    for i in (0, 2):
        pixels = (labels[i] != IGNORE).nonzero()
        _, feats = g.synthesis(wplus[i:i + 1], return_features=True)
        expected.append(pixel_features(feats, pixels, (32, 32))[0])
    assert torch.equal(rows, torch.cat(expected).half())
    assert targets.tolist() == [1] * 128 + [2] * 12


def test_unlabelled_pixels_are_never_sampled():
    labels = torch.full((16, 16), IGNORE)
    labels[4:8, 2:5] = 1
    draw = torch.Generator().manual_seed(0)
    everything = sample_pixels(labels, None, draw)
    assert everything.shape == (12, 2) and (labels[everything[:, 0], everything[:, 1]] == 1).all()
    some = sample_pixels(labels, 5, draw)
    assert some.shape == (5, 2) and (labels[some[:, 0], some[:, 1]] == 1).all()


def test_training_reports_each_epoch_of_each_member_and_can_be_cancelled():
    g = tiny_generator(1)
    wplus = g.to_wplus(g.mapping(torch.randn(2, STYLE_DIM)))
    labels = torch.randint(0, 2, (2, 32, 32))
    config = SegmenterConfig(tuple(g.feature_channels()), 2, n_members=2, hidden=(16, 8))
    seen = []
    train_segmenter(g, wplus, labels, config, SegmenterTrainingOptions(epochs=3, batch_size=256, pixels_per_image=300),
                    progress=lambda p: seen.append((p.member, p.epoch, p.members, p.epochs)))
    assert seen == [(m, e, 2, 3) for m in (1, 2) for e in (1, 2, 3)]
    calls = []
    with pytest.raises(TeachCancelled):
        train_segmenter(g, wplus, labels, config, SegmenterTrainingOptions(epochs=3, batch_size=256),
                        should_stop=lambda: calls.append(1) or len(calls) > 4)
    assert len(calls) == 5


# -- the taught model -------------------------------------------------------------------------------------------
def test_taught_branch_learns_the_annotations_and_replaces_the_old_one(model, taught):
    new, report = taught
    assert new.config.class_names == CLASSES and new.config.palette == PALETTE
    assert len(new.segmenter.members) == 2 and new.config.segmenter.n_members == 2
    assert model.config.class_names == ["other", "reddish"]  # the source is left alone
    assert new.generator is model.generator and not new.presets  # the preset named the source's classes
    assert report.dropped_presets == ["redder"] and report.replaced_branch
    for seed in (0, 20, 21):  # an annotated sample, then two it never saw
        rendering = new.sample(seed)
        accuracy = (rendering.labels == teacher_classes(model, rendering.wplus)).mean()
        assert accuracy > (0.9 if seed == 0 else 0.6), (seed, accuracy)
    agreement = report.agreement
    assert agreement.folds == 3 and sorted(agreement.per_sample) == sorted(str(s) for s in range(9))
    assert 0.4 < agreement.miou <= 1 and set(agreement.class_iou) == set(CLASSES)
    assert "leave-some-out" in agreement.method
    record = new.config.extra["teach"]
    assert record["samples"] == 9 and record["agreement"]["folds"] == 3 and record["training_seconds"] > 0
    assert any("held-out agreement: mIoU" in line for line in report.summary())


def test_teaching_the_same_classes_keeps_the_presets(model):
    annotations = AnnotationSet.for_model(model)
    for seed in range(3):
        rendering = model.sample(seed)
        annotations.add(rendering.labels, rendering.wplus, name=f"sample-{seed}")
    options = TeachOptions(members=2, epochs=1, pixels_per_image=200, batch_size=256, agreement_folds=0)
    new, report = teach_branch(model, annotations, options, name="tiny-again")
    assert list(new.presets) == ["redder"] and report.agreement is None and new.config.name == "tiny-again"


def test_taught_model_saves_reloads_and_edits(taught, tmp_path):
    new, report = taught
    folder = save_taught_model(new, tmp_path / "taught")
    loaded = editgan.load(str(folder), device="cpu")
    assert loaded.config.class_names == CLASSES and loaded.config.extra["teach"]["samples"] == 9
    np.testing.assert_array_equal(loaded.sample(4).labels, new.sample(4).labels)
    card = (folder / "README.md").read_text()
    assert "9 annotated samples" in card and "Held-out agreement: mIoU" in card and "dark" in card
    assert "Training took" in card
    start = loaded.sample(5)
    wanted = start.labels.copy()
    wanted[8:16, 8:16] = 2
    outcome = loaded.edit(start.wplus, wanted, wanted != start.labels, steps=3)
    assert outcome.vector is not None and outcome.labels.shape == (32, 32)
    with pytest.raises(TeachError, match="exists and is not empty"):
        save_taught_model(new, folder)


def test_bad_options_and_annotations_are_refused(model):
    with pytest.raises(TeachError, match="members must be a whole number from 1 to 32"):
        teach_branch(model, annotate(model, [0]), TeachOptions(members=0))
    small = AnnotationSet(CLASSES, PALETTE)
    small.add(np.zeros((16, 16), np.int64), np.zeros((8, STYLE_DIM), np.float32), name="small")
    with pytest.raises(editgan.errors.AnnotationError, match="sample small: its label map is 16×16"):
        teach_branch(model, small, FAST)
    cancelled = TeachOptions(members=1, epochs=1, agreement_folds=0)
    with pytest.raises(TeachCancelled):
        teach_branch(model, annotate(model, [0]), cancelled, should_stop=lambda: True)


def test_pixels_per_image_are_the_most_whose_rows_fit_the_budget():
    counts, channels = [5000, 300, 5000, 90], 1000
    for asked in (None, 4096, 200):
        for rows in (100_000, 9_000, 1_000, 600):
            budget_gb = rows * 2 * channels / 2**30
            fitted = fitted_pixels_per_image(counts, channels, asked, budget_gb)
            fits = [p for p in range(64, (asked or 5000) + 1) if sum(min(c, p) for c in counts) <= rows]
            if sum(min(c, asked or c) for c in counts) <= rows:
                assert fitted == asked
            elif fits:
                assert fitted == max(fits) < (asked or 5000)
    with pytest.raises(TeachError, match="need more than .* GB for training rows even at 64 pixels each: teach "
                                         "from fewer samples"):
        fitted_pixels_per_image(counts, channels, 4096, 200 * 2 * channels / 2**30)


def test_a_run_over_the_row_budget_samples_fewer_pixels_and_says_so(model, tmp_path):
    """200 samples × 4096 pixels of a 1024-px generator would be 10 GB of rows: the budget keeps a run's memory
    bounded whatever the options (here 4 samples of 32×32 with every pixel asked, rows of 384 features)."""
    annotations = annotate(model, range(4))
    channels = sum(model.generator.feature_channels())
    budget_gb = 4 * 150 * 2 * channels / 2**30  # room for 150 pixels of each sample's 1024
    options = TeachOptions(members=1, epochs=1, pixels_per_image=None, batch_size=128, agreement_folds=2,
                           row_budget_gb=budget_gb)
    taught, report = teach_branch(model, annotations, options)
    assert report.pixels_fitted == 150 and report.options.pixels_per_image is None
    assert any("sampled at most 150 labelled pixels per sample (asked: all) to keep the training rows within"
               in line for line in report.summary())
    record = taught.config.extra["teach"]
    assert record["pixels_per_image"] == 150 and record["pixels_per_image_asked"] is None
    roomy, report = teach_branch(model, annotations, TeachOptions(members=1, epochs=1, pixels_per_image=100,
                                                                  agreement_folds=0, row_budget_gb=budget_gb))
    assert report.pixels_fitted is None and "pixels_per_image_asked" not in roomy.config.extra["teach"]
    assert not any("sampled at most" in line for line in report.summary())
    with pytest.raises(TeachError, match="training rows' budget must be above 0"):
        teach_branch(model, annotations, TeachOptions(row_budget_gb=float("nan")))


def test_progress_covers_the_branch_then_each_fold(model):
    stages = []
    options = TeachOptions(members=1, epochs=2, pixels_per_image=100, batch_size=64, agreement_folds=2)
    teach_branch(model, annotate(model, range(4)), options, on_progress=lambda p: stages.append((p.stage,
                                                                                                p.fraction)))
    assert [s for s, _ in stages] == ["branch", "branch", "fold 1/2", "fold 1/2", "fold 2/2", "fold 2/2"]
    fractions = [f for _, f in stages]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_partial_branches_preview_the_members_so_far_and_change_nothing(model):
    annotations = annotate(model, range(4))
    options = TeachOptions(members=3, epochs=2, pixels_per_image=200, batch_size=128, agreement_folds=0)
    plain, _ = teach_branch(model, annotations, options)
    partials = []

    def look(partial: EditGANModel, count: int) -> None:
        partials.append((count, len(partial.segmenter.members), partial.sample(7).labels))

    taught, _ = teach_branch(model, annotations, options, on_partial=look, partial_every_s=0)
    assert [(count, members) for count, members, _ in partials] == [(1, 1), (2, 2)]
    assert all(labels is not None and labels.shape == model.sample(7).image.shape[:2]
               for _, _, labels in partials)
    for a, b in zip(plain.segmenter.state_dict().values(), taught.segmenter.state_dict().values()):
        assert torch.equal(a, b)  # the same seed gives the same branch, previews or not
    assert np.array_equal(plain.sample(7).labels, taught.sample(7).labels)
    seldom = []
    teach_branch(model, annotations, options, on_partial=lambda m, count: seldom.append(count),
                 partial_every_s=3600)
    assert seldom == [1]  # the first member at once, then at most one an hour


def test_training_takes_the_device_turns_and_lets_a_quick_action_through(model):
    annotations = annotate(model, range(4))
    options = TeachOptions(members=2, epochs=500, pixels_per_image=200, batch_size=16, agreement_folds=0)
    reports: list = []
    stop = threading.Event()
    errors: list = []

    def train() -> None:
        try:
            teach_branch(model, annotations, options, on_progress=reports.append, should_stop=stop.is_set)
        except TeachCancelled as e:
            errors.append(e)

    worker = threading.Thread(target=train)
    worker.start()
    try:
        while not reports and worker.is_alive():
            time.sleep(0.01)
        with model.turns.hold():  # a visitor's slider: served between two batches, not after the training
            seen = len(reports)
            rendering = model.sample(3)  # reentrant in the visitor's turn
            time.sleep(0.2)
            assert len(reports) == seen  # the training waits while the visitor holds the device
        assert rendering.image is not None and worker.is_alive()
        while len(reports) == seen and worker.is_alive():
            time.sleep(0.01)
        assert len(reports) > seen  # and goes on afterwards
    finally:
        stop.set()
        worker.join(60)
    assert errors and not worker.is_alive()


# -- the command ------------------------------------------------------------------------------------------------
def test_teach_command_end_to_end(source, model, tmp_path, capsys):
    labels = write_annotations(tmp_path / "labels", annotate(model, range(4)))
    out = tmp_path / "taught"
    args = ["teach", "--model", str(source), "--labels", str(labels), "--out", str(out), "--members", "2",
            "--epochs", "3", "--pixels-per-image", "0", "--agreement-folds", "2"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "4 annotated samples, 3 classes" in printed and "branch: member 2/2 epoch 3/3" in printed
    assert "held-out agreement: mIoU" in printed and f"taught: {out}" in printed
    config = json.loads((out / "config.json").read_text())
    assert [c["name"] for c in config["classes"]] == CLASSES and config["segmenter"]["n_members"] == 2
    assert main(args) == 2  # the folder exists now
    assert "exists and is not empty (pass --overwrite" in capsys.readouterr().err
    assert main(args + ["--overwrite", "--agreement-folds", "0"]) == 0


@pytest.mark.parametrize("problem, expected", [
    ("bad map", "error: 1.png: the label map is 8×8; this model's pictures are 32×32"),
    ("no folder", "error: missing is not a folder"),
    ("bad option", "error: members must be a whole number from 1 to 32, got 99"),
])
def test_teach_command_errors_are_one_line(problem, expected, source, tmp_path, capsys):
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "classes.json").write_text(json.dumps({"classes": [{"name": n, "color": list(c)}
                                                                 for n, c in zip(CLASSES, PALETTE)]}))
    from PIL import Image
    Image.new("L", (8, 8)).save(labels / "1.png")
    folder = {"no folder": tmp_path / "missing"}.get(problem, labels)
    args = ["teach", "--model", str(source), "--labels", str(folder), "--out", str(tmp_path / "out")]
    assert main(args + (["--members", "99"] if problem == "bad option" else [])) == 2
    err = capsys.readouterr().err
    assert err.strip() == expected and not (tmp_path / "out").exists()
