"""Upload trigger: a plan that lands in S3 is sent to the async endpoint without anyone calling it.

Runs as an AWS Lambda function (``roomkit.aws.trigger.handler``, Python runtime, only boto3 needed)
and, in local mode, inside the local runtime, which feeds it the bucket's notifications from an
SQS queue through :func:`process_event`. This module imports the standard library and
:mod:`roomkit.errors` only (boto3 lazily, in :func:`handler`), so the deployment zip is three
small files and a cold start costs milliseconds.

For each S3 ``ObjectCreated`` record — delivered directly, or wrapped in SQS and/or SNS
envelopes, or as an EventBridge "Object Created" event — it decodes the key (URL encoding, ``+``
for spaces, UTF-8), skips what is outside the configured prefix or not a plan (by extension and,
when the object has one, by Content-Type), and calls ``InvokeEndpointAsync`` with
``InputLocation`` pointing at the object, the plan's own ``ContentType`` (never
``application/json`` for image bytes) and an ``InferenceId`` derived from bucket, key and
version (S3 ``versionId``, else the event ``sequencer``, else the ETag).

Redelivery (S3, SNS and SQS are all at-least-once) must not start a second job, and SageMaker
does not deduplicate on ``InferenceId``. So each submission is recorded in a small *claim*
object ``<CLAIMS_PREFIX><inference id>.json`` in the same bucket, written with S3's conditional
``If-None-Match: *``: the first delivery wins the claim, invokes, and marks it ``submitted``;
a later delivery finds it and skips. A claim still ``claimed`` (the winner is mid-invoke or
crashed) is retried later, and taken over once older than ``CLAIM_STALE_AFTER_SECONDS`` — so a
crash between claim and invoke delays a plan but never loses it. If the invoke fails the claim is
deleted and the record is reported failed, so the event source retries it.

Failures are per record: for SQS events the result carries ``batchItemFailures`` (the function's
event source mapping needs ``ReportBatchItemFailures``); for direct S3/SNS events
:func:`handler` raises after processing every record, so Lambda's async retry re-runs the event
and the claims skip what already went through.

Environment (validated at cold start, with a message naming the variable):

``ENDPOINT_NAME`` (required), ``INPUT_PREFIX`` (``blueprints/``; empty = whole bucket),
``PLAN_SUFFIXES`` (``.png,.jpg,.jpeg,.tif,.tiff,.pdf``), ``INPUT_BUCKET`` (only this bucket),
``ACCEPT`` (``application/json``), ``REQUEST_TTL_SECONDS`` (60–21600),
``INVOCATION_TIMEOUT_SECONDS`` (1–3600), ``CHECK_CONTENT_TYPE`` (``true``),
``CLAIMS_PREFIX`` (``.roomkit/trigger-claims/``; ``off`` disables deduplication),
``CLAIM_STALE_AFTER_SECONDS`` (900).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator, Mapping
from urllib.parse import unquote_plus

from roomkit.errors import ConfigError

log = logging.getLogger("roomkit.aws.trigger")

# Plan types the detector reads, by extension; the value is the ContentType sent to the endpoint.
PLAN_TYPES: dict[str, str] = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".pdf": "application/pdf",
}
# Content-Types that say nothing about the bytes: the extension decides.
GENERIC_CONTENT_TYPES = {"", "binary/octet-stream", "application/octet-stream", "application/x-www-form-urlencoded"}
_CONTENT_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/x-png": "image/png",
                    "image/tif": "image/tiff", "image/x-tiff": "image/tiff", "application/x-pdf": "application/pdf"}
DEFAULT_CLAIMS_PREFIX = ".roomkit/trigger-claims/"

SUBMITTED, SKIPPED, DUPLICATE, FAILED = "submitted", "skipped", "duplicate", "failed"


# -- configuration ---------------------------------------------------------------------------------
def _int_env(env: Mapping[str, str], name: str, low: int, high: int, default: int | None) -> int | None:
    raw = env.get(name)
    if raw is None or str(raw).strip() == "":
        return default
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _bool_env(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or str(raw).strip() == "":
        return default
    value = str(raw).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


@dataclass(frozen=True)
class TriggerConfig:
    """What the handler needs; see the module docstring for the environment variables."""

    endpoint_name: str
    input_prefix: str = "blueprints/"
    suffixes: tuple[str, ...] = tuple(PLAN_TYPES)
    bucket: str | None = None
    accept: str = "application/json"
    request_ttl_seconds: int | None = None
    invocation_timeout_seconds: int | None = None
    check_content_type: bool = True
    claims_prefix: str | None = DEFAULT_CLAIMS_PREFIX
    claim_stale_after_s: int = 900

    ENV = {
        "ENDPOINT_NAME": "endpoint_name", "INPUT_PREFIX": "input_prefix", "PLAN_SUFFIXES": "suffixes",
        "INPUT_BUCKET": "bucket", "ACCEPT": "accept", "REQUEST_TTL_SECONDS": "request_ttl_seconds",
        "INVOCATION_TIMEOUT_SECONDS": "invocation_timeout_seconds", "CHECK_CONTENT_TYPE": "check_content_type",
        "CLAIMS_PREFIX": "claims_prefix", "CLAIM_STALE_AFTER_SECONDS": "claim_stale_after_s",
    }

    def __post_init__(self) -> None:
        if not isinstance(self.endpoint_name, str) or not re.match(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$", self.endpoint_name):
            raise ConfigError(f"ENDPOINT_NAME must be a SageMaker endpoint name, got {self.endpoint_name!r}")
        if not isinstance(self.input_prefix, str) or self.input_prefix.startswith("/"):
            raise ConfigError(f"INPUT_PREFIX must be an S3 key prefix without a leading '/', got {self.input_prefix!r}")
        suffixes = tuple(s.strip().lower() for s in self.suffixes if s.strip())
        suffixes = tuple(s if s.startswith(".") else "." + s for s in suffixes)
        unknown = [s for s in suffixes if s not in PLAN_TYPES]
        if not suffixes or unknown:
            raise ConfigError(
                f"PLAN_SUFFIXES must be a comma-separated subset of {','.join(PLAN_TYPES)}, "
                f"got {','.join(self.suffixes) or 'nothing'}"
            )
        object.__setattr__(self, "suffixes", suffixes)
        if self.bucket is not None and not re.match(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", self.bucket):
            raise ConfigError(f"INPUT_BUCKET must be an S3 bucket name, got {self.bucket!r}")
        if not isinstance(self.accept, str) or "/" not in self.accept:
            raise ConfigError(f"ACCEPT must be a media type, got {self.accept!r}")
        if self.claims_prefix is not None:
            if not self.claims_prefix or self.claims_prefix.startswith("/"):
                raise ConfigError(f"CLAIMS_PREFIX must be a key prefix or 'off', got {self.claims_prefix!r}")
            if self.input_prefix and self.claims_prefix.startswith(self.input_prefix):
                raise ConfigError(
                    f"CLAIMS_PREFIX {self.claims_prefix!r} must lie outside INPUT_PREFIX {self.input_prefix!r}"
                )

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "TriggerConfig":
        """Read and validate the handler's environment; ConfigError names the bad variable."""
        endpoint = (env.get("ENDPOINT_NAME") or "").strip()
        if not endpoint:
            raise ConfigError("ENDPOINT_NAME is not set: the trigger needs the async endpoint to invoke")
        claims = env.get("CLAIMS_PREFIX")
        claims_prefix = DEFAULT_CLAIMS_PREFIX if claims is None else (
            None if claims.strip().lower() in ("", "off", "none", "false") else claims.strip())
        suffixes = env.get("PLAN_SUFFIXES")
        return cls(
            endpoint_name=endpoint,
            input_prefix=env.get("INPUT_PREFIX", "blueprints/").strip(),
            suffixes=tuple(suffixes.split(",")) if suffixes is not None else tuple(PLAN_TYPES),
            bucket=(env.get("INPUT_BUCKET") or "").strip() or None,
            accept=(env.get("ACCEPT") or "application/json").strip(),
            request_ttl_seconds=_int_env(env, "REQUEST_TTL_SECONDS", 60, 21600, None),
            invocation_timeout_seconds=_int_env(env, "INVOCATION_TIMEOUT_SECONDS", 1, 3600, None),
            check_content_type=_bool_env(env, "CHECK_CONTENT_TYPE", True),
            claims_prefix=claims_prefix,
            claim_stale_after_s=_int_env(env, "CLAIM_STALE_AFTER_SECONDS", 1, 86400, 900) or 900,
        )

    def to_env(self) -> dict[str, str]:
        """The environment variables that reproduce this config (``from_env(to_env())`` == self)."""
        values = asdict(self)
        env = {}
        for name, attr in self.ENV.items():
            value = values[attr]
            if attr == "claims_prefix" and value is None:
                env[name] = "off"
            elif value is None:
                continue
            elif isinstance(value, tuple):
                env[name] = ",".join(value)
            elif isinstance(value, bool):
                env[name] = "true" if value else "false"
            else:
                env[name] = str(value)
        return env


# -- event parsing ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class S3Object:
    """One created object named by an event (key already decoded)."""

    bucket: str
    key: str
    version_id: str | None = None
    etag: str | None = None
    sequencer: str | None = None
    size: int | None = None
    event_name: str = "ObjectCreated:Put"


@dataclass
class RecordResult:
    status: str
    bucket: str | None = None
    key: str | None = None
    reason: str | None = None
    inference_id: str | None = None
    output_location: str | None = None
    failure_location: str | None = None
    message_id: str | None = field(default=None, repr=False)


class _EventError(Exception):
    """A record that cannot be understood (not JSON, no bucket/key)."""


def _json(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return value
    if isinstance(value, (bytes, bytearray)):
        value = value.decode("utf-8")
    if not isinstance(value, str):
        raise _EventError(f"expected a JSON document, got {type(value).__name__}")
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise _EventError(f"message body is not JSON: {exc}") from None


def _s3_record(record: Mapping[str, Any]) -> S3Object | None:
    """An S3 notification record, or None when it is not an ObjectCreated record."""
    name = str(record.get("eventName", ""))
    if not name.startswith("ObjectCreated"):
        return None
    try:
        s3 = record["s3"]
        bucket = s3["bucket"]["name"]
        obj = s3["object"]
        # S3 URL-encodes keys in notifications, with '+' for spaces.
        key = unquote_plus(obj["key"], encoding="utf-8", errors="strict")
    except (KeyError, TypeError, UnicodeDecodeError) as exc:
        raise _EventError(f"S3 record without a usable bucket/key: {exc}") from None
    size = obj.get("size")
    return S3Object(bucket=bucket, key=key, version_id=obj.get("versionId") or None,
                    etag=(obj.get("eTag") or obj.get("etag") or None), sequencer=obj.get("sequencer") or None,
                    size=size if isinstance(size, int) else None, event_name=name)


def _eventbridge(doc: Mapping[str, Any]) -> S3Object | None:
    if doc.get("detail-type") != "Object Created":
        return None
    try:
        detail = doc["detail"]
        # EventBridge carries the key as is (not URL-encoded).
        return S3Object(bucket=detail["bucket"]["name"], key=detail["object"]["key"],
                        version_id=detail["object"].get("version-id"), etag=detail["object"].get("etag"),
                        sequencer=detail["object"].get("sequencer"), size=detail["object"].get("size"),
                        event_name="ObjectCreated:" + str(detail.get("reason", "PutObject")))
    except (KeyError, TypeError) as exc:
        raise _EventError(f"EventBridge event without bucket/key: {exc}") from None


def _objects_in(doc: Any, depth: int = 0) -> Iterator[S3Object]:
    """Every created object in a document: S3 event, SNS envelope, EventBridge, test event."""
    if depth > 4:
        raise _EventError("envelopes nested too deeply")
    if not isinstance(doc, Mapping):
        raise _EventError(f"expected a JSON object, got {type(doc).__name__}")
    if doc.get("Event") == "s3:TestEvent":
        return  # S3 sends one when a notification is configured
    if doc.get("Type") == "Notification" and "Message" in doc:  # SNS envelope (in SQS)
        yield from _objects_in(_json(doc["Message"]), depth + 1)
        return
    if "detail-type" in doc:
        obj = _eventbridge(doc)
        if obj is not None:
            yield obj
        return
    records = doc.get("Records")
    if not isinstance(records, list):
        raise _EventError("no Records in the event")
    for record in records:
        if not isinstance(record, Mapping):
            raise _EventError("a record is not an object")
        source = record.get("eventSource") or record.get("EventSource")
        if source == "aws:sns":
            yield from _objects_in(_json(record["Sns"]["Message"]), depth + 1)
        elif source == "aws:s3" or "s3" in record:
            obj = _s3_record(record)
            if obj is not None:
                yield obj
        else:
            raise _EventError(f"unsupported record source {source!r}")


# -- processing ------------------------------------------------------------------------------------
def inference_id_for(obj: S3Object) -> str:
    """Same object version -> same id (<= 64 chars), whatever envelope delivered it."""
    discriminator = obj.version_id or obj.sequencer or (obj.etag or "").strip('"')
    digest = hashlib.sha256(f"s3://{obj.bucket}/{obj.key}\0{discriminator}".encode("utf-8")).hexdigest()
    return f"s3-{digest[:48]}"


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", "")) or type(exc).__name__


def _error_text(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    message = response.get("Error", {}).get("Message")
    return f"{_error_code(exc)}: {message}" if message else str(exc)


def _content_type(obj: S3Object, config: TriggerConfig, s3: Any) -> tuple[str | None, str | None]:
    """(ContentType to send, or None with the reason to skip)."""
    suffix = os.path.splitext(obj.key)[1].lower()
    if suffix not in config.suffixes:
        return None, f"not a plan type ({suffix or 'no extension'}; accepted: {', '.join(config.suffixes)})"
    by_extension = PLAN_TYPES[suffix]
    if not config.check_content_type:
        return by_extension, None
    try:
        head = s3.head_object(Bucket=obj.bucket, Key=obj.key)
    except Exception as exc:  # noqa: BLE001 - botocore ClientError without importing botocore here
        if _error_code(exc) in ("404", "NoSuchKey", "NotFound"):
            return None, "object no longer exists"
        raise
    declared = str(head.get("ContentType") or "").split(";")[0].strip().lower()
    declared = _CONTENT_ALIASES.get(declared, declared)
    if declared in GENERIC_CONTENT_TYPES:
        return by_extension, None
    if declared in PLAN_TYPES.values():
        return declared, None
    return None, f"Content-Type {declared} is not a plan type"


def _claim_key(config: TriggerConfig, inference_id: str) -> str:
    return f"{config.claims_prefix}{inference_id}.json"


def _claim(s3: Any, obj: S3Object, config: TriggerConfig, inference_id: str) -> str | None:
    """Take the claim for this object version. None = ours to invoke; else why not."""
    key = _claim_key(config, inference_id)
    body = json.dumps({"state": "claimed", "at": time.time(), "key": obj.key, "inference_id": inference_id})
    try:
        s3.put_object(Bucket=obj.bucket, Key=key, Body=body.encode(), ContentType="application/json", IfNoneMatch="*")
        return None
    except Exception as exc:  # noqa: BLE001
        if _error_code(exc) not in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409"):
            raise
    try:
        found = s3.get_object(Bucket=obj.bucket, Key=key)
        existing = json.loads(found["Body"].read() or b"{}")
    except Exception as exc:  # noqa: BLE001 - vanished in between, or unreadable: retry later
        return f"busy: claim {key} changing ({_error_code(exc)})"
    if existing.get("state") == SUBMITTED:
        return f"{DUPLICATE}: already submitted as {inference_id}"
    age = time.time() - float(existing.get("at") or 0)
    if age < config.claim_stale_after_s:
        return f"busy: another delivery is submitting it ({age:.0f}s ago)"
    try:  # the claimer died before invoking: take over, atomically
        s3.put_object(Bucket=obj.bucket, Key=key, Body=body.encode(), ContentType="application/json",
                      IfMatch=found["ETag"])
        return None
    except Exception as exc:  # noqa: BLE001
        return f"busy: claim {key} taken over concurrently ({_error_code(exc)})"


def process_object(obj: S3Object, config: TriggerConfig, *, sagemaker_runtime: Any, s3: Any) -> RecordResult:
    """Decide about one created object and, if it is a plan, submit it once."""
    result = RecordResult(status=SKIPPED, bucket=obj.bucket, key=obj.key)
    if config.bucket and obj.bucket != config.bucket:
        result.reason = f"bucket {obj.bucket} is not {config.bucket}"
        return result
    if not obj.key.startswith(config.input_prefix):
        result.reason = f"outside prefix {config.input_prefix!r}"
        return result
    if obj.key.endswith("/"):
        result.reason = "folder marker"
        return result
    if config.claims_prefix and obj.key.startswith(config.claims_prefix):
        result.reason = "a trigger claim"
        return result
    content_type, why_not = _content_type(obj, config, s3)
    if content_type is None:
        result.reason = why_not
        return result
    inference_id = inference_id_for(obj)
    result.inference_id = inference_id
    if config.claims_prefix:
        refused = _claim(s3, obj, config, inference_id)
        if refused is not None:
            result.status = DUPLICATE if refused.startswith(DUPLICATE) else FAILED
            result.reason = refused
            return result
    kwargs: dict[str, Any] = {
        "EndpointName": config.endpoint_name,
        "InputLocation": f"s3://{obj.bucket}/{obj.key}",
        "ContentType": content_type,
        "Accept": config.accept,
        "InferenceId": inference_id,
    }
    if config.request_ttl_seconds:
        kwargs["RequestTTLSeconds"] = config.request_ttl_seconds
    if config.invocation_timeout_seconds:
        kwargs["InvocationTimeoutSeconds"] = config.invocation_timeout_seconds
    try:
        response = sagemaker_runtime.invoke_endpoint_async(**kwargs)
    except Exception as exc:  # noqa: BLE001 - reported per record; the event source retries it
        if config.claims_prefix:
            try:
                s3.delete_object(Bucket=obj.bucket, Key=_claim_key(config, inference_id))
            except Exception:  # noqa: BLE001 - the claim goes stale and is taken over later
                log.warning("could not release claim for %s", inference_id)
        result.status = FAILED
        result.reason = f"InvokeEndpointAsync on {config.endpoint_name} failed: {_error_text(exc)}"
        return result
    result.status = SUBMITTED
    result.output_location = response.get("OutputLocation")
    result.failure_location = response.get("FailureLocation")
    if config.claims_prefix:
        try:
            s3.put_object(
                Bucket=obj.bucket, Key=_claim_key(config, inference_id), ContentType="application/json",
                Body=json.dumps({"state": SUBMITTED, "at": time.time(), "key": obj.key, "inference_id": inference_id,
                                 "output_location": result.output_location,
                                 "failure_location": result.failure_location}).encode(),
            )
        except Exception:  # noqa: BLE001 - the job runs; a redelivery would wait for staleness
            log.warning("submitted %s but could not mark its claim", inference_id)
    return result


def process_event(event: Mapping[str, Any], config: TriggerConfig, *, sagemaker_runtime: Any, s3: Any) -> dict[str, Any]:
    """Handle one Lambda event (S3, SQS, SNS or EventBridge shaped).

    Returns ``{"batchItemFailures": [{"itemIdentifier": messageId}, ...], "results": [...]}``:
    the SQS messages to retry (any record of theirs failed), and one result per object for logs.
    """
    results: list[RecordResult] = []
    failures: list[str] = []
    records = event.get("Records") if isinstance(event, Mapping) else None
    from_sqs = isinstance(records, list) and any(
        isinstance(r, Mapping) and (r.get("eventSource") == "aws:sqs" or "messageId" in r) for r in records)
    if from_sqs:
        for record in records:  # type: ignore[union-attr]
            message_id = record.get("messageId") or record.get("MessageId")
            message_failed = False
            try:
                objects = list(_objects_in(_json(record.get("body", record.get("Body")))))
            except _EventError as exc:
                results.append(RecordResult(status=FAILED, reason=f"unreadable message: {exc}", message_id=message_id))
                message_failed = True
                objects = []
            for obj in objects:
                res = _safe_process(obj, config, sagemaker_runtime, s3)
                res.message_id = message_id
                results.append(res)
                message_failed |= res.status == FAILED
            if message_failed and message_id:
                failures.append(message_id)
    else:
        try:
            objects = list(_objects_in(event))
        except _EventError as exc:
            results.append(RecordResult(status=FAILED, reason=f"unreadable event: {exc}"))
            objects = []
        for obj in objects:
            results.append(_safe_process(obj, config, sagemaker_runtime, s3))
    for res in results:
        log.info(json.dumps({k: v for k, v in asdict(res).items() if v is not None}, ensure_ascii=False))
    return {
        "batchItemFailures": [{"itemIdentifier": m} for m in dict.fromkeys(failures)],
        "results": [asdict(r) for r in results],
    }


def _safe_process(obj: S3Object, config: TriggerConfig, runtime: Any, s3: Any) -> RecordResult:
    try:
        return process_object(obj, config, sagemaker_runtime=runtime, s3=s3)
    except Exception as exc:  # noqa: BLE001 - one bad record never sinks the batch
        return RecordResult(status=FAILED, bucket=obj.bucket, key=obj.key, reason=_error_text(exc))


# -- Lambda entry point ----------------------------------------------------------------------------
class TriggerFailed(RuntimeError):
    """Raised by :func:`handler` for direct (non-SQS) events with failed records, so Lambda retries."""


_STATE: dict[str, Any] = {}

if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
    # Cold start inside Lambda: a misconfigured function fails here, with the variable named, on
    # its first event — not half-way through a batch.
    _STATE["config"] = TriggerConfig.from_env(os.environ)


def handler(event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    """Lambda entry point. Clients are plain boto3 ones (``AWS_ENDPOINT_URL*`` honoured)."""
    if "config" not in _STATE:
        _STATE["config"] = TriggerConfig.from_env(os.environ)
    if "clients" not in _STATE:
        import boto3
        from botocore.config import Config

        retries = Config(retries={"mode": "standard", "max_attempts": 5})
        _STATE["clients"] = (boto3.client("sagemaker-runtime", config=retries), boto3.client("s3", config=retries))
    runtime, s3 = _STATE["clients"]
    out = process_event(event, _STATE["config"], sagemaker_runtime=runtime, s3=s3)
    records = event.get("Records") if isinstance(event, Mapping) else None
    is_sqs = isinstance(records, list) and any(isinstance(r, Mapping) and r.get("eventSource") == "aws:sqs" for r in records)
    if is_sqs:
        return {"batchItemFailures": out["batchItemFailures"]}
    failed = [r for r in out["results"] if r["status"] == FAILED]
    if failed:
        raise TriggerFailed("; ".join(f"{r.get('key')}: {r.get('reason')}" for r in failed))
    return {"results": out["results"]}
