"""The `program_summary` report: the program's key figures per day, and a total row.

Members and new members by acquisition channel come from the customer base
(a member is an active customer with a card of the program, counted from the
day they registered); active members, receipts, revenue and points from the
program's ledger entries in the period (the by-day index, as the ledger
export reads it), each receipt's total from its record. A receipt that moved
no points (nothing earned, nothing redeemed) leaves no ledger entry and is
not counted. Outstanding liability is the members' cards' points now
(pending included, debts deducted) at the program's point value; see
program_cards for why anonymous cards are not in it. Points are gross with
what refunds took back (reversed) and gave back (returned) beside them, under
the dashboard's names (see SUMMARY_COLUMNS). Breakage is expired points over
the points that stayed earned (earned less reversed; basis points), per day
and for the period.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from chalicelib.domain import reporting
from chalicelib.services.reporting.reports import ledger, program_cards
from chalicelib.services.reporting.reports.base import ReportContext, ReportType
from chalicelib.storage import reports as store


def rows(ctx: ReportContext) -> Iterator[list[Any]]:
    """The program summary: one row per day of the period, members and liability included."""
    counts, liability = _members(ctx)
    yield from reporting.summary_rows(ctx.start, ctx.end, counts, _figures(ctx), liability,
                                      ctx.program.redemption.point_value)


def charts(workbook: Workbook, sheet: Worksheet, count: int, ctx: ReportContext) -> None:
    """Members and revenue over time (line, revenue on the right axis); points earned vs redeemed (columns)."""
    days = count - 1  # the last row is the total
    if days < 1:
        return
    name = sheet.get_name()
    col = reporting.SUMMARY_COLUMNS.index

    def series(column: str) -> dict[str, Any]:
        return {"name": [name, 0, col(column)], "categories": [name, 1, 0, days, 0],
                "values": [name, 1, col(column), days, col(column)]}

    page = workbook.add_worksheet("Charts")
    trend = workbook.add_chart({"type": "line"})
    trend.add_series(series("members"))
    trend.add_series({**series("revenue"), "y2_axis": True})
    trend.set_title({"name": "Members and revenue"})
    trend.set_y_axis({"name": "members"})
    trend.set_y2_axis({"name": "revenue (minor units)"})
    page.insert_chart("A1", trend, {"x_scale": 2, "y_scale": 1.5})
    points = workbook.add_chart({"type": "column"})
    points.add_series(series("points_earned"))
    points.add_series(series("points_redeemed"))
    points.set_title({"name": "Points earned vs redeemed"})
    page.insert_chart("A24", points, {"x_scale": 2, "y_scale": 1.5})


def _members(ctx: ReportContext) -> tuple[reporting.MemberCounts, int]:
    counts = reporting.MemberCounts()
    liability = 0
    numbers: list[str] = []
    for _, doc, cards in program_cards.members(ctx.tenant_id, ctx.program.id):
        when = program_cards.registered(doc)
        if when is not None and when.date() < ctx.end:
            acquisition = doc.profile_or_empty().acquisition
            channel = acquisition.channel if acquisition else None
            counts.add(when.date(), ctx.start, channel)
        numbers.extend(cards)
    for card in program_cards.cards_of(ctx.tenant_id, iter(numbers)):
        liability += card.wallet.total
    return counts, liability


def _figures(ctx: ReportContext) -> Iterator[reporting.DayFigures]:
    cards = ledger.Cards(ctx.tenant_id)
    for day in reporting.days(ctx.start, ctx.end):
        figures = reporting.DayFigures()
        for number, customer_id, entry in ledger.program_entries(ctx.tenant_id, day, ctx.program.id, cards):
            figures.add(customer_id or number, entry)
        totals = store.receipt_totals(ctx.tenant_id, list(figures.receipts)) if figures.receipts else {}
        figures.receipts = {rid: totals.get(rid, 0) for rid in figures.receipts}
        yield figures


PROGRAM_SUMMARY = ReportType(
    name="program_summary",
    description="Members, new members by channel, active members, receipts, revenue, points earned / reversed / "
                "redeemed / returned / expired, liability and breakage, per day and in total.",
    columns=reporting.SUMMARY_COLUMNS,
    rows=rows,
    charts=charts,
)
