"""The background jobs queue: one message = one job, dispatched by its `job` field.

Each record is handled on its own; failures are reported per message
(`batchItemFailures`, with ReportBatchItemFailures set on the event source in
infra/), so one bad job never makes SQS redeliver its whole batch. A job that
cannot finish within its budget re-enqueues itself, so long purges resume
rather than time out. Malformed messages are logged and dropped, not retried
forever (there is nothing a retry could fix).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse

from chalicelib.services.customers import imports as customer_import
from chalicelib.services.identity import members, passwords
from chalicelib.services.marketing import campaigns, triggers
from chalicelib.services.pos import card_series, pos_batches
from chalicelib.services.program import coupons, sweeps
from chalicelib.services.reporting import reconciliation
from chalicelib.services.tenancy import purge, tenancy
from chalicelib.services.wallet import changes as wallet_changes
from chalicelib.workers.batch import Worker, json_object

JOBS: dict[str, Callable[[dict[str, Any]], None]] = {
    tenancy.PURGE_JOB: purge.handle_job,
    campaigns.FANOUT_JOB: campaigns.handle_job,
    card_series.GENERATE_JOB: card_series.handle_job,
    coupons.GENERATE_JOB: coupons.handle_job,
    customer_import.IMPORT_JOB: customer_import.handle_job,
    members.INVITATION_JOB: members.handle_job,
    passwords.RESET_JOB: passwords.handle_job,
    pos_batches.PROCESS_JOB: pos_batches.handle_job,
    reconciliation.JOB: reconciliation.handle_job,
    sweeps.SCOPE_JOB: sweeps.handle_job,
    triggers.RUN_JOB: triggers.handle_job,
    wallet_changes.REFRESH_JOB: wallet_changes.handle_job,
}


def _parse(body: str) -> dict[str, Any]:
    message = json_object(body)
    if message["job"] not in JOBS:
        raise KeyError(message["job"])
    return message


def _run(message: dict[str, Any]) -> None:
    JOBS[message["job"]](message)


WORKER: Worker[dict[str, Any]] = Worker(
    kind="job", parse=_parse, handle=_run, describe=lambda message: {"job": message["job"]},
    failed="job failed; will be retried",
)


def handle_records(records: Iterable[dict[str, Any]]) -> PartialItemFailureResponse:
    """Run each record's job; return the ids of those to retry."""
    return WORKER.handle_records(records)
