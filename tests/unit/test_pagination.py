"""Cursors are opaque, round-trip, and are bound to the partition they came from."""

from __future__ import annotations

import pytest

from chalicelib.errors import ApiError
from chalicelib.storage import pagination


def test_cursor_round_trip() -> None:
    key = {"pk": {"S": "coffee-house"}, "sk": {"S": "store#msk-01"}}
    cursor = pagination.encode(key)
    assert cursor and "=" not in cursor
    assert pagination.decode(cursor, hash_attr="pk", hash_value="coffee-house") == key
    assert pagination.encode(None) is None and pagination.decode(None, hash_attr="pk", hash_value="x") is None


@pytest.mark.parametrize("cursor", [
    "!!!", "bm90IGpzb24", pagination.encode({"pk": {"S": "fuel-net"}, "sk": {"S": "store#a"}}),
    pagination.encode({"pk": {"S": "coffee-house"}, "sk": {"M": {}}}),
    pagination.encode({"sk": {"S": "x"}}),
])
def test_foreign_or_forged_cursors_are_a_400_on_the_cursor_field(cursor: str) -> None:
    with pytest.raises(ApiError) as info:
        pagination.decode(cursor, hash_attr="pk", hash_value="coffee-house")
    assert info.value.status == 400 and info.value.details[0].field == "cursor"


class _Rec:
    def __init__(self, sk: str) -> None:
        self.pk, self.sk = "t", sk


def test_page_of_reads_one_extra_item_to_know_if_more_follow() -> None:
    data = [_Rec(f"s{i}") for i in range(5)]

    def query(size: int, start: dict | None) -> list[_Rec]:
        after = start["sk"]["S"] if start else ""
        return [r for r in data if r.sk > after][:size]

    items, cursor = pagination.page_of(query, limit=2, cursor=None, hash_attr="pk", hash_value="t", key_attrs=("pk", "sk"))
    seen = [r.sk for r in items]
    while cursor:
        items, cursor = pagination.page_of(query, limit=2, cursor=cursor, hash_attr="pk", hash_value="t",
                                           key_attrs=("pk", "sk"))
        seen += [r.sk for r in items]
    assert seen == ["s0", "s1", "s2", "s3", "s4"]
    items, cursor = pagination.page_of(query, limit=5, cursor=None, hash_attr="pk", hash_value="t", key_attrs=("pk", "sk"))
    assert len(items) == 5 and cursor is None
