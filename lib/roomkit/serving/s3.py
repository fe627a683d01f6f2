"""Fetch ``{"s3_uri": ...}`` plans with plain boto3.

One client per worker process, created on first use (never at import). boto3 reads
``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3`` itself, so the same code reads from real S3 in
SageMaker (credentials from the execution role) and from the local mode's loopback S3.
"""
from __future__ import annotations

import os
import threading
from typing import Any

from roomkit.serving.http_errors import (
    PayloadTooLargeError,
    S3AccessDeniedError,
    S3FetchError,
    S3ObjectNotFoundError,
)

_CHUNK = 1 << 20


class S3Fetcher:
    """``fetch(bucket, key) -> (bytes, content_type)`` with the server's size limit applied."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._client: Any = None
        self._lock = threading.Lock()

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                import boto3  # the only AWS import of the server, deferred to the first s3_uri
                from botocore.config import Config

                region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
                self._client = boto3.session.Session().client(
                    "s3",
                    region_name=region or None,
                    config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=60),
                )
            return self._client

    def __call__(self, bucket: str, key: str) -> tuple[bytes, str | None]:
        from botocore.exceptions import BotoCoreError, ClientError

        uri = f"s3://{bucket}/{key}"
        try:
            obj = self.client().get_object(Bucket=bucket, Key=key)
            size = int(obj.get("ContentLength") or 0)
            if size > self.max_bytes:
                obj["Body"].close()
                raise PayloadTooLargeError(
                    f"{uri} is {size} bytes, over the server's limit of {self.max_bytes} bytes"
                )
            chunks, total = [], 0
            for chunk in obj["Body"].iter_chunks(_CHUNK):
                total += len(chunk)
                if total > self.max_bytes:
                    raise PayloadTooLargeError(f"{uri} is over the server's limit of {self.max_bytes} bytes")
                chunks.append(chunk)
            return b"".join(chunks), obj.get("ContentType")
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in ("NoSuchKey", "NoSuchBucket", "404", "NotFound") or status == 404:
                what = "bucket" if code == "NoSuchBucket" else "object"
                raise S3ObjectNotFoundError(f"{uri}: no such {what}") from None
            if code in ("AccessDenied", "403", "Forbidden", "AllAccessDisabled") or status == 403:
                raise S3AccessDeniedError(f"{uri}: access denied to the serving role") from None
            raise S3FetchError(f"{uri}: S3 answered {code or status}: {error.get('Message', '')}".rstrip(": ")) from None
        except BotoCoreError as exc:
            raise S3FetchError(f"{uri}: cannot read from S3: {exc}") from None
