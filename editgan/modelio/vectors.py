"""Editing vectors: a δw+ learned from one edit, with the classes it touches, stored as safetensors + metadata."""
from __future__ import annotations

import json
import math
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from editgan.errors import VectorError
from editgan.modelio.config import LIMITS

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_SCALE = 100.0
"""The farthest a vector's slider may reach either way (a preset saved in the studio is held to the same)."""
MAX_REFINE_STEPS = 500
MAX_DISPLAY_NAME = 80
"""Characters of a slider's label; a longer display name (from a file) is cut."""


@dataclass
class EditingVector:
    name: str
    delta: np.ndarray
    """(n_latent, style_dim) float32: added to w+ with a scale."""
    classes: list[int] = field(default_factory=list)
    display_name: str = ""
    scale_range: tuple[float, float] = (-2.0, 2.0)
    default_scale: float = 1.0
    refine_steps: int = 0

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise VectorError(f"vector name {self.name!r} must be 1–64 letters, digits, '_', '-' or '.'")
        self.delta = np.asarray(self.delta, dtype=np.float32)
        if self.delta.ndim == 3 and self.delta.shape[0] == 1:  # EditGAN's .npy files are (1, n_latent, dim)
            self.delta = self.delta[0]
        if self.delta.ndim != 2:
            raise VectorError(f"vector {self.name!r} must be (n_latent, style_dim), got {self.delta.shape}")
        if not np.isfinite(self.delta).all():
            raise VectorError(f"vector {self.name!r} holds NaN or infinite values")
        self.classes = list(dict.fromkeys(int(c) for c in self.classes))  # each once, in order
        if len(self.classes) > LIMITS["classes"]:
            raise VectorError(f"vector {self.name!r} names {len(self.classes)} classes; a model has at most "
                              f"{LIMITS['classes']}")
        self.set_slider(self.display_name, self.scale_range, self.default_scale, self.refine_steps)

    def set_slider(self, display_name: str, scale_range, default_scale, refine_steps) -> None:
        """How the vector shows as a slider (from its file's metadata or a model's config.json, either possibly a
        stranger's): a label of at most :data:`MAX_DISPLAY_NAME` characters, a finite range within ±``MAX_SCALE``
        around 0 (the slider's rest), a default scale in it, 0 to ``MAX_REFINE_STEPS`` refinement steps."""
        label = str(display_name or "").strip() or self.name.replace("_", " ").capitalize()
        self.display_name = label[:MAX_DISPLAY_NAME]
        try:
            lo, hi = (float(x) for x in scale_range)
            default, steps = float(default_scale), int(refine_steps)
        except (TypeError, ValueError, OverflowError):
            raise VectorError(f"vector {self.name!r}: its scale range must be two numbers and its default scale and "
                              f"refine steps numbers, got {scale_range!r}, {default_scale!r}, {refine_steps!r}"
                              ) from None
        if not (math.isfinite(lo) and math.isfinite(hi) and -MAX_SCALE <= lo <= 0 <= hi <= MAX_SCALE and lo < hi):
            raise VectorError(f"vector {self.name!r}: its scale range must go from -{MAX_SCALE:g}…0 to "
                              f"0…{MAX_SCALE:g}, got {list(scale_range)!r}")
        if not (math.isfinite(default) and abs(default) <= MAX_SCALE):
            raise VectorError(f"vector {self.name!r}: its default scale must be a number within ±{MAX_SCALE:g}, "
                              f"got {default_scale!r}")
        if not 0 <= steps <= MAX_REFINE_STEPS:
            raise VectorError(f"vector {self.name!r}: its refine steps must be 0 to {MAX_REFINE_STEPS}, "
                              f"got {refine_steps!r}")
        self.scale_range, self.default_scale, self.refine_steps = (lo, hi), default, steps

    def check_scale(self, value: float | None) -> float:
        """A slider value for this vector as a float within its scale range (None is 0); VectorError otherwise."""
        if value is None:
            return 0.0
        try:
            scale = float(value)
        except (TypeError, ValueError, OverflowError):
            raise VectorError(f"the scale of {self.display_name!r} must be a number, got {value!r}") from None
        if not math.isfinite(scale):
            raise VectorError(f"the scale of {self.display_name!r} must be a finite number, got {value}")
        lo, hi = self.scale_range
        if not lo <= scale <= hi:
            raise VectorError(f"the scale of {self.display_name!r} must be within [{lo:g}, {hi:g}], got {scale:g}")
        return scale

    def check_fits(self, n_latent: int, style_dim: int, n_classes: int) -> None:
        if self.delta.shape != (n_latent, style_dim):
            raise VectorError(f"vector {self.name!r} has shape {self.delta.shape}; this model needs "
                              f"({n_latent}, {style_dim})")
        bad = [c for c in self.classes if not 0 <= c < max(n_classes, 1)]
        if bad and n_classes:
            raise VectorError(f"vector {self.name!r} names classes {bad} that this model does not have")

    def metadata(self) -> dict[str, str]:
        return {"name": self.name, "display_name": self.display_name, "classes": json.dumps(self.classes),
                "scale_range": json.dumps(list(self.scale_range)), "default_scale": str(self.default_scale),
                "refine_steps": str(self.refine_steps)}

    def to_bytes(self) -> bytes:
        from safetensors.numpy import save
        return save({"delta": np.ascontiguousarray(self.delta)}, metadata=self.metadata())

    def save(self, path: Path) -> Path:
        """Writes ``path`` (safetensors) whole, in one rename (a failure leaves an existing file as it was), and
        returns it."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{secrets.token_hex(4)}.partial")  # two saves at once: two files
        try:
            partial.write_bytes(self.to_bytes())
            partial.replace(path)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def from_bytes(cls, data: bytes, fallback_name: str = "vector") -> "EditingVector":
        from safetensors.numpy import load
        try:
            tensors = load(data)
            metadata = _read_metadata(data)
        except Exception as e:  # safetensors raises its own error types for every kind of corruption
            raise VectorError(f"not a readable safetensors editing vector: {e}") from e
        if "delta" not in tensors:
            raise VectorError(f"the file holds no 'delta' tensor (found {sorted(tensors)})")
        try:
            return cls(
                name=metadata.get("name") or fallback_name, delta=tensors["delta"],
                classes=json.loads(metadata.get("classes", "[]")),
                display_name=metadata.get("display_name", ""),
                scale_range=json.loads(metadata.get("scale_range", "[-2, 2]")),
                default_scale=metadata.get("default_scale", 1.0),
                refine_steps=metadata.get("refine_steps", 0))
        except (ValueError, TypeError, OverflowError) as e:
            raise VectorError(f"the editing vector's metadata is malformed: {e}") from e

    @classmethod
    def load(cls, path: Path) -> "EditingVector":
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as e:
            raise VectorError(f"cannot read {path}: {e}") from e
        return cls.from_bytes(data, fallback_name=_safe_name(path.stem))


def _read_metadata(data: bytes) -> dict[str, str]:
    header_len = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + header_len])
    return dict(header.get("__metadata__") or {})


def _safe_name(stem: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", stem)[:64].lstrip("_.-")
    return name or "vector"
