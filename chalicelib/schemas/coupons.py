"""Coupon campaigns: unique codes generated in bulk, or one shared code; their effects and limits."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from chalicelib.schemas.common import Input, Name, Output, Slug

_CODE_CHARS = re.compile(r"[\s-]+")


def normalise_code(value: str) -> str:
    """Codes are compared without case, spaces or dashes: 'ab12-cd34' is 'AB12CD34'."""
    return _CODE_CHARS.sub("", value).upper()


CouponCode = Annotated[str, StringConstraints(min_length=4, max_length=40), AfterValidator(normalise_code)]
SharedCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{4,32}$"), AfterValidator(normalise_code)]


class EffectKind(StrEnum):
    PERCENT_OFF = "percent_off"
    AMOUNT_OFF = "amount_off"
    BONUS_POINTS = "bonus_points"
    MULTIPLIER = "multiplier"


class CouponEffect(Input):
    kind: EffectKind
    value: int = Field(ge=1, le=10**9, description="percent_off and multiplier: basis points (1000 = 10%, 20000 = "
                       "2x); amount_off: minor units; bonus_points: points.")

    @model_validator(mode="after")
    def _bounds(self) -> CouponEffect:
        if self.kind is EffectKind.PERCENT_OFF and self.value > 10_000:
            raise ValueError("percent_off is at most 10000 basis points (100%)")
        if self.kind is EffectKind.MULTIPLIER and not 10_000 < self.value <= 100_000:
            raise ValueError("a multiplier is above 10000 (1x) and at most 100000 (10x)")
        return self


class RefundPolicy(StrEnum):
    """release: a receipt refunded in full gives its coupon use back; keep: a used coupon stays used."""

    RELEASE = "release"
    KEEP = "keep"


class CouponLimits(Input):
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    uses_per_code: int = Field(default=1, ge=0, le=10**9, description="Uses of each code; 0 = unlimited.")
    per_customer: int = Field(default=1, ge=0, le=1000, description="Uses by one card's customer; 0 = unlimited.")
    min_receipt: int = Field(default=0, ge=0, le=10**12, description="Minimum receipt total, minor units.")
    categories: list[Annotated[str, StringConstraints(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=200, description="The effect applies to these categories only; empty: all.")

    @model_validator(mode="after")
    def _window(self) -> CouponLimits:
        for value in (self.starts_at, self.ends_at):
            if value is not None and value.tzinfo is None:
                raise ValueError("starts_at and ends_at need a time zone offset")
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class CampaignStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"


class GenerationStatus(StrEnum):
    GENERATING = "generating"
    READY = "ready"
    FAILED = "failed"


class CampaignCreate(Input):
    id: Slug
    name: Name
    program_id: Slug
    mode: Literal["unique", "shared"]
    code: SharedCode | None = Field(default=None, description="shared mode: the one code everybody types.")
    count: int | None = Field(default=None, ge=1, le=1_000_000, description="unique mode: how many codes to generate.")
    effect: CouponEffect
    limits: CouponLimits = Field(default_factory=CouponLimits)
    refund_policy: RefundPolicy = RefundPolicy.RELEASE

    @model_validator(mode="after")
    def _mode(self) -> CampaignCreate:
        if self.mode == "shared" and (self.code is None or self.count is not None):
            raise ValueError("a shared campaign has a code and no count")
        if self.mode == "unique" and (self.count is None or self.code is not None):
            raise ValueError("a unique campaign has a count and no code")
        return self


class CampaignUpdate(Input):
    """What can change once codes are out: the name, the status and the end of validity."""

    name: Name | None = None
    status: CampaignStatus | None = None
    ends_at: datetime | None = None


class Campaign(Output):
    id: str
    name: str
    program_id: str
    mode: str
    code: str | None = None
    count: int | None = None
    effect: CouponEffect
    limits: CouponLimits
    refund_policy: RefundPolicy
    status: CampaignStatus
    generation: GenerationStatus
    generated: int = Field(default=0, description="Codes generated so far (unique mode).")
    generation_error: str | None = Field(default=None, description="Why generation failed, when it did.")
    created_at: datetime


class CouponCodeView(Output):
    code: str
    campaign_id: str
    uses: int
    max_uses: int = Field(description="0 = unlimited.")


class CouponLookup(Output):
    """A code as a till sees it before the sale: whose it is, what it gives, and whether it is usable now."""

    code: str
    campaign_id: str
    campaign_name: str
    program_id: str
    effect: CouponEffect
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    min_receipt: int = 0
    categories: list[str] = Field(default_factory=list)
    uses: int
    max_uses: int = Field(description="0 = unlimited.")
    uses_left: int | None = Field(default=None, description="None: unlimited.")
    per_customer: int = Field(description="Uses per customer; 0 = unlimited (checked at the sale, per card).")
    usable_now: bool = Field(description="Usable at this moment, before the receipt's own conditions.")
    reason: str | None = Field(default=None, description="Why not, when not usable: the purchase's reason code.")
    message: str | None = None


class CouponResult(Output):
    """What happened to one code sent with a purchase or quote."""

    code: str
    applied: bool
    campaign_id: str | None = None
    reason: str | None = Field(default=None, description="Why it was not applied: a stable code.")
    message: str | None = None
    discount: int = Field(default=0, description="Money off the receipt by this coupon, minor units.")
    bonus_points: int = 0
