"""The local trigger runner: S3 upload → bucket notification → SQS queue tagged
``roomkit:trigger-env`` → the real :func:`roomkit.aws.trigger.process_event` → the async runtime,
with Lambda's SQS partial-batch semantics (failed records stay on the queue and come back)."""
from __future__ import annotations

import json
import time

import pytest

from local_testkit import make_endpoint, plan_png, read_notifications
from roomkit.local import TRIGGER_TAG, LocalAWS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def aws():
    with LocalAWS(workers=2, trigger=True, trigger_interval_s=0.2) as local:
        yield local


def _trigger_queue(session, bucket: str, env: dict | str, visibility: int = 1) -> str:
    s3, sqs = session.client("s3"), session.client("sqs")
    tag = env if isinstance(env, str) else json.dumps(env)
    url = sqs.create_queue(QueueName=f"{bucket}-uploads", Attributes={"VisibilityTimeout": str(visibility)},
                           tags={TRIGGER_TAG: tag})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"],
                                 "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "blueprints/"}]}}}]})
    return url


def _visible(session, url: str) -> int:
    attrs = session.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])
    return int(attrs["Attributes"]["ApproximateNumberOfMessages"]) + int(
        attrs["Attributes"]["ApproximateNumberOfMessagesNotVisible"])


def test_upload_is_detected_once_and_a_failed_record_is_retried(aws):
    session = aws.session()
    s3 = session.client("s3")
    name = "trig-late"
    bucket = "rk-trigger-late"
    s3.create_bucket(Bucket=bucket)
    queue = _trigger_queue(session, bucket, {"ENDPOINT_NAME": name, "INPUT_PREFIX": "blueprints/",
                                             "CLAIMS_PREFIX": "off"})
    # the endpoint does not exist yet: the handler reports the record failed, it stays queued
    s3.put_object(Bucket=bucket, Key="blueprints/first plan.png", Body=plan_png(), ContentType="image/png")
    s3.put_object(Bucket=bucket, Key="blueprints/notes.txt", Body=b"not a plan")
    deadline = time.monotonic() + 20
    while aws.trigger.failed == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert aws.trigger.failed >= 1
    assert _visible(session, queue) == 1, "the failed record is kept, the skipped one deleted"

    ep = make_endpoint(session, name=name, bucket=bucket)  # now it exists: the retry goes through
    notes = read_notifications(session, ep.queue_url, 1, timeout=30, settle=2.0)
    assert [n["requestParameters"]["inputLocation"] for n in notes] == [f"s3://{bucket}/blueprints/first plan.png"]
    assert notes[0]["invocationStatus"] == "Completed"
    assert notes[0]["requestParameters"]["contentType"] == "image/png"
    assert _visible(session, queue) == 0


def test_misconfigured_trigger_queue_keeps_its_messages(aws):
    session = aws.session()
    s3 = session.client("s3")
    bucket = "rk-trigger-broken"
    s3.create_bucket(Bucket=bucket)
    queue = _trigger_queue(session, bucket, "{not json", visibility=30)
    waiting = _visible(session, queue)  # S3's s3:TestEvent, sent when the notification is set
    s3.put_object(Bucket=bucket, Key="blueprints/a.png", Body=plan_png(), ContentType="image/png")
    time.sleep(1.5)  # several runner passes
    assert _visible(session, queue) == waiting + 1, "nothing consumed from a queue whose handler cannot start"
    assert queue in aws.trigger.config_errors
    # repaired: a valid environment (REQUEST_TTL_SECONDS out of range is refused by TriggerConfig)
    session.client("sqs").tag_queue(QueueUrl=queue, Tags={TRIGGER_TAG: json.dumps(
        {"ENDPOINT_NAME": "x", "REQUEST_TTL_SECONDS": "5"})})
    deadline = time.monotonic() + 15
    while "REQUEST_TTL_SECONDS" not in aws.trigger.config_errors.get(queue, "") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "REQUEST_TTL_SECONDS" in aws.trigger.config_errors.get(queue, "")
    assert _visible(session, queue) == waiting + 1
