"""What submit/wait/transform need to know about a deployment, in one small record.

:func:`target_of` reads it from a :class:`roomkit.aws.deploy.Deployment`, from that deployment's JSON
manifest (a path), from a plain mapping, or takes an :class:`AsyncTarget` as is — so the submit
side depends on a handful of fields, not on how deploy stores them.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

from roomkit.errors import ConfigError


@dataclass(frozen=True)
class AsyncTarget:
    """An async endpoint and the S3/SQS places around it.

    ``input_uri`` is the ``s3://bucket/prefix/`` local plans are uploaded under; ``output_uri``
    and ``failure_uri`` are the endpoint's ``S3OutputPath``/``S3FailurePath``; ``queue_url`` is
    the SQS queue subscribed to the success/error topics (``None``: poll S3 only).
    ``model_name``/``instance_type``/``instance_count`` are what Batch Transform runs.
    """

    endpoint_name: str
    input_uri: str
    output_uri: str | None = None
    failure_uri: str | None = None
    queue_url: str | None = None
    success_topic_arn: str | None = None
    error_topic_arn: str | None = None
    model_name: str | None = None
    instance_type: str | None = None
    instance_count: int = 1
    mode: str | None = None
    region: str | None = None
    kind: str = "async"

    def __post_init__(self) -> None:
        if not self.endpoint_name:
            raise ConfigError("deployment has no endpoint name")
        for name in ("input_uri", "output_uri", "failure_uri"):
            value = getattr(self, name)
            if value is not None and not str(value).startswith("s3://"):
                raise ConfigError(f"deployment {name} must be an s3:// URI, got {value!r}")


# Field → names it goes by in deployment objects/manifests (first match wins).
_ALIASES: dict[str, tuple[str, ...]] = {
    "endpoint_name": ("endpoint_name", "EndpointName", "endpoint"),
    "input_uri": ("input_uri", "input_s3_uri", "s3_input_uri", "input_prefix_uri", "input_path", "s3_input_path", "input_prefix"),
    "output_uri": ("output_uri", "s3_output_path", "output_s3_uri", "output_path", "S3OutputPath"),
    "failure_uri": ("failure_uri", "s3_failure_path", "failure_s3_uri", "failure_path", "S3FailurePath"),
    "queue_url": ("queue_url", "notification_queue_url", "sqs_queue_url", "QueueUrl"),
    "success_topic_arn": ("success_topic_arn", "success_topic", "SuccessTopic"),
    "error_topic_arn": ("error_topic_arn", "error_topic", "ErrorTopic"),
    "model_name": ("model_name", "ModelName"),
    "instance_type": ("instance_type", "InstanceType"),
    "instance_count": ("instance_count", "initial_instance_count", "InitialInstanceCount"),
    "mode": ("mode",),
    "kind": ("kind",),
    "region": ("region", "region_name"),
}
_NESTED = ("spec", "async_config", "async_inference", "notifications", "resources")


def target_of(deployment: Any) -> AsyncTarget:
    """The :class:`AsyncTarget` of a Deployment, its manifest path, a mapping, or a target."""
    if isinstance(deployment, AsyncTarget):
        return deployment
    if deployment is None:
        raise ConfigError("a deployment is required (a Deployment, its manifest path, or an AsyncTarget)")
    if isinstance(deployment, (str, os.PathLike)):
        deployment = load_manifest(deployment)
    values: dict[str, Any] = {}
    if isinstance(deployment, Mapping) and deployment.get("bucket") and "input_prefix" in deployment:
        values["input_uri"] = f"s3://{deployment['bucket']}/{deployment['input_prefix']}"
    for name, aliases in _ALIASES.items():
        if name in values:
            continue
        value = _pick(deployment, aliases)
        if value is not None:
            values[name] = value
    missing = [n for n in ("endpoint_name", "input_uri") if not values.get(n)]
    if missing:
        raise ConfigError(f"deployment lacks {', '.join(missing)}")
    if "instance_count" in values:
        values["instance_count"] = int(values["instance_count"])
    values["input_uri"] = str(values["input_uri"]).rstrip("/") + "/"
    known = {f.name for f in fields(AsyncTarget)}
    return AsyncTarget(**{k: v for k, v in values.items() if k in known})


def load_manifest(path: str | os.PathLike[str]) -> Any:
    """A deployment manifest written by ``roomkit deploy`` (:class:`roomkit.aws.deployment.Deployment`)."""
    from roomkit.aws.deployment import Deployment

    return Deployment.load(Path(path))


def _pick(obj: Any, names: tuple[str, ...], depth: int = 0) -> Any:
    for name in names:
        value = obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)
        if value not in (None, ""):
            return value
    if depth < 2:
        for nested in _NESTED:
            inner = obj.get(nested) if isinstance(obj, Mapping) else getattr(obj, nested, None)
            if inner is not None:
                value = _pick(inner, names, depth + 1)
                if value is not None:
                    return value
    return None
