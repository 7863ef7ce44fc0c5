"""Files the studio writes for visitors (downloads, saved vectors, API results, taught models), bounded in number,
age and bytes.

Everything lives under one folder per process. A visitor's session owns one sub-folder that holds only its latest
file of each kind, and goes when the session expires; each API call gets a folder of its own. Folders older than
``max_age_s`` are swept when a new one is made, at most every ``sweep_every_s`` and whenever a session ended (the
sweep reads every file's size and date). When the files together pass ``max_bytes``, the oldest API results go
first (Gradio has served its own copy of them by then); if that is not enough, new folders are refused with a
sentence until sessions end or age out. What is written between two sweeps is counted at the next one.
(Gradio keeps its own copies of the files it serves; ``delete_cache`` in :func:`editgan.app.demo.build_demo`
sweeps those.)
"""
from __future__ import annotations

import logging
import math
import os
import secrets
import shutil
import stat
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from editgan.errors import ScratchFullError

log = logging.getLogger(__name__)

DEFAULT_GB = 10.0
"""The scratch space's byte budget unless ``$EDITGAN_SCRATCH_GB`` says otherwise. A taught 512-px model and its zip
take about 250 MB of a visitor's session."""
REQUEST_PREFIX = "api"
"""Owners of single API calls' results are named ``api<token>``: the first to go when space runs short."""
RESULT_GRACE_S = 60.0
"""An API result younger than this is never evicted: its call may not have been answered yet."""


def budget_from_environment() -> int:
    """``$EDITGAN_SCRATCH_GB`` in bytes (:data:`DEFAULT_GB` when unset); the operator hears of a bad value."""
    value = os.environ.get("EDITGAN_SCRATCH_GB", "").strip()
    try:
        gigabytes = float(value) if value else DEFAULT_GB
    except ValueError:
        gigabytes = math.nan
    if not (math.isfinite(gigabytes) and gigabytes > 0):
        raise ValueError(f"EDITGAN_SCRATCH_GB must be a number of gigabytes above 0, got {value!r}")
    return int(gigabytes * 2**30)


@dataclass(frozen=True)
class _Owner:
    path: Path
    newest: float
    bytes: int


class ScratchSpace:
    def __init__(self, root: Path | None = None, max_age_s: float = 3600.0, max_bytes: int | None = None,
                 sweep_every_s: float = 60.0):
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="editgan-studio-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_age_s = max_age_s
        self.max_bytes = budget_from_environment() if max_bytes is None else max_bytes
        self.sweep_every_s = sweep_every_s
        self._lock = threading.Lock()
        self._swept_at = -math.inf
        self._bytes = 0
        """The bytes under the root at the last sweep."""

    @staticmethod
    def new_owner() -> str:
        """A name for a session's folder that nobody can guess."""
        return secrets.token_hex(12)

    def folder(self, owner: str, kind: str) -> Path:
        """A fresh, empty ``<owner>/<kind>`` folder; the owner's previous one of that kind is removed. Raises
        ScratchFullError when the space is over its budget even after the oldest API results went."""
        if not owner.isalnum():
            raise ValueError("a scratch owner is a random token")
        self.check_room()
        folder = self.root / owner / kind
        with self._lock:
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
        return folder

    def check_room(self) -> None:
        """ScratchFullError when the space is over its budget (after a sweep, when one is due): asked before work
        whose result will need a folder (a training run), so that the work is not thrown away at its end."""
        if time.monotonic() - self._swept_at >= self.sweep_every_s:
            self.sweep()
        if self._bytes > self.max_bytes:
            raise ScratchFullError(f"the studio's space for visitors' files is full ({self.max_bytes / 2**20:,.0f} "
                                   f"MB); try again in a few minutes, when older sessions' files have gone")

    def holds(self, path: str | Path) -> bool:
        """Whether ``path`` is inside the scratch space (a taught model's folder, say)."""
        return Path(path).resolve().is_relative_to(self.root.resolve())

    def in_use(self, path: str | Path) -> None:
        """A folder of the scratch space (a taught model the Studio serves) is in use now: its date moves, so that
        the sweep, which removes what was not written for ``max_age_s``, keeps it while it is used."""
        try:
            os.utime(path)
        except OSError:  # gone already: its user hears of it when the model is loaded again
            pass

    def discard(self, folder: str | Path) -> None:
        """Remove one folder of the scratch space (nothing outside it)."""
        if self.holds(folder) and Path(folder).resolve() != self.root.resolve():
            shutil.rmtree(folder, ignore_errors=True)

    def request_folder(self) -> Path:
        """A folder for one API call's results (swept after ``max_age_s``, or sooner when space runs short)."""
        return self.folder(REQUEST_PREFIX + self.new_owner(), "result")

    def remove(self, owner: str) -> None:
        """Everything of one owner (a session that ended)."""
        if owner and owner.isalnum():
            shutil.rmtree(self.root / owner, ignore_errors=True)
            self._swept_at = -math.inf  # the next folder counts the bytes anew

    def sweep(self) -> int:
        """Remove owners' folders not written for ``max_age_s``, then, while the rest is over ``max_bytes``, the
        oldest API results; how many went."""
        with self._lock:
            now, wall, removed = time.monotonic(), time.time(), 0
            owners = []
            for owner in self._owners():
                if wall - owner.newest > self.max_age_s:
                    shutil.rmtree(owner.path, ignore_errors=True)
                    removed += 1
                else:
                    owners.append(owner)
            total = sum(owner.bytes for owner in owners)
            results = sorted((o for o in owners if o.path.name.startswith(REQUEST_PREFIX)), key=lambda o: o.newest)
            for owner in results:
                if total <= self.max_bytes or wall - owner.newest < RESULT_GRACE_S:
                    break
                shutil.rmtree(owner.path, ignore_errors=True)
                total -= owner.bytes
                removed += 1
            if total > self.max_bytes:
                log.warning("the scratch space holds %.1f GB, over its %.1f GB budget: new files are refused until "
                            "sessions end", total / 2**30, self.max_bytes / 2**30)
            self._bytes, self._swept_at = total, now
            return removed

    def _owners(self) -> list[_Owner]:
        owners = []
        for path in list(self.root.iterdir()) if self.root.is_dir() else []:
            try:
                stats = [p.stat() for p in path.rglob("*")]
                newest = max((s.st_mtime for s in stats), default=path.stat().st_mtime)
            except OSError:  # removed meanwhile
                continue
            owners.append(_Owner(path, newest, sum(s.st_size for s in stats if stat.S_ISREG(s.st_mode))))
        return owners

    def size(self) -> int:
        """Bytes under the root (for tests and the operator)."""
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())
