"""The real serving process (``roomkit serve``) as a supervised child of the local runtime.

SageMaker starts the container with ``serve``, extracts the model artifact to ``/opt/ml/model``,
waits for ``GET /ping`` and replaces an instance whose container dies. :class:`ServingProcess`
does the same on loopback: it starts ``roomkit serve --host 127.0.0.1 --port P --workers W
--model-dir D`` with the environment a container would get (``SAGEMAKER_MODEL_SERVER_WORKERS``,
``SAGEMAKER_MODEL_SERVER_TIMEOUT``, the model's ``Environment``), waits for ``/ping`` and, from a
watchdog thread, restarts it on the same port when it exits unexpectedly or stops answering
``/ping`` for ``unhealthy_after_s`` (a hung container is replaced, as SageMaker replaces an
instance that fails its health checks).

The child never sees the caller's AWS settings: every inherited ``AWS_*`` variable (keys,
``AWS_PROFILE``, ``AWS_CONFIG_FILE``, endpoint URLs …) is dropped, the shared config and
credentials files point at nothing, the instance metadata service is off, and only ``aws_env``
(in local mode: the loopback endpoints and the fake credentials) is put back. A request it signs
can therefore never carry the operator's key or reach the operator's endpoints.

The child runs in its own process group, so stopping or restarting it also reaps the worker
processes it forked (an orphaned worker would otherwise keep the port).
"""
from __future__ import annotations

import http.client
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Mapping, Sequence

from roomkit.errors import RoomkitError

log = logging.getLogger(__name__)

# SageMaker's async invocation timeout tops out at one hour; the container's own timeout must
# never be the shorter one, so the runtime (which enforces InvocationTimeoutSeconds) decides.
DEFAULT_SERVER_TIMEOUT_S = 3600
# SageMaker pings every few seconds with a 2 s timeout and replaces an instance whose container
# keeps failing; it does not publish the bound, so ours is a setting (short in tests).
PING_TIMEOUT_S = 2.0
DEFAULT_HEALTH_CHECK_INTERVAL_S = 5.0
DEFAULT_UNHEALTHY_AFTER_S = 30.0
# What the child gets whatever the caller has: no shared config/credentials file, no instance
# metadata lookups (botocore's last resort when no credentials are set).
_AWS_LOCKDOWN = {
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}
CommandBuilder = Callable[[str, int, int, Path], Sequence[str]]


class ServerStartError(RoomkitError):
    code = "server_start_failed"
    http_status = 503


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def roomkit_serve_command(host: str, port: int, workers: int, model_dir: Path) -> list[str]:
    """``roomkit serve`` with this interpreter, so the child sees the same environment.

    The per-request timeout comes from ``SAGEMAKER_MODEL_SERVER_TIMEOUT`` in the environment,
    as in the container.
    """
    return [
        sys.executable, "-m", "roomkit", "serve",
        "--host", host, "--port", str(port), "--workers", str(workers),
        "--model-dir", str(model_dir),
    ]


class ServingProcess:
    """One supervised ``roomkit serve`` process: start, wait for /ping, restart on death, stop.

    Parameters
    ----------
    model_dir:
        Directory holding the extracted model artifact (``config.json`` at its root), the local
        stand-in for ``/opt/ml/model``. May be empty: the server then uses its default config.
    workers:
        Worker processes, passed as ``--workers`` and ``SAGEMAKER_MODEL_SERVER_WORKERS``.
    server_timeout_s:
        ``SAGEMAKER_MODEL_SERVER_TIMEOUT`` (per-request timeout inside the server).
    env:
        Extra environment (the model's ``Environment`` map), on top of this process's own
        minus its ``AWS_*`` variables; the model's own ``AWS_*`` entries are ignored too.
    aws_env:
        The only AWS settings the child gets (``AWS_ENDPOINT_URL``, keys, region); see the
        module docstring.
    startup_timeout_s:
        How long ``/ping`` may take to answer 200 after a (re)start.
    log_path:
        File receiving the child's stdout and stderr (a pipe could fill up and block it).
    health_check_interval_s, unhealthy_after_s:
        Once ready, ``GET /ping`` every ``health_check_interval_s`` (2 s timeout each); a process
        that has failed every ping for ``unhealthy_after_s`` is killed and started again, and
        :meth:`replaced_reason` says so for the requests it held. ``None`` turns this off.
    """

    def __init__(
        self,
        model_dir: Path | str,
        *,
        workers: int = 2,
        server_timeout_s: int = DEFAULT_SERVER_TIMEOUT_S,
        env: Mapping[str, str] | None = None,
        startup_timeout_s: float = 60.0,
        log_path: Path | str | None = None,
        command: CommandBuilder | None = None,
        name: str = "default",
        host: str = "127.0.0.1",
        max_restarts_per_minute: int = 5,
        aws_env: Mapping[str, str] | None = None,
        health_check_interval_s: float = DEFAULT_HEALTH_CHECK_INTERVAL_S,
        unhealthy_after_s: float | None = DEFAULT_UNHEALTHY_AFTER_S,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.model_dir = Path(model_dir)
        self.workers = workers
        self.server_timeout_s = int(server_timeout_s)
        self.extra_env = dict(env or {})
        self.aws_env = dict(aws_env or {})
        self.health_check_interval_s = health_check_interval_s
        self.unhealthy_after_s = unhealthy_after_s
        self.startup_timeout_s = startup_timeout_s
        self.log_path = Path(log_path) if log_path else None
        self.command = command or roomkit_serve_command
        self.name = name
        self.host = host
        self.port = 0
        self.max_restarts_per_minute = max_restarts_per_minute
        self.restarts = 0
        self.health_replacements = 0
        # Each launch is an incarnation; the runtime notes the one a request went to and asks
        # replaced_reason() when the connection breaks.
        self.incarnation = 0
        self._replaced: dict[int, str] = {}
        self.last_exit: str | None = None
        self.failure: str | None = None
        self._proc: subprocess.Popen | None = None
        self._log_file = None
        self._lock = threading.RLock()
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._watchdog: threading.Thread | None = None
        self._restart_times: list[float] = []

    # -- public --------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None else None

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def start(self) -> "ServingProcess":
        """Start the process and block until ``/ping`` answers 200 (or raise ServerStartError)."""
        with self._lock:
            self._stopping.clear()
            self.port = self.port or free_port(self.host)
            self._launch_until_ready()
        self._watchdog = threading.Thread(
            target=self._watch, name=f"roomkit-serve-watchdog-{self.name}", daemon=True
        )
        self._watchdog.start()
        return self

    def wait_ready(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for a healthy process (e.g. while the watchdog restarts it)."""
        return self._ready.wait(max(0.0, timeout))

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group, SIGKILL what is left after ``timeout`` s."""
        self._stopping.set()
        self._ready.clear()
        with self._lock:
            self._terminate(timeout)
        if self._watchdog is not None and self._watchdog is not threading.current_thread():
            self._watchdog.join(timeout=5)
        self._watchdog = None

    def replaced_reason(self, incarnation: int) -> str | None:
        """Why incarnation ``incarnation`` was killed by the health check, if it was (no lock:
        the watchdog holds it for a whole restart)."""
        return self._replaced.get(incarnation)

    def log_tail(self, max_chars: int = 2000) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        data = self.log_path.read_bytes()[-max_chars:]
        return data.decode("utf-8", "replace")

    def ping(self, timeout: float = 2.0) -> bool:
        """``GET /ping`` answers 200 (SageMaker's health check, 2 s per attempt)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request("GET", "/ping")
            resp = conn.getresponse()
            resp.read()
            return resp.status == 200
        except OSError:
            return False
        finally:
            conn.close()

    # -- internals -----------------------------------------------------------------------------
    def _environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not _is_aws_setting(k)}
        env["SAGEMAKER_MODEL_SERVER_WORKERS"] = str(self.workers)
        env["SAGEMAKER_MODEL_SERVER_TIMEOUT"] = str(self.server_timeout_s)
        env.setdefault("PYTHONUNBUFFERED", "1")
        # The model's Environment wins, as in a container (the toolkit variables are the
        # user's to set); the port and the AWS settings are the platform's.
        ignored = sorted(k for k in self.extra_env if _is_aws_setting(k))
        if ignored:
            log.warning("serving process %s: the model's %s ignored in local mode (the loopback "
                        "endpoints and fake credentials are used)", self.name, ", ".join(ignored))
        env.update({k: v for k, v in self.extra_env.items() if not _is_aws_setting(k)})
        env.update(_AWS_LOCKDOWN)
        env.update(self.aws_env)
        # Loopback traffic never goes through a proxy the caller may have configured.
        for name in ("NO_PROXY", "no_proxy"):
            env[name] = ",".join(filter(None, [env.get(name, ""), "127.0.0.1", "localhost"]))
        env["SAGEMAKER_BIND_TO_PORT"] = str(self.port)
        return env

    def _launch_until_ready(self) -> None:
        """Launch, wait for /ping; on a port clash pick a new port and try again (3 attempts)."""
        last_error = ""
        for attempt in range(3):
            self._launch()
            ok, last_error = self._wait_for_ping(self.startup_timeout_s)
            if ok:
                self.failure = None
                self._ready.set()
                log.info("serving process %s ready on %s (pid %s)", self.name, self.url, self.pid)
                return
            self._terminate(5.0)
            if attempt < 2:
                self.port = free_port(self.host)
        self.failure = last_error
        raise ServerStartError(
            f"the serving process ({self.name}) did not become healthy: {last_error}\n"
            f"--- last lines of its log ---\n{self.log_tail()}"
        )

    def _launch(self) -> None:
        argv = list(self.command(self.host, self.port, self.workers, self.model_dir))
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            if self._log_file is None:
                self._log_file = open(self.log_path, "ab")  # noqa: SIM115 (kept for the child)
            out = self._log_file
        else:
            out = subprocess.DEVNULL
        self.incarnation += 1
        self._proc = subprocess.Popen(  # noqa: S603 (argv built here, no shell)
            argv,
            env=self._environment(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _wait_for_ping(self, timeout: float) -> tuple[bool, str]:
        deadline = time.monotonic() + timeout
        proc = self._proc
        while time.monotonic() < deadline:
            if self._stopping.is_set():
                return False, "stopping"
            if proc is None or proc.poll() is not None:
                code = None if proc is None else proc.returncode
                return False, f"the process exited with status {code} before answering /ping"
            if self.ping(timeout=2.0):
                return True, ""
            time.sleep(0.1)
        return False, f"/ping did not answer 200 within {timeout:.0f} s"

    def _terminate(self, timeout: float) -> None:
        proc, self._proc = self._proc, None
        self._ready.clear()
        if proc is not None:
            pgid = proc.pid  # start_new_session=True: the child leads its own process group
            if proc.poll() is None:
                _signal_group(pgid, signal.SIGTERM)
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    pass
            # Whatever is left of the group (the master or forked workers) goes now.
            _signal_group(pgid, signal.SIGKILL)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:  # pragma: no cover (SIGKILL cannot be ignored)
                log.error("serving process %s (pid %s) survived SIGKILL", self.name, pgid)
        if self._stopping.is_set() and self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def _watch(self) -> None:
        """Replace the process when it exits without being asked to, or when it has failed every
        ``/ping`` for ``unhealthy_after_s`` (the instance replacement SageMaker does), at most
        ``max_restarts_per_minute`` times a minute."""
        failing_since: float | None = None
        next_check = time.monotonic() + self.health_check_interval_s
        while not self._stopping.wait(0.2):
            proc = self._proc
            if proc is not None and proc.poll() is None:
                if self.unhealthy_after_s is None or not self._ready.is_set():
                    failing_since = None
                    continue
                started = time.monotonic()
                if started < next_check:
                    continue
                next_check = started + self.health_check_interval_s
                if self.ping(timeout=PING_TIMEOUT_S):
                    failing_since = None
                    continue
                failing_since = failing_since or started
                failing_for = time.monotonic() - failing_since
                if failing_for < self.unhealthy_after_s:
                    continue
                with self._lock:
                    if self._stopping.is_set() or self._proc is not proc:
                        continue
                    reason = f"stopped answering GET /ping for {failing_for:.0f} s"
                    self._replaced[self.incarnation] = reason
                    self.last_exit = reason
                    self.health_replacements += 1
                    log.error("serving process %s (pid %s) %s; replacing it", self.name, proc.pid, reason)
                    self._terminate(1.0)
                    failing_since = None
                    if not self._restart_locked():
                        return
                continue
            with self._lock:
                if self._stopping.is_set() or self._proc is not proc:
                    continue
                if proc is not None:
                    self.last_exit = f"exited with status {proc.returncode}"
                    log.warning("serving process %s (pid %s) %s; restarting it",
                                self.name, proc.pid, self.last_exit)
                    self._terminate(1.0)
                failing_since = None
                if not self._restart_locked():
                    return

    def _restart_locked(self) -> bool:
        """Launch again (the lock held), rate-limited; False when stopping."""
        now = time.monotonic()
        self._restart_times = [t for t in self._restart_times if now - t < 60]
        if len(self._restart_times) >= self.max_restarts_per_minute:
            self.failure = (
                f"the serving process {self.last_exit} and was restarted "
                f"{len(self._restart_times)} times in the last minute; waiting before the next try"
            )
            log.error(self.failure)
            if self._stopping.wait(10):
                return False
        self._restart_times.append(time.monotonic())
        self.restarts += 1
        try:
            self._launch_until_ready()
        except ServerStartError as exc:
            self.failure = exc.message
            log.error("restart of serving process %s failed: %s", self.name, exc.message)
        return True


def _is_aws_setting(name: str) -> bool:
    """A variable botocore reads (credentials, profile, config files, endpoints, region)."""
    return name.upper().startswith("AWS_")


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
