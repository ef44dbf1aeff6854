"""Does a card's state agree with its ledger? Pure rules, so they can be checked anywhere.

The ledger is the source of truth: every movement of points (or of a gift
card's money) is an entry written in the same transaction as the card. The
card keeps its points as lots for speed; if the two ever disagree, points were
created or lost outside the ledger, which is exactly what an operator (or a
test after injected faults or a load run) must find. Entries of one receipt or
refund are also checked to be there once, so a double write shows as well.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from chalicelib.domain.cards import CardState

_ONCE_PER_RECEIPT = ("accrual", "redemption", "sale", "topup", "spend")
"""Entry types a receipt (or sale / top-up operation) produces at most one of."""
_ONCE_PER_REFUND = ("reversal", "return", "refund")


@dataclass(frozen=True)
class Mismatch:
    scope: str
    number: str
    field: str
    """What disagrees: `points`, `money`, `lot`, `debt`, `duplicate:<type>:<id>` or `card` (entries, no card)."""
    card_value: int
    ledger_value: int


@dataclass
class ReconciliationReport:
    cards: int = 0
    entries: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def merge(self, other: ReconciliationReport) -> None:
        self.cards += other.cards
        self.entries += other.entries
        self.mismatches.extend(other.mismatches)


def _operation_of(entry: dict[str, Any]) -> str | None:
    kind = entry.get("type")
    if kind in _ONCE_PER_RECEIPT:
        return entry.get("receipt_id") or entry.get("operation_id")
    if kind in _ONCE_PER_REFUND:
        return entry.get("refund_id")
    return None


def check_card(scope: str, number: str, card_doc: dict[str, Any] | None, version: int,
               entries: Iterable[dict[str, Any]]) -> tuple[int, list[Mismatch]]:
    """(entries seen, mismatches) of one card: balance = sum of points, money = sum of amounts, no double entry."""
    points = money = seen = 0
    operations: Counter[tuple[str, str]] = Counter()
    for entry in entries:
        seen += 1
        points += int(entry.get("points", 0))
        money += int(entry.get("amount", 0))
        op = _operation_of(entry)
        if op:
            operations[(str(entry["type"]), op)] += 1
    found: list[Mismatch] = []
    if card_doc is None:
        return seen, [Mismatch(scope, number, "card", 0, points + money)] if seen else []
    card = CardState.from_doc(number, version, card_doc)
    if card.wallet.total != points:
        found.append(Mismatch(scope, number, "points", card.wallet.total, points))
    if card.money != money:
        found.append(Mismatch(scope, number, "money", card.money, money))
    found.extend(Mismatch(scope, number, "lot", lot.points, 0) for lot in card.wallet.lots if lot.points <= 0)
    if card.wallet.debt < 0:
        found.append(Mismatch(scope, number, "debt", card.wallet.debt, 0))
    found.extend(Mismatch(scope, number, f"duplicate:{kind}:{op}", count, 1)
                 for (kind, op), count in sorted(operations.items()) if count > 1)
    return seen, found
