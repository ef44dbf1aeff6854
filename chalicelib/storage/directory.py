"""Agencies, tenants, programs and stores."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pynamodb.exceptions import DoesNotExist, PutError
from pynamodb.transactions import TransactWrite

from chalicelib import clock
from chalicelib.errors import conflict
from chalicelib.schemas.tenancy import (
    Agency,
    AgencyCreate,
    Program,
    ProgramSpec,
    Store,
    StoreSpec,
    Tenant,
)
from chalicelib.storage import pagination
from chalicelib.storage.tables import DirectoryRecord, agency_partition, tenant_partition

TENANT_SK = "tenant"
AGENCY_SK = "agency"


def now() -> datetime:
    return clock.now()


def _program_sk(program_id: str) -> str:
    return f"program#{program_id}"


def _store_sk(store_id: str) -> str:
    return f"store#{store_id}"


def _get(pk: str, sk: str) -> DirectoryRecord | None:
    try:
        return DirectoryRecord.get(pk, sk, consistent_read=True)
    except DoesNotExist:
        return None


# --- agencies -----------------------------------------------------------------

def _agency(rec: DirectoryRecord) -> Agency:
    return Agency.model_validate({**rec.doc.as_dict(), "created_at": rec.created_at})


def agency_record(spec: AgencyCreate, ts: datetime) -> DirectoryRecord:
    return DirectoryRecord(
        agency_partition(spec.agency_id), AGENCY_SK, kind="agency",
        doc=spec.model_dump(mode="json"), created_at=ts, updated_at=ts,
        gsi1pk="agencies", gsi1sk=spec.agency_id,
    )


def get_agency(agency_id: str) -> Agency | None:
    rec = _get(agency_partition(agency_id), AGENCY_SK)
    return _agency(rec) if rec else None


def list_agencies(limit: int, cursor: str | None) -> tuple[list[Agency], str | None]:
    records, next_cursor = _gsi_page("agencies", limit, cursor)
    return [_agency(r) for r in records], next_cursor


def _gsi_page(hash_value: str, limit: int, cursor: str | None) -> tuple[list[DirectoryRecord], str | None]:
    return pagination.page_of(
        lambda size, start: DirectoryRecord.by_agency.query(hash_value, limit=size, page_size=size,
                                                            last_evaluated_key=start),
        limit=limit, cursor=cursor, hash_attr="gsi1pk", hash_value=hash_value,
        key_attrs=("pk", "sk", "gsi1pk", "gsi1sk"),
    )


# --- tenants ------------------------------------------------------------------

def _tenant(rec: DirectoryRecord) -> Tenant:
    return Tenant.model_validate({**rec.doc.as_dict(), "created_at": rec.created_at, "updated_at": rec.updated_at})


def tenant_record(tenant_id: str, tenant_doc: dict[str, Any], ts: datetime) -> DirectoryRecord:
    return DirectoryRecord(
        tenant_partition(tenant_id), TENANT_SK, kind="tenant", doc=tenant_doc,
        created_at=ts, updated_at=ts,
        gsi1pk=agency_partition(tenant_doc["agency_id"]), gsi1sk=f"tenant#{tenant_id}",
    )


def program_record(tenant_id: str, spec: ProgramSpec, ts: datetime) -> DirectoryRecord:
    return DirectoryRecord(
        tenant_partition(tenant_id), _program_sk(spec.id), kind="program",
        doc=spec.model_dump(mode="json"), created_at=ts, updated_at=ts,
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
    rec = _get(tenant_partition(tenant_id), TENANT_SK)
    return _tenant(rec) if rec else None


def get_tenant_of_agency(agency_id: str, tenant_id: str) -> Tenant | None:
    """A tenant only if it belongs to this agency: another agency's tenant does not exist for you."""
    tenant = get_tenant(tenant_id)
    return tenant if tenant and tenant.agency_id == agency_id else None


def list_tenants_of_agency(agency_id: str, limit: int, cursor: str | None) -> tuple[list[Tenant], str | None]:
    records, next_cursor = _gsi_page(agency_partition(agency_id), limit, cursor)
    return [_tenant(r) for r in records], next_cursor


def update_tenant(tenant_id: str, changes: dict[str, Any]) -> Tenant | None:
    rec = _get(tenant_partition(tenant_id), TENANT_SK)
    if rec is None:
        return None
    doc = rec.doc.as_dict()
    doc.update(changes)
    if doc == rec.doc.as_dict():
        return _tenant(rec)
    rec.doc = doc
    rec.updated_at = now()
    rec.save()  # VersionAttribute makes this a conditional write: a concurrent edit fails, never merges blindly.
    return _tenant(rec)


# --- programs and stores ----------------------------------------------------------

def _program(tenant_id: str, rec: DirectoryRecord) -> Program:
    return Program.model_validate({**rec.doc.as_dict(), "tenant_id": tenant_id, "version": rec.version,
                                   "created_at": rec.created_at, "updated_at": rec.updated_at}, strict=False)


def _store(tenant_id: str, rec: DirectoryRecord) -> Store:
    return Store.model_validate({**rec.doc.as_dict(), "tenant_id": tenant_id, "created_at": rec.created_at,
                                 "updated_at": rec.updated_at}, strict=False)


def get_program(tenant_id: str, program_id: str) -> Program | None:
    rec = _get(tenant_partition(tenant_id), _program_sk(program_id))
    return _program(tenant_id, rec) if rec else None


def get_store(tenant_id: str, store_id: str) -> Store | None:
    rec = _get(tenant_partition(tenant_id), _store_sk(store_id))
    return _store(tenant_id, rec) if rec else None


def _list_kind(tenant_id: str, prefix: str, limit: int, cursor: str | None
               ) -> tuple[list[DirectoryRecord], str | None]:
    pk = tenant_partition(tenant_id)
    return pagination.page_of(
        lambda size, start: DirectoryRecord.query(pk, DirectoryRecord.sk.startswith(prefix), limit=size,
                                                  page_size=size, last_evaluated_key=start, consistent_read=True),
        limit=limit, cursor=cursor, hash_attr="pk", hash_value=pk, key_attrs=("pk", "sk"),
    )


def list_programs(tenant_id: str, limit: int, cursor: str | None) -> tuple[list[Program], str | None]:
    records, next_cursor = _list_kind(tenant_id, "program#", limit, cursor)
    return [_program(tenant_id, r) for r in records], next_cursor


def list_stores(tenant_id: str, limit: int, cursor: str | None) -> tuple[list[Store], str | None]:
    records, next_cursor = _list_kind(tenant_id, "store#", limit, cursor)
    return [_store(tenant_id, r) for r in records], next_cursor


def all_store_ids(tenant_id: str) -> set[str]:
    pk = tenant_partition(tenant_id)
    return {r.sk.split("#", 1)[1] for r in DirectoryRecord.query(
        pk, DirectoryRecord.sk.startswith("store#"), attributes_to_get=["pk", "sk"], consistent_read=True)}


def _upsert(
    tenant_id: str, sk: str, kind: str, doc: dict[str, Any], *, must_exist: bool
) -> tuple[DirectoryRecord, str]:
    """Create or replace one entity; returns the record and 'created', 'updated' or 'unchanged'."""
    pk = tenant_partition(tenant_id)
    rec = _get(pk, sk)
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
    if rec.doc.as_dict() == doc:
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


def put_program(tenant_id: str, spec: ProgramSpec, *, must_exist: bool = False) -> tuple[Program, str]:
    rec, outcome = _upsert(tenant_id, _program_sk(spec.id), "program", spec.model_dump(mode="json"),
                           must_exist=must_exist)
    return _program(tenant_id, rec), outcome


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
        tenant = _get(pk, TENANT_SK)
        if tenant is not None:
            tenant.delete()
            deleted = 1
    return deleted
