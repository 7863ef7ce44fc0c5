"""EditGANModel: the networks of one checkpoint plus its config, with numpy/PIL at the edges.

Latents cross this boundary as float32 numpy arrays of shape (n_latent, style_dim); pictures as uint8
(H, W, 3) arrays and label maps as int64 (H, W) arrays, both cropped to the model's image box (cars are a
384×512 picture inside a 512×512 canvas). Everything inside runs on torch tensors on ``self.device``.
"""
from __future__ import annotations

import functools
import inspect
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
from PIL import Image

from editgan.engine import editing
from editgan.engine.acceleration import SpeedOptions
from editgan.engine.cpu_memory import keep_freed_memory
from editgan.engine.editing import EditOptions, EmbedOptions, OptimizationResult, StepInfo
from editgan.engine.images import load_image, to_tensor, to_uint8
from editgan.engine.latents import as_latent
from editgan.engine.margins import MarginLabels, outside_rows
from editgan.engine.turns import DeviceTurns
from editgan.engine.uncertainty import Measure
from editgan.engine.uncertainty import uncertainty as ensemble_uncertainty
from editgan.errors import ModelLoadError
from editgan.modelio.checkpoint import ModelParts, read_model, write_model
from editgan.modelio.config import ModelConfig
from editgan.modelio.hub import resolve
from editgan.modelio.vectors import EditingVector
from editgan.networks.lpips import PerceptualLoss, perceptual_loss
from editgan.networks.segmenter import Segmenter
from editgan.networks.stylegan2 import Generator

log = logging.getLogger(__name__)

Latent = np.ndarray


def choose_device(preference: str | None = None) -> torch.device:
    """The requested device, else the best available: CUDA, then Apple's MPS, then the CPU."""
    if preference and preference != "auto":
        device = torch.device(preference)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ModelLoadError("device 'cuda' was requested but no CUDA GPU is available")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise ModelLoadError("device 'mps' was requested but MPS is not available")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@dataclass
class Rendering:
    wplus: Latent
    image: np.ndarray
    """(h, w, 3) uint8, the picture inside the image box."""
    labels: np.ndarray | None
    """(h, w) int64 class ids, or None for a model without a segmentation branch."""


@dataclass
class Picture:
    """A latent's picture with its label map still to come, so that a caller can show the picture first:
    :meth:`EditGANModel.segment` computes the map from the generator's feature maps kept here (and drops them).
    At 512 px on a 2-core CPU the picture takes about 0.7 s and a 10-member, 32-class map about 7 s more."""
    wplus: Latent
    image: np.ndarray
    """(h, w, 3) uint8, the picture inside the image box."""
    features: list[torch.Tensor] | None = field(default=None, repr=False)
    """The generator's feature maps of this picture, kept until :meth:`EditGANModel.segment` reads them; None for
    a model without a segmentation branch (or once read: the map is then computed from the latent again)."""

    def forget_features(self) -> None:
        """Let the feature maps go (a 512-px config-f's take about 250 MB): :meth:`EditGANModel.segment` then draws
        them again from the latent, the same map for one more generator pass."""
        self.features = None

    @property
    def features_bytes(self) -> int:
        return sum(f.numel() * f.element_size() for f in self.features) if self.features is not None else 0


@dataclass
class EditOutcome(Rendering):
    vector: EditingVector | None = None
    losses: list[float] = field(default_factory=list)
    cancelled: bool = False
    perceptual: str = "none"
    roi: np.ndarray | None = None
    best_step: int = 0
    """The step whose latent is the result; 0 means nothing better than the start was found."""
    pending: Picture | None = None
    """Asked for without its label map (``label_map=False``): the picture whose map :meth:`EditGANModel.segment`
    computes; ``labels`` is None until then."""


@dataclass
class Progress:
    """Per-step report for progress bars and live previews."""
    step: int
    steps: int
    loss: float
    image: np.ndarray


PreviewCallback = Callable[[Progress], None]


def _in_turn(method: Callable) -> Callable:
    """Run a model action in its turn on the device (see :class:`DeviceTurns`): one action at a time per model."""
    @functools.wraps(method)
    def run(self: "EditGANModel", *args, **kwargs):
        with self.turns.hold():
            return method(self, *args, **kwargs)
    return run


def _perceptual_first(needed: Callable[[dict], bool] = lambda arguments: True) -> Callable[[Callable], Callable]:
    """Resolve the model's perceptual loss before the action waits for its turn, when ``needed`` (of the call's
    bound arguments) says it uses one: fetched the first time (offline, ~20 s of the Hub's retries), it must not
    hold the device while every other visitor waits. Goes above :func:`_in_turn`."""
    def wrap(method: Callable) -> Callable:
        signature = inspect.signature(method)

        @functools.wraps(method)
        def run(self: "EditGANModel", *args, **kwargs):
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            if needed(bound.arguments):
                self.perceptual  # noqa: B018 -- loaded (or its fallback chosen) and kept, outside the turn
            return method(self, *args, **kwargs)
        return run
    return wrap


class EditGANModel:
    def __init__(self, config: ModelConfig, generator: Generator, segmenter: Segmenter | None = None,
                 encoder: torch.nn.Module | None = None, presets: Sequence[EditingVector] = (),
                 device: str | torch.device | None = None, source: str = ""):
        self.config = config
        self.device = choose_device(str(device) if device is not None else None)
        if self.device.type == "cpu":
            keep_freed_memory()  # big CPU tensors: reuse mapped memory, not fresh pages every step
        self.generator = generator.to(self.device).eval().requires_grad_(False)
        self.segmenter = segmenter.to(self.device).eval().requires_grad_(False) if segmenter else None
        self.encoder = encoder.to(self.device).eval().requires_grad_(False) if encoder else None
        self.presets = {v.name: v for v in presets}
        self.source = source
        self.mean_wplus = generator.to_wplus(self.generator.mean_latent()).detach()
        editing.load_optimizer_modules()
        self.turns = DeviceTurns()
        """Callers in several threads take turns; long optimizations step aside between steps for waiting ones."""
        self._perceptual: PerceptualLoss | None = None
        self.margins = MarginLabels()
        """The label map outside the picture box of the latents rendered lately: an edit started from a caller's
        rendering (inside the box only) reads them instead of computing them."""
        self.label_map_s: float | None = None
        """Seconds the latest full label map took here (None before the first): whether a caller gains by showing
        a picture before its map (256 px and up on a CPU) or not (the embedded 64-px model: milliseconds)."""
        self.speed = SpeedOptions()
        """How edits, refinements and embeddings run when the caller gives no options (captured step, TF32, bf16;
        see :mod:`editgan.engine.acceleration`): off until an operator turns them on."""

    # -- loading and saving ------------------------------------------------------------------------------
    @classmethod
    def load(cls, source: str | Path | None = None, device: str | torch.device | None = None,
             revision: str | None = None, token: str | bool | None = None,
             progress: Callable[[str], None] | None = None, cache_dir: str | Path | None = None
             ) -> "EditGANModel":
        """Load the embedded default (no argument), a local folder, or a Hub repo id (at ``revision``: branch, tag
        or commit; ``token`` for private repos; the normal Hugging Face cache unless ``cache_dir``).
        ``progress`` receives short status messages, including download bytes."""
        folder = resolve(source, revision, token, progress, cache_dir)
        if progress is not None:
            progress(f"loading the weights from {folder}")
        return cls.from_folder(folder, device, source=str(source or folder.name))

    @classmethod
    def from_folder(cls, folder: str | Path, device: str | torch.device | None = None,
                    source: str = "") -> "EditGANModel":
        parts = read_model(folder)
        return cls(parts.config, parts.generator, parts.segmenter, parts.encoder, parts.presets, device,
                   source or str(folder))

    def parts(self) -> ModelParts:
        """The model's networks and settings, for writing (``modelio.checkpoint``) or for building another model."""
        return ModelParts(self.config, self.generator, self.segmenter, self.encoder, list(self.presets.values()))

    def save_pretrained(self, folder: str | Path) -> Path:
        """Write the model in the checkpoint layout (config.json, *.safetensors, vectors/, and a README.md model
        card when the folder has none yet)."""
        return write_model(folder, self.parts())

    # -- properties ----------------------------------------------------------------------------------------
    @property
    def n_latent(self) -> int:
        return self.generator.n_latent

    @property
    def style_dim(self) -> int:
        return self.generator.style_dim

    @property
    def has_segmenter(self) -> bool:
        return self.segmenter is not None

    @property
    def perceptual(self) -> PerceptualLoss:
        """LPIPS when its weights can be had (Hub or cache), else the logged pixel-loss fallback."""
        if self._perceptual is None:
            self._perceptual = perceptual_loss(self.device)
        return self._perceptual

    @perceptual.setter
    def perceptual(self, loss: PerceptualLoss) -> None:
        self._perceptual = loss

    # -- conversions between the edges and the canvas -------------------------------------------------------
    def _latent(self, wplus: Latent | torch.Tensor) -> torch.Tensor:
        """A checked latent from the edge → a (1, n_latent, style_dim) tensor on the device."""
        w = as_latent(wplus, (self.n_latent, self.style_dim))
        return torch.from_numpy(w)[None].to(self.device)

    def _crop(self, canvas: torch.Tensor) -> torch.Tensor:
        top, left, height, width = self.config.box
        return canvas[..., top:top + height, left:left + width]

    def _to_canvas(self, picture: torch.Tensor, fill: float | int) -> torch.Tensor:
        """Place a box-sized map or image into a full canvas filled with ``fill``."""
        size = self.generator.size
        top, left, height, width = self.config.box
        if tuple(picture.shape[-2:]) != (height, width):
            raise ValueError(f"expected a {height}×{width} map, got {tuple(picture.shape[-2:])}")
        canvas = torch.full((*picture.shape[:-2], size, size), fill, dtype=picture.dtype, device=picture.device)
        canvas[..., top:top + height, left:left + width] = picture
        return canvas

    def _rendering(self, w: torch.Tensor) -> Rendering:
        return self._segmented(self._picture(w))

    def _picture(self, w: torch.Tensor) -> Picture:
        """The generator's pass: the picture, with the feature maps its label map will read."""
        with torch.no_grad():
            if self.segmenter is None:
                image, features = self.generator.synthesis(w), None
            else:
                image, features = self.generator.synthesis(w, return_features=True)
        return Picture(w[0].cpu().numpy(), to_uint8(self._crop(image))[0], features)

    def _segmented(self, picture: Picture, superseded: Callable[[], bool] | None = None) -> Rendering | None:
        """The picture with its label map (the segmentation branch's pass), its kept feature maps dropped; None
        when ``superseded`` said, before the map or between its bands, that it is no longer wanted."""
        features, picture.features = picture.features, None
        if self.segmenter is None:
            return Rendering(picture.wplus, picture.image, None)
        with torch.no_grad():
            if features is None:
                _, features = self.generator.synthesis(self._latent(picture.wplus), return_features=True)
            start = time.perf_counter()
            labels = self.segmenter.predict(features, (self.generator.size, self.generator.size),
                                            should_stop=superseded)
            if labels is None:
                picture.features = features  # given up: the picture can still be segmented later
                return None
            self.label_map_s = time.perf_counter() - start
        self.margins.put(picture.wplus, labels[0], outside_rows(self.generator.size, self.config.box))
        return Rendering(picture.wplus, picture.image, self._crop(labels)[0].cpu().numpy())

    def _between_steps(self, should_stop: Callable[[], bool] | None) -> Callable[[], bool]:
        """Checked before every optimization step: hand the device to waiting callers, then the caller's stop."""
        def check() -> bool:
            self.turns.step_aside()
            return bool(should_stop is not None and should_stop())
        return check

    def _on_step(self, callback: PreviewCallback | None) -> Callable[[StepInfo], None] | None:
        if callback is None:
            return None
        return lambda info: callback(Progress(info.step, info.steps, info.loss,
                                              to_uint8(self._crop(info.image))[0]))

    # -- actions -----------------------------------------------------------------------------------------
    @_in_turn
    def sample(self, seed: int = 0, truncation: float | None = None) -> Rendering:
        """A random picture from the model: z from ``seed``, mapped, truncated toward the mean latent."""
        return self._rendering(self._sample_wplus(seed, truncation))

    @_in_turn
    def sample_picture(self, seed: int = 0, truncation: float | None = None) -> Picture:
        """:meth:`sample`'s first half: the picture, its label map to follow from :meth:`segment`."""
        return self._picture(self._sample_wplus(seed, truncation))

    def sample_latent(self, seed: int = 0, truncation: float | None = None) -> Latent:
        """The w+ of :meth:`sample` without rendering it (annotations by seed need only that)."""
        return self._sample_wplus(seed, truncation)[0].cpu().numpy()

    def _sample_wplus(self, seed: int, truncation: float | None) -> torch.Tensor:
        truncation = self.config.truncation if truncation is None else float(truncation)
        if not 0.0 <= truncation <= 1.0:
            raise ValueError(f"truncation must be between 0 and 1, got {truncation}")
        z = torch.randn(1, self.style_dim, generator=torch.Generator().manual_seed(int(seed))).to(self.device)
        with torch.no_grad():
            w = self.generator.mapping(z)
            mean = self.mean_wplus[:, 0]
            w = mean + truncation * (w - mean)
        return self.generator.to_wplus(w)

    @_in_turn
    def render(self, wplus: Latent | torch.Tensor) -> Rendering:
        return self._rendering(self._latent(wplus))

    @_in_turn
    def draw(self, wplus: Latent | torch.Tensor) -> Picture:
        """:meth:`render`'s first half: the picture, its label map to follow from :meth:`segment`."""
        return self._picture(self._latent(wplus))

    def segment(self, picture: Picture, superseded: Callable[[], bool] | None = None) -> Rendering | None:
        """The label map of a picture from :meth:`draw`, :meth:`sample_picture` or an outcome's ``pending``: with
        the picture, the same :class:`Rendering` as :meth:`render` gives, in a turn of its own.

        ``superseded``: asked before the turn, once it is had, and between the map's bands (a 512-px map takes
        seconds on a CPU); when it says yes the map is given up, the turn handed on, and the result is None."""
        if superseded is not None and superseded():
            return None
        with self.turns.hold():
            return self._segmented(picture, superseded)

    @_in_turn
    def uncertainty(self, wplus: Latent | torch.Tensor, measure: Measure = "disagreement") -> np.ndarray:
        """(h, w) float32 in [0, 1]: where the segmentation branch is unsure of this latent's picture (the
        fraction of ensemble members that disagree with the ensemble, or the normalised entropy; see
        :mod:`editgan.engine.uncertainty`). Teaching shows it so that the next annotation goes where it helps."""
        segmenter = self._require_segmenter("an uncertainty map")
        with torch.no_grad():
            image, feats = self.generator.synthesis(self._latent(wplus), return_features=True)
        values = ensemble_uncertainty(segmenter, feats, tuple(image.shape[-2:]), measure)
        return self._crop(values)[0].cpu().numpy()

    def _require_segmenter(self, action: str) -> Segmenter:
        if self.segmenter is None:
            raise ValueError(f"{action} needs a segmentation branch, and model {self.config.name!r} has none "
                             f"(it is generator-only: sample and embed work, mask editing does not)")
        return self.segmenter

    @_perceptual_first()
    @_in_turn
    def edit(self, wplus: Latent, painted_labels: np.ndarray, painted: np.ndarray,
             classes: Iterable[int] | None = None, steps: int | None = None, options: EditOptions | None = None,
             name: str = "edit", on_step: PreviewCallback | None = None,
             should_stop: Callable[[], bool] | None = None, original: Rendering | None = None,
             label_map: bool = True) -> EditOutcome:
        """Edit by painting: ``painted_labels`` (h, w) is the wanted label map, ``painted`` (h, w) the touched pixels.

        The outcome carries the new latent, its picture and labels, and the edit as a reusable vector.
        ``original``: the rendering of ``wplus`` when the caller has it (a studio keeps them): its label map is not
        computed again, only the picture the loss compares with and any label rows outside the picture box; the
        result is the same. ``label_map=False``: the outcome's map is left to :meth:`segment` (see ``pending``).
        """
        segmenter = self._require_segmenter("mask editing")
        options = options or EditOptions(speed=self.speed)
        if steps is not None:
            options = EditOptions(**{**options.__dict__, "steps": int(steps)})
        w = self._latent(wplus)
        painted_t = torch.as_tensor(np.asarray(painted, dtype=bool), device=self.device)
        target = torch.as_tensor(np.asarray(painted_labels, dtype=np.int64), device=self.device)
        if not bool(painted_t.any()):
            raise ValueError("nothing painted: paint on the label map where it should change")
        if int(target.max()) >= self.config.n_classes or int(target.min()) < 0:
            raise ValueError(f"painted labels must be class ids 0..{self.config.n_classes - 1}")
        original = self._original(w, original) if original is not None else editing.render(self.generator,
                                                                                              segmenter, w)
        old_labels = original[1]
        # outside the picture box the wanted map is the current one, untouched
        canvas_target = old_labels[0].clone()
        top, left, height, width = self.config.box
        canvas_target[top:top + height, left:left + width] = target
        canvas_painted = self._to_canvas(painted_t, False)
        result = editing.edit_from_mask(self.generator, segmenter, w, canvas_target, canvas_painted, classes,
                                        self.perceptual, options, self._on_step(on_step),
                                        self._between_steps(should_stop), original)
        used = sorted(int(c) for c in (classes if classes is not None else torch.unique(target[painted_t]).tolist()))
        vector = EditingVector(name, result.delta.cpu().numpy(), used, refine_steps=10)
        return self._outcome(result, vector, label_map)

    def _original(self, w: torch.Tensor, given: Rendering) -> tuple[torch.Tensor, torch.Tensor]:
        """``editing.render(w)`` from a rendering the caller has: the picture drawn again (the loss needs it
        exactly, not as uint8), the label map from ``given`` inside the picture box and, outside it, from
        :attr:`margins` or else computed there only."""
        segmenter = self._require_segmenter("mask editing")
        top, left, height, width = self.config.box
        if given.labels is None or given.labels.shape != (height, width):
            raise ValueError(f"the original's label map must be {height}×{width}")
        if not np.array_equal(as_latent(given.wplus, (self.n_latent, self.style_dim)), w[0].cpu().numpy()):
            raise ValueError("the original's rendering is of another latent than the one edited")
        size = self.generator.size
        outside = outside_rows(size, self.config.box)
        kept = self.margins.get(given.wplus) if outside else None
        with torch.no_grad():
            if not outside or kept is not None:
                image, features = self.generator.synthesis(w), None
            else:
                image, features = self.generator.synthesis(w, return_features=True)
            inside = torch.as_tensor(np.asarray(given.labels, np.int64), device=self.device)
            labels = self._to_canvas(inside, 0)
            for k, (first, stop) in enumerate(outside):
                labels[first:stop] = kept[k].to(self.device) if kept is not None else \
                    segmenter.predict(features, (size, size), rows=(first, stop))[0]
            labels[top:top + height, left:left + width] = inside
        return image, labels[None]

    @_perceptual_first(lambda arguments: arguments["refine_steps"] > 0)
    @_in_turn
    def apply_vectors(self, wplus: Latent, vectors: Sequence[tuple[EditingVector, float]], refine_steps: int = 0,
                      options: EditOptions | None = None, on_step: PreviewCallback | None = None,
                      should_stop: Callable[[], bool] | None = None, label_map: bool = True,
                      original: Rendering | None = None) -> EditOutcome:
        """Add Σ scaleᵢ·vectorᵢ (the preset sliders), then optionally refine over the union of their classes.
        ``label_map=False`` leaves the outcome's map to :meth:`segment` (see :attr:`EditOutcome.pending`).
        ``original``: the rendering of ``wplus`` when the caller has it, as for :meth:`edit`: a refinement does not
        compute its label map again (only the moved latent's, which is its target); the result is the same."""
        w = self._latent(wplus)
        total = torch.zeros_like(w[0])
        classes: set[int] = set()
        for vector, scale in vectors:
            vector.check_fits(self.n_latent, self.style_dim, self.config.n_classes)
            scale = vector.check_scale(scale)
            total += scale * torch.as_tensor(vector.delta, device=self.device)
            if scale != 0:
                classes.update(vector.classes)
        if refine_steps > 0 and bool(total.any()):
            self._require_segmenter("refinement")
        options = options or EditOptions(speed=self.speed)
        perceptual = self.perceptual if refine_steps > 0 else None  # a plain slider loads no perceptual network
        refines = refine_steps > 0 and bool(total.any())
        given = self._original(w, original) if refines and original is not None else None
        result = editing.apply_vector(self.generator, self.segmenter, w, total, 1.0, refine_steps, sorted(classes),
                                      perceptual, options, self._on_step(on_step), self._between_steps(should_stop),
                                      given)
        return self._outcome(result, None, label_map)

    def apply_vector(self, wplus: Latent, vector: EditingVector | str, scale: float = 1.0, refine_steps: int = 0,
                     **kwargs) -> EditOutcome:
        if isinstance(vector, str):
            if vector not in self.presets:
                raise ValueError(f"unknown preset {vector!r}; this model has {sorted(self.presets) or 'none'}")
            vector = self.presets[vector]
        return self.apply_vectors(wplus, [(vector, scale)], refine_steps, **kwargs)

    @_perceptual_first()
    @_in_turn
    def embed(self, image: Image.Image | np.ndarray | str | Path | bytes, steps: int = 100,
              options: EmbedOptions | None = None, on_step: PreviewCallback | None = None,
              should_stop: Callable[[], bool] | None = None, label_map: bool = True) -> EditOutcome:
        """A real picture → the latent that reproduces it (encoder guess, then optimization).

        The picture is resized to the image box (fitting it as a whole) and placed on the black canvas.
        ``label_map=False`` leaves the outcome's map to :meth:`segment` (see :attr:`EditOutcome.pending`).
        """
        picture = load_image(image)
        top, left, height, width = self.config.box
        picture = picture.resize((width, height), Image.LANCZOS)
        target = self._to_canvas(to_tensor(picture).to(self.device), -1.0)
        options = options or EmbedOptions(encoder_weight=self.config.embed_encoder_weight, speed=self.speed)
        options = EmbedOptions(**{**options.__dict__, "steps": int(steps)})
        result = editing.embed(self.generator, target, self.perceptual, self.encoder, options, self.mean_wplus,
                               self._on_step(on_step), self._between_steps(should_stop))
        return self._outcome(result, None, label_map)

    def _outcome(self, result: OptimizationResult, vector: EditingVector | None, label_map: bool) -> EditOutcome:
        """The result's one rendering after the last step (its picture only when not ``label_map``)."""
        picture = self._picture(result.wplus)
        r, pending = (self._segmented(picture), None) if label_map else (picture, picture)
        labels = r.labels if label_map else None
        roi = self._crop(result.roi).cpu().numpy() if result.roi is not None else None
        return EditOutcome(r.wplus, r.image, labels, vector, result.losses, result.cancelled, result.perceptual,
                           roi, result.best_step, pending)


def load(source: str | Path | None = None, device: str | torch.device | None = None, **kwargs) -> EditGANModel:
    """``editgan.load()``: the embedded default model, a local folder, or a Hub repo id."""
    return EditGANModel.load(source, device, **kwargs)
