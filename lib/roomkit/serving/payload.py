"""Turn an ``/invocations`` request body into image bytes, a type hint and config overrides.

Binary bodies are the plan itself (what SageMaker Async forwards from the S3 input object);
``application/json`` bodies carry the plan as ``image_base64`` or point at it with ``s3_uri``,
optionally with per-request ``config`` overrides. Overrides for binary bodies travel in
``X-Amzn-SageMaker-Custom-Attributes`` as ``config.<field>=<value>`` entries, which
InvokeEndpoint and InvokeEndpointAsync both forward verbatim.
"""
from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from roomkit.errors import EmptyInputError, UnsupportedTypeError
from roomkit.serving.http_errors import BadRequestError, InvalidBase64Error, InvalidS3UriError

# Content types decoded as what they say (the decoder still checks the bytes).
IMAGE_TYPES = (
    "image/png", "image/jpeg", "image/tiff", "image/webp", "image/bmp", "image/gif", "application/pdf",
)
# Content types whose bytes are sniffed.
SNIFFED_TYPES = ("application/x-image", "application/octet-stream", "binary/octet-stream", "image/*")
JSON_TYPE = "application/json"
ACCEPTED_TYPES = IMAGE_TYPES + SNIFFED_TYPES + (JSON_TYPE,)
_ALIASES = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "image/tif": "image/tiff",
    "image/x-tiff": "image/tiff",
    "image/x-bmp": "image/bmp",
    "image/x-ms-bmp": "image/bmp",
    "image/x-png": "image/png",
    "application/x-pdf": "application/pdf",
}
_JSON_KEYS = ("image_base64", "s3_uri", "config", "content_type")
_S3_URI = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])/(?P<key>.+)$")
_DATA_URL = re.compile(r"^data:(?P<type>[\w.+\-/]+)?(?:;[\w=\-]+)*;base64,", re.IGNORECASE)

S3Fetcher = Callable[[str, str], tuple[bytes, "str | None"]]


@dataclass(frozen=True)
class Payload:
    """The plan bytes to decode, how to read them and what to change in the config."""

    data: bytes
    content_type: str | None  # None: sniff the bytes
    overrides: Mapping[str, Any] = field(default_factory=dict)
    source: str = "body"  # "body" | "image_base64" | "s3_uri"


def media_type(header: str | None) -> str:
    """``"Image/PNG; charset=x"`` → ``"image/png"``, aliases folded; ``""`` when absent."""
    mtype = (header or "").split(";", 1)[0].strip().lower()
    return _ALIASES.get(mtype, mtype)


def image_type(mtype: str) -> str | None:
    """The hint for the decoder: a concrete image type, or ``None`` to sniff."""
    if mtype in IMAGE_TYPES:
        return mtype
    if mtype in SNIFFED_TYPES or not mtype:
        return None
    raise UnsupportedTypeError(
        f"Content-Type {mtype!r} is not supported; send one of {', '.join(ACCEPTED_TYPES)}"
    )


def check_content_type(content_type: str | None) -> None:
    """Refuse an unsupported ``Content-Type`` (415) before the body is read."""
    mtype = media_type(content_type)
    if mtype != JSON_TYPE and not mtype.endswith("+json"):
        image_type(mtype)


def parse_payload(body: bytes, content_type: str | None, fetch_s3: S3Fetcher) -> Payload:
    """Bytes and headers in, :class:`Payload` out; raises a 4xx error for anything unusable."""
    mtype = media_type(content_type)
    if mtype == JSON_TYPE or mtype.endswith("+json"):
        return _parse_json(body, fetch_s3)
    hint = image_type(mtype)
    if not body:
        raise EmptyInputError("the request body is empty; send the plan's bytes")
    return Payload(data=body, content_type=hint)


def parse_custom_attributes(header: str | None) -> dict[str, Any]:
    """Config overrides from ``X-Amzn-SageMaker-Custom-Attributes``.

    Entries are separated by ``;`` or ``,``; those named ``config.<field>=<value>`` are
    overrides (values read as JSON when they parse, else as strings, so ``door_gap=null``
    resets a field); every other entry belongs to someone else and is ignored.
    """
    overrides: dict[str, Any] = {}
    for entry in re.split(r"[;,]", header or ""):
        name, sep, value = entry.strip().partition("=")
        if not sep or not name.strip().lower().startswith("config."):
            continue
        key = name.strip()[len("config."):]
        value = value.strip()
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    return overrides


def _parse_json(body: bytes, fetch_s3: S3Fetcher) -> Payload:
    if not body:
        raise EmptyInputError("the request body is empty; send {\"image_base64\": ...} or {\"s3_uri\": ...}")
    try:
        doc = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequestError(f"the body is not valid JSON: {exc}") from None
    except RecursionError:  # '[' x 200000: the parser recurses once per level
        raise BadRequestError("the JSON body is nested too deeply to be a request") from None
    if not isinstance(doc, dict):
        raise BadRequestError(f"the JSON body must be an object, got {type(doc).__name__}")
    unknown = sorted(set(doc) - set(_JSON_KEYS))
    if unknown:
        raise BadRequestError(
            f"unknown key(s) in the JSON body: {', '.join(unknown)} (known: {', '.join(_JSON_KEYS)})"
        )
    overrides = doc.get("config") or {}
    if not isinstance(overrides, dict):
        raise BadRequestError(f"'config' must be an object of detector settings, got {type(overrides).__name__}")
    hint_raw = doc.get("content_type")
    if hint_raw is not None and not isinstance(hint_raw, str):
        raise BadRequestError("'content_type' must be a string such as 'image/png'")
    hint = image_type(media_type(hint_raw)) if hint_raw else None

    has_b64, has_s3 = "image_base64" in doc, "s3_uri" in doc
    if has_b64 == has_s3:
        raise BadRequestError(
            "the JSON body needs exactly one of 'image_base64' (the plan, base64-encoded) "
            "or 's3_uri' ('s3://bucket/key')"
        )
    if has_b64:
        return Payload(_decode_base64(doc["image_base64"]), hint, overrides, "image_base64")

    uri = doc["s3_uri"]
    if not isinstance(uri, str):
        raise InvalidS3UriError("'s3_uri' must be a string such as 's3://bucket/plans/plan.png'")
    match = _S3_URI.match(uri.strip())
    if not match:
        raise InvalidS3UriError(f"{uri!r} is not an S3 object URI ('s3://bucket/key')")
    data, object_type = fetch_s3(match["bucket"], match["key"])
    if not data:
        raise EmptyInputError(f"{uri} is an empty object")
    if hint is None and object_type:
        try:
            hint = image_type(media_type(object_type))
        except UnsupportedTypeError:
            hint = None  # S3 metadata is often generic or wrong: let the bytes decide
    return Payload(data, hint, overrides, "s3_uri")


def _decode_base64(value: Any) -> bytes:
    if not isinstance(value, str):
        raise InvalidBase64Error(f"'image_base64' must be a string, got {type(value).__name__}")
    text = _DATA_URL.sub("", value.strip(), count=1)
    text = "".join(text.split())
    if not text:
        raise EmptyInputError("'image_base64' is empty")
    try:
        if "-" in text or "_" in text:  # the URL-safe alphabet
            text = text.translate(str.maketrans("-_", "+/"))
        if "=" not in text:  # tolerate stripped padding
            text += "=" * (-len(text) % 4)
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidBase64Error(f"'image_base64' is not valid base64: {exc}") from None
    if not data:
        raise EmptyInputError("'image_base64' decodes to no bytes")
    return data
