"""The notebook-facing helpers: roomkit.notebooks.walkthrough, roomkit.serving.image, roomkit.serving.smoke.

The notebooks themselves run end to end in test_notebooks.py; these pin the helpers' own
behaviour (paths, tables, the local-AWS discovery, the deployment hand-over, the smoke test's
verdicts, what the image helpers say about this machine) through their public functions.
"""
from __future__ import annotations

import json
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from roomkit.serving import image, smoke
from roomkit.notebooks import walkthrough as wt
from roomkit.aws import pid_alive
from roomkit.errors import ConfigError, InputError

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "data" / "samples"


# -- paths and samples ---------------------------------------------------------------------------
def test_output_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv(wt.OUT_ENV, str(tmp_path / "from-env"))
    assert wt.output_dir(tmp_path / "given") == (tmp_path / "given").resolve()
    assert (tmp_path / "given").is_dir()
    assert wt.output_dir() == (tmp_path / "from-env").resolve()
    monkeypatch.delenv(wt.OUT_ENV)
    assert wt.output_dir(create=False) == (ROOT / "out" / "walkthrough").resolve()


def test_load_samples_by_name_and_unknown_names():
    picked = wt.load_samples(SAMPLES, ["single_room", "blank_page"])
    assert [s.name for s in picked] == ["single_room", "blank_page"]
    assert picked[0].truth is not None and len(picked[0].truth.rooms) == 1
    with pytest.raises(InputError, match="no sample named nope"):
        wt.load_samples(SAMPLES, ["nope"])


def test_room_count_table_and_comparison_are_deterministic_text():
    plans = wt.load_samples(SAMPLES, ["single_room", "blank_page"])
    cmp = wt.compare_configs(plans, {"default": {}, "strict": {"min_confidence": 1.0}})
    table = wt.room_count_table(cmp.runs["default"])
    lines = table.splitlines()
    assert lines[0].split() == ["plan", "rooms", "truth"]
    assert lines[3].split()[0] == "blank_page" and lines[3].split()[1:] == ["0", "0"]
    assert lines[-1].split()[0] == "total"
    assert not re.search(r"\d ?ms\b", table)  # no timings: nbval compares it
    # min_confidence=1.0 drops every room: its F1 on the one-room plan is 0, the blank page stays 1
    strict = {s.name: s for s in cmp.summaries["strict"].plans}
    assert strict["single_room"].n_pred == 0 and strict["blank_page"].f1(0.5) == 1.0
    assert cmp.table().splitlines()[-1].startswith("strict: F1@0.5=")
    assert cmp.best in ("default", "strict")
    assert wt.most_changed(cmp, "default", "strict", n=1)[0] in ("single_room", "blank_page")
    entries = wt.compare_entries(cmp, ["single_room"])
    assert [e.name for e in entries] == ["single_room · default", "single_room · strict"]


def test_compare_configs_reuses_known_runs_and_checks_them():
    plans = wt.load_samples(SAMPLES, ["blank_page"])
    runs = wt.detect_samples(plans, {})
    cmp = wt.compare_configs(plans, {"default": {}}, known={"default": runs})
    assert cmp.runs["default"][0] is runs[0]
    with pytest.raises(ConfigError, match="not for these samples"):
        wt.compare_configs(wt.load_samples(SAMPLES, ["single_room"]), {"default": {}}, known={"default": runs})


def test_detections_for_qa_prefers_saved_results_and_falls_back_to_detecting(tmp_path):
    plans = wt.load_samples(SAMPLES, ["single_room"])
    found, source = wt.detections_for_qa(tmp_path / "results", plans)
    assert set(found) == {"single_room"} and "detected here with the default configuration" in source
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "single_room.json").write_text(json.dumps(found["single_room"].to_response()))
    again, source = wt.detections_for_qa(tmp_path / "results", plans)
    assert "results of the deployed endpoint (1 plans" in source
    assert len(again["single_room"].rooms) == len(found["single_room"].rooms)


def test_make_broken_plan_is_a_truncated_png(tmp_path):
    path = wt.make_broken_plan(tmp_path, SAMPLES / "single_room.png", keep_bytes=100)
    data = path.read_bytes()
    assert path.name == "broken_upload.png" and len(data) == 100 and data.startswith(b"\x89PNG")
    from roomkit.plans.imageio import load_image

    with pytest.raises(InputError):
        load_image(path)


def test_outcome_counts():
    from roomkit.aws.jobs import ResultRow

    rows = [ResultRow("a", "1", "success"), ResultRow("b", "2", "failed"), ResultRow("c", "3", "success")]
    assert wt.outcome_counts(rows) == "3 plans: 2 succeeded, 1 failed, 0 pending"


def test_recorded_image_round_trip(tmp_path):
    assert wt.recorded_image(tmp_path) is None
    wt.record_image(tmp_path, "123456789012.dkr.ecr.eu-west-1.amazonaws.com/roomkit:v1", how="test")
    assert wt.recorded_image(tmp_path).endswith("roomkit:v1")


# -- local AWS discovery --------------------------------------------------------------------------
def test_running_local_state_ignores_missing_stale_and_dead_state(tmp_path, monkeypatch):
    state = tmp_path / "local.json"
    monkeypatch.setenv("ROOMKIT_LOCAL_STATE", str(state))
    assert wt.running_local_state() is None
    state.write_text("not json")
    assert wt.running_local_state() is None
    # a pid that cannot exist
    state.write_text(json.dumps({"pid": 2**22 + 12345, "endpoints": {"default": "http://127.0.0.1:9"}}))
    assert wt.running_local_state() is None
    # a live pid (ours) whose endpoint does not answer
    state.write_text(json.dumps({"pid": os.getpid(), "endpoints": {"default": "http://127.0.0.1:9"}}))
    assert wt.running_local_state() is None


def test_kernel_scoped_local_aws_is_shared_through_the_state_file(tmp_path, monkeypatch):
    """connect() without a running local AWS starts one, records it for other kernels, and
    stop_local() stops it and removes the record."""
    state = tmp_path / "state.json"
    monkeypatch.setenv("ROOMKIT_LOCAL_STATE", str(state))
    try:
        session = wt.connect("local", quiet=True)
        recorded = wt.running_local_state()
        assert recorded is not None and recorded["pid"] == os.getpid()
        assert recorded["endpoints"] == dict(session.endpoints)
        assert wt.connect("local", quiet=True).endpoints == session.endpoints  # reused, not a second one
        session.client("s3").list_buckets()
    finally:
        wt.stop_local()
    assert not state.exists()
    assert wt.running_local_state() is None


def test_connect_rejects_unknown_mode():
    with pytest.raises(ConfigError, match="mode must be"):
        wt.connect("cloud")


@pytest.mark.slow
def test_connect_shares_a_running_local_aws_and_ensure_deployment_recreates_it(tmp_path, monkeypatch):
    """A running LocalAWS with a state file is found and shared; a manifest whose endpoint is
    gone is re-deployed in local mode, refused in aws mode."""
    from roomkit.aws.deploy import deploy
    from roomkit.aws.deployment import Deployment
    from roomkit.local import LocalAWS

    state = tmp_path / "local.json"
    monkeypatch.setenv("ROOMKIT_LOCAL_STATE", str(state))
    manifest = tmp_path / "deployment.json"
    spec = wt.default_spec("wt-test", tmp_path, max_capacity=1)
    with LocalAWS(state_file=state, workers=1, trigger=False) as first:
        session = wt.connect("local", quiet=True)
        assert session.endpoints == first.session().endpoints
        assert [c.ok for c in wt.preflight(spec, session)] == [True, True, True]
        dep = deploy(spec, session, progress=False, manifest=manifest)
        assert wt.ensure_deployment(session, manifest) == dep  # InService: used as is
        summary = wt.endpoint_summary(session, dep)
        assert summary.text().splitlines()[0] == "endpoint wt-test: InService"
        assert "autoscaling: 0-1 instances" in summary.text()
    with LocalAWS(state_file=state, workers=1, trigger=False) as second:
        session = second.session()
        again = wt.ensure_deployment(session, manifest)  # the first local AWS and its endpoint are gone
        assert again.endpoint_name == dep.endpoint_name
        assert wt.endpoint_summary(session, again).status == "InService"
        assert Deployment.load(manifest).endpoint_name == "wt-test"
        aws_like = type(session)(mode="aws", region=session.region, boto=session.boto)
        monkeypatch.setattr(aws_like, "client", session.client)
        with pytest.raises(ConfigError, match="records a local-mode deployment"):
            wt.ensure_deployment(aws_like, manifest)
        with pytest.raises(ConfigError, match="run 03_deploy_async_endpoint.ipynb first"):
            wt.ensure_deployment(aws_like, tmp_path / "missing.json")


def test_preflight_reports_a_bad_model_config_without_raising(tmp_path):
    from roomkit.aws.spec import DeploymentSpec

    config = tmp_path / "config.json"
    config.write_text(json.dumps({"min_room_area": 5}))

    class NoAws:
        mode, region = "local", "us-east-1"

        def account_id(self):
            raise RuntimeError("no AWS here")

    checks = wt.preflight(DeploymentSpec(name="x", model_config=str(config)), NoAws())
    assert [(c.name, c.ok) for c in checks] == [("identity", False), ("model config", False)]
    assert "min_room_area" in checks[1].detail and "no AWS here" in checks[0].detail


# -- image helpers -------------------------------------------------------------------------------
def test_lint_dockerfile_reports_findings(tmp_path):
    good = image.lint_dockerfile()
    if not good.available:
        pytest.skip("hadolint is not installed")
    assert good.ok, good.text()
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /tmp && apt-get install curl\n")
    result = image.lint_dockerfile(bad)
    codes = {f["code"] for f in result.findings}
    assert not result.ok and "DL3007" in codes  # :latest
    assert "finding(s) in Dockerfile" in result.text()


def test_lint_without_hadolint_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(image, "_which", lambda name: None)
    result = image.lint_dockerfile()
    assert not result.available and not result.ok
    assert "hadolint is not installed" in result.text()


def test_build_environment_names_what_is_missing(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no docker, no aws CLI
    env = image.build_environment()
    assert [c.name for c in env.checks] == ["docker CLI", "docker buildx", "Docker engine", "AWS CLI", "AWS credentials"]
    assert not env.can_build
    assert "cannot be built and pushed from this machine" in env.text()
    assert "docker CLI" in env.text().splitlines()[-1]


def test_build_command_wraps_the_build_script():
    cmd = image.build_command(tag="v1", region="eu-west-1", repository="plans")
    assert cmd[0] == "bash" and cmd[1].endswith("container/build_and_push.sh")
    assert cmd[2:] == ["--repository", "plans", "--tag", "v1", "--region", "eu-west-1"]


# -- smoke test ------------------------------------------------------------------------------------
class _BadServer(BaseHTTPRequestHandler):
    """Answers /ping but crashes on /invocations: what the smoke test must catch."""

    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b"Internal Server Error"
        self.send_response(500)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_smoke_test_fails_a_server_that_crashes_on_invocations():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _BadServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        checks = smoke.smoke_test(f"http://127.0.0.1:{server.server_port}", SAMPLES / "single_room.png")
    finally:
        server.shutdown()
        server.server_close()
    assert [c.ok for c in checks] == [True, False, False]
    assert "HTTP 500" in checks[1].detail and "no JSON error body" in checks[2].detail


def test_smoke_test_without_a_server():
    from roomkit.local.server_process import free_port

    checks = smoke.smoke_test(f"http://127.0.0.1:{free_port()}", SAMPLES / "single_room.png")
    assert len(checks) == 1 and not checks[0].ok and "no answer" in checks[0].detail


@pytest.mark.slow
def test_entrypoint_from_the_checkout_passes_the_smoke_test(tmp_path):
    from roomkit.serving.artifacts import extract_model, package_model

    model = extract_model(package_model({"min_room_area": 0.002}, tmp_path), tmp_path / "model")
    server = image.serve_from_checkout(model, log_path=tmp_path / "serve.log")
    try:
        checks = smoke.smoke_test(server.url, SAMPLES / "single_room.png")
    finally:
        server.stop()
    assert all(c.ok for c in checks), [str(c) for c in checks]
    assert "undecodable_image" in checks[2].detail or "error code" in checks[2].detail
    log = (tmp_path / "serve.log").read_text()
    assert "invocation" in log  # the server that answered is the one started from container/serve


# -- reaper ------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_reaper_stops_servers_of_a_killed_owner(tmp_path):
    """An owner that starts a server in its own session and is then SIGKILLed (as nbval kills
    kernels) does not leave the server running."""
    import signal
    import subprocess
    import sys
    import time

    owner_code = (
        "import subprocess, sys, time\n"
        "from roomkit import reaper\n"
        "reaper.ensure()\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'], start_new_session=True)\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(300)\n"
    )
    owner = subprocess.Popen([sys.executable, "-c", owner_code], stdout=subprocess.PIPE, text=True)
    child = int(owner.stdout.readline())
    try:
        time.sleep(1.5)  # the watcher notes the child
        assert pid_alive(child)
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        deadline = time.monotonic() + 15
        while pid_alive(child) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not pid_alive(child)
    finally:
        if pid_alive(child):
            os.killpg(child, signal.SIGKILL)


def test_submission_inputs(tmp_path):
    samples = wt.submission_inputs(None, tmp_path, include_broken=False)
    assert samples == [str(SAMPLES.resolve())]
    one = wt.submission_inputs("s3://bucket/plans/", tmp_path)  # a string is one input, not characters
    assert one[0] == "s3://bucket/plans/" and one[1].endswith("broken_upload.png") and len(one) == 2
    assert wt.submission_inputs([tmp_path / "a.png", "b.png"], tmp_path, include_broken=False) == [
        str(tmp_path / "a.png"), "b.png"]
    with pytest.raises(ConfigError, match="inputs is empty"):
        wt.submission_inputs([], tmp_path)


def test_connect_in_aws_mode_without_credentials_says_what_to_do(tmp_path, monkeypatch):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(ConfigError, match="needs usable AWS credentials"):
        wt.connect("aws", region="eu-west-1")


def test_build_environment_runs_the_tools_it_finds(monkeypatch, tmp_path):
    """Fake docker (buildx works, no engine) and aws (credentials work) on PATH."""
    docker = tmp_path / "docker"
    docker.write_text('#!/bin/sh\ncase "$1" in\n  buildx) echo "github.com/docker/buildx v0.19.3"; exit 0 ;;\n'
                      '  info) echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock." >&2; exit 1 ;;\n'
                      'esac\nexit 2\n')
    aws = tmp_path / "aws"
    aws.write_text('#!/bin/sh\necho 210987654321\n')
    for tool in (docker, aws):
        tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}/usr/bin{os.pathsep}/bin")
    env = image.build_environment()
    status = {c.name: (c.ok, c.detail) for c in env.checks}
    assert status["docker buildx"] == (True, "github.com/docker/buildx v0.19.3")
    assert status["Docker engine"][0] is False and "Cannot connect to the Docker daemon" in status["Docker engine"][1]
    assert status["AWS credentials"] == (True, "account 210987654321")
    assert [c.name for c in env.missing()] == ["Docker engine"]
    engine_up = tmp_path / "docker"
    engine_up.write_text('#!/bin/sh\ncase "$1" in buildx) echo v0.19;; info) echo 27.3.1;; esac\nexit 0\n')
    assert image.build_environment().can_build
