"""Server settings: explicit arguments, else SageMaker's environment variables, else defaults.

SageMaker configures a bring-your-own container only through environment variables (from the
model's ``ContainerDefinition.Environment``) and starts it as ``serve`` with no arguments, so
every setting has an environment variable; ``roomkit serve --port ...`` and
:func:`roomkit.serve` arguments win over them for local use.

=================================  ===========================  ==================================
setting                            environment variable         default
=================================  ===========================  ==================================
port                               ``SAGEMAKER_BIND_TO_PORT``   8080 (host ``127.0.0.1``)
worker processes                   ``SAGEMAKER_MODEL_SERVER_WORKERS``  CPUs available to the process
per-request timeout (s)            ``SAGEMAKER_MODEL_SERVER_TIMEOUT``  300
request body limit (bytes)         ``SAGEMAKER_MAX_REQUEST_SIZE``  1 GiB (async payload maximum)
model directory                    ``SM_MODEL_DIR``             ``/opt/ml/model``
default response type              ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT``  ``application/json``
log level                          ``SAGEMAKER_CONTAINER_LOG_LEVEL``  INFO (name or number)
threads per worker                 ``ROOMKIT_SERVER_THREADS``   16
=================================  ===========================  ==================================
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from roomkit.errors import ConfigError

DEFAULT_PORT = 8080
# Loopback unless told otherwise: /invocations has no authentication and reads S3 with whatever
# credentials the process has. The container's entrypoint (container/serve) binds 0.0.0.0
# explicitly, as SageMaker requires.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_MODEL_DIR = "/opt/ml/model"
DEFAULT_TIMEOUT_S = 300
DEFAULT_MAX_REQUEST_SIZE = 1 << 30  # SageMaker Async accepts payloads up to 1 GB
DEFAULT_THREADS = 16
# SageMaker sends SIGKILL 30 s after SIGTERM: finish in-flight requests within that.
DEFAULT_GRACEFUL_TIMEOUT_S = 25
# Longer than the 60 s idle timeout of AWS front ends, so the server never closes a kept-alive
# connection the client is about to reuse.
DEFAULT_KEEPALIVE_S = 75
RESPONSE_TYPES = ("application/json", "application/geo+json")

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4}


def available_cpus() -> int:
    """CPUs this process may run on (affinity-aware), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - macOS
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class ServerOptions:
    """Everything the launcher and the app need to know, resolved once in the parent process."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    workers: int = field(default_factory=available_cpus)
    threads: int = DEFAULT_THREADS
    timeout: float = DEFAULT_TIMEOUT_S
    max_request_size: int = DEFAULT_MAX_REQUEST_SIZE
    model_dir: Path = Path(DEFAULT_MODEL_DIR)
    default_accept: str = "application/json"
    log_level: int = logging.INFO
    graceful_timeout: float = DEFAULT_GRACEFUL_TIMEOUT_S
    keepalive: float = DEFAULT_KEEPALIVE_S

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be between 0 and 65535, got {self.port}")
        for name in ("workers", "threads", "max_request_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.timeout <= 0:
            raise ConfigError(f"timeout must be positive, got {self.timeout}")
        if self.default_accept not in RESPONSE_TYPES:
            raise ConfigError(
                f"default response type must be one of {', '.join(RESPONSE_TYPES)}, got {self.default_accept!r}"
            )

    @property
    def config_path(self) -> Path:
        return self.model_dir / "config.json"

    @classmethod
    def resolve(
        cls,
        *,
        host: str | None = None,
        port: int | None = None,
        workers: int | None = None,
        model_dir: str | os.PathLike | None = None,
        timeout: float | None = None,
        threads: int | None = None,
        max_request_size: int | str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> "ServerOptions":
        """Arguments first, then SageMaker's environment variables, then defaults."""
        env = os.environ if env is None else env
        return cls(
            host=host or DEFAULT_HOST,
            port=port if port is not None else _env_int(env, "SAGEMAKER_BIND_TO_PORT", DEFAULT_PORT, low=0),
            workers=workers
            if workers is not None
            else _env_int(env, "SAGEMAKER_MODEL_SERVER_WORKERS", available_cpus(), low=1),
            threads=threads if threads is not None else _env_int(env, "ROOMKIT_SERVER_THREADS", DEFAULT_THREADS, low=1),
            timeout=float(timeout)
            if timeout is not None
            else float(_env_int(env, "SAGEMAKER_MODEL_SERVER_TIMEOUT", DEFAULT_TIMEOUT_S, low=1)),
            max_request_size=parse_size(max_request_size, "max_request_size")
            if max_request_size is not None
            else _env_size(env, "SAGEMAKER_MAX_REQUEST_SIZE", DEFAULT_MAX_REQUEST_SIZE),
            model_dir=Path(model_dir or env.get("SM_MODEL_DIR") or DEFAULT_MODEL_DIR),
            default_accept=_default_accept(env),
            log_level=_log_level(env.get("SAGEMAKER_CONTAINER_LOG_LEVEL", "")),
        )


def parse_size(value: int | str, name: str) -> int:
    """Bytes from ``1073741824``, ``"500MB"``, ``"1GiB"``, ``"200m"``."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise ConfigError(f"{name} must be a positive number of bytes, got {value}")
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise ConfigError(f"{name} must be a size in bytes such as 1073741824 or '500MB', got {value!r}")
    number, unit = float(match.group(1)), (match.group(2) or "").lower()
    binary = "i" in unit
    unit = unit.replace("i", "")
    factor = _UNITS[unit[:1] if unit not in ("", "b") else unit]
    if binary and factor > 1:
        factor = 1024 ** {"k": 1, "m": 2, "g": 3, "t": 4}[unit[:1]]
    size = int(number * factor)
    if size < 1:
        raise ConfigError(f"{name} must be at least 1 byte, got {value!r}")
    return size


def _env_int(env: Mapping[str, str], name: str, default: int, *, low: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < low:
        raise ConfigError(f"{name} must be at least {low}, got {value}")
    return value


def _env_size(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    return parse_size(raw, name) if raw else default


def _default_accept(env: Mapping[str, str]) -> str:
    raw = env.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "").strip().lower()
    return raw or "application/json"


def _log_level(raw: str) -> int:
    raw = raw.strip()
    if not raw:
        return logging.INFO
    if raw.isdigit():
        return int(raw)
    level = logging.getLevelName(raw.upper())
    if not isinstance(level, int):
        raise ConfigError(f"SAGEMAKER_CONTAINER_LOG_LEVEL must be a level name or number, got {raw!r}")
    return level
