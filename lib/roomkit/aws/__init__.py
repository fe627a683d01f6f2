"""The AWS side: everything that talks to SageMaker, S3, SNS/SQS, IAM and Lambda through boto3.

Owns, one concern a module: :mod:`.clients` (``session(mode="local" | "aws")``, the one place
clients are built), :mod:`.spec` (the deployment spec), :mod:`.deployment` (the record a deploy
writes), :mod:`.deploy` (deploy and teardown, step by step), :mod:`.resources`
(create/find/delete of the buckets, topics, queues and roles a deployment owns, shared with the
trigger's deployment), :mod:`.iam` (least-privilege policies), :mod:`.submit`, :mod:`.wait`,
:mod:`.results` (the async job cycle), :mod:`.jobs` (its dataclasses), :mod:`.notifications`
(SNS message parsing), :mod:`.transform` (Batch Transform), :mod:`.trigger` and
:mod:`.trigger_deploy` (upload-triggered inference), :mod:`.inputs`, :mod:`.target`, :mod:`.s3`
(small helpers).

Moves bytes and JSON only: never imports OpenCV (tested). The session helpers are re-exported
here lazily, so ``roomkit.aws.session("local")`` works and importing a submodule (the Lambda
handler, say) does not pull boto3 in by itself.
"""
from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_CLIENTS = (
    "AwsSession", "session", "MODES", "DEFAULT_LOCAL_REGION", "LOCAL_STATE_ENV",
    "DEFAULT_LOCAL_STATE", "RUNTIME_SERVICES", "local_state_path", "read_local_state", "pid_alive",
)

__all__ = list(_CLIENTS)

if TYPE_CHECKING:  # pragma: no cover
    from roomkit.aws.clients import (  # noqa: F401
        DEFAULT_LOCAL_REGION, DEFAULT_LOCAL_STATE, LOCAL_STATE_ENV, MODES, RUNTIME_SERVICES,
        AwsSession, local_state_path, pid_alive, read_local_state, session,
    )


def __getattr__(name: str) -> Any:
    if name not in _CLIENTS:
        raise AttributeError(f"module 'roomkit.aws' has no attribute {name!r}")
    value = getattr(import_module("roomkit.aws.clients"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(__all__) | set(globals()))
