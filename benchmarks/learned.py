"""Learned backend figures (issue 20): the rules, learned and hybrid backends side by side, in one
run, each figure printed beside its target with "met" or "MISSED".

1. **Accuracy** (``roomkit.qa.evaluate``: one-to-one polygon matching) on the real development
   plans (``../shared/data/real-plans-dev`` or ``$ROOMKIT_REAL_PLANS``; skipped when absent):
   F1@0.5, precision, recall, mIoU, F1@0.75 and recall per room label; targets F1@0.5 ≥ 0.82,
   mIoU ≥ 0.85, closet recall ≥ 0.6. Then a fresh synthetic set (``--count`` plans of
   ``--seed``, every style in turn: the recipe of ``benchmarks/accuracy.py``) and
   ``data/samples/``, where the target is "no worse than the rules backend".
2. **Speed on one core** (onnxruntime ``intra_op_num_threads=1``, ``cv2.setNumThreads(1)``):
   median ms of ``LearnedModel.predict`` on the plan as the learned backend prepares it, for
   real plans ≤ 0.5 MP, synthetic plans scaled to 0.5 MP and to 2 MP (targets ≤ 150 / ≤ 400 ms),
   its ratio to ``cv2.imdecode`` of the same file, its CPU ms beside the wall ms (a loaded box
   inflates the wall), and the whole ``detect_rooms`` per backend.
3. **Footprint**: the model files' size (≤ 10 MB); the serving image's growth, which is the
   weights alone since onnxruntime is already in the image (≤ 100 MB; the image is not built);
   the RSS of a fresh process that imports the serving app, loads the model and detects a
   2-MP plan with each model backend (≤ 600 MB); the retraining time that ``model.json``
   records (``training.seconds``, ≤ 2 h).
4. ``--finetune`` (off by default; hours of CPU at the default budget): K-fold cross-validation
   by plan on the real plans. Each fold fine-tunes the model (``base=`` the model directory) on
   the other folds' plans for ``--finetune-minutes`` and scores the held-out fold with the
   learned and hybrid backends (target: mean F1@0.5 ≥ 0.88). Then the learning curve at 25, 50,
   100 and all training plans, on the first fold only. The training folders hold symlinks to
   the real plans and every weight trained on them stays in a temporary folder that is deleted
   after scoring (the data rules forbid keeping them).

``--model DIR`` (default: the shipped weights, ``roomkit/learned/model``). Without a model the
learned and hybrid backends are skipped, with a message; the rules still run.

    .venv/bin/python benchmarks/learned.py [--model DIR] [--backends rules,learned,hybrid]
        [--sets real,synth,samples,speed,footprint] [--limit N] [--count 200] [--seed 6060]
        [--json figures.json] [--finetune [--folds 5] [--finetune-minutes 5]]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from roomkit.detector import detect_rooms  # noqa: E402
from roomkit.detector.config import DetectorConfig  # noqa: E402
from roomkit.detector.preprocess import prepare  # noqa: E402
from roomkit.learned.modelfile import ModelError, has_model, read_info, shipped_model_dir  # noqa: E402
from roomkit.plans.imageio import load_image  # noqa: E402
from roomkit.plans.response import Detection  # noqa: E402
from roomkit.qa import evaluate as ev  # noqa: E402

BACKENDS = ("rules", "learned", "hybrid")
MODEL_BACKENDS = ("learned", "hybrid")
HALF_MP, TWO_MP = 500_000, 2_000_000
MB = 1_000_000

# The targets.
REAL_F1, REAL_MIOU, CLOSET_RECALL = 0.82, 0.85, 0.6
PREDICT_MS_SMALL, PREDICT_MS_2MP = 150.0, 400.0
MODEL_MB, IMAGE_GROWTH_MB, WORKER_RSS_MB, RETRAIN_S = 10.0, 100.0, 600.0, 2 * 3600.0
FINETUNE_F1 = 0.88
#: The rules backend's F1@0.5 quoted by the issue, the bar when the rules are not in this run.
RULES_REFERENCE = {"synth": 0.966, "samples": 0.978}
#: Labels printed first in the per-label table (the rest follow, most rooms first).
LABEL_ORDER = ("closet", "bathroom", "living/kitchen/dining", "bedroom", "hall", "balcony")


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "MISSED")


def _f(v: float | None, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


@dataclass
class Figures:
    """Every figure of the run (for ``--json``) and the target checks (for the closing table)."""

    data: dict[str, Any] = field(default_factory=dict)
    checks: list[dict[str, Any]] = field(default_factory=list)

    def check(self, figure: str, backend: str | None, value: float | None, target: str, ok: bool | None) -> str:
        self.checks.append({"figure": figure, "backend": backend, "value": value, "target": target,
                            "met": ok, "verdict": verdict(ok)})
        return verdict(ok)


# -- plans ----------------------------------------------------------------------------------------
def folder_plans(directory: Path, limit: int | None) -> list[tuple[str, Path, ev.GroundTruth]]:
    """(stem, image path, truth) of a folder in the data/samples format, sorted by stem."""
    truths = sorted(ev.load_truth_dir(directory).items())
    if limit is not None:
        truths = truths[:limit]
    return [(stem, directory / t.image, t) for stem, t in truths]


def synth_plans(count: int, seed: int) -> Iterator[tuple[str, np.ndarray, ev.GroundTruth]]:
    """The fresh synthetic set of benchmarks/accuracy.py: plan i is ``generate_plan([seed, i])``,
    every style but ``random`` and ``r3d`` in turn."""
    from roomkit.qa import synth

    for name, plan in synth.iter_plans(count, seed=seed):
        yield name, plan.image, plan.truth(name)


def real_dir_ok(real: Path) -> bool:
    return real.is_dir() and any(real.glob("*.json"))


# -- accuracy -------------------------------------------------------------------------------------
class Runner:
    """Detects with each backend (one model, loaded once) and keeps per-plan scores by name."""

    def __init__(self, backends: list[str], config: DetectorConfig, model: Any) -> None:
        self.backends = backends
        self.configs = {b: config.replace(backend=b) for b in backends}
        self.model = model
        self.errors: dict[str, list[str]] = {b: [] for b in backends}

    def detect(self, image: np.ndarray, backend: str, name: str = "", *, model: Any = None) -> Detection:
        try:
            return detect_rooms(image, self.configs[backend], model=model or self.model)
        except Exception as exc:  # a failing plan is counted (no rooms) and named, not fatal
            self.errors[backend].append(f"{name}: {type(exc).__name__}: {exc}"[:200])
            h, w = image.shape[:2]
            return Detection(width=w, height=h, rooms=[])


@dataclass
class SetResult:
    scores: dict[str, list[ev.PlanScore]]
    times: dict[str, list[float]]
    truths: list[ev.GroundTruth]


def score_set(runner: Runner, plans: Iterable[tuple[str, Any, ev.GroundTruth]]) -> SetResult:
    res = SetResult({b: [] for b in runner.backends}, {b: [] for b in runner.backends}, [])
    for name, image, truth in plans:
        if isinstance(image, Path):
            image = load_image(image)
        res.truths.append(truth)
        for b in runner.backends:
            t0 = time.perf_counter()
            det = runner.detect(image, b, name)
            res.times[b].append((time.perf_counter() - t0) * 1000.0)
            res.scores[b].append(ev.score_plan(det, truth, name=name, style=truth.style))
    return res


def summary_dict(s: ev.Summary, ms: list[float]) -> dict[str, Any]:
    return {"plans": s.n_plans, "rooms": s.n_truth, "predicted": s.n_pred, "f1@0.5": s.f1(0.5),
            "precision@0.5": s.precision(0.5), "recall@0.5": s.recall(0.5), "miou": s.mean_iou,
            "f1@0.75": s.f1(0.75), "median_ms_per_plan": float(np.median(ms)) if ms else None}


def report_set(key: str, title: str, res: SetResult, runner: Runner, figs: Figures) -> None:
    """The side-by-side table of one plan set, with its targets."""
    summaries = {b: ev.summarize(res.scores[b]) for b in runner.backends}
    n = len(res.truths)
    print(f"\n== {title}: {n} plans, {sum(len(t.rooms) for t in res.truths)} rooms")
    if key == "real":
        print(f"   targets: F1@0.5 >= {REAL_F1}, mIoU >= {REAL_MIOU} (the shipped default, never trained on these plans)")
    else:
        bar = "the rules backend in this run" if "rules" in runner.backends else f"the rules' {RULES_REFERENCE[key]} (issue 20)"
        print(f"   target: F1@0.5 no worse than {bar}")
    print(f"{'backend':<8} {'pred':>6}  {'F1@.5':>14}  {'P@.5':>5}  {'R@.5':>5}  {'mIoU':>14}  {'F1@.75':>6}  ms/plan")
    out: dict[str, Any] = {}
    rules_f1 = summaries["rules"].f1(0.5) if "rules" in summaries else RULES_REFERENCE.get(key)
    for b, s in summaries.items():
        f1, miou = s.f1(0.5), s.mean_iou
        if key == "real":
            v1 = figs.check(f"{key} F1@0.5", b, f1, f">= {REAL_F1}", f1 >= REAL_F1)
            # No room matched at all: no mIoU, and the target is not met.
            v2 = figs.check(f"{key} mIoU", b, miou, f">= {REAL_MIOU}", miou is not None and miou >= REAL_MIOU)
        else:
            ok = None if rules_f1 is None or n == 0 else f1 >= rules_f1 - 1e-9
            v1 = "" if b == "rules" else figs.check(f"{key} F1@0.5", b, f1, f">= rules {_f(rules_f1)}", ok)
            v2 = ""
        ms = res.times[b]
        med = f"{float(np.median(ms)):7.0f}" if ms else "      -"
        print(f"{b:<8} {s.n_pred:>6}  {f1:5.3f} {v1:<8}  {s.precision(0.5):5.3f}  {s.recall(0.5):5.3f}  "
              f"{_f(miou):>5} {v2:<8}  {s.f1(0.75):6.3f}  {med}")
        out[b] = summary_dict(s, ms)
        if runner.errors[b]:
            print(f"   {b}: {len(runner.errors[b])} plan(s) failed (scored as no rooms), e.g. {runner.errors[b][0]}")
            out[b]["errors"] = list(runner.errors[b])
            runner.errors[b].clear()
    if key in ("real", "synth"):
        out["recall_by_label"] = label_table(key, title, res, runner.backends, figs)
    figs.data.setdefault("accuracy", {})[key] = out


def label_table(key: str, title: str, res: SetResult, backends: list[str], figs: Figures) -> dict[str, Any]:
    """Recall at IoU 0.5 per ground-truth label, one column per backend; closets have a target."""
    per = {b: {r.label: r for r in ev.recall_by_label(zip(res.scores[b], res.truths))} for b in backends}
    labels = list(next(iter(per.values())).keys()) if per else []
    if len(labels) < 2:
        return {}
    labels = [lb for lb in LABEL_ORDER if lb in labels] + [lb for lb in labels if lb not in LABEL_ORDER]
    print(f"\n-- recall per room label ({title}, IoU 0.5)" + (f"; target: closets >= {CLOSET_RECALL}" if key == "real" else ""))
    print(f"{'label':<24} {'rooms':>6}  " + "  ".join(f"{b:>16}" for b in backends))
    out: dict[str, Any] = {}
    for lb in labels:
        cells = []
        for b in backends:
            r = per[b][lb]
            cell = f"{r.recall:.3f} ({r.found})"
            if key == "real" and lb == "closet":
                cell += " " + figs.check("real closet recall", b, r.recall, f">= {CLOSET_RECALL}", r.recall >= CLOSET_RECALL)
            cells.append(f"{cell:>16}")
            out.setdefault(lb, {"rooms": r.total})[b] = r.recall
        print(f"{lb:<24} {per[backends[0]][lb].total:>6}  " + "  ".join(cells))
    return out


# -- speed ----------------------------------------------------------------------------------------
def _timed(fn, repeat: int) -> float:
    return _timed_cpu(fn, repeat)[0]


def _timed_cpu(fn, repeat: int) -> tuple[float, float]:
    """Median wall and CPU ms of ``repeat`` runs (CPU: this process, i.e. the one core it used;
    on a loaded box the wall time also counts the waits for that core)."""
    wall, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - t0) * 1000.0)
        cpu.append((time.process_time() - c0) * 1000.0)
    return float(np.median(wall)), float(np.median(cpu))


def _resized_png(img: np.ndarray, pixels: int) -> bytes:
    f = (pixels / (img.shape[0] * img.shape[1])) ** 0.5
    interp = cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR
    img = cv2.resize(img, (round(img.shape[1] * f), round(img.shape[0] * f)), interpolation=interp)
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


def speed_sets(real: Path | None, n: int, seed: int) -> list[tuple[str, float, list[bytes]]]:
    """(label, predict target ms, encoded files): real plans ≤ 0.5 MP as they are, and synthetic
    plans (the styles benchmarks/speed.py times) scaled to 0.5 MP and to 2 MP."""
    from roomkit.qa import synth

    sets: list[tuple[str, float, list[bytes]]] = []
    if real is not None:
        small = []
        for _stem, path, t in folder_plans(real, None):
            if t.width * t.height <= HALF_MP:
                small.append(path.read_bytes())
            if len(small) >= n:
                break
        if small:
            sets.append(("real <= 0.5 MP", PREDICT_MS_SMALL, small))
    styles = [s for s in synth.style_names() if s not in ("random", "r3d", "blank", "large")]
    drawn = [synth.generate_plan([seed, i], styles[i % len(styles)]).image for i in range(n)]
    sets.append(("synth @ 0.5 MP", PREDICT_MS_SMALL, [_resized_png(img, HALF_MP) for img in drawn]))
    sets.append(("synth @ 2 MP", PREDICT_MS_2MP, [_resized_png(img, TWO_MP) for img in drawn]))
    return sets


def speed(runner: Runner, model: Any, real: Path | None, n: int, repeat: int, seed: int, figs: Figures) -> None:
    """One core: predict on the plan as the learned backend prepares it, imdecode, detect_rooms."""
    config = runner.configs.get("learned") or DetectorConfig(backend="learned")
    backends = runner.backends
    print(f"\n== inference speed, one core (cv2 threads {cv2.getNumThreads()}, onnxruntime intra-op threads 1), "
          f"median over plans of the median of {repeat} runs")
    print("   predict: LearnedModel.predict on the gray plan the learned backend prepares (longer side <= "
          f"{model.info.max_side if model else '?'} px); ratio = predict / cv2.imdecode of the same file; "
          "cpu = predict's CPU ms")
    head = f"{'plans':<16} {'n':>3} {'MP':>5} {'decode':>7} {'predict':>16} {'ratio':>6} {'cpu':>6}"
    head += "".join(f" {'detect ' + b:>15} {'x dec':>6}" for b in backends)
    print(head)
    out: dict[str, Any] = {}
    for label, target, files in speed_sets(real, n, seed):
        dec, pred, pred_cpu, mps = [], [], [], []
        det: dict[str, list[float]] = {b: [] for b in backends}
        for data in files:
            buf = np.frombuffer(data, np.uint8)
            img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
            mps.append(img.shape[0] * img.shape[1] / 1e6)
            dec.append(_timed(lambda: cv2.imdecode(buf, cv2.IMREAD_COLOR), repeat))
            if model is not None:
                gray = prepare(img, min(config.working_resolution, model.info.max_side), deskew=config.deskew).gray
                model.predict(gray)  # warm-up
                wall, cpu = _timed_cpu(lambda: model.predict(gray), repeat)
                pred.append(wall)
                pred_cpu.append(cpu)
            for b in backends:
                runner.detect(img, b)  # warm-up
                det[b].append(_timed(lambda: runner.detect(img, b), repeat))
        d = float(np.median(dec))
        row = f"{label:<16} {len(files):>3} {float(np.median(mps)):5.2f} {d:7.1f} "
        entry: dict[str, Any] = {"plans": len(files), "median_mp": float(np.median(mps)), "decode_ms": d,
                                 "predict_target_ms": target}
        if pred:
            p = float(np.median(pred))
            v = figs.check(f"predict ms, {label}", "learned", p, f"<= {target:.0f} ms", p <= target)
            c = float(np.median(pred_cpu))
            row += f"{p:7.1f} {v:<8} {p / d:6.1f} {c:6.1f}"
            entry.update(predict_ms=p, predict_p95_ms=float(np.percentile(pred, 95)), predict_to_decode=p / d,
                         predict_cpu_ms=c)
        else:
            row += f"{'no model':>16} {'-':>6} {'-':>6}"
        for b in backends:
            m = float(np.median(det[b]))
            row += f" {m:15.1f} {m / d:6.1f}"
            entry[f"detect_ms_{b}"] = m
        print(row)
        out[label] = entry
    figs.data["speed"] = out


# -- footprint ------------------------------------------------------------------------------------
_RSS_CHILD = r"""
import json, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import psutil
proc = psutil.Process()
rss = lambda: proc.memory_info().rss
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return None
start = rss()
from roomkit.serving.app import create_app
from roomkit.serving.options import ServerOptions
with tempfile.TemporaryDirectory() as d:
    app = create_app(ServerOptions.resolve(model_dir=d, workers=1))  # a worker's imports and set-up
ready = app.ready
imported = rss()
from roomkit.detector import detect_rooms
from roomkit.detector.config import DetectorConfig
from roomkit.learned.runtime import LearnedModel
from roomkit.plans.imageio import load_image
model = LearnedModel.load(sys.argv[2])
loaded = rss()
image = load_image(sys.argv[3])
rooms = {}
for backend in ("learned", "hybrid"):
    rooms[backend] = len(detect_rooms(image, DetectorConfig(backend=backend), model=model).rooms)
print(json.dumps({"start": start, "app_imported": imported, "app_ready": ready, "model_loaded": loaded,
                  "after_detect": rss(), "peak": hwm(), "rooms": rooms, "shape": list(image.shape)}))
"""


def worker_rss(model_dir: Path, seed: int) -> dict[str, Any]:
    """A fresh process: the serving app's imports, the model loaded, one 2-MP plan detected."""
    from roomkit.qa import synth

    with tempfile.TemporaryDirectory() as tmp:
        plan = Path(tmp) / "plan_2mp.png"
        plan.write_bytes(_resized_png(synth.generate_plan([seed, 0], "furnished").image, TWO_MP))
        res = subprocess.run([sys.executable, "-c", _RSS_CHILD, str(ROOT / "lib"), str(model_dir), str(plan)],
                             capture_output=True, text=True, timeout=600, cwd=tmp,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{") and '"after_detect"' in ln]
    if res.returncode != 0 or not lines:
        raise RuntimeError(f"the RSS process failed (exit {res.returncode}): {res.stderr[-1500:]}")
    return json.loads(lines[-1])


def footprint(model_dir: Path | None, seed: int, figs: Figures) -> None:
    print("\n== footprint")
    out: dict[str, Any] = {}
    if model_dir is None:
        print("   no model: nothing to measure")
        figs.data["footprint"] = out
        return
    onnx = model_dir / "model.onnx"
    size = onnx.stat().st_size
    v = figs.check("model file MB", None, size / MB, f"<= {MODEL_MB:.0f} MB", size / MB <= MODEL_MB)
    print(f"   model file {onnx}: {size / MB:.2f} MB ({size} bytes)  target <= {MODEL_MB:.0f} MB  {v}")
    # What the image gains: the package data the weights are (pyproject: learned/model/*.onnx, *.json).
    shipped = sorted(p for p in model_dir.iterdir() if p.is_file() and p.suffix in (".onnx", ".json"))
    growth = sum(p.stat().st_size for p in shipped)
    reqs = (ROOT / "container" / "requirements.txt").read_text(encoding="utf-8").splitlines()
    ort = next((ln.strip() for ln in reqs if ln.strip().lower().startswith("onnxruntime==")), None)
    ok = (growth / MB <= IMAGE_GROWTH_MB) if ort else None
    v = figs.check("serving image growth MB", None, growth / MB, f"<= {IMAGE_GROWTH_MB:.0f} MB", ok)
    why = (f"{ort} is already in container/requirements.txt, so the weights are the only addition"
           if ort else "onnxruntime is NOT in container/requirements.txt: the growth would include it (not measured)")
    print(f"   serving image growth: {growth / MB:.2f} MB = {' + '.join(p.name for p in shipped)} ({why}; "
          f"image not built)  target <= {IMAGE_GROWTH_MB:.0f} MB  {v}")
    out.update(model_file_bytes=size, image_growth_bytes=growth, image_growth_files=[p.name for p in shipped],
               onnxruntime_in_image=ort)
    try:
        r = worker_rss(model_dir, seed)
        after, peak = r["after_detect"] / MB, (r["peak"] or 0) / MB
        v = figs.check("worker RSS MB with the model loaded", None, after, f"<= {WORKER_RSS_MB:.0f} MB",
                       after <= WORKER_RSS_MB)
        print(f"   worker RSS (fresh process: serving app imported {r['app_imported'] / MB:.0f} MB, model loaded "
              f"{r['model_loaded'] / MB:.0f} MB, after detecting a {r['shape'][1]}x{r['shape'][0]} plan with the learned "
              f"and hybrid backends {after:.0f} MB, peak {peak:.0f} MB)  target <= {WORKER_RSS_MB:.0f} MB  {v}")
        out["worker_rss"] = r
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        figs.check("worker RSS MB with the model loaded", None, None, f"<= {WORKER_RSS_MB:.0f} MB", None)
        print(f"   worker RSS: not measured ({exc})")
    info = read_info(model_dir)
    seconds = info.training.get("seconds")
    ok = None if seconds is None else float(seconds) <= RETRAIN_S
    v = figs.check("retraining seconds (model.json training.seconds)", None, seconds, f"<= {RETRAIN_S:.0f} s", ok)
    how = ", ".join(f"{k} {info.training[k]}" for k in ("epochs_run", "steps", "device") if k in info.training)
    print(f"   retraining time recorded in model.json: "
          + ("not recorded" if seconds is None else f"{float(seconds):.0f} s ({float(seconds) / 3600:.2f} h{'; ' + how if how else ''})")
          + f"  target <= 2 h  {v}")
    out["training_seconds"] = seconds
    figs.data["footprint"] = out


# -- fine-tuning ----------------------------------------------------------------------------------
def fold_split(stems: list[str], k: int, seed: int) -> list[list[str]]:
    """K folds of plan names, fixed by ``seed``."""
    order = np.random.default_rng(seed).permutation(len(stems))
    return [sorted(stems[i] for i in part) for part in np.array_split(order, k)]


def link_plans(plans: dict[str, tuple[Path, Path]], names: Iterable[str], folder: Path) -> Path:
    """A training folder in the data/samples format made of symlinks (no copies) to the plans."""
    folder.mkdir(parents=True)
    for name in names:
        truth, image = plans[name]
        (folder / truth.name).symlink_to(truth.resolve())
        (folder / image.name).symlink_to(image.resolve())
    return folder


def finetune(args: argparse.Namespace, runner: Runner, model_dir: Path, real: Path, cache: dict, figs: Figures) -> None:
    """K-fold cross-validation by plan of fine-tuning on the real plans, then the learning curve."""
    from roomkit.learned.runtime import LearnedModel
    from roomkit.learned.train import TrainConfig, train

    items = folder_plans(real, args.limit)
    plans = {stem: (real / f"{stem}.json", path) for stem, path, _t in items}
    truths = {stem: t for stem, _p, t in items}
    images: dict[str, np.ndarray] = {}
    folds = fold_split(sorted(plans), args.folds, args.fold_seed)
    curve_sizes = [int(x) for x in args.curve.split(",") if x.strip()]
    runs = args.folds + len(curve_sizes)
    print(f"\n== fine-tuning on the real plans: {args.folds}-fold cross-validation by plan (folds fixed by seed "
          f"{args.fold_seed}), {len(plans)} plans; {args.finetune_minutes} min of training per run, "
          f"up to {runs} runs (about {runs * args.finetune_minutes:.1f} min of training)")
    print(f"   each fold: base = {model_dir}, trained on the other folds' plans (symlinked into a temporary folder), "
          f"held-out fold scored; the fine-tuned weights are deleted after scoring")
    print(f"   target: mean F1@0.5 over the folds >= {FINETUNE_F1}")
    backends = [b for b in runner.backends if b in MODEL_BACKENDS]

    def image(stem: str) -> np.ndarray:
        if stem not in images:
            images[stem] = load_image(plans[stem][1])
        return images[stem]

    def score(names: list[str], backend: str, model: Any, key: str | None) -> ev.Summary:
        out = []
        for stem in names:
            if key is not None and (key, backend, stem) in cache:
                out.append(cache[(key, backend, stem)])
                continue
            det = runner.detect(image(stem), backend, stem, model=model)
            s = ev.score_plan(det, truths[stem], name=stem)
            if key is not None:
                cache[(key, backend, stem)] = s
            out.append(s)
        return ev.summarize(out)

    def tuned(train_names: list[str], held: list[str], tag: str) -> dict[str, float]:
        with tempfile.TemporaryDirectory(prefix="roomkit-finetune-") as tmp:
            data = link_plans(plans, train_names, Path(tmp) / "plans")
            out = Path(tmp) / "model"
            t0 = time.perf_counter()
            cfg = TrainConfig(minutes=args.finetune_minutes, steps_per_epoch=args.finetune_steps, seed=args.fold_seed)
            res = train([data], out, cfg, base=model_dir, restart=True, progress=False, log=lambda s: None)
            secs = time.perf_counter() - t0
            model = LearnedModel.load(out, threads=1)
            f1 = {b: score(held, b, model, None).f1(0.5) for b in backends}
            del model
        print(f"   {tag:<28} train {len(train_names):>4}  held-out {len(held):>4}  {res.epochs:>3} epochs "
              f"{secs:6.0f} s  " + "  ".join(f"{b} {f1[b]:.3f}" for b in backends), flush=True)
        return f1

    print(f"\n   {'run':<28} {'plans':<27}{'epochs, time':<21}F1@0.5 on the held-out fold")
    per_fold: list[dict[str, Any]] = []
    for i, held in enumerate(folds):
        train_names = [s for j, f in enumerate(folds) if j != i for s in f]
        if not train_names or not held:
            continue
        f1 = tuned(train_names, held, f"fold {i + 1}/{args.folds}")
        before = {b: score(held, b, runner.model, "base").f1(0.5) for b in runner.backends}
        per_fold.append({"fold": i + 1, "train": len(train_names), "held_out": len(held),
                         "fine_tuned": f1, "before": before})
    if not per_fold:
        print("   too few plans for these folds")
        return
    print(f"\n   {'backend':<8} {'mean F1@0.5 fine-tuned':>24}  {'target':>8}  {'':<7} {'before (same folds)':>20}")
    result: dict[str, Any] = {"folds": per_fold, "minutes_per_run": args.finetune_minutes}
    for b in runner.backends:
        before = float(np.mean([f["before"][b] for f in per_fold]))
        if b in backends:
            mean = float(np.mean([f["fine_tuned"][b] for f in per_fold]))
            v = figs.check("fine-tuned mean F1@0.5 (CV by plan)", b, mean, f">= {FINETUNE_F1}", mean >= FINETUNE_F1)
            print(f"   {b:<8} {mean:>24.3f}  {'>= ' + str(FINETUNE_F1):>8}  {v:<7} {before:>20.3f}")
            result[f"mean_f1_{b}"] = mean
        else:
            print(f"   {b:<8} {'(not fine-tuned)':>24}  {'':>8}  {'':<7} {before:>20.3f}")
        result[f"mean_f1_before_{b}"] = before
    # The learning curve, on the first fold only (each point is a training run of its own).
    held = folds[0]
    pool = [s for f in folds[1:] for s in f]
    order = [pool[i] for i in np.random.default_rng(args.fold_seed + 1).permutation(len(pool))]
    sizes = [n for n in curve_sizes if n < len(pool)]
    print(f"\n   learning curve, on fold 1 only to save time (nested random subsets of its {len(pool)} training "
          f"plans; 'all' is the fold-1 run above), F1@0.5 on its {len(held)} held-out plans:")
    curve = []
    for n in sizes:
        curve.append({"train_plans": n, **tuned(order[:n], held, f"fold 1, {n} training plans")})
    curve.append({"train_plans": len(pool), **per_fold[0]["fine_tuned"]})
    print(f"   {'training plans':>14}  " + "  ".join(f"{b:>8}" for b in backends))
    for row in curve:
        print(f"   {row['train_plans']:>14}  " + "  ".join(f"{row[b]:8.3f}" for b in backends))
    result["learning_curve_fold1"] = curve
    figs.data["finetune"] = result


# -- main -----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(shipped_model_dir()), help="model directory (default: the shipped weights)")
    ap.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated, of rules,learned,hybrid")
    ap.add_argument("--sets", default="real,synth,samples,speed,footprint", help="which parts to run")
    ap.add_argument("--limit", type=int, default=None, help="at most N plans per set (quick checks)")
    ap.add_argument("--count", type=int, default=200, help="fresh synthetic plans (default 200)")
    ap.add_argument("--seed", type=int, default=6060,
                    help="seed of the fresh synthetic set (default 6060: not a training, tuning or benchmark seed)")
    ap.add_argument("--speed-plans", type=int, default=10, help="plans per speed set (default 10)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per plan (default 3)")
    ap.add_argument("--samples-dir", default=str(ROOT / "data" / "samples"))
    ap.add_argument("--real-dir", default=os.environ.get("ROOMKIT_REAL_PLANS",
                                                         str(ROOT.parent / "shared" / "data" / "real-plans-dev")))
    ap.add_argument("--config", default=None, help="detector config.json (the backend is set per column)")
    ap.add_argument("--json", default=None, help="write the figures as JSON to this path")
    ap.add_argument("--finetune", action="store_true", help="run the fine-tuning experiment (CPU-heavy)")
    ap.add_argument("--folds", type=int, default=5, help="cross-validation folds (default 5)")
    ap.add_argument("--fold-seed", type=int, default=0, help="seed of the folds and of the fine-tuning runs")
    ap.add_argument("--finetune-minutes", type=float, default=5.0, help="training minutes per run (default 5)")
    ap.add_argument("--finetune-steps", type=int, default=50, help="training steps per epoch (default 50)")
    ap.add_argument("--curve", default="25,50,100", help="learning-curve training-set sizes (plus all)")
    args = ap.parse_args(argv)

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    bad = [b for b in backends if b not in BACKENDS]
    if bad or not backends:
        ap.error(f"--backends: choose from {', '.join(BACKENDS)}")
    if args.folds < 2:
        ap.error("--folds must be at least 2")
    sets = {s.strip() for s in args.sets.split(",") if s.strip()}
    cv2.setNumThreads(1)
    figs = Figures()
    model_dir: Path | None = Path(args.model)
    model = None
    wanted = [b for b in backends if b in MODEL_BACKENDS]
    if not has_model(model_dir):
        note = " (the shipped weights are not trained yet)" if model_dir.resolve() == shipped_model_dir() else ""
        print(f"NO MODEL: {model_dir} holds no model.onnx{note}; the learned and hybrid backends are skipped. "
              f"Pass --model DIR with a trained model (roomkit train ... --out DIR).")
        backends = [b for b in backends if b not in MODEL_BACKENDS]
        model_dir = None
    elif wanted or "speed" in sets or args.finetune:
        from roomkit.learned.runtime import LearnedModel

        try:
            model = LearnedModel.load(model_dir, threads=1)
        except ModelError as exc:
            print(f"UNUSABLE MODEL: {exc}; the learned and hybrid backends are skipped.")
            backends = [b for b in backends if b not in MODEL_BACKENDS]
            model_dir = None
    if model is not None:
        info = model.info
        print(f"model {model_dir}: channels {list(info.channels)}, max side {info.max_side}, trained on "
              f"{json.dumps(dict(info.trained_on), sort_keys=True)}")
        if info.trained_on.get("real_plans_dev"):
            print("WARNING: model.json says these weights were trained on the real development plans: "
                  "the real-plan figures below are not a fair measure of them.")
        if info.trained_on.get("synthetic_seed") == args.seed and info.trained_on.get("synthetic_plans"):
            print(f"WARNING: --seed {args.seed} is the seed the model's synthetic training plans were drawn with; "
                  "the synthetic set is not fresh.")
    if not backends:
        print("nothing to run: no backend left")
        return 1
    figs.data.update(model=str(model_dir) if model_dir else None, backends=backends, limit=args.limit,
                     synth_seed=args.seed, model_info=model.info.to_dict() if model else None)
    config = DetectorConfig.from_json(args.config) if args.config else DetectorConfig()
    config = config.replace(read_text=False)  # the detector alone; reading text is accuracy.py's
    runner = Runner(backends, config, model)
    cache: dict = {}
    real = Path(args.real_dir)
    has_real = real_dir_ok(real)
    print(f"backends: {', '.join(backends)}; plan limit: {args.limit or 'none'}; OpenCV threads {cv2.getNumThreads()}")

    if "real" in sets:
        if has_real:
            res = score_set(runner, folder_plans(real, args.limit))
            for b in backends:
                for s in res.scores[b]:
                    cache[("base", b, s.name)] = s
            report_set("real", "real-plans-dev", res, runner, figs)
        else:
            print(f"\n== real-plans-dev: skipped ({real} not found)")
    if "synth" in sets:
        count = args.count if args.limit is None else min(args.count, args.limit)
        if count > 0:
            report_set("synth", f"synthetic (fresh seed {args.seed})", score_set(runner, synth_plans(count, args.seed)),
                       runner, figs)
    if "samples" in sets:
        report_set("samples", "data/samples", score_set(runner, folder_plans(Path(args.samples_dir), args.limit)),
                   runner, figs)
    if "speed" in sets:
        n = args.speed_plans if args.limit is None else min(args.speed_plans, args.limit)
        speed(runner, model, real if has_real else None, n, args.repeat, args.seed, figs)
    if "footprint" in sets:
        footprint(model_dir, args.seed, figs)
    if args.finetune:
        if model_dir is None or not any(b in MODEL_BACKENDS for b in backends):
            print("\n== fine-tuning: skipped (no model to fine-tune, or no learned/hybrid backend chosen)")
        elif not has_real:
            print(f"\n== fine-tuning: skipped ({real} not found)")
        else:
            finetune(args, runner, model_dir, real, cache, figs)

    print("\n== targets")
    print(f"{'figure':<48} {'backend':<8} {'value':>10}  {'target':<14} verdict")
    for c in figs.checks:
        v = c["value"]
        val = "n/a" if v is None else (f"{v:.4f}" if isinstance(v, float) and v < 100 else f"{float(v):.0f}")
        print(f"{c['figure']:<48} {c['backend'] or '-':<8} {val:>10}  {c['target']:<14} {c['verdict']}")
    if args.json:
        Path(args.json).write_text(json.dumps({**figs.data, "targets": figs.checks}, indent=2, default=str) + "\n",
                                   encoding="utf-8")
        print(f"\nfigures written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
