"""Coalitions: one points program shared by several tenants (partners) of one agency, and its settlement."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import Field, ValidationInfo, field_validator

from chalicelib.schemas.common import Input, Name, Output, Query, Slug
from chalicelib.schemas.tenancy import Program, ProgramKind, ProgramSpec

MAX_MEMBERS = 50
MAX_SETTLEMENT_DAYS = 366


class CoalitionCreate(Input):
    """`POST /v1/agency/coalitions`: the coalition, its shared program and its first partners."""

    coalition_id: Slug
    name: Name
    program: ProgramSpec = Field(description="The shared program (kind points); partners find it by its id.")
    members: list[Slug] = Field(min_length=2, max_length=MAX_MEMBERS,
                                description="Tenant ids of this agency's tenants that become partners.")

    @field_validator("program")
    @classmethod
    def _points(cls, value: ProgramSpec) -> ProgramSpec:
        if value.kind is not ProgramKind.POINTS:
            raise ValueError("a coalition shares a points program (kind 'points')")
        return value


class MemberAdd(Input):
    tenant_id: Slug


class Coalition(Output):
    coalition_id: str
    agency_id: str
    name: str
    program_id: str
    currency: str = Field(description="Every partner's currency: settlement amounts are in it.")
    members: list[str] = Field(description="Current partners: their tills find the coalition's cards.")
    former_members: list[str] = Field(default_factory=list,
                                      description="Removed partners: still settled for what they processed.")
    created_at: datetime
    updated_at: datetime


class CoalitionDetail(Coalition):
    program: Program | None = Field(default=None, description="The shared program's rules.")


class SettlementQuery(Query):
    """A period of ledger time: `from` inclusive, `to` exclusive, both with a time zone offset."""

    start: datetime = Field(alias="from", description="Start of the period (inclusive), e.g. 2026-11-01T00:00:00Z.")
    end: datetime = Field(alias="to", description="End of the period (exclusive).")

    @field_validator("start", "end")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("needs a time zone offset, e.g. 2026-11-01T00:00:00+03:00")
        return value

    @field_validator("end")
    @classmethod
    def _period(cls, value: datetime, info: ValidationInfo) -> datetime:
        start = info.data.get("start")
        if start is None:
            return value
        if value <= start:
            raise ValueError("must be after from")
        if value - start > timedelta(days=MAX_SETTLEMENT_DAYS):
            raise ValueError(f"a settlement period is at most {MAX_SETTLEMENT_DAYS} days")
        return value


class SettlementLine(Output):
    """One partner's points in the period. Point counts are non-negative except `points_adjusted` and the nets."""

    partner_id: str
    points_accrued: int = Field(description="Accrual entries: points earned on its receipts.")
    points_bonus: int = Field(description="Bonus entries it gave.")
    points_reversed: int = Field(description="Accrued points taken back by its refunds.")
    points_adjusted: int = Field(description="Manual adjustments it made, signed (credits positive).")
    points_issued: int = Field(description="accrued + bonus - reversed + adjusted.")
    points_redeemed_gross: int = Field(description="Points customers spent at it.")
    points_returned: int = Field(description="Spent points given back by its refunds.")
    points_redeemed: int = Field(description="redeemed_gross - returned.")
    net_points: int = Field(description="issued - redeemed.")
    amount: int = Field(description="net_points x point_value, minor units: positive, the partner owes the pool; "
                        "negative, the pool owes the partner.")
    points_expired: int = Field(description="Breakage attributed to this partner (expiry entries naming it); "
                                "not part of its net: the pool keeps their value.")
    entries: int = Field(description="Ledger entries counted.")


class SettlementTotals(Output):
    points_issued: int
    points_redeemed: int
    net_points: int
    amount: int = Field(description="Sum of the partners' amounts: what the pool receives net.")
    pool_amount: int = Field(description="The pool's side, -amount: partner amounts + pool_amount = 0.")
    breakage_points: int = Field(description="Points that expired in the period (they leave circulation unspent), "
                                 "from expiry entries that name a partner: only those are in the partner index.")
    breakage_amount: int = Field(description="breakage_points x point_value: value the pool keeps.")
    outstanding_change: int = Field(description="Change of points in customers' hands: net_points - breakage_points.")


class Settlement(Output):
    coalition_id: str
    program_id: str
    point_value: int = Field(description="Minor units per point (the program's current redemption.point_value).")
    currency: str
    start: datetime = Field(description="Period start (inclusive).")
    end: datetime = Field(description="Period end (exclusive).")
    partners: list[SettlementLine]
    totals: SettlementTotals


class MemberCoalition(Output):
    """A coalition the caller's tenant belongs to, as a partner sees it."""

    coalition_id: str
    name: str
    members: list[str]
    program: Program | None
