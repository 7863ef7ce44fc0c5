"""The one bounded cache of the engine and the app (band taps, margin labels, the studio's renderings)."""
from __future__ import annotations

import threading

from editgan.lru import LRUCache


def test_the_least_recently_used_goes_first_by_count():
    cache: LRUCache[str, int] = LRUCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now more recent than b
    cache.put("c", 3)
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3 and len(cache) == 2


def test_sizes_bound_the_total_and_a_value_too_large_alone_is_not_kept():
    cache: LRUCache[str, bytes] = LRUCache(10, len)
    cache.put("a", b"1234")
    cache.put("b", b"1234")
    cache.put("a", b"12")  # replacing a value counts its new size only
    assert cache.size == 6
    cache.put("c", b"12345")  # 11 > 10: the least recently used (b) goes
    assert cache.get("b") is None and cache.size == 7
    cache.put("huge", b"x" * 11)
    assert cache.get("huge") is None and cache.size == 7 and cache.get("a") == b"12"
    cache.put("a", b"x" * 11)  # a key given a value too large is not left with its old one
    assert cache.get("a") is None and cache.size == 5
    cache.clear()
    assert len(cache) == 0 and cache.size == 0


def test_get_or_make_makes_once_per_key_while_kept():
    cache: LRUCache[int, list] = LRUCache(3)
    made: list[int] = []

    def make(key: int) -> list:
        made.append(key)
        return [key]

    first = cache.get_or_make(1, lambda: make(1))
    assert cache.get_or_make(1, lambda: make(1)) is first and made == [1]
    for key in (2, 3, 4):
        cache.get_or_make(key, lambda key=key: make(key))
    cache.get_or_make(1, lambda: make(1))  # dropped by 4: made again
    assert made == [1, 2, 3, 4, 1]


def test_many_threads_keep_the_bound():
    cache: LRUCache[int, int] = LRUCache(50)

    def worker(offset: int) -> None:
        for i in range(2000):
            cache.put((offset * 7919 + i) % 300, i)
            cache.get(i % 300)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(cache) == 50 and cache.size == 50


def test_on_drop_hears_of_every_value_let_go_and_discard_forgets_quietly():
    dropped: list[str] = []
    cache: LRUCache[str, str] = LRUCache(6, len, on_drop=dropped.append)
    cache.put("a", "aa")
    cache.put("b", "bb")
    cache.put("a", "AA")  # replaced
    cache.put("c", "ccc")  # b goes for room
    cache.put("d", "ddddddd")  # too large: refused
    assert dropped == ["aa", "bb", "ddddddd"] and cache.size == 5
    cache.discard("a", "not the kept value")
    assert cache.get("a") == "AA"
    cache.discard("a", "AA")
    cache.discard("c")
    cache.discard("missing")
    assert len(cache) == 0 and cache.size == 0 and dropped == ["aa", "bb", "ddddddd"]
