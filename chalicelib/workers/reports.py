"""The reports queue: one message = one report to build (`{"tenant_id", "report_id"}`).

The service records every build failure on the report itself (status
`failed` with a reason), so a message is reported in `batchItemFailures` only
when even that could not be done (storage unavailable): SQS redelivers it, and
after 3 receives moves it to the reports dead-letter queue. A malformed
message is logged and dropped: no retry can fix it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse

from chalicelib.services.reporting.reports import service
from chalicelib.workers.batch import Worker, json_object


def _parse(body: str) -> tuple[str, str]:
    message = json_object(body)
    return str(message["tenant_id"]), str(message["report_id"])


def _build(ids: tuple[str, str]) -> None:
    service.build(*ids)


WORKER: Worker[tuple[str, str]] = Worker(
    kind="report", parse=_parse, handle=_build,
    describe=lambda ids: {"tenant_id": ids[0], "report_id": ids[1]},
    failed="report worker failed; will be retried",
)


def handle_records(records: Iterable[dict[str, Any]]) -> PartialItemFailureResponse:
    """Build each record's report; return the ids SQS should redeliver."""
    return WORKER.handle_records(records)
