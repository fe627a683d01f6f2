"""Server settings from arguments and SageMaker's environment; content negotiation; overrides."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest

from roomkit.errors import ConfigError
from roomkit.serving.app import negotiate
from roomkit.serving.http_errors import NotAcceptableError
from roomkit.serving.options import DEFAULT_MAX_REQUEST_SIZE, ServerOptions, available_cpus, parse_size
from roomkit.serving.payload import parse_custom_attributes
from roomkit.serving.server import gunicorn_settings


def test_defaults_follow_the_sagemaker_contract():
    opts = ServerOptions.resolve(env={})
    assert (opts.host, opts.port, opts.workers) == ("0.0.0.0", 8080, available_cpus())
    assert opts.model_dir == Path("/opt/ml/model") and opts.config_path == Path("/opt/ml/model/config.json")
    assert opts.max_request_size == DEFAULT_MAX_REQUEST_SIZE == 1 << 30
    assert opts.timeout == 300 and opts.default_accept == "application/json" and opts.log_level == logging.INFO
    assert opts.graceful_timeout < 30  # SageMaker sends SIGKILL 30 s after SIGTERM


def test_environment_then_arguments():
    env = {
        "SAGEMAKER_BIND_TO_PORT": "9090",
        "SAGEMAKER_MODEL_SERVER_WORKERS": "3",
        "SAGEMAKER_MODEL_SERVER_TIMEOUT": "900",
        "SAGEMAKER_MAX_REQUEST_SIZE": "500MB",
        "SM_MODEL_DIR": "/models/x",
        "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "application/geo+json",
        "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
        "ROOMKIT_SERVER_THREADS": "4",
    }
    opts = ServerOptions.resolve(env=env)
    assert (opts.port, opts.workers, opts.timeout, opts.max_request_size) == (9090, 3, 900.0, 500_000_000)
    assert (opts.model_dir, opts.default_accept, opts.threads) == (Path("/models/x"), "application/geo+json", 4)
    opts = ServerOptions.resolve(port=1234, workers=1, timeout=5, model_dir="/m", max_request_size="1GiB", env=env)
    assert (opts.port, opts.workers, opts.timeout, opts.model_dir) == (1234, 1, 5.0, Path("/m"))
    assert opts.max_request_size == 1 << 30


@pytest.mark.parametrize("raw, expected", [
    ("1073741824", 1 << 30), ("500MB", 500_000_000), ("500 mb", 500_000_000), ("1GiB", 1 << 30),
    ("200m", 200_000_000), ("64KiB", 65536), (1234, 1234), ("1.5GB", 1_500_000_000),
])
def test_sizes(raw, expected):
    assert parse_size(raw, "size") == expected


@pytest.mark.parametrize("env, message", [
    ({"SAGEMAKER_MODEL_SERVER_WORKERS": "many"}, "SAGEMAKER_MODEL_SERVER_WORKERS must be an integer"),
    ({"SAGEMAKER_MODEL_SERVER_WORKERS": "0"}, "SAGEMAKER_MODEL_SERVER_WORKERS must be at least 1"),
    ({"SAGEMAKER_BIND_TO_PORT": "http"}, "SAGEMAKER_BIND_TO_PORT must be an integer"),
    ({"SAGEMAKER_MAX_REQUEST_SIZE": "lots"}, "SAGEMAKER_MAX_REQUEST_SIZE must be a size"),
    ({"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv"}, "default response type must be one of"),
    ({"SAGEMAKER_CONTAINER_LOG_LEVEL": "chatty"}, "SAGEMAKER_CONTAINER_LOG_LEVEL must be"),
])
def test_bad_environment_is_named_in_the_error(env, message):
    with pytest.raises(ConfigError, match=message):
        ServerOptions.resolve(env=env)


@pytest.mark.parametrize("accept, chosen", [
    (None, "application/json"),
    ("", "application/json"),
    ("*/*", "application/json"),
    ("application/*", "application/json"),
    ("application/geo+json", "application/geo+json"),
    ("application/vnd.geo+json", "application/geo+json"),
    ("application/json;q=0.5, application/geo+json;q=0.9", "application/geo+json"),
    ("text/html, */*;q=0.1", "application/json"),
    ("application/geo+json;q=0, */*", "application/json"),
    ("APPLICATION/JSON", "application/json"),
])
def test_negotiation(accept, chosen):
    assert negotiate(accept, "application/json") == chosen


@pytest.mark.parametrize("accept", ["text/csv", "image/png", "application/json;q=0", "text/*"])
def test_negotiation_refuses_what_the_server_cannot_produce(accept):
    with pytest.raises(NotAcceptableError):
        negotiate(accept, "application/json")


def test_default_type_wins_wildcards():
    assert negotiate("*/*", "application/geo+json") == "application/geo+json"


def test_custom_attributes():
    header = "trace-id=abc;config.door_gap=24, config.min_room_area=0.002; config.wall_thickness=null;x=1"
    assert parse_custom_attributes(header) == {"door_gap": 24, "min_room_area": 0.002, "wall_thickness": None}
    assert parse_custom_attributes(None) == {} and parse_custom_attributes("a=b") == {}


def test_gunicorn_settings():
    opts = ServerOptions.resolve(host="::", port=8080, workers=3, timeout=600, env={})
    s = gunicorn_settings(opts)
    assert s["bind"] == ["[::]:8080"] and s["workers"] == 3 and s["preload_app"] is False
    assert s["worker_class"] == "roomkit.serving.worker.RoomkitWorker" and s["threads"] >= 2
    assert s["control_socket_disable"] is True and s["accesslog"] is None
    assert s["timeout"] >= 600 + s["graceful_timeout"]  # the app, not gunicorn, enforces the request timeout


def test_the_most_specific_range_decides():
    assert negotiate("application/geo+json;q=0, */*", "application/geo+json") == "application/json"
    assert negotiate("application/*;q=0.2, application/geo+json", "application/json") == "application/geo+json"
    with pytest.raises(NotAcceptableError):
        negotiate("application/json;q=0, application/geo+json;q=0, */*", "application/json")


def test_a_named_type_beats_a_wildcard_at_equal_q():
    assert negotiate("*/*, application/geo+json", "application/json") == "application/geo+json"
