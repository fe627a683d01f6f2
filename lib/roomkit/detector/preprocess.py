"""Stage 1: any plan image → a dark-ink-on-light grayscale at working resolution.

Handles bit depth (16-bit scaled to 8-bit), alpha (composited on white), colour (gray), polarity
(white-on-blue and other dark-background blueprints are inverted to dark ink on light paper),
tinted paper and uneven scans (contrast stretched between paper and ink levels), size (plans
larger than the working resolution are downscaled) and small rotations (deskew by the dominant
line direction). Every geometric change is recorded in :class:`Frame` so that polygons found on
the working image map back to the original pixel grid.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from roomkit.errors import InputError

#: Rotations smaller than this (degrees) are left alone: resampling costs more than it gains.
MIN_DESKEW_DEG = 0.4
#: Adaptive shrinking never takes the working image's longest side below this (px).
MIN_WORKING_SIDE = 500
#: Rotations larger than this are not "small": the plan is drawn at an angle on purpose.
MAX_DESKEW_DEG = 12.0


@dataclass(frozen=True)
class Frame:
    """How the working image relates to the original: ``orig = R⁻¹(work) / scale``."""

    orig_width: int
    orig_height: int
    scale: float  # working px per original px (≤ 1)
    angle_deg: float = 0.0  # rotation applied to the scaled image (deskew), degrees
    matrix: np.ndarray | None = None  # 2×3 affine from scaled image to working image (deskew)

    def to_original(self, points: np.ndarray) -> np.ndarray:
        """Map N×2 working-image points back to original pixel coordinates (clipped)."""
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        if self.matrix is not None:
            # OpenCV's affine maps pixel centres; polygons use pixel faces (centre = i + 0.5).
            inv = cv2.invertAffineTransform(self.matrix)
            pts = (pts - 0.5) @ inv[:, :2].T + inv[:, 2] + 0.5
        pts = pts / self.scale
        pts[:, 0] = np.clip(pts[:, 0], 0.0, float(self.orig_width))
        pts[:, 1] = np.clip(pts[:, 1], 0.0, float(self.orig_height))
        return pts


def to_gray(image: np.ndarray) -> np.ndarray:
    """uint8 grayscale from gray / BGR / BGRA, uint8 or uint16 (alpha composited on white)."""
    if not isinstance(image, np.ndarray):
        raise InputError(f"image must be a numpy array, bytes or a path, got {type(image).__name__}")
    if image.size == 0 or image.ndim not in (2, 3) or min(image.shape[:2]) == 0:
        raise InputError(f"image has no pixels (shape {image.shape})")
    if image.ndim == 3 and image.shape[2] not in (1, 3, 4):
        raise InputError(f"image must have 1, 3 or 4 channels, got {image.shape[2]}")
    if image.dtype == np.uint16:
        top = int(image.max())
        # Full-range 16-bit data scales by 257; data that only uses the low bits (12-bit scans)
        # is stretched by its own maximum so it does not come out black.
        div = 257.0 if top > 4095 else max(top, 1) / 255.0
        image = np.clip(image / div + 0.5, 0, 255).astype(np.uint8)
    elif image.dtype == np.bool_:
        image = image.astype(np.uint8) * 255
    elif image.dtype != np.uint8:
        if np.issubdtype(image.dtype, np.floating) and float(np.nanmax(image)) <= 1.0:
            image = np.nan_to_num(image) * 255.0
        image = np.clip(np.nan_to_num(image), 0, 255).astype(np.uint8)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        return np.ascontiguousarray(image)
    if image.shape[2] == 4:
        alpha = image[:, :, 3:4].astype(np.uint16)
        bgr = image[:, :, :3].astype(np.uint16)
        image = ((bgr * alpha + 255 * (255 - alpha) + 127) // 255).astype(np.uint8)
    return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_BGR2GRAY)


def downscale(gray: np.ndarray, working_resolution: int) -> tuple[np.ndarray, float]:
    """Shrink so the longest side is at most ``working_resolution`` (area averaging)."""
    h, w = gray.shape
    scale = min(1.0, working_resolution / float(max(h, w)))
    if scale >= 1.0:
        return gray, 1.0
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    # The exact per-axis factor differs from `scale` by rounding; use the mean of the two.
    real = 0.5 * (size[0] / w + size[1] / h)
    return small, real


def _is_negative(gray: np.ndarray) -> bool:
    """True when the drawing is light lines on a dark ground (white-on-blue, negative scan).

    The ground is the most common gray level. The pixels right next to it (within two pixels)
    are the drawing's strokes, and the side of the ground they fall on decides the polarity:
    strokes are thin, so nearly all their pixels border the ground, while a large flat area of
    another shade (a white margin on a gray page, a dark title block) only contributes its
    rim. A median or histogram-tail test gets such pages wrong.
    """
    h, w = gray.shape
    step = max(1, max(h, w) // 800)
    small = np.ascontiguousarray(gray[::step, ::step])
    # Histograms with OpenCV (exact counts: float32 holds integers up to 2**24 > pixels here).
    hist = cv2.calcHist([small], [0], None, [256], [0, 256]).ravel().astype(np.float64)
    mode = int(np.argmax(np.convolve(hist, np.ones(9), "same")))
    ground = cv2.inRange(small, mode - 24, mode + 24)  # |v - mode| <= 24, as 255/0
    rim = cv2.bitwise_and(cv2.dilate(ground, np.ones((5, 5), np.uint8)), cv2.bitwise_not(ground))
    values = np.bincount(small[rim.view(bool)], minlength=256)  # rim is 0/255: faster than a masked calcHist
    darker = int(values[: max(0, mode - 40)].sum())  # v < mode - 40
    lighter = int(values[mode + 41 :].sum())  # v > mode + 40
    return lighter > 1.5 * darker and lighter > 0.001 * small.size


def normalize_paper(gray: np.ndarray) -> np.ndarray:
    """Dark ink on white paper, whatever the paper's tint or lighting.

    The local paper level is estimated with a gray-scale closing (a maximum filter wider than
    any wall, then a minimum filter) and every pixel is divided by it: tinted, gray or
    unevenly lit paper becomes white while ink keeps its contrast to the paper around it.
    """
    h, w = gray.shape
    k = max(15, (max(h, w) // 25) | 1)
    f = min(1.0, 512.0 / max(h, w))
    if f < 1.0:  # the paper level is smooth: estimate it on a reduced copy
        small = cv2.resize(gray, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
        ks = max(5, int(k * f) | 1)
        bg = cv2.morphologyEx(small, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (ks, ks)))
        bg = cv2.resize(bg, (w, h), interpolation=cv2.INTER_LINEAR)
    else:
        bg = cv2.morphologyEx(gray, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
    # Where the "paper" itself is dark (a large solid area), there is nothing to normalize.
    bg = cv2.max(bg, 64)  # np.maximum(bg, 64) in one OpenCV pass
    return cv2.divide(gray, bg, scale=255.0)


def estimate_skew(ink: np.ndarray) -> float:
    """Dominant line direction modulo 90°, in degrees (0 when the plan has no clear one).

    Uses the fourth angular harmonic of the gradient field, weighted by gradient magnitude:
    axis-aligned walls all vote for the same phase whatever their orientation, curved walls
    and text spread out and cancel.
    """
    h, w = ink.shape
    step = max(1, max(h, w) // 700)
    # Sobel of the 0/1 image as 8-bit: the same (integer) gradients as from a float copy.
    small = np.ascontiguousarray(ink[::step, ::step]).view(np.uint8) if ink.dtype == np.bool_ else ink[::step, ::step].astype(np.float32)
    gx = cv2.Sobel(small, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(small, cv2.CV_32F, 0, 1, ksize=3)
    mag = np.sqrt(gx * gx + gy * gy)
    total = float(mag.sum())
    if total <= 0:
        return 0.0
    # Only pixels with a gradient contribute (elsewhere gx = gy = 0 and the terms are zeros):
    # the angle and its harmonics are computed there alone, written into gx (zero elsewhere) so
    # the sums are taken exactly as over the whole image.
    at = np.flatnonzero(mag > 0)
    theta = np.arctan2(gy.reshape(-1)[at], gx.reshape(-1)[at])
    weight = mag.reshape(-1)[at]
    terms = gx
    terms.reshape(-1)[at] = weight * np.cos(4 * theta)
    c = float(terms.sum())
    terms.reshape(-1)[at] = weight * np.sin(4 * theta)
    s = float(terms.sum())
    coherence = math.hypot(c, s) / total
    if coherence < 0.25:
        return 0.0
    return math.degrees(math.atan2(s, c) / 4.0)


def rotate(gray: np.ndarray, angle_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Rotate about the centre on an enlarged canvas filled with paper white."""
    h, w = gray.shape
    m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle_deg, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(math.ceil(h * sin + w * cos)), int(math.ceil(h * cos + w * sin))
    m[0, 2] += nw / 2.0 - w / 2.0
    m[1, 2] += nh / 2.0 - h / 2.0
    out = cv2.warpAffine(gray, m, (nw, nh), flags=cv2.INTER_LINEAR, borderValue=255)
    return out, m


@dataclass(frozen=True)
class Prepared:
    gray: np.ndarray  # dark ink on light paper, working resolution, deskewed
    frame: Frame
    inverted: bool


def _quick_thickness(gray: np.ndarray) -> float:
    """Wall thickness of a (not yet normalized) plan, estimated cheaply on a half-size copy."""
    from roomkit.detector.walls import estimate_thickness  # walls imports nothing from here

    h, w = gray.shape
    factor = 2 if max(h, w) > 1000 else 1
    small = gray if factor == 1 else cv2.resize(gray, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    _thr, ink = cv2.threshold(small, 0, 1, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    return estimate_thickness(ink) * factor


def prepare(
    image: np.ndarray, working_resolution: int, *, target_thickness: float = 0.0, deskew: bool = True
) -> Prepared:
    """Run the whole preprocessing stage.

    With ``target_thickness``, a plan whose walls are much thicker than that is shrunk further
    so they come out about that thick: detail finer than a fraction of a wall does not change
    which rooms exist, and the later stages cost in proportion to the pixel count.
    """
    gray = to_gray(image)
    oh, ow = gray.shape
    small, scale = downscale(gray, working_resolution)
    del gray
    inverted = _is_negative(small)
    if inverted:
        small = cv2.bitwise_not(small)
    small = normalize_paper(small)
    if target_thickness > 0:
        t = _quick_thickness(small)
        if t > 1.3 * target_thickness:
            h, w = small.shape
            # Never so small that rooms stop being resolvable.
            factor = max(target_thickness / t, MIN_WORKING_SIDE / float(max(h, w)))
            if factor < 0.9:
                size = (max(1, round(w * factor)), max(1, round(h * factor)))
                small = cv2.resize(small, size, interpolation=cv2.INTER_AREA)
                scale = 0.5 * (size[0] / ow + size[1] / oh)
    angle, matrix = 0.0, None
    if deskew:
        skew = estimate_skew(small < 128)
        if MIN_DESKEW_DEG <= abs(skew) <= MAX_DESKEW_DEG:
            # Gradient angles are measured with y down; rotating by +skew (OpenCV's
            # counter-clockwise convention in a y-down frame) brings the lines to the axes.
            small, matrix = rotate(small, skew)
            angle = skew
    return Prepared(gray=small, frame=Frame(ow, oh, scale, angle, matrix), inverted=inverted)
