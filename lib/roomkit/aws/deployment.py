"""The record of a deployment: :class:`Deployment`, saved as a small JSON manifest.

:func:`roomkit.aws.deploy.deploy` returns one; later notebooks, ``roomkit submit`` and
:func:`roomkit.aws.deploy.teardown` load it to find every resource by name/ARN/URL instead of
re-deriving them. Pure data: no AWS calls here.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from roomkit.errors import ConfigError

MANIFEST_VERSION = 1


@dataclass
class TriggerDeployment:
    """The upload trigger of a deployment (:func:`roomkit.aws.deploy.deploy_trigger`).

    ``target`` is ``"lambda"`` (aws mode) or ``"sqs"`` (local mode: the bucket notifies a queue
    the local runtime drains with the same handler code).
    """

    target: str
    bucket: str
    prefix: str
    suffixes: list[str]
    notification_ids: list[str]
    env: dict[str, str]
    function_name: str | None = None
    function_arn: str | None = None
    role_name: str | None = None
    role_arn: str | None = None
    permission_statement_id: str | None = None
    queue_url: str | None = None
    queue_arn: str | None = None
    execution_role_policy_name: str | None = None
    # Events the trigger gave up on (after Lambda's retries / the queue's max receives).
    dead_letter_queue_url: str | None = None
    dead_letter_queue_arn: str | None = None


@dataclass
class Deployment:
    """Names, ARNs and URLs of one deployed endpoint, plus the spec it came from.

    What :mod:`roomkit.aws.submit` needs: ``endpoint_name``, ``bucket``/``input_prefix`` (where to
    upload plans), ``output_path``/``failure_path``, the topic ARNs, ``notification_queue_url``
    (completion events; SNS envelopes unless ``raw_notifications``), ``region`` and ``mode``.
    ``owned`` lists what ``deploy`` created and ``teardown(everything=True)`` may delete
    (``bucket:NAME``, ``topic:ARN``, ``queue:URL``, ``role:NAME``); pre-existing resources the
    spec pointed at are used but never deleted.
    """

    name: str
    mode: str
    region: str
    account_id: str
    kind: str
    endpoint_name: str
    endpoint_arn: str
    endpoint_config_name: str
    model_name: str
    variant_name: str
    image_uri: str
    model_data_url: str
    role_arn: str
    bucket: str
    input_prefix: str
    output_path: str | None = None
    failure_path: str | None = None
    success_topic_arn: str | None = None
    error_topic_arn: str | None = None
    notification_queue_url: str | None = None
    notification_queue_arn: str | None = None
    raw_notifications: bool = False
    role_name: str | None = None
    role_policy_name: str | None = None
    scaling_resource_id: str | None = None
    scaling_policy_names: list[str] = field(default_factory=list)
    alarm_name: str | None = None
    owned: list[str] = field(default_factory=list)
    trigger: TriggerDeployment | None = None
    spec: dict[str, Any] = field(default_factory=dict)
    created_at: str | None = None
    updated_at: str | None = None
    # What the last deploy() call did ("created bucket …", "unchanged endpoint …"); not saved.
    changes: list[str] = field(default_factory=list, compare=False, repr=False)

    # -- derived ----------------------------------------------------------------------------------
    @property
    def input_uri(self) -> str:
        """``s3://bucket/input_prefix`` where plans are uploaded for submission."""
        return f"s3://{self.bucket}/{self.input_prefix}"

    @property
    def is_async(self) -> bool:
        return self.kind == "async"

    # -- manifest ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("changes", None)
        data["manifest_version"] = MANIFEST_VERSION
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Deployment":
        if not isinstance(data, Mapping):
            raise ConfigError("a deployment manifest must be a JSON object")
        version = data.get("manifest_version", MANIFEST_VERSION)
        if version != MANIFEST_VERSION:
            raise ConfigError(f"deployment manifest version {version} is not supported (expected {MANIFEST_VERSION})")
        known = {f.name for f in fields(cls)} - {"changes"}
        values = {k: v for k, v in data.items() if k in known}
        missing = sorted(f.name for f in fields(cls) if f.name in known and f.name not in values
                         and f.default is MISSING and f.default_factory is MISSING)
        if missing:
            raise ConfigError(f"deployment manifest lacks {', '.join(missing)}")
        trig = values.get("trigger")
        if trig is not None:
            try:
                values["trigger"] = TriggerDeployment(**trig)
            except TypeError as exc:
                raise ConfigError(f"deployment manifest: bad trigger section: {exc}") from None
        return cls(**values)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the manifest atomically (a crash never leaves half a file)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "Deployment":
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"no deployment manifest at {path}: run `roomkit deploy SPEC --manifest {path}` first") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read deployment manifest {path}: {exc}") from exc
        try:
            return cls.from_dict(data)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc.message}") from None
