"""DynamoDB transactions with the retry PynamoDB does not do for `TransactionConflict`."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from pynamodb.connection import Connection
from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib.settings import settings

T = TypeVar("T")
MAX_ATTEMPTS = 6


def _connection() -> Connection:
    return Connection(region=settings.region)


def cancellation_reasons(err: TransactWriteError) -> list[str]:
    return [r.code if r else "None" for r in (err.cancellation_reasons or [])]


def is_conflict(err: TransactWriteError) -> bool:
    return "TransactionConflict" in cancellation_reasons(err) or err.cause_response_code in (
        "TransactionConflictException",
        "TransactionInProgressException",
    )


def write(build: Callable[[TransactWrite], T], *, token: str | None = None) -> T:
    """Run `build(tx)` inside a TransactWrite, retrying conflicts with jittered backoff.

    `build` is called afresh on every attempt, so it must only queue writes.
    Condition failures are not retried: they are answers, not races.
    """
    for attempt in range(MAX_ATTEMPTS):
        try:
            with TransactWrite(connection=_connection(), client_request_token=token) as tx:
                result = build(tx)
            return result
        except TransactWriteError as err:
            if not is_conflict(err) or attempt == MAX_ATTEMPTS - 1:
                raise
            time.sleep(random.uniform(0, 0.02 * (2**attempt)))
    raise AssertionError("unreachable")
