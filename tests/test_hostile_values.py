"""Values a stranger may send, met by the checks every callback uses: a sentence for each, never 'Something went
wrong' (an unexpected exception), and no decoder the studio does not need."""
from __future__ import annotations

import io
import tracemalloc

import numpy as np
import pytest
from PIL import Image

from editgan.app.checks import checked_fraction, checked_number, checked_seed, checked_truncation, checked_whole
from editgan.app.teach_views import parse_classes, picked_color
from editgan.app.views import corrected
from editgan.colors import parse_color
from editgan.engine.images import load_image
from editgan.errors import ImageError, VectorError
from editgan.modelio.picture_files import read_label_map
from editgan.modelio.vectors import EditingVector

HUGE = 10**400  # a JSON integer float() cannot hold: OverflowError, not ValueError


@pytest.mark.parametrize("check", [lambda v: checked_whole(v, "steps", 1, 500), checked_seed,
                                   lambda v: checked_number(v, "scale from"), lambda v: checked_fraction(v, 50),
                                   lambda v: checked_truncation(v, 0.7)])
def test_numbers_past_floats_range_get_a_sentence(check):
    for value in [HUGE, -HUGE, "1e400", [1], {"a": 1}]:
        with pytest.raises(ValueError):
            check(value)


def test_truncation_is_a_number_from_0_to_1():
    assert checked_truncation(None, 0.7) == 0.7 and checked_truncation("0.5", 0.7) == 0.5
    for bad in [-0.1, 1.5, float("nan"), "x", [0.5]]:
        with pytest.raises(ValueError, match="truncation must be a number from 0 to 1"):
            checked_truncation(bad, 0.7)


def test_a_vector_scale_and_a_typed_slider_value_past_floats_range():
    vector = EditingVector("v", np.ones((2, 4), np.float32))
    with pytest.raises(VectorError, match="must be a number"):
        vector.check_scale(HUGE)
    assert corrected("Edit steps", HUGE, 10, 500) == ""  # nothing to say about what is not a number


@pytest.mark.parametrize("value", ["#-1-2-3", "#+f+f+f", "-1-2-3", "#١٢٣٤٥٦", "#fff0", "rgb(1e400, 0, 0)",
                                   "rgb(-1, 0, 0)"])
def test_class_colours_are_hex_or_rgb_within_0_to_255(value):
    with pytest.raises(ValueError):
        picked_color(value)
    with pytest.raises(ValueError):
        parse_classes(f"background #000000\nhair {value}")


def test_parse_color_takes_only_colours():
    assert parse_color("#0a0B0c") == (10, 11, 12) and parse_color((0, 128, 255)) == (0, 128, 255)
    for bad in ["#-1-2-3", "0x1234", (256, 0, 0), (-1, 0, 0)]:
        with pytest.raises(ValueError):
            parse_color(bad)


def png_with_broken_exif() -> bytes:
    """A PNG whose eXIf chunk is not a TIFF block: Pillow's EXIF reader raises on it."""
    import struct
    import zlib

    picture = io.BytesIO()
    Image.new("RGB", (32, 32), (10, 200, 30)).save(picture, "PNG")
    data = picture.getvalue()
    body = b"not a tiff block"
    chunk = struct.pack(">I", len(body)) + b"eXIf" + body + struct.pack(">I", zlib.crc32(b"eXIf" + body))
    end = data.rindex(b"IEND") - 4
    return data[:end] + chunk + data[end:]


def test_a_photo_with_a_damaged_exif_block_opens_as_stored():
    picture = np.asarray(load_image(png_with_broken_exif()))
    assert picture.shape == (32, 32, 3) and tuple(picture[0, 0]) == (10, 200, 30)


def test_formats_the_studio_does_not_need_are_not_decoded():
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 32 32\nshowpage\n"
    assert Image.open(io.BytesIO(eps)).format == "EPS"  # Pillow alone would open it (and run Ghostscript)
    with pytest.raises(ImageError, match="not a readable image"):
        load_image(eps)
    gif = io.BytesIO()
    Image.new("RGB", (8, 4), (255, 0, 0)).save(gif, "GIF")
    with pytest.raises(ImageError, match="not a readable PNG"):
        read_label_map(gif.getvalue(), [(0, 0, 0), (255, 0, 0)], (4, 8))  # label maps are PNGs


def test_a_large_16_bit_photo_is_scaled_in_bounded_memory():
    ramp = (np.arange(2400 * 2000, dtype=np.uint32).reshape(2400, 2000) % 65536).astype(np.uint16)
    data = io.BytesIO()
    Image.fromarray(ramp).save(data, "PNG")
    tracemalloc.start()
    try:
        picture = np.asarray(load_image(data.getvalue()))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert picture.shape == (2400, 2000, 3)
    assert int(picture[1000, 123, 0]) == round(int(ramp[1000, 123]) / 257)
    assert peak < 60 * 2**20, f"{peak / 2**20:.0f} MB (the whole picture in float64 is 37 MB, plus temporaries)"


def test_a_gray_label_map_holds_class_ids_as_the_teach_files_do():
    palette = [(0, 0, 0), (255, 0, 0), (0, 0, 255)]
    ids = np.array([[0, 1, 2, 2], [2, 1, 0, 0]], np.uint8)
    data = io.BytesIO()
    Image.fromarray(ids, "L").save(data, "PNG")
    assert np.array_equal(read_label_map(data.getvalue(), palette, (2, 4)), ids)
    gray_colours = np.where(ids > 0, 255, 0).astype(np.uint8)  # gray values beyond the ids: snapped as colours
    data = io.BytesIO()
    Image.fromarray(gray_colours, "L").save(data, "PNG")
    assert read_label_map(data.getvalue(), [(0, 0, 0), (255, 255, 255)], (2, 4)).tolist() == (ids > 0).tolist()
