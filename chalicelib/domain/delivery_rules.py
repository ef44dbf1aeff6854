"""Whether one message may go to one customer now: consent, status, quiet hours, the weekly cap. Pure rules."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

NO_CONSENT = "no_consent"
OPTED_OUT = "opted_out"
ERASED = "erased"
QUIET_HOURS = "quiet_hours"
FREQUENCY_CAP = "frequency_cap"
NO_CONTACT = "no_contact"
INACTIVE = "inactive"

CONSENT_KIND = {"sms": "sms", "email": "email"}


def _clock(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def in_quiet_hours(local: time, start: str, end: str) -> bool:
    """Inside [start, end); a window whose end is before its start crosses midnight; start == end is no window."""
    begin, finish = _clock(start), _clock(end)
    if begin == finish:
        return False
    if begin < finish:
        return begin <= local < finish
    return local >= begin or local < finish


def week_key(now: datetime, tz: str) -> str:
    """The ISO week in the tenant's time zone (Monday 00:00 local starts a new week), e.g. `2026-W45`."""
    year, week, _ = now.astimezone(ZoneInfo(tz)).isocalendar()
    return f"{year}-W{week:02d}"


def decide(consents: dict[str, Any], status: str, channel: str, now: datetime, tz: str,
           quiet_start: str, quiet_end: str, sent_this_week: int, cap: int) -> str | None:
    """None if the message may go now, else why not (one of the reason constants above).

    Consent is explicit: no recorded decision is no consent. Quiet hours hold
    SMS only (an e-mail waits in the inbox, a text wakes the phone). A cap of
    0 means no cap.
    """
    if status == "erased":
        return ERASED
    if status != "active":
        return INACTIVE
    consent = consents.get(CONSENT_KIND[channel])
    if not consent:
        return NO_CONSENT
    if not consent.get("granted"):
        return OPTED_OUT
    if channel == "sms" and in_quiet_hours(now.astimezone(ZoneInfo(tz)).time(), quiet_start, quiet_end):
        return QUIET_HOURS
    if cap and sent_this_week >= cap:
        return FREQUENCY_CAP
    return None


def _offset_changes_at(zone: ZoneInfo, before: datetime, after: datetime) -> datetime:
    """The first second in (before, after] whose UTC offset is `after`'s: where a DST gap ends, to the second."""
    target = after.astimezone(zone).utcoffset()
    low, high = before, after
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).utcoffset() == target:
            high = middle
        else:
            low = middle
    return high


def _wall_clock_moment(day: date, wall: time, zone: ZoneInfo) -> datetime:
    """The first instant at or after which the local clock reads `wall` on `day`.

    A wall time skipped by a DST gap (e.g. 02:30 when clocks jump 02:00 -> 03:00) is passed at the jump itself;
    a repeated one (autumn) is reached the first time.
    """
    local = datetime.combine(day, wall, tzinfo=zone)
    moment = local.astimezone(UTC)
    if moment.astimezone(zone).replace(tzinfo=None) == local.replace(tzinfo=None):
        return moment
    return _offset_changes_at(zone, local.replace(fold=1).astimezone(UTC), moment)


def next_allowed(at: datetime, tz: str, start: str, end: str) -> datetime:
    """`at` if it is outside the quiet window in zone `tz`, else the moment the window ends (same zone as `at`).

    The end is a local wall-clock time, so across a DST change the window keeps its local hours, not its length.
    """
    zone = ZoneInfo(tz)
    local = at.astimezone(zone)
    if not in_quiet_hours(local.time(), start, end):
        return at
    finish = _clock(end)
    day = local.date() + timedelta(days=1 if local.time() >= finish else 0)
    return _wall_clock_moment(day, finish, zone).astimezone(at.tzinfo)
