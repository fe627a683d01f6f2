"""The room detector through its public entry point, on plans drawn here with OpenCV.

Every plan is built from known rectangles, so the expected room polygons are exact: a room is
the free space between wall faces (pixel columns a…b-1 are the face span [a, b)).
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from shapely.geometry import Polygon, box

import roomkit
from roomkit.config import DetectorConfig
from roomkit.errors import ConfigError, InputError
from roomkit.response import Detection

WALL = 12


def _plan(
    cells: list[tuple[int, int, int, int]],
    size: tuple[int, int] = (900, 1200),
    *,
    wall: int = WALL,
    doors: list[tuple[int, int, int, int]] = (),
    scale: float = 1.0,
) -> tuple[np.ndarray, list[Polygon]]:
    """White page, black walls around each cell (x0, y0, x1, y1 of wall centre lines).

    ``doors`` are rectangles of wall painted back to paper (openings). Returns the image and
    the expected room faces.
    """
    h, w = (int(round(v * scale)) for v in size)
    img = np.full((h, w), 255, np.uint8)
    half = wall * scale / 2.0
    for x0, y0, x1, y1 in cells:
        for rx0, ry0, rx1, ry1 in (
            (x0 - wall / 2, y0 - wall / 2, x1 + wall / 2, y0 + wall / 2),
            (x0 - wall / 2, y1 - wall / 2, x1 + wall / 2, y1 + wall / 2),
            (x0 - wall / 2, y0 - wall / 2, x0 + wall / 2, y1 + wall / 2),
            (x1 - wall / 2, y0 - wall / 2, x1 + wall / 2, y1 + wall / 2),
        ):
            img[int(ry0 * scale) : int(ry1 * scale), int(rx0 * scale) : int(rx1 * scale)] = 0
    for dx0, dy0, dx1, dy1 in doors:
        img[int(dy0 * scale) : int(dy1 * scale), int(dx0 * scale) : int(dx1 * scale)] = 255
    faces = [
        box((x0 + wall / 2) * scale, (y0 + wall / 2) * scale, (x1 - wall / 2) * scale, (y1 - wall / 2) * scale)
        for x0, y0, x1, y1 in cells
    ]
    del half
    return img, faces


# Four rooms in a 2×2 grid (wall centre lines at x=100/500/1000, y=100/450/800).
GRID = [(100, 100, 500, 450), (500, 100, 1000, 450), (100, 450, 500, 800), (500, 450, 1000, 800)]


def _ious(det: Detection, faces: list[Polygon]) -> list[float]:
    """For each expected face, the best IoU with a detected room."""
    polys = [Polygon(r.polygon) for r in det.rooms]
    out = []
    for f in faces:
        out.append(max((f.intersection(p).area / f.union(p).area for p in polys), default=0.0))
    return out


def test_rectangular_rooms_are_found_with_tight_polygons():
    img, faces = _plan(GRID)
    det = roomkit.detect_rooms(img)
    assert det.status == "success"
    assert (det.width, det.height) == (1200, 900)
    assert len(det.rooms) == 4
    assert min(_ious(det, faces)) > 0.97
    for room in det.rooms:
        assert room.area_px == pytest.approx(Polygon(room.polygon).area, rel=0.05)
        assert 0.0 < room.confidence <= 1.0


def test_door_gaps_are_closed_along_the_wall_line():
    # A 70 px opening in each interior wall (walls 12 px, building 900 px wide).
    doors = [
        (494, 250, 506, 320),  # between the two top rooms
        (494, 600, 506, 670),  # between the two bottom rooms
        (250, 444, 320, 456),  # between the two left rooms
        (700, 444, 770, 456),  # between the two right rooms
    ]
    img, faces = _plan(GRID, doors=doors)
    det = roomkit.detect_rooms(img)
    assert len(det.rooms) == 4
    assert min(_ious(det, faces)) > 0.95


def test_wide_double_door_between_collinear_walls_is_closed():
    # 100 px openings (nearly two auto door gaps) in two interior walls.
    img, faces = _plan(GRID, doors=[(494, 220, 506, 320), (600, 444, 700, 456)])
    det = roomkit.detect_rooms(img)
    assert len(det.rooms) == 4
    assert min(_ious(det, faces)) > 0.95


def test_entrance_door_in_the_outer_wall_does_not_lose_the_room():
    img, faces = _plan(GRID, doors=[(94, 250, 106, 320)])
    det = roomkit.detect_rooms(img)
    assert len(det.rooms) == 4
    assert min(_ious(det, faces)) > 0.95


def test_white_on_blue_blueprint_is_handled_like_dark_on_white():
    img, faces = _plan(GRID, doors=[(494, 250, 506, 320)])
    blue = np.empty(img.shape + (3,), np.uint8)
    ink = img == 0
    blue[~ink] = (150, 82, 28)  # blueprint blue (BGR)
    blue[ink] = (250, 245, 240)  # white lines
    det = roomkit.detect_rooms(blue)
    assert len(det.rooms) == 4
    assert min(_ious(det, faces)) > 0.95


def test_text_furniture_and_dimension_lines_do_not_make_rooms():
    img, faces = _plan(GRID)
    cv2.putText(img, "LIVING 5.2 x 4.1", (160, 280), cv2.FONT_HERSHEY_SIMPLEX, 1.0, 0, 2)
    cv2.putText(img, "BED", (650, 650), cv2.FONT_HERSHEY_SIMPLEX, 1.2, 0, 2)
    cv2.rectangle(img, (560, 500), (700, 700), 0, 1)  # a bed, thin outline
    cv2.circle(img, (300, 650), 50, 0, 1)  # a table
    cv2.line(img, (94, 40), (1006, 40), 0, 1)  # dimension line above the plan
    for x in (94, 500, 1006):
        cv2.line(img, (x, 30), (x, 50), 0, 1)
    det = roomkit.detect_rooms(img)
    assert len(det.rooms) == 4
    assert min(_ious(det, faces)) > 0.95


def test_thin_dark_partition_from_wall_to_wall_separates_rooms():
    # One walled cell split by a 2 px pen-line partition (a closet wall) drawn as dark as the
    # walls; a light-gray counter line from wall to wall in the other part is furniture.
    img, _ = _plan([(100, 100, 1000, 800)])
    img[106:794, 800:802] = 0
    img[106:794, 300:301] = 150
    det = roomkit.detect_rooms(img)
    faces = [box(106, 106, 800, 794), box(802, 106, 994, 794)]
    assert len(det.rooms) == 2
    assert min(_ious(det, faces)) > 0.95


def test_long_window_drawn_as_faint_glazing_keeps_the_outside_out():
    # A 300 px window in the outer wall (longer than any bridged opening), drawn as two
    # light-gray glazing lines.
    img, faces = _plan(GRID, doors=[(94, 130, 106, 430)])
    img[130:430, 95] = 190
    img[130:430, 104] = 190
    det = roomkit.detect_rooms(img)
    assert len(det.rooms) == 4
    assert min(_ious(det, faces)) > 0.95


def test_outside_is_found_below_a_plan_that_spans_the_page_width():
    # The plan nearly touches the left and right page edges, so the outside above and below it
    # are separate; a 150 px opening in the bottom wall must still face the outside.
    img, faces = _plan(GRID, doors=[(200, 794, 350, 806)])
    img = img[:, 60:1040]
    faces = [Polygon([(x - 60, y) for x, y in f.exterior.coords]) for f in faces]
    det = roomkit.detect_rooms(img)
    assert len(det.rooms) == 4
    assert min(_ious(det, faces)) > 0.9


def test_outlined_partition_of_two_pen_lines_is_one_wall():
    # A partition drawn as two parallel pen lines 20 px apart: one wall, not a sliver room.
    img, _ = _plan([(100, 100, 1000, 800)])
    img[106:794, 590:592] = 0
    img[106:794, 610:612] = 0
    det = roomkit.detect_rooms(img)
    faces = [box(106, 106, 590, 794), box(612, 106, 994, 794)]
    assert len(det.rooms) == 2
    assert min(_ious(det, faces)) > 0.95


def test_small_rotation_is_straightened_and_mapped_back():
    img, faces = _plan(GRID)
    h, w = img.shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), 3.0, 1.0)
    rotated = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=255)
    det = roomkit.detect_rooms(rotated)
    assert len(det.rooms) == 4
    # Expected faces rotated with the same map (pixel centres → faces: shift by 0.5).
    moved = []
    for f in faces:
        pts = np.asarray(f.exterior.coords)[:-1] - 0.5
        pts = pts @ m[:, :2].T + m[:, 2] + 0.5
        moved.append(Polygon(pts))
    assert min(_ious(det, moved)) > 0.93


def test_large_plan_is_processed_downscaled_and_mapped_back_to_the_original_grid():
    img, faces = _plan(GRID, scale=5.0)  # 6000×4500, walls 60 px
    cfg = DetectorConfig(working_resolution=1500)
    det = roomkit.detect_rooms(img, cfg)
    assert (det.width, det.height) == (6000, 4500)
    assert len(det.rooms) == 4
    assert min(_ious(det, faces)) > 0.97
    xs = [x for r in det.rooms for x, _ in r.polygon]
    assert max(xs) > 4000  # original pixel grid, not the working one
    assert det.rooms[0].area_px == pytest.approx(faces[0].area, rel=0.03)


@pytest.mark.parametrize(
    "kind", ["gray", "bgr", "bgra", "uint16", "png-bytes", "path"],
)
def test_every_input_kind_gives_the_same_rooms(kind, tmp_path):
    img, faces = _plan(GRID)
    if kind == "gray":
        arg = img
    elif kind == "bgr":
        arg = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    elif kind == "bgra":
        # Transparent paper, opaque ink: composited on white it is the same plan.
        arg = np.zeros(img.shape + (4,), np.uint8)
        arg[..., 3] = np.where(img == 0, 255, 0)
    elif kind == "uint16":
        arg = img.astype(np.uint16) * 257
    else:
        ok, buf = cv2.imencode(".png", img)
        assert ok
        if kind == "png-bytes":
            arg = buf.tobytes()
        else:
            arg = tmp_path / "plan.png"
            arg.write_bytes(buf.tobytes())
    det = roomkit.detect_rooms(arg)
    assert len(det.rooms) == 4
    assert min(_ious(det, faces)) > 0.97


def test_undecodable_bytes_and_bad_arrays_raise_input_errors():
    with pytest.raises(InputError):
        roomkit.detect_rooms(b"not an image at all")
    with pytest.raises(InputError):
        roomkit.detect_rooms(np.zeros((0, 10), np.uint8))
    with pytest.raises(InputError):
        roomkit.detect_rooms(np.zeros((10, 10, 2), np.uint8))
    with pytest.raises(InputError):
        roomkit.detect_rooms(12345)  # type: ignore[arg-type]


def test_blank_page_is_success_with_zero_rooms():
    for page in (np.full((800, 600), 255, np.uint8), np.full((800, 600, 3), (200, 228, 242), np.uint8)):
        det = roomkit.detect_rooms(page)
        assert det.status == "success"
        assert det.rooms == ()
        assert det.to_response()["detected_rooms"] == []


def test_ids_are_ordered_top_to_bottom_left_to_right_and_deterministic():
    img, _ = _plan(GRID, doors=[(494, 250, 506, 320)])
    a = roomkit.detect_rooms(img)
    b = roomkit.detect_rooms(img.copy())
    assert [r.id for r in a.rooms] == ["room_001", "room_002", "room_003", "room_004"]
    tops = [(min(y for _, y in r.polygon), min(x for x, _ in r.polygon)) for r in a.rooms]
    assert tops[0][1] < tops[1][1] and tops[2][1] < tops[3][1]  # left before right
    assert max(tops[0][0], tops[1][0]) < min(tops[2][0], tops[3][0])  # top row first
    ra, rb = a.to_response(), b.to_response()
    ra.pop("processing_time_ms"), rb.pop("processing_time_ms")
    assert ra == rb


def test_normalized_response_round_trips_within_one_pixel_per_thousand():
    img, _ = _plan(GRID, size=(777, 1333))
    det = roomkit.detect_rooms(img)
    assert det.rooms
    resp = det.to_response()
    assert resp["processing_time_ms"] > 0
    back = Detection.from_response(resp)
    for orig, again in zip(det.rooms, back.rooms):
        for (x, y), (bx, by) in zip(orig.polygon, again.polygon):
            assert abs(x - bx) <= det.width / 1000.0
            assert abs(y - by) <= det.height / 1000.0
    for room in resp["detected_rooms"]:
        x0, y0, x1, y1 = room["bounding_box"]
        assert 0 <= x0 < x1 <= 1000 and 0 <= y0 < y1 <= 1000
        assert all(0 <= v <= 1000 for p in room["polygon"] for v in p)


def test_confidence_is_lower_for_rooms_closed_by_bridging():
    # Left room fully walled; right room has two openings in its outer walls (bridged).
    cells = [(100, 100, 500, 700), (500, 100, 1000, 700)]
    doors = [(700, 94, 780, 106), (994, 300, 1006, 380), (700, 694, 780, 706)]
    img, faces = _plan(cells, size=(800, 1100), doors=doors)
    det = roomkit.detect_rooms(img)
    assert len(det.rooms) == 2
    left = min(det.rooms, key=lambda r: min(x for x, _ in r.polygon))
    right = max(det.rooms, key=lambda r: min(x for x, _ in r.polygon))
    assert min(_ious(det, faces)) > 0.9
    assert left.confidence > 0.9
    assert right.confidence < left.confidence - 0.05
    # The threshold filter in the config drops the bridged room only.
    cut = (left.confidence + right.confidence) / 2
    kept = roomkit.detect_rooms(img, DetectorConfig(min_confidence=round(cut, 3)))
    assert len(kept.rooms) == 1


def test_area_bounds_filter_rooms():
    img, _ = _plan([(100, 100, 300, 250), (300, 100, 1000, 800)])
    det = roomkit.detect_rooms(img)
    assert len(det.rooms) == 2
    small_out = roomkit.detect_rooms(img, DetectorConfig(min_room_area=0.05))
    assert len(small_out.rooms) == 1


def test_explicit_wall_thickness_and_door_gap_are_in_original_pixels():
    img, faces = _plan(GRID, scale=2.0, doors=[(494, 250, 506, 320)])
    cfg = DetectorConfig(working_resolution=1200, wall_thickness=24.0, door_gap=160.0)
    det = roomkit.detect_rooms(img, cfg)
    assert len(det.rooms) == 4
    assert min(_ious(det, faces)) > 0.95


def test_config_validation_names_the_key():
    with pytest.raises(ConfigError, match="door_gapp"):
        DetectorConfig.from_dict({"door_gapp": 10})
    with pytest.raises(ConfigError, match="simplify_tolerance"):
        DetectorConfig.from_dict({"simplify_tolerance": -2})
    with pytest.raises(ConfigError, match="deskew"):
        DetectorConfig.from_dict({"deskew": "yes"})
    with pytest.raises(ConfigError, match="wall_thickness"):
        DetectorConfig().with_overrides({"wall_thickness": "thick"})
    cfg = DetectorConfig().with_overrides({"deskew": False, "door_gap": 30})
    assert cfg.deskew is False and cfg.door_gap == 30
    assert DetectorConfig.from_dict(cfg.to_dict()) == cfg


def test_detector_does_not_import_aws_code():
    import subprocess
    import sys

    code = (
        "import sys, numpy as np, roomkit\n"
        "roomkit.detect_rooms(np.full((64, 64), 255, np.uint8))\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
