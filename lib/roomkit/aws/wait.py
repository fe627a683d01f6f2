"""``wait``: learn when async invocations finish — SQS notifications first, S3 as the fallback.

``wait`` reads the deployment's SQS queue (subscribed to the success and error SNS topics),
drops duplicate deliveries by ``inferenceId`` (SNS delivers at least once), deletes the
messages it consumed and leaves other consumers' messages in the queue: they become visible
again after ``foreign_visibility_s`` (a short invisibility, so that a long queue of other
messages cannot starve ours). Each receive counts towards a message's receive count, so a queue
shared by several consumers should not have a low ``maxReceiveCount`` redrive policy.

When no notification has arrived for ``fallback_after`` seconds — or the deployment has no
queue, or the queue cannot be read — it HEADs ``OutputLocation``/``FailureLocation`` in S3
(oldest jobs first, at most :data:`PROBE_BATCH` per sweep). On timeout it returns what finished
and names what did not; ``raise_on_timeout=True`` raises :class:`~roomkit.aws.jobs.WaitTimeout`.
"""
from __future__ import annotations

import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterable, Sequence

from roomkit.errors import ConfigError
from roomkit.aws.jobs import FAILED, SUCCESS, Completion, Job, WaitResult, WaitTimeout, utcnow
from roomkit.aws.notifications import AsyncNotification, parse_notification
from roomkit.aws.s3 import error_text, head, is_aws_error, progress_bar
from roomkit.aws.target import target_of

log = logging.getLogger(__name__)

PROBE_BATCH = 1000  # HEAD requests per S3 fallback sweep at most


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
    poll waits ``batch_window`` seconds, so that notifications arriving one by one are read ten
    at a time: SQS bills each request, and in local mode every poll costs CPU on the cores that
    run the model. A completion is seen at most that much later.
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
    bar = progress_bar(total=len(by_id), desc="waiting", disable=not progress, unit="plan")
    bar.update(len(by_id) - len(pending))

    def record(completion: Completion) -> None:
        nonlocal last_news
        completions[completion.inference_id] = completion
        pending.discard(completion.inference_id)
        last_news = time.monotonic()
        bar.update(1)
        n_failed = sum(1 for c in completions.values() if c.status == FAILED)
        if n_failed:
            bar.set_postfix_str(f"failed: {n_failed}")

    def sweep() -> None:
        # Oldest first, bounded per sweep: they are the likeliest to be done.
        batch = sorted((by_id[i] for i in pending), key=lambda j: j.submitted_at)[:PROBE_BATCH]
        for c in _probe_s3(s3, batch):
            if c.inference_id in pending:
                record(c)

    timed_out = False
    try:
        if probe_now:
            for c in _probe_s3(s3, [by_id[i] for i in probe_now]):
                record(c)
        while pending:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                # One last look in S3 so that the result is accurate even when notifications
                # were lost or fallback_after is longer than the timeout.
                sweep()
                timed_out = bool(pending)
                break
            if now >= next_probe and (sqs is None or now - last_news >= fallback_after):
                sweep()
                next_probe = time.monotonic() + (poll_interval if sqs is None else fallback_after)
                continue
            remaining = None if deadline is None else deadline - now
            if sqs is not None:
                # SQS long polls in whole seconds and returns as soon as a message is there.
                span = min(poll_interval, remaining if remaining is not None else poll_interval)
                wait_s = min(20, max(1, math.ceil(span)))
                try:
                    notes = _drain(sqs, target.queue_url, set(by_id), wait_s, foreign_visibility_s)
                except Exception as exc:  # noqa: BLE001 - a broken queue must not lose the batch
                    if not is_aws_error(exc):
                        raise
                    log.warning("cannot read notifications from %s (%s); polling S3 instead",
                                target.queue_url, error_text(exc))
                    sqs, next_probe, notes = None, time.monotonic(), []
                for note in notes:
                    if note.inference_id in completions:
                        duplicates += 1
                        continue
                    record(_completion_from(note))
                if notes and len(notes) < 10 and pending and batch_window > 0:
                    left = batch_window if deadline is None else min(batch_window, deadline - time.monotonic())
                    time.sleep(max(0.0, left))
            else:
                nap = next_probe - now if remaining is None else min(next_probe - now, remaining)
                time.sleep(max(0.0, nap))
    finally:
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


def _drain(
    sqs: Any, queue_url: str, ours: set[str], wait_s: int, foreign_visibility_s: int
) -> list[AsyncNotification]:
    """One long poll: our notifications (their messages deleted); others' left in the queue."""
    response = sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=10,
        WaitTimeSeconds=max(0, min(20, wait_s)),
        VisibilityTimeout=max(0, int(foreign_visibility_s)),
    )
    notes: list[AsyncNotification] = []
    consumed: list[dict[str, str]] = []
    for message in response.get("Messages", []):
        note = parse_notification(message.get("Body", ""))
        if note is None or note.inference_id not in ours:
            # Not ours (another client, another batch): leave it. It becomes visible to other
            # consumers again after foreign_visibility_s; deleting it would lose their result.
            continue
        notes.append(note)
        consumed.append({"Id": str(len(consumed)), "ReceiptHandle": message["ReceiptHandle"]})
    if consumed:
        try:
            sqs.delete_message_batch(QueueUrl=queue_url, Entries=consumed)
        except Exception as exc:  # noqa: BLE001 - a redelivery is harmless: deduplicated
            if not is_aws_error(exc):
                raise
            log.warning("could not delete consumed notifications: %s", error_text(exc))
    return notes


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
    """Completions for jobs whose output or failure object exists in S3 (HEAD requests)."""
    if not jobs:
        return []

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

    with ThreadPoolExecutor(max_workers=min(max_workers, len(jobs))) as pool:
        return [c for c in pool.map(probe, jobs) if c is not None]
