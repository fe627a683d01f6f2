"""Detector parameters: one dataclass, validated, loadable from the model artifact's config.json.

``None`` means "derive from the image" (wall thickness, door-gap length): the detector measures
the plan and picks a value, so defaults work across scales without tuning.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Mapping

from roomkit.errors import ConfigError


#: Fields that bound the memory and time one plan may cost (pixels decoded, PDF render
#: resolution, the size detection runs at). The server lets a request lower them, never raise
#: them above the model's own config.json: that file is the operator's ceiling.
RESOURCE_LIMITS: tuple[str, ...] = ("max_pixels", "pdf_dpi", "working_resolution")

#: ``rules``: OpenCV stages only. ``learned``: rooms from a segmentation network's maps
#: (:mod:`roomkit.learned`). ``hybrid``: the rules stages with the network's wall and opening
#: maps as extra evidence.
BACKENDS: tuple[str, ...] = ("rules", "learned", "hybrid")


@dataclass(frozen=True)
class DetectorConfig:
    """Parameters of :func:`roomkit.detect_rooms`.

    Attributes
    ----------
    min_room_area, max_room_area:
        Bounds on a room's area as a fraction of the image area; regions outside are dropped.
        The default floor, 0.05 %, keeps the cupboards of small listing images (a closet on a
        500 × 500 px plan can be 15 × 20 px, 0.12 % of it).
    door_gap:
        Longest wall opening (px of the original image) closed as a doorway along a wall line;
        ``None`` = auto (5.5 % of the building's extent, at least three wall thicknesses).
        Openings up to 1.6× this wide are also cut where the free space necks down.
    wall_thickness:
        Typical wall stroke width in px of the original image; ``None`` = measured from the
        image (the stroke width holding the most ink). Strokes under ~0.3× this (and pen lines) are not walls.
    simplify_tolerance:
        Polygon simplification tolerance in px of the original image (Douglas-Peucker).
    working_resolution:
        Longest side the plan is processed at; larger plans are downscaled and the polygons
        mapped back to the original pixel grid. Plans whose walls are much thicker than ~8 px
        at that size are shrunk further (same result, less work).
    deskew:
        Straighten plans drawn or scanned at a small angle (0.4°–12°) before detection.
    max_pixels:
        Refuse images whose header declares more pixels than this (decompression-bomb guard).
    min_confidence:
        Rooms with a lower confidence are not reported. The default 0.5 maximizes mean F1@0.5
        over synthetic and real plans (it drops door-jamb pockets and slivers); 0 reports all.
    pdf_dpi:
        Resolution a PDF's first page is rendered at.
    read_text:
        Read the plan's text (OCR, :mod:`roomkit.text`): each room gets a name, a type, its
        printed dimensions and an area, the plan a scale. On by default, as issue 21 asks: it is
        what people reading these plans want to know. It costs about 0.3-0.4 s of one core on a
        small listing plan, several times its detection (0.05-0.08 s): set it ``false`` in the
        model's ``config.json`` (or per request) when only the polygons matter and throughput
        does. Served and direct responses agree with it on: both read the grey plan.
    text_evidence:
        With ``read_text``, let the text correct the rooms: a region holding two room names is
        split where it narrows between them (or flagged), a name outside every room is flagged.
    backend:
        ``"rules"``, ``"learned"`` or ``"hybrid"`` (:data:`BACKENDS`). The learned and hybrid
        backends run ``model.onnx`` from the model directory (the shipped weights when the
        detector is called directly); see the README for which measures best.
    """

    min_room_area: float = 0.0005
    max_room_area: float = 0.9
    door_gap: float | None = None
    wall_thickness: float | None = None
    simplify_tolerance: float = 1.5
    working_resolution: int = 2000
    max_pixels: int = 120_000_000
    min_confidence: float = 0.5
    pdf_dpi: int = 150
    deskew: bool = True
    read_text: bool = True
    text_evidence: bool = True
    backend: str = "rules"

    def __post_init__(self) -> None:
        self._check_fraction("min_room_area", self.min_room_area, low=0.0, high=1.0)
        self._check_fraction("max_room_area", self.max_room_area, low=0.0, high=1.0)
        if self.min_room_area >= self.max_room_area:
            raise ConfigError(
                f"min_room_area ({self.min_room_area}) must be smaller than "
                f"max_room_area ({self.max_room_area})"
            )
        for name in ("door_gap", "wall_thickness"):
            value = getattr(self, name)
            if value is not None:
                self._check_number(name, value, low=0.0, high=10_000.0)
        self._check_number("simplify_tolerance", self.simplify_tolerance, low=0.0, high=100.0)
        self._check_int("working_resolution", self.working_resolution, low=256, high=20_000)
        self._check_int("max_pixels", self.max_pixels, low=1, high=2_000_000_000)
        self._check_fraction("min_confidence", self.min_confidence, low=0.0, high=1.0)
        self._check_int("pdf_dpi", self.pdf_dpi, low=36, high=1200)
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        for name in ("deskew", "read_text", "text_evidence"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be true or false, got {getattr(self, name)!r}")

    # -- validation helpers -------------------------------------------------------------------
    @staticmethod
    def _check_number(name: str, value: Any, *, low: float, high: float) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"{name} must be a number, got {value!r}")
        if not low <= value <= high:
            raise ConfigError(f"{name} must be between {low} and {high}, got {value!r}")

    @classmethod
    def _check_fraction(cls, name: str, value: Any, *, low: float, high: float) -> None:
        cls._check_number(name, value, low=low, high=high)

    @classmethod
    def _check_int(cls, name: str, value: Any, *, low: int, high: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name} must be an integer, got {value!r}")
        cls._check_number(name, value, low=low, high=high)

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "DetectorConfig":
        """Build from a mapping, rejecting unknown keys by name."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"detector config must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"unknown detector config key(s): {', '.join(unknown)} "
                f"(known: {', '.join(sorted(known))})"
            )
        return cls(**dict(data))

    @classmethod
    def from_json(cls, path: str | Path) -> "DetectorConfig":
        """Load ``config.json`` (the model artifact the container reads from /opt/ml/model)."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read detector config {path}: {exc.strerror or exc}") from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
        try:
            return cls.from_dict(data)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc.message}") from exc

    def with_overrides(self, overrides: Mapping[str, Any] | None) -> "DetectorConfig":
        """A copy with some fields replaced (per-request ``config`` in the API), validated."""
        if not overrides:
            return self
        merged = {**self.to_dict(), **dict(overrides)} if isinstance(overrides, Mapping) else overrides
        return self.from_dict(merged)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return path

    def replace(self, **changes: Any) -> "DetectorConfig":
        return replace(self, **changes)
