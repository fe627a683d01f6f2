"""Visual QA: overlays, gallery, tables, the threshold curve and the HTML report render for real."""
from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from roomkit.qa import viz
from roomkit.qa.evaluate import load_truth, threshold_curve
from roomkit.plans.response import Detection, Room

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"


def _detection_from_truth(truth, *, drop_last=True, extra_false_positive=True):
    """A hand-made detection: the true rooms (one dropped), confidences spread, one bogus room."""
    rooms = truth.rooms[:-1] if drop_last else truth.rooms
    out = [Room(f"room_{i + 1:03d}", r.polygon, 0.0, 0.4 + 0.5 * i / max(1, len(rooms)))
           for i, r in enumerate(rooms)]
    if extra_false_positive:
        out.append(Room("room_fp", ((5.0, 5.0), (60.0, 5.0), (60.0, 60.0), (5.0, 60.0)), 0.0, 0.1))
    return Detection(truth.width, truth.height, tuple(out))


def test_sample_with_ground_truth_renders_to_png(tmp_path):
    truth = load_truth(SAMPLES / "small_plan.json")
    det = _detection_from_truth(truth)
    path = viz.save_overlay(SAMPLES / truth.image, det, tmp_path / "overlay.png", truth=truth, name="small_plan")
    assert path.is_file() and path.stat().st_size > 20_000
    img = cv2.imread(str(path))
    h, w = img.shape[:2]
    assert w >= 1000 and 400 <= h <= w  # two panels side by side
    assert img.std() > 20 and len(np.unique(img.reshape(-1, 3), axis=0)) > 200
    # the polygons really are drawn: the same plan without detections renders differently
    bare = cv2.imread(str(viz.save_overlay(SAMPLES / truth.image, None, tmp_path / "bare.png", truth=truth)))
    assert bare.shape == img.shape and np.abs(bare.astype(int) - img.astype(int)).mean() > 1.0
    # the confidence colours show up: strong greens/reds that the grey plan does not contain
    b, g, r = (img[..., k].astype(int) for k in range(3))
    assert ((g - r > 40) | (r - g > 60)).mean() > 0.01


def test_detection_panel_accepts_an_api_response_and_arrays(tmp_path):
    truth = load_truth(SAMPLES / "clean_rect.json")
    det = _detection_from_truth(truth, drop_last=False, extra_false_positive=False)
    image = cv2.imread(str(SAMPLES / truth.image))
    ax = viz.plot_detection(image, det.to_response(), title="from a response")
    assert len(ax.patches) == 2 * len(truth.rooms) and len(ax.texts) == len(truth.rooms)
    viz.save_figure(ax.figure, tmp_path / "det.png")
    assert cv2.imread(str(tmp_path / "det.png")) is not None


def test_gallery_table_and_curve_figures(tmp_path):
    entries = []
    for name in ("small_plan", "clean_rect", "blank_page"):
        truth = load_truth(SAMPLES / f"{name}.json")
        det = _detection_from_truth(truth) if truth.rooms else Detection(truth.width, truth.height)
        entries.append(viz.QAEntry(name=name, image=SAMPLES / truth.image, detection=det, truth=truth))
    gallery = viz.plot_gallery(entries, cols=2, worst_first=True)
    assert len(gallery.axes) >= 6
    viz.save_figure(gallery, tmp_path / "gallery.png")
    summary = viz.summary_of(entries)
    assert summary.n_plans == 3
    table = viz.plot_metrics_table(summary)
    viz.save_figure(table, tmp_path / "table.png")
    rows = viz.metrics_rows(summary)
    assert [r["plan"] for r in rows][-1] == "blank_page"  # perfect blank page last, worst first
    curve = threshold_curve([(e.detection, e.truth) for e in entries])
    fig = viz.plot_threshold_curve(curve)
    assert len(fig.axes[0].lines) >= 3
    viz.save_figure(fig, tmp_path / "curve.png")
    for f in ("gallery.png", "table.png", "curve.png"):
        assert cv2.imread(str(tmp_path / f)).std() > 5


def test_report_embeds_images_and_orders_worst_first(tmp_path):
    pred = tmp_path / "pred"
    pred.mkdir()
    good, bad = load_truth(SAMPLES / "small_plan.json"), load_truth(SAMPLES / "clean_l.json")
    (pred / "small_plan.json").write_text(
        _detection_from_truth(good, drop_last=False, extra_false_positive=False).to_json())
    (pred / "clean_l.json").write_text(_detection_from_truth(bad).to_json())
    truth_dir = tmp_path / "truth"
    truth_dir.mkdir()
    for t in (good, bad, load_truth(SAMPLES / "thin_u.json")):  # thin_u has no prediction
        (truth_dir / f"{t.name}.json").write_text(json.dumps(t.to_dict()))
    entries = viz.build_entries(truth_dir, pred, image_dir=SAMPLES)
    assert {e.name: e.note for e in entries}["thin_u"] == "missing prediction"
    out = viz.write_report(entries, tmp_path / "qa" / "report.html")
    text = out.read_text()
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", text)
    assert len(images) == 3 + 1  # one figure per plan and the threshold curve
    assert all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in images)
    assert "src='http" not in text and str(SAMPLES) not in text  # self-contained
    table = text[text.index("<table id='plans'>"):]
    table = table[:table.index("</table>")]
    order = [table.index(n) for n in ("thin_u", "clean_l", "small_plan")]
    assert order == sorted(order)  # worst first: nothing found, then a partial match, then perfect
    assert "F1@0.5=" in text and "<table id='overall'>" in text


def test_viz_imports_matplotlib_lazily():
    code = "import sys, roomkit.qa.viz; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
