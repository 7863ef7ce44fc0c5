"""Teach's class templates and annotation folders: round trips, and one line naming the file for each bad input."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from tiny_models import tiny_model_folder

from editgan.engine.model import EditGANModel
from editgan.errors import AnnotationError, EditGANError
from editgan.modelio.convert.editgan_car_release import CLASSES as CAR_CLASSES
from editgan.teach.annotations import AnnotationSet, load_annotations, read_annotations, write_annotations
from editgan.teach.templates import MIN_COLOR_DISTANCE, closest_colors, get_template, template_names

CLASSES = {"classes": [{"name": "other", "color": [0, 0, 0]}, {"name": "reddish", "color": [255, 0, 0]},
                       {"name": "blue", "color": [0, 0, 255]}]}


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return EditGANModel.from_folder(tiny_model_folder(tmp_path_factory.mktemp("tiny"), with_encoder=False),
                                    device="cpu")


def labels_of(seed: int, shape=(32, 32)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 3, shape)


def classes_folder(tmp_path, classes=None):
    folder = tmp_path / "labels"
    folder.mkdir()
    (folder / "classes.json").write_text(json.dumps(classes or CLASSES))
    return folder


def palette_png(path, labels, palette=((0, 0, 0), (255, 0, 0), (0, 0, 255))):
    image = Image.fromarray(labels.astype(np.uint8), "P")
    image.putpalette([v for c in palette for v in c])
    image.save(path)


# -- templates ---------------------------------------------------------------------------------------------------
def test_templates_are_listed_and_their_colours_are_told_apart():
    assert template_names() == ["face", "car", "cat", "bird"]
    for name in template_names():
        template = get_template(name)
        assert template.class_names[0] == "background"
        assert len(set(template.class_names)) == len(template.class_names), name
        distance, i, j = closest_colors(template.palette)
        assert distance >= MIN_COLOR_DISTANCE, (name, template.class_names[i], template.class_names[j], distance)
        AnnotationSet(template.class_names, template.palette)  # a valid class list
    assert len(get_template("face").classes) == 34 and len(get_template("car").classes) == 32
    assert get_template("car").class_names == [n for n, _ in CAR_CLASSES]  # EditGAN's ids, reused by import
    assert get_template("car").classes[17] == CAR_CLASSES[17]  # the release's colours where they are distinct
    with pytest.raises(ValueError, match="unknown class template 'dog'"):
        get_template("dog")


# -- folders ----------------------------------------------------------------------------------------------------------
def test_folder_round_trip(model, tmp_path):
    annotations = AnnotationSet(["other", "reddish", "blue"], [(0, 0, 0), (255, 0, 0), (0, 0, 255)], truncation=0.5)
    annotations.add(labels_of(1), model.sample(7, 0.5).wplus, seed=7)
    annotations.add(labels_of(2), model.sample(99).wplus + 0.1, name="photo_1")
    folder = write_annotations(tmp_path / "out", annotations)
    assert sorted(p.name for p in folder.iterdir()) == ["7.npy", "7.png", "classes.json", "photo_1.npy",
                                                        "photo_1.png"]
    back = load_annotations(folder, model)
    assert back.class_names == annotations.class_names and back.palette == annotations.palette
    assert back.truncation == 0.5 and [s.key for s in back.samples] == ["7", "photo_1"]
    for a, b in zip(annotations.samples, back.samples):
        assert (a.seed, a.name) == (b.seed, b.name)
        np.testing.assert_array_equal(a.labels, b.labels)
        np.testing.assert_array_equal(a.wplus, b.wplus)
    with pytest.raises(AnnotationError, match="exists and is not empty"):
        write_annotations(folder, annotations)
    annotations.remove("photo_1")
    write_annotations(folder, annotations, overwrite=True)
    assert not (folder / "photo_1.png").exists()


def test_seed_maps_get_their_latent_from_the_model_at_the_recorded_truncation(model, tmp_path):
    folder = classes_folder(tmp_path, {**CLASSES, "truncation": 0.3})
    palette_png(folder / "12.png", labels_of(3))
    annotations = load_annotations(folder, model)
    assert annotations.samples[0].seed == 12
    np.testing.assert_array_equal(annotations.samples[0].wplus, model.sample(12, 0.3).wplus)
    assert not np.allclose(annotations.samples[0].wplus, model.sample(12, 0.7).wplus)


def test_rgb_and_greyscale_maps_are_read_as_class_colours_and_ids(model, tmp_path):
    folder = classes_folder(tmp_path)
    labels = labels_of(4)
    colours = np.array([[0, 0, 0], [255, 0, 0], [0, 0, 255]], dtype=np.uint8)
    Image.fromarray(colours[labels]).save(folder / "1.png")
    Image.fromarray(labels.astype(np.uint8), "L").save(folder / "2.png")
    other_palette = Image.fromarray((2 - labels).astype(np.uint8), "P")  # another tool's palette order
    other_palette.putpalette([0, 0, 255, 255, 0, 0, 0, 0, 0])
    other_palette.save(folder / "3.png")
    for sample in read_annotations(folder, (32, 32)).samples:
        np.testing.assert_array_equal(sample.labels, labels)


def write_bad(kind: str, folder, model):
    """Make the folder hold one bad input; return the file name the message must name."""
    if kind == "wrong size":
        palette_png(folder / "3.png", labels_of(0, (32, 40)))
        return "3.png: the label map is 40×32; this model's pictures are 32×32"
    if kind == "unknown colour":
        picture = np.zeros((32, 32, 3), dtype=np.uint8)
        picture[:2, :3] = (0x12, 0x34, 0x56)
        picture[5, 5] = (1, 2, 3)
        Image.fromarray(picture).save(folder / "4.png")
        return "4.png: colour #123456 (6 pixels) is not one of classes.json's colours (and 1 more colours, 1 pixels)"
    if kind == "empty folder":
        return "labels holds no label maps (<seed>.png, or <name>.png beside <name>.npy)"
    if kind == "no classes.json":
        (folder / "classes.json").unlink()
        palette_png(folder / "1.png", labels_of(0))
        return "the folder has no classes.json"
    if kind == "seed not a number":
        palette_png(folder / "abc.png", labels_of(0))
        return "abc.png: 'abc' is not a seed (a whole number) and there is no abc.npy beside it"
    if kind == "classes.json not JSON":
        (folder / "classes.json").write_text('{"classes": [')
        return "classes.json is not valid JSON"
    if kind == "classes.json without classes":
        (folder / "classes.json").write_text('{"names": ["a", "b"]}')
        return 'classes.json must be an object with a "classes" list'
    if kind == "classes.json bad colour":
        (folder / "classes.json").write_text(json.dumps({"classes": [{"name": "a", "color": [300, 0, 0]},
                                                                     {"name": "b", "color": [0, 0, 0]}]}))
        return "classes.json: class 0 ('a'): a colour is [r, g, b] with each 0..255, got [300, 0, 0]"
    if kind == "classes.json twice a name":
        (folder / "classes.json").write_text(json.dumps({"classes": [{"name": "a", "color": [1, 0, 0]},
                                                                     {"name": "a", "color": [0, 0, 0]}]}))
        return "classes.json: class name 'a' is used twice"
    if kind == "classes.json bad truncation":
        (folder / "classes.json").write_text(json.dumps({**CLASSES, "truncation": "high"}))
        return 'classes.json: "truncation" must be a number from 0 to 1'
    if kind == "npy wrong shape":
        palette_png(folder / "face.png", labels_of(0))
        np.save(folder / "face.npy", np.zeros((3, 4), np.float32))
        return "face.npy: holds an array of shape (3, 4); this model's w+ is (8, 64)"
    if kind == "npy pickle":
        palette_png(folder / "face.png", labels_of(0))
        np.save(folder / "face.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
        return "face.npy: not a .npy array"
    if kind == "not a png":
        (folder / "5.png").write_bytes(b"\x89PNG not really")
        return "5.png: not a readable PNG"
    if kind == "id out of range":
        full_palette = [(0, 0, 0), (255, 0, 0), (0, 0, 255)] + [(i, i, 7) for i in range(3, 256)]
        palette_png(folder / "6.png", np.full((32, 32), 7), full_palette)
        return "6.png: value 7 (1024 pixels) is not a class id (classes.json lists 0..2)"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["wrong size", "unknown colour", "empty folder", "no classes.json",
                                  "seed not a number", "classes.json not JSON", "classes.json without classes",
                                  "classes.json bad colour", "classes.json twice a name",
                                  "classes.json bad truncation", "npy wrong shape", "npy pickle", "not a png",
                                  "id out of range"])
def test_each_bad_input_is_one_line_naming_the_file(kind, model, tmp_path):
    folder = classes_folder(tmp_path)
    expected = write_bad(kind, folder, model)
    with pytest.raises(AnnotationError) as caught:
        load_annotations(folder, model)
    message = str(caught.value)
    assert isinstance(caught.value, EditGANError) and "\n" not in message
    assert expected in message, message
    assert str(tmp_path) not in message  # names the file, not the server's path


def test_in_memory_samples_are_checked():
    annotations = AnnotationSet(["a", "b"], [(0, 0, 0), (9, 9, 9)])
    with pytest.raises(AnnotationError, match="class ids must be 0..1"):
        annotations.add(np.full((4, 4), 2), seed=1)
    with pytest.raises(AnnotationError, match="needs its w\\+"):
        annotations.add(np.zeros((4, 4), int), name="x")
    with pytest.raises(AnnotationError, match="must be letters"):
        annotations.add(np.zeros((4, 4), int), np.zeros((2, 3)), name="../x")
    annotations.add(np.zeros((4, 4), int), seed=1)
    annotations.add(np.ones((4, 4), int), seed=1)  # replaces: one sample per seed
    assert len(annotations.samples) == 1 and annotations.samples[0].labels.max() == 1
    many = AnnotationSet([f"c{i}" for i in range(256)], [(i, i, 255 - i) for i in range(256)])
    kept = many.add(np.arange(256, dtype=np.int64).reshape(16, 16), seed=3)
    assert kept.labels.dtype == np.uint8 and kept.labels.max() == 255  # every id of 256 classes, a byte each
    with pytest.raises(AnnotationError, match="same colour"):
        AnnotationSet(["a", "b"], [(0, 0, 0), (0, 0, 0)])
