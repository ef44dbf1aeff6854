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

from pydantic import ValidationError

from chalicelib.observability import logger
from chalicelib.schemas.webhooks import DeliveryMessage
from chalicelib.services.integrations import webhooks


def handle_records(records: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, str]]]:
    """Attempt each record; return the ids SQS should redeliver."""
    failures = []
    for record in records:
        message_id = record["messageId"]
        try:
            message = DeliveryMessage.model_validate(json.loads(record["body"]))
        except (ValueError, TypeError, KeyError) as err:
            where = [".".join(map(str, e["loc"])) for e in err.errors()] if isinstance(err, ValidationError) else []
            logger.error("dropping malformed webhook message", extra={"message_id": message_id, "fields": where})
            continue
        try:
            outcome = webhooks.deliver(message)
        except Exception:
            logger.exception("webhook delivery failed; will be retried",
                             extra={"message_id": message_id, "tenant_id": message.tenant_id})
            failures.append({"itemIdentifier": message_id})
            continue
        logger.info("webhook message handled", extra={"message_id": message_id, "tenant_id": message.tenant_id,
                                                      "endpoint_id": message.endpoint_id, "outcome": outcome})
    return {"batchItemFailures": failures}
