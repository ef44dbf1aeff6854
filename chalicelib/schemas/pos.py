"""The POS contract: cards, purchases, refunds, ledger. Integrators code against these; keep them stable."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from chalicelib.schemas.common import Input, Output, Phone, Query, Slug
from chalicelib.schemas.coupons import CouponResult
from chalicelib.schemas.customers import CustomerCreate

ReceiptId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:/-]{1,64}$")]
CardNumber = Annotated[str, StringConstraints(pattern=r"^[0-9]{8,19}$")]
Sku = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Category = Annotated[str, StringConstraints(max_length=64)]
Money = Annotated[int, Field(ge=0, le=10**12, description="Minor units (kopecks for RUB).")]


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
    customer: CustomerCreate | None = Field(
        default=None, description="The customer to register the card to: found by phone, created if new.")

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
    tier_since: datetime | None = None
    money: int | None = Field(default=None, description="Gift / prepaid cards: money on the card, minor units "
                              "(balance and pending are 0: such a card has no points).")
    expires_at: datetime | None = Field(default=None, description="Gift / prepaid cards: when the money expires.")
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


class GiftTender(Input):
    card_number: CardNumber
    amount: int = Field(ge=1, le=10**12, description="Money taken from the gift / prepaid card, minor units.")


class PurchaseIn(Input):
    receipt_id: ReceiptId = Field(description="Unique per tenant; the idempotency key of the purchase.")
    card_number: CardNumber | None = Field(default=None, description="The customer's points or discount card.")
    phone: Phone | None = None
    store_id: Slug
    total: Money
    items: list[LineItem] = Field(min_length=1, max_length=500)
    redeem_points: int = Field(default=0, ge=0, le=10**9)
    coupons: list[Annotated[str, StringConstraints(min_length=1, max_length=40)]] = Field(
        default_factory=list, max_length=10,
        description="Coupon codes (any case, dashes optional). One that cannot apply is reported with its reason; "
        "the purchase goes through without it.")
    gift_cards: list[GiftTender] = Field(default_factory=list, max_length=5,
                                         description="Gift / prepaid cards paying part of the receipt.")
    purchased_at: datetime | None = Field(
        default=None, description="Offline receipts only: when the sale happened (rules in force then apply).")

    @model_validator(mode="after")
    def _consistent(self) -> PurchaseIn:
        if self.card_number is not None and self.phone is not None:
            raise ValueError("identify the customer by card_number or phone, not both")
        if self.card_number is None and self.phone is None and not self.gift_cards:
            raise ValueError("identify the customer by card_number or phone (or pay with gift_cards)")
        lines = sum(item.amount for item in self.items)
        if lines != self.total:
            raise ValueError(f"total {self.total} differs from the sum of item amounts {lines}")
        numbers = [g.card_number for g in self.gift_cards]
        if len(set(numbers)) != len(numbers):
            raise ValueError("a gift card may appear once per receipt")
        if self.card_number is not None and self.card_number in numbers:
            raise ValueError("the same card cannot be both the loyalty card and a gift card")
        if self.purchased_at is not None and self.purchased_at.tzinfo is None:
            raise ValueError("purchased_at needs a time zone offset")
        return self


class GiftCharge(Output):
    card_number: str
    amount: int = Field(description="Minor units taken (purchase) or given back (refund).")
    balance: int = Field(description="Money left on the card, minor units.")


class TierUpgrade(Output):
    previous: str | None
    tier: str


class PurchaseResult(Output):
    receipt_id: str
    card_number: str | None = Field(description="The points / discount card; null for a purchase paid with gift "
                                    "cards by an unidentified customer.")
    points_earned: int
    points_redeemed: int
    discount: int = Field(description="Money off the receipt, minor units (program or tier discount, coupons, "
                          "points).")
    payable: int = Field(description="What the customer pays: total - discount (gift cards included).")
    balance: int
    pending: int
    tier: str | None = None
    tier_upgrade: TierUpgrade | None = Field(default=None, description="Set on the purchase that crossed a "
                                             "threshold; the next receipt is priced at the new tier.")
    promotions: list[str] = Field(default_factory=list, description="Promotions that applied.")
    coupons: list[CouponResult] = Field(default_factory=list)
    gift_cards: list[GiftCharge] = Field(default_factory=list)
    to_pay: int = Field(default=0, description="What is left for cash or bank card after gift cards: payable - "
                        "gift card charges.")
    rule_version: int | None = None
    card_activated: bool = False
    referral_points: int = Field(default=0, description="Points credited to this card because this purchase "
                                 "qualified the customer's referral (the member who invited them is credited too).")
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
    card_number: str | None
    amount_refunded: int
    points_reversed: int
    points_returned: int
    points_written_off: int = 0
    points_expired: int = Field(default=0, description="Points the refund did not reverse because they had "
                                "expired (or been spent) by their expiry date already.")
    balance: int
    pending: int
    gift_cards: list[GiftCharge] = Field(default_factory=list, description="Money given back to gift cards.")
    coupons_released: list[str] = Field(default_factory=list, description="Coupon codes usable again.")
    replayed: bool = False


class LedgerEntry(Output):
    """One movement of a points card. Tier changes are entries too (0 points), so the call center sees them."""

    entry_id: str
    type: Literal["accrual", "redemption", "reversal", "return", "bonus", "adjustment", "expiry", "tier"]
    points: int
    balance_after: int = Field(description="The card's total (spendable + pending) after this entry.")
    at: datetime
    receipt_id: str | None = None
    refund_id: str | None = None
    reason: str | None = None
    actor: str | None = None
    rule_version: int | None = Field(default=None, description="The program rule version that produced it.")
    store_id: str | None = None
    partner_id: str | None = Field(default=None, description="Coalition: the partner (tenant) that issued or "
                                   "accepted the points.")
    coupon: str | None = Field(default=None, description="The coupon code that gave these points.")
    tier: str | None = Field(default=None, description="tier entries: the card's new tier.")
    previous_tier: str | None = None


class MoneyEntry(Output):
    """One movement of a gift / prepaid card's money (minor units): never mixed with points."""

    entry_id: str
    type: Literal["sale", "topup", "spend", "refund", "expiry", "adjustment"]
    amount: int = Field(description="Minor units; negative when money leaves the card.")
    balance_after: int
    at: datetime
    receipt_id: str | None = None
    refund_id: str | None = None
    operation_id: str | None = Field(default=None, description="The sale or top-up id (exactly once).")
    reason: str | None = None
    actor: str | None = None
    rule_version: int | None = None
    store_id: str | None = None
    partner_id: str | None = None


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
