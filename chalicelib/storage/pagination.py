"""Opaque cursors for DynamoDB queries, bound to the partition they page through.

A cursor is base64url JSON of the last evaluated key. Decoding checks that it
points into the caller's own partition, so a crafted cursor can neither read
another tenant's rows nor provoke a DynamoDB validation error (a 500).
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
from collections.abc import Callable, Iterable
from typing import Any, Generic, NamedTuple, TypeVar

from chalicelib.errors import field_error

T = TypeVar("T")


class StoredPage(NamedTuple, Generic[T]):
    """One page of stored items and the cursor of the next page (None: this was the last)."""

    items: list[T]
    cursor: str | None


def encode(last_key: dict[str, Any] | None) -> str | None:
    if not last_key:
        return None
    raw = json.dumps(last_key, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str | None, *, hash_attr: str, hash_value: str,
           key_attrs: tuple[str, ...] | None = None) -> dict[str, Any] | None:
    """The cursor's key, if it is one this API could have returned for this partition (else a 400).

    With `key_attrs`, the key must be exactly a table key of non-empty strings:
    a forged one would otherwise reach DynamoDB as ExclusiveStartKey and fail
    there (a 500), or on moto not at all.
    """
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise field_error("cursor", "The cursor is not one this API returned.") from None
    if not isinstance(key, dict) or not all(
            isinstance(v, dict) and len(v) == 1 and isinstance(next(iter(v.values())), str) and set(v) <= {"S", "N"}
            for v in key.values()):
        raise field_error("cursor", "The cursor is not one this API returned.")
    if key.get(hash_attr, {}).get("S") != hash_value:
        raise field_error("cursor", "The cursor does not belong to this list.")
    if key_attrs is not None and (set(key) != set(key_attrs) or not all(v.get("S") for v in key.values())):
        raise field_error("cursor", "The cursor is not one this API returned.")
    return key


def decode_position(partition: str, cursor: str | None) -> int:
    """A cursor over a stored list (a position in it), bound to the list's partition: a forged one is a 400."""
    key = decode(cursor, hash_attr="pk", hash_value=partition)
    if key is None:
        return 0
    try:
        return max(0, int(key["pos"]["N"]))
    except (KeyError, ValueError):
        raise field_error("cursor", "The cursor is not one this API returned.") from None


def encode_position(partition: str, position: int) -> str | None:
    return encode({"pk": {"S": partition}, "pos": {"N": str(position)}})


def page_of(
    query: Callable[[int, dict[str, Any] | None], Iterable[Any]],
    *,
    limit: int,
    cursor: str | None,
    hash_attr: str,
    hash_value: str,
    key_attrs: tuple[str, ...],
) -> StoredPage[Any]:
    """Run `query(page_size, start_key)` for one page, with an exact `has_more`.

    DynamoDB returns a LastEvaluatedKey whenever a page is full, even if
    nothing follows; reading one extra item tells the truth, and the cursor is
    built from the last item returned (all our key attributes are strings).
    """
    start = decode(cursor, hash_attr=hash_attr, hash_value=hash_value, key_attrs=key_attrs)
    records = list(itertools.islice(query(limit + 1, start), limit + 1))
    if len(records) <= limit:
        return StoredPage(records, None)
    records = records[:limit]
    last = records[-1]
    return StoredPage(records, encode({attr: {"S": getattr(last, attr)} for attr in key_attrs}))
