"""The detector pipeline: preprocess → walls → gaps → necks → rooms → response types.

``detect_rooms`` is the one public entry point; the stages live in their own modules so that
each can be inspected (``detect_debug`` returns the intermediate masks for notebooks).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import cv2
import numpy as np

from roomkit.config import DetectorConfig
from roomkit.detector.gaps import bridge_collinear, bridge_gaps
from roomkit.detector.preprocess import Frame, prepare
from roomkit.detector.rooms import RoomCandidate, exterior, find_rooms
from roomkit.detector.split import split_at_necks
from roomkit.detector.walls import WallInfo, drop_small, thin_partitions, wall_mask
from roomkit.errors import InputError
from roomkit.response import Detection, order_and_number

ImageInput = Union[np.ndarray, bytes, bytearray, memoryview, str, Path]

#: Plans whose walls are much thicker than this (px) are processed shrunk to about this.
TARGET_THICKNESS = 8.0
#: Auto door gap as a share of the building's extent (longest side of the walls' bounding
#: box): a door is ~0.8–1 m in a plan of ~8–20 m; 0.06 measured best on synthetic and real
#: plans. Never below a few wall thicknesses.
DOOR_GAP_FRACTION = 0.06
DOOR_GAP_MIN_THICKNESS = 3.0
#: Wall components with at least this share of the largest one's area make up the building.
BUILDING_PART = 0.1
#: Windows (collinear wall runs joined by thin glazing lines) may be much longer than doors.
WINDOW_GAP_PER_THICKNESS = 20.0
WINDOW_GAP_MAX_FRACTION = 0.4
#: Free space is cut at necks narrower than this many door gaps (doorways missed by bridging)…
NECK_PER_DOOR_GAP = 1.6
#: …between cores (room interiors) of at least this many squared wall thicknesses.
CORE_AREA_PER_THICKNESS2 = 4.0
#: Wall pieces shorter than this many door gaps (on both sides) are text or symbols.
SMALL_PER_DOOR_GAP = 0.5
#: Pen-line partitions (closets, light walls) spanning wall to wall: at least this long…
THIN_PARTITIONS = True
THIN_MIN_PER_THICKNESS = 3.0
THIN_MIN_PER_DOOR_GAP = 0.5
#: …and ending within this many wall thicknesses of a wall at both ends.
THIN_REACH_PER_THICKNESS = 0.5
#: Partitions meeting a wall at one end only (a doorway at the other) must be this long.
THIN_STUB_PER_DOOR_GAP = 1.5
#: Parallel partition lines closer than this many wall thicknesses are one outlined wall.
THIN_MERGE_PER_THICKNESS = 2.5
#: Wide and double doors: openings up to this many door gaps between collinear wall runs.
WIDE_DOOR_PER_DOOR_GAP = 2.0
#: Straight faint lines spanning wall to wall (glazing) stop the outside from coming in.
EXTERIOR_PEN_LINES = True
#: Bridge diagonal (45°) walls too.
DIAGONAL = False


@dataclass(frozen=True)
class DebugResult:
    """Intermediate results, for notebooks and tuning."""

    detection: Detection
    gray: np.ndarray
    walls: WallInfo
    bridges: np.ndarray  # bridged openings (uint8 0/1)
    cuts: np.ndarray  # neck cuts (uint8 0/1)
    outside: np.ndarray  # outside the footprint (uint8 0/1)
    door_gap: float
    frame: Frame
    candidates: tuple[RoomCandidate, ...]


def _load(image: ImageInput, config: DetectorConfig, content_type: str | None) -> np.ndarray:
    if isinstance(image, np.ndarray):
        return image
    if isinstance(image, (bytes, bytearray, memoryview, str, Path)):
        from roomkit.imageio import load_image  # lazy: keeps the decoders off the import path

        return load_image(image, content_type=content_type, max_pixels=config.max_pixels, pdf_dpi=config.pdf_dpi)
    raise InputError(f"image must be a numpy array, bytes or a path, got {type(image).__name__}")


def auto_door_gap(thickness: float, wall: np.ndarray) -> float:
    """Door gap from the building's size: a share of the walls' bounding-box extent."""
    if thickness <= 0:
        return 0.0
    n, _labels, stats, _ = cv2.connectedComponentsWithStats(wall, connectivity=8)
    if n <= 1:
        return 0.0
    # The building is the largest wall structure; text and symbols around it do not count.
    areas = stats[1:, cv2.CC_STAT_AREA]
    big = stats[1:][areas >= BUILDING_PART * areas.max()]
    x0, y0 = big[:, 0].min(), big[:, 1].min()
    x1, y1 = (big[:, 0] + big[:, 2]).max(), (big[:, 1] + big[:, 3]).max()
    extent = max(int(x1 - x0), int(y1 - y0))
    return float(max(DOOR_GAP_FRACTION * extent, DOOR_GAP_MIN_THICKNESS * thickness))


def _run(image: ImageInput, config: DetectorConfig | None, content_type: str | None) -> DebugResult:
    start = time.perf_counter()
    config = config or DetectorConfig()
    array = _load(image, config, content_type)
    prep = prepare(array, config.working_resolution, target_thickness=TARGET_THICKNESS, deskew=config.deskew)
    frame, gray = prep.frame, prep.gray
    # Thickness and door gap in the config are in original pixels; the pipeline works scaled.
    thickness = None if config.wall_thickness is None else config.wall_thickness * frame.scale
    walls = wall_mask(gray, thickness)
    t = walls.thickness
    door_gap = auto_door_gap(t, walls.mask) if config.door_gap is None else config.door_gap * frame.scale
    # Bold text, symbols and furniture blobs that survived the opening are compact: shorter
    # than about half a door. Walls are longer, or joined to longer walls.
    walls = walls.replace(mask=drop_small(walls.mask, max(4.0 * t, SMALL_PER_DOOR_GAP * door_gap)))
    if THIN_PARTITIONS:
        thin = thin_partitions(
            walls.ink,
            walls.mask,
            max(THIN_MIN_PER_THICKNESS * t, THIN_MIN_PER_DOOR_GAP * door_gap),
            max(2.0, THIN_REACH_PER_THICKNESS * t),
            gray,
            stub_length=THIN_STUB_PER_DOOR_GAP * door_gap,
            merge=THIN_MERGE_PER_THICKNESS * t,
        )
        walls = walls.replace(mask=walls.mask | thin)
    window_gap = min(WINDOW_GAP_PER_THICKNESS * t, WINDOW_GAP_MAX_FRACTION * max(gray.shape))
    bridges = bridge_gaps(walls.mask, door_gap, t, ink=walls.faint, window_gap=window_gap, diagonal=DIAGONAL)
    if WIDE_DOOR_PER_DOOR_GAP > 1.0:
        bridges = bridges | bridge_collinear(walls.mask | bridges, WIDE_DOOR_PER_DOOR_GAP * door_gap, t)
    fence = walls.mask | bridges
    if EXTERIOR_PEN_LINES:
        # The outside stops at any straight pen line spanning wall to wall, whatever its gray:
        # long windows drawn as glazing lines would otherwise let it into the rooms.
        lines = thin_partitions(
            walls.faint,
            fence,
            max(THIN_MIN_PER_THICKNESS * t, THIN_MIN_PER_DOOR_GAP * door_gap),
            max(2.0, THIN_REACH_PER_THICKNESS * t),
        )
        fence = fence | lines
    outside = exterior(fence, window_gap)
    free = (1 - (walls.mask | bridges | outside)).astype(np.uint8)
    cuts = split_at_necks(free, NECK_PER_DOOR_GAP * door_gap, CORE_AREA_PER_THICKNESS2 * max(t, 1.0) ** 2)
    page = float(gray.shape[0] * gray.shape[1])
    min_area = max(config.min_room_area * page, 4.0 * max(t, 1.0) ** 2)
    cands = find_rooms(
        walls.mask,
        bridges | cuts,
        outside=outside,
        min_area=min_area,
        max_area=config.max_room_area * page,
        simplify=config.simplify_tolerance * frame.scale,
    )
    items = []
    for c in cands:
        if c.confidence < config.min_confidence:
            continue
        pts = frame.to_original(c.polygon)
        items.append(([(float(x), float(y)) for x, y in pts], c.area / (frame.scale * frame.scale), c.confidence))
    rooms = order_and_number(items)
    elapsed = (time.perf_counter() - start) * 1000.0
    det = Detection(width=frame.orig_width, height=frame.orig_height, rooms=rooms, processing_time_ms=elapsed)
    return DebugResult(det, gray, walls, bridges, cuts, outside, door_gap, frame, tuple(cands))


def detect_rooms(
    image: ImageInput, config: DetectorConfig | None = None, *, content_type: str | None = None
) -> Detection:
    """Find the rooms of a floor plan.

    ``image``: an H×W gray, H×W×3 BGR or H×W×4 BGRA array (uint8 or uint16), or encoded bytes /
    a file path (decoded by :func:`roomkit.imageio.load_image`). Returns a :class:`Detection`
    whose room polygons are in the original image's pixel grid, ordered top-to-bottom,
    left-to-right, ids ``room_001``…; deterministic for the same input.
    """
    return _run(image, config, content_type).detection


def detect_debug(
    image: ImageInput, config: DetectorConfig | None = None, *, content_type: str | None = None
) -> DebugResult:
    """Like :func:`detect_rooms` but also returns the intermediate masks."""
    return _run(image, config, content_type)
