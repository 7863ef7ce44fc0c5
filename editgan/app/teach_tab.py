"""The Teach tab: name the classes, annotate samples on the canvas (brush, eraser, fill), import or export the
annotations, train a segmentation branch in the background and hand it to the Studio tab; save the model folder.

The builder (:mod:`.teach_layout`) only makes components; :class:`Teach` holds the callbacks, which keep the
visitor's :class:`~editgan.app.teach_work.TeachWork` in its own ``gr.State``, call the teach engine
(:mod:`editgan.teach`) and show results through :mod:`editgan.app.teach_views`; :func:`wire_teach` connects them.
A taught model is written to the visitor's scratch space and served from the engine registry under that folder's
key, so the Studio tab (and a reload of the page's session) uses it at once.

Public mode: visitors teach within smaller limits, the taught model stays in their session's scratch space (gone
when the session ends) and "Save the model folder" gives a zip to download instead of writing a server folder.
"""
from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import Any, Callable

import gradio as gr
import numpy as np

from editgan.app import teach_views, views
from editgan.app.components import Components, brush_size
from editgan.app.engines import model_key
from editgan.app.gpu import QUICK_SECONDS, TRAIN_SECONDS, GpuRunner
from editgan.app.jobs import LONG_JOBS, QUICK_JOBS, SESSION_JOBS, CancelFlags, run_cancellable
from editgan.app.paint import decode_canvas
from editgan.app.checks import checked_seed, checked_truncation, checked_whole, guarded
from editgan.app.studio import Studio
from editgan.app.teach_files import pack_folder, unpack_upload
from editgan.app.teach_layout import LIMITS, PUBLIC_LIMITS, TeachTab
from editgan.app.teach_work import Draft, TeachWork
from editgan.colors import hex_color
from editgan.engine.model import EditGANModel, Picture
from editgan.errors import TeachCancelled
from editgan.teach.annotations import AnnotationSet, load_annotations, write_annotations
from editgan.teach.branch import PARTIAL_EVERY_S, TeachOptions, TeachProgress, save_taught_model, teach_branch
from editgan.teach.templates import get_template, template_names

log = logging.getLogger(__name__)

UI_EVENT = {"api_visibility": "undocumented"}
PREVIEW_SEEDS = (100_001, 100_002)
"""New samples (not annotated ones) that the preview shows with the taught branch's label maps: with the classifiers
trained so far while the branch trains (after the first, then every few seconds), then with the whole branch."""


class Teach:
    """The tab's callbacks. ``studio`` gives the visitor's model (the Studio tab's) and shows a taught one there."""

    def __init__(self, tab: TeachTab, studio: Studio):
        self.t = tab
        self.studio = studio
        self.policy = studio.policy
        self.scratch = studio.scratch
        self.limits = PUBLIC_LIMITS if self.policy.public else LIMITS
        self.cancels = CancelFlags()
        self.partial_every_s = PARTIAL_EVERY_S
        """The least time between two previews of a partial branch while one trains."""

    # -- helpers ------------------------------------------------------------------------------------------------
    def work(self, tstate: TeachWork | None) -> TeachWork:
        return tstate if isinstance(tstate, TeachWork) else TeachWork(self.limits["samples"])

    def end_session(self, tstate: TeachWork | None) -> None:
        if isinstance(tstate, TeachWork):
            self.scratch.remove(tstate.files_owner)

    def model(self, state: Any) -> EditGANModel:
        return self.studio.session(state)[1]

    def brush(self, work: TeachWork, engine: EditGANModel | None, name: str | None = None) -> gr.Brush:
        colors = [hex_color(c) for c in work.palette] or ["#ff0000"]
        default = colors[work.class_id(name)] if name in work.class_names else colors[min(1, len(colors) - 1)]
        return gr.Brush(colors=colors, default_color=default, color_mode="fixed", default_size=brush_size(engine))

    def classes_view(self, work: TeachWork, engine: EditGANModel | None, message: str) -> dict:
        t = self.t
        names = work.class_names
        out = {t.state: work, t.status: message, t.legend: views.class_swatches(names, work.palette),
               t.classes: teach_views.classes_text(names, work.palette),
               t.brush_class: gr.Dropdown(choices=names, value=names[min(1, len(names) - 1)] if names else None)}
        out.update(self.samples_view(work))
        canvas = None
        if work.draft is not None:
            out.update(self.draft_view(work))
            canvas = out[t.editor]
        out[t.editor] = gr.ImageEditor(value=canvas, brush=self.brush(work, engine),
                                       eraser=gr.Eraser(default_size=brush_size(engine)))
        return out

    def draft_view(self, work: TeachWork, message: str | None = None) -> dict:
        t = self.t
        draft = work.require_draft()
        k = views.canvas_scale(*draft.labels.shape)
        # enlarged here, not by the page as the Studio's pictures are: a click on these fills, and Gradio (6.x) maps
        # a click to image pixels with a display scale capped at 1, so on a picture the page enlarged it is wrong
        out = {t.state: work, t.editor: teach_views.canvas_value(draft.image, draft.labels, work.palette, k),
               t.picture: views.enlarge(draft.image, k),
               t.labels: teach_views.label_picture(draft.labels, work.palette, k),
               t.uncertainty: teach_views.heat_map(draft.uncertainty, k)}
        if message is not None:
            out[t.status] = message
        return out

    def samples_view(self, work: TeachWork, selected: str | None = None) -> dict:
        keys = [s.key for s in work.samples]
        return {self.t.samples: teach_views.samples_markdown(work.samples, work.class_names),
                self.t.sample_key: gr.Dropdown(choices=keys, value=selected if selected in keys else None)}

    def commit_paint(self, work: TeachWork, canvas: dict | None) -> int:
        """The canvas's paint into the draft's label map; how many label pixels it set."""
        draft = work.require_draft()
        k = views.canvas_scale(*draft.labels.shape)
        painted, ids = decode_canvas(canvas, draft.labels, work.palette, k, require=False)
        work.paint(painted, ids)
        return int(painted.sum())

    def new_draft(self, work: TeachWork, engine: EditGANModel, picture: Picture, labels: np.ndarray | None,
                  seed: int | None, name: str | None) -> Draft:
        """A draft on ``picture`` (drawn without its label map); without ``labels``, the model's prediction when its
        branch has the work's classes (the visitor only corrects it), else all background. The uncertainty map
        comes with a branch."""
        wplus, image = picture.wplus, picture.image
        predicted = None
        unsure = None
        if engine.has_segmenter and list(engine.config.class_names) == work.class_names:
            if labels is None:
                predicted = engine.segment(picture).labels
            measure = "disagreement" if len(engine.segmenter.members) > 1 else "entropy"
            unsure = engine.uncertainty(wplus, measure)
        if labels is None:
            labels = predicted if predicted is not None else np.zeros(image.shape[:2], np.int64)
        return work.start(Draft(seed, name, np.asarray(wplus, np.float32), image, np.asarray(labels, np.int64),
                                unsure))

    # -- 1 · classes --------------------------------------------------------------------------------------------
    @guarded
    def template_classes(self, name: str | None) -> str:
        if not name:
            raise ValueError(f"pick a template: {', '.join(template_names())}")
        template = get_template(name)
        return teach_views.classes_text(template.class_names, template.palette)

    @guarded
    def model_class_list(self, state: Any) -> str:
        engine = self.model(state)
        if not engine.has_segmenter:
            raise ValueError(f"model {engine.config.name!r} has no segmentation branch and so no classes: start "
                             f"from a template or write your own")
        return teach_views.classes_text(engine.config.class_names, engine.config.palette)

    @guarded
    def put_class(self, text: str | None, name: str | None, color: str | None) -> dict:
        """A class added to the list's text, or recoloured there, by name and the colour picker."""
        new_text, added = teach_views.put_class(text, name, teach_views.picked_color(color))
        name = " ".join((name or "").split())
        return {self.t.classes: new_text,
                self.t.status: f"{'Added' if added else 'Recoloured'} class {name} in the list: press "
                               f"**Set these classes** to use it."}

    @guarded
    def set_classes(self, tstate: TeachWork | None, state: Any, text: str | None) -> dict:
        work = self.work(tstate)
        names, palette = teach_views.parse_classes(text)
        work.set_classes(names, palette)
        engine = self.model(state)
        return self.classes_view(work, engine, f"{len(names)} classes set. Draw a sample and paint its label map.")

    @guarded
    def pick_class(self, tstate: TeachWork | None, state: Any, name: str | None) -> gr.ImageEditor:
        work = self.work(tstate)
        work.class_id(name)
        return gr.ImageEditor(brush=self.brush(work, self.model(state), name))

    # -- 2 · annotate -------------------------------------------------------------------------------------------
    @guarded
    def sample(self, tstate: TeachWork | None, state: Any, seed: Any, truncation: Any) -> dict:
        work = self.work(tstate)
        work.require_classes()
        engine = self.model(state)
        seed = checked_seed(seed)
        truncation = checked_truncation(truncation, engine.config.truncation)
        draft = self.new_draft(work, engine, engine.sample_picture(seed, truncation), None, seed, None)
        start = "the branch's prediction: correct it" if draft.labels.any() else "all background: paint every part"
        note = "" if draft.uncertainty is not None else " (the uncertainty map appears once there is a branch)"
        out = self.draft_view(work, f"Sample {seed} (truncation {truncation:g}): the label map starts as {start}"
                                    f"{note}. Keep it when done.")
        out[self.t.seed] = seed
        return out

    @guarded
    def next_sample(self, tstate: TeachWork | None, state: Any, seed: Any, truncation: Any) -> dict:
        seed = checked_seed(seed)
        return self.sample(tstate, state, (seed + 1) % 2**31, truncation)

    def _fill(self, tstate: TeachWork | None, canvas: dict | None, name: str | None, tolerance: Any,
              evt: gr.SelectData | None, source: str) -> dict:
        work = self.work(tstate)
        draft = work.require_draft()
        class_id = work.class_id(name)
        tolerance = checked_whole(tolerance, "fill tolerance", 0, 255)
        index = getattr(evt, "index", None)
        if not isinstance(index, (list, tuple)) or len(index) != 2:
            raise ValueError("click inside the picture or the label map to fill a region")
        k = views.canvas_scale(*draft.labels.shape)
        height, width = draft.labels.shape
        x, y = (checked_whole(v, "the clicked point", 0, 1 << 16) // k for v in index)
        if not (0 <= x < width and 0 <= y < height):
            raise ValueError("click inside the picture or the label map to fill a region")
        self.commit_paint(work, canvas)
        before = draft.labels.copy()
        work.fill(x, y, class_id, tolerance, source)
        changed = int((before != draft.labels).sum())
        what = f"pixels of alike colour (tolerance {tolerance})" if source == "picture" else "pixels of one class"
        return self.draft_view(work, f"Filled {changed} label pixels at ({x}, {y}) with {name} ({what}).")

    @guarded
    def fill_picture(self, tstate: TeachWork | None, canvas: dict | None, name: str | None, tolerance: Any,
                     evt: gr.SelectData) -> dict:
        return self._fill(tstate, canvas, name, tolerance, evt, "picture")

    @guarded
    def fill_labels(self, tstate: TeachWork | None, canvas: dict | None, name: str | None, tolerance: Any,
                    evt: gr.SelectData) -> dict:
        return self._fill(tstate, canvas, name, tolerance, evt, "labels")

    @guarded
    def keep(self, tstate: TeachWork | None, canvas: dict | None) -> dict:
        work = self.work(tstate)
        painted = self.commit_paint(work, canvas)
        sample = work.keep()
        out = self.draft_view(work, f"Kept sample {sample.key} ({painted} label pixels painted since the last "
                                    f"fill). {len(work.samples)} annotated: draw another, or train.")
        out.update(self.samples_view(work, sample.key))
        return out

    @guarded
    def open_sample(self, tstate: TeachWork | None, state: Any, key: str | None) -> dict:
        work = self.work(tstate)
        sample = work.sample(key)
        engine = self.model(state)
        self.new_draft(work, engine, engine.draw(sample.wplus), sample.labels.copy(), sample.seed, sample.name)
        out = self.draft_view(work, f"Opened sample {sample.key}: paint, then keep it again to replace it.")
        if sample.seed is not None:
            out[self.t.seed] = sample.seed
        return out

    @guarded
    def delete_sample(self, tstate: TeachWork | None, key: str | None) -> dict:
        work = self.work(tstate)
        sample = work.sample(key)
        work.delete(sample.key)
        out = {self.t.state: work, self.t.status: f"Deleted sample {sample.key}."}
        out.update(self.samples_view(work))
        return out

    # -- import / export ----------------------------------------------------------------------------------------
    @guarded
    def import_files(self, tstate: TeachWork | None, state: Any, files: Any) -> dict:
        work = self.work(tstate)
        paths = [files] if isinstance(files, (str, Path)) else list(files or [])
        paths = [p if isinstance(p, (str, Path)) else getattr(p, "path", None) or str(p) for p in paths]
        engine = self.model(state)
        folder = unpack_upload(paths, self.scratch.folder(work.files_owner, "import"), work.max_samples)
        annotations = load_annotations(folder, engine)  # every file checked; seed samples get their w+
        annotations.truncation = None  # each sample now carries its w+
        work.replace_annotations(annotations)
        message = (f"Imported {len(annotations.samples)} annotated samples over {annotations.n_classes} classes. "
                   f"Train, or open a sample to correct it.")
        return self.classes_view(work, engine, message)

    @guarded
    def export(self, tstate: TeachWork | None) -> dict:
        work = self.work(tstate)
        annotations = work.require_classes()
        if not annotations.samples:
            raise ValueError("there are no annotated samples to export yet")
        root = self.scratch.folder(work.files_owner, "export")
        folder = write_annotations(root / "annotations", annotations)
        archive = pack_folder(folder, root / "annotations.zip")
        return {self.t.download: str(archive),
                self.t.status: f"Exported {len(annotations.samples)} annotated samples and classes.json."}

    # -- 3 · train ----------------------------------------------------------------------------------------------
    @guarded
    def train(self, tstate: TeachWork | None, state: Any, members: Any, epochs: Any, request: gr.Request = None,
              progress: gr.Progress = gr.Progress()):
        work = self.work(tstate)
        annotations = work.require_classes()
        if len(annotations.samples) < 1:
            raise ValueError("keep at least one annotated sample before training (a few dozen teach well)")
        members = checked_whole(members, "ensemble size", *self.limits["members"])
        epochs = checked_whole(epochs, "epochs", *self.limits["epochs"])
        session, engine = self.studio.session(state)
        self.scratch.check_room()  # the taught model needs a folder: refused now, not after minutes of training
        work.model_name = work.model_name or f"{engine.config.name}-taught"
        options = TeachOptions(members=members, epochs=epochs, agreement_folds=min(4, len(annotations.samples)))
        training = AnnotationSet(annotations.class_names, annotations.palette, list(annotations.samples))
        previews: list = []  # (classifiers, pictures), the newest last; appended by the training's thread

        def show_branch(taught: EditGANModel, count: int = members) -> None:
            previews.append((count, [(r.image, r.labels) for r in (taught.sample(s) for s in PREVIEW_SEEDS)]))

        def work_fn(on_step: Callable, should_stop: Callable[[], bool]):
            return teach_branch(engine, training, options, on_step, should_stop, work.model_name, show_branch,
                                show_branch, self.partial_every_s)

        key = getattr(request, "session_hash", None) or f"teach-{id(work)}"
        k = views.canvas_scale(*engine.config.box[2:])
        shown = 0
        yield {self.t.status: f"Training on {len(training.samples)} samples: {members} classifiers × {epochs} "
                              f"epochs, then the held-out check…", self.t.report: ""}
        reports = run_cancellable(self.cancels, key, work_fn)
        try:
            while True:
                try:
                    p: TeachProgress = next(reports)
                except StopIteration as done:
                    taught, report = done.value
                    break
                progress(p.fraction, desc="Teaching")
                out = {self.t.status: teach_views.training_line(p)}
                if len(previews) > shown:
                    shown = len(previews)
                    out[self.t.preview] = teach_views.preview_strip(previews[-1][1], work.palette, k)
                if previews:
                    out[self.t.status] += f" · preview: {teach_views.preview_note(previews[-1][0], members)}"
                yield out
        except TeachCancelled:
            yield {self.t.status: "Training cancelled: nothing changed (the Studio tab keeps its model)."}
            return
        # a folder of its own: the previous taught model (still the Studio's until this one is saved) goes after
        folder = save_taught_model(taught, self.scratch.folder(work.models_owner, f"taught-{secrets.token_hex(4)}")
                                   / _folder_name(taught))
        previous, work.taught_key = work.taught_key, self.studio.engines.put(str(folder), taught, self.studio.device)
        if previous and self.scratch.holds(previous):
            self.scratch.discard(Path(previous).parent)
        work.report = report.summary()
        out = self.studio.show_model(session, work.taught_key,
                                     f"Taught a branch for {taught.config.name}: mask editing works now.")
        done = work.report[0][:1].upper() + work.report[0][1:]
        out.update({self.t.state: work, self.t.status: f"Done. {done}. The Studio tab uses the new branch now.",
                    self.t.report: "  \n".join(work.report),
                    self.t.preview: teach_views.preview_strip(previews[-1][1] if previews else
                                                              [(r.image, r.labels) for r in
                                                               (taught.sample(s) for s in PREVIEW_SEEDS)],
                                                              work.palette, k)})
        yield out

    @guarded
    def cancel(self, request: gr.Request = None) -> None:
        key = getattr(request, "session_hash", None) or ""
        if not self.cancels.cancel(key):
            gr.Info("Nothing to cancel: no training is running.")
        else:
            gr.Info("Cancelling the training…")

    # -- save ---------------------------------------------------------------------------------------------------
    @guarded
    def save_folder(self, tstate: TeachWork | None, state: Any, out: str | None, overwrite: Any) -> dict:
        work = self.work(tstate)
        if not work.taught_key:
            raise ValueError("train a branch first: there is no taught model to save")
        if not (Path(work.taught_key) / "config.json").is_file():
            raise ValueError("the taught model is no longer kept on the server (it went unused for a long while, or "
                             "the server restarted): train it again")
        taught = self.studio.engine(work.taught_key)
        if self.policy.public:
            root = self.scratch.folder(work.files_owner, "model-zip")
            archive = pack_folder(Path(work.taught_key), root / f"{_folder_name(taught)}.zip")
            return {self.t.saved: str(archive),
                    self.t.status: f"The model folder of {taught.config.name} is ready to download (zip)."}
        target = (out or "").strip()
        if not target:
            raise ValueError("name the model folder to write, e.g. models/my-model")
        folder = save_taught_model(taught, Path(target).expanduser(), overwrite=bool(overwrite))
        key = model_key(str(folder.resolve()))
        result = self.studio.show_model(state, key, f"Loaded the saved model folder {folder.name}.")
        result.update({self.t.status: f"Saved {taught.config.name} to {folder} and loaded it back in the Studio tab.",
                       self.t.state: work})
        work.taught_key = key
        return result


def _folder_name(model: EditGANModel) -> str:
    name = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in model.config.name).strip("._") or "model"
    return name[:64]


def wire_teach(teach: Teach, studio_c: Components, model_outputs: list, gpu: GpuRunner) -> None:
    """The tab's events. Training is a long job; the rest are quick or session work."""
    t, s = teach.t, studio_c.state
    quick, session, long = ({**QUICK_JOBS, **UI_EVENT}, {**SESSION_JOBS, **UI_EVENT}, {**LONG_JOBS, **UI_EVENT})
    draft = [t.state, t.status, t.editor, t.picture, t.labels, t.uncertainty]
    classes = [*draft, t.legend, t.classes, t.brush_class, t.samples, t.sample_key]
    t.use_template.click(teach.template_classes, [t.template], [t.classes], api_name="ui_teach_template", **session)
    t.model_classes.click(teach.model_class_list, [s], [t.classes], api_name="ui_teach_model_classes", **session)
    t.put_class.click(teach.put_class, [t.classes, t.class_name, t.class_color], [t.classes, t.status],
                      api_name="ui_teach_put_class", **session)
    t.apply_classes.click(teach.set_classes, [t.state, s, t.classes], classes, api_name="ui_teach_classes",
                          **session)
    t.brush_class.input(teach.pick_class, [t.state, s, t.brush_class], [t.editor], api_name="ui_teach_brush",
                        show_progress="hidden", **session)
    t.sample.click(gpu(teach.sample, QUICK_SECONDS), [t.state, s, t.seed, t.truncation], [*draft, t.seed],
                   api_name="ui_teach_sample", **quick)
    t.next_seed.click(gpu(teach.next_sample, QUICK_SECONDS), [t.state, s, t.seed, t.truncation], [*draft, t.seed],
                      api_name="ui_teach_next", **quick)
    fill_inputs = [t.state, t.editor, t.brush_class, t.tolerance]
    t.picture.select(teach.fill_picture, fill_inputs, draft, api_name="ui_teach_fill_picture", **session)
    t.labels.select(teach.fill_labels, fill_inputs, draft, api_name="ui_teach_fill_labels", **session)
    t.keep.click(teach.keep, [t.state, t.editor], [*draft, t.samples, t.sample_key], api_name="ui_teach_keep",
                 **session)
    t.open.click(gpu(teach.open_sample, QUICK_SECONDS), [t.state, s, t.sample_key], [*draft, t.seed],
                 api_name="ui_teach_open", **quick)
    t.delete.click(teach.delete_sample, [t.state, t.sample_key], [t.state, t.status, t.samples, t.sample_key],
                   api_name="ui_teach_delete", **session)
    t.upload.upload(gpu(teach.import_files), [t.state, s, t.upload], classes, api_name="ui_teach_import", **quick)
    t.export.click(teach.export, [t.state], [t.download, t.status], api_name="ui_teach_export", **session)
    t.train.click(gpu(teach.train, TRAIN_SECONDS), [t.state, s, t.members, t.epochs],
                  [t.state, t.status, t.preview, t.report, *model_outputs], api_name="ui_teach_train",
                  show_progress_on=[t.status], **long)
    t.cancel.click(teach.cancel, None, None, api_name="ui_teach_cancel", concurrency_id="teach-cancel",
                   concurrency_limit=None, show_progress="hidden", **UI_EVENT)
    t.save.click(gpu(teach.save_folder), [t.state, s, t.out_folder, t.overwrite],
                 [t.state, t.status, t.saved, *model_outputs], api_name="ui_teach_save", **long)

