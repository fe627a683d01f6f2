"""Async results on disk and as tables: save the rows of :func:`roomkit.aws.submit.results`
with unique names, read them back for QA, and show outcomes and latencies.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import urlparse
from roomkit.qa.samples import Sample, detect_samples

__all__ = ["result_names", "save_results", "load_result_detections", "load_result_failures", "detections_for_qa", "outcome_counts", "results_table", "latency_figure"]


def result_names(rows: Sequence[Any]) -> list[str]:
    """The file stem each row's result is saved under: the input's stem, made unique the way
    ``roomkit detect`` does (``plan``, ``plan-2``…) so that inputs with the same stem from
    different folders (or ``plan.png`` beside ``plan.pdf``) never overwrite each other."""
    from roomkit.cli.detect import output_stems

    return output_stems([Path(urlparse(r.input).path if "://" in r.input else r.input) for r in rows])


def save_results(rows: Sequence[Any], directory: str | os.PathLike[str]) -> Path:
    """Write each successful row's response as ``<name>.json`` (what ``roomkit eval --pred`` and
    notebook 05 read), failures as ``<name>.error.txt``, and ``results.csv`` with one line per
    plan (its input, the name its files were saved under, status…). Names are the inputs' stems,
    made unique (:func:`result_names`). Older files there are replaced, so the folder always
    shows the last submission."""
    import csv

    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    for old in list(folder.glob("*.json")) + list(folder.glob("*.error.txt")):
        old.unlink()
    names = result_names(rows)
    for row, name in zip(rows, names):
        if row.detection is not None:
            (folder / f"{name}.json").write_text(json.dumps(row.detection.to_response(), indent=2) + "\n",
                                                 encoding="utf-8")
        elif row.error:
            (folder / f"{name}.error.txt").write_text(row.error + "\n", encoding="utf-8")
    with open(folder / "results.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["plan", "saved_as", "status", "rooms", "processing_time_ms", "latency_s", "error", "input"])
        for row, name in zip(rows, names):
            writer.writerow([Path(row.input).name, name, row.status, row.rooms, row.processing_time_ms,
                             None if row.latency_s is None else round(row.latency_s, 3), row.error or "",
                             row.input])
    return folder


def load_result_detections(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """``{name: Detection}`` from a folder written by :func:`save_results`."""
    from roomkit.qa.evaluate import load_prediction

    out = {}
    for path in sorted(Path(directory).glob("*.json")):
        det, note = load_prediction(path)
        if not note:
            out[path.stem] = det
    return out


def load_result_failures(directory: str | os.PathLike[str]) -> dict[str, str]:
    """``{name: reason}`` of the failed jobs in a folder written by :func:`save_results` (what
    the QA report lists under "Failed jobs"); empty when the folder does not exist."""
    folder = Path(directory)
    if not folder.is_dir():
        return {}
    return {path.name[: -len(".error.txt")]: path.read_text(encoding="utf-8").strip()
            for path in sorted(folder.glob("*.error.txt"))}


def detections_for_qa(results_dir: str | os.PathLike[str], samples: Sequence[Sample],
                      config: str | os.PathLike[str] | None = None) -> tuple[dict[str, Any], str]:
    """What notebook 05 shows: the endpoint's results saved by notebook 04 when ``results_dir``
    holds any, else the detector run here with ``config`` (``config.json`` from notebook 01, or
    the defaults). Returns ``({stem: Detection}, sentence saying which)``."""
    from roomkit.detector.config import DetectorConfig

    folder = Path(results_dir)
    found = load_result_detections(folder) if folder.is_dir() else {}
    if found:
        return found, f"results of the deployed endpoint ({len(found)} plans, saved by notebook 04 in {folder.name}/)"
    cfg_path = Path(config) if config else None
    cfg = DetectorConfig.from_json(cfg_path) if cfg_path and cfg_path.is_file() else DetectorConfig()
    runs = detect_samples(samples, cfg)
    origin = "config.json from notebook 01" if cfg_path and cfg_path.is_file() else "the default configuration"
    return ({r.name: r.detection for r in runs if r.detection is not None},
            f"no endpoint results in {folder.name}/ (run notebook 04 first to QA the endpoint): "
            f"detected here with {origin}")


def outcome_counts(rows: Sequence[Any]) -> str:
    """``N plans: a succeeded, b failed, c pending`` — deterministic, for nbval."""
    from collections import Counter

    counts = Counter(r.status for r in rows)
    return (f"{len(rows)} plans: {counts.get('success', 0)} succeeded, {counts.get('failed', 0)} failed, "
            f"{counts.get('pending', 0)} pending")


def results_table(rows: Sequence[Any]) -> Any:
    """The results as a pandas DataFrame indexed by plan file name (no S3 URIs, no detection)."""
    from roomkit.aws.jobs import to_dataframe

    frame = to_dataframe(rows)
    frame.insert(0, "plan", [Path(urlparse(r.input).path if "://" in r.input else r.input).name for r in rows])
    keep = ["plan", "status", "rooms", "room_types", "width", "height", "processing_time_ms", "latency_s", "error"]
    frame = frame[keep].set_index("plan")
    for column in ("rooms", "width", "height"):  # integers, with <NA> for failed plans
        frame[column] = frame[column].astype("Int64")
    frame["error"] = frame["error"].fillna("")
    return frame


def latency_figure(rows: Sequence[Any]) -> Any:
    """Histogram of submit→completion latency beside the detector's own processing time."""
    from matplotlib.figure import Figure

    latency = [r.latency_s for r in rows if r.latency_s is not None]
    processing = [r.processing_time_ms / 1000.0 for r in rows if r.processing_time_ms is not None]
    fig = Figure(figsize=(9, 3.2), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    ax1.hist(latency, bins=min(20, max(5, len(latency))), color="#4c72b0")
    ax1.set_xlabel("seconds from submit to completion")
    ax1.set_ylabel("plans")
    ax1.set_title("end-to-end latency (queue + processing)", fontsize=10)
    ax2.hist(processing, bins=min(20, max(5, len(processing))), color="#55a868")
    ax2.set_xlabel("seconds inside the container")
    ax2.set_title("detector processing time", fontsize=10)
    return fig
