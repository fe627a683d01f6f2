"""Stage 3: close door and window openings along wall lines.

A doorway or a window is an interruption of a wall: two wall ends facing each other along the
same line. A directional closing of the wall mask with a line kernel fills such interruptions,
but it would also fill any space narrower than the kernel between two parallel walls (a closet,
a corridor). The two are told apart by their thickness across the closing direction: a bridge
across an opening is as thick as the wall it continues, a filled closet is as deep as the
closet. So only fills thinner than about one and a half wall thicknesses across are kept.

Two kinds of openings are bridged:

* doors: any wall-to-wall interruption up to ``door_gap`` px;
* windows and long glazed openings: interruptions between two *collinear* wall runs (wall
  segments elongated in the closing direction) up to ``window_gap`` px, accepted only where the
  opening is drawn with thin ink along most of its length (the glazing line of a window), so an
  open-plan boundary between two unrelated collinear walls stays open.

Axis-aligned walls are handled, optionally diagonal (45°) ones. The bridges are returned
separately from the walls so the room stage can tell how much of a room's boundary was guessed.
"""
from __future__ import annotations

import cv2
import numpy as np


def _line_kernel(length: int, direction: str) -> np.ndarray:
    length = max(1, int(length))
    if direction == "h":
        return np.ones((1, length), np.uint8)
    if direction == "v":
        return np.ones((length, 1), np.uint8)
    n = max(3, int(round(length / np.sqrt(2.0))))
    eye = np.eye(n, dtype=np.uint8)
    return eye if direction == "d" else eye[:, ::-1].copy()


_ACROSS = {"h": "v", "v": "h", "d": "a", "a": "d"}


def _thin_fill(closed: np.ndarray, barrier: np.ndarray, across: int, direction: str) -> np.ndarray:
    fill = closed & (1 - barrier)
    if not fill.any():
        return fill
    k = _line_kernel(across if direction in "hv" else int(across * 1.42), _ACROSS[direction])
    deep = cv2.morphologyEx(fill, cv2.MORPH_OPEN, k)
    return fill & (1 - deep)


def _elongated(wall: np.ndarray, run: int, direction: str) -> np.ndarray:
    """Wall pixels on runs at least ``run`` px long in ``direction`` (wall segments along it)."""
    return cv2.morphologyEx(wall, cv2.MORPH_OPEN, _line_kernel(run, direction))


def bridge_gaps(
    wall: np.ndarray,
    door_gap: float,
    thickness: float,
    *,
    ink: np.ndarray | None = None,
    window_gap: float = 0.0,
    diagonal: bool = False,
    min_glazing: float = 0.6,
) -> np.ndarray:
    """Bridges (uint8 0/1, disjoint from ``wall``) that close door and window openings."""
    length = int(round(door_gap))
    if length < 2 or thickness <= 0:
        return np.zeros_like(wall)
    # A bridge may be a little thicker than the wall (anti-aliasing, jambs), never much more.
    across = int(round(1.6 * thickness)) + 2
    bridges = np.zeros_like(wall)
    run = max(3, int(round(2.5 * thickness)))
    directions = ("h", "v", "d", "a") if diagonal else ("h", "v")
    grow = np.ones((3, 3), np.uint8)
    for direction in directions:
        closed = cv2.morphologyEx(wall, cv2.MORPH_CLOSE, _line_kernel(length, direction))
        fill = _thin_fill(closed, wall, across, direction)
        if not fill.any():
            continue
        if direction in "hv":
            bridges |= fill
            continue
        # Diagonally, only openings that continue a wall segment running in that direction
        # count: otherwise a 45° closing fills the corners of axis-aligned rooms.
        segs = _elongated(wall, int(run * 0.71), direction)
        n, labels = cv2.connectedComponents(fill, connectivity=8)
        touching = np.zeros(n, dtype=bool)
        touching[np.unique(labels[cv2.dilate(segs, grow) > 0])] = True
        touching[0] = False
        bridges |= touching[labels].astype(np.uint8)

    long_len = int(round(window_gap))
    if ink is not None and long_len > length:
        run = max(3, int(round(2.5 * thickness)))
        for direction in ("h", "v"):
            segs = _elongated(wall, run, direction)
            closed = cv2.morphologyEx(segs, cv2.MORPH_CLOSE, _line_kernel(long_len, direction))
            fill = _thin_fill(closed, wall | bridges, across, direction)
            if not fill.any():
                continue
            n, labels, stats, _ = cv2.connectedComponentsWithStats(fill, connectivity=8)
            # Glazing evidence: the share of the opening's length along which thin ink runs.
            axis = 0 if direction == "h" else 1
            inked = (fill & ink).astype(bool)
            keep = np.zeros(n, dtype=bool)
            for i in range(1, n):
                x, y, bw, bh, _area = stats[i]
                span = bw if axis == 0 else bh
                if span <= length:
                    continue
                sub = (labels[y : y + bh, x : x + bw] == i) & inked[y : y + bh, x : x + bw]
                covered = int(sub.any(axis=0).sum()) if axis == 0 else int(sub.any(axis=1).sum())
                keep[i] = covered >= min_glazing * span
            if keep[1:].any():
                bridges |= keep[labels].astype(np.uint8)
    return bridges


def bridge_collinear(wall: np.ndarray, gap: float, thickness: float, *, run_per_thickness: float = 2.5) -> np.ndarray:
    """Bridges (uint8 0/1, disjoint from ``wall``) across openings up to ``gap`` px between two
    wall runs that continue each other along one line (h or v).

    Wide and double doors leave a gap longer than the door gap between two jambs; when both
    jambs end straight wall runs on the same line, the opening is a doorway in that wall. Like
    :func:`bridge_gaps`, a fill must be about as thin as the wall across the line.
    """
    length = int(round(gap))
    if length < 2 or thickness <= 0:
        return np.zeros_like(wall)
    across = int(round(1.6 * thickness)) + 2
    run = max(3, int(round(run_per_thickness * thickness)))
    out = np.zeros_like(wall)
    for direction in ("h", "v"):
        segs = _elongated(wall, run, direction)
        closed = cv2.morphologyEx(segs, cv2.MORPH_CLOSE, _line_kernel(length, direction))
        out |= _thin_fill(closed, wall | out, across, direction)
    return out
