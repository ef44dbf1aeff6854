"""The first platform admin of a new stack: someone must be able to sign in before anyone can invite.

`make run` calls this once per local stack and prints the result; on AWS an
operator runs `python -m chalicelib.cli first-admin` (see the deploy guide).
The account is complete: a permanent password and an enrolled authenticator,
whose secret is returned once so the person can add it to their app.
"""

from __future__ import annotations

import secrets
import string
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from chalicelib.domain import identity as rules
from chalicelib.domain.identity import UserStatus
from chalicelib.domain.ids import new_id
from chalicelib.domain.roles import Role, ScopeKind
from chalicelib.services.identity import sign_in
from chalicelib.storage import audit, staff_pool, transactions
from chalicelib.storage import identity as store
from chalicelib.storage.documents.identity import MembershipDoc, UserDoc
from chalicelib.storage.transactions import Tx


@dataclass(frozen=True)
class FirstAdmin:
    user_id: str
    email: str
    password: str
    mfa_secret: str
    otpauth_uri: str


def generate_password() -> str:
    """16 characters meeting the pool's policy (lower, upper, digit), from the OS's random source."""
    alphabet = string.ascii_letters + string.digits
    while True:
        password = "".join(secrets.choice(alphabet) for _ in range(16))
        if any(c.islower() for c in password) and any(c.isupper() for c in password) and any(
                c.isdigit() for c in password):
            return password


def ensure_platform_admin(email: str, password: str | None = None) -> FirstAdmin | None:
    """Create the platform admin with MFA enrolled; None if an account with this e-mail exists already."""
    if store.user_id_by_email(email) is not None:
        return None
    password = password or generate_password()
    user_id = new_id(20)
    staff_pool.create_user(email)
    staff_pool.set_password(email, password)
    tokens = staff_pool.password_sign_in(email, password).tokens
    if tokens is None:
        raise RuntimeError(f"{email} already has MFA in the pool but no account here; remove it from the pool")
    secret = staff_pool.start_enrolment(tokens.access)
    staff_pool.finish_enrolment(email, tokens.access, _fresh_code(secret))
    staff_pool.sign_out_everywhere(email)
    at = datetime.now(UTC)
    user = UserDoc(email=email, status=UserStatus.ACTIVE, mfa_enrolled=True, created_at=at.isoformat(),
                   created_by="bootstrap")
    membership = MembershipDoc(scope=ScopeKind.PLATFORM.value, scope_id="platform", role=Role.PLATFORM.value,
                               status="active", email=email, added_at=at.isoformat(), added_by="bootstrap")

    def build(tx: Tx) -> None:
        store.set_membership(tx, user_id, membership, None, at)
        store.add_user(tx, user_id, user, at)
        audit.add(tx, audit.entry("platform", action="member.joined", actor="bootstrap", at=at,
                                  target=f"user:{user_id}", detail={"email": email, "role": Role.PLATFORM.value}))

    transactions.write(build)
    return FirstAdmin(user_id, email, password, secret, rules.otpauth_uri(secret, email, sign_in.ISSUER))


def _fresh_code(secret: str) -> str:
    """A code with at least 5 s of its 30 s step left, so the pool checks it within the same step."""
    now = time.time()
    if now % rules.TOTP_STEP_SECONDS > rules.TOTP_STEP_SECONDS - 5:
        time.sleep(rules.TOTP_STEP_SECONDS - now % rules.TOTP_STEP_SECONDS + 0.1)
        now = time.time()
    return rules.totp_code(secret, now)
