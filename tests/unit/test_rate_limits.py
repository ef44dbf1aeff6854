"""Request-limit rules: the token bucket API Gateway's throttle works by, the quota's Retry-After, the usage key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.rate_limits import (
    AGENCY_PLAN,
    PLAN_LIMITS,
    TokenBucket,
    limits_for,
    seconds_to_next_utc_day,
    usage_key,
)
from chalicelib.schemas.tenancy import Plan


def test_a_full_bucket_allows_the_burst_then_says_how_long_to_wait() -> None:
    bucket = TokenBucket(rate_per_second=2, burst=3)
    assert [bucket.take(10.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(10.0) == 0.5  # one token at 2 per second
    assert bucket.take(10.25) == 0.25
    assert bucket.take(10.5) == 0.0


def test_the_bucket_refills_at_its_rate_and_never_beyond_the_burst() -> None:
    bucket = TokenBucket(rate_per_second=10, burst=5)
    for _ in range(5):
        bucket.take(0.0)
    assert bucket.take(1000.0) == 0.0
    allowed = sum(1 for _ in range(20) if bucket.take(1000.0) == 0.0)
    assert allowed == 4  # 5 after a long idle, one already taken


@settings(max_examples=200, deadline=None)
@given(
    rate=st.integers(min_value=1, max_value=50),
    burst=st.integers(min_value=1, max_value=100),
    gaps=st.lists(st.floats(min_value=0.0, max_value=0.5, allow_nan=False), min_size=1, max_size=300),
)
def test_never_more_than_burst_plus_rate_times_t_in_any_window(rate: int, burst: int, gaps: list[float]) -> None:
    bucket = TokenBucket(rate_per_second=rate, burst=burst)
    now, allowed_at = 0.0, []
    for gap in gaps:
        now += gap
        if bucket.take(now) == 0.0:
            allowed_at.append(now)
    for i, start in enumerate(allowed_at):
        for j in range(i, len(allowed_at)):
            window = allowed_at[j] - start
            assert j - i + 1 <= burst + rate * window + 1e-6


@given(st.lists(st.floats(min_value=0.0, max_value=2.0, allow_nan=False), min_size=1, max_size=100))
def test_a_refused_request_is_told_exactly_when_a_token_is_back(gaps: list[float]) -> None:
    bucket = TokenBucket(rate_per_second=4, burst=2)
    now = 0.0
    for gap in gaps:
        now += gap
        wait = bucket.take(now)
        if wait > 0:
            assert wait <= 1 / 4 + 1e-9
            assert bucket.take(now + wait + 1e-9) == 0.0
            now += wait + 1e-9


def test_retry_after_runs_to_the_next_utc_midnight() -> None:
    assert seconds_to_next_utc_day(datetime(2026, 11, 2, 0, 0, 0, tzinfo=UTC)) == 86_400
    assert seconds_to_next_utc_day(datetime(2026, 11, 2, 10, 0, 0, tzinfo=UTC)) == 14 * 3600
    assert seconds_to_next_utc_day(datetime(2026, 11, 2, 23, 59, 59, 900_000, tzinfo=UTC)) == 1
    moscow = timezone(timedelta(hours=3))
    assert seconds_to_next_utc_day(datetime(2026, 11, 3, 1, 0, 0, tzinfo=moscow)) == 2 * 3600  # 22:00 UTC


@given(st.datetimes(timezones=st.just(UTC)))
def test_retry_after_is_at_least_a_second_and_at_most_a_day(at: datetime) -> None:
    seconds = seconds_to_next_utc_day(at)
    assert 1 <= seconds <= 86_400
    assert (at + timedelta(seconds=seconds)).date() > at.date() or seconds == 1


def test_every_tenant_plan_and_the_agency_have_limits_that_grow_with_the_plan() -> None:
    assert {p.value for p in Plan} | {AGENCY_PLAN} == set(PLAN_LIMITS)
    basic, standard, premium = (limits_for(p) for p in ("basic", "standard", "premium"))
    assert basic.burst < standard.burst < premium.burst
    assert basic.quota_per_day < standard.quota_per_day < premium.quota_per_day
    assert limits_for("no-such-plan") == basic
    for limits in PLAN_LIMITS.values():
        assert all(isinstance(v, int) and v > 0 for v in (limits.rate_per_second, limits.burst, limits.quota_per_day))
        assert limits.burst >= limits.rate_per_second


def test_usage_keys_are_stable_distinct_and_fit_api_gateway() -> None:
    key = usage_key("prod", "tenant", "coffee-chain")
    assert key == usage_key("prod", "tenant", "coffee-chain")
    others = {usage_key("dev", "tenant", "coffee-chain"), usage_key("prod", "agency", "coffee-chain"),
              usage_key("prod", "tenant", "fuel-net")}
    assert key not in others and len(others) == 3
    assert 20 <= len(key) <= 128


def test_fixed_window_counts_from_the_hour_and_keeps_its_counter_one_more_window() -> None:
    from datetime import UTC, datetime

    from chalicelib.domain.rate_limits import fixed_window

    window = fixed_window(datetime(2026, 11, 2, 10, 59, 30, tzinfo=UTC), 3600)
    start = int(datetime(2026, 11, 2, 10, 0, tzinfo=UTC).timestamp())
    assert (window.index, window.retry_after, window.expires_at_epoch) == (start // 3600, 30, start + 2 * 3600)
