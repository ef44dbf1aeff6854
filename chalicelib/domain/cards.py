"""Card numbers (Luhn) and card statuses."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from chalicelib.domain.grammar import article
from chalicelib.domain.tiers import TierState
from chalicelib.domain.wallet import Wallet


class CardStatus(StrEnum):
    ISSUED = "issued"
    ACTIVE = "active"
    BLOCKED = "blocked"
    EXPIRED = "expired"


class CardKind(StrEnum):
    VIRTUAL = "virtual"
    PLASTIC = "plastic"


def luhn_check_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    return number.isdigit() and len(number) >= 2 and luhn_check_digit(number[:-1]) == number[-1]


MIN_RANDOM_DIGITS = 7
MAX_SHARE_DIVISOR = 100
"""A tenant's series may use at most 1/100 of a number space: collisions stay rare, generation ends."""


def random_digits(prefix: str, length: int) -> int:
    """Digits left to chance: all but the prefix and the check digit."""
    return length - len(prefix) - 1


def space_problem(prefix: str, length: int, count: int, already: int = 0) -> tuple[str, str] | None:
    """Why a series of `count` numbers cannot be made in this format (code, message), or None.

    `already` is how many numbers earlier series of the tenant took from the
    same space: the 1% budget is per space, not per series.
    """
    digits = random_digits(prefix, length)
    if digits < MIN_RANDOM_DIGITS:
        return ("number_space_too_small",
                f"{article(f'{length}-digit', capital=True)} number with prefix {prefix!r} leaves "
                f"{max(digits, 0)} random digits; "
                f"at least {MIN_RANDOM_DIGITS} are needed (shorten the prefix or lengthen the number).")
    room = 10**digits // MAX_SHARE_DIVISOR - already
    if count > room:
        return ("series_too_large",
                f"This format has room for {max(room, 0)} more series cards (1% of its {10**digits} numbers, "
                f"{already} already used); use a longer number or another prefix.")
    return None


def generate_number(prefix: str, length: int) -> str:
    """A random number with the program's prefix and a Luhn check digit.

    Random rather than sequential: a card number identifies a customer at the
    till, so neighbouring numbers must not be guessable.
    """
    body = prefix + "".join(secrets.choice("0123456789") for _ in range(random_digits(prefix, length)))
    return body + luhn_check_digit(body)


@dataclass
class CardState:
    """A card as the rules see it; storage loads and saves it whole, guarded by `version`.

    A points card keeps its points in `wallet` and its level in `tiers`; a gift
    card (program kind gift) keeps money in `money`, minor units, and expires at
    `expires_at`. The two never mix: a gift card has no points, a points card no
    money.
    """

    number: str
    program_id: str
    kind: CardKind
    status: CardStatus
    wallet: Wallet
    issued_at: datetime
    version: int = 0
    customer_id: str | None = None
    activated_at: datetime | None = None
    block_reason: str | None = None
    series_id: str | None = None
    tiers: TierState = field(default_factory=TierState)
    money: int = 0
    expires_at: datetime | None = None

    @property
    def tier(self) -> str | None:
        return self.tiers.tier

    @property
    def next_due(self) -> datetime | None:
        """The first moment the daily sweep has work on this card: points or money expiring, a tier check."""
        moments = [lot.expires_at for lot in self.wallet.lots if lot.expires_at]
        if self.expires_at and self.money > 0:
            moments.append(self.expires_at)
        if self.tiers.check_at:
            moments.append(self.tiers.check_at)
        return min(moments) if moments else None

    def to_doc(self) -> dict[str, Any]:
        """Storage form; empty fields are left out so the item (read on every purchase) stays small."""
        tiers = self.tiers.to_doc() if self.tiers.tier or self.tiers.lifetime or self.tiers.manual else None
        doc = {
            "program_id": self.program_id,
            "kind": self.kind.value,
            "status": self.status.value,
            "wallet": self.wallet.to_doc(),
            "issued_at": self.issued_at.isoformat(),
            "tier": self.tiers.tier,
            "tiers": tiers,
            "customer_id": self.customer_id,
            "activated_at": self.activated_at.isoformat() if self.activated_at else None,
            "block_reason": self.block_reason,
            "series_id": self.series_id,
            "money": self.money or None,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
        }
        return {k: v for k, v in doc.items() if v is not None}

    @classmethod
    def from_doc(cls, number: str, version: int, doc: dict[str, Any]) -> CardState:
        return cls(
            number=number,
            program_id=doc["program_id"],
            kind=CardKind(doc["kind"]),
            status=CardStatus(doc["status"]),
            wallet=Wallet.from_doc(doc.get("wallet")),
            issued_at=datetime.fromisoformat(doc["issued_at"]),
            version=version,
            customer_id=doc.get("customer_id"),
            activated_at=datetime.fromisoformat(doc["activated_at"]) if doc.get("activated_at") else None,
            block_reason=doc.get("block_reason"),
            series_id=doc.get("series_id"),
            tiers=TierState.from_doc(doc.get("tier"), doc.get("tiers")),
            money=int(doc.get("money", 0)),
            expires_at=datetime.fromisoformat(doc["expires_at"]) if doc.get("expires_at") else None,
        )
