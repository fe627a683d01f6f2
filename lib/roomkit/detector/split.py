"""Stage 3b: split free space at narrow necks (doorways the wall-line bridging missed).

A doorway is a neck in the free space: the space narrows to a door's width between two wider
areas. Thresholding the distance transform of the free space at half a doorway's width leaves
one *core* per room-sized area (the morphological erosion of the space by a door-wide disk).
Growing each core back by the same radius (the opening) recovers its room up to the walls but
not through a neck, so every free pixel within that radius of a core belongs to the nearest
core's room, and what no core reaches (doorway passages, corridors and closets narrower than a
door) is left as separate pieces. Free space that holds only one core is left untouched, so the
stage only cuts regions that really hold two or more room-sized areas.
"""
from __future__ import annotations

import cv2
import numpy as np


#: Necks are door-sized, so the split is computed on a grid where the neck radius is about
#: this many pixels, and the piece labels are brought back to full resolution.
GRID_RADIUS = 10.0


def split_at_necks(free: np.ndarray, neck: float, min_core_area: float) -> np.ndarray:
    """Cut lines (uint8 0/1, inside ``free``) that split free space at necks narrower than ``neck``.

    ``free`` is uint8 0/1 (4-connected components are the regions).
    """
    radius = neck / 2.0
    if radius < 1 or not free.any():
        return np.zeros_like(free)
    h, w = free.shape
    f = min(1.0, GRID_RADIUS / radius)
    if f > 0.75:
        room = _pieces(free, radius, min_core_area)
    else:
        sw, sh = max(1, round(w * f)), max(1, round(h * f))
        small = (cv2.resize(free * 255, (sw, sh), interpolation=cv2.INTER_AREA) > 127).astype(np.uint8)
        room_small = _pieces(small, radius * f, min_core_area * f * f)
        if room_small is None:
            return np.zeros_like(free)
        # Back to full resolution; free pixels that fell on a reduced wall pixel take the label
        # of a labelled neighbour (geodesic growth through free space, a few steps).
        room = cv2.resize(room_small.astype(np.uint16), (w, h), interpolation=cv2.INTER_NEAREST)
        room[free == 0] = 0
        # Each step gives every unlabelled free pixel the largest label among its 4 neighbours
        # (a 3×3 cross dilation, all pixels updated at once), computed only at the unlabelled
        # free pixels close enough to a label to receive one within the steps.
        steps = int(np.ceil(1.0 / f)) + 1
        unlabelled = cv2.compare(room, 0, cv2.CMP_EQ)
        near = cv2.dilate(cv2.bitwise_not(unlabelled), np.ones((2 * steps + 1, 2 * steps + 1), np.uint8))
        todo = cv2.bitwise_and(cv2.bitwise_and(unlabelled, near), free).view(bool)
        ys, xs = np.divmod(np.flatnonzero(todo), w)  # row-major, as cv2.findNonZero lists them
        for _ in range(steps):
            if ys.size == 0:
                break
            up, down = np.maximum(ys - 1, 0), np.minimum(ys + 1, h - 1)
            left, right = np.maximum(xs - 1, 0), np.minimum(xs + 1, w - 1)
            grown = np.maximum(np.maximum(room[up, xs], room[down, xs]), np.maximum(room[ys, left], room[ys, right]))
            room[ys, xs] = grown
            ys, xs = ys[grown == 0], xs[grown == 0]
    if room is None:
        return np.zeros_like(free)
    return label_boundaries(room, room > 0).astype(np.uint8)


def label_boundaries(labels: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Boolean mask of the pixels whose left or upper neighbour has another label, both pixels
    in ``region`` (bool): ``cut[:, 1:] |= (labels[:, 1:] != labels[:, :-1]) & region…`` and the
    same along columns, computed on the flattened arrays (NumPy is several times faster on
    contiguous data than on column-shifted 2-D views)."""
    h, w = labels.shape
    lab = np.ascontiguousarray(labels).reshape(-1)
    reg = np.ascontiguousarray(region).reshape(-1)
    cut = np.zeros(h * w, dtype=bool)
    across = (lab[1:] != lab[:-1]) & reg[1:] & reg[:-1]
    across[w - 1 :: w] = False  # a row's last pixel and the next row's first are not neighbours
    cut[1:] |= across
    cut[w:] |= (lab[w:] != lab[:-w]) & reg[w:] & reg[:-w]
    return cut.reshape(h, w)


def _pieces(free: np.ndarray, radius: float, min_core_area: float) -> np.ndarray | None:
    """Piece labels (0 = not split, 1… = pieces) of the free regions holding ≥ 2 cores."""
    none = None
    n, labels = cv2.connectedComponents(free, connectivity=4)
    dt = cv2.distanceTransform(free, cv2.DIST_L2, 5)
    cores = (dt > radius).astype(np.uint8)
    m, core_labels, stats, _ = cv2.connectedComponentsWithStats(cores, connectivity=8)
    if m <= 2:
        return none
    big = stats[:, cv2.CC_STAT_AREA] >= min_core_area
    big[0] = False
    if big.sum() < 2:
        return none
    # The free region each core lies in (all its pixels share one); count cores per region.
    owner = np.zeros(m, dtype=np.int64)
    ys, xs = np.divmod(np.flatnonzero(core_labels != 0), core_labels.shape[1])  # 2-D nonzero is slow
    first = np.full(m, -1, dtype=np.int64)
    lab_at = core_labels[ys, xs]
    # Reverse order so the first occurrence wins; any pixel of a core will do.
    first[lab_at[::-1]] = np.arange(lab_at.size - 1, -1, -1)
    valid = np.nonzero(big & (first >= 0))[0]
    owner[valid] = labels[ys[first[valid]], xs[first[valid]]]
    counts = np.bincount(owner[valid], minlength=n)
    splittable = counts >= 2
    splittable[0] = False
    if not splittable.any():
        return none
    keep = np.zeros(m, dtype=bool)
    keep[valid[splittable[owner[valid]]]] = True
    seeds = np.where(keep[core_labels], core_labels, 0).astype(np.int32)
    # Nearest kept core and the distance to it, for every pixel (Euclidean).
    dist, nearest = cv2.distanceTransformWithLabels(
        (seeds == 0).astype(np.uint8), cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL
    )
    # distanceTransformWithLabels numbers the zero pixels (the seeds) 1..k in scan order; map
    # those indices back to core labels.
    sy, sx = np.divmod(np.flatnonzero(seeds != 0), seeds.shape[1])
    index_to_core = np.zeros(int(nearest.max()) + 1, dtype=np.int32)
    index_to_core[nearest[sy, sx]] = seeds[sy, sx]
    room = index_to_core[nearest]
    region = splittable[labels]
    room[~region] = 0
    far = region & (dist > radius + 1.5)
    # Pixels no core reaches within the radius: room corners (a disk does not fill a corner)
    # and narrow spaces behind necks. Small leftovers are corners and go to the nearest
    # room; larger ones (corridors, closets narrower than a door) are pieces of their own.
    k, pieces, pstats, _ = cv2.connectedComponentsWithStats(far.astype(np.uint8), connectivity=4)
    own = pstats[:, cv2.CC_STAT_AREA] >= 0.5 * radius * radius
    own[0] = False
    room[own[pieces]] = 0
    top = int(room.max())
    # Narrow leftovers get labels of their own after the cores'.
    room = np.where(own[pieces], top + pieces, room)
    room[~region] = 0
    return room
