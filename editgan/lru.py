"""A thread-safe cache bounded by the total size of what it holds, the least recently used dropped first.

The engine and the app keep several such caches (the banded label map's pixel taps, the label rows outside a
picture box, the studio's renderings); this is their one implementation. A leaf: it imports nothing of editgan.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Generic, Hashable, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRUCache(Generic[K, V]):
    """At most ``max_size`` in all, each value counting ``size_of(value)`` (1 by default: a count of items).

    A value larger than ``max_size`` alone is not kept. Otherwise the newest value is always kept, the least
    recently used (put or got) ones going until the rest fits. ``on_drop`` is called (outside the lock) with every
    value the cache lets go of: dropped for room, replaced under its key, or refused as too large."""

    def __init__(self, max_size: int, size_of: Callable[[V], int] = lambda value: 1,
                 on_drop: Callable[[V], None] | None = None):
        self.max_size = max_size
        self._size_of = size_of
        self._on_drop = on_drop
        self._items: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                return None
            self._items.move_to_end(key)
            return found[0]

    def put(self, key: K, value: V) -> None:
        size = self._size_of(value)
        let_go: list[V] = []
        with self._lock:
            if key in self._items:
                old, old_size = self._items.pop(key)
                self._size -= old_size
                if old is not value:
                    let_go.append(old)
            if size > self.max_size:
                let_go.append(value)
            else:
                self._items[key] = (value, size)
                self._size += size
                while self._size > self.max_size:
                    _, (dropped, dropped_size) = self._items.popitem(last=False)
                    self._size -= dropped_size
                    let_go.append(dropped)
        if self._on_drop is not None:
            for dropped in let_go:
                self._on_drop(dropped)

    def discard(self, key: K, value: V | None = None) -> None:
        """Forget ``key`` (only while it holds ``value``, when given); ``on_drop`` is not called: the caller is done
        with the value."""
        with self._lock:
            found = self._items.get(key)
            if found is not None and (value is None or found[0] is value):
                del self._items[key]
                self._size -= found[1]

    def get_or_make(self, key: K, make: Callable[[], V]) -> V:
        """The kept value of ``key``, else ``make()``, kept. ``make`` runs outside the lock: two threads may make
        the value of one key at once (both equal), but a slow one never blocks the cache's other keys."""
        found = self.get(key)
        if found is not None:
            return found
        value = make()
        self.put(key, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._size = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    @property
    def size(self) -> int:
        """The total size of what is kept now."""
        with self._lock:
            return self._size
