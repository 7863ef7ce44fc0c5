"""On ZeroGPU: a tab's events that use its state take turns, each on the newest state.

Elsewhere every event of a tab gets the same session object, so an edit still running sees a sample that replaced
its picture (and drops its result). On ZeroGPU each model call runs in a worker process on a pickled copy of the
session, and its answer brings that copy back: a sample, an undo or an annotation made while an edit or a training
ran would be undone by the job's answer. So there, :class:`TabTurns` wraps every event whose inputs include a
``gr.State``: the events of one tab (its states' owners) run one at a time, and each starts from the state the last
of them left, not from the one Gradio read when the event was queued. A quick action pressed during a long job waits
for it and then applies on top of its result; Cancel takes no state and never waits.
"""
from __future__ import annotations

import contextlib
import functools
import inspect
import threading
import weakref
from typing import Any, Callable, Iterator

import gradio as gr


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
        """Every event of ``demo`` that takes a state runs in its tab's turn."""
        for block_fn in demo.fns.values():
            positions = [i for i, block in enumerate(block_fn.inputs) if isinstance(block, gr.State)]
            if block_fn.fn is not None and positions:
                block_fn.fn = self.wrap(block_fn.fn, positions)

    def wrap(self, fn: Callable, positions: list[int]) -> Callable:
        """``fn`` run in the turn of the tab whose states are its arguments number ``positions``."""
        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def answers(*args: Any, **kwargs: Any):
                with self._turn(args, positions) as newest:
                    for answer in fn(*newest, **kwargs):
                        self._note(answer)
                        yield answer
            return answers

        @functools.wraps(fn)
        def answer(*args: Any, **kwargs: Any):
            with self._turn(args, positions) as newest:
                result = fn(*newest, **kwargs)
                self._note(result)
                return result
        return answer

    @contextlib.contextmanager
    def _turn(self, args: tuple, positions: list[int]) -> Iterator[tuple]:
        states = {i: args[i] for i in positions if i < len(args) and _owner(args[i])}
        owners = sorted({_owner(state) for state in states.values()})
        with self._guard:
            turns = [self._turns.setdefault(owner, _Turn()) for owner in owners]
        with contextlib.ExitStack() as held:
            for turn in turns:  # in the owners' order: two events of a tab never wait for each other crosswise
                held.enter_context(turn.lock)
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
