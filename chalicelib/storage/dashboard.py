"""Dashboard counters in the loyalty table: sharded per tenant, local day and program, moved only by ADDs.

`<tid>#dash#<YYYY-MM-DD> / p#<program id or ->#s#<NN>`: one partition per
tenant and local day, one item per program and shard (NN < 16). A day's
partition holds at most 16 x (programs + 1) small items, so one Query reads
a whole day, tenant-wide or (by sort-key prefix) for one program.

Figures are top-level number attributes `c_<figure>` updated with ADD, which
creates the item and the attribute on first use (an ADD on a path inside
`doc` would fail while the item does not exist yet); `doc` is an empty map,
so every loyalty item keeps `kind`, `doc` and `at`. No read before the write,
and the update joins the transaction of the write it counts, so it happens
exactly when that write does. Items expire `KEEP_DAYS` after their day.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from pynamodb.expressions.operand import Path

from chalicelib.domain.dashboard import FIGURES, NO_PROGRAM
from chalicelib.settings import settings
from chalicelib.storage import aws
from chalicelib.storage.tables import LoyaltyRecord
from chalicelib.storage.transactions import Tx

PREFIX = "c_"
KEEP_DAYS = 400
"""Long enough for this month and the same month a year ago."""


def day_pk(tenant_id: str, day: date) -> str:
    return f"{tenant_id}#dash#{day.isoformat()}"


def slot_sk(program_id: str | None, shard: int) -> str:
    return f"p#{program_id or NO_PROGRAM}#s#{shard:02d}"


def count(tx: Tx, tenant_id: str, program_id: str | None, day: date, shard: int, deltas: dict[str, int],
          at: datetime) -> None:
    """Queue ADDs of `deltas` to one counter item in the caller's transaction (one more item in it)."""
    unknown = set(deltas) - set(FIGURES)
    if unknown:
        raise ValueError(f"not a dashboard figure: {sorted(unknown)}")
    expires = datetime.combine(day + timedelta(days=KEEP_DAYS), time(), tzinfo=UTC)
    actions: list[Any] = [Path(PREFIX + name).add(int(value)) for name, value in sorted(deltas.items())]
    actions += [LoyaltyRecord.kind.set("dashboard"), LoyaltyRecord.doc.set(LoyaltyRecord.doc | {}),
                LoyaltyRecord.at.set(at), LoyaltyRecord.expires_at_epoch.set(int(expires.timestamp()))]
    tx.update(LoyaltyRecord(day_pk(tenant_id, day), slot_sk(program_id, shard)), actions=actions)


def day_rows(tenant_id: str, day: date) -> Iterator[tuple[str, dict[str, int]]]:
    """Every counter item of the tenant's day as (program slot, figures); eventually consistent (a dashboard)."""
    client = aws.client("dynamodb")
    request: dict[str, Any] = {
        "TableName": settings.loyalty_table, "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": day_pk(tenant_id, day)}},
    }
    while True:
        page = client.query(**request)
        for item in page.get("Items", []):
            program = item["sk"]["S"].split("#")[1]
            yield program, {name: int(item[PREFIX + name]["N"]) for name in FIGURES if PREFIX + name in item}
        if "LastEvaluatedKey" not in page:
            return
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
