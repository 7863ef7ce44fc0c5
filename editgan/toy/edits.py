"""The toy domain's edits as the tools use them: which renderer edits ship as presets, and how a user would paint
one (from the renderer's true label maps). Shared by the model build and the evaluation."""
from __future__ import annotations

import numpy as np

from editgan.engine.labels import apply_paint
from editgan.engine.model import EditGANModel
from editgan.toy import faces

PRESETS = {  # renderer edit → how the app shows it
    "bigger_eyes": ("Bigger eyes", (-1.5, 1.5)),
    "close_mouth": ("Close mouth", (-1.5, 1.5)),
    "open_mouth": ("Open mouth", (-1.5, 1.5)),
    "look_left": ("Look left", (-1.5, 1.5)),
    "look_right": ("Look right", (-1.5, 1.5)),
    "more_hair": ("More hair", (-1.5, 1.5)),
}


def paint_true_edit(model: EditGANModel, params: np.ndarray, edit: str, current_labels: np.ndarray,
                    only_the_change: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """What a user would paint for ``edit``: the true edited label map, over the current one.

    By default it is painted wherever the two maps differ: the benchmark's user, who also corrects the current
    map's own segmentation errors. With ``only_the_change`` it is painted only where the edit changes the face's
    true map: a preset's example, whose vector should carry the edit and not that face's segmentation errors.
    """
    size = model.generator.size
    true_edited = faces.render(faces.apply_edit(params, edit), size)[1].astype(np.int64)
    if only_the_change:
        painted = true_edited != faces.render(params, size)[1]
    else:
        painted = true_edited != current_labels
    return apply_paint(current_labels, painted, true_edited), painted
