"""Signed-in people in functional tests: accounts made through the real invitation and sign-in routes."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import boto3

from chalicelib.domain.identity import SESSION_COOKIE, TOTP_STEP_SECONDS, totp_code
from chalicelib.services.identity import bootstrap
from chalicelib.settings import settings
from tests.functional.jobqueue import drain

PASSWORD = "Correct-Horse-42"


@dataclass
class Person:
    """A signed-in browser: its cookie and CSRF token, sent the way a page of ours sends them."""

    email: str
    user_id: str
    cookie: str
    csrf: str
    secret: str | None = None

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Session {self.csrf}", "Cookie": f"{SESSION_COOKIE}={self.cookie}", **extra}


def verify_sender() -> None:
    boto3.client("ses", region_name=settings.region).verify_email_identity(
        EmailAddress=settings.staff_mail_from.split("<")[-1].rstrip(">"))


def fresh_code(secret: str, used: set[str] | None = None) -> str:
    """The authenticator's code now, waiting for the next 30 s step near a boundary or if this one was used."""
    while True:
        now = time.time()
        if now % TOTP_STEP_SECONDS > TOTP_STEP_SECONDS - 3:
            time.sleep(TOTP_STEP_SECONDS - now % TOTP_STEP_SECONDS + 0.05)
            continue
        code = totp_code(secret, now)
        if used is None or code not in used:
            if used is not None:
                used.add(code)
            return code
        time.sleep(TOTP_STEP_SECONDS - now % TOTP_STEP_SECONDS + 0.05)


def cookie_of(response: Any) -> str:
    header = response.headers.get("Set-Cookie", "")
    assert header.startswith(f"{SESSION_COOKIE}="), header
    return header.split(";")[0].split("=", 1)[1]


def last_mail(to: str) -> str:
    """The body of the newest e-mail SES (moto) accepted for `to`."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    sent = [m for m in ses_backends[DEFAULT_ACCOUNT_ID][settings.region].sent_messages
            if to in (getattr(m, "destinations", None) or {}).get("ToAddresses", [])]
    assert sent, f"no e-mail to {to}"
    return str(sent[-1].body)


def token_from(body: str) -> str:
    return body.split("?token=")[1].split()[0]


def first_admin(api: Any, email: str = "root@platform.example") -> Person:
    """The stack's first platform admin (bootstrap), signed in with password and MFA."""
    verify_sender()
    made = bootstrap.ensure_platform_admin(email, PASSWORD)
    assert made is not None
    return sign_in(api, email, PASSWORD, made.mfa_secret)


def sign_in(api: Any, email: str, password: str, secret: str | None, used: set[str] | None = None) -> Person:
    """Password, then the MFA code (enrolling an authenticator first if asked): a signed-in person."""
    r = api.post("/v1/auth/sign-in", body={"email": email, "password": password})
    assert r.status_code == 200, r.data
    step = r.data
    if step["next"] == "mfa_setup":
        secret = step["secret"]
    if step["next"] != "done":
        assert secret is not None
        r = api.post("/v1/auth/sign-in/code", body={"sign_in_id": step["sign_in_id"],
                                                    "code": fresh_code(secret, used)})
        assert r.status_code == 200, r.data
    session = r.data["session"]
    return Person(email, session["user"]["user_id"], cookie_of(r), session["csrf_token"], secret)


def invite_and_join(api: Any, inviter: Person | None, email: str, role: str, *, key: str | None = None,
                    path: str = "/v1/invitations") -> dict[str, Any]:
    """Invite by e-mail (as a person or with a key), then accept the link from the e-mail."""
    headers = inviter.headers() if inviter else {}
    r = api.post(path, key, {"email": email, "role": role}, headers=headers)
    assert r.status_code == 201, r.data
    drain()  # the jobs worker sends the e-mail
    token = token_from(last_mail(email))
    r = api.post("/v1/auth/invitations/accept", body={"token": token, "password": PASSWORD})
    assert r.status_code == 201, r.data
    return r.data
