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

import dataclasses
from dataclasses import dataclass

import cv2
import numpy as np

#: Strokes at most this wide (px at working resolution) are never walls: pen lines, text, hatching.
THIN_STROKE = 2
#: Ridge pixels of width w count w**WIDTH_WEIGHT towards the thickness vote (1 = ink area, 0 =
#: medial length). Between the two: long walls win over short thick blobs and thin text.
WIDTH_WEIGHT = 0.5
#: Opening size as a share of the typical wall thickness: interior walls are often half as
#: thick as the outer walls that dominate the ink (a third, on thin-partition plans), and
#: must survive.
KERNEL_PER_THICKNESS = 0.3
#: Paper strips narrower than this share of the wall thickness, between ink lines, are the
#: inside of outlined walls or window glazing.
FILL_PER_THICKNESS = 0.6
#: Hollow-wall mode needs the dominant narrow paper width to carry this many times the ridge
#: length of the dominant ink width.
HOLLOW_DOMINANCE = 1.5
#: Gray level (on the normalized image) below which a pixel is faint ink, e.g. a glazing line.
FAINT_LEVEL = 235
#: Pen-line partitions are at most this far from the walls' gray towards the ink threshold.
PARTITION_DARKNESS = 0.5


@dataclass(frozen=True)
class WallInfo:
    mask: np.ndarray  # uint8 0/1 wall mask at working resolution
    ink: np.ndarray  # uint8 0/1 all ink
    faint: np.ndarray  # uint8 0/1 ink including light-gray lines (glazing, hatching)
    thickness: float  # typical (thinnest common) wall stroke width, px
    kernel: int  # opening size used to separate walls from thin strokes

    def replace(self, **changes: object) -> "WallInfo":
        return dataclasses.replace(self, **changes)


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
    """Typical wall thickness in px: the stroke width that holds the most ink.

    Each medial-ridge pixel of width w stands for about w pixels of ink, so ``hist[w]·w`` is
    the ink area drawn at that width. Walls hold most of a plan's ink; pen lines (width ≤ 2:
    text, furniture, hatching, glazing) are excluded. Neighbouring widths are pooled (the
    distance transform quantizes widths) and the peak refined by its centre of mass. Returns 0
    when the plan has no strokes thicker than a pen line.
    """
    hist = stroke_widths(ink).astype(np.float64)
    widths = np.arange(hist.size, dtype=np.float64)
    area = hist * widths**WIDTH_WEIGHT
    area[: THIN_STROKE + 1] = 0.0
    if area.sum() < 20 * (THIN_STROKE + 1):
        return 0.0
    pooled = area.copy()
    pooled[1:] += area[:-1]
    pooled[:-1] += area[1:]
    w = int(np.argmax(pooled))
    lo, hi = max(THIN_STROKE + 1, w - 1), min(hist.size, w + 2)
    weights = area[lo:hi]
    if weights.sum() <= 0:
        return float(w)
    return float((widths[lo:hi] * weights).sum() / weights.sum())


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


def _pooled_peak(hist: np.ndarray, lo: int) -> tuple[int, float]:
    """(width, pooled count) of the strongest bin ≥ ``lo``, counting both neighbours."""
    h = hist.astype(np.float64).copy()
    h[:lo] = 0.0
    pooled = h.copy()
    pooled[1:] += h[:-1]
    pooled[:-1] += h[1:]
    w = int(np.argmax(pooled))
    return w, float(pooled[w])


def fill_hollow_walls(ink: np.ndarray) -> tuple[np.ndarray, float]:
    """Fill the insides of hollow walls (outlined, or outlined and hatched) when the plan has them.

    A plan drawn with hollow walls has little thick ink but a great deal of enclosed paper of
    one narrow width: the strip between a wall's two outlines, or the cells between its hatch
    lines. The medial ridges of enclosed paper are histogrammed by width, like the ink's; when
    a narrow paper width carries clearly more ridge length than any ink width, the plan is
    taken to have hollow walls and every enclosed paper region no wider than about 1.5× that
    width is filled. Returns (ink, hollow wall thickness or 0); plans with solid walls are
    returned unchanged.
    """
    h, w = ink.shape
    paper = (1 - ink).astype(np.uint8)
    n, labels, _stats, _ = cv2.connectedComponentsWithStats(paper, connectivity=4)
    if n <= 2:
        return ink, 0.0
    border = np.zeros(n, dtype=bool)
    border[np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))] = True
    enclosed = ~border[labels] & (paper > 0)
    dt = cv2.distanceTransform(paper, cv2.DIST_L2, 3)
    ridge = enclosed & (dt > 0) & (dt >= cv2.dilate(dt, np.ones((3, 3), np.uint8)))
    cap = max(12, int(0.04 * max(h, w)))
    paper_hist = np.bincount(np.rint(2.0 * dt[ridge] - 1.0).clip(0).astype(np.int64), minlength=cap + 2)[: cap + 1]
    ink_hist = stroke_widths(ink)
    width, strength = _pooled_peak(paper_hist, THIN_STROKE + 1)
    _w, solid = _pooled_peak(ink_hist, THIN_STROKE + 1)
    if strength < HOLLOW_DOMINANCE * solid or strength < 2.0 * max(h, w):
        return ink, 0.0
    limit = 0.75 * (width + 1)
    has_wide = np.bincount(labels[dt > limit], minlength=n) > 0
    fill = enclosed & ~has_wide[labels]
    return ink | fill.astype(np.uint8), float(width + 2)


def drop_small(mask: np.ndarray, min_extent: float) -> np.ndarray:
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
    ink, hollow = fill_hollow_walls(ink)
    t0 = estimate_thickness(ink) if thickness is None else float(thickness)
    if t0 > 0:
        ink = fill_outlined(ink, max(2, int(round(FILL_PER_THICKNESS * t0))), int(round(3 * t0)))
    t = float(thickness) if thickness is not None else estimate_thickness(ink)
    del hollow
    if t <= 0:
        return WallInfo(mask=np.zeros_like(ink), ink=ink, faint=faint, thickness=0.0, kernel=0)
    kernel = _odd(max(THIN_STROKE + 1, KERNEL_PER_THICKNESS * t))
    k = cv2.getStructuringElement(cv2.MORPH_RECT, (kernel, kernel))
    mask = cv2.morphologyEx(ink, cv2.MORPH_OPEN, k)
    return WallInfo(mask=mask, ink=ink, faint=faint, thickness=t, kernel=kernel)


def thin_partitions(
    ink: np.ndarray,
    wall: np.ndarray,
    min_length: float,
    reach: float,
    gray: np.ndarray | None = None,
    rounds: int = 2,
    stub_length: float = 0.0,
    merge: float = 0.0,
) -> np.ndarray:
    """Thin straight partitions (uint8 0/1, disjoint from ``wall``) that run from wall to wall.

    Many plans draw closets, wardrobes and light partitions with a pen line no thicker than the
    furniture's, so the wall opening drops them. A pen line that is long and straight
    (horizontal or vertical, at least ``min_length`` px) and whose *both* ends meet a wall
    (within ``reach`` px) is a partition: furniture outlines and door leaves stand free at one
    end at least, text is short. Lines ending on an accepted partition count on the next round
    (closet fronts between closet sides). A line at least ``stub_length`` long (when > 0) that
    meets a wall at one end only is a partition with a doorway at its free end (the gap stage
    closes the doorway). With ``gray``, a partition must also be drawn about as dark as the
    walls: listing plans draw fixtures and furniture in a lighter gray.
    """
    length = int(round(min_length))
    if length < 3 or not ink.any():
        return np.zeros_like(wall)
    r = max(1, int(round(reach)))
    segs = {
        d: cv2.morphologyEx(ink, cv2.MORPH_OPEN, np.ones((1, length) if d == "h" else (length, 1), np.uint8)) & (1 - wall)
        for d in "hv"
    }
    found = np.zeros_like(wall)
    by_dir = {"h": np.zeros_like(wall), "v": np.zeros_like(wall)}
    h, w = wall.shape
    dark = None
    if gray is not None and wall.any():
        hist = np.bincount(gray[wall > 0], minlength=256)
        wall_level = int(np.searchsorted(np.cumsum(hist), hist.sum() / 2.0))
        thr, _ = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        dark = wall_level + PARTITION_DARKNESS * (float(np.clip(thr, 70, 200)) - wall_level)
    # Segments by their outer contours' boxes (much cheaper than labelling the whole page); a
    # segment's pixels are the segment ink inside its box (lines are thin, boxes hardly overlap).
    comps = {}
    for d, seg in segs.items():
        contours, _ = cv2.findContours(seg, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        comps[d] = ([cv2.boundingRect(c) for c in contours], np.zeros(len(contours), dtype=bool))
    for _ in range(rounds):
        barrier = wall | found
        added = False
        for d, (boxes, done) in comps.items():
            seg = segs[d]
            for i, (x, y, bw, bh) in enumerate(boxes):
                if done[i]:
                    continue
                if d == "h":
                    a = barrier[max(0, y - 1) : y + bh + 1, max(0, x - r) : x]
                    b = barrier[max(0, y - 1) : y + bh + 1, x + bw : min(w, x + bw + r)]
                else:
                    a = barrier[max(0, y - r) : y, max(0, x - 1) : x + bw + 1]
                    b = barrier[y + bh : min(h, y + bh + r), max(0, x - 1) : x + bw + 1]
                span = bw if d == "h" else bh
                if (a.any() and b.any()) or (stub_length > 0 and span >= stub_length and (a.any() or b.any())):
                    done[i] = True
                    sl = (slice(y, y + bh), slice(x, x + bw))
                    comp = seg[sl] > 0
                    if dark is not None and np.median(gray[sl][comp]) > dark:
                        continue
                    found[sl] |= comp.astype(np.uint8)
                    by_dir[d][sl] |= comp.astype(np.uint8)
                    added = True
        if not added:
            break
    if merge >= 2:
        # Two parallel lines closer than a wall is thick are the two faces of one outlined
        # wall, not a wall and a sliver of room between them: fill the paper between them.
        k = int(merge)
        found |= cv2.morphologyEx(by_dir["h"], cv2.MORPH_CLOSE, np.ones((k, 1), np.uint8))
        found |= cv2.morphologyEx(by_dir["v"], cv2.MORPH_CLOSE, np.ones((1, k), np.uint8))
        found &= 1 - wall
    return found
