"""The `simulation` report: a promotion cost replay too large to answer at once (see services/simulation.py).

It is requested by POST /v1/programs/{id}/simulate, which keeps the proposed
rules in the report's record; the rows are the replay's per-day figures, then
its per-category figures, the tier counts under the proposed thresholds, and
a total row carrying the redemption rate and the customers affected.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from chalicelib.services.reporting import simulation as sim
from chalicelib.services.reporting.reports.base import ReportContext, ReportError, ReportType

COLUMNS = ("section", "key", "receipts", "points_current", "points_proposed", "extra_points",
           "expected_redemption_cost", "liability_change", "customers_affected", "redemption_rate_bps",
           "redemption_rate_basis", "cards_current", "cards_proposed")
FIGURES = COLUMNS[2:8]


def rows(ctx: ReportContext) -> Iterator[list[Any]]:
    """The recorded proposal replayed over the period next to the current rules."""
    proposal = sim.proposal_of(ctx.tenant_id, ctx.report_id)
    if proposal is None:
        raise ReportError("no_proposal", "A simulation is requested with POST /v1/programs/{id}/simulate.")
    current = sim.points_program(ctx.tenant_id, ctx.program.id)
    outcome = sim.run(ctx.tenant_id, current, sim.proposed_spec(current.id, proposal), ctx.start, ctx.end)
    answer = sim.result(current.id, ctx.start, ctx.end, outcome)
    for day in answer.by_day:
        yield _row("day", day.day.isoformat(), day.model_dump())
    for category in answer.by_category:
        yield _row("category", category.category, category.model_dump())
    for tier in answer.tiers:
        yield ["tier", tier.tier, *[""] * (len(COLUMNS) - 4), tier.cards_current, tier.cards_proposed]
    rate = answer.redemption_rate
    yield _row("total", "", answer.totals.model_dump(), customers_affected=answer.customers_affected,
               redemption_rate_bps=rate.rate_bps, redemption_rate_basis=rate.basis)


def _row(section: str, key: str, figures: dict[str, Any], **extra: Any) -> list[Any]:
    return [section, key, *(figures[c] for c in FIGURES), *(extra.get(c, "") for c in COLUMNS[8:])]


SIMULATION = ReportType(
    name="simulation",
    description="A promotion cost replay (requested through POST /v1/programs/{id}/simulate): points under the "
                "current and proposed rules per day, per category and in total, with their cost.",
    columns=COLUMNS,
    rows=rows,
    formats=frozenset({"csv"}),
)
