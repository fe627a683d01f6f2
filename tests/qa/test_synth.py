"""The plan generator: determinism, exact ground truth, every style, the CLI, the sample set."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from shapely.geometry import Polygon, box

from roomkit.errors import InputError
from roomkit.qa.evaluate import load_truth, load_truth_dir
from roomkit.qa.synth import SAMPLE_SET, SAMPLE_STYLES_EXCLUDED, STYLES, generate_plan, style_names

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"


def _polygons(plan):
    return [Polygon(r["polygon"]) for r in plan.rooms]


def _check_geometry(plan):
    page = box(0, 0, plan.width, plan.height)
    polys = _polygons(plan)
    for p in polys:
        assert p.is_valid and p.area > 0
        assert page.buffer(1e-6).contains(p)
    for i in range(len(polys)):
        for j in range(i + 1, len(polys)):
            assert polys[i].intersection(polys[j]).area < 1e-6 * polys[i].area


def test_same_seed_same_plan_and_different_seed_differs():
    a, b = generate_plan(5, "scan"), generate_plan(5, "scan")
    assert a.encode() == b.encode() and a.rooms == b.rooms
    c = generate_plan(6, "scan")
    assert c.rooms != a.rooms


@pytest.mark.parametrize("style", style_names())
def test_every_style_renders_valid_ground_truth(style):
    overrides = {} if style in ("large", "small") else {"size": (500, 700)}
    plan = generate_plan(3, style, **overrides)
    assert plan.image.dtype == np.uint8 and plan.image.shape == (plan.height, plan.width, 3)
    assert plan.image.std() > 1.0  # something was drawn, even on a blank page (noise)
    if style == "blank":
        assert plan.rooms == []
    else:
        assert len(plan.rooms) >= 1
        _check_geometry(plan)
    if style == "large":
        assert max(plan.width, plan.height) >= 4000
    if style == "small":
        assert max(plan.width, plan.height) <= 600
    if style == "single-room":
        assert len(plan.rooms) == 1
    truth = plan.truth_dict(f"x{plan.extension}")
    assert truth["style"] == style and truth["width"] == plan.width


def _plain(seed, **extra):
    """A plan with only walls, no openings: the image is paper exactly where rooms are."""
    kw = {"labels": False, "furniture": 0.0, "doors": "none", "windows": False, **extra}
    return generate_plan(seed, "clean", **kw)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_ground_truth_is_the_free_space_bounded_by_wall_faces(seed):
    plan = _plain(seed)
    gray = cv2.cvtColor(plan.image, cv2.COLOR_BGR2GRAY)
    ink = gray < 128
    for room in plan.rooms:
        mask = np.zeros(gray.shape, np.uint8)
        # continuous coordinates -> pixel grid: a face [x0, x1) covers columns x0..x1-1
        pts = np.round(np.asarray(room["polygon"]) * 16).astype(np.int32)
        cv2.fillPoly(mask, [pts], 1, shift=4)
        inner = cv2.erode(mask, np.ones((3, 3), np.uint8))
        ring = cv2.dilate(mask, np.ones((5, 5), np.uint8)) - cv2.dilate(mask, np.ones((3, 3), np.uint8))
        assert not ink[inner > 0].any(), f"ink inside room {room['id']}"
        # the face is bounded by walls: the pixels just outside it are all wall
        assert ink[ring > 0].all(), f"room {room['id']} is not bounded by wall faces"


@pytest.mark.parametrize("seed", [22, 23])
def test_angled_and_curved_walls_bound_their_rooms(seed):
    plan = _plain(seed, corner_cuts=1.0, footprints=("rect",))
    assert any(len(r["polygon"]) > 6 or any(x % 1 for x, _ in r["polygon"]) for r in plan.rooms) or any(
        len(r["polygon"]) == 5 for r in plan.rooms)  # some room lost a corner
    gray = cv2.cvtColor(plan.image, cv2.COLOR_BGR2GRAY)
    ink = gray < 128
    for room in plan.rooms:
        poly = Polygon(room["polygon"])
        inner = np.zeros(gray.shape, np.uint8)
        cv2.fillPoly(inner, [np.round(np.asarray(poly.buffer(-1.5).exterior.coords) * 16).astype(np.int32)], 1,
                     shift=4)
        assert ink[inner > 0].mean() < 1e-3  # rasterized curves may differ by a stray pixel
        ring = np.zeros(gray.shape, np.uint8)
        cv2.polylines(ring, [np.round(np.asarray(poly.buffer(1.5).exterior.coords) * 16).astype(np.int32)], True,
                      1, 1, shift=4)
        assert ink[ring > 0].mean() > 0.98


def test_rotated_ground_truth_follows_the_image():
    plan = _plain(4, rotate=4.0)
    assert plan.meta["facts"]["rotation_deg"] != 0
    gray = cv2.cvtColor(plan.image, cv2.COLOR_BGR2GRAY)
    ink = gray < 160
    for room in plan.rooms:
        poly = Polygon(room["polygon"])
        mask = np.zeros(gray.shape, np.uint8)
        cv2.fillPoly(mask, [np.round(np.asarray(poly.buffer(-2).exterior.coords) * 16).astype(np.int32)], 1, shift=4)
        assert ink[mask > 0].mean() < 0.002
        ring = np.zeros(gray.shape, np.uint8)
        cv2.polylines(ring, [np.round(np.asarray(poly.buffer(2).exterior.coords) * 16).astype(np.int32)], True, 1,
                      1, shift=4)
        assert ink[ring > 0].mean() > 0.97


def test_doors_and_windows_are_cut_from_the_drawn_walls_only():
    sealed = _plain(7)
    for extra in ({"doors": "gap"}, {"doors": "arc", "windows": True}):
        opened = _plain(7, **extra)
        assert opened.rooms == sealed.rooms  # same layout; the ground truth closes the openings
        assert (opened.image > sealed.image).any()  # ... while the drawing has gaps


def test_plans_score_in_memory_against_their_own_truth():
    from roomkit.qa.evaluate import score_plan
    from roomkit.plans.response import Detection, Room
    from roomkit.qa.synth import iter_plans

    plans = list(iter_plans(3, seed=4, styles=["small", "thin"]))
    assert [n for n, _ in plans] == ["plan_0000", "plan_0001", "plan_0002"]
    assert [p.style for _, p in plans] == ["small", "thin", "small"]
    for name, plan in plans:
        truth = plan.truth(name)
        assert truth.name == name and len(truth.rooms) == len(plan.rooms)
        det = Detection(plan.width, plan.height, tuple(Room(r.id, r.polygon, 0.0, 1.0) for r in truth.rooms))
        assert score_plan(det, truth).f1(0.75) == 1.0


def test_unknown_style_and_field_are_clear_errors():
    with pytest.raises(InputError, match="unknown synth style 'nope'"):
        generate_plan(0, "nope")
    with pytest.raises(InputError, match="colour"):
        generate_plan(0, "clean", colour=1)


def test_styles_beyond_the_samples_exist():
    sample_styles = {style for _, style, _, _ in SAMPLE_SET}
    extra = set(STYLES) - sample_styles
    assert extra == set(SAMPLE_STYLES_EXCLUDED) and extra
    a, b = generate_plan(9, "random"), generate_plan(10, "random")
    assert a.meta["style"] != b.meta["style"]  # attributes re-drawn per plan


def test_synth_never_imports_boto3():
    code = "import sys, roomkit.qa.synth; print('boto3' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_cli_writes_deterministic_plans(tmp_path):
    cmd = [sys.executable, "-m", "roomkit", "synth", "--count", "3", "--seed", "7", "--style", "thin,blueprint",
           "--style", "small"]
    for out in ("a", "b"):
        proc = subprocess.run(cmd + [str(tmp_path / out)], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip().splitlines()[-1] == f"wrote 3 plans to {tmp_path / out}"
    truths = load_truth_dir(tmp_path / "a")
    assert [t.style for t in truths.values()] == ["thin", "blueprint", "small"]
    # any plan of a batch can be redrawn alone from its recorded seed
    data = json.loads((tmp_path / "a" / "plan_0001.json").read_text())
    assert data["seed"] == [7, 1] and generate_plan([7, 1], "blueprint").rooms == data["rooms"]
    for name in truths:
        for suffix in (".json", ".png"):
            assert (tmp_path / "a" / f"{name}{suffix}").read_bytes() == (tmp_path / "b" / f"{name}{suffix}").read_bytes()
    bad = subprocess.run([sys.executable, "-m", "roomkit", "synth", str(tmp_path / "c"), "--style", "nope"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "unknown synth style" in bad.stderr


def test_sample_folder_is_complete_and_small():
    jsons = sorted(SAMPLES.glob("*.json"))
    assert len(jsons) >= 16
    total = sum(p.stat().st_size for p in SAMPLES.iterdir() if p.is_file())
    assert total < 10 * 1024 * 1024
    styles, footprints = set(), set()
    non_rect_rooms = 0
    sizes = []
    for path in jsons:
        truth = load_truth(path)
        image = SAMPLES / truth.image
        assert image.is_file() and image.stem == path.stem
        img = cv2.imread(str(image), cv2.IMREAD_UNCHANGED)
        assert img is not None and (img.shape[1], img.shape[0]) == (truth.width, truth.height)
        data = json.loads(path.read_text())
        styles.add(data["style"])
        fp = data.get("footprint")
        footprints.update(fp if isinstance(fp, list) else [fp])
        non_rect_rooms += sum(len(r.polygon) > 4 for r in truth.rooms)
        sizes.append(max(truth.width, truth.height))
    assert set(STYLES) - set(SAMPLE_STYLES_EXCLUDED) <= styles
    assert {"rect", "L", "T", "U"} <= footprints
    assert non_rect_rooms >= 5
    assert any(json.loads(p.read_text()).get("floors", 1) > 1 for p in jsons)
    assert max(sizes) >= 4000 and min(sizes) <= 600
    assert {p.suffix for p in SAMPLES.iterdir()} >= {".png", ".jpg", ".json"}


@pytest.mark.slow
def test_sample_folder_is_regenerated_exactly(tmp_path):
    from roomkit.qa.synth import write_sample_set

    write_sample_set(tmp_path)
    for name, _, _, _ in SAMPLE_SET:
        assert (tmp_path / f"{name}.json").read_text() == (SAMPLES / f"{name}.json").read_text(), name
        ext = ".jpg" if (SAMPLES / f"{name}.jpg").exists() else ".png"
        new = cv2.imread(str(tmp_path / f"{name}{ext}"), cv2.IMREAD_UNCHANGED)
        old = cv2.imread(str(SAMPLES / f"{name}{ext}"), cv2.IMREAD_UNCHANGED)
        assert new.shape == old.shape
        assert np.abs(new.astype(int) - old.astype(int)).max() <= (0 if ext == ".png" else 3), name
