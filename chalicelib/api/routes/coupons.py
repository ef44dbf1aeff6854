"""Coupon campaigns (tenant admin) and the look-up of one code (till, admin, support)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.api.registry import Request, Router
from chalicelib.api.routes.common import lazy_module, page, tenant_id_of
from chalicelib.domain.roles import Role
from chalicelib.schemas.common import Page, PageQuery
from chalicelib.schemas.coupons import Campaign, CampaignCreate, CampaignUpdate, CouponCodeView, CouponLookup

if TYPE_CHECKING:
    from chalicelib.services.program import coupons
else:
    coupons = lazy_module("chalicelib.services.program.coupons")

router = Router("Coupons")
ADMIN = {Role.TENANT_ADMIN}
READERS = {Role.TENANT_ADMIN, Role.SUPPORT}
LOOKUP = {Role.POS, Role.TENANT_ADMIN, Role.SUPPORT}


@router.route("POST", "/v1/coupon-campaigns", roles=ADMIN, body=CampaignCreate, response=Campaign, status=201,
              errors=(409, 422),
              summary="Create a coupon campaign: a shared code is ready at once (201); unique codes are generated "
                      "in the background (202, poll the campaign's `generation`).")
def create_campaign(req: Request) -> tuple[int, Campaign]:
    return coupons.create(tenant_id_of(req.caller), req.body, req.actor)


@router.route("GET", "/v1/coupon-campaigns", roles=READERS, query=PageQuery, response=Page[Campaign],
              summary="The tenant's coupon campaigns, by id.")
def list_campaigns(req: Request) -> Page[Campaign]:
    return page(*coupons.list_all(tenant_id_of(req.caller), req.query.limit, req.query.cursor))


@router.route("GET", "/v1/coupon-campaigns/{campaign_id}", roles=READERS, response=Campaign, errors=(404,),
              summary="A coupon campaign and its generation progress.")
def get_campaign(req: Request) -> Campaign:
    return coupons.get(tenant_id_of(req.caller), req.path["campaign_id"])


@router.route("PUT", "/v1/coupon-campaigns/{campaign_id}", roles=ADMIN, body=CampaignUpdate, response=Campaign,
              errors=(404, 409, 422), summary="Rename, pause or resume a campaign, or move its end of validity.")
def update_campaign(req: Request) -> Campaign:
    return coupons.update(tenant_id_of(req.caller), req.path["campaign_id"], req.body, req.actor)


@router.route("GET", "/v1/coupon-campaigns/{campaign_id}/codes", roles=ADMIN, query=PageQuery,
              response=Page[CouponCodeView], errors=(404,),
              summary="The campaign's codes with their uses, in code order, for distribution.")
def campaign_codes(req: Request) -> Page[CouponCodeView]:
    return page(*coupons.codes(tenant_id_of(req.caller), req.path["campaign_id"], req.query.limit,
                               req.query.cursor))


@router.route("GET", "/v1/coupons/{code}", roles=LOOKUP, response=CouponLookup, errors=(404,),
              summary="One code (any case, dashes optional): its campaign, effect, validity, uses left, and "
                      "whether it is usable now.")
def lookup_coupon(req: Request) -> CouponLookup:
    return coupons.lookup(tenant_id_of(req.caller), req.path["code"])
