"""The wallet queue: one message = one change (tag) of one pass, pushed to its devices and Google (services.wallet),
or (`"kind": "class"`) one change of a tenant's look, PATCHed to its Google loyalty class.

As with webhooks, a failed push is not an SQS failure: the service re-queues
the update itself, with its backoff. Only an error of our own (DynamoDB or SQS
unavailable) is reported in `batchItemFailures`, so SQS redelivers that
message; the per-target claims keep a redelivery from pushing a device twice.
A malformed record is logged and dropped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse

from chalicelib.schemas.wallet import ClassUpdateMessage, PassUpdateMessage
from chalicelib.services.wallet import updates
from chalicelib.workers.batch import Worker

Message = PassUpdateMessage | ClassUpdateMessage


def _parse(body: str) -> Message:
    raw = json.loads(body)
    if isinstance(raw, dict) and raw.get("kind") == "class":
        return ClassUpdateMessage.model_validate(raw)
    return PassUpdateMessage.model_validate(raw)


def _deliver(message: Message) -> dict[str, Any]:
    if isinstance(message, ClassUpdateMessage):
        return {"tenant_id": message.tenant_id, "kind": "class", "outcome": updates.deliver_class(message)}
    return {"tenant_id": message.tenant_id, "outcome": updates.deliver(message)}


WORKER: Worker[Message] = Worker(
    kind="wallet", parse=_parse, handle=_deliver, describe=lambda message: {"tenant_id": message.tenant_id},
    failed="wallet pass update failed; will be retried", done="wallet pass update handled",
)


def handle_records(records: Iterable[dict[str, Any]]) -> PartialItemFailureResponse:
    """Deliver each record; return the ids SQS should redeliver."""
    return WORKER.handle_records(records)
