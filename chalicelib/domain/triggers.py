"""Trigger messages as pure rules: which automated messages one customer is due today, and their occasions.

The daily trigger run shows each customer of a tenant to `due()` with the
program's trigger settings. Every trigger answers with an *occasion*: the
thing it is about (the card's activation, this year's birthday, the
points expiring on a given day, the tier reached on a given day, the lapse
since a given last purchase, a receipt). The occasion goes into the message's
dedup key, so a trigger fires at most once per customer per occasion however
often the run repeats or its window overlaps the previous day's.

Windows look a few days back on purpose: a run that was missed (an outage, a
late schedule) is caught up by the next one, and the dedup key keeps the
catch-up from repeating what was sent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from chalicelib.domain.cards import CardState, CardStatus
from chalicelib.domain.segments import birthday_in, days_to_birthday

KINDS = ("welcome", "birthday", "points_expiring", "tier_upgrade", "win_back", "feedback")
CATCH_UP_DAYS = 3
"""Welcome, tier upgrade and feedback look this many days back, so a missed run is made up the next day."""
WIN_BACK_WINDOW_DAYS = 7
"""Win-back fires while the lapse is N to N + 7 days old: long-lapsed customers are a campaign's job, and a
lapse never outlives the dedup record that keeps it from repeating."""


@dataclass(frozen=True)
class Purchase:
    """A receipt of the customer (from the per-customer purchase log)."""

    receipt_id: str
    at: datetime
    total: int


@dataclass(frozen=True)
class Snapshot:
    """What the triggers may ask about one customer; personal data only as the birth date."""

    customer_id: str
    doc: Mapping[str, Any]
    """The customer record: status, stats (last_purchase_at), created_at."""
    cards: Sequence[CardState] = ()
    birth_date: date | None = None
    purchases: Sequence[Purchase] = ()
    tier_ranks: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    """program id -> tier id -> rank (0 = lowest), to tell an upgrade from a downgrade."""
    previous_tiers: Mapping[str, str | None] = field(default_factory=dict)
    """card number -> the tier before the current one (from its last tier ledger entry); None: no tier before."""


@dataclass(frozen=True)
class Fire:
    """One trigger due for one customer."""

    kind: str
    program_id: str
    occasion: str
    card_number: str | None = None
    extra: dict[str, str | int] = field(default_factory=dict)

    def dedup_key(self, customer_id: str) -> str:
        """`trigger:<kind>:<program>:<occasion>:<customer>`, hashed when it would exceed the message contract's 200."""
        plain = f"trigger:{self.kind}:{self.program_id}:{self.occasion}:{customer_id}"
        if len(plain) <= 200:
            return plain
        return f"trigger:{self.kind}:" + hashlib.sha256(plain.encode()).hexdigest()


def _at(value: Any) -> datetime | None:
    if not value:
        return None
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _local_day(moment: datetime, tz: tzinfo) -> date:
    return moment.astimezone(tz).date()


def _program_cards(snap: Snapshot, program_id: str) -> list[CardState]:
    return sorted((c for c in snap.cards if c.program_id == program_id), key=lambda c: c.number)


def welcome(snap: Snapshot, program_id: str, now: datetime) -> Fire | None:
    """A card of the program activated within the catch-up window: once per customer per program."""
    since = now - timedelta(days=CATCH_UP_DAYS)
    for card in _program_cards(snap, program_id):
        if card.activated_at is not None and since < card.activated_at <= now:
            return Fire("welcome", program_id, "activation", card.number)
    return None


def birthday(snap: Snapshot, program_id: str, now: datetime, tz: tzinfo, days_before: int) -> Fire | None:
    """The birthday is `days_before` days away or nearer: once per customer per program per year.

    Firing anywhere inside the window (not only on the exact day) is what makes
    a missed run harmless; the occasion is the birthday's year.
    """
    if snap.birth_date is None:
        return None
    today = _local_day(now, tz)
    ahead = days_to_birthday(snap.birth_date, today)
    if ahead > days_before:
        return None
    day = today + timedelta(days=ahead)
    cards = _program_cards(snap, program_id)
    return Fire("birthday", program_id, str(day.year), cards[0].number if cards else None,
                {"birthday": birthday_in(day.year, snap.birth_date).isoformat()})


def points_expiring(snap: Snapshot, program_id: str, now: datetime, tz: tzinfo, within_days: int,
                    min_points: int) -> Fire | None:
    """At least `min_points` points of the program's cards expire within `within_days`: once per expiry day."""
    until = now + timedelta(days=within_days)
    by_day: dict[date, int] = {}
    for card in _program_cards(snap, program_id):
        for moment, points in card.wallet.expiring(now, until):
            day = _local_day(moment, tz)
            by_day[day] = by_day.get(day, 0) + points
    if not by_day:
        return None
    day = min(by_day)
    total = sum(by_day.values())
    if total < min_points:
        return None
    return Fire("points_expiring", program_id, day.isoformat(), None,
                {"points": total, "first_day": day.isoformat(), "first_day_points": by_day[day]})


def tier_upgrade(snap: Snapshot, program_id: str, now: datetime, tz: tzinfo) -> Fire | None:
    """A card reached a higher tier within the catch-up window: once per tier per day it was reached.

    An upgrade is a tier ranked above the one before it; with no tier before
    (a new card placed in its first tier) or an unknown one, any tier above the
    lowest. A downgrade never fires.
    """
    since = now - timedelta(days=CATCH_UP_DAYS)
    ranks = snap.tier_ranks.get(program_id, {})
    for card in _program_cards(snap, program_id):
        state = card.tiers
        if state.tier is None or state.since is None or not since < state.since <= now:
            continue
        rank = ranks.get(state.tier)
        if rank is None:
            continue
        before = ranks.get(snap.previous_tiers.get(card.number) or "", 0)
        if rank > before:
            return Fire("tier_upgrade", program_id, f"{state.tier}:{_local_day(state.since, tz).isoformat()}",
                        card.number, {"tier": state.tier})
    return None


def win_back(snap: Snapshot, program_id: str, now: datetime, tz: tzinfo, days: int) -> Fire | None:
    """No purchase for `days` days after at least one (see WIN_BACK_WINDOW_DAYS): once per lapse, the occasion
    being the last purchase's day."""
    if not _program_cards(snap, program_id):
        return None
    last = _at((snap.doc.get("stats") or {}).get("last_purchase_at"))
    if last is None or not now - timedelta(days=days + WIN_BACK_WINDOW_DAYS) < last <= now - timedelta(days=days):
        return None
    return Fire("win_back", program_id, _local_day(last, tz).isoformat(), None,
                {"days_since_purchase": (now - last).days})


def feedback(snap: Snapshot, program_id: str, now: datetime) -> Fire | None:
    """The latest receipt of the catch-up window, once per receipt (one invitation a day at most per person)."""
    since = now - timedelta(days=CATCH_UP_DAYS)
    recent = [p for p in snap.purchases if since < p.at <= now and p.total > 0]
    if not recent or not _program_cards(snap, program_id):
        return None
    latest = max(recent, key=lambda p: (p.at, p.receipt_id))
    return Fire("feedback", program_id, latest.receipt_id, None, {"receipt_id": latest.receipt_id})


def active(snap: Snapshot) -> bool:
    """Merged pointers and erased records never get messages; blocked cards are skipped by card-based triggers."""
    return bool(snap.doc.get("status", "active") == "active")


def usable_cards(cards: Sequence[CardState]) -> list[CardState]:
    return [c for c in cards if c.status in (CardStatus.ACTIVE, CardStatus.ISSUED)]


def due(snap: Snapshot, program_id: str, settings: Mapping[str, Mapping[str, Any]], now: datetime,
        tz: tzinfo) -> list[Fire]:
    """Every enabled trigger of the program that is due for this customer now, in `KINDS` order."""
    if not active(snap):
        return []
    snap = Snapshot(snap.customer_id, snap.doc, usable_cards(snap.cards), snap.birth_date, snap.purchases,
                    snap.tier_ranks, snap.previous_tiers)
    fires: list[Fire | None] = []
    on = {kind: spec for kind, spec in settings.items() if spec.get("enabled")}
    if "welcome" in on:
        fires.append(welcome(snap, program_id, now))
    if "birthday" in on:
        fires.append(birthday(snap, program_id, now, tz, int(on["birthday"].get("days_before", 0))))
    if "points_expiring" in on:
        spec = on["points_expiring"]
        fires.append(points_expiring(snap, program_id, now, tz, int(spec.get("within_days", 14)),
                                     int(spec.get("min_points", 1))))
    if "tier_upgrade" in on:
        fires.append(tier_upgrade(snap, program_id, now, tz))
    if "win_back" in on:
        fires.append(win_back(snap, program_id, now, tz, int(on["win_back"].get("days", 60))))
    if "feedback" in on:
        fires.append(feedback(snap, program_id, now))
    return [f for f in fires if f is not None]


def local_run_day(now: datetime, tz: tzinfo, send_time: str) -> date | None:
    """The local day whose run is due at `now` (None: not yet time today). Runs at or after `send_time` local."""
    local = now.astimezone(tz)
    hours, minutes = (int(part) for part in send_time.split(":"))
    if (local.hour, local.minute) < (hours, minutes):
        return None
    return local.date()
