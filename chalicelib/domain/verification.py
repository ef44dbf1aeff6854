"""Phone verification rules, pure: one-time codes, their keyed hashes, the attempt budget and the SMS text.

A public form may only act on a customer once the person proved they hold
the phone: a 6-digit code goes to the phone by SMS, valid 5 minutes, at most
5 tries. The code is never stored, only an HMAC of it bound to the tenant,
the verification and the phone, so a code for one phone never verifies
another and a leaked table does not reveal codes. A correct code earns a
short-lived signed proof that one later action (a survey response, a member
sign-in) consumes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

CODE_DIGITS = 6
CODE_TTL = timedelta(minutes=5)
MAX_ATTEMPTS = 5
PROOF_TTL = timedelta(minutes=15)
"""How long a verified phone may be used by the action it was verified for."""
WINDOW_SECONDS = 3600
CODES_PER_PHONE = 5
"""Codes sent to one phone per hour, whichever address asks."""
CODES_PER_ADDRESS = 10
"""Codes one client address may ask for per hour, whatever the phones."""
CODES_PER_TENANT = 1000
"""All codes of one tenant per hour: a ceiling on what SMS pumping can cost a tenant."""
PROOF_PURPOSE = "phone"


class Status(StrEnum):
    PENDING = "pending"
    VERIFIED = "verified"
    USED = "used"


class Verdict(StrEnum):
    """What a submitted code means for a verification."""

    VERIFIED = "verified"
    WRONG = "wrong"
    EXPIRED = "expired"
    EXHAUSTED = "exhausted"
    SETTLED = "settled"
    """Already verified (or used): a code is good once."""


@dataclass(frozen=True)
class Attempt:
    """The state of a stored verification as the check reads it."""

    status: Status
    attempts: int
    expires_at: datetime
    code_hash: str


def new_code() -> str:
    """A uniformly random 6-digit code (leading zeros kept)."""
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def code_hash(secret: str, tenant_id: str, verification_id: str, phone: str, code: str) -> str:
    """HMAC-SHA256 of the code bound to its tenant, verification and phone: the only form the code is kept in."""
    message = f"{tenant_id}|{verification_id}|{phone}|{code}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def keyed(secret: str, kind: str, value: str) -> str:
    """A keyed hash of a phone or an address for rate-limit keys: counted without being stored in clear."""
    return hmac.new(secret.encode(), f"{kind}|{value}".encode(), hashlib.sha256).hexdigest()[:32]


def judge(state: Attempt, submitted_hash: str, now: datetime) -> Verdict:
    """The verdict on one submitted code; every verdict but SETTLED spends one of the attempts."""
    if state.status is not Status.PENDING:
        return Verdict.SETTLED
    if state.attempts >= MAX_ATTEMPTS:
        return Verdict.EXHAUSTED
    if now >= state.expires_at:
        return Verdict.EXPIRED
    if hmac.compare_digest(state.code_hash, submitted_hash):
        return Verdict.VERIFIED
    return Verdict.WRONG


def attempts_left(state: Attempt) -> int:
    """Tries left after the one just judged."""
    return max(0, MAX_ATTEMPTS - state.attempts - 1)


SMS_TEXT = {
    "ru": "{code} — код подтверждения телефона для «{name}». Действует 5 минут. Никому не сообщайте его.",  # noqa: RUF001
    "en": "{code} is your phone verification code for {name}. Valid for 5 minutes. Do not share it.",
}


def sms_text(code: str, tenant_name: str, language: str) -> str:
    """The SMS: the code first (phones offer to copy it), who asks for it, how long it lasts, a warning."""
    return SMS_TEXT.get(language, SMS_TEXT["ru"]).format(code=code, name=tenant_name)
