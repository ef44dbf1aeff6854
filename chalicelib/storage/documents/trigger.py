"""Trigger documents (`<tid>#mail-triggers`): a program's trigger settings and its daily run's state."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from chalicelib.domain.triggers import KINDS
from chalicelib.storage.documents.common import Document


class TriggerSpec(Document):
    """One trigger's settings; the fields past the first three belong to particular kinds."""

    enabled: bool = False
    channel: str = "sms"
    template_id: str | None = None
    days_before: int | None = None
    bonus_points: int | None = None
    coupon_campaign_id: str | None = None
    within_days: int | None = None
    min_points: int | None = None
    days: int | None = None
    survey_id: str | None = None


class TriggerSettingsDoc(Document):
    """`program#<pid>`: the program's TriggerSettings in JSON form; `updated_at` is the record's time."""

    send_time: str = "10:00"
    welcome: TriggerSpec | None = None
    birthday: TriggerSpec | None = None
    points_expiring: TriggerSpec | None = None
    tier_upgrade: TriggerSpec | None = None
    win_back: TriggerSpec | None = None
    feedback: TriggerSpec | None = None
    updated_at: datetime | None = Field(default=None, exclude=True)

    def triggers(self) -> dict[str, TriggerSpec]:
        """The trigger sections present, by kind."""
        found = {kind: getattr(self, kind) for kind in KINDS}
        return {kind: spec for kind, spec in found.items() if spec is not None}


class TriggerRunState(Document):
    """`run#<pid>`: the last local day queued (one run per day) and the latest run's figures (TriggerRun JSON)."""

    day_queued: str | None = None
    last_run: dict[str, Any] | None = None


class TriggerSendDoc(Document):
    """`<tid>#trigger-sends#<pid>#<kind>` / `<queued at>#<dedup key>`: one trigger message the run queued (no
    personal data: the customer by id); its outcome is the delivery record of `dedup_key`."""

    dedup_key: str
    customer_id: str
    channel: str
    template_id: str | None = None
    occasion: str = ""
