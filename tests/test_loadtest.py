"""The load test at a small scale: several visitors at once on loopback, every action answered, no errors."""
from __future__ import annotations

import pytest

pytest.importorskip("gradio_client")


def test_visitors_at_once_get_every_action_answered(tiny_model_dir):
    from editgan.app.loadtest import ACTIONS, run_load_test

    report = run_load_test(str(tiny_model_dir), clients=3, ops=6, edit_steps=10)
    assert report["errors"] == 0, report
    for action in ACTIONS:
        stats = report["actions"][action]
        assert stats["n"] >= 3 and stats["p50_s"] <= stats["p95_s"], (action, stats)
    labels, slides = report["actions"]["slide_labels"], report["actions"]["slide"]
    assert labels["n"] >= slides["n"] and labels["errors"] == 0  # every slider move sent both of the page's events
    quick = [report["actions"][a]["p95_s"] for a in ("undo", "export")]
    assert max(quick) < 30  # answered from the session, not after every edit of every visitor


def test_the_visitors_fetch_every_file_an_answer_names():
    from editgan.app.loadtest import file_urls

    picture = {"path": "/x/a.png", "url": "http://h/file=/x/a.png", "meta": {"_type": "gradio.FileData"}}
    canvas = {"background": {"path": "/x/b.png", "url": "http://h/file=/x/b.png"}, "layers": [], "composite": None}
    answer = ("status", picture, [picture, {"path": "/x/c.png", "url": "http://h/file=/x/c.png"}], canvas, 0.5)
    assert file_urls(answer) == ["http://h/file=/x/a.png", "http://h/file=/x/a.png", "http://h/file=/x/c.png",
                                 "http://h/file=/x/b.png"]
