"""Memory of a `roomkit serve` worker: peak and settled RSS for the worst inputs within the defaults.

Starts the real server (one worker, default config: ``max_pixels`` 120 MP, 1 GiB bodies) on
127.0.0.1 and sends, one at a time, the input kinds that cost a worker the most memory:

* a 16-bit RGBA PNG of 120 MP (about 1 MB on the wire: the decoder's buffer is the cost),
* an 8-bit RGB PNG and a JPEG of 120 MP,
* a vector PDF whose page at 150 dpi is 225 MP (rendered down to the pixel limit),
* a 300 MB uncompressed BMP body, and the same plan base64-encoded in a JSON body (100 MB BMP),
* six 300 MB bodies in a row, then a small plan (does the worker hand the memory back?).

For each: the worker's peak RSS during the request (``VmHWM``, reset before each request through
``/proc/PID/clear_refs``) and its RSS two seconds after the answer. Target: peak <= 1.2 GB,
and settled RSS back near the idle figure. Linux only (reads /proc).

    .venv/bin/python benchmarks/serve_memory.py [--only png16_rgba,bmp_300mb] [--strict]
"""
from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIDE = 10_950  # 10950² = 119.9 MP, just inside the default max_pixels (120 MP)
TARGET_PEAK_MB = 1200
MB = 1_000_000


# -- inputs (written to files, streamed where they are large) ----------------------------------
def _is_wall(side: int):
    m, t = side // 20, max(8, side // 400)
    cols = {*range(m, m + t), *range(side - m - t, side - m), *range(side // 2, side // 2 + t)}
    rows = {*range(m, m + t), *range(side - m - t, side - m), *range(side // 2, side // 2 + t)}
    return m, cols, rows


def _plan_rows(side: int, white: bytes, black: bytes):
    """Rows of a three-room plan (outer walls, a cross) as raw pixel bytes."""
    m, cols, rows = _is_wall(side)
    wall_row = white * m + black * (side - 2 * m) + white * m
    row = bytearray(white * side)
    px = len(white)
    for x in cols:
        row[x * px:(x + 1) * px] = black
    plain = bytes(row)
    for y in range(side):
        yield wall_row if y in rows else plain


def write_png(path: Path, side: int, *, depth: int, alpha: bool) -> None:
    channels = 4 if alpha else 3
    px = channels * depth // 8
    white = b"\xff" * px
    black = (b"\x00" * (px - depth // 8) + b"\xff" * (depth // 8)) if alpha else b"\x00" * px

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    comp = zlib.compressobj(6)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, depth, 6 if alpha else 2, 0, 0, 0)))
        parts = [comp.compress(b"\x00" + row) for row in _plan_rows(side, white, black)]
        parts.append(comp.flush())
        f.write(chunk(b"IDAT", b"".join(parts)))
        f.write(chunk(b"IEND", b""))


def write_bmp(path: Path, width: int, height: int) -> None:
    """24-bit uncompressed BMP, bottom-up rows (3 bytes per pixel: the size is the point)."""
    stride = (width * 3 + 3) & ~3
    size = 54 + stride * height
    with open(path, "wb") as f:
        f.write(b"BM" + struct.pack("<IHHI", size, 0, 0, 54))
        f.write(struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, stride * height, 2835, 2835, 0, 0))
        pad = b"\x00" * (stride - width * 3)
        side = min(width, height)
        rows = list(_plan_rows(side, b"\xff\xff\xff", b"\x00\x00\x00"))
        extra = b"\xff\xff\xff" * (width - side)
        for y in range(height):
            f.write(rows[y % side] + extra + pad)


def write_jpeg(path: Path, side: int) -> None:
    import cv2
    import numpy as np

    img = np.full((side, side, 3), 255, np.uint8)
    m, t = side // 20, max(8, side // 400)
    cv2.rectangle(img, (m, m), (side - m, side - m), (0, 0, 0), t)
    cv2.line(img, (side // 2, m), (side // 2, side - m), (0, 0, 0), t)
    cv2.line(img, (m, side // 2), (side - m, side // 2), (0, 0, 0), t)
    path.write_bytes(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())


def write_pdf(path: Path, inches: float = 100.0) -> None:
    """One vector page, ``inches`` square: at 150 dpi far over max_pixels, so it is rendered down."""
    pt = inches * 72
    m = pt / 20
    stream = (f"20 w {m:.0f} {m:.0f} {pt - 2 * m:.0f} {pt - 2 * m:.0f} re S "
              f"{pt / 2:.0f} {m:.0f} m {pt / 2:.0f} {pt - m:.0f} l S "
              f"{m:.0f} {pt / 2:.0f} m {pt / 2:.0f} {pt / 2:.0f} l S").encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {pt:.0f} {pt:.0f}] /Contents 4 0 R >>".encode(),
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path.write_bytes(bytes(out))


def write_json_b64(path: Path, source: Path) -> None:
    with open(path, "wb") as f:
        f.write(b'{"image_base64": "')
        with open(source, "rb") as src:
            while block := src.read(3 * (1 << 20)):
                f.write(base64.b64encode(block))
        f.write(b'"}')


INPUTS = {
    # name: (file name, content type, writer)
    "png16_rgba": ("png16_rgba.png", "image/png", lambda p: write_png(p, SIDE, depth=16, alpha=True)),
    "png8_rgb": ("png8_rgb.png", "image/png", lambda p: write_png(p, SIDE, depth=8, alpha=False)),
    "jpeg": ("plan.jpg", "image/jpeg", lambda p: write_jpeg(p, SIDE)),
    "pdf_big_page": ("plan.pdf", "application/pdf", write_pdf),
    "bmp_300mb": ("plan300.bmp", "image/bmp", lambda p: write_bmp(p, 10_000, 10_000)),
    "json_b64_100mb": ("plan100.json", "application/json", None),
}


def prepare(workdir: Path, names: list[str]) -> dict[str, tuple[Path, str]]:
    out = {}
    for name in names:
        filename, ctype, writer = INPUTS[name]
        path = workdir / filename
        if not path.exists():
            if name == "json_b64_100mb":
                bmp = workdir / "plan100.bmp"
                if not bmp.exists():
                    write_bmp(bmp, 5774, 5774)  # 100 MB
                write_json_b64(path, bmp)
            else:
                writer(path)
        out[name] = (path, ctype)
    return out


# -- the server ---------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker_pids(arbiter: int) -> list[int]:
    import psutil

    return [c.pid for c in psutil.Process(arbiter).children()]


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def post_file(port: int, path: Path, ctype: str, timeout: float = 600) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        with open(path, "rb") as f:
            conn.request("POST", "/invocations", body=f,
                         headers={"Content-Type": ctype, "Content-Length": str(path.stat().st_size)})
            resp = conn.getresponse()
            return resp.status, resp.read()
    finally:
        conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=",".join(INPUTS), help="comma-separated input kinds")
    parser.add_argument("--repeat-300mb", type=int, default=6, help="300 MB bodies in a row (0: skip)")
    parser.add_argument("--workdir", default=None, help="where the inputs are written (kept)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a peak is over the target")
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n]
    workdir = Path(args.workdir or Path(tempfile.gettempdir()) / "roomkit-serve-memory")
    workdir.mkdir(parents=True, exist_ok=True)
    if args.repeat_300mb and "bmp_300mb" not in names:
        names.append("bmp_300mb")
    print(f"writing inputs to {workdir} ...", flush=True)
    files = prepare(workdir, names)
    small = workdir / "small.png"
    if not small.exists():
        write_png(small, 1200, depth=8, alpha=False)

    port = free_port()
    model = workdir / "model"
    model.mkdir(exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    log = open(workdir / "server.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "roomkit", "serve", "--host", "127.0.0.1", "--port", str(port),
                             "--workers", "1", "--model-dir", str(model)], stdout=log, stderr=subprocess.STDOUT,
                            env=env, cwd=ROOT, start_new_session=True)
    failed = False
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/ping")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("the server did not start; see " + str(workdir / "server.log"))
            time.sleep(0.2)
        post_file(port, small, "image/png")  # warm: imports and first detection done
        time.sleep(1)
        (pid,) = worker_pids(proc.pid)
        idle = status_kb(pid, "VmRSS") / 1000
        print(f"\nworker idle RSS after one small plan: {idle:.0f} MB\n")
        print(f"| input | body MB | status | peak RSS MB | settled RSS MB (2 s later) |")
        print("|---|---|---|---|---|")

        def measure(label: str, path: Path, ctype: str) -> tuple[float, float]:
            nonlocal failed
            Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset VmHWM
            status, body = post_file(port, path, ctype)
            peak = status_kb(pid, "VmHWM") / 1000
            time.sleep(2)
            settled = status_kb(pid, "VmRSS") / 1000
            note = "" if status == 200 else " " + json.loads(body).get("error", {}).get("code", "")
            print(f"| {label} | {path.stat().st_size / MB:.1f} | {status}{note} | {peak:.0f} | {settled:.0f} |",
                  flush=True)
            if peak > TARGET_PEAK_MB:
                failed = True
            return peak, settled

        for name in names:
            path, ctype = files[name]
            measure(name, path, ctype)
        if args.repeat_300mb:
            path, ctype = files["bmp_300mb"]
            for i in range(args.repeat_300mb):
                measure(f"bmp_300mb #{i + 1}", path, ctype)
            measure("small plan after them", small, "image/png")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(40)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
    print(f"\ntarget: peak <= {TARGET_PEAK_MB} MB per worker" + (" — MISSED" if failed else " — met"))
    return 1 if (failed and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
