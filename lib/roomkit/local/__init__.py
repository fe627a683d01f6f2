"""Local mode: AWS's APIs on 127.0.0.1 plus a SageMaker Async Inference runtime.

``with LocalAWS() as aws:`` starts, on free loopback ports:

- moto's server (S3, SNS, SQS, IAM, ECR, CloudWatch, Application Auto Scaling, SageMaker
  control plane), with an ECR repository ``roomkit`` holding an image tagged ``local`` whose
  manifest is Docker v2 schema 2 (what the deploy preflight checks);
- the real serving process, ``roomkit serve``, with the default model config;
- the async runtime (``sagemaker-runtime``: InvokeEndpointAsync, InvokeEndpoint) in front of it;
  like SageMaker inside AWS, it reads inputs, writes outputs and publishes notifications on
  moto's S3 and SNS directly, not through the user's endpoints (:mod:`.service_access`);
- the upload-trigger runner (S3 notification → SQS → ``roomkit.aws.trigger``).

``aws.session()`` gives the :class:`roomkit.aws.AwsSession` every other module takes, so the
same boto3 code runs here and against AWS. On exit everything stops: no process is left, every
port is released, moto's state is dropped. One LocalAWS runs per process (moto's state is
per process). ``roomkit local up`` runs one in the foreground for other processes.

What is faithful to AWS
-----------------------
- The sagemaker-runtime REST protocol: routes, ``X-Amzn-SageMaker-*`` headers, 202 with
  ``InferenceId`` and the output/failure location headers, header constraints with AWS's
  "N validation error(s) detected" wording, error codes and statuses (ValidationError 400,
  ModelError 424 with OriginalStatusCode/OriginalMessage/LogStreamArn, ModelNotReadyException 429,
  ServiceUnavailable 503, InternalFailure 500), so boto3 raises the same ``ClientError`` codes.
- Endpoint → endpoint config → model from the control plane; an endpoint with
  AsyncInferenceConfig is async-only, one without is real-time only; "Endpoint X of account Y
  not found." for unknown endpoints.
- ``<S3OutputPath>[/<S3OutputPathExtension>]/<id>.out`` (or ``Filename``) with the model's
  response and content type; ``<S3FailurePath>[/<ext>]/<id>-error.out`` with the model's error
  body; SNS ``InferenceResult`` notifications (``invocationStatus``, ``failureReason``,
  ``requestParameters``, ``responseParameters``…), the response embedded when
  ``IncludeInferenceResponseIn`` names the topic and it is ≤ 128 KB.
- A FIFO queue per endpoint drained by at most ``MaxConcurrentInvocationsPerInstance × instance
  count`` requests at a time; ``RequestTTLSeconds`` (expired in the queue → failure) and
  ``InvocationTimeoutSeconds`` (no answer in time → failure), inline ``Body`` ≤ 128,000 bytes.
- The container contract: ``ModelDataUrl`` extracted into the model directory, the model's
  ``Environment`` (it wins over the defaults), ``SAGEMAKER_MODEL_SERVER_WORKERS``/``_TIMEOUT``,
  readiness by ``GET /ping``, a dead container replaced.
- ``ApproximateBacklogSize``, ``…PerInstance``, ``HasBacklogWithoutCapacity`` and
  ``ApproximateAgeOfOldestRequest`` in CloudWatch (``AWS/SageMaker``, ``EndpointName``).

What differs
------------
- No authentication or IAM: signatures are not checked and moto does not enforce policies, so a
  missing ``s3:GetObject``/``sns:Publish`` on the execution role is not caught here.
- A missing input object is refused at once (ValidationError); an object deleted after
  acceptance fails the job. AWS documents neither; some messages (missing input, non-async
  endpoint, shutdown) are worded by us — codes and shapes follow the service model.
- Without ``S3FailurePath`` failures go under ``S3OutputPath`` (AWS's behaviour before failure
  paths existed); ``Filename`` names only the output, the failure object stays ``<id>-error.out``.
- A job whose connection to the container breaks with no answer (the container crashed) is sent
  once more after the restart, within its invocation timeout (``retry_on_crash``); AWS does not
  document what it does.
- One serving process per distinct model (artifact + environment), started on first use; the
  instance count only scales concurrency. The first production variant serves every request.
- Nothing scales: autoscaling targets and policies are stored by moto, endpoints stay at their
  instance count (so ``HasBacklogWithoutCapacity`` is 0). KmsKeyId is ignored.
- Shutdown: new requests get ServiceUnavailable; queued requests are failed (failure object and
  error notification, reason "shut down before this request was processed") unless
  ``drain_on_exit``; in-flight ones get ``shutdown_grace_s`` and are failed after it. Outputs are
  single PutObject calls, so none is half-written, and a job failed by shutdown never also
  writes an output. All state is in memory and ends with the process.
- Metrics every ``metrics_interval_s`` (10 s) rather than every minute.
- ``InvokeEndpointWithResponseStream`` is not implemented (ValidationError).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Mapping

from botocore.config import Config

import roomkit.aws as aws_factory
from roomkit.errors import RoomkitError
from roomkit.local.moto_server import MotoServer
from roomkit.local.runtime_models import AsyncRuntime, ControlPlane, ModelServers
from roomkit.local.runtime_responses import RuntimeServer
from roomkit.local.service_access import BackendS3, BackendSNS
from roomkit.local.server_process import DEFAULT_SERVER_TIMEOUT_S, CommandBuilder, ServingProcess
from roomkit.local.trigger_runner import TRIGGER_TAG, TriggerRunner

__all__ = ["LocalAWS", "LocalModeError", "TRIGGER_TAG", "IMAGE_REPOSITORY", "IMAGE_TAG"]

log = logging.getLogger(__name__)

IMAGE_REPOSITORY = "roomkit"
IMAGE_TAG = "local"
DOCKER_V2_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"

# moto keeps every service's state in module-level backends, shared by all servers of a process:
# two LocalAWS at once would see each other's resources, so one runs at a time per process.
_RUNNING_LOCK = threading.Lock()
_running: "LocalAWS | None" = None


class LocalModeError(RoomkitError):
    code = "local_mode_error"


class LocalAWS:
    """Loopback AWS + local SageMaker async runtime, as a context manager.

    Parameters
    ----------
    workers:
        Worker processes of each serving process (``roomkit serve --workers``).
    region:
        Region the fake account lives in.
    model_dir:
        Model directory (``config.json`` at its root) of the default serving process, used by
        models without ``ModelDataUrl``; ``None`` = the server's default config.
    server_timeout_s, startup_timeout_s:
        ``SAGEMAKER_MODEL_SERVER_TIMEOUT`` of the serving processes; how long /ping may take.
    concurrency_per_instance:
        Used when an endpoint config has no ``MaxConcurrentInvocationsPerInstance``
        (AWS picks "an optimal value"; here: one per server worker).
    trigger:
        Run the upload-trigger runner (polls SQS queues tagged ``roomkit:trigger-env``).
    state_file:
        Write the endpoints there (what ``roomkit.aws.session(mode="local")`` reads), and remove
        it on exit. ``roomkit local up`` passes the default path.
    shutdown_grace_s, drain_on_exit:
        On exit, in-flight jobs get ``shutdown_grace_s`` to finish; queued jobs are failed
        (failure object + error notification) unless ``drain_on_exit``, which processes them first.
    retry_on_crash:
        Resend a job once when the serving process dies under it (documented in the runtime).
    metrics_interval_s:
        Every so often put the async backlog metrics into (moto's) CloudWatch, as SageMaker
        does every minute; ``None`` turns it off. :meth:`publish_metrics` does it on demand.
    server_command:
        Builds the serving process's argv from (host, port, workers, model_dir); defaults to
        ``python -m roomkit serve ...``.
    """

    def __init__(
        self,
        *,
        workers: int = 2,
        region: str = aws_factory.DEFAULT_LOCAL_REGION,
        model_dir: str | Path | None = None,
        server_timeout_s: int = DEFAULT_SERVER_TIMEOUT_S,
        startup_timeout_s: float = 60.0,
        concurrency_per_instance: int | None = None,
        trigger: bool = True,
        trigger_interval_s: float = 1.0,
        state_file: str | Path | None = None,
        shutdown_grace_s: float = 30.0,
        drain_on_exit: bool = False,
        retry_on_crash: bool = True,
        metrics_interval_s: float | None = 10.0,
        server_command: CommandBuilder | None = None,
        work_dir: str | Path | None = None,
    ) -> None:
        self.workers = workers
        self.region = region
        self.model_dir = Path(model_dir) if model_dir else None
        self.server_timeout_s = server_timeout_s
        self.startup_timeout_s = startup_timeout_s
        self.concurrency_per_instance = concurrency_per_instance or workers
        self.trigger_enabled = trigger
        self.trigger_interval_s = trigger_interval_s
        self.state_file = Path(state_file) if state_file else None
        self.shutdown_grace_s = shutdown_grace_s
        self.drain_on_exit = drain_on_exit
        self.retry_on_crash = retry_on_crash
        self.metrics_interval_s = metrics_interval_s
        self._metrics_stop = threading.Event()
        self._metrics_thread: threading.Thread | None = None
        self._cloudwatch: Any = None
        self.server_command = server_command
        self._given_work_dir = Path(work_dir) if work_dir else None
        self.work_dir: Path | None = None
        self.moto: MotoServer | None = None
        self.server: ServingProcess | None = None
        self.servers: ModelServers | None = None
        self.runtime: AsyncRuntime | None = None
        self.runtime_server: RuntimeServer | None = None
        self.trigger: TriggerRunner | None = None
        self.image_uri: str | None = None
        self.account_id: str | None = None
        self.shutdown_report: dict[str, list[str]] | None = None
        self._session: aws_factory.AwsSession | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> "LocalAWS":
        global _running
        with _RUNNING_LOCK:
            if _running is not None:
                raise LocalModeError(
                    "a LocalAWS is already running in this process (moto's state is per process); "
                    "stop it first or use its session()"
                )
            _running = self
        try:
            self._start()
        except BaseException:
            self.stop(grace_s=0)
            raise
        return self

    def _start(self) -> None:
        self.work_dir = self._given_work_dir or Path(tempfile.mkdtemp(prefix="roomkit-local-"))
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.moto = MotoServer().start()
        self.moto.reset()  # a clean account, whatever an earlier LocalAWS of this process left
        moto_only = aws_factory.session("local", region=self.region, endpoints={"default": self.moto.url})
        pool = Config(max_pool_connections=64)
        s3 = moto_only.client("s3", config=pool)
        sagemaker = moto_only.client("sagemaker", config=pool)
        self.account_id = moto_only.client("sts").get_caller_identity()["Account"]
        self.image_uri = self._register_image(moto_only.client("ecr"))

        default_dir = self.model_dir or (self.work_dir / "models" / "default")
        default_dir.mkdir(parents=True, exist_ok=True)
        self.server = self._serving_process(default_dir, {}, "default").start()
        self.servers = ModelServers(s3, self.work_dir, default=self.server, factory=self._serving_process)
        # The runtime plays SageMaker's service side: it reads and writes S3 and publishes to SNS
        # on moto's backends directly, as SageMaker does inside AWS (see service_access).
        self.runtime = AsyncRuntime(
            ControlPlane(sagemaker, self.account_id), BackendS3(self.account_id, self.region),
            BackendSNS(), self.servers,
            region=self.region, default_concurrency_per_instance=self.concurrency_per_instance,
            retry_on_crash=self.retry_on_crash,
        )
        self.runtime_server = RuntimeServer(self.runtime).start()
        self._session = aws_factory.session(
            "local", region=self.region,
            endpoints={"default": self.moto.url, "sagemaker-runtime": self.runtime_server.url},
        )
        self._cloudwatch = moto_only.client("cloudwatch")
        if self.metrics_interval_s:
            self._metrics_stop.clear()
            self._metrics_thread = threading.Thread(target=self._publish_metrics_loop,
                                                    name="roomkit-backlog-metrics", daemon=True)
            self._metrics_thread.start()
        if self.trigger_enabled:
            self.trigger = TriggerRunner(self._session, interval_s=self.trigger_interval_s).start()
        if self.state_file is not None:
            self._write_state()
        log.info("local AWS up: moto %s, runtime %s, server %s",
                 self.moto.url, self.runtime_server.url, self.server.url)

    def stop(self, *, drain: bool | None = None, grace_s: float | None = None) -> None:
        """Stop everything (idempotent). See the class docstring for what happens to queued work."""
        drain = self.drain_on_exit if drain is None else drain
        grace = self.shutdown_grace_s if grace_s is None else grace_s
        if self.trigger is not None:
            self.trigger.stop()
            self.trigger = None
        self._metrics_stop.set()
        if self._metrics_thread is not None:
            self._metrics_thread.join(timeout=10)
            self._metrics_thread = None
        if self.runtime is not None:
            self.shutdown_report = self.runtime.stop(drain=drain, grace_s=grace)
            self.runtime = None
        if self.runtime_server is not None:
            self.runtime_server.stop()
            self.runtime_server = None
        if self.servers is not None:
            self.servers.stop()
            self.servers = None
        elif self.server is not None:
            self.server.stop()
        self.server = None
        if self.moto is not None:
            try:
                self.moto.reset()  # free the objects and messages of this run
            except OSError as exc:
                log.warning("could not reset moto's state: %s", exc)
            self.moto.stop()
            self.moto = None
        if self.state_file is not None:
            self._remove_state()
        if self.work_dir is not None and self._given_work_dir is None:
            shutil.rmtree(self.work_dir, ignore_errors=True)
        self.work_dir = None
        self._session = None
        global _running
        with _RUNNING_LOCK:
            if _running is self:
                _running = None

    def __enter__(self) -> "LocalAWS":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what callers use ----------------------------------------------------------------------
    def session(self) -> aws_factory.AwsSession:
        """The :class:`roomkit.aws.AwsSession` pointing at these loopback services."""
        if self._session is None:
            raise RuntimeError("LocalAWS is not running: use `with LocalAWS() as aws:` or .start()")
        return self._session

    def endpoint_url(self, service: str) -> str:
        url = self.session().endpoint_url(service)
        assert url is not None
        return url

    def env(self) -> dict[str, str]:
        """Environment variables that point boto3 (or the aws CLI) in another process here."""
        env = self.session().env()
        if self.state_file is not None:
            env[aws_factory.LOCAL_STATE_ENV] = str(self.state_file)
        return env

    def queue_depth(self, endpoint: str | None = None) -> int:
        """Jobs queued or in flight for ``endpoint`` (the local ApproximateBacklogSize)."""
        if self.runtime is None:
            raise RuntimeError("LocalAWS is not running")
        return self.runtime.queue_depth(endpoint)

    def publish_metrics(self) -> int:
        """Put the backlog metrics (``ApproximateBacklogSize``, ``…PerInstance``,
        ``HasBacklogWithoutCapacity``, ``ApproximateAgeOfOldestRequest``) into CloudWatch now;
        also done every ``metrics_interval_s``. Returns the number of data points."""
        if self.runtime is None or self._cloudwatch is None:
            raise RuntimeError("LocalAWS is not running")
        data = self.runtime.backlog_metrics()
        for start in range(0, len(data), 20):
            self._cloudwatch.put_metric_data(Namespace="AWS/SageMaker", MetricData=data[start:start + 20])
        return len(data)

    def _publish_metrics_loop(self) -> None:
        assert self.metrics_interval_s
        while not self._metrics_stop.wait(self.metrics_interval_s):
            try:
                self.publish_metrics()
            except Exception as exc:  # noqa: BLE001 (metrics must never take the runtime down)
                log.warning("could not publish backlog metrics: %s", exc)

    @property
    def server_url(self) -> str:
        """URL of the default serving process (its /ping and /invocations)."""
        if self.server is None:
            raise RuntimeError("LocalAWS is not running")
        return self.server.url

    def state(self) -> dict[str, Any]:
        session = self.session()
        return {
            "pid": os.getpid(),
            "region": self.region,
            "endpoints": dict(session.endpoints),
            "server_url": self.server_url,
            "image_uri": self.image_uri,
            "account_id": self.account_id,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }

    # -- internals -----------------------------------------------------------------------------
    def _serving_process(self, model_dir: Path, env: Mapping[str, str], name: str) -> ServingProcess:
        assert self.work_dir is not None
        return ServingProcess(
            model_dir, workers=self.workers, server_timeout_s=self.server_timeout_s, env=env,
            startup_timeout_s=self.startup_timeout_s, command=self.server_command, name=name,
            log_path=self.work_dir / "logs" / f"serve-{name}.log",
        )

    def _register_image(self, ecr: Any) -> str:
        """Put ``roomkit:local`` in moto's ECR with a Docker v2 schema 2 manifest."""
        try:
            repo = ecr.create_repository(repositoryName=IMAGE_REPOSITORY)["repository"]
        except ecr.exceptions.RepositoryAlreadyExistsException:
            repo = ecr.describe_repositories(repositoryNames=[IMAGE_REPOSITORY])["repositories"][0]
        seed = f"roomkit-local-{self.region}".encode()
        config = json.dumps({"architecture": "amd64", "os": "linux",
                             "config": {"Entrypoint": ["serve"]}}).encode()
        layer = hashlib.sha256(seed + b"-layer").hexdigest()
        manifest = {
            "schemaVersion": 2,
            "mediaType": DOCKER_V2_MANIFEST,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                       "size": len(config), "digest": "sha256:" + hashlib.sha256(config).hexdigest()},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                        "size": 1024, "digest": "sha256:" + layer}],
        }
        try:
            ecr.put_image(repositoryName=IMAGE_REPOSITORY, imageManifest=json.dumps(manifest),
                          imageManifestMediaType=DOCKER_V2_MANIFEST, imageTag=IMAGE_TAG)
        except ecr.exceptions.ImageAlreadyExistsException:
            pass
        return f"{repo['repositoryUri']}:{IMAGE_TAG}"

    def _write_state(self) -> None:
        assert self.state_file is not None
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state(), indent=2), encoding="utf-8")
        os.replace(tmp, self.state_file)

    def _remove_state(self) -> None:
        assert self.state_file is not None
        try:
            state = json.loads(self.state_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if state.get("pid") == os.getpid():
            self.state_file.unlink(missing_ok=True)
