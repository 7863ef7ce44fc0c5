"""Gradio's cache of the pictures it serves, written whole.

Gradio saves each picture an event returns under a folder named by its content's hash, and writes the file again
(truncated, then filled) each time the same picture is returned, even while a browser is being sent that file: the
response declared the old length and found the file mid-write, and the browser's picture never arrived
("Too much data for declared Content-Length"). The studio returns the same picture often (the Teach tab's picture
with every fill, two visitors drawing the same seed), and the faster its callbacks answer, the likelier the
overlap. Here a picture already cached is left as it is (same hash, same bytes), and a new one is written beside
its place and moved into it at once, so a reader sees a whole file or none.
"""
from __future__ import annotations

import inspect
import logging
import os
import secrets
from pathlib import Path

from gradio import processing_utils

log = logging.getLogger(__name__)

_EXPECTED = ["img", "cache_dir", "name", "format"]


def install_whole_file_cache() -> bool:
    """Replace ``processing_utils.save_pil_to_cache`` once per process (every picture output goes through it);
    False, and Gradio's own left in place, where it is not the function this was written for."""
    current = processing_utils.save_pil_to_cache
    if getattr(current, "editgan_whole_files", False):
        return True
    parameters = list(inspect.signature(current).parameters)
    helpers = all(hasattr(processing_utils, n) for n in ("encode_pil_to_bytes", "hash_bytes"))
    if parameters != _EXPECTED or not helpers:
        log.warning("Gradio's picture cache is not the one expected (%s); leaving it as it is", parameters)
        return False

    def save_pil_to_cache(img, cache_dir: str, name: str = "image", format: str = "webp") -> str:  # noqa: A002
        data = processing_utils.encode_pil_to_bytes(img, format)
        folder = Path(cache_dir) / processing_utils.hash_bytes(data)
        folder.mkdir(exist_ok=True, parents=True)
        target = folder / f"{name}.{format}"
        if not (target.is_file() and target.stat().st_size == len(data)):
            partial = folder / f".{name}.{secrets.token_hex(8)}.partial"
            partial.write_bytes(data)
            os.replace(partial, target)
        return str(target.resolve())

    save_pil_to_cache.editgan_whole_files = True
    processing_utils.save_pil_to_cache = save_pil_to_cache
    return True
