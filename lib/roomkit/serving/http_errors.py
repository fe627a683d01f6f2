"""Errors only the HTTP layer raises, each with its stable ``code`` and status.

Input and config problems the detector side already knows (``empty_input``,
``undecodable_image``, ``unsupported_media_type``, ``image_too_large``, ``invalid_config``) come
from :mod:`roomkit.errors`; these add what only a server can get wrong: routes, methods,
negotiation, sizes, S3 fetches, timeouts and readiness. Every one renders as
``{"status": "error", "error": {"code", "message"}}``.
"""
from __future__ import annotations

from roomkit.errors import ConfigError, InputError, RoomkitError


class BadRequestError(InputError):
    """A JSON body that is not what ``/invocations`` takes (bad JSON, no image, unknown key)."""

    code = "bad_request"
    http_status = 400


class LimitExceededError(ConfigError):
    """A per-request ``config`` asks for more than the model's config.json allows
    (``max_pixels``, ``pdf_dpi``, ``working_resolution``): requests may only tighten limits."""

    code = "limit_exceeded"
    http_status = 400


class BackendUnavailableError(ConfigError):
    """A request asks for the ``learned`` or ``hybrid`` backend on an endpoint whose model
    directory holds no usable ``model.onnx`` (the endpoint itself serves ``rules``)."""

    code = "backend_unavailable"
    http_status = 400


class InvalidBase64Error(InputError):
    code = "invalid_base64"
    http_status = 400


class InvalidS3UriError(InputError):
    code = "invalid_s3_uri"
    http_status = 400


class NotFoundError(InputError):
    code = "not_found"
    http_status = 404


class MethodNotAllowedError(InputError):
    code = "method_not_allowed"
    http_status = 405

    def __init__(self, message: str, *, allow: str) -> None:
        super().__init__(message)
        self.allow = allow


class NotAcceptableError(InputError):
    code = "not_acceptable"
    http_status = 406


class RequestTimeoutError(InputError):
    """The client stopped sending its body before the per-request deadline."""

    code = "request_timeout"
    http_status = 408


class PayloadTooLargeError(InputError):
    """The body (or the S3 object) is larger than ``SAGEMAKER_MAX_REQUEST_SIZE``."""

    code = "payload_too_large"
    http_status = 413


class S3ObjectNotFoundError(InputError):
    code = "s3_object_not_found"
    http_status = 404


class S3AccessDeniedError(InputError):
    code = "s3_access_denied"
    http_status = 403


class S3FetchError(RoomkitError):
    """S3 answered with something other than the object, or could not be reached."""

    code = "s3_error"
    http_status = 502


class ModelNotReadyError(RoomkitError):
    """The worker could not load its configuration; it refuses to serve wrong results."""

    code = "model_not_ready"
    http_status = 503


class ProcessingTimeoutError(RoomkitError):
    """Decoding and detection did not finish within ``SAGEMAKER_MODEL_SERVER_TIMEOUT``."""

    code = "processing_timeout"
    http_status = 504
