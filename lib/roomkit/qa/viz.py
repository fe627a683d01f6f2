"""Visual QA: room polygons over the plan, ground truth beside them, galleries, metrics, reports.

Everything here draws on :class:`matplotlib.figure.Figure` objects created without pyplot, so it
works headless (Agg) in CI, in the container and in scripts, leaks no global figure state, and
still displays inline in JupyterLab (a returned Figure renders as an image). matplotlib is
imported inside the functions: ``import roomkit.qa.viz`` costs nothing until something is drawn.

Colours: detected rooms are filled by confidence (a colour bar says which is which), ground-truth
rooms by a fixed qualitative palette. With ground truth present, detections that match no room at
IoU ≥ 0.5 (false positives) and ground-truth rooms nobody found (misses) get a red dashed edge.
"""
from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence, Union

import numpy as np

from roomkit.qa.evaluate import (
    CurvePoint,
    GroundTruth,
    PlanScore,
    Summary,
    load_prediction,
    load_truth_dir,
    score_plan,
    threshold_curve,
)
from roomkit.plans.response import Detection

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

ImageLike = Union[str, Path, np.ndarray]

CONFIDENCE_CMAP = "RdYlGn"
_DISPLAY_MAX_SIDE = 1600  # plans are shown downsampled to this; polygons stay in image pixels
_MISS_COLOR = "#d62728"


# -- images ----------------------------------------------------------------------------------
def load_rgb(image: ImageLike) -> np.ndarray:
    """A plan as an H×W×3 RGB uint8 array, from a path (any format roomkit reads) or a BGR array.

    Arrays are taken in roomkit's (OpenCV's) BGR order, as :func:`roomkit.load_image` returns them;
    grey arrays are expanded.
    """
    if isinstance(image, (str, Path)):
        from roomkit.plans.imageio import load_image

        image = load_image(Path(image))
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[..., :3]
    if arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr[..., ::-1])


def _display(rgb: np.ndarray) -> np.ndarray:
    """Downsample for display (area averaging keeps thin walls visible)."""
    h, w = rgb.shape[:2]
    scale = _DISPLAY_MAX_SIDE / max(h, w)
    if scale >= 1.0:
        return rgb
    import cv2

    return cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def _new_axes(ax: "Axes | None", figsize: tuple[float, float]) -> tuple["Figure", "Axes"]:
    if ax is not None:
        return ax.figure, ax
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def _show_plan(ax: "Axes", rgb: np.ndarray) -> None:
    h, w = rgb.shape[:2]
    ax.imshow(_display(rgb), extent=(0, w, h, 0), interpolation="antialiased")
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.set_xticks([])
    ax.set_yticks([])


def _label_point(polygon: Sequence[Sequence[float]]) -> tuple[float, float]:
    from shapely.geometry import Polygon

    from roomkit.qa.evaluate import to_geometry

    geom = to_geometry(polygon)
    if geom.is_empty:
        pts = np.asarray(polygon, float)
        return float(pts[:, 0].mean()), float(pts[:, 1].mean())
    if geom.geom_type == "MultiPolygon":
        geom = max(geom.geoms, key=lambda g: g.area)
    point = geom.representative_point() if isinstance(geom, Polygon) else geom.centroid
    return float(point.x), float(point.y)


def _font_size(rgb: np.ndarray, n: int) -> float:
    return 9.0 if n < 15 else 7.0


# -- single panels -----------------------------------------------------------------------------
def plot_detection(
    image: ImageLike,
    detection: Detection | Mapping[str, Any] | None,
    *,
    ax: "Axes | None" = None,
    title: str | None = None,
    score: PlanScore | None = None,
    colorbar: bool = True,
    alpha: float = 0.35,
    numbers: bool = True,
    min_confidence: float = 0.0,
) -> "Axes":
    """Detected rooms over the plan: filled by confidence, numbered, with a colour bar.

    ``detection`` may be a :class:`Detection` or an API response dict (normalized coordinates).
    With ``score`` (from :func:`roomkit.qa.evaluate.score_plan`), false positives at IoU 0.5 get a red
    dashed edge. Rooms below ``min_confidence`` are drawn as faint outlines only.
    """
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.patches import Polygon as MplPolygon

    if isinstance(detection, Mapping):
        detection = Detection.from_response(detection)
    rgb = load_rgb(image)
    fig, ax = _new_axes(ax, (8, 8 * rgb.shape[0] / rgb.shape[1]))
    _show_plan(ax, rgb)
    cmap = colormaps[CONFIDENCE_CMAP]
    norm = Normalize(0.0, 1.0)
    matched = {m.pred_index for m in score.matches if m.iou >= 0.5} if score is not None else None
    rooms = detection.rooms if detection is not None else ()
    fs = _font_size(rgb, len(rooms))
    for i, room in enumerate(rooms):
        if len(room.polygon) < 3:
            continue
        color = cmap(norm(room.confidence))
        faint = room.confidence < min_confidence
        ax.add_patch(MplPolygon(np.asarray(room.polygon), closed=True, facecolor=color if not faint else "none",
                                alpha=alpha if not faint else 0.6, edgecolor="none"))
        false_positive = matched is not None and i not in matched
        ax.add_patch(MplPolygon(np.asarray(room.polygon), closed=True, fill=False,
                                edgecolor=_MISS_COLOR if false_positive else color,
                                linestyle="--" if (false_positive or faint) else "-",
                                linewidth=2.0 if false_positive else 1.4))
        if numbers:
            x, y = _label_point(room.polygon)
            ax.text(x, y, str(i + 1), ha="center", va="center", fontsize=fs, fontweight="bold",
                    color="black", bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "alpha": 0.8,
                                         "edgecolor": color})
    if colorbar:
        sm = ScalarMappable(norm=norm, cmap=cmap)
        fig.colorbar(sm, ax=ax, fraction=0.035, pad=0.01, label="confidence")
    if title is None:
        title = f"{len(rooms)} rooms detected"
        if score is not None:
            title += f" · F1@0.5 {score.f1(0.5):.2f}"
    ax.set_title(title, fontsize=10)
    return ax


def plot_truth(
    image: ImageLike,
    truth: GroundTruth | Sequence[Sequence[Sequence[float]]],
    *,
    ax: "Axes | None" = None,
    title: str | None = None,
    score: PlanScore | None = None,
    alpha: float = 0.35,
    labels: bool = True,
) -> "Axes":
    """Ground-truth rooms over the plan, numbered (and labelled); misses red-dashed given ``score``."""
    from matplotlib import colormaps
    from matplotlib.patches import Polygon as MplPolygon

    rgb = load_rgb(image)
    _, ax = _new_axes(ax, (8, 8 * rgb.shape[0] / rgb.shape[1]))
    _show_plan(ax, rgb)
    if isinstance(truth, GroundTruth):
        polys = [(r.polygon, r.label) for r in truth.rooms]
    else:
        polys = [(p, "") for p in truth]
    found = {m.truth_index for m in score.matches if m.iou >= 0.5} if score is not None else None
    palette = colormaps["tab20"]
    fs = _font_size(rgb, len(polys))
    for i, (poly, label) in enumerate(polys):
        color = palette(i % 20)
        ax.add_patch(MplPolygon(np.asarray(poly), closed=True, facecolor=color, alpha=alpha, edgecolor="none"))
        missed = found is not None and i not in found
        ax.add_patch(MplPolygon(np.asarray(poly), closed=True, fill=False,
                                edgecolor=_MISS_COLOR if missed else color, linestyle="--" if missed else "-",
                                linewidth=2.0 if missed else 1.4))
        x, y = _label_point(poly)
        text = f"{i + 1}" + (f" {label}" if labels and label else "")
        ax.text(x, y, text, ha="center", va="center", fontsize=fs - 1, color="black",
                bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "alpha": 0.75, "edgecolor": color})
    ax.set_title(title if title is not None else f"ground truth · {len(polys)} rooms", fontsize=10)
    return ax


def plot_comparison(
    image: ImageLike,
    detection: Detection | Mapping[str, Any] | None,
    truth: GroundTruth | None = None,
    *,
    name: str = "",
    score: PlanScore | None = None,
    figsize: tuple[float, float] | None = None,
) -> "Figure":
    """Detections (left) beside ground truth (right) with the plan's metrics in the title."""
    from matplotlib.figure import Figure

    if isinstance(detection, Mapping):
        detection = Detection.from_response(detection)
    rgb = load_rgb(image)
    if truth is not None and score is None and detection is not None:
        score = score_plan(detection, truth, name=name)
    panels = 2 if truth is not None else 1
    aspect = rgb.shape[0] / rgb.shape[1]
    if figsize is None:
        figsize = (6.5 * panels + 0.8, max(3.0, 6.5 * aspect) + 0.6)
    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(1, panels, squeeze=False)[0]
    plot_detection(rgb[..., ::-1], detection, ax=axes[0], score=score, colorbar=True)
    if truth is not None:
        plot_truth(rgb[..., ::-1], truth, ax=axes[1], score=score)
    heading = name or (truth.name if truth is not None else "")
    if score is not None:
        heading += "  —  " + _score_text(score)
    if heading:
        fig.suptitle(heading, fontsize=11)
    return fig


def _score_text(score: PlanScore) -> str:
    miou = "–" if score.mean_iou is None else f"{score.mean_iou:.3f}"
    return (f"P {score.precision(0.5):.2f}  R {score.recall(0.5):.2f}  F1@0.5 {score.f1(0.5):.2f}  "
            f"F1@0.75 {score.f1(0.75):.2f}  mIoU {miou}")


# -- many plans --------------------------------------------------------------------------------
@dataclass
class QAEntry:
    """One plan for galleries and reports: its image, detection, ground truth and score."""

    name: str
    image: ImageLike
    detection: Detection | None = None
    truth: GroundTruth | None = None
    score: PlanScore | None = None
    note: str = ""

    def scored(self) -> "QAEntry":
        """This entry with its score computed (when there is ground truth and a detection)."""
        if self.score is None and self.truth is not None:
            det = self.detection if self.detection is not None else Detection(self.truth.width, self.truth.height)
            self.score = score_plan(det, self.truth, name=self.name, note=self.note)
        return self


def build_entries(
    truth_dir: str | Path,
    detections: str | Path | Mapping[str, Detection | Mapping[str, Any]],
    *,
    image_dir: str | Path | None = None,
) -> list[QAEntry]:
    """QA entries for every ground-truth plan in ``truth_dir``.

    ``detections`` is a folder of ``<stem>.json`` API responses or a mapping ``stem → Detection``
    (or response dict). Images are looked up next to the ground truth unless ``image_dir`` is
    given. A plan without a detection is kept (as "missing prediction"), never dropped.
    """
    truths = load_truth_dir(truth_dir)
    image_dir = Path(image_dir) if image_dir is not None else Path(truth_dir)
    entries = []
    for stem, truth in truths.items():
        det: Detection | None = None
        note = ""
        if isinstance(detections, Mapping):
            found = detections.get(stem, detections.get(Path(truth.image).stem))
            if isinstance(found, Mapping):
                found = Detection.from_response(found)
            det = found
        else:
            path = Path(detections) / f"{stem}.json"
            if path.is_file():
                det, note = load_prediction(path)
                if note:
                    det = None
        if det is None and not note:
            note = "missing prediction"
        entries.append(QAEntry(name=stem, image=image_dir / truth.image, detection=det, truth=truth,
                               note=note).scored())
    return entries


def summary_of(entries: Iterable[QAEntry]) -> Summary:
    """The evaluation summary over the entries that have ground truth."""
    return Summary(tuple(e.scored().score for e in entries if e.scored().score is not None))


def plot_gallery(
    entries: Sequence[QAEntry],
    *,
    cols: int = 3,
    with_truth: bool = True,
    worst_first: bool = False,
    max_plans: int | None = None,
    panel_size: float = 4.0,
) -> "Figure":
    """A grid of plans with their detections (and ground truth beside each, when present)."""
    from matplotlib.figure import Figure

    items = [e.scored() for e in entries]
    if worst_first:
        items.sort(key=_badness)
    if max_plans is not None:
        items = items[:max_plans]
    if not items:
        fig = Figure(figsize=(4, 1))
        fig.text(0.5, 0.5, "no plans", ha="center", va="center")
        return fig
    per = 2 if with_truth and any(e.truth is not None for e in items) else 1
    cols = max(1, min(cols, len(items)))
    rows = -(-len(items) // cols)
    fig = Figure(figsize=(panel_size * per * cols, panel_size * rows + 0.5), layout="constrained")
    axes = fig.subplots(rows, cols * per, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for k, e in enumerate(items):
        r, c = divmod(k, cols)
        rgb = load_rgb(e.image)
        ax = axes[r][c * per]
        ax.set_axis_on()
        head = e.name + (f" · F1 {e.score.f1(0.5):.2f}" if e.score is not None else "")
        plot_detection(rgb[..., ::-1], e.detection, ax=ax, score=e.score, colorbar=False, title=head)
        if per == 2 and e.truth is not None:
            ax2 = axes[r][c * per + 1]
            ax2.set_axis_on()
            plot_truth(rgb[..., ::-1], e.truth, ax=ax2, score=e.score, labels=False,
                       title=f"truth · {len(e.truth.rooms)} rooms")
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    fig.colorbar(ScalarMappable(norm=Normalize(0, 1), cmap=colormaps[CONFIDENCE_CMAP]), ax=axes,
                 fraction=0.02, pad=0.01, label="confidence")
    return fig


def _badness(e: QAEntry) -> tuple:
    if e.score is None:
        return (2.0, 2.0, 2.0, e.name)
    miou = e.score.mean_iou
    return (e.score.f1(0.5), e.score.f1(0.75), -1.0 if miou is None else miou, e.name)


def metrics_rows(summary: Summary, *, worst_first: bool = True) -> list[dict[str, Any]]:
    """Per-plan metric rows (dicts of display values), worst first by default."""
    plans = summary.worst_first() if worst_first else list(summary.plans)
    rows = []
    for p in plans:
        rows.append({
            "plan": p.name,
            "style": p.style or "",
            "pred": p.n_pred,
            "truth": p.n_truth,
            # undefined ratios (nothing predicted / nothing to find) show as None, not as 1.0
            "P@0.5": round(p.precision(0.5), 3) if p.n_pred else None,
            "R@0.5": round(p.recall(0.5), 3) if p.n_truth else None,
            "F1@0.5": round(p.f1(0.5), 3),
            "F1@0.75": round(p.f1(0.75), 3),
            "mIoU": None if p.mean_iou is None else round(p.mean_iou, 3),
            "note": p.note,
        })
    return rows


def plot_metrics_table(
    summary: Summary, *, worst_first: bool = True, max_rows: int | None = 30, ax: "Axes | None" = None
) -> "Figure":
    """The per-plan metrics as a table figure (worst plans first), with the overall row last."""
    rows = metrics_rows(summary, worst_first=worst_first)
    if max_rows is not None:
        rows = rows[:max_rows]
    cols = ["plan", "pred", "truth", "P@0.5", "R@0.5", "F1@0.5", "F1@0.75", "mIoU"]
    cells = [[("–" if r[c] is None else r[c]) for c in cols] for r in rows]
    miou = summary.mean_iou
    cells.append(["ALL", summary.n_pred, summary.n_truth, round(summary.precision(0.5), 3),
                  round(summary.recall(0.5), 3), round(summary.f1(0.5), 3), round(summary.f1(0.75), 3),
                  "–" if miou is None else round(miou, 3)])
    fig, ax = _new_axes(ax, (9, 0.3 * (len(cells) + 1) + 0.4))
    ax.set_axis_off()
    table = ax.table(cellText=[[str(v) for v in row] for row in cells], colLabels=cols, loc="center",
                     cellLoc="center", bbox=(0.0, 0.0, 1.0, 1.0))
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    from matplotlib import colormaps

    cmap = colormaps[CONFIDENCE_CMAP]
    f1_col = cols.index("F1@0.5")
    for i, row in enumerate(cells, start=1):
        value = row[f1_col]
        if isinstance(value, (int, float)):
            table[i, f1_col].set_facecolor(cmap(float(value)))
    for j in range(len(cols)):
        table[len(cells), j].set_text_props(fontweight="bold")
    return fig


def plot_threshold_curve(
    curve: Sequence[CurvePoint], *, ax: "Axes | None" = None, title: str | None = None
) -> "Figure":
    """Precision, recall and F1 (at IoU 0.5) against the confidence threshold."""
    fig, ax = _new_axes(ax, (6, 4))
    t = [c.threshold for c in curve]
    # with no room left above a threshold precision is undefined: leave a gap, not a 1.0 spike
    ax.plot(t, [c.precision if c.n_pred else float("nan") for c in curve], marker="o", ms=3, label="precision")
    ax.plot(t, [c.recall for c in curve], marker="o", ms=3, label="recall")
    ax.plot(t, [c.f1 for c in curve], marker="o", ms=3, label="F1", linewidth=2)
    if curve:
        best = max(curve, key=lambda c: (c.f1, -c.threshold))
        ax.axvline(best.threshold, color="grey", linestyle=":", linewidth=1)
        ax.annotate(f"best F1 {best.f1:.3f} @ {best.threshold:.2f}", (best.threshold, best.f1),
                    textcoords="offset points", xytext=(6, -14), fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("confidence threshold")
    ax.set_ylabel("score")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    ax.set_title(title or "confidence threshold (IoU ≥ 0.5)", fontsize=10)
    return fig


# -- files -------------------------------------------------------------------------------------
def save_figure(fig: "Figure", path: str | Path, *, dpi: int = 100) -> Path:
    """Write a figure to PNG (or any format matplotlib knows from the suffix); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path


def figure_png(fig: "Figure", *, dpi: int = 80) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def save_overlay(
    image: ImageLike,
    detection: Detection | Mapping[str, Any] | None,
    path: str | Path,
    *,
    truth: GroundTruth | None = None,
    name: str = "",
    dpi: int = 100,
) -> Path:
    """Detections (beside ground truth when given) rendered to a PNG file."""
    return save_figure(plot_comparison(image, detection, truth, name=name), path, dpi=dpi)


def write_report(
    entries: Sequence[QAEntry],
    path: str | Path,
    *,
    title: str = "roomkit visual QA",
    curve: bool = True,
    max_images: int | None = None,
    dpi: int = 70,
) -> Path:
    """A self-contained HTML QA report: summary, the worst plans first, images embedded (base64).

    Sections: overall metrics, per-style metrics, the confidence-threshold curve, the per-plan
    table (worst first, each row linking to its figure) and one detection-vs-truth figure per plan
    (``max_images`` limits them to the worst N). Opens in any browser with no other files.
    """
    path = Path(path)
    items = [e.scored() for e in entries]
    items.sort(key=_badness)
    summary = Summary(tuple(e.score for e in items if e.score is not None))
    esc = html.escape
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{esc(title)}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:24px;color:#222}"
        "table{border-collapse:collapse;font-size:13px;margin:8px 0 20px}"
        "th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f2f2f2}"
        "td:first-child,th:first-child{text-align:left}.bad{background:#fde0dc}.ok{background:#e6f4ea}"
        "figure{margin:16px 0 28px}img{max-width:100%;border:1px solid #ddd}"
        "code{background:#f5f5f5;padding:1px 4px}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f"<p>{len(items)} plans · generated {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}</p>",
    ]
    if summary.plans:
        o = summary.overall_dict()
        parts.append("<h2>Overall</h2><table id='overall'><tr>" + "".join(
            f"<th>{esc(k)}</th>" for k in o) + "</tr><tr>" + "".join(
            f"<td>{esc(_fmt(v))}</td>" for v in o.values()) + "</tr></table>")
        parts.append(f"<p><code>{esc(summary.line())}</code></p>")
        styles = summary.by_style()
        if len(styles) > 1:
            parts.append("<h2>By style</h2><table id='by-style'><tr><th>style</th><th>plans</th><th>P@0.5</th>"
                         "<th>R@0.5</th><th>F1@0.5</th><th>mIoU</th></tr>")
            for name, s in styles.items():
                parts.append(f"<tr><td>{esc(name)}</td><td>{s.n_plans}</td><td>{s.precision(0.5):.3f}</td>"
                             f"<td>{s.recall(0.5):.3f}</td><td>{s.f1(0.5):.3f}</td>"
                             f"<td>{esc(_fmt(s.mean_iou))}</td></tr>")
            parts.append("</table>")
        if curve:
            pairs = [(e.detection or Detection(e.truth.width, e.truth.height), e.truth)
                     for e in items if e.truth is not None]
            fig = plot_threshold_curve(threshold_curve(pairs))
            parts.append("<h2>Confidence threshold</h2>" + _img(figure_png(fig, dpi=dpi), "threshold curve"))
    parts.append("<h2>Plans, worst first</h2><table id='plans'><tr><th>plan</th><th>style</th><th>pred</th>"
                 "<th>truth</th><th>P@0.5</th><th>R@0.5</th><th>F1@0.5</th><th>F1@0.75</th><th>mIoU</th>"
                 "<th>note</th></tr>")
    for k, e in enumerate(items):
        anchor = f"plan-{k}"
        if e.score is None:
            n_pred = len(e.detection.rooms) if e.detection is not None else 0
            parts.append(f"<tr><td><a href='#{anchor}'>{esc(e.name)}</a></td><td></td><td>{n_pred}</td>"
                         + "<td>–</td>" * 6 + f"<td>{esc(e.note or 'no ground truth')}</td></tr>")
            continue
        s = e.score
        cls = "bad" if s.f1(0.5) < 0.8 else "ok"
        parts.append(
            f"<tr class='{cls}'><td><a href='#{anchor}'>{esc(e.name)}</a></td><td>{esc(s.style or '')}</td>"
            f"<td>{s.n_pred}</td><td>{s.n_truth}</td>"
            f"<td>{_fmt(s.precision(0.5) if s.n_pred else None)}</td><td>{_fmt(s.recall(0.5) if s.n_truth else None)}</td>"
            f"<td>{s.f1(0.5):.3f}</td><td>{s.f1(0.75):.3f}</td><td>{esc(_fmt(s.mean_iou))}</td>"
            f"<td>{esc(s.note)}</td></tr>")
    parts.append("</table>")
    shown = items if max_images is None else items[:max_images]
    if shown:
        parts.append("<h2>Detections beside ground truth</h2>"
                     "<p>Left: detected rooms coloured by confidence (red dashed: no match at IoU 0.5). "
                     "Right: ground truth (red dashed: missed).</p>")
    for k, e in enumerate(shown):
        fig = plot_comparison(e.image, e.detection, e.truth, name=e.name, score=e.score)
        parts.append(f"<figure id='plan-{k}'>" + _img(figure_png(fig, dpi=dpi), e.name)
                     + f"<figcaption>{esc(e.name)}</figcaption></figure>")
    parts.append("</body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def _img(png: bytes, alt: str) -> str:
    return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{base64.b64encode(png).decode('ascii')}'>"


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def report_json(entries: Sequence[QAEntry]) -> str:
    """The report's numbers as JSON (the evaluation summary of the entries)."""
    return json.dumps(summary_of(entries).to_dict(include_matches=False), indent=2)
