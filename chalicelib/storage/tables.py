"""DynamoDB table definitions: the single source for the deployed stack (infra/) and the local one.

Keys are generic (`pk`, `sk`) and every partition key starts with the owner:
the tenant id for tenant data, `agency#<id>` for an agency, `platform` for the
operator. An IAM `dynamodb:LeadingKeys` condition on `${tenant}` and
`${tenant}#*` can therefore confine a tenant-scoped role to its own rows.
Entity fields live in `doc`, validated by the pydantic schemas on the way in
and out; the record adds keys, an optimistic-locking version and timestamps.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, TypeVar

from pynamodb.attributes import (
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
    VersionAttribute,
)
from pynamodb.exceptions import DoesNotExist, PutError, UpdateError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.settings import settings


def _doc_attribute() -> MapAttribute[str, Any]:
    """An untyped map (PynamoDB's raw MapAttribute): the entity's fields, whatever the document model."""
    return MapAttribute(default=dict)  # type: ignore[no-untyped-call]  # PynamoDB leaves __init__ unannotated


class _Meta:
    region = settings.region
    billing_mode = "PAY_PER_REQUEST"
    connect_timeout_seconds = 3
    read_timeout_seconds = 10
    max_retry_attempts = 3


class ByAgencyIndex(GlobalSecondaryIndex["DirectoryRecord"]):  # type: ignore[no-untyped-call]
    """Lets an agency list its own tenants (gsi1pk = agency#<id>)."""

    class Meta:
        index_name = "by_agency"
        projection = AllProjection()

    gsi1pk = UnicodeAttribute(hash_key=True)
    gsi1sk = UnicodeAttribute(range_key=True)


class DirectoryRecord(Model):
    """Agencies, tenants, programs and stores.

    agency#<aid>         / agency                     an agency
    agency#<aid>         / coalition#<cid>            a coalition of the agency's tenants
    <tid>                / tenant                     a tenant (gsi1pk = agency#<aid>)
    <tid>                / program#<pid>              a program: its latest rule version
    <tid>                / programv#<pid>#<nnnnnnnn>  rule version n of a program (immutable)
    <tid>                / store#<sid>                a store
    coalition.<cid>      / program#..., programv#...  a coalition's shared program and its versions
    """

    class Meta(_Meta):
        table_name = settings.directory_table

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    kind = UnicodeAttribute()
    doc = _doc_attribute()
    version = VersionAttribute()
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    by_agency = ByAgencyIndex()


class ApiKeyRecord(Model):
    """One API key: pk = owner partition (tenant id, agency#<aid> or platform), sk = key id."""

    class Meta(_Meta):
        table_name = settings.api_keys_table

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    key_hash = UnicodeAttribute()
    role = UnicodeAttribute()
    name = UnicodeAttribute()
    prefix = UnicodeAttribute()
    agency_id = UnicodeAttribute(null=True)
    store_id = UnicodeAttribute(null=True)
    status = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    created_by = UnicodeAttribute(null=True)
    revoked_at = UTCDateTimeAttribute(null=True)
    expires_at = UTCDateTimeAttribute(null=True)
    rotated_to = UnicodeAttribute(null=True)


class AuditRecord(Model):
    """Who did what: pk = owner partition, sk = <ISO time>#<event id>; expires by TTL."""

    class Meta(_Meta):
        table_name = settings.audit_table

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    action = UnicodeAttribute()
    actor = UnicodeAttribute()
    """`<role>:<key id>` for a key, `user:<user id>` for a person, `anonymous`, or a system name."""
    actor_email = UnicodeAttribute(null=True)
    """The person's e-mail when a person did it."""
    target = UnicodeAttribute(null=True)
    detail = _doc_attribute()
    at = UTCDateTimeAttribute()
    expires_at_epoch = NumberAttribute(null=True)


class DueAndPartnerIndex(GlobalSecondaryIndex["LoyaltyRecord"]):  # type: ignore[no-untyped-call]
    """One sparse, overloaded index: only items that set gsi1pk are in it.

    <scope>#due#<YYYY-MM-DD>     / <card number>   cards with work for the daily sweep that day (points or money
                                                   expiring, a tier check); also "points expiring within N days"
    <scope>#partner#<tenant id>  / entry#<time>... a coalition's ledger entries by partner: settlement for a period
    <tid>#campaign#<cid>         / <code>          a coupon campaign's codes
    <scope>#customers#<shard>    / <customer id>   every customer of a scope, in 16 shards (segments, exports)
    """

    class Meta:
        index_name = "gsi1"
        projection = AllProjection()

    gsi1pk = UnicodeAttribute(hash_key=True)
    gsi1sk = UnicodeAttribute(range_key=True)


class LedgerByDayIndex(GlobalSecondaryIndex["LoyaltyRecord"]):  # type: ignore[no-untyped-call]
    """Points ledger entries by day, for exports by time without a scan (sparse: only entries set gsi2pk).

    <scope>#ledger#<YYYY-MM-DD>#<shard> / <entry sk>#<card number>   shard = crc32(card number) % 8, so one
                                                                     day's writes spread over 8 index partitions
    """

    class Meta:
        index_name = "gsi2"
        projection = AllProjection()

    gsi2pk = UnicodeAttribute(hash_key=True)
    gsi2sk = UnicodeAttribute(range_key=True)


class LoyaltyRecord(Model):
    """Cards, their ledgers, receipts, refunds and customers of every tenant.

    <tid>#card#<number>      / card                 the card: status, wallet (lots), version
    <tid>#card#<number>      / entry#<time>#<id>    its ledger, newest last
    <tid>#receipt#<id>       / receipt              a processed purchase: its answer, lines, refunds so far
    <tid>#refund#<id>        / refund               a processed refund: its answer
    <tid>#adjustment#<id>    / adjustment           a manual adjustment (exactly once)
    <tid>#customer#<id>      / customer             a customer without personal data: tags, consents, stats,
                                                    referral (personal fields are in PersonRecord, by id)
    <tid>#customer#<id>      / card#<n>             links to the customer's cards
    <tid>#customer#<id>      / consent#<time>#<kind> consent history (time, source, text version)
    <tid>#customer#<id>      / purchase#<sale time>#<tid>#<receipt>[#refund#<rid>]  purchase log (campaign results)
    <tid>#referral#<code>    / referral             a member's referral code -> customer id
    <tid>#series             / series#<sid>         plastic card series, newest first
    <tid>#series#<sid>       / chunk#<k>            the numbers of one generated chunk of a series
    <partition>#idem#<route>#<key> / idempotency    an Idempotency-Key and its kept answer (24 h TTL)
    <tid>#coupons            / campaign#<cid>       coupon campaigns
    <tid>#coupon#<code>      / coupon               a coupon code and its uses
    <tid>#coupon-use#<cid>#<holder> / use           one customer's uses of a campaign
    <tid>#customer#<id>      / coupon#<tid>#<time>#<key hash>  a coupon code given to the customer (member site)
    <tid>#report             / <report id>          a report request: type, period, status, file size (30-day TTL)
    <tid>#dash#<YYYY-MM-DD>  / p#<pid|->#s#<NN>     dashboard counters of a local day, 16 shards (c_<figure>, ADDs)

    One table, so a purchase's card, ledger entries and receipt go in one
    transaction on one table. Partition keys start with the owner: the tenant
    id, or `coalition.<id>` for the cards and customers a coalition's partners
    share (a dot never occurs in a tenant id).
    """

    class Meta(_Meta):
        table_name = settings.loyalty_table

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    kind = UnicodeAttribute()
    doc = _doc_attribute()
    version = NumberAttribute(default=0)
    at = UTCDateTimeAttribute()
    expires_at_epoch = NumberAttribute(null=True)
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    due_and_partner = DueAndPartnerIndex()
    gsi2pk = UnicodeAttribute(null=True)
    gsi2sk = UnicodeAttribute(null=True)
    ledger_by_day = LedgerByDayIndex()


class _PeopleMeta(_Meta):
    region = settings.people_region


class PersonRecord(Model):
    """Personal data, and nothing else: the one table a deployment places where the law requires.

    <scope>#person#<customer id> / profile         phone, e-mail, names, gender, birth date, children, preferences
    <scope>#person#<customer id> / answers#<sid>#<rid>  a survey response's personal answers (free text, dates...)
    <scope>#person#<customer id> / answer#<route>#<key> an Idempotency-Key answer that carries personal data
    <scope>#phone#<e164>         / phone           phone -> customer id: one customer per phone per scope

    Everything else refers to a customer by id only, so erasing a customer is
    deleting one partition and its phone index items. Never written in the
    same transaction as the loyalty table: the two may live in different
    regions (Russia's 152-FZ localisation), so writes are ordered to be safe
    to retry instead (see services/customers.py).
    """

    class Meta(_PeopleMeta):
        table_name = settings.people_table

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    kind = UnicodeAttribute()
    doc = _doc_attribute()
    version = NumberAttribute(default=0)
    at = UTCDateTimeAttribute()
    expires_at_epoch = NumberAttribute(null=True)


class ByScopeIndex(GlobalSecondaryIndex["IdentityRecord"]):  # type: ignore[no-untyped-call]
    """Lists a scope's people and open invitations (sparse: only memberships and invitations set gsi1pk).

    members#<scope partition>  / <e-mail>#<user id>      the scope's members, by e-mail
    invites#<scope partition>  / <e-mail>#<invite id>    the scope's invitations, by e-mail
    """

    class Meta:
        index_name = "by_scope"
        projection = AllProjection()

    gsi1pk = UnicodeAttribute(hash_key=True)
    gsi1sk = UnicodeAttribute(range_key=True)


class IdentityRecord(Model):
    """Staff accounts: who may sign in, where, and their browser sessions. No password is ever stored here.

    user#<uid>           / user                      a person (uid = the Cognito user's `sub`): e-mail, status, MFA
    user#<uid>           / member#<scope partition>  a membership: the person's role in one scope
    user#<uid>           / session#<sid>             a browser session: the cookie secret's hash, idle and absolute
                                                     expiry, the sealed Cognito refresh token (TTL)
    email#<e-mail>       / email                     e-mail -> uid: one account per e-mail address
    invite#<invite id>   / invite                    an invitation to a scope: e-mail, role, the token's hash (TTL)
    signin#<id>          / pending                   a sign-in between the password and the MFA code (TTL)
    reset#<id>           / reset                     a password-reset link: the token's hash (TTL)
    totp#<uid>           / step#<n>                  a spent MFA time step: a replayed code is refused (TTL)
    limit#<key>          / window#<n>                sign-in attempts per account or client address (TTL)

    People span scopes (an agency's staff act in its tenants), so this table is
    the platform's, not partitioned by tenant; the API reaches it only through
    services/identity, which checks the membership of every scope it touches.
    """

    class Meta(_Meta):
        table_name = settings.identity_table

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    kind = UnicodeAttribute()
    doc = _doc_attribute()
    version = NumberAttribute(default=0)
    at = UTCDateTimeAttribute()
    expires_at_epoch = NumberAttribute(null=True)
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    by_scope = ByScopeIndex()


# Table models with their TTL attribute (None: items never expire).
TABLES: dict[type[Model], str | None] = {
    DirectoryRecord: None,
    ApiKeyRecord: None,
    AuditRecord: "expires_at_epoch",
    LoyaltyRecord: "expires_at_epoch",
    PersonRecord: "expires_at_epoch",
    IdentityRecord: "expires_at_epoch",
}


M = TypeVar("M", bound=Model)


def get_item(model: type[M], pk: str, sk: str) -> M | None:
    """One item by key, read consistently, or None: the storage modules' single point read."""
    try:
        return model.get(pk, sk, consistent_read=True)
    except DoesNotExist:
        return None


def doc_of(rec: DirectoryRecord | LoyaltyRecord | PersonRecord | AuditRecord | IdentityRecord) -> dict[str, Any]:
    """A record's map attribute as a plain dict (`as_dict` is unannotated in PynamoDB)."""
    doc = rec.detail if isinstance(rec, AuditRecord) else rec.doc
    out: dict[str, Any] = doc.as_dict()  # type: ignore[no-untyped-call]
    return out


def condition_failed(err: Exception) -> bool:
    """A conditional write refused by its condition (someone else wrote first), not a throttle or an outage."""
    return getattr(err, "cause_response_code", None) == "ConditionalCheckFailedException"


def save_if(record: Model, condition: Any) -> bool:
    """Save `record` if `condition` holds; False when it does not. Any other failure raises."""
    try:
        record.save(condition=condition)
    except PutError as err:
        if condition_failed(err):
            return False
        raise
    return True


def stamp(at: datetime) -> str:
    """A UTC time as fixed-width text (always with microseconds), so stored stamps compare as strings do."""
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def claim_turn(fresh: LoyaltyRecord, token: str, attempt: int, now: datetime, lease: timedelta,
               final: tuple[str, ...], extra: tuple[Any, ...] = ()) -> str | None:
    """Take attempt `attempt` of one send logged in a record whose doc has `status`, `attempts`, `token` and
    `claimed_at`: `token` when taken, None when it is not this attempt's turn (a final status, already attempted,
    or another worker holding a lease younger than `lease`).

    The first attempt writes `fresh` (its doc carries `token`); a later one takes the item over only if the
    attempt before was the last one, or this attempt's claim went stale (its worker died). `extra` are more
    update actions for a takeover. Shared by the webhook deliveries and the wallet pushes.
    """
    if save_if(fresh, LoyaltyRecord.pk.does_not_exist()):
        return token
    d = LoyaltyRecord.doc
    turn = (d["attempts"] == attempt - 1) | (
        (d["attempts"] == attempt) & (d["status"] == "pending") & (d["claimed_at"] < stamp(now - lease)))
    try:
        LoyaltyRecord(fresh.pk, fresh.sk).update(
            actions=[d["status"].set("pending"), d["attempts"].set(attempt), d["token"].set(token),
                     d["claimed_at"].set(stamp(now)), *extra],
            condition=LoyaltyRecord.pk.exists() & ~d["status"].is_in(*final) & turn)
    except UpdateError as err:
        if condition_failed(err):
            return None
        raise
    return token


def count_in_window(pk: str, window: int, kind: str, limit: int, expires_at_epoch: int, at: datetime,
                    model: type[LoyaltyRecord] | type[IdentityRecord] = LoyaltyRecord) -> bool:
    """Count one hit in a fixed window's counter item; False (nothing counted) once `limit` is reached.

    The count is the record's top-level `version` number, because an ADD can
    create a top-level attribute on a new item but not a key inside `doc`.
    """
    try:
        model(pk, f"window#{window}").update(
            actions=[model.version.add(1), model.kind.set(kind), model.at.set(at),
                     model.expires_at_epoch.set(expires_at_epoch)],
            condition=model.pk.does_not_exist() | (model.version < limit))
    except UpdateError as err:
        if condition_failed(err):
            return False
        raise
    return True


def platform_partition() -> str:
    return "platform"


def agency_partition(agency_id: str) -> str:
    return f"agency#{agency_id}"


def tenant_partition(tenant_id: str) -> str:
    return tenant_id


def delete_partition_page(model: type[Model], partition: str, max_items: int) -> int:
    """Delete up to `max_items` items of one partition; returns how many were deleted."""
    deleted = 0
    with model.batch_write() as batch:
        for rec in model.query(partition, attributes_to_get=["pk", "sk"]):
            batch.delete(rec)
            deleted += 1
            if deleted >= max_items:
                break
    return deleted
