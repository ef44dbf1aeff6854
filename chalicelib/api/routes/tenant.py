"""Tenant routes: the tenant's own settings, programs, stores and audit trail."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.api.registry import Request, Router
from chalicelib.api.routes.common import lazy_module, page, tenant_id_of
from chalicelib.domain.ids import is_slug
from chalicelib.domain.roles import Role
from chalicelib.errors import not_found
from chalicelib.schemas.audit import AuditEntry, AuditQuery
from chalicelib.schemas.common import Page, PageQuery
from chalicelib.schemas.tenancy import Program, ProgramSpec, ProgramUpdate, Store, StoreSpec, StoreUpdate, Tenant
from chalicelib.services.tenancy.scopes import own_scope

if TYPE_CHECKING:
    from chalicelib.services.tenancy import listings, tenancy
else:
    tenancy = lazy_module("chalicelib.services.tenancy.tenancy")
    listings = lazy_module("chalicelib.services.tenancy.listings")

router = Router("Tenant")
ADMIN = {Role.TENANT_ADMIN}
READERS = {Role.TENANT_ADMIN, Role.POS, Role.SUPPORT}
HISTORY = {Role.TENANT_ADMIN, Role.SUPPORT}


def _existing_id(req: Request, name: str, what: str) -> str:
    """A path id that could name a stored entity; any other (not a slug) cannot exist: 404, as for an unknown one."""
    value = req.path[name]
    if not is_slug(value):
        raise not_found(what)
    return value


@router.route("GET", "/v1/tenant", roles=READERS, response=Tenant, summary="The caller's tenant.")
def get_own_tenant(req: Request) -> Tenant:
    return tenancy.require_tenant(tenant_id_of(req.caller))


@router.route("GET", "/v1/programs", roles=READERS, query=PageQuery, response=Page[Program],
              summary="The tenant's programs and their rules.")
def list_programs(req: Request) -> Page[Program]:
    return page(*listings.programs(tenant_id_of(req.caller), req.query.limit, req.query.cursor))


@router.route("POST", "/v1/programs", roles=ADMIN, body=ProgramSpec, response=Program, status=201,
              errors=(409, 422), summary="Create a program.")
def create_program(req: Request) -> Program:
    return tenancy.create_program(tenant_id_of(req.caller), req.body, req.actor)


@router.route("GET", "/v1/programs/{program_id}", roles=READERS, response=Program, errors=(404,),
              summary="One program.")
def get_program(req: Request) -> Program:
    return tenancy.require_program(tenant_id_of(req.caller), req.path["program_id"])


@router.route("PUT", "/v1/programs/{program_id}", roles=ADMIN, body=ProgramUpdate, response=Program,
              errors=(404, 409, 422),
              summary="Replace a program's rules: a new rule version, in force now or from effective_at.")
def replace_program(req: Request) -> Program:
    spec = req.body.with_id(_existing_id(req, "program_id", "Program"))
    return tenancy.replace_program(tenant_id_of(req.caller), spec, req.actor, req.body.effective_at)


@router.route("GET", "/v1/programs/{program_id}/versions", roles=HISTORY, query=PageQuery, response=Page[Program],
              errors=(404,), summary="A program's rule versions, newest first, each with when it took effect.")
def list_program_versions(req: Request) -> Page[Program]:
    return page(*tenancy.program_versions(tenant_id_of(req.caller), req.path["program_id"], req.query.limit,
                                          req.query.cursor))


@router.route("GET", "/v1/programs/{program_id}/versions/{version}", roles=HISTORY, response=Program,
              errors=(404,), summary="One rule version of a program (the version a ledger entry records).")
def get_program_version(req: Request) -> Program:
    return tenancy.require_program_version(tenant_id_of(req.caller), req.path["program_id"], req.path["version"])


@router.route("GET", "/v1/stores", roles=READERS, query=PageQuery, response=Page[Store], summary="The tenant's stores.")
def list_stores(req: Request) -> Page[Store]:
    return page(*listings.stores(tenant_id_of(req.caller), req.query.limit, req.query.cursor))


@router.route("POST", "/v1/stores", roles=ADMIN, body=StoreSpec, response=Store, status=201, errors=(409, 422),
              summary="Create a store.")
def create_store(req: Request) -> Store:
    return tenancy.create_store(tenant_id_of(req.caller), req.body, req.actor)


@router.route("GET", "/v1/stores/{store_id}", roles=READERS, response=Store, errors=(404,), summary="One store.")
def get_store(req: Request) -> Store:
    return tenancy.require_store(tenant_id_of(req.caller), req.path["store_id"])


@router.route("PUT", "/v1/stores/{store_id}", roles=ADMIN, body=StoreUpdate, response=Store, errors=(404, 422),
              summary="Replace a store's details.")
def replace_store(req: Request) -> Store:
    spec = req.body.with_id(_existing_id(req, "store_id", "Store"))
    return tenancy.replace_store(tenant_id_of(req.caller), spec, req.actor)


@router.route("GET", "/v1/audit", roles={Role.PLATFORM, Role.AGENCY, Role.TENANT_ADMIN}, query=AuditQuery,
              response=Page[AuditEntry],
              summary="Your own scope's audit trail, newest first; filter by person (id or e-mail), key or action.")
def list_audit(req: Request) -> Page[AuditEntry]:
    q = req.query
    return page(*listings.audit_entries(own_scope(req.caller).partition, q.limit, q.cursor, q.actor, q.action))
