"""Phone verifications in the `loyalty` table. Every call takes the tenant explicitly.

<tid>#verification#<vid>      / code            one code sent: its keyed hash, the phone's keyed hash,
                                                attempts, status (pending, verified, used); TTL one day
<tid>#verification-rate#<key> / window#<hour>   codes sent per phone, per address or per tenant in one
                                                hour (TTL)

No phone number and no code is stored in clear: the loyalty table holds no
personal data (the phone's keyed hash cannot be reversed without the stage's
secret).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pynamodb.exceptions import UpdateError
from pynamodb.expressions.update import Action

from chalicelib.domain.verification import Attempt, Status
from chalicelib.storage.documents.verification import VerificationDoc
from chalicelib.storage.tables import LoyaltyRecord, condition_failed, count_in_window, get_item, save_if

CODE_SK = "code"
KEEP_SECONDS = 86_400
"""A spent verification stays a day (then TTL), long enough to refuse its replay with a clear answer."""


@dataclass(frozen=True)
class Verification:
    """A stored verification as the service reads it."""

    tenant_id: str
    verification_id: str
    phone_hash: str
    purpose: str
    state: Attempt
    used_for: str | None
    finished: bool
    """The action that spent it has recorded its result: a retry of that action is a replay now."""


def verification_pk(tenant_id: str, verification_id: str) -> str:
    return f"{tenant_id}#verification#{verification_id}"


def rate_pk(tenant_id: str, key: str) -> str:
    return f"{tenant_id}#verification-rate#{key}"


def add(tenant_id: str, verification_id: str, phone_hash: str, code_hash: str, purpose: str, at: datetime,
        expires_at: datetime) -> bool:
    """A new pending verification; False if the id is taken (a random id: practically never)."""
    doc = VerificationDoc(phone_hash=phone_hash, code_hash=code_hash, purpose=purpose,
                          status=Status.PENDING.value, expires_at=expires_at.isoformat())
    record = LoyaltyRecord(verification_pk(tenant_id, verification_id), CODE_SK, kind="verification", doc=doc.dump(),
                           version=0, at=at, expires_at_epoch=int(at.timestamp()) + KEEP_SECONDS)
    return save_if(record, LoyaltyRecord.pk.does_not_exist())


def get(tenant_id: str, verification_id: str) -> Verification | None:
    rec = get_item(LoyaltyRecord, verification_pk(tenant_id, verification_id), CODE_SK)
    if rec is None:
        return None
    doc = VerificationDoc.of(rec.doc)
    state = Attempt(status=Status(doc.status), attempts=int(rec.version),
                    expires_at=datetime.fromisoformat(doc.expires_at), code_hash=doc.code_hash)
    return Verification(tenant_id=tenant_id, verification_id=verification_id, phone_hash=doc.phone_hash,
                        purpose=doc.purpose, state=state, used_for=doc.used_for,
                        finished="finished_at" in doc.model_fields_set)


def spend_attempt(tenant_id: str, verification_id: str, attempts_read: int, verified: bool, at: datetime) -> bool:
    """Count one attempt, and mark the verification verified when the code was right.

    Conditional on the attempt count read and on the status still being
    pending, so parallel guesses cannot share one attempt: the loser re-reads.
    """
    actions: list[Action] = [LoyaltyRecord.version.set(attempts_read + 1)]
    if verified:
        actions += [LoyaltyRecord.doc["status"].set(Status.VERIFIED.value),
                    LoyaltyRecord.doc["verified_at"].set(at.isoformat())]
    try:
        LoyaltyRecord(verification_pk(tenant_id, verification_id), CODE_SK).update(
            actions=actions, condition=(LoyaltyRecord.version == attempts_read)
            & (LoyaltyRecord.doc["status"] == Status.PENDING.value))
    except UpdateError as err:
        if condition_failed(err):
            return False
        raise
    return True


def consume(tenant_id: str, verification_id: str, used_for: str, at: datetime) -> bool:
    """Spend a verified phone on one action; False if it is not verified or was already spent."""
    try:
        LoyaltyRecord(verification_pk(tenant_id, verification_id), CODE_SK).update(
            actions=[LoyaltyRecord.doc["status"].set(Status.USED.value), LoyaltyRecord.doc["used_for"].set(used_for),
                     LoyaltyRecord.doc["used_at"].set(at.isoformat())],
            condition=LoyaltyRecord.doc["status"] == Status.VERIFIED.value)
    except UpdateError as err:
        if condition_failed(err):
            return False
        raise
    return True


def finish(tenant_id: str, verification_id: str, at: datetime) -> None:
    """The action that spent the verification has recorded its result."""
    LoyaltyRecord(verification_pk(tenant_id, verification_id), CODE_SK).update(
        actions=[LoyaltyRecord.doc["finished_at"].set(at.isoformat())], condition=LoyaltyRecord.pk.exists())


def count_send(tenant_id: str, key: str, window: int, limit: int, expires_at_epoch: int, at: datetime) -> bool:
    """Count one code sent under `key` in a fixed window; False (nothing counted) once `limit` is reached."""
    return count_in_window(rate_pk(tenant_id, key), window, "verification_rate", limit, expires_at_epoch, at)
