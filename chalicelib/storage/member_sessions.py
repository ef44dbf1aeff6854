"""Member sessions and sign-up claims in the `loyalty` table. Every call takes the tenant explicitly.

<tid>#member#<customer id> / session#<sid>     one signed-in browser of a member: the cookie secret's hash,
                                               created and last used; TTL at its absolute expiry
<tid>#member-signup#<vid>  / claim             a phone verification being turned into a new member (one
                                               sign-up per verified code); TTL a day

No personal data: a session names the customer by id only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pynamodb.exceptions import DeleteError

from chalicelib.storage.documents.common import Document
from chalicelib.storage.tables import LoyaltyRecord, condition_failed, get_item, save_if

CLAIM_SK = "claim"
CLAIM_KEEP_SECONDS = 86_400


class MemberSessionDoc(Document):
    cookie_hash: str
    created_at: str
    last_used_at: str


class SignUpClaimDoc(Document):
    claimed_at: str
    customer_id: str | None = None


@dataclass(frozen=True)
class StoredMemberSession:
    customer_id: str
    session_id: str
    doc: MemberSessionDoc


def member_pk(tenant_id: str, customer_id: str) -> str:
    return f"{tenant_id}#member#{customer_id}"


def _session_sk(session_id: str) -> str:
    return f"session#{session_id}"


def add(tenant_id: str, customer_id: str, session_id: str, doc: MemberSessionDoc, at: datetime,
        expires_epoch: int) -> bool:
    record = LoyaltyRecord(member_pk(tenant_id, customer_id), _session_sk(session_id), kind="member_session",
                           doc=doc.dump(), version=0, at=at, expires_at_epoch=expires_epoch)
    return save_if(record, LoyaltyRecord.pk.does_not_exist())


def get(tenant_id: str, customer_id: str, session_id: str) -> MemberSessionDoc | None:
    rec = get_item(LoyaltyRecord, member_pk(tenant_id, customer_id), _session_sk(session_id))
    if rec is None or rec.kind != "member_session":
        return None
    return MemberSessionDoc.of(rec.doc)


def touch(tenant_id: str, customer_id: str, session_id: str, doc: MemberSessionDoc, at: datetime,
          expires_epoch: int) -> None:
    """Write the last use (only while the session still exists: a signed-out one is never revived)."""
    record = LoyaltyRecord(member_pk(tenant_id, customer_id), _session_sk(session_id), kind="member_session",
                           doc=doc.dump(), version=0, at=at, expires_at_epoch=expires_epoch)
    save_if(record, LoyaltyRecord.pk.exists())


def delete(tenant_id: str, customer_id: str, session_id: str) -> None:
    try:
        LoyaltyRecord(member_pk(tenant_id, customer_id), _session_sk(session_id)).delete()
    except DeleteError as err:
        if not condition_failed(err):
            raise


def delete_all(tenant_id: str, customer_id: str) -> int:
    """End every session of a member (signed out everywhere, erased); returns how many there were."""
    keys = [(r.pk, r.sk) for r in LoyaltyRecord.query(member_pk(tenant_id, customer_id),
                                                      LoyaltyRecord.sk.startswith("session#"))]
    with LoyaltyRecord.batch_write() as batch:
        for pk, sk in keys:
            batch.delete(LoyaltyRecord(pk, sk))
    return len(keys)


def claim_sign_up(tenant_id: str, verification_id: str, at: datetime) -> bool:
    """The first sign-up with this verified code; False if another one holds it."""
    record = LoyaltyRecord(f"{tenant_id}#member-signup#{verification_id}", CLAIM_SK, kind="member_signup",
                           doc=SignUpClaimDoc(claimed_at=at.isoformat()).dump(), version=0, at=at,
                           expires_at_epoch=int(at.timestamp()) + CLAIM_KEEP_SECONDS)
    return save_if(record, LoyaltyRecord.pk.does_not_exist())


def get_claim(tenant_id: str, verification_id: str) -> SignUpClaimDoc | None:
    rec = get_item(LoyaltyRecord, f"{tenant_id}#member-signup#{verification_id}", CLAIM_SK)
    return SignUpClaimDoc.of(rec.doc) if rec is not None else None


def finish_claim(tenant_id: str, verification_id: str, customer_id: str, at: datetime) -> None:
    record = LoyaltyRecord(f"{tenant_id}#member-signup#{verification_id}", CLAIM_SK, kind="member_signup",
                           doc=SignUpClaimDoc(claimed_at=at.isoformat(), customer_id=customer_id).dump(), version=0,
                           at=at, expires_at_epoch=int(at.timestamp()) + CLAIM_KEEP_SECONDS)
    record.save()


def release_claim(tenant_id: str, verification_id: str) -> None:
    """A refused sign-up gives its claim back (nothing was created), so the corrected form can go on."""
    try:
        LoyaltyRecord(f"{tenant_id}#member-signup#{verification_id}", CLAIM_SK).delete()
    except DeleteError as err:
        if not condition_failed(err):
            raise
