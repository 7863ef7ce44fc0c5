"""The Teach tab's callbacks without a browser, on a tiny generator-only model: classes from a template, samples
annotated with paint and fill, the list of samples, import and export, training that hands the Studio tab a branch,
presets, saving the model folder and loading it back, bad input, public mode."""
from __future__ import annotations

import json
import re
import shutil
import zipfile
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from PIL import Image
from tiny_models import SIZE, tiny_generator_only_folder

from editgan.app import build_demo
from editgan.app.engines import EngineRegistry
from editgan.app.teach_files import unpack_upload
from editgan.app.teach_views import parse_classes
from editgan.app.teach_work import TeachWork
from editgan.app.views import canvas_scale
from editgan.engine.model import EditGANModel
from editgan.errors import AnnotationError, VectorError
from editgan.modelio.checkpoint import add_preset
from editgan.modelio.vectors import EditingVector

K = canvas_scale(SIZE, SIZE)
CLASSES = "background #000000\nsky #0000ff\nthing #ff0000"


@pytest.fixture(scope="module")
def generator_only(tmp_path_factory) -> Path:
    return tiny_generator_only_folder(tmp_path_factory.mktemp("gen") / "gen")


def make_demo(folder: Path, public: bool = False):
    demo = build_demo(model=str(folder), device="cpu", engines=EngineRegistry(), public=public)
    state = demo.studio.start(None)[demo.studio.c.state]
    return demo, demo.teach, demo.studio, state


def paint(color: tuple[int, int, int], rows: slice, cols: slice) -> dict:
    """The canvas's value as the browser sends it: one RGBA paint layer over the label map enlarged K times."""
    layer = np.zeros((SIZE * K, SIZE * K, 4), np.uint8)
    layer[rows.start * K:rows.stop * K, cols.start * K:cols.stop * K] = (*color, 255)
    return {"background": None, "layers": [layer], "composite": None}


def error_text(info) -> str:
    message = str(info.value.message if isinstance(info.value, gr.Error) else info.value)
    assert "\n" not in message and "Traceback" not in message
    return message.lower()  # messages start with a capital


def annotate_two(teach, state) -> TeachWork:
    work = teach.set_classes(None, state, CLASSES)[teach.t.state]
    for seed in (1, 2):
        teach.sample(work, state, seed, 0.7)
        canvas = paint((255, 0, 0), slice(0, 16), slice(0, SIZE))
        teach.fill_picture(work, canvas, "sky", 40, gr.SelectData(None, {"index": [5 * K, 20 * K], "value": None}))
        teach.keep(work, None)
    return work


def test_template_gives_classes_and_the_brush_takes_their_colors(generator_only):
    _, teach, _, state = make_demo(generator_only)
    text = teach.template_classes("car")
    names, palette = parse_classes(text)
    assert len(names) == 32 and names[0] == "background"
    out = teach.set_classes(None, state, text)
    work = out[teach.t.state]
    assert work.class_names == names
    assert out[teach.t.brush_class].choices[1][0] == names[1]
    assert "32 classes set" in out[teach.t.status]
    with pytest.raises(gr.Error) as info:
        teach.model_class_list(state)  # the generator-only model has none
    assert "no segmentation branch" in error_text(info)


def test_classes_are_named_and_coloured_with_the_colour_picker(generator_only):
    demo, teach, studio, state = make_demo(generator_only)
    out = teach.put_class("", "background", "#000000")
    assert out[teach.t.classes] == "background #000000" and "Added class background" in out[teach.t.status]
    text = teach.put_class(out[teach.t.classes], "  hair  ", "rgba(54, 88, 120, 1)")[teach.t.classes]
    assert text == "background #000000\nhair #365878"
    out = teach.put_class(text, "hair", "#F0a")
    assert out[teach.t.classes] == "background #000000\nhair #ff00aa" and "Recoloured" in out[teach.t.status]
    work = teach.set_classes(None, state, out[teach.t.classes])[teach.t.state]
    assert work.class_names == ["background", "hair"] and work.palette[1] == (255, 0, 170)
    for args, message in [((text, "", "#000000"), "name the class"), ((text, "eye", "blue"), "pick a colour"),
                          ((text, "eye", None), "pick a colour"), (("nonsense", "eye", "#000000"), "line 1")]:
        with pytest.raises(gr.Error) as info:
            teach.put_class(*args)
        assert message in error_text(info) and "\n" not in error_text(info)


def test_annotate_with_paint_and_fill_then_list_reopen_and_delete(generator_only):
    _, teach, _, state = make_demo(generator_only)
    work = teach.set_classes(None, state, CLASSES)[teach.t.state]
    out = teach.sample(work, state, 3, 0.7)
    assert not work.draft.labels.any() and "all background" in out[teach.t.status]
    assert out[teach.t.editor]["background"].shape == (SIZE * K, SIZE * K, 3)
    teach.keep(work, paint((255, 0, 0), slice(4, 10), slice(2, 30)))
    kept = work.sample("3")
    assert (kept.labels[4:10, 2:30] == 2).all() and kept.labels.sum() == 2 * 6 * 28

    # fill: by the label map's class (the painted band) and by the picture's colours
    band = gr.SelectData(None, {"index": [8 * K + 3, 6 * K + 3], "value": None})
    teach.fill_labels(work, None, "sky", 0, band)
    assert (work.draft.labels[4:10, 2:30] == 1).all() and (work.draft.labels == 1).sum() == 6 * 28
    out = teach.fill_picture(work, None, "thing", 255, gr.SelectData(None, {"index": [0, 0], "value": None}))
    assert (work.draft.labels == 2).all(), "tolerance 255 takes the whole picture"
    assert "Filled" in out[teach.t.status]
    teach.keep(work, None)
    teach.sample(work, state, 4, 0.7)
    teach.keep(work, None)
    out = teach.open_sample(work, state, "3")
    assert (work.draft.labels == 2).all() and out[teach.t.seed] == 3
    out = teach.delete_sample(work, "3")
    assert [s.key for s in work.samples] == ["4"] and "1 annotated sample" in out[teach.t.samples]


def test_bad_input_is_one_line(generator_only):
    _, teach, _, state = make_demo(generator_only)
    for call, match in [
        (lambda: teach.sample(None, state, 1, 0.7), "set the classes first"),
        (lambda: teach.set_classes(None, state, "only #ff0000"), "2 to 256"),
        (lambda: teach.set_classes(None, state, "a #ff0000\nb nocolor"), "line 2"),
        (lambda: teach.set_classes(None, state, "a #ff0000\nb #ff0000"), "same colour"),
        (lambda: teach.template_classes("dragons"), "unknown class template"),
        (lambda: teach.train(None, state, 2, 2).__next__(), "set the classes first"),
    ]:
        with pytest.raises(gr.Error) as info:
            call()
        assert match in error_text(info)
    work = teach.set_classes(None, state, CLASSES)[teach.t.state]
    for call, match in [
        (lambda: teach.sample(work, state, -1, 0.7), "whole number"),
        (lambda: teach.sample(work, state, 1, float("nan")), "truncation"),
        (lambda: teach.keep(work, None), "draw a sample first"),
        (lambda: next(teach.train(work, state, 2, 2)), "at least one annotated sample"),
        (lambda: teach.open_sample(work, state, "../etc"), "no annotated sample"),
        (lambda: teach.pick_class(work, state, "nope"), "pick one of the classes"),
    ]:
        with pytest.raises(gr.Error) as info:
            call()
        assert match in error_text(info)
    teach.sample(work, state, 1, 0.7)
    teach.keep(work, None)
    with pytest.raises(gr.Error) as info:
        next(teach.train(work, state, 99, 2))
    assert "ensemble size must be a whole number from 2 to 10" in error_text(info)
    with pytest.raises(gr.Error) as info:
        teach.fill_picture(work, None, "sky", 0, gr.SelectData(None, {"index": [SIZE * K * 3, 1], "value": None}))
    assert "click inside" in error_text(info)


def test_export_then_import_a_zip_or_files(generator_only, tmp_path):
    _, teach, _, state = make_demo(generator_only)
    work = annotate_two(teach, state)
    archive = Path(teach.export(work)[teach.t.download])
    with zipfile.ZipFile(archive) as z:
        names = sorted(Path(n).name for n in z.namelist())
    assert names == ["1.npy", "1.png", "2.npy", "2.png", "classes.json"]
    out = teach.import_files(None, state, [str(archive)])
    imported = out[teach.t.state]
    assert [s.key for s in imported.samples] == ["1", "2"]
    for a, b in zip(imported.samples, work.samples):
        assert np.array_equal(a.labels, b.labels) and np.allclose(a.wplus, b.wplus)
    assert "Imported 2 annotated samples over 3 classes" in out[teach.t.status]

    # the folder's files uploaded one by one; a seed map without its .npy is drawn again from the seed
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "classes.json").write_text(json.dumps({"classes": [{"name": "bg", "color": [0, 0, 0]},
                                                                 {"name": "fg", "color": [9, 9, 9]}]}))
    Image.fromarray(np.eye(SIZE, dtype=np.uint8), "L").save(folder / "7.png")
    out = teach.import_files(None, state, [str(folder / "classes.json"), str(folder / "7.png")])
    assert out[teach.t.state].samples[0].wplus.shape[1] == 64

    Image.fromarray(np.zeros((8, 8), np.uint8), "L").save(folder / "8.png")
    with pytest.raises(gr.Error) as info:
        teach.import_files(None, state, [str(folder / "classes.json"), str(folder / "8.png")])
    assert "8.png" in error_text(info) and "32×32" in error_text(info)
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    with pytest.raises(gr.Error) as info:
        teach.import_files(None, state, [str(tmp_path / "bad.zip")])
    assert "bad.zip: not a readable zip file" in error_text(info)


def test_zip_members_are_taken_flat_and_bounded(tmp_path):
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("../../evil/classes.json", "{}")
        z.writestr("labels/3.png", b"x")
        z.writestr("run.sh", b"rm -rf /")
        z.writestr("__MACOSX/._3.png", b"junk")
    out = unpack_upload([archive], tmp_path / "out")
    assert sorted(p.name for p in out.iterdir()) == ["3.png", "classes.json"]
    with pytest.raises(AnnotationError, match="no files were uploaded"):
        unpack_upload([], tmp_path / "none")
    with pytest.raises(AnnotationError, match="has no classes.json"):
        unpack_upload([tmp_path / "out" / "3.png"], tmp_path / "other")
    big = tmp_path / "big.zip"
    with zipfile.ZipFile(big, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("1.png", b"\0" * (300 * 2**20))
    with pytest.raises(AnnotationError, match="more than 256 MB"):
        unpack_upload([big], tmp_path / "big")


def test_an_upload_over_the_sessions_sample_limit_is_refused_before_any_map_is_read(generator_only, tmp_path,
                                                                                     monkeypatch):
    """A public session takes 32 samples: 1000 tiny uniform label maps (a zip of 1 MB, gigabytes decoded) are
    refused while unpacking, before any label map is decoded."""
    import editgan.app.teach_tab as teach_tab

    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("classes.json", "{}")
        for i in range(40):  # 41 files: within 2 × 32 + 1, but 40 label maps
            z.writestr(f"{i}.png", b"x")
    with pytest.raises(AnnotationError, match="at most 32 annotated samples are taken here"):
        unpack_upload([archive], tmp_path / "out", max_samples=32)
    assert len(list((tmp_path / "out").glob("*.png"))) <= 32
    assert unpack_upload([archive], tmp_path / "roomy", max_samples=40).is_dir()  # 41 files fit 40 samples

    def no_decoding(*args, **kwargs):
        raise AssertionError("a label map was decoded")

    monkeypatch.setattr(teach_tab, "load_annotations", no_decoding)
    _, teach, _, state = make_demo(generator_only)
    with pytest.raises(gr.Error) as info:
        teach.import_files(TeachWork(max_samples=4), state, [str(archive)])
    assert "at most 4 annotated samples are taken here" in error_text(info)


def test_a_zip_member_larger_than_its_declared_size_is_refused(tmp_path):
    archive = tmp_path / "lying.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("classes.json", "{}")
        z.writestr("1.png", b"\0" * 5000, compress_type=zipfile.ZIP_DEFLATED)
    raw = bytearray(archive.read_bytes())
    # the central directory's uncompressed size of 1.png (at offset 24 of its entry) says 100 bytes
    entry = raw.rindex(b"PK\x01\x02")
    raw[entry + 24: entry + 28] = (100).to_bytes(4, "little")
    archive.write_bytes(bytes(raw))
    with pytest.raises(AnnotationError, match=r"1\.png (is larger than the zip says|cannot be unpacked)"):
        unpack_upload([archive], tmp_path / "out")
    assert (tmp_path / "out" / "1.png").stat().st_size <= 101  # never more than declared, plus the byte to tell


def test_train_hands_the_studio_a_branch_then_preset_save_and_reload(generator_only, tmp_path):
    demo, teach, studio, state = make_demo(generator_only)
    assert not studio.engine(state.model_id).has_segmenter
    work = annotate_two(teach, state)
    outs = list(teach.train(work, state, 2, 3))
    final = outs[-1]
    assert "Done" in final[teach.t.status] and "held-out agreement" in final[teach.t.report]
    assert final[teach.t.preview].shape[0] > 0
    session = final[studio.c.state]
    engine = studio.engine(session.model_id)
    assert engine.has_segmenter and engine.config.class_names == ["background", "sky", "thing"]
    assert session.model_id == work.taught_key
    assert "mask editing works now" in final[studio.c.picture.status]
    listed = final[studio.c.model.model]  # the model list selects the model the model line names
    assert listed.value == work.taught_key and (work.taught_key, work.taught_key) in listed.choices
    assert f"({work.taught_key})" in final[studio.c.model.info]

    # a new sample starts from the branch's prediction, with an uncertainty map
    out = teach.sample(work, state, 9, 0.7)
    assert "prediction" in out[teach.t.status] and out[teach.t.uncertainty] is not None

    # a mask edit in the Studio, saved as a preset of the taught model
    outs = list(studio.edit(session, paint((255, 0, 0), slice(4, 28), slice(4, 28)), 40))
    assert "Edit" in outs[-1][studio.c.picture.status]
    out = studio.save_preset(session, "more_thing", "More thing", -3, 3, 5)
    assert "Saved the current edit as preset" in out[studio.c.picture.status]
    slider = out[studio.c.vectors.sliders[0]]
    assert slider.visible and slider.label == "More thing" and (slider.minimum, slider.maximum) == (-3, 3)
    assert "presets: More thing" in out[studio.c.model.info]
    taught_folder = Path(session.model_id)
    assert (taught_folder / "vectors" / "more_thing.safetensors").is_file()
    listed = json.loads((taught_folder / "config.json").read_text())["presets"]
    assert listed == [{"name": "more_thing", "display_name": "More thing", "scale_range": [-3.0, 3.0],
                       "default_scale": 1.0, "refine_steps": 5}]

    # save the folder (local mode: a server folder) and load it back
    target_folder = tmp_path / "my-model"
    out = teach.save_folder(work, session, str(target_folder), False)
    assert "Saved" in out[teach.t.status] and out[studio.c.state].model_id == str(target_folder.resolve())
    reloaded = EditGANModel.from_folder(target_folder, device="cpu")
    assert reloaded.has_segmenter and list(reloaded.presets) == ["more_thing"]
    card = (target_folder / "README.md").read_text()
    assert "2 annotated samples" in card and "Held-out agreement" in card
    with pytest.raises(gr.Error) as info:
        teach.save_folder(work, session, str(target_folder), False)
    assert "exists" in error_text(info)
    fresh = build_demo(model=str(target_folder), device="cpu", engines=EngineRegistry())
    slider = fresh.studio.c.vectors.sliders[0]
    assert slider.visible and slider.label == "More thing"


def test_the_preview_shows_the_classifiers_trained_so_far_while_training(generator_only):
    demo, teach, studio, state = make_demo(generator_only)
    work = annotate_two(teach, state)
    teach.partial_every_s = 0
    outs = list(teach.train(work, state, 3, 60))  # long enough for the page's updates (a few a second)
    during = [out for out in outs[:-1] if teach.t.preview in out]
    assert during and "Done" not in during[0][teach.t.status]
    assert re.search(r"preview: the first [12] of 3 classifiers", during[0][teach.t.status])
    assert during[0][teach.t.preview].shape == outs[-1][teach.t.preview].shape
    assert "Done" in outs[-1][teach.t.status]


def test_save_preset_needs_a_local_model_folder_and_an_edit(generator_only, tiny_model_dir):
    _, _, studio, state = make_demo(tiny_model_dir)
    with pytest.raises(gr.Error) as info:
        studio.save_preset(state, "p", "", -2, 2, 0)
    assert "nothing to save" in error_text(info)
    with pytest.raises(gr.Error) as info:
        studio.save_preset(state, "p", "", 1, 2, 0)
    assert "below 0 to above 0" in error_text(info)
    demo = build_demo(model="toy-faces", device="cpu", engines=EngineRegistry())
    with pytest.raises(gr.Error) as info:
        demo.studio.save_preset(None, "p", "", -2, 2, 0)
    assert "not one" in error_text(info)


def test_public_mode_keeps_taught_models_in_the_session_and_offers_a_zip(generator_only, tiny_model_dir):
    demo, teach, studio, state = make_demo(tiny_model_dir, public=True)
    # an operator's folder is not written into
    session = state
    engine = studio.engine(session.model_id)
    outcome = engine.apply_vector(session.current.wplus, "redder", 1.0)
    session.record_edit(outcome.wplus, [1], "test edit")
    with pytest.raises(gr.Error) as info:
        studio.save_preset(session, "p", "", -2, 2, 0)
    assert "does not write into its models' folders" in error_text(info)
    assert str(tiny_model_dir) not in str(info.value.message)
    with pytest.raises(gr.Error) as info:
        next(teach.train(annotate_two(teach, state), state, 8, 2))
    assert "from 2 to 4" in error_text(info)

    work = annotate_two(teach, state)
    final = list(teach.train(work, state, 2, 2))[-1]
    session = final[studio.c.state]
    assert Path(session.model_id).is_relative_to(studio.scratch.root)
    info = final[studio.c.model.info]
    assert str(studio.scratch.root) not in info and "tiny-taught" in info
    listed = final[studio.c.model.model]  # the model list names the taught model too, never by its path
    assert listed.value == "tiny-taught" and ("tiny-taught", "tiny-taught") in listed.choices
    assert ("tiny", "tiny") in listed.choices and not any("/" in value for _, value in listed.choices)
    again = studio.load_model("tiny-taught", session)  # the visitor's own model, picked in the list
    assert again[studio.c.state].model_id == session.model_id and "Loaded model tiny-taught" in \
        again[studio.c.picture.status]
    with pytest.raises(gr.Error, match="offers the models tiny"):
        studio.load_model("tiny-taught", None)  # not another visitor's
    back = studio.load_model("tiny", session)
    assert back[studio.c.model.model].value == "tiny" and ("tiny-taught", "tiny-taught") not in \
        back[studio.c.model.model].choices
    out = teach.save_folder(work, session, "/etc/should-not-be-used", True)
    archive = Path(out[teach.t.saved])
    assert archive.is_relative_to(studio.scratch.root) and archive.suffix == ".zip"
    with zipfile.ZipFile(archive) as z:
        assert {"config.json", "segmenter.safetensors", "generator.safetensors", "README.md"} <= \
            {Path(n).name for n in z.namelist()}
    assert not Path("/etc/should-not-be-used").exists()
    teach.end_session(work)
    assert not (studio.scratch.root / work.files_owner).exists()


def test_cancel_stops_training_and_changes_nothing(generator_only):
    _, teach, studio, state = make_demo(generator_only)
    work = annotate_two(teach, state)
    model_before = state.model_id
    run = teach.train(work, state, 10, 100)
    assert "Training on 2 samples" in next(run)[teach.t.status]
    first = next(run)  # the job is running: its first progress report
    assert "Training the branch" in first[teach.t.status]
    assert teach.cancels.cancel(f"teach-{id(work)}")
    rest = list(run)
    assert "cancelled" in rest[-1][teach.t.status]
    assert work.taught_key is None and state.model_id == model_before
    assert not studio.engine(state.model_id).has_segmenter


def test_add_preset_writes_the_vector_and_lists_it_in_the_config(tiny_model_dir, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    model = EditGANModel.from_folder(folder, device="cpu")
    delta = np.full((model.n_latent, model.style_dim), 0.01, np.float32)
    add_preset(folder, EditingVector("mine", delta, [1], "Mine", (-1.0, 3.0), refine_steps=7))
    add_preset(folder, EditingVector("redder", delta * 2, [1], "Redder again"))  # same name: replaced
    reloaded = EditGANModel.from_folder(folder, device="cpu")
    assert list(reloaded.presets) == ["redder", "mine"]
    mine = reloaded.presets["mine"]
    assert mine.scale_range == (-1.0, 3.0) and mine.refine_steps == 7 and mine.display_name == "Mine"
    assert np.allclose(reloaded.presets["redder"].delta, delta * 2)
    with pytest.raises(VectorError, match="shape"):
        add_preset(folder, EditingVector("wrong", np.zeros((3, 4), np.float32)))
    with pytest.raises(VectorError, match="classes"):
        add_preset(folder, EditingVector("far", delta, [7]))
    assert not (folder / "vectors" / "wrong.safetensors").exists()
    assert [p["name"] for p in json.loads((folder / "config.json").read_text())["presets"]] == ["redder", "mine"]


def test_a_taught_model_outlives_the_teach_session_while_the_studio_uses_it(generator_only):
    """The Teach tab's state may end (an hour without a Teach event) while its model is edited in the Studio tab:
    the model's folder stays as long as the Studio uses it, and goes once it has not been used for the scratch
    space's age limit; saving it then is refused in a sentence, never an empty zip."""
    import os
    import time

    demo, teach, studio, state = make_demo(generator_only, public=True)
    work = annotate_two(teach, state)
    session = list(teach.train(work, state, 2, 2))[-1][studio.c.state]
    folder = Path(session.model_id)
    teach.end_session(work)  # the Teach tab's state expired
    old = time.time() - 2 * studio.scratch.max_age_s
    for path in (folder.parent.parent, *folder.parent.parent.rglob("*")):
        os.utime(path, (old, old))  # written long ago ...
    list(studio.sample(session, 3, 0.7))  # ... but used just now
    studio.scratch.sweep()
    assert (folder / "config.json").is_file()
    assert teach.save_folder(work, session, "", False)[teach.t.saved].endswith(".zip")

    for path in (folder.parent.parent, *folder.parent.parent.rglob("*")):
        os.utime(path, (old, old))  # and now unused for longer than the limit
    studio.scratch.sweep()
    assert not folder.exists()
    with pytest.raises(gr.Error) as info:
        teach.save_folder(work, session, "", False)
    assert "no longer kept on the server" in error_text(info) and "train it again" in error_text(info)


def test_training_is_refused_before_it_starts_when_the_scratch_space_is_full(generator_only):
    _, teach, studio, state = make_demo(generator_only)
    work = annotate_two(teach, state)
    studio.scratch.max_bytes = -1  # full, whatever it holds
    studio.scratch.sweep()
    run = teach.train(work, state, 2, 2)
    with pytest.raises(gr.Error, match="space for visitors' files is full"):
        next(run)
    assert work.taught_key is None


def test_training_again_replaces_the_taught_model_only_once_the_new_one_is_saved(generator_only, monkeypatch):
    _, teach, studio, state = make_demo(generator_only)
    work = annotate_two(teach, state)
    first = Path(list(teach.train(work, state, 2, 1))[-1][studio.c.state].model_id)

    def broken(*args, **kwargs):
        raise OSError("disk failure")
    monkeypatch.setattr("editgan.app.teach_tab.save_taught_model", broken)
    with pytest.raises(gr.Error, match="went wrong"):
        list(teach.train(work, state, 2, 1))
    assert work.taught_key == str(first) and (first / "config.json").is_file()  # the first is still there
    monkeypatch.undo()
    second = Path(list(teach.train(work, state, 2, 1))[-1][studio.c.state].model_id)
    assert second != first and (second / "config.json").is_file() and not first.exists()
    assert work.taught_key == str(second)


def test_a_taught_model_goes_when_the_studio_session_that_used_it_ends(generator_only):
    _, teach, studio, state = make_demo(generator_only, public=True)
    work = annotate_two(teach, state)
    session = list(teach.train(work, state, 2, 1))[-1][studio.c.state]
    folder = Path(session.model_id)
    assert (folder / "config.json").is_file()
    studio.end_session(session)  # the visitor's tab closed: nobody else may use the model
    assert not folder.parent.exists() and studio.scratch.root.exists()
