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
#: Rooms are seeded where the network is surer than this (cores stay apart at doorways it only
#: half closes), then grown over the room pixels around them.
CORE_LEVEL = 0.85
#: How far (share of the plan's longer side) a core grows back over the less sure room pixels.
GROW_SHARE = 0.015
#: Pieces smaller than this share of the largest piece are noise, whatever the area floor says.
MIN_SHARE = 0.004
#: The outside is the free space a disk this wide (share of the plan's longer side: about half a
#: door) reaches from the page edge without crossing the boundary; pieces mostly in it are the
#: page around the building (the network confuses a wide margin with a large room).
EXTERIOR_SHARE = 0.03
OUTSIDE_PART = 0.5


def outside_region(probs: np.ndarray) -> np.ndarray:
    """uint8 0/1: free space reachable from the page edge by a disk wider than a doorway."""
    h, w = probs.shape[1:]
    passable = ((probs[WALL] + probs[OPENING]) < 0.5).astype(np.uint8)
    r = max(1, int(round(EXTERIOR_SHARE * max(h, w))))
    opened = cv2.morphologyEx(passable, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1,) * 2))
    _n, labels = cv2.connectedComponents(opened, connectivity=4)
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    edge = edge[edge > 0]
    out = np.isin(labels, edge)
    # The disk's reach: grow back by its radius within the passable space.
    out = cv2.dilate(out.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1,) * 2)) & passable
    return out


@dataclass(frozen=True)
class Piece:
    """A room found in the maps: its polygon (working px), area (px²) and confidence."""

    polygon: np.ndarray
    area: float
    confidence: float


def grow(labels: np.ndarray, region: np.ndarray, steps: int) -> np.ndarray:
    """Labels grown one pixel a step, at most ``steps``, into unlabelled ``region`` pixels."""
    lab = labels.astype(np.float32)  # exact for up to 2**24 labels; cv2.dilate takes float32
    free = region & (labels == 0)
    kernel = np.ones((3, 3), np.uint8)
    for _ in range(steps):
        grown = cv2.dilate(lab, kernel)
        take = free & (grown > 0)
        if not take.any():
            break
        lab[take] = grown[take]
        free &= ~take
    return lab.astype(np.int32)


def label_boxes(labels: np.ndarray, n: int) -> np.ndarray:
    """(n, 5) stats of labels 0…n-1 in OpenCV's layout: x, y, width, height, area (one pass)."""
    ys, xs = np.nonzero(labels)
    lab = labels[ys, xs]
    x0 = np.full(n, labels.shape[1], np.int64)
    y0 = np.full(n, labels.shape[0], np.int64)
    x1 = np.full(n, -1, np.int64)
    y1 = np.full(n, -1, np.int64)
    np.minimum.at(x0, lab, xs)
    np.minimum.at(y0, lab, ys)
    np.maximum.at(x1, lab, xs)
    np.maximum.at(y1, lab, ys)
    stats = np.zeros((n, 5), np.int64)
    stats[:, 0], stats[:, 1] = x0, y0
    stats[:, 2], stats[:, 3] = np.maximum(x1 - x0 + 1, 0), np.maximum(y1 - y0 + 1, 0)
    stats[:, 4] = np.bincount(labels.ravel(), minlength=n)[:n]
    return stats


def room_pieces(probs: np.ndarray, *, min_area: float, max_area: float, simplify: float) -> list[Piece]:
    """Rooms of (classes, H, W) probabilities, polygons in the maps' pixel faces."""
    room = probs[ROOM]
    boundary = probs[WALL] + probs[OPENING]
    region = (room > ROOM_LEVEL) & (room > boundary)
    core = (region & (room > CORE_LEVEL)).astype(np.uint8)
    n, labels = cv2.connectedComponents(core, connectivity=4)
    if n <= 1:
        return []
    labels = grow(labels, region, max(1, int(round(GROW_SHARE * max(room.shape)))))
    stats = label_boxes(labels, n)
    largest = float(stats[1:, cv2.CC_STAT_AREA].max())
    outside = outside_region(probs)
    outside_share = np.bincount(labels.ravel(), weights=outside.ravel().astype(np.float64), minlength=n)
    pieces: list[Piece] = []
    for i in range(1, n):
        area = float(stats[i, cv2.CC_STAT_AREA])
        if area < max(min_area, MIN_SHARE * largest) or area > max_area:
            continue
        if outside_share[i] > OUTSIDE_PART * area:
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
