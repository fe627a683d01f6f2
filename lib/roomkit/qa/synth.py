"""Synthetic floor plans with exact room ground truth, deterministic per seed.

A plan is built in three steps:

1. **Layout** — a footprint (rectangle, L, T or U) is cut into rectangular blocks, each block is
   split recursively into cells, and some neighbouring cells are merged into non-rectangular
   (L-shaped) rooms. Cell edges are wall centre lines; every coordinate is an integer pixel.
2. **Walls and ground truth** — every wall is the union of axis-aligned rectangles around its
   centre line (exterior walls thicker than partitions). A room's ground truth is its cell minus
   the walls: the free space bounded by the wall faces. Door openings and windows are cut into
   the *drawn* walls only, so the ground truth closes doorways along the wall face.
3. **Drawing** — walls (solid, outlined, hatched or poché), door leaves with swing arcs,
   windows, labels, room dimension text, furniture and fixtures kept clear of the walls,
   dimension strings outside the footprint; then paper (white, tinted, grid, blueprint) and
   scan effects (rotation, uneven light, blur, noise, specks, JPEG). A rotation is applied to
   the ground-truth polygons with the same affine map as the image.

Pixel convention: pixel ``(i, j)`` covers ``[i, i+1) × [j, j+1)``; polygons are in these
continuous coordinates, so a room face spanning pixel columns 10…49 runs from x=10 to x=50.

Styles are named presets (:data:`STYLES`); ``style="random"`` draws every attribute at random,
producing combinations no committed sample shows. Same ``(seed, style)`` → same bytes.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

import cv2
import numpy as np
import shapely
from shapely.geometry import LineString, Polygon, box
from shapely.ops import polylabel, unary_union

from roomkit.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from roomkit.qa.evaluate import GroundTruth

Rect = tuple[int, int, int, int]  # x0, y0, x1, y1 (continuous coordinates, integers)
BGR = tuple[int, int, int]


# =============================================================================================
# Styles
# =============================================================================================
@dataclass(frozen=True)
class Style:
    """A named combination of drawing and degradation choices."""

    name: str
    description: str
    walls: str = "solid"  # solid | outline | hatched | poche
    wall_m: tuple[float, float] = (0.10, 0.15)  # interior wall thickness (metres)
    ext_factor: tuple[float, float] = (1.6, 2.4)  # exterior / interior thickness
    wall_px: tuple[int, int] | None = None  # fixed interior thickness in px (thin-line plans)
    wall_vary: float = 0.0  # share of interior wall lines drawn thinner (and 0.4x that thicker)
    size: tuple[int, int] = (1100, 1700)  # long side of the page, px
    footprints: tuple[str, ...] = ("rect", "L", "T", "U")
    rooms: tuple[int, int] = (4, 9)
    merge_prob: float = 0.35  # chance a cell is merged with a neighbour into an L-shaped room
    doors: str = "arc"  # arc (some double) | gap | mixed (arc/double/sliding/gap) | none (sealed: tests)
    windows: bool = True
    labels: bool = True
    room_dims: bool = False  # dimension text inside rooms
    furniture: float = 0.0  # 0..1, share of rooms furnished
    dim_lines: bool = False  # dimension strings outside the footprint
    title: bool = False
    paper: BGR = (255, 255, 255)
    ink: BGR = (20, 20, 20)
    line_ink: BGR | None = None  # doors, windows, furniture, dimensions (default: ink)
    text_ink: BGR | None = None
    grid: int = 0  # grid pitch in px (0 = none)
    grid_ink: BGR = (230, 205, 170)
    rotate: float = 0.0  # max |angle| in degrees
    blur: float = 0.0  # gaussian sigma
    noise: float = 0.0  # gaussian noise sigma (grey levels)
    specks: float = 0.0  # specks per megapixel
    illumination: float = 0.0  # depth of an uneven-light gradient (0..1)
    jpeg: int | None = None  # JPEG quality; None saves PNG
    corner_cuts: float = 0.0  # chance the footprint gets chamfered / rounded corners (angled, curved walls)
    room_fill: bool = False  # light floor colours per room (listing plans)
    floor_tiles: bool = False  # tile grid on bath/kitchen floors
    compass: bool = False  # north arrow in the margin
    header: bool = False  # "approximate gross internal area" text above the plan
    floors: int = 1  # footprints side by side on one sheet (ground floor, first floor...)
    single_room: bool = False
    blank: bool = False
    # listing-plan features (all off by default; see the ``r3d`` style)
    fixtures: bool = False  # bathtubs, toilets, basins in baths/WCs; worktops with sink, hob, fridge in kitchens
    stairs: float = 0.0  # chance a hall-like room holds a flight of stairs
    closets: float = 0.0  # chance a large rectangular room gives up a corner or a side to a closet
    baths: float = 0.0  # chance a large rectangular room gives up a corner to a bathroom (at most 2)
    closet_doors: float = 0.0  # chance a closet's door is a bi-fold or sliding pair across its front
    balcony: float = 0.0  # chance of a balcony outside an exterior wall, behind a thin railing

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# Every style prints room sizes (listing plans do, and issue 21 scores areas on every synthetic
# room); the committed samples keep the plain labels they were drawn with (SAMPLE_SET).
_BASE = Style(name="clean", description="black solid walls on white, doors with swing arcs, windows, "
              "labels with room sizes", wall_vary=0.25, room_dims=True)

STYLES: dict[str, Style] = {
    s.name: s
    for s in [
        _BASE,
        replace(_BASE, name="outline", description="outlined (hollow) walls, furniture", walls="outline",
                wall_m=(0.14, 0.2), furniture=0.5),
        replace(_BASE, name="hatched", description="hatched walls between outlines, room dimensions",
                walls="hatched", wall_m=(0.16, 0.22), room_dims=True),
        replace(_BASE, name="thin", description="thin-line listing plan: 2-3 px walls, text, furniture",
                wall_px=(2, 3), ext_factor=(1.0, 1.8), size=(700, 1100), furniture=0.6, room_dims=True,
                doors="mixed"),
        replace(_BASE, name="furnished", description="every room furnished: beds, sofas, tables, kitchen and bath fixtures",
                furniture=1.0, room_dims=True),
        replace(_BASE, name="cad", description="CAD sheet: dimension strings outside the footprint, room dimensions, title",
                dim_lines=True, room_dims=True, title=True, line_ink=(60, 60, 60), furniture=0.3,
                footprints=("L", "T", "U"), corner_cuts=0.4),
        replace(_BASE, name="angled", description="angled (45 degree) and curved exterior walls, furniture",
                corner_cuts=1.0, furniture=0.4, footprints=("rect", "L")),
        replace(_BASE, name="blueprint", description="white lines on blueprint blue, dimension strings",
                paper=(150, 82, 28), ink=(250, 245, 240), dim_lines=True, grid=0, room_dims=True),
        replace(_BASE, name="tinted", description="cream paper, sepia ink, mild blur, saved as JPEG",
                paper=(200, 228, 242), ink=(30, 50, 90), text_ink=(40, 70, 120), blur=0.6, noise=2.0,
                jpeg=88, furniture=0.3),
        replace(_BASE, name="grid", description="plan drawn on grid paper", grid=22, furniture=0.3),
        replace(_BASE, name="scan", description="scanned print: small rotation, blur, noise, specks, uneven light, JPEG",
                rotate=2.5, blur=1.0, noise=7.0, specks=40.0, illumination=0.18, jpeg=45, paper=(238, 240, 240),
                furniture=0.3),
        replace(_BASE, name="rotated", description="clean plan rotated by a few degrees", rotate=4.0),
        replace(_BASE, name="large", description="large sheet (>= 4000 px long side) with dimension strings",
                size=(4000, 4600), dim_lines=True, room_dims=True, furniture=0.4, rooms=(7, 12)),
        replace(_BASE, name="small", description="small thumbnail plan (<= 600 px long side)",
                size=(420, 600), rooms=(3, 6), wall_m=(0.12, 0.16)),
        replace(_BASE, name="single-room", description="one room: a studio or a single space",
                single_room=True, furniture=1.0, footprints=("rect", "L"), room_dims=True),
        replace(_BASE, name="blank", description="blank page: paper, no plan", blank=True, noise=3.0,
                specks=10.0, jpeg=85),
        replace(_BASE, name="listing", description="real-estate listing: coloured floors, tiled wet rooms, "
                "north arrow, area header, furniture, thin grey walls", wall_m=(0.08, 0.12), ink=(60, 60, 60),
                room_fill=True, floor_tiles=True, compass=True, header=True, furniture=0.7, room_dims=True,
                size=(700, 1200), jpeg=85, corner_cuts=0.3),
        replace(_BASE, name="two-floors", description="two floors side by side on one sheet, titled, furnished",
                floors=2, title=True, furniture=0.5, room_dims=True, size=(1600, 2200), rooms=(3, 7)),
        # styles no committed sample shows
        replace(_BASE, name="poche", description="grey poché walls with black outlines", walls="poche",
                wall_m=(0.15, 0.22), furniture=0.4, dim_lines=True),
        replace(_BASE, name="photocopy", description="worn photocopy: grey paper, heavy noise, toner specks, strong blur",
                paper=(205, 205, 205), ink=(35, 35, 35), rotate=1.5, blur=1.4, noise=14.0, specks=150.0,
                illumination=0.3, jpeg=35, walls="solid", furniture=0.4),
        replace(_BASE, name="random", description="every attribute drawn at random per plan"),
        replace(_BASE, name="r3d", description="small real-estate listing like the Rent3D plans: 300-700 px "
                "JPEG, thin dark walls, names and dimensions, bathtubs, worktops, stairs, closets behind "
                "bi-fold or sliding doors, balconies behind a thin railing; drawn at random per plan",
                wall_px=(3, 6), ext_factor=(1.2, 2.0), size=(300, 700), fixtures=True, stairs=0.3,
                closets=0.45, baths=0.4, closet_doors=0.7, balcony=0.35, furniture=0.5, room_dims=True, doors="mixed",
                jpeg=70, blur=0.5),
    ]
}
"""All named styles. ``random`` and ``r3d`` re-draw their attributes per plan."""

SAMPLE_STYLES_EXCLUDED = ("poche", "photocopy", "random", "r3d")
#: Styles a batch (:func:`iter_plans`) leaves out unless asked for by name. ``r3d`` stays out so
#: that the default cycle, and the figures measured on it, are those of before it existed.
CYCLE_EXCLUDED = ("random", "r3d")


def style_names() -> list[str]:
    return list(STYLES)


def get_style(style: str | Style) -> Style:
    if isinstance(style, Style):
        return style
    try:
        return STYLES[style]
    except KeyError:
        raise InputError(f"unknown synth style {style!r} (known: {', '.join(STYLES)})") from None


def _random_style(rng: np.random.Generator) -> Style:
    """A style with every attribute drawn at random (still a plan a human would recognise)."""
    blueprint = rng.random() < 0.2
    tinted = not blueprint and rng.random() < 0.3
    paper = (150, 82, 28) if blueprint else (
        tuple(int(v) for v in rng.integers(195, 245, 3)) if tinted else (255, 255, 255))
    ink = (250, 245, 240) if blueprint else tuple(int(v) for v in rng.integers(0, 70, 3))
    degraded = rng.random() < 0.4
    thin = rng.random() < 0.25
    return Style(
        name="random",
        description="every attribute drawn at random",
        walls=str(rng.choice(["solid", "outline", "hatched", "poche"])) if not thin else "solid",
        wall_m=(0.10, 0.2),
        wall_px=(2, 3) if thin else None,
        size=(int(rng.integers(500, 1200)), int(rng.integers(1200, 2600))),
        rooms=(3, int(rng.integers(5, 12))),
        merge_prob=float(rng.uniform(0.0, 0.6)),
        doors=str(rng.choice(["arc", "gap", "mixed"])),
        windows=bool(rng.random() < 0.8),
        labels=bool(rng.random() < 0.8),
        room_dims=bool(rng.random() < 0.5),
        furniture=float(rng.choice([0.0, 0.3, 0.7, 1.0])),
        dim_lines=bool(rng.random() < 0.4),
        title=bool(rng.random() < 0.3),
        paper=paper,  # type: ignore[arg-type]
        ink=ink,  # type: ignore[arg-type]
        grid=int(rng.choice([0, 0, 0, 18, 25])) if not blueprint else 0,
        rotate=float(rng.choice([0.0, 0.0, 1.5, 3.0])),
        blur=float(rng.uniform(0.5, 1.3)) if degraded else 0.0,
        noise=float(rng.uniform(3, 12)) if degraded else 0.0,
        specks=float(rng.uniform(0, 80)) if degraded else 0.0,
        illumination=float(rng.uniform(0, 0.25)) if degraded else 0.0,
        jpeg=int(rng.integers(35, 90)) if degraded else None,
        corner_cuts=float(rng.choice([0.0, 0.5])),
        wall_vary=float(rng.choice([0.0, 0.25, 0.5])) if not thin else 0.0,
        room_fill=bool(not blueprint and rng.random() < 0.2),
        floor_tiles=bool(rng.random() < 0.3),
        compass=bool(rng.random() < 0.3),
        header=bool(rng.random() < 0.2),
        floors=int(rng.choice([1, 1, 1, 1, 2])),
    )


def _r3d_style(rng: np.random.Generator) -> Style:
    """A small listing plan in the manner of the Rent3D collection, its choices drawn per plan."""
    base = STYLES["r3d"]
    header = bool(rng.random() < 0.25)
    grey = int(rng.integers(0, 55))
    ink = (grey, grey, grey)
    thin = int(rng.integers(3, 5))
    return replace(
        base,
        walls="solid" if rng.random() < 0.85 else "outline",
        wall_px=(thin, int(rng.integers(thin, 7))),
        ext_factor=(1.2, float(rng.uniform(1.3, 1.8))),  # exterior walls 4-9 px
        footprints=("rect", "L", "T", "U") if rng.random() < 0.7 else ("rect", "L"),
        rooms=(4, int(rng.integers(6, 10))),
        merge_prob=float(rng.uniform(0.1, 0.5)),
        doors=str(rng.choice(["arc", "arc", "mixed"])),
        windows=bool(rng.random() < 0.85),
        labels=bool(rng.random() < 0.9),
        room_dims=bool(rng.random() < 0.6),
        furniture=float(rng.choice([0.0, 0.3, 0.6, 0.9])),
        ink=ink,  # type: ignore[arg-type]
        line_ink=None if rng.random() < 0.7 else (grey + 40, grey + 40, grey + 40),  # type: ignore[arg-type]
        corner_cuts=float(rng.choice([0.0, 0.0, 0.0, 0.5])),
        room_fill=bool(rng.random() < 0.12),
        floor_tiles=bool(rng.random() < 0.2),
        compass=bool(not header and rng.random() < 0.25),
        header=header,
        stairs=float(rng.choice([0.0, 0.5, 1.0])),
        closets=float(rng.uniform(0.2, 0.7)),
        baths=float(rng.uniform(0.3, 0.7)),
        closet_doors=float(rng.uniform(0.4, 1.0)),
        balcony=0.4,
        blur=float(rng.uniform(0.2, 0.9)),
        noise=float(rng.uniform(0.0, 3.0)),
        jpeg=int(rng.integers(40, 86)),
    )


# =============================================================================================
# Results
# =============================================================================================
@dataclass
class SynthPlan:
    """One generated plan: the image (BGR uint8) and its exact ground truth."""

    image: np.ndarray
    rooms: list[dict[str, Any]]  # {"id","label","polygon"} in pixels
    style: str
    seed: int | list[int] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def extension(self) -> str:
        return ".jpg" if self.meta.get("jpeg") else ".png"

    def truth_dict(self, image_name: str) -> dict[str, Any]:
        """The ground-truth JSON of ``data/samples/``."""
        out: dict[str, Any] = {
            "image": image_name,
            "width": self.width,
            "height": self.height,
            "style": self.style,
        }
        if self.seed is not None:
            out["seed"] = self.seed
        out.update(self.meta.get("facts", {}))
        out["rooms"] = self.rooms
        return out

    def truth(self, name: str = "") -> "GroundTruth":
        """The ground truth as a :class:`roomkit.qa.evaluate.GroundTruth` (score it in memory)."""
        from roomkit.qa.evaluate import GroundTruth

        return GroundTruth.from_dict(self.truth_dict(f"{name or 'plan'}{self.extension}"), name=name)

    def encode(self) -> bytes:
        """The image file's bytes (PNG, or JPEG at the style's quality)."""
        img = self.image
        if img.ndim == 3 and np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(img[..., 1], img[..., 2]):
            img = img[..., 0]  # grey plans are stored as one channel
        if self.meta.get("jpeg"):
            ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(self.meta["jpeg"])])
        else:
            ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 9])
        if not ok:  # pragma: no cover - OpenCV encoders do not fail on uint8 arrays
            raise RuntimeError("image encoding failed")
        return buf.tobytes()

    def save(self, out_dir: str | Path, name: str) -> tuple[Path, Path]:
        """Write ``<name>.png|jpg`` and ``<name>.json``; returns both paths."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        image_path = out_dir / f"{name}{self.extension}"
        image_path.write_bytes(self.encode())
        json_path = out_dir / f"{name}.json"
        json_path.write_text(json.dumps(self.truth_dict(image_path.name)) + "\n", encoding="utf-8")
        return image_path, json_path


# =============================================================================================
# Layout
# =============================================================================================
@dataclass
class _Layout:
    footprint: Polygon
    cells: list[Polygon]  # centre-line room polygons
    parts: list[list[Rect]]  # rectangles each room is made of
    ppm: float  # pixels per metre
    kind: str = "rect"
    carved: tuple[tuple[int, str], ...] = ()  # (cell, label) carved out of a larger room: closets, baths


def _footprint_blocks(kind: str, x0: int, y0: int, w: int, h: int, rng: np.random.Generator) -> list[Rect]:
    """Rectangular blocks whose union is an axis-aligned rect/L/T/U footprint."""
    x1, y1 = x0 + w, y0 + h

    def frac(lo: float, hi: float, n: int) -> int:
        return int(round(rng.uniform(lo, hi) * n))

    if kind == "L":
        cw, ch = frac(0.3, 0.5, w), frac(0.3, 0.5, h)
        corner = int(rng.integers(4))
        if corner == 0:  # top-right notch
            return [(x0, y0, x1 - cw, y0 + ch), (x0, y0 + ch, x1, y1)]
        if corner == 1:  # top-left notch
            return [(x0 + cw, y0, x1, y0 + ch), (x0, y0 + ch, x1, y1)]
        if corner == 2:  # bottom-right notch
            return [(x0, y0, x1, y1 - ch), (x0, y1 - ch, x1 - cw, y1)]
        return [(x0, y0, x1, y1 - ch), (x0 + cw, y1 - ch, x1, y1)]
    if kind == "T":
        ch = frac(0.4, 0.55, h)
        sx0 = x0 + frac(0.22, 0.32, w)
        sx1 = x1 - frac(0.22, 0.32, w)
        if rng.random() < 0.5:
            return [(x0, y0, x1, y0 + ch), (sx0, y0 + ch, sx1, y1)]
        return [(sx0, y0, sx1, y1 - ch), (x0, y1 - ch, x1, y1)]
    if kind == "U":
        ch = frac(0.35, 0.5, h)
        ax = x0 + frac(0.28, 0.36, w)
        bx = x1 - frac(0.28, 0.36, w)
        if rng.random() < 0.5:  # opening at the top
            return [(x0, y0, ax, y0 + ch), (bx, y0, x1, y0 + ch), (x0, y0 + ch, x1, y1)]
        return [(x0, y0, x1, y1 - ch), (x0, y1 - ch, ax, y1), (bx, y1 - ch, x1, y1)]
    return [(x0, y0, x1, y1)]


def _split(rect: Rect, rng: np.random.Generator, min_side: int, target_area: float, depth: int = 0) -> list[Rect]:
    x0, y0, x1, y1 = rect
    w, h = x1 - x0, y1 - y0
    if depth > 12 or w * h <= target_area * rng.uniform(0.75, 1.5):
        return [rect]
    can_v, can_h = w >= 2 * min_side, h >= 2 * min_side
    if not (can_v or can_h):
        return [rect]
    if can_v and can_h:
        vertical = (w > h) if abs(w - h) > 0.25 * max(w, h) else bool(rng.random() < 0.5)
    else:
        vertical = can_v
    lo, hi = (x0, x1) if vertical else (y0, y1)
    cut = int(round(lo + rng.uniform(0.3, 0.7) * (hi - lo)))
    cut = min(max(cut, lo + min_side), hi - min_side)
    if vertical:
        a, b = (x0, y0, cut, y1), (cut, y0, x1, y1)
    else:
        a, b = (x0, y0, x1, cut), (x0, cut, x1, y1)
    return _split(a, rng, min_side, target_area, depth + 1) + _split(b, rng, min_side, target_area, depth + 1)


def _clean(poly: Any) -> Polygon:
    """Drop collinear vertices (shapely keeps them after unions)."""
    return shapely.simplify(shapely.normalize(poly), 0.0)


def _make_layout(style: Style, rng: np.random.Generator, region: Rect, ppm: float | None = None) -> _Layout:
    """Footprint and rooms filling ``region`` (x0, y0, x1, y1); ``ppm`` fixed for a second floor."""
    rx0, ry0, rx1, ry1 = region
    fw, fh = rx1 - rx0, ry1 - ry0
    if ppm is None:
        footprint_m = float(rng.uniform(9.0, 16.0)) if not style.single_room else float(rng.uniform(4.0, 7.0))
        ppm = max(fw, fh) / footprint_m
    kind = str(rng.choice(style.footprints))
    blocks = _footprint_blocks(kind, rx0, ry0, fw, fh, rng)
    footprint = _clean(unary_union([box(*b) for b in blocks]))
    if style.single_room:
        rects_per_room = [blocks]
    else:
        n_rooms = int(rng.integers(style.rooms[0], style.rooms[1] + 1))
        target = footprint.area / n_rooms
        min_side = max(int(round(1.6 * ppm)), 12)
        cells: list[Rect] = []
        for b in blocks:
            cells.extend(_split(b, rng, min_side, target))
        rects_per_room = [[c] for c in cells]
        # merge some neighbours into L-shaped rooms (shared edge shorter than both sides)
        order = rng.permutation(len(rects_per_room))
        merged: set[int] = set()
        for i in order:
            if i in merged or rng.random() >= style.merge_prob:
                continue
            a = rects_per_room[i][0]
            for j in rng.permutation(len(rects_per_room)):
                if j == i or j in merged or len(rects_per_room) - len(merged) <= 2:
                    continue
                b = rects_per_room[j][0]
                shared = box(*a).intersection(box(*b))
                if shared.length < min_side or shared.area > 0:
                    continue
                union = _clean(box(*a).union(box(*b)))
                if len(union.exterior.coords) - 1 == 6 and union.area < 0.45 * footprint.area:
                    rects_per_room[i] = [a, b]
                    merged.update({int(i), int(j)})
                    break
        rects_per_room = [r for k, r in enumerate(rects_per_room) if k not in merged or len(r) == 2]
    carved: list[tuple[int, str]] = []
    if (style.closets or style.baths) and not style.single_room:
        rects_per_room, carved = _carve(rects_per_room, style, rng, ppm)
    cells_poly = [_clean(unary_union([box(*r) for r in rs])) for rs in rects_per_room]
    if style.corner_cuts and rng.random() < style.corner_cuts:
        footprint, cells_poly = _cut_corners(footprint, cells_poly, style, rng, ppm)
    return _Layout(footprint=footprint, cells=cells_poly, parts=rects_per_room, ppm=ppm, kind=kind,
                   carved=tuple(carved))


def _carve(rooms: list[list[Rect]], style: Style, rng: np.random.Generator,
           ppm: float) -> tuple[list[list[Rect]], list[tuple[int, str]]]:
    """Give a corner or a whole side of some large rectangular rooms to a bath (``style.baths``,
    1.5-2.2 m deep) or a closet (``style.closets``, 0.6-0.9 m deep), as listing plans have them.

    Returns the new room list (carved rooms appended) and the (index, label) of each carved room.
    """
    out = [list(r) for r in rooms]
    carved: list[tuple[int, str]] = []
    limits = {"bath": 2, "closet": 4}
    for label, chance, (d_lo, d_hi), (l_lo, l_hi) in (("bath", style.baths, (1.5, 2.2), (1.8, 2.6)),
                                                       ("closet", style.closets, (0.6, 0.9), (1.0, 2.2))):
        if not chance:
            continue
        for idx in range(len(out)):
            if len(out[idx]) != 1 or sum(lab == label for _, lab in carved) >= limits[label]:
                continue
            if any(i == idx for i, _ in carved):
                continue
            x0, y0, x1, y1 = out[idx][0]
            w, h = x1 - x0, y1 - y0
            need = 2.6 if label == "closet" else d_lo + 1.9
            if min(w, h) < need * ppm or w * h < 9.0 * ppm**2 or rng.random() >= chance:
                continue
            side = int(rng.integers(4))  # top, right, bottom, left
            depth = max(10, int(round(min(rng.uniform(d_lo, d_hi), min(w, h) / ppm - 1.9) * ppm)))
            span = w if side in (0, 2) else h
            length = int(round(rng.uniform(l_lo, l_hi) * ppm))
            if (label == "closet" and rng.random() < 0.3) or length > span - 1.2 * ppm:
                length = span  # the whole side: the room stays a rectangle
            start = rng.random() < 0.5  # at the start (left/top) or the end of the side
            if side in (0, 2):
                cy0, cy1 = (y0, y0 + depth) if side == 0 else (y1 - depth, y1)
                cx0, cx1 = (x0, x0 + length) if start else (x1 - length, x1)
                rest_main = (x0, cy1, x1, y1) if side == 0 else (x0, y0, x1, cy0)
                rest_arm = (cx1, cy0, x1, cy1) if start else (x0, cy0, cx0, cy1)
            else:
                cx0, cx1 = (x1 - depth, x1) if side == 1 else (x0, x0 + depth)
                cy0, cy1 = (y0, y0 + length) if start else (y1 - length, y1)
                rest_main = (x0, y0, cx0, y1) if side == 1 else (cx1, y0, x1, y1)
                rest_arm = (cx0, cy1, cx1, y1) if start else (cx0, y0, cx1, cy0)
            arm_empty = rest_arm[0] >= rest_arm[2] or rest_arm[1] >= rest_arm[3]
            out[idx] = [rest_main] if arm_empty else [rest_main, rest_arm]
            carved.append((len(out), label))
            out.append([(cx0, cy0, cx1, cy1)])
    return out, carved


def _segments(geom: Any) -> list[tuple[int, int, int, int]]:
    """Axis-aligned segments (x0, y0, x1, y1) with x0<=x1, y0<=y1 of a line geometry."""
    out = []
    if geom.is_empty:
        return out
    lines = list(geom.geoms) if hasattr(geom, "geoms") else [geom]
    for line in lines:
        if line.geom_type == "LineString":
            coords = list(line.coords)
            for (ax, ay), (bx, by) in zip(coords, coords[1:]):
                if abs(ax - bx) > 1e-6 and abs(ay - by) > 1e-6:
                    continue  # oblique (angled or curved wall): no openings, drawn as a polygon
                ax, ay, bx, by = (int(round(v)) for v in (ax, ay, bx, by))
                if (ax, ay) == (bx, by):
                    continue
                out.append((min(ax, bx), min(ay, by), max(ax, bx), max(ay, by)))
        elif hasattr(line, "geoms"):
            out.extend(_segments(line))
    return out


def _oblique_lines(ring: Any) -> list[LineString]:
    """Runs of consecutive non-axis-aligned edges of a closed ring (angled and curved walls)."""
    coords = list(ring.coords)
    runs: list[list[tuple[float, float]]] = []
    current: list[tuple[float, float]] = []
    for a, b in zip(coords, coords[1:]):
        if abs(a[0] - b[0]) > 1e-6 and abs(a[1] - b[1]) > 1e-6:
            if not current:
                current = [a]
            current.append(b)
        elif current:
            runs.append(current)
            current = []
    if current:
        if runs and runs[0][0] == current[-1]:
            runs[0] = current + runs[0][1:]
        else:
            runs.append(current)
    return [LineString(r) for r in runs]


def _cut_corners(footprint: Polygon, cells: list[Polygon], style: Style, rng: np.random.Generator,
                 ppm: float) -> tuple[Polygon, list[Polygon]]:
    """Replace one or two convex corners of the footprint by a 45° chamfer or a quarter circle."""
    fx0, fy0, fx1, fy1 = footprint.bounds
    corners = [(fx0, fy0, 1, 1), (fx1, fy0, -1, 1), (fx0, fy1, 1, -1), (fx1, fy1, -1, -1)]
    vertices = {(round(x), round(y)) for x, y in footprint.exterior.coords}
    candidates = [c for c in corners if (round(c[0]), round(c[1])) in vertices]
    rng.shuffle(candidates)
    for cx, cy, sx, sy in candidates[: int(rng.integers(1, 3))]:
        corner = shapely.Point(cx + sx * 0.5, cy + sy * 0.5)
        owner = next((k for k, c in enumerate(cells) if c.contains(corner)), None)
        if owner is None:
            continue
        bx0, by0, bx1, by1 = cells[owner].bounds
        d = int(round(rng.uniform(0.3, 0.5) * min(bx1 - bx0, by1 - by0)))
        if d < 1.0 * ppm:
            continue
        square = box(min(cx, cx + sx * d), min(cy, cy + sy * d), max(cx, cx + sx * d), max(cy, cy + sy * d))
        if rng.random() < 0.5:
            cut = Polygon([(cx, cy), (cx + sx * d, cy), (cx, cy + sy * d)])
        else:
            disk = shapely.Point(cx + sx * d, cy + sy * d).buffer(d, quad_segs=max(4, int(d / 12)))
            cut = square.difference(disk)
        new_cell = _clean(cells[owner].difference(cut))
        if new_cell.geom_type != "Polygon" or new_cell.area < 0.6 * cells[owner].area:
            continue
        footprint = _clean(footprint.difference(cut))
        cells = [new_cell if k == owner else c for k, c in enumerate(cells)]
    return footprint, cells


def _line_key(seg: tuple[int, int, int, int]) -> tuple[str, int]:
    """The wall line an axis-aligned segment lies on."""
    return ("h", seg[1]) if seg[1] == seg[3] else ("v", seg[0])


def _wall_rect(seg: tuple[int, int, int, int], t: int) -> Rect:
    a = t // 2
    x0, y0, x1, y1 = seg
    if y0 == y1:  # horizontal
        return (x0 - a, y0 - a, x1 - a + t, y0 - a + t)
    return (x0 - a, y0 - a, x0 - a + t, y1 - a + t)


# =============================================================================================
# Drawing helpers
# =============================================================================================
def _fill_rect(layer: np.ndarray, r: Rect, value: int = 255) -> None:
    x0, y0, x1, y1 = r
    h, w = layer.shape[:2]
    x0, x1 = max(x0, 0), min(x1, w)
    y0, y1 = max(y0, 0), min(y1, h)
    if x1 > x0 and y1 > y0:
        layer[y0:y1, x0:x1] = value


def _text_size(text: str, font: int, scale: float, thick: int) -> tuple[int, int, int]:
    (tw, th), base = cv2.getTextSize(text, font, scale, thick)
    return tw, th, base


def _put_text_rotated(layer: np.ndarray, text: str, center: tuple[float, float], font: int, scale: float,
                      thick: int) -> None:
    tw, th, base = _text_size(text, font, scale, thick)
    patch = np.zeros((th + base + 4, tw + 4), np.uint8)
    cv2.putText(patch, text, (2, th + 2), font, scale, 255, thick, cv2.LINE_AA)
    patch = np.rot90(patch)  # reads bottom-to-top, as vertical dimensions do
    ph, pw = patch.shape
    x0, y0 = int(round(center[0] - pw / 2)), int(round(center[1] - ph / 2))
    h, w = layer.shape
    if x0 < 0 or y0 < 0 or x0 + pw > w or y0 + ph > h:
        return
    np.maximum(layer[y0:y0 + ph, x0:x0 + pw], patch, out=layer[y0:y0 + ph, x0:x0 + pw])


_FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_PLAIN, cv2.FONT_HERSHEY_COMPLEX,
          cv2.FONT_HERSHEY_TRIPLEX)

#: Smallest font scale a room label is drawn at (smaller is unreadable at plan resolution).
_MIN_TEXT_SCALE = 0.28
#: Short forms listing plans print where a name does not fit ("BR 2", "KIT", "WC").
_ABBREVIATIONS = (
    ("MASTER BEDROOM", "MBR"), ("MASTER BR", "MBR"), ("BEDROOM", "BR"), ("LIVING ROOM", "LIV"),
    ("LIVING", "LIV"), ("LOUNGE", "LNGE"), ("KITCHEN", "KIT"), ("DINING RM", "DIN"), ("DINING", "DIN"),
    ("FAMILY ROOM", "FAM"), ("FAMILY RM", "FAM"), ("FAMILY", "FAM"), ("BATHROOM", "BATH"), ("TOILET", "WC"),
    ("W.C.", "WC"), ("CLOSET", "CL"), ("LAUNDRY", "LDRY"), ("STORAGE", "STOR"), ("OFFICE", "OFF"),
    ("STUDY", "STDY"), ("BALCONY", "BALC"), ("TERRACE", "TERR"), ("STUDIO", "STUDIO"), ("FOYER", "FOY"),
)


def _abbreviate(name: str) -> str:
    """A listing plan's short form of a room name ("Bedroom 2" → "BR 2"), or the name itself."""
    upper = name.upper().rstrip(".")
    for full, short in _ABBREVIATIONS:
        if upper.startswith(full):
            return short + upper[len(full):]
    return name


def _thickness(scale: float) -> int:
    return max(1, int(round(scale * 1.6)))


def _fit_scale(lines: list[str], font: int, scale: float, room_w: float) -> float:
    """The font scale at which the widest line takes at most 0.8 of the room's width."""
    widest = max(_text_size(t, font, scale, _thickness(scale))[0] for t in lines)
    if widest > 0.8 * room_w:
        scale *= 0.8 * room_w / widest
    return scale


def _line_gap(sizes: list[tuple[int, int, int]]) -> int:
    return int(max(3, sizes[0][1] * 0.5))


def _block_size(lines: list[str], font: int, scale: float) -> tuple[int, int]:
    """Width and height (px) of a label's lines stacked at ``scale``."""
    sizes = [_text_size(t, font, scale, _thickness(scale)) for t in lines]
    total_h = sum(sz[1] + sz[2] for sz in sizes) + _line_gap(sizes) * (len(lines) - 1)
    return max(sz[0] for sz in sizes), total_h


def _label_box(cx: float, cy: float, widest: float, total_h: float) -> Polygon:
    return box(cx - widest / 2 - 2, cy - total_h / 2 - 2, cx + widest / 2 + 2, cy + total_h / 2 + 2)


def _free_spot(candidates: Sequence[tuple[float, float]], widest: float, total_h: float, inner: Any,
               occupied: list[Polygon]) -> tuple[float, float] | None:
    """The first centre where a label block lies inside the room clear of what is drawn."""
    for cx, cy in candidates:
        block = _label_box(cx, cy, widest, total_h)
        if inner.contains(block) and not any(block.intersects(o) for o in occupied):
            return cx, cy
    return None


def _fallback_placement(lines: list[str], font: int, scale: float, room_w: float, centre: tuple[float, float],
                        inner: Any, occupied: list[Polygon]) -> tuple[list[str], float, tuple[float, float]] | None:
    """Where a label that found no place goes (deterministic: draws nothing from the generator):
    the free spot nearest the room's centre, at full size, at 0.8, 0.65 and 0.5 of it, then with the
    name abbreviated at those sizes."""
    short = [_abbreviate(lines[0])] + lines[1:]
    variants = [lines] if short == lines else [lines, short]
    ix0, iy0, ix1, iy1 = inner.bounds
    for variant in variants:
        fit = _fit_scale(variant, font, scale, room_w)
        for shrink in (1.0, 0.8, 0.65, 0.5):
            s = fit * shrink
            if s < _MIN_TEXT_SCALE:
                continue
            widest, total_h = _block_size(variant, font, s)
            if widest + 4 > ix1 - ix0 or total_h + 4 > iy1 - iy0:
                continue
            step = max(3.0, min(widest, total_h) / 3.0)
            xs = np.arange(ix0 + widest / 2 + 2, ix1 - widest / 2 - 2 + 1e-6, step)
            ys = np.arange(iy0 + total_h / 2 + 2, iy1 - total_h / 2 - 2 + 1e-6, step)
            grid = [(float(x), float(y)) for y in ys for x in xs]
            grid.sort(key=lambda p: (p[0] - centre[0]) ** 2 + (p[1] - centre[1]) ** 2)
            spot = _free_spot(grid, widest, total_h, inner, occupied)
            if spot is not None:
                return variant, s, spot
    return None



def _fmt_len(metres: float, imperial: bool) -> str:
    if imperial:
        inches = int(round(metres / 0.0254))
        return f"{inches // 12}'{inches % 12}\""
    return f"{metres:.2f}"


# Furniture templates: primitives in a unit box (x right, y down), drawn after rotation by k*90°.
def _furniture_templates() -> dict[str, list[tuple[tuple[float, float], list[tuple]]]]:
    bed = ((1.6, 2.0), [("rect", 0, 0, 1, 1), ("rect", 0.06, 0.04, 0.46, 0.2), ("rect", 0.54, 0.04, 0.94, 0.2),
                        ("line", 0, 0.3, 1, 0.3)])
    single_bed = ((0.95, 2.0), [("rect", 0, 0, 1, 1), ("rect", 0.12, 0.04, 0.88, 0.18), ("line", 0, 0.3, 1, 0.28)])
    nightstand = ((0.45, 0.45), [("rect", 0, 0, 1, 1), ("circle", 0.5, 0.5, 0.25)])
    wardrobe = ((1.8, 0.6), [("rect", 0, 0, 1, 1), ("line", 0, 0, 1, 1), ("line", 0, 1, 1, 0)])
    sofa = ((2.2, 0.9), [("rect", 0, 0, 1, 1), ("rect", 0, 0, 1, 0.3), ("rect", 0, 0.3, 0.1, 1),
                         ("rect", 0.9, 0.3, 1, 1), ("line", 0.5, 0.3, 0.5, 1)])
    armchair = ((0.85, 0.85), [("rect", 0, 0, 1, 1), ("rect", 0.15, 0.3, 0.85, 1)])
    coffee = ((1.1, 0.6), [("rect", 0, 0, 1, 1)])
    round_table = ((1.2, 1.2), [("circle", 0.5, 0.5, 0.3), ("circle", 0.5, 0.07, 0.07), ("circle", 0.5, 0.93, 0.07),
                                ("circle", 0.07, 0.5, 0.07), ("circle", 0.93, 0.5, 0.07)])
    dining = ((1.8, 1.4), [("rect", 0.15, 0.25, 0.85, 0.75), ("rect", 0.22, 0.02, 0.38, 0.18),
                           ("rect", 0.62, 0.02, 0.78, 0.18), ("rect", 0.22, 0.82, 0.38, 0.98),
                           ("rect", 0.62, 0.82, 0.78, 0.98)])
    counter = ((2.4, 0.6), [("rect", 0, 0, 1, 1), ("rect", 0.08, 0.15, 0.3, 0.85), ("circle", 0.55, 0.3, 0.08),
                            ("circle", 0.55, 0.7, 0.08), ("circle", 0.72, 0.3, 0.08), ("circle", 0.72, 0.7, 0.08)])
    fridge = ((0.7, 0.7), [("rect", 0, 0, 1, 1), ("line", 0, 0.15, 1, 0.15)])
    tub = ((1.7, 0.75), [("rect", 0, 0, 1, 1), ("ellipse", 0.5, 0.5, 0.42, 0.36), ("circle", 0.12, 0.5, 0.04)])
    toilet = ((0.4, 0.65), [("rect", 0.05, 0, 0.95, 0.28), ("ellipse", 0.5, 0.62, 0.42, 0.34)])
    basin = ((0.6, 0.45), [("rect", 0, 0, 1, 1), ("ellipse", 0.5, 0.55, 0.35, 0.3)])
    shower = ((0.9, 0.9), [("rect", 0, 0, 1, 1), ("line", 0, 0, 1, 1), ("line", 0, 1, 1, 0), ("circle", 0.5, 0.5, 0.06)])
    desk = ((1.4, 0.7), [("rect", 0, 0, 1, 1), ("circle", 0.5, 1.25, 0.18)])
    washer = ((1.3, 0.65), [("rect", 0, 0, 0.48, 1), ("rect", 0.52, 0, 1, 1), ("circle", 0.24, 0.5, 0.14),
                            ("circle", 0.76, 0.5, 0.14)])
    plant = ((0.5, 0.5), [("circle", 0.5, 0.5, 0.45), ("circle", 0.5, 0.5, 0.2)])
    stairs = ((1.0, 2.6), [("rect", 0, 0, 1, 1)] + [("line", 0, y / 10, 1, y / 10) for y in range(1, 10)]
              + [("line", 0.5, 0.92, 0.5, 0.12), ("line", 0.5, 0.12, 0.38, 0.22), ("line", 0.5, 0.12, 0.62, 0.22)])
    return {
        "bedroom": [bed, nightstand, wardrobe, single_bed, plant],
        "living": [sofa, coffee, armchair, armchair, plant, round_table],
        "dining": [dining, plant],
        "kitchen": [counter, fridge, round_table],
        "bath": [tub, toilet, basin, shower],
        "wc": [toilet, basin],
        "study": [desk, wardrobe, armchair],
        "laundry": [washer, basin],
        "studio": [bed, sofa, coffee, dining, counter, plant],
        "family": [sofa, armchair, coffee, plant, stairs],
        "hall": [stairs, plant],
        "closet": [],
        "storage": [],
    }


_TEMPLATES = _furniture_templates()
_TEMPLATES_BY_NAME = {"toilet": _TEMPLATES["wc"][0][1], "basin": _TEMPLATES["wc"][1][1]}
_FIXTURE_ROOMS = ("bath", "wc", "kitchen", "laundry")

_LABELS_BIG = ["living", "kitchen", "bedroom", "dining", "bedroom", "study", "bedroom", "family", "bedroom"]
_LABELS_SMALL = ["bath", "wc", "closet", "laundry", "hall", "storage"]
#: The type (roomkit.text's vocabulary) of each synthetic room label, written to the ground truth.
ROOM_TYPES = {
    "living": "living", "kitchen": "kitchen", "bedroom": "bedroom", "dining": "dining", "family": "living",
    "study": "office", "bath": "bathroom", "wc": "bathroom", "closet": "closet", "laundry": "laundry",
    "hall": "hall", "storage": "storage", "studio": "other", "balcony": "balcony",
}
_LABEL_TEXT = {
    "living": ["LIVING", "LIVING ROOM", "Living Room", "LOUNGE"],
    "kitchen": ["KITCHEN", "Kitchen", "KIT."],
    "bedroom": ["BEDROOM", "Bedroom", "BR", "MASTER BR"],
    "dining": ["DINING", "Dining", "DINING RM"],
    "family": ["FAMILY", "FAMILY RM", "Family Room", "DEN"],
    "study": ["STUDY", "OFFICE", "Study"],
    "bath": ["BATH", "Bath", "BATHROOM"],
    "wc": ["WC", "W.C.", "TOILET"],
    "closet": ["CL.", "CLOSET", "WIC"],
    "laundry": ["LAUNDRY", "UTIL."],
    "hall": ["HALL", "ENTRY", "FOYER"],
    "storage": ["STOR.", "STORAGE"],
    "studio": ["STUDIO", "ROOM", "Studio"],
    "balcony": ["BALCONY", "Balcony", "TERRACE", "Terrace", "DECK"],
}


# =============================================================================================
# Generator
# =============================================================================================
def generate_plan(seed: int | Sequence[int] | np.random.Generator = 0, style: str | Style = "clean",
                  **overrides: Any) -> SynthPlan:
    """Draw one plan. ``seed`` fixes everything; ``style`` is a name from :data:`STYLES` or a Style.

    ``seed`` is an int, a sequence of ints (plan ``i`` of ``roomkit synth --seed S`` is
    ``[S, i]``) or a ready :class:`numpy.random.Generator` (then not recorded in the JSON).

    ``overrides`` replace style fields for this plan, e.g. ``footprints=("U",)`` or ``size=(800, 900)``.
    """
    if isinstance(seed, np.random.Generator):
        rng, seed_value = seed, None
    else:
        seed_value = int(seed) if np.ndim(seed) == 0 else [int(v) for v in seed]  # type: ignore[union-attr]
        rng = np.random.default_rng(seed_value)
    st = get_style(style)
    if st.name == "random":
        st = _random_style(rng)
    elif st.name == "r3d" and st == STYLES["r3d"]:
        st = _r3d_style(rng)
    if overrides:
        unknown = sorted(set(overrides) - set(Style.__dataclass_fields__))
        if unknown:
            raise InputError(f"unknown style field(s): {', '.join(unknown)}")
        st = replace(st, **overrides)
    return _Renderer(st, rng).run(seed_value)


class _Renderer:
    def __init__(self, style: Style, rng: np.random.Generator) -> None:
        self.s = style
        self.rng = rng

    # -- page -------------------------------------------------------------------------------------
    def run(self, seed: int | list[int] | None) -> SynthPlan:
        s, rng = self.s, self.rng
        long_side = int(rng.integers(s.size[0], s.size[1] + 1))
        aspect = float(rng.uniform(0.62, 0.9))
        if s.floors > 1:  # floors side by side on a landscape sheet
            width, height = long_side, int(round(long_side * rng.uniform(0.9, 1.2) / s.floors))
        elif rng.random() < 0.5:
            width, height = long_side, int(round(long_side * aspect))
        else:
            width, height = int(round(long_side * aspect)), long_side
        margin_frac = 0.13 if (s.dim_lines or s.title or s.compass or s.header) else 0.07
        margin = int(round(max(min(width, height) * margin_frac * 1.2, 24)))
        if s.rotate:
            margin += int(round(long_side * math.sin(math.radians(s.rotate)) * 0.6))
        self.w, self.h = width, height
        shape = (height, width)
        self.walls = np.zeros(shape, np.uint8)  # alpha layers
        self.lines = np.zeros(shape, np.uint8)
        self.text = np.zeros(shape, np.uint8)
        self.fill = np.zeros(shape, np.uint8)  # poché / furniture tint
        self.floors: list[tuple[np.ndarray, BGR]] = []  # (polygon px, colour) painted under the ink
        self.tiles = np.zeros(shape, np.uint8)
        self.facts: dict[str, Any] = {}  # what this plan shows (footprint, wall px, rotation...)
        rooms: list[dict[str, Any]] = []
        if not s.blank:
            rooms = self._plan(margin)
        image = self._compose()
        image, rooms = self._degrade(image, rooms)
        meta = {"jpeg": s.jpeg, "style": s.to_dict(), "facts": self.facts}
        return SynthPlan(image=image, rooms=rooms, style=s.name, seed=seed, meta=meta)

    # -- plan -------------------------------------------------------------------------------------
    def _plan(self, margin: int) -> list[dict[str, Any]]:
        s, rng = self.s, self.rng
        self.balcony_plan: tuple[str, int] | None = None
        if s.floors <= 1:
            regions = [(margin, margin, self.w - margin, self.h - margin)]
            if s.balcony and not s.single_room and rng.random() < s.balcony:
                # keep a strip of the page free on one side for a balcony outside the footprint
                sides = ["left", "right"] + ([] if s.title else ["bottom"]) + (
                    [] if (s.header or s.compass or s.dim_lines) else ["top"])
                side = str(rng.choice(sides))
                x0, y0, x1, y1 = regions[0]
                extent = (x1 - x0) if side in ("left", "right") else (y1 - y0)
                reserve = int(round(extent * rng.uniform(0.12, 0.2)))
                x0, y0, x1, y1 = (x0 + reserve * (side == "left"), y0 + reserve * (side == "top"),
                                  x1 - reserve * (side == "right"), y1 - reserve * (side == "bottom"))
                regions = [(x0, y0, x1, y1)]
                self.balcony_plan = (side, reserve + margin)
        else:  # floors side by side along the page's long axis, upper floors often smaller
            regions = []
            horizontal = self.w >= self.h
            span = (self.w if horizontal else self.h) - 2 * margin
            step = (span - (s.floors - 1) * margin) // s.floors
            for i in range(s.floors):
                a0 = margin + i * (step + margin)
                if horizontal:
                    x0, y0, x1, y1 = a0, margin, a0 + step, self.h - margin
                else:
                    x0, y0, x1, y1 = margin, a0, self.w - margin, a0 + step
                if i > 0:
                    shrink = rng.uniform(0.7, 1.0, 2)
                    x0 = x1 - int((x1 - x0) * shrink[0]) if horizontal else x0
                    y0 = y1 - int((y1 - y0) * shrink[1])
                regions.append((x0, y0, x1, y1))
        rooms: list[dict[str, Any]] = []
        ppm: float | None = None
        kinds = []
        for i, region in enumerate(regions):
            lay = _make_layout(s, rng, region, ppm)
            if i == 0:
                self._set_walls(lay)
                ppm = lay.ppm
            kinds.append(lay.kind)
            for k, (face, label) in enumerate(self._floor(lay, floor=i)):
                coords = [[float(x), float(y)] for x, y in list(face.exterior.coords)[:-1]]
                room = {"id": f"r{len(rooms) + 1}", "label": label, "type": ROOM_TYPES.get(label, "other"),
                        "area_m2": round(face.area / lay.ppm**2, 3)}
                printed = self.printed[k] if k < len(self.printed) else None
                if printed is not None:  # the label as drawn: name, and the size line if any
                    room["name"], room["size_text"] = printed
                room["polygon"] = coords
                rooms.append(room)
        self.facts["footprint"] = kinds[0] if len(kinds) == 1 else kinds
        if s.floors > 1:
            self.facts["floors"] = s.floors
        return rooms

    def _set_walls(self, lay: _Layout) -> None:
        s, rng = self.s, self.rng
        self.ppm = ppm = lay.ppm
        if s.wall_px:
            t_int = int(rng.integers(s.wall_px[0], s.wall_px[1] + 1))
        else:
            t_int = max(2, int(round(rng.uniform(*s.wall_m) * ppm)))
        t_ext = max(t_int, int(round(t_int * rng.uniform(*s.ext_factor))))
        self.t_int, self.t_ext = t_int, t_ext
        self.facts.update(wall_px=[t_int, t_ext])

    def _floor(self, lay: _Layout, floor: int = 0) -> list[tuple[Polygon, str]]:
        """Walls, openings and contents of one footprint; returns its (room face, label) pairs."""
        s, rng = self.s, self.rng
        self.ppm = lay.ppm
        t_int, t_ext = self.t_int, self.t_ext
        boundary = lay.footprint.boundary

        # wall rectangles, exterior and interior
        ext_segs = _segments(boundary)
        int_segs: set[tuple[int, int, int, int]] = set()
        for cell in lay.cells:
            for seg in _segments(cell.boundary):
                # exact: collinear overlaps with the footprint outline are exterior walls
                int_segs.update(_segments(LineString([seg[:2], seg[2:]]).difference(boundary)))
        # partitions thinner (closets) or thicker (bearing walls) than the rest, per wall line
        self.int_t: dict[tuple[str, int], int] = {}
        if s.wall_vary:
            for key in sorted({_line_key(sg) for sg in int_segs}):
                u = rng.random()
                if u < s.wall_vary:
                    self.int_t[key] = max(2, int(round(t_int * rng.uniform(0.5, 0.75))))
                elif u < 1.4 * s.wall_vary:
                    self.int_t[key] = int(round(t_int * rng.uniform(1.3, 1.7)))
        ext_rects = [_wall_rect(seg, t_ext) for seg in ext_segs]
        int_rects = [_wall_rect(seg, self.int_t.get(_line_key(seg), t_int)) for seg in sorted(int_segs)]
        oblique = [ln.buffer(t_ext / 2, cap_style="square", join_style="mitre")
                   for ln in _oblique_lines(lay.footprint.exterior)]
        walls_geom = unary_union([box(*r) for r in ext_rects + int_rects] + oblique)

        # room faces (the ground truth)
        faces: list[Polygon] = []
        for cell in lay.cells:
            face = cell.difference(walls_geom)
            if face.geom_type == "MultiPolygon":
                face = max(face.geoms, key=lambda g: g.area)
            faces.append(_clean(face))

        labels = self._labels(faces, dict(lay.carved))
        self.cur_labels = labels
        self.n_bedrooms, self.bedroom_no = labels.count("bedroom"), 0
        wall_mask = np.zeros((self.h, self.w), np.uint8)
        for r in ext_rects + int_rects:
            _fill_rect(wall_mask, r)
        if oblique:
            for poly in oblique:
                pts = np.round(np.asarray(poly.exterior.coords) * 16).astype(np.int32)
                cv2.fillPoly(wall_mask, [pts], 255, cv2.LINE_8, shift=4)
            # trim the square ends of straight walls that poke out past an angled/curved wall
            outer = lay.footprint.buffer(t_ext - t_ext // 2, join_style="mitre")
            keep = np.zeros_like(wall_mask)
            cv2.fillPoly(keep, [np.round(np.asarray(outer.exterior.coords) * 16).astype(np.int32)], 255,
                         cv2.LINE_8, shift=4)
            wall_mask &= keep

        # openings: doors between rooms, an entrance, windows on exterior walls
        occupied: list[list[Polygon]] = [[] for _ in faces]
        self._doors(lay, faces, wall_mask, occupied)
        balcony = None
        if floor == 0 and self.balcony_plan is not None:
            balcony = self._balcony(lay, faces, labels, wall_mask, occupied)
        if s.windows:
            self._windows(lay, wall_mask)
        self._draw_walls(wall_mask)

        # contents
        self.printed = [None] * len(faces)
        if s.stairs and rng.random() < s.stairs:
            self._stairs(faces, labels, occupied)
        for k, face in enumerate(faces):
            fixed = s.fixtures and labels[k] in _FIXTURE_ROOMS
            if fixed:  # fixtures stand by the walls first; the name finds room between them
                self._fixtures(face, labels[k], occupied[k])
            if s.labels:
                self.printed[k] = self._label(face, labels[k], occupied[k])
            if s.furniture and (rng.random() < s.furniture or s.single_room) and not fixed:
                self._furnish(face, labels[k], occupied[k])
        if s.dim_lines:
            self._dimension_lines(lay)
        if s.title:
            self._title(lay, floor)
        if s.compass and floor == s.floors - 1:
            self._compass(lay)
        if s.header and floor == 0:
            self._header(lay, faces)
        if balcony is not None:
            face, printed = balcony
            faces, labels = faces + [face], labels + ["balcony"]
            self.printed.append(printed)
        if s.room_fill or s.floor_tiles:
            self._floors(faces, labels)
        return list(zip(faces, labels))

    def _labels(self, faces: list[Polygon], carved: dict[int, str] | None = None) -> list[str]:
        if self.s.single_room:
            return ["studio"]
        carved = carved or {}
        order = sorted((k for k in range(len(faces)) if k not in carved), key=lambda k: -faces[k].area)
        labels = [carved.get(k, "") for k in range(len(faces))]
        big = list(_LABELS_BIG)
        small = list(self.rng.permutation(_LABELS_SMALL))
        bedrooms = 0
        for rank, k in enumerate(order):
            area_m2 = faces[k].area / self.ppm**2
            if area_m2 < 5.0 and small:
                labels[k] = str(small.pop(0))
            elif big:
                labels[k] = big.pop(0)
            else:
                labels[k] = "bedroom"
            bedrooms += labels[k] == "bedroom"
        return labels

    # -- openings -----------------------------------------------------------------------------------
    def _cut(self, wall_mask: np.ndarray, seg: tuple[int, int, int, int], t: int, lo: int, hi: int) -> None:
        """Clear the drawn wall band of ``seg`` between lo..hi along it (the full thickness)."""
        x0, y0, x1, y1 = _wall_rect(seg, t)
        if seg[1] == seg[3]:
            x0, x1 = lo, hi
        else:
            y0, y1 = lo, hi
        _fill_rect(wall_mask, (x0, y0, x1, y1), 0)

    def _door(self, wall_mask: np.ndarray, seg: tuple[int, int, int, int], t: int, k: int, faces: list[Polygon],
              occupied: list[list[Polygon]], width: int, other_room: int | None = None) -> bool:
        """A door in ``seg`` swinging into room ``k``; False when no clear position exists."""
        rng = self.rng
        x0, y0, x1, y1 = seg
        horizontal = y0 == y1
        a0, a1 = (x0, x1) if horizontal else (y0, y1)
        clear = max(self.t_ext, self.t_int) + 3
        closet = bool(self.s.closet_doors and other_room is not None
                      and "closet" in (self.cur_labels[k], self.cur_labels[other_room]))
        if a1 - a0 < width + 2 * clear and not closet:
            return False
        face = faces[k]
        a = t // 2
        c = y0 if horizontal else x0
        probe_pt = ((a0 + a1) / 2, c + t) if horizontal else (c + t, (a0 + a1) / 2)
        side = 1 if face.buffer(0.5).contains(shapely.Point(*probe_pt)) else -1
        face_line = c - a + t if side > 0 else c - a  # the wall face on room k's side
        kind = self.s.doors
        closet_side = side
        if closet:  # a closet front: bi-fold or sliding (bypass) doors across most of it
            if rng.random() < self.s.closet_doors:
                kind = str(rng.choice(["bifold", "bypass"]))
                if self.cur_labels[k] != "closet":  # the doors fold into / sit on the closet's side
                    closet_side = -side
                # just clear of the walls that end this one (the thickest there can be)
                clear = (max([self.t_ext, self.t_int, t] + list(self.int_t.values())) + 1) // 2 + 2
                width = int(round((a1 - a0 - 2 * clear) * rng.uniform(0.75, 1.0)))
                if width < max(8, 0.5 * self.ppm):
                    return False
            elif a1 - a0 < width + 2 * clear:
                return False
        if kind == "mixed":
            kind = str(rng.choice(["arc", "arc", "arc", "double", "slide", "gap"]))
        elif kind == "arc" and rng.random() < 0.12:
            kind = "double"
        if kind == "slide" and t < 6:
            kind = "gap"  # no room for panels inside a hairline wall
        if kind == "double":
            width = int(width * 1.6)
            if a1 - a0 < width + 2 * clear:
                kind, width = "arc", int(width / 1.6)
        others = occupied[k] + (occupied[other_room] if other_room is not None else [])
        inside = face.buffer(1.0)
        swings = kind in ("arc", "double")
        for _ in range(12):
            lo = int(rng.integers(a0 + clear, a1 - clear - width + 1))
            hi = lo + width
            hinges = [(lo, hi) if rng.random() < 0.5 else (hi, lo)] if kind != "double" else [(lo, hi), (hi, lo)]
            r = width if kind != "double" else width // 2
            if horizontal:
                swing = box(lo, min(face_line, face_line + side * r), hi, max(face_line, face_line + side * r))
                opening = box(lo, c - a - 2, hi, c - a + t + 2)
            else:
                swing = box(min(face_line, face_line + side * r), lo, max(face_line, face_line + side * r), hi)
                opening = box(c - a - 2, lo, c - a + t + 2, hi)
            if kind == "bifold":  # the leaves fold into the closet, a panel's width deep at most
                fl = c - a + t if closet_side > 0 else c - a
                d = max(3, min(int(round(0.35 * width / 4)), int(round(0.25 * self.ppm))))
                fold = (box(lo, min(fl, fl + closet_side * d), hi, max(fl, fl + closet_side * d)) if horizontal
                        else box(min(fl, fl + closet_side * d), lo, max(fl, fl + closet_side * d), hi))
                opening = opening.union(fold)
            claim = opening.union(swing) if swings else opening
            if swings and not inside.contains(swing):
                continue
            if any(claim.intersects(o) for o in others):
                continue
            break
        else:
            return False
        self._cut(wall_mask, seg, t, lo, hi)
        thick = max(1, int(round(t / 5))) if t > 6 else 1
        if swings:
            for hinge, other in hinges:
                if horizontal:
                    hx, hy = hinge, face_line
                    leaf, along = (0, side), (1 if other > hinge else -1, 0)
                else:
                    hx, hy = face_line, hinge
                    leaf, along = (side, 0), (0, 1 if other > hinge else -1)
                cv2.line(self.lines, (hx, hy), (hx + leaf[0] * r, hy + leaf[1] * r), 255, thick + 1, cv2.LINE_AA)
                a1_deg = math.degrees(math.atan2(leaf[1], leaf[0]))
                a2_deg = math.degrees(math.atan2(along[1], along[0]))
                start = a1_deg if (a2_deg - a1_deg) % 360 == 90 else a2_deg
                cv2.ellipse(self.lines, (hx, hy), (r, r), 0, start, start + 90, 255, 1, cv2.LINE_AA)
        elif kind in ("bifold", "bypass"):
            self._closet_doors(kind, horizontal, lo, hi, c - a, t, closet_side)
            self.facts["closet_doors"] = self.facts.get("closet_doors", 0) + 1
        elif kind == "slide":  # two panels sliding past each other inside the wall
            w0, w1 = c - a, c - a + t - 1
            mid = (w0 + w1) // 2
            span = int(round(0.55 * width))
            for (p0, p1), (q0, q1) in (((lo, lo + span), (w0 + 1, mid)), ((hi - span, hi - 1), (mid, w1 - 1))):
                if horizontal:
                    cv2.rectangle(self.lines, (p0, q0), (p1, q1), 255, 1)
                else:
                    cv2.rectangle(self.lines, (q0, p0), (q1, p1), 255, 1)
        else:  # plain opening: thin jamb lines across the wall ends
            if horizontal:
                for x in (lo, hi - 1):
                    cv2.line(self.lines, (x, c - a), (x, c - a + t - 1), 255, 1)
            else:
                for y in (lo, hi - 1):
                    cv2.line(self.lines, (c - a, y), (c - a + t - 1, y), 255, 1)
        occupied[k].append(claim.buffer(3))
        if other_room is not None:
            occupied[other_room].append(opening.buffer(3))
        return True

    def _doors(self, lay: _Layout, faces: list[Polygon], wall_mask: np.ndarray,
               occupied: list[list[Polygon]]) -> None:
        rng = self.rng
        n = len(lay.cells)
        width = max(8, int(round(rng.uniform(0.8, 0.95) * self.ppm)))
        if self.s.doors == "none":
            return
        # adjacency: any boundary two cells share is an interior wall
        shared: dict[tuple[int, int], list[tuple[int, int, int, int]]] = {}
        for i in range(n):
            for j in range(i + 1, n):
                segs = _segments(lay.cells[i].boundary.intersection(lay.cells[j].boundary))
                if segs:
                    shared[(i, j)] = segs
        if n > 1:
            # a random spanning tree (every room reachable) plus a few extra doors
            seen = {int(rng.integers(n))}
            done: set[tuple[int, int]] = set()
            edges = list(shared)
            while len(seen) < n:
                frontier = [e for e in edges if (e[0] in seen) != (e[1] in seen)]
                if not frontier:
                    break
                e = frontier[int(rng.integers(len(frontier)))]
                seen.update(e)
                if self._door_between(e, shared[e], faces, wall_mask, occupied, width):
                    done.add(e)
            for e in edges:
                if e not in done and rng.random() < 0.12:
                    self._door_between(e, shared[e], faces, wall_mask, occupied, width)
        # an entrance on an exterior wall
        for k in rng.permutation(n):
            segs = _segments(lay.cells[k].boundary.intersection(lay.footprint.boundary))
            rng.shuffle(segs)
            if any(self._door(wall_mask, sg, self.t_ext, int(k), faces, occupied, int(width * 1.1)) for sg in segs):
                break

    def _door_between(self, e: tuple[int, int], segs: list, faces: list[Polygon], wall_mask: np.ndarray,
                      occupied: list[list[Polygon]], width: int) -> bool:
        segs = sorted(segs, key=lambda sg: -((sg[2] - sg[0]) + (sg[3] - sg[1])))
        first = int(self.rng.integers(2))
        for sg in segs:
            for k in (e[first], e[1 - first]):
                other = e[1] if k == e[0] else e[0]
                t = self.int_t.get(_line_key(sg), self.t_int)
                if self._door(wall_mask, sg, t, k, faces, occupied, width, other_room=other):
                    return True
        return False

    def _windows(self, lay: _Layout, wall_mask: np.ndarray) -> None:
        rng = self.rng
        t = self.t_ext
        a = t // 2
        clear = t + 4
        for k, cell in enumerate(lay.cells):
            for sg in _segments(cell.boundary.intersection(lay.footprint.boundary)):
                x0, y0, x1, y1 = sg
                horizontal = y0 == y1
                a0, a1 = (x0, x1) if horizontal else (y0, y1)
                length = a1 - a0
                ww = int(round(rng.uniform(0.9, 1.8) * self.ppm))
                if length < ww + 2 * clear or rng.random() < 0.25:
                    continue
                lo = int(rng.integers(a0 + clear, a1 - clear - ww + 1))
                hi = lo + ww
                # skip if the wall there is already opened (entrance door)
                c = y0 if horizontal else x0
                band = wall_mask[c - a:c - a + t, lo:hi] if horizontal else wall_mask[lo:hi, c - a:c - a + t]
                if band.size == 0 or band.min() == 0:
                    continue
                self._cut(wall_mask, sg, t, lo, hi)
                if horizontal:
                    ya, yb = c - a, c - a + t - 1
                    cv2.rectangle(self.lines, (lo, ya), (hi - 1, yb), 255, 1)
                    for f in ((0.5,) if t < 8 else (0.4, 0.6)):
                        y = int(round(ya + f * (yb - ya)))
                        cv2.line(self.lines, (lo, y), (hi - 1, y), 255, 1)
                else:
                    xa, xb = c - a, c - a + t - 1
                    cv2.rectangle(self.lines, (xa, lo), (xb, hi - 1), 255, 1)
                    for f in ((0.5,) if t < 8 else (0.4, 0.6)):
                        x = int(round(xa + f * (xb - xa)))
                        cv2.line(self.lines, (x, lo), (x, hi - 1), 255, 1)

    # -- walls --------------------------------------------------------------------------------------
    def _draw_walls(self, mask: np.ndarray) -> None:
        kind = self.s.walls
        if kind == "solid" or self.t_int < 5:
            self.walls = np.maximum(self.walls, mask)
            return
        inner = cv2.erode(mask, np.ones((3, 3), np.uint8))
        outline = mask.copy()
        outline[inner > 0] = 0
        if kind == "outline":
            self.walls = np.maximum(self.walls, outline)
        elif kind == "hatched":
            hatch = np.zeros_like(mask)
            pitch = max(4, int(round(self.t_int * 0.6)))
            for d in range(-self.h, self.w, pitch):
                cv2.line(hatch, (d, self.h), (d + self.h, 0), 255, 1)
            hatch[inner == 0] = 0
            self.walls = np.maximum(self.walls, np.maximum(outline, hatch))
        else:  # poche
            self.fill = np.maximum(self.fill, (mask > 0).astype(np.uint8) * 120)
            self.walls = np.maximum(self.walls, outline)

    # -- contents -----------------------------------------------------------------------------------
    def _label(self, face: Polygon, label: str, occupied: list[Polygon]) -> tuple[str, str | None] | None:
        """Draw the room's name (and size); returns (name, size line or None) as drawn, or None.

        The label goes at the room's pole of inaccessibility or one of 15 random spots; where
        none is free (door swings, fixtures, a narrow room), it is placed as listing plans do:
        the nearest free spot, then a smaller font, then the name abbreviated ("BR 2", "KIT")."""
        rng = self.rng
        minx, miny, maxx, maxy = face.bounds
        text = str(rng.choice(_LABEL_TEXT.get(label, [label.upper()])))
        if label == "bedroom" and self.n_bedrooms > 1:
            self.bedroom_no += 1
            if not text.startswith("MASTER") or self.bedroom_no > 1:
                text = f"{text.replace('MASTER ', '')} {self.bedroom_no}"
        lines = [text]
        if self.s.room_dims:
            imperial = bool(rng.random() < 0.4)
            wm, hm = (maxx - minx) / self.ppm, (maxy - miny) / self.ppm
            if rng.random() < 0.7:
                lines.append(f"{_fmt_len(wm, imperial)} x {_fmt_len(hm, imperial)}")
            else:
                lines.append(f"{face.area / self.ppm ** 2:.1f} m2" if not imperial else
                             f"{face.area / self.ppm ** 2 * 10.764:.0f} sq ft")
        font = _FONTS[int(rng.integers(len(_FONTS)))]
        scale = float(np.clip(self.ppm / 70.0, 0.3, 3.0))
        inner = face.buffer(-3)
        cx, cy = polylabel(face, 1.0).coords[0]
        fit = _fit_scale(lines, font, scale, maxx - minx)
        placed = None
        if fit >= _MIN_TEXT_SCALE and not inner.is_empty:
            widest, total_h = _block_size(lines, font, fit)
            ix0, iy0, ix1, iy1 = inner.bounds
            candidates = [(cx, cy)] + [
                (float(rng.uniform(ix0 + widest / 2, max(ix0 + widest / 2, ix1 - widest / 2))),
                 float(rng.uniform(iy0 + total_h / 2, max(iy0 + total_h / 2, iy1 - total_h / 2))))
                for _ in range(15)
            ]
            spot = _free_spot(candidates, widest, total_h, inner, occupied)
            placed = (lines, fit, spot) if spot is not None else None
        if placed is None and not inner.is_empty:
            placed = _fallback_placement(lines, font, scale, maxx - minx, (cx, cy), inner, occupied)
        if placed is None:
            return None
        lines, scale, (cx, cy) = placed
        thick = _thickness(scale)
        sizes = [_text_size(t, font, scale, thick) for t in lines]
        widest, total_h = _block_size(lines, font, scale)
        y = cy - total_h / 2
        for t, (tw, th, base) in zip(lines, sizes):
            y += th
            cv2.putText(self.text, t, (int(round(cx - tw / 2)), int(round(y))), font, scale, 255, thick, cv2.LINE_AA)
            y += base + _line_gap(sizes)
        occupied.append(_label_box(cx, cy, widest, total_h).buffer(4))
        return lines[0], (lines[1] if len(lines) > 1 else None)

    def _furnish(self, face: Polygon, label: str, occupied: list[Polygon]) -> None:
        rng = self.rng
        templates = _TEMPLATES.get(label, [])
        if not templates:
            return
        gap = max(3, int(round(0.08 * self.ppm)), self.t_int)
        inner = face.buffer(-gap, join_style="mitre")
        if inner.is_empty:
            return
        n_items = int(rng.integers(1, len(templates) + 1))
        chosen = [templates[i] for i in sorted(rng.choice(len(templates), size=n_items, replace=False))]
        minx, miny, maxx, maxy = inner.bounds
        for (sw, sh), prims in chosen:
            k = int(rng.integers(4))
            w, h = sw * self.ppm, sh * self.ppm
            if k % 2:
                w, h = h, w
            if w >= maxx - minx or h >= maxy - miny:
                continue
            for _ in range(25):
                # favour positions hugging the inner boundary (furniture stands by the walls)
                x = float(rng.uniform(minx, maxx - w))
                y = float(rng.uniform(miny, maxy - h))
                if rng.random() < 0.6:
                    if rng.random() < 0.5:
                        x = minx if rng.random() < 0.5 else maxx - w
                    else:
                        y = miny if rng.random() < 0.5 else maxy - h
                fb = box(x, y, x + w, y + h)
                if not inner.contains(fb) or any(fb.intersects(o) for o in occupied):
                    continue
                self._draw_template(prims, (x, y, w, h), k)
                occupied.append(fb.buffer(2))
                break

    def _draw_template(self, prims: list[tuple], frame: tuple[float, float, float, float], k: int) -> None:
        x, y, w, h = frame

        def tf(u: float, v: float) -> tuple[int, int]:
            # rotate the unit square by k*90 degrees, then map onto the frame
            for _ in range(k):
                u, v = 1 - v, u
            return int(round(x + u * w)), int(round(y + v * h))

        thick = 1 if self.ppm < 120 else 2
        for p in prims:
            if p[0] == "rect":
                a, b = tf(p[1], p[2]), tf(p[3], p[4])
                cv2.rectangle(self.lines, (min(a[0], b[0]), min(a[1], b[1])), (max(a[0], b[0]), max(a[1], b[1])),
                              255, thick, cv2.LINE_AA)
            elif p[0] == "line":
                cv2.line(self.lines, tf(p[1], p[2]), tf(p[3], p[4]), 255, thick, cv2.LINE_AA)
            elif p[0] == "circle":
                r = max(1, int(round(p[3] * min(w, h))))
                cv2.circle(self.lines, tf(p[1], p[2]), r, 255, thick, cv2.LINE_AA)
            elif p[0] == "ellipse":
                # after a quarter turn the template's x radius runs along the frame's y axis
                rx, ry = (p[3] * w, p[4] * h) if k % 2 == 0 else (p[4] * w, p[3] * h)
                axes = (max(1, int(round(rx))), max(1, int(round(ry))))
                cv2.ellipse(self.lines, tf(p[1], p[2]), axes, 0, 0, 360, 255, thick, cv2.LINE_AA)

    # -- listing-plan features (Style.fixtures, stairs, closet_doors, balcony) ---------------------
    def _closet_doors(self, kind: str, horizontal: bool, lo: int, hi: int, w0: int, t: int, side: int) -> None:
        """Bi-fold leaves (a zig-zag folding into the closet) or two offset sliding panels in the wall."""
        def pt(along: float, across: float) -> tuple[int, int]:
            return (int(round(along)), int(round(across))) if horizontal else (int(round(across)), int(round(along)))

        if kind == "bifold":
            face_line = w0 + t if side > 0 else w0 - 1
            n = 4 if (hi - lo) >= 1.2 * self.ppm else 2
            d = max(3, min(int(round(0.35 * (hi - lo) / n)), int(round(0.25 * self.ppm))))
            pts = [pt(lo + i * (hi - 1 - lo) / n, face_line + side * (d if i % 2 else 0)) for i in range(n + 1)]
            cv2.polylines(self.lines, [np.asarray(pts, np.int32)], False, 255, 1, cv2.LINE_AA)
            for along in (lo, hi - 1):  # jambs across the wall
                cv2.line(self.lines, pt(along, w0), pt(along, w0 + t - 1), 255, 1)
        else:
            mid = w0 + t // 2
            pt_w = max(2, min(4, t // 2 + 1))
            span = int(round(0.55 * (hi - lo)))
            for (p0, p1), (q0, q1) in (((lo, lo + span), (mid - pt_w, mid - 1)), ((hi - 1 - span, hi - 1), (mid, mid + pt_w - 1))):
                a, b = pt(p0, q0), pt(p1, q1)
                cv2.rectangle(self.lines, a, b, 255, 1)

    def _balcony(self, lay: _Layout, faces: list[Polygon], labels: list[str], wall_mask: np.ndarray,
                 occupied: list[list[Polygon]]) -> tuple[Polygon, tuple[str, str | None] | None] | None:
        """A balcony outside an exterior wall on the reserved side: its polygon is the floor inside the
        1-2 px railing; a door leads onto it from the room behind. Returns (polygon, printed name)."""
        assert self.balcony_plan is not None
        rng, ppm = self.rng, self.ppm
        side, reserve = self.balcony_plan
        fx0, fy0, fx1, fy1 = (int(round(v)) for v in lay.footprint.bounds)
        horizontal = side in ("top", "bottom")
        line = {"top": fy0, "bottom": fy1, "left": fx0, "right": fx1}[side]
        candidates = []
        for k, cell in enumerate(lay.cells):
            if labels[k] in ("closet", "storage", "wc", "bath", "laundry"):
                continue
            for sg in _segments(cell.boundary.intersection(lay.footprint.boundary)):
                if (sg[1] == sg[3] == line) if horizontal else (sg[0] == sg[2] == line):
                    if max(sg[2] - sg[0], sg[3] - sg[1]) >= 1.5 * ppm:
                        candidates.append((k, sg))
        if not candidates:
            return None
        k, sg = candidates[int(rng.integers(len(candidates)))]
        t = self.t_ext
        a = t // 2
        outer = line - a if side in ("top", "left") else line - a + t  # the wall's outer face
        room_left = outer - 3 if side in ("top", "left") else (self.h if horizontal else self.w) - outer - 3
        depth = int(round(min(rng.uniform(1.0, 1.8) * ppm, room_left - 2, reserve - t)))
        if depth < max(8, 0.6 * ppm):
            return None
        s0, s1 = (sg[0], sg[2]) if horizontal else (sg[1], sg[3])
        length = s1 - s0
        if rng.random() >= 0.4:
            length = int(round(min(length, rng.uniform(2.0, 4.5) * ppm)))
        lo = int(rng.integers(s0, s1 - length + 1))
        hi = lo + length
        d0, d1 = (outer - depth, outer) if side in ("top", "left") else (outer, outer + depth)
        poly = box(lo, d0, hi, d1) if horizontal else box(d0, lo, d1, hi)
        # the railing: thin lines just outside the polygon on its three open sides
        rt = int(rng.integers(1, 3))
        x0, y0, x1, y1 = (int(v) for v in poly.bounds)
        if side == "bottom":
            rails = [(x0 - rt, y1, x1 + rt, y1 + rt), (x0 - rt, y0, x0, y1), (x1, y0, x1 + rt, y1)]
        elif side == "top":
            rails = [(x0 - rt, y0 - rt, x1 + rt, y0), (x0 - rt, y0, x0, y1), (x1, y0, x1 + rt, y1)]
        elif side == "left":
            rails = [(x0 - rt, y0 - rt, x0, y1 + rt), (x0, y0 - rt, x1, y0), (x0, y1, x1, y1 + rt)]
        else:
            rails = [(x1, y0 - rt, x1 + rt, y1 + rt), (x0, y0 - rt, x1, y0), (x0, y1, x1, y1 + rt)]
        for r in rails:
            _fill_rect(self.lines, r)
        if rng.random() < 0.4:  # decking or paving lines on the balcony floor
            pitch = max(4, int(round(rng.uniform(0.2, 0.4) * ppm)))
            deck = np.zeros((y1 - y0, x1 - x0), np.uint8)
            if rng.random() < 0.5:
                deck[:, ::pitch] = 110
            else:
                deck[::pitch, :] = 110
            deck[:2, :] = deck[-2:, :] = 0
            deck[:, :2] = deck[:, -2:] = 0
            region = self.tiles[y0:y1, x0:x1]
            np.maximum(region, deck[:region.shape[0], :region.shape[1]], out=region)
        # a door (or sliding door) from the room onto the balcony
        door_seg = (lo, sg[1], hi, sg[3]) if horizontal else (sg[0], lo, sg[2], hi)
        width = max(8, int(round(rng.uniform(0.8, 1.6) * ppm)))
        self._door(wall_mask, door_seg, t, k, faces, occupied, width)
        printed = self._label(poly, "balcony", []) if self.s.labels else None
        self.facts["balcony"] = side
        return poly, printed

    def _against_wall(self, inner: Polygon, along: float, depth: float, occupied: list[Polygon],
                      sides: Sequence[int] | None = None, at_end: bool = False,
                      tries: int = 12) -> tuple[Polygon, int] | None:
        """A free box ``along`` x ``depth`` px against one side of ``inner``'s bounds (0 top, 1 right,
        2 bottom, 3 left; the box's long side along the wall), or None."""
        rng = self.rng
        minx, miny, maxx, maxy = inner.bounds
        order = list(sides) if sides is not None else [int(v) for v in rng.permutation(4)]
        for side in order:
            span_lo, span_hi = (minx, maxx) if side in (0, 2) else (miny, maxy)
            if along > span_hi - span_lo or depth > ((maxy - miny) if side in (0, 2) else (maxx - minx)):
                continue
            for i in range(tries):
                if at_end and i < 2:
                    p = span_lo if (i == 0) == bool(rng.random() < 0.5) else span_hi - along
                else:
                    p = float(rng.uniform(span_lo, span_hi - along))
                if side == 0:
                    b = box(p, miny, p + along, miny + depth)
                elif side == 2:
                    b = box(p, maxy - depth, p + along, maxy)
                elif side == 1:
                    b = box(maxx - depth, p, maxx, p + along)
                else:
                    b = box(minx, p, minx + depth, p + along)
                if inner.contains(b) and not any(b.intersects(o) for o in occupied):
                    return b, side
        return None

    def _rounded_rect(self, b: tuple[float, float, float, float], radius: float) -> None:
        x0, y0, x1, y1 = (int(round(v)) for v in b)
        r = int(max(1, min(radius, (x1 - x0) / 2 - 1, (y1 - y0) / 2 - 1)))
        if x1 - x0 < 4 or y1 - y0 < 4:
            return
        for p, q in (((x0 + r, y0), (x1 - r, y0)), ((x0 + r, y1), (x1 - r, y1)),
                     ((x0, y0 + r), (x0, y1 - r)), ((x1, y0 + r), (x1, y1 - r))):
            cv2.line(self.lines, p, q, 255, 1, cv2.LINE_AA)
        for (cx, cy), start in (((x0 + r, y0 + r), 180), ((x1 - r, y0 + r), 270), ((x1 - r, y1 - r), 0),
                                ((x0 + r, y1 - r), 90)):
            cv2.ellipse(self.lines, (cx, cy), (r, r), 0, start, start + 90, 255, 1, cv2.LINE_AA)

    def _fixtures(self, face: Polygon, label: str, occupied: list[Polygon]) -> None:
        """Bath: a bathtub (rounded inner outline), toilet and basin; WC: toilet and basin; kitchen
        (and laundry): a worktop along a wall with sink, hob and a fridge box with an X."""
        rng, ppm = self.rng, self.ppm
        inner = face.buffer(-1, join_style="mitre")
        if inner.is_empty or inner.geom_type != "Polygon":
            return
        minx, miny, maxx, maxy = inner.bounds
        if label == "bath":
            short = min(maxx - minx, maxy - miny)
            if 1.1 * ppm <= short <= 2.0 * ppm:  # the tub spans the room at one end, wall to wall
                along = short - 0.5
                sides = [0, 2] if (maxx - minx) <= (maxy - miny) else [1, 3]
            else:
                along, sides = rng.uniform(1.4, 1.7) * ppm, None
            depth = min(rng.uniform(0.68, 0.8) * ppm, 0.5 * max(maxx - minx, maxy - miny))
            spot = self._against_wall(inner, along, depth, occupied, sides, at_end=True)
            if spot is not None:
                b, side = spot
                bx0, by0, bx1, by1 = b.bounds
                cv2.rectangle(self.lines, (int(round(bx0)), int(round(by0))), (int(round(bx1)), int(round(by1))),
                              255, 1, cv2.LINE_AA)
                inset = max(2.0, 0.07 * ppm)
                ib = (bx0 + inset, by0 + inset, bx1 - inset, by1 - inset)
                self._rounded_rect(ib, rng.uniform(0.35, 0.5) * min(ib[2] - ib[0], ib[3] - ib[1]))
                end = rng.random() < 0.5  # the drain at one end
                long_x = (bx1 - bx0) >= (by1 - by0)
                cx = (bx0 + 2.2 * inset if end else bx1 - 2.2 * inset) if long_x else (bx0 + bx1) / 2
                cy = (by0 + by1) / 2 if long_x else (by0 + 2.2 * inset if end else by1 - 2.2 * inset)
                cv2.circle(self.lines, (int(round(cx)), int(round(cy))), max(1, int(round(0.04 * ppm))), 255, 1,
                           cv2.LINE_AA)
                occupied.append(b.buffer(2))
        if label in ("bath", "wc"):
            for name, (sw, sh) in (("toilet", (0.4, 0.65)), ("basin", (0.6, 0.45))):
                spot = self._against_wall(inner, sw * ppm, sh * ppm, occupied)
                if spot is not None:
                    b, side = spot
                    bx0, by0, bx1, by1 = b.bounds
                    self._draw_template(_TEMPLATES_BY_NAME[name], (bx0, by0, bx1 - bx0, by1 - by0), side)
                    occupied.append(b.buffer(2))
            return
        # kitchen / laundry: a worktop run along a wall, then its symbols
        depth = rng.uniform(0.55, 0.65) * ppm
        for side in [int(v) for v in rng.permutation(4)]:
            span = (maxx - minx) if side in (0, 2) else (maxy - miny)
            spot = None
            for frac in (1.0, 0.85, 0.7, 0.55):
                length = span * frac - 0.5
                if length < 1.2 * ppm:
                    break
                spot = self._against_wall(inner, length, depth, occupied, [side], at_end=True, tries=4)
                if spot is not None:
                    break
            if spot is not None:
                break
        else:
            return
        b, side = spot
        bx0, by0, bx1, by1 = b.bounds
        horizontal = side in (0, 2)
        a0, a1 = (bx0, bx1) if horizontal else (by0, by1)
        c_wall = {0: by0, 1: bx1, 2: by1, 3: bx0}[side]
        c_front = {0: by1, 1: bx0, 2: by0, 3: bx1}[side]

        def pt(along: float, across: float) -> tuple[int, int]:
            return (int(round(along)), int(round(across))) if horizontal else (int(round(across)), int(round(along)))

        # the front edge and the ends of the worktop (its back stands against the wall)
        cv2.polylines(self.lines, [np.asarray([pt(a0, c_wall), pt(a0, c_front), pt(a1, c_front), pt(a1, c_wall)],
                                              np.int32)], False, 255, 1, cv2.LINE_AA)
        cursor = a0
        items = ["fridge", "sink", "hob"] if label == "kitchen" else ["washer", "sink"]
        if rng.random() < 0.5:
            items = items[::-1]
        dep = abs(c_front - c_wall)
        step = (a1 - a0) / len(items)
        for i, item in enumerate(items):
            lo, hi = a0 + i * step, a0 + (i + 1) * step
            size = min(0.62 * ppm, hi - lo - 2, dep - 2)
            if size < 6:
                continue
            mid = (lo + hi) / 2
            s0, s1 = mid - size / 2, mid + size / 2
            n0, n1 = sorted((c_wall + (1 if c_front > c_wall else -1) * 1.0,
                             c_wall + (1 if c_front > c_wall else -1) * (1.0 + size)))
            if item in ("fridge", "washer"):
                cv2.rectangle(self.lines, pt(s0, n0), pt(s1, n1), 255, 1)
                if item == "fridge":
                    cv2.line(self.lines, pt(s0, n0), pt(s1, n1), 255, 1, cv2.LINE_AA)
                    cv2.line(self.lines, pt(s0, n1), pt(s1, n0), 255, 1, cv2.LINE_AA)
                else:
                    cc = pt(mid, (n0 + n1) / 2)
                    cv2.circle(self.lines, cc, max(2, int(size * 0.32)), 255, 1, cv2.LINE_AA)
            elif item == "sink":
                sl0, sl1 = mid - size * 0.7, mid + size * 0.7
                if sl1 - sl0 > hi - lo - 2:
                    sl0, sl1 = lo + 1, hi - 1
                q0, q1 = n0 + 0.12 * size, n1 - 0.12 * size
                p0, p1 = pt(sl0, q0), pt(sl1, q1)
                self._rounded_rect((min(p0[0], p1[0]), min(p0[1], p1[1]), max(p0[0], p1[0]), max(p0[1], p1[1])),
                                   0.2 * size)
                tap = pt(mid, n0 + 0.06 * size if c_front > c_wall else n1 - 0.06 * size)
                cv2.circle(self.lines, tap, 1, 255, -1)
            else:  # hob: four rings
                r = max(1, int(round(size * 0.16)))
                for fu in (0.28, 0.72):
                    for fv in (0.28, 0.72):
                        cv2.circle(self.lines, pt(s0 + fu * size, n0 + fv * (n1 - n0)), r, 255, 1, cv2.LINE_AA)
            cursor = hi
        occupied.append(b.buffer(2))

    def _stairs(self, faces: list[Polygon], labels: list[str], occupied: list[list[Polygon]]) -> None:
        """A straight flight (outline, treads, walking line with an arrow) against a wall of the hall,
        else of the family or living room. It lies inside the room; the room's polygon is unchanged."""
        rng, ppm = self.rng, self.ppm
        order = [k for lab in ("hall", "family", "living", "dining") for k, l in enumerate(labels) if l == lab]
        width = rng.uniform(0.85, 1.1) * ppm
        for k in order:
            inner = faces[k].buffer(-1, join_style="mitre")
            if inner.is_empty or inner.geom_type != "Polygon":
                continue
            spot = None
            for length_m in (rng.uniform(2.6, 3.4), 2.2, 1.8):
                spot = self._against_wall(inner, length_m * ppm, width, occupied[k], at_end=True, tries=8)
                if spot is not None:
                    break
            if spot is None:
                continue
            b, side = spot
            bx0, by0, bx1, by1 = b.bounds
            horizontal = side in (0, 2)  # the run goes along x
            a0, a1 = (bx0, bx1) if horizontal else (by0, by1)
            c0, c1 = (by0, by1) if horizontal else (bx0, bx1)

            def pt(along: float, across: float) -> tuple[int, int]:
                return (int(round(along)), int(round(across))) if horizontal else (int(round(across)), int(round(along)))

            cv2.rectangle(self.lines, pt(a0, c0), pt(a1, c1), 255, 1)
            pitch = rng.uniform(0.24, 0.3) * ppm
            n = max(3, int((a1 - a0) / pitch))
            for i in range(1, n):
                along = a0 + i * (a1 - a0) / n
                cv2.line(self.lines, pt(along, c0), pt(along, c1), 255, 1)
            up = rng.random() < 0.5  # arrow towards a1 or a0
            cm = (c0 + c1) / 2
            start, end = (a0 + 0.4 * pitch, a1 - 0.4 * pitch) if up else (a1 - 0.4 * pitch, a0 + 0.4 * pitch)
            cv2.line(self.lines, pt(start, cm), pt(end, cm), 255, 1, cv2.LINE_AA)
            head = 0.35 * (c1 - c0)
            back = end - head if up else end + head
            for sgn in (-1, 1):
                cv2.line(self.lines, pt(end, cm), pt(back, cm + sgn * head * 0.6), 255, 1, cv2.LINE_AA)
            cv2.circle(self.lines, pt(start, cm), max(1, int(round(0.05 * ppm))), 255, -1)
            if rng.random() < 0.5:  # a break line across the flight
                q = a0 + rng.uniform(0.55, 0.75) * (a1 - a0)
                cv2.line(self.lines, pt(q - 0.25 * (c1 - c0), c0), pt(q + 0.25 * (c1 - c0), c1), 255, 1, cv2.LINE_AA)
            occupied[k].append(b.buffer(2))
            self.facts["stairs"] = labels[k]
            return

    def _dimension_lines(self, lay: _Layout) -> None:
        fx0, fy0, fx1, fy1 = (int(v) for v in lay.footprint.bounds)
        def ticks(values: Iterable[float]) -> list[int]:
            out: list[int] = []
            for v in sorted({int(round(v)) for v in values}):
                if not out or v - out[-1] >= 0.3 * self.ppm:
                    out.append(v)
            return out

        xs = ticks(x for c in lay.cells for x, _ in c.exterior.coords)
        ys = ticks(y for c in lay.cells for _, y in c.exterior.coords)
        off = max(14, int(round(0.045 * max(self.w, self.h))))
        font = cv2.FONT_HERSHEY_SIMPLEX
        scale = float(np.clip(max(self.w, self.h) / 2400.0, 0.3, 1.6))
        thick = max(1, int(round(scale * 1.4)))
        tick = max(4, int(round(off * 0.25)))
        imperial = bool(self.rng.random() < 0.3)
        for level, (pos_x, pos_y) in enumerate([(xs, ys), ([fx0, fx1], [fy0, fy1])]):
            yline = fy0 - self.t_ext - off * (level + 1)
            xline = fx0 - self.t_ext - off * (level + 1)
            if yline < tick * 2 or xline < tick * 2:
                continue
            cv2.line(self.lines, (pos_x[0], yline), (pos_x[-1], yline), 255, 1, cv2.LINE_AA)
            cv2.line(self.lines, (xline, pos_y[0]), (xline, pos_y[-1]), 255, 1, cv2.LINE_AA)
            for x in pos_x:
                cv2.line(self.lines, (x - tick, yline + tick), (x + tick, yline - tick), 255, 1, cv2.LINE_AA)
                cv2.line(self.lines, (x, yline - tick), (x, yline + (off if level == 0 else tick)), 255, 1)
            for y in pos_y:
                cv2.line(self.lines, (xline - tick, y + tick), (xline + tick, y - tick), 255, 1, cv2.LINE_AA)
                cv2.line(self.lines, (xline - tick, y), (xline + (off if level == 0 else tick), y), 255, 1)
            for a, b in zip(pos_x, pos_x[1:]):
                t = _fmt_len((b - a) / self.ppm, imperial)
                tw, th, _ = _text_size(t, font, scale, thick)
                if tw < (b - a) - 6:
                    cv2.putText(self.text, t, ((a + b) // 2 - tw // 2, yline - 4), font, scale, 255, thick,
                                cv2.LINE_AA)
            for a, b in zip(pos_y, pos_y[1:]):
                t = _fmt_len((b - a) / self.ppm, imperial)
                tw, th, _ = _text_size(t, font, scale, thick)
                if tw < (b - a) - 6:
                    _put_text_rotated(self.text, t, (xline - th // 2 - 5, (a + b) / 2), font, scale, thick)

    def _title(self, lay: _Layout, floor: int = 0) -> None:
        fx0, _, fx1, fy1 = lay.footprint.bounds
        font = cv2.FONT_HERSHEY_DUPLEX
        scale = float(np.clip(max(self.w, self.h) / 1400.0, 0.4, 3.0))
        thick = max(1, int(round(scale * 1.5)))
        if self.s.floors > 1:
            title = ["GROUND FLOOR", "FIRST FLOOR", "SECOND FLOOR", "THIRD FLOOR"][min(floor, 3)]
        else:
            title = str(self.rng.choice(["FLOOR PLAN", "GROUND FLOOR", "FIRST FLOOR PLAN", "UNIT A"]))
        if not hasattr(self, "scale_text"):  # one scale per sheet
            self.scale_text = f"SCALE 1:{int(self.rng.choice([50, 100, 200]))}"
        sub = self.scale_text
        tw, th, base = _text_size(title, font, scale, thick)
        free = self.h - fy1 - self.t_ext
        if free < 3 * (th + base):
            scale *= free / (3 * (th + base))
            thick = max(1, int(round(scale * 1.5)))
            tw, th, base = _text_size(title, font, scale, thick)
        y = int(fy1 + self.t_ext + max(th + 8, free * 0.4))
        if scale < 0.3 or y + th + 2 * base + 6 >= self.h:
            return
        cx = (fx0 + fx1) / 2
        x = int(cx - tw / 2)
        cv2.putText(self.text, title, (x, y), font, scale, 255, thick, cv2.LINE_AA)
        cv2.line(self.lines, (x, y + base + 2), (x + tw, y + base + 2), 255, thick)
        sw, sh, _ = _text_size(sub, font, scale * 0.6, max(1, thick - 1))
        cv2.putText(self.text, sub, (int(cx - sw / 2), y + base + 6 + sh), font, scale * 0.6, 255,
                    max(1, thick - 1), cv2.LINE_AA)

    def _floors(self, faces: list[Polygon], labels: list[str]) -> None:
        rng = self.rng
        palette = [(214, 232, 246), (200, 225, 240), (226, 236, 220), (232, 226, 238), (210, 230, 232),
                   (190, 214, 236)]
        wet = {"bath": (236, 226, 206), "wc": (236, 226, 206), "laundry": (230, 230, 222), "kitchen": (222, 232, 236)}
        for face, label in zip(faces, labels):
            pts = np.round(np.asarray(face.exterior.coords)[:-1]).astype(np.int32)
            if self.s.room_fill:
                color = wet.get(label) or palette[int(rng.integers(len(palette)))]
                self.floors.append((pts, color))
            if self.s.floor_tiles and label in ("bath", "wc", "kitchen", "laundry"):
                pitch = max(5, int(round(rng.uniform(0.25, 0.45) * self.ppm)))
                inner = face.buffer(-max(2, self.t_int // 2), join_style="mitre")
                if inner.is_empty or inner.geom_type != "Polygon":
                    continue
                x0, y0, x1, y1 = (int(v) for v in inner.bounds)
                grid = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.uint8)
                grid[:, ::pitch] = 110
                grid[::pitch, :] = 110
                mask = np.zeros_like(grid)
                cv2.fillPoly(mask, [np.round(np.asarray(inner.exterior.coords) - (x0, y0)).astype(np.int32)], 1)
                region = self.tiles[y0:y1 + 1, x0:x1 + 1]
                np.maximum(region, grid * mask[:region.shape[0], :region.shape[1]], out=region)

    def _compass(self, lay: _Layout) -> None:
        fx0, fy0, fx1, fy1 = lay.footprint.bounds
        room = min(fy0, self.w - fx1) - self.t_ext
        r = int(min(room * 0.35, 0.06 * max(self.w, self.h)))
        if r < 10:
            return
        cx, cy = int(self.w - r * 1.6), int(r * 1.6)
        ang = float(self.rng.uniform(-0.6, 0.6))
        cv2.circle(self.lines, (cx, cy), r, 255, 1, cv2.LINE_AA)
        tip = (cx + r * math.sin(ang), cy - r * math.cos(ang))
        tail = (cx - r * math.sin(ang), cy + r * math.cos(ang))
        left = (cx - 0.3 * r * math.cos(ang), cy - 0.3 * r * math.sin(ang))
        right = (cx + 0.3 * r * math.cos(ang), cy + 0.3 * r * math.sin(ang))
        arrow = np.round(np.array([tip, right, tail, left])).astype(np.int32)
        cv2.polylines(self.lines, [arrow], True, 255, 1, cv2.LINE_AA)
        cv2.fillPoly(self.lines, [np.round(np.array([tip, right, (cx, cy)])).astype(np.int32)], 255, cv2.LINE_AA)
        scale = r / 30.0
        tw, th, _ = _text_size("N", cv2.FONT_HERSHEY_SIMPLEX, scale, max(1, int(scale * 2)))
        nx, ny = int(tip[0] - tw / 2), int(tip[1] - r * 0.2)
        if ny - th > 0:
            cv2.putText(self.text, "N", (nx, ny), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, max(1, int(scale * 2)),
                        cv2.LINE_AA)

    def _header(self, lay: _Layout, faces: list[Polygon]) -> None:
        _, fy0, _, _ = lay.footprint.bounds
        area = sum(f.area for f in faces) / self.ppm ** 2
        lines = ["Approximate Gross Internal Area", f"{area:.0f} sq m / {area * 10.764:.0f} sq ft"]
        font = cv2.FONT_HERSHEY_SIMPLEX
        scale = float(np.clip(max(self.w, self.h) / 2000.0, 0.35, 2.0))
        thick = max(1, int(round(scale * 1.3)))
        y = int((fy0 - self.t_ext) * 0.3)
        for t in lines:
            tw, th, base = _text_size(t, font, scale, thick)
            y += th + base
            if y >= fy0 - self.t_ext - 4 or tw > self.w * 0.6:
                return
            cv2.putText(self.text, t, (int(self.w * 0.05), y), font, scale, 255, thick, cv2.LINE_AA)

    # -- paper and degradation ------------------------------------------------------------------------
    def _compose(self) -> np.ndarray:
        s = self.s
        img = np.empty((self.h, self.w, 3), np.float32)
        img[:] = s.paper
        if s.grid:
            grid = np.zeros((self.h, self.w), np.uint8)
            for i, x in enumerate(range(0, self.w, s.grid)):
                cv2.line(grid, (x, 0), (x, self.h - 1), 255 if i % 5 == 0 else 150, 1)
            for i, y in enumerate(range(0, self.h, s.grid)):
                cv2.line(grid, (0, y), (self.w - 1, y), 255 if i % 5 == 0 else 150, 1)
            self._blend(img, grid, s.grid_ink)
        for pts, color in self.floors:
            cv2.fillPoly(img, [pts], tuple(float(c) for c in color))
        self._blend(img, self.tiles, s.line_ink or s.ink)
        self._blend(img, self.fill, s.ink)
        self._blend(img, self.walls, s.ink)
        self._blend(img, self.lines, s.line_ink or s.ink)
        self._blend(img, self.text, s.text_ink or s.ink)
        return img

    @staticmethod
    def _blend(img: np.ndarray, alpha: np.ndarray, color: BGR) -> None:
        ys, xs = np.nonzero(alpha)  # drawings are sparse: touch only inked pixels
        if len(ys) == 0:
            return
        a = (alpha[ys, xs].astype(np.float32) / 255.0)[:, None]
        img[ys, xs] = img[ys, xs] * (1.0 - a) + a * np.asarray(color, np.float32)

    def _degrade(self, img: np.ndarray, rooms: list[dict[str, Any]]) -> tuple[np.ndarray, list[dict[str, Any]]]:
        s, rng = self.s, self.rng
        if s.rotate:
            angle = float(rng.uniform(0.4, 1.0) * s.rotate * (1 if rng.random() < 0.5 else -1))
            self.facts["rotation_deg"] = round(angle, 3)
            m = cv2.getRotationMatrix2D(((self.w - 1) / 2.0, (self.h - 1) / 2.0), angle, 1.0)
            img = cv2.warpAffine(img, m, (self.w, self.h), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=tuple(float(v) for v in s.paper))
            page = box(0, 0, self.w, self.h)
            for r in rooms:
                pts = np.asarray(r["polygon"], np.float64) - 0.5  # continuous -> pixel-centre frame
                pts = pts @ m[:, :2].T + m[:, 2] + 0.5
                poly = Polygon(pts).intersection(page)
                if poly.geom_type == "MultiPolygon":
                    poly = max(poly.geoms, key=lambda g: g.area)
                r["polygon"] = [[round(float(x), 2), round(float(y), 2)] for x, y in list(poly.exterior.coords)[:-1]]
        if s.illumination:
            yy, xx = np.mgrid[0:self.h, 0:self.w].astype(np.float32)
            ang = rng.uniform(0, 2 * math.pi)
            g = (xx * math.cos(ang) + yy * math.sin(ang))
            g = (g - g.min()) / max(float(g.max() - g.min()), 1.0)
            img *= (1.0 - s.illumination * g)[..., None]
        if s.blur:
            img = cv2.GaussianBlur(img, (0, 0), s.blur)
        if s.noise:
            img += rng.normal(0.0, s.noise, img.shape[:2]).astype(np.float32)[..., None]
        if s.specks:
            n = int(s.specks * self.w * self.h / 1e6)
            xs = rng.integers(0, self.w, n)
            ys = rng.integers(0, self.h, n)
            rs = rng.integers(1, 3, n)
            dark = np.asarray(s.ink, np.float32)
            for x, y, r in zip(xs, ys, rs):
                cv2.circle(img, (int(x), int(y)), int(r), tuple(float(v) for v in dark), -1)
        np.clip(img, 0.0, 255.0, out=img)
        img += 0.5
        return img.astype(np.uint8), rooms


# =============================================================================================
# Batches and the committed sample set
# =============================================================================================
def iter_plans(count: int, *, seed: int = 0, styles: Sequence[str] | None = None,
               prefix: str = "plan") -> Iterator[tuple[str, SynthPlan]]:
    """``(name, plan)`` for ``count`` plans, in memory: plan ``i`` is ``generate_plan([seed, i], style)``.

    Styles cycle through ``styles`` (default: every named style except :data:`CYCLE_EXCLUDED`), so a batch of
    N ≥ len(styles) plans covers each style. This is what ``roomkit synth`` writes to disk.
    """
    if count < 0:
        raise InputError("count must be >= 0")
    names = list(styles) if styles else [n for n in STYLES if n not in CYCLE_EXCLUDED]
    if not names:
        raise InputError("no styles given")
    for n in names:
        get_style(n)
    for i in range(count):
        yield f"{prefix}_{i:04d}", generate_plan([seed, i], names[i % len(names)])


def generate(out_dir: str | Path, count: int, *, seed: int = 0, styles: Sequence[str] | None = None,
             prefix: str = "plan") -> list[Path]:
    """Write ``count`` plans (see :func:`iter_plans`) to ``out_dir``; returns the JSON paths."""
    return [plan.save(out_dir, name)[1] for name, plan in iter_plans(count, seed=seed, styles=styles, prefix=prefix)]


# The committed data/samples/ set: (name, style, seed, style overrides).
# Regenerate with `roomkit synth data/samples --sample-set`. Samples drawn before every style
# printed room sizes pin ``room_dims: False`` so that they stay byte for byte what is committed.
SAMPLE_SET: tuple[tuple[str, str, int, dict[str, Any]], ...] = (
    ("clean_rect", "clean", 11, {"footprints": ("rect",), "room_dims": False}),
    ("clean_l", "clean", 4, {"footprints": ("L",), "room_dims": False}),
    ("outline_walls", "outline", 7, {"footprints": ("T",), "room_dims": False}),
    ("hatched_walls", "hatched", 3, {"footprints": ("L",)}),
    ("thin_walls", "thin", 5, {"footprints": ("rect",)}),
    ("thin_u", "thin", 18, {"footprints": ("U",)}),
    ("furnished", "furnished", 2, {"doors": "mixed"}),
    ("cad_dimensions", "cad", 8, {"footprints": ("U",)}),
    ("blueprint", "blueprint", 6, {}),
    ("tinted_paper", "tinted", 9, {"room_dims": False}),
    ("grid_paper", "grid", 10, {"room_dims": False}),
    ("scan_noisy", "scan", 12, {"room_dims": False}),
    ("rotated", "rotated", 13, {"room_dims": False}),
    ("large_sheet", "large", 14, {}),
    ("small_plan", "small", 15, {"room_dims": False}),
    ("small_listing", "small", 19, {"wall_px": (2, 3), "furniture": 0.6, "room_dims": True, "noise": 4.0,
                                    "blur": 0.5, "jpeg": 70}),
    ("listing", "listing", 21, {}),
    ("angled_walls", "angled", 22, {"room_dims": False}),
    ("two_floors", "two-floors", 23, {}),
    ("single_room", "single-room", 16, {}),
    ("blank_page", "blank", 17, {"room_dims": False}),
)


def write_sample_set(out_dir: str | Path) -> list[Path]:
    """(Re)generate the committed sample set into ``out_dir``; returns the JSON paths."""
    paths = []
    for name, style, seed, overrides in SAMPLE_SET:
        plan = generate_plan(seed, style, **overrides)
        paths.append(plan.save(out_dir, name)[1])
    return paths
