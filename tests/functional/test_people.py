"""Staff sign-in end to end over moto's Cognito (TOTP checked), SES and DynamoDB, through the Chalice test client.

Sign-in with MFA and enrolment, invitations, roles and the last admin, sign-out everywhere, password resets,
the audit by person, and every attack the issue lists: wrong and replayed codes, forged, foreign and expired
sessions, missing CSRF token or cookie, cross-site requests, used and expired invitations, enumeration,
brute force. Each refusal is checked for its code and for changing nothing.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.domain.identity import SESSION_COOKIE
from chalicelib.services.identity import members as member_service
from chalicelib.services.identity import sessions as session_service
from chalicelib.services.identity import sign_in as sign_in_service
from chalicelib.settings import settings
from chalicelib.storage import staff_pool
from chalicelib.storage.tables import TABLES
from tests.functional.conftest import Api, TenantKeys
from tests.functional.jobqueue import drain
from tests.functional.people import (
    PASSWORD,
    Person,
    first_admin,
    fresh_code,
    invite_and_join,
    last_mail,
    sign_in,
    token_from,
    verify_sender,
)


def error(r: Any) -> str:
    assert isinstance(r.data, dict) and "error" in r.data, r.data
    assert set(r.data["error"]) == {"code", "message", "details", "request_id"}, r.data
    return str(r.data["error"]["code"])


def table_dump() -> str:
    """Every item of every table as text (to prove what is and is not stored)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    backend = dynamodb_backends[DEFAULT_ACCOUNT_ID][settings.region]
    return json.dumps([item.to_json() for model in TABLES
                       for item in backend.get_table(model.Meta.table_name).all_items()], ensure_ascii=False)


def admin_of(api: Api, tenant: TenantKeys, email: str = "anna@coffee.example") -> Person:
    """A tenant admin invited with the tenant's admin key, joined, and signed in (enrolling MFA on the way)."""
    verify_sender()
    invite_and_join(api, None, email, "tenant_admin", key=tenant.admin)
    return sign_in(api, email, PASSWORD, None)


# --- signing in ----------------------------------------------------------------------------------------------------


def test_the_first_admin_signs_in_with_password_and_code_and_is_the_platform_principal(api: Api) -> None:
    root = first_admin(api)
    r = api.get("/v1/auth/session", headers=root.headers())
    assert r.status_code == 200, r.data
    assert r.data["user"]["email"] == "root@platform.example" and r.data["user"]["mfa_enrolled"] is True
    assert r.data["scope"] == "platform" and r.data["role"] == "platform"
    assert [m["scope"] for m in r.data["memberships"]] == ["platform"]
    assert r.headers["Cache-Control"] == "no-store"
    who = api.get("/v1/whoami", headers=root.headers()).data
    assert (who["role"], who["owner"], who["user_id"], who["email"]) == (
        "platform", "platform", root.user_id, "root@platform.example")
    # The platform role's own routes work as they do for a platform key.
    r = api.post("/v1/platform/agencies", body={"agency_id": "north", "name": "North"}, headers=root.headers())
    assert r.status_code == 201, r.data


def test_the_session_cookie_is_host_only_httponly_secure_and_strict(api: Api) -> None:
    verify_sender()
    from chalicelib.services.identity import bootstrap

    made = bootstrap.ensure_platform_admin("root@platform.example", PASSWORD)
    assert made is not None
    step = api.post("/v1/auth/sign-in", body={"email": "root@platform.example", "password": PASSWORD}).data
    assert step["next"] == "mfa" and step["secret"] is None
    r = api.post("/v1/auth/sign-in/code", body={"sign_in_id": step["sign_in_id"], "code": fresh_code(made.mfa_secret)})
    cookie = r.headers["Set-Cookie"]
    name, _, rest = cookie.partition("=")
    assert name == SESSION_COOKIE == "__Host-lp_session"
    flags = {part.strip().split("=")[0] for part in rest.split(";")[1:]}
    assert flags == {"Max-Age", "Path", "Secure", "HttpOnly", "SameSite"}
    assert "SameSite=Strict" in cookie and "Path=/" in cookie and "Domain" not in cookie
    assert "Max-Age=43200" in cookie


def test_a_new_tenant_admin_enrols_an_authenticator_at_first_sign_in(api: Api, tenant: TenantKeys) -> None:
    verify_sender()
    invite_and_join(api, None, "anna@coffee.example", "tenant_admin", key=tenant.admin)
    step = api.post("/v1/auth/sign-in", body={"email": "anna@coffee.example", "password": PASSWORD}).data
    assert step["next"] == "mfa_setup"
    assert step["otpauth_uri"].startswith("otpauth://totp/Loyalty%3Aanna%40coffee.example?secret=")
    assert f"secret={step['secret']}" in step["otpauth_uri"]
    assert step["qr_svg"].startswith("<svg") and "<script" not in step["qr_svg"]
    assert "Set-Cookie" not in api.post("/v1/auth/sign-in", body={
        "email": "anna@coffee.example", "password": PASSWORD}).headers
    r = api.post("/v1/auth/sign-in/code", body={"sign_in_id": step["sign_in_id"], "code": "000000"})
    assert (r.status_code, error(r)) == (401, "wrong_code")
    assert "4 tries left" in r.data["error"]["message"]
    r = api.post("/v1/auth/sign-in/code", body={"sign_in_id": step["sign_in_id"], "code": fresh_code(step["secret"])})
    assert r.status_code == 200, r.data
    session = r.data["session"]
    assert session["user"]["mfa_enrolled"] is True
    assert (session["scope"], session["role"]) == ("tenant:coffee-house", "tenant_admin")
    assert session["memberships"][0]["name"] == "coffee-house LLC"
    # From now on the code is asked at every sign-in.
    again = api.post("/v1/auth/sign-in", body={"email": "anna@coffee.example", "password": PASSWORD}).data
    assert again["next"] == "mfa" and again["secret"] is None and again["qr_svg"] is None


def test_a_support_operator_signs_in_without_mfa_unless_the_tenant_asks_for_it(
        api: Api, tenant: TenantKeys) -> None:
    verify_sender()
    invite_and_join(api, None, "olga@coffee.example", "support", key=tenant.admin)
    r = api.post("/v1/auth/sign-in", body={"email": "olga@coffee.example", "password": PASSWORD})
    assert r.data["next"] == "done" and r.data["session"]["role"] == "support"
    assert r.headers["Set-Cookie"].startswith(SESSION_COOKIE)
    r = api.patch("/v1/agency/tenants/coffee-house", tenant.agency, {"support_mfa": True})
    assert r.status_code == 200 and r.data["support_mfa"] is True
    r = api.post("/v1/auth/sign-in", body={"email": "olga@coffee.example", "password": PASSWORD})
    assert r.data["next"] == "mfa_setup"
    assert "Set-Cookie" not in r.headers


def test_wrong_password_and_unknown_email_get_the_same_answer_and_the_same_work(
        api: Api, tenant: TenantKeys, monkeypatch: pytest.MonkeyPatch) -> None:
    admin_of(api, tenant)
    calls: list[str] = []
    original = staff_pool.password_sign_in

    def counted(email: str, password: str, *client: str) -> Any:
        calls.append(email)
        return original(email, password, *client)

    monkeypatch.setattr(staff_pool, "password_sign_in", counted)
    wrong = api.post("/v1/auth/sign-in", body={"email": "anna@coffee.example", "password": "Wrong-password-1"})
    unknown = api.post("/v1/auth/sign-in", body={"email": "nobody@coffee.example", "password": "Wrong-password-1"})
    for r in (wrong, unknown):
        assert (r.status_code, error(r)) == (401, "invalid_credentials")
        assert "Set-Cookie" not in r.headers
    strip = [{k: v for k, v in r.data["error"].items() if k != "request_id"} for r in (wrong, unknown)]
    assert strip[0] == strip[1]
    assert sorted(wrong.headers) == sorted(unknown.headers)
    assert calls == ["anna@coffee.example", "nobody@coffee.example"]  # one Cognito call each: the same timing class


def test_a_replayed_code_is_refused_even_where_cognito_would_take_it(api: Api) -> None:
    from chalicelib.services.identity import bootstrap

    verify_sender()
    made = bootstrap.ensure_platform_admin("root@platform.example", PASSWORD)
    assert made is not None
    first = api.post("/v1/auth/sign-in", body={"email": made.email, "password": PASSWORD}).data
    second = api.post("/v1/auth/sign-in", body={"email": made.email, "password": PASSWORD}).data
    code = fresh_code(made.mfa_secret)  # at least 3 s of its step left: Cognito would accept it twice
    r = api.post("/v1/auth/sign-in/code", body={"sign_in_id": first["sign_in_id"], "code": code})
    assert r.status_code == 200, r.data
    r = api.post("/v1/auth/sign-in/code", body={"sign_in_id": second["sign_in_id"], "code": code})
    assert (r.status_code, error(r)) == (401, "code_already_used")
    assert r.data["error"]["details"] == [{"field": "code", "issue": "already used"}]
    assert "Set-Cookie" not in r.headers


def test_a_sign_in_is_used_once_and_dies_after_five_wrong_codes(api: Api) -> None:
    root = first_admin(api)
    assert root.secret is not None
    step = api.post("/v1/auth/sign-in", body={"email": root.email, "password": PASSWORD}).data
    statuses = [api.post("/v1/auth/sign-in/code", body={"sign_in_id": step["sign_in_id"],
                                                        "code": f"00000{i}"}).status_code for i in range(5)]
    assert statuses == [401] * 5
    r = api.post("/v1/auth/sign-in/code", body={"sign_in_id": step["sign_in_id"], "code": fresh_code(root.secret)})
    assert (r.status_code, error(r)) == (429, "too_many_attempts")
    r = api.post("/v1/auth/sign-in/code", body={"sign_in_id": step["sign_in_id"], "code": fresh_code(root.secret)})
    assert (r.status_code, error(r)) == (401, "sign_in_expired")
    r = api.post("/v1/auth/sign-in/code", body={"sign_in_id": "nonexistent-sign-in", "code": "123456"})
    assert (r.status_code, error(r)) == (401, "sign_in_expired")


def test_brute_force_locks_the_account_then_the_address(api: Api, tenant: TenantKeys) -> None:
    admin_of(api, tenant)
    for _ in range(5):
        r = api.post("/v1/auth/sign-in", body={"email": "anna@coffee.example", "password": "Wrong-password-1"})
        assert r.status_code == 401
    r = api.post("/v1/auth/sign-in", body={"email": "anna@coffee.example", "password": PASSWORD})
    assert (r.status_code, error(r)) == (429, "too_many_attempts")
    assert 0 < int(r.headers["Retry-After"]) <= 900
    # Unknown addresses are limited exactly alike (no telling them apart by the lockout).
    for _ in range(5):
        api.post("/v1/auth/sign-in", body={"email": "ghost@coffee.example", "password": "Wrong-password-1"})
    r = api.post("/v1/auth/sign-in", body={"email": "ghost@coffee.example", "password": "Wrong-password-1"})
    assert (r.status_code, error(r)) == (429, "too_many_attempts")
    # Password spraying from one address: every attempt counts, whatever the account.
    codes = [api.post("/v1/auth/sign-in", body={"email": f"spray{i}@coffee.example",
                                                "password": "Wrong-password-1"}).status_code for i in range(25)]
    assert codes[-1] == 429 and 401 in codes
    r = api.post("/v1/auth/sign-in", body={"email": "anna@coffee.example", "password": PASSWORD})
    assert "from this address" in r.data["error"]["message"]


# --- sessions and their attacks ---------------------------------------------------------------------------------


def test_a_session_needs_both_its_token_and_its_cookie(api: Api, tenant: TenantKeys) -> None:
    anna = admin_of(api, tenant)
    ok = api.get("/v1/programs", headers=anna.headers())
    assert ok.status_code == 200, ok.data
    no_cookie = api.get("/v1/programs", headers={"Authorization": f"Session {anna.csrf}"})
    assert (no_cookie.status_code, error(no_cookie)) == (401, "invalid_session")
    no_token = api.get("/v1/programs", headers={"Cookie": f"{SESSION_COOKIE}={anna.cookie}"})
    assert (no_token.status_code, error(no_token)) == (401, "unauthorized")
    forged = anna.csrf[:-4] + ("AAAA" if not anna.csrf.endswith("AAAA") else "BBBB")
    r = api.get("/v1/programs", headers={**anna.headers(), "Authorization": f"Session {forged}"})
    assert (r.status_code, error(r)) == (401, "invalid_session")
    uid, sid, secret = anna.cookie.split(".")
    r = api.get("/v1/programs", headers={**anna.headers(), "Cookie": f"{SESSION_COOKIE}={uid}.{sid}.{secret[:-2]}xx"})
    assert (r.status_code, error(r)) == (401, "invalid_session")
    doubled = f"{SESSION_COOKIE}={anna.cookie}; {SESSION_COOKIE}={anna.cookie}"
    r = api.get("/v1/programs", headers={**anna.headers(), "Cookie": doubled})
    assert (r.status_code, error(r)) == (401, "invalid_session")


def test_another_users_cookie_does_not_go_with_this_token(api: Api, tenant: TenantKeys) -> None:
    anna = admin_of(api, tenant)
    invite_and_join(api, None, "olga@coffee.example", "support", key=tenant.admin)
    olga = sign_in(api, "olga@coffee.example", PASSWORD, None)
    mixed = {"Authorization": f"Session {olga.csrf}", "Cookie": f"{SESSION_COOKIE}={anna.cookie}"}
    r = api.get("/v1/programs", headers=mixed)
    assert (r.status_code, error(r)) == (401, "invalid_session")
    r = api.post("/v1/keys", body={"role": "pos", "name": "stolen"}, headers=mixed)
    assert (r.status_code, error(r)) == (401, "invalid_session")
    assert all(k["name"] != "stolen" for k in api.get("/v1/keys", tenant.admin).data["items"])


def test_a_cross_site_request_is_refused_and_changes_nothing(api: Api, tenant: TenantKeys) -> None:
    anna = admin_of(api, tenant)
    evil = {**anna.headers(), "Origin": "https://evil.example"}
    r = api.post("/v1/keys", body={"role": "pos", "name": "csrf"}, headers=evil)
    assert (r.status_code, error(r)) == (403, "cross_site_request")
    assert all(k["name"] != "csrf" for k in api.get("/v1/keys", tenant.admin).data["items"])
    same_site = {**anna.headers(), "Origin": "http://localhost", "Host": "localhost"}
    assert api.post("/v1/keys", body={"role": "pos", "name": "mine"}, headers=same_site).status_code == 201
    r = api.post("/v1/auth/sign-in", body={"email": anna.email, "password": PASSWORD},
                 headers={"Origin": "https://evil.example"})
    assert (r.status_code, error(r)) == (403, "cross_site_request")


def test_a_person_acts_with_the_roles_rules_and_is_named_in_the_audit(api: Api, tenant: TenantKeys) -> None:
    anna = admin_of(api, tenant)
    r = api.post("/v1/stores", body={"id": "spb-01", "name": "Nevsky 1"}, headers=anna.headers())
    assert r.status_code == 201, r.data
    r = api.post("/v1/purchases", body={"receipt_id": "r1", "card_number": "x", "store_id": "spb-01", "total": 100,
                                        "items": []}, headers=anna.headers())
    assert (r.status_code, error(r)) == (403, "forbidden")
    assert "A person acting as tenant_admin may not call POST /v1/purchases" in r.data["error"]["message"]
    api.post("/v1/stores", tenant.admin, {"id": "spb-02", "name": "Nevsky 2"})
    entries = api.get("/v1/audit", tenant.admin).data["items"]
    mine = [e for e in entries if e["actor"] == f"user:{anna.user_id}"]
    assert mine and mine[0]["actor_email"] == "anna@coffee.example"
    assert {e["action"] for e in mine} >= {"store.created", "member.joined"}
    by_email = api.get("/v1/audit?actor=anna@coffee.example", headers=anna.headers()).data["items"]
    by_id = api.get(f"/v1/audit?actor={anna.user_id}", headers=anna.headers()).data["items"]
    assert by_email == by_id and {e["actor_email"] for e in by_email} == {"anna@coffee.example"}
    key_entries = api.get("/v1/audit?action=store.created", tenant.admin).data["items"]
    assert {e["target"] for e in key_entries} == {"store:spb-01", "store:spb-02"}
    assert {e["actor_email"] for e in key_entries} == {"anna@coffee.example", None}


def test_an_idle_session_expires_and_an_old_one_ends_at_the_absolute_limit(
        api: Api, tenant: TenantKeys, monkeypatch: pytest.MonkeyPatch) -> None:
    anna = admin_of(api, tenant)
    start = datetime.now(UTC)
    monkeypatch.setattr(session_service, "_now", lambda: start + timedelta(minutes=29))
    assert api.get("/v1/programs", headers=anna.headers()).status_code == 200  # use keeps it alive...
    monkeypatch.setattr(session_service, "_now", lambda: start + timedelta(minutes=58))
    assert api.get("/v1/programs", headers=anna.headers()).status_code == 200
    monkeypatch.setattr(session_service, "_now", lambda: start + timedelta(minutes=89))
    r = api.get("/v1/programs", headers=anna.headers())
    assert (r.status_code, error(r)) == (401, "session_expired")
    r = api.get("/v1/programs", headers=anna.headers())
    assert (r.status_code, error(r)) == (401, "session_ended")
    monkeypatch.undo()
    invite_and_join(api, None, "olga@coffee.example", "support", key=tenant.admin)
    olga = sign_in(api, "olga@coffee.example", PASSWORD, None)
    at = datetime.now(UTC)
    for minutes in range(25, 12 * 60, 25):  # ...but never past 12 hours, however busy
        monkeypatch.setattr(session_service, "_now", lambda m=minutes: at + timedelta(minutes=m))
        assert api.get("/v1/programs", headers=olga.headers()).status_code == 200, minutes
    monkeypatch.setattr(session_service, "_now", lambda: at + timedelta(hours=12, seconds=1))
    r = api.get("/v1/programs", headers=olga.headers())
    assert (r.status_code, error(r)) == (401, "session_expired")


def test_sign_out_ends_every_session_and_revokes_the_refresh_tokens(api: Api, tenant: TenantKeys) -> None:
    verify_sender()
    invite_and_join(api, None, "olga@coffee.example", "support", key=tenant.admin)
    phone = sign_in(api, "olga@coffee.example", PASSWORD, None)
    laptop = sign_in(api, "olga@coffee.example", PASSWORD, None)
    listed = api.get("/v1/auth/sessions", headers=laptop.headers()).data["items"]
    assert len(listed) == 2 and [s["current"] for s in listed].count(True) == 1
    refresh = session_service.crypto.unseal(_sealed_refresh(phone), phone.cookie.split(".")[1])
    assert refresh and staff_pool.still_valid(refresh)
    r = api.post("/v1/auth/sign-out", headers=laptop.headers())
    assert r.status_code == 200 and r.data == {"ended": 2}
    assert r.headers["Set-Cookie"].startswith(f"{SESSION_COOKIE}=;") and "Max-Age=0" in r.headers["Set-Cookie"]
    for person in (phone, laptop):
        r = api.get("/v1/programs", headers=person.headers())
        assert (r.status_code, error(r)) == (401, "session_ended")
    assert not staff_pool.still_valid(refresh)  # Cognito revoked it: a copy kept anywhere is worthless


def _sealed_refresh(person: Person) -> str:
    from chalicelib.storage import identity as store

    found = store.load_person(person.user_id, person.cookie.split(".")[1])
    assert found is not None and found.session is not None
    return found.session.refresh_sealed


def test_refresh_checks_the_account_with_cognito(api: Api, tenant: TenantKeys) -> None:
    anna = admin_of(api, tenant)
    r = api.post("/v1/auth/session/refresh", headers=anna.headers())
    assert r.status_code == 200 and r.data["user"]["email"] == anna.email
    staff_pool.sign_out_everywhere(anna.email)  # e.g. an operator revoked them in the AWS console
    r = api.post("/v1/auth/session/refresh", headers=anna.headers())
    assert (r.status_code, error(r)) == (401, "session_ended")
    assert api.get("/v1/programs", headers=anna.headers()).status_code == 401


def test_a_suspended_tenant_stops_its_peoples_sessions_on_the_next_request(api: Api, tenant: TenantKeys) -> None:
    anna = admin_of(api, tenant)
    assert api.patch("/v1/agency/tenants/coffee-house", tenant.agency, {"status": "suspended"}).status_code == 200
    r = api.get("/v1/programs", headers=anna.headers())
    assert (r.status_code, error(r)) == (401, "tenant_suspended")


def test_a_person_of_two_tenants_switches_scope_and_sees_only_the_one_they_act_in(
        api: Api, tenant: TenantKeys) -> None:
    from tests.functional.conftest import make_tenant

    second = make_tenant(api, tenant.agency, tenant.agency_id, "tea-house")
    verify_sender()
    invite_and_join(api, None, "ivan@acme.example", "support", key=tenant.admin)
    r = api.post("/v1/invitations", second.admin, {"email": "ivan@acme.example", "role": "tenant_admin"})
    drain()
    token = token_from(last_mail("ivan@acme.example"))
    r = api.post("/v1/auth/invitations/accept", body={"token": token})
    assert r.status_code == 201 and r.data["new_account"] is False, r.data
    ivan = sign_in(api, "ivan@acme.example", PASSWORD, None)  # admin somewhere: MFA enrolment now
    session = api.get("/v1/auth/session", headers=ivan.headers()).data
    assert [m["scope"] for m in session["memberships"]] == ["tenant:coffee-house", "tenant:tea-house"]
    assert session["scope"] == "tenant:coffee-house" and session["role"] == "support"
    assert api.get("/v1/keys", headers=ivan.headers()).status_code == 403
    r = api.put("/v1/auth/session/scope", body={"scope": "tenant:tea-house"}, headers=ivan.headers())
    assert r.status_code == 200 and r.data["role"] == "tenant_admin"
    keys = api.get("/v1/keys", headers=ivan.headers()).data["items"]
    assert keys == api.get("/v1/keys", second.admin).data["items"]
    assert api.get("/v1/whoami", headers=ivan.headers()).data["owner"] == "tea-house"
    r = api.put("/v1/auth/session/scope", body={"scope": "tenant:fuel-net"}, headers=ivan.headers())
    assert (r.status_code, error(r)) == (422, "not_a_member")


# --- members and invitations ----------------------------------------------------------------------------------------


def test_an_invitation_is_used_once_and_expires(api: Api, tenant: TenantKeys,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    verify_sender()
    r = api.post("/v1/invitations", tenant.admin, {"email": "Olga@Coffee.Example ", "role": "support"})
    assert r.status_code == 201, r.data
    assert (r.data["email"], r.data["status"], r.data["delivery"]) == ("olga@coffee.example", "pending", "queued")
    assert drain()  # the jobs worker makes the link and sends it
    assert api.get("/v1/invitations", tenant.admin).data["items"][0]["delivery"] == "sent"
    body = last_mail("olga@coffee.example")
    assert "coffee-house LLC" in body and "/console/invitation?token=" in body
    token = token_from(body)
    weak = api.post("/v1/auth/invitations/accept", body={"token": token, "password": "short"})
    assert (weak.status_code, error(weak)) == (422, "weak_password")
    assert weak.data["error"]["details"][0]["field"] == "password"
    assert api.post("/v1/auth/invitations/accept", body={"token": token, "password": PASSWORD}).status_code == 201
    again = api.post("/v1/auth/invitations/accept", body={"token": token, "password": PASSWORD})
    assert (again.status_code, error(again)) == (409, "invitation_used")
    forged = api.post("/v1/auth/invitations/accept", body={"token": token[:-3] + "abc", "password": PASSWORD})
    assert (forged.status_code, error(forged)) == (404, "invitation_not_found")

    api.post("/v1/invitations", tenant.admin, {"email": "late@coffee.example", "role": "support"})
    drain()
    late = token_from(last_mail("late@coffee.example"))
    later = datetime.now(UTC) + timedelta(days=8)
    monkeypatch.setattr(member_service, "_now", lambda: later)
    r = api.post("/v1/auth/invitations/accept", body={"token": late, "password": PASSWORD})
    assert (r.status_code, error(r)) == (410, "invitation_expired")
    listed = {i["email"]: i["status"] for i in api.get("/v1/invitations", tenant.admin).data["items"]}
    assert listed == {"olga@coffee.example": "accepted", "late@coffee.example": "expired"}


def test_a_resent_invitation_replaces_the_old_link_and_a_revoked_one_is_dead(api: Api, tenant: TenantKeys) -> None:
    verify_sender()
    made = api.post("/v1/invitations", tenant.admin, {"email": "olga@coffee.example", "role": "support"}).data
    drain()
    first = token_from(last_mail("olga@coffee.example"))
    r = api.post(f"/v1/invitations/{made['invitation_id']}/resend", tenant.admin)
    assert r.status_code == 200 and r.data["sent_count"] == 2
    r = api.post("/v1/auth/invitations/accept", body={"token": first, "password": PASSWORD})
    assert (r.status_code, error(r)) == (404, "invitation_not_found")  # dead from the resend on, before any mail
    drain()
    second = token_from(last_mail("olga@coffee.example"))
    assert first != second
    r = api.delete(f"/v1/invitations/{made['invitation_id']}", tenant.admin)
    assert r.status_code == 200 and r.data["status"] == "revoked"
    r = api.post("/v1/auth/invitations/accept", body={"token": second, "password": PASSWORD})
    assert (r.status_code, error(r)) == (409, "invitation_used")
    r = api.post("/v1/invitations", tenant.admin, {"email": "x@coffee.example", "role": "agency"})
    assert (r.status_code, error(r)) == (400, "validation_error")
    assert r.data["error"]["details"][0]["field"] == "role"


def test_the_last_admin_cannot_be_removed_demoted_or_disabled(api: Api, tenant: TenantKeys) -> None:
    anna = admin_of(api, tenant)
    for change in ({"role": "support"}, {"status": "disabled"}):
        r = api.patch(f"/v1/members/{anna.user_id}", body=change, headers=anna.headers())
        assert (r.status_code, error(r)) == (409, "last_admin"), change
    r = api.delete(f"/v1/members/{anna.user_id}", headers=anna.headers())
    assert (r.status_code, error(r)) == (409, "last_admin")
    assert api.get("/v1/programs", headers=anna.headers()).status_code == 200
    invite_and_join(api, anna, "boris@coffee.example", "tenant_admin")
    r = api.patch(f"/v1/members/{anna.user_id}", body={"role": "support"}, headers=anna.headers())
    assert r.status_code == 200 and r.data["role"] == "support"
    boris_id = next(m["user_id"] for m in api.get("/v1/members", tenant.admin).data["items"]
                    if m["email"] == "boris@coffee.example")
    r = api.delete(f"/v1/members/{boris_id}", tenant.admin)
    assert (r.status_code, error(r)) == (409, "last_admin")


def test_removing_a_member_ends_their_sessions_at_once(api: Api, tenant: TenantKeys) -> None:
    anna = admin_of(api, tenant)
    invite_and_join(api, anna, "olga@coffee.example", "support")
    olga = sign_in(api, "olga@coffee.example", PASSWORD, None)
    assert api.get("/v1/whoami", headers=olga.headers()).data["role"] == "support"
    team = {m["email"]: m for m in api.get("/v1/members", headers=anna.headers()).data["items"]}
    assert team["olga@coffee.example"]["active_sessions"] == 1 and team["olga@coffee.example"]["role"] == "support"
    r = api.get(f"/v1/members/{olga.user_id}/sessions", headers=anna.headers())
    assert r.status_code == 200 and len(r.data["items"]) == 1
    r = api.delete(f"/v1/members/{olga.user_id}", headers=anna.headers())
    assert r.status_code == 200 and r.data == {"ended": 1}
    r = api.get("/v1/programs", headers=olga.headers())
    assert (r.status_code, error(r)) == (401, "session_ended")
    r = api.post("/v1/auth/sign-in", body={"email": "olga@coffee.example", "password": PASSWORD})
    assert (r.status_code, error(r)) == (401, "invalid_credentials")
    actions = [e["action"] for e in api.get("/v1/audit?actor=anna@coffee.example", tenant.admin).data["items"]]
    assert "member.removed" in actions


def test_a_disabled_member_is_signed_out_and_cannot_come_back_until_enabled(api: Api, tenant: TenantKeys) -> None:
    anna = admin_of(api, tenant)
    invite_and_join(api, anna, "olga@coffee.example", "support")
    olga = sign_in(api, "olga@coffee.example", PASSWORD, None)
    r = api.patch(f"/v1/members/{olga.user_id}", body={"status": "disabled"}, headers=anna.headers())
    assert r.status_code == 200 and r.data["status"] == "disabled"
    assert api.get("/v1/programs", headers=olga.headers()).status_code == 401
    r = api.post("/v1/auth/sign-in", body={"email": "olga@coffee.example", "password": PASSWORD})
    assert (r.status_code, error(r)) == (401, "invalid_credentials")
    api.patch(f"/v1/members/{olga.user_id}", body={"status": "active"}, headers=anna.headers())
    assert sign_in(api, "olga@coffee.example", PASSWORD, None).csrf


def test_an_admin_resets_a_lost_authenticator(api: Api, tenant: TenantKeys) -> None:
    anna = admin_of(api, tenant)
    invite_and_join(api, anna, "boris@coffee.example", "tenant_admin")
    boris = sign_in(api, "boris@coffee.example", PASSWORD, None)
    r = api.post(f"/v1/members/{boris.user_id}/mfa-reset", headers=anna.headers())
    assert r.status_code == 200 and r.data == {"ended": 1}
    assert api.get("/v1/programs", headers=boris.headers()).status_code == 401
    step = api.post("/v1/auth/sign-in", body={"email": "boris@coffee.example", "password": PASSWORD}).data
    assert step["next"] == "mfa_setup"


def test_members_of_another_tenant_do_not_exist_here(api: Api, tenant: TenantKeys, other_tenant: TenantKeys) -> None:
    anna = admin_of(api, tenant)
    invite_and_join(api, None, "fedor@fuel.example", "tenant_admin", key=other_tenant.admin)
    fedor = sign_in(api, "fedor@fuel.example", PASSWORD, None)
    for method, path, body in (("PATCH", f"/v1/members/{fedor.user_id}", {"role": "support"}),
                               ("DELETE", f"/v1/members/{fedor.user_id}", None),
                               ("POST", f"/v1/members/{fedor.user_id}/mfa-reset", None),
                               ("GET", f"/v1/members/{fedor.user_id}/sessions", None),
                               ("DELETE", f"/v1/members/{fedor.user_id}/sessions", None)):
        r = api.call(method, path, None, body, headers=anna.headers())
        assert (r.status_code, error(r)) == (404, "not_found"), (method, path)
    emails = [m["email"] for m in api.get("/v1/members", headers=anna.headers()).data["items"]]
    assert emails == ["anna@coffee.example"]
    assert api.get("/v1/programs", headers=fedor.headers()).status_code == 200


def test_an_admin_sees_and_ends_only_the_sessions_acting_in_their_own_tenant(
        api: Api, tenant: TenantKeys, other_tenant: TenantKeys) -> None:
    """A call-center operator working for two tenants: neither tenant's admin can watch or end the other's work."""
    verify_sender()
    invite_and_join(api, None, "olga@calls.example", "support", key=other_tenant.admin)
    invite_and_join(api, None, "olga@calls.example", "support", key=tenant.admin)
    olga = sign_in(api, "olga@calls.example", PASSWORD, None)
    assert api.get("/v1/auth/session", headers=olga.headers()).data["scope"] == "tenant:coffee-house"
    fuel = sign_in(api, "olga@calls.example", PASSWORD, None)
    api.put("/v1/auth/session/scope", body={"scope": "tenant:fuel-net"}, headers=fuel.headers())
    team = {m["email"]: m for m in api.get("/v1/members", tenant.admin).data["items"]}
    assert team["olga@calls.example"]["active_sessions"] == 1
    listed = api.get(f"/v1/members/{olga.user_id}/sessions", tenant.admin).data["items"]
    assert [s["scope"] for s in listed] == ["tenant:coffee-house"]
    r = api.delete(f"/v1/members/{olga.user_id}/sessions", tenant.admin)
    assert r.data == {"ended": 1}
    assert api.get("/v1/auth/session", headers=olga.headers()).status_code == 401
    assert api.get("/v1/auth/session", headers=fuel.headers()).status_code == 200
    assert api.delete(f"/v1/members/{olga.user_id}", tenant.admin).data == {"ended": 0}
    assert api.get("/v1/auth/session", headers=fuel.headers()).data["scope"] == "tenant:fuel-net"


def test_an_agency_invites_its_tenants_first_admin_but_not_another_agencys(
        api: Api, tenant: TenantKeys, other_tenant: TenantKeys) -> None:
    verify_sender()
    r = api.post("/v1/agency/tenants/coffee-house/invitations", tenant.agency,
                 {"email": "first@coffee.example", "role": "tenant_admin"})
    assert r.status_code == 201 and r.data["scope"] == "tenant:coffee-house"
    r = api.post("/v1/agency/tenants/fuel-net/invitations", tenant.agency,
                 {"email": "evil@acme.example", "role": "tenant_admin"})
    assert (r.status_code, error(r)) == (404, "not_found")


# --- passwords ----------------------------------------------------------------------------------------------------


def test_a_forgotten_password_is_reset_by_link_once_and_every_session_ends(api: Api, tenant: TenantKeys) -> None:
    anna = admin_of(api, tenant)
    known = api.post("/v1/auth/password/forgot", body={"email": "anna@coffee.example"})
    unknown = api.post("/v1/auth/password/forgot", body={"email": "nobody@coffee.example"})
    assert known.status_code == unknown.status_code == 202 and known.data == unknown.data
    drain()
    body = last_mail("anna@coffee.example")
    with pytest.raises(AssertionError):
        last_mail("nobody@coffee.example")
    token = token_from(body)
    r = api.post("/v1/auth/password/reset", body={"token": token, "password": "weak"})
    assert (r.status_code, error(r)) == (422, "weak_password")
    r = api.post("/v1/auth/password/reset", body={"token": token, "password": "New-Password-2027"})
    assert r.status_code == 204
    r = api.post("/v1/auth/password/reset", body={"token": token, "password": "New-Password-2028"})
    assert (r.status_code, error(r)) == (404, "reset_link_invalid")
    assert api.get("/v1/programs", headers=anna.headers()).status_code == 401
    old = api.post("/v1/auth/sign-in", body={"email": anna.email, "password": PASSWORD})
    assert (old.status_code, error(old)) == (401, "invalid_credentials")
    assert api.post("/v1/auth/sign-in", body={"email": anna.email, "password": "New-Password-2027"}).status_code == 200


def test_passwords_and_codes_never_reach_our_tables_or_logs(api: Api, tenant: TenantKeys,
                                                          capsys: pytest.CaptureFixture[str],
                                                          caplog: pytest.LogCaptureFixture) -> None:
    anna = admin_of(api, tenant)
    api.post("/v1/auth/sign-in", body={"email": anna.email, "password": "Wrong-Secret-9x"})
    api.get("/v1/programs", headers=anna.headers())
    out = capsys.readouterr()
    logged = out.out + out.err + caplog.text + json.dumps([r.__dict__ for r in caplog.records], default=str)
    stored = table_dump()
    for secret in (PASSWORD, "Wrong-Secret-9x", anna.cookie.split(".")[2], anna.secret or "-"):
        assert secret not in stored
        assert secret not in logged
    assert "anna@coffee.example" in stored  # (the dump does hold the accounts: the search is real)


def test_invalid_bodies_get_errors_at_the_field(api: Api) -> None:
    cases = [
        ({"email": "not-an-email", "password": "x"}, "email"),
        ({"email": "a@b.example"}, "password"),
        ({"email": "a@b.example", "password": "x", "remember": True}, "remember"),
    ]
    for body, field in cases:
        r = api.post("/v1/auth/sign-in", body=body)
        assert (r.status_code, error(r)) == (400, "validation_error"), body
        assert r.data["error"]["details"][0]["field"] == field
    r = api.post("/v1/auth/sign-in/code", body={"sign_in_id": "abcdefgh", "code": "12345a"})
    assert r.data["error"]["details"][0]["field"] == "code"


def test_an_api_key_has_no_session(api: Api, tenant: TenantKeys) -> None:
    r = api.get("/v1/auth/session", tenant.admin)
    assert (r.status_code, error(r)) == (403, "session_required")
    r = api.post("/v1/auth/sign-out", tenant.admin)
    assert (r.status_code, error(r)) == (403, "session_required")
    assert api.get("/v1/members", tenant.support).status_code == 403
    assert sign_in_service.ISSUER == "Loyalty"


def test_the_cli_creates_the_first_platform_admin_once(aws_stack: None, capsys: pytest.CaptureFixture[str]) -> None:
    from chalicelib import cli
    from chalicelib.storage import identity as store

    verify_sender()
    assert cli.main(["first-admin", "Root@Platform.Example"], target=cli.Target.as_configured()) == 0
    out = capsys.readouterr().out
    assert "platform admin root@platform.example: created" in out
    password = out.split("password:")[1].split()[0]
    secret = out.split("MFA secret:")[1].split()[0]
    assert f"otpauth://totp/Loyalty%3Aroot%40platform.example?secret={secret}" in out
    assert "\u2588" in out or "\u2580" in out  # the QR code, drawn with block characters
    user_id = store.user_id_by_email("root@platform.example")
    assert user_id is not None and password not in table_dump()
    assert cli.main(["first-admin", "root@platform.example"], target=cli.Target.as_configured()) == 0
    assert "already has an account; nothing created" in capsys.readouterr().out
    assert cli.main(["first-admin", "not an address"], target=cli.Target.as_configured()) == 2


def test_deleting_a_tenant_forgets_its_memberships_and_invitations(api: Api, tenant: TenantKeys,
                                                                   other_tenant: TenantKeys) -> None:
    from chalicelib.storage.tables import IdentityRecord

    anna = admin_of(api, tenant)
    invite_and_join(api, None, "fedor@fuel.example", "tenant_admin", key=other_tenant.admin)
    api.post("/v1/invitations", tenant.admin, {"email": "later@coffee.example", "role": "support"})
    drain()
    r = api.delete(f"/v1/agency/tenants/{tenant.tenant_id}?confirm={tenant.tenant_id}", tenant.agency)
    assert r.status_code == 202
    drain()
    items = [(rec.pk, rec.sk) for rec in IdentityRecord.scan()]
    assert not [i for i in items if "coffee-house" in i[0] + i[1]], items
    assert (f"user#{anna.user_id}", "user") in items  # the person stays (they may work elsewhere)
    assert any(sk == "member#fuel-net" for _, sk in items)
    assert api.get("/v1/auth/session", headers=anna.headers()).status_code == 401
    r = api.post("/v1/auth/sign-in", body={"email": anna.email, "password": PASSWORD})
    assert (r.status_code, error(r)) == (401, "invalid_credentials")
