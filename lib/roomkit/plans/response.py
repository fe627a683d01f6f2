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
class RoomText:
    """A room's name, type and size as read from the plan's text (all optional).

    ``dimensions``: ``{"width", "length", "unit", "width_m", "length_m", "text", "source"}``;
    ``area``: ``{"m2", "ft2", "source"}``; ``source`` is ``"printed"`` (read on the plan) or
    ``"scaled"`` (measured with the plan's scale)."""

    name: str | None = None
    type: str = "unknown"
    dimensions: Mapping[str, Any] | None = None
    area: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "dimensions": dict(self.dimensions) if self.dimensions is not None else None,
            "area": dict(self.area) if self.area is not None else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RoomText":
        return cls(
            name=data.get("name"),
            type=str(data.get("type") or "unknown"),
            dimensions=data.get("dimensions"),
            area=data.get("area"),
        )


@dataclass(frozen=True)
class Room:
    """One detected room; ``polygon`` is in pixels of the original image, closed implicitly."""

    id: str
    polygon: tuple[Point, ...]
    area_px: float
    confidence: float
    #: What the plan's text says about the room (``roomkit.text``); ``None`` when not read.
    text: RoomText | None = None

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
    #: Plan-level results of reading the text (``roomkit.text``); all ``None`` when not read:
    #: ``scale`` ({"px_per_m", "source", "rooms"}), ``flags`` (merged / missed rooms the text
    #: points at), ``timings_ms`` ({"detect", "text"}).
    scale: Mapping[str, Any] | None = None
    flags: tuple[Mapping[str, Any], ...] | None = None
    timings_ms: Mapping[str, float] | None = None

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
            item = {
                "id": room.id,
                "bounding_box": self.normalize_point(x0, y0) + self.normalize_point(x1, y1),
                "polygon": [self.normalize_point(x, y) for x, y in room.polygon],
                "area_px": round(float(room.area_px), 1),
                "confidence": round(float(room.confidence), 3),
            }
            if room.text is not None:
                item.update(room.text.to_dict())
            rooms.append(item)
        out: dict[str, Any] = {
            "status": self.status,
            "processing_time_ms": round(float(self.processing_time_ms), 2),
            "image": {"width": int(self.width), "height": int(self.height)},
            "detected_rooms": rooms,
        }
        out.update(self._text_fields())
        return out

    def _text_fields(self, *, pixels: bool = False) -> dict[str, Any]:
        """The plan-level fields reading the text adds (none when it was not read); flag
        positions normalized to 0–1000, or in pixels (GeoJSON)."""
        out: dict[str, Any] = {}
        if self.timings_ms is not None:
            out["processing_time_breakdown_ms"] = {k: round(float(v), 2) for k, v in self.timings_ms.items()}
        if self.scale is not None or self.flags is not None:
            out["scale"] = dict(self.scale) if self.scale is not None else None
            out["text_flags"] = [self._flag_out(f, pixels) for f in (self.flags or ())]
        return out

    def _flag_out(self, flag: Mapping[str, Any], pixels: bool = False) -> dict[str, Any]:
        out = dict(flag)
        if "at_px" in out:
            x, y = out.pop("at_px")
            out["at"] = [round(float(x), 2), round(float(y), 2)] if pixels else self.normalize_point(x, y)
        return out

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
                        **(room.text.to_dict() if room.text is not None else {}),
                    },
                }
            )
        props: dict[str, Any] = {
            "image": {"width": int(self.width), "height": int(self.height)},
            "processing_time_ms": round(float(self.processing_time_ms), 2),
            "coordinate_system": "pixel",
        }
        props.update(self._text_fields(pixels=True))
        return {"type": "FeatureCollection", "features": features, "properties": props}

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
                text=RoomText.from_dict(r) if "type" in r else None,
            )
            for r in data.get("detected_rooms", [])
        )
        flags = data.get("text_flags")
        if flags is not None:
            flags = tuple(
                {**{k: v for k, v in f.items() if k != "at"}, **({"at_px": det.denormalize_point(*f["at"])} if "at" in f else {})}
                for f in flags
            )
        timings = data.get("processing_time_breakdown_ms")
        return cls(
            width=det.width,
            height=det.height,
            rooms=rooms,
            processing_time_ms=float(data.get("processing_time_ms", 0.0)),
            status=str(data.get("status", "success")),
            scale=data.get("scale"),
            flags=flags,
            timings_ms=dict(timings) if timings is not None else None,
        )

    def type_summary(self) -> str | None:
        """The rooms' types, most frequent first ("2 bedroom, bathroom, kitchen"); ``None`` when
        the text was not read."""
        kinds = [r.text.type for r in self.rooms if r.text is not None]
        if not kinds:
            return None
        counts: dict[str, int] = {}
        for k in kinds:
            counts[k] = counts.get(k, 0) + 1
        order = sorted(counts, key=lambda k: (-counts[k], k))
        return ", ".join(f"{counts[k]} {k}" if counts[k] > 1 else k for k in order)

    def filter(self, min_confidence: float) -> "Detection":
        """The same detection keeping only rooms at or above a confidence threshold."""
        return Detection(
            width=self.width,
            height=self.height,
            rooms=tuple(r for r in self.rooms if r.confidence >= min_confidence),
            processing_time_ms=self.processing_time_ms,
            status=self.status,
            scale=self.scale,
            flags=self.flags,
            timings_ms=self.timings_ms,
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
