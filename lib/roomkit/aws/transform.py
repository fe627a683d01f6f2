"""Batch Transform for large backlogs: the deployment's model over many plans, no endpoint needed.

``transform(inputs, deployment, session)`` resolves the plans like ``submit`` (local files are
uploaded under the input prefix; ``s3://`` objects and prefixes are used in place), writes a
manifest per content type (a Batch Transform job has one ``ContentType``; a mixed prefix of PNGs
and PDFs becomes one job per type), runs one record per object (``SplitType=None``,
``BatchStrategy=SingleRecord``), waits, and reads every ``<output prefix>/<input key>.out`` into
the same :class:`~roomkit.aws.jobs.ResultRow` table as :func:`roomkit.aws.submit.results`.

AWS mode
    ``CreateTransformJob`` with the deployment's model, instance type and count; the model's
    execution role must be able to read the inputs (plans under the deployment's input prefix
    are; copy others there first) and write the output prefix. If any object fails, Batch
    Transform marks the whole job Failed but keeps the outputs of the objects that succeeded:
    those rows are ``success``; the others are ``failed`` with the job's ``FailureReason``.

Local mode
    moto records the transform job (so Describe/ListTransformJobs show it) but runs nothing.
    The objects are sent instead through the deployment's endpoint on the local async runtime,
    which POSTs each one to the serving process of that endpoint's model (``/invocations``) —
    so the same model and config as a real job — and the outputs are copied to where Batch
    Transform writes them (``<output prefix>/<input key>.out``). Differences: per-object failure
    reasons (AWS gives one reason per job), the endpoint's queue and concurrency are used instead
    of separate transform instances, the endpoint's notifications are published (and consumed
    here), and each output also stays at its async output location.
"""
from __future__ import annotations

import json
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Sequence

from roomkit.errors import ConfigError, InputError
from roomkit.aws.inputs import PlanInput, parse_s3_uri, resolve_inputs, s3_uri
from roomkit.aws.results import fill_from_body
from roomkit.aws.jobs import FAILED, PENDING, ResultRow, utcnow
from roomkit.aws.s3 import progress_bar, read
from roomkit.aws.target import AsyncTarget, target_of

MAX_PAYLOAD_MB = 100  # Batch Transform's MaxPayloadInMB ceiling
_TERMINAL = ("Completed", "Failed", "Stopped")
PENDING_KEY = "__pending__"
_JOB_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")


@dataclass
class TransformResult:
    """The transform jobs started, where they wrote, and one row per plan."""

    job_names: list[str]
    output_uri: str
    rows: list[ResultRow] = field(default_factory=list)
    status: str = "InProgress"  # Completed | Failed | Stopped | InProgress (timed out waiting)
    failure_reasons: dict[str, str] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.status in _TERMINAL


def transform(
    inputs: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
    deployment: Any,
    session: Any,
    *,
    output_uri: str | None = None,
    job_name: str | None = None,
    instance_type: str | None = None,
    instance_count: int | None = None,
    max_concurrent_transforms: int | None = None,
    invocation_timeout_seconds: int = 3600,
    timeout: float | None = 6 * 3600.0,
    poll_interval: float = 30.0,
    progress: bool = True,
) -> TransformResult:
    """Run the deployment's model over ``inputs`` as Batch Transform; rows like ``results``.

    ``output_uri`` defaults to ``<deployment output path>transform/<job name>/``. On timeout
    the jobs keep running (AWS) and the unfinished plans come back ``pending``.
    """
    target = target_of(deployment)
    if not target.model_name:
        raise ConfigError("deployment has no model name: Batch Transform needs one")
    if not 1 <= int(invocation_timeout_seconds) <= 3600:
        raise ConfigError("invocation_timeout_seconds must be from 1 to 3600")
    s3 = session.client("s3")
    sagemaker = session.client("sagemaker")
    plans = resolve_inputs(inputs, s3)
    too_big = [p.source for p in plans if p.size > MAX_PAYLOAD_MB * 1024 * 1024]
    if too_big:
        raise InputError(f"Batch Transform takes objects up to {MAX_PAYLOAD_MB} MB: {', '.join(too_big)}")

    base = job_name or _job_name(target.endpoint_name)
    if not _JOB_NAME.fullmatch(base):
        raise ConfigError(f"job_name must be 1-63 letters, digits and hyphens, got {base!r}")
    if output_uri is None:
        if not target.output_uri:
            raise ConfigError("deployment has no output path: pass output_uri=")
        output_uri = f"{target.output_uri.rstrip('/')}/transform/{base}/"
    output_uri = output_uri.rstrip("/") + "/"
    parse_s3_uri(output_uri)

    from roomkit.aws.submit import plan_key_of, upload_plan

    uris: list[str] = []
    for plan in plans:
        uris.append(plan.s3_uri or upload_plan(plan, plan_key_of(plan), target, s3))
    buckets = {parse_s3_uri(u)[0] for u in uris}
    if len(buckets) > 1:
        raise InputError(f"one transform reads from one bucket; these inputs span {', '.join(sorted(buckets))}")
    bucket = buckets.pop()

    groups: dict[str, list[int]] = {}
    for i, plan in enumerate(plans):
        groups.setdefault(plan.content_type, []).append(i)
    names: dict[str, str] = {}
    for n, (ctype, idx) in enumerate(sorted(groups.items())):
        name = base if len(groups) == 1 else f"{base[:58]}-{n + 1}"
        manifest = _write_manifest(s3, target, name, bucket, [uris[i] for i in idx])
        sagemaker.create_transform_job(**_job_request(
            name, target, manifest, ctype, output_uri,
            instance_type=instance_type or target.instance_type or "ml.m5.large",
            instance_count=instance_count or target.instance_count or 1,
            max_concurrent=max_concurrent_transforms,
            invocation_timeout_seconds=invocation_timeout_seconds,
        ))
        names[ctype] = name

    result = TransformResult(job_names=list(names.values()), output_uri=output_uri)
    if session.mode == "local":
        failures = _run_locally(plans, uris, target, session, output_uri, timeout=timeout, progress=progress)
        state = "InProgress" if failures.pop(PENDING_KEY, None) else "Completed"
        result.status = state
        statuses = {name: (state, None) for name in names.values()}
    else:
        failures = {}
        statuses = _wait_jobs(sagemaker, list(names.values()), timeout=timeout,
                              poll_interval=poll_interval, progress=progress)
        kinds = {s for s, _ in statuses.values()}
        result.status = ("InProgress" if not kinds <= set(_TERMINAL)
                         else "Failed" if "Failed" in kinds else "Stopped" if "Stopped" in kinds else "Completed")
        result.failure_reasons = {n: r for n, (s, r) in statuses.items() if r}

    job_of = {i: names[p.content_type] for i, p in enumerate(plans)}
    submitted_at = utcnow()

    def row(i: int) -> ResultRow:
        plan, uri = plans[i], uris[i]
        out = output_uri + parse_s3_uri(uri)[1] + ".out"
        r = ResultRow(input=plan.source, inference_id=job_of[i], status=PENDING, output_location=out,
                      submitted_at=submitted_at)
        body, modified = read(s3, out)
        if body is not None:
            fill_from_body(r, body)
            r.completed_at = modified
            return r
        state, reason = statuses.get(job_of[i], ("InProgress", None))
        local_reason = failures.get(uri)
        if local_reason or state in _TERMINAL:
            r.status = FAILED
            r.error = local_reason or reason or f"transform job {state.lower()} without an output for this plan"
        return r

    with ThreadPoolExecutor(max_workers=min(8, len(plans))) as pool:
        result.rows = list(pool.map(row, range(len(plans))))
    return result


def _job_name(endpoint_name: str) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{endpoint_name[:40].rstrip('-')}-bt-{stamp}"


def _write_manifest(s3: Any, target: AsyncTarget, name: str, bucket: str, uris: list[str]) -> str:
    """A Batch Transform manifest (``[{"prefix": "s3://bucket/"}, "key", ...]``) under the input prefix."""
    in_bucket, in_prefix = parse_s3_uri(target.input_uri)
    key = f"{in_prefix}_transform/{name}.manifest"
    doc = [{"prefix": f"s3://{bucket}/"}] + [parse_s3_uri(u)[1] for u in uris]
    s3.put_object(Bucket=in_bucket, Key=key, Body=json.dumps(doc).encode(), ContentType="application/json")
    return s3_uri(in_bucket, key)


def _job_request(
    name: str, target: AsyncTarget, manifest: str, content_type: str, output_uri: str, *,
    instance_type: str, instance_count: int, max_concurrent: int | None, invocation_timeout_seconds: int,
) -> dict[str, Any]:
    request: dict[str, Any] = {
        "TransformJobName": name,
        "ModelName": target.model_name,
        "BatchStrategy": "SingleRecord",
        "MaxPayloadInMB": MAX_PAYLOAD_MB,
        "ModelClientConfig": {
            "InvocationsTimeoutInSeconds": int(invocation_timeout_seconds),
            "InvocationsMaxRetries": 1,
        },
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "ManifestFile", "S3Uri": manifest}},
            "ContentType": content_type,
            "CompressionType": "None",
            "SplitType": "None",
        },
        "TransformOutput": {"S3OutputPath": output_uri, "Accept": "application/json", "AssembleWith": "None"},
        "TransformResources": {"InstanceType": instance_type, "InstanceCount": int(instance_count)},
        "Tags": [{"Key": "roomkit:endpoint", "Value": target.endpoint_name}],
    }
    if max_concurrent:
        request["MaxConcurrentTransforms"] = int(max_concurrent)
    return request


def _wait_jobs(
    sagemaker: Any, names: list[str], *, timeout: float | None, poll_interval: float, progress: bool
) -> dict[str, tuple[str, str | None]]:
    deadline = None if timeout is None else time.monotonic() + timeout
    statuses: dict[str, tuple[str, str | None]] = {}
    bar = progress_bar(total=len(names), desc="transform", disable=not progress, unit="job")
    try:
        while True:
            for name in names:
                if statuses.get(name, ("",))[0] in _TERMINAL:
                    continue
                d = sagemaker.describe_transform_job(TransformJobName=name)
                statuses[name] = (d["TransformJobStatus"], d.get("FailureReason"))
                if d["TransformJobStatus"] in _TERMINAL:
                    bar.update(1)
            if all(s in _TERMINAL for s, _ in statuses.values()):
                return statuses
            if deadline is not None and time.monotonic() >= deadline:
                return statuses
            time.sleep(max(0.1, min(poll_interval, (deadline - time.monotonic()) if deadline else poll_interval)))
    finally:
        bar.close()


def _run_locally(
    plans: list[PlanInput], uris: list[str], target: AsyncTarget, session: Any, output_uri: str,
    *, timeout: float | None, progress: bool,
) -> dict[str, str]:
    """Local stand-in for the transform containers: the endpoint's model via the local runtime.

    Returns failure reasons by input URI (and :data:`PENDING_KEY` when some did not finish).
    """
    from roomkit.aws.submit import results, submit, wait

    jobs = submit(uris, target, session, rerun=True, progress=progress)
    done = wait(jobs, target, session, timeout=timeout, poll_interval=1.0, progress=progress)
    s3 = session.client("s3")
    failures: dict[str, str] = {}
    rows = results(done, target, session)
    for job, r in zip(jobs, rows):
        if r.status == "success":
            src_bucket, src_key = parse_s3_uri(job.output_location)
            dst_bucket, dst_prefix = parse_s3_uri(output_uri)
            s3.copy_object(
                Bucket=dst_bucket, Key=dst_prefix + parse_s3_uri(job.input)[1] + ".out",
                CopySource={"Bucket": src_bucket, "Key": src_key},
                ContentType="application/json", MetadataDirective="REPLACE",
            )
        elif r.status == FAILED:
            failures[job.input] = r.error or "failed"
        else:
            failures[PENDING_KEY] = job.input
    return failures
