"""Long engine calls for the app: run them in a worker thread, stream their per-step reports, stop them on request.

No UI code here: the Gradio callbacks iterate :meth:`BackgroundJob.reports` to yield live previews, and Cancel sets
the per-session flag from :class:`CancelFlags` that the engine's ``should_stop`` hook reads.
"""
from __future__ import annotations

import hashlib
import queue
import secrets
import tempfile
import threading
import time
from pathlib import Path
from time import monotonic
from typing import Any, Callable, Generator, TypeVar

from editgan.app import gpu

T = TypeVar("T")

# Model work takes turns on the device (engine.turns): a long job steps aside between its steps, so the groups below
# only decide how many of each kind may wait on the device at once.
LONG_JOBS = {"concurrency_id": "long", "concurrency_limit": 1}
"""Edits, embeddings and refinements take turns, one at a time."""
QUICK_JOBS = {"concurrency_id": "quick", "concurrency_limit": 4}
"""Samples, sliders, saving vectors: a device turn of one rendering each, between a long job's steps."""
LABEL_JOBS = {"concurrency_id": "labels", "concurrency_limit": 4}
"""A slider's label map, the event after its picture: a slow model's map takes device turns like a sample; a fast
model's came with the picture, and this event only answers, so it must not queue behind samples."""
SESSION_JOBS = {"concurrency_id": "session", "concurrency_limit": 8}
"""Undo, redo, reset, downloads, photo uploads: answered from the session and its cached renderings."""
LOADS = {"concurrency_id": "load", "concurrency_limit": 1}

PREVIEW_EVERY_S = 0.25
"""Live previews of long jobs are sent at most this often."""
PUBLIC_JOB_SECONDS = 600
"""In public mode an edit, embedding or refinement runs its steps for at most this long, then keeps its best: one
visitor's 2000-step edit of a 512-px model on a CPU would hold the long jobs' queue for the better part of an
hour."""


class TimeBudget:
    """How long an optimization's steps may run, counted from the budget's making (the callback's start), and why:
    its :meth:`over` joins the Cancel button as the loop's ``should_stop``. Unlimited when ``seconds`` is None."""

    def __init__(self, seconds: float | None, reason: str = ""):
        self._end = None if seconds is None else monotonic() + seconds
        self.reason = reason
        """What the end of the time is, for the sentence that says the steps stopped there."""
        self.ran_out = False
        """Whether :meth:`over` has said yes: the result is the best step within the time."""

    def over(self) -> bool:
        if not self.ran_out and self._end is not None and monotonic() >= self._end:
            self.ran_out = True
        return self.ran_out

    @property
    def stopped(self) -> str | None:
        """Why the steps stopped early (:attr:`reason`), or None when they did not run out of time."""
        return self.reason if self.ran_out else None


def job_budget(canvas: int, steps: int, public: bool) -> TimeBudget:
    """The time of an optimization of ``steps`` steps on a ``canvas``-px generator, made at its callback's start: on
    ZeroGPU (:func:`editgan.app.gpu.on_zero_gpu`) a little less than its call asked for
    (:func:`editgan.app.gpu.steps_seconds`), in public mode at most :data:`PUBLIC_JOB_SECONDS`, the tighter of the
    two; elsewhere unlimited."""
    limits = []
    if gpu.on_zero_gpu():
        limits.append((gpu.steps_seconds(canvas, steps), "before the GPU time this request asked for ran out"))
    if public:
        limits.append((PUBLIC_JOB_SECONDS, f"at this public studio's limit of {PUBLIC_JOB_SECONDS // 60} minutes "
                                           f"a job"))
    return TimeBudget(*min(limits)) if limits else TimeBudget(None)


class BackgroundJob:
    """Runs ``work(on_step)`` in a thread; :meth:`reports` yields the newest report passed to ``on_step`` at most
    every ``PREVIEW_EVERY_S`` while it runs (older ones are skipped); :meth:`result` returns the value of ``work``
    or raises its error in the caller's thread."""

    _DONE = object()

    def __init__(self, work: Callable[[Callable[[Any], None]], Any]):
        self._queue: queue.Queue = queue.Queue()
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(work,), name="editgan-job", daemon=True)
        self._thread.start()

    def _run(self, work: Callable) -> None:
        try:
            self._value = work(self._queue.put)
        except BaseException as e:  # handed to the callback's thread by result()
            self._error = e
        finally:
            self._queue.put(self._DONE)

    def reports(self, every: float = PREVIEW_EVERY_S) -> Generator[Any, None, None]:
        last = 0.0
        while True:
            item = self._queue.get()
            done = item is self._DONE
            latest = None if done else item
            while not done:  # keep only the newest report
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                done = item is self._DONE
                latest = latest if done else item
            if latest is not None and (time.monotonic() - last >= every):
                last = time.monotonic()
                yield latest
            if done:
                return

    def result(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value

    def wait(self, timeout: float) -> None:
        self._thread.join(timeout)


class StopFlag:
    """One job's stop flag: set here (the job ended) or by a file that :meth:`CancelFlags.cancel` writes, which a
    job running in another process (a ZeroGPU worker) sees too."""

    def __init__(self, stop_file: Path, running_file: Path, token: str):
        self.stop_file, self.running_file, self.token = stop_file, running_file, token
        self._ended = threading.Event()

    def set(self) -> None:
        self._ended.set()

    def is_set(self) -> bool:
        return self._ended.is_set() or self.stop_file.exists()  # a stat per step: microseconds


class CancelFlags:
    """One stop flag per browser session (or API client): Cancel sets it, the running job's should_stop reads it.
    The flags are files in a folder of their own (named by a hash of the session's key), so that Cancel, answered
    in the server's process, reaches a job that runs in a ZeroGPU worker process."""

    def __init__(self, folder: Path | None = None):
        self.folder = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="editgan-cancel-"))
        self.folder.mkdir(parents=True, exist_ok=True)

    def _files(self, key: str) -> tuple[Path, Path]:
        name = hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()[:32]
        return self.folder / f"{name}.stop", self.folder / f"{name}.running"

    def arm(self, key: str) -> StopFlag:
        stop, running = self._files(key)
        stop.unlink(missing_ok=True)
        flag = StopFlag(stop, running, secrets.token_hex(8))
        running.write_text(flag.token)
        return flag

    def cancel(self, key: str) -> bool:
        """Stop the job of ``key``; False when none runs."""
        stop, running = self._files(key)
        if not running.exists():
            return False
        stop.touch()
        return True

    def release(self, key: str, flag: StopFlag) -> None:
        """The job of ``flag`` ended: its flag is set, and its files go (unless a newer job of ``key`` holds them)."""
        flag.set()
        try:
            if flag.running_file.read_text() == flag.token:
                flag.running_file.unlink(missing_ok=True)
                flag.stop_file.unlink(missing_ok=True)
        except OSError:  # a newer job's release came first
            pass


def run_cancellable(cancels: CancelFlags, key: str, work: Callable[[Callable[[Any], None], Callable[[], bool]], T],
                    out_of_time: Callable[[], bool] | None = None) -> Generator[Any, None, T]:
    """Run ``work(on_step, should_stop)`` in a worker thread under the stop flag of ``key`` (and ``out_of_time``,
    when given): yields its newest reports while it runs and returns its result (``result = yield from
    run_cancellable(...)``). The flag is released however the caller leaves, and the worker is given a minute to
    finish its step."""
    flag = cancels.arm(key)

    def should_stop() -> bool:
        return flag.is_set() or (out_of_time is not None and out_of_time())

    job = BackgroundJob(lambda on_step: work(on_step, should_stop))
    try:
        yield from job.reports()
        return job.result()
    finally:
        cancels.release(key, flag)
        job.wait(60)
