"""What the app shows, as plain values: enlarged pictures, blends, the legend, the model's description and the
status sentences. numpy and PIL only; no Gradio and no model math here.

The canvas: a 64-px label map is far too small to paint on, so the editor shows it enlarged ``k`` times with
nearest-neighbour upscaling, ``k = CANVAS_SIDE // longest side`` (8 for the 64-px toy faces, 16 for a 32-px model,
1 for 512 px and more). The pictures beside it (picture, label map, blend, before/after) are sent at the model's
own size and enlarged by the browser, without blurring (``components.PAGE_CSS``): 64 times fewer pixels to encode
and send than their ×8 enlargements, and every answer of a quick action carries five of them.
"""
from __future__ import annotations

import html
import math
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from editgan.colors import Color, hex_color
from editgan.engine.model import EditGANModel, EditOutcome

CANVAS_SIDE = 512
"""Pictures and the canvas are shown enlarged (nearest neighbour) so that their longest side is about this."""


def canvas_scale(height: int, width: int) -> int:
    """How many times pictures and the canvas are enlarged: CANVAS_SIDE // longest side, at least 1."""
    return max(1, CANVAS_SIDE // max(height, width))


def enlarge(picture: np.ndarray, k: int) -> np.ndarray:
    return picture if k == 1 else np.repeat(np.repeat(picture, k, axis=0), k, axis=1)


def canvas_value(colors: np.ndarray) -> dict:
    """The editor's value for a colored label map: the map enlarged to the canvas, with no paint layers. No
    composite: the editor draws its own from the background and the paint, so a second copy of the enlarged map
    would only be encoded and sent for nothing."""
    return {"background": enlarge(colors, canvas_scale(*colors.shape[:2])), "layers": [], "composite": None}


def blend(image: np.ndarray, colors: np.ndarray) -> np.ndarray:
    return ((image.astype(np.uint16) + colors.astype(np.uint16)) // 2).astype(np.uint8)


def escape(text: object) -> str:
    return html.escape(str(text), quote=False)


def legend_html(engine: EditGANModel) -> str:
    config = engine.config
    if not engine.has_segmenter or not config.class_names:
        return "<p><em>No label classes: this model has no segmentation branch.</em></p>"
    return '<div id="legend-classes">' + class_swatches(config.class_names, config.palette) + "</div>"


def class_swatches(names: Sequence[str], palette: Sequence[Color]) -> str:
    """Class names beside their colours (the Studio's legend and the Teach tab's)."""
    return "".join(
        f'<span class="legend-item" style="display:inline-flex;align-items:center;margin:2px 10px 2px 0">'
        f'<span style="display:inline-block;width:16px;height:16px;border:1px solid #888;margin-right:5px;'
        f'background:{hex_color(color)}"></span>{escape(name)}</span>' for name, color in zip(names, palette))


def model_info(engine: EditGANModel, name: str) -> str:
    """One line about the model: its name in the model list (never a server path), size, classes, presets."""
    cfg = engine.config
    height, width = cfg.box[2:]
    presets = ", ".join(v.display_name for v in engine.presets.values()) or "none"
    return (f"**{escape(cfg.name)}** ({escape(name)}) · {width}×{height} px · "
            f"{cfg.n_classes} classes · presets: {escape(presets)} · on {engine.device}")


def model_notice(engine: EditGANModel) -> str:
    notes = []
    if not engine.has_segmenter:
        notes.append(f"**Mask editing is off for {escape(engine.config.name)}**: this model has no segmentation "
                     "branch (no segmenter.safetensors), so it cannot tell which pixels belong to which class. "
                     "Sampling, embedding photos and applying vectors without refinement work.")
    if engine.encoder is None:
        notes.append("This model has no encoder: embedding a photo starts from the average latent, so give it "
                     "more steps.")
    return "  \n".join(notes)


def crop_preview(photo: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The photo (at most 512 px) with everything outside the square crop ``box`` shaded."""
    image = Image.fromarray(photo)
    scale = min(1.0, 512 / max(image.size))
    if scale < 1:
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.BILINEAR)
    shade = Image.new("RGBA", image.size, (0, 0, 0, 110))
    left, top, right, bottom = (round(v * scale) for v in box)
    ImageDraw.Draw(shade).rectangle((left, top, right - 1, bottom - 1), fill=(0, 0, 0, 0), outline=(255, 200, 0, 255),
                                    width=3)
    return np.asarray(Image.alpha_composite(image.convert("RGBA"), shade).convert("RGB"))


def corrected(what: str, typed: object, lowest: float, highest: float) -> str:
    """The sentence when the page moved a typed value into its slider's range, or "" when it was in range."""
    try:
        value = float(typed)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return ""
    if math.isnan(value) or lowest <= value <= highest:
        return ""
    kept = lowest if value < lowest else highest
    return f"{what} go from {lowest:g} to {highest:g}: {value:g} was changed to {kept:g}."


def finished(what: str, outcome: EditOutcome, steps: int, stopped: str | None = None) -> str:
    """The status sentence after an optimization: how many steps ran, the final loss, cancelled, stopped for time
    (``stopped`` says where: "before the GPU time … ran out") or done."""
    final = f"final loss {outcome.losses[-1]:.4f}" if outcome.losses else "no steps run"
    if outcome.cancelled and stopped:
        return (f"{what} stopped after {len(outcome.losses)} of {steps} steps, {stopped}: kept the best result "
                f"({final}). Go on with more steps from here if you like.")
    if outcome.cancelled:
        return f"{what} cancelled after {len(outcome.losses)} of {steps} steps: kept the best result ({final})."
    return f"{what} done: {len(outcome.losses)} steps, {final}."


def unchanged(what: str, outcome: EditOutcome, steps: int, stopped: str | None = None) -> str:
    """The status sentence after an optimization that found nothing better than where it started (cancelled or
    stopped for time, ``stopped`` saying where, before it did)."""
    losses = outcome.losses
    if outcome.cancelled:
        how = f"stopped after {len(losses)} of {steps} steps, {stopped}," if stopped else \
            f"cancelled after {len(losses)} of {steps} steps,"
        return f"{what} {how} before finding anything better than the start: the picture and its history are unchanged."
    trace = f" (loss {losses[0]:.4g} at the start, {min(losses[1:]):.4g} at best after)" if len(losses) > 1 else ""
    return (f"{what} found nothing better than the start{trace}: the picture is unchanged and the history too. "
            f"Paint a larger region, or try more steps.")


def overtaken(what: str) -> str:
    """The status sentence after an optimization whose picture was replaced while it ran (a new sample, undo, a
    slider, another model): its result belongs to a picture no longer shown, so it is not applied."""
    return (f"The picture changed while the {what.lower()} ran (a new sample, undo, a slider or another model), so "
            f"its result was not applied: this is the current picture. Run it again on this one if you like.")
