"""The gunicorn worker class: gthread, with busy workers letting idle siblings accept first.

Why threads: a worker's detection runs on one thread while others answer ``/ping`` and read
request bodies, so health checks never wait behind a long plan (SageMaker gives a ping 2 s).

Why headers are read here: gthread hands a connection to a thread as soon as a byte arrives,
and the thread then blocks reading the rest of the request line and headers. Forty clients that
send half a header took every thread (and ``/ping`` with them) for a minute. This worker reads
request heads in its event loop instead, without blocking, and gives a connection to a thread
only once its head is complete (or over gunicorn's size limits, for gunicorn to refuse). A head
that is not complete within ``HEAD_TIMEOUT_S`` gets 408 and is closed; a new connection that
sends nothing in that time is closed. A TLS handshake is answered 400 at once (the server speaks
plain HTTP; SageMaker terminates TLS in front of it).

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

import errno
import json
import selectors
import time
from collections import deque
from functools import partial

from gunicorn import util
from gunicorn.workers.gthread import TConn, ThreadWorker

ACCEPT_DEFER_S = 0.25
IDLE_CONNECTIONS_DEFER_S = 0.05
_POLL_S = 0.002
_EPISODE_GAP_S = 0.05
#: Seconds a connection has to deliver its request line and headers (new or kept alive).
HEAD_TIMEOUT_S = 10.0
#: Past this many bytes without a blank line the head goes to gunicorn, which refuses it (414/431).
_HEAD_LIMIT = 64 * 1024
_TLS_RECORD = (0x16, 0x03)  # a TLS handshake record: ClientHello
# The API's error codes for the statuses gunicorn's parser refuses requests with.
_PROTOCOL_CODES = {
    400: "bad_request", 403: "forbidden", 414: "request_line_too_long", 417: "expectation_failed",
    431: "headers_too_large", 500: "internal_error", 501: "not_implemented",
}


class RoomkitWorker(ThreadWorker):
    """``gthread`` worker that defers accepting while it is busy and has siblings."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._heads: deque = deque()  # connections whose request head is being read
        self._pending_since: float | None = None
        self._pending_seen = 0.0

    # -- request heads read in the event loop ---------------------------------------------------
    def _accept_connection(self, listener) -> None:
        try:
            sock, addr = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        self._await_head(TConn(self.cfg, sock, addr, listener.getsockname()), fresh=True)

    def _await_head(self, conn, *, fresh: bool) -> None:
        conn.head = bytearray()
        conn.head_fresh = fresh
        conn.head_deadline = time.monotonic() + HEAD_TIMEOUT_S
        conn.sock.setblocking(False)
        self._heads.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_head_readable, conn))

    def _drop_head(self, conn) -> None:
        try:
            self._heads.remove(conn)
        except ValueError:
            pass
        try:
            self.poller.unregister(conn.sock)
        except (KeyError, ValueError, OSError):
            pass

    def _close(self, conn, answer: bytes = b"") -> None:
        self._drop_head(conn)
        if answer:
            try:
                conn.sock.send(answer)  # non-blocking, best effort: a few hundred bytes
            except OSError:
                pass
        self.nr_conns -= 1
        conn.close()

    def _on_head_readable(self, conn, _sock) -> None:
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client went away
            self._close(conn)
            return
        conn.head += data
        head = conn.head
        if len(head) >= 2 and (head[0], head[1]) == _TLS_RECORD:
            self._close(conn, error_response(
                400, "Bad Request", "bad_request",
                "this server speaks plain HTTP, not TLS (SageMaker terminates TLS in front of it)"))
            return
        if b"\r\n\r\n" in head or b"\n\n" in head or len(head) > _HEAD_LIMIT:
            self._drop_head(conn)
            conn.prefix = bytes(head)
            conn.data_ready = True
            self.enqueue_req(conn)

    def _expire_heads(self) -> None:
        now = time.monotonic()
        for conn in [c for c in self._heads if c.head_deadline <= now]:
            if conn.head:
                self._close(conn, error_response(
                    408, "Request Timeout", "request_timeout",
                    f"the request line and headers did not arrive within {HEAD_TIMEOUT_S:g} s"))
            else:
                self._close(conn)  # never sent a byte (or idle after keep-alive): just close

    def on_client_socket_readable(self, conn, client) -> None:
        """A kept-alive connection has a new request: read its head here too."""
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._await_head(conn, fresh=False)
        self._on_head_readable(conn, client)

    def murder_pending(self) -> None:
        super().murder_pending()
        self._expire_heads()

    def handle(self, conn):
        prefix = getattr(conn, "prefix", b"")
        if prefix:
            conn.prefix = b""
            conn.sock.setblocking(True)
            conn.init()
            conn.parser.unreader.unread(prefix)
        return super().handle(conn)

    # -- accepting ----------------------------------------------------------------------------------
    def _defer_for(self) -> float:
        """How long to leave a new connection to the siblings: long while this worker has work
        (a request in the app, or an accepted connection not yet answered), short while it only
        holds idle kept-alive connections (their clients will be back), zero when it has none."""
        if self.cfg.workers < 2 or not self.alive:
            return 0.0
        idle = len(self.keepalived_conns) + len(self.pending_conns) + len(self._heads)
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
        self._accept_connection(listener)

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
