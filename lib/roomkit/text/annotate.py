"""Rooms + the plan's text → named, typed rooms with sizes; the plan's scale; flags.

:func:`annotate` is the step the detector runs after finding the rooms (``read_text``): it reads
the text once (:func:`roomkit.text.ocr.read_text`), groups it into labels, gives each label to the
room it stands in, and then

- with ``text_evidence``: splits a room holding two different room names where it narrows
  between them (the parts of an open-plan living space staying one room), or flags it; parts a
  named bedroom or hall from the closets the detector joined to it; keeps a doubtful region
  holding a name; recovers the room around a name standing outside every room, or flags it (a
  missed room);
- estimates the plan's scale (pixels per metre) from the rooms whose dimensions are printed;
- gives each room ``name``, ``type`` (from its name; unnamed rooms from their size), printed
  ``dimensions`` and an ``area`` (printed, from printed dimensions, or scaled).

It never raises: unreadable text leaves the rooms without names.
"""
from __future__ import annotations

import logging
import math
import statistics
import time
from dataclasses import replace
from typing import Any, Sequence

import cv2
import numpy as np

from roomkit.plans.response import Detection, Room, RoomText, order_and_number
from roomkit.text.evidence import RECOVER_MAX_SHARE, carve_room, recover_room, split_region
from roomkit.text.labels import Label, group_labels
from roomkit.text.ocr import TextLine, read_scale, read_text
from roomkit.text.parse import M2_PER_FT2, Area, Dimensions

_log = logging.getLogger(__name__)

#: A label whose anchor is this many of its line heights from a room still belongs to it.
NEAR_HEIGHTS = 1.0
#: Unnamed rooms: smaller than this (m²) are closets (without a scale: smaller than this share
#: of the median room)…
CLOSET_M2 = 1.7
CLOSET_SHARE = 0.25
#: …rooms up to BATH_MAX_M2 (without a scale: the median room) with fixtures drawn inside (pen
#: ink covering at least BATH_INK of the floor, text aside), and any under BATH_M2 (without a
#: scale: 0.6 of the median room), are bathrooms, unless CORRIDOR times as long as wide (a
#: corridor or stair hall: stairs are ink too); larger empty rooms are halls. Measured on the
#: development plans, where unnamed rooms are bathrooms, closets and halls nine times in ten:
#: the corridor rule and BATH_M2 3.5 → 4.5 took type accuracy 0.851 → 0.861 (+12 rooms of 1218;
#: chosen on half the plans, they gained 4 rooms on the other half, on average over 10 halvings).
BATH_INK = 0.03
BATH_MAX_M2 = 7.5
BATH_M2 = 4.5
BATH_SHARE = 0.6
CORRIDOR = 2.5
INK_LEVEL = 200
#: ink_share looks at no more pixels of a room than this.
INK_SAMPLES = 2_000_000
#: Rooms whose printed sides disagree with the detected shape by more than this (ratio of
#: aspect ratios) do not vote on the scale (merged or partly found rooms).
ASPECT_TOLERANCE = 1.35
#: Side votes on the scale within this share of each other agree (:func:`estimate_scale`).
#: Measured on synthetic plans against their true scale (121 plans of seeds 2024, 7 and the
#: samples): more than 2 % off 27 → 23 plans with side votes rather than area votes; rooms with
#: printed sizes within 5 %, seeds 2024 / 7 / 9090 / 5151: 358 / 386 / 376 / 359 → 360 / 387 /
#: 376 / 361 (samples 75 → 74).
SCALE_BAND = 0.03
#: Listing plans print a room's bounding rectangle, also for L-, T- and U-shaped rooms. The
#: printed rectangle, at the plan's scale, is laid where it covers most of the detected room
#: (door swings and bits of doorway the detector took in stay outside it); what of it the room
#: lacks, slivers thinner than SLIVER of its short side aside, is a notch when it is a block
#: (filling at least NOTCH_RECT of its own bounding box), at least NOTCH_MIN of the rectangle
#: and not a strip along a whole side (that is the room drawn or found a little smaller than
#: printed). The room's area is the printed rectangle less its notches. Measured on synthetic
#: plans, rooms with printed sizes within 5 %: seeds 2024 (60 plans) / 7 (40) / 5151 (60)
#: 0.912 / 0.950 / 0.903 → 0.940 / 0.983 / 0.944, against the former rule (the block an
#: opening finds in the minimum-area rectangle, for rooms filling less than 0.9 of it and
#: spanning their printed sides), which a door swing bulging out of the room defeated.
SLIVER = 0.2
NOTCH_MIN = 0.03
NOTCH_RECT = 0.9
#: A corner cut at 45° (see :func:`_cut_corners`): legs at least this share of their sides, and
#: within this ratio of each other.
CUT_LEG = 0.1
CUT_ASPECT = 1.4
#: The rectangle is laid on a raster of this many cells along its longer side.
NOTCH_RASTER = 256
#: Printed sides whose area and the scaled room's differ by more than this factor are misread.
MISREAD = 2.0


def annotate(
    detection: Detection,
    image: np.ndarray,
    *,
    evidence: bool = True,
    lines: Sequence[TextLine] | None = None,
    doubtful: Sequence[tuple[Sequence[tuple[float, float]], float, float]] = (),
) -> Detection:
    """``detection`` with its rooms named, typed and sized from the text on ``image``.

    ``lines``: text already read (skips the OCR). ``doubtful``: regions the detector found but
    did not report (``(polygon_px, area_px, confidence)``); with ``evidence`` one holding a room
    name is reported after all. Timings go to ``timings_ms["text"]``.
    Never raises: on any failure the rooms come back unnamed (type ``unknown``).
    """
    start = time.perf_counter()
    try:
        if lines is None:
            region = text_region(detection, read_scale(*image.shape[:2])) if detection.rooms else None
            lines = read_text(image, region=region) if detection.rooms else ()
        out = _annotate(detection, tuple(lines), evidence, image, doubtful)
    except Exception as exc:  # text must never fail a request
        _log.warning("reading the plan's text failed: %s: %s", type(exc).__name__, exc)
        out = replace(
            detection,
            rooms=tuple(replace(r, text=RoomText()) for r in detection.rooms),
            scale=None,
            flags=(),
        )
    text_ms = (time.perf_counter() - start) * 1000.0
    detect_ms = float(detection.processing_time_ms)
    return replace(
        out,
        processing_time_ms=detect_ms + text_ms,
        timings_ms={"detect": detect_ms, "text": text_ms},
    )


def text_region(detection: Detection, scale: float = 1.0) -> np.ndarray:
    """Where room text can stand: the rooms' convex hull, widened by a twentieth of its size
    (a room the detector missed on the edge of the building still shows its name); a mask of
    the plan reduced by ``scale`` (:func:`roomkit.text.ocr.read_scale`: the size it is read at)."""
    h, w = max(1, round(detection.height * scale)), max(1, round(detection.width * scale))
    mask = np.zeros((h, w), np.uint8)
    pts = np.concatenate([np.asarray(r.polygon, np.float32) for r in detection.rooms]) * scale
    hull = cv2.convexHull(pts)
    cv2.fillPoly(mask, [np.round(hull).astype(np.int32)], 1)
    _x, _y, bw, bh = cv2.boundingRect(hull.astype(np.float32))
    pad = max(3, int(round(0.05 * max(bw, bh))))
    return cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_RECT, (2 * pad + 1, 2 * pad + 1)))


def _inside(room: Room, point: tuple[float, float]) -> float:
    """Signed distance from ``point`` to the room's outline (positive inside)."""
    contour = np.asarray(room.polygon, np.float32).reshape(-1, 1, 2)
    return float(cv2.pointPolygonTest(contour, (float(point[0]), float(point[1])), True))


def assign(rooms: Sequence[Room], labels: Sequence[Label]) -> tuple[dict[int, list[Label]], list[Label]]:
    """Labels per room index (the room each stands in, or is nearest to), and the rest."""
    per_room: dict[int, list[Label]] = {}
    loose: list[Label] = []
    for label in labels:
        best, best_d = None, -math.inf
        for i, room in enumerate(rooms):
            d = _inside(room, label.anchor)
            if d > best_d:
                best, best_d = i, d
        if best is not None and best_d >= -NEAR_HEIGHTS * label.height:
            per_room.setdefault(best, []).append(label)
        else:
            loose.append(label)
    return per_room, loose


def _distinct_names(labels: Sequence[Label]) -> list[Label]:
    seen: dict[str, Label] = {}
    for lb in labels:
        if lb.name:
            key = "".join(ch for ch in lb.name.lower() if ch.isalnum())
            seen.setdefault(key, lb)
    return list(seen.values())


#: Confidence of a room recovered around a name the detector found no room for.
RECOVERED_CONFIDENCE = 0.5

#: Types that share one open space on many plans ("Reception / Kitchen", "Lounge / Dining").
OPEN_PLAN = frozenset({"living", "kitchen", "dining"})


def open_plan(labels: Sequence[Label]) -> bool:
    """Whether the names in one region are all parts of an open-plan living space: one room."""
    return all(lb.type in OPEN_PLAN for lb in labels)


#: Rooms whose closets and side rooms are carved off around their name (:func:`carve_room`);
#: kitchens, bathrooms and living rooms are drawn full of fixtures and furniture that close off
#: closet-like pieces of floor which are none.
CARVE_TYPES = frozenset({"bedroom", "hall", "closet", "balcony", "office"})


def _apply_evidence(
    detection: Detection,
    labels: list[Label],
    doubtful: Sequence[tuple[Sequence[tuple[float, float]], float, float]] = (),
    gray: np.ndarray | None = None,
) -> tuple[Detection, list[dict[str, Any]]]:
    """Split rooms holding two room names; keep doubtful regions holding one; flag the rooms
    that cannot be split and names standing outside every room."""
    per_room, loose = assign(detection.rooms, labels)
    flags: list[dict[str, Any]] = []
    items = []
    # Loose names inside a doubtful region: that region is a room after all.
    if doubtful and loose:
        spare = [Room(id="", polygon=tuple(p), area_px=a, confidence=c) for p, a, c in doubtful]
        found, still = assign(spare, [lb for lb in loose if lb.name])
        for k, held in found.items():
            if any(lb.name for lb in held):
                room = spare[k]
                items.append((room.polygon, room.area_px, room.confidence))
                flags.append({"code": "kept_by_text", "names": [lb.name for lb in held], "at_px": held[0].anchor,
                              "message": "a doubtful region holds a room name: reported as a room"})
        loose = still + [lb for lb in loose if not lb.name]
    # A typical room's area, the scale carve_room measures closets against.
    typical = statistics.median(r.area_px for r in detection.rooms) if detection.rooms else 0.0
    for i, room in enumerate(detection.rooms):
        names = _distinct_names(per_room.get(i, []))
        parts = None
        if len(names) >= 2 and not open_plan(names):
            # The parts of an open-plan living space are one room: their names stay together.
            groups = ["open" if lb.type in OPEN_PLAN else k for k, lb in enumerate(names)]
            parts = split_region(room.polygon, [lb.anchor for lb in names], [lb.bbox for lb in names], groups=groups)
            if parts is None:
                flags.append({"code": "merged_rooms", "names": [lb.name for lb in names],
                              "at_px": names[0].anchor, "message": "one region holds several room names"})
            else:
                flags.append({"code": "split_by_text", "names": [lb.name for lb in names],
                              "at_px": names[0].anchor, "message": "region split between its room names"})
        if parts is None and len(names) == 1 and names[0].type in CARVE_TYPES and gray is not None:
            parts = carve_room(gray, room.polygon, names[0].anchor,
                               [lb.bbox for lb in per_room.get(i, [])], typical_area=typical)
            if parts:
                flags.append({"code": "carved_by_text", "names": [names[0].name], "at_px": names[0].anchor,
                              "message": "the room around a name was parted from what lies beyond its walls"})
        if parts:
            items.extend((poly, area, room.confidence) for poly, area in parts)
        else:
            items.append((room.polygon, room.area_px, room.confidence))
    median = statistics.median([it[1] for it in items]) if items else 0.0
    for label in loose:
        if not label.name:
            continue
        found = None
        if gray is not None and median > 0:
            found = recover_room(gray, [it[0] for it in items], label.anchor, label.bbox,
                                 max_area=RECOVER_MAX_SHARE * median)
        if found is not None:
            items.append((found[0], found[1], RECOVERED_CONFIDENCE))
            flags.append({"code": "recovered_by_text", "names": [label.name], "at_px": label.anchor,
                          "message": "a room name stood outside every detected room: its room was added"})
        else:
            flags.append({"code": "missed_room", "names": [label.name], "at_px": label.anchor,
                          "message": "a room name stands outside every detected room"})
    rooms = order_and_number(items)
    return replace(detection, rooms=rooms), flags


def estimate_scale(rooms: Sequence[Room], per_room: dict[int, list[Label]]) -> dict[str, Any] | None:
    """Pixels per metre from the rooms whose dimensions are printed.

    Each such room votes twice, short side against short side and long against long: a room the
    detector joined to a closet or found short is off along one side only, so its other side
    still votes true. The scale is the median of the largest group of votes agreeing within
    :data:`SCALE_BAND`; with no two agreeing, the median of the rooms' area votes (rooms whose
    aspect ratio agrees with their printed sides)."""
    sides: list[tuple[float, int]] = []
    whole: list[float] = []
    for i, labels in per_room.items():
        dims = next((lb.dimensions for lb in labels if lb.dimensions is not None), None)
        if dims is None or len(_distinct_names(labels)) > 1:
            continue
        (_cx, _cy), (w, h), _angle = cv2.minAreaRect(np.asarray(rooms[i].polygon, np.float32))
        sides_px = sorted((w, h))
        sides_m = sorted((dims.width_m, dims.length_m))
        if min(sides_px) <= 0 or min(sides_m) <= 0:
            continue
        sides += [(sides_px[0] / sides_m[0], i), (sides_px[1] / sides_m[1], i)]
        aspect_px = sides_px[1] / sides_px[0]
        aspect_m = sides_m[1] / sides_m[0]
        if max(aspect_px, aspect_m) / min(aspect_px, aspect_m) <= ASPECT_TOLERANCE:
            whole.append(math.sqrt((sides_px[0] * sides_px[1]) / (sides_m[0] * sides_m[1])))
    if not sides:
        return None
    values = [v for v, _i in sides]
    middle = statistics.median(values)
    best = max(values, key=lambda v: (sum(abs(u / v - 1.0) <= SCALE_BAND for u in values), -abs(v / middle - 1.0)))
    group = [(u, i) for u, i in sides if abs(u / best - 1.0) <= SCALE_BAND]
    if len(group) >= 2:
        return {"px_per_m": round(statistics.median(u for u, _i in group), 3), "source": "printed",
                "rooms": len({i for _u, i in group})}
    if not whole:
        return None
    return {"px_per_m": round(statistics.median(whole), 3), "source": "printed", "rooms": len(whole)}


def _wall_angle(pts: np.ndarray) -> float:
    """The direction of a polygon's walls (radians, modulo 90°): its edges' directions,
    weighted by length, averaged on the 90°-periodic circle (a room on a plan scanned askew)."""
    d = np.diff(np.vstack([pts, pts[:1]]), axis=0)
    length = np.hypot(d[:, 0], d[:, 1])
    four = 4.0 * np.arctan2(d[:, 1], d[:, 0])
    return math.atan2(float((length * np.sin(four)).sum()), float((length * np.cos(four)).sum())) / 4.0


def _placed_rectangle(room: Room, sides_px: tuple[float, float]) -> np.ndarray:
    """The room's raster inside a rectangle of ``sides_px`` laid along its walls (either way
    round) where it covers most of the room: 1 inside the room, 0 where the room lacks it."""
    pts = np.asarray(room.polygon, np.float64)
    a = _wall_angle(pts)
    rot = np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
    p = pts @ rot.T
    p -= p.min(axis=0)
    f = NOTCH_RASTER / max(float(p.max()), *sides_px)
    best, crop = -1.0, np.zeros((2, 2), np.uint8)
    for rw, rh in (sides_px, sides_px[::-1]):
        w, h = max(2, round(rw * f)), max(2, round(rh * f))
        mask = np.zeros((int(math.ceil(p[:, 1].max() * f)) + 2 + 2 * h,
                         int(math.ceil(p[:, 0].max() * f)) + 2 + 2 * w), np.uint8)
        cv2.fillPoly(mask, [np.round(p * f + (w, h)).astype(np.int32)], 1)
        s = cv2.integral(mask)
        covered = s[h:, w:] - s[:-h, w:] - s[h:, :-w] + s[:-h, :-w]
        y, x = np.unravel_index(int(np.argmax(covered)), covered.shape)
        if covered[y, x] / (w * h) > best:
            best, crop = covered[y, x] / (w * h), mask[y:y + h, x:x + w].copy()
    return crop


def notch_share(room: Room, dims: Dimensions, ppm: float) -> float:
    """Share of the printed rectangle (``dims`` at ``ppm`` pixels per metre) that a room
    printing its bounding rectangle lacks as notches: the missing corner of an L, the bite out
    of a T or U (see :data:`NOTCH_MIN`)."""
    crop = _placed_rectangle(room, (dims.width_m * ppm, dims.length_m * ppm))
    h, w = crop.shape
    k = max(3, int(round(SLIVER * min(h, w))))
    lacking = cv2.morphologyEx(1 - crop, cv2.MORPH_OPEN, np.ones((k, k), np.uint8))
    n, labels, stats, _c = cv2.connectedComponentsWithStats(lacking, connectivity=4)
    share = 0.0
    for i, (x, y, bw, bh, area) in enumerate(stats[1:n], start=1):
        if _strip(x, y, bw, bh, h, w) or area < NOTCH_MIN * h * w:
            continue
        if area >= NOTCH_RECT * bw * bh:
            share += float(area) / (h * w)
            continue
        block = _corner_block(labels == i)
        if block is not None:
            by, bx, bh2, bw2 = block
            inside = int((labels[by:by + bh2, bx:bx + bw2] == i).sum())
            if (not _strip(bx, by, bw2, bh2, h, w) and bw2 * bh2 >= NOTCH_MIN * h * w
                    and inside >= NOTCH_RECT * bw2 * bh2):
                share += float(bw2 * bh2) / (h * w)
    return share + _cut_corners(crop)


def _strip(x: int, y: int, bw: int, bh: int, h: int, w: int) -> bool:
    """Whether a box is a strip along a whole side of an ``h`` × ``w`` rectangle."""
    return bool((bw == w and (y == 0 or y + bh == h)) or (bh == h and (x == 0 or x + bw == w)))


def _corners(h: int, w: int) -> tuple[tuple[int, int], ...]:
    return (0, 0), (0, w - 1), (h - 1, 0), (h - 1, w - 1)


def _corner_runs(part: np.ndarray, cy: int, cx: int) -> tuple[int, int]:
    """How far ``part`` runs from the corner (cy, cx) along its row and along its column."""
    row = part[cy, :: 1 if cx == 0 else -1]
    col = part[:: 1 if cy == 0 else -1, cx]
    return (len(row) if row.all() else int(np.argmin(row))), (len(col) if col.all() else int(np.argmin(col)))


def _corner_block(part: np.ndarray) -> tuple[int, int, int, int] | None:
    """The block a lacking part makes at a corner of the rectangle, (y, x, height, width): from
    the corner as far as the part runs along both sides. A notch the detector's outline frays
    (a door swing it left out, a bit of doorway) is that block with a tail, which the block
    leaves out; ``None`` when the part holds no corner."""
    h, w = part.shape
    best = None
    for cy, cx in _corners(h, w):
        if not part[cy, cx]:
            continue
        run_x, run_y = _corner_runs(part, cy, cx)
        block = (0 if cy == 0 else h - run_y, 0 if cx == 0 else w - run_x, run_y, run_x)
        if best is None or run_x * run_y > best[2] * best[3]:
            best = block
    return best


def _cut_corners(crop: np.ndarray) -> float:
    """Share of the rectangle lacking as corners cut at 45° (chamfered walls): a right triangle
    at a corner, each leg at least CUT_LEG of its side, the legs within CUT_ASPECT of each other,
    filling half its box and nearly all its convex hull (a door swing the outline left out does
    neither)."""
    h, w = crop.shape
    n, labels, stats, _c = cv2.connectedComponentsWithStats((1 - crop).astype(np.uint8), connectivity=4)
    share = 0.0
    for cy, cx in _corners(h, w):
        i = labels[cy, cx]
        if i == 0:
            continue
        part = (labels == i).astype(np.uint8)
        run_x, run_y = _corner_runs(part, cy, cx)
        _x, _y, bw, bh, area = stats[i]
        if (run_x < CUT_LEG * w or run_y < CUT_LEG * h or run_x == w or run_y == h
                or not 1 / CUT_ASPECT <= run_x / run_y <= CUT_ASPECT or bw > run_x + 2 or bh > run_y + 2):
            continue
        contours, _h = cv2.findContours(part, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        hull = cv2.contourArea(cv2.convexHull(max(contours, key=cv2.contourArea)))
        if 0.4 * run_x * run_y <= area <= 0.6 * run_x * run_y and area >= 0.93 * hull:
            share += float(area) / (h * w)
    return share


def _area(m2: float, source: str) -> dict[str, Any]:
    return {"m2": round(m2, 2), "ft2": round(m2 / M2_PER_FT2, 1), "source": source}


def _gray(image: np.ndarray) -> np.ndarray:
    img = image
    if img.dtype != np.uint8:
        img = (img / 257).astype(np.uint8) if img.dtype == np.uint16 else np.clip(img, 0, 255).astype(np.uint8)
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2GRAY if img.shape[2] == 4 else cv2.COLOR_BGR2GRAY)
    return img


def ink_share(room: Room, gray: np.ndarray, lines: Sequence[TextLine]) -> float:
    """Share of a room's floor (walls and text aside) covered by pen ink: fixtures, furniture.

    Counted on every ``step``-th pixel of the room's bounding box, ``step`` chosen so that at most
    :data:`INK_SAMPLES` pixels are looked at: a share needs no more, and a large scan's room would
    otherwise cost several bytes a pixel of temporary masks (lines on such scans are thicker
    than the step)."""
    x0, y0, x1, y1 = (int(v) for v in room.bbox_px)
    x0, y0 = max(0, x0 - 1), max(0, y0 - 1)
    x1, y1 = min(gray.shape[1], x1 + 2), min(gray.shape[0], y1 + 2)
    if x1 <= x0 or y1 <= y0:
        return 0.0
    step = max(1, math.ceil(math.sqrt((x1 - x0) * (y1 - y0) / INK_SAMPLES)))
    crop = gray[y0:y1:step, x0:x1:step]
    mask = np.zeros(crop.shape, np.uint8)
    cv2.fillPoly(mask, [np.round((np.asarray(room.polygon) - (x0, y0)) / step).astype(np.int32)], 1)
    k = max(1, round(7 / step)) | 1
    mask = cv2.erode(mask, np.ones((k, k), np.uint8))
    for ln in lines:
        a, b, c, d = (int(v) for v in ln.bbox)
        mask[max(0, (b - 2 - y0) // step) : max(0, -(-(d + 2 - y0) // step)),
             max(0, (a - 2 - x0) // step) : max(0, -(-(c + 2 - x0) // step))] = 0
    floor = cv2.countNonZero(mask)
    if not floor:
        return 0.0
    ink = cv2.compare(crop, INK_LEVEL, cv2.CMP_LT)
    cv2.bitwise_and(ink, mask * 255, dst=ink)
    return float(cv2.countNonZero(ink)) / floor


def _annotate(
    detection: Detection,
    lines: tuple[TextLine, ...],
    evidence: bool,
    image: np.ndarray | None = None,
    doubtful: Sequence[tuple[Sequence[tuple[float, float]], float, float]] = (),
) -> Detection:
    labels = group_labels(lines)
    flags: list[dict[str, Any]] = []
    gray = _gray(image) if image is not None and image.size else None
    if evidence and labels:
        detection, flags = _apply_evidence(detection, labels, doubtful, gray)
    per_room, _loose = assign(detection.rooms, labels)
    scale = estimate_scale(detection.rooms, per_room)
    ppm = scale["px_per_m"] if scale else None
    areas_px = [r.area_px for r in detection.rooms]
    median_px = statistics.median(areas_px) if areas_px else 0.0
    rooms = []
    for i, room in enumerate(detection.rooms):
        labels_here = per_room.get(i, [])
        named = _distinct_names(labels_here)
        name_label = named[0] if named else None
        dims = next((lb.dimensions for lb in labels_here if lb.dimensions is not None), None)
        printed_area = next((lb.area for lb in labels_here if lb.area is not None), None)
        if len(named) > 1:  # a merged region: its sizes belong to one of its rooms only
            dims, printed_area = None, None
        area = room_area(room, printed_area, dims, ppm)
        kind = name_label.type if name_label is not None and name_label.type else None
        if kind is None:
            ink = ink_share(room, gray, lines) if gray is not None else 0.0
            kind = unnamed_type(room, area["m2"] if area else None, median_px, ink)
        text = RoomText(
            name=" / ".join(lb.name for lb in named) if named else None,
            type=kind,
            dimensions={**dims.to_dict(), "source": "printed"} if dims is not None else None,
            area=area,
        )
        rooms.append(replace(room, text=text))
    return replace(detection, rooms=tuple(rooms), scale=scale, flags=tuple(flags))


def room_area(room: Room, printed: Area | None, dims: Dimensions | None, ppm: float | None) -> dict[str, Any] | None:
    """A room's floor area: printed, from its printed sides, or from the plan's scale.

    Listing plans print the bounding rectangle of an L-, T- or U-shaped room, so a room's area
    from its printed sides is that rectangle less the notches the room lacks in it
    (:func:`notch_share`, at the plan's scale). A printed area or printed sides that disagree
    with the scaled room by more than :data:`MISREAD` are an OCR misreading ("164m²" for
    16.4 m², "371×475" read as feet for 3.71 × 4.75 m) and give way to the scale."""
    scaled = room.area_px / (ppm * ppm) if ppm else None
    claimed = printed.m2 if printed is not None else dims.area_m2 if dims is not None else None
    if claimed is None or (scaled is not None and max(claimed, scaled) > MISREAD * min(claimed, scaled)):
        return _area(scaled, "scaled") if scaled is not None else None
    if printed is not None or dims is None or not ppm:
        return _area(claimed, "printed")
    return _area(claimed * (1.0 - notch_share(room, dims, ppm)), "printed")


def unnamed_type(room: Room, area_m2: float | None, median_area_px: float, ink: float = 0.0) -> str:
    """A type for a room without a name, from what can be told: its size and what is drawn in it."""
    if area_m2 is not None:
        small, bath_max, bath = area_m2 < CLOSET_M2, area_m2 < BATH_MAX_M2, area_m2 < BATH_M2
    elif median_area_px > 0:
        rel = room.area_px / median_area_px
        small, bath_max, bath = rel < CLOSET_SHARE, rel < 1.0, rel < BATH_SHARE
    else:
        return "unknown"
    if small:
        return "closet"
    (_c, (w, h), _a) = cv2.minAreaRect(np.asarray(room.polygon, np.float32))
    corridor = max(w, h) >= CORRIDOR * max(min(w, h), 1e-6)
    if ((ink >= BATH_INK and bath_max) or bath) and not corridor:
        return "bathroom"
    return "hall"
