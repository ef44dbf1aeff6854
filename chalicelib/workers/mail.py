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

from pydantic import ValidationError

from chalicelib.observability import logger
from chalicelib.schemas.mail import MailMessage
from chalicelib.services.marketing import delivery


def handle_records(records: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, str]]]:
    """Deliver each record; return the ids SQS should redeliver."""
    failures = []
    for record in records:
        message_id = record["messageId"]
        try:
            message = MailMessage.model_validate(json.loads(record["body"]))
        except (ValueError, TypeError, KeyError) as err:
            where = [".".join(map(str, e["loc"])) for e in err.errors()] if isinstance(err, ValidationError) else []
            logger.error("dropping malformed mail message", extra={"message_id": message_id, "fields": where})
            continue
        try:
            outcome = delivery.deliver(message)
        except Exception:
            logger.exception("mail delivery failed; will be retried",
                             extra={"message_id": message_id, "tenant_id": message.tenant_id})
            failures.append({"itemIdentifier": message_id})
            continue
        logger.info("mail delivered", extra={"message_id": message_id, "tenant_id": message.tenant_id,
                                             "status": outcome.status, "reason": outcome.reason,
                                             "duplicate": outcome.duplicate})
    return {"batchItemFailures": failures}
