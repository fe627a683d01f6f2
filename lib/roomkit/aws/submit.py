"""Push plans through an async endpoint and collect the rooms: ``submit`` → ``wait`` → ``results``.

The same code runs against AWS (``mode="aws"``) and the loopback local mode; it only ever talks
to the clients of the :class:`~roomkit.aws.AwsSession` it is given.

Identity and re-submission
    Every plan is identified by its content hash (``plan_key``: SHA-256 of the bytes for local
    files). Its upload key is ``<input prefix>/<plan_key[:16]>/<filename>`` (a plan over 1 MiB
    is uploaded once: an object already there with the same size is not sent again; a smaller
    one is simply put again, same key and bytes) and its ``InferenceId`` is
    ``<plan_key[:40]>-<12 hex>``: the prefix makes a re-submitted plan recognizable in
    notifications, S3 and logs, the suffix makes each invocation distinct so completions are
    never confused (the suffix is fixed before the first attempt, so a retried call after a lost
    response yields at worst a duplicate notification, which ``wait`` drops).

    By default (``rerun=False``) a plan that already finished successfully on the same endpoint
    with the same ``custom_attributes`` — according to the ``previous`` job handles you pass,
    e.g. ``load_jobs("jobs.json")`` — is not invoked again: its handle is returned with
    ``reused=True`` after checking that its output object still exists. Identical bytes given
    twice in one call are invoked once and share that invocation. ``rerun=True`` always invokes.

Large batches
    One ``submit`` call is one *batch*: its invocations carry the same ``S3OutputPathExtension``
    (``Job.batch``), so their outputs and failures land under ``<S3OutputPath>/<batch>/`` and
    ``wait``'s S3 fallback lists that prefix (1,000 keys a call) instead of probing each job.
    A local plan of at most 128,000 bytes travels inside the request (InvokeEndpointAsync's
    inline ``Body``) instead of being uploaded first: one request per plan instead of two, and
    no input object for the endpoint to fetch (``inline=False`` uploads every plan, e.g. to keep
    the inputs in S3).
    The clients, their connection pools and (for plans over 8 MiB) one S3 transfer manager are
    shared by every plan of the call; at most ``2 × max_workers`` plans are in flight, and a
    plan's bytes are read only by the worker that uploads it, so memory does not grow with the
    number of plans beyond their small records (inputs may be a generator of paths). A plan up
    to 1 MiB is put without a HEAD first (the PUT costs about what the HEAD would).

Then :func:`~roomkit.aws.wait.wait` (SQS notifications, S3 fallback) and
:func:`~roomkit.aws.results.results` (the results table) — re-exported here, so ``from
roomkit.aws.submit import submit, wait, results`` is the whole workflow. Batch Transform is
:func:`roomkit.aws.transform.transform`, which builds on this module.
"""
from __future__ import annotations

import hashlib
import logging
import os
import random
import secrets
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable, Mapping, Sequence

from roomkit.aws.results import results
from roomkit.aws.wait import wait
from roomkit.errors import ConfigError, RoomkitError
from roomkit.aws.inputs import PlanInput, parse_s3_uri, resolve_inputs, s3_uri
from roomkit.aws.jobs import (
    Completion,
    Job,
    LatencyStats,
    ResultRow,
    WaitResult,
    WaitTimeout,
    latency_stats,
    load_jobs,
    save_jobs,
    to_dataframe,
    utcnow,
)
from roomkit.aws.s3 import error_text, exists, is_aws_error, progress_bar
from roomkit.aws.target import AsyncTarget, target_of

__all__ = [
    "AsyncTarget",
    "Backoff",
    "Completion",
    "Job",
    "LatencyStats",
    "ResultRow",
    "SubmitError",
    "SubmitInterrupted",
    "WaitResult",
    "WaitTimeout",
    "latency_stats",
    "load_jobs",
    "results",
    "save_jobs",
    "submit",
    "target_of",
    "to_dataframe",
    "wait",
]

log = logging.getLogger(__name__)

ACCEPT = "application/json"
TTL_RANGE = (60, 21600)
INVOCATION_TIMEOUT_RANGE = (1, 3600)
THROTTLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "SlowDown",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalError",
        "InternalServerError",
    }
)
RETRY_HTTP_STATUS = frozenset({429, 500, 502, 503, 504})
_ID_PLAN_CHARS = 40
SMALL_PLAN = 1 << 20  # put without a HEAD first
MULTIPART_THRESHOLD = 8 << 20  # boto3's default: larger plans go through the transfer manager
INLINE_BODY_LIMIT = 128_000  # InvokeEndpointAsync's inline Body, bytes (mutually exclusive with InputLocation)


class SubmitError(RoomkitError):
    """No plan could be submitted (e.g. the endpoint does not exist or access is denied)."""

    code = "submit_failed"


class SubmitInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`submit`; ``.jobs`` holds the plans already invoked (save them)."""

    def __init__(self, jobs: list[Job]) -> None:
        super().__init__(f"interrupted after submitting {len(jobs)} plan(s)")
        self.jobs = jobs


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter for throttled calls.

    Attempt ``n`` (from 0) sleeps a uniform random time in ``[0, min(cap, base * 2**n)]``, the
    scheme that spreads many clients' retries best (AWS Architecture Blog, "Exponential Backoff
    and Jitter").
    """

    attempts: int = 8
    base: float = 0.25
    cap: float = 20.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.base < 0 or self.cap < 0:
            raise ConfigError(f"invalid backoff {self}")

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        return (rng or random).uniform(0.0, min(self.cap, self.base * (2 ** attempt)))


def is_retryable(exc: BaseException) -> bool:
    """Throttling, 429/5xx and dropped connections: worth another try; everything else is not."""
    from botocore.exceptions import (
        ClientError,
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        ReadTimeoutError,
    )

    if isinstance(exc, (EndpointConnectionError, ConnectionClosedError, ReadTimeoutError, ConnectTimeoutError)):
        return True
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return code in THROTTLE_CODES or status in RETRY_HTTP_STATUS
    return False


def call_with_backoff(
    fn: Callable[[], Any], backoff: Backoff = Backoff(), *, sleep: Callable[[float], None] = time.sleep
) -> Any:
    """Call ``fn`` until it succeeds, retrying retryable errors (see :func:`is_retryable`)."""
    for attempt in range(backoff.attempts):
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - filtered right below
            if not is_retryable(exc) or attempt == backoff.attempts - 1:
                raise
            delay = backoff.delay(attempt)
            log.debug("retryable error (%s), attempt %d, sleeping %.2f s", exc, attempt + 1, delay)
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


# -- submit ---------------------------------------------------------------------------------------
def submit(
    inputs: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
    deployment: Any,
    session: Any,
    *,
    ttl_seconds: int | None = None,
    invocation_timeout_seconds: int | None = None,
    custom_attributes: str | None = None,
    rerun: bool = False,
    previous: Iterable[Job] | None = None,
    max_workers: int = 8,
    backoff: Backoff = Backoff(),
    batch_prefix: bool = True,
    inline: bool = True,
    progress: bool = True,
) -> list[Job]:
    """Upload local plans and invoke the async endpoint once per plan; one :class:`Job` each.

    Parameters
    ----------
    inputs:
        Local files, directories (searched recursively for plan files), ``s3://`` objects or
        prefixes, as a list or any iterable (a generator of paths). All are resolved and checked
        before anything is uploaded (their bytes are hashed, not kept). S3 objects are used
        in place: the endpoint's execution role must be able to read them (a roomkit deployment
        grants its input prefix only), otherwise they fail with an access error.
    deployment:
        A :class:`~roomkit.aws.deploy.Deployment`, its JSON manifest path, or an
        :class:`AsyncTarget`.
    session:
        :func:`roomkit.aws.session` (local or aws mode).
    ttl_seconds, invocation_timeout_seconds:
        ``RequestTTLSeconds`` (60–21600; how long a request may wait in the queue, e.g. while
        the endpoint scales up from zero) and ``InvocationTimeoutSeconds`` (1–3600).
        ``None`` keeps SageMaker's defaults (6 h and 15 min).
    custom_attributes:
        Passed as ``CustomAttributes`` (≤1024 visible ASCII characters) to the container.
    rerun, previous:
        See the module docstring: reuse of finished results vs. a fresh invocation.
    max_workers:
        Parallel uploads/invocations (bounded thread pool; twice as many plans in flight).
    backoff:
        Retry policy for throttling (ThrottlingException, 429, ServiceUnavailable, 5xx).
    batch_prefix:
        Give this call's invocations one ``S3OutputPathExtension`` (see "Large batches" in the
        module docstring); ``False`` writes outputs straight under ``S3OutputPath``.
    inline:
        Send local plans of at most 128,000 bytes in the request itself (``Body``) rather than
        uploading them under the input prefix; ``False`` uploads every local plan. Ignored (every
        plan uploaded) when the installed botocore does not know ``Body``.

    Returns
    -------
    One job per input plan, in input order. A plan that could not be submitted comes back
    with ``error`` set (it counts as failed); if no plan at all could be submitted,
    :class:`SubmitError` is raised with the first reason.
    """
    from botocore.config import Config

    target = target_of(deployment)
    if target.kind != "async":
        raise ConfigError(
            f"{target.endpoint_name} is a {target.kind} endpoint: submit() needs an async one "
            "(deploy with kind: async, or call invoke_endpoint directly)"
        )
    _check_range("ttl_seconds", ttl_seconds, TTL_RANGE)
    _check_range("invocation_timeout_seconds", invocation_timeout_seconds, INVOCATION_TIMEOUT_RANGE)
    if custom_attributes is not None:
        if not isinstance(custom_attributes, str) or len(custom_attributes) > 1024 or not all(
            0x20 <= ord(c) < 0x7F for c in custom_attributes
        ):
            raise ConfigError("custom_attributes must be at most 1024 visible ASCII characters")
    if max_workers < 1:
        raise ConfigError(f"max_workers must be at least 1, got {max_workers}")

    # One client per service for the whole call, with a connection per worker in its pool.
    pool_size = Config(max_pool_connections=max(10, max_workers + 2))
    s3 = session.client("s3", config=pool_size)
    # Throttling is retried here, with jitter, around each call; botocore's own retries off so
    # the two do not multiply.
    runtime = session.client(
        "sagemaker-runtime",
        config=pool_size.merge(Config(retries={"max_attempts": 1, "mode": "standard"})),
    )
    plans = resolve_inputs(inputs, s3)
    batch = new_batch_id() if batch_prefix and _accepts(runtime, "InvokeEndpointAsync", "S3OutputPathExtension") else None
    inline_limit = INLINE_BODY_LIMIT if inline and _accepts(runtime, "InvokeEndpointAsync", "Body") else 0

    reusable = {} if rerun else _finished_previous(previous or (), target, custom_attributes, s3)
    # One invocation per distinct plan; identical bytes given twice share it.
    groups: dict[str, list[int]] = {}
    for index, plan in enumerate(plans):
        groups.setdefault(plan_key_of(plan), []).append(index)

    jobs: list[Job | None] = [None] * len(plans)
    to_send: list[tuple[str, PlanInput]] = []
    for key, indexes in groups.items():
        earlier = reusable.get(key)
        if earlier is not None:
            for i in indexes:
                jobs[i] = replace(earlier, input=plans[i].source, reused=True)
        else:
            to_send.append((key, plans[indexes[0]]))

    sent: dict[str, Job] = {}
    if to_send:
        bar = progress_bar(total=len(to_send), desc="submitting", disable=not progress)
        uploader = _Uploader(s3)
        errors = 0

        def send(key: str, plan: PlanInput) -> Job:
            return _submit_one(
                plan, key, target, uploader, runtime, backoff,
                ttl_seconds=ttl_seconds,
                invocation_timeout_seconds=invocation_timeout_seconds,
                custom_attributes=custom_attributes,
                batch=batch,
                inline_limit=inline_limit,
            )

        inflight: dict[Future[Job], str] = {}

        def collect(done: Iterable[Future[Job]]) -> None:
            nonlocal errors
            for future in done:
                key = inflight.pop(future)
                job = future.result()
                sent[key] = job
                bar.update(1)
                if job.error:
                    errors += 1
                    bar.set_postfix_str(f"errors: {errors}")

        window = 2 * max_workers  # plans in flight at most: the pool's, plus one queued each
        with ThreadPoolExecutor(max_workers=min(max_workers, len(to_send))) as pool:
            try:
                for key, plan in to_send:
                    while len(inflight) >= window:
                        collect(futures_wait(inflight, return_when=FIRST_COMPLETED)[0])
                    inflight[pool.submit(send, key, plan)] = key
                while inflight:
                    collect(futures_wait(inflight, return_when=FIRST_COMPLETED)[0])
            except KeyboardInterrupt:
                # Stop sending, but keep every invocation already made: they will complete and
                # their handles are how to find the results.
                for future in inflight:
                    future.cancel()
                for future, key in inflight.items():
                    if not future.cancelled():
                        try:
                            sent[key] = future.result()
                        except Exception:  # noqa: BLE001 - it failed; nothing to keep
                            pass
                raise SubmitInterrupted(_in_order(plans, groups, jobs, sent)) from None
            finally:
                bar.close()
                uploader.close()
    result = _in_order(plans, groups, jobs, sent)
    if sent and all(j.error for j in sent.values()):
        first = next(iter(sent.values()))
        raise SubmitError(f"no plan could be submitted to {target.endpoint_name}: {first.error}")
    return result


def _in_order(
    plans: Sequence[PlanInput], groups: Mapping[str, list[int]], jobs: list[Job | None], sent: Mapping[str, Job]
) -> list[Job]:
    """Jobs in input order: reused ones as placed, sent ones shared by inputs of the same plan."""
    for key, indexes in groups.items():
        if key in sent:
            first = sent[key]
            for n, i in enumerate(indexes):
                jobs[i] = first if n == 0 else replace(first, input=plans[i].source, reused=True)
    return [j for j in jobs if j is not None]


def plan_key_of(plan: PlanInput) -> str:
    """The hex content hash a plan is known by (SHA-256 for local files, S3 ETag otherwise)."""
    kind, _, value = plan.digest.partition(":")
    value = value.lower()
    if kind == "sha256" or (kind == "etag" and all(c in "0123456789abcdef" for c in value) and value):
        return value
    return hashlib.sha256(plan.digest.encode()).hexdigest()


def new_batch_id() -> str:
    """``batch-<UTC time>-<8 hex>``: the ``S3OutputPathExtension`` of one ``submit`` call."""
    return f"batch-{utcnow():%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def _accepts(client: Any, operation: str, member: str) -> bool:
    """Whether the installed botocore knows ``member`` of ``operation`` (older ones reject it)."""
    try:
        return member in client.meta.service_model.operation_model(operation).input_shape.members
    except Exception:  # noqa: BLE001 - unknown: do not use it
        return False


def new_inference_id(plan_key: str) -> str:
    """``<plan_key[:40]>-<12 random hex>``: recognizable per plan, unique per invocation (≤64)."""
    return f"{plan_key[:_ID_PLAN_CHARS]}-{secrets.token_hex(6)}"


def plan_key_from_inference_id(inference_id: str) -> str:
    """The plan-hash prefix of an inference id made by :func:`new_inference_id`."""
    return inference_id.rsplit("-", 1)[0]


def _submit_one(
    plan: PlanInput,
    key: str,
    target: AsyncTarget,
    uploader: "_Uploader",
    runtime: Any,
    backoff: Backoff,
    *,
    ttl_seconds: int | None,
    invocation_timeout_seconds: int | None,
    custom_attributes: str | None,
    batch: str | None = None,
    inline_limit: int = 0,
) -> Job:
    inference_id = new_inference_id(key)
    submitted_at = utcnow()
    input_uri = plan.s3_uri or ""
    inline = plan.local_path is not None and plan.size <= inline_limit
    try:
        request: dict[str, Any] = {"EndpointName": target.endpoint_name}
        if inline:
            assert plan.local_path is not None
            request["Body"] = plan.local_path.read_bytes()
        else:
            if plan.local_path is not None:
                input_uri = uploader.upload(plan, key, target)
            request["InputLocation"] = input_uri
        request.update({
            "ContentType": plan.content_type,
            "Accept": ACCEPT,
            "InferenceId": inference_id,
        })
        if ttl_seconds is not None:
            request["RequestTTLSeconds"] = int(ttl_seconds)
        if invocation_timeout_seconds is not None:
            request["InvocationTimeoutSeconds"] = int(invocation_timeout_seconds)
        if custom_attributes is not None:
            request["CustomAttributes"] = custom_attributes
        if batch is not None:
            request["S3OutputPathExtension"] = batch
        submitted_at = utcnow()
        response = call_with_backoff(lambda: runtime.invoke_endpoint_async(**request), backoff)
    except Exception as exc:  # noqa: BLE001 - recorded on the job: a failed submission is not lost
        if isinstance(exc, OSError) and not is_aws_error(exc):
            exc_text = f"cannot read {plan.source}: {exc.strerror or exc}"
        elif is_aws_error(exc) or _is_transfer_error(exc):
            exc_text = error_text(exc)
        else:
            raise
        return Job(
            input=plan.source,
            s3_input_uri=input_uri,
            inference_id=inference_id,
            output_location="",
            failure_location=None,
            submitted_at=submitted_at,
            content_type=plan.content_type,
            endpoint_name=target.endpoint_name,
            plan_key=key,
            custom_attributes=custom_attributes,
            error=f"submission failed: {exc_text}",
            inline=inline,
        )
    output_location = response["OutputLocation"]
    return Job(
        input=plan.source,
        s3_input_uri=input_uri,
        inference_id=response.get("InferenceId") or inference_id,
        output_location=output_location,
        failure_location=response.get("FailureLocation"),
        submitted_at=submitted_at,
        content_type=plan.content_type,
        endpoint_name=target.endpoint_name,
        plan_key=key,
        custom_attributes=custom_attributes,
        # only when the service put the output under the batch prefix (an older one may not)
        batch=batch if batch and f"/{batch}/" in output_location else None,
        inline=inline,
    )


def upload_plan(plan: PlanInput, key: str, target: AsyncTarget, s3: Any) -> str:
    """Put a local plan under the input prefix once (content-addressed key); its S3 URI."""
    uploader = _Uploader(s3)
    try:
        return uploader.upload(plan, key, target)
    finally:
        uploader.close()


def plan_object_key(plan: PlanInput, key: str, target: AsyncTarget) -> tuple[str, str]:
    """``(bucket, key)`` a local plan is uploaded to: ``<input prefix>/<plan_key[:16]>/<name>``."""
    bucket, prefix = parse_s3_uri(target.input_uri)
    object_key = f"{prefix.rstrip('/') + '/' if prefix.strip('/') else ''}{key[:16]}/{_safe_name(plan.filename)}"
    return bucket, object_key


class _Uploader:
    """Uploads for one ``submit`` call, sharing its S3 client and one transfer manager.

    A plan up to :data:`MULTIPART_THRESHOLD` is read by the calling worker and sent in one
    PutObject (no transfer manager, no extra threads); a plan over :data:`SMALL_PLAN` is looked
    up first and not sent again when an object of its size is there. Larger plans go through
    one boto3 transfer manager created on first need and shut down by :meth:`close`.
    """

    def __init__(self, s3: Any) -> None:
        import threading

        self.s3 = s3
        self._transfer: Any = None
        self._lock = threading.Lock()

    def upload(self, plan: PlanInput, key: str, target: AsyncTarget) -> str:
        from botocore.exceptions import ClientError

        assert plan.local_path is not None
        bucket, object_key = plan_object_key(plan, key, target)
        if plan.size > SMALL_PLAN:
            try:
                head = self.s3.head_object(Bucket=bucket, Key=object_key)
                if int(head.get("ContentLength", -1)) == plan.size:
                    return s3_uri(bucket, object_key)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound", "403"):
                    raise
        extra: dict[str, Any] = {"ContentType": plan.content_type, "Metadata": {"roomkit-plan-key": key}}
        if plan.size <= MULTIPART_THRESHOLD:
            body = plan.local_path.read_bytes()
            self.s3.put_object(Bucket=bucket, Key=object_key, Body=body, **extra)
        else:
            self._manager().upload_file(str(plan.local_path), bucket, object_key, extra_args=extra)
        return s3_uri(bucket, object_key)

    def _manager(self) -> Any:
        from boto3.s3.transfer import S3Transfer, TransferConfig

        with self._lock:
            if self._transfer is None:
                self._transfer = S3Transfer(client=self.s3, config=TransferConfig(max_concurrency=4))
            return self._transfer

    def close(self) -> None:
        with self._lock:
            transfer, self._transfer = self._transfer, None
        if transfer is not None:
            transfer.__exit__(None, None, None)


def _is_transfer_error(exc: BaseException) -> bool:
    from boto3.exceptions import S3UploadFailedError

    return isinstance(exc, S3UploadFailedError)


def _safe_name(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "._-" else "_" for c in name).strip("._") or "plan"
    if len(cleaned) > 100:
        stem, dot, ext = cleaned.rpartition(".")
        cleaned = (stem[: 100 - len(ext) - 1] + "." + ext) if dot and len(ext) <= 10 else cleaned[:100]
    return cleaned


def _finished_previous(
    previous: Iterable[Job], target: AsyncTarget, custom_attributes: str | None, s3: Any
) -> dict[str, Job]:
    """Earlier successful jobs of the same plan/endpoint/attributes whose output still exists."""
    candidates: dict[str, Job] = {}
    for job in previous:
        if job.error or not job.output_location or job.endpoint_name != target.endpoint_name:
            continue
        if job.custom_attributes != custom_attributes:
            continue
        candidates.setdefault(job.plan_key, job)
    found: dict[str, Job] = {}
    for key, job in candidates.items():
        if exists(s3, job.output_location):
            found[key] = replace(job, reused=False)
    return found


def _check_range(name: str, value: int | None, bounds: tuple[int, int]) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not bounds[0] <= value <= bounds[1]:
        raise ConfigError(f"{name} must be an integer from {bounds[0]} to {bounds[1]}, got {value!r}")








