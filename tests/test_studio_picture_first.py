"""The studio shows a new picture as soon as it is drawn, its label map following with a 'segmenting' status,
when the model's label map is slow (forced here on the tiny model); a fast one gets a single update."""
from __future__ import annotations

import contextlib
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pytest
from tiny_models import SIZE

from editgan.app import build_demo, views
from editgan.app.engines import EngineRegistry
from editgan.colors import colorize
from editgan.networks.lpips import PixelMSELoss

K = views.canvas_scale(SIZE, SIZE)


@pytest.fixture()
def studio(tiny_model_dir):
    studio = build_demo(model=str(tiny_model_dir), device="cpu", engines=EngineRegistry()).studio
    studio.picture_first_s = 0.0  # every label map counts as slow
    return studio


def shows(out: dict, studio, rendering) -> None:
    """``out`` shows ``rendering``: its picture, its label map, the canvas on the map, no 'segmenting' left."""
    c, palette = studio.c, studio.engine(studio.default_model).config.palette
    colors = colorize(rendering.labels, palette)  # pictures at the model's size, the canvas enlarged
    assert np.array_equal(out[c.picture.picture], rendering.image)
    assert np.array_equal(out[c.picture.labels], colors)
    assert out[c.paint.editor] is not None  # the canvas gets the map back (as a file, once postprocessed)
    assert "Segmenting" not in out[c.picture.status]


def picture_only(out: dict, studio, image: np.ndarray) -> None:
    c = studio.c
    assert np.array_equal(out[c.picture.picture], image)
    assert "Segmenting" in out[c.picture.status]
    assert out[c.picture.labels] is None and out[c.picture.blend] is None and out[c.paint.editor] is None


def test_a_sample_shows_its_picture_then_its_label_map(studio):
    c = studio.c
    session, engine = studio.session(None)
    first, last = list(studio.sample(session, 5, 0.7))
    expected = engine.sample(5, 0.7)
    picture_only(first, studio, expected.image)
    assert first[c.state] is session and np.array_equal(session.current.wplus, expected.wplus)
    assert "sample (seed 5" in first[c.picture.status]
    before, after = first[c.history.compare]  # a new start: it is its own original
    assert np.array_equal(before, after)
    shows(last, studio, expected)
    cached = studio.renders.get(session.model_id, expected.wplus)  # kept once whole, never without its map
    assert cached is not None and np.array_equal(cached.labels, expected.labels)

    for outs in (list(studio.random_sample(session, 0.7)), list(studio.example_seed(session, [7], 0.7))):
        assert len(outs) == 2 and outs[0][c.sample.seed] == outs[1][c.sample.seed]
        shows(outs[1], studio, engine.sample(outs[1][c.sample.seed], 0.7))


def test_a_slider_shows_its_picture_then_its_label_map(studio):
    c = studio.c
    session, engine = studio.session(None)
    list(studio.sample(session, 5, 0.7))
    first, last = list(studio.slide(session, 1.5, *[0.0] * 11))
    expected = engine.apply_vector(engine.sample(5, 0.7).wplus, "redder", 1.5)
    picture_only(first, studio, expected.image)
    assert np.array_equal(first[c.history.compare][0], engine.sample(5, 0.7).image)
    assert "sliders" in first[c.picture.status]
    shows(last, studio, expected)
    assert np.array_equal(session.current.wplus, expected.wplus)


def test_an_edit_shows_its_result_then_its_label_map(studio):
    c = studio.c
    session, engine = studio.session(None)
    engine.perceptual = PixelMSELoss()
    list(studio.sample(session, 5, 0.7))
    labels = engine.sample(5, 0.7).labels
    background = views.enlarge(colorize(labels, engine.config.palette), K)
    layer = np.zeros((SIZE * K, SIZE * K, 4), np.uint8)
    layer[np.kron(labels == 0, np.ones((K, K), bool))] = (255, 0, 0, 255)  # 'reddish' over all of 'other'
    canvas = {"background": background, "layers": [layer], "composite": background}
    outs = list(studio.edit(session, canvas, 20, None, lambda *args, **kwargs: None))
    assert len(session.history) == 2, "the edit found something better than the start"
    result = engine.render(session.current.wplus)
    picture_only(outs[-2], studio, result.image)
    assert "Edit" in outs[-2][c.picture.status]
    shows(outs[-1], studio, result)


def test_a_fast_label_map_comes_with_its_picture_in_one_update(tiny_model_dir):
    studio = build_demo(model=str(tiny_model_dir), device="cpu", engines=EngineRegistry()).studio
    studio.picture_first_s = 60.0  # the tiny model's map takes milliseconds, and still under 60 s on a loaded CI host
    session, engine = studio.session(None)
    engine.sample(1)  # the engine has measured its label map
    assert engine.label_map_s < studio.picture_first_s
    expected = engine.sample(5, 0.7)
    slid = engine.apply_vector(expected.wplus, "redder", 1.0)
    turns = count_turns(engine)
    (only,) = list(studio.sample(session, 5, 0.7))
    shows(only, studio, expected)
    # picture and map in one device turn: under load, a second turn would queue again behind every other visitor
    assert turns.count == 1
    (only,) = list(studio.slide(session, 1.0, *[0.0] * 11))
    shows(only, studio, slid)
    assert turns.count == 2


def count_turns(engine) -> SimpleNamespace:
    """Counts the engine's device turns from now on (``.count``)."""
    turns = SimpleNamespace(count=0)
    hold = engine.turns.hold

    @contextlib.contextmanager
    def counted():
        turns.count += 1
        with hold():
            yield
    engine.turns.hold = counted
    return turns


def test_a_newer_slide_cuts_short_the_label_map_of_an_older_one(studio, monkeypatch):
    """Dragging a slider on a slow model: the next value's picture does not wait for the last value's map."""
    import functools
    import threading
    import time

    c = studio.c
    session, engine = studio.session(None)
    list(studio.sample(session, 5, 0.7))
    segmenter = engine.segmenter
    monkeypatch.setattr(segmenter, "forward", functools.partial(segmenter.forward, chunk=64))  # 16 bands of 2 rows
    band_done = threading.Event()
    bands: list[float] = []
    logits_at = segmenter.logits_at

    def slow_band(*args, **kwargs):
        time.sleep(0.3)  # a 4.8-s map
        bands.append(time.monotonic())
        band_done.set()
        return logits_at(*args, **kwargs)

    monkeypatch.setattr(segmenter, "logits_at", slow_band)
    older = studio.slide(session, 1.5, *[0.0] * 11)
    picture_only(next(older), studio, engine.apply_vector(engine.sample_latent(5, 0.7), "redder", 1.5,
                                                          label_map=False).image)
    older_wplus = session.current.wplus.copy()
    rest: list = []
    worker = threading.Thread(target=lambda: rest.extend(older))
    worker.start()
    assert band_done.wait(10)
    asked = time.monotonic()
    newer = studio.slide(session, 0.5, *[0.0] * 11)
    first = next(newer)
    answered = time.monotonic()
    worker.join(10)
    assert rest == [], "the out-of-date label map was given up, not shown"
    assert answered - asked < 2.0 and len(bands) < 16
    assert studio.renders.get(session.model_id, older_wplus) is None  # the cache keeps complete renderings only
    monkeypatch.setattr(segmenter, "logits_at", logits_at)
    expected = engine.apply_vector(engine.sample(5, 0.7).wplus, "redder", 0.5)
    picture_only(first, studio, expected.image)
    (last,) = list(newer)
    shows(last, studio, expected)
    assert c.picture.labels in last


def test_the_pages_slide_ends_with_its_picture_and_its_label_map_follows(studio):
    """In the page a slide is two events: the picture (which ends the slider's event, so that Gradio sends the
    next value of a dragged slider at once) and then the label map, of the latest slide only."""
    session, engine = studio.session(None)
    list(studio.sample(session, 5, 0.7))
    start = engine.sample(5, 0.7).wplus
    older = engine.apply_vector(start, "redder", 1.5)
    picture_only(studio.slide_picture(session, 1.5, *[0.0] * 11), studio, older.image)
    shows(studio.slide_labels(session), studio, older)
    assert studio.slide_labels(session) == {studio.c.state: session}  # nothing left to show
    studio.slide_picture(session, 1.0, *[0.0] * 11)
    newer = engine.apply_vector(start, "redder", 0.5)
    picture_only(studio.slide_picture(session, 0.5, *[0.0] * 11), studio, newer.image)
    shows(studio.slide_labels(session), studio, newer)
    assert studio.renders.get(session.model_id, engine.apply_vector(start, "redder", 1.0).wplus) is None
    picture_only(studio.slide_picture(session, 1.5, *[0.0] * 11), studio, older.image)
    with pytest.raises(gr.Error, match="scale"):
        studio.slide_picture(session, 1e9, *[0.0] * 11)  # refused: the label map asked for before still comes
    shows(studio.slide_labels(session), studio, older)


def test_slides_left_without_their_label_map_keep_feature_maps_only_within_a_bound(studio):
    """A visitor who never sends a slide's second event (a closed tab, an API client) must not leave the generator's
    feature maps in its session: at most the bound is kept over all sessions; a map asked for later still comes."""
    engine = studio.engine(studio.default_model)
    first, second = studio.session(None)[0], studio.session(None)[0]
    for session in (first, second):
        list(studio.sample(session, 5, 0.7))
    start = engine.sample(5, 0.7).wplus
    studio.slide_picture(first, 1.5, *[0.0] * 11)
    parked = studio.parked.get(first.files_owner)
    assert parked is not None and parked.features is not None
    studio.parked.max_size = parked.features_bytes  # room for one slide's feature maps
    studio.slide_picture(second, 0.5, *[0.0] * 11)
    assert parked.features is None, "the least recently parked let its feature maps go"
    assert studio.parked.get(second.files_owner).features is not None
    shows(studio.slide_labels(first), studio, engine.apply_vector(start, "redder", 1.5))  # drawn again
    shows(studio.slide_labels(second), studio, engine.apply_vector(start, "redder", 0.5))
    assert len(studio.parked) == 0 and studio.parked.size == 0  # a map computed is a slide no longer parked
    studio.slide_picture(first, 1.0, *[0.0] * 11)
    studio.slide_picture(first, 0.5, *[0.0] * 11)  # the older slide, superseded, is given up and forgotten
    assert len(studio.parked) == 1
