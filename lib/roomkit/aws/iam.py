"""Least-privilege IAM documents for the endpoint's execution role and the upload trigger.

Pure functions returning policy dicts: no AWS calls, so tests can read every statement. Each
statement has a ``Sid`` naming why it exists. ``Resource: "*"`` appears only where AWS accepts
nothing narrower (``ecr:GetAuthorizationToken``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

VERSION = "2012-10-17"


def partition_for(region: str) -> str:
    """``aws``, ``aws-cn`` or ``aws-us-gov``: the ARN partition of ``region``."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def trust_policy(service: str) -> dict[str, Any]:
    """Role trust policy letting ``service`` (e.g. ``sagemaker.amazonaws.com``) assume the role."""
    return {
        "Version": VERSION,
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
        ],
    }


def allows_service(document: Any, service: str) -> bool:
    """Whether a trust policy (dict or JSON string) lets ``service`` call ``sts:AssumeRole``."""
    import json
    from urllib.parse import unquote

    if isinstance(document, str):
        try:
            document = json.loads(unquote(document))
        except ValueError:
            return False
    statements = document.get("Statement", []) if isinstance(document, dict) else []
    if isinstance(statements, dict):
        statements = [statements]
    for st in statements:
        if not isinstance(st, dict) or st.get("Effect") != "Allow":
            continue
        actions = st.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if not any(a in ("sts:AssumeRole", "sts:*", "*") for a in actions):
            continue
        principal = st.get("Principal", {})
        services = principal.get("Service", []) if isinstance(principal, dict) else []
        services = [services] if isinstance(services, str) else services
        if service in services:
            return True
    return False


def s3_object_arn(partition: str, bucket: str, prefix: str) -> str:
    return f"arn:{partition}:s3:::{bucket}/{prefix}*"


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str  # key prefix ("" for the whole bucket), or an exact key when exact=True
    exact: bool = False

    def arn(self, partition: str) -> str:
        if self.exact:
            return f"arn:{partition}:s3:::{self.bucket}/{self.prefix}"
        return s3_object_arn(partition, self.bucket, self.prefix)


def _list_bucket_statements(sid: str, partition: str, locations: Iterable[S3Location]) -> list[dict]:
    """``s3:ListBucket`` per bucket, limited to the given prefixes (so a missing object reads as
    404 rather than 403, without exposing the rest of the bucket)."""
    by_bucket: dict[str, list[str]] = {}
    for loc in locations:
        by_bucket.setdefault(loc.bucket, [])
        pattern = loc.prefix if loc.exact else loc.prefix + "*"
        if pattern not in by_bucket[loc.bucket]:
            by_bucket[loc.bucket].append(pattern)
    out = []
    for i, (bucket, prefixes) in enumerate(sorted(by_bucket.items())):
        out.append({
            "Sid": f"{sid}{i}" if len(by_bucket) > 1 else sid,
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": f"arn:{partition}:s3:::{bucket}",
            "Condition": {"StringLike": {"s3:prefix": sorted(prefixes)}},
        })
    return out


def execution_role_policy(
    *,
    region: str,
    account: str,
    endpoint_name: str,
    model_artifact: S3Location | None,
    inputs: list[S3Location],
    outputs: list[S3Location],
    topic_arns: list[str],
    ecr_repository_arn: str,
    kms_key_arn: str | None = None,
) -> dict[str, Any]:
    """Inline policy of the SageMaker execution role: exactly what the endpoint does.

    It reads the model artifact and the input prefix(es), writes the output and failure
    prefixes, publishes to the success/error topics, pulls the one ECR repository and writes the
    endpoint's CloudWatch logs (and uses the KMS key when one is configured).
    """
    p = partition_for(region)
    log_group = f"arn:{p}:logs:{region}:{account}:log-group:/aws/sagemaker/Endpoints/{endpoint_name}"
    reads = ([model_artifact] if model_artifact else []) + list(inputs)
    statements: list[dict[str, Any]] = [
        {
            "Sid": "ReadModelAndInputs",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": sorted({loc.arn(p) for loc in reads}),
        },
        {
            "Sid": "WriteOutputsAndFailures",
            "Effect": "Allow",
            "Action": ["s3:PutObject", "s3:AbortMultipartUpload"],
            "Resource": sorted({loc.arn(p) for loc in outputs}),
        },
        *_list_bucket_statements("ListOwnPrefixes", p, reads + list(outputs)),
    ]
    if topic_arns:
        statements.append({
            "Sid": "PublishNotifications",
            "Effect": "Allow",
            "Action": "sns:Publish",
            "Resource": sorted(set(topic_arns)),
        })
    statements += [
        {
            "Sid": "PullServingImage",
            "Effect": "Allow",
            "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
            "Resource": ecr_repository_arn,
        },
        {
            # AWS defines no resource for this action: it must be "*".
            "Sid": "EcrLoginRequiresStar",
            "Effect": "Allow",
            "Action": "ecr:GetAuthorizationToken",
            "Resource": "*",
        },
        {
            "Sid": "WriteEndpointLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            "Resource": [log_group, f"{log_group}:log-stream:*"],
        },
    ]
    if kms_key_arn:
        statements.append({
            "Sid": "UseKmsKey",
            "Effect": "Allow",
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
            "Resource": kms_key_arn,
        })
    return {"Version": VERSION, "Statement": statements}


def trigger_read_policy(*, region: str, bucket: str, prefix: str) -> dict[str, Any]:
    """Extra execution-role policy while an upload trigger exists: the endpoint reads the
    uploaded plans in place (``InputLocation`` points at them)."""
    p = partition_for(region)
    loc = S3Location(bucket, prefix)
    return {
        "Version": VERSION,
        "Statement": [
            {"Sid": "ReadTriggerUploads", "Effect": "Allow", "Action": "s3:GetObject", "Resource": loc.arn(p)},
            *_list_bucket_statements("ListTriggerUploads", p, [loc]),
        ],
    }


def trigger_function_policy(
    *,
    region: str,
    account: str,
    endpoint_name: str,
    bucket: str,
    prefix: str,
    claims_prefix: str | None,
    function_name: str,
    dead_letter_queue_arn: str | None = None,
) -> dict[str, Any]:
    """Inline policy of the trigger Lambda's role: invoke this one endpoint asynchronously, read
    the upload prefix, keep its idempotency claims, write its own logs, and hand events it gave
    up on to its dead-letter queue."""
    p = partition_for(region)
    # SageMaker endpoint ARNs carry the name in lower case.
    endpoint_arn = f"arn:{p}:sagemaker:{region}:{account}:endpoint/{endpoint_name.lower()}"
    log_group = f"arn:{p}:logs:{region}:{account}:log-group:/aws/lambda/{function_name}"
    statements: list[dict[str, Any]] = [
        {"Sid": "InvokeThisEndpointAsync", "Effect": "Allow",
         "Action": "sagemaker:InvokeEndpointAsync", "Resource": endpoint_arn},
        {"Sid": "ReadUploads", "Effect": "Allow", "Action": "s3:GetObject",
         "Resource": s3_object_arn(p, bucket, prefix)},
    ]
    if claims_prefix:
        statements.append({"Sid": "KeepIdempotencyClaims", "Effect": "Allow",
                           "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                           "Resource": s3_object_arn(p, bucket, claims_prefix)})
    statements.append({"Sid": "WriteFunctionLogs", "Effect": "Allow",
                       "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                       "Resource": [log_group, f"{log_group}:log-stream:*"]})
    if dead_letter_queue_arn:
        statements.append({"Sid": "SendFailedEventsToDeadLetterQueue", "Effect": "Allow",
                           "Action": "sqs:SendMessage", "Resource": dead_letter_queue_arn})
    return {"Version": VERSION, "Statement": statements}


def wildcard_findings(document: dict[str, Any], *, allowed: Iterable[str] = ("ecr:GetAuthorizationToken",)) -> list[str]:
    """Problems a reviewer would flag: wildcard actions, ``Resource: "*"`` outside ``allowed``
    actions, ``*FullAccess``. Empty list = clean. Used by the tests and by ``deploy`` itself."""
    allowed = set(allowed)
    problems = []
    for st in document.get("Statement", []):
        sid = st.get("Sid", "?")
        actions = st.get("Action", [])
        actions = [actions] if isinstance(actions, str) else list(actions)
        resources = st.get("Resource", [])
        resources = [resources] if isinstance(resources, str) else list(resources)
        if "NotAction" in st or "NotResource" in st:
            problems.append(f"{sid}: NotAction/NotResource")
        for a in actions:
            if "*" in a:
                problems.append(f"{sid}: wildcard action {a}")
            if "FullAccess" in a:
                problems.append(f"{sid}: {a}")
        if "*" in resources and not set(actions) <= allowed:
            problems.append(f"{sid}: Resource '*' for {', '.join(actions)}")
        if not st.get("Sid"):
            problems.append("statement without Sid")
    return problems
