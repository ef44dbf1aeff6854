"""Staff identity documents (storage/tables.IdentityRecord): accounts, memberships, sessions, invitations.

No password, MFA secret or Cognito token is kept in clear: sessions keep the
cookie secret's hash and the refresh token sealed with the stage's key.
"""

from __future__ import annotations

from chalicelib.storage.documents.common import Document


class UserDoc(Document):
    email: str
    status: str
    mfa_enrolled: bool = False
    locale: str = ""
    """The console's language the person chose (`ru`, `en`); empty: their browser's."""
    created_at: str
    created_by: str = ""


class MembershipDoc(Document):
    scope: str
    """platform, agency or tenant."""
    scope_id: str
    role: str
    agency_id: str | None = None
    status: str = "active"
    """active or disabled (by an admin of the scope: the person keeps their account and other memberships)."""
    email: str
    added_at: str
    added_by: str = ""


class SessionDoc(Document):
    cookie_hash: str
    created_at: str
    last_used_at: str
    scope_key: str
    """The membership the session acts in (`platform`, `agency:<id>`, `tenant:<id>`); switched by the person."""
    refresh_sealed: str = ""
    user_agent: str = ""
    source_ip: str = ""


class InvitationDoc(Document):
    email: str
    scope: str
    scope_id: str
    role: str
    agency_id: str | None = None
    token_hash: str
    status: str
    """pending, accepted or revoked."""
    expires_at: str
    invited_by: str
    invited_at: str
    sent_count: int = 1
    delivery: str = "queued"
    """queued, sent or failed: the last e-mail of the invitation (a failed one can be resent)."""
    accepted_at: str | None = None
    accepted_by: str | None = None


class PendingSignInDoc(Document):
    """Between the password and the MFA code: Cognito's challenge session, or the access token for enrolment."""

    user_id: str
    email: str
    step: str
    """mfa (enrolled: answer Cognito's challenge) or mfa_setup (first sign-in: enrol an authenticator)."""
    cognito_session: str = ""
    access_sealed: str = ""
    refresh_sealed: str = ""
    source_ip: str = ""
    user_agent: str = ""


class ResetDoc(Document):
    user_id: str
    token_hash: str
    expires_at: str
