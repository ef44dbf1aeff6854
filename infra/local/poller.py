"""Deliver SQS messages to the app's `@app.on_sqs_message` handlers, the way Lambda's event source mapping does.

`chalice local` serves HTTP only, so locally nothing would ever run the workers. This
polls each queue, builds Lambda's exact SQS event, calls the handler with a Lambda-like
context and deletes only the messages the handler did not report in
`batchItemFailures` (the ReportBatchItemFailures contract set in infra/). A raised
exception fails the whole batch: the messages reappear after the visibility timeout and
the queue's redrive policy moves them to the DLQ after maxReceiveCount, as on AWS.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, cast

import boto3
from chalice.app import SQSEventConfig
from chalice.local import LambdaContext

log = logging.getLogger("infra.local.poller")
Handler = Callable[[dict[str, Any], Any], Any]


def _region() -> str:
    return os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or "eu-central-1"


@dataclass
class Worker:
    """One SQS event source of the app, resolved to its queue and handler."""

    source: SQSEventConfig
    handler: Handler
    queue_url: str
    queue_arn: str
    timeout_seconds: int = 60
    memory_mb: int = 512


def _handler(app_module: ModuleType, source: SQSEventConfig) -> Handler:
    # Lambda resolves "app.jobs_worker" as an attribute of the app module; fall back to the app's own map.
    attribute = source.handler_string.rsplit(".", 1)[-1]
    handler = getattr(app_module, attribute, None) or app_module.app.handler_map.get(source.name)
    if handler is None:
        raise LookupError(f"no handler {source.handler_string} for SQS event source {source.name}")
    return cast(Handler, handler)


def workers(app_module: ModuleType, sqs: Any | None = None, config: Any | None = None) -> list[Worker]:
    """The app's SQS event sources; `config` (a chalice Config) supplies per-function timeout and memory."""
    sqs = sqs or boto3.session.Session().client("sqs", region_name=_region())
    found = []
    for source in app_module.app.event_sources:
        if not isinstance(source, SQSEventConfig):
            continue
        queue_name = source.queue or str(source.queue_arn).rsplit(":", 1)[-1]
        url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        worker = Worker(source, _handler(app_module, source), url, arn)
        if config is not None:
            scoped = config.scope(config.chalice_stage, source.name)
            worker.timeout_seconds = scoped.lambda_timeout or worker.timeout_seconds
            worker.memory_mb = scoped.lambda_memory_size or worker.memory_mb
        found.append(worker)
    return found


def _message_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    converted = {}
    for name, value in attributes.items():
        binary = value.get("BinaryValue")
        converted[name] = {
            "stringValue": value.get("StringValue"),
            "binaryValue": base64.b64encode(binary).decode() if isinstance(binary, bytes) else binary,
            "stringListValues": value.get("StringListValues", []),
            "binaryListValues": [
                base64.b64encode(v).decode() if isinstance(v, bytes) else v for v in value.get("BinaryListValues", [])
            ],
            "dataType": value.get("DataType"),
        }
    return converted


def lambda_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """Lambda's SQS event for messages as ReceiveMessage returned them."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": dict(m.get("Attributes", {})),
                "messageAttributes": _message_attributes(m.get("MessageAttributes", {})),
                "md5OfBody": m.get("MD5OfBody") or hashlib.md5(m["Body"].encode(), usedforsecurity=False).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


def _failed_ids(result: Any, batch_ids: set[str]) -> set[str]:
    """Message ids to keep, per the ReportBatchItemFailures contract (a malformed answer fails the batch)."""
    if not isinstance(result, dict) or not result.get("batchItemFailures"):
        return set()
    failed = set()
    for failure in result["batchItemFailures"]:
        item = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not item or item not in batch_ids:
            log.error("batchItemFailures names %r, not a message of this batch: the whole batch fails", item)
            return set(batch_ids)
        failed.add(item)
    return failed


def poll_once(worker: Worker, sqs: Any, wait_seconds: int = 0) -> int:
    """Receive one batch, run the handler, delete what succeeded; returns how many messages were received."""
    response = sqs.receive_message(
        QueueUrl=worker.queue_url,
        MaxNumberOfMessages=max(1, min(worker.source.batch_size, 10)),
        WaitTimeSeconds=wait_seconds,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
    )
    messages = response.get("Messages", [])
    if not messages:
        return 0
    event = lambda_event(messages, worker.queue_arn, _region())
    context = LambdaContext(worker.source.name, worker.memory_mb, max_runtime_ms=worker.timeout_seconds * 1000)
    batch_ids = {m["MessageId"] for m in messages}
    try:
        failed = _failed_ids(worker.handler(event, context), batch_ids)
    except Exception:
        log.exception("%s raised: the batch of %d will be retried after the visibility timeout",
                      worker.source.name, len(messages))
        return len(messages)
    done = [m for m in messages if m["MessageId"] not in failed]
    if failed:
        log.warning("%s reported %d failed message(s); they will be retried", worker.source.name, len(failed))
    if done:
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)]
        result = sqs.delete_message_batch(QueueUrl=worker.queue_url, Entries=entries)
        for failure in result.get("Failed", []):
            log.error("could not delete message %s: %s", failure.get("Id"), failure.get("Message"))
    return len(messages)


def drain(app_module: ModuleType, timeout: float = 30.0, config: Any | None = None) -> int:
    """Run every worker until its queue returns nothing (in-flight retries are not waited for).

    For tests: in-process under `mock_aws()` or against the moto server. Returns the
    number of messages handled; raises TimeoutError if messages keep coming past `timeout`.
    """
    sqs = boto3.session.Session().client("sqs", region_name=_region())
    found = workers(app_module, sqs, config)
    deadline = time.monotonic() + timeout
    handled = 0
    while True:
        received = sum(poll_once(worker, sqs, wait_seconds=0) for worker in found)
        handled += received
        if received == 0:
            return handled
        if time.monotonic() > deadline:
            raise TimeoutError(f"queues still delivering after {timeout}s ({handled} messages handled)")


class Poller:
    """One daemon thread per SQS event source, long-polling until `stop()`."""

    def __init__(self, app_module: ModuleType, config: Any | None = None, wait_seconds: int = 1) -> None:
        self.app_module = app_module
        self.config = config
        self.wait_seconds = wait_seconds
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> list[Worker]:
        sqs = boto3.session.Session().client("sqs", region_name=_region())
        found = workers(self.app_module, sqs, self.config)
        for worker in found:
            thread = threading.Thread(target=self._run, args=(worker,), name=f"sqs-{worker.source.name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return found

    def _run(self, worker: Worker) -> None:
        sqs = boto3.session.Session().client("sqs", region_name=_region())
        while not self._stop.is_set():
            try:
                poll_once(worker, sqs, self.wait_seconds)
            except Exception:
                if self._stop.is_set():
                    return
                log.exception("polling %s failed; retrying in 1s", worker.queue_url)
                self._stop.wait(1)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the batches in progress; waits at most `timeout` seconds per thread."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()
