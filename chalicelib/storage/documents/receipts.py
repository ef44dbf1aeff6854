"""A processed purchase (`<tid>#receipt#<id> / receipt`) and a processed refund (`<tid>#refund#<id> / refund`).

The receipt is written by the purchase, rewritten by each refund (its refund
totals), and read by refunds, offline batches, surveys' invitations, the
simulator and campaign results: this is its one definition. Times stay ISO
text as stored (`at`, `purchased_at`, `points_expire_at`); the properties
parse them. Defaults are what readers assumed for keys that receipts kept
before a field existed (`card_scope`, `tier_value`, `coupons`, `gift_cards`,
`purchased_at`, `points_expire_at`); `dump` leaves such keys out again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chalicelib.storage.documents.common import Document


class ReceiptLine(Document):
    """A line as sold, its earning weight, and how much of it refunds took back so far."""

    sku: str = ""
    category: str | None = None
    quantity: int = 0
    amount: int
    weight: int = 0
    refunded_quantity: int = 0
    refunded_amount: int = 0


class ReceiptCoupon(Document):
    """A coupon the receipt used, and which counters its use moved (a full refund may give them back)."""

    code: str
    campaign_id: str
    holder: str
    counted_code: bool = False
    counted_customer: bool = False


class ReceiptGiftCard(Document):
    """Money a gift card paid, and how much of it refunds returned so far."""

    card_number: str
    scope: str
    amount: int
    returned: int = 0


class Receipt(Document):
    """A processed purchase: what was priced, earned and paid, its refund totals, and its kept answer."""

    card_number: str | None = None
    card_scope: str | None = None
    program_id: str | None = None
    store_id: str
    total: int
    discount: int = 0
    points_discount: int = 0
    payable: int = 0
    points_earned: int = 0
    points_redeemed: int = 0
    rule_version: int | None = None
    partner_id: str | None = None
    tier_value: int | None = None
    lines: list[ReceiptLine] = []
    coupons: list[ReceiptCoupon] = []
    gift_cards: list[ReceiptGiftCard] = []
    refunded_amount: int = 0
    refunded_weight_scaled: int = 0
    points_reversed: int = 0
    points_returned: int = 0
    at: str
    purchased_at: str | None = None
    points_expire_at: str | None = None
    request_hash: str = ""
    response: dict[str, Any] = {}

    @property
    def processed_at(self) -> datetime:
        """When the purchase was processed."""
        return datetime.fromisoformat(self.at)

    @property
    def sold_at(self) -> datetime:
        """When the sale happened: `purchased_at` (offline receipts), else when it was processed."""
        return datetime.fromisoformat(self.purchased_at or self.at)

    @property
    def keeps_points_expiry(self) -> bool:
        """Whether the receipt records its points' expiry (receipts kept before that field do not)."""
        return "points_expire_at" in self.model_fields_set


class Refund(Document):
    """A processed refund: the receipt it refunded, its body's fingerprint and its kept answer."""

    receipt_id: str
    request_hash: str
    response: dict[str, Any]
