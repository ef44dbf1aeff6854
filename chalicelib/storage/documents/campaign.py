"""Mail campaign documents: the campaign (`<tid>#mail-campaigns` / `campaign#<id>`) and its recipients."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from chalicelib.storage.documents.common import Document


class FanOutCounts(Document):
    """How far the fan-out got: members found, held out as control, messages queued."""

    targeted: int = 0
    control: int = 0
    queued: int = 0


class MailCampaignDoc(Document):
    """The definition as created, its status and the fan-out position; `created_at` is the record's time."""

    id: str
    tenant_id: str
    name: str
    segment_id: str
    channel: str
    template_id: str
    coupon_campaign_id: str | None = None
    send_at: str
    send_at_requested: str | None = None
    holdout_bps: int = 1000
    attribution_days: int = 7
    status: str
    counts: FanOutCounts | None = None
    position: list[Any] | None = None
    started_at: str | None = None
    finished_at: str | None = None
    failure: str | None = None
    created_at: datetime | None = Field(default=None, exclude=True)


class Recipient(Document):
    """`<tid>#mail-campaign#<id>` / `r#<customer id>`: sent to (`target`) or held out (`control`)."""

    group: str
