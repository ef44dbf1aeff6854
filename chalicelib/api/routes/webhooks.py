"""Outbound webhooks (tenant admin): endpoints, their secrets, a test ping and the delivery log."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.api.registry import Request, Router
from chalicelib.api.routes.common import lazy_module, page, tenant_id_of
from chalicelib.domain.roles import Role
from chalicelib.schemas.common import Page, PageQuery
from chalicelib.schemas.webhooks import Delivery, PingAccepted, Webhook, WebhookCreate, WebhookCreated, WebhookUpdate

if TYPE_CHECKING:
    from chalicelib.services.integrations import webhooks
else:
    webhooks = lazy_module("chalicelib.services.integrations.webhooks")

router = Router("Webhooks")
ADMIN = {Role.TENANT_ADMIN}


@router.route("POST", "/v1/webhooks", roles=ADMIN, status=201, body=WebhookCreate, response=WebhookCreated,
              errors=(422,),
              summary="Register an endpoint for some event types; the answer holds its signing secret, shown only "
                      "now (at most 10 endpoints per tenant).")
def create_webhook(req: Request) -> WebhookCreated:
    return webhooks.create(tenant_id_of(req.caller), req.body, req.actor)


@router.route("GET", "/v1/webhooks", roles=ADMIN, query=PageQuery, response=Page[Webhook],
              summary="The tenant's webhook endpoints (secrets hidden).")
def list_webhooks(req: Request) -> Page[Webhook]:
    return page(*webhooks.list_all(tenant_id_of(req.caller), req.query.limit, req.query.cursor))


@router.route("GET", "/v1/webhooks/{webhook_id}", roles=ADMIN, response=Webhook, errors=(404,),
              summary="One endpoint: events, state, failure counters and any automatic-disable notice.")
def get_webhook(req: Request) -> Webhook:
    return webhooks.get(tenant_id_of(req.caller), req.path["webhook_id"])


@router.route("PATCH", "/v1/webhooks/{webhook_id}", roles=ADMIN, body=WebhookUpdate, response=Webhook,
              errors=(404, 422),
              summary="Change the URL, events or description, or disable / re-enable the endpoint (re-enabling "
                      "resets its failure state).")
def update_webhook(req: Request) -> Webhook:
    return webhooks.update(tenant_id_of(req.caller), req.path["webhook_id"], req.body, req.actor)


@router.route("DELETE", "/v1/webhooks/{webhook_id}", roles=ADMIN, response=Webhook, errors=(404,),
              summary="Delete the endpoint (the answer is what was deleted); queued deliveries to it are dropped.")
def delete_webhook(req: Request) -> Webhook:
    return webhooks.delete(tenant_id_of(req.caller), req.path["webhook_id"], req.actor)


@router.route("POST", "/v1/webhooks/{webhook_id}/rotate-secret", roles=ADMIN, response=WebhookCreated,
              errors=(404,),
              summary="A new signing secret (shown only now); the previous one also signs for 24 h.")
def rotate_webhook_secret(req: Request) -> WebhookCreated:
    return webhooks.rotate(tenant_id_of(req.caller), req.path["webhook_id"], req.actor)


@router.route("POST", "/v1/webhooks/{webhook_id}/ping", roles=ADMIN, status=202, response=PingAccepted,
              errors=(404, 409),
              summary="Queue a webhook.ping event to this endpoint only.")
def ping_webhook(req: Request) -> PingAccepted:
    return webhooks.ping(tenant_id_of(req.caller), req.path["webhook_id"])


@router.route("GET", "/v1/webhooks/{webhook_id}/deliveries", roles=ADMIN, query=PageQuery, response=Page[Delivery],
              errors=(404,),
              summary="The endpoint's delivery log, newest first: status, attempts, last status code and error.")
def list_webhook_deliveries(req: Request) -> Page[Delivery]:
    return page(*webhooks.deliveries(tenant_id_of(req.caller), req.path["webhook_id"], req.query.limit,
                                     req.query.cursor))
