"""Typed errors shared by the detector, the server and the AWS tooling.

Every error carries a stable machine-readable ``code`` and the HTTP status the server answers
with, so the same failure reads the same in the CLI, over HTTP and in an async failure object.
"""
from __future__ import annotations


class RoomkitError(Exception):
    """Base class: something roomkit refuses or cannot do, with a clear message."""

    code = "internal_error"
    http_status = 500

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def to_dict(self) -> dict:
        """The error body the API returns: ``{"status": "error", "error": {code, message}}``."""
        return {"status": "error", "error": {"code": self.code, "message": self.message}}


class InputError(RoomkitError):
    """The caller sent something that is not a usable plan (4xx)."""

    code = "bad_input"
    http_status = 400


class EmptyInputError(InputError):
    code = "empty_input"


class DecodeError(InputError):
    """Bytes that claim or look like an image but cannot be decoded (truncated, corrupt)."""

    code = "undecodable_image"


class UnsupportedTypeError(InputError):
    code = "unsupported_media_type"
    http_status = 415


class ImageTooLargeError(InputError):
    """Declared dimensions exceed the configured pixel limit (checked before decoding)."""

    code = "image_too_large"
    http_status = 413


class ConfigError(RoomkitError):
    """A detector or deployment configuration names an unknown key or holds a bad value."""

    code = "invalid_config"
    http_status = 400
