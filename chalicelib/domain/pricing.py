"""A receipt's money and points, in the order a till applies them. Pure: no storage, no clock.

1. The program's discount (a discount program, or the card's tier discount).
2. Coupons, in the order sent: money off their matching lines, bonus points, multipliers.
3. Points redeemed, capped at a share of what is left to pay.
4. Points earned on what each line was paid in money, times the program's,
   the tier's and the coupons' multipliers.

Every money split over lines is exact (largest remainder), so line discounts
add up to the receipt's discounts and a refund of some lines reverses exactly
what those lines earned. Gift cards are a way to pay, not a discount: they do
not change any of this.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction

from chalicelib.domain import coupons as coupon_rules
from chalicelib.domain import earning, redemption
from chalicelib.schemas.coupons import Campaign, EffectKind
from chalicelib.schemas.tenancy import ProgramKind, ProgramSpec, Tier

BPS = 10_000


class RedemptionRefused(Exception):
    def __init__(self, code: str, message: str, allowed: int) -> None:
        super().__init__(message)
        self.code, self.message, self.allowed = code, message, allowed


@dataclass(frozen=True)
class CouponApplied:
    code: str
    campaign: Campaign
    discount: int = 0
    bonus_points: int = 0


@dataclass
class Priced:
    program_discount: int
    coupons: list[CouponApplied]
    points_discount: int
    line_discounts: list[int]
    """Per line: all money off it (program, coupons, points)."""
    earned: earning.Earning
    payable: int
    redeem_limit: redemption.RedemptionLimit | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def discount(self) -> int:
        return self.program_discount + sum(c.discount for c in self.coupons) + self.points_discount

    @property
    def points_earned(self) -> int:
        return self.earned.points + sum(c.bonus_points for c in self.coupons)


def _take(remaining: list[int], amount: int, mask: list[bool]) -> list[int]:
    """Take `amount` off the masked lines, pro rata to what is left on them; returns the per-line shares."""
    basis = [r if m else 0 for r, m in zip(remaining, mask, strict=True)]
    shares = earning.allocate(min(amount, sum(basis)), basis)
    for i, share in enumerate(shares):
        remaining[i] -= share
    return shares


def base_discount_bps(program: ProgramSpec, tier: Tier | None) -> int:
    if tier is not None and tier.discount_bps:
        return tier.discount_bps
    return program.discount.percent_bps if program.kind is ProgramKind.DISCOUNT else 0


def price(program: ProgramSpec, lines: list[earning.Line], *, tier: Tier | None, coupons: list[CouponApplied],
          redeem: int, spendable: int, store_id: str, at: datetime) -> Priced:
    """Price a receipt. Raises RedemptionRefused when `redeem` is over what may be redeemed."""
    amounts = [line.amount for line in lines]
    total = sum(amounts)
    remaining = list(amounts)
    everything = [True] * len(lines)
    categories = [line.category for line in lines]

    pct = base_discount_bps(program, tier)
    program_discount = sum(_take(remaining, sum(remaining) * pct // BPS, everything)) if pct else 0

    extra = [Fraction(tier.earn_multiplier_bps if tier else BPS)] * len(lines)
    applied: list[CouponApplied] = []
    for coupon in coupons:
        effect = coupon.campaign.effect
        mask = coupon_rules.matching(coupon.campaign, categories)
        if effect.kind is EffectKind.PERCENT_OFF:
            base = sum(r for r, m in zip(remaining, mask, strict=True) if m)
            off = sum(_take(remaining, base * effect.value // BPS, mask))
            applied.append(CouponApplied(coupon.code, coupon.campaign, discount=off))
        elif effect.kind is EffectKind.AMOUNT_OFF:
            applied.append(CouponApplied(coupon.code, coupon.campaign, discount=sum(_take(remaining, effect.value,
                                                                                        mask))))
        elif effect.kind is EffectKind.BONUS_POINTS:
            applied.append(CouponApplied(coupon.code, coupon.campaign, bonus_points=effect.value))
        else:
            extra = [e * effect.value / BPS if m else e for e, m in zip(extra, mask, strict=True)]
            applied.append(CouponApplied(coupon.code, coupon.campaign))

    after_money = sum(remaining)
    limit = None
    points_discount = 0
    if program.kind is ProgramKind.POINTS:
        limit = redemption.max_redeemable(program, spendable=spendable, total=after_money)
        if redeem > limit.allowed:
            raise RedemptionRefused("redeem_exceeds_limit", f"At most {limit.allowed} points can be redeemed on "
                                    f"this receipt ({limit.reason}).", limit.allowed)
        points_discount = sum(_take(remaining, redemption.discount_for(program, redeem), everything))
    elif redeem:
        raise RedemptionRefused("redemption_not_available", "This program gives a discount; it has no points.", 0)

    earned = earning.compute_paid(program, lines, paid=remaining, extra_bps=[int(e) for e in extra], total=total,
                                  store_id=store_id, at=at)
    line_discounts = [a - r for a, r in zip(amounts, remaining, strict=True)]
    return Priced(program_discount=program_discount, coupons=applied, points_discount=points_discount,
                  line_discounts=line_discounts, earned=earned, payable=sum(remaining), redeem_limit=limit)
