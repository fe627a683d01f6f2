"""The ``mode="aws"`` branches of deploy, the trigger and teardown, run in-process.

Everything AWS answers comes from moto's ``mock_aws`` (no network: moto intercepts botocore's
requests), with the session built by ``roomkit.aws.session("aws")`` from fake environment
credentials — so the code takes exactly the branches it takes against a real account: ECR image
required, TLS-only bucket policies, the Lambda trigger by default, the 90 s wait for a new role to
propagate, the wait for a new endpoint config to become readable. Where AWS answers differently
from moto (a role not yet usable, an endpoint config not yet found), botocore's own
``before-call`` event gives the documented error for the first calls, the way botocore's Stubber
does, and the real (moto) call afterwards. Time spent waiting is virtual (:class:`Clock`).

One moto gap is bridged the same way: moto in-process enforces bucket policies but ignores their
conditions, so the TLS-only policy (Deny when ``aws:SecureTransport`` is false, which never holds
for boto3's HTTPS requests) would deny everything; :class:`AwsMode` records that policy instead of
applying it, and the tests assert what was recorded.
"""
from __future__ import annotations

import json

import pytest
from botocore.awsrequest import AWSResponse

import roomkit.aws
import roomkit.aws.deploy
import roomkit.aws.resources
from moto_fixtures import push_image
from roomkit.aws.deploy import deploy, deploy_trigger, teardown
from roomkit.aws.resources import DeployError
from roomkit.aws.spec import DeploymentSpec
from roomkit.errors import ConfigError
from roomkit.aws.trigger import TriggerConfig
from roomkit.aws.trigger_deploy import package_handler

moto = pytest.importorskip("moto")


@pytest.fixture
def session(monkeypatch, tmp_path):
    """An aws-mode session whose every call lands in moto's in-process backend."""
    import os

    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": str(tmp_path / "none"),
                        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}.items():
        monkeypatch.setenv(name, value)
    with moto.mock_aws():
        made = roomkit.aws.session("aws")
        assert made.mode == "aws" and made.endpoint_url("s3") is None
        yield AwsMode(made)


class AwsMode:
    """The aws-mode session; its S3 clients record bucket policies (see the module docstring)."""

    def __init__(self, base):
        self._base = base
        self.bucket_policies: dict[str, dict] = {}

    def __getattr__(self, name):
        return getattr(self._base, name)

    def client(self, service, **kwargs):
        client = self._base.client(service, **kwargs)
        if service == "s3":
            def record(params, **_kwargs):  # the API parameters, as the caller gave them
                self.bucket_policies[params["Bucket"]] = json.loads(params["Policy"])

            def skip(**_kwargs):
                return AWSResponse(None, 204, {}, None), {"ResponseMetadata": {"HTTPStatusCode": 204}}

            client.meta.events.register("provide-client-params.s3.PutBucketPolicy", record)
            client.meta.events.register("before-call.s3.PutBucketPolicy", skip)
        return client


class Clock:
    """Stands in for the ``time`` module of :mod:`roomkit.aws.deploy` and :mod:`roomkit.aws.resources`
    (which retries while a new role propagates): sleeping advances it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class WithClients:
    """The session, except that the named services get the given clients."""

    def __init__(self, base, **clients):
        self._base, self._clients = base, clients

    def __getattr__(self, name):
        return getattr(self._base, name)

    def client(self, service, **kwargs):
        return self._clients.get(service) or self._base.client(service, **kwargs)


def fail_first(client, operation: str, times: int | None, code: str, message: str) -> list[int]:
    """Make the first ``times`` calls of ``operation`` answer AWS's error (all, with None)."""
    calls: list[int] = []

    def hook(**_kwargs):
        calls.append(1)
        if times is None or len(calls) <= times:
            return AWSResponse(None, 400, {}, None), {
                "Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": 400}}
        return None

    client.meta.events.register(f"before-call.{client.meta.service_model.service_id.hyphenize()}.{operation}", hook)
    return calls


def _spec(session, **overrides):
    data = {"name": "rk-aws", "image_uri": push_image(session), "model_config": {"min_room_area": 0.002}}
    data.update(overrides)
    return DeploymentSpec.from_dict(data)


def _doc(iam_client, role, policy):
    doc = iam_client.get_role_policy(RoleName=role, PolicyName=policy)["PolicyDocument"]
    return doc if isinstance(doc, dict) else json.loads(doc)


def _actions(doc):
    return {st["Sid"]: sorted([st["Action"]] if isinstance(st["Action"], str) else st["Action"])
            for st in doc["Statement"]}


def test_aws_mode_needs_an_image_uri_and_creates_nothing_without_one(session):
    with pytest.raises(ConfigError, match="image_uri is required in aws mode"):
        deploy(DeploymentSpec(name="rk-aws", model_config={}), session, progress=False)
    assert session.client("s3").list_buckets()["Buckets"] == []
    assert session.client("iam").list_roles()["Roles"] == []


def test_new_role_is_retried_while_it_propagates_then_the_endpoint_config_until_readable(session, monkeypatch):
    clock = Clock()
    monkeypatch.setattr(roomkit.aws.deploy, "time", clock)
    monkeypatch.setattr(roomkit.aws.resources, "time", clock)
    sm = session.client("sagemaker")
    role_calls = fail_first(sm, "CreateModel", 3, "ValidationException",
                            "Could not assume role arn:aws:iam::123456789012:role/roomkit/rk-aws-sagemaker-exec. "
                            "Please ensure that the role exists and allows principal 'sagemaker.amazonaws.com' to assume the role.")
    config_calls = fail_first(sm, "CreateEndpoint", 1, "ValidationException",
                              "Could not find endpoint configuration arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/x.")
    dep = deploy(_spec(session), WithClients(session, sagemaker=sm), progress=False)
    assert len(role_calls) == 4 and len(config_calls) == 2
    assert clock.sleeps[:3] == [2.0, 3.0, 4.5]  # backoff within the 90 s a new role may take
    assert 1.0 in clock.sleeps[3:]  # the config lookup, retried once
    assert sm.describe_endpoint(EndpointName=dep.endpoint_name)["EndpointStatus"] == "InService"
    # the bucket is TLS-only in aws mode (local mode's plain-HTTP endpoints cannot be)
    (statement,) = session.bucket_policies[dep.bucket]["Statement"]
    assert (statement["Effect"], statement["Action"]) == ("Deny", "s3:*")
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_a_role_that_never_becomes_usable_fails_after_90_seconds(session, monkeypatch):
    clock = Clock()
    monkeypatch.setattr(roomkit.aws.deploy, "time", clock)
    monkeypatch.setattr(roomkit.aws.resources, "time", clock)
    sm = session.client("sagemaker")
    calls = fail_first(sm, "CreateModel", None, "ValidationException", "Could not assume role rk-aws-sagemaker-exec.")
    with pytest.raises(DeployError, match="CreateModel rk-aws-model-.* failed: ValidationException: Could not assume role"):
        deploy(_spec(session), WithClients(session, sagemaker=sm), progress=False)
    assert 90 <= sum(clock.sleeps) <= 100 and len(calls) == len(clock.sleeps) + 1
    # a different ValidationException is not mistaken for propagation
    other = session.client("sagemaker")
    once = fail_first(other, "CreateModel", None, "ValidationException", "Image not found in ECR.")
    clock.sleeps.clear()
    with pytest.raises(DeployError, match="Image not found"):
        deploy(_spec(session), WithClients(session, sagemaker=other), progress=False)
    assert len(once) == 1 and clock.sleeps == []


def test_trigger_defaults_to_lambda_with_its_own_sdk_listing_kms_refusals_and_an_encoded_prefix(session):
    kms = session.client("kms")
    key = kms.create_key(Description="roomkit")["KeyMetadata"]
    kms.create_alias(AliasName="alias/roomkit", TargetKeyId=key["KeyId"])
    dep = deploy(_spec(session, async_inference={"kms_key_id": "alias/roomkit"}), session, progress=False)
    assert dep.kms_key_arn == key["Arn"]
    iam_client, lam, s3 = session.client("iam"), session.client("lambda"), session.client("s3")
    exec_doc = _doc(iam_client, dep.role_name, "roomkit-endpoint")
    assert _actions(exec_doc)["GrantKmsKeyToSageMakerResources"] == ["kms:CreateGrant"]

    prefix = "plans 2024/étage+1/"
    trig = deploy_trigger(dep, session, prefix=prefix, progress=False)
    assert trig.target == "lambda"  # the default in aws mode
    fn = lam.get_function(FunctionName=trig.function_name)["Configuration"]
    assert fn["CodeSize"] == len(package_handler())  # handler + the botocore it needs
    config = TriggerConfig.from_env(fn["Environment"]["Variables"])
    assert (config.failure_path, config.error_topic_arn) == (dep.failure_path, dep.error_topic_arn)
    assert config.claim_stale_after_s == 75  # 60 s timeout + 15: stale before Lambda's last retry

    doc = _doc(iam_client, trig.role_name, "roomkit-trigger")
    assert _actions(doc) == {
        "InvokeThisEndpointAsync": ["sagemaker:InvokeEndpointAsync"],
        "ReadUploads": ["s3:GetObject"],
        "KeepIdempotencyClaims": ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
        "ListUploadsAndClaims": ["s3:ListBucket"],
        "WriteRefusedUploadFailures": ["s3:PutObject"],
        "PublishRefusedUploadErrors": ["sns:Publish"],
        "WriteFunctionLogs": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
        "SendFailedEventsToDeadLetterQueue": ["sqs:SendMessage"],
        "UseKmsKey": ["kms:Decrypt", "kms:GenerateDataKey"],
    }
    by_sid = {st["Sid"]: st for st in doc["Statement"]}
    # HeadObject on a deleted upload answers 404, not 403, only with ListBucket on the prefix
    assert by_sid["ListUploadsAndClaims"]["Condition"]["StringLike"]["s3:prefix"] == [
        ".roomkit/trigger-claims/*", f"{prefix}*"]
    assert by_sid["UseKmsKey"]["Resource"] == key["Arn"]
    assert by_sid["WriteRefusedUploadFailures"]["Resource"] == f"arn:aws:s3:::{dep.bucket}/async-failures/*"

    # S3 matches notification filters against URL-encoded keys
    entries = s3.get_bucket_notification_configuration(Bucket=dep.bucket)["LambdaFunctionConfigurations"]
    prefixes = {r["Value"] for e in entries for r in e["Filter"]["Key"]["FilterRules"] if r["Name"].lower() == "prefix"}
    assert prefixes == {"plans+2024/%C3%A9tage%2B1/"}

    logs = session.client("logs")
    for group in (f"/aws/sagemaker/Endpoints/{dep.endpoint_name}", f"/aws/lambda/{trig.function_name}"):
        logs.create_log_group(logGroupName=group)
    teardown(dep, session, everything=True, progress=False)
    assert logs.describe_log_groups()["logGroups"] == []
    assert lam.list_functions()["Functions"] == [] and iam_client.list_roles()["Roles"] == []
    assert s3.list_buckets()["Buckets"] == []


def test_lambda_timeout_beyond_the_retry_window_is_refused(session):
    dep = deploy(_spec(session), session, progress=False)
    with pytest.raises(ConfigError, match="timeout_s=300 is too long for the upload trigger"):
        deploy_trigger(dep, session, timeout_s=300, progress=False)
