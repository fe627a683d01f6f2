"""submit → wait → results against moto's server on loopback.

The unit part drives the public functions against moto (S3, SNS, SQS) with a recording
sagemaker-runtime on loopback that answers InvokeEndpointAsync as AWS does (and throttles when
told to); completions are published to the SNS topics in SageMaker's message shape, as the
real service and the local runtime do. The end-to-end part (test_submit_e2e.py) runs the real
local mode instead.
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

import roomkit.aws
from roomkit.aws import submit as sub
from roomkit.aws.transform import transform
from roomkit.errors import ConfigError, InputError
from roomkit.aws.jobs import Job, latency_stats, load_jobs, save_jobs, to_dataframe
from roomkit.aws.notifications import parse_notification
from roomkit.plans.response import Detection, Room
from roomkit.aws.target import AsyncTarget

BUCKET = "roomkit-submit-test"
PNG = b"\x89PNG\r\n\x1a\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- loopback services ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def moto_url():
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


class FakeRuntime:
    """InvokeEndpointAsync on loopback: records each call; can throttle or reject some.

    It answers 202 with OutputLocation/FailureLocation under the target's paths, as SageMaker
    does; it runs nothing (completions are published by the tests).
    """

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.throttle = 0  # answer this many next calls with 429 ThrottlingException
        self.reject_containing = ""  # 400 ValidationError for InputLocations containing this
        self.target: AsyncTarget | None = None
        self._lock = threading.Lock()
        runtime = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                with runtime._lock:
                    runtime.requests.append({"path": self.path, "body": body, **headers})
                    throttled = runtime.throttle > 0
                    if throttled:
                        runtime.throttle -= 1
                location = headers.get("x-amzn-sagemaker-inputlocation", "")
                if throttled:
                    return self._reply(429, {"message": "Rate exceeded"}, {"x-amzn-ErrorType": "ThrottlingException"})
                if runtime.reject_containing and runtime.reject_containing in location:
                    return self._reply(
                        400, {"message": f"Could not access {location}"}, {"x-amzn-ErrorType": "ValidationError"}
                    )
                iid = headers["x-amzn-sagemaker-inference-id"]
                t = runtime.target
                ext = headers.get("x-amzn-sagemaker-s3outputpathextension")
                sub_path = f"{ext}/" if ext else ""  # SageMaker: <S3OutputPath>/<extension>/<id>.out
                self._reply(
                    202,
                    {"InferenceId": iid},
                    {
                        "X-Amzn-SageMaker-OutputLocation": f"{t.output_uri}{sub_path}{iid}.out",
                        "X-Amzn-SageMaker-FailureLocation": f"{t.failure_uri}{sub_path}{iid}-error.out",
                    },
                )

            def _reply(self, status, body, headers):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def runtime():
    rt = FakeRuntime()
    try:
        yield rt
    finally:
        rt.close()


class Env:
    def __init__(self, session, target, topics):
        self.session = session
        self.target = target
        self.topics = topics
        self.s3 = session.client("s3")
        self.sns = session.client("sns")
        self.sqs = session.client("sqs")

    def complete(self, job: Job, *, ok: bool = True, body: bytes | None = None, publish: bool = True,
                 times: int = 1, reason: str | None = None, top_level_failure: bool = False) -> None:
        """Do what SageMaker does when an invocation ends: write the object, then notify."""
        uri = job.output_location if ok else job.failure_location
        bucket, key = uri[5:].split("/", 1)
        self.s3.put_object(Bucket=bucket, Key=key, Body=body if body is not None else response_body(3))
        if not publish:
            return
        message = sagemaker_message(job, ok=ok, reason=reason, top_level_failure=top_level_failure)
        for _ in range(times):
            self.sns.publish(TopicArn=self.topics[ok], Message=json.dumps(message))

    def queue_depth(self) -> int:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=self.target.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def sagemaker_message(job: Job, *, ok: bool, reason: str | None = None, top_level_failure: bool = False) -> dict:
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    msg = {
        "awsRegion": "us-east-1",
        "eventTime": now,
        "receivedTime": now,
        "invocationStatus": "Completed" if ok else "Failed",
        "requestParameters": {
            "accept": "application/json",
            "endpointName": job.endpoint_name,
            "inputLocation": job.s3_input_uri,
        },
        "responseParameters": {"contentType": "application/json"},
        "inferenceId": job.inference_id,
        "eventVersion": "1.0",
        "eventSource": "aws:sagemaker",
        "eventName": "InferenceResult",
    }
    if ok:
        msg["responseParameters"]["outputLocation"] = job.output_location
    else:
        msg["failureReason"] = reason or "ClientError: Received client error (400) from primary"
        if top_level_failure:
            msg["failureLocation"] = job.failure_location
        else:
            msg["responseParameters"]["failureLocation"] = job.failure_location
    return msg


def response_body(n_rooms: int, *, width: int = 400, height: int = 300) -> bytes:
    rooms = tuple(
        Room(id=f"room_{i:03d}", polygon=((10.0 + 100 * i, 10.0), (100.0 + 100 * i, 10.0), (100.0 + 100 * i, 200.0), (10.0 + 100 * i, 200.0)),
             area_px=90.0 * 190.0, confidence=0.9)
        for i in range(n_rooms)
    )
    det = Detection(width=width, height=height, rooms=rooms, processing_time_ms=12.5)
    return det.to_json().encode()


@pytest.fixture
def env(moto_url, runtime):
    requests.post(f"{moto_url}/moto-api/reset", timeout=10).raise_for_status()
    runtime.requests.clear()
    runtime.throttle = 0
    runtime.reject_containing = ""
    session = roomkit.aws.session("local", endpoints={"default": moto_url, "sagemaker-runtime": runtime.url})
    s3, sns, sqs = session.client("s3"), session.client("sns"), session.client("sqs")
    s3.create_bucket(Bucket=BUCKET)
    topics = {True: sns.create_topic(Name="rk-success")["TopicArn"], False: sns.create_topic(Name="rk-error")["TopicArn"]}
    queue_url = sqs.create_queue(QueueName="rk-notifications")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for arn in topics.values():
        sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn)
    target = AsyncTarget(
        endpoint_name="rk-test-endpoint",
        input_uri=f"s3://{BUCKET}/inputs/",
        output_uri=f"s3://{BUCKET}/outputs/",
        failure_uri=f"s3://{BUCKET}/failures/",
        queue_url=queue_url,
    )
    runtime.target = target
    return Env(session, target, topics)


def make_plans(tmp_path, n, prefix="plan"):
    paths = []
    for i in range(n):
        p = tmp_path / f"{prefix}_{i}.png"
        p.write_bytes(PNG + os.urandom(32))
        paths.append(p)
    return paths


# -- notification parsing -------------------------------------------------------------------------
def test_parse_notification_sns_envelope_raw_and_foreign():
    job = Job("a.png", "s3://b/in/a.png", "abc-123", "s3://b/out/abc-123.out", "s3://b/fail/abc-123-error.out",
              datetime.now(timezone.utc), "image/png", "ep", "abc")
    ok = sagemaker_message(job, ok=True)
    envelope = {"Type": "Notification", "MessageId": "m-1", "TopicArn": "arn:aws:sns:us-east-1:1:t", "Message": json.dumps(ok)}
    note = parse_notification(json.dumps(envelope))
    assert (note.inference_id, note.status, note.output_location) == ("abc-123", "success", job.output_location)
    assert note.sns_message_id == "m-1" and note.event_time is not None
    assert parse_notification(json.dumps(ok)) == parse_notification(ok)  # raw message delivery

    failed = sagemaker_message(job, ok=False, reason="boom", top_level_failure=True)
    note = parse_notification(json.dumps(failed))
    assert (note.status, note.failure_location, note.failure_reason) == ("failed", job.failure_location, "boom")

    assert parse_notification("not json") is None
    assert parse_notification(json.dumps({"Type": "Notification", "TopicArn": "t", "Message": "hello"})) is None
    assert parse_notification(json.dumps({"Records": [{"eventSource": "aws:s3"}]})) is None
    assert parse_notification(json.dumps({**ok, "invocationStatus": "Weird"})) is None


# -- submit -----------------------------------------------------------------------------------------
def test_submit_uploads_with_content_type_and_invokes_with_hash_ids(env, runtime, tmp_path):
    plans = tmp_path / "plans"
    plans.mkdir()
    png = plans / "one.png"
    png.write_bytes(PNG + b"one")
    mislabeled = plans / "two.jpg"  # really a PNG: content beats the extension
    mislabeled.write_bytes(PNG + b"two")
    pdf = plans / "sub" / "three.pdf"
    pdf.parent.mkdir()
    pdf.write_bytes(b"%PDF-1.7\n...")
    (plans / "ground_truth.json").write_text("{}")  # not a plan: skipped in a directory
    (plans / ".hidden.png").write_bytes(PNG)

    jobs = sub.submit([plans], env.target, env.session, ttl_seconds=600, invocation_timeout_seconds=120,
                      custom_attributes="profile=fast", inline=False, progress=False)
    assert [j.input for j in jobs] == [str(png), str(pdf), str(mislabeled)]  # sorted walk
    assert [j.content_type for j in jobs] == ["image/png", "application/pdf", "image/png"]
    import hashlib

    for job, path in zip(jobs, [png, pdf, mislabeled]):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert job.plan_key == digest
        assert job.inference_id.startswith(digest[:40] + "-") and len(job.inference_id) <= 64
        assert job.s3_input_uri == f"s3://{BUCKET}/inputs/{digest[:16]}/{path.name}"
        head = env.s3.head_object(Bucket=BUCKET, Key=job.s3_input_uri.split("/", 3)[3])
        assert head["ContentType"] == job.content_type
        # One batch prefix (S3OutputPathExtension) for the whole call.
        assert job.batch == jobs[0].batch and job.batch.startswith("batch-")
        assert job.output_location == f"{env.target.output_uri}{job.batch}/{job.inference_id}.out"
        assert job.failure_location.endswith("-error.out") and job.error is None
    sent = {r["x-amzn-sagemaker-inference-id"]: r for r in runtime.requests}
    assert set(sent) == {j.inference_id for j in jobs}
    r = sent[jobs[1].inference_id]
    assert r["path"] == "/endpoints/rk-test-endpoint/async-invocations"
    assert r["x-amzn-sagemaker-content-type"] == "application/pdf"
    assert r["x-amzn-sagemaker-accept"] == "application/json"
    assert r["x-amzn-sagemaker-inputlocation"] == jobs[1].s3_input_uri and r["body"] == b""
    assert not any(j.inline for j in jobs)
    assert r["x-amzn-sagemaker-requestttlseconds"] == "600"
    assert r["x-amzn-sagemaker-invocationtimeoutseconds"] == "120"
    assert r["x-amzn-sagemaker-custom-attributes"] == "profile=fast"
    assert r["x-amzn-sagemaker-s3outputpathextension"] == jobs[0].batch

    # Without a batch prefix, outputs go straight under S3OutputPath.
    runtime.requests.clear()
    flat = sub.submit([png], env.target, env.session, batch_prefix=False, rerun=True, inline=False, progress=False)
    assert flat[0].batch is None and flat[0].output_location == f"{env.target.output_uri}{flat[0].inference_id}.out"
    assert "x-amzn-sagemaker-s3outputpathextension" not in runtime.requests[0]


def test_submit_checks_every_input_before_uploading_anything(env, runtime, tmp_path):
    good = make_plans(tmp_path, 2)
    notes = tmp_path / "notes.txt"
    notes.write_text("not a plan")
    with pytest.raises(InputError) as err:
        sub.submit([*good, notes, tmp_path / "missing.png"], env.target, env.session, progress=False)
    assert "notes.txt" in err.value.message and "missing.png" in err.value.message
    assert "Contents" not in env.s3.list_objects_v2(Bucket=BUCKET)
    assert runtime.requests == []
    with pytest.raises(ConfigError, match="ttl_seconds"):
        sub.submit(good, env.target, env.session, ttl_seconds=30, progress=False)
    with pytest.raises(ConfigError, match="invocation_timeout_seconds"):
        sub.submit(good, env.target, env.session, invocation_timeout_seconds=4000, progress=False)


def test_submit_s3_prefix_uses_objects_in_place(env, runtime):
    env.s3.put_object(Bucket=BUCKET, Key="incoming/a.png", Body=PNG + b"a")
    env.s3.put_object(Bucket=BUCKET, Key="incoming/b", Body=b"\xff\xd8\xff\xe0jpeg", ContentType="binary/octet-stream")
    env.s3.put_object(Bucket=BUCKET, Key="incoming/readme.md", Body=b"# no")
    jobs = sub.submit([f"s3://{BUCKET}/incoming/"], env.target, env.session, progress=False)
    assert [(j.s3_input_uri, j.content_type) for j in jobs] == [
        (f"s3://{BUCKET}/incoming/a.png", "image/png"),
        (f"s3://{BUCKET}/incoming/b", "image/jpeg"),
    ]
    # Nothing was copied under the input prefix.
    assert "Contents" not in env.s3.list_objects_v2(Bucket=BUCKET, Prefix="inputs/")
    with pytest.raises(InputError, match="no object and no plans"):
        sub.submit([f"s3://{BUCKET}/nothing-here/"], env.target, env.session, progress=False)


def test_throttling_is_retried_with_backoff_under_the_same_inference_id(env, runtime, tmp_path):
    runtime.throttle = 3
    sleeps: list[float] = []
    backoff = sub.Backoff(attempts=5, base=0.01, cap=0.05)
    plan = make_plans(tmp_path, 1)
    jobs = sub.submit(plan, env.target, env.session, backoff=backoff, progress=False)
    assert jobs[0].error is None
    ids = [r["x-amzn-sagemaker-inference-id"] for r in runtime.requests]
    assert len(ids) == 4 and len(set(ids)) == 1

    # The policy itself: full jitter within the exponential cap, retrying only what may succeed.
    from botocore.exceptions import ClientError

    calls = {"n": 0}

    def flaky():
        calls["n"] += 1
        if calls["n"] < 3:
            raise ClientError({"Error": {"Code": "ServiceUnavailable"}, "ResponseMetadata": {"HTTPStatusCode": 503}}, "X")
        return "ok"

    assert sub.call_with_backoff(flaky, sub.Backoff(attempts=3, base=1.0, cap=1.5), sleep=sleeps.append) == "ok"
    assert len(sleeps) == 2 and 0 <= sleeps[0] <= 1.0 and 0 <= sleeps[1] <= 1.5
    bad = ClientError({"Error": {"Code": "ValidationError"}, "ResponseMetadata": {"HTTPStatusCode": 400}}, "X")
    assert not sub.is_retryable(bad)

    runtime.throttle = 10  # more than the attempts: the job records the error, nothing is lost
    runtime.requests.clear()
    plans = make_plans(tmp_path, 2, prefix="more")
    with pytest.raises(sub.SubmitError, match="ThrottlingException"):
        sub.submit(plans, env.target, env.session, backoff=sub.Backoff(attempts=2, base=0.0, cap=0.0), progress=False)


def test_partial_submission_failure_is_a_failed_job_not_an_exception(env, runtime, tmp_path):
    plans = make_plans(tmp_path, 3)
    runtime.reject_containing = plans[1].name
    jobs = sub.submit(plans, env.target, env.session, inline=False, progress=False)
    assert [j.error is None for j in jobs] == [True, False, True]
    assert "ValidationError" in jobs[1].error and plans[1].name in jobs[1].error
    for job in (jobs[0], jobs[2]):
        env.complete(job)
    done = sub.wait(jobs, env.target, env.session, timeout=20, poll_interval=1, progress=False)
    assert done.done and len(done.failed) == 1
    rows = sub.results(done, env.target, env.session)
    assert [r.status for r in rows] == ["success", "failed", "success"]
    assert rows[1].error.startswith("submission failed")


def test_non_async_deployment_is_refused(env, tmp_path):
    from dataclasses import replace

    with pytest.raises(ConfigError, match="serverless"):
        sub.submit(make_plans(tmp_path, 1), replace(env.target, kind="serverless"), env.session, progress=False)


# -- wait and results ------------------------------------------------------------------------------
def test_wait_dedupes_deliveries_keeps_foreign_messages_and_collects_results(env, runtime, tmp_path):
    jobs = sub.submit(make_plans(tmp_path, 4), env.target, env.session, progress=False)
    env.complete(jobs[0], body=response_body(2), times=2)  # SNS may deliver twice
    env.complete(jobs[1], body=response_body(5))
    error_body = json.dumps({"status": "error", "error": {"code": "undecodable_image", "message": "cannot decode PNG"}})
    env.complete(jobs[2], ok=False, body=error_body.encode(), reason="ClientError: Received client error (400)")
    foreign = Job("x.png", "s3://b/x.png", "someone-elses-job", "s3://b/o.out", None,
                  datetime.now(timezone.utc), "image/png", "other", "x")
    env.sns.publish(TopicArn=env.topics[True], Message=json.dumps(sagemaker_message(foreign, ok=True)))

    t0 = time.monotonic()
    done = sub.wait(jobs, env.target, env.session, timeout=3, poll_interval=1, fallback_after=60,
                    foreign_visibility_s=0, progress=False)
    elapsed = time.monotonic() - t0
    assert 3 <= elapsed < 3 * 10  # it waited out its own timeout (job 4 never completes), then returned
    assert done.timed_out and [j.inference_id for j in done.pending] == [jobs[3].inference_id]
    assert jobs[3].input in done.summary() and "1 pending" in done.summary()
    assert done.duplicates == 1
    assert {c.source for c in done.completions.values()} == {"notification"}
    with pytest.raises(sub.WaitTimeout) as err:
        done.raise_for_timeout()
    assert jobs[3].input in err.value.message

    # Only the foreign notification is left in the queue; ours were consumed.
    assert env.queue_depth() == 1
    left = env.sqs.receive_message(QueueUrl=env.target.queue_url, WaitTimeSeconds=1)["Messages"]
    assert parse_notification(left[0]["Body"]).inference_id == "someone-elses-job"

    rows = sub.results(done, env.target, env.session)
    assert [r.status for r in rows] == ["success", "success", "failed", "pending"]
    assert [r.rooms for r in rows[:2]] == [2, 5]
    assert rows[0].processing_time_ms == 12.5 and (rows[0].width, rows[0].height) == (400, 300)
    assert isinstance(rows[1].detection, Detection) and len(rows[1].detection.rooms) == 5
    x0, y0, x1, y1 = rows[1].detection.rooms[0].bbox_px
    assert abs(x0 - 10) < 1 and abs(y1 - 200) < 1  # back in pixel space
    assert rows[2].error.startswith("undecodable_image: cannot decode PNG")
    assert "Received client error" in rows[2].error
    assert rows[0].latency_s is not None and rows[0].latency_s >= 0
    assert rows[3].latency_s is None and rows[3].error is None

    # The missing one finishes later: waiting on the earlier result carries on from it.
    env.complete(jobs[3], body=response_body(1))
    done = sub.wait(done, env.target, env.session, timeout=10, poll_interval=1, progress=False)
    assert done.done and not done.timed_out
    stats = latency_stats(sub.results(done, env.target, env.session))
    assert stats.count == 4 and stats.p50 <= stats.p95 <= stats.max


def _count_receives(session) -> list[int]:
    calls = [0]

    def count(**_kwargs):
        calls[0] += 1

    session.boto.events.register("before-call.sqs.ReceiveMessage", count)
    return calls


def test_wait_reads_notifications_that_trickle_in_batches(env, runtime, tmp_path):
    """Notifications arriving one by one are read a batch per poll after a partial batch (SQS
    bills each request); with no window every notification costs a poll. Both runs see the same
    trickle, so the comparison holds however busy the machine is."""
    import threading

    def polls(window: float, folder: str) -> int:
        (tmp_path / folder).mkdir()
        jobs = sub.submit(make_plans(tmp_path / folder, 20), env.target, env.session, progress=False)
        calls = _count_receives(env.session)

        def finish() -> None:
            for job in jobs:
                env.complete(job)
                time.sleep(0.08)

        worker = threading.Thread(target=finish)
        worker.start()
        done = sub.wait(jobs, env.target, env.session, timeout=30, poll_interval=1, batch_window=window,
                        progress=False)
        worker.join()
        assert done.done and len(done.completions) == 20
        return calls[0]

    every = polls(0.0, "no-window")
    batched = polls(0.5, "window")
    assert every >= 12, every  # about a poll per notification
    assert batched * 1.5 <= every, (batched, every)  # a poll per several notifications


def test_wait_falls_back_to_s3_when_notifications_do_not_come(env, runtime, tmp_path):
    jobs = sub.submit(make_plans(tmp_path, 3), env.target, env.session, progress=False)
    env.complete(jobs[0], publish=False)  # result written, notification lost
    env.complete(jobs[1], ok=False, publish=False, body=b'{"message": "Received server error (500)"}')
    env.complete(jobs[2])
    done = sub.wait(jobs, env.target, env.session, timeout=20, poll_interval=1, fallback_after=1.5, progress=False)
    assert done.done
    sources = {j.input: done.completions[j.inference_id].source for j in jobs}
    assert sources == {jobs[0].input: "s3", jobs[1].input: "s3", jobs[2].input: "notification"}
    rows = sub.results(done, env.target, env.session)
    assert [r.status for r in rows] == ["success", "failed", "success"]
    assert rows[1].error == "Received server error (500)"


def test_wait_without_queue_polls_s3_and_results_work_from_job_files(env, runtime, tmp_path):
    from dataclasses import replace

    target = replace(env.target, queue_url=None)
    jobs = sub.submit(make_plans(tmp_path, 2), target, env.session, progress=False)
    path = save_jobs(jobs, tmp_path / "jobs.json")
    assert load_jobs(path) == jobs
    env.complete(jobs[0], publish=False)
    done = sub.wait(load_jobs(path), target, env.session, timeout=2, poll_interval=0.5, progress=False)
    assert [j.inference_id for j in done.pending] == [jobs[1].inference_id]
    # Without a WaitResult, results() reads the status from S3 alone.
    rows = sub.results(load_jobs(path), target, env.session)
    assert [r.status for r in rows] == ["success", "pending"]
    df = to_dataframe(rows)
    assert list(df["status"]) == ["success", "pending"] and "detection" not in df.columns
    assert df.loc[0, "rooms"] == 3
    with pytest.raises(InputError, match="not a roomkit jobs file"):
        (tmp_path / "bad.json").write_text('{"nope": 1}')
        load_jobs(tmp_path / "bad.json")


def test_resubmission_reuses_finished_results_unless_rerun(env, runtime, tmp_path):
    plans = make_plans(tmp_path, 2)
    copy = tmp_path / "copy_of_0.png"
    copy.write_bytes(plans[0].read_bytes())
    first = sub.submit([*plans, copy], env.target, env.session, inline=False, progress=False)
    # Identical bytes given twice in one call: one invocation, shared.
    assert len(runtime.requests) == 2
    assert first[2].inference_id == first[0].inference_id and first[2].reused and first[2].input == str(copy)
    env.complete(first[0], body=response_body(4))  # plans[1] never finishes

    runtime.requests.clear()
    again = sub.submit(plans, env.target, env.session, previous=first, progress=False)
    assert again[0].reused and again[0].inference_id == first[0].inference_id
    assert not again[1].reused and again[1].inference_id != first[1].inference_id
    assert again[1].inference_id.split("-")[0] == first[1].inference_id.split("-")[0]  # same plan, recognizable
    assert len(runtime.requests) == 1

    rerun = sub.submit(plans[:1], env.target, env.session, previous=first, rerun=True, progress=False)
    assert not rerun[0].reused and rerun[0].inference_id != first[0].inference_id
    assert sub.plan_key_from_inference_id(rerun[0].inference_id) == sub.plan_key_from_inference_id(first[0].inference_id)

    # Other custom attributes: not the same result, so not reused.
    other = sub.submit(plans[:1], env.target, env.session, previous=first, custom_attributes="x=1", progress=False)
    assert not other[0].reused

    done = sub.wait(again[:1], env.target, env.session, timeout=5, poll_interval=1, progress=False)
    assert done.done and done.completions[first[0].inference_id].source == "s3"
    assert sub.results(done, env.target, env.session)[0].rooms == 4

    # The uploaded object, named by its S3 URI, is still the same plan: reused too.
    by_uri = sub.submit([first[0].s3_input_uri], env.target, env.session, previous=first, progress=False)
    assert by_uri[0].plan_key == first[0].plan_key and by_uri[0].reused


def test_wait_survives_a_missing_queue_by_polling_s3(env, runtime, tmp_path, caplog):
    jobs = sub.submit(make_plans(tmp_path, 1), env.target, env.session, progress=False)
    env.complete(jobs[0], publish=False)
    env.sqs.delete_queue(QueueUrl=env.target.queue_url)
    done = sub.wait(jobs, env.target, env.session, timeout=10, poll_interval=1, fallback_after=300, progress=False)
    assert done.done and done.completions[jobs[0].inference_id].source == "s3"
    assert "polling S3 instead" in caplog.text
    with pytest.raises(ConfigError, match="custom_attributes"):
        sub.submit(make_plans(tmp_path, 1, "x"), env.target, env.session, custom_attributes="é", progress=False)
    with pytest.raises(ConfigError, match="lacks input_uri"):
        sub.submit(make_plans(tmp_path, 1, "y"), {"endpoint_name": "x"}, env.session, progress=False)


def test_small_plans_are_sent_in_one_put_each_and_unreadable_ones_fail_alone(env, runtime, tmp_path):
    """One PutObject per small plan: no HEAD first and no transfer manager per plan (it cost a
    HEAD and a transfer manager with its threads for every plan)."""
    plans = make_plans(tmp_path, 30)
    calls: dict[str, int] = {}

    def count(event_name, **_kwargs):
        calls[event_name] = calls.get(event_name, 0) + 1

    env.session.boto.events.register("before-call.s3", count)
    threads_before = threading.active_count()
    gone = tmp_path / "gone.png"
    gone.write_bytes(PNG + b"gone")

    def paths():  # a generator: submit takes any iterable of paths
        yield from plans[:15]
        yield gone
        yield from plans[15:]
        gone.unlink()  # checked already, gone before its upload: that plan fails, the others go

    jobs = sub.submit(paths(), env.target, env.session, max_workers=4, inline=False, progress=False)
    assert len(jobs) == 31 and [j.input for j in jobs if j.error] == [str(gone)]
    assert jobs[15].error.startswith("submission failed: cannot read") and "No such file" in jobs[15].error
    assert threading.active_count() <= threads_before + 1  # pool threads have ended
    assert calls.get("before-call.s3.PutObject") == 30 and "before-call.s3.HeadObject" not in calls
    assert len(runtime.requests) == 30


def test_small_local_plans_travel_inside_the_request_and_larger_ones_are_uploaded(env, runtime, tmp_path):
    """InvokeEndpointAsync's inline Body (≤ 128,000 bytes) replaces PutObject + InputLocation for
    small local plans: one request per plan, nothing under the input prefix. Larger plans and S3
    inputs keep InputLocation; the results of both kinds come back the same way."""
    sizes = {"tiny.png": 100, "edge.png": sub.INLINE_BODY_LIMIT, "over.png": sub.INLINE_BODY_LIMIT + 1}
    paths = []
    for name, size in sizes.items():
        p = tmp_path / name
        p.write_bytes(PNG + os.urandom(size - len(PNG)))
        paths.append(p)
    env.s3.put_object(Bucket=BUCKET, Key="incoming/s3.png", Body=PNG + b"s3")
    puts: list[str] = []
    env.session.boto.events.register("provide-client-params.s3.PutObject", lambda **kw: puts.append(kw["params"]["Key"]))

    jobs = sub.submit([*paths, f"s3://{BUCKET}/incoming/s3.png"], env.target, env.session, progress=False)
    assert [j.error for j in jobs] == [None] * 4
    assert [j.inline for j in jobs] == [True, True, False, False]
    assert [j.s3_input_uri for j in jobs[:2]] == ["", ""]
    assert jobs[2].s3_input_uri.endswith("/over.png") and jobs[3].s3_input_uri == f"s3://{BUCKET}/incoming/s3.png"
    assert puts == [jobs[2].s3_input_uri.split("/", 3)[3]]  # only the plan over the limit was uploaded
    sent = {r["x-amzn-sagemaker-inference-id"]: r for r in runtime.requests}
    for job, path in zip(jobs[:2], paths[:2]):
        r = sent[job.inference_id]
        assert r["body"] == path.read_bytes() and "x-amzn-sagemaker-inputlocation" not in r
        assert r["x-amzn-sagemaker-content-type"] == "image/png"
    assert sent[jobs[2].inference_id]["body"] == b""
    assert sent[jobs[2].inference_id]["x-amzn-sagemaker-inputlocation"] == jobs[2].s3_input_uri

    # The handles survive the jobs file, and wait/results treat both kinds alike.
    saved = tmp_path / "jobs.json"
    save_jobs(jobs, saved)
    assert [j.inline for j in load_jobs(saved)] == [True, True, False, False]
    for job in jobs:
        env.complete(job)
    done = sub.wait(jobs, env.target, env.session, timeout=20, poll_interval=1, progress=False)
    assert done.done and len(done.succeeded) == 4
    assert [r.status for r in sub.results(done, env.target, env.session)] == ["success"] * 4


def test_submit_memory_does_not_grow_with_the_number_of_plans(env, runtime, tmp_path):
    """tracemalloc peak of a submitting process (moto is elsewhere) for 150 and 750 plans of
    64 KiB given as a generator: per extra plan it grows by its small records, not its bytes."""
    import subprocess
    import sys

    folder = tmp_path / "plans"
    folder.mkdir()
    for i in range(750):
        (folder / f"p{i}.png").write_bytes(PNG + os.urandom(64 * 1024))
    script = """
import json, sys, tracemalloc
from pathlib import Path
import roomkit.aws
from roomkit.aws import submit as sub
from roomkit.aws.target import AsyncTarget
cfg = json.loads(sys.argv[1])
session = roomkit.aws.session("local", endpoints=cfg["endpoints"])
target = AsyncTarget(**cfg["target"])
paths = (Path(cfg["folder"]) / f"p{i}.png" for i in range(cfg["n"]))
session.client("s3"), session.client("sagemaker-runtime")  # botocore's models loaded before
tracemalloc.start()
jobs = sub.submit(paths, target, session, progress=False)
print(json.dumps({"peak": tracemalloc.get_traced_memory()[1], "jobs": len(jobs),
                  "errors": sum(1 for j in jobs if j.error)}))
"""
    target = {k: getattr(env.target, k) for k in ("endpoint_name", "input_uri", "output_uri", "failure_uri")}
    endpoints = {"default": env.session.endpoints["default"], "sagemaker-runtime": runtime.url}

    def peak(n: int) -> int:
        cfg = json.dumps({"endpoints": endpoints, "target": target, "folder": str(folder), "n": n})
        out = subprocess.run([sys.executable, "-c", script, cfg], capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-2000:]
        report = json.loads(out.stdout.strip().splitlines()[-1])
        assert report["jobs"] == n and report["errors"] == 0
        return report["peak"]

    small, large = peak(150), peak(750)
    per_plan = (large - small) / 600
    assert per_plan < 16 * 1024, (small, large, per_plan)  # a plan is 64 KiB


# -- batch transform (aws-mode path, against moto's control plane) -----------------------------
def test_transform_aws_path_writes_manifests_starts_jobs_and_collects_outputs(env, moto_url, tmp_path, monkeypatch):
    """moto runs no container: the `.out` objects Batch Transform would write are put in place
    first (moto marks jobs Completed at once); everything else is the real aws-mode code path."""
    from dataclasses import replace

    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(var, "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    aws_session = roomkit.aws.session("aws", region="us-east-1")
    assert aws_session.mode == "aws"
    iam_client = env.session.client("iam")
    iam_client.create_role(RoleName="rk-exec", AssumeRolePolicyDocument="{}")
    target = replace(env.target, model_name="rk-model", instance_type="ml.m5.xlarge", instance_count=2,
                     role_name="rk-exec")
    env.s3.put_object(Bucket=BUCKET, Key="backlog/a.png", Body=PNG + b"a")
    env.s3.put_object(Bucket=BUCKET, Key="backlog/b.png", Body=PNG + b"b")
    env.s3.put_object(Bucket=BUCKET, Key="backlog/c.pdf", Body=b"%PDF-1.4 c")
    out = f"s3://{BUCKET}/bt-out/"
    env.s3.put_object(Bucket=BUCKET, Key="bt-out/backlog/a.png.out", Body=response_body(2))
    env.s3.put_object(Bucket=BUCKET, Key="bt-out/backlog/c.pdf.out", Body=response_body(4))

    result = transform([f"s3://{BUCKET}/backlog/"], target, aws_session, output_uri=out,
                           job_name="rk-bt-test", poll_interval=0.1, progress=False)
    assert result.status == "Completed" and sorted(result.job_names) == ["rk-bt-test-1", "rk-bt-test-2"]
    sm = env.session.client("sagemaker")
    jobs = {n: sm.describe_transform_job(TransformJobName=n) for n in result.job_names}
    by_type = {d["TransformInput"]["ContentType"]: d for d in jobs.values()}
    assert set(by_type) == {"image/png", "application/pdf"}
    png_job = by_type["image/png"]
    assert png_job["ModelName"] == "rk-model" and png_job["BatchStrategy"] == "SingleRecord"
    assert png_job["TransformInput"]["SplitType"] == "None"
    assert png_job["TransformOutput"] == {"S3OutputPath": out, "Accept": "application/json", "AssembleWith": "None"}
    assert png_job["TransformResources"] == {"InstanceType": "ml.m5.xlarge", "InstanceCount": 2}
    # AWS: MaxConcurrentTransforms × MaxPayloadInMB <= 100; one request per vCPU, plans under 1 MB
    assert (png_job["MaxConcurrentTransforms"], png_job["MaxPayloadInMB"]) == (4, 1)
    # the execution role may write the jobs' logs
    doc = iam_client.get_role_policy(RoleName="rk-exec", PolicyName="roomkit-transform")["PolicyDocument"]
    doc = doc if isinstance(doc, dict) else json.loads(doc)
    assert doc["Statement"][0]["Resource"][0].endswith(":log-group:/aws/sagemaker/TransformJobs")
    source = png_job["TransformInput"]["DataSource"]["S3DataSource"]
    assert source["S3DataType"] == "ManifestFile"
    bucket, key = source["S3Uri"][5:].split("/", 1)
    manifest = json.loads(env.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert manifest == [{"prefix": f"s3://{BUCKET}/"}, "backlog/a.png", "backlog/b.png"]

    rows = {r.input.rsplit("/", 1)[-1]: r for r in result.rows}
    assert (rows["a.png"].status, rows["a.png"].rooms) == ("success", 2)
    assert (rows["c.pdf"].status, rows["c.pdf"].rooms) == ("success", 4)
    assert rows["b.png"].status == "failed" and "without an output" in rows["b.png"].error
    assert rows["a.png"].output_location == f"{out}backlog/a.png.out"


@pytest.mark.parametrize("largest, instance, requested, expected", [
    (300_000, "ml.m5.large", None, (2, 1)),
    (300_000, "ml.c5.4xlarge", None, (16, 1)),
    (30 * 1024 * 1024, "ml.m5.4xlarge", None, (3, 30)),  # 16 vCPUs, but 3 × 30 MB is the most
    (100 * 1024 * 1024, "ml.m5.xlarge", None, (1, 100)),
    (5 * 1024 * 1024, "ml.m5.large", 20, (20, 5)),
])
def test_transform_limits_respect_the_concurrency_times_payload_ceiling(largest, instance, requested, expected):
    from roomkit.aws.transform import transform_limits

    concurrency, payload = transform_limits(largest, instance, requested)
    assert (concurrency, payload) == expected and concurrency * payload <= 100


def test_transform_refuses_a_concurrency_that_breaks_the_ceiling_before_starting_jobs(env, tmp_path):
    from dataclasses import replace

    from roomkit.aws.transform import transform_limits

    with pytest.raises(ConfigError, match=r"= 105, above Batch Transform's limit of 100: use at most 6"):
        transform_limits(15 * 1024 * 1024, "ml.m5.large", 7)
    env.s3.put_object(Bucket=BUCKET, Key="big/a.png", Body=PNG + b"a" * (30 * 1024 * 1024))
    target = replace(env.target, model_name="rk-model")
    with pytest.raises(ConfigError, match="max_concurrent_transforms=8 .* use at most 3"):
        transform([f"s3://{BUCKET}/big/"], target, env.session, max_concurrent_transforms=8, progress=False)
    assert env.session.client("sagemaker").list_transform_jobs()["TransformJobSummaries"] == []
