"""moto's server on a free loopback port: S3, SNS, SQS, IAM, ECR, CloudWatch, Application Auto
Scaling and the SageMaker control plane, all behind one ``AWS_ENDPOINT_URL``.

It runs in a thread of the calling process (``moto.server.ThreadedMotoServer``), so its state
lives and dies with that process; every request goes through real HTTP, so the boto3 code under
test is exactly the code that talks to AWS.
"""
from __future__ import annotations

import json
import logging
import urllib.request

log = logging.getLogger(__name__)


class MotoServer:
    """Start/stop wrapper around ``ThreadedMotoServer`` bound to 127.0.0.1 on a free port."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._server = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("moto server is not running")
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> "MotoServer":
        from moto.server import ThreadedMotoServer  # imported late: moto is heavy to import

        # moto's werkzeug server logs every request at INFO; only real problems are worth a line.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        server.start()
        self.host, self.port = server.get_host_and_port()
        self._server = server
        log.info("moto server on %s", self.url)
        return self

    def reset(self) -> None:
        """Drop every resource of every service (moto's ``/moto-api/reset``)."""
        req = urllib.request.Request(self.url + "/moto-api/reset", data=b"", method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 (loopback only)
            json.loads(resp.read() or b"{}")

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.stop()
        # ThreadedMotoServer.stop() ends serve_forever() but leaves the listening socket open;
        # close it so the port is released at once.
        inner = getattr(server, "_server", None)
        if inner is not None:
            inner.server_close()
        log.info("moto server stopped")

    def __enter__(self) -> "MotoServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
