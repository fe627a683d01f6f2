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
    pad = int(np.ceil(r)) + 2
    padded = cv2.copyMakeBorder(barrier, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    clearance = cv2.distanceTransform((padded == 0).astype(np.uint8), cv2.DIST_L2, 3)
    centres = (clearance > r).astype(np.uint8)
    # Disk centres connected to the padded frame's edge, from any side: a plan that nearly
    # touches two opposite page edges splits the frame, so one corner does not reach them all.
    n, labels = cv2.connectedComponents(centres, connectivity=4)
    seen = np.zeros(n, dtype=bool)
    seen[np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])] = True
    seen[0] = False
    reach = cv2.distanceTransform((~seen[labels]).astype(np.uint8), cv2.DIST_L2, 3)
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


def _edge_contact(labels: np.ndarray, i: int) -> int:
    """Pixels of component ``i`` on the page's edge rows and columns."""
    return int(
        (labels[0] == i).sum() + (labels[-1] == i).sum() + (labels[1:-1, 0] == i).sum() + (labels[1:-1, -1] == i).sum()
    )


def find_rooms(
    wall: np.ndarray,
    bridges: np.ndarray,
    *,
    outside: np.ndarray | None = None,
    min_area: float,
    max_area: float,
    simplify: float,
) -> list[RoomCandidate]:
    """Rooms from the free space left by walls, bridges/cuts (``bridges``) and the outside.

    ``min_area``/``max_area`` bound a region's pixel count; ``simplify`` is the Douglas-Peucker
    tolerance. Polygons are in working-image pixel-face coordinates; ``area`` is the polygon's.
    """
    barrier = wall | bridges
    guessed = bridges
    h0, w0 = wall.shape
    building_area = float(h0 * w0 - (int(outside.sum()) if outside is not None else 0))
    if outside is not None:
        barrier = barrier | outside
        guessed = bridges | outside
    free = (1 - barrier).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(free, connectivity=4)
    h, w = free.shape
    cands: list[tuple[int, np.ndarray, float, float, float]] = []
    for i in range(1, n):
        x, y, bw, bh, area = (int(v) for v in stats[i])
        if area < min_area or area > max_area:
            continue
        x0, y0 = max(0, x - 1), max(0, y - 1)
        x1, y1 = min(w, x + bw + 1), min(h, y + bh + 1)
        edge = 0
        if x == 0 or y == 0 or x + bw >= w or y + bh >= h:
            if outside is None:
                continue  # touches the page border: outside the building
            # A plan cropped tight to its outer wall: a room reaches the page edge through a
            # window or door in that wall. The edge contact counts as open boundary below.
            edge = _edge_contact(labels, i)
        comp = (labels[y0:y1, x0:x1] == i).astype(np.uint8)
        contours, _ = cv2.findContours(comp, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        if not contours:
            continue
        contour = max(contours, key=cv2.contourArea)
        ring = cv2.dilate(comp, _CROSS) & (1 - comp)
        ring_n = int(ring.sum()) + edge
        bridged = float((ring & guessed[y0:y1, x0:x1]).sum() + edge) / ring_n if ring_n else 0.0
        if outside is not None and ring_n:
            open_part = float((ring & outside[y0:y1, x0:x1]).sum() + edge) / ring_n
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
