"""Gift and prepaid cards: sale, top-up, balance, ledger, manual correction (spending is POST /v1/purchases)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalicelib.api.registry import Request, Router
from chalicelib.api.routes.common import lazy_module, page, tenant_id_of
from chalicelib.domain.roles import Role
from chalicelib.schemas.common import Page, PageQuery
from chalicelib.schemas.gift_cards import GiftCard, GiftCardAdjustmentIn, GiftCardSale, GiftCardTopUp
from chalicelib.schemas.pos import MoneyEntry

if TYPE_CHECKING:
    from chalicelib.services.pos import gift_cards
else:
    gift_cards = lazy_module("chalicelib.services.pos.gift_cards")

router = Router("Gift cards")
SELLERS = {Role.POS, Role.TENANT_ADMIN}
READERS = {Role.POS, Role.TENANT_ADMIN, Role.SUPPORT}
ADMIN = {Role.TENANT_ADMIN}


def _created_or_replayed(result: tuple[GiftCard, bool]) -> tuple[int, Any, dict[str, str]]:
    card, replayed = result
    return (200, card, {"Idempotent-Replayed": "true"}) if replayed else (201, card, {})


@router.route("POST", "/v1/gift-cards", roles=SELLERS, body=GiftCardSale, response=GiftCard, status=201,
              errors=(403, 409, 422), summary="Sell a gift card loaded with an amount; `sale_id` makes it "
              "exactly-once (a retry gets 200 and the stored answer).")
def sell_gift_card(req: Request) -> tuple[int, Any, dict[str, str]]:
    return _created_or_replayed(gift_cards.sell(tenant_id_of(req.caller), req.caller, req.body, req.actor))


@router.route("GET", "/v1/gift-cards/{number}", roles=READERS, response=GiftCard, errors=(404,),
              summary="A gift card's money, currency, status and expiry.")
def get_gift_card(req: Request) -> GiftCard:
    return gift_cards.get(tenant_id_of(req.caller), req.path["number"])


@router.route("POST", "/v1/gift-cards/{number}/top-ups", roles=SELLERS, body=GiftCardTopUp, response=GiftCard,
              status=201, errors=(403, 404, 409, 422), summary="Load money onto a reloadable card (extends its "
              "expiry); `topup_id` makes it exactly-once.")
def top_up_gift_card(req: Request) -> tuple[int, Any, dict[str, str]]:
    return _created_or_replayed(gift_cards.top_up(tenant_id_of(req.caller), req.caller, req.path["number"],
                                                  req.body, req.actor))


@router.route("GET", "/v1/gift-cards/{number}/transactions", roles=READERS, query=PageQuery,
              response=Page[MoneyEntry], errors=(404,), summary="The gift card's money ledger, newest first.")
def gift_card_transactions(req: Request) -> Page[MoneyEntry]:
    return page(*gift_cards.ledger(tenant_id_of(req.caller), req.path["number"], req.query.limit, req.query.cursor))


@router.route("POST", "/v1/gift-cards/{number}/adjustments", roles=ADMIN, body=GiftCardAdjustmentIn,
              response=MoneyEntry, status=201, errors=(404, 409, 422),
              summary="Manually credit or debit a gift card's money, with a mandatory reason (never below zero).")
def adjust_gift_card(req: Request) -> MoneyEntry:
    return gift_cards.adjust(tenant_id_of(req.caller), req.path["number"], req.body, req.actor)
