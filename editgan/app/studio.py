"""EditGAN Studio's browser app: the Gradio layout and its callbacks.

    from editgan.app import build_demo
    build_demo().launch(share=True)          # in a notebook; `python app.py` does the same from a shell

The callbacks are thin: they read the visitor's :class:`~editgan.session.Session` (kept in ``gr.State``: latents,
history, the visitor's own vectors; never a network), call the model from the process-wide engine registry and
turn the results into pictures. All the math is in the engine (``editgan.model``, ``editgan.labels``, ...).

The canvas: a 64-px label map is far too small to paint on, so the editor shows it enlarged ``k`` times with
nearest-neighbour upscaling, ``k = CANVAS_SIDE // longest side`` (8 for the 64-px toy faces, 16 for a 32-px model,
1 for 512 px and more). The paint layer comes back at the enlarged size; each k×k block of it becomes one label
pixel (painted when at least half the block is painted, with the block's most frequent painted class), and painted
colors snap to the nearest class color (``labels.downscale_paint``). The pictures beside it are enlarged the same
way, so what you see lines up pixel for pixel.
"""
import functools
import inspect
import logging
import math
import random
import tempfile
from pathlib import Path
from typing import Any, Callable, Sequence

import gradio as gr
import numpy as np
from PIL import Image, ImageDraw

from editgan.app.engines import ENGINES, EngineRegistry, model_key
from editgan.app.jobs import BackgroundJob, CancelFlags
from editgan.app.paint import difference_layer, downscale_paint, flatten_layers
from editgan.app.session import MAX_SLIDERS, Session
from editgan.assets import example_photos
from editgan.colors import colorize, hex_color
from editgan.engine.images import crop as crop_image
from editgan.engine.images import load_image, square_box
from editgan.engine.labels import apply_paint
from editgan.engine.model import EditGANModel, EditOutcome, Rendering
from editgan.errors import ModelLoadError
from editgan.modelio.hub import DEFAULT_MODEL, embedded_models
from editgan.modelio.vectors import EditingVector

log = logging.getLogger(__name__)

CANVAS_SIDE = 512
"""Pictures and the canvas are shown enlarged (nearest neighbour) so that their longest side is about this."""
EDITOR_HEIGHT = 640
EXAMPLE_SEEDS = (1, 2, 3, 4)
FIRST_SEED = 1
DEFAULT_EDIT_STEPS = 100
DEFAULT_EMBED_STEPS = 100
REFINE_CHOICES = (0, 10, 30)
PHOTO_SIDE = 1024
"""Uploaded photos are kept at most this large (longest side) for cropping and embedding."""
MAX_VECTOR_BYTES = 64 * 2**20
QUEUE_SIZE = 32
"""Requests waiting beyond this are turned away with a "queue is full" message."""
MODEL_EVENTS = {"concurrency_id": "model", "concurrency_limit": 1}
"""Every event that runs the model shares one slot, so one device is never oversubscribed."""


# -- errors: every failure reaches the visitor as a sentence, never a stack trace -----------------------------------
def _user_error(e: Exception) -> gr.Error:
    if isinstance(e, gr.Error):
        return e
    if isinstance(e, (ValueError, ModelLoadError)):  # ImageError, VectorError, SessionError, ConfigError, ...
        text = str(e).strip() or type(e).__name__
        return gr.Error(text[:1].upper() + text[1:], print_exception=False)
    log.exception("unexpected error in a callback")
    return gr.Error(f"Something went wrong ({type(e).__name__}: {e}). Your picture and its history are unchanged.")


def _guard(fn: Callable) -> Callable:
    """Turn any exception of a callback (plain or generator) into a gr.Error with a useful message."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def generator(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as e:
                raise _user_error(e) from e
        return generator

    @functools.wraps(fn)
    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            raise _user_error(e) from e
    return call


# -- pictures for display ----------------------------------------------------------------------------------------
def canvas_scale(height: int, width: int) -> int:
    """How many times pictures and the canvas are enlarged: CANVAS_SIDE // longest side, at least 1."""
    return max(1, CANVAS_SIDE // max(height, width))


def _enlarge(picture: np.ndarray, k: int) -> np.ndarray:
    return picture if k == 1 else np.repeat(np.repeat(picture, k, axis=0), k, axis=1)


def _blend(image: np.ndarray, colors: np.ndarray) -> np.ndarray:
    return ((image.astype(np.uint16) + colors.astype(np.uint16)) // 2).astype(np.uint8)


def _legend_html(engine: EditGANModel) -> str:
    config = engine.config
    if not engine.has_segmenter or not config.class_names:
        return "<p><em>No label classes: this model has no segmentation branch.</em></p>"
    items = []
    for name, color in zip(config.class_names, config.palette):
        items.append(
            f'<span class="legend-item" style="display:inline-flex;align-items:center;margin:2px 10px 2px 0">'
            f'<span style="display:inline-block;width:16px;height:16px;border:1px solid #888;margin-right:5px;'
            f'background:{hex_color(color)}"></span>{_escape(name)}</span>')
    return '<div id="legend-classes">' + "".join(items) + "</div>"


def _escape(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _crop_preview(photo: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    image = Image.fromarray(photo)
    scale = min(1.0, 512 / max(image.size))
    if scale < 1:
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.BILINEAR)
    shade = Image.new("RGBA", image.size, (0, 0, 0, 110))
    left, top, right, bottom = (round(v * scale) for v in box)
    ImageDraw.Draw(shade).rectangle((left, top, right - 1, bottom - 1), fill=(0, 0, 0, 0), outline=(255, 200, 0, 255),
                                    width=3)
    return np.asarray(Image.alpha_composite(image.convert("RGBA"), shade).convert("RGB"))


def _latent_file(folder: Path, name: str, data: np.ndarray) -> str:
    path = folder / name
    np.save(path, data)
    return str(path)


# -- the app -----------------------------------------------------------------------------------------------------
class Studio:
    """The callbacks, bound to one default model, device and engine registry."""

    def __init__(self, model: str | None = None, device: str | None = None,
                 engines: EngineRegistry | None = None):
        self.default_model = model_key(model)
        self.device = device
        self.engines = engines or ENGINES
        self.cancels = CancelFlags()
        self.c: Any = None  # the components, set by build_demo

    # -- helpers ----------------------------------------------------------------------------------------------
    def engine(self, model_id: str) -> EditGANModel:
        return self.engines.get(model_id, self.device)

    def session(self, state: Session | None) -> tuple[Session, EditGANModel]:
        session = state if isinstance(state, Session) else Session(self.default_model)
        return session, self.engine(session.model_id)

    @staticmethod
    def _key(request: gr.Request | None, session: Session) -> str:
        return getattr(request, "session_hash", None) or f"session-{id(session)}"

    def view(self, session: Session, engine: EditGANModel, rendering: Rendering | None = None, message: str = "",
             sliders: bool = True, model: bool = False) -> dict:
        """Every output that shows the session: pictures, canvas, comparison, history, sliders."""
        c = self.c
        out: dict = {c.state: session}
        status = session.describe() + (f"  \n{message}" if message else "")
        out[c.status] = status
        out[c.undo] = gr.Button(interactive=session.can_undo())
        out[c.redo] = gr.Button(interactive=session.can_redo())
        out[c.reset] = gr.Button(interactive=session.started)
        if model:
            out.update(self.model_view(engine))
        if not session.started:
            return out
        r = rendering if rendering is not None else engine.render(session.current.wplus)
        k = canvas_scale(*r.image.shape[:2])
        out[c.picture] = _enlarge(r.image, k)
        original = engine.render(session.original.wplus).image
        out[c.compare] = (_enlarge(original, k), _enlarge(r.image, k))
        if r.labels is not None:
            colors = _enlarge(colorize(r.labels, engine.config.palette), k)
            out[c.labels] = colors
            out[c.blend] = _blend(_enlarge(r.image, k), colors)
            out[c.editor] = self.editor_update(engine, {"background": colors, "layers": [], "composite": colors},
                                               brush=model)
        else:
            out[c.labels] = None
            out[c.blend] = None
            out[c.editor] = self.editor_update(engine, None, brush=model)
        if sliders:
            out.update(self.slider_updates(session, engine))
        return out

    def editor_update(self, engine: EditGANModel, value: dict | None, brush: bool) -> gr.ImageEditor:
        if not brush:
            return gr.ImageEditor(value=value)
        return gr.ImageEditor(value=value, brush=self.brush(engine), eraser=self.eraser(engine),
                              interactive=engine.has_segmenter)

    @staticmethod
    def brush(engine: EditGANModel | None) -> gr.Brush:
        palette = [hex_color(c) for c in engine.config.palette] if engine and engine.has_segmenter else ["#ff0000"]
        size = 2 * canvas_scale(*engine.config.box[2:]) if engine else 16
        return gr.Brush(colors=palette, default_color=palette[min(1, len(palette) - 1)], color_mode="fixed",
                        default_size=size)

    @staticmethod
    def eraser(engine: EditGANModel | None) -> gr.Eraser:
        return gr.Eraser(default_size=2 * canvas_scale(*engine.config.box[2:]) if engine else 16)

    def slider_updates(self, session: Session, engine: EditGANModel) -> dict:
        vectors = session.slider_vectors(engine.presets)
        values = session.slider_values()
        out = {}
        for i, slider in enumerate(self.c.sliders):
            if i < len(vectors):
                v = vectors[i]
                lo, hi = v.scale_range
                kind = "preset" if v.name in engine.presets else "your vector"
                out[slider] = gr.Slider(minimum=lo, maximum=hi, value=values.get(v.name, 0.0), step=0.05,
                                        label=v.display_name, info=f"{kind} {v.name}", visible=True)
            else:
                out[slider] = gr.Slider(value=0.0, visible=False)
        return out

    def model_view(self, engine: EditGANModel) -> dict:
        c = self.c
        return {c.legend: _legend_html(engine), c.model_info: self.model_info(engine),
                c.notice: gr.Markdown(value=self.notice(engine)),
                c.edit: gr.Button(interactive=engine.has_segmenter),
                c.truncation: gr.Slider(value=engine.config.truncation)}

    @staticmethod
    def model_info(engine: EditGANModel) -> str:
        cfg = engine.config
        height, width = cfg.box[2:]
        presets = ", ".join(v.display_name for v in engine.presets.values()) or "none"
        return (f"**{_escape(cfg.name)}** ({_escape(engine.source)}) · {width}×{height} px · "
                f"{cfg.n_classes} classes · presets: {_escape(presets)} · on {engine.device}")

    @staticmethod
    def notice(engine: EditGANModel) -> str:
        notes = []
        if not engine.has_segmenter:
            notes.append(f"**Mask editing is off for {_escape(engine.config.name)}**: this model has no segmentation "
                         "branch (no segmenter.safetensors), so it cannot tell which pixels belong to which class. "
                         "Sampling, embedding photos and applying vectors without refinement work.")
        if engine.encoder is None:
            notes.append("This model has no encoder: embedding a photo starts from the average latent, so give it "
                         "more steps.")
        return "  \n".join(notes)

    # -- starting points ----------------------------------------------------------------------------------------
    @_guard
    def start(self, state: Session | None) -> dict:
        """Page load: a first picture (the default model's seed 1) unless the session already has one.

        A model that cannot be loaded is reported as a warning and in the status line (not as an error, which would
        mark every output): the page stays usable to pick another model."""
        try:
            session, engine = self.session(state)
        except (ModelLoadError, ValueError) as e:
            message = str(_user_error(e).message)
            gr.Warning(message)
            return {self.c.status: f"Could not load the model: {message}  \nPick or type another model above."}
        if session.started:
            return self.view(session, engine, model=True)
        rendering = engine.sample(FIRST_SEED)
        session.start(rendering.wplus, f"sample (seed {FIRST_SEED})")
        return self.view(session, engine, rendering, model=True)

    @_guard
    def load_model(self, choice: str | None, progress: gr.Progress = gr.Progress()) -> dict:
        choice = (choice or "").strip() or DEFAULT_MODEL
        progress(0.05, desc=f"Loading {choice}…")
        engine = self.engines.get(choice, self.device, progress=lambda text: progress(0.3, desc=text))
        progress(0.9, desc="Drawing a first sample…")
        session = Session(model_key(choice))
        rendering = engine.sample(FIRST_SEED)
        session.start(rendering.wplus, f"sample (seed {FIRST_SEED})")
        out = self.view(session, engine, rendering, message=f"Loaded model {choice}.", model=True)
        out[self.c.seed] = FIRST_SEED
        return out

    @_guard
    def sample(self, state: Session | None, seed: float | None, truncation: float | None) -> dict:
        session, engine = self.session(state)
        seed = _seed(seed)
        truncation = engine.config.truncation if truncation is None else float(truncation)
        rendering = engine.sample(seed, truncation)
        session.start(rendering.wplus, f"sample (seed {seed}, truncation {truncation:g})")
        return self.view(session, engine, rendering)

    @_guard
    def random_sample(self, state: Session | None, truncation: float | None) -> dict:
        seed = random.randrange(2**31)
        out = self.sample(state, seed, truncation)
        out[self.c.seed] = seed
        return out

    @_guard
    def example_seed(self, state: Session | None, example: Sequence[Any] | None, truncation: float | None) -> dict:
        if not example:
            raise ValueError("pick one of the example seeds")
        out = self.sample(state, example[0], truncation)
        out[self.c.seed] = int(example[0])
        return out

    # -- photos -------------------------------------------------------------------------------------------------
    @_guard
    def upload_photo(self, state: Session | None, path: str | None) -> dict:
        session, _ = self.session(state)
        if not path:
            raise ValueError("no photo was uploaded")
        picture = load_image(path)  # ImageError with a clear message for bad files
        size = f"{picture.width}×{picture.height}"
        picture.thumbnail((PHOTO_SIDE, PHOTO_SIDE), Image.LANCZOS)
        if f"{picture.width}×{picture.height}" != size:
            size += f", downscaled to {picture.width}×{picture.height}"
        session.photo = np.asarray(picture)
        session.photo_name = Path(path).name
        c = self.c
        box = square_box(picture.width, picture.height)
        return {c.state: session, c.crop_preview: _crop_preview(session.photo, box), c.crop_size: 100,
                c.crop_x: 50, c.crop_y: 50,
                c.status: f"Photo {session.photo_name} ({size}): choose the square crop, then press Embed."}

    def _box(self, session: Session, size: float | None, x: float | None, y: float | None) -> tuple[int, ...]:
        if session.photo is None:
            raise ValueError("upload a photo first (or pick an example photo)")
        height, width = session.photo.shape[:2]
        return square_box(width, height, _fraction(size, 100), _fraction(x, 50), _fraction(y, 50))

    @_guard
    def crop_preview(self, state: Session | None, size: float | None, x: float | None, y: float | None) -> dict:
        session, _ = self.session(state)
        box = self._box(session, size, x, y)
        return {self.c.crop_preview: _crop_preview(session.photo, box)}

    @_guard
    def embed(self, state: Session | None, size: float | None, x: float | None, y: float | None,
              steps: float | None, request: gr.Request = None, progress: gr.Progress = gr.Progress()):
        session, engine = self.session(state)
        box = self._box(session, size, x, y)
        steps = _steps(steps, "embedding steps")
        picture = crop_image(Image.fromarray(session.photo), box)
        c = self.c
        yield {c.crop_preview: _crop_preview(session.photo, box)}
        key = self._key(request, session)
        flag = self.cancels.arm(key)
        job = BackgroundJob(lambda on_step: engine.embed(picture, steps, on_step=on_step,
                                                         should_stop=flag.is_set))
        try:
            for p in job.reports():
                progress((p.step, p.steps), desc="Embedding the photo", unit="steps")
                yield {c.picture: _enlarge(p.image, canvas_scale(*p.image.shape[:2])),
                       c.status: f"Embedding {session.photo_name}: step {p.step} of {p.steps}, loss {p.loss:.4f}"}
            outcome: EditOutcome = job.result()
        finally:
            self.cancels.release(key, flag)
            job.wait(60)
        session.start(outcome.wplus, f"photo {session.photo_name} (embedded, {len(outcome.losses)} steps)")
        yield self.view(session, engine, outcome, message=_finished("Embedding", outcome, steps))

    @_guard
    def example_photo(self, state: Session | None, example: Sequence[Any] | None, steps: float | None,
                      request: gr.Request = None, progress: gr.Progress = gr.Progress()):
        if not example or not example[0]:
            raise ValueError("pick one of the example photos")
        path = example[0]["path"] if isinstance(example[0], dict) else str(example[0])
        out = self.upload_photo(state, path)
        session = out[self.c.state]
        yield out
        yield from self.embed(session, 100, 50, 50, steps, request, progress)

    # -- editing ------------------------------------------------------------------------------------------------
    @_guard
    def edit(self, state: Session | None, canvas: dict | None, steps: float | None, request: gr.Request = None,
             progress: gr.Progress = gr.Progress()):
        session, engine = self.session(state)
        session.require_picture()
        if not engine.has_segmenter:
            raise ValueError(f"mask editing needs a segmentation branch, and model {engine.config.name!r} has none: "
                             f"sample, embed and apply vectors instead, or load a model with a segmenter")
        steps = _steps(steps, "edit steps")
        current = engine.render(session.current.wplus)
        painted, ids = self.painted(engine, current.labels, canvas)
        wanted = apply_paint(current.labels, painted, ids)
        c = self.c
        k = canvas_scale(*current.image.shape[:2])
        key = self._key(request, session)
        flag = self.cancels.arm(key)
        job = BackgroundJob(lambda on_step: engine.edit(session.current.wplus, wanted, painted, steps=steps,
                                                        name="edit", on_step=on_step, should_stop=flag.is_set))
        try:
            for p in job.reports():
                progress((p.step, p.steps), desc="Editing", unit="steps")
                yield {c.picture: _enlarge(p.image, k),
                       c.status: f"Editing: step {p.step} of {p.steps}, loss {p.loss:.4f} (Cancel keeps the best "
                                 f"result so far)"}
            outcome: EditOutcome = job.result()
        finally:
            self.cancels.release(key, flag)
            job.wait(60)
        classes = outcome.vector.classes if outcome.vector is not None else []
        names = ", ".join(engine.config.class_names[i] for i in classes if i < engine.config.n_classes)
        session.record_edit(outcome.wplus, classes, f"mask edit ({names or 'painted classes'}, "
                                                    f"{len(outcome.losses)} steps)")
        yield self.view(session, engine, outcome, message=_finished("Edit", outcome, steps))

    @staticmethod
    def painted(engine: EditGANModel, labels: np.ndarray, canvas: dict | None) -> tuple[np.ndarray, np.ndarray]:
        """The editor's value → (painted mask, class ids) at label-map resolution."""
        palette = engine.config.palette
        shape = labels.shape
        k = canvas_scale(*shape)
        if not canvas:
            raise ValueError("nothing painted: pick a class color and paint on the label map where it should change")
        layer = flatten_layers([x for x in (canvas.get("layers") or []) if x is not None])
        painted = np.zeros(shape, dtype=bool)
        ids = np.zeros(shape, dtype=np.int64)
        if layer is not None:
            painted, ids = downscale_paint(layer, shape, palette)
        if not painted.any() and canvas.get("composite") is not None:
            # a client that sends no layers: the paint is where its composite differs from its background
            background = canvas.get("background")
            if background is None:
                background = _enlarge(colorize(labels, palette), k)
            painted, ids = downscale_paint(difference_layer(np.asarray(canvas["composite"]), background), shape,
                                           palette)
        if not painted.any():
            raise ValueError(f"nothing painted: pick a class color and paint on the label map where it should change "
                             f"(each label pixel is {k}×{k} pixels on the canvas; strokes covering less than half of "
                             f"one are ignored)")
        return painted, ids

    @_guard
    def cancel(self, request: gr.Request = None) -> dict:
        key = getattr(request, "session_hash", None) or ""
        if not self.cancels.cancel(key):
            gr.Info("Nothing is running.")
            return {self.c.status: "Nothing to cancel: no edit or embedding is running."}
        return {self.c.status: "Cancelling: the best result so far is kept…"}

    # -- sliders and vectors ------------------------------------------------------------------------------------
    def _apply(self, session: Session, engine: EditGANModel, slots: Sequence[float | None], refine: int,
               on_step: Callable | None = None, should_stop: Callable | None = None
               ) -> tuple[EditOutcome, dict[str, float], list[int]]:
        session.require_picture()
        values = session.values_from_slots(slots, engine.presets)
        pairs = session.combination(values, engine.presets)
        outcome = engine.apply_vectors(session.current.base, pairs, refine_steps=refine, on_step=on_step,
                                       should_stop=should_stop)
        classes = sorted({c for v, _ in pairs for c in v.classes})
        return outcome, values, classes

    @_guard
    def slide(self, state: Session | None, *slots: float | None) -> dict:
        """Any slider moved: base + Σ scale·vector over all sliders, at once (no refinement)."""
        session, engine = self.session(state)
        outcome, values, classes = self._apply(session, engine, slots, 0)
        moved = ", ".join(f"{engine.presets[n].display_name if n in engine.presets else n} {v:+g}"
                          for n, v in values.items() if v)
        session.record_sliders(outcome.wplus, values, classes, action=f"sliders ({moved or 'all at 0'})")
        return self.view(session, engine, outcome, sliders=False)

    @_guard
    def refine(self, state: Session | None, refine_steps: Any, *slots: float | None, request: gr.Request = None,
               progress: gr.Progress = gr.Progress()):
        """The sliders' result polished by a few optimization steps over the classes their vectors touch."""
        session, engine = self.session(state)
        session.require_picture()
        try:
            refine = int(refine_steps)
        except (TypeError, ValueError):
            raise ValueError(f"refine steps must be one of {list(REFINE_CHOICES)}, got {refine_steps!r}") from None
        if refine not in REFINE_CHOICES:
            raise ValueError(f"refine steps must be one of {list(REFINE_CHOICES)}, got {refine}")
        if refine == 0:
            raise ValueError("refine steps is 0: choose 10 or 30 steps to polish the sliders' result")
        key = self._key(request, session)
        flag = self.cancels.arm(key)
        job = BackgroundJob(lambda on_step: self._apply(session, engine, slots, refine, on_step, flag.is_set))
        c = self.c
        try:
            for p in job.reports():
                progress((p.step, p.steps), desc="Refining", unit="steps")
                yield {c.picture: _enlarge(p.image, canvas_scale(*p.image.shape[:2])),
                       c.status: f"Refining: step {p.step} of {p.steps}"}
            outcome, values, classes = job.result()
        finally:
            self.cancels.release(key, flag)
            job.wait(60)
        session.record_sliders(outcome.wplus, values, classes, refined=True,
                               action=f"sliders refined ({len(outcome.losses)} steps)")
        yield self.view(session, engine, outcome, message=_finished("Refinement", outcome, refine))

    @_guard
    def save_vector(self, state: Session | None, name: str | None) -> dict:
        session, engine = self.session(state)
        name = (name or "").strip()
        if not name:
            raise ValueError("give the vector a name (letters, digits, '_', '-' or '.')")
        vector = session.edit_vector(name)
        vector.check_fits(engine.n_latent, engine.style_dim, engine.config.n_classes)
        session.add_vector(vector, engine.presets)
        path = vector.save(Path(tempfile.mkdtemp(prefix="editgan-vector-")) / f"{vector.name}.safetensors")
        out = self.view(session, engine, message=f"Saved the current edit as vector {vector.name!r}: it is now a "
                                                 f"slider, and its file is ready to download.")
        out[self.c.vector_file] = str(path)
        return out

    @_guard
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
    @_guard
    def undo(self, state: Session | None) -> dict:
        session, engine = self.session(state)
        session.undo()
        return self.view(session, engine)

    @_guard
    def redo(self, state: Session | None) -> dict:
        session, engine = self.session(state)
        session.redo()
        return self.view(session, engine)

    @_guard
    def reset(self, state: Session | None) -> dict:
        session, engine = self.session(state)
        session.reset()
        return self.view(session, engine)

    @_guard
    def export(self, state: Session | None) -> dict:
        """The edited picture (PNG), its label map (a palette PNG whose pixel values are the class ids) and w+."""
        session, engine = self.session(state)
        rendering = engine.render(session.current.wplus)
        folder = Path(tempfile.mkdtemp(prefix="editgan-export-"))
        files = []
        Image.fromarray(rendering.image).save(folder / "edited.png")
        files.append(str(folder / "edited.png"))
        if rendering.labels is not None:
            labels = Image.fromarray(rendering.labels.astype(np.uint8), "P")
            labels.putpalette([v for color in engine.config.palette for v in color])
            labels.save(folder / "labels.png")
            files.append(str(folder / "labels.png"))
        files.append(_latent_file(folder, "wplus.npy", session.current.wplus))
        return {self.c.downloads: files, self.c.status: session.describe() + "  \nDownloads ready."}


def _seed(value: Any) -> int:
    try:
        seed = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"the seed must be a whole number, got {value!r}") from None
    if not math.isfinite(seed) or seed != int(seed) or not 0 <= seed < 2**31:
        raise ValueError(f"the seed must be a whole number from 0 to {2**31 - 1}, got {value!r}")
    return int(seed)


def _steps(value: Any, what: str, limit: int = 2000) -> int:
    try:
        steps = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a whole number, got {value!r}") from None
    if not math.isfinite(steps) or steps != int(steps) or not 1 <= steps <= limit:
        raise ValueError(f"{what} must be a whole number from 1 to {limit}, got {value!r}")
    return int(steps)


def _fraction(percent: Any, default: float) -> float:
    value = default if percent is None else percent
    try:
        return float(value) / 100
    except (TypeError, ValueError):
        raise ValueError(f"crop values are percentages, got {percent!r}") from None


def _finished(what: str, outcome: EditOutcome, steps: int) -> str:
    final = f"final loss {outcome.losses[-1]:.4f}" if outcome.losses else "no steps run"
    if outcome.cancelled:
        return f"{what} cancelled after {len(outcome.losses)} of {steps} steps: kept the best result ({final})."
    return f"{what} done: {len(outcome.losses)} steps, {final}."


# -- layout --------------------------------------------------------------------------------------------------------
class _Components:
    """The components the callbacks read and update, by name."""


INTRO = """# EditGAN Studio
Draw a face (or embed a photo), **paint the label map** with a class color and press **Edit**: the picture changes
to match the paint, and nothing else moves. Preset sliders apply learned edits; save your own edits as vectors and
apply them to other pictures. Undo, redo and reset work over the whole history."""


def build_demo(model: str | None = None, device: str | None = None, engines: EngineRegistry | None = None,
               queue_size: int = QUEUE_SIZE) -> gr.Blocks:
    """The EditGAN Studio app. ``model``: an embedded model name, a Hub repo id or a folder (default: the embedded
    toy-faces model); ``device``: "cpu", "cuda", … (default: the best available). Call ``.launch()`` on the result."""
    studio = Studio(model, device, engines)
    engine, load_error = None, ""
    try:
        engine = studio.engine(studio.default_model)
    except Exception as e:  # the page still opens, says why, and lets people pick another model
        load_error = str(_user_error(e).message)
        log.warning("could not load the default model %s: %s", studio.default_model, load_error)
    photos = example_photos()
    if photos:
        gr.set_static_paths([str(photos[0].parent)])
    choices = list(dict.fromkeys([studio.default_model, *embedded_models()]))
    presets = list(engine.presets.values()) if engine else []
    c = _Components()
    studio.c = c

    with gr.Blocks(title="EditGAN Studio") as demo:
        c.state = gr.State(None)
        gr.Markdown(INTRO)
        with gr.Row(equal_height=True):
            c.model = gr.Dropdown(choices, value=studio.default_model, label="Model", allow_custom_value=True,
                                  info="An embedded model, a Hub repo id (owner/name) or a local folder", scale=3,
                                  elem_id="model")
            c.load = gr.Button("Load model", scale=1, elem_id="load-model")
            c.model_info = gr.Markdown(Studio.model_info(engine) if engine else f"**Model not loaded**: {load_error}",
                                       elem_id="model-info")
        c.notice = gr.Markdown(Studio.notice(engine) if engine else "", elem_id="notice")
        with gr.Row():
            with gr.Column(scale=1, min_width=320):
                with gr.Tab("Sample"):
                    c.seed = gr.Number(FIRST_SEED, label="Seed", precision=0, minimum=0, maximum=2**31 - 1,
                                       elem_id="seed")
                    with gr.Row():
                        c.sample = gr.Button("Sample", variant="primary", elem_id="sample")
                        c.dice = gr.Button("Random seed", elem_id="random")
                    c.truncation = gr.Slider(0, 1, value=engine.config.truncation if engine else 0.7, step=0.05,
                                             label="Truncation", info="lower: closer to the average face",
                                             elem_id="truncation")
                    c.seed_examples = gr.Dataset(components=[gr.Number(render=False)],
                                                 samples=[[s] for s in EXAMPLE_SEEDS], label="Example seeds",
                                                 elem_id="seed-examples")
                with gr.Tab("Photo"):
                    c.photo = gr.File(label="Upload a photo", file_types=["image"], type="filepath",
                                      elem_id="photo")
                    c.crop_preview = gr.Image(label="Square crop", interactive=False, format="png", height=260)
                    c.crop_size = gr.Slider(5, 100, value=100, step=1, label="Crop size (% of the shorter side)")
                    with gr.Row():
                        c.crop_x = gr.Slider(0, 100, value=50, step=1, label="Horizontal position (%)")
                        c.crop_y = gr.Slider(0, 100, value=50, step=1, label="Vertical position (%)")
                    c.embed_steps = gr.Slider(10, 500, value=DEFAULT_EMBED_STEPS, step=10, label="Embedding steps")
                    c.embed = gr.Button("Embed", variant="primary", elem_id="embed")
                    c.photo_examples = gr.Dataset(components=[gr.Image(render=False)],
                                                  samples=[[str(p)] for p in photos], label="Example photos",
                                                  elem_id="photo-examples", visible=bool(photos))
            with gr.Column(scale=3):
                with gr.Row():
                    c.picture = gr.Image(label="Image", interactive=False, format="png", elem_id="picture")
                    c.labels = gr.Image(label="Label map", interactive=False, format="png", elem_id="labels")
                    c.blend = gr.Image(label="Blend", interactive=False, format="png", elem_id="blend")
                c.legend = gr.HTML(_legend_html(engine) if engine else "", elem_id="legend")
                c.status = gr.Markdown(load_error and f"Could not load the model: {load_error}", elem_id="status")
        with gr.Row():
            with gr.Column(scale=3):
                gr.Markdown("### Paint the label map\nPick a class color (the palette holds exactly the classes), "
                            "paint where the picture should change, then press **Edit**. The eraser removes paint.")
                c.editor = gr.ImageEditor(
                    label="Label map (enlarged)", type="numpy", image_mode="RGBA", format="png",
                    sources=[], transforms=[], layers=False, brush=Studio.brush(engine),
                    eraser=Studio.eraser(engine), canvas_size=(CANVAS_SIDE, CANVAS_SIDE),
                    interactive=True, height=EDITOR_HEIGHT, elem_id="editor")
                with gr.Row():
                    c.edit_steps = gr.Slider(10, 500, value=DEFAULT_EDIT_STEPS, step=10, label="Edit steps",
                                             elem_id="edit-steps")
                    c.edit = gr.Button("Edit", variant="primary", elem_id="edit",
                                       interactive=bool(engine and engine.has_segmenter))
                    c.cancel = gr.Button("Cancel", variant="stop", elem_id="cancel")
            with gr.Column(scale=2):
                gr.Markdown("### Presets and your vectors\nEach slider adds its vector, scaled, to the picture the "
                            "sliders started from.")
                c.sliders = []
                for i in range(MAX_SLIDERS):
                    v = presets[i] if i < len(presets) else None
                    c.sliders.append(gr.Slider(v.scale_range[0] if v else -2, v.scale_range[1] if v else 2, value=0,
                                               step=0.05, label=v.display_name if v else f"Vector {i + 1}",
                                               info=f"preset {v.name}" if v else None, visible=v is not None,
                                               elem_id=f"slider-{i}"))
                with gr.Row():
                    c.refine_steps = gr.Radio(list(REFINE_CHOICES), value=REFINE_CHOICES[1], label="Refine steps",
                                              elem_id="refine-steps")
                    c.refine = gr.Button("Refine", elem_id="refine")
                with gr.Row():
                    c.vector_name = gr.Textbox(label="Vector name", placeholder="e.g. wider_smile",
                                               elem_id="vector-name")
                    c.save_vector = gr.Button("Save edit as vector", elem_id="save-vector")
                c.vector_file = gr.File(label="Saved vector (.safetensors)", interactive=False, height=90,
                                       elem_id="vector-file")
                c.vector_upload = gr.File(label="Upload a vector (.safetensors)", file_types=[".safetensors"],
                                          type="filepath", height=120, elem_id="vector-upload")
        with gr.Row():
            with gr.Column(scale=3):
                with gr.Row():
                    c.undo = gr.Button("↶ Undo", interactive=False, elem_id="undo")
                    c.redo = gr.Button("↷ Redo", interactive=False, elem_id="redo")
                    c.reset = gr.Button("Reset to the original", interactive=False, elem_id="reset")
                c.compare = gr.ImageSlider(label="Before / after", type="numpy", format="png", max_height=420,
                                           elem_id="compare")
            with gr.Column(scale=2):
                c.export = gr.Button("Prepare downloads", elem_id="export")
                c.downloads = gr.File(label="Edited image, label map, w+ latent", file_count="multiple",
                                      interactive=False, height=140, elem_id="downloads")

        view = [c.state, c.status, c.undo, c.redo, c.reset, c.picture, c.compare, c.labels, c.blend, c.editor,
                *c.sliders]
        model_outputs = [*view, c.legend, c.model_info, c.notice, c.edit, c.truncation, c.seed]
        photo_outputs = [c.state, c.status, c.crop_preview, c.crop_size, c.crop_x, c.crop_y]

        # progress and error badges go on the status line, so pictures and canvas stay visible on errors
        busy = {**MODEL_EVENTS, "show_progress_on": [c.status]}
        demo.load(studio.start, [c.state], model_outputs, api_name="start", **busy)
        c.load.click(studio.load_model, [c.model], model_outputs, api_name="load_model", **busy)
        c.sample.click(studio.sample, [c.state, c.seed, c.truncation], view, api_name="sample", **busy)
        c.dice.click(studio.random_sample, [c.state, c.truncation], [*view, c.seed], api_name="random_sample",
                     **busy)
        c.seed_examples.click(studio.example_seed, [c.state, c.seed_examples, c.truncation], [*view, c.seed],
                              api_name="example_seed", **busy)
        c.photo.upload(studio.upload_photo, [c.state, c.photo], photo_outputs, api_name="upload_photo",
                       show_progress_on=[c.status])
        gr.on([c.crop_size.input, c.crop_x.input, c.crop_y.input], studio.crop_preview,
              [c.state, c.crop_size, c.crop_x, c.crop_y], [c.crop_preview], api_name="crop_preview",
              trigger_mode="always_last", show_progress="hidden")
        c.embed.click(studio.embed, [c.state, c.crop_size, c.crop_x, c.crop_y, c.embed_steps],
                      [*view, c.crop_preview], api_name="embed", **busy)
        c.photo_examples.click(studio.example_photo, [c.state, c.photo_examples, c.embed_steps],
                               [*view, *photo_outputs[2:]], api_name="example_photo", **busy)
        c.edit.click(studio.edit, [c.state, c.editor, c.edit_steps], view, api_name="edit", **busy)
        c.cancel.click(studio.cancel, None, [c.status], api_name="cancel", concurrency_id="cancel",
                       concurrency_limit=None, show_progress="hidden")
        gr.on([s.input for s in c.sliders], studio.slide, [c.state, *c.sliders], view, api_name="slide",
              trigger_mode="always_last", show_progress="hidden", **MODEL_EVENTS)
        c.refine.click(studio.refine, [c.state, c.refine_steps, *c.sliders], view, api_name="refine", **busy)
        c.save_vector.click(studio.save_vector, [c.state, c.vector_name], [*view, c.vector_file],
                            api_name="save_vector", **busy)
        c.vector_upload.upload(studio.upload_vector, [c.state, c.vector_upload], view, api_name="upload_vector",
                               **busy)
        c.undo.click(studio.undo, [c.state], view, api_name="undo", **busy)
        c.redo.click(studio.redo, [c.state], view, api_name="redo", **busy)
        c.reset.click(studio.reset, [c.state], view, api_name="reset", **busy)
        c.export.click(studio.export, [c.state], [c.downloads, c.status], api_name="export", **busy)

    demo.queue(max_size=queue_size, default_concurrency_limit=1)
    demo.studio = studio  # for tests and notebooks: the callbacks and their session logic
    return demo
