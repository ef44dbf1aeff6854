"""Pure rules of reports: the status a client sees, file names, the ledger export's rows. No AWS here.

A report's stored status only moves forward (queued -> running -> ready |
failed), written by the worker. What a client reads also accounts for what
the worker cannot write: a worker that died (Lambda timeout, out of memory)
leaves `running` behind, a message that never reached a worker leaves
`queued`, and the bucket's lifecycle rule removes old files. Those are
derived on read from the timestamps, so no report is "running" forever.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

WORKER_TIMEOUT_SECONDS = 900
"""The reports worker's Lambda timeout (.chalice/config.json, infra/template.py REPORTS_WORKER_TIMEOUT)."""
RUNNING_LIMIT = timedelta(seconds=WORKER_TIMEOUT_SECONDS + 120)
"""Past this, a `running` report's worker is certainly gone (the margin covers clock skew and the last write)."""
QUEUED_LIMIT = timedelta(hours=6)
"""Past this, a `queued` report's message is gone: 3 receives x 90 min visibility, then the dead-letter queue."""
FILE_LIFETIME = timedelta(days=7)
"""The bucket's lifecycle rule for `reports/` (infra/template.py REPORTS_EXPIRE_DAYS)."""

TIMED_OUT = ("timed_out", "The report took longer than the worker's time limit and was abandoned; "
             "request it again, or a shorter period.")
NOT_STARTED = ("not_started", "The report was never picked up by a worker; request it again.")
BUILD_FAILED = "build_failed"


def parse_at(value: Any) -> datetime | None:
    """A stored ISO timestamp, or None when absent."""
    return datetime.fromisoformat(str(value)) if value else None


def effective_status(doc: dict[str, Any], now: datetime) -> tuple[str, dict[str, str] | None]:
    """The status and failure a client sees for a stored report at `now`."""
    status = str(doc["status"])
    failure = doc.get("failure")
    if status == "running":
        started = parse_at(doc.get("started_at")) or parse_at(doc["created_at"])
        if started is not None and now - started > RUNNING_LIMIT:
            return "failed", {"code": TIMED_OUT[0], "message": TIMED_OUT[1]}
    if status == "queued":
        created = parse_at(doc["created_at"])
        if created is not None and now - created > QUEUED_LIMIT:
            return "failed", {"code": NOT_STARTED[0], "message": NOT_STARTED[1]}
    if status == "ready":
        completed = parse_at(doc.get("completed_at"))
        if completed is not None and now - completed >= FILE_LIFETIME:
            return "expired", None
    return status, dict(failure) if isinstance(failure, dict) else None


def is_stale_running(doc: dict[str, Any], now: datetime) -> bool:
    """Whether a worker finding this report `running` should give up on it (its builder is gone)."""
    return doc.get("status") == "running" and effective_status(doc, now)[0] == "failed"


def failure_reason(code: str | None, message: str | None) -> dict[str, str]:
    """The stored reason of a failed build: a code and one short line, never a traceback."""
    text = (message or "The report could not be built; the error has been logged.").splitlines()[0]
    return {"code": code or BUILD_FAILED, "message": text[:300]}


def filename(report_type: str, program_id: str, start: date, end: date, extension: str) -> str:
    """What the browser saves the file as: ids and dates only (ASCII, no personal data)."""
    last = end - timedelta(days=1)
    return f"{report_type}-{program_id}-{start.isoformat()}-{last.isoformat()}.{extension}"


def days(start: date, end: date) -> Iterator[date]:
    """Every day of [start, end)."""
    day = start
    while day < end:
        yield day
        day += timedelta(days=1)


def merge_by_key(streams: Iterable[Iterable[tuple[str, str, dict[str, Any]]]]
                 ) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Merge sorted (sort key, card, entry) streams into one, in sort-key (time) order, lazily."""
    return heapq.merge(*streams, key=lambda item: item[0])


LEDGER_COLUMNS: tuple[str, ...] = (
    "at", "card_number", "customer_id", "entry_id", "type", "points", "balance_after", "receipt_id", "refund_id",
    "store_id", "partner_id", "reason", "rule_version", "coupon", "tier", "previous_tier", "actor",
)


def ledger_row(number: str, customer_id: str | None, entry: dict[str, Any]) -> list[Any]:
    """One CSV row of the ledger export; integers stay integers, absent values are empty cells."""
    row: list[Any] = []
    for column in LEDGER_COLUMNS:
        if column == "card_number":
            row.append(number)
        elif column == "customer_id":
            row.append(customer_id or "")
        elif column in ("points", "balance_after", "rule_version"):
            value = entry.get(column)
            row.append(int(value) if value is not None else "")
        else:
            value = entry.get(column)
            row.append("" if value is None else str(value))
    return row


MEMBER_PERSONAL = ("phone", "email", "first_name", "last_name", "middle_name", "gender", "birth_date")
MEMBER_COLUMNS: tuple[str, ...] = (
    "customer_id", "registered_at", *MEMBER_PERSONAL, "tags", "preferred_channel", "acquisition_channel",
    "acquisition_source", "acquisition_campaign", "consent_sms", "consent_email", "consent_personal_data",
    "purchase_count", "refund_count", "spend", "first_purchase_at", "last_purchase_at", "cards",
)


def is_member(doc: dict[str, Any]) -> bool:
    """Erased customers are gone from exports; merged ones live on in the customer they were merged into."""
    return str(doc.get("status", "active")) == "active"


def member_row(customer_id: str, doc: dict[str, Any], person: dict[str, Any], disabled: Iterable[str],
               cards: list[str]) -> list[Any]:
    """One row of the members export; a field switched off (minimal-data mode) is left empty even if stored."""
    off = set(disabled)
    profile = doc.get("profile") or {}
    acquisition = profile.get("acquisition") or {}
    consents = doc.get("consents") or {}
    stats = doc.get("stats") or {}
    created = doc.get("created_at")
    row: list[Any] = [customer_id, created.isoformat() if isinstance(created, datetime) else str(created or "")]
    row += ["" if name in off or person.get(name) is None else str(person[name]) for name in MEMBER_PERSONAL]
    row += [";".join(str(t) for t in profile.get("tags") or []), profile.get("preferred_channel") or "",
            acquisition.get("channel") or "", acquisition.get("source") or "", acquisition.get("campaign") or ""]
    for kind in ("sms", "email", "personal_data"):
        consent = consents.get(kind)
        row.append("" if not consent else ("yes" if consent.get("granted") else "no"))
    row += [int(stats.get("purchase_count", 0)), int(stats.get("refund_count", 0)), int(stats.get("spend", 0)),
            str(stats.get("first_purchase_at") or ""), str(stats.get("last_purchase_at") or ""), ";".join(cards)]
    return row


# --- program summary ------------------------------------------------------------------

CHANNELS = ("site", "app", "store", "event", "referral", "import", "survey", "other")
SUMMARY_COLUMNS: tuple[str, ...] = (
    "day", "members", "new_members", *(f"new_{c}" for c in CHANNELS), "active_members", "receipts", "revenue",
    "average_receipt", "points_earned", "points_reversed", "points_redeemed", "points_returned", "points_expired",
    "points_adjusted", "liability_points", "liability_money", "breakage_bps",
)
"""One row per day, then a `total` row: members at the end, distinct active members over the whole period,
sums, and the outstanding liability now (points and money at the program's point value).

Points are gross with the refunds' part beside them, as on the dashboard (same names): `points_earned` is
what receipts earned and `points_reversed` what refunds took back, `points_redeemed` what receipts spent and
`points_returned` what refunds gave back, each counted on the day of its entry; so a refund's day shows it
and the receipt's day is unchanged, like receipts and revenue."""


@dataclass
class DayFigures:
    """What one day's ledger entries and receipts add up to (points are integers, money minor units)."""

    active: set[str] = field(default_factory=set)
    receipts: dict[str, int] = field(default_factory=dict)
    """receipt id -> total, once its record is read (0 until then)."""
    earned: int = 0
    reversed: int = 0
    redeemed: int = 0
    returned: int = 0
    expired: int = 0
    adjusted: int = 0

    def add(self, holder: str, entry: dict[str, Any]) -> None:
        """One ledger entry of the day. `holder` is the customer id, or the card number of an anonymous card.

        Earned and redeemed are gross, like receipts and revenue; what refunds took back (reversed) and gave
        back (returned) is counted apart, as the dashboard counts it.
        """
        kind, points = str(entry.get("type")), int(entry.get("points", 0))
        if kind in ("accrual", "bonus"):
            self.earned += points
        elif kind == "reversal":
            self.reversed -= points
        elif kind == "redemption":
            self.redeemed -= points
        elif kind == "return":
            self.returned += points
        elif kind == "expiry":
            self.expired -= points
        elif kind == "adjustment":
            self.adjusted += points
        receipt = entry.get("receipt_id")
        if kind in ("accrual", "redemption") and receipt:
            self.active.add(holder)
            self.receipts.setdefault(str(receipt), 0)


def breakage_bps(expired: int, earned: int) -> int | str:
    """Expired points as basis points of earned points (rounded down); empty when nothing was earned.

    The summary passes the points that stayed earned (earned less reversed): reversed points could not expire.
    """
    return expired * 10_000 // earned if earned > 0 else ""


def average(total: int, count: int) -> int | str:
    """Integer average in minor units (rounded half up), empty for no receipts."""
    return (2 * total + count) // (2 * count) if count else ""


@dataclass
class MemberCounts:
    """Members of the program by registration day: before the period, and each day of it by channel."""

    before: int = 0
    by_day: dict[date, Counter[str]] = field(default_factory=dict)

    def add(self, registered: date, start: date, channel: str | None) -> None:
        if registered < start:
            self.before += 1
        else:
            self.by_day.setdefault(registered, Counter())[channel if channel in CHANNELS else "other"] += 1


def summary_rows(start: date, end: date, members: MemberCounts, figures: Iterable[DayFigures],
                 liability_points: int, point_value: int) -> Iterator[list[Any]]:
    """The summary's rows: one per day of [start, end), then the total row.

    `figures` gives one DayFigures per day, in order, and is consumed lazily:
    only the current day's receipts and active holders (and the period's
    distinct active holders) are held.
    """
    running = members.before
    active_all: set[str] = set()
    totals = DayFigures()
    receipts_total = revenue_total = 0
    for day, fig in zip(days(start, end), figures, strict=True):
        new = members.by_day.get(day, Counter())
        running += sum(new.values())
        active_all |= fig.active
        revenue, count = sum(fig.receipts.values()), len(fig.receipts)
        receipts_total += count
        revenue_total += revenue
        totals.earned += fig.earned
        totals.reversed += fig.reversed
        totals.redeemed += fig.redeemed
        totals.returned += fig.returned
        totals.expired += fig.expired
        totals.adjusted += fig.adjusted
        yield [day.isoformat(), running, sum(new.values()), *(new.get(c, 0) for c in CHANNELS), len(fig.active),
               count, revenue, average(revenue, count), *_points(fig), "", "",
               breakage_bps(fig.expired, fig.earned - fig.reversed)]
    new_total: Counter[str] = Counter()
    for day, counts in members.by_day.items():
        if start <= day < end:
            new_total.update(counts)
    yield ["total", running, sum(new_total.values()), *(new_total.get(c, 0) for c in CHANNELS), len(active_all),
           receipts_total, revenue_total, average(revenue_total, receipts_total), *_points(totals),
           liability_points, liability_points * point_value,
           breakage_bps(totals.expired, totals.earned - totals.reversed)]


def _points(fig: DayFigures) -> list[int]:
    """The points columns, in SUMMARY_COLUMNS order."""
    return [fig.earned, fig.reversed, fig.redeemed, fig.returned, fig.expired, fig.adjusted]


# --- tier distribution ------------------------------------------------------------------

TIER_COLUMNS: tuple[str, ...] = ("section", "tier", "from_tier", "to_tier", "cards")
"""Rows `now` (cards per tier now, `tier` set) then `movement` (tier changes in the period, from -> to)."""


def tier_rows(now: Counter[str], movements: Counter[tuple[str, str]]) -> Iterator[list[Any]]:
    for tier, cards in sorted(now.items(), key=lambda item: (-item[1], item[0])):
        yield ["now", tier, "", "", cards]
    for (before, after), cards in sorted(movements.items()):
        yield ["movement", "", before, after, cards]
