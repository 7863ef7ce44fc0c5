"""A long job (edit, refinement) and what happens around it: a picture replaced while it runs, a cancel before it
found anything better. The visitor's history must say what the picture is."""
from __future__ import annotations

import gradio as gr
import numpy as np
import pytest
from tiny_models import SIZE

from editgan.app import build_demo, views
from editgan.app.components import FIRST_SEED
from editgan.app.engines import EngineRegistry
from editgan.app.jobs import TimeBudget
from editgan.colors import colorize
from editgan.errors import ScratchFullError
from editgan.networks.lpips import PixelMSELoss

K = views.canvas_scale(SIZE, SIZE)
SLIDERS_AT_ZERO = [0.0] * 11


@pytest.fixture()
def studio(tiny_model_dir):
    studio = build_demo(model=str(tiny_model_dir), device="cpu", engines=EngineRegistry()).studio
    studio.engine(studio.default_model).perceptual = PixelMSELoss()
    return studio


def reddish_everywhere(studio, session) -> dict:
    """A canvas that paints the 'reddish' class over all of 'other' on the session's picture."""
    engine = studio.engine(session.model_id)
    labels = studio.rendering(session, engine, session.current.wplus).labels
    background = views.enlarge(colorize(labels, engine.config.palette), K)
    layer = np.zeros((SIZE * K, SIZE * K, 4), np.uint8)
    layer[np.kron(labels == 0, np.ones((K, K), bool))] = (255, 0, 0, 255)
    return {"background": background, "layers": [layer], "composite": background}


def test_a_new_sample_during_an_edit_keeps_the_new_sample_and_drops_the_edit(studio):
    c = studio.c
    session, engine = studio.session(None)
    list(studio.sample(session, 5, 0.7))
    job = studio.edit(session, reddish_everywhere(studio, session), 30, None, lambda *args, **kwargs: None)
    assert "Editing: step" in next(job)[c.picture.status]
    list(studio.sample(session, 9, 0.7))  # the visitor draws another picture meanwhile
    *_, last = list(job)
    new = engine.sample(9, 0.7)
    assert [step.action for step in session.history] == ["sample (seed 9, truncation 0.7)"]
    assert np.array_equal(session.current.wplus, new.wplus) and np.array_equal(session.original.wplus, new.wplus)
    assert np.array_equal(last[c.picture.picture], new.image)
    assert "The picture changed while the edit ran" in last[c.picture.status]
    assert "not applied" in last[c.picture.status]


def test_undo_during_an_edit_keeps_the_step_undone_to(studio):
    c = studio.c
    session, engine = studio.session(None)
    list(studio.sample(session, 5, 0.7))
    list(studio.slide(session, 1.0, *SLIDERS_AT_ZERO))
    job = studio.edit(session, reddish_everywhere(studio, session), 30, None, lambda *args, **kwargs: None)
    next(job)
    studio.undo(session)
    *_, last = list(job)
    assert session.index == 0 and len(session.history) == 2  # the slider step is still there to redo
    assert np.array_equal(session.current.wplus, engine.sample(5, 0.7).wplus)
    assert "not applied" in last[c.picture.status]


def test_a_model_loaded_during_an_edit_stays_and_the_edit_is_dropped(studio):
    """Load runs beside a long job (its own queue): the edit of the old model's picture must not come back over
    the new model's session."""
    c = studio.c
    session, engine = studio.session(None)
    list(studio.sample(session, 5, 0.7))
    job = studio.edit(session, reddish_everywhere(studio, session), 30, None, lambda *args, **kwargs: None)
    next(job)
    loaded = studio.load_model(studio.default_model, session)
    assert loaded[c.state] is session  # the same session, started again on the model
    *_, last = list(job)
    assert [step.action for step in session.history] == [f"sample (seed {FIRST_SEED})"]
    assert last[c.state] is session and np.array_equal(session.current.wplus, engine.sample(FIRST_SEED).wplus)
    assert "another model" in last[c.picture.status] and "not applied" in last[c.picture.status]


def test_a_slider_moved_during_a_refinement_is_kept_and_the_refinement_dropped(studio):
    c = studio.c
    session, engine = studio.session(None)
    list(studio.sample(session, 5, 0.7))
    list(studio.slide(session, 1.0, *SLIDERS_AT_ZERO))
    job = studio.refine(session, 30, 1.0, *SLIDERS_AT_ZERO, None, lambda *args, **kwargs: None)
    assert "Refining: step" in next(job)[c.picture.status]
    list(studio.slide(session, -1.0, *SLIDERS_AT_ZERO))
    *_, last = list(job)
    assert [step.kind for step in session.history] == ["start", "slide"]
    assert session.current.slider_values() == {"redder": -1.0}
    assert "The picture changed while the refinement ran" in last[c.picture.status]
    finished = list(studio.refine(session, 10, -1.0, *SLIDERS_AT_ZERO, None, lambda *args, **kwargs: None))
    assert session.current.kind == "refine" and "Refinement done" in finished[-1][c.picture.status]


def test_an_edit_cancelled_before_anything_better_leaves_the_history_alone(studio, monkeypatch):
    c = studio.c
    session, _ = studio.session(None)
    list(studio.sample(session, 5, 0.7))
    before = session.current
    arm = studio.cancels.arm

    def pressed_at_once(key: str):  # Cancel pressed as the edit starts: no step runs
        flag = arm(key)
        assert studio.cancels.cancel(key)
        return flag
    monkeypatch.setattr(studio.cancels, "arm", pressed_at_once)
    *_, last = list(studio.edit(session, reddish_everywhere(studio, session), 200, None,
                                lambda *args, **kwargs: None))
    assert session.history == [before] and session.current is before
    status = last[c.picture.status]
    assert ("Edit cancelled after 0 of 200 steps, before finding anything better than the start: the picture and its "
            "history are unchanged.") in status


def test_an_edit_out_of_time_after_its_first_step_leaves_the_history_alone(studio, monkeypatch):
    """The first step's loss is the start's own: an edit stopped right after it has nothing better to keep."""
    c = studio.c
    session, _ = studio.session(None)
    list(studio.sample(session, 5, 0.7))
    before = session.current

    class OneStep(TimeBudget):
        asked = 0

        def over(self) -> bool:  # asked before every step: the second time, the time is up
            self.asked += 1
            self.ran_out = self.ran_out or self.asked > 1
            return self.ran_out
    monkeypatch.setattr(studio, "time_budget", lambda engine, steps: OneStep(1.0, "at the test's limit"))
    *_, last = list(studio.edit(session, reddish_everywhere(studio, session), 200, None,
                                lambda *args, **kwargs: None))
    assert session.history == [before]
    assert ("Edit stopped after 1 of 200 steps, at the test's limit, before finding anything better than the start"
            in last[c.picture.status])


@pytest.mark.parametrize("move", ["undo", "redo", "reset"])
def test_a_history_move_whose_picture_fails_leaves_the_history_where_the_page_is(studio, monkeypatch, move):
    session, engine = studio.session(None)
    list(studio.sample(session, 5, 0.7))
    list(studio.slide(session, 1.0, *SLIDERS_AT_ZERO))
    if move == "redo":
        studio.undo(session)
    history, index = list(session.history), session.index
    monkeypatch.setattr(studio, "rendering", lambda *args: (_ for _ in ()).throw(RuntimeError("out of memory")))
    with pytest.raises(gr.Error) as caught:
        getattr(studio, move)(session)
    assert caught.value.message == "Something went wrong on the server (RuntimeError). Try again, or reload the page."
    assert session.history == history and session.index == index
    monkeypatch.undo()
    getattr(studio, move)(session)  # and once the pictures can be drawn again, the move works
    assert session.index != index or len(session.history) != len(history)


def test_a_vector_whose_file_cannot_be_written_does_not_become_a_slider(studio, monkeypatch):
    session, _ = studio.session(None)
    list(studio.sample(session, 5, 0.7))
    list(studio.slide(session, 1.0, *SLIDERS_AT_ZERO))

    def full(owner: str, kind: str):
        raise ScratchFullError("the studio's space for visitors' files is full")
    monkeypatch.setattr(studio.scratch, "folder", full)
    with pytest.raises(gr.Error, match="space for visitors' files is full"):
        studio.save_vector(session, "mine")
    assert session.vectors == {}
    monkeypatch.undo()
    out = studio.save_vector(session, "mine")
    assert list(session.vectors) == ["mine"] and out[studio.c.vectors.saved_file].endswith("mine.safetensors")
