"""The pure rules of staff identity: codes, cookies, CSRF tokens, session lifetimes, MFA and actors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain import identity as rules
from chalicelib.domain.identity import Membership, SessionToken
from chalicelib.domain.roles import Role, ScopeKind

RFC_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"  # "12345678901234567890", RFC 6238 appendix B (SHA-1)
KEY = b"k" * 32
T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
PART = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=40)


@pytest.mark.parametrize(("at", "code"), [(59, "94287082"), (1111111109, "07081804"), (1234567890, "89005924"),
                                          (2000000000, "69279037"), (20000000000, "65353130")])
def test_totp_matches_the_rfc_6238_vectors(at: int, code: str) -> None:
    assert rules.totp_code(RFC_SECRET, at, digits=8) == code
    assert rules.totp_code(RFC_SECRET, at) == code[2:]


def test_a_code_holds_for_its_30_second_step_only() -> None:
    assert rules.totp_code(RFC_SECRET, 60) == rules.totp_code(RFC_SECRET, 89)
    assert rules.totp_code(RFC_SECRET, 89) != rules.totp_code(RFC_SECRET, 90)


def test_the_otpauth_uri_is_what_authenticator_apps_read() -> None:
    uri = rules.otpauth_uri("JBSWY3DPEHPK3PXP", "anna@coffee.example", "Loyalty")
    assert uri == ("otpauth://totp/Loyalty%3Aanna%40coffee.example?secret=JBSWY3DPEHPK3PXP&issuer=Loyalty"
                   "&algorithm=SHA1&digits=6&period=30")


@given(PART, PART, PART)
def test_a_cookie_value_round_trips(user_id: str, session_id: str, secret: str) -> None:
    token = SessionToken(user_id, session_id, secret)
    assert rules.parse_cookie_value(rules.cookie_value(token)) == token
    header = f"theme=dark; {rules.SESSION_COOKIE}={rules.cookie_value(token)}; other=1"
    assert rules.session_cookie_from_header(header) == token


@pytest.mark.parametrize("header", [None, "", "__Host-lp_session=a.b", "__Host-lp_session=a.b.c.d",
                                    "__Host-lp_session=a.b.c; __Host-lp_session=a.b.c",
                                    "lp_session=a.b.c", "__Host-lp_session=a.b.c<script>"])
def test_no_cookie_a_malformed_one_or_a_planted_second_one_names_no_session(header: str | None) -> None:
    assert rules.session_cookie_from_header(header) is None


@given(PART, PART)
def test_a_csrf_token_is_genuine_only_with_our_key(user_id: str, session_id: str) -> None:
    token = rules.csrf_token(KEY, user_id, session_id)
    assert rules.parse_csrf_token(KEY, token) == (user_id, session_id)
    assert rules.parse_csrf_token(b"x" * 32, token) is None
    other = rules.csrf_token(KEY, user_id + "x", session_id)
    forged = f"{user_id}.{session_id}.{other.rsplit('.', 1)[1]}"
    assert rules.parse_csrf_token(KEY, forged) is None


@pytest.mark.parametrize("header", ["Session abc", "session  abc ", "SESSION abc"])
def test_the_session_scheme_is_read_from_authorization(header: str) -> None:
    assert rules.session_authorization(header) == "abc"


@pytest.mark.parametrize("header", [None, "", "Bearer lp_x", "Session", "Session   "])
def test_anything_else_is_not_a_session(header: str | None) -> None:
    assert rules.session_authorization(header) is None


def test_a_session_lives_30_idle_minutes_and_never_past_12_hours() -> None:
    assert rules.session_expiry(T0, T0) == T0 + timedelta(minutes=30)
    assert rules.session_alive(T0, T0, T0 + timedelta(minutes=29, seconds=59))
    assert not rules.session_alive(T0, T0, T0 + timedelta(minutes=30))
    late = T0 + timedelta(hours=11, minutes=50)
    assert rules.session_expiry(T0, late) == T0 + timedelta(hours=12)
    assert not rules.session_alive(T0, late, T0 + timedelta(hours=12))


def test_mfa_is_required_of_admins_everywhere_and_of_support_where_the_tenant_asks() -> None:
    support = Membership(ScopeKind.TENANT, "coffee-house", Role.SUPPORT)
    assert not rules.mfa_required([support])
    assert rules.mfa_required([support], ["coffee-house"])
    assert not rules.mfa_required([support], ["tea-house"])
    for role, scope in ((Role.TENANT_ADMIN, ScopeKind.TENANT), (Role.AGENCY, ScopeKind.AGENCY),
                        (Role.PLATFORM, ScopeKind.PLATFORM)):
        assert rules.mfa_required([support, Membership(scope, "x", role)])


def test_roles_fit_their_scope_and_pos_is_never_a_persons() -> None:
    assert rules.role_fits_scope(Role.SUPPORT, ScopeKind.TENANT)
    assert not rules.role_fits_scope(Role.SUPPORT, ScopeKind.AGENCY)
    assert not rules.role_fits_scope(Role.POS, ScopeKind.TENANT)
    assert rules.role_fits_scope(Role.PLATFORM, ScopeKind.PLATFORM)


def test_scope_keys_round_trip_and_refuse_junk() -> None:
    for scope, ident in ((ScopeKind.PLATFORM, "platform"), (ScopeKind.AGENCY, "acme"),
                         (ScopeKind.TENANT, "coffee-house")):
        assert rules.parse_scope_key(rules.scope_key(scope, ident)) == (scope, ident)
    for junk in ("", "tenant:", "tenant:a#b", "planet:x", "platform:x"):
        assert rules.parse_scope_key(junk) is None


def test_a_persons_actor_splits_back_into_id_and_email() -> None:
    actor = rules.person_actor("u-1", "anna@coffee.example")
    assert rules.split_actor(actor) == ("user:u-1", "anna@coffee.example")
    assert rules.split_actor("tenant_admin:abc") == ("tenant_admin:abc", None)


@pytest.mark.parametrize(("raw", "email"), [(" Anna@Coffee.EXAMPLE ", "anna@coffee.example"),
                                            ("a.b+tag@mail.example.ru", "a.b+tag@mail.example.ru"),
                                            ("no-at.example", None), ("a b@x.example", None), ("a@x", None),
                                            ("\"q\"@x.example", None), ("a@x.example\n", "a@x.example"),
                                            ("a<b>@x.example", None), ("x" * 65 + "@x.example", None)])
def test_emails_are_plain_and_lower_case(raw: str, email: str | None) -> None:
    assert rules.normalize_email(raw) == email


def test_the_cookie_header_sets_and_clears() -> None:
    token = SessionToken("u", "s", "secret")
    assert rules.cookie_header(token, 60) == ("__Host-lp_session=u.s.secret; Max-Age=60; Path=/; Secure; HttpOnly; "
                                              "SameSite=Strict")
    assert rules.cookie_header(None, 60).startswith("__Host-lp_session=; Max-Age=0;")
