"""Local mode's SQS queues, indexed: ReceiveMessage, DeleteMessage and SendMessage cost time in
proportion to the messages they touch, not to the messages queued.

moto keeps a queue's messages in one list. Every ReceiveMessage builds the list of the visible
ones, then, for each message it hands out, reads the queue's attributes three times to check the
retention period, and each read counts the visible, invisible and delayed messages over the whole
list; every DeleteMessage scans the list twice and rebuilds it; every SendMessage reads the
attributes too. Draining a backlog of N notifications therefore costs O(N²): 5,000 notifications
took 796 s of ``wait`` in local mode, with about 80 % of the process's time in moto's
``Message.visible``/``delayed`` (issue 22).

:func:`install` (called by :class:`~roomkit.local.moto_server.MotoServer`) turns each *standard*
queue that moto creates from then on into an :class:`IndexedQueue`: the same moto ``Queue`` (same
attributes, same ``Message`` objects, same API answers through moto's own responses), whose
messages are kept in

- a dict of the live messages (insertion order = send order), each with a placement version;
- a deque of messages that are ready (visible and not delayed);
- a heap of the hidden ones (received and invisible, or delayed), by the time they turn visible;
- a dict from every receipt handle a live message has had to the message,
- counters of ready, invisible and delayed messages,

so a receive pops from the deque (after moving due entries off the heap), a delete and a
visibility change are dictionary look-ups, and attribute reads (which moto does on every send)
read the counters. Entries of the deque and heap are invalidated by the version, not removed
(removal would be O(N)); both are rebuilt when stale entries outnumber live messages. FIFO
queues stay moto's own. Process-wide and idempotent: moto's state is per process anyway.

Semantics kept from moto/SQS: at-least-once delivery with visibility timeouts (0 included: the
message stays visible), ``ChangeMessageVisibility`` (same 43,200 s limit and error), deleting with
any receipt handle a message ever had (and again, harmlessly), ``ReceiptHandleIsInvalid`` for an
unknown handle, long polls that return as soon as a message is there, ``DelaySeconds``, redrive to
a dead-letter queue once ``maxReceiveCount`` receives are reached, message-attribute filtering,
purge. Differences: order is send order, then the order messages turn visible again (SQS standard
queues promise no order); a message past its retention period is dropped when met (moto handed
it out as received but never returned it).
"""
from __future__ import annotations

import heapq
import itertools
import threading
from collections import deque
from copy import deepcopy
from typing import Any, Iterator

from moto.core.utils import unix_time_millis
from moto.sqs import models as sqs_models
from moto.sqs.exceptions import InvalidParameterValue, ReceiptHandleIsInvalid

_install_lock = threading.Lock()
_installed = False
# The most seconds a message may stay invisible after it was sent (SQS's and moto's limit).
MAX_TOTAL_VISIBILITY_S = 43200


def install() -> None:
    """Make moto create indexed standard queues from now on (idempotent, process-wide)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        backend = sqs_models.SQSBackend
        create, receive, change = backend.create_queue, backend.receive_message, backend.change_message_visibility

        def create_queue(self: Any, name: str, tags: Any = None, **kwargs: Any) -> Any:
            queue = create(self, name, tags, **kwargs)
            if type(queue) is sqs_models.Queue and not queue.fifo_queue:
                IndexedQueue.adopt(queue)
            return queue

        def receive_message(self: Any, queue_name: str, count: int, wait_seconds_timeout: int,
                            visibility_timeout: int, message_attribute_names: list[str] | None = None) -> Any:
            queue = self.get_queue(queue_name)
            if isinstance(queue, IndexedQueue):
                return queue.receive(count, wait_seconds_timeout, visibility_timeout, message_attribute_names or [])
            return receive(self, queue_name, count, wait_seconds_timeout, visibility_timeout,
                           message_attribute_names)

        def change_message_visibility(self: Any, queue_name: str, receipt_handle: str,
                                      visibility_timeout: int) -> None:
            queue = self.get_queue(queue_name)
            if isinstance(queue, IndexedQueue):
                return queue.change_visibility(receipt_handle, visibility_timeout)
            return change(self, queue_name, receipt_handle, visibility_timeout)

        backend.create_queue = create_queue
        backend.receive_message = receive_message
        backend.change_message_visibility = change_message_visibility
        _installed = True


def installed() -> bool:
    return _installed


class _MessageView:
    """What moto's own code sees as ``queue._messages``: the live messages, in send order."""

    def __init__(self, queue: "IndexedQueue") -> None:
        self._queue = queue

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._queue._live))

    def __len__(self) -> int:
        return len(self._queue._live)

    def __bool__(self) -> bool:
        return bool(self._queue._live)

    def append(self, message: Any) -> None:
        self._queue._place(message)

    def remove(self, message: Any) -> None:
        if message not in self._queue._live:
            raise ValueError("message not in queue")
        self._queue._forget(message)


class IndexedQueue(sqs_models.Queue):
    """moto's standard ``Queue`` with indexed messages (see the module docstring)."""

    @classmethod
    def adopt(cls, queue: Any) -> "IndexedQueue":
        """Turn a plain moto queue (standard, not FIFO) into an indexed one, messages included."""
        messages = queue.__dict__.pop("_messages", [])
        queue.__class__ = cls
        queue._reset(messages)
        return queue

    # -- moto's storage, re-routed -----------------------------------------------------------
    @property  # type: ignore[override]
    def _messages(self) -> _MessageView:
        return _MessageView(self)

    @_messages.setter
    def _messages(self, messages: list[Any]) -> None:
        # Queue.__init__ and PurgeQueue assign a list; rebuild the index from it.
        self._reset(messages)

    def _reset(self, messages: Any) -> None:
        lock = self.__dict__.get("_messages_lock")
        if lock is None:
            lock = self.__dict__["_messages_lock"] = threading.Condition()
        with lock:
            # message -> (version, where): where is "ready", "invisible" or "delayed"
            self._live: dict[Any, tuple[int, str]] = {}
            self._count = {"ready": 0, "invisible": 0, "delayed": 0}
            self._by_handle: dict[str, Any] = {}
            self._ready: deque[tuple[Any, int]] = deque()
            self._hidden: list[tuple[float, int, Any]] = []
            self._tick = itertools.count()
            for message in list(messages):
                self._place(message)

    def _valid(self, message: Any, version: int) -> bool:
        entry = self._live.get(message)
        return entry is not None and entry[0] == version

    def _file(self, message: Any, where: str) -> int:
        old = self._live.get(message)
        if old is not None:
            self._count[old[1]] -= 1
        version = next(self._tick)
        self._live[message] = (version, where)
        self._count[where] += 1
        return version

    def _place(self, message: Any, now: float | None = None) -> None:
        """(Re)file a live message as ready or hidden; its older entries become stale."""
        for handle in message.all_receipt_handles:
            if handle is not None:
                self._by_handle[handle] = message
        now = unix_time_millis() if now is None else now
        ready_at = max(message.visible_at, message.delayed_until)
        if ready_at < now:
            self._ready.append((message, self._file(message, "ready")))
        else:
            where = "delayed" if message.delayed_until >= now else "invisible"
            heapq.heappush(self._hidden, (ready_at, self._file(message, where), message))
        # Stale entries (of deleted or re-filed messages) are dropped when met; rebuild when they
        # are most of a structure, so neither grows beyond twice the live messages.
        if len(self._hidden) > 1024 and len(self._hidden) > 2 * len(self._live):
            self._hidden = [e for e in self._hidden if self._valid(e[2], e[1])]
            heapq.heapify(self._hidden)
        if len(self._ready) > 1024 and len(self._ready) > 2 * len(self._live):
            self._ready = deque(e for e in self._ready if self._valid(e[0], e[1]))

    def _forget(self, message: Any, *, deleted: bool = False) -> None:
        entry = self._live.pop(message, None)
        if entry is not None:
            self._count[entry[1]] -= 1
        handles = [h for h in message.all_receipt_handles if h is not None]
        for handle in handles:
            self._by_handle.pop(handle, None)
        self.pending_messages.discard(message)
        if deleted:
            self.deleted_messages.update(handles)

    def _promote(self, now: float) -> None:
        """Move the hidden messages whose time has come to the ready deque."""
        hidden = self._hidden
        while hidden and hidden[0][0] < now:
            _, version, message = heapq.heappop(hidden)
            if self._valid(message, version):
                self._ready.append((message, self._file(message, "ready")))

    # -- what moto reads ---------------------------------------------------------------------
    @property
    def messages(self) -> list[Any]:  # type: ignore[override]
        with self._messages_lock:
            return [m for m in self._live if m.visible and not m.delayed]

    def _counts(self) -> dict[str, int]:
        with self._messages_lock:
            self._promote(unix_time_millis())
            return dict(self._count)

    @property
    def approximate_number_of_messages_delayed(self) -> int:  # type: ignore[override]
        return self._counts()["delayed"]

    @property
    def approximate_number_of_messages_not_visible(self) -> int:  # type: ignore[override]
        return self._counts()["invisible"]

    @property
    def approximate_number_of_messages(self) -> int:  # type: ignore[override]
        return self._counts()["ready"]

    def add_message(self, message: Any) -> None:
        # moto's add_message appends to ``_messages`` (our view) under the lock, notifies the
        # long polls, and runs Lambda event-source mappings; standard queues skip its dedup scan.
        super().add_message(message)

    def delete_message(self, receipt_handle: str) -> None:
        with self._messages_lock:
            if receipt_handle in self.deleted_messages:
                return  # deleted already: SQS accepts it again
            message = self._by_handle.get(receipt_handle)
            if message is None or message not in self._live:
                raise ReceiptHandleIsInvalid()
            self._forget(message, deleted=True)

    def wait_for_messages(self, timeout: int) -> None:
        with self._messages_lock:
            self._messages_lock.wait_for(lambda: self._has_ready(unix_time_millis()), timeout=timeout)

    def _has_ready(self, now: float) -> bool:
        self._promote(now)
        return self._count["ready"] > 0

    # -- the operations the backend hands over -----------------------------------------------
    def receive(self, count: int, wait_seconds: int, visibility_timeout: int,
                attribute_names: list[str]) -> list[Any]:
        """ReceiveMessage: up to ``count`` messages, long-polling ``wait_seconds`` for the first."""
        deadline = unix_time_millis() + 1000.0 * max(0, int(wait_seconds or 0))
        with self._messages_lock:
            while True:
                now = unix_time_millis()
                result = self._take(count, visibility_timeout, attribute_names, now)
                if result or not wait_seconds or now >= deadline:
                    return result
                timeout_ms = deadline - now
                if self._hidden:
                    timeout_ms = min(timeout_ms, max(1.0, self._hidden[0][0] - now + 1.0))
                self._messages_lock.wait(timeout_ms / 1000.0)

    def _take(self, count: int, visibility_timeout: int, attribute_names: list[str], now: float) -> list[Any]:
        self._promote(now)
        out: list[Any] = []
        refile: list[Any] = []
        retention_ms = 1000.0 * float(self.message_retention_period or 0)  # type: ignore[attr-defined]
        redrive = self.redrive_policy if self.dead_letter_queue is not None else None  # type: ignore[attr-defined]
        while self._ready and len(out) < count:
            message, version = self._ready.popleft()
            if not self._valid(message, version):
                continue  # stale entry
            if not message.visible or message.delayed:
                refile.append(message)  # its visibility changed since it was filed
                continue
            self.pending_messages.discard(message)
            if retention_ms and (message.sent_timestamp or 0) + retention_ms <= now:
                self._forget(message)  # past the retention period: SQS deletes it
                continue
            if redrive and message.approximate_receive_count >= int(redrive["maxReceiveCount"]):
                self._forget(message)
                self.dead_letter_queue.add_message(message)  # type: ignore[union-attr]
                continue
            self.pending_messages.add(message)
            message.mark_received(visibility_timeout=visibility_timeout)
            refile.append(message)
            delivered = deepcopy(message)
            _filter_attributes(delivered, attribute_names)
            out.append(delivered)
        for message in refile:
            # after the loop, so a message left visible is not handed out twice in one call
            self._place(message, now)
        return out

    def change_visibility(self, receipt_handle: str, visibility_timeout: int) -> None:
        """ChangeMessageVisibility with any handle the message has had (moto's rule)."""
        with self._messages_lock:
            message = self._by_handle.get(receipt_handle)
            if message is None or message not in self._live:
                raise ReceiptHandleIsInvalid()
            until = unix_time_millis() + int(visibility_timeout) * 1000
            if until - (message.sent_timestamp or 0) > MAX_TOTAL_VISIBILITY_S * 1000:
                raise InvalidParameterValue(
                    f"Value {visibility_timeout} for parameter VisibilityTimeout is invalid. Reason: Total "
                    f"VisibilityTimeout for the message is beyond the limit [{MAX_TOTAL_VISIBILITY_S} seconds]"
                )
            message.change_visibility(visibility_timeout)
            if message.visible:
                self.pending_messages.discard(message)
            self._place(message)
            self._messages_lock.notify_all()


def _filter_attributes(message: Any, names: list[str]) -> None:
    """Keep the message attributes ReceiveMessage asked for ("All", names, ``prefix.*``)."""
    every = "All" in names
    wanted = set(names)
    prefixes = [n[:-2] for n in names if n.endswith(".*")]
    message.message_attributes = {
        k: v for k, v in message.message_attributes.items()
        if every or k in wanted or any(k.startswith(p) for p in prefixes)
    }
