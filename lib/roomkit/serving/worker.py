"""The gunicorn worker class: gthread, with busy workers letting idle siblings accept first.

Why threads: a worker's detection runs on one thread while others answer ``/ping`` and read
request bodies, so health checks never wait behind a long plan (SageMaker gives a ping 2 s).

Why the accept tweak: every worker polls the same listening socket and the kernel wakes them
all, so a worker in the middle of a detection would win new connections as often as an idle
one, queueing work behind itself while a sibling idles. A busy worker (a request in progress or
a connection accepted and not yet answered) therefore leaves a new connection to the others for
``ACCEPT_DEFER_S``; only if none takes it (all are busy) does it accept, and then it keeps
accepting whatever is queued. So a ping is answered within about that delay however loaded the
server is, and invocations spread across workers the way a single shared queue would. A worker
holding only idle kept-alive connections defers briefly (``IDLE_CONNECTIONS_DEFER_S``), so
persistent clients spread over the workers too without new connections paying the full delay.
"""
from __future__ import annotations

import json
import time

from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker

ACCEPT_DEFER_S = 0.25
IDLE_CONNECTIONS_DEFER_S = 0.05
_POLL_S = 0.002
_EPISODE_GAP_S = 0.05
# The API's error codes for the statuses gunicorn's parser refuses requests with.
_PROTOCOL_CODES = {
    400: "bad_request", 403: "forbidden", 414: "request_line_too_long", 417: "expectation_failed",
    431: "headers_too_large", 500: "internal_error", 501: "not_implemented",
}


class RoomkitWorker(ThreadWorker):
    """``gthread`` worker that defers accepting while it is busy and has siblings."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._pending_since: float | None = None
        self._pending_seen = 0.0

    def _defer_for(self) -> float:
        """How long to leave a new connection to the siblings: long while this worker has work
        (a request in the app, or an accepted connection not yet answered), short while it only
        holds idle kept-alive connections (their clients will be back), zero when it has none."""
        if self.cfg.workers < 2 or not self.alive:
            return 0.0
        idle = len(self.keepalived_conns) + len(self.pending_conns)
        if getattr(self.wsgi, "busy", False) or self.nr_conns > idle:
            return ACCEPT_DEFER_S
        return IDLE_CONNECTIONS_DEFER_S if self.nr_conns else 0.0

    def accept(self, listener) -> None:  # called by the poller when the listener is readable
        defer = self._defer_for()
        if defer:
            now = time.monotonic()
            if self._pending_since is None or now - self._pending_seen > _EPISODE_GAP_S:
                self._pending_since = now  # a new waiting connection (not the last one's tail)
            self._pending_seen = now
            if now - self._pending_since < defer:
                time.sleep(_POLL_S)  # let an idle sibling take it; the poller calls again
                return
            # Waited long enough: every worker is busy. Keep accepting while connections are
            # pending (the episode lasts while the poller keeps calling), so a ping queued
            # behind many invocations is not delayed once per invocation ahead of it.
        else:
            self._pending_since = None
        super().accept(listener)

    def handle_error(self, req, client, addr, exc) -> None:
        """gunicorn's refusals (bad request line, oversized headers, bad Content-Length, chunked
        plus length...) with gunicorn's status codes, in the API's JSON error shape instead of
        its HTML page."""
        capture = _Capture()
        super().handle_error(req, capture, addr, exc)  # logs, picks the status, "writes" HTML
        status, reason = capture.status()
        detail = str(exc) or type(exc).__name__
        message = f"{reason}: {detail}" if status < 500 else f"{reason} (see the server log)"
        try:
            util.write_nonblock(client, error_response(status, reason, _PROTOCOL_CODES.get(status, "bad_request"), message))
        except Exception:  # the client is gone
            self.log.debug("Failed to send error message.")


def error_response(status: int, reason: str, code: str, message: str) -> bytes:
    """A complete ``Connection: close`` HTTP/1.1 response carrying the JSON error body."""
    body = json.dumps({"status": "error", "error": {"code": code, "message": message[:500]}},
                      separators=(",", ":")).encode("utf-8")
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1") + body


class _Capture:
    """Stands in for the client socket while gunicorn writes its HTML error: keeps the status."""

    def __init__(self) -> None:
        self.data = b""

    def gettimeout(self) -> float:
        return 0.0

    def sendall(self, data: bytes) -> None:
        self.data += data

    def status(self) -> tuple[int, str]:
        line = self.data.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
        try:
            return int(line[1]), (line[2] if len(line) > 2 else "Error")
        except (IndexError, ValueError):
            return 400, "Bad Request"
