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
    assert "UseKmsKey" not in sids


def test_star_resource_only_where_aws_requires_it():
    doc = _policy(kms=f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234")
    stars = [st for st in doc["Statement"] if st["Resource"] == "*" or "*" in st["Resource"]]
    assert [st["Action"] for st in stars] == ["ecr:GetAuthorizationToken"]
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


def test_trigger_function_policy_has_no_wildcard_resources():
    doc = iam.trigger_function_policy(region=REGION, account=ACCOUNT, endpoint_name="Plans", bucket="bkt-a",
                                      prefix="blueprints/", claims_prefix=".roomkit/claims/", function_name="plans-trigger")
    assert iam.wildcard_findings(doc, allowed=()) == []
    sids = _by_sid(doc)
    assert sids["InvokeThisEndpointAsync"]["Resource"] == f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/plans"
    assert sids["ReadUploads"]["Resource"] == "arn:aws:s3:::bkt-a/blueprints/*"


def test_deployed_role_carries_the_same_clean_policy(aws):
    spec = DeploymentSpec.from_dict({"name": "rk-iam", "image_uri": push_image(aws),
                                     "model_config": {"min_room_area": 0.002}})
    dep = deploy(spec, aws, progress=False)
    client = aws.client("iam")
    assert client.list_attached_role_policies(RoleName=dep.role_name)["AttachedPolicies"] == []
    doc = client.get_role_policy(RoleName=dep.role_name, PolicyName="roomkit-endpoint")["PolicyDocument"]
    doc = json.loads(doc) if isinstance(doc, str) else doc
    assert iam.wildcard_findings(doc) == []
    sids = _by_sid(doc)
    assert sids["PublishNotifications"]["Resource"] == sorted([dep.success_topic_arn, dep.error_topic_arn])
    assert f"arn:aws:s3:::{dep.bucket}/async-inputs/*" in sids["ReadModelAndInputs"]["Resource"]
    assert sids["PullServingImage"]["Resource"] == f"arn:aws:ecr:{aws.region}:{dep.account_id}:repository/roomkit"
