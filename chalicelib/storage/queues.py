"""Sending jobs to SQS. Queue URLs are resolved once per process."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from chalicelib.storage.aws import client


@lru_cache(maxsize=16)
def queue_url(queue_name: str) -> str:
    return str(client("sqs").get_queue_url(QueueName=queue_name)["QueueUrl"])


def send(queue_name: str, message: dict[str, Any], *, delay_seconds: int = 0) -> str:
    response = client("sqs").send_message(
        QueueUrl=queue_url(queue_name), MessageBody=json.dumps(message, separators=(",", ":")),
        DelaySeconds=delay_seconds,
    )
    return str(response["MessageId"])


def send_batch(queue_name: str, messages: list[dict[str, Any]]) -> int:
    """Send up to 10 messages in one SQS call; the entries SQS refused are sent again, then it raises.

    Returns how many SQS calls it took (1 unless some entries had to be retried).
    """
    if len(messages) > 10:
        raise ValueError("SQS takes at most 10 messages per batch")
    entries = [{"Id": str(i), "MessageBody": json.dumps(m, separators=(",", ":"))} for i, m in enumerate(messages)]
    calls = 0
    for _ in range(3):
        if not entries:
            return calls
        calls += 1
        response = client("sqs").send_message_batch(QueueUrl=queue_url(queue_name), Entries=entries)
        failed = {f["Id"] for f in response.get("Failed", [])}
        entries = [e for e in entries if e["Id"] in failed]
    if entries:
        raise RuntimeError(f"SQS refused {len(entries)} messages of a batch three times")
    return calls
