"""From the browser canvas to label-map pixels: enlarged paint layers, flattened layers, composites, crop boxes."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from editgan.app.paint import difference_layer, downscale_paint, flatten_layers
from editgan.engine.images import square_box
from editgan.errors import ImageError

PALETTE = [(0, 0, 0), (255, 0, 0), (0, 0, 255)]


def layer(size: int) -> np.ndarray:
    return np.zeros((size, size, 4), dtype=np.uint8)


def test_each_block_of_the_enlarged_layer_is_one_label_pixel():
    paint = layer(32)  # a 4×4 label map shown ×8
    paint[0:8, 0:8] = (250, 10, 5, 255)  # a whole block, slightly off-palette red → class 1
    paint[8:12, 8:16] = (0, 0, 255, 255)  # half a block of blue → painted (at least half)
    paint[16:19, 16:24] = (0, 0, 255, 255)  # 3/8 of a block → ignored
    paint[24:32, 24:32] = (0, 0, 255, 100)  # faint alpha → ignored
    painted, ids = downscale_paint(paint, (4, 4), PALETTE, 8)
    assert painted.tolist() == [[True, False, False, False], [False, True, False, False],
                                [False, False, False, False], [False, False, False, False]]
    assert ids[0, 0] == 1 and ids[1, 1] == 2


def test_the_majority_class_wins_inside_a_block():
    paint = layer(16)  # 2×2 map ×8
    paint[0:8, 0:5] = (255, 0, 0, 255)
    paint[0:8, 5:8] = (0, 0, 255, 255)
    painted, ids = downscale_paint(paint, (2, 2), PALETTE, 8)
    assert painted[0, 0] and ids[0, 0] == 1


def test_a_tie_inside_a_block_goes_to_the_lower_class():
    paint = layer(16)
    paint[0:8, 0:4] = (0, 0, 255, 255)  # class 2, half the block
    paint[0:8, 4:8] = (255, 0, 0, 255)  # class 1, the other half
    painted, ids = downscale_paint(paint, (2, 2), PALETTE, 8)
    assert painted[0, 0] and ids[0, 0] == 1 and not painted[1, 1] and ids[1, 1] == 0


def test_snapping_equals_the_nearest_color_and_stays_small_with_many_classes():
    """Every pixel takes its nearest palette color (ties to the lower id), computed per distinct color in bounded
    chunks: 256 classes over a 512² canvas of noise stays under 100 MB (all distances at once were 800 MB)."""
    import tracemalloc

    from editgan.colors import snap_to_palette

    rng = np.random.default_rng(0)
    palette = [tuple(int(v) for v in rng.integers(0, 256, 3)) for _ in range(256)]
    palette[7] = palette[3]  # a tie
    small = rng.integers(0, 256, (16, 16, 3)).astype(np.uint8)
    small[0, 0] = palette[3]
    diff = small[:, :, None, :].astype(np.int64) - np.asarray(palette)[None, None]
    expected = np.argmin((diff * diff).sum(-1), axis=-1)
    snapped = snap_to_palette(small, palette)
    assert np.array_equal(snapped, expected) and snapped[0, 0] == 3

    noise = rng.integers(0, 256, (512, 512, 3)).astype(np.uint8)
    tracemalloc.start()
    try:
        ids = snap_to_palette(noise, palette)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert ids.shape == (512, 512) and peak < 100 * 2**20, f"{peak / 2**20:.0f} MB"
    rows = slice(0, 2)  # spot-check the big one against the plain computation
    diff = noise[rows, :, None, :].astype(np.int64) - np.asarray(palette)[None, None]
    assert np.array_equal(ids[rows], np.argmin((diff * diff).sum(-1), axis=-1))


def test_a_layer_of_another_size_than_the_canvas_is_refused():
    painted, ids = downscale_paint(np.full((4, 4, 4), 255, np.uint8), (4, 4), PALETTE, 1)  # ×1
    assert painted.all()
    with pytest.raises(ValueError, match="the paint layer is 30×30 but the canvas is 32×32"):
        downscale_paint(layer(30), (4, 4), PALETTE, 8)
    with pytest.raises(ValueError, match="the paint layer is 9000×9000 but the canvas is 32×32"):
        downscale_paint(np.zeros((9000, 9000, 4), np.uint8), (4, 4), PALETTE, 8)
    with pytest.raises(ValueError, match="RGBA"):
        downscale_paint(np.zeros((8, 8, 3), np.uint8), (4, 4), PALETTE, 2)
    with pytest.raises(ValueError, match="different sizes"):
        flatten_layers([layer(32), layer(16)])


def test_layers_flatten_with_later_layers_on_top():
    a, b = layer(8), layer(8)
    a[:, :4] = (255, 0, 0, 255)
    b[:, 2:6] = (0, 0, 255, 255)
    flat = flatten_layers([a, b])
    assert tuple(flat[0, 1]) == (255, 0, 0, 255) and tuple(flat[0, 3]) == (0, 0, 255, 255)
    assert flat[0, 7, 3] == 0
    assert flatten_layers([]) is None


def test_a_composite_without_layers_gives_the_pixels_that_changed():
    background = np.zeros((16, 16, 3), np.uint8)
    composite = background.copy()
    composite[0:8, 0:8] = (255, 0, 0)
    composite[8:16, 8:16] = (10, 10, 10)  # lossy-encoding noise, below the tolerance
    painted, ids = downscale_paint(difference_layer(composite, background), (2, 2), PALETTE, 8)
    assert painted.tolist() == [[True, False], [False, False]] and ids[0, 0] == 1


def test_square_crop_boxes_are_always_inside_the_picture():
    assert square_box(400, 200) == (100, 0, 300, 200)
    assert square_box(400, 200, 0.5, 0, 1) == (0, 100, 100, 200)
    assert square_box(400, 200, 1, 1, 0) == (200, 0, 400, 200)
    for bad in (dict(size=0), dict(x=1.5), dict(y=float("nan"))):
        with pytest.raises(ImageError, match="crop"):
            square_box(400, 200, **{"size": 1, "x": 0.5, "y": 0.5, **bad})


def test_16_bit_grayscale_photos_keep_their_tones(tmp_path):
    from editgan.engine.images import load_image

    ramp = (np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)  # 0 … 65520
    Image.fromarray(ramp).save(tmp_path / "gray16.png")
    assert Image.open(tmp_path / "gray16.png").mode.startswith("I")
    picture = np.asarray(load_image(tmp_path / "gray16.png"))
    assert picture.shape == (64, 64, 3) and picture.min() == 0 and picture.max() >= 250
    assert abs(int(picture[32, 0, 0]) - round(ramp[32, 0] / 257)) <= 1  # scaled, not clipped to white
    floats = (ramp / 65535.0).astype(np.float32)
    picture = np.asarray(load_image(Image.fromarray(floats, "F")))
    assert abs(int(picture[32, 0, 0]) - round(floats[32, 0] * 255)) <= 1
