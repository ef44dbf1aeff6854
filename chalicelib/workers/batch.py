"""The one SQS partial-batch adapter every worker uses (Powertools' BatchProcessor).

Lambda deletes every message of a batch the handler returns for, except those
listed in `batchItemFailures` (ReportBatchItemFailures is set on each event
source in infra/template.py: Chalice does not set it). So each record is
handled on its own and only the records whose handling raised are listed:
SQS redelivers just those, and after the queue's maxReceiveCount moves them
to its dead-letter queue. A record whose body cannot be parsed is logged and
dropped, never listed: no retry can fix it (a poison message would only
cycle to the DLQ). When every record of a batch fails, the failures are
still listed one by one (not Powertools' default of raising): raising would
make Lambda redeliver the batch as a whole, the same outcome with a Lambda
error on top.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import ValidationError

from chalicelib.observability import logger

M = TypeVar("M")

MALFORMED = (ValueError, TypeError, KeyError)
"""What a parser raises for a body no retry can fix (json and pydantic errors are ValueErrors)."""


@dataclass(frozen=True)
class Worker(Generic[M]):
    """One queue's worker: how a body becomes a message, what handles it, and what its log lines say."""

    kind: str
    """The message kind in log lines: `dropping malformed <kind> message`."""
    parse: Callable[[str], M]
    """Body -> message; raises one of MALFORMED for a body no retry can fix."""
    handle: Callable[[M], dict[str, Any] | None]
    """Handles one message; returns the fields of its success log line (None: no line)."""
    describe: Callable[[M], dict[str, Any]]
    """The fields naming a message in its failure log line (never personal data)."""
    failed: str
    """The failure log line, e.g. `job failed; will be retried`."""
    done: str = ""
    """The success log line, when `handle` returns fields."""

    def handle_records(self, records: Iterable[dict[str, Any]]) -> PartialItemFailureResponse:
        """Handle each raw SQS record; return the ids SQS should redeliver."""
        batch = list(records)
        if not batch:
            return {"batchItemFailures": []}
        processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        return process_partial_response(event={"Records": batch}, record_handler=self._record,
                                        processor=processor)

    def _record(self, record: SQSRecord) -> None:
        message_id = record.message_id
        try:
            message = self.parse(record.body)
        except MALFORMED as err:
            where = [".".join(map(str, e["loc"])) for e in err.errors()] if isinstance(err, ValidationError) else []
            logger.error(f"dropping malformed {self.kind} message", extra={"message_id": message_id, "fields": where})
            return
        try:
            fields = self.handle(message)
        except Exception:
            logger.exception(self.failed, extra={"message_id": message_id, **self.describe(message)})
            raise
        if fields is not None and self.done:
            logger.info(self.done, extra={"message_id": message_id, **fields})


def json_object(body: str) -> dict[str, Any]:
    """A body that must be a JSON object (anything else is malformed)."""
    message = json.loads(body)
    if not isinstance(message, dict):
        raise TypeError("the message is not a JSON object")
    return message
