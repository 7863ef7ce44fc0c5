"""Gradio's picture cache written whole: a picture already cached is not written again while it may be served."""
from __future__ import annotations

import os
import time

import numpy as np
from gradio import processing_utils
from PIL import Image

from editgan.app.gradio_cache import install_whole_file_cache


def test_a_cached_picture_is_written_once_and_whole(tmp_path):
    assert install_whole_file_cache() and install_whole_file_cache()  # once per process, then a no-op
    picture = Image.new("RGB", (64, 48), (200, 30, 30))
    path = processing_utils.save_pil_to_cache(picture, str(tmp_path), format="png")
    data = processing_utils.encode_pil_to_bytes(picture, "png")
    assert path == str((tmp_path / processing_utils.hash_bytes(data) / "image.png").resolve())
    assert open(path, "rb").read() == data
    before = os.stat(path)
    time.sleep(0.01)
    with open(path, "rb") as reader:  # a browser being sent the file
        head = reader.read(10)
        again = processing_utils.save_pil_to_cache(picture, str(tmp_path), format="png")  # the same picture again
        assert head + reader.read() == data
    after = os.stat(again)
    assert again == path and (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert [p.name for p in (tmp_path / processing_utils.hash_bytes(data)).iterdir()] == ["image.png"]  # no leftovers
    # numpy pictures go the same way (Gradio's save_img_array_to_cache calls the module's function)
    array_path = processing_utils.save_img_array_to_cache(np.zeros((4, 4, 3), np.uint8), str(tmp_path), format="png")
    assert os.path.isfile(array_path)
