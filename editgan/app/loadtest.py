"""A load test of the studio: several visitors at once, through the same API the browser uses, on loopback only.

    python -m editgan bench --load --clients 8 --ops 10 --json out/load.json

The studio is started in this process on a free port of 127.0.0.1. Each client (a ``gradio_client.Client``) draws
a sample, then runs a mix of actions (each at least once when ``ops`` ≥ 5): samples, slider moves, undo, downloads
and short mask edits. An action's time runs until its answer is in and the pictures it names are fetched, as a
browser fetches them: over one kept-alive connection per visitor, each URL once (Gradio names a file by a hash of
its content, so an unchanged picture keeps its URL). The report gives, per action, how many ran, the errors, and
the median and 95th-percentile wall time. Bounded: clients × ops actions, each with a timeout, and the server is
closed at the end.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import random
import socket
import statistics
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

ACTIONS = ("sample", "slide", "undo", "export", "edit")
WEIGHTS = (3, 3, 2, 2, 1)
"""How often each action is drawn: quick actions dominate, as when people browse while others edit."""
REPORTED = (*ACTIONS, "slide_labels")
"""A slider move is two events in the page: 'slide' is the first (the picture; on a model whose label map is fast,
the whole view), 'slide_labels' the one after it (the label map of a slow model; for a fast one, an empty answer)."""
VISITORS_NICENESS = 19
"""The visitors stand for browsers on other machines: their process runs at the lowest priority, so that it takes
only the CPU the studio leaves (at equal priority it took about a third of these two cores)."""
TIMEOUT_S = 300


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _canvas(folder: Path, size: int, k: int) -> dict:
    """A painted canvas as the browser sends it: a red block in the top left quarter of the label map."""
    from gradio_client import handle_file

    side = size * k
    background = np.zeros((side, side, 3), np.uint8)
    layer = np.zeros((side, side, 4), np.uint8)
    layer[: side // 4, : side // 4] = (255, 0, 0, 255)
    Image.fromarray(background).save(folder / "background.png")
    Image.fromarray(layer, "RGBA").save(folder / "layer.png")
    return {"background": handle_file(str(folder / "background.png")),
            "layers": [handle_file(str(folder / "layer.png"))],
            "composite": handle_file(str(folder / "background.png"))}


def file_urls(answer: object) -> list[str]:
    """The URLs of the files an answer names (Gradio's file dicts, at any depth), in order."""
    if isinstance(answer, dict):
        if isinstance(answer.get("url"), str) and "path" in answer:
            return [answer["url"]]
        return [url for value in answer.values() for url in file_urls(value)]
    if isinstance(answer, (list, tuple)):
        return [url for value in answer for url in file_urls(value)]
    return []


class PageFetcher:
    """What a visitor's browser does with an answer: fetch every file it names that the page does not have yet,
    over one kept-alive connection."""

    def __init__(self):
        import httpx

        self.http = httpx.Client(timeout=TIMEOUT_S)
        self.seen: set[str] = set()

    def fetch(self, answer: object) -> object:
        for url in file_urls(answer):
            if url not in self.seen:
                self.http.get(url).raise_for_status()
                self.seen.add(url)
        return answer

    def close(self) -> None:
        self.http.close()


@dataclass(frozen=True)
class Plan:
    """What the visitors do, sent to the process that runs them."""
    url: str
    clients: int
    ops: int
    edit_steps: int
    seed: int
    canvas_side: int
    scale: int
    sliders: int
    presets: int


def run_visitors(plan: Plan) -> tuple[dict[str, list[float]], dict[str, list[str]]]:
    """All visitors, each in a thread of this process: per action, the wall times and the errors."""
    from gradio_client import Client

    times: dict[str, list[float]] = {a: [] for a in REPORTED}
    errors: dict[str, list[str]] = {a: [] for a in REPORTED}
    lock = threading.Lock()
    scratch = Path(tempfile.mkdtemp(prefix="editgan-load-"))

    def visitor(index: int) -> None:
        rng = random.Random(plan.seed * 1000 + index)
        client = Client(plan.url, verbose=False, download_files=False)
        page = PageFetcher()
        canvas = _canvas(scratch, plan.canvas_side, plan.scale)
        actions = (list(ACTIONS) + rng.choices(ACTIONS, WEIGHTS, k=max(0, plan.ops - len(ACTIONS))))[:plan.ops]
        actions = actions[:1] + rng.sample(actions[1:], len(actions) - 1)  # a sample first, then the rest mixed
        undoable, last = 0, "sample"  # history steps after the first: undo is timed only when a visitor could press it

        def slide() -> float:
            """Both events of a slider move, as the page sends them; returns when the first one's answer was in
            (the second is timed as 'slide_labels')."""
            values = [round(rng.uniform(-1, 1), 2) if i < plan.presets else 0.0 for i in range(plan.sliders)]
            page.fetch(client.predict(*values, api_name="/ui_slide"))
            shown = time.monotonic()
            page.fetch(client.predict(api_name="/ui_slide_labels"))
            with lock:
                times["slide_labels"].append(time.monotonic() - shown)
            return shown

        def answer(*args: object, api_name: str) -> None:
            page.fetch(client.predict(*args, api_name=api_name))

        calls = {"sample": lambda: answer(rng.randrange(2**31), 0.7, api_name="/ui_sample"),
                 "slide": slide, "undo": lambda: answer(api_name="/ui_undo"),
                 "export": lambda: answer(api_name="/ui_export"),
                 "edit": lambda: answer(canvas, plan.edit_steps, api_name="/ui_edit")}
        for action in actions:
            if action == "undo" and not undoable:
                slide()
                undoable, last = undoable + 1, "slide"
            if action == "sample":
                undoable = 0
            elif action == "undo":
                undoable -= 1
            elif action == "edit" or (action == "slide" and last != "slide"):  # slider moves in a row are one step
                undoable += 1
            last = action
            started = time.monotonic()
            try:
                ended = calls[action]() or time.monotonic()
                error = ""
            except Exception as e:  # an error is a result of the test, not a failure of it
                error = f"{type(e).__name__}: {e}"
            with lock:
                if error:
                    errors[action].append(error)
                else:
                    times[action].append(ended - started)
        page.close()

    with ThreadPoolExecutor(plan.clients) as pool:
        list(pool.map(visitor, range(plan.clients), timeout=TIMEOUT_S))
    return times, errors


def _lower_priority() -> None:
    if hasattr(os, "nice"):  # POSIX
        os.nice(VISITORS_NICENESS)


def run_load_test(model: str | None = None, clients: int = 8, ops: int = 10, edit_steps: int = 20, seed: int = 0,
                  device: str | None = "cpu", progress: Callable[[str], None] = lambda s: None) -> dict:
    """Run the load test against a studio on ``model`` (default: the embedded one); the report as a dict.

    The server runs in this process and the visitors in another (as browsers would), so that their own work does
    not share the server's interpreter."""
    from editgan.app import build_demo, launch_options
    from editgan.app.engines import EngineRegistry
    from editgan.app.views import canvas_scale

    engines = EngineRegistry()
    demo = build_demo(model=model, device=device, engines=engines)
    engine = engines.get(model, device)
    progress("waiting for the perceptual loss (offline, the Hub's retries take ~20 s)")
    engine.perceptual  # noqa: B018 -- as on a studio up for a minute: the first edit does not fetch it in its turn
    height, width = engine.config.box[2:]
    port = _free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **launch_options())
    plan = Plan(f"http://127.0.0.1:{port}/", clients, ops, edit_steps, seed, max(height, width),
                canvas_scale(height, width), len(demo.studio.c.vectors.sliders), len(engine.presets))
    progress(f"{clients} visitors × {ops} actions on {plan.url}")
    started = time.monotonic()
    try:
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_lower_priority) as pool:
            times, errors = pool.submit(run_visitors, plan).result(timeout=TIMEOUT_S * 2)
    finally:
        demo.close()
    report = {"clients": clients, "ops_per_client": ops, "edit_steps": edit_steps, "model": engine.config.name,
              "device": str(engine.device), "seconds": round(time.monotonic() - started, 1), "actions": {},
              "errors": sum(len(e) for e in errors.values())}
    for action in REPORTED:
        done = sorted(times[action])
        report["actions"][action] = {
            "n": len(done), "errors": len(errors[action]), "error_examples": errors[action][:3],
            "p50_s": round(statistics.median(done), 3) if done else None,
            "p95_s": round(done[min(len(done) - 1, int(round(0.95 * (len(done) - 1))))], 3) if done else None}
    return report
