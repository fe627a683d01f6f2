"""The detector pipeline: preprocess → walls → gaps → necks → rooms → response types.

``detect_rooms`` is the one public entry point; the stages live in their own modules so that
each can be inspected (``detect_debug`` returns the intermediate masks for notebooks).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Union

import cv2
import numpy as np

from roomkit.detector.config import DetectorConfig
from roomkit.detector.doors import door_leaves
from roomkit.detector.gaps import bridge_gaps, bridge_recess_depth, close_recesses, pen_ink
from roomkit.detector.preprocess import Frame, prepare, to_gray
from roomkit.detector.rooms import RoomCandidate, exterior, find_rooms, open_lobes, split_by_ink
from roomkit.detector.split import split_at_necks
from roomkit.detector.walls import WallInfo, components8, drop_small, text_lines, wall_mask, wall_piers
from roomkit.errors import InputError
from roomkit.plans.response import Detection, order_and_number

if TYPE_CHECKING:  # pragma: no cover
    from roomkit.learned.runtime import LearnedModel

ImageInput = Union[np.ndarray, bytes, bytearray, memoryview, str, Path]
ModelInput = Union["LearnedModel", str, Path, None]

#: Plans whose walls are much thicker than this (px) are processed shrunk to about this.
TARGET_THICKNESS = 8.0
#: Auto door gap as a share of the building's extent (longest side of the walls' bounding
#: box): a door is ~0.8–1 m in a plan of ~8–20 m. 0.055 measured best on real listing plans
#: (0.045–0.055 all beat 0.06 there; 0.07 and up lose) and on fresh synthetic ones. Never below
#: a few wall thicknesses.
DOOR_GAP_FRACTION = 0.055
DOOR_GAP_MIN_THICKNESS = 3.0
#: Wall components with at least this share of the largest one's area make up the building.
BUILDING_PART = 0.1
#: Regions lying mostly beyond the building's walls and narrower than this many door gaps are
#: the strip between an outer wall and a title or legend drawn beside it, not rooms.
BEYOND_WIDTH_PER_DOOR_GAP = 1.0
#: Windows (collinear wall runs joined by thin glazing lines) may be much longer than doors.
WINDOW_GAP_PER_THICKNESS = 20.0
WINDOW_GAP_MAX_FRACTION = 0.4
#: The disk that finds the outside is at least this many door gaps wide: window_gap follows
#: the measured wall thickness, which is the partitions' on thin-partition plans, and a disk
#: that small floods rooms through unbridged windows. Exterior pockets too narrow for the disk
#: are dropped by the room stage (open along one whole side).
EXTERIOR_PER_DOOR_GAP = 4.0
#: Free space is cut at necks narrower than this many door gaps (doorways missed by bridging)…
NECK_PER_DOOR_GAP = 1.6
#: …between cores (room interiors) of at least this many squared wall thicknesses.
CORE_AREA_PER_THICKNESS2 = 4.0
#: Free space that the door symbols and other pen lines divide into pieces of at least this
#: many squared door gaps, each bounded by walls along at least this many door gaps, is split
#: between them (doorways too wide for bridging and neck cuts, closed by a leaf and its arc).
INK_PIECE_PER_DOOR_GAP2 = 4.0
INK_CONTACT_PER_DOOR_GAP = 2.0
#: …where pen ink is anything darker than PEN_LEVEL: the thin, anti-aliased arcs of door
#: swings come out light on shrunk plans, thin lines light gray on small JPEG listings. Ink
#: lighter than PEN_DARK counts only where it does not run straight for this many door gaps
#: (grid paper's ruling is as light); floor tints are lighter still.
PEN_LEVEL = 230
PEN_DARK = 215
RULING_PER_DOOR_GAP = 1.0
#: Recesses in the walls (closets) this wide and deep, in door gaps, get a front.
RECESS_MAX_WIDTH = 3.0
RECESS_MIN_WIDTH = 0.5
RECESS_MAX_DEPTH = 1.3
RECESS_MIN_DEPTH = 0.25
#: Clean rectangles at least this many door gaps across are rooms, if doubtful ones.
RECT_WIDTH_PER_DOOR_GAP = 0.8
#: Wall pieces shorter than this many door gaps (on both sides) are text or symbols.
SMALL_PER_DOOR_GAP = 0.5
#: Bridge diagonal (45°) walls too.
DIAGONAL = False


@dataclass(frozen=True)
class DebugResult:
    """Intermediate results, for notebooks and tuning."""

    detection: Detection
    gray: np.ndarray
    walls: WallInfo
    bridges: np.ndarray  # bridged openings and closet fronts (uint8 0/1)
    cuts: np.ndarray  # neck cuts (uint8 0/1)
    outside: np.ndarray  # outside the footprint (uint8 0/1)
    door_gap: float
    frame: Frame
    candidates: tuple[RoomCandidate, ...]
    probabilities: np.ndarray | None = None  # the network's (classes, H, W) maps (learned, hybrid)


def _load(image: ImageInput, config: DetectorConfig, content_type: str | None) -> np.ndarray:
    """The plan as an array. Encoded plans are decoded straight to 8-bit grey, as the server
    decodes them: the detector and the text reading only see grey, and a plan given by path
    gives exactly the server's response (JPEGs decoded to grey differ from converted colour by
    a level here and there)."""
    if isinstance(image, np.ndarray):
        return image
    if isinstance(image, (bytes, bytearray, memoryview, str, Path)):
        from roomkit.plans.imageio import load_image  # lazy: keeps the decoders off the import path

        return load_image(image, content_type=content_type, max_pixels=config.max_pixels, pdf_dpi=config.pdf_dpi,
                          gray=True)
    raise InputError(f"image must be a numpy array, bytes or a path, got {type(image).__name__}")


def auto_door_gap(thickness: float, wall: np.ndarray, components: tuple | None = None) -> float:
    """Door gap from the building's size: a share of the walls' bounding-box extent.

    ``components``: ``components8(wall)`` if already known."""
    if thickness <= 0:
        return 0.0
    n, _labels, stats, _ = components8(wall) if components is None else components
    if n <= 1:
        return 0.0
    # The building is the largest wall structure; text and symbols around it do not count.
    areas = stats[1:, cv2.CC_STAT_AREA]
    big = stats[1:][areas >= BUILDING_PART * areas.max()]
    x0, y0 = big[:, 0].min(), big[:, 1].min()
    x1, y1 = (big[:, 0] + big[:, 2]).max(), (big[:, 1] + big[:, 3]).max()
    extent = max(int(x1 - x0), int(y1 - y0))
    return float(max(DOOR_GAP_FRACTION * extent, DOOR_GAP_MIN_THICKNESS * thickness))


def building_box(components: tuple, min_span: float) -> tuple[int, int, int, int] | None:
    """Bounding box (x0, y0, x1, y1, ends exclusive) of the building's wall structure.

    ``components``: ``components8(wall)``. The building is the wall components with at least
    BUILDING_PART of the largest one's area that span at least ``min_span`` px both ways (wall
    structures enclosing rooms; a bold title or a legend line is long but flat), or, if none
    does, all components with that share of the area."""
    n, _labels, stats, _ = components
    if n <= 1:
        return None
    st = stats[1:]
    areas = st[:, cv2.CC_STAT_AREA]
    big = areas >= BUILDING_PART * areas.max()
    wide = big & (np.minimum(st[:, cv2.CC_STAT_WIDTH], st[:, cv2.CC_STAT_HEIGHT]) >= min_span)
    sel = st[wide] if wide.any() else st[big]
    x0, y0 = int(sel[:, 0].min()), int(sel[:, 1].min())
    x1, y1 = int((sel[:, 0] + sel[:, 2]).max()), int((sel[:, 1] + sel[:, 3]).max())
    return x0, y0, x1, y1


def _model(model: ModelInput) -> "LearnedModel":
    from roomkit.learned.runtime import LearnedModel, load_model  # lazy: only these backends load onnxruntime

    return model if isinstance(model, LearnedModel) else load_model(model)


def _run_learned(array: np.ndarray, config: DetectorConfig, model: "LearnedModel", start: float) -> DebugResult:
    """The learned backend: rooms straight from the network's maps."""
    from roomkit.learned.instances import room_pieces

    prep = prepare(array, min(config.working_resolution, model.info.max_side), deskew=config.deskew)
    frame, gray = prep.frame, prep.gray
    probs = model.predict(gray)
    page = float(gray.shape[0] * gray.shape[1])
    pieces = room_pieces(probs, min_area=config.min_room_area * page, max_area=config.max_room_area * page,
                         simplify=config.simplify_tolerance * frame.scale)
    det = _finish(array, config, frame, pieces, start)
    empty = np.zeros(gray.shape, np.uint8)
    label = probs.argmax(0)
    walls = WallInfo(mask=(label == 1).astype(np.uint8), ink=empty, faint=empty, thickness=0.0, kernel=0)
    return DebugResult(det, gray, walls, empty, empty, (label == 0).astype(np.uint8), 0.0, frame, (), probs)


def _finish(array: np.ndarray, config: DetectorConfig, frame: Frame, found: Iterable, start: float) -> Detection:
    """The Detection of rooms ``found`` by either backend (anything with a working-px ``polygon``,
    ``area`` and ``confidence``): mapped to the original pixels, split at ``min_confidence``,
    numbered, and annotated with the plan's text when asked."""
    items, doubtful = [], []
    for c in found:
        pts = frame.to_original(c.polygon)
        item = ([(float(x), float(y)) for x, y in pts], c.area / (frame.scale * frame.scale), c.confidence)
        (items if c.confidence >= config.min_confidence else doubtful).append(item)
    rooms = order_and_number(items)
    elapsed = (time.perf_counter() - start) * 1000.0
    det = Detection(width=frame.orig_width, height=frame.orig_height, rooms=rooms, processing_time_ms=elapsed)
    if config.read_text:
        from roomkit.text.annotate import annotate  # lazy: the OCR engine loads on first use

        # Regions too doubtful to report are kept where a room name stands in them. The text is
        # read on the grey plan whatever was given (served and direct responses agree).
        det = annotate(det, to_gray(array), evidence=config.text_evidence, doubtful=doubtful)
    return det


def _run(image: ImageInput, config: DetectorConfig | None, content_type: str | None, model: ModelInput = None) -> DebugResult:
    start = time.perf_counter()
    config = config or DetectorConfig()
    learned = _model(model) if config.backend != "rules" else None
    array = _load(image, config, content_type)
    if learned is not None and config.backend == "learned":
        return _run_learned(array, config, learned, start)
    prep = prepare(array, config.working_resolution, target_thickness=TARGET_THICKNESS, deskew=config.deskew)
    frame, gray = prep.frame, prep.gray
    # Thickness and door gap in the config are in original pixels; the pipeline works scaled.
    thickness = None if config.wall_thickness is None else config.wall_thickness * frame.scale
    walls = wall_mask(gray, thickness)
    t = walls.thickness
    comps = components8(walls.mask)  # labelled once for the door gap and the small-piece filter
    door_gap = auto_door_gap(t, walls.mask, comps) if config.door_gap is None else config.door_gap * frame.scale
    # Bold text, symbols and furniture blobs that survived the opening are compact: shorter
    # than about half a door. Walls are longer, or joined to longer walls.
    # Letters of bold room names are as long as short spurs, but they stand in rows.
    kept = drop_small(
        walls.mask, max(4.0 * t, SMALL_PER_DOOR_GAP * door_gap), comps, drop=text_lines(comps[2], t, door_gap)
    )
    window_gap = min(WINDOW_GAP_PER_THICKNESS * t, WINDOW_GAP_MAX_FRACTION * max(gray.shape))
    # …but piers between windows and short stretches of wall between openings are walls.
    piers = wall_piers(kept, comps, t, window_gap, walls.faint)
    walls = walls.replace(mask=kept | piers)
    box = building_box(comps, door_gap)
    del comps
    # All ink, pen lines included (door symbols, closet fronts, partitions drawn thin).
    pen = pen_ink(gray, walls.ink, PEN_DARK, PEN_LEVEL, int(RULING_PER_DOOR_GAP * door_gap))
    probs = None
    learned_openings = None
    if learned is not None:  # hybrid: the network's maps edit the walls before the closure stages
        from roomkit.detector.hybrid import learned_evidence

        probs = learned.predict(gray)
        ev = learned_evidence(probs, walls.mask, pen)
        walls = walls.replace(mask=(walls.mask & (1 - ev.dropped)) | ev.added)
        learned_openings = ev.openings
    # Door leaves drawn as thick as walls are not walls; their doorways are closed instead.
    leaves, doorways = door_leaves(walls.mask, pen, t, door_gap)
    if leaves.any():
        walls = walls.replace(mask=walls.mask & (1 - leaves))
    bridges = bridge_gaps(
        walls.mask, door_gap, t, ink=walls.faint, window_gap=window_gap, diagonal=DIAGONAL, piers=piers if piers.any() else None
    )
    bridges |= doorways & (1 - walls.mask)
    if learned_openings is not None:
        bridges |= learned_openings & (1 - walls.mask)
    outside = exterior(walls.mask | bridges, max(window_gap, EXTERIOR_PER_DOOR_GAP * door_gap))
    fronts, closets = close_recesses(
        walls.mask,
        walls.mask | bridges,
        outside,
        pen,
        (RECESS_MIN_WIDTH * door_gap, RECESS_MAX_WIDTH * door_gap),
        # As shallow as the recesses bridging leaves open.
        (max(RECESS_MIN_DEPTH * door_gap, bridge_recess_depth(t)), RECESS_MAX_DEPTH * door_gap),
        t,
    )
    free = (1 - (walls.mask | bridges | fronts | outside)).astype(np.uint8)
    cuts = split_at_necks(free, NECK_PER_DOOR_GAP * door_gap, CORE_AREA_PER_THICKNESS2 * max(t, 1.0) ** 2)
    cuts = cuts | split_by_ink(
        free & (1 - cuts),
        pen,
        walls.mask | bridges | fronts | cuts,
        INK_PIECE_PER_DOOR_GAP2 * door_gap**2,
        INK_CONTACT_PER_DOOR_GAP * door_gap,
    )
    page = float(gray.shape[0] * gray.shape[1])
    min_area = max(config.min_room_area * page, 4.0 * max(t, 1.0) ** 2)
    # A doorway closed on its door symbol is drawn evidence, not a guess: it counts as wall.
    drawn = doorways & bridges
    drawn_walls = walls.mask | drawn  # walls and doorways closed on their door symbols
    guessed = (bridges & (1 - drawn)) | cuts
    # Closings that only cut a lobe off its room (no line drawn along them, no door swing
    # beside them, a large share of the lobe's outline) are opened again.
    lobes = open_lobes(
        drawn_walls, guessed, fronts=fronts, closets=closets, outside=outside, ink=pen, thickness=t
    )
    guessed = guessed & (1 - lobes)
    cands = find_rooms(
        drawn_walls,
        guessed,
        fronts=fronts,
        closets=closets,
        outside=outside,
        min_area=min_area,
        max_area=config.max_room_area * page,
        simplify=config.simplify_tolerance * frame.scale,
        building_box=box,
        beyond_width=BEYOND_WIDTH_PER_DOOR_GAP * door_gap,
        rect_width=RECT_WIDTH_PER_DOOR_GAP * door_gap,
    )
    det = _finish(array, config, frame, cands, start)
    return DebugResult(det, gray, walls, bridges | fronts, cuts, outside, door_gap, frame, tuple(cands), probs)


def detect_rooms(
    image: ImageInput, config: DetectorConfig | None = None, *, content_type: str | None = None,
    model: ModelInput = None,
) -> Detection:
    """Find the rooms of a floor plan.

    ``image``: an H×W gray, H×W×3 BGR or H×W×4 BGRA array (uint8 or uint16), or encoded bytes /
    a file path (decoded by :func:`roomkit.plans.imageio.load_image`). Returns a :class:`Detection`
    whose room polygons are in the original image's pixel grid, ordered top-to-bottom,
    left-to-right, ids ``room_001``…; deterministic for the same input.

    ``model``: for the ``learned`` and ``hybrid`` backends, a loaded
    :class:`~roomkit.learned.runtime.LearnedModel` or a model directory (default: the shipped
    weights); ignored by ``rules``.
    """
    return _run(image, config, content_type, model).detection


def detect_debug(
    image: ImageInput, config: DetectorConfig | None = None, *, content_type: str | None = None,
    model: ModelInput = None,
) -> DebugResult:
    """Like :func:`detect_rooms` but also returns the intermediate masks (and the maps)."""
    return _run(image, config, content_type, model)
