"""Stage 2: the wall mask and the wall thickness.

Walls are the thick, long strokes of a plan; text, furniture, fixtures, hatching, grid paper and
dimension lines are thin. The stroke width of every ink pixel comes from the distance transform
(twice the distance to paper along the stroke's medial ridge), so the plan's wall thickness is
measured rather than assumed: it is the thinnest stroke width that carries a substantial share of
the ink's medial length. A morphological opening just below that width then keeps walls exactly
(their faces are not moved) and removes everything thinner. Outlined walls (two thin parallel
lines, possibly hatched in between) are first filled solid: paper enclosed by ink that is thinner
than a wall is not a room.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import cv2
import numpy as np

#: Strokes at most this wide (px at working resolution) are never walls: pen lines, text, hatching.
THIN_STROKE = 2
#: Ridge pixels of width w count w**WIDTH_WEIGHT towards the thickness vote (1 = ink area, 0 =
#: medial length). Between the two: long walls win over short thick blobs and thin text.
WIDTH_WEIGHT = 0.5
#: Opening size as a share of the typical wall thickness: interior walls are often half as
#: thick as the outer walls that dominate the ink (a third, on thin-partition plans), and
#: must survive.
KERNEL_PER_THICKNESS = 0.3
#: Paper strips narrower than this share of the wall thickness, between ink lines, are the
#: inside of outlined walls or window glazing.
FILL_PER_THICKNESS = 0.6
#: Hollow-wall mode needs narrow enclosed paper to carry this many times the ridge length of the
#: ink thicker than a pen line.
HOLLOW_DOMINANCE = 1.5
#: Strip widths carrying at least this share of the strongest one's ridge length are wall classes.
HOLLOW_CLASS = 0.3
#: Gray level (on the normalized image) below which a pixel is faint ink, e.g. a glazing line.
FAINT_LEVEL = 235


@dataclass(frozen=True)
class WallInfo:
    mask: np.ndarray  # uint8 0/1 wall mask at working resolution
    ink: np.ndarray  # uint8 0/1 all ink
    faint: np.ndarray  # uint8 0/1 ink including light-gray lines (glazing, hatching)
    thickness: float  # typical (thinnest common) wall stroke width, px
    kernel: int  # opening size used to separate walls from thin strokes

    def replace(self, **changes: object) -> "WallInfo":
        return dataclasses.replace(self, **changes)


def lookup(table: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``table[labels]`` for a uint8 per-label table; OpenCV's LUT when the labels fit in 8 bits
    (several times faster than NumPy's gather on a full image)."""
    if table.size <= 256:
        lut = np.zeros(256, np.uint8)
        lut[: table.size] = table
        return cv2.LUT(labels.astype(np.uint8), lut)
    return table[labels]


def _odd(value: float) -> int:
    """Largest odd integer ≤ value (at least 1): odd kernels keep shapes centred."""
    n = int(value)
    return max(1, n if n % 2 else n - 1)


def ink_mask(gray: np.ndarray) -> np.ndarray:
    """Binary ink (1) vs paper (0): Otsu on the normalized image, kept within sane bounds."""
    thr, _ = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    thr = float(np.clip(thr, 70, 200))
    # gray < thr for integer gray levels, in one OpenCV pass (1 where gray <= ceil(thr) - 1).
    return cv2.threshold(gray, int(np.ceil(thr)) - 1, 1, cv2.THRESH_BINARY_INV)[1]


def _ridge(dt: np.ndarray) -> np.ndarray:
    """Boolean mask of the medial ridge: ``(dt > 0) & (dt >= 3×3 maximum of dt)``."""
    if dt.size < 16:  # OpenCV's bindings read an array of up to 4 values as a scalar
        return (dt > 0) & (dt >= cv2.dilate(dt, np.ones((3, 3), np.uint8)))
    ge = cv2.compare(dt, cv2.dilate(dt, np.ones((3, 3), np.uint8)), cv2.CMP_GE)
    return cv2.bitwise_and(ge, cv2.compare(dt, 0.0, cv2.CMP_GT)).view(bool)


def stroke_widths(ink: np.ndarray) -> np.ndarray:
    """Histogram of stroke widths along medial ridges: ``hist[w]`` = ridge pixels of width w."""
    if cv2.countNonZero(ink) == ink.size:
        return np.zeros(64, np.int64)  # all ink: no paper to measure a stroke against
    dt = cv2.distanceTransform(ink, cv2.DIST_L2, 3)
    widths = np.rint(2.0 * dt[_ridge(dt)] - 1.0).clip(0).astype(np.int64)
    return np.bincount(widths, minlength=64)


def estimate_thickness(ink: np.ndarray, hist: np.ndarray | None = None) -> float:
    """Typical wall thickness in px: the stroke width that holds the most ink.

    Each medial-ridge pixel of width w stands for about w pixels of ink, so ``hist[w]·w`` is
    the ink area drawn at that width. Walls hold most of a plan's ink; pen lines (width ≤ 2:
    text, furniture, hatching, glazing) are excluded. Neighbouring widths are pooled (the
    distance transform quantizes widths) and the peak refined by its centre of mass. Returns 0
    when the plan has no strokes thicker than a pen line. ``hist``: ``stroke_widths(ink)`` if
    already known.
    """
    hist = (stroke_widths(ink) if hist is None else hist).astype(np.float64)
    widths = np.arange(hist.size, dtype=np.float64)
    area = hist * widths**WIDTH_WEIGHT
    area[: THIN_STROKE + 1] = 0.0
    if area.sum() < 20 * (THIN_STROKE + 1):
        return 0.0
    pooled = area.copy()
    pooled[1:] += area[:-1]
    pooled[:-1] += area[1:]
    w = int(np.argmax(pooled))
    lo, hi = max(THIN_STROKE + 1, w - 1), min(hist.size, w + 2)
    weights = area[lo:hi]
    if weights.sum() <= 0:
        return float(w)
    return float((widths[lo:hi] * weights).sum() / weights.sum())


def fill_outlined(ink: np.ndarray, max_width: int, min_length: int) -> np.ndarray:
    """Fill long strips of paper narrower than ``max_width`` between ink lines.

    These are the insides of outlined or hatched walls and the glazing of windows drawn as
    parallel lines. Short pockets (the counters of letters, gaps in furniture) stay paper:
    a strip must be at least ``min_length`` px long to count.
    """
    if max_width < 2:
        return ink
    max_width = _odd(max_width)
    paper = 1 - ink
    k = cv2.getStructuringElement(cv2.MORPH_RECT, (max_width, max_width))
    wide = cv2.morphologyEx(paper, cv2.MORPH_OPEN, k)
    narrow = paper & (1 - wide)
    fill = _long_components4(narrow, min_length)
    return ink if fill is None else ink | fill


def _long_components4(mask: np.ndarray, min_length: int) -> np.ndarray | None:
    """Union (uint8 0/1) of the 4-connected components of ``mask`` whose bounding box is at
    least ``min_length`` px long on one side; None when there is none.

    Like :func:`components4`, from the faster 8-connected labelling; but an 8-connected
    component shorter than ``min_length`` holds no long 4-connected one, so only the long ones
    that hold a diagonal-only contact are relabelled 4-connected (hatched and thin-line plans
    have thousands of short ones).
    """
    n, labels, stats, _ = components8(mask)
    if n <= 1:
        return None
    long_ = np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]) >= min_length
    long_[0] = False
    if not long_.any():
        return None
    touched = np.zeros(0, np.intp)
    xy = _diagonal_contacts(mask)
    if len(xy):
        hit = np.zeros(n, bool)
        hit[labels[xy[:, 1], xy[:, 0]]] = True
        touched = np.nonzero(hit & long_)[0]
    keep = long_.copy()
    keep[touched] = False
    out = lookup(keep.astype(np.uint8), labels) if keep.any() else np.zeros_like(mask)
    found = bool(keep.any())
    for j in touched:
        x, y, bw, bh = (int(v) for v in stats[j, :4])
        sub = (labels[y : y + bh, x : x + bw] == j).astype(np.uint8)
        k, sub_labels, sub_stats, _ = cv2.connectedComponentsWithStats(sub, connectivity=4)
        sub_long = np.maximum(sub_stats[:, cv2.CC_STAT_WIDTH], sub_stats[:, cv2.CC_STAT_HEIGHT]) >= min_length
        sub_long[0] = False
        if sub_long.any():
            out[y : y + bh, x : x + bw] |= lookup(sub_long.astype(np.uint8), sub_labels)
            found = True
    return out if found else None


def _pooled(hist: np.ndarray, lo: int) -> np.ndarray:
    """Counts of the bins ≥ ``lo`` with both neighbours added (widths are quantized)."""
    h = hist.astype(np.float64).copy()
    h[:lo] = 0.0
    pooled = h.copy()
    pooled[1:] += h[:-1]
    pooled[:-1] += h[1:]
    return pooled


def fill_hollow_walls(ink: np.ndarray, ink_hist: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Fill the insides of hollow walls (outlined, or outlined and hatched) when the plan has them.

    A plan drawn with hollow walls has little thick ink but a great deal of enclosed paper of
    one narrow width: the strip between a wall's two outlines, or the cells between its hatch
    lines. The medial ridges of enclosed paper are histogrammed by width, like the ink's; when
    narrow enclosed paper carries clearly more ridge length than ink thicker than a pen line,
    the plan is taken to have hollow walls and every enclosed paper region no wider than about
    1.5× the widest strong strip width (outer walls) is filled. Returns (ink, hollow wall
    thickness or 0); plans with solid walls are returned unchanged (the same array).
    ``ink_hist``: ``stroke_widths(ink)`` if already known.
    """
    h, w = ink.shape
    if not cv2.countNonZero(ink):
        return ink, 0.0  # a blank page: one paper region, nothing enclosed
    paper = (1 - ink).astype(np.uint8)
    dt = cv2.distanceTransform(paper, cv2.DIST_L2, 3)
    # Ridge pixels first (few), then keep those of enclosed paper: no full-image label lookups.
    ys, xs = np.divmod(np.flatnonzero(_ridge(dt)), w)  # np.nonzero is far slower in 2-D
    ridge_dt = dt[ys, xs]
    cap = max(12, int(0.04 * max(h, w)))

    def ridge_hist(ridge_dt: np.ndarray) -> np.ndarray:
        return np.bincount(np.rint(2.0 * ridge_dt - 1.0).clip(0).astype(np.int64), minlength=cap + 2)[: cap + 1]

    ink_hist = stroke_widths(ink) if ink_hist is None else ink_hist
    solid = float(ink_hist[THIN_STROKE + 1 :].sum())
    # All paper ridges bound the enclosed ones bin by bin: when even they are too weak, the
    # plan has solid walls and the paper need not be labelled.
    bound = float(ridge_hist(ridge_dt)[THIN_STROKE + 1 :].sum())
    if bound < HOLLOW_DOMINANCE * solid or bound < 2.0 * max(h, w):
        return ink, 0.0
    n, labels = labels_of(paper, 4)
    if n <= 2:
        return ink, 0.0
    border = np.zeros(n, dtype=bool)
    border[np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))] = True
    border[0] = True  # label 0 is the ink: never enclosed paper
    ridge_labels = labels[ys, xs]
    inside = ~border[ridge_labels]
    paper_hist = ridge_hist(ridge_dt[inside])
    # Outer and inner walls (and thinner or thicker partitions) give the strips several widths:
    # compare all narrow paper with all thick ink, and fill up to the widest strong strip width.
    strength = float(paper_hist[THIN_STROKE + 1 :].sum())
    pooled = _pooled(paper_hist, THIN_STROKE + 1)
    width = int(np.nonzero(pooled >= HOLLOW_CLASS * pooled.max())[0].max()) if pooled.max() > 0 else 0
    if strength < HOLLOW_DOMINANCE * solid or strength < 2.0 * max(h, w):
        return ink, 0.0
    limit = 0.75 * (width + 1)
    # A region's widest point is a ridge pixel (limit >= 3: its 3×3 neighbours are all paper
    # of the same region), so the ridge pixels tell which regions are wider than the limit.
    has_wide = np.bincount(ridge_labels[ridge_dt > limit], minlength=n) > 0
    fill = (~border & ~has_wide).astype(np.uint8)
    return ink | lookup(fill, labels), float(width + 2)


def components8(mask: np.ndarray) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """``cv2.connectedComponentsWithStats(mask, connectivity=8)``: see
    :func:`components_with_stats`."""
    return components_with_stats(mask, 8)


def labels_of(mask: np.ndarray, connectivity: int) -> tuple[int, np.ndarray]:
    """``cv2.connectedComponents(mask, connectivity=…)``, with 16-bit labels when the count
    fits (faster to label, to look up and to histogram)."""
    try:
        return cv2.connectedComponents(mask, connectivity=connectivity, ltype=cv2.CV_16U)
    except cv2.error:  # more than 65535 components
        return cv2.connectedComponents(mask, connectivity=connectivity)


def components_with_stats(mask: np.ndarray, connectivity: int) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """``cv2.connectedComponentsWithStats(mask, connectivity=…)``: the same labels, stats and
    centroids, 16-bit labels when the count fits, several times faster.

    OpenCV's per-pixel stats pass costs several times its labelling (most on dense masks);
    here the stats come from the labels' horizontal runs instead (a few per row).
    """
    n, labels = labels_of(mask, connectivity)
    stats, centroids = label_stats(labels, n)
    return n, labels, stats, centroids


def label_stats(labels: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Stats (int32 n×5: x, y, width, height, area) and centroids (float64 n×2) of labels
    0…n-1, exactly as ``cv2.connectedComponentsWithStats`` gives them for the same labels."""
    h, w = labels.shape
    flat = np.ascontiguousarray(labels).reshape(-1)
    # Runs of equal labels along rows: a run starts where the label changes or a row begins.
    start = np.empty(flat.size, bool)
    start[0] = True
    np.not_equal(flat[1:], flat[:-1], out=start[1:])
    start.reshape(h, w)[:, 0] = True
    idx = np.flatnonzero(start)
    length = np.diff(idx, append=flat.size)
    ys, xs = np.divmod(idx, w)
    lab = flat[idx].astype(np.intp)
    ends = xs + length
    x0 = np.full(n, w, np.int64)
    np.minimum.at(x0, lab, xs)
    x1 = np.full(n, -1, np.int64)
    np.maximum.at(x1, lab, ends)
    y0 = np.full(n, h, np.int64)
    np.minimum.at(y0, lab, ys)
    y1 = np.full(n, -1, np.int64)
    np.maximum.at(y1, lab, ys)
    area = np.bincount(lab, weights=length, minlength=n)
    stats = np.empty((n, 5), np.int32)
    stats[:, 0], stats[:, 1] = x0, y0
    stats[:, 2], stats[:, 3] = x1 - x0, y1 - y0 + 1
    stats[:, 4] = area
    # Sums of x and y over each run are integers (exact in float64), as OpenCV accumulates them.
    sx = np.bincount(lab, weights=(2 * xs + length - 1) * length / 2.0, minlength=n)
    sy = np.bincount(lab, weights=ys * length, minlength=n)
    with np.errstate(divide="ignore", invalid="ignore"):
        centroids = np.stack([sx / area, sy / area], axis=1)
    return stats, centroids


def _diagonal_contacts(mask: np.ndarray) -> np.ndarray:
    """(x, y) of a mask pixel at every corner-only contact (a 2×2 window holding exactly a
    diagonal pair), N×2: where 4- and 8-connected components of a 0/1 mask differ."""
    h, w = mask.shape
    if h < 2 or w < 2:
        return np.zeros((0, 2), np.int32)
    a, b, c, d = mask[:-1, :-1], mask[:-1, 1:], mask[1:, :-1], mask[1:, 1:]
    diag = cv2.subtract(cv2.bitwise_and(a, d), cv2.bitwise_or(b, c))  # a and d set
    anti = cv2.subtract(cv2.bitwise_and(b, c), cv2.bitwise_or(a, d))  # b and c set
    pts = [cv2.findNonZero(m).reshape(-1, 2) + off for m, off in ((diag, (0, 0)), (anti, (1, 0))) if cv2.countNonZero(m)]
    return np.concatenate(pts) if pts else np.zeros((0, 2), np.int32)


def components4(mask: np.ndarray) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """``cv2.connectedComponentsWithStats(mask, connectivity=4)`` of a 0/1 mask, faster.

    4- and 8-connected components differ only where two mask pixels touch at a corner alone
    (a 2×2 window holding exactly a diagonal pair). The faster 8-connected labelling
    (:func:`components8`) is used, and the few 8-connected components holding such a contact
    are relabelled 4-connected inside their bounding box. Same components and stats; label
    numbers may be ordered differently.
    """
    h, w = mask.shape
    if h < 2 or w < 2:
        return cv2.connectedComponentsWithStats(mask, connectivity=4)
    xy = _diagonal_contacts(mask)
    if len(xy) and cv2.countNonZero(mask) > 0.25 * h * w:
        # Dense masks (free space) have large components: relabelling them would cost more.
        return components_with_stats(mask, 4)
    n, labels, stats, centroids = components8(mask)
    if not len(xy):
        return n, labels, stats, centroids
    touched = np.unique(labels[xy[:, 1], xy[:, 0]])
    if stats[touched, cv2.CC_STAT_WIDTH].astype(np.int64) @ stats[touched, cv2.CC_STAT_HEIGHT] > 0.2 * h * w:
        # Relabelling that much costs more than OpenCV's own 4-connected labelling.
        return components_with_stats(mask, 4)
    labels = labels.astype(np.int32)
    stats_out, centroids_out = [stats], [centroids]
    top = n
    for j in touched:
        x, y, bw, bh = (int(v) for v in stats[j, :4])
        view = labels[y : y + bh, x : x + bw]
        sub = (view == j).astype(np.uint8)
        k, sub_labels, sub_stats, sub_centroids = cv2.connectedComponentsWithStats(sub, connectivity=4)
        if k <= 2:
            continue
        sub_stats[:, 0] += x
        sub_stats[:, 1] += y
        sub_centroids += (x, y)
        lut = np.concatenate([[0, j], np.arange(top, top + k - 2)]).astype(np.int32)
        np.copyto(view, lut[sub_labels], where=sub > 0)
        stats[j], centroids[j] = sub_stats[1], sub_centroids[1]
        stats_out.append(sub_stats[2:])
        centroids_out.append(sub_centroids[2:])
        top += k - 2
    return top, labels, np.concatenate(stats_out), np.concatenate(centroids_out)


def drop_small(
    mask: np.ndarray,
    min_extent: float,
    components: tuple[int, np.ndarray, np.ndarray, np.ndarray] | None = None,
    drop: np.ndarray | None = None,
) -> np.ndarray:
    """Remove components whose bounding box is shorter than ``min_extent`` on both sides.

    Bold text, symbols and furniture blobs that survive the opening are compact; walls are
    long or connected to long walls. ``components``: ``components8(mask)`` if already known;
    ``drop``: per component, True to remove it whatever its size (see :func:`text_lines`).
    """
    n, labels, stats, _ = components8(mask) if components is None else components
    if n <= 1:
        return mask
    keep = np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]) >= min_extent
    if drop is not None:
        keep &= ~drop
    keep[0] = False
    return lookup(keep.astype(np.uint8), labels)


#: Glyphs: components at least this many wall thicknesses high and wide, under a door gap long.
GLYPH_MIN_PER_THICKNESS = 2.0
#: Glyphs of one line of text overlap vertically by at least this share of the shorter one
#: (capitals, x-height letters, ascenders and descenders share a band), are at most this many
#: times as high as each other, stand at most this many heights apart, at least this many in
#: a row. Pages with more letter-sized blobs than GLYPH_MAX_COUNT (a pattern, not text; the
#: pairwise test's memory grows with the square) are left to the size filter.
GLYPH_OVERLAP = 0.6
GLYPH_HEIGHTS = 2.0
GLYPH_SPACING = 1.0
GLYPH_RUN = 3
GLYPH_MAX_COUNT = 1000


def text_lines(stats: np.ndarray, thickness: float, max_extent: float) -> np.ndarray:
    """Per component (rows of ``components8`` stats), whether it is a letter of a line of text.

    Bold room names and dimensions on plans with thin walls come out of the wall stage as
    letter-sized blobs as thick as walls; alone each may be as long as a short wall spur, but
    letters stand in rows: three or more blobs sharing a band of rows, each at most a height
    from the next. Wall pieces do not line up that way (dashes of a dashed line are flat, not
    letter-shaped; piers are a wall thick)."""
    n = stats.shape[0]
    out = np.zeros(n, dtype=bool)
    lo = GLYPH_MIN_PER_THICKNESS * thickness
    w, h = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
    idx = np.nonzero((np.minimum(w, h) >= lo) & (np.maximum(w, h) < max_extent))[0]
    idx = idx[idx > 0]
    if idx.size < GLYPH_RUN or idx.size > GLYPH_MAX_COUNT:
        return out
    st = stats[idx].astype(np.float64)
    x0, y0, gw, gh = st[:, 0], st[:, 1], st[:, 2], st[:, 3]
    x1, y1 = x0 + gw, y0 + gh
    overlap = np.minimum(y1[:, None], y1[None, :]) - np.maximum(y0[:, None], y0[None, :])
    short, tall = np.minimum(gh[:, None], gh[None, :]), np.maximum(gh[:, None], gh[None, :])
    gap = np.maximum(x0[:, None] - x1[None, :], x0[None, :] - x1[:, None])
    near = (overlap >= GLYPH_OVERLAP * short) & (tall <= GLYPH_HEIGHTS * short) & (gap <= GLYPH_SPACING * tall)
    np.fill_diagonal(near, False)
    if not near.any():
        return out
    # Rows of letters are the connected groups of the neighbour graph: every glyph takes the
    # smallest index among its neighbours until nothing changes (a row's length in steps).
    group = np.arange(idx.size)
    big = idx.size
    for _ in range(idx.size):
        nxt = np.minimum(group, np.where(near, group[None, :], big).min(axis=1))
        if np.array_equal(nxt, group):
            break
        group = nxt
    counts = np.bincount(group, minlength=idx.size)
    out[idx[counts[group] >= GLYPH_RUN]] = True
    return out


def wall_mask(gray: np.ndarray, thickness: float | None = None) -> WallInfo:
    ink = ink_mask(gray)
    faint = (gray < FAINT_LEVEL).astype(np.uint8)
    # The stroke-width histogram is reused while a step leaves the ink unchanged.
    hist0 = stroke_widths(ink)
    filled, hollow = fill_hollow_walls(ink, hist0)
    hist = hist0 if filled is ink else None
    ink = filled
    if thickness is None:
        hist = stroke_widths(ink) if hist is None else hist
    t0 = estimate_thickness(ink, hist) if thickness is None else float(thickness)
    if t0 > 0:
        outlined = fill_outlined(ink, max(2, int(round(FILL_PER_THICKNESS * t0))), int(round(3 * t0)))
        if outlined is not ink:
            hist = None
        ink = outlined
    t = float(thickness) if thickness is not None else estimate_thickness(ink, hist)
    del hollow
    if t <= 0:
        return WallInfo(mask=np.zeros_like(ink), ink=ink, faint=faint, thickness=0.0, kernel=0)
    kernel = _odd(max(THIN_STROKE + 1, KERNEL_PER_THICKNESS * t))
    k = cv2.getStructuringElement(cv2.MORPH_RECT, (kernel, kernel))
    mask = cv2.morphologyEx(ink, cv2.MORPH_OPEN, k)
    mask = mask | partitions(thin_walls(gray, t, THIN_PARTITION_LENGTH), mask, t, reach=int(np.ceil(t / 2)))
    return WallInfo(mask=mask, ink=ink, faint=faint, thickness=t, kernel=kernel)


#: Thin partitions (closets, light stud walls) can be a third of the outer walls' thickness and
#: fall below the opening, or come out of anti-aliased downscaling as faint gray lines that the
#: ink threshold breaks up. A straight axis-aligned line is a wall when its ink, summed across
#: the line, is at least THIN_WALL_WIDTH px of full darkness (and THIN_WALL_PER_THICKNESS of the
#: wall thickness), and it runs at least THIN_WALL_LENGTH wall thicknesses. Pen lines (furniture,
#: door leaves, dimensions, grid paper) carry less ink across; text strokes are shorter.
THIN_WALL_WIDTH = 1.5
THIN_WALL_PER_THICKNESS = 0.2
THIN_WALL_LENGTH = 10.0
#: Shorter thin lines, down to THIN_PARTITION_LENGTH wall thicknesses, are walls when drawn into
#: the walls, or run from wall to wall abutting one of them (closets; see ``partitions``).
THIN_PARTITION_LENGTH = 5.0
#: Thin walls are searched on a copy reduced so that the walls are about this thick.
THIN_WALL_GRID_THICKNESS = 8.0


def partitions(lines: np.ndarray, walls: np.ndarray, thickness: float, reach: int) -> np.ndarray:
    """Thin walls among ``lines`` (found down to THIN_PARTITION_LENGTH wall thicknesses).

    ``lines`` holds the walls' own ink too, so a thin line drawn into a wall is part of the
    walls' component: components that reach THIN_WALL_LENGTH wall thicknesses and come within
    ``reach`` of the walls are walls (partitions, and the short stubs that close a closet's
    ends against a wall). A short line standing apart must meet walls at both ends, and at one
    end a wall running across it (a closet's side drawn between two walls): a short furniture
    edge stands against one wall at most, and the glazing lines of a window meet only the jambs
    of a wall running on along the line."""
    if not lines.any():
        return lines
    n, labels, stats, _ = components_with_stats(lines, 8)
    if n <= 1:
        return lines
    # Components within reach of the walls: a wall is joined to other walls, give or take a
    # sloppy junction; a bed's headboard or a table edge drawn as a long line stands free. On a
    # plan drawn in thin lines only (no wall survived the opening) every long line counts.
    touch = np.zeros(n, dtype=bool)
    if walls.any():
        close = cv2.dilate(walls, np.ones((2 * reach + 1, 2 * reach + 1), np.uint8)) > 0
        touch[np.bincount(labels[close & (lines > 0)], minlength=n) > 0] = True
    else:
        touch[:] = True
    touch[0] = False
    keep = touch & (np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]) >= THIN_WALL_LENGTH * thickness)
    grow = np.ones((2 * reach + 3, 2 * reach + 3), np.uint8)
    h, w = walls.shape
    for i in np.nonzero(touch & ~keep)[0]:
        x, y, bw, bh, _a = (int(v) for v in stats[i])
        e = min(max(2, int(np.ceil(thickness))), max(bw, bh))
        # Transposed so the line runs along x; each end must meet a wall, and at one end the
        # wall must reach well beyond the line's rows on either side.
        m = 4 * e + reach + 2
        ya, yb, xa, xb = max(0, y - m), min(h, y + bh + m), max(0, x - m), min(w, x + bw + m)
        near = cv2.dilate(walls[ya:yb, xa:xb], grow)
        if bw >= bh:
            nm, c0, c1, r0 = near[max(0, y - 4 * e) - ya : y + bh + 4 * e - ya], x - xa, x + bw - xa, y - max(0, y - 4 * e)
        else:
            nm, c0, c1, r0 = near[:, max(0, x - 4 * e) - xa : x + bw + 4 * e - xa].T, y - ya, y + bh - ya, x - max(0, x - 4 * e)
        th = min(bw, bh)
        met, across = 0, False
        for a0, b0 in ((c0, c0 + e), (c1 - e, c1)):
            rows = nm[:, max(0, a0) : b0].any(axis=1)
            if not rows[r0 : r0 + th].any():
                continue
            met += 1
            lo, hi = r0, r0 + th
            while lo > 0 and rows[lo - 1]:
                lo -= 1
            while hi < rows.size and rows[hi]:
                hi += 1
            if r0 - lo >= 2 * e or hi - (r0 + th) >= 2 * e:
                across = True
        if met == 2 and across:
            keep[i] = True
    return lookup(keep.astype(np.uint8), labels)


def thin_walls(gray: np.ndarray, thickness: float, length: float = THIN_WALL_LENGTH) -> np.ndarray:
    """Straight lines at least ``length`` wall thicknesses long that carry a wall's worth of ink
    across, however faint or thin."""
    # Plans worked on with very thick walls (hollow walls, filled) are searched on a reduced
    # copy: the ink summed across a line survives area averaging, and the cost of the long line
    # openings falls with the square of the factor.
    f = int(thickness // THIN_WALL_GRID_THICKNESS)
    if f >= 2:
        h, w = gray.shape
        small = cv2.resize(gray, (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA)
        found = cv2.resize(_thin_walls(small, thickness / f, length), (w, h), interpolation=cv2.INTER_NEAREST)
        _thr, drawn = cv2.threshold(gray, FAINT_LEVEL - 1, 1, cv2.THRESH_BINARY_INV)
        return found & drawn
    return _thin_walls(gray, thickness, length)


def _thin_walls(gray: np.ndarray, thickness: float, length_per_thickness: float) -> np.ndarray:
    width = max(THIN_WALL_WIDTH, THIN_WALL_PER_THICKNESS * thickness)
    across = 2 * int(np.ceil(width)) + 1
    dark = cv2.bitwise_not(gray)
    level = 255.0 * width / across  # mean darkness over the box
    length = max(5, int(round(length_per_thickness * thickness)))
    _thr, drawn = cv2.threshold(gray, FAINT_LEVEL - 1, 1, cv2.THRESH_BINARY_INV)
    out = np.zeros(gray.shape, np.uint8)
    # Vertical lines: ink summed along rows (box of size across×1), then runs kept along columns.
    for box, line in (((across, 1), np.ones((length, 1), np.uint8)), ((1, across), np.ones((1, length), np.uint8))):
        _thr, ink = cv2.threshold(cv2.blur(dark, box), int(np.ceil(level)) - 1, 1, cv2.THRESH_BINARY)
        out |= cv2.morphologyEx(ink, cv2.MORPH_OPEN, line)
    return out & drawn


#: A compact component at least this many wall thicknesses wide both ways that fills this share
#: of its bounding box is a solid block: a pier between two windows or a stretch of wall between
#: two openings, when it lies on a wall line (below); bold letters are as solid but stand free.
BLOCK_PER_THICKNESS = 0.75
BLOCK_FILL = 0.8
#: …and at least this many px both ways (on thin-line plans a full stop is as big as a pier).
BLOCK_MIN = 5
#: A wall line continues a block when, within the reach, a wall as thick as the block (±this
#: share of the wall thickness) runs on along the block's line for this many wall thicknesses.
LINE_THICKNESS_SLACK = 0.5
LINE_RUN_PER_THICKNESS = 1.5
GLAZED = 0.6


def wall_piers(
    kept: np.ndarray,
    components: tuple[int, np.ndarray, np.ndarray, np.ndarray],
    thickness: float,
    reach: float,
    glazing: np.ndarray | None = None,
) -> np.ndarray:
    """Wall blocks among the components ``drop_small`` removed that lie on wall lines.

    A block is drawn as thick as a wall throughout (a square pier, a corner's L, a stretch of
    wall between two openings): BLOCK_FILL of it survives an opening BLOCK_PER_THICKNESS wall
    thicknesses wide, which letters and symbols (thinner strokes) do not. It lies on wall lines
    when a wall as thick as the block's end runs on beyond that end (across an opening up to
    ``reach`` px) at both ends of one line, or at one end of each of two lines (a corner), or
    at one end beyond an opening drawn with ``glazing`` ink (a window). ``kept``: the walls
    ``drop_small`` kept; ``components``: the ``components8`` of the mask before it. Returns the
    blocks (uint8 0/1)."""
    n, labels, stats, _ = components
    out = np.zeros_like(kept)
    if n <= 1 or thickness <= 0:
        return out
    side = max(BLOCK_PER_THICKNESS * thickness, BLOCK_MIN)
    bw, bh = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
    big = np.minimum(bw, bh) >= side
    big[0] = False
    dropped = np.bincount(labels[kept > 0].ravel(), minlength=n) == 0
    k = _odd(side)
    for i in np.nonzero(big & dropped)[0]:
        x, y, w_, h_ = (int(v) for v in stats[i, :4])
        comp = (labels[y : y + h_, x : x + w_] == i).astype(np.uint8)
        area = int(comp.sum())
        thick = cv2.morphologyEx(comp, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
        if int(thick.sum()) < BLOCK_FILL * area:
            continue
        # Walls run on from both ends of it along one line, or from one end along each of two
        # lines (a corner pier), or from one end beyond a glazed opening (a window): a letter
        # may line up with one wall across bare floor by chance, hardly more.
        along = _on_line(kept, comp, x, y, thickness, reach, glazing)
        across = _on_line(kept.T, comp.T, y, x, thickness, reach, None if glazing is None else glazing.T)
        if along + across >= 2:
            out[y : y + h_, x : x + w_] |= comp
    return out


def _on_line(
    wall: np.ndarray, comp: np.ndarray, x: int, y: int, thickness: float, reach: float, glazing: np.ndarray | None
) -> int:
    """Evidence that the block ``comp`` (its bounding box at x, y) lies on horizontal wall
    lines: per end (left, right) where a wall as thick as the block's end runs on beyond it, 1,
    or 2 when the opening between them is glazed (ink along GLAZED of its length within the
    end's rows)."""
    h, w = wall.shape
    bh, bw = comp.shape
    run = int(np.ceil(LINE_RUN_PER_THICKNESS * thickness))
    slack = LINE_THICKNESS_SLACK * thickness + 1
    sides = 0
    for step in (1, -1):
        rows = np.nonzero(comp[:, -1] if step > 0 else comp[:, 0])[0]
        r0, r1 = y + int(rows.min()), y + int(rows.max()) + 1
        yc = (r0 + r1) // 2
        row = wall[yc]
        c = x + bw if step > 0 else x - 1
        end = c + step * int(reach)
        while 0 <= c < w and c != end and not row[c]:
            c += step
        if not (0 <= c < w) or c == end:
            continue
        col = wall[:, c]
        up = yc
        while up > 0 and col[up - 1]:
            up -= 1
        down = yc
        while down < h - 1 and col[down + 1]:
            down += 1
        if abs((down - up + 1) - (r1 - r0)) > slack:
            continue  # a wall across the line, not along it
        seg = row[c : c + step * run : step] if step > 0 else row[max(0, c - run + 1) : c + 1]
        if seg.size >= run and seg.all():
            sides += 1
            a, b = (x + bw, c) if step > 0 else (c + 1, x)
            if glazing is not None and b > a and glazing[r0:r1, a:b].any(axis=0).mean() >= GLAZED:
                sides += 1
    return sides
