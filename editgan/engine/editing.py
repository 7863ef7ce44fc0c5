"""EditGAN's optimization loops: editing from a painted label map, applying and refining editing vectors, and
embedding a real image. Pure functions over tensors: no files, no UI, no global state.

All maps here live on the generator's full canvas (H = W = generator size); the model object crops and pads
the image box around them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterable

import torch
import torch.nn.functional as F

from editgan.engine import acceleration
from editgan.engine.acceleration import SpeedOptions, StaticLoss
from editgan.engine.labels import region_of_interest
from editgan.networks.lpips import PerceptualLoss, PixelMSELoss
from editgan.networks.pixel_taps import PixelTaps
from editgan.networks.segmenter import Segmenter
from editgan.networks.stylegan2 import Generator


@dataclass
class EditOptions:
    """Loss weights and optimizer settings of mask editing and vector refinement.

    Total loss = ce · CE(segmentation, target) over ROI pixels
               + rgb · (perceptual · LPIPS + mse · MSE)(image, original) outside the ROI
    (EditGAN's tool uses ce 1, rgb 15, perceptual 10, mse 5, Adam lr 0.02.)
    """
    steps: int = 100
    lr: float = 0.02
    ce_weight: float = 1.0
    rgb_weight: float = 15.0
    perceptual_weight: float = 10.0
    mse_weight: float = 5.0
    roi_dilation: int = 3
    max_roi_pixels: int | None = 4096
    """The cross-entropy reads at most this many ROI pixels a step, drawn anew every step: an unbiased estimate
    of its mean over the whole ROI, which keeps large edits at high resolution about as cheap as a brush stroke.
    None reads every ROI pixel."""
    speed: SpeedOptions = field(default_factory=SpeedOptions)
    """How the loop runs on a GPU: captured step, TF32, bf16 (see :mod:`editgan.engine.acceleration`); all off by
    default."""


@dataclass
class StepInfo:
    """What a progress callback receives after every optimization step."""
    step: int
    steps: int
    loss: float
    image: torch.Tensor  # (1, 3, H, W) the image of this step's latent, detached
    wplus: torch.Tensor  # (1, n_latent, D) detached


ProgressCallback = Callable[[StepInfo], None]
StopCheck = Callable[[], bool]


@dataclass
class OptimizationResult:
    wplus: torch.Tensor
    """The best latent found (lowest total loss), (1, n_latent, D)."""
    delta: torch.Tensor
    """wplus − start, (n_latent, D): the editing vector of this edit."""
    losses: list[float]
    cancelled: bool
    perceptual: str
    """Name of the perceptual loss actually used ("lpips-…" or the pixel fallback)."""
    roi: torch.Tensor | None = None
    """The region of interest (H, W) bool, for edits and refinements."""
    best_step: int = 0
    extra: dict = field(default_factory=dict)


def load_optimizer_modules() -> None:
    """Run one step of a throwaway Adam optimizer. Torch's first optimizer imports ``torch._dynamo`` (over a
    second on a CPU) and its first step a profiler module; a model does this while it loads, so that its first
    edit does not, holding every visitor's device turn."""
    parameter = torch.zeros(1, requires_grad=True)
    parameter.grad = torch.ones(1)
    torch.optim.Adam([parameter]).step()


def render(generator: Generator, segmenter: Segmenter | None, wplus: torch.Tensor
           ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Image (N, 3, H, W) and label map (N, H, W), without gradients."""
    with torch.no_grad():
        if segmenter is None:
            return generator.synthesis(wplus), None
        image, feats = generator.synthesis(wplus, return_features=True)
        return image, segmenter.predict(feats, tuple(image.shape[-2:]))


def _keep_mask(roi: torch.Tensor) -> torch.Tensor:
    return (~roi).float()[None, None]


LossFunction = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def _adam_loop(start: torch.Tensor, loss_fn: LossFunction, steps: int, lr: float | Callable[[int], float],
               on_step: ProgressCallback | None, should_stop: StopCheck | None,
               speed: SpeedOptions | None = None, static: StaticLoss | None = None
               ) -> tuple[torch.Tensor, list[float], bool, int]:
    """Adam on w+ from ``start``; ``loss_fn(w+) -> (loss, image)``. Returns (best w+, losses, cancelled, best step).

    The best latent is the one with the lowest loss seen (cloned, since Adam updates the parameter in place).
    ``speed`` may run the step captured or compiled instead, from ``static``, the same loss written with static
    shapes (see :mod:`editgan.engine.acceleration`); without it, or where that is not available, the loop is eager.
    """
    speed = speed or SpeedOptions()
    wplus = start.detach().clone().requires_grad_(True)
    optimizer = torch.optim.Adam([wplus], lr=lr(0) if callable(lr) else lr)
    best_loss, best, best_step, losses, cancelled = math.inf, start.detach().clone(), 0, [], False
    with acceleration.tf32(wplus.device, speed.tf32):
        runner = acceleration.step_runner(speed, wplus, static)
        if runner is None and speed.bf16:
            loss_fn = acceleration.autocast_loss(loss_fn, wplus.device)
        for step in range(steps):
            if should_stop is not None and should_stop():
                cancelled = True
                break
            if callable(lr):
                for group in optimizer.param_groups:
                    group["lr"] = lr(step)
            if runner is None:
                loss, image = loss_fn(wplus)
            else:
                loss, image, grad = runner(step)
            value = loss.item()
            losses.append(value)
            if value < best_loss:  # the latent that produced this loss, before the update below moves it
                best_loss, best, best_step = value, wplus.detach().clone(), step
            if runner is None:
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
            else:
                wplus.grad = grad.clone()  # a runner's gradient may be a buffer its next step overwrites
            optimizer.step()
            if on_step is not None:
                if runner is not None:
                    image = image.clone()  # likewise
                on_step(StepInfo(step + 1, steps, value, image.detach(), wplus.detach()))
    return best, losses, cancelled, best_step


def _roi_sample_draws(n_pixels: int, max_pixels: int | None) -> Callable[[], torch.Tensor] | None:
    """None when the cross-entropy reads the whole ROI (``n_pixels`` within ``max_pixels``); else a function
    drawing each step's ROI sample: ``max_pixels`` sorted indices among the ROI's pixels, from a generator seeded
    for every edit so that runs repeat."""
    if max_pixels is None or n_pixels <= max_pixels:
        return None
    draw = torch.Generator().manual_seed(0)
    return lambda: torch.randperm(n_pixels, generator=draw)[:max_pixels].sort().values


def _roi_pixel_sampler(segmenter: Segmenter, roi: torch.Tensor, target_rows: torch.Tensor,
                       resolutions: list[tuple[int, int]], max_pixels: int | None
                       ) -> Callable[[], tuple[PixelTaps, torch.Tensor]]:
    """A function giving each step the ROI pixels the cross-entropy reads (as segmenter taps) and their targets.

    Logits are computed only where the loss reads them, so the segmenter's cost scales with the ROI's size. A ROI
    within ``max_pixels`` is read whole, with taps computed once; a larger one is sampled anew every step (seeded,
    so runs repeat).
    """
    size = tuple(roi.shape[-2:])
    pixels = roi.nonzero()  # row-major, the order of target_rows
    draws = _roi_sample_draws(pixels.shape[0], max_pixels)
    if draws is None:
        taps = segmenter.pixel_taps(pixels, size, resolutions)
        return lambda: (taps, target_rows)

    def sample() -> tuple[PixelTaps, torch.Tensor]:
        pick = draws().to(pixels.device)
        return segmenter.pixel_taps(pixels[pick], size, resolutions), target_rows[pick]
    return sample


class _StaticRoiSample:
    """The static-shape twin of :func:`_roi_pixel_sampler` for captured steps: a fixed buffer of ROI pixel
    indices that ``prepare(step)`` fills with that step's sample, the same samples the eager loop draws, in the
    same order (a step prepared twice, as warm-up does, keeps its sample)."""

    def __init__(self, n_pixels: int, max_pixels: int | None, device: torch.device):
        self._draws = _roi_sample_draws(n_pixels, max_pixels)
        self.size = n_pixels if self._draws is None else int(max_pixels)
        self.indices = torch.arange(self.size, device=device)
        self._step = -1

    def prepare(self, step: int) -> None:
        if self._draws is None or step == self._step:
            return
        if step != self._step + 1:
            raise ValueError(f"ROI samples are drawn in order: step {self._step + 1} next, not {step}")
        self.indices.copy_(self._draws())
        self._step = step


def optimize_toward_labels(generator: Generator, segmenter: Segmenter, start: torch.Tensor,
                           target_labels: torch.Tensor, roi: torch.Tensor, original_image: torch.Tensor,
                           perceptual: PerceptualLoss | None = None, options: EditOptions | None = None,
                           steps: int | None = None, on_step: ProgressCallback | None = None,
                           should_stop: StopCheck | None = None, anchor: torch.Tensor | None = None
                           ) -> OptimizationResult:
    """The loop shared by mask editing and vector refinement.

    Moves ``start`` (1, n_latent, D) so that the segmenter predicts ``target_labels`` (H, W) inside ``roi`` (H, W)
    while the image outside the ROI stays as ``original_image`` (1, 3, H, W). ``anchor`` is the latent the
    returned delta is measured from (default: ``start``).
    """
    options = options or EditOptions()
    perceptual = perceptual or PixelMSELoss()
    steps = options.steps if steps is None else steps
    anchor = start if anchor is None else anchor
    keep = _keep_mask(roi)
    target_rows = target_labels[roi]
    prepared = perceptual.precompute_target(original_image.detach(), keep)
    original_kept = original_image.detach() * keep

    resolutions = [(r, r) for r in generator.feature_resolutions()]
    ce_pixels = _roi_pixel_sampler(segmenter, roi, target_rows, resolutions, options.max_roi_pixels)

    def total(ce: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        mse = F.mse_loss(image * keep, original_kept)
        rgb = options.perceptual_weight * perceptual(image, prepared).mean() + options.mse_weight * mse
        return options.ce_weight * ce + options.rgb_weight * rgb

    def loss_fn(wplus: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if target_rows.numel():
            image, feats = generator.synthesis(wplus, return_features=True)
            taps, targets = ce_pixels()
            ce = F.cross_entropy(segmenter.logits_at(feats, taps)[0], targets)
        else:
            image, ce = generator.synthesis(wplus), torch.zeros((), device=wplus.device)
        return total(ce, image), image

    static = None
    if options.speed.step != "eager":
        static = _static_edit_loss(generator, segmenter, roi, target_rows, resolutions, options.max_roi_pixels,
                                   total)
    best, losses, cancelled, best_step = _adam_loop(start, loss_fn, steps, options.lr, on_step, should_stop,
                                                    options.speed, static)
    return OptimizationResult(best, (best - anchor)[0].detach(), losses, cancelled, perceptual.name, roi,
                              best_step)


def _static_edit_loss(generator: Generator, segmenter: Segmenter, roi: torch.Tensor, target_rows: torch.Tensor,
                      resolutions: list[tuple[int, int]], max_pixels: int | None,
                      total: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> StaticLoss:
    """The edit loss with static shapes: the cross-entropy reads a fixed number of ROI pixels every step through
    a ROI table made once (``Segmenter.roi_table``), the step's sample written into a fixed buffer beforehand.
    The same pixels and the same function as the eager loss, to rounding."""
    device = target_rows.device
    if not target_rows.numel():
        def image_only(wplus: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            image = generator.synthesis(wplus)
            return total(torch.zeros((), device=wplus.device), image), image
        return StaticLoss(image_only)
    pixels = roi.nonzero()  # row-major, the order of target_rows
    sample = _StaticRoiSample(pixels.shape[0], max_pixels, device)
    table = segmenter.roi_table(pixels, tuple(roi.shape[-2:]), resolutions, sample.size)

    def loss(wplus: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        image, feats = generator.synthesis(wplus, return_features=True)
        logits = segmenter.logits_at_sample(feats, table, sample.indices)[0]
        ce = F.cross_entropy(logits, target_rows.index_select(0, sample.indices))
        return total(ce, image), image
    return StaticLoss(loss, sample.prepare)


def edit_from_mask(generator: Generator, segmenter: Segmenter, wplus: torch.Tensor, painted_labels: torch.Tensor,
                   painted: torch.Tensor, classes: Iterable[int] | None = None,
                   perceptual: PerceptualLoss | None = None, options: EditOptions | None = None,
                   on_step: ProgressCallback | None = None, should_stop: StopCheck | None = None,
                   original: tuple[torch.Tensor, torch.Tensor] | None = None) -> OptimizationResult:
    """EditGAN's editing: find the latent whose segmentation matches the painted label map.

    ``painted_labels`` (H, W) is the label map the user wants (the old map with their strokes applied) and
    ``painted`` (H, W) bool marks the pixels they touched. ``classes`` are the edited classes (default: the
    classes painted with). ``original`` is ``render(wplus)`` when the caller has it already. The result's
    ``delta`` is the edit's editing vector.
    """
    options = options or EditOptions()
    if not bool(painted.any()):
        raise ValueError("nothing painted: paint on the label map where it should change")
    original_image, old_labels = original if original is not None else render(generator, segmenter, wplus)
    if classes is None:
        classes = torch.unique(painted_labels[painted]).tolist()
    roi = region_of_interest(old_labels[0], painted_labels, painted, classes, options.roi_dilation)
    return optimize_toward_labels(generator, segmenter, wplus, painted_labels, roi, original_image, perceptual,
                                  options, on_step=on_step, should_stop=should_stop)


def apply_vector(generator: Generator, segmenter: Segmenter | None, wplus: torch.Tensor, vector: torch.Tensor,
                 scale: float = 1.0, refine_steps: int = 0, classes: Iterable[int] = (),
                 perceptual: PerceptualLoss | None = None, options: EditOptions | None = None,
                 on_step: ProgressCallback | None = None, should_stop: StopCheck | None = None,
                 original: tuple[torch.Tensor, torch.Tensor] | None = None) -> OptimizationResult:
    """Add ``scale · vector`` to ``wplus``; then optionally refine it the self-supervised way.

    Refinement (EditGAN §3.3): the target is the segmentation of the moved latent itself, enforced inside the
    ROI of the vector's classes, while the image outside that ROI is pulled back to the original image. It
    removes the vector's side effects on this particular image. ``original`` is ``render(wplus)`` when the
    caller has it already (its label map is then not computed again); the result is the same.
    """
    if not math.isfinite(scale):
        raise ValueError(f"scale must be a finite number, got {scale}")
    vector = vector.to(wplus)
    if vector.ndim == 2:
        vector = vector[None]
    moved = wplus + scale * vector
    if refine_steps <= 0 or scale == 0:
        return OptimizationResult(moved.detach(), (moved - wplus)[0].detach(), [], False, "none")
    if segmenter is None:
        raise ValueError("refinement needs a segmentation branch; this model has none")
    options = options or EditOptions()
    original_image, old_labels = original if original is not None else render(generator, segmenter, wplus)
    _, moved_labels = render(generator, segmenter, moved)
    roi = region_of_interest(old_labels[0], moved_labels[0], None, classes, options.roi_dilation)
    return optimize_toward_labels(generator, segmenter, moved, moved_labels[0], roi, original_image, perceptual,
                                  options, steps=refine_steps, on_step=on_step, should_stop=should_stop,
                                  anchor=wplus)


@dataclass
class EmbedOptions:
    steps: int = 100
    lr: float = 0.1
    perceptual_weight: float = 10.0
    mse_weight: float = 1.0
    encoder_weight: float = 1.0
    """Keeps w+ where the encoder would put G(w+) (EditGAN's latent regularizer); used only with an encoder."""
    speed: SpeedOptions = field(default_factory=SpeedOptions)
    """As :attr:`EditOptions.speed`; the embedding loss has static shapes as it is."""


def _lr_schedule(t: float, base: float, rampdown: float = 0.25, rampup: float = 0.05) -> float:
    """Linear warm-up, cosine ramp-down over the last quarter (the StyleGAN projector's schedule)."""
    ramp = min(1.0, (1 - t) / rampdown)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    return base * ramp * min(1.0, t / rampup)


def embed(generator: Generator, image: torch.Tensor, perceptual: PerceptualLoss | None = None,
          encoder: torch.nn.Module | None = None, options: EmbedOptions | None = None,
          mean_wplus: torch.Tensor | None = None, on_step: ProgressCallback | None = None,
          should_stop: StopCheck | None = None) -> OptimizationResult:
    """Real image (1, 3, H, W) in [−1, 1] on the generator canvas → w+ that reproduces it.

    Starts from the encoder's prediction when the model has an encoder, else from the mean latent.
    """
    options = options or EmbedOptions()
    perceptual = perceptual or PixelMSELoss()
    with torch.no_grad():
        if encoder is not None:
            start = encoder(image)
        elif mean_wplus is not None:
            start = mean_wplus.to(image)
        else:
            start = generator.to_wplus(generator.mean_latent().to(image))
    prepared = perceptual.precompute_target(image.detach())

    def loss_fn(wplus: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = generator.synthesis(wplus)
        loss = (options.perceptual_weight * perceptual(out, prepared).mean()
                + options.mse_weight * F.mse_loss(out, image))
        if encoder is not None and options.encoder_weight > 0:
            loss = loss + options.encoder_weight * F.mse_loss(wplus, encoder(out).detach())
        return loss, out

    best, losses, cancelled, best_step = _adam_loop(
        start, loss_fn, options.steps, lambda step: _lr_schedule(step / options.steps, options.lr), on_step,
        should_stop, options.speed, StaticLoss(loss_fn))
    return OptimizationResult(best, (best - start)[0].detach(), losses, cancelled, perceptual.name,
                              best_step=best_step, extra={"start": start.detach()})
