"""People sign in over real HTTP on the local stack: the first admin `make run` prints, invitations read from the
local outbox, MFA enrolment, a session used as a browser sends it, the audit by person, sign-out.

Each step is what a newcomer does by hand: the credentials come from what the stack printed and saved
(`.local/admin.json`), codes are computed from the MFA secret as an authenticator app does, the invitation link
is read from the outbox's JSON. The session cookie is `__Host-` and Secure, which `requests` will not send over
http: it goes as an explicit `Cookie` header, next to `Authorization: Session <csrf token>`.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from chalicelib.domain.identity import SESSION_COOKIE, TOTP_STEP_SECONDS, totp_code
from tests.e2e.conftest import LocalStack

PASSWORD = "Correct-Horse-42"
AGENCY, TENANT = "demo-agency", "coffee-chain"
STAFF_SENDER = "no-reply@loyalty.example"


@dataclass
class Browser:
    """A signed-in person: the cookie a browser keeps and the CSRF token a page of ours keeps."""

    email: str
    cookie: str
    csrf: str

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Session {self.csrf}", "Cookie": f"{SESSION_COOKIE}={self.cookie}"}


def admin_of(stack: LocalStack) -> dict[str, Any]:
    return dict(json.loads((stack.state_dir / "admin.json").read_text()))


def fresh_code(secret: str, used: set[str]) -> str:
    """The code an authenticator shows, waiting for the next 30 s step near its end or if this one was used."""
    while True:
        now = time.time()
        left = TOTP_STEP_SECONDS - now % TOTP_STEP_SECONDS
        code = totp_code(secret, now)
        if left >= 3 and code not in used:
            used.add(code)
            return code
        time.sleep(left + 0.05)


def call(stack: LocalStack, method: str, path: str, person: Browser | None = None, **kwargs: Any) -> requests.Response:
    headers = {**(person.headers() if person else {}), **kwargs.pop("headers", {})}
    return requests.request(method, f"{stack.url}{path}", headers=headers, timeout=30, **kwargs)


def sign_in(stack: LocalStack, email: str, password: str, secret: str | None, used: set[str]) -> tuple[Browser, str]:
    """Password, then the code (enrolling the authenticator the answer shows first, if asked): (browser, secret)."""
    r = call(stack, "POST", "/v1/auth/sign-in", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    step = r.json()
    assert "Set-Cookie" not in r.headers and r.headers["Cache-Control"] == "no-store"
    if step["next"] == "mfa_setup":
        assert step["secret"] and step["otpauth_uri"].startswith("otpauth://totp/") and "<svg" in step["qr_svg"]
        secret = step["secret"]
    else:
        assert step["next"] == "mfa" and step["secret"] is None, step
    assert secret is not None
    r = call(stack, "POST", "/v1/auth/sign-in/code", json={"sign_in_id": step["sign_in_id"],
                                                          "code": fresh_code(secret, used)})
    assert r.status_code == 200, r.text
    assert r.json()["next"] == "done"
    set_cookie = r.headers["Set-Cookie"]
    assert set_cookie.startswith(f"{SESSION_COOKIE}=") and "; Secure" in set_cookie and "; HttpOnly" in set_cookie
    cookie = set_cookie.split(";")[0].split("=", 1)[1]
    return Browser(email, cookie, r.json()["session"]["csrf_token"]), secret


def outbox(stack: LocalStack, to: str, wait: float = 60.0) -> dict[str, Any]:
    """The newest e-mail to `to` in the local outbox, waiting for it (the jobs worker may still be sending it)."""
    deadline = time.monotonic() + wait
    while True:
        r = requests.get(f"http://127.0.0.1:{stack.moto_port}/_local/outbox.json", params={"to": to}, timeout=10)
        if r.json()["messages"]:
            return dict(r.json()["messages"][0])
        assert time.monotonic() < deadline, f"no e-mail to {to} in the outbox after {wait} s"
        time.sleep(0.25)


def accept_from_outbox(stack: LocalStack, email: str) -> str:
    """The invitation e-mail to `email` in the local outbox: its link is absolute, on this API; accepted."""
    mail = outbox(stack, email)
    assert mail["from"].endswith(f"<{STAFF_SENDER}>") and mail["to"] == [email]
    link = re.search(r"(\S+)/console/invitation\?token=(\S+)", mail["body"])
    assert link and link.group(1) == stack.url, mail["body"]
    r = call(stack, "POST", "/v1/auth/invitations/accept", json={"token": link.group(2), "password": PASSWORD})
    assert r.status_code == 201, r.text
    assert r.json()["new_account"] is True
    return link.group(2)


def test_the_banner_prints_the_first_admin_and_how_to_sign_in(stack: LocalStack) -> None:
    admin, log = admin_of(stack), stack.log()
    assert admin["email"] == "admin@loyalty.local"
    assert f"  e-mail:    {admin['email']}\n  password:  {admin['password']}\n" in log
    assert f"secret {admin['mfa_secret']}" in log and admin["otpauth_uri"] in log
    assert admin["otpauth_uri"].startswith("otpauth://totp/Loyalty%3Aadmin%40loyalty.local?secret=")
    assert "▄▄▄▄▄" in log  # the QR code, in Unicode half blocks
    assert f"{stack.url}/v1/auth/sign-in\n" in log and f"{stack.url}/v1/auth/sign-in/code\n" in log
    assert "-m infra.local.first_admin" in log
    assert (stack.state_dir / "admin.json").stat().st_mode & 0o077 == 0


def test_people_sign_in_invite_act_and_sign_out_over_http(stack: LocalStack) -> None:
    used: dict[str, set[str]] = {}
    admin = admin_of(stack)

    # The first admin signs in with the printed password and a code from the printed secret.
    root, _ = sign_in(stack, admin["email"], admin["password"], admin["mfa_secret"], used.setdefault("root", set()))
    r = call(stack, "GET", "/v1/auth/session", root)
    assert r.status_code == 200, r.text
    assert (r.json()["user"]["email"], r.json()["role"], r.json()["scope"]) == (admin["email"], "platform", "platform")
    assert call(stack, "GET", "/v1/whoami", root).json()["email"] == admin["email"]
    # The cookie alone (a cross-site form) and the token alone (a stolen header) are both refused.
    alone = call(stack, "GET", "/v1/auth/session", headers={"Cookie": f"{SESSION_COOKIE}={root.cookie}"})
    assert alone.status_code == 401, alone.text
    token_only = call(stack, "GET", "/v1/auth/session", headers={"Authorization": f"Session {root.csrf}"})
    assert token_only.status_code == 401, token_only.text

    # The platform admin invites a member of the example agency; the link comes by e-mail (the outbox).
    staff = "olga@demo-agency.example"
    r = call(stack, "POST", f"/v1/platform/agencies/{AGENCY}/invitations", root, json={"email": staff, "role": "agency"})
    assert r.status_code == 201, r.text
    assert (r.json()["status"], r.json()["invited_by"]) == ("pending", admin["email"])
    assert r.json()["delivery"] in ("queued", "sent")
    token = accept_from_outbox(stack, staff)
    again = call(stack, "POST", "/v1/auth/invitations/accept", json={"token": token, "password": PASSWORD})
    assert (again.status_code, again.json()["error"]["code"]) == (409, "invitation_used")
    olga, _ = sign_in(stack, staff, PASSWORD, None, used.setdefault(staff, set()))  # enrols an authenticator

    # The agency's person invites the first admin of one of its tenants, who joins and enrols MFA too.
    person = "anna@zerno.example"
    r = call(stack, "POST", f"/v1/agency/tenants/{TENANT}/invitations", olga,
             json={"email": person, "role": "tenant_admin"})
    assert r.status_code == 201, r.text
    accept_from_outbox(stack, person)
    anna, secret = sign_in(stack, person, PASSWORD, None, used.setdefault(person, set()))
    session = call(stack, "GET", "/v1/auth/session", anna).json()
    assert (session["scope"], session["role"], session["user"]["mfa_enrolled"]) == (
        f"tenant:{TENANT}", "tenant_admin", True)

    # She acts in the tenant, and the audit names her (by e-mail) for what she did.
    r = call(stack, "POST", "/v1/stores", anna, json={"id": "http-e2e-1", "name": "Pokrovka 1"})
    assert r.status_code == 201, r.text
    r = call(stack, "GET", "/v1/audit", anna, params={"actor": person})
    assert r.status_code == 200, r.text
    mine = r.json()["items"]
    assert {e["actor_email"] for e in mine} == {person}
    assert {e["action"] for e in mine} >= {"store.created", "member.joined"}
    assert any(e["target"] == "store:http-e2e-1" for e in mine)
    members = call(stack, "GET", "/v1/members", anna).json()["items"]
    assert [(m["email"], m["role"], m["mfa_enrolled"]) for m in members] == [(person, "tenant_admin", True)]
    # A tenant's person stays in the tenant: the agency's and the platform's routes are not hers.
    assert call(stack, "GET", "/v1/agency/tenants", anna).status_code == 403

    # Sign-out ends every session of hers at once: a second browser's too.
    laptop, _ = sign_in(stack, person, PASSWORD, secret, used[person])
    r = call(stack, "POST", "/v1/auth/sign-out", anna)
    assert r.status_code == 200, r.text
    assert r.json() == {"ended": 2} and "Max-Age=0" in r.headers["Set-Cookie"]
    for browser in (anna, laptop):
        r = call(stack, "GET", "/v1/programs", browser)
        assert (r.status_code, r.json()["error"]["code"]) in {(401, "session_ended"), (401, "session_expired")}, r.text
    # Others' sessions are untouched.
    assert call(stack, "GET", "/v1/auth/session", olga).status_code == 200
    assert call(stack, "GET", "/v1/auth/session", root).status_code == 200


def test_a_restart_prints_the_same_first_admin_who_still_signs_in(make_stack: Callable[[str], LocalStack]) -> None:
    stack = make_stack("restarted").start()
    before = admin_of(stack)
    assert "Created the first platform admin admin@loyalty.local" in stack.log()
    assert stack.stop() == 0

    stack.start()
    assert admin_of(stack) == before
    log = stack.log()
    assert "Created the first platform admin" not in log and f"  password:  {before['password']}\n" in log
    # Still enrolled: the password step asks for the code of the saved secret, not for a new authenticator.
    step = call(stack, "POST", "/v1/auth/sign-in", json={"email": before["email"], "password": before["password"]})
    assert step.status_code == 200 and step.json()["next"] == "mfa", step.text
    browser, _ = sign_in(stack, before["email"], before["password"], before["mfa_secret"], set())
    assert call(stack, "GET", "/v1/auth/session", browser).json()["user"]["user_id"] == before["user_id"]
