"""Fair turns on one device for many threads (the app's visitors).

A model runs one piece of work at a time: whoever holds the turn runs. Turns are served first come, first served
(tickets), and a long optimization hands its turn over between steps to anyone waiting, so a quick action (a
sample, a slider) waits about one optimization step, not a whole edit. Holding is reentrant within a thread.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator


class DeviceTurns:
    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._next_ticket = 0
        self._serving = 0
        self._owner: int | None = None

    def _wait_for_turn(self) -> None:
        with self._changed:
            ticket = self._next_ticket
            self._next_ticket += 1
            while self._serving != ticket:
                self._changed.wait()
            self._owner = threading.get_ident()

    def _pass_turn(self) -> None:
        with self._changed:
            self._owner = None
            self._serving += 1
            self._changed.notify_all()

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Run the block in this thread's turn (at once when the thread holds it already)."""
        if self._owner == threading.get_ident():
            yield
            return
        self._wait_for_turn()
        try:
            yield
        finally:
            self._pass_turn()

    def others_waiting(self) -> bool:
        with self._changed:
            return self._next_ticket > self._serving + 1

    def step_aside(self) -> None:
        """Between two steps of a long job: if others wait, let each of them have its turn, then continue.
        Does nothing in a thread that does not hold the turn."""
        if self._owner != threading.get_ident() or not self.others_waiting():
            return
        self._pass_turn()
        self._wait_for_turn()
