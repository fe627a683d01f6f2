"""Idempotent create/find/delete of the AWS resources a deployment owns, shared by
:mod:`roomkit.aws.deploy` and the trigger's deployment (:mod:`roomkit.aws.trigger_deploy`).

Every ``ensure_*`` creates its resource unless it exists, and tags what it creates with
:data:`OWNER_TAG` = the deployment's name: a later deploy reuses it, and teardown removes only
what carries that tag. Deleting is forgiving: what is already gone is skipped
(:func:`ignore_missing`), so every step can be re-run. Names derive from the deployment's name,
account and region (:func:`resource_names`); nothing is hard-coded.
"""
from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Any, Callable

from botocore.exceptions import ClientError

from roomkit.aws import iam
from roomkit.errors import RoomkitError

if TYPE_CHECKING:  # pragma: no cover
    from roomkit.aws import AwsSession

__all__ = [
    "DeployError", "OWNER_TAG", "Reporter", "resource_names", "tags_list", "error_code", "is_missing",
    "ignore_missing", "retry_role_propagation", "ensure_bucket", "topic_owned", "ensure_topic", "ensure_queue",
    "ensure_role", "delete_role", "delete_log_groups", "resolve_kms_key",
]

# The tag that marks a resource as created by roomkit for one deployment (value: its name).
OWNER_TAG = "roomkit:deployment"


class DeployError(RoomkitError):
    """A deployment step failed or a preflight check refused to go on."""

    code = "deploy_failed"
    http_status = 409


# -- names, tags, progress -------------------------------------------------------------------------
def resource_names(name: str, account: str, region: str) -> dict[str, str]:
    """The names ``deploy`` gives its resources (bucket names are global: account+region make
    them unique without a hard-coded value)."""
    return {
        "bucket": f"{name}-{account}-{region}",
        "success_topic": f"{name}-success",
        "error_topic": f"{name}-error",
        "queue": f"{name}-notifications",
        "role": f"{name}-sagemaker-exec",
        "endpoint": name,
        "model_prefix": f"{name}-model-",
        "config_prefix": f"{name}-cfg-",
        "target_policy": f"{name}-backlog-target",
        "wake_policy": f"{name}-wake-from-zero",
        "alarm": f"{name}-backlog-without-capacity",
        "trigger_function": f"{name}-upload-trigger",
        "trigger_role": f"{name}-upload-trigger",
        "trigger_queue": f"{name}-upload-trigger",
        "trigger_dlq": f"{name}-upload-trigger-dlq",
    }


def tags_list(tags: dict[str, str]) -> list[dict[str, str]]:
    """``{"k": "v"}`` as the ``[{"Key": "k", "Value": "v"}]`` most AWS APIs take, sorted."""
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


class Reporter:
    """Collects what deploy/teardown did and, with ``progress``, prints it as it happens."""

    def __init__(self, progress: bool) -> None:
        self.progress = progress
        self.lines: list[str] = []

    def __call__(self, line: str) -> None:
        self.lines.append(line)
        if self.progress:
            try:
                from tqdm.auto import tqdm

                tqdm.write(line, file=sys.stderr)
            except ImportError:  # pragma: no cover - tqdm is a dependency of the aws extra
                print(line, file=sys.stderr)


# -- "it is not there" -----------------------------------------------------------------------------
def error_code(exc: ClientError) -> str:
    """The AWS error code of ``exc`` (``""`` when it has none)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


_MISSING_CODES = {
    "NoSuchEntity", "NoSuchBucket", "NotFound", "404", "NoSuchKey", "ResourceNotFoundException",
    "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "ObjectNotFoundException",
    "RepositoryNotFoundException", "ImageNotFoundException", "ResourceNotFound",
}


def is_missing(exc: ClientError) -> bool:
    """Whether ``exc`` says the resource does not exist (each service says it differently)."""
    code = error_code(exc)
    if code in _MISSING_CODES:
        return True
    message = str(exc.response.get("Error", {}).get("Message", "")).lower()
    return code in ("ValidationException", "InvalidParameter") and (
        "could not find" in message or "does not exist" in message or "not found" in message
        or (message.startswith("no ") and " found" in message)
    )


def ignore_missing(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> bool:
    """Call ``fn``; True if it acted, False if the target was already gone."""
    try:
        fn(*args, **kwargs)
        return True
    except ClientError as exc:
        if is_missing(exc):
            return False
        raise


def retry_role_propagation(fn: Callable[[], Any], *, mode: str, what: str) -> Any:
    """A new IAM role takes a few seconds to be usable by other services: retry those errors."""
    deadline = time.monotonic() + (90 if mode == "aws" else 0)
    delay = 2.0
    while True:
        try:
            return fn()
        except ClientError as exc:
            message = str(exc.response.get("Error", {}).get("Message", "")).lower()
            propagating = ("assume" in message or "role" in message) and error_code(exc) in (
                "ValidationException", "InvalidParameterValueException", "AccessDeniedException",
            )
            if not propagating or time.monotonic() > deadline:
                raise DeployError(f"{what} failed: {error_code(exc)}: {exc.response['Error'].get('Message')}") from exc
            time.sleep(delay)
            delay = min(delay * 1.5, 10.0)


# -- S3 --------------------------------------------------------------------------------------------
def _bucket_owned(s3: Any, bucket: str, name: str) -> bool:
    try:
        tags = s3.get_bucket_tagging(Bucket=bucket)["TagSet"]
    except ClientError:
        return False
    return any(t["Key"] == OWNER_TAG and t["Value"] == name for t in tags)


def ensure_bucket(s3: Any, bucket: str, *, region: str, name: str, tags: dict[str, str],
                  kms_key_arn: str | None, report: Callable[[str], None], tls_only: bool = True) -> bool:
    """Create ``bucket`` (private, encrypted, TLS-only) unless it exists; True if roomkit owns it.

    ``tls_only`` adds the bucket policy denying plain-HTTP requests; it is off only when the S3
    endpoint itself is plain HTTP (the loopback services of the local mode), where it would deny
    everything.
    """
    try:
        s3.head_bucket(Bucket=bucket)
        exists = True
    except ClientError as exc:
        if error_code(exc) in ("403", "AccessDenied", "Forbidden"):
            raise DeployError(
                f"bucket {bucket} exists but belongs to someone else (or you cannot access it): "
                "set `bucket:` in the spec to a bucket of yours"
            ) from None
        if not is_missing(exc):
            raise
        exists = False
    if exists:
        owned = _bucket_owned(s3, bucket, name)
        report(f"reused bucket {bucket}" + ("" if owned else " (not created by roomkit: left as is)"))
        if not owned:
            return False
    else:
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            s3.create_bucket(**kwargs)
        except ClientError as exc:
            if error_code(exc) == "BucketAlreadyExists":
                raise DeployError(
                    f"bucket name {bucket} is taken by another account: set `bucket:` in the spec"
                ) from None
            if error_code(exc) != "BucketAlreadyOwnedByYou":
                raise
        report(f"created bucket {bucket}")
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True, "IgnorePublicAcls": True,
            "BlockPublicPolicy": True, "RestrictPublicBuckets": True,
        },
    )
    default = (
        {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": kms_key_arn} if kms_key_arn else {"SSEAlgorithm": "AES256"}
    )
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": default, "BucketKeyEnabled": True}]
        },
    )
    partition = iam.partition_for(region)
    if tls_only:
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({
            "Version": iam.VERSION,
            "Statement": [{
                "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                "Resource": [f"arn:{partition}:s3:::{bucket}", f"arn:{partition}:s3:::{bucket}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }],
        }))
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tags_list({**tags, OWNER_TAG: name})})
    return True


# -- SNS, SQS --------------------------------------------------------------------------------------
def topic_owned(sns: Any, arn: str, name: str) -> bool | None:
    """None if the topic does not exist, else whether roomkit's tag marks it as ``name``'s."""
    try:
        sns.get_topic_attributes(TopicArn=arn)
    except ClientError as exc:
        if is_missing(exc):
            return None
        raise
    try:
        tags = sns.list_tags_for_resource(ResourceArn=arn)["Tags"]
    except ClientError:
        return False
    return any(t["Key"] == OWNER_TAG and t["Value"] == name for t in tags)


def ensure_topic(sns: Any, topic: str, arn: str, *, name: str, tags: dict[str, str],
                 report: Callable[[str], None]) -> tuple[str, bool]:
    """Create topic ``topic`` (expected at ``arn``) unless it exists; (its ARN, whether roomkit owns it)."""
    owned = topic_owned(sns, arn, name)
    if owned is None:
        arn = sns.create_topic(Name=topic)["TopicArn"]
        sns.tag_resource(ResourceArn=arn, Tags=tags_list({**tags, OWNER_TAG: name}))
        report(f"created topic {arn}")
        return arn, True
    report(f"reused topic {arn}")
    return arn, bool(owned)


def _queue_arn(sqs: Any, url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def ensure_queue(sqs: Any, queue: str, *, policy: Callable[[str], dict] | None, name: str,
                 tags: dict[str, str], report: Callable[[str], None],
                 extra_tags: dict[str, str] | None = None,
                 attributes: dict[str, str] | None = None) -> tuple[str, str, bool]:
    """Create or reuse ``queue``; (re)apply its access policy (built from the queue ARN) and
    ``attributes`` in one call (moto drops a queue's policy on a later call without it)."""
    try:
        url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        created = False
    except ClientError as exc:
        if not is_missing(exc):
            raise
        url = sqs.create_queue(
            QueueName=queue,
            Attributes={"SqsManagedSseEnabled": "true", "MessageRetentionPeriod": str(4 * 86400)},
            tags={**tags, OWNER_TAG: name, **(extra_tags or {})},
        )["QueueUrl"]
        created = True
    arn = _queue_arn(sqs, url)
    attrs = dict(attributes or {})
    if policy is not None:
        attrs["Policy"] = json.dumps(policy(arn))
    if attrs:
        sqs.set_queue_attributes(QueueUrl=url, Attributes=attrs)
    if not created and extra_tags:
        sqs.tag_queue(QueueUrl=url, Tags=extra_tags)
    owned = created or sqs.list_queue_tags(QueueUrl=url).get("Tags", {}).get(OWNER_TAG) == name
    report(f"{'created' if created else 'reused'} queue {url}")
    return url, arn, owned


# -- IAM -------------------------------------------------------------------------------------------
def ensure_role(iam_client: Any, role: str, *, service: str, policy_name: str, policy: dict,
                name: str, tags: dict[str, str], report: Callable[[str], None]) -> tuple[str, bool]:
    """Create or reuse role ``role`` trusted by ``service``; set its one inline policy."""
    problems = iam.wildcard_findings(policy)
    if problems:  # a bug in roomkit, never user input: refuse rather than deploy it
        raise DeployError(f"refusing over-broad policy for {role}: {'; '.join(problems)}")
    trust = json.dumps(iam.trust_policy(service))
    try:
        found = iam_client.get_role(RoleName=role)["Role"]
        owned = any(t["Key"] == OWNER_TAG and t["Value"] == name for t in found.get("Tags", []))
        if not owned:
            raise DeployError(
                f"IAM role {role} exists but was not created by roomkit for {name!r}: "
                "pass role_arn in the spec to use it, or pick another name"
            )
        if not iam.allows_service(found["AssumeRolePolicyDocument"], service):
            iam_client.update_assume_role_policy(RoleName=role, PolicyDocument=trust)
        arn, created = found["Arn"], False
    except ClientError as exc:
        if not is_missing(exc):
            raise
        arn = iam_client.create_role(
            RoleName=role, Path="/roomkit/", AssumeRolePolicyDocument=trust,
            Description=f"roomkit {name}: least-privilege role for {service}",
            Tags=tags_list({**tags, OWNER_TAG: name}),
        )["Role"]["Arn"]
        created = True
    iam_client.put_role_policy(RoleName=role, PolicyName=policy_name, PolicyDocument=json.dumps(policy))
    report(f"{'created' if created else 'reused'} role {arn} (inline policy {policy_name})")
    return arn, created


def delete_role(iam_client: Any, role: str) -> bool:
    """Delete ``role`` with its inline and attached policies; False if it was already gone."""
    try:
        for page in iam_client.get_paginator("list_role_policies").paginate(RoleName=role):
            for policy in page["PolicyNames"]:
                iam_client.delete_role_policy(RoleName=role, PolicyName=policy)
        for page in iam_client.get_paginator("list_attached_role_policies").paginate(RoleName=role):
            for policy in page["AttachedPolicies"]:
                iam_client.detach_role_policy(RoleName=role, PolicyArn=policy["PolicyArn"])
    except ClientError as exc:
        if is_missing(exc):
            return False
        raise
    return ignore_missing(iam_client.delete_role, RoleName=role)


# -- CloudWatch Logs, KMS --------------------------------------------------------------------------
def delete_log_groups(logs: Any, groups: list[str]) -> list[str]:
    """Delete the named CloudWatch log groups (the endpoint's, the trigger function's); those
    already gone are skipped. Returns the ones deleted."""
    removed = []
    for group in groups:
        if ignore_missing(logs.delete_log_group, logGroupName=group):
            removed.append(group)
    return removed


def resolve_kms_key(session: AwsSession, key: str | None) -> str | None:
    """The ARN of a KMS key id, alias or ARN (``None`` when no key is configured)."""
    if not key:
        return None
    if key.startswith("arn:") and ":key/" in key:
        return key
    try:
        return session.client("kms").describe_key(KeyId=key)["KeyMetadata"]["Arn"]
    except ClientError as exc:
        raise DeployError(f"async_inference.kms_key_id {key!r} cannot be resolved: {error_code(exc)}") from None
