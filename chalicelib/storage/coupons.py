"""Coupon campaigns, codes and their uses (the `loyalty` table). Every call takes the tenant.

<tid>#coupons                    / campaign#<cid>  the campaign (Campaign fields), versioned
<tid>#coupon#<CODE>              / coupon          a code: its campaign and uses so far, versioned;
                                                   indexed by campaign (gsi1) so a campaign's codes can be listed
<tid>#coupon-use#<cid>#<holder>  / use             how many times one customer (or card) used a campaign
<tid>#coupon-grant#<key>         / grant           the code one grant key gave (exactly once per key)
<scope>#customer#<id>            / coupon#<tid>#<time>#<key hash>
                                                   a code given to the customer (in the customer's own partition,
                                                   so the member site lists them newest first and erasure deletes them)

A purchase that applies a coupon changes the code's and the customer's use
counts in its own transaction, each guarded by the version it read: two tills
cannot both spend the last use.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pynamodb.exceptions import PutError

from chalicelib.schemas.coupons import Campaign
from chalicelib.storage import pagination, transactions
from chalicelib.storage.customers import customer_pk, move_items
from chalicelib.storage.documents.common import Versioned
from chalicelib.storage.documents.coupons import CouponCode, CouponGiven, CouponGrant, CustomerUses
from chalicelib.storage.pagination import StoredPage
from chalicelib.storage.tables import LoyaltyRecord, doc_of, get_item
from chalicelib.storage.transactions import TransactionFailed, Tx

CAMPAIGN_KIND = "coupon_campaign"
CODE_SK = "coupon"
USE_SK = "use"


def campaigns_pk(tenant_id: str) -> str:
    return f"{tenant_id}#coupons"


def campaign_sk(campaign_id: str) -> str:
    return f"campaign#{campaign_id}"


def code_pk(tenant_id: str, code: str) -> str:
    return f"{tenant_id}#coupon#{code}"


def campaign_codes_pk(tenant_id: str, campaign_id: str) -> str:
    return f"{tenant_id}#campaign#{campaign_id}"


def use_pk(tenant_id: str, campaign_id: str, holder: str) -> str:
    return f"{tenant_id}#coupon-use#{campaign_id}#{holder}"


@dataclass
class CodeState:
    """A code as read: its campaign, its uses so far and the version a use must still find."""

    code: str
    campaign_id: str
    uses: int
    version: int


def _campaign(rec: LoyaltyRecord) -> Campaign:
    # Not strict: the stored document holds enum values and ISO times as JSON text.
    return Campaign.model_validate(doc_of(rec), strict=False)


def get_campaign(tenant_id: str, campaign_id: str) -> Versioned[Campaign] | None:
    rec = get_item(LoyaltyRecord, campaigns_pk(tenant_id), campaign_sk(campaign_id))
    return Versioned(_campaign(rec), int(rec.version)) if rec else None


def _code_state(code: str, rec: LoyaltyRecord) -> CodeState:
    doc = CouponCode.load(doc_of(rec))
    return CodeState(code=code, campaign_id=doc.campaign_id, uses=doc.uses, version=int(rec.version))


def get_code(tenant_id: str, code: str) -> CodeState | None:
    rec = get_item(LoyaltyRecord, code_pk(tenant_id, code), CODE_SK)
    return _code_state(code, rec) if rec else None


def customer_uses(tenant_id: str, campaign_id: str, holder: str) -> Versioned[CustomerUses]:
    """One customer's uses of a campaign and their version; 0 uses at version 0 when never used."""
    rec = get_item(LoyaltyRecord, use_pk(tenant_id, campaign_id, holder), USE_SK)
    if rec is None:
        return Versioned(CustomerUses(uses=0), 0)
    return Versioned(CustomerUses.load(doc_of(rec)), int(rec.version))


def code_record(tenant_id: str, code: str, campaign_id: str, at: datetime) -> LoyaltyRecord:
    """A new code, unused, listed under its campaign."""
    return LoyaltyRecord(code_pk(tenant_id, code), CODE_SK, kind="coupon",
                         doc=CouponCode(campaign_id=campaign_id, uses=0).dump(), version=1, at=at,
                         gsi1pk=campaign_codes_pk(tenant_id, campaign_id), gsi1sk=code)


def count_code_use(tx: Tx, tenant_id: str, state: CodeState, delta: int, at: datetime) -> None:
    """Set the code's uses to uses + delta, if nobody changed it since it was read."""
    rec = code_record(tenant_id, state.code, state.campaign_id, at)
    rec.doc = CouponCode(campaign_id=state.campaign_id, uses=max(state.uses + delta, 0)).dump()
    rec.version = state.version + 1
    tx.save(rec, condition=LoyaltyRecord.version == state.version)


def count_customer_use(tx: Tx, tenant_id: str, campaign_id: str, holder: str, read: Versioned[CustomerUses],
                       delta: int, at: datetime) -> None:
    """Set one customer's uses of a campaign to uses + delta, guarded by the version read (0: must not exist)."""
    version = read.version
    rec = LoyaltyRecord(use_pk(tenant_id, campaign_id, holder), USE_SK, kind="coupon_use",
                        doc=CustomerUses(uses=max(read.doc.uses + delta, 0)).dump(), version=version + 1, at=at)
    condition = LoyaltyRecord.pk.does_not_exist() if version == 0 else LoyaltyRecord.version == version
    tx.save(rec, condition=condition)


def campaign_doc(campaign: Campaign) -> dict[str, Any]:
    return campaign.model_dump(mode="json")


# --- campaign management ------------------------------------------------------------

def campaign_record(tenant_id: str, campaign: Campaign, version: int, at: datetime) -> LoyaltyRecord:
    return LoyaltyRecord(campaigns_pk(tenant_id), campaign_sk(campaign.id), kind=CAMPAIGN_KIND,
                         doc=campaign_doc(campaign), version=version, at=at)


def add_campaign(tx: Tx, tenant_id: str, campaign: Campaign, at: datetime) -> None:
    """A new campaign; the transaction fails on this item if the id is taken."""
    tx.save(campaign_record(tenant_id, campaign, 1, at), condition=LoyaltyRecord.pk.does_not_exist())


def add_code(tx: Tx, tenant_id: str, code: str, campaign_id: str, at: datetime) -> None:
    """A new code; the transaction fails on this item if the tenant already has it (codes are never overwritten)."""
    tx.save(code_record(tenant_id, code, campaign_id, at), condition=LoyaltyRecord.pk.does_not_exist())


def replace_campaign(tx: Tx, tenant_id: str, campaign: Campaign, version: int, at: datetime) -> None:
    """Replace a campaign read at `version`; the transaction fails on this item if it changed since."""
    tx.save(campaign_record(tenant_id, campaign, version + 1, at), condition=LoyaltyRecord.version == version)


def save_campaign(tenant_id: str, campaign: Campaign, version: int, at: datetime) -> bool:
    """Replace a campaign read at `version`; False if anyone changed it since (the caller re-reads)."""
    try:
        campaign_record(tenant_id, campaign, version + 1, at).save(condition=LoyaltyRecord.version == version)
    except PutError as err:
        if err.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise
    return True


def list_campaigns(tenant_id: str, limit: int, cursor: str | None) -> StoredPage[Campaign]:
    """The tenant's campaigns by id."""
    pk = campaigns_pk(tenant_id)
    records, next_cursor = pagination.page_of(
        lambda size, start: LoyaltyRecord.query(pk, LoyaltyRecord.sk.startswith("campaign#"), limit=size,
                                                page_size=size, last_evaluated_key=start, consistent_read=True),
        limit=limit, cursor=cursor, hash_attr="pk", hash_value=pk, key_attrs=("pk", "sk"),
    )
    return StoredPage([_campaign(r) for r in records], next_cursor)


def list_codes(tenant_id: str, campaign_id: str, limit: int, cursor: str | None
               ) -> StoredPage[CodeState]:
    """A campaign's codes in code order, through the gsi1 index (eventually consistent, like every GSI)."""
    hash_value = campaign_codes_pk(tenant_id, campaign_id)
    records, next_cursor = pagination.page_of(
        lambda size, start: LoyaltyRecord.due_and_partner.query(hash_value, limit=size, page_size=size,
                                                                last_evaluated_key=start),
        limit=limit, cursor=cursor, hash_attr="gsi1pk", hash_value=hash_value,
        key_attrs=("gsi1pk", "gsi1sk", "pk", "sk"),
    )
    return StoredPage([_code_state(str(rec.gsi1sk), rec) for rec in records], next_cursor)


class BatchOutcome(StrEnum):
    WRITTEN = "written"
    CAMPAIGN_CHANGED = "campaign_changed"
    """Someone else saved the campaign since it was read (another run of the job, or an admin's edit)."""
    COLLISION = "collision"
    """A code of the batch already exists in the tenant; nothing was written."""


def add_codes_counted(tenant_id: str, campaign: Campaign, version: int, codes: list[str],
                      at: datetime) -> BatchOutcome:
    """Write new codes and the campaign's new progress in one transaction: all of it, or nothing.

    `campaign` already carries the progress that counts `codes`. Item 0 is the
    campaign (version condition), then one put per code (must not exist), so at
    most 99 codes per call.
    """
    if len(codes) > 99:
        raise ValueError("at most 99 codes per transaction (100 items with the campaign)")

    def build(tx: Tx) -> None:
        replace_campaign(tx, tenant_id, campaign, version, at)
        for code in codes:
            add_code(tx, tenant_id, code, campaign.id, at)

    try:
        transactions.write(build)
    except TransactionFailed as err:
        if err.condition_failed(0):
            return BatchOutcome.CAMPAIGN_CHANGED
        if any(err.condition_failed(i) for i in range(1, len(codes) + 1)):
            return BatchOutcome.COLLISION
        raise
    return BatchOutcome.WRITTEN


GRANT_SK = "grant"


def grant_pk(tenant_id: str, grant_key: str) -> str:
    """A minted code's grant marker: one code per grant key (e.g. one survey reward per customer)."""
    return f"{tenant_id}#coupon-grant#{grant_key}"


def granted_code(tenant_id: str, grant_key: str) -> str | None:
    """The code an earlier grant with this key minted, if any."""
    rec = get_item(LoyaltyRecord, grant_pk(tenant_id, grant_key), GRANT_SK)
    return CouponGrant.load(doc_of(rec)).code if rec else None


@dataclass(frozen=True)
class Given:
    """Whom a grant gives a code to, for the customer's own list: their base (scope), id, and where it came from."""

    scope: str
    customer_id: str
    source: str
    origin: str | None = None


GIVEN_PREFIX = "coupon#"
GIVEN_MAX = 100
"""Codes read at most for one customer's list (newest first)."""


def stamp(at: datetime) -> str:
    """A fixed-width UTC time that sorts as text (isoformat drops the microseconds when they are 0)."""
    return at.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def given_sk(tenant_id: str, at: datetime, grant_key: str) -> str:
    return f"{GIVEN_PREFIX}{tenant_id}#{stamp(at)}#{hashlib.sha256(grant_key.encode()).hexdigest()[:16]}"


def _add_given(tx: Tx, tenant_id: str, campaign_id: str, code: str, grant_key: str, at: datetime,
               given: Given) -> None:
    doc = CouponGiven(tenant_id=tenant_id, campaign_id=campaign_id, code=code, source=given.source,
                      origin=given.origin, given_at=at.astimezone(UTC).isoformat())
    tx.save(LoyaltyRecord(customer_pk(given.scope, given.customer_id), given_sk(tenant_id, at, grant_key),
                          kind="coupon_given", doc=doc.dump(), at=at),
            condition=LoyaltyRecord.pk.does_not_exist())


def _add_grant(tx: Tx, tenant_id: str, campaign_id: str, code: str, holder: str, grant_key: str,
               at: datetime) -> None:
    grant = CouponGrant(code=code, campaign_id=campaign_id, holder=holder)
    tx.save(LoyaltyRecord(grant_pk(tenant_id, grant_key), GRANT_SK, kind="coupon_grant", doc=grant.dump(),
                          version=1, at=at),
            condition=LoyaltyRecord.pk.does_not_exist())


def add_granted_code(tenant_id: str, campaign_id: str, code: str, holder: str, grant_key: str,
                     at: datetime, given: Given | None = None) -> str | None:
    """Mint one code for one holder, exactly once per `grant_key`: the grant marker and the code in one transaction.

    With `given`, the customer's "coupon given" record goes in the same
    transaction, so it exists exactly when the code was minted for them.
    Returns the code written, the code an earlier grant with this key wrote
    (a retry), or None when `code` collided with an existing one (draw again).
    """

    def build(tx: Tx) -> None:
        _add_grant(tx, tenant_id, campaign_id, code, holder, grant_key, at)
        add_code(tx, tenant_id, code, campaign_id, at)
        if given is not None:
            _add_given(tx, tenant_id, campaign_id, code, grant_key, at, given)

    try:
        transactions.write(build)
    except TransactionFailed as err:
        if err.condition_failed(0):
            return granted_code(tenant_id, grant_key)
        if err.condition_failed(1):
            return None
        raise
    return code


def add_shared_grant(tenant_id: str, campaign_id: str, code: str, holder: str, grant_key: str, at: datetime,
                     given: Given) -> bool:
    """Record that a shared code was given to one customer, exactly once per `grant_key`.

    The grant marker (only if the key is new) and the customer's record in one
    transaction: a retried grant, at whatever time, writes nothing. False when
    the key was already granted.
    """

    def build(tx: Tx) -> None:
        _add_grant(tx, tenant_id, campaign_id, code, holder, grant_key, at)
        _add_given(tx, tenant_id, campaign_id, code, grant_key, at, given)

    try:
        transactions.write(build)
    except TransactionFailed as err:
        if err.condition_failed(0):
            return False
        raise
    return True


def given_to(scope: str, customer_id: str, tenant_id: str, limit: int = GIVEN_MAX) -> list[CouponGiven]:
    """The codes this tenant gave the customer, newest first, at most `limit` (one bounded query)."""
    prefix = f"{GIVEN_PREFIX}{tenant_id}#"
    return [CouponGiven.of(rec.doc) for rec in LoyaltyRecord.query(
        customer_pk(scope, customer_id), LoyaltyRecord.sk.startswith(prefix), scan_index_forward=False,
        limit=limit, page_size=limit, consistent_read=True)]


def erase_given(scope: str, customer_id: str) -> int:
    """Erasure: delete every "coupon given" record of the customer (all tenants of the base); how many went."""
    deleted = 0
    with LoyaltyRecord.batch_write() as batch:
        for rec in LoyaltyRecord.query(customer_pk(scope, customer_id), LoyaltyRecord.sk.startswith(GIVEN_PREFIX),
                                       attributes_to_get=["pk", "sk"], consistent_read=True):
            batch.delete(rec)
            deleted += 1
    return deleted


def move_given(scope: str, from_customer: str, to_customer: str) -> int:
    """Merging duplicates: the duplicate's "coupon given" records go to the kept customer; how many moved."""
    return move_items(scope, from_customer, to_customer, GIVEN_PREFIX)
