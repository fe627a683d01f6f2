"""What to deploy: :class:`DeploymentSpec`, validated, loadable from YAML/JSON or notebook parameters.

The spec is declarative and free of AWS calls; :func:`roomkit.aws.deploy.deploy` turns it into
resources. Every validation error names the offending field (``autoscaling.max_capacity``…), so a
typo in a YAML file or a notebook parameter reads as what it is.

A spec file looks like::

    name: roomkit-demo
    image_uri: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/roomkit:1.0
    model_config: {min_room_area: 0.002}      # or model_data_url: s3://bucket/model.tar.gz
    instance_type: ml.m5.large
    kind: async
    async_inference: {max_concurrent_invocations_per_instance: 4}
    autoscaling: {min_capacity: 0, max_capacity: 2, target_backlog_per_instance: 5}

Notebook parameters may be given flat (``max_capacity=3``); each flat key that belongs to a
section is routed to it.
"""
from __future__ import annotations

import difflib
import json
import math
import re
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

from roomkit.errors import ConfigError

KINDS = ("async", "serverless", "realtime")
NOTIFICATION_TARGETS = ("SUCCESS_NOTIFICATION_TOPIC", "ERROR_NOTIFICATION_TOPIC")
# Serverless endpoints accept these memory sizes only (MB).
SERVERLESS_MEMORY_SIZES = (1024, 2048, 3072, 4096, 5120, 6144)

# The name prefix becomes part of bucket, role, topic, queue, model and endpoint names. Bucket
# names are the tightest constraint: lowercase, digits, hyphens; <account>-<region> is appended.
_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
NAME_MAX = 24
_S3_URI_RE = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(.*))?$")
_ARN_RE = re.compile(r"^arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:\d{12}:.+$")
_INSTANCE_RE = re.compile(r"^ml\.[a-z0-9-]+\.[a-z0-9]+$")
_ECR_URI_RE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
    r"(?P<repo>[a-z0-9][a-z0-9._/-]*?)(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})"
    r"|@(?P<digest>sha256:[0-9a-f]{64}))?$"
)


def parse_s3_uri(uri: str, *, field_name: str = "s3 uri") -> tuple[str, str]:
    """``s3://bucket/key`` -> ``(bucket, key)``; ConfigError naming ``field_name`` otherwise."""
    match = _S3_URI_RE.match(uri or "") if isinstance(uri, str) else None
    if not match:
        raise ConfigError(f"{field_name} must be an s3://bucket/key URI, got {uri!r}")
    return match.group(1), match.group(2) or ""


def parse_ecr_uri(uri: str, *, field_name: str = "image_uri") -> dict[str, str | None]:
    """Split an ECR image URI into account, region, repo, tag/digest (SageMaker pulls only ECR)."""
    match = _ECR_URI_RE.match(uri or "") if isinstance(uri, str) else None
    if not match:
        raise ConfigError(
            f"{field_name} must be an ECR image URI like "
            f"<account>.dkr.ecr.<region>.amazonaws.com/<repository>[:<tag> | @sha256:<digest>], "
            f"got {uri!r}; SageMaker pulls images from ECR only"
        )
    parts = match.groupdict()
    if not parts["tag"] and not parts["digest"]:
        parts["tag"] = "latest"
    return parts


def _normalize_prefix(value: str, field_name: str) -> str:
    if not isinstance(value, str) or not value.strip("/"):
        raise ConfigError(f"{field_name} must be a non-empty S3 key prefix like 'inputs/', got {value!r}")
    if value.startswith("/") or "//" in value or any(c in value for c in "\\*?"):
        raise ConfigError(f"{field_name} must be a plain S3 key prefix (no leading '/', '//', '*', '?'), got {value!r}")
    return value.rstrip("/") + "/"


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value!r}")


def _check_number(name: str, value: Any, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value!r}")


def _check_optional_arn(name: str, value: Any, service: str) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not _ARN_RE.match(value) or value.split(":")[2] != service:
        raise ConfigError(f"{name} must be an {service} ARN (arn:aws:{service}:...), got {value!r}")


@dataclass(frozen=True)
class AsyncSettings:
    """``AsyncInferenceConfig`` of an async endpoint.

    ``output_path``/``failure_path`` default to ``s3://<deployment bucket>/async-outputs/`` and
    ``…/async-failures/``; ``input_prefix`` is where :mod:`roomkit.aws.submit` uploads plans. Topic ARNs
    left empty are created (``<name>-success``/``<name>-error``) and subscribed by one SQS queue.
    """

    input_prefix: str = "async-inputs/"
    output_path: str | None = None
    failure_path: str | None = None
    max_concurrent_invocations_per_instance: int = 4
    success_topic_arn: str | None = None
    error_topic_arn: str | None = None
    include_inference_response_in: tuple[str, ...] = ("SUCCESS_NOTIFICATION_TOPIC",)
    kms_key_id: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_prefix", _normalize_prefix(self.input_prefix, "async_inference.input_prefix"))
        for name in ("output_path", "failure_path"):
            value = getattr(self, name)
            if value is not None:
                bucket, key = parse_s3_uri(value, field_name=f"async_inference.{name}")
                object.__setattr__(self, name, f"s3://{bucket}/{key.rstrip('/') + '/' if key else ''}")
        if self.output_path and self.output_path == self.failure_path:
            raise ConfigError("async_inference.failure_path must differ from async_inference.output_path")
        _check_int(
            "async_inference.max_concurrent_invocations_per_instance",
            self.max_concurrent_invocations_per_instance, 1, 1000,
        )
        _check_optional_arn("async_inference.success_topic_arn", self.success_topic_arn, "sns")
        _check_optional_arn("async_inference.error_topic_arn", self.error_topic_arn, "sns")
        targets = self.include_inference_response_in
        if isinstance(targets, str):
            targets = (targets,)
        targets = tuple(targets or ())
        bad = [t for t in targets if t not in NOTIFICATION_TARGETS]
        if bad:
            raise ConfigError(
                f"async_inference.include_inference_response_in must hold only "
                f"{', '.join(NOTIFICATION_TARGETS)}, got {bad!r}"
            )
        object.__setattr__(self, "include_inference_response_in", targets)
        if self.kms_key_id is not None and (not isinstance(self.kms_key_id, str) or not self.kms_key_id.strip()):
            raise ConfigError(f"async_inference.kms_key_id must be a KMS key id, alias or ARN, got {self.kms_key_id!r}")


@dataclass(frozen=True)
class ServerlessSettings:
    """``ServerlessConfig`` of a serverless endpoint (memory and concurrency per endpoint)."""

    memory_size_mb: int = 2048
    max_concurrency: int = 5

    def __post_init__(self) -> None:
        if self.memory_size_mb not in SERVERLESS_MEMORY_SIZES or isinstance(self.memory_size_mb, bool):
            raise ConfigError(
                f"serverless.memory_size_mb must be one of {', '.join(map(str, SERVERLESS_MEMORY_SIZES))}, "
                f"got {self.memory_size_mb!r}"
            )
        _check_int("serverless.max_concurrency", self.max_concurrency, 1, 200)


@dataclass(frozen=True)
class AutoscalingSettings:
    """Scale an async endpoint on its backlog, down to ``min_capacity`` (0 = scale to zero).

    Target tracking keeps ``ApproximateBacklogSizePerInstance`` near ``target_backlog_per_instance``;
    a step policy on the ``HasBacklogWithoutCapacity`` alarm wakes an endpoint that sits at zero.
    """

    enabled: bool = True
    min_capacity: int = 0
    max_capacity: int = 2
    target_backlog_per_instance: float = 5.0
    scale_in_cooldown_s: int = 600
    scale_out_cooldown_s: int = 300
    wake_cooldown_s: int = 300

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise ConfigError(f"autoscaling.enabled must be true or false, got {self.enabled!r}")
        _check_int("autoscaling.min_capacity", self.min_capacity, 0, 1000)
        _check_int("autoscaling.max_capacity", self.max_capacity, 1, 1000)
        if self.max_capacity < self.min_capacity:
            raise ConfigError(
                f"autoscaling.max_capacity ({self.max_capacity}) must be >= "
                f"autoscaling.min_capacity ({self.min_capacity})"
            )
        _check_number("autoscaling.target_backlog_per_instance", self.target_backlog_per_instance, 0.1, 1e6)
        for name in ("scale_in_cooldown_s", "scale_out_cooldown_s", "wake_cooldown_s"):
            _check_int(f"autoscaling.{name}", getattr(self, name), 0, 86_400)


_SECTIONS = {
    "async_inference": AsyncSettings,
    "serverless": ServerlessSettings,
    "autoscaling": AutoscalingSettings,
}
# Accepted spellings of the section names in files (``async`` is a Python keyword).
_SECTION_ALIASES = {"async": "async_inference", "async_config": "async_inference"}


@dataclass(frozen=True)
class DeploymentSpec:
    """Everything :func:`roomkit.aws.deploy.deploy` needs to stand up one endpoint.

    Attributes
    ----------
    name:
        Name prefix of every resource (lowercase letters, digits, hyphens; <= 24 chars).
    image_uri:
        ECR image of the serving container. ``None`` is allowed in local mode only: the image the
        local mode registers (repository ``roomkit``, tag ``local``) is used.
    model_data_url, model_config:
        At most one: an existing ``s3://…/model.tar.gz``, or a detector configuration (a dict of
        :class:`roomkit.DetectorConfig` fields or a path to a JSON/YAML file) that is packaged
        into ``model.tar.gz`` and uploaded to the deployment bucket. Neither: the detector's
        default configuration is packaged.
    kind:
        ``async`` (default), ``serverless`` or ``realtime``.
    instance_type, instance_count:
        Instance-based kinds only; ``instance_count`` is the initial count.
    bucket:
        Bucket for inputs, outputs and the model artifact; default ``<name>-<account>-<region>``.
    role_arn:
        Use this execution role instead of creating a least-privilege one.
    environment:
        Extra container environment (e.g. ``SAGEMAKER_MODEL_SERVER_WORKERS``).
    startup_timeout_s:
        ``ContainerStartupHealthCheckTimeoutInSeconds`` (instance-based kinds), 60–3600.
    """

    name: str
    image_uri: str | None = None
    model_data_url: str | None = None
    model_config: Mapping[str, Any] | str | None = None
    kind: str = "async"
    instance_type: str = "ml.m5.large"
    instance_count: int = 1
    variant_name: str = "AllTraffic"
    bucket: str | None = None
    role_arn: str | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    startup_timeout_s: int | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    async_inference: AsyncSettings = field(default_factory=AsyncSettings)
    serverless: ServerlessSettings = field(default_factory=ServerlessSettings)
    autoscaling: AutoscalingSettings = field(default_factory=AutoscalingSettings)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name) or len(self.name) > NAME_MAX:
            raise ConfigError(
                f"name must be 1-{NAME_MAX} lowercase letters, digits or hyphens, starting and ending "
                f"with a letter or digit (it prefixes bucket and endpoint names), got {self.name!r}"
            )
        if self.image_uri is not None:
            parse_ecr_uri(self.image_uri)
        if self.model_data_url is not None and self.model_config is not None:
            raise ConfigError("give only one of model_data_url (s3://.../model.tar.gz) or model_config")
        if self.model_data_url is None and self.model_config is None:
            object.__setattr__(self, "model_config", {})  # the detector's default configuration
        if self.model_data_url is not None:
            _, key = parse_s3_uri(self.model_data_url, field_name="model_data_url")
            if not key.endswith(".tar.gz"):
                raise ConfigError(f"model_data_url must point to a .tar.gz archive, got {self.model_data_url!r}")
        if self.model_config is not None and not isinstance(self.model_config, (Mapping, str, Path)):
            raise ConfigError(
                f"model_config must be a mapping of detector settings or a path, got {type(self.model_config).__name__}"
            )
        if isinstance(self.model_config, Path):
            object.__setattr__(self, "model_config", str(self.model_config))
        if isinstance(self.model_config, Mapping):
            from roomkit.detector.config import DetectorConfig  # pure Python: no OpenCV behind it

            try:  # a typo fails here, not as an endpoint that never turns healthy
                DetectorConfig.from_dict(self.model_config)
            except ConfigError as exc:
                raise ConfigError(f"model_config: {exc.message}") from None
            object.__setattr__(self, "model_config", dict(self.model_config))
        if self.kind not in KINDS:
            raise ConfigError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if not isinstance(self.instance_type, str) or not _INSTANCE_RE.match(self.instance_type):
            raise ConfigError(f"instance_type must be a SageMaker instance type like ml.m5.large, got {self.instance_type!r}")
        _check_int("instance_count", self.instance_count, 1, 100)
        if not isinstance(self.variant_name, str) or not re.match(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$", self.variant_name):
            raise ConfigError(f"variant_name must be alphanumeric with hyphens (<= 63), got {self.variant_name!r}")
        if self.bucket is not None and not re.match(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", str(self.bucket)):
            raise ConfigError(f"bucket must be a valid S3 bucket name, got {self.bucket!r}")
        if self.role_arn is not None and (
            not isinstance(self.role_arn, str) or not _ARN_RE.match(self.role_arn) or ":role/" not in self.role_arn
        ):
            raise ConfigError(f"role_arn must be an IAM role ARN (arn:aws:iam::<account>:role/<name>), got {self.role_arn!r}")
        for attr in ("environment", "tags"):
            mapping = getattr(self, attr)
            if not isinstance(mapping, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
            ):
                raise ConfigError(f"{attr} must map strings to strings, got {mapping!r}")
            object.__setattr__(self, attr, dict(mapping))
        if self.startup_timeout_s is not None:
            _check_int("startup_timeout_s", self.startup_timeout_s, 60, 3600)
        for section, cls in _SECTIONS.items():
            if not isinstance(getattr(self, section), cls):
                raise ConfigError(f"{section} must be a {cls.__name__}")
        if self.kind == "async" and self.autoscaling.enabled and self.instance_count > self.autoscaling.max_capacity:
            raise ConfigError(
                f"instance_count ({self.instance_count}) must be <= autoscaling.max_capacity "
                f"({self.autoscaling.max_capacity})"
            )

    # -- loading ----------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "DeploymentSpec":
        """Build from nested sections (``autoscaling: {...}``) and/or flat section keys."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"a deployment spec must be a mapping, got {type(data).__name__}")
        top = {f.name for f in fields(cls)} - set(_SECTIONS)
        section_fields = {s: {f.name for f in fields(c)} for s, c in _SECTIONS.items()}
        flat_owner: dict[str, str] = {}
        for section, names in section_fields.items():
            for name in names:
                flat_owner.setdefault(name, section)
                flat_owner[f"{section}_{name}"] = section
        kwargs: dict[str, Any] = {}
        sections: dict[str, dict[str, Any]] = {s: {} for s in _SECTIONS}
        for key, value in data.items():
            if not isinstance(key, str):
                raise ConfigError(f"deployment spec keys must be strings, got {key!r}")
            section = _SECTION_ALIASES.get(key, key)
            if section in _SECTIONS:
                if value is None:
                    continue
                if not isinstance(value, Mapping):
                    raise ConfigError(f"{section} must be a mapping of settings, got {value!r}")
                for sub, subval in value.items():
                    if sub not in section_fields[section]:
                        raise ConfigError(_unknown(f"{section}.{sub}", sub, section_fields[section]))
                    sections[section][sub] = subval
            elif key in top:
                kwargs[key] = value
            elif key in flat_owner:
                section = flat_owner[key]
                sub = key[len(section) + 1:] if key.startswith(section + "_") and key[len(section) + 1:] in section_fields[section] else key
                sections[section][sub] = value
            else:
                raise ConfigError(_unknown(key, key, top | set(flat_owner) | set(_SECTIONS)))
        if "name" not in kwargs:
            raise ConfigError("name is required (the prefix of every resource name)")
        for section, values in sections.items():
            cls_ = _SECTIONS[section]
            if "include_inference_response_in" in values and isinstance(values["include_inference_response_in"], list):
                values["include_inference_response_in"] = tuple(values["include_inference_response_in"])
            try:
                kwargs[section] = cls_(**values)
            except TypeError as exc:  # pragma: no cover - unknown keys are caught above
                raise ConfigError(f"{section}: {exc}") from exc
        return cls(**kwargs)

    @classmethod
    def from_params(cls, params: Mapping[str, Any], *, ignore: tuple[str, ...] = ()) -> "DeploymentSpec":
        """From a notebook's parameters; keys listed in ``ignore`` (e.g. ``mode``) are dropped.

        ``None`` values mean "not set" (papermill parameters default to None), so defaults apply.
        """
        return cls.from_dict({k: v for k, v in params.items() if k not in ignore and v is not None})

    @classmethod
    def from_file(cls, path: str | Path) -> "DeploymentSpec":
        """Load a ``.yaml``/``.yml``/``.json`` spec; a relative ``model_config`` path is resolved
        against the spec file's directory."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read deployment spec {path}: {exc}") from exc
        data = _parse_text(text, path)
        if isinstance(data, dict) and isinstance(data.get("model_config"), str):
            cfg = Path(data["model_config"]).expanduser()
            if not cfg.is_absolute():
                data["model_config"] = str((path.parent / cfg).resolve())
        try:
            return cls.from_dict(data)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc.message}") from None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe nested form; ``DeploymentSpec.from_dict(spec.to_dict()) == spec``."""
        out = asdict(self)
        out["async_inference"]["include_inference_response_in"] = list(self.async_inference.include_inference_response_in)
        if isinstance(self.model_config, Mapping):
            out["model_config"] = dict(self.model_config)
        return out

    def replace(self, **changes: Any) -> "DeploymentSpec":
        return replace(self, **changes)


def load_model_config(value: Mapping[str, Any] | str) -> dict[str, Any]:
    """A ``model_config`` value (mapping or JSON/YAML path) as a plain dict."""
    if isinstance(value, Mapping):
        return dict(value)
    path = Path(value).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"model_config: cannot read {path}: {exc}") from exc
    data = _parse_text(text, path)
    if not isinstance(data, dict):
        raise ConfigError(f"model_config: {path} must hold a mapping of detector settings")
    return data


def _parse_text(text: str, path: Path) -> Any:
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: invalid JSON: {exc}") from exc
    import yaml  # JSON is YAML too; only loaded where a file is read

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc


def _unknown(label: str, key: str, known: set[str]) -> str:
    close = difflib.get_close_matches(key, sorted(known), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown deployment setting {label!r}{hint}"
