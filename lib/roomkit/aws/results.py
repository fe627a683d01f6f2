"""``results``: one row per plan — status, rooms, timings, error — read from S3.

A row's status comes from the :class:`~roomkit.aws.jobs.WaitResult` when there is one, else from S3
alone (output object → success, failure object → failed, neither → pending). Success bodies are
parsed into :class:`roomkit.plans.response.Detection` (pixel space), so overlays and metrics work on
them directly; failure objects yield the container's error message (roomkit's error body, or
SageMaker's ``message``) next to the notification's ``failureReason``.
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from typing import Any, Iterable, Mapping

from roomkit.errors import ConfigError
from roomkit.aws.jobs import FAILED, PENDING, SUCCESS, Completion, Job, ResultRow, WaitResult
from roomkit.aws.s3 import read


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
            body, modified = read(s3, output_location)
        if body is not None:
            fill_from_body(row, body)
            if row.status == FAILED and completion is not None and completion.response_body:
                # The embedded copy did not parse: the S3 object is the reference.
                s3_body, modified = read(s3, output_location)
                if s3_body is not None:
                    row.error = None
                    fill_from_body(row, s3_body)
            row.completed_at = completed_at or modified
            row.latency_s = _seconds(job.submitted_at, row.completed_at)
            return row
        if completion is not None:
            row.status = FAILED
            row.error = f"reported complete but {output_location} is missing (expired or deleted?)"
            row.completed_at = completed_at
            return row

    body, modified = read(s3, failure_location) if failure_location else (None, None)
    if body is not None or (completion is not None and completion.status == FAILED):
        row.status = FAILED
        row.error = failure_message(body) if body is not None else None
        if reason and (not row.error or reason not in row.error):
            # SageMaker's reason repeats the container's body after "with message"; keep its
            # head ("ClientError: Received client error (400) from primary") beside the body's.
            head = reason.split(" with message", 1)[0] if row.error else reason
            row.error = f"{row.error} ({head})" if row.error else head
        row.error = row.error or "failed (no failure object and no reason given)"
        row.completed_at = completed_at or modified
        row.latency_s = _seconds(job.submitted_at, row.completed_at)
    return row


def fill_from_body(row: ResultRow, body: bytes) -> None:
    from roomkit.plans.response import Detection

    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        row.status, row.error = FAILED, f"output is not JSON: {body[:200]!r}"
        return
    if isinstance(data, Mapping) and data.get("status") == "error":
        row.status, row.error = FAILED, failure_message(body)
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


def failure_message(body: bytes) -> str:
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


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())
