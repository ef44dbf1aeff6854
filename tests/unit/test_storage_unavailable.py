"""errors.storage_unavailable: which AWS failures are a 503 the client retries, and which stay a 500."""

from __future__ import annotations

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from pynamodb.exceptions import GetError, TransactWriteError

from chalicelib.errors import storage_unavailable

URL = "https://dynamodb.eu-central-1.amazonaws.com/"


def _raised(wrapper: type[Exception], cause: Exception) -> Exception:
    """`wrapper` raised while handling `cause`, as PynamoDB raises it (the cause is the context)."""
    try:
        try:
            raise cause
        except Exception as err:
            raise wrapper("Failed", err)
    except Exception as outer:
        return outer


@pytest.mark.parametrize("cause", [EndpointConnectionError(endpoint_url=URL), ReadTimeoutError(endpoint_url=URL),
                                   ConnectionClosedError(endpoint_url=URL), ConnectTimeoutError(endpoint_url=URL)],
                         ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("wrapper", [GetError, TransactWriteError])
def test_no_answer_through_every_retry_is_a_503_with_retry_after(cause: Exception,
                                                                 wrapper: type[Exception]) -> None:
    err = storage_unavailable(_raised(wrapper, cause))
    assert err is not None
    assert (err.status, err.code, err.headers) == (503, "storage_unavailable", {"Retry-After": "1"})
    assert err.message.startswith("The database did not answer")


def test_throttling_is_a_503_and_other_failures_are_not() -> None:
    throttled = ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "TransactWriteItems")
    busy = storage_unavailable(_raised(TransactWriteError, throttled))
    assert busy is not None and (busy.status, busy.message) == (503, "The database is busy; retry shortly "
                                                                     "(retrying with the same ids is safe).")
    invalid = ClientError({"Error": {"Code": "ValidationException"}}, "TransactWriteItems")
    assert storage_unavailable(_raised(TransactWriteError, invalid)) is None
    assert storage_unavailable(ValueError("bug")) is None
