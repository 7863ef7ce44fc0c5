"""Files the studio writes for visitors (downloads, saved vectors, API results), bounded in number and age.

Everything lives under one folder per process. A visitor's session owns one sub-folder that holds only its latest
download and its latest saved vector, and goes when the session expires; each API call gets a folder of its own.
Folders older than ``max_age_s`` are swept whenever a new one is made. (Gradio keeps its own copies of the files it
serves; ``delete_cache`` in :func:`editgan.app.demo.build_demo` sweeps those.)
"""
from __future__ import annotations

import logging
import secrets
import shutil
import tempfile
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)


class ScratchSpace:
    def __init__(self, root: Path | None = None, max_age_s: float = 3600.0):
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="editgan-studio-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_age_s = max_age_s
        self._lock = threading.Lock()

    @staticmethod
    def new_owner() -> str:
        """A name for a session's folder that nobody can guess."""
        return secrets.token_hex(12)

    def folder(self, owner: str, kind: str) -> Path:
        """A fresh, empty ``<owner>/<kind>`` folder; the owner's previous one of that kind is removed."""
        if not owner.isalnum():
            raise ValueError("a scratch owner is a random token")
        self.sweep()
        folder = self.root / owner / kind
        with self._lock:
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
        return folder

    def request_folder(self) -> Path:
        """A folder for one API call's results (swept after ``max_age_s``)."""
        return self.folder(self.new_owner(), "result")

    def remove(self, owner: str) -> None:
        """Everything of one owner (a session that ended)."""
        if owner and owner.isalnum():
            shutil.rmtree(self.root / owner, ignore_errors=True)

    def sweep(self) -> int:
        """Remove owners' folders not written for ``max_age_s``; how many went."""
        now, removed = time.time(), 0
        for owner in list(self.root.iterdir()) if self.root.is_dir() else []:
            try:
                newest = max((p.stat().st_mtime for p in owner.rglob("*")), default=owner.stat().st_mtime)
            except OSError:
                continue
            if now - newest > self.max_age_s:
                shutil.rmtree(owner, ignore_errors=True)
                removed += 1
        return removed

    def size(self) -> int:
        """Bytes under the root (for tests and the operator)."""
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())
