"""Config validation, response normalization and the lazy public API."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from roomkit.detector.config import DetectorConfig
from roomkit.errors import ConfigError
from roomkit.plans.response import Detection, Room, order_and_number


def test_config_rejects_unknown_keys_by_name():
    with pytest.raises(ConfigError, match="min_room_aera"):
        DetectorConfig.from_dict({"min_room_aera": 0.1})


@pytest.mark.parametrize(
    "key,value",
    [("min_room_area", -1), ("max_room_area", "big"), ("working_resolution", 10.5), ("door_gap", float("nan"))],
)
def test_config_rejects_bad_values_naming_the_field(key, value):
    with pytest.raises(ConfigError, match=key):
        DetectorConfig.from_dict({key: value})


def test_config_round_trips_through_json(tmp_path):
    cfg = DetectorConfig().replace(door_gap=12.0)
    path = cfg.to_json(tmp_path / "config.json")
    assert DetectorConfig.from_json(path) == cfg
    assert cfg.with_overrides({"min_confidence": 0.3}).min_confidence == 0.3
    with pytest.raises(ConfigError, match="not valid JSON"):
        (tmp_path / "bad.json").write_text("{")
        DetectorConfig.from_json(tmp_path / "bad.json")


def test_normalization_round_trip_within_one_pixel_per_thousand():
    w, h = 2400, 1800
    poly = [(50.3, 40.7), (2399.0, 40.7), (2399.0, 1799.0), (50.3, 1799.0)]
    det = Detection(width=w, height=h, rooms=order_and_number([(poly, 100.0, 0.9)]))
    back = Detection.from_response(json.loads(det.to_json()))
    for (x, y), (bx, by) in zip(poly, back.rooms[0].polygon):
        assert abs(x - bx) <= w / 1000 and abs(y - by) <= h / 1000
    box = det.to_response()["detected_rooms"][0]["bounding_box"]
    assert box[0] < box[2] and box[1] < box[3] and all(0 <= v <= 1000 for v in box)


def test_rooms_are_ordered_top_to_bottom_left_to_right():
    sq = lambda x, y: [(x, y), (x + 10, y), (x + 10, y + 10), (x, y + 10)]  # noqa: E731
    rooms = order_and_number([(sq(50, 50), 1, 1), (sq(0, 50), 1, 1), (sq(20, 0), 1, 1)])
    assert [r.id for r in rooms] == ["room_001", "room_002", "room_003"]
    assert [r.polygon[0] for r in rooms] == [(20, 0), (0, 50), (50, 50)]


def test_geojson_rings_are_closed_and_in_pixels():
    room = Room(id="room_001", polygon=((0, 0), (10, 0), (10, 5)), area_px=25, confidence=0.8)
    gj = Detection(width=100, height=100, rooms=(room,)).to_geojson()
    ring = gj["features"][0]["geometry"]["coordinates"][0]
    assert ring[0] == ring[-1] and [10, 5] in ring


def test_importing_the_package_and_aws_side_modules_does_not_load_opencv():
    code = "import roomkit, roomkit.aws, roomkit.detector.config, roomkit.plans.response, sys; print('cv2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_degenerate_polygons_are_never_reported_as_rooms():
    rooms = order_and_number([([(0, 0), (10, 0)], 0, 1), ([(0, 0), (5, 0), (5, 5), (0, 0)], 12, 1)])
    assert len(rooms) == 1 and rooms[0].id == "room_001"
