"""Signing a person in: the password (checked by Cognito), then the MFA code, then a session.

One answer for every refused password, unknown e-mail, disabled account or
person without a membership (`invalid_credentials`), each costing one Cognito
call, so neither the answer nor its timing tells whether an e-mail exists.
Attempts are limited per client address (every attempt) and per account
(failures), with a 429 and `Retry-After` when a limit is reached. An MFA code
is accepted once: a replay within its validity is refused before Cognito is
asked.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NoReturn

import segno

from chalicelib.domain import identity as rules
from chalicelib.domain.identity import UserStatus
from chalicelib.domain.ids import new_id
from chalicelib.errors import ApiError, ErrorDetail
from chalicelib.schemas.identity import SignInStep
from chalicelib.services.identity import crypto, sessions
from chalicelib.services.tenancy.keys import tenant_state
from chalicelib.storage import identity as store
from chalicelib.storage import staff_pool
from chalicelib.storage.documents.identity import MembershipDoc, PendingSignInDoc, UserDoc
from chalicelib.storage.staff_pool import PoolRefused, Tokens

ISSUER = "Loyalty"
_INVALID = ("invalid_credentials", "The e-mail or password is wrong, or the account is disabled.")


@dataclass(frozen=True)
class Outcome:
    step: SignInStep
    set_cookie: str | None = None


def password_step(email: str, password: str, source_ip: str, user_agent: str) -> Outcome:
    """Check the password; answer what comes next (MFA, enrolling MFA, or the session when no MFA is needed)."""
    at = _now()
    _limit_address(source_ip, at)
    account_key = _account_key(email)
    _check_account(account_key, at)
    try:
        result = staff_pool.password_sign_in(email, password, source_ip, user_agent)
    except PoolRefused as refused:
        if refused.reason not in ("not_authorized", "invalid_password"):
            raise _code_refused(refused, 0) from None
        _fail(account_key, at)
    user_id = store.user_id_by_email(email)
    person = store.load_person(user_id, None) if user_id else None
    memberships = [m for m in person.memberships if m.status == "active"] if person else []
    if person is None or person.user.doc.status != UserStatus.ACTIVE or not memberships:
        _fail(account_key, at)
    assert person is not None
    if result.challenge_session is not None:
        sign_in_id = _pending(person.user_id, email, "mfa", at, source_ip, user_agent,
                              cognito_session=result.challenge_session)
        return Outcome(SignInStep(next="mfa", sign_in_id=sign_in_id, expires_at=at + rules.SIGN_IN_TTL))
    assert result.tokens is not None
    if _mfa_required(memberships):
        return _enrolment(person.user_id, email, result.tokens, at, source_ip, user_agent)
    started = sessions.start(person.user_id, person.user.doc, memberships, result.tokens.refresh, source_ip,
                             user_agent)
    return Outcome(SignInStep(next="done", session=started.view), started.set_cookie)


def code_step(sign_in_id: str, code: str, source_ip: str, user_agent: str) -> Outcome:
    """The MFA code of a pending sign-in (or the first code of a new authenticator): the session on success."""
    at = _now()
    _limit_address(source_ip, at)
    found = store.get_pending(sign_in_id)
    if found is None or at - found[2] > rules.SIGN_IN_TTL:
        raise _expired()
    pending, tries, _ = found
    if not store.count_try(sign_in_id, rules.MFA_TRIES):
        store.consume_pending(sign_in_id)
        raise ApiError(429, "too_many_attempts", "Too many wrong codes; sign in again with your password.",
                       headers={"Retry-After": "0"})
    tries_left = rules.MFA_TRIES - tries - 1
    if pending.step == "mfa":
        tokens = _answer_challenge(pending, sign_in_id, code, at, tries_left)
    else:
        tokens = _finish_enrolment(pending, sign_in_id, code, at, tries_left)
    if not store.consume_pending(sign_in_id):
        raise _expired()
    person = store.load_person(pending.user_id, None)
    memberships = [m for m in person.memberships if m.status == "active"] if person else []
    if person is None or person.user.doc.status != UserStatus.ACTIVE or not memberships:
        raise ApiError(401, *_INVALID)
    started = sessions.start(pending.user_id, person.user.doc, memberships, tokens.refresh, source_ip, user_agent)
    return Outcome(SignInStep(next="done", session=started.view), started.set_cookie)


def qr_svg(uri: str) -> str:
    """An otpauth URI as an inline SVG QR code (no script, no external reference)."""
    return str(segno.make(uri, error="m").svg_inline(scale=4, title="QR", dark="#000", light="#fff"))


# --- helpers ----------------------------------------------------------------------------------------------------

def _now() -> datetime:
    return datetime.now(UTC)


def _account_key(email: str) -> str:
    return "acct#" + hashlib.sha256(email.encode()).hexdigest()[:32]


def _too_many(seconds: int, message: str) -> ApiError:
    return ApiError(429, "too_many_attempts", message, headers={"Retry-After": str(seconds)})


def _limit_address(source_ip: str, at: datetime) -> None:
    window, end, left = rules.lockout_window(at)
    if not store.count_attempt(f"ip#{source_ip}", window, rules.ADDRESS_ATTEMPTS, at, end + 60):
        raise _too_many(left, f"Too many sign-in attempts from this address; try again in {left // 60 + 1} min.")


def _check_account(account_key: str, at: datetime) -> None:
    window, _, left = rules.lockout_window(at)
    if store.attempts_in_window(account_key, window) >= rules.ACCOUNT_ATTEMPTS:
        raise _too_many(left, f"Too many failed sign-ins for this account; try again in {left // 60 + 1} min.")


def _fail(account_key: str, at: datetime) -> NoReturn:
    window, end, _ = rules.lockout_window(at)
    store.count_attempt(account_key, window, rules.ACCOUNT_ATTEMPTS + 1, at, end + 60)
    raise ApiError(401, *_INVALID)


def _mfa_required(memberships: list[MembershipDoc]) -> bool:
    parsed = [store.membership_of(m) for m in memberships]
    strict = [m.scope_id for m in parsed if m.role.value == "support" and _tenant_wants_mfa(m.scope_id)]
    return rules.mfa_required(parsed, strict)


def _tenant_wants_mfa(tenant_id: str) -> bool:
    from chalicelib.storage import directory

    status, _ = tenant_state(tenant_id)
    tenant = directory.get_tenant(tenant_id) if status else None
    return bool(tenant and tenant.support_mfa)


def _pending(user_id: str, email: str, step: str, at: datetime, source_ip: str, user_agent: str, *,
             cognito_session: str = "", access: str = "", refresh: str = "") -> str:
    sign_in_id = new_id(24)
    doc = PendingSignInDoc(user_id=user_id, email=email, step=step,
                           cognito_session=crypto.seal(cognito_session, sign_in_id),
                           access_sealed=crypto.seal(access, sign_in_id),
                           refresh_sealed=crypto.seal(refresh, sign_in_id), source_ip=source_ip[:60],
                           user_agent=user_agent[:200])
    store.put_pending(sign_in_id, doc, at, int((at + rules.SIGN_IN_TTL + timedelta(minutes=5)).timestamp()))
    return sign_in_id


def _enrolment(user_id: str, email: str, tokens: Tokens, at: datetime, source_ip: str, user_agent: str) -> Outcome:
    secret = staff_pool.start_enrolment(tokens.access)
    sign_in_id = _pending(user_id, email, "mfa_setup", at, source_ip, user_agent, access=tokens.access,
                          refresh=tokens.refresh)
    uri = rules.otpauth_uri(secret, email, ISSUER)
    return Outcome(SignInStep(next="mfa_setup", sign_in_id=sign_in_id, expires_at=at + rules.SIGN_IN_TTL,
                              secret=secret, otpauth_uri=uri, qr_svg=qr_svg(uri)))


def _answer_challenge(pending: PendingSignInDoc, sign_in_id: str, code: str, at: datetime, tries_left: int
                      ) -> Tokens:
    challenge = crypto.unseal(pending.cognito_session, sign_in_id)
    if challenge is None:
        raise _expired()
    _spend(pending.user_id, code, at)
    try:
        return staff_pool.answer_mfa(pending.email, challenge, code)
    except PoolRefused as refused:
        raise _code_refused(refused, tries_left) from None


def _finish_enrolment(pending: PendingSignInDoc, sign_in_id: str, code: str, at: datetime, tries_left: int
                      ) -> Tokens:
    access = crypto.unseal(pending.access_sealed, sign_in_id)
    refresh = crypto.unseal(pending.refresh_sealed, sign_in_id)
    if access is None or refresh is None:
        raise _expired()
    _spend(pending.user_id, code, at)
    try:
        staff_pool.finish_enrolment(pending.email, access, code)
    except PoolRefused as refused:
        raise _code_refused(refused, tries_left) from None
    found = store.get_user(pending.user_id)
    if found is not None and not found.doc.mfa_enrolled:
        doc = UserDoc.load(found.doc.dump())
        doc.mfa_enrolled = True
        store.save_user(pending.user_id, doc, found.version, at)
    return Tokens(access, refresh)


def _spend(user_id: str, code: str, at: datetime) -> None:
    expires = int((at + rules.TOTP_REPLAY_WINDOW).timestamp())
    if not store.spend_code(user_id, code, at, expires):
        raise ApiError(401, "code_already_used", "This code was used already; wait for the next one (30 s).",
                       [ErrorDetail("code", "already used")])


def _code_refused(refused: PoolRefused, tries_left: int) -> ApiError:
    if refused.reason == "code_mismatch":
        return ApiError(401, "wrong_code", f"The code is wrong; {max(tries_left, 0)} tries left.",
                        [ErrorDetail("code", "wrong code")])
    if refused.reason in ("expired", "not_authorized"):
        return _expired()
    if refused.reason == "throttled":
        return _too_many(30, "Too many attempts; wait a moment.")
    return ApiError(503, "identity_unavailable", "Sign-in is temporarily unavailable; retry.",
                    headers={"Retry-After": "1"})


def _expired() -> ApiError:
    return ApiError(401, "sign_in_expired", "This sign-in has expired or was used; start again with your password.")
