"""The local SQS event source (infra/local/poller.py) keeps Lambda's contract, in-process under moto."""

from __future__ import annotations

import json
import types
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from chalice import Chalice
from chalice.app import SQSEvent

from chalicelib.settings import settings
from infra.local import poller

RECORD_KEYS = {
    "messageId", "receiptHandle", "body", "attributes", "messageAttributes", "md5OfBody", "eventSource",
    "eventSourceARN", "awsRegion",
}


class FakeWorker:
    """A worker whose answer per message body is scripted by the test."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.fail_bodies: set[str] = set()
        self.raise_error = False
        self.bogus_failure = False

    def __call__(self, event: SQSEvent) -> dict[str, Any]:
        raw = event.to_dict()
        self.events.append(raw)
        if self.raise_error:
            raise RuntimeError("boom")
        if self.bogus_failure:
            return {"batchItemFailures": [{"itemIdentifier": "not-in-this-batch"}]}
        failed = [{"itemIdentifier": r["messageId"]} for r in raw["Records"] if r["body"] in self.fail_bodies]
        return {"batchItemFailures": failed}


@pytest.fixture
def app_module(aws_stack: None) -> Iterator[tuple[types.ModuleType, FakeWorker]]:
    app = Chalice(app_name="poller-test")
    worker = FakeWorker()

    def jobs_worker(event: SQSEvent) -> dict[str, Any]:
        return worker(event)

    handler = app.on_sqs_message(queue=settings.jobs_queue, batch_size=10)(jobs_worker)
    module = types.ModuleType("fake_app")
    module.app = app  # type: ignore[attr-defined]
    module.jobs_worker = handler  # type: ignore[attr-defined]
    yield module, worker


def _sqs() -> Any:
    return boto3.session.Session().client("sqs", region_name=settings.region)


def _send(*bodies: str) -> str:
    sqs = _sqs()
    url = sqs.get_queue_url(QueueName=settings.jobs_queue)["QueueUrl"]
    for body in bodies:
        sqs.send_message(
            QueueUrl=url, MessageBody=body, MessageAttributes={"kind": {"DataType": "String", "StringValue": "test"}}
        )
    return url


def _counts(url: str) -> tuple[int, int]:
    attrs = _sqs().get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])


def test_the_event_is_lambdas_sqs_event(app_module: tuple[types.ModuleType, FakeWorker]) -> None:
    module, worker = app_module
    url = _send(json.dumps({"job": "x"}))
    assert poller.drain(module, timeout=10) == 1
    (record,) = worker.events[0]["Records"]
    assert set(record) == RECORD_KEYS
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"].endswith(f":{settings.jobs_queue}")
    assert record["awsRegion"] == settings.region
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["messageAttributes"]["kind"]["stringValue"] == "test"
    assert record["messageAttributes"]["kind"]["dataType"] == "String"
    assert _counts(url) == (0, 0)


def test_only_reported_failures_stay_on_the_queue(app_module: tuple[types.ModuleType, FakeWorker]) -> None:
    module, worker = app_module
    worker.fail_bodies = {"bad"}
    url = _send("good-1", "bad", "good-2")
    assert poller.drain(module, timeout=10) == 3
    assert _counts(url) == (0, 1), "the failed message waits out its visibility timeout, the others are gone"


def test_a_raising_handler_fails_the_whole_batch(app_module: tuple[types.ModuleType, FakeWorker]) -> None:
    module, worker = app_module
    worker.raise_error = True
    url = _send("a", "b")
    poller.drain(module, timeout=10)
    assert _counts(url) == (0, 2)


def test_an_unknown_item_identifier_fails_the_whole_batch(app_module: tuple[types.ModuleType, FakeWorker]) -> None:
    module, worker = app_module
    worker.bogus_failure = True
    url = _send("a", "b")
    poller.drain(module, timeout=10)
    assert _counts(url) == (0, 2)


def test_workers_are_found_with_their_queue_and_config(app_module: tuple[types.ModuleType, FakeWorker]) -> None:
    module, _ = app_module
    (found,) = poller.workers(module)
    assert found.source.name == "jobs_worker"
    assert found.queue_url.endswith(f"/{settings.jobs_queue}")
    assert found.handler is module.jobs_worker
