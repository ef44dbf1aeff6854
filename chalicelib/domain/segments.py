"""Segments as pure rules: a filter and whether one member snapshot matches it.

A snapshot is what a segment can ask about a customer: the customer record
(tags, consents, acquisition, stats, status, created_at; no personal data),
the birth date (only read when the filter asks about birthdays) and the
customer's cards. Every condition is optional and all set conditions must
hold. Time windows are half-open so that complementary conditions split the
base exactly: "purchased within N days" is a last purchase after `at - N
days`, "no purchase for N days" is none after it (never purchased included).

Birthdays are counted in the tenant's time zone (a member born on 3 November
has a birthday "today" on the 3rd in Moscow even while it is still the 2nd in
UTC). Someone born on 29 February celebrates on 28 February in a non-leap
year.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from chalicelib.domain.cards import CardState

INACTIVE_STATUSES = frozenset({"merged", "erased"})
"""A merged record is a pointer to its survivor, an erased one a bare id: neither is ever a member."""


@dataclass(frozen=True)
class Filter:
    """The conditions of a segment; None (or empty) means "any"."""

    program_id: str | None = None
    tiers: tuple[str, ...] = ()
    tags_any: tuple[str, ...] = ()
    tags_all: tuple[str, ...] = ()
    birthday_within_days: int | None = None
    no_purchase_for_days: int | None = None
    purchased_within_days: int | None = None
    spend_min: int | None = None
    spend_max: int | None = None
    store_ids: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    consent: str | None = None
    points_expiring_within_days: int | None = None
    points_expiring_min: int = 1
    acquisition_channels: tuple[str, ...] = ()
    created_within_days: int | None = None

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Filter:
        """From the API / storage form (lists become tuples, unknown or null keys are ignored)."""
        values: dict[str, Any] = {}
        for name in cls.__dataclass_fields__:
            value = doc.get(name)
            if value is None:
                continue
            values[name] = tuple(value) if isinstance(value, list | tuple) else value
        return cls(**values)

    @property
    def needs_birth_date(self) -> bool:
        return self.birthday_within_days is not None

    @property
    def needs_cards(self) -> bool:
        return bool(self.program_id or self.tiers or self.points_expiring_within_days is not None)

    @property
    def needs_regions(self) -> bool:
        return bool(self.regions)


@dataclass(frozen=True)
class Snapshot:
    """One customer as a segment sees them."""

    customer_id: str
    doc: Mapping[str, Any]
    cards: Sequence[CardState] = ()
    birth_date: date | None = None


@dataclass(frozen=True)
class Context:
    """What matching needs besides the customer: the moment, the tenant's zone, its stores' regions."""

    at: datetime
    tz: tzinfo
    store_regions: Mapping[str, str] = field(default_factory=dict)


def birthday_in(year: int, born: date) -> date:
    """The birthday's date in `year`: 29 February falls on 28 February when the year has none."""
    if born.month == 2 and born.day == 29 and not _leap(year):
        return date(year, 2, 28)
    return date(year, born.month, born.day)


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def days_to_birthday(born: date, today: date) -> int:
    """Days from `today` to the next birthday (0 when it is today)."""
    this_year = birthday_in(today.year, born)
    if this_year >= today:
        return (this_year - today).days
    return (birthday_in(today.year + 1, born) - today).days


def _parse(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def _cards_in_scope(flt: Filter, cards: Sequence[CardState]) -> list[CardState]:
    return [c for c in cards if flt.program_id is None or c.program_id == flt.program_id]


def expiring_points(cards: Sequence[CardState], at: datetime, within_days: int) -> int:
    """Points on these cards that expire after `at` and within `within_days` (pending ones included)."""
    until = at + timedelta(days=within_days)
    return sum(points for card in cards for _, points in card.wallet.expiring(at, until))


def _purchased_since(stats: Mapping[str, Any], since: datetime) -> bool:
    last = _parse(stats.get("last_purchase_at"))
    return last is not None and last > since


def _stores_bought_at(stats: Mapping[str, Any]) -> set[str]:
    return {store for store, receipts in (stats.get("stores") or {}).items() if int(receipts) > 0}


def failed_conditions(flt: Filter, snap: Snapshot, ctx: Context) -> list[str]:
    """The names of the filter's conditions the snapshot fails (empty: it is a member).

    Naming the failures (not just a yes/no) makes a surprising count
    explainable, and the tests can pin each condition on its own. The
    names come in the order of the filter's fields.
    """
    doc = snap.doc
    if doc.get("status", "active") in INACTIVE_STATUSES:
        return ["status"]
    profile = doc.get("profile") or {}
    stats = doc.get("stats") or {}
    cards = _cards_in_scope(flt, snap.cards)
    return [*_failed_cards_and_tags(flt, cards, set(profile.get("tags") or [])),
            *_failed_dates(flt, snap.birth_date, stats, ctx),
            *_failed_spending(flt, stats, ctx),
            *_failed_others(flt, doc, profile, cards, ctx)]


def _failed_cards_and_tags(flt: Filter, cards: Sequence[CardState], tags: set[str]) -> list[str]:
    failed: list[str] = []
    if flt.program_id is not None and not cards:
        failed.append("program_id")
    if flt.tiers and not any(c.tier in flt.tiers for c in cards):
        failed.append("tiers")
    if flt.tags_any and not tags & set(flt.tags_any):
        failed.append("tags_any")
    if flt.tags_all and not set(flt.tags_all) <= tags:
        failed.append("tags_all")
    return failed


def _failed_dates(flt: Filter, birth_date: date | None, stats: Mapping[str, Any], ctx: Context) -> list[str]:
    """The birthday (in the tenant's zone) and the purchase windows."""
    failed: list[str] = []
    if flt.birthday_within_days is not None:
        today = ctx.at.astimezone(ctx.tz).date()
        if birth_date is None or days_to_birthday(birth_date, today) > flt.birthday_within_days:
            failed.append("birthday_within_days")
    if flt.no_purchase_for_days is not None and _purchased_since(
            stats, ctx.at - timedelta(days=flt.no_purchase_for_days)):
        failed.append("no_purchase_for_days")
    if flt.purchased_within_days is not None and not _purchased_since(
            stats, ctx.at - timedelta(days=flt.purchased_within_days)):
        failed.append("purchased_within_days")
    return failed


def _failed_spending(flt: Filter, stats: Mapping[str, Any], ctx: Context) -> list[str]:
    """How much, and where (stores, and their regions)."""
    failed: list[str] = []
    spend = int(stats.get("spend", 0))
    if flt.spend_min is not None and spend < flt.spend_min:
        failed.append("spend_min")
    if flt.spend_max is not None and spend > flt.spend_max:
        failed.append("spend_max")
    bought_at = _stores_bought_at(stats)
    if flt.store_ids and not bought_at & set(flt.store_ids):
        failed.append("store_ids")
    if flt.regions and not {ctx.store_regions.get(s) for s in bought_at} & set(flt.regions):
        failed.append("regions")
    return failed


def _failed_others(flt: Filter, doc: Mapping[str, Any], profile: Mapping[str, Any], cards: Sequence[CardState],
                   ctx: Context) -> list[str]:
    """Consent, expiring points, acquisition channel and the customer's age in the base."""
    failed: list[str] = []
    if flt.consent is not None and not ((doc.get("consents") or {}).get(flt.consent) or {}).get("granted"):
        failed.append("consent")
    if flt.points_expiring_within_days is not None and expiring_points(
            cards, ctx.at, flt.points_expiring_within_days) < flt.points_expiring_min:
        failed.append("points_expiring_within_days")
    if flt.acquisition_channels and (profile.get("acquisition") or {}).get("channel") not in flt.acquisition_channels:
        failed.append("acquisition_channels")
    if flt.created_within_days is not None:
        created = _parse(doc.get("created_at"))
        if created is None or created <= ctx.at - timedelta(days=flt.created_within_days):
            failed.append("created_within_days")
    return failed


def matches(flt: Filter, snap: Snapshot, ctx: Context) -> bool:
    return not failed_conditions(flt, snap, ctx)

