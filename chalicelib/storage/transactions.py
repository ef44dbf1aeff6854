"""DynamoDB transactions with the retry PynamoDB does not do for `TransactionConflict`."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable
from typing import TypeVar

from pynamodb.connection import Connection
from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib.settings import settings

T = TypeVar("T")
MAX_ATTEMPTS = 6
Tx = TransactWrite
"""What a `build` callback receives: queue writes on it with the storage helpers."""


class TransactionFailed(Exception):
    """The transaction was cancelled; `reasons[i]` is why item i failed ('None' if it did not)."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__(f"transaction cancelled: {reasons}")
        self.reasons = reasons

    def condition_failed(self, index: int) -> bool:
        return index < len(self.reasons) and self.reasons[index] == "ConditionalCheckFailed"


_connection_lock = threading.Lock()
_shared: Connection | None = None


def connection() -> Connection:
    """One PynamoDB connection (one botocore client) per process: creating a client costs milliseconds."""
    global _shared
    with _connection_lock:
        if _shared is None:
            _shared = Connection(region=settings.region)
        return _shared


def reset_connection() -> None:
    """Forget the shared connection (tests switch between moto backends)."""
    global _shared
    with _connection_lock:
        _shared = None


def cancellation_reasons(err: TransactWriteError) -> list[str]:
    return [r.code if r else "None" for r in (err.cancellation_reasons or [])]


def answered(err: TransactWriteError) -> bool:
    """Did DynamoDB answer (an error response), or did botocore give up without one (connection, timeout)?"""
    return isinstance(getattr(err.cause, "response", None), dict)


def response_code(err: TransactWriteError) -> str | None:
    """DynamoDB's error code, or None without an answer (PynamoDB's `cause_response_code` raises then)."""
    response = getattr(err.cause, "response", None)
    if not isinstance(response, dict):
        return None
    code = response.get("Error", {}).get("Code")
    return str(code) if code is not None else None


def is_conflict(err: TransactWriteError) -> bool:
    return "TransactionConflict" in cancellation_reasons(err) or response_code(err) in (
        "TransactionConflictException",
        "TransactionInProgressException",
    )


def backoff(attempt: int) -> float:
    """Seconds to wait before retry `attempt`: full jitter, growing from 10 ms, capped at 250 ms."""
    return random.uniform(0, min(0.25, 0.01 * (2**attempt)))


def write(build: Callable[[Tx], T]) -> T:
    """Run `build(tx)` inside a TransactWrite, retrying conflicts with jittered backoff.

    `build` is called afresh on every attempt, so it must only queue writes.
    Condition failures are not retried: they are answers, not races; they
    surface as `TransactionFailed` so callers need not know PynamoDB.
    """
    for attempt in range(MAX_ATTEMPTS):
        try:
            # A fresh ClientRequestToken per attempt: DynamoDB then answers botocore's own retry of this call
            # (response lost) as the same call, while another attempt, or another copy of the same request in
            # flight, never shares a token with different parameters (IdempotentParameterMismatch).
            with TransactWrite(connection=connection(), client_request_token=str(uuid.uuid4())) as tx:
                result = build(tx)
            return result
        except TransactWriteError as err:
            if not answered(err):
                # Connection errors or read timeouts through every botocore retry: the write may have landed,
                # so this is no cancellation (callers would read it as a refusal); it surfaces as it is and the
                # route answers 503 (errors.storage_unavailable): the client's retry replays or writes once.
                raise
            if response_code(err) == "IdempotentParameterMismatchException":
                # Same token, other parameters: another attempt of this very request got there first.
                # Reported like a failed condition on the first item (the exactly-once record), so callers replay.
                raise TransactionFailed(["ConditionalCheckFailed"]) from err
            if not is_conflict(err) or attempt == MAX_ATTEMPTS - 1:
                raise TransactionFailed(cancellation_reasons(err)) from err
            time.sleep(backoff(attempt))
    raise AssertionError("unreachable")


def written(build: Callable[[Tx], object]) -> bool:
    """`write(build)`, answering False instead of raising when the first item's condition failed.

    For the common shape where item 0 carries the one condition that can
    legitimately fail (an id already taken, a version read earlier): the
    caller turns False into its own 409.
    """
    try:
        write(build)
    except TransactionFailed as err:
        if err.condition_failed(0):
            return False
        raise
    return True
