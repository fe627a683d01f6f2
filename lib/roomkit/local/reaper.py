"""Stop the servers a process started when that process dies without cleaning up.

The local AWS runs the real ``roomkit serve`` as child processes, each in its own session (so a
Ctrl-C in a notebook does not kill the server mid-request, and a stop reaps its gunicorn workers).
The flip side: when the process that owns them is killed outright — nbval and ``jupyter``
shut kernels down with SIGKILL, an OOM kill, a closed laptop lid — nobody stops them, and they
keep their ports and memory.

``ensure(pid)`` starts, once per owner, a small watcher process (``python -m roomkit.local.reaper PID``,
in a session of its own so a kill of the owner's group does not take it along). While the owner
lives, the watcher notes each child of the owner that leads its own process group. When the owner
is gone, it sends SIGTERM to those groups, then SIGKILL to what is left after a grace period, and
exits. A group is only signalled if its leader still runs the command line noted for it, so a
recycled process id is never hit.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Iterator

__all__ = ["ensure", "watch"]

_STARTED: dict[int, subprocess.Popen] = {}


def ensure(owner: int | None = None) -> None:
    """Start the watcher for ``owner`` (default: this process) unless it already runs."""
    owner = os.getpid() if owner is None else owner
    proc = _STARTED.get(owner)
    if proc is not None and proc.poll() is None:
        return
    if os.name != "posix":  # pragma: no cover - process groups are POSIX
        return
    _STARTED[owner] = subprocess.Popen(  # noqa: S603 (fixed argv)
        [sys.executable, "-m", "roomkit.local.reaper", str(owner)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, close_fds=True,
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _proc_processes() -> Iterator[tuple[int, int, int, str]]:
    """Linux: read /proc directly (no dependency on procps being installed)."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                stat = fh.read().decode("utf-8", "replace")
            with open(f"/proc/{entry.name}/cmdline", "rb") as fh:
                args = fh.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...; comm may contain spaces and parentheses
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) >= 3 and fields[0] != "Z":  # zombies are gone already
            yield int(entry.name), int(fields[1]), int(fields[2]), args


def _processes() -> Iterator[tuple[int, int, int, str]]:
    """(pid, ppid, pgid, command line) of every live process: /proc on Linux, else ``ps``."""
    if os.path.isdir("/proc/self"):
        yield from _proc_processes()
        return
    try:
        out = subprocess.run(["ps", "-A", "-o", "pid=,ppid=,pgid=,args="], capture_output=True,
                             text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return
    for line in out.splitlines():
        parts = line.split(None, 3)
        if len(parts) >= 3 and all(p.isdigit() for p in parts[:3]):
            yield int(parts[0]), int(parts[1]), int(parts[2]), parts[3] if len(parts) > 3 else ""


def watch(owner: int, *, interval: float = 0.5, grace: float = 5.0) -> list[int]:
    """Run until ``owner`` exits, then stop the process groups its children led; returns them."""
    me = os.getpid()
    groups: dict[int, str] = {}  # leader pid (= pgid) -> its command line
    while _alive(owner):
        procs = list(_processes())
        for pid, ppid, pgid, args in procs:
            if ppid == owner and pid == pgid and pid != me:
                groups[pid] = args
        # forget leaders that exited on their own (their id may be reused later)
        current = {pid: args for pid, _, _, args in procs}
        groups = {pid: args for pid, args in groups.items() if current.get(pid) == args}
        time.sleep(interval)
    current = {pid: args for pid, _, _, args in _processes()}
    targets = [pid for pid, args in groups.items() if current.get(pid) == args]
    for pgid in targets:
        try:
            os.killpg(pgid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive(p) for p in targets):
        time.sleep(0.1)
    for pgid in targets:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    return targets


if __name__ == "__main__":  # pragma: no cover - exercised through ensure() in the tests
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        sys.exit("usage: python -m roomkit.local.reaper OWNER_PID")
    watch(int(sys.argv[1]))
