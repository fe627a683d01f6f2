"""Shared by the serving, container and benchmark tests: run the real server, talk HTTP to it."""
from __future__ import annotations

import http.client
import io
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float

    def json(self):
        import json

        return json.loads(self.body)


def call(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> Reply:
    """One request on a fresh connection (http.client sends Content-Length for bodies)."""
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        resp = conn.getresponse()
        data = resp.read()
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data, time.monotonic() - started)
    finally:
        conn.close()


class ServerProcess:
    """A server started from the command line the way SageMaker or the local mode starts it."""

    def __init__(self, argv: Sequence[str], port: int, log_path: Path, env: Mapping[str, str] | None = None):
        self.port = port
        self.log_path = log_path
        full_env = {**os.environ, **(env or {})}
        full_env.setdefault("PYTHONUNBUFFERED", "1")
        self._log = open(log_path, "wb")
        # Own session: stopping it also reaches the workers if the arbiter died.
        self.proc = subprocess.Popen(
            list(argv), stdout=self._log, stderr=subprocess.STDOUT, env=full_env, cwd=ROOT, start_new_session=True
        )

    @classmethod
    def roomkit_serve(cls, tmp: Path, *, workers: int = 2, model_dir: Path | None = None,
                      extra: Sequence[str] = (), env: Mapping[str, str] | None = None) -> "ServerProcess":
        port = free_port()
        model_dir = model_dir or tmp / "model"
        model_dir.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "roomkit", "serve", "--host", "127.0.0.1", "--port", str(port),
                "--workers", str(workers), "--model-dir", str(model_dir), *extra]
        return cls(argv, port, tmp / f"server-{port}.log", env)

    def wait_until_listening(self, timeout: float = 60.0) -> Reply:
        """First /ping answer (any status); fails with the server log if the process exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                reply = call(self.port, "GET", "/ping", timeout=5)
                if reply.status == 200 or self._all_workers_booted():
                    return reply
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"server did not answer /ping within {timeout} s:\n{self.log()}")

    def _all_workers_booted(self) -> bool:
        text = self.log()
        return text.count('"worker_not_ready"') + text.count('"worker_ready"') > 0

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def log_events(self, event: str) -> list[dict]:
        import json

        out = []
        for line in self.log().splitlines():
            if line.startswith("{") and f'"event": "{event}"' in line:
                out.append(json.loads(line))
        return out

    def stop(self, timeout: float = 40.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        try:  # workers orphaned by a crashed arbiter share its process group
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._log.close()
        return self.proc.returncode


# -- plans -------------------------------------------------------------------------------------
def plan_image(width: int = 1200, height: int = 900, wall: int = 10) -> np.ndarray:
    """A clean three-room plan (outer walls, one vertical and one half horizontal partition)."""
    img = np.full((height, width, 3), 255, np.uint8)
    m = max(20, width // 20)
    cv2.rectangle(img, (m, m), (width - m, height - m), (0, 0, 0), wall)
    cv2.line(img, (width // 2, m), (width // 2, height - m), (0, 0, 0), wall)
    cv2.line(img, (m, height // 2), (width // 2, height // 2), (0, 0, 0), wall)
    return img


def encode(img: np.ndarray, fmt: str) -> bytes:
    """``fmt`` one of png, jpeg, tiff, webp, bmp, gif, pdf."""
    if fmt in ("gif", "pdf"):
        from PIL import Image

        buf = io.BytesIO()
        pil = Image.fromarray(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
        if fmt == "pdf":
            pil.save(buf, "PDF", resolution=150)
        else:
            pil.convert("P").save(buf, "GIF")
        return buf.getvalue()
    ext = {"jpeg": ".jpg", "tiff": ".tiff"}.get(fmt, f".{fmt}")
    ok, data = cv2.imencode(ext, img)
    assert ok
    return data.tobytes()


def png_bomb(width: int = 20_000, height: int = 20_000) -> bytes:
    """A valid 1-bit PNG of ``width×height`` white pixels: a few KB that decode to gigabytes."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + b"\xff" * ((width + 7) // 8)
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
