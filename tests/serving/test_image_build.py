"""The serving image really built and run: ``container/build_local.sh`` builds container/Dockerfile
with Debian's buildah on a stand-in for the official python base (pip 24.0), runs it as SageMaker
does and checks it (roomkit.serving.image_check); each check is one test here.

Where buildah cannot run (not root, not installed) the build test is skipped with the reason;
with ``CI=true`` it fails instead, so CI cannot pass without building the image.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from roomkit.serving.image_check import CHECK_NAMES
from roomkit.serving.image_local import DEFAULT_TAG, DIGEST_LABEL, image_info, local_build_environment, source_digest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "container" / "build_local.sh"


@pytest.fixture(scope="module")
def built(tmp_path_factory, pytestconfig):
    """build_local.sh once for the module: (its process, the checks' JSON report)."""
    env = local_build_environment()
    if not env.can_build:
        reason = f"the image cannot be built and run here: {env.reason()}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true: CI must build the image; .ci/run installs buildah and mmdebstrap)")
        pytest.skip(reason)
    tmp = tmp_path_factory.mktemp("image")
    report = tmp / "report.json"
    proc = subprocess.run(["bash", str(SCRIPT), "--report", str(report)], capture_output=True, text=True,
                          timeout=3000, env={**os.environ, "ROOMKIT_PYTHON": sys.executable})
    # The test log shows the build and the checks, past pytest's output capture.
    terminal = pytestconfig.pluginmanager.get_plugin("terminalreporter")
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
    if terminal is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            terminal.write_line("")
            for line in proc.stderr.splitlines():
                if line.startswith(("build_local:", "[ok]", "[FAIL]", "image_check:")):
                    terminal.write_line(f"    {line}")
    return proc, (json.loads(report.read_text()) if report.is_file() else None)


@pytest.mark.slow
def test_image_builds_from_the_dockerfile_on_the_standin_base(built):
    proc, report = built
    assert proc.returncode == 0, proc.stderr[-6000:]
    assert proc.stdout.strip().splitlines()[-1] == DEFAULT_TAG
    assert "built localhost/roomkit:local-build in" in proc.stderr and "image size" in proc.stderr
    info = image_info(DEFAULT_TAG)
    assert info is not None and info.labels[DIGEST_LABEL] == source_digest(ROOT)
    assert report is not None and report["facts"]["size_bytes"] == info.size_bytes


@pytest.mark.slow
@pytest.mark.parametrize("name", CHECK_NAMES)
def test_the_built_image_passes(built, name):
    proc, report = built
    assert report is not None, proc.stderr[-6000:]
    found = [c for c in report["checks"] if c["name"] == name]
    assert len(found) == 1, f"check {name} did not run:\n{proc.stderr[-4000:]}"
    assert found[0]["ok"], found[0]["detail"]


@pytest.mark.slow
def test_notebook_path_finds_the_current_image_and_serves_it_on_loopback(built, tmp_path):
    """What notebook 02 does without a Docker engine: find_image (built from these sources),
    serve_image (the image's entrypoint on a free loopback port), the smoke test."""
    from roomkit.serving import smoke
    from roomkit.serving.artifacts import extract_model, package_model
    from roomkit.serving.image_local import find_image, serve_image

    proc, _ = built
    assert proc.returncode == 0, proc.stderr[-3000:]
    info, why = find_image()
    assert info is not None and info.tag == DEFAULT_TAG, why
    model = extract_model(package_model({"min_room_area": 0.002}, tmp_path), tmp_path / "model")
    server = serve_image(model, log_path=tmp_path / "serve.log")
    try:
        assert server.url.startswith("http://127.0.0.1:")
        checks = smoke.smoke_test(server.url, ROOT / "data" / "samples" / "furnished.png")
    finally:
        code = server.stop()
    assert all(c.ok for c in checks), [str(c) for c in checks]
    assert code == 0
    ready = [json.loads(line) for line in (tmp_path / "serve.log").read_text().splitlines()
             if '"worker_ready"' in line]
    assert len(ready) == 1 and ready[0]["config"]["min_room_area"] == 0.002  # workers=1, the model's config


# -- without buildah ---------------------------------------------------------------------------------
@pytest.mark.parametrize("ci", ["", "true"])
def test_without_buildah_the_build_is_skipped_with_the_reason_or_fails_under_ci(tmp_path, ci):
    env = {**os.environ, "PATH": str(tmp_path), "CI": ci}  # nothing on PATH: no buildah, no unshare
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rsE", "-p", "no:cacheprovider", "--rootdir", str(ROOT),
         f"{__file__}::test_image_builds_from_the_dockerfile_on_the_standin_base"],
        capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
    assert "buildah: not on PATH" in proc.stdout, proc.stdout
    if ci:
        assert proc.returncode == 1 and "1 error" in proc.stdout and "CI=true" in proc.stdout
    else:
        assert proc.returncode == 0 and "1 skipped" in proc.stdout and "SKIPPED" in proc.stdout


def test_build_script_stops_early_with_a_clear_message(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("id", "sed"):
        os.symlink(shutil.which(tool), bindir / tool)
    env = {"PATH": str(bindir), "HOME": str(tmp_path)}
    done = subprocess.run(["/bin/bash", str(SCRIPT), "--run-as-user", "roomkit"], capture_output=True, text=True,
                          timeout=60, env=env)
    assert done.returncode == 1 and "--run-as-user takes a numeric uid" in done.stderr and done.stdout == ""
    done = subprocess.run(["/bin/bash", str(SCRIPT)], capture_output=True, text=True, timeout=60, env=env)
    want = "buildah not found on PATH: apt-get install buildah" if os.geteuid() == 0 else "needs root"
    assert done.returncode == 1 and want in done.stderr and done.stdout == ""


def test_source_digest_follows_what_the_dockerfile_copies(tmp_path):
    """The label that tells a current image from a stale one: it changes with the Dockerfile and
    with what the Dockerfile copies, not with caches or files that stay out of the image."""
    copy = tmp_path / "checkout"
    for rel in ("container/Dockerfile", "container/serve", "container/requirements.txt", "pyproject.toml", "README.md"):
        (copy / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, copy / rel)
    shutil.copytree(ROOT / "lib", copy / "lib", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    digest = source_digest(copy)
    assert digest == source_digest(ROOT)
    (copy / "lib/roomkit/__pycache__").mkdir(exist_ok=True)
    (copy / "lib/roomkit/__pycache__/errors.cpython-311.pyc").write_bytes(b"\0")
    (copy / "tests").mkdir()
    (copy / "tests/test_new.py").write_text("")
    assert source_digest(copy) == digest
    errors = copy / "lib/roomkit/errors.py"
    errors.write_text(errors.read_text() + "\n# changed\n")
    changed = source_digest(copy)
    assert changed != digest
    dockerfile = copy / "container/Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("ARG RUN_AS_USER=0", "ARG RUN_AS_USER=10001"))
    assert source_digest(copy) not in (digest, changed)
