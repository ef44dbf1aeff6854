"""The tenant dashboard's figures: what each write adds, and how shard counters add up. Pure, no AWS.

Every purchase, refund, card issue and new customer adds its figures to one
of `SHARDS` counter items of the tenant's local day (in the same transaction
as the write itself), so concurrent tills rarely touch the same item. A day's
figures are the sum of its shards; a month's the sum of its days.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

SHARDS = 16
BPS = 10_000
NO_PROGRAM = "-"
"""The program slot of figures that belong to no program (new customers, a purchase paid by gift cards only)."""

FIGURES = (
    "receipts", "revenue", "points_earned", "points_redeemed", "money_redeemed",
    "refunds", "refunded", "points_reversed",
    "cards_issued", "cards_activated", "new_customers",
)
"""Counted figures. Money (revenue, money_redeemed, refunded) in minor units, points as integers."""
TENANT_WIDE = ("new_customers",)
"""Figures of the tenant as a whole: a customer belongs to no program, so a program filter does not apply."""


def shard_of(key: str) -> int:
    """The counter shard of a receipt, refund, card or customer id: stable across processes (crc32, not hash())."""
    return zlib.crc32(key.encode()) % SHARDS


def local_day(at: datetime, timezone: str) -> date:
    """The tenant's calendar day of an aware moment (22:30 UTC is already tomorrow in Moscow)."""
    return at.astimezone(ZoneInfo(timezone)).date()


def month_days(today: date) -> list[date]:
    """The days of `today`'s month up to and including today."""
    return [today.replace(day=d) for d in range(1, today.day + 1)]


def purchase_figures(receipt: Mapping[str, Any], *, activated: bool) -> dict[str, int]:
    """What one processed receipt adds (its stored receipt doc): one receipt, its total, points and redemption."""
    return {"receipts": 1, "revenue": _int(receipt, "total"), "points_earned": _int(receipt, "points_earned"),
            "points_redeemed": _int(receipt, "points_redeemed"), "money_redeemed": _int(receipt, "points_discount"),
            "cards_activated": 1 if activated else 0}


def refund_figures(*, amount: int, points_reversed: int) -> dict[str, int]:
    return {"refunds": 1, "refunded": amount, "points_reversed": points_reversed}


def card_figures(*, activated: bool) -> dict[str, int]:
    """A card handed to a customer (issued, or a pre-printed card registered); activated if it is active now."""
    return {"cards_issued": 1, "cards_activated": 1 if activated else 0}


def customer_figures() -> dict[str, int]:
    return {"new_customers": 1}


def nonzero(deltas: Mapping[str, int]) -> dict[str, int]:
    """Only the known figures that change: an ADD of 0 is a wasted write, an unknown name a bug."""
    unknown = set(deltas) - set(FIGURES)
    if unknown:
        raise ValueError(f"not a dashboard figure: {sorted(unknown)}")
    return {name: int(value) for name, value in deltas.items() if value}


def add_up(rows: Iterable[tuple[str, Mapping[str, int]]], program_id: str | None = None) -> dict[str, int]:
    """Sum counter rows (program slot, figures) into one set of figures, every figure present.

    With `program_id`, only that program's rows count, except the tenant-wide
    figures, which are summed over every row whatever the filter.
    """
    totals = dict.fromkeys(FIGURES, 0)
    for program, figures in rows:
        selected = program_id is None or program == program_id
        for name in FIGURES:
            if selected or name in TENANT_WIDE:
                totals[name] += int(figures.get(name, 0))
    return totals


def ratio(numerator: int, denominator: int, scale: int = 1) -> int:
    """`numerator * scale / denominator` rounded half to even, exactly (0 when there is nothing to divide by)."""
    if denominator == 0:
        return 0
    return round(Fraction(numerator * scale, denominator))


def derived(totals: Mapping[str, int]) -> dict[str, int]:
    """Figures computed from the counters: average receipt, net revenue, redemption share of revenue (bps)."""
    return {
        "average_receipt": ratio(totals["revenue"], totals["receipts"]),
        "net_revenue": totals["revenue"] - totals["refunded"],
        "redemption_share_bps": ratio(totals["money_redeemed"], totals["revenue"], BPS),
        "points_net": totals["points_earned"] - totals["points_redeemed"] - totals["points_reversed"],
    }


def _int(doc: Mapping[str, Any], name: str) -> int:
    return int(doc.get(name) or 0)
