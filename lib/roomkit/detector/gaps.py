"""Stage 3: close door and window openings along wall lines.

A doorway is an interruption of a wall: two wall ends facing each other along the same line, a
door-width apart. A directional closing of the wall mask with a line kernel of length
``door_gap`` fills every such interruption, but it would also fill any space narrower than
``door_gap`` between two parallel walls (a closet, a corridor). The two are told apart by their
thickness across the closing direction: a bridge across a doorway is as thick as the wall it
continues, a filled closet is as deep as the closet. So only fills thinner than about one and a
half wall thicknesses across the closing direction are kept. Axis-aligned and diagonal (45°)
walls are handled; the bridges are returned separately so that the room stage can tell how much
of a room's boundary was guessed.
"""
from __future__ import annotations

import cv2
import numpy as np


def _line_kernel(length: int, direction: str) -> np.ndarray:
    if direction == "h":
        return np.ones((1, length), np.uint8)
    if direction == "v":
        return np.ones((length, 1), np.uint8)
    n = max(3, int(round(length / np.sqrt(2.0))))
    eye = np.eye(n, dtype=np.uint8)
    return eye if direction == "d" else eye[:, ::-1].copy()


_ACROSS = {"h": "v", "v": "h", "d": "a", "a": "d"}


def bridge_gaps(wall: np.ndarray, door_gap: float, thickness: float, *, diagonal: bool = False) -> np.ndarray:
    """Bridges (uint8 0/1, disjoint from ``wall``) that close openings up to ``door_gap`` px."""
    length = int(round(door_gap))
    if length < 2 or thickness <= 0:
        return np.zeros_like(wall)
    # A bridge may be a little thicker than the wall (anti-aliasing, jambs), never much more.
    across = int(round(1.6 * thickness)) + 2
    bridges = np.zeros_like(wall)
    inv_wall = 1 - wall
    directions = ("h", "v", "d", "a") if diagonal else ("h", "v")
    for direction in directions:
        closed = cv2.morphologyEx(wall, cv2.MORPH_CLOSE, _line_kernel(length, direction))
        fill = closed & inv_wall
        if not fill.any():
            continue
        k_across = _line_kernel(across if direction in "hv" else int(across * 1.42), _ACROSS[direction])
        deep = cv2.morphologyEx(fill, cv2.MORPH_OPEN, k_across)
        bridges |= fill & (1 - deep)
    return bridges
