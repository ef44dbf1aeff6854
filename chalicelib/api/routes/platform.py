"""Platform operator routes: agencies and their keys."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.api.registry import Request, Router
from chalicelib.api.routes import keys
from chalicelib.api.routes.common import lazy_module, page
from chalicelib.domain.roles import Role
from chalicelib.schemas.common import Page, PageQuery
from chalicelib.schemas.keys import KeyCreate, KeyCreated, KeyInfo, KeyRotate
from chalicelib.schemas.tenancy import Agency, AgencyCreate, AgencyProvisioned
from chalicelib.services.tenancy.scopes import Scope

if TYPE_CHECKING:
    from chalicelib.services.tenancy import listings, tenancy
else:
    tenancy = lazy_module("chalicelib.services.tenancy.tenancy")
    listings = lazy_module("chalicelib.services.tenancy.listings")

router = Router("Platform")
PLATFORM = {Role.PLATFORM}


def _agency_scope(req: Request) -> Scope:
    return Scope.agency(tenancy.require_agency(req.path["agency_id"]).agency_id)


@router.route("POST", "/v1/platform/agencies", roles=PLATFORM, body=AgencyCreate, response=AgencyProvisioned,
              status=201, errors=(409,), summary="Create an agency and its first agency key (shown once).")
def create_agency(req: Request) -> AgencyProvisioned:
    return tenancy.create_agency(req.body, req.actor)


@router.route("GET", "/v1/platform/agencies", roles=PLATFORM, query=PageQuery, response=Page[Agency],
              summary="List agencies.")
def list_agencies(req: Request) -> Page[Agency]:
    return page(*listings.agencies(req.query.limit, req.query.cursor))


@router.route("GET", "/v1/platform/agencies/{agency_id}", roles=PLATFORM, response=Agency, errors=(404,),
              summary="One agency.")
def get_agency(req: Request) -> Agency:
    return tenancy.require_agency(req.path["agency_id"])


@router.route("GET", "/v1/platform/agencies/{agency_id}/keys", roles=PLATFORM, query=PageQuery,
              response=Page[KeyInfo], errors=(404,), summary="List an agency's keys.")
def list_agency_keys(req: Request) -> Page[KeyInfo]:
    return keys.list_in(req, _agency_scope(req))


@router.route("POST", "/v1/platform/agencies/{agency_id}/keys", roles=PLATFORM, body=KeyCreate,
              response=KeyCreated, status=201, errors=(404,), summary="Create an agency key (shown once).")
def create_agency_key(req: Request) -> KeyCreated:
    return keys.create_in(req, _agency_scope(req))


@router.route("DELETE", "/v1/platform/agencies/{agency_id}/keys/{key_id}", roles=PLATFORM, response=KeyInfo,
              errors=(404,), summary="Revoke an agency key.")
def revoke_agency_key(req: Request) -> KeyInfo:
    return keys.revoke_in(req, _agency_scope(req))


@router.route("POST", "/v1/platform/agencies/{agency_id}/keys/{key_id}/rotate", roles=PLATFORM, body=KeyRotate,
              response=KeyCreated, status=201, errors=(404, 409), summary="Rotate an agency key.")
def rotate_agency_key(req: Request) -> KeyCreated:
    return keys.rotate_in(req, _agency_scope(req))
