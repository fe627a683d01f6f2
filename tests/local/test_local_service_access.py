"""The runtime's direct access to moto's S3 and SNS behaves like the boto3 path it replaces.

Each check does the same thing once through boto3 over HTTP (what the runtime used to do) and
once through :mod:`roomkit.local.service_access`, and compares what a user can observe: stored
bytes and content type, S3 event notifications, SNS deliveries, and error codes.
"""
from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from roomkit.local.service_access import BackendS3, BackendSNS

from moto_fixtures import aws, moto_url  # noqa: F401 (fixtures)


def _code(call) -> str:
    with pytest.raises(ClientError) as info:
        call()
    return info.value.response["Error"]["Code"]


@pytest.fixture
def clients(aws):  # noqa: F811
    s3, sns, sqs = (aws.client(s) for s in ("s3", "sns", "sqs"))
    account = aws.client("sts").get_caller_identity()["Account"]
    s3.create_bucket(Bucket="svc-bucket")
    return s3, sns, sqs, BackendS3(account, "us-east-1"), BackendSNS()


def test_put_is_visible_to_boto3_with_its_content_type(clients):
    s3, _, _, direct, _ = clients
    direct.put_object(Bucket="svc-bucket", Key="out/a.out", Body=b'{"rooms": []}', ContentType="application/json")
    got = s3.get_object(Bucket="svc-bucket", Key="out/a.out")
    assert got["Body"].read() == b'{"rooms": []}'
    assert got["ContentType"] == "application/json"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="svc-bucket")["Contents"]] == ["out/a.out"]


def test_get_and_head_read_what_boto3_wrote(clients):
    s3, _, _, direct, _ = clients
    s3.put_object(Bucket="svc-bucket", Key="in/plan.png", Body=b"\x89PNG" + bytes(100), ContentType="image/png")
    assert direct.get_object(Bucket="svc-bucket", Key="in/plan.png")["Body"].read() == b"\x89PNG" + bytes(100)
    head = direct.head_object(Bucket="svc-bucket", Key="in/plan.png")
    assert head["ContentLength"] == 104 and head["ContentType"] == "image/png"


@pytest.mark.parametrize("op", ["head_object", "get_object"])
@pytest.mark.parametrize("bucket", ["svc-bucket", "no-such-bucket-here"])
def test_missing_objects_and_buckets_raise_the_same_codes_as_boto3(clients, op, bucket):
    s3, _, _, direct, _ = clients
    expected = _code(lambda: getattr(s3, op)(Bucket=bucket, Key="missing"))
    assert _code(lambda: getattr(direct, op)(Bucket=bucket, Key="missing")) == expected


def test_put_into_a_missing_bucket_raises_like_boto3(clients):
    s3, _, _, direct, _ = clients
    expected = _code(lambda: s3.put_object(Bucket="no-such-bucket-here", Key="k", Body=b"x"))
    assert _code(lambda: direct.put_object(Bucket="no-such-bucket-here", Key="k", Body=b"x")) == expected


def test_put_sends_the_buckets_event_notification(clients):
    """Outputs written by the runtime must still fire S3 notifications (a user may chain on them)."""
    s3, _, sqs, direct, _ = clients
    queue = sqs.create_queue(QueueName="svc-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(Bucket="svc-bucket", NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"],
                                 "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "out/"}]}}}]})
    sqs.purge_queue(QueueUrl=queue)  # moto sends a test event on configuration
    s3.put_object(Bucket="svc-bucket", Key="out/by-boto3.out", Body=b"{}", ContentType="application/json")
    direct.put_object(Bucket="svc-bucket", Key="out/by-backend.out", Body=b"{}", ContentType="application/json")
    direct.put_object(Bucket="svc-bucket", Key="elsewhere/x.out", Body=b"{}")  # filtered out
    records = []
    for _ in range(5):
        msgs = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        records += [r for m in msgs for r in json.loads(m["Body"]).get("Records", [])]
        if len(records) >= 2:
            break
    by_key = {r["s3"]["object"]["key"]: r for r in records}
    # keys arrive URL-encoded, as S3 sends them, by either path
    assert sorted(by_key) == ["out%2Fby-backend.out", "out%2Fby-boto3.out"]
    assert by_key["out%2Fby-backend.out"]["eventName"] == by_key["out%2Fby-boto3.out"]["eventName"]


def test_publish_reaches_subscribers_like_boto3(clients):
    _, sns, sqs, _, direct = clients
    topic = sns.create_topic(Name="svc-topic")["TopicArn"]
    queue = sqs.create_queue(QueueName="svc-notes")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    sns.publish(TopicArn=topic, Message='{"via": "boto3"}')
    direct.publish(TopicArn=topic, Message='{"via": "backend"}')
    bodies = []
    for _ in range(5):
        bodies += [m["Body"] for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10,
                                                          WaitTimeSeconds=1).get("Messages", [])]
        if len(bodies) >= 2:
            break
    assert sorted(bodies) == ['{"via": "backend"}', '{"via": "boto3"}']


def test_publish_to_a_missing_topic_raises_like_boto3(clients):
    _, sns, _, _, direct = clients
    topic = sns.create_topic(Name="svc-gone")["TopicArn"]
    sns.delete_topic(TopicArn=topic)
    expected = _code(lambda: sns.publish(TopicArn=topic, Message="x"))
    assert _code(lambda: direct.publish(TopicArn=topic, Message="x")) == expected
    assert _code(lambda: direct.publish(TopicArn="not-an-arn", Message="x")) == "InvalidParameter"
