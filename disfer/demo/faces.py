"""Procedural 48x48 grey faces with an expression built from action-unit-like parameters.

The demo cannot ship FER-2013, so it draws its own faces. Each face is an *identity* (face shape,
skin tone, hair, background, lighting, pose) and an *expression*: a vector of action-unit-like
parameters (brow raise, brow lower, ..., nose wrinkle). Each emotion has a prototype range of those
parameters; a face's expression is a mixture of prototypes (its `mixture` over EMOTIONS, the truth
the simulated crowd perceives), so some faces are clear and some honestly ambiguous.

Faces are drawn at 4x with OpenCV, shaded, then reduced to 48x48 with INTER_AREA, like FER-2013's
tight, frame-filling crops. Everything is deterministic from the seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from disfer.emotions import EMOTION_INDEX, EMOTIONS
from disfer.images import SIZE

# Action-unit-like parameters; eye_open is in -1 (squint) .. 1 (wide), the others in 0 .. 1.
ACTION_UNITS: tuple[str, ...] = (
    "brow_raise",         # AU1+2: both brows up (surprise, fear)
    "inner_brow_raise",   # AU1: inner ends up (sadness, fear)
    "brow_lower",         # AU4: brows down (anger, disgust)
    "brow_knit",          # AU4: inner ends pulled together and down (anger)
    "eye_open",           # AU5 / AU6-7: wide eyes vs squint
    "lip_corner_pull",    # AU12: smile
    "lip_corner_depress",  # AU15: frown
    "lip_stretch",        # AU20: lips pulled sideways (fear)
    "lip_press",          # AU23-24: thin pressed lips (anger)
    "mouth_open",         # AU25-27: jaw drop
    "upper_lip_raise",    # AU10: (disgust)
    "nose_wrinkle",       # AU9: (disgust)
)
AU_INDEX = {name: i for i, name in enumerate(ACTION_UNITS)}

# Prototype ranges per emotion: parameters drawn uniformly in (low, high); unnamed ones are 0.
PROTOTYPES: dict[str, dict[str, tuple[float, float]]] = {
    "anger": {"brow_lower": (0.8, 1.0), "brow_knit": (0.8, 1.0), "eye_open": (-0.2, 0.2),
              "lip_press": (0.4, 1.0), "mouth_open": (0.0, 0.5), "upper_lip_raise": (0.0, 0.4),
              "lip_corner_depress": (0.0, 0.4)},
    "disgust": {"nose_wrinkle": (0.8, 1.0), "upper_lip_raise": (0.7, 1.0), "brow_lower": (0.4, 0.7),
                "brow_knit": (0.2, 0.5), "eye_open": (-0.7, -0.4), "lip_corner_depress": (0.3, 0.7),
                "mouth_open": (0.0, 0.2)},
    "fear": {"brow_raise": (0.5, 0.8), "inner_brow_raise": (0.8, 1.0), "brow_knit": (0.3, 0.6),
             "eye_open": (0.8, 1.0), "lip_stretch": (0.7, 1.0), "mouth_open": (0.3, 0.7)},
    "happiness": {"lip_corner_pull": (0.8, 1.0), "eye_open": (-0.6, -0.2), "mouth_open": (0.0, 0.6)},
    "neutral": {},
    "sadness": {"inner_brow_raise": (0.8, 1.0), "brow_knit": (0.2, 0.5), "lip_corner_depress": (0.8, 1.0),
                "eye_open": (-0.5, -0.2), "mouth_open": (0.0, 0.1)},
    "surprise": {"brow_raise": (0.9, 1.0), "eye_open": (0.8, 1.0), "mouth_open": (0.7, 1.0)},
}

# Which second emotion an ambiguous face blends in: the pairs people confuse most.
_BLENDS: dict[str, tuple[str, ...]] = {
    "anger": ("disgust", "sadness", "neutral"),
    "disgust": ("anger", "sadness"),
    "fear": ("surprise", "sadness"),
    "happiness": ("surprise", "neutral"),
    "neutral": ("sadness", "anger", "happiness"),
    "sadness": ("neutral", "fear", "disgust"),
    "surprise": ("fear", "happiness"),
}

_SCALE = 4                       # supersampling factor of the drawing canvas
_SHIFT = 4                       # OpenCV's fractional-coordinate bits
_CANVAS = SIZE * _SCALE


@dataclass(frozen=True)
class Identity:
    """Who the face is: everything that does not change with the expression."""

    skin: float          # grey level of the skin, 0..255
    background: float
    hair: float
    hair_style: int      # 0 short, 1 long (down the sides), 2 fringe, 3 bald
    face_w: float        # half-width of the face oval, in 48-pixel units
    face_h: float
    eye_gap: float       # half the distance between the eyes
    brow_thickness: float
    lip_width: float     # half-width of the mouth
    light: float         # -1 (lit from the left) .. 1 (from the right)
    dx: float            # pose: translation, rotation (degrees), scale
    dy: float
    angle: float
    zoom: float


@dataclass(frozen=True)
class FaceSet:
    """Generated faces with the truth behind them."""

    faces: np.ndarray        # (N, 48, 48) uint8
    emotion: list[str]       # the emotion each face was drawn to show (a faint one may read as neutral)
    mixture: np.ndarray      # (N, 7) true expression mixture over EMOTIONS, rows sum to 1
    units: np.ndarray        # (N, len(ACTION_UNITS)) the parameters it was drawn with


def sample_identity(rng: np.random.Generator) -> Identity:
    skin = rng.uniform(70, 205)
    # Backgrounds and hair are chosen away from the skin so the face outline shows.
    background = float(np.clip(skin + rng.choice([-1, 1]) * rng.uniform(40, 110), 10, 245))
    hair = float(np.clip(skin - rng.uniform(30, 150), 5, 230)) if rng.random() < 0.85 else \
        float(np.clip(skin + rng.uniform(20, 50), 0, 250))
    return Identity(
        skin=skin, background=background, hair=hair, hair_style=int(rng.integers(0, 4)),
        face_w=rng.uniform(17.0, 20.5), face_h=rng.uniform(23.0, 26.0), eye_gap=rng.uniform(7.6, 9.0),
        brow_thickness=rng.uniform(1.3, 2.2), lip_width=rng.uniform(6.3, 7.8),
        light=rng.uniform(-1, 1), dx=rng.normal(0, 1.0), dy=rng.normal(0, 1.0),
        angle=rng.normal(0, 4.0), zoom=rng.uniform(0.95, 1.08),
    )


def sample_units(emotion: str, rng: np.random.Generator) -> np.ndarray:
    """One draw from an emotion's prototype ranges."""
    units = np.zeros(len(ACTION_UNITS))
    for name, (low, high) in PROTOTYPES[emotion].items():
        units[AU_INDEX[name]] = rng.uniform(low, high)
    return units


def sample_expression(emotion: str, rng: np.random.Generator,
                      blend_rate: float = 0.35) -> tuple[np.ndarray, np.ndarray]:
    """(mixture over EMOTIONS, action units) for a face meant to show `emotion`.

    Intensity scales the expression towards neutral; with probability `blend_rate` a second,
    commonly confused emotion is blended in, so those faces are honestly ambiguous.
    """
    weights = np.zeros(len(EMOTIONS))
    weights[EMOTION_INDEX[emotion]] = 1.0
    if rng.random() < blend_rate:
        other = _BLENDS[emotion][int(rng.integers(0, len(_BLENDS[emotion])))]
        share = rng.uniform(0.15, 0.45)
        weights *= 1 - share
        weights[EMOTION_INDEX[other]] = share
    intensity = rng.uniform(0.45, 1.0)
    neutral = EMOTION_INDEX["neutral"]
    mixture = weights * intensity
    mixture[neutral] += 1 - intensity
    units = sum(w * sample_units(e, rng) for e, w in zip(EMOTIONS, weights, strict=True) if w > 0)
    return mixture, np.asarray(units) * intensity


def generate_faces(per_emotion: int, seed: int = 0) -> FaceSet:
    """`per_emotion` faces for each of the seven emotions, in EMOTIONS order, deterministic from seed."""
    rng = np.random.default_rng(seed)
    faces, names, mixtures, all_units = [], [], [], []
    for emotion in EMOTIONS:
        for _ in range(per_emotion):
            identity = sample_identity(rng)
            mixture, units = sample_expression(emotion, rng)
            faces.append(draw_face(identity, units, rng))
            names.append(emotion)
            mixtures.append(mixture)
            all_units.append(units)
    return FaceSet(np.stack(faces), names, np.stack(mixtures), np.stack(all_units))


# -- drawing ---------------------------------------------------------------------------------------
def _pt(x: float, y: float) -> tuple[int, int]:
    """A 48-unit coordinate as OpenCV's fixed-point canvas coordinate."""
    f = _SCALE * (1 << _SHIFT)
    return int(round(x * f)), int(round(y * f))


def _pts(points) -> np.ndarray:
    return np.array([_pt(x, y) for x, y in points], dtype=np.int32)


class _Canvas:
    """A float canvas at 4x where shapes are painted as soft-edged masks blended in."""

    def __init__(self, value: float):
        self.img = np.full((_CANVAS, _CANVAS), value, dtype=np.float32)

    def mask(self) -> np.ndarray:
        return np.zeros((_CANVAS, _CANVAS), dtype=np.uint8)

    def paint(self, mask: np.ndarray, value: float, alpha: float = 1.0, soften: float = 0.0) -> None:
        a = mask.astype(np.float32) / 255.0
        if soften > 0:
            a = cv2.GaussianBlur(a, (0, 0), soften * _SCALE)
        a *= alpha
        self.img += a * (value - self.img)

    def shade(self, mask: np.ndarray, factor: float, soften: float) -> None:
        """Darken (factor < 1) or lighten (> 1) under a softened mask, keeping the local tone."""
        a = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), soften * _SCALE)
        self.img *= 1 + a * (factor - 1)


def _curve(x0, y0, x1, y1, bend, n=12):
    """Points on a quadratic curve from (x0, y0) to (x1, y1) whose middle is lifted by `bend`."""
    t = np.linspace(0, 1, n)
    mx, my = (x0 + x1) / 2, (y0 + y1) / 2 - 2 * bend
    xs = (1 - t) ** 2 * x0 + 2 * (1 - t) * t * mx + t ** 2 * x1
    ys = (1 - t) ** 2 * y0 + 2 * (1 - t) * t * my + t ** 2 * y1
    return list(zip(xs, ys, strict=True))


# Where the features sit, in 48-pixel units: the face's centre a little below the crop's, the eyes
# above it. Everything else is placed relative to these and moved by the action units.
_CX, _CY = SIZE / 2, SIZE / 2 + 1.5
_EYE_Y = _CY - 5.0
_LINE = cv2.LINE_AA


def draw_face(identity: Identity, units: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A (48, 48) uint8 face of `identity` showing the action units `units`.

    Painted back to front on a 4x canvas; `rng` draws the background gradient first and the
    sensor grain last (the order matters: the faces are deterministic from the seed).
    """
    u = {name: float(units[i]) for i, name in enumerate(ACTION_UNITS)}
    c = _Canvas(identity.background)
    _background_gradient(c, rng)
    _hair_behind_and_neck(c, identity)
    _face_oval(c, identity)
    _hair_on_top(c, identity)
    brows = _brow_geometry(u)
    _brows(c, identity, u, brows)
    _furrows(c, u, brows)
    _eyes(c, identity, u, brows)
    nose_y = _nose(c, identity, u)
    mouth = _mouth_geometry(identity, u)
    _mouth_inside(c, u, mouth)
    _lips(c, identity, u, mouth)
    _mouth_shadows(c, u, mouth, nose_y)
    return _posed_48x48(c, identity, rng)


def _background_gradient(c: _Canvas, rng: np.random.Generator) -> None:
    """A soft background gradient so the crop does not look pasted on a flat card."""
    ramp = np.linspace(-1, 1, _CANVAS, dtype=np.float32)
    c.img += 18 * rng.uniform(-1, 1) * ramp[None, :] + 12 * rng.uniform(-1, 1) * ramp[:, None]


def _hair_behind_and_neck(c: _Canvas, idt: Identity) -> None:
    """Hair behind the head (long hair falls beside the face), neck and shoulders below."""
    cx, cy = _CX, _CY
    if idt.hair_style == 1:
        m = c.mask()
        cv2.ellipse(m, _pt(cx, cy - 2), _pt(idt.face_w + 5, idt.face_h + 8), 0, 0, 360, 255, -1, _LINE, _SHIFT)
        c.paint(m, idt.hair, soften=0.6)
    m = c.mask()
    cv2.rectangle(m, _pt(cx - idt.face_w * 0.55, cy + 10), _pt(cx + idt.face_w * 0.55, 60), 255, -1, _LINE,
                  _SHIFT)
    c.paint(m, idt.skin * 0.8, soften=0.5)


def _face_oval(c: _Canvas, idt: Identity) -> None:
    """Face oval, shaded darker towards its rim and towards the side away from the light."""
    cx, cy = _CX, _CY
    face = c.mask()
    cv2.ellipse(face, _pt(cx, cy), _pt(idt.face_w, idt.face_h), 0, 0, 360, 255, -1, _LINE, _SHIFT)
    c.paint(face, idt.skin, soften=0.4)
    inner = c.mask()
    cv2.ellipse(inner, _pt(cx, cy - 1), _pt(idt.face_w * 0.72, idt.face_h * 0.75), 0, 0, 360, 255, -1, _LINE,
                _SHIFT)
    rim = cv2.subtract(face, inner)
    c.shade(rim, 0.72, soften=2.5)
    side = c.mask()
    sx = cx - idt.light * idt.face_w * 0.9
    cv2.ellipse(side, _pt(sx, cy), _pt(idt.face_w * 0.5, idt.face_h), 0, 0, 360, 255, -1, _LINE, _SHIFT)
    c.shade(cv2.bitwise_and(side, face), 0.75, soften=3.0)


def _hair_on_top(c: _Canvas, idt: Identity) -> None:
    """The head's outline above a curved hairline (low for a fringe; none if bald)."""
    if idt.hair_style == 3:
        return
    cx, cy = _CX, _CY
    head = c.mask()
    cv2.ellipse(head, _pt(cx, cy - 1), _pt(idt.face_w + 2.5, idt.face_h + 2.5), 0, 0, 360, 255, -1,
                _LINE, _SHIFT)
    hairline_y = cy - idt.face_h * (0.52 if idt.hair_style == 2 else 0.68)
    above = c.mask()
    reach = idt.face_w + 3
    edge = _curve(cx - reach, hairline_y + 9, cx + reach, hairline_y + 9, 9.0)
    cv2.fillPoly(above, [_pts([(cx - reach, -2)] + edge + [(cx + reach, -2)])], 255, _LINE, _SHIFT)
    c.paint(cv2.bitwise_and(head, above), idt.hair, soften=0.5)


@dataclass(frozen=True)
class _BrowGeometry:
    lift: float         # both brows up (+) or down (-)
    inner_lift: float   # inner ends up (+: sadness, fear) or knitted down (-)
    y: float            # height of the brows' line


def _brow_geometry(u: dict[str, float]) -> _BrowGeometry:
    lift = 3.2 * u["brow_raise"] - 2.6 * u["brow_lower"]
    inner_lift = 2.8 * u["inner_brow_raise"] - 3.0 * u["brow_knit"]
    return _BrowGeometry(lift, inner_lift, _EYE_Y - 4.2 - lift)


def _brows(c: _Canvas, idt: Identity, u: dict[str, float], brows: _BrowGeometry) -> None:
    """Brows: outer end, inner end; raised, lowered, knitted (inner ends down and in) or tilted
    (inner ends up: sadness, fear)."""
    cx, brow_y = _CX, brows.y
    for side_sign in (-1, 1):
        ex = cx + side_sign * idt.eye_gap
        outer = (ex + side_sign * 4.6, brow_y + 0.6 + 0.6 * u["inner_brow_raise"])
        inner_x = cx + side_sign * (2.6 - 1.0 * u["brow_knit"])
        inner = (inner_x, brow_y - brows.inner_lift + 0.3)
        pts = _curve(inner[0], inner[1], outer[0], outer[1], 0.6 + 0.5 * u["brow_raise"] - 0.4 * u["brow_knit"])
        m = c.mask()
        cv2.polylines(m, [_pts(pts)], False, 255, int(idt.brow_thickness * _SCALE), _LINE, _SHIFT)
        c.paint(m, min(idt.hair, idt.skin * 0.55), alpha=0.9, soften=0.3)


def _furrows(c: _Canvas, u: dict[str, float], brows: _BrowGeometry) -> None:
    """Horizontal forehead lines when brows rise, vertical ones between knitted brows."""
    cx, brow_y = _CX, brows.y
    if u["brow_raise"] + u["inner_brow_raise"] > 0.6:
        m = c.mask()
        for k in range(2):
            y = brow_y - 3.0 - 1.8 * k
            cv2.polylines(m, [_pts(_curve(cx - 6, y + 0.5, cx + 6, y + 0.5, 0.5))], False, 255, _SCALE, _LINE,
                          _SHIFT)
        c.shade(m, 1 - 0.2 * min(u["brow_raise"] + u["inner_brow_raise"], 1.0), soften=0.3)
    if u["brow_knit"] > 0.3:
        m = c.mask()
        for s in (-1, 1):
            cv2.line(m, _pt(cx + s * 0.9, brow_y - brows.inner_lift - 1.0), _pt(cx + s * 0.7, brow_y + 1.8), 255,
                     _SCALE, _LINE, _SHIFT)
        c.shade(m, 1 - 0.35 * u["brow_knit"], soften=0.3)


def _eyes(c: _Canvas, idt: Identity, u: dict[str, float], brows: _BrowGeometry) -> None:
    """Eye sockets in shadow, then the eyes: their height follows eye_open (squint .. wide)."""
    cx, eye_y = _CX, _EYE_Y
    opening = float(np.clip(1.45 + 1.15 * u["eye_open"], 0.35, 3.0))
    for side_sign in (-1, 1):
        ex = cx + side_sign * idt.eye_gap
        m = c.mask()
        # Lowered brows deepen the socket's shadow (the glare of anger), raised ones open it up.
        cv2.ellipse(m, _pt(ex, eye_y - 0.8 - 0.4 * brows.lift), _pt(4.8, 3.4), 0, 0, 360, 255, -1, _LINE, _SHIFT)
        c.shade(m, 0.74 - 0.24 * u["brow_lower"] + 0.08 * u["brow_raise"], soften=1.2)
        m = c.mask()
        cv2.ellipse(m, _pt(ex, eye_y), _pt(3.4, opening), 0, 0, 360, 255, -1, _LINE, _SHIFT)
        c.paint(m, min(idt.skin + 40, 235), alpha=0.8, soften=0.15)
        iris = c.mask()
        cv2.circle(iris, _pt(ex, eye_y), int(min(1.7, opening + 0.2) * _SCALE * (1 << _SHIFT)), 255, -1, _LINE,
                   _SHIFT)
        c.paint(cv2.bitwise_and(iris, m), 25, alpha=0.95)
        lid = c.mask()
        cv2.ellipse(lid, _pt(ex, eye_y), _pt(3.6, opening), 0, 180, 360, 255, _SCALE, _LINE, _SHIFT)
        c.paint(lid, 20, alpha=0.8, soften=0.2)
        if u["eye_open"] < -0.2:   # cheek raise: a lower-lid crease under squinting eyes
            m = c.mask()
            cv2.ellipse(m, _pt(ex, eye_y + opening + 0.8), _pt(3.2, 1.0), 0, 20, 160, 255, _SCALE, _LINE, _SHIFT)
            c.shade(m, 0.8, soften=0.3)


def _nose(c: _Canvas, idt: Identity, u: dict[str, float]) -> float:
    """A shaded side, nostrils (raised and flared by the wrinkle), bridge creases; returns the
    nostrils' height."""
    cx, cy, eye_y = _CX, _CY, _EYE_Y
    nose_y = cy + 5.0 - 0.8 * u["nose_wrinkle"]
    m = c.mask()
    nx = cx - idt.light * 1.5
    cv2.line(m, _pt(nx, eye_y + 1), _pt(nx - idt.light * 0.5, nose_y - 1), 255, int(1.6 * _SCALE), _LINE, _SHIFT)
    c.shade(m, 0.8, soften=0.7)
    m = c.mask()
    cv2.ellipse(m, _pt(cx, nose_y + 0.3), _pt(3.0 + 0.8 * u["nose_wrinkle"], 1.2), 0, 0, 180, 255, -1, _LINE,
                _SHIFT)
    c.shade(m, 0.75, soften=0.5)
    for s in (-1, 1):
        m = c.mask()
        cv2.ellipse(m, _pt(cx + s * 1.4, nose_y), _pt(0.9 + 0.3 * u["nose_wrinkle"], 0.55), 0, 0, 360, 255, -1,
                    _LINE, _SHIFT)
        c.paint(m, idt.skin * 0.3, alpha=0.9, soften=0.2)
    if u["nose_wrinkle"] > 0.2:   # creases slanting down from the bridge on both sides of the nose
        m = c.mask()
        for s in (-1, 1):
            for k in range(2):
                y = eye_y + 1.0 + 1.4 * k
                cv2.line(m, _pt(cx + s * 0.8, y), _pt(cx + s * 2.6, y + 1.6), 255, _SCALE, _LINE, _SHIFT)
        c.shade(m, 1 - 0.45 * u["nose_wrinkle"], soften=0.3)
    return nose_y


@dataclass(frozen=True)
class _MouthGeometry:
    half: float        # half-width, corner to corner
    corner_y: float
    gap: float         # how far the lips part
    upper_y: float
    lower_y: float
    top: list          # the upper lip's curve, left to right
    bottom: list       # the lower lip's curve, right to left


def _mouth_geometry(idt: Identity, u: dict[str, float]) -> _MouthGeometry:
    """Corners pulled up (smile), down (frown) or sideways (stretch); the upper lip rises, the
    jaw drops."""
    cx = _CX
    mouth_y = _CY + 11.5 + 0.6 * u["mouth_open"]
    half = idt.lip_width * (1 + 0.3 * u["lip_corner_pull"] + 0.4 * u["lip_stretch"] - 0.2 * u["lip_press"]
                            - 0.3 * u["mouth_open"] * (1 - u["lip_corner_pull"]))
    corner_y = mouth_y - 3.4 * u["lip_corner_pull"] + 3.0 * u["lip_corner_depress"]
    gap = 7.5 * u["mouth_open"] + 1.5 * u["upper_lip_raise"] + 0.8 * u["lip_stretch"]
    smile = 3.0 * u["lip_corner_pull"] - 2.0 * u["lip_corner_depress"]
    upper_y = mouth_y - 0.6 - 1.6 * u["upper_lip_raise"] - 0.3 * gap
    lower_y = mouth_y + 0.6 + 0.7 * gap + 0.5 * smile
    top = _curve(cx - half, corner_y, cx + half, corner_y, corner_y - upper_y)
    bottom = _curve(cx + half, corner_y, cx - half, corner_y, corner_y - lower_y)
    return _MouthGeometry(half, corner_y, gap, upper_y, lower_y, top, bottom)


def _mouth_inside(c: _Canvas, u: dict[str, float], mouth: _MouthGeometry) -> None:
    """An open mouth is dark inside, with teeth showing under a raised lip or a smile."""
    if mouth.gap <= 0.8:
        return
    m = c.mask()
    cv2.fillPoly(m, [_pts(mouth.top + mouth.bottom)], 255, _LINE, _SHIFT)
    c.paint(m, 18, alpha=0.95, soften=0.2)
    if u["lip_corner_pull"] + u["upper_lip_raise"] + 0.5 * u["brow_lower"] > 0.6:
        teeth = c.mask()
        cv2.fillPoly(teeth, [_pts(mouth.top + mouth.bottom)], 255, _LINE, _SHIFT)
        cut = c.mask()
        cv2.rectangle(cut, _pt(0, mouth.upper_y + min(1.6, 0.45 * mouth.gap) + 0.6), _pt(SIZE, SIZE), 255, -1,
                      _LINE, _SHIFT)
        c.paint(cv2.subtract(teeth, cut), 215, alpha=0.9, soften=0.2)


def _lips(c: _Canvas, idt: Identity, u: dict[str, float], mouth: _MouthGeometry) -> None:
    lips = c.mask()
    thickness = int(max(1.0, 1.7 - 0.8 * u["lip_press"]) * _SCALE)
    cv2.polylines(lips, [_pts(mouth.top)], False, 255, thickness, _LINE, _SHIFT)
    cv2.polylines(lips, [_pts(mouth.bottom)], False, 255, thickness, _LINE, _SHIFT)
    c.paint(lips, idt.skin * (0.45 - 0.15 * u["lip_press"]), alpha=0.9, soften=0.25)


def _mouth_shadows(c: _Canvas, u: dict[str, float], mouth: _MouthGeometry, nose_y: float) -> None:
    """Shadow under the lower lip and folds beside the mouth (deepened by smile and lip raise)."""
    cx, half = _CX, mouth.half
    m = c.mask()
    cv2.ellipse(m, _pt(cx, mouth.lower_y + 2.2), _pt(half * 0.55, 0.9), 0, 0, 360, 255, -1, _LINE, _SHIFT)
    c.shade(m, 0.8, soften=0.6)
    fold = 0.2 + 0.6 * max(u["lip_corner_pull"], u["upper_lip_raise"])
    m = c.mask()
    for s in (-1, 1):
        pts = _curve(cx + s * 3.2, nose_y + 0.5, cx + s * (half + 1.6), mouth.corner_y + 2.5, s * -0.4)
        cv2.polylines(m, [_pts(pts)], False, 255, _SCALE, _LINE, _SHIFT)
    c.shade(m, 1 - 0.35 * fold, soften=0.5)


def _posed_48x48(c: _Canvas, idt: Identity, rng: np.random.Generator) -> np.ndarray:
    """Pose (shift, tilt, zoom), then down to 48x48 the way FER-2013's crops were made."""
    matrix = cv2.getRotationMatrix2D((_CANVAS / 2, _CANVAS / 2), idt.angle, idt.zoom)
    matrix[:, 2] += (idt.dx * _SCALE, idt.dy * _SCALE)
    img = cv2.warpAffine(c.img, matrix, (_CANVAS, _CANVAS), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REFLECT)
    small = cv2.resize(img, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    small += rng.normal(0, 2.5, small.shape).astype(np.float32)   # a little sensor grain
    return np.clip(np.round(small), 0, 255).astype(np.uint8)
