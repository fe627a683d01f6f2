"""Scoring detected rooms against ground truth: polygon IoU, one-to-one matching, P/R/F1.

The yardstick every detector change is measured with. A predicted room counts as a true
positive at threshold ``t`` when it is matched one-to-one to a ground-truth room with polygon
IoU ≥ ``t``. Matching is greedy by descending IoU over all overlapping pairs: for the IoU ≥ 0.5
thresholds reported here this equals the optimal assignment whenever ground-truth rooms do not
overlap one another (a room can then share IoU > 0.5 with at most one disjoint partner), and it
is deterministic and cheap.

Conventions, chosen so that tables read naturally:

* precision with no predictions is 1.0 (nothing wrong was claimed), recall with no ground
  truth is 1.0 (nothing was missed); F1 is ``2·TP / (2·TP + FP + FN)`` and 1.0 when a plan has
  neither rooms nor predictions (a blank page answered with nothing is perfect);
* ``mean_iou`` is the mean IoU of the matches at IoU ≥ 0.5 (the true positives), ``None``
  when there are none;
* overall figures pool true/false positives over all plans (micro-average); the mean of the
  per-plan F1 is reported beside them as ``macro_f1``.

Polygons are in pixels. Invalid polygons (self-intersecting, repeated points) are repaired with
``shapely.make_valid`` and only their areal part is kept; polygons with fewer than three distinct
points have zero area and never match.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence, Union

import numpy as np
import shapely
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

from roomkit.errors import InputError
from roomkit.plans.response import Detection, Room

IOU_THRESHOLDS: tuple[float, float] = (0.5, 0.75)

PolygonLike = Sequence[Sequence[float]]


class GroundTruthError(InputError):
    """A ground-truth file is missing, unreadable or not in the documented shape."""

    code = "invalid_ground_truth"


# -- ground truth ----------------------------------------------------------------------------
@dataclass(frozen=True)
class TruthRoom:
    """One ground-truth room: its interior face in pixel coordinates."""

    id: str
    label: str
    polygon: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class GroundTruth:
    """The ground truth of one plan, as stored next to its image in ``data/samples/``."""

    image: str
    width: int
    height: int
    rooms: tuple[TruthRoom, ...] = ()
    style: str | None = None
    name: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, name: str = "") -> "GroundTruth":
        """Validate and parse ``{"image","width","height","rooms":[{"id","label","polygon"}]}``."""
        where = f"ground truth {name!r}" if name else "ground truth"
        if not isinstance(data, Mapping):
            raise GroundTruthError(f"{where} must be a JSON object, got {type(data).__name__}")
        missing = [k for k in ("image", "width", "height", "rooms") if k not in data]
        if missing:
            raise GroundTruthError(f"{where} lacks key(s): {', '.join(missing)}")
        try:
            width, height = int(data["width"]), int(data["height"])
        except (TypeError, ValueError):
            raise GroundTruthError(f"{where}: width and height must be integers") from None
        if width <= 0 or height <= 0:
            raise GroundTruthError(f"{where}: width and height must be positive")
        if not isinstance(data["rooms"], list):
            raise GroundTruthError(f"{where}: 'rooms' must be a list")
        rooms = []
        for i, room in enumerate(data["rooms"]):
            if not isinstance(room, Mapping) or "polygon" not in room:
                raise GroundTruthError(f"{where}: room {i} must be an object with a 'polygon'")
            try:
                poly = tuple((float(p[0]), float(p[1])) for p in room["polygon"])
            except (TypeError, ValueError, IndexError):
                raise GroundTruthError(f"{where}: room {i} polygon must be a list of [x, y]") from None
            if len(poly) < 3:
                raise GroundTruthError(f"{where}: room {i} polygon has fewer than 3 points")
            rooms.append(
                TruthRoom(id=str(room.get("id", f"r{i}")), label=str(room.get("label", "")), polygon=poly)
            )
        style = data.get("style")
        return cls(
            image=str(data["image"]),
            width=width,
            height=height,
            rooms=tuple(rooms),
            style=None if style is None else str(style),
            name=name or Path(str(data["image"])).stem,
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"image": self.image, "width": self.width, "height": self.height}
        if self.style is not None:
            out["style"] = self.style
        out["rooms"] = [
            {"id": r.id, "label": r.label, "polygon": [[round(x, 2), round(y, 2)] for x, y in r.polygon]}
            for r in self.rooms
        ]
        return out


def load_truth(path: str | Path) -> GroundTruth:
    """Read one ground-truth JSON file; its name (for tables) is the file's stem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise GroundTruthError(f"cannot read ground truth {path}: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GroundTruthError(f"{path} is not valid JSON: {exc}") from exc
    return GroundTruth.from_dict(data, name=path.stem)


def load_truth_dir(directory: str | Path) -> dict[str, GroundTruth]:
    """All ground-truth JSON files of a folder, by stem, in sorted order."""
    directory = Path(directory)
    if not directory.is_dir():
        raise GroundTruthError(f"ground-truth folder {directory} does not exist")
    return {p.stem: load_truth(p) for p in sorted(directory.glob("*.json"))}


# -- geometry --------------------------------------------------------------------------------
def to_geometry(polygon: PolygonLike | BaseGeometry) -> BaseGeometry:
    """A valid areal shapely geometry for a pixel polygon (repaired if needed; may be empty)."""
    if isinstance(polygon, BaseGeometry):
        geom = polygon
    else:
        pts = [(float(p[0]), float(p[1])) for p in polygon]
        if len(pts) < 3:
            return Polygon()
        geom = Polygon(pts)
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
        # keep only the areal part (make_valid may add lines/points for degenerate spikes)
        geom = geom.buffer(0)
    if geom.geom_type not in ("Polygon", "MultiPolygon"):
        geom = geom.buffer(0)
    return geom


def polygon_iou(a: PolygonLike | BaseGeometry, b: PolygonLike | BaseGeometry) -> float:
    """Intersection over union of two pixel polygons (0.0 when either has no area)."""
    ga, gb = to_geometry(a), to_geometry(b)
    return float(_iou_arrays(np.array([ga]), np.array([gb]))[0, 0])


def _iou_arrays(preds: np.ndarray, truths: np.ndarray) -> np.ndarray:
    """IoU matrix (len(preds) × len(truths)); only bbox-overlapping pairs are intersected."""
    iou = np.zeros((len(preds), len(truths)), dtype=float)
    if len(preds) == 0 or len(truths) == 0:
        return iou
    tree = shapely.STRtree(truths)
    pi, ti = tree.query(preds, predicate="intersects")
    if len(pi) == 0:
        return iou
    inter = shapely.area(shapely.intersection(preds[pi], truths[ti]))
    area_p = shapely.area(preds)
    area_t = shapely.area(truths)
    union = area_p[pi] + area_t[ti] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where(union > 0, inter / union, 0.0)
    iou[pi, ti] = np.clip(values, 0.0, 1.0)
    return iou


def iou_matrix(preds: Sequence[PolygonLike], truths: Sequence[PolygonLike]) -> np.ndarray:
    """Pairwise polygon IoU between two lists of pixel polygons."""
    p = np.array([to_geometry(x) for x in preds], dtype=object)
    t = np.array([to_geometry(x) for x in truths], dtype=object)
    return _iou_arrays(p, t)


def greedy_match(iou: np.ndarray, *, min_iou: float = 0.0) -> list[tuple[int, int, float]]:
    """One-to-one matching by descending IoU: ``[(pred_index, truth_index, iou)]``.

    Only pairs with IoU > ``min_iou`` are considered. Ties break by (pred, truth) index, so the
    result is deterministic.
    """
    if iou.size == 0:
        return []
    pi, ti = np.nonzero(iou > min_iou)
    if len(pi) == 0:
        return []
    vals = iou[pi, ti]
    order = np.lexsort((ti, pi, -vals))
    used_p: set[int] = set()
    used_t: set[int] = set()
    out = []
    for k in order:
        p, t = int(pi[k]), int(ti[k])
        if p in used_p or t in used_t:
            continue
        used_p.add(p)
        used_t.add(t)
        out.append((p, t, float(vals[k])))
    return out


# -- inputs ----------------------------------------------------------------------------------
Predictions = Union[Detection, Sequence[Room], Sequence[PolygonLike]]
Truth = Union[GroundTruth, Detection, Sequence[TruthRoom], Sequence[PolygonLike]]


def _pred_polys(pred: Predictions) -> tuple[list[PolygonLike], list[float], list[str]]:
    if isinstance(pred, Detection):
        rooms: Sequence[Any] = pred.rooms
    else:
        rooms = list(pred)
    polys, confs, ids = [], [], []
    for i, r in enumerate(rooms):
        if isinstance(r, Room):
            polys.append(r.polygon)
            confs.append(float(r.confidence))
            ids.append(r.id)
        else:
            polys.append(r)
            confs.append(1.0)
            ids.append(f"p{i}")
    return polys, confs, ids


def _truth_polys(truth: Truth) -> tuple[list[PolygonLike], list[str]]:
    if isinstance(truth, (GroundTruth, Detection)):
        rooms: Sequence[Any] = truth.rooms
    else:
        rooms = list(truth)
    polys, ids = [], []
    for i, r in enumerate(rooms):
        if isinstance(r, (TruthRoom, Room)):
            polys.append(r.polygon)
            ids.append(r.id)
        else:
            polys.append(r)
            ids.append(f"t{i}")
    return polys, ids


# -- results ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Match:
    """A predicted room paired with a ground-truth room."""

    pred_index: int
    truth_index: int
    iou: float
    pred_id: str = ""
    truth_id: str = ""
    confidence: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "pred_id": self.pred_id,
            "truth_id": self.truth_id,
            "iou": round(self.iou, 4),
            "confidence": round(self.confidence, 4),
        }


def _ratio(num: float, den: float) -> float:
    return num / den if den else 1.0


def _f1(tp: int, n_pred: int, n_truth: int) -> float:
    den = n_pred + n_truth  # 2TP + FP + FN
    return 2.0 * tp / den if den else 1.0


@dataclass(frozen=True)
class PlanScore:
    """How one plan scored. ``matches`` holds every greedy pair with IoU > 0."""

    name: str
    n_pred: int
    n_truth: int
    matches: tuple[Match, ...] = ()
    style: str | None = None
    note: str = ""  # e.g. "missing prediction", "error response"

    def tp(self, iou: float = 0.5) -> int:
        return sum(1 for m in self.matches if m.iou >= iou)

    def precision(self, iou: float = 0.5) -> float:
        return _ratio(self.tp(iou), self.n_pred)

    def recall(self, iou: float = 0.5) -> float:
        return _ratio(self.tp(iou), self.n_truth)

    def f1(self, iou: float = 0.5) -> float:
        return _f1(self.tp(iou), self.n_pred, self.n_truth)

    @property
    def matched_ious(self) -> tuple[float, ...]:
        """IoUs of the true positives at IoU ≥ 0.5."""
        return tuple(m.iou for m in self.matches if m.iou >= IOU_THRESHOLDS[0])

    @property
    def mean_iou(self) -> float | None:
        ious = self.matched_ious
        return float(np.mean(ious)) if ious else None

    def to_dict(self, *, include_matches: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.style is not None:
            out["style"] = self.style
        out.update({"n_pred": self.n_pred, "n_truth": self.n_truth})
        for t in IOU_THRESHOLDS:
            key = _tkey(t)
            out[f"tp@{key}"] = self.tp(t)
            out[f"precision@{key}"] = round(self.precision(t), 4)
            out[f"recall@{key}"] = round(self.recall(t), 4)
            out[f"f1@{key}"] = round(self.f1(t), 4)
        miou = self.mean_iou
        out["mean_iou"] = None if miou is None else round(miou, 4)
        if self.note:
            out["note"] = self.note
        if include_matches:
            out["matches"] = [m.to_dict() for m in self.matches]
        return out


def _tkey(t: float) -> str:
    return f"{t:g}"


@dataclass(frozen=True)
class Summary:
    """Per-plan scores and the pooled (micro-averaged) figures over all of them."""

    plans: tuple[PlanScore, ...] = field(default_factory=tuple)

    @property
    def n_plans(self) -> int:
        return len(self.plans)

    @property
    def n_pred(self) -> int:
        return sum(p.n_pred for p in self.plans)

    @property
    def n_truth(self) -> int:
        return sum(p.n_truth for p in self.plans)

    def tp(self, iou: float = 0.5) -> int:
        return sum(p.tp(iou) for p in self.plans)

    def precision(self, iou: float = 0.5) -> float:
        return _ratio(self.tp(iou), self.n_pred)

    def recall(self, iou: float = 0.5) -> float:
        return _ratio(self.tp(iou), self.n_truth)

    def f1(self, iou: float = 0.5) -> float:
        return _f1(self.tp(iou), self.n_pred, self.n_truth)

    def macro_f1(self, iou: float = 0.5) -> float | None:
        return float(np.mean([p.f1(iou) for p in self.plans])) if self.plans else None

    @property
    def mean_iou(self) -> float | None:
        ious = [v for p in self.plans for v in p.matched_ious]
        return float(np.mean(ious)) if ious else None

    def worst_first(self) -> list[PlanScore]:
        """Plans ordered worst first: by F1@0.5, then F1@0.75, then mean IoU, then name."""
        return sorted(
            self.plans,
            key=lambda p: (p.f1(0.5), p.f1(0.75), -1.0 if p.mean_iou is None else p.mean_iou, p.name),
        )

    def by_style(self) -> dict[str, "Summary"]:
        """One summary per ``style`` (plans without a style go under ``"-"``)."""
        groups: dict[str, list[PlanScore]] = {}
        for p in self.plans:
            groups.setdefault(p.style or "-", []).append(p)
        return {k: Summary(tuple(v)) for k, v in sorted(groups.items())}

    def overall_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"plans": self.n_plans, "n_pred": self.n_pred, "n_truth": self.n_truth}
        for t in IOU_THRESHOLDS:
            key = _tkey(t)
            out[f"tp@{key}"] = self.tp(t)
            out[f"precision@{key}"] = round(self.precision(t), 4)
            out[f"recall@{key}"] = round(self.recall(t), 4)
            out[f"f1@{key}"] = round(self.f1(t), 4)
        macro = self.macro_f1(0.5)
        out["macro_f1@0.5"] = None if macro is None else round(macro, 4)
        miou = self.mean_iou
        out["mean_iou"] = None if miou is None else round(miou, 4)
        return out

    def to_dict(self, *, include_matches: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"overall": self.overall_dict()}
        styles = self.by_style()
        if len(styles) > 1 or "-" not in styles:
            out["by_style"] = {k: v.overall_dict() for k, v in styles.items()}
        out["plans"] = [p.to_dict(include_matches=include_matches) for p in self.plans]
        return out

    def line(self) -> str:
        """The one-line summary: ``F1@0.5=… P=… R=… mIoU=… plans=…``."""
        miou = self.mean_iou
        return (
            f"F1@0.5={self.f1(0.5):.3f} P={self.precision(0.5):.3f} R={self.recall(0.5):.3f} "
            f"mIoU={'n/a' if miou is None else f'{miou:.3f}'} plans={self.n_plans}"
        )


# -- scoring ---------------------------------------------------------------------------------
def score_plan(
    pred: Predictions,
    truth: Truth,
    *,
    name: str = "",
    style: str | None = None,
    min_confidence: float | None = None,
    note: str = "",
) -> PlanScore:
    """Match one plan's predicted rooms to its ground truth and score them.

    ``pred`` is a :class:`Detection` (pixel polygons), a list of :class:`Room`, or raw pixel
    polygons; ``truth`` a :class:`GroundTruth`, a Detection, or raw polygons. With
    ``min_confidence``, predictions below it are dropped first.
    """
    p_polys, confs, p_ids = _pred_polys(pred)
    if min_confidence is not None:
        keep = [i for i, c in enumerate(confs) if c >= min_confidence]
        p_polys = [p_polys[i] for i in keep]
        confs = [confs[i] for i in keep]
        p_ids = [p_ids[i] for i in keep]
    t_polys, t_ids = _truth_polys(truth)
    if isinstance(truth, GroundTruth):
        name = name or truth.name or Path(truth.image).stem
        style = style if style is not None else truth.style
    iou = iou_matrix(p_polys, t_polys)
    matches = tuple(
        Match(pred_index=p, truth_index=t, iou=v, pred_id=p_ids[p], truth_id=t_ids[t], confidence=confs[p])
        for p, t, v in greedy_match(iou)
    )
    return PlanScore(
        name=name, n_pred=len(p_polys), n_truth=len(t_polys), matches=matches, style=style, note=note
    )


def summarize(scores: Iterable[PlanScore]) -> Summary:
    return Summary(tuple(scores))


def evaluate(
    pairs: Iterable[tuple[Predictions, Truth]] | Mapping[str, tuple[Predictions, Truth]],
    *,
    min_confidence: float | None = None,
) -> Summary:
    """Score many plans: ``{name: (pred, truth)}`` or an iterable of ``(pred, truth)``."""
    if isinstance(pairs, Mapping):
        items = list(pairs.items())
    else:
        items = [("", pt) for pt in pairs]
    scores = []
    for i, (name, (pred, truth)) in enumerate(items):
        if not name and not isinstance(truth, GroundTruth):
            name = f"plan_{i + 1:03d}"
        scores.append(score_plan(pred, truth, name=name, min_confidence=min_confidence))
    return Summary(tuple(scores))


def load_prediction(path: str | Path) -> tuple[Detection, str]:
    """Read an API response JSON into a Detection; ``note`` says if it was an error response."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read prediction {path}: {exc}") from exc
    if not isinstance(data, Mapping):
        raise InputError(f"prediction {path} must be a JSON object")
    if data.get("status") == "error":
        message = ""
        if isinstance(data.get("error"), Mapping):
            message = str(data["error"].get("message", ""))
        return Detection(width=1, height=1, status="error"), f"error response: {message}".strip()
    try:
        return Detection.from_response(data), ""
    except (KeyError, TypeError, ValueError, IndexError, ZeroDivisionError) as exc:
        raise InputError(f"prediction {path} is not a roomkit response: {exc!r}") from exc


def evaluate_dirs(
    truth_dir: str | Path, pred_dir: str | Path, *, min_confidence: float | None = None
) -> Summary:
    """Score ``pred_dir/<stem>.json`` (or ``.out``; API responses) against ``truth_dir/<stem>.json``.

    Every ground-truth plan is scored; a missing or error prediction counts as "no rooms found"
    and is noted on its row, so a crashed job lowers recall instead of vanishing from the table.
    Predictions are matched by the ground-truth file's stem, else by its image's stem.
    """
    truths = load_truth_dir(truth_dir)
    if not truths:
        raise GroundTruthError(f"no ground-truth *.json files in {truth_dir}")
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise InputError(f"prediction folder {pred_dir} does not exist")
    scores = []
    for stem, truth in truths.items():
        # <stem>.json as `roomkit detect` writes, or <stem>.out as SageMaker async output objects
        candidates = [pred_dir / f"{s}{ext}" for ext in (".json", ".out") for s in (stem, Path(truth.image).stem)]
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            det, note = Detection(width=truth.width, height=truth.height), "missing prediction"
        else:
            det, note = load_prediction(path)
            if not note and (det.width, det.height) != (truth.width, truth.height):
                # Normalized coordinates were computed on another size: rescale to the truth grid.
                sx, sy = truth.width / det.width, truth.height / det.height
                note = f"size {det.width}x{det.height} differs from truth; rescaled"
                det = Detection(
                    width=truth.width,
                    height=truth.height,
                    rooms=tuple(
                        Room(r.id, tuple((x * sx, y * sy) for x, y in r.polygon), r.area_px, r.confidence)
                        for r in det.rooms
                    ),
                    processing_time_ms=det.processing_time_ms,
                )
        scores.append(score_plan(det, truth, name=stem, min_confidence=min_confidence, note=note))
    return Summary(tuple(scores))


# -- confidence threshold curve ----------------------------------------------------------------
@dataclass(frozen=True)
class CurvePoint:
    threshold: float
    precision: float
    recall: float
    f1: float
    n_pred: int
    tp: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "threshold": round(self.threshold, 4),
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
            "n_pred": self.n_pred,
            "tp": self.tp,
        }


def threshold_curve(
    pairs: Iterable[tuple[Predictions, Truth]] | Mapping[str, tuple[Predictions, Truth]],
    *,
    thresholds: Sequence[float] | None = None,
    iou: float = 0.5,
) -> list[CurvePoint]:
    """Pooled precision, recall and F1 at IoU ``iou`` as the confidence threshold rises.

    Rooms below each threshold are dropped and the rest re-matched (IoU is computed once per
    plan). ``thresholds`` defaults to 0.0…1.0 in steps of 0.05.
    """
    items = list(pairs.values()) if isinstance(pairs, Mapping) else list(pairs)
    ths = np.round(np.linspace(0.0, 1.0, 21), 4) if thresholds is None else np.asarray(thresholds, float)
    prepared = []
    for pred, truth in items:
        p_polys, confs, _ = _pred_polys(pred)
        t_polys, _ = _truth_polys(truth)
        prepared.append((iou_matrix(p_polys, t_polys), np.asarray(confs, float), len(t_polys)))
    points = []
    for th in ths:
        tp = n_pred = n_truth = 0
        for m, confs, nt in prepared:
            keep = np.nonzero(confs >= th)[0]
            n_pred += len(keep)
            n_truth += nt
            if len(keep) and nt:
                tp += sum(1 for _, _, v in greedy_match(m[keep]) if v >= iou)
        points.append(
            CurvePoint(
                threshold=float(th),
                precision=_ratio(tp, n_pred),
                recall=_ratio(tp, n_truth),
                f1=_f1(tp, n_pred, n_truth),
                n_pred=n_pred,
                tp=tp,
            )
        )
    return points


@dataclass(frozen=True)
class LabelRecall:
    """How many ground-truth rooms of one label were found (matched at IoU ≥ ``iou``)."""

    label: str
    found: int
    total: int

    @property
    def recall(self) -> float:
        return _ratio(self.found, self.total)


def recall_by_label(
    pairs: Iterable[tuple[PlanScore, GroundTruth]], *, iou: float = 0.5
) -> list[LabelRecall]:
    """Recall per room label (``closet``, ``bathroom``…) over scored plans, most rooms first.

    ``pairs``: each plan's score with the ground truth it was scored against, so that a
    match's ``truth_index`` names the room. Tells which kinds of rooms a detector misses.
    """
    found: dict[str, int] = {}
    total: dict[str, int] = {}
    for score, truth in pairs:
        hit = {m.truth_index for m in score.matches if m.iou >= iou}
        for i, room in enumerate(truth.rooms):
            label = room.label or "?"
            total[label] = total.get(label, 0) + 1
            found[label] = found.get(label, 0) + (i in hit)
    return [LabelRecall(k, found[k], total[k]) for k in sorted(total, key=lambda k: (-total[k], k))]


# -- text table ------------------------------------------------------------------------------
def format_table(summary: Summary, *, worst_first: bool = False) -> str:
    """A fixed-width per-plan table (the CLI's and the demo's)."""
    plans = summary.worst_first() if worst_first else list(summary.plans)
    width = max([len("plan")] + [len(p.name) for p in plans])
    head = f"{'plan':<{width}}  {'pred':>4} {'true':>4} {'P@.5':>6} {'R@.5':>6} {'F1@.5':>6} {'F1@.75':>6} {'mIoU':>6}"
    lines = [head, "-" * len(head)]
    for p in plans:
        miou = "-" if p.mean_iou is None else f"{p.mean_iou:.3f}"
        # a ratio with nothing to count (no predictions / no rooms) shows as "-"
        prec = f"{p.precision(0.5):.3f}" if p.n_pred else "-"
        rec = f"{p.recall(0.5):.3f}" if p.n_truth else "-"
        row = (
            f"{p.name:<{width}}  {p.n_pred:>4} {p.n_truth:>4} {prec:>6} "
            f"{rec:>6} {p.f1(0.5):>6.3f} {p.f1(0.75):>6.3f} {miou:>6}"
        )
        if p.note:
            row += f"  ({p.note})"
        lines.append(row)
    return "\n".join(lines)

