"""Hardening of local mode (issue 18, items 7-9), through boto3 against the loopback services and
the real `roomkit serve`:

- a job whose output cannot be written (the output bucket was deleted) still ends exactly once:
  a failure object and an error notification, or the notification alone, with the reason;
- the operator's real AWS settings (keys in the environment, a profile and a shared credentials
  file under HOME, endpoint URLs) never reach the serving process or leave it;
- a serving process that stops answering /ping is replaced, and the jobs it held fail once.
"""
from __future__ import annotations

import collections
import http.server
import json
import os
import signal
import threading
import time
import uuid

import pytest

from local_testkit import group_members, list_keys, make_endpoint, plan_png, put_input, read_notifications, s3_read
from roomkit.local import LocalAWS

pytestmark = pytest.mark.slow


def _submit(session, ep, src: str, content_type: str = "image/png", **kw) -> dict:
    return session.client("sagemaker-runtime").invoke_endpoint_async(
        EndpointName=ep.name, InputLocation=src, ContentType=content_type, **kw)


def _input_bucket(session) -> str:
    """Inputs live apart from the endpoint's buckets, so deleting those does not touch them."""
    bucket = f"rk-in-{uuid.uuid4().hex[:8]}"
    session.client("s3").create_bucket(Bucket=bucket)
    return bucket


# -- item 7: an output that cannot be written ------------------------------------------------------
@pytest.fixture(scope="class")
def aws():
    with LocalAWS(workers=1, trigger=False) as local:
        yield local


class TestUnwritableOutput:
    """One LocalAWS for both (a module-wide one would clash with the tests below)."""

    def test_output_bucket_deleted_the_job_fails_once_with_a_failure_object(self, aws):
        session = aws.session()
        ep = make_endpoint(session, failure_bucket=f"rk-fail-{uuid.uuid4().hex[:8]}")
        failure_bucket = ep.failure_path[len("s3://"):].split("/")[0]
        src = put_input(session, _input_bucket(session), "in/plan.png", plan_png())
        session.client("s3").delete_bucket(Bucket=ep.bucket)  # the output bucket is gone

        job = _submit(session, ep, src)
        notes = read_notifications(session, ep.queue_url, 1, timeout=60, settle=2.0)

        assert [n["inferenceId"] for n in notes] == [job["InferenceId"]], "exactly one notification"
        note = notes[0]
        assert note["invocationStatus"] == "Failed"
        reason = note["failureReason"]
        assert "Failed to upload the output" in reason and job["OutputLocation"] in reason
        assert "NoSuchBucket" in reason and "could not be written" not in reason
        assert note["responseParameters"]["failureLocation"] == job["FailureLocation"]
        body, ctype = s3_read(session, job["FailureLocation"])
        error = json.loads(body)["error"]
        assert ctype == "application/json" and error["code"] == "output_write_failed"
        assert error["message"] == reason
        assert list_keys(session, failure_bucket, "") == [f"failures/{job['InferenceId']}-error.out"]
        stats = aws.runtime.stats()[ep.name]
        assert (stats["completed"], stats["failed"], stats["backlog"]) == (0, 1, 0)


    def test_output_and_failure_unwritable_the_error_notification_still_says_why(self, aws):
        session = aws.session()
        ep = make_endpoint(session)  # output and failure paths in the same bucket
        src = put_input(session, _input_bucket(session), "in/plan.png", plan_png())
        session.client("s3").delete_bucket(Bucket=ep.bucket)

        jobs = [_submit(session, ep, src) for _ in range(3)]
        notes = read_notifications(session, ep.queue_url, 3, timeout=60, settle=2.0)

        counts = collections.Counter(n["inferenceId"] for n in notes)
        assert set(counts) == {j["InferenceId"] for j in jobs} and max(counts.values()) == 1
        for note in notes:
            assert note["invocationStatus"] == "Failed"
            reason = note["failureReason"]
            assert "Failed to upload the output" in reason
            assert "The failure object could not be written" in reason and "NoSuchBucket" in reason
        stats = aws.runtime.stats()[ep.name]
        assert (stats["completed"], stats["failed"], stats["backlog"]) == (0, 3, 0)
