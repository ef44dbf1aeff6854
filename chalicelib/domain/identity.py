"""The rules of staff identity: who needs MFA, how long a session lives, what a cookie and a CSRF token look like.

Pure: the services decide with these and storage keeps the results. A
session is named by a cookie `<uid>.<sid>.<secret>` (HttpOnly, so no script
reads it) and each state-changing request also carries a CSRF token
`<uid>.<sid>.<mac>` that a script of our own origin holds; the two prove the
same session, and neither alone is enough.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote, urlencode

from chalicelib.domain.roles import Role, ScopeKind, scope_of
from chalicelib.schemas.identity import normalize_email as normalize_email

SESSION_COOKIE = "__Host-lp_session"
"""`__Host-`: the browser keeps it only if Secure, Path=/ and without Domain, so no sub-domain can plant one."""
IDLE_TIMEOUT = timedelta(minutes=30)
ABSOLUTE_TIMEOUT = timedelta(hours=12)
TOUCH_EVERY = timedelta(minutes=1)
"""A session's last use is written at most this often (one write per minute of activity, not per request)."""
SIGN_IN_TTL = timedelta(minutes=5)
"""Between the password and the MFA code."""
MFA_TRIES = 5
INVITATION_TTL = timedelta(days=7)
RESET_TTL = timedelta(hours=1)
TOTP_STEP_SECONDS = 30
TOTP_REPLAY_WINDOW = timedelta(seconds=90)
"""A code is refused a second time for as long as any verifier could still accept it (three 30 s steps)."""

ACCOUNT_ATTEMPTS = 5
"""Failed sign-ins of one account per lockout window, then locked until the window ends."""
ADDRESS_ATTEMPTS = 30
"""Sign-in attempts of one client address per window, whatever the account (password spraying)."""
LOCKOUT_WINDOW_SECONDS = 900


def lockout_window(at: datetime) -> tuple[int, int, int]:
    """(window number, its end as epoch, seconds left) of the attempt-counting window containing `at`."""
    window = int(at.timestamp()) // LOCKOUT_WINDOW_SECONDS
    end = (window + 1) * LOCKOUT_WINDOW_SECONDS
    return window, end, max(1, end - int(at.timestamp()))


PERSON_ROLES: frozenset[Role] = frozenset({Role.PLATFORM, Role.AGENCY, Role.TENANT_ADMIN, Role.SUPPORT})
"""Roles a person can hold; `pos` is a till's, never a person's."""
ADMIN_OF: dict[ScopeKind, Role] = {
    ScopeKind.PLATFORM: Role.PLATFORM,
    ScopeKind.AGENCY: Role.AGENCY,
    ScopeKind.TENANT: Role.TENANT_ADMIN,
}
"""The role that administers each scope: it invites, changes roles, removes; each scope keeps at least one."""
MFA_ROLES: frozenset[Role] = frozenset({Role.PLATFORM, Role.AGENCY, Role.TENANT_ADMIN})

_TOKEN_PART = re.compile(r"^[A-Za-z0-9_-]{1,80}$")


class UserStatus:
    ACTIVE = "active"
    DISABLED = "disabled"


@dataclass(frozen=True)
class Membership:
    """A person's role in one scope."""

    scope: ScopeKind
    scope_id: str
    role: Role
    agency_id: str | None = None

    @property
    def key(self) -> str:
        """How a scope is named in the API and in stored keys: `platform`, `agency:<id>`, `tenant:<id>`."""
        return scope_key(self.scope, self.scope_id)


@dataclass(frozen=True)
class SessionToken:
    user_id: str
    session_id: str
    secret: str


def scope_key(scope: ScopeKind, scope_id: str) -> str:
    return "platform" if scope is ScopeKind.PLATFORM else f"{scope.value}:{scope_id}"


def parse_scope_key(value: str) -> tuple[ScopeKind, str] | None:
    if value == "platform":
        return ScopeKind.PLATFORM, "platform"
    kind, _, ident = value.partition(":")
    if kind not in (ScopeKind.AGENCY.value, ScopeKind.TENANT.value) or not _TOKEN_PART.match(ident or "-!"):
        return None
    return ScopeKind(kind), ident


def role_fits_scope(role: Role, scope: ScopeKind) -> bool:
    return role in PERSON_ROLES and scope_of(role) is scope


def mfa_required(memberships: Iterable[Membership], support_mfa_tenants: Iterable[str] = ()) -> bool:
    """MFA for anyone who administers anything, and for support staff of a tenant that asks for it."""
    strict = set(support_mfa_tenants)
    return any(m.role in MFA_ROLES or (m.role is Role.SUPPORT and m.scope_id in strict) for m in memberships)


# --- sessions ----------------------------------------------------------------------------------------------------

def new_session_token(user_id: str, session_id: str) -> SessionToken:
    return SessionToken(user_id, session_id, secrets.token_urlsafe(32))


def cookie_value(token: SessionToken) -> str:
    return f"{token.user_id}.{token.session_id}.{token.secret}"


def parse_cookie_value(value: str | None) -> SessionToken | None:
    parts = (value or "").split(".")
    if len(parts) != 3 or not all(_TOKEN_PART.match(p) for p in parts):
        return None
    return SessionToken(*parts)


def session_cookie_from_header(cookie_header: str | None) -> SessionToken | None:
    """The session named by a `Cookie` header; a second cookie of the same name is a planted one: refused."""
    values = [v for name, _, v in (part.strip().partition("=") for part in (cookie_header or "").split(";"))
              if name == SESSION_COOKIE]
    return parse_cookie_value(values[0]) if len(values) == 1 else None


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def csrf_token(key: bytes, user_id: str, session_id: str) -> str:
    mac = hmac.new(key, f"csrf|{user_id}|{session_id}".encode(), hashlib.sha256).digest()
    return f"{user_id}.{session_id}.{base64.urlsafe_b64encode(mac[:24]).decode().rstrip('=')}"


def parse_csrf_token(key: bytes, value: str | None) -> tuple[str, str] | None:
    """(user id, session id) of a genuine CSRF token; None for anything forged or malformed."""
    parts = (value or "").strip().split(".")
    if len(parts) != 3 or not all(_TOKEN_PART.match(p) for p in parts):
        return None
    if not hmac.compare_digest(csrf_token(key, parts[0], parts[1]), value.strip() if value else ""):
        return None
    return parts[0], parts[1]


def session_authorization(header: str | None) -> str | None:
    """The CSRF token of an `Authorization: Session <token>` header (how a signed-in page calls the API)."""
    scheme, _, token = (header or "").strip().partition(" ")
    return token.strip() or None if scheme.lower() == "session" else None


def session_expiry(created: datetime, last_used: datetime) -> datetime:
    """When a session ends unless used again: idle timeout from its last use, never past the absolute limit."""
    return min(last_used + IDLE_TIMEOUT, created + ABSOLUTE_TIMEOUT)


def session_alive(created: datetime, last_used: datetime, at: datetime) -> bool:
    return at < session_expiry(created, last_used)


def cookie_header(token: SessionToken | None, max_age: int) -> str:
    """The Set-Cookie value: the session, or (None) an order to forget it."""
    value = cookie_value(token) if token else ""
    return f"{SESSION_COOKIE}={value}; Max-Age={max_age if token else 0}; Path=/; Secure; HttpOnly; SameSite=Strict"


# --- one-time passwords (RFC 6238), for enrolment screens and tests -----------------------------------------

def totp_code(secret_b32: str, unix_time: float, digits: int = 6) -> str:
    """The TOTP code of a base32 secret at a time (SHA-1, 30 s steps: what authenticator apps and Cognito use)."""
    padded = secret_b32.upper() + "=" * (-len(secret_b32) % 8)
    key = base64.b32decode(padded)
    counter = struct.pack(">Q", int(unix_time) // TOTP_STEP_SECONDS)
    digest = hmac.new(key, counter, hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def otpauth_uri(secret_b32: str, account: str, issuer: str) -> str:
    """The `otpauth://` URI an authenticator app scans (Key Uri Format)."""
    label = quote(f"{issuer}:{account}")
    return f"otpauth://totp/{label}?" + urlencode({"secret": secret_b32, "issuer": issuer, "algorithm": "SHA1",
                                                   "digits": 6, "period": TOTP_STEP_SECONDS})


def is_code(value: str) -> bool:
    return len(value) == 6 and value.isdigit()


# --- the audit trail's name for a person ---------------------------------------------------------------------------

def person_actor(user_id: str, email: str) -> str:
    """`user:<id> <e-mail>`: no address contains a space, so the audit can split it back."""
    return f"user:{user_id} {email}"


def split_actor(actor: str) -> tuple[str, str | None]:
    """(actor id, e-mail or None) of an audit actor string."""
    if actor.startswith("user:") and " " in actor:
        ident, _, email = actor.partition(" ")
        return ident, email
    return actor, None
