"""Smoke-test a running serving container over HTTP: ``/ping``, a real plan, a broken one.

What SageMaker itself does before sending traffic (``GET /ping``), plus the two answers an
operator needs to see once after every build: a plan comes back as rooms in the documented
response shape, and a bad request comes back as a 4xx with a JSON error body — not a 500, not a
hang. Works against any base URL: the image run with ``docker run -p 8080:8080 IMAGE serve``,
``roomkit serve``, or :func:`roomkit.serving.image.serve_from_checkout`.
"""
from __future__ import annotations

import http.client
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from roomkit.checks import Check

__all__ = ["SmokeCheck", "smoke_test", "request"]

RESPONSE_KEYS = ("status", "processing_time_ms", "image", "detected_rooms")
ROOM_KEYS = ("id", "bounding_box", "polygon", "area_px", "confidence")


SmokeCheck = Check  # one line of the smoke test's report


def request(url: str, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None, timeout: float = 120.0) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request; returns (status, lower-cased headers, body)."""
    parsed = urlparse(url)
    conn = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port or 80, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def _content_type(path: Path) -> str:
    from roomkit.aws.inputs import content_type_for

    return content_type_for(path.name, path.read_bytes()[:64]) or "application/octet-stream"


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def smoke_test(url: str, plan: str | os.PathLike[str], *, timeout: float = 120.0) -> list[SmokeCheck]:
    """Run the three checks against ``url`` (e.g. ``http://127.0.0.1:8080``) with ``plan``."""
    plan = Path(plan)
    checks: list[SmokeCheck] = []

    try:
        status, _, _ = request(url, "GET", "/ping", timeout=timeout)
        checks.append(SmokeCheck("GET /ping", status == 200, f"HTTP {status}"))
    except OSError as exc:
        return [SmokeCheck("GET /ping", False, f"no answer: {exc}")]

    data = plan.read_bytes()
    ctype = _content_type(plan)
    status, headers, body = request(url, "POST", "/invocations", data,
                                    {"Content-Type": ctype, "Accept": "application/json"}, timeout)
    doc = _json(body)
    problems = []
    if status != 200:
        problems.append(f"HTTP {status}")
    if not isinstance(doc, dict):
        problems.append("body is not a JSON object")
    else:
        problems += [f"no '{k}'" for k in RESPONSE_KEYS if k not in doc]
        for room in doc.get("detected_rooms", [])[:50]:
            missing = [k for k in ROOM_KEYS if k not in room]
            if missing:
                problems.append(f"room without {', '.join(missing)}")
                break
    rooms = len(doc.get("detected_rooms", [])) if isinstance(doc, dict) else 0
    checks.append(SmokeCheck(f"POST /invocations {plan.name} ({ctype})", not problems,
                             "; ".join(problems) if problems else f"HTTP 200, {rooms} rooms, "
                             f"image {doc['image'].get('width')}x{doc['image'].get('height')}"))

    broken = data[: max(16, min(len(data) // 4, 4096))]
    status, headers, body = request(url, "POST", "/invocations", broken, {"Content-Type": ctype}, timeout)
    doc = _json(body)
    code = doc.get("error", {}).get("code") if isinstance(doc, dict) and isinstance(doc.get("error"), dict) else None
    ok = 400 <= status < 500 and code is not None
    checks.append(SmokeCheck("POST /invocations truncated plan", ok,
                             f"HTTP {status}" + (f", error code {code}" if code else ", no JSON error body")))
    return checks
