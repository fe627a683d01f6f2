"""Detection results and their wire formats.

Inside roomkit a room is kept in the original image's pixel grid; the API response normalizes
coordinates to 0–1000 (x by width, y by height) as the API spec requires, and GeoJSON keeps
pixels. ``Detection.from_response`` reads a response back (e.g. an async ``.out`` object) so
visualization and evaluation work on remote results exactly as on local ones.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

Point = tuple[float, float]

NORMALIZED_SCALE = 1000.0
_DECIMALS = 1  # 0.1 of a normalized unit: well inside one pixel per 1000 either way


@dataclass(frozen=True)
class Room:
    """One detected room; ``polygon`` is in pixels of the original image, closed implicitly."""

    id: str
    polygon: tuple[Point, ...]
    area_px: float
    confidence: float

    @property
    def bbox_px(self) -> tuple[float, float, float, float]:
        xs = [p[0] for p in self.polygon]
        ys = [p[1] for p in self.polygon]
        return (min(xs), min(ys), max(xs), max(ys))


@dataclass(frozen=True)
class Detection:
    """What :func:`roomkit.detect_rooms` returns for one image."""

    width: int
    height: int
    rooms: tuple[Room, ...] = field(default_factory=tuple)
    processing_time_ms: float = 0.0
    status: str = "success"

    # -- normalization ------------------------------------------------------------------------
    def normalize_point(self, x: float, y: float) -> list[float]:
        return [
            _clamp_round(x * NORMALIZED_SCALE / self.width),
            _clamp_round(y * NORMALIZED_SCALE / self.height),
        ]

    def denormalize_point(self, nx: float, ny: float) -> tuple[float, float]:
        return (nx * self.width / NORMALIZED_SCALE, ny * self.height / NORMALIZED_SCALE)

    # -- wire formats -------------------------------------------------------------------------
    def to_response(self) -> dict[str, Any]:
        """The API response: boxes and polygons normalized to 0–1000."""
        rooms = []
        for room in self.rooms:
            x0, y0, x1, y1 = room.bbox_px
            rooms.append(
                {
                    "id": room.id,
                    "bounding_box": self.normalize_point(x0, y0) + self.normalize_point(x1, y1),
                    "polygon": [self.normalize_point(x, y) for x, y in room.polygon],
                    "area_px": round(float(room.area_px), 1),
                    "confidence": round(float(room.confidence), 3),
                }
            )
        return {
            "status": self.status,
            "processing_time_ms": round(float(self.processing_time_ms), 2),
            "image": {"width": int(self.width), "height": int(self.height)},
            "detected_rooms": rooms,
        }

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_response(), **kwargs)

    def to_geojson(self) -> dict[str, Any]:
        """A GeoJSON FeatureCollection of room polygons in pixel coordinates (y down)."""
        features = []
        for room in self.rooms:
            ring = [[round(x, 2), round(y, 2)] for x, y in room.polygon]
            if ring and ring[0] != ring[-1]:
                ring.append(ring[0])
            features.append(
                {
                    "type": "Feature",
                    "id": room.id,
                    "geometry": {"type": "Polygon", "coordinates": [ring]},
                    "properties": {
                        "id": room.id,
                        "area_px": round(float(room.area_px), 1),
                        "confidence": round(float(room.confidence), 3),
                    },
                }
            )
        return {
            "type": "FeatureCollection",
            "features": features,
            "properties": {
                "image": {"width": int(self.width), "height": int(self.height)},
                "processing_time_ms": round(float(self.processing_time_ms), 2),
                "coordinate_system": "pixel",
            },
        }

    @classmethod
    def from_response(cls, data: Mapping[str, Any] | str | bytes) -> "Detection":
        """Parse an API response (dict or JSON text) back into a Detection in pixel space."""
        if isinstance(data, (str, bytes)):
            data = json.loads(data)
        image = data["image"]
        det = cls(width=int(image["width"]), height=int(image["height"]))
        rooms = tuple(
            Room(
                id=str(r["id"]),
                polygon=tuple(det.denormalize_point(float(p[0]), float(p[1])) for p in r["polygon"]),
                area_px=float(r.get("area_px", 0.0)),
                confidence=float(r.get("confidence", 0.0)),
            )
            for r in data.get("detected_rooms", [])
        )
        return cls(
            width=det.width,
            height=det.height,
            rooms=rooms,
            processing_time_ms=float(data.get("processing_time_ms", 0.0)),
            status=str(data.get("status", "success")),
        )

    def filter(self, min_confidence: float) -> "Detection":
        """The same detection keeping only rooms at or above a confidence threshold."""
        return Detection(
            width=self.width,
            height=self.height,
            rooms=tuple(r for r in self.rooms if r.confidence >= min_confidence),
            processing_time_ms=self.processing_time_ms,
            status=self.status,
        )


def order_and_number(
    polygons: Iterable[tuple[Sequence[Point], float, float]], *, prefix: str = "room_"
) -> tuple[Room, ...]:
    """Rooms ordered top-to-bottom, left-to-right by bounding-box corner, ids ``room_001``…

    ``polygons`` yields ``(polygon_px, area_px, confidence)``. The order (and so the ids) depends
    only on the geometry, which makes ids stable for the same input. Degenerate polygons (fewer
    than three distinct points) are dropped.
    """
    # A "polygon" of fewer than 3 distinct points has no interior: never report it as a room.
    items = [item for item in polygons if len({(float(x), float(y)) for x, y in item[0]}) >= 3]

    def key(item: tuple[Sequence[Point], float, float]) -> tuple[float, float, float]:
        poly = item[0]
        return (min(p[1] for p in poly), min(p[0] for p in poly), -item[1])

    items.sort(key=key)
    return tuple(
        Room(
            id=f"{prefix}{i:03d}",
            polygon=tuple((float(x), float(y)) for x, y in poly),
            area_px=float(area),
            confidence=float(conf),
        )
        for i, (poly, area, conf) in enumerate(items, start=1)
    )


def _clamp_round(value: float) -> float:
    return round(min(max(value, 0.0), NORMALIZED_SCALE), _DECIMALS)
