"""Member sessions (a card holder signed in on the tenant's member site): the cookie, its CSRF token, expiry.

A member session names one tenant and one customer and nothing else; it is
kept server-side (the browser holds `<session id>.<secret>` in an HttpOnly
cookie, we keep the secret's hash), so signing out or erasing the member ends
it at once. Staff sessions use another cookie (`__Host-lp_session`) and another
key: neither can ever be read as the other.

SameSite=Lax, not Strict: a member opening the site from a link (an SMS, an
e-mail, a QR code at the till) arrives by a top-level navigation from another
site, and with Strict their first page would look signed out. Lax still never
sends the cookie on another site's form post, and every post we accept also
carries the session's CSRF token and our own Origin.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

MEMBER_COOKIE = "__Host-lp_member"
IDLE_TIMEOUT = timedelta(days=7)
"""A member comes back weekly without a new SMS code; a week of silence ends the session."""
ABSOLUTE_TIMEOUT = timedelta(days=30)
TOUCH_EVERY = timedelta(minutes=5)
"""The last use is written at most this often (one write per five minutes of activity, not per page)."""
_PART = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class Member:
    """The signed-in member: one tenant, one customer. Nothing else is ever reachable through it."""

    tenant_id: str
    customer_id: str
    session_id: str
    csrf: str
    """The token every form of this member's pages carries (`<input type="hidden" name="csrf">`)."""


@dataclass(frozen=True)
class MemberToken:
    """What the member cookie carries: the customer, the session's id and the secret whose hash we keep."""

    customer_id: str
    session_id: str
    secret: str


def new_token(customer_id: str, session_id: str) -> MemberToken:
    return MemberToken(customer_id, session_id, secrets.token_urlsafe(32))


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def cookie_header(token: MemberToken | None) -> str:
    """The Set-Cookie value: the session for its absolute lifetime, or (None) an order to forget it."""
    value = f"{token.customer_id}.{token.session_id}.{token.secret}" if token else ""
    max_age = int(ABSOLUTE_TIMEOUT.total_seconds()) if token else 0
    return f"{MEMBER_COOKIE}={value}; Max-Age={max_age}; Path=/; Secure; HttpOnly; SameSite=Lax"


def token_from_header(cookie_header_value: str | None) -> MemberToken | None:
    """The member session a `Cookie` header names; none, malformed or two of them (a planted one): None."""
    values = [v for name, _, v in (part.strip().partition("=") for part in (cookie_header_value or "").split(";"))
              if name == MEMBER_COOKIE]
    if len(values) != 1:
        return None
    parts = values[0].split(".")
    if len(parts) != 3 or not _ID.match(parts[0]) or not all(_PART.match(p) for p in parts[1:]):
        return None
    return MemberToken(*parts)


def csrf_token(key: bytes, tenant_id: str, session_id: str) -> str:
    """The token every member form carries: bound to the tenant and the session, made with our key."""
    mac = hmac.new(key, f"member-csrf|{tenant_id}|{session_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:24]).decode().rstrip("=")


def csrf_valid(key: bytes, tenant_id: str, session_id: str, submitted: str | None) -> bool:
    return bool(submitted) and hmac.compare_digest(csrf_token(key, tenant_id, session_id), (submitted or "").strip())


def expiry(created: datetime, last_used: datetime) -> datetime:
    return min(last_used + IDLE_TIMEOUT, created + ABSOLUTE_TIMEOUT)


def alive(created: datetime, last_used: datetime, at: datetime) -> bool:
    return at < expiry(created, last_used)
