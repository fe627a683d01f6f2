"""The one place AWS clients are built: ``session(mode="local" | "aws")``.

Every other module (deploy, submit, trigger, notebooks) takes an :class:`AwsSession` and asks it
for clients, so none of them branches on the mode. In ``local`` mode the clients point at the
loopback services of :mod:`roomkit.local` (moto's server plus the local async runtime); in
``aws`` mode they are plain boto3 clients using the caller's usual credential chain.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import boto3
from botocore.config import Config

from roomkit.errors import ConfigError

MODES = ("local", "aws")
DEFAULT_LOCAL_REGION = "us-east-1"
# Where `roomkit local up` records the endpoints of the loopback services it runs.
LOCAL_STATE_ENV = "ROOMKIT_LOCAL_STATE"
DEFAULT_LOCAL_STATE = Path.home() / ".roomkit" / "local.json"

# Services whose clients go to the local async runtime rather than to moto's server.
RUNTIME_SERVICES = ("sagemaker-runtime",)


@dataclass
class AwsSession:
    """boto3 session plus the endpoint map of the mode it was made for."""

    mode: str
    region: str
    boto: boto3.session.Session
    endpoints: Mapping[str, str] = field(default_factory=dict)
    retries: int = 5

    def endpoint_url(self, service: str) -> str | None:
        """Loopback URL for ``service`` in local mode; ``None`` (boto3's default) in aws mode."""
        if self.mode != "local":
            return None
        return self.endpoints.get(service) or self.endpoints.get("default")

    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client for ``service`` with adaptive retries (throttling backs off)."""
        config = Config(retries={"max_attempts": self.retries, "mode": "adaptive"})
        if "config" in kwargs:
            config = config.merge(kwargs.pop("config"))
        url = kwargs.pop("endpoint_url", None) or self.endpoint_url(service)
        return self.boto.client(service, region_name=self.region, endpoint_url=url, config=config, **kwargs)

    def account_id(self) -> str:
        return self.client("sts").get_caller_identity()["Account"]

    def env(self) -> dict[str, str]:
        """Environment variables that point a child process (server, notebook, CLI) here."""
        env = {"AWS_DEFAULT_REGION": self.region, "AWS_REGION": self.region}
        if self.mode == "local":
            creds = self.boto.get_credentials()
            if creds is not None:
                frozen = creds.get_frozen_credentials()
                env["AWS_ACCESS_KEY_ID"] = frozen.access_key
                env["AWS_SECRET_ACCESS_KEY"] = frozen.secret_key
                if frozen.token:
                    # Set it too, so a real session token left in the caller's environment is
                    # never paired with the fake keys.
                    env["AWS_SESSION_TOKEN"] = frozen.token
            default = self.endpoints.get("default")
            if default:
                env["AWS_ENDPOINT_URL"] = default
            for service, url in self.endpoints.items():
                if service != "default":
                    env["AWS_ENDPOINT_URL_" + service.upper().replace("-", "_")] = url
        return env


def session(
    mode: str = "local",
    *,
    region: str | None = None,
    profile: str | None = None,
    endpoints: Mapping[str, str] | None = None,
) -> AwsSession:
    """Build the session every AWS-facing module uses.

    ``mode="aws"``: the default boto3 credential chain (``profile`` if given) and ``region``
    (or the configured default). ``mode="local"``: loopback endpoints from ``endpoints``, or else
    from the state file written by ``roomkit local up``; fake credentials that can never reach a
    real account.
    """
    if mode not in MODES:
        raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "aws":
        boto = boto3.session.Session(profile_name=profile, region_name=region)
        if not boto.region_name:
            raise ConfigError(
                "no AWS region configured: pass region=... or set AWS_REGION / AWS_DEFAULT_REGION"
            )
        return AwsSession(mode="aws", region=boto.region_name, boto=boto)

    if endpoints is None:
        endpoints = read_local_state()["endpoints"]
    region = region or DEFAULT_LOCAL_REGION
    boto = boto3.session.Session(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        aws_session_token="testing",
        region_name=region,
    )
    return AwsSession(mode="local", region=region, boto=boto, endpoints=dict(endpoints))


def local_state_path() -> Path:
    return Path(os.environ.get(LOCAL_STATE_ENV, DEFAULT_LOCAL_STATE))


def read_local_state() -> dict[str, Any]:
    """The endpoints of a running ``roomkit local up``, or a clear error saying how to start it."""
    path = local_state_path()
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"local mode is not running (no {path}): start it with `roomkit local up`, "
            "or use `with roomkit.local.LocalAWS() as aws: aws.session()` in Python"
        ) from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read local-mode state {path}: {exc}") from exc
    if not isinstance(state, dict) or not isinstance(state.get("endpoints"), dict):
        raise ConfigError(f"local-mode state {path} has no 'endpoints' map")
    pid = state.get("pid")
    if isinstance(pid, int) and not pid_alive(pid):
        raise ConfigError(
            f"local mode is not running (its process {pid} is gone; {path} is stale): "
            "start it again with `roomkit local up`"
        )
    return state


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (an exited, unreaped child — a zombie — does not)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True
