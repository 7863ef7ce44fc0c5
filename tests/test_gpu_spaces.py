"""ZeroGPU: with the ``spaces`` package the model's callbacks run inside ``@spaces.GPU``; without it, plain calls."""
from __future__ import annotations

import functools
import sys
import types

from editgan.app.gpu import gpu_runner


def test_without_spaces_callbacks_are_plain_calls(monkeypatch):
    monkeypatch.setitem(sys.modules, "spaces", None)  # import spaces → ImportError

    def fn():
        return 1

    assert gpu_runner()(fn) is fn


def test_with_spaces_every_model_callback_runs_inside_spaces_gpu(monkeypatch, tiny_model_dir):
    wrapped: list[str] = []

    def GPU(fn):  # noqa: N802 — the decorator's name in the spaces package
        wrapped.append(fn.__name__)

        @functools.wraps(fn)
        def run(*args, **kwargs):
            return fn(*args, **kwargs)
        return run

    monkeypatch.setitem(sys.modules, "spaces", types.SimpleNamespace(GPU=GPU))
    from editgan.app import build_demo
    from editgan.app.engines import EngineRegistry

    demo = build_demo(model=str(tiny_model_dir), device="cpu", engines=EngineRegistry())
    model_work = {"start", "sample", "edit", "embed", "slide_picture", "slide_labels", "refine", "load_model",
                  "apply_presets"}
    assert model_work <= set(wrapped)
    assert not {"undo", "redo", "export_session", "upload_photo"} & set(wrapped)  # no GPU for session-only work
    studio = demo.studio
    session, _ = studio.session(None)
    sample = next(fn for fn in demo.fns.values() if fn.api_name == "ui_sample")
    out = list(sample.fn(session, 3, 0.7))[-1]  # the wrapped callback still works
    assert "sample (seed 3" in out[studio.c.picture.status]
