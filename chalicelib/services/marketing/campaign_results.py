"""Campaign results: deliveries, opt-outs, and purchases attributed to the send against the control group.

The attribution window starts when the fan-out started (`started_at`: the
campaign's send) and lasts `attribution_days`. A member of either group
counts the purchases whose sale time falls in the window, net of their
refunds (whenever refunded), from their purchase log. The control group was
drawn at random from the same segment at the same time and not sent to, so
the difference between the groups is what the mailing caused.

One pass, computed on request: one Query per recipient (its purchase log in
the window) and one read per recipient sent to (its consents), READERS of
them in flight at once (the calls wait on the network, not the CPU: with 16
in flight a 1,000-recipient campaign's results take a sixteenth of the
sequential time at DynamoDB latencies). It is meant for campaigns of up to
about ten thousand recipients, which fit in the API's 29 s at usual DynamoDB
latencies; bigger ones would need the figures kept up by a job. Recipients are counted under the id that was sent
to: after a merge, the survivor's purchases are not added to a merged
duplicate that was a recipient, nor the duplicate's earlier log to a
surviving recipient (the log stays in the duplicate's partition).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from chalicelib import clock
from chalicelib.domain import campaigns as rules
from chalicelib.schemas.campaigns import CampaignResults, GroupResults
from chalicelib.services.marketing import campaigns
from chalicelib.storage import campaigns as store
from chalicelib.storage import customers as customer_records
from chalicelib.storage import purchase_log

READERS = 16
"""Recipients read at once (threads: each waits on one DynamoDB call at a time)."""


@dataclass
class _Group:
    members: int = 0
    buyers: int = 0
    receipts: int = 0
    revenue: int = 0
    refunded: int = 0

    def add(self, entries: list[purchase_log.Entry]) -> None:
        self.members += 1
        purchases = sum(1 for e in entries if e.kind == "purchase")
        self.buyers += 1 if purchases else 0
        self.receipts += purchases
        self.revenue += sum(e.total for e in entries)
        self.refunded -= sum(e.total for e in entries if e.kind == "refund")

    def totals(self) -> rules.GroupTotals:
        return rules.GroupTotals(self.members, self.buyers, self.receipts, self.revenue)


def results(tenant_id: str, campaign_id: str) -> CampaignResults:
    """The campaign's results as of now (404 campaign_not_found for another tenant's or an unknown campaign)."""
    campaign = campaigns.get(tenant_id, campaign_id)
    scope = tenant_id
    groups = {"target": _Group(), "control": _Group()}
    opt_outs = 0
    start = campaign.started_at
    end = start + timedelta(days=campaign.attribution_days) if start else None
    if start is not None and end is not None:
        window_start, window_end = start, end

        def read(row: tuple[str, str, datetime]) -> tuple[str, list[purchase_log.Entry], bool]:
            customer_id, group, _ = row
            entries = purchase_log.between(scope, customer_id, window_start, window_end)
            return group, entries, group == "target" and _opted_out(scope, customer_id, campaign.channel,
                                                                    window_start)

        with ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="campaign-results") as pool:
            for group, entries, opted_out in pool.map(read, store.recipients(tenant_id, campaign_id)):
                groups[group].add(entries)
                opt_outs += 1 if opted_out else 0
    target, control = groups["target"], groups["control"]
    done = rules.attribution(target.totals(), control.totals())
    now = clock.now()
    counts = campaign.counts
    return CampaignResults(
        campaign_id=campaign.id, status=campaign.status, channel=campaign.channel, sent_at=start,
        attribution_days=campaign.attribution_days, window_end=end,
        window_open=now < end if end else campaign.status in ("scheduled", "sending"),
        delivered=counts.sent, failed=counts.failed, suppressed=counts.suppressed,
        suppressed_by_reason=counts.suppressed_by_reason, opt_outs=opt_outs,
        target=_view(target, done.target_conversion_bps, done.target_revenue_per_member),
        control=_view(control, done.control_conversion_bps, done.control_revenue_per_member),
        conversion_uplift_bps=done.conversion_uplift_bps, incremental_revenue=done.incremental_revenue)


def _opted_out(scope: str, customer_id: str, channel: str, since: datetime) -> bool:
    """The customer's latest decision on the channel is a withdrawal made at or after the send."""
    got = customer_records.get(scope, customer_id)
    consent = got.doc.consents.get(channel) if got else None
    if consent is None or consent.granted or not consent.at:
        return False
    return datetime.fromisoformat(consent.at) >= since


def _view(group: _Group, conversion: int | None, per_member: int | None) -> GroupResults:
    return GroupResults(members=group.members, buyers=group.buyers, receipts=group.receipts, revenue=group.revenue,
                        refunded=group.refunded, conversion_bps=conversion, revenue_per_member=per_member)
