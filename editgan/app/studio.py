"""The studio's callbacks: read the visitor's session, call the engine, show the result.

Callbacks are thin. The visitor's :class:`~editgan.app.session.Session` (kept in ``gr.State``: latents, history,
the visitor's own vectors; never a network) holds the state; the model comes from the process-wide engine
registry; paint is decoded by :mod:`editgan.app.paint`, pictures are prepared by :mod:`editgan.app.views`, files are
written by :mod:`editgan.modelio.picture_files`. Long actions run through :func:`editgan.app.jobs.run_cancellable`;
the values a visitor sends are checked, and every failure turned into one line, by :mod:`editgan.app.checks`.
"""
from __future__ import annotations

import dataclasses
import math
import random
from pathlib import Path
from typing import Any, Callable, Generator, Sequence

import gradio as gr
import numpy as np
from PIL import Image

from editgan.app import gpu, views
from editgan.app.checks import (checked_fraction, checked_number, checked_seed, checked_steps, checked_truncation,
                                 guarded, user_error)
from editgan.app.components import FIRST_SEED, REFINE_CHOICES, Components, brush, class_choices, default_class, eraser
from editgan.app.engines import EngineRegistry
from editgan.app.jobs import CancelFlags, TimeBudget, job_budget, run_cancellable
from editgan.app.paint import decode_canvas
from editgan.app.policy import Policy
from editgan.app.renders import RenderCache
from editgan.app.scratch import ScratchSpace
from editgan.app.session import Session, Step
from editgan.colors import colorize, hex_color
from editgan.engine.images import crop as crop_image
from editgan.engine.images import load_image, square_box
from editgan.engine.labels import apply_paint
from editgan.engine.model import EditGANModel, EditOutcome, Picture, Progress, Rendering
from editgan.errors import EditGANError
from editgan.lru import LRUCache
from editgan.modelio.checkpoint import add_preset
from editgan.modelio.picture_files import write_rendering
from editgan.modelio.vectors import MAX_REFINE_STEPS, MAX_SCALE, EditingVector

PHOTO_SIDE = 1024
"""Uploaded photos are kept at most this large (longest side) for cropping and embedding."""
MAX_VECTOR_BYTES = 64 * 2**20
PICTURE_FIRST_S = 0.3
"""A model whose label map takes longer than this (its latest, as the engine measured it) shows each new picture as
soon as it is drawn, its label map following: a 512-px, 10-member map takes seconds on a CPU, the embedded 64-px
model's milliseconds (one update for those)."""
SEGMENTING = "Segmenting… the label map follows."
PARKED_FEATURE_BYTES = 2**30
"""At most this much of generator feature maps is kept, over all visitors, for slider pictures whose label map is
the page's next event (:meth:`Studio.park`); a 512-px config-f picture's take about 250 MB."""


class Studio:
    """The callbacks, bound to the page's components, one default model, a device and an engine registry."""

    def __init__(self, components: Components, engines: EngineRegistry, default_model: str,
                 device: str | None = None, scratch: ScratchSpace | None = None, renders: RenderCache | None = None,
                 policy: Policy | None = None):
        self.c = components
        self.policy = policy or Policy()
        self.engines = engines
        self.default_model = default_model
        self.device = device
        self.cancels = CancelFlags()
        self.scratch = scratch or ScratchSpace()
        self.renders = renders or RenderCache()
        # on ZeroGPU each call runs in a worker of its own: a slide's label map cannot wait in the session for the
        # next event (the session is pickled), and the GPU draws it with the picture in milliseconds
        self.picture_first_s = math.inf if gpu.on_zero_gpu() else PICTURE_FIRST_S
        self.parked: LRUCache[str, Picture] = LRUCache(PARKED_FEATURE_BYTES, lambda p: p.features_bytes,
                                                       on_drop=Picture.forget_features)
        """Pictures of slides whose label map is still to come, by session (see :meth:`park`)."""
        self.model_choices = [value for _, value in (components.model.model.choices or [])]
        """The model list as the page was built with it; a session's own model (a taught one) joins it."""

    # -- helpers ----------------------------------------------------------------------------------------------
    def engine(self, model_id: str) -> EditGANModel:
        if self.scratch.holds(model_id):  # a taught model: kept from the sweep while it is used
            self.scratch.in_use(model_id)
        return self.engines.get(model_id, self.device)

    def session(self, state: Session | None) -> tuple[Session, EditGANModel]:
        session = state if isinstance(state, Session) else Session(self.default_model)
        return session, self.engine(session.model_id)

    def gpu_seconds(self, state: Session | None, steps: Any) -> int:
        """The GPU time (ZeroGPU) an optimization of ``steps`` steps asks for on the session's model."""
        _, engine = self.session(state)
        return gpu.job_seconds(engine.generator.size, checked_steps(steps, "steps"))

    def rendering(self, session: Session, engine: EditGANModel, wplus: np.ndarray) -> Rendering:
        """The picture of ``wplus``: from the render cache, else drawn (in a device turn) and kept."""
        return self.renders.render(session.model_id, wplus, engine.render)

    def keep(self, session: Session, rendering: Rendering) -> Rendering:
        return self.renders.put(session.model_id, rendering)

    def end_session(self, state: Session | None) -> None:
        """Gradio calls this when a visitor's session expires: its files go with it."""
        if isinstance(state, Session):
            self.scratch.remove(state.files_owner)
            if self.scratch.holds(state.model_id):  # a model taught in this tab: nobody else uses it
                self.scratch.discard(Path(state.model_id).parent)

    @staticmethod
    def _key(request: gr.Request | None, session: Session) -> str:
        return getattr(request, "session_hash", None) or f"session-{id(session)}"

    def _history(self, session: Session, message: str) -> dict:
        c = self.c
        return {c.state: session, c.picture.status: session.describe() + (f"  \n{message}" if message else ""),
                c.history.undo: gr.Button(interactive=session.can_undo()),
                c.history.redo: gr.Button(interactive=session.can_redo()),
                c.history.reset: gr.Button(interactive=session.started)}

    def view(self, session: Session, engine: EditGANModel, rendering: Rendering | None = None, message: str = "",
             sliders: bool = True, model: bool = False) -> dict:
        """Every output that shows the session: pictures, canvas, comparison, history, sliders."""
        c = self.c
        out = self._history(session, message)
        if model:
            out.update(self.model_view(session, engine))
        if not session.started:
            return out
        r = self.keep(session, rendering) if rendering is not None else \
            self.rendering(session, engine, session.current.wplus)
        out[c.picture.picture] = r.image  # at the model's size: the page enlarges pictures (components.PAGE_CSS)
        original = self.rendering(session, engine, session.original.wplus).image
        out[c.history.compare] = (original, r.image)
        if r.labels is not None:
            colors = colorize(r.labels, engine.config.palette)
            out[c.picture.labels] = colors
            out[c.picture.blend] = views.blend(r.image, colors)
            out[c.paint.editor] = self.editor_update(engine, views.canvas_value(colors), with_brush=model)
        else:
            out[c.picture.labels] = None
            out[c.picture.blend] = None
            out[c.paint.editor] = self.editor_update(engine, None, with_brush=model)
        if sliders:
            out.update(self.slider_updates(session, engine))
        return out

    def picture_view(self, session: Session, engine: EditGANModel, picture: Picture, message: str = "",
                     sliders: bool = True) -> dict:
        """The session's new picture before its label map: the label map, blend and canvas empty meanwhile (none
        of them shows a map of another picture), the status line saying that the map follows."""
        c = self.c
        out = self._history(session, f"{message}  \n{SEGMENTING}" if message else SEGMENTING)
        out[c.picture.picture] = picture.image  # at the model's size, as in view()
        original = picture if np.array_equal(session.original.wplus, picture.wplus) else \
            self.renders.get(session.model_id, session.original.wplus)
        if original is not None:  # else the comparison waits for the whole view rather than for a rendering
            out[c.history.compare] = (original.image, picture.image)
        out[c.picture.labels] = out[c.picture.blend] = out[c.paint.editor] = None
        if sliders:
            out.update(self.slider_updates(session, engine))
        return out

    def show(self, session: Session, engine: EditGANModel, shown: Picture | Rendering, message: str = "",
             sliders: bool = True, extra: dict | None = None,
             superseded: Callable[[], bool] | None = None) -> Generator[dict, None, None]:
        """Yield the view of the session's new picture: when its label map is still to be computed and slow, first
        the picture with a 'segmenting' status, then, the map computed, the whole view (``extra`` in both).

        The map is given up (nothing more is yielded) once the session shows another latent or ``superseded``
        says so: a newer picture's turn on the device does not wait for an out-of-date map."""
        extra = extra or {}
        pending = shown if isinstance(shown, Picture) else getattr(shown, "pending", None)
        if pending is not None:
            if self.picture_first(engine):
                yield {**self.picture_view(session, engine, pending, message, sliders), **extra}

            def out_of_date() -> bool:
                return (not session.started or not np.array_equal(session.current.wplus, pending.wplus)
                        or (superseded is not None and superseded()))
            rendering = engine.segment(pending, out_of_date)
            if rendering is None:
                return
            shown = rendering if isinstance(shown, Picture) else \
                dataclasses.replace(shown, labels=rendering.labels, pending=None)
        yield {**self.view(session, engine, shown, message, sliders), **extra}

    def picture_first(self, engine: EditGANModel) -> bool:
        """Whether a new picture is worth showing before its label map (see :data:`PICTURE_FIRST_S`)."""
        if not engine.has_segmenter or self.picture_first_s == math.inf:  # never (ZeroGPU), whatever it measured
            return False
        return engine.label_map_s is None or engine.label_map_s >= self.picture_first_s

    def map_with_picture(self, engine: EditGANModel) -> bool:
        """Whether a new picture's label map is computed in the picture's own device turn: yes when the picture is
        not shown first (a quick map). Under load a second turn queues once more behind every waiting visitor."""
        return not self.picture_first(engine)

    @staticmethod
    def editor_update(engine: EditGANModel, value: dict | None, with_brush: bool) -> gr.ImageEditor | dict | None:
        """The canvas with a new background; ``with_brush`` also sets the brush to the model's classes. Without
        it, the plain value: an ImageEditor built here would encode the canvas once more, and Gradio would build
        it again to update the page's copy."""
        if not with_brush:
            return value
        # always interactive: Gradio 6 does not show an editor that an update turns from read-only to interactive
        # (a model taught in the Teach tab); without a branch the Edit button is off and the legend says why
        return gr.ImageEditor(value=value, brush=brush(engine), eraser=eraser(engine), interactive=True)

    def slider_updates(self, session: Session, engine: EditGANModel) -> dict:
        vectors = session.slider_vectors(engine.presets)
        values = session.slider_values()
        out = {}
        for i, slider in enumerate(self.c.vectors.sliders):
            if i < len(vectors):
                v = vectors[i]
                lo, hi = v.scale_range
                kind = "preset" if v.name in engine.presets else "your vector"
                out[slider] = gr.Slider(minimum=lo, maximum=hi, value=values.get(v.name, 0.0), step=0.05,
                                        label=v.display_name, info=f"{kind} {v.name}", visible=True)
            else:
                out[slider] = gr.Slider(value=0.0, visible=False)
        return out

    def model_choice(self, session: Session) -> tuple[list[str], str]:
        """The model list for this session and the name it shows selected: the session's model by the name the
        model line uses (:meth:`Policy.name_of`), added to the list when it is the session's own (a taught one)."""
        name = self.policy.name_of(session.model_id)
        return (self.model_choices if name in self.model_choices else [*self.model_choices, name]), name

    def model_view(self, session: Session, engine: EditGANModel) -> dict:
        c = self.c
        choices, name = self.model_choice(session)
        return {c.model.model: gr.Dropdown(choices=choices, value=name),
                c.paint.legend: views.legend_html(engine),
                c.paint.brush_class: gr.Dropdown(choices=class_choices(engine), value=default_class(engine),
                                                 interactive=bool(class_choices(engine))),
                c.model.info: views.model_info(engine, self.policy.name_of(session.model_id)),
                c.model.notice: gr.Markdown(value=views.model_notice(engine)),
                c.paint.edit: gr.Button(interactive=engine.has_segmenter),
                c.sample.truncation: gr.Slider(value=engine.config.truncation)}

    def time_budget(self, engine: EditGANModel, steps: int) -> TimeBudget:
        """How long an optimization's steps may run (:func:`editgan.app.jobs.job_budget`), made at the callback's
        start."""
        return job_budget(engine.generator.size, steps, self.policy.public)

    def _optimize(self, key: str, work: Callable[[Callable, Callable], Any], desc: str, progress: gr.Progress,
                  preview: Callable[[Progress], str], budget: TimeBudget) -> Generator[dict, None, Any]:
        """Run an optimization with live previews of the picture and the status line, until done, cancelled or out
        of ``budget``; returns its result."""
        def show(p: Progress) -> dict:
            progress((p.step, p.steps), desc=desc, unit="steps")
            return {self.c.picture.picture: p.image,
                    self.c.picture.status: preview(p)}

        reports = run_cancellable(self.cancels, key, work, budget.over)
        while True:
            try:
                yield show(next(reports))
            except StopIteration as done:
                return done.value

    @guarded
    def pick_brush_class(self, state: Session | None, name: str | None) -> gr.ImageEditor:
        """The brush takes the color of the class picked by name."""
        _, engine = self.session(state)
        names = engine.config.class_names
        if name not in names:
            raise ValueError(f"pick one of this model's classes: {', '.join(names) or 'none'}")
        return gr.ImageEditor(brush=brush(engine, hex_color(engine.config.palette[names.index(name)])))

    @staticmethod
    def steps_typed(event: gr.EventData) -> None:
        """The page moves a number typed into a slider's box into the slider's range when the box loses focus, and
        says nothing: its release event still carries the typed number, so say it here."""
        slider = getattr(event, "target", None)
        lowest, highest = getattr(slider, "minimum", None), getattr(slider, "maximum", None)
        if lowest is None or highest is None:
            return
        message = views.corrected(getattr(slider, "label", None) or "Steps", getattr(event, "_data", None), lowest,
                                  highest)
        if message:
            gr.Warning(message)

    # -- starting points ----------------------------------------------------------------------------------------
    @guarded
    def start(self, state: Session | None) -> dict:
        """Page load: a first picture (the default model's seed 1) unless the session already has one.

        A model that cannot be loaded is reported as a warning and in the status line (not as an error, which would
        mark every output): the page stays usable to pick another model."""
        try:
            session, engine = self.session(state)
        except (EditGANError, ValueError) as e:
            message = str(user_error(e, self.policy).message)
            gr.Warning(message)
            return {self.c.picture.status: f"Could not load the model: {message}  \nPick or type another model "
                                           f"above."}
        if session.started:
            return self.view(session, engine, model=True)
        rendering = engine.sample(FIRST_SEED)
        session.start(rendering.wplus, f"sample (seed {FIRST_SEED})")
        return self.view(session, engine, rendering, model=True)

    def show_model(self, state: Session | None, key: str, message: str) -> dict:
        """This session goes on with the model of ``key`` (chosen by the server, e.g. one just taught): the picture
        stays when the latents fit, and the page takes the model's classes, legend and presets."""
        session, _ = self.session(state)
        engine = self.engine(key)
        if session.started and session.current.wplus.shape != (engine.n_latent, engine.style_dim):
            session.restart(key)
        session.model_id = key
        if not session.started:
            session.start(engine.sample(FIRST_SEED).wplus, f"sample (seed {FIRST_SEED})")
        return self.view(session, engine, message=message, model=True)

    def chosen_model(self, choice: Any, state: Session | None) -> tuple[str, str]:
        """The model list's choice → (its name, its model key): the session's own model (taught here) by its listed
        name; any other choice as the policy allows."""
        choice = (choice if isinstance(choice, str) else "").strip() or self.default_model
        own = state.model_id if isinstance(state, Session) else None
        return choice, own if own and choice == self.policy.name_of(own) else self.policy.check_model(choice)

    @guarded
    def fetch_model(self, choice: str | None, state: Session | None = None,
                    progress: gr.Progress = gr.Progress()) -> dict:
        """On ZeroGPU, before :meth:`load_model`: the chosen model downloaded and loaded in the server's process,
        so the download takes no GPU time (a worker forked after this has the model; one reused from before loads
        it from disk in its own call)."""
        choice, key = self.chosen_model(choice, state)
        progress(0.05, desc=f"Loading {choice}…")
        self.engines.get(key, self.device, progress=lambda text: progress(0.3, desc=self.policy.scrub(text)))
        return {self.c.picture.status: f"Loaded model {choice}; drawing a first sample…"}

    @guarded
    def load_model(self, choice: str | None, state: Session | None = None,
                   progress: gr.Progress = gr.Progress()) -> dict:
        choice, key = self.chosen_model(choice, state)
        progress(0.05, desc=f"Loading {choice}…")
        engine = self.engines.get(key, self.device, progress=lambda text: progress(0.3, desc=self.policy.scrub(text)))
        progress(0.9, desc="Drawing a first sample…")
        session = state if isinstance(state, Session) else Session(key)
        session.restart(key)  # in place: a job still running on the old model must not record onto a new session
        rendering = engine.sample(FIRST_SEED)
        session.start(rendering.wplus, f"sample (seed {FIRST_SEED})")
        out = self.view(session, engine, rendering, message=f"Loaded model {choice}.", model=True)
        out[self.c.sample.seed] = FIRST_SEED
        return out

    @guarded
    def sample(self, state: Session | None, seed: float | None, truncation: float | None):
        yield from self._sample(state, checked_seed(seed), truncation)

    def _sample(self, state: Session | None, seed: int, truncation: float | None, extra: dict | None = None):
        session, engine = self.session(state)
        truncation = checked_truncation(truncation, engine.config.truncation)
        sample = engine.sample(seed, truncation) if self.map_with_picture(engine) else \
            engine.sample_picture(seed, truncation)
        session.start(sample.wplus, f"sample (seed {seed}, truncation {truncation:g})")
        yield from self.show(session, engine, sample, extra=extra)

    @guarded
    def random_sample(self, state: Session | None, truncation: float | None):
        seed = random.randrange(2**31)
        yield from self._sample(state, seed, truncation, {self.c.sample.seed: seed})

    @guarded
    def example_seed(self, state: Session | None, example: Sequence[Any] | None, truncation: float | None):
        if not example:
            raise ValueError("pick one of the example seeds")
        seed = checked_seed(example[0])
        yield from self._sample(state, seed, truncation, {self.c.sample.seed: seed})

    # -- photos -------------------------------------------------------------------------------------------------
    @guarded
    def upload_photo(self, state: Session | None, path: str | None) -> dict:
        session, _ = self.session(state)
        if not path:
            raise ValueError("no photo was uploaded")
        session.photo, session.photo_name = None, ""  # a rejected upload leaves no earlier photo to embed by mistake
        picture = load_image(path)  # ImageError with a clear message for bad files
        size = f"{picture.width}×{picture.height}"
        picture.thumbnail((PHOTO_SIDE, PHOTO_SIDE), Image.LANCZOS)
        if f"{picture.width}×{picture.height}" != size:
            size += f", downscaled to {picture.width}×{picture.height}"
        session.photo = np.asarray(picture)
        session.photo_name = Path(path).name
        p = self.c.photo
        box = square_box(picture.width, picture.height)
        return {self.c.state: session, p.crop_preview: views.crop_preview(session.photo, box), p.crop_size: 100,
                p.crop_x: 50, p.crop_y: 50,
                self.c.picture.status: f"Photo {session.photo_name} ({size}): choose the square crop, then press "
                                       f"Embed."}

    @staticmethod
    def _box(session: Session, size: float | None, x: float | None, y: float | None) -> tuple[int, ...]:
        if session.photo is None:
            raise ValueError("upload a photo first (or pick an example photo)")
        height, width = session.photo.shape[:2]
        return square_box(width, height, checked_fraction(size, 100), checked_fraction(x, 50),
                          checked_fraction(y, 50))

    @guarded
    def crop_preview(self, state: Session | None, size: float | None, x: float | None, y: float | None) -> dict:
        session, _ = self.session(state)
        box = self._box(session, size, x, y)
        return {self.c.photo.crop_preview: views.crop_preview(session.photo, box)}

    @guarded
    def embed(self, state: Session | None, size: float | None, x: float | None, y: float | None,
              steps: float | None, request: gr.Request = None, progress: gr.Progress = gr.Progress()):
        session, engine = self.session(state)
        box = self._box(session, size, x, y)
        steps = checked_steps(steps, "embedding steps")
        budget = self.time_budget(engine, steps)
        picture = crop_image(Image.fromarray(session.photo), box)
        yield {self.c.photo.crop_preview: views.crop_preview(session.photo, box)}
        outcome: EditOutcome = yield from self._optimize(
            self._key(request, session),
            lambda on_step, should_stop: engine.embed(picture, steps, on_step=on_step, should_stop=should_stop,
                                                      label_map=self.map_with_picture(engine)),
            "Embedding the photo", progress,
            lambda p: f"Embedding {session.photo_name}: step {p.step} of {p.steps}, loss {p.loss:.4f}", budget)
        session.start(outcome.wplus, f"photo {session.photo_name} (embedded, {len(outcome.losses)} steps)")
        yield from self.show(session, engine, outcome,
                             message=views.finished("Embedding", outcome, steps, budget.stopped))

    @guarded
    def example_photo(self, state: Session | None, example: Sequence[Any] | None, steps: float | None,
                      request: gr.Request = None, progress: gr.Progress = gr.Progress()):
        if not example or not example[0]:
            raise ValueError("pick one of the example photos")
        path = example[0]["path"] if isinstance(example[0], dict) else str(example[0])
        out = self.upload_photo(state, path)
        out[self.c.photo.upload] = None  # the upload box no longer names an earlier file
        session = out[self.c.state]
        yield out
        yield from self.embed(session, 100, 50, 50, steps, request, progress)

    # -- editing ------------------------------------------------------------------------------------------------
    @guarded
    def edit(self, state: Session | None, canvas: dict | None, steps: float | None, request: gr.Request = None,
             progress: gr.Progress = gr.Progress()):
        session, engine = self.session(state)
        session.require_picture()
        if not engine.has_segmenter:
            raise ValueError(f"mask editing needs a segmentation branch, and model {engine.config.name!r} has none: "
                             f"sample, embed and apply vectors instead, or load a model with a segmenter")
        steps = checked_steps(steps, "edit steps")
        budget = self.time_budget(engine, steps)
        start = session.current
        current = self.rendering(session, engine, start.wplus)
        k = views.canvas_scale(*current.image.shape[:2])
        painted, ids = decode_canvas(canvas, current.labels, engine.config.palette, k)
        wanted = apply_paint(current.labels, painted, ids)
        outcome: EditOutcome = yield from self._optimize(
            self._key(request, session),
            lambda on_step, should_stop: engine.edit(start.wplus, wanted, painted, steps=steps, name="edit",
                                                     on_step=on_step, should_stop=should_stop, original=current,
                                                     label_map=self.map_with_picture(engine)),
            "Editing", progress,
            lambda p: f"Editing: step {p.step} of {p.steps}, loss {p.loss:.4f} (Cancel keeps the best result so far)",
            budget)
        if not session.is_current(start):
            yield self.overtaken(session, "Edit")
            return
        if outcome.best_step == 0:
            yield self.view(session, engine, current,
                            message=views.unchanged("Edit", outcome, steps, budget.stopped))
            return
        classes = outcome.vector.classes if outcome.vector is not None else []
        names = ", ".join(engine.config.class_names[i] for i in classes if i < engine.config.n_classes)
        session.record_edit(outcome.wplus, classes, f"mask edit ({names or 'painted classes'}, "
                                                    f"{len(outcome.losses)} steps)")
        yield from self.show(session, engine, outcome, message=views.finished("Edit", outcome, steps, budget.stopped))

    def overtaken(self, session: Session, what: str) -> dict:
        """The view after a job whose picture was replaced while it ran (by a sample, undo, a slider, another
        model): the session as it is now, on its model now, and why the job's result is not shown."""
        return self.view(session, self.engine(session.model_id), message=views.overtaken(what))

    @guarded
    def cancel(self, request: gr.Request = None) -> str:
        """Stop the visitor's running edit, embedding or refinement. It answers in a notice, not on the status line,
        which the stopped job's own final report fills (an answer arriving after it would overwrite it)."""
        key = getattr(request, "session_hash", None) or ""
        if not self.cancels.cancel(key):
            gr.Info("Nothing to cancel: no edit or embedding is running.")
            return "Nothing to cancel: no edit or embedding is running."
        gr.Info("Cancelling: the best result so far is kept…")
        return "Cancelling: the best result so far is kept…"

    # -- sliders and vectors ------------------------------------------------------------------------------------
    def _apply(self, session: Session, engine: EditGANModel, slots: Sequence[float | None], refine: int,
               on_step: Callable | None = None, should_stop: Callable | None = None, step: Step | None = None
               ) -> tuple[EditOutcome, dict[str, float], list[int]]:
        """The sliders' latent and its picture, with its label map when that is quick (:meth:`map_with_picture`),
        else left to :meth:`show` (``outcome.pending``). A refinement starts from the kept rendering of the sliders'
        base when there is one (no label map again). The sliders move from ``step``'s base (the session's current
        step unless given)."""
        step = step or session.current
        values = session.values_from_slots(slots, engine.presets)
        pairs = session.combination(values, engine.presets)
        original = self.renders.get(session.model_id, step.base) if refine > 0 else None
        outcome = engine.apply_vectors(step.base, pairs, refine_steps=refine, on_step=on_step,
                                       should_stop=should_stop, label_map=self.map_with_picture(engine),
                                       original=original if original is not None and original.labels is not None
                                       else None)
        classes = sorted({c for v, _ in pairs for c in v.classes})
        return outcome, values, classes

    @guarded
    def slide(self, state: Session | None, *slots: float | None):
        """Any slider moved: base + Σ scale·vector over all sliders, at once (no refinement)."""
        session, engine = self.session(state)
        # checked before it counts as the newest slide: a refused one must not give up the last one's label map
        session.combination(session.values_from_slots(slots, engine.presets), engine.presets)
        session.slides += 1
        slide = session.slides
        outcome, values, classes = self._apply(session, engine, slots, 0)
        self.park(session, outcome.pending)
        moved = ", ".join(f"{engine.presets[n].display_name if n in engine.presets else n} {v:+g}"
                          for n, v in values.items() if v)
        session.record_sliders(outcome.wplus, values, classes, action=f"sliders ({moved or 'all at 0'})")
        try:
            yield from self.show(session, engine, outcome, sliders=False, superseded=lambda: session.slides != slide)
        finally:  # the map is in, given up, or will never be asked for (this generator closed)
            self.parked.discard(session.files_owner, outcome.pending)

    def park(self, session: Session, picture: Picture | None) -> None:
        """A slide's picture keeps the generator's feature maps until its label map is computed, which in the page
        is the next event (:meth:`slide_labels`): a visitor who never sends it (a closed tab, an API client) would
        leave them in the session for its lifetime. So they are counted here: at most ``PARKED_FEATURE_BYTES`` over
        all sessions, the session's older slide and then the least recently parked letting theirs go first (their
        maps then draw them again)."""
        if picture is not None and picture.features is not None:
            self.parked.put(session.files_owner, picture)

    @guarded
    def slide_picture(self, state: Session | None, *slots: float | None) -> dict:
        """The slider's event in the page: :meth:`slide`'s first view only (on a slow model the picture, else the
        whole view). The label map follows from :meth:`slide_labels`, the next event, so that the next value of a
        dragged slider, which Gradio holds back until this event ends ('always_last'), is not held back behind it;
        once that newer slide starts, the older map is given up between its bands."""
        session, _ = self.session(state)
        views_of_slide = self.slide(session, *slots)
        first = next(views_of_slide)
        session.pending_views = views_of_slide
        return first

    def slide_labels(self, state: Session | None) -> dict:
        """The rest of the latest :meth:`slide_picture`: its label map, or no other update once out of date."""
        unchanged = {self.c.state: state}  # Gradio wants one output at least
        if not isinstance(state, Session) or state.pending_views is None:
            return unchanged
        views_of_slide, state.pending_views = state.pending_views, None
        shown = list(views_of_slide)
        return shown[-1] if shown else unchanged

    @guarded
    def refine(self, state: Session | None, refine_steps: Any, *slots: float | None, request: gr.Request = None,
               progress: gr.Progress = gr.Progress()):
        """The sliders' result polished by a few optimization steps over the classes their vectors touch."""
        session, engine = self.session(state)
        session.require_picture()
        choices = " or ".join(map(str, REFINE_CHOICES))
        try:
            refine = int(refine_steps)
        except (TypeError, ValueError):
            raise ValueError(f"refine steps: choose {choices}, got {refine_steps!r}") from None
        if refine not in REFINE_CHOICES:
            raise ValueError(f"refine steps: choose {choices}, got {refine}")
        budget = self.time_budget(engine, refine)
        start = session.current
        outcome, values, classes = yield from self._optimize(
            self._key(request, session),
            lambda on_step, should_stop: self._apply(session, engine, slots, refine, on_step, should_stop, start),
            "Refining", progress, lambda p: f"Refining: step {p.step} of {p.steps}", budget)
        if not session.is_current(start):
            yield self.overtaken(session, "Refinement")
            return
        session.record_sliders(outcome.wplus, values, classes, refined=True,
                               action=f"sliders refined ({len(outcome.losses)} steps)")
        yield from self.show(session, engine, outcome,
                             message=views.finished("Refinement", outcome, refine, budget.stopped))

    @guarded
    def save_vector(self, state: Session | None, name: str | None) -> dict:
        session, engine = self.session(state)
        name = (name or "").strip()
        if not name:
            raise ValueError("give the vector a name (letters, digits, '_', '-' or '.')")
        vector = session.edit_vector(name)
        vector.check_fits(engine.n_latent, engine.style_dim, engine.config.n_classes)
        session.check_new_vector(vector, engine.presets)
        # the file first: a slider whose file could not be written (the scratch space full) would offer no download
        path = vector.save(self.scratch.folder(session.files_owner, "vector") / f"{vector.name}.safetensors")
        session.add_vector(vector, engine.presets)
        out = self.view(session, engine, message=f"Saved the current edit as vector {vector.name!r}: it is now a "
                                                 f"slider, and its file is ready to download.")
        out[self.c.vectors.saved_file] = str(path)
        return out

    @guarded
    def save_preset(self, state: Session | None, name: str | None, display_name: str | None, scale_min: Any,
                    scale_max: Any, refine_steps: Any) -> dict:
        """The current edit as a preset of the model's folder (public mode: only a model taught in this session)."""
        session, engine = self.session(state)
        folder = self.policy.writable_folder(session.model_id, self.scratch.root)
        name = (name or "").strip()
        if not name:
            raise ValueError("give the preset a name in Vector name (letters, digits, '_', '-' or '.')")
        low, high = checked_number(scale_min, "scale from", MAX_SCALE), checked_number(scale_max, "scale to", MAX_SCALE)
        if not low < 0 < high:
            raise ValueError(f"a preset's scale goes from below 0 to above 0, got {low:g} to {high:g}")
        refine = 0 if refine_steps in (None, 0, 0.0) else checked_steps(refine_steps, "refine steps", MAX_REFINE_STEPS)
        vector = session.edit_vector(name, display_name or "")
        vector.set_slider(vector.display_name, (low, high), vector.default_scale, refine)
        vector.check_fits(engine.n_latent, engine.style_dim, engine.config.n_classes)
        add_preset(folder, vector)
        engine.presets[vector.name] = vector
        # the session keeps it too: on ZeroGPU this runs in a worker, and the next call's worker may hold the model
        # as it was loaded, without the new preset (the folder has it for the model's next load)
        session.vectors[vector.name] = vector
        out = self.view(session, engine, message=f"Saved the current edit as preset {vector.display_name!r} of "
                                                  f"this model: it is a slider now and after the model is loaded "
                                                  f"again.")
        out[self.c.model.info] = views.model_info(engine, self.policy.name_of(session.model_id))
        return out

    @guarded
    def upload_vector(self, state: Session | None, path: str | None) -> dict:
        session, engine = self.session(state)
        if not path:
            raise ValueError("no vector file was uploaded")
        file = Path(path)
        if file.stat().st_size > MAX_VECTOR_BYTES:
            raise ValueError(f"{file.name} is {file.stat().st_size / 2**20:.0f} MB; an editing vector is far smaller "
                             f"(limit {MAX_VECTOR_BYTES // 2**20} MB)")
        vector = EditingVector.load(file)
        vector.check_fits(engine.n_latent, engine.style_dim, engine.config.n_classes)
        session.add_vector(vector, engine.presets)
        return self.view(session, engine, message=f"Added vector {vector.name!r} as a slider: move it to apply it.")

    # -- history and downloads ----------------------------------------------------------------------------------
    @guarded
    def undo(self, state: Session | None) -> dict:
        return self._move(state, Session.undo)

    @guarded
    def redo(self, state: Session | None) -> dict:
        return self._move(state, Session.redo)

    @guarded
    def reset(self, state: Session | None) -> dict:
        return self._move(state, Session.reset)

    def _move(self, state: Session | None, move: Callable[[Session], Step]) -> dict:
        """The view of the step ``move`` goes to in the history; if that picture cannot be shown (its rendering
        fails), the history stays where it was, as the page does."""
        session, engine = self.session(state)
        history, index = list(session.history), session.index
        move(session)
        try:
            return self.view(session, engine)
        except Exception:
            session.history, session.index = history, index
            raise

    @guarded
    def export(self, state: Session | None) -> dict:
        """The picture (PNG), its label map (a palette PNG whose pixel values are the class ids) and w+."""
        session, engine = self.session(state)
        rendering = self.rendering(session, engine, session.current.wplus)
        files = write_rendering(self.scratch.folder(session.files_owner, "download"), rendering.image,
                                rendering.labels, engine.config.palette, session.current.wplus)
        return {self.c.history.downloads: [str(f) for f in files],
                self.c.picture.status: session.describe() + "  \nDownloads ready."}
