"""What every converter of foreign checkpoints shares: reading ``.pt``/``.pth`` files as data, checking their keys,
and recording where each file came from.

Foreign ``.pt``/``.pth`` files are read with ``torch.load(weights_only=True)`` (no code from the file runs) and every
key is mapped explicitly; a file whose keys do not fit raises :class:`ConversionError` naming the file and the
missing or unexpected keys. Converters write through :func:`editgan.modelio.checkpoint.write_new_model`, which
loads the folder back before it is moved into place, so a folder that converts is a folder that loads.
"""
from __future__ import annotations

import argparse
import hashlib
import logging
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from editgan.errors import ConversionError
from editgan.modelio.checkpoint import check_output_folder, few, load_strict, state_mismatch

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
StateDict = dict[str, torch.Tensor]


def read_checkpoint(path: str | Path) -> Any:
    """``torch.load(path, weights_only=True, map_location="cpu")``.

    ``argparse.Namespace`` is allowed as well: rosinality's training checkpoints store their command line under
    ``"args"``, and a namespace is plain data. Anything else that is not tensors and containers is refused.
    """
    import pickle

    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"{path}: no such file")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as e:
        detail = str(e).split("WeightsUnpickler error:")[-1].strip()
        reason = detail.splitlines()[0] if detail else type(e).__name__
        if "global" not in reason.lower():
            raise ConversionError(f"{path}: not a readable PyTorch checkpoint (corrupt or truncated?): {reason}") from e
        raise ConversionError(f"{path}: holds Python objects other than tensors, which weights-only loading refuses "
                              f"({reason}). Re-save just the state dict from an environment you trust, e.g. "
                              f"torch.save(ckpt['g_ema'], 'g_ema.pt').") from e
    except (RuntimeError, OSError, EOFError, ValueError) as e:
        raise ConversionError(f"{path}: not a readable PyTorch checkpoint (corrupt or truncated?): "
                              f"{type(e).__name__}: {e}") from e


def tensor_dict(obj: Any, path: Path, what: str) -> StateDict:
    if not isinstance(obj, Mapping) or not obj:
        raise ConversionError(f"{path}: expected a {what} state dict, found {type(obj).__name__}")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not torch.is_tensor(v)]
    if bad:
        raise ConversionError(f"{path}: the {what} state dict holds non-tensor entries {few(map(str, bad))}")
    return dict(obj)


def strip_prefix(state: StateDict, prefix: str = "module.") -> StateDict:
    """Remove DataParallel's ``module.`` from every key (when all keys carry it)."""
    if state and all(k.startswith(prefix) for k in state):
        return {k[len(prefix):]: v for k, v in state.items()}
    return state


def check_keys(path: Path, what: str, expected: Mapping[str, tuple[int, ...]], state: Mapping[str, torch.Tensor]
               ) -> None:
    """Raise if ``state`` has other keys than ``expected`` or a tensor of another shape."""
    problem = state_mismatch(expected, state)
    if problem:
        raise ConversionError(f"{path}: the {what} does not fit: {problem}")


def load_into(module: torch.nn.Module, state: StateDict, path: Path, what: str) -> torch.nn.Module:
    return load_strict(module, state, f"{path}: the {what} does not fit", ConversionError)


def file_record(path: Path, role: str) -> dict:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"role": role, "file": path.name, "bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def reporter(progress: Progress | None) -> Progress:
    def say(message: str) -> None:
        log.info(message)
        if progress is not None:
            progress(message)
    return say


def begin_conversion(checkpoint: str | Path, out: str | Path, overwrite: bool, truncation: float,
                     progress: Progress | None, error: type[ConversionError] = ConversionError
                     ) -> tuple[Progress, Path, Path]:
    """What every generator conversion checks first: the output folder may be written, the truncation is in
    [0, 1]. Returns the progress reporter and the two paths."""
    checkpoint, out = Path(checkpoint), Path(out)
    check_output_folder(out, overwrite, error)
    if not 0.0 <= truncation <= 1.0:
        raise error(f"truncation must be between 0 and 1, got {truncation}")
    return reporter(progress), checkpoint, out
