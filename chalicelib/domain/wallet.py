"""A card's points as lots: what was earned when, when it matures, when it expires.

Keeping lots (not just a number) is what makes the rules explainable: points
earned on a receipt are pending until the return window closes, redemption
spends the oldest matured points first (those that expire soonest), a refund
reverses the points of its own receipt first, and expiry can later remove
exactly what is due. Matured lots that expire on the same day are merged, so a
card stays a small item however many receipts it has seen.

If a refund must reverse points that were already spent, the shortfall is
either carried as `debt` (repaid first from the next accruals: the balance is
negative meanwhile) or written off, per the program's policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class Lot:
    points: int
    earned_at: datetime
    available_at: datetime
    expires_at: datetime | None
    source: str
    """The receipt (or entry) that created it: a refund reverses its own receipt's lot first."""

    def matured(self, at: datetime) -> bool:
        return self.available_at <= at

    def expired(self, at: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= at

    def usable(self, at: datetime) -> bool:
        return self.matured(at) and not self.expired(at)

    def to_doc(self) -> dict[str, Any]:
        doc = {"points": self.points, "earned_at": self.earned_at.isoformat(), "source": self.source}
        if self.available_at != self.earned_at:
            doc["available_at"] = self.available_at.isoformat()
        if self.expires_at:
            doc["expires_at"] = self.expires_at.isoformat()
        return doc

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Lot:
        return cls(
            points=int(doc["points"]),
            earned_at=datetime.fromisoformat(doc["earned_at"]),
            available_at=datetime.fromisoformat(doc.get("available_at") or doc["earned_at"]),
            expires_at=datetime.fromisoformat(doc["expires_at"]) if doc.get("expires_at") else None,
            source=str(doc["source"]),
        )


def sale_lot(points: int, sold_at: datetime, *, pending_days: int, expiry_days: int, source: str) -> Lot:
    """Points earned on a sale: the return window and the expiry count from the sale, however late it is processed.

    A receipt uploaded days after it was sold must not keep its points
    pending, or alive, longer than one sent at the till (`expiry_days` 0: never).
    """
    return Lot(points, sold_at, sold_at + timedelta(days=pending_days),
               sold_at + timedelta(days=expiry_days) if expiry_days else None, source)


class InsufficientPoints(Exception):
    def __init__(self, available: int) -> None:
        super().__init__(f"only {available} points available")
        self.available = available


def _spend_order(lot: Lot) -> tuple[datetime, datetime]:
    """Oldest first: soonest to expire, then earliest earned (never-expiring lots last)."""
    return (lot.expires_at or datetime.max.replace(tzinfo=lot.earned_at.tzinfo), lot.earned_at)


@dataclass
class Wallet:
    lots: list[Lot] = field(default_factory=list)
    debt: int = 0

    # --- reading ------------------------------------------------------------

    @property
    def total(self) -> int:
        """What the ledger sums to: every lot, pending or not, minus debt."""
        return sum(lot.points for lot in self.lots) - self.debt

    def spendable(self, at: datetime) -> int:
        """Matured, unexpired points less debt (negative while a refund's shortfall is owed).

        Points past their expiry stop counting at that moment, before the
        daily sweep writes their expiry entry.
        """
        return sum(lot.points for lot in self.lots if lot.usable(at)) - self.debt

    def pending(self, at: datetime) -> int:
        return sum(lot.points for lot in self.lots if not lot.matured(at) and not lot.expired(at))

    def expiring(self, at: datetime, until: datetime) -> list[tuple[datetime, int]]:
        """Points (pending or not) that expire after `at` and by `until`, by expiry moment, soonest first."""
        due: dict[datetime, int] = {}
        for lot in self.lots:
            if lot.expires_at and at < lot.expires_at <= until:
                due[lot.expires_at] = due.get(lot.expires_at, 0) + lot.points
        return sorted(due.items())

    # --- changing -------------------------------------------------------------

    def earn(self, lot: Lot) -> None:
        """Add earned points; an outstanding debt is repaid from them first."""
        if lot.points <= 0:
            return
        repay = min(self.debt, lot.points)
        self.debt -= repay
        if lot.points - repay > 0:
            self.lots.append(replace(lot, points=lot.points - repay))

    def earn_at(self, lot: Lot, at: datetime) -> int:
        """Add a sale's points when it is processed at `at`; returns those already expired then (not kept).

        A late receipt's points may have expired (counted from the sale) before
        it was processed: they are reported as earned and expired at once, so
        they repay no debt and never wait in the wallet for a sweep day that may
        already have been walked.
        """
        if lot.expired(at):
            return max(lot.points, 0)
        self.earn(lot)
        return 0

    def spend(self, points: int, at: datetime) -> None:
        """Spend matured points, oldest first."""
        if points <= 0:
            return
        available = self.spendable(at)
        if points > available:
            raise InsufficientPoints(max(available, 0))
        remaining = points
        kept: list[Lot] = []
        for lot in sorted(self.lots, key=_spend_order):
            if remaining and lot.usable(at):
                take = min(lot.points, remaining)
                remaining -= take
                if lot.points > take:
                    kept.append(replace(lot, points=lot.points - take))
            else:
                kept.append(lot)
        self.lots = kept

    def reverse(self, points: int, source: str, at: datetime, *, allow_debt: bool) -> int:
        """Take back points a refund reverses; returns how many were written off (not recovered).

        Order: the refunded receipt's own lot, then other pending lots (newest
        first: they were never spendable), then matured lots, oldest first.
        What is still missing becomes debt, or is written off.
        """
        if points <= 0:
            return 0
        remaining = points

        def priority(lot: Lot) -> tuple[int, Any]:
            if lot.source == source:
                return (0, 0)
            if not lot.matured(at):
                return (1, -lot.earned_at.timestamp())
            return (2, _spend_order(lot))

        kept: list[Lot] = []
        for lot in sorted(self.lots, key=priority):
            if lot.expired(at):  # gone already: the expiry sweep writes it off, a refund cannot take it
                kept.append(lot)
                continue
            take = min(lot.points, remaining)
            remaining -= take
            if lot.points > take:
                kept.append(replace(lot, points=lot.points - take))
        self.lots = sorted(kept, key=lambda lot: lot.earned_at)
        if remaining and allow_debt:
            self.debt += remaining
            return 0
        return remaining

    def expire(self, at: datetime) -> int:
        """Remove every lot past its expiry; returns the points removed (for one ledger entry)."""
        gone = sum(lot.points for lot in self.lots if lot.expired(at))
        self.lots = [lot for lot in self.lots if not lot.expired(at)]
        return gone

    def give_back(self, lot: Lot) -> None:
        """Return redeemed points on a refund: spendable at once, expiring as the program says."""
        self.earn(lot)

    def compact(self, at: datetime) -> None:
        """Merge matured lots expiring on the same day, so the card item stays small."""
        merged: dict[Any, Lot] = {}
        rest: list[Lot] = []
        for lot in self.lots:
            if not lot.matured(at):
                rest.append(lot)
                continue
            day = lot.expires_at.date() if lot.expires_at else None
            if day in merged:
                prev = merged[day]
                merged[day] = Lot(prev.points + lot.points, min(prev.earned_at, lot.earned_at),
                                  min(prev.available_at, lot.available_at),
                                  min(prev.expires_at, lot.expires_at) if prev.expires_at and lot.expires_at else None,
                                  "merged")
            else:
                merged[day] = lot
        self.lots = sorted(list(merged.values()) + rest, key=lambda lot: lot.earned_at)

    # --- storage form -----------------------------------------------------------

    def to_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"lots": [lot.to_doc() for lot in self.lots]}
        if self.debt:
            doc["debt"] = self.debt
        return doc

    @classmethod
    def from_doc(cls, doc: dict[str, Any] | None) -> Wallet:
        doc = doc or {}
        return cls(lots=[Lot.from_doc(d) for d in doc.get("lots", [])], debt=int(doc.get("debt", 0)))
