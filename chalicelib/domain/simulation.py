"""The promotion cost simulator: past receipts replayed through the current and a proposed rule set. Pure.

Each receipt is priced by `pricing.price` (the function the till uses) once
per rule set, with the tier the card had when it bought and the points it
redeemed then, so the two answers differ only by the rules. What a replay
cannot know is left out of both sides alike: coupons (their campaigns may have
changed since), referral bonuses, and program geography. Refunds are taken
off as the till's refund took them (domain/refunds.py): the receipt is priced
whole, then the share of its points its refunds reversed is reversed, on each
rule set's own line weights. So a receipt refunded in full (with or without
items) earns nothing on either side, a refund by amount takes that share of
every line, a returned item takes its line's points, and under the rules
that priced it a replayed receipt keeps exactly what its refunds left it.

Money is integers: points x point value (minor units), and the expected
redemption cost is the extra points x the observed redemption rate (basis
points) x the point value, rounded half-even once.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from fractions import Fraction
from typing import Any

from chalicelib.domain import earning, pricing, refunds, tiers
from chalicelib.schemas.tenancy import ProgramSpec, Tier, TierMetric, TierRules

BPS = 10_000
RECEIPT_BONUS = "(receipt bonus)"
"""The category a receipt's per-receipt promotion bonus is reported under (it belongs to no line)."""


@dataclass(frozen=True)
class Receipt:
    """What the replay needs of a stored receipt."""

    receipt_id: str
    at: datetime
    """When it was bought: the moment whose promotions apply."""
    card_number: str
    holder: str
    """The customer id, or `card:<number>` for an anonymous card."""
    store_id: str
    tier_id: str | None
    """The tier that priced it (before any upgrade it caused), when the card had tiers."""
    lines: tuple[earning.Line, ...]
    """As sold: refunds are not taken off here but by `earn`, as the refund reversed them."""
    points_redeemed: int
    refunded: tuple[int, ...] = ()
    """Per line, the amount refunded by items (empty: none)."""
    refunded_amount: int = 0
    """Refunded in all, in any form: by items, by amount, or in full without items."""

    @property
    def total(self) -> int:
        return sum(line.amount for line in self.lines)

    def line_refunds(self) -> tuple[int, ...]:
        return self.refunded or (0,) * len(self.lines)

    def kept_categories(self) -> set[str]:
        """The categories of lines with something left after the refunds (what a category counts receipts of)."""
        if self.refunded_amount >= self.total:
            return set()
        return {ln.category for ln, refunded in zip(self.lines, self.line_refunds(), strict=True)
                if ln.amount > refunded}


def receipt_from_doc(receipt_id: str, doc: dict[str, Any], holder: str) -> Receipt | None:
    """The replayable part of a stored receipt record; None when it is not a points card's receipt."""
    number = doc.get("card_number")
    if not number or not doc.get("lines"):
        return None
    response = doc.get("response") or {}
    upgrade = response.get("tier_upgrade") or {}
    tier_id = upgrade.get("previous") if upgrade else response.get("tier")
    lines = tuple(earning.Line(str(ln.get("sku", "")), str(ln.get("category", "")), int(ln.get("quantity", 0)),
                               int(ln["amount"])) for ln in doc["lines"])
    refunded = tuple(int(ln.get("refunded_amount", 0)) for ln in doc["lines"])
    at = datetime.fromisoformat(str(doc.get("purchased_at") or doc["at"]))
    return Receipt(receipt_id=receipt_id, at=at, card_number=str(number), holder=holder,
                   store_id=str(doc.get("store_id", "")), tier_id=str(tier_id) if tier_id else None,
                   lines=lines, points_redeemed=int(doc.get("points_redeemed", 0)), refunded=refunded,
                   refunded_amount=max(int(doc.get("refunded_amount", 0)), sum(refunded)))


def _tier(program: ProgramSpec, tier_id: str | None) -> Tier | None:
    """As the till does: the card's tier if the program still has it, else the base tier."""
    if program.tiers is None:
        return None
    return tiers.find(program.tiers, tier_id) or program.tiers.levels[0]


def earn(program: ProgramSpec, receipt: Receipt) -> earning.Earning:
    """The points `program` gives this receipt and its refunds leave it (see `after_refunds`)."""
    return after_refunds(receipt, _priced(program, receipt))


def after_refunds(receipt: Receipt, whole: earning.Earning) -> earning.Earning:
    """What `whole` (the receipt's points before refunds) keeps after the receipt's refunds.

    The refunds are taken off with the refund rules themselves, on these
    weights: the points reversed are `refunds.reversed_share` of the points,
    the receipt bonus loses the same share, and each line keeps its weight
    less what the refunds took of it (the weights then spread what is kept
    over categories).
    """
    if not receipt.refunded_amount:
        return whole
    state = refunds.ReceiptState(
        total=receipt.total, points_earned=whole.points, points_redeemed=receipt.points_redeemed,
        lines=[refunds.ReceiptLine(ln.sku, ln.quantity, ln.amount, weight, refunded_amount=refunded)
               for ln, weight, refunded in zip(receipt.lines, whole.weights, receipt.line_refunds(), strict=True)],
        refunded_amount=receipt.refunded_amount)
    taken = refunds.refunded_weights(state)

    def kept(points: int) -> int:
        return points - refunds.reversed_share(points, state, receipt.refunded_amount, sum(taken))

    weights = [max(line.weight * state.total - t, 0) for line, t in zip(state.lines, taken, strict=True)]
    return earning.Earning(kept(whole.points), weights, kept(whole.bonus_points), whole.promotions)


def _priced(program: ProgramSpec, receipt: Receipt) -> earning.Earning:
    """The points `program` gives the receipt as sold, priced exactly as a purchase is (coupons aside).

    The points redeemed then are redeemed again; if `program` would allow
    fewer on this receipt, the most it allows.
    """
    lines = list(receipt.lines)
    if not lines:
        return earning.Earning(0, [], 0, [])
    tier = _tier(program, receipt.tier_id)
    redeem = receipt.points_redeemed
    for _ in range(2):
        try:
            return pricing.price(program, lines, tier=tier, coupons=[], redeem=redeem, spendable=redeem,
                                 store_id=receipt.store_id, at=receipt.at).earned
        except pricing.RedemptionRefused as exc:
            redeem = exc.allowed
    return earning.Earning(0, [0] * len(lines), 0, [])


@dataclass
class Figures:
    """Points under each rule set, for a day, a category or the whole period."""

    receipts: int = 0
    current: int = 0
    proposed: int = 0

    @property
    def extra(self) -> int:
        return self.proposed - self.current


def _by_category(receipt: Receipt, result: earning.Earning) -> dict[str, int]:
    """A receipt's points spread over its lines' categories by their weights (exactly); the rest is bonus."""
    shares = earning.allocate(result.points - result.bonus_points, result.weights) if result.weights else []
    out: Counter[str] = Counter()
    for line, share in zip(receipt.lines, shares, strict=False):
        if share:
            out[line.category] += share
    rest = result.points - sum(shares)
    if rest:
        out[RECEIPT_BONUS] += rest
    return out


@dataclass
class Replay:
    """The running totals of a replay; feed it receipts with `add`."""

    current: ProgramSpec
    proposed: ProgramSpec
    total: Figures = field(default_factory=Figures)
    by_day: dict[date, Figures] = field(default_factory=dict)
    by_category: dict[str, Figures] = field(default_factory=dict)
    affected: set[str] = field(default_factory=set)

    def add(self, receipt: Receipt) -> tuple[int, int]:
        """Replay one receipt; returns (points now, points proposed)."""
        now, then = earn(self.current, receipt), earn(self.proposed, receipt)
        day = self.by_day.setdefault(receipt.at.astimezone(UTC).date(), Figures())
        for figures in (self.total, day):
            figures.receipts += 1
            figures.current += now.points
            figures.proposed += then.points
        for category, points in _by_category(receipt, now).items():
            self.by_category.setdefault(category, Figures()).current += points
        for category, points in _by_category(receipt, then).items():
            self.by_category.setdefault(category, Figures()).proposed += points
        for category in receipt.kept_categories():
            self.by_category.setdefault(category, Figures()).receipts += 1
        if now.points != then.points:
            self.affected.add(receipt.holder)
        return now.points, then.points


def rate_bps(redeemed: int, earned: int) -> int:
    """Points redeemed per point earned, in basis points (half-even); 0 when nothing was earned."""
    if earned <= 0 or redeemed <= 0:
        return 0
    return round(Fraction(redeemed * BPS, earned))


def money(points: int, point_value: int, bps: int = BPS) -> int:
    """Points x point value x bps / 10000 in minor units, rounded half-even once."""
    return round(Fraction(points * point_value * bps, BPS))


def tier_of(rules: TierRules, state: tiers.TierState, at: datetime) -> str:
    """The level a card's qualification figure reaches under `rules` (manual floors and kept tiers aside)."""
    return tiers.level_for(rules, tiers.qualification(state, rules, at)).id


def tier_counts(current: TierRules | None, proposed: TierRules | None, states: list[tiers.TierState],
                at: datetime) -> tuple[list[tuple[str, int, int]], bool]:
    """(tier id, cards now, cards under the proposed levels) for each tier, and whether that is approximate.

    Cards now are counted at the tier they hold. Under the proposed levels a
    card is at the level its qualification figure reaches: exact only for a
    spend metric with an unchanged window (a points figure would itself change
    with the proposed earning rules); manual assignments and tiers kept by a
    downgrade policy are not applied.
    """
    if proposed is None:
        return [], False
    approximate = (current is None or current.metric is not proposed.metric
                   or current.window_days != proposed.window_days or proposed.metric is TierMetric.POINTS)
    now: Counter[str] = Counter()
    then: Counter[str] = Counter()
    for state in states:
        now[state.tier or proposed.levels[0].id] += 1
        then[tier_of(proposed, state, at)] += 1
    ids = [t.id for t in proposed.levels] + sorted(set(now) - {t.id for t in proposed.levels})
    return [(tier_id, now[tier_id], then[tier_id]) for tier_id in ids], approximate
