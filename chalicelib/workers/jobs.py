"""The background jobs queue: one message = one job, dispatched by its `job` field.

Each record is handled on its own; failures are reported per message
(`batchItemFailures`, with ReportBatchItemFailures set on the event source in
infra/), so one bad job never makes SQS redeliver its whole batch. A job that
cannot finish within its budget re-enqueues itself, so long purges resume
rather than time out. Malformed messages are logged and dropped, not retried
forever (there is nothing a retry could fix).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from chalicelib.observability import logger
from chalicelib.services.customers import imports as customer_import
from chalicelib.services.marketing import campaigns, triggers
from chalicelib.services.pos import card_series, pos_batches
from chalicelib.services.program import coupons, sweeps
from chalicelib.services.tenancy import purge, tenancy
from chalicelib.settings import settings
from chalicelib.storage import queues


def _purge(message: dict[str, Any]) -> None:
    tenant_id = str(message["tenant_id"])
    progress = purge.purge_tenant_page(tenant_id, cursor=message.get("cursor"))
    if progress.done:
        logger.info("tenant purged", extra={"tenant_id": tenant_id})
    else:
        queues.send(settings.jobs_queue, {"job": tenancy.PURGE_JOB, "tenant_id": tenant_id, "cursor": progress.cursor})


JOBS: dict[str, Callable[[dict[str, Any]], None]] = {
    tenancy.PURGE_JOB: _purge,
    campaigns.FANOUT_JOB: campaigns.handle_job,
    card_series.GENERATE_JOB: card_series.handle_job,
    coupons.GENERATE_JOB: coupons.handle_job,
    customer_import.IMPORT_JOB: customer_import.handle_job,
    pos_batches.PROCESS_JOB: pos_batches.handle_job,
    sweeps.SCOPE_JOB: sweeps.handle_job,
    triggers.RUN_JOB: triggers.handle_job,
}


def handle_records(records: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, str]]]:
    """Run each record's job; return the ids of those to retry."""
    failures = []
    for record in records:
        message_id = record["messageId"]
        try:
            message = json.loads(record["body"])
            job = JOBS[message["job"]]
        except (ValueError, KeyError, TypeError):
            logger.error("dropping malformed job message", extra={"message_id": message_id})
            continue
        try:
            job(message)
        except Exception:
            logger.exception("job failed; will be retried", extra={"message_id": message_id, "job": message["job"]})
            failures.append({"itemIdentifier": message_id})
    return {"batchItemFailures": failures}
