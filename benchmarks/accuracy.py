"""Detector accuracy: F1 at IoU 0.5 / 0.75 and mean matched IoU, against the naive baseline.

Three plan sets, each scored with ``roomkit.qa.evaluate`` (one-to-one polygon matching):

* ``samples``  — the committed ``data/samples/`` plans;
* ``synth``    — ``--count`` freshly generated ``roomkit.qa.synth`` plans cycling every style
  (``--styles`` to choose), with a per-style breakdown;
* ``real``     — the real listing plans in ``../shared/data/real-plans-dev`` (or
  ``$ROOMKIT_REAL_PLANS``) when that folder exists; skipped otherwise.

The naive approach (threshold → findContours → area filter → approxPolyDP with epsilon
0.01·perimeter, as in the inference script roomkit replaces) runs on the same plans in the same
run. For the real set the precision/recall at rising confidence thresholds is printed too: it
shows whether ``confidence`` means something. Figures are printed, nothing is asserted.

What the plan's text adds (``read_text``, ``roomkit.text``) is printed per set beside them: room
type accuracy over matched rooms (``unknown`` counts as wrong; R3D labels mapped to the
vocabulary), the share of matched rooms whose area is within 5 % of the truth (all rooms, and
those whose size is printed on the plan), F1 with the text evidence on vs off (one OCR per plan,
both annotations from it), and the median detector vs text-reading time per plan (wall, and the
text's CPU time on its one thread); then text reading time on ≤ 0.5 MP plans and at 2 MP.

    .venv/bin/python benchmarks/accuracy.py [--count 200] [--seed 7] [--styles clean,thin]
                                            [--limit N] [--sets samples,synth,real]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterable

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from roomkit.qa import evaluate as ev  # noqa: E402
from roomkit.detector.config import DetectorConfig  # noqa: E402
from roomkit.detector import detect_debug, detect_rooms  # noqa: E402
from roomkit.plans.imageio import load_image  # noqa: E402
from roomkit.plans.response import Detection, order_and_number  # noqa: E402
from roomkit.text.annotate import annotate, text_region  # noqa: E402
from roomkit.text.ocr import read_scale, read_text  # noqa: E402

TWO_MP = 2_000_000

Detector = Callable[[np.ndarray], Detection]


def naive_detect(image: np.ndarray, min_area: float = 0.001, max_area: float = 0.9) -> Detection:
    """The baseline: global threshold, contours of the white regions, area filter, approxPolyDP."""
    start = time.perf_counter()
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    _, binary = cv2.threshold(gray, 127, 255, cv2.THRESH_BINARY)
    contours, _ = cv2.findContours(binary, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    h, w = gray.shape
    page = float(h * w)
    items = []
    for c in contours:
        area = cv2.contourArea(c)
        if not min_area * page <= area <= max_area * page:
            continue
        poly = cv2.approxPolyDP(c, 0.01 * cv2.arcLength(c, True), True).reshape(-1, 2)
        if len(poly) >= 3:
            items.append(([(float(x), float(y)) for x, y in poly], float(area), 1.0))
    return Detection(width=w, height=h, rooms=order_and_number(items),
                     processing_time_ms=(time.perf_counter() - start) * 1000.0)


def _plans_from_dir(directory: Path, limit: int | None) -> Iterable[tuple[str, np.ndarray, ev.GroundTruth]]:
    truths = ev.load_truth_dir(directory)
    for i, (stem, truth) in enumerate(sorted(truths.items())):
        if limit is not None and i >= limit:
            break
        yield stem, load_image(directory / truth.image), truth


def _synth_plans(count: int, seed: int, styles: list[str] | None):
    from roomkit.qa import synth

    for name, plan in synth.iter_plans(count, seed=seed, styles=styles):
        yield name, plan.image, plan.truth(name)


def _score(plans, detectors: dict[str, Detector]):
    """Run every detector on every plan: {method: [PlanScore]}, per-method times, and the
    roomkit (detection, truth) pairs for the confidence-threshold table."""
    scores: dict[str, list] = {m: [] for m in detectors}
    times: dict[str, list[float]] = {m: [] for m in detectors}
    pairs = []
    for name, image, truth in plans:
        for method, fn in detectors.items():
            t0 = time.perf_counter()
            det = fn(image)
            times[method].append((time.perf_counter() - t0) * 1000.0)
            scores[method].append(ev.score_plan(det, truth, name=name, style=truth.style))
            if method == "roomkit":
                pairs.append((det, truth))
    return scores, times, pairs


def _fmt(v: float | None) -> str:
    return "  n/a" if v is None else f"{v:5.3f}"


def _row(label: str, method: str, s: ev.Summary, ms: list[float] | None = None) -> str:
    med = f"{float(np.median(ms)):7.1f}" if ms else "      -"
    return (f"{label:<16} {method:<9} {s.n_plans:>5} {s.n_truth:>6} {s.n_pred:>6}  "
            f"{_fmt(s.f1(0.5))}  {_fmt(s.f1(0.75))}  {_fmt(s.precision(0.5))}  {_fmt(s.recall(0.5))}  "
            f"{_fmt(s.mean_iou)} {med}")


HEADER = (f"{'set':<16} {'method':<9} {'plans':>5} {'rooms':>6} {'pred':>6}  "
          f"F1@.5  F1@.75  P@.5   R@.5   mIoU   ms/plan")


def _report(title: str, scores, times, *, per_style: bool = False) -> None:
    print(f"\n== {title}")
    print(HEADER)
    for method, plan_scores in scores.items():
        print(_row(title, method, ev.summarize(plan_scores), times[method]))
    if per_style:
        styles = sorted({p.style or "?" for p in scores["roomkit"]})
        print(f"\n-- per style ({title})")
        print(HEADER)
        for style in styles:
            for method, plan_scores in scores.items():
                sub = [p for p in plan_scores if (p.style or "?") == style]
                print(_row(style, method, ev.summarize(sub)))


class TextRun:
    """roomkit with the text read once per plan and annotated twice (evidence on and off).

    Calling it on an image returns the detection as ``detect_rooms`` gives it (evidence as the
    config says); the one without evidence and the timings are kept for :meth:`report`."""

    def __init__(self, config: DetectorConfig) -> None:
        self.config = config
        self.base = config.replace(read_text=False)
        self.off: list[Detection] = []
        self.text_cpu_ms: list[float] = []
        self.pixels: list[int] = []

    def __call__(self, image: np.ndarray) -> Detection:
        if not self.config.read_text:
            return detect_rooms(image, self.config)
        dbg = detect_debug(image, self.base)
        det = dbg.detection
        # What the pipeline hands the text step: the regions too doubtful to report.
        doubtful = [
            ([(float(x), float(y)) for x, y in dbg.frame.to_original(c.polygon)], c.area / dbg.frame.scale**2, c.confidence)
            for c in dbg.candidates
            if c.confidence < self.base.min_confidence
        ]
        c0, w0 = time.process_time(), time.perf_counter()
        lines = read_text(image, region=text_region(det, read_scale(*image.shape[:2]))) if det.rooms else ()
        cpu, ocr_ms = (time.process_time() - c0) * 1000.0, (time.perf_counter() - w0) * 1000.0
        on = annotate(det, image, lines=lines, evidence=self.config.text_evidence, doubtful=doubtful)
        # As detect_rooms reports it: the reading inside the text step's time.
        text_ms = on.timings_ms["text"] + ocr_ms
        on = replace(on, processing_time_ms=det.processing_time_ms + text_ms,
                     timings_ms={"detect": det.processing_time_ms, "text": text_ms})
        self.off.append(annotate(det, image, lines=lines, evidence=False))
        self.text_cpu_ms.append(cpu)
        self.pixels.append(int(image.shape[0] * image.shape[1]))
        return on

    def report(self, title: str, pairs, scores) -> None:
        if not self.config.read_text or not pairs:
            return
        text, printing = ev.TextScore(), ev.TextScore()
        for (det, truth), score in zip(pairs, scores):
            one = ev.score_text(score, det, truth)
            text = text + one
            if any(r.size_text for r in truth.rooms):
                printing = printing + one
        off = ev.summarize(ev.score_plan(d, t) for d, (_on, t) in zip(self.off, pairs))
        on = ev.summarize(scores)
        detect_ms = [d.timings_ms["detect"] for d, _t in pairs if d.timings_ms]
        text_ms = [d.timings_ms["text"] for d, _t in pairs if d.timings_ms]
        print(f"\n-- {title}, what the text adds (roomkit, read_text)")
        print(f"   type accuracy over matched rooms: {_pct(text.type_accuracy)} ({text.typed_right}/{text.typed})")
        if text.sized:
            print(f"   area within 5 %: rooms with printed sizes {_pct(text.printed_area_within)} "
                  f"({text.printed_close}/{text.printed}); all rooms of plans printing sizes "
                  f"{_pct(printing.area_within)} ({printing.sized_close}/{printing.sized}); "
                  f"all rooms {_pct(text.area_within)} ({text.sized_close}/{text.sized})")
        print(f"   F1@.5 text evidence on {on.f1(0.5):.4f} vs off {off.f1(0.5):.4f} ({on.f1(0.5) - off.f1(0.5):+.4f})")
        print(f"   median ms/plan: detect {np.median(detect_ms):.0f}, text {np.median(text_ms):.0f} wall, "
              f"{np.median(self.text_cpu_ms):.0f} CPU (one thread)")
        wrong: dict[tuple[str, str], int] = {}
        for c in text.confusions:
            wrong[c] = wrong.get(c, 0) + 1
        top = sorted(wrong.items(), key=lambda kv: -kv[1])[:8]
        if top:
            print("   most frequent type errors (truth -> predicted): "
                  + ", ".join(f"{t}->{p} {n}" for (t, p), n in top))


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def text_speed(real_dir: Path | None, *, n: int = 10, seed: int = 2024) -> None:
    """Text reading time per plan (OCR only, one thread): ≤ 0.5 MP real plans and 2-MP plans
    (synthetic plans that print names and sizes, scaled to 2 MP as benchmarks/speed.py does)."""
    from roomkit.qa import synth

    def measure(images: list[np.ndarray]) -> tuple[float, float]:
        cpu, wall = [], []
        for img in images:
            c0, w0 = time.process_time(), time.perf_counter()
            read_text(img)
            cpu.append((time.process_time() - c0) * 1000.0)
            wall.append((time.perf_counter() - w0) * 1000.0)
        return float(np.median(cpu)), float(np.median(wall))

    read_text(np.full((64, 64), 255, np.uint8))  # load the engine outside the timings
    small = []
    if real_dir is not None and real_dir.is_dir():
        for _stem, img, _t in _plans_from_dir(real_dir, None):
            if img.shape[0] * img.shape[1] <= 500_000:
                small.append(img)
            if len(small) >= n:
                break
    big = []
    styles = ["listing", "cad", "hatched", "thin", "furnished"]
    for i in range(n):
        img = synth.generate_plan([seed, i], styles[i % len(styles)]).image
        f = (TWO_MP / (img.shape[0] * img.shape[1])) ** 0.5
        big.append(cv2.resize(img, (round(img.shape[1] * f), round(img.shape[0] * f)), interpolation=cv2.INTER_AREA))
    print("\n== text reading time per plan (OCR, one thread; median)")
    for label, imgs in (("real <= 0.5 MP", small), ("synth @ 2 MP", big)):
        if imgs:
            cpu, wall = measure(imgs)
            print(f"   {label:<16} {len(imgs):>3} plans  {cpu:7.0f} ms CPU  {wall:7.0f} ms wall")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=200, help="fresh synthetic plans (default 200)")
    ap.add_argument("--seed", type=int, default=2024, help="seed of the synthetic set")
    ap.add_argument("--styles", default="", help="comma-separated synth styles (default: every style)")
    ap.add_argument("--limit", type=int, default=None, help="at most N plans per folder set")
    ap.add_argument("--sets", default="samples,synth,real", help="which sets to run")
    ap.add_argument("--samples-dir", default=str(ROOT / "data" / "samples"))
    ap.add_argument("--real-dir", default=os.environ.get("ROOMKIT_REAL_PLANS",
                                                         str(ROOT.parent / "shared" / "data" / "real-plans-dev")))
    ap.add_argument("--config", default=None, help="detector config.json")
    args = ap.parse_args(argv)

    config = DetectorConfig.from_json(args.config) if args.config else DetectorConfig()

    def detectors() -> dict[str, Detector]:
        return {"roomkit": TextRun(config), "naive": naive_detect}

    sets = {s.strip() for s in args.sets.split(",") if s.strip()}
    styles = [s.strip() for s in args.styles.split(",") if s.strip()] or None

    if "samples" in sets:
        run = detectors()
        scores, times, pairs = _score(_plans_from_dir(Path(args.samples_dir), args.limit), run)
        _report("samples", scores, times, per_style=False)
        run["roomkit"].report("samples", pairs, scores["roomkit"])
    if "synth" in sets and args.count > 0:
        run = detectors()
        scores, times, pairs = _score(_synth_plans(args.count, args.seed, styles), run)
        _report(f"synth(seed={args.seed})", scores, times, per_style=True)
        _label_table(scores, pairs, "synth")
        _threshold_table(pairs, "synth")
        run["roomkit"].report("synth", pairs, scores["roomkit"])
    real = Path(args.real_dir)
    if "real" in sets:
        if real.is_dir() and any(real.glob("*.json")):
            run = detectors()
            scores, times, pairs = _score(_plans_from_dir(real, args.limit), run)
            _report("real-plans-dev", scores, times)
            _label_table(scores, pairs, "real-plans-dev")
            _threshold_table(pairs, "real-plans-dev")
            run["roomkit"].report("real-plans-dev", pairs, scores["roomkit"])
        else:
            print(f"\n== real-plans-dev: skipped ({real} not found)")
    if "textspeed" in sets or (config.read_text and "real" in sets):
        text_speed(real if real.is_dir() else None)
    return 0


def _label_table(scores, pairs, title: str) -> None:
    """Recall at IoU 0.5 per ground-truth room label: which kinds of rooms are missed."""
    rows = ev.recall_by_label(zip(scores["roomkit"], (truth for _det, truth in pairs)))
    if len(rows) < 2:
        return
    print(f"\n-- recall per room label ({title}, roomkit)")
    print(f"{'label':<24} {'rooms':>6} {'found':>6}  R@.5")
    for r in rows:
        print(f"{r.label:<24} {r.total:>6} {r.found:>6}  {_fmt(r.recall)}")


def _threshold_table(pairs, title: str) -> None:
    """Pooled P/R/F1 at IoU 0.5 keeping only rooms with confidence ≥ threshold (re-matched)."""
    print(f"\n-- {title}, roomkit: as the confidence threshold rises (IoU 0.5)")
    print(f"   {'conf>=':>6}  {'pred':>5}  {'TP':>5}  P      R      F1")
    for pt in ev.threshold_curve(pairs, thresholds=(0.0, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9)):
        print(f"   {pt.threshold:>6.1f}  {pt.n_pred:>5}  {pt.tp:>5}  {pt.precision:.3f}  {pt.recall:.3f}  {pt.f1:.3f}")


if __name__ == "__main__":
    raise SystemExit(main())
