"""Procedural face renderer for the synthetic MUG-like benchmark.

A face is a 3-D point model (iBUG 68 landmarks plus head outline, hair, ears)
whose shape comes from a per-subject identity vector and whose expression comes
from FACS action-unit intensities.  It is posed (yaw, pitch, roll, translation),
projected orthographically and drawn with anti-aliased OpenCV polygons plus soft
shading, so that real face detectors (MTCNN, dlib HOG) accept it.  The drawn
shapes are built from the same projected landmarks that are returned as ground
truth, so the landmarks always match the pixels.

Units: a "face unit" is the half-width of an average face; y points down, z
towards the camera.
"""
from __future__ import annotations

import colorsys
import functools
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import cv2
import numpy as np

# Action units driven by the renderer (AU45 = blink); column order of every `au` array.
AU_NAMES: tuple[str, ...] = (
    "AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09", "AU10",
    "AU12", "AU15", "AU20", "AU23", "AU25", "AU26", "AU45",
)
AU_DESCRIPTIONS: dict[str, str] = {
    "AU01": "inner brow raiser", "AU02": "outer brow raiser", "AU04": "brow lowerer",
    "AU05": "upper lid raiser", "AU06": "cheek raiser", "AU07": "lid tightener",
    "AU09": "nose wrinkler", "AU10": "upper lip raiser", "AU12": "lip corner puller",
    "AU15": "lip corner depressor", "AU20": "lip stretcher", "AU23": "lip tightener",
    "AU25": "lips part", "AU26": "jaw drop", "AU45": "blink",
}

HAIR_STYLES: tuple[str, ...] = ("short", "long", "bald", "curly")

# Every entry of the identity vector lies in [0, 1]; hair style is one-hot so that
# distances between vectors stay meaningful.
IDENTITY_NAMES: tuple[str, ...] = (
    "face_width", "face_length", "jaw_squareness", "chin_taper",
    "skin_tone", "skin_warmth",
    "hair_colour", "hair_lightness", *(f"hair_style_{s}" for s in HAIR_STYLES), "hair_volume",
    "eye_spacing", "eye_size", "iris_colour",
    "brow_thickness", "brow_height", "brow_arch",
    "nose_length", "nose_width", "mouth_width", "lip_fullness", "lip_redness",
    "beard", "glasses", "glasses_colour", "ear_size", "shirt_hue", "background_hue",
)
_IDX = {name: i for i, name in enumerate(IDENTITY_NAMES)}

_HAIR_PALETTE = np.array([  # RGB in [0, 1]: black, dark brown, brown, auburn, blonde, grey
    [0.07, 0.06, 0.06], [0.22, 0.14, 0.09], [0.42, 0.27, 0.15],
    [0.55, 0.24, 0.11], [0.86, 0.72, 0.44], [0.66, 0.65, 0.64]], np.float32)
_HAIR_COLOUR_NAMES = ("black", "dark brown", "brown", "auburn", "blonde", "grey")
_SKIN_PALETTE = np.array([  # dark -> light
    [0.33, 0.21, 0.15], [0.55, 0.37, 0.26], [0.76, 0.56, 0.42], [0.96, 0.80, 0.70]], np.float32)
_IRIS_PALETTE = np.array([
    [0.16, 0.09, 0.05], [0.38, 0.22, 0.10], [0.45, 0.40, 0.18],
    [0.25, 0.48, 0.30], [0.28, 0.47, 0.78], [0.50, 0.56, 0.62]], np.float32)
_IRIS_COLOUR_NAMES = ("dark brown", "brown", "hazel", "green", "blue", "grey")


def _palette(palette: np.ndarray, t: float) -> np.ndarray:
    """Linear interpolation along a colour palette for t in [0, 1]."""
    pos = float(np.clip(t, 0.0, 1.0)) * (len(palette) - 1)
    low = int(np.floor(pos))
    high = min(low + 1, len(palette) - 1)
    return palette[low] * (1 - (pos - low)) + palette[high] * (pos - low)


def sample_identity(rng: np.random.Generator) -> np.ndarray:
    """A random identity vector (float32, len(IDENTITY_NAMES)), every entry in [0, 1]."""
    vector = rng.uniform(0.0, 1.0, len(IDENTITY_NAMES)).astype(np.float32)
    style = rng.choice(len(HAIR_STYLES), p=[0.4, 0.3, 0.12, 0.18])
    for i, name in enumerate(HAIR_STYLES):
        vector[_IDX[f"hair_style_{name}"]] = float(i == style)
    # Beards and glasses are present or not; when present, the beard has a density.
    vector[_IDX["beard"]] = rng.uniform(0.5, 1.0) if rng.random() < 0.2 else 0.0
    vector[_IDX["glasses"]] = float(rng.random() < 0.25)
    return vector


def identity_attributes(vector: Sequence[float]) -> dict:
    """Human-readable attributes of an identity vector (stored in identity.json)."""
    v = np.asarray(vector, np.float32)
    style = HAIR_STYLES[int(np.argmax([v[_IDX[f"hair_style_{s}"]] for s in HAIR_STYLES]))]
    hair_index = int(round(float(v[_IDX["hair_colour"]]) * (len(_HAIR_COLOUR_NAMES) - 1)))
    iris_index = int(round(float(v[_IDX["iris_colour"]]) * (len(_IRIS_COLOUR_NAMES) - 1)))
    tone = float(v[_IDX["skin_tone"]])
    return {
        "hair_style": style,
        "hair_colour": _HAIR_COLOUR_NAMES[hair_index],
        "eye_colour": _IRIS_COLOUR_NAMES[iris_index],
        "skin_tone": "dark" if tone < 0.33 else ("medium" if tone < 0.66 else "light"),
        "beard": bool(v[_IDX["beard"]] > 0),
        "glasses": bool(v[_IDX["glasses"]] > 0.5),
        "face_width": round(float(v[_IDX["face_width"]]), 3),
    }


@dataclass(frozen=True)
class FaceParams:
    """Physical face parameters (face units, RGB colours) derived from an identity vector."""
    width: float
    length: float
    jaw_power: float
    chin_taper: float
    skin: np.ndarray
    hair: np.ndarray
    hair_style: str
    hair_volume: float
    eye_spacing: float
    eye_half_width: float
    eye_half_height: float
    iris: np.ndarray
    brow_thickness: float
    brow_y: float
    brow_arch: float
    nose_tip_y: float
    nose_half_width: float
    mouth_y: float
    mouth_half_width: float
    lip_thickness: float
    lips: np.ndarray
    beard: float
    glasses: bool
    glasses_colour: np.ndarray
    ear_size: float
    shirt: np.ndarray
    background: np.ndarray


def face_params(vector: Sequence[float]) -> FaceParams:
    """Map an identity vector to the renderer's physical parameters."""
    v = np.asarray(vector, np.float32)
    g = lambda name: float(v[_IDX[name]])  # noqa: E731 - a short local accessor
    skin = _palette(_SKIN_PALETTE, g("skin_tone"))
    skin = np.clip(skin * np.array([1.0 + 0.06 * (g("skin_warmth") - 0.5), 1.0, 1.0 - 0.08 * (g("skin_warmth") - 0.5)]), 0, 1)
    hair = _palette(_HAIR_PALETTE, g("hair_colour")) * (0.8 + 0.4 * g("hair_lightness"))
    style = HAIR_STYLES[int(np.argmax([g(f"hair_style_{s}") for s in HAIR_STYLES]))]
    lips = skin * np.array([0.92, 0.62, 0.62]) * (0.9 + 0.15 * g("lip_redness")) + np.array([0.06 * g("lip_redness"), 0, 0])
    shirt = np.array(colorsys.hsv_to_rgb(g("shirt_hue"), 0.45, 0.35 + 0.35 * g("shirt_hue")), np.float32)
    # MUG's background is a blue screen; vary its shade a little per subject.
    background = np.array(colorsys.hsv_to_rgb(0.55 + 0.08 * g("background_hue"), 0.55 + 0.2 * g("background_hue"), 0.62 + 0.15 * g("background_hue")), np.float32)
    glasses_colour = _palette(np.array([[0.05, 0.05, 0.05], [0.35, 0.2, 0.1], [0.55, 0.55, 0.6]], np.float32), g("glasses_colour"))
    return FaceParams(
        width=0.88 + 0.24 * g("face_width"),
        length=1.18 + 0.22 * g("face_length"),
        jaw_power=2.0 + 1.6 * g("jaw_squareness"),
        chin_taper=0.05 + 0.25 * g("chin_taper"),
        skin=skin.astype(np.float32),
        hair=np.clip(hair, 0, 1).astype(np.float32),
        hair_style=style,
        hair_volume=g("hair_volume"),
        eye_spacing=0.38 + 0.09 * g("eye_spacing"),
        eye_half_width=0.18 + 0.04 * g("eye_size"),
        eye_half_height=0.085 + 0.025 * g("eye_size"),
        iris=_palette(_IRIS_PALETTE, g("iris_colour")),
        brow_thickness=0.045 + 0.04 * g("brow_thickness"),
        brow_y=-0.56 - 0.07 * g("brow_height"),
        brow_arch=0.02 + 0.07 * g("brow_arch"),
        nose_tip_y=0.12 + 0.1 * g("nose_length"),
        nose_half_width=0.13 + 0.07 * g("nose_width"),
        mouth_y=0.56 + 0.06 * g("nose_length"),
        mouth_half_width=0.27 + 0.1 * g("mouth_width"),
        lip_thickness=0.06 + 0.05 * g("lip_fullness"),
        lips=np.clip(lips, 0, 1).astype(np.float32),
        beard=g("beard"),
        glasses=g("glasses") > 0.5,
        glasses_colour=glasses_colour.astype(np.float32),
        ear_size=0.9 + 0.25 * g("ear_size"),
        shirt=shirt,
        background=background,
    )


# --------------------------------------------------------------------------- geometry

def _au_dict(au: Mapping[str, float] | Sequence[float]) -> dict[str, float]:
    if isinstance(au, Mapping):
        unknown = sorted(set(au) - set(AU_NAMES))
        if unknown:
            raise ValueError(f"unknown action units {unknown}; valid: {list(AU_NAMES)}")
        return {name: float(np.clip(au.get(name, 0.0), 0.0, 1.0)) for name in AU_NAMES}
    values = np.asarray(au, np.float32)
    if values.shape != (len(AU_NAMES),):
        raise ValueError(f"expected {len(AU_NAMES)} AU intensities ({list(AU_NAMES)}), got shape {values.shape}")
    return {name: float(np.clip(x, 0.0, 1.0)) for name, x in zip(AU_NAMES, values)}


def _jaw(p: FaceParams, jaw_drop: float, n: int = 17) -> np.ndarray:
    """Contour from the right ear (image left) round the chin to the left ear, (n, 3)."""
    a = np.linspace(np.pi, 0.0, n)
    cos, sin = np.cos(a), np.sin(a)
    exponent = 2.0 / p.jaw_power
    x = np.sign(cos) * np.abs(cos) ** exponent * p.width * (1 - p.chin_taper * sin ** 4)
    top = -0.30
    y = top + (p.length - top + 0.0) * np.abs(sin) ** exponent + jaw_drop * sin ** 2
    z = -0.35 + 0.75 * sin ** 2
    return np.stack([x, y, z], axis=1)


def landmarks_3d(p: FaceParams, au: Mapping[str, float]) -> np.ndarray:
    """The 68 iBUG landmarks (68, 3) in face units for expression ``au`` (a full AU dict)."""
    a = au
    jaw_drop = 0.34 * a["AU26"]
    pts = np.zeros((68, 3), np.float32)
    pts[0:17] = _jaw(p, jaw_drop)

    # Brows 17-21 (image left, outer -> inner) and 22-26 (inner -> outer).
    t = np.linspace(0.0, 1.0, 5)  # 0 = outer end, 1 = inner end
    inner_x, outer_x = 0.13, p.eye_spacing + p.eye_half_width + 0.1
    bx = outer_x - t * (outer_x - inner_x)
    by = p.brow_y - p.brow_arch * (1 - ((t - 0.4) / 0.6) ** 2)
    dy = (-0.24 * a["AU01"] * t ** 1.3 - 0.24 * a["AU02"] * (1 - t) ** 1.2
          + 0.17 * a["AU04"] * (0.3 + 0.7 * t) + 0.1 * a["AU09"] * t)
    dx = 0.09 * a["AU04"] * t + 0.03 * a["AU09"] * t  # pulled together
    brow = np.stack([bx - dx, by + dy, np.full(5, 0.3)], axis=1)
    pts[17:22] = brow * [-1, 1, 1]
    pts[22:27] = brow[::-1]

    # Nose: bridge 27-30, base 31-35.
    lift = 0.05 * a["AU09"] + 0.02 * a["AU10"]
    bridge_y = np.linspace(-0.30, p.nose_tip_y - lift, 4)
    pts[27:31] = np.stack([np.zeros(4), bridge_y, np.linspace(0.35, 0.8, 4)], axis=1)
    nw = p.nose_half_width + 0.03 * a["AU09"]
    base_y = p.nose_tip_y + 0.08 - lift
    pts[31:36] = np.array([[-nw, base_y - 0.02, 0.45], [-nw / 2, base_y + 0.01, 0.55], [0, base_y + 0.03, 0.62],
                           [nw / 2, base_y + 0.01, 0.55], [nw, base_y - 0.02, 0.45]])

    # Eyes 36-41 (image left: outer, upper, upper, inner, lower, lower) and 42-47.
    ew, eh = p.eye_half_width, p.eye_half_height
    up = eh * (1.0 + 1.1 * a["AU05"] - 0.35 * a["AU07"] - 0.25 * a["AU06"] - 0.25 * a["AU04"] - 0.35 * a["AU09"])
    down = eh * 0.75 * (1.0 - 0.75 * a["AU06"] - 0.7 * a["AU07"] - 0.3 * a["AU09"]) + 0.2 * eh * a["AU05"]
    up = up * (1 - a["AU45"]) - down * 0.8 * a["AU45"]  # the upper lid closes onto the lower one
    ey = -0.28
    for start, sign in ((36, -1), (42, 1)):
        cx = sign * p.eye_spacing
        eye = np.array([
            [-ew, 0.0], [-ew * 0.38, -up], [ew * 0.38, -up], [ew, 0.02],
            [ew * 0.38, down], [-ew * 0.38, down]])
        if sign == 1:  # left eye starts at its inner corner (iBUG order)
            eye = np.array([[-ew, 0.02], [-ew * 0.38, -up], [ew * 0.38, -up], [ew, 0.0],
                            [ew * 0.38, down], [-ew * 0.38, down]])
        pts[start:start + 6, 0] = cx + eye[:, 0]
        pts[start:start + 6, 1] = ey + eye[:, 1]
        pts[start:start + 6, 2] = 0.3

    # Mouth: outer 48-59, inner 60-67.
    my, mw, lt = p.mouth_y, p.mouth_half_width, p.lip_thickness
    corner_dy = -0.24 * a["AU12"] + 0.16 * a["AU15"] + 0.02 * a["AU20"] - 0.03 * a["AU10"]
    # The jaw drop narrows the mouth into an "O" (surprise); the stretcher widens it (fear).
    corner_dx = (0.12 * a["AU12"] + 0.2 * a["AU20"] - 0.1 * a["AU23"] + 0.02 * a["AU10"]
                 - 0.1 * a["AU26"])
    thin = 1.0 - 0.75 * a["AU23"] - 0.3 * a["AU20"]
    upper_open = 0.07 * a["AU25"] + 0.12 * a["AU10"] + 0.03 * a["AU26"]
    lower_open = 0.06 * a["AU25"] + jaw_drop * 0.9
    cx_ = mw + corner_dx
    cy_ = my + corner_dy
    # Points next to the corners follow them half way, which bends the lips into a smile/frown.
    half_dy = 0.5 * corner_dy
    ul, ll = lt * thin, lt * 1.25 * thin
    upper_inner_y = my - upper_open
    lower_inner_y = my + lower_open
    raise_lateral = 0.03 * a["AU10"]  # AU10 squares the upper lip
    outer = [
        [-cx_, cy_],
        [-mw * 0.62, my + half_dy - upper_open - ul * 0.9 - raise_lateral],
        [-mw * 0.25, my - upper_open - ul * 1.15 - raise_lateral],
        [0.0, my - upper_open - ul * 0.95],
        [mw * 0.25, my - upper_open - ul * 1.15 - raise_lateral],
        [mw * 0.62, my + half_dy - upper_open - ul * 0.9 - raise_lateral],
        [cx_, cy_],
        [mw * 0.6, my + half_dy * 0.6 + lower_open + ll * 0.85],
        [mw * 0.25, my + lower_open + ll * 1.1],
        [0.0, my + lower_open + ll * 1.15],
        [-mw * 0.25, my + lower_open + ll * 1.1],
        [-mw * 0.6, my + half_dy * 0.6 + lower_open + ll * 0.85],
    ]
    inner = [
        [-cx_ * 0.9, cy_],
        [-mw * 0.35, my + half_dy * 0.7 - upper_open],
        [0.0, upper_inner_y],
        [mw * 0.35, my + half_dy * 0.7 - upper_open],
        [cx_ * 0.9, cy_],
        [mw * 0.35, my + half_dy * 0.7 + lower_open],
        [0.0, lower_inner_y],
        [-mw * 0.35, my + half_dy * 0.7 + lower_open],
    ]
    pts[48:60, :2] = outer
    pts[60:68, :2] = inner
    pts[48:68, 2] = 0.45
    for i in (48, 54, 60, 64):
        pts[i, 2] = 0.3
    return pts


def rotation_matrix(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Rotation for head pose in degrees (yaw about y, pitch about x, roll about z)."""
    y, p, r = np.radians([yaw, pitch, roll])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ rx @ ry


@dataclass(frozen=True)
class Lighting:
    """Per-take lighting: overall gain, a directional gradient, colour cast and sensor noise."""
    brightness: float = 1.0
    direction: float = 0.0      # angle of the key light in the image plane, radians
    strength: float = 0.15      # how much the key light brightens one side
    warmth: float = 0.0         # > 0 warmer (more red), < 0 colder
    noise_sigma: float = 2.0    # Gaussian noise, in 0-255 grey levels
    blur_sigma: float = 0.5     # camera softness, in pixels at the rendered size


@dataclass
class _Projector:
    """Pose and projection from face units to pixels."""
    rotation: np.ndarray
    centre: np.ndarray          # pixel position of the face origin
    scale: float                # pixels per face unit
    pivot: np.ndarray = field(default_factory=lambda: np.array([0.0, 0.0, -0.9]))

    def __call__(self, points: np.ndarray) -> np.ndarray:
        pts = np.asarray(points, np.float64)
        if pts.shape[-1] == 2:
            pts = np.concatenate([pts, np.zeros(pts.shape[:-1] + (1,))], axis=-1)
        rotated = (pts - self.pivot) @ self.rotation.T + self.pivot
        return rotated[:, :2] * self.scale + self.centre


# --------------------------------------------------------------------------- drawing

def _chaikin(points: np.ndarray, closed: bool, iterations: int = 2) -> np.ndarray:
    """Corner-cutting subdivision: turns a coarse polygon into a smooth curve."""
    pts = np.asarray(points, np.float64)
    for _ in range(iterations):
        nxt = np.roll(pts, -1, axis=0) if closed else pts[1:]
        cur = pts if closed else pts[:-1]
        q = 0.75 * cur + 0.25 * nxt
        r = 0.25 * cur + 0.75 * nxt
        merged = np.empty((2 * len(cur), 2))
        merged[0::2], merged[1::2] = q, r
        pts = merged if closed else np.vstack([pts[:1], merged, pts[-1:]])
    return pts


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 32, start: float = 0.0, end: float = 2 * np.pi) -> np.ndarray:
    a = np.linspace(start, end, n, endpoint=(end - start) < 2 * np.pi - 1e-9)
    return np.stack([cx + rx * np.cos(a), cy + ry * np.sin(a)], axis=1)


class _Canvas:
    """A float RGB image plus anti-aliased masks and alpha blending restricted to bounding boxes."""

    def __init__(self, size: int, colour: np.ndarray):
        self.size = size
        self.image = np.empty((size, size, 3), np.float32)
        self.image[:] = colour

    def _box(self, pts: np.ndarray, margin: int) -> tuple[int, int, int, int]:
        x0, y0 = np.floor(pts.min(axis=0)).astype(int) - margin
        x1, y1 = np.ceil(pts.max(axis=0)).astype(int) + margin + 1
        s = self.size
        return max(0, y0), min(s, y1), max(0, x0), min(s, x1)

    def polygon_mask(self, polygons: list[np.ndarray], box, thickness: int = 0, closed: bool = True) -> np.ndarray:
        """An anti-aliased uint8 mask (0-255) of the polygons inside ``box`` (y0, y1, x0, x1)."""
        y0, y1, x0, x1 = box
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        # Fixed-point coordinates (4 fractional bits) give sub-pixel precise edges.
        shifted = [np.round((np.asarray(p) - (x0, y0)) * 16).astype(np.int32) for p in polygons]
        if thickness <= 0:
            cv2.fillPoly(mask, shifted, 255, cv2.LINE_AA, 4)
        else:
            cv2.polylines(mask, shifted, closed, 255, thickness, cv2.LINE_AA, 4)
        return mask

    def fill(self, polygon: np.ndarray, colour, alpha: float = 1.0, blur: float = 0.0,
             thickness: int = 0, closed: bool = True, clip: np.ndarray | None = None, shade=None) -> None:
        """Blend ``colour`` through the polygon's mask (or its outline when thickness > 0).

        ``blur`` softens the mask (pixels), ``clip`` is a full-frame mask to multiply with,
        ``shade`` a full-frame (H, W) multiplier applied to the colour.
        """
        polygon = np.asarray(polygon, np.float64)
        if alpha <= 0.002 or len(polygon) < 2:
            return
        margin = int(np.ceil(3 * blur)) + thickness + 2
        box = self._box(polygon, margin)
        y0, y1, x0, x1 = box
        if y1 <= y0 or x1 <= x0:
            return
        mask = self.polygon_mask([polygon], box, thickness, closed)
        weight = mask.astype(np.float32) * np.float32(alpha / 255.0)
        if blur > 0:
            weight = cv2.GaussianBlur(weight, (0, 0), blur)
        if clip is not None:
            weight *= clip[y0:y1, x0:x1]
        weight = weight[:, :, None]
        colour = np.asarray(colour, np.float32)
        if colour.ndim == 3:
            colour = colour[y0:y1, x0:x1]
        if shade is not None:
            colour = colour * shade[y0:y1, x0:x1, None]
        region = self.image[y0:y1, x0:x1]
        region += weight * (colour - region)

    def full_mask(self, polygon: np.ndarray) -> np.ndarray:
        """A float mask in [0, 1] over the whole frame."""
        mask = self.polygon_mask([np.asarray(polygon, np.float64)], (0, self.size, 0, self.size))
        return mask.astype(np.float32) * np.float32(1.0 / 255.0)


def _wide_blur(mask: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian blur with a wide kernel, done at quarter resolution (10x cheaper, same look)."""
    size = mask.shape[0]
    small = cv2.resize(mask, (size // 4, size // 4), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma / 4)
    return cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR)


@functools.lru_cache(maxsize=4)
def _pixel_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    return yy, xx


def _scaled(colour: np.ndarray, factor: float) -> np.ndarray:
    return np.clip(np.asarray(colour, np.float32) * factor, 0.0, 1.0)


@dataclass(frozen=True)
class RenderedFrame:
    image: np.ndarray       # uint8 (S, S, 3) RGB
    landmarks: np.ndarray   # float32 (68, 2) pixel x, y


def render_face(params: FaceParams, au: Mapping[str, float] | Sequence[float], size: int,
                head_pose: Sequence[float] = (0.0, 0.0, 0.0), translation: Sequence[float] = (0.0, 0.0),
                lighting: Lighting = Lighting(), noise: np.ndarray | None = None,
                face_scale: float = 0.25) -> RenderedFrame:
    """Render one frame.

    ``au``: AU intensities in [0, 1] by name (missing = 0) or as a vector in AU_NAMES order.
    ``head_pose``: yaw, pitch, roll in degrees.  ``translation``: offset as a fraction of
    the frame.  ``face_scale``: pixels per face unit as a fraction of ``size`` (0.25 makes
    the face about half the frame wide, as in MUG).  ``noise``: a (size, size, 3) field of
    unit Gaussian noise, scaled by ``lighting.noise_sigma`` (no noise when None).
    """
    a = _au_dict(au)
    s = float(size)
    centre = np.array([0.5 + translation[0], 0.50 + translation[1]]) * s
    proj = _Projector(rotation_matrix(*head_pose), centre, face_scale * s)
    torso = _Projector(rotation_matrix(0.0, 0.0, 0.3 * head_pose[2]), np.array([0.5 + 0.5 * translation[0], 0.5]) * s, face_scale * s)
    px = face_scale * s  # pixels per face unit
    line = max(1, int(round(s / 110)))
    canvas = _Canvas(size, params.background)

    # Background: a soft vertical gradient like a lit blue screen.
    ramp = np.linspace(1.08, 0.9, size, dtype=np.float32)[:, None, None]
    canvas.image *= ramp

    lm3 = landmarks_3d(params, a)
    lm = proj(lm3)
    jaw_drop = 0.34 * a["AU26"]
    w, top = params.width, -0.30
    head_top = 1.0 + 0.05 * params.length

    # Head outline: jaw contour plus the forehead arc.
    jaw_dense = proj(_jaw(params, jaw_drop, 41))
    forehead = np.stack([w * np.cos(np.linspace(0, np.pi, 25)), top - head_top * np.sin(np.linspace(0, np.pi, 25)),
                         np.full(25, -0.2)], axis=1)
    head_outline = np.vstack([jaw_dense, proj(forehead)[1:-1]])

    hair_dark = _scaled(params.hair, 0.7)
    # Hair behind the head (long and curly styles).
    if params.hair_style in ("long", "curly"):
        vol = 0.15 + 0.2 * params.hair_volume
        if params.hair_style == "long":
            arc = _ellipse(0, top - 0.05, w + vol, head_top + vol, 24, np.pi, 2 * np.pi)
            sides = np.array([[w + vol + 0.05, 0.6], [w + vol, 1.5], [0.6, 1.68], [-0.6, 1.68], [-w - vol, 1.5], [-w - vol - 0.05, 0.6]])
            poly = np.vstack([arc, sides])
        else:
            poly = _ellipse(0, -0.55, w + 0.35 + 0.35 * vol, head_top * 0.95 + 0.35 * vol, 40)
        canvas.fill(_chaikin(proj(np.c_[poly, np.full(len(poly), -0.6)]), True, 1), hair_dark)

    # Neck and shoulders (the torso moves less than the head).
    shirt = params.shirt
    shoulders = np.array([[-2.4, 2.6], [-2.2, 1.85], [-1.2, 1.55], [-0.45, 1.42], [0.45, 1.42], [1.2, 1.55], [2.2, 1.85], [2.4, 2.6]])
    neck = np.array([[-0.46, 0.5], [-0.44, 1.35], [-0.3, 1.62], [0.3, 1.62], [0.44, 1.35], [0.46, 0.5]])
    canvas.fill(_chaikin(torso(neck), True, 1), _scaled(params.skin, 0.78))
    canvas.fill(torso(np.array([[-0.44, 0.95], [0.44, 0.95], [0.44, 1.25], [-0.44, 1.25]])), _scaled(params.skin, 0.55), alpha=0.6, blur=px * 0.12)
    canvas.fill(_chaikin(torso(shoulders), True, 2), shirt)
    canvas.fill(torso(np.array([[-0.42, 1.40], [0.0, 1.75], [0.42, 1.40]])), _scaled(params.skin, 0.78))  # collar opening

    # Ears.
    ear_ry = 0.22 * params.ear_size
    for sign in (-1, 1):
        ear = _ellipse(sign * (w + 0.02), -0.12, 0.12 * params.ear_size, ear_ry, 20)
        ear3 = np.c_[ear, np.full(len(ear), -0.5)]
        canvas.fill(proj(ear3), _scaled(params.skin, 0.86))
        inner = _ellipse(sign * (w + 0.03), -0.1, 0.06 * params.ear_size, ear_ry * 0.6, 16)
        canvas.fill(proj(np.c_[inner, np.full(len(inner), -0.5)]), _scaled(params.skin, 0.68), alpha=0.7, blur=px * 0.02)

    # Face skin with soft shading: darker towards the outline, lit from one side.
    face_mask = canvas.full_mask(head_outline)
    rounding = _wide_blur(face_mask, px * 0.28)
    yy, xx = _pixel_grid(size)
    light = (np.cos(lighting.direction) * (xx - centre[0]) + np.sin(lighting.direction) * (yy - centre[1])) / (2 * px)
    shade = (0.62 + 0.42 * rounding) * (1.0 + lighting.strength * light)
    canvas.fill(head_outline, params.skin, shade=shade)

    # Eye sockets and cheekbones give the detectors the dark-eyes / light-cheeks pattern of a real face.
    for start in (36, 42):
        eye = lm[start:start + 6]
        c = eye.mean(axis=0)
        brow = lm[17:22] if start == 36 else lm[22:27]
        socket = _ellipse(c[0], (c[1] + brow[:, 1].mean()) / 2 + 0.02 * px, params.eye_half_width * px * 1.45,
                          (c[1] - brow[:, 1].mean()) * 0.9 + 0.03 * px, 24)
        canvas.fill(socket, _scaled(params.skin, 0.62), alpha=0.55, blur=px * 0.07)
        cheek = _ellipse(c[0] * 0.9 + lm[30, 0] * 0.1, c[1] + (0.36 - 0.1 * a["AU06"]) * px,
                         0.22 * px, (0.13 + 0.04 * a["AU06"]) * px, 20)
        canvas.fill(cheek, np.clip(params.skin * [1.12, 1.0, 0.98] + 0.05, 0, 1), alpha=0.25 + 0.4 * a["AU06"], blur=px * 0.08)

    # Nose: side shadow, tip highlight, nostrils.
    side = -1.0 if np.cos(lighting.direction) > 0 else 1.0
    nose_side = np.vstack([lm[27:31], lm[31:34][::-1]])
    nose_side[:, 0] += side * 0.04 * px
    canvas.fill(_chaikin(nose_side, True, 1), _scaled(params.skin, 0.68), alpha=0.45, blur=px * 0.05)
    canvas.fill(_chaikin(lm[31:36], False, 2), _scaled(params.skin, 0.6), alpha=0.5, blur=px * 0.03, thickness=line * 2, closed=False)
    canvas.fill(_ellipse(lm[30, 0], lm[30, 1] + 0.02 * px, 0.05 * px, 0.04 * px, 12), np.clip(params.skin * 1.15, 0, 1), alpha=0.5, blur=px * 0.02)
    for i in (32, 34):
        nostril = _ellipse(lm[i, 0] + (lm[i, 0] - lm[33, 0]) * 0.15, lm[i, 1] - 0.015 * px, 0.045 * px, 0.025 * px, 12)
        canvas.fill(nostril, _scaled(params.skin, 0.3), alpha=0.9)

    # Wrinkles driven by the action units.
    wrinkle = _scaled(params.skin, 0.5)
    forehead_lines = max(a["AU01"], a["AU02"])
    for k in range(3):
        y = params.brow_y - 0.17 - 0.09 * k
        arc = np.c_[np.linspace(-0.4, 0.4, 9), y - 0.03 * np.cos(np.linspace(-1.2, 1.2, 9)) + 0.0, np.full(9, 0.3)]
        canvas.fill(proj(arc), wrinkle, alpha=0.6 * forehead_lines, thickness=line, closed=False)
    for sign in (-1, 1):  # AU4 glabella furrows
        furrow = np.c_[[sign * 0.06, sign * 0.05], [params.brow_y - 0.12, params.brow_y + 0.08], [0.3, 0.3]]
        canvas.fill(proj(furrow), wrinkle, alpha=0.75 * a["AU04"], thickness=line, closed=False)
    for k in range(2):  # AU9 nose-bridge wrinkles
        y = -0.22 + 0.07 * k
        canvas.fill(proj(np.c_[[-0.1, 0.0, 0.1], [y, y - 0.02, y], [0.5, 0.55, 0.5]]), wrinkle, alpha=0.8 * a["AU09"], thickness=line, closed=False)
    fold = max(a["AU12"], 0.8 * a["AU10"], 0.6 * a["AU09"], 0.25)
    for sign, wing, corner in ((-1, 31, 48), (1, 35, 54)):  # nasolabial folds
        start = lm[wing] + [sign * 0.06 * px, -0.02 * px]
        end = lm[corner] + [sign * 0.09 * px, 0.06 * px]
        mid = (start + end) / 2 + [sign * 0.06 * px, 0]
        canvas.fill(_chaikin(np.array([start, mid, end]), False, 2), wrinkle, alpha=0.7 * fold, thickness=line, closed=False)
        if a["AU15"] > 0.05:  # marionette lines of the lip-corner depressor
            m = np.array([lm[corner] + [sign * 0.04 * px, 0.03 * px], lm[corner] + [sign * 0.07 * px, 0.2 * px]])
            canvas.fill(m, wrinkle, alpha=0.6 * a["AU15"], thickness=line, closed=False)
        if a["AU06"] > 0.05:  # crow's feet
            outer = lm[36] if sign < 0 else lm[45]
            for k in (-1, 0, 1):
                crow = np.array([outer + [sign * 0.05 * px, k * 0.03 * px], outer + [sign * 0.16 * px, k * 0.07 * px]])
                canvas.fill(crow, wrinkle, alpha=0.6 * a["AU06"], thickness=line, closed=False)

    # Beard over the lower face (the mouth is drawn on top of it).
    if params.beard > 0:
        my = params.mouth_y
        half = np.array([[-w * 0.97, 0.02], [-w * 0.78, 0.36], [-w * 0.52, 0.52], [-0.36, my - 0.08], [0.0, my - 0.13]])
        upper = np.vstack([half, half[-2::-1] * [-1, 1]])
        upper = np.c_[upper, np.full(len(upper), 0.4)]
        beard_jaw = _jaw(params, jaw_drop, 31)[2:-2] * [1.03, 1.03, 1]
        beard = np.vstack([proj(beard_jaw), proj(upper[::-1])])
        canvas.fill(_chaikin(beard, True, 1), hair_dark, alpha=0.3 + 0.5 * params.beard, blur=px * 0.03)

    # Mouth: lips, open interior, teeth.
    outer_lip = _chaikin(lm[48:60], True, 2)
    inner_lip = _chaikin(lm[60:68], True, 2)
    canvas.fill(outer_lip, params.lips, shade=shade)
    opening = (lm[66, 1] - lm[62, 1]) / px
    if opening > 0.015:
        canvas.fill(inner_lip, np.array([0.22, 0.06, 0.07]))
        inner_mask = canvas.full_mask(inner_lip)
        # Upper teeth show when the upper lip is raised or the lips are pulled back.
        teeth_h = 0.09 * px
        top_y = lm[61:64, 1].min()
        teeth = np.array([[lm[60, 0], top_y - 2], [lm[64, 0], top_y - 2], [lm[64, 0], top_y + teeth_h], [lm[60, 0], top_y + teeth_h]])
        canvas.fill(teeth, np.array([0.93, 0.91, 0.86]), clip=inner_mask)
        if opening > 0.2:
            bottom_y = lm[65:68, 1].max()
            low = np.array([[lm[60, 0], bottom_y - teeth_h * 0.6], [lm[64, 0], bottom_y - teeth_h * 0.6], [lm[64, 0], bottom_y + 2], [lm[60, 0], bottom_y + 2]])
            canvas.fill(low, np.array([0.85, 0.83, 0.78]), clip=inner_mask, alpha=0.8)
    canvas.fill(_chaikin(lm[[48, 60, 61, 62, 63, 64, 54]], False, 2), np.array([0.25, 0.08, 0.08]), alpha=0.85, thickness=line, closed=False)
    under_lip = np.array([lm[58], lm[57], lm[56]]) + [0, 0.06 * px]
    canvas.fill(_chaikin(under_lip, False, 2), _scaled(params.skin, 0.6), alpha=0.5, blur=px * 0.03, thickness=line * 2, closed=False)

    # Eyes: sclera, iris and pupil clipped to the lids, lash line, lower lid.
    for start in (36, 42):
        eye = lm[start:start + 6]
        sclera = _chaikin(eye, True, 2)
        opening = (eye[4, 1] + eye[5, 1] - eye[1, 1] - eye[2, 1]) / 2
        if opening > 0.3:
            canvas.fill(sclera, np.array([0.94, 0.93, 0.91]))
            mask = canvas.full_mask(sclera)
            c = (eye[0] + eye[3]) / 2
            r = params.eye_half_height * 1.05 * px
            canvas.fill(_ellipse(c[0], c[1] + 0.01 * px, r, r, 20), params.iris, clip=mask)
            canvas.fill(_ellipse(c[0], c[1] + 0.01 * px, r * 0.45, r * 0.45, 16), np.array([0.03, 0.03, 0.03]), clip=mask)
            canvas.fill(_ellipse(c[0] + r * 0.35, c[1] - r * 0.3, r * 0.18, r * 0.18, 8), np.ones(3), clip=mask, alpha=0.9)
        upper = _chaikin(eye[[0, 1, 2, 3]], False, 2)
        canvas.fill(upper, np.array([0.06, 0.04, 0.04]), thickness=line + 1, closed=False)
        lower = _chaikin(eye[[3, 4, 5, 0]], False, 2)
        canvas.fill(lower, _scaled(params.skin, 0.45), alpha=0.8, thickness=line, closed=False)
        crease = upper + [0, -0.07 * px]
        canvas.fill(crease, _scaled(params.skin, 0.55), alpha=0.5, thickness=line, closed=False)

    # Eyebrows: a thick tapered stroke in the hair colour.
    brow_colour = _scaled(params.hair, 0.75) if params.hair_style != "bald" else _scaled(params.skin, 0.35)
    for start in (17, 22):
        brow = lm[start:start + 5]
        thick = params.brow_thickness * px
        taper = np.array([0.5, 0.85, 1.0, 1.0, 0.9]) if start == 17 else np.array([0.9, 1.0, 1.0, 0.85, 0.5])
        brow_top = brow - np.c_[np.zeros(5), taper * thick * 0.6]
        brow_bottom = brow + np.c_[np.zeros(5), taper * thick * 0.6]
        canvas.fill(_chaikin(np.vstack([brow_top, brow_bottom[::-1]]), True, 2), brow_colour)

    # Hair on top of the head.
    if params.hair_style != "bald":
        vol = 0.06 + 0.12 * params.hair_volume + (0.12 if params.hair_style == "curly" else 0.0)
        outer = np.c_[(w + vol) * np.cos(np.linspace(np.pi, 2 * np.pi, 25)),
                      top - 0.05 + (head_top + vol) * np.sin(np.linspace(np.pi, 2 * np.pi, 25))]
        side_low = 0.05 if params.hair_style == "long" else -0.2
        hairline = np.array([[w + 0.02, side_low], [w * 0.95, -0.5], [w * 0.7, -0.86], [w * 0.25, -0.95],
                             [-w * 0.25, -0.98], [-w * 0.7, -0.88], [-w * 0.95, -0.5], [-w - 0.02, side_low]])
        cap = np.vstack([np.array([[-w - vol, side_low]]), outer, np.array([[w + vol, side_low]]), hairline])
        canvas.fill(_chaikin(proj(np.c_[cap, np.full(len(cap), -0.1)]), True, 2), params.hair,
                    shade=0.8 + 0.3 * rounding)
    else:  # a fringe of hair round the back of a bald head
        for sign in (-1, 1):
            band = np.array([[sign * (w + 0.04), -0.55], [sign * (w + 0.06), -0.05], [sign * (w - 0.06), -0.15], [sign * (w - 0.06), -0.5]])
            canvas.fill(proj(np.c_[band, np.full(4, -0.2)]), params.hair, alpha=0.8, blur=px * 0.02)

    # Glasses: two rims, a bridge and the temples.
    if params.glasses:
        rims = []
        for start in (36, 42):
            c = lm[start:start + 6].mean(axis=0)
            rim = _ellipse(c[0], c[1] + 0.01 * px, (params.eye_half_width + 0.09) * px, (params.eye_half_height + 0.1) * px, 28)
            rims.append(rim)
            canvas.fill(rim, params.glasses_colour, thickness=line + 1)
            canvas.fill(rim, np.ones(3), alpha=0.08)  # a faint reflection on the lens
        bridge = np.array([rims[0][0], (lm[27] + lm[28]) / 2 - [0, 0.02 * px], rims[1][len(rims[1]) // 2]])
        canvas.fill(_chaikin(bridge, False, 1), params.glasses_colour, thickness=line + 1, closed=False)

    # Camera: colour cast and global gain, softness, sensor noise.
    gain = 255.0 * lighting.brightness * np.array([1 + 0.05 * lighting.warmth, 1.0, 1 - 0.05 * lighting.warmth], np.float32)
    image = canvas.image * gain
    if lighting.blur_sigma > 0:
        image = cv2.GaussianBlur(image, (0, 0), lighting.blur_sigma)
    if noise is not None and lighting.noise_sigma > 0:
        image += noise * np.float32(lighting.noise_sigma)
    image += 0.5
    frame = np.clip(image, 0, 255, out=image).astype(np.uint8)
    return RenderedFrame(frame, lm.astype(np.float32))
