"""How many points a receipt may be paid with, and what that is worth."""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.schemas.tenancy import ProgramKind, ProgramSpec

BPS = 10_000


@dataclass(frozen=True)
class RedemptionLimit:
    allowed: int
    reason: str
    """Why the limit is what it is, for the till and the call center."""


def max_redeemable(program: ProgramSpec, *, spendable: int, total: int) -> RedemptionLimit:
    rules = program.redemption
    if program.kind is not ProgramKind.POINTS:
        return RedemptionLimit(0, "this program gives a discount, not points")
    if spendable <= 0:
        return RedemptionLimit(0, "the card has no spendable points")
    if spendable < rules.min_balance:
        return RedemptionLimit(0, f"the card needs at least {rules.min_balance} points before redeeming")
    cap = total * rules.max_share_bps // BPS // rules.point_value
    if cap < spendable:
        return RedemptionLimit(cap, f"at most {rules.max_share_bps / 100:g}% of the receipt can be paid with points")
    return RedemptionLimit(spendable, "the card's spendable balance")


def discount_for(program: ProgramSpec, points: int) -> int:
    """Money value (minor units) of redeemed points."""
    return points * program.redemption.point_value


def program_discount(program: ProgramSpec, total: int) -> int:
    """A pure discount program's discount on a receipt (rounded down: never over-discount)."""
    if program.kind is not ProgramKind.DISCOUNT:
        return 0
    return total * program.discount.percent_bps // BPS
