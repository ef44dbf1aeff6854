"""The `coalition_settlement` report: the settlement between a coalition's partners for the period.

The figures are `coalitions.partner_settlement` / `coalitions.settlement`, the same as the settlement
routes, over the UTC days [from, to): nothing is recomputed. A partner's tenant admin sees what the partner
route shows, its own line and the coalition's totals, never another partner's line. Asked by the agency
(through its tenant route), the report has every partner's line, as the agency route shows; that file is
for agency keys only (`agency_view`). Rows: one per partner, then `total` (the partners' sums, breakage in
`points_expired`) and `pool` (the pool's side: `amount` = -total, so the transfers balance to zero).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from chalicelib.domain.roles import Role
from chalicelib.schemas.coalitions import MAX_SETTLEMENT_DAYS, Settlement
from chalicelib.services.program import coalitions
from chalicelib.services.reporting.reports import output
from chalicelib.services.reporting.reports.base import ReportContext, ReportType
from chalicelib.services.tenancy import tenancy

LINE_FIELDS = ("points_accrued", "points_bonus", "points_reversed", "points_adjusted", "points_issued",
               "points_redeemed_gross", "points_returned", "points_redeemed", "net_points", "amount",
               "points_expired", "entries")
COLUMNS = ("coalition_id", "partner_id", "currency", "point_value", *LINE_FIELDS)
TOTAL, POOL = "total", "pool"


def rows(ctx: ReportContext) -> Iterator[list[Any]]:
    """One row per partner of the coalition, then the totals: what each owes or is owed."""
    done = settlement(ctx)
    head = [done.coalition_id]
    tail = [done.currency, done.point_value]
    for line in done.partners:
        yield [*head, line.partner_id, *tail, *(getattr(line, name) for name in LINE_FIELDS)]
    totals = done.totals
    total = {"points_issued": totals.points_issued, "points_redeemed": totals.points_redeemed,
             "net_points": totals.net_points, "amount": totals.amount, "points_expired": totals.breakage_points}
    yield [*head, TOTAL, *tail, *(total.get(name) for name in LINE_FIELDS)]
    yield [*head, POOL, *tail, *({"amount": totals.pool_amount}.get(name) for name in LINE_FIELDS)]
    ctx.notes["partners"] = len(done.partners)


def charts(workbook: Workbook, sheet: Worksheet, count: int, ctx: ReportContext) -> None:
    """Points issued vs redeemed per partner (columns)."""
    partners = int(ctx.notes.get("partners", 0))
    if partners < 1:
        return
    output.column_chart(workbook, sheet, COLUMNS, partners, "partner_id", ("points_issued", "points_redeemed"),
                        "Points issued vs redeemed per partner")


def settlement(ctx: ReportContext) -> Settlement:
    """The partner's view, or every partner's line when the tenant's agency asked."""
    coalition_id, start, end = str(ctx.subject_id), _midnight(ctx.start), _midnight(ctx.end)
    if ctx.role == Role.AGENCY and coalition_id in {c.coalition_id for c in coalitions.of_tenant(ctx.tenant_id)}:
        return coalitions.settlement(tenancy.require_tenant(ctx.tenant_id).agency_id, coalition_id, start, end)
    return coalitions.partner_settlement(ctx.tenant_id, coalition_id, start, end)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


COALITION_SETTLEMENT = ReportType(
    name="coalition_settlement",
    description="A coalition's settlement for the period: per partner points issued / redeemed, net and money "
                "owed (a partner sees its own line; the agency every partner's), with totals and the pool's side.",
    columns=COLUMNS,
    rows=rows,
    charts=charts,
    subject="coalition",
    max_days=MAX_SETTLEMENT_DAYS,
    agency_view=True,
)
