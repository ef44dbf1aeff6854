"""The mail queue: one message = one recipient, delivered by services.delivery.

Failures are reported per record (`batchItemFailures`), and only transient
ones (the provider throttled past our backoff, a storage error): SQS
redelivers just those, and after 4 receives moves them to the mail DLQ.
A malformed record is logged and dropped rather than left to the DLQ: no
retry can fix it, and it names no message we could ever send; the log line
(message id, validation error locations, no body: it may hold personal
data) is what an operator needs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse

from chalicelib.schemas.mail import MailMessage
from chalicelib.services.marketing import delivery
from chalicelib.workers.batch import Worker


def _parse(body: str) -> MailMessage:
    return MailMessage.model_validate(json.loads(body))


def _deliver(message: MailMessage) -> dict[str, Any]:
    outcome = delivery.deliver(message)
    return {"tenant_id": message.tenant_id, "status": outcome.status, "reason": outcome.reason,
            "duplicate": outcome.duplicate}


WORKER: Worker[MailMessage] = Worker(
    kind="mail", parse=_parse, handle=_deliver,
    describe=lambda message: {"tenant_id": message.tenant_id},
    failed="mail delivery failed; will be retried", done="mail delivered",
)


def handle_records(records: Iterable[dict[str, Any]]) -> PartialItemFailureResponse:
    """Deliver each record; return the ids SQS should redeliver."""
    return WORKER.handle_records(records)
