"""How many points a receipt earns, and how the redeemed discount spreads over its lines.

All arithmetic is on integers and exact fractions: amounts are minor units,
rates and multipliers basis points. Each line gets a *weight* (its eligible
amount times its multiplier); the receipt's points are the total weight
converted by the program's rate and rounded once, by the program's rounding
rule. The weights are kept with the receipt so a refund of some lines reverses
exactly the points those lines earned.

Eligible amount of a line = its amount minus its share of the discount paid
with points (shares are pro rata to line amounts, largest remainder first, so
they add up to the discount exactly): the amount paid with points earns
nothing. Excluded categories and SKUs weigh zero. Multipliers (category, SKU,
active promotions) multiply each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction

from chalicelib.schemas.tenancy import EarningMode, EarningRules, ProgramSpec, Promotion, Rounding

BPS = 10_000


@dataclass(frozen=True)
class Line:
    sku: str
    category: str
    quantity: int
    amount: int


@dataclass(frozen=True)
class Earning:
    points: int
    weights: list[int]
    """Per line: eligible amount x multiplier (bps). Refunds reverse in proportion to these."""
    bonus_points: int
    promotions: list[str]


def allocate(total: int, amounts: list[int]) -> list[int]:
    """Split `total` over lines pro rata to `amounts`, exactly (largest remainder)."""
    whole = sum(amounts)
    if total <= 0 or whole <= 0:
        return [0] * len(amounts)
    raw = [Fraction(total * a, whole) for a in amounts]
    shares = [int(r) for r in raw]
    left = total - sum(shares)
    by_remainder = sorted(range(len(amounts)), key=lambda i: (raw[i] - shares[i], -i), reverse=True)
    for i in by_remainder[:left]:
        shares[i] += 1
    return shares


def round_points(value: Fraction, rounding: Rounding) -> int:
    if value <= 0:
        return 0
    if rounding is Rounding.HALF_UP:
        return int(value + Fraction(1, 2))
    return int(value)


def _active_promotions(rules: EarningRules, store_id: str, at: datetime) -> list[Promotion]:
    return [p for p in rules.promotions
            if p.starts_at <= at < p.ends_at and (not p.store_ids or store_id in p.store_ids)]


def _matches(values: list[str], value: str) -> bool:
    return not values or value in values


def line_multiplier(rules: EarningRules, line: Line, promotions: list[Promotion]) -> int:
    """The line's multiplier in bps (10000 = 1x); 0 when the line is excluded."""
    if line.category in rules.excluded_categories or line.sku in rules.excluded_skus:
        return 0
    mult = Fraction(BPS)
    if line.category in rules.category_multipliers:
        mult = mult * rules.category_multipliers[line.category] / BPS
    if line.sku in rules.sku_multipliers:
        mult = mult * rules.sku_multipliers[line.sku] / BPS
    for promo in promotions:
        if _matches(promo.categories, line.category) and _matches(promo.skus, line.sku):
            mult = mult * promo.multiplier_bps / BPS
    return int(mult)


def compute(program: ProgramSpec, lines: list[Line], *, total: int, discount: int, store_id: str,
            at: datetime) -> Earning:
    """Points a receipt earns after `discount` (minor units) was paid with points."""
    shares = allocate(discount, [line.amount for line in lines])
    paid = [max(line.amount - share, 0) for line, share in zip(lines, shares, strict=True)]
    return compute_paid(program, lines, paid=paid, extra_bps=[BPS] * len(lines), total=total, store_id=store_id,
                        at=at)


def compute_paid(program: ProgramSpec, lines: list[Line], *, paid: list[int], extra_bps: list[int], total: int,
                 store_id: str, at: datetime) -> Earning:
    """Points on what each line was paid in money (after every discount), times its multipliers.

    `extra_bps` are per-line multipliers on top of the program's own (tier, coupon), in basis points.
    """
    rules = program.earning
    if program.kind.value != "points" or total < rules.min_receipt or total <= 0:
        return Earning(0, [0] * len(lines), 0, [])
    promotions = _active_promotions(rules, store_id, at)
    weights = [int(Fraction(amount * line_multiplier(rules, line, promotions) * extra, BPS))
               for line, amount, extra in zip(lines, paid, extra_bps, strict=True)]
    weight = sum(weights)
    point_value = program.redemption.point_value
    if rules.mode is EarningMode.PERCENT:
        points = round_points(Fraction(weight * rules.rate_bps, BPS * BPS * point_value), rules.rounding)
    else:  # N points per whole step spent; rounding applies to the steps
        points = round_points(Fraction(weight, BPS * rules.per_amount_step), rules.rounding) * rules.per_amount_points
    bonus = 0
    applied = []
    for promo in promotions:
        matching = any(_matches(promo.categories, ln.category) and _matches(promo.skus, ln.sku)
                       for ln, w in zip(lines, weights, strict=True) if w > 0)
        if matching:
            bonus += promo.bonus_points
            applied.append(promo.id)
    return Earning(points + bonus, weights, bonus, applied)
