"""The call-center support view: find a customer by phone or card and see balances, tiers, history, consents."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import Field

from chalicelib.api.registry import Request, Router
from chalicelib.api.routes.common import lazy_module, tenant_id_of
from chalicelib.domain.roles import Role
from chalicelib.schemas.common import Output, Query
from chalicelib.schemas.customers import Consent

if TYPE_CHECKING:
    from chalicelib.services.customers import support
else:
    support = lazy_module("chalicelib.services.customers.support")

router = Router("Support")
READERS = {Role.SUPPORT, Role.TENANT_ADMIN}


class SupportQuery(Query):
    phone: str | None = Field(default=None, max_length=32, description="In any format; normalised to E.164. "
                              "Give phone or card.")
    card: str | None = Field(default=None, max_length=32)


class SupportCard(Output):
    number: str
    program_id: str
    status: str
    balance: int = Field(description="Spendable points now.")
    pending: int = Field(description="Points inside the return window.")
    tier: str | None = None
    tier_since: datetime | None = None
    money: int | None = Field(default=None, description="Gift / prepaid cards: money on the card, minor units.")


class SupportEntry(Output):
    card_number: str
    type: str
    points: int
    at: datetime
    receipt_id: str | None = None
    store_id: str | None = None
    rule_version: int | None = Field(default=None, description="The program rule version that produced it.")
    reason: str | None = None


class SupportCustomer(Output):
    customer_id: str
    name: str | None = None
    phone: str | None = Field(default=None, description="Masked: `+7 *** ***-45-67`.")
    email: str | None = Field(default=None, description="Masked: `a***@example.com`.")
    status: str
    consents: list[Consent]


class SupportView(Output):
    customer: SupportCustomer
    cards: list[SupportCard]
    recent_transactions: list[SupportEntry] = Field(description="The last 20 ledger entries over the customer's "
                                                    "points cards, newest first.")


@router.route("GET", "/v1/support/customers", roles=READERS, query=SupportQuery, response=SupportView,
              errors=(400, 404),
              summary="Call-center look-up by phone or card: masked contacts, consents, cards with balance and "
                      "tier, the last 20 ledger entries with the rule version behind each. Read-only.")
def find_customer(req: Request) -> SupportView:
    found = support.lookup(tenant_id_of(req.caller), req.query.phone, req.query.card)
    return SupportView(
        customer=SupportCustomer(customer_id=found.customer_id, name=found.name, phone=found.phone,
                                 email=found.email, status=found.status, consents=found.consents),
        cards=[SupportCard(number=c.number, program_id=c.program_id, status=c.status, balance=c.balance,
                           pending=c.pending, tier=c.tier, tier_since=c.tier_since, money=c.money)
               for c in found.cards],
        recent_transactions=[SupportEntry(card_number=number, type=e.type, points=e.points, at=e.at,
                                          receipt_id=e.receipt_id, store_id=e.store_id,
                                          rule_version=e.rule_version, reason=e.reason)
                             for number, e in found.recent],
    )
