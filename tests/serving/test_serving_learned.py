"""The learned and hybrid backends behind the real `roomkit serve` process on 127.0.0.1.

The model directory is what SageMaker extracts into /opt/ml/model: config.json plus model.onnx
and model.json (random weights here: a valid model that finds little, enough for the contract).
A model the config needs but cannot load must keep /ping at 503 with the reason from the start.
"""
from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from learned_support import make_model_dir
from roomkit.serving import OPENAPI_PATH
from roomkit.serving.artifacts import extract_model, package_model
from serving_support import ROOT, ServerProcess, call

pytestmark = pytest.mark.slow

SAMPLE = (ROOT / "data" / "samples" / "clean_l.png").read_bytes()
PNG = {"Content-Type": "image/png"}


def _error(reply, status: int, code: str) -> dict:
    assert reply.status == status, (reply.status, reply.body[:500])
    body = reply.json()
    assert body["status"] == "error" and body["error"]["code"] == code, body
    return body


def _json_request(config: dict) -> bytes:
    return json.dumps({"image_base64": base64.b64encode(SAMPLE).decode(), "config": config}).encode()


def _stable(reply) -> dict:
    """A response without its timing (the only field that may differ between equal requests)."""
    doc = reply.json()
    doc.pop("processing_time_ms", None)
    doc.pop("processing_time_breakdown_ms", None)
    return doc


def _validate_response(reply) -> None:
    from jsonschema import Draft202012Validator

    spec = json.loads(OPENAPI_PATH.read_text())
    content = spec["paths"]["/invocations"]["post"]["responses"][str(reply.status)]["content"]
    schema = {**content[reply.headers["content-type"]]["schema"], "components": spec["components"]}
    Draft202012Validator(schema).validate(reply.json())


def _model_dir(tmp: Path, config: dict, *, model: bool = True) -> Path:
    d = tmp / "opt-ml-model"
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.json").write_text(json.dumps(config))
    if model:
        make_model_dir(d, trained_on={"synthetic_plans": 4, "real_plans": 0, "seed": 7})
    return d


def _start(tmp: Path, model_dir: Path) -> ServerProcess:
    proc = ServerProcess.roomkit_serve(tmp, workers=1, model_dir=model_dir, extra=["--timeout", "120"])
    proc.wait_until_listening()
    return proc


# -- an endpoint whose config.json says backend: learned --------------------------------------------
@pytest.fixture(scope="module")
def learned_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("learned")
    src = make_model_dir(tmp / "trained", trained_on={"synthetic_plans": 4, "real_plans": 0, "seed": 7})
    # The way a deployment gets there: package_model with the model, extracted like SageMaker does.
    model_dir = extract_model(package_model({"backend": "learned"}, tmp, model_dir=src), tmp / "opt-ml-model")
    proc = _start(tmp, model_dir)
    yield proc
    proc.stop()


def test_learned_backend_answers_invocations_with_a_valid_response(learned_server):
    assert call(learned_server.port, "GET", "/ping").status == 200
    for accept in ("application/json", "application/geo+json"):
        reply = call(learned_server.port, "POST", "/invocations", SAMPLE, {**PNG, "Accept": accept})
        assert reply.status == 200, reply.body[:500]
        _validate_response(reply)
    doc = call(learned_server.port, "POST", "/invocations", SAMPLE, PNG).json()
    assert doc["status"] == "success" and doc["image"]["width"] > 0
    # The worker says which backend it serves and what its model was trained on.
    ready = learned_server.log_events("worker_ready")
    assert ready and ready[0]["backend"] == "learned"
    assert ready[0]["model"]["trained_on"] == {"synthetic_plans": 4, "real_plans": 0, "seed": 7}


def test_learned_endpoint_takes_per_request_backend_overrides(learned_server):
    for backend in ("rules", "hybrid", "learned"):
        reply = call(learned_server.port, "POST", "/invocations", _json_request({"backend": backend}),
                     {"Content-Type": "application/json"})
        assert reply.status == 200, (backend, reply.body[:300])
    rules = call(learned_server.port, "POST", "/invocations", SAMPLE,
                 {**PNG, "X-Amzn-SageMaker-Custom-Attributes": "config.backend=rules"})
    assert rules.status == 200 and rules.json()["detected_rooms"], "the rules backend finds the sample's rooms"


def test_unknown_backend_is_refused_naming_the_field(learned_server):
    reply = call(learned_server.port, "POST", "/invocations", _json_request({"backend": "neural"}),
                 {"Content-Type": "application/json"})
    body = _error(reply, 400, "invalid_config")
    assert "backend" in body["error"]["message"] and "neural" in body["error"]["message"]


# -- a rules endpoint: with a model, overrides run it; without, they get a clear 4xx -----------------
def test_rules_endpoint_with_a_model_serves_hybrid_deterministically(tmp_path):
    proc = _start(tmp_path, _model_dir(tmp_path, {"min_room_area": 0.001}))
    try:
        assert call(proc.port, "GET", "/ping").status == 200
        headers = {**PNG, "X-Amzn-SageMaker-Custom-Attributes": "config.backend=hybrid"}
        first = call(proc.port, "POST", "/invocations", SAMPLE, headers)
        second = call(proc.port, "POST", "/invocations", SAMPLE, headers)
        assert first.status == second.status == 200, first.body[:300]
        _validate_response(first)
        assert _stable(first) == _stable(second)
        assert first.json()["detected_rooms"], "the hybrid keeps the rules' rooms on a clean plan"
    finally:
        proc.stop()


def test_learned_override_without_a_model_is_a_4xx_naming_the_problem(tmp_path):
    proc = _start(tmp_path, _model_dir(tmp_path, {"min_room_area": 0.001}, model=False))
    try:
        assert call(proc.port, "GET", "/ping").status == 200  # a rules endpoint needs no model
        for backend in ("learned", "hybrid"):
            reply = call(proc.port, "POST", "/invocations", _json_request({"backend": backend}),
                         {"Content-Type": "application/json"})
            body = _error(reply, 400, "backend_unavailable")
            assert backend in body["error"]["message"] and "model.onnx" in body["error"]["message"]
        header = {**PNG, "X-Amzn-SageMaker-Custom-Attributes": "config.backend=learned"}
        _error(call(proc.port, "POST", "/invocations", SAMPLE, header), 400, "backend_unavailable")
        assert call(proc.port, "POST", "/invocations", SAMPLE, PNG).status == 200  # rules still work
    finally:
        proc.stop()


# -- a model the config needs but cannot load: /ping 503 with the reason, from the start ------------
def _truncate(d: Path) -> None:
    data = (d / "model.onnx").read_bytes()
    (d / "model.onnx").write_bytes(data[: len(data) // 2])


def _garbage(d: Path) -> None:
    (d / "model.onnx").write_bytes(b"\x00not an onnx graph\xff" * 100)


def _bad_json(d: Path) -> None:
    (d / "model.json").write_text('{"format": "roomkit-segmentation/1", "classes": ')


def _wrong_classes(d: Path) -> None:
    info = json.loads((d / "model.json").read_text())
    (d / "model.json").write_text(json.dumps({**info, "classes": ["wall", "room"]}))


def _no_onnx(d: Path) -> None:
    (d / "model.onnx").unlink()


def _no_json(d: Path) -> None:
    (d / "model.json").unlink()


BROKEN = {
    "missing model.onnx": (_no_onnx, "no model.onnx"),
    "truncated model.onnx": (_truncate, "cannot be loaded by onnxruntime"),
    "garbage model.onnx": (_garbage, "cannot be loaded by onnxruntime"),
    "model.json not JSON": (_bad_json, "not valid JSON"),
    "model.json wrong classes": (_wrong_classes, "classes"),
    "missing model.json": (_no_json, "no model.json"),
}


# Every breakage under backend learned; the hybrid loads the model the same way, two show it.
CASES = [(case, "learned") for case in BROKEN] + [("missing model.onnx", "hybrid"), ("truncated model.onnx", "hybrid")]


@pytest.mark.parametrize("case, backend", CASES)
def test_ping_is_503_with_the_reason_when_the_needed_model_is_broken(tmp_path, case, backend):
    breaks, reason = BROKEN[case]
    model_dir = _model_dir(tmp_path, {"backend": backend})
    breaks(model_dir)
    proc = _start(tmp_path, model_dir)
    try:
        first = call(proc.port, "GET", "/ping")
        body = _error(first, 503, "model_not_ready")
        assert reason in body["error"]["message"] and backend in body["error"]["message"], body
        _error(call(proc.port, "POST", "/invocations", SAMPLE, PNG), 503, "model_not_ready")
        reasons = [e["reason"] for e in proc.log_events("worker_not_ready")]
        assert reasons and reason in reasons[0]
    finally:
        proc.stop()


def test_config_json_with_an_unknown_backend_names_the_field_on_ping(tmp_path):
    proc = _start(tmp_path, _model_dir(tmp_path, {"backend": "neural"}))
    try:
        body = _error(call(proc.port, "GET", "/ping"), 503, "model_not_ready")
        assert "backend" in body["error"]["message"] and "neural" in body["error"]["message"]
    finally:
        proc.stop()


def test_a_broken_model_on_a_rules_endpoint_leaves_it_healthy_and_refuses_overrides(tmp_path):
    model_dir = _model_dir(tmp_path, {})
    _garbage(model_dir)
    proc = _start(tmp_path, model_dir)
    try:
        assert call(proc.port, "GET", "/ping").status == 200
        assert call(proc.port, "POST", "/invocations", SAMPLE, PNG).status == 200
        body = _error(call(proc.port, "POST", "/invocations", _json_request({"backend": "learned"}),
                           {"Content-Type": "application/json"}), 400, "backend_unavailable")
        assert "cannot be loaded by onnxruntime" in body["error"]["message"]
        assert proc.log_events("model_unusable")
    finally:
        proc.stop()
