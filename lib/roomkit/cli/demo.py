"""``roomkit demo``: the quick detection-only job over the sample plans.

Runs the detector on every plan in ``data/samples/``, writes ``OUT/<stem>.json`` (the API
response) and ``OUT/<stem>.overlay.png`` (rooms filled, ground truth outlined in dark green),
scores each plan against its ``<stem>.json`` ground truth with :mod:`roomkit.qa.evaluate`, and
prints a per-plan table and an overall line. ``OUT/summary.json`` holds the full scores.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ORDER = 5

SAMPLES_RELATIVE = Path("data") / "samples"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="detect rooms on the sample plans, write JSON + overlays, print F1 vs ground truth",
        description=(
            "Run the detector over the sample plans (data/samples/ of this checkout, or --samples), "
            "write OUT/<stem>.json responses and OUT/<stem>.overlay.png overlays, and print a "
            "per-plan table (rooms found, ground-truth rooms, F1@0.5, mean IoU, ms) and an "
            "overall line. Exit status 1 if any plan could not be processed."
        ),
    )
    p.add_argument("--out", type=Path, default=Path("out"), metavar="DIR", help="output folder (default: ./out)")
    p.add_argument(
        "--samples", type=Path, default=None, metavar="DIR",
        help="folder of plans and <stem>.json ground truth (default: the repository's data/samples)",
    )
    p.add_argument("--config", type=Path, metavar="JSON", help="detector config.json (DetectorConfig)")
    p.add_argument("--no-overlay", action="store_true", help="skip writing overlay PNGs")
    p.set_defaults(func=run)


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


def run(args: argparse.Namespace) -> int:
    from roomkit.cli.detect import (
        detect_file, draw_overlay, expand_paths, load_config, make_output_dir, write_atomic, write_outputs,
    )
    from roomkit.errors import InputError
    from roomkit.qa.evaluate import Summary, load_truth, score_plan

    config = load_config(args.config, None)
    samples = find_samples(args.samples)
    files, _ = expand_paths([samples])
    if not files:
        raise InputError(f"no plan images in {samples}")
    out: Path = args.out
    make_output_dir(out)
    print(f"roomkit demo: {len(files)} plans from {samples} -> {out}", flush=True)

    width = max(len("plan"), *(len(f.stem) for f in files))
    head = f"{'plan':<{width}}  {'rooms':>5} {'truth':>5} {'F1@.5':>6} {'mIoU':>6} {'ms':>8}"
    print(head)
    print("-" * len(head), flush=True)

    scores = []
    times: list[float] = []
    failures: list[str] = []
    for path in files:
        truth = None
        truth_path = path.with_suffix(".json")
        note = ""
        if truth_path.is_file():
            try:
                truth = load_truth(truth_path)
            except InputError as exc:
                note = f"ground truth unreadable: {exc.message}"
        else:
            note = "no ground truth"

        result = detect_file(path, config, keep_image=not args.no_overlay)
        if result.error is not None:
            failures.append(path.name)
            print(f"{path.stem:<{width}}  {'error':>5}  {result.error}", flush=True)
            if truth is not None:  # counts as "found nothing" in the overall figures
                scores.append(score_plan([], truth, name=path.stem, note="error"))
            continue

        det = result.detection
        truth_polys = [r.polygon for r in truth.rooms] if truth is not None else None
        overlay = None if args.no_overlay else draw_overlay(result.image, det, truth_polys)
        write_outputs(out, path.stem, det, overlay=overlay)
        times.append(det.processing_time_ms)

        if truth is not None:
            if (truth.width, truth.height) != (det.width, det.height):
                note = f"truth is {truth.width}x{truth.height}, image {det.width}x{det.height}"
            score = score_plan(det, truth, name=path.stem)
            scores.append(score)
            miou = "-" if score.mean_iou is None else f"{score.mean_iou:.3f}"
            row = (
                f"{path.stem:<{width}}  {len(det.rooms):>5} {score.n_truth:>5} {score.f1(0.5):>6.3f} "
                f"{miou:>6} {det.processing_time_ms:>8.1f}"
            )
        else:
            row = f"{path.stem:<{width}}  {len(det.rooms):>5} {'-':>5} {'-':>6} {'-':>6} {det.processing_time_ms:>8.1f}"
        if note:
            row += f"  ({note})"
        print(row, flush=True)

    summary = Summary(tuple(scores))
    write_atomic(out / "summary.json", json.dumps(summary.to_dict(), indent=2) + "\n")
    print("-" * len(head))
    timing = f" median={statistics.median(times):.1f}ms" if times else ""
    if scores:
        print(f"overall: {summary.line()}{timing}")
    else:
        print(f"overall: no ground truth to score against; plans={len(files)}{timing}")
    print(f"results: {out}/<plan>.json" + ("" if args.no_overlay else f", overlays: {out}/<plan>.overlay.png"))
    if failures:
        print(f"roomkit demo: {len(failures)} plan(s) failed: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0
