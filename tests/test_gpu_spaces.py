"""ZeroGPU: with the ``spaces`` package the model's callbacks run inside ``@spaces.GPU``; without it, plain calls.
Each asks for the GPU time its work needs: little for a quick action, by its step count for an optimization."""
from __future__ import annotations

import functools
import inspect
import sys

import gradio as gr
import pytest

from editgan.app import gpu
from editgan.app.gpu import gpu_runner


def test_without_spaces_callbacks_are_plain_calls(monkeypatch):
    monkeypatch.setitem(sys.modules, "spaces", None)  # import spaces → ImportError

    def fn():
        return 1

    assert gpu_runner()(fn) is fn


class FakeSpaces:
    """``spaces.GPU`` as the package offers it: ``GPU(fn)`` (60 s) or ``GPU(duration=seconds or function)(fn)``; a
    duration function is called with the call's own arguments. Records what each call asked for."""

    def __init__(self):
        self.wrapped: list[str] = []
        self.asked: list[tuple[str, int]] = []

    def GPU(self, fn=None, duration=60):  # noqa: N802 — the decorator's name in the spaces package
        if fn is None:
            return functools.partial(self.GPU, duration=duration)
        self.wrapped.append(fn.__name__)

        @functools.wraps(fn)
        def run(*args, **kwargs):
            self.asked.append((fn.__name__, duration(*args, **kwargs) if callable(duration) else duration))
            return fn(*args, **kwargs)
        return run


@pytest.fixture
def spaces_demo(monkeypatch, tiny_model_dir):
    fake = FakeSpaces()
    monkeypatch.setitem(sys.modules, "spaces", fake)
    from editgan.app import build_demo
    from editgan.app.engines import EngineRegistry

    demo = build_demo(model=str(tiny_model_dir), device="cpu", engines=EngineRegistry())
    return demo, fake


def test_with_spaces_every_model_callback_runs_inside_spaces_gpu(spaces_demo):
    demo, fake = spaces_demo
    model_work = {"start", "sample", "edit", "embed", "slide_picture", "slide_labels", "refine", "load_model",
                  "apply_presets", "train"}
    assert model_work <= set(fake.wrapped)
    assert not {"undo", "redo", "export_session", "upload_photo"} & set(fake.wrapped)  # no GPU for session work
    studio = demo.studio
    session, _ = studio.session(None)
    out = call(demo, "ui_sample", session, 3, 0.7)  # the wrapped callback still works
    assert "sample (seed 3" in out[studio.c.picture.status]


def call(demo, api_name: str, *args):
    """An event's function called as Gradio calls it: positional inputs, then its own defaults; the last output."""
    fn = next(f for f in demo.fns.values() if f.api_name == api_name).fn
    out = fn(*args)
    return list(out)[-1] if inspect.isgenerator(out) else out


def test_quick_actions_ask_for_a_short_time_and_optimizations_for_their_steps(spaces_demo):
    demo, fake = spaces_demo
    session, engine = demo.studio.session(None)
    call(demo, "ui_sample", session, 3, 0.7)
    call(demo, "ui_slide", session, *[0.5] * len(demo.studio.c.vectors.sliders))
    assert fake.asked == [("sample", gpu.QUICK_SECONDS), ("slide_picture", gpu.QUICK_SECONDS)]

    fake.asked.clear()
    size = engine.generator.size
    for steps in (100, 2000):
        with pytest.raises(gr.Error, match="paint"):  # nothing painted: the callback's own message, after the ask
            call(demo, "ui_edit", session, None, steps)
    assert fake.asked == [("edit", gpu.job_seconds(size, 100)), ("edit", gpu.job_seconds(size, 2000))]
    assert gpu.QUICK_SECONDS < gpu.job_seconds(size, 100) < gpu.job_seconds(size, 2000)

    fake.asked.clear()
    refined = call(demo, "ui_refine", session, 10, *[0.5] * len(demo.studio.c.vectors.sliders))
    assert "Refinement" in refined[demo.studio.c.picture.status]
    with pytest.raises(gr.Error, match="steps"):  # a stranger's value: the default time asked, a clear message
        call(demo, "ui_edit", session, None, "lots")
    assert fake.asked == [("refine", gpu.job_seconds(size, 10)), ("edit", gpu.DEFAULT_SECONDS)]


def test_teach_training_and_the_api_ask_for_their_time(spaces_demo):
    demo, fake = spaces_demo
    with pytest.raises(gr.Error):
        call(demo, "ui_teach_train", None, None, 2, 3)  # nothing annotated yet
    with pytest.raises(gr.Error):
        call(demo, "edit", None, None, 250)
    with pytest.raises(gr.Error):
        call(demo, "apply_presets", None, None, 0)
    size = demo.studio.session(None)[1].generator.size
    assert fake.asked == [("train", gpu.TRAIN_SECONDS), ("edit", gpu.job_seconds(size, 250)),
                          ("apply_presets", gpu.job_seconds(size, 0))]


def test_the_time_asked_per_step_covers_what_an_h200_took_twice_over():
    measured = {64: 0.0165, 256: 0.0272, 512: 0.0505, 1024: 0.1357}  # s per edit step, eager fp32 (gpu_notes.md)
    for canvas, seconds in measured.items():
        assert gpu.step_seconds(canvas) >= 2 * seconds
    assert gpu.job_seconds(1024, 2000) <= gpu.MAX_SECONDS


FAKE_SPACES_MODULE = '''
import os, sys
os.environ["FAKE_SPACES_IMPORTED"] = "torch already imported" if "torch" in sys.modules else "before torch"

def GPU(fn=None, duration=60):
    return fn if fn is not None else (lambda f: f)
'''


@pytest.fixture
def spaces_on_path(tmp_path, monkeypatch):
    """A ``spaces`` package to import for real (not put in sys.modules): it notes in the environment when it was
    imported, as the real one patches torch's CUDA then."""
    (tmp_path / "spaces.py").write_text(FAKE_SPACES_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "spaces", raising=False)
    monkeypatch.delenv("FAKE_SPACES_IMPORTED", raising=False)
    yield tmp_path
    sys.modules.pop("spaces", None)  # the tests after these run without it


def test_the_model_device_is_chosen_after_spaces_is_imported(spaces_on_path, tiny_model_dir):
    """On ZeroGPU, torch sees CUDA in the main process only once ``spaces`` is imported: a model loaded before
    would stay on the CPU while every call holds a GPU."""
    import os

    from editgan.app import build_demo
    from editgan.app.engines import EngineRegistry

    seen_at_load = []

    class Registry(EngineRegistry):
        def get(self, model_id, device=None, *args, **kwargs):
            seen_at_load.append(os.environ.get("FAKE_SPACES_IMPORTED"))
            return super().get(model_id, device, *args, **kwargs)

    build_demo(model=str(tiny_model_dir), device="cpu", engines=Registry())
    assert seen_at_load and seen_at_load[0] is not None


def test_app_imports_spaces_before_torch(spaces_on_path):
    """``python app.py`` on a ZeroGPU Space: the spaces package asks to come before torch."""
    import os
    import subprocess
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(spaces_on_path), str(repo)])}
    done = subprocess.run([sys.executable, "-c", "import os, app; print(os.environ['FAKE_SPACES_IMPORTED'])"],
                          cwd=repo, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "before torch"


class SecondPerRead:
    """A clock that moves on a second each time it is read: a time budget of n seconds lasts n reads."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def test_a_time_budget_runs_out_only_where_there_is_one(monkeypatch):
    from editgan.app import jobs

    monkeypatch.setattr(jobs, "monotonic", SecondPerRead())
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    unlimited, budget = jobs.job_budget(64, 100, public=False), jobs.TimeBudget(3, "at the end")
    assert [budget.over() for _ in range(4)] == [False, False, True, True] and budget.stopped == "at the end"
    assert not any(unlimited.over() for _ in range(1000)) and unlimited.stopped is None
    public = jobs.job_budget(64, 100, public=True)
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    zero = jobs.job_budget(64, 100, public=False)  # each read of the clock a second later
    assert [zero.over() for _ in range(gpu.steps_seconds(64, 100))][-2:] == [False, True]
    both = jobs.job_budget(1024, 2000, public=True)
    assert "GPU time" in zero.reason and "public studio's limit of 10 minutes" in public.reason
    assert both.reason == public.reason  # ZeroGPU's 880 s against the public 600 s: the tighter one
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    assert gpu.on_zero_gpu()
    monkeypatch.setenv("SPACES_ZERO_GPU", "false")
    assert not gpu.on_zero_gpu()


def reddish_everywhere(studio, session, engine) -> dict:
    """The canvas of the picture of seed 5 with 'reddish' painted over every pixel of class 0."""
    import numpy as np
    from tiny_models import SIZE

    from editgan.app import views
    from editgan.colors import colorize

    k = views.canvas_scale(SIZE, SIZE)
    labels = engine.sample(5, 0.7).labels
    background = views.enlarge(colorize(labels, engine.config.palette), k)
    layer = np.zeros((SIZE * k, SIZE * k, 4), np.uint8)
    layer[np.kron(labels == 0, np.ones((k, k), bool))] = (255, 0, 0, 255)
    return {"background": background, "layers": [layer], "composite": background}


def test_on_zero_gpu_an_edit_stops_before_its_asked_time_and_keeps_its_best_step(monkeypatch, tiny_model_dir):
    """ZeroGPU stops a call at the time it asked for, and the call's result is lost: the steps stop a little
    before (each step reads the clock once here, a second apart) and the best one is kept and said so."""
    import re

    from editgan.app import build_demo, jobs
    from editgan.app.engines import EngineRegistry
    from editgan.networks.lpips import PixelMSELoss

    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    studio = build_demo(model=str(tiny_model_dir), device="cpu", engines=EngineRegistry()).studio
    assert gpu.on_zero_gpu()  # the studio's jobs run on a budget
    session, engine = studio.session(None)
    engine.perceptual = PixelMSELoss()
    list(studio.sample(session, 5, 0.7))
    canvas = reddish_everywhere(studio, session, engine)
    budget_s = gpu.steps_seconds(engine.generator.size, 200)
    monkeypatch.setattr(jobs, "monotonic", SecondPerRead())
    outs = list(studio.edit(session, canvas, 200, None, lambda *args, **kwargs: None))
    said = " ".join(str(out.get(studio.c.picture.status, "")) for out in outs)
    found = re.search(r"Edit stopped after (\d+) of 200 steps, before the GPU time this request asked for ran out",
                      said)
    assert found and 0 < int(found.group(1)) <= budget_s, said
    assert len(session.history) == 2 and "mask edit" in session.current.action


def test_on_zero_gpu_the_api_says_when_its_steps_stopped_for_time(monkeypatch, tiny_model_dir, tmp_path):
    import numpy as np

    from editgan.app import jobs
    from editgan.app.api import PublicApi
    from editgan.app.engines import EngineRegistry
    from editgan.app.policy import Policy
    from editgan.app.scratch import ScratchSpace
    from editgan.networks.lpips import PixelMSELoss

    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    api = PublicApi(EngineRegistry(), str(tiny_model_dir), "cpu", ScratchSpace(tmp_path / "scratch"), Policy())
    engine = api.engine()
    engine.perceptual = PixelMSELoss()
    _, _, wplus, _ = api.sample(5, 0.7)
    wanted = engine.sample(5, 0.7).labels.copy()
    wanted[wanted == 0] = 1
    np.save(tmp_path / "wanted.npy", wanted)
    monkeypatch.setattr(jobs, "monotonic", SecondPerRead())
    *_, info = api.edit(wplus, str(tmp_path / "wanted.npy"), 200)
    assert 0 < info["steps"] < 200 and "before the GPU time this request asked for ran out" in info["stopped"]
    monkeypatch.delenv("SPACES_ZERO_GPU")
    plain = PublicApi(api.engines, api.model, "cpu", api.scratch, Policy())  # off ZeroGPU: every step runs
    *_, info = plain.edit(wplus, str(tmp_path / "wanted.npy"), 30)
    assert info["steps"] == 30 and "stopped" not in info


def test_in_public_mode_a_job_stops_at_the_public_limit_and_keeps_its_best(monkeypatch, tiny_model_dir):
    """Off ZeroGPU too, a public studio gives one visitor's edit at most PUBLIC_JOB_SECONDS of steps: the long
    jobs take turns, and a 2000-step edit on a CPU would hold them for the better part of an hour."""
    import re

    from editgan.app import build_demo, jobs
    from editgan.app.engines import EngineRegistry
    from editgan.networks.lpips import PixelMSELoss

    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    monkeypatch.setattr(jobs, "PUBLIC_JOB_SECONDS", 30)
    studio = build_demo(model=str(tiny_model_dir), device="cpu", engines=EngineRegistry(), public=True).studio
    session, engine = studio.session(None)
    engine.perceptual = PixelMSELoss()
    list(studio.sample(session, 5, 0.7))
    canvas = reddish_everywhere(studio, session, engine)
    monkeypatch.setattr(jobs, "monotonic", SecondPerRead())
    outs = list(studio.edit(session, canvas, 200, None, lambda *args, **kwargs: None))
    said = " ".join(str(out.get(studio.c.picture.status, "")) for out in outs)
    found = re.search(r"Edit stopped after (\d+) of 200 steps, at this public studio's limit of 0 minutes", said)
    assert found and 0 < int(found.group(1)) <= 30, said
