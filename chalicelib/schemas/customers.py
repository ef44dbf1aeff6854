"""Customers: personal data (kept in the personal-data table), profile, consents, stats, referrals."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, get_args

from pydantic import Field, StringConstraints, field_validator, model_validator

from chalicelib import clock
from chalicelib.schemas.common import Channel, Input, Name, Output, Phone, Query, Slug

Email = Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254, to_lower=True)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=40, pattern=r"^[\w][\w .:-]*$")]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=120)]
ReferralCode = Annotated[str, StringConstraints(min_length=4, max_length=16, pattern=r"^[0-9A-Za-z-]+$")]


class Gender(StrEnum):
    FEMALE = "female"
    MALE = "male"
    OTHER = "other"


class ConsentKind(StrEnum):
    SMS = "sms"
    EMAIL = "email"
    PERSONAL_DATA = "personal_data"


class AcquisitionChannel(StrEnum):
    SITE = "site"
    APP = "app"
    STORE = "store"
    EVENT = "event"
    REFERRAL = "referral"
    IMPORT = "import"
    SURVEY = "survey"
    OTHER = "other"


PersonalField = Literal["phone", "email", "first_name", "last_name", "middle_name", "gender", "birth_date",
                        "children", "preferences"]
"""Fields a tenant can switch off (minimal-data mode): the API then refuses to store them."""

PERSONAL_FIELDS: tuple[str, ...] = get_args(PersonalField)
"""The fields stored in the personal-data table (`PersonRecord`), never in the loyalty table."""


class Child(Input):
    name: Name | None = None
    birth_date: date | None = None
    gender: Gender | None = None


class Acquisition(Input):
    """Where the customer came from: a channel plus UTM-like source fields."""

    channel: AcquisitionChannel
    source: ShortText | None = None
    medium: ShortText | None = None
    campaign: ShortText | None = None
    content: ShortText | None = None
    term: ShortText | None = None
    store_id: Slug | None = None


class ConsentIn(Input):
    kind: ConsentKind
    granted: bool
    source: ShortText = Field(description="Where it was given or withdrawn: `pos`, `site`, `survey:<id>`, `link`...")
    text_version: ShortText = Field(description="The version of the consent text the customer agreed to.")


class PersonalData(Input):
    """Personal fields: stored only in the personal-data table, refused when the tenant switched them off."""

    phone: Phone | None = None
    email: Email | None = None
    first_name: Name | None = None
    last_name: Name | None = None
    middle_name: Name | None = None
    gender: Gender | None = None
    birth_date: date | None = None
    children: list[Child] | None = Field(default=None, max_length=10)
    preferences: list[Tag] | None = Field(default=None, max_length=30,
                                          description="What the customer likes (coffee, kids-menu...).")

    @field_validator("birth_date")
    @classmethod
    def _plausible_birth(cls, value: date | None) -> date | None:
        if value is not None and not date(1900, 1, 1) <= value <= clock.now().date():
            raise ValueError("birth_date must be between 1900-01-01 and today")
        return value

    def personal(self) -> dict[str, Any]:
        """The personal fields that were sent (None included: it clears the field on update)."""
        dumped = self.model_dump(mode="json", include=set(PERSONAL_FIELDS) & self.model_fields_set)
        return dumped


class CustomerCreate(PersonalData):
    tags: list[Tag] = Field(default_factory=list, max_length=50)
    preferred_channel: Channel | None = None
    acquisition: Acquisition | None = None
    consents: list[ConsentIn] = Field(default_factory=list, max_length=3)
    referral_code: ReferralCode | None = Field(default=None, description="A member's code: links this new customer "
                                               "as their friend (both rewarded after the first qualifying purchase).")

    @model_validator(mode="after")
    def _contact(self) -> CustomerCreate:
        if not self.phone and not self.email:
            raise ValueError("a customer needs a phone or an e-mail")
        kinds = [c.kind for c in self.consents]
        if len(set(kinds)) != len(kinds):
            raise ValueError("one consent per kind")
        return self


class CustomerUpdate(PersonalData):
    """Only the fields sent change; `null` removes a personal field."""

    tags: list[Tag] | None = Field(default=None, max_length=50)
    preferred_channel: Channel | None = None
    acquisition: Acquisition | None = None


class ConsentsIn(Input):
    consents: list[ConsentIn] = Field(min_length=1, max_length=3)


class MergeIn(Input):
    duplicate_id: Annotated[str, StringConstraints(min_length=1, max_length=40)] = Field(
        description="The duplicate customer: its cards, history and missing fields move to this customer.")


class EraseIn(Input):
    confirm: Literal["erase"] = Field(description="Must be `erase`: erasure is irreversible.")
    reason: ShortText


class Consent(Output):
    kind: ConsentKind
    granted: bool
    at: datetime
    source: str
    text_version: str
    actor: str | None = Field(default=None, description="Who recorded it (history only): a key, a survey, a link.")


class CustomerStats(Output):
    purchase_count: int = 0
    refund_count: int = 0
    total_spend: int = Field(default=0, description="Receipt totals less refunds, minor units.")
    average_receipt: int = 0
    first_purchase_at: datetime | None = None
    last_purchase_at: datetime | None = None
    favourite_store: str | None = None
    favourite_category: str | None = None


class Referral(Output):
    code: str | None = None
    referred_by: str | None = None
    rewarded_at: datetime | None = Field(default=None, description="When this customer's referral reward was given.")
    friends_rewarded: int = 0


class CustomerOut(Output):
    customer_id: str
    status: Literal["active", "merged", "erased"]
    phone: str | None = None
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    middle_name: str | None = None
    gender: Gender | None = None
    birth_date: date | None = None
    children: list[dict[str, Any]] | None = None
    preferences: list[str] | None = None
    tags: list[str] = []
    preferred_channel: Channel | None = None
    acquisition: dict[str, Any] | None = None
    consents: list[Consent] = []
    stats: CustomerStats
    referral: Referral
    cards: list[str] = []
    merged_into: str | None = None
    created_at: datetime
    updated_at: datetime | None = None
    erased_at: datetime | None = None


class CustomerQuery(Query):
    phone: str | None = Field(default=None, max_length=32)
    card: str | None = Field(default=None, max_length=32)


class CustomerExport(Output):
    """Everything stored about a customer (the data subject's access request)."""

    exported_at: datetime
    customer: CustomerOut
    consent_history: list[Consent]
    cards: list[dict[str, Any]]
    survey_responses: list[dict[str, Any]]
    coupons_given: list[dict[str, Any]] = Field(
        default_factory=list, description="Coupon codes the tenant gave the customer, newest first: code, "
                                          "campaign_id, source (campaign, trigger, survey), origin, given_at.")
    truncated: bool = Field(description="True when a card's ledger (or the coupons given) was longer than the "
                                        "export keeps.")


LinkToken = Annotated[str, StringConstraints(min_length=10, max_length=400)]


class WithdrawIn(Input):
    token: LinkToken


class LinkQuery(Query):
    token: LinkToken


class Withdrawn(Output):
    kind: ConsentKind
    granted: Literal[False] = False
    message: str
