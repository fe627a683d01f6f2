"""The runtime's own way into moto's S3 and SNS: calls on moto's backends in this process.

SageMaker's async queue reads inputs, writes outputs and publishes notifications from inside
AWS, not through the user's SDK. The local runtime stands in for that service side, so it reaches
moto's S3 and SNS directly instead of through botocore and HTTP: every job used to cost four
botocore round trips (HeadObject, GetObject, PutObject, Publish) on the same two cores as the
serving workers, about half of local mode's CPU per job. User code is unaffected: notebooks,
submit, the trigger and the tests still talk to moto over HTTP with boto3.

The two classes expose the small slice of the boto3 client interface that
:class:`roomkit.local.runtime_models.AsyncRuntime` uses and raise ``botocore``'s ``ClientError``
with the codes the HTTP path produces, so the runtime does not know which it was given. They
call moto's backend API (``put_object``, ``get_object``, ``publish``), which is not a public
interface: moto is pinned in ``requirements.lock`` and ``tests/test_local_service_access.py``
checks these adapters against the boto3 path.
"""
from __future__ import annotations

import io
from typing import Any

from botocore.exceptions import ClientError


def _client_error(operation: str, code: str, message: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message},
         "ResponseMetadata": {"HTTPStatusCode": status}},
        operation,
    )


class BackendS3:
    """HeadObject, GetObject and PutObject on moto's S3 backend of ``account_id``."""

    def __init__(self, account_id: str, region: str = "us-east-1") -> None:
        from moto.s3.models import s3_backends
        from moto.utilities.utils import get_partition

        self._backends = s3_backends
        self.account_id = account_id
        self.partition = get_partition(region)

    @property
    def _backend(self) -> Any:
        return self._backends[self.account_id][self.partition]

    def _bucket(self, operation: str, bucket: str) -> Any:
        from moto.s3.exceptions import MissingBucket

        try:
            return self._backend.get_bucket(bucket)
        except MissingBucket:
            code = "404" if operation == "HeadObject" else "NoSuchBucket"
            raise _client_error(operation, code, "The specified bucket does not exist", 404) from None

    def _key(self, operation: str, bucket: str, key: str) -> Any:
        self._bucket(operation, bucket)
        obj = self._backend.get_object(bucket, key)
        if obj is None:
            # HEAD has no body, so botocore reports the bare status as the code
            code = "404" if operation == "HeadObject" else "NoSuchKey"
            raise _client_error(operation, code, "The specified key does not exist.", 404)
        return obj

    def head_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:
        obj = self._key("HeadObject", Bucket, Key)
        return {"ContentLength": obj.size, "ContentType": obj.metadata.get("Content-Type"),
                "ETag": obj.etag}

    def get_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:
        obj = self._key("GetObject", Bucket, Key)
        return {"Body": io.BytesIO(obj.value), "ContentLength": obj.size,
                "ContentType": obj.metadata.get("Content-Type"), "ETag": obj.etag}

    def put_object(self, *, Bucket: str, Key: str, Body: bytes, ContentType: str | None = None) -> dict[str, Any]:
        """What moto's PutObject handler does for a plain put: store (which also sends the
        bucket's event notifications), then set the content type and the bucket's ACL."""
        bucket = self._bucket("PutObject", Bucket)
        obj = self._backend.put_object(Bucket, Key, bytes(Body), storage="STANDARD")
        obj.set_metadata({"Content-Type": ContentType} if ContentType else {})
        obj.set_acl(bucket.acl)
        return {"ETag": obj.etag}


class BackendSNS:
    """Publish on moto's SNS backend of the topic's account and region (both from its ARN)."""

    def __init__(self) -> None:
        from moto.sns.models import sns_backends

        self._backends = sns_backends

    def publish(self, *, TopicArn: str, Message: str) -> dict[str, Any]:
        from moto.sns.exceptions import SNSNotFoundError

        parts = TopicArn.split(":")
        if len(parts) < 6 or parts[2] != "sns":
            raise _client_error("Publish", "InvalidParameter",
                                f"Invalid parameter: TopicArn Reason: {TopicArn!r} is not an SNS topic ARN", 400)
        region, account = parts[3], parts[4]
        try:
            message_id = self._backends[account][region].publish(message=Message, arn=TopicArn)
        except SNSNotFoundError as exc:
            raise _client_error("Publish", "NotFound", str(exc.message), 404) from None
        return {"MessageId": message_id}
