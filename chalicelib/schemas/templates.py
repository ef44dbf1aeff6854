"""Message templates (SMS and e-mail) and their previews."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, ValidationInfo, field_validator

from chalicelib.schemas.common import Channel, Input, Name, Output, Query, Slug

Subject = Annotated[str, StringConstraints(min_length=1, max_length=500)]
Body = Annotated[str, StringConstraints(min_length=1, max_length=20_000)]
CustomerId = Annotated[str, StringConstraints(min_length=1, max_length=80)]
CouponCode = Annotated[str, StringConstraints(min_length=1, max_length=64)]
ExtraKey = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
ExtraValue = Annotated[str, StringConstraints(max_length=500)] | int


def subject_for(channel: str | None, subject: str | None) -> str | None:
    """E-mail needs a subject, SMS has none (checked on `subject`, so the error names that field)."""
    if channel == "email" and subject is None:
        raise ValueError("an e-mail template needs a subject")
    if channel == "sms" and subject is not None:
        raise ValueError("an SMS template has no subject")
    return subject


class _Content(Input):
    name: Name
    channel: Channel
    subject: Subject | None = Field(default=None, validate_default=True,
                                    description="Jinja2; e-mail only, and required there.")
    body: Body = Field(description="Jinja2 text: variables first_name, last_name, balance, tier, expiring_points, "
                       "expiring_date, coupon_code, unsubscribe_url, tenant_name, extra.<key>.")

    @field_validator("subject")
    @classmethod
    def _subject_for_email_only(cls, subject: str | None, info: ValidationInfo) -> str | None:
        return subject_for(info.data.get("channel"), subject)


class TemplateIn(_Content):
    id: Slug = Field(description="Chosen by the tenant, unique among its templates.")


class TemplateUpdate(_Content):
    version: int | None = Field(default=None, ge=1, description="The version you read: if the template changed "
                                "since, 409 `template_changed` instead of overwriting someone else's edit.")


class TemplateOut(Output):
    id: str
    name: str
    channel: Channel
    subject: str | None = None
    body: str
    variables: list[str] = Field(description="The variables the template uses.")
    version: int
    created_at: datetime
    updated_at: datetime


class TemplateListQuery(Query):
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=2048)


class PreviewIn(Input):
    customer_id: CustomerId
    coupon_code: CouponCode | None = None
    extra: dict[ExtraKey, ExtraValue] = Field(default_factory=dict, max_length=20)


class DraftPreviewIn(PreviewIn):
    channel: Channel
    subject: Subject | None = Field(default=None, validate_default=True)
    body: Body

    @field_validator("subject")
    @classmethod
    def _subject_for_email_only(cls, subject: str | None, info: ValidationInfo) -> str | None:
        return subject_for(info.data.get("channel"), subject)


class PreviewOut(Output):
    subject: str | None = None
    body: str
    sms_segments: int | None = Field(default=None, description="SMS only: segments billed.")
    encoding: Literal["GSM-7", "UCS-2"] | None = Field(default=None, description="SMS only.")
    characters: int = Field(description="Characters in the body.")
