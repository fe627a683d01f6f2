"""The serving contract over real HTTP against the real `roomkit serve` process (2 workers).

One server per module (started like the local mode and the container start it), an S3 served by
moto on loopback for ``s3_uri`` bodies, and a few short-lived servers for what needs its own
process: a bad config.json, SIGTERM, the per-request timeout.
"""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from roomkit.serving.artifacts import extract_model, package_model
from roomkit.plans.imageio import load_image
from roomkit.serving import OPENAPI_PATH
from serving_support import ServerProcess, call, encode, free_port, plan_image, png_bomb

pytestmark = pytest.mark.slow

PLAN = plan_image()
PNG = encode(PLAN, "png")
BUCKET = "roomkit-test-plans"
# Slow requests are processed at full resolution (a per-request override), so their cost grows
# with the plan's pixel count whatever the detector's default working resolution is.
SLOW_RESOLUTION = 7000
SLOW_HEADERS = {
    "Content-Type": "image/png",
    "X-Amzn-SageMaker-Custom-Attributes": f"config.working_resolution={SLOW_RESOLUTION}",
}
MAX_REQUEST = 300_000_000
SLOW_SECONDS = 2.0


@pytest.fixture(scope="module")
def s3_endpoint():
    from moto.server import ThreadedMotoServer

    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    endpoint = f"http://127.0.0.1:{port}"
    import boto3

    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="plans/plan.png", Body=PNG, ContentType="image/png")
    s3.put_object(Bucket=BUCKET, Key="plans/unlabelled", Body=PNG, ContentType="binary/octet-stream")
    yield endpoint
    moto.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory, s3_endpoint):
    tmp = tmp_path_factory.mktemp("serve")
    # The model directory the way SageMaker fills /opt/ml/model: model.tar.gz extracted.
    model_dir = extract_model(package_model({"min_room_area": 0.001}, tmp), tmp / "opt-ml-model")
    env = {
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "SAGEMAKER_MAX_REQUEST_SIZE": str(MAX_REQUEST),
    }
    proc = ServerProcess.roomkit_serve(tmp, workers=2, model_dir=model_dir, extra=["--timeout", "120"], env=env)
    try:
        assert proc.wait_until_listening().status == 200
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def slow_plan() -> bytes:
    """A plan that keeps a worker busy for about SLOW_SECONDS on this machine.

    Measured rather than assumed (the detector keeps getting faster): decode + detection of a
    3000 px scan at full resolution (SLOW_HEADERS) is timed here with one OpenCV thread, as in a
    2-worker server, and the scan is enlarged in proportion when that is too quick.
    """
    import cv2

    import roomkit
    from roomkit.detector.config import DetectorConfig

    def scan(side: int) -> bytes:
        img = plan_image(side, side * 3 // 4, wall=8)  # thin walls: no further downscaling
        return cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 1])[1].tobytes()

    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        data = scan(3000)
        started = time.perf_counter()
        config = DetectorConfig(min_room_area=0.001, working_resolution=SLOW_RESOLUTION)
        roomkit.detect_rooms(load_image(data, content_type="image/png"), config)
        seconds = time.perf_counter() - started
    finally:
        cv2.setNumThreads(threads)
    if seconds >= SLOW_SECONDS:
        return data
    # Work grows with the pixel count up to the working resolution.
    return scan(min(SLOW_RESOLUTION, int(3000 * (SLOW_SECONDS / seconds) ** 0.5 * 1.1)))


@pytest.fixture(scope="module")
def expected():
    """What the library itself answers for PLAN: the server must answer the same."""
    return _library_answer(PNG)


def _library_answer(data: bytes, content_type: str | None = None) -> dict:
    import roomkit
    from roomkit.detector.config import DetectorConfig

    return roomkit.detect_rooms(load_image(data, content_type=content_type), DetectorConfig(min_room_area=0.001)).to_response()


def _same_rooms(got: dict, want: dict) -> None:
    assert got["status"] == "success" and got["image"] == want["image"]
    assert got["detected_rooms"] == want["detected_rooms"]
    assert len(got["detected_rooms"]) >= 1


def _assert_error(reply, status: int, code: str) -> dict:
    assert reply.status == status, reply.body[:500]
    assert reply.headers["content-type"] == "application/json"
    assert int(reply.headers["content-length"]) == len(reply.body)
    body = reply.json()
    assert body["status"] == "error"
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body


def _still_serving(port: int, expected_rooms: dict) -> None:
    assert call(port, "GET", "/ping").status == 200
    reply = call(port, "POST", "/invocations", PNG, {"Content-Type": "image/png"})
    assert reply.status == 200
    _same_rooms(reply.json(), expected_rooms)


# -- the happy path -----------------------------------------------------------------------------
def test_ping_answers_200_with_an_empty_body(server):
    reply = call(server.port, "GET", "/ping")
    assert reply.status == 200 and reply.body == b"" and reply.headers["content-length"] == "0"


@pytest.mark.parametrize(
    "fmt, content_type",
    [
        ("png", "image/png"),
        ("jpeg", "image/jpeg"),
        ("tiff", "image/tiff"),
        ("webp", "image/webp"),
        ("bmp", "image/bmp"),
        ("gif", "image/gif"),
        ("pdf", "application/pdf"),
        ("png", "application/x-image"),
        ("jpeg", "application/octet-stream"),
        ("tiff", None),
    ],
)
def test_every_content_type_finds_the_same_rooms(server, fmt, content_type):
    """The server answers exactly what the library answers for the same bytes."""
    data = encode(PLAN, fmt)
    headers = {"Content-Type": content_type} if content_type else {}
    reply = call(server.port, "POST", "/invocations", data, headers)
    assert reply.status == 200, reply.body[:300]
    assert reply.headers["content-type"] == "application/json"
    assert int(reply.headers["content-length"]) == len(reply.body)
    assert "chunked" not in reply.headers.get("transfer-encoding", "")
    assert reply.headers["x-request-id"]
    body = reply.json()
    if fmt == "pdf":  # a 150 dpi page rendered at 150 dpi: the same grid within a pixel
        assert abs(body["image"]["width"] - PLAN.shape[1]) <= 2
        assert abs(body["image"]["height"] - PLAN.shape[0]) <= 2
    else:
        assert body["image"] == {"width": PLAN.shape[1], "height": PLAN.shape[0]}
    _same_rooms(body, _library_answer(data, content_type))


def test_json_with_base64_and_per_request_config(server, expected):
    b64 = base64.b64encode(PNG).decode()
    reply = call(server.port, "POST", "/invocations", json.dumps({"image_base64": b64}).encode(),
                 {"Content-Type": "application/json"})
    assert reply.status == 200
    _same_rooms(reply.json(), expected)

    data_url = json.dumps({"image_base64": "data:image/png;base64," + b64}).encode()
    assert call(server.port, "POST", "/invocations", data_url, {"Content-Type": "application/json"}).status == 200

    # An override that leaves no room big enough changes the answer for this request only.
    strict = json.dumps({"image_base64": b64, "config": {"min_room_area": 0.6}}).encode()
    reply = call(server.port, "POST", "/invocations", strict, {"Content-Type": "application/json; charset=utf-8"})
    assert reply.status == 200 and reply.json()["detected_rooms"] == []
    _still_serving(server.port, expected)

    bad = json.dumps({"image_base64": b64, "config": {"min_room_aera": 0.6}}).encode()
    body = _assert_error(call(server.port, "POST", "/invocations", bad, {"Content-Type": "application/json"}),
                         400, "invalid_config")
    assert "min_room_aera" in body["error"]["message"]


def test_custom_attributes_carry_config_for_binary_bodies(server, expected):
    headers = {"Content-Type": "image/png",
               "X-Amzn-SageMaker-Custom-Attributes": "trace=abc; config.min_room_area=0.6"}
    reply = call(server.port, "POST", "/invocations", PNG, headers)
    assert reply.status == 200 and reply.json()["detected_rooms"] == []
    headers["X-Amzn-SageMaker-Custom-Attributes"] = "config.door_gap=lots"
    _assert_error(call(server.port, "POST", "/invocations", PNG, headers), 400, "invalid_config")


def test_s3_uri_is_fetched_through_aws_endpoint_url(server, expected):
    for key in ("plans/plan.png", "plans/unlabelled"):
        body = json.dumps({"s3_uri": f"s3://{BUCKET}/{key}"}).encode()
        reply = call(server.port, "POST", "/invocations", body, {"Content-Type": "application/json"})
        assert reply.status == 200, reply.body
        _same_rooms(reply.json(), expected)


def test_geojson_on_request_and_406_for_other_types(server, expected):
    reply = call(server.port, "POST", "/invocations", PNG, {"Content-Type": "image/png", "Accept": "application/geo+json"})
    assert reply.status == 200 and reply.headers["content-type"] == "application/geo+json"
    doc = reply.json()
    assert doc["type"] == "FeatureCollection"
    assert len(doc["features"]) == len(expected["detected_rooms"])
    ring = doc["features"][0]["geometry"]["coordinates"][0]
    assert ring[0] == ring[-1] and max(p[0] for p in ring) > 100  # closed, in pixels (not 0-1000)

    prefers_geo = {"Content-Type": "image/png", "Accept": "application/json;q=0.4, application/geo+json"}
    assert call(server.port, "POST", "/invocations", PNG, prefers_geo).headers["content-type"] == "application/geo+json"
    wildcard = {"Content-Type": "image/png", "Accept": "*/*"}
    assert call(server.port, "POST", "/invocations", PNG, wildcard).headers["content-type"] == "application/json"

    _assert_error(call(server.port, "POST", "/invocations", PNG, {"Content-Type": "image/png", "Accept": "text/html"}),
                  406, "not_acceptable")
    _still_serving(server.port, expected)


def test_chunked_request_bodies_are_read(server, expected):
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        chunks = (PNG[i:i + 4096] for i in range(0, len(PNG), 4096))
        conn.request("POST", "/invocations", body=chunks, headers={"Content-Type": "image/png"}, encode_chunked=True)
        resp = conn.getresponse()
        assert resp.status == 200
        _same_rooms(json.loads(resp.read()), expected)
    finally:
        conn.close()


def test_serve_is_the_public_entry_point():
    import inspect

    import roomkit
    from roomkit.serving import serve

    assert roomkit.serve is serve
    assert list(inspect.signature(serve).parameters)[:5] == ["host", "port", "workers", "model_dir", "timeout"]


# -- bad input ----------------------------------------------------------------------------------
BAD_INPUTS = {
    "empty body": (b"", "image/png", 400, "empty_input"),
    "truncated png": (PNG[: len(PNG) // 2], "image/png", 400, "undecodable_image"),
    "random bytes": (os.urandom(20_000), "application/octet-stream", 415, "unsupported_media_type"),
    "wrong content type": (PNG, "text/plain", 415, "unsupported_media_type"),
    "png declared, jpeg sent": (encode(PLAN, "jpeg"), "image/png", 400, "content_type_mismatch"),
    "json without image": (b'{"config": {}}', "application/json", 400, "bad_request"),
    "json with both sources": (b'{"image_base64": "AAAA", "s3_uri": "s3://b/k"}', "application/json", 400, "bad_request"),
    "not json": (b"{image_base64:", "application/json", 400, "bad_request"),
    "json typo": (b'{"image_b64": "AAAA"}', "application/json", 400, "bad_request"),
    "base64 garbage": (b'{"image_base64": "not base64 at all!!"}', "application/json", 400, "invalid_base64"),
    "base64 of junk": (json.dumps({"image_base64": base64.b64encode(b"hello").decode()}).encode(),
                       "application/json", 415, "unsupported_media_type"),
    "malformed s3 uri": (b'{"s3_uri": "https://bucket/key"}', "application/json", 400, "invalid_s3_uri"),
    "missing s3 object": (json.dumps({"s3_uri": f"s3://{BUCKET}/plans/nope.png"}).encode(),
                          "application/json", 404, "s3_object_not_found"),
    "missing s3 bucket": (b'{"s3_uri": "s3://no-such-bucket-roomkit/plan.png"}', "application/json", 404,
                          "s3_object_not_found"),
    "pixel bomb": (png_bomb(), "image/png", 413, "image_too_large"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_gets_a_json_error_and_the_server_keeps_serving(server, expected, case):
    body, content_type, status, code = BAD_INPUTS[case]
    reply = call(server.port, "POST", "/invocations", body, {"Content-Type": content_type})
    _assert_error(reply, status, code)
    _still_serving(server.port, expected)


def test_unknown_routes_and_methods(server):
    _assert_error(call(server.port, "GET", "/predict"), 404, "not_found")
    reply = call(server.port, "GET", "/invocations")
    _assert_error(reply, 405, "method_not_allowed")
    assert reply.headers["allow"] == "POST"
    reply = call(server.port, "GET", "/execution-parameters")
    assert reply.status == 200
    assert reply.json() == {"MaxConcurrentTransforms": 2, "BatchStrategy": "SINGLE_RECORD", "MaxPayloadInMB": 100}


def test_body_over_the_limit_is_refused_before_it_is_sent(server, expected):
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.putrequest("POST", "/invocations")
        conn.putheader("Content-Type", "image/tiff")
        conn.putheader("Content-Length", str(MAX_REQUEST + 1))
        conn.endheaders()  # no body sent: the server must answer from the headers alone
        started = time.monotonic()
        resp = conn.getresponse()
        body = json.loads(resp.read())
        assert time.monotonic() - started < 2.0
        assert resp.status == 413 and body["error"]["code"] == "payload_too_large"
        assert "SAGEMAKER_MAX_REQUEST_SIZE" in body["error"]["message"]
    finally:
        conn.close()
    _still_serving(server.port, expected)


def test_a_200_mb_scan_is_accepted(server, expected):
    """An uncompressed 8165×8165 BMP (200 MB): the kind of scan async payloads carry."""
    import cv2

    side = 8165
    big = cv2.resize(PLAN, (side, side), interpolation=cv2.INTER_NEAREST)
    data = encode(big, "bmp")
    del big
    assert 200_000_000 <= len(data) < MAX_REQUEST
    reply = call(server.port, "POST", "/invocations", data, {"Content-Type": "image/bmp"}, timeout=120)
    assert reply.status == 200, reply.body[:300]
    body = reply.json()
    assert body["image"] == {"width": side, "height": side}
    want = _library_answer(data, "image/bmp")
    assert body["detected_rooms"] == want["detected_rooms"] and body["detected_rooms"]
    line = [e for e in server.log_events("invocation") if e.get("bytes_in") == len(data)]
    assert line and line[0]["status"] == 200
    _still_serving(server.port, expected)


# -- concurrency ----------------------------------------------------------------------------------
def test_twenty_concurrent_requests_all_succeed_and_pings_stay_fast(server, expected):
    ids = [f"req-{i:02d}" for i in range(20)]

    def one(rid: str):
        return call(server.port, "POST", "/invocations", PNG, {"Content-Type": "image/png", "X-Request-Id": rid})

    with ThreadPoolExecutor(20) as pool:
        futures = [pool.submit(one, rid) for rid in ids]
        pings = []
        while not all(f.done() for f in futures):
            pings.append(call(server.port, "GET", "/ping"))
        replies = [f.result() for f in futures]
    for rid, reply in zip(ids, replies):
        assert reply.status == 200 and reply.headers["x-request-id"] == rid
        _same_rooms(reply.json(), expected)
    assert pings and all(p.status == 200 for p in pings)
    # SageMaker gives a ping 2 s; a ping queued behind detections would wait for several.
    assert max(p.seconds for p in pings) < 2.0, [round(p.seconds, 3) for p in pings]
    logged = {e["request_id"]: e for e in server.log_events("invocation") if e.get("request_id") in ids}
    assert set(logged) == set(ids)
    for event in logged.values():  # one structured line per request
        assert event["status"] == 200 and event["bytes_in"] == len(PNG)
        assert event["rooms"] == len(expected["detected_rooms"]) and event["ms"] > 0
    assert len({e["pid"] for e in logged.values()}) == 2  # both workers served


def test_ping_is_answered_while_every_worker_is_busy(server, expected, slow_plan):
    finished: dict[int, float] = {}
    replies: dict[int, object] = {}

    def slow(i: int):
        replies[i] = call(server.port, "POST", "/invocations", slow_plan, {**SLOW_HEADERS, "X-Request-Id": f"slow-{i}"})
        finished[i] = time.monotonic()

    threads = [threading.Thread(target=slow, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
        time.sleep(0.05)
    time.sleep(0.3)  # both uploaded and detecting
    pings = []
    while len(finished) < 2:
        pings.append((call(server.port, "GET", "/ping", timeout=5), time.monotonic()))
        time.sleep(0.05)
    for t in threads:
        t.join(120)
    during = [reply for reply, at in pings if at < min(finished.values())]
    assert len(during) >= 2, "the slow requests ended too soon to prove anything"
    assert all(reply.status == 200 for reply, _ in pings)
    assert max(reply.seconds for reply in during) < 2.0, [round(r.seconds, 3) for r in during]
    assert all(reply.status == 200 for reply in replies.values())
    events = [e for e in server.log_events("invocation") if str(e.get("request_id", "")).startswith("slow-")]
    assert len({e["pid"] for e in events[-2:]}) == 2, "the two slow requests should run on different workers"


# -- the OpenAPI document ---------------------------------------------------------------------------
def test_openapi_document_is_valid_and_matches_real_responses(server):
    from jsonschema import Draft202012Validator
    from openapi_spec_validator import validate

    spec = json.loads(OPENAPI_PATH.read_text())
    validate(spec)

    def check(path: str, method: str, reply) -> None:
        responses = spec["paths"][path][method.lower()]["responses"]
        assert str(reply.status) in responses, f"{method} {path} answered {reply.status}, undocumented"
        content = responses[str(reply.status)].get("content")
        if not content:
            assert reply.body == b""
            return
        ctype = reply.headers["content-type"]
        assert ctype in content, f"{ctype} undocumented for {reply.status}"
        schema = {**content[ctype]["schema"], "components": spec["components"]}
        schema = json.loads(json.dumps(schema).replace("#/components/", "#/components/"))
        Draft202012Validator(schema).validate(reply.json())

    b64 = base64.b64encode(PNG).decode()
    check("/ping", "GET", call(server.port, "GET", "/ping"))
    check("/execution-parameters", "GET", call(server.port, "GET", "/execution-parameters"))
    for accept in ("application/json", "application/geo+json"):
        check("/invocations", "POST", call(server.port, "POST", "/invocations", PNG,
                                           {"Content-Type": "image/png", "Accept": accept}))
    check("/invocations", "POST", call(server.port, "POST", "/invocations",
                                       json.dumps({"image_base64": b64}).encode(), {"Content-Type": "application/json"}))
    check("/invocations", "GET", call(server.port, "GET", "/invocations")) if "get" in spec["paths"]["/invocations"] else None
    check("/invocations", "POST", call(server.port, "POST", "/invocations", PNG, {"Content-Type": "image/png", "Accept": "text/csv"}))
    for name, (body, ctype, _status, _code) in BAD_INPUTS.items():
        check("/invocations", "POST", call(server.port, "POST", "/invocations", body, {"Content-Type": ctype}))
    # The JSON request schema accepts what the server accepts and refuses what it refuses.
    request_schema = {**spec["components"]["schemas"]["JsonRequest"], "components": spec["components"]}
    assert Draft202012Validator(request_schema).is_valid({"image_base64": b64, "config": {"door_gap": 20}})
    assert Draft202012Validator(request_schema).is_valid({"s3_uri": "s3://b/k.png"})
    assert not Draft202012Validator(request_schema).is_valid({"config": {}})
    assert not Draft202012Validator(request_schema).is_valid({"image_b64": b64})


# -- servers of their own -------------------------------------------------------------------------
def test_bad_config_json_makes_ping_fail_with_a_logged_reason(tmp_path):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text('{"min_room_area": 0.01, "door_gapp": 30}')
    proc = ServerProcess.roomkit_serve(tmp_path, workers=1, model_dir=model_dir)
    try:
        reply = proc.wait_until_listening()
        body = _assert_error(reply, 503, "model_not_ready")
        assert "door_gapp" in body["error"]["message"]
        _assert_error(call(proc.port, "POST", "/invocations", PNG, {"Content-Type": "image/png"}), 503, "model_not_ready")
        reasons = [e["reason"] for e in proc.log_events("worker_not_ready")]
        assert reasons and "door_gapp" in reasons[0]
    finally:
        proc.stop()


def test_sigterm_drains_in_flight_requests(tmp_path, slow_plan):
    proc = ServerProcess.roomkit_serve(tmp_path, workers=2)
    try:
        assert proc.wait_until_listening().status == 200
        results = []

        def slow(i: int):
            results.append(call(proc.port, "POST", "/invocations", slow_plan, SLOW_HEADERS))

        threads = [threading.Thread(target=slow, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        time.sleep(0.5)  # both requests are in the workers
        proc.proc.send_signal(15)
        for t in threads:
            t.join(60)
        assert [r.status for r in results] == [200, 200]
        assert all(r.json()["detected_rooms"] for r in results)
        assert proc.proc.wait(30) == 0
        with pytest.raises(OSError):
            call(proc.port, "GET", "/ping", timeout=2)
        # Every log line, gunicorn's included, is one JSON object (CloudWatch Logs Insights).
        lines = [json.loads(line) for line in proc.log().splitlines() if line.strip()]
        term = next(i for i, line in enumerate(lines) if line.get("message") == "Handling signal: term")
        done = [i for i, line in enumerate(lines) if line.get("event") == "invocation"]
        assert [lines[i]["status"] for i in done] == [200, 200]
        assert min(done) > term, "both requests must still have been running when SIGTERM came"
    finally:
        proc.stop()


def test_a_request_over_the_timeout_gets_504_and_the_worker_is_replaced(tmp_path, slow_plan):
    proc = ServerProcess.roomkit_serve(tmp_path, workers=1, extra=["--timeout", "0.5"])
    try:
        assert proc.wait_until_listening().status == 200
        reply = call(proc.port, "POST", "/invocations", slow_plan, SLOW_HEADERS)
        _assert_error(reply, 504, "processing_timeout")
        assert reply.seconds < SLOW_SECONDS + 1.0
        assert proc.log_events("worker_recycle")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the replacement worker boots and serves
            try:
                if call(proc.port, "POST", "/invocations", PNG, {"Content-Type": "image/png"}, timeout=10).status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        else:
            raise AssertionError(proc.log())
    finally:
        proc.stop()


def test_bad_environment_fails_fast_with_a_clear_message(tmp_path):
    env = {**os.environ, "SAGEMAKER_MODEL_SERVER_WORKERS": "many"}
    done = subprocess.run([sys.executable, "-m", "roomkit", "serve", "--port", str(free_port())],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "SAGEMAKER_MODEL_SERVER_WORKERS must be an integer, got 'many'" in done.stderr
