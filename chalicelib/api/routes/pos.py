"""The till's API: cards, customer look-up, purchases, quotes, refunds, the card's ledger."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalicelib.api.registry import Request, Router
from chalicelib.api.routes.common import lazy_module, page, tenant_id_of
from chalicelib.domain.roles import Role
from chalicelib.schemas.common import Page, PageQuery
from chalicelib.schemas.pos import (
    AdjustmentIn,
    BlockIn,
    Card,
    CardIssue,
    CardLookupQuery,
    CustomerCards,
    LedgerEntry,
    PurchaseIn,
    PurchaseResult,
    RefundIn,
    RefundResult,
)

if TYPE_CHECKING:
    from chalicelib.services.pos import cards, purchases, refunds
else:
    cards = lazy_module("chalicelib.services.pos.cards")
    purchases = lazy_module("chalicelib.services.pos.purchases")
    refunds = lazy_module("chalicelib.services.pos.refunds")

router = Router("POS")
POS = {Role.POS}
ISSUERS = {Role.POS, Role.TENANT_ADMIN}
READERS = {Role.POS, Role.TENANT_ADMIN, Role.SUPPORT}
ADMIN = {Role.TENANT_ADMIN}


def _replay_marked(result: PurchaseResult | RefundResult) -> tuple[int, Any, dict[str, str]]:
    return 200, result, ({"Idempotent-Replayed": "true"} if result.replayed else {})


@router.route("POST", "/v1/cards", roles=ISSUERS, body=CardIssue, response=Card, status=201, errors=(409, 422),
              summary="Issue a virtual card (optionally to a customer), or register a pre-printed plastic card.")
def issue_card(req: Request) -> tuple[int, Card]:
    return cards.issue(tenant_id_of(req.caller), req.body, req.actor)


@router.route("GET", "/v1/cards/{number}", roles=READERS, response=Card, errors=(404,),
              summary="A card's status, spendable balance, pending points and tier.")
def get_card(req: Request) -> Card:
    return cards.get(tenant_id_of(req.caller), req.path["number"])


@router.route("GET", "/v1/customers/lookup", roles=READERS, query=CardLookupQuery, response=CustomerCards,
              errors=(404,), summary="Find a customer and their cards by phone (any common format).")
def lookup_customer(req: Request) -> CustomerCards:
    return cards.lookup_by_phone(tenant_id_of(req.caller), req.query.phone)


@router.route("POST", "/v1/purchases", roles=POS, body=PurchaseIn, response=PurchaseResult, errors=(404, 409, 422),
              summary="Process a purchase: redeem points, earn points. `receipt_id` makes it exactly-once.")
def make_purchase(req: Request) -> tuple[int, Any, dict[str, str]]:
    return _replay_marked(purchases.purchase(tenant_id_of(req.caller), req.caller, req.body, req.actor))


@router.route("POST", "/v1/purchases/quote", roles=POS, body=PurchaseIn, response=PurchaseResult,
              errors=(404, 422), summary="What a purchase would give, without writing anything.")
def quote_purchase(req: Request) -> PurchaseResult:
    return purchases.quote(tenant_id_of(req.caller), req.caller, req.body)


@router.route("POST", "/v1/refunds", roles=POS, body=RefundIn, response=RefundResult, errors=(404, 409, 422),
              summary="Refund a purchase in full, by lines or by amount; `refund_id` makes it exactly-once.")
def make_refund(req: Request) -> tuple[int, Any, dict[str, str]]:
    return _replay_marked(refunds.refund(tenant_id_of(req.caller), req.caller, req.body, req.actor))


@router.route("GET", "/v1/cards/{number}/transactions", roles=READERS, query=PageQuery, response=Page[LedgerEntry],
              errors=(404,), summary="The card's ledger, newest first.")
def card_transactions(req: Request) -> Page[LedgerEntry]:
    return page(*cards.ledger(tenant_id_of(req.caller), req.path["number"], req.query.limit, req.query.cursor))


@router.route("POST", "/v1/cards/{number}/block", roles=ADMIN, body=BlockIn, response=Card, errors=(404,),
              summary="Block a card (lost, stolen, fraud): purchases with it are refused.")
def block_card(req: Request) -> Card:
    return cards.set_blocked(tenant_id_of(req.caller), req.path["number"], req.body.reason, req.actor)


@router.route("POST", "/v1/cards/{number}/unblock", roles=ADMIN, response=Card, errors=(404,),
              summary="Unblock a card.")
def unblock_card(req: Request) -> Card:
    return cards.set_blocked(tenant_id_of(req.caller), req.path["number"], None, req.actor)


@router.route("POST", "/v1/cards/{number}/adjustments", roles=ADMIN, body=AdjustmentIn, response=LedgerEntry,
              status=201, errors=(404, 422), summary="Manually credit or debit points, with a mandatory reason.")
def adjust_card(req: Request) -> LedgerEntry:
    return cards.adjust(tenant_id_of(req.caller), req.path["number"], req.body, req.actor)
