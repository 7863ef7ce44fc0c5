"""Class templates: ready-made class lists (names and colours) to start annotating a new domain with.

A template is data, nothing else: the ids are the order of its classes, and id 0 is the background. Where a
public release gives a class list, the template keeps its order, so that label maps made with it line up with
that release's; colours are the release's except where two of its colours are too close to tell apart on a
canvas (under :data:`MIN_COLOR_DISTANCE` in RGB), where the later class gets a new colour (listed per template).

- ``face``: DatasetGAN's 34 face parts (nv-tlabs/datasetGAN_release, ``utils/data_util.py``: ``face_class`` and
  ``face_palette``). The release writes the part hierarchy into the names (``head***eye***iris``); here they are
  the last part's name (``iris``), with ``eye_top_lid``/``eye_bottom_lid`` (the release: ``top lid``, ``botton
  lid``), ``upper_lip``/``lower_lip`` (``superior``/``inferior lip``) and ``nose_*`` where the name alone is
  ambiguous.
- ``car``: EditGAN's 32 car parts and palette (``editgan.modelio.convert.editgan_car_release.CLASSES``).
- ``cat``: the cat parts of DatasetGAN's annotations, as the ddpm-segmentation benchmark (yandex-research) lists
  them (15 classes; DatasetGAN's ``cat_16`` experiment declares 16, one of them unnamed anywhere public). The
  release's cat palette repeats a colour, so the colours are our own (from Kelly's colours of maximum contrast).
- ``bird``: DatasetGAN's release publishes no bird class list. These are the usual bird parts (CUB-200's part
  vocabulary, left and right merged), our own choice, with our own colours.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from editgan.colors import Color, parse_color
from editgan.modelio.convert.editgan_car_release import CLASSES as EDITGAN_CAR_CLASSES

MIN_COLOR_DISTANCE = 40.0
"""No two colours of a template are closer than this in RGB (Euclidean): a person must tell classes apart."""


@dataclass(frozen=True)
class ClassTemplate:
    name: str
    description: str
    classes: tuple[tuple[str, str], ...]
    """(name, "#rrggbb") per class id."""
    source: str

    @property
    def class_names(self) -> list[str]:
        return [name for name, _ in self.classes]

    @property
    def palette(self) -> list[Color]:
        return [parse_color(color) for _, color in self.classes]


def _with_colors(classes: list[tuple[str, str]], changes: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """``classes`` with the colours of the named classes replaced."""
    unknown = set(changes) - {name for name, _ in classes}
    assert not unknown, unknown
    return tuple((name, changes.get(name, color)) for name, color in classes)


# DatasetGAN's face_palette as 0..255 (its floats × 255, truncated, as its code does), in face_class order
_FACE = [
    ("background", "#ffffff"), ("head", "#70826b"), ("cheek", "#daf351"), ("chin", "#3d77fc"), ("ear", "#d7edc0"),
    ("ear_helix", "#5fc953"), ("ear_lobule", "#047e60"), ("eye_bottom_lid", "#be0390"), ("eyelashes", "#293dba"),
    ("iris", "#056f68"), ("pupil", "#95e29c"), ("sclera", "#cbe8f7"), ("tear_duct", "#ad9fda"),
    ("eye_top_lid", "#fe7762"), ("eyebrow", "#88d245"), ("forehead", "#2c5cd4"), ("frown", "#87aa7d"),
    ("hair", "#365878"), ("sideburns", "#ae1f25"), ("jaw", "#627619"), ("moustache", "#3a0a4d"),
    ("lower_lip", "#928bfa"), ("oral_commissure", "#21f513"), ("upper_lip", "#482f42"), ("teeth", "#f8f0a9"),
    ("neck", "#6371a4"), ("nose", "#dd6418"), ("nose_ala", "#9bf706"), ("nose_bridge", "#5daa4f"),
    ("nose_tip", "#a4baf3"), ("nostril", "#9d1be6"), ("philtrum", "#567eb9"), ("temple", "#2aeba7"),
    ("wrinkles", "#f0ab9d"),
]
FACE_COLOR_CHANGES = {  # DatasetGAN's colour is within 40 of an earlier class's (distance in brackets)
    "iris": "#ff55ff",  # ear_lobule (17)
    "nose_bridge": "#005500",  # ear_helix (31)
    "nose_tip": "#66ffff",  # tear_duct (38)
    "philtrum": "#00ccff",  # neck (28)
}
CAR_COLOR_CHANGES = {  # EditGAN's colour is within 40 of an earlier class's (distance in brackets)
    "door_front": "#000099",  # fender (34)
    "mirror": "#ff77ff",  # back_handle (38)
    "wheelhub_front": "#6600ff",  # car_light_right (26)
    "spoke_back": "#00ff66",  # front_wheel (32)
}
_CAT = [
    ("background", "#000000"), ("back", "#f3c300"), ("belly", "#875692"), ("chest", "#f38400"), ("leg", "#a1caf1"),
    ("paw", "#be0032"), ("head", "#c2b280"), ("ear", "#848482"), ("eye", "#008856"), ("mouth", "#e68fac"),
    ("tongue", "#0067a5"), ("nose", "#f99379"), ("tail", "#882d17"), ("whiskers", "#b3446c"), ("neck", "#8db600"),
]
_BIRD = [
    ("background", "#000000"), ("head", "#f3c300"), ("beak", "#f38400"), ("eye", "#0067a5"), ("neck", "#c2b280"),
    ("breast", "#be0032"), ("belly", "#a1caf1"), ("back", "#875692"), ("wing", "#008856"), ("tail", "#848482"),
    ("leg", "#e68fac"),
]

TEMPLATES: dict[str, ClassTemplate] = {t.name: t for t in (
    ClassTemplate("face", "34 face parts (DatasetGAN)", _with_colors(_FACE, FACE_COLOR_CHANGES),
                  "nv-tlabs/datasetGAN_release utils/data_util.py (face_class, face_palette)"),
    ClassTemplate("car", "32 car parts (EditGAN)", _with_colors(list(EDITGAN_CAR_CLASSES), CAR_COLOR_CHANGES),
                  "nv-tlabs/editGAN_release (the web tool's car classes and palette)"),
    ClassTemplate("cat", "15 cat parts (DatasetGAN's cat annotations)", tuple(_CAT),
                  "DatasetGAN's cat annotations as yandex-research/ddpm-segmentation names them; our colours"),
    ClassTemplate("bird", "11 bird parts", tuple(_BIRD), "our own (DatasetGAN's release has no bird class list)"),
)}


def template_names() -> list[str]:
    """The templates' names, for a picker."""
    return list(TEMPLATES)


def get_template(name: str) -> ClassTemplate:
    if name not in TEMPLATES:
        raise ValueError(f"unknown class template {name!r}; there are {', '.join(TEMPLATES)}")
    return TEMPLATES[name]


def closest_colors(palette: list[Color]) -> tuple[float, int, int]:
    """The smallest RGB distance between two colours of ``palette`` and the ids of that pair (inf when fewer
    than two colours)."""
    pairs = [(math.dist(palette[i], palette[j]), i, j) for i, j in itertools.combinations(range(len(palette)), 2)]
    return min(pairs, default=(math.inf, -1, -1))

