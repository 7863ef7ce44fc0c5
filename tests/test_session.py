"""The studio's per-user state: history (undo/redo/reset), slider sums, the session's own vectors."""
from __future__ import annotations

import copy

import numpy as np
import pytest

from editgan.app.session import Session
from editgan.errors import SessionError
from editgan.modelio.vectors import EditingVector

SHAPE = (4, 3)


def latent(value: float) -> np.ndarray:
    return np.full(SHAPE, value, dtype=np.float32)


def vector(name: str, value: float, classes=(1,), scale_range=(-2, 2)) -> EditingVector:
    return EditingVector(name, latent(value), list(classes), scale_range=scale_range)


@pytest.fixture
def presets() -> dict[str, EditingVector]:
    return {"eyes": vector("eyes", 1.0, [2]), "mouth": vector("mouth", 10.0, [5], (-1, 1))}


def test_nothing_before_a_picture():
    s = Session("m")
    assert not s.started and not s.can_undo() and not s.can_redo()
    with pytest.raises(SessionError, match="no picture yet"):
        s.current
    with pytest.raises(SessionError, match="nothing to undo"):
        s.undo()
    with pytest.raises(SessionError, match="no picture"):
        s.reset()
    assert s.describe() == "No picture yet."


def test_undo_redo_and_a_new_step_drops_the_redo_steps():
    s = Session("m")
    s.start(latent(0), "sample")
    s.record_edit(latent(1), [3], "edit 1")
    s.record_edit(latent(2), [4], "edit 2")
    assert s.current.wplus[0, 0] == 2 and s.current.classes == (3, 4)
    assert s.undo().wplus[0, 0] == 1
    assert s.undo().wplus[0, 0] == 0
    with pytest.raises(SessionError, match="nothing to undo"):
        s.undo()
    assert s.redo().wplus[0, 0] == 1
    assert s.can_redo()
    s.record_edit(latent(5), [1], "edit 3")  # branches off: "edit 2" is gone
    assert not s.can_redo()
    with pytest.raises(SessionError, match="nothing to redo"):
        s.redo()
    assert [step.action for step in s.history] == ["sample", "edit 1", "edit 3"]
    assert "Step 3 of 3: edit 3" in s.describe()


def test_reset_is_a_step_that_can_be_undone():
    s = Session("m")
    s.start(latent(0), "sample")
    s.record_edit(latent(1), [3], "edit")
    s.reset()
    assert s.current.wplus[0, 0] == 0 and s.current.kind == "reset" and s.current.classes == ()
    assert s.undo().wplus[0, 0] == 1  # the edit is still in the history
    assert s.original.wplus[0, 0] == 0


def test_history_is_bounded_but_the_original_stays():
    s = Session("m", max_history=5)
    s.start(latent(0), "sample")
    for i in range(1, 20):
        s.record_edit(latent(i), [], f"edit {i}")
    assert len(s.history) == 5 and s.current.wplus[0, 0] == 19
    assert s.reset().wplus[0, 0] == 0


def test_start_begins_a_new_history_and_keeps_the_vectors(presets):
    s = Session("m")
    s.start(latent(0), "sample")
    s.record_edit(latent(1), [1], "edit")
    s.add_vector(vector("mine", 0.5), presets)
    s.start(latent(7), "sample 2")
    assert len(s.history) == 1 and s.original.wplus[0, 0] == 7 and not s.can_undo()
    assert "mine" in s.vectors


def test_rejected_latents_leave_the_session_unchanged():
    s = Session("m")
    s.start(latent(0), "sample")
    with pytest.raises(SessionError, match="does not fit"):
        s.record_edit(np.zeros((2, 2), np.float32), [], "bad")
    bad = latent(1)
    bad[0, 0] = np.nan
    with pytest.raises(SessionError, match="NaN"):
        s.record_edit(bad, [], "bad")
    assert len(s.history) == 1


def test_latents_are_copies():
    w = latent(0)
    s = Session("m")
    s.start(w, "sample")
    w[:] = 9
    assert s.current.wplus[0, 0] == 0


def slider_sum(s: Session, values, presets) -> np.ndarray:
    """What the sliders add to their base latent: Σ scale·vector over the session's combination."""
    total = np.zeros_like(s.current.base)
    for vector, scale in s.combination(values, presets):
        total += np.float32(scale) * vector.delta
    return total


def test_slider_sum_is_the_scaled_sum_of_all_sliders_from_their_base(presets):
    s = Session("m")
    s.start(latent(0), "sample")
    values = {"eyes": 0.5, "mouth": -0.25}
    assert np.allclose(slider_sum(s, values, presets), 0.5 * 1.0 - 0.25 * 10.0)
    pairs = s.combination({"eyes": 0.0, "mouth": 1.0}, presets)
    assert [(v.name, scale) for v, scale in pairs] == [("mouth", 1.0)]  # zero sliders add nothing


def test_slider_moves_collapse_into_one_step_from_the_same_base(presets):
    s = Session("m")
    s.start(latent(0), "sample")
    s.record_edit(latent(1), [3], "edit")
    s.record_sliders(latent(1.5), {"eyes": 0.5, "mouth": 0}, [2])
    s.record_sliders(latent(2.0), {"eyes": 1.0, "mouth": 0}, [2])
    s.record_sliders(latent(3.0), {"eyes": 1.0, "mouth": 0.5}, [2, 5])
    assert len(s.history) == 3
    step = s.current
    assert step.kind == "slide" and step.base[0, 0] == 1 and step.wplus[0, 0] == 3
    assert step.slider_values() == {"eyes": 1.0, "mouth": 0.5} and step.classes == (2, 3, 5)
    assert s.undo().wplus[0, 0] == 1  # one undo: back to before the sliders moved
    assert s.slider_values() == {}
    s.redo()
    s.record_sliders(latent(4.0), {"eyes": 1.0, "mouth": 0.5}, [2, 5], refined=True)
    assert s.current.kind == "refine" and len(s.history) == 4 and s.current.base[0, 0] == 1
    # a mask edit starts the sliders over from its result
    s.record_edit(latent(8), [1], "edit 2")
    assert s.current.base[0, 0] == 8 and s.slider_values() == {}


def test_slider_values_are_checked(presets):
    s = Session("m")
    s.start(latent(0), "sample")
    with pytest.raises(SessionError, match=r"within \[-1, 1\]"):
        s.combination({"mouth": 1.5}, presets)
    with pytest.raises(SessionError, match="finite"):
        s.combination({"eyes": float("nan")}, presets)
    with pytest.raises(SessionError, match="must be a number"):
        s.values_from_slots(["abc"], presets)
    with pytest.raises(SessionError, match="unknown vector 'nose'"):
        s.combination({"nose": 1.0}, presets)
    assert s.values_from_slots([0.5, None, 3.0, 4.0], presets) == {"eyes": 0.5, "mouth": 0.0}  # extra slots unused


def test_session_vectors_become_sliders_after_the_presets(presets):
    s = Session("m", max_sliders=3)
    s.start(latent(0), "sample")
    s.add_vector(vector("mine", 0.5), presets)
    assert [v.name for v in s.slider_vectors(presets)] == ["eyes", "mouth", "mine"]
    assert s.values_from_slots([0, 0, 1.5], presets) == {"eyes": 0, "mouth": 0, "mine": 1.5}
    assert np.allclose(slider_sum(s, {"mine": 2.0}, presets), 1.0)
    s.add_vector(vector("mine", 0.25), presets)  # same name: replaced, no new slot needed
    assert s.vectors["mine"].delta[0, 0] == 0.25
    with pytest.raises(SessionError, match="slider slots"):
        s.add_vector(vector("other", 0.5), presets)
    with pytest.raises(SessionError, match="preset"):
        s.add_vector(vector("eyes", 0.5), presets)


def test_the_current_edit_as_a_vector(presets):
    s = Session("m")
    s.start(latent(1), "sample")
    with pytest.raises(SessionError, match="nothing to save"):
        s.edit_vector("same")
    s.record_edit(latent(3), [4], "edit")
    s.record_sliders(latent(3.5), {"eyes": 0.5}, [2])
    v = s.edit_vector("my_edit")
    assert np.allclose(v.delta, 2.5) and v.classes == [2, 4] and v.name == "my_edit"
    with pytest.raises(SessionError, match="must be 1–64 letters"):
        s.edit_vector("bad name!")
    s.add_vector(v, presets)
    # it applies to another picture like any slider
    s.start(latent(10), "another sample")
    assert np.allclose(slider_sum(s, {"my_edit": 1.0}, presets), 2.5)


def test_a_session_survives_deepcopy_like_gradio_state():
    s = Session("m")
    s.start(latent(0), "sample")
    s.record_edit(latent(1), [1], "edit")
    t = copy.deepcopy(s)
    t.undo()
    assert s.current.wplus[0, 0] == 1 and t.current.wplus[0, 0] == 0


def test_background_jobs_stream_the_newest_report_and_return_or_raise():
    import threading

    from editgan.app.jobs import BackgroundJob, CancelFlags

    def work(on_step):
        for i in range(50):
            on_step(i)
        return "done"

    job = BackgroundJob(work)
    reports = list(job.reports(every=0))
    assert reports and reports[-1] <= 49 and reports == sorted(reports)
    assert job.result() == "done"

    def fail(on_step):
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        failing = BackgroundJob(fail)
        list(failing.reports())
        failing.result()

    flags = CancelFlags()
    assert not flags.cancel("a")  # nothing running
    flag = flags.arm("a")
    started = threading.Event()

    def until_stopped(on_step):
        started.set()
        steps = 0
        while not flag.is_set():
            steps += 1
            on_step(steps)
        return steps

    job = BackgroundJob(until_stopped)
    started.wait(5)
    assert flags.cancel("a")
    assert job.result() >= 1
    flags.release("a", flag)
    assert not flags.cancel("a")


def test_cancel_flags_are_files_and_a_job_releases_only_its_own(tmp_path):
    """Cancel is answered in the server's process and read by a job that may run in another (a ZeroGPU worker):
    the flags are files. A job that ends leaves a newer job of the same session armed."""
    from editgan.app.jobs import CancelFlags

    flags = CancelFlags(tmp_path)
    older = flags.arm("visitor")
    newer = flags.arm("visitor")
    flags.release("visitor", older)
    assert older.is_set() and not newer.is_set()
    assert CancelFlags(tmp_path).cancel("visitor")  # another process's view of the same folder
    assert newer.is_set()
    flags.release("visitor", newer)
    assert not flags.cancel("visitor") and list(tmp_path.iterdir()) == []
    assert not flags.cancel("../../etc/passwd") and list(tmp_path.iterdir()) == []  # keys only name hashes
