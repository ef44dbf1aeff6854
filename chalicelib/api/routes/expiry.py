"""Points about to expire (one card, or a program's cards) and an admin's manual tier assignment."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

from pydantic import Field, StringConstraints, model_validator

from chalicelib.api.registry import Request, Router
from chalicelib.api.routes.common import lazy_module, page, tenant_id_of
from chalicelib.domain.roles import Role
from chalicelib.schemas.common import Input, Output, Page, Query, Slug
from chalicelib.schemas.pos import Card, ReceiptId

if TYPE_CHECKING:
    from chalicelib.services.program import sweeps
else:
    sweeps = lazy_module("chalicelib.services.program.sweeps")

router = Router("Expiry and tiers")
CARD_READERS = {Role.POS, Role.TENANT_ADMIN, Role.SUPPORT}
PROGRAM_READERS = {Role.TENANT_ADMIN, Role.SUPPORT}
ADMIN = {Role.TENANT_ADMIN}

WithinDays = Annotated[int, Field(ge=1, le=365, description="Look this many days ahead.")]


class ExpiringQuery(Query):
    within_days: WithinDays = 30
    limit: int = Field(default=200, ge=1, le=200, description="Expiry moments per page (default: the most, "
                       "so a client that does not page sees what it saw before pages were added).")
    cursor: str | None = Field(default=None, max_length=2048)


class ExpiringItem(Output):
    expires_at: datetime
    points: int


class CardExpiring(Output):
    card_number: str
    total: int = Field(description="Points (spendable or pending) that expire within the window.")
    items: list[ExpiringItem] = Field(description="By expiry moment, soonest first; one page of them.")
    has_more: bool = False
    cursor: str | None = Field(default=None, description="Pass back as `cursor` for the next page while `has_more`.")


class ProgramExpiringQuery(Query):
    within_days: WithinDays = 30
    min_points: int = Field(default=1, ge=1, le=10**9, description="Only cards losing at least this many points.")
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=2048)


class ExpiringCardOut(Output):
    card_number: str
    customer_id: str | None = None
    points: int = Field(description="Points expiring within the window.")
    first_expires_at: datetime


class TierAssignIn(Input):
    tier: Slug
    reason: Annotated[str, StringConstraints(min_length=3, max_length=500)]
    until: datetime | None = Field(default=None, description="The assignment is a floor for automatic downgrades "
                                   "until then (with a time zone offset); omitted: for good.")
    assignment_id: ReceiptId = Field(description="Unique per tenant: a retried assignment is applied once.")

    @model_validator(mode="after")
    def _aware(self) -> TierAssignIn:
        if self.until is not None and self.until.tzinfo is None:
            raise ValueError("until needs a time zone offset")
        return self


@router.route("GET", "/v1/cards/{number}/expiring", roles=CARD_READERS, query=ExpiringQuery, response=CardExpiring,
              errors=(404,), summary="A card's points that expire within N days (1-365, default 30), by date.")
def card_expiring(req: Request) -> CardExpiring:
    q = req.query
    found = sweeps.card_expiring(tenant_id_of(req.caller), req.path["number"], q.within_days, q.limit, q.cursor)
    return CardExpiring(card_number=found.card_number, total=found.total,
                        items=[ExpiringItem(expires_at=at, points=points) for at, points in found.items],
                        has_more=found.cursor is not None, cursor=found.cursor)


@router.route("GET", "/v1/programs/{program_id}/expiring-points", roles=PROGRAM_READERS, query=ProgramExpiringQuery,
              response=Page[ExpiringCardOut], errors=(404,),
              summary="Cards of a program with at least min_points points expiring within N days, by due day.")
def program_expiring(req: Request) -> Page[ExpiringCardOut]:
    q = req.query
    items, cursor = sweeps.program_expiring(tenant_id_of(req.caller), req.path["program_id"],
                                            within_days=q.within_days, min_points=q.min_points, limit=q.limit,
                                            cursor=q.cursor)
    return page([ExpiringCardOut(card_number=i.card_number, customer_id=i.customer_id, points=i.points,
                                 first_expires_at=i.first_expires_at) for i in items], cursor)


@router.route("POST", "/v1/cards/{number}/tier", roles=ADMIN, body=TierAssignIn, response=Card, errors=(404, 409, 422),
              summary="Assign a card's tier by hand (with a reason); automatic downgrades never go below it "
              "until `until`. `assignment_id` makes it exactly-once.")
def assign_tier(req: Request) -> Card:
    b = req.body
    return sweeps.assign_tier(tenant_id_of(req.caller), req.path["number"], tier=b.tier, reason=b.reason,
                              until=b.until, assignment_id=b.assignment_id, actor=req.actor)
