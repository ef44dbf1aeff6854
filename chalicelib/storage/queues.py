"""Sending jobs to SQS. Queue URLs are resolved once per process."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from chalicelib.storage.aws import client


@lru_cache(maxsize=16)
def queue_url(queue_name: str) -> str:
    return client("sqs").get_queue_url(QueueName=queue_name)["QueueUrl"]


def send(queue_name: str, message: dict[str, Any], *, delay_seconds: int = 0) -> str:
    response = client("sqs").send_message(
        QueueUrl=queue_url(queue_name), MessageBody=json.dumps(message, separators=(",", ":")),
        DelaySeconds=delay_seconds,
    )
    return response["MessageId"]
