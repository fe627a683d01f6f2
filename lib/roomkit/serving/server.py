"""The launcher: gunicorn running :class:`~roomkit.serving.app.RoomkitApp` in worker processes.

``container/serve`` (the image's entrypoint), ``roomkit serve`` and :func:`roomkit.serve` all
end here, so tests and the local mode run exactly what SageMaker runs.

- workers: ``SAGEMAKER_MODEL_SERVER_WORKERS`` processes (default: CPUs), no ``--preload`` —
  each worker imports the detector and reads ``config.json`` itself after the fork;
- worker class :class:`~roomkit.serving.worker.RoomkitWorker` (gthread) so ``/ping`` is
  answered while detections run; it reads request heads in its event loop (stalled clients
  hold no thread) and keeps at most ``WORKER_CONNECTIONS`` connections open;
- graceful shutdown on SIGTERM: listeners close, in-flight requests finish within
  ``graceful_timeout`` (25 s, inside SageMaker's 30 s before SIGKILL);
- gunicorn's own timeout is only a liveness check of each worker's main loop; the per-request
  limit (``SAGEMAKER_MODEL_SERVER_TIMEOUT``) is enforced by the app, which answers 504 in JSON.
"""
from __future__ import annotations

import os
from typing import Any

from gunicorn.app.base import BaseApplication

from roomkit.errors import RoomkitError
from roomkit.serving.logs import configure_logging, gunicorn_logconfig, log
from roomkit.serving.options import ServerOptions


WORKER_CONNECTIONS = 256


class ServerError(RoomkitError):
    code = "server_failed"
    http_status = 500


def gunicorn_settings(options: ServerOptions) -> dict[str, Any]:
    """The gunicorn configuration for ``options`` (nothing read from gunicorn.conf.py or argv)."""
    host = f"[{options.host}]" if ":" in options.host else options.host
    settings: dict[str, Any] = {
        "bind": [f"{host}:{options.port}"],
        "workers": options.workers,
        "worker_class": "roomkit.serving.worker.RoomkitWorker",
        "threads": options.threads,
        # Open connections per worker (threads, kept-alive ones and heads being read): bounded
        # well under the usual 1024 file descriptors, far above what SageMaker's front end opens.
        "worker_connections": WORKER_CONNECTIONS,
        "preload_app": False,
        # Liveness of a worker's event loop, not a request limit (see module docstring).
        "timeout": int(max(60, options.timeout + options.graceful_timeout)),
        "graceful_timeout": options.graceful_timeout,
        "keepalive": options.keepalive,
        "backlog": 2048,
        "accesslog": None,  # the app writes one JSON line per request instead
        "errorlog": "-",
        "loglevel": "warning" if options.log_level > 20 else "info",
        "logconfig_dict": gunicorn_logconfig(options.log_level),
        "proc_name": "roomkit-serve",
        "control_socket_disable": True,  # no $HOME/.gunicorn/gunicorn.ctl shared between servers
        "forwarded_allow_ips": "127.0.0.1,::1",
    }
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        settings["worker_tmp_dir"] = "/dev/shm"  # heartbeat files off a possibly slow overlay fs
    return settings


class _Gunicorn(BaseApplication):
    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in gunicorn_settings(self.options).items():
            self.cfg.set(key, value)

    def load(self):  # runs in each worker after the fork
        from roomkit.serving.app import create_app

        return create_app(self.options)


def run(options: ServerOptions) -> None:
    """Run the server in the foreground until SIGTERM/SIGINT (must be the main thread)."""
    os.environ["ROOMKIT_SERVING_WORKER"] = "1"  # lets a worker recycle itself after a timeout
    configure_logging(options.log_level)
    log.info("server_starting", extra={"fields": {
        "host": options.host, "port": options.port, "workers": options.workers, "threads": options.threads,
        "timeout_s": options.timeout, "max_request_size": options.max_request_size,
        "model_dir": str(options.model_dir)}})
    try:
        _Gunicorn(options).run()
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise ServerError(f"the server stopped with exit status {exc.code} (see the log above)") from None
