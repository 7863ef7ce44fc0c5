"""One loaded model per (model id, device) per process, shared by every visitor of the app.

Models load lazily, on first use, and only once even when several requests ask at the same time (a lock per
key; loading one model does not block requests for another). Failed loads are not cached: the next request tries
again (the Hub may be back). The least recently used model is dropped beyond ``max_models``.
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
        self._keep(key, engine)
        return key[0]

    def _keep(self, key: tuple[str, str], engine: EditGANModel) -> None:
        """``engine`` as the most recently used model of ``key``; the least recently used go beyond the bound."""
        with self._lock:
            self._engines[key] = engine
            self._engines.move_to_end(key)
            while len(self._engines) > self._max_models:
                dropped, _ = self._engines.popitem(last=False)
                log.info("dropped model %s on %s (least recently used)", *dropped)

    def loaded(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._engines)


ENGINES = EngineRegistry()
"""The process's registry: the app's callbacks all use it, so a model lives once per process."""
