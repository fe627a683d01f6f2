"""Room instances from the network's maps: the learned backend's post-processing.

Rooms are the connected pieces of "room" pixels once every pixel the network calls wall or
opening is taken out; each piece grows one pixel back over the boundary (the thresholded core
stops short of the wall face), and its confidence is its mean room probability.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from roomkit.learned.runtime import OPENING, ROOM, WALL

#: A pixel is a room's when its room probability beats this and the boundary's (wall + opening).
ROOM_LEVEL = 0.5
#: Pieces smaller than this share of the largest piece are noise, whatever the area floor says.
MIN_SHARE = 0.004


@dataclass(frozen=True)
class Piece:
    """A room found in the maps: its polygon (working px), area (px²) and confidence."""

    polygon: np.ndarray
    area: float
    confidence: float


def room_pieces(probs: np.ndarray, *, min_area: float, max_area: float, simplify: float) -> list[Piece]:
    """Rooms of (classes, H, W) probabilities, polygons in the maps' pixel faces."""
    room = probs[ROOM]
    boundary = probs[WALL] + probs[OPENING]
    core = ((room > ROOM_LEVEL) & (room > boundary)).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(core, connectivity=4)
    if n <= 1:
        return []
    largest = float(stats[1:, cv2.CC_STAT_AREA].max())
    pieces: list[Piece] = []
    for i in range(1, n):
        area = float(stats[i, cv2.CC_STAT_AREA])
        if area < max(min_area, MIN_SHARE * largest) or area > max_area:
            continue
        x, y, w, h = stats[i, :4]
        pad = 2
        x0, y0 = max(0, x - pad), max(0, y - pad)
        x1, y1 = min(core.shape[1], x + w + pad), min(core.shape[0], y + h + pad)
        mask = (labels[y0:y1, x0:x1] == i).astype(np.uint8)
        conf = float(room[y0:y1, x0:x1][mask == 1].mean())
        # Grow one pixel into the boundary (the thresholded core stops short of the wall face).
        mask = cv2.dilate(mask, np.ones((3, 3), np.uint8)) & ((labels[y0:y1, x0:x1] == 0) | (mask == 1)).astype(np.uint8)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        if not contours:
            continue
        c = max(contours, key=cv2.contourArea)
        c = cv2.approxPolyDP(c, simplify, True) if simplify > 0 else c
        pts = c.reshape(-1, 2).astype(np.float64) + (x0, y0)
        if len(pts) < 3:
            continue
        # Contour points are pixel centres of the outermost pixels; faces lie half a pixel out.
        cx, cy = pts.mean(axis=0)
        pts = pts + 0.5 + 0.5 * np.sign(pts - (cx, cy))
        pieces.append(Piece(pts, area, conf))
    return pieces
