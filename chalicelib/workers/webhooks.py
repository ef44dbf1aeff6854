"""The webhooks queue: one message = one delivery attempt of one event to one endpoint (services.webhooks).

A failed attempt is not an SQS failure: the service re-queues the next
attempt itself, with its backoff. Only an error of our own (DynamoDB or SQS
unavailable) is reported in `batchItemFailures`, so SQS redelivers that
message; the attempt claim on the delivery log keeps a redelivery from
POSTing an event twice. An attempt the receiver accepted is done even if its
outcome could not be recorded: a redelivery would come after the claim's lease
and POST it again. A malformed record is logged and dropped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse

from chalicelib.schemas.webhooks import DeliveryMessage
from chalicelib.services.integrations import webhooks
from chalicelib.workers.batch import Worker


def _parse(body: str) -> DeliveryMessage:
    return DeliveryMessage.model_validate(json.loads(body))


def _deliver(message: DeliveryMessage) -> dict[str, Any]:
    outcome = webhooks.deliver(message)
    return {"tenant_id": message.tenant_id, "endpoint_id": message.endpoint_id, "outcome": outcome}


WORKER: Worker[DeliveryMessage] = Worker(
    kind="webhook", parse=_parse, handle=_deliver, describe=lambda message: {"tenant_id": message.tenant_id},
    failed="webhook delivery failed; will be retried", done="webhook message handled",
)


def handle_records(records: Iterable[dict[str, Any]]) -> PartialItemFailureResponse:
    """Attempt each record; return the ids SQS should redeliver."""
    return WORKER.handle_records(records)
