"""On ZeroGPU: the events of one tab that change its state take turns, each on the newest state.

Elsewhere every event of a tab gets the same session object, so an edit still running sees a sample that replaced
its picture (and drops its result). On ZeroGPU each model call runs in a worker process on a pickled copy of the
session, and its answer brings that copy back: a sample, an undo or an annotation made while an edit or a training
ran would be undone by the job's answer. So there, :class:`TabTurns` wraps every event whose inputs include a
``gr.State``: each starts from the newest state its tab's events left (not the one Gradio read when the event was
queued), and those that change a state (it is also an output) run one at a time per tab. An event whose tab is busy
waits at most :data:`TURN_WAIT_S` and is then refused with a sentence (wait, or Cancel): waiting longer would hold
one of its queue's few places while other visitors wait behind it. Cancel takes no state and never waits.
"""
from __future__ import annotations

import contextlib
import functools
import inspect
import threading
import weakref
from typing import Any, Callable, Iterator

import gradio as gr


TURN_WAIT_S = 3.0
"""How long an event waits for its tab's previous one (a sample after a sample); past it, it is refused."""


class _Turn:
    """One tab's lock (an object, so that the registry can forget it once nobody holds or waits for it)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()


class TabTurns:
    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._turns: weakref.WeakValueDictionary[str, _Turn] = weakref.WeakValueDictionary()
        self._latest: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()
        """Owner → the newest state object an event left (Gradio holds it while the tab lives)."""

    def wrap_all(self, demo: gr.Blocks) -> None:
        """Every event of ``demo`` that takes a state starts from the newest; those that also answer with it (they
        change it) take their tab's turn."""
        for block_fn in demo.fns.values():
            positions = [i for i, block in enumerate(block_fn.inputs) if isinstance(block, gr.State)]
            outputs = {block._id for block in block_fn.outputs}
            changed = [i for i in positions if block_fn.inputs[i]._id in outputs]
            if block_fn.fn is not None and positions:
                block_fn.fn = self.wrap(block_fn.fn, positions, changed)

    def wrap(self, fn: Callable, positions: list[int], changed: list[int]) -> Callable:
        """``fn`` given the newest of the states that are its arguments number ``positions``, in the turn of the
        tab whose states number ``changed`` it changes."""
        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def answers(*args: Any, **kwargs: Any):
                with self._turn(args, positions, changed) as newest:
                    for answer in fn(*newest, **kwargs):
                        self._note(answer)
                        yield answer
            return answers

        @functools.wraps(fn)
        def answer(*args: Any, **kwargs: Any):
            with self._turn(args, positions, changed) as newest:
                result = fn(*newest, **kwargs)
                self._note(result)
                return result
        return answer

    @contextlib.contextmanager
    def _turn(self, args: tuple, positions: list[int], changed: list[int]) -> Iterator[tuple]:
        states = {i: args[i] for i in positions if i < len(args) and _owner(args[i])}
        owners = sorted({_owner(state) for i, state in states.items() if i in changed})
        with self._guard:
            turns = [self._turns.setdefault(owner, _Turn()) for owner in owners]
        with contextlib.ExitStack() as held:
            for turn in turns:  # in the owners' order: two events of a tab never wait for each other crosswise
                if not turn.lock.acquire(timeout=TURN_WAIT_S):
                    raise gr.Error("This tab's previous action (an edit, a refinement, a training?) is still "
                                   "running: wait for it to finish, or press Cancel, then try again.",
                                   print_exception=False)
                held.callback(turn.lock.release)
            newest = list(args)
            with self._guard:
                for i, state in states.items():
                    newest[i] = self._latest.get(_owner(state), state)
            try:
                yield tuple(newest)
            finally:
                with self._guard:  # a state changed in place (an event answered in this process) is the newest
                    for i in states:
                        self._latest.setdefault(_owner(newest[i]), newest[i])

    def _note(self, answer: Any) -> None:
        """A state in ``answer`` is its tab's newest."""
        values = answer.values() if isinstance(answer, dict) else answer if isinstance(answer, (list, tuple)) else ()
        for value in values:
            owner = _owner(value)
            if owner:
                with self._guard:
                    self._latest[owner] = value


def _owner(state: Any) -> str:
    """The tab a state belongs to: its scratch owner (a Session's or a TeachWork's), or '' for none."""
    owner = getattr(state, "files_owner", None)
    return owner if isinstance(owner, str) else ""
