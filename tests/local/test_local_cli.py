"""`roomkit local up|status|env|down` as a user runs them: a foreground process, a state file
read by `roomkit.aws.session(mode="local")`, the printed environment, and a clean stop."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

import roomkit.aws
from local_testkit import group_members, port_closed

pytestmark = pytest.mark.slow


def _roomkit(*args: str, env: dict, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "roomkit", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture
def env(tmp_path):
    env = dict(os.environ)
    env["ROOMKIT_LOCAL_STATE"] = str(tmp_path / "local.json")
    for key in [k for k in env if k.startswith("AWS_")]:
        del env[key]
    return env


def test_up_status_env_down(env, tmp_path, monkeypatch):
    state_path = tmp_path / "local.json"
    proc = subprocess.Popen([sys.executable, "-m", "roomkit", "local", "up", "--workers", "1"], env=env,
                            stdout=subprocess.PIPE, stderr=open(tmp_path / "up.log", "w"), text=True)
    try:
        printed = {}
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            if line.startswith("export "):
                key, _, value = line[len("export "):].strip().partition("=")
                printed[key] = value
                if key == "ROOMKIT_LOCAL_STATE":
                    break
        assert printed.get("ROOMKIT_LOCAL_STATE") == str(state_path), (tmp_path / "up.log").read_text()
        state = json.loads(state_path.read_text())
        assert state["pid"] == proc.pid
        assert printed["AWS_ENDPOINT_URL"] == state["endpoints"]["default"]
        assert printed["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] == state["endpoints"]["sagemaker-runtime"]
        assert printed["AWS_ACCESS_KEY_ID"] == "testing" and printed["AWS_REGION"] == "us-east-1"

        # the factory finds it through the state file
        monkeypatch.setenv("ROOMKIT_LOCAL_STATE", str(state_path))
        session = roomkit.aws.session("local")
        s3 = session.client("s3")
        s3.create_bucket(Bucket="cli-bucket")
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["cli-bucket"]
        repo = session.client("ecr").describe_images(repositoryName="roomkit")["imageDetails"][0]
        assert repo["imageTags"] == ["local"]

        # plain boto3 with only the printed environment reaches it too
        code = ("import boto3; print([b['Name'] for b in boto3.client('s3').list_buckets()['Buckets']])")
        out = subprocess.run([sys.executable, "-c", code], env={**env, **printed}, capture_output=True,
                             text=True, timeout=60)
        assert out.stdout.strip() == "['cli-bucket']", out.stderr

        status = _roomkit("local", "status", env=env)
        assert status.returncode == 0, status.stderr
        info = json.loads(status.stdout)
        assert info["running"] and info["pid"] == proc.pid and info["queues"]["endpoints"] == {}
        shown = _roomkit("local", "env", "--format", "json", env=env)
        assert json.loads(shown.stdout)["AWS_ENDPOINT_URL"] == printed["AWS_ENDPOINT_URL"]

        again = _roomkit("local", "up", env=env)
        assert again.returncode == 2 and "already runs" in again.stderr

        server_pid = None
        server_url = state["server_url"]
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    cmd = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
                except OSError:
                    continue
                if b"serve" in cmd and server_url.rsplit(":", 1)[1].encode() in cmd:
                    server_pid = int(pid)
        assert server_pid is not None

        down = _roomkit("local", "down", env=env, timeout=90)
        assert down.returncode == 0, down.stderr
        assert proc.wait(timeout=30) == 0
        assert not state_path.exists()
        assert all(port_closed(u) for u in [*state["endpoints"].values(), server_url])
        assert group_members(server_pid) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    assert _roomkit("local", "status", env=env).returncode == 3
    assert _roomkit("local", "down", env=env).returncode == 1


def test_down_removes_a_stale_state_file(env, tmp_path):
    state_path = tmp_path / "local.json"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    state_path.write_text(json.dumps({"pid": dead.pid, "endpoints": {"default": "http://127.0.0.1:1"}}))
    result = _roomkit("local", "down", env=env)
    assert result.returncode == 0 and "stale" in result.stderr
    assert not state_path.exists()
