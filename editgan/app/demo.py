"""``build_demo()``: the page (:mod:`.components`), its events wired to the callbacks (:mod:`.studio`), the Teach
tab (:mod:`.teach_tab`) and the public API (:mod:`.api`).

    from editgan.app import build_demo, launch_options
    build_demo().launch(share=True, **launch_options())   # in a notebook; `python app.py` does the same
"""
from __future__ import annotations

import logging
from typing import Callable

import gradio as gr

from editgan.app.api import PublicApi, api_components, wire_public_api
from editgan.app.components import PAGE_CSS, Components, studio_layout
from editgan.app.engines import ENGINES, EngineRegistry, model_key
from editgan.app.gpu import QUICK_SECONDS, GpuRunner, gpu_runner, on_zero_gpu
from editgan.app.gradio_cache import install_whole_file_cache
from editgan.app.jobs import LABEL_JOBS, LOADS, LONG_JOBS, QUICK_JOBS, SESSION_JOBS
from editgan.app.policy import MAX_UPLOAD, SESSION_TTL_S, STATE_CAPACITY, Policy, offered_models
from editgan.app.renders import RenderCache
from editgan.app.scratch import ScratchSpace
from editgan.app.checks import user_error
from editgan.app.studio import Studio
from editgan.app.tab_turns import TabTurns
from editgan.app.teach_layout import teach_layout
from editgan.app.teach_tab import Teach, wire_teach
from editgan.assets import example_photos
from editgan.modelio.hub import embedded_models

log = logging.getLogger(__name__)

QUEUE_SIZE = 32
"""Requests waiting beyond this are turned away with a "queue is full" message."""
UI_EVENT = {"api_visibility": "undocumented"}
"""The page's own events: callable (the browser uses them) but not on the API page, which lists the public API."""
CACHE_SWEEP = (900, SESSION_TTL_S)
"""Gradio's copies of uploaded and served files: every 15 minutes, those older than a session's lifetime go."""


def launch_options() -> dict:
    """What ``demo.launch`` needs besides host, port and share: the upload limit, one-line errors for clients,
    a bounded number of sessions, the page's styles."""
    return {"max_file_size": MAX_UPLOAD, "show_error": True, "state_session_capacity": STATE_CAPACITY,
            "css": PAGE_CSS}


def build_demo(model: str | None = None, device: str | None = None, engines: EngineRegistry | None = None,
               queue_size: int = QUEUE_SIZE, public: bool = False, models: list[str] | None = None) -> gr.Blocks:
    """The EditGAN Studio app. ``model``: an embedded model name, a Hub repo id or a folder (default: the embedded
    toy-faces model); ``device``: "cpu", "cuda", … (default: the best available). ``public``: visitors may only
    pick among ``models`` (default: just ``model``) and messages name no server path. Launch the result with
    ``.launch(**launch_options())``."""
    engines = engines or ENGINES
    install_whole_file_cache()
    # first: on a ZeroGPU Space importing `spaces` patches torch so that the main process, which has no GPU, may put
    # the model on CUDA (each call moves it to the GPU it gets); the model's device is chosen after that
    gpu = gpu_runner()  # model work inside @spaces.GPU on a ZeroGPU Space; a plain call elsewhere
    default_model = model_key(model)
    policy = Policy(public, offered_models([str(model or default_model), *(models or [])]))
    choices = list(policy.offered) if public else list(dict.fromkeys([*policy.offered, *embedded_models()]))
    engine, load_error = None, ""
    try:
        engine = engines.get(default_model, device)
    except Exception as e:  # the page still opens, says why, and lets people pick another model
        load_error = str(user_error(e, policy).message)
        log.warning("could not load the default model %s: %s", default_model, load_error)
    photos = example_photos()
    if photos:
        gr.set_static_paths([str(photos[0].parent)])
    scratch = ScratchSpace(max_age_s=SESSION_TTL_S)

    with gr.Blocks(title="EditGAN Studio", delete_cache=CACHE_SWEEP) as demo:
        studio: Studio | None = None
        teach: Teach | None = None
        state = gr.State(None, time_to_live=SESSION_TTL_S,
                         delete_callback=lambda session: studio.end_session(session) if studio else None)
        teach_state = gr.State(None, time_to_live=SESSION_TTL_S,
                               delete_callback=lambda work: teach.end_session(work) if teach else None)
        with gr.Tab("Studio", elem_id="studio-tab"):
            c = studio_layout(engine, policy.name_of(default_model), choices, load_error, photos, not public, state)
        with gr.Tab("Teach", elem_id="teach-tab"):
            t = teach_layout(engine, public, teach_state)
        studio = Studio(c, engines, default_model, device, scratch, RenderCache(), policy)
        teach = Teach(t, studio)
        model_outputs = wire_studio(demo, studio, c, gpu)
        wire_teach(teach, c, model_outputs, gpu)
        wire_public_api(PublicApi(engines, default_model, device, scratch, policy), api_components(), gpu)

    gpu.blocks = demo.blocks  # answers from a ZeroGPU worker name the components by id
    if on_zero_gpu():  # each call there works on a copy of the session: a tab's events take turns
        TabTurns().wrap_all(demo)
    demo.queue(max_size=queue_size, default_concurrency_limit=1)
    demo.studio = studio  # for tests and notebooks: the callbacks and their session logic
    demo.teach = teach
    return demo


def wire_studio(demo: gr.Blocks, studio: Studio, c: Components, gpu: GpuRunner) -> list:
    """The page's events. Progress and error badges go on the status line, so pictures and canvas stay visible.
    Returns the outputs that show a (new) model, for the Teach tab's events that hand one over."""
    view = [c.state, c.picture.status, c.history.undo, c.history.redo, c.history.reset, c.picture.picture,
            c.history.compare, c.picture.labels, c.picture.blend, c.paint.editor, *c.vectors.sliders]
    model_outputs = [*view, c.model.model, c.paint.legend, c.paint.brush_class, c.model.info, c.model.notice,
                     c.paint.edit, c.sample.truncation, c.sample.seed]
    p = c.photo
    photo_outputs = [c.state, c.picture.status, p.crop_preview, p.crop_size, p.crop_x, p.crop_y]
    shown = {**UI_EVENT, "show_progress_on": [c.picture.status]}
    long, quick, session = {**LONG_JOBS, **shown}, {**QUICK_JOBS, **shown}, {**SESSION_JOBS, **shown}

    def on_gpu(fn: Callable, steps_at: int | None = None) -> Callable:
        """``fn`` run on the GPU asking for a quick action's time, or, for an optimization, what the step count
        (``fn``'s argument number ``steps_at``; the session is number 0) needs on the session's model."""
        if steps_at is None:
            return gpu(fn, QUICK_SECONDS)
        return gpu(fn, lambda *args, **_: studio.gpu_seconds(args[0], args[steps_at]))

    # session work answers from the session and the renderings kept in this process; on ZeroGPU the renderings were
    # made in the workers, so the session work that shows a picture runs there too
    drawing = on_gpu if on_zero_gpu() else (lambda fn: fn)
    # a slide's label map comes with its picture on ZeroGPU (Studio.picture_first_s): its second event only answers
    drawn_maps = (lambda fn: fn) if on_zero_gpu() else on_gpu

    demo.load(on_gpu(studio.start), [c.state], model_outputs, api_name="ui_start", **quick)
    if on_zero_gpu():  # the download and the loading outside the GPU call's time, then the first sample in it
        c.model.load.click(studio.fetch_model, [c.model.model, c.state], [c.picture.status],
                           api_name="ui_fetch_model", **LOADS, **shown
                           ).success(gpu(studio.load_model), [c.model.model, c.state], model_outputs,
                                     api_name="ui_load_model", **LOADS, **shown)
    else:
        c.model.load.click(gpu(studio.load_model), [c.model.model, c.state], model_outputs,
                           api_name="ui_load_model", **LOADS, **shown)
    s = c.sample
    s.sample.click(on_gpu(studio.sample), [c.state, s.seed, s.truncation], view, api_name="ui_sample", **quick)
    s.dice.click(on_gpu(studio.random_sample), [c.state, s.truncation], [*view, s.seed], api_name="ui_random_sample",
                 **quick)
    s.examples.click(on_gpu(studio.example_seed), [c.state, s.examples, s.truncation], [*view, s.seed],
                     api_name="ui_example_seed", **quick)
    p.upload.upload(studio.upload_photo, [c.state, p.upload], photo_outputs, api_name="ui_upload_photo", **session)
    gr.on([p.crop_size.input, p.crop_x.input, p.crop_y.input], studio.crop_preview,
          [c.state, p.crop_size, p.crop_x, p.crop_y], [p.crop_preview], api_name="ui_crop_preview",
          trigger_mode="always_last", show_progress="hidden", **SESSION_JOBS, **UI_EVENT)
    p.embed.click(on_gpu(studio.embed, steps_at=4), [c.state, p.crop_size, p.crop_x, p.crop_y, p.steps],
                  [*view, p.crop_preview], api_name="ui_embed", **long)
    p.examples.click(on_gpu(studio.example_photo, steps_at=2), [c.state, p.examples, p.steps],
                     [*view, *photo_outputs[2:], p.upload], api_name="ui_example_photo", **long)
    e = c.paint
    e.brush_class.input(studio.pick_brush_class, [c.state, e.brush_class], [e.editor], api_name="ui_brush_class",
                        show_progress="hidden", **SESSION_JOBS, **UI_EVENT)
    gr.on([e.steps.release, p.steps.release], studio.steps_typed, None, None, api_name="ui_steps_typed",
          show_progress="hidden", **SESSION_JOBS, **UI_EVENT)
    e.edit.click(on_gpu(studio.edit, steps_at=2), [c.state, e.editor, e.steps], view, api_name="ui_edit", **long)
    e.cancel.click(studio.cancel, None, [e.cancel_reply], api_name="ui_cancel", concurrency_id="cancel",
                   concurrency_limit=None, show_progress="hidden", **UI_EVENT)
    v = c.vectors
    # the picture ends the event, so the next value of a dragged slider is not held back behind this one's label map
    gr.on([slider.input for slider in v.sliders], on_gpu(studio.slide_picture), [c.state, *v.sliders], view,
          api_name="ui_slide", trigger_mode="always_last", show_progress="hidden", **QUICK_JOBS, **UI_EVENT
          ).success(drawn_maps(studio.slide_labels), [c.state], view, api_name="ui_slide_labels",
                    trigger_mode="always_last", show_progress="hidden", **LABEL_JOBS, **UI_EVENT)
    v.refine.click(on_gpu(studio.refine, steps_at=1), [c.state, v.refine_steps, *v.sliders], view,
                   api_name="ui_refine", **long)
    v.save.click(drawing(studio.save_vector), [c.state, v.name], [*view, v.saved_file], api_name="ui_save_vector",
                 **session)
    v.upload.upload(drawing(studio.upload_vector), [c.state, v.upload], view, api_name="ui_upload_vector", **session)
    r = c.preset
    r.save.click(drawing(studio.save_preset),
                 [c.state, v.name, r.display_name, r.scale_min, r.scale_max, r.refine_steps],
                 [*view, c.model.info], api_name="ui_save_preset", **session)
    h = c.history
    h.undo.click(drawing(studio.undo), [c.state], view, api_name="ui_undo", **session)
    h.redo.click(drawing(studio.redo), [c.state], view, api_name="ui_redo", **session)
    h.reset.click(drawing(studio.reset), [c.state], view, api_name="ui_reset", **session)
    h.export.click(drawing(studio.export), [c.state], [h.downloads, c.picture.status], api_name="ui_export", **session)
    return model_outputs
