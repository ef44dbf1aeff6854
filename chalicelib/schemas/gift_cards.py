"""The gift / prepaid card contract: sale, top-up, balance, manual correction. Money is integer minor units."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints, field_validator

from chalicelib.schemas.common import Input, Output, Slug
from chalicelib.schemas.pos import CardNumber, ReceiptId

Amount = Annotated[int, Field(ge=1, le=10**10, description="Minor units (kopecks for RUB).")]


class GiftCardSale(Input):
    sale_id: ReceiptId = Field(description="Unique per tenant; the idempotency key of the sale.")
    program_id: Slug = Field(description="A gift program (kind 'gift').")
    amount: Amount = Field(description="One of the program's nominals, or (no nominals) from min_amount to "
                           "max_amount.")
    number: CardNumber | None = Field(default=None, description="A pre-printed plastic card (Luhn-valid): an unsold "
                                      "card of the program's series, or a new number. Omitted: a virtual card.")
    store_id: Slug | None = Field(default=None, description="Where it was sold; a store-bound key's store if omitted.")


class GiftCardTopUp(Input):
    topup_id: ReceiptId = Field(description="Unique per tenant; the idempotency key of the top-up.")
    amount: Amount = Field(description="From the program's min_amount to max_amount, within max_balance.")
    store_id: Slug | None = None


class GiftCardAdjustmentIn(Input):
    amount: int = Field(ge=-10**10, le=10**10, description="Positive credits, negative debits (minor units).")
    reason: Annotated[str, StringConstraints(min_length=3, max_length=500)]
    adjustment_id: ReceiptId = Field(description="Unique per tenant: a retried adjustment is applied once.")

    @field_validator("amount")
    @classmethod
    def _non_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("an adjustment must change the balance")
        return value


class GiftCard(Output):
    """A gift / prepaid card as the till and the call center see it: money only, never points."""

    number: str
    program_id: str
    kind: str = Field(description="virtual or plastic.")
    status: str = Field(description="issued (not sold yet), active, blocked or expired.")
    money: int = Field(description="Money on the card, minor units.")
    currency: str
    expires_at: datetime | None = Field(default=None, description="When the money expires; null: never.")
    expired: bool
    issued_at: datetime
    activated_at: datetime | None = Field(default=None, description="When it was sold.")
    block_reason: str | None = None
    replayed: bool = Field(default=False, description="True when this is the stored answer to an earlier sale or "
                           "top-up with the same id.")
