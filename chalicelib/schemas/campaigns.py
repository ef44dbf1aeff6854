"""Mailing campaigns: a segment, a channel and a template, sent now or at a time, with a hold-out control group."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, Field

from chalicelib.schemas.common import Channel, Input, Name, Output, Slug
from chalicelib.schemas.mail import DeliveryCounts

CampaignStatus = Literal["scheduled", "sending", "sent", "cancelled", "failed"]


class CampaignCreate(Input):
    id: Slug
    name: Name
    segment_id: Slug
    channel: Channel
    template_id: Slug
    coupon_campaign_id: Slug | None = Field(default=None, description="Attach a code of this coupon campaign to "
                                            "each message (a unique code per recipient for a unique campaign).")
    send_at: AwareDatetime | None = Field(default=None, description="When to send (with a time zone); default now.")
    holdout_bps: int = Field(default=1000, ge=0, le=5000, description="Share of the segment kept as a control "
                             "group that is not sent to, in basis points (1000 = 10%): the baseline of the uplift.")
    attribution_days: int = Field(default=7, ge=1, le=90, description="Purchases within this many days after the "
                                  "send count as the campaign's result.")


class CampaignCounts(DeliveryCounts):
    targeted: int = Field(description="Segment members found (recipients + control group).")
    control: int = Field(description="Members kept out as the control group.")
    queued: int = Field(description="Messages handed to the mail queue.")


class Campaign(Output):
    id: str
    name: str
    segment_id: str
    channel: str
    template_id: str
    coupon_campaign_id: str | None = None
    send_at: datetime
    send_at_requested: datetime | None = None
    holdout_bps: int
    attribution_days: int
    status: CampaignStatus
    counts: CampaignCounts
    started_at: datetime | None = None
    finished_at: datetime | None = None
    failure: str | None = None
    created_at: datetime


class GroupResults(Output):
    members: int = Field(description="Customers in the group (target: sent to; control: held out).")
    buyers: int = Field(description="Members with at least one purchase in the attribution window.")
    receipts: int = Field(description="Their purchases in the window.")
    revenue: int = Field(description="Money of those purchases net of their refunds, minor units.")
    refunded: int = Field(description="Money refunded on those purchases so far, minor units.")
    conversion_bps: int | None = Field(description="Buyers per member in basis points; null for an empty group.")
    revenue_per_member: int | None = Field(description="Net revenue per member, minor units rounded half to even; "
                                           "null for an empty group.")


class CampaignResults(Output):
    campaign_id: str
    status: CampaignStatus
    channel: str
    sent_at: datetime | None = Field(description="When the fan-out started; null before the send.")
    attribution_days: int
    window_end: datetime | None = Field(description="Purchases made before this count (sent_at + attribution_days).")
    window_open: bool = Field(description="The window has not ended yet: the figures can still change.")
    delivered: int
    failed: int
    suppressed: int
    suppressed_by_reason: dict[str, int]
    opt_outs: int = Field(description="Recipients whose consent to the campaign's channel was withdrawn after the "
                          "send.")
    target: GroupResults
    control: GroupResults
    conversion_uplift_bps: int | None = Field(description="Target minus control conversion, basis points "
                                              "(150 = 1.5 percentage points); null without a control group.")
    incremental_revenue: int | None = Field(description="(Target - control revenue per member) x target members, "
                                            "minor units; null without a control group.")
