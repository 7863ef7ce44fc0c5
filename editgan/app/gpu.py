"""Hugging Face ZeroGPU: on a Space whose hardware is ZeroGPU, a GPU is attached only while a function decorated
with ``@spaces.GPU`` runs. The studio wraps every callback that runs the model that way when the ``spaces`` package
is installed (it is on Spaces), and leaves them as they are everywhere else."""
from __future__ import annotations

import importlib
from typing import Callable


def gpu_runner() -> Callable[[Callable], Callable]:
    """``spaces.GPU`` when the ``spaces`` package is importable, else the identity."""
    try:
        spaces = importlib.import_module("spaces")
    except ImportError:
        return lambda fn: fn
    return spaces.GPU
