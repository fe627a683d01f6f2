"""Stage 2: the wall mask and the wall thickness.

Walls are the thick, long strokes of a plan; text, furniture, fixtures, hatching, grid paper and
dimension lines are thin. The stroke width of every ink pixel comes from the distance transform
(twice the distance to paper along the stroke's medial ridge), so the plan's wall thickness is
measured rather than assumed: it is the thinnest stroke width that carries a substantial share of
the ink's medial length. A morphological opening just below that width then keeps walls exactly
(their faces are not moved) and removes everything thinner. Outlined walls (two thin parallel
lines, possibly hatched in between) are first filled solid: paper enclosed by ink that is thinner
than a wall is not a room.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: Strokes at most this wide (px at working resolution) are never walls: pen lines, text, hatching.
THIN_STROKE = 2
#: Gray level (on the normalized image) below which a pixel is faint ink, e.g. a glazing line.
FAINT_LEVEL = 235


@dataclass(frozen=True)
class WallInfo:
    mask: np.ndarray  # uint8 0/1 wall mask at working resolution
    ink: np.ndarray  # uint8 0/1 all ink
    faint: np.ndarray  # uint8 0/1 ink including light-gray lines (glazing, hatching)
    thickness: float  # typical (thinnest common) wall stroke width, px
    kernel: int  # opening size used to separate walls from thin strokes


def _odd(value: float) -> int:
    """Largest odd integer ≤ value (at least 1): odd kernels keep shapes centred."""
    n = int(value)
    return max(1, n if n % 2 else n - 1)


def ink_mask(gray: np.ndarray) -> np.ndarray:
    """Binary ink (1) vs paper (0): Otsu on the normalized image, kept within sane bounds."""
    thr, _ = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    thr = float(np.clip(thr, 70, 200))
    return (gray < thr).astype(np.uint8)


def stroke_widths(ink: np.ndarray) -> np.ndarray:
    """Histogram of stroke widths along medial ridges: ``hist[w]`` = ridge pixels of width w."""
    dt = cv2.distanceTransform(ink, cv2.DIST_L2, 3)
    ridge = (dt > 0) & (dt >= cv2.dilate(dt, np.ones((3, 3), np.uint8)))
    widths = np.rint(2.0 * dt[ridge] - 1.0).clip(0).astype(np.int64)
    return np.bincount(widths, minlength=64)


def estimate_thickness(ink: np.ndarray) -> float:
    """Thinnest wall width in px: the smallest non-thin width with a large share of ridge length.

    Widths are smoothed over neighbouring bins (the L2 distance transform quantizes widths to
    roughly even numbers). Returns 0 when the plan has no thick strokes at all.
    """
    hist = stroke_widths(ink).astype(np.float64)
    if hist.size <= THIN_STROKE + 2:
        return 0.0
    smooth = hist.copy()
    smooth[:-1] += hist[1:]
    cand = smooth[THIN_STROKE + 1 :]
    if cand.max() <= 0:
        return 0.0
    # A wall width must hold a good share of the thick ink's medial length and be more than
    # a handful of pixels of it (a few bold letters are not walls).
    significant = np.nonzero((cand >= 0.3 * cand.max()) & (cand >= 20))[0]
    if significant.size == 0:
        return 0.0
    w = int(significant[0]) + THIN_STROKE + 1
    # Centre of mass of the peak around w gives a sub-bin estimate.
    lo, hi = max(THIN_STROKE + 1, w - 1), min(hist.size, w + 2)
    weights = hist[lo:hi]
    if weights.sum() > 0:
        return float((np.arange(lo, hi) * weights).sum() / weights.sum())
    return float(w)


def fill_outlined(ink: np.ndarray, max_width: int, min_length: int) -> np.ndarray:
    """Fill long strips of paper narrower than ``max_width`` between ink lines.

    These are the insides of outlined or hatched walls and the glazing of windows drawn as
    parallel lines. Short pockets (the counters of letters, gaps in furniture) stay paper:
    a strip must be at least ``min_length`` px long to count.
    """
    if max_width < 2:
        return ink
    max_width = _odd(max_width)
    paper = 1 - ink
    k = cv2.getStructuringElement(cv2.MORPH_RECT, (max_width, max_width))
    wide = cv2.morphologyEx(paper, cv2.MORPH_OPEN, k)
    narrow = paper & (1 - wide)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(narrow, connectivity=4)
    if n <= 1:
        return ink
    long_ = np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]) >= min_length
    long_[0] = False
    return ink | long_[labels].astype(np.uint8)


def drop_small(mask: np.ndarray, min_extent: int) -> np.ndarray:
    """Remove components whose bounding box is shorter than ``min_extent`` on both sides.

    Bold text, symbols and furniture blobs that survive the opening are compact; walls are
    long or connected to long walls.
    """
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 1:
        return mask
    keep = np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]) >= min_extent
    keep[0] = False
    return keep[labels].astype(np.uint8)


def wall_mask(gray: np.ndarray, thickness: float | None = None) -> WallInfo:
    ink = ink_mask(gray)
    faint = (gray < FAINT_LEVEL).astype(np.uint8)
    t0 = estimate_thickness(ink) if thickness is None else float(thickness)
    if t0 > 0:
        ink = fill_outlined(ink, max(2, int(round(0.8 * t0))), int(round(6 * t0)))
    t = float(thickness) if thickness is not None else estimate_thickness(ink)
    if t <= 0:
        return WallInfo(mask=np.zeros_like(ink), ink=ink, faint=faint, thickness=0.0, kernel=0)
    kernel = _odd(max(THIN_STROKE + 1, 0.75 * t))
    k = cv2.getStructuringElement(cv2.MORPH_RECT, (kernel, kernel))
    mask = cv2.morphologyEx(ink, cv2.MORPH_OPEN, k)
    mask = drop_small(mask, max(8, int(round(4 * t))))
    return WallInfo(mask=mask, ink=ink, faint=faint, thickness=t, kernel=kernel)
