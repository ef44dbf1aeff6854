"""A card's ledger in plain words for its holder: what was bought where, points earned or spent, refunds, expiries.

Each entry becomes one `Line`: an English message id with named values (the
page translates the message and fills the values, so the words follow the
member's language and the values stay escaped), the signed points, and the
program rule version that produced it ("why did I get these points"). The
phrasing avoids numeral agreement ("points earned: 120" rather than "120
points"), so the Russian text is right for every number.

What the holder is not shown: an operator's typed reason for an adjustment
(internal text), another partner's receipt in a coalition (already redacted
by the service), actors and ids.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from chalicelib.domain.ids import is_slug
from chalicelib.schemas.pos import LedgerEntry

BOUGHT_AT = "Purchase of %(amount)s at %(store)s · points earned: %(points)s"
BOUGHT = "Purchase of %(amount)s · points earned: %(points)s"
EARNED = "Points earned: %(points)s"
SPENT_AT = "Points spent at %(store)s: %(points)s"
SPENT = "Points spent on a purchase: %(points)s"
REFUND_TAKEN_AT = "Refund at %(store)s · points taken back: %(points)s"
REFUND_TAKEN = "Refund · points taken back: %(points)s"
REFUND_RETURNED = "Refund · spent points given back: %(points)s"
COUPON_BONUS = "Bonus for coupon %(coupon)s: %(points)s"
REFERRAL_BONUS = "Bonus for a friend's first purchase: %(points)s"
WELCOME_REFERRAL = "Welcome bonus for joining by a friend's invitation: %(points)s"
BONUS = "Bonus points: %(points)s"
ADDED = "Points added by the program: %(points)s"
QUESTIONNAIRE = "Reward for the questionnaire “%(survey)s”: %(points)s"
QUESTIONNAIRE_UNNAMED = "Reward for a questionnaire: %(points)s"
REMOVED = "Points taken off by the program: %(points)s"
EXPIRED = "Points expired: %(points)s"
TIER_CHANGED = "Tier changed: %(previous)s → %(tier)s"
TIER_NEW = "New tier: %(tier)s"
RULE = "Rule version %(version)s"

MESSAGES: tuple[str, ...] = (
    BOUGHT_AT, BOUGHT, EARNED, SPENT_AT, SPENT, REFUND_TAKEN_AT, REFUND_TAKEN, REFUND_RETURNED, COUPON_BONUS,
    REFERRAL_BONUS, WELCOME_REFERRAL, BONUS, ADDED, QUESTIONNAIRE, QUESTIONNAIRE_UNNAMED, REMOVED, EXPIRED,
    TIER_CHANGED, TIER_NEW, RULE,
)
"""Every message id this module produces (the catalogue test checks each has its Russian text)."""


SURVEY_REASON = "survey {survey_id}"
"""The reason of the points a questionnaire's reward adds (services/customers/surveys.py writes it)."""
_SURVEY_REASON = re.compile(r"survey (\S+)")


def survey_reason(survey_id: str) -> str:
    return SURVEY_REASON.format(survey_id=survey_id)


def survey_of(entry: LedgerEntry) -> str | None:
    """The questionnaire whose reward this entry is, if it is one."""
    match = _SURVEY_REASON.fullmatch(entry.reason or "") if entry.type == "adjustment" and entry.points > 0 else None
    return match.group(1) if match and is_slug(match.group(1)) else None


@dataclass(frozen=True)
class Purchase:
    """What the holder may know of the receipt behind an entry."""

    total: int
    """Minor units."""
    store_id: str


@dataclass(frozen=True)
class Line:
    entry_id: str
    kind: str
    """The entry type: accrual, redemption, reversal, return, bonus, adjustment, expiry, tier."""
    message: str
    values: dict[str, str | int] = field(default_factory=dict)
    """Named values of the message: `points` (absolute, int), `amount` (minor units, int), `store`, `coupon`,
    `tier`, `previous`, `survey` (str)."""
    points: int = 0
    """Signed: what the entry added to or took from the card."""
    rule_version: int | None = None


def describe(entry: LedgerEntry, purchase: Purchase | None = None, *, stores: dict[str, str] | None = None,
             tiers: dict[str, str] | None = None, surveys: dict[str, str] | None = None) -> Line:
    """The plain-words line of one entry; `stores`, `tiers` and `surveys` map ids to the names the holder knows
    (a questionnaire by its title)."""
    stores, tiers, surveys = stores or {}, tiers or {}, surveys or {}
    store_id = entry.store_id or (purchase.store_id if purchase else None)
    store = stores.get(store_id, store_id) if store_id else None
    points = abs(entry.points)
    values: dict[str, str | int] = {"points": points}
    if store:
        values["store"] = store
    kind = entry.type
    if kind == "accrual":
        if purchase is not None:
            values["amount"] = purchase.total
            message = BOUGHT_AT if store else BOUGHT
        else:
            message = EARNED
    elif kind == "redemption":
        message = SPENT_AT if store else SPENT
    elif kind == "reversal":
        message = REFUND_TAKEN_AT if store else REFUND_TAKEN
    elif kind == "return":
        message = REFUND_RETURNED
    elif kind == "bonus":
        message = _bonus(entry, values)
    elif kind == "adjustment" and (survey_id := survey_of(entry)) is not None:
        if survey_id in surveys:
            values["survey"] = surveys[survey_id]
            message = QUESTIONNAIRE
        else:
            message = QUESTIONNAIRE_UNNAMED
    elif kind == "adjustment":
        message = ADDED if entry.points >= 0 else REMOVED
    elif kind == "expiry":
        message = EXPIRED
    else:  # tier
        values = {"tier": tiers.get(entry.tier or "", entry.tier or "")}
        if entry.previous_tier:
            values["previous"] = tiers.get(entry.previous_tier, entry.previous_tier)
            message = TIER_CHANGED
        else:
            message = TIER_NEW
    return Line(entry_id=entry.entry_id, kind=kind, message=message, values=values, points=entry.points,
                rule_version=entry.rule_version)


def _bonus(entry: LedgerEntry, values: dict[str, str | int]) -> str:
    if entry.coupon:
        values["coupon"] = entry.coupon
        return COUPON_BONUS
    reason = entry.reason or ""
    if reason.startswith("referral: friend"):
        return REFERRAL_BONUS
    if reason.startswith("referral"):
        return WELCOME_REFERRAL
    return BONUS


@dataclass(frozen=True)
class Progress:
    """Where a card stands on the tier ladder."""

    current: str
    """The current tier's name."""
    next_name: str | None
    """None at the top tier."""
    value: int
    """Qualification so far (spend in minor units, or points)."""
    needed: int
    """Still needed to reach the next tier (0 at the top)."""
    percent: int
    """0..100, integer, of the way from the current tier's threshold to the next one's."""


def progress(levels: list[tuple[str, str, int]], current_id: str | None, value: int) -> Progress | None:
    """`levels` as (id, name, threshold), ascending; None when the program has no tiers."""
    if not levels:
        return None
    index = next((i for i, (tier_id, _, _) in enumerate(levels) if tier_id == current_id), None)
    if index is None:
        index = max(i for i, (_, _, threshold) in enumerate(levels) if threshold <= max(value, 0))
    name, floor = levels[index][1], levels[index][2]
    if index + 1 >= len(levels):
        return Progress(current=name, next_name=None, value=value, needed=0, percent=100)
    _, next_name, threshold = levels[index + 1]
    span = threshold - floor
    done = min(max(value - floor, 0), span)
    return Progress(current=name, next_name=next_name, value=value, needed=max(threshold - value, 0),
                    percent=done * 100 // span if span else 100)
