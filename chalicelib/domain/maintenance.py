"""What the daily sweep does to one card: expire points and gift money, review the tier.

Pure: it takes a card as read and returns the card to write with the ledger
entries that explain every change, so the sweep can write both in one
transaction and a retry recomputes from a fresh read. Applying it twice at the
same moment changes nothing the second time (expired lots are gone, money is
0, the tier review has moved its own dates past `at`), which is what makes the
sweep idempotent.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime

from chalicelib.domain import tiers
from chalicelib.domain.cards import CardState
from chalicelib.domain.ids import new_id
from chalicelib.schemas.pos import LedgerEntry, MoneyEntry
from chalicelib.schemas.tenancy import Program

GIFT_EXPIRY_REASON = "validity ended"


@dataclass(frozen=True)
class Maintenance:
    card: CardState
    """The card after maintenance (a copy: the card passed in is left as it was)."""
    entries: list[LedgerEntry | MoneyEntry] = field(default_factory=list)
    """In the order they happened: points expiry, money expiry, tier change."""
    changed: bool = False
    """Whether the card must be written (entries, or state the sweep tracks: tier review dates, its due day)."""

    @property
    def points(self) -> int:
        return sum(e.points for e in self.entries if isinstance(e, LedgerEntry))


def maintain(card: CardState, program: Program | None, at: datetime) -> Maintenance:
    """The sweep's work on `card` at `at` under `program` (None: the program is gone; only expiry then).

    Expiry needs no rules: each lot carries the expiry it was earned with, and a
    gift card its own `expires_at`. A program without tiers clears a stale
    tier check, so the card leaves the sweep's due index.
    """
    before = card.to_doc()
    out = copy.deepcopy(card)
    version = program.version if program else None
    entries: list[LedgerEntry | MoneyEntry] = []

    gone = out.wallet.expire(at)
    if gone:
        entries.append(LedgerEntry(entry_id=new_id(), type="expiry", points=-gone, balance_after=out.wallet.total,
                                   at=at, rule_version=version))

    if out.expires_at is not None and out.expires_at <= at and out.money > 0:
        entries.append(MoneyEntry(entry_id=new_id(), type="expiry", amount=-out.money, balance_after=0, at=at,
                                  reason=GIFT_EXPIRY_REASON, rule_version=version))
        out.money = 0

    rules = program.tiers if program else None
    if rules is not None:
        change = tiers.review(out.tiers, rules, at)
        if change is not None:
            entries.append(LedgerEntry(entry_id=new_id(), type="tier", points=0, balance_after=out.wallet.total,
                                       at=at, reason=change.reason, rule_version=version, tier=change.tier,
                                       previous_tier=change.previous))
    elif out.tiers.check_at is not None:
        out.tiers.check_at = tiers.next_check(out.tiers, None)

    return Maintenance(card=out, entries=entries, changed=bool(entries) or out.to_doc() != before)
