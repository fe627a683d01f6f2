"""Sample plans with their ground truth: load them, detect and score them, and compare
detector configs on them (notebook 01's tuning, notebook 05's QA entries).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence
from roomkit.errors import ConfigError

__all__ = ["find_samples", "samples_dir", "Sample", "load_samples", "PlanRun", "detect_samples", "room_count_table", "score", "ConfigComparison", "compare_configs", "changed_plans", "most_changed", "change_summary", "compare_entries", "qa_entries", "curve_of"]


SAMPLES_RELATIVE = Path("data") / "samples"


def find_samples(explicit: Path | None = None) -> Path:
    """``explicit``, else ``./data/samples``, else ``data/samples`` of the checkout holding roomkit."""
    from roomkit.errors import InputError

    if explicit is not None:
        if not explicit.is_dir():
            raise InputError(f"samples folder {explicit} does not exist")
        return explicit
    import roomkit

    candidates = [Path.cwd() / SAMPLES_RELATIVE]
    package_dir = Path(roomkit.__file__).resolve().parent  # <repo>/lib/roomkit
    candidates += [parent / SAMPLES_RELATIVE for parent in package_dir.parents[:3]]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise InputError(
        "cannot find the sample plans (looked in "
        + ", ".join(str(c) for c in dict.fromkeys(candidates))
        + "); pass --samples DIR"
    )


def samples_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """``path``, else ``data/samples`` of the checkout (see ``roomkit demo --samples``)."""
    return find_samples(Path(path).expanduser() if path else None).resolve()


@dataclass(frozen=True)
class Sample:
    """One plan image and, when a ``<stem>.json`` lies beside it, its ground truth."""

    name: str
    path: Path
    truth: Any = None  # roomkit.qa.evaluate.GroundTruth | None


def load_samples(directory: str | os.PathLike[str] | None = None,
                 names: Sequence[str] | None = None) -> list[Sample]:
    """The plans of ``directory`` (default: the repository's samples), sorted by name.

    ``names`` keeps only those stems, in the order given; an unknown name is an error that
    lists the ones available.
    """
    from roomkit.cli.detect import expand_paths
    from roomkit.qa.evaluate import load_truth
    from roomkit.errors import InputError

    folder = samples_dir(directory)
    files, _ = expand_paths([folder])
    by_name = {f.stem: f for f in files}
    if names is not None:
        missing = [n for n in names if n not in by_name]
        if missing:
            raise InputError(f"no sample named {', '.join(missing)} in {folder} "
                             f"(have: {', '.join(sorted(by_name))})")
        files = [by_name[n] for n in names]
    samples = []
    for f in files:
        truth_path = f.with_suffix(".json")
        samples.append(Sample(f.stem, f, load_truth(truth_path) if truth_path.is_file() else None))
    if not samples:
        raise InputError(f"no plan images in {folder}")
    return samples


@dataclass
class PlanRun:
    """The detector's answer for one sample (or why there is none)."""

    sample: Sample
    detection: Any = None  # roomkit.plans.response.Detection
    image: Any = None  # decoded BGR array, kept for drawing when asked
    error: str | None = None

    @property
    def name(self) -> str:
        return self.sample.name


def detect_samples(samples: Iterable[Sample], config: Any = None, *, keep_images: bool = False) -> list[PlanRun]:
    """Run :func:`roomkit.detect_rooms` on each sample in this process (errors are recorded)."""
    from roomkit.cli.detect import detect_file
    from roomkit.detector.config import DetectorConfig

    config = config if config is not None else DetectorConfig()
    if isinstance(config, Mapping):
        config = DetectorConfig.from_dict(config)
    runs = []
    for sample in samples:
        result = detect_file(sample.path, config, keep_image=keep_images)
        runs.append(PlanRun(sample, result.detection, result.image, result.error))
    return runs


def room_count_table(runs: Sequence[PlanRun]) -> str:
    """``plan  rooms  truth`` per plan: deterministic text (no timings), fit for nbval."""
    width = max([len("plan")] + [len(r.name) for r in runs])
    lines = [f"{'plan':<{width}}  {'rooms':>5}  {'truth':>5}", "-" * (width + 14)]
    for r in runs:
        truth = "-" if r.sample.truth is None else str(len(r.sample.truth.rooms))
        found = "error" if r.detection is None else str(len(r.detection.rooms))
        line = f"{r.name:<{width}}  {found:>5}  {truth:>5}"
        if r.error:
            line += f"  ({r.error})"
        lines.append(line)
    total = sum(len(r.detection.rooms) for r in runs if r.detection is not None)
    truth_total = sum(len(r.sample.truth.rooms) for r in runs if r.sample.truth is not None)
    lines.append("-" * (width + 14))
    lines.append(f"{'total':<{width}}  {total:>5}  {truth_total:>5}")
    return "\n".join(lines)


def score(runs: Sequence[PlanRun]) -> Any:
    from roomkit.qa.evaluate import Summary, score_plan
    from roomkit.plans.response import Detection

    scores = []
    for r in runs:
        if r.sample.truth is None:
            continue
        det = r.detection if r.detection is not None else Detection(width=r.sample.truth.width,
                                                                    height=r.sample.truth.height)
        scores.append(score_plan(det, r.sample.truth, name=r.name, note="error" if r.error else ""))
    return Summary(tuple(scores))


@dataclass
class ConfigComparison:
    """Several detector configurations run on the same samples, scored against ground truth."""

    configs: dict[str, Any]  # label -> DetectorConfig
    runs: dict[str, list[PlanRun]]
    summaries: dict[str, Any]  # label -> roomkit.qa.evaluate.Summary

    @property
    def best(self) -> str:
        """The label with the highest pooled F1@0.5 (ties: the first given)."""
        return max(self.summaries, key=lambda k: (round(self.summaries[k].f1(0.5), 6), -list(self.summaries).index(k)))

    def table(self) -> str:
        """Rooms found and F1@0.5 per plan and configuration, then each one's summary line."""
        labels = list(self.configs)
        names = [r.name for r in self.runs[labels[0]]]
        width = max([len("plan")] + [len(n) for n in names])
        col = max(12, *(len(lb) for lb in labels))
        head = f"{'plan':<{width}}  {'truth':>5}  " + "  ".join(f"{lb:>{col}}" for lb in labels)
        lines = [head, "-" * len(head)]
        per_label = {lb: {s.name: s for s in self.summaries[lb].plans} for lb in labels}
        for i, name in enumerate(names):
            truth = self.runs[labels[0]][i].sample.truth
            cells = []
            for lb in labels:
                run = self.runs[lb][i]
                rooms = "err" if run.detection is None else str(len(run.detection.rooms))
                score = per_label[lb].get(name)
                f1 = "" if score is None else f" F1 {score.f1(0.5):.2f}"
                cells.append(f"{rooms + f1:>{col}}")
            lines.append(f"{name:<{width}}  {'-' if truth is None else len(truth.rooms):>5}  " + "  ".join(cells))
        lines.append("-" * len(head))
        for lb in labels:
            lines.append(f"{lb}: {self.summaries[lb].line()}")
        return "\n".join(lines)


def compare_configs(samples: Sequence[Sample], configs: Mapping[str, Any], *,
                    keep_images: bool = False, known: Mapping[str, list[PlanRun]] | None = None) -> ConfigComparison:
    """Run each labelled configuration (DetectorConfig or dict of overrides of the defaults).

    ``known`` supplies runs already made for some labels (same samples, same order), which are
    reused instead of detecting again."""
    from roomkit.detector.config import DetectorConfig

    resolved: dict[str, Any] = {}
    for label, cfg in configs.items():
        resolved[label] = cfg if isinstance(cfg, DetectorConfig) else DetectorConfig().with_overrides(cfg or {})
    known = known or {}
    runs = {lb: list(known[lb]) if lb in known else detect_samples(samples, cfg, keep_images=keep_images)
            for lb, cfg in resolved.items()}
    for lb, given in runs.items():
        if [r.name for r in given] != [s.name for s in samples]:
            raise ConfigError(f"runs given for {lb!r} are not for these samples")
    return ConfigComparison(resolved, runs, {lb: score(r) for lb, r in runs.items()})


def changed_plans(comparison: ConfigComparison, a: str, b: str) -> list[str]:
    """The plans whose detected rooms differ at all between configurations ``a`` and ``b``
    (room polygons, confidences or an error), in sample order."""
    def rooms(run: PlanRun) -> Any:
        return (run.error, None if run.detection is None else run.detection.rooms)

    return [ra.name for ra, rb in zip(comparison.runs[a], comparison.runs[b]) if rooms(ra) != rooms(rb)]


def most_changed(comparison: ConfigComparison, a: str, b: str, n: int = 2) -> list[str]:
    """Up to ``n`` plans whose F1@0.5 (then room count) differs most between configurations,
    among those that changed at all: empty when the change made no difference."""
    sa = {s.name: s for s in comparison.summaries[a].plans}
    sb = {s.name: s for s in comparison.summaries[b].plans}
    rooms = {lb: {r.name: (len(r.detection.rooms) if r.detection else 0) for r in comparison.runs[lb]}
             for lb in (a, b)}

    def key(name: str) -> tuple[float, int, str]:
        df1 = abs(sa[name].f1(0.5) - sb[name].f1(0.5)) if name in sa and name in sb else 0.0
        return (-round(df1, 6), -abs(rooms[a][name] - rooms[b][name]), name)

    return sorted(changed_plans(comparison, a, b), key=key)[:n]


def change_summary(comparison: ConfigComparison, a: str, b: str) -> str:
    """One plain sentence: how many plans ``b`` changed against ``a`` (which ones) and what it did
    to F1@0.5, or that it changed nothing."""
    changed = changed_plans(comparison, a, b)
    total = len(comparison.runs[a])
    fa, fb = comparison.summaries[a].f1(0.5), comparison.summaries[b].f1(0.5)
    if not changed:
        return (f"{b!r} changed nothing: all {total} plans give exactly the same rooms as with {a!r} "
                f"(F1@0.5 {fa:.3f} both). Try a larger change or another parameter.")
    return (f"{b!r} changed {len(changed)} of {total} plans ({', '.join(changed)}): "
            f"F1@0.5 {fa:.3f} with {a!r}, {fb:.3f} with {b!r}.")


def compare_entries(comparison: ConfigComparison, names: Sequence[str]) -> list[Any]:
    """QA entries of the named plans under each configuration, side by side (``plan · label``)."""
    from dataclasses import replace

    entries = []
    for name in names:
        for label, runs in comparison.runs.items():
            run = next((r for r in runs if r.name == name), None)
            if run is None:
                raise ConfigError(f"no plan {name!r} in the comparison")
            entries.append(replace(qa_entries([run])[0], name=f"{name} · {label}"))
    return entries


def qa_entries(runs: Sequence[PlanRun]) -> list[Any]:
    """:class:`roomkit.qa.viz.QAEntry` per run (image, detection, ground truth, score), for
    ``viz.plot_gallery`` and ``viz.write_report``. Runs made with ``keep_images=True`` are drawn
    from memory, others are read from their file again."""
    from roomkit.qa.viz import QAEntry

    return [QAEntry(name=r.name, image=r.image if r.image is not None else r.sample.path,
                    detection=r.detection, truth=r.sample.truth, note=r.error or "").scored()
            for r in runs]


def curve_of(entries: Sequence[Any], *, iou: float = 0.5) -> list[Any]:
    """The confidence-threshold curve (:func:`roomkit.qa.evaluate.threshold_curve`) of QA entries."""
    from roomkit.qa.evaluate import threshold_curve
    from roomkit.plans.response import Detection

    pairs = [(e.detection if e.detection is not None else Detection(e.truth.width, e.truth.height), e.truth)
             for e in entries if e.truth is not None]
    return threshold_curve(pairs, iou=iou)
