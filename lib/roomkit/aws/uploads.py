"""Plans in and out of the upload trigger's prefix: upload them, then watch each one end.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence
from roomkit.errors import ConfigError

__all__ = ["UploadResult", "upload_plans", "watch_uploads"]


@dataclass
class UploadResult:
    key: str
    status: str = "waiting"  # waiting | submitted | success | failed
    inference_id: str | None = None
    rooms: int | None = None
    seconds: float | None = None
    error: str | None = None
    notified: bool = False


def upload_plans(session: Any, deployment: Any, plans: Sequence[str | os.PathLike[str]], *,
                 prefix: str | None = None) -> list[str]:
    """``put_object`` each plan under the trigger's prefix (with its Content-Type); the keys."""
    from roomkit.aws.inputs import content_type_for

    trigger = deployment.trigger
    if trigger is None and prefix is None:
        raise ConfigError("this deployment has no upload trigger: run deploy_trigger first")
    prefix = prefix if prefix is not None else trigger.prefix
    s3 = session.client("s3")
    keys = []
    for plan in plans:
        path = Path(plan)
        body = path.read_bytes()
        key = f"{prefix}{path.name}"
        s3.put_object(Bucket=deployment.bucket, Key=key, Body=body,
                      ContentType=content_type_for(path.name, body[:64]) or "application/octet-stream")
        keys.append(key)
    return keys


def watch_uploads(session: Any, deployment: Any, keys: Sequence[str], *, timeout: float = 300.0,
                  interval: float = 1.0, echo: Any = print,
                  claims_prefix: str | None = None) -> list[UploadResult]:
    """Follow uploaded plans until each has a result (or ``timeout``): the trigger's claim
    records say which invocation a key became, S3 holds its output or failure object, and the
    deployment's notification queue says when SageMaker announced it. Prints a line per event."""
    from roomkit.aws.notifications import parse_notification
    from roomkit.plans.response import Detection
    from roomkit.aws.trigger import DEFAULT_CLAIMS_PREFIX

    s3 = session.client("s3")
    sqs = session.client("sqs") if deployment.notification_queue_url else None
    claims_prefix = claims_prefix or DEFAULT_CLAIMS_PREFIX
    by_key = {k: UploadResult(k) for k in keys}
    started = time.monotonic()
    locations: dict[str, tuple[str | None, str | None]] = {}

    def elapsed() -> float:
        return round(time.monotonic() - started, 1)

    def read(uri: str | None) -> bytes | None:
        if not uri:
            return None
        bucket, _, key = uri[len("s3://"):].partition("/")
        try:
            return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            return None
        except Exception as exc:  # noqa: BLE001 - 404 from head-less get on some S3 implementations
            if "404" in str(exc) or "NoSuchKey" in str(exc):
                return None
            raise

    while time.monotonic() - started < timeout:
        waiting = [r for r in by_key.values() if r.status in ("waiting", "submitted")]
        unclaimed = [r for r in waiting if r.inference_id is None]
        if unclaimed:
            pages = s3.get_paginator("list_objects_v2").paginate(Bucket=deployment.bucket, Prefix=claims_prefix)
            for page in pages:
                for obj in page.get("Contents", []):
                    claim = json.loads(read(f"s3://{deployment.bucket}/{obj['Key']}") or b"{}")
                    result = by_key.get(claim.get("key", ""))
                    if result is not None and result.inference_id is None and claim.get("state") == "submitted":
                        result.inference_id = claim.get("inference_id")
                        result.status = "submitted"
                        locations[result.key] = (claim.get("output_location"), claim.get("failure_location"))
                        echo(f"[{elapsed():>5.1f} s] {Path(result.key).name}: invoked by the trigger "
                             f"({result.inference_id[:15]}…)")
        for result in [r for r in by_key.values() if r.status == "submitted"]:
            out_uri, fail_uri = locations[result.key]
            body = read(out_uri)
            if body is not None:
                det = Detection.from_response(json.loads(body))
                result.status, result.rooms, result.seconds = "success", len(det.rooms), elapsed()
                echo(f"[{elapsed():>5.1f} s] {Path(result.key).name}: result with {result.rooms} rooms")
                continue
            body = read(fail_uri)
            if body is not None:
                result.status, result.seconds = "failed", elapsed()
                result.error = body.decode("utf-8", "replace")[:300]
                echo(f"[{elapsed():>5.1f} s] {Path(result.key).name}: failed: {result.error}")
        if sqs is not None:
            msgs = sqs.receive_message(QueueUrl=deployment.notification_queue_url, MaxNumberOfMessages=10,
                                       WaitTimeSeconds=0, VisibilityTimeout=5).get("Messages", [])
            ids = {r.inference_id: r for r in by_key.values() if r.inference_id}
            inputs = {f"s3://{deployment.bucket}/{r.key}": r for r in by_key.values()}
            for msg in msgs:
                note = parse_notification(msg["Body"])
                result = None if note is None else (ids.get(note.inference_id) or inputs.get(note.input_location or ""))
                if result is not None:
                    if not result.notified:
                        echo(f"[{elapsed():>5.1f} s] {Path(result.key).name}: {note.status} notification")
                    result.notified = True
                    sqs.delete_message(QueueUrl=deployment.notification_queue_url, ReceiptHandle=msg["ReceiptHandle"])
        if all(r.status in ("success", "failed") and (r.notified or sqs is None) for r in by_key.values()):
            break
        time.sleep(interval)
    return list(by_key.values())
