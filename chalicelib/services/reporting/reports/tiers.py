"""The `tier_distribution` report: the members' cards per tier now, and the tier moves in the period.

Moves come from the program's `tier` ledger entries in the period (the
by-day index); cards per tier now from the members' cards (see
program_cards: anonymous cards are not in it). A card without a tier counts
under `none`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from chalicelib.domain import reporting
from chalicelib.services.reporting.reports import ledger, program_cards
from chalicelib.services.reporting.reports.base import ReportContext, ReportType

NO_TIER = "none"


def rows(ctx: ReportContext) -> Iterator[list[Any]]:
    numbers = (n for _, _, cards in program_cards.members(ctx.tenant_id, ctx.program.id) for n in cards)
    now: Counter[str] = Counter(card.tier or NO_TIER for card in program_cards.cards_of(ctx.tenant_id, numbers))
    moves: Counter[tuple[str, str]] = Counter()
    cards = ledger.Cards(ctx.tenant_id)
    for day in reporting.days(ctx.start, ctx.end):
        for _, _, doc in ledger.program_entries(ctx.tenant_id, day, ctx.program.id, cards):
            entry = ledger.entry_of(doc)
            if entry.type == "tier":
                moves[(entry.previous_tier or NO_TIER, entry.tier or NO_TIER)] += 1
    ctx.notes["tiers_now"] = len(now)
    yield from reporting.tier_rows(now, moves)


def charts(workbook: Workbook, sheet: Worksheet, count: int, ctx: ReportContext) -> None:
    """A pie of the cards per tier now."""
    tiers = int(ctx.notes.get("tiers_now", 0))
    if tiers < 1:
        return
    name = sheet.get_name()
    pie = workbook.add_chart({"type": "pie"})
    pie.add_series({"name": "Cards per tier", "categories": [name, 1, 1, tiers, 1], "values": [name, 1, 4, tiers, 4],
                    "data_labels": {"value": True, "percentage": True}})
    pie.set_title({"name": "Cards per tier"})
    workbook.add_worksheet("Charts").insert_chart("A1", pie, {"x_scale": 1.5, "y_scale": 1.5})


TIER_DISTRIBUTION = ReportType(
    name="tier_distribution",
    description="The members' cards per tier now, and the tier moves (from -> to) in the period.",
    columns=reporting.TIER_COLUMNS,
    rows=rows,
    charts=charts,
)
