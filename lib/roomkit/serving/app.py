"""The WSGI application: ``GET /ping``, ``POST /invocations`` (and ``GET /execution-parameters``).

Plain WSGI rather than a framework: two routes, bodies up to a gigabyte read with an explicit
limit and deadline, and every response built as one bytes object with its ``Content-Length``
(SageMaker Async rejects chunked responses). A framework would add a dependency to the image
and hide exactly the parts this server has to control.

One :class:`RoomkitApp` lives in each gunicorn worker process, built after the fork (no
``--preload``), so each worker reads ``config.json`` once at start and loads ``model.onnx``
from the model directory when there is one (the ``learned`` and ``hybrid`` backends run it).
Each worker runs at most one detection at a time (detection is CPU-bound; N workers = N busy
cores) while its other threads keep answering ``/ping`` and reading request bodies.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import socket
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable

from roomkit.detector.config import RESOURCE_LIMITS, DetectorConfig
from roomkit.errors import ConfigError, RoomkitError
from roomkit.learned.modelfile import ONNX_NAME, ModelError, has_model
from roomkit.serving.http_errors import (
    BackendUnavailableError,
    BadRequestError,
    LimitExceededError,
    MethodNotAllowedError,
    ModelNotReadyError,
    NotAcceptableError,
    NotFoundError,
    PayloadTooLargeError,
    ProcessingTimeoutError,
    RequestTimeoutError,
)
from roomkit.serving import memory
from roomkit.serving.logs import configure_logging
from roomkit.serving.options import RESPONSE_TYPES, ServerOptions, available_cpus
from roomkit.serving.payload import Payload, check_content_type, parse_custom_attributes, parse_payload
from roomkit.serving.s3 import S3Fetcher

log = logging.getLogger("roomkit.serving")

try:  # the body reader raises gunicorn's parse errors for a broken chunked encoding
    from gunicorn.http.errors import ParseException as _GunicornParseError

    _PARSE_ERRORS: tuple[type[BaseException], ...] = (_GunicornParseError,)
except ImportError:  # pragma: no cover - another WSGI server
    _PARSE_ERRORS = ()

StartResponse = Callable[..., Any]
_READ_CHUNK = 1 << 20
_PING_WARNING_INTERVAL_S = 60.0
# Plans a worker holds in memory at once: the one being detected and the next one, read ahead.
BUFFERED_BODIES = 2
#: Seconds a body may stall (no byte arriving) before the request is answered 408: an upload
#: that stops holds one thread that long, not the whole request timeout.
BODY_IDLE_TIMEOUT_S = 10.0
#: Bodies above this many bytes are written to a temporary file as they arrive, so uploads in
#: progress cost disk, not memory, and need no memory slot while they trickle in.
SPOOL_BYTES = 8 << 20
_ACCEPT_ALIASES = {"application/vnd.geo+json": "application/geo+json"}


@dataclass(frozen=True)
class Engine:
    """The two calls the server makes into the detector side (decode, detect)."""

    load_image: Callable[..., Any]
    detect_rooms: Callable[..., Any]

    @classmethod
    def default(cls) -> "Engine":
        from roomkit.detector import detect_rooms
        from roomkit.plans.imageio import load_image

        return cls(load_image=load_image, detect_rooms=detect_rooms)


def load_model_config(model_dir: Path) -> tuple[DetectorConfig | None, str, str | None]:
    """``(config, source, error)`` for ``model_dir``; a missing ``config.json`` means defaults."""
    path = Path(model_dir) / "config.json"
    if not path.exists():
        return DetectorConfig(), f"defaults ({path} not found)", None
    try:
        return DetectorConfig.from_json(path), str(path), None
    except ConfigError as exc:
        return None, str(path), exc.message


def load_serving_model(model_dir: Path, threads: int) -> tuple[Any, str | None]:
    """``(model, reason)``: the :class:`~roomkit.learned.runtime.LearnedModel` in ``model_dir``
    (validated, warmed up) or ``None`` and why there is none usable.

    A missing ``model.onnx`` is not an error by itself (a ``rules`` endpoint needs none); the
    caller decides whether the reason makes the worker unready."""
    if not has_model(model_dir):
        return None, f"no {ONNX_NAME} in {model_dir} (train one with `roomkit train` and package it with --model)"
    try:
        from roomkit.learned.runtime import LearnedModel  # onnxruntime: only when there is a model

        return LearnedModel.load(model_dir, threads=threads), None
    except ModelError as exc:
        return None, exc.message
    except Exception as exc:  # onnxruntime missing or broken: a reason on /ping, not a crash
        return None, f"cannot load {Path(model_dir) / ONNX_NAME}: {type(exc).__name__}: {exc}"


class RoomkitApp:
    """WSGI callable for one worker process. ``busy`` tells the worker class to let idle
    siblings accept new connections first."""

    def __init__(self, options: ServerOptions, engine: Engine | None = None) -> None:
        self.options = options
        configure_logging(options.log_level)
        self.config, self.config_source, self.config_error = load_model_config(options.model_dir)
        self._engine = engine
        self._engine_error: str | None = None
        if self.config_error is None and engine is None:
            try:
                self._engine = Engine.default()
                if self.config.read_text:  # load the OCR models at boot, not in the first request
                    from roomkit.text.ocr import available

                    available()
            except Exception as exc:  # an import failure must show on /ping, not crash the worker
                self._engine_error = f"cannot load the detector: {type(exc).__name__}: {exc}"
                log.exception("detector_import_failed")
        # OpenCV and onnxruntime share the CPUs this worker gets: N workers x threads = CPUs.
        self.native_threads = max(1, available_cpus() // max(1, options.workers))
        self.model: Any = None  # LearnedModel, for requests on the learned / hybrid backends
        self.model_problem: str | None = None  # why there is no usable model (None: there is one)
        self._model_error: str | None = None  # set when config.json's backend needs the model
        if self.ready:
            self.model, self.model_problem = load_serving_model(options.model_dir, self.native_threads)
            if self.model is None and self.config.backend != "rules":
                self._model_error = (
                    f"config.json asks for backend {self.config.backend!r}, which needs a learned model: "
                    f"{self.model_problem}")
            elif self.model_problem and has_model(options.model_dir):
                log.warning("model_unusable", extra={"fields": {
                    "reason": self.model_problem, "backend": self.config.backend}})
        self._slot = threading.Lock()  # one detection at a time in this process
        self._buffers = threading.BoundedSemaphore(BUFFERED_BODIES)
        self._count_lock = threading.Lock()
        self._in_flight = 0
        self._last_ping_warning = -_PING_WARNING_INTERVAL_S
        self.s3 = S3Fetcher(options.max_request_size)
        self._set_native_threads()
        if self.ready:
            log.info("worker_ready", extra={"fields": {
                "config_source": self.config_source, "config": self.config.to_dict(),
                "backend": self.config.backend, "model": self.model_summary(),
                "workers": options.workers, "timeout_s": options.timeout,
                "max_request_size": options.max_request_size}})
        else:
            log.error("worker_not_ready", extra={"fields": {
                "config_source": self.config_source, "reason": self.not_ready_reason}})

    # -- state ---------------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return (self.config_error is None and self._engine_error is None and self._engine is not None
                and self._model_error is None)

    @property
    def not_ready_reason(self) -> str:
        if self.config_error:
            return f"invalid model configuration: {self.config_error}"
        return self._engine_error or self._model_error or "detector not loaded"

    def model_summary(self) -> dict[str, Any] | None:
        """What the worker log says about the loaded model (None: no model)."""
        if self.model is None:
            return None
        info = self.model.info
        return {"path": str(self.model.path), "trained_on": dict(info.trained_on),
                "validation": dict(info.validation), "max_side": info.max_side}

    @property
    def busy(self) -> bool:
        """True while this process holds an invocation (reading, waiting or detecting)."""
        return self._in_flight > 0

    def _set_native_threads(self) -> None:
        """Split the CPUs between workers so N workers × OpenCV threads do not oversubscribe
        (onnxruntime gets the same count when the model loads)."""
        if not self.ready:
            return
        try:
            import cv2

            cv2.setNumThreads(self.native_threads)
        except Exception:  # pragma: no cover - OpenCV missing is reported by the detector
            pass

    # -- WSGI ----------------------------------------------------------------------------------
    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or "/"
        method = environ.get("REQUEST_METHOD", "GET").upper()
        if path == "/ping":
            return self._ping(method, start_response)
        if path == "/invocations":
            return self._invocations(environ, method, start_response)
        if path == "/execution-parameters":
            return self._execution_parameters(method, start_response)
        error = NotFoundError(f"no route {path!r}; the server answers GET /ping and POST /invocations")
        return self._send(start_response, error.http_status, _error_body(error), "application/json")

    def _ping(self, method: str, start_response: StartResponse) -> Iterable[bytes]:
        if method not in ("GET", "HEAD"):
            return self._error(start_response, MethodNotAllowedError("use GET /ping", allow="GET, HEAD"))
        if self.ready:
            return self._send(start_response, 200, b"", None)
        error = ModelNotReadyError(self.not_ready_reason)
        now = time.monotonic()
        if now - self._last_ping_warning >= _PING_WARNING_INTERVAL_S:  # pings come every few seconds
            self._last_ping_warning = now
            log.warning("ping_not_ready", extra={"fields": {"reason": error.message}})
        return self._send(start_response, error.http_status, _error_body(error), "application/json")

    def _execution_parameters(self, method: str, start_response: StartResponse) -> Iterable[bytes]:
        """What Batch Transform asks before sending records: one plan per request, one per worker
        at a time, and a payload limit within AWS's ``MaxConcurrentTransforms × MaxPayloadInMB ≤ 100``."""
        if method not in ("GET", "HEAD"):
            return self._error(start_response, MethodNotAllowedError("use GET", allow="GET, HEAD"))
        concurrency = max(1, min(100, self.options.workers))
        body = {
            "MaxConcurrentTransforms": concurrency,
            "BatchStrategy": "SINGLE_RECORD",
            "MaxPayloadInMB": max(1, min(100 // concurrency, self.options.max_request_size // 1_000_000)),
        }
        return self._send(start_response, 200, json.dumps(body).encode(), "application/json")

    def _invocations(self, environ: dict, method: str, start_response: StartResponse) -> Iterable[bytes]:
        started = time.monotonic()
        deadline = started + self.options.timeout
        request_id = (
            environ.get("HTTP_X_AMZN_SAGEMAKER_INFERENCE_ID")
            or environ.get("HTTP_X_REQUEST_ID")
            or uuid.uuid4().hex
        )[:64]
        fields: dict[str, Any] = {
            "request_id": request_id,
            "content_type": environ.get("CONTENT_TYPE", ""),
            "bytes_in": 0,
        }
        status, body, ctype, extra_headers = 500, b"", "application/json", []
        with self._count_lock:
            self._in_flight += 1
        try:
            if method != "POST":
                raise MethodNotAllowedError("use POST /invocations", allow="POST")
            if not self.ready:
                raise ModelNotReadyError(self.not_ready_reason)
            accept = negotiate(environ.get("HTTP_ACCEPT"), self.options.default_accept)
            header_overrides = parse_custom_attributes(environ.get("HTTP_X_AMZN_SAGEMAKER_CUSTOM_ATTRIBUTES"))
            check_content_type(environ.get("CONTENT_TYPE"))  # 415 before reading the body
            detection = self._read_and_detect(environ, header_overrides, deadline, fields)
            document = detection.to_geojson() if accept == "application/geo+json" else detection.to_response()
            body = json.dumps(document, separators=(",", ":")).encode("utf-8")
            status, ctype = 200, accept
            fields["rooms"] = len(detection.rooms)
            fields["image"] = [int(detection.width), int(detection.height)]
        except RoomkitError as exc:
            status, body = exc.http_status, _error_body(exc)
            fields["error_code"] = exc.code
            fields["error"] = exc.message
            if isinstance(exc, MethodNotAllowedError):
                extra_headers.append(("Allow", exc.allow))
            # An unread body (413, 408, early 4xx) is not our problem: gunicorn drains at most
            # 64 KiB of it for 5 s after the response, then closes the connection.
        except MemoryError:
            error = RoomkitError("the server ran out of memory on this plan", code="out_of_memory")
            status, body = 500, _error_body(error)
            fields["error_code"] = error.code
            log.exception("invocation_out_of_memory", extra={"fields": {"request_id": request_id}})
        except Exception as exc:  # noqa: BLE001 - every failure becomes a JSON 500
            error = RoomkitError(f"internal error ({type(exc).__name__}); request id {request_id}")
            status, body = 500, _error_body(error)
            fields["error_code"] = error.code
            log.error("invocation_failed", exc_info=True, extra={"fields": {"request_id": request_id}})
        finally:
            with self._count_lock:
                self._in_flight -= 1
        width, height = fields.get("image", (0, 0))
        if max(fields.get("bytes_in", 0), fields.get("bytes_image", 0), 3 * width * height) > memory.RELEASE_AFTER_BYTES:
            memory.release()  # a large plan's pages go back to the system now, not 100 requests later
            fields["rss_mb"] = round(memory.rss_bytes() / 1e6)
        fields.update(status=status, bytes_out=len(body), ms=round((time.monotonic() - started) * 1000, 1))
        log.log(logging.INFO if status < 500 else logging.ERROR, "invocation", extra={"fields": fields})
        return self._send(start_response, status, body, ctype,
                          [("X-Request-Id", request_id), *extra_headers])

    def _read_and_detect(self, environ: dict, header_overrides: dict, deadline: float, fields: dict) -> Any:
        """Body (or S3 object) → payload → detection, holding one of the worker's buffers.

        The body is read first, into a temporary file when it is large (see ``SPOOL_BYTES``),
        without holding anything a good request needs: an upload that stalls costs one thread
        for ``BODY_IDLE_TIMEOUT_S``. Only then is it loaded, under one of the worker's
        ``BUFFERED_BODIES`` memory slots (one plan detecting, one waiting), so queued scans
        wait on disk rather than in memory.
        """
        spool = read_body(environ, self.options.max_request_size, deadline)
        fields["bytes_in"] = spool.tell()
        if not self._buffers.acquire(timeout=max(0.0, deadline - time.monotonic())):
            spool.close()
            raise ProcessingTimeoutError(
                f"the worker stayed busy for the whole {self.options.timeout:g} s request timeout"
            )
        try:
            spool.seek(0)
            raw = spool.read()
            spool.close()
            payload = parse_payload(raw, environ.get("CONTENT_TYPE"), self.s3)
            del raw
            fields["source"] = payload.source
            if payload.source != "body":
                fields["bytes_image"] = len(payload.data)
            config = request_config(self.config, {**header_overrides, **dict(payload.overrides)})
            if config.backend != "rules" and self.model is None:
                raise BackendUnavailableError(
                    f"backend {config.backend!r} needs a learned model and this endpoint has none usable: "
                    f"{self.model_problem}; this endpoint serves backend {self.config.backend!r}")
            box = [payload]  # the detection thread takes it: the bytes are freed once decoded
            del payload
            return self._run_detection(box, config, deadline)
        finally:
            self._buffers.release()

    # -- detection under the worker's single slot, with a deadline -----------------------------
    def _run_detection(self, box: list[Payload], config: DetectorConfig, deadline: float) -> Any:
        engine = self._engine
        assert engine is not None
        # Only the learned and hybrid backends take the model (and an injected engine may not).
        model_args = {"model": self.model} if config.backend != "rules" else {}
        if not self._slot.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise ProcessingTimeoutError(
                f"no detector free within the {self.options.timeout:g} s request timeout "
                "(the worker is busy with earlier requests)"
            )
        outcome: dict[str, Any] = {}
        done = threading.Event()

        def work() -> None:
            try:
                payload = box.pop()
                # Straight to what the detector reads (8-bit grey): a third of the colour
                # array, and 16-bit or alpha images never exist at full depth.
                image = engine.load_image(
                    payload.data,
                    content_type=payload.content_type,
                    max_pixels=config.max_pixels,
                    pdf_dpi=config.pdf_dpi,
                    gray=True,
                )
                del payload  # the encoded bytes are not needed past decoding
                outcome["result"] = engine.detect_rooms(image, config, **model_args)
                del image
            except BaseException as exc:  # noqa: BLE001 - handed to the request thread
                outcome["error"] = exc
            finally:
                self._slot.release()
                done.set()

        # A daemon thread: if it overruns, the request is answered and the worker recycled
        # without waiting for it.
        threading.Thread(target=work, name="roomkit-detect", daemon=True).start()
        if not done.wait(timeout=max(0.0, deadline - time.monotonic())):
            self._recycle("a detection overran the request timeout")
            raise ProcessingTimeoutError(
                f"decoding and detection did not finish within {self.options.timeout:g} s "
                "(SAGEMAKER_MODEL_SERVER_TIMEOUT)"
            )
        if "error" in outcome:
            raise outcome["error"]
        return outcome["result"]

    def _recycle(self, reason: str) -> None:
        """Ask gunicorn to replace this worker (graceful: other in-flight requests finish)."""
        if os.environ.get("ROOMKIT_SERVING_WORKER") == "1":
            log.error("worker_recycle", extra={"fields": {"reason": reason}})
            os.kill(os.getpid(), signal.SIGTERM)

    # -- responses -------------------------------------------------------------------------------
    def _error(self, start_response: StartResponse, error: RoomkitError) -> Iterable[bytes]:
        headers = [("Allow", error.allow)] if isinstance(error, MethodNotAllowedError) else []
        return self._send(start_response, error.http_status, _error_body(error), "application/json", headers)

    @staticmethod
    def _send(
        start_response: StartResponse,
        status: int,
        body: bytes,
        content_type: str | None,
        headers: list[tuple[str, str]] | None = None,
    ) -> list[bytes]:
        out = [("Content-Length", str(len(body)))]
        if content_type:
            out.append(("Content-Type", content_type))
        out.extend(headers or [])
        start_response(f"{status} {_REASONS.get(status, 'Status')}", out)
        return [body]


def request_config(model: DetectorConfig, overrides: dict[str, Any]) -> DetectorConfig:
    """The model's config with a request's overrides, which may only *tighten* the resource
    limits: a caller cannot make a worker decode, render or process more than config.json allows
    (two 671-byte PDFs asking for pdf_dpi=1200 would otherwise take a worker to 11 GB)."""
    config = model.with_overrides(overrides)
    for name in RESOURCE_LIMITS:
        asked, ceiling = getattr(config, name), getattr(model, name)
        if asked > ceiling:
            raise LimitExceededError(
                f"config.{name}={asked} is above this model's limit of {ceiling} (its config.json); "
                f"a request may only lower {', '.join(RESOURCE_LIMITS)}"
            )
    return config


def negotiate(accept: str | None, default: str) -> str:
    """The response type for an ``Accept`` header; 406 when none fits.

    Each type the server offers takes the q-value of the most specific range that matches it
    (``application/geo+json`` over ``application/*`` over ``*/*``, RFC 9110 §12.5.1); the
    highest q wins, then a type named outright over a wildcard match, then the default type.
    """
    if not accept or not accept.strip():
        return default
    ranges: list[tuple[str, float]] = []
    for item in accept.split(","):
        parts = [p.strip() for p in item.split(";")]
        mtype = _ACCEPT_ALIASES.get(parts[0].lower(), parts[0].lower())
        q = 1.0
        for param in parts[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(1.0, max(0.0, float(value)))
                except ValueError:
                    q = 0.0
        if mtype:
            ranges.append((mtype, q))
    offers = [default] + [t for t in RESPONSE_TYPES if t != default]
    best, best_score = default, (0.0, False)
    for offered in offers:
        matches = [(rank, q) for mtype, q in ranges
                   for rank, pattern in enumerate((offered, offered.split("/")[0] + "/*", "*/*"))
                   if mtype == pattern]
        if not matches:
            continue
        rank, q = min(matches)  # the most specific range decides
        score = (q, rank == 0)  # at equal q, a type named outright beats one reached by a wildcard
        if q > 0 and score > best_score:
            best, best_score = offered, score
    if best_score[0] <= 0.0:
        raise NotAcceptableError(
            f"cannot answer with {accept!r}; the server produces {' or '.join(RESPONSE_TYPES)}"
        )
    return best


def read_body(environ: dict, limit: int, deadline: float, idle: float = BODY_IDLE_TIMEOUT_S) -> BinaryIO:
    """The request body as a file positioned at its end (in memory up to ``SPOOL_BYTES``, on
    disk above), refused above ``limit`` bytes (before reading when the length is known), 408
    when no byte arrives for ``idle`` seconds or the request deadline passes."""
    length_raw = environ.get("CONTENT_LENGTH") or ""
    try:
        length = int(length_raw) if length_raw.strip() else None
    except ValueError:
        raise BadRequestError(f"invalid Content-Length {length_raw!r}") from None
    if length is not None and length > limit:
        raise PayloadTooLargeError(
            f"the body is {length} bytes, over the server's limit of {limit} bytes (SAGEMAKER_MAX_REQUEST_SIZE)"
        )
    stream = environ["wsgi.input"]
    sock = environ.get("gunicorn.socket")
    spool: BinaryIO = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # type: ignore[assignment]
    total = 0
    try:
        while length is None or total < length:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout
            if sock is not None:
                sock.settimeout(max(0.001, min(idle, left)))
            want = _READ_CHUNK if length is None else min(_READ_CHUNK, length - total)
            chunk = stream.read(want)
            if not chunk:
                break
            spool.write(chunk)
            total += len(chunk)
            if total > limit:
                raise PayloadTooLargeError(
                    f"the body is over the server's limit of {limit} bytes (SAGEMAKER_MAX_REQUEST_SIZE)"
                )
    except _PARSE_ERRORS as exc:  # a broken chunked encoding, found while reading the body
        spool.close()
        raise BadRequestError(f"malformed request body: {exc}") from None
    except (socket.timeout, TimeoutError):
        spool.close()
        raise RequestTimeoutError(
            f"the body stopped arriving after {total} bytes (no data for {idle:g} s, or the request "
            "timeout passed)"
        ) from None
    except BaseException:
        spool.close()
        raise
    finally:
        if sock is not None:
            sock.settimeout(None)
    if length is not None and total < length:
        spool.close()
        raise BadRequestError(f"the body ended after {total} of {length} bytes")
    return spool


def _error_body(error: RoomkitError) -> bytes:
    return json.dumps(error.to_dict(), separators=(",", ":")).encode("utf-8")


_REASONS = {
    200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    406: "Not Acceptable", 408: "Request Timeout", 413: "Content Too Large",
    415: "Unsupported Media Type", 422: "Unprocessable Content", 500: "Internal Server Error",
    502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
}


def create_app(options: ServerOptions | None = None, engine: Engine | None = None) -> RoomkitApp:
    """The WSGI app for one worker (gunicorn calls this after forking each worker)."""
    return RoomkitApp(options or ServerOptions.resolve(), engine)
