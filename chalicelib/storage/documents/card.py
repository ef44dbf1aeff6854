"""The few fields of a card item (`<scope>#card#<number>` / `card`) that readers other than the card code need.

The card itself is `domain.cards.CardState` (its `to_doc`/`from_doc` own the
whole item); reports and the series generator only ask which program and
customer a card belongs to, or which series made it, so they read this
lenient view instead of parsing the wallet.
"""

from __future__ import annotations

from chalicelib.storage.documents.common import Document


class CardFacts(Document):
    """Program, customer and series of a card; absent keys read as an unknown program and no owner."""

    program_id: str = ""
    customer_id: str | None = None
    series_id: str | None = None
