"""The `campaign_results` report: one row per campaign started in the period (or the one asked for).

The figures are `campaign_results.results`, the same as `GET /v1/campaigns/{id}/results`, flattened into
columns: nothing is recomputed here. Suppressions get a column per reason the mail worker knows
(`domain/delivery_rules.py`), so a spreadsheet sums them without parsing; a reason added later lands in
`suppressed_other` until it gets its own column. With `campaign_id` the report holds that campaign whatever
the period; without it, every campaign whose send started in [from, to), oldest first. Aggregates only: no
customer id or personal data.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from chalicelib.domain import delivery_rules
from chalicelib.schemas.campaigns import Campaign, CampaignResults, GroupResults
from chalicelib.services.marketing import campaign_results, campaigns
from chalicelib.services.reporting.reports import output
from chalicelib.services.reporting.reports.base import ReportContext, ReportType

PAGE = 100
SUPPRESSION_REASONS = (delivery_rules.NO_CONSENT, delivery_rules.OPTED_OUT, delivery_rules.ERASED,
                       delivery_rules.QUIET_HOURS, delivery_rules.FREQUENCY_CAP, delivery_rules.NO_CONTACT,
                       delivery_rules.INACTIVE)
GROUP_FIELDS = ("members", "buyers", "receipts", "revenue", "refunded", "conversion_bps", "revenue_per_member")
COLUMNS = (
    "campaign_id", "name", "channel", "status", "started_at", "window_end", "window_open",
    "targeted", "control", "queued", "delivered", "failed", "suppressed",
    *(f"suppressed_{reason}" for reason in SUPPRESSION_REASONS), "suppressed_other", "opt_outs",
    *(f"target_{name}" for name in GROUP_FIELDS), *(f"control_{name}" for name in GROUP_FIELDS),
    "conversion_uplift_bps", "incremental_revenue",
)


def rows(ctx: ReportContext) -> Iterator[list[Any]]:
    """One row per campaign (the one asked for, or those started in the period) with its results."""
    chosen = [campaigns.get(ctx.tenant_id, ctx.subject_id)] if ctx.subject_id else _started_in_period(ctx)
    for campaign in chosen:
        yield _row(campaign, campaign_results.results(ctx.tenant_id, campaign.id))


def charts(workbook: Workbook, sheet: Worksheet, count: int, ctx: ReportContext) -> None:
    """Conversion of the target vs the control group per campaign (columns)."""
    if count < 1:
        return
    output.column_chart(workbook, sheet, COLUMNS, count, COLUMNS[0],
                        ("target_conversion_bps", "control_conversion_bps"), "Conversion: target vs control",
                        "basis points (100 = 1%)")


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _started_in_period(ctx: ReportContext) -> list[Campaign]:
    """The tenant's campaigns whose send started in [start, end), oldest first (a tenant has few campaigns)."""
    start, end = _midnight(ctx.start), _midnight(ctx.end)
    found: list[Campaign] = []
    cursor: str | None = None
    while True:
        page, cursor = campaigns.list_all(ctx.tenant_id, PAGE, cursor)
        found.extend(c for c in page if c.started_at is not None and start <= c.started_at < end)
        if cursor is None:
            break
    return sorted(found, key=lambda c: (c.started_at, c.id))


def _group(results: GroupResults) -> list[Any]:
    return [getattr(results, name) for name in GROUP_FIELDS]


def _row(campaign: Campaign, done: CampaignResults) -> list[Any]:
    """The campaign's results as one row of COLUMNS."""
    by_reason = dict(done.suppressed_by_reason)
    known = [int(by_reason.pop(reason, 0)) for reason in SUPPRESSION_REASONS]
    return [
        campaign.id, campaign.name, campaign.channel, done.status,
        done.sent_at.isoformat() if done.sent_at else None, done.window_end.isoformat() if done.window_end else None,
        done.window_open, campaign.counts.targeted, campaign.counts.control, campaign.counts.queued,
        done.delivered, done.failed, done.suppressed, *known, sum(by_reason.values()), done.opt_outs,
        *_group(done.target), *_group(done.control), done.conversion_uplift_bps, done.incremental_revenue,
    ]


CAMPAIGN_RESULTS = ReportType(
    name="campaign_results",
    description="Per campaign started in the period (or the one given): deliveries, suppressions by reason, "
                "opt-outs, target and control group purchases, conversion uplift and incremental revenue.",
    columns=COLUMNS,
    rows=rows,
    charts=charts,
    subject="campaign",
    subject_optional=True,
)
