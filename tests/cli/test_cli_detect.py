"""The ``roomkit`` command: ``detect`` and ``demo`` end to end, ``--help`` through both entry points."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import roomkit.cli
from roomkit import detect_rooms, load_image
from roomkit.cli import main

ROOMKIT_BIN = Path(sys.executable).with_name("roomkit")


def two_room_plan(width: int = 480, height: int = 360, wall: int = 8) -> tuple[np.ndarray, list]:
    """A white plan with a thick outer wall split into two rooms; returns (image, truth polygons)."""
    img = np.full((height, width, 3), 255, np.uint8)
    x0, y0, x1, y1 = 30, 30, width - 30, height - 30
    cv2.rectangle(img, (x0, y0), (x1, y1), (0, 0, 0), wall)
    mid = (x0 + x1) // 2
    cv2.line(img, (mid, y0), (mid, y1), (0, 0, 0), wall)
    h = wall // 2
    truth = [
        [[x0 + h, y0 + h], [mid - h, y0 + h], [mid - h, y1 - h], [x0 + h, y1 - h]],
        [[mid + h, y0 + h], [x1 - h, y0 + h], [x1 - h, y1 - h], [mid + h, y1 - h]],
    ]
    return img, truth


def write_plan(path: Path, **kw) -> list:
    img, truth = two_room_plan(**kw)
    if path.suffix.lower() == ".pdf":
        buf = io.BytesIO()
        Image.fromarray(img[:, :, ::-1]).save(buf, "PDF", resolution=72.0)
        path.write_bytes(buf.getvalue())
    else:
        ok, data = cv2.imencode(path.suffix, img)
        assert ok
        path.write_bytes(data.tobytes())
    return truth


def write_truth(path: Path, image_name: str, truth: list, width: int = 480, height: int = 360) -> None:
    rooms = [{"id": f"r{i}", "label": "room", "polygon": poly} for i, poly in enumerate(truth)]
    path.write_text(json.dumps({"image": image_name, "width": width, "height": height, "rooms": rooms}))


def assert_response(data: dict, width: int, height: int) -> None:
    assert data["status"] == "success"
    assert data["image"] == {"width": width, "height": height}
    assert isinstance(data["processing_time_ms"], float) and data["processing_time_ms"] > 0
    for room in data["detected_rooms"]:
        assert set(room) == {"id", "bounding_box", "polygon", "area_px", "confidence"}
        assert all(0 <= v <= 1000 for v in room["bounding_box"])
        assert all(0 <= v <= 1000 for p in room["polygon"] for v in p)


# ---------------------------------------------------------------------------------------------
# --help through both entry points
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "argv",
    [[str(ROOMKIT_BIN), "--help"], [sys.executable, "-m", "roomkit", "--help"]],
    ids=["roomkit", "python-m-roomkit"],
)
def test_help_lists_subcommands(argv):
    if not Path(argv[0]).exists():
        pytest.fail(f"{argv[0]} is not installed (pip install -e . creates it)")
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for name in ("detect", "demo"):
        assert name in proc.stdout
    parser = roomkit.cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name in sub.choices:
        assert name in proc.stdout, f"subcommand {name} missing from --help"


def test_detect_help_documents_options(capsys):
    with pytest.raises(SystemExit) as info:
        main(["detect", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for option in ("--output-dir", "--config", "--overlay", "--min-confidence"):
        assert option in out


# ---------------------------------------------------------------------------------------------
# roomkit detect
# ---------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_detect_subprocess_mixed_inputs(tmp_path):
    """Good plans are written even when other inputs are missing, truncated or not images."""
    src = tmp_path / "in"
    src.mkdir()
    write_plan(src / "alpha.png")
    write_plan(src / "beta.jpg")
    write_plan(src / "gamma.pdf")
    whole = (src / "alpha.png").read_bytes()
    (src / "cut.png").write_bytes(whole[: len(whole) // 2])
    (src / "notes.txt").write_text("not a plan")
    out = tmp_path / "out"
    argv = [
        str(ROOMKIT_BIN), "detect", str(src / "alpha.png"), str(src / "cut.png"), str(src / "missing.png"),
        str(src / "beta.jpg"), str(src / "notes.txt"), str(src / "gamma.pdf"),
        "--output-dir", str(out), "--overlay",
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    # One clear line per bad input, naming the file and the reason.
    assert "cut.png" in proc.stderr and "truncated PNG" in proc.stderr
    assert "missing.png" in proc.stderr and "no such file" in proc.stderr
    assert "notes.txt" in proc.stderr and "unrecognized image format" in proc.stderr
    assert "Traceback" not in proc.stderr
    # The good ones were all processed, in order, with a one-line summary each.
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(("alpha", "beta", "gamma"))]
    assert [ln.split(":")[0] for ln in lines] == ["alpha.png", "beta.jpg", "gamma.pdf"]
    for ln in lines:
        assert " rooms" in ln and " ms" in ln
    assert "3/6 plans processed" in proc.stdout
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{s}{ext}" for s in ("alpha", "beta", "gamma") for ext in (".json", ".overlay.png")
    )
    assert_response(json.loads((out / "alpha.json").read_text()), 480, 360)
    pdf = json.loads((out / "gamma.json").read_text())
    assert pdf["image"]["width"] == 1000 and pdf["image"]["height"] == 750  # 480×360 pt at 150 dpi
    overlay = cv2.imread(str(out / "alpha.overlay.png"))
    assert overlay.shape == (360, 480, 3)
    plan = cv2.imread(str(src / "alpha.png"))
    assert np.abs(overlay.astype(int) - plan).mean() > 1.0, "overlay draws on top of the plan"


def test_detect_folder_expands_to_images(tmp_path, capsys):
    src = tmp_path / "plans"
    src.mkdir()
    write_plan(src / "a.png")
    write_plan(src / "b.TIFF")
    (src / "b.json").write_text("{}")
    (src / "readme.txt").write_text("hello")
    write_plan(src / ".hidden.png")
    (src / "sub").mkdir()
    write_plan(src / "sub" / "c.png")
    out = tmp_path / "out"
    rc = main(["detect", str(src), "-o", str(out), "--geojson"])
    assert rc == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["a.geojson", "a.json", "b.geojson", "b.json"]
    geo = json.loads((out / "a.geojson").read_text())
    assert geo["type"] == "FeatureCollection"


def test_detect_json_matches_library_result(tmp_path, capsys):
    plan = tmp_path / "plan.png"
    write_plan(plan)
    out = tmp_path / "out"
    assert main(["detect", str(plan), "-o", str(out)]) == 0
    written = json.loads((out / "plan.json").read_text())
    expected = detect_rooms(load_image(plan)).to_response()
    assert written["detected_rooms"] == expected["detected_rooms"]
    assert written["image"] == expected["image"]
    summary = capsys.readouterr().out.splitlines()[0]
    assert summary.startswith("plan.png: ") and f"{len(expected['detected_rooms'])} rooms" in summary


def test_detect_same_stem_is_not_overwritten(tmp_path, capsys):
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    write_plan(tmp_path / "x" / "plan.png")
    write_plan(tmp_path / "y" / "plan.png", width=400)
    out = tmp_path / "out"
    assert main(["detect", str(tmp_path / "x" / "plan.png"), str(tmp_path / "y" / "plan.png"), "-o", str(out)]) == 0
    first = json.loads((out / "plan.json").read_text())
    second = json.loads((out / "plan-2.json").read_text())
    assert first["image"]["width"] == 480 and second["image"]["width"] == 400


def test_detect_min_confidence_filters_rooms(tmp_path, capsys):
    plan = tmp_path / "plan.png"
    write_plan(plan)
    all_rooms = detect_rooms(load_image(plan)).to_response()["detected_rooms"]
    assert all_rooms, "the test plan should have rooms"
    top = max(r["confidence"] for r in all_rooms)  # rounded to 0.001 in the response
    threshold = top - 0.001
    out = tmp_path / "out"
    assert main(["detect", str(plan), "-o", str(out), "--min-confidence", f"{threshold:.4f}"]) == 0
    kept = json.loads((out / "plan.json").read_text())["detected_rooms"]
    assert kept, "the most confident room passes its own threshold"
    assert all(r["confidence"] >= threshold - 0.0005 for r in kept)
    assert len(kept) >= sum(1 for r in all_rooms if r["confidence"] >= threshold + 0.0005)
    assert len(kept) <= sum(1 for r in all_rooms if r["confidence"] >= threshold - 0.0005)


def test_detect_config_file(tmp_path, capsys):
    plan = tmp_path / "plan.png"
    write_plan(plan)
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"max_pixels": 1000}))
    rc = main(["detect", str(plan), "-o", str(tmp_path / "out"), "--config", str(cfg)])
    assert rc == 1
    assert "over the limit" in capsys.readouterr().err  # the config's pixel limit applied

    cfg.write_text(json.dumps({"min_room_area": 0.001, "wall_thikness": 3}))
    rc = main(["detect", str(plan), "-o", str(tmp_path / "out"), "--config", str(cfg)])
    assert rc == 2
    assert "wall_thikness" in capsys.readouterr().err

    rc = main(["detect", str(plan), "--config", str(tmp_path / "nope.json"), "-o", str(tmp_path / "out")])
    assert rc == 2 and "nope.json" in capsys.readouterr().err

    rc = main(["detect", str(plan), "--min-confidence", "1.5", "-o", str(tmp_path / "out")])
    assert rc == 2 and "min_confidence" in capsys.readouterr().err


def test_detect_nothing_readable(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    rc = main(["detect", str(empty), str(tmp_path / "ghost.png"), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 1
    assert "no image files" in err and "ghost.png" in err


# ---------------------------------------------------------------------------------------------
# roomkit demo
# ---------------------------------------------------------------------------------------------
def _samples(tmp_path: Path) -> Path:
    samples = tmp_path / "samples"
    samples.mkdir()
    truth = write_plan(samples / "one.png")
    write_truth(samples / "one.json", "one.png", truth)
    truth = write_plan(samples / "two.jpg")
    write_truth(samples / "two.json", "two.jpg", truth[:1])  # one room missing from the truth
    write_plan(samples / "three.png")  # no ground truth
    return samples


def test_demo_on_a_samples_folder(tmp_path, capsys):
    samples = _samples(tmp_path)
    out = tmp_path / "out"
    rc = main(["demo", "--samples", str(samples), "--out", str(out)])
    stdout = capsys.readouterr().out
    assert rc == 0, stdout
    lines = stdout.splitlines()
    header = next(ln for ln in lines if ln.startswith("plan"))
    for col in ("rooms", "truth", "F1@.5", "ms"):
        assert col in header
    rows = {ln.split()[0]: ln.split() for ln in lines if ln.split() and ln.split()[0] in ("one", "two", "three")}
    assert set(rows) == {"one", "two", "three"}

    # The printed figures are the evaluator's figures for the written responses.
    from roomkit.qa.evaluate import evaluate_dirs

    summary = evaluate_dirs(samples, out)
    by_name = {p.name: p for p in summary.plans}
    for name in ("one", "two"):
        n_rooms, n_truth, f1 = rows[name][1:4]
        assert int(n_rooms) == by_name[name].n_pred
        assert int(n_truth) == by_name[name].n_truth
        assert float(f1) == pytest.approx(by_name[name].f1(0.5), abs=1e-3)
    assert rows["three"][2] == "-" and "no ground truth" in stdout
    overall = next(ln for ln in lines if ln.startswith("overall:"))
    assert f"F1@0.5={summary.f1(0.5):.3f}" in overall and "plans=2" in overall

    for name in ("one", "two", "three"):
        assert_response(json.loads((out / f"{name}.json").read_text()), 480, 360)
        assert cv2.imread(str(out / f"{name}.overlay.png")).shape == (360, 480, 3)
    saved = json.loads((out / "summary.json").read_text())
    assert saved["overall"]["plans"] == 2


def test_demo_reports_broken_plans_and_continues(tmp_path, capsys):
    samples = _samples(tmp_path)
    data = (samples / "one.png").read_bytes()
    (samples / "one.png").write_bytes(data[: len(data) // 3])
    out = tmp_path / "out"
    rc = main(["demo", "--samples", str(samples), "--out", str(out), "--no-overlay"])
    captured = capsys.readouterr()
    assert rc == 1
    assert "one" in captured.err and "truncated PNG" in captured.out
    assert (out / "two.json").exists() and (out / "three.json").exists()
    assert not list(out.glob("*.overlay.png"))
    overall = next(ln for ln in captured.out.splitlines() if ln.startswith("overall:"))
    assert "plans=2" in overall  # the broken plan counts, as finding nothing


def test_demo_without_samples(tmp_path, capsys):
    rc = main(["demo", "--samples", str(tmp_path / "nope"), "--out", str(tmp_path / "out")])
    assert rc == 2
    assert "nope" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_finds_repository_samples_from_another_cwd(tmp_path):
    """``roomkit demo`` with no --samples finds the checkout's data/samples from any folder."""
    repo_samples = Path(roomkit.__file__).resolve().parents[2] / "data" / "samples"
    if not any(repo_samples.glob("*.json")):
        pytest.skip("data/samples is not populated in this checkout")
    small = tmp_path / "work"
    small.mkdir()
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [str(ROOMKIT_BIN), "demo", "--out", str(tmp_path / "out"), "--no-overlay"],
        cwd=small, capture_output=True, text=True, timeout=600, env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert str(repo_samples) in proc.stdout
    assert proc.stdout.splitlines()[-2].startswith("overall: F1@0.5=")
    n_images = len([p for p in repo_samples.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg")])
    assert len(list((tmp_path / "out").glob("*.json"))) == n_images + 1  # + summary.json


def test_detect_output_dir_that_cannot_be_created(tmp_path, capsys):
    plan = tmp_path / "plan.png"
    write_plan(plan)
    blocker = tmp_path / "file"
    blocker.write_text("in the way")
    rc = main(["detect", str(plan), "-o", str(blocker / "out")])
    assert rc == 2
    assert "cannot create output folder" in capsys.readouterr().err


def test_overlay_drawing_marks_rooms_and_caps_size():
    from roomkit.cli.detect import draw_overlay
    from roomkit.plans.response import Detection, Room

    plan = np.full((3000, 6000, 3), 255, np.uint8)
    room = Room(id="room_001", polygon=((1000.0, 1000.0), (3000.0, 1000.0), (3000.0, 2000.0), (1000.0, 2000.0)),
                area_px=2e6, confidence=0.9)
    det = Detection(width=6000, height=3000, rooms=(room,))
    truth = [[(4000, 500), (5500, 500), (5500, 2500), (4000, 2500)]]
    out = draw_overlay(plan, det, truth, max_side=1200)
    assert out.shape == (600, 1200, 3) and out.dtype == np.uint8
    inside = out[250:350, 220:280].reshape(-1, 3)  # inside the room, away from the label
    assert (inside != 255).any(axis=1).mean() > 0.9, "room is filled"
    assert (out[20:80, 20:80] == 255).all(), "outside stays paper"
    assert (out[100:500, 800] != 255).any(), "ground truth outline drawn"
    gray = draw_overlay(plan[:, :, 0], det)
    assert gray.shape == (2000, 4000, 3)  # default cap: longest side 4000
