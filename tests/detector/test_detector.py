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
from roomkit.detector.config import DetectorConfig
from roomkit.errors import ConfigError, InputError
from roomkit.plans.response import Detection

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


def test_outside_is_found_below_a_plan_that_spans_the_page_width():
    # The plan nearly touches the left and right page edges, so the outside above and below it
    # are separate; a 150 px opening in the bottom wall must still face the outside.
    img, faces = _plan(GRID, doors=[(200, 794, 350, 806)])
    img = img[:, 60:1040]
    faces = [Polygon([(x - 60, y) for x, y in f.exterior.coords]) for f in faces]
    det = roomkit.detect_rooms(img)
    assert len(det.rooms) == 4
    assert min(_ious(det, faces)) > 0.9


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
    # White, tinted, all ink (a black frame, an over-exposed negative), and a single pixel:
    # no room, no crash.
    pages = (
        np.full((800, 600), 255, np.uint8),
        np.full((800, 600, 3), (200, 228, 242), np.uint8),
        np.zeros((50, 60), np.uint8),
        np.zeros((300, 300, 3), np.uint16),
        np.zeros((1, 1), np.uint8),
        np.full((1, 1, 3), 255, np.uint8),
        np.zeros((2, 2), np.uint8),
    )
    for page in pages:
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


# -- fast paths must give exactly what the OpenCV calls they replace give --------------------


def test_long_line_morphology_matches_opencv():
    """Line closings/openings at or above LONG_LINE (computed by doubling) equal OpenCV's."""
    from roomkit.detector.gaps import LONG_LINE, _line_kernel, _line_morph

    rng = np.random.default_rng(0)
    for trial in range(40):
        h, w = (int(v) for v in rng.integers(20, 700, 2))
        mask = np.zeros((h, w), np.uint8)
        for _ in range(int(rng.integers(0, 40))):  # wall runs of all lengths, some collinear
            x, y, run = (int(v) for v in rng.integers(0, 700, 3))
            if rng.random() < 0.5:
                mask[y % h, x % w : x % w + run] = 1
            else:
                mask[y % h : y % h + run, x % w] = 1
        length = int(rng.integers(LONG_LINE, 2 * LONG_LINE + 3))
        direction = "hv"[trial % 2]
        op = (cv2.MORPH_CLOSE, cv2.MORPH_OPEN)[(trial // 2) % 2]
        expected = cv2.morphologyEx(mask, op, _line_kernel(length, direction))
        assert np.array_equal(_line_morph(mask, op, length, direction), expected), (h, w, length, direction, op)


def _same_components(got, expected) -> None:
    n, labels, stats, centroids = got
    n2, labels2, stats2, centroids2 = expected
    assert n == n2
    # Same partition of the pixels (label numbers may differ), same per-component stats.
    pairs = np.unique(np.stack([labels.ravel(), labels2.ravel()]), axis=1)
    assert pairs.shape[1] == len(np.unique(labels2))
    mapping = dict(zip(pairs[0].tolist(), pairs[1].tolist()))
    for i in range(1, n):
        if i in mapping:
            assert np.array_equal(stats[i], stats2[mapping[i]])
            assert np.allclose(centroids[i], centroids2[mapping[i]])


def test_fast_connected_components_match_opencv():
    """components8/components4 label like cv2.connectedComponentsWithStats, including masks
    whose pixels touch only at corners (4- and 8-connectivity differ there)."""
    from roomkit.detector.walls import components4, components8

    rng = np.random.default_rng(1)
    for trial in range(60):
        h, w = (int(v) for v in rng.integers(2, 120, 2))
        mask = (rng.random((h, w)) < rng.uniform(0.05, 0.7)).astype(np.uint8)
        if trial % 3 == 0:  # sparse blobs, a few of them touching diagonally
            mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))
        _same_components(components8(mask), cv2.connectedComponentsWithStats(mask, connectivity=8))
        _same_components(components4(mask), cv2.connectedComponentsWithStats(mask, connectivity=4))
    # Two squares meeting at one corner: one 8-component, two 4-components.
    mask = np.zeros((40, 40), np.uint8)
    mask[5:15, 5:15] = 1
    mask[15:25, 15:25] = 1
    assert components4(mask)[0] == 3 and components8(mask)[0] == 2
    # More components than 16-bit labels hold: the 32-bit fallback.
    dots = np.zeros((600, 600), np.uint8)
    dots[::2, ::2] = 1
    n, labels, _stats, _ = components8(dots)
    assert n == 90_001 and labels.dtype == np.int32 and labels.max() == 90_000


def test_bold_text_on_a_thin_walled_plan_does_not_split_its_room():
    # Walls 3 px, room names in letters 9 px bold and as tall as half a door: each letter is
    # as long as a short wall spur, and a line of them spanning a room nearly wall to wall
    # was bridged into a wall across it. Letters standing in a row are text, not walls.
    img, faces = _plan(GRID, wall=3, doors=[(497, 250, 503, 290), (250, 447, 290, 453), (700, 447, 740, 453)])
    cv2.putText(img, "KITCHEN 7x2", (135, 300), cv2.FONT_HERSHEY_SIMPLEX, 1.4, 0, 9)
    cv2.putText(img, "BEDROOM 12x9", (125, 650), cv2.FONT_HERSHEY_SIMPLEX, 1.4, 0, 9)
    det = roomkit.detect_rooms(img)
    assert len(det.rooms) == 4
    assert min(_ious(det, faces)) > 0.95


def test_closet_closed_by_a_short_thin_partition_is_its_own_room():
    # Walls 10 px; a closet in a corner, closed by a 2 px line from the outer wall to a wall
    # stub: shorter than a long thin wall and the closet too small for the ink split. Short
    # thin lines standing free or against one wall only (furniture) stay out of the walls.
    img, faces = _plan([(100, 100, 450, 500), (450, 100, 800, 500)], size=(600, 900), wall=10, doors=[(445, 350, 455, 385)])
    img[100:188, 165:175] = 0  # a wall stub down from the top wall
    img[186:188, 105:165] = 0  # the closet's front, drawn thin
    img[300:302, 500:570] = 0  # a short line standing free
    img[105:165, 700:702] = 0  # a short line against one wall
    faces = [box(105, 105, 165, 186), box(105, 105, 445, 495).difference(box(100, 100, 175, 188)), faces[1]]
    det = roomkit.detect_rooms(img)
    assert len(det.rooms) == 3
    assert min(_ious(det, faces)) > 0.95


def test_thin_partitions_survive_beside_thick_outer_walls():
    # Outer walls 36 px, partitions 7 px: the plan is worked on shrunk to the outer walls'
    # thickness, where the partitions come out as faint lines thinner than the wall opening.
    img = np.full((1800, 2400), 255, np.uint8)
    img[200:236, 200:2200] = 0
    img[1564:1600, 200:2200] = 0
    img[200:1600, 200:236] = 0
    img[200:1600, 2164:2200] = 0
    img[236:1564, 1196:1203] = 0  # vertical partition
    img[896:903, 236:1196] = 0  # horizontal partition in the left half
    faces = [box(236, 236, 1196, 896), box(236, 903, 1196, 1564), box(1203, 236, 2164, 1564)]
    det = roomkit.detect_rooms(img)
    assert len(det.rooms) == 3
    assert min(_ious(det, faces)) > 0.95


def test_outside_is_found_when_walls_run_to_the_page_edge():
    # A studio with a wide unglazed opening, and garden walls that run from the building to
    # the page edge on every side: the outside must still be reached from all around.
    img = np.full((520, 640), 255, np.uint8)
    img[60:72, 60:580] = 0
    img[448:460, 60:580] = 0
    img[60:460, 60:72] = 0
    img[60:460, 568:580] = 0
    img[448:460, 240:390] = 255  # a wide opening in the bottom wall
    img[0:60, 300:312] = 0  # garden walls to the page edge
    img[460:520, 140:152] = 0
    img[250:262, 0:60] = 0
    img[250:262, 580:640] = 0
    det = roomkit.detect_rooms(img)
    assert len(det.rooms) == 1
    assert min(_ious(det, [box(72, 72, 568, 448)])) > 0.9


def test_outlined_walls_of_several_thicknesses_are_filled():
    # Hollow walls drawn as two thin outlines, outer walls 51 px and partitions 19 px thick, on a
    # wide sheet: neither strip width alone is long enough to show the plan has hollow walls.
    solid = np.zeros((1000, 1900), np.uint8)
    solid[100:151, 100:1100] = 1
    solid[750:801, 100:1100] = 1
    solid[100:801, 100:151] = 1
    solid[100:801, 1049:1100] = 1
    solid[151:750, 590:609] = 1
    solid[415:434, 151:590] = 1
    solid[415:434, 609:1049] = 1
    inner = cv2.erode(solid, np.ones((3, 3), np.uint8))
    img = np.where((solid > 0) & (inner == 0), 0, 255).astype(np.uint8)
    for x, y in ((190, 300), (680, 300), (190, 620), (680, 620)):
        cv2.putText(img, "BEDROOM", (x, y), cv2.FONT_HERSHEY_DUPLEX, 1.7, 0, 7)
    faces = [box(151, 151, 590, 415), box(609, 151, 1049, 415), box(151, 434, 590, 750), box(609, 434, 1049, 750)]
    det = roomkit.detect_rooms(img)
    assert len(det.rooms) == 4
    assert min(_ious(det, faces)) > 0.95


def test_courtyard_notch_narrower_than_the_outside_disk_is_not_a_room():
    # A U-shaped building: the notch between its arms is open at the bottom, bounded by walls on
    # three sides, and too narrow for the rolling disk that finds the outside.
    cells = [(100, 100, 1000, 450), (100, 450, 450, 800), (650, 450, 1000, 800)]
    img, faces = _plan(cells)
    det = roomkit.detect_rooms(img)
    assert len(det.rooms) == 3
    assert min(_ious(det, faces)) > 0.95


def test_wide_opening_does_not_let_the_outside_in_when_partitions_set_the_thickness():
    # Many 4 px partitions make the measured wall thickness small; a 120 px unglazed opening in
    # the 8 px outer wall must not let the outside flood the room behind it.
    img = np.full((900, 1100), 255, np.uint8)
    xs, ys = [100, 280, 460, 640, 820, 1000], [100, 275, 450, 625, 800]
    img[96:104, 96:1004] = 0
    img[796:804, 96:1004] = 0
    img[96:804, 96:104] = 0
    img[96:804, 996:1004] = 0
    for x in xs[1:-1]:
        img[104:796, x - 2 : x + 2] = 0
    for y in ys[1:-1]:
        img[y - 2 : y + 2, 104:996] = 0
    img[96:104, 130:250] = 255  # the opening, in the top-left room's outer wall
    faces = []
    for i in range(5):
        for j in range(4):
            x0 = xs[i] + (4 if i == 0 else 2)
            x1 = xs[i + 1] - (4 if i == 4 else 2)
            y0 = ys[j] + (4 if j == 0 else 2)
            y1 = ys[j + 1] - (4 if j == 3 else 2)
            faces.append(box(x0, y0, x1, y1))
    det = roomkit.detect_rooms(img)
    assert len(det.rooms) == 20
    assert min(_ious(det, faces)) > 0.9


def test_wide_doorway_closed_by_its_door_symbol_separates_the_rooms():
    # A 150 px doorway (wider than any door gap or neck the plan's size suggests) with its leaf
    # and swing arc drawn in thin pen lines: the symbol closes the doorway.
    cells = [(100, 100, 500, 600), (500, 100, 1000, 600)]
    img, faces = _plan(cells, doors=[(494, 250, 506, 400)])
    cv2.line(img, (506, 250), (656, 250), 0, 2)  # the leaf, hinged on the upper jamb
    cv2.ellipse(img, (506, 250), (150, 150), 0, 0, 90, 0, 1)  # its swing back to the lower jamb
    det = roomkit.detect_rooms(img)
    assert len(det.rooms) == 2
    assert min(_ious(det, faces)) > 0.85


def test_door_leaf_drawn_as_thick_as_a_wall_is_not_a_wall():
    # An 80 px doorway from a hall into a shallow room, its leaf drawn 8 px thick (walls 12 px)
    # standing open into the room, 38 px short of the far wall: taken for a wall spur, the leaf
    # is bridged to that wall and cuts the room in two, and the doorway stays open. The swing
    # arc marks it as a leaf: it is dropped and its doorway closed.
    cells = [(100, 100, 1000, 450), (100, 450, 1000, 580)]
    img, faces = _plan(cells, doors=[(200, 444, 280, 456)])
    img[456:536, 280:288] = 0  # the leaf, hinged on the right jamb
    cv2.ellipse(img, (280, 456), (80, 80), 0, 90, 180, 0, 1)  # its swing to the left jamb
    det = roomkit.detect_rooms(img)
    assert len(det.rooms) == 2
    assert min(_ious(det, faces)) > 0.95


def test_doorway_wider_than_the_door_gap_is_closed_by_its_pen_drawn_leaf():
    # A 150 px doorway (door gap ~85 px, neck limit ~135 px) from a hall into a closet too
    # small to count as a piece for the ink split; the leaf is a 2 px pen line standing just
    # clear of its jamb, with its swing. The doorway is closed along the wall line, leaf
    # columns included.
    cells = [(100, 100, 1500, 700), (100, 700, 320, 870), (320, 700, 1500, 1100)]
    img, faces = _plan(cells, size=(1200, 1600), doors=[(112, 694, 262, 706)])
    cv2.line(img, (262, 706), (262, 856), 0, 2)
    cv2.ellipse(img, (262, 706), (150, 150), 0, 90, 180, 0, 1)
    det = roomkit.detect_rooms(img)
    assert len(det.rooms) == 3
    assert min(_ious(det, faces)) > 0.95
    # The door symbol is drawn evidence: the closet's boundary does not count as guessed there.
    closet = max(det.rooms, key=lambda r: faces[1].intersection(Polygon(r.polygon)).area)
    assert closet.confidence > 0.8


def test_pier_at_a_corner_between_two_windows_holds_the_windows():
    # The right room's top and right walls end in windows (two thin glazing lines each) that
    # meet at a 12 px corner pier standing free of the other walls: too small for a wall by
    # size alone, it lies on both wall lines, and the windows close on it.
    cells = [(100, 100, 500, 600), (500, 100, 1000, 600)]
    img, faces = _plan(cells, doors=[(800, 94, 994, 106), (994, 106, 1006, 300)])
    img[97, 800:994] = 0
    img[103, 800:994] = 0
    img[106:300, 997] = 0
    img[106:300, 1003] = 0
    det = roomkit.detect_rooms(img)
    assert len(det.rooms) == 2
    assert min(_ious(det, faces)) > 0.97


def test_space_between_two_buildings_drawn_side_by_side_is_not_a_room():
    # Two floors drawn 88 px apart, narrower than the disk that finds the outside; the right
    # one has a recess facing the left one, so the space between them does not see the page
    # border along one whole side. It sees it both ways up and down: it is no room.
    img = np.full((900, 1200), 255, np.uint8)
    cv2.rectangle(img, (100, 100), (500, 800), 0, 12)
    right = [(600, 100), (1000, 100), (1000, 800), (600, 800), (600, 575), (680, 575), (680, 325), (600, 325)]
    cv2.polylines(img, [np.array(right, np.int32)], True, 0, 12)
    faces = [
        box(106, 106, 494, 794),
        Polygon([(606, 106), (994, 106), (994, 794), (606, 794), (606, 569), (686, 569), (686, 331), (606, 331)]),
    ]
    det = roomkit.detect_rooms(img)
    assert len(det.rooms) == 2
    assert min(_ious(det, faces)) > 0.97


def test_faint_door_symbol_on_a_shrunk_plan_still_separates_the_rooms():
    # The same doorway on a plan drawn three times larger with 36 px walls: the detector works
    # on it shrunk about fourfold, where the 2 px swing arc comes out as a light gray trace.
    cells = [(100, 100, 500, 600), (500, 100, 1000, 600)]
    img, faces = _plan(cells, doors=[(494, 250, 506, 400)], scale=3.0)
    cv2.line(img, (1518, 750), (1968, 750), 0, 3)
    cv2.ellipse(img, (1518, 750), (450, 450), 0, 0, 90, 0, 2)
    det = roomkit.detect_rooms(img)
    assert len(det.rooms) == 2
    assert min(_ious(det, faces)) > 0.85


def test_room_cropped_tight_reaching_the_page_edge_through_a_window_is_kept():
    # The page is cropped right at the outer wall's outer face; a window in the left wall lets
    # the top-left room touch the page edge. It is still a room, not the outside.
    img, faces = _plan(GRID, doors=[(94, 200, 106, 330)])
    img = img[94:806, 94:1006]
    faces = [Polygon([(x - 94, y - 94) for x, y in f.exterior.coords]) for f in faces]
    det = roomkit.detect_rooms(img)
    assert len(det.rooms) == 4
    assert min(_ious(det, faces)) > 0.9


def test_strip_between_the_building_and_its_title_is_not_a_room():
    # Two floors side by side, each with a bold title just below its outer wall: the strip
    # between wall and title is too narrow for the outside disk and closed on all sides, but it
    # lies beyond the building's walls and is narrower than a door.
    from roomkit.qa import evaluate, synth

    plan = synth.generate_plan(0, style="two-floors")
    truth = plan.truth("two-floors-0")
    det = roomkit.detect_rooms(plan.image)
    bottom = max(y for room in truth.rooms for _x, y in room.polygon)
    below = [r for r in det.rooms if Polygon(r.polygon).centroid.y > bottom]
    assert below == []
    assert evaluate.score_plan(det, truth).tp() >= 9


def test_long_pen_line_standing_free_in_a_room_is_not_a_thin_wall():
    # Thin-partition plan: the thin-wall search also finds long straight furniture lines
    # (a bed's headboard, a worktop edge); one joined to no wall must not cut off a false room.
    from roomkit.qa import evaluate, synth

    plan = synth.generate_plan(8, style="thin")
    truth = plan.truth("thin-8")
    det = roomkit.detect_rooms(plan.image)
    score = evaluate.score_plan(det, truth)
    assert len(truth.rooms) == 8
    assert score.tp() == 8
    assert len(det.rooms) == 8


def _closet_plan(front: bool) -> tuple[np.ndarray, list[Polygon]]:
    # Two rooms; in the left one's top-left corner a closet recess, closed off by a wall stub
    # (x 244-256, from the top wall down to y 166) and open towards the room below it.
    cells = [(100, 100, 500, 600), (500, 100, 1000, 600)]
    img, faces = _plan(cells, doors=[(494, 250, 506, 320)])
    img[100:166, 244:256] = 0
    if front:  # bi-fold panels drawn folded out along the recess's front, as plans draw them
        zigzag = np.array([(106, 166), (140, 176), (175, 166), (210, 176), (244, 166)], np.int32)
        cv2.polylines(img, [zigzag], False, 0, 1)
    return img, [box(106, 106, 244, 166)] + faces


def test_closet_recess_with_a_drawn_front_is_its_own_room():
    img, (closet, left, right) = _closet_plan(front=True)
    det = roomkit.detect_rooms(img)
    assert len(det.rooms) == 3
    assert _ious(det, [closet])[0] > 0.8
    best = max(det.rooms, key=lambda r: Polygon(r.polygon).intersection(closet).area)
    assert best.confidence >= 0.5
    assert _ious(det, [right])[0] > 0.95


def test_recess_without_a_drawn_front_stays_part_of_its_room():
    # Without a drawn front the recess is an alcove of the room (a bed niche, a bay).
    img, (closet, left, right) = _closet_plan(front=False)
    det = roomkit.detect_rooms(img)
    assert len(det.rooms) == 2
    assert _ious(det, [left.difference(box(244, 100, 256, 166))])[0] > 0.95


def test_closet_behind_a_bridged_door_is_a_confident_room():
    # A small closet (60 x 66 px in a 900 x 800 building) built into a room's corner, its front a
    # partition with a 48 px doorway (bridged like any door) and bi-fold doors drawn in it. Its
    # size alone would leave it doubtful (a jamb pocket looks the same); its shape, a recess in
    # the walls closed by a door, makes it a closet.
    cells = [(100, 100, 500, 900), (500, 100, 1000, 900)]
    img, _faces = _plan(cells, size=(1000, 1200), doors=[(494, 250, 506, 320)])
    img[100:178, 166:174] = 0  # the closet's side partition
    img[172:178, 100:174] = 0  # its front partition…
    img[172:178, 112:160] = 255  # …with a doorway
    zigzag = np.array([(112, 175), (124, 183), (136, 175), (148, 183), (160, 175)], np.int32)
    cv2.polylines(img, [zigzag], False, 0, 1)
    closet = box(106, 106, 166, 172)
    det = roomkit.detect_rooms(img)
    assert len(det.rooms) == 3
    assert _ious(det, [closet])[0] > 0.9


def test_closet_on_a_large_thin_walled_plan_is_found_at_half_resolution():
    # The closet plan drawn twice as large with 4 px walls: the detector works on it at full
    # size, where the recess search runs on a half-resolution copy; the front it brings back
    # must still seal the closet off, however the plan sits on the pixel grid.
    cells = [(100, 100, 500, 600), (500, 100, 1000, 600)]
    base, faces = _plan(cells, wall=4, doors=[(498, 250, 502, 320)], scale=2.0)
    base[200:332, 496:504] = 0  # the closet's side wall, 4 px at plan scale
    zigzag = np.array([(208, 332), (280, 340), (350, 332), (420, 340), (496, 332)], np.int32)
    cv2.polylines(base, [zigzag], False, 0, 2)
    for dy in range(3):
        for dx in range(3):
            img = np.pad(base, ((dy, 0), (dx, 0)), constant_values=255)
            det = roomkit.detect_rooms(img)
            assert len(det.rooms) == 3, (dx, dy)
            assert _ious(det, [box(204 + dx, 204 + dy, 496 + dx, 332 + dy)])[0] > 0.85, (dx, dy)


def _bay_plan(door: bool) -> np.ndarray:
    """One 592×392 px room with a 68×58 px bay in its top-left corner, behind stub walls that
    leave a 41 px opening (bridged as a doorway), with or without a door drawn in it."""
    img = np.full((600, 800), 255, np.uint8)
    cv2.rectangle(img, (100, 100), (699, 499), 0, 8)
    cv2.rectangle(img, (176, 96), (183, 173), 0, -1)  # the bay's side wall
    cv2.rectangle(img, (96, 166), (123, 173), 0, -1)  # stub from the outer wall
    cv2.rectangle(img, (165, 166), (183, 173), 0, -1)  # stub from the side wall
    if door:  # a leaf and its swing, thin pen lines
        cv2.line(img, (124, 170), (124, 212), 0, 2)
        cv2.ellipse(img, (124, 170), (41, 41), 0, 0, 90, 0, 2)
    return img


def test_bay_cut_off_by_a_doorless_closing_is_part_of_its_room():
    cfg = DetectorConfig(min_confidence=0.0, door_gap=50)
    open_bay = roomkit.detect_rooms(_bay_plan(door=False), cfg)
    # The closing across the bay's opening is a large share of the bay's outline and no door is
    # drawn: the bay is a lobe of the room, one room with the bay in it.
    assert len(open_bay.rooms) == 1
    assert Polygon(open_bay.rooms[0].polygon).contains(Polygon([(110, 110), (170, 110), (170, 160), (110, 160)]))
    # The same opening with a door drawn swinging through it is a doorway: two rooms.
    with_door = roomkit.detect_rooms(_bay_plan(door=True), cfg)
    areas = sorted(r.area_px for r in with_door.rooms)
    assert len(areas) == 2 and 3000 < areas[0] < 6000


def test_small_rectangular_room_with_bridged_openings_is_kept():
    # A 48×48 px store in the building's corner, its two outer walls broken by 30 px openings
    # (bridged, no door drawn): small and a third guessed, it would be doubtful; but it is a
    # clean rectangle a door wide and more, as rooms are and the pieces a stray closing cuts off
    # are not.
    cells = [(100, 100, 700, 600), (100, 600, 160, 660), (160, 600, 700, 660)]
    img, faces = _plan(cells, size=(800, 800), doors=[(94, 614, 106, 644), (114, 654, 144, 666)])
    det = roomkit.detect_rooms(img)
    assert len(det.rooms) == 3
    assert min(_ious(det, faces)) > 0.9
    store = min(det.rooms, key=lambda r: Polygon(r.polygon).area)
    assert 0.5 <= store.confidence < min(r.confidence for r in det.rooms if r is not store)


def _cupboard_plan(size: tuple[int, int]) -> tuple[np.ndarray, Polygon, Polygon]:
    """Two rooms; off the left one's top wall a cupboard 52 px wide and 17 deep (under 1.6 wall
    thicknesses, as deep as a doorway's bridge may be) between two stubs, bi-fold panels drawn
    along its front. Returns the image, the cupboard and the right room."""
    cells = [(100, 100, 500, 600), (500, 100, 1000, 600)]
    img, (_left, right) = _plan(cells, size=size, doors=[(494, 250, 506, 320)])
    img[106:123, 138:150] = 0
    img[106:123, 202:214] = 0
    zigzag = np.array([(150, 123), (163, 131), (176, 123), (189, 131), (202, 123)], np.int32)
    cv2.polylines(img, [zigzag], False, 0, 1)
    return img, box(150, 106, 202, 123), right


def test_shallow_closet_is_not_swallowed_by_a_doorway_bridge():
    # Closing the cupboard's opening like a doorway would fill it whole; backed by wall, it is
    # a recess.
    img, cupboard, right = _cupboard_plan((700, 1100))
    det = roomkit.detect_rooms(img)
    assert len(det.rooms) == 3
    assert _ious(det, [cupboard])[0] > 0.8
    assert _ious(det, [right])[0] > 0.95


def test_cupboard_smaller_than_a_thousandth_of_the_page_is_kept_by_default():
    # Listing plans are small images: a cupboard there can be 0.05–0.1 % of the page. The same
    # cupboard on a 900×1100 px page is 0.09 %; the default area floor keeps it.
    img, cupboard, _right = _cupboard_plan((900, 1100))
    assert cupboard.area < 0.001 * img.size
    assert _ious(roomkit.detect_rooms(img), [cupboard])[0] > 0.8
    # A floor above its area drops it.
    floor = DetectorConfig(min_room_area=1.2 * cupboard.area / img.size)
    assert _ious(roomkit.detect_rooms(img, floor), [cupboard])[0] == 0.0


def test_faint_closet_front_counts_as_pen_but_grid_ruling_does_not():
    # The closet plan with its bi-fold front drawn light gray, as thin lines come out of small
    # JPEG listings: the front still closes the closet.
    img, (closet, _left, right) = _closet_plan(front=False)
    zigzag = np.array([(106, 166), (140, 176), (175, 166), (210, 176), (244, 166)], np.int32)
    cv2.polylines(img, [zigzag], False, 222, 1)
    det = roomkit.detect_rooms(img)
    assert len(det.rooms) == 3
    assert _ious(det, [closet])[0] > 0.8
    assert _ious(det, [right])[0] > 0.95
    # Grid paper ruled in the same gray every 150 px: straight across the sheet, it is ruling,
    # not pen, and divides no room.
    img, faces = _plan(GRID)
    paper = img == 255
    ruled = np.zeros_like(paper)
    ruled[::150, :] = True
    ruled[:, ::150] = True
    img[paper & ruled] = 222
    det = roomkit.detect_rooms(img)
    assert len(det.rooms) == 4
    assert min(_ious(det, faces)) > 0.95
