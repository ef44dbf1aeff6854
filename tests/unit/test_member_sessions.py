"""The member session's pure rules: the cookie, its parsing (planted and malformed cookies), CSRF, expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chalicelib.domain import member_sessions as rules

KEY = b"k" * 32


def test_the_cookie_round_trips_and_is_host_only_httponly_secure_lax() -> None:
    token = rules.new_token("cust0001", "sess0000000000000001")
    header = rules.cookie_header(token)
    value = header.split(";")[0].split("=", 1)[1]
    assert header.startswith("__Host-lp_member=") and "; Path=/; Secure; HttpOnly; SameSite=Lax" in header
    assert "Domain" not in header and "Max-Age=2592000" in header
    assert rules.token_from_header(f"a=b; __Host-lp_member={value}; c=d") == token
    assert rules.cookie_header(None) == "__Host-lp_member=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Lax"


def test_planted_malformed_and_staff_cookies_name_no_member() -> None:
    good = "cust0001.sess0000000000000001.secretsecretsecret"
    assert rules.token_from_header(f"__Host-lp_member={good}; __Host-lp_member={good}") is None  # planted twice
    for bad in ("", "a.b", "cust.sess.sec", "c.d.e.f", "cust0001.sess00000000/0001.secretsecretsecret",
                "cust0001..secretsecretsecret"):
        assert rules.token_from_header(f"__Host-lp_member={bad}") is None, bad
    assert rules.token_from_header(f"__Host-lp_session={good}") is None


def test_the_csrf_token_is_bound_to_the_tenant_and_the_session() -> None:
    token = rules.csrf_token(KEY, "coffee", "sess1")
    assert rules.csrf_valid(KEY, "coffee", "sess1", token)
    assert not rules.csrf_valid(KEY, "fuel", "sess1", token)
    assert not rules.csrf_valid(KEY, "coffee", "sess2", token)
    assert not rules.csrf_valid(b"x" * 32, "coffee", "sess1", token)
    assert not rules.csrf_valid(KEY, "coffee", "sess1", None) and not rules.csrf_valid(KEY, "coffee", "sess1", "")


def test_a_session_ends_after_a_week_idle_or_thirty_days_whatever_the_use() -> None:
    start = datetime(2026, 12, 1, tzinfo=UTC)
    assert rules.alive(start, start, start + timedelta(days=6, hours=23))
    assert not rules.alive(start, start, start + timedelta(days=7))
    used = start + timedelta(days=29)
    assert rules.alive(start, used, start + timedelta(days=29, hours=23))
    assert not rules.alive(start, used, start + timedelta(days=30))
    assert rules.expiry(start, used) == start + timedelta(days=30)
