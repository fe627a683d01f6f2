"""Before and after a deploy: what must hold before :func:`roomkit.aws.deploy.deploy` runs
(checks with reasons), and a summary of an endpoint's state.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from roomkit.checks import Check
from roomkit.errors import ConfigError

__all__ = ["Check", "preflight", "endpoint_status", "EndpointSummary", "endpoint_summary"]


def preflight(spec: Any, session: Any) -> list[Check]:
    """What :func:`roomkit.aws.deploy.deploy` will verify, checked up front and reported one per line:
    caller identity, the image (exists, Docker v2 manifest), the model configuration or artifact,
    the execution role when one is given. Nothing is created."""
    import importlib

    from roomkit.detector.config import DetectorConfig
    from roomkit.aws.spec import load_model_config
    from roomkit.errors import RoomkitError

    dp = importlib.import_module("roomkit.aws.deploy")  # the module (``roomkit.aws.deploy`` is also a function)
    checks: list[Check] = []

    def attempt(name: str, fn: Any) -> Any:
        try:
            detail = fn()
            checks.append(Check(name, True, detail))
        except RoomkitError as exc:
            checks.append(Check(name, False, exc.message))
        except Exception as exc:  # a botocore error: show its message rather than a traceback
            checks.append(Check(name, False, f"{type(exc).__name__}: {exc}"))

    account: list[str] = []

    def identity() -> str:
        account.append(session.account_id())
        return f"{session.mode} mode, region {session.region}"

    attempt("identity", identity)
    if account:
        image_uri = spec.image_uri or (
            f"{account[0]}.dkr.ecr.{session.region}.amazonaws.com/{dp.LOCAL_IMAGE_REPOSITORY}:{dp.LOCAL_IMAGE_TAG}"
            if session.mode == "local" else None)

        def image() -> str:
            if image_uri is None:
                raise ConfigError("image_uri is required in aws mode (the ECR image built in notebook 02)")
            found = dp.preflight_image(session.client("ecr"), image_uri, session.region)
            return f"{image_uri.rsplit('/', 1)[-1]} {found.get('imageManifestMediaType')}"

        attempt("image", image)

    def model_config() -> str:
        data = load_model_config(spec.model_config)
        DetectorConfig.from_dict(data)  # raises ConfigError naming the bad key/value
        return "valid: " + (", ".join(f"{k}={v}" for k, v in sorted(data.items())) or "detector defaults")

    def model_artifact() -> str:
        dp.preflight_artifact(session.client("s3"), spec.model_data_url)
        return spec.model_data_url

    if spec.model_config is not None:
        attempt("model config", model_config)
    else:
        attempt("model artifact", model_artifact)
    if spec.role_arn:
        def role() -> str:
            dp.preflight_role(session.client("iam"), spec.role_arn, lambda _: None)
            return spec.role_arn

        attempt("execution role", role)
    return checks


def endpoint_status(session: Any, name: str) -> str | None:
    from botocore.exceptions import ClientError

    try:
        return session.client("sagemaker").describe_endpoint(EndpointName=name)["EndpointStatus"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("ValidationException", "ResourceNotFound"):
            return None
        raise


@dataclass
class EndpointSummary:
    """What is deployed, read back from SageMaker and Application Auto Scaling."""

    endpoint_name: str
    status: str | None
    endpoint_config: dict[str, Any] = field(default_factory=dict)
    scalable_targets: list[dict[str, Any]] = field(default_factory=list)
    scaling_policies: list[dict[str, Any]] = field(default_factory=list)
    alarms: list[str] = field(default_factory=list)

    def text(self) -> str:
        """Deterministic lines (no ARNs, account ids or times), for nbval."""
        lines = [f"endpoint {self.endpoint_name}: {self.status or 'not found'}"]
        for v in self.endpoint_config.get("ProductionVariants", []):
            lines.append(f"variant {v.get('VariantName')}: {v.get('InstanceType', 'serverless')}, "
                         f"initial instances {v.get('InitialInstanceCount', '-')}")
        async_cfg = self.endpoint_config.get("AsyncInferenceConfig")
        if async_cfg:
            out = async_cfg.get("OutputConfig", {})
            notes = out.get("NotificationConfig", {})
            lines.append("async: max concurrent invocations per instance "
                         f"{async_cfg.get('ClientConfig', {}).get('MaxConcurrentInvocationsPerInstance')}, "
                         f"success+error topics {'set' if notes.get('SuccessTopic') and notes.get('ErrorTopic') else 'missing'}, "
                         f"failure path {'set' if out.get('S3FailurePath') else 'missing'}")
        for t in self.scalable_targets:
            lines.append(f"autoscaling: {t['MinCapacity']}-{t['MaxCapacity']} instances")
        for p in sorted(self.scaling_policies, key=lambda p: p["PolicyName"]):
            lines.append(f"policy {p['PolicyName']}: {p['PolicyType']}")
        for a in sorted(self.alarms):
            lines.append(f"alarm {a}")
        return "\n".join(lines)


def endpoint_summary(session: Any, deployment: Any) -> EndpointSummary:
    """Describe the endpoint, its config and its scaling set-up."""
    sm = session.client("sagemaker")
    status = endpoint_status(session, deployment.endpoint_name)
    summary = EndpointSummary(deployment.endpoint_name, status)
    if status is None:
        return summary
    desc = sm.describe_endpoint(EndpointName=deployment.endpoint_name)
    config = sm.describe_endpoint_config(EndpointConfigName=desc["EndpointConfigName"])
    summary.endpoint_config = {k: v for k, v in config.items() if k != "ResponseMetadata"}
    resource = f"endpoint/{deployment.endpoint_name}/variant/{deployment.variant_name}"
    aas = session.client("application-autoscaling")
    summary.scalable_targets = aas.describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=[resource])["ScalableTargets"]
    summary.scaling_policies = aas.describe_scaling_policies(
        ServiceNamespace="sagemaker", ResourceId=resource)["ScalingPolicies"]
    if deployment.alarm_name:
        found = session.client("cloudwatch").describe_alarms(AlarmNames=[deployment.alarm_name])["MetricAlarms"]
        summary.alarms = [a["AlarmName"] for a in found]
    return summary
