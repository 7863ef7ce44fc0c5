"""The studio on ZeroGPU, where each ``@spaces.GPU`` call runs in a forked worker process and its arguments and
results are pickled across (tests/fake_zerogpu.py does the same): the page's events still work end to end, the
session comes back with each answer, Cancel reaches a job running in the worker, the Teach tab trains."""
from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time

import gradio as gr
import numpy as np
import pytest
from fake_zerogpu import ForkingSpaces
from tiny_models import SIZE, tiny_generator_only_folder

from editgan.app import tab_turns, views
from editgan.app.engines import EngineRegistry, model_key
from editgan.colors import colorize
from editgan.networks.stylegan2 import Generator

K = views.canvas_scale(SIZE, SIZE)


@pytest.fixture
def zero_gpu(zero_gpu_with, tiny_model_dir):
    return zero_gpu_with(tiny_model_dir)


@pytest.fixture
def zero_gpu_with(monkeypatch):
    """A page on ZeroGPU for the model of a folder, and the fake ``spaces`` its calls run through."""
    return lambda folder: on_zero_gpu(monkeypatch, folder)


def on_zero_gpu(monkeypatch, folder):
    spaces = ForkingSpaces()
    monkeypatch.setitem(sys.modules, "spaces", spaces)
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    from editgan.app import build_demo

    demo = build_demo(model=str(folder), device="cpu", engines=EngineRegistry())
    page = Page(demo)
    # the server process has no GPU: while it answers the page's events, only the workers may run the generator
    server, synthesis = os.getpid(), Generator.synthesis

    def on_the_gpu_only(generator, *args, **kwargs):
        if page.serving and os.getpid() == server:
            raise AssertionError("the generator ran in the server process, which has no GPU on ZeroGPU")
        return synthesis(generator, *args, **kwargs)
    monkeypatch.setattr(Generator, "synthesis", on_the_gpu_only)
    return page, spaces


class Page:
    """Gradio's part of an event, as the page sees it: the event's function called with the page's values, its
    answer (a dict of components, or values in the order of the outputs) put back on the page; the session's
    state is whatever the last answer gave (the process that ran the call keeps nothing)."""

    def __init__(self, demo: gr.Blocks):
        self.demo, self.studio, self.teach = demo, demo.studio, demo.teach
        self.c = demo.studio.c
        self.state = None
        self.teach_state = None
        self.request = gr.Request(session_hash="visitor-1")
        self.serving = 0
        """Events being answered now (the test's own renderings, for what it expects, are not)."""
        self._serving_lock = threading.Lock()

    def cancel(self) -> str:
        """The Cancel button (no state, answered in the server's process)."""
        return next(f for f in self.demo.fns.values() if f.api_name == "ui_cancel").fn(self.request)

    def fire(self, api_name: str, *args, request: bool = False) -> dict:
        """The event's last answer, by component."""
        answers = list(self.stream(api_name, *args, request=request))
        return answers[-1]

    def stream(self, api_name: str, *args, request: bool = False):
        block_fn = next(f for f in self.demo.fns.values() if f.api_name == api_name)
        with self._serving_lock:
            self.serving += 1
        try:
            out = block_fn.fn(*args, self.request) if request else block_fn.fn(*args)
            for answer in (out if hasattr(out, "__next__") else [out]):
                shown = answer if isinstance(answer, dict) else dict(zip(block_fn.outputs, answer if isinstance(
                    answer, (list, tuple)) and len(block_fn.outputs) > 1 else [answer]))
                self.state = shown.get(self.c.state, self.state)
                self.teach_state = shown.get(self.teach.t.state, self.teach_state)
                yield shown
        finally:
            with self._serving_lock:
                self.serving -= 1


def canvas(page: Page, engine, cls: int, rows: slice) -> dict:
    labels = engine.render(page.state.current.wplus).labels
    background = views.enlarge(colorize(labels, engine.config.palette), K)
    layer = np.zeros((SIZE * K, SIZE * K, 4), np.uint8)
    layer[rows.start * K:rows.stop * K] = (*engine.config.palette[cls], 255)
    return {"background": background, "layers": [layer], "composite": background}


def test_the_studio_works_when_every_gpu_call_runs_in_a_worker_process(zero_gpu):
    page, spaces = zero_gpu
    c = page.c
    engine = page.studio.engine(page.studio.default_model)
    page.fire("ui_start", None)
    page.fire("ui_sample", page.state, 3, 0.7)
    sample = engine.sample(3, 0.7)
    assert np.array_equal(page.state.current.wplus, sample.wplus)
    slid = page.fire("ui_slide", page.state, 1.0, *[0.0] * 11)
    expected = engine.apply_vector(sample.wplus, "redder", 1.0)
    assert np.array_equal(slid[c.picture.picture], expected.image)
    # the label map comes with the picture: a slide's pending map could not wait in a session that is pickled
    assert np.array_equal(slid[c.picture.labels], colorize(expected.labels, engine.config.palette))
    page.fire("ui_slide_labels", page.state)  # the map came with the picture: this event only answers
    edited = page.fire("ui_edit", page.state, canvas(page, engine, 1, slice(0, SIZE // 2)), 5)
    assert "Edit done" in edited[c.picture.status] and len(page.state.history) == 3
    undone = page.fire("ui_undo", page.state)
    assert np.array_equal(undone[c.picture.picture], expected.image) and page.state.index == 1
    page.fire("ui_save_vector", page.state, "mine")
    assert list(page.state.vectors) == ["mine"]
    assert {"start", "sample", "slide_picture", "edit", "undo", "save_vector"} <= set(spaces.calls)
    assert "slide_labels" not in spaces.calls  # no GPU asked for nothing
    image, labels, wplus, info = page.fire("sample", 3, 0.7).values()  # the public API's endpoints too
    assert np.array_equal(np.load(wplus), sample.wplus) and info["seed"] == 3


def test_cancel_reaches_an_edit_running_in_a_worker_process(zero_gpu):
    page, _ = zero_gpu
    edit, answers = long_edit(page)
    assert "Cancelling" in page.cancel()
    edit.join(60)
    assert not edit.is_alive()
    status = answers[-1][page.c.picture.status]
    assert "cancelled after" in status and "of 2000 steps" in status


def test_teach_trains_in_a_worker_process_and_the_studio_edits_with_the_taught_branch(zero_gpu, tmp_path):
    page, _ = zero_gpu
    t = page.teach.t
    page.fire("ui_start", None)
    page.fire("ui_teach_classes", None, page.state, "background #000000\nsky #0000ff\nthing #ff0000")
    for seed in (1, 2):
        page.fire("ui_teach_sample", page.teach_state, page.state, seed, 0.7)
        layer = np.zeros((SIZE * K, SIZE * K, 4), np.uint8)
        layer[: SIZE // 2 * K] = (0, 0, 255, 255)
        page.fire("ui_teach_keep", page.teach_state, {"background": None, "layers": [layer], "composite": None})
    done = page.fire("ui_teach_train", page.teach_state, page.state, 2, 2)
    assert "Done." in done[t.status] and page.teach_state.taught_key
    assert page.state.model_id == page.teach_state.taught_key
    sampled = page.fire("ui_sample", page.state, 5, 0.7)  # another worker: the taught model loads from its folder
    assert sampled[page.c.picture.labels] is not None and "sample (seed 5" in sampled[page.c.picture.status]


def test_a_preset_saved_in_a_worker_stays_a_slider_in_the_next_calls(zero_gpu_with, tiny_model_dir, tmp_path):
    """The worker that saves a preset adds it to its own copy of the model; the next call's worker has the model
    as the server loaded it, so the session keeps the preset as its slider (and the folder has it for later)."""
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    page, _ = zero_gpu_with(folder)
    page.fire("ui_start", None)
    page.fire("ui_slide", page.state, 1.0, *[0.0] * 11)
    page.fire("ui_save_preset", page.state, "mine", "Mine", -2, 2, 0)
    shown = page.fire("ui_sample", page.state, 4, 0.7)
    assert [shown[slider].get("label") for slider in page.c.vectors.sliders[:2]] == ["Redder", "Mine"]
    assert "mine" in json.loads((folder / "config.json").read_text())["presets"][-1]["name"]


def in_background(page: Page, api_name: str, *args, request: bool = False) -> tuple[threading.Thread, list]:
    """An event started as the page starts one, answered in the background; its answers so far."""
    answers: list[dict] = []
    job = page.stream(api_name, *args, request=request)
    thread = threading.Thread(target=lambda: answers.extend(job), daemon=True)
    thread.start()
    return thread, answers


def long_edit(page: Page) -> tuple[threading.Thread, list]:
    """A first picture, then a 2000-step edit of it started in the background and under way (its first preview
    shown); the edit's answers so far."""
    engine = page.studio.engine(page.studio.default_model)
    page.fire("ui_start", None)
    edit, answers = in_background(page, "ui_edit", page.state, canvas(page, engine, 1, slice(0, SIZE)), 2000,
                                  request=True)
    wait_for(lambda: any("Editing: step" in str(a.get(page.c.picture.status)) for a in answers))
    return edit, answers


def wait_for(condition, seconds: float = 60) -> None:
    deadline = time.time() + seconds
    while not condition() and time.time() < deadline:
        time.sleep(0.05)
    assert condition()


def test_an_undo_pressed_during_an_edit_is_refused_and_nothing_is_lost(zero_gpu, monkeypatch):
    """Each call works on its own copy of the session: an undo run beside the edit would be undone by the edit's
    answer (or, on the copy from before the edit, find nothing to undo). It is refused in a sentence instead, after
    a short wait that holds none of the queue's places for long; what only reads the session answers at once."""
    monkeypatch.setattr(tab_turns, "TURN_WAIT_S", 0.2)
    page, _ = zero_gpu
    edit, answers = long_edit(page)
    with pytest.raises(gr.Error, match="previous action .* is still running: wait for it to finish, or press Cancel"):
        page.fire("ui_undo", page.state)
    assert page.fire("ui_brush_class", page.state, "reddish")  # reads the session only: no turn to wait for
    assert "Cancelling" in page.cancel()
    edit.join(60)
    assert "cancelled after" in answers[-1][page.c.picture.status]
    edited = len(page.state.history)
    page.fire("ui_slide", page.state, 1.0, *[0.0] * 11)  # the tab's turn is free again, on the edit's result
    assert len(page.state.history) == edited + 1


def test_an_annotation_kept_during_training_is_refused_and_kept_after_it(zero_gpu, monkeypatch):
    monkeypatch.setattr(tab_turns, "TURN_WAIT_S", 0.2)
    page, _ = zero_gpu
    page.fire("ui_start", None)
    page.fire("ui_teach_classes", None, page.state, "background #000000\nsky #0000ff\nthing #ff0000")
    layer = np.zeros((SIZE * K, SIZE * K, 4), np.uint8)
    layer[: SIZE // 2 * K] = (0, 0, 255, 255)
    painted = {"background": None, "layers": [layer], "composite": None}
    for seed in (1, 2, 3):
        page.fire("ui_teach_sample", page.teach_state, page.state, seed, 0.7)
        if seed < 3:  # the third stays on the canvas
            page.fire("ui_teach_keep", page.teach_state, painted)
    training, answers = in_background(page, "ui_teach_train", page.teach_state, page.state, 2, 100)
    wait_for(lambda: any("Training the branch" in str(a.get(page.teach.t.status)) for a in answers))
    with pytest.raises(gr.Error, match="is still running"):  # kept beside the training, the answer would drop it
        page.fire("ui_teach_keep", page.teach_state, painted)
    training.join(300)
    assert "Done." in answers[-1][page.teach.t.status]
    page.fire("ui_teach_keep", page.teach_state, painted)
    assert [s.key for s in page.teach_state.samples] == ["1", "2", "3"] and page.teach_state.taught_key


def test_another_visitor_does_not_wait_for_a_visitors_long_job(zero_gpu):
    page, _ = zero_gpu
    edit, answers = long_edit(page)
    other = Page(page.demo)
    other.fire("ui_start", None)
    sampled = other.fire("ui_sample", other.state, 8, 0.7)
    assert "sample (seed 8" in sampled[other.c.picture.status] and edit.is_alive()
    assert "Cancelling" in page.cancel()
    edit.join(60)
    assert "cancelled after" in answers[-1][page.c.picture.status]


def test_a_model_is_fetched_and_loaded_in_the_server_process_before_its_gpu_call(zero_gpu, tmp_path):
    """The download and the loading take no GPU time; workers forked after it have the model already."""
    page, spaces = zero_gpu
    folder = tiny_generator_only_folder(tmp_path / "gen")
    page.fire("ui_start", None)
    fetched = page.fire("ui_fetch_model", str(folder), page.state)
    assert "drawing a first sample" in fetched[page.c.picture.status] and "fetch_model" not in spaces.calls
    assert (model_key(str(folder)), "cpu") in page.studio.engines.loaded()  # in the server's registry
    loaded = page.fire("ui_load_model", str(folder), page.state)
    assert page.state.model_id == model_key(str(folder)) and "Loaded model" in loaded[page.c.picture.status]
    assert spaces.calls[-1] == "load_model"


def test_a_real_server_serves_the_page_with_each_gpu_call_in_a_worker(monkeypatch, tiny_model_dir, tmp_path):
    """Through Gradio itself (its queue, its state store, its post-processing of the answers a worker sent back)."""
    from gradio_client import Client, handle_file
    from PIL import Image
    from tiny_models import running_studio

    monkeypatch.setitem(sys.modules, "spaces", ForkingSpaces())
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    with running_studio(tiny_model_dir) as url:
        client = Client(url, verbose=False)
        sampled = client.predict(3, 0.7, api_name="/ui_sample")
        assert "sample (seed 3" in sampled[0]
        slid = client.predict(1.0, *[0.0] * 11, api_name="/ui_slide")
        assert "sliders" in slid[0] and slid[3] is not None  # the label map came with the picture
        background = slid[5]["value"]["background"] if slid[5].get("__type__") == "update" else slid[5]["background"]
        back = np.asarray(Image.open(background).convert("RGB"))
        layer = np.zeros((*back.shape[:2], 4), np.uint8)
        layer[: back.shape[0] // 2] = (255, 0, 0, 255)
        Image.fromarray(layer, "RGBA").save(tmp_path / "layer.png")
        edited = client.predict({"background": handle_file(background), "layers": [handle_file(
            str(tmp_path / "layer.png"))], "composite": handle_file(background)}, 10, api_name="/ui_edit")
        assert "Edit done" in edited[0]
        undone = client.predict(api_name="/ui_undo")
        assert "Step 2 of 3" in undone[0] and "step(s) to redo" in undone[0]
