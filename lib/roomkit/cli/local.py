"""``roomkit local up|down|status|env``: the loopback AWS of :mod:`roomkit.local` from a shell.

``up`` runs in the foreground (a JupyterLab terminal, or ``roomkit local up &``), writes the
state file that ``roomkit.aws.session(mode="local")`` reads, and prints the environment to
export so the aws CLI and plain boto3 in other processes reach it too. ``down`` stops the one
the state file names (SIGTERM, then waits); ``status`` says whether it runs and shows its queues.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from roomkit.errors import ConfigError

ORDER = 60


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "local",
        help="run AWS (moto) + the SageMaker async runtime on 127.0.0.1",
        description="Local mode: moto's AWS APIs, the real `roomkit serve` and a SageMaker "
                    "Async Inference runtime on loopback ports.",
    )
    sub = parser.add_subparsers(dest="local_command", metavar="ACTION", help="what to do")
    sub.required = True

    up = sub.add_parser("up", help="start everything and stay in the foreground (Ctrl-C stops)")
    up.add_argument("--workers", type=int, default=2, help="serving worker processes (default 2)")
    up.add_argument("--region", default=None, help="region of the fake account (default us-east-1)")
    up.add_argument("--model-dir", default=None, help="config.json directory of the default model")
    up.add_argument("--state-file", default=None, help="where to record the endpoints "
                    "(default $ROOMKIT_LOCAL_STATE or ~/.roomkit/local.json)")
    up.add_argument("--no-trigger", action="store_true", help="do not run the upload-trigger runner")
    up.add_argument("--drain", action="store_true",
                    help="on stop, process queued requests instead of failing them")
    up.add_argument("--format", choices=("sh", "json"), default="sh", help="how to print the env")
    up.set_defaults(func=_up)

    down = sub.add_parser("down", help="stop the running `roomkit local up`")
    down.add_argument("--state-file", default=None, help="state file of the running local mode (default $ROOMKIT_LOCAL_STATE or ~/.roomkit/local.json)")
    down.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for it to exit")
    down.set_defaults(func=_down)

    status = sub.add_parser("status", help="is it running, where, and what is queued")
    status.add_argument("--state-file", default=None, help="state file of the running local mode (default $ROOMKIT_LOCAL_STATE or ~/.roomkit/local.json)")
    status.set_defaults(func=_status)

    env = sub.add_parser("env", help="print the environment pointing at the running local mode")
    env.add_argument("--state-file", default=None, help="state file of the running local mode (default $ROOMKIT_LOCAL_STATE or ~/.roomkit/local.json)")
    env.add_argument("--format", choices=("sh", "json"), default="sh",
                     help="sh: export lines for eval (default); json: one object")
    env.set_defaults(func=_env)


# -- helpers ---------------------------------------------------------------------------------
def _state_path(args: argparse.Namespace) -> Path:
    from roomkit.aws import local_state_path

    return Path(args.state_file) if args.state_file else local_state_path()


def _read_state(path: Path) -> dict[str, Any] | None:
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def _alive(pid: Any) -> bool:
    from roomkit.aws import pid_alive

    return isinstance(pid, int) and pid_alive(pid)


def _env_from_state(state: dict[str, Any], path: Path) -> dict[str, str]:
    from roomkit.aws import LOCAL_STATE_ENV, session

    env = session("local", region=state.get("region"), endpoints=state["endpoints"]).env()
    env[LOCAL_STATE_ENV] = str(path)
    return env


def _print_env(env: dict[str, str], fmt: str) -> None:
    if fmt == "json":
        print(json.dumps(env, indent=2))
    else:
        for key, value in env.items():
            print(f"export {key}={value}")


# -- actions ---------------------------------------------------------------------------------
def _up(args: argparse.Namespace) -> int:
    import logging

    from roomkit.local import LocalAWS

    path = _state_path(args)
    old = _read_state(path)
    if old and _alive(old.get("pid")) and old.get("pid") != os.getpid():
        raise ConfigError(f"local mode already runs (pid {old['pid']}, {path}); "
                          "`roomkit local down` stops it")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        stream=sys.stderr)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    kwargs: dict[str, Any] = {}
    if args.region:
        kwargs["region"] = args.region
    local = LocalAWS(workers=args.workers, model_dir=args.model_dir, state_file=path,
                     trigger=not args.no_trigger, drain_on_exit=args.drain, **kwargs)
    with local as aws:
        print(f"# roomkit local mode is up (pid {os.getpid()}); state in {path}", flush=True)
        print(f"# ECR image for deployments: {aws.image_uri}", flush=True)
        print("# export these in other shells (or run `eval $(roomkit local env)`):", flush=True)
        _print_env(aws.env(), args.format)
        sys.stdout.flush()
        while not stop.wait(1.0):
            pass
        print("# stopping local mode", file=sys.stderr, flush=True)
    report = local.shutdown_report or {}
    lost = len(report.get("queued", [])) + len(report.get("in_flight", []))
    if lost:
        print(f"# {lost} request(s) were failed by the shutdown (failure objects and error "
              "notifications were written)", file=sys.stderr)
    return 0


def _down(args: argparse.Namespace) -> int:
    path = _state_path(args)
    state = _read_state(path)
    if state is None:
        print(f"local mode is not running (no {path})", file=sys.stderr)
        return 1
    pid = state.get("pid")
    if not _alive(pid):
        path.unlink(missing_ok=True)
        print(f"local mode was not running (stale state of pid {pid} removed)", file=sys.stderr)
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + args.timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        print(f"local mode (pid {pid}) did not stop within {args.timeout:.0f} s", file=sys.stderr)
        return 1
    print(f"local mode (pid {pid}) stopped")
    return 0


def _status(args: argparse.Namespace) -> int:
    path = _state_path(args)
    state = _read_state(path)
    if state is None or not _alive(state.get("pid")):
        print(f"local mode is not running ({path})")
        return 3
    runtime = state["endpoints"].get("sagemaker-runtime")
    queues: Any = None
    try:
        with urllib.request.urlopen(f"{runtime}/_roomkit/queues", timeout=5) as resp:  # noqa: S310
            queues = json.loads(resp.read())
    except (OSError, ValueError) as exc:
        queues = {"error": f"runtime not answering: {exc}"}
    print(json.dumps({"running": True, "pid": state["pid"], "state_file": str(path),
                      "endpoints": state["endpoints"], "server_url": state.get("server_url"),
                      "image_uri": state.get("image_uri"), "started_at": state.get("started_at"),
                      "queues": queues}, indent=2))
    return 0


def _env(args: argparse.Namespace) -> int:
    path = _state_path(args)
    state = _read_state(path)
    if state is None or not _alive(state.get("pid")):
        print(f"local mode is not running ({path}): start it with `roomkit local up`", file=sys.stderr)
        return 3
    _print_env(_env_from_state(state, path), args.format)
    return 0
