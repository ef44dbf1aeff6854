"""A purchase at the till: identify the cards, apply discounts, coupons and points, take gift card money, exactly once.

The whole purchase is one DynamoDB transaction: the receipt record (created
only if its `receipt_id` is new: the idempotency key), the loyalty card and any
gift cards (each replaced only if its version is still the one read: no lost
update, no overdraft), the coupon use counters (same guard: two tills cannot
both spend a coupon's last use) and the ledger entries. A retry of a purchase
that was already recorded fails the receipt condition and gets the stored
answer back, marked `replayed`; the same `receipt_id` with a different body is
refused. Anything else that changed underneath fails its version condition and
the purchase is recomputed from fresh reads, with jittered backoff: a coupon
used up meanwhile is then reported as used, and the rest still goes through.

Cards live in the tenant's own scope, or in the scope of a coalition the
tenant is a partner of (`catalog.card_scopes`); receipts always stay with the
tenant that processed them. On a warm process a plain purchase by card number
costs one read (the card) and one TransactWriteItems: programs and stores come
from the in-memory catalog; each coupon adds up to three reads, each gift card one.
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from chalicelib.domain import coupons as coupon_rules
from chalicelib.domain import customers as customer_rules
from chalicelib.domain import earning, pricing, tiers
from chalicelib.domain.cards import CardState, CardStatus
from chalicelib.domain.ids import new_id
from chalicelib.domain.principal import Principal
from chalicelib.domain.wallet import InsufficientPoints, Lot, sale_lot
from chalicelib.errors import ApiError, ErrorDetail, card_busy, forbidden
from chalicelib.schemas.coupons import CouponResult, normalise_code
from chalicelib.schemas.pos import (
    GiftCharge,
    LedgerEntry,
    MoneyEntry,
    PurchaseIn,
    PurchaseResult,
    RefundResult,
    TierUpgrade,
)
from chalicelib.schemas.tenancy import Activation, Program, ProgramKind, ProgramStatus, Store, TierMetric
from chalicelib.services.program import catalog
from chalicelib.services.reporting import dashboard
from chalicelib.storage import coupons as coupon_store
from chalicelib.storage import customers as customer_records
from chalicelib.storage import loyalty, people, purchase_log, transactions
from chalicelib.storage.documents.common import Versioned
from chalicelib.storage.documents.coupons import CustomerUses
from chalicelib.storage.documents.customer import ReferralSection
from chalicelib.storage.documents.receipts import Receipt, ReceiptCoupon, ReceiptGiftCard, ReceiptLine, Refund
from chalicelib.storage.transactions import TransactionFailed, Tx

MAX_ATTEMPTS = 40
RETRY_SECONDS = 2.5
"""Retry a card that others keep changing for this long (capped jittered backoff), then 409 card_busy."""

FINGERPRINT_V2 = "v2:"
"""Marks receipt fingerprints that leave `purchased_at` out; an unmarked one is the old whole-body hash."""


@dataclass
class Located:
    scope: str
    """Who owns the card's data: the tenant, or `coalition.<id>`."""
    card: CardState


@dataclass
class CouponUse:
    """A coupon applied to this receipt, and the counters its use changes."""

    code: str
    campaign_id: str
    holder: str
    state: coupon_store.CodeState | None
    """The code's counter, when the campaign counts uses of each code."""
    customer: Versioned[CustomerUses] | None
    """The customer's counter as read, when the campaign limits uses per customer."""


@dataclass
class Referrer:
    """The referrer's id, new referral section (one more friend rewarded) and their record's version."""

    customer_id: str
    referral: Versioned[ReferralSection]


@dataclass
class ReferralWrite:
    """The referral marks a qualifying purchase writes, each guarded by the version read."""

    friend: Versioned[ReferralSection]
    """The friend's new referral section (rewarded_at set) and their record's version."""
    referrer: Referrer | None = None
    """The referrer, when they are rewarded too."""


@dataclass
class Moves:
    """What a purchase changes besides its receipt: the answer so far, cards, ledger entries and counters."""

    result: PurchaseResult
    cards: list[Located] = field(default_factory=list)
    entries: list[tuple[Located, LedgerEntry | MoneyEntry]] = field(default_factory=list)
    coupon_uses: list[CouponUse] = field(default_factory=list)
    customer: tuple[str, str] | None = None
    """(scope, customer id) whose derived stats this receipt adds to."""
    stats: customer_rules.PurchaseStats | None = None
    referral: ReferralWrite | None = None


@dataclass
class Outcome:
    """A computed purchase, ready to write: its moves and the receipt to keep."""

    moves: Moves
    receipt: Receipt

    @property
    def result(self) -> PurchaseResult:
        return self.moves.result


@dataclass
class Sale:
    """What every step of one purchase needs: the request, its store, who processes it, and its two moments."""

    tenant_id: str
    body: PurchaseIn
    store: Store
    at: datetime
    """When the purchase is processed."""
    rules_at: datetime
    """When the sale happened: the rules then in force apply (an offline receipt's `purchased_at`)."""
    actor: str


@dataclass
class Held:
    """The customer's points (or discount) card, where it lives, and its program's rules at the sale."""

    located: Located
    program: Program
    activated: bool
    """Whether this purchase activates the card."""

    @property
    def card(self) -> CardState:
        return self.located.card


@dataclass
class PointsMoved:
    """What the points step leaves for the receipt to keep (nothing when no points card was shown)."""

    tier_value: int = 0
    points_expire_at: datetime | None = None


Answer = TypeVar("Answer", PurchaseResult, RefundResult)


Kept = TypeVar("Kept", Receipt, Refund)


def refused(status: int, code: str, message: str, field: str) -> ApiError:
    """A refusal naming the one field it is about (the shape every POS error has)."""
    return ApiError(status, code, message, [ErrorDetail(field, message)])


def request_hash(body: PurchaseIn) -> str:
    """Fingerprint of the sale, independent of JSON formatting and key order, and of when it was sent.

    `purchased_at` is left out: the online call may omit it (the sale is then
    now) and an offline batch must send it, yet it is the same sale either way.
    """
    sale = body.model_dump_json(exclude={"purchased_at"})
    return FINGERPRINT_V2 + hashlib.sha256(sale.encode()).hexdigest()


def same_sale(body: PurchaseIn) -> Callable[[Receipt], bool]:
    """Whether a stored receipt was recorded from this sale, whichever fingerprint version it was stored with."""
    fingerprint = request_hash(body)

    def check(doc: Receipt) -> bool:
        stored = doc.request_hash
        if stored.startswith(FINGERPRINT_V2):
            return stored == fingerprint
        return stored in _legacy_hashes(body, doc)

    return check


def expiry_of(program: Program, at: datetime) -> datetime | None:
    """When points earned at `at` expire under the program, or None if they never do."""
    return at + timedelta(days=program.expiry_days) if program.expiry_days else None


# --- finding cards: the tenant's own, then its coalitions' --------------------------------

def locate(tenant_id: str, number: str, field: str = "card_number") -> Located:
    """The card and the scope it lives in (the tenant, or a coalition it belongs to), or a 404."""
    for scope in catalog.card_scopes(tenant_id):
        card = loyalty.get_card(scope, number)
        if card is not None:
            return Located(scope, card)
    raise refused(404, "card_not_found", f"No card {number} in this program.", field)


def card_by_number(tenant_id: str, number: str, field: str = "card_number") -> CardState:
    """The card, wherever this tenant may see it (use `locate` to write it: that also gives its scope)."""
    return locate(tenant_id, number, field).card


def partner_of(tenant_id: str, scope: str, store: Store | None) -> str | None:
    """Who issued or accepted points: the partner tenant in a coalition, else the store's partner (if any)."""
    if scope != tenant_id:
        return tenant_id
    return store.partner_id if store else None


def locate_by_phone(tenant_id: str, phone: str, store_id: str, at: datetime) -> Located:
    """The customer's one points or discount card whose program runs at this store (gift cards are not asked for)."""
    store = catalog.stores(tenant_id).get(store_id)
    candidates: list[Located] = []
    known = False
    for scope in catalog.card_scopes(tenant_id):
        customer_id = people.customer_by_phone(scope, phone)
        if customer_id is None:
            continue
        known = True
        for number in customer_records.card_numbers(scope, customer_id):
            card = loyalty.get_card(scope, number)
            program = catalog.program_at(scope, card.program_id, at) if card else None
            if (card and program and program.kind is not ProgramKind.GIFT and _usable(card)
                    and (store is None or _covers(program, store))):
                candidates.append(Located(scope, card))
    if not known:
        raise refused(404, "customer_not_found", "No customer with this phone number.", "phone")
    if not candidates:
        raise refused(404, "card_not_found", "The customer has no usable card for this store.", "phone")
    if len(candidates) > 1:
        numbers = ", ".join(c.card.number for c in candidates)
        raise refused(422, "ambiguous_card", f"The customer has several cards here ({numbers}); send card_number.",
                      "phone")
    return candidates[0]


def check_store_binding(principal: Principal, store_id: str) -> None:
    """A key bound to one store acts for that store only, and never sees another store's answers."""
    if principal.store_id is not None and principal.store_id != store_id:
        raise forbidden(f"This key is bound to store {principal.store_id!r}, not {store_id!r}.")


def store_of(tenant_id: str, principal: Principal, store_id: str) -> Store:
    """The open store a POS call names, and that a store-bound key may use; else a refusal."""
    check_store_binding(principal, store_id)
    store = catalog.stores(tenant_id).get(store_id)
    if store is None or not store.active:
        raise refused(422, "unknown_store", f"Store {store_id!r} does not exist or is closed.", "store_id")
    return store


def program_for(located: Located, store: Store, at: datetime, field: str = "card_number") -> Program:
    """The card's program rules in force at `at`, checked to be live and to run at this store."""
    card = located.card
    program = catalog.program_at(located.scope, card.program_id, at)
    if program is None:
        raise refused(422, "program_not_found", f"The card's program {card.program_id!r} no longer exists.", field)
    if program.status is ProgramStatus.ARCHIVED:
        raise refused(422, "program_archived", f"Program {program.id!r} is archived.", field)
    if not _covers(program, store):
        raise refused(422, "store_not_in_program", f"Program {program.id!r} does not run at store {store.id!r}.",
                      "store_id")
    return program


def check_card_usable(card: CardState, field: str = "card_number") -> None:
    """Refuse a blocked or expired card before anything is priced or written."""
    if card.status is CardStatus.BLOCKED:
        reason = f": {card.block_reason}" if card.block_reason else ""
        raise refused(422, "card_blocked", f"Card {card.number} is blocked{reason}.", field)
    if card.status is CardStatus.EXPIRED:
        raise refused(422, "card_expired", f"Card {card.number} has expired.", field)


# --- the priced purchase ---------------------------------------------------------------------

def compute(tenant_id: str, principal: Principal, body: PurchaseIn, at: datetime, actor: str) -> Outcome:
    """Everything this purchase does, from fresh reads; nothing written. Raises ApiError when it is refused.

    The steps read top-down: identify the points card and its program, decide
    the coupons, price the receipt, move the card's points (tier, referral),
    take gift card money, then describe the receipt to keep.
    """
    rules_at = body.purchased_at or at
    located = _identify(tenant_id, body, rules_at)
    sale = Sale(tenant_id, body, store_of(tenant_id, principal, body.store_id), at, rules_at, actor)
    held = _points_card(sale, located)
    applied, coupon_results, coupon_uses = _coupons(tenant_id, body, located, held.program if held else None,
                                                    rules_at)
    lines = [earning.Line(i.sku, i.category, i.quantity, i.amount) for i in body.items]
    priced = _price(sale, held, lines, applied)
    _coupon_effects(coupon_results, coupon_uses, priced)
    moves = Moves(result=PurchaseResult(receipt_id=body.receipt_id, card_number=None, points_earned=0,
                                        points_redeemed=0, discount=priced.discount, payable=priced.payable,
                                        balance=0, pending=0, coupons=coupon_results),
                  coupon_uses=coupon_uses)
    points = _move_points(sale, held, priced, moves) if held is not None else PointsMoved()
    gifts = _take_gift_money(sale, priced, moves)
    return Outcome(moves, _receipt(sale, held, priced, lines, moves, points, gifts))


# --- the two entry points ---------------------------------------------------------------

def quote(tenant_id: str, principal: Principal, body: PurchaseIn) -> PurchaseResult:
    """The same answer a purchase would give now, with nothing written."""
    return compute(tenant_id, principal, body, loyalty.now(), principal.key_id).result


def stored_answer(stored: Versioned[Kept] | None, same: str | Callable[[Kept], bool], answer: type[Answer],
                  what: str, field: str) -> Answer | None:
    """The kept answer of an already processed request (marked replayed); refuses the same id with another body.

    `same` is the request's fingerprint, or a check of the stored record (a
    receipt may carry an older fingerprint version).
    """
    if stored is None:
        return None
    doc = stored.doc
    matches = same(doc) if callable(same) else doc.request_hash == same
    if not matches:
        raise refused(422, "idempotency_key_reused", f"{what} was already processed with a different body.", field)
    return answer.model_validate({**doc.response, "replayed": True})


def replay(tenant_id: str, body: PurchaseIn) -> PurchaseResult | None:
    """The stored answer of an already processed receipt, None if it is new; 409 if its body differs."""
    return stored_answer(loyalty.get_receipt(tenant_id, body.receipt_id), same_sale(body), PurchaseResult,
                         f"Receipt {body.receipt_id!r}", "receipt_id")


def write_coupon_uses(tx: Tx, tenant_id: str, uses: list[CouponUse], delta: int, at: datetime) -> None:
    """Queue the coupon counters' moves on the transaction (`delta` -1 gives uses back)."""
    for use in uses:
        if use.state is not None:
            coupon_store.count_code_use(tx, tenant_id, use.state, delta, at)
        if use.customer is not None:
            coupon_store.count_customer_use(tx, tenant_id, use.campaign_id, use.holder, use.customer, delta, at)


def changed_underneath(err: TransactionFailed) -> bool:
    """A version guard after the first item failed: something was read stale; recompute and retry."""
    return any(err.condition_failed(i) for i in range(1, len(err.reasons)))


def write_once(build: Callable[[Tx], None], result: Answer, kept: Callable[[], Answer | None]) -> Answer | None:
    """Write a purchase or refund whose first item is its exactly-once record.

    Returns `result` when written, the kept answer when the id was already
    processed, None when something read was changed underneath (recompute).
    """
    try:
        transactions.write(build)
        return result
    except TransactionFailed as err:
        if err.condition_failed(0):
            previous = kept()
            if previous is not None:
                return previous
        if not changed_underneath(err):
            raise
    return None


def purchase(tenant_id: str, principal: Principal, body: PurchaseIn, actor: str) -> PurchaseResult:
    """Price, earn, redeem and record one receipt exactly once, retrying a card that is busy."""
    fingerprint = request_hash(body)
    check_store_binding(principal, body.store_id)  # before the replay path: a refusal, not someone's answer
    deadline = time.monotonic() + RETRY_SECONDS
    for attempt in range(MAX_ATTEMPTS):
        at = loyalty.now()
        try:
            outcome = compute(tenant_id, principal, body, at, actor)
        except ApiError:
            previous = replay(tenant_id, body)  # a retry must get its answer even if rules now refuse
            if previous is not None:
                return _emitted(tenant_id, body, previous)
            raise
        receipt = outcome.receipt.model_copy(update={"request_hash": fingerprint,
                                                     "response": outcome.result.model_dump(mode="json")})
        build = functools.partial(_write, tenant_id=tenant_id, receipt_id=body.receipt_id, moves=outcome.moves,
                                  receipt=receipt, at=at)
        done = write_once(build, outcome.result, lambda: replay(tenant_id, body))
        if done is not None:
            return _emitted(tenant_id, body, done)
        if time.monotonic() > deadline:
            break
        time.sleep(transactions.backoff(attempt))
    raise card_busy()


# --- helpers --------------------------------------------------------------------------------------------

def _legacy_hashes(body: PurchaseIn, doc: Receipt) -> set[str]:
    """The old whole-body fingerprints this sale could have been stored under (receipts kept before v2).

    The old hash included `purchased_at`: null when the online call omitted
    it, else the time sent, which the receipt keeps as its `purchased_at`.
    """
    times = {None, body.purchased_at}
    if doc.purchased_at:
        times.add(datetime.fromisoformat(doc.purchased_at))
    return {hashlib.sha256(body.model_copy(update={"purchased_at": t}).model_dump_json().encode()).hexdigest()
            for t in times}


def _covers(program: Program, store: Store) -> bool:
    if not program.store_ids and not program.regions:
        return True
    return store.id in program.store_ids or (bool(store.region) and store.region in program.regions)


def _usable(card: CardState) -> bool:
    return card.status in (CardStatus.ACTIVE, CardStatus.ISSUED)


def _coupons(tenant_id: str, body: PurchaseIn, located: Located | None, program: Program | None,
             at: datetime) -> tuple[list[pricing.CouponApplied], list[CouponResult], list[CouponUse]]:
    """Decide each code: applied (to be priced) or refused with its reason, in the order sent."""
    applied: list[pricing.CouponApplied] = []
    results: list[CouponResult] = []
    uses: list[CouponUse] = []
    seen: set[str] = set()
    per_campaign: dict[str, int] = {}
    categories = [item.category for item in body.items]
    for raw in body.coupons:
        code = normalise_code(raw)
        shown = coupon_rules.display(code)
        if located is None or program is None:
            results.append(CouponResult(code=shown, applied=False, reason="needs_card",
                                        message="Identify the customer's card to use coupons."))
            continue
        state = coupon_store.get_code(tenant_id, code) if code not in seen else None
        found = coupon_store.get_campaign(tenant_id, state.campaign_id) if state else None
        campaign = found.doc if found else None
        holder = located.card.customer_id or f"card:{located.card.number}"
        customer = None
        if campaign is not None and campaign.limits.per_customer:
            customer = coupon_store.customer_uses(tenant_id, campaign.id, holder)
        usage = coupon_rules.Usage(uses=state.uses if state else 0,
                                   customer_uses=(customer.doc.uses if customer else 0) + per_campaign.get(
                                       campaign.id if campaign else "", 0))
        refusal = coupon_rules.check(campaign, usage, program_id=program.id, total=body.total, categories=categories,
                                     at=at, points_card=program.kind is ProgramKind.POINTS, seen=seen, code=code)
        seen.add(code)
        if refusal is not None or campaign is None or state is None:
            reason = refusal or coupon_rules.Refusal("unknown_code", "No such coupon code.")
            results.append(CouponResult(code=shown, applied=False, campaign_id=campaign.id if campaign else None,
                                        reason=reason.reason, message=reason.message))
            continue
        per_campaign[campaign.id] = per_campaign.get(campaign.id, 0) + 1
        counts_code = campaign.mode == "unique" or campaign.limits.uses_per_code > 0
        uses.append(CouponUse(code, campaign.id, holder, state if counts_code else None, customer))
        applied.append(pricing.CouponApplied(code, campaign))
        results.append(CouponResult(code=shown, applied=True, campaign_id=campaign.id))
    return applied, results, uses


def _gift_tenders(tenant_id: str, body: PurchaseIn, store: Store, payable: int, at: datetime
                  ) -> list[tuple[Located, int]]:
    taken: list[tuple[Located, int]] = []
    if sum(g.amount for g in body.gift_cards) > payable:
        raise refused(422, "gift_exceeds_payable", f"Gift cards can pay at most {payable} on this receipt.",
                      "gift_cards")
    for i, tender in enumerate(body.gift_cards):
        where = f"gift_cards[{i}].card_number"
        located = locate(tenant_id, tender.card_number, where)
        card = located.card
        program = program_for(located, store, at, where)
        if program.kind is not ProgramKind.GIFT:
            raise refused(422, "not_a_gift_card", f"Card {card.number} holds points, not money.", where)
        check_card_usable(card, where)
        if card.expires_at and card.expires_at <= at:
            raise refused(422, "gift_card_expired", f"Gift card {card.number} expired on "
                          f"{card.expires_at.date().isoformat()}.", where)
        if card.money < tender.amount:
            raise ApiError(422, "insufficient_funds", f"Gift card {card.number} holds {card.money}.",
                           [ErrorDetail(f"gift_cards[{i}].amount", f"at most {card.money}")])
        card.money -= tender.amount
        taken.append((located, tender.amount))
    return taken


def _activate(card: CardState, program: Program, at: datetime) -> bool:
    if card.status is CardStatus.ISSUED and (
        program.activation is not Activation.REGISTRATION or card.customer_id is not None
    ):
        card.status, card.activated_at = CardStatus.ACTIVE, at
        return True
    return False


def _identify(tenant_id: str, body: PurchaseIn, rules_at: datetime) -> Located | None:
    """The card the till named (by number or the customer's phone), or None for an anonymous sale."""
    if body.card_number is not None:
        return locate(tenant_id, body.card_number)
    if body.phone is not None:
        return locate_by_phone(tenant_id, body.phone, body.store_id, rules_at)
    return None


def _points_card(sale: Sale, located: Located | None) -> Held | None:
    """The card checked usable at this store under its program, activated by this purchase if it may be."""
    if located is None:
        return None
    program = program_for(located, sale.store, sale.rules_at)
    if program.kind is ProgramKind.GIFT:
        raise refused(422, "gift_card_as_loyalty_card", "This is a gift card: send it in gift_cards.", "card_number")
    card = located.card
    check_card_usable(card)
    activated = _activate(card, program, sale.at)
    if sale.body.redeem_points and card.status is not CardStatus.ACTIVE:
        raise refused(422, "card_not_active", "Register the card (attach a customer) before redeeming points.",
                      "redeem_points")
    return Held(located, program, activated)


def _price(sale: Sale, held: Held | None, lines: list[earning.Line],
           applied: list[pricing.CouponApplied]) -> pricing.Priced:
    """Discounts, coupons, points redemption and points earned; a refused redemption is a 422."""
    body = sale.body
    try:
        if held is None:
            return _no_program(lines, body)
        card, program = held.card, held.program
        tier_now = tiers.current(program.tiers, card.tiers) if program.tiers else None
        return pricing.price(program, lines, tier=tier_now, coupons=applied, redeem=body.redeem_points,
                             spendable=card.wallet.spendable(sale.at), store_id=sale.store.id, at=sale.rules_at)
    except pricing.RedemptionRefused as exc:
        if exc.code != "redeem_exceeds_limit":
            raise refused(422, exc.code, exc.message, "redeem_points") from None
        raise ApiError(422, exc.code, exc.message,
                       [ErrorDetail("redeem_points", f"allowed maximum: {exc.allowed}")]) from None


def _coupon_effects(results: list[CouponResult], uses: list[CouponUse], priced: pricing.Priced) -> None:
    """Each applied coupon's answer shows the discount and bonus points pricing gave it."""
    by_code = {c.code: c for c in priced.coupons}
    for result, use in zip([r for r in results if r.applied], uses, strict=True):
        done = by_code[use.code]
        result.discount, result.bonus_points = done.discount, done.bonus_points


def _move_points(sale: Sale, held: Held, priced: pricing.Priced, moves: Moves) -> PointsMoved:
    """Spend and earn on the points card, with its ledger entries; then its tier, referral and customer stats."""
    body, located, program, card = sale.body, held.located, held.program, held.card
    version = program.version
    stamp = {"at": sale.at, "receipt_id": body.receipt_id, "actor": sale.actor, "rule_version": version,
             "store_id": sale.store.id, "partner_id": partner_of(sale.tenant_id, located.scope, sale.store)}
    balance, expires_at = _ledger_of_sale(sale, held, priced, moves, stamp)
    earned = priced.points_earned
    tier_value, upgrade = _tier_step(sale, held, priced, moves, balance, stamp)
    moves.cards.append(located)
    referral_points = _referral(moves, located, program, body.total, stamp, sale.at, sale.rules_at)
    if card.customer_id is not None:
        moves.customer = (located.scope, card.customer_id)
        moves.stats = customer_rules.receipt_stats(body.total, sale.store.id,
                                                   [(ln.category, ln.amount) for ln in body.items])
    wallet = card.wallet
    moves.result = moves.result.model_copy(update={
        "card_number": card.number, "points_earned": earned, "points_redeemed": body.redeem_points,
        "balance": wallet.spendable(sale.at), "pending": wallet.pending(sale.at), "tier": card.tier,
        "tier_upgrade": upgrade, "promotions": priced.earned.promotions, "card_activated": held.activated,
        "rule_version": version, "referral_points": referral_points,
    })
    return PointsMoved(tier_value=tier_value, points_expire_at=expires_at)


def _ledger_of_sale(sale: Sale, held: Held, priced: pricing.Priced, moves: Moves, stamp: dict[str, Any]
                    ) -> tuple[int, datetime | None]:
    """Redeem, then earn (as of the sale), with coupon bonuses and any points already expired since the sale.

    Returns the card's balance after these entries and when the earned points expire.
    """
    body, located, program = sale.body, held.located, held.program
    wallet = held.card.wallet
    try:
        wallet.spend(body.redeem_points, sale.at)
    except InsufficientPoints as exc:
        raise refused(422, "insufficient_points", f"Only {exc.available} points are spendable.",
                      "redeem_points") from None
    balance = wallet.total
    if body.redeem_points:
        moves.entries.append((located, LedgerEntry(entry_id=new_id(), type="redemption",
                                                   points=-body.redeem_points, balance_after=balance, **stamp)))
    sold = sale_lot(priced.points_earned, sale.rules_at, pending_days=program.pending_days,
                    expiry_days=program.expiry_days, source=body.receipt_id)
    expired = wallet.earn_at(sold, sale.at)
    wallet.compact(sale.at)
    if priced.earned.points:
        balance += priced.earned.points
        moves.entries.append((located, LedgerEntry(entry_id=new_id(), type="accrual",
                                                   points=priced.earned.points, balance_after=balance, **stamp)))
    for coupon in priced.coupons:
        if coupon.bonus_points:
            balance += coupon.bonus_points
            moves.entries.append((located, LedgerEntry(entry_id=new_id(), type="bonus",
                                                       points=coupon.bonus_points, balance_after=balance,
                                                       coupon=coupon_rules.display(coupon.code), **stamp)))
    if expired:
        balance -= expired
        moves.entries.append((located, LedgerEntry(
            entry_id=new_id(), type="expiry", points=-expired, balance_after=balance,
            reason="expired before the receipt was processed (expiry counts from the sale)", **stamp)))
    return balance, sold.expires_at


def _tier_step(sale: Sale, held: Held, priced: pricing.Priced, moves: Moves, balance: int, stamp: dict[str, Any]
               ) -> tuple[int, TierUpgrade | None]:
    """Count the sale towards the card's tier (spend or points, per the program); an upgrade gets a ledger entry.

    Returns the value counted (the receipt keeps it for refunds) and the upgrade, if any.
    """
    tier_rules, card = held.program.tiers, held.card
    if tier_rules is None:
        return 0, None
    tier_value = priced.payable if tier_rules.metric is TierMetric.SPEND else priced.points_earned
    change = tiers.record(card.tiers, tier_rules, tier_value, sale.at)
    if change is None or change.reason != "upgrade":
        return tier_value, None
    reached = tiers.qualification(card.tiers, tier_rules, sale.at)
    moves.entries.append((held.located, LedgerEntry(
        entry_id=new_id(), type="tier", points=0, balance_after=balance, tier=change.tier,
        previous_tier=change.previous, reason=f"upgrade: qualification {reached} reached {change.tier}",
        **stamp)))
    return tier_value, TierUpgrade(previous=change.previous, tier=change.tier)


def _take_gift_money(sale: Sale, priced: pricing.Priced, moves: Moves) -> list[tuple[Located, int]]:
    """Take each gift card's tender (checked in `_gift_tenders`), with its money entry; sets what is left to pay."""
    gifts = _gift_tenders(sale.tenant_id, sale.body, sale.store, priced.payable, sale.rules_at)
    charges = []
    for gift, amount in gifts:
        gift_program = catalog.program_at(gift.scope, gift.card.program_id, sale.rules_at)
        moves.cards.append(gift)
        moves.entries.append((gift, MoneyEntry(
            entry_id=new_id(), type="spend", amount=-amount, balance_after=gift.card.money, at=sale.at,
            receipt_id=sale.body.receipt_id, actor=sale.actor, store_id=sale.store.id,
            partner_id=partner_of(sale.tenant_id, gift.scope, sale.store),
            rule_version=gift_program.version if gift_program else None)))
        charges.append(GiftCharge(card_number=gift.card.number, amount=amount, balance=gift.card.money))
    moves.result = moves.result.model_copy(update={
        "gift_cards": charges, "to_pay": priced.payable - sum(c.amount for c in charges)})
    return gifts


def _receipt(sale: Sale, held: Held | None, priced: pricing.Priced, lines: list[earning.Line], moves: Moves,
             points: PointsMoved, gifts: list[tuple[Located, int]]) -> Receipt:
    """The receipt to keep (its fingerprint and answer are added when it is written): what refunds work from."""
    body, store = sale.body, sale.store
    located = held.located if held else None
    return Receipt(
        card_number=located.card.number if located else None, card_scope=located.scope if located else None,
        program_id=held.program.id if held else None, store_id=store.id, total=body.total,
        discount=priced.discount, points_discount=priced.points_discount, payable=priced.payable,
        points_earned=moves.result.points_earned, points_redeemed=body.redeem_points,
        rule_version=held.program.version if held else None,
        partner_id=partner_of(sale.tenant_id, located.scope, store) if located else None,
        tier_value=points.tier_value,
        lines=[ReceiptLine(sku=ln.sku, category=ln.category, quantity=ln.quantity, amount=ln.amount, weight=w,
                           refunded_quantity=0, refunded_amount=0)
               for ln, w in zip(lines, priced.earned.weights, strict=True)],
        coupons=[ReceiptCoupon(code=u.code, campaign_id=u.campaign_id, holder=u.holder,
                               counted_code=u.state is not None, counted_customer=u.customer is not None)
                 for u in moves.coupon_uses],
        gift_cards=[ReceiptGiftCard(card_number=g.card.number, scope=g.scope, amount=amount, returned=0)
                    for g, amount in gifts],
        refunded_amount=0, refunded_weight_scaled=0, points_reversed=0, points_returned=0,
        at=sale.at.isoformat(), purchased_at=sale.rules_at.isoformat(),
        points_expire_at=points.points_expire_at.isoformat() if points.points_expire_at else None,
    )


def _referrer_card(scope: str, referrer_id: str, program_id: str, friend_card: str) -> CardState | None:
    """The referrer's usable card of the same program (the points are that program's)."""
    for number, linked_program in customer_records.card_links(scope, referrer_id):
        if linked_program == program_id and number != friend_card:
            card = loyalty.get_card(scope, number)
            if card is not None and _usable(card):
                return card
    return None


def _referral(moves: Moves, located: Located, program: Program, total: int, stamp: dict[str, Any],
              at: datetime, sold_at: datetime) -> int:
    """Reward a referral on the friend's first qualifying purchase: both cards, in this purchase's transaction.

    The friend's record is marked (version-guarded) in the same transaction,
    so a referral pays out once however often the till retries. The bonus
    matures when the sale's return window closes (counted from the sale, as
    its own points) and expires counted from when it is credited (a reward
    is never born expired); it is not reversed by a refund.
    """
    card, scope = located.card, located.scope
    rules_ = program.referral
    if rules_ is None or card.customer_id is None:
        return 0
    got = customer_records.get(scope, card.customer_id)
    referral = got.doc.referral_or_empty() if got else ReferralSection()
    referrer_id = referral.referred_by
    if got is None or not referrer_id or referral.rewarded_at or total < rules_.min_purchase:
        return 0
    referrer = customer_records.get(scope, referrer_id)
    active = referrer is not None and referrer.doc.status == "active"
    referrer_card = _referrer_card(scope, referrer_id, program.id, card.number) if active else None
    referrer_referral = referrer.doc.referral_or_empty() if referrer else ReferralSection()
    reward = customer_rules.referral_reward(
        referral.dump(), total, friend_points=rules_.friend_points, referrer_points=rules_.referrer_points,
        min_purchase=rules_.min_purchase, max_per_referrer=rules_.max_per_referrer,
        referrer_rewarded=referrer_referral.friends_rewarded, referrer_has_card=referrer_card is not None)
    if reward is None:
        return 0
    matures = sold_at + timedelta(days=program.pending_days)
    source = f"referral:{card.customer_id}"
    if reward.friend_points:
        card.wallet.earn(Lot(reward.friend_points, at, matures, expiry_of(program, at), source))
        moves.entries.append((located, LedgerEntry(
            entry_id=new_id(), type="bonus", points=reward.friend_points, balance_after=card.wallet.total,
            reason="referral: first qualifying purchase", **stamp)))
    write = ReferralWrite(friend=Versioned(referral.model_copy(update={"rewarded_at": at.isoformat()}), got.version))
    if reward.referrer_points and referrer_card is not None and referrer is not None:
        referrer_card.wallet.earn(Lot(reward.referrer_points, at, matures, expiry_of(program, at), source))
        referrer_at = Located(scope, referrer_card)
        moves.cards.append(referrer_at)
        moves.entries.append((referrer_at, LedgerEntry(
            entry_id=new_id(), type="bonus", points=reward.referrer_points,
            balance_after=referrer_card.wallet.total, reason=f"referral: friend {card.customer_id}",
            **{**stamp, "receipt_id": None})))
        write.referrer = Referrer(referrer_id, Versioned(referrer_referral.model_copy(
            update={"friends_rewarded": referrer_referral.friends_rewarded + 1}), referrer.version))
    moves.referral = write
    return reward.friend_points


def _no_program(lines: list[earning.Line], body: PurchaseIn) -> pricing.Priced:
    """A purchase paid with gift cards by an unidentified customer: no discount, no points."""
    if body.redeem_points:
        raise pricing.RedemptionRefused("card_required", "Identify a points card to redeem points.", 0)
    return pricing.Priced(program_discount=0, coupons=[], points_discount=0, line_discounts=[0] * len(lines),
                          earned=earning.Earning(0, [0] * len(lines), 0, []), payable=body.total)


def _write(tx: Tx, *, tenant_id: str, receipt_id: str, moves: Moves, receipt: Receipt, at: datetime) -> None:
    """Receipt first (index 0: its failure means 'already processed'); every later item is version-guarded."""
    loyalty.add_once(tx, loyalty.receipt_pk(tenant_id, receipt_id), loyalty.RECEIPT_SK, "receipt", receipt, at)
    for located in moves.cards:
        loyalty.save_card(tx, located.scope, located.card, at)
    write_coupon_uses(tx, tenant_id, moves.coupon_uses, +1, at)
    for seq, (located, entry) in enumerate(moves.entries):
        loyalty.add_entry(tx, located.scope, located.card.number, entry, seq)
    dashboard.count_purchase(tx, tenant_id, receipt_id, receipt, activated=moves.result.card_activated, at=at)
    if moves.customer is not None and moves.stats is not None:
        scope, customer_id = moves.customer
        customer_records.count_receipt(tx, scope, customer_id, moves.stats, at,
                                       referral=moves.referral.friend if moves.referral else None)
        purchase_log.add(tx, scope, customer_id, tenant_id=tenant_id, purchased_at=receipt.sold_at,
                         receipt_id=receipt_id, total=moves.stats.spend, kind="purchase",
                         store_id=moves.stats.store_id, at=at)
        if moves.referral is not None and moves.referral.referrer is not None:
            referrer = moves.referral.referrer
            customer_records.update(tx, scope, referrer.customer_id, referrer.referral.version,
                                    {"referral": referrer.referral.doc})


def _emitted(tenant_id: str, body: PurchaseIn, result: PurchaseResult) -> PurchaseResult:
    """Webhook events once the purchase is committed; a replay emits them again with the same event ids."""
    from chalicelib.services.integrations import webhooks

    webhooks.purchase_processed(tenant_id, body.store_id, body.total, result)
    if result.card_number and not result.replayed:
        from chalicelib.services.wallet import changes as wallet_changes

        wallet_changes.card_changed(tenant_id, result.card_number)  # its wallet pass shows the new balance
    return result
