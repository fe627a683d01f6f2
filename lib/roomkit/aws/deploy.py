"""Stand up, update and tear down an endpoint from a :class:`~roomkit.aws.spec.DeploymentSpec`.

``deploy(spec, session)`` is create-or-reuse for every resource, so running it twice is safe:
the second run changes nothing when the spec, image digest and artifact are unchanged, and
rolls the endpoint to a new endpoint config (``UpdateEndpoint``) when they differ. The same code
runs against AWS and against the local mode's loopback services; only ``session`` differs.

Resources, in the order they are made (names derive from ``spec.name``, the account id and the
region — nothing is hard-coded):

* preflight: the ECR image exists with a Docker v2 manifest (SageMaker refuses OCI), the
  execution role is assumable by SageMaker, the model artifact exists;
* S3 bucket ``<name>-<account>-<region>`` (public access blocked, default encryption, TLS only);
* async only: SNS topics ``<name>-success``/``<name>-error`` and SQS queue
  ``<name>-notifications`` subscribed to both (queue policy scoped to the two topics);
* IAM role ``<name>-sagemaker-exec`` with one least-privilege inline policy (:mod:`roomkit.aws.iam`);
* model ``<name>-model-<hash>``, endpoint config ``<name>-cfg-<hash>-<timestamp>``, endpoint;
* async only: Application Auto Scaling on the backlog, down to zero, plus the
  ``HasBacklogWithoutCapacity`` alarm and step policy that wake it from zero.
"""
from __future__ import annotations

import hashlib
import json
import re
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from botocore.exceptions import ClientError

from roomkit.aws import iam
from roomkit.aws import AwsSession
from roomkit.aws.spec import DeploymentSpec, load_model_config, parse_ecr_uri, parse_s3_uri
from roomkit.aws.deployment import Deployment, TriggerDeployment
from roomkit.errors import ConfigError, RoomkitError

__all__ = [
    "DeployError", "Deployment", "DeploymentSpec", "TriggerDeployment", "deploy", "teardown",
    "preflight_image", "deploy_trigger", "remove_trigger", "resource_names",
]

DOCKER_V2_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OWNER_TAG = "roomkit:deployment"
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
ROLE_POLICY_NAME = "roomkit-endpoint"
LOCAL_IMAGE_REPOSITORY, LOCAL_IMAGE_TAG = "roomkit", "local"

OCI_REPAIR = (
    "SageMaker only pulls Docker v2 schema 2 manifests. Re-push the image in that format, e.g.\n"
    "  skopeo copy --format v2s2 docker://{uri} docker://{uri}\n"
    "or rebuild with\n"
    "  docker buildx build --platform linux/amd64 --provenance=false --sbom=false "
    "--output type=image,name={uri},push=true,oci-mediatypes=false .\n"
    "(container/build_and_push.sh does the latter)."
)


class DeployError(RoomkitError):
    """A deployment step failed or a preflight check refused to go on."""

    code = "deploy_failed"
    http_status = 409


# -- small helpers ---------------------------------------------------------------------------------
def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


_MISSING_CODES = {
    "NoSuchEntity", "NoSuchBucket", "NotFound", "404", "NoSuchKey", "ResourceNotFoundException",
    "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "ObjectNotFoundException",
    "RepositoryNotFoundException", "ImageNotFoundException", "ResourceNotFound",
}


def _missing(exc: ClientError) -> bool:
    """Whether ``exc`` says the resource does not exist (each service says it differently)."""
    code = _code(exc)
    if code in _MISSING_CODES:
        return True
    message = str(exc.response.get("Error", {}).get("Message", "")).lower()
    return code in ("ValidationException", "InvalidParameter") and (
        "could not find" in message or "does not exist" in message or "not found" in message
        or (message.startswith("no ") and " found" in message)
    )


def _ignore_missing(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> bool:
    """Call ``fn``; True if it acted, False if the target was already gone."""
    try:
        fn(*args, **kwargs)
        return True
    except ClientError as exc:
        if _missing(exc):
            return False
        raise


def _hash(obj: Any, n: int = 12) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:n]


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Reporter:
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


def _tags_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


# -- preflight -------------------------------------------------------------------------------------
def preflight_image(ecr: Any, image_uri: str, region: str) -> dict[str, Any]:
    """Check that ``image_uri`` exists in ECR in ``region`` with a Docker v2 manifest.

    Returns the ECR image details (``imageDigest``, ``imageManifestMediaType`` …); raises
    :class:`DeployError` with the repair command for OCI manifests.
    """
    parts = parse_ecr_uri(image_uri)
    if parts["region"] != region:
        raise DeployError(
            f"image {image_uri} is in ECR region {parts['region']} but the endpoint is in {region}: "
            "SageMaker pulls from its own region; push the image there"
        )
    image_id = {"imageDigest": parts["digest"]} if parts["digest"] else {"imageTag": parts["tag"]}
    try:
        details = ecr.describe_images(
            registryId=parts["account"], repositoryName=parts["repo"], imageIds=[image_id]
        )["imageDetails"]
    except ClientError as exc:
        if _missing(exc):
            raise DeployError(
                f"image {image_uri} not found in ECR ({_code(exc)}): build and push it first "
                "(container/build_and_push.sh)"
            ) from None
        raise
    if not details:
        raise DeployError(f"image {image_uri} not found in ECR")
    media = details[0].get("imageManifestMediaType")
    if media != DOCKER_V2_MANIFEST:
        raise DeployError(
            f"image {image_uri} has manifest media type {media!r}, not {DOCKER_V2_MANIFEST}. "
            + OCI_REPAIR.format(uri=image_uri)
        )
    return details[0]


def preflight_artifact(s3: Any, model_data_url: str) -> None:
    bucket, key = parse_s3_uri(model_data_url, field_name="model_data_url")
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if _missing(exc) or _code(exc) in ("403", "AccessDenied"):
            raise DeployError(
                f"model artifact {model_data_url} cannot be read ({_code(exc)}): upload it, or give "
                "model_config to have roomkit package and upload one"
            ) from None
        raise


def preflight_role(iam_client: Any, role_arn: str, report: Callable[[str], None]) -> None:
    """The execution role must trust sagemaker.amazonaws.com, or CreateModel fails later."""
    role_name = role_arn.rsplit("/", 1)[-1]
    try:
        doc = iam_client.get_role(RoleName=role_name)["Role"]["AssumeRolePolicyDocument"]
    except ClientError as exc:
        if _missing(exc):
            raise DeployError(f"execution role {role_arn} does not exist") from None
        if _code(exc) == "AccessDenied":
            report(f"warning: cannot read role {role_arn} (iam:GetRole denied); trust policy not checked")
            return
        raise
    if not iam.allows_service(doc, "sagemaker.amazonaws.com"):
        raise DeployError(
            f"execution role {role_arn} cannot be assumed by SageMaker: its trust policy must allow "
            "sts:AssumeRole for the service principal sagemaker.amazonaws.com"
        )


# -- S3, SNS, SQS, IAM -----------------------------------------------------------------------------
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
        if _code(exc) in ("403", "AccessDenied", "Forbidden"):
            raise DeployError(
                f"bucket {bucket} exists but belongs to someone else (or you cannot access it): "
                "set `bucket:` in the spec to a bucket of yours"
            ) from None
        if not _missing(exc):
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
            if _code(exc) == "BucketAlreadyExists":
                raise DeployError(
                    f"bucket name {bucket} is taken by another account: set `bucket:` in the spec"
                ) from None
            if _code(exc) != "BucketAlreadyOwnedByYou":
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
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": _tags_list({**tags, OWNER_TAG: name})})
    return True


def _upload_artifact(s3: Any, spec: DeploymentSpec, bucket: str, report: Callable[[str], None]) -> str:
    """Package ``spec.model_config`` into model.tar.gz and upload it content-addressed."""
    from roomkit.serving.artifacts import package_model  # no boto3/cv2; only when packaging

    config = load_model_config(spec.model_config)  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory(prefix="roomkit-artifact-") as tmp:
        path = package_model(config, Path(tmp) / "model.tar.gz")
        data = Path(path).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    key = f"models/{spec.name}/{digest[:16]}/model.tar.gz"
    url = f"s3://{bucket}/{key}"
    try:
        s3.head_object(Bucket=bucket, Key=key)
        report(f"reused model artifact {url}")
    except ClientError as exc:
        if not _missing(exc):
            raise
        s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType="application/gzip",
                      Metadata={"sha256": digest})
        report(f"uploaded model artifact {url} ({len(data)} bytes)")
    return url


def _topic_owned(sns: Any, arn: str, name: str) -> bool | None:
    """None if the topic does not exist, else whether roomkit's tag marks it as ``name``'s."""
    try:
        sns.get_topic_attributes(TopicArn=arn)
    except ClientError as exc:
        if _missing(exc):
            return None
        raise
    try:
        tags = sns.list_tags_for_resource(ResourceArn=arn)["Tags"]
    except ClientError:
        return False
    return any(t["Key"] == OWNER_TAG and t["Value"] == name for t in tags)


def ensure_topic(sns: Any, topic: str, arn: str, *, name: str, tags: dict[str, str],
                 report: Callable[[str], None]) -> tuple[str, bool]:
    owned = _topic_owned(sns, arn, name)
    if owned is None:
        arn = sns.create_topic(Name=topic)["TopicArn"]
        sns.tag_resource(ResourceArn=arn, Tags=_tags_list({**tags, OWNER_TAG: name}))
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
        if not _missing(exc):
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


def _topics_queue_policy(queue_arn: str, topic_arns: list[str]) -> dict[str, Any]:
    return {
        "Version": iam.VERSION,
        "Statement": [{
            "Sid": "AllowDeploymentTopics", "Effect": "Allow",
            "Principal": {"Service": "sns.amazonaws.com"}, "Action": "sqs:SendMessage",
            "Resource": queue_arn, "Condition": {"ArnEquals": {"aws:SourceArn": sorted(topic_arns)}},
        }],
    }


def _subscribe(sns: Any, topic_arn: str, queue_arn: str) -> None:
    for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn):
        if any(s.get("Endpoint") == queue_arn for s in page.get("Subscriptions", [])):
            return
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn, ReturnSubscriptionArn=True)


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
        if not _missing(exc):
            raise
        arn = iam_client.create_role(
            RoleName=role, Path="/roomkit/", AssumeRolePolicyDocument=trust,
            Description=f"roomkit {name}: least-privilege role for {service}",
            Tags=_tags_list({**tags, OWNER_TAG: name}),
        )["Role"]["Arn"]
        created = True
    iam_client.put_role_policy(RoleName=role, PolicyName=policy_name, PolicyDocument=json.dumps(policy))
    report(f"{'created' if created else 'reused'} role {arn} (inline policy {policy_name})")
    return arn, created


def delete_role(iam_client: Any, role: str) -> bool:
    try:
        for page in iam_client.get_paginator("list_role_policies").paginate(RoleName=role):
            for policy in page["PolicyNames"]:
                iam_client.delete_role_policy(RoleName=role, PolicyName=policy)
        for page in iam_client.get_paginator("list_attached_role_policies").paginate(RoleName=role):
            for policy in page["AttachedPolicies"]:
                iam_client.detach_role_policy(RoleName=role, PolicyArn=policy["PolicyArn"])
    except ClientError as exc:
        if _missing(exc):
            return False
        raise
    return _ignore_missing(iam_client.delete_role, RoleName=role)


def _retry_role_propagation(fn: Callable[[], Any], *, mode: str, what: str) -> Any:
    """A new IAM role takes a few seconds to be usable by other services: retry those errors."""
    deadline = time.monotonic() + (90 if mode == "aws" else 0)
    delay = 2.0
    while True:
        try:
            return fn()
        except ClientError as exc:
            message = str(exc.response.get("Error", {}).get("Message", "")).lower()
            propagating = ("assume" in message or "role" in message) and _code(exc) in (
                "ValidationException", "InvalidParameterValueException", "AccessDeniedException",
            )
            if not propagating or time.monotonic() > deadline:
                raise DeployError(f"{what} failed: {_code(exc)}: {exc.response['Error'].get('Message')}") from exc
            time.sleep(delay)
            delay = min(delay * 1.5, 10.0)


# -- SageMaker -------------------------------------------------------------------------------------
def _variant(spec: DeploymentSpec, model_name: str) -> dict[str, Any]:
    variant: dict[str, Any] = {"VariantName": spec.variant_name, "ModelName": model_name}
    if spec.kind == "serverless":
        variant["ServerlessConfig"] = {
            "MemorySizeInMB": spec.serverless.memory_size_mb,
            "MaxConcurrency": spec.serverless.max_concurrency,
        }
    else:
        variant["InstanceType"] = spec.instance_type
        variant["InitialInstanceCount"] = spec.instance_count
        if spec.startup_timeout_s:
            variant["ContainerStartupHealthCheckTimeoutInSeconds"] = spec.startup_timeout_s
    return variant


def _async_config(spec: DeploymentSpec, output_path: str, failure_path: str,
                  topics: tuple[str | None, str | None], kms_key_arn: str | None) -> dict[str, Any]:
    output: dict[str, Any] = {"S3OutputPath": output_path, "S3FailurePath": failure_path}
    if kms_key_arn:
        output["KmsKeyId"] = kms_key_arn
    success, error = topics
    if success or error:
        notify: dict[str, Any] = {}
        if success:
            notify["SuccessTopic"] = success
        if error:
            notify["ErrorTopic"] = error
        if spec.async_inference.include_inference_response_in:
            notify["IncludeInferenceResponseIn"] = list(spec.async_inference.include_inference_response_in)
        output["NotificationConfig"] = notify
    return {
        "OutputConfig": output,
        "ClientConfig": {
            "MaxConcurrentInvocationsPerInstance": spec.async_inference.max_concurrent_invocations_per_instance
        },
    }


def _describe_endpoint(sm: Any, name: str) -> dict[str, Any] | None:
    try:
        return sm.describe_endpoint(EndpointName=name)
    except ClientError as exc:
        if _missing(exc):
            return None
        raise


def wait_for_endpoint(sm: Any, name: str, *, timeout: float, poll_s: float, progress: bool,
                      expect_config: str | None = None, gone: bool = False) -> dict[str, Any] | None:
    """Poll until the endpoint is InService (or deleted, with ``gone``), showing its status.

    Raises :class:`DeployError` with SageMaker's ``FailureReason`` when it fails or an update
    rolls back, and when ``timeout`` seconds pass.
    """
    from tqdm.auto import tqdm

    start = time.monotonic()
    bar = tqdm(total=None, desc=f"endpoint {name}", disable=not progress,
               bar_format="{desc} [{elapsed}]", file=sys.stderr)
    try:
        while True:
            desc = _describe_endpoint(sm, name)
            if desc is None:
                if gone:
                    return None
                raise DeployError(f"endpoint {name} disappeared while waiting for it")
            status = desc["EndpointStatus"]
            bar.set_description_str(f"endpoint {name}: {status}")
            reason = desc.get("FailureReason")
            if status == "InService" and not gone:
                if expect_config and desc.get("EndpointConfigName") != expect_config:
                    raise DeployError(
                        f"update of endpoint {name} to {expect_config} was rolled back: "
                        f"{reason or 'no FailureReason given'}; still serving {desc.get('EndpointConfigName')}"
                    )
                return desc
            if status in ("Failed", "OutOfService"):
                raise DeployError(
                    f"endpoint {name} is {status}: {reason or 'no FailureReason given'} "
                    f"(container logs: CloudWatch /aws/sagemaker/Endpoints/{name})"
                )
            if time.monotonic() - start > timeout:
                raise DeployError(
                    f"endpoint {name} still {status} after {timeout:.0f}s; SageMaker keeps working on it: "
                    "re-run deploy to resume waiting, or teardown to stop"
                )
            time.sleep(poll_s)
    finally:
        bar.close()


# -- autoscaling -----------------------------------------------------------------------------------
def _configure_autoscaling(aas: Any, cw: Any, spec: DeploymentSpec, endpoint: str,
                           names: dict[str, str], report: Callable[[str], None]) -> tuple[str, list[str], str | None]:
    scaling = spec.autoscaling
    resource_id = f"endpoint/{endpoint}/variant/{spec.variant_name}"
    common = {"ServiceNamespace": "sagemaker", "ResourceId": resource_id, "ScalableDimension": SCALABLE_DIMENSION}
    aas.register_scalable_target(**common, MinCapacity=scaling.min_capacity, MaxCapacity=scaling.max_capacity)
    aas.put_scaling_policy(
        PolicyName=names["target_policy"], PolicyType="TargetTrackingScaling", **common,
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": float(scaling.target_backlog_per_instance),
            "CustomizedMetricSpecification": {
                "MetricName": "ApproximateBacklogSizePerInstance",
                "Namespace": "AWS/SageMaker",
                "Dimensions": [{"Name": "EndpointName", "Value": endpoint}],
                "Statistic": "Average",
            },
            "ScaleInCooldown": scaling.scale_in_cooldown_s,
            "ScaleOutCooldown": scaling.scale_out_cooldown_s,
        },
    )
    policies = [names["target_policy"]]
    alarm = None
    if scaling.min_capacity == 0:
        # Target tracking alone never leaves zero: with no instance there is no per-instance
        # backlog. This alarm fires when requests wait with no capacity and adds one instance.
        step = aas.put_scaling_policy(
            PolicyName=names["wake_policy"], PolicyType="StepScaling", **common,
            StepScalingPolicyConfiguration={
                "AdjustmentType": "ChangeInCapacity",
                "MetricAggregationType": "Average",
                "Cooldown": scaling.wake_cooldown_s,
                "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}],
            },
        )
        alarm = names["alarm"]
        cw.put_metric_alarm(
            AlarmName=alarm,
            AlarmDescription=f"roomkit {spec.name}: requests waiting while {endpoint} has no instance",
            MetricName="HasBacklogWithoutCapacity", Namespace="AWS/SageMaker",
            Dimensions=[{"Name": "EndpointName", "Value": endpoint}],
            Statistic="Average", Period=60, EvaluationPeriods=2, DatapointsToAlarm=2,
            Threshold=1.0, ComparisonOperator="GreaterThanOrEqualToThreshold",
            TreatMissingData="missing", AlarmActions=[step["PolicyARN"]],
        )
        policies.append(names["wake_policy"])
    else:
        _remove_wake(aas, cw, resource_id, names)
    report(
        f"autoscaling {resource_id}: {scaling.min_capacity}-{scaling.max_capacity} instances, "
        f"backlog target {scaling.target_backlog_per_instance}/instance"
        + (", wakes from zero on HasBacklogWithoutCapacity" if alarm else "")
    )
    return resource_id, policies, alarm


def _remove_wake(aas: Any, cw: Any, resource_id: str, names: dict[str, str]) -> list[str]:
    removed = []
    alarms = cw.describe_alarms(AlarmNames=[names["alarm"]]).get("MetricAlarms", [])
    if alarms:
        cw.delete_alarms(AlarmNames=[names["alarm"]])
        removed.append(f"alarm {names['alarm']}")
    if _ignore_missing(aas.delete_scaling_policy, PolicyName=names["wake_policy"], ServiceNamespace="sagemaker",
                       ResourceId=resource_id, ScalableDimension=SCALABLE_DIMENSION):
        removed.append(f"scaling policy {names['wake_policy']}")
    return removed


def _remove_autoscaling(aas: Any, cw: Any, resource_id: str, names: dict[str, str]) -> list[str]:
    """Delete alarm, both policies and the scalable target (before the endpoint goes)."""
    removed = _remove_wake(aas, cw, resource_id, names)
    common = {"ServiceNamespace": "sagemaker", "ResourceId": resource_id, "ScalableDimension": SCALABLE_DIMENSION}
    if _ignore_missing(aas.delete_scaling_policy, PolicyName=names["target_policy"], **common):
        removed.append(f"scaling policy {names['target_policy']}")
    if _ignore_missing(aas.deregister_scalable_target, **common):
        removed.append(f"scalable target {resource_id}")
    return removed


# -- deploy ----------------------------------------------------------------------------------------
def _resolve_kms(session: AwsSession, key: str | None) -> str | None:
    if not key:
        return None
    if key.startswith("arn:") and ":key/" in key:
        return key
    try:
        return session.client("kms").describe_key(KeyId=key)["KeyMetadata"]["Arn"]
    except ClientError as exc:
        raise DeployError(f"async_inference.kms_key_id {key!r} cannot be resolved: {_code(exc)}") from None


def _default_image(session: AwsSession, account: str) -> str:
    if session.mode != "local":
        raise ConfigError("image_uri is required in aws mode (the ECR image of the serving container)")
    return f"{account}.dkr.ecr.{session.region}.amazonaws.com/{LOCAL_IMAGE_REPOSITORY}:{LOCAL_IMAGE_TAG}"


def deploy(
    spec: DeploymentSpec,
    session: AwsSession,
    *,
    progress: bool = True,
    timeout: float = 1800.0,
    poll_s: float | None = None,
    force_update: bool = False,
    manifest: str | Path | None = None,
) -> Deployment:
    """Create or reuse everything ``spec`` describes and wait for the endpoint to be InService.

    Idempotent: unchanged spec, image digest and artifact leave the endpoint alone (pass
    ``force_update=True`` to roll it to a fresh endpoint config anyway); any change creates a new
    model (if needed) and endpoint config and updates the endpoint. ``timeout`` bounds the wait
    for InService; ``manifest`` saves the returned :class:`Deployment` there.
    """
    if not isinstance(spec, DeploymentSpec):
        raise ConfigError(f"deploy() needs a DeploymentSpec, got {type(spec).__name__}")
    report = _Reporter(progress)
    poll_s = poll_s if poll_s is not None else (15.0 if session.mode == "aws" else 0.2)
    region = session.region
    account = session.account_id()
    partition = iam.partition_for(region)
    names = resource_names(spec.name, account, region)
    tags = dict(spec.tags)
    s3, sm, iam_client = session.client("s3"), session.client("sagemaker"), session.client("iam")
    owned: list[str] = []

    # 1. preflight what exists before roomkit touches anything
    image_uri = spec.image_uri or _default_image(session, account)
    image = preflight_image(session.client("ecr"), image_uri, region)
    report(f"image {image_uri}: {image.get('imageManifestMediaType')} {image.get('imageDigest', '')[:19]}")
    if spec.role_arn:
        preflight_role(iam_client, spec.role_arn, report)
    kms_key_arn = _resolve_kms(session, spec.async_inference.kms_key_id)

    # 2. bucket(s)
    bucket = spec.bucket or names["bucket"]
    is_async = spec.kind == "async"
    output_path = spec.async_inference.output_path or f"s3://{bucket}/async-outputs/"
    failure_path = spec.async_inference.failure_path or f"s3://{bucket}/async-failures/"
    buckets = [bucket] + ([parse_s3_uri(output_path)[0], parse_s3_uri(failure_path)[0]] if is_async else [])
    for b in dict.fromkeys(buckets):
        if ensure_bucket(s3, b, region=region, name=spec.name, tags=tags, kms_key_arn=kms_key_arn, report=report,
                         tls_only=not (session.endpoint_url("s3") or "https:").startswith("http:")):
            owned.append(f"bucket:{b}")

    # 3. model artifact
    if spec.model_config is not None:
        model_data_url = _upload_artifact(s3, spec, bucket, report)
    else:
        model_data_url = spec.model_data_url  # type: ignore[assignment]
    preflight_artifact(s3, model_data_url)

    # 4. notifications (async): two topics, one queue subscribed to both
    success_arn = error_arn = queue_url = queue_arn = None
    if is_async:
        sns, sqs = session.client("sns"), session.client("sqs")
        topic_arns = []
        for key, given in (("success_topic", spec.async_inference.success_topic_arn),
                           ("error_topic", spec.async_inference.error_topic_arn)):
            if given:
                if _topic_owned(sns, given, spec.name) is None:
                    raise DeployError(f"async_inference.{key}_arn {given} does not exist")
                arn = given
            else:
                arn, mine = ensure_topic(sns, names[key], f"arn:{partition}:sns:{region}:{account}:{names[key]}",
                                         name=spec.name, tags=tags, report=report)
                if mine:
                    owned.append(f"topic:{arn}")
            topic_arns.append(arn)
        success_arn, error_arn = topic_arns
        queue_url, queue_arn, mine = ensure_queue(
            sqs, names["queue"], policy=lambda qa: _topics_queue_policy(qa, topic_arns),
            name=spec.name, tags=tags, report=report,
        )
        if mine:
            owned.append(f"queue:{queue_url}")
        for arn in dict.fromkeys(topic_arns):
            _subscribe(sns, arn, queue_arn)

    # 5. execution role
    role_name = None
    if spec.role_arn:
        role_arn = spec.role_arn
    else:
        repo = parse_ecr_uri(image_uri)
        art_bucket, art_key = parse_s3_uri(model_data_url)
        out_b, out_p = parse_s3_uri(output_path)
        fail_b, fail_p = parse_s3_uri(failure_path)
        policy = iam.execution_role_policy(
            region=region, account=account, endpoint_name=names["endpoint"],
            model_artifact=iam.S3Location(art_bucket, art_key, exact=True),
            inputs=[iam.S3Location(bucket, spec.async_inference.input_prefix)],
            outputs=[iam.S3Location(out_b, out_p), iam.S3Location(fail_b, fail_p)] if is_async else [],
            topic_arns=[a for a in (success_arn, error_arn) if a],
            ecr_repository_arn=f"arn:{partition}:ecr:{repo['region']}:{repo['account']}:repository/{repo['repo']}",
            kms_key_arn=kms_key_arn,
        )
        if not is_async:  # no outputs to write: drop the empty statement
            policy["Statement"] = [s for s in policy["Statement"] if s.get("Resource") != []]
        role_name = names["role"]
        role_arn, created = ensure_role(iam_client, role_name, service="sagemaker.amazonaws.com",
                                        policy_name=ROLE_POLICY_NAME, policy=policy, name=spec.name,
                                        tags=tags, report=report)
        owned.append(f"role:{role_name}")
    preflight_role(iam_client, role_arn, report)

    # 6. model (content-named: same image digest + artifact + env + role = same model)
    container = {"Image": image_uri, "ModelDataUrl": model_data_url, "Environment": dict(spec.environment)}
    model_name = names["model_prefix"] + _hash({**container, "digest": image.get("imageDigest"), "role": role_arn})
    try:
        sm.describe_model(ModelName=model_name)
        report(f"reused model {model_name}")
    except ClientError as exc:
        if not _missing(exc):
            raise
        _retry_role_propagation(
            lambda: sm.create_model(ModelName=model_name, ExecutionRoleArn=role_arn, PrimaryContainer=container,
                                    Tags=_tags_list({**tags, OWNER_TAG: spec.name})),
            mode=session.mode, what=f"CreateModel {model_name}",
        )
        report(f"created model {model_name}")

    # 7. endpoint config + endpoint
    config_body: dict[str, Any] = {"ProductionVariants": [_variant(spec, model_name)]}
    if is_async:
        config_body["AsyncInferenceConfig"] = _async_config(spec, output_path, failure_path,
                                                            (success_arn, error_arn), kms_key_arn)
    if kms_key_arn and spec.kind != "serverless":
        config_body["KmsKeyId"] = kms_key_arn
    config_hash = _hash(config_body, 10)
    endpoint = names["endpoint"]
    current = _describe_endpoint(sm, endpoint)
    if current and current["EndpointStatus"] in ("Creating", "Updating", "SystemUpdating", "RollingBack"):
        report(f"endpoint {endpoint} is {current['EndpointStatus']}: waiting before changing it")
        current = wait_for_endpoint(sm, endpoint, timeout=timeout, poll_s=poll_s, progress=progress)
    if current and current["EndpointStatus"] == "Deleting":
        wait_for_endpoint(sm, endpoint, timeout=timeout, poll_s=poll_s, progress=progress, gone=True)
        current = None
    if current and current["EndpointStatus"] in ("Failed", "OutOfService"):
        report(f"endpoint {endpoint} is {current['EndpointStatus']} ({current.get('FailureReason')}): recreating it")
        sm.delete_endpoint(EndpointName=endpoint)
        wait_for_endpoint(sm, endpoint, timeout=timeout, poll_s=poll_s, progress=progress, gone=True)
        current = None

    current_config = current.get("EndpointConfigName", "") if current else ""
    if current and not current_config.startswith(names["config_prefix"]):
        tags = sm.list_tags(ResourceArn=current["EndpointArn"]).get("Tags", [])
        if not any(t["Key"] == OWNER_TAG and t["Value"] == spec.name for t in tags):
            raise DeployError(
                f"endpoint {endpoint} exists and was not created by roomkit for {spec.name!r} "
                f"(config {current_config}); pick another name"
            )
    unchanged = bool(current) and current_config.startswith(names["config_prefix"] + config_hash + "-") and not force_update
    resource_id = f"endpoint/{endpoint}/variant/{spec.variant_name}"
    aas, cw = session.client("application-autoscaling"), session.client("cloudwatch")
    if unchanged:
        config_name = current_config
        report(f"unchanged endpoint {endpoint} (config {config_name})")
        desc = current
    else:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")
        config_name = f"{names['config_prefix']}{config_hash}-{stamp}"
        if current_config == config_name:  # two deploys within one second
            time.sleep(1.0)
            config_name = f"{names['config_prefix']}{config_hash}-{datetime.now(timezone.utc):%Y%m%d%H%M%S}"
        sm.create_endpoint_config(EndpointConfigName=config_name, **config_body,
                                  Tags=_tags_list({**tags, OWNER_TAG: spec.name, "roomkit:config-hash": config_hash}))
        report(f"created endpoint config {config_name}")
        if current is None:
            sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config_name,
                               Tags=_tags_list({**tags, OWNER_TAG: spec.name}))
            report(f"creating endpoint {endpoint}")
        else:
            # A registered scalable target blocks variant changes: remove it, re-add after.
            for line in _remove_autoscaling(aas, cw, resource_id, names):
                report(f"removed {line} for the update")
            sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=config_name)
            report(f"updating endpoint {endpoint}: {current_config} -> {config_name}")
        try:
            desc = wait_for_endpoint(sm, endpoint, timeout=timeout, poll_s=poll_s, progress=progress,
                                     expect_config=config_name)
        except DeployError:
            if current is not None and is_async and spec.autoscaling.enabled:
                # The update rolled back (or is still running): the old config keeps serving, so
                # give it its scaling back rather than leave it stuck at its current size.
                try:
                    _configure_autoscaling(aas, cw, spec, endpoint, names, report)
                except ClientError as exc:
                    report(f"warning: could not restore autoscaling: {_code(exc)}")
            raise
        report(f"endpoint {endpoint} InService")

    # 8. autoscaling (async endpoints only; realtime/serverless scale by other means)
    scaling_resource = alarm = None
    policies: list[str] = []
    if is_async and spec.autoscaling.enabled:
        scaling_resource, policies, alarm = _configure_autoscaling(aas, cw, spec, endpoint, names, report)
    else:
        for line in _remove_autoscaling(aas, cw, resource_id, names):
            report(f"removed {line}")

    previous = None
    if manifest is not None and Path(manifest).exists():
        try:
            previous = Deployment.load(manifest)
        except ConfigError:
            previous = None
    deployment = Deployment(
        name=spec.name, mode=session.mode, region=region, account_id=account, kind=spec.kind,
        endpoint_name=endpoint, endpoint_arn=desc["EndpointArn"], endpoint_config_name=config_name,
        model_name=model_name, variant_name=spec.variant_name, image_uri=image_uri,
        model_data_url=model_data_url, role_arn=role_arn, role_name=role_name,
        role_policy_name=ROLE_POLICY_NAME if role_name else None,
        bucket=bucket, input_prefix=spec.async_inference.input_prefix,
        output_path=output_path if is_async else None, failure_path=failure_path if is_async else None,
        success_topic_arn=success_arn, error_topic_arn=error_arn,
        notification_queue_url=queue_url, notification_queue_arn=queue_arn, raw_notifications=False,
        scaling_resource_id=scaling_resource, scaling_policy_names=policies, alarm_name=alarm,
        owned=owned, trigger=previous.trigger if previous and previous.name == spec.name else None,
        spec=spec.to_dict(),
        created_at=(previous.created_at if previous and previous.name == spec.name else None) or _now(),
        updated_at=_now(),
    )
    deployment.changes = report.lines
    if manifest is not None:
        deployment.save(manifest)
    return deployment


# -- teardown --------------------------------------------------------------------------------------
def _list_prefixed(sm: Any, method: str, key: str, name_key: str, prefix: str, suffix_re: str) -> list[str]:
    """Names ``deploy`` gave (prefix + hash/timestamp), not those of a deployment whose name
    merely starts the same way."""
    pattern = re.compile(re.escape(prefix) + suffix_re + "$")
    out = []
    for page in sm.get_paginator(method).paginate(NameContains=prefix):
        out += [item[name_key] for item in page[key] if pattern.match(item[name_key])]
    return out


def _empty_bucket(s3: Any, bucket: str) -> int:
    count = 0
    batches: list[list[dict]] = []
    try:
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
            items = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                     for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
            batches.append(items)
    except ClientError as exc:
        if _code(exc) not in ("NotImplemented", "MethodNotAllowed"):
            raise
        batches = []
    if not any(batches):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            batches.append([{"Key": o["Key"]} for o in page.get("Contents", [])])
    for items in batches:
        for i in range(0, len(items), 1000):
            chunk = items[i:i + 1000]
            if chunk:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": chunk, "Quiet": True})
                count += len(chunk)
    return count


def teardown(deployment: Deployment, session: AwsSession, *, everything: bool = False,
             progress: bool = True) -> list[str]:
    """Remove the endpoint and what serves it; with ``everything`` also the trigger, queue,
    topics, role and buckets that roomkit created (resources the spec only pointed at stay).

    Safe to re-run: what is already gone is skipped. Returns one line per removed resource.
    """
    report = _Reporter(progress)
    names = resource_names(deployment.name, deployment.account_id, deployment.region)
    sm = session.client("sagemaker")
    aas, cw = session.client("application-autoscaling"), session.client("cloudwatch")

    if everything and deployment.trigger is not None:
        from roomkit.aws.trigger_deploy import remove_trigger as _remove_trigger

        for line in _remove_trigger(deployment, session, progress=False):
            report(line)

    resource_id = deployment.scaling_resource_id or f"endpoint/{deployment.endpoint_name}/variant/{deployment.variant_name}"
    for line in _remove_autoscaling(aas, cw, resource_id, names):
        report(f"removed {line}")

    desc = _describe_endpoint(sm, deployment.endpoint_name)
    if desc is not None and desc["EndpointStatus"] != "Deleting":
        if _ignore_missing(sm.delete_endpoint, EndpointName=deployment.endpoint_name):
            report(f"removed endpoint {deployment.endpoint_name}")
    configs = set(_list_prefixed(sm, "list_endpoint_configs", "EndpointConfigs", "EndpointConfigName",
                                 names["config_prefix"], r"[0-9a-f]{10}-\d{14}"))
    configs.add(deployment.endpoint_config_name)
    for config in sorted(configs):
        if _ignore_missing(sm.delete_endpoint_config, EndpointConfigName=config):
            report(f"removed endpoint config {config}")
    models = set(_list_prefixed(sm, "list_models", "Models", "ModelName", names["model_prefix"], r"[0-9a-f]{12}"))
    models.add(deployment.model_name)
    for model in sorted(models):
        if _ignore_missing(sm.delete_model, ModelName=model):
            report(f"removed model {model}")

    if everything:
        owned = list(deployment.owned)
        sqs, sns = session.client("sqs"), session.client("sns")
        for item in owned:
            kind, _, ident = item.partition(":")
            if kind == "queue":
                # Unsubscribe it from the topics first (they may be someone else's).
                queue_arn = deployment.notification_queue_arn
                for topic in {deployment.success_topic_arn, deployment.error_topic_arn} - {None}:
                    try:
                        for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic):
                            for sub in page.get("Subscriptions", []):
                                if sub.get("Endpoint") == queue_arn and sub["SubscriptionArn"].startswith("arn:"):
                                    sns.unsubscribe(SubscriptionArn=sub["SubscriptionArn"])
                    except ClientError as exc:
                        if not _missing(exc):
                            raise
                if _ignore_missing(sqs.delete_queue, QueueUrl=ident):
                    report(f"removed queue {ident}")
        for item in owned:
            kind, _, ident = item.partition(":")
            if kind == "topic":
                if _topic_owned(sns, ident, deployment.name) is not None:
                    sns.delete_topic(TopicArn=ident)
                    report(f"removed topic {ident}")
            elif kind == "role":
                if delete_role(session.client("iam"), ident):
                    report(f"removed role {ident}")
        s3 = session.client("s3")
        for item in owned:
            kind, _, ident = item.partition(":")
            if kind == "bucket":
                try:
                    n = _empty_bucket(s3, ident)
                except ClientError as exc:
                    if _missing(exc):
                        continue
                    raise
                if _ignore_missing(s3.delete_bucket, Bucket=ident):
                    report(f"removed bucket {ident} ({n} objects)")
    if not report.lines and progress:
        print(f"nothing to remove for {deployment.name}", file=sys.stderr)
    return report.lines


def deploy_trigger(deployment: Deployment, session: AwsSession, **kwargs: Any) -> TriggerDeployment:
    """See :func:`roomkit.aws.trigger_deploy.deploy_trigger`."""
    from roomkit.aws.trigger_deploy import deploy_trigger as _deploy_trigger

    return _deploy_trigger(deployment, session, **kwargs)


def remove_trigger(deployment: Deployment, session: AwsSession, **kwargs: Any) -> list[str]:
    """See :func:`roomkit.aws.trigger_deploy.remove_trigger`."""
    from roomkit.aws.trigger_deploy import remove_trigger as _remove_trigger

    return _remove_trigger(deployment, session, **kwargs)
