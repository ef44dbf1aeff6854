"""Agency routes: provisioning and managing the agency's own tenants (never another agency's)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from chalicelib.api.registry import Request, Router
from chalicelib.api.routes import keys
from chalicelib.api.routes.common import lazy_module, page
from chalicelib.domain.roles import Role
from chalicelib.schemas.common import Page, PageQuery, Query
from chalicelib.schemas.keys import KeyCreate, KeyCreated, KeyInfo, KeyRotate
from chalicelib.schemas.tenancy import Tenant, TenantCreate, TenantProvisioned, TenantUpdate
from chalicelib.services.tenancy.scopes import Scope

if TYPE_CHECKING:
    from chalicelib.services.tenancy import listings, tenancy
else:
    tenancy = lazy_module("chalicelib.services.tenancy.tenancy")
    listings = lazy_module("chalicelib.services.tenancy.listings")

router = Router("Agency")
AGENCY = {Role.AGENCY}


class DeleteQuery(Query):
    confirm: str = Field(default="", max_length=40, description="Must equal the tenant id.")


def _agency_id(req: Request) -> str:
    return req.caller.owner


def _tenant_scope(req: Request) -> Scope:
    tenant = tenancy.require_tenant_of_agency(_agency_id(req), req.path["tenant_id"])
    return Scope.tenant(tenant.tenant_id, tenant.agency_id)


@router.route("POST", "/v1/agency/tenants", roles=AGENCY, body=TenantCreate, response=TenantProvisioned,
              status=201, errors=(409,),
              summary="Provision a tenant with its first program and stores; returns its first admin and POS keys.")
def create_tenant(req: Request) -> TenantProvisioned:
    return tenancy.provision_tenant(_agency_id(req), req.body, req.actor)


@router.route("GET", "/v1/agency/tenants", roles=AGENCY, query=PageQuery, response=Page[Tenant],
              summary="List the agency's tenants.")
def list_tenants(req: Request) -> Page[Tenant]:
    return page(*listings.tenants_of_agency(_agency_id(req), req.query.limit, req.query.cursor))


@router.route("GET", "/v1/agency/tenants/{tenant_id}", roles=AGENCY, response=Tenant, errors=(404,),
              summary="One of the agency's tenants.")
def get_tenant(req: Request) -> Tenant:
    return tenancy.require_tenant_of_agency(_agency_id(req), req.path["tenant_id"])


@router.route("PATCH", "/v1/agency/tenants/{tenant_id}", roles=AGENCY, body=TenantUpdate, response=Tenant,
              errors=(404, 409), summary="Rename, change plan, time zone or partners, suspend or reactivate.")
def update_tenant(req: Request) -> Tenant:
    return tenancy.update_tenant(_agency_id(req), req.path["tenant_id"], req.body, req.actor)


@router.route("DELETE", "/v1/agency/tenants/{tenant_id}", roles=AGENCY, query=DeleteQuery, response=Tenant,
              status=202, errors=(400, 404),
              summary="Offboard a tenant: its keys stop at once and a worker deletes all its data.")
def delete_tenant(req: Request) -> Tenant:
    return tenancy.request_deletion(_agency_id(req), req.path["tenant_id"], req.query.confirm, req.actor)


@router.route("GET", "/v1/agency/tenants/{tenant_id}/keys", roles=AGENCY, query=PageQuery,
              response=Page[KeyInfo], errors=(404,), summary="List a tenant's keys.")
def list_tenant_keys(req: Request) -> Page[KeyInfo]:
    return keys.list_in(req, _tenant_scope(req))


@router.route("POST", "/v1/agency/tenants/{tenant_id}/keys", roles=AGENCY, body=KeyCreate, response=KeyCreated,
              status=201, errors=(404, 422), summary="Create a tenant key (tenant_admin, pos or support).")
def create_tenant_key(req: Request) -> KeyCreated:
    return keys.create_in(req, _tenant_scope(req))


@router.route("DELETE", "/v1/agency/tenants/{tenant_id}/keys/{key_id}", roles=AGENCY, response=KeyInfo,
              errors=(404,), summary="Revoke a tenant key.")
def revoke_tenant_key(req: Request) -> KeyInfo:
    return keys.revoke_in(req, _tenant_scope(req))


@router.route("POST", "/v1/agency/tenants/{tenant_id}/keys/{key_id}/rotate", roles=AGENCY, body=KeyRotate,
              response=KeyCreated, status=201, errors=(404, 409), summary="Rotate a tenant key.")
def rotate_tenant_key(req: Request) -> KeyCreated:
    return keys.rotate_in(req, _tenant_scope(req))
