"""Coalitions: the agency links its tenants into one shared program; partners read it and their settlement."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.api.registry import Request, Router
from chalicelib.api.routes.common import lazy_module, page, tenant_id_of
from chalicelib.domain.roles import Role
from chalicelib.schemas.coalitions import (
    Coalition,
    CoalitionCreate,
    CoalitionDetail,
    MemberAdd,
    MemberCoalition,
    Settlement,
    SettlementQuery,
)
from chalicelib.schemas.common import Page, PageQuery

if TYPE_CHECKING:
    from chalicelib.services.program import coalitions
else:
    coalitions = lazy_module("chalicelib.services.program.coalitions")

router = Router("Coalitions")
AGENCY = {Role.AGENCY}
PARTNER_READERS = {Role.TENANT_ADMIN, Role.SUPPORT}
SETTLEMENT = ("Points issued and redeemed by each partner in [from, to), and the net amount each owes the pool "
              "(positive) or is owed (negative) at the program's point value; breakage from expiry.")


@router.route("POST", "/v1/agency/coalitions", roles=AGENCY, body=CoalitionCreate, response=CoalitionDetail,
              status=201, errors=(409, 422),
              summary="Create a coalition of the agency's tenants with its shared points program.")
def create_coalition(req: Request) -> CoalitionDetail:
    return coalitions.create(req.caller.owner, req.body, req.actor)


@router.route("GET", "/v1/agency/coalitions", roles=AGENCY, query=PageQuery, response=Page[Coalition],
              summary="List the agency's coalitions.")
def list_coalitions(req: Request) -> Page[Coalition]:
    return page(*coalitions.list_all(req.caller.owner, req.query.limit, req.query.cursor))


@router.route("GET", "/v1/agency/coalitions/{coalition_id}", roles=AGENCY, response=CoalitionDetail,
              errors=(404,), summary="One of the agency's coalitions, with its program.")
def get_coalition(req: Request) -> CoalitionDetail:
    return coalitions.get(req.caller.owner, req.path["coalition_id"])


@router.route("POST", "/v1/agency/coalitions/{coalition_id}/members", roles=AGENCY, body=MemberAdd,
              response=Coalition, errors=(404, 409, 422),
              summary="Add one of the agency's tenants as a partner: its tills find the shared cards.")
def add_member(req: Request) -> Coalition:
    return coalitions.add_member(req.caller.owner, req.path["coalition_id"], req.body.tenant_id, req.actor)


@router.route("DELETE", "/v1/agency/coalitions/{coalition_id}/members/{tenant_id}", roles=AGENCY,
              response=Coalition, errors=(404, 422),
              summary="Remove a partner: its tills no longer find the shared cards; the shared data stays.")
def remove_member(req: Request) -> Coalition:
    return coalitions.remove_member(req.caller.owner, req.path["coalition_id"], req.path["tenant_id"], req.actor)


@router.route("GET", "/v1/agency/coalitions/{coalition_id}/settlement", roles=AGENCY, query=SettlementQuery,
              response=Settlement, errors=(404,), summary=SETTLEMENT)
def agency_settlement(req: Request) -> Settlement:
    return coalitions.settlement(req.caller.owner, req.path["coalition_id"], req.query.start, req.query.end)


@router.route("GET", "/v1/coalitions", roles=PARTNER_READERS, query=PageQuery, response=Page[MemberCoalition],
              summary="The coalitions the tenant is a partner of, with the shared program's rules, by id.")
def my_coalitions(req: Request) -> Page[MemberCoalition]:
    return page(*coalitions.page_of_tenant(tenant_id_of(req.caller), req.query.limit, req.query.cursor))


@router.route("GET", "/v1/coalitions/{coalition_id}/settlement", roles={Role.TENANT_ADMIN}, query=SettlementQuery,
              response=Settlement, errors=(404,),
              summary="The partner's own settlement line and the coalition's totals for [from, to).")
def partner_settlement(req: Request) -> Settlement:
    return coalitions.partner_settlement(tenant_id_of(req.caller), req.path["coalition_id"], req.query.start,
                                         req.query.end)
