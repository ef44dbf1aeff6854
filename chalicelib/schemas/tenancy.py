"""Agencies, tenants, programs, stores: used by the API and by `tenants/*.yaml`."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from chalicelib.domain.ids import RESERVED_TENANT_IDS
from chalicelib.schemas.common import Input, Name, Output, Slug, Text
from chalicelib.schemas.keys import KeyCreated

Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
TimeZone = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class Plan(StrEnum):
    """Service tier: maps to request-rate limits (see infra/)."""

    BASIC = "basic"
    STANDARD = "standard"
    PREMIUM = "premium"


class TenantStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    DELETING = "deleting"


class ProgramKind(StrEnum):
    POINTS = "points"
    DISCOUNT = "discount"


class ProgramStatus(StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"


class Activation(StrEnum):
    """When a new card starts earning and spending."""

    IMMEDIATE = "immediate"
    FIRST_PURCHASE = "first_purchase"
    REGISTRATION = "registration"


class Rounding(StrEnum):
    DOWN = "down"
    HALF_UP = "half_up"


def _check_timezone(value: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc
    return value


class EarningRules(Input):
    """Points earned per purchase. Rates are basis points (500 = 5%): no floats near money."""

    rate_bps: int = Field(
        default=0,
        ge=0,
        le=10_000,
        description="Share of the eligible amount given back, in basis points (500 = 5%), "
        "converted to points at redemption.point_value.",
    )
    rounding: Rounding = Rounding.DOWN
    min_receipt: int = Field(default=0, ge=0, description="Minimum receipt total (minor units) to earn anything.")
    excluded_categories: list[Annotated[str, StringConstraints(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=200
    )


class RedemptionRules(Input):
    point_value: int = Field(
        default=100, ge=1, le=1_000_000, description="Minor units one point is worth when redeemed (100 = 1 RUB)."
    )
    max_share_bps: int = Field(
        default=3_000, ge=0, le=10_000, description="Maximum share of a receipt payable with points, basis points."
    )
    min_balance: int = Field(default=0, ge=0, description="Points a card must hold before any can be redeemed.")


class DiscountRules(Input):
    percent_bps: int = Field(default=0, ge=0, le=10_000)


class ProgramSpec(Input):
    """A loyalty program as written by an admin or in a tenant file."""

    id: Slug
    name: Name
    description: Text = ""
    kind: ProgramKind = ProgramKind.POINTS
    status: ProgramStatus = ProgramStatus.ACTIVE
    activation: Activation = Activation.IMMEDIATE
    earning: EarningRules = Field(default_factory=EarningRules)
    redemption: RedemptionRules = Field(default_factory=RedemptionRules)
    discount: DiscountRules = Field(default_factory=DiscountRules)
    store_ids: list[Slug] = Field(
        default_factory=list, max_length=5000, description="Program geography: empty means every store."
    )
    pending_days: int = Field(
        default=0, ge=0, le=365, description="Days before earned points become spendable (return window)."
    )
    expiry_days: int = Field(default=0, ge=0, le=3650, description="Days after which earned points expire; 0 = never.")

    @model_validator(mode="after")
    def _kind_matches_rules(self) -> ProgramSpec:
        if self.kind is ProgramKind.DISCOUNT and self.discount.percent_bps == 0:
            raise ValueError("a discount program needs discount.percent_bps > 0")
        if self.kind is ProgramKind.POINTS and self.earning.rate_bps == 0:
            raise ValueError("a points program needs earning.rate_bps > 0")
        if len(set(self.store_ids)) != len(self.store_ids):
            raise ValueError("store_ids contains duplicates")
        return self


class ProgramUpdate(Input):
    """Full replacement of a program's editable parts (the id comes from the path)."""

    name: Name
    description: Text = ""
    kind: ProgramKind = ProgramKind.POINTS
    status: ProgramStatus = ProgramStatus.ACTIVE
    activation: Activation = Activation.IMMEDIATE
    earning: EarningRules = Field(default_factory=EarningRules)
    redemption: RedemptionRules = Field(default_factory=RedemptionRules)
    discount: DiscountRules = Field(default_factory=DiscountRules)
    store_ids: list[Slug] = Field(default_factory=list, max_length=5000)
    pending_days: int = Field(default=0, ge=0, le=365)
    expiry_days: int = Field(default=0, ge=0, le=3650)

    def with_id(self, program_id: str) -> ProgramSpec:
        return ProgramSpec.model_validate({"id": program_id, **self.model_dump(mode="json")}, strict=False)


class Program(ProgramSpec):
    model_config = {"extra": "forbid", "strict": False}
    tenant_id: str
    version: int
    created_at: datetime
    updated_at: datetime


class StoreSpec(Input):
    id: Slug
    name: Name
    region: Annotated[str, StringConstraints(max_length=64)] = ""
    address: Annotated[str, StringConstraints(max_length=300)] = ""
    partner_id: Slug | None = Field(
        default=None, description="In a coalition, the partner business that runs this store."
    )
    active: bool = True


class StoreUpdate(Input):
    name: Name
    region: Annotated[str, StringConstraints(max_length=64)] = ""
    address: Annotated[str, StringConstraints(max_length=300)] = ""
    partner_id: Slug | None = None
    active: bool = True

    def with_id(self, store_id: str) -> StoreSpec:
        return StoreSpec.model_validate({"id": store_id, **self.model_dump(mode="json")}, strict=False)


class Store(StoreSpec):
    model_config = {"extra": "forbid", "strict": False}
    tenant_id: str
    created_at: datetime
    updated_at: datetime


class PartnerSpec(Input):
    """A business sharing a coalition program with the tenant's other partners."""

    id: Slug
    name: Name


class TenantSettings(Input):
    """The editable parts of a tenant."""

    name: Name
    plan: Plan = Plan.STANDARD
    currency: Currency = "RUB"
    timezone: TimeZone = "Europe/Moscow"
    partners: list[PartnerSpec] = Field(default_factory=list, max_length=50)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return _check_timezone(value)

    @field_validator("partners")
    @classmethod
    def _unique_partners(cls, value: list[PartnerSpec]) -> list[PartnerSpec]:
        ids = [p.id for p in value]
        if len(set(ids)) != len(ids):
            raise ValueError("partner ids must be unique")
        return value


class TenantUpdate(Input):
    name: Name | None = None
    plan: Plan | None = None
    status: Literal["active", "suspended"] | None = Field(
        default=None, description="Suspend a tenant: its keys stop working within 30 seconds."
    )
    timezone: TimeZone | None = None
    partners: list[PartnerSpec] | None = Field(default=None, max_length=50)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return None if value is None else _check_timezone(value)


def _check_tenant_id(value: str) -> str:
    if value in RESERVED_TENANT_IDS:
        raise ValueError(f"{value!r} is reserved")
    return value


def check_references(partners: list[PartnerSpec], programs: list[ProgramSpec], stores: list[StoreSpec]) -> None:
    """Cross-entity checks shared by the API and tenant files."""
    partner_ids = {p.id for p in partners}
    store_ids = [s.id for s in stores]
    if len(set(store_ids)) != len(store_ids):
        raise ValueError("store ids must be unique")
    program_ids = [p.id for p in programs]
    if len(set(program_ids)) != len(program_ids):
        raise ValueError("program ids must be unique")
    for store in stores:
        if store.partner_id and store.partner_id not in partner_ids:
            raise ValueError(f"store {store.id!r} names unknown partner {store.partner_id!r}")
    known = set(store_ids)
    for program in programs:
        unknown = [s for s in program.store_ids if s not in known]
        if unknown:
            raise ValueError(f"program {program.id!r} names unknown stores {unknown}")


class TenantCreate(TenantSettings):
    """`POST /v1/agency/tenants`: a tenant with its first program (and optional stores)."""

    tenant_id: Slug
    program: ProgramSpec
    stores: list[StoreSpec] = Field(
        default_factory=list,
        max_length=90,
        description="Up to 90 stores created atomically with the tenant; add more with POST /v1/stores.",
    )

    @field_validator("tenant_id")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        return _check_tenant_id(value)

    @model_validator(mode="after")
    def _refs(self) -> TenantCreate:
        check_references(self.partners, [self.program], self.stores)
        return self


class Tenant(Output):
    tenant_id: str
    agency_id: str
    name: str
    plan: Plan
    status: TenantStatus
    currency: str
    timezone: str
    partners: list[PartnerSpec]
    created_at: datetime
    updated_at: datetime


class TenantProvisioned(Output):
    tenant: Tenant
    program: Program
    stores: list[Store]
    keys: list[KeyCreated] = Field(description="The tenant's first admin and POS keys. Shown only in this response.")


class AgencyCreate(Input):
    agency_id: Slug
    name: Name
    contact_email: Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)] | None = (
        None
    )

    @field_validator("agency_id")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        return _check_tenant_id(value)


class Agency(Output):
    agency_id: str
    name: str
    contact_email: str | None = None
    created_at: datetime


class AgencyProvisioned(Output):
    agency: Agency
    key: KeyCreated


class TenantFileAgency(Input):
    id: Slug
    name: Name


class TenantFileTenant(TenantSettings):
    id: Slug

    @field_validator("id")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        return _check_tenant_id(value)


class TenantFile(Input):
    """`tenants/*.yaml`: a tenant's programs and stores as code, applied idempotently."""

    agency: TenantFileAgency
    tenant: TenantFileTenant
    programs: list[ProgramSpec] = Field(min_length=1, max_length=50)
    stores: list[StoreSpec] = Field(default_factory=list, max_length=5000)

    @model_validator(mode="after")
    def _refs(self) -> TenantFile:
        check_references(self.tenant.partners, self.programs, self.stores)
        return self
