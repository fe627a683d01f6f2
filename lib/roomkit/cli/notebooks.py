"""``roomkit notebooks run|strip|check|record``: the operator walk-through from a shell.

``run`` executes ``notebooks/NN_*.ipynb`` in order with papermill (one shared local AWS in local
mode), writes the executed copies and the QA report under ``--out`` and prints one line per
notebook; exit status 1 when one fails. ``strip`` and ``check`` keep committed notebooks clean;
``record`` refreshes the expected outputs of the nbval-checked cells from an executed run.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ORDER = 90


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "notebooks",
        help="run the operator notebooks (papermill), strip/check committed notebooks",
        description="The operator walk-through: notebooks/01_... to 06_..., executed in order.",
    )
    sub = parser.add_subparsers(dest="notebooks_command", metavar="ACTION", help="what to do")
    sub.required = True

    run = sub.add_parser("run", help="execute the notebooks in order (papermill)",
                         description="Execute notebooks/NN_*.ipynb in order, sharing one local AWS "
                                     "(local mode), writing executed copies to OUT/executed/ and the "
                                     "QA report to OUT/report.html.")
    run.add_argument("--mode", choices=("local", "aws"), default="local",
                     help="local: loopback AWS on this machine (default); aws: your account")
    run.add_argument("--out", "-o", type=Path, default=None, metavar="DIR",
                     help="output folder (default: $ROOMKIT_WALKTHROUGH_OUT, else out/walkthrough of "
                          "this checkout: where the notebooks opened in JupyterLab look)")
    run.add_argument("--only", action="append", metavar="NN",
                     help="run only these notebooks (number or name; repeat or comma-separate)")
    run.add_argument("--notebooks", type=Path, default=None, metavar="DIR",
                     help="notebook folder (default: notebooks/ of this checkout)")
    run.add_argument("-p", "--parameter", action="append", default=[], metavar="NAME=VALUE",
                     help="extra parameter for every notebook (VALUE parsed as JSON when it can be)")
    run.add_argument("--region", default=None, help="AWS region (aws mode; passed as `region`)")
    run.add_argument("--keep-going", action="store_true", help="run the rest after a failure")
    run.add_argument("--cell-timeout", type=int, default=600, metavar="S", help="per-cell limit (600 s)")
    run.set_defaults(func=_run)

    strip = sub.add_parser("strip", help="remove outputs (except checked cells) and run metadata")
    strip.add_argument("paths", nargs="*", type=Path, help="notebooks (default: all in notebooks/)")
    strip.set_defaults(func=_strip)

    check = sub.add_parser("check", help="fail if a notebook carries outputs, secrets, account ids, paths")
    check.add_argument("paths", nargs="*", type=Path, help="notebooks (default: all in notebooks/)")
    check.set_defaults(func=_check)

    record = sub.add_parser("record", help="copy checked cells' outputs from an executed run into the sources")
    record.add_argument("executed", type=Path, metavar="DIR", help="OUT/executed of a `roomkit notebooks run`")
    record.add_argument("--notebooks", type=Path, default=None, metavar="DIR",
                        help="notebook folder to update (default: notebooks/ of this checkout)")
    record.set_defaults(func=_record)


def _parse_parameters(items: list[str]) -> dict:
    from roomkit.errors import ConfigError

    params = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.isidentifier():
            raise ConfigError(f"parameter must be NAME=VALUE, got {item!r}")
        try:
            params[name] = json.loads(value)
        except ValueError:
            params[name] = value
    return params


def _paths(args: argparse.Namespace) -> list[Path]:
    from roomkit.notebooks.runner import find_notebooks, notebooks_dir

    return list(args.paths) or find_notebooks(notebooks_dir(), optional=True)


def _run(args: argparse.Namespace) -> int:
    from roomkit.notebooks.runner import run_notebooks

    from roomkit.notebooks.walkthrough import output_dir

    params = _parse_parameters(args.parameter)
    if args.region:
        params["region"] = args.region
    report = run_notebooks(
        output_dir(args.out, create=False), mode=args.mode, only=args.only, folder=args.notebooks, parameters=params,
        cell_timeout=args.cell_timeout, keep_going=args.keep_going,
        echo=lambda line: print(line, file=sys.stderr, flush=True),
    )
    print(report.table())
    print(f"executed notebooks: {report.out_dir / 'executed'}")
    if report.report_html is not None:
        print(f"QA report: {report.report_html}")
    return 0 if report.ok else 1


def _strip(args: argparse.Namespace) -> int:
    from roomkit.notebooks.runner import strip_notebook, write_notebook

    for path in _paths(args):
        nb = json.loads(path.read_text(encoding="utf-8"))
        write_notebook(strip_notebook(nb), path)
        print(f"stripped {path}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from roomkit.notebooks.runner import check_notebook

    bad = 0
    for path in _paths(args):
        findings = check_notebook(path)
        for finding in findings:
            print(finding)
        bad += bool(findings)
    print(f"{bad} notebook(s) with problems" if bad else "notebooks clean")
    return 1 if bad else 0


def _record(args: argparse.Namespace) -> int:
    from roomkit.notebooks.runner import find_notebooks, notebooks_dir, record_checked_outputs

    for source in find_notebooks(notebooks_dir(args.notebooks), optional=True):
        executed = args.executed / source.name
        if not executed.is_file():
            print(f"skipped {source.name}: no executed copy in {args.executed}")
            continue
        n = record_checked_outputs(executed, source)
        print(f"{source.name}: {n} checked cell(s) recorded")
    return 0
