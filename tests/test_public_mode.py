"""The studio as a stranger on the internet meets it: public mode, hostile inputs, bounded memory and disk, sessions
that expire with their files."""
from __future__ import annotations

import os
import re
import time

import numpy as np
import pytest
from PIL import Image

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402
from tiny_models import SIZE, running_studio  # noqa: E402

from editgan.app.renders import RenderCache  # noqa: E402
from editgan.app.scratch import ScratchSpace  # noqa: E402
from editgan.app.session import Session  # noqa: E402
from editgan.app.views import canvas_scale  # noqa: E402
from editgan.engine.model import Rendering  # noqa: E402

K = canvas_scale(SIZE, SIZE)
STATUS, PICTURE, COMPARE, LABELS, BLEND, EDITOR, SLIDER0 = range(7)
SERVER_DETAILS = re.compile(r"/tmp/|/root|/proc|/home|/work|\.cache|huggingface/hub|pid", re.IGNORECASE)


@pytest.fixture(scope="module")
def public_url(tiny_model_dir):
    with running_studio(tiny_model_dir, public=True) as address:
        yield address


def error_of(call, *args, **kwargs) -> str:
    with pytest.raises(AppError) as info:
        call(*args, **kwargs)
    return str(info.value)


def rss_mb() -> float:
    line = next(line for line in open("/proc/self/status") if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def test_public_mode_offers_only_the_operators_models_and_names_no_server_path(public_url, tiny_model_dir,
                                                                              tmp_path):
    import httpx

    page = httpx.get(public_url + "config").text
    assert str(tiny_model_dir) not in page and "tiny" in page  # the model list names the folder, not its path
    c = Client(public_url, verbose=False)
    c.predict(3, 0.7, api_name="/ui_sample")
    for choice in [str(tmp_path), "/proc/self", "../../etc", "someone/some-model", "toy-faces"]:
        message = error_of(c.predict, choice, api_name="/ui_load_model")
        assert "not in the list of choices: ['tiny']" in message or "offers the models tiny" in message, message
        assert str(tiny_model_dir) not in message and not SERVER_DETAILS.search(message.replace(choice, "")), message
    loaded = c.predict("tiny", api_name="/ui_load_model")  # the offered model, by its name
    assert "Loaded model tiny" in loaded[STATUS]
    assert "Step 1 of 1: sample (seed 1" in c.predict(api_name="/ui_export")[1]


def test_the_studio_refuses_a_model_outside_the_offered_ones_even_past_the_model_list(tiny_model_dir):
    from editgan.app.policy import Policy, offered_models

    policy = Policy(True, offered_models([str(tiny_model_dir), "toy-faces"]))
    assert list(policy.offered) == ["tiny", "toy-faces"] and policy.check_model("tiny") == str(tiny_model_dir)
    for hostile in ["/etc", str(tiny_model_dir), "someone/model", "tiny/../.."]:
        with pytest.raises(ValueError, match="this studio offers the models tiny, toy-faces"):
            policy.check_model(hostile)


def test_a_huge_paint_layer_is_refused_from_its_header_with_memory_bounded(public_url, tmp_path):
    c = Client(public_url, verbose=False)
    start = c.predict(4, 0.7, api_name="/ui_sample")
    background = start[EDITOR]["background"]  # a sample sends the canvas as a plain value
    Image.new("RGBA", (9000, 9000)).save(tmp_path / "huge.png")  # a few hundred kB, 324 MB decoded
    assert (tmp_path / "huge.png").stat().st_size < 2_000_000
    before = rss_mb()
    message = error_of(c.predict, {"background": handle_file(background),
                                   "layers": [handle_file(str(tmp_path / "huge.png"))],
                                   "composite": handle_file(background)}, 10, api_name="/ui_edit")
    assert "a paint layer of 9000×9000 is larger than any canvas here" in message.lower()
    assert rss_mb() - before < 150  # never decoded (the server runs in this process)
    Image.new("RGBA", (SIZE * K + 8, SIZE * K)).save(tmp_path / "wide.png")
    message = error_of(c.predict, {"background": handle_file(background),
                                   "layers": [handle_file(str(tmp_path / "wide.png"))],
                                   "composite": handle_file(background)}, 10, api_name="/ui_edit")
    assert f"the paint layer is {SIZE * K + 8}×{SIZE * K} but the canvas is {SIZE * K}×{SIZE * K}" in message.lower()
    assert "Step 1 of 1: sample (seed 4" in c.predict(api_name="/ui_export")[1]


def test_a_canvas_naming_one_layer_many_times_is_refused_before_decoding(public_url, tmp_path):
    """Gradio accepts the same uploaded file as every layer of a canvas: 500 names of one small PNG would be
    decoded 500 times over (4 MB each at 1024 px) before any callback could look."""
    c = Client(public_url, verbose=False)
    start = c.predict(5, 0.7, api_name="/ui_sample")
    background = start[EDITOR]["background"]
    Image.new("RGBA", (SIZE * K, SIZE * K)).save(tmp_path / "clear.png")
    layer = handle_file(str(tmp_path / "clear.png"))
    for endpoint in ["/ui_edit", "/ui_teach_keep"]:
        canvas = {"background": handle_file(background), "layers": [layer] * 500, "composite": handle_file(background)}
        arguments = (canvas, 10) if endpoint == "/ui_edit" else (canvas,)
        message = error_of(c.predict, *arguments, api_name=endpoint)
        assert "a canvas with 500 paint layers: this editor has one" in message.lower(), message
    assert "Step 1 of 1: sample (seed 5" in c.predict(api_name="/ui_export")[1]


def test_uploads_over_the_limit_are_refused(public_url, tmp_path):
    import httpx

    big = b"\x89PNG" + os.urandom(21 * 2**20)
    response = httpx.post(public_url + "gradio_api/upload", files={"files": ("big.png", big, "image/png")},
                          timeout=60)
    assert response.status_code == 413 and "maximum" in response.text.lower()
    small = httpx.post(public_url + "gradio_api/upload", files={"files": ("ok.png", big[:1000], "image/png")})
    assert small.status_code == 200


def test_an_edit_that_finds_nothing_better_says_so_and_keeps_the_history(tiny_model_dir):
    from editgan.app import build_demo
    from editgan.app.engines import EngineRegistry
    from editgan.networks.lpips import PixelMSELoss

    demo = build_demo(model=str(tiny_model_dir), device="cpu", engines=EngineRegistry())
    studio = demo.studio
    session, engine = studio.session(None)
    engine.perceptual = PixelMSELoss()
    list(studio.sample(session, 5, 0.7))
    background = np.repeat(np.repeat(np.zeros((SIZE, SIZE, 3), np.uint8), K, 0), K, 1)
    layer = np.zeros((SIZE * K, SIZE * K, 4), np.uint8)
    layer[: 16 * K, : 16 * K] = (255, 0, 0, 255)
    canvas = {"background": background, "layers": [layer], "composite": background}
    outs = list(studio.edit(session, canvas, 1, None, lambda *args, **kwargs: None))  # one step: only the start seen
    status = outs[-1][studio.c.picture.status]
    assert "found nothing better than the start" in status and "Step 1 of 1" in status
    assert len(session.history) == 1


def test_a_rejected_upload_leaves_no_earlier_photo_to_embed(public_url, tmp_path):
    c = Client(public_url, verbose=False)
    Image.new("RGB", (64, 64), (200, 30, 30)).save(tmp_path / "first.png")
    c.predict(handle_file(str(tmp_path / "first.png")), api_name="/ui_upload_photo")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    error_of(c.predict, handle_file(str(tmp_path / "broken.png")), api_name="/ui_upload_photo")
    assert "upload a photo first" in error_of(c.predict, 100, 50, 50, 10, api_name="/ui_embed").lower()


def test_a_session_that_ends_takes_its_files_and_old_files_are_swept(tmp_path):
    scratch = ScratchSpace(tmp_path / "scratch", max_age_s=60)
    session = Session("m")
    download = scratch.folder(session.files_owner, "download")
    (download / "image.png").write_bytes(b"x" * 100)
    again = scratch.folder(session.files_owner, "download")  # a new download replaces the session's last one
    assert again == download and not any(again.iterdir())
    (again / "image.png").write_bytes(b"x" * 100)
    old = scratch.request_folder()
    (old / "result.png").write_bytes(b"y")
    past = time.time() - 3600
    for path in [old, old / "result.png"]:
        os.utime(path, (past, past))
    assert scratch.sweep() == 1 and not old.exists() and download.exists()

    from editgan.app.studio import Studio
    studio = Studio.__new__(Studio)
    studio.scratch = scratch
    studio.end_session(session)  # what Gradio's State calls when the session expires
    assert not (scratch.root / session.files_owner).exists() and scratch.size() == 0
    with pytest.raises(ValueError):
        scratch.folder("../escape", "download")


def aged(folder, seconds: float):
    past = time.time() - seconds
    for path in [folder, *folder.rglob("*")]:
        os.utime(path, (past, past))


def test_the_scratch_space_keeps_to_its_byte_budget(tmp_path):
    """Over its budget the scratch space lets the oldest API results go (not those of calls still being answered),
    then refuses new files with a sentence until a session ends."""
    from editgan.errors import ScratchFullError

    scratch = ScratchSpace(tmp_path / "scratch", max_age_s=3600, max_bytes=1000, sweep_every_s=0)
    results = []
    for age in [300, 200, 100, 0]:
        folder = scratch.request_folder()
        (folder / "image.png").write_bytes(b"x" * 300)
        aged(folder, age)
        results.append(folder)
    scratch.folder(Session("m").files_owner, "download")  # 1200 bytes: the oldest result goes
    assert [f.exists() for f in results] == [False, True, True, True]

    session = Session("m")
    taught = scratch.folder(session.files_owner, "taught")
    (taught / "generator.safetensors").write_bytes(b"w" * 1500)
    with pytest.raises(ScratchFullError) as info:
        scratch.request_folder()
    message = str(info.value)
    assert "space for visitors' files is full" in message and not SERVER_DETAILS.search(message)
    assert [f.exists() for f in results] == [False, False, False, True]  # the newest result is still being served
    scratch.remove(session.files_owner)  # the session ended
    assert scratch.request_folder().is_dir()


def test_the_scratch_budget_comes_from_the_environment(tmp_path, monkeypatch):
    from editgan.app.scratch import DEFAULT_GB

    monkeypatch.delenv("EDITGAN_SCRATCH_GB", raising=False)
    assert ScratchSpace(tmp_path / "a").max_bytes == DEFAULT_GB * 2**30
    monkeypatch.setenv("EDITGAN_SCRATCH_GB", "0.5")
    assert ScratchSpace(tmp_path / "b").max_bytes == 2**29
    for bad in ["lots", "-1", "nan", "0"]:
        monkeypatch.setenv("EDITGAN_SCRATCH_GB", bad)
        with pytest.raises(ValueError, match="EDITGAN_SCRATCH_GB must be a number of gigabytes above 0"):
            ScratchSpace(tmp_path / "c")


def test_the_scratch_space_reads_its_files_dates_at_most_every_sweep_interval(tmp_path):
    scratch = ScratchSpace(tmp_path / "scratch", max_age_s=60, sweep_every_s=3600)
    old = scratch.request_folder()
    aged(old, 7200)
    scratch.request_folder()  # swept a moment ago: not read again
    assert old.exists()
    scratch.remove(Session("m").files_owner)  # a session that ended: the next folder sweeps
    scratch.request_folder()
    assert not old.exists()


def test_the_session_state_expires(tiny_model_dir):
    import editgan.app.demo as demo_module
    from editgan.app.engines import EngineRegistry

    demo = demo_module.build_demo(model=str(tiny_model_dir), device="cpu", engines=EngineRegistry())
    states = [block for block in demo.blocks.values() if type(block).__name__ == "State"]
    assert states and all(state.time_to_live == demo_module.SESSION_TTL_S for state in states)


def test_the_render_cache_is_bounded_in_bytes():
    cache = RenderCache(max_bytes=3 * (64 * 64 * 3 + 64 * 64 + 8 * 16 * 4))
    for i in range(10):
        wplus = np.full((8, 16), i, np.float32)
        cache.put("m", Rendering(wplus, np.zeros((64, 64, 3), np.uint8), np.zeros((64, 64), np.int64)))
    assert cache.get("m", np.full((8, 16), 9, np.float32)) is not None
    assert cache.get("m", np.full((8, 16), 0, np.float32)) is None
    assert sum(1 for i in range(10) if cache.get("m", np.full((8, 16), i, np.float32)) is not None) == 3


def test_public_api_messages_name_no_server_path(public_url, tmp_path):
    c = Client(public_url, verbose=False)
    (tmp_path / "nothing.npy").write_bytes(b"\x93NUMPY garbage")
    message = error_of(c.predict, handle_file(str(tmp_path / "nothing.npy")), api_name="/export")
    assert "not a .npy latent file" in message.lower() and not SERVER_DETAILS.search(message), message


def test_scrubbing_removes_paths_in_public_mode_only():
    from editgan.app.policy import Policy

    text = "folder /home/me/models/x has no config.json; cache /root/.cache/huggingface/hub (pid /proc/1234)"
    scrubbed = Policy(True, {"a": "a"}).scrub(text)
    assert "/home" not in scrubbed and "/root" not in scrubbed and "/proc" not in scrubbed and "config.json" in scrubbed
    assert Policy().scrub(text) == text
    spaced = Policy(True, {"a": "a"}).scrub("cannot read /home/me/My Models/weights.bin: denied; steps 10/500")
    assert spaced == "cannot read …: denied; steps 10/500"  # no tail of the path left, a ratio kept


def test_the_brush_is_sized_to_the_canvas_and_picks_classes_by_name(public_url):
    from types import SimpleNamespace

    from editgan.app.components import brush_size

    def model(side: int):
        return SimpleNamespace(config=SimpleNamespace(box=(0, 0, side, side)))

    assert brush_size(model(64)) == 16 and brush_size(model(512)) == 13 and brush_size(model(1024)) == 26
    c = Client(public_url, verbose=False)
    c.predict(3, 0.7, api_name="/ui_sample")
    update = c.predict("reddish", api_name="/ui_brush_class")
    assert update["brush"]["default_color"] == "#ff0000" and update["brush"]["colors"] == ["#000000", "#ff0000"]
    assert "not in the list of choices: ['other', 'reddish']" in error_of(c.predict, "nose",
                                                                          api_name="/ui_brush_class")


def test_a_typed_value_out_of_a_sliders_range_is_named_with_what_it_became():
    from editgan.app.views import corrected

    assert corrected("Edit steps", 5000, 10, 500) == "Edit steps go from 10 to 500: 5000 was changed to 500."
    assert corrected("Edit steps", -3, 10, 500) == "Edit steps go from 10 to 500: -3 was changed to 10."
    assert corrected("Edit steps", 250, 10, 500) == corrected("Edit steps", None, 10, 500) == ""
    assert corrected("Edit steps", "many", 10, 500) == corrected("Edit steps", float("nan"), 10, 500) == ""
