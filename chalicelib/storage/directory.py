"""Agencies, tenants, programs and stores."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from pynamodb.exceptions import PutError
from pynamodb.transactions import TransactWrite

from chalicelib import clock
from chalicelib.errors import conflict, field_error
from chalicelib.schemas.coalitions import Coalition
from chalicelib.schemas.tenancy import (
    Agency,
    AgencyCreate,
    Program,
    ProgramSpec,
    Store,
    StoreSpec,
    Tenant,
)
from chalicelib.storage import pagination, transactions
from chalicelib.storage.pagination import StoredPage
from chalicelib.storage.tables import DirectoryRecord, agency_partition, doc_of, get_item, tenant_partition

TENANT_SK = "tenant"
AGENCY_SK = "agency"


def now() -> datetime:
    return clock.now()


def _program_sk(program_id: str) -> str:
    return f"program#{program_id}"


def _store_sk(store_id: str) -> str:
    return f"store#{store_id}"


# --- agencies -----------------------------------------------------------------

def _agency(rec: DirectoryRecord) -> Agency:
    return Agency.model_validate({**doc_of(rec), "created_at": rec.created_at})


def agency_record(spec: AgencyCreate, ts: datetime) -> DirectoryRecord:
    return DirectoryRecord(
        agency_partition(spec.agency_id), AGENCY_SK, kind="agency",
        doc=spec.model_dump(mode="json"), created_at=ts, updated_at=ts,
        gsi1pk="agencies", gsi1sk=spec.agency_id,
    )


def get_agency(agency_id: str) -> Agency | None:
    rec = get_item(DirectoryRecord, agency_partition(agency_id), AGENCY_SK)
    return _agency(rec) if rec else None


def list_agencies(limit: int, cursor: str | None) -> StoredPage[Agency]:
    records, next_cursor = _gsi_page("agencies", limit, cursor)
    return StoredPage([_agency(r) for r in records], next_cursor)


def _gsi_page(hash_value: str, limit: int, cursor: str | None) -> StoredPage[DirectoryRecord]:
    return pagination.page_of(
        lambda size, start: DirectoryRecord.by_agency.query(hash_value, limit=size, page_size=size,
                                                            last_evaluated_key=start),
        limit=limit, cursor=cursor, hash_attr="gsi1pk", hash_value=hash_value,
        key_attrs=("pk", "sk", "gsi1pk", "gsi1sk"),
    )


# --- tenants ------------------------------------------------------------------

def _tenant(rec: DirectoryRecord) -> Tenant:
    return Tenant.model_validate({**doc_of(rec), "created_at": rec.created_at, "updated_at": rec.updated_at})


def tenant_record(tenant_id: str, tenant_doc: dict[str, Any], ts: datetime) -> DirectoryRecord:
    return DirectoryRecord(
        tenant_partition(tenant_id), TENANT_SK, kind="tenant", doc=tenant_doc,
        created_at=ts, updated_at=ts,
        gsi1pk=agency_partition(tenant_doc["agency_id"]), gsi1sk=f"tenant#{tenant_id}",
    )


def program_record(tenant_id: str, spec: ProgramSpec, ts: datetime, effective_at: datetime | None = None
                   ) -> DirectoryRecord:
    """A new program's head record (its version 1); write `program_version_record(..., 1, ...)` with it."""
    return DirectoryRecord(
        tenant_partition(tenant_id), _program_sk(spec.id), kind="program",
        doc=_program_doc(spec, effective_at or ts), created_at=ts, updated_at=ts,
    )


def store_record(tenant_id: str, spec: StoreSpec, ts: datetime) -> DirectoryRecord:
    return DirectoryRecord(
        tenant_partition(tenant_id), _store_sk(spec.id), kind="store",
        doc=spec.model_dump(mode="json"), created_at=ts, updated_at=ts,
    )


def add_new(tx: TransactWrite, rec: DirectoryRecord) -> None:
    """Queue a create that fails the transaction if the item exists."""
    tx.save(rec, condition=DirectoryRecord.pk.does_not_exist())


def get_tenant(tenant_id: str) -> Tenant | None:
    rec = get_item(DirectoryRecord, tenant_partition(tenant_id), TENANT_SK)
    return _tenant(rec) if rec else None


def get_tenant_of_agency(agency_id: str, tenant_id: str) -> Tenant | None:
    """A tenant only if it belongs to this agency: another agency's tenant does not exist for you."""
    tenant = get_tenant(tenant_id)
    return tenant if tenant and tenant.agency_id == agency_id else None


def list_tenants_of_agency(agency_id: str, limit: int, cursor: str | None) -> StoredPage[Tenant]:
    records, next_cursor = _gsi_page(agency_partition(agency_id), limit, cursor)
    return StoredPage([_tenant(r) for r in records], next_cursor)


def update_tenant(tenant_id: str, changes: dict[str, Any]) -> Tenant | None:
    rec = get_item(DirectoryRecord, tenant_partition(tenant_id), TENANT_SK)
    if rec is None:
        return None
    doc = doc_of(rec)
    doc.update(changes)
    if doc == doc_of(rec):
        return _tenant(rec)
    rec.doc = doc
    rec.updated_at = now()
    try:
        rec.save()  # VersionAttribute makes this a conditional write: a concurrent edit fails, never merges blindly.
    except PutError as err:
        if err.cause_response_code == "ConditionalCheckFailedException":
            raise conflict("concurrent_change", "Changed concurrently by another request; retry.") from None
        raise
    return _tenant(rec)


# --- programs and stores ----------------------------------------------------------

PROGRAM_VERSIONS = "programv#"
"""Sort-key prefix of the immutable rule versions; `list_programs` (prefix `program#`) never sees them."""


def _program_versions_prefix(program_id: str) -> str:
    return f"{PROGRAM_VERSIONS}{program_id}#"


def _program_version_sk(program_id: str, number: int) -> str:
    return f"{_program_versions_prefix(program_id)}{number:08d}"


def _program_doc(spec: ProgramSpec, effective_at: datetime) -> dict[str, Any]:
    return {**spec.model_dump(mode="json"), "effective_at": effective_at.astimezone(UTC).isoformat()}


def _rules(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "effective_at"}


def _program(tenant_id: str, rec: DirectoryRecord) -> Program:
    """The head carries its rule version in the optimistic-lock attribute (one bump per version), a version
    item in its sort key. Heads written before versioning have no `effective_at`: in force since always."""
    number = rec.version if rec.sk.startswith("program#") else int(rec.sk.rsplit("#", 1)[1])
    return Program.model_validate({**doc_of(rec), "tenant_id": tenant_id, "version": number,
                                   "created_at": rec.created_at, "updated_at": rec.updated_at}, strict=False)


def program_version_record(tenant_id: str, spec: ProgramSpec, number: int, effective_at: datetime,
                           created_at: datetime, ts: datetime) -> DirectoryRecord:
    """One immutable rule version: `created_at` is the program's, `updated_at` when this version was written."""
    return DirectoryRecord(
        tenant_partition(tenant_id), _program_version_sk(spec.id, number), kind="program_version",
        doc=_program_doc(spec, effective_at), created_at=created_at, updated_at=ts,
    )


def _store(tenant_id: str, rec: DirectoryRecord) -> Store:
    return Store.model_validate({**doc_of(rec), "tenant_id": tenant_id, "created_at": rec.created_at,
                                 "updated_at": rec.updated_at}, strict=False)


def get_program(tenant_id: str, program_id: str) -> Program | None:
    """The program's head: its latest version, which may be scheduled for later."""
    rec = get_item(DirectoryRecord, tenant_partition(tenant_id), _program_sk(program_id))
    return _program(tenant_id, rec) if rec else None


def get_program_version(tenant_id: str, program_id: str, number: int) -> Program | None:
    rec = get_item(DirectoryRecord, tenant_partition(tenant_id), _program_version_sk(program_id, number))
    if rec is None and number >= 1:
        head = get_program(tenant_id, program_id)
        return head if head is not None and head.effective_at is None and head.version == number else None
    return _program(tenant_id, rec) if rec else None


def _query_versions(tenant_id: str, program_id: str, size: int, start: dict[str, Any] | None = None,
                    below: int | None = None) -> Iterator[DirectoryRecord]:
    """A program's version items, newest first; only those numbered below `below` if given."""
    pk = tenant_partition(tenant_id)
    key = (DirectoryRecord.sk.startswith(_program_versions_prefix(program_id)) if below is None else
           DirectoryRecord.sk.between(_program_version_sk(program_id, 0), _program_version_sk(program_id, below - 1)))
    return DirectoryRecord.query(pk, key, scan_index_forward=False, limit=size, page_size=size,
                                 last_evaluated_key=start, consistent_read=True)


def list_program_versions(tenant_id: str, program_id: str, limit: int, cursor: str | None
                          ) -> StoredPage[Program]:
    """Every rule version of a program, newest first (a program from before versioning: its head alone)."""
    pk = tenant_partition(tenant_id)
    start = pagination.decode(cursor, hash_attr="pk", hash_value=pk)
    if start is not None and not str(start.get("sk", {}).get("S", "")).startswith(_program_versions_prefix(program_id)):
        raise field_error("cursor", "The cursor does not belong to this list.")
    records, next_cursor = pagination.page_of(
        lambda size, begin: _query_versions(tenant_id, program_id, size, begin),
        limit=limit, cursor=cursor, hash_attr="pk", hash_value=pk, key_attrs=("pk", "sk"),
    )
    if not records and cursor is None:
        head = get_program(tenant_id, program_id)
        return StoredPage([head] if head is not None and head.effective_at is None else [], None)
    return StoredPage([_program(tenant_id, r) for r in records], next_cursor)


def recent_program_versions(tenant_id: str, program_id: str, count: int) -> tuple[list[Program], bool]:
    """Up to `count` newest versions, newest first, and whether that is all of them (down to version 1)."""
    versions = [_program(tenant_id, r) for r in itertools.islice(_query_versions(tenant_id, program_id, count), count)]
    if not versions:
        head = get_program(tenant_id, program_id)
        return ([head] if head is not None else []), True
    return versions, len(versions) < count or versions[-1].version <= 1


def program_versions_below(tenant_id: str, program_id: str, number: int) -> Iterator[Program]:
    """The versions numbered below `number`, newest first, read page by page as they are consumed."""
    if number <= 1:
        return iter(())
    return (_program(tenant_id, r) for r in _query_versions(tenant_id, program_id, 50, below=number))


def get_store(tenant_id: str, store_id: str) -> Store | None:
    rec = get_item(DirectoryRecord, tenant_partition(tenant_id), _store_sk(store_id))
    return _store(tenant_id, rec) if rec else None


def _list_kind(tenant_id: str, prefix: str, limit: int, cursor: str | None
               ) -> StoredPage[DirectoryRecord]:
    pk = tenant_partition(tenant_id)
    return pagination.page_of(
        lambda size, start: DirectoryRecord.query(pk, DirectoryRecord.sk.startswith(prefix), limit=size,
                                                  page_size=size, last_evaluated_key=start, consistent_read=True),
        limit=limit, cursor=cursor, hash_attr="pk", hash_value=pk, key_attrs=("pk", "sk"),
    )


def list_programs(tenant_id: str, limit: int, cursor: str | None) -> StoredPage[Program]:
    records, next_cursor = _list_kind(tenant_id, "program#", limit, cursor)
    return StoredPage([_program(tenant_id, r) for r in records], next_cursor)


def list_stores(tenant_id: str, limit: int, cursor: str | None) -> StoredPage[Store]:
    records, next_cursor = _list_kind(tenant_id, "store#", limit, cursor)
    return StoredPage([_store(tenant_id, r) for r in records], next_cursor)


def all_store_ids(tenant_id: str) -> set[str]:
    pk = tenant_partition(tenant_id)
    return {r.sk.split("#", 1)[1] for r in DirectoryRecord.query(
        pk, DirectoryRecord.sk.startswith("store#"), attributes_to_get=["pk", "sk"], consistent_read=True)}


def _upsert(
    tenant_id: str, sk: str, kind: str, doc: dict[str, Any], *, must_exist: bool
) -> tuple[DirectoryRecord, str]:
    """Create or replace one entity; returns the record and 'created', 'updated' or 'unchanged'."""
    pk = tenant_partition(tenant_id)
    rec = get_item(DirectoryRecord, pk, sk)
    ts = now()
    if rec is None:
        if must_exist:
            raise LookupError(sk)
        rec = DirectoryRecord(pk, sk, kind=kind, doc=doc, created_at=ts, updated_at=ts)
        try:
            rec.save(condition=DirectoryRecord.pk.does_not_exist())
        except PutError as err:
            if err.cause_response_code == "ConditionalCheckFailedException":
                raise conflict("concurrent_change", "Created concurrently by another request; retry.") from None
            raise
        return rec, "created"
    if doc_of(rec) == doc:
        return rec, "unchanged"
    rec.doc = doc
    rec.updated_at = ts
    try:
        rec.save()
    except PutError as err:
        if err.cause_response_code == "ConditionalCheckFailedException":
            raise conflict("concurrent_change", "Changed concurrently by another request; retry.") from None
        raise
    return rec, "updated"


def _same_timing(current: datetime | None, requested: datetime | None, ts: datetime) -> bool:
    if requested is None:
        return current is None or current <= ts
    return current == requested


def put_program(
    tenant_id: str,
    spec: ProgramSpec,
    *,
    effective_at: datetime | None = None,
    must_exist: bool = False,
    also: Callable[[transactions.Tx, Program], None] | None = None,
) -> tuple[Program, str]:
    """Write the program's next rule version (an immutable item) and its head, in one transaction.

    `effective_at` None means now. Nothing is written ('unchanged') when the rules equal the head's and it
    takes effect as asked: already in force for "now", or at the same stated time (a retried request).
    `also(tx, version)` queues further writes, such as the audit entry, into the same transaction. The head's
    optimistic lock makes two concurrent changes a 409, never two versions with one number.
    """
    pk = tenant_partition(tenant_id)
    sk = _program_sk(spec.id)
    head = get_item(DirectoryRecord, pk, sk)
    ts = now()
    when = effective_at or ts
    doc = _program_doc(spec, when)
    if head is None:
        if must_exist:
            raise LookupError(sk)
        head = DirectoryRecord(pk, sk, kind="program", doc=doc, created_at=ts, updated_at=ts)
        number, outcome, condition = 1, "created", DirectoryRecord.pk.does_not_exist()
    else:
        current = _program(tenant_id, head)
        if _rules(doc_of(head)) == _rules(doc) and _same_timing(current.effective_at, effective_at, ts):
            return current, "unchanged"
        head.doc = doc
        head.updated_at = ts
        number, outcome, condition = current.version + 1, "updated", None
    version_rec = program_version_record(tenant_id, spec, number, when, head.created_at, ts)
    version = _program(tenant_id, version_rec)

    def build(tx: transactions.Tx) -> None:
        tx.save(head, condition=condition)
        add_new(tx, version_rec)
        if also is not None:
            also(tx, version)

    try:
        transactions.write(build)
    except transactions.TransactionFailed as err:
        if err.condition_failed(0) or err.condition_failed(1):
            raise conflict("concurrent_change", "Changed concurrently by another request; retry.") from None
        raise
    return version, outcome


def put_store(tenant_id: str, spec: StoreSpec, *, must_exist: bool = False) -> tuple[Store, str]:
    rec, outcome = _upsert(tenant_id, _store_sk(spec.id), "store", spec.model_dump(mode="json"), must_exist=must_exist)
    return _store(tenant_id, rec), outcome


def delete_tenant_page(tenant_id: str, max_items: int) -> int:
    """Delete up to `max_items` of a tenant's directory rows, the tenant row last. Returns how many went."""
    pk = tenant_partition(tenant_id)
    deleted = 0
    with DirectoryRecord.batch_write() as batch:
        for rec in DirectoryRecord.query(pk, attributes_to_get=["pk", "sk"], consistent_read=True):
            if rec.sk == TENANT_SK:
                continue
            batch.delete(rec)
            deleted += 1
            if deleted >= max_items:
                return deleted
    if deleted == 0:
        tenant = get_item(DirectoryRecord, pk, TENANT_SK)
        if tenant is not None:
            tenant.delete()
            deleted = 1
    return deleted


# --- coalitions -------------------------------------------------------------------
# agency#<aid>    / coalition#<cid>  the coalition: name, program id, currency, partners
# coalition.<cid> / coalition        the id's claim: coalition ids are global, since the scope holding the
#                                    shared program, cards and ledgers is `coalition.<cid>` whatever the agency

COALITION_SK_PREFIX = "coalition#"
COALITION_CLAIM_SK = "coalition"


def _coalition_sk(coalition_id: str) -> str:
    return f"{COALITION_SK_PREFIX}{coalition_id}"


def coalition_of(rec: DirectoryRecord) -> Coalition:
    return Coalition.model_validate({**doc_of(rec), "created_at": rec.created_at,
                                     "updated_at": rec.updated_at})


def coalition_record(agency_id: str, doc: dict[str, Any], ts: datetime) -> DirectoryRecord:
    return DirectoryRecord(agency_partition(agency_id), _coalition_sk(doc["coalition_id"]), kind="coalition",
                           doc=doc, created_at=ts, updated_at=ts)


def coalition_claim_record(scope: str, agency_id: str, coalition_id: str, ts: datetime) -> DirectoryRecord:
    """Owns the coalition's scope for one agency: a second coalition with this id, in any agency, fails."""
    return DirectoryRecord(tenant_partition(scope), COALITION_CLAIM_SK, kind="coalition_claim",
                           doc={"agency_id": agency_id, "coalition_id": coalition_id}, created_at=ts, updated_at=ts)


def scope_created_at(scope: str) -> datetime | None:
    """When a card scope's owner was created: the tenant, or for `coalition.<id>` the coalition (its claim).

    Nothing in a scope can be due before this moment, so the daily sweep starts there. None: no such owner.
    """
    sk = COALITION_CLAIM_SK if scope.startswith("coalition.") else TENANT_SK
    rec = get_item(DirectoryRecord, tenant_partition(scope), sk)
    return rec.created_at if rec else None


def coalition_for_update(agency_id: str, coalition_id: str) -> DirectoryRecord | None:
    """The stored coalition, to change and save with `save_versioned` (its version guards the change)."""
    return get_item(DirectoryRecord, agency_partition(agency_id), _coalition_sk(coalition_id))


def get_coalition(agency_id: str, coalition_id: str) -> Coalition | None:
    rec = coalition_for_update(agency_id, coalition_id)
    return coalition_of(rec) if rec else None


def list_coalitions(agency_id: str, limit: int, cursor: str | None) -> StoredPage[Coalition]:
    pk = agency_partition(agency_id)
    records, next_cursor = pagination.page_of(
        lambda size, start: DirectoryRecord.query(pk, DirectoryRecord.sk.startswith(COALITION_SK_PREFIX),
                                                  limit=size, page_size=size, last_evaluated_key=start,
                                                  consistent_read=True),
        limit=limit, cursor=cursor, hash_attr="pk", hash_value=pk, key_attrs=("pk", "sk"),
    )
    return StoredPage([coalition_of(r) for r in records], next_cursor)


def with_changes(rec: DirectoryRecord, changes: dict[str, Any], ts: datetime) -> DirectoryRecord:
    """The record with `changes` merged into its doc (not saved)."""
    rec.doc = {**doc_of(rec), **changes}
    rec.updated_at = ts
    return rec


def tenant_for_update(tenant_id: str) -> DirectoryRecord | None:
    """The stored tenant, to change and save with `save_versioned` in a transaction."""
    return get_item(DirectoryRecord, tenant_partition(tenant_id), TENANT_SK)


def tenant_of(rec: DirectoryRecord) -> Tenant:
    return _tenant(rec)


def save_versioned(tx: TransactWrite, rec: DirectoryRecord) -> None:
    """Queue a replace that fails the transaction if the item changed since it was read (its version)."""
    tx.save(rec, condition=DirectoryRecord.pk.exists())
