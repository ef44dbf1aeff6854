"""Mailing campaigns: a segment, a channel and a template, sent now or at a time, with a hold-out control group."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, Field

from chalicelib.schemas.common import Channel, Input, Name, Output, Slug

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


class CampaignCounts(Output):
    targeted: int = Field(description="Segment members found (recipients + control group).")
    control: int = Field(description="Members kept out as the control group.")
    queued: int = Field(description="Messages handed to the mail queue.")
    sent: int = 0
    failed: int = 0
    suppressed: int = 0
    suppressed_by_reason: dict[str, int] = Field(default_factory=dict)


class Campaign(Output):
    id: str
    name: str
    segment_id: str
    channel: str
    template_id: str
    coupon_campaign_id: str | None = None
    send_at: datetime
    holdout_bps: int
    attribution_days: int
    status: CampaignStatus
    counts: CampaignCounts
    started_at: datetime | None = None
    finished_at: datetime | None = None
    failure: str | None = None
    created_at: datetime
