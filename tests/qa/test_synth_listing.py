"""The listing-plan features of the generator (the ``r3d`` style): small JPEG pages, thin walls,
bathtubs and worktops, stairs, closet doors, balconies behind a thin railing, with exact truth."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from shapely.geometry import Polygon, box
from shapely.ops import unary_union

from roomkit.qa.synth import CYCLE_EXCLUDED, STYLES, generate_plan, iter_plans

# Everything but the feature under test switched off, and no noise: a feature's pixels are the
# only difference between two plans of one seed.
CRISP = {"labels": False, "furniture": 0.0, "doors": "none", "windows": False, "room_fill": False,
         "floor_tiles": False, "compass": False, "header": False, "noise": 0.0, "blur": 0.0, "jpeg": None,
         "fixtures": False, "stairs": 0.0, "balcony": 0.0, "closet_doors": 0.0}


def _mask(shape, polygons, shrink=0.0):
    mask = np.zeros(shape[:2], np.uint8)
    for poly in polygons:
        p = poly.buffer(-shrink, join_style="mitre") if shrink else poly
        if p.is_empty:
            continue
        for g in getattr(p, "geoms", [p]):
            cv2.fillPoly(mask, [np.round(np.asarray(g.exterior.coords) * 16).astype(np.int32)], 1, shift=4)
    return mask > 0


def _gray(plan):
    return cv2.cvtColor(plan.image, cv2.COLOR_BGR2GRAY)


def test_r3d_plans_are_small_deterministic_jpegs_with_thin_walls():
    for seed in range(6):
        a, b = generate_plan(seed, "r3d"), generate_plan(seed, "r3d")
        assert a.encode() == b.encode() and a.rooms == b.rooms
        assert 300 <= max(a.width, a.height) <= 700
        assert a.extension == ".jpg" and 40 <= a.meta["jpeg"] <= 85
        assert a.meta["style"]["blur"] > 0
        t_int, t_ext = a.meta["facts"]["wall_px"]
        assert 3 <= t_int <= 6 and t_ext <= 9
        assert a.truth_dict("x.jpg")["style"] == "r3d"
    # attributes are drawn per plan
    assert len({str(generate_plan(s, "r3d").meta["style"]) for s in range(4)}) == 4


def test_r3d_comes_from_iter_plans_when_asked_and_stays_out_of_the_default_cycle():
    plans = list(iter_plans(3, seed=2, styles=["r3d", "small"]))
    assert [p.style for _, p in plans] == ["r3d", "small", "r3d"]
    assert plans[0][1].rooms == generate_plan([2, 0], "r3d").rooms
    default = [n for n in STYLES if n not in CYCLE_EXCLUDED]
    assert "r3d" in CYCLE_EXCLUDED and "r3d" not in default and len(default) == 20  # the cycle of before


@pytest.mark.parametrize("seed", [1, 4])
def test_balcony_is_a_room_outside_the_footprint_behind_a_thin_railing(seed):
    plan = generate_plan(seed, "r3d", **{**CRISP, "balcony": 1.0})
    balconies = [r for r in plan.rooms if r["label"] == "balcony"]
    assert len(balconies) == 1 and balconies[0]["type"] == "balcony"
    bal = Polygon(balconies[0]["polygon"])
    others = unary_union([Polygon(r["polygon"]) for r in plan.rooms if r["label"] != "balcony"])
    t_ext = plan.meta["facts"]["wall_px"][1]
    # beyond the exterior wall: as far from the rooms as that wall is thick, outside their bounds
    assert bal.distance(others) == pytest.approx(t_ext, abs=0.01)
    assert not bal.intersects(box(*others.bounds))
    assert page_contains(plan, bal)
    side = plan.meta["facts"]["balcony"]
    gray = _gray(plan)
    ink = gray < 128
    x0, y0, x1, y1 = (int(v) for v in bal.bounds)
    # the open sides: the railing just outside the polygon is ink, 1-2 px thick, paper beyond it
    rails = {"bottom": [("h", y1, x0, x1, 1), ("v", x0 - 1, y0, y1, -1), ("v", x1, y0, y1, 1)],
             "top": [("h", y0 - 1, x0, x1, -1), ("v", x0 - 1, y0, y1, -1), ("v", x1, y0, y1, 1)],
             "left": [("v", x0 - 1, y0, y1, -1), ("h", y0 - 1, x0, x1, -1), ("h", y1, x0, x1, 1)],
             "right": [("v", x1, y0, y1, 1), ("h", y0 - 1, x0, x1, -1), ("h", y1, x0, x1, 1)]}[side]
    for axis, at, lo, hi, out in rails:
        line = ink[at, lo:hi] if axis == "h" else ink[lo:hi, at]
        beyond = ink[at + 3 * out, lo:hi] if axis == "h" else ink[lo:hi, at + 3 * out]
        assert line.mean() == 1.0, (axis, at)
        assert beyond.mean() < 0.05, (axis, at)  # thin: not a wall
    # the floor inside the railing is no wall either
    assert ink[_mask(gray.shape, [bal], shrink=2)].mean() < 0.1
    assert balconies[0]["id"] == plan.rooms[-1]["id"]  # listed after the rooms of the floor


def page_contains(plan, poly):
    return box(0, 0, plan.width, plan.height).contains(poly)


@pytest.mark.parametrize("seed", [0, 3])
def test_fixtures_draw_inside_wet_rooms_and_kitchens_without_changing_polygons(seed):
    plain = generate_plan(seed, "r3d", **CRISP)
    fitted = generate_plan(seed, "r3d", **{**CRISP, "fixtures": True})
    assert fitted.rooms == plain.rooms
    diff = np.abs(_gray(fitted).astype(int) - _gray(plain).astype(int)) > 40
    assert diff.any()
    wet = [Polygon(r["polygon"]) for r in plain.rooms if r["label"] in ("bath", "wc", "kitchen", "laundry")]
    inside = _mask(diff.shape, wet)
    assert not diff[~inside].any()  # nothing drawn outside those rooms
    for room in plain.rooms:  # and something in each kitchen and bath
        if room["label"] in ("kitchen", "bath"):
            assert diff[_mask(diff.shape, [Polygon(room["polygon"])])].sum() > 50, room


def test_a_bathtub_spans_or_hugs_a_bath_wall_with_a_rounded_inner_outline():
    plan = generate_plan(0, "r3d", **{**CRISP, "fixtures": True})
    plain = generate_plan(0, "r3d", **CRISP)
    baths = [Polygon(r["polygon"]) for r in plan.rooms if r["label"] == "bath"]
    assert baths
    diff = np.abs(_gray(plan).astype(int) - _gray(plain).astype(int)) > 40
    ppm = _ppm(plan)
    found = False
    for bath in baths:
        region = diff & _mask(diff.shape, [bath])
        n, _, stats, _ = cv2.connectedComponentsWithStats(region.astype(np.uint8), connectivity=8)
        # the tub: one drawing at least 1.1 m long and 0.6 m wide
        found |= any(max(w, h) >= 1.1 * ppm and min(w, h) >= 0.6 * ppm for _, _, w, h, _ in stats[1:])
    assert found


def test_stairs_lie_inside_one_hall_like_room():
    for seed in range(6):
        plan = generate_plan(seed, "r3d", **{**CRISP, "stairs": 1.0})
        if "stairs" in plan.meta["facts"]:
            break
    else:
        pytest.fail("no plan of seeds 0-5 found room for stairs")
    plain = generate_plan(seed, "r3d", **CRISP)
    assert plan.rooms == plain.rooms
    label = plan.meta["facts"]["stairs"]
    assert label in ("hall", "family", "living", "dining")
    diff = np.abs(_gray(plan).astype(int) - _gray(plain).astype(int)) > 40
    rooms = [Polygon(r["polygon"]) for r in plan.rooms if r["label"] == label]
    assert diff.sum() > 100 and not diff[~_mask(diff.shape, rooms)].any()
    # a run of parallel treads: many parallel line crossings along the flight
    ys, xs = np.nonzero(diff)
    if np.ptp(xs) >= np.ptp(ys):  # the flight runs along x: cut across the treads a quarter in
        cut = diff[ys.min() + np.ptp(ys) // 4, xs.min():xs.max() + 1]
    else:
        cut = diff[ys.min():ys.max() + 1, xs.min() + np.ptp(xs) // 4]
    runs = np.count_nonzero(np.diff(cut.astype(np.int8)) == 1)
    assert runs >= 6


def test_closets_get_bi_fold_or_sliding_doors_across_their_front():
    counts = []
    for seed in range(4):
        kw = {**CRISP, "doors": "arc", "closets": 1.0}
        plain = generate_plan(seed, "r3d", **kw)
        fronts = generate_plan(seed, "r3d", **{**kw, "closet_doors": 1.0})
        assert fronts.rooms == plain.rooms  # doors never change the rooms
        assert "closet_doors" not in plain.meta["facts"]
        counts.append(fronts.meta["facts"].get("closet_doors", 0))
        closets = [Polygon(r["polygon"]) for r in fronts.rooms if r["label"] == "closet"]
        if counts[-1]:
            assert closets
            # a front is opened over most of a closet side: a long run of paper in the wall band
            ink = _gray(fronts) < 128
            longest = 0.0
            for c in closets:
                ring = _mask(ink.shape, [c.buffer(2, join_style="mitre")]) & ~_mask(ink.shape, [c])
                cx0, cy0, cx1, cy1 = c.bounds
                for row in (int(cy0) - 2, int(cy1) + 1):
                    longest = max(longest, _longest_false(ink[row, int(cx0):int(cx1)] | ~ring[row, int(cx0):int(cx1)]))
                for col in (int(cx0) - 2, int(cx1) + 1):
                    longest = max(longest, _longest_false(ink[int(cy0):int(cy1), col] | ~ring[int(cy0):int(cy1), col]))
            assert longest >= 0.45 * _ppm(fronts)
    assert sum(counts) >= 2


def _ppm(plan):
    """Pixels per metre, from a room's recorded area."""
    room = max(plan.rooms, key=lambda r: r["area_m2"])
    return float(np.sqrt(Polygon(room["polygon"]).area / room["area_m2"]))


def _longest_false(values):
    best = cur = 0
    for v in values:
        cur = 0 if v else cur + 1
        best = max(best, cur)
    return best


def test_the_detector_runs_on_r3d_plans():
    from roomkit.detector import detect_rooms
    from roomkit.qa.evaluate import score_plan

    f1s = []
    for name, plan in iter_plans(6, seed=20, styles=["r3d"]):
        det = detect_rooms(plan.image)
        assert det.width == plan.width and det.height == plan.height
        f1s.append(score_plan(det, plan.truth(name), name=name).f1(0.5))
    print("rules detector on r3d plans, F1@0.5:", " ".join(f"{f:.2f}" for f in f1s))
    assert all(0.0 <= f <= 1.0 for f in f1s)
