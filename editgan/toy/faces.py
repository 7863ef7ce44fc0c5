"""Procedural cartoon faces with exact per-pixel label maps.

This is the training domain of the embedded StyleGAN2 model and the ground truth of
the edit-quality benchmark.  A face is a float32 vector ``p`` of length
``len(PARAM_NAMES)`` whose entries all lie in [0, 1]; the prior is independent
Uniform(0, 1) per entry, so *every* point of the unit cube is a valid face (discrete
choices such as the hair style are made by binning a uniform value).

``render(p)`` draws the face at 4x the requested size with PIL (an RGB image and a
parallel 'L' image of class ids), then box-filters the RGB down (anti-aliasing) and
gives every output pixel the majority class of its 4x4 block.

All geometry is computed in *frame units* (the image is the unit square, y pointing
down), so ``render(p, 128)`` is the same picture as ``render(p, 64)``, only sharper.

Semantic edits (``EDITS``) move one or two parameters to a target value; re-rendering
the edited vector gives the true result of the edit.  Every edit only changes the
label map inside its ``Edit.classes`` plus the skin/background those classes displace.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np
from PIL import Image, ImageDraw

__all__ = [
    "CLASS_NAMES",
    "EDITS",
    "Edit",
    "FaceParams",
    "HAIR_STYLES",
    "MOUTH_CLOSED_BELOW",
    "NUM_CLASSES",
    "NUM_PARAMS",
    "PALETTE",
    "PARAM_NAMES",
    "SUPERSAMPLE",
    "apply_edit",
    "colorize_labels",
    "default_params",
    "make_params",
    "param_index",
    "render",
    "render_batch",
    "render_supersampled",
    "sample_params",
    "sample_params_batch",
]

# ----------------------------------------------------------------------------------
# Parameters
# ----------------------------------------------------------------------------------


class FaceParams(NamedTuple):
    """Named view of a parameter vector; every field is a float in [0, 1]."""

    face_width: float  # narrow (0) ... wide (1) head
    face_height: float  # short (0) ... long (1) head
    jaw_width: float  # pointed chin (0) ... broad, square jaw (1)
    skin_tone: float  # light (0) ... dark (1), along a natural skin-tone ramp
    hair_style: float  # binned into HAIR_STYLES: crop, swept, bob, long, curly
    hair_amount: float  # receding / short (0) ... low hairline, full, long (1)
    hair_color: float  # ramp: black, browns, auburn, ginger, blond, grey
    brow_thickness: float  # thin (0) ... bushy (1) eyebrows
    brow_height: float  # brows close to the eyes (0) ... raised (1)
    brow_tilt: float  # sad, inner ends up (0) ... angry, inner ends down (1)
    eye_size: float  # small (0) ... big (1) eyes (width and height together)
    eye_openness: float  # narrow, almond (0) ... round (1) eye whites
    eye_spacing: float  # close-set (0) ... wide-set (1) eyes
    gaze_x: float  # pupils to the image's left (0) ... right (1); 0.5 = centred
    gaze_y: float  # pupils up (0) ... down (1); 0.5 = centred
    iris_color: float  # ramp: blue, green, hazel, brown, dark brown, grey
    nose_size: float  # small (0) ... big (1) nose
    mouth_width: float  # narrow (0) ... wide (1) mouth
    mouth_open: float  # closed below 0.4; above, open (teeth, then tongue) ever wider
    smile: float  # slight frown (0) ... neutral (~0.3) ... big smile (1)
    lip_tint: float  # lips close to skin colour (0) ... red (1)
    background_hue: float  # hue of the plain background
    background_shade: float  # dark, saturated (0) ... light, pastel (1) background


PARAM_NAMES: tuple[str, ...] = FaceParams._fields
NUM_PARAMS = len(PARAM_NAMES)
HAIR_STYLES: tuple[str, ...] = ("crop", "swept", "bob", "long", "curly")

# Value of ``mouth_open`` below which the mouth is closed (no interior pixels).
MOUTH_CLOSED_BELOW = 0.4

# ----------------------------------------------------------------------------------
# Classes
# ----------------------------------------------------------------------------------

CLASS_NAMES: tuple[str, ...] = (
    "background",
    "skin",
    "hair",
    "eyebrow",
    "eye_white",
    "iris",
    "pupil",
    "nose",
    "lips",
    "mouth_interior",
)
NUM_CLASSES = len(CLASS_NAMES)
BACKGROUND, SKIN, HAIR, EYEBROW, EYE_WHITE, IRIS, PUPIL, NOSE, LIPS, MOUTH_INTERIOR = range(NUM_CLASSES)

# Label-map display colours (unrelated to the rendered colours).
PALETTE: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0),  # background
    (255, 204, 153),  # skin
    (140, 70, 20),  # hair
    (255, 0, 255),  # eyebrow
    (255, 255, 255),  # eye_white
    (0, 160, 255),  # iris
    (0, 0, 160),  # pupil
    (0, 200, 0),  # nose
    (230, 0, 0),  # lips
    (255, 230, 0),  # mouth_interior
)

SUPERSAMPLE = 4  # drawing resolution factor; output pixels are 4x4 blocks

# ----------------------------------------------------------------------------------
# Colour ramps (continuous parameters are mapped by piecewise-linear interpolation)
# ----------------------------------------------------------------------------------

_SKIN_RAMP = ((255, 226, 204), (241, 198, 166), (226, 172, 130), (196, 134, 96), (150, 98, 64), (101, 66, 44))
_HAIR_RAMP = (
    (28, 24, 24),
    (66, 42, 28),
    (112, 70, 38),
    (150, 62, 34),
    (198, 110, 52),
    (226, 188, 110),
    (196, 192, 188),
)
_IRIS_RAMP = ((58, 112, 196), (64, 142, 104), (140, 124, 56), (120, 74, 38), (66, 42, 26), (112, 124, 136))
_LIP_RED = (196, 62, 78)
_EYE_WHITE = (250, 250, 248)
_PUPIL = (16, 14, 20)
_MOUTH_DARK = (96, 24, 36)
_TEETH = (246, 246, 236)
_TONGUE = (214, 96, 106)
_BLUSH = (240, 120, 130)
_OUTLINE_DARK = (40, 28, 28)

Color = tuple[int, int, int]


def _ramp(colors: Sequence[Color], u: float) -> np.ndarray:
    """Piecewise-linear interpolation along a list of colours, u in [0, 1]."""
    pos = u * (len(colors) - 1)
    i = min(int(pos), len(colors) - 2)
    f = pos - i
    return (1.0 - f) * np.asarray(colors[i], float) + f * np.asarray(colors[i + 1], float)


def _mix(a: Sequence[float], b: Sequence[float], f: float) -> Color:
    """Blend colour a towards b by fraction f; returns an int RGB tuple."""
    return tuple(int(round((1.0 - f) * x + f * y)) for x, y in zip(a, b))  # type: ignore[return-value]


def _shade(c: Sequence[float], k: float) -> Color:
    """Scale a colour's brightness by k (k < 1 darkens)."""
    return tuple(int(round(min(255.0, max(0.0, x * k)))) for x in c)  # type: ignore[return-value]


def _hsv_to_rgb(h: float, s: float, v: float) -> Color:
    i = int(h * 6.0) % 6
    f = h * 6.0 - int(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    r, g, b = ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))[i]
    return int(round(r * 255)), int(round(g * 255)), int(round(b * 255))


# ----------------------------------------------------------------------------------
# Geometry (frame units: the image is [0, 1]^2, y down)
# ----------------------------------------------------------------------------------


class _Face(NamedTuple):
    cx: float
    cy: float
    rx: float  # half width
    ry: float  # half height
    taper: float  # how much the lower half narrows towards the chin
    scale: float  # overall size relative to an average face (sizes of parts scale with it)

    def half_width(self, y: float) -> float:
        """Half width of the head outline at height y (0 outside the head)."""
        s = (y - self.cy) / self.ry
        if abs(s) >= 1.0:
            return 0.0
        return self.rx * math.sqrt(1.0 - s * s) * (1.0 - self.taper * max(0.0, s) ** 2)


class _Eyes(NamedTuple):
    y: float  # centre height of both eyes
    dx: float  # distance of each eye centre from the face's centre line
    w: float  # eye-white width
    h: float  # eye-white height
    w_max: float  # width / height at eye_size = 1 (brows, nose and hair keep clear of it)
    h_max: float
    iris_r: float
    pupil_r: float
    gaze_dx: float  # iris offset from the eye centre
    gaze_dy: float


class _Brows(NamedTuple):
    y: float  # reference height of the brow's centre line (see _brow_profile)
    dx: float  # distance of the brow middle from the face's centre line
    half_len: float
    thick: float
    arch: float
    tilt: float  # > 0: inner ends lower (angry)
    zone_top: float  # highest point any brow of this face can reach (hair stays above)
    zone_dx: float  # furthest |x - cx| any brow of this face can reach


class _Mouth(NamedTuple):
    top: float  # top of the upper lip at the centre (fixed by the face; the jaw drops)
    mid: float  # the mouth line at the centre
    half_w: float
    lip_up: float
    lip_low: float
    bend: float  # > 0: corners raised (smile)
    open_h: float  # interior height at the centre, 0 = closed


class _Hair(NamedTuple):
    style: int
    vol: float  # how far the hair stands out from the head
    y_center: float  # hairline height at the centre of the forehead
    y_temple: float  # hairline height at the brows' outer edge
    y_limit: float  # the hairline never comes lower than this inside |x - cx| < x_c
    y_side: float  # how far the hair comes down at the sides of the face
    x_c: float  # |x - cx| beyond which the hairline may drop below the brows
    swept_dir: float  # -1 / +1: side of the lower fringe for the swept style
    back_len: float  # bottom of the hair behind the head (0: none)


_AVG_FACE_W, _AVG_FACE_H = 0.76, 0.835


def _face_geometry(v: FaceParams) -> _Face:
    face_w = 0.66 + 0.20 * v.face_width
    face_h = 0.76 + 0.15 * v.face_height
    rx, ry = face_w / 2.0, face_h / 2.0
    cy = 0.525 + (0.455 - ry) * 0.6  # longer heads sit higher so the chin stays in frame
    taper = 0.38 * (1.0 - v.jaw_width)
    scale = math.sqrt(face_w * face_h / (_AVG_FACE_W * _AVG_FACE_H))
    return _Face(0.5, cy, rx, ry, taper, scale)


def _eye_geometry(v: FaceParams, f: _Face) -> _Eyes:
    face_w = 2.0 * f.rx
    aspect = 0.62 + 0.30 * v.eye_openness
    w_max = 0.27 * face_w
    w = (0.18 + 0.09 * v.eye_size) * face_w
    h, h_max = w * aspect, w_max * aspect
    # Eye centres do not depend on eye_size, so bigger eyes grow in place.
    dx = w_max / 2.0 + face_w * (0.025 + 0.045 * v.eye_spacing)
    y = f.cy - 0.12 * f.ry
    iris_r = 0.34 * h
    pupil_r = 0.6 * iris_r
    gdx, gdy = _gaze_offset(v.gaze_x, v.gaze_y, w / 2.0, h / 2.0, iris_r)
    return _Eyes(y, dx, w, h, w_max, h_max, iris_r, pupil_r, gdx, gdy)


def _gaze_offset(gx: float, gy: float, a: float, b: float, r: float) -> tuple[float, float]:
    """Iris-centre offset that keeps a circle of radius r inside the ellipse (a, b)."""
    r = r * 1.08 + 0.005  # slack: the iris never touches the outline, even diagonally
    # Largest horizontal offset: closed form from the circle/ellipse distance.
    if r <= b * b / a:
        dx_max = a - r
    else:
        dx_max = math.sqrt(max(0.0, (a * a - b * b) * (1.0 - (r / b) ** 2)))
    dy_max = max(0.0, b - r)
    # Map the square [-1, 1]^2 onto the disc so diagonal gazes stay inside too.
    sx, sy = 2.0 * gx - 1.0, 2.0 * gy - 1.0
    ux, uy = sx * math.sqrt(1.0 - sy * sy / 2.0), sy * math.sqrt(1.0 - sx * sx / 2.0)
    return ux * dx_max * 0.97, uy * dy_max * 0.97


_BROW_TAU = np.linspace(-1.0, 1.0, 13)  # along a brow: -1 inner end, +1 outer end


def _brow_profile(thick: float, arch: float, tilt: float) -> tuple[np.ndarray, np.ndarray]:
    """Centre line (relative to the brow's reference height) and half thickness along a brow."""
    y_mid = -arch * (1.0 - _BROW_TAU**2) - tilt * _BROW_TAU
    half_t = thick / 2.0 * (0.55 + 0.45 * np.cos(np.pi / 2.0 * _BROW_TAU) ** 0.5)
    return y_mid, half_t


def _brow_reference_y(eye_top: float, gap: float, thick: float, arch: float, tilt: float) -> tuple[float, float]:
    """Reference height putting the brow's lowest point ``gap`` above the eye, and its top."""
    y_mid, half_t = _brow_profile(thick, arch, tilt)
    y = eye_top - gap - float(np.max(y_mid + half_t))
    return y, y + float(np.min(y_mid - half_t))


def _brow_geometry(v: FaceParams, f: _Face, e: _Eyes) -> _Brows:
    s = f.scale
    gap = (0.014 + 0.036 * v.brow_height) * s
    thick = (0.020 + 0.024 * v.brow_thickness) * s
    arch = 0.012 * s
    tilt = (v.brow_tilt - 0.5) * 0.036 * s
    eye_top = e.y - e.h_max / 2.0
    y, _ = _brow_reference_y(eye_top, gap, thick, arch, tilt)
    dx = e.dx + 0.04 * e.w_max
    # Highest point any brow of this face can reach (brow edits must never move the hair).
    zone_top = min(_brow_reference_y(eye_top, 0.05 * s, 0.044 * s, arch, t * s)[1] for t in (-0.018, 0.018))
    # The brow must end inside the head even at that height.
    half_len = min(0.56 * e.w_max, f.half_width(zone_top) - 0.035 * s - dx)
    zone_dx = dx + half_len
    return _Brows(y, dx, half_len, thick, arch, tilt, zone_top, zone_dx)


def _mouth_geometry(v: FaceParams, f: _Face) -> _Mouth:
    s = f.scale
    top = f.cy + 0.40 * f.ry
    lip_up, lip_low = 0.022 * s, 0.028 * s
    half_w = (0.13 + 0.11 * v.mouth_width) * 2.0 * f.rx
    bend = (v.smile - 0.3) * 0.05 * s
    if v.mouth_open < MOUTH_CLOSED_BELOW:
        open_h = 0.0
    else:  # an open mouth is always clearly open, so it survives 64 px
        frac = (v.mouth_open - MOUTH_CLOSED_BELOW) / (1.0 - MOUTH_CLOSED_BELOW)
        open_h = (0.035 + 0.055 * frac) * s
    return _Mouth(top, top + lip_up, half_w, lip_up, lip_low, bend, open_h)


def _hair_geometry(v: FaceParams, f: _Face, b: _Brows) -> _Hair:
    s = f.scale
    style = min(int(v.hair_style * len(HAIR_STYLES)), len(HAIR_STYLES) - 1)
    sub = v.hair_style * len(HAIR_STYLES) - style  # position inside the style's bin
    a = v.hair_amount
    vol_k = (0.8, 1.0, 1.05, 1.0, 1.7)[style]
    vol = (0.016 + 0.06 * a) * vol_k * s
    limit = b.zone_top - 0.014 * s  # the hairline never comes lower than this near the brows
    face_top = f.cy - f.ry
    y_center = face_top + (limit - face_top) * (0.22 + 0.78 * a**0.8)
    # Receding temples at low amounts (M-shaped hairline), full temples at high amounts.
    y_temple = min(limit, y_center - (0.05 * (1.0 - a) - 0.02 * a) * s)
    if style == 2:  # bob: straight fringe, sides down to the jaw
        y_center = y_temple = limit - (1.0 - a) * 0.05 * s
        y_side = f.cy + (0.05 + 0.45 * a) * f.ry
    else:
        y_side = y_temple + (0.03 + 0.22 * a) * s
    x_c = b.zone_dx + 0.02 * s
    back_len = 0.0
    if style == 2:
        back_len = f.cy + (0.35 + 0.4 * a) * f.ry
    elif style == 3:
        back_len = f.cy + (0.7 + 0.8 * a) * f.ry
    elif style == 4:
        back_len = f.cy + (0.1 + 0.5 * a) * f.ry
    swept_dir = -1.0 if sub < 0.5 else 1.0
    return _Hair(style, vol, y_center, y_temple, limit, y_side, x_c, swept_dir, back_len)


# ----------------------------------------------------------------------------------
# Drawing
# ----------------------------------------------------------------------------------


class _Canvas:
    """An RGB image and a parallel label image, addressed in frame units."""

    def __init__(self, px: int, background: Color) -> None:
        self.px = px
        self.rgb = Image.new("RGB", (px, px), background)
        self.lab = Image.new("L", (px, px), BACKGROUND)
        self._rgb = ImageDraw.Draw(self.rgb)
        self._lab = ImageDraw.Draw(self.lab)

    def _box(self, cx: float, cy: float, rx: float, ry: float) -> list[float]:
        k = self.px
        x0, y0 = (cx - rx) * k, (cy - ry) * k
        # the "- 1" makes PIL's inclusive box span 2·r·k pixels; tiny parts at small sizes must not invert it
        return [x0, y0, max(x0, (cx + rx) * k - 1), max(y0, (cy + ry) * k - 1)]

    def _pts(self, pts: np.ndarray) -> list[float]:
        return (pts * self.px).ravel().tolist()

    def ellipse(
        self, cx: float, cy: float, rx: float, ry: float, color: Color, label: int | None,
        outline: Color | None = None, width: float = 0.0,
    ) -> None:
        box = self._box(cx, cy, rx, ry)
        w = max(1, int(round(width * self.px))) if outline is not None else 1
        self._rgb.ellipse(box, fill=color, outline=outline, width=w)
        if label is not None:
            self._lab.ellipse(box, fill=label)

    def polygon(
        self, pts: np.ndarray, color: Color, label: int | None,
        outline: Color | None = None, width: float = 0.0,
    ) -> None:
        xy = self._pts(pts)
        w = max(1, int(round(width * self.px))) if outline is not None else 1
        self._rgb.polygon(xy, fill=color, outline=outline, width=w)
        if label is not None:
            self._lab.polygon(xy, fill=label)

    def line(self, pts: np.ndarray, color: Color, width: float) -> None:
        """Colour-only stroke (drawn inside an already labelled part)."""
        self._rgb.line(self._pts(pts), fill=color, width=max(1, int(round(width * self.px))), joint="curve")


def _ellipse_arc(cx: float, cy: float, rx: float, ry: float, phi: np.ndarray) -> np.ndarray:
    """Points of an ellipse by angle from the top (phi = 0 is the topmost point)."""
    return np.stack([cx + rx * np.sin(phi), cy - ry * np.cos(phi)], axis=1)


def _face_outline(f: _Face, n: int = 72) -> np.ndarray:
    t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    s = np.sin(t)
    x = f.cx + f.rx * np.cos(t) * (1.0 - f.taper * np.maximum(s, 0.0) ** 2)
    return np.stack([x, f.cy + f.ry * s], axis=1)


def _hairline(f: _Face, h: _Hair, n: int = 41) -> np.ndarray:
    """Inner edge of the front hair, from the right side of the face to the left."""
    x_end = max(f.half_width(h.y_side) + 0.01 * f.scale, h.x_c + 0.01 * f.scale)
    # Central part (over the brows) stays at or above the brow limit.
    xc = np.linspace(h.x_c, -h.x_c, n)
    q = xc / h.x_c
    if h.style == 1:  # swept: fringe low on one side, rising to the other
        lo, hi = h.y_temple, h.y_center - 0.05 * f.scale
        yc = hi + (lo - hi) * (0.5 + 0.5 * q * h.swept_dir) ** 1.5
    elif h.style == 2:  # bob: straight fringe
        yc = np.full_like(q, h.y_center)
    else:  # rounded hairline, lower at the temples
        yc = h.y_center + (h.y_temple - h.y_center) * q**2
    # Even the shortest hair is a band following the top of the head ...
    head_top = f.cy - f.ry * np.sqrt(np.clip(1.0 - (xc / f.rx) ** 2, 0.0, 1.0))
    yc = np.maximum(yc, head_top + 0.028 * f.scale)
    # ... but it never reaches the brows.
    yc = np.minimum(yc, h.y_limit)
    # Outer parts drop smoothly from the temple to the side.
    m = 8
    u = np.linspace(0.0, 1.0, m + 1)[1:]
    sm = u * u * (3.0 - 2.0 * u)
    xs = h.x_c + (x_end - h.x_c) * u
    right = np.stack([f.cx + xs[::-1], (yc[0] + (h.y_side - yc[0]) * sm)[::-1]], axis=1)
    left = np.stack([f.cx - xs, yc[-1] + (h.y_side - yc[-1]) * sm], axis=1)
    centre = np.stack([f.cx + xc, yc], axis=1)
    return _inside_hair_outline(f, h, np.concatenate([right, centre, left]))


def _hair_outline_radii(f: _Face, h: _Hair) -> tuple[float, float]:
    return f.rx + h.vol, f.ry + h.vol * 1.2


def _inside_hair_outline(f: _Face, h: _Hair, pts: np.ndarray) -> np.ndarray:
    """Pull points into the outer hair ellipse (below its top edge, inside its sides)."""
    rx, ry = _hair_outline_radii(f, h)
    x, y = pts[:, 0].copy(), pts[:, 1].copy()
    dy = np.clip((f.cy - y) / ry, -1.0, 1.0)
    half = 0.995 * rx * np.sqrt(1.0 - dy * dy)
    x = f.cx + np.clip(x - f.cx, -half, half)
    top = f.cy - ry * np.sqrt(np.clip(1.0 - ((x - f.cx) / rx) ** 2, 0.0, 1.0))
    y = np.where(y - f.cy < 0.0, np.maximum(y, top), y)
    return np.stack([x, y], axis=1)


def _draw_back_hair(c: _Canvas, f: _Face, h: _Hair, color: Color, dark: Color) -> None:
    """Hair behind the head (bob, long, curly): visible beside the face and neck."""
    if h.back_len <= 0.0:
        return
    rx, ry = _hair_outline_radii(f, h)
    bottom = h.back_len
    flare = 1.0 + (0.12 if h.style == 3 else 0.04)
    r = 0.05 * f.scale if h.style != 2 else 0.02 * f.scale  # bottom corner rounding
    pts = np.array(
        [
            [f.cx - rx, f.cy],
            [f.cx + rx, f.cy],
            [f.cx + rx * flare, bottom - r],
            [f.cx + rx * flare - r, bottom],
            [f.cx - rx * flare + r, bottom],
            [f.cx - rx * flare, bottom - r],
        ]
    )
    c.ellipse(f.cx, f.cy, rx, ry, color, HAIR, dark, 0.006)
    c.polygon(pts, color, HAIR, dark, 0.006)
    c.ellipse(f.cx, f.cy, rx - 0.006, ry - 0.006, color, HAIR)  # hide the seam
    if h.style == 4:
        _draw_curls(c, f, h, color, dark, full=True)


def _draw_curls(c: _Canvas, f: _Face, h: _Hair, color: Color, dark: Color, full: bool) -> None:
    """Bumps along the outer hair contour; they stay outside the head outline."""
    rx, ry = _hair_outline_radii(f, h)
    span = np.pi * (0.95 if full else 0.62)
    phi = np.linspace(-span, span, 15 if full else 11)
    pts = _ellipse_arc(f.cx, f.cy, rx, ry, phi)
    rr = 0.75 * h.vol
    for x, y in pts:
        c.ellipse(float(x), float(y), rr, rr, color, HAIR, dark, 0.006)


def _draw_front_hair(c: _Canvas, f: _Face, h: _Hair, color: Color, dark: Color) -> None:
    """The hair cap over the top of the head, down to the hairline."""
    rx, ry = _hair_outline_radii(f, h)
    cos_side = np.clip((f.cy - h.y_side) / ry, -1.0, 1.0)
    phi_side = float(np.arccos(cos_side))
    outer = _ellipse_arc(f.cx, f.cy, rx, ry, np.linspace(-phi_side, phi_side, 33))
    inner = _hairline(f, h)
    c.polygon(np.concatenate([outer, inner]), color, HAIR, dark, 0.007)
    if h.style == 4:
        _draw_curls(c, f, h, color, dark, full=False)


def _draw_head(c: _Canvas, f: _Face, skin: Color, e: _Eyes) -> None:
    outline = _shade(skin, 0.72)
    # Neck behind the head, then the ears, then the face on top.
    neck_w = 0.40 * f.rx
    neck = np.array([[f.cx - neck_w, f.cy], [f.cx + neck_w, f.cy], [f.cx + neck_w, 1.01], [f.cx - neck_w, 1.01]])
    c.polygon(neck, _shade(skin, 0.86), SKIN, outline, 0.006)
    ear_rx, ear_ry = 0.045 * f.scale, 0.075 * f.scale
    ear_y = e.y + 0.05 * f.ry
    ear_dx = f.half_width(ear_y) - 0.01 * f.scale
    for side in (-1.0, 1.0):
        c.ellipse(f.cx + side * ear_dx, ear_y, ear_rx, ear_ry, _shade(skin, 0.95), SKIN, outline, 0.007)
    c.polygon(_face_outline(f), skin, SKIN, outline, 0.008)
    # Cheek blush, well below the largest possible eye.
    blush_y = e.y + e.h_max / 2.0 + 0.06 * f.scale
    for side in (-1.0, 1.0):
        c.ellipse(f.cx + side * (e.dx + 0.02), blush_y, 0.05 * f.scale, 0.025 * f.scale, _mix(skin, _BLUSH, 0.3), SKIN)


def _draw_brows(c: _Canvas, f: _Face, b: _Brows, color: Color) -> None:
    y_mid, half_t = _brow_profile(b.thick, b.arch, b.tilt)
    y_mid = b.y + y_mid
    for side in (-1.0, 1.0):
        x = f.cx + side * (b.dx + b.half_len * _BROW_TAU)
        top = np.stack([x, y_mid - half_t], axis=1)
        bot = np.stack([x, y_mid + half_t], axis=1)[::-1]
        c.polygon(np.concatenate([top, bot]), color, EYEBROW)


def _draw_eyes(c: _Canvas, f: _Face, e: _Eyes, iris: Color) -> None:
    lid = _OUTLINE_DARK
    for side in (-1.0, 1.0):
        ex = f.cx + side * e.dx
        c.ellipse(ex, e.y, e.w / 2.0, e.h / 2.0, _EYE_WHITE, EYE_WHITE, lid, 0.006)
        ix, iy = ex + e.gaze_dx, e.y + e.gaze_dy
        c.ellipse(ix, iy, e.iris_r, e.iris_r, iris, IRIS, _shade(iris, 0.6), 0.004)
        c.ellipse(ix, iy, e.pupil_r, e.pupil_r, _PUPIL, PUPIL)
        # Catch-light: a colour detail inside the pupil (label stays pupil).
        hr = 0.3 * e.pupil_r
        c.ellipse(ix + 0.35 * e.pupil_r, iy - 0.35 * e.pupil_r, hr, hr, (235, 235, 240), None)


def _draw_nose(c: _Canvas, f: _Face, m: _Mouth, e: _Eyes, skin: Color, size: float) -> None:
    s = f.scale
    w = (0.040 + 0.040 * size) * s  # half width
    h = (0.045 + 0.050 * size) * s
    bottom = m.top - 0.03 * s
    top = max(bottom - h, e.y + e.h_max / 2.0 + 0.01 * s)
    # A rounded, slightly bulbous cartoon nose: a soft teardrop pointing up.
    t = np.linspace(0.0, 2.0 * np.pi, 28, endpoint=False)
    cy = (top + bottom) / 2.0
    hy = (bottom - top) / 2.0
    narrow = 1.0 - 0.45 * np.clip(-np.sin(t), 0.0, 1.0)  # upper half narrower
    pts = np.stack([f.cx + w * np.cos(t) * narrow, cy + hy * np.sin(t)], axis=1)
    c.polygon(pts, _shade(skin, 0.88), NOSE, _shade(skin, 0.66), 0.006)


def _draw_mouth(c: _Canvas, f: _Face, m: _Mouth, lips: Color, n: int = 25) -> None:
    t = np.linspace(-1.0, 1.0, n)
    x = f.cx + m.half_w * t
    env = np.sqrt(np.clip(1.0 - t * t, 0.0, 1.0))
    line = m.mid - m.bend * t * t  # the mouth line; corners rise when smiling
    lip_env = 0.2 + 0.8 * env**0.7  # lips keep some thickness at the corners
    up_top = line - m.lip_up * lip_env
    in_bot = line + m.open_h * env
    low_bot = in_bot + m.lip_low * lip_env
    outer = np.concatenate([np.stack([x, up_top], 1), np.stack([x, low_bot], 1)[::-1]])
    c.polygon(outer, lips, LIPS, _shade(lips, 0.72), 0.006)
    if m.open_h <= 0.0:
        c.line(np.stack([x, line], 1)[2:-2], _shade(lips, 0.55), 0.008)
        return
    # The interior is slightly narrower than the lips so lips close it off at the corners.
    x_in = f.cx + 0.9 * m.half_w * t
    interior = np.concatenate([np.stack([x_in, line], 1), np.stack([x_in, in_bot], 1)[::-1]])
    c.polygon(interior, _MOUTH_DARK, MOUTH_INTERIOR)
    # Upper teeth: a band under the upper lip, inside the interior.
    k = np.abs(t) <= 0.75
    teeth_h = min(0.35 * m.open_h, 0.02 * f.scale)
    teeth = np.concatenate([np.stack([x_in[k], line[k]], 1), np.stack([x_in[k], (line + teeth_h * env)[k]], 1)[::-1]])
    c.polygon(teeth, _TEETH, MOUTH_INTERIOR)
    if m.open_h > 0.05 * f.scale:  # tongue, resting on the lower lip
        k = np.abs(t) <= 0.55
        tongue_top = in_bot - 0.45 * m.open_h * np.sqrt(np.clip(1.0 - (t / 0.55) ** 2, 0.0, 1.0))
        tongue = np.concatenate([np.stack([x_in[k], in_bot[k]], 1), np.stack([x_in[k], tongue_top[k]], 1)[::-1]])
        c.polygon(tongue, _TONGUE, MOUTH_INTERIOR)


def _colors(v: FaceParams) -> dict[str, Color]:
    skin = _ramp(_SKIN_RAMP, v.skin_tone)
    hair = _ramp(_HAIR_RAMP, v.hair_color)
    return {
        "background": _hsv_to_rgb(v.background_hue, 0.55 - 0.35 * v.background_shade, 0.45 + 0.5 * v.background_shade),
        "skin": _shade(skin, 1.0),
        "hair": _shade(hair, 1.0),
        "hair_dark": _shade(hair, 0.7),
        "brow": _mix(_shade(hair, 0.75), (60, 40, 30), 0.35),
        "iris": _shade(_ramp(_IRIS_RAMP, v.iris_color), 1.0),
        "lips": _mix(_shade(skin, 0.9), _LIP_RED, 0.4 + 0.45 * v.lip_tint),
    }


def _as_face_params(params: np.ndarray | Sequence[float]) -> FaceParams:
    p = np.asarray(params, dtype=np.float64).reshape(-1)
    if p.shape[0] != NUM_PARAMS:
        raise ValueError(f"expected {NUM_PARAMS} parameters, got {p.shape[0]}")
    return FaceParams(*np.clip(p, 0.0, 1.0).tolist())


def _check_size(size: int) -> None:
    if int(size) != size or size < 8:
        raise ValueError(f"size must be an integer >= 8, got {size}")


# ----------------------------------------------------------------------------------
# Public rendering API
# ----------------------------------------------------------------------------------


def render_supersampled(params: np.ndarray | Sequence[float], size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Draw the face at ``SUPERSAMPLE * size`` pixels: RGB uint8 (S,S,3), labels uint8 (S,S)."""
    _check_size(size)
    v = _as_face_params(params)
    face = _face_geometry(v)
    eyes = _eye_geometry(v, face)
    brows = _brow_geometry(v, face, eyes)
    mouth = _mouth_geometry(v, face)
    hair = _hair_geometry(v, face, brows)
    col = _colors(v)

    c = _Canvas(size * SUPERSAMPLE, col["background"])
    _draw_back_hair(c, face, hair, col["hair"], col["hair_dark"])
    _draw_head(c, face, col["skin"], eyes)
    _draw_front_hair(c, face, hair, col["hair"], col["hair_dark"])
    _draw_brows(c, face, brows, col["brow"])
    _draw_eyes(c, face, eyes, col["iris"])
    _draw_nose(c, face, mouth, eyes, col["skin"], v.nose_size)
    _draw_mouth(c, face, mouth, col["lips"])
    return np.asarray(c.rgb), np.asarray(c.lab)


def _box_downsample(rgb: np.ndarray, k: int) -> np.ndarray:
    """Mean of each k x k block, rounded to uint8."""
    n = rgb.shape[0] // k
    sums = rgb.reshape(n, k, n, k, 3).sum(axis=(1, 3), dtype=np.uint32)
    return ((sums + (k * k) // 2) // (k * k)).astype(np.uint8)


def _majority_downsample(labels: np.ndarray, k: int) -> np.ndarray:
    """Most frequent label of each k x k block (ties go to the lower class id)."""
    n = labels.shape[0] // k
    blocks = labels.reshape(n, k, n, k).transpose(0, 2, 1, 3).reshape(n * n, k * k).astype(np.int64)
    keys = blocks + (np.arange(n * n, dtype=np.int64) * NUM_CLASSES)[:, None]
    counts = np.bincount(keys.ravel(), minlength=n * n * NUM_CLASSES).reshape(n * n, NUM_CLASSES)
    return counts.argmax(axis=1).astype(np.uint8).reshape(n, n)


def render(params: np.ndarray | Sequence[float], size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Render one face: (RGB uint8 (size,size,3), labels uint8 (size,size) with ids 0..9).

    Deterministic.  Any ``size`` >= 8 works (64 and 128 are the usual ones); parameters
    outside [0, 1] are clipped.
    """
    rgb_hi, lab_hi = render_supersampled(params, size)
    return _box_downsample(rgb_hi, SUPERSAMPLE), _majority_downsample(lab_hi, SUPERSAMPLE)


def render_batch(params_batch: np.ndarray | Sequence[Sequence[float]], size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Render N faces: images (N,size,size,3) uint8 and labels (N,size,size) uint8."""
    pb = np.asarray(params_batch, dtype=np.float32)
    if pb.ndim != 2 or pb.shape[1] != NUM_PARAMS:
        raise ValueError(f"expected params of shape (N, {NUM_PARAMS}), got {pb.shape}")
    images = np.empty((pb.shape[0], size, size, 3), np.uint8)
    labels = np.empty((pb.shape[0], size, size), np.uint8)
    for i, p in enumerate(pb):
        images[i], labels[i] = render(p, size)
    return images, labels


def colorize_labels(labels: np.ndarray) -> np.ndarray:
    """Map a label map (..., H, W) to display colours (..., H, W, 3) with PALETTE."""
    return np.asarray(PALETTE, dtype=np.uint8)[np.asarray(labels)]


# ----------------------------------------------------------------------------------
# Parameter helpers
# ----------------------------------------------------------------------------------


def _rng(seed_or_rng: int | np.random.Generator | None) -> np.random.Generator:
    if isinstance(seed_or_rng, np.random.Generator):
        return seed_or_rng
    return np.random.default_rng(seed_or_rng)


def sample_params(seed_or_rng: int | np.random.Generator | None = None) -> np.ndarray:
    """One face from the prior: independent Uniform(0, 1) entries, float32."""
    return _rng(seed_or_rng).random(NUM_PARAMS).astype(np.float32)


def sample_params_batch(n: int, seed_or_rng: int | np.random.Generator | None = None) -> np.ndarray:
    """N faces from the prior, shape (n, NUM_PARAMS), float32."""
    return _rng(seed_or_rng).random((n, NUM_PARAMS)).astype(np.float32)


def param_index(name: str) -> int:
    """Position of a parameter in the vector."""
    return PARAM_NAMES.index(name)


def default_params() -> np.ndarray:
    """The 'average' face: every parameter at 0.5."""
    return np.full(NUM_PARAMS, 0.5, dtype=np.float32)


def make_params(base: np.ndarray | Sequence[float] | None = None, **values: float) -> np.ndarray:
    """A parameter vector from ``base`` (default: all 0.5) with named entries replaced."""
    p = default_params() if base is None else np.array(base, dtype=np.float32).reshape(-1).copy()
    for name, value in values.items():
        p[param_index(name)] = value
    return np.clip(p, 0.0, 1.0).astype(np.float32)


# ----------------------------------------------------------------------------------
# Semantic edits
# ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Edit:
    """A named semantic edit: set one or two parameters to target values."""

    name: str
    display_name: str
    targets: tuple[tuple[str, float], ...]  # (parameter name, target value)
    classes: tuple[int, ...]  # class ids whose pixels the edit changes

    def apply(self, params: np.ndarray | Sequence[float], strength: float = 1.0) -> np.ndarray:
        """Move the target parameters ``strength`` of the way to their targets (1 = full edit)."""
        p = np.array(params, dtype=np.float32).reshape(-1).copy()
        for pname, target in self.targets:
            i = param_index(pname)
            p[i] = p[i] + strength * (target - p[i])
        return np.clip(p, 0.0, 1.0).astype(np.float32)


_EYE_CLASSES = (EYE_WHITE, IRIS, PUPIL)
_GAZE_CLASSES = (EYE_WHITE, IRIS, PUPIL)
_MOUTH_CLASSES = (LIPS, MOUTH_INTERIOR)


def _edits(*edits: Edit) -> dict[str, Edit]:
    return {e.name: e for e in edits}


EDITS: dict[str, Edit] = _edits(
    Edit("bigger_eyes", "Bigger eyes", (("eye_size", 1.0),), _EYE_CLASSES),
    Edit("smaller_eyes", "Smaller eyes", (("eye_size", 0.0),), _EYE_CLASSES),
    Edit("close_mouth", "Close mouth", (("mouth_open", 0.0),), _MOUTH_CLASSES),
    Edit("open_mouth", "Open mouth", (("mouth_open", 1.0),), _MOUTH_CLASSES),
    Edit("smile", "Smile", (("smile", 1.0),), _MOUTH_CLASSES),
    Edit("look_left", "Look left", (("gaze_x", 0.0),), _GAZE_CLASSES),
    Edit("look_right", "Look right", (("gaze_x", 1.0),), _GAZE_CLASSES),
    Edit("look_up", "Look up", (("gaze_y", 0.0),), _GAZE_CLASSES),
    Edit("look_down", "Look down", (("gaze_y", 1.0),), _GAZE_CLASSES),
    Edit("more_hair", "More hair", (("hair_amount", 1.0),), (HAIR,)),
    Edit("less_hair", "Less hair", (("hair_amount", 0.0),), (HAIR,)),
    Edit("thicker_brows", "Thicker eyebrows", (("brow_thickness", 1.0),), (EYEBROW,)),
    Edit("raise_brows", "Raise eyebrows", (("brow_height", 1.0),), (EYEBROW,)),
    Edit("bigger_nose", "Bigger nose", (("nose_size", 1.0),), (NOSE,)),
    Edit("wider_mouth", "Wider mouth", (("mouth_width", 1.0),), _MOUTH_CLASSES),
)


def apply_edit(params: np.ndarray | Sequence[float], name: str, strength: float = 1.0) -> np.ndarray:
    """Apply ``EDITS[name]`` with the given strength; result clipped to [0, 1]."""
    try:
        edit = EDITS[name]
    except KeyError:
        raise KeyError(f"unknown edit {name!r}; known: {sorted(EDITS)}") from None
    return edit.apply(params, strength)
