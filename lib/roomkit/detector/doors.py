"""Stage 2b: door leaves drawn as thick as walls.

A door symbol is a leaf (a straight stroke standing at a right angle to the wall, hinged at one
jamb of the doorway) and its swing (a thin quarter circle centred on the hinge, from the leaf's
free end to the wall line at the other jamb). Drawn bold, the leaf survives the wall stage as a
short wall spur; bridged to the wall in front of it, it cuts a piece off the room it opens
into, and the doorway it came from stays open when it is wider than the door gap.

A spur is a wall run, thinner than about two wall thicknesses, that meets the other walls at
one end only; it is a door leaf when pen ink lies along the quarter circle centred at the joined
end through the free end, on either side. Leaves leave the wall mask (they stay ink, so the
ink split still sees the symbol) and their doorway, the wall line from the hinge to the wall
on the swing's side (at most about a leaf's length away), is bridged.
"""
from __future__ import annotations

import cv2
import numpy as np

from roomkit.detector.gaps import line_extreme

#: Spurs shorter than this many door gaps and wall thicknesses, or longer than this many door
#: gaps, are not tested (a leaf is a door wide; the auto door gap is 0.6–1.2 m).
LEAF_MIN_PER_DOOR_GAP = 0.35
LEAF_MIN_PER_THICKNESS = 1.5
LEAF_MAX_PER_DOOR_GAP = 2.5
#: A leaf is at most this many wall thicknesses wide.
LEAF_WIDTH_PER_THICKNESS = 2.0
#: Share of the swing's samples (10°–80° from the leaf) that must lie on pen ink.
SWING_INK = 0.75
#: The doorway (hinge jamb to far jamb) is this many leaf lengths wide; up to the double width
#: when a second leaf stands at the far jamb (a double door).
DOORWAY_PER_LEAF = (0.8, 1.15)
DOUBLE_DOORWAY_PER_LEAF = (1.7, 2.1)
#: …and at most this share on walls; the circles at these shares of the radius (inside and
#: beyond the swing) at most SWING_CLEAR on pen ink.
SWING_WALL = 0.2
SWING_CLEAR_INNER = 0.65
SWING_CLEAR_OUTER = 1.3
SWING_CLEAR = 0.4
#: Circles (shares of the radius) through the swing's pocket, which holds no wall.
POCKET = (0.3, 0.5, 0.65, 0.8)
_ANGLES = np.deg2rad(np.linspace(10.0, 80.0, 15))


def door_leaves(
    wall: np.ndarray, pen: np.ndarray, thickness: float, door_gap: float
) -> tuple[np.ndarray, np.ndarray]:
    """(leaves, doorways): wall pixels that are door leaves, and bridges across their doorways
    (uint8 0/1, doorways disjoint from ``wall``). ``pen``: all ink, pen lines included."""
    leaves = np.zeros_like(wall)
    doorways = np.zeros_like(wall)
    if thickness <= 0 or door_gap <= 0 or not wall.any():
        return leaves, doorways
    # Work on the walls' bounding box, with room around it for the farthest test circle.
    h, w = wall.shape
    bx, by, bw, bh = cv2.boundingRect(wall)
    pad = int(np.ceil(SWING_CLEAR_OUTER * (LEAF_MAX_PER_DOOR_GAP * door_gap + thickness / 2.0 + 1.5))) + 4
    x0, y0, x1, y1 = max(0, bx - pad), max(0, by - pad), min(w, bx + bw + pad), min(h, by + bh + pad)
    crop = (slice(y0, y1), slice(x0, x1))
    wall_c = wall[crop]
    near_pen = cv2.dilate(pen[crop], np.ones((3, 3), np.uint8))
    lines = pen[crop] & (1 - wall_c)  # pen lines: thin leaves
    lc, dc = leaves[crop], doorways[crop]
    # Vertical leaves on the arrays as they are, horizontal ones on the transposed arrays.
    for transpose in (False, True):
        w_ = cv2.transpose(wall_c) if transpose else wall_c
        p_ = cv2.transpose(near_pen) if transpose else near_pen
        l_ = cv2.transpose(lines) if transpose else lines
        lv, dw = _vertical_leaves(w_, p_, thickness, door_gap, l_)
        if not dw.any():
            continue  # (no leaf, no doorway)
        if transpose:
            lv, dw = cv2.transpose(lv), cv2.transpose(dw)
        lc |= lv
        dc |= dw
    if lc.any():
        dc &= 1 - (wall_c & (1 - lc))
    return leaves, doorways


def _open_line(img: np.ndarray, length: int, axis: int) -> np.ndarray:
    """Opening with a 1×length (axis 1) or length×1 (axis 0) line, by window doubling (exactly
    ``cv2.morphologyEx``'s result, at a cost growing with the log of the length)."""
    if length < 8:
        kernel = np.ones((1, length) if axis == 1 else (length, 1), np.uint8)
        return cv2.morphologyEx(img, cv2.MORPH_OPEN, kernel)
    return line_extreme(line_extreme(img, length, axis, False), length, axis, True)


def _vertical_leaves(
    wall: np.ndarray, pen: np.ndarray, thickness: float, door_gap: float, lines: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Vertical leaves: spurs of ``wall`` (returned as leaves), and straight vertical ``lines``
    (pen lines, not walls: only their doorways are returned)."""
    h, w = wall.shape
    leaves = np.zeros_like(wall)
    doorways = np.zeros_like(wall)
    run = max(3, int(round(2.5 * thickness)))
    across = _open_line(wall, run, 1)  # horizontal walls
    spurs = wall & (1 - across)
    lo = max(LEAF_MIN_PER_DOOR_GAP * door_gap, LEAF_MIN_PER_THICKNESS * thickness)
    contours = list(cv2.findContours(spurs, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)[0])
    thick = len(contours)
    if lines is not None:
        straight = _open_line(lines, max(1, int(lo)), 0)
        contours += list(cv2.findContours(straight, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)[0])
    hi = LEAF_MAX_PER_DOOR_GAP * door_gap
    wide = LEAF_WIDTH_PER_THICKNESS * thickness + 2
    found = []  # (outline, leaf box, doorway rows/columns, leaf length)
    for i, contour in enumerate(contours):
        x, y, bw, bh = cv2.boundingRect(contour)
        if bw > wide or not lo <= bh <= hi:
            continue
        xa, xb = max(0, x - 1), min(w, x + bw + 1)
        # Joined at an end: wall across it just beyond the end or beside its last stretch (a
        # leaf hinged at the side of a jamb).
        xa2, xb2, e = max(0, x - 2), min(w, x + bw + 2), max(2, int(round(thickness)))
        top = across[max(0, y - 2) : y + e, xa2:xb2].any()
        bottom = across[max(0, y + bh - e) : min(h, y + bh + 2), xa2:xb2].any()
        if top == bottom:
            continue  # joined at both ends (a wall) or at none (furniture, text)
        # The free end must stand in the open: no wall just beyond it.
        if top and wall[y + bh : min(h, y + bh + 2), xa:xb].any():
            continue
        if bottom and wall[max(0, y - 2) : y, xa:xb].any():
            continue
        hinge_y = y if top else y + bh
        down = 1.0 if top else -1.0
        xc = x + bw / 2.0
        side = _swing_side(pen, wall, xc, hinge_y, down, bh, thickness)
        if side == 0:
            continue
        # A leaf stands at the jamb of a doorway about as wide as the leaf is long.
        doorway = _doorway(wall, across, x, bw, hinge_y, top, side, bh, thickness)
        if doorway is not None and (
            DOORWAY_PER_LEAF[0] <= (doorway[3] - doorway[2]) / bh <= DOORWAY_PER_LEAF[1]
            or DOUBLE_DOORWAY_PER_LEAF[0] <= (doorway[3] - doorway[2]) / bh <= DOUBLE_DOORWAY_PER_LEAF[1]
        ):
            found.append((i, (x, y, bw, bh), doorway, bh))
    for i, (x, y, bw, bh), (r0, r1, a, b), length in found:
        if b - a > DOORWAY_PER_LEAF[1] * length and not any(
            j != i and min(b, b2) - max(a, a2) >= 0.8 * (b - a) and min(r1, r12) > max(r0, r02)
            for j, _box, (r02, r12, a2, b2), _l in found
        ):
            continue  # as wide as two leaves: a double door only if the other leaf is there
        doorways[r0:r1, a:b] = 1
        if i >= thick:
            continue  # a pen line: not in the wall mask
        piece = np.zeros((bh, bw), np.uint8)
        cv2.drawContours(piece, [contours[i] - np.array([x, y])], -1, 1, cv2.FILLED)
        leaves[y : y + bh, x : x + bw] |= piece & spurs[y : y + bh, x : x + bw]
    return leaves, doorways


def _swing_side(
    pen: np.ndarray, wall: np.ndarray, xc: float, hinge_y: int, down: float, length: int, thickness: float
) -> int:
    """+1 / -1 when pen ink follows the swing of a leaf of ``length`` hinged at (xc, hinge_y) to
    the right / left; 0 when neither side has it.

    The swing is a thin line: its samples lie on pen ink but not on walls, and the circles a
    third closer to and farther from the hinge are mostly clear (not a hatched or busy area)."""
    h, w = pen.shape
    best, side = 0.0, 0
    # The hinge may sit on the wall's face or up to half a wall inside it.
    radii = np.arange(length - 1.0, length + thickness / 2.0 + 1.5, 1.0)
    # The swing's ink at every radius and side at once; the other tests only where it is inked.
    ys = np.rint(hinge_y + down * radii[:, None] * np.cos(_ANGLES)[None, :]).astype(int)
    ring_on = {}
    for s in (1, -1):
        xs = np.rint(xc + s * radii[:, None] * np.sin(_ANGLES)[None, :]).astype(int)
        inside = (xs.min(axis=1) >= 0) & (xs.max(axis=1) < w) & (ys.min(axis=1) >= 0) & (ys.max(axis=1) < h)
        ring_on[s] = np.where(inside, pen[ys.clip(0, h - 1), xs.clip(0, w - 1)].mean(axis=1), -1.0)
    if max(ring_on[1].max(), ring_on[-1].max()) < SWING_INK:
        return 0  # no swing at any radius: most spurs and lines end here
    for k, r in enumerate(radii):
        for s in (1, -1):
            on = float(ring_on[s][k])
            if on < 0 or on <= best or on < SWING_INK:
                continue
            if _ring(wall, xc, hinge_y, down, s, r) > SWING_WALL:
                continue
            if max(_ring(wall, xc, hinge_y, down, s, f * r) for f in POCKET) > SWING_WALL:
                continue  # the swing's pocket is open floor
            inner = _ring(pen, xc, hinge_y, down, s, SWING_CLEAR_INNER * r)
            outer = _ring(pen, xc, hinge_y, down, s, SWING_CLEAR_OUTER * r)
            if outer is None or inner > SWING_CLEAR or outer > SWING_CLEAR:
                continue
            best, side = on, s
    return side


def _ring(mask: np.ndarray, xc: float, hinge_y: int, down: float, s: int, r: float) -> float | None:
    """Share of the quarter circle's samples (radius r about the hinge) on ``mask``; None when
    it leaves the image."""
    h, w = mask.shape
    ys = np.rint(hinge_y + down * r * np.cos(_ANGLES)).astype(int)
    xs = np.rint(xc + s * r * np.sin(_ANGLES)).astype(int)
    if xs.min() < 0 or xs.max() >= w or ys.min() < 0 or ys.max() >= h:
        return None
    return float(mask[ys, xs].mean())


def _doorway(
    wall: np.ndarray, across: np.ndarray, x: int, bw: int, hinge_y: int,
    top: bool, side: int, length: int, thickness: float,
) -> tuple[int, int, int, int] | None:
    """The doorway the leaf swung from (rows r0:r1, columns a:b): the horizontal wall band at
    the hinge, from the hinge's jamb to the next wall on the swing's side (None if none)."""
    h, w = wall.shape
    # The band: the run of rows holding horizontal wall at the leaf's columns nearest the hinge.
    cols = slice(max(0, x - 2), min(w, x + bw + 2))
    lo = max(0, int(hinge_y - 3 * thickness))
    has = across[lo : min(h, int(hinge_y + 3 * thickness) + 1), cols].any(axis=1)
    idx = np.nonzero(has)[0]
    if idx.size == 0:
        return None
    k = int(idx[np.argmin(np.abs(idx + lo - (hinge_y - 0.5)))])
    k0, k1 = k, k + 1
    while k0 > 0 and has[k0 - 1]:
        k0 -= 1
    while k1 < has.size and has[k1]:
        k1 += 1
    rows = range(lo + k0, lo + k1)
    if len(rows) > 3 * thickness:
        return None
    r0, r1 = min(rows), max(rows) + 1
    band = wall[r0:r1].max(axis=0)
    # From the leaf towards the swing: leave the jamb, cross the opening, meet the far jamb.
    xx = x + bw - 1 if side > 0 else x
    limit = DOUBLE_DOORWAY_PER_LEAF[1] * length + bw
    start = None
    while 0 <= xx < w and abs(xx - x) <= limit:
        if start is None and not band[xx]:
            start = xx
        elif start is not None and band[xx]:
            # The opening runs on under the leaf when it stands clear of the near jamb: close
            # it up to that jamb too (a gap a leaf wide would still join the rooms).
            near = start
            while 0 <= near - side < w and not band[near - side] and abs(near - side - start) <= bw + 2:
                near -= side
            a, b = (near, xx) if side > 0 else (xx + 1, near + 1)
            return r0, r1, a, b
        xx += side
    return None
