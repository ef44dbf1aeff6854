"""The POS contract: cards, purchases, refunds, ledger. Integrators code against these; keep them stable."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints, field_validator, model_validator

from chalicelib.domain.phones import normalise
from chalicelib.schemas.common import Input, Name, Output, Query, Slug

ReceiptId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:/-]{1,64}$")]
CardNumber = Annotated[str, StringConstraints(pattern=r"^[0-9]{8,19}$")]
Sku = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Category = Annotated[str, StringConstraints(max_length=64)]
Phone = Annotated[str, StringConstraints(min_length=5, max_length=32), AfterValidator(normalise)]
"""A phone number in any common format, stored as E.164: one person is one customer however the till types it."""
Money = Annotated[int, Field(ge=0, le=10**12, description="Minor units (kopecks for RUB).")]


class CustomerIn(Input):
    phone: Phone | None = None
    email: Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)] | None = None
    first_name: Name | None = None
    last_name: Name | None = None

    @model_validator(mode="after")
    def _contact(self) -> CustomerIn:
        if not self.phone and not self.email:
            raise ValueError("a customer needs a phone or an e-mail")
        return self


class Customer(Output):
    customer_id: str
    phone: str | None = None
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    created_at: datetime


class CardIssue(Input):
    program_id: Slug
    kind: Literal["virtual", "plastic"] = "virtual"
    number: CardNumber | None = Field(default=None, description="A pre-printed plastic card's number (Luhn-valid).")
    customer: CustomerIn | None = None

    @model_validator(mode="after")
    def _number_for_plastic(self) -> CardIssue:
        if self.number is not None and self.kind != "plastic":
            raise ValueError("only a plastic card comes with its own number")
        return self


class Card(Output):
    number: str
    program_id: str
    kind: str
    status: str
    balance: int = Field(description="Spendable points now (negative while a refund's shortfall is owed).")
    pending: int = Field(description="Points earned but not yet spendable (inside the return window).")
    tier: str | None = None
    customer_id: str | None = None
    issued_at: datetime
    activated_at: datetime | None = None
    block_reason: str | None = None


class CardLookupQuery(Query):
    phone: Phone


class CustomerCards(Output):
    customer: Customer
    cards: list[Card]


class LineItem(Input):
    sku: Sku
    category: Category = ""
    quantity: int = Field(default=1, ge=1, le=1_000_000, description="Units, or the smallest unit sold (ml, g).")
    amount: Money = Field(description="The line's total after line discounts, minor units.")


class PurchaseIn(Input):
    receipt_id: ReceiptId = Field(description="Unique per tenant; the idempotency key of the purchase.")
    card_number: CardNumber | None = None
    phone: Phone | None = None
    store_id: Slug
    total: Money
    items: list[LineItem] = Field(min_length=1, max_length=500)
    redeem_points: int = Field(default=0, ge=0, le=10**9)

    @model_validator(mode="after")
    def _consistent(self) -> PurchaseIn:
        if (self.card_number is None) == (self.phone is None):
            raise ValueError("identify the customer by exactly one of card_number or phone")
        lines = sum(item.amount for item in self.items)
        if lines != self.total:
            raise ValueError(f"total {self.total} differs from the sum of item amounts {lines}")
        return self


class PurchaseResult(Output):
    receipt_id: str
    card_number: str
    points_earned: int
    points_redeemed: int
    discount: int = Field(description="Money off the receipt, minor units (points redeemed, or the program discount).")
    payable: int = Field(description="What the customer pays: total - discount.")
    balance: int
    pending: int
    tier: str | None = None
    promotions: list[str] = Field(default_factory=list, description="Promotions that applied.")
    card_activated: bool = False
    replayed: bool = Field(default=False, description="True when this is the stored answer to an earlier request.")


class RefundLine(Input):
    sku: Sku
    quantity: int = Field(default=1, ge=1, le=1_000_000)
    amount: Money


class RefundIn(Input):
    refund_id: ReceiptId = Field(description="Unique per tenant; the idempotency key of the refund.")
    receipt_id: ReceiptId
    items: list[RefundLine] | None = Field(default=None, min_length=1, max_length=500)
    amount: int | None = Field(default=None, ge=1, le=10**12, description="Refund by amount (minor units).")

    @model_validator(mode="after")
    def _one_mode(self) -> RefundIn:
        if self.items is not None and self.amount is not None:
            raise ValueError("refund by items or by amount, not both (neither: refund everything left)")
        return self


class RefundResult(Output):
    refund_id: str
    receipt_id: str
    card_number: str
    amount_refunded: int
    points_reversed: int
    points_returned: int
    points_written_off: int = 0
    balance: int
    pending: int
    replayed: bool = False


class LedgerEntry(Output):
    entry_id: str
    type: Literal["accrual", "redemption", "reversal", "return", "bonus", "adjustment", "expiry"]
    points: int
    balance_after: int = Field(description="The card's total (spendable + pending) after this entry.")
    at: datetime
    receipt_id: str | None = None
    refund_id: str | None = None
    reason: str | None = None
    actor: str | None = None


class AdjustmentIn(Input):
    points: int = Field(ge=-10**9, le=10**9, description="Positive credits, negative debits.")
    reason: Annotated[str, StringConstraints(min_length=3, max_length=500)]
    adjustment_id: ReceiptId = Field(description="Unique per tenant: a retried adjustment is applied once.")

    @field_validator("points")
    @classmethod
    def _non_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("an adjustment must change the balance")
        return value


class BlockIn(Input):
    reason: Annotated[str, StringConstraints(min_length=3, max_length=500)]
