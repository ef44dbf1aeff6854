"""The wallet queue: one message = one change (tag) of one pass, pushed to its devices and Google (services.wallet).

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

from chalicelib.schemas.wallet import PassUpdateMessage
from chalicelib.services.wallet import updates
from chalicelib.workers.batch import Worker


def _parse(body: str) -> PassUpdateMessage:
    return PassUpdateMessage.model_validate(json.loads(body))


def _deliver(message: PassUpdateMessage) -> dict[str, Any]:
    return {"tenant_id": message.tenant_id, "outcome": updates.deliver(message)}


WORKER: Worker[PassUpdateMessage] = Worker(
    kind="wallet", parse=_parse, handle=_deliver, describe=lambda message: {"tenant_id": message.tenant_id},
    failed="wallet pass update failed; will be retried", done="wallet pass update handled",
)


def handle_records(records: Iterable[dict[str, Any]]) -> PartialItemFailureResponse:
    """Deliver each record; return the ids SQS should redeliver."""
    return WORKER.handle_records(records)
