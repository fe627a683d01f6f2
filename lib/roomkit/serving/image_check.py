"""The serving image run as SageMaker runs it, and checked: what ``container/build_local.sh``
runs after building (``python -m roomkit.serving.image_check``) and ``tests/test_image_build.py`` asserts.

SageMaker's contract, checked for an image in buildah's storage: ``ENTRYPOINT`` + ``serve``, the
model read-only at ``/opt/ml/model``, the server on ``0.0.0.0:8080``, ``GET /ping`` answered
(each within 2 s; the first 200 within 4 minutes of the start), SIGTERM and then 30 s before
SIGKILL. Real plans and a PDF must get the same answer as ``roomkit serve`` from this checkout
given the same model directory; bad input a 4xx with the JSON error shape; a broken
``config.json`` a 503 from ``/ping``. The non-root build variant (``RUN_AS_USER``) is checked in
the same image: the Dockerfile's user-creating ``RUN``, then the server as that user.

Because the server binds all interfaces as SageMaker requires, the checks run in a network
namespace of their own (``unshare --net``) holding only a loopback interface: nothing is exposed
and no port of this machine is taken. ``main`` enters one.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import select
import shutil
import socket
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from roomkit.errors import ConfigError, RoomkitError
from roomkit.serving.image import DOCKER_V2_MANIFEST, Check, ImageBuildError, container_dir
from roomkit.serving.image_local import (
    DEFAULT_TAG,
    MODEL_DIR,
    PING_TIMEOUT_S,
    Container,
    ImageRoot,
    dockerfile_instructions,
    image_info,
    wait_for_ping,
)

__all__ = ["CHECK_NAMES", "CheckReport", "check_image", "in_private_network", "main"]

SAGEMAKER_PORT = 8080
STARTUP_LIMIT_S = 240.0  # SageMaker: /ping must answer 200 within 4 minutes of the start
# The model the checks mount: settings that change what the server answers, so that honouring
# them shows (a PDF is rendered at 100 dpi instead of 150).
CHECK_MODEL_CONFIG = {"min_room_area": 0.002, "pdf_dpi": 100}
CHECK_PLANS = ("listing.jpg", "furnished.png")   # compared with the local server
PDF_SOURCE = "clean_l.png"                       # drawn into a 150-dpi PDF
DRAIN_PLAN = "large_sheet.png"                   # 12 MP: detection still running at SIGTERM


# -- HTTP and sockets -----------------------------------------------------------------------------------
@dataclass
class _Reply:
    status: int
    body: bytes
    seconds: float

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def _call(port: int, method: str, path: str, body: bytes | None = None,
          headers: Mapping[str, str] | None = None, timeout: float = 120.0) -> _Reply:
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        resp = conn.getresponse()
        return _Reply(resp.status, resp.read(), time.monotonic() - started)
    finally:
        conn.close()


@dataclass(frozen=True)
class _Sock:
    local: tuple[str, int]
    remote: tuple[str, int]
    state: str
    tx_queue: int
    rx_queue: int


def _tcp_sockets() -> list[_Sock]:
    """This network namespace's TCP sockets (``/proc/self/net/tcp`` and ``tcp6``)."""
    out = []
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/self/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            (lip, lport), (rip, rport) = parts[1].split(":"), parts[2].split(":")
            tx, rx = parts[4].split(":")
            out.append(_Sock((lip, int(lport, 16)), (rip, int(rport, 16)), parts[3], int(tx, 16), int(rx, 16)))
    return out


def _listen_addresses(port: int) -> list[str]:
    """Addresses listening on ``port``: "0.0.0.0"/"::" for all interfaces, else the hex address."""
    named = {"00000000": "0.0.0.0", "0" * 32: "::", "0100007F": "127.0.0.1"}
    return [named.get(s.local[0], s.local[0]) for s in _tcp_sockets() if s.state == "0A" and s.local[1] == port]


def in_private_network() -> bool:
    """True when this process's network namespace has no interface but loopback."""
    try:
        lines = Path("/proc/self/net/dev").read_text().splitlines()[2:]
    except OSError:
        return False
    return [line.split(":")[0].strip() for line in lines] == ["lo"]


def _loopback_up() -> None:
    """Bring ``lo`` up (a fresh network namespace starts with it down)."""
    import fcntl
    import struct

    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        flags = struct.unpack("16sh22x", fcntl.ioctl(sock, siocgifflags, struct.pack("16sh22x", b"lo", 0)))[1]
        if not flags & iff_up:
            fcntl.ioctl(sock, siocsifflags, struct.pack("16sh22x", b"lo", flags | iff_up))


# -- the checks ------------------------------------------------------------------------------------------
@dataclass
class CheckReport:
    """What :func:`check_image` found: one :class:`~roomkit.serving.image.Check` per property, and figures."""

    tag: str
    checks: list[Check] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"tag": self.tag, "ok": self.ok, "checks": [asdict(c) for c in self.checks], "facts": self.facts}


CHECK_NAMES = (
    "image_config", "base_pip_24", "user_reads_model", "ping", "listens_on_8080", "plans_match_local",
    "pdf_matches_local", "bad_input_4xx", "config_honoured", "sigterm_drains", "broken_config_503",
    "non_root_variant",
)


def _without_time(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {k: v for k, v in doc.items() if k not in ("processing_time_ms", "processing_time_breakdown_ms")}
    return doc


def _error_shape(doc: Any) -> str | None:
    """The error code of a ``{"status": "error", "error": {"code", "message"}}`` body, else None."""
    if isinstance(doc, dict) and doc.get("status") == "error" and isinstance(doc.get("error"), dict):
        err = doc["error"]
        if isinstance(err.get("code"), str) and isinstance(err.get("message"), str) and err["message"]:
            return err["code"]
    return None


def _pdf_from(png: Path, resolution: float = 150.0) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    with Image.open(png) as img:
        img.convert("RGB").save(buf, "PDF", resolution=resolution)
    return buf.getvalue()


def _user_setup_command(dockerfile: Path) -> str | None:
    """The final stage's ``RUN`` that creates the ``RUN_AS_USER`` user (None if there is none)."""
    ins = dockerfile_instructions(dockerfile.read_text())
    last_from = max(i for i, (word, _) in enumerate(ins) if word == "FROM")
    for word, rest in ins[last_from:]:
        if word == "RUN" and "RUN_AS_USER" in rest:
            return rest
    return None


def _model_dir(path: Path, config: Mapping[str, Any] | str) -> Path:
    """A model directory as SageMaker extracts it: root's, world-readable."""
    path.mkdir(parents=True, exist_ok=True)
    text = config if isinstance(config, str) else json.dumps(config)
    (path / "config.json").write_text(text)
    path.chmod(0o755)
    (path / "config.json").chmod(0o644)
    return path


def check_image(tag: str = DEFAULT_TAG, *, expect_user: str = "0", work_dir: str | os.PathLike[str] | None = None,
                samples: str | os.PathLike[str] | None = None, log: Callable[[str], None] | None = None) -> CheckReport:
    """Run the image as SageMaker does and check it; must run in a private network namespace
    (``python -m roomkit.serving.image_check`` enters one).

    SageMaker's contract, checked here: ``ENTRYPOINT`` + ``serve``, the model read-only at
    ``/opt/ml/model``, ``0.0.0.0:8080``, ``/ping`` answered (each within 2 s; the first 200
    within 4 minutes), SIGTERM then 30 s before SIGKILL. The responses are compared with
    ``roomkit serve`` from this checkout given the same model directory.
    """
    if not in_private_network():
        raise ConfigError("check_image binds 0.0.0.0:8080: run it in a private network namespace "
                          "(python -m roomkit.serving.image_check enters one)")
    _loopback_up()
    say = log or (lambda line: print(line, file=sys.stderr, flush=True))
    from roomkit.notebooks.walkthrough import repo_root

    top = repo_root()
    samples_dir = Path(samples) if samples else (top / "data" / "samples" if top else None)
    if samples_dir is None or not (samples_dir / DRAIN_PLAN).is_file():
        raise ConfigError(f"no sample plans at {samples_dir}: pass samples=")
    report = CheckReport(tag)
    info = image_info(tag)
    if info is None:
        raise ImageBuildError(f"no image {tag} in buildah's storage")
    report.facts.update(image_id=info.image_id, size_bytes=info.size_bytes, user=info.user,
                        manifest_type=info.manifest_type)

    def add(name: str, ok: bool, detail: str) -> None:
        check = Check(name, bool(ok), detail)
        report.checks.append(check)
        say(str(check) if check.ok else f"[FAIL] {name}: {detail}")

    # The image's configuration: what SageMaker reads from it.
    cfg, problems = info.config, []
    if cfg.get("Entrypoint") != ["serve"]:
        problems.append(f"Entrypoint {cfg.get('Entrypoint')} (want ['serve'])")
    if "8080/tcp" not in (cfg.get("ExposedPorts") or {}):
        problems.append("port 8080 not exposed")
    if info.labels.get("com.amazonaws.sagemaker.capabilities.accept-bind-to-port") != "true":
        problems.append("no accept-bind-to-port=true label")
    if info.user != f"{expect_user}:{expect_user}":
        problems.append(f"User {info.user!r} (want {expect_user}:{expect_user})")
    if info.manifest_type != DOCKER_V2_MANIFEST:
        problems.append(f"manifest {info.manifest_type} (SageMaker needs {DOCKER_V2_MANIFEST})")
    add("image_config", not problems, "; ".join(problems) or
        f"ENTRYPOINT [\"serve\"], EXPOSE 8080, accept-bind-to-port, USER {info.user}, Docker v2 manifest, "
        f"{info.size_bytes / 1e6:.0f} MB")

    work = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="roomkit-image-check-"))
    work.mkdir(parents=True, exist_ok=True)
    model = _model_dir(work / "model", CHECK_MODEL_CONFIG)
    broken = _model_dir(work / "model-broken", '{"min_room_area": 0.01, "door_gapp": 30}')
    mount = [(model, MODEL_DIR, "ro")]

    from roomkit.local.server_process import ServingProcess

    with ImageRoot(tag) as root:
        done = root.run(["pip", "--version"])
        add("base_pip_24", done.returncode == 0 and done.stdout.startswith("pip 24.0 "),
            (done.stdout or done.stderr).strip()[:200])

        done = root.run(["sh", "-c", f"id -u; id -g; cat {MODEL_DIR}/config.json"], volumes=mount)
        lines = done.stdout.splitlines()
        ok = (done.returncode == 0 and lines[:2] == [expect_user, expect_user]
              and json.loads("\n".join(lines[2:]) or "null") == CHECK_MODEL_CONFIG)
        add("user_reads_model", ok, f"uid/gid {'/'.join(lines[:2])} read {MODEL_DIR}/config.json (mounted "
            "read-only, root's, mode 0644)" if ok else f"exit {done.returncode}: {done.stdout[-300:]} {done.stderr[-300:]}")

        local = ServingProcess(model, workers=1, log_path=work / "local-server.log", name="image-check").start()
        container = root.start([*root.entrypoint, "serve"], volumes=mount, log_path=work / "container.log")
        try:
            _check_serving(report, add, container, local.port, samples_dir, work)
        finally:
            local.stop()
            code = container.stop()
            report.facts["exit_status"] = code

        _check_broken_config(add, root, broken, work)
        if expect_user == "0":
            _check_non_root_variant(add, root, model, samples_dir=samples_dir, work=work)
        else:
            add("non_root_variant", True, f"this image is the variant (USER {info.user}); checked above")
    return report


def _check_serving(report: CheckReport, add: Callable[[str, bool, str], None], container: Container,
                   local_port: int, samples_dir: Path, work: Path) -> None:
    port = SAGEMAKER_PORT
    first = wait_for_ping(port, container, STARTUP_LIMIT_S)
    if first is None or first[1] != 200:
        add("ping", False, "no /ping 200: " + (f"HTTP {first[1]}" if first else "no answer") +
            "\n" + container.log()[-2000:])
        return
    pings = [_call(port, "GET", "/ping", timeout=PING_TIMEOUT_S) for _ in range(5)]
    slowest = max(p.seconds for p in pings)
    report.facts["first_ping_200_s"] = round(first[0], 2)
    add("ping", all(p.status == 200 for p in pings),
        f"first 200 {first[0]:.1f} s after start (SageMaker allows {STARTUP_LIMIT_S / 60:.0f} min); "
        f"5 more in at most {slowest * 1000:.0f} ms each (each must come within {PING_TIMEOUT_S:.0f} s)")
    addresses = _listen_addresses(port)
    add("listens_on_8080", addresses and set(addresses) <= {"0.0.0.0", "::"},
        f"listening on {', '.join(a + ':8080' for a in addresses) or 'nothing'} (SageMaker needs all interfaces)")

    def both(body: bytes, headers: Mapping[str, str]) -> tuple[_Reply, _Reply]:
        return _call(port, "POST", "/invocations", body, headers), _call(local_port, "POST", "/invocations", body, headers)

    # Real plans: the same answer as the local server, minus the timing.
    from roomkit.aws.inputs import content_type_for

    details, ok = [], True
    for name in CHECK_PLANS:
        data = (samples_dir / name).read_bytes()
        ctype = content_type_for(name, data[:64]) or "application/octet-stream"
        image, local = both(data, {"Content-Type": ctype})
        rooms = len((image.json() or {}).get("detected_rooms", []))
        same = image.status == local.status == 200 and _without_time(image.json()) == _without_time(local.json())
        ok = ok and same and rooms > 0
        details.append(f"{name} {image.status}, {rooms} rooms, {'identical' if same else 'DIFFERENT'}")
    add("plans_match_local", ok, "; ".join(details))

    pdf = _pdf_from(samples_dir / PDF_SOURCE)
    image, local = both(pdf, {"Content-Type": "application/pdf"})
    doc = image.json() or {}
    same = image.status == local.status == 200 and _without_time(doc) == _without_time(local.json())
    add("pdf_matches_local", same and bool(doc.get("detected_rooms")),
        f"{PDF_SOURCE} as a 150-dpi PDF: HTTP {image.status}, {len(doc.get('detected_rooms', []))} rooms, "
        f"{'identical to' if same else 'DIFFERENT from'} the local server's")

    # Config honoured: the server says it loaded /opt/ml/model/config.json, and the PDF came back
    # rendered at the model's pdf_dpi (100), not the default 150.
    from PIL import Image

    with Image.open(samples_dir / PDF_SOURCE) as src:
        want = src.width * CHECK_MODEL_CONFIG["pdf_dpi"] / 150.0
    ready = [e for e in container.log_lines() if e.get("event") == "worker_ready"]
    loaded = bool(ready) and all(e.get("config_source") == f"{MODEL_DIR}/config.json" and
                                 all(e.get("config", {}).get(k) == v for k, v in CHECK_MODEL_CONFIG.items())
                                 for e in ready)
    width = (doc.get("image") or {}).get("width", 0)
    add("config_honoured", loaded and abs(width - want) <= 1,
        f"{len(ready)} worker(s) loaded {MODEL_DIR}/config.json {CHECK_MODEL_CONFIG}; PDF rendered "
        f"{width} px wide at pdf_dpi {CHECK_MODEL_CONFIG['pdf_dpi']} (want {want:.0f})")

    # Bad input: a 4xx with the JSON error shape, the same as the local server.
    details, ok = [], True
    for label, body, ctype in (("truncated PNG", (samples_dir / CHECK_PLANS[1]).read_bytes()[:2000], "image/png"),
                               ("text as PNG", b"not an image at all", "image/png"),
                               ("broken JSON", b'{"image_base64": ', "application/json")):
        image, local = both(body, {"Content-Type": ctype})
        code = _error_shape(image.json())
        good = 400 <= image.status < 500 and code is not None and (image.status, code) == (local.status, _error_shape(local.json()))
        ok = ok and good
        details.append(f"{label}: {image.status} {code}" + ("" if good else f" (local {local.status})"))
    add("bad_input_4xx", ok, "; ".join(details))

    _check_drain(add, container, samples_dir / DRAIN_PLAN, port)


def _check_drain(add: Callable[[str, bool, str], None], container: Container, plan: Path, port: int) -> None:
    """A request whose body the server has read (and not answered) when SIGTERM comes must
    complete with 200; then the process exits 0. "Read" is what the kernel says: the server's
    end of the connection has nothing left to read and ours nothing left to send."""
    body = plan.read_bytes()
    head = (f"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: image/png\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=300)
    try:
        ours = sock.getsockname()[1]
        sock.sendall(head + body)
        deadline, consumed = time.monotonic() + 60, False
        while time.monotonic() < deadline and not consumed:
            table = _tcp_sockets()
            server = [s for s in table if s.local[1] == port and s.remote[1] == ours]
            client = [s for s in table if s.local[1] == ours and s.remote[1] == port]
            consumed = bool(server and client) and server[0].rx_queue == 0 and client[0].tx_queue == 0
            if not consumed:
                time.sleep(0.002)
        answered_before = bool(select.select([sock], [], [], 0)[0])
        signalled = container.terminate()
        resp = http.client.HTTPResponse(sock)
        resp.begin()
        status, data = resp.status, resp.read()
    finally:
        sock.close()
    code = container.wait(60)
    lines = container.log_lines()
    term = next((i for i, e in enumerate(lines) if e.get("message") == "Handling signal: term"), None)
    done = [i for i, e in enumerate(lines) if e.get("event") == "invocation" and e.get("bytes_in") == len(body)]
    in_flight = consumed and not answered_before and term is not None and bool(done) and done[-1] > term
    try:
        rooms = len(json.loads(data).get("detected_rooms", []))
    except (ValueError, AttributeError):
        rooms = 0
    add("sigterm_drains", signalled and in_flight and status == 200 and rooms > 0 and code == 0,
        f"{plan.name} ({len(body) // 1000} KB) read by the server, SIGTERM to the entrypoint process: "
        f"{'in flight' if in_flight else 'NOT in flight'} at the signal, answered {status} with {rooms} rooms, "
        f"then the container exited {code}")


def _check_broken_config(add: Callable[[str, bool, str], None], root: ImageRoot, broken: Path, work: Path) -> None:
    container = root.start([*root.entrypoint, "serve"], volumes=[(broken, MODEL_DIR, "ro")],
                           log_path=work / "container-broken-config.log")
    try:
        first = wait_for_ping(SAGEMAKER_PORT, container, STARTUP_LIMIT_S)
        reply = _call(SAGEMAKER_PORT, "GET", "/ping", timeout=PING_TIMEOUT_S) if first else None
    except OSError as exc:
        reply, first = None, None
        add("broken_config_503", False, f"no answer: {exc}")
        return
    finally:
        code = container.stop()
    doc = reply.json() if reply else None
    ok = (reply is not None and reply.status == 503 and _error_shape(doc) == "model_not_ready"
          and "door_gapp" in doc["error"]["message"])
    add("broken_config_503", ok, (f"/ping {reply.status} {_error_shape(doc)}: {doc['error']['message'][:120]}; "
                                  f"exit {code}") if ok else f"got {reply.status if reply else None}: {doc}")


def _check_non_root_variant(add: Callable[[str, bool, str], None], root: ImageRoot, model: Path, *,
                            samples_dir: Path, work: Path) -> None:
    """The --build-arg RUN_AS_USER=10001 variant without a second build: the Dockerfile's
    user-creating RUN run in this image as root, then the server run as 10001:10001."""
    setup = _user_setup_command(container_dir() / "Dockerfile")
    if setup is None:
        add("non_root_variant", False, "no RUN using RUN_AS_USER in the Dockerfile's final stage")
        return
    refused = root.run(["/bin/sh", "-c", setup], user="0:0", env={"RUN_AS_USER": "roomkit"})
    created = root.run(["/bin/sh", "-c", setup], user="0:0", env={"RUN_AS_USER": "10001"})
    probe = root.run(["/bin/sh", "-c", f"id -un; id -u; cat {MODEL_DIR}/config.json >/dev/null && echo read; "
                      "touch /opt/roomkit/x 2>/dev/null && echo code-writable || echo code-read-only"],
                     user="10001:10001", volumes=[(model, MODEL_DIR, "ro")])
    problems = []
    if refused.returncode == 0 or "numeric uid" not in refused.stderr:
        problems.append(f"a non-numeric RUN_AS_USER was not refused ({refused.stderr.strip()[-200:]})")
    if created.returncode != 0:
        problems.append(f"the user-creating RUN failed: {created.stderr.strip()[-300:]}")
    if probe.stdout.split() != ["roomkit", "10001", "read", "code-read-only"]:
        problems.append(f"as 10001: {probe.stdout.split()} {probe.stderr.strip()[-200:]}")
    status, rooms = None, 0
    if not problems:
        container = root.start([*root.entrypoint, "serve"], volumes=[(model, MODEL_DIR, "ro")], user="10001:10001",
                               log_path=work / "container-uid10001.log")
        try:
            first = wait_for_ping(SAGEMAKER_PORT, container, STARTUP_LIMIT_S)
            if first and first[1] == 200:
                reply = _call(SAGEMAKER_PORT, "POST", "/invocations", (samples_dir / CHECK_PLANS[1]).read_bytes(),
                              {"Content-Type": "image/png"})
                status, rooms = reply.status, len((reply.json() or {}).get("detected_rooms", []))
            else:
                problems.append(f"/ping as 10001: {first[1] if first else 'no answer'}")
        finally:
            code = container.stop()
        if status != 200 or rooms == 0 or code != 0:
            problems.append(f"as 10001: HTTP {status}, {rooms} rooms, exit {code}")
    add("non_root_variant", not problems, "; ".join(problems) or
        "RUN_AS_USER=10001: user created (a non-numeric value refused), runs as roomkit (10001) with the "
        f"code read-only, reads the model, /ping 200, {CHECK_PLANS[1]} 200 with {rooms} rooms, exit 0")


# -- command line: run by container/build_local.sh ---------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    """``python -m roomkit.serving.image_check [--tag T] [--expect-user UID] [--report FILE]``: enters a
    private network namespace (``unshare --net``) and runs :func:`check_image`; exit 0 when every
    check passed."""
    args_in = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m roomkit.serving.image_check",
                                     description="run the image as SageMaker does and check it")
    parser.add_argument("--tag", default=DEFAULT_TAG)
    parser.add_argument("--expect-user", default="0", help="uid the image runs as (0: root, the default)")
    parser.add_argument("--report", help="write the checks and figures as JSON here")
    parser.add_argument("--build-seconds", type=float, help="recorded in the report")
    parser.add_argument("--work-dir", help="logs and model directories (default: a new temporary folder)")
    args = parser.parse_args(args_in)

    if not in_private_network():
        unshare = shutil.which("unshare")
        if unshare is None:
            print("image_check: error: unshare (util-linux) is needed for a private network namespace",
                  file=sys.stderr)
            return 2
        # The server binds 0.0.0.0:8080 as SageMaker requires: in a namespace of its own.
        os.execv(unshare, [unshare, "--net", "--", sys.executable, "-m", "roomkit.serving.image_check", *args_in])
    try:
        report = check_image(args.tag, expect_user=args.expect_user, work_dir=args.work_dir)
    except RoomkitError as exc:
        print(f"image_check: error: {exc.message}", file=sys.stderr)
        return 1
    if args.build_seconds is not None:
        report.facts["build_seconds"] = args.build_seconds
    missing = [n for n in CHECK_NAMES if n not in {c.name for c in report.checks}]
    if missing:
        report.checks.append(Check("all_checks_ran", False, "not run: " + ", ".join(missing)))
    if args.report:
        Path(args.report).write_text(json.dumps(report.to_dict(), indent=2))
    passed = sum(c.ok for c in report.checks)
    print(f"image_check: {passed}/{len(report.checks)} checks passed for {args.tag} "
          f"({report.facts.get('size_bytes', 0) / 1e6:.0f} MB)", file=sys.stderr)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
