"""A load test of the studio: several visitors at once, through the same API the browser uses, on loopback only.

    python -m editgan bench --load --clients 8 --ops 10 --json out/load.json

The studio is started in this process on a free port of 127.0.0.1. Each client (a ``gradio_client.Client``) draws
a sample, then runs a mix of actions (each at least once when ``ops`` ≥ 5): samples, slider moves, undo, downloads
and short mask edits. The report gives,
per action, how many ran, the errors, and the median and 95th-percentile wall time. Bounded: clients × ops actions,
each with a timeout, and the server is closed at the end.
"""
from __future__ import annotations

import logging
import random
import socket
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

ACTIONS = ("sample", "slide", "undo", "export", "edit")
WEIGHTS = (3, 3, 2, 2, 1)
"""How often each action is drawn: quick actions dominate, as when people browse while others edit."""
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


def run_load_test(model: str | None = None, clients: int = 8, ops: int = 10, edit_steps: int = 20, seed: int = 0,
                  device: str | None = "cpu", progress: Callable[[str], None] = lambda s: None) -> dict:
    """Run the load test against a studio on ``model`` (default: the embedded one); the report as a dict."""
    from gradio_client import Client

    from editgan.app import build_demo, launch_options
    from editgan.app.engines import EngineRegistry
    from editgan.app.views import canvas_scale

    engines = EngineRegistry()
    demo = build_demo(model=model, device=device, engines=engines)
    engine = engines.get(model, device)
    height, width = engine.config.box[2:]
    n_sliders = len(demo.studio.c.vectors.sliders)
    presets = len(engine.presets)
    port = _free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **launch_options())
    url = f"http://127.0.0.1:{port}/"
    times: dict[str, list[float]] = {a: [] for a in ACTIONS}
    errors: dict[str, list[str]] = {a: [] for a in ACTIONS}
    lock = threading.Lock()
    scratch = Path(tempfile.mkdtemp(prefix="editgan-load-"))

    def visitor(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        client = Client(url, verbose=False)
        canvas = _canvas(scratch, max(height, width), canvas_scale(height, width))
        plan = (list(ACTIONS) + rng.choices(ACTIONS, WEIGHTS, k=max(0, ops - len(ACTIONS))))[:ops]
        plan = plan[:1] + rng.sample(plan[1:], len(plan) - 1)  # a sample first, then every action in some order
        undoable, last = 0, "sample"  # history steps after the first: undo is timed only when a visitor could press it

        def slide() -> object:
            values = [round(rng.uniform(-1, 1), 2) if i < presets else 0.0 for i in range(n_sliders)]
            return client.predict(*values, api_name="/ui_slide")

        for action in plan:
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
            if action == "sample":
                call = lambda: client.predict(rng.randrange(2**31), 0.7, api_name="/ui_sample")  # noqa: E731
            elif action == "slide":
                call = slide
            elif action == "undo":
                call = lambda: client.predict(api_name="/ui_undo")  # noqa: E731
            elif action == "export":
                call = lambda: client.predict(api_name="/ui_export")  # noqa: E731
            else:
                call = lambda: client.predict(canvas, edit_steps, api_name="/ui_edit")  # noqa: E731
            started = time.monotonic()
            try:
                call()
                ok, message = True, ""
            except Exception as e:  # an error is a result of the test, not a failure of it
                ok, message = False, f"{type(e).__name__}: {e}"
            elapsed = time.monotonic() - started
            with lock:
                (times[action] if ok else errors[action]).append(elapsed if ok else message)  # type: ignore[arg-type]
        progress(f"client {index + 1} of {clients} done")

    started = time.monotonic()
    try:
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(visitor, range(clients), timeout=TIMEOUT_S))
    finally:
        demo.close()
    report = {"clients": clients, "ops_per_client": ops, "edit_steps": edit_steps, "model": engine.config.name,
              "device": str(engine.device), "seconds": round(time.monotonic() - started, 1), "actions": {},
              "errors": sum(len(e) for e in errors.values())}
    for action in ACTIONS:
        done = sorted(times[action])
        report["actions"][action] = {
            "n": len(done), "errors": len(errors[action]), "error_examples": errors[action][:3],
            "p50_s": round(statistics.median(done), 3) if done else None,
            "p95_s": round(done[min(len(done) - 1, int(round(0.95 * (len(done) - 1))))], 3) if done else None}
    return report
