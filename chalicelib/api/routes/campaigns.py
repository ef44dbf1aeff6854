"""Mailing campaigns (tenant admin): create (now or scheduled), follow the counts, cancel."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.api.registry import Request, Router
from chalicelib.api.routes.common import lazy_module, page, tenant_id_of
from chalicelib.domain.roles import Role
from chalicelib.schemas.campaigns import Campaign, CampaignCreate, CampaignResults
from chalicelib.schemas.common import Page, PageQuery

if TYPE_CHECKING:
    from chalicelib.services.marketing import campaign_results as results
    from chalicelib.services.marketing import campaigns
else:
    results = lazy_module("chalicelib.services.marketing.campaign_results")
    campaigns = lazy_module("chalicelib.services.marketing.campaigns")

router = Router("Campaigns")
ADMIN = {Role.TENANT_ADMIN}


@router.route("POST", "/v1/campaigns", roles=ADMIN, body=CampaignCreate, response=Campaign, status=201,
              errors=(404, 409, 422),
              summary="Create a campaign: a segment, a channel and a template (+ a coupon campaign), sent now or at "
                      "`send_at`; a share of the segment is held out as the control group.")
def create_campaign(req: Request) -> Campaign:
    return campaigns.create(tenant_id_of(req.caller), req.body, req.actor)


@router.route("GET", "/v1/campaigns", roles=ADMIN, query=PageQuery, response=Page[Campaign],
              summary="The tenant's campaigns, newest first.")
def list_campaigns(req: Request) -> Page[Campaign]:
    return page(*campaigns.list_all(tenant_id_of(req.caller), req.query.limit, req.query.cursor))


@router.route("GET", "/v1/campaigns/{campaign_id}", roles=ADMIN, response=Campaign, errors=(404,),
              summary="A campaign: status and counts (targeted, control, queued, sent, failed, suppressed by "
                      "reason).")
def get_campaign(req: Request) -> Campaign:
    return campaigns.get(tenant_id_of(req.caller), req.path["campaign_id"])


@router.route("POST", "/v1/campaigns/{campaign_id}/cancel", roles=ADMIN, response=Campaign, errors=(404, 409),
              summary="Stop a scheduled or sending campaign (messages already queued still go out).")
def cancel_campaign(req: Request) -> Campaign:
    return campaigns.cancel(tenant_id_of(req.caller), req.path["campaign_id"], req.actor)


@router.route("GET", "/v1/campaigns/{campaign_id}/results", roles=ADMIN, response=CampaignResults, errors=(404,),
              summary="A campaign's results: delivered, failed, suppressed, opt-outs, and the purchases of recipients "
                      "and of the control group within the attribution window, with the uplift and incremental "
                      "revenue.")
def campaign_results(req: Request) -> CampaignResults:
    return results.results(tenant_id_of(req.caller), req.path["campaign_id"])
