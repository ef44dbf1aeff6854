"""The shared SQS adapter (chalicelib.workers.batch): which records are redelivered, which dropped, what is logged."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from chalicelib.observability import logger
from chalicelib.workers.batch import Worker, json_object


class Note(BaseModel):
    tenant_id: str
    text: str


def _records(bodies: list[str]) -> list[dict[str, Any]]:
    return [{"messageId": f"m{i}", "receiptHandle": f"h{i}", "body": body, "attributes": {},
             "messageAttributes": {}, "eventSource": "aws:sqs", "awsRegion": "eu-central-1",
             "eventSourceARN": "arn:aws:sqs:eu-central-1:123456789012:q"} for i, body in enumerate(bodies)]


@pytest.fixture
def log_buffer() -> Iterator[io.StringIO]:
    """Where the workers' logger writes while the test runs."""
    buffer = io.StringIO()
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    previous = handler.setStream(buffer)
    try:
        yield buffer
    finally:
        handler.setStream(previous)


def _worker(handled: list[str]) -> Worker[Note]:
    def handle(note: Note) -> dict[str, Any]:
        handled.append(note.text)
        if note.text.startswith("fail"):
            raise RuntimeError("storage unavailable")
        return {"tenant_id": note.tenant_id, "outcome": "ok"}

    return Worker(kind="note", parse=lambda body: Note.model_validate(json.loads(body)), handle=handle,
                  describe=lambda note: {"tenant_id": note.tenant_id}, failed="note failed; will be retried",
                  done="note handled")


def _note(text: str) -> str:
    return json.dumps({"tenant_id": "t1", "text": text})


def test_only_the_records_whose_handling_raised_are_redelivered() -> None:
    handled: list[str] = []
    bodies = [_note("a"), _note("fail-1"), "not json", json.dumps({"tenant_id": "t1"}), _note("b"), _note("fail-2")]
    result = _worker(handled).handle_records(_records(bodies))
    assert result == {"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m5"}]}
    assert handled == ["a", "fail-1", "b", "fail-2"], "malformed bodies never reach the handler"


def test_a_batch_that_fails_entirely_lists_every_record_instead_of_raising() -> None:
    result = _worker([]).handle_records(_records([_note("fail-1"), _note("fail-2")]))
    assert result == {"batchItemFailures": [{"itemIdentifier": "m0"}, {"itemIdentifier": "m1"}]}


def test_a_batch_of_only_malformed_or_no_records_fails_nothing() -> None:
    assert _worker([]).handle_records(_records(["[]", "{", '{"text": 1}'])) == {"batchItemFailures": []}
    assert _worker([]).handle_records([]) == {"batchItemFailures": []}


def test_log_lines_name_the_message_and_never_its_body(log_buffer: io.StringIO) -> None:
    _worker([]).handle_records(_records([_note("secret ok"), _note("fail secret"),
                                         json.dumps({"tenant_id": "t1", "text": 5})]))
    log_lines = [json.loads(line) for line in log_buffer.getvalue().splitlines() if line.startswith("{")]
    by_message = {(line["message"], line["message_id"]): line for line in log_lines}
    assert set(by_message) == {("note handled", "m0"), ("note failed; will be retried", "m1"),
                               ("dropping malformed note message", "m2")}
    assert by_message[("note handled", "m0")]["outcome"] == "ok"
    failed = by_message[("note failed; will be retried", "m1")]
    assert failed["tenant_id"] == "t1" and failed["level"] == "ERROR" and "storage unavailable" in failed["exception"]
    assert by_message[("dropping malformed note message", "m2")]["fields"] == ["text"]
    assert "secret" not in json.dumps([line for line in log_lines if "exception" not in line])


def test_json_object_refuses_other_json_values() -> None:
    assert json_object('{"a": 1}') == {"a": 1}
    for body in ("[1]", '"job"', "5", "null"):
        with pytest.raises(TypeError):
            json_object(body)
