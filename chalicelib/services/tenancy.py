"""Provisioning and managing agencies, tenants, programs and stores."""

from __future__ import annotations

from datetime import UTC, datetime

from chalicelib.domain.roles import Role
from chalicelib.errors import ApiError, ErrorDetail, conflict, not_found
from chalicelib.schemas.keys import KeyCreate, KeyCreated
from chalicelib.schemas.tenancy import (
    Agency,
    AgencyCreate,
    AgencyProvisioned,
    Program,
    ProgramSpec,
    Store,
    StoreSpec,
    Tenant,
    TenantCreate,
    TenantProvisioned,
    TenantStatus,
    TenantUpdate,
)
from chalicelib.services import api_keys, catalog
from chalicelib.services.scopes import Scope
from chalicelib.settings import settings
from chalicelib.storage import audit, directory, queues, transactions
from chalicelib.storage.transactions import TransactionFailed, Tx


def _now() -> datetime:
    return datetime.now(UTC)


# --- agencies -------------------------------------------------------------------

def create_agency(spec: AgencyCreate, actor: str) -> AgencyProvisioned:
    """An agency and its first agency key, atomically."""
    at = _now()
    scope = Scope.agency(spec.agency_id)
    key_rec, minted = api_keys.new_key_record(
        scope, KeyCreate(role=Role.AGENCY, name="first agency key"), actor, at)
    agency_rec = directory.agency_record(spec, at)

    def build(tx: Tx) -> None:
        directory.add_new(tx, agency_rec)
        api_keys.key_store.add_new(tx, key_rec)
        audit.add(tx, audit.entry("platform", action="agency.created", actor=actor, at=at,
                                  target=f"agency:{spec.agency_id}"))

    try:
        transactions.write(build)
    except TransactionFailed as err:
        if err.condition_failed(0):
            raise conflict("agency_exists", f"Agency {spec.agency_id!r} already exists.", "agency_id") from None
        raise
    return AgencyProvisioned(agency=Agency(created_at=at, **spec.model_dump()),
                             key=api_keys.created_view(key_rec, minted, at))


def require_agency(agency_id: str) -> Agency:
    agency = directory.get_agency(agency_id)
    if agency is None:
        raise not_found("Agency")
    return agency


# --- tenants --------------------------------------------------------------------

FIRST_KEYS = (
    KeyCreate(role=Role.TENANT_ADMIN, name="first admin key"),
    KeyCreate(role=Role.POS, name="first POS key"),
)


def provision_tenant(agency_id: str, spec: TenantCreate, actor: str) -> TenantProvisioned:
    """Tenant, first program, stores, first admin and POS keys and the audit entry: one transaction.

    A retry after a lost response gets 409 `tenant_exists`; the first keys are
    shown only once, so the agency mints new ones through the keys routes.
    """
    at = _now()
    tenant_doc = spec.model_dump(mode="json", include={"name", "plan", "currency", "timezone", "partners"})
    tenant_doc.update(tenant_id=spec.tenant_id, agency_id=agency_id, status=TenantStatus.ACTIVE.value)
    scope = Scope.tenant(spec.tenant_id, agency_id)
    minted_keys = [api_keys.new_key_record(scope, k, actor, at) for k in FIRST_KEYS]
    tenant_rec = directory.tenant_record(spec.tenant_id, tenant_doc, at)
    program_rec = directory.program_record(spec.tenant_id, spec.program, at)
    store_recs = [directory.store_record(spec.tenant_id, s, at) for s in spec.stores]

    def build(tx: Tx) -> None:
        directory.add_new(tx, tenant_rec)
        directory.add_new(tx, program_rec)
        for rec in store_recs:
            directory.add_new(tx, rec)
        for key_rec, _ in minted_keys:
            api_keys.key_store.add_new(tx, key_rec)
        audit.add(tx, audit.entry(scope.partition, action="tenant.provisioned", actor=actor, at=at,
                                  target=f"tenant:{spec.tenant_id}", detail={"agency_id": agency_id}))

    try:
        transactions.write(build)
    except TransactionFailed as err:
        if err.condition_failed(0):
            raise conflict("tenant_exists", f"Tenant {spec.tenant_id!r} already exists.", "tenant_id") from None
        raise
    api_keys.forget_tenant_status(spec.tenant_id)
    tenant = directory.get_tenant(spec.tenant_id)
    program = directory.get_program(spec.tenant_id, spec.program.id)
    assert tenant is not None and program is not None
    stores = [directory.get_store(spec.tenant_id, s.id) for s in spec.stores]
    keys: list[KeyCreated] = [api_keys.created_view(rec, minted, at) for rec, minted in minted_keys]
    return TenantProvisioned(tenant=tenant, program=program, stores=[s for s in stores if s], keys=keys)


def require_tenant_of_agency(agency_id: str, tenant_id: str) -> Tenant:
    tenant = directory.get_tenant_of_agency(agency_id, tenant_id)
    if tenant is None:
        raise not_found("Tenant")
    return tenant


def require_tenant(tenant_id: str) -> Tenant:
    tenant = directory.get_tenant(tenant_id)
    if tenant is None:
        raise not_found("Tenant")
    return tenant


def update_tenant(agency_id: str, tenant_id: str, changes: TenantUpdate, actor: str) -> Tenant:
    tenant = require_tenant_of_agency(agency_id, tenant_id)
    if tenant.status.value == "deleting":
        raise conflict("tenant_deleting", "This tenant is being deleted.")
    patch = changes.model_dump(mode="json", exclude_none=True)
    updated = directory.update_tenant(tenant_id, patch)
    if updated is None:
        raise not_found("Tenant")
    if patch:
        audit.put(audit.entry(tenant_id, action="tenant.updated", actor=actor, at=_now(),
                              target=f"tenant:{tenant_id}", detail={k: str(v) for k, v in patch.items()}))
    api_keys.forget_tenant_status(tenant_id)
    return updated


PURGE_JOB = "tenant.purge"


def request_deletion(agency_id: str, tenant_id: str, confirm: str, actor: str) -> Tenant:
    """Offboard a client: keys stop working now, a worker purges the data in the background."""
    tenant = require_tenant_of_agency(agency_id, tenant_id)
    if confirm != tenant_id:
        raise ApiError(400, "confirmation_required", "Pass ?confirm=<tenant_id> to delete a tenant and all its data.",
                       [ErrorDetail("confirm", "must equal the tenant id")])
    if tenant.status.value != "deleting":
        tenant = directory.update_tenant(tenant_id, {"status": "deleting"}) or tenant
        audit.put(audit.entry(f"agency#{agency_id}", action="tenant.deletion_requested", actor=actor, at=_now(),
                              target=f"tenant:{tenant_id}"))
    api_keys.forget_tenant_status(tenant_id)
    queues.send(settings.jobs_queue, {"job": PURGE_JOB, "tenant_id": tenant_id})
    return tenant


# --- programs and stores ----------------------------------------------------------

def _check_program_stores(tenant_id: str, spec: ProgramSpec) -> None:
    if not spec.store_ids:
        return
    known = directory.all_store_ids(tenant_id)
    unknown = [s for s in spec.store_ids if s not in known]
    if unknown:
        raise ApiError(422, "unknown_store", f"Unknown stores: {', '.join(unknown)}.",
                       [ErrorDetail("store_ids", f"no such store: {s}") for s in unknown])


def _check_partner(tenant_id: str, spec: StoreSpec) -> None:
    if spec.partner_id is None:
        return
    tenant = require_tenant(tenant_id)
    if spec.partner_id not in {p.id for p in tenant.partners}:
        raise ApiError(422, "unknown_partner", f"Partner {spec.partner_id!r} is not a partner of this tenant.",
                       [ErrorDetail("partner_id", "no such partner")])


def create_program(tenant_id: str, spec: ProgramSpec, actor: str) -> Program:
    _check_program_stores(tenant_id, spec)
    if directory.get_program(tenant_id, spec.id) is not None:
        raise conflict("program_exists", f"Program {spec.id!r} already exists.", "id")
    program, _ = directory.put_program(tenant_id, spec)
    catalog.forget(tenant_id)
    audit.put(audit.entry(tenant_id, action="program.created", actor=actor, at=_now(), target=f"program:{spec.id}"))
    return program


def replace_program(tenant_id: str, spec: ProgramSpec, actor: str) -> Program:
    _check_program_stores(tenant_id, spec)
    try:
        program, outcome = directory.put_program(tenant_id, spec, must_exist=True)
        catalog.forget(tenant_id)
    except LookupError:
        raise not_found("Program") from None
    if outcome == "updated":
        audit.put(audit.entry(tenant_id, action="program.updated", actor=actor, at=_now(),
                              target=f"program:{spec.id}", detail={"version": str(program.version)}))
    return program


def require_program(tenant_id: str, program_id: str) -> Program:
    program = directory.get_program(tenant_id, program_id)
    if program is None:
        raise not_found("Program")
    return program


def create_store(tenant_id: str, spec: StoreSpec, actor: str) -> Store:
    _check_partner(tenant_id, spec)
    if directory.get_store(tenant_id, spec.id) is not None:
        raise conflict("store_exists", f"Store {spec.id!r} already exists.", "id")
    store, _ = directory.put_store(tenant_id, spec)
    catalog.forget(tenant_id)
    audit.put(audit.entry(tenant_id, action="store.created", actor=actor, at=_now(), target=f"store:{spec.id}"))
    return store


def replace_store(tenant_id: str, spec: StoreSpec, actor: str) -> Store:
    _check_partner(tenant_id, spec)
    try:
        store, outcome = directory.put_store(tenant_id, spec, must_exist=True)
        catalog.forget(tenant_id)
    except LookupError:
        raise not_found("Store") from None
    if outcome == "updated":
        audit.put(audit.entry(tenant_id, action="store.updated", actor=actor, at=_now(), target=f"store:{spec.id}"))
    return store


def require_store(tenant_id: str, store_id: str) -> Store:
    store = directory.get_store(tenant_id, store_id)
    if store is None:
        raise not_found("Store")
    return store
