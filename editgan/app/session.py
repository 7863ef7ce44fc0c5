"""One user's studio state, as plain Python: the picture's latent, its edit history and the user's own vectors.

The browser app keeps one :class:`Session` per visitor (in ``gr.State``); it holds small numpy arrays only, never
a network. Every edit is a :class:`Step` of the history, so undo, redo and reset move between steps, and the preset
sliders remember the latent they started from (``Step.base``) and their values (``Step.sliders``).

Methods check their input before they change anything: a rejected action leaves the session as it was.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Iterator, Mapping, Sequence

import numpy as np

from editgan.engine.latents import as_latent
from editgan.errors import SessionError, VectorError
from editgan.modelio.vectors import EditingVector

MAX_HISTORY = 64
"""Steps kept for undo; older ones are dropped (the original picture is kept apart, so reset always works)."""
MAX_SLIDERS = 12
"""Preset sliders plus the session's own vectors; the app has this many slider slots."""



@dataclass(frozen=True)
class Step:
    """One point of the edit history."""
    wplus: np.ndarray
    """The picture's latent, (n_latent, style_dim) float32."""
    base: np.ndarray
    """The latent the preset sliders started from: the picture is ``base + Σ scale·vector`` (before refining)."""
    sliders: tuple[tuple[str, float], ...] = ()
    """The non-zero slider values, (vector name, scale)."""
    action: str = ""
    """What made this step, for people: "sample (seed 3)", "mask edit, 100 steps", "sliders", …"""
    kind: str = "start"
    """start | edit | slide | refine | reset"""
    classes: tuple[int, ...] = ()
    """The classes the edits since the start touched."""

    def slider_values(self) -> dict[str, float]:
        return dict(self.sliders)


class Session:
    """The state of one visitor: which model, the picture's history, the session's own vectors, an uploaded photo."""

    def __init__(self, model_id: str = "", max_history: int = MAX_HISTORY, max_sliders: int = MAX_SLIDERS):
        self.model_id = model_id
        self.max_history = max_history
        self.max_sliders = max_sliders
        self.history: list[Step] = []
        self.index = -1
        self.origin: Step | None = None
        self.vectors: dict[str, EditingVector] = {}
        self.photo: np.ndarray | None = None
        """An uploaded photo (downscaled for cropping), (H, W, 3) uint8, until it is embedded."""
        self.photo_name = ""
        self.slides = 0
        """Slides asked so far: a newer one makes the label map still pending for an older one out of date."""
        self.pending_views: Iterator[dict] | None = None
        """The rest of the latest slide's views (its label map), left to the page's next event."""
        self.files_owner = secrets.token_hex(12)
        """Names this session's folder of downloads in the app's scratch space (removed when the session ends)."""

    def __getstate__(self) -> dict:
        """What a pickled session holds (ZeroGPU pickles it to and from its worker): all but the pending views, a
        generator of this process."""
        return {**self.__dict__, "pending_views": None}

    # -- the picture ---------------------------------------------------------------------------------------------
    @property
    def started(self) -> bool:
        return self.index >= 0

    def require_picture(self) -> None:
        if not self.started:
            raise SessionError("there is no picture yet: draw a sample or embed a photo first")

    @property
    def current(self) -> Step:
        self.require_picture()
        return self.history[self.index]

    def is_current(self, step: Step) -> bool:
        """Whether ``step`` is still the picture shown: a long job started on it may record its result."""
        return self.started and self.history[self.index] is step

    @property
    def original(self) -> Step:
        self.require_picture()
        assert self.origin is not None
        return self.origin

    def start(self, wplus: np.ndarray, action: str) -> Step:
        """A new picture (sampled or embedded): the history starts over; the session's vectors stay."""
        w = _latent(wplus)
        step = Step(w, w, (), action, "start", ())
        self.history, self.index, self.origin = [step], 0, step
        return step

    def restart(self, model_id: str) -> None:
        """Another model for this visitor: the history, the vectors and the photo start over (they belong to the old
        model's latents); the session's files stay its own. A job still running on the old model finds its picture
        gone (:meth:`is_current`), and a slide's label map still to come is given up."""
        self.model_id = model_id
        self.history, self.index, self.origin = [], -1, None
        self.vectors = {}
        self.photo, self.photo_name = None, ""
        self.slides += 1
        self.pending_views = None

    def _push(self, step: Step) -> Step:
        del self.history[self.index + 1:]  # a new step drops the redo steps
        self.history.append(step)
        if len(self.history) > self.max_history:
            del self.history[: len(self.history) - self.max_history]
        self.index = len(self.history) - 1
        return step

    def record_edit(self, wplus: np.ndarray, classes: Sequence[int], action: str) -> Step:
        """A mask edit: the new latent is also the sliders' new starting point (all sliders back to 0)."""
        current = self.current
        w = _latent(wplus, like=current.wplus)
        return self._push(Step(w, w, (), action, "edit", _union(current.classes, classes)))

    def record_sliders(self, wplus: np.ndarray, values: Mapping[str, float], classes: Sequence[int] = (),
                       refined: bool = False, action: str = "") -> Step:
        """The picture after applying the sliders to the current base.

        Consecutive slider moves collapse into one history step (one undo goes back to before the sliders moved);
        a refined result is a step of its own.
        """
        current = self.current
        w = _latent(wplus, like=current.wplus)
        sliders = tuple((str(name), float(v)) for name, v in values.items() if float(v) != 0.0)
        kind = "refine" if refined else "slide"
        action = action or ("sliders, refined" if refined else "sliders")
        base_classes = current.classes
        if current.kind == "slide" and not refined and self.index > 0:
            # moving sliders again replaces the previous slider step: its classes came from the previous one
            base_classes = self.history[self.index - 1].classes
        step = Step(w, current.base, sliders, action, kind, _union(base_classes, classes))
        if current.kind == "slide" and not refined:
            self.history[self.index] = step
            del self.history[self.index + 1:]
            return step
        return self._push(step)

    def can_undo(self) -> bool:
        return self.index > 0

    def can_redo(self) -> bool:
        return 0 <= self.index < len(self.history) - 1

    def undo(self) -> Step:
        if not self.can_undo():
            raise SessionError("nothing to undo")
        self.index -= 1
        return self.history[self.index]

    def redo(self) -> Step:
        if not self.can_redo():
            raise SessionError("nothing to redo")
        self.index += 1
        return self.history[self.index]

    def reset(self) -> Step:
        """Back to the original picture, as a new step (so a reset can be undone)."""
        origin = self.original
        return self._push(Step(origin.wplus, origin.wplus, (), "reset to the original", "reset", ()))

    def describe(self) -> str:
        """One line about where the history stands, for people."""
        if not self.started:
            return "No picture yet."
        step = self.current
        parts = [f"Step {self.index + 1} of {len(self.history)}: {step.action}"]
        if self.can_redo():
            parts.append(f"{len(self.history) - 1 - self.index} step(s) to redo")
        return " · ".join(parts)

    # -- sliders and vectors -----------------------------------------------------------------------------------
    def slider_vectors(self, presets: Mapping[str, EditingVector]) -> list[EditingVector]:
        """What the slider slots show, in order: the model's presets, then the session's own vectors."""
        own = [v for name, v in self.vectors.items() if name not in presets]
        return (list(presets.values()) + own)[: self.max_sliders]

    def slider_values(self) -> dict[str, float]:
        return self.current.slider_values() if self.started else {}

    def values_from_slots(self, slots: Sequence[float | None], presets: Mapping[str, EditingVector]
                          ) -> dict[str, float]:
        """Slider slot values (in :meth:`slider_vectors` order; extra slots ignored) → {vector name: scale}."""
        vectors = self.slider_vectors(presets)
        values = {}
        for vector, value in zip(vectors, slots):
            values[vector.name] = _scale(vector, value)
        return values

    def combination(self, values: Mapping[str, float], presets: Mapping[str, EditingVector]
                    ) -> list[tuple[EditingVector, float]]:
        """{name: scale} → the (vector, scale) pairs to add to the base, after checking every name and scale."""
        known = {v.name: v for v in self.slider_vectors(presets)}
        pairs = []
        for name, value in values.items():
            if name not in known:
                raise SessionError(f"unknown vector {name!r}; this session has {sorted(known) or 'none'}")
            scale = _scale(known[name], value)
            if scale != 0.0:
                pairs.append((known[name], scale))
        return pairs

    def add_vector(self, vector: EditingVector, presets: Mapping[str, EditingVector]) -> EditingVector:
        """Make ``vector`` a slider of this session (a vector of the same name is replaced)."""
        self.check_new_vector(vector, presets)
        self.vectors[vector.name] = vector
        return vector

    def check_new_vector(self, vector: EditingVector, presets: Mapping[str, EditingVector]) -> None:
        """Raises SessionError when :meth:`add_vector` would refuse ``vector``."""
        if vector.name in presets:
            raise SessionError(f"{vector.name!r} is the name of one of this model's presets; choose another name")
        if vector.name not in self.vectors and len(self.slider_vectors(presets)) >= self.max_sliders:
            raise SessionError(f"all {self.max_sliders} slider slots are in use; this session cannot hold more "
                               f"vectors")
        if self.vectors and vector.delta.shape != next(iter(self.vectors.values())).delta.shape:
            raise SessionError(f"vector {vector.name!r} has shape {vector.delta.shape}, unlike this session's others")

    def edit_vector(self, name: str, display_name: str = "") -> EditingVector:
        """The current edit as a reusable vector: current latent − original latent, with the classes it touched."""
        delta = self.current.wplus - self.original.wplus
        if not np.any(delta):
            raise SessionError("nothing to save: the picture is the original one; edit it first")
        try:
            return EditingVector(name.strip(), delta, list(self.current.classes), display_name=display_name,
                                 refine_steps=10)
        except VectorError as e:
            raise SessionError(str(e)) from e


def _latent(wplus: np.ndarray, like: np.ndarray | None = None) -> np.ndarray:
    return as_latent(wplus, like.shape if like is not None else None, SessionError)


def _scale(vector: EditingVector, value: float | None) -> float:
    try:
        return vector.check_scale(value)
    except VectorError as e:
        raise SessionError(str(e)) from None


def _union(a: Sequence[int], b: Sequence[int]) -> tuple[int, ...]:
    return tuple(sorted({int(c) for c in a} | {int(c) for c in b}))
