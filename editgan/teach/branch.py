"""Teach a model a segmentation branch from annotated samples: the engine half of the Teach tab and of
``python -m editgan teach``.

:func:`teach_branch` trains an ensemble on a model's generator from an :class:`AnnotationSet` and returns a new
model whose branch (classes, palette, pixel classifiers) is the taught one, whatever branch the source had,
together with a :class:`TeachReport`; :func:`save_taught_model` writes it as a complete model folder through the
one checkpoint writer. Nothing here knows about a UI: progress and cancelling are plain callbacks.

The report's *agreement* says how well the branch generalises from the annotations, without asking for more:
leave-some-out over the annotated samples (see :data:`AGREEMENT_METHOD`).
"""
from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from editgan.engine import editing
from editgan.engine.labels import class_ious, mean_iou
from editgan.engine.model import EditGANModel
from editgan.errors import AnnotationError, TeachError
from editgan.modelio.checkpoint import write_new_model
from editgan.modelio.config import ModelConfig, SegmenterSettings
from editgan.networks.segmenter import Segmenter, SegmenterConfig
from editgan.teach.annotations import AnnotationSet, resolve_latents
from editgan.teach.training import (IGNORE, SegmenterTrainingOptions, TrainingProgress, labelled_counts, row_count,
                                    train_segmenter)

log = logging.getLogger(__name__)

RECORD_KEY = "teach"
"""Where a taught model's config.json keeps how its branch was taught (``extra["teach"]``); the model card reads
it."""
AGREEMENT_METHOD = (
    "leave-some-out over the annotated samples: they are split into k folds (a seeded shuffle); for each fold a "
    "branch with the same options is trained on the other samples and predicts the fold's pictures; each "
    "prediction is scored against its annotation by mIoU (the mean, over the classes present in either map, of "
    "their intersection over union) and the agreement is the mean over all samples")
PARTIAL_EVERY_S = 5.0
"""The least time between two partial branches handed to a preview (each costs a couple of renderings)."""
ROW_BUDGET_GB = 4.0
"""The training rows' default memory bound: 200 samples × 4096 pixels of a 1024-px generator (6080 channels) would
be 10 GB; within 4 GB they get ~1770 pixels each, while 32 samples keep all 4096."""
LIMITS = {"members": (1, 32), "epochs": (1, 500), "pixels_per_image": (64, 1 << 22), "batch_size": (16, 1 << 16),
          "agreement_folds": (0, 50)}


@dataclass
class TeachOptions:
    """How a branch is taught. The defaults teach a 64-px generator from 16 samples in about a minute on two CPU
    cores; DatasetGAN used 10 members (more members make the uncertainty map finer, each costs the same)."""
    members: int = 4
    epochs: int = 10
    pixels_per_image: int | None = 4096
    """Labelled pixels sampled from each annotation (None: all). Memory is samples × this × feature channels."""
    class_balance: float = 0.25
    """Cross-entropy weights ∝ class frequency^(−class_balance): small parts (pupils) count for more."""
    batch_size: int = 4096
    lr: float = 1e-3
    seed: int = 0
    hidden: tuple[int, int] | None = None
    """Hidden widths of each classifier; None: DatasetGAN's (256/128 from 32 classes on, else 128/32)."""
    upsample_mode: str = "bilinear"
    agreement_folds: int = 4
    """Folds of the held-out agreement (capped at the number of samples); 0 skips it."""
    row_budget_gb: float = ROW_BUDGET_GB
    """The most memory the training rows may take (samples × pixels × feature channels × 2 bytes); a run that
    would take more samples fewer pixels per image (:func:`fitted_pixels_per_image`) and its report says so."""

    def check(self) -> None:
        for name, (low, high) in LIMITS.items():
            value = getattr(self, name)
            if value is None and name == "pixels_per_image":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise TeachError(f"{name.replace('_', ' ')} must be a whole number from {low} to {high}, got {value}")
        if not 0.0 <= self.class_balance <= 2.0:
            raise TeachError(f"class balance must be from 0 to 2, got {self.class_balance}")
        if not 0.0 < self.row_budget_gb <= 1024.0:
            raise TeachError(f"the training rows' budget must be above 0 and at most 1024 GB, got "
                             f"{self.row_budget_gb}")
        if not 0.0 < self.lr <= 1.0:
            raise TeachError(f"the learning rate must be in (0, 1], got {self.lr}")
        if self.upsample_mode not in ("bilinear", "nearest"):
            raise TeachError(f"upsample mode is 'bilinear' or 'nearest', got {self.upsample_mode!r}")

    def training(self) -> SegmenterTrainingOptions:
        return SegmenterTrainingOptions(self.epochs, self.batch_size, self.lr, self.pixels_per_image,
                                        self.class_balance, self.seed)

    def settings(self) -> SegmenterSettings:
        return SegmenterSettings(self.members, self.hidden, self.upsample_mode)


@dataclass
class TeachProgress:
    """Where a teaching run is: its stage (the branch itself, then each held-out fold) and that stage's training."""
    stage: str
    """"branch", or "fold i/k" of the agreement."""
    stage_index: int
    """1-based."""
    stages: int
    training: TrainingProgress

    @property
    def fraction(self) -> float:
        """How much of the whole run is done, 0..1 (every stage counted alike)."""
        t = self.training
        within = ((t.member - 1) * t.epochs + t.epoch) / (t.members * t.epochs)
        return (self.stage_index - 1 + within) / self.stages


@dataclass
class Agreement:
    """How the branch agrees with annotations it did not see (:data:`AGREEMENT_METHOD`)."""
    miou: float
    folds: int
    per_sample: dict[str, float]
    """Sample key (seed or name) → mIoU of its held-out prediction."""
    class_iou: dict[str, float]
    """Class name → mean IoU over the held-out samples where the class is in either map."""
    method: str = AGREEMENT_METHOD


@dataclass
class TeachReport:
    samples: list[str]
    """The annotated samples' keys (seeds or names)."""
    class_names: list[str]
    options: TeachOptions
    training_seconds: float
    """Training the branch itself."""
    seconds: float = 0.0
    """The whole run, held-out folds included."""
    agreement: Agreement | None = None
    device: str = "cpu"
    source: str = ""
    replaced_branch: bool = False
    dropped_presets: list[str] = field(default_factory=list)
    pixels_fitted: int | None = None
    """The pixels sampled per image when the asked ``options.pixels_per_image`` was lowered to keep the training
    rows within ``options.row_budget_gb`` (None: it was not)."""

    def record(self) -> dict:
        """What config.json keeps (``extra["teach"]``): plain JSON."""
        record = {"samples": len(self.samples), "sample_keys": self.samples, "classes": len(self.class_names),
                  "members": self.options.members, "epochs": self.options.epochs,
                  "pixels_per_image": self.options.pixels_per_image, "class_balance": self.options.class_balance,
                  "seed": self.options.seed, "training_seconds": round(self.training_seconds, 1),
                  "seconds": round(self.seconds, 1), "device": self.device, "source": self.source,
                  "replaced_branch": self.replaced_branch, "date": time.strftime("%Y-%m-%d")}
        if self.dropped_presets:
            record["dropped_presets"] = self.dropped_presets
        if self.pixels_fitted is not None:
            record["pixels_per_image"] = self.pixels_fitted
            record["pixels_per_image_asked"] = self.options.pixels_per_image
        if self.agreement is not None:
            record["agreement"] = {"miou": round(self.agreement.miou, 4), "folds": self.agreement.folds,
                                   "method": self.agreement.method,
                                   "class_iou": {k: round(v, 4) for k, v in self.agreement.class_iou.items()}}
        return record

    def summary(self) -> list[str]:
        """A few lines for a person: what was taught, how long it took, how well it agrees."""
        lines = [f"taught a branch of {self.options.members} classifiers over {len(self.class_names)} classes from "
                 f"{len(self.samples)} annotated samples in {self.training_seconds:.0f} s on {self.device}"]
        if self.pixels_fitted is not None:
            asked = self.options.pixels_per_image
            lines.append(f"sampled at most {self.pixels_fitted:,} labelled pixels per sample (asked: "
                         f"{'all' if asked is None else f'{asked:,}'}) to keep the training rows within "
                         f"{self.options.row_budget_gb:g} GB")
        if self.agreement is not None:
            a = self.agreement
            worst = sorted(a.class_iou.items(), key=lambda item: item[1])[:3]
            lines.append(f"held-out agreement: mIoU {a.miou:.3f} ({a.folds} folds: each trained without its "
                         f"samples, scored on them); weakest classes: "
                         + ", ".join(f"{name} {iou:.2f}" for name, iou in worst))
        if self.dropped_presets:
            lines.append(f"presets dropped (they name the source's classes): {', '.join(self.dropped_presets)}")
        return lines


def teach_branch(model: EditGANModel, annotations: AnnotationSet, options: TeachOptions | None = None,
                 on_progress: Callable[[TeachProgress], None] | None = None,
                 should_stop: Callable[[], bool] | None = None, name: str | None = None,
                 on_branch: Callable[[EditGANModel], None] | None = None,
                 on_partial: Callable[[EditGANModel, int], None] | None = None,
                 partial_every_s: float = PARTIAL_EVERY_S) -> tuple[EditGANModel, TeachReport]:
    """A new model: ``model``'s generator (and encoder) with a branch taught from ``annotations``, replacing any
    branch it had (classes and palette are the annotations'). Presets stay when the classes are the same, else
    they are dropped (their class ids name the old classes). Seed samples without a latent get theirs from the
    model (in place). ``should_stop`` cancels with :class:`~editgan.errors.TeachCancelled`. ``on_branch`` gets the
    taught model as soon as its branch is trained, before the held-out folds (a preview while they run).
    ``on_partial`` gets, while the branch trains, a model with the members trained so far and their count: after
    the first member, then after a member at most every ``partial_every_s`` seconds (the result is the same with
    or without it).

    The run takes the model's device turns (:class:`~editgan.engine.turns.DeviceTurns`) and steps aside for
    waiting callers before every sample's rendering and every batch, as long edits do."""
    options = options or TeachOptions()
    options.check()
    with model.turns.hold():
        return _teach(model, annotations, options, on_progress, should_stop, name, on_branch, on_partial,
                      partial_every_s)


def _teach(model: EditGANModel, annotations: AnnotationSet, options: TeachOptions,
           on_progress: Callable[[TeachProgress], None] | None, should_stop: Callable[[], bool] | None,
           name: str | None, on_branch: Callable[[EditGANModel], None] | None,
           on_partial: Callable[[EditGANModel, int], None] | None,
           partial_every_s: float) -> tuple[EditGANModel, TeachReport]:
    start = time.perf_counter()

    def between_steps() -> bool:
        model.turns.step_aside()
        return bool(should_stop is not None and should_stop())

    shown = [-math.inf]

    def partial(segmenter: Segmenter) -> None:
        now = time.perf_counter()
        if on_partial is None or now - shown[0] < partial_every_s:
            return
        shown[0] = now
        on_partial(taught_model(model, annotations, segmenter, options, name)[0], len(segmenter.members))
    wplus, labels = training_data(model, annotations)
    fitted = fitted_pixels_per_image(labelled_counts(labels), sum(model.generator.feature_channels()),
                                     options.pixels_per_image, options.row_budget_gb)
    lowered = fitted if fitted != options.pixels_per_image else None
    if lowered is not None:
        log.info("teaching: %s pixels per image asked, %d fit the rows' budget of %g GB", options.pixels_per_image,
                 lowered, options.row_budget_gb)
    asked, options = options, dataclasses.replace(options, pixels_per_image=fitted)  # the report keeps the asked
    config = SegmenterConfig(tuple(model.generator.feature_channels()), annotations.n_classes, options.members,
                             options.hidden, options.upsample_mode)
    folds = min(options.agreement_folds, len(annotations.samples))
    folds = folds if folds >= 2 else 0
    stages = 1 + folds

    def reporter(stage: str, index: int) -> Callable[[TrainingProgress], None] | None:
        if on_progress is None:
            return None
        return lambda t: on_progress(TeachProgress(stage, index, stages, t))

    log.info("teaching: %d samples, %d classes, %d members × %d epochs on %s", len(annotations.samples),
             annotations.n_classes, options.members, options.epochs, model.device)
    segmenter = train_segmenter(model.generator, wplus, labels, config, options.training(), reporter("branch", 1),
                                between_steps, partial if on_partial is not None else None)
    training_seconds = time.perf_counter() - start
    taught, dropped = taught_model(model, annotations, segmenter, options, name)
    if on_branch is not None:
        on_branch(taught)
    agreement = None
    if folds:
        agreement = held_out_agreement(model, annotations, wplus, labels, config, options, folds, reporter,
                                       between_steps)
    report = TeachReport([s.key for s in annotations.samples], list(annotations.class_names), asked,
                         training_seconds, time.perf_counter() - start, agreement, str(model.device),
                         model.config.name, model.has_segmenter, dropped, lowered)
    taught.config.extra[RECORD_KEY] = report.record()
    return taught, report


def fitted_pixels_per_image(counts: list[int], channels: int, asked: int | None, budget_gb: float) -> int | None:
    """The most pixels per image, at most ``asked`` (None: all), whose float16 rows of ``channels`` features fit in
    ``budget_gb``, for samples with ``counts`` labelled pixels: ``asked`` itself when its rows fit."""
    budget_rows = int(budget_gb * 2**30) // (2 * channels)
    if row_count(counts, asked) <= budget_rows:
        return asked
    low, high = LIMITS["pixels_per_image"][0], asked if asked is not None else max(counts)
    if row_count(counts, low) > budget_rows:
        raise TeachError(f"{len(counts)} samples of {channels:,} features need more than {budget_gb:g} GB for "
                         f"training rows even at {low} pixels each: teach from fewer samples")
    while low < high:  # row_count grows with the pixels per image: the largest that fits
        middle = (low + high + 1) // 2
        low, high = (middle, high) if row_count(counts, middle) <= budget_rows else (low, middle - 1)
    return low


def training_data(model: EditGANModel, annotations: AnnotationSet) -> tuple[torch.Tensor, torch.Tensor]:
    """The samples' w+ (N, n_latent, D) and their label maps on the generator's canvas (N, S, S), unlabelled
    (:data:`IGNORE`) outside the picture box, both on the model's device."""
    if not annotations.samples:
        raise AnnotationError("there are no annotated samples to teach from")
    resolve_latents(annotations, model)
    top, left, height, width = model.config.box
    size = model.generator.size
    canvas = np.full((len(annotations.samples), size, size), IGNORE, dtype=np.int64)
    latents = []
    for i, sample in enumerate(annotations.samples):
        if sample.labels.shape != (height, width):
            raise AnnotationError(f"sample {sample.key}: its label map is {sample.labels.shape[1]}×"
                                  f"{sample.labels.shape[0]}; this model's pictures are {width}×{height}")
        if sample.wplus.shape != (model.n_latent, model.style_dim):
            raise AnnotationError(f"sample {sample.key}: its w+ is {sample.wplus.shape}; this model's is "
                                  f"{(model.n_latent, model.style_dim)}")
        canvas[i, top:top + height, left:left + width] = sample.labels
        latents.append(sample.wplus)
    return (torch.from_numpy(np.stack(latents)).float().to(model.device),
            torch.from_numpy(canvas).to(model.device))


def held_out_agreement(model: EditGANModel, annotations: AnnotationSet, wplus: torch.Tensor, labels: torch.Tensor,
                       config: SegmenterConfig, options: TeachOptions, folds: int,
                       reporter: Callable[[str, int], Callable[[TrainingProgress], None] | None],
                       should_stop: Callable[[], bool] | None) -> Agreement:
    """:data:`AGREEMENT_METHOD`, with ``folds`` folds (2 ≤ folds ≤ samples)."""
    order = np.random.default_rng(options.seed).permutation(len(annotations.samples))
    per_sample: dict[str, float] = {}
    per_class: dict[int, list[float]] = {}
    for k, held in enumerate(np.array_split(order, folds)):
        kept = torch.as_tensor(np.setdiff1d(order, held), device=labels.device)
        segmenter = train_segmenter(model.generator, wplus[kept], labels[kept], config, options.training(),
                                    reporter(f"fold {k + 1}/{folds}", k + 2), should_stop)
        for i in held:
            sample = annotations.samples[i]
            predicted = predict_labels(model, segmenter, wplus[i:i + 1])
            ious = class_ious(predicted, sample.labels)
            per_sample[sample.key] = mean_iou(ious)
            for c, iou in ious.items():
                per_class.setdefault(c, []).append(iou)
        log.info("teaching: held-out fold %d/%d done", k + 1, folds)
    ordered = {s.key: per_sample[s.key] for s in annotations.samples}
    return Agreement(float(np.mean(list(ordered.values()))), folds, ordered,
                     {annotations.class_names[c]: float(np.mean(v)) for c, v in sorted(per_class.items())})


def predict_labels(model: EditGANModel, segmenter: Segmenter, wplus: torch.Tensor) -> np.ndarray:
    """The (h, w) label map that ``segmenter`` gives the picture of ``wplus`` (1, n_latent, D), in the box."""
    _, predicted = editing.render(model.generator, segmenter, wplus)
    top, left, height, width = model.config.box
    return predicted[0, top:top + height, left:left + width].cpu().numpy()


def taught_model(model: EditGANModel, annotations: AnnotationSet, segmenter: Segmenter, options: TeachOptions,
                 name: str | None) -> tuple[EditGANModel, list[str]]:
    """``model`` with ``segmenter`` as its branch and the annotations' classes; the presets it drops."""
    same_classes = list(model.config.class_names) == list(annotations.class_names)
    presets = list(model.presets.values()) if same_classes else []
    dropped = [] if same_classes else sorted(model.presets)
    extra = {k: v for k, v in (model.config.extra or {}).items() if k != "segmenter_training"}
    notes = list(extra.get("notes", []))
    notes.append(f"The segmentation branch was taught with EditGAN Studio (Teach) from "
                 f"{len(annotations.samples)} annotated samples"
                 + (", replacing the source model's branch." if model.has_segmenter else "."))
    extra["notes"] = notes
    previous = (model.config.provenance or "").strip()
    provenance = (f"{previous}{'' if not previous or previous.endswith('.') else '.'} " if previous else "") + (
        f"Segmentation branch taught from {len(annotations.samples)} annotated samples of model "
        f"{model.config.name!r} (python -m editgan teach / the Teach tab).")
    config: ModelConfig = dataclasses.replace(
        model.config, name=name or f"{model.config.name}-taught", class_names=list(annotations.class_names),
        palette=[tuple(c) for c in annotations.palette], segmenter=options.settings(), extra=extra,
        provenance=provenance, presets=[])
    taught = EditGANModel(config, model.generator, segmenter, model.encoder, presets, model.device,
                          source=f"{model.source} (taught)")
    taught.turns = model.turns  # one generator on one device: its users take the same turns
    return taught, dropped


def save_taught_model(model: EditGANModel, out: str | Path, overwrite: bool = False,
                      say: Callable[[str], None] = lambda message: None) -> Path:
    """Write a taught model as a complete folder (config.json with the teaching record, weights, presets, model
    card) through :func:`~editgan.modelio.checkpoint.write_new_model`: all or nothing, loaded back before it is
    moved into place."""
    if RECORD_KEY not in (model.config.extra or {}):
        raise TeachError("this model's branch was not taught here (no teaching record); save it with "
                         "save_pretrained")
    return write_new_model(out, model.parts(), overwrite, say, TeachError)
