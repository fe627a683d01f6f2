"""DeploymentSpec: loading from YAML/JSON/notebook parameters, validation naming the bad field."""
from __future__ import annotations

import json

import pytest

from roomkit.aws.spec import DeploymentSpec, parse_ecr_uri
from roomkit.errors import ConfigError

IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/roomkit:1.0"
BASE = {"name": "plans", "image_uri": IMAGE, "model_data_url": "s3://bkt-x/models/model.tar.gz"}


def test_defaults_match_the_documented_async_and_serverless_settings():
    spec = DeploymentSpec.from_dict(BASE)
    assert spec.kind == "async" and spec.instance_count == 1
    assert spec.serverless.memory_size_mb == 2048 and spec.serverless.max_concurrency == 5
    assert spec.autoscaling.min_capacity == 0 and spec.autoscaling.enabled
    assert spec.async_inference.input_prefix == "async-inputs/"
    assert DeploymentSpec(name="plans").model_config == {}  # no model source: default detector config


def test_yaml_file_with_nested_sections_and_relative_model_config(tmp_path):
    (tmp_path / "detector.yaml").write_text("min_room_area: 0.003\n")
    (tmp_path / "spec.yaml").write_text(
        f"name: plans\nimage_uri: {IMAGE}\nmodel_config: detector.yaml\nkind: async\n"
        "async:\n  max_concurrent_invocations_per_instance: 2\n  output_path: s3://out-bkt/results\n"
        "  include_inference_response_in: [SUCCESS_NOTIFICATION_TOPIC, ERROR_NOTIFICATION_TOPIC]\n"
        "autoscaling:\n  max_capacity: 4\n  target_backlog_per_instance: 3\n"
    )
    spec = DeploymentSpec.from_file(tmp_path / "spec.yaml")
    assert spec.model_config == str(tmp_path / "detector.yaml")
    assert spec.async_inference.max_concurrent_invocations_per_instance == 2
    assert spec.async_inference.output_path == "s3://out-bkt/results/"
    assert spec.async_inference.include_inference_response_in == (
        "SUCCESS_NOTIFICATION_TOPIC", "ERROR_NOTIFICATION_TOPIC")
    assert spec.autoscaling.max_capacity == 4 and spec.autoscaling.target_backlog_per_instance == 3
    # the round trip through the manifest form is lossless
    assert DeploymentSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


def test_json_file_and_notebook_parameters(tmp_path):
    (tmp_path / "spec.json").write_text(json.dumps({**BASE, "kind": "serverless", "serverless": {"memory_size_mb": 4096}}))
    assert DeploymentSpec.from_file(tmp_path / "spec.json").serverless.memory_size_mb == 4096
    params = {**BASE, "mode": "local", "max_capacity": 3, "autoscaling_min_capacity": 1,
              "max_concurrent_invocations_per_instance": 6, "kms_key_id": None}
    spec = DeploymentSpec.from_params(params, ignore=("mode",))
    assert spec.autoscaling.max_capacity == 3 and spec.autoscaling.min_capacity == 1
    assert spec.async_inference.max_concurrent_invocations_per_instance == 6
    assert spec.async_inference.kms_key_id is None


@pytest.mark.parametrize("change, message", [
    ({"name": "Plans_1"}, "name must be 1-24 lowercase"),
    ({"name": "x" * 25}, "name must be 1-24"),
    ({"image_uri": "docker.io/library/roomkit:1"}, "image_uri must be an ECR image URI"),
    ({"model_config": {"min_room_area": 0.01}}, "give only one of model_data_url"),
    ({"model_data_url": None, "model_config": {"min_room_aera": 0.01}}, "model_config: unknown detector config key.*min_room_aera"),
    ({"model_data_url": "s3://bkt-x/model.zip"}, "model_data_url must point to a .tar.gz"),
    ({"model_data_url": "https://bkt-x/model.tar.gz"}, "model_data_url must be an s3://"),
    ({"kind": "batch"}, "kind must be one of async, serverless, realtime"),
    ({"instance_type": "m5.large"}, "instance_type must be a SageMaker instance type"),
    ({"instance_count": 0}, "instance_count must be between 1 and 100"),
    ({"instance_count": 3}, r"instance_count \(3\) must be <= autoscaling.max_capacity \(2\)"),
    ({"role_arn": "my-role"}, "role_arn must be an IAM role ARN"),
    ({"environment": {"A": 1}}, "environment must map strings to strings"),
    ({"instnce_type": "ml.m5.large"}, "unknown deployment setting 'instnce_type' .did you mean 'instance_type'"),
    ({"autoscaling": {"max_capacty": 3}}, "unknown deployment setting 'autoscaling.max_capacty'"),
    ({"autoscaling": {"min_capacity": 3, "max_capacity": 2}}, r"autoscaling.max_capacity \(2\) must be >= autoscaling.min_capacity \(3\)"),
    ({"autoscaling": {"target_backlog_per_instance": "5"}}, "autoscaling.target_backlog_per_instance must be a number"),
    ({"autoscaling": {"scale_in_cooldown_s": -1}}, "autoscaling.scale_in_cooldown_s must be between"),
    ({"serverless": {"memory_size_mb": 1000}}, "serverless.memory_size_mb must be one of 1024, 2048"),
    ({"serverless": {"max_concurrency": 500}}, "serverless.max_concurrency must be between 1 and 200"),
    ({"async_inference": {"output_path": "bucket/out"}}, "async_inference.output_path must be an s3://"),
    ({"async_inference": {"output_path": "s3://b-x/o", "failure_path": "s3://b-x/o/"}}, "failure_path must differ"),
    ({"async_inference": {"max_concurrent_invocations_per_instance": 0}}, "max_concurrent_invocations_per_instance must be between 1 and 1000"),
    ({"async_inference": {"success_topic_arn": "arn:aws:sqs:us-east-1:123456789012:q"}}, "success_topic_arn must be an sns ARN"),
    ({"async_inference": {"include_inference_response_in": ["BOTH"]}}, "include_inference_response_in must hold only"),
    ({"async_inference": {"input_prefix": "/abs/"}}, "async_inference.input_prefix must be a plain S3 key prefix"),
    ({"async": "fast"}, "async_inference must be a mapping"),
])
def test_validation_names_the_bad_field(change, message):
    data = {**BASE, **change}
    with pytest.raises(ConfigError, match=message):
        DeploymentSpec.from_dict(data)


def test_missing_name_and_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="name is required"):
        DeploymentSpec.from_dict({"image_uri": IMAGE})
    with pytest.raises(ConfigError, match="cannot read deployment spec"):
        DeploymentSpec.from_file(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        DeploymentSpec.from_file(tmp_path / "bad.yaml")
    (tmp_path / "typo.yaml").write_text(f"name: plans\nimage_uri: {IMAGE}\nmodel_data_url: s3://b-x/m.tar.gz\nkind: asynch\n")
    with pytest.raises(ConfigError, match=r"typo.yaml: kind must be one of"):
        DeploymentSpec.from_file(tmp_path / "typo.yaml")


def test_ecr_uri_parsing():
    assert parse_ecr_uri(IMAGE) == {"account": "123456789012", "region": "eu-west-1", "repo": "roomkit",
                                    "tag": "1.0", "digest": None}
    assert parse_ecr_uri("123456789012.dkr.ecr.us-east-1.amazonaws.com/team/roomkit")["tag"] == "latest"
    digest = "sha256:" + "a" * 64
    parsed = parse_ecr_uri(f"123456789012.dkr.ecr.us-east-1.amazonaws.com/team/roomkit@{digest}")
    assert parsed["repo"] == "team/roomkit" and parsed["digest"] == digest and parsed["tag"] is None
