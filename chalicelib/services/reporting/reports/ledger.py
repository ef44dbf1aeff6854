"""The `ledger` report: every points ledger entry of the program's cards in the period, oldest first.

Read from the by-day ledger index (`gsi2`, see storage/tables.py), one day at
a time, merging the day's 8 shards in time order: no scan, and memory holds
one index page per shard plus a bounded cache of cards. Entries written before
that index existed are not in it and are not exported.

An entry does not name its program; the card does. Cards are looked up in
batches of 100 (BatchGetItem) and remembered in an LRU cache of
`CARD_CACHE` cards. The customer column is the card's customer now.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from datetime import date
from typing import Any

from chalicelib.domain import reporting
from chalicelib.schemas.pos import LedgerEntry
from chalicelib.services.reporting.reports.base import ReportContext, ReportType
from chalicelib.storage import reports as store
from chalicelib.storage.loyalty import LEDGER_SHARDS

CARD_CACHE = 50_000
LOOKUP_BATCH = 100

Item = tuple[str, str, dict[str, Any]]


class Cards:
    """Card number -> (program id, customer id), looked up in batches, bounded."""

    def __init__(self, tenant_id: str) -> None:
        self.tenant_id = tenant_id
        self._known: OrderedDict[str, tuple[str, str | None]] = OrderedDict()

    def facts(self, numbers: list[str]) -> dict[str, tuple[str, str | None]]:
        missing = [n for n in dict.fromkeys(numbers) if n not in self._known]
        if missing:
            found = store.card_facts(self.tenant_id, missing)
            for number in missing:
                self._known[number] = found.get(number, ("", None))
        out = {}
        for number in numbers:
            self._known.move_to_end(number)
            out[number] = self._known[number]
        while len(self._known) > CARD_CACHE:
            self._known.popitem(last=False)
        return out


def rows(ctx: ReportContext) -> Iterator[list[Any]]:
    """Every ledger entry of the program's cards in the period, day by day."""
    cards = Cards(ctx.tenant_id)
    for day in reporting.days(ctx.start, ctx.end):
        for number, customer_id, entry in program_entries(ctx.tenant_id, day, ctx.program.id, cards):
            yield reporting.ledger_row(number, customer_id, entry)


def day_entries(tenant_id: str, day: date) -> Iterator[Item]:
    """Every indexed points entry of the tenant on `day` (UTC), in time order (all programs)."""
    return reporting.merge_by_key(store.ledger_day(tenant_id, day, shard) for shard in range(LEDGER_SHARDS))


def program_entries(tenant_id: str, day: date, program_id: str, cards: Cards
                    ) -> Iterator[tuple[str, str | None, dict[str, Any]]]:
    """The program's entries on `day`, in time order: (card number, customer id or None, entry doc)."""
    batch: list[Item] = []
    for item in day_entries(tenant_id, day):
        batch.append(item)
        if len(batch) >= LOOKUP_BATCH:
            yield from _of_program(batch, cards, program_id)
            batch = []
    yield from _of_program(batch, cards, program_id)


def _of_program(batch: list[Item], cards: Cards, program_id: str) -> Iterator[tuple[str, str | None, dict[str, Any]]]:
    facts = cards.facts([number for _, number, _ in batch])
    for _, number, entry in batch:
        program, customer_id = facts[number]
        if program == program_id:
            yield number, customer_id, entry


def entry_of(doc: dict[str, Any]) -> LedgerEntry:
    """An entry of the by-day index as the model it was written from (only points entries are indexed)."""
    return LedgerEntry.model_validate(doc)


LEDGER = ReportType(
    name="ledger",
    description="Every points ledger entry of the program's cards in the period, oldest first.",
    columns=reporting.LEDGER_COLUMNS,
    rows=rows,
)
