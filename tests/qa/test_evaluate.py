"""The evaluation yardstick: polygon IoU, one-to-one matching, P/R/F1, the eval CLI."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from roomkit.qa.evaluate import (
    GroundTruth,
    GroundTruthError,
    evaluate,
    evaluate_dirs,
    greedy_match,
    iou_matrix,
    load_truth,
    polygon_iou,
    recall_by_label,
    score_plan,
    threshold_curve,
)
from roomkit.errors import InputError
from roomkit.plans.response import Detection, Room


def sq(x0, y0, x1, y1):
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


# Two rooms side by side: 0..100 and 100..200 wide, 100 tall.
LEFT, RIGHT = sq(0, 0, 100, 100), sq(100, 0, 200, 100)


def det(*polys, conf=None, w=400, h=300):
    confs = conf or [0.9] * len(polys)
    return Detection(
        width=w,
        height=h,
        rooms=tuple(Room(f"room_{i + 1:03d}", tuple(p), 0.0, c) for i, (p, c) in enumerate(zip(polys, confs))),
    )


def test_iou_basics():
    assert polygon_iou(LEFT, LEFT) == pytest.approx(1.0)
    assert polygon_iou(LEFT, RIGHT) == 0.0
    assert polygon_iou(LEFT, sq(0, 0, 100, 50)) == pytest.approx(0.5)
    assert polygon_iou(LEFT, sq(50, 0, 150, 100)) == pytest.approx(1 / 3)
    # degenerate polygons have no area and never match
    assert polygon_iou([(0, 0), (10, 10)], LEFT) == 0.0
    assert polygon_iou([(0, 0), (10, 0), (20, 0)], LEFT) == 0.0


def test_perfect_match():
    s = score_plan(det(LEFT, RIGHT), [RIGHT, LEFT])
    assert (s.tp(0.5), s.tp(0.75)) == (2, 2)
    assert s.precision() == s.recall() == s.f1() == 1.0
    assert s.mean_iou == pytest.approx(1.0)
    assert {(m.pred_id, m.truth_id) for m in s.matches} == {("room_001", "t1"), ("room_002", "t0")}


def test_split_room_counts_one_match_at_most():
    # The detector splits one 200x100 room into two halves: each half has IoU 0.5 with it.
    whole = sq(0, 0, 200, 100)
    s = score_plan(det(LEFT, RIGHT), [whole])
    assert s.tp(0.5) == 1 and s.tp(0.75) == 0
    assert s.precision(0.5) == 0.5 and s.recall(0.5) == 1.0
    assert s.f1(0.5) == pytest.approx(2 / 3)
    assert s.f1(0.75) == 0.0
    assert len(s.matches) == 1  # one-to-one: the second half stays unmatched


def test_split_room_unequal_halves_fails_both():
    whole = sq(0, 0, 200, 100)
    s = score_plan([sq(0, 0, 90, 100), sq(90, 0, 200, 100)], [whole])
    assert s.matches[0].iou == pytest.approx(0.55)  # the larger piece wins the match
    assert s.tp(0.5) == 1 and s.tp(0.75) == 0


def test_merged_rooms():
    # Two true rooms detected as one region: IoU 0.5 with each, only one may match.
    s = score_plan([sq(0, 0, 200, 100)], [LEFT, RIGHT])
    assert s.tp(0.5) == 1
    assert s.precision() == 1.0 and s.recall() == 0.5
    # three rooms merged: IoU 1/3 each -> nothing counts at 0.5
    s3 = score_plan([sq(0, 0, 300, 100)], [LEFT, RIGHT, sq(200, 0, 300, 100)])
    assert s3.tp(0.5) == 0 and s3.f1() == 0.0 and s3.mean_iou is None


def test_greedy_takes_best_pair_first():
    # pred 0 overlaps both truths; pred 1 only truth 0 but better: pred 1 must get truth 0.
    m = iou_matrix([sq(0, 0, 150, 100), sq(0, 0, 100, 100)], [LEFT, RIGHT])
    pairs = greedy_match(m)
    assert (1, 0) in [(p, t) for p, t, _ in pairs]
    assert (0, 1) in [(p, t) for p, t, _ in pairs]


def test_empty_prediction():
    s = score_plan([], [LEFT, RIGHT])
    assert s.tp() == 0 and s.recall() == 0.0 and s.f1() == 0.0
    assert s.precision() == 1.0  # nothing claimed, nothing wrong
    assert s.mean_iou is None


def test_empty_truth():
    s = score_plan(det(LEFT), [])
    assert s.precision() == 0.0 and s.recall() == 1.0 and s.f1() == 0.0


def test_both_empty_is_perfect():
    s = score_plan(det(), GroundTruth(image="blank.png", width=10, height=10))
    assert s.f1() == s.precision() == s.recall() == 1.0
    assert s.name == "blank"


def test_invalid_polygon_is_repaired():
    bowtie = [(0, 0), (100, 100), (100, 0), (0, 100)]  # self-intersecting
    assert polygon_iou(bowtie, LEFT) == pytest.approx(0.5)
    # a room traced with a zero-width spike still matches its clean version
    spiky = [(0, 0), (100, 0), (100, 50), (150, 50), (100, 50), (100, 100), (0, 100)]
    s = score_plan([spiky], [LEFT])
    assert s.tp(0.75) == 1 and s.mean_iou == pytest.approx(1.0)


def test_summary_pools_plans_and_orders_worst_first():
    good = score_plan(det(LEFT, RIGHT), [LEFT, RIGHT], name="good")
    bad = score_plan(det(sq(0, 0, 200, 100)), [LEFT, RIGHT], name="bad")
    summary = evaluate({"good": (det(LEFT, RIGHT), [LEFT, RIGHT]), "bad": (det(sq(0, 0, 200, 100)), [LEFT, RIGHT])})
    assert [p.name for p in summary.worst_first()] == ["bad", "good"]
    assert summary.tp() == good.tp() + bad.tp() == 3
    assert summary.precision() == 1.0 and summary.recall() == 0.75
    assert summary.f1() == pytest.approx(2 * 3 / (3 + 4))
    line = summary.line()
    assert line.startswith("F1@0.5=0.857 P=1.000 R=0.750 mIoU=") and line.endswith("plans=2")
    d = summary.to_dict()
    assert d["overall"]["plans"] == 2 and len(d["plans"]) == 2
    json.dumps(d)


def test_confidence_curve_precision_rises():
    # the false positive has the lowest confidence
    pred = det(LEFT, RIGHT, sq(300, 0, 400, 100), conf=[0.9, 0.8, 0.2])
    curve = threshold_curve([(pred, [LEFT, RIGHT])], thresholds=[0.0, 0.5, 0.85, 0.95])
    assert [c.n_pred for c in curve] == [3, 2, 1, 0]
    assert curve[0].precision == pytest.approx(2 / 3)
    assert curve[1].precision == 1.0 and curve[1].recall == 1.0 and curve[1].f1 == 1.0
    assert curve[2].recall == 0.5
    assert curve[3].recall == 0.0 and curve[3].f1 == 0.0


def test_ground_truth_loader_validates(tmp_path):
    good = {"image": "a.png", "width": 400, "height": 300, "style": "x",
            "rooms": [{"id": "r1", "label": "kitchen", "polygon": [[0, 0], [10, 0], [10, 10]]}]}
    (tmp_path / "a.json").write_text(json.dumps(good))
    gt = load_truth(tmp_path / "a.json")
    assert gt.rooms[0].label == "kitchen" and gt.style == "x" and gt.name == "a"
    assert GroundTruth.from_dict(gt.to_dict(), name="a") == gt
    for bad, msg in [
        ({"image": "a.png", "width": 4}, "lacks key"),
        ({**good, "width": -1}, "positive"),
        ({**good, "rooms": [{"polygon": [[0, 0], [1, 1]]}]}, "fewer than 3"),
        ({**good, "rooms": [{"polygon": [["a"], [1, 1], [2, 2]]}]}, r"\[x, y\]"),
    ]:
        (tmp_path / "b.json").write_text(json.dumps(bad))
        with pytest.raises(GroundTruthError, match=msg):
            load_truth(tmp_path / "b.json")
    (tmp_path / "c.json").write_text("{")
    with pytest.raises(GroundTruthError, match="not valid JSON"):
        load_truth(tmp_path / "c.json")


def _write_case(tmp_path):
    truth, pred = tmp_path / "truth", tmp_path / "pred"
    truth.mkdir()
    pred.mkdir()
    w, h = 400, 300
    rooms = [{"id": "r1", "label": "a", "polygon": [list(p) for p in LEFT]},
             {"id": "r2", "label": "b", "polygon": [list(p) for p in RIGHT]}]
    for stem in ("p1", "p2", "p3"):
        (truth / f"{stem}.json").write_text(json.dumps({"image": f"{stem}.png", "width": w, "height": h, "rooms": rooms}))
    (pred / "p1.json").write_text(det(LEFT, RIGHT, w=w, h=h).to_json())
    (pred / "p2.json").write_text(det(sq(0, 0, 180, 100), w=w, h=h).to_json())  # merged
    # p3 has no prediction; a stray file without truth is ignored
    (pred / "zz.json").write_text(det(LEFT, w=w, h=h).to_json())
    return truth, pred


def test_evaluate_dirs_reads_normalized_responses(tmp_path):
    truth, pred = _write_case(tmp_path)
    summary = evaluate_dirs(truth, pred)
    by = {p.name: p for p in summary.plans}
    assert set(by) == {"p1", "p2", "p3"}
    assert by["p1"].f1() == 1.0 and by["p1"].mean_iou > 0.99  # normalized round trip
    assert by["p3"].note == "missing prediction" and by["p3"].recall() == 0.0
    assert summary.tp() == 3 and summary.n_truth == 6


def test_eval_cli_prints_table_and_last_line(tmp_path):
    truth, pred = _write_case(tmp_path)
    out = tmp_path / "out" / "summary.json"
    proc = subprocess.run(
        [sys.executable, "-m", "roomkit", "eval", "--truth", str(truth), "--pred", str(pred), "--json", str(out)],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[-1].startswith("F1@0.5=0.667 P=1.000 R=0.500 mIoU=") and lines[-1].endswith("plans=3")
    assert any(line.startswith("p3 ") and "missing prediction" in line for line in lines)
    data = json.loads(out.read_text())
    assert data["overall"]["plans"] == 3 and data["overall"]["tp@0.5"] == 3


def test_eval_cli_clear_error_for_missing_folder(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "roomkit", "eval", "--truth", str(tmp_path / "nope"), "--pred", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    assert "does not exist" in proc.stderr and "Traceback" not in proc.stderr


def test_evaluate_dirs_reads_async_out_files_and_error_responses(tmp_path):
    truth, pred = _write_case(tmp_path)
    (pred / "p3.out").write_text(det(LEFT, RIGHT, w=400, h=300).to_json())  # SageMaker async output
    (pred / "p2.json").write_text(json.dumps({"status": "error", "error": {"code": "undecodable_image",
                                                                          "message": "truncated"}}))
    by = {p.name: p for p in evaluate_dirs(truth, pred).plans}
    assert by["p3"].f1() == 1.0 and by["p3"].note == ""
    assert by["p2"].n_pred == 0 and by["p2"].note == "error response: truncated"
    (pred / "p1.json").write_text('{"detected_rooms": 3}')
    with pytest.raises(InputError, match="p1.json"):
        evaluate_dirs(truth, pred)


def test_recall_by_label_counts_matched_truth_rooms_per_label():
    truth = GroundTruth.from_dict(
        {
            "image": "p.png",
            "width": 400,
            "height": 300,
            "rooms": [
                {"id": "a", "label": "bedroom", "polygon": LEFT},
                {"id": "b", "label": "closet", "polygon": RIGHT},
                {"id": "c", "label": "closet", "polygon": sq(0, 100, 100, 200)},
            ],
        }
    )
    # The bedroom is found, one closet is found only at IoU 0.5 (half its height), one is missed.
    score = score_plan(det(LEFT, sq(100, 0, 200, 60)), truth)
    table = {r.label: (r.found, r.total) for r in recall_by_label([(score, truth)])}
    assert table == {"closet": (1, 2), "bedroom": (1, 1)}
    assert [r.label for r in recall_by_label([(score, truth)])] == ["closet", "bedroom"]
    strict = {r.label: r.found for r in recall_by_label([(score, truth)], iou=0.75)}
    assert strict == {"closet": 0, "bedroom": 1}
