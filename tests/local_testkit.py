"""Helpers shared by the tests/test_local_*.py modules: plans, endpoints, notification readers.

Plans are drawn with Pillow (walls as black strokes), small enough for hundreds of jobs; every
AWS resource is created through boto3 against the loopback services, as a user would.
"""
from __future__ import annotations

import io
import json
import os
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any, Iterable

from PIL import Image, ImageDraw

ROLE = "arn:aws:iam::123456789012:role/roomkit-local-test"


def plan_png(width: int = 200, height: int = 160, cells: int = 2) -> bytes:
    """A floor plan: outer wall plus a grid of inner walls, ``cells``² rooms."""
    img = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(img)
    t = max(3, width // 60)
    m = max(4, width // 40)
    draw.rectangle([m, m, width - m, height - m], outline=0, width=t)
    for i in range(1, cells):
        x = m + i * (width - 2 * m) // cells
        y = m + i * (height - 2 * m) // cells
        draw.line([x, m, x, height - m], fill=0, width=t)
        draw.line([m, y, width - m, y], fill=0, width=t)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


CORRUPT_PNG = b"\x89PNG\r\n\x1a\n" + b"not really a png" * 3  # the server answers 400


@dataclass
class Endpoint:
    name: str
    bucket: str
    success_topic: str
    error_topic: str
    queue_url: str  # receives both topics' notifications (raw delivery)
    output_path: str
    failure_path: str | None


def make_endpoint(
    session: Any,
    *,
    name: str | None = None,
    bucket: str | None = None,
    concurrency: int | None = 2,
    instances: int = 1,
    failure_path: bool = True,
    include_response_in: Iterable[str] = (),
    model_data_url: str | None = None,
    image: str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/roomkit:local",
    asynchronous: bool = True,
    failure_bucket: str | None = None,
) -> Endpoint:
    """Model + endpoint config (AsyncInferenceConfig with SNS topics) + endpoint, and an SQS queue
    subscribed to both topics, all through boto3. Failures go to ``bucket`` unless
    ``failure_bucket`` names another one (created too)."""
    suffix = uuid.uuid4().hex[:8]
    name = name or f"ep-{suffix}"
    bucket = bucket or f"rk-{suffix}"
    s3, sm, sns, sqs = (session.client(s) for s in ("s3", "sagemaker", "sns", "sqs"))
    for name_ in {bucket, failure_bucket or bucket}:
        try:
            s3.create_bucket(Bucket=name_)
        except s3.exceptions.BucketAlreadyOwnedByYou:
            pass
    ok = sns.create_topic(Name=f"{name}-ok")["TopicArn"]
    err = sns.create_topic(Name=f"{name}-err")["TopicArn"]
    queue = sqs.create_queue(QueueName=f"{name}-notes")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for topic in (ok, err):
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    container: dict[str, Any] = {"Image": image}
    if model_data_url:
        container["ModelDataUrl"] = model_data_url
    sm.create_model(ModelName=f"{name}-model", ExecutionRoleArn=ROLE, PrimaryContainer=container)
    output = f"s3://{bucket}/results"
    failures = f"s3://{failure_bucket or bucket}/failures" if failure_path else None
    cfg: dict[str, Any] = {
        "EndpointConfigName": f"{name}-config",
        "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": f"{name}-model",
                                "InstanceType": "ml.m5.large", "InitialInstanceCount": instances}],
    }
    if asynchronous:
        out_cfg: dict[str, Any] = {"S3OutputPath": output,
                                   "NotificationConfig": {"SuccessTopic": ok, "ErrorTopic": err}}
        if failures:
            out_cfg["S3FailurePath"] = failures
        if include_response_in:
            out_cfg["NotificationConfig"]["IncludeInferenceResponseIn"] = list(include_response_in)
        cfg["AsyncInferenceConfig"] = {"OutputConfig": out_cfg}
        if concurrency:
            cfg["AsyncInferenceConfig"]["ClientConfig"] = {"MaxConcurrentInvocationsPerInstance": concurrency}
    sm.create_endpoint_config(**cfg)
    sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")
    return Endpoint(name, bucket, ok, err, queue, output, failures)


def put_input(session: Any, bucket: str, key: str, body: bytes, content_type: str = "image/png") -> str:
    session.client("s3").put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
    return f"s3://{bucket}/{key}"


def read_notifications(session: Any, queue_url: str, count: int, timeout: float = 60.0,
                       settle: float = 0.0) -> list[dict]:
    """Receive (and delete) notifications until ``count`` arrived or ``timeout``; then keep
    listening ``settle`` seconds more so duplicates would be seen too."""
    sqs = session.client("sqs")
    got: list[dict] = []
    deadline = time.monotonic() + timeout
    extra_until = None
    while time.monotonic() < deadline:
        if len(got) >= count:
            if extra_until is None:
                extra_until = time.monotonic() + settle
            if time.monotonic() >= extra_until:
                break
        msgs = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        for m in msgs:
            got.append(json.loads(m["Body"]))
        if msgs:
            sqs.delete_message_batch(QueueUrl=queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)])
    return got


def list_keys(session: Any, bucket: str, prefix: str) -> list[str]:
    s3 = session.client("s3")
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(o["Key"] for o in page.get("Contents", []))
    return keys


def s3_read(session: Any, uri: str) -> tuple[bytes, str]:
    bucket, _, key = uri[len("s3://"):].partition("/")
    obj = session.client("s3").get_object(Bucket=bucket, Key=key)
    return obj["Body"].read(), obj.get("ContentType", "")


def port_closed(url: str) -> bool:
    host, port = url.split("//", 1)[1].split(":")
    try:
        with socket.create_connection((host, int(port.split("/")[0])), timeout=1):
            return False
    except OSError:
        return True


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie still answers kill(0); it holds no port and no CPU
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True
    return False


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group ``pgid``, read from /proc."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry))
    return members
