"""Mail messages on the mail queue (one recipient each) and a tenant's mail settings."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from chalicelib.schemas.common import Channel, Input, Output

SourceKind = Literal["campaign", "trigger", "test"]
Clock = Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
"""A local wall-clock time, HH:MM (24 h)."""


class _Message(BaseModel):
    """Queue messages are written by our own code: unknown fields are a bug, so they are refused."""

    model_config = ConfigDict(extra="forbid", defer_build=True)


class MailSource(_Message):
    kind: SourceKind
    id: str = Field(min_length=1, max_length=120)
    occasion: str = Field(default="", max_length=120)


class MailMessage(_Message):
    """One message to one customer: the JSON body of one SQS message on the mail queue (contract version 1)."""

    v: Literal[1] = 1
    tenant_id: str = Field(min_length=1, max_length=40)
    scope: str = Field(min_length=1, max_length=80)
    customer_id: str = Field(min_length=1, max_length=80)
    channel: Channel
    template_id: str = Field(min_length=1, max_length=80)
    source: MailSource
    dedup_key: str = Field(min_length=1, max_length=200, pattern=r"^[^#\s]+$")
    coupon_code: str | None = None
    extra: dict[str, str | int] = Field(default_factory=dict)


class DeliveryCounts(Output):
    """What the mail worker did with the messages of one campaign or trigger."""

    sent: int = 0
    failed: int = 0
    suppressed: int = 0
    suppressed_by_reason: dict[str, int] = Field(default_factory=dict)


class QuietHours(Input):
    """SMS are not sent from `start` to `end` in the tenant's time zone; a window may cross midnight."""

    start: Clock = "21:00"
    end: Clock = "09:00"


class MailSettings(Input):
    email_from: str | None = Field(default=None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
                                   description="The sender address; verified with SES when saved.")
    sms_sender_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9]{1,11}$",
                                      description="Alphanumeric sender id shown on SMS (at most 11, one letter).")
    quiet_hours: QuietHours = Field(default_factory=QuietHours)
    weekly_cap: int = Field(default=3, ge=0, le=100, description="Messages per customer per ISO week; 0 = no cap.")
    sms_provider: str = Field(default="sns", pattern=r"^[a-z0-9_-]{1,40}$",
                              description="The SMS gateway, by its registered name.")

    @field_validator("sms_sender_id")
    @classmethod
    def _has_letter(cls, value: str | None) -> str | None:
        """Carriers reject an all-digit sender id (it would look like a phone number)."""
        if value is not None and not any(c.isalpha() for c in value):
            raise ValueError("needs at least one letter")
        return value
