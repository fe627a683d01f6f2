"""Per-pixel training targets derived from a plan's room polygons (and its ink).

Only the room polygons are needed — the ground truth users already have from ``roomkit eval``:

* ``room``: inside a room polygon;
* ``wall``: ink in the band just around the rooms (within a few wall thicknesses of a room and
  in none), the walls, partitions and windows that bound them;
* ``opening``: the rest of that band where two rooms come within a door's depth of each other
  through no ink — the doorways and open seams the room closure must bridge;
* ``outside``: everything else (the page, text and drawings beyond the building).
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from roomkit.detector.walls import estimate_thickness
from roomkit.learned.modelfile import CLASSES

OUTSIDE, WALL, OPENING, ROOM = (CLASSES.index(c) for c in ("outside", "wall", "opening", "room"))
#: Ink is darker than this share between paper (255) and the darkest ink; at least this dark.
INK_LEVEL = 0.5
#: The band around rooms is this many wall thicknesses wide (outer walls are the thickest).
BAND_PER_THICKNESS = 2.5
#: Openings lie within this many wall thicknesses of two different rooms.
OPENING_PER_THICKNESS = 1.6


def ink_mask(gray: np.ndarray) -> np.ndarray:
    """uint8 0/1: pixels darker than halfway between the paper and the darkest ink."""
    lo = float(np.percentile(gray, 0.5))
    level = min(200.0, lo + INK_LEVEL * (255.0 - lo))
    return (gray < level).astype(np.uint8)


def wall_thickness(gray: np.ndarray) -> float:
    """Typical wall thickness (px): the stroke width holding the most ink (the rules'
    estimate), within sane bounds for the page."""
    t = estimate_thickness(ink_mask(gray))
    return float(np.clip(t if t > 0 else 3.0, 2.0, 0.03 * max(gray.shape)))


def rasterize(polygons: Sequence[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """int32 room ids (1…n, 0 = none) of pixel-face polygons on a (H, W) grid.

    A room gets the pixels strictly inside its outline: OpenCV fills the pixels an edge passes
    through too, which would eat one pixel of each wall side and erase thin partitions."""
    ids = np.zeros(shape, np.int32)
    for i, poly in enumerate(polygons, start=1):
        pts = np.round(np.asarray(poly, np.float64) * 8.0 - 4.0).astype(np.int32)  # face → centre, 3 bits
        if len(pts) >= 3:
            one = np.zeros(shape, np.uint8)
            cv2.fillPoly(one, [pts.reshape(-1, 1, 2)], 1, lineType=cv2.LINE_8, shift=3)
            cv2.polylines(one, [pts.reshape(-1, 1, 2)], True, 0, 1, lineType=cv2.LINE_8, shift=3)
            ids[one == 1] = i
    return ids


def make_targets(gray: np.ndarray, polygons: Sequence[np.ndarray]) -> np.ndarray:
    """uint8 class map (H, W) for a uint8 plan and its rooms' polygons (pixel faces)."""
    ids = rasterize(polygons, gray.shape)
    target = np.full(gray.shape, OUTSIDE, np.uint8)
    if not polygons:
        return target
    rooms = (ids > 0).astype(np.uint8)
    t = wall_thickness(gray)
    band = cv2.dilate(rooms, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, _odd(2 * BAND_PER_THICKNESS * t)))
    band &= 1 - rooms
    ink = cv2.dilate(ink_mask(gray), np.ones((3, 3), np.uint8))  # anti-aliased edges count
    # How many different rooms are near each pixel.
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, _odd(2 * OPENING_PER_THICKNESS * t))
    near = np.zeros(gray.shape, np.uint8)
    for i in range(1, int(ids.max()) + 1):
        one = (ids == i).astype(np.uint8)
        if one.any():
            near += cv2.dilate(one, k)
    target[(band == 1) & (ink == 1)] = WALL
    target[(band == 1) & (ink == 0) & (near >= 2)] = OPENING
    target[rooms == 1] = ROOM
    return target


def _odd(size: float) -> tuple[int, int]:
    n = max(3, int(round(size)) | 1)
    return n, n
