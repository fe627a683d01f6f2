"""The ``roomkit`` command: a thin shell over the package's functions.

Each subcommand lives in its own module in this package and exposes ``register(subparsers)``,
which adds its parser and sets ``func`` (returning an exit code). Modules are discovered, so
adding a subcommand never touches this file. ``ORDER`` (an int) sorts them in ``--help``.
"""
from __future__ import annotations

import argparse
import pkgutil
import sys
from importlib import import_module
from typing import Sequence

from roomkit import __version__
from roomkit.errors import RoomkitError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="roomkit",
        description="Find rooms in blueprints; serve the detector on SageMaker Async Inference.",
    )
    parser.add_argument("--version", action="version", version=f"roomkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    modules = [import_module(f"{__name__}.{m.name}") for m in pkgutil.iter_modules(__path__)]
    for module in sorted(modules, key=lambda m: (getattr(m, "ORDER", 100), m.__name__)):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except RoomkitError as exc:
        print(f"roomkit {args.command}: error: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"roomkit {args.command}: interrupted", file=sys.stderr)
        return 130
