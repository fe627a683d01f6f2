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
import roomkit.aws as roomkit_aws
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


# -- item 8: the operator's credentials stay home ------------------------------------------------
class _Recorder(http.server.ThreadingHTTPServer):
    """The "operator's AWS endpoint": records every request that reaches it, answers 403."""

    daemon_threads = True

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def _any(handler) -> None:  # noqa: N805
                self.seen.append((handler.command, handler.path, handler.headers.get("Authorization", "")))
                handler.send_response(403)
                handler.send_header("Content-Length", "0")
                handler.end_headers()

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _any

            def log_message(handler, *args) -> None:  # noqa: N805
                pass

        super().__init__(("127.0.0.1", 0), Handler)


def _environ(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/environ", "rb") as fh:
        items = [e.decode("utf-8", "replace") for e in fh.read().split(b"\0") if e]
    return dict(item.partition("=")[::2] for item in items)


def test_real_credentials_never_leave_the_operator(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".aws").mkdir(parents=True)
    (home / ".aws" / "credentials").write_text(
        "[default]\naws_access_key_id = AKIAPLANTEDHOMEDEFLT\naws_secret_access_key = planted-home-secret\n"
        "[operator]\naws_access_key_id = AKIAPLANTEDHOMEPROFL\naws_secret_access_key = planted-profile-secret\n")
    (home / ".aws" / "config").write_text("[default]\nregion = eu-west-3\n[profile operator]\nregion = eu-west-3\n")
    recorder = _Recorder()
    threading.Thread(target=recorder.serve_forever, daemon=True).start()
    operator_url = f"http://127.0.0.1:{recorder.server_address[1]}"
    planted = {
        "HOME": str(home),
        "AWS_ACCESS_KEY_ID": "AKIAPLANTEDENVIRONMT",
        "AWS_SECRET_ACCESS_KEY": "planted-env-secret",
        "AWS_SESSION_TOKEN": "planted-env-token",
        "AWS_PROFILE": "operator",
        "AWS_ENDPOINT_URL": operator_url,
        "AWS_ENDPOINT_URL_S3": operator_url,
    }
    for name, value in planted.items():
        monkeypatch.setenv(name, value)
    try:
        with LocalAWS(workers=1) as aws:  # the trigger runner too
            session = aws.session()
            ep = make_endpoint(session)
            plan = put_input(session, ep.bucket, "plans/plan.png", plan_png())
            request = put_input(session, ep.bucket, "in/request.json",
                                json.dumps({"s3_uri": plan}).encode(), "application/json")
            job = _submit(session, ep, request, "application/json")
            notes = read_notifications(session, ep.queue_url, 1, timeout=60, settle=1.0)
            members = group_members(aws.server.pid)
            environs = {pid: _environ(pid) for pid in members}
            moto_url = aws.endpoint_url("s3")
    finally:
        recorder.shutdown()
        recorder.server_close()

    assert recorder.seen == [], f"requests reached the operator's endpoint: {recorder.seen}"
    assert [n["invocationStatus"] for n in notes] == ["Completed"], notes
    assert notes[0]["inferenceId"] == job["InferenceId"]
    assert len(environs) >= 2, "the gunicorn master and its worker"
    for pid, env in environs.items():
        leaked = {k: v for k, v in env.items() if "PLANTED" in v.upper() or v == operator_url}
        assert leaked == {}, (pid, leaked)
        assert "AWS_PROFILE" not in env and "AWS_DEFAULT_PROFILE" not in env
        assert env["AWS_ACCESS_KEY_ID"] == "testing" and env["AWS_SESSION_TOKEN"] == "testing"
        assert env["AWS_ENDPOINT_URL"] == moto_url and "AWS_ENDPOINT_URL_S3" not in env
        for name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
            assert env[name] == os.devnull, (name, env[name])
        assert env["AWS_EC2_METADATA_DISABLED"] == "true"


def test_local_sessions_read_no_profile_and_no_shared_files(tmp_path, monkeypatch):
    """The in-process side (LocalAWS's own clients, the trigger runner, user code): a profile
    named in the environment that does not exist must neither break local mode nor be used."""
    (tmp_path / "config").write_text("[default]\nregion = eu-west-3\n")
    monkeypatch.setenv("AWS_PROFILE", "operator-only-profile")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAPLANTEDENVIRONMT")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "planted-env-secret")
    local = roomkit_aws.session("local", endpoints={"default": "http://127.0.0.1:9"})
    s3 = local.client("s3")
    assert s3.meta.endpoint_url == "http://127.0.0.1:9" and s3.meta.region_name == "us-east-1"
    creds = local.boto.get_credentials().get_frozen_credentials()
    assert (creds.access_key, creds.secret_key) == ("testing", "testing")
    assert local.boto.available_profiles == []  # nothing of the caller's config file


# -- item 9: a hung serving process ---------------------------------------------------------------
def test_a_server_that_stops_answering_ping_is_replaced_and_its_jobs_fail_once():
    with LocalAWS(workers=1, trigger=False, health_check_interval_s=0.5, unhealthy_after_s=3) as aws:
        session = aws.session()
        ep = make_endpoint(session, concurrency=2)
        bucket = _input_bucket(session)
        hung_pid = aws.server.pid
        os.killpg(hung_pid, signal.SIGSTOP)  # alive, holding its port, answering nothing
        try:
            held = [_submit(session, ep, put_input(session, bucket, f"in/{i}.png", plan_png()),
                            InvocationTimeoutSeconds=600) for i in range(2)]
            notes = read_notifications(session, ep.queue_url, 2, timeout=90, settle=2.0)
        finally:
            try:
                os.killpg(hung_pid, signal.SIGCONT)
            except ProcessLookupError:
                pass  # replaced: the group is gone

        counts = collections.Counter(n["inferenceId"] for n in notes)
        assert set(counts) == {j["InferenceId"] for j in held} and max(counts.values()) == 1, notes
        for note in notes:
            assert note["invocationStatus"] == "Failed"
            assert "stopped answering GET /ping" in note["failureReason"]
            assert "was replaced" in note["failureReason"]
        for job in held:
            error = json.loads(s3_read(session, job["FailureLocation"])[0])["error"]
            assert error["code"] == "model_container_unhealthy"
        assert list_keys(session, ep.bucket, "results/") == []
        assert aws.server.health_replacements >= 1 and aws.server.pid != hung_pid
        assert group_members(hung_pid) == [], "the hung group was killed, not left behind"

        # the replacement serves the next job
        after = _submit(session, ep, put_input(session, bucket, "in/after.png", plan_png()))
        note = read_notifications(session, ep.queue_url, 1, timeout=60)
        assert [(n["inferenceId"], n["invocationStatus"]) for n in note] == [(after["InferenceId"], "Completed")]
