"""Forgotten passwords: a link by e-mail, valid one hour, used once; every session ends with the old password.

Asking for a link answers the same for every address, and the work that
differs (looking the person up, sending) happens in the jobs worker, so the
answer's timing does not tell either.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.domain import identity as rules
from chalicelib.domain.identity import UserStatus
from chalicelib.domain.ids import new_id
from chalicelib.errors import ApiError, ErrorDetail, field_error
from chalicelib.observability import logger
from chalicelib.services.identity import crypto, mail
from chalicelib.services.marketing.channels import PermanentSendError
from chalicelib.settings import settings
from chalicelib.storage import audit, queues, staff_pool
from chalicelib.storage import identity as store
from chalicelib.storage.documents.identity import ResetDoc
from chalicelib.storage.staff_pool import PoolRefused

RESET_JOB = "staff.password_reset"
POLICY = "at least 12 characters, with a lower-case letter, an upper-case letter and a digit."
RESET_REQUESTS_PER_ADDRESS = 10


def check_policy(password: str) -> None:
    """The pool's password policy, checked before Cognito sees the password, so the error sits at the field."""
    problems = []
    if len(password) < 12:
        problems.append("shorter than 12 characters")
    if not any(c.islower() for c in password):
        problems.append("no lower-case letter")
    if not any(c.isupper() for c in password):
        problems.append("no upper-case letter")
    if not any(c.isdigit() for c in password):
        problems.append("no digit")
    if problems:
        raise ApiError(422, "weak_password", "The password needs " + POLICY,
                       [ErrorDetail("password", "; ".join(problems))])


def request_reset(email: str, source_ip: str) -> None:
    """Queue the reset e-mail; the same answer whether the address has an account or not."""
    at = datetime.now(UTC)
    window, end, left = rules.lockout_window(at)
    if not store.count_attempt(f"reset-ip#{source_ip}", window, RESET_REQUESTS_PER_ADDRESS, at, end + 60):
        raise ApiError(429, "too_many_attempts", "Too many reset requests from this address; try again later.",
                       headers={"Retry-After": str(left)})
    queues.send(settings.jobs_queue, {"job": RESET_JOB, "email": email})


def handle_job(message: dict[str, Any]) -> None:
    """Send the reset link if the address belongs to an active person; otherwise nothing (and nothing says so)."""
    email = str(message["email"])
    user_id = store.user_id_by_email(email)
    user = store.get_user(user_id) if user_id else None
    if user_id is None or user is None or user.doc.status != UserStatus.ACTIVE:
        return
    at = datetime.now(UTC)
    reset_id, secret = new_id(16), secrets.token_urlsafe(24)
    expires = at + rules.RESET_TTL
    store.put_reset(reset_id, ResetDoc(user_id=user_id, token_hash=crypto.token_hash(secret),
                                       expires_at=expires.isoformat()),
                    at, int((expires + timedelta(days=1)).timestamp()))
    try:
        mail.send_reset(email, f"{reset_id}.{secret}", expires)
    except PermanentSendError:
        logger.warning("password reset e-mail refused by the provider")


def complete_reset(token: str, password: str) -> None:
    """Set the new password, spend the link, end every session and revoke every refresh token of the person."""
    check_policy(password)
    reset_id, _, secret = token.partition(".")
    found = store.take_reset(reset_id) if _valid_shape(reset_id) else None
    if found is None or not hmac.compare_digest(found.token_hash, crypto.token_hash(secret)):
        raise ApiError(404, "reset_link_invalid", "This link is not valid or was used already; ask for a new one.",
                       [ErrorDetail("token", "unknown or used")])
    at = datetime.now(UTC)
    if at >= datetime.fromisoformat(found.expires_at):
        raise ApiError(410, "reset_link_expired", "This link has expired; ask for a new one.",
                       [ErrorDetail("token", "expired")])
    user = store.get_user(found.user_id)
    if user is None or user.doc.status != UserStatus.ACTIVE:
        raise ApiError(404, "reset_link_invalid", "This link is not valid or was used already; ask for a new one.",
                       [ErrorDetail("token", "unknown or used")])
    try:
        staff_pool.set_password(user.doc.email, password)
    except PoolRefused as refused:
        if refused.reason == "invalid_password":
            raise field_error("password", "The password does not meet the policy: " + POLICY) from None
        raise
    store.delete_sessions(found.user_id)
    staff_pool.sign_out_everywhere(user.doc.email)
    audit.put(audit.entry("platform", action="user.password_reset", actor=rules.person_actor(found.user_id,
                                                                                            user.doc.email),
                          at=at, target=f"user:{found.user_id}"))


def _valid_shape(reset_id: str) -> bool:
    return 8 <= len(reset_id) <= 40 and reset_id.isalnum()
