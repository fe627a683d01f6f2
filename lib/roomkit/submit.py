"""Push plans through an async endpoint and collect the rooms: ``submit`` → ``wait`` → ``results``.

The same code runs against AWS (``mode="aws"``) and the loopback local mode; it only ever talks
to the clients of the :class:`~roomkit.aws.AwsSession` it is given.

Identity and re-submission
    Every plan is identified by its content hash (``plan_key``: SHA-256 of the bytes for local
    files). Its upload key is ``<input prefix>/<plan_key[:16]>/<filename>`` (uploaded once: an
    object already there with the same size is not sent again) and its ``InferenceId`` is
    ``<plan_key[:40]>-<12 hex>``: the prefix makes a re-submitted plan recognizable in
    notifications, S3 and logs, the suffix makes each invocation distinct so completions are
    never confused (the suffix is fixed before the first attempt, so a retried call after a lost
    response yields at worst a duplicate notification, which ``wait`` drops).

    By default (``rerun=False``) a plan that already finished successfully on the same endpoint
    with the same ``custom_attributes`` — according to the ``previous`` job handles you pass,
    e.g. ``load_jobs("jobs.json")`` — is not invoked again: its handle is returned with
    ``reused=True`` after checking that its output object still exists. Identical bytes given
    twice in one call are invoked once and share that invocation. ``rerun=True`` always invokes.

Completion
    ``wait`` reads the deployment's SQS queue (subscribed to the success and error topics), drops
    duplicate deliveries by ``inferenceId``, deletes the messages it consumed and leaves other
    consumers' messages in the queue (they become visible again after ``foreign_visibility_s``).
    When no notification has arrived for ``fallback_after`` seconds — or the deployment has no
    queue — it probes ``OutputLocation``/``FailureLocation`` in S3 instead. On timeout it returns
    what finished and names what did not.
"""
from __future__ import annotations

import json
import logging
import math
import os
import random
import secrets
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from roomkit.errors import ConfigError, InputError, RoomkitError
from roomkit.inputs import PlanInput, parse_s3_uri, resolve_inputs, s3_uri
from roomkit.jobs import (
    FAILED,
    PENDING,
    SUCCESS,
    Completion,
    Job,
    LatencyStats,
    ResultRow,
    WaitResult,
    WaitTimeout,
    latency_stats,
    load_jobs,
    save_jobs,
    to_dataframe,
    utcnow,
)
from roomkit.notifications import AsyncNotification, parse_notification
from roomkit.target import AsyncTarget, target_of

__all__ = [
    "AsyncTarget",
    "Backoff",
    "Completion",
    "Job",
    "LatencyStats",
    "ResultRow",
    "SubmitError",
    "SubmitInterrupted",
    "WaitResult",
    "WaitTimeout",
    "latency_stats",
    "load_jobs",
    "results",
    "save_jobs",
    "submit",
    "target_of",
    "to_dataframe",
    "transform",
    "wait",
]

log = logging.getLogger(__name__)

ACCEPT = "application/json"
TTL_RANGE = (60, 21600)
INVOCATION_TIMEOUT_RANGE = (1, 3600)
THROTTLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "SlowDown",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalError",
        "InternalServerError",
    }
)
RETRY_HTTP_STATUS = frozenset({429, 500, 502, 503, 504})
_ID_PLAN_CHARS = 40
PROBE_BATCH = 1000  # HEAD requests per S3 fallback sweep at most


class SubmitError(RoomkitError):
    """No plan could be submitted (e.g. the endpoint does not exist or access is denied)."""

    code = "submit_failed"


class SubmitInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`submit`; ``.jobs`` holds the plans already invoked (save them)."""

    def __init__(self, jobs: list[Job]) -> None:
        super().__init__(f"interrupted after submitting {len(jobs)} plan(s)")
        self.jobs = jobs


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter for throttled calls.

    Attempt ``n`` (from 0) sleeps a uniform random time in ``[0, min(cap, base * 2**n)]``, the
    scheme that spreads many clients' retries best (AWS Architecture Blog, "Exponential Backoff
    and Jitter").
    """

    attempts: int = 8
    base: float = 0.25
    cap: float = 20.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.base < 0 or self.cap < 0:
            raise ConfigError(f"invalid backoff {self}")

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        return (rng or random).uniform(0.0, min(self.cap, self.base * (2 ** attempt)))


def is_retryable(exc: BaseException) -> bool:
    """Throttling, 429/5xx and dropped connections: worth another try; everything else is not."""
    from botocore.exceptions import (
        ClientError,
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        ReadTimeoutError,
    )

    if isinstance(exc, (EndpointConnectionError, ConnectionClosedError, ReadTimeoutError, ConnectTimeoutError)):
        return True
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return code in THROTTLE_CODES or status in RETRY_HTTP_STATUS
    return False


def call_with_backoff(
    fn: Callable[[], Any], backoff: Backoff = Backoff(), *, sleep: Callable[[float], None] = time.sleep
) -> Any:
    """Call ``fn`` until it succeeds, retrying retryable errors (see :func:`is_retryable`)."""
    for attempt in range(backoff.attempts):
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - filtered right below
            if not is_retryable(exc) or attempt == backoff.attempts - 1:
                raise
            delay = backoff.delay(attempt)
            log.debug("retryable error (%s), attempt %d, sleeping %.2f s", exc, attempt + 1, delay)
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


# -- submit ---------------------------------------------------------------------------------------
def submit(
    inputs: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
    deployment: Any,
    session: Any,
    *,
    ttl_seconds: int | None = None,
    invocation_timeout_seconds: int | None = None,
    custom_attributes: str | None = None,
    rerun: bool = False,
    previous: Iterable[Job] | None = None,
    max_workers: int = 8,
    backoff: Backoff = Backoff(),
    progress: bool = True,
) -> list[Job]:
    """Upload local plans and invoke the async endpoint once per plan; one :class:`Job` each.

    Parameters
    ----------
    inputs:
        Local files, directories (searched recursively for plan files), ``s3://`` objects or
        prefixes. All are resolved and checked before anything is uploaded.
    deployment:
        A :class:`~roomkit.deploy.Deployment`, its JSON manifest path, or an
        :class:`AsyncTarget`.
    session:
        :func:`roomkit.aws.session` (local or aws mode).
    ttl_seconds, invocation_timeout_seconds:
        ``RequestTTLSeconds`` (60–21600; how long a request may wait in the queue, e.g. while
        the endpoint scales up from zero) and ``InvocationTimeoutSeconds`` (1–3600).
        ``None`` keeps SageMaker's defaults (6 h and 15 min).
    custom_attributes:
        Passed as ``CustomAttributes`` (≤1024 visible ASCII characters) to the container.
    rerun, previous:
        See the module docstring: reuse of finished results vs. a fresh invocation.
    max_workers:
        Parallel uploads/invocations (bounded thread pool).
    backoff:
        Retry policy for throttling (ThrottlingException, 429, ServiceUnavailable, 5xx).

    Returns
    -------
    One job per input plan, in input order. A plan that could not be submitted comes back
    with ``error`` set (it counts as failed); if no plan at all could be submitted,
    :class:`SubmitError` is raised with the first reason.
    """
    from botocore.config import Config

    target = target_of(deployment)
    if target.kind != "async":
        raise ConfigError(
            f"{target.endpoint_name} is a {target.kind} endpoint: submit() needs an async one "
            "(deploy with kind: async, or call invoke_endpoint directly)"
        )
    _check_range("ttl_seconds", ttl_seconds, TTL_RANGE)
    _check_range("invocation_timeout_seconds", invocation_timeout_seconds, INVOCATION_TIMEOUT_RANGE)
    if custom_attributes is not None:
        if not isinstance(custom_attributes, str) or len(custom_attributes) > 1024 or not all(
            0x20 <= ord(c) < 0x7F for c in custom_attributes
        ):
            raise ConfigError("custom_attributes must be at most 1024 visible ASCII characters")
    if max_workers < 1:
        raise ConfigError(f"max_workers must be at least 1, got {max_workers}")

    s3 = session.client("s3")
    # Throttling is retried here, with jitter, around each call; botocore's own retries off so
    # the two do not multiply.
    runtime = session.client(
        "sagemaker-runtime", config=Config(retries={"max_attempts": 1, "mode": "standard"})
    )
    plans = resolve_inputs(inputs, s3)

    reusable = {} if rerun else _finished_previous(previous or (), target, custom_attributes, s3)
    # One invocation per distinct plan; identical bytes given twice share it.
    groups: dict[str, list[int]] = {}
    for index, plan in enumerate(plans):
        groups.setdefault(plan_key_of(plan), []).append(index)

    jobs: list[Job | None] = [None] * len(plans)
    to_send: list[tuple[str, PlanInput]] = []
    for key, indexes in groups.items():
        earlier = reusable.get(key)
        if earlier is not None:
            for i in indexes:
                jobs[i] = replace(earlier, input=plans[i].source, reused=True)
        else:
            to_send.append((key, plans[indexes[0]]))

    def send(key: str, plan: PlanInput) -> Job:
        return _submit_one(
            plan, key, target, s3, runtime, backoff,
            ttl_seconds=ttl_seconds,
            invocation_timeout_seconds=invocation_timeout_seconds,
            custom_attributes=custom_attributes,
        )

    sent: dict[str, Job] = {}
    if to_send:
        bar = _progress(total=len(to_send), desc="submitting", disable=not progress)
        with ThreadPoolExecutor(max_workers=min(max_workers, len(to_send))) as pool:
            futures = {pool.submit(send, key, plan): key for key, plan in to_send}
            try:
                for future in as_completed(futures):
                    job = future.result()
                    sent[futures[future]] = job
                    bar.update(1)
                    if job.error:
                        bar.set_postfix_str("errors: %d" % sum(1 for j in sent.values() if j.error))
            except KeyboardInterrupt:
                # Stop sending, but keep every invocation already made: they will complete and
                # their handles are how to find the results.
                for future in futures:
                    future.cancel()
                for future, key in futures.items():
                    if not future.cancelled() and key not in sent:
                        try:
                            sent[key] = future.result()
                        except Exception:  # noqa: BLE001 - it failed; nothing to keep
                            pass
                raise SubmitInterrupted(_in_order(plans, groups, jobs, sent)) from None
            finally:
                bar.close()
    result = _in_order(plans, groups, jobs, sent)
    if sent and all(j.error for j in sent.values()):
        first = next(iter(sent.values()))
        raise SubmitError(f"no plan could be submitted to {target.endpoint_name}: {first.error}")
    return result


def _in_order(
    plans: Sequence[PlanInput], groups: Mapping[str, list[int]], jobs: list[Job | None], sent: Mapping[str, Job]
) -> list[Job]:
    """Jobs in input order: reused ones as placed, sent ones shared by inputs of the same plan."""
    for key, indexes in groups.items():
        if key in sent:
            first = sent[key]
            for n, i in enumerate(indexes):
                jobs[i] = first if n == 0 else replace(first, input=plans[i].source, reused=True)
    return [j for j in jobs if j is not None]


def plan_key_of(plan: PlanInput) -> str:
    """The hex content hash a plan is known by (SHA-256 for local files, S3 ETag otherwise)."""
    kind, _, value = plan.digest.partition(":")
    value = value.lower()
    if kind == "sha256" or (kind == "etag" and all(c in "0123456789abcdef" for c in value) and value):
        return value
    import hashlib

    return hashlib.sha256(plan.digest.encode()).hexdigest()


def new_inference_id(plan_key: str) -> str:
    """``<plan_key[:40]>-<12 random hex>``: recognizable per plan, unique per invocation (≤64)."""
    return f"{plan_key[:_ID_PLAN_CHARS]}-{secrets.token_hex(6)}"


def plan_key_from_inference_id(inference_id: str) -> str:
    """The plan-hash prefix of an inference id made by :func:`new_inference_id`."""
    return inference_id.rsplit("-", 1)[0]


def _submit_one(
    plan: PlanInput,
    key: str,
    target: AsyncTarget,
    s3: Any,
    runtime: Any,
    backoff: Backoff,
    *,
    ttl_seconds: int | None,
    invocation_timeout_seconds: int | None,
    custom_attributes: str | None,
) -> Job:
    inference_id = new_inference_id(key)
    submitted_at = utcnow()
    input_uri = plan.s3_uri or ""
    try:
        if plan.local_path is not None:
            input_uri = upload_plan(plan, key, target, s3)
        request: dict[str, Any] = {
            "EndpointName": target.endpoint_name,
            "InputLocation": input_uri,
            "ContentType": plan.content_type,
            "Accept": ACCEPT,
            "InferenceId": inference_id,
        }
        if ttl_seconds is not None:
            request["RequestTTLSeconds"] = int(ttl_seconds)
        if invocation_timeout_seconds is not None:
            request["InvocationTimeoutSeconds"] = int(invocation_timeout_seconds)
        if custom_attributes is not None:
            request["CustomAttributes"] = custom_attributes
        submitted_at = utcnow()
        response = call_with_backoff(lambda: runtime.invoke_endpoint_async(**request), backoff)
    except Exception as exc:  # noqa: BLE001 - recorded on the job: a failed submission is not lost
        if not _is_aws_error(exc):
            raise
        return Job(
            input=plan.source,
            s3_input_uri=input_uri,
            inference_id=inference_id,
            output_location="",
            failure_location=None,
            submitted_at=submitted_at,
            content_type=plan.content_type,
            endpoint_name=target.endpoint_name,
            plan_key=key,
            custom_attributes=custom_attributes,
            error=f"submission failed: {_error_text(exc)}",
        )
    return Job(
        input=plan.source,
        s3_input_uri=input_uri,
        inference_id=response.get("InferenceId") or inference_id,
        output_location=response["OutputLocation"],
        failure_location=response.get("FailureLocation"),
        submitted_at=submitted_at,
        content_type=plan.content_type,
        endpoint_name=target.endpoint_name,
        plan_key=key,
        custom_attributes=custom_attributes,
    )


def upload_plan(plan: PlanInput, key: str, target: AsyncTarget, s3: Any) -> str:
    """Put a local plan under the input prefix once (content-addressed key); its S3 URI."""
    from botocore.exceptions import ClientError

    assert plan.local_path is not None
    bucket, prefix = parse_s3_uri(target.input_uri)
    object_key = f"{prefix.rstrip('/') + '/' if prefix.strip('/') else ''}{key[:16]}/{_safe_name(plan.filename)}"
    try:
        head = s3.head_object(Bucket=bucket, Key=object_key)
        if int(head.get("ContentLength", -1)) == plan.size:
            return s3_uri(bucket, object_key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound", "403"):
            raise
    extra: dict[str, Any] = {"ContentType": plan.content_type, "Metadata": {"roomkit-plan-key": key}}
    s3.upload_file(str(plan.local_path), bucket, object_key, ExtraArgs=extra)
    return s3_uri(bucket, object_key)


def _safe_name(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "._-" else "_" for c in name).strip("._") or "plan"
    if len(cleaned) > 100:
        stem, dot, ext = cleaned.rpartition(".")
        cleaned = (stem[: 100 - len(ext) - 1] + "." + ext) if dot and len(ext) <= 10 else cleaned[:100]
    return cleaned


def _finished_previous(
    previous: Iterable[Job], target: AsyncTarget, custom_attributes: str | None, s3: Any
) -> dict[str, Job]:
    """Earlier successful jobs of the same plan/endpoint/attributes whose output still exists."""
    candidates: dict[str, Job] = {}
    for job in previous:
        if job.error or not job.output_location or job.endpoint_name != target.endpoint_name:
            continue
        if job.custom_attributes != custom_attributes:
            continue
        candidates.setdefault(job.plan_key, job)
    found: dict[str, Job] = {}
    for key, job in candidates.items():
        if _exists(s3, job.output_location):
            found[key] = replace(job, reused=False)
    return found


# -- wait -----------------------------------------------------------------------------------------
def wait(
    jobs: Iterable[Job] | WaitResult,
    deployment: Any,
    session: Any,
    *,
    timeout: float | None = 3600.0,
    poll_interval: float = 5.0,
    fallback_after: float = 60.0,
    foreign_visibility_s: int = 15,
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
    bar = _progress(total=len(by_id), desc="waiting", disable=not progress, unit="plan")
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

    timed_out = False
    try:
        if probe_now:
            for c in _probe_s3(s3, [by_id[i] for i in probe_now]):
                record(c)
        while pending:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                timed_out = True
                break
            remaining = None if deadline is None else deadline - now
            if sqs is not None:
                # SQS long polls in whole seconds and returns as soon as a message is there.
                span = min(poll_interval, remaining if remaining is not None else poll_interval)
                wait_s = min(20, max(1, math.ceil(span)))
                try:
                    notes = _drain(sqs, target.queue_url, set(by_id), wait_s, foreign_visibility_s)
                except Exception as exc:  # noqa: BLE001 - a broken queue must not lose the batch
                    if not _is_aws_error(exc):
                        raise
                    log.warning("cannot read notifications from %s (%s); polling S3 instead",
                                target.queue_url, _error_text(exc))
                    sqs, next_probe, notes = None, time.monotonic(), []
                for note in notes:
                    if note.inference_id in completions:
                        duplicates += 1
                        continue
                    record(_completion_from(note))
            else:
                time.sleep(max(0.0, min(poll_interval, remaining if remaining is not None else poll_interval)))
            now = time.monotonic()
            silent = now - last_news >= fallback_after
            if pending and now >= next_probe and (sqs is None or silent):
                # Oldest first, bounded per sweep: they are the likeliest to be done.
                batch = sorted((by_id[i] for i in pending), key=lambda j: j.submitted_at)[:PROBE_BATCH]
                for c in _probe_s3(s3, batch):
                    if c.inference_id in pending:
                        record(c)
                next_probe = time.monotonic() + (poll_interval if sqs is None else fallback_after)
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
            if not _is_aws_error(exc):
                raise
            log.warning("could not delete consumed notifications: %s", _error_text(exc))
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
        head = _head(s3, job.output_location)
        if head is not None:
            return Completion(
                job.inference_id, SUCCESS, output_location=job.output_location,
                completed_at=head.get("LastModified"), source="s3",
            )
        if job.failure_location:
            head = _head(s3, job.failure_location)
            if head is not None:
                return Completion(
                    job.inference_id, FAILED, failure_location=job.failure_location,
                    completed_at=head.get("LastModified"), source="s3",
                )
        return None

    with ThreadPoolExecutor(max_workers=min(max_workers, len(jobs))) as pool:
        return [c for c in pool.map(probe, jobs) if c is not None]


# -- results --------------------------------------------------------------------------------------
def results(
    jobs: Iterable[Job] | WaitResult,
    deployment: Any = None,
    session: Any = None,
    *,
    max_workers: int = 8,
) -> list[ResultRow]:
    """One :class:`ResultRow` per job, read from S3: rooms, timings, errors, parsed detection.

    ``jobs`` may be a :class:`WaitResult` (its completions supply failure reasons and completion
    times) or plain job handles (status is then read from S3: output object → success, failure
    object → failed, neither → pending). ``deployment`` is accepted for symmetry and unused:
    every location is on the job.
    """
    if session is None:
        raise ConfigError("results() needs the session the jobs were submitted with")
    if isinstance(jobs, WaitResult):
        completions = jobs.completions
        jobs = jobs.jobs
    else:
        jobs = list(jobs)
        completions = {}
    if not jobs:
        return []
    s3 = session.client("s3")
    # A shared invocation (the same plan given twice) is read once, then copied per input.
    unique: dict[str, Job] = {}
    for job in jobs:
        unique.setdefault(job.inference_id, job)
    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(unique)))) as pool:
        rows = dict(zip(unique, pool.map(lambda j: _row(j, completions.get(j.inference_id), s3), unique.values())))
    return [replace(rows[job.inference_id], input=job.input) for job in jobs]


def _row(job: Job, completion: Completion | None, s3: Any) -> ResultRow:
    row = ResultRow(
        input=job.input,
        inference_id=job.inference_id,
        status=PENDING,
        output_location=job.output_location or None,
        failure_location=job.failure_location,
        submitted_at=job.submitted_at,
    )
    if job.error:
        row.status, row.error = FAILED, job.error
        return row
    completed_at = completion.completed_at if completion else None
    reason = completion.failure_reason if completion else None

    # The notification's locations win over the ones InvokeEndpointAsync returned (they agree
    # on AWS; a notification is what SageMaker actually wrote).
    output_location = (completion.output_location if completion else None) or job.output_location
    failure_location = (completion.failure_location if completion else None) or job.failure_location
    row.output_location, row.failure_location = output_location or None, failure_location

    if completion is None or completion.status == SUCCESS:
        body, modified = None, None
        if completion is not None and completion.response_body:
            body = completion.response_body
        else:
            body, modified = _get(s3, output_location)
        if body is not None:
            _fill_success(row, body)
            if row.status == FAILED and completion is not None and completion.response_body:
                # The embedded copy did not parse: the S3 object is the reference.
                s3_body, modified = _get(s3, output_location)
                if s3_body is not None:
                    row.error = None
                    _fill_success(row, s3_body)
            row.completed_at = completed_at or modified
            row.latency_s = _seconds(job.submitted_at, row.completed_at)
            return row
        if completion is not None:
            row.status = FAILED
            row.error = f"reported complete but {output_location} is missing (expired or deleted?)"
            row.completed_at = completed_at
            return row

    body, modified = _get(s3, failure_location) if failure_location else (None, None)
    if body is not None or (completion is not None and completion.status == FAILED):
        row.status = FAILED
        row.error = _failure_message(body) if body is not None else None
        if reason and (not row.error or reason not in row.error):
            # SageMaker's reason repeats the container's body after "with message"; keep its
            # head ("ClientError: Received client error (400) from primary") beside the body's.
            head = reason.split(" with message", 1)[0] if row.error else reason
            row.error = f"{row.error} ({head})" if row.error else head
        row.error = row.error or "failed (no failure object and no reason given)"
        row.completed_at = completed_at or modified
        row.latency_s = _seconds(job.submitted_at, row.completed_at)
    return row


def _fill_success(row: ResultRow, body: bytes) -> None:
    from roomkit.response import Detection

    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        row.status, row.error = FAILED, f"output is not JSON: {body[:200]!r}"
        return
    if isinstance(data, Mapping) and data.get("status") == "error":
        row.status, row.error = FAILED, _failure_message(body)
        return
    try:
        detection = Detection.from_response(data)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        row.status, row.error = FAILED, f"output is not a roomkit response ({type(exc).__name__}: {exc})"
        return
    row.status = SUCCESS
    row.detection = detection
    row.rooms = len(detection.rooms)
    row.processing_time_ms = detection.processing_time_ms
    row.width, row.height = detection.width, detection.height


def _failure_message(body: bytes) -> str:
    """The reason in a failure object: roomkit's error body, SageMaker's ``message``, or text."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return text[:500] or "empty failure object"
    if isinstance(data, Mapping):
        err = data.get("error")
        if isinstance(err, Mapping) and err.get("message"):
            code = err.get("code")
            return f"{code}: {err['message']}" if code else str(err["message"])
        for key in ("message", "errorMessage", "failureReason", "Message", "error"):
            if data.get(key):
                inner = data[key]
                if isinstance(inner, str):
                    # SageMaker wraps the container's body in its message; unwrap when possible.
                    return _unwrap(inner)
                return json.dumps(inner)[:500]
    return text[:500]


def _unwrap(message: str) -> str:
    start = message.find("{")
    if start >= 0:
        try:
            inner = json.loads(message[start : message.rfind("}") + 1])
        except json.JSONDecodeError:
            return message[:500]
        err = inner.get("error") if isinstance(inner, Mapping) else None
        if isinstance(err, Mapping) and err.get("message"):
            code = err.get("code")
            return f"{code}: {err['message']}" if code else str(err["message"])
    return message[:500]


# -- batch transform (module of its own; re-exported) ---------------------------------------------
def transform(*args: Any, **kwargs: Any) -> Any:
    """Batch Transform over an S3 prefix or local plans; see :func:`roomkit.transform.transform`."""
    from roomkit.transform import transform as _transform

    return _transform(*args, **kwargs)


# -- helpers --------------------------------------------------------------------------------------
def _check_range(name: str, value: int | None, bounds: tuple[int, int]) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not bounds[0] <= value <= bounds[1]:
        raise ConfigError(f"{name} must be an integer from {bounds[0]} to {bounds[1]}, got {value!r}")


def _head(s3: Any, uri: str | None) -> dict | None:
    from botocore.exceptions import ClientError

    if not uri:
        return None
    bucket, key = parse_s3_uri(uri)
    try:
        return s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        # 403 is what S3 answers for a missing key when the caller may not list the bucket.
        if code in ("404", "NoSuchKey", "NotFound", "403", "AccessDenied"):
            return None
        raise


def _exists(s3: Any, uri: str | None) -> bool:
    return _head(s3, uri) is not None


def _get(s3: Any, uri: str | None) -> tuple[bytes | None, datetime | None]:
    from botocore.exceptions import ClientError

    if not uri:
        return None, None
    bucket, key = parse_s3_uri(uri)
    try:
        obj = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("404", "NoSuchKey", "NotFound", "403", "AccessDenied"):
            return None, None
        raise
    return obj["Body"].read(), obj.get("LastModified")


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


def _is_aws_error(exc: BaseException) -> bool:
    from botocore.exceptions import BotoCoreError, ClientError

    return isinstance(exc, (ClientError, BotoCoreError))


def _error_text(exc: BaseException) -> str:
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', 'Error')}: {err.get('Message') or exc}"
    return str(exc)


def _progress(**kwargs: Any) -> Any:
    from tqdm.auto import tqdm

    return tqdm(**kwargs)
