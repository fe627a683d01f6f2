"""``roomkit synth``: generate floor plans with exact ground truth (deterministic per seed)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

ORDER = 40


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "synth",
        help="generate synthetic floor plans with exact room ground truth",
        description=(
            "Write N plans (<prefix>_NNNN.png|jpg + .json ground truth) to OUT. Plan i is drawn from "
            "seed (SEED, i) and cycles through the chosen styles, so the same command always writes "
            "the same files. --sample-set regenerates the committed data/samples/ set instead."
        ),
    )
    p.add_argument("out", type=Path, nargs="?", metavar="OUT", help="output folder (created if missing)")
    p.add_argument("--count", "-n", type=int, default=20, metavar="N", help="number of plans (default 20)")
    p.add_argument("--seed", "-s", type=int, default=0, metavar="S", help="base seed (default 0)")
    p.add_argument(
        "--style", action="append", default=None, metavar="NAME",
        help="style name(s), repeatable or comma-separated (default: every named style but 'random' and 'r3d'); "
        "see --list-styles",
    )
    p.add_argument("--prefix", default="plan", help="file name prefix (default 'plan')")
    p.add_argument("--sample-set", action="store_true", help="write the committed sample set (ignores -n/-s/--style)")
    p.add_argument("--list-styles", action="store_true", help="print the styles and exit")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from roomkit.qa import synth
    from roomkit.errors import InputError

    if args.list_styles:
        for name, style in synth.STYLES.items():
            print(f"{name:<12} {style.description}")
        return 0
    if args.out is None:
        raise InputError("OUT (the output folder) is required")
    if args.sample_set:
        paths = synth.write_sample_set(args.out)
    else:
        styles = None
        if args.style:
            styles = [s.strip() for item in args.style for s in item.split(",") if s.strip()]
        if args.count < 0:
            raise InputError("--count must be >= 0")
        paths = synth.generate(args.out, args.count, seed=args.seed, styles=styles, prefix=args.prefix)
    for path in paths:
        data = json.loads(path.read_text(encoding="utf-8"))
        print(f"{data['image']:<28} {data['style']:<12} {data['width']:>5}x{data['height']:<5} rooms={len(data['rooms'])}")
    print(f"wrote {len(paths)} plans to {args.out}")
    return 0
