"""``roomkit train``: fit the learned backend's network to annotated plans (``roomkit[train]``).

Writes ``model.onnx`` + ``model.json`` (the model directory the ``learned`` and ``hybrid``
backends run), ``training_curve.png``, ``history.json`` and a checkpoint that a second run with
the same ``--out`` resumes from. Its arguments are checked before the training framework loads,
so a typo costs no wait.
"""
from __future__ import annotations

import argparse
from pathlib import Path

ORDER = 45


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train (or fine-tune) the learned detector on annotated plans",
        description=(
            "Train the learned backend's segmentation network on plans with ground-truth JSON "
            "(the data/samples/ format: <name>.json naming its image beside it) and/or N generated "
            "plans, keep the epoch with the best validation F1@0.5 and write OUT/model.onnx, "
            "OUT/model.json and OUT/training_curve.png. Re-running with the same --out resumes "
            "from its checkpoint (--restart discards it). Needs the roomkit[train] extra."
        ),
    )
    p.add_argument("data", nargs="*", type=Path, metavar="DATA_DIR",
                   help="folder of plans with ground-truth JSON (repeatable)")
    p.add_argument("--out", "-o", type=Path, required=True, metavar="MODEL_DIR",
                   help="model directory to write (created if missing)")
    p.add_argument("--base", type=Path, default=None, metavar="MODEL_DIR",
                   help="start from this model's weights (fine-tuning); 'shipped' names the weights shipped with roomkit")
    p.add_argument("--synthetic", type=int, default=0, metavar="N",
                   help="also train on N generated plans (roomkit.synth; default 0)")
    # Not an argparse group: "both given" is then one error line like every other bad input.
    p.add_argument("--minutes", type=float, default=None, metavar="M",
                   help="train for about M minutes (whole epochs; not with --epochs)")
    p.add_argument("--epochs", type=int, default=None, metavar="E",
                   help="train for E epochs (default 10 when neither this nor --minutes is given)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the data split, weights and batches (default 0)")
    p.add_argument("--steps-per-epoch", type=int, default=None, metavar="K",
                   help="optimiser steps per epoch (default 50)")
    p.add_argument("--restart", action="store_true", help="ignore a checkpoint in --out and start over")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (epoch lines are still printed)")
    p.set_defaults(func=run)


def check_data_dirs(dirs: list[Path]) -> None:
    """Fail fast, with the folder named, before the training framework is imported."""
    from roomkit.errors import InputError

    for d in dirs:
        if not d.exists():
            raise InputError(f"no such folder: {d}")
        if not d.is_dir():
            raise InputError(f"{d} is not a folder (give folders of plans with ground-truth JSON)")
        if not any(p.suffix.lower() == ".json" for p in d.iterdir() if p.is_file()):
            raise InputError(f"{d} holds no ground-truth JSON files (the data/samples/ format)")


def run(args: argparse.Namespace) -> int:
    from roomkit.errors import InputError

    if args.minutes is not None and args.epochs is not None:
        raise InputError("give either --minutes or --epochs, not both")
    if not args.data and args.synthetic <= 0:
        raise InputError("nothing to train on: give DATA_DIR folders and/or --synthetic N")
    if args.synthetic < 0:
        raise InputError("--synthetic must be >= 0")
    if args.epochs is not None and args.epochs < 1:
        raise InputError("--epochs must be >= 1")
    if args.minutes is not None and not args.minutes > 0:
        raise InputError("--minutes must be > 0")
    if args.steps_per_epoch is not None and args.steps_per_epoch < 1:
        raise InputError("--steps-per-epoch must be >= 1")
    check_data_dirs(args.data)
    if args.base is not None:
        from roomkit.learned.modelfile import read_info, shipped_model_dir

        if str(args.base) == "shipped" and not args.base.exists():
            args.base = shipped_model_dir()
        read_info(args.base)  # ModelError names what is missing
    if args.out.exists() and not args.out.is_dir():
        raise InputError(f"--out {args.out} exists and is not a folder")
    try:
        from roomkit.learned.train import TrainConfig, train
        import jax  # noqa: F401  - the extra's heaviest part: say so now if it is missing
        import optax  # noqa: F401
        import onnx  # noqa: F401
    except ImportError as exc:
        raise InputError(f"training needs the roomkit[train] extra ({exc.name or exc} is missing): "
                         "pip install 'roomkit[train]'") from None

    settings: dict = {"seed": args.seed, "synthetic": args.synthetic}
    if args.minutes is not None:
        settings["minutes"] = args.minutes
    else:
        settings["epochs"] = args.epochs if args.epochs is not None else 10
    if args.steps_per_epoch is not None:
        settings["steps_per_epoch"] = args.steps_per_epoch
    config = TrainConfig(**settings)

    def log(line: str) -> None:
        print(line, flush=True)

    result = train([str(d) for d in args.data], args.out, config, base=args.base, restart=args.restart,
                   progress=not args.no_progress, log=log)
    best = "n/a (no validation plans)" if result.best_f1 is None else f"{result.best_f1:.3f}"
    print(f"trained {result.epochs} epoch(s), {result.steps} steps in {result.seconds:.0f} s; "
          f"best epoch {result.best_epoch}, validation F1@0.5 {best}")
    for name in ("model.onnx", "model.json", "training_curve.png"):
        print(f"{name:<19} {args.out / name}")
    return 0
