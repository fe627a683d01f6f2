"""The IAM documents roomkit deploys: least privilege, named statements, no wildcards."""
from __future__ import annotations

import json

import pytest

from moto_fixtures import aws, moto_url, push_image  # noqa: F401  (fixtures)
from roomkit.aws import iam
from roomkit.aws.deploy import deploy
from roomkit.aws.spec import DeploymentSpec

ACCOUNT, REGION = "123456789012", "eu-west-1"


def _policy(kms=None):
    return iam.execution_role_policy(
        region=REGION, account=ACCOUNT, endpoint_name="plans",
        model_artifact=iam.S3Location("bkt-a", "models/plans/abc/model.tar.gz", exact=True),
        inputs=[iam.S3Location("bkt-a", "async-inputs/")],
        outputs=[iam.S3Location("bkt-a", "async-outputs/"), iam.S3Location("bkt-b", "failures/")],
        topic_arns=[f"arn:aws:sns:{REGION}:{ACCOUNT}:plans-success", f"arn:aws:sns:{REGION}:{ACCOUNT}:plans-error"],
        ecr_repository_arn=f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/roomkit",
        kms_key_arn=kms,
    )


def _by_sid(doc):
    return {st["Sid"]: st for st in doc["Statement"]}


def _actions(st):
    return [st["Action"]] if isinstance(st["Action"], str) else st["Action"]


def _action_map(doc):
    """Sid -> sorted actions: what every statement allows, asserted whole."""
    return {st["Sid"]: sorted(_actions(st)) for st in doc["Statement"]}


LOGS = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"]
EXECUTION_ACTIONS = {
    "ReadModelAndInputs": ["s3:GetObject"],
    "WriteOutputsAndFailures": ["s3:AbortMultipartUpload", "s3:PutObject"],
    "ListOwnPrefixes0": ["s3:ListBucket"],
    "ListOwnPrefixes1": ["s3:ListBucket"],
    "PublishNotifications": ["sns:Publish"],
    "PullServingImage": ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
    "EcrLoginRequiresStar": ["ecr:GetAuthorizationToken"],
    "WriteEndpointLogs": LOGS,
    "PublishSageMakerMetrics": ["cloudwatch:PutMetricData"],
}
KMS_ACTIONS = {
    "UseKmsKey": ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"],
    "GrantKmsKeyToSageMakerResources": ["kms:CreateGrant"],
}


def test_execution_policy_grants_exactly_the_endpoints_needs():
    doc = _policy()
    assert iam.wildcard_findings(doc) == []
    sids = _by_sid(doc)
    assert len(sids) == len(doc["Statement"])  # every statement named, names unique
    assert sids["ReadModelAndInputs"]["Action"] == "s3:GetObject"
    assert sorted(sids["ReadModelAndInputs"]["Resource"]) == [
        "arn:aws:s3:::bkt-a/async-inputs/*", "arn:aws:s3:::bkt-a/models/plans/abc/model.tar.gz"]
    assert sids["WriteOutputsAndFailures"]["Resource"] == ["arn:aws:s3:::bkt-a/async-outputs/*", "arn:aws:s3:::bkt-b/failures/*"]
    assert "s3:GetObject" not in _actions(sids["WriteOutputsAndFailures"])
    assert sids["PublishNotifications"]["Action"] == "sns:Publish" and len(sids["PublishNotifications"]["Resource"]) == 2
    assert sids["PullServingImage"]["Resource"] == f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/roomkit"
    assert sids["WriteEndpointLogs"]["Resource"][0].endswith("log-group:/aws/sagemaker/Endpoints/plans")
    # ListBucket only on the deployment's own prefixes, per bucket
    lists = [st for st in doc["Statement"] if st["Action"] == "s3:ListBucket"]
    assert {st["Resource"] for st in lists} == {"arn:aws:s3:::bkt-a", "arn:aws:s3:::bkt-b"}
    assert all("s3:prefix" in st["Condition"]["StringLike"] for st in lists)
    assert _action_map(doc) == EXECUTION_ACTIONS


def test_metrics_are_allowed_only_in_sagemakers_namespaces():
    st = _by_sid(_policy())["PublishSageMakerMetrics"]
    assert st["Resource"] == "*"  # PutMetricData has no resource type ...
    assert st["Condition"] == {"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*"]}}  # ... the namespace scopes it
    bare = {"Statement": [{"Sid": "M", "Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*"}]}
    assert iam.wildcard_findings(bare) == ["M: Resource '*' for cloudwatch:PutMetricData"]
    mixed = {"Statement": [{**st, "Action": ["cloudwatch:PutMetricData", "cloudwatch:PutMetricAlarm"]}]}
    assert iam.wildcard_findings(mixed) != []


def test_kms_key_adds_use_and_grant_for_aws_resources_only():
    key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234"
    doc = _policy(kms=key)
    assert _action_map(doc) == {**EXECUTION_ACTIONS, **KMS_ACTIONS}
    grant = _by_sid(doc)["GrantKmsKeyToSageMakerResources"]
    assert grant["Resource"] == key and grant["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}
    assert iam.wildcard_findings(doc) == []


def test_transform_policy_writes_only_the_transform_job_logs():
    doc = iam.transform_job_policy(region=REGION, account=ACCOUNT)
    assert _action_map(doc) == {"WriteTransformJobLogs": LOGS}
    group = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/sagemaker/TransformJobs"
    assert doc["Statement"][0]["Resource"] == [group, f"{group}:log-stream:*"]
    assert iam.wildcard_findings(doc, allowed=()) == []


def test_star_resource_only_where_aws_requires_it():
    doc = _policy(kms=f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234")
    stars = [st for st in doc["Statement"] if st["Resource"] == "*" or "*" in st["Resource"]]
    assert [st["Action"] for st in stars] == ["ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"]
    assert "Condition" in stars[1]
    for st in doc["Statement"]:
        assert all("*" not in a for a in _actions(st)), st
        assert not any("FullAccess" in a for a in _actions(st))
    assert _by_sid(doc)["UseKmsKey"]["Resource"] == f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234"


@pytest.mark.parametrize("bad, finding", [
    ({"Sid": "A", "Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"}, "wildcard action s3:*"),
    ({"Sid": "B", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}, "Resource '*' for s3:GetObject"),
    ({"Effect": "Allow", "Action": "sns:Publish", "Resource": "arn:aws:sns:r:1:t"}, "statement without Sid"),
    ({"Sid": "C", "Effect": "Allow", "NotAction": "iam:*", "Resource": "arn:aws:s3:::b"}, "NotAction"),
])
def test_findings_catch_over_broad_statements(bad, finding):
    findings = iam.wildcard_findings({"Statement": [bad]})
    assert any(finding in f for f in findings), findings


def test_trust_policy_check():
    assert iam.allows_service(iam.trust_policy("sagemaker.amazonaws.com"), "sagemaker.amazonaws.com")
    assert not iam.allows_service(iam.trust_policy("lambda.amazonaws.com"), "sagemaker.amazonaws.com")
    as_text = json.dumps({"Statement": {"Effect": "Allow", "Action": ["sts:AssumeRole"],
                                        "Principal": {"Service": ["ec2.amazonaws.com", "sagemaker.amazonaws.com"]}}})
    assert iam.allows_service(as_text, "sagemaker.amazonaws.com")
    denied = {"Statement": [{"Effect": "Deny", "Action": "sts:AssumeRole", "Principal": {"Service": "sagemaker.amazonaws.com"}}]}
    assert not iam.allows_service(denied, "sagemaker.amazonaws.com")


def test_partition_follows_region():
    assert iam.partition_for("cn-north-1") == "aws-cn"
    assert iam.partition_for("us-gov-west-1") == "aws-us-gov"
    assert iam.partition_for("eu-west-1") == "aws"


TRIGGER_ACTIONS = {
    "InvokeThisEndpointAsync": ["sagemaker:InvokeEndpointAsync"],
    "ReadUploads": ["s3:GetObject"],
    "KeepIdempotencyClaims": ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
    "ListUploadsAndClaims": ["s3:ListBucket"],
    "WriteFunctionLogs": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
}


def test_trigger_function_policy_has_no_wildcard_resources():
    doc = iam.trigger_function_policy(region=REGION, account=ACCOUNT, endpoint_name="Plans", bucket="bkt-a",
                                      prefix="blueprints/", claims_prefix=".roomkit/claims/", function_name="plans-trigger")
    assert iam.wildcard_findings(doc, allowed=()) == []
    assert _action_map(doc) == TRIGGER_ACTIONS
    sids = _by_sid(doc)
    assert sids["InvokeThisEndpointAsync"]["Resource"] == f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/plans"
    assert sids["ReadUploads"]["Resource"] == "arn:aws:s3:::bkt-a/blueprints/*"
    # without ListBucket S3 answers HeadObject on a deleted upload with 403, not 404
    listing = sids["ListUploadsAndClaims"]
    assert listing["Resource"] == "arn:aws:s3:::bkt-a"
    assert listing["Condition"] == {"StringLike": {"s3:prefix": [".roomkit/claims/*", "blueprints/*"]}}


def test_trigger_function_policy_records_refusals_and_uses_the_kms_key():
    key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234"
    topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:plans-error"
    doc = iam.trigger_function_policy(region=REGION, account=ACCOUNT, endpoint_name="plans", bucket="bkt-a",
                                      prefix="blueprints/", claims_prefix=".roomkit/claims/", function_name="plans-trigger",
                                      dead_letter_queue_arn=f"arn:aws:sqs:{REGION}:{ACCOUNT}:dlq",
                                      failure_location=iam.S3Location("bkt-a", "async-failures/"),
                                      error_topic_arn=topic, kms_key_arn=key)
    assert _action_map(doc) == {
        **TRIGGER_ACTIONS,
        "WriteRefusedUploadFailures": ["s3:PutObject"],
        "PublishRefusedUploadErrors": ["sns:Publish"],
        "SendFailedEventsToDeadLetterQueue": ["sqs:SendMessage"],
        "UseKmsKey": ["kms:Decrypt", "kms:GenerateDataKey"],  # S3 reads and writes under the key; no grants
    }
    sids = _by_sid(doc)
    assert sids["WriteRefusedUploadFailures"]["Resource"] == "arn:aws:s3:::bkt-a/async-failures/*"
    assert sids["PublishRefusedUploadErrors"]["Resource"] == topic and sids["UseKmsKey"]["Resource"] == key
    assert iam.wildcard_findings(doc, allowed=()) == []


def test_deployed_role_carries_the_same_clean_policy(aws):
    spec = DeploymentSpec.from_dict({"name": "rk-iam", "image_uri": push_image(aws),
                                     "model_config": {"min_room_area": 0.002}})
    dep = deploy(spec, aws, progress=False)
    client = aws.client("iam")
    assert client.list_attached_role_policies(RoleName=dep.role_name)["AttachedPolicies"] == []
    doc = client.get_role_policy(RoleName=dep.role_name, PolicyName="roomkit-endpoint")["PolicyDocument"]
    doc = json.loads(doc) if isinstance(doc, str) else doc
    assert iam.wildcard_findings(doc) == []
    assert _action_map(doc) == {**{k: v for k, v in EXECUTION_ACTIONS.items() if not k.startswith("ListOwnPrefixes")},
                                "ListOwnPrefixes": ["s3:ListBucket"]}  # one bucket
    sids = _by_sid(doc)
    assert sids["PublishNotifications"]["Resource"] == sorted([dep.success_topic_arn, dep.error_topic_arn])
    assert f"arn:aws:s3:::{dep.bucket}/async-inputs/*" in sids["ReadModelAndInputs"]["Resource"]
    assert sids["PullServingImage"]["Resource"] == f"arn:aws:ecr:{aws.region}:{dep.account_id}:repository/roomkit"
