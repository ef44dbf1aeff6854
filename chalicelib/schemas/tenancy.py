"""Agencies, tenants, programs, stores: used by the API and by `tenants/*.yaml`."""

from __future__ import annotations

import itertools
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from chalicelib.schemas.common import Input, Name, Output, Slug, Text
from chalicelib.schemas.customers import PersonalField
from chalicelib.schemas.keys import KeyCreated

Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
TimeZone = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Language = Literal["ru", "en"]
"""A tenant's language: of the captions its e-mails' HTML frame adds and of its wallet passes' default texts."""
LANGUAGE_HELP = ("The tenant's language, `ru` or `en`: the captions its e-mails add (balance, coupon, "
                 "unsubscribe) and its wallet passes' default texts. Default `ru`.")
RESERVED_TENANT_IDS = frozenset({"platform", "agency", "system", "admin", "v1"})
"""Words that would make a tenant's partition look like a control-plane one."""


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
    """points: earn and spend points; discount: money off every receipt (tiers may set the percent);
    gift: cards that hold money (gift, prepaid, fuel cards), spent as a tender at the till."""

    POINTS = "points"
    DISCOUNT = "discount"
    GIFT = "gift"


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


Label = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Multiplier = Annotated[int, Field(ge=0, le=100_000, description="Basis points of the base rate: 20000 = double.")]


class EarningMode(StrEnum):
    PERCENT = "percent"
    PER_AMOUNT = "per_amount"


class RefundSpentPolicy(StrEnum):
    """What a refund does when the points it must reverse were already spent."""

    NEGATIVE_BALANCE = "negative_balance"
    WRITE_OFF = "write_off"


class Promotion(Input):
    """A time-boxed earning boost, e.g. double points on coffee for two weeks."""

    id: Slug
    name: Name
    starts_at: datetime
    ends_at: datetime
    categories: list[Label] = Field(default_factory=list, max_length=200, description="Empty: every category.")
    skus: list[Label] = Field(default_factory=list, max_length=1000, description="Empty: every SKU.")
    store_ids: list[Slug] = Field(default_factory=list, max_length=5000, description="Empty: every store.")
    multiplier_bps: Multiplier = 10_000
    bonus_points: int = Field(default=0, ge=0, le=1_000_000, description="Extra points once per matching receipt.")

    @model_validator(mode="after")
    def _window(self) -> Promotion:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if self.starts_at.tzinfo is None or self.ends_at.tzinfo is None:
            raise ValueError("starts_at and ends_at need a time zone offset, e.g. 2026-12-01T00:00:00+03:00")
        return self


class EarningRules(Input):
    """Points earned per purchase. Rates are basis points (500 = 5%): no floats near money.

    Points are computed for the whole receipt and rounded once (see `rounding`),
    never per line, so splitting a receipt into lines changes nothing.
    """

    mode: EarningMode = EarningMode.PERCENT
    rate_bps: int = Field(
        default=0,
        ge=0,
        le=10_000,
        description="percent mode: share of the eligible amount given back, in basis points (500 = 5%), "
        "converted to points at redemption.point_value.",
    )
    per_amount_points: int = Field(default=0, ge=0, le=1_000_000, description="per_amount mode: N points ...")
    per_amount_step: int = Field(default=0, ge=0, description="per_amount mode: ... per this many minor units spent.")
    rounding: Rounding = Rounding.DOWN
    min_receipt: int = Field(default=0, ge=0, description="Minimum receipt total (minor units) to earn anything.")
    excluded_categories: list[Label] = Field(default_factory=list, max_length=200)
    excluded_skus: list[Label] = Field(default_factory=list, max_length=5000)
    category_multipliers: dict[str, Multiplier] = Field(default_factory=dict, max_length=200)
    sku_multipliers: dict[str, Multiplier] = Field(default_factory=dict, max_length=5000)
    promotions: list[Promotion] = Field(default_factory=list, max_length=100)


class RedemptionRules(Input):
    point_value: int = Field(
        default=100, ge=1, le=1_000_000, description="Minor units one point is worth when redeemed (100 = 1 RUB)."
    )
    max_share_bps: int = Field(
        default=3_000, ge=0, le=10_000, description="Maximum share of a receipt payable with points, basis points."
    )
    min_balance: int = Field(default=0, ge=0, description="Points a card must hold before any can be redeemed.")
    refund_spent_policy: RefundSpentPolicy = Field(
        default=RefundSpentPolicy.NEGATIVE_BALANCE,
        description="negative_balance: the card owes the points and repays them from its next accruals; "
        "write_off: the program absorbs what cannot be reversed.",
    )


class DiscountRules(Input):
    percent_bps: int = Field(default=0, ge=0, le=10_000)


class TierMetric(StrEnum):
    SPEND = "spend"
    POINTS = "points"


class Downgrade(StrEnum):
    """none: a tier is kept for good; period_end: at the end of each review period the card drops to what it
    qualifies for then; grace: when qualification falls below the tier, the card keeps it for grace_days first."""

    NONE = "none"
    PERIOD_END = "period_end"
    GRACE = "grace"


class Tier(Input):
    id: Slug
    name: Name
    threshold: int = Field(ge=0, le=10**13, description="Qualification needed: spend (minor units) or points.")
    earn_multiplier_bps: Multiplier = Field(default=10_000, description="Multiplies points earned: 15000 = 1.5x.")
    discount_bps: int = Field(default=0, ge=0, le=10_000, description="Money off every receipt, basis points.")


class TierRules(Input):
    """Levels by cumulative spend or points earned, over the card's lifetime or a rolling window."""

    metric: TierMetric = TierMetric.SPEND
    window_days: int = Field(default=0, ge=0, le=1_095, description="Rolling window; 0 = lifetime.")
    levels: list[Tier] = Field(min_length=1, max_length=20, description="Ascending thresholds; the first is 0.")
    downgrade: Downgrade = Downgrade.NONE
    review_days: int = Field(default=365, ge=1, le=1_095, description="period_end: length of a tier period.")
    grace_days: int = Field(default=30, ge=1, le=365, description="grace: days a card keeps a tier it fell below.")

    @model_validator(mode="after")
    def _ascending(self) -> TierRules:
        thresholds = [t.threshold for t in self.levels]
        if thresholds[0] != 0:
            raise ValueError("the first tier is the base tier: its threshold must be 0")
        if any(b <= a for a, b in itertools.pairwise(thresholds)):
            raise ValueError("tier thresholds must be strictly ascending")
        ids = [t.id for t in self.levels]
        if len(set(ids)) != len(ids):
            raise ValueError("tier ids must be unique")
        if self.metric is TierMetric.POINTS and self.window_days == 0 and self.downgrade is not Downgrade.NONE:
            raise ValueError("lifetime points never decrease: use downgrade 'none' or a window_days")
        return self


class GiftRules(Input):
    """Cards that hold money (minor units): sold with a nominal, optionally reloadable, with a validity."""

    nominals: list[Annotated[int, Field(ge=1, le=10**9)]] = Field(
        default_factory=list, max_length=20, description="Allowed sale amounts; empty: any from min to max.")
    min_amount: int = Field(default=100, ge=1, le=10**9)
    max_amount: int = Field(default=10**7, ge=1, le=10**9)
    max_balance: int = Field(default=10**7, ge=1, le=10**10, description="Most money a card may hold.")
    reloadable: bool = Field(default=False, description="Prepaid / subscription / fuel cards can be topped up.")
    validity_days: int = Field(default=365, ge=0, le=3_650, description="Days from sale to expiry; 0 = never.")

    @model_validator(mode="after")
    def _range(self) -> GiftRules:
        if self.min_amount > self.max_amount:
            raise ValueError("min_amount must not exceed max_amount")
        if self.max_amount > self.max_balance:
            raise ValueError("max_amount must not exceed max_balance")
        return self


class ReferralRules(Input):
    """"Bring a friend": both are rewarded after the friend's first qualifying purchase, not at sign-up."""

    friend_points: int = Field(default=0, ge=0, le=10**9, description="Bonus points for the new customer.")
    referrer_points: int = Field(default=0, ge=0, le=10**9, description="Bonus points for the member who invited.")
    min_purchase: int = Field(default=0, ge=0, le=10**12,
                              description="Minor units: the receipt total that makes a purchase qualifying.")
    max_per_referrer: int = Field(default=20, ge=0, le=10000,
                                  description="Friends a member can be rewarded for; the friend's bonus is not capped.")

    @model_validator(mode="after")
    def _some_reward(self) -> ReferralRules:
        if self.friend_points == 0 and self.referrer_points == 0:
            raise ValueError("a referral program rewards the friend, the referrer or both")
        return self


class CardNumberRules(Input):
    """Format of card numbers generated for this program (the last digit is a Luhn check digit)."""

    prefix: Annotated[str, StringConstraints(pattern=r"^[0-9]{0,10}$")] = ""
    length: int = Field(default=13, ge=8, le=19)

    @model_validator(mode="after")
    def _room(self) -> CardNumberRules:
        if self.length - len(self.prefix) < 7:
            raise ValueError("leave at least 7 digits after the prefix (6 random + the check digit)")
        return self


class ProgramBody(Input):
    """Everything a program is, except its id."""

    name: Name
    description: Text = ""
    kind: ProgramKind = ProgramKind.POINTS
    status: ProgramStatus = ProgramStatus.ACTIVE
    activation: Activation = Activation.IMMEDIATE
    earning: EarningRules = Field(default_factory=EarningRules)
    redemption: RedemptionRules = Field(default_factory=RedemptionRules)
    discount: DiscountRules = Field(default_factory=DiscountRules)
    store_ids: list[Slug] = Field(
        default_factory=list,
        max_length=5000,
        description="Program geography by store; with regions empty too: every store.",
    )
    regions: list[Label] = Field(default_factory=list, max_length=200, description="Program geography by store region.")
    card_numbers: CardNumberRules = Field(default_factory=CardNumberRules)
    pending_days: int = Field(
        default=0, ge=0, le=365, description="Days before earned points become spendable (return window)."
    )
    expiry_days: int = Field(default=0, ge=0, le=3650, description="Days after which earned points expire; 0 = never.")
    tiers: TierRules | None = None
    gift: GiftRules = Field(default_factory=GiftRules, description="For kind 'gift' only.")
    referral: ReferralRules | None = None

    @model_validator(mode="after")
    def _kind_matches_rules(self) -> ProgramBody:
        earning = self.earning
        if self.kind is ProgramKind.GIFT and self.tiers is not None:
            raise ValueError("a gift program holds money; it has no tiers")
        if self.kind is not ProgramKind.POINTS and self.referral is not None:
            raise ValueError("referral rewards are points: only a points program has them")
        tier_discounts = self.tiers is not None and any(t.discount_bps for t in self.tiers.levels)
        if self.kind is ProgramKind.DISCOUNT and self.discount.percent_bps == 0 and not tier_discounts:
            raise ValueError("a discount program needs discount.percent_bps > 0 or tiers with discount_bps")
        if self.kind is ProgramKind.POINTS:
            if earning.mode is EarningMode.PERCENT and earning.rate_bps == 0:
                raise ValueError("a points program needs earning.rate_bps > 0")
            if earning.mode is EarningMode.PER_AMOUNT and (
                earning.per_amount_points == 0 or earning.per_amount_step == 0
            ):
                raise ValueError("per_amount earning needs per_amount_points > 0 and per_amount_step > 0")
        if len(set(self.store_ids)) != len(self.store_ids):
            raise ValueError("store_ids contains duplicates")
        return self


class ProgramSpec(ProgramBody):
    """A loyalty program as written by an admin or in a tenant file."""

    id: Slug


class ProgramUpdate(ProgramBody):
    """Full replacement of a program's editable parts (the id comes from the path): a new rule version."""

    effective_at: datetime | None = Field(
        default=None,
        description="When the new rules take effect (with a time zone offset); default now, never in the past. "
        "A version replaces every earlier version once it takes effect, including ones scheduled later.",
    )

    def with_id(self, program_id: str) -> ProgramSpec:
        return ProgramSpec.model_validate({"id": program_id, **self.model_dump(mode="json", exclude={"effective_at"})},
                                          strict=False)


class Program(ProgramSpec):
    model_config = {"extra": "forbid", "strict": False}
    tenant_id: str
    version: int = Field(description="The rule version; every ledger entry records the version that produced it.")
    effective_at: datetime | None = Field(default=None, description="When this version took (or takes) effect.")
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


class Privacy(Input):
    """Minimal-data mode and the consent texts in force."""

    disabled_fields: list[PersonalField] = Field(
        default_factory=list, max_length=9,
        description="Personal fields this tenant does not collect: the API refuses to store them.")
    consent_text_version: Annotated[str, StringConstraints(min_length=1, max_length=40)] = Field(
        default="v1", description="The consent text version recorded when a form does not say which it showed.")


HexColour = Annotated[str, StringConstraints(pattern=r"^#[0-9a-fA-F]{6}$")]
AssetId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]{8,40}$")]


class Branding(Input):
    """How the tenant's member site looks: colours, logo, and the program whose card a sign-up gets."""

    primary_colour: HexColour = Field(default="#1f5f8b", description="Header and buttons, `#rrggbb`.")
    accent_colour: HexColour = Field(default="#b3541e", description="Links and highlights, `#rrggbb`.")
    logo_asset_id: AssetId | None = Field(default=None, description="An image of the tenant's asset library "
                                                                    "(`/v1/assets`), shown in the site's header.")
    sign_up_program_id: Slug | None = Field(default=None, description="The program whose virtual card a member "
                                                                      "signing up on the site gets (default: the "
                                                                      "first active points program).")


class TenantSettings(Input):
    """The editable parts of a tenant."""

    name: Name
    plan: Plan = Plan.STANDARD
    currency: Currency = "RUB"
    timezone: TimeZone = "Europe/Moscow"
    language: Language = Field(default="ru", description=LANGUAGE_HELP)
    partners: list[PartnerSpec] = Field(default_factory=list, max_length=50)
    privacy: Privacy = Field(default_factory=Privacy)
    branding: Branding = Field(default_factory=Branding)

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
    language: Language | None = Field(default=None, description=LANGUAGE_HELP)
    partners: list[PartnerSpec] | None = Field(default=None, max_length=50)
    privacy: Privacy | None = None
    branding: Branding | None = None
    support_mfa: bool | None = Field(default=None, description="Require MFA of the tenant's support operators "
                                                               "(admins always need it); applies at their next "
                                                               "sign-in.")

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
    language: Language = Field(default="ru", description=LANGUAGE_HELP)
    partners: list[PartnerSpec]
    coalitions: list[str] = Field(default_factory=list, description="Coalitions this tenant is a partner of.")
    privacy: Privacy = Field(default_factory=Privacy)
    branding: Branding = Field(default_factory=Branding)
    support_mfa: bool = Field(default=False, description="Support operators must sign in with MFA too.")
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
