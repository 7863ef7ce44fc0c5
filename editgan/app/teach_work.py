"""One visitor's Teach tab, as plain Python: the classes, the annotated samples and the sample being annotated.

Kept in ``gr.State`` beside the studio's :class:`~editgan.app.session.Session`: label maps, latents and small
pictures, never a network. A taught model lives in the process's engine registry under :attr:`TeachWork.taught_key`
(a folder in the visitor's scratch space, owned by :attr:`TeachWork.models_owner`). Methods check their input before
they change anything.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np

from editgan.colors import Color
from editgan.engine.fill import fill_region
from editgan.errors import SessionError
from editgan.teach.annotations import AnnotatedSample, AnnotationSet

MAX_SAMPLES = 200
"""Annotated samples one session may hold (public studios hold fewer: see the Teach tab's limits)."""


@dataclass
class Draft:
    """The sample on the canvas: its picture and the label map being painted (not yet kept)."""
    seed: int | None
    name: str | None
    wplus: np.ndarray
    image: np.ndarray
    """(h, w, 3) uint8."""
    labels: np.ndarray
    """(h, w) int64 class ids."""
    uncertainty: np.ndarray | None = None
    """(h, w) in [0, 1] where a branch is unsure, when one exists."""

    @property
    def key(self) -> str:
        return self.name if self.name is not None else str(self.seed)


class TeachWork:
    def __init__(self, max_samples: int = MAX_SAMPLES):
        self.max_samples = max_samples
        self.annotations: AnnotationSet | None = None
        self.draft: Draft | None = None
        self.taught_key: str | None = None
        """The model key (a scratch folder) of the last model taught in this session."""
        self.model_name = ""
        """The name taught models get (the first source's name + "-taught")."""
        self.report: list[str] = []
        self.files_owner = secrets.token_hex(12)
        """Owns the session's imports and exports in the scratch space (removed when the session ends)."""
        self.models_owner = secrets.token_hex(12)
        """Owns the taught model's folder: not removed with the session, since the Studio tab may still use the model;
        swept once the Studio has not used it for the scratch space's age limit."""

    # -- classes ------------------------------------------------------------------------------------------------
    @property
    def class_names(self) -> list[str]:
        return list(self.annotations.class_names) if self.annotations else []

    @property
    def palette(self) -> list[Color]:
        return list(self.annotations.palette) if self.annotations else []

    def set_classes(self, names: Sequence[str], palette: Sequence[Color]) -> None:
        """New classes (checked by AnnotationSet); kept samples keep their ids, so the new list must cover them."""
        new = AnnotationSet(list(names), list(palette))
        used = max([int(s.labels.max(initial=0)) for s in self.samples]
                   + ([int(self.draft.labels.max(initial=0))] if self.draft else []), default=0)
        if used >= new.n_classes:
            raise SessionError(f"the annotations use class id {used}, but the new list has only {new.n_classes} "
                               f"classes: keep at least {used + 1}, or delete the samples that use it")
        new.samples = self.samples
        self.annotations = new

    def require_classes(self) -> AnnotationSet:
        if self.annotations is None:
            raise SessionError("set the classes first (a template, this model's classes, or your own list)")
        return self.annotations

    def class_id(self, name: str | None) -> int:
        names = self.require_classes().class_names
        if name not in names:
            raise SessionError(f"pick one of the classes: {', '.join(names)}")
        return names.index(name)

    # -- the sample on the canvas -------------------------------------------------------------------------------
    def start(self, draft: Draft) -> Draft:
        annotations = self.require_classes()
        if draft.labels.size and int(draft.labels.max(initial=0)) >= annotations.n_classes:
            draft.labels = np.zeros_like(draft.labels)
        self.draft = draft
        return draft

    def require_draft(self) -> Draft:
        if self.draft is None:
            raise SessionError("draw a sample first (or open an annotated one)")
        return self.draft

    def paint(self, painted: np.ndarray, ids: np.ndarray) -> None:
        """Painted pixels (a mask at label-map size) take the painted classes."""
        draft = self.require_draft()
        if painted.shape != draft.labels.shape:
            raise SessionError("the paint does not match the sample: draw the sample again")
        if ids[painted].size and int(ids[painted].max()) >= len(self.class_names):
            raise SessionError("paint only in the classes' colours")
        draft.labels = np.where(painted, ids, draft.labels).astype(np.int64)

    def fill(self, x: int, y: int, class_id: int, tolerance: int, source: Literal["picture", "labels"]) -> None:
        draft = self.require_draft()
        draft.labels = fill_region(draft.labels, draft.image, x, y, class_id, tolerance, source)

    # -- annotated samples -------------------------------------------------------------------------------------
    @property
    def samples(self) -> list[AnnotatedSample]:
        return list(self.annotations.samples) if self.annotations else []

    def keep(self) -> AnnotatedSample:
        """The draft joins the annotated samples (replacing one of the same seed or name)."""
        annotations = self.require_classes()
        draft = self.require_draft()
        known = {s.key for s in annotations.samples}
        if draft.key not in known and len(known) >= self.max_samples:
            raise SessionError(f"this session holds at most {self.max_samples} annotated samples; delete some first")
        return annotations.add(draft.labels.copy(), draft.wplus, seed=draft.seed, name=draft.name)

    def sample(self, key: str | None) -> AnnotatedSample:
        found = [s for s in self.samples if s.key == str(key)]
        if not found:
            keys = ", ".join(s.key for s in self.samples) or "none yet"
            raise SessionError(f"there is no annotated sample {key!r} (annotated: {keys})")
        return found[0]

    def delete(self, key: str | None) -> None:
        sample = self.sample(key)
        self.require_classes().remove(sample.key)

    def replace_annotations(self, annotations: AnnotationSet) -> None:
        """Imported annotations replace the classes and samples (the draft goes if its classes no longer fit)."""
        if len(annotations.samples) > self.max_samples:
            raise SessionError(f"the upload holds {len(annotations.samples)} annotated samples; this session holds "
                               f"at most {self.max_samples}")
        self.annotations = annotations
        if self.draft is not None and int(self.draft.labels.max(initial=0)) >= annotations.n_classes:
            self.draft = None
