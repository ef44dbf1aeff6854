"""Settlement between the partners of a coalition: pure integer arithmetic over ledger entries.

Every ledger entry of a coalition card names the partner (tenant) that
processed it. For one period, per partner (entry points are signed as in the
ledger):

    issued   = accrual + bonus + reversal + adjustment
               (reversals are negative; an adjustment counts signed: a credit issues
                points, a debit withdraws issued points, like a reversal)
    redeemed = -(redemption) - return
               (points customers spent at the partner, less those its refunds gave back)
    net      = issued - redeemed       (= the sum of the partner's entries)
    amount   = net x point_value       (minor units)

A positive amount means the partner owes the pool: it put points into
customers' hands (to be spent anywhere in the coalition) beyond what it took
as payment; a negative amount means the pool owes the partner for points
spent at it. The pool's side is `pool_amount = -(sum of partner amounts)`,
so the transfers always balance to zero. Expiry entries are breakage, never
part of a partner's net: the points leave circulation unspent and the pool
keeps the value the issuing partners paid in. `tier` entries carry 0 points
and are ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

EXPIRY = "expiry"


@dataclass
class PartnerSums:
    """One partner's counters; all point counts are non-negative except `adjusted`."""

    partner_id: str
    accrued: int = 0
    bonus: int = 0
    reversed: int = 0
    adjusted: int = 0
    redeemed_gross: int = 0
    returned: int = 0
    expired: int = 0
    entries: int = 0

    @property
    def issued(self) -> int:
        return self.accrued + self.bonus - self.reversed + self.adjusted

    @property
    def redeemed(self) -> int:
        return self.redeemed_gross - self.returned

    @property
    def net(self) -> int:
        return self.issued - self.redeemed

    def add(self, entry_type: str, points: int) -> None:
        """Count one ledger entry (points signed as in the ledger)."""
        self.entries += 1
        if entry_type == "accrual":
            self.accrued += points
        elif entry_type == "bonus":
            self.bonus += points
        elif entry_type == "reversal":
            self.reversed -= points
        elif entry_type == "adjustment":
            self.adjusted += points
        elif entry_type == "redemption":
            self.redeemed_gross -= points
        elif entry_type == "return":
            self.returned += points
        elif entry_type == EXPIRY:
            self.expired -= points


@dataclass
class Result:
    point_value: int
    partners: list[PartnerSums]
    unattributed_breakage: int = 0
    """Expired points of entries naming no partner."""
    lines: dict[str, PartnerSums] = field(init=False)

    def __post_init__(self) -> None:
        self.lines = {p.partner_id: p for p in self.partners}

    def amount(self, sums: PartnerSums) -> int:
        return sums.net * self.point_value

    @property
    def issued(self) -> int:
        return sum(p.issued for p in self.partners)

    @property
    def redeemed(self) -> int:
        return sum(p.redeemed for p in self.partners)

    @property
    def net(self) -> int:
        return sum(p.net for p in self.partners)

    @property
    def total_amount(self) -> int:
        return sum(self.amount(p) for p in self.partners)

    @property
    def pool_amount(self) -> int:
        return -self.total_amount

    @property
    def breakage(self) -> int:
        return sum(p.expired for p in self.partners) + self.unattributed_breakage

    @property
    def breakage_amount(self) -> int:
        return self.breakage * self.point_value

    @property
    def outstanding_change(self) -> int:
        return self.net - self.breakage


def settle(entries_by_partner: Mapping[str, Iterable[Mapping[str, Any]]], point_value: int,
           unpartnered: Iterable[Mapping[str, Any]] = ()) -> Result:
    """Sum each partner's entries (docs with `type` and integer `points`); `unpartnered`: expiry entries
    naming no partner (anything else there is ignored: only a partner's entries are settled)."""
    if point_value <= 0:
        raise ValueError("point_value must be positive")
    partners = []
    for partner_id, entries in sorted(entries_by_partner.items()):
        sums = PartnerSums(partner_id)
        for entry in entries:
            sums.add(str(entry["type"]), int(entry.get("points", 0)))
        partners.append(sums)
    breakage = -sum(int(e.get("points", 0)) for e in unpartnered if e.get("type") == EXPIRY)
    return Result(point_value, partners, breakage)
