"""The customer base: profiles, consents, merging duplicates, export and erasure; the public unsubscribe link."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from chalice.app import Response

from chalicelib.api.registry import PUBLIC, Request, Router
from chalicelib.api.routes.common import lazy_module, tenant_id_of
from chalicelib.domain.principal import Principal
from chalicelib.domain.roles import Role
from chalicelib.schemas.customers import (
    ConsentKind,
    ConsentsIn,
    CustomerCreate,
    CustomerExport,
    CustomerOut,
    CustomerQuery,
    CustomerUpdate,
    EraseIn,
    LinkQuery,
    MergeIn,
    WithdrawIn,
    Withdrawn,
)

if TYPE_CHECKING:
    from chalicelib.services.customers import customers
else:
    customers = lazy_module("chalicelib.services.customers.customers")

router = Router("Customers")


def reread(principal: Principal, kept: dict[str, Any]) -> CustomerOut:
    """A replayed answer: the customer as stored now (the idempotency record keeps only the id)."""
    return customers.get(tenant_id_of(principal), kept["customer_id"])

ADMIN = {Role.TENANT_ADMIN}
WRITERS = {Role.TENANT_ADMIN, Role.POS}
READERS = {Role.TENANT_ADMIN, Role.POS, Role.SUPPORT}


@router.route("POST", "/v1/customers", roles=WRITERS, body=CustomerCreate, response=CustomerOut, status=201,
              errors=(409, 422), personal=reread,
              summary="Register a customer (phone normalised to E.164; one customer per phone). 409 if the phone "
                      "is taken; a referral code links them to the member who invited them.")
def create_customer(req: Request) -> tuple[int, CustomerOut]:
    return customers.create(tenant_id_of(req.caller), req.body, req.actor)


@router.route("GET", "/v1/customers", roles=READERS, query=CustomerQuery, response=CustomerOut, errors=(404,),
              summary="Find a customer by phone (any format) or card number.")
def find_customer(req: Request) -> CustomerOut:
    return customers.search(tenant_id_of(req.caller), req.query.phone, req.query.card)


@router.route("GET", "/v1/customers/{customer_id}", roles=READERS, response=CustomerOut, errors=(404,),
              summary="A customer: personal fields, tags, consents, derived stats, referral and cards.")
def get_customer(req: Request) -> CustomerOut:
    return customers.get(tenant_id_of(req.caller), req.path["customer_id"])


@router.route("PATCH", "/v1/customers/{customer_id}", roles=WRITERS, body=CustomerUpdate, response=CustomerOut,
              errors=(404, 409, 410, 422),
              summary="Change the fields sent; `null` removes a personal field. A phone already used by another "
                      "customer is 409 (merge them instead).")
def update_customer(req: Request) -> CustomerOut:
    return customers.update(tenant_id_of(req.caller), req.path["customer_id"], req.body, req.actor)


@router.route("POST", "/v1/customers/{customer_id}/consents", roles=WRITERS, body=ConsentsIn, response=CustomerOut,
              errors=(404, 409, 410), personal=reread,
              summary="Record consents given or withdrawn (time, source and text version kept in the history).")
def set_consents(req: Request) -> CustomerOut:
    return customers.change_consents(tenant_id_of(req.caller), req.path["customer_id"], req.body.consents,
                                     req.actor)


@router.route("POST", "/v1/customers/{customer_id}/merge", roles=ADMIN, body=MergeIn, response=CustomerOut,
              errors=(404, 409, 410, 422), personal=reread,
              summary="Merge a duplicate into this customer: its cards, history, stats and missing fields move "
                      "here; the duplicate is kept as a pointer.")
def merge_customers(req: Request) -> CustomerOut:
    return customers.merge(tenant_id_of(req.caller), req.path["customer_id"], req.body.duplicate_id, req.actor)


@router.route("GET", "/v1/customers/{customer_id}/export", roles=ADMIN, response=CustomerExport, errors=(404,),
              summary="Everything stored about the customer, as JSON (a data subject's access request).")
def export_customer(req: Request) -> CustomerExport:
    return customers.export(tenant_id_of(req.caller), req.path["customer_id"], req.actor)


@router.route("POST", "/v1/customers/{customer_id}/erase", roles=ADMIN, body=EraseIn, response=CustomerOut,
              errors=(404, 409),
              summary="Erase the customer's personal data everywhere (irreversible); balances and ledgers stay "
                      "for accounting under the bare customer id.")
def erase_customer(req: Request) -> CustomerOut:
    return customers.erase(tenant_id_of(req.caller), req.path["customer_id"], req.body.reason, req.actor)


@router.route("POST", "/v1/public/unsubscribe", roles=PUBLIC, body=WithdrawIn, response=Withdrawn, errors=(400, 404),
              summary="Withdraw a consent with the signed token every message carries (JSON body). No key.")
def unsubscribe(req: Request) -> Withdrawn:
    kind = customers.withdraw_by_token(req.body.token)
    return Withdrawn(kind=ConsentKind(kind), message="You will not receive these messages any more.")


@router.route("GET", "/v1/public/unsubscribe/one-click", roles=PUBLIC, query=LinkQuery, content_type="text/html",
              errors=(400,), summary="The page a message's unsubscribe link opens: one button that confirms. "
                                      "Opening it changes nothing, so link scanners cannot unsubscribe anyone.")
def unsubscribe_page(req: Request) -> Response:
    customers.check_unsubscribe_token(req.query.token)
    page = UNSUBSCRIBE_PAGE.format(token=html.escape(req.query.token, quote=True))
    return Response(body=page, status_code=200, headers={"Content-Type": "text/html; charset=utf-8"})


@router.route("POST", "/v1/public/unsubscribe/one-click", roles=PUBLIC, query=LinkQuery, response=Withdrawn,
              errors=(400, 404), accepts=("application/json", "application/x-www-form-urlencoded", "text/plain"),
              summary="One-click withdrawal (RFC 8058 `List-Unsubscribe-Post`, or the page's "
                                         "button): the token is in the query; any body is ignored.")
def unsubscribe_one_click(req: Request) -> Withdrawn:
    kind = customers.withdraw_by_token(req.query.token)
    return Withdrawn(kind=ConsentKind(kind), message="You will not receive these messages any more.")


UNSUBSCRIBE_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Unsubscribe</title></head><body>
<form method="post" action="one-click?token={token}"><p>Stop receiving these messages?</p>
<button type="submit">Unsubscribe</button></form></body></html>"""
