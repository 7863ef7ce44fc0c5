"""Fair turns on the device: a quick action waits about one step of a long job, not the whole job."""
from __future__ import annotations

import threading
import time

import numpy as np

from editgan.engine.turns import DeviceTurns


def test_a_quick_action_runs_between_two_steps_of_a_long_job():
    turns = DeviceTurns()
    steps_done: list[int] = []
    started = threading.Event()

    def long_job() -> None:
        with turns.hold():
            started.set()
            for step in range(40):
                turns.step_aside()
                time.sleep(0.02)
                steps_done.append(step)

    worker = threading.Thread(target=long_job)
    worker.start()
    started.wait()
    time.sleep(0.1)
    asked = time.monotonic()
    with turns.hold():
        waited = time.monotonic() - asked
        steps_when_served = len(steps_done)
    worker.join()
    assert waited < 0.1 and steps_when_served < 40  # about one 20-ms step, not the rest of the 0.8-s job
    assert steps_done == list(range(40))  # and the long job went on afterwards


def test_turns_are_served_in_order_and_reentrant():
    turns = DeviceTurns()
    order: list[int] = []
    gate = threading.Event()

    def holder() -> None:
        with turns.hold():
            with turns.hold():  # the same thread again: no deadlock
                gate.wait()

    def waiter(i: int) -> None:
        with turns.hold():
            order.append(i)

    first = threading.Thread(target=holder)
    first.start()
    time.sleep(0.05)
    threads = [threading.Thread(target=waiter, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
        time.sleep(0.02)  # tickets taken in order 0..4
    gate.set()
    for t in [first, *threads]:
        t.join(5)
    assert order == [0, 1, 2, 3, 4]


def test_the_model_steps_aside_for_a_sample_during_an_edit(tiny_model_dir):
    from editgan.engine.model import EditGANModel
    from editgan.networks.lpips import PixelMSELoss

    model = EditGANModel.from_folder(tiny_model_dir, device="cpu")
    model.perceptual = PixelMSELoss()
    start = model.sample(1)
    painted = np.zeros(start.labels.shape, bool)
    painted[4:12, 4:12] = True
    wanted = start.labels.copy()
    wanted[painted] = 1
    step_times: list[float] = []
    running = threading.Event()

    def on_step(progress) -> None:
        step_times.append(time.monotonic())
        running.set()

    edit = threading.Thread(target=lambda: model.edit(start.wplus, wanted, painted, steps=60, on_step=on_step))
    edit.start()
    running.wait(30)
    asked = time.monotonic()
    model.sample(2)
    answered = time.monotonic()
    edit.join()
    step = float(np.median(np.diff(step_times)))
    assert len(step_times) == 60 and step_times[-1] > answered  # the edit was still running when the sample came
    assert answered - asked < 3 * step + 0.5


def test_the_perceptual_loss_is_fetched_outside_the_turn(tiny_model_dir, monkeypatch):
    """Offline, the first fetch of LPIPS waits ~20 s on the Hub's retries: an edit, an embedding or a refinement
    that starts then must not hold the device meanwhile."""
    from editgan.engine import model as model_module
    from editgan.engine.model import EditGANModel
    from editgan.networks.lpips import PixelMSELoss

    fetching, release = threading.Event(), threading.Event()
    fetches: list[str] = []

    def slow_loader(device):
        fetches.append(str(device))
        fetching.set()
        release.wait(30)
        return PixelMSELoss()

    monkeypatch.setattr(model_module, "perceptual_loss", slow_loader)
    model = EditGANModel.from_folder(tiny_model_dir, device="cpu")
    start = model.sample(1)
    painted = np.zeros(start.labels.shape, bool)
    painted[4:12, 4:12] = True
    wanted = start.labels.copy()
    wanted[painted] = 1
    outcomes: list = []
    calls = [lambda: model.edit(start.wplus, wanted, painted, steps=2),
             lambda: model.apply_vector(start.wplus, "redder", 1.0, refine_steps=2)]
    for call in calls:
        fetching.clear()
        release.clear()
        model._perceptual = None
        worker = threading.Thread(target=lambda call=call: outcomes.append(call()))
        worker.start()
        assert fetching.wait(30)
        sampled: list = []
        sampler = threading.Thread(target=lambda: sampled.append(model.sample(2)))
        sampler.start()
        sampler.join(10)
        assert sampled, "a sample waited for the perceptual loss to be fetched"
        assert worker.is_alive()  # still fetching
        release.set()
        worker.join(30)
    assert len(outcomes) == 2 and len(fetches) == 2
    assert outcomes[0].perceptual == outcomes[1].perceptual


IMPORTS_IN_TURNS = """
import contextlib, sys
import numpy as np
import editgan

engine = editgan.load()
engine.perceptual  # as the studio does outside the turns (offline here: the pixel fallback)
hold, imported = engine.turns.hold, set()

@contextlib.contextmanager
def watched_hold():
    before = set(sys.modules)
    with hold():
        yield
    imported.update(set(sys.modules) - before)

engine.turns.hold = watched_hold
picture = engine.sample_picture(3, 0.7)
rendering = engine.segment(picture)
preset = next(iter(engine.presets.values()))
engine.apply_vectors(rendering.wplus, [(preset, 1.0)])
painted = np.zeros(rendering.labels.shape, bool)
painted[:16, :16] = True
engine.edit(rendering.wplus, np.where(painted, 1, rendering.labels), painted, steps=2, original=rendering)
engine.apply_vectors(rendering.wplus, [(preset, 1.0)], refine_steps=2)
print(" ".join(sorted(imported)))
"""


def test_no_first_action_imports_modules_while_holding_the_device():
    """A module imported inside a turn holds every visitor's turn that long: torch's first optimizer imports
    torch._dynamo, over a second on a CPU, so the first edit of a studio stalled every sample and slider."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", IMPORTS_IN_TURNS], env=env, capture_output=True, text=True,
                         check=True, timeout=300)
    assert out.stdout.split() == []
