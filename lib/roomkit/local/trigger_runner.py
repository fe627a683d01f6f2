"""Runs the upload-trigger Lambda handler locally, the way Lambda's SQS event source mapping does.

In local mode the deploy code points the bucket notification at an SQS queue tagged
``roomkit:trigger-env`` (a JSON object: the handler's environment variables). Every
``interval_s`` this runner lists the SQS queues carrying that tag, long-polls each briefly,
wraps the messages as an SQS Lambda event, calls :func:`roomkit.aws.trigger.process_event` with
clients from the local session, and deletes the messages that did not fail. Failed ones are left
alone, so they become visible again after the queue's visibility timeout, exactly like Lambda's
partial-batch response (``ReportBatchItemFailures``).

``roomkit.aws.trigger`` is imported lazily: the runner is inert until a tagged queue exists.
"""
from __future__ import annotations

import json
import logging
import threading
from typing import Any, Callable

from botocore.exceptions import BotoCoreError, ClientError

log = logging.getLogger(__name__)

TRIGGER_TAG = "roomkit:trigger-env"
BATCH_SIZE = 10  # Lambda's default for an SQS event source


class TriggerRunner:
    """Polls tagged SQS queues and feeds their messages to the trigger handler."""

    def __init__(
        self,
        session: Any,
        *,
        interval_s: float = 1.0,
        wait_s: int = 1,
        process_event: Callable[..., dict] | None = None,
        config_from_env: Callable[[dict], Any] | None = None,
    ) -> None:
        self.session = session
        self.interval_s = interval_s
        self.wait_s = wait_s
        self._process_event = process_event
        self._config_from_env = config_from_env
        self._sqs = session.client("sqs")
        self._s3 = session.client("s3")
        self._runtime = session.client("sagemaker-runtime")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._config_errors: dict[str, str] = {}
        self.processed = 0
        self.failed = 0
        self.batches = 0

    @property
    def config_errors(self) -> dict[str, str]:
        """Queue URL → why its messages wait (bad tag, or the handler's cold-start error)."""
        return dict(self._config_errors)

    def start(self) -> "TriggerRunner":
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="roomkit-trigger-runner", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
        self._thread = None

    def poll_once(self) -> int:
        """One pass over every tagged queue; returns the number of messages handled."""
        handled = 0
        for url, env in self._tagged_queues():
            handled += self._drain_queue(url, env)
        return handled

    # -- internals -----------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                handled = self.poll_once()
            except (ClientError, BotoCoreError) as exc:
                log.warning("trigger runner: %s", exc)
                handled = 0
            except Exception:  # noqa: BLE001 (the runner must outlive a bad handler)
                log.exception("trigger runner pass failed")
                handled = 0
            if not handled:
                self._stop.wait(self.interval_s)

    def _tagged_queues(self) -> list[tuple[str, dict[str, str]]]:
        urls = self._sqs.list_queues().get("QueueUrls", [])
        found = []
        for url in urls:
            try:
                tags = self._sqs.list_queue_tags(QueueUrl=url).get("Tags") or {}
            except ClientError:
                continue  # deleted between the two calls
            raw = tags.get(TRIGGER_TAG)
            if raw is None:
                continue
            try:
                env = json.loads(raw)
                if not isinstance(env, dict):
                    raise ValueError("not a JSON object")
            except ValueError as exc:
                self._report_config_error(url, f"tag {TRIGGER_TAG} is not a JSON object: {exc}")
                continue
            found.append((url, {str(k): str(v) for k, v in env.items()}))
        return found

    def _drain_queue(self, url: str, env: dict[str, str]) -> int:
        process_event, config_from_env = self._handler()
        try:
            config = config_from_env(env)
        except Exception as exc:  # noqa: BLE001 (the handler's cold-start validation error)
            self._report_config_error(url, str(exc))
            return 0
        self._config_errors.pop(url, None)
        resp = self._sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=BATCH_SIZE, WaitTimeSeconds=self.wait_s,
            AttributeNames=["All"],
        )
        messages = resp.get("Messages") or []
        if not messages:
            return 0
        arn = self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        event = {"Records": [self._record(m, arn) for m in messages]}
        try:
            result = process_event(event, config, sagemaker_runtime=self._runtime, s3=self._s3) or {}
            failed_ids = {f["itemIdentifier"] for f in result.get("batchItemFailures") or []}
        except Exception:  # noqa: BLE001 (a raising handler fails the whole batch, as in Lambda)
            log.exception("trigger handler raised on a batch of %d from %s", len(messages), url)
            failed_ids = {m["MessageId"] for m in messages}
        done = [m for m in messages if m["MessageId"] not in failed_ids]
        for start in range(0, len(done), 10):
            chunk = done[start:start + 10]
            self._sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
        self.batches += 1
        self.processed += len(done)
        self.failed += len(messages) - len(done)
        return len(messages)

    def _record(self, message: dict, queue_arn: str) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes") or {},
            "messageAttributes": message.get("MessageAttributes") or {},
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": self.session.region,
        }

    def _handler(self) -> tuple[Callable[..., dict], Callable[[dict], Any]]:
        if self._process_event is None or self._config_from_env is None:
            from roomkit.aws import trigger  # lazily: only once a tagged queue exists

            self._process_event = self._process_event or trigger.process_event
            self._config_from_env = self._config_from_env or trigger.TriggerConfig.from_env
        return self._process_event, self._config_from_env

    def _report_config_error(self, url: str, message: str) -> None:
        if self._config_errors.get(url) != message:
            log.error("trigger queue %s is misconfigured, its messages wait: %s", url, message)
        self._config_errors[url] = message
