"""Local mode's indexed SQS queues (roomkit.local.sqs_index) against boto3 over HTTP.

The first tests check that a queue of the MotoServer that local mode runs still behaves as SQS
(and moto) does: visibility timeouts, receipt handles, delays, attribute counts, long polls,
redrive, purge, FIFO left alone. The last one checks the point of it: the CPU a drain costs grows
with the number of messages, not with its square (moto's own queue: a 500-message drain took 50 s
and a 1,000-message one 96 s on these cores; here the ratio is measured, not a time).
"""
from __future__ import annotations

import json
import threading
import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from moto_fixtures import moto  # noqa: F401  (fixture)


@pytest.fixture
def sqs(moto):
    moto.reset()
    return boto3.client("sqs", endpoint_url=moto.url, region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing", config=Config(retries={"max_attempts": 1}))


def _counts(sqs, url) -> tuple[int, int, int]:
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return (int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"]),
            int(a["ApproximateNumberOfMessagesDelayed"]))


def _receive(sqs, url, n=10, visibility=30, wait=0, **kw):
    return sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=n, VisibilityTimeout=visibility,
                               WaitTimeSeconds=wait, **kw).get("Messages", [])


def test_visibility_handles_and_counts_follow_sqs(sqs):
    url = sqs.create_queue(QueueName="plain")["QueueUrl"]
    for i in range(5):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{i}")
    assert _counts(sqs, url) == (5, 0, 0)

    first = _receive(sqs, url, n=3)
    assert [m["Body"] for m in first] == ["m0", "m1", "m2"]  # send order
    assert _counts(sqs, url) == (2, 3, 0)
    rest = _receive(sqs, url)
    assert sorted(m["Body"] for m in rest) == ["m3", "m4"]
    assert _receive(sqs, url) == []  # all five invisible now

    # Released at once by ChangeMessageVisibility(0), received again with a new handle; the old
    # handle still deletes it (moto's and SQS's rule), and deleting twice is harmless.
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=first[0]["ReceiptHandle"], VisibilityTimeout=0)
    again = _receive(sqs, url)
    assert [m["Body"] for m in again] == ["m0"] and again[0]["ReceiptHandle"] != first[0]["ReceiptHandle"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first[0]["ReceiptHandle"])
    sqs.delete_message(QueueUrl=url, ReceiptHandle=again[0]["ReceiptHandle"])
    result = sqs.delete_message_batch(QueueUrl=url, Entries=[
        {"Id": "a", "ReceiptHandle": first[1]["ReceiptHandle"]},
        {"Id": "b", "ReceiptHandle": "not-a-handle"},
    ])
    assert [s["Id"] for s in result["Successful"]] == ["a"]
    assert [(f["Id"], f["Code"]) for f in result["Failed"]] == [("b", "ReceiptHandleIsInvalid")]
    with pytest.raises(ClientError) as err:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle="not-a-handle", VisibilityTimeout=0)
    assert err.value.response["Error"]["Code"] == "ReceiptHandleIsInvalid"
    assert _counts(sqs, url) == (0, 3, 0)

    # Visibility 0: the message stays visible (handed out once per call, not twice in one call).
    sqs.purge_queue(QueueUrl=url)
    assert _counts(sqs, url) == (0, 0, 0)
    sqs.send_message(QueueUrl=url, MessageBody="again")
    got = [_receive(sqs, url, visibility=0) for _ in range(3)]
    assert [len(g) for g in got] == [1, 1, 1]
    handles = {g[0]["ReceiptHandle"] for g in got}
    assert len(handles) == 3
    attrs = sqs.receive_message(QueueUrl=url, VisibilityTimeout=0, AttributeNames=["All"])["Messages"][0]["Attributes"]
    assert attrs["ApproximateReceiveCount"] == "4"


def test_delays_long_polls_attributes_and_redrive(sqs):
    url = sqs.create_queue(QueueName="delays")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=1)
    assert _counts(sqs, url) == (0, 0, 1)
    assert _receive(sqs, url) == []
    # A long poll returns with the delayed message once it is due …
    assert [m["Body"] for m in _receive(sqs, url, wait=5)] == ["later"]
    # … and as soon as another client sends one.
    threading.Timer(0.5, lambda: sqs.send_message(
        QueueUrl=url, MessageBody="now", MessageAttributes={
            "kind": {"DataType": "String", "StringValue": "note"},
            "other": {"DataType": "String", "StringValue": "x"},
        })).start()
    t0 = time.monotonic()
    got = _receive(sqs, url, wait=10, MessageAttributeNames=["kind"])
    assert [m["Body"] for m in got] == ["now"] and time.monotonic() - t0 < 8
    assert set(got[0]["MessageAttributes"]) == {"kind"}

    dlq = sqs.create_queue(QueueName="dead")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    src = sqs.create_queue(QueueName="src", Attributes={
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})})["QueueUrl"]
    sqs.send_message(QueueUrl=src, MessageBody="poison")
    assert len(_receive(sqs, src, visibility=0)) == 1
    assert len(_receive(sqs, src, visibility=0)) == 1
    assert _receive(sqs, src, visibility=0) == []  # third receive: moved instead
    assert [m["Body"] for m in _receive(sqs, dlq)] == ["poison"]


def test_fifo_queues_stay_motos_own(sqs):
    from moto.sqs.models import sqs_backends

    from roomkit.local.sqs_index import IndexedQueue

    url = sqs.create_queue(QueueName="jobs.fifo", Attributes={"FifoQueue": "true",
                                                              "ContentBasedDeduplication": "true"})["QueueUrl"]
    plain = sqs.create_queue(QueueName="plain")["QueueUrl"]
    queues = sqs_backends["123456789012"]["us-east-1"].queues
    assert not isinstance(queues["jobs.fifo"], IndexedQueue) and isinstance(queues["plain"], IndexedQueue)
    for body in ("a", "b", "a"):  # the second "a" is a duplicate within 5 min
        sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId="g")
    got = _receive(sqs, url)
    assert [m["Body"] for m in got] == ["a", "b"]
    assert plain


def _drain_cpu(sqs, url, n: int) -> float:
    """Send ``n`` messages, then CPU seconds of this process (client + moto's threads) to drain them."""
    for start in range(0, n, 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "MessageBody": json.dumps({"n": start + i})} for i in range(min(10, n - start))])
    seen = set()
    t0 = time.process_time()
    while True:
        batch = _receive(sqs, url, visibility=30)
        if not batch:
            break
        seen.update(json.loads(m["Body"])["n"] for m in batch)
        sqs.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)])
    spent = time.process_time() - t0
    assert len(seen) == n and _counts(sqs, url) == (0, 0, 0)
    return spent


def test_draining_costs_cpu_in_proportion_to_the_messages(sqs):
    small = _drain_cpu(sqs, sqs.create_queue(QueueName="small")["QueueUrl"], 300)
    large = _drain_cpu(sqs, sqs.create_queue(QueueName="large")["QueueUrl"], 1500)
    # 5x the messages: about 5x the CPU when each call costs the same; moto's own queue (every
    # call scanning the whole queue) costs about 25x.
    assert large / small < 10, (small, large)
