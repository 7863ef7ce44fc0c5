"""NVIDIA network pickles read as data: none of the file's code runs. The reading half of
:mod:`editgan.modelio.convert.nvidia`.

A network pickle from NVIDIA's stylegan2-ada-pytorch (``ffhq.pkl``, ``network-snapshot-*.pkl``) is a plain
``pickle.dump`` of a dict (``G``, ``D``, ``G_ema``, ``augment_pipe``, ``training_set_kwargs``). Every network in it
is a "persistent" object: ``pickle.load`` would call ``torch_utils.persistence._reconstruct_persistent_obj(meta)``,
which executes ``meta["module_src"]`` (the source code of the module that defined the class, carried in the file)
to rebuild it. A pickle is a program; loading one from the internet with ``pickle.load`` runs whatever it says.

:class:`SafeUnpickler` resolves a short list of globals, each to a function of ours that only builds data:
tensors (``torch._utils._rebuild_tensor_v2``, ``_rebuild_parameter``; the storage bytes, themselves a small
``torch.save`` archive, are read with ``torch.load(weights_only=True)``), numpy scalars and arrays, ``OrderedDict``,
``EasyDict`` (as a dict), plain ``torch.nn`` modules (as records). The persistence call becomes a
:class:`NetworkRecord`: the class name and the object's saved ``__dict__``; ``module_src`` is kept as a string, to
recognise StyleGAN-XL by, and never run. Any other global (``os.system``, ``builtins.eval``, ``subprocess.*``, …)
is refused by name before anything is called.
"""
from __future__ import annotations

import _compat_pickle
import collections
import functools
import io
import pickle
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable

import numpy as np
import torch

from editgan.errors import NvidiaPickleError


class _Refused(Exception):
    """Raised while unpickling (where the file name is not known); becomes an :class:`NvidiaPickleError`."""


# -- what the pickle's objects become -----------------------------------------------------------------------------
@dataclass(eq=False)
class NetworkRecord:
    """A network object of the pickle as data: its class name and saved ``__dict__`` (``_parameters``,
    ``_buffers``, ``_modules``, ``_init_kwargs``, plain attributes). ``module_src`` is kept as text only."""
    class_name: str
    state: dict
    module_src: str = field(default="", repr=False)

    def child(self, name: str) -> NetworkRecord | TorchModuleRecord | None:
        modules = self.state.get("_modules")
        return modules.get(name) if isinstance(modules, dict) else None

    def children(self) -> dict[str, Any]:
        modules = self.state.get("_modules")
        return dict(modules) if isinstance(modules, dict) else {}

    def attr(self, name: str, default: Any = None) -> Any:
        return self.state.get(name, default)


class _Frozen(type):
    """Metaclass of the stand-in classes a pickle may name: a pickle's BUILD could otherwise set attributes on the
    class itself (``(None, {...})`` slot state), changing it for the whole process."""

    def __setattr__(cls, name: str, value: Any) -> None:
        raise _Refused(f"refused: the pickle tries to change the class {cls.__name__}")


class _PickledObject(metaclass=_Frozen):
    """Base of the stand-ins that pickle's NEWOBJ / BUILD may create: they store what they are given, nothing else."""
    qualified_name = "?"

    def __init__(self) -> None:
        self.state: dict = {}

    def __setstate__(self, state: Any) -> None:
        self.state = state if isinstance(state, dict) else {"state": state}

    def __repr__(self) -> str:
        return f"<{self.qualified_name} (as data)>"


class TorchModuleRecord(_PickledObject):
    """A plain ``torch.nn`` module found inside a network (e.g. StyleGAN-XL's embedding), as data."""

    @property
    def class_name(self) -> str:
        return self.qualified_name

    def child(self, name: str) -> Any:
        return (self.state.get("_modules") or {}).get(name)

    def children(self) -> dict[str, Any]:
        return dict(self.state.get("_modules") or {})

    def attr(self, name: str, default: Any = None) -> Any:
        return self.state.get(name, default)


class TensorFlowNetwork(_PickledObject):
    """``dnnlib.tflib.network.Network`` of the TensorFlow releases (StyleGAN, StyleGAN2): recognised to be refused."""
    qualified_name = "dnnlib.tflib.network.Network"


class EasyDict(dict, metaclass=_Frozen):
    """``dnnlib.util.EasyDict`` (a dict with attribute access in NVIDIA's code): a plain dict here."""


@functools.cache
def _torch_module_class(module: str, name: str) -> type:
    return _Frozen(name, (TorchModuleRecord,), {"qualified_name": f"{module}.{name}"})


class _Builder:
    """One of our data-building functions as the pickle sees it: callable, with no attribute or state a pickle's
    BUILD could change (a plain function's ``__defaults__`` could be)."""
    __slots__ = ("_func",)

    def __init__(self, func: Callable[..., Any]) -> None:
        object.__setattr__(self, "_func", func)

    def __setattr__(self, name: str, value: Any) -> None:
        raise _Refused("refused: the pickle tries to change a function")

    def __call__(self, *args: Any) -> Any:
        return self._func(*args)


# -- the safe replacements of the globals a network pickle needs ----------------------------------------------------
def _reconstruct_persistent_obj(meta: Any) -> NetworkRecord:
    """Stands in for ``torch_utils.persistence._reconstruct_persistent_obj``: the meta dict becomes a record."""
    if not isinstance(meta, dict) or not isinstance(meta.get("class_name"), str) or \
            not isinstance(meta.get("state"), dict):
        raise _Refused("a persistent object without the expected meta dict (class_name, state)")
    if meta.get("type", "class") != "class":
        raise _Refused(f"a persistent object of type {meta.get('type')!r} (only 'class' is known)")
    source = meta.get("module_src")
    return NetworkRecord(meta["class_name"], dict(meta["state"]), source if isinstance(source, str) else "")


def _load_storage(data: Any) -> torch.TypedStorage:
    """``torch.storage._load_from_bytes``: the bytes are a ``torch.save`` archive of one storage. torch's own
    function loads them with ``weights_only=False``; we use the weights-only unpickler."""
    if not isinstance(data, (bytes, bytearray)):
        raise _Refused(f"a tensor storage given as {type(data).__name__}, not bytes")
    storage = torch.load(io.BytesIO(bytes(data)), map_location="cpu", weights_only=True)
    if not isinstance(storage, torch.TypedStorage):
        raise _Refused(f"a tensor storage archive holding {type(storage).__name__}")
    return storage


def _rebuild_tensor(storage: Any, offset: int, size: tuple, stride: tuple, *_: Any) -> torch.Tensor:
    """``torch._utils._rebuild_tensor(_v2)``: a view of the storage (requires_grad, hooks and metadata dropped)."""
    if not isinstance(storage, torch.TypedStorage):
        raise _Refused(f"a tensor built on {type(storage).__name__}, not a storage")
    return torch.empty((0,), dtype=storage.dtype).set_(storage.untyped(), int(offset), tuple(size), tuple(stride))


def _rebuild_parameter(data: Any, *_: Any) -> torch.Tensor:
    """``torch._utils._rebuild_parameter(_with_state)``: the tensor itself (any Python state is dropped)."""
    if not torch.is_tensor(data):
        raise _Refused(f"a parameter built on {type(data).__name__}, not a tensor")
    return data


def _numpy_scalar(dtype: Any, data: Any = None) -> Any:
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, (bytes, bytearray)):
        raise _Refused("a numpy scalar that is not plain numbers")
    return np.frombuffer(bytes(data), dtype=dtype, count=1)[0]


def _numpy_reconstruct(subtype: Any, shape: Any, _typecode: Any = None) -> np.ndarray:
    """numpy's ``_reconstruct``: an empty array that pickle's BUILD then fills (ndarray.__setstate__)."""
    if subtype is not np.ndarray:
        raise _Refused(f"a numpy array of type {subtype!r}")
    return np.ndarray(tuple(int(s) for s in shape), dtype=np.uint8)


def _numpy_frombuffer(buffer: Any, dtype: Any, shape: Any, order: str = "C") -> np.ndarray:
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise _Refused("a numpy array that is not plain numbers")
    return np.frombuffer(bytes(buffer), dtype=dtype).reshape(tuple(shape), order="F" if order == "F" else "C")


def _latin1_bytes(text: Any, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it for bytes."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise _Refused("_codecs.encode used for something other than bytes")
    return text.encode("latin1")


# Every global a network pickle may name, and what it resolves to here. The types are built-in (immutable) or
# ours (frozen); the functions are ours, wrapped so that nothing about them can be changed.
_ALLOWED: dict[tuple[str, str], Any] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _Builder(_reconstruct_persistent_obj),
    ("torch._utils", "_rebuild_tensor_v2"): _Builder(_rebuild_tensor),
    ("torch._utils", "_rebuild_tensor"): _Builder(_rebuild_tensor),
    ("torch._utils", "_rebuild_parameter"): _Builder(_rebuild_parameter),
    ("torch._utils", "_rebuild_parameter_with_state"): _Builder(_rebuild_parameter),
    ("torch.storage", "_load_from_bytes"): _Builder(_load_storage),
    ("torch", "Size"): torch.Size,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "bytearray"): bytearray,
    ("builtins", "complex"): complex,
    ("_codecs", "encode"): _Builder(_latin1_bytes),
    ("numpy", "dtype"): np.dtype,
    ("numpy", "ndarray"): np.ndarray,
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("dnnlib", "EasyDict"): EasyDict,
    ("dnnlib.tflib.network", "Network"): TensorFlowNetwork,
}
for _core in ("numpy.core", "numpy._core"):  # numpy < 2 and ≥ 2 name the same functions differently
    _ALLOWED[(f"{_core}.multiarray", "scalar")] = _Builder(_numpy_scalar)
    _ALLOWED[(f"{_core}.multiarray", "_reconstruct")] = _Builder(_numpy_reconstruct)
    _ALLOWED[(f"{_core}.numeric", "_frombuffer")] = _Builder(_numpy_frombuffer)


class SafeUnpickler(pickle.Unpickler):
    """Unpickles an NVIDIA network pickle as data: only the globals of :data:`_ALLOWED` (our own data-building
    functions) and plain ``torch.nn`` module records; everything else is refused before it is called."""

    def find_class(self, module: str, name: str) -> Any:
        # protocols < 3 name Python 2's modules (``__builtin__.set``); translate as pickle's own find_class does
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        found = _ALLOWED.get((module, name))
        if found is not None:
            return found
        if module.startswith("torch.nn.modules.") and name.isidentifier():
            return _torch_module_class(module, name)
        raise _Refused(f"refused: the pickle calls {module}.{name}, which has no place in a network pickle "
                       f"(nothing in the file was run)")

    def persistent_load(self, pid: Any) -> Any:
        raise _Refused("refused: the pickle uses persistent ids (a torch.save archive?), which network pickles "
                       "do not")


def read_pickle(path: str | Path) -> Any:
    """Unpickle ``path`` with :class:`SafeUnpickler`; every failure is one :class:`NvidiaPickleError` line."""
    path = Path(path)
    if not path.is_file():
        raise NvidiaPickleError(f"{path}: no such file")
    with open(path, "rb") as f:
        head = f.read(2)
        f.seek(0)
        if head.startswith(b"PK"):
            raise NvidiaPickleError(f"{path}: a zip archive (torch.save's format), not an NVIDIA network pickle; a "
                                    f"rosinality checkpoint converts with `convert rosinality`")
        if len(head) < 2 or head[0] != 0x80:
            raise NvidiaPickleError(f"{path}: not a network pickle (no pickle header; corrupt or truncated?)")
        return _unpickle(f, path)


def _unpickle(f: BinaryIO, path: Path) -> Any:
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*TypedStorage is deprecated.*")
            return SafeUnpickler(f).load()
    except _Refused as e:
        raise NvidiaPickleError(f"{path}: {e}") from None
    except MemoryError:
        raise NvidiaPickleError(f"{path}: not a readable network pickle (corrupt? it asks for more memory than "
                                f"there is)") from None
    except Exception as e:  # a corrupt pickle fails in any of pickle's, numpy's or torch's ways
        detail = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
        raise NvidiaPickleError(f"{path}: not a readable network pickle (truncated or corrupt?): "
                                f"{type(e).__name__}{': ' + detail if detail else ''}") from None
