"""Tiers: which level a card is at, when it moves up, and when (if ever) it moves down.

Qualification is cumulative spend (money actually paid) or points earned,
over the card's lifetime or a rolling window of days. A rolling window is kept
as per-day buckets on the card (pruned as they leave the window), so the value
at any moment is exact without reading the ledger.

Upgrades happen on the purchase that crosses a threshold, after it: the
crossing receipt itself is priced at the tier the card had when it started (a
till must know the discount before payment), and the answer reports the new
tier. Downgrades only ever happen through the program's explicit policy, run
by the daily sweep (`review`). A manual assignment by an admin sets a floor:
automatic downgrades never go below it while it lasts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from chalicelib.schemas.tenancy import Downgrade, Tier, TierRules


@dataclass
class TierState:
    """The tier part of a card; stored with the card."""

    tier: str | None = None
    since: datetime | None = None
    review_at: datetime | None = None
    """period_end: end of the current tier period; grace: when the grace period ends (None: not in grace)."""
    lifetime: int = 0
    days: dict[str, int] | None = None
    """Rolling windows: qualification per UTC day (ISO date -> amount or points)."""
    manual: dict[str, Any] | None = None
    """{"tier", "reason", "actor", "at", "until"}: an admin's assignment, a floor for downgrades."""
    check_at: datetime | None = None
    """When the daily sweep must look at the tier next (kept current by every change here)."""

    def to_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"lifetime": self.lifetime}
        if self.since:
            doc["since"] = self.since.isoformat()
        if self.review_at:
            doc["review_at"] = self.review_at.isoformat()
        if self.days:
            doc["days"] = dict(self.days)
        if self.manual:
            doc["manual"] = dict(self.manual)
        if self.check_at:
            doc["check_at"] = self.check_at.isoformat()
        return doc

    @classmethod
    def from_doc(cls, tier: str | None, doc: dict[str, Any] | None) -> TierState:
        doc = doc or {}
        return cls(
            tier=tier,
            since=datetime.fromisoformat(doc["since"]) if doc.get("since") else None,
            review_at=datetime.fromisoformat(doc["review_at"]) if doc.get("review_at") else None,
            lifetime=int(doc.get("lifetime", 0)),
            days={str(k): int(v) for k, v in (doc.get("days") or {}).items()} or None,
            manual=dict(doc["manual"]) if doc.get("manual") else None,
            check_at=datetime.fromisoformat(doc["check_at"]) if doc.get("check_at") else None,
        )


@dataclass(frozen=True)
class TierChange:
    previous: str | None
    tier: str
    reason: str
    """upgrade | downgrade | manual | rules_changed"""


def _window_start(rules: TierRules, at: datetime) -> date:
    return (at - timedelta(days=rules.window_days - 1)).date()


def prune(state: TierState, rules: TierRules, at: datetime) -> None:
    if not state.days:
        return
    if rules.window_days == 0:
        state.days = None
        return
    start = _window_start(rules, at).isoformat()
    state.days = {d: v for d, v in state.days.items() if d >= start} or None


def qualification(state: TierState, rules: TierRules, at: datetime) -> int:
    if rules.window_days == 0:
        return state.lifetime
    start = _window_start(rules, at).isoformat()
    return sum(v for d, v in (state.days or {}).items() if d >= start)


def level_for(rules: TierRules, value: int) -> Tier:
    chosen = rules.levels[0]
    for level in rules.levels:
        if value >= level.threshold:
            chosen = level
    return chosen


def find(rules: TierRules, tier_id: str | None) -> Tier | None:
    return next((t for t in rules.levels if t.id == tier_id), None)


def _rank(rules: TierRules, tier_id: str | None) -> int:
    for i, level in enumerate(rules.levels):
        if level.id == tier_id:
            return i
    return -1


def current(rules: TierRules, state: TierState) -> Tier:
    """The tier that prices a receipt now: the card's, or the base tier (also when its tier was removed)."""
    return find(rules, state.tier) or rules.levels[0]


def _manual_floor(rules: TierRules, state: TierState, at: datetime) -> int:
    manual = state.manual
    if not manual:
        return 0
    until = manual.get("until")
    if until and datetime.fromisoformat(until) <= at:
        return 0
    return max(_rank(rules, manual.get("tier")), 0)


def _move(state: TierState, rules: TierRules, to: Tier, at: datetime, reason: str) -> TierChange:
    change = TierChange(state.tier, to.id, reason)
    state.tier, state.since = to.id, at
    state.review_at = at + timedelta(days=rules.review_days) if rules.downgrade is Downgrade.PERIOD_END else None
    return change


def _record(state: TierState, rules: TierRules, value: int, at: datetime) -> TierChange | None:
    """Count a purchase's spend or points (negative for a refund); upgrade if a threshold is crossed."""
    state.lifetime = max(state.lifetime + value, 0)
    if rules.window_days:
        key = at.date().isoformat()
        days = dict(state.days or {})
        days[key] = days.get(key, 0) + value
        state.days = days
    prune(state, rules, at)
    if state.tier is None or find(rules, state.tier) is None:
        base = level_for(rules, 0)
        _move(state, rules, base, at, "enrolled")
    target = level_for(rules, qualification(state, rules, at))
    if value > 0 and _rank(rules, target.id) > _rank(rules, state.tier):
        return _move(state, rules, target, at, "upgrade")
    if state.review_at and rules.downgrade is Downgrade.GRACE and qualification(state, rules, at) >= (
        current(rules, state).threshold
    ):
        state.review_at = None  # back above the tier: the grace period is over
    return None


def _refund_day(state: TierState, rules: TierRules, value: int, purchased_at: datetime, at: datetime) -> None:
    """Take a refunded amount (or reversed points) off the qualification of the purchase's own day."""
    state.lifetime = max(state.lifetime - value, 0)
    key = purchased_at.date().isoformat()
    if rules.window_days and state.days and key in state.days:
        days = dict(state.days)
        days[key] = max(days[key] - value, 0)
        state.days = days
    prune(state, rules, at)


def _assign(state: TierState, rules: TierRules, tier_id: str, *, reason: str, actor: str, at: datetime,
           until: datetime | None) -> TierChange:
    """An admin's manual assignment: takes effect now and is a floor for downgrades until `until`."""
    tier = find(rules, tier_id)
    if tier is None:
        raise KeyError(tier_id)
    state.manual = {"tier": tier_id, "reason": reason, "actor": actor, "at": at.isoformat(),
                    **({"until": until.isoformat()} if until else {})}
    return _move(state, rules, tier, at, "manual")


def _review(state: TierState, rules: TierRules, at: datetime) -> TierChange | None:
    """The daily sweep's step: apply the downgrade policy (and catch up with rule changes)."""
    prune(state, rules, at)
    if state.manual and state.manual.get("until") and datetime.fromisoformat(state.manual["until"]) <= at:
        state.manual = None
    if find(rules, state.tier) is None:
        if state.tier is None:
            return None
        return _move(state, rules, level_for(rules, qualification(state, rules, at)), at, "rules_changed")
    rank = _rank(rules, state.tier)
    qualifies = level_for(rules, qualification(state, rules, at))
    target_rank = max(_rank(rules, qualifies.id), _manual_floor(rules, state, at))
    if target_rank > rank:
        return _move(state, rules, rules.levels[target_rank], at, "upgrade")
    if rules.downgrade is Downgrade.NONE or target_rank == rank:
        if rules.downgrade is Downgrade.GRACE:
            state.review_at = None
        elif rules.downgrade is Downgrade.PERIOD_END and state.review_at and state.review_at <= at:
            state.review_at = _next_period(state.review_at, rules, at)
        return None
    if rules.downgrade is Downgrade.PERIOD_END:
        if state.review_at is None:
            state.review_at = at + timedelta(days=rules.review_days)
            return None
        if state.review_at > at:
            return None
        change = _move(state, rules, rules.levels[target_rank], at, "downgrade")
        return change
    # grace
    if state.review_at is None:
        state.review_at = at + timedelta(days=rules.grace_days)
        return None
    if state.review_at > at:
        return None
    return _move(state, rules, rules.levels[target_rank], at, "downgrade")


def _next_period(review_at: datetime, rules: TierRules, at: datetime) -> datetime:
    step = timedelta(days=rules.review_days)
    while review_at <= at:
        review_at += step
    return review_at


def next_check(state: TierState, rules: TierRules | None) -> datetime | None:
    """When the sweep must look at this card next for its tier (None: never, until it changes)."""
    if rules is None or state.tier is None or rules.downgrade is Downgrade.NONE:
        return None
    moments = [state.review_at] if state.review_at else []
    if rules.downgrade is Downgrade.GRACE and rules.window_days and state.days:
        oldest = date.fromisoformat(min(state.days))
        leaves = datetime.combine(oldest + timedelta(days=rules.window_days), datetime.min.time(),
                                  tzinfo=(state.since.tzinfo if state.since else None))
        moments.append(leaves)  # qualification can only fall when a day leaves the window
    if state.manual and state.manual.get("until"):
        moments.append(datetime.fromisoformat(state.manual["until"]))
    return min(moments) if moments else None



# --- the public changes: each keeps `check_at` current, so storage can index the card for the sweep ---

def record(state: TierState, rules: TierRules, value: int, at: datetime) -> TierChange | None:
    """Count a purchase's spend or points; upgrade (after this purchase) if it crosses a threshold."""
    change = _record(state, rules, value, at)
    state.check_at = next_check(state, rules)
    return change


def refund_day(state: TierState, rules: TierRules, value: int, purchased_at: datetime, at: datetime) -> None:
    """A refund takes its amount (or reversed points) off the purchase day's qualification; no downgrade here."""
    _refund_day(state, rules, value, purchased_at, at)
    state.check_at = next_check(state, rules)


def assign(state: TierState, rules: TierRules, tier_id: str, *, reason: str, actor: str, at: datetime,
           until: datetime | None) -> TierChange:
    """An admin's manual assignment: takes effect now and is a floor for downgrades until `until`."""
    change = _assign(state, rules, tier_id, reason=reason, actor=actor, at=at, until=until)
    state.check_at = next_check(state, rules)
    return change


def review(state: TierState, rules: TierRules, at: datetime) -> TierChange | None:
    """The daily sweep's step: apply the downgrade policy (and catch up with rule changes)."""
    change = _review(state, rules, at)
    state.check_at = next_check(state, rules)
    return change
