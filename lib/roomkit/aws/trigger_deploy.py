"""Deploy and remove the upload trigger of a deployment (:mod:`roomkit.aws.trigger`).

AWS (``target="lambda"``): the handler is zipped (``roomkit/aws/trigger.py`` and the two tiny modules
it imports), installed as a Lambda function whose role may only call
``sagemaker:InvokeEndpointAsync`` on this one endpoint, read the upload prefix, keep its
idempotency claims and write its logs; S3 gets permission to invoke it (scoped to the bucket and
account), and the bucket notification gains one entry per plan suffix under the prefix — entries
other tools put on the bucket are kept.

Local mode (``target="sqs"``): moto cannot run Lambda functions without Docker, so the bucket
notifies an SQS queue tagged ``roomkit:trigger-env`` (the handler's environment as JSON); the
local runtime drains it through the very same :func:`roomkit.aws.trigger.process_event`.

The endpoint reads uploads in place (``InputLocation`` is the uploaded object), so the execution
role gains a second inline policy reading the upload prefix while the trigger exists.
"""
from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from roomkit.aws import iam
from roomkit.aws import AwsSession
from roomkit.aws.deploy import (
    OWNER_TAG, DeployError, _ignore_missing, _missing, _Reporter, _retry_role_propagation, delete_role,
    ensure_queue, ensure_role, resource_names,
)
from roomkit.aws.deployment import Deployment, TriggerDeployment
from roomkit.errors import ConfigError
from roomkit.aws.trigger import DEFAULT_CLAIMS_PREFIX, TriggerConfig

TRIGGER_TAG = "roomkit:trigger-env"
TRIGGER_READ_POLICY = "roomkit-trigger-input"
HANDLER = "roomkit.aws.trigger.handler"
LAMBDA_RUNTIME = "python3.12"
# The handler zip: the trigger and what it imports (the package __init__ is lazy, errors is pure).
HANDLER_MODULES = ("__init__.py", "errors.py", "trigger.py")


def package_handler() -> bytes:
    """The Lambda deployment zip (reproducible: fixed timestamps and order)."""
    root = Path(__file__).resolve().parent
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in HANDLER_MODULES:
            info = zipfile.ZipInfo(f"roomkit/{name}", date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, (root / name).read_bytes())
    return buf.getvalue()


def _notification_id(name: str, suffix: str) -> str:
    return f"roomkit-{name}-trigger{suffix}"


def _current_notifications(s3: Any, bucket: str) -> dict[str, Any]:
    config = s3.get_bucket_notification_configuration(Bucket=bucket)
    config.pop("ResponseMetadata", None)
    return config


def _without_ours(config: dict[str, Any], name: str) -> tuple[dict[str, Any], list[str]]:
    prefix = f"roomkit-{name}-trigger"
    removed: list[str] = []
    out: dict[str, Any] = {}
    for kind, entries in config.items():
        if not isinstance(entries, list):
            out[kind] = entries  # EventBridgeConfiguration
            continue
        kept = []
        for entry in entries:
            if str(entry.get("Id", "")).startswith(prefix):
                removed.append(entry["Id"])
            else:
                kept.append(entry)
        if kept:
            out[kind] = kept
    return out, removed


def _put_notifications(s3: Any, bucket: str, config: dict[str, Any], *, patience_s: float = 60.0) -> None:
    """Write the bucket's notification configuration. S3 validates each destination as it is
    set; a just-granted Lambda permission or queue policy can take seconds to be visible, so
    "Unable to validate" is retried for ``patience_s``."""
    deadline = time.monotonic() + patience_s
    while True:
        try:
            s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=config)
            return
        except ClientError as exc:
            message = exc.response.get("Error", {}).get("Message", "")
            if "overlap" in message.lower():
                raise DeployError(
                    f"bucket {bucket} already has a notification for the same events, prefix and suffix "
                    f"as the trigger ({message}); change the trigger prefix or remove the other one"
                ) from None
            if "unable to validate" not in message.lower() or time.monotonic() > deadline:
                raise DeployError(f"cannot set the notifications of bucket {bucket}: {message}") from exc
            time.sleep(3.0)


def deploy_trigger(
    deployment: Deployment,
    session: AwsSession,
    *,
    prefix: str = "blueprints/",
    suffixes: tuple[str, ...] | None = None,
    request_ttl_seconds: int | None = None,
    invocation_timeout_seconds: int | None = None,
    claims_prefix: str | None = DEFAULT_CLAIMS_PREFIX,
    target: str | None = None,
    memory_mb: int = 256,
    timeout_s: int = 60,
    progress: bool = True,
    manifest: str | Path | None = None,
) -> TriggerDeployment:
    """Make every plan uploaded under ``s3://<deployment bucket>/<prefix>`` run through the endpoint.

    Create-or-update, so re-running with other settings reconfigures the same trigger.
    ``target`` is ``"lambda"`` (default in aws mode) or ``"sqs"`` (default in local mode).
    Sets ``deployment.trigger`` and, with ``manifest``, saves the deployment there.
    """
    if deployment.kind != "async":
        raise ConfigError(f"the upload trigger needs an async endpoint; {deployment.endpoint_name} is {deployment.kind}")
    target = target or ("sqs" if session.mode == "local" else "lambda")
    if target not in ("lambda", "sqs"):
        raise ConfigError(f"target must be 'lambda' or 'sqs', got {target!r}")
    report = _Reporter(progress)
    bucket = deployment.bucket
    prefix = prefix.lstrip("/")
    for label, path in (("output", deployment.output_path), ("failure", deployment.failure_path)):
        if path and path.startswith(f"s3://{bucket}/"):
            key_prefix = path[len(f"s3://{bucket}/"):]
            if key_prefix.startswith(prefix) or prefix.startswith(key_prefix):
                raise ConfigError(
                    f"trigger prefix {prefix!r} overlaps the {label} path {path}: results would trigger new jobs"
                )
    config = TriggerConfig(
        endpoint_name=deployment.endpoint_name, input_prefix=prefix,
        suffixes=tuple(suffixes) if suffixes else TriggerConfig.__dataclass_fields__["suffixes"].default,
        bucket=bucket, request_ttl_seconds=request_ttl_seconds,
        invocation_timeout_seconds=invocation_timeout_seconds, claims_prefix=claims_prefix,
    )
    env = config.to_env()
    names = resource_names(deployment.name, deployment.account_id, deployment.region)
    region, account = deployment.region, deployment.account_id
    partition = iam.partition_for(region)
    bucket_arn = f"arn:{partition}:s3:::{bucket}"
    iam_client, s3 = session.client("iam"), session.client("s3")
    tags = {str(k): str(v) for k, v in (deployment.spec.get("tags") or {}).items()}

    # The endpoint reads uploads in place: let its role read the prefix.
    policy_name = None
    if deployment.role_name:
        iam_client.put_role_policy(
            RoleName=deployment.role_name, PolicyName=TRIGGER_READ_POLICY,
            PolicyDocument=json.dumps(iam.trigger_read_policy(region=region, bucket=bucket, prefix=prefix)),
        )
        policy_name = TRIGGER_READ_POLICY
        report(f"execution role {deployment.role_name} may read s3://{bucket}/{prefix}")
    else:
        report(f"warning: execution role {deployment.role_arn} is not roomkit's: grant it s3:GetObject on "
               f"s3://{bucket}/{prefix}*")

    # Drop any previous trigger of this deployment before adding the new entries.
    previous = deployment.trigger
    if previous is not None and previous.target != target:
        remove_trigger(deployment, session, progress=progress)

    entries = []
    ids = []
    for suffix in config.suffixes:
        for variant in dict.fromkeys((suffix, suffix.upper())):  # S3 suffix filters are case-sensitive
            ids.append(_notification_id(deployment.name, variant))
            entries.append({
                "Id": ids[-1], "Events": ["s3:ObjectCreated:*"],
                "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": prefix},
                                                   {"Name": "suffix", "Value": variant}]}},
            })

    # Events that keep failing end here (Lambda's on-failure destination / the queue's redrive),
    # with their payload, instead of being dropped.
    sqs = session.client("sqs")
    dlq_url, dlq_arn, _ = ensure_queue(sqs, names["trigger_dlq"], policy=None, name=deployment.name, tags=tags,
                                       report=report, attributes={"MessageRetentionPeriod": str(14 * 86400)})
    trigger = TriggerDeployment(target=target, bucket=bucket, prefix=prefix, suffixes=list(config.suffixes),
                                notification_ids=ids, env=env, execution_role_policy_name=policy_name,
                                dead_letter_queue_url=dlq_url, dead_letter_queue_arn=dlq_arn)
    if target == "sqs":
        def queue_policy(queue_arn: str) -> dict:
            return {"Version": iam.VERSION, "Statement": [{
                "Sid": "AllowBucketNotifications", "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"}, "Action": "sqs:SendMessage", "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": bucket_arn}, "StringEquals": {"aws:SourceAccount": account}},
            }]}

        url, arn, _ = ensure_queue(
            sqs, names["trigger_queue"], policy=queue_policy, name=deployment.name, tags=tags, report=report,
            extra_tags={TRIGGER_TAG: json.dumps(env, sort_keys=True)},
            attributes={"VisibilityTimeout": str(max(timeout_s, 30)),
                        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"})},
        )
        trigger.queue_url, trigger.queue_arn = url, arn
        for entry in entries:
            entry["QueueArn"] = arn
        kind = "QueueConfigurations"
    else:
        function = names["trigger_function"]
        role_policy = iam.trigger_function_policy(
            region=region, account=account, endpoint_name=deployment.endpoint_name, bucket=bucket,
            prefix=prefix, claims_prefix=claims_prefix, function_name=function, dead_letter_queue_arn=dlq_arn,
        )
        role_arn, _ = ensure_role(iam_client, names["trigger_role"], service="lambda.amazonaws.com",
                                  policy_name="roomkit-trigger", policy=role_policy, name=deployment.name,
                                  tags=tags, report=report)
        lam = session.client("lambda")
        code = package_handler()
        settings = {
            "Role": role_arn, "Handler": HANDLER, "Runtime": LAMBDA_RUNTIME, "Timeout": timeout_s,
            "MemorySize": memory_mb, "Environment": {"Variables": env},
            "Description": f"roomkit {deployment.name}: uploads under {prefix} -> {deployment.endpoint_name}",
        }
        try:
            lam.get_function(FunctionName=function)
            exists = True
        except ClientError as exc:
            if not _missing(exc):
                raise
            exists = False
        if exists:
            lam.update_function_code(FunctionName=function, ZipFile=code)
            _wait_function(lam, function)
            lam.update_function_configuration(FunctionName=function, **settings)
            _wait_function(lam, function)
            fn = lam.get_function(FunctionName=function)["Configuration"]
            report(f"updated function {function}")
        else:
            fn = _retry_role_propagation(
                lambda: lam.create_function(FunctionName=function, Code={"ZipFile": code}, Publish=False,
                                            Tags={**tags, OWNER_TAG: deployment.name}, **settings),
                mode=session.mode, what=f"CreateFunction {function}",
            )
            _wait_function(lam, function)
            report(f"created function {function}")
        lam.put_function_event_invoke_config(
            FunctionName=function, MaximumRetryAttempts=2, MaximumEventAgeInSeconds=6 * 3600,
            DestinationConfig={"OnFailure": {"Destination": dlq_arn}},
        )
        statement_id = f"roomkit-s3-{deployment.name}"
        _ignore_missing(lam.remove_permission, FunctionName=function, StatementId=statement_id)
        lam.add_permission(FunctionName=function, StatementId=statement_id, Action="lambda:InvokeFunction",
                           Principal="s3.amazonaws.com", SourceArn=bucket_arn, SourceAccount=account)
        trigger.function_name, trigger.function_arn = function, fn["FunctionArn"]
        trigger.role_name, trigger.role_arn = names["trigger_role"], role_arn
        trigger.permission_statement_id = statement_id
        for entry in entries:
            entry["LambdaFunctionArn"] = fn["FunctionArn"]
        kind = "LambdaFunctionConfigurations"

    current, _ = _without_ours(_current_notifications(s3, bucket), deployment.name)
    current[kind] = current.get(kind, []) + entries
    _put_notifications(s3, bucket, current)
    report(f"bucket {bucket}: {len(entries)} notification(s) for {prefix}*{{{','.join(config.suffixes)}}} -> {target}")
    deployment.trigger = trigger
    if manifest is not None:
        deployment.save(manifest)
    return trigger


def _wait_function(lam: Any, function: str, timeout: float = 120.0) -> None:
    """Lambda refuses updates while a previous one is in progress: wait for Active/Successful."""
    deadline = time.monotonic() + timeout
    while True:
        conf = lam.get_function_configuration(FunctionName=function)
        state, update = conf.get("State", "Active"), conf.get("LastUpdateStatus", "Successful")
        if state == "Failed" or update == "Failed":
            raise DeployError(f"function {function} failed: {conf.get('StateReason') or conf.get('LastUpdateStatusReason')}")
        if state == "Active" and update in ("Successful", None):
            return
        if time.monotonic() > deadline:
            raise DeployError(f"function {function} still {state}/{update} after {timeout:.0f}s")
        time.sleep(1.0)


def _queue_url(sqs: Any, name: str) -> str | None:
    """The URL of queue ``name``, or ``None`` when it does not exist."""
    try:
        return sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError as exc:
        if not _missing(exc):
            raise
        return None


def remove_trigger(deployment: Deployment, session: AwsSession, *, progress: bool = True,
                   manifest: str | Path | None = None) -> list[str]:
    """Undo :func:`deploy_trigger`: notifications (others kept), permission, function, roles,
    queue, claims. Safe to re-run; returns what was removed."""
    report = _Reporter(progress)
    names = resource_names(deployment.name, deployment.account_id, deployment.region)
    trigger = deployment.trigger
    s3, sqs = session.client("s3"), session.client("sqs")
    try:
        current, removed = _without_ours(_current_notifications(s3, deployment.bucket), deployment.name)
        if removed:
            _put_notifications(s3, deployment.bucket, current)
            report(f"removed {len(removed)} bucket notification(s) from {deployment.bucket}")
    except ClientError as exc:
        if not _missing(exc):
            raise
    iam_client = session.client("iam")
    if deployment.role_name:
        if _ignore_missing(iam_client.delete_role_policy, RoleName=deployment.role_name, PolicyName=TRIGGER_READ_POLICY):
            report(f"removed policy {TRIGGER_READ_POLICY} from role {deployment.role_name}")
    function = (trigger.function_name if trigger else None) or names["trigger_function"]
    if trigger is None or trigger.target == "lambda":
        lam = session.client("lambda")
        if _ignore_missing(lam.delete_function, FunctionName=function):
            report(f"removed function {function}")
        role = (trigger.role_name if trigger else None) or names["trigger_role"]
        try:
            tags = iam_client.get_role(RoleName=role)["Role"].get("Tags", [])
            ours = any(t["Key"] == OWNER_TAG and t["Value"] == deployment.name for t in tags)
        except ClientError as exc:
            if not _missing(exc):
                raise
            ours = False
        if ours and delete_role(iam_client, role):
            report(f"removed role {role}")
    if trigger is None or trigger.target == "sqs":
        url = (trigger.queue_url if trigger else None) or _queue_url(sqs, names["trigger_queue"])
        if url and _ignore_missing(sqs.delete_queue, QueueUrl=url):
            report(f"removed queue {url}")
    dlq = (trigger.dead_letter_queue_url if trigger else None) or _queue_url(sqs, names["trigger_dlq"])
    if dlq:
        try:
            waiting = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])
            count = int(waiting["Attributes"].get("ApproximateNumberOfMessages", 0))
        except ClientError as exc:
            if not _missing(exc):
                raise
            count = None
        if count is not None and _ignore_missing(sqs.delete_queue, QueueUrl=dlq):
            report(f"removed queue {dlq} ({count} failed event(s) in it)")
    claims = (trigger.env.get("CLAIMS_PREFIX") if trigger else None) or DEFAULT_CLAIMS_PREFIX
    if claims != "off":
        try:
            n = _empty_prefix(s3, deployment.bucket, claims)
        except ClientError as exc:
            if not _missing(exc):
                raise
            n = 0
        if n:
            report(f"removed {n} trigger claim(s) under s3://{deployment.bucket}/{claims}")
    deployment.trigger = None
    if manifest is not None:
        deployment.save(manifest)
    return report.lines


def _empty_prefix(s3: Any, bucket: str, prefix: str) -> int:
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
            count += len(keys)
    return count


__all__ = ["deploy_trigger", "remove_trigger", "package_handler", "TRIGGER_TAG", "HANDLER"]
