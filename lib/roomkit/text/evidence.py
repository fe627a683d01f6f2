"""Text as evidence about the rooms: a region holding two room names is two rooms merged.

:func:`split_region` cuts a region between the names at its narrowest straight place (a wall
stub, a doorway the detector bridged over): the shortest horizontal or vertical cut that puts the
names on different sides. A cut is plausible only where the region narrows there: the cut is at
most :data:`NARROW` of the region's width across it; otherwise the region is kept (and flagged).
:func:`carve_room` parts a named room from the closet-like pieces beyond its walls that the
detector joined to it; :func:`recover_room` finds the room around a name that stands in no
region.
"""
from __future__ import annotations

import math
from typing import Hashable, Sequence

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
    groups: Sequence[Hashable] | None = None,
    simplify: float = 1.5,
) -> list[tuple[list[Point], float]] | None:
    """Split a room polygon so that each anchor (a room name's position) has its own part.

    Returns ``[(polygon, area_px), …]`` in the same pixel grid, one per part, or ``None`` when
    no plausible cut separates the names (the region does not narrow between them).
    ``boxes``: the labels' boxes (x0, y0, x1, y1), which a cut must not cross. ``groups``:
    one key per anchor; anchors sharing a key name one room (the parts of an open-plan living
    space): their parts are joined again.
    """
    mask, ox, oy = _mask(polygon)
    total = float(mask.sum())
    keys = list(range(len(anchors))) if groups is None else list(groups)
    named = [((x - ox, y - oy), k) for (x, y), k in zip(anchors, keys)]
    found = _split(mask, named, [(b[0] - ox, b[1] - oy, b[2] - ox, b[3] - oy) for b in boxes], total)
    if found is None:
        return None
    parts = _rejoin(found)
    if len(parts) < 2:
        return None
    return _polygons(parts, ox, oy, simplify)


def _polygons(parts: Sequence[np.ndarray], ox: int, oy: int, simplify: float) -> list[tuple[list[Point], float]] | None:
    """Each part mask's outline (its largest piece, simplified) in the plan's pixels, with its
    area; ``None`` when a part has no outline of three corners."""
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


def _rejoin(parts: list[tuple[np.ndarray, list[tuple[Point, Hashable]]]]) -> list[np.ndarray]:
    """Parts whose names share a key joined again (across the cut between them)."""
    masks: list[np.ndarray] = []
    keys: list[set] = []
    for mask, anchors in parts:
        ks = {k for _p, k in anchors}
        hit = [i for i, have in enumerate(keys) if have & ks]
        if hit:
            for i in sorted(hit, reverse=True):
                mask = mask | masks.pop(i)
                ks |= keys.pop(i)
            # The cut lines between the joined parts are one pixel wide: closed again.
            mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
        masks.append(mask)
        keys.append(ks)
    return masks


def _split(mask: np.ndarray, anchors: list[tuple[Point, Hashable]], boxes: list, total: float) -> list[tuple[np.ndarray, list[tuple[Point, Hashable]]]] | None:
    """The region cut until each part holds names of one room: ``[(part, its anchors)]``."""
    if len({k for _p, k in anchors}) < 2:
        return [(mask, anchors)]
    # The narrowest cut between two names of different rooms; the others follow their side.
    best = None
    for i in range(len(anchors)):
        for j in range(i + 1, len(anchors)):
            if anchors[i][1] == anchors[j][1]:
                continue
            cut = _best_cut(mask, anchors[i][0], anchors[j][0], boxes)
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
    sides: list[list[tuple[Point, Hashable]]] = [[], []]
    for p, k in anchors:
        sides[0 if p[axis] < c else 1].append((p, k))
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
        found = _polygons([region], 0, 0, simplify)
        return found[0] if found else None
    return None


#: Carving a named room out of its region: the flood from the name, its doorways closed by
#: thickening the ink by CARVE_STEPS of a typical room's side (a closet door is a sixth of it at
#: most), must keep at least CARVE_KEEP of the region; what it leaves out counts where it is
#: closet-like (:func:`_closet_like`: CARVE_REST to CARVE_REST_MAX of a typical room's area,
#: filling CARVE_FILL of its box, CARVE_ASPECT times as long as wide) and at least CARVE_OPEN of
#: it is floor joined to the named room's through the unthickened ink (not the inside of a
#: drawn bath, bed or desk). Chosen on the real development plans (F1@0.5 with the text
#: evidence on: +0.007 over the evidence without carving; 29 carves, 23 more rooms matched),
#: where the bedrooms' closets are the rooms most often missed.
CARVE_STEPS = (0.04, 0.08)
CARVE_KEEP = 0.4
CARVE_REST = 0.1
CARVE_REST_MAX = 0.5
CARVE_FILL = 0.7
CARVE_ASPECT = 1.3
CARVE_OPEN = 0.5
#: Pen ink darker than this bounds a carved room.
CARVE_INK = 200
#: Longest side (px) a region is carved at, and a typical room's side at most.
CARVE_SIDE = 640
CARVE_ROOM_SIDE = 128


def carve_room(
    gray: np.ndarray,
    polygon: Sequence[Point],
    anchor: Point,
    text_boxes: Sequence[tuple[float, float, float, float]],
    *,
    typical_area: float,
    simplify: float = 1.5,
) -> list[tuple[list[Point], float]] | None:
    """A region holding one room name, cut into the named room and what lies beyond its walls
    (a closet, a hall the detector joined to it through a doorway it did not close).

    The named room is the free floor around the name, bounded by the ink thickened step by step
    (CARVE_STEPS of a typical room's side: doorways close) until what it leaves out holds a
    closet-like piece (:func:`_closet_like`) that opens onto it through a gap in the ink.
    Returns ``[(polygon, area_px), …]``: the region less those pieces first, then the pieces;
    ``None`` when there are none or the flood keeps less than CARVE_KEEP of the region.
    ``text_boxes``: the text in the region (not ink).

    Regions larger than CARVE_SIDE, or on plans whose typical room is larger than
    CARVE_ROOM_SIDE across, are carved reduced to that (thickening the ink of a 10-MP plan at
    full size takes seconds); the parts come back in the plan's pixels."""
    pts = np.asarray(polygon, np.float64)
    if len(pts) < 3:
        return None
    x0, y0 = np.floor(pts.min(axis=0)).astype(int) - 2
    x1, y1 = np.ceil(pts.max(axis=0)).astype(int) + 3
    f = min(1.0, CARVE_SIDE / float(max(x1 - x0, y1 - y0)), CARVE_ROOM_SIDE / math.sqrt(max(typical_area, 1.0)))
    if f == 1.0:
        return _carve(gray, polygon, anchor, text_boxes, typical_area, simplify)
    h, w = gray.shape[:2]
    crop = np.full((y1 - y0, x1 - x0), 255, np.uint8)
    cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if cx1 > cx0 and cy1 > cy0:
        crop[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0] = gray[cy0:cy1, cx0:cx1]
    small = cv2.resize(crop, (max(1, round(crop.shape[1] * f)), max(1, round(crop.shape[0] * f))),
                       interpolation=cv2.INTER_AREA)

    def down(x: float, y: float) -> Point:
        return ((x - x0) * f, (y - y0) * f)

    found = _carve(small, [down(x, y) for x, y in polygon], down(*anchor),
                   [(*down(a, b), *down(c, d)) for a, b, c, d in text_boxes], typical_area * f * f,
                   max(0.5, simplify * f))
    if found is None:
        return None
    return [([(x / f + x0, y / f + y0) for x, y in poly], area / (f * f)) for poly, area in found]


def _carve(
    gray: np.ndarray,
    polygon: Sequence[Point],
    anchor: Point,
    text_boxes: Sequence[tuple[float, float, float, float]],
    typical_area: float,
    simplify: float,
) -> list[tuple[list[Point], float]] | None:
    mask, ox, oy = _mask(polygon)
    total = float(mask.sum())
    if total <= 0 or typical_area <= 0:
        return None
    h, w = gray.shape[:2]
    mh, mw = mask.shape
    ink = np.zeros((mh, mw), np.uint8)
    x0, y0, x1, y1 = max(0, ox), max(0, oy), min(w, ox + mw), min(h, oy + mh)
    if x1 > x0 and y1 > y0:
        ink[y0 - oy : y1 - oy, x0 - ox : x1 - ox] = gray[y0:y1, x0:x1] < CARVE_INK
    for bx0, by0, bx1, by1 in text_boxes:
        ink[max(0, int(by0) - oy - 1) : max(0, int(by1) - oy + 2), max(0, int(bx0) - ox - 1) : max(0, int(bx1) - ox + 2)] = 0
    ax, ay = int(round(anchor[0])) - ox, int(round(anchor[1])) - oy
    if not (0 <= ax < mw and 0 <= ay < mh):
        return None
    side = math.sqrt(typical_area)
    floor = mask & (1 - ink)
    reachable = None
    for radius in sorted({max(1, int(round(f * side))) for f in CARVE_STEPS}):
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        free = mask & (1 - cv2.dilate(ink, kernel))
        ys, xs = np.nonzero(free)
        if not len(xs):
            return None
        # From the free pixel nearest the name (the name's own box may be closed in by ink).
        k = int(np.argmin((xs - ax) ** 2 + (ys - ay) ** 2))
        seed = (int(xs[k]), int(ys[k]))
        flood = np.zeros((mh + 2, mw + 2), np.uint8)
        cv2.floodFill(free, flood, seed, 2, flags=4 | (1 << 8) | cv2.FLOODFILL_MASK_ONLY)
        room = flood[1:-1, 1:-1]
        if reachable is None:
            _n, comp = cv2.connectedComponents(floor, connectivity=4)
            ids = np.unique(comp[(room > 0) & (floor > 0)])
            reachable = np.isin(comp, ids[ids > 0])
        # What the flood leaves out, less the strips along the ink that the thickening took.
        rest = floor & (1 - room)
        rest = cv2.morphologyEx(rest, cv2.MORPH_OPEN, kernel)
        n, labels, stats, _c = cv2.connectedComponentsWithStats(rest, connectivity=4)
        # A piece counts when it is closet-like and opens onto the named room through a gap in
        # the ink (a doorway): a bed, a desk, a bath drawn as closed outlines have their insides
        # cut off from the room's floor by the ink itself.
        pieces = [i for i in range(1, n) if _closet_like(stats[i], typical_area)
                  and reachable[labels == i].mean() >= CARVE_OPEN]
        if not pieces:
            continue  # nothing closed off yet: close wider doorways
        if room.sum() < CARVE_KEEP * total:
            return None
        # The named room: its floor less the pieces, as far as it reaches from the name (its
        # furniture and fixtures stay in it, inside its outline).
        left = (floor & ~np.isin(labels, pieces)).astype(np.uint8)
        _n, comp = cv2.connectedComponents(left, connectivity=4)
        ids = np.unique(comp[(room > 0) & (left > 0)])
        room = np.isin(comp, ids[ids > 0]).astype(np.uint8)
        return _polygons([room] + [(labels == i).astype(np.uint8) for i in pieces], ox, oy, simplify)
    return None


def _closet_like(stat: np.ndarray, typical_area: float) -> bool:
    """A piece shaped like a closet or a small room: between CARVE_REST and CARVE_REST_MAX of a
    typical room, filling CARVE_FILL of its bounding box, CARVE_ASPECT or more times as long
    as wide (window bays, the gaps beside furniture are ragged or squat)."""
    area, bw, bh = float(stat[cv2.CC_STAT_AREA]), float(stat[cv2.CC_STAT_WIDTH]), float(stat[cv2.CC_STAT_HEIGHT])
    return (CARVE_REST * typical_area <= area <= CARVE_REST_MAX * typical_area
            and area >= CARVE_FILL * bw * bh and max(bw, bh) >= CARVE_ASPECT * min(bw, bh))
