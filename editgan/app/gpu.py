"""Hugging Face ZeroGPU: on a Space whose hardware is ZeroGPU, a GPU is attached only while a function decorated
with ``@spaces.GPU`` runs. The studio wraps every callback that runs the model that way when the ``spaces`` package
is installed (it is on Spaces), and leaves them as they are everywhere else.

A call may hold the GPU for as long as its decorator asked (60 s unless told; ZeroGPU stops it after that), and
shorter requests are scheduled sooner. So quick actions ask for little, and an optimization asks for what its step
count needs on the model's canvas (a function of the call's arguments, which ``spaces.GPU`` accepts as
``duration``), from the engine's times measured on an H200 with a margin for slower cards.
"""
from __future__ import annotations

import functools
import importlib
import inspect
import logging
import os
from typing import Any, Callable

from gradio.blocks import Block

log = logging.getLogger(__name__)

DEFAULT_SECONDS = 60
"""ZeroGPU's own default, asked for loading a model, importing annotations and saving a taught model."""
QUICK_SECONDS = 20
"""A sample, a slider's picture or label map, a Teach sample: well under a second on a GPU at 512 px."""
JOB_BASE_SECONDS = 30
"""What an optimization needs beside its steps: the renderings before and after, the perceptual loss's set-up."""
TRAIN_SECONDS = 300
"""A Teach training run: rendering the samples' features, then members × epochs over their labelled pixels and the
held-out check (the public limits, 4 members × 20 epochs × 32 samples, keep it well inside this)."""
MAX_SECONDS = 900
"""The most an optimization asks for (2000 steps at 1024 px); ZeroGPU's own limit for the Space's visitors
applies on top."""


def step_seconds(canvas: int) -> float:
    """Time asked for one optimization step on a ``canvas``-px generator. An H200 took 17, 27, 51 and 136 ms a
    step at 64, 256, 512 and 1024 px (eager fp32, 2026-12-04); this asks for 2.2 to 3 times that."""
    return 0.05 + 0.25 * (canvas / 1024) ** 2


def job_seconds(canvas: int, steps: int) -> int:
    """Time asked for an edit, embedding or refinement of ``steps`` steps on a ``canvas``-px generator."""
    return min(MAX_SECONDS, round(JOB_BASE_SECONDS + steps * step_seconds(canvas)))


LOOP_RESERVE_SECONDS = 20
"""Of an optimization's asked time, what its steps leave for the rest of the call (the renderings before and after
them): on ZeroGPU the steps stop by then, keeping the best result, rather than the call being stopped and lost."""


def on_zero_gpu() -> bool:
    """Whether this process runs on a ZeroGPU Space (``SPACES_ZERO_GPU``, the spaces package's own switch)."""
    return os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "t", "true")


def steps_seconds(canvas: int, steps: int) -> float:
    """How long the steps of an optimization may run on ZeroGPU: what :func:`job_seconds` asked for, less
    :data:`LOOP_RESERVE_SECONDS`."""
    return job_seconds(canvas, steps) - LOOP_RESERVE_SECONDS


def never_failing(seconds: Callable[..., int], fallback: int = DEFAULT_SECONDS) -> Callable[..., int]:
    """``seconds`` guarded: it runs before the callback (and its clear error messages), on a stranger's arguments,
    so whatever it cannot read asks for ``fallback`` and the callback itself then says what is wrong (at once: the
    same arguments fail its checks)."""
    def guarded(*args: Any, **kwargs: Any) -> int:
        try:
            return int(seconds(*args, **kwargs))
        except Exception:  # noqa: BLE001 — any bad argument: the callback reports it
            log.debug("GPU time of a call with unreadable arguments: asking for %s s", fallback, exc_info=True)
            return fallback
    return guarded


class ByComponent(dict):
    """A callback's answer ``{component: value}`` with each component named by its id: what crosses from a ZeroGPU
    worker to the server (the components themselves cannot be pickled)."""


def portable(answer: Any) -> Any:
    """``answer`` as it can be pickled: components as keys become their ids (:class:`ByComponent`), components as
    values (``gr.Button(interactive=False)``) the update dicts that Gradio itself makes of them."""
    if isinstance(answer, dict) and answer and all(isinstance(key, Block) for key in answer):
        return ByComponent({key._id: _portable_value(value) for key, value in answer.items()})
    if isinstance(answer, (list, tuple)):
        return type(answer)(_portable_value(value) for value in answer)
    return _portable_value(answer)


def _portable_value(value: Any) -> Any:
    return {**value.constructor_args, "__type__": "update"} if isinstance(value, Block) else value


class GpuRunner:
    """``gpu(fn)`` or ``gpu(fn, seconds)``: ``fn`` run inside ``@spaces.GPU``, asking for ``seconds`` (a number, or a
    function of ``fn``'s arguments; :data:`DEFAULT_SECONDS` when omitted); ``fn`` itself without ``spaces``.

    On ZeroGPU every such call runs in a worker process forked from the server, its arguments and its answers
    pickled across (spaces/zero/wrappers.py). So the worker hands back :func:`portable` answers and the server turns
    them back into ``{component: value}`` with :attr:`blocks`; whatever the call changed in its own memory stays
    there, so callbacks return the session they changed."""

    def __init__(self, spaces: Any = None):
        self._spaces = spaces
        self.blocks: dict[int, Any] = {}
        """The page's components by id (``demo.blocks``, set once the page is built)."""

    def __call__(self, fn: Callable, seconds: int | Callable[..., int] | None = None) -> Callable:
        if self._spaces is None:
            return fn
        in_worker = _each_answer(fn, portable, fn)
        if seconds is None:
            decorated = self._spaces.GPU(in_worker)
        else:
            duration = seconds if isinstance(seconds, int) else never_failing(seconds)
            decorated = self._spaces.GPU(duration=duration)(in_worker)
        return _each_answer(decorated, self.restored, fn)

    def restored(self, answer: Any) -> Any:
        return {self.blocks[key]: value for key, value in answer.items()} if isinstance(answer, ByComponent) \
            else answer


def _each_answer(call: Callable, convert: Callable[[Any], Any], like: Callable) -> Callable:
    """``call`` with ``convert`` applied to its answer (to each, for a generator), looking like ``like`` (name,
    signature, generator or not) to Gradio and to ``spaces``."""
    if inspect.isgeneratorfunction(like):
        @functools.wraps(like)
        def answers(*args: Any, **kwargs: Any):
            for answer in call(*args, **kwargs):
                yield convert(answer)
        return answers

    @functools.wraps(like)
    def answer(*args: Any, **kwargs: Any):
        return convert(call(*args, **kwargs))
    return answer


def gpu_runner() -> GpuRunner:
    """A runner through ``spaces.GPU`` when the ``spaces`` package is importable, else one that leaves every function
    as it is."""
    try:
        return GpuRunner(importlib.import_module("spaces"))
    except ImportError:
        return GpuRunner()
