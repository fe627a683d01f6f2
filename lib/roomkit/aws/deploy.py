"""Stand up, update and tear down an endpoint from a :class:`~roomkit.aws.spec.DeploymentSpec`.

``deploy(spec, session)`` is create-or-reuse for every resource, so running it twice is safe:
the second run changes nothing when the spec, image digest and artifact are unchanged, and
rolls the endpoint to a new endpoint config (``UpdateEndpoint``) when they differ. The same code
runs against AWS and against the local mode's loopback services; only ``session`` differs.

``deploy`` is a sequence of steps, one function each, in the order they run (names derive from
``spec.name``, the account id and the region — nothing is hard-coded):

1. :func:`_preflight`: the ECR image exists with a Docker v2 manifest (SageMaker refuses OCI), a
   given execution role is assumable by SageMaker, a given KMS key resolves;
2. :func:`_storage`: S3 bucket ``<name>-<account>-<region>`` (public access blocked, default
   encryption, TLS only) and the model artifact in it;
3. :func:`_notifications` (async only): SNS topics ``<name>-success``/``<name>-error`` and SQS
   queue ``<name>-notifications`` subscribed to both (queue policy scoped to the two topics);
4. :func:`_execution_role`: IAM role ``<name>-sagemaker-exec`` with one least-privilege inline
   policy (:mod:`roomkit.aws.iam`);
5. :func:`_model`: model ``<name>-model-<hash>``;
6. :func:`_endpoint`: endpoint config ``<name>-cfg-<hash>-<timestamp>``, endpoint created or
   updated, and the wait for InService;
7. :func:`_scaling` (async only): Application Auto Scaling on the backlog, down to zero, plus
   the ``HasBacklogWithoutCapacity`` alarm and step policy that wake it from zero;
8. :func:`_record`: the :class:`~roomkit.aws.deployment.Deployment` that lists it all.

``teardown`` undoes them in reverse, also one function a step. The create/find/delete of the
resources a deployment owns (buckets, topics, queues, roles) lives in
:mod:`roomkit.aws.resources`, shared with the upload trigger's deployment
(:mod:`roomkit.aws.trigger_deploy`).
"""
from __future__ import annotations

import hashlib
import json
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from botocore.exceptions import ClientError

from roomkit.aws import iam
from roomkit.aws import AwsSession
from roomkit.aws.spec import (
    SERVERLESS_MAX_PAYLOAD_BYTES, SERVERLESS_SERVER_TIMEOUT_S, DeploymentSpec, load_model_config, parse_ecr_uri,
    parse_s3_uri,
)
from roomkit.aws.deployment import Deployment, TriggerDeployment
from roomkit.aws.resources import (
    OWNER_TAG, DeployError, Reporter, delete_log_groups, delete_role, ensure_bucket, ensure_queue, ensure_role,
    ensure_topic, error_code, ignore_missing, is_missing, resolve_kms_key, resource_names,
    retry_role_propagation, tags_list, topic_owned,
)
from roomkit.aws.trigger_deploy import deploy_trigger, remove_trigger
from roomkit.errors import ConfigError

__all__ = [
    "Deployment", "DeploymentSpec", "TriggerDeployment", "deploy", "teardown", "preflight_image",
    "deploy_trigger", "remove_trigger", "container_environment", "start_endpoint_rollout",
    "upload_model_artifact",
]

DOCKER_V2_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
# Endpoint states deploy waits out before changing anything.
IN_PROGRESS_STATES = ("Creating", "Updating", "SystemUpdating", "RollingBack")
# Both the rolling update and its automatic rollback failed: the endpoint serves a mix of the
# old and new configs until another UpdateEndpoint succeeds (waiting never ends it).
ROLLBACK_FAILED = "UpdateRollbackFailed"
# CreateEndpoint/UpdateEndpoint read the endpoint config from an eventually consistent store:
# right after CreateEndpointConfig they may not find it (CreateEndpoint's API reference).
CONFIG_VISIBILITY_PATIENCE_S = 60.0
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


# -- small helpers ---------------------------------------------------------------------------------
def _hash(obj: Any, n: int = 12) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:n]


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


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
        if is_missing(exc):
            raise DeployError(
                f"image {image_uri} not found in ECR ({error_code(exc)}): build and push it first "
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
        if is_missing(exc) or error_code(exc) in ("403", "AccessDenied"):
            raise DeployError(
                f"model artifact {model_data_url} cannot be read ({error_code(exc)}): upload it, or give "
                "model_config to have roomkit package and upload one"
            ) from None
        raise


def preflight_role(iam_client: Any, role_arn: str, report: Callable[[str], None]) -> None:
    """The execution role must trust sagemaker.amazonaws.com, or CreateModel fails later."""
    role_name = role_arn.rsplit("/", 1)[-1]
    try:
        doc = iam_client.get_role(RoleName=role_name)["Role"]["AssumeRolePolicyDocument"]
    except ClientError as exc:
        if is_missing(exc):
            raise DeployError(f"execution role {role_arn} does not exist") from None
        if error_code(exc) == "AccessDenied":
            report(f"warning: cannot read role {role_arn} (iam:GetRole denied); trust policy not checked")
            return
        raise
    if not iam.allows_service(doc, "sagemaker.amazonaws.com"):
        raise DeployError(
            f"execution role {role_arn} cannot be assumed by SageMaker: its trust policy must allow "
            "sts:AssumeRole for the service principal sagemaker.amazonaws.com"
        )


# -- storage, notifications -----------------------------------------------------------------------
def _package_artifact(spec: DeploymentSpec, model_dir: str | Path | None) -> bytes:
    """``model.tar.gz`` of ``spec.model_config`` (and the learned model), as bytes."""
    from roomkit.serving.artifacts import package_model  # no boto3/cv2; only when packaging

    config = load_model_config(spec.model_config)  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory(prefix="roomkit-artifact-") as tmp:
        return Path(package_model(config, Path(tmp) / "model.tar.gz", model_dir=model_dir)).read_bytes()


def _upload_artifact(s3: Any, spec: DeploymentSpec, bucket: str, report: Callable[[str], None],
                     model_dir: str | Path | None = None) -> str:
    """Package ``spec.model_config`` (and a learned model) into model.tar.gz and upload it
    content-addressed."""
    return _put_artifact(s3, spec, bucket, _package_artifact(spec, model_dir), report)


def _put_artifact(s3: Any, spec: DeploymentSpec, bucket: str, data: bytes, report: Callable[[str], None]) -> str:
    """Upload ``model.tar.gz`` bytes under ``models/<name>/<sha256[:16]>/`` unless already there."""
    digest = hashlib.sha256(data).hexdigest()
    key = f"models/{spec.name}/{digest[:16]}/model.tar.gz"
    url = f"s3://{bucket}/{key}"
    try:
        s3.head_object(Bucket=bucket, Key=key)
        report(f"reused model artifact {url}")
    except ClientError as exc:
        if not is_missing(exc):
            raise
        s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType="application/gzip",
                      Metadata={"sha256": digest})
        report(f"uploaded model artifact {url} ({len(data)} bytes)")
    return url


def upload_model_artifact(artifact: str | Path, spec: DeploymentSpec, session: AwsSession, *,
                          progress: bool = True) -> str:
    """Upload a ``model.tar.gz`` packaged here (e.g. with learned weights) for ``spec``; returns
    the ``s3://`` URL to deploy it with (``model_data_url``).

    The archive goes where :func:`deploy` puts the ones it packages: the deployment's bucket
    (created as deploy creates it, so :func:`teardown` with ``everything`` removes it),
    content-addressed, so uploading the same archive again is a no-op.
    """
    from roomkit.serving.artifacts import read_model  # no boto3/cv2; checks config.json is inside

    artifact = Path(artifact)
    read_model(artifact)
    report = Reporter(progress)
    place = _place(spec, session)
    s3 = session.client("s3")
    bucket = spec.bucket or place.names["bucket"]
    tls_only = not (session.endpoint_url("s3") or "https:").startswith("http:")
    ensure_bucket(s3, bucket, region=place.region, name=spec.name, tags=place.tags,
                  kms_key_arn=resolve_kms_key(session, spec.async_inference.kms_key_id), report=report,
                  tls_only=tls_only)
    return _put_artifact(s3, spec, bucket, artifact.read_bytes(), report)


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
    """Subscribe the queue with raw message delivery: the queue gets SageMaker's notification
    itself, not wrapped in SNS's signed envelope (smaller, with nothing to unwrap or sign).
    ``wait`` reads both forms, so a subscription made before stays as it is."""
    for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn):
        if any(s.get("Endpoint") == queue_arn for s in page.get("Subscriptions", [])):
            return
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn, ReturnSubscriptionArn=True,
                  Attributes={"RawMessageDelivery": "true"})


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
        if is_missing(exc):
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
            if status == ROLLBACK_FAILED and not gone:
                raise DeployError(
                    f"endpoint {name} is {ROLLBACK_FAILED}: the update and its automatic rollback both failed "
                    f"({reason or 'no FailureReason given'}); it serves a mix of configs until another update "
                    "succeeds: fix the cause and re-run deploy (it updates the endpoint again), or teardown"
                )
            if time.monotonic() - start > timeout:
                raise DeployError(
                    f"endpoint {name} still {status} after {timeout:.0f}s; SageMaker keeps working on it: "
                    "re-run deploy to resume waiting, or teardown to stop"
                )
            time.sleep(poll_s)
    finally:
        bar.close()


def start_endpoint_rollout(sm: Any, endpoint: str, config_name: str, *, update: bool, tags: list[dict[str, str]],
                           patience_s: float, sleep: Callable[[float], None] | None = None) -> None:
    """CreateEndpoint (or UpdateEndpoint with ``update``) on a just-created endpoint config.

    SageMaker looks the config up in an eventually consistent store, so right after
    CreateEndpointConfig it can answer "Could not find endpoint configuration": that answer is
    retried for ``patience_s`` seconds (with backoff) before it is reported.
    """
    sleep = sleep or time.sleep
    deadline = time.monotonic() + patience_s
    delay = 1.0
    while True:
        try:
            if update:
                sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=config_name)
            else:
                sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config_name, Tags=tags)
            return
        except ClientError as exc:
            message = str(exc.response.get("Error", {}).get("Message", ""))
            missing_config = error_code(exc) == "ValidationException" and "endpoint config" in message.lower() and (
                "could not find" in message.lower() or "does not exist" in message.lower())
            if not missing_config or time.monotonic() + delay > deadline:
                raise
            sleep(delay)
            delay = min(delay * 2, 10.0)


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
    if ignore_missing(aas.delete_scaling_policy, PolicyName=names["wake_policy"], ServiceNamespace="sagemaker",
                       ResourceId=resource_id, ScalableDimension=SCALABLE_DIMENSION):
        removed.append(f"scaling policy {names['wake_policy']}")
    return removed


def _remove_autoscaling(aas: Any, cw: Any, resource_id: str, names: dict[str, str]) -> list[str]:
    """Delete alarm, both policies and the scalable target (before the endpoint goes)."""
    removed = _remove_wake(aas, cw, resource_id, names)
    common = {"ServiceNamespace": "sagemaker", "ResourceId": resource_id, "ScalableDimension": SCALABLE_DIMENSION}
    if ignore_missing(aas.delete_scaling_policy, PolicyName=names["target_policy"], **common):
        removed.append(f"scaling policy {names['target_policy']}")
    if ignore_missing(aas.deregister_scalable_target, **common):
        removed.append(f"scalable target {resource_id}")
    return removed


# -- the model container ---------------------------------------------------------------------------
def container_environment(spec: DeploymentSpec) -> dict[str, str]:
    """The model container's environment: the spec's, plus for ``serverless`` the server limits
    that match the platform's (a 60 s invocation, 4 MB payloads), so a slow or large request
    gets the server's JSON error before the platform cuts it off. The spec may set them lower
    (values above the platform's are refused by :class:`DeploymentSpec`)."""
    env = dict(spec.environment)
    if spec.kind == "serverless":
        env.setdefault("SAGEMAKER_MODEL_SERVER_TIMEOUT", str(SERVERLESS_SERVER_TIMEOUT_S))
        env.setdefault("SAGEMAKER_MAX_REQUEST_SIZE", str(SERVERLESS_MAX_PAYLOAD_BYTES))
    return env


def _default_image(session: AwsSession, account: str) -> str:
    if session.mode != "local":
        raise ConfigError("image_uri is required in aws mode (the ECR image of the serving container)")
    return f"{account}.dkr.ecr.{session.region}.amazonaws.com/{LOCAL_IMAGE_REPOSITORY}:{LOCAL_IMAGE_TAG}"


# -- deploy, step by step --------------------------------------------------------------------------
@dataclass(frozen=True)
class _Place:
    """Where the deployment lives and what its resources are called and tagged (every step reads it)."""

    mode: str
    region: str
    account: str
    partition: str
    names: dict[str, str]
    tags: dict[str, str]


@dataclass(frozen=True)
class _Wait:
    """How the endpoint step waits on SageMaker: at most ``timeout`` s, a look every ``poll_s``."""

    timeout: float
    poll_s: float
    progress: bool

    def for_endpoint(self, sm: Any, name: str, **kwargs: Any) -> dict[str, Any] | None:
        return wait_for_endpoint(sm, name, timeout=self.timeout, poll_s=self.poll_s, progress=self.progress,
                                 **kwargs)


@dataclass(frozen=True)
class _Preflight:
    """What preflight found: the image (its digest names the model) and the KMS key's ARN."""

    image_uri: str
    image_digest: str | None
    kms_key_arn: str | None


@dataclass(frozen=True)
class _Storage:
    """The deployment bucket, the async output/failure paths and the model artifact."""

    bucket: str
    output_path: str
    failure_path: str
    model_data_url: str
    owned: list[str]


@dataclass(frozen=True)
class _Notifications:
    """The topics SageMaker publishes results to and the queue subscribed to them (async only)."""

    success_topic_arn: str | None = None
    error_topic_arn: str | None = None
    queue_url: str | None = None
    queue_arn: str | None = None
    owned: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Role:
    """The execution role; ``name`` is set only when roomkit made (and owns) it."""

    arn: str
    name: str | None


@dataclass(frozen=True)
class _Endpoint:
    """The endpoint deploy left InService and the config it serves."""

    name: str
    arn: str
    config_name: str


@dataclass(frozen=True)
class _Scaling:
    """The scalable target and policies (and wake-from-zero alarm) deploy registered, if any."""

    resource_id: str | None = None
    policies: list[str] = field(default_factory=list)
    alarm: str | None = None


def deploy(
    spec: DeploymentSpec,
    session: AwsSession,
    *,
    progress: bool = True,
    timeout: float = 1800.0,
    poll_s: float | None = None,
    force_update: bool = False,
    manifest: str | Path | None = None,
    model_dir: str | Path | None = None,
) -> Deployment:
    """Create or reuse everything ``spec`` describes and wait for the endpoint to be InService.

    Idempotent: unchanged spec, image digest and artifact leave the endpoint alone (pass
    ``force_update=True`` to roll it to a fresh endpoint config anyway); any change creates a new
    model (if needed) and endpoint config and updates the endpoint. ``timeout`` bounds the wait
    for InService; ``manifest`` saves the returned :class:`Deployment` there. ``model_dir``: a
    learned model (``model.onnx`` + ``model.json``) packed beside the spec's ``model_config``
    (default: the shipped weights when its backend is learned or hybrid).
    """
    if not isinstance(spec, DeploymentSpec):
        raise ConfigError(f"deploy() needs a DeploymentSpec, got {type(spec).__name__}")
    if model_dir is not None and spec.model_config is None:
        raise ConfigError("a model directory is packed with the spec's model_config; this spec names "
                          "model_data_url (an artifact already built): package the model into it instead")
    if spec.model_config is not None:
        _package_artifact(spec, model_dir)  # a missing or corrupt model fails here, nothing created
    report = Reporter(progress)
    wait = _Wait(timeout, poll_s if poll_s is not None else (15.0 if session.mode == "aws" else 0.2), progress)
    place = _place(spec, session)

    checked = _preflight(spec, session, place, report)
    storage = _storage(spec, session, place, checked.kms_key_arn, report, model_dir)
    notifications = _notifications(spec, session, place, report)
    role = _execution_role(spec, session, place, checked, storage, notifications, report)
    model_name = _model(spec, session, place, checked, storage.model_data_url, role.arn, report)
    endpoint = _endpoint(spec, session, place, model_name, storage, notifications, checked.kms_key_arn,
                         wait=wait, force_update=force_update, report=report)
    scaling = _scaling(spec, session, place, endpoint.name, report)

    deployment = _record(spec, place, checked, storage, notifications, role, model_name, endpoint, scaling,
                         previous=_previous(manifest, spec.name))
    deployment.changes = report.lines
    if manifest is not None:
        deployment.save(manifest)
    return deployment


def _place(spec: DeploymentSpec, session: AwsSession) -> _Place:
    """Region, account (one STS call) and the names and tags every resource of ``spec`` gets."""
    region = session.region
    account = session.account_id()
    return _Place(mode=session.mode, region=region, account=account,
                  partition=iam.partition_for(region), names=resource_names(spec.name, account, region),
                  tags=dict(spec.tags))


def _preflight(spec: DeploymentSpec, session: AwsSession, place: _Place, report: Reporter) -> _Preflight:
    """Check what must already exist before roomkit touches anything, so a wrong spec fails with
    nothing created: the image (in ECR, in the endpoint's region, with a Docker v2 manifest), a
    given execution role (trusts SageMaker) and a given KMS key (resolves to an ARN)."""
    image_uri = spec.image_uri or _default_image(session, place.account)
    image = preflight_image(session.client("ecr"), image_uri, place.region)
    report(f"image {image_uri}: {image.get('imageManifestMediaType')} {image.get('imageDigest', '')[:19]}")
    if spec.role_arn:
        preflight_role(session.client("iam"), spec.role_arn, report)
    kms_key_arn = resolve_kms_key(session, spec.async_inference.kms_key_id)
    return _Preflight(image_uri=image_uri, image_digest=image.get("imageDigest"), kms_key_arn=kms_key_arn)


def _storage(spec: DeploymentSpec, session: AwsSession, place: _Place, kms_key_arn: str | None,
             report: Reporter, model_dir: str | Path | None = None) -> _Storage:
    """The bucket(s): the deployment's, plus those of the async output and failure paths when the
    spec points elsewhere, each private, encrypted and TLS-only (plain-HTTP loopback S3 excepted).
    Then the model artifact: packaged from ``spec.model_config`` and uploaded content-addressed,
    or the spec's ``model_data_url``; either way checked readable before a model points at it."""
    s3 = session.client("s3")
    bucket = spec.bucket or place.names["bucket"]
    output_path = spec.async_inference.output_path or f"s3://{bucket}/async-outputs/"
    failure_path = spec.async_inference.failure_path or f"s3://{bucket}/async-failures/"
    buckets = [bucket] + ([parse_s3_uri(output_path)[0], parse_s3_uri(failure_path)[0]]
                          if spec.kind == "async" else [])
    tls_only = not (session.endpoint_url("s3") or "https:").startswith("http:")
    owned = []
    for b in dict.fromkeys(buckets):
        if ensure_bucket(s3, b, region=place.region, name=spec.name, tags=place.tags, kms_key_arn=kms_key_arn,
                         report=report, tls_only=tls_only):
            owned.append(f"bucket:{b}")

    if spec.model_config is not None:
        model_data_url = _upload_artifact(s3, spec, bucket, report, model_dir)
    else:
        model_data_url = spec.model_data_url  # type: ignore[assignment]
    preflight_artifact(s3, model_data_url)
    return _Storage(bucket=bucket, output_path=output_path, failure_path=failure_path,
                    model_data_url=model_data_url, owned=owned)


def _notifications(spec: DeploymentSpec, session: AwsSession, place: _Place, report: Reporter) -> _Notifications:
    """Async only: the success and error topics SageMaker announces each result on (the spec's,
    or ``<name>-success``/``<name>-error``), and one queue subscribed to both, from which
    ``wait``/``submit`` collect results without polling S3."""
    if spec.kind != "async":
        return _Notifications()
    sns, sqs = session.client("sns"), session.client("sqs")
    owned: list[str] = []
    topic_arns = []
    for key, given in (("success_topic", spec.async_inference.success_topic_arn),
                       ("error_topic", spec.async_inference.error_topic_arn)):
        if given:
            if topic_owned(sns, given, spec.name) is None:
                raise DeployError(f"async_inference.{key}_arn {given} does not exist")
            arn = given
        else:
            topic = place.names[key]
            arn, mine = ensure_topic(sns, topic, f"arn:{place.partition}:sns:{place.region}:{place.account}:{topic}",
                                     name=spec.name, tags=place.tags, report=report)
            if mine:
                owned.append(f"topic:{arn}")
        topic_arns.append(arn)
    queue_url, queue_arn, mine = ensure_queue(
        sqs, place.names["queue"], policy=lambda qa: _topics_queue_policy(qa, topic_arns),
        name=spec.name, tags=place.tags, report=report,
    )
    if mine:
        owned.append(f"queue:{queue_url}")
    for arn in dict.fromkeys(topic_arns):
        _subscribe(sns, arn, queue_arn)
    success_arn, error_arn = topic_arns
    return _Notifications(success_topic_arn=success_arn, error_topic_arn=error_arn, queue_url=queue_url,
                          queue_arn=queue_arn, owned=owned)


def _execution_role(spec: DeploymentSpec, session: AwsSession, place: _Place, checked: _Preflight,
                    storage: _Storage, notifications: _Notifications, report: Reporter) -> _Role:
    """The role SageMaker runs the model as: the spec's ``role_arn``, or ``<name>-sagemaker-exec``
    with one least-privilege inline policy (pull this image, read this artifact and the input
    prefix, write the output and failure paths, publish to the topics, use the KMS key). Either
    way it must trust sagemaker.amazonaws.com, checked before CreateModel would fail on it."""
    iam_client = session.client("iam")
    if spec.role_arn:
        role = _Role(arn=spec.role_arn, name=None)
    else:
        is_async = spec.kind == "async"
        repo = parse_ecr_uri(checked.image_uri)
        art_bucket, art_key = parse_s3_uri(storage.model_data_url)
        out_b, out_p = parse_s3_uri(storage.output_path)
        fail_b, fail_p = parse_s3_uri(storage.failure_path)
        policy = iam.execution_role_policy(
            region=place.region, account=place.account, endpoint_name=place.names["endpoint"],
            model_artifact=iam.S3Location(art_bucket, art_key, exact=True),
            inputs=[iam.S3Location(storage.bucket, spec.async_inference.input_prefix)],
            outputs=[iam.S3Location(out_b, out_p), iam.S3Location(fail_b, fail_p)] if is_async else [],
            topic_arns=[a for a in (notifications.success_topic_arn, notifications.error_topic_arn) if a],
            ecr_repository_arn=f"arn:{place.partition}:ecr:{repo['region']}:{repo['account']}:repository/{repo['repo']}",
            kms_key_arn=checked.kms_key_arn,
        )
        if not is_async:  # no outputs to write: drop the empty statement
            policy["Statement"] = [s for s in policy["Statement"] if s.get("Resource") != []]
        arn, _ = ensure_role(iam_client, place.names["role"], service="sagemaker.amazonaws.com",
                             policy_name=ROLE_POLICY_NAME, policy=policy, name=spec.name, tags=place.tags,
                             report=report)
        role = _Role(arn=arn, name=place.names["role"])
    preflight_role(iam_client, role.arn, report)
    return role


def _model(spec: DeploymentSpec, session: AwsSession, place: _Place, checked: _Preflight, model_data_url: str,
           role_arn: str, report: Reporter) -> str:
    """The SageMaker model, named by its content (image digest, artifact, environment, role), so
    an unchanged deploy finds and reuses it and any change makes a new one. A role created moments
    ago can take seconds to be usable: CreateModel is retried while it propagates."""
    sm = session.client("sagemaker")
    container = {"Image": checked.image_uri, "ModelDataUrl": model_data_url,
                 "Environment": container_environment(spec)}
    model_name = place.names["model_prefix"] + _hash({**container, "digest": checked.image_digest, "role": role_arn})
    try:
        sm.describe_model(ModelName=model_name)
        report(f"reused model {model_name}")
    except ClientError as exc:
        if not is_missing(exc):
            raise
        retry_role_propagation(
            lambda: sm.create_model(ModelName=model_name, ExecutionRoleArn=role_arn, PrimaryContainer=container,
                                    Tags=tags_list({**place.tags, OWNER_TAG: spec.name})),
            mode=place.mode, what=f"CreateModel {model_name}",
        )
        report(f"created model {model_name}")
    return model_name


def _endpoint(spec: DeploymentSpec, session: AwsSession, place: _Place, model_name: str, storage: _Storage,
              notifications: _Notifications, kms_key_arn: str | None, *, wait: _Wait, force_update: bool,
              report: Reporter) -> _Endpoint:
    """The endpoint config and the endpoint on it. The config is named by a hash of its content
    plus a timestamp: an endpoint already on a config with this content is left alone (unless
    ``force_update``); otherwise a fresh config is made and the endpoint created or updated onto
    it. An endpoint of the same name that roomkit did not make for this spec is refused."""
    sm = session.client("sagemaker")
    body = _endpoint_config_body(spec, model_name, storage, notifications, kms_key_arn)
    config_hash = _hash(body, 10)
    name = place.names["endpoint"]
    current = _settled_endpoint(sm, name, wait, report)
    current_config = current.get("EndpointConfigName", "") if current else ""
    if current and not current_config.startswith(place.names["config_prefix"]):
        _check_endpoint_is_ours(sm, name, current["EndpointArn"], current_config, owner=spec.name)
    unchanged = (bool(current) and current_config.startswith(place.names["config_prefix"] + config_hash + "-")
                 and not force_update and current["EndpointStatus"] != ROLLBACK_FAILED)
    if unchanged:
        report(f"unchanged endpoint {name} (config {current_config})")
        return _Endpoint(name=name, arn=current["EndpointArn"], config_name=current_config)
    return _roll_out(spec, session, sm, place, name, current, body, config_hash, wait=wait, report=report)


def _endpoint_config_body(spec: DeploymentSpec, model_name: str, storage: _Storage,
                          notifications: _Notifications, kms_key_arn: str | None) -> dict[str, Any]:
    """CreateEndpointConfig's arguments but the name and tags: the variant, for async endpoints
    the output/failure paths and topics, and the KMS key (serverless endpoints take none)."""
    body: dict[str, Any] = {"ProductionVariants": [_variant(spec, model_name)]}
    if spec.kind == "async":
        body["AsyncInferenceConfig"] = _async_config(
            spec, storage.output_path, storage.failure_path,
            (notifications.success_topic_arn, notifications.error_topic_arn), kms_key_arn)
    if kms_key_arn and spec.kind != "serverless":
        body["KmsKeyId"] = kms_key_arn
    return body


def _settled_endpoint(sm: Any, name: str, wait: _Wait, report: Reporter) -> dict[str, Any] | None:
    """The endpoint as deploy may change it: waited out while an operation is in progress, and
    ``None`` when there is none (being deleted, or failed and now deleted to be recreated)."""
    current = _describe_endpoint(sm, name)
    if current and current["EndpointStatus"] in IN_PROGRESS_STATES:
        report(f"endpoint {name} is {current['EndpointStatus']}: waiting before changing it")
        current = wait.for_endpoint(sm, name)
    if current and current["EndpointStatus"] == "Deleting":
        wait.for_endpoint(sm, name, gone=True)
        current = None
    if current and current["EndpointStatus"] in ("Failed", "OutOfService"):
        report(f"endpoint {name} is {current['EndpointStatus']} ({current.get('FailureReason')}): recreating it")
        sm.delete_endpoint(EndpointName=name)
        wait.for_endpoint(sm, name, gone=True)
        current = None
    return current


def _check_endpoint_is_ours(sm: Any, name: str, arn: str, config: str, *, owner: str) -> None:
    """An endpoint on a config roomkit did not name must carry deployment ``owner``'s tag, or
    deploy would take over someone else's endpoint."""
    tags = sm.list_tags(ResourceArn=arn).get("Tags", [])
    if not any(t["Key"] == OWNER_TAG and t["Value"] == owner for t in tags):
        raise DeployError(
            f"endpoint {name} exists and was not created by roomkit for {owner!r} "
            f"(config {config}); pick another name"
        )


def _roll_out(spec: DeploymentSpec, session: AwsSession, sm: Any, place: _Place, name: str,
              current: dict[str, Any] | None, body: dict[str, Any], config_hash: str, *, wait: _Wait,
              report: Reporter) -> _Endpoint:
    """Make a fresh endpoint config and move the endpoint onto it (CreateEndpoint, or
    UpdateEndpoint when it exists), then wait for InService on that config. A registered scalable
    target blocks variant changes, so an update takes autoscaling off first; if the update fails
    the old config keeps serving, and gets its autoscaling back."""
    current_config = current.get("EndpointConfigName", "") if current else ""
    config_name = _new_config_name(place.names["config_prefix"], config_hash, current_config)
    sm.create_endpoint_config(EndpointConfigName=config_name, **body,
                              Tags=tags_list({**place.tags, OWNER_TAG: spec.name, "roomkit:config-hash": config_hash}))
    report(f"created endpoint config {config_name}")
    aas, cw = session.client("application-autoscaling"), session.client("cloudwatch")
    if current is not None:
        if current["EndpointStatus"] == ROLLBACK_FAILED:
            report(f"endpoint {name} is {ROLLBACK_FAILED} ({current.get('FailureReason')}): "
                   "a new update restores one config")
        for line in _remove_autoscaling(aas, cw, f"endpoint/{name}/variant/{spec.variant_name}", place.names):
            report(f"removed {line} for the update")
    start_endpoint_rollout(sm, name, config_name, update=current is not None,
                           tags=tags_list({**place.tags, OWNER_TAG: spec.name}),
                           patience_s=CONFIG_VISIBILITY_PATIENCE_S if place.mode == "aws" else 0.0)
    report(f"updating endpoint {name}: {current_config} -> {config_name}" if current is not None
           else f"creating endpoint {name}")
    try:
        desc = wait.for_endpoint(sm, name, expect_config=config_name)
    except DeployError:
        if current is not None and spec.kind == "async" and spec.autoscaling.enabled:
            # The update rolled back (or is still running): the old config keeps serving, so
            # give it its scaling back rather than leave it stuck at its current size.
            try:
                _configure_autoscaling(aas, cw, spec, name, place.names, report)
            except ClientError as exc:
                report(f"warning: could not restore autoscaling: {error_code(exc)}")
        raise
    report(f"endpoint {name} InService")
    return _Endpoint(name=name, arn=desc["EndpointArn"], config_name=config_name)


def _new_config_name(prefix: str, config_hash: str, current_config: str) -> str:
    """``<prefix><hash>-<UTC timestamp>``, never the name the endpoint is on now (a second deploy
    within the same second waits one)."""
    config_name = f"{prefix}{config_hash}-{datetime.now(timezone.utc):%Y%m%d%H%M%S}"
    if current_config == config_name:
        time.sleep(1.0)
        config_name = f"{prefix}{config_hash}-{datetime.now(timezone.utc):%Y%m%d%H%M%S}"
    return config_name


def _scaling(spec: DeploymentSpec, session: AwsSession, place: _Place, endpoint: str,
             report: Reporter) -> _Scaling:
    """Async endpoints with autoscaling on: scale on the backlog per instance, down to
    ``min_capacity`` (zero by default, with the alarm that wakes it). Anything else (realtime and
    serverless scale by other means, or autoscaling is off): remove what an earlier deploy left."""
    aas, cw = session.client("application-autoscaling"), session.client("cloudwatch")
    if spec.kind == "async" and spec.autoscaling.enabled:
        resource_id, policies, alarm = _configure_autoscaling(aas, cw, spec, endpoint, place.names, report)
        return _Scaling(resource_id=resource_id, policies=policies, alarm=alarm)
    for line in _remove_autoscaling(aas, cw, f"endpoint/{endpoint}/variant/{spec.variant_name}", place.names):
        report(f"removed {line}")
    return _Scaling()


def _previous(manifest: str | Path | None, name: str) -> Deployment | None:
    """The deployment ``manifest`` records, if it is one of ``name`` (an unreadable one counts as none)."""
    if manifest is None or not Path(manifest).exists():
        return None
    try:
        previous = Deployment.load(manifest)
    except ConfigError:
        return None
    return previous if previous.name == name else None


def _record(spec: DeploymentSpec, place: _Place, checked: _Preflight, storage: _Storage,
            notifications: _Notifications, role: _Role, model_name: str, endpoint: _Endpoint, scaling: _Scaling,
            *, previous: Deployment | None) -> Deployment:
    """The :class:`Deployment` naming everything the steps made or reused, and which of it roomkit
    owns (what teardown may delete). A ``previous`` record of this deployment keeps its trigger
    and creation time."""
    is_async = spec.kind == "async"
    owned = storage.owned + notifications.owned + ([f"role:{role.name}"] if role.name else [])
    return Deployment(
        name=spec.name, mode=place.mode, region=place.region, account_id=place.account, kind=spec.kind,
        endpoint_name=endpoint.name, endpoint_arn=endpoint.arn, endpoint_config_name=endpoint.config_name,
        model_name=model_name, variant_name=spec.variant_name, image_uri=checked.image_uri,
        model_data_url=storage.model_data_url, role_arn=role.arn, role_name=role.name,
        role_policy_name=ROLE_POLICY_NAME if role.name else None,
        bucket=storage.bucket, input_prefix=spec.async_inference.input_prefix,
        output_path=storage.output_path if is_async else None,
        failure_path=storage.failure_path if is_async else None,
        success_topic_arn=notifications.success_topic_arn, error_topic_arn=notifications.error_topic_arn,
        notification_queue_url=notifications.queue_url, notification_queue_arn=notifications.queue_arn,
        raw_notifications=False,
        scaling_resource_id=scaling.resource_id, scaling_policy_names=scaling.policies, alarm_name=scaling.alarm,
        owned=owned, trigger=previous.trigger if previous else None,
        kms_key_arn=checked.kms_key_arn,
        spec=spec.to_dict(),
        created_at=(previous.created_at if previous else None) or _now(),
        updated_at=_now(),
    )


# -- teardown, step by step ------------------------------------------------------------------------
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
        if error_code(exc) not in ("NotImplemented", "MethodNotAllowed"):
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
    topics, role and buckets that roomkit created (resources the spec only pointed at stay), and
    the CloudWatch log groups of the endpoint (``/aws/sagemaker/Endpoints/<name>``) and of the
    trigger function (``/aws/lambda/<function>``).

    Safe to re-run: what is already gone is skipped. Returns one line per removed resource.
    """
    report = Reporter(progress)
    names = resource_names(deployment.name, deployment.account_id, deployment.region)
    log_groups = _log_groups(deployment, names)  # before the trigger (and its record) goes

    if everything and deployment.trigger is not None:
        _remove_trigger(deployment, session, report)
    _remove_scaling(deployment, session, names, report)
    sm = session.client("sagemaker")
    _remove_endpoint(sm, deployment, report)
    _remove_configs_and_models(sm, deployment, names, report)
    if everything:
        _remove_owned(deployment, session, report)
        _remove_log_groups(session, log_groups, report)
    if not report.lines and progress:
        print(f"nothing to remove for {deployment.name}", file=sys.stderr)
    return report.lines


def _log_groups(deployment: Deployment, names: dict[str, str]) -> list[str]:
    """The CloudWatch log groups the deployment writes: the endpoint's, and the trigger
    function's unless the trigger is the (local mode's) SQS queue."""
    groups = [f"/aws/sagemaker/Endpoints/{deployment.endpoint_name}"]
    if deployment.trigger is None or deployment.trigger.target == "lambda":
        function = (deployment.trigger.function_name if deployment.trigger else None) or names["trigger_function"]
        groups.append(f"/aws/lambda/{function}")
    return groups


def _remove_trigger(deployment: Deployment, session: AwsSession, report: Reporter) -> None:
    """The upload trigger first, so no upload starts a job while the endpoint goes away."""
    for line in remove_trigger(deployment, session, progress=False):
        report(line)


def _remove_scaling(deployment: Deployment, session: AwsSession, names: dict[str, str], report: Reporter) -> None:
    """The alarm, scaling policies and scalable target, which must go before the endpoint."""
    aas, cw = session.client("application-autoscaling"), session.client("cloudwatch")
    resource_id = (deployment.scaling_resource_id
                   or f"endpoint/{deployment.endpoint_name}/variant/{deployment.variant_name}")
    for line in _remove_autoscaling(aas, cw, resource_id, names):
        report(f"removed {line}")


def _remove_endpoint(sm: Any, deployment: Deployment, report: Reporter) -> None:
    """The endpoint, unless it is already gone or going."""
    desc = _describe_endpoint(sm, deployment.endpoint_name)
    if desc is not None and desc["EndpointStatus"] != "Deleting":
        if ignore_missing(sm.delete_endpoint, EndpointName=deployment.endpoint_name):
            report(f"removed endpoint {deployment.endpoint_name}")


def _remove_configs_and_models(sm: Any, deployment: Deployment, names: dict[str, str], report: Reporter) -> None:
    """Every endpoint config and model deploy made for this deployment (each update left one
    behind), found by their exact name patterns, plus the ones the record names."""
    configs = set(_list_prefixed(sm, "list_endpoint_configs", "EndpointConfigs", "EndpointConfigName",
                                 names["config_prefix"], r"[0-9a-f]{10}-\d{14}"))
    configs.add(deployment.endpoint_config_name)
    for config in sorted(configs):
        if ignore_missing(sm.delete_endpoint_config, EndpointConfigName=config):
            report(f"removed endpoint config {config}")
    models = set(_list_prefixed(sm, "list_models", "Models", "ModelName", names["model_prefix"], r"[0-9a-f]{12}"))
    models.add(deployment.model_name)
    for model in sorted(models):
        if ignore_missing(sm.delete_model, ModelName=model):
            report(f"removed model {model}")


def _remove_owned(deployment: Deployment, session: AwsSession, report: Reporter) -> None:
    """What the record lists as roomkit's (``deployment.owned``): the queue first, unsubscribed
    from the topics (which may be someone else's); then topics and role; buckets last, emptied
    of every object version. Resources the spec only pointed at are not in the list."""
    owned = [item.partition(":") for item in deployment.owned]
    sqs, sns = session.client("sqs"), session.client("sns")
    for kind, _, ident in owned:
        if kind == "queue":
            _unsubscribe(sns, deployment)
            if ignore_missing(sqs.delete_queue, QueueUrl=ident):
                report(f"removed queue {ident}")
    for kind, _, ident in owned:
        if kind == "topic":
            if topic_owned(sns, ident, deployment.name) is not None:
                sns.delete_topic(TopicArn=ident)
                report(f"removed topic {ident}")
        elif kind == "role":
            if delete_role(session.client("iam"), ident):
                report(f"removed role {ident}")
    s3 = session.client("s3")
    for kind, _, ident in owned:
        if kind == "bucket":
            try:
                n = _empty_bucket(s3, ident)
            except ClientError as exc:
                if is_missing(exc):
                    continue
                raise
            if ignore_missing(s3.delete_bucket, Bucket=ident):
                report(f"removed bucket {ident} ({n} objects)")


def _unsubscribe(sns: Any, deployment: Deployment) -> None:
    """Drop the notification queue's subscriptions to the deployment's topics."""
    queue_arn = deployment.notification_queue_arn
    for topic in {deployment.success_topic_arn, deployment.error_topic_arn} - {None}:
        try:
            for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic):
                for sub in page.get("Subscriptions", []):
                    if sub.get("Endpoint") == queue_arn and sub["SubscriptionArn"].startswith("arn:"):
                        sns.unsubscribe(SubscriptionArn=sub["SubscriptionArn"])
        except ClientError as exc:
            if not is_missing(exc):
                raise


def _remove_log_groups(session: AwsSession, groups: list[str], report: Reporter) -> None:
    """The endpoint's and the trigger function's CloudWatch log groups (they outlive both)."""
    for group in delete_log_groups(session.client("logs"), groups):
        report(f"removed log group {group}")
