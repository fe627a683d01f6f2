"""Async semantics of the local runtime against the real `roomkit serve`: outputs, failures,
SNS notifications in SageMaker's shape, response embedding, TTL, invocation timeout, model
artifacts (one serving process per model), concurrency limits and the reported backlog."""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import signal
import time
from datetime import datetime, timedelta, timezone

import pytest
import urllib3

from local_testkit import (CORRUPT_PNG, list_keys, make_endpoint, plan_png, put_input,
                           read_notifications, s3_read)
from roomkit.serving.artifacts import package_model
from roomkit.local import LocalAWS

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture(scope="module")
def aws():
    with LocalAWS(workers=2, trigger=False) as local:
        yield local


@pytest.fixture(scope="module")
def session(aws):
    return aws.session()


def _submit(session, ep, key, body, **kw):
    src = put_input(session, ep.bucket, key, body)
    return session.client("sagemaker-runtime").invoke_endpoint_async(
        EndpointName=ep.name, InputLocation=src, ContentType="image/png", **kw)


@contextlib.contextmanager
def _paused(aws):
    """Freeze the serving process (SIGSTOP its group): requests are accepted, none answered."""
    pgid = aws.server.pid
    os.killpg(pgid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.killpg(pgid, signal.SIGCONT)


def _wait_invoking(aws, endpoint: str, count: int) -> None:
    """Wait until ``count`` requests are inside the container."""
    deadline = time.monotonic() + 20
    while aws.runtime.stats().get(endpoint, {}).get("invoking") != count and time.monotonic() < deadline:
        time.sleep(0.01)
    assert aws.runtime.stats()[endpoint]["invoking"] == count


def _by_id(notes):
    return {n["inferenceId"]: n for n in notes}


def test_success_and_failure_end_as_objects_and_notifications_in_sagemaker_shape(session):
    ep = make_endpoint(session)
    ok = _submit(session, ep, "in/ok.png", plan_png(), Accept="application/json", CustomAttributes="trace=1")
    bad = _submit(session, ep, "in/bad.png", CORRUPT_PNG)
    notes = _by_id(read_notifications(session, ep.queue_url, 2, timeout=30, settle=1.0))
    assert set(notes) == {ok["InferenceId"], bad["InferenceId"]}

    good = notes[ok["InferenceId"]]
    assert good["invocationStatus"] == "Completed"
    assert good["eventName"] == "InferenceResult" and good["eventSource"] == "aws:sagemaker"
    assert good["eventVersion"] == "1.0" and good["awsRegion"] == "us-east-1"
    assert ISO.match(good["eventTime"]) and ISO.match(good["receivedTime"])
    assert good["receivedTime"] <= good["eventTime"]
    assert good["requestParameters"] == {
        "endpointName": ep.name, "inputLocation": f"s3://{ep.bucket}/in/ok.png",
        "contentType": "image/png", "accept": "application/json", "customAttributes": "trace=1"}
    assert good["responseParameters"]["outputLocation"] == ok["OutputLocation"]
    assert good["responseParameters"]["contentType"].startswith("application/json")
    assert "failureReason" not in good and "responseBody" not in good
    result = json.loads(s3_read(session, ok["OutputLocation"])[0])
    assert result["status"] == "success" and len(result["detected_rooms"]) >= 2

    failed = notes[bad["InferenceId"]]
    assert failed["invocationStatus"] == "Failed"
    assert failed["failureReason"].startswith("ClientError: Received client error (400) from primary")
    assert "undecodable_image" in failed["failureReason"]
    assert failed["responseParameters"]["failureLocation"] == bad["FailureLocation"]
    error_body, ctype = s3_read(session, bad["FailureLocation"])
    assert ctype.startswith("application/json")
    assert json.loads(error_body)["error"]["code"] == "undecodable_image"  # the server's own body

    keys = set(list_keys(session, ep.bucket, ""))
    assert f"results/{ok['InferenceId']}.out" in keys
    assert f"failures/{ok['InferenceId']}-error.out" not in keys
    assert f"results/{bad['InferenceId']}.out" not in keys


def test_inference_response_is_embedded_only_for_the_configured_topic(session):
    ep = make_endpoint(session, include_response_in=["SUCCESS_NOTIFICATION_TOPIC"])
    ok = _submit(session, ep, "in/ok.png", plan_png())
    bad = _submit(session, ep, "in/bad.png", CORRUPT_PNG)
    notes = _by_id(read_notifications(session, ep.queue_url, 2, timeout=30))
    embedded = notes[ok["InferenceId"]]["responseBody"]
    assert embedded["encoding"] == "JSON"
    assert json.loads(embedded["content"]) == json.loads(s3_read(session, ok["OutputLocation"])[0])
    assert "responseBody" not in notes[bad["InferenceId"]]

    ep2 = make_endpoint(session, include_response_in=["ERROR_NOTIFICATION_TOPIC"])
    bad2 = _submit(session, ep2, "in/bad.png", CORRUPT_PNG)
    note = read_notifications(session, ep2.queue_url, 1, timeout=30)[0]
    assert note["inferenceId"] == bad2["InferenceId"]
    assert json.loads(note["responseBody"]["content"])["error"]["code"] == "undecodable_image"


def test_without_a_failure_path_failures_land_under_the_output_path(session):
    ep = make_endpoint(session, failure_path=False)
    bad = _submit(session, ep, "in/bad.png", CORRUPT_PNG)
    assert bad["FailureLocation"] == f"{ep.output_path}/{bad['InferenceId']}-error.out"
    read_notifications(session, ep.queue_url, 1, timeout=30)
    assert json.loads(s3_read(session, bad["FailureLocation"])[0])["status"] == "error"


@pytest.mark.slow
def test_input_deleted_after_acceptance_fails_the_job(aws, session):
    ep = make_endpoint(session, concurrency=1)
    with _paused(aws):  # the first job holds the endpoint's only slot, the second is prefetched
        first = _submit(session, ep, "in/first.png", plan_png())
        second = _submit(session, ep, "in/second.png", plan_png())
        _wait_invoking(aws, ep.name, 1)
        deadline = time.monotonic() + 20
        while aws.runtime.stats()[ep.name]["in_flight"] < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        doomed = _submit(session, ep, "in/gone.png", plan_png())  # waits in the queue
        session.client("s3").delete_object(Bucket=ep.bucket, Key="in/gone.png")
    notes = _by_id(read_notifications(session, ep.queue_url, 3, timeout=60))
    assert notes[first["InferenceId"]]["invocationStatus"] == "Completed"
    assert notes[second["InferenceId"]]["invocationStatus"] == "Completed"
    gone = notes[doomed["InferenceId"]]
    assert gone["invocationStatus"] == "Failed"
    assert "Failed to download the input" in gone["failureReason"] and "NoSuchKey" in gone["failureReason"]


@pytest.mark.slow
def test_request_older_than_its_ttl_fails_instead_of_running(aws, session):
    ep = make_endpoint(session, concurrency=1)
    with _paused(aws):  # the first job holds the endpoint's only slot
        busy = _submit(session, ep, "in/busy.png", plan_png())
        _wait_invoking(aws, ep.name, 1)
        late = _submit(session, ep, "in/late.png", plan_png(), RequestTTLSeconds=60)
        aws.runtime.clock = lambda: time.monotonic() + 120  # the queued request is now 2 minutes old
    try:
        notes = _by_id(read_notifications(session, ep.queue_url, 2, timeout=60))
    finally:
        aws.runtime.clock = time.monotonic
    assert notes[busy["InferenceId"]]["invocationStatus"] == "Completed"
    expired = notes[late["InferenceId"]]
    assert expired["invocationStatus"] == "Failed"
    assert "RequestTTLSeconds (60 s)" in expired["failureReason"]
    assert json.loads(s3_read(session, late["FailureLocation"])[0])["status"] == "error"
    assert f"results/{late['InferenceId']}.out" not in list_keys(session, ep.bucket, "results/")


def _model_artifact(session, bucket: str, key: str, config: dict, tmp_path) -> str:
    path = package_model(config, tmp_path / key.replace("/", "_"))
    put_input(session, bucket, key, path.read_bytes(), content_type="application/gzip")
    return f"s3://{bucket}/{key}"


def test_invocation_timeout_fails_a_job_the_container_never_answers(aws, session):
    ep = make_endpoint(session)
    warm = _submit(session, ep, "in/warm.png", plan_png())
    read_notifications(session, ep.queue_url, 1, timeout=30)
    assert s3_read(session, warm["OutputLocation"])
    with _paused(aws):  # a hung container: connections accepted, nothing answered
        hung = _submit(session, ep, "in/hung.png", plan_png(), InvocationTimeoutSeconds=1)
        # read while the container is still paused: only the runtime's own 1 s timeout can end the
        # job now (the default is 15 min), so the notification arriving is the event that proves it
        note = read_notifications(session, ep.queue_url, 1, timeout=30)[0]
    assert note["inferenceId"] == hung["InferenceId"] and note["invocationStatus"] == "Failed"
    assert "timed out" in note["failureReason"]
    assert json.loads(s3_read(session, hung["FailureLocation"])[0])["error"]["code"] == "invocation_timeout"
    after = _submit(session, ep, "in/after.png", plan_png())  # the container is answering again
    assert read_notifications(session, ep.queue_url, 1, timeout=30)[0]["inferenceId"] == after["InferenceId"]


def test_model_environment_reaches_its_serving_process(aws, session):
    sm = session.client("sagemaker")
    ep = make_endpoint(session)
    sm.create_model(ModelName=f"{ep.name}-geo", ExecutionRoleArn="arn:aws:iam::123456789012:role/x",
                    PrimaryContainer={"Image": aws.image_uri,
                                      "Environment": {"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "application/geo+json"}})
    sm.create_endpoint_config(
        EndpointConfigName=f"{ep.name}-geo",
        ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": f"{ep.name}-geo",
                             "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}],
        AsyncInferenceConfig={"OutputConfig": {"S3OutputPath": ep.output_path, "S3FailurePath": ep.failure_path,
                                               "NotificationConfig": {"SuccessTopic": ep.success_topic,
                                                                      "ErrorTopic": ep.error_topic}}})
    sm.create_endpoint(EndpointName=f"{ep.name}-geo", EndpointConfigName=f"{ep.name}-geo")
    geo = dataclasses.replace(ep, name=f"{ep.name}-geo")
    job = _submit(session, geo, "in/geo.png", plan_png())
    note = read_notifications(session, ep.queue_url, 1, timeout=60)[0]
    assert note["inferenceId"] == job["InferenceId"], note
    assert note["responseParameters"]["contentType"].startswith("application/geo+json")
    assert json.loads(s3_read(session, job["OutputLocation"])[0])["type"] == "FeatureCollection"


def test_each_model_artifact_gets_its_own_serving_process(aws, session, tmp_path):
    s3 = session.client("s3")
    s3.create_bucket(Bucket="rk-models-tiny")
    url = _model_artifact(session, "rk-models-tiny", "tiny/model.tar.gz", {"max_pixels": 1000}, tmp_path)
    tiny = make_endpoint(session, model_data_url=url)
    default = make_endpoint(session)
    before = {s.pid for s in aws.servers.all()}
    refused = _submit(session, tiny, "in/p.png", plan_png())
    fine = _submit(session, default, "in/p.png", plan_png())
    note = read_notifications(session, tiny.queue_url, 1, timeout=60)[0]
    assert note["inferenceId"] == refused["InferenceId"] and note["invocationStatus"] == "Failed"
    assert "image_too_large" in note["failureReason"]  # config.json of the artifact was applied
    assert read_notifications(session, default.queue_url, 1, timeout=30)[0]["invocationStatus"] == "Completed"
    assert fine["OutputLocation"]
    after = {s.pid for s in aws.servers.all()}
    assert len(after - before) == 1, "one new serving process for the artifact-backed model"
    # a second endpoint on the same artifact shares that process
    again = make_endpoint(session, model_data_url=url)
    _submit(session, again, "in/p.png", plan_png())
    read_notifications(session, again.queue_url, 1, timeout=30)
    assert {s.pid for s in aws.servers.all()} == after

    # As on SageMaker, a running endpoint keeps the artifact it was deployed with: overwriting
    # the object changes nothing until the endpoint is deployed again (the artifact is read per
    # deployment, not per request).
    _model_artifact(session, "rk-models-tiny", "tiny/model.tar.gz", {"max_pixels": 10_000_000}, tmp_path / "v2")
    still = _submit(session, tiny, "in/p2.png", plan_png())
    note = read_notifications(session, tiny.queue_url, 1, timeout=60)[0]
    assert note["inferenceId"] == still["InferenceId"] and "image_too_large" in note["failureReason"]
    assert {s.pid for s in aws.servers.all()} == after
    sm = session.client("sagemaker")
    config = sm.describe_endpoint_config(
        EndpointConfigName=sm.describe_endpoint(EndpointName=tiny.name)["EndpointConfigName"])
    sm.create_endpoint_config(EndpointConfigName=f"{tiny.name}-v2", ProductionVariants=config["ProductionVariants"],
                              AsyncInferenceConfig=config["AsyncInferenceConfig"])
    sm.delete_endpoint(EndpointName=tiny.name)  # moto has no UpdateEndpoint: re-create it
    sm.create_endpoint(EndpointName=tiny.name, EndpointConfigName=f"{tiny.name}-v2")
    time.sleep(1.1)  # the runtime remembers an endpoint's description for 1 s
    updated = _submit(session, tiny, "in/p3.png", plan_png())
    note = read_notifications(session, tiny.queue_url, 1, timeout=90)[0]
    assert note["inferenceId"] == updated["InferenceId"] and note["invocationStatus"] == "Completed", note
    assert len({s.pid for s in aws.servers.all()} - after) == 1, "the re-deployed endpoint read the new artifact"


def test_missing_model_artifact_fails_jobs_with_a_clear_reason(session):
    ep = make_endpoint(session, model_data_url="s3://rk-no-such-bucket/model.tar.gz")
    job = _submit(session, ep, "in/p.png", plan_png())
    note = read_notifications(session, ep.queue_url, 1, timeout=30)[0]
    assert note["inferenceId"] == job["InferenceId"] and note["invocationStatus"] == "Failed"
    assert "could not download the model artifact s3://rk-no-such-bucket/model.tar.gz" in note["failureReason"]


@pytest.mark.slow
def test_concurrency_is_bounded_and_the_backlog_is_reported(aws, session):
    ep = make_endpoint(session, concurrency=1, instances=2)  # at most 1 × 2 at a time
    with _paused(aws):
        ids = [_submit(session, ep, f"in/{i}.png", plan_png())["InferenceId"] for i in range(10)]
        _wait_invoking(aws, ep.name, 2)
        time.sleep(0.3)
        stats = aws.runtime.stats()[ep.name]
        assert stats["invoking"] == 2  # the container's limit
        assert stats["in_flight"] <= 4 and stats["queued"] + stats["in_flight"] == 10  # inputs prefetched
        assert aws.queue_depth(ep.name) == 10  # queued + in flight, like ApproximateBacklogSize
        queues = json.loads(urllib3.request(
            "GET", aws.endpoint_url("sagemaker-runtime") + "/_roomkit/queues").data)["endpoints"]
        assert queues[ep.name]["backlog"] == 10
        assert aws.publish_metrics() >= 4  # the CloudWatch metrics autoscaling policies watch
        cw = session.client("cloudwatch")
        now = datetime.now(timezone.utc)
        stats = {m: cw.get_metric_statistics(
            Namespace="AWS/SageMaker", MetricName=m, Dimensions=[{"Name": "EndpointName", "Value": ep.name}],
            StartTime=now - timedelta(minutes=5), EndTime=now + timedelta(minutes=1), Period=60,
            Statistics=["Maximum"])["Datapoints"][0]["Maximum"]
            for m in ("ApproximateBacklogSize", "ApproximateBacklogSizePerInstance", "HasBacklogWithoutCapacity")}
        assert stats == {"ApproximateBacklogSize": 10.0, "ApproximateBacklogSizePerInstance": 5.0,
                         "HasBacklogWithoutCapacity": 0.0}
    invoking = []
    deadline = time.monotonic() + 60
    while aws.queue_depth(ep.name) and time.monotonic() < deadline:
        invoking.append(aws.runtime.stats()[ep.name]["invoking"])
        time.sleep(0.005)
    assert max(invoking) <= 2 and aws.queue_depth(ep.name) == 0
    notes = read_notifications(session, ep.queue_url, 10, timeout=30)
    assert sorted(n["inferenceId"] for n in notes) == sorted(ids)
    assert {n["invocationStatus"] for n in notes} == {"Completed"}
