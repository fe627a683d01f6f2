"""Stage 3b: split free space at narrow necks (doorways the wall-line bridging missed).

A doorway is a neck in the free space: the space narrows to a door's width between two wider
areas. In the distance transform of the free space a room's interior is a plateau of large
values and the doorway a saddle of small ones. Thresholding the distance at half a doorway's
width leaves one core per room; a watershed on the distance map grows the cores back out, and
the flooding fronts meet at the necks. Free space that holds only one core is left exactly as
it was, so the stage only ever cuts, along the narrowest lines, regions that hold two or more
room-sized areas.
"""
from __future__ import annotations

import cv2
import numpy as np


def split_at_necks(free: np.ndarray, neck: float, min_core_area: float) -> np.ndarray:
    """Cut lines (uint8 0/1, inside ``free``) that split free space at necks narrower than ``neck``.

    ``free`` is uint8 0/1. Components with fewer than two cores are not cut.
    """
    none = np.zeros_like(free)
    n, labels = cv2.connectedComponents(free, connectivity=4)
    if n <= 1 or neck <= 1:
        return none
    dt = cv2.distanceTransform(free, cv2.DIST_L2, 5)
    cores = (dt > neck / 2.0).astype(np.uint8)
    m, core_labels, stats, _ = cv2.connectedComponentsWithStats(cores, connectivity=8)
    if m <= 2:
        return none
    big = stats[:, cv2.CC_STAT_AREA] >= min_core_area
    big[0] = False
    if big.sum() < 2:
        return none
    # Which free component each kept core lies in; only components with ≥ 2 cores are split.
    idx = np.nonzero(big)[0]
    ys = stats[idx, cv2.CC_STAT_TOP]
    xs = stats[idx, cv2.CC_STAT_LEFT]
    # A core's bounding-box corner may not lie on the core; find one pixel of each core.
    owner = np.zeros(m, dtype=np.int64)
    flat = core_labels.ravel()
    order = np.argsort(flat, kind="stable")
    starts = np.searchsorted(flat[order], idx)
    owner[idx] = labels.ravel()[order[starts]]
    del xs, ys
    counts = np.bincount(owner[idx], minlength=n)
    split_comps = np.nonzero(counts >= 2)[0]
    split_comps = split_comps[split_comps > 0]
    if split_comps.size == 0:
        return none
    in_split = np.zeros(n, dtype=bool)
    in_split[split_comps] = True
    region = in_split[labels]
    # Markers: 1 = everything that is not a splittable region (walls, other rooms), k+2 = cores.
    markers = np.where(region, 0, 1).astype(np.int32)
    keep_core = np.zeros(m, dtype=np.int32)
    sel = idx[in_split[owner[idx]]]
    keep_core[sel] = np.arange(2, 2 + sel.size, dtype=np.int32)
    core_mark = keep_core[core_labels]
    markers = np.where(core_mark > 0, core_mark, markers)
    scaled = np.clip(255.0 - dt * (255.0 / max(float(dt.max()), 1.0)), 0, 255).astype(np.uint8)
    cv2.watershed(cv2.merge([scaled, scaled, scaled]), markers)
    # Free pixels of a split region not claimed by a room core are the cut lines (the
    # watershed boundaries, plus a sliver along the walls claimed by the wall marker there,
    # which is removed again by closing the rooms onto the walls below).
    cuts = (region & (markers < 2)).astype(np.uint8)
    return cuts
