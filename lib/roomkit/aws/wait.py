"""``wait``: learn when async invocations finish — SQS notifications first, S3 as the fallback.

``wait`` reads the deployment's SQS queue (subscribed to the success and error SNS topics),
drops duplicate deliveries by ``inferenceId`` (SNS delivers at least once), deletes the
messages it consumed and leaves other consumers' messages in the queue: they become visible
again after ``foreign_visibility_s`` (a short invisibility, so that a long queue of other
messages cannot starve ours). Each receive counts towards a message's receive count, so a queue
shared by several consumers should not have a low ``maxReceiveCount`` redrive policy.

Cost: one ReceiveMessage and one DeleteMessageBatch per ten notifications, so O(N) calls for N
jobs. One reader long-polls; while batches come back full (a backlog of notifications), up to
``readers - 1`` more read beside it, each ten messages a call, so draining is not capped by one
connection's round trips (on AWS a reader handles a few hundred notifications a second). Every
completion is recorded by one loop, once per inference id, whichever reader brought it.

When no notification has arrived for ``fallback_after`` seconds — or the deployment has no
queue, or the queue cannot be read — it looks in S3: jobs submitted with a batch prefix
(``Job.batch``: their outputs and failures are under ``<S3OutputPath>/<batch>/``) are found by
listing those prefixes, 1,000 keys a call; other jobs by HEAD on ``OutputLocation`` /
``FailureLocation`` (oldest first, at most :data:`PROBE_BATCH` per sweep). On timeout it
returns what finished and names what did not; ``raise_on_timeout=True`` raises
:class:`~roomkit.aws.jobs.WaitTimeout`.
"""
from __future__ import annotations

import logging
import math
import queue as queue_module
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterable, Mapping, Sequence

from roomkit.errors import ConfigError
from roomkit.aws.inputs import parse_s3_uri, s3_uri
from roomkit.aws.jobs import FAILED, SUCCESS, Completion, Job, WaitResult, WaitTimeout, utcnow
from roomkit.aws.notifications import AsyncNotification, parse_notification
from roomkit.aws.s3 import error_text, head, is_aws_error, progress_bar
from roomkit.aws.target import target_of

log = logging.getLogger(__name__)

PROBE_BATCH = 1000  # HEAD requests per S3 fallback sweep at most
LIST_MIN_JOBS = 20  # a batch prefix with at least this many pending jobs is listed, not HEADed
SQS_BATCH = 10  # ReceiveMessage's maximum per call
MAX_BATCH_PAUSE = 2.0  # seconds a reader may pause to let a batch fill


def wait(
    jobs: Iterable[Job] | WaitResult,
    deployment: Any,
    session: Any,
    *,
    timeout: float | None = 3600.0,
    poll_interval: float = 5.0,
    fallback_after: float = 60.0,
    foreign_visibility_s: int = 15,
    batch_window: float = 0.25,
    readers: int = 4,
    raise_on_timeout: bool = False,
    progress: bool = True,
) -> WaitResult:
    """Wait until every job has finished (or ``timeout`` seconds pass); returns a :class:`WaitResult`.

    Completions come from the deployment's SQS queue; S3 is probed for jobs without news after
    ``fallback_after`` seconds of silence (every ``poll_interval`` s when the deployment has no
    queue). Duplicate notifications are dropped; consumed messages are deleted; messages that
    belong to other jobs are left in the queue. On timeout the result names the unfinished jobs
    (``.pending``, ``.summary()``); with ``raise_on_timeout=True`` :class:`WaitTimeout` is raised.
    Passing an earlier :class:`WaitResult` continues from it.

    After a poll that brought fewer than ten messages while jobs are still pending, the next
    poll waits at least ``batch_window`` seconds — longer, up to :data:`MAX_BATCH_PAUSE`, when
    notifications arrive slower than ten per window, about as long as ten take at the rate just
    seen — so that notifications arriving one by one are read ten at a time: SQS bills each
    request, and in local mode every poll costs CPU on the cores that run the model. A
    completion is seen at most that much later; ``batch_window=0`` polls without pausing.
    ``readers`` bounds the concurrent ReceiveMessage calls while a backlog is drained (1: a
    single reader).
    """
    target = target_of(deployment)
    if isinstance(jobs, WaitResult):
        completions = dict(jobs.completions)
        jobs = list(jobs.jobs)
    else:
        jobs = list(jobs)
        completions = {}
    if poll_interval <= 0:
        raise ConfigError(f"poll_interval must be positive, got {poll_interval}")
    if readers < 1:
        raise ConfigError(f"readers must be at least 1, got {readers}")
    for job in jobs:
        if job.error and job.inference_id not in completions:
            completions[job.inference_id] = Completion(
                job.inference_id, FAILED, failure_reason=job.error, source="submit"
            )
    by_id: dict[str, Job] = {}
    for job in jobs:
        by_id.setdefault(job.inference_id, job)
    pending = {i for i in by_id if i not in completions}

    s3 = session.client("s3")
    sqs = session.client("sqs") if target.queue_url else None
    start = time.monotonic()
    deadline = None if timeout is None else start + max(0.0, timeout)
    last_news = start
    # Jobs reused from an earlier run finished long ago: look them up in S3 right away.
    probe_now = {j.inference_id for j in jobs if j.reused and j.inference_id in pending}
    next_probe = start if sqs is None else start + fallback_after
    duplicates = 0
    n_failed = sum(1 for c in completions.values() if c.status == FAILED)
    bar = progress_bar(total=len(by_id), desc="waiting", disable=not progress, unit="plan")
    bar.update(len(by_id) - len(pending))

    def record(completion: Completion) -> None:
        nonlocal last_news, n_failed
        completions[completion.inference_id] = completion
        pending.discard(completion.inference_id)
        last_news = time.monotonic()
        bar.update(1)
        if completion.status == FAILED:
            n_failed += 1
            bar.set_postfix_str(f"failed: {n_failed}")

    def sweep() -> None:
        for c in _probe_s3(s3, [by_id[i] for i in pending]):
            if c.inference_id in pending:
                record(c)

    pool: _Readers | None = None
    if sqs is not None:
        span = min(20, max(1, math.ceil(poll_interval)))
        pool = _Readers(sqs, target.queue_url or "", by_id, completions, wait_s=span,
                        visibility_s=foreign_visibility_s, batch_window=batch_window, readers=readers)
    timed_out = False
    try:
        if probe_now:
            for c in _probe_s3(s3, [by_id[i] for i in probe_now]):
                record(c)
        if pool is not None and pending:
            pool.start()
        while pending:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                # One last look in S3 so that the result is accurate even when notifications
                # were lost or fallback_after is longer than the timeout.
                if pool is not None:
                    for note in pool.close():
                        duplicates += _take(note, completions, record)
                    pool = None
                sweep()
                timed_out = bool(pending)
                break
            if now >= next_probe and (pool is None or now - last_news >= fallback_after):
                sweep()
                next_probe = time.monotonic() + (poll_interval if pool is None else fallback_after)
                continue
            nap = next_probe - now if deadline is None else min(next_probe - now, deadline - now)
            if pool is None:
                time.sleep(max(0.0, nap))
                continue
            try:
                item = pool.results.get(timeout=max(0.01, min(nap, 1.0)))
            except queue_module.Empty:
                continue
            if isinstance(item, BaseException):
                for note in pool.close():
                    duplicates += _take(note, completions, record)
                pool = None
                if not is_aws_error(item):
                    raise item
                log.warning("cannot read notifications from %s (%s); polling S3 instead",
                            target.queue_url, error_text(item))
                next_probe = time.monotonic()
                continue
            for note in item:
                duplicates += _take(note, completions, record)
    finally:
        if pool is not None:
            for note in pool.close():
                duplicates += _take(note, completions, record)
        bar.close()

    result = WaitResult(
        jobs=jobs,
        completions=completions,
        timed_out=timed_out,
        elapsed_s=time.monotonic() - start,
        duplicates=duplicates,
    )
    if timed_out and raise_on_timeout:
        raise WaitTimeout(result)
    return result


def _take(note: AsyncNotification, completions: Mapping[str, Completion], record: Any) -> int:
    """Record a notification unless its job is done already; 1 for a duplicate, else 0."""
    if note.inference_id in completions:
        return 1
    record(_completion_from(note))
    return 0


class _Readers:
    """The threads that read the notification queue for one ``wait``.

    Reader 0 long-polls (``wait_s``) all along; after a partial batch it pauses ``batch_window``
    or, when notifications come slower, about as long as ten take at the rate just seen (at most
    :data:`MAX_BATCH_PAUSE`).
    Readers 1… poll only while batches come back full (a backlog), with 1-s long polls, and park
    as soon as one of theirs is not full. A reader hands our notifications to ``results`` and
    then deletes their messages; a reader whose answer comes back after :meth:`close` hands
    nothing over: it deletes the messages of jobs already complete (duplicates) and makes the
    others visible again at once, so no completion is consumed without being recorded.
    """

    def __init__(self, sqs: Any, queue_url: str, ours: Mapping[str, Job], completions: Mapping[str, Completion],
                 *, wait_s: int, visibility_s: int, batch_window: float, readers: int) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.ours = ours
        self.completions = completions
        self.wait_s = wait_s
        self.visibility_s = max(0, int(visibility_s))
        self.batch_window = batch_window
        self.n = readers
        self.results: queue_module.Queue[Any] = queue_module.Queue()
        self._stop = threading.Event()
        self._surge = threading.Event()
        self._lock = threading.Lock()
        self._deleting = 0
        self._deleted = threading.Condition(self._lock)
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for i in range(self.n):
            thread = threading.Thread(target=self._run, args=(i,), name=f"roomkit-wait-reader-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def close(self) -> list[AsyncNotification]:
        """Stop; wait for deletions of handed-over messages; what was handed over and not read."""
        with self._lock:
            self._stop.set()
            self._surge.set()  # wake the parked readers so they exit
            self._deleted.wait_for(lambda: self._deleting == 0, timeout=30.0)
        left: list[AsyncNotification] = []
        while True:
            try:
                item = self.results.get_nowait()
            except queue_module.Empty:
                break
            if not isinstance(item, BaseException):
                left.extend(item)
        # Readers still inside a long poll finish it on their own (see the class docstring);
        # the parked ones have left already.
        for thread in self._threads:
            thread.join(timeout=0.05)
        return left

    def _run(self, index: int) -> None:
        since = time.monotonic()  # start of the span the next batch covers
        while not self._stop.is_set():
            if index > 0 and not self._surge.is_set():
                self._surge.wait(1.0)
                continue
            try:
                response = self.sqs.receive_message(
                    QueueUrl=self.queue_url,
                    MaxNumberOfMessages=SQS_BATCH,
                    WaitTimeSeconds=self.wait_s if index == 0 else 1,
                    VisibilityTimeout=self.visibility_s,
                )
            except Exception as exc:  # noqa: BLE001 - handed to wait(), which decides
                if not self._stop.is_set():
                    self.results.put(exc)
                    self._stop.set()
                return
            messages = response.get("Messages", [])
            full = len(messages) >= SQS_BATCH
            if full:
                self._surge.set()
            elif index == 0 or not messages:
                self._surge.clear()
            notes, consumed, foreign = _split(messages, self.ours)
            with self._lock:
                stopped = self._stop.is_set()
                if not stopped:
                    if notes:
                        self.results.put(notes)
                    self._deleting += 1
            if stopped:
                self._release(notes, consumed, foreign)
                return
            try:
                self._delete(consumed)
            finally:
                with self._lock:
                    self._deleting -= 1
                    self._deleted.notify_all()
            if index > 0 and not full:
                continue  # park (or stop) until the next surge
            if index == 0 and not full and notes and self.batch_window > 0:
                # This poll emptied the queue: pause until ten more may have arrived at the rate
                # this batch came in.
                rate = len(messages) / max(1e-3, time.monotonic() - since)
                self._stop.wait(min(MAX_BATCH_PAUSE, max(self.batch_window, SQS_BATCH / rate)))
            if index == 0 and messages:
                since = time.monotonic()

    def _delete(self, entries: list[dict[str, str]]) -> None:
        if not entries:
            return
        try:
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
        except Exception as exc:  # noqa: BLE001 - a redelivery is harmless: deduplicated
            if not is_aws_error(exc):
                raise
            log.warning("could not delete consumed notifications: %s", error_text(exc))

    def _release(self, notes: list[AsyncNotification], consumed: list[dict[str, str]],
                 foreign: list[dict[str, str]]) -> None:
        """After close: delete duplicates of finished jobs, make everything else visible again."""
        done = [e for note, e in zip(notes, consumed) if note.inference_id in self.completions]
        again = [e for note, e in zip(notes, consumed) if note.inference_id not in self.completions] + foreign
        try:
            self._delete(done)
            if again:
                self.sqs.change_message_visibility_batch(
                    QueueUrl=self.queue_url,
                    Entries=[{"Id": e["Id"], "ReceiptHandle": e["ReceiptHandle"], "VisibilityTimeout": 0}
                             for e in again],
                )
        except Exception as exc:  # noqa: BLE001 - they reappear after their visibility timeout anyway
            log.debug("could not release notifications after wait ended: %s", exc)


def _split(messages: Sequence[Mapping[str, Any]], ours: Mapping[str, Job]
           ) -> tuple[list[AsyncNotification], list[dict[str, str]], list[dict[str, str]]]:
    """Our notifications with their delete entries, and the entries of everyone else's."""
    notes: list[AsyncNotification] = []
    consumed: list[dict[str, str]] = []
    foreign: list[dict[str, str]] = []
    for n, message in enumerate(messages):
        entry = {"Id": str(n), "ReceiptHandle": message["ReceiptHandle"]}
        note = parse_notification(message.get("Body", ""))
        if note is None or note.inference_id not in ours:
            # Not ours (another client, another batch): leave it. It becomes visible to other
            # consumers again after the visibility timeout; deleting it would lose their result.
            foreign.append(entry)
            continue
        notes.append(note)
        consumed.append(entry)
    return notes, consumed, foreign


def _completion_from(note: AsyncNotification) -> Completion:
    return Completion(
        inference_id=note.inference_id,
        status=note.status,
        output_location=note.output_location,
        failure_location=note.failure_location,
        failure_reason=note.failure_reason,
        completed_at=note.event_time or utcnow(),
        source="notification",
        response_body=note.response_body,
    )


def _probe_s3(s3: Any, jobs: Sequence[Job], max_workers: int = 16) -> list[Completion]:
    """Completions for jobs whose output or failure object exists in S3.

    Jobs with a batch prefix are looked up by listing their output and failure prefixes when at
    least :data:`LIST_MIN_JOBS` of them share one (1,000 keys a call); the others by HEAD
    requests, oldest first, at most :data:`PROBE_BATCH` per call.
    """
    if not jobs:
        return []
    groups: dict[tuple[str, str], list[Job]] = defaultdict(list)
    for job in jobs:
        if job.batch and job.output_location:
            groups[(_parent(job.output_location), _parent(job.failure_location))].append(job)
    found: list[Completion] = []
    listed: set[str] = set()
    for group in groups.values():
        if len(group) >= LIST_MIN_JOBS:
            completions = _list_group(s3, group)
            if completions is not None:
                found.extend(completions)
                listed.update(j.inference_id for j in group)
    headed = sorted((j for j in jobs if j.inference_id not in listed), key=lambda j: j.submitted_at)
    headed = headed[:PROBE_BATCH]
    if not headed:
        return found

    def probe(job: Job) -> Completion | None:
        meta = head(s3, job.output_location)
        if meta is not None:
            return Completion(
                job.inference_id, SUCCESS, output_location=job.output_location,
                completed_at=meta.get("LastModified"), source="s3",
            )
        if job.failure_location:
            meta = head(s3, job.failure_location)
            if meta is not None:
                return Completion(
                    job.inference_id, FAILED, failure_location=job.failure_location,
                    completed_at=meta.get("LastModified"), source="s3",
                )
        return None

    with ThreadPoolExecutor(max_workers=min(max_workers, len(headed))) as pool:
        found.extend(c for c in pool.map(probe, headed) if c is not None)
    return found


def _parent(uri: str | None) -> str:
    return uri.rsplit("/", 1)[0] + "/" if uri and "/" in uri[5:] else ""


def _list_group(s3: Any, jobs: Sequence[Job]) -> list[Completion] | None:
    """Completions of jobs sharing output/failure prefixes, by listing both prefixes
    (``None`` when a prefix cannot be listed: those jobs are then probed one by one)."""
    present: dict[str, Any] = {}
    for prefix in {_parent(j.output_location) for j in jobs} | {_parent(j.failure_location) for j in jobs}:
        if prefix:
            objects = _list_prefix(s3, prefix)
            if objects is None:
                return None
            present.update(objects)
    found: list[Completion] = []
    for job in jobs:
        if job.output_location in present:
            found.append(Completion(job.inference_id, SUCCESS, output_location=job.output_location,
                                    completed_at=present[job.output_location], source="s3"))
        elif job.failure_location and job.failure_location in present:
            found.append(Completion(job.inference_id, FAILED, failure_location=job.failure_location,
                                    completed_at=present[job.failure_location], source="s3"))
    return found


def _list_prefix(s3: Any, prefix_uri: str) -> dict[str, Any] | None:
    """``{s3 URI: LastModified}`` of every object under an ``s3://bucket/prefix/`` (``None``
    when it cannot be listed, e.g. no ``s3:ListBucket`` permission)."""
    from botocore.exceptions import ClientError

    bucket, prefix = parse_s3_uri(prefix_uri)
    out: dict[str, Any] = {}
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                out[s3_uri(bucket, obj["Key"])] = obj.get("LastModified")
    except ClientError as exc:
        log.warning("cannot list %s (%s); probing its jobs one by one", prefix_uri, error_text(exc))
        return None
    return out
