"""The ``roomkit`` command: a thin shell over the package's functions.

Each subcommand lives in its own module in this package and exposes ``register(subparsers)``,
which adds its parser and sets ``func`` (returning an exit code). Modules are discovered, so
adding a subcommand never touches this file. ``ORDER`` (an int) sorts them in ``--help``.

One naming scheme for every command: ``--out DIR`` (``-o``) is the folder a command writes,
under ``./out/<what>`` by default (``out/walkthrough``, ``out/demo``, ``out/detections``);
files are named by their format (``--csv FILE``, ``--json FILE``, ``--manifest FILE``), S3
locations end in ``-uri``. Every option has help text, and no option may be abbreviated
(``allow_abbrev=False`` on every parser: ``--out`` never silently means ``--output-…``).
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
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"roomkit {__version__}")
    # Not ``required``: argparse checks that before it reports unknown options, so `roomkit
    # --verbose` would answer "COMMAND required"; main() names the unknown option first.
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", help="what to do (roomkit COMMAND --help)")
    modules = [import_module(f"{__name__}.{m.name}") for m in pkgutil.iter_modules(__path__)]
    for module in sorted(modules, key=lambda m: (getattr(m, "ORDER", 100), m.__name__)):
        module.register(sub)
    for each in all_parsers(parser):
        each.allow_abbrev = False
    return parser


def all_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """``parser`` and every subcommand parser under it."""
    found = [parser]
    for action in parser._actions:  # argparse keeps subparsers only there
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                found += all_parsers(child)
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        where = parser
        if args.command is not None:  # the subcommand's usage, not the top level's
            where = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[args.command]
        where.error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command is None:
        parser.error("a COMMAND is required (roomkit --help lists them)")
    try:
        return int(args.func(args) or 0)
    except RoomkitError as exc:
        print(f"roomkit {args.command}: error: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"roomkit {args.command}: interrupted", file=sys.stderr)
        return 130
