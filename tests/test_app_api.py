"""The browser app end to end through its API: a real server on 127.0.0.1, driven with gradio_client.

One tiny 32-px model (2 classes "other"/"reddish", preset "redder"); pictures come at 32 px (the page enlarges
them), the canvas enlarged ×16 (512 px).
"""
from __future__ import annotations

import json
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402
from tiny_models import SIZE, running_studio  # noqa: E402

from editgan.app import build_demo  # noqa: E402
from editgan.app.engines import EngineRegistry  # noqa: E402
from editgan.app.views import canvas_scale  # noqa: E402
from editgan.engine.model import EditGANModel  # noqa: E402
from editgan.errors import ModelLoadError  # noqa: E402
from editgan.modelio.vectors import EditingVector  # noqa: E402

K = canvas_scale(SIZE, SIZE)  # 16: the canvas (editor) only
RED = (255, 0, 0)
N_SLIDERS = 12
# positions in the outputs of most endpoints
STATUS, PICTURE, COMPARE, LABELS, BLEND, EDITOR, SLIDER0 = range(7)


@pytest.fixture(scope="module")
def model_folder(tiny_model_dir) -> Path:
    return tiny_model_dir


@pytest.fixture(scope="module")
def engine(model_folder) -> EditGANModel:
    return EditGANModel.from_folder(model_folder, device="cpu")


@pytest.fixture(scope="module")
def url(model_folder):
    with running_studio(model_folder) as address:
        yield address


def client(url: str) -> Client:
    return Client(url, verbose=False)


def picture(path: str) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def red_mask(path: str) -> np.ndarray:
    """The label map's 'reddish' pixels (it comes at the model's resolution)."""
    return (picture(path) == RED).all(-1)


def editor(out: tuple) -> dict:
    """The canvas's value in an answer: a plain value, or inside an update when the brush changes too."""
    value = out[EDITOR]
    return value["value"] if value.get("__type__") == "update" else value


def slide(c: Client, *values: float):
    return c.predict(*values, *[0.0] * (N_SLIDERS - len(values)), api_name="/ui_slide")


def export_latent(c: Client) -> np.ndarray:
    files, _ = c.predict(api_name="/ui_export")
    return np.load(next(f for f in files if f.endswith(".npy")))


def paint_canvas(folder: Path, background: str, box: tuple[int, int, int, int], color=(255, 0, 0),
                 layers: bool = True) -> dict:
    """The editor's value as the browser sends it: background, one transparent paint layer, the composite."""
    top, left, bottom, right = box
    back = picture(background)
    layer = np.zeros((*back.shape[:2], 4), np.uint8)
    layer[top:bottom, left:right] = (*color, 255)
    composite = back.copy()
    composite[top:bottom, left:right] = color
    Image.fromarray(layer, "RGBA").save(folder / "layer.png")
    Image.fromarray(composite).save(folder / "composite.png")
    return {"background": handle_file(background),
            "layers": [handle_file(str(folder / "layer.png"))] if layers else [],
            "composite": handle_file(str(folder / "composite.png"))}


def expect_error(match: str, call, *args, **kwargs) -> None:
    with pytest.raises(AppError) as info:
        call(*args, **kwargs)
    assert match.lower() in str(info.value).lower(), str(info.value)


# -- the API -------------------------------------------------------------------------------------------------------
def test_the_api_page_lists_the_public_api_with_named_parameters_and_results(url):
    api = client(url).view_api(print_info=False, return_format="dict")
    endpoints = api["named_endpoints"]
    assert set(endpoints) == {"/sample", "/embed", "/edit", "/apply_presets", "/export"}  # the UI's events are off it
    assert [p["parameter_name"] for p in endpoints["/edit"]["parameters"]] == ["wplus", "label_map", "steps"]
    assert [r["label"] for r in endpoints["/edit"]["returns"]] == ["image", "label_map", "wplus", "vector", "info"]
    assert [p["parameter_name"] for p in endpoints["/apply_presets"]["parameters"]] == ["wplus", "scales",
                                                                                        "refine_steps"]
    info = httpx.get(url + "gradio_api/info").json()["named_endpoints"]
    assert all(info[name].get("description") for name in endpoints)  # each says what it does


def test_public_api_sample_edit_apply_and_export_compose_through_latent_files(url, engine, tmp_path):
    c = client(url)
    image, labels, wplus, info = c.predict(seed=3, api_name="/sample")
    assert info["seed"] == 3 and info["model"] == engine.config.name
    expected = engine.sample(3)
    assert np.array_equal(np.asarray(Image.open(image)), expected.image)
    label_ids = np.asarray(Image.open(labels))  # a palette PNG: the pixel values are the class ids
    assert np.array_equal(label_ids, expected.labels)
    np.testing.assert_allclose(np.load(wplus), expected.wplus, atol=1e-6)

    wanted = expected.labels.copy()
    wanted[8:24, 8:24] = 1  # paint a red square
    wanted_png = tmp_path / "wanted.png"
    palette_image = Image.fromarray(wanted.astype(np.uint8), "P")
    palette_image.putpalette([v for color in engine.config.palette for v in color])
    palette_image.convert("RGB").save(wanted_png)  # the class colors, as a painting program would save them
    image2, labels2, wplus2, vector, info2 = c.predict(handle_file(wplus), handle_file(str(wanted_png)), 12,
                                                       api_name="/edit")
    assert info2["steps"] == 12 and info2["classes"] == [1]
    edited = np.asarray(Image.open(labels2))
    assert (edited[8:24, 8:24] == 1).mean() > (expected.labels[8:24, 8:24] == 1).mean()
    assert EditingVector.load(vector).delta.shape == expected.wplus.shape

    image3, _, wplus3, info3 = c.predict(handle_file(wplus), {"redder": 1.0}, 0, api_name="/apply_presets")
    np.testing.assert_allclose(np.load(wplus3), expected.wplus + engine.presets["redder"].delta, atol=1e-5)
    assert info3["scales"] == {"redder": 1.0}
    image4, _, wplus4, _ = c.predict(handle_file(wplus2), api_name="/export")
    assert np.array_equal(np.asarray(Image.open(image4)), np.asarray(Image.open(image2)))


def test_public_api_errors_are_one_clear_line(url, tmp_path):
    c = client(url)
    _, _, wplus, _ = c.predict(seed=1, api_name="/sample")
    expect_error("the seed must be a whole number", c.predict, -1, api_name="/sample")
    expect_error("unknown preset 'nose'", c.predict, handle_file(wplus), {"nose": 1}, 0, api_name="/apply_presets")
    expect_error("must be within", c.predict, handle_file(wplus), {"redder": 50}, 0, api_name="/apply_presets")
    wrong = tmp_path / "wrong.png"
    Image.new("RGB", (SIZE + 3, SIZE), (255, 0, 0)).save(wrong)
    expect_error(f"this model's maps are {SIZE}×{SIZE}", c.predict, handle_file(wplus), handle_file(str(wrong)), 5,
                 api_name="/edit")
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((2, 3), np.float32))
    expect_error("does not fit this model", c.predict, handle_file(str(bad)), api_name="/export")
    pickled = tmp_path / "pickled.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    expect_error("not a .npy latent file", c.predict, handle_file(str(pickled)), api_name="/export")


def test_sample_shows_the_picture_its_labels_and_the_blend(url, engine):
    c = client(url)
    out = c.predict(3, 0.7, api_name="/ui_sample")
    assert "sample (seed 3" in out[STATUS]
    image = picture(out[PICTURE])
    assert np.array_equal(image, engine.sample(3, 0.7).image)  # the rendering itself: the page enlarges it
    colors = np.unique(picture(out[LABELS]).reshape(-1, 3), axis=0)
    assert {tuple(c) for c in colors} <= {(0, 0, 0), RED}
    assert picture(out[BLEND]).shape == image.shape
    canvas = editor(out)
    assert canvas["layers"] == [] and canvas["composite"] is None  # the editor draws its own composite
    canvas = picture(canvas["background"])
    assert canvas.shape == (SIZE * K, SIZE * K, 3) and np.array_equal(canvas[::K, ::K], picture(out[LABELS]))
    assert out[SLIDER0]["label"] == "Redder" and out[SLIDER0]["visible"] and out[SLIDER0 + 1]["visible"] is False
    assert np.allclose(export_latent(c), engine.sample(3, 0.7).wplus)
    seed_out = c.predict(0.7, api_name="/ui_random_sample")
    assert 0 <= seed_out[-1] < 2**31 and f"seed {seed_out[-1]}" in seed_out[STATUS]
    example = c.predict(2, 0.7, api_name="/ui_example_seed")  # the third example: seed 3
    assert example[-1] == 3 and np.array_equal(picture(example[PICTURE]), image)


def test_edit_with_a_painted_mask_then_undo_redo_reset(url, tmp_path):
    c = client(url)
    start = c.predict(5, 0.7, api_name="/ui_sample")
    before = red_mask(start[LABELS])
    box = (8 * K, 8 * K, 24 * K, 24 * K)  # the middle half of the canvas, painted "reddish"
    job = c.submit(paint_canvas(tmp_path, editor(start)["background"], box), 40, api_name="/ui_edit")
    previews = list(job)
    edited = job.result()
    assert len(previews) >= 2, "the edit should stream previews before its result"
    assert "mask edit (reddish" in edited[STATUS] and "Edit done: 40 steps" in edited[STATUS]
    after = red_mask(edited[LABELS])
    assert after[8:24, 8:24].mean() > before[8:24, 8:24].mean() + 0.1
    assert after[8:24, 8:24].mean() > 0.9
    assert not np.array_equal(picture(edited[PICTURE]), picture(start[PICTURE]))
    compare = edited[COMPARE]
    assert np.array_equal(picture(compare[0]), picture(start[PICTURE]))
    assert np.array_equal(picture(compare[1]), picture(edited[PICTURE]))

    undone = c.predict(api_name="/ui_undo")
    assert np.array_equal(picture(undone[PICTURE]), picture(start[PICTURE]))
    assert "1 step(s) to redo" in undone[STATUS]
    redone = c.predict(api_name="/ui_redo")
    assert np.array_equal(picture(redone[PICTURE]), picture(edited[PICTURE]))
    reset = c.predict(api_name="/ui_reset")
    assert np.array_equal(picture(reset[PICTURE]), picture(start[PICTURE])) and "Step 3 of 3" in reset[STATUS]
    assert np.array_equal(picture(c.predict(api_name="/ui_undo")[PICTURE]), picture(edited[PICTURE]))

    files, _ = c.predict(api_name="/ui_export")
    names = sorted(Path(f).name for f in files)
    assert names == ["image.png", "labels.png", "wplus.npy"]
    labels = Image.open(next(f for f in files if f.endswith("labels.png")))
    assert labels.mode == "P" and labels.size == (SIZE, SIZE)
    assert np.array_equal(np.asarray(labels) == 1, after)  # palette PNG: the pixel values are the class ids


def test_composite_only_and_off_palette_paint_snap_to_classes(url, tmp_path):
    c = client(url)
    start = c.predict(5, 0.7, api_name="/ui_sample")
    canvas = paint_canvas(tmp_path, editor(start)["background"], (8 * K, 8 * K, 24 * K, 24 * K),
                          color=(220, 40, 30), layers=False)  # no layers, a color near "reddish"
    edited = c.predict(canvas, 20, api_name="/ui_edit")
    assert "mask edit (reddish" in edited[STATUS]


def test_preset_sliders_apply_the_sum_from_their_start_and_refine(url, engine):
    c = client(url)
    start = c.predict(7, 0.7, api_name="/ui_sample")
    moved = slide(c, 1.5)
    assert not np.array_equal(picture(moved[PICTURE]), picture(start[PICTURE]))
    assert "Redder +1.5" in moved[STATUS]
    expected = engine.apply_vectors(engine.sample(7, 0.7).wplus, [(engine.presets["redder"], 1.5)]).wplus
    assert np.allclose(export_latent(c), expected, atol=1e-5)
    slide(c, 0.5)  # from the same start, not from the previous slider result
    expected = engine.apply_vectors(engine.sample(7, 0.7).wplus, [(engine.presets["redder"], 0.5)]).wplus
    assert np.allclose(export_latent(c), expected, atol=1e-5)
    assert "Step 2 of 2" in slide(c, 0.0)[STATUS]  # slider moves collapse into one step
    slide(c, 1.0)
    refined = c.predict(10, 1.0, *[0.0] * (N_SLIDERS - 1), api_name="/ui_refine")
    assert "sliders refined (10 steps)" in refined[STATUS] and "Step 3 of 3" in refined[STATUS]
    undone = c.predict(api_name="/ui_undo")
    assert undone[SLIDER0]["value"] == 1.0  # the sliders show the values of the step undone to
    assert c.predict(api_name="/ui_undo")[SLIDER0]["value"] == 0.0
    expect_error("not in the list of choices: [10, 30]", c.predict, 0, *[0.0] * N_SLIDERS, api_name="/ui_refine")


def test_save_download_upload_and_apply_a_vector(url, tmp_path):
    a = client(url)
    start = a.predict(11, 0.7, api_name="/ui_sample")
    expect_error("nothing to save", a.predict, "too_early", api_name="/ui_save_vector")
    a.predict(paint_canvas(tmp_path, editor(start)["background"], (0, 0, 16 * K, 32 * K)), 20,
              api_name="/ui_edit")
    saved = a.predict("top_red", api_name="/ui_save_vector")
    path = saved[-1]
    assert path.endswith("top_red.safetensors")
    vector = EditingVector.load(Path(path))
    assert vector.name == "top_red" and vector.classes == [1] and vector.delta.shape == export_latent(a).shape
    slot = saved[SLIDER0 + 1]
    assert slot["visible"] and slot["label"] == "Top red" and slot["info"] == "your vector top_red"
    expect_error("preset", a.predict, "redder", api_name="/ui_save_vector")
    expect_error("letters", a.predict, "bad name!", api_name="/ui_save_vector")

    b = client(url)  # another person applies it to another picture
    other = b.predict(12, 0.7, api_name="/ui_sample")
    w0 = export_latent(b)
    uploaded = b.predict(handle_file(path), api_name="/ui_upload_vector")
    assert uploaded[SLIDER0 + 1]["label"] == "Top red" and "Added vector 'top_red'" in uploaded[STATUS]
    applied = slide(b, 0.0, 1.0)
    assert not np.array_equal(picture(applied[PICTURE]), picture(other[PICTURE]))
    assert np.allclose(export_latent(b), w0 + vector.delta, atol=1e-5)

    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    expect_error("not a readable safetensors editing vector", b.predict, handle_file(str(garbage)),
                 api_name="/ui_upload_vector")
    wrong = EditingVector("wrong", np.zeros((3, 7), np.float32)).save(tmp_path / "wrong.safetensors")
    expect_error("has shape (3, 7)", b.predict, handle_file(str(wrong)), api_name="/ui_upload_vector")
    assert "Step 1 of 2: sample (seed 12" in b.predict(api_name="/ui_undo")[STATUS]  # history intact


def test_photos_upload_crop_and_embed_with_previews(url, tmp_path):
    c = client(url)
    photo = tmp_path / "photo.jpg"
    Image.new("CMYK", (300, 200), (0, 200, 200, 0)).save(photo)  # a CMYK JPEG
    out = c.predict(handle_file(str(photo)), api_name="/ui_upload_photo")
    assert "photo.jpg (300×200)" in out[0] and out[2:] == (100, 50, 50)
    preview = c.predict(50, 0, 100, api_name="/ui_crop_preview")
    assert picture(preview).shape[:2] == (200, 300)
    job = c.submit(50, 0, 100, 12, api_name="/ui_embed")
    previews = list(job)
    embedded = job.result()
    assert len(previews) >= 2 and "photo photo.jpg (embedded, 12 steps)" in embedded[STATUS]
    assert picture(embedded[PICTURE]).shape == (SIZE, SIZE, 3)
    job = c.submit(0, 10, api_name="/ui_example_photo")  # one click: the first example photo, embedded
    example = job.result()
    assert "photo face_1.png (embedded, 10 steps)" in example[STATUS]
    for mode, size in (("L", (64, 90)), ("RGBA", (90, 64)), ("P", (40, 40))):
        path = tmp_path / f"{mode}.png"
        Image.new(mode, size).save(path)
        assert "choose the square crop" in c.predict(handle_file(str(path)), api_name="/ui_upload_photo")[0]


def test_bad_input_gets_a_clear_message_and_the_session_stays_usable(url, tmp_path):
    c = client(url)
    expect_error("no picture yet", c.predict, api_name="/ui_export")
    start = c.predict(9, 0.7, api_name="/ui_sample")
    slide(c, 1.0)  # history: sample, sliders

    (tmp_path / "notes.txt").write_text("hello")
    expect_error("invalid file type", c.predict, handle_file(str(tmp_path / "notes.txt")), api_name="/ui_upload_photo")
    (tmp_path / "fake.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    expect_error("not a readable image", c.predict, handle_file(str(tmp_path / "fake.png")),
                 api_name="/ui_upload_photo")
    good = tmp_path / "good.png"
    Image.new("RGB", (64, 64), (10, 20, 30)).save(good)
    (tmp_path / "cut.png").write_bytes(good.read_bytes()[:40])
    expect_error("not a readable image", c.predict, handle_file(str(tmp_path / "cut.png")), api_name="/ui_upload_photo")
    Image.new("RGB", (8, 8)).save(tmp_path / "tiny.png")
    expect_error("at least 16 px", c.predict, handle_file(str(tmp_path / "tiny.png")), api_name="/ui_upload_photo")
    Image.new("L", (7100, 7100)).save(tmp_path / "huge.png")  # 50 MP, a small file
    expect_error("50 MP", c.predict, handle_file(str(tmp_path / "huge.png")), api_name="/ui_upload_photo")
    expect_error("upload a photo first", c.predict, 100, 50, 50, 10, api_name="/ui_embed")

    background = editor(start)["background"]
    expect_error("nothing painted", c.predict,
                 {"background": handle_file(background), "layers": [], "composite": handle_file(background)}, 10,
                 api_name="/ui_edit")
    expect_error("greater than maximum", slide, c, 5.0)
    expect_error("less than minimum value 0", c.predict, -3, 0.7, api_name="/ui_sample")
    expect_error("greater than maximum value 1", c.predict, 1, 1.5, api_name="/ui_sample")
    expect_error("less than minimum value 10", c.predict, paint_canvas(tmp_path, background, (0, 0, 64, 64)), 0.5,
                 api_name="/ui_edit")

    # NaN cannot be written in strict JSON; a raw request can carry it: the session still says why
    body = '{"data": [NaN' + ", 0" * (N_SLIDERS - 1) + '], "session_hash": "%s"}' % c.session_hash
    event = httpx.post(url + "gradio_api/call/ui_slide", content=body,
                       headers={"content-type": "application/json"}).json()["event_id"]
    stream = httpx.get(url + f"gradio_api/call/ui_slide/{event}", timeout=30).text
    assert "event: error" in stream and "must be a finite number" in stream

    # after all that, the history is intact: the slider step, then the sample
    undone = c.predict(api_name="/ui_undo")
    assert "Step 1 of 2: sample (seed 9" in undone[STATUS]
    assert np.array_equal(picture(undone[PICTURE]), picture(start[PICTURE]))


def test_models_that_cannot_be_loaded_say_why(url, model_folder, tmp_path):
    c = client(url)
    c.predict(9, 0.7, api_name="/ui_sample")
    expect_error("unknown model 'no-such-model'", c.predict, "no-such-model", api_name="/ui_load_model")
    expect_error("offline", c.predict, "someone/not-cached-model", api_name="/ui_load_model")  # HF_HUB_OFFLINE=1
    missing = tmp_path / "missing"
    missing.mkdir()
    shutil.copy(model_folder / "config.json", missing / "config.json")
    expect_error("the model folder has no generator.safetensors", c.predict, str(missing), api_name="/ui_load_model")
    corrupt = tmp_path / "corrupt"
    shutil.copytree(model_folder, corrupt)
    (corrupt / "generator.safetensors").write_bytes(b"garbage" * 10)
    expect_error("not a readable safetensors file", c.predict, str(corrupt), api_name="/ui_load_model")
    assert "Step 1 of 1: sample (seed 9" in c.predict(api_name="/ui_export")[1]  # still the same session


def test_a_generator_only_model_samples_but_explains_why_it_cannot_mask_edit(url, model_folder, tmp_path):
    folder = tmp_path / "generator_only"
    shutil.copytree(model_folder, folder)
    (folder / "segmenter.safetensors").unlink()
    config = json.loads((folder / "config.json").read_text())
    config["segmenter"] = None
    (folder / "config.json").write_text(json.dumps(config))
    c = client(url)
    loaded = c.predict(str(folder), api_name="/ui_load_model")
    assert "Loaded model" in loaded[STATUS] and loaded[LABELS] is None
    assert "Mask editing is off" in str(loaded[-3])
    assert "no label classes" in loaded[-6].lower()  # the legend
    sampled = c.predict(4, 0.7, api_name="/ui_sample")
    assert picture(sampled[PICTURE]).shape == (SIZE, SIZE, 3)
    blank = tmp_path / "blank.png"
    Image.new("RGBA", (SIZE * K, SIZE * K)).save(blank)
    expect_error("needs a segmentation branch", c.predict,
                 {"background": handle_file(str(blank)), "layers": [], "composite": handle_file(str(blank))}, 10,
                 api_name="/ui_edit")
    assert "Redder +1" in slide(c, 1.0)[STATUS]  # vectors without refinement still work
    expect_error("needs a segmentation branch", c.predict, 10, 1.0, *[0.0] * (N_SLIDERS - 1), api_name="/ui_refine")


def test_cancel_stops_the_edit_and_keeps_the_best_result(url, tmp_path):
    c = client(url)
    start = c.predict(6, 0.7, api_name="/ui_sample")
    job = c.submit(paint_canvas(tmp_path, editor(start)["background"], (0, 0, 32 * K, 16 * K)), 500,
                   api_name="/ui_edit")
    deadline = time.time() + 60
    while not job.outputs() and not job.done() and time.time() < deadline:  # wait for the first preview
        time.sleep(0.05)
    assert "Editing: step" in job.outputs()[-1][STATUS]
    assert "Cancelling" in c.predict(api_name="/ui_cancel")  # (the page shows it as a notice)
    result = job.result(timeout=60)
    assert "Edit cancelled after" in result[STATUS] and "kept the best result" in result[STATUS]
    assert "mask edit" in result[STATUS]
    assert "Nothing to cancel" in c.predict(api_name="/ui_cancel")


def test_concurrent_visitors_keep_their_own_pictures(url, engine):
    """8 clients × 5 actions at once: no errors, and every client's latent stays its own."""
    preset = engine.presets["redder"]

    def visitor(i: int) -> tuple[np.ndarray, np.ndarray]:
        c = client(url)
        seed, scale = 100 + i, 0.25 * (i % 4 + 1)
        c.predict(seed, 0.7, api_name="/ui_sample")
        slide(c, scale)
        c.predict(api_name="/ui_undo")
        c.predict(api_name="/ui_redo")
        got = export_latent(c)
        return got, engine.apply_vectors(engine.sample(seed, 0.7).wplus, [(preset, scale)]).wplus

    start = time.time()
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(visitor, range(8)))
    assert time.time() - start < 120
    for got, expected in results:
        assert np.allclose(got, expected, atol=1e-5)
    assert len({r[0].tobytes() for r in results}) == 8


def test_app_py_wires_its_flags_to_launch(monkeypatch):
    import app
    import editgan.app

    calls = {}

    class FakeDemo:
        def launch(self, **kwargs):
            calls["launch"] = kwargs

    def fake_build(**kwargs):
        calls["build"] = kwargs
        return FakeDemo()

    monkeypatch.setattr(editgan.app, "build_demo", fake_build)
    for variable in ("SPACE_ID", "EDITGAN_MODEL", "EDITGAN_MODELS"):
        monkeypatch.delenv(variable, raising=False)
    limits = editgan.app.launch_options()
    app.main(["--share", "--model", "owner/name", "--device", "cpu", "--port", "7000", "--host", "0.0.0.0"])
    assert calls["build"] == {"model": "owner/name", "device": "cpu", "public": True, "models": []}  # share: public
    assert calls["launch"] == {"share": True, "server_name": "0.0.0.0", "server_port": 7000, **limits}
    app.main([])
    assert calls["build"]["public"] is False
    assert calls["launch"] == {"share": False, "server_name": "127.0.0.1", "server_port": None, **limits}
    assert limits["max_file_size"] and limits["state_session_capacity"] <= 1000
    app.main(["--public", "--models", "a/b, ./c"])
    assert calls["build"]["public"] is True and calls["build"]["models"] == ["a/b", "./c"]
    monkeypatch.setenv("SPACE_ID", "someone/editgan")  # a Hugging Face Space runs in public mode
    monkeypatch.setenv("EDITGAN_MODELS", "org/cars,org/cats")  # and its variables name the models
    app.main([])
    assert calls["build"]["public"] is True and calls["build"]["models"] == ["org/cars", "org/cats"]


def test_long_jobs_take_turns_and_quick_actions_do_not_queue_behind_them(url, model_folder):
    demo = build_demo(model=str(model_folder), device="cpu", engines=EngineRegistry())
    assert demo._queue.max_size is not None and demo._queue.max_size > 0
    groups: dict[str, set[str]] = {}
    for fn in demo.fns.values():
        groups.setdefault(fn.concurrency_id, set()).add(fn.api_name)
    assert {"ui_edit", "ui_embed", "ui_refine", "edit", "embed"} <= groups["long"]
    assert {"ui_sample", "ui_slide", "sample", "export"} <= groups["quick"]
    assert {"ui_undo", "ui_redo", "ui_reset", "ui_export"} <= groups["session"]
    limits = {fn.concurrency_id: fn.concurrency_limit for fn in demo.fns.values()}
    assert limits["long"] == 1 and limits["quick"] > 1 and limits["session"] > 1
    assert all(fn.api_name for fn in demo.fns.values() if fn.api_visibility == "public")


def test_the_engine_registry_loads_each_model_once_and_retries_failures():
    calls = []
    gate = threading.Event()

    def loader(model_id, device=None, progress=None):
        calls.append((model_id, device))
        gate.wait(5)
        if model_id == "owner/broken":
            raise ModelLoadError("broken")
        return object()

    registry = EngineRegistry(loader, max_models=2)
    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(registry.get, "owner/a", "cpu") for _ in range(6)]
        time.sleep(0.2)
        gate.set()
        engines = {id(f.result()) for f in futures}
    assert len(engines) == 1 and calls == [("owner/a", "cpu")]  # six requests, one load
    for _ in range(2):
        with pytest.raises(ModelLoadError):
            registry.get("owner/broken", "cpu")
    assert calls.count(("owner/broken", "cpu")) == 2  # failures are not cached
    registry.get("owner/b", "cpu")
    registry.get("owner/c", "cpu")
    assert registry.loaded() == [("owner/b", "cpu"), ("owner/c", "cpu")]  # least recently used dropped


def test_models_made_in_the_process_go_before_the_models_the_operator_serves():
    """A visitor of a public studio who teaches adds a model to the registry; it must not push out a served one."""
    calls = []

    def loader(model_id, device=None, progress=None):
        calls.append(model_id)
        return object()

    registry = EngineRegistry(loader, max_models=2)
    served = registry.get("owner/served", "cpu")
    registry.put("taught-1", object(), "cpu")
    registry.put("taught-2", object(), "cpu")  # over the bound: taught-1 goes, though served is older
    assert registry.get("owner/served", "cpu") is served and calls == ["owner/served"]
    assert [key for key, _ in registry.loaded()] == ["taught-2", "owner/served"]
    registry.get("owner/other", "cpu")  # over the bound again: the taught one goes first
    assert [key for key, _ in registry.loaded()] == ["owner/served", "owner/other"]
    registry.get("owner/third", "cpu")  # only loaded ones left: the least recently used of them
    assert [key for key, _ in registry.loaded()] == ["owner/other", "owner/third"]
