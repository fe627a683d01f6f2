"""SageMaker Async Inference completion notifications, as they arrive in an SQS queue.

SageMaker publishes one JSON message per finished invocation to the endpoint's success or error
SNS topic; the topic delivers it to the queue wrapped in an SNS envelope (or bare, with raw
message delivery). :func:`parse_notification` accepts either and returns a typed
:class:`AsyncNotification`, or ``None`` for anything that is not an async-inference result (a
subscription confirmation, another application's message), so callers can leave those alone.

The message shape (``invocationStatus``, ``inferenceId``, ``requestParameters``,
``responseParameters.outputLocation``, ``failureReason``, ``eventTime`` …) is parsed
defensively: ``failureLocation`` has been seen both under ``responseParameters`` and at the top
level.
"""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping

from roomkit.aws.jobs import FAILED, SUCCESS, parse_time

_STATUS = {"completed": SUCCESS, "success": SUCCESS, "succeeded": SUCCESS, "failed": FAILED, "failure": FAILED}


@dataclass(frozen=True)
class AsyncNotification:
    """One invocation's outcome: ``status`` is ``"success"`` or ``"failed"``."""

    inference_id: str
    status: str
    output_location: str | None = None
    failure_location: str | None = None
    failure_reason: str | None = None
    event_time: datetime | None = None
    endpoint_name: str | None = None
    input_location: str | None = None
    response_body: bytes | None = field(default=None, repr=False)
    sns_message_id: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


def parse_notification(body: str | bytes | Mapping[str, Any]) -> AsyncNotification | None:
    """Parse an SQS message body (SNS envelope or raw) into an :class:`AsyncNotification`.

    Returns ``None`` when the body is not a SageMaker async-inference result.
    """
    doc = _json(body)
    if not isinstance(doc, Mapping):
        return None
    sns_id = None
    if "Message" in doc and ("TopicArn" in doc or doc.get("Type") == "Notification"):
        sns_id = doc.get("MessageId")
        doc = _json(doc["Message"])
        if not isinstance(doc, Mapping):
            return None
    inference_id = doc.get("inferenceId")
    raw_status = doc.get("invocationStatus")
    if not isinstance(inference_id, str) or not inference_id or not isinstance(raw_status, str):
        return None
    if doc.get("eventSource") not in (None, "aws:sagemaker"):
        return None
    status = _STATUS.get(raw_status.strip().lower())
    if status is None:
        return None
    request = doc.get("requestParameters") if isinstance(doc.get("requestParameters"), Mapping) else {}
    response = doc.get("responseParameters") if isinstance(doc.get("responseParameters"), Mapping) else {}
    reason = doc.get("failureReason") or response.get("failureReason")
    return AsyncNotification(
        inference_id=inference_id,
        status=status,
        output_location=response.get("outputLocation") or doc.get("outputLocation"),
        failure_location=response.get("failureLocation") or doc.get("failureLocation"),
        failure_reason=str(reason) if reason else None,
        event_time=_time(doc.get("eventTime")),
        endpoint_name=request.get("endpointName"),
        input_location=request.get("inputLocation"),
        response_body=_embedded_body(doc.get("responseBody")),
        sns_message_id=sns_id,
        raw=doc,
    )


def _json(value: Any) -> Any:
    if isinstance(value, Mapping):
        return value
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if not isinstance(value, str):
        return None
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return None


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return parse_time(value)
    except (TypeError, ValueError):
        return None


def _embedded_body(value: Any) -> bytes | None:
    """The inference response SageMaker embeds when ``IncludeInferenceResponseIn`` asks for it.

    Its layout is not pinned down by the API reference, so accept a string or an object with
    ``content`` (and an optional ``encoding`` of ``BASE64``); callers still verify what they
    read and fall back to the S3 object when it does not parse.
    """
    if value is None:
        return None
    if isinstance(value, Mapping):
        content = value.get("content", value.get("body"))
        if content is None:
            return None
        if isinstance(content, (dict, list)):
            return json.dumps(content).encode("utf-8")
        text = str(content)
        if str(value.get("encoding", "")).upper() in ("BASE64", "BASE_64"):
            try:
                return base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError):
                return None
        return text.encode("utf-8")
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (dict, list)):
        return json.dumps(value).encode("utf-8")
    return None
