"""Resolve what a user hands to ``submit``/``transform`` into a list of plans to send.

Local paths (files, or directories searched recursively for plan files) and ``s3://`` URIs
(objects, or prefixes ending in ``/`` or naming no object) become :class:`PlanInput` records
with a content type and a content hash. Everything is checked before anything is uploaded, so
a typo in the 300th path fails the call up front instead of half-way through a batch.

No AWS call is made for local files; S3 inputs cost one HEAD, plus a ranged GET of the first
KiB when neither the object's ContentType nor its extension says what it is. Magic bytes are
read by :mod:`roomkit.plans.mediatypes`, the same code the decoder uses.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from roomkit.errors import InputError
from roomkit.plans.mediatypes import SNIFF_BYTES, sniff_type

# Content types the serving container accepts, by extension.
EXTENSION_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".webp": "image/webp",
    ".bmp": "image/bmp",
    ".gif": "image/gif",
    ".pdf": "application/pdf",
}
SUPPORTED_TYPES = frozenset(EXTENSION_TYPES.values())
_GENERIC_TYPES = {"", "binary/octet-stream", "application/octet-stream", "application/x-www-form-urlencoded"}
_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class PlanInput:
    """One plan to send: where it comes from, what it is, and a hash that identifies its bytes.

    ``source`` is what the user named (a local path or an ``s3://`` URI); ``s3_uri`` is set for
    inputs already in S3. ``digest`` is the SHA-256 of the bytes for local files and the S3 ETag
    (an MD5 for single-part uploads) for S3 objects, prefixed by its kind.
    """

    source: str
    content_type: str
    digest: str
    size: int
    local_path: Path | None = None
    s3_uri: str | None = None

    @property
    def filename(self) -> str:
        if self.local_path is not None:
            return self.local_path.name
        return (self.s3_uri or self.source).rstrip("/").rsplit("/", 1)[-1]


def content_type_for(name: str, head: bytes = b"") -> str | None:
    """Magic bytes first (a PNG named ``.jpg`` is still a PNG), then the extension."""
    return sniff_type(head) or EXTENSION_TYPES.get(Path(name).suffix.lower())


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` → ``(bucket, key)``; a clear error for anything else."""
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise InputError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    if not bucket:
        raise InputError(f"S3 URI has no bucket: {uri!r}")
    return bucket, key


def s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(_HASH_CHUNK), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def resolve_inputs(items: Iterable[str | os.PathLike[str]] | str | os.PathLike[str], s3: Any = None) -> list[PlanInput]:
    """Expand paths and S3 URIs into plans, in the order given, each source once.

    ``items`` may be any iterable (a generator of paths); each file is read once to hash it and
    only its small :class:`PlanInput` record is kept.

    Directories and S3 prefixes contribute the files with a supported type, sorted by name;
    a file named explicitly must be a supported type (by magic bytes or extension), otherwise
    :class:`~roomkit.errors.InputError` names every offending input at once.
    """
    if isinstance(items, (str, os.PathLike)):
        items = [items]
    named: list[str] = []  # the first few, for the error message
    plans: list[PlanInput] = []
    problems: list[str] = []
    seen: set[str] = set()

    def add(plan: PlanInput) -> None:
        key = plan.s3_uri or str(plan.local_path)
        if key not in seen:
            seen.add(key)
            plans.append(plan)

    for item in items:
        text = os.fspath(item)
        if len(named) < 5:
            named.append(text)
        if text.startswith("s3://"):
            if s3 is None:
                raise InputError("S3 inputs need an S3 client")
            try:
                for plan in _resolve_s3(text, s3):
                    add(plan)
            except InputError as exc:
                problems.append(exc.message)
            continue
        path = Path(text).expanduser()
        if path.is_dir():
            found = [p for p in sorted(path.rglob("*")) if p.is_file() and not _hidden(p, path)]
            for p in found:
                plan = _local_plan(p, explicit=False)
                if plan is not None:
                    add(plan)
        elif path.is_file():
            try:
                plan = _local_plan(path, explicit=True)
            except InputError as exc:
                problems.append(exc.message)
                continue
            assert plan is not None
            add(plan)
        else:
            problems.append(f"{text}: no such file or directory")
    if problems:
        raise InputError("cannot submit: " + "; ".join(problems))
    if not plans:
        raise InputError("no plans found in " + (", ".join(named) or "an empty list"))
    return plans


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _local_plan(path: Path, *, explicit: bool) -> PlanInput | None:
    with path.open("rb") as fh:
        head = fh.read(SNIFF_BYTES)
    ctype = content_type_for(path.name, head)
    if ctype is None:
        if explicit:
            raise InputError(
                f"{path}: not a supported plan type (by content or extension: "
                f"{', '.join(sorted(EXTENSION_TYPES))})"
            )
        return None
    return PlanInput(
        source=str(path),
        content_type=ctype,
        digest=file_digest(path),
        size=path.stat().st_size,
        local_path=path.resolve(),
    )


def _resolve_s3(uri: str, s3: Any) -> Iterable[PlanInput]:
    from botocore.exceptions import ClientError

    bucket, key = parse_s3_uri(uri)
    if key and not key.endswith("/"):
        try:
            head = s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code not in ("404", "NoSuchKey", "NotFound"):
                raise InputError(f"{uri}: {_client_error_text(exc)}") from exc
        else:
            plan = _s3_plan(s3, bucket, key, head, explicit=True)
            assert plan is not None
            return [plan]
    prefix = key if (not key or key.endswith("/")) else key + "/"
    plans = []
    paginator = s3.get_paginator("list_objects_v2")
    try:
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                if obj["Key"].endswith("/"):
                    continue
                plan = _s3_plan(s3, bucket, obj["Key"], obj, explicit=False)
                if plan is not None:
                    plans.append(plan)
    except ClientError as exc:
        raise InputError(f"{uri}: {_client_error_text(exc)}") from exc
    if not plans:
        raise InputError(f"{uri}: no object and no plans under that prefix")
    return sorted(plans, key=lambda p: p.s3_uri or "")


def _s3_plan(s3: Any, bucket: str, key: str, meta: dict, *, explicit: bool) -> PlanInput | None:
    uri = s3_uri(bucket, key)
    declared = str(meta.get("ContentType", "")).split(";")[0].strip().lower()
    ctype = declared if declared in SUPPORTED_TYPES else EXTENSION_TYPES.get(Path(key).suffix.lower())
    # Sniff (ranged GET of the first KiB) only where nothing else can tell: an object named explicitly,
    # or one without an extension whose declared type is generic.
    if ctype is None and (explicit or (not Path(key).suffix and declared in _GENERIC_TYPES)):
        body = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{SNIFF_BYTES - 1}")["Body"].read()
        ctype = sniff_type(body)
    if ctype is None:
        if explicit:
            raise InputError(f"{uri}: not a supported plan type ({declared or 'no content type'})")
        return None
    etag = str(meta.get("ETag", "")).strip('"')
    size = int(meta.get("ContentLength", meta.get("Size", 0)))
    # Uploaded by roomkit: the SHA-256 it recorded, so the plan keeps the identity it had locally.
    recorded = str((meta.get("Metadata") or {}).get("roomkit-plan-key", ""))
    digest = f"sha256:{recorded}" if len(recorded) == 64 else f"etag:{etag}"
    return PlanInput(source=uri, content_type=ctype, digest=digest, size=size, s3_uri=uri)


def _client_error_text(exc: Any) -> str:
    err = exc.response.get("Error", {})
    return f"{err.get('Code', 'error')}: {err.get('Message') or exc}"
