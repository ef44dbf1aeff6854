"""Trigger settings of one program: which automated messages are on, through which channel and template."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import Field, model_validator

from chalicelib.schemas.common import Channel, Input, Output, Slug
from chalicelib.schemas.mail import Clock, DeliveryCounts


class TriggerBase(Input):
    enabled: bool = False
    channel: Channel = "sms"
    template_id: Slug | None = Field(default=None, description="A template of the same channel; required when on.")

    @model_validator(mode="after")
    def _template_when_on(self) -> TriggerBase:
        if self.enabled and not self.template_id:
            raise ValueError("template_id is required when the trigger is enabled")
        return self


class WelcomeTrigger(TriggerBase):
    """When a card of the program is activated (first purchase or explicit activation)."""


class BirthdayTrigger(TriggerBase):
    days_before: int = Field(default=0, ge=0, le=30, description="Send this many days before the birthday.")
    bonus_points: int = Field(default=0, ge=0, le=1_000_000, description="Points credited to the customer's card "
                              "of the program once a year with the message (0 = none); credited even when the "
                              "message itself is suppressed (no consent).")
    coupon_campaign_id: Slug | None = Field(default=None, description="Attach a code of this coupon campaign "
                                            "(a unique code per customer for a unique campaign).")


class PointsExpiringTrigger(TriggerBase):
    within_days: int = Field(default=14, ge=1, le=90)
    min_points: int = Field(default=1, ge=1, le=10**9)


class TierUpgradeTrigger(TriggerBase):
    """When a card reaches a higher tier."""


class WinBackTrigger(TriggerBase):
    days: int = Field(default=60, ge=7, le=730, description="No purchase for this many days (after at least one).")


class FeedbackTrigger(TriggerBase):
    survey_id: Slug | None = Field(default=None, description="A feedback survey; required when on. The message's "
                                   "`extra.survey_url` is the signed invitation link for the receipt.")

    @model_validator(mode="after")
    def _survey_when_on(self) -> FeedbackTrigger:
        if self.enabled and not self.survey_id:
            raise ValueError("survey_id is required when the feedback trigger is enabled")
        return self


class TriggerSettings(Input):
    """Each trigger fires at most once per customer per occasion; the daily run starts at `send_time` local."""

    send_time: Clock = Field(default="10:00", description="Local time (tenant's time zone) of the daily run; "
                             "must lie outside the SMS quiet hours when an SMS trigger is on.")
    welcome: WelcomeTrigger = Field(default_factory=WelcomeTrigger)
    birthday: BirthdayTrigger = Field(default_factory=BirthdayTrigger)
    points_expiring: PointsExpiringTrigger = Field(default_factory=PointsExpiringTrigger)
    tier_upgrade: TierUpgradeTrigger = Field(default_factory=TierUpgradeTrigger)
    win_back: WinBackTrigger = Field(default_factory=WinBackTrigger)
    feedback: FeedbackTrigger = Field(default_factory=FeedbackTrigger)


class TriggerRun(Output):
    day: date
    started_at: datetime
    finished_at: datetime | None = None
    customers: int = 0
    queued: int = 0
    by_kind: dict[str, int] = Field(default_factory=dict)


class TriggerSettingsOut(TriggerSettings):
    program_id: str
    updated_at: datetime | None = None
    stats: dict[str, DeliveryCounts] = Field(default_factory=dict, description="Per trigger, since it was created.")
    last_run: TriggerRun | None = None
