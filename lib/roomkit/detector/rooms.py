"""Stage 4: free space enclosed by walls → room polygons with a confidence.

Free space is everything that is neither wall nor bridge. Its 4-connected components are the
candidate rooms; components touching the page border are the outside, and a component that
encloses other rooms is the outside too (a plan drawn inside a frame). The rest, within the area
bounds, are rooms. A room's polygon is the outer contour of its component (furniture and text
inside it are holes, ignored), simplified with Douglas-Peucker.

Confidence says how much of the room's boundary is real wall: the pixels just outside the room
are either wall or bridged opening, and a room closed only by walls scores high while one whose
boundary was largely guessed scores low. Tiny and sliver-shaped regions are discounted too.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from shapely.geometry import Polygon

from roomkit.detector.split import label_boundaries
from roomkit.detector.walls import components4, components_with_stats, labels_of


@dataclass(frozen=True)
class RoomCandidate:
    polygon: np.ndarray  # N×2 float, working-image px
    area: float  # px² at working resolution
    confidence: float
    bridged_fraction: float


#: Rooms under SIZE_DOUBTFUL of the building's area get no confidence from their size, rooms
#: over SIZE_SURE get full confidence from it (log scale in between).
SIZE_DOUBTFUL = 0.002
SIZE_SURE = 0.06
#: Candidates whose boundary is more than this share "outside" are exterior notches.
MAX_OPEN_FRACTION = 0.3
#: Candidates from which this share of straight lines in one direction (left, right, up or down)
#: reach the page border without meeting a wall are open to the outside on that side: a courtyard,
#: a notch of the footprint, the strip between a building and its title or dimension lines.
MAX_ESCAPE_FRACTION = 0.85
#: Candidates with more than this share of their pixels seeing the page border both ways along
#: a row or a column lie between two buildings (floors drawn side by side).
MAX_THROUGH_FRACTION = 0.65
#: Candidates with more than this share of their pixels outside the bounding box of the
#: building's wall structure lie beside the building: the strip closed off between an outer
#: wall and a bold title, legend or dimension line that the gap stage bridged to it.
MAX_BEYOND_BUILDING = 0.5

#: Candidates with at least this share of their boundary on a closet front (a recess closed
#: along its side walls' ends, with its panels drawn), or that lie mostly in a recess closed by
#: a door, are closets, at least this confident.
CLOSET_FRONT_SHARE = 0.15
CLOSET_INSIDE = 0.6
CLOSET_CONFIDENCE = 0.6
#: A region whose outline fills at least RECT_FILL of its minimum bounding rectangle, not a
#: sliver (sides at least RECT_ASPECT apart) and at least ``rect_width`` across, is a room drawn
#: as one even where part of its boundary was guessed: pieces cut off a room by a bridge or a
#: stray line are L-shaped, slivers or small. Its confidence is raised from RECT_DOUBT to
#: RECT_CONFIDENCE.
RECT_FILL = 0.9
RECT_ASPECT = 0.4
RECT_DOUBT = 0.3
RECT_CONFIDENCE = 0.55

_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))


def _pixel_faces(centres: np.ndarray) -> np.ndarray:
    """Outline through boundary pixel centres → outline along the pixels' outer faces.

    Pixel (i, j) covers [i, i+1) × [j, j+1): the contour runs through centres (i + 0.5), the
    region's true edge lies half a pixel further out. Offsetting by half a pixel with mitred
    corners puts a rectangle of pixel columns 10…49 at x = 10…50, as the ground truth has it.
    """
    ring = centres + 0.5
    poly = Polygon(ring)
    if not poly.is_valid:
        poly = poly.buffer(0)
    grown = poly.buffer(0.5, join_style="mitre", mitre_limit=3.0)
    if grown.is_empty:
        return ring
    if grown.geom_type != "Polygon":
        grown = max(grown.geoms, key=lambda g: g.area)
    coords = np.asarray(grown.exterior.coords, dtype=np.float64)[:-1]
    return coords if len(coords) >= 3 else ring


def _span(comp: np.ndarray) -> float:
    """How wide a region (uint8 0/1) is: the diameter of the largest disk inside it."""
    return 2.0 * float(cv2.distanceTransform(comp, cv2.DIST_L2, 3).max())


def _confidence(area: float, bridged: float, solidity: float, building_area: float) -> float:
    """How sure the detector is that this region is one whole room, in [0, 1].

    Two things make a region doubtful: its boundary was guessed rather than drawn (bridged
    openings, neck cuts, the footprint's closure: ``bridged`` is that share of the boundary),
    and it is tiny next to the building (pockets beside door jambs, gaps in wall junctions,
    slivers of a room cut off by a stray line). Sliver shapes (low solidity) are discounted.
    """
    closure = float(np.clip(1.0 - 2.0 * bridged, 0.0, 1.0))
    rel = area / max(building_area, 1.0)
    size = float(np.clip(np.log10(max(rel, 1e-9) / SIZE_DOUBTFUL) / np.log10(SIZE_SURE / SIZE_DOUBTFUL), 0.0, 1.0))
    shape = float(np.clip(0.4 + solidity, 0.0, 1.0))
    # Size weighs more than closure: on real plans a small region is far more often a jamb
    # pocket or sliver than a closet, while a bridged room is usually still a room.
    conf = (0.1 + 0.3 * closure + 0.6 * size) * shape
    return float(np.clip(conf, 0.01, 0.99))


def _outside_exact(barrier: np.ndarray, r: float) -> np.ndarray:
    # A padding ring of disk centres around the page, whatever touches its edge (bridges,
    # frames, a plan cropped tight), so the disk can roll in from every side. The ring only needs
    # to lie beyond the radius in the chamfer metric of the distance transforms (DIST_L2 3×3: at
    # least 0.955 per step): a wider pad changes nothing inside the page and costs time.
    pad = min(int(np.ceil(2.0 * r)) + 2, int(np.ceil(r / 0.95)) + 2)
    padded = cv2.copyMakeBorder(barrier, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    clearance = cv2.distanceTransform((padded == 0).astype(np.uint8), cv2.DIST_L2, 3)
    centres = (clearance > r).astype(np.uint8)
    h, w = centres.shape
    mask = np.zeros((h + 2, w + 2), np.uint8)
    cv2.floodFill(centres, mask, (0, 0), 2, flags=4)
    reach = cv2.distanceTransform((centres != 2).astype(np.uint8), cv2.DIST_L2, 3)
    return ((reach <= r)[pad:-pad, pad:-pad] & (barrier == 0)).astype(np.uint8)


def exterior(barrier: np.ndarray, max_opening: float) -> np.ndarray:
    """Mask (0/1) of the space outside the building's footprint.

    A disk wider than any opening left in the outer wall (a door or window the gap stage did
    not bridge) rolls in from beyond the page: the outside is every pixel such a disk can
    cover. Disk centres are the free pixels farther than the radius from any wall; only those
    connected to the page border count, so the disk never squeezes through an opening, however
    thin the wall. Cost is two distance transforms, independent of the radius.

    The disk is large, so the mask is computed on a reduced grid (a reduced pixel is wall if
    any of its pixels is) and brought back to full resolution by growing it geodesically
    through free space up to the walls, which it therefore meets exactly.
    """
    if not barrier.any():
        return np.ones_like(barrier)
    r = max(1.0, max_opening / 2.0)
    h, w = barrier.shape
    f = min(1.0, 600.0 / max(h, w))
    if f > 0.7:
        return _outside_exact(barrier, r)
    sw, sh = max(1, int(w * f)), max(1, int(h * f))
    small = (cv2.resize(barrier * 255, (sw, sh), interpolation=cv2.INTER_AREA) > 0).astype(np.uint8)
    out_small = _outside_exact(small, r * f)
    # A reduced pixel that is outside covers only free full-resolution pixels.
    outside = cv2.resize(out_small, (w, h), interpolation=cv2.INTER_NEAREST) & (barrier == 0)
    free = (barrier == 0).astype(np.uint8)
    cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    for _ in range(int(np.ceil(1.0 / f)) + 1):
        outside = cv2.dilate(outside, cross) & free
    return outside


def _first_barrier(barrier: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per column the first and last barrier row, per row the first and last barrier column
    (h or -1, w or -1 where there is none)."""
    h, w = barrier.shape
    # Scans along contiguous rows only (columns via the transpose, backwards via flips): NumPy's
    # argmax across rows or on reversed views is several times slower.
    b = (barrier > 0).view(np.uint8)
    bt = cv2.transpose(b)
    any_col = bt.view(bool).any(axis=1)
    any_row = b.view(bool).any(axis=1)
    top = np.where(any_col, np.argmax(bt.view(bool), axis=1), h)
    bottom = np.where(any_col, h - 1 - np.argmax(cv2.flip(bt, 1).view(bool), axis=1), -1)
    left = np.where(any_row, np.argmax(b.view(bool), axis=1), w)
    right = np.where(any_row, w - 1 - np.argmax(cv2.flip(b, 1).view(bool), axis=1), -1)
    return top, bottom, left, right


def _escape(comp: np.ndarray, x0: int, y0: int, ends: tuple[np.ndarray, ...]) -> int:
    """The most pixels of ``comp`` (a crop at x0, y0) that see the page border in one axis
    direction: no barrier pixel below them in their column, or above, left or right."""
    top, bottom, left, right = ends
    ch, cw = comp.shape
    on = comp > 0
    # Per column (row), the crop rows (columns) that see the border start or end at a limit;
    # only the band up to the farthest limit is scanned (none at all for a room inside the
    # building, whose every column and row meets a wall first).
    best = 0
    k = np.clip(top[x0 : x0 + cw] - y0, 0, ch)  # rows < k see the top border
    m = int(k.max())
    if m > 0:
        best = max(best, np.count_nonzero(on[:m] & (np.arange(m)[:, None] < k[None, :])))
    k = np.clip(bottom[x0 : x0 + cw] - y0 + 1, 0, ch)  # rows >= k see the bottom border
    m = int(k.min())
    if m < ch:
        best = max(best, np.count_nonzero(on[m:] & (np.arange(m, ch)[:, None] >= k[None, :])))
    k = np.clip(left[y0 : y0 + ch] - x0, 0, cw)  # columns < k see the left border
    m = int(k.max())
    if m > 0:
        best = max(best, np.count_nonzero(on[:, :m] & (np.arange(m)[None, :] < k[:, None])))
    k = np.clip(right[y0 : y0 + ch] - x0 + 1, 0, cw)  # columns >= k see the right border
    m = int(k.min())
    if m < cw:
        best = max(best, np.count_nonzero(on[:, m:] & (np.arange(m, cw)[None, :] >= k[:, None])))
    return best


def _through(comp: np.ndarray, x0: int, y0: int, ends: tuple[np.ndarray, ...]) -> int:
    """Pixels of ``comp`` (a crop at x0, y0) that see the page border both ways along a column
    or a row: space running between two buildings, not a room."""
    top, bottom, left, right = ends
    ch, cw = comp.shape
    rows = np.arange(y0, y0 + ch)[:, None]
    cols = np.arange(x0, x0 + cw)[None, :]
    vertical = (rows < top[None, x0 : x0 + cw]) & (rows > bottom[None, x0 : x0 + cw])
    horizontal = (cols < left[y0 : y0 + ch, None]) & (cols > right[y0 : y0 + ch, None])
    return int(((comp > 0) & (vertical | horizontal)).sum())


def _beyond(comp: np.ndarray, x0: int, y0: int, box: tuple[int, int, int, int]) -> int:
    """Pixels of ``comp`` (a crop at x0, y0) outside ``box`` (x0, y0, x1, y1, ends exclusive)."""
    bx0, by0, bx1, by1 = box
    ch, cw = comp.shape
    inside = comp[max(0, by0 - y0) : max(0, min(ch, by1 - y0)), max(0, bx0 - x0) : max(0, min(cw, bx1 - x0))]
    return cv2.countNonZero(comp) - (cv2.countNonZero(inside) if inside.size else 0)


def find_rooms(
    wall: np.ndarray,
    bridges: np.ndarray,
    *,
    outside: np.ndarray | None = None,
    fronts: np.ndarray | None = None,
    closets: np.ndarray | None = None,
    min_area: float,
    max_area: float,
    simplify: float,
    building_box: tuple[int, int, int, int] | None = None,
    beyond_width: float = 0.0,
    rect_width: float = float("inf"),
) -> list[RoomCandidate]:
    """Rooms from the free space left by walls, bridges/cuts (``bridges``) and the outside.

    ``min_area``/``max_area`` bound a region's pixel count; ``simplify`` is the Douglas-Peucker
    tolerance. Polygons are in working-image pixel-face coordinates; ``area`` is the polygon's.
    ``fronts``: closet fronts (barrier, not counted as guessed; their rooms are closets);
    ``closets``: recesses known for closets (see ``gaps.close_recesses``).
    ``building_box`` (x0, y0, x1, y1, exclusive ends): the bounding box of the building's wall
    structure; a region lying mostly beyond it (``MAX_BEYOND_BUILDING``) and narrower than
    ``beyond_width`` px is not a room. ``rect_width``: a clean rectangle at least this many px
    across whose confidence is between ``RECT_DOUBT`` and ``RECT_CONFIDENCE`` gets the latter.
    """
    barrier = wall | bridges
    guessed = bridges
    if fronts is not None:
        barrier = barrier | fronts
    h0, w0 = wall.shape
    building_area = float(h0 * w0 - (cv2.countNonZero(outside) if outside is not None else 0))
    if outside is not None:
        barrier = barrier | outside
        guessed = bridges | outside
    free = (1 - barrier).astype(np.uint8)
    n, labels, stats, _ = components4(free)
    h, w = free.shape
    ends = _first_barrier(wall | bridges)
    cands: list[tuple[int, np.ndarray, float, float, float]] = []
    for i in range(1, n):
        x, y, bw, bh, area = (int(v) for v in stats[i])
        if area < min_area or area > max_area:
            continue
        if x == 0 or y == 0 or x + bw >= w or y + bh >= h:
            continue  # touches the page border: outside the building
        x0, y0 = max(0, x - 1), max(0, y - 1)
        x1, y1 = min(w, x + bw + 1), min(h, y + bh + 1)
        comp = (labels[y0:y1, x0:x1] == i).view(np.uint8)
        if (
            building_box is not None
            and _beyond(comp, x0, y0, building_box) > MAX_BEYOND_BUILDING * area
            and _span(comp) < beyond_width
        ):
            continue  # between the building and a title, legend or dimension line drawn beside it
        if _escape(comp, x0, y0, ends) > MAX_ESCAPE_FRACTION * area:
            continue  # open to the outside along one whole side
        if _through(comp, x0, y0, ends) > MAX_THROUGH_FRACTION * area:
            continue  # open on two opposite sides: between two buildings (floors drawn apart)
        contours, _ = cv2.findContours(comp, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        if not contours:
            continue
        contour = max(contours, key=cv2.contourArea)
        ring = cv2.dilate(comp, _CROSS) & (1 - comp)
        ring_n = cv2.countNonZero(ring)  # masks here are 0/1: counts are sums
        bridged = float(cv2.countNonZero(ring & guessed[y0:y1, x0:x1])) / ring_n if ring_n else 0.0
        if outside is not None and ring_n:
            open_part = float(cv2.countNonZero(ring & outside[y0:y1, x0:x1])) / ring_n
            if open_part > MAX_OPEN_FRACTION:
                continue  # mostly bounded by the footprint's closure: a courtyard or notch
        outer_area = float(cv2.contourArea(contour))
        hull_area = float(cv2.contourArea(cv2.convexHull(contour)))
        solidity = outer_area / hull_area if hull_area > 0 else 0.0
        poly = cv2.approxPolyDP(contour, simplify, True) if simplify > 0 else contour
        if len(poly) < 3 or cv2.contourArea(poly) < 1.0:
            poly = contour
        if len(poly) < 3 or outer_area < 1.0:
            continue  # a one-pixel-wide sliver has no interior
        pts = _pixel_faces(poly.reshape(-1, 2).astype(np.float64) + np.array([x0, y0], dtype=np.float64))
        conf = _confidence(float(area), bridged, solidity, building_area)
        # A closet: walls on three sides and a drawn front or door (see gaps.close_recesses).
        fronted = fronts is not None and ring_n and (ring & fronts[y0:y1, x0:x1]).sum() >= CLOSET_FRONT_SHARE * ring_n
        if fronted or (closets is not None and (comp & closets[y0:y1, x0:x1]).sum() >= CLOSET_INSIDE * area):
            conf = max(conf, CLOSET_CONFIDENCE * float(np.clip(0.4 + solidity, 0.0, 1.0)))
        if RECT_DOUBT <= conf < RECT_CONFIDENCE:
            (_cx, _cy), (rw, rh), _angle = cv2.minAreaRect(contour)
            if (
                outer_area >= RECT_FILL * rw * rh
                and min(rw, rh) >= RECT_ASPECT * max(rw, rh)
                and _span(comp) >= rect_width
            ):
                conf = RECT_CONFIDENCE
        poly_area = float(abs(cv2.contourArea(pts.astype(np.float32).reshape(-1, 1, 2))))
        cands.append((i, pts, poly_area, conf, bridged))

    # A candidate whose outline encloses other candidates with more area than its own is the
    # outside of a plan drawn inside a frame (a ring around the building), not a room.
    rooms: list[RoomCandidate] = []
    for j, (i, pts, area, conf, bridged) in enumerate(cands):
        contour = pts.astype(np.float32).reshape(-1, 1, 2)
        enclosed = 0.0
        for k, (_, other, other_area, *_rest) in enumerate(cands):
            if k != j and other_area < area * 4:
                px, py = float(other[0][0]), float(other[0][1])
                if cv2.pointPolygonTest(contour, (px, py), False) > 0:
                    enclosed += other_area
        if enclosed > area:
            continue
        rooms.append(RoomCandidate(polygon=pts, area=area, confidence=conf, bridged_fraction=bridged))
    return rooms


def split_by_ink(
    free: np.ndarray, ink: np.ndarray, barrier: np.ndarray, min_piece: float, min_contact: float
) -> np.ndarray:
    """Cut lines (uint8 0/1, inside ``free``) where thin ink divides a region into rooms.

    A doorway left open by the wall stages is usually still closed on the drawing by the door's
    symbol (the leaf and its swing arc), a sliding panel or the jamb lines. Free space is cut by
    all ink (pen lines included); a region that falls apart into two or more *pieces* that are
    room-sized (at least ``min_piece`` px) and bounded by walls along at least ``min_contact``
    px is split between them, every pixel going to the nearest piece. Pieces enclosed by ink
    alone (furniture, text) or small (door swings, jamb pockets) never count.
    """
    out = np.zeros_like(free)
    # Work on the building's bounding box only (the margins hold no free space).
    if not cv2.countNonZero(free):
        return out
    bx, by, bw_, bh_ = cv2.boundingRect(free)  # of the nonzero pixels (no point list needed)
    x0, y0 = max(0, bx - 2), max(0, by - 2)
    x1, y1 = min(free.shape[1], bx + bw_ + 2), min(free.shape[0], by + bh_ + 2)
    out[y0:y1, x0:x1] = _split_by_ink(
        free[y0:y1, x0:x1], ink[y0:y1, x0:x1], barrier[y0:y1, x0:x1], min_piece, min_contact
    )
    return out


def _split_by_ink(
    free: np.ndarray, ink: np.ndarray, barrier: np.ndarray, min_piece: float, min_contact: float
) -> np.ndarray:
    out = np.zeros_like(free)
    if not cv2.countNonZero(free):
        return out
    open_ = free & (1 - cv2.dilate(ink, np.ones((3, 3), np.uint8)))
    # Labels only (OpenCV's per-component stats cost several times the labelling): piece areas
    # come from a histogram of the labels, and each piece's region from its wall-contact pixels.
    m, pieces = labels_of(open_, 4)
    if m <= 2:
        return out
    near_wall = cv2.dilate(barrier, np.ones((5, 5), np.uint8)) > 0
    touching = near_wall & (open_ > 0)
    at = pieces[touching]
    contact = np.bincount(at, minlength=m)
    big = (_label_areas(pieces, m) >= min_piece) & (contact >= min_contact)
    big[0] = False
    idx = np.nonzero(big)[0]
    if idx.size < 2:
        return out
    n, regions = labels_of(free, 4)
    # The region of each big piece (all its pixels share one): read at its contact pixels.
    owner = np.zeros(m, dtype=np.int64)
    owner[at] = regions[touching]
    lone = idx[contact[idx] == 0]  # big pieces without contact (only when min_contact <= 0)
    for k in lone:
        ys, xs = np.nonzero(pieces == k)
        owner[k] = int(regions[ys[0], xs[0]])
    counts = np.bincount(owner[idx], minlength=n)
    for r in np.nonzero(counts >= 2)[0]:
        x, y, bw, bh = cv2.boundingRect(cv2.compare(regions, int(r), cv2.CMP_EQ))
        reg = regions[y : y + bh, x : x + bw] == r
        pc = pieces[y : y + bh, x : x + bw]
        keep = np.isin(pc, idx[owner[idx] == r]) & reg
        seeds = np.where(keep, pc, 0).astype(np.int32)
        _dist, nearest = cv2.distanceTransformWithLabels(
            (seeds == 0).astype(np.uint8), cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL
        )
        sy, sx = np.divmod(np.flatnonzero(seeds != 0), seeds.shape[1])
        lut = np.zeros(int(nearest.max()) + 1, dtype=np.int32)
        lut[nearest[sy, sx]] = seeds[sy, sx]
        lab = np.where(reg, lut[nearest], 0)
        cut = label_boundaries(lab, reg)
        out[y : y + bh, x : x + bw] |= cut.astype(np.uint8)
    return out


def _label_areas(labels: np.ndarray, n: int) -> np.ndarray:
    """Pixel count of every label 0…n-1 (``CC_STAT_AREA``), as int64."""
    if labels.dtype == np.uint16 and labels.size < 1 << 24:  # float32 bins count exactly
        return cv2.calcHist([labels], [0], None, [n], [0, n]).ravel().astype(np.int64)
    return np.bincount(labels.ravel(), minlength=n)


#: A region whose boundary runs along guessed closings (bridges, neck and ink cuts) shared with
#: one neighbour for at least this share of its length, where the plan draws neither a line
#: along the closing nor a door swinging through it, is a lobe of that neighbour, not a room of
#: its own: a kitchen or dining bay cut off an open plan at stub walls, a corridor cut across
#: into segments, a fixture's open end. Rooms are entered through doors, which plans draw.
LOBE_SHARE = 0.1
#: Closings with ink (thin pen lines or broken wall pieces) within half a wall's thickness
#: along at least this share of their length are drawn (a partition drawn as a line, a glazed
#: screen, folding doors): what they close stays closed, and so do other closings between the
#: same two regions.
LOBE_INKED = 0.5
#: Closings beside which at least this share of a door's swing arc is drawn are doorways.
LOBE_SWING = 0.6


def open_lobes(
    wall: np.ndarray,
    guessed: np.ndarray,
    *,
    fronts: np.ndarray | None = None,
    closets: np.ndarray | None = None,
    outside: np.ndarray | None = None,
    ink: np.ndarray,
    thickness: float = 1.0,
) -> np.ndarray:
    """Guessed closings (uint8 0/1, a subset of ``guessed``) to reopen: those between a lobe and
    the region it is a lobe of (see ``LOBE_SHARE``).

    ``wall``: walls and drawn doorways; ``guessed``: bridges and cuts (the closings the room
    stage counts as guessed); ``fronts``/``closets``: closet fronts and closet recesses (see
    ``gaps.close_recesses``): closets keep their closings; ``outside``: beyond the footprint
    (closings facing it are windows and entrances); ``ink``: pen ink (uint8 0/1; walls are
    left out); ``thickness``: the walls' (px). A closing component is reopened only when it
    separates exactly two regions, the lobe and one no smaller, neither of them open to the
    page border.
    """
    out = np.zeros_like(guessed)
    if not guessed.any():
        return out
    # Work on the box of the building's inside (all beyond it is wall or outside).
    inside = (1 - (wall if outside is None else wall | outside)).astype(np.uint8)
    bx, by, bw_, bh_ = cv2.boundingRect(inside)
    if bw_ == 0 or bh_ == 0:
        return out
    pad = 2 * int(np.ceil(thickness)) + 4
    h0, w0 = wall.shape
    x0, y0 = max(0, bx - pad), max(0, by - pad)
    x1, y1 = min(w0, bx + bw_ + pad), min(h0, by + bh_ + pad)
    crop = (slice(y0, y1), slice(x0, x1))
    ends: list = []

    def page_ends() -> tuple[np.ndarray, ...]:
        if not ends:
            ends.extend(_first_barrier(wall | guessed))
        return tuple(ends)

    out[crop] = _open_lobes(
        wall[crop],
        guessed[crop],
        None if fronts is None else fronts[crop],
        None if closets is None else closets[crop],
        None if outside is None else outside[crop],
        ink[crop],
        thickness,
        (x0, y0, w0, h0),
        page_ends,
    )
    return out


def _open_lobes(
    wall: np.ndarray,
    guessed: np.ndarray,
    fronts: np.ndarray | None,
    closets: np.ndarray | None,
    outside: np.ndarray | None,
    ink: np.ndarray,
    thickness: float,
    page: tuple[int, int, int, int],
    page_ends,
) -> np.ndarray:
    """:func:`open_lobes` on a crop at (x0, y0) of a w0 × h0 page (``page``); ``page_ends``:
    the page's ``_first_barrier`` of walls and closings, on demand."""
    out = np.zeros_like(guessed)
    barrier = wall if outside is None else wall | outside
    block = barrier | guessed
    if fronts is not None:
        block = block | fronts
    free = (1 - block).astype(np.uint8)
    n, labels, stats, _ = components4(free)
    if n <= 2:
        return out
    gn, glab, gstats, _ = components_with_stats(guessed, 8)
    if gn <= 1:
        return out
    # Boundary pixels of every region, and the closing component each one touches.
    edge = (free > 0) & (cv2.erode(free, _CROSS, borderValue=0) == 0)
    near = cv2.dilate(glab if glab.dtype == np.uint16 else glab.astype(np.float32), _CROSS)
    at = edge & (near > 0)
    edge_n = np.bincount(labels[edge], minlength=n)
    pair_l, pair_c = labels[at].astype(np.int64), near[at].astype(np.int64)
    if pair_l.size == 0:
        return out
    # Regions each closing component touches: keep the components between exactly two.
    key = np.unique(pair_c * n + pair_l)
    kc, kl = key // n, key % n
    per_comp = np.bincount(kc, minlength=gn)
    two = per_comp == 2
    if outside is not None and outside.any():
        # Closings on the footprint's edge (windows, entrance doors) face the outside.
        two[np.unique(glab[(cv2.dilate(outside, _CROSS) > 0) & (glab > 0)])] = False
        two[0] = False
    drawn = np.zeros(gn, dtype=bool)
    if two.any():
        k = 2 * int(np.ceil(thickness / 2.0)) + 1
        hh, ww = guessed.shape
        for c in np.nonzero(two)[0]:
            x, y, bw, bh = (int(v) for v in gstats[c, :4])
            # A window around the closing that holds every swing tried for it.
            m = max(bw, bh) + k
            wx0, wy0 = max(0, x - m), max(0, y - m)
            wx1, wy1 = min(ww, x + bw + m), min(hh, y + bh + m)
            w_wall = wall[wy0:wy1, wx0:wx1]
            w_ink = ink[wy0:wy1, wx0:wx1] & (1 - w_wall)
            lx, ly = x - wx0, y - wy0
            # Closings drawn along in ink close what the plan closes (see LOBE_INKED).
            near_ink = cv2.dilate(w_ink | w_wall, np.ones((k, k), np.uint8))[ly : ly + bh, lx : lx + bw]
            sub = (glab[y : y + bh, x : x + bw] == c) & (near_ink > 0)
            covered = int(sub.any(axis=0).sum()) if bw >= bh else int(sub.any(axis=1).sum())
            if covered >= LOBE_INKED * max(bw, bh):
                two[c] = False
                drawn[c] = True
            # Doorways: a door's swing drawn beside the closing (arcs are thin: matched within 2 px).
            elif _swing(cv2.dilate(w_ink, np.ones((5, 5), np.uint8)), lx, ly, bw, bh) >= LOBE_SWING:
                two[c] = False
                drawn[c] = True
    # Regions a drawn closing separates are kept apart along all their closings.
    sides = kl[drawn[kc]].reshape(-1, 2).tolist()  # two regions per drawn closing, in order
    apart = {(a, b) for a, b in sides} | {(b, a) for a, b in sides}
    sel = two[kc]
    kc, kl = kc[sel], kl[sel]
    other = {}
    for c, l in zip(kc.tolist(), kl.tolist()):
        other.setdefault(c, []).append(l)
    # Boundary pixels of region l along component c.
    cnt = {}
    m2 = two[pair_c]
    for c, l in zip(pair_c[m2].tolist(), pair_l[m2].tolist()):
        cnt[(c, l)] = cnt.get((c, l), 0) + 1
    along: dict[tuple[int, int], int] = {}  # (lobe, neighbour) -> boundary pixels
    comps: dict[tuple[int, int], list[int]] = {}
    for c, (a, b) in other.items():
        for x, y in ((a, b), (b, a)):
            along[(x, y)] = along.get((x, y), 0) + cnt.get((c, x), 0)
            comps.setdefault((x, y), []).append(c)
    px0, py0, w, h = page
    areas = stats[:, cv2.CC_STAT_AREA]
    sx, sy = stats[:, 0] + px0, stats[:, 1] + py0
    border = (sx == 0) | (sy == 0) | (sx + stats[:, 2] >= w) | (sy + stats[:, 3] >= h)
    front_n = None
    if fronts is not None and fronts.any():
        fr_near = cv2.dilate(fronts, _CROSS) > 0
        front_n = np.bincount(labels[edge & fr_near], minlength=n)
    closet_n = None
    if closets is not None and closets.any():
        closet_n = np.bincount(labels[(closets > 0) & (free > 0)], minlength=n)
    reopen = np.zeros(gn, dtype=bool)
    exterior_: dict[int, bool] = {}

    def beyond(i: int) -> bool:
        # Free space open to the page border (a pocket outside the footprint) is no room.
        if i not in exterior_:
            ends = page_ends()
            x, y, bw, bh, area = (int(v) for v in stats[i])
            x0, y0 = max(0, x - 1), max(0, y - 1)
            comp = (labels[y0 : y + bh + 1, x0 : x + bw + 1] == i).view(np.uint8)
            exterior_[i] = (
                _escape(comp, x0 + px0, y0 + py0, ends) > MAX_ESCAPE_FRACTION * area
                or _through(comp, x0 + px0, y0 + py0, ends) > MAX_THROUGH_FRACTION * area
            )
        return exterior_[i]

    best: dict[int, tuple[int, int]] = {}
    for (a, b), k in along.items():
        if k > best.get(a, (0, -1))[0]:
            best[a] = (k, b)
    for a, (k, b) in best.items():
        if (a, b) in apart or k < LOBE_SHARE * edge_n[a] or areas[b] < areas[a] or border[a] or border[b]:
            continue
        if front_n is not None and front_n[a] >= CLOSET_FRONT_SHARE * edge_n[a]:
            continue  # a closet behind its front
        if closet_n is not None and closet_n[a] >= CLOSET_INSIDE * areas[a]:
            continue  # a closet behind its door
        if beyond(a) or beyond(b):
            continue
        reopen[comps[(a, b)]] = True
    if reopen.any():
        out = reopen[glab].astype(np.uint8) & guessed
    return out


_SWING_ANGLES = np.radians(np.linspace(12.0, 78.0, 30))
SWING_INSETS = (0.0, 0.1, 0.2)


def _swing_templates() -> tuple[np.ndarray, ...]:
    """Every hinge (end, inset, face), radius and side tried by :func:`_swing`, as arrays over
    (arc, point): the hinge's position along the closing and across it in units of its span
    and thickness, and the arc's points relative to the hinge in units of its span (along,
    across)."""
    along0, across0, du, dv = [], [], [], []
    cos, sin = np.cos(_SWING_ANGLES), np.sin(_SWING_ANGLES)
    for end in (0, 1):
        toward = 1 - 2 * end  # +1: the arc sweeps towards the far end
        for inset in SWING_INSETS:
            for far in SWING_INSETS:
                opening = 1.0 - inset - far
                for radius in (opening, opening / 2.0):
                    for side in (-1, 1):
                        for face in (0.5, 0.5 + 0.5 * side):
                            along0.append(end + toward * inset)
                            across0.append(face)
                            du.append(toward * radius * cos)
                            dv.append(side * radius * sin)
    return np.array(along0)[:, None], np.array(across0)[:, None], np.array(du), np.array(dv)


_SWING = _swing_templates()


def _swing(pen: np.ndarray, x: int, y: int, bw: int, bh: int) -> float:
    """How much of a door's swing arc is drawn beside a closing (bounding box x, y, bw, bh):
    the largest share of points on a quarter circle inked in ``pen`` (0/1), over arcs hinged
    near either end (on the wall's axis or at the jamb's corner on the swing's side; the
    closing may run on along the wall faces beyond the jambs, as neck cuts do, so hinges and
    far jambs are tried inset from its ends), with the opening as radius (single doors) or half
    of it (double doors), swinging to either side."""
    h, w = pen.shape
    along0, across0, du, dv = _SWING
    if bw >= bh:  # along x
        px = x + along0 * bw + du * bw
        py = y + across0 * bh + dv * bw
    else:
        px = x + across0 * bw + dv * bh
        py = y + along0 * bh + du * bh
    ix = np.clip(np.rint(px).astype(np.int64), 0, w - 1)
    iy = np.clip(np.rint(py).astype(np.int64), 0, h - 1)
    return float(pen[iy, ix].mean(axis=1).max())
