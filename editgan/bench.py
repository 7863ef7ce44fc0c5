"""``python -m editgan bench``: speed and memory of the engine on this machine, written as JSON.

Measured for the embedded model (when present) and for random-weight StyleGAN2 models at 256 px (config-f)
and 512 px with a 32-class, 10-member segmentation branch like EditGAN's car model: generator forward and
forward+backward, one edit step, a 100-step edit, a preset-slider application, a 30-step refinement, and the
segmentation branch's peak memory, factorized vs naive. Times are medians over repeats after a warm-up (the
generator's forward+backward and the edit step, whose ratio is the edit loop's overhead, over 4× as many).
On the big random models, the 100-step edit and 30-step refine are extrapolated from the measured step time
unless ``--full`` is given (on a 2-core CPU they would take many minutes); the JSON says which.

The segmentation branch's full map is measured three ways, each in a fresh process for its peak memory: the
banded path (``factorized``, the CPU's), DatasetGAN's naive one and the dense path (CUDA's and MPS's).

``car-512`` is the random 512-px model with the car's 384×512 picture box, measured as a visitor waits for it
(``picture_first``): a sample's and a slider's time to picture and to label map (the engine's two phases), and an
edit's time outside its steps, started from the original's rendering the studio keeps or rendering it itself, and
showing the result's picture before its map or not. One run each (``--repeats`` does not apply): seconds apiece.

On CUDA there is more (``--device cuda``): a 1024-px config-f model (``random-1024``, too slow for a CPU), the
dense full map warm in this process (time, peak memory, with and without TF32, against the banded path), the peak
GPU memory of a 100-step edit, and ``speed_variants``: a 100-step edit (``edit_s``), its step time, a 30-step
refine (``refine_s``) and the slider under each of the switches of :mod:`editgan.engine.acceleration` (eager, TF32,
bf16, CUDA graph alone and with each, torch.compile at 512 px only: its compile takes tens of seconds per
shape), with any fallback the loop took logged into the row.
"""
from __future__ import annotations

import json
import logging
import multiprocessing
import platform
import statistics
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from editgan.engine import acceleration, editing
from editgan.engine.acceleration import SpeedOptions, tf32
from editgan.engine.editing import EditOptions
from editgan.engine.labels import region_of_interest
from editgan.engine.model import EditGANModel, choose_device
from editgan.modelio.config import GeneratorConfig, ModelConfig, SegmenterSettings
from editgan.modelio.hub import DEFAULT_MODEL, embedded_models
from editgan.modelio.vectors import EditingVector
from editgan.networks.lpips import LPIPS
from editgan.networks.segmenter import Segmenter, SegmenterConfig
from editgan.networks.stylegan2 import Generator

log = logging.getLogger(__name__)

RANDOM_MODELS = {"random-256": 256, "random-512": 512, "random-1024": 1024}
CAR_FORMAT_MODELS = {"car-512": (512, (64, 0, 384, 512))}
"""Random models with a picture box like EditGAN's car model (384×512 in the 512-px canvas): picture-first rows."""
PICTURE_FIRST_EDIT_STEPS = 3
CUDA_ONLY_MODELS = {"random-1024"}
DEFAULT_MODELS = ["embedded", "random-256", "random-512"]
STEP_SAMPLES_PER_REPEAT = 4
SPEED_VARIANTS = {
    "eager": SpeedOptions(),
    "tf32": SpeedOptions(tf32=True),
    "bf16": SpeedOptions(bf16=True),
    "cuda_graph": SpeedOptions("cuda_graph"),
    "cuda_graph+tf32": SpeedOptions("cuda_graph", tf32=True),
    "cuda_graph+bf16": SpeedOptions("cuda_graph", bf16=True),
    "compile": SpeedOptions("compile"),
}
COMPILE_MAX_SIZE = 512
"""torch.compile is measured up to this size: its compile takes tens of seconds for every new shape."""


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()
    elif device.type == "mps":
        torch.mps.synchronize()


def median_ms(fn: Callable[[], object], device: torch.device, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 2)


def random_model(size: int, device: torch.device, seed: int = 0,
                 image_box: tuple[int, int, int, int] | None = None) -> EditGANModel:
    """Config-f generator and a 32-class, 10-member segmenter with random weights (speed only)."""
    torch.manual_seed(seed)
    g = Generator(size, 512, 8, channel_multiplier=2)
    classes = [f"class_{i}" for i in range(32)]
    seg_config = SegmenterConfig(tuple(g.feature_channels()), n_classes=32, n_members=10)
    config = ModelConfig(f"random-{size}", GeneratorConfig(size), classes, [(i * 7 % 256, i * 31 % 256, i * 73 % 256)
                                                                            for i in range(32)],
                         SegmenterSettings(10), image_box=image_box)
    return EditGANModel(config, g, Segmenter(seg_config), device=device)


def _painted_disc(model: EditGANModel, labels: torch.Tensor, fraction: float = 0.05
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """A disc covering ``fraction`` of the canvas, painted with class 1: a typical brush edit."""
    size = model.generator.size
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    radius = size * (fraction / np.pi) ** 0.5
    painted = ((yy - size / 2) ** 2 + (xx - size / 2) ** 2 <= radius ** 2).to(labels.device)
    target = labels.clone()
    target[painted] = 1
    return painted, target


def _loop_step_times(run: Callable[[Callable], object]) -> list[float]:
    stamps = [time.perf_counter()]
    run(lambda info: stamps.append(time.perf_counter()))
    return [(b - a) * 1000 for a, b in zip(stamps, stamps[1:])]


def bench_model(name: str, model: EditGANModel, repeats: int, full: bool, memory_members: int | None) -> dict:
    device, g, seg = model.device, model.generator, model.segmenter
    torch.manual_seed(0)
    w = model.mean_wplus + 0.5 * torch.randn_like(model.mean_wplus)
    result: dict = {"size": g.size, "n_latent": g.n_latent, "style_dim": g.style_dim,
                    "generator_params_M": round(sum(p.numel() for p in g.parameters()) / 1e6, 2)}

    with torch.no_grad():
        result["generator_forward_ms"] = median_ms(lambda: g.synthesis(w), device, repeats)

    # the edit step's overhead is a ratio of these two medians: both over more samples than the other timings
    step_samples = STEP_SAMPLES_PER_REPEAT * repeats

    def fwd_bwd() -> None:
        wp = w.detach().requires_grad_(True)
        g.synthesis(wp).square().mean().backward()
    result["generator_forward_backward_ms"] = median_ms(fwd_bwd, device, step_samples)
    if seg is None:
        return result

    image, labels = editing.render(g, seg, w)
    painted, target = _painted_disc(model, labels[0])
    roi = region_of_interest(labels[0], target, painted, [], 3)
    result["edit_roi_fraction"] = round(roi.float().mean().item(), 3)
    steps = step_samples + 1  # the first step (one-time set-up) is not counted

    def edit_run(perceptual, n: int) -> Callable[[Callable], object]:
        return lambda cb: editing.optimize_toward_labels(g, seg, w, target, roi, image, perceptual,
                                                         EditOptions(steps=n), on_step=cb)

    per_step = _loop_step_times(edit_run(model.perceptual, steps))[1:]
    result["perceptual_loss"] = model.perceptual.name
    result["edit_step_ms"] = round(statistics.median(per_step), 2)
    lpips_step = _loop_step_times(edit_run(LPIPS().to(device), repeats + 1))[1:]
    result["edit_step_with_lpips_ms"] = round(statistics.median(lpips_step), 2)
    result["edit_step_overhead_x"] = round(result["edit_step_ms"] / result["generator_forward_backward_ms"], 2)
    result["edit_step_with_lpips_overhead_x"] = round(
        result["edit_step_with_lpips_ms"] / result["generator_forward_backward_ms"], 2)

    measure_full = full or name == "embedded"
    if measure_full:
        _reset_peak(device)
        start = time.perf_counter()
        editing.optimize_toward_labels(g, seg, w, target, roi, image, model.perceptual, EditOptions(steps=100))
        result["edit_100_steps_s"] = round(time.perf_counter() - start, 2)
        if device.type == "cuda":
            result["edit_peak_MB"] = _peak_MB(device)
    else:
        result["edit_100_steps_s"] = round(result["edit_step_ms"] * 100 / 1000, 1)
        result["edit_100_steps_extrapolated"] = True

    vector = torch.randn_like(w[0]) * 0.1
    preset = [(_vector_like(model, vector), 1.0)]
    result["vector_apply_ms"] = median_ms(lambda: model.apply_vectors(w[0].cpu().numpy(), preset), device, repeats)
    if measure_full:
        start = time.perf_counter()
        editing.apply_vector(g, seg, w, vector, 1.0, 30, [1], model.perceptual)
        result["refine_30_steps_s"] = round(time.perf_counter() - start, 2)
    else:
        result["refine_30_steps_s"] = round(result["edit_step_ms"] * 30 / 1000 + result["vector_apply_ms"] / 1000, 1)
        result["refine_30_steps_extrapolated"] = True

    members = memory_members or seg.config.n_members
    if g.size >= 1024:  # the naive map would hold 25 GB a member, the banded one takes many seconds
        result["segmenter_memory"] = {"skipped": "at 1024 px only the dense path is measured (full_label_map)"}
    else:
        result["segmenter_memory"] = segmenter_memory(g, seg.config, members, device)
    if device.type in ("cuda", "mps"):
        result["full_label_map"] = full_label_map(g, seg, w, device, repeats, banded=g.size <= 512)
    if device.type == "cuda":
        variants = {k: v for k, v in SPEED_VARIANTS.items() if k != "compile" or g.size <= COMPILE_MAX_SIZE}
        result["speed_variants"] = speed_variants(model, w, target, roi, image, vector, variants)
    return result


def picture_first(model: EditGANModel, steps: int = PICTURE_FIRST_EDIT_STEPS) -> dict:
    """Seconds a visitor waits, each measured once: for a sample and a slider, until the picture (the generator's
    pass) and until its label map; for a ``steps``-step edit, outside its steps (before the first, after the last),
    as the studio runs it (the original's rendering passed in, the result's picture shown before its map) and as
    the engine did before (rendering the original, then the result whole)."""
    out: dict = {"size": model.generator.size, "image_box": list(model.config.box),
                 "members": model.segmenter.config.n_members, "classes": model.config.n_classes,
                 "perceptual_loss": model.perceptual.name}  # loaded before the clock runs, as a warm server has it
    start = time.perf_counter()
    picture = model.sample_picture(1)
    out["sample_to_picture_s"] = round(time.perf_counter() - start, 2)
    original = model.segment(picture)
    out["sample_to_label_map_s"] = round(time.perf_counter() - start, 2)

    rng = np.random.default_rng(0)
    vector = EditingVector("bench", rng.normal(0, 0.05, original.wplus.shape).astype(np.float32), classes=[1])
    start = time.perf_counter()
    slid = model.apply_vectors(original.wplus, [(vector, 1.0)], label_map=False)
    out["slider_to_picture_s"] = round(time.perf_counter() - start, 2)
    model.segment(slid.pending)
    out["slider_to_label_map_s"] = round(time.perf_counter() - start, 2)

    painted, wanted = _painted_disc_in_box(original.labels)
    for name, given, label_map in (("edit_studio", original, False), ("edit_before", None, True)):
        checks: list[float] = []  # the stop check runs just before every step, the step callback just after
        stamps: list[float] = []
        start = time.perf_counter()
        outcome = model.edit(original.wplus, wanted, painted, steps=steps, original=given, label_map=label_map,
                             on_step=lambda p: stamps.append(time.perf_counter()),
                             should_stop=lambda: bool(checks.append(time.perf_counter())))
        to_picture = time.perf_counter()
        if outcome.pending is not None:
            model.segment(outcome.pending)
        end = time.perf_counter()
        step_s = (stamps[-1] - checks[0]) / steps
        before = checks[0] - start
        out[name] = {"steps": steps, "step_s": round(step_s, 2), "before_first_step_s": round(before, 2),
                     "after_last_step_to_picture_s": round(to_picture - stamps[-1], 2),
                     "after_last_step_to_label_map_s": round(end - stamps[-1], 2),
                     "overhead_s": round(before + end - stamps[-1], 2)}
    return out


def _painted_disc_in_box(labels: np.ndarray, fraction: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_painted_disc` on a picture box's label map (h, w): painted pixels and the wanted map."""
    h, w = labels.shape
    yy, xx = np.mgrid[:h, :w]
    painted = (yy - h / 2) ** 2 + (xx - w / 2) ** 2 <= h * w * fraction / np.pi
    wanted = labels.copy()
    wanted[painted] = 1
    return painted, wanted


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def _peak_MB(device: torch.device) -> float | None:
    """Peak memory allocated on ``device`` since the last reset, everything included (the model's weights too):
    what has to fit on the card. None off CUDA."""
    if device.type != "cuda":
        return None
    torch.cuda.synchronize(device)
    return round(torch.cuda.max_memory_allocated(device) / 2 ** 20, 1)


def full_label_map(g: Generator, seg: Segmenter, w: torch.Tensor, device: torch.device, repeats: int,
                   banded: bool) -> dict:
    """The full label map on the device, warm, in this process: the dense path (its time, with and without
    TF32, and its peak memory beyond what was allocated before it) and, for comparison, the banded one."""
    with torch.no_grad():
        image, feats = g.synthesis(w, return_features=True)
        size = tuple(image.shape[-2:])
        members, rows = seg.dense_plan(1, size)
        out: dict = {"members": seg.config.n_members, "classes": seg.config.n_classes,
                     "dense_bands": -(-size[0] // rows), "dense_member_groups": -(-seg.config.n_members // members)}
        out["dense_ms"] = median_ms(lambda: seg(feats, size, dense=True), device, repeats)
        if device.type == "cuda":
            with tf32(device, True):
                out["dense_tf32_ms"] = median_ms(lambda: seg(feats, size, dense=True), device, repeats)
            torch.cuda.synchronize(device)
            base = torch.cuda.memory_allocated(device)
            _reset_peak(device)
            dense = seg(feats, size, dense=True)
            peak = torch.cuda.max_memory_allocated(device)
            out["dense_peak_MB"] = round((peak - base) / 2 ** 20, 1)
            out["dense_peak_measured_as"] = "CUDA max_memory_allocated above the allocation before the call " \
                                            "(features and weights excluded, the logits included)"
            out["dense_peak_total_MB"] = round(peak / 2 ** 20, 1)  # with the model and the feature maps
        else:
            dense = seg(feats, size, dense=True)
        if banded:
            out["banded_ms"] = median_ms(lambda: seg(feats, size, dense=False), device, max(1, repeats // 2))
            out["dense_vs_banded_max_abs_diff"] = float((dense - seg(feats, size, dense=False)).abs().max())
    return out


class _LogRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def speed_variants(model: EditGANModel, w: torch.Tensor, target: torch.Tensor, roi: torch.Tensor,
                   image: torch.Tensor, vector: torch.Tensor, variants: dict[str, SpeedOptions],
                   edit_steps: int = 100, refine_steps: int = 30) -> dict:
    """Each switch combination on the same edit: the ``edit_steps`` edit (wall time ``edit_s``, including a
    capture or compile in its first step, which is also given alone), the median step after the first three,
    its peak GPU memory and losses, the ``refine_steps`` refine (not compiled: that would compile again), and
    the slider where the switch reaches it (TF32). A variant that fails is reported as such; what the acceleration
    module logged (a fallback to eager, a capture) is kept in its row."""
    g, seg, device = model.generator, model.segmenter, model.device
    logger = logging.getLogger("editgan.engine.acceleration")
    out: dict = {}
    for name, speed in variants.items():
        records = _LogRecords()
        logger.addHandler(records)
        level = logger.level
        logger.setLevel(logging.INFO)
        acceleration.forget_warnings()  # a fallback is worth a line in every row it happens in
        row: dict = {}
        try:
            _reset_peak(device)
            stamps = [time.perf_counter()]
            result = editing.optimize_toward_labels(
                g, seg, w, target, roi, image, model.perceptual, EditOptions(steps=edit_steps, speed=speed),
                on_step=lambda info: stamps.append(time.perf_counter()))
            row["edit_steps"] = edit_steps
            row["edit_s"] = round(stamps[-1] - stamps[0], 2)
            row["edit_first_step_s"] = round(stamps[1] - stamps[0], 2)
            row["edit_step_ms"] = round(statistics.median(
                [(b - a) * 1000 for a, b in zip(stamps[3:], stamps[4:])]), 2)
            if device.type == "cuda":
                row["edit_peak_MB"] = _peak_MB(device)
            row["edit_first_loss"] = round(result.losses[0], 5)
            row["edit_best_loss"] = round(min(result.losses), 5)
            if speed.step == "compile":  # its shapes differ from the edit's: another compile of tens of seconds
                row["refine_s"] = "not measured: it would compile again"
            else:
                start = time.perf_counter()
                editing.apply_vector(g, seg, w, vector, 1.0, refine_steps, [1], model.perceptual,
                                     EditOptions(speed=speed))
                _sync(device)
                row["refine_steps"] = refine_steps
                row["refine_s"] = round(time.perf_counter() - start, 2)
            if speed.step == "eager" and not speed.bf16:
                preset = [(_vector_like(model, vector), 1.0)]
                with tf32(device, speed.tf32):
                    row["vector_apply_ms"] = median_ms(lambda: model.apply_vectors(w[0].cpu().numpy(), preset),
                                                       device, 3)
        except Exception as e:  # noqa: BLE001 - one broken switch must not cost the other rows
            log.exception("speed variant %s failed", name)
            row["error"] = f"{type(e).__name__}: {e}"
        finally:
            logger.removeHandler(records)
            logger.setLevel(level)
        if records.messages:
            row["log"] = records.messages
        out[name] = row
    return out


def _vector_like(model: EditGANModel, delta: torch.Tensor):
    from editgan.modelio.vectors import EditingVector
    return EditingVector("bench", delta.cpu().numpy(), classes=[1])


# -- segmenter memory: each path in a fresh process, so the peak is its own --------------------------------------
def _memory_child(shapes: list[tuple[int, int, int]], config: dict, path: str, device: str, queue) -> None:
    from editgan.engine.cpu_memory import return_freed_memory
    return_freed_memory()  # so that the peak is of live memory, not of what the allocator kept
    torch.set_num_threads(2)
    dev = torch.device(device)
    seg = Segmenter(SegmenterConfig.from_dict(config)).to(dev).eval()
    feats = [torch.randn(1, c, h, w, device=dev) for c, h, w in shapes]
    size = (shapes[-1][1], shapes[-1][2])
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = _reset_peak_rss()
    start = time.perf_counter()
    with torch.no_grad():
        if path == "naive":
            out = seg.forward_naive(feats, size)
        else:
            out = seg(feats, size, dense=path == "dense")
    if dev.type == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = _status_bytes("VmHWM") - base
    queue.put({"peak_MB": round(peak / 2 ** 20, 1), "seconds": round(time.perf_counter() - start, 2),
               "logits_shape": list(out.shape)})


def _status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise OSError(f"{field} not in /proc/self/status")


def _reset_peak_rss() -> int:
    """Return freed heap to the OS, reset the peak-RSS mark (Linux: clear_refs 5) and return the current RSS, so
    that the next VmHWM reading is the peak of what runs after this call alone."""
    import ctypes
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass
    Path("/proc/self/clear_refs").write_text("5")
    return _status_bytes("VmRSS")


def segmenter_memory(g: Generator, config: SegmenterConfig, members: int, device: torch.device) -> dict:
    """Peak extra memory of one segmentation of a full canvas: the banded factorized path, DatasetGAN's naive
    one and the dense factorized one."""
    shapes = [(c, r, r) for c, r in zip(g.feature_channels(), g.feature_resolutions())]
    cfg = SegmenterConfig(config.feature_channels, config.n_classes, members, config.hidden,
                          config.upsample_mode).to_dict()
    ctx = multiprocessing.get_context("spawn")
    out: dict = {"members": members, "measured_as": "CUDA max_memory_allocated" if device.type == "cuda"
                 else "peak RSS above the RSS before the call (VmHWM after a clear_refs reset), with glibc "
                      "returning freed memory at once"}
    for path in ("factorized", "naive", "dense"):
        queue = ctx.Queue()
        proc = ctx.Process(target=_memory_child, args=(shapes, cfg, path, str(device), queue))
        proc.start()
        proc.join()
        out[path] = queue.get() if proc.exitcode == 0 else {"error": f"exit code {proc.exitcode}"}
    if "peak_MB" in out["factorized"] and "peak_MB" in out["naive"]:
        out["naive_over_factorized_x"] = round(out["naive"]["peak_MB"] / max(out["factorized"]["peak_MB"], 0.1), 1)
    return out


def run(models: list[str] | None = None, repeats: int = 3, full: bool = False, device: str | None = None,
        json_path: Path | None = None, progress: Callable[[str], None] = print) -> dict:
    """Benchmark ``models`` (default: the embedded one and the random 256- and 512-px ones, and on CUDA the
    1024-px one too) on ``device``; write the report to ``json_path`` as it grows."""
    dev = choose_device(device)
    if models is None:
        models = DEFAULT_MODELS + (sorted(CUDA_ONLY_MODELS) if dev.type == "cuda" else [])
    report: dict = {"device": _device_name(dev), "torch": torch.__version__, "threads": torch.get_num_threads(),
                    "date": time.strftime("%Y-%m-%d %H:%M"), "repeats": repeats, "models": {}}
    for name in models:
        progress(f"benchmarking {name} on {report['device']} …")
        if name == "embedded":
            if DEFAULT_MODEL not in embedded_models():
                report["models"][name] = {"skipped": "no embedded model in assets/models"}
                continue
            model = EditGANModel.load(None, dev)
            members = None
        elif name in CUDA_ONLY_MODELS and dev.type != "cuda":
            report["models"][name] = {"skipped": "measured on CUDA only (--device cuda): minutes a step on a CPU"}
            continue
        elif name in CAR_FORMAT_MODELS:
            size, box = CAR_FORMAT_MODELS[name]
            report["models"][name] = {"picture_first": picture_first(random_model(size, dev, image_box=box))}
            progress(json.dumps({name: report["models"][name]}, indent=1))
            if json_path is not None:
                json_path.write_text(json.dumps(report, indent=1) + "\n")
            continue
        elif name in RANDOM_MODELS:
            model = random_model(RANDOM_MODELS[name], dev)
            members = 2 if RANDOM_MODELS[name] >= 512 else None  # naive 512 px with 10 members: 8 TFLOP
        else:
            raise ValueError(f"unknown benchmark model {name!r}; choose from embedded, "
                             f"{', '.join([*RANDOM_MODELS, *CAR_FORMAT_MODELS])}")
        try:
            report["models"][name] = bench_model(name, model, repeats, full, members)
        except torch.OutOfMemoryError as e:  # a card too small for one model keeps the other rows
            report["models"][name] = {"error": f"out of memory: {e}"}
        del model  # before the next model is built: its peak memory is its own
        if dev.type == "cuda":
            torch.cuda.empty_cache()
        progress(json.dumps({name: report["models"][name]}, indent=1))
        if json_path is not None:  # write as we go: a long run keeps what it measured
            json_path.write_text(json.dumps(report, indent=1) + "\n")
    if json_path is not None:
        json_path.write_text(json.dumps(report, indent=1) + "\n")
    return report


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    return device.type
