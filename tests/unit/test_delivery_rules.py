"""Delivery rules: consent, status, quiet hours (across midnight, in the tenant's zone), weekly cap, ISO weeks."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from chalicelib.domain import delivery_rules as rules

GRANTED = {"sms": {"granted": True}, "email": {"granted": True}}
MSK = "Europe/Moscow"


def decide(channel: str = "sms", at: datetime = datetime(2026, 11, 2, 10, 0, tzinfo=UTC), *,
           consents: dict | None = None, status: str = "active", sent: int = 0, cap: int = 3,
           start: str = "21:00", end: str = "09:00") -> str | None:
    return rules.decide(GRANTED if consents is None else consents, status, channel, at, MSK, start, end, sent, cap)


def test_allowed_when_consented_active_daytime_under_cap() -> None:
    assert decide("sms") is None
    assert decide("email") is None


def test_consent_is_explicit_and_per_channel() -> None:
    assert decide("sms", consents={}) == rules.NO_CONSENT
    assert decide("sms", consents={"email": {"granted": True}}) == rules.NO_CONSENT
    assert decide("email", consents={"email": {"granted": False}, "sms": {"granted": True}}) == rules.OPTED_OUT
    assert decide("sms", consents={"email": {"granted": False}, "sms": {"granted": True}}) is None


def test_erased_and_merged_customers_get_nothing() -> None:
    assert decide(status="erased") == rules.ERASED
    assert decide(status="merged") == rules.INACTIVE


@pytest.mark.parametrize(("local", "quiet"), [
    (time(20, 59), False), (time(21, 0), True), (time(23, 59), True), (time(0, 0), True), (time(8, 59), True),
    (time(9, 0), False), (time(12, 0), False),
])
def test_quiet_window_crossing_midnight(local: time, quiet: bool) -> None:
    assert rules.in_quiet_hours(local, "21:00", "09:00") is quiet


def test_quiet_window_within_a_day_and_empty_window() -> None:
    assert rules.in_quiet_hours(time(13, 30), "13:00", "14:00") is True
    assert rules.in_quiet_hours(time(14, 0), "13:00", "14:00") is False
    assert rules.in_quiet_hours(time(3, 0), "00:00", "00:00") is False


def test_quiet_hours_use_the_tenant_zone_and_hold_sms_only() -> None:
    late_moscow = datetime(2026, 11, 2, 19, 30, tzinfo=UTC)  # 22:30 in Moscow (UTC+3), 19:30 UTC
    assert decide("sms", late_moscow) == rules.QUIET_HOURS
    assert decide("email", late_moscow) is None
    early_moscow = datetime(2026, 11, 2, 5, 59, tzinfo=UTC)  # 08:59 Moscow
    assert decide("sms", early_moscow) == rules.QUIET_HOURS
    assert decide("sms", datetime(2026, 11, 2, 6, 0, tzinfo=UTC)) is None  # 09:00 Moscow


def test_weekly_cap_and_no_cap() -> None:
    assert decide(sent=2, cap=3) is None
    assert decide(sent=3, cap=3) == rules.FREQUENCY_CAP
    assert decide(sent=50, cap=0) is None


def test_consent_is_checked_before_the_cap_and_quiet_hours() -> None:
    late = datetime(2026, 11, 2, 19, 30, tzinfo=UTC)
    assert decide("sms", late, consents={}, sent=9) == rules.NO_CONSENT


def test_week_key_is_the_iso_week_in_the_tenant_zone() -> None:
    # Sunday 2026-11-08 22:30 UTC is already Monday 01:30 in Moscow: the next ISO week there.
    sunday_night_utc = datetime(2026, 11, 8, 22, 30, tzinfo=UTC)
    assert rules.week_key(sunday_night_utc, "UTC") == "2026-W45"
    assert rules.week_key(sunday_night_utc, MSK) == "2026-W46"
    assert rules.week_key(datetime(2027, 1, 1, 12, tzinfo=UTC), MSK) == "2026-W53"


BERLIN = "Europe/Berlin"


@pytest.mark.parametrize(("at", "expected"), [
    (datetime(2026, 11, 2, 19, 30, tzinfo=UTC), datetime(2026, 11, 3, 6, 0, tzinfo=UTC)),  # 22:30 -> 09:00 next day
    (datetime(2026, 11, 2, 21, 30, tzinfo=UTC), datetime(2026, 11, 3, 6, 0, tzinfo=UTC)),  # 00:30 -> 09:00 same day
    (datetime(2026, 11, 2, 18, 0, tzinfo=UTC), datetime(2026, 11, 3, 6, 0, tzinfo=UTC)),  # 21:00 sharp is quiet
    (datetime(2026, 11, 3, 5, 59, tzinfo=UTC), datetime(2026, 11, 3, 6, 0, tzinfo=UTC)),  # 08:59
    (datetime(2026, 11, 2, 6, 0, tzinfo=UTC), datetime(2026, 11, 2, 6, 0, tzinfo=UTC)),  # 09:00: the end, allowed
    (datetime(2026, 11, 2, 17, 59, tzinfo=UTC), datetime(2026, 11, 2, 17, 59, tzinfo=UTC)),  # 20:59: not yet quiet
])
def test_next_allowed_crossing_midnight_in_moscow(at: datetime, expected: datetime) -> None:
    assert rules.next_allowed(at, MSK, "21:00", "09:00") == expected


def test_next_allowed_keeps_the_zone_of_its_argument() -> None:
    at = datetime(2026, 11, 2, 22, 30, tzinfo=ZoneInfo(MSK))
    moved = rules.next_allowed(at, MSK, "21:00", "09:00")
    assert moved.tzinfo is at.tzinfo and moved.replace(tzinfo=None) == datetime(2026, 11, 3, 9, 0)


def test_next_allowed_within_a_day_and_empty_window() -> None:
    lunch = datetime(2026, 11, 2, 10, 15, tzinfo=UTC)  # 13:15 Moscow
    assert rules.next_allowed(lunch, MSK, "13:00", "14:00") == datetime(2026, 11, 2, 11, 0, tzinfo=UTC)
    assert rules.next_allowed(lunch, MSK, "13:00", "13:00") == lunch


def test_next_allowed_keeps_local_hours_across_dst_in_berlin() -> None:
    # 2026-03-29 01:00 UTC Berlin goes from UTC+1 to UTC+2: 09:00 local that morning is 07:00 UTC, not 08:00.
    assert rules.next_allowed(datetime(2026, 3, 28, 21, 30, tzinfo=UTC), BERLIN, "21:00", "09:00") == datetime(
        2026, 3, 29, 7, 0, tzinfo=UTC)
    # 2026-10-25 01:00 UTC it goes back from UTC+2 to UTC+1: 09:00 local is 08:00 UTC.
    assert rules.next_allowed(datetime(2026, 10, 24, 20, 30, tzinfo=UTC), BERLIN, "21:00", "09:00") == datetime(
        2026, 10, 25, 8, 0, tzinfo=UTC)


def test_next_allowed_end_inside_a_dst_gap_or_repeated_hour() -> None:
    # 02:30 does not exist on 2026-03-29 in Berlin: the window ends when the clock jumps to 03:00 (01:00 UTC).
    assert rules.next_allowed(datetime(2026, 3, 28, 23, 30, tzinfo=UTC), BERLIN, "21:00", "02:30") == datetime(
        2026, 3, 29, 1, 0, tzinfo=UTC)
    # 02:30 happens twice on 2026-10-25: the first one (summer time, 00:30 UTC) ends the window.
    assert rules.next_allowed(datetime(2026, 10, 24, 22, 0, tzinfo=UTC), BERLIN, "21:00", "02:30") == datetime(
        2026, 10, 25, 0, 30, tzinfo=UTC)


def test_next_allowed_agrees_with_decide() -> None:
    at = datetime(2026, 11, 2, 19, 30, tzinfo=UTC)
    moved = rules.next_allowed(at, MSK, "21:00", "09:00")
    assert decide("sms", at) == rules.QUIET_HOURS
    assert decide("sms", moved) is None
    assert decide("sms", moved - timedelta(seconds=1)) == rules.QUIET_HOURS
