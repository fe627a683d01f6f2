"""Reliability of local mode (issue 5): load from many threads, corrupt inputs, a serving
process killed mid-run, shutdown with work queued, and a clean exit. All on loopback, against
the real `roomkit serve`."""
from __future__ import annotations

import collections
import json
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from local_testkit import (CORRUPT_PNG, group_members, list_keys, make_endpoint, plan_png, port_closed,
                           put_input, read_notifications)
from roomkit.local import LocalAWS

pytestmark = pytest.mark.slow


def _submit_many(session, ep, bodies: list[bytes], threads: int, **kw) -> list[dict]:
    """Upload and submit every body from ``threads`` threads; the responses in input order."""
    runtime = session.client("sagemaker-runtime")
    s3 = session.client("s3")

    def one(i: int) -> dict:
        key = f"in/{i:04d}.png"
        s3.put_object(Bucket=ep.bucket, Key=key, Body=bodies[i], ContentType="image/png")
        resp = runtime.invoke_endpoint_async(EndpointName=ep.name, InputLocation=f"s3://{ep.bucket}/{key}",
                                             ContentType="image/png", **kw)
        return {"i": i, "id": resp["InferenceId"], "out": resp["OutputLocation"], "fail": resp["FailureLocation"]}

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(one, range(len(bodies))))


def _outcomes(session, ep, jobs):
    """Per inference id: which objects exist (exactly one expected)."""
    keys = set(list_keys(session, ep.bucket, "results/")) | set(list_keys(session, ep.bucket, "failures/"))
    found = {}
    for job in jobs:
        have = [k for k in (f"results/{job['id']}.out", f"failures/{job['id']}-error.out") if k in keys]
        found[job["id"]] = have
    return found, keys


def test_300_submissions_from_8_threads_each_end_exactly_once():
    with LocalAWS(workers=2, trigger=False) as aws:
        session = aws.session()
        ep = make_endpoint(session, concurrency=2)
        valid = plan_png(200, 160, 2)
        bodies = [CORRUPT_PNG if i % 10 == 7 else valid for i in range(300)]
        depths: list[int] = []
        stop = threading.Event()

        def monitor() -> None:
            while not stop.is_set():
                depths.append(aws.queue_depth(ep.name))
                time.sleep(0.05)

        watcher = threading.Thread(target=monitor)
        watcher.start()
        try:
            jobs = _submit_many(session, ep, bodies, threads=8)
            notes = read_notifications(session, ep.queue_url, 300, timeout=180, settle=2.0)
        finally:
            stop.set()
            watcher.join()

        ids = [j["id"] for j in jobs]
        assert len(set(ids)) == 300
        counts = collections.Counter(n["inferenceId"] for n in notes)
        assert set(counts) == set(ids), "a notification for every job, none for anything else"
        assert max(counts.values()) == 1, [i for i, c in counts.items() if c > 1][:5]
        status = {n["inferenceId"]: n["invocationStatus"] for n in notes}
        for job in jobs:
            expected = "Failed" if job["i"] % 10 == 7 else "Completed"
            assert status[job["id"]] == expected, (job, status[job["id"]])
        found, keys = _outcomes(session, ep, jobs)
        assert all(len(v) == 1 for v in found.values())
        assert len(keys) == 300, "no stray objects"
        for job in jobs[7::10]:
            assert found[job["id"]] == [f"failures/{job['id']}-error.out"]
        assert max(depths) > 0 and aws.queue_depth(ep.name) == 0
        stats = aws.runtime.stats()[ep.name]
        assert (stats["completed"], stats["failed"]) == (270, 30)


@pytest.mark.parametrize("retry", [True, False], ids=["retried-once", "no-retry"])
def test_serving_process_killed_mid_run(retry):
    with LocalAWS(workers=2, trigger=False, retry_on_crash=retry) as aws:
        session = aws.session()
        ep = make_endpoint(session, concurrency=2)
        bodies = [plan_png(640, 480, 3)] * 30
        first_pid = aws.server.pid
        started = time.monotonic()
        os.killpg(first_pid, signal.SIGSTOP)  # hold two requests in flight ...
        jobs = _submit_many(session, ep, bodies[:2], threads=1, InvocationTimeoutSeconds=60)
        deadline = time.monotonic() + 60
        while aws.runtime.stats()[ep.name]["invoking"] < 2 and time.monotonic() < deadline:
            time.sleep(0.005)
        os.killpg(first_pid, signal.SIGKILL)  # ... and the whole container dies under them
        jobs += _submit_many(session, ep, bodies[2:], threads=4, InvocationTimeoutSeconds=60)
        notes = read_notifications(session, ep.queue_url, 30, timeout=120, settle=1.0)
        elapsed = time.monotonic() - started

        counts = collections.Counter(n["inferenceId"] for n in notes)
        assert set(counts) == {j["id"] for j in jobs} and max(counts.values()) == 1
        found, _ = _outcomes(session, ep, jobs)
        assert all(len(v) == 1 for v in found.values())
        failed = [n for n in notes if n["invocationStatus"] == "Failed"]
        if retry:
            assert not failed, [n["failureReason"] for n in failed]
        else:
            assert len(failed) == 2 and {n["inferenceId"] for n in failed} == {j["id"] for j in jobs[:2]}
            for note in failed:
                assert "closed the connection without a response" in note["failureReason"]
                assert "crashed or was restarted" in note["failureReason"]
        assert aws.server.restarts >= 1 and aws.server.pid != first_pid and aws.server.ping()
        assert group_members(first_pid) == [], "the killed group left no process behind"
        # jobs queued behind the crash ran on the restarted server
        assert sum(n["invocationStatus"] == "Completed" for n in notes) >= 28
        assert elapsed < 60, f"took {elapsed:.0f} s: something waited for a timeout"


@pytest.mark.parametrize("mode", ["fail-queued", "drain", "grace-expired"])
def test_shutdown_with_work_queued(mode):
    with LocalAWS(workers=2, trigger=False) as aws:
        session = aws.session()
        ep = make_endpoint(session, concurrency=1)
        pgid = aws.server.pid
        os.killpg(pgid, signal.SIGSTOP)  # one request held in flight, the rest queued
        try:
            jobs = _submit_many(session, ep, [plan_png(640, 480, 3)] * 12, threads=4)
            deadline = time.monotonic() + 30
            while aws.runtime.stats()[ep.name]["invoking"] < 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            if mode == "drain":
                os.killpg(pgid, signal.SIGCONT)
            result: dict = {}
            stopper = threading.Thread(target=lambda: result.update(aws.runtime.stop(
                drain=mode == "drain", grace_s=1.0 if mode == "grace-expired" else 30.0)))
            stopper.start()
            time.sleep(0.5 if mode == "fail-queued" else 0.0)
        finally:
            if mode == "fail-queued":
                os.killpg(pgid, signal.SIGCONT)  # the in-flight request finishes within the grace
        stopper.join(timeout=60)
        assert not stopper.is_alive()
        if mode == "grace-expired":
            os.killpg(pgid, signal.SIGCONT)  # its late answer must not produce a second outcome
            time.sleep(1.0)
        report = result

        notes = read_notifications(session, ep.queue_url, 12, timeout=30, settle=1.0)
        counts = collections.Counter(n["inferenceId"] for n in notes)
        assert set(counts) == {j["id"] for j in jobs} and max(counts.values()) == 1
        found, _ = _outcomes(session, ep, jobs)
        assert all(len(v) == 1 for v in found.values()), found
        s3 = session.client("s3")
        for key in list_keys(session, ep.bucket, "results/"):  # no half-written output
            doc = json.loads(s3.get_object(Bucket=ep.bucket, Key=key)["Body"].read())
            assert doc["status"] == "success"
        failed = {n["inferenceId"]: n["failureReason"] for n in notes if n["invocationStatus"] == "Failed"}
        if mode == "drain":
            assert failed == {} and report == {"queued": [], "in_flight": []}
        elif mode == "fail-queued":
            assert len(report["queued"]) == 11 and report["in_flight"] == []
            assert set(failed) == set(report["queued"])
            assert all("shut down before this request was processed" in r for r in failed.values())
        else:
            assert len(report["queued"]) == 11 and len(report["in_flight"]) == 1
            assert set(failed) == set(report["queued"]) | set(report["in_flight"])
            assert "shut down while this request was being processed" in failed[report["in_flight"][0]]
            assert list_keys(session, ep.bucket, "results/") == []
        # after shutdown new requests are refused with AWS's 503 code
        once = session.client("sagemaker-runtime", config=Config(retries={"max_attempts": 1, "mode": "standard"}))
        put_input(session, ep.bucket, "in/late.png", plan_png())
        with pytest.raises(ClientError) as exc:
            once.invoke_endpoint_async(EndpointName=ep.name, InputLocation=f"s3://{ep.bucket}/in/late.png")
        assert exc.value.response["Error"]["Code"] == "ServiceUnavailable"


def test_exit_stops_every_process_and_releases_every_port(tmp_path):
    state = tmp_path / "state.json"
    with LocalAWS(workers=2, trigger=True, state_file=state) as aws:
        urls = [aws.endpoint_url("s3"), aws.endpoint_url("sagemaker-runtime"), aws.server_url]
        pgid = aws.server.pid
        assert json.loads(state.read_text())["endpoints"]["sagemaker-runtime"] == urls[1]
        assert aws.env()["ROOMKIT_LOCAL_STATE"] == str(state)
        assert not any(port_closed(u) for u in urls)
        work_dir = aws.work_dir
    assert all(port_closed(u) for u in urls)
    assert group_members(pgid) == []
    assert not state.exists() and not work_dir.exists()
    stray = [t.name for t in threading.enumerate() if t.name.startswith("roomkit-") and t.is_alive()]
    assert stray == []
