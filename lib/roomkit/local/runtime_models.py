"""The local SageMaker Async Inference runtime: the queue, its jobs and the bounded worker pool.

Behaviour only; no HTTP protocol here (that is :mod:`roomkit.local.runtime_responses`, in the
shape of moto's ``models.py``/``responses.py`` split). For every accepted ``InvokeEndpointAsync``
call the runtime:

1. reads the endpoint, its endpoint config and its model from the SageMaker control plane
   (moto's: DescribeEndpoint → DescribeEndpointConfig → DescribeModel, because moto's
   DescribeEndpoint omits ``AsyncInferenceConfig``);
2. answers at once with the inference id, output and failure locations, and queues a job;
3. runs at most ``MaxConcurrentInvocationsPerInstance × instance count`` jobs of that endpoint at
   a time: fetch the input object from S3, POST it to the serving process's ``/invocations``
   with the request's content type, and write either ``<S3OutputPath>/<id>.out`` or
   ``<S3FailurePath>/<id>-error.out``;
4. publishes the success or error notification to the endpoint's SNS topics in SageMaker's
   ``InferenceResult`` message shape.

Every job ends in exactly one terminal outcome (one object, at most one notification): the
outcome is claimed under a lock before anything is written, so a job failed by shutdown or by
its TTL can never also be written as a success. A claimed outcome always ends the job: an output
that cannot be written (the bucket is gone) turns into a failure; a failure object that cannot be
written still gets its error notification, with both reasons; an unexpected error in the runtime
fails the job rather than leaving it unfinished.
"""
from __future__ import annotations

import base64
import collections
import contextlib
import enum
import hashlib
import itertools
import json
import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping
from urllib.parse import unquote, urlparse

import urllib3
from botocore.exceptions import ClientError

from roomkit.local.server_process import ServerStartError, ServingProcess

log = logging.getLogger(__name__)

# Limits from the botocore sagemaker-runtime model and the SageMaker documentation.
DEFAULT_REQUEST_TTL_S = 21600
DEFAULT_INVOCATION_TIMEOUT_S = 900
REALTIME_TIMEOUT_S = 60
REALTIME_MAX_BODY = 6 * 1024 * 1024
INLINE_BODY_LIMIT = 128_000
ENDPOINT_CACHE_S = 1.0  # how long a found endpoint is remembered (see ControlPlane.resolve)
NOTIFICATION_EMBED_LIMIT = 128 * 1024
MAX_LOCAL_WORKERS = 64  # threads per endpoint queue, whatever MaxConcurrentInvocations says
#: Invocations per kept-alive connection to the container, about (see ``_call_server``).
RECONNECT_EVERY = 16
DEFAULT_CONTENT_TYPE = "application/octet-stream"


class ApiError(Exception):
    """An error the sagemaker-runtime API answers with (rendered by the protocol layer)."""

    def __init__(self, code: str, message: str, status: int = 400, **fields: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.fields = fields


def validation_error(message: str) -> ApiError:
    return ApiError("ValidationError", message, 400)


# -- control plane ---------------------------------------------------------------------------
@dataclass(frozen=True)
class EndpointSpec:
    """What the runtime needs to know about one endpoint, read from the control plane."""

    name: str
    config_name: str
    variant_name: str
    model_name: str
    model_data_url: str | None
    model_env: Mapping[str, str]
    instance_count: int
    is_async: bool
    output_path: str | None = None
    failure_path: str | None = None
    success_topic: str | None = None
    error_topic: str | None = None
    include_response_in: frozenset[str] = frozenset()
    max_concurrency_per_instance: int | None = None
    #: The endpoint's deployment state (ARN, creation and update times, config name): SageMaker
    #: reads the model artifact once per state, when the endpoint is created or updated.
    revision: str = ""

    def concurrency(self, default_per_instance: int) -> int:
        per_instance = self.max_concurrency_per_instance or default_per_instance
        return max(1, min(MAX_LOCAL_WORKERS, per_instance * max(1, self.instance_count)))


class ControlPlane:
    """Reads endpoints from the SageMaker control plane (moto's, in local mode)."""

    def __init__(self, sagemaker: Any, account_id: str) -> None:
        self.sagemaker = sagemaker
        self.account_id = account_id
        # Endpoint configs and models are immutable in SageMaker; an endpoint changes config
        # only through Create/UpdateEndpoint, which changes its timestamps. So the spec is cached
        # per (endpoint ARN, timestamps, config name) and DescribeEndpoint alone runs per call.
        self._cache: dict[tuple, EndpointSpec] = {}
        self._recent: dict[str, tuple[float, EndpointSpec]] = {}
        self._cache_lock = threading.Lock()

    def resolve(self, endpoint_name: str) -> EndpointSpec:
        """The endpoint's spec; found endpoints are remembered ``ENDPOINT_CACHE_S`` (1 s), which
        is within AWS's own consistency (DeleteEndpoint takes minutes to take effect there) and
        spares a DescribeEndpoint per request in a burst. Unknown endpoints are never cached."""
        now = time.monotonic()
        with self._cache_lock:
            recent = self._recent.get(endpoint_name)
        if recent is not None and now - recent[0] < ENDPOINT_CACHE_S:
            return recent[1]
        spec = self._resolve(endpoint_name)
        with self._cache_lock:
            self._recent[endpoint_name] = (now, spec)
        return spec

    def _resolve(self, endpoint_name: str) -> EndpointSpec:
        try:
            endpoint = self.sagemaker.describe_endpoint(EndpointName=endpoint_name)
        except ClientError as exc:
            if _is_not_found(exc):
                raise validation_error(
                    f"Endpoint {endpoint_name} of account {self.account_id} not found."
                ) from None
            raise
        status = endpoint.get("EndpointStatus", "InService")
        if status not in ("InService", "Updating", "SystemUpdating"):
            raise validation_error(
                f"Endpoint {endpoint_name} of account {self.account_id} is in status {status}; "
                "it must be InService to be invoked."
            )
        key = (endpoint.get("EndpointArn"), str(endpoint.get("CreationTime")),
               str(endpoint.get("LastModifiedTime")), endpoint["EndpointConfigName"],
               json.dumps(endpoint.get("ProductionVariants") or [], sort_keys=True, default=str))
        with self._cache_lock:
            cached = self._cache.get(key)
        if cached is not None:
            return cached
        spec = self._describe(endpoint_name, endpoint)
        with self._cache_lock:
            if len(self._cache) > 1000:
                self._cache.clear()
            self._cache[key] = spec
        return spec

    def _describe(self, endpoint_name: str, endpoint: Mapping[str, Any]) -> EndpointSpec:
        config = self.sagemaker.describe_endpoint_config(
            EndpointConfigName=endpoint["EndpointConfigName"]
        )
        variant = config["ProductionVariants"][0]
        model = self.sagemaker.describe_model(ModelName=variant["ModelName"])
        container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
        instances = variant.get("InitialInstanceCount") or 1
        for live in endpoint.get("ProductionVariants") or []:
            if live.get("VariantName") == variant["VariantName"] and live.get("CurrentInstanceCount"):
                instances = live["CurrentInstanceCount"]
        async_cfg = config.get("AsyncInferenceConfig")
        common = dict(
            revision="|".join(str(endpoint.get(k)) for k in
                              ("EndpointArn", "CreationTime", "LastModifiedTime", "EndpointConfigName")),
            name=endpoint_name,
            config_name=config["EndpointConfigName"],
            variant_name=variant["VariantName"],
            model_name=variant["ModelName"],
            model_data_url=container.get("ModelDataUrl") or None,
            model_env=dict(container.get("Environment") or {}),
            instance_count=int(instances),
        )
        if not async_cfg:
            return EndpointSpec(is_async=False, **common)
        out = async_cfg.get("OutputConfig") or {}
        notes = out.get("NotificationConfig") or {}
        client = async_cfg.get("ClientConfig") or {}
        return EndpointSpec(
            is_async=True,
            output_path=out.get("S3OutputPath"),
            failure_path=out.get("S3FailurePath"),
            success_topic=notes.get("SuccessTopic") or None,
            error_topic=notes.get("ErrorTopic") or None,
            include_response_in=frozenset(notes.get("IncludeInferenceResponseIn") or ()),
            max_concurrency_per_instance=client.get("MaxConcurrentInvocationsPerInstance"),
            **common,
        )


def _is_not_found(exc: ClientError) -> bool:
    err = exc.response.get("Error", {})
    return err.get("Code") in ("ValidationException", "ResourceNotFound") and (
        "not find" in err.get("Message", "") or "not found" in err.get("Message", "").lower()
    )


# -- S3 locations ----------------------------------------------------------------------------
_S3_HOST = re.compile(r"^(?:(?P<vbucket>.+)\.)?s3(?:[.-](?:[a-z0-9-]+))?(?:\.dualstack)?\.amazonaws\.com(?:\.cn)?$")


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` or an S3 ``https://`` URL (virtual-hosted or path style) → (bucket, key)."""
    parsed = urlparse(uri)
    if parsed.scheme == "s3":
        bucket, key = parsed.netloc, parsed.path.lstrip("/")
    elif parsed.scheme == "https":
        match = _S3_HOST.match(parsed.netloc)
        if not match:
            raise ValueError(f"not an S3 URL: {uri}")
        path = unquote(parsed.path.lstrip("/"))
        if match.group("vbucket"):
            bucket, key = match.group("vbucket"), path
        else:
            bucket, _, key = path.partition("/")
    else:
        raise ValueError(f"not an S3 URI: {uri}")
    if not bucket or not key:
        raise ValueError(f"S3 URI needs a bucket and a key: {uri}")
    return bucket, key


def join_s3(prefix: str, *parts: str) -> str:
    out = prefix.rstrip("/")
    for part in parts:
        if part:
            out += "/" + part.strip("/")
    return out


# -- jobs ------------------------------------------------------------------------------------
class JobState(enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    FINISHING = "finishing"  # the outcome is claimed; its object is being written
    DONE = "done"


@dataclass
class AsyncInvocation:
    """One accepted InvokeEndpointAsync request and where it stands."""

    inference_id: str
    endpoint: EndpointSpec
    input_location: str | None
    output_location: str
    failure_location: str
    body: bytes | None = field(default=None, repr=False)
    content_type: str | None = None
    accept: str | None = None
    custom_attributes: str | None = None
    request_ttl_s: int = DEFAULT_REQUEST_TTL_S
    invocation_timeout_s: int = DEFAULT_INVOCATION_TIMEOUT_S
    received_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    enqueued: float = field(default_factory=time.monotonic)
    state: JobState = JobState.QUEUED
    outcome: str | None = None  # "Completed" | "Failed"
    failure_reason: str | None = None
    attempts: int = 0
    finisher: int | None = field(default=None, repr=False)  # thread that claimed the outcome
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def claim(self, from_states: tuple[JobState, ...]) -> bool:
        """Move to FINISHING if the job is in one of ``from_states``; only one caller wins."""
        with self._lock:
            if self.state not in from_states:
                return False
            self.state = JobState.FINISHING
            self.finisher = threading.get_ident()
            return True

    def claimed_here(self) -> bool:
        """This thread claimed the outcome and has not finished writing it."""
        with self._lock:
            return self.state is JobState.FINISHING and self.finisher == threading.get_ident()


@dataclass(frozen=True)
class ModelReply:
    status: int
    body: bytes
    content_type: str
    custom_attributes: str | None = None


class InvocationFailed(Exception):
    """The container gave no answer (timeout, crash). ``message`` is what SageMaker quotes:
    after ``ServerError:`` in an async failureReason, inside a real-time ModelError."""

    def __init__(self, message: str, *, body: bytes) -> None:
        super().__init__(message)
        self.message = message
        self.reason = f"ServerError: {message}"
        self.body = body
        self.content_type = "application/json"
        self.status = 0


# -- model servers ---------------------------------------------------------------------------
class ModelServers:
    """One serving process per distinct model artifact, started lazily on first use.

    A model without ``ModelDataUrl`` uses the default process (started eagerly with the
    default config). A model with one has its ``model.tar.gz`` downloaded from S3 and extracted
    into its own directory (SageMaker's ``/opt/ml/model``), and gets its own process with the
    model's ``Environment``.
    """

    def __init__(
        self,
        s3: Any,
        work_dir: Path,
        *,
        default: ServingProcess | None,
        factory: Callable[[Path, Mapping[str, str], str], ServingProcess],
    ) -> None:
        self.s3 = s3
        self.work_dir = Path(work_dir)
        self.default = default
        self.factory = factory
        self._servers: dict[str, ServingProcess] = {}
        self._keys: dict[str, str] = {}  # EndpointSpec.revision → server key
        self._locks: dict[str, threading.Lock] = collections.defaultdict(threading.Lock)
        self._lock = threading.Lock()

    def all(self) -> list[ServingProcess]:
        with self._lock:
            servers = list(self._servers.values())
        return ([self.default] if self.default else []) + servers

    def for_endpoint(self, spec: EndpointSpec) -> ServingProcess:
        if not spec.model_data_url and not spec.model_env:
            if self.default is None:
                raise ServerStartError("no default serving process is running")
            return self.default
        key = self._key(spec)
        with self._lock:
            server = self._servers.get(key)
            lock = self._locks[key]
        if server is not None:
            return server
        with lock:  # one start per model, however many workers ask at once
            with self._lock:
                server = self._servers.get(key)
            if server is not None:
                return server
            model_dir = self.work_dir / "models" / key
            if spec.model_data_url:
                self._fetch_artifact(spec.model_data_url, model_dir)
            else:
                model_dir.mkdir(parents=True, exist_ok=True)
            server = self.factory(model_dir, spec.model_env, f"{spec.model_name}-{key[:8]}")
            server.start()
            with self._lock:
                self._servers[key] = server
            return server

    def stop(self) -> None:
        for server in self.all():
            server.stop()

    def _key(self, spec: EndpointSpec) -> str:
        """The serving process a spec runs on: one per artifact (URL and ETag) and environment.
        The ETag is looked up once per endpoint revision, as SageMaker reads the artifact once
        per deployment, not per request (it was a HeadObject per job)."""
        if spec.revision:
            with self._lock:
                known = self._keys.get(spec.revision)
            if known is not None:
                return known
        key = self._artifact_key(spec)
        if spec.revision:
            with self._lock:
                if len(self._keys) > 1000:
                    self._keys.clear()
                self._keys[spec.revision] = key
        return key

    def _artifact_key(self, spec: EndpointSpec) -> str:
        etag = ""
        if spec.model_data_url:
            try:
                bucket, key = parse_s3_uri(spec.model_data_url)
                etag = self.s3.head_object(Bucket=bucket, Key=key).get("ETag", "")
            except (ValueError, ClientError):
                etag = "missing"
        ident = json.dumps([spec.model_data_url, etag, sorted(spec.model_env.items())])
        return hashlib.sha256(ident.encode()).hexdigest()[:16]

    def _fetch_artifact(self, url: str, model_dir: Path) -> None:
        """Download ``model.tar.gz`` and extract it the way SageMaker fills /opt/ml/model."""
        from roomkit.serving.artifacts import ArtifactError, extract_model

        try:
            bucket, key = parse_s3_uri(url)
            obj = self.s3.get_object(Bucket=bucket, Key=key)
        except (ValueError, ClientError) as exc:
            raise ServerStartError(f"could not download the model artifact {url}: {exc}") from None
        archive = model_dir.with_suffix(".tar.gz")
        archive.parent.mkdir(parents=True, exist_ok=True)
        with open(archive, "wb") as out:
            for chunk in iter(lambda: obj["Body"].read(1 << 20), b""):
                out.write(chunk)
        try:
            extract_model(archive, model_dir)
        except ArtifactError as exc:
            raise ServerStartError(f"the model artifact {url} is not usable: {exc.message}") from None
        finally:
            archive.unlink(missing_ok=True)


# -- the runtime -----------------------------------------------------------------------------
class EndpointQueue:
    """FIFO of one endpoint's jobs.

    ``limit`` bounds the requests inside the container at once (MaxConcurrentInvocationsPerInstance
    × instances): a worker takes a *slot* for the container call only. Up to twice as many worker
    threads take jobs off the FIFO, so the next inputs are fetched from S3 while the container is
    busy and results are written and announced after the slot is free; the container never idles
    on S3 or SNS round trips. A job a worker holds before its slot is still waiting (its TTL is
    checked when it gets the slot; shutdown fails it as queued).
    """

    def __init__(self, name: str, limit: int, run: Callable[[AsyncInvocation], None]) -> None:
        self.name = name
        self._run = run
        self._jobs: collections.deque[AsyncInvocation] = collections.deque()
        self._cond = threading.Condition()
        self._limit = limit
        self._workers = 0
        self._invoking = 0
        self._running: dict[str, AsyncInvocation] = {}
        self._closed = False
        self.instances = 1
        self.completed = 0
        self.failed = 0

    @property
    def depth(self) -> int:
        """Queued plus taken by a worker, until finished: what ApproximateBacklogSize counts."""
        with self._cond:
            return len(self._jobs) + len(self._running)

    @property
    def in_flight(self) -> int:
        """Jobs taken off the FIFO and not finished (fetching, in the container, or writing)."""
        with self._cond:
            return len(self._running)

    @property
    def invoking(self) -> int:
        """Requests inside the container right now (never more than the limit)."""
        with self._cond:
            return self._invoking

    @property
    def queued(self) -> int:
        with self._cond:
            return len(self._jobs)

    def _max_workers(self) -> int:
        return 2 * self._limit

    def set_limit(self, limit: int, instances: int | None = None) -> None:
        with self._cond:
            self._limit = limit
            if instances is not None:
                self.instances = instances
            self._cond.notify_all()

    def oldest_enqueued(self) -> float | None:
        """Queue-clock time the oldest waiting or running request was accepted."""
        with self._cond:
            times = [j.enqueued for j in self._jobs] + [j.enqueued for j in self._running.values()]
        return min(times) if times else None

    def put(self, job: AsyncInvocation) -> None:
        with self._cond:
            if self._closed:
                raise ApiError("ServiceUnavailable", "The local runtime is shutting down.", 503)
            self._jobs.append(job)
            if self._workers < self._max_workers() and self._workers < len(self._jobs) + len(self._running):
                self._workers += 1
                threading.Thread(target=self._work, name=f"roomkit-async-{self.name}", daemon=True).start()
            self._cond.notify_all()

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the ``limit`` container slots."""
        with self._cond:
            while self._invoking >= self._limit:
                self._cond.wait()
            self._invoking += 1
        try:
            yield
        finally:
            with self._cond:
                self._invoking -= 1
                self._cond.notify_all()

    def take_queued(self) -> list[AsyncInvocation]:
        with self._cond:
            jobs = list(self._jobs)
            self._jobs.clear()
            return jobs

    def running(self) -> list[AsyncInvocation]:
        with self._cond:
            return list(self._running.values())

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._closed and self._workers <= self._max_workers():
                    if not self._cond.wait(timeout=30.0) and not self._jobs:
                        break  # idle: let the thread go, put() starts another when needed
                if not self._jobs or self._workers > self._max_workers():
                    self._workers -= 1
                    return
                job = self._jobs.popleft()
                self._running[job.inference_id] = job
            try:
                self._run(job)
            except Exception:  # noqa: BLE001 (a worker must survive any job)
                log.exception("async job %s crashed the worker", job.inference_id)
            finally:
                with self._cond:
                    self._running.pop(job.inference_id, None)
                    if job.outcome == "Completed":
                        self.completed += 1
                    elif job.outcome == "Failed":
                        self.failed += 1
                    self._cond.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._jobs or self._running:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(timeout=min(left, 0.5))
        return True


class AsyncRuntime:
    """SageMaker's async queue in front of the local serving processes.

    Parameters
    ----------
    control, s3, sns:
        The control-plane reader and boto3 S3/SNS clients (moto's, in local mode).
    servers:
        The serving processes, one per model.
    region, account_id:
        Reported in notifications and error messages.
    default_concurrency_per_instance:
        Used when an endpoint config sets no ``MaxConcurrentInvocationsPerInstance``.
    retry_on_crash:
        A job whose connection to the serving process breaks before any response (the server
        crashed or was killed) is sent once more after the server is back, within the job's
        invocation timeout; a second break fails it. A job whose container was replaced because
        it stopped answering ``/ping`` is failed at once, never resent.
    """

    def __init__(
        self,
        control: ControlPlane,
        s3: Any,
        sns: Any,
        servers: ModelServers,
        *,
        region: str,
        default_concurrency_per_instance: int = 2,
        retry_on_crash: bool = True,
    ) -> None:
        self.control = control
        self.s3 = s3
        self.sns = sns
        self.servers = servers
        self.region = region
        self.default_concurrency = default_concurrency_per_instance
        self.retry_on_crash = retry_on_crash
        self._queues: dict[str, EndpointQueue] = {}
        self._lock = threading.Lock()
        self._accepting = True
        self._http = urllib3.PoolManager(maxsize=MAX_LOCAL_WORKERS, block=False, retries=False)
        self._invocations = itertools.count(1)
        # Time source of the queue (RequestTTLSeconds); replaceable so a test can age requests.
        self.clock: Callable[[], float] = time.monotonic
        self._stop_report: dict[str, list[str]] | None = None
        self.notifications_sent = 0
        self.notification_errors = 0

    # -- API operations ------------------------------------------------------------------------
    def invoke_async(
        self,
        endpoint_name: str,
        *,
        input_location: str | None = None,
        body: bytes | None = None,
        content_type: str | None = None,
        accept: str | None = None,
        custom_attributes: str | None = None,
        inference_id: str | None = None,
        request_ttl_s: int | None = None,
        invocation_timeout_s: int | None = None,
        output_path_extension: str | None = None,
        filename: str | None = None,
    ) -> AsyncInvocation:
        """Accept one request: validate, queue, return the job (id and locations set).

        The input is either ``input_location`` (an S3 object, read when the job runs) or an
        inline ``body`` of at most 128,000 bytes (the newer InvokeEndpointAsync ``Body``).
        """
        if not self._accepting:
            raise ApiError("ServiceUnavailable", "The local runtime is shutting down.", 503)
        spec = self.control.resolve(endpoint_name)
        if not spec.is_async:
            raise validation_error(
                f"Endpoint {endpoint_name} of account {self.control.account_id} is not configured "
                "for asynchronous inference (its endpoint config has no AsyncInferenceConfig); "
                "use InvokeEndpoint."
            )
        if not spec.output_path:
            raise validation_error(f"Endpoint {endpoint_name} has no S3OutputPath configured.")
        if (input_location is None) == (body is None):
            raise validation_error("Exactly one of InputLocation and Body must be provided.")
        if body is not None and len(body) > INLINE_BODY_LIMIT:
            raise validation_error(
                f"Body of {len(body)} bytes exceeds the inline limit of {INLINE_BODY_LIMIT} bytes; "
                "upload the input to S3 and pass InputLocation."
            )
        if input_location is not None:
            try:
                bucket, key = parse_s3_uri(input_location)
            except ValueError as exc:
                raise validation_error(f"Invalid InputLocation {input_location!r}: {exc}.") from None
            try:
                self.s3.head_object(Bucket=bucket, Key=key)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                raise validation_error(
                    f"Could not access the input location {input_location}: "
                    + ("the object does not exist." if code in ("404", "NoSuchKey", "NoSuchBucket", "NotFound")
                       else f"{code}.")
                ) from None
        inference_id = inference_id or str(uuid.uuid4())
        out_name = filename or f"{inference_id}.out"
        output_location = join_s3(spec.output_path, output_path_extension or "", out_name)
        failure_root = spec.failure_path or spec.output_path
        failure_location = join_s3(failure_root, output_path_extension or "", f"{inference_id}-error.out")
        job = AsyncInvocation(
            inference_id=inference_id,
            endpoint=spec,
            input_location=input_location,
            body=body,
            output_location=output_location,
            failure_location=failure_location,
            content_type=content_type,
            accept=accept,
            custom_attributes=custom_attributes,
            request_ttl_s=request_ttl_s or DEFAULT_REQUEST_TTL_S,
            invocation_timeout_s=invocation_timeout_s or DEFAULT_INVOCATION_TIMEOUT_S,
            enqueued=self.clock(),
        )
        self._queue_for(spec).put(job)
        return job

    def invoke(
        self,
        endpoint_name: str,
        body: bytes,
        *,
        content_type: str | None = None,
        accept: str | None = None,
        custom_attributes: str | None = None,
    ) -> tuple[ModelReply, EndpointSpec]:
        """InvokeEndpoint (real-time/serverless): straight to the server, 60 s limit."""
        if not self._accepting:
            raise ApiError("ServiceUnavailable", "The local runtime is shutting down.", 503)
        spec = self.control.resolve(endpoint_name)
        if spec.is_async:
            raise validation_error(
                f"Endpoint {endpoint_name} of account {self.control.account_id} is an asynchronous "
                "inference endpoint (its endpoint config has AsyncInferenceConfig); "
                "use InvokeEndpointAsync."
            )
        if len(body) > REALTIME_MAX_BODY:
            raise validation_error(
                f"Request payload of {len(body)} bytes exceeds the InvokeEndpoint limit of "
                f"{REALTIME_MAX_BODY} bytes; use an asynchronous endpoint for larger inputs."
            )
        log_arn = self._log_stream_arn(endpoint_name)
        try:
            server = self.servers.for_endpoint(spec)
            reply = self._call_server(
                server, body, content_type or DEFAULT_CONTENT_TYPE, accept, custom_attributes,
                deadline=time.monotonic() + REALTIME_TIMEOUT_S,
            )
        except ServerStartError as exc:
            raise ApiError("ModelNotReadyException", f"The model container is not ready: {exc.message}", 429) from None
        except InvocationFailed as exc:
            raise ApiError(
                "ModelError",
                f'Received server error ({exc.status}) from primary with message "{exc.message}". '
                f"See {log_arn} for more information.",
                424, OriginalStatusCode=exc.status, OriginalMessage=exc.message, LogStreamArn=log_arn,
            ) from None
        if reply.status >= 400:
            kind = "client" if reply.status < 500 else "server"
            original = reply.body.decode("utf-8", "replace")
            raise ApiError(
                "ModelError",
                f'Received {kind} error ({reply.status}) from primary with message "{original}". '
                f"See {log_arn} for more information.",
                424, OriginalStatusCode=reply.status, OriginalMessage=original, LogStreamArn=log_arn,
            )
        return reply, spec

    # -- introspection -------------------------------------------------------------------------
    def queue_depth(self, endpoint_name: str | None = None) -> int:
        """Jobs queued or in flight (the local ApproximateBacklogSize); all endpoints if None."""
        with self._lock:
            queues = list(self._queues.values())
        return sum(q.depth for q in queues if endpoint_name is None or q.name == endpoint_name)

    def stats(self) -> dict[str, dict[str, int]]:
        with self._lock:
            queues = dict(self._queues)
        return {
            name: {"queued": q.queued, "in_flight": q.in_flight, "invoking": q.invoking,
                   "backlog": q.depth, "completed": q.completed, "failed": q.failed}
            for name, q in queues.items()
        }

    def backlog_metrics(self) -> list[dict[str, Any]]:
        """CloudWatch ``MetricData`` for the async backlog metrics SageMaker publishes in the
        ``AWS/SageMaker`` namespace (dimension ``EndpointName``), one set per endpoint seen."""
        with self._lock:
            queues = list(self._queues.values())
        now = datetime.now(timezone.utc)
        data: list[dict[str, Any]] = []
        for q in queues:
            depth = q.depth
            oldest = q.oldest_enqueued()
            age = max(0.0, self.clock() - oldest) if oldest is not None else 0.0
            dims = [{"Name": "EndpointName", "Value": q.name}]
            for name, value, unit in (
                ("ApproximateBacklogSize", depth, "Count"),
                ("ApproximateBacklogSizePerInstance", depth / max(1, q.instances), "Count"),
                ("HasBacklogWithoutCapacity", 1 if depth and q.instances == 0 else 0, "Count"),
                ("ApproximateAgeOfOldestRequest", age, "Seconds"),
            ):
                data.append({"MetricName": name, "Dimensions": dims, "Timestamp": now,
                             "Value": float(value), "Unit": unit})
        return data

    # -- shutdown ------------------------------------------------------------------------------
    def stop(self, *, drain: bool = False, grace_s: float = 30.0) -> dict[str, list[str]]:
        """Stop accepting; then either drain (process everything queued, up to ``grace_s``) or
        fail the queued jobs at once. In-flight jobs get ``grace_s`` to finish; any still running
        after that is failed. Every job ends with exactly one object and notification; outputs
        are single PutObject calls, so none is ever half-written.

        Returns the inference ids failed because of the shutdown, by stage.
        """
        if self._stop_report is not None:
            return self._stop_report
        self._accepting = False
        with self._lock:
            queues = list(self._queues.values())
        deadline = time.monotonic() + grace_s
        if drain:
            for queue in queues:
                queue.wait_idle(max(0.0, deadline - time.monotonic()))
        report: dict[str, list[str]] = {"queued": [], "in_flight": []}
        for queue in queues:
            queue.close()
            # waiting in the FIFO, or taken by a worker that has no container slot yet
            waiting = queue.take_queued() + [j for j in queue.running() if j.state is JobState.QUEUED]
            for job in waiting:
                if self._fail(job, "ServiceUnavailable: the local runtime was shut down before this "
                                   "request was processed.", from_states=(JobState.QUEUED,)):
                    report["queued"].append(job.inference_id)
        for queue in queues:
            queue.wait_idle(max(0.0, deadline - time.monotonic()))
            for job in queue.running():
                if self._fail(job, "ServiceUnavailable: the local runtime was shut down while this "
                                   "request was being processed.",
                              from_states=(JobState.QUEUED, JobState.RUNNING)):
                    report["in_flight"].append(job.inference_id)
        self._http.clear()
        self._stop_report = report
        return report

    # -- the job -------------------------------------------------------------------------------
    def _queue_for(self, spec: EndpointSpec) -> EndpointQueue:
        limit = spec.concurrency(self.default_concurrency)
        with self._lock:
            queue = self._queues.get(spec.name)
            if queue is None:
                queue = self._queues[spec.name] = EndpointQueue(spec.name, limit, self._run)
        queue.set_limit(limit, spec.instance_count)
        return queue

    def _run(self, job: AsyncInvocation) -> None:
        """Run one job; whatever goes wrong in the runtime itself, the job still ends once."""
        try:
            self._run_job(job)
        except Exception as exc:  # noqa: BLE001 (an accepted job must never be left unfinished)
            log.exception("async job %s: the runtime failed while processing it", job.inference_id)
            reason = (f"InternalFailure: the local runtime failed while processing this request "
                      f"({type(exc).__name__}: {exc}).")
            if job.claimed_here():
                self._finish_failed(job, reason, _error_body("internal_failure", reason), "application/json")
            else:
                self._fail(job, reason)

    def _run_job(self, job: AsyncInvocation) -> None:
        """Fetch the input (before holding a container slot), call the container (in a slot),
        then write the outcome and notify (after the slot is free)."""
        queue = self._queues[job.endpoint.name]
        if job.state is not JobState.QUEUED:
            return
        fetch_error = None
        try:
            if job.input_location is None:
                body, job.body = job.body or b"", None
            else:
                bucket, key = parse_s3_uri(job.input_location)
                body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            body = b""
            code = exc.response.get("Error", {}).get("Code", "error")
            fetch_error = f"ClientError: Failed to download the input from {job.input_location}: {code}."

        failure: tuple[str, bytes | None, str] | None = None
        reply: ModelReply | None = None
        with queue.slot():
            with job._lock:
                if job.state is not JobState.QUEUED:
                    return  # failed while waiting (shutdown)
                waited = self.clock() - job.enqueued
                expired = waited > job.request_ttl_s
                if not expired and fetch_error is None:
                    job.state = JobState.RUNNING
            if expired:
                failure = (f"ClientError: Request expired: it waited {waited:.0f} s in the queue, "
                           f"longer than its RequestTTLSeconds ({job.request_ttl_s} s).", None, "")
            elif fetch_error is not None:
                failure = (fetch_error, None, "")
            else:
                deadline = time.monotonic() + job.invocation_timeout_s
                try:
                    server = self.servers.for_endpoint(job.endpoint)
                    reply = self._call_server(server, body, job.content_type or DEFAULT_CONTENT_TYPE,
                                              job.accept, job.custom_attributes, deadline=deadline, job=job)
                except ServerStartError as exc:
                    failure = (f"ServerError: the model container could not start: {exc.message}", None, "")
                except InvocationFailed as exc:
                    failure = (exc.reason, exc.body, exc.content_type)
        if failure is not None:
            reason, err_body, ctype = failure
            self._fail(job, reason, body=err_body, content_type=ctype or "application/json")
            return
        assert reply is not None
        if reply.status >= 400:
            kind = "client" if reply.status < 500 else "server"
            snippet = reply.body[:512].decode("utf-8", "replace")
            self._fail(
                job,
                f"{kind.capitalize()}Error: Received {kind} error ({reply.status}) from primary with "
                f'message "{snippet}". See the SageMaker Endpoint logs in your account for more information.',
                body=reply.body, content_type=reply.content_type,
            )
            return
        if not job.claim((JobState.RUNNING,)):
            return  # failed meanwhile (shutdown): that outcome stands
        try:
            bucket, key = parse_s3_uri(job.output_location)
            self.s3.put_object(Bucket=bucket, Key=key, Body=reply.body, ContentType=reply.content_type)
        except (ClientError, ValueError, urllib3.exceptions.HTTPError, OSError) as exc:
            reason = f"ClientError: Failed to upload the output to {job.output_location}: {_why(exc)}."
            log.error("async job %s: %s", job.inference_id, reason)
            self._finish_failed(job, reason, _error_body("output_write_failed", reason), "application/json")
            return
        job.outcome = "Completed"
        job.state = JobState.DONE
        self._notify(job, reply.body, reply.content_type)

    def _call_server(
        self,
        server: ServingProcess,
        body: bytes,
        content_type: str,
        accept: str | None,
        custom_attributes: str | None,
        *,
        deadline: float,
        job: AsyncInvocation | None = None,
    ) -> ModelReply:
        timeout_s = max(1, round(deadline - time.monotonic()))
        headers = {"Content-Type": content_type}
        # Every RECONNECT_EVERY-th invocation closes its connection after the answer. A kept-alive
        # connection stays with the worker that accepted it, so two of them on one worker
        # serialize there while its sibling idles (measured: 10,000 plans at 13/s against 24/s
        # when spread), and new connections go to an idle worker (roomkit.serving.worker); a new
        # connection per invocation, though, costs the busy worker its accept deferral each time.
        if next(self._invocations) % RECONNECT_EVERY == 0:
            headers["Connection"] = "close"
        if accept:
            headers["Accept"] = accept
        if custom_attributes:
            headers["X-Amzn-SageMaker-Custom-Attributes"] = custom_attributes
        attempts = 2 if self.retry_on_crash else 1
        broken = ""
        for attempt in range(attempts):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if not server.ready and not server.wait_ready(min(left, server.startup_timeout_s)):
                broken = server.failure or "the serving process is not healthy"
                continue
            left = deadline - time.monotonic()
            if job is not None:
                job.attempts += 1
            incarnation = server.incarnation
            try:
                resp = self._http.request(
                    "POST", server.url + "/invocations", body=body, headers=headers,
                    timeout=urllib3.Timeout(connect=min(5.0, left), read=max(0.001, left)),
                    retries=False,
                )
            except urllib3.exceptions.ReadTimeoutError:
                raise InvocationFailed(
                    "Your invocation timed out while waiting for a response from container primary "
                    f"(limit: {timeout_s} s).",
                    body=_error_body("invocation_timeout",
                                     f"the model did not answer within the invocation timeout ({timeout_s} s)"),
                ) from None
            except (urllib3.exceptions.ProtocolError, urllib3.exceptions.NewConnectionError,
                    urllib3.exceptions.ConnectTimeoutError, urllib3.exceptions.MaxRetryError,
                    ConnectionError) as exc:
                broken = f"{type(exc).__name__}: {exc}"
                hung = server.replaced_reason(incarnation)
                if hung is not None and isinstance(exc, urllib3.exceptions.ProtocolError):
                    # The request was inside a container that hung and was replaced for it: it
                    # is not sent again (it may be what hung the container).
                    raise InvocationFailed(
                        f"The model container primary {hung} and was replaced while processing "
                        "this request; the request was not retried.",
                        body=_error_body("model_container_unhealthy",
                                         f"the serving process {hung} and was replaced"),
                    ) from None
                log.warning("connection to %s broke (%s), attempt %d of %d",
                            server.url, broken, attempt + 1, attempts)
                time.sleep(0.2)  # let the watchdog notice a dead process before waiting on it
                continue
            return ModelReply(
                status=resp.status,
                body=resp.data,
                content_type=resp.headers.get("Content-Type", DEFAULT_CONTENT_TYPE),
                custom_attributes=resp.headers.get("X-Amzn-SageMaker-Custom-Attributes"),
            )
        if not broken:
            raise InvocationFailed(
                "Your invocation timed out while waiting for the model container primary to "
                f"become healthy (limit: {timeout_s} s).",
                body=_error_body("invocation_timeout", "the model container was not healthy before the invocation timeout"),
            )
        raise InvocationFailed(
            f"The model container primary closed the connection without a response "
            f"({broken}); it crashed or was restarted. The request was tried {attempts} time(s).",
            body=_error_body("model_container_crashed", f"the serving process closed the connection: {broken}"),
        )

    def _fail(
        self,
        job: AsyncInvocation,
        reason: str,
        *,
        body: bytes | None = None,
        content_type: str = "application/json",
        from_states: tuple[JobState, ...] = (JobState.QUEUED, JobState.RUNNING),
    ) -> bool:
        if not job.claim(from_states):
            return False
        if body is None:
            body = _error_body("inference_failed", reason)
            content_type = "application/json"
        self._finish_failed(job, reason, body, content_type)
        return True

    def _finish_failed(self, job: AsyncInvocation, reason: str, body: bytes, content_type: str) -> None:
        """End a claimed job as failed: the failure object, then the error notification, which
        goes out even when the object cannot be written (its reason then says so)."""
        try:
            bucket, key = parse_s3_uri(job.failure_location)
            self.s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
        except Exception as exc:  # noqa: BLE001 (the notification must go out whatever broke)
            log.error("could not write failure object %s: %s", job.failure_location, exc)
            reason = (f"{reason} The failure object could not be written to {job.failure_location} "
                      f"either: {_why(exc)}.")
        job.failure_reason = reason
        job.outcome = "Failed"
        job.state = JobState.DONE
        self._notify(job, body, content_type)

    def _notify(self, job: AsyncInvocation, body: bytes, content_type: str) -> None:
        spec = job.endpoint
        ok = job.outcome == "Completed"
        topic = spec.success_topic if ok else spec.error_topic
        if not topic:
            return
        message = notification_message(job, response_content_type=content_type, region=self.region)
        which = "SUCCESS_NOTIFICATION_TOPIC" if ok else "ERROR_NOTIFICATION_TOPIC"
        if which in spec.include_response_in and len(body) <= NOTIFICATION_EMBED_LIMIT:
            message["responseBody"] = embed_body(body, content_type)
        try:
            self.sns.publish(TopicArn=topic, Message=json.dumps(message))
            self.notifications_sent += 1
        except (ClientError, urllib3.exceptions.HTTPError, OSError) as exc:
            self.notification_errors += 1
            log.error("could not publish the %s notification of %s to %s: %s",
                      job.outcome, job.inference_id, topic, exc)

    def _log_stream_arn(self, endpoint_name: str) -> str:
        return (f"arn:aws:logs:{self.region}:{self.control.account_id}:log-group:"
                f"/aws/sagemaker/Endpoints/{endpoint_name}")


def _iso(ts: datetime) -> str:
    return ts.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def _why(exc: Exception) -> str:
    """An S3 error in a few words: its code and message for a ClientError."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code, message = err.get("Code", ""), err.get("Message", "")
        return f"{code} ({message})" if code and message else (code or message or str(exc))
    return f"{type(exc).__name__}: {exc}"


def _error_body(code: str, message: str) -> bytes:
    return json.dumps({"status": "error", "error": {"code": code, "message": message}}).encode()


def notification_message(job: AsyncInvocation, *, response_content_type: str, region: str) -> dict[str, Any]:
    """SageMaker's ``InferenceResult`` notification for a finished job."""
    request: dict[str, Any] = {"endpointName": job.endpoint.name}
    if job.input_location:
        request["inputLocation"] = job.input_location
    if job.content_type:
        request["contentType"] = job.content_type
    if job.accept:
        request["accept"] = job.accept
    if job.custom_attributes:
        request["customAttributes"] = job.custom_attributes
    message: dict[str, Any] = {
        "awsRegion": region,
        "eventTime": _iso(datetime.now(timezone.utc)),
        "receivedTime": _iso(job.received_at),
        "invocationStatus": job.outcome,
        "requestParameters": request,
        "inferenceId": job.inference_id,
        "eventVersion": "1.0",
        "eventSource": "aws:sagemaker",
        "eventName": "InferenceResult",
    }
    if job.outcome == "Completed":
        message["responseParameters"] = {"contentType": response_content_type,
                                         "outputLocation": job.output_location}
    else:
        message["failureReason"] = job.failure_reason
        message["responseParameters"] = {"contentType": response_content_type,
                                         "failureLocation": job.failure_location}
    return message


def embed_body(body: bytes, content_type: str) -> dict[str, str]:
    """The response embedded in a notification: JSON as is, text as text, anything else base64."""
    ctype = (content_type or "").split(";")[0].strip().lower()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return {"content": base64.b64encode(body).decode("ascii"), "encoding": "BASE64"}
    if ctype.endswith("json"):
        return {"content": text, "encoding": "JSON"}
    if ctype.startswith("text/"):
        return {"content": text, "encoding": "TEXT"}
    return {"content": base64.b64encode(body).decode("ascii"), "encoding": "BASE64"}
