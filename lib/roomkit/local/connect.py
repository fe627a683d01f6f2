"""The session a notebook uses: the running local AWS (``roomkit local up`` or the
walk-through's), one started for this process, or AWS itself.
"""
from __future__ import annotations

import atexit
import json
import os
import socket
from typing import Any
from urllib.parse import urlparse
from roomkit.errors import ConfigError

__all__ = ["running_local_state", "connect", "stop_local"]

_LOCAL: Any = None  # the kernel-scoped roomkit.local.LocalAWS started by connect(), if any


def _answers(url: str, timeout: float = 1.0) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 80), timeout=timeout):
            return True
    except OSError:
        return False


def running_local_state() -> dict[str, Any] | None:
    """The state of a running shared local AWS (``roomkit local up`` or ``roomkit notebooks
    run``), or None when the state file is missing, stale or its services do not answer."""
    from roomkit.aws import local_state_path

    path = local_state_path()
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or not isinstance(state.get("endpoints"), dict):
        return None
    pid = state.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    urls = [u for u in state["endpoints"].values() if isinstance(u, str)]
    if not urls or not all(_answers(u) for u in urls):
        return None
    return state


def connect(mode: str = "local", region: str | None = None, profile: str | None = None, *,
            quiet: bool = False, share: bool = True) -> Any:
    """The :class:`roomkit.aws.AwsSession` a notebook uses.

    ``mode="aws"``: your credentials and ``region``. ``mode="local"``: the shared local AWS if one
    runs (``roomkit local up``, or the one ``roomkit notebooks run`` started), else a local AWS
    started now in this kernel and stopped when the kernel exits. With ``share`` it is recorded in
    the state file (``$ROOMKIT_LOCAL_STATE``), so notebooks opened in other kernels use it — and
    see its deployment — while this kernel runs.
    """
    import roomkit.aws as aws_factory

    if mode == "aws":
        from botocore.exceptions import BotoCoreError, ClientError

        session = aws_factory.session("aws", region=region or None, profile=profile or None)
        try:
            account = session.account_id()
        except (BotoCoreError, ClientError) as exc:
            raise ConfigError(
                f"aws mode needs usable AWS credentials ({exc}): configure them (aws configure, "
                "aws sso login, AWS_PROFILE) or run the notebook with mode = \"local\"") from None
        if not quiet:
            print(f"aws mode: account {account}, region {session.region}")
        return session
    if mode != "local":
        raise ConfigError(f"mode must be 'local' or 'aws', got {mode!r}")
    state = running_local_state()
    if state is not None:
        if not quiet:
            print(f"local mode: using the running local AWS (pid {state['pid']}, region {state.get('region')})")
        return aws_factory.session("local", region=state.get("region"), endpoints=state["endpoints"])
    global _LOCAL
    if _LOCAL is None:
        from roomkit.local import reaper
        from roomkit.local import LocalAWS

        reaper.ensure()  # a killed kernel (nbval, jupyter) must not leave its servers running
        state_file = aws_factory.local_state_path() if share else None
        local = LocalAWS(region=region or aws_factory.DEFAULT_LOCAL_REGION, state_file=state_file)
        local.start()
        _LOCAL = local
        atexit.register(stop_local)
        if not quiet:
            print("local mode: no shared local AWS was running, so this kernel started one"
                  + (" and shares it with notebooks in other kernels" if share else "")
                  + "; it stops with this kernel (`roomkit local up` keeps one independent of kernels)")
    return _LOCAL.session()


def stop_local() -> None:
    """Stop the kernel-scoped local AWS started by :func:`connect` (no-op when there is none)."""
    global _LOCAL
    local, _LOCAL = _LOCAL, None
    if local is not None:
        local.stop(grace_s=0)
