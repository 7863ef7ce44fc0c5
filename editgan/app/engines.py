"""One loaded model per (model id, device) per process, shared by every visitor of the app.

Models load lazily, on first use, and only once even when several requests ask at the same time (a lock per
key; loading one model does not block requests for another). Failed loads are not cached: the next request tries
again (the Hub may be back). Beyond ``max_models`` a model goes: the least recently used of those made in this
process (taught ones, which visitors of a public studio can make as they please) first, so that they do not push
out the models the operator serves; then the least recently used of all.
"""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Callable

from editgan.engine.model import EditGANModel
from editgan.modelio.hub import DEFAULT_MODEL

log = logging.getLogger(__name__)

Loader = Callable[..., EditGANModel]


def model_key(model_id: str | Path | None) -> str:
    """The canonical name of a model source: the default for empty, an absolute path for a local folder."""
    text = str(model_id or "").strip() or DEFAULT_MODEL
    path = Path(text).expanduser()
    if "/" in text and path.is_dir() or text.startswith((".", "~")):
        return str(path.resolve())
    return text


class EngineRegistry:
    def __init__(self, loader: Loader | None = None, max_models: int = 3):
        self._loader = loader or EditGANModel.load
        self._max_models = max_models
        self._engines: OrderedDict[tuple[str, str], EditGANModel] = OrderedDict()
        self._key_locks: dict[tuple[str, str], threading.Lock] = {}
        self._made_here: set[tuple[str, str]] = set()
        """Keys of models given by :meth:`put`: dropped before loaded ones."""
        self._lock = threading.Lock()

    def get(self, model_id: str | Path | None, device: str | None = None,
            progress: Callable[[str], None] | None = None) -> EditGANModel:
        """The loaded model; loads it first if needed (raises ModelLoadError with a message for people)."""
        key = (model_key(model_id), device or "auto")
        with self._lock:
            if key in self._engines:
                self._engines.move_to_end(key)
                return self._engines[key]
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._engines:
                    return self._engines[key]
            log.info("loading model %s on %s", key[0], key[1])
            engine = self._loader(key[0], device=device, progress=progress)
            if hasattr(engine, "perceptual"):
                # fetch LPIPS now, in the background: offline, the Hub's retries take ~20 s, which the first
                # Edit would otherwise wait for
                threading.Thread(target=lambda: engine.perceptual, name="lpips-warm-up", daemon=True).start()
            self._keep(key, engine)
            return engine

    def put(self, model_id: str | Path, engine: EditGANModel, device: str | None = None) -> str:
        """Serve ``engine`` under ``model_id`` (a model made in this process, e.g. a taught one, whose folder
        ``model_id`` names so that it can be loaded again if it is dropped); replaces a model of that key. Returns
        the key."""
        key = (model_key(model_id), device or "auto")
        self._keep(key, engine, made_here=True)
        return key[0]

    def _keep(self, key: tuple[str, str], engine: EditGANModel, made_here: bool = False) -> None:
        """``engine`` as the most recently used model of ``key``; beyond the bound, models go as the module says."""
        with self._lock:
            self._engines[key] = engine
            self._engines.move_to_end(key)
            (self._made_here.add if made_here else self._made_here.discard)(key)
            while len(self._engines) > self._max_models:
                older = list(self._engines)[:-1]  # never the one just kept
                dropped = next((k for k in older if k in self._made_here), older[0])
                del self._engines[dropped]
                kind = "made in this process" if dropped in self._made_here else "loaded"
                self._made_here.discard(dropped)
                log.info("dropped model %s on %s (the least recently used %s)", *dropped, kind)

    def loaded(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._engines)


ENGINES = EngineRegistry()
"""The process's registry: the app's callbacks all use it, so a model lives once per process."""
