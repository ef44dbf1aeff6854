"""What the member site shows a signed-in member of their own: cards, points, tier, history, gift money, referral.

Every function takes the tenant and the customer id of the member's session,
never an id from a request: a card number the pages pass in must belong to
that customer, else it is the same 404 as a card that does not exist, so no
page reveals whether another member's card exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from chalicelib.domain import history
from chalicelib.domain.tiers import qualification
from chalicelib.errors import ApiError, ErrorDetail
from chalicelib.schemas.coupons import CouponLookup
from chalicelib.schemas.customers import CustomerOut
from chalicelib.schemas.pos import Card
from chalicelib.schemas.tenancy import ProgramKind
from chalicelib.services.customers import customers
from chalicelib.services.pos import cards
from chalicelib.services.pos.purchases import Located
from chalicelib.services.program import catalog
from chalicelib.services.program import coupons as coupon_service
from chalicelib.storage import coupons as coupon_store
from chalicelib.storage import customers as records
from chalicelib.storage import loyalty
from chalicelib.storage import surveys as survey_store

EXPIRING_DAYS = 30
"""'Expiring soon' on the card page: points whose expiry falls within this many days."""
HISTORY_PAGE = 20


@dataclass(frozen=True)
class PointsCard:
    card: Card
    program_name: str
    maturing: list[tuple[datetime, int]]
    """Pending points by the moment they become spendable, soonest first."""
    expiring: list[tuple[datetime, int]]
    """Points expiring within EXPIRING_DAYS, soonest first."""
    progress: history.Progress | None
    tier_metric: str | None
    """"spend" (progress in minor units) or "points"; None without tiers."""


@dataclass(frozen=True)
class GiftMoney:
    number: str
    money: int
    expires_at: datetime | None
    status: str


@dataclass(frozen=True)
class Summary:
    customer: CustomerOut
    points: list[PointsCard]
    gifts: list[GiftMoney]
    currency: str
    timezone: str


def card_not_found(number: str) -> ApiError:
    return ApiError(404, "card_not_found", f"No card {number} in this program.", [ErrorDetail("number", "not found")])


def summary(tenant_id: str, customer_id: str) -> Summary:
    """The member's cards as of now: points cards with pending, expiring and tier progress; gift cards' money."""
    found = customers.find(tenant_id, customer_id)
    at = loyalty.now()
    points: list[PointsCard] = []
    gifts: list[GiftMoney] = []
    for number in records.card_numbers(found.scope, customer_id):
        state = loyalty.get_card(found.scope, number)
        if state is None or state.customer_id != customer_id:
            continue
        program = catalog.program(found.scope, state.program_id)
        if program is not None and program.kind is ProgramKind.GIFT:
            view = cards.view(state, at, gift=True)
            gifts.append(GiftMoney(number=number, money=state.money, expires_at=state.expires_at, status=view.status))
            continue
        maturing: dict[datetime, int] = {}
        for lot in state.wallet.lots:
            if not lot.matured(at) and not lot.expired(at):
                maturing[lot.available_at] = maturing.get(lot.available_at, 0) + lot.points
        progress, metric = None, None
        if program is not None and program.tiers is not None:
            rules = program.tiers
            levels = [(t.id, t.name, t.threshold) for t in rules.levels]
            progress = history.progress(levels, state.tier, qualification(state.tiers, rules, at))
            metric = rules.metric.value
        points.append(PointsCard(card=cards.view(state, at), program_name=program.name if program else state.program_id,
                                 maturing=sorted(maturing.items()),
                                 expiring=state.wallet.expiring(at, at + timedelta(days=EXPIRING_DAYS)),
                                 progress=progress, tier_metric=metric))
    return Summary(customer=customers.view(found), points=points, gifts=gifts, currency=currency(tenant_id),
                   timezone=catalog.timezone(tenant_id))


def currency(tenant_id: str) -> str:
    """The tenant's currency (every amount the member sees is in it)."""
    tenant = catalog.tenant(tenant_id)
    if tenant is None:
        raise ApiError(404, "tenant_not_found", "No such tenant.")
    return tenant.currency


def owned(tenant_id: str, customer_id: str, number: str) -> Located:
    """The member's own card with this number (in any base the tenant sees); 404 for anyone else's or none."""
    found = customers.find(tenant_id, customer_id)
    if number not in records.card_numbers(found.scope, customer_id):
        raise card_not_found(number)
    state = loyalty.get_card(found.scope, number)
    if state is None or state.customer_id != customer_id:
        raise card_not_found(number)
    return Located(found.scope, state)


def history_page(tenant_id: str, customer_id: str, number: str, cursor: str | None,
                 limit: int = HISTORY_PAGE) -> tuple[list[tuple[datetime, history.Line]], str | None]:
    """One page of the member's own points card's ledger in plain words, newest first, and the next cursor."""
    located = owned(tenant_id, customer_id, number)
    if cards.is_gift(located):
        raise card_not_found(number)
    entries, next_cursor = loyalty.list_entries(located.scope, number, limit, cursor)
    entries = [cards.redacted(e, tenant_id) for e in entries]
    receipts = loyalty.receipts(located.scope, sorted({e.receipt_id for e in entries
                                                       if e.receipt_id and e.type == "accrual"}))
    stores = {s.id: s.name for s in catalog.stores(tenant_id).values()}
    program = catalog.program(located.scope, located.card.program_id)
    tiers = {t.id: t.name for t in program.tiers.levels} if program and program.tiers else {}
    surveys = _survey_titles(tenant_id, {s for e in entries if (s := history.survey_of(e)) is not None})
    lines = []
    for entry in entries:
        receipt = receipts.get(entry.receipt_id or "")
        purchase = history.Purchase(total=receipt.total, store_id=receipt.store_id) if receipt else None
        lines.append((entry.at, history.describe(entry, purchase, stores=stores, tiers=tiers, surveys=surveys)))
    return lines, next_cursor


def _survey_titles(tenant_id: str, survey_ids: set[str]) -> dict[str, str]:
    """The titles of this tenant's questionnaires behind reward lines (a deleted one, or a partner's, unnamed)."""
    found = {sid: survey_store.get_survey(tenant_id, sid) for sid in sorted(survey_ids)}
    return {sid: stored.doc.title for sid, stored in found.items() if stored is not None}


@dataclass(frozen=True)
class MemberCoupon:
    """A code given to the member: as the till sees it now, where it came from and when it was given."""

    coupon: CouponLookup
    source: str
    """"campaign", "trigger", "survey" or "other" (see `coupon_service.SOURCES`)."""
    origin: str | None
    """The trigger kind ("birthday") for a trigger, else the campaign's or questionnaire's id."""
    given_at: datetime | None


def coupons(tenant_id: str, customer_id: str) -> list[MemberCoupon]:
    """Every coupon code this tenant gave the member, newest first, each as the till would see it now.

    Read from the customer's "coupon given" records (mail campaigns, triggers,
    questionnaires; at most `coupon_store.GIVEN_MAX`), then the questionnaire
    reward markers of codes given before those records existed (a code listed
    once). A code whose campaign is gone is left out; one that cannot be used
    now says why (`usable_now`, `reason`).
    """
    found = customers.find(tenant_id, customer_id)
    given: list[tuple[str, str, str | None, datetime | None]] = [
        (g.code, g.source, g.origin, _when(g.given_at))
        for g in coupon_store.given_to(found.scope, customer_id, tenant_id)]
    for survey_id, marker in sorted(survey_store.reward_markers(found.scope, customer_id),
                                    key=lambda pair: pair[1].granted_at or "", reverse=True):
        code = (marker.result or {}).get("coupon_code") if marker.status == "granted" else None
        if code:
            given.append((str(code), "survey", survey_id, _when(marker.granted_at)))
    out: list[MemberCoupon] = []
    seen: set[str] = set()
    for code, source, origin, at in given:
        try:
            looked = coupon_service.lookup(tenant_id, code)
        except ApiError as err:
            if err.status != 404:
                raise
            continue
        if looked.code in seen:
            continue
        seen.add(looked.code)
        out.append(MemberCoupon(coupon=looked, source=source, origin=origin, given_at=at))
    return out


def _when(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None
