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

from roomkit.detector.walls import components8, lookup


#: Recesses (closets) are looked for with this many closings, of lengths from the narrowest
#: closet's width to the widest's…
RECESS_LENGTHS = 4
#: …and closed when this share of their back is wall, thin ink runs along this share of their
#: front line, and at most this share of their inside is ink.
RECESS_BACK_WALL = 0.7
RECESS_FRONT_INK = 0.75
RECESS_MAX_INNER_INK = 0.15
#: Recesses whose open side is more than this share barrier already are closed: by walls
#: (more than this share wall) they are rooms; by a bridged doorway they are closets with a
#: door, when the door's symbol covers this share of the front.
RECESS_FRONT_BLOCKED = 0.2
RECESS_WALLED_FRONT = 0.5
RECESS_DOOR_INK = 0.5
#: Wall components with at least this share of the largest one's area are the wall structure.
RECESS_STRUCTURE_PART = 0.1
#: Where the shallowest closet is this many px deep and the building covers this many px, the
#: search runs at half resolution (a quarter of the cost; closets are still many pixels deep).
RECESS_HALF_MIN_DEPTH = 12.0
RECESS_HALF_MIN_AREA = 400_000


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

#: Axis-aligned line kernels at least this long are applied by doubling (cost grows with the
#: log of the length) instead of OpenCV's direct filter (cost grows with the length); the
#: results are identical.
LONG_LINE = 128


def line_extreme(img: np.ndarray, length: int, axis: int, dilate: bool) -> np.ndarray:
    """``cv2.dilate``/``cv2.erode`` with a centred 1×length (axis 1) or length×1 (axis 0) line.

    The window maximum (minimum) is built by doubling: windows of 1, 2, 4… pixels, then two
    overlapping power-of-two windows cover the full length. The border is padded with the
    values OpenCV assumes (0 for dilation, 255 for erosion).
    """
    a = length // 2
    fill = 0 if dilate else 255
    op = cv2.max if dilate else cv2.min
    if axis == 1:
        cur = cv2.copyMakeBorder(img, 0, 0, a, length - 1 - a, cv2.BORDER_CONSTANT, value=fill)
    else:
        cur = cv2.copyMakeBorder(img, a, length - 1 - a, 0, 0, cv2.BORDER_CONSTANT, value=fill)
    span = 1
    while 2 * span <= length:
        cur = op(cur[:, :-span], cur[:, span:]) if axis == 1 else op(cur[:-span], cur[span:])
        span *= 2
    h, w = img.shape
    s = length - span
    if axis == 1:
        return op(cur[:, :w], cur[:, s : s + w])
    return op(cur[:h], cur[s : s + h])


#: An axis-aligned line operation treats every row (horizontal line) or column (vertical line)
#: on its own and leaves an empty one empty, so on masks where at most this share of the rows
#: (columns) hold any pixel it runs on those alone.
SPARSE_LINES = 0.6


def _line_morph(img: np.ndarray, op: int, length: int, direction: str) -> np.ndarray:
    """``cv2.morphologyEx(img, op, _line_kernel(length, direction))`` for MORPH_OPEN/CLOSE."""
    length = max(1, int(length))
    if direction in "hv" and img.dtype == np.uint8 and img.ndim == 2:
        # Vertical lines run along the rows of the transpose (same result, transposed).
        rows = img if direction == "h" else cv2.transpose(img)
        lines = np.flatnonzero(rows.view(bool).any(axis=1))
        if lines.size <= SPARSE_LINES * rows.shape[0]:
            out = np.zeros_like(rows)
            if lines.size:
                out[lines] = _line_morph_all(rows[lines], op, length, "h")
            return out if direction == "h" else cv2.transpose(out)
    return _line_morph_all(img, op, length, direction)


def _line_morph_all(img: np.ndarray, op: int, length: int, direction: str) -> np.ndarray:
    if direction in "hv" and length >= LONG_LINE and img.dtype == np.uint8 and img.ndim == 2:
        axis = 1 if direction == "h" else 0
        first = op == cv2.MORPH_CLOSE  # closing dilates first, opening erodes first
        return line_extreme(line_extreme(img, length, axis, first), length, axis, not first)
    return cv2.morphologyEx(img, op, _line_kernel(length, direction))


#: Ruled lines (grid paper) are looked for among ink up to this gray level, their breaks up to
#: this many px closed first: a faint ruled line's pixels straddle the pen level.
RULED_LEVEL = 235
RULED_BREAK = 5
#: Faint ink covering more than this share of the sheet is paper texture (a photocopy's
#: toner), not lines.
MAX_FAINT_SHARE = 0.03


def pen_ink(gray: np.ndarray, ink: np.ndarray, dark: int, light: int, ruling: int) -> np.ndarray:
    """All pen ink (uint8 0/1): ``ink`` (the walls' ink), gray levels darker than ``dark``, and
    faint ink up to ``light`` except where it runs straight, across or down, for ``ruling`` px
    or more. Thin lines of small listing images come out light gray; so do grid paper's ruled
    lines, which run on straight across the sheet (broken only where the plan is drawn over
    them), as pen lines seldom do for that long at that lightness."""
    pen = ink | (gray < dark).astype(np.uint8)
    faint = ((gray >= dark) & (gray < light)).astype(np.uint8)
    if ruling < 2 or not faint.any():
        return pen | faint
    lines = ((gray >= dark) & (gray < RULED_LEVEL)).astype(np.uint8)
    ruled = _line_morph(_line_morph(lines, cv2.MORPH_CLOSE, RULED_BREAK, "h"), cv2.MORPH_OPEN, ruling, "h")
    ruled |= _line_morph(_line_morph(lines, cv2.MORPH_CLOSE, RULED_BREAK, "v"), cv2.MORPH_OPEN, ruling, "v")
    faint &= 1 - cv2.dilate(ruled, _SQUARE3)
    if cv2.countNonZero(faint) > MAX_FAINT_SHARE * faint.size:
        return pen
    return pen | faint


_SQUARE3 = np.ones((3, 3), np.uint8)


def _thin_fill(closed: np.ndarray, barrier: np.ndarray, across: int, direction: str) -> np.ndarray:
    fill = closed & (1 - barrier)
    if not fill.any():
        return fill
    if direction in "hv":
        deep = _line_morph(fill, cv2.MORPH_OPEN, across, _ACROSS[direction])
    else:
        deep = cv2.morphologyEx(fill, cv2.MORPH_OPEN, _line_kernel(int(across * 1.42), _ACROSS[direction]))
    thin = fill & (1 - deep)
    if thin.any() and deep.any():
        # A deep column of fill along a wall's face (the closing ran on past a bridge's end
        # beside the wall) must not leave a one-pixel seam between the bridge and the wall.
        seam = deep & cv2.dilate(thin, _CROSS3) & cv2.dilate(barrier, _CROSS3)
        thin = thin | seam
    return thin


def _window(
    shape: tuple[int, ...], box: tuple[int, int, int, int], direction: str, reach: int, across: int
) -> tuple[slice, slice]:
    """The part of the image that line operations along ``direction`` (kernels up to ``reach``
    px) and across it (up to ``across`` px) can change, for a mask whose nonzero pixels lie in
    ``box`` (x, y, w, h): the box grown by more than each kernel. Working on this crop gives
    exactly the full-image result inside it and zero outside (no kernel reaches the crop's
    edge from a pixel it can change), at a fraction of the cost on plans with margins."""
    h, w = shape[:2]
    x, y, bw, bh = box
    along, side = reach + 2, across + 2
    px, py = (along, side) if direction == "h" else (side, along)
    return slice(max(0, y - py), min(h, y + bh + py)), slice(max(0, x - px), min(w, x + bw + px))


def _elongated(wall: np.ndarray, run: int, direction: str) -> np.ndarray:
    """Wall pixels on runs at least ``run`` px long in ``direction`` (wall segments along it)."""
    return _line_morph(wall, cv2.MORPH_OPEN, run, direction)


#: A fill backed by wall along one side and open along the other is a shallow recess (a
#: cupboard), not an opening through a wall, when it is at least this many wall thicknesses
#: (plus 2 px) deep: it is left to :func:`close_recesses`, which closes it only where a front
#: is drawn.
BRIDGE_RECESS_DEPTH = 1.0
#: …backed: this share of one side is wall, at most BRIDGE_OPEN_SIDE of the other.
BRIDGE_BACKED = 0.7
BRIDGE_OPEN_SIDE = 0.3


def bridge_recess_depth(thickness: float) -> float:
    """Depth (px) from which a wall-backed fill is a recess that bridging leaves open
    (BRIDGE_RECESS_DEPTH wall thicknesses plus 2 px): the closet search starts there."""
    return BRIDGE_RECESS_DEPTH * thickness + 2


def _drop_recesses(fill: np.ndarray, wall: np.ndarray, depth: int, direction: str) -> np.ndarray:
    """``fill`` (uint8 0/1, closings along ``direction`` 'h'/'v') without its shallow recesses:
    components at least ``depth`` px across, wall along one whole side, free on the other."""
    axis = 0 if direction == "h" else 1  # the sides are rows (top/bottom) or columns
    n, labels, stats, _ = components8(fill)
    if n <= 1:
        return fill
    deep = stats[:, cv2.CC_STAT_HEIGHT if axis == 0 else cv2.CC_STAT_WIDTH] >= depth
    deep[0] = False
    if not deep.any():
        return fill
    h, w = fill.shape
    drop = np.zeros(n, dtype=bool)
    for i in np.nonzero(deep)[0]:
        x, y, bw, bh, _area = (int(v) for v in stats[i])
        x0, y0, x1, y1 = max(0, x - 1), max(0, y - 1), min(w, x + bw + 1), min(h, y + bh + 1)
        comp = labels[y0:y1, x0:x1] == i
        sub = wall[y0:y1, x0:x1]
        shares = []
        for step in (-1, 1):
            ey, ex = _edge_neighbours(comp, step, axis)
            ok = (ey >= 0) & (ey < comp.shape[0]) & (ex >= 0) & (ex < comp.shape[1])
            shares.append(float(sub[ey[ok], ex[ok]].mean()) if ok.mean() >= 0.9 else 1.0)
        drop[i] = max(shares) >= BRIDGE_BACKED and min(shares) <= BRIDGE_OPEN_SIDE
    if not drop.any():
        return fill
    return fill & (1 - lookup(drop.astype(np.uint8), labels))


def bridge_gaps(
    wall: np.ndarray,
    door_gap: float,
    thickness: float,
    *,
    ink: np.ndarray | None = None,
    window_gap: float = 0.0,
    diagonal: bool = False,
    min_glazing: float = 0.6,
    piers: np.ndarray | None = None,
) -> np.ndarray:
    """Bridges (uint8 0/1, disjoint from ``wall``) that close door and window openings.

    ``piers``: wall blocks on a wall line too short to be wall runs themselves (a pier between
    two windows), which windows may join as well."""
    length = int(round(door_gap))
    if length < 2 or thickness <= 0:
        return np.zeros_like(wall)
    # A bridge may be a little thicker than the wall (anti-aliasing, jambs), never much more.
    across = int(round(1.6 * thickness)) + 2
    bridges = np.zeros_like(wall)
    run = max(3, int(round(2.5 * thickness)))
    directions = ("h", "v", "d", "a") if diagonal else ("h", "v")
    recess_depth = int(round(bridge_recess_depth(thickness)))
    box = cv2.boundingRect(wall)
    for direction in directions:
        if direction in "hv":
            win = _window(wall.shape, box, direction, length, across)
            closed = _line_morph(wall[win], cv2.MORPH_CLOSE, length, direction)
            fill = _thin_fill(closed, wall[win], across, direction)
            if fill.any():
                bridges[win] |= _drop_recesses(fill, wall[win], recess_depth, direction)
            continue
        closed = _line_morph(wall, cv2.MORPH_CLOSE, length, direction)
        fill = _thin_fill(closed, wall, across, direction)
        if not fill.any():
            continue
        # Diagonally, only openings that continue a wall segment running in that direction
        # count: otherwise a 45° closing fills the corners of axis-aligned rooms.
        segs = _elongated(wall, int(run * 0.71), direction)
        n, labels = cv2.connectedComponents(fill, connectivity=8)
        touching = np.zeros(n, dtype=bool)
        touching[np.unique(labels[cv2.dilate(segs, _SQUARE3) > 0])] = True
        touching[0] = False
        bridges |= touching[labels].astype(np.uint8)

    long_len = int(round(window_gap))
    if ink is not None and long_len > length:
        run = max(3, int(round(2.5 * thickness)))
        for direction in ("h", "v"):
            win = _window(wall.shape, box, direction, max(run, long_len), across)
            segs = _elongated(wall[win], run, direction)
            if piers is not None:
                segs = segs | piers[win]
            closed = _line_morph(segs, cv2.MORPH_CLOSE, long_len, direction)
            fill = _thin_fill(closed, wall[win] | bridges[win], across, direction)
            if not fill.any():
                continue
            n, labels, stats, _ = components8(fill)
            # Glazing evidence: the share of the opening's length along which thin ink runs.
            axis = 0 if direction == "h" else 1
            inked = (fill & ink[win]).astype(bool)
            keep = np.zeros(n, dtype=bool)
            spans = stats[:, cv2.CC_STAT_WIDTH if axis == 0 else cv2.CC_STAT_HEIGHT]
            for i in np.nonzero(spans[1:] > length)[0] + 1:  # shorter ones are door-sized
                x, y, bw, bh, _area = stats[i]
                span = bw if axis == 0 else bh
                sub = (labels[y : y + bh, x : x + bw] == i) & inked[y : y + bh, x : x + bw]
                covered = int(sub.any(axis=0).sum()) if axis == 0 else int(sub.any(axis=1).sum())
                keep[i] = covered >= min_glazing * span
            if keep[1:].any():
                bridges[win] |= lookup(keep.astype(np.uint8), labels)
    return bridges


def _edge_neighbours(comp: np.ndarray, step: int, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Crop positions of the pixels just beyond a component's edge on one side (``step`` −1:
    top/left, +1: bottom/right; ``axis`` 0: rows, 1: columns), one per row or column it covers."""
    if axis == 0:
        cols = np.nonzero(comp.any(axis=0))[0]
        first = np.argmax(comp[:, cols], axis=0) if step < 0 else comp.shape[0] - 1 - np.argmax(comp[::-1, cols], axis=0)
        return first + step, cols
    rows = np.nonzero(comp.any(axis=1))[0]
    first = np.argmax(comp[rows], axis=1) if step < 0 else comp.shape[1] - 1 - np.argmax(comp[rows, ::-1], axis=1)
    return rows, first + step


def close_recesses(
    wall: np.ndarray,
    barrier: np.ndarray,
    outside: np.ndarray,
    ink: np.ndarray,
    widths: tuple[float, float],
    depths: tuple[float, float],
    thickness: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Closets: recesses in the walls. Returns (fronts, closets), uint8 0/1 masks.

    A closet is a recess: wall on three sides, the fourth open between the two side walls'
    ends, where the plan draws the doors' track or panels in thin ink. Closing the walls along
    the front's direction fills the recess between its side walls; unlike a doorway the fill
    is as deep as the closet, unlike a corridor or a room it is backed by solid wall on one
    side and open on the other. A fill ``widths`` (min, max px) long and ``depths`` deep gets a
    front (one pixel wide, on free pixels) along its open edge, at the line of the side walls'
    ends (where plans put a closet's outline) when thin ink runs along that line (a drawn
    front: sliding or bi-fold panels, a track) and the recess itself is nearly empty (not a
    bath, a counter or a stair). A recess whose front is a bridged doorway with its door drawn
    is closed already; its fill goes to ``closets``, so that the room stage knows it for a
    closet rather than a jamb pocket. ``barrier``: walls and bridged openings; ``ink``: all
    ink, walls included.
    """
    fronts = np.zeros_like(wall)
    closets = np.zeros_like(wall)
    (min_w, max_w), (min_d, max_d) = widths, depths
    if max_w < 3 or max_d < min_d:
        return fronts, closets
    # Work on the crop holding the building's inside (plus the reach of the closings).
    pts = cv2.findNonZero((1 - (barrier | outside)).astype(np.uint8))
    if pts is None:
        return fronts, closets
    bx, by, bw_, bh_ = cv2.boundingRect(pts)
    m = int(max_w) + int(thickness) + 2
    x0, y0 = max(0, bx - m), max(0, by - m)
    x1, y1 = min(wall.shape[1], bx + bw_ + m), min(wall.shape[0], by + bh_ + m)
    crops = [a[y0:y1, x0:x1] for a in (wall, barrier, outside, ink)]
    if min_d < RECESS_HALF_MIN_DEPTH or (y1 - y0) * (x1 - x0) < RECESS_HALF_MIN_AREA:
        fronts[y0:y1, x0:x1], closets[y0:y1, x0:x1] = _close_recesses(*crops, widths, depths, thickness)
        return fronts, closets
    # Closets are many pixels deep on large working images: search at half resolution (a pixel
    # is wall, ink or outside if any of its four is) and bring the results back. Fronts are
    # grown by a pixel so that they still meet the walls at full resolution.
    half = [_max_pool2(a) for a in crops]
    f_half, c_half = _close_recesses(
        *half, (min_w / 2, max_w / 2), (min_d / 2, max_d / 2), thickness / 2
    )
    free = (1 - (crops[1] | crops[2])).astype(np.uint8)
    fronts[y0:y1, x0:x1] = cv2.dilate(_upsample2(f_half, free.shape), _CROSS3) & free
    closets[y0:y1, x0:x1] = _upsample2(c_half, free.shape) & free
    return fronts, closets


_CROSS3 = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))


def _max_pool2(a: np.ndarray) -> np.ndarray:
    """2×2 max-pooling of a 0/1 mask (odd sizes padded with 0)."""
    h, w = a.shape
    p = cv2.copyMakeBorder(a, 0, h % 2, 0, w % 2, cv2.BORDER_CONSTANT, value=0)
    return cv2.max(cv2.max(p[0::2, 0::2], p[1::2, 0::2]), cv2.max(p[0::2, 1::2], p[1::2, 1::2]))


def _upsample2(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Each pixel of ``a`` as a 2×2 block, cut to ``shape`` (undoes :func:`_max_pool2`'s grid)."""
    up = cv2.resize(a, (2 * a.shape[1], 2 * a.shape[0]), interpolation=cv2.INTER_NEAREST)
    return up[: shape[0], : shape[1]]


def _close_recesses(
    wall: np.ndarray,
    barrier: np.ndarray,
    outside: np.ndarray,
    ink: np.ndarray,
    widths: tuple[float, float],
    depths: tuple[float, float],
    thickness: float,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`close_recesses` on a crop, at the crop's resolution."""
    fronts = np.zeros_like(wall)
    closets = np.zeros_like(wall)
    (min_w, max_w), (min_d, max_d) = widths, depths
    h, w = wall.shape
    blocked = barrier | outside
    unblocked = 1 - blocked
    band = int(round(thickness)) + 1
    # Closets are built into the wall structure: their back is a wall of the building's
    # network, not furniture (a bed's headboard, a sofa) drawn bold enough to pass for wall.
    n, labels, stats, _ = components8(wall)
    if n <= 1:
        return fronts, closets
    areas = stats[:, cv2.CC_STAT_AREA].copy()
    areas[0] = 0
    taken = np.zeros_like(wall)
    structure = lookup((areas >= RECESS_STRUCTURE_PART * areas.max()).astype(np.uint8), labels)
    # Closing lengths from the narrowest recess up to the widest (a closing fills gaps shorter
    # than itself), spaced geometrically: a closing much longer than a recess is wide also
    # fills the narrow room in front of it, and the two become one fill.
    lo, hi = max(3.0, min_w), max(3.0, min_w, max_w + 2.0)
    # Odd lengths: an even line kernel is off centre, and its closing leaves one-pixel
    # columns along every wall face that join unrelated fills.
    lengths = sorted({int(round(v)) | 1 for v in np.geomspace(lo, hi, RECESS_LENGTHS)})
    for length in lengths:
        for direction, axis in (("h", 0), ("v", 1)):
            fill = _line_morph(barrier, cv2.MORPH_CLOSE, length, direction) & unblocked
            if not fill.any():
                continue
            n, labels, stats, _ = components8(fill)
            width, depth = (stats[:, 2], stats[:, 3]) if axis == 0 else (stats[:, 3], stats[:, 2])
            fit = (width >= min_w) & (width <= max_w) & (depth >= min_d) & (depth <= max_d)
            fit &= stats[:, 4] >= 0.7 * width * depth
            fit[0] = False
            for i in np.nonzero(fit)[0]:
                x, y, bw, bh, area = (int(v) for v in stats[i])
                # Crop with a margin of the band beyond every side.
                cx0, cy0 = max(0, x - band), max(0, y - band)
                cx1, cy1 = min(w, x + bw + band), min(h, y + bh + band)
                comp = labels[cy0:cy1, cx0:cx1] == i
                if (comp & (taken[cy0:cy1, cx0:cx1] > 0)).any():
                    continue  # closed already with a shorter closing
                sub_wall, sub_block = wall[cy0:cy1, cx0:cx1], blocked[cy0:cy1, cx0:cx1]
                sub_struct = structure[cy0:cy1, cx0:cx1]
                pen = ink[cy0:cy1, cx0:cx1] & (1 - sub_wall)
                for back_step in (-1, 1):
                    by, bx = _edge_neighbours(comp, back_step, axis)
                    fy, fx = _edge_neighbours(comp, -back_step, axis)
                    inb = (by >= 0) & (by < comp.shape[0]) & (bx >= 0) & (bx < comp.shape[1])
                    inf = (fy >= 0) & (fy < comp.shape[0]) & (fx >= 0) & (fx < comp.shape[1])
                    if inb.mean() < 0.9 or inf.mean() < 0.9:
                        continue
                    if sub_struct[by[inb], bx[inb]].mean() < RECESS_BACK_WALL:
                        continue  # backed by a doorway, furniture or nothing: not a closet
                    closed = False
                    if sub_block[fy[inf], fx[inf]].mean() > RECESS_FRONT_BLOCKED:
                        if sub_wall[fy[inf], fx[inf]].mean() > RECESS_WALLED_FRONT:
                            continue  # closed on both sides by walls: a room
                        closed = True  # its front is a bridged doorway: a closet with a door
                    # Thin ink along the front line: within a wall thickness beyond it (bi-fold
                    # panels open outwards), or a little inside it (a track, sliding panels).
                    seen = np.zeros(fy.shape, dtype=bool)
                    for k in range(-(band // 2), band + 1):
                        off = -back_step * k  # k > 0: beyond the front
                        ry, rx = (fy + off, fx) if axis == 0 else (fy, fx + off)
                        ok = (ry >= 0) & (ry < comp.shape[0]) & (rx >= 0) & (rx < comp.shape[1])
                        seen[ok] |= pen[ry[ok], rx[ok]] > 0
                    front_ink = float(seen.mean())
                    if front_ink < (RECESS_DOOR_INK if closed else RECESS_FRONT_INK):
                        continue
                    inner = float(pen[comp].mean())
                    if inner > RECESS_MAX_INNER_INK:
                        continue  # a bath, a counter, a stair: fixtures drawn in the recess
                    if closed:
                        closets[cy0:cy1, cx0:cx1] |= comp.astype(np.uint8)
                    else:  # the front: the recess's own edge pixels on the open side
                        ey, ex = (fy[inf] + back_step, fx[inf]) if axis == 0 else (fy[inf], fx[inf] + back_step)
                        fronts[ey + cy0, ex + cx0] = 1
                    taken[cy0:cy1, cx0:cx1] |= comp.astype(np.uint8)
                    break
    return fronts, closets
