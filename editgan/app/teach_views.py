"""What the Teach tab shows, as plain values: the class list as text, the canvas, the uncertainty heat map, the list
of annotated samples, the training line. numpy only; no Gradio and no model math here."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from editgan.app.views import blend, enlarge, escape
from editgan.colors import Color, colorize, hex_color, parse_color
from editgan.teach.annotations import AnnotatedSample
from editgan.teach.branch import TeachProgress

MAX_CLASS_TEXT = 64 * 1024
"""The class list's text is refused above this (256 classes of long names fit)."""


def classes_text(names: Sequence[str], palette: Sequence[Color]) -> str:
    """One class a line: ``name #rrggbb`` (id 0 first)."""
    return "\n".join(f"{name} {hex_color(color)}" for name, color in zip(names, palette))


def parse_classes(text: str | None) -> tuple[list[str], list[Color]]:
    """The class list's text → (names, colours); ValueError naming the line at fault. Blank lines are skipped."""
    text = text or ""
    if len(text) > MAX_CLASS_TEXT:
        raise ValueError(f"the class list is {len(text)} characters long; at most {MAX_CLASS_TEXT} are read")
    names, palette = [], []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        name, _, color = line.rpartition(" ")
        name = name.strip()
        if not name:
            raise ValueError(f"class list, line {number}: write a name then a colour, e.g. 'hair #365878'")
        try:
            palette.append(parse_color(color))
        except (TypeError, ValueError):
            raise ValueError(f"class list, line {number}: {color[:20]!r} is not a colour (#rrggbb)") from None
        names.append(name)
    if not names:
        raise ValueError("the class list is empty: one class a line, 'name #rrggbb', the background first")
    return names, palette


def picked_color(value: str | None) -> Color:
    """A colour picker's value ('#rrggbb', '#rgb', '#rrggbbaa', 'rgb(r, g, b)' or 'rgba(r, g, b, a)') → (r, g, b);
    ValueError with a sentence otherwise."""
    text = (value or "").strip().lower()
    try:
        if text.startswith("rgb"):
            parts = text[text.index("(") + 1:text.rindex(")")].split(",")[:3]
            color = tuple(round(float(part)) for part in parts)
            if len(color) != 3 or not all(0 <= c <= 255 for c in color):
                raise ValueError
            return color  # type: ignore[return-value]
        digits = text.lstrip("#")
        if len(digits) == 3:
            digits = "".join(d * 2 for d in digits)
        return parse_color(digits[:6] if len(digits) == 8 else digits)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"pick a colour for the class: {str(value)[:30]!r} is not one") from None


def put_class(text: str | None, name: str | None, color: Color) -> tuple[str, bool]:
    """The class list's text with class ``name`` in ``color``: recoloured where it is listed, else added last.
    Returns the new text and whether the class is new."""
    name = " ".join((name or "").split())
    if not name:
        raise ValueError("name the class to add or recolour, e.g. 'hair'")
    names, palette = parse_classes(text) if (text or "").strip() else ([], [])
    added = name not in names
    if added:
        names.append(name)
        palette.append(color)
    else:
        palette[names.index(name)] = color
    return classes_text(names, palette), added


def canvas_value(image: np.ndarray, labels: np.ndarray, palette: Sequence[Color], k: int) -> dict:
    """The canvas: the picture blended with its label map, enlarged ``k`` times, with no paint yet."""
    background = blend(enlarge(image, k), enlarge(colorize(labels, palette), k))
    return {"background": background, "layers": [], "composite": background}


def label_picture(labels: np.ndarray, palette: Sequence[Color], k: int) -> np.ndarray:
    return enlarge(colorize(labels, palette), k)


def heat_map(values: np.ndarray | None, k: int) -> np.ndarray | None:
    """Uncertainty in [0, 1] → dark (sure) to bright yellow (unsure), enlarged ``k`` times."""
    if values is None:
        return None
    v = np.clip(np.nan_to_num(np.asarray(values, dtype=np.float32)), 0.0, 1.0)
    v = v / max(float(v.max()), 1e-6)
    rgb = np.stack([np.sqrt(v), v, v ** 3 * 0.4], -1)
    return enlarge((rgb * 255).round().astype(np.uint8), k)


def samples_markdown(samples: Sequence[AnnotatedSample], names: Sequence[str]) -> str:
    if not samples:
        return "No annotated samples yet: draw a sample, paint its label map, then press **Keep this annotation**."
    rows = []
    for s in samples:
        used = np.unique(s.labels)
        shown = ", ".join(escape(names[i]) for i in used[:6] if i < len(names)) + (" …" if len(used) > 6 else "")
        rows.append(f"- **{escape(s.key)}**: {len(used)} classes ({shown})")
    return f"**{len(samples)} annotated sample{'' if len(samples) == 1 else 's'}**\n" + "\n".join(rows)


def training_line(p: TeachProgress) -> str:
    t = p.training
    stage = "the branch" if p.stage == "branch" else f"held-out {p.stage}"
    return (f"Training {stage} ({p.stage_index} of {p.stages}): classifier {t.member} of {t.members}, epoch "
            f"{t.epoch} of {t.epochs}, loss {t.loss:.3f} · {p.fraction:.0%} done")


def preview_note(count: int, members: int) -> str:
    """Which branch the preview shows: the whole one, or the classifiers trained so far."""
    if count >= members:
        return f"the whole branch ({members} classifiers)"
    return f"the first {count} of {members} classifiers"


def preview_strip(pictures: Sequence[tuple[np.ndarray, np.ndarray]], palette: Sequence[Color], k: int) -> np.ndarray:
    """New samples and the taught branch's label maps, side by side: picture, blend, map; one row a sample."""
    rows = []
    for image, labels in pictures:
        colors = colorize(labels, palette)
        rows.append(np.concatenate([image, blend(image, colors), colors], axis=1))
    return enlarge(np.concatenate(rows, axis=0), max(1, k // 2))
