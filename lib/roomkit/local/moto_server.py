"""moto's server on a free loopback port: S3, SNS, SQS, IAM, ECR, CloudWatch, Application Auto
Scaling and the SageMaker control plane, all behind one ``AWS_ENDPOINT_URL``.

It runs in a thread of the calling process (what ``moto.server.ThreadedMotoServer`` does), so
its state lives and dies with that process; every request goes through real HTTP, so the boto3
code under test is exactly the code that talks to AWS.

One change to moto's dispatcher: it finds the service of each request by listing moto's package
directory and matching a few hundred URL patterns, under a lock, twice per request (about half
of moto's time per request, measured). The answer depends only on the request's host, so
:class:`_CachingDispatcher` remembers it per host.

And one change to moto's SQS: standard queues are indexed (:mod:`roomkit.local.sqs_index`), so
receiving and deleting messages costs time per message handled rather than per message queued
(moto's own queue scans every queued message several times per call: draining N notifications
was O(N²)). It is installed for the whole process by the first server started with
``indexed_sqs=True`` (the default); moto's state is per process anyway.
"""
from __future__ import annotations

import json
import logging
import threading
import urllib.request
from typing import Any

log = logging.getLogger(__name__)


def _dispatcher_class() -> type:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    class _CachingDispatcher(DomainDispatcherApplication):
        """moto's dispatcher with the host → backend lookup memoized (a pure function of host)."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._host_backends: dict[str, Any] = {}

        def get_backend_for_host(self, host: str | None) -> Any:
            if host is None:
                return None
            try:
                return self._host_backends[host]
            except KeyError:
                backend = super().get_backend_for_host(host)
                self._host_backends[host] = backend
                return backend

    return _CachingDispatcher


class MotoServer:
    """moto's WSGI application served by a threaded werkzeug server on 127.0.0.1 (free port)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, indexed_sqs: bool = True) -> None:
        self.host = host
        self.port = port
        self.indexed_sqs = indexed_sqs
        self._server = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("moto server is not running")
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> "MotoServer":
        # imported late: moto is heavy to import
        from moto.moto_server.werkzeug_app import MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        if self.indexed_sqs:
            from roomkit.local import sqs_index

            sqs_index.install()
        # moto's werkzeug server logs every request at INFO; only real problems are worth a line.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        app = _dispatcher_class()(create_backend_app)
        server = make_server(self.host, self.port, app, threaded=True, request_handler=MotoRequestHandler)
        server.daemon_threads = True
        self.host, self.port = server.server_address[:2]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="roomkit-moto-server", daemon=True)
        self._thread.start()
        log.info("moto server on %s", self.url)
        return self

    def reset(self) -> None:
        """Drop every resource of every service (moto's ``/moto-api/reset``)."""
        req = urllib.request.Request(self.url + "/moto-api/reset", data=b"", method="POST")
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 (loopback only)
            json.loads(resp.read() or b"{}")

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()  # release the port at once
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._thread = None
        log.info("moto server stopped")

    def __enter__(self) -> "MotoServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
