"""Small S3 and botocore helpers shared by submit, wait, results and transform.

Missing objects read as ``None`` rather than raising: S3 answers 403 instead of 404 for a
missing key when the caller may not list the bucket, so both mean "not there (as far as we can
tell)" to the pollers.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from roomkit.aws.inputs import parse_s3_uri

_MISSING = ("404", "NoSuchKey", "NotFound", "403", "AccessDenied")


def head(s3: Any, uri: str | None) -> dict | None:
    """HeadObject of an ``s3://`` URI, or ``None`` when it is not there."""
    from botocore.exceptions import ClientError

    if not uri:
        return None
    bucket, key = parse_s3_uri(uri)
    try:
        return s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code", "") in _MISSING:
            return None
        raise


def exists(s3: Any, uri: str | None) -> bool:
    return head(s3, uri) is not None


def read(s3: Any, uri: str | None) -> tuple[bytes | None, datetime | None]:
    """``(body, LastModified)`` of an ``s3://`` URI, or ``(None, None)`` when it is not there."""
    from botocore.exceptions import ClientError

    if not uri:
        return None, None
    bucket, key = parse_s3_uri(uri)
    try:
        obj = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code", "") in _MISSING:
            return None, None
        raise
    return obj["Body"].read(), obj.get("LastModified")


def is_aws_error(exc: BaseException) -> bool:
    """An error from AWS or botocore (worth recording on a job), not a bug in our code."""
    from botocore.exceptions import BotoCoreError, ClientError

    return isinstance(exc, (ClientError, BotoCoreError))


def error_text(exc: BaseException) -> str:
    """``Code: Message`` of a botocore error, for job records and logs."""
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', 'Error')}: {err.get('Message') or exc}"
    return str(exc)


def progress_bar(**kwargs: Any) -> Any:
    """A tqdm bar that renders as a widget in Jupyter and as text in a terminal."""
    from tqdm.auto import tqdm

    return tqdm(**kwargs)
