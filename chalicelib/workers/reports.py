"""The reports queue: one message = one report to build (`{"tenant_id", "report_id"}`).

The service records every build failure on the report itself (status
`failed` with a reason), so a message is reported in `batchItemFailures` only
when even that could not be done (storage unavailable): SQS redelivers it, and
after 3 receives moves it to the reports dead-letter queue. A malformed
message is logged and dropped: no retry can fix it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from chalicelib.observability import logger
from chalicelib.services.reporting.reports import service


def handle_records(records: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, str]]]:
    """Build each record's report; return the ids SQS should redeliver."""
    failures = []
    for record in records:
        message_id = record["messageId"]
        try:
            message = json.loads(record["body"])
            tenant_id, report_id = str(message["tenant_id"]), str(message["report_id"])
        except (ValueError, KeyError, TypeError):
            logger.error("dropping malformed report message", extra={"message_id": message_id})
            continue
        try:
            service.build(tenant_id, report_id)
        except Exception:
            logger.exception("report worker failed; will be retried",
                             extra={"message_id": message_id, "tenant_id": tenant_id, "report_id": report_id})
            failures.append({"itemIdentifier": message_id})
    return {"batchItemFailures": failures}
