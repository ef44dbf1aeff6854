"""Exactly-once records of single-card operations, and the daily sweep's progress (all in the `loyalty` table).

<tid>#adjustment#<id> / adjustment       a manual points or money adjustment: the ledger entry it wrote
<tid>#adjustment#<id> / tier_assignment  a manual tier assignment: the card as answered
<tid>#receipt#<id>    / gift_sale        a gift card sold: what was sold, and its kept answer
<tid>#receipt#<id>    / gift_topup       money loaded onto a gift card, and its kept answer
<scope>#sweep         / state            the last day the daily sweep finished

Each record's `request_hash` is the fingerprint of the body that created it:
the same id with another body is refused. Kept answers and entries stay the
JSON they were dumped as (`entry`, `card`, `response`), validated by the
service into its own schema when replayed.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from chalicelib.storage.documents.common import Document


class Adjustment(Document):
    """A manual adjustment of points or gift card money: the ledger entry it wrote (a points or money entry)."""

    request_hash: str
    entry: dict[str, Any]


class TierAssignment(Document):
    """A manual tier assignment: the card view it answered."""

    request_hash: str
    card: dict[str, Any]


class GiftSale(Document):
    """A gift card sold (loaded with `amount`), and the card view it answered."""

    request_hash: str
    card_number: str
    program_id: str
    amount: int
    store_id: str | None = None
    at: str
    response: dict[str, Any]


class GiftTopUp(Document):
    """Money loaded onto a reloadable card, and the card view it answered."""

    request_hash: str
    card_number: str
    amount: int
    store_id: str | None = None
    at: str
    response: dict[str, Any]


class SweepState(Document):
    """The last day whose partition of the due index the daily sweep walked to its end."""

    completed: str

    @property
    def completed_day(self) -> date:
        return date.fromisoformat(self.completed)
