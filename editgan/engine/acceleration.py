"""Switches that make the optimization loops faster on a GPU, all off by default.

Measured on an H200 (reference/gpu_notes.md): at batch 1 an edit step is launch-bound (the GPU kernels of a
512-px step take 14 ms of its 50-67 ms), so capturing the step's forward and backward once and replaying it is
where the time is; TF32 pays where kernels dominate (1024 px); bf16 autocast is offered to be measured. None of
these has run on a GPU yet, hence off by default and each with a fallback: where a switch cannot apply (no CUDA,
a capture or compile that fails) the loop runs eagerly, exactly as without it, and says so once in the log.

- ``step="cuda_graph"``: the step's forward and backward w.r.t. w+ are captured in a CUDA graph after a few
  warm-up runs and replayed every step; Adam stays eager (it is a handful of kernels on one tensor). Needs a
  loss written with static shapes (:class:`StaticLoss`): the edit loop's cross-entropy reads a fixed-size sample
  of the ROI whose taps are prepared once per edit (see ``Segmenter.roi_table``).
- ``step="compile"``: the same static loss through ``torch.compile`` (``mode="reduce-overhead"`` on CUDA, which
  also uses CUDA graphs); the first compile of a shape takes tens of seconds.
- ``step="static"``: the static loss run eagerly: what the two above capture, for tests and debugging.
- ``tf32``: TF32 matrix products for the loop's duration, on CUDA only (elsewhere nothing); cuDNN convolutions
  are TF32 already by PyTorch's default, which this leaves alone when off.
- ``bf16``: the loss's forward (generator, segmentation branch, losses) under bf16 autocast, on any device;
  w+, its gradient and Adam stay fp32. Its effect on edit quality is to be measured (``python -m editgan
  evaluate``). It is allowed on the CPU too, where it runs and stays near fp32 (tests/test_acceleration.py);
  reference/cpu_performance_notes.md measured the generator 25-30 % faster with it on CPUs with AVX512-bf16.
"""
from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass
from typing import Callable, Iterator

import torch

log = logging.getLogger(__name__)

STEP_MODES = ("eager", "static", "cuda_graph", "compile")

LossFunction = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
StepRunner = Callable[[int], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
"""step index → (loss, image, gradient of the loss w.r.t. w+), all detached; may be buffers that the next call
overwrites."""


@dataclass(frozen=True)
class SpeedOptions:
    """How an optimization loop runs (see the module docstring); the defaults are today's eager fp32 loop."""
    step: str = "eager"
    """eager, static, cuda_graph or compile."""
    tf32: bool = False
    bf16: bool = False

    def __post_init__(self) -> None:
        if self.step not in STEP_MODES:
            raise ValueError(f"unknown step mode {self.step!r}; choose from {', '.join(STEP_MODES)}")


@dataclass
class StaticLoss:
    """A loss whose tensors keep their shapes and storage from step to step, so that it can be captured.

    ``prepare(step)`` writes that step's inputs (e.g. which ROI pixels the cross-entropy reads) into fixed
    buffers on the host side, before the step runs; ``loss(w+) -> (loss, image)`` reads only w+ and those
    buffers. ``prepare`` may be called for the same step more than once (warm-up) and must then write the same.
    """
    loss: LossFunction
    prepare: Callable[[int], None] = lambda step: None


_warned: set[str] = set()
_warned_lock = threading.Lock()


def warn_once(key: str, message: str, *args: object) -> None:
    """Log a warning the first time ``key`` is seen in this process: a fallback taken every edit is said once."""
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    log.warning(message, *args)


def forget_warnings() -> None:
    """Let every once-per-process warning be logged again (a benchmark reports fallbacks per measurement)."""
    with _warned_lock:
        _warned.clear()


@contextlib.contextmanager
def tf32(device: torch.device, enabled: bool) -> Iterator[bool]:
    """TF32 matrix products and cuDNN convolutions within the block when ``enabled`` and ``device`` is CUDA
    (yields whether it applied). The flags are process-wide, so they are restored on exit; when off, nothing is
    touched (PyTorch's own default keeps cuDNN convolutions in TF32 and matrix products in full fp32)."""
    if not enabled or device.type != "cuda":
        yield False
        return
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    before = (matmul.allow_tf32, cudnn.allow_tf32)
    matmul.allow_tf32, cudnn.allow_tf32 = True, True
    try:
        yield True
    finally:
        matmul.allow_tf32, cudnn.allow_tf32 = before


def autocast(device: torch.device, enabled: bool, cache_enabled: bool = True) -> contextlib.AbstractContextManager:
    """bf16 autocast on ``device`` when ``enabled`` (a no-op context otherwise, or where the device type has no
    autocast, which is logged once). A captured graph must not use autocast's weight cast cache
    (``cache_enabled=False``): the cache's tensors would be freed under the graph."""
    if not enabled:
        return contextlib.nullcontext()
    try:
        return torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=cache_enabled)
    except (RuntimeError, ValueError) as e:
        warn_once(f"autocast-{device.type}", "bf16 autocast is not available on %s (%s); running in fp32",
                  device.type, e)
        return contextlib.nullcontext()


def step_runner(speed: SpeedOptions, wplus: torch.Tensor, static: StaticLoss | None) -> StepRunner | None:
    """The captured or compiled step that ``speed.step`` asks for, or None for the eager loop: when the step
    mode is eager, when the loss has no static form, or when the capture cannot be had here (logged once).

    A runner is built before the first Adam step: its warm-up runs compute gradients only, so falling back
    leaves the loop exactly where the eager one starts."""
    if speed.step == "eager":
        return None
    if static is None:
        warn_once(f"no-static-{speed.step}", "step mode %r needs a loss with static shapes; this loop has none "
                  "and runs eagerly", speed.step)
        return None
    forward = _with_autocast(static.loss, wplus.device, speed.bf16, cache_enabled=speed.step != "cuda_graph")
    if speed.step == "static":
        return _eager_runner(static, forward, wplus)
    if speed.step == "cuda_graph":
        if wplus.device.type != "cuda" or not torch.cuda.is_available():
            warn_once("cuda-graph-device", "CUDA graphs need a CUDA device (this loop runs on %s); running the "
                      "optimization step eagerly", wplus.device.type)
            return None
        try:
            return _graph_runner(static, forward, wplus)
        except Exception as e:  # noqa: BLE001 - any capture failure: the eager loop is always right
            warn_once(f"cuda-graph-failed-{type(e).__name__}", "capturing the optimization step in a CUDA graph "
                      "failed (%s: %s); running it eagerly", type(e).__name__, e)
            _recover_after_failed_capture(wplus.device)
            return None
    try:
        return _compiled_runner(static, forward, wplus)
    except Exception as e:  # noqa: BLE001 - compilers fail in many ways; the eager loop is always right
        warn_once(f"compile-failed-{type(e).__name__}", "torch.compile of the optimization step failed "
                  "(%s: %s); running it eagerly", type(e).__name__, e)
        return None


def autocast_loss(loss: LossFunction, device: torch.device, cache_enabled: bool = True) -> LossFunction:
    """``loss`` with its forward under bf16 autocast (the backward follows the forward's dtypes); the loss and the
    image come back in fp32, for the loop's bookkeeping and its callbacks."""
    def forward(wplus: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with autocast(device, True, cache_enabled):
            value, image = loss(wplus)
        return value.float(), image.float()
    return forward


def _with_autocast(loss: LossFunction, device: torch.device, bf16: bool, cache_enabled: bool) -> LossFunction:
    return autocast_loss(loss, device, cache_enabled) if bf16 else loss


def _loss_and_gradient(forward: LossFunction, wplus: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    loss, image = forward(wplus)
    (grad,) = torch.autograd.grad(loss, [wplus])
    return loss.detach(), image.detach(), grad


def _eager_runner(static: StaticLoss, forward: LossFunction, wplus: torch.Tensor) -> StepRunner:
    def run(step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        static.prepare(step)
        return _loss_and_gradient(forward, wplus)
    return run


def _graph_runner(static: StaticLoss, forward: LossFunction, wplus: torch.Tensor, warmup: int = 3) -> StepRunner:
    """Capture forward + backward w.r.t. ``wplus`` (whose storage Adam updates in place, so the graph reads each
    step's latent where it is). Warm-up on a side stream first, as CUDA graphs require (lazy initialisations,
    allocator state)."""
    device = wplus.device
    static.prepare(0)
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(warmup):
            _loss_and_gradient(forward, wplus)
    torch.cuda.current_stream(device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        outputs = _loss_and_gradient(forward, wplus)
    log.info("optimization step captured in a CUDA graph")

    def run(step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        static.prepare(step)  # copies into the graph's input buffers, in stream order before the replay
        graph.replay()
        return outputs
    return run


def _recover_after_failed_capture(device: torch.device) -> None:
    """A failed capture can leave the error pending on the device; clear it so the eager loop starts clean."""
    try:
        torch.cuda.synchronize(device)
    except RuntimeError as e:
        log.warning("the device reported after the failed capture: %s", e)


def _compiled_runner(static: StaticLoss, forward: LossFunction, wplus: torch.Tensor) -> StepRunner:
    """``torch.compile`` the forward (AOTAutograd compiles its backward with it). The first run compiles, here,
    so that a failure falls back before the loop starts."""
    on_cuda = wplus.device.type == "cuda"
    compiled = torch.compile(forward, mode="reduce-overhead" if on_cuda else None, dynamic=False)

    def run(step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        static.prepare(step)
        if on_cuda:
            torch.compiler.cudagraph_mark_step_begin()  # the previous step's outputs are consumed
        return _loss_and_gradient(compiled, wplus)
    run(0)
    log.info("optimization step compiled")
    return run
