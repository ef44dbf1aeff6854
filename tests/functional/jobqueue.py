"""The jobs queue in functional tests: receive what services sent and feed it to the real worker handler."""

from __future__ import annotations

import boto3

from app import app
from chalicelib.settings import settings


def receive_all(queue: str | None = None) -> list[str]:
    """Take (and delete) up to 10 message bodies from `queue` (the jobs queue by default)."""
    sqs = boto3.client("sqs", region_name=settings.region)
    url = sqs.get_queue_url(QueueName=queue or settings.jobs_queue)["QueueUrl"]
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    for m in messages:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return [m["Body"] for m in messages]


def sqs_event(bodies: list[str]) -> dict:
    return {"Records": [{"messageId": f"m{i}", "receiptHandle": f"h{i}", "body": body, "attributes": {},
                         "messageAttributes": {}, "eventSource": "aws:sqs",
                         "eventSourceARN": f"arn:aws:sqs:eu-central-1:123456789012:{settings.jobs_queue}",
                         "awsRegion": "eu-central-1"} for i, body in enumerate(bodies)]}


def run_worker(bodies: list[str]) -> dict:
    """The deployed `jobs_worker` handler, called with an SQS event of these bodies."""
    return app.handler_map["jobs_worker"](sqs_event(bodies), None)


def drain(limit: int = 200) -> list[str]:
    """Feed the jobs queue to the worker until it is empty; returns every message body it ran."""
    seen: list[str] = []
    for _ in range(limit):
        bodies = receive_all()
        if not bodies:
            return seen
        assert run_worker(bodies) == {"batchItemFailures": []}
        seen.extend(bodies)
    raise AssertionError("queue never drained")
