"""``spaces.GPU`` as ZeroGPU runs it, for tests: every call in a process forked for it, its arguments and its
results (each yielded value of a generator) pickled across, as the ``spaces`` package does on a ZeroGPU Space
(spaces/zero/wrappers.py: a forked worker, arguments and results through multiprocessing queues). So a callback
that returns what cannot be pickled fails here as it would there, and whatever a call changes in its own memory
(the session it was given, caches, flags) is lost unless it comes back in the results.

A real worker is reused while it is idle; a fresh one per call is the case where nothing of an earlier call's
memory is left."""
from __future__ import annotations

import functools
import inspect
import multiprocessing
import pickle
import traceback

FORK = multiprocessing.get_context("fork")


class ForkingSpaces:
    """The ``spaces`` module's ``GPU`` decorator (``GPU(fn)`` or ``GPU(duration=...)(fn)``), forking per call."""

    def __init__(self):
        self.calls: list[str] = []

    def GPU(self, fn=None, duration=60):  # noqa: N802 — the decorator's name in the spaces package
        if fn is None:
            return functools.partial(self.GPU, duration=duration)
        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def run_generator(*args, **kwargs):
                self.calls.append(fn.__name__)
                yield from _in_child(fn, args, kwargs, generator=True)
            return run_generator

        @functools.wraps(fn)
        def run(*args, **kwargs):
            self.calls.append(fn.__name__)
            (result,) = list(_in_child(fn, args, kwargs, generator=False))
            return result
        return run


def _in_child(fn, args, kwargs, generator: bool):
    payload = pickle.dumps((args, kwargs))  # what cannot cross fails here, in the caller, as with spaces
    receive, send = FORK.Pipe(duplex=False)

    def child() -> None:
        import torch
        torch.set_num_threads(1)  # a fork of a process whose thread pools ran: keep the child to one thread
        try:
            child_args, child_kwargs = pickle.loads(payload)
            result = fn(*child_args, **child_kwargs)
            for value in (result if generator else [result]):
                send.send(("value", pickle.dumps(value)))
            send.send(("done", None))
        except BaseException as e:  # noqa: BLE001 — every failure goes back to the caller
            try:
                send.send(("error", pickle.dumps(e)))
            except Exception:  # the error itself does not pickle (nor, often, the value that raised)
                send.send(("broken", f"{type(e).__name__}: {e}\n{traceback.format_exc()}"))

    process = FORK.Process(target=child, daemon=True)
    process.start()
    send.close()
    try:
        while True:
            try:
                kind, data = receive.recv()
            except EOFError:
                raise RuntimeError("the GPU worker ended without an answer") from None
            if kind == "value":
                yield pickle.loads(data)
            elif kind == "done":
                return
            elif kind == "error":
                raise pickle.loads(data)
            else:
                raise RuntimeError(f"the GPU worker failed: {data}")
    finally:
        process.join(30)
