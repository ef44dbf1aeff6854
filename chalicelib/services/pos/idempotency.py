"""The `Idempotency-Key` header on every POST (IETF httpapi-idempotency-key draft semantics).

First request with a key: runs, and its answer (any status below 500 that
does not ask for a retry) is kept for 24 hours. The same key again with the
same method, path and body: the kept answer, with `Idempotent-Replayed: true`.
With a different body: 422. While the first is still running: 409. A server
error, or an answer with `Retry-After` (a transient 409 `card_busy`, a 429),
releases the key so the retry the answer asks for runs again instead of
replaying that answer. A claim held by a request that crashed expires after
`LEASE`. Keys are scoped to the caller's tenant (or agency / platform) and
route, so two tenants can use the same key without meeting.

Purchases and refunds are exactly-once by `receipt_id` / `refund_id` inside
their own transaction whether or not the header is sent; the header adds this
generic layer on top.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.errors import ApiError, ErrorDetail

LEASE = timedelta(seconds=60)
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class Stored:
    status: int
    body: Any
    headers: dict[str, str]


def fingerprint(method: str, path: str, body: bytes | None) -> str:
    """The request as an idempotency key must find it again: method, path and exact body bytes."""
    return hashlib.sha256(b"|".join([method.encode(), path.encode(), body or b""])).hexdigest()


def run(partition: str, route: str, key: str, print_: str, call: Callable[[], tuple[int, Any, dict[str, str]]],
        keep: Callable[[Any], Any] | None = None) -> tuple[Stored, bool]:
    """Run `call` once per key; returns the answer and whether it is a replay.

    `keep` turns the answer into what is stored for replays (personal data
    routes drop personal fields, so the idempotency cache never holds them).
    """
    from chalicelib.storage import idempotency as store  # PynamoDB: not on the API's import path (cold start)

    _check_key(key)
    now = datetime.now(UTC)
    existing = store.get(partition, route, key)
    claimed = False
    if existing is None:
        claimed = store.claim(partition, route, key, print_, now, LEASE)
    elif existing.doc.state == "in_flight" and existing.doc.lease_ends < now:
        claimed = store.claim(partition, route, key, print_, now, LEASE, replacing_version=existing.version)
    if not claimed:
        existing = store.get(partition, route, key) or existing
        if existing is None:
            raise ApiError(409, "idempotency_in_flight", "A request with this Idempotency-Key is in progress; retry.",
                           headers={"Retry-After": "1"})
        kept = existing.doc
        if kept.fingerprint != print_:
            raise ApiError(422, "idempotency_key_reused", "This Idempotency-Key was used with a different request.",
                           [ErrorDetail("Idempotency-Key", "reused with a different method, path or body")])
        if kept.state != "completed":
            raise ApiError(409, "idempotency_in_flight", "A request with this Idempotency-Key is in progress; retry.",
                           headers={"Retry-After": "1"})
        return Stored(int(kept.status or 0), kept.body, dict(kept.headers or {})), True
    try:
        status, body, headers = call()
    except BaseException:
        store.release(partition, route, key)
        raise
    if status >= 500 or "Retry-After" in headers:
        store.release(partition, route, key)
    else:
        store.complete(partition, route, key, status, keep(body) if keep else body, headers)
    return Stored(status, body, headers), False


# --- helpers --------------------------------------------------------------------------------------------

def _check_key(key: str) -> None:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise ApiError(400, "invalid_idempotency_key", f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable "
                       "characters.", [ErrorDetail("Idempotency-Key", "invalid")])
