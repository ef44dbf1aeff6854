"""Staff sign-in, sessions, members and invitations as the API spells them."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints

from chalicelib.schemas.common import Input, Output
from chalicelib.schemas.roles import Role, ScopeKind

PersonRole = Literal["platform", "agency", "tenant_admin", "support"]
Password = Annotated[str, StringConstraints(min_length=1, max_length=256, strip_whitespace=False)]
Code = Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")]
OpaqueId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{8,80}$")]
Token = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{8,80}\.[A-Za-z0-9_-]{16,80}$")]


_EMAIL = re.compile(r"^[^@\s\"'<>(),;:\\\[\]]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")


def normalize_email(value: str) -> str | None:
    """An account's e-mail as stored and compared (trimmed, lower case), or None if it is not a plain address.

    Stricter than RFC 5322 on purpose: no quotes, spaces or brackets, so an
    address is safe in a header, a log line and the audit's actor string.
    """
    email = value.strip().lower()
    if len(email) > 254 or not _EMAIL.match(email):
        return None
    return email


def _email(value: str) -> str:
    email = normalize_email(value)
    if email is None:
        raise ValueError("not an e-mail address (name@example.com)")
    return email


Email = Annotated[str, StringConstraints(min_length=3, max_length=254), AfterValidator(_email)]


class SignIn(Input):
    email: Email
    password: Password


class SignInCode(Input):
    sign_in_id: OpaqueId
    code: Code


class Locale(Input):
    locale: Literal["ru", "en"]


class ScopeSwitch(Input):
    scope: Annotated[str, StringConstraints(min_length=1, max_length=60)] = Field(
        description="`platform`, `agency:<id>` or `tenant:<id>`: one of your memberships.")


class PasswordForgot(Input):
    email: Email


class PasswordReset(Input):
    token: Token
    password: Password


class InvitationAccept(Input):
    token: Token
    password: Password | None = Field(default=None, description="Required for a new account; ignored otherwise.")


class InvitationCreate(Input):
    email: Email
    role: PersonRole


class MemberUpdate(Input):
    role: PersonRole | None = None
    status: Literal["active", "disabled"] | None = None


class MembershipView(Output):
    scope: str
    """`platform`, `agency:<id>` or `tenant:<id>`."""
    kind: ScopeKind
    scope_id: str
    role: Role
    name: str


class UserView(Output):
    user_id: str
    email: str
    mfa_enrolled: bool
    locale: str | None = Field(default=None, description="The console's language the person chose; none: the "
                                                         "browser's.")


class SessionView(Output):
    user: UserView
    memberships: list[MembershipView]
    scope: str
    role: Role
    csrf_token: str
    expires_at: datetime
    absolute_expires_at: datetime


class SignInStep(Output):
    """What comes next: an MFA code, enrolling an authenticator first, or (`done`) the session itself."""

    next: Literal["mfa", "mfa_setup", "done"]
    sign_in_id: str | None = None
    expires_at: datetime | None = None
    secret: str | None = Field(default=None, description="mfa_setup: the authenticator secret (base32), as text.")
    otpauth_uri: str | None = None
    qr_svg: str | None = Field(default=None, description="mfa_setup: the otpauth URI as an SVG QR code.")
    session: SessionView | None = None


class Accepted(Output):
    email: str
    scope: str
    role: Role
    new_account: bool


class InvitationView(Output):
    invitation_id: str
    email: str
    scope: str
    role: Role
    status: Literal["pending", "accepted", "revoked", "expired"]
    expires_at: datetime
    invited_by: str
    invited_at: datetime
    sent_count: int
    delivery: Literal["queued", "sent", "failed"] = Field(
        description="The last e-mail: `queued` (being sent), `sent`, or `failed` (resend it).")


class MemberView(Output):
    user_id: str
    email: str
    role: Role
    status: Literal["active", "disabled"]
    mfa_enrolled: bool
    added_at: datetime
    added_by: str
    active_sessions: int


class SessionInfo(Output):
    session_id: str
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    scope: str
    source_ip: str
    user_agent: str
    current: bool


class SessionsEnded(Output):
    ended: int
