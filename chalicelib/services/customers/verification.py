"""Phone verification for public forms: send a one-time code by SMS, check it, spend the proof on one action.

The flow a form follows:

1. `start`: the person types a phone; a 6-digit code goes to it by SMS
   (the tenant's SMS gateway and sender id). The answer is the same whether
   or not the phone belongs to a customer: no customer is looked up at all.
   Codes are rate-limited per client address, per phone and per tenant.
2. `check`: the person types the code; a right one (within 5 minutes, 5
   tries) earns a signed proof naming the tenant, the verification and the
   phone, valid 15 minutes.
3. The action (a survey response today, a member sign-in later) calls
   `proven_phone` to read the proof, validates everything else, then
   `spend` marks the verification used, so one proof acts once.
"""

from __future__ import annotations

import re
from datetime import datetime

from chalicelib import clock
from chalicelib.domain import links
from chalicelib.domain import verification as rules
from chalicelib.domain.ids import is_slug, new_id
from chalicelib.domain.rate_limits import fixed_window
from chalicelib.errors import ApiError, ErrorDetail
from chalicelib.schemas.tenancy import TenantStatus
from chalicelib.schemas.verification import PhoneVerified, VerificationCheck, VerificationStart, VerificationStarted
from chalicelib.services.marketing import channels, mail_settings
from chalicelib.services.tenancy import signing
from chalicelib.storage import directory
from chalicelib.storage import verifications as store

PURPOSE = "public_form"
ID_PATTERN = re.compile(r"^[a-z0-9]{8,40}$")
CHECK_RACES = 3
"""Re-reads allowed when a parallel check spent the attempt we read: past that the check answers busy."""
SEND_RETRY_AFTER = "30"


def start(tenant_id: str, body: VerificationStart, source_ip: str) -> tuple[int, VerificationStarted]:
    """Send a code to the phone; the same answer for a known and an unknown phone."""
    name = _active_tenant_name(tenant_id)
    secret = signing.link_secret()
    at = clock.now()
    _count(tenant_id, "a" + rules.keyed(secret, "address", source_ip), rules.CODES_PER_ADDRESS, at, "source",
           "from this address")
    _count(tenant_id, "p" + rules.keyed(secret, "phone", body.phone), rules.CODES_PER_PHONE, at, "phone",
           "for this phone")
    _count(tenant_id, "tenant", rules.CODES_PER_TENANT, at, "source", "on this form")
    verification_id, code = new_id(20), rules.new_code()
    expires_at = at + rules.CODE_TTL
    if not store.add(tenant_id, verification_id, rules.keyed(secret, "phone", body.phone),
                     rules.code_hash(secret, tenant_id, verification_id, body.phone, code), PURPOSE, at, expires_at):
        raise ApiError(503, "try_again", "Please ask for the code again.", headers={"Retry-After": "1"})
    _send(tenant_id, body.phone, rules.sms_text(code, name, body.language))
    return 201, VerificationStarted(verification_id=verification_id, expires_at=expires_at,
                                    attempts=rules.MAX_ATTEMPTS, message="A code was sent to this phone by SMS.")


def check(tenant_id: str, verification_id: str, body: VerificationCheck) -> PhoneVerified:
    """Judge one code: a right one earns the proof; every try counts, parallel tries included."""
    if not ID_PATTERN.fullmatch(verification_id):
        raise _not_found()
    secret = signing.link_secret()
    submitted = rules.code_hash(secret, tenant_id, verification_id, body.phone, body.code)
    for _ in range(CHECK_RACES):
        at = clock.now()
        found = store.get(tenant_id, verification_id)
        if found is None:
            raise _not_found()
        verdict = rules.judge(found.state, submitted, at)
        _refuse_settled(verdict)
        if store.spend_attempt(tenant_id, verification_id, found.state.attempts, verdict is rules.Verdict.VERIFIED,
                               at):
            return _outcome(tenant_id, verification_id, body.phone, verdict, found.state, secret, at)
    raise ApiError(409, "verification_busy", "Another check of this code is under way; try again.",
                   headers={"Retry-After": "1"})


def proven_phone(tenant_id: str, proof: str, field_name: str) -> tuple[str, str]:
    """(verification id, phone) of a valid proof for this tenant; 400 at `field_name` otherwise. Writes nothing."""
    try:
        claims = links.verify(signing.link_secret(), rules.PROOF_PURPOSE, proof, clock.now())
    except links.BadLink:
        raise _invalid_proof(field_name) from None
    if claims.get("t") != tenant_id or not isinstance(claims.get("v"), str) or not isinstance(claims.get("ph"), str):
        raise _invalid_proof(field_name)
    return str(claims["v"]), str(claims["ph"])


def spend(tenant_id: str, verification_id: str, used_for: str, field_name: str) -> None:
    """Mark the verified phone used by one action; 409 if another action spent it, or this one finished.

    Spent by the same action that has not finished counts as spent now: a
    retry of a request that died between this step and `finish` goes on
    (the action itself refuses a second result, its record being keyed by
    the verification).
    """
    if store.consume(tenant_id, verification_id, used_for, clock.now()):
        return
    found = store.get(tenant_id, verification_id)
    if (found is None or found.state.status is not rules.Status.USED or found.used_for != used_for
            or found.finished):
        raise ApiError(409, "verification_used", "This phone verification was already used; verify the phone "
                       "again.", [ErrorDetail(field_name, "already used")])


def finish(tenant_id: str, verification_id: str) -> None:
    """The action recorded its result: the proof can no longer be retried, only refused as a replay."""
    store.finish(tenant_id, verification_id, clock.now())


def _not_found() -> ApiError:
    return ApiError(404, "verification_not_found", "No such verification; ask for a new code.")


def _active_tenant_name(tenant_id: str) -> str:
    """The name the SMS signs with; an unknown, malformed or inactive tenant is one 404."""
    tenant = directory.get_tenant(tenant_id) if is_slug(tenant_id) else None
    if tenant is None or tenant.status is not TenantStatus.ACTIVE:
        raise ApiError(404, "not_found", "No such tenant.")
    return tenant.name


def _count(tenant_id: str, key: str, limit: int, at: datetime, field_name: str, what: str) -> None:
    """Count one code under a fixed hourly window, or 429 with the seconds until the window ends."""
    window = fixed_window(at, rules.WINDOW_SECONDS)
    if not store.count_send(tenant_id, key, window.index, limit, window.expires_at_epoch, at):
        raise ApiError(429, "rate_limited", f"Too many codes {what}; retry later.",
                       [ErrorDetail(field_name, f"at most {limit} codes per hour")],
                       headers={"Retry-After": str(window.retry_after)})


def _send(tenant_id: str, phone: str, text: str) -> None:
    """The code goes now, as a transactional SMS (no quiet hours, no weekly cap); a failure is one clear error."""
    config = mail_settings.get(tenant_id)
    try:
        channels.sms_provider(config.sms_provider).send_sms(phone, text, config.sms_sender_id, True)
    except channels.TransientSendError:
        raise ApiError(503, "sms_unavailable", "The SMS could not be sent just now; ask for a new code shortly.",
                       headers={"Retry-After": SEND_RETRY_AFTER}) from None
    except channels.PermanentSendError:
        raise ApiError(422, "phone_rejected", "The SMS gateway refused this phone number.",
                       [ErrorDetail("phone", "cannot receive SMS")]) from None


def _refuse_settled(verdict: rules.Verdict) -> None:
    """Verdicts that spend no attempt: the code was already good once, or no tries are left."""
    if verdict is rules.Verdict.SETTLED:
        raise ApiError(409, "code_already_used", "This code was already used; ask for a new one.",
                       [ErrorDetail("code", "already used")])
    if verdict is rules.Verdict.EXHAUSTED:
        raise ApiError(429, "too_many_attempts", "Too many wrong codes; ask for a new one.",
                       [ErrorDetail("code", f"at most {rules.MAX_ATTEMPTS} tries")])


def _outcome(tenant_id: str, verification_id: str, phone: str, verdict: rules.Verdict, state: rules.Attempt,
             secret: str, at: datetime) -> PhoneVerified:
    if verdict is rules.Verdict.EXPIRED:
        raise ApiError(400, "code_expired", "This code has expired; ask for a new one.",
                       [ErrorDetail("code", "expired")])
    if verdict is rules.Verdict.WRONG:
        left = rules.attempts_left(state)
        issue = f"wrong code, {left} tries left" if left else "wrong code, no tries left: ask for a new one"
        raise ApiError(400, "wrong_code", "The code is not right.", [ErrorDetail("code", issue)])
    expires_at = at + rules.PROOF_TTL
    proof = links.sign(secret, rules.PROOF_PURPOSE, {"t": tenant_id, "v": verification_id, "ph": phone}, expires_at)
    return PhoneVerified(phone=phone, proof=proof, expires_at=expires_at)


def _invalid_proof(field_name: str) -> ApiError:
    return ApiError(400, "invalid_verification", "The phone verification is not valid; verify the phone again.",
                    [ErrorDetail(field_name, "invalid or expired")])
