"""Webhook rules: signatures (against an implementation written here), URLs, the retry schedule, disabling."""

from __future__ import annotations

import hashlib
import hmac
import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain import webhooks as rules

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


@given(st.text(min_size=1, max_size=60), st.integers(min_value=0, max_value=2**33), st.binary(max_size=500))
def test_signature_is_hmac_sha256_of_timestamp_dot_body(secret: str, timestamp: int, body: bytes) -> None:
    expected = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    assert rules.sign(secret, timestamp, body) == expected
    assert rules.signature_header([secret], timestamp, body) == f"t={timestamp},v1={expected}"


def test_during_a_rotation_both_secrets_sign_the_current_first() -> None:
    until = T0 + rules.ROTATION_OVERLAP
    assert rules.signing_secrets("new", "old", until, T0) == ["new", "old"]
    assert rules.signing_secrets("new", "old", until, until) == ["new"]
    assert rules.signing_secrets("new", None, None, T0) == ["new"]
    header = rules.signature_header(["new", "old"], 1700000000, b"{}")
    assert header.count("v1=") == 2 and header.startswith("t=1700000000,")


def test_secrets_and_event_ids() -> None:
    secret = rules.new_secret()
    assert secret.startswith("whsec_") and len(secret) == 6 + 43 and secret != rules.new_secret()
    one = rules.event_id("coffee", "purchase.processed", "receipt:r1")
    assert one == rules.event_id("coffee", "purchase.processed", "receipt:r1")
    assert one != rules.event_id("tea", "purchase.processed", "receipt:r1")
    assert one != rules.event_id("coffee", "purchase.refunded", "receipt:r1")
    assert one.startswith("evt_") and len(one) == 36
    assert rules.envelope(one, "purchase.processed", T0, "coffee", {"a": 1}) == {
        "id": one, "type": "purchase.processed", "created_at": "2026-11-02T10:00:00Z", "tenant_id": "coffee",
        "data": {"a": 1}}


@pytest.mark.parametrize("url", [
    "https://hooks.example.com/x", "https://hooks.example.com:8443/x?y=1", "https://8.8.8.8/hook",
    "https://[2001:4860:4860::8888]/hook",
])
def test_public_https_urls_pass(url: str) -> None:
    assert rules.check_url(url, allow_loopback_http=False) == url


@pytest.mark.parametrize("url", [
    "http://hooks.example.com/x", "ftp://hooks.example.com/x", "https://user:pw@hooks.example.com/",
    "https://10.0.0.1/", "https://192.168.1.1/", "https://172.16.0.5/", "https://169.254.169.254/",
    "https://127.0.0.1/", "https://[::1]/", "https://[fe80::1]/", "https://0.0.0.0/", "https://localhost/",
    "https://intranet/", "https://a.localhost/", "https://hooks.example.com/#frag", "https://hooks.example.com:0/",
    "https://hooks.example.com:99999/", "https:///nohost", "https://exa mple.com/", "https://[::ffff:10.0.0.1]/",
    "https://" + "a" * 2050 + ".com/",
])
def test_unsafe_urls_are_refused(url: str) -> None:
    with pytest.raises(rules.UnsafeUrl):
        rules.check_url(url, allow_loopback_http=False)


def test_loopback_http_only_when_allowed() -> None:
    for url in ("http://127.0.0.1:8080/x", "http://localhost:9000/", "https://localhost/"):
        assert rules.check_url(url, allow_loopback_http=True) == url
        with pytest.raises(rules.UnsafeUrl):
            rules.check_url(url, allow_loopback_http=False)
    with pytest.raises(rules.UnsafeUrl):
        rules.check_url("http://10.0.0.1/", allow_loopback_http=True)


def test_resolved_addresses_checked_before_connecting() -> None:
    assert rules.address_allowed("93.184.216.34", allow_loopback=False)
    assert not rules.address_allowed("10.0.0.8", allow_loopback=False)
    assert not rules.address_allowed("127.0.0.1", allow_loopback=False)
    assert rules.address_allowed("127.0.0.1", allow_loopback=True)
    assert not rules.address_allowed("169.254.169.254", allow_loopback=True)
    assert not rules.address_allowed("fe80::1%eth0", allow_loopback=False)
    assert not rules.address_allowed("not an ip", allow_loopback=False)


def test_the_schedule_doubles_from_a_minute_caps_at_an_hour_and_ends_within_a_day() -> None:
    offsets = rules.schedule()
    gaps = [b - a for a, b in itertools.pairwise(offsets)]
    minutes = [int(g.total_seconds() // 60) for g in gaps]
    assert minutes[:7] == [1, 2, 4, 8, 16, 32, 60]
    assert all(m == 60 for m in minutes[6:])
    assert offsets[-1] <= rules.RETRY_WINDOW < offsets[-1] + rules.MAX_DELAY
    assert len(offsets) == 29


@given(st.integers(min_value=1, max_value=10_000))
def test_delays_never_shrink_and_are_capped(attempt: int) -> None:
    assert rules.FIRST_DELAY <= rules.delay_after(attempt) <= rules.MAX_DELAY
    assert rules.delay_after(attempt) <= rules.delay_after(attempt + 1)


@given(st.integers(min_value=1, max_value=40), st.integers(min_value=0, max_value=30 * 3600))
def test_no_attempt_is_scheduled_past_the_window(attempt: int, elapsed: int) -> None:
    now = T0 + timedelta(seconds=elapsed)
    due = rules.next_attempt(attempt, T0, now)
    if due is None:
        assert now + rules.delay_after(attempt) - T0 > rules.RETRY_WINDOW
    else:
        assert due - T0 <= rules.RETRY_WINDOW and due > now


def test_sqs_delay_is_capped_at_15_minutes() -> None:
    assert rules.sqs_delay(T0 + timedelta(seconds=60), T0) == 60
    assert rules.sqs_delay(T0 + timedelta(hours=1), T0) == 900
    assert rules.sqs_delay(T0 - timedelta(seconds=5), T0) == 0
    assert rules.sqs_delay(T0 + timedelta(seconds=0.2), T0) == 1


def test_disable_after_five_failed_events_or_a_day_without_success() -> None:
    assert rules.disable_reason(rules.Health(4, T0), T0 + timedelta(hours=23)) is None
    assert "5 events" in str(rules.disable_reason(rules.Health(5, T0), T0))
    assert rules.disable_reason(rules.Health(1, T0), T0 + timedelta(hours=24)) is None
    assert "since 2026-11-02T10:00:00Z" in str(rules.disable_reason(rules.Health(0, T0),
                                                                    T0 + timedelta(hours=24, seconds=1)))
    assert rules.disable_reason(rules.Health(0, None), T0) is None
