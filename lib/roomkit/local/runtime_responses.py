"""The ``sagemaker-runtime`` REST protocol on loopback, over :mod:`roomkit.local.runtime_models`.

Routes (botocore's service model, ``rest-json``):

- ``POST /endpoints/{EndpointName}/async-invocations`` (InvokeEndpointAsync) → 202,
  ``{"InferenceId"}`` body, ``X-Amzn-SageMaker-OutputLocation``/``-FailureLocation`` headers;
- ``POST /endpoints/{EndpointName}/invocations`` (InvokeEndpoint) → 200 with the model's body;
- ``GET /_roomkit/health`` and ``GET /_roomkit/queues`` (local introspection, not AWS).

Errors are rendered the way AWS renders them: the status of the error shape, an
``x-amzn-ErrorType`` header naming it, and a JSON body with ``Message`` (plus the modeled fields
of ``ModelError``), so a plain boto3 client raises ``ClientError`` with the same code.
Header validation follows the shapes' constraints and AWS's "N validation error(s) detected"
wording.
"""
from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from typing import Any, Callable, Iterable

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from roomkit.local.runtime_models import INLINE_BODY_LIMIT, ApiError, AsyncRuntime

log = logging.getLogger(__name__)

_ENDPOINT_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")
_ASCII = re.compile(r"^[\x00-\x7f]*$")
_INFERENCE_ID = re.compile(r"^\S[\x20-\x7e]*$")
_INPUT_LOCATION = re.compile(r"^(https|s3)://([^/]+)/?(.*)$")
_PATH_EXTENSION = re.compile(r"^(?!s3:|https:)[a-zA-Z0-9!_.*'()/-]+$")
_FILENAME = re.compile(r"^(?!.*\..*\.)[a-zA-Z0-9][a-zA-Z0-9\-_.]*$")

H = "X-Amzn-SageMaker-"


class _Validator:
    """Collects constraint violations the way AWS words them."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def string(self, member: str, value: str | None, *, min_len: int = 0, max_len: int,
               pattern: re.Pattern[str] | None = None) -> str | None:
        if value is None:
            return None
        if len(value) < min_len:
            self._add(member, value, f"Member must have length greater than or equal to {min_len}")
        elif len(value) > max_len:
            self._add(member, value, f"Member must have length less than or equal to {max_len}")
        elif pattern is not None and not pattern.match(value):
            self._add(member, value, f"Member must satisfy regular expression pattern: {pattern.pattern}")
        return value

    def integer(self, member: str, value: str | None, *, low: int, high: int) -> int | None:
        if value is None:
            return None
        try:
            number = int(value.strip())
        except ValueError:
            self._add(member, value, "Member must be an integer")
            return None
        if number < low:
            self._add(member, value, f"Member must have value greater than or equal to {low}")
        elif number > high:
            self._add(member, value, f"Member must have value less than or equal to {high}")
        return number

    def _add(self, member: str, value: str, constraint: str) -> None:
        shown = value if len(value) <= 256 else value[:256] + "..."
        self.errors.append(f"Value '{shown}' at '{member}' failed to satisfy constraint: {constraint}")

    def raise_if_any(self) -> None:
        if self.errors:
            n = len(self.errors)
            raise ApiError(
                "ValidationError",
                f"{n} validation error{'s' if n > 1 else ''} detected: " + "; ".join(self.errors),
            )


def _header(request: Request, name: str) -> str | None:
    """A header value as the client meant it: botocore sends UTF-8 bytes (an S3 key with 'ü'),
    which WSGI hands over decoded as Latin-1; undo that when the bytes are valid UTF-8."""
    value = request.headers.get(name)
    if value is None:
        return None
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


class RuntimeApp:
    """WSGI application speaking the sagemaker-runtime protocol."""

    def __init__(self, runtime: AsyncRuntime) -> None:
        self.runtime = runtime
        self.url_map = Map([
            Rule("/endpoints/<name>/async-invocations", endpoint="invoke_async", methods=["POST"]),
            Rule("/endpoints/<name>/invocations", endpoint="invoke", methods=["POST"]),
            Rule("/endpoints/<name>/invocations-response-stream", endpoint="invoke_stream", methods=["POST"]),
            Rule("/_roomkit/health", endpoint="health", methods=["GET"]),
            Rule("/_roomkit/queues", endpoint="queues", methods=["GET"]),
            Rule("/ping", endpoint="health", methods=["GET"]),
        ])

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        request = Request(environ)
        request_id = str(uuid.uuid4())
        try:
            adapter = self.url_map.bind_to_environ(environ)
            endpoint, args = adapter.match()
            response = getattr(self, "on_" + endpoint)(request, **args)
        except ApiError as exc:
            response = self._error(exc)
        except NotFound:
            response = self._error(ApiError("UnknownOperationException",
                                            f"No operation matches {request.method} {request.path}", 404))
        except MethodNotAllowed:
            response = self._error(ApiError("UnknownOperationException",
                                            f"No operation matches {request.method} {request.path}", 405))
        except HTTPException as exc:  # pragma: no cover (werkzeug's own 4xx)
            response = self._error(ApiError("ValidationError", exc.description or str(exc), exc.code or 400))
        except Exception as exc:  # noqa: BLE001 (the API answers InternalFailure, never a crash)
            log.exception("runtime request %s %s failed", request.method, request.path)
            response = self._error(ApiError("InternalFailure", f"An internal failure occurred: {exc}", 500))
        response.headers["x-amzn-RequestId"] = request_id
        return response(environ, start_response)

    # -- operations ----------------------------------------------------------------------------
    def on_invoke_async(self, request: Request, name: str) -> Response:
        v = _Validator()
        v.string("endpointName", name, max_len=63, pattern=_ENDPOINT_NAME)
        content_type = v.string("contentType", _header(request, H + "Content-Type"), max_len=1024, pattern=_ASCII)
        accept = v.string("accept", _header(request, H + "Accept"), max_len=1024, pattern=_ASCII)
        custom = v.string("customAttributes", _header(request, H + "Custom-Attributes"), max_len=1024, pattern=_ASCII)
        inference_id = v.string("inferenceId", _header(request, H + "Inference-Id"), min_len=1, max_len=64,
                                pattern=_INFERENCE_ID)
        input_location = v.string("inputLocation", _header(request, H + "InputLocation"), min_len=1, max_len=1024,
                                  pattern=_INPUT_LOCATION)
        extension = v.string("s3OutputPathExtension", _header(request, H + "S3OutputPathExtension"), min_len=1,
                             max_len=512, pattern=_PATH_EXTENSION)
        filename = v.string("filename", _header(request, H + "Filename"), min_len=1, max_len=32, pattern=_FILENAME)
        ttl = v.integer("requestTTLSeconds", _header(request, H + "RequestTTLSeconds"), low=60, high=21600)
        timeout = v.integer("invocationTimeoutSeconds", _header(request, H + "InvocationTimeoutSeconds"), low=1, high=3600)
        body = request.get_data(cache=False) or None
        if body is not None and len(body) > INLINE_BODY_LIMIT:
            v.errors.append(f"Value at 'body' failed to satisfy constraint: Member must have length "
                            f"less than or equal to {INLINE_BODY_LIMIT}")
        v.raise_if_any()
        job = self.runtime.invoke_async(
            name, input_location=input_location, body=body if input_location is None else None,
            content_type=content_type, accept=accept, custom_attributes=custom,
            inference_id=inference_id, request_ttl_s=ttl, invocation_timeout_s=timeout,
            output_path_extension=extension, filename=filename,
        )
        resp = _json({"InferenceId": job.inference_id}, 202)
        resp.headers[H + "OutputLocation"] = job.output_location
        resp.headers[H + "FailureLocation"] = job.failure_location
        return resp

    def on_invoke(self, request: Request, name: str) -> Response:
        v = _Validator()
        v.string("endpointName", name, max_len=63, pattern=_ENDPOINT_NAME)
        content_type = v.string("contentType", _header(request, "Content-Type"), max_len=1024, pattern=_ASCII)
        accept = v.string("accept", _header(request, "Accept"), max_len=1024, pattern=_ASCII)
        custom = v.string("customAttributes", _header(request, H + "Custom-Attributes"), max_len=1024, pattern=_ASCII)
        v.raise_if_any()
        reply, spec = self.runtime.invoke(
            name, request.get_data(cache=False), content_type=content_type,
            accept=None if accept in (None, "*/*") else accept, custom_attributes=custom,
        )
        resp = Response(reply.body, status=200, content_type=reply.content_type)
        resp.headers["x-Amzn-Invoked-Production-Variant"] = spec.variant_name
        if reply.custom_attributes:
            resp.headers[H + "Custom-Attributes"] = reply.custom_attributes
        return resp

    def on_invoke_stream(self, request: Request, name: str) -> Response:
        raise ApiError("ValidationError",
                       "InvokeEndpointWithResponseStream is not supported by the local runtime.")

    def on_health(self, request: Request) -> Response:
        return _json({"status": "ok"}, 200)

    def on_queues(self, request: Request) -> Response:
        return _json({"endpoints": self.runtime.stats(),
                      "notifications_sent": self.runtime.notifications_sent}, 200)

    # -- rendering -----------------------------------------------------------------------------
    @staticmethod
    def _error(exc: ApiError) -> Response:
        body: dict[str, Any] = {"Message": exc.message}
        body.update(exc.fields)
        resp = _json(body, exc.status)
        resp.headers["x-amzn-ErrorType"] = exc.code
        return resp


def _json(payload: Any, status: int) -> Response:
    return Response(json.dumps(payload), status=status, content_type="application/json")


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:  # noqa: D401 (no access log)
        return None


class RuntimeServer:
    """The runtime's HTTP server on 127.0.0.1 (a free port unless one is given), in a thread."""

    def __init__(self, runtime: AsyncRuntime, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = RuntimeApp(runtime)
        self.host = host
        self.port = port
        self._server = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "RuntimeServer":
        self._server = make_server(self.host, self.port, self.app, threaded=True,
                                   request_handler=_QuietHandler)
        self._server.daemon_threads = True
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, name="roomkit-runtime-http",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
