"""Provisioning and managing agencies, tenants, programs and stores."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from chalicelib import clock
from chalicelib.domain.rate_limits import AGENCY_PLAN
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
from chalicelib.services.program import catalog
from chalicelib.services.tenancy import keys as api_keys
from chalicelib.services.tenancy.scopes import Scope
from chalicelib.settings import settings
from chalicelib.storage import audit, directory, queues, transactions, usage_keys
from chalicelib.storage import keys as key_store
from chalicelib.storage.transactions import TransactionFailed, Tx

FIRST_KEYS = (
    KeyCreate(role=Role.TENANT_ADMIN, name="first admin key"),
    KeyCreate(role=Role.POS, name="first POS key"),
)

PURGE_JOB = "tenant.purge"

PAST_TOLERANCE = timedelta(seconds=60)
"""How far in the past a stated `effective_at` may be (clock skew between caller and server): it then means now."""


# --- agencies -------------------------------------------------------------------

def create_agency(spec: AgencyCreate, actor: str) -> AgencyProvisioned:
    """An agency and its first agency key, atomically."""
    at = _now()
    scope = Scope.agency(spec.agency_id)
    key_rec, minted = api_keys.new_key_record(
        scope, KeyCreate(role=Role.AGENCY, name="first agency key"), actor, at)
    agency_rec = directory.agency_record(spec, at)
    usage_keys.ensure_key("agency", spec.agency_id, AGENCY_PLAN)  # before any write: a failure leaves nothing

    def build(tx: Tx) -> None:
        directory.add_new(tx, agency_rec)
        key_store.add_new(tx, key_rec)
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
    """The agency, or a 404."""
    agency = directory.get_agency(agency_id)
    if agency is None:
        raise not_found("Agency")
    return agency


# --- tenants --------------------------------------------------------------------

def provision_tenant(agency_id: str, spec: TenantCreate, actor: str) -> TenantProvisioned:
    """Tenant, first program, stores, first admin and POS keys and the audit entry: one transaction.

    A retry after a lost response gets 409 `tenant_exists`; the first keys are
    shown only once, so the agency mints new ones through the keys routes.
    """
    at = _now()
    tenant_doc = spec.model_dump(mode="json", include={"name", "plan", "currency", "timezone", "language", "partners",
                                                    "privacy", "branding"})
    tenant_doc.update(tenant_id=spec.tenant_id, agency_id=agency_id, status=TenantStatus.ACTIVE.value)
    scope = Scope.tenant(spec.tenant_id, agency_id)
    minted_keys = [api_keys.new_key_record(scope, k, actor, at) for k in FIRST_KEYS]
    effective_at = clock.now()
    # On the rules' clock, like the program's start: the daily sweep starts at the tenant's creation.
    tenant_rec = directory.tenant_record(spec.tenant_id, tenant_doc, effective_at)
    program_rec = directory.program_record(spec.tenant_id, spec.program, at, effective_at)
    program_v1 = directory.program_version_record(spec.tenant_id, spec.program, 1, effective_at, at, at)
    store_recs = [directory.store_record(spec.tenant_id, s, at) for s in spec.stores]
    if directory.get_tenant(spec.tenant_id) is not None:  # never move an existing tenant's usage key
        raise conflict("tenant_exists", f"Tenant {spec.tenant_id!r} already exists.", "tenant_id")
    # Request limits before any write: a failure leaves nothing behind and a retry starts over.
    usage_keys.ensure_key("tenant", spec.tenant_id, spec.plan.value)

    def build(tx: Tx) -> None:
        directory.add_new(tx, tenant_rec)
        directory.add_new(tx, program_rec)
        directory.add_new(tx, program_v1)
        for rec in store_recs:
            directory.add_new(tx, rec)
        for key_rec, _ in minted_keys:
            key_store.add_new(tx, key_rec)
        audit.add(tx, audit.entry(scope.partition, action="tenant.provisioned", actor=actor, at=at,
                                  target=f"tenant:{spec.tenant_id}", detail={"agency_id": agency_id}))

    try:
        transactions.write(build)
    except TransactionFailed as err:
        if err.condition_failed(0):
            if (existing := directory.get_tenant(spec.tenant_id)) is not None:  # lost a race: its own plan back
                usage_keys.ensure_key("tenant", spec.tenant_id, existing.plan.value)
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
    """The tenant if the agency owns it; anyone else's tenant is a 404 like a missing one."""
    tenant = directory.get_tenant_of_agency(agency_id, tenant_id)
    if tenant is None:
        raise not_found("Tenant")
    return tenant


def require_tenant(tenant_id: str) -> Tenant:
    """The tenant, or a 404."""
    tenant = directory.get_tenant(tenant_id)
    if tenant is None:
        raise not_found("Tenant")
    return tenant


def update_tenant(agency_id: str, tenant_id: str, changes: TenantUpdate, actor: str) -> Tenant:
    """Change an agency's tenant; the plan's request limits are set first, so a failure changes nothing."""
    tenant = require_tenant_of_agency(agency_id, tenant_id)
    if tenant.status.value == "deleting":
        raise conflict("tenant_deleting", "This tenant is being deleted.")
    patch = changes.model_dump(mode="json", exclude_none=True)
    if "plan" in patch:  # request limits first: a failure changes nothing, and a repeat repairs the key
        usage_keys.ensure_key("tenant", tenant_id, str(patch["plan"]))
    updated = directory.update_tenant(tenant_id, patch)
    if updated is None:
        raise not_found("Tenant")
    if patch:
        audit.put(audit.entry(tenant_id, action="tenant.updated", actor=actor, at=_now(),
                              target=f"tenant:{tenant_id}", detail={k: str(v) for k, v in patch.items()}))
    api_keys.forget_tenant_status(tenant_id)
    catalog.forget(tenant_id)
    if patch.keys() & {"name", "branding", "language"}:  # what the tenant's passes and Google Wallet class show
        from chalicelib.services.wallet import changes as wallet_changes  # loaded only for such a change

        wallet_changes.tenant_look_changed(tenant_id)
    return updated


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
    usage_keys.remove_key("tenant", tenant_id)
    queues.send(settings.jobs_queue, {"job": PURGE_JOB, "tenant_id": tenant_id})
    return tenant


# --- programs and stores ----------------------------------------------------------

def check_program_stores(tenant_id: str, spec: ProgramSpec, field: str = "store_ids") -> None:
    """A program may only name the tenant's own stores (a saved one, or a proposal being simulated)."""
    if not spec.store_ids:
        return
    known = directory.all_store_ids(tenant_id)
    unknown = [s for s in spec.store_ids if s not in known]
    if unknown:
        raise ApiError(422, "unknown_store", f"Unknown stores: {', '.join(unknown)}.",
                       [ErrorDetail(field, f"no such store: {s}") for s in unknown])


def create_program(tenant_id: str, spec: ProgramSpec, actor: str) -> Program:
    """Version 1 of a new program, in force at once."""
    check_program_stores(tenant_id, spec)
    if directory.get_program(tenant_id, spec.id) is not None:
        raise conflict("program_exists", f"Program {spec.id!r} already exists.", "id")
    for scope in catalog.card_scopes(tenant_id)[1:]:
        if catalog.program(scope, spec.id) is not None:  # the tills find programs by id: own first, then coalitions
            raise ApiError(422, "program_id_clash", f"Program id {spec.id!r} is the program of a coalition this "
                           "tenant is a partner of; choose another id.", [ErrorDetail("id", "taken by a coalition")])
    program, _ = directory.put_program(tenant_id, spec, also=_audit_version(tenant_id, "program.created", actor))
    catalog.forget(tenant_id)
    return program


def replace_program(tenant_id: str, spec: ProgramSpec, actor: str, effective_at: datetime | None = None) -> Program:
    """A new rule version, in force from `effective_at` (default now); identical rules in force write nothing."""
    check_program_stores(tenant_id, spec)
    when = _effective_at(effective_at)
    try:
        program, _ = directory.put_program(tenant_id, spec, effective_at=when, must_exist=True,
                                           also=_audit_version(tenant_id, "program.updated", actor))
    except LookupError:
        raise not_found("Program") from None
    catalog.forget(tenant_id)
    return program


def require_program(tenant_id: str, program_id: str) -> Program:
    """The tenant's program, or a 404."""
    program = directory.get_program(tenant_id, program_id)
    if program is None:
        raise not_found("Program")
    return program


def program_versions(tenant_id: str, program_id: str, limit: int, cursor: str | None
                     ) -> tuple[list[Program], str | None]:
    """Every rule version of a program, newest first: what a call-center operator explains history with."""
    require_program(tenant_id, program_id)
    return directory.list_program_versions(tenant_id, program_id, limit, cursor)


def require_program_version(tenant_id: str, program_id: str, version: str) -> Program:
    """One stored version of a program (its rules as they were), or a 404."""
    number = int(version) if version.isascii() and version.isdigit() and len(version) <= 8 else 0
    found = directory.get_program_version(tenant_id, program_id, number) if number >= 1 else None
    if found is None:
        raise not_found("Program version")
    return found


def create_store(tenant_id: str, spec: StoreSpec, actor: str) -> Store:
    """Add a store; a partner it names must be one of the tenant's partners."""
    _check_partner(tenant_id, spec)
    if directory.get_store(tenant_id, spec.id) is not None:
        raise conflict("store_exists", f"Store {spec.id!r} already exists.", "id")
    store, _ = directory.put_store(tenant_id, spec)
    catalog.forget(tenant_id)
    audit.put(audit.entry(tenant_id, action="store.created", actor=actor, at=_now(), target=f"store:{spec.id}"))
    return store


def replace_store(tenant_id: str, spec: StoreSpec, actor: str) -> Store:
    """Replace an existing store; a partner it names must be one of the tenant's partners."""
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
    """The tenant's store, or a 404."""
    store = directory.get_store(tenant_id, store_id)
    if store is None:
        raise not_found("Store")
    return store


# --- helpers --------------------------------------------------------------------------------------------

def _now() -> datetime:
    return datetime.now(UTC)


def _check_partner(tenant_id: str, spec: StoreSpec) -> None:
    if spec.partner_id is None:
        return
    tenant = require_tenant(tenant_id)
    if spec.partner_id not in {p.id for p in tenant.partners}:
        raise ApiError(422, "unknown_partner", f"Partner {spec.partner_id!r} is not a partner of this tenant.",
                       [ErrorDetail("partner_id", "no such partner")])


def _effective_at(requested: datetime | None) -> datetime | None:
    """A stated start for new rules, checked: aware, not in the past. None means now (fixed at write time)."""
    if requested is None:
        return None
    if requested.tzinfo is None or requested.utcoffset() is None:
        raise ApiError(422, "effective_at_without_timezone", "effective_at needs a time zone offset.",
                       [ErrorDetail("effective_at", "add an offset, e.g. 2026-12-01T00:00:00+03:00")])
    now = clock.now()
    if requested < now - PAST_TOLERANCE:
        raise ApiError(422, "effective_at_in_past", "Rules cannot change in the past: history stays as it was.",
                       [ErrorDetail("effective_at", f"must not be before {now.isoformat()}")])
    return requested if requested > now else None


def _audit_version(tenant_id: str, action: str, actor: str) -> Callable[[Tx, Program], None]:
    """The audit entry of a new rule version, written in the version's own transaction."""
    def add(tx: Tx, version: Program) -> None:
        at = version.effective_at.isoformat() if version.effective_at else ""
        audit.add(tx, audit.entry(tenant_id, action=action, actor=actor, at=_now(), target=f"program:{version.id}",
                                  detail={"version": str(version.version), "effective_at": at}))
    return add
