"""Segments: saved filters over the customer base (mailings and reports select their audience with them)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, model_validator

from chalicelib.schemas.common import Input, Name, Output, Query, Slug, Text
from chalicelib.schemas.customers import AcquisitionChannel, Tag

Days = Annotated[int, Field(ge=1, le=3650)]
Region = Annotated[str, StringConstraints(min_length=1, max_length=64)]
SegmentId = Annotated[str, StringConstraints(min_length=1, max_length=40)]
SAMPLE_SIZE = 10


class SegmentFilter(Input):
    """All conditions set must hold (AND); a list means any of its values (OR). Omitted: no condition."""

    program_id: Slug | None = Field(default=None, description="Members holding a card of this program; card "
                                    "conditions (tiers, expiring points) then look at that program's cards only.")
    tiers: list[Slug] | None = Field(default=None, min_length=1, max_length=20, description="A card in one of these.")
    tags_any: list[Tag] | None = Field(default=None, min_length=1, max_length=50)
    tags_all: list[Tag] | None = Field(default=None, min_length=1, max_length=50)
    birthday_within_days: int | None = Field(default=None, ge=0, le=60, description="Birthday today (0) or within "
                                             "N days, in the tenant's time zone; 29 February counts as 28 February "
                                             "in other years.")
    no_purchase_for_days: Days | None = Field(default=None, description="No purchase in the last N days (never "
                                              "purchased included).")
    purchased_within_days: Days | None = Field(default=None, description="At least one purchase in the last N days.")
    spend_min: int | None = Field(default=None, ge=0, le=10**12, description="Lifetime spend (receipts less "
                                  "refunds) at least this, minor units.")
    spend_max: int | None = Field(default=None, ge=0, le=10**12, description="Lifetime spend at most this.")
    store_ids: list[Slug] | None = Field(default=None, min_length=1, max_length=100,
                                         description="Bought at any of these stores.")
    regions: list[Region] | None = Field(default=None, min_length=1, max_length=50,
                                         description="Bought at a store of any of these regions.")
    consent: Literal["sms", "email"] | None = Field(default=None, description="The consent is currently granted.")
    points_expiring_within_days: int | None = Field(default=None, ge=1, le=365,
                                                    description="Points expiring within N days...")
    points_expiring_min: int | None = Field(default=None, ge=1, le=10**9,
                                            description="...at least this many (default 1).")
    acquisition_channels: list[AcquisitionChannel] | None = Field(default=None, min_length=1, max_length=8)
    created_within_days: Days | None = Field(default=None, description="Registered in the last N days.")

    @model_validator(mode="after")
    def _consistent(self) -> SegmentFilter:
        if self.spend_min is not None and self.spend_max is not None and self.spend_min > self.spend_max:
            raise ValueError("spend_min must not exceed spend_max")
        if self.points_expiring_min is not None and self.points_expiring_within_days is None:
            raise ValueError("points_expiring_min needs points_expiring_within_days")
        if (self.no_purchase_for_days is not None and self.purchased_within_days is not None
                and self.purchased_within_days <= self.no_purchase_for_days):
            raise ValueError("purchased_within_days must exceed no_purchase_for_days, or nobody can match")
        return self

    def as_doc(self) -> dict[str, Any]:
        """The stored form: only the conditions set."""
        return self.model_dump(mode="json", exclude_none=True)


class SegmentIn(Input):
    name: Name
    description: Text | None = None
    filter: SegmentFilter


class SegmentUpdate(SegmentIn):
    version: int | None = Field(default=None, ge=1, description="The version you read: if the segment changed "
                                "since, 409 `segment_changed` instead of overwriting someone else's edit.")


class SegmentOut(Output):
    segment_id: str
    name: str
    description: str | None = None
    filter: SegmentFilter
    version: int
    created_at: datetime
    updated_at: datetime


class PreviewIn(Input):
    filter: SegmentFilter


class PreviewOut(Output):
    count: int
    sample: list[str] = Field(description=f"Up to {SAMPLE_SIZE} matching customer ids.")


class SegmentCount(Output):
    segment_id: str
    count: int
    at: datetime = Field(description="The moment the count was taken.")


class SegmentListQuery(Query):
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=2048)
