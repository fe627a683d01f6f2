"""The gunicorn worker class: gthread, with busy workers letting idle siblings accept first.

Why threads: a worker's detection runs on one thread while others answer ``/ping`` and read
request bodies, so health checks never wait behind a long plan (SageMaker gives a ping 2 s).

Why the accept tweak: every worker polls the same listening socket and the kernel wakes them
all, so a worker in the middle of a detection would win new connections as often as an idle
one, queueing work behind itself while a sibling idles. A busy worker (a request in progress or
a connection open) therefore leaves a new connection to the others for ``ACCEPT_DEFER_S``; only
if none takes it (all are busy) does it accept, and then it keeps accepting whatever is queued.
So a ping is answered within about that delay however loaded the server is, and invocations
spread across workers the way a single shared queue would.
"""
from __future__ import annotations

import time

from gunicorn.workers.gthread import ThreadWorker

ACCEPT_DEFER_S = 0.25
_POLL_S = 0.002
_EPISODE_GAP_S = 0.05


class RoomkitWorker(ThreadWorker):
    """``gthread`` worker that defers accepting while it is busy and has siblings."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._pending_since: float | None = None
        self._pending_seen = 0.0

    def accept(self, listener) -> None:  # called by the poller when the listener is readable
        # Busy: a request in the app, or any open connection — an accepted one not yet parsed,
        # or a kept-alive one whose client will send its next request here. Spreading
        # connections, not only requests, is what balances clients that keep connections open.
        if self.cfg.workers > 1 and self.alive and (self.nr_conns > 0 or getattr(self.wsgi, "busy", False)):
            now = time.monotonic()
            if self._pending_since is None or now - self._pending_seen > _EPISODE_GAP_S:
                self._pending_since = now  # a new waiting connection (not the last one's tail)
            self._pending_seen = now
            if now - self._pending_since < ACCEPT_DEFER_S:
                time.sleep(_POLL_S)  # let an idle sibling take it; the poller calls again
                return
            # Waited long enough: every worker is busy. Keep accepting while connections are
            # pending (the episode lasts while the poller keeps calling), so a ping queued
            # behind many invocations is not delayed once per invocation ahead of it.
        else:
            self._pending_since = None
        super().accept(listener)
