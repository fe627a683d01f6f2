"""The serving image built and run on this machine without a Docker engine, with Debian's buildah.

``container/build_local.sh`` is the one script a user runs (``make image``): it builds a stand-in
for the official python base once, builds ``container/Dockerfile`` on it exactly as a release
would, and then runs the checks of :mod:`roomkit.serving.image_check` (the image run as SageMaker runs
it). This module holds what the script, the tests and notebook 02 call:

- :func:`local_build_environment` says whether this machine can build and run it (root, buildah,
  mmdebstrap for the first build, ``unshare`` for the checks) and why not;
- :func:`build_local` runs the script; :func:`find_image` looks a built image up by tag and says
  whether it was built from this checkout's sources (:func:`source_digest`, kept on the image as
  a label);
- :class:`ImageRoot` and :class:`Container` run commands and the server from an image
  (``buildah run``); :func:`serve_image` serves an image on a loopback port for a smoke test.

``container/build_and_push.sh`` stays the release path (Docker with buildx, pushed to ECR).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from roomkit.serving.image import BuildEnvironment, Check, ImageBuildError, container_dir

__all__ = [
    "DEFAULT_TAG",
    "MODEL_DIR",
    "LocalEnvironment",
    "ImageInfo",
    "ImageRoot",
    "Container",
    "ServedImage",
    "local_build_environment",
    "dockerfile_instructions",
    "source_digest",
    "image_info",
    "find_image",
    "build_local",
    "wait_for_ping",
    "serve_image",
]

DEFAULT_TAG = "localhost/roomkit:local-build"
BASE_PREFIX = "localhost/roomkit-base"
DIGEST_LABEL = "org.roomkit.source-digest"
MODEL_DIR = "/opt/ml/model"
PING_TIMEOUT_S = 2.0  # SageMaker's timeout for each /ping
_BUILDAH = ("buildah", "--storage-driver", "vfs")
_RUN_FLAGS = ("--isolation", "chroot", "--network", "host")


# -- can this machine build and run the image? ---------------------------------------------------------
@dataclass
class LocalEnvironment(BuildEnvironment):
    """What ``container/build_local.sh`` needs, each checked on this machine."""

    def reason(self) -> str:
        return "; ".join(f"{c.name}: {c.detail}" for c in self.missing())

    def text(self) -> str:
        lines = [str(c) for c in self.checks]
        lines.append("=> this machine can build and run the image with buildah" if self.can_build else
                     "=> the image cannot be built here with buildah: " + self.reason())
        return "\n".join(lines)


def _buildah(*args: str, timeout: float = 600.0, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([*_BUILDAH, *args], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise ImageBuildError(f"buildah {args[0]} failed: {(proc.stderr or proc.stdout).strip()[-800:]}")
    return proc


def _base_cached() -> bool:
    try:
        proc = _buildah("images", "--format", "{{.Name}}", timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0 and BASE_PREFIX in proc.stdout


def local_build_environment() -> LocalEnvironment:
    """Linux, root, buildah, mmdebstrap (unless the stand-in base is already built) and
    ``unshare`` (the checks' private network namespace)."""
    checks = [Check("Linux", sys.platform.startswith("linux"), sys.platform)]
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    checks.append(Check("root", root, "yes" if root else
                        "buildah with the vfs driver and chroot isolation runs as root here (sudo make image)"))
    buildah = shutil.which("buildah")
    checks.append(Check("buildah", buildah is not None, buildah or "not on PATH (apt-get install buildah mmdebstrap)"))
    mmdebstrap = shutil.which("mmdebstrap")
    if mmdebstrap:
        checks.append(Check("mmdebstrap", True, mmdebstrap))
    else:
        cached = bool(buildah and root and _base_cached())
        checks.append(Check("mmdebstrap", cached, "not needed: the stand-in base is built" if cached else
                            "not on PATH, and the stand-in base is not built yet (apt-get install mmdebstrap)"))
    unshare = shutil.which("unshare")
    checks.append(Check("unshare", unshare is not None, unshare or "not on PATH (util-linux)"))
    return LocalEnvironment(checks)


# -- what an image is ---------------------------------------------------------------------------------
def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out = []
    for line in re.sub(r"\\\n", " ", text).splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def source_digest(root: str | os.PathLike[str] | None = None) -> str:
    """SHA-256 over the Dockerfile and every file its ``COPY`` instructions take from the build
    context (caches and bytecode left out, as ``.dockerignore`` does): equal digests, equal
    image contents. Stored on a built image as the ``org.roomkit.source-digest`` label."""
    folder = container_dir(Path(root) / "container" if root is not None else None)
    top = folder.parent
    dockerfile = folder / "Dockerfile"
    paths = {dockerfile}
    for word, rest in dockerfile_instructions(dockerfile.read_text()):
        if word == "COPY" and "--from=" not in rest:
            for src in rest.split()[:-1]:
                path = top / src
                if path.is_dir():
                    paths.update(p for p in path.rglob("*") if p.is_file())
                elif path.exists():
                    paths.add(path)
    digest = hashlib.sha256()
    for path in sorted(paths):
        rel = path.relative_to(top).as_posix()
        if "__pycache__" in rel.split("/") or rel.endswith(".pyc") or ".egg-info" in rel:
            continue
        digest.update(rel.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


@dataclass(frozen=True)
class ImageInfo:
    """A built image as buildah stores it."""

    tag: str
    image_id: str
    size_bytes: int           # sum of the uncompressed layers
    manifest_type: str
    config: dict[str, Any]    # the image config's ``config`` (User, Entrypoint, Env, Labels, ...)

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.config.get("Labels") or {})

    @property
    def user(self) -> str:
        return str(self.config.get("User") or "")


def image_info(tag: str = DEFAULT_TAG) -> ImageInfo | None:
    """The image ``tag`` in buildah's storage, or None when there is none (or no buildah)."""
    try:
        proc = _buildah("inspect", "--type", "image", tag, timeout=120, check=False)
    except OSError:
        return None
    if proc.returncode != 0:
        return None
    data = json.loads(proc.stdout)
    manifest = json.loads(data.get("Manifest") or "{}")
    config = (data.get("Docker") or {}).get("config") or (data.get("OCIv1") or {}).get("config") or {}
    return ImageInfo(tag=tag, image_id=str(data.get("FromImageID", "")),
                     size_bytes=sum(int(layer.get("size", 0)) for layer in manifest.get("layers", [])),
                     manifest_type=str(manifest.get("mediaType", "")), config=dict(config))


def find_image(tag: str = DEFAULT_TAG, *, root: str | os.PathLike[str] | None = None) -> tuple[ImageInfo | None, str]:
    """``(image, "")`` when ``tag`` exists and was built from this checkout's sources, else
    ``(None, why not)``. Never builds."""
    env = local_build_environment()
    needed = [c for c in env.missing() if c.name in ("Linux", "root", "buildah")]
    if needed:
        return None, "buildah cannot run here: " + "; ".join(f"{c.name}: {c.detail}" for c in needed)
    info = image_info(tag)
    if info is None:
        return None, f"no image {tag} (build it with `make image` or container/build_local.sh)"
    if info.labels.get(DIGEST_LABEL) != source_digest(root):
        return None, f"{tag} was built from other sources than this checkout's (rebuild: make image)"
    return info, ""


def build_local(tag: str = DEFAULT_TAG, *, run_as_user: int | None = None, check: bool = False,
                report: str | os.PathLike[str] | None = None, folder: str | os.PathLike[str] | None = None,
                timeout: float = 3600.0) -> ImageInfo:
    """Run ``container/build_local.sh`` (progress on this process's stderr); with ``check`` the
    image is also run and checked. Returns the built image; raises :class:`ImageBuildError`."""
    script = container_dir(folder) / "build_local.sh"
    env = local_build_environment()
    if not env.can_build:
        raise ImageBuildError(f"cannot build the image here: {env.reason()}")
    cmd = ["bash", str(script), "--tag", tag]
    if run_as_user is not None:
        cmd += ["--run-as-user", str(int(run_as_user))]
    if not check:
        cmd.append("--no-check")
    if report is not None:
        cmd += ["--report", str(report)]
    env_vars = {**os.environ, "ROOMKIT_PYTHON": sys.executable}
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=None, text=True, timeout=timeout, env=env_vars)
    if proc.returncode != 0:
        raise ImageBuildError(f"build_local.sh exited with {proc.returncode} (see its messages above)")
    info = image_info(tag)
    if info is None:
        raise ImageBuildError(f"build_local.sh succeeded but there is no image {tag}")
    return info


# -- running an image ---------------------------------------------------------------------------------
Volume = tuple[str | os.PathLike[str], str, str]  # (host path, container path, "ro"|"rw")


class ImageRoot:
    """A buildah working container of an image: its root filesystem, to run commands in.

    Each :meth:`run` / :meth:`start` is a ``buildah run`` on the same filesystem (so, unlike
    ``docker run``, files a run writes stay for the next one). Use as a context manager; the
    working container is removed on exit.
    """

    def __init__(self, tag: str = DEFAULT_TAG) -> None:
        self.tag = tag
        self.name: str | None = None
        self.info: ImageInfo | None = None

    def __enter__(self) -> "ImageRoot":
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> "ImageRoot":
        self.info = image_info(self.tag)
        if self.info is None:
            raise ImageBuildError(f"no image {self.tag} in buildah's storage")
        name = f"roomkit-run-{os.getpid()}-{time.monotonic_ns() % 10**9}"
        _buildah("from", "--pull-never", "--name", name, self.tag, timeout=600)
        self.name = name
        return self

    def close(self) -> None:
        if self.name is not None:
            _buildah("rm", self.name, timeout=300, check=False)
            self.name = None

    @property
    def entrypoint(self) -> list[str]:
        assert self.info is not None
        return list(self.info.config.get("Entrypoint") or [])

    def command(self, argv: Sequence[str], *, volumes: Iterable[Volume] = (),
                env: Mapping[str, str] | None = None, user: str | None = None) -> list[str]:
        if self.name is None:
            raise RuntimeError("ImageRoot is not open")
        cmd = [*_BUILDAH, "run", *_RUN_FLAGS]
        for src, dst, mode in volumes:
            cmd += ["--volume", f"{Path(src).resolve()}:{dst}:{mode}"]
        for key, value in (env or {}).items():
            cmd += ["--env", f"{key}={value}"]
        if user is not None:
            cmd += ["--user", user]
        return [*cmd, self.name, "--", *argv]

    def run(self, argv: Sequence[str], *, timeout: float = 120.0, **kwargs: Any) -> subprocess.CompletedProcess:
        """Run a short command in the image (as its user unless ``user=``); returns its result."""
        return subprocess.run(self.command(argv, **kwargs), capture_output=True, text=True, timeout=timeout)

    def start(self, argv: Sequence[str], *, log_path: str | os.PathLike[str], **kwargs: Any) -> "Container":
        """Start a long-running command (the server) with its output in ``log_path``."""
        return Container(self.command(argv, **kwargs), Path(log_path))


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def _descendants(pid: int) -> list[int]:
    kids, out, todo = _children(), [], [pid]
    while todo:
        for child in sorted(kids.get(todo.pop(0), [])):
            out.append(child)
            todo.append(child)
    return out


def _argv0(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return ""


class Container:
    """A ``buildah run`` of a long-running process. ``main_pid`` is the process the image's
    command became (what ``docker stop`` signals); ``buildah run`` exits with its status."""

    def __init__(self, argv: Sequence[str], log_path: Path) -> None:
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(log_path, "ab")  # noqa: SIM115 (kept open for the child)
        self.started = time.monotonic()
        self.proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def main_pid(self, timeout: float = 30.0) -> int | None:
        """The first process below buildah's own (buildah-chroot-runtime, -exec) helpers."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            for pid in _descendants(self.proc.pid):
                name = _argv0(pid)
                if name and not Path(name).name.startswith("buildah"):
                    return pid
            time.sleep(0.05)
        return None

    def terminate(self) -> bool:
        """SIGTERM to the main process, as ``docker stop`` sends; False if there was none."""
        pid = self.main_pid(timeout=5)
        if pid is None:
            return False
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return False
        return True

    def wait(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL to everything left (the container's processes and buildah)."""
        code = self.proc.poll()
        if code is None:
            self.terminate()
            code = self.wait(timeout)
        if code is None:
            for pid in reversed(_descendants(self.proc.pid)):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.proc.kill()
            self.proc.wait(10)
        if not self._log.closed:
            self._log.close()
        return code

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def log_lines(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log().splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out


def wait_for_ping(port: int, container: "Container", timeout: float) -> tuple[float, int] | None:
    """Poll ``GET /ping`` on loopback (2 s each, as SageMaker) until it answers 200, or until
    it answers at all once every worker has booted (a model that failed to load answers 503).
    Returns ``(seconds since the container started, status)``, or None when the container
    exited or ``timeout`` passed."""
    from roomkit.serving.smoke import request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if container.proc.poll() is not None:
            return None
        try:
            status, _, _ = request(f"http://127.0.0.1:{port}", "GET", "/ping", timeout=PING_TIMEOUT_S)
            if status == 200 or any(e.get("event") in ("worker_ready", "worker_not_ready")
                                    for e in container.log_lines()):
                return time.monotonic() - container.started, status
        except OSError:
            pass
        time.sleep(0.05)
    return None


@dataclass
class ServedImage:
    """An image serving on a loopback port (:func:`serve_image`): ``url``, ``stop()``."""

    root: ImageRoot
    container: Container
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> int | None:
        try:
            return self.container.stop()
        finally:
            self.root.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_image(model_dir: str | os.PathLike[str], *, tag: str = DEFAULT_TAG, workers: int = 1,
                log_path: str | os.PathLike[str] | None = None, startup_timeout_s: float = 120.0) -> ServedImage:
    """Run the image's entrypoint with ``model_dir`` read-only at ``/opt/ml/model``, on a free
    loopback port of this machine's network (``serve --host 127.0.0.1``, the port through
    ``SAGEMAKER_BIND_TO_PORT``), and wait for ``/ping``. For smoke tests from a notebook; the
    checks run it exactly as SageMaker does (:func:`check_image`)."""
    port = _free_port()
    log_file = Path(log_path) if log_path else Path(tempfile.mkdtemp(prefix="roomkit-image-")) / "serve.log"
    root = ImageRoot(tag).open()
    try:
        container = root.start([*root.entrypoint, "serve", "--host", "127.0.0.1"], log_path=log_file,
                               volumes=[(model_dir, MODEL_DIR, "ro")],
                               env={"SAGEMAKER_BIND_TO_PORT": str(port), "SAGEMAKER_MODEL_SERVER_WORKERS": str(workers)})
        served = ServedImage(root, container, port)
        first = wait_for_ping(port, container, startup_timeout_s)
        if first is None or first[1] != 200:
            served.stop()
            raise ImageBuildError(f"the image did not answer /ping within {startup_timeout_s:.0f} s:\n"
                                  + container.log()[-2000:])
        return served
    except BaseException:
        root.close()
        raise


# -- command line: used by container/build_local.sh ---------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m roomkit.serving.image_local")
    sub = parser.add_subparsers(dest="command", required=True)
    digest = sub.add_parser("source-digest", help="print the digest of the image's sources")
    digest.add_argument("root", nargs="?", help="the checkout (default: the one holding roomkit)")
    size = sub.add_parser("size", help="print an image's size in bytes (uncompressed layers)")
    size.add_argument("tag", nargs="?", default=DEFAULT_TAG)
    args = parser.parse_args(argv)
    if args.command == "source-digest":
        print(source_digest(args.root))
        return 0
    info = image_info(args.tag)
    if info is None:
        print(f"image_local: error: no image {args.tag}", file=sys.stderr)
        return 1
    print(info.size_bytes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
