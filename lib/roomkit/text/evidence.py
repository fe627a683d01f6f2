"""Text as evidence about the rooms: a region holding two room names is two rooms merged.

:func:`split_region` cuts a region between the names at its narrowest straight place (a wall
stub, a doorway the detector bridged over): the shortest horizontal or vertical cut that puts the
names on different sides. A cut is plausible only where the region narrows there: the cut is at
most :data:`NARROW` of the region's width across it; otherwise the region is kept (and flagged).
"""
from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np

Point = tuple[float, float]

#: A cut is plausible when it is at most this share of the region's extent across it.
NARROW = 0.7
#: …and each side keeps at least this share of the region's area.
MIN_PART = 0.12


def _mask(polygon: Sequence[Point]) -> tuple[np.ndarray, int, int]:
    pts = np.asarray(polygon, dtype=np.float64)
    x0, y0 = np.floor(pts.min(axis=0)).astype(int) - 1
    x1, y1 = np.ceil(pts.max(axis=0)).astype(int) + 2
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(mask, [np.round(pts - (x0, y0)).astype(np.int32)], 1)
    return mask, int(x0), int(y0)


def _best_cut(
    mask: np.ndarray, a: Point, b: Point, keep_out: Sequence[tuple[float, float, float, float]]
) -> tuple[float, int, int] | None:
    """(cut length / extent across, axis 0=vertical line x=c | 1=horizontal line y=c, c)."""
    best = None
    for axis in (0, 1):
        lo, hi = sorted((a[axis], b[axis]))
        lo_i, hi_i = int(np.ceil(lo)), int(np.floor(hi))
        if hi_i - lo_i < 3:
            continue
        # Pixels of the region along each candidate line, and the region's extent across.
        counts = mask.sum(axis=axis)  # axis 0: per column (x); 1: per row (y)
        extent = float(np.count_nonzero(mask.any(axis=1 - axis)))
        if extent <= 0:
            continue
        for c in range(max(lo_i, 0), min(hi_i, len(counts) - 1) + 1):
            # Never through a label: the cut runs between the names' boxes.
            if any((box[axis] - 1 <= c <= box[axis + 2] + 1) for box in keep_out):
                continue
            cost = counts[c] / extent
            if best is None or cost < best[0]:
                best = (float(cost), axis, c)
    return best


def split_region(
    polygon: Sequence[Point],
    anchors: Sequence[Point],
    boxes: Sequence[tuple[float, float, float, float]] = (),
    *,
    simplify: float = 1.5,
) -> list[tuple[list[Point], float]] | None:
    """Split a room polygon so that each anchor (a room name's position) has its own part.

    Returns ``[(polygon, area_px), …]`` in the same pixel grid, one per part, or ``None`` when
    no plausible cut separates the names (the region does not narrow between them).
    ``boxes``: the labels' boxes (x0, y0, x1, y1), which a cut must not cross.
    """
    mask, ox, oy = _mask(polygon)
    total = float(mask.sum())
    parts = _split(mask, [(x - ox, y - oy) for x, y in anchors], [(b[0] - ox, b[1] - oy, b[2] - ox, b[3] - oy) for b in boxes], total)
    if parts is None or len(parts) < 2:
        return None
    out = []
    for part in parts:
        contours, _ = cv2.findContours(part, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        if not contours:
            return None
        c = max(contours, key=cv2.contourArea)
        approx = cv2.approxPolyDP(c, simplify, True).reshape(-1, 2)
        if len(approx) < 3:
            return None
        out.append(([(float(x + ox), float(y + oy)) for x, y in approx], float(cv2.contourArea(c))))
    return out


def _split(mask: np.ndarray, anchors: list[Point], boxes: list, total: float) -> list[np.ndarray] | None:
    if len(anchors) < 2:
        return [mask]
    # The pair of names farthest apart decides the first cut; the others follow their side.
    best = None
    for i in range(len(anchors)):
        for j in range(i + 1, len(anchors)):
            cut = _best_cut(mask, anchors[i], anchors[j], boxes)
            if cut is not None and (best is None or cut[0] < best[0]):
                best = cut
    if best is None or best[0] > NARROW:
        return None
    _cost, axis, c = best
    cut = mask.copy()
    if axis == 0:
        cut[:, c] = 0
    else:
        cut[c, :] = 0
    n, labels = cv2.connectedComponents(cut, connectivity=4)
    sides: list[list[Point]] = [[], []]
    for p in anchors:
        sides[0 if p[axis] < c else 1].append(p)
    if not sides[0] or not sides[1]:
        return None
    parts = []
    for side in (0, 1):
        keep = np.zeros_like(mask)
        for lab in range(1, n):
            ys, xs = np.nonzero(labels == lab)
            coord = xs if axis == 0 else ys
            if (coord.mean() < c) == (side == 0):
                keep[labels == lab] = 1
        if keep.sum() < MIN_PART * total:
            return None
        sub = _split(keep, sides[side], boxes, total)
        if sub is None:
            return None
        parts.extend(sub)
    return parts


#: A room recovered around a name may be at most this many times the median room's area…
RECOVER_MAX_SHARE = 3.0
#: …and at least this many times the name's box area.
RECOVER_MIN_BOXES = 2.0
#: Pen ink darker than this bounds a recovered room.
RECOVER_INK = 200
#: Longest side (px) the free space around a name is searched at.
RECOVER_SIDE = 2000
#: Doorways closed by thickening the ink, in steps of a typical room's side.
RECOVER_STEPS = (0.04, 0.08, 0.12, 0.16)


def recover_room(
    gray: np.ndarray,
    rooms: Sequence[Sequence[Point]],
    anchor: Point,
    text_box: tuple[float, float, float, float],
    *,
    max_area: float,
    simplify: float = 1.5,
) -> tuple[list[Point], float] | None:
    """The free space around a room name that no detected room covers: a room the detector
    missed. Bounded by ink and by the detected rooms, its doorways closed by thickening the ink
    step by step (up to RECOVER_DOOR of a typical room's side) until it no longer runs off the
    page or grows past ``max_area`` px; ``None`` when it still does, or is barely larger than the name.

    Plans larger than RECOVER_SIDE are searched reduced to it (the flood and the thickened ink
    at full size cost a gigabyte and seconds on a 100-MP scan); the room comes back in the
    plan's pixels."""
    h0, w0 = gray.shape[:2]
    f = min(1.0, RECOVER_SIDE / float(max(h0, w0)))
    if f < 1.0:
        gray = cv2.resize(gray, (max(1, round(w0 * f)), max(1, round(h0 * f))), interpolation=cv2.INTER_AREA)
        rooms = [[(x * f, y * f) for x, y in poly] for poly in rooms]
        anchor = (anchor[0] * f, anchor[1] * f)
        text_box = (text_box[0] * f, text_box[1] * f, text_box[2] * f, text_box[3] * f)
        max_area *= f * f
        simplify = max(0.5, simplify * f)
    found = _recover(gray, rooms, anchor, text_box, max_area=max_area, simplify=simplify)
    if found is None or f == 1.0:
        return found
    poly, area = found
    return [(x / f, y / f) for x, y in poly], area / (f * f)


def _recover(
    gray: np.ndarray,
    rooms: Sequence[Sequence[Point]],
    anchor: Point,
    text_box: tuple[float, float, float, float],
    *,
    max_area: float,
    simplify: float,
) -> tuple[list[Point], float] | None:
    h, w = gray.shape[:2]
    ink = (gray < RECOVER_INK).astype(np.uint8)
    taken = np.zeros((h, w), np.uint8)
    for poly in rooms:
        cv2.fillPoly(taken, [np.round(np.asarray(poly)).astype(np.int32)], 1)
    x0, y0, x1, y1 = (int(round(v)) for v in text_box)
    ink[max(0, y0 - 1) : min(h, y1 + 2), max(0, x0 - 1) : min(w, x1 + 2)] = 0
    ax, ay = int(round(anchor[0])), int(round(anchor[1]))
    if not (0 <= ax < w and 0 <= ay < h):
        return None
    side = math.sqrt(max_area / RECOVER_MAX_SHARE)
    box_area = max(1.0, float((x1 - x0) * (y1 - y0)))
    for radius in sorted({1, *(max(1, int(round(f * side))) for f in RECOVER_STEPS)}):
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        barrier = cv2.dilate(ink, kernel) | taken
        barrier[max(0, y0) : min(h, y1 + 1), max(0, x0) : min(w, x1 + 1)] = 0
        free = (1 - barrier).astype(np.uint8)
        flood = np.zeros((h + 2, w + 2), np.uint8)
        cv2.floodFill(free, flood, (ax, ay), 2, flags=4 | (1 << 8) | cv2.FLOODFILL_MASK_ONLY)
        region = flood[1:-1, 1:-1]
        area = float(region.sum())
        off_page = region[0, :].any() or region[-1, :].any() or region[:, 0].any() or region[:, -1].any()
        if off_page or area > max_area:
            continue  # leaked through a doorway: close wider gaps
        # Grow back what the thickened ink took, but not into ink or other rooms.
        region = cv2.dilate(region, kernel) & (1 - (ink | taken)).astype(np.uint8)
        area = float(region.sum())
        if area < RECOVER_MIN_BOXES * box_area:
            return None
        contours, _ = cv2.findContours(region, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        c = max(contours, key=cv2.contourArea)
        approx = cv2.approxPolyDP(c, simplify, True).reshape(-1, 2)
        if len(approx) < 3:
            return None
        return [(float(x), float(y)) for x, y in approx], float(cv2.contourArea(c))
    return None
