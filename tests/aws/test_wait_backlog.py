"""``wait`` over large backlogs, against local mode's moto server (indexed SQS) on loopback.

Completions are announced the way SageMaker does it (object written, then an SNS message that
the topics deliver to the deployment's queue), thousands at a time, before ``wait`` starts:
the state a batch is in when ``wait`` is called after a long ``submit``. Checked: the CPU that
``wait`` costs grows in proportion to the notifications (a ratio between two sizes, not a
time); every job completes exactly once when notifications are duplicated or lost (the lost
ones found by listing the batch prefix, not one HEAD per job); several readers drain a backlog.
"""
from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timezone

import pytest

import roomkit.aws
from roomkit.aws import submit as sub
from roomkit.aws.jobs import FAILED, SUCCESS, Job
from moto_fixtures import moto  # noqa: F401  (fixture)
from roomkit.plans.response import Detection
from roomkit.aws.target import AsyncTarget

BUCKET = "rk-backlog"


class Backlog:
    """An async deployment's S3 paths, topics and queue, and a way to finish jobs in bulk."""

    def __init__(self, session):
        self.session = session
        self.s3, self.sns, self.sqs = session.client("s3"), session.client("sns"), session.client("sqs")
        self.s3.create_bucket(Bucket=BUCKET)
        self.topics = {ok: self.sns.create_topic(Name=f"rk-{name}")["TopicArn"]
                       for ok, name in ((True, "success"), (False, "error"))}
        self.queue_url = self.sqs.create_queue(QueueName="rk-notes")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        for topic in self.topics.values():
            self.sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
        self.target = AsyncTarget(endpoint_name="rk-ep", input_uri=f"s3://{BUCKET}/in/",
                                  output_uri=f"s3://{BUCKET}/out/", failure_uri=f"s3://{BUCKET}/fail/",
                                  queue_url=self.queue_url)

    def jobs(self, n: int, batch: str = "batch-1") -> list[Job]:
        now = datetime.now(timezone.utc)
        return [Job(input=f"plan{i}.png", s3_input_uri=f"s3://{BUCKET}/in/plan{i}.png",
                    inference_id=f"{i:040x}-{batch[-6:]}",
                    output_location=f"s3://{BUCKET}/out/{batch}/{i:040x}-{batch[-6:]}.out",
                    failure_location=f"s3://{BUCKET}/fail/{batch}/{i:040x}-{batch[-6:]}-error.out",
                    submitted_at=now, content_type="image/png", endpoint_name="rk-ep",
                    plan_key=f"{i:040x}", batch=batch)
                for i in range(n)]

    def finish(self, jobs, *, ok=True, notify=1, write=True) -> None:
        """Write each job's object, then publish its notification ``notify`` times (0: lost)."""
        body = Detection(width=10, height=10, rooms=(), processing_time_ms=1.0).to_json().encode()
        for job in jobs if write else ():
            uri = job.output_location if ok else job.failure_location
            self.s3.put_object(Bucket=BUCKET, Key=uri.split("/", 3)[3], Body=body)
        messages = [json.dumps(_message(job, ok)) for job in jobs for _ in range(notify)]
        for start in range(0, len(messages), 10):
            self.sns.publish_batch(TopicArn=self.topics[ok], PublishBatchRequestEntries=[
                {"Id": str(i), "Message": m} for i, m in enumerate(messages[start:start + 10])])

    def depth(self) -> int:
        a = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["All"])["Attributes"]
        return int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"])


def _message(job: Job, ok: bool) -> dict:
    msg = {"invocationStatus": "Completed" if ok else "Failed", "inferenceId": job.inference_id,
           "eventSource": "aws:sagemaker", "eventName": "InferenceResult",
           "eventTime": "2026-01-01T00:00:00.000Z",
           "requestParameters": {"endpointName": job.endpoint_name, "inputLocation": job.s3_input_uri},
           "responseParameters": {"contentType": "application/json"}}
    if ok:
        msg["responseParameters"]["outputLocation"] = job.output_location
    else:
        msg["failureReason"] = "ClientError: Received client error (400) from primary"
        msg["responseParameters"]["failureLocation"] = job.failure_location
    return msg


@pytest.fixture
def backlog(moto):
    moto.reset()
    return Backlog(roomkit.aws.session("local", endpoints={"default": moto.url}))


def _calls(session, operation: str) -> list[str]:
    """Names of the threads that made each ``operation`` call from now on."""
    seen: list[str] = []
    session.boto.events.register(f"before-call.{operation}", lambda **_: seen.append(threading.current_thread().name))
    return seen


def _wait_cpu(backlog: Backlog, n: int, batch: str) -> float:
    jobs = backlog.jobs(n, batch)
    backlog.finish(jobs, write=False)
    t0 = time.process_time()
    done = sub.wait(jobs, backlog.target, backlog.session, timeout=300, poll_interval=1, progress=False)
    spent = time.process_time() - t0
    assert done.done and len(done.completions) == n and backlog.depth() == 0
    assert {c.source for c in done.completions.values()} == {"notification"}
    return spent


def test_wait_cpu_grows_in_proportion_to_the_queued_notifications(backlog):
    small = _wait_cpu(backlog, 400, "batch-small")
    large = _wait_cpu(backlog, 2000, "batch-large")
    # 5x the notifications: about 5x the CPU (client and moto's threads, this process) when a
    # receive costs the same however long the queue; 25x when each scans the queue (moto's own).
    assert large / small < 10, (small, large)


def test_exactly_once_with_duplicated_and_lost_notifications(backlog):
    jobs = backlog.jobs(300)
    twice, once, lost, failed_lost = jobs[:100], jobs[100:200], jobs[200:280], jobs[280:]
    backlog.finish(twice, notify=2)
    backlog.finish(once)
    backlog.finish(lost, notify=0)
    backlog.finish(failed_lost, ok=False, notify=0)
    heads, lists = _calls(backlog.session, "s3.HeadObject"), _calls(backlog.session, "s3.ListObjectsV2")

    done = sub.wait(jobs, backlog.target, backlog.session, timeout=120, poll_interval=1, fallback_after=1.5,
                    progress=False)
    assert done.done and len(done.completions) == 300
    assert sorted(done.completions) == sorted(j.inference_id for j in jobs)
    source = {i: c.source for i, c in done.completions.items()}
    status = {i: c.status for i, c in done.completions.items()}
    assert all(source[j.inference_id] == "notification" for j in twice + once)
    assert all(source[j.inference_id] == "s3" and status[j.inference_id] == SUCCESS for j in lost)
    assert all(source[j.inference_id] == "s3" and status[j.inference_id] == FAILED for j in failed_lost)
    assert done.duplicates <= 100
    # The lost ones were found by listing the batch's output and failure prefixes, not by 100 HEADs.
    assert heads == [] and 2 <= len(lists) <= 6, (len(heads), len(lists))
    rows = sub.results(done, backlog.target, backlog.session)
    assert [r.status for r in rows].count(SUCCESS) == 280 and [r.status for r in rows].count(FAILED) == 20

    # The duplicates still queued belong to finished jobs: a later wait on the same jobs
    # consumes them without recording anything twice.
    again = sub.wait(done, backlog.target, backlog.session, timeout=2, poll_interval=1, progress=False)
    assert again.completions == done.completions


def test_several_readers_drain_a_backlog_and_leave_others_messages(backlog):
    jobs = backlog.jobs(600)
    backlog.finish(jobs)
    theirs = backlog.jobs(30, "batch-other")  # another client's batch in the same queue
    backlog.finish(theirs)
    receives = _calls(backlog.session, "sqs.ReceiveMessage")
    done = sub.wait(jobs, backlog.target, backlog.session, timeout=120, poll_interval=1,
                    foreign_visibility_s=0, readers=4, progress=False)
    assert done.done and len(done.completions) == 600 and done.duplicates == 0
    assert len(set(receives)) >= 2, set(receives)  # helpers joined while batches came back full
    assert len(receives) <= 600 // 10 * 2 + 30  # about one call per ten notifications
    assert backlog.depth() == 30  # only the other client's notifications are left
    one = sub.wait(backlog.jobs(1, "batch-none"), backlog.target, backlog.session, timeout=0.5,
                   poll_interval=1, readers=1, progress=False)
    assert one.timed_out and len(one.pending) == 1
