"""``roomkit eval``: score a folder of API responses against a folder of ground truth."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

ORDER = 30


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval",
        help="score detections (API response JSON) against ground truth",
        description=(
            "Match predicted to ground-truth rooms one-to-one by polygon IoU and print per-plan "
            "precision/recall/F1 at IoU 0.5 and 0.75 and mean matched IoU. PRED holds <stem>.json "
            "API responses (normalized 0-1000); TRUTH holds <stem>.json ground truth in pixels. "
            "The last line printed is 'F1@0.5=... P=... R=... mIoU=... plans=...'."
        ),
    )
    p.add_argument("--truth", required=True, type=Path, metavar="DIR", help="ground-truth folder")
    p.add_argument("--pred", required=True, type=Path, metavar="DIR", help="predictions folder")
    p.add_argument("--json", type=Path, metavar="OUT", help="write the JSON summary here")
    p.add_argument(
        "--min-confidence", type=float, default=None, metavar="C",
        help="drop predicted rooms below this confidence before matching",
    )
    p.add_argument("--worst-first", action="store_true", help="order the table worst plan first")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from roomkit.qa.evaluate import evaluate_dirs, format_table

    summary = evaluate_dirs(args.truth, args.pred, min_confidence=args.min_confidence)
    print(format_table(summary, worst_first=args.worst_first))
    styles = summary.by_style()
    if len(styles) > 1:
        print()
        print(f"{'style':<20} {'plans':>5} {'F1@.5':>6} {'mIoU':>6}")
        for name, s in styles.items():
            miou = "-" if s.mean_iou is None else f"{s.mean_iou:.3f}"
            print(f"{name:<20} {s.n_plans:>5} {s.f1(0.5):>6.3f} {miou:>6}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary.to_dict(), indent=2) + "\n", encoding="utf-8")
        print(f"summary written to {args.json}")
    print(summary.line())
    return 0
