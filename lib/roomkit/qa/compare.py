"""Detector backends side by side: ``rules``, ``learned`` and ``hybrid`` on the same annotated plans.

:func:`compare_backends` runs each backend on each plan of a folder in the ``data/samples/``
format (``<name>.json`` ground truth beside the image), scores every answer with
:mod:`roomkit.qa.evaluate` exactly as ``roomkit eval`` does (so a cell here and ``roomkit eval``
print the same figure for the same detections), and keeps the detections for drawing.
:func:`overlays` draws one plan's detections, one panel per backend, with
:func:`roomkit.qa.viz.plot_detection`. Notebook 07 calls these; the logic lives here.

The model is loaded once, before anything runs: a missing or corrupt model is a clear
:class:`~roomkit.learned.modelfile.ModelError`, not a column of failed plans. A plan one backend
cannot read or process is scored as "no rooms found" with the reason in its row (as
:func:`roomkit.qa.evaluate.evaluate_dirs` scores a missing prediction), so it lowers recall
instead of vanishing from the table.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence, Union

from roomkit.errors import InputError, RoomkitError
from roomkit.plans.response import Detection
from roomkit.qa.evaluate import GroundTruth, GroundTruthError, PlanScore, Summary, load_truth_dir, score_plan, summarize

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

    from roomkit.detector.config import DetectorConfig
    from roomkit.learned.runtime import LearnedModel

__all__ = ["BACKENDS", "BackendRun", "Comparison", "compare_backends", "overlays"]

#: The backends compared by default, in column order.
BACKENDS: tuple[str, ...] = ("rules", "learned", "hybrid")

ModelLike = Union["LearnedModel", str, os.PathLike, None]


@dataclass(frozen=True)
class BackendRun:
    """One backend on one plan: its detection (None when it failed), score and time."""

    plan: str
    backend: str
    score: PlanScore
    detection: Detection | None
    ms: float
    error: str | None = None

    def row(self) -> dict[str, Any]:
        return {
            "plan": self.plan, "backend": self.backend, "n_truth": self.score.n_truth,
            "n_pred": self.score.n_pred, "f1@0.5": round(self.score.f1(0.5), 4),
            "mean_iou": None if self.score.mean_iou is None else round(self.score.mean_iou, 4),
            "ms": round(self.ms, 1), "note": self.score.remark,
        }


@dataclass
class Comparison:
    """Every backend on every plan. ``runs`` in plan order, backends in ``backends`` order."""

    backends: tuple[str, ...]
    runs: list[BackendRun] = field(default_factory=list)
    images: dict[str, Path] = field(default_factory=dict)
    truths: dict[str, GroundTruth] = field(default_factory=dict)

    @property
    def plans(self) -> list[str]:
        return list(self.images)

    def summaries(self) -> dict[str, Summary]:
        """One :class:`~roomkit.qa.evaluate.Summary` per backend (pooled over the plans)."""
        return {b: summarize(r.score for r in self.runs if r.backend == b) for b in self.backends}

    def detections(self, plan: str) -> dict[str, Detection | None]:
        """``{backend: detection}`` of one plan (None where the backend failed)."""
        if plan not in self.images:
            raise InputError(f"no plan {plan!r} in this comparison (have: {', '.join(self.plans)})")
        return {r.backend: r.detection for r in self.runs if r.plan == plan}

    def rows(self) -> "pd.DataFrame":
        """One row per plan and backend: n_truth, n_pred, F1@0.5, mean IoU, ms, what went wrong."""
        import pandas as pd

        return pd.DataFrame([r.row() for r in self.runs],
                            columns=["plan", "backend", "n_truth", "n_pred", "f1@0.5", "mean_iou", "ms", "note"])

    def table(self, metric: str = "f1@0.5") -> "pd.DataFrame":
        """Plans × backends of ``metric`` (a column of :meth:`rows`; F1@0.5 by default)."""
        frame = self.rows()
        if metric not in frame.columns or metric in ("plan", "backend", "note"):
            raise InputError(f"metric must be one of n_truth, n_pred, f1@0.5, mean_iou, ms; got {metric!r}")
        table = frame.pivot(index="plan", columns="backend", values=metric)
        table = table.reindex(index=self.plans, columns=list(self.backends))
        table.columns.name = None
        return table

    def summary(self) -> "pd.DataFrame":
        """Per backend, pooled over the plans: F1@0.5, precision, recall, mIoU, median ms."""
        import numpy as np
        import pandas as pd

        rows = []
        for backend, s in self.summaries().items():
            ms = [r.ms for r in self.runs if r.backend == backend]
            rows.append({
                "backend": backend, "plans": s.n_plans, "n_truth": s.n_truth, "n_pred": s.n_pred,
                "f1@0.5": round(s.f1(0.5), 4), "precision@0.5": round(s.precision(0.5), 4),
                "recall@0.5": round(s.recall(0.5), 4),
                "mean_iou": None if s.mean_iou is None else round(s.mean_iou, 4),
                "median_ms": round(float(np.median(ms)), 1) if ms else None,
            })
        return pd.DataFrame(rows).set_index("backend")

    def most_different(self, n: int = 3) -> list[str]:
        """The ``n`` plans on which the backends' F1@0.5 differ most (ties: lowest F1 first, then
        name): the ones worth looking at side by side."""
        table = self.table()
        spread = table.max(axis=1) - table.min(axis=1)
        order = sorted(self.plans, key=lambda p: (-float(spread[p]), float(table.loc[p].min()), p))
        return order[: max(0, int(n))]

    def overlay(self, plan: str, **kwargs: Any) -> "Figure":
        """:func:`overlays` of one plan of this comparison."""
        dets = self.detections(plan)
        return overlays(self.images[plan], dets, self.truths.get(plan), name=plan, **kwargs)


def _plan_images(plans_dir: Path, truths: Mapping[str, GroundTruth]) -> dict[str, Path]:
    """The image of each ground-truth file: its ``image`` field, else an image with its stem."""
    from roomkit.plans.imageio import IMAGE_EXTENSIONS

    by_stem: dict[str, Path] = {}
    for p in sorted(plans_dir.iterdir()):
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS:
            by_stem.setdefault(p.stem, p)
    images = {}
    for stem, truth in truths.items():
        named = plans_dir / Path(truth.image).name
        path = named if named.is_file() else by_stem.get(stem)
        if path is None:
            raise GroundTruthError(f"{plans_dir / (stem + '.json')}: no image {truth.image!r} beside it")
        images[stem] = path
    return images


def compare_backends(
    plans_dir: str | os.PathLike,
    backends: Sequence[str] = BACKENDS,
    *,
    model: ModelLike = None,
    config: "DetectorConfig | Mapping[str, Any] | None" = None,
    plans: Sequence[str] | None = None,
) -> Comparison:
    """Run each backend on each annotated plan of ``plans_dir`` and score it.

    ``model``: a :class:`~roomkit.learned.runtime.LearnedModel` or a model directory for the
    ``learned`` and ``hybrid`` backends (default: the shipped weights); loaded once, up front.
    ``config``: the detector settings every backend shares (its ``backend`` is replaced per
    column). ``plans``: only these ground-truth stems, in this order.
    """
    from roomkit.detector import detect_rooms
    from roomkit.detector.config import BACKENDS as KNOWN, DetectorConfig
    from roomkit.plans.imageio import load_image

    backends = tuple(backends)
    if not backends:
        raise InputError("backends is empty: name at least one of " + ", ".join(KNOWN))
    unknown = [b for b in backends if b not in KNOWN]
    if unknown or len(set(backends)) != len(backends):
        raise InputError(f"backends must be distinct names from {', '.join(KNOWN)}; got {list(backends)}")
    base = config if isinstance(config, DetectorConfig) else DetectorConfig.from_dict(dict(config or {}))
    truths = load_truth_dir(plans_dir)
    if plans is not None:
        missing = [p for p in plans if p not in truths]
        if missing:
            raise InputError(f"no ground truth for {', '.join(missing)} in {plans_dir} (have: {', '.join(truths)})")
        truths = {p: truths[p] for p in plans}
    if not truths:
        raise GroundTruthError(f"no ground-truth *.json files in {plans_dir}")
    images = _plan_images(Path(plans_dir), truths)

    learned = None
    if any(b != "rules" for b in backends):
        from roomkit.learned.runtime import LearnedModel, load_model

        learned = model if isinstance(model, LearnedModel) else load_model(model)

    comparison = Comparison(backends, images=images, truths=dict(truths))
    for stem, truth in truths.items():
        try:
            image, read_error = load_image(images[stem]), None
        except RoomkitError as exc:
            image, read_error = None, f"unreadable: {exc}"
        for backend in backends:
            det, error, ms = None, read_error, 0.0
            if image is not None:
                t0 = time.perf_counter()
                try:
                    det = detect_rooms(image, base.replace(backend=backend), model=learned)
                except RoomkitError as exc:
                    error = f"{type(exc).__name__}: {exc}"
                ms = 1000.0 * (time.perf_counter() - t0)
            scored = det if det is not None else Detection(width=truth.width, height=truth.height)
            score = score_plan(scored, truth, name=stem, note=error or "")
            comparison.runs.append(BackendRun(stem, backend, score, det, ms, error))
    return comparison


def overlays(
    plan_image: Any,
    detections_by_backend: Mapping[str, Detection | Mapping[str, Any] | None],
    truth: GroundTruth | None = None,
    *,
    name: str = "",
    panel_width: float = 5.0,
) -> "Figure":
    """One plan's detections, one panel per backend side by side (:func:`roomkit.qa.viz.plot_detection`).

    Rooms are filled by confidence; with ``truth``, detections that match no ground-truth room
    at IoU ≥ 0.5 get a red dashed edge and each panel's title carries its F1@0.5.
    ``plan_image``: a path or a BGR array (as :func:`roomkit.load_image` returns).
    """
    from matplotlib.figure import Figure

    from roomkit.qa.viz import load_rgb, plot_detection

    if not detections_by_backend:
        raise InputError("detections_by_backend is empty: nothing to draw")
    rgb = load_rgb(plan_image)
    bgr = rgb[..., ::-1]
    n = len(detections_by_backend)
    aspect = rgb.shape[0] / rgb.shape[1]
    fig = Figure(figsize=(panel_width * n, max(2.5, panel_width * aspect) + 0.7), layout="constrained")
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, (backend, det) in zip(axes, detections_by_backend.items()):
        if isinstance(det, Mapping):
            det = Detection.from_response(det)
        score = score_plan(det, truth) if (truth is not None and det is not None) else None
        rooms = len(det.rooms) if det is not None else 0
        title = f"{backend} · {rooms} rooms" if det is not None else f"{backend} · failed"
        if score is not None:
            title += f" · F1@0.5 {score.f1(0.5):.2f}"
        plot_detection(bgr, det, ax=ax, title=title, score=score, colorbar=False)
    heading = name or (truth.name if truth is not None else "")
    if truth is not None:
        heading += f"{'  —  ' if heading else ''}{len(truth.rooms)} rooms in the ground truth"
    if heading:
        fig.suptitle(heading, fontsize=11)
    return fig
