"""deploy / teardown against moto's server; UpdateEndpoint paths through botocore's Stubber."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from botocore.stub import ANY, Stubber

from moto_fixtures import OCI, aws, moto_url, push_image  # noqa: F401  (fixtures)
from roomkit.aws.deploy import deploy, teardown
from roomkit.aws.spec import DeploymentSpec
from roomkit.aws.deployment import Deployment
from roomkit.aws.resources import DeployError, resource_names
from roomkit.errors import ConfigError


def make_spec(session, **overrides):
    data = {"name": "rk-test", "image_uri": push_image(session), "model_config": {"min_room_area": 0.002}}
    data.update(overrides)
    return DeploymentSpec.from_dict(data)


class PartlyStubbed:
    """The session, except that the named services' clients are the given (stubbed) ones."""

    def __init__(self, base, **clients):
        self._base, self._clients = base, clients

    def __getattr__(self, name):
        return getattr(self._base, name)

    def client(self, service, **kwargs):
        return self._clients.get(service.replace("-", "_")) or self._base.client(service, **kwargs)


# -- create, reuse -------------------------------------------------------------------------------
def test_deploy_creates_private_bucket_topics_queue_role_model_and_async_endpoint(aws, tmp_path):
    dep = deploy(make_spec(aws), aws, progress=False, manifest=tmp_path / "d.json")
    s3, sm, sns, sqs, iam = (aws.client(s) for s in ("s3", "sagemaker", "sns", "sqs", "iam"))
    account = aws.account_id()

    assert dep.bucket == f"rk-test-{account}-{aws.region}"
    block = s3.get_public_access_block(Bucket=dep.bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values()) and len(block) == 4
    rule = s3.get_bucket_encryption(Bucket=dep.bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"

    # model artifact packaged from the config and uploaded
    bucket, key = dep.model_data_url[5:].split("/", 1)
    assert key.endswith("model.tar.gz") and s3.head_object(Bucket=bucket, Key=key)["ContentLength"] > 0

    # endpoint config carries the async settings and the two topics
    config = sm.describe_endpoint_config(EndpointConfigName=dep.endpoint_config_name)
    out = config["AsyncInferenceConfig"]["OutputConfig"]
    assert out["S3OutputPath"] == dep.output_path == f"s3://{dep.bucket}/async-outputs/"
    assert out["S3FailurePath"] == dep.failure_path == f"s3://{dep.bucket}/async-failures/"
    assert out["NotificationConfig"]["SuccessTopic"] == dep.success_topic_arn
    assert out["NotificationConfig"]["ErrorTopic"] == dep.error_topic_arn
    assert out["NotificationConfig"]["IncludeInferenceResponseIn"] == ["SUCCESS_NOTIFICATION_TOPIC"]
    assert config["AsyncInferenceConfig"]["ClientConfig"] == {"MaxConcurrentInvocationsPerInstance": 4}
    variant = config["ProductionVariants"][0]
    assert variant["ModelName"] == dep.model_name and variant["InstanceType"] == "ml.m5.large"
    model = sm.describe_model(ModelName=dep.model_name)
    assert model["ExecutionRoleArn"] == dep.role_arn
    assert model["PrimaryContainer"]["Image"] == dep.image_uri
    assert sm.describe_endpoint(EndpointName=dep.endpoint_name)["EndpointStatus"] == "InService"

    # the queue hears both topics, and its policy admits only them
    for topic in (dep.success_topic_arn, dep.error_topic_arn):
        subs = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
        assert [s["Endpoint"] for s in subs] == [dep.notification_queue_arn]
        attrs = sns.get_subscription_attributes(SubscriptionArn=subs[0]["SubscriptionArn"])["Attributes"]
        assert attrs["RawMessageDelivery"] == "true"  # SageMaker's message itself, no SNS envelope
    policy = json.loads(sqs.get_queue_attributes(QueueUrl=dep.notification_queue_url,
                                                 AttributeNames=["Policy"])["Attributes"]["Policy"])
    (statement,) = policy["Statement"]
    assert statement["Action"] == "sqs:SendMessage" and statement["Resource"] == dep.notification_queue_arn
    assert sorted(statement["Condition"]["ArnEquals"]["aws:SourceArn"]) == sorted(
        [dep.success_topic_arn, dep.error_topic_arn])

    role = iam.get_role(RoleName=dep.role_name)["Role"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert iam.list_attached_role_policies(RoleName=dep.role_name)["AttachedPolicies"] == []
    assert iam.list_role_policies(RoleName=dep.role_name)["PolicyNames"] == ["roomkit-endpoint"]

    # the manifest holds everything submit needs, and loads back equal
    loaded = Deployment.load(tmp_path / "d.json")
    assert loaded == dep
    assert loaded.input_uri == f"s3://{dep.bucket}/async-inputs/"
    assert loaded.mode == "local" and loaded.region == aws.region
    assert DeploymentSpec.from_dict(loaded.spec) == make_spec(aws)


def test_second_deploy_changes_nothing(aws, tmp_path):
    spec = make_spec(aws)
    first = deploy(spec, aws, progress=False)
    second = deploy(spec, aws, progress=False)
    sm = aws.client("sagemaker")
    assert second.endpoint_config_name == first.endpoint_config_name
    assert second.model_name == first.model_name and second.model_data_url == first.model_data_url
    assert len(sm.list_endpoint_configs()["EndpointConfigs"]) == 1
    assert len(sm.list_models()["Models"]) == 1
    assert any(line.startswith("unchanged endpoint") for line in second.changes)
    assert not any(line.startswith("created") for line in second.changes)
    assert second.owned == first.owned  # re-run still knows what it created (from the tags)


def test_new_image_push_under_the_same_tag_gives_a_new_model(aws):
    spec = make_spec(aws)
    first = deploy(spec, aws, progress=False)
    teardown(first, aws, progress=False)  # endpoint gone; moto has no UpdateEndpoint
    ecr = aws.client("ecr")
    manifest = json.loads(ecr.batch_get_image(repositoryName="roomkit", imageIds=[{"imageTag": "local"}])
                          ["images"][0]["imageManifest"])
    manifest["layers"][0]["digest"] = "sha256:" + "9" * 64  # a rebuilt image pushed as :local again
    ecr.put_image(repositoryName="roomkit", imageManifest=json.dumps(manifest), imageTag="local")
    second = deploy(spec, aws, progress=False)
    assert second.image_uri == first.image_uri
    assert second.model_name != first.model_name
    assert second.endpoint_config_name != first.endpoint_config_name


# -- UpdateEndpoint (moto has none): exact request shapes through the Stubber --------------------
def _freeze(monkeypatch, when=datetime(2026, 11, 23, 12, 0, 0, tzinfo=timezone.utc)):
    class Frozen(datetime):
        @classmethod
        def now(cls, tz=None):
            return when

    monkeypatch.setattr("roomkit.aws.deploy.datetime", Frozen)
    return when.strftime("%Y%m%d%H%M%S")


def _endpoint(status, config, reason=None):
    desc = {
        "EndpointName": "rk-test", "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/rk-test",
        "EndpointConfigName": config, "EndpointStatus": status,
        "CreationTime": datetime(2026, 1, 1), "LastModifiedTime": datetime(2026, 1, 1),
    }
    if reason:
        desc["FailureReason"] = reason
    return desc


def _update_stubs(aws, first, new_config_name, final, body, config_hash):
    sm = aws.client("sagemaker")
    stub = Stubber(sm)
    stub.add_response("describe_model", {"ModelName": first.model_name, "ModelArn": "arn:aws:sagemaker:us-east-1:123456789012:model/m",
                                         "CreationTime": datetime(2026, 1, 1), "ExecutionRoleArn": first.role_arn},
                      {"ModelName": first.model_name})
    stub.add_response("describe_endpoint", _endpoint("InService", first.endpoint_config_name), {"EndpointName": "rk-test"})
    stub.add_response("create_endpoint_config",
                      {"EndpointConfigArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/{new_config_name}"},
                      {"EndpointConfigName": new_config_name, **body,
                       "Tags": [{"Key": "roomkit:config-hash", "Value": config_hash},
                                {"Key": "roomkit:deployment", "Value": "rk-test"}]})
    stub.add_response("update_endpoint", {"EndpointArn": first.endpoint_arn},
                      {"EndpointName": "rk-test", "EndpointConfigName": new_config_name})
    stub.add_response("describe_endpoint", _endpoint("Updating", first.endpoint_config_name), {"EndpointName": "rk-test"})
    stub.add_response("describe_endpoint", final, {"EndpointName": "rk-test"})
    return sm, stub


def test_changed_spec_updates_endpoint_to_new_config(aws, monkeypatch):
    first = deploy(make_spec(aws), aws, progress=False)
    stamp = _freeze(monkeypatch)
    changed = make_spec(aws, async_inference={"max_concurrent_invocations_per_instance": 8})
    # the config name is prefix + content hash + timestamp; the hash changes with the content
    from roomkit.aws.deploy import _async_config, _hash, _variant  # noqa: PLC2701 (compute expected name)

    body = {"ProductionVariants": [_variant(changed, first.model_name)],
            "AsyncInferenceConfig": _async_config(changed, first.output_path, first.failure_path,
                                                  (first.success_topic_arn, first.error_topic_arn), None)}
    new_name = f"rk-test-cfg-{_hash(body, 10)}-{stamp}"
    assert new_name != first.endpoint_config_name
    sm, stub = _update_stubs(aws, first, new_name, _endpoint("InService", new_name), body, _hash(body, 10))
    with stub:
        dep = deploy(changed, PartlyStubbed(aws, sagemaker=sm), progress=False, poll_s=0)
    stub.assert_no_pending_responses()
    assert dep.endpoint_config_name == new_name
    assert any("updating endpoint rk-test" in line for line in dep.changes)
    # autoscaling was taken off for the update and put back afterwards
    aas = aws.client("application-autoscaling")
    targets = aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert [t["ResourceId"] for t in targets] == ["endpoint/rk-test/variant/AllTraffic"]


def test_update_rolled_back_surfaces_failure_reason(aws, monkeypatch):
    first = deploy(make_spec(aws), aws, progress=False)
    _freeze(monkeypatch)
    changed = make_spec(aws, instance_type="ml.c5.xlarge")
    sm = aws.client("sagemaker")
    stub = Stubber(sm)
    stub.add_response("describe_model", {"ModelName": first.model_name, "ModelArn": "arn:aws:sagemaker:us-east-1:123456789012:model/m",
                                         "CreationTime": datetime(2026, 1, 1), "ExecutionRoleArn": first.role_arn})
    stub.add_response("describe_endpoint", _endpoint("InService", first.endpoint_config_name))
    stub.add_response("create_endpoint_config", {"EndpointConfigArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/n"})
    stub.add_response("update_endpoint", {"EndpointArn": first.endpoint_arn})
    stub.add_response("describe_endpoint", _endpoint("InService", first.endpoint_config_name,
                                                     "Update failed: the container did not pass the ping health check"))
    with stub, pytest.raises(DeployError, match="rolled back: Update failed: the container did not pass"):
        deploy(changed, PartlyStubbed(aws, sagemaker=sm), progress=False, poll_s=0)
    assert aws.client("sagemaker").describe_endpoint(EndpointName="rk-test")["EndpointConfigName"] == \
        first.endpoint_config_name
    # the old config keeps serving, with its autoscaling back in place
    aas = aws.client("application-autoscaling")
    assert len(aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]) == 1
    assert len(aws.client("cloudwatch").describe_alarms()["MetricAlarms"]) == 1


def test_failed_endpoint_surfaces_failure_reason_and_timeout(aws):
    from roomkit.aws.deploy import wait_for_endpoint

    sm = aws.client("sagemaker")
    stub = Stubber(sm)
    stub.add_response("describe_endpoint", _endpoint("Creating", "c"))
    stub.add_response("describe_endpoint", _endpoint("Failed", "c", "CannotStartContainerError: exec serve: not found"))
    with stub, pytest.raises(DeployError, match="Failed: CannotStartContainerError: exec serve"):
        wait_for_endpoint(sm, "rk-test", timeout=60, poll_s=0, progress=False)
    stub.add_response("describe_endpoint", _endpoint("Creating", "c"))
    with stub, pytest.raises(DeployError, match="still Creating after 0s"):
        wait_for_endpoint(sm, "rk-test", timeout=0, poll_s=0, progress=False)


# -- autoscaling -----------------------------------------------------------------------------------
def test_async_autoscaling_scales_to_zero_and_wakes_on_backlog(aws):
    dep = deploy(make_spec(aws, autoscaling={"max_capacity": 3, "target_backlog_per_instance": 4}), aws, progress=False)
    aas, cw = aws.client("application-autoscaling"), aws.client("cloudwatch")
    (target,) = aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert target["ResourceId"] == f"endpoint/{dep.endpoint_name}/variant/AllTraffic"
    assert target["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    assert (target["MinCapacity"], target["MaxCapacity"]) == (0, 3)
    policies = {p["PolicyName"]: p for p in aas.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]}
    tracking = policies["rk-test-backlog-target"]["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["TargetValue"] == 4.0
    metric = tracking["CustomizedMetricSpecification"]
    assert metric["MetricName"] == "ApproximateBacklogSizePerInstance" and metric["Namespace"] == "AWS/SageMaker"
    assert metric["Dimensions"] == [{"Name": "EndpointName", "Value": dep.endpoint_name}]
    assert (tracking["ScaleInCooldown"], tracking["ScaleOutCooldown"]) == (600, 300)
    step = policies["rk-test-wake-from-zero"]
    assert step["PolicyType"] == "StepScaling"
    assert step["StepScalingPolicyConfiguration"]["StepAdjustments"] == [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]
    (alarm,) = cw.describe_alarms(AlarmNames=[dep.alarm_name])["MetricAlarms"]
    assert alarm["MetricName"] == "HasBacklogWithoutCapacity" and alarm["Namespace"] == "AWS/SageMaker"
    assert alarm["Dimensions"] == [{"Name": "EndpointName", "Value": dep.endpoint_name}]
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold" and alarm["Threshold"] == 1.0
    assert alarm["AlarmActions"] == [step["PolicyARN"]]


def test_min_capacity_above_zero_needs_no_wake_alarm(aws):
    dep = deploy(make_spec(aws, autoscaling={"min_capacity": 1}), aws, progress=False)
    assert dep.alarm_name is None and dep.scaling_policy_names == ["rk-test-backlog-target"]
    assert aws.client("cloudwatch").describe_alarms()["MetricAlarms"] == []


def test_serverless_kind_has_no_async_config_topics_or_scaling(aws):
    dep = deploy(make_spec(aws, kind="serverless"), aws, progress=False)
    sm = aws.client("sagemaker")
    config = sm.describe_endpoint_config(EndpointConfigName=dep.endpoint_config_name)
    assert "AsyncInferenceConfig" not in config
    assert config["ProductionVariants"][0]["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
    assert aws.client("sns").list_topics()["Topics"] == []
    assert aws.client("application-autoscaling").describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []
    assert dep.notification_queue_url is None and dep.output_path is None


# -- preflight -------------------------------------------------------------------------------------
def test_preflight_refuses_oci_manifest_before_creating_anything(aws):
    uri = push_image(aws, tag="oci", media_type=OCI)
    spec = make_spec(aws, image_uri=uri)
    with pytest.raises(DeployError) as info:
        deploy(spec, aws, progress=False)
    message = str(info.value)
    assert OCI in message and "skopeo copy --format v2s2" in message and "oci-mediatypes=false" in message
    assert aws.client("s3").list_buckets()["Buckets"] == []
    assert aws.client("sagemaker").list_models()["Models"] == []


def test_preflight_missing_image_other_region_missing_artifact_untrusted_role(aws):
    push_image(aws)
    account = aws.account_id()
    with pytest.raises(DeployError, match="not found in ECR"):
        deploy(make_spec(aws, image_uri=f"{account}.dkr.ecr.us-east-1.amazonaws.com/roomkit:nope"), aws, progress=False)
    with pytest.raises(DeployError, match="is in ECR region eu-west-1 but the endpoint is in us-east-1"):
        deploy(make_spec(aws, image_uri=f"{account}.dkr.ecr.eu-west-1.amazonaws.com/roomkit:local"), aws, progress=False)
    aws.client("s3").create_bucket(Bucket="artifacts-elsewhere")
    with pytest.raises(DeployError, match="model artifact s3://artifacts-elsewhere/none/model.tar.gz cannot be read"):
        deploy(make_spec(aws, model_config=None, model_data_url="s3://artifacts-elsewhere/none/model.tar.gz"),
               aws, progress=False)
    role = aws.client("iam").create_role(RoleName="lambda-only", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }))["Role"]["Arn"]
    with pytest.raises(DeployError, match="cannot be assumed by SageMaker"):
        deploy(make_spec(aws, role_arn=role), aws, progress=False)
    assert aws.client("sagemaker").list_models()["Models"] == []


def test_existing_artifact_and_role_are_used_not_owned(aws):
    s3, iam = aws.client("s3"), aws.client("iam")
    s3.create_bucket(Bucket="team-artifacts")
    s3.put_object(Bucket="team-artifacts", Key="m/model.tar.gz", Body=b"\x1f\x8b")
    role = iam.create_role(RoleName="team-sagemaker", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }))["Role"]["Arn"]
    spec = make_spec(aws, model_config=None, model_data_url="s3://team-artifacts/m/model.tar.gz", role_arn=role)
    dep = deploy(spec, aws, progress=False)
    assert dep.role_arn == role and dep.role_name is None
    assert not any(o.startswith("role:") for o in dep.owned)
    teardown(dep, aws, everything=True, progress=False)
    assert iam.get_role(RoleName="team-sagemaker")["Role"]["Arn"] == role
    assert s3.head_object(Bucket="team-artifacts", Key="m/model.tar.gz")


def test_a_packaged_artifact_is_uploaded_to_the_deployment_bucket_and_deployed(aws, tmp_path):
    """upload_model_artifact (notebook 07: an archive with learned weights) puts it where deploy
    puts the ones it packages, content-addressed; deploying it reuses the bucket as roomkit's, and
    teardown everything removes it with the rest."""
    from roomkit.aws.deploy import upload_model_artifact
    from roomkit.serving.artifacts import ArtifactError, package_model

    from learned_support import make_model_dir

    model = make_model_dir(tmp_path / "model")
    artifact = package_model({"backend": "hybrid"}, tmp_path / "model.tar.gz", model_dir=model)
    spec = make_spec(aws)
    url = upload_model_artifact(artifact, spec, aws, progress=False)
    bucket = resource_names("rk-test", aws.account_id(), aws.region)["bucket"]
    assert url.startswith(f"s3://{bucket}/models/rk-test/") and url.endswith("/model.tar.gz")
    s3 = aws.client("s3")
    assert s3.get_object(Bucket=bucket, Key=url.split("/", 3)[3])["Body"].read() == artifact.read_bytes()
    assert upload_model_artifact(artifact, spec, aws, progress=False) == url  # same bytes, same key
    dep = deploy(make_spec(aws, model_config=None, model_data_url=url), aws, progress=False)
    assert dep.model_data_url == url and f"bucket:{bucket}" in dep.owned
    teardown(dep, aws, everything=True, progress=False)
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    (tmp_path / "junk.tar.gz").write_bytes(b"not an archive")
    with pytest.raises(ArtifactError, match="cannot read model artifact"):
        upload_model_artifact(tmp_path / "junk.tar.gz", spec, aws, progress=False)


# -- teardown --------------------------------------------------------------------------------------
def _inventory(aws):
    sm = aws.client("sagemaker")
    return {
        "buckets": [b["Name"] for b in aws.client("s3").list_buckets()["Buckets"]],
        "topics": aws.client("sns").list_topics()["Topics"],
        "queues": aws.client("sqs").list_queues().get("QueueUrls", []),
        "roles": [r["RoleName"] for r in aws.client("iam").list_roles()["Roles"]],
        "endpoints": sm.list_endpoints()["Endpoints"],
        "endpoint_configs": sm.list_endpoint_configs()["EndpointConfigs"],
        "models": sm.list_models()["Models"],
        "scalable_targets": aws.client("application-autoscaling").describe_scalable_targets(
            ServiceNamespace="sagemaker")["ScalableTargets"],
        "scaling_policies": aws.client("application-autoscaling").describe_scaling_policies(
            ServiceNamespace="sagemaker")["ScalingPolicies"],
        "alarms": aws.client("cloudwatch").describe_alarms()["MetricAlarms"],
    }


def test_teardown_everything_leaves_nothing_and_is_safe_to_rerun(aws, tmp_path):
    dep = deploy(make_spec(aws), aws, progress=False)
    aws.client("s3").put_object(Bucket=dep.bucket, Key="async-outputs/x.out", Body=b"{}")
    removed = teardown(dep, aws, everything=True, progress=False)
    for what in ("alarm", "scaling policy", "scalable target", "endpoint rk-test", "endpoint config", "model",
                 "queue", "topic", "role", "bucket"):
        assert any(line.startswith(f"removed {what}") for line in removed), what
    assert all(v == [] for v in _inventory(aws).values()), _inventory(aws)
    assert teardown(dep, aws, everything=True, progress=False) == []


def test_teardown_default_keeps_data_and_plumbing(aws):
    dep = deploy(make_spec(aws), aws, progress=False)
    removed = teardown(dep, aws, progress=False)
    assert "removed endpoint rk-test" in removed
    left = _inventory(aws)
    assert left["endpoints"] == left["models"] == left["endpoint_configs"] == left["alarms"] == []
    assert dep.bucket in left["buckets"] and len(left["topics"]) == 2 and len(left["queues"]) == 1
    assert "rk-test-sagemaker-exec" in left["roles"]
    # and a redeploy brings it back from the kept pieces
    again = deploy(make_spec(aws), aws, progress=False)
    assert aws.client("sagemaker").describe_endpoint(EndpointName=again.endpoint_name)["EndpointStatus"] == "InService"


def test_teardown_never_deletes_a_bucket_roomkit_did_not_create(aws):
    names = resource_names("rk-test", aws.account_id(), aws.region)
    aws.client("s3").create_bucket(Bucket=names["bucket"])
    aws.client("s3").put_object(Bucket=names["bucket"], Key="precious.txt", Body=b"keep")
    dep = deploy(make_spec(aws), aws, progress=False)
    assert f"bucket:{names['bucket']}" not in dep.owned
    teardown(dep, aws, everything=True, progress=False)
    assert aws.client("s3").get_object(Bucket=names["bucket"], Key="precious.txt")["Body"].read() == b"keep"


def test_role_with_the_same_name_not_created_by_roomkit_is_refused(aws):
    aws.client("iam").create_role(RoleName="rk-test-sagemaker-exec", AssumeRolePolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": []}))
    with pytest.raises(DeployError, match="exists but was not created by roomkit"):
        deploy(make_spec(aws), aws, progress=False)


# -- manifest --------------------------------------------------------------------------------------
def test_manifest_errors_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="no deployment manifest at .*roomkit deploy"):
        Deployment.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="cannot read deployment manifest"):
        Deployment.load(tmp_path / "bad.json")
    (tmp_path / "partial.json").write_text(json.dumps({"name": "x", "mode": "local"}))
    with pytest.raises(ConfigError, match="lacks .*endpoint_name"):
        Deployment.load(tmp_path / "partial.json")


# -- CLI -------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_cli_deploy_trigger_teardown_round_trip(aws, moto_url, tmp_path, monkeypatch, capsys):
    from roomkit.cli import main

    state = tmp_path / "local.json"
    state.write_text(json.dumps({"endpoints": {"default": moto_url}}))
    monkeypatch.setenv("ROOMKIT_LOCAL_STATE", str(state))
    uri = push_image(aws)
    (tmp_path / "detector.json").write_text(json.dumps({"min_room_area": 0.002}))
    spec = tmp_path / "plans.yaml"
    spec.write_text(f"name: rk-cli\nimage_uri: {uri}\nmodel_config: detector.json\n"
                    "autoscaling:\n  max_capacity: 2\n")
    assert main(["deploy", str(spec), "--mode", "local", "--no-progress"]) == 0
    manifest = tmp_path / "plans.deployment.json"
    out = capsys.readouterr().out
    assert "endpoint   rk-cli (async, local mode" in out and str(manifest) in out
    dep = Deployment.load(manifest)
    assert aws.client("sagemaker").describe_endpoint(EndpointName=dep.endpoint_name)["EndpointStatus"] == "InService"

    assert main(["trigger", "deploy", "--deployment", str(manifest)]) == 0
    assert Deployment.load(manifest).trigger.target == "sqs"
    assert main(["teardown", "--deployment", str(manifest), "--all"]) == 0
    out = capsys.readouterr().out
    assert "removed endpoint rk-cli" in out and "removed queue" in out
    assert Deployment.load(manifest).trigger is None
    assert main(["teardown", "--deployment", str(manifest), "--all"]) == 0
    assert "nothing left to remove" in capsys.readouterr().out
    assert all(v == [] for v in _inventory(aws).values())

    spec.write_text("name: rk-cli\nkind: turbo\nmodel_config: detector.json\n")
    assert main(["deploy", str(spec)]) == 2
    assert "kind must be one of" in capsys.readouterr().err


def test_someone_elses_endpoint_with_the_same_name_is_not_touched(aws):
    spec = make_spec(aws)
    first = deploy(spec, aws, progress=False)
    sm = aws.client("sagemaker")
    sm.create_endpoint_config(EndpointConfigName="hand-made", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": first.model_name, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName="other-team", EndpointConfigName="hand-made")
    with pytest.raises(DeployError, match="endpoint other-team exists and was not created by roomkit"):
        deploy(make_spec(aws, name="other-team"), aws, progress=False)
    # and teardown of "rk" leaves the configs/models of a deployment named "rk-test" alone
    short = deploy(make_spec(aws, name="rk"), aws, progress=False)
    removed = teardown(short, aws, progress=False)
    assert not any("rk-test" in line for line in removed)
    assert sm.describe_endpoint_config(EndpointConfigName=first.endpoint_config_name)
    assert sm.describe_model(ModelName=first.model_name)


def test_own_endpoint_on_a_config_roomkit_did_not_name_is_moved_onto_a_fresh_one(aws, monkeypatch):
    # The endpoint carries this deployment's owner tag but serves a hand-made config: deploy
    # updates it onto a config of its own, tagged with the spec's tags (it used to crash here,
    # building those tags from the endpoint's tag list).
    first = deploy(make_spec(aws, tags={"team": "plans"}), aws, progress=False)
    stamp = _freeze(monkeypatch)
    from roomkit.aws.deploy import _async_config, _hash, _variant  # noqa: PLC2701 (compute expected name)

    spec = make_spec(aws, tags={"team": "plans"})
    body = {"ProductionVariants": [_variant(spec, first.model_name)],
            "AsyncInferenceConfig": _async_config(spec, first.output_path, first.failure_path,
                                                  (first.success_topic_arn, first.error_topic_arn), None)}
    config_hash = _hash(body, 10)
    new_name = f"rk-test-cfg-{config_hash}-{stamp}"
    sm = aws.client("sagemaker")
    stub = Stubber(sm)
    stub.add_response("describe_model", {"ModelName": first.model_name, "ModelArn": "arn:aws:sagemaker:us-east-1:123456789012:model/m",
                                         "CreationTime": datetime(2026, 1, 1), "ExecutionRoleArn": first.role_arn})
    stub.add_response("describe_endpoint", _endpoint("InService", "hand-made"), {"EndpointName": "rk-test"})
    stub.add_response("list_tags", {"Tags": [{"Key": "roomkit:deployment", "Value": "rk-test"}]},
                      {"ResourceArn": first.endpoint_arn})
    stub.add_response("create_endpoint_config",
                      {"EndpointConfigArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/{new_name}"},
                      {"EndpointConfigName": new_name, **body,
                       "Tags": [{"Key": "roomkit:config-hash", "Value": config_hash},
                                {"Key": "roomkit:deployment", "Value": "rk-test"}, {"Key": "team", "Value": "plans"}]})
    stub.add_response("update_endpoint", {"EndpointArn": first.endpoint_arn},
                      {"EndpointName": "rk-test", "EndpointConfigName": new_name})
    stub.add_response("describe_endpoint", _endpoint("InService", new_name), {"EndpointName": "rk-test"})
    with stub:
        dep = deploy(spec, PartlyStubbed(aws, sagemaker=sm), progress=False, poll_s=0)
    stub.assert_no_pending_responses()
    assert dep.endpoint_config_name == new_name
    assert f"updating endpoint rk-test: hand-made -> {new_name}" in dep.changes


def test_kms_key_and_realtime_kind(aws):
    kms = aws.client("kms")
    key = kms.create_key(Description="roomkit test")["KeyMetadata"]
    kms.create_alias(AliasName="alias/roomkit-test", TargetKeyId=key["KeyId"])
    dep = deploy(make_spec(aws, async_inference={"kms_key_id": "alias/roomkit-test"}), aws, progress=False)
    sm, s3, iam_client = aws.client("sagemaker"), aws.client("s3"), aws.client("iam")
    config = sm.describe_endpoint_config(EndpointConfigName=dep.endpoint_config_name)
    assert config["AsyncInferenceConfig"]["OutputConfig"]["KmsKeyId"] == key["Arn"]
    rule = s3.get_bucket_encryption(Bucket=dep.bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key["Arn"]}
    doc = iam_client.get_role_policy(RoleName=dep.role_name, PolicyName="roomkit-endpoint")["PolicyDocument"]
    doc = doc if isinstance(doc, dict) else json.loads(doc)
    assert any(st.get("Sid") == "UseKmsKey" and st["Resource"] == key["Arn"] for st in doc["Statement"])
    with pytest.raises(DeployError, match="kms_key_id 'alias/nope' cannot be resolved"):
        deploy(make_spec(aws, async_inference={"kms_key_id": "alias/nope"}), aws, progress=False)

    rt = deploy(make_spec(aws, name="rk-rt", kind="realtime", instance_count=2), aws, progress=False)
    config = sm.describe_endpoint_config(EndpointConfigName=rt.endpoint_config_name)
    assert "AsyncInferenceConfig" not in config and config["ProductionVariants"][0]["InitialInstanceCount"] == 2
    assert rt.scaling_resource_id is None and rt.success_topic_arn is None


# -- robustness: eventual consistency, failed rollbacks, log groups ---------------------------------
def test_a_just_created_config_that_cannot_be_found_yet_is_retried(aws):
    from roomkit.aws.deploy import start_endpoint_rollout

    sm = aws.client("sagemaker")
    stub = Stubber(sm)
    missing = "Could not find endpoint configuration arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/rk-test-cfg-1."
    stub.add_client_error("create_endpoint", "ValidationException", missing, 400)
    stub.add_client_error("create_endpoint", "ValidationException", missing, 400)
    stub.add_response("create_endpoint", {"EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/rk-test"},
                      {"EndpointName": "rk-test", "EndpointConfigName": "rk-test-cfg-1", "Tags": []})
    slept = []
    with stub:
        start_endpoint_rollout(sm, "rk-test", "rk-test-cfg-1", update=False, tags=[], patience_s=60, sleep=slept.append)
    stub.assert_no_pending_responses()
    assert slept == [1.0, 2.0]
    # other errors, and the same error once the patience is spent, are not retried
    stub.add_client_error("update_endpoint", "ValidationException", "Could not find endpoint \"rk-test\".", 400)
    with stub, pytest.raises(Exception, match="Could not find endpoint"):
        start_endpoint_rollout(sm, "rk-test", "rk-test-cfg-1", update=True, tags=[], patience_s=60, sleep=slept.append)
    stub.add_client_error("update_endpoint", "ValidationException", missing, 400)
    with stub, pytest.raises(Exception, match="Could not find endpoint configuration"):
        start_endpoint_rollout(sm, "rk-test", "rk-test-cfg-1", update=True, tags=[], patience_s=0, sleep=slept.append)
    assert slept == [1.0, 2.0]


def test_update_rollback_failed_ends_the_wait_with_the_reason(aws):
    from roomkit.aws.deploy import wait_for_endpoint

    sm = aws.client("sagemaker")
    stub = Stubber(sm)
    stub.add_response("describe_endpoint", _endpoint("Updating", "c"))
    stub.add_response("describe_endpoint", _endpoint("UpdateRollbackFailed", "c", "Rollback failed: capacity"))
    with stub, pytest.raises(DeployError, match="UpdateRollbackFailed: the update and its automatic rollback both "
                                                 r"failed \(Rollback failed: capacity\)"):
        wait_for_endpoint(sm, "rk-test", timeout=3600, poll_s=0, progress=False)
    stub.assert_no_pending_responses()


def test_deploy_updates_an_endpoint_left_in_update_rollback_failed_even_with_the_same_config(aws, monkeypatch):
    first = deploy(make_spec(aws), aws, progress=False)
    stamp = _freeze(monkeypatch)
    sm = aws.client("sagemaker")
    stub = Stubber(sm)
    stub.add_response("describe_model", {"ModelName": first.model_name, "ModelArn": "arn:aws:sagemaker:us-east-1:123456789012:model/m",
                                         "CreationTime": datetime(2026, 1, 1), "ExecutionRoleArn": first.role_arn})
    stub.add_response("describe_endpoint", _endpoint("UpdateRollbackFailed", first.endpoint_config_name, "mixed"))
    new_name = first.endpoint_config_name.rsplit("-", 1)[0] + f"-{stamp}"
    stub.add_response("create_endpoint_config", {"EndpointConfigArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/n"},
                      {"EndpointConfigName": new_name, "ProductionVariants": ANY, "AsyncInferenceConfig": ANY, "Tags": ANY})
    stub.add_response("update_endpoint", {"EndpointArn": first.endpoint_arn},
                      {"EndpointName": "rk-test", "EndpointConfigName": new_name})
    stub.add_response("describe_endpoint", _endpoint("InService", new_name))
    with stub:
        dep = deploy(make_spec(aws), PartlyStubbed(aws, sagemaker=sm), progress=False, poll_s=0)
    stub.assert_no_pending_responses()
    assert dep.endpoint_config_name == new_name
    assert any("UpdateRollbackFailed (mixed): a new update restores one config" in line for line in dep.changes)


def test_teardown_everything_removes_the_endpoint_and_function_log_groups(aws):
    from roomkit.aws.deploy import deploy_trigger

    dep = deploy(make_spec(aws), aws, progress=False)
    trig = deploy_trigger(dep, aws, target="lambda", progress=False)
    logs = aws.client("logs")
    groups = [f"/aws/sagemaker/Endpoints/{dep.endpoint_name}", f"/aws/lambda/{trig.function_name}", "/aws/other-app"]
    for group in groups:  # what SageMaker and Lambda create when they run
        logs.create_log_group(logGroupName=group)
    teardown(dep, aws, progress=False)
    assert len(logs.describe_log_groups()["logGroups"]) == 3  # the default teardown keeps logs
    removed = teardown(dep, aws, everything=True, progress=False)
    assert f"removed log group {groups[0]}" in removed and f"removed log group {groups[1]}" in removed
    assert [g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]] == ["/aws/other-app"]
    assert teardown(dep, aws, everything=True, progress=False) == []


# -- serverless: the container keeps within the platform's limits ----------------------------------
def test_serverless_model_gets_the_platforms_timeout_and_payload_limits(aws):
    dep = deploy(make_spec(aws, kind="serverless"), aws, progress=False)
    env = aws.client("sagemaker").describe_model(ModelName=dep.model_name)["PrimaryContainer"]["Environment"]
    assert env["SAGEMAKER_MODEL_SERVER_TIMEOUT"] == "55"  # answers before the 60 s cut-off
    assert env["SAGEMAKER_MAX_REQUEST_SIZE"] == str(4 * 1024 * 1024)
    lower = deploy(make_spec(aws, name="rk-sl", kind="serverless",
                             environment={"SAGEMAKER_MODEL_SERVER_TIMEOUT": "30"}), aws, progress=False)
    env = aws.client("sagemaker").describe_model(ModelName=lower.model_name)["PrimaryContainer"]["Environment"]
    assert env["SAGEMAKER_MODEL_SERVER_TIMEOUT"] == "30"
    realtime = deploy(make_spec(aws, name="rk-rt2", kind="realtime"), aws, progress=False)
    env = aws.client("sagemaker").describe_model(ModelName=realtime.model_name)["PrimaryContainer"].get("Environment", {})
    assert "SAGEMAKER_MODEL_SERVER_TIMEOUT" not in env
