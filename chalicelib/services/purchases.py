"""A purchase at the till: identify the card, redeem, earn, record it, exactly once.

The whole purchase is one DynamoDB transaction: the receipt record (created
only if its `receipt_id` is new: the idempotency key), the card (replaced only
if its version is still the one read: no lost update, no overdraft) and the
ledger entries. A retry of a purchase that was already recorded fails the
receipt condition and gets the stored answer back, marked `replayed`; the same
`receipt_id` with a different body is refused. A card changed by a concurrent
purchase fails the version condition and the purchase is recomputed from a
fresh read, with jittered backoff.

On a warm process a purchase by card number costs one read (the card) and one
TransactWriteItems: programs and stores come from the in-memory catalog.
"""

from __future__ import annotations

import functools
import hashlib
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from chalicelib.domain import earning, redemption
from chalicelib.domain.cards import CardState, CardStatus
from chalicelib.domain.ids import new_id
from chalicelib.domain.principal import Principal
from chalicelib.domain.wallet import InsufficientPoints, Lot
from chalicelib.errors import ApiError, ErrorDetail, forbidden
from chalicelib.schemas.pos import LedgerEntry, PurchaseIn, PurchaseResult, RefundResult
from chalicelib.schemas.tenancy import Activation, Program, ProgramKind, ProgramStatus, Store
from chalicelib.services import catalog
from chalicelib.storage import loyalty, transactions
from chalicelib.storage.transactions import TransactionFailed, Tx

MAX_ATTEMPTS = 40
RETRY_SECONDS = 2.5
"""Retry a card that others keep changing for this long (capped jittered backoff), then 409 card_busy."""


def refused(status: int, code: str, message: str, field: str) -> ApiError:
    return ApiError(status, code, message, [ErrorDetail(field, message)])


def request_hash(body: PurchaseIn) -> str:
    """Fingerprint of what was asked, independent of JSON formatting and key order."""
    return hashlib.sha256(body.model_dump_json().encode()).hexdigest()


def expiry_of(program: Program, at: datetime) -> datetime | None:
    return at + timedelta(days=program.expiry_days) if program.expiry_days else None


# --- identification and checks ------------------------------------------------------

def card_by_number(tenant_id: str, number: str, field: str = "card_number") -> CardState:
    card = loyalty.get_card(tenant_id, number)
    if card is None:
        raise refused(404, "card_not_found", f"No card {number} in this program.", field)
    return card


def _covers(program: Program, store: Store) -> bool:
    if not program.store_ids and not program.regions:
        return True
    return store.id in program.store_ids or (bool(store.region) and store.region in program.regions)


def _usable(card: CardState) -> bool:
    return card.status in (CardStatus.ACTIVE, CardStatus.ISSUED)


def card_by_phone(tenant_id: str, phone: str, store_id: str) -> CardState:
    """The customer's one card whose program runs at this store."""
    customer_id = loyalty.customer_id_by_phone(tenant_id, phone)
    if customer_id is None:
        raise refused(404, "customer_not_found", "No customer with this phone number.", "phone")
    store = catalog.stores(tenant_id).get(store_id)
    candidates = []
    for number in loyalty.customer_card_numbers(tenant_id, customer_id):
        card = loyalty.get_card(tenant_id, number)
        program = catalog.program(tenant_id, card.program_id) if card else None
        if card and program and _usable(card) and (store is None or _covers(program, store)):
            candidates.append(card)
    if not candidates:
        raise refused(404, "card_not_found", "The customer has no usable card for this store.", "phone")
    if len(candidates) > 1:
        numbers = ", ".join(c.number for c in candidates)
        raise refused(422, "ambiguous_card", f"The customer has several cards here ({numbers}); send card_number.",
                      "phone")
    return candidates[0]


def check_store_binding(principal: Principal, store_id: str) -> None:
    """A key bound to one store acts for that store only, and never sees another store's answers."""
    if principal.store_id is not None and principal.store_id != store_id:
        raise forbidden(f"This key is bound to store {principal.store_id!r}, not {store_id!r}.")


def program_and_store(tenant_id: str, principal: Principal, card: CardState, store_id: str) -> tuple[Program, Store]:
    program = catalog.program(tenant_id, card.program_id)
    if program is None:
        raise refused(422, "program_not_found", f"The card's program {card.program_id!r} no longer exists.",
                      "card_number")
    if program.status is ProgramStatus.ARCHIVED:
        raise refused(422, "program_archived", f"Program {program.id!r} is archived.", "card_number")
    check_store_binding(principal, store_id)
    store = catalog.stores(tenant_id).get(store_id)
    if store is None or not store.active:
        raise refused(422, "unknown_store", f"Store {store_id!r} does not exist or is closed.", "store_id")
    if not _covers(program, store):
        raise refused(422, "store_not_in_program", f"Program {program.id!r} does not run at store {store_id!r}.",
                      "store_id")
    return program, store


def check_card_usable(card: CardState) -> None:
    if card.status is CardStatus.BLOCKED:
        reason = f": {card.block_reason}" if card.block_reason else ""
        raise refused(422, "card_blocked", f"Card {card.number} is blocked{reason}.", "card_number")
    if card.status is CardStatus.EXPIRED:
        raise refused(422, "card_expired", f"Card {card.number} has expired.", "card_number")


# --- pricing: the pure part of a purchase ---------------------------------------------

@dataclass
class Outcome:
    card: CardState
    entries: list[LedgerEntry]
    receipt: dict
    result: PurchaseResult


def price(program: Program, store: Store, card: CardState, body: PurchaseIn, at: datetime, actor: str) -> Outcome:
    """What this purchase does to this card; changes `card` in place."""
    check_card_usable(card)
    activated = False
    if card.status is CardStatus.ISSUED and (
        program.activation is not Activation.REGISTRATION or card.customer_id is not None
    ):
        card.status, card.activated_at, activated = CardStatus.ACTIVE, at, True
    wallet = card.wallet
    redeem = body.redeem_points
    if program.kind is ProgramKind.DISCOUNT:
        if redeem:
            raise refused(422, "redemption_not_available", "This program gives a discount; it has no points.",
                          "redeem_points")
        discount = redemption.program_discount(program, body.total)
    else:
        if redeem and card.status is not CardStatus.ACTIVE:
            raise refused(422, "card_not_active", "Register the card (attach a customer) before redeeming points.",
                          "redeem_points")
        limit = redemption.max_redeemable(program, spendable=wallet.spendable(at), total=body.total)
        if redeem > limit.allowed:
            raise ApiError(422, "redeem_exceeds_limit",
                           f"At most {limit.allowed} points can be redeemed on this receipt ({limit.reason}).",
                           [ErrorDetail("redeem_points", f"allowed maximum: {limit.allowed}")])
        try:
            wallet.spend(redeem, at)
        except InsufficientPoints as exc:
            raise refused(422, "insufficient_points", f"Only {exc.available} points are spendable.",
                          "redeem_points") from None
        discount = redemption.discount_for(program, redeem)

    lines = [earning.Line(i.sku, i.category, i.quantity, i.amount) for i in body.items]
    earned = earning.compute(program, lines, total=body.total, discount=discount if redeem else 0,
                             store_id=store.id, at=at)
    after_redemption = wallet.total
    wallet.earn(Lot(earned.points, at, at + timedelta(days=program.pending_days), expiry_of(program, at),
                    body.receipt_id))
    wallet.compact(at)

    entries = []
    if redeem:
        entries.append(LedgerEntry(entry_id=new_id(), type="redemption", points=-redeem, balance_after=after_redemption,
                                   at=at, receipt_id=body.receipt_id, actor=actor))
    if earned.points:
        entries.append(LedgerEntry(entry_id=new_id(), type="accrual", points=earned.points,
                                   balance_after=wallet.total, at=at, receipt_id=body.receipt_id, actor=actor))
    result = PurchaseResult(
        receipt_id=body.receipt_id, card_number=card.number, points_earned=earned.points, points_redeemed=redeem,
        discount=discount, payable=body.total - discount, balance=wallet.spendable(at), pending=wallet.pending(at),
        tier=card.tier, promotions=earned.promotions, card_activated=activated,
    )
    receipt = {
        "card_number": card.number, "program_id": program.id, "store_id": store.id, "total": body.total,
        "discount": discount, "points_earned": earned.points, "points_redeemed": redeem,
        "lines": [{"sku": ln.sku, "category": ln.category, "quantity": ln.quantity, "amount": ln.amount,
                   "weight": w, "refunded_quantity": 0, "refunded_amount": 0}
                  for ln, w in zip(lines, earned.weights, strict=True)],
        "refunded_amount": 0, "refunded_weight_scaled": 0, "points_reversed": 0, "points_returned": 0,
        "at": at.isoformat(),
    }
    return Outcome(card, entries, receipt, result)


# --- the two entry points ---------------------------------------------------------------

def _identify(tenant_id: str, body: PurchaseIn) -> CardState:
    if body.card_number is not None:
        return card_by_number(tenant_id, body.card_number)
    assert body.phone is not None
    return card_by_phone(tenant_id, body.phone, body.store_id)


def quote(tenant_id: str, principal: Principal, body: PurchaseIn) -> PurchaseResult:
    """The same answer a purchase would give now, with nothing written."""
    card = _identify(tenant_id, body)
    program, store = program_and_store(tenant_id, principal, card, body.store_id)
    return price(program, store, card, body, loyalty.now(), principal.key_id).result


Answer = TypeVar("Answer", PurchaseResult, RefundResult)


def stored_answer(pk: str, sk: str, fingerprint: str, answer: type[Answer], what: str, field: str) -> Answer | None:
    """The kept answer of an already processed request (marked replayed); refuses the same id with another body."""
    stored = loyalty.get_doc(pk, sk)
    if stored is None:
        return None
    doc, _ = stored
    if doc["request_hash"] != fingerprint:
        raise refused(422, "idempotency_key_reused", f"{what} was already processed with a different body.", field)
    return answer.model_validate({**doc["response"], "replayed": True})


def replay(tenant_id: str, body: PurchaseIn, fingerprint: str) -> PurchaseResult | None:
    return stored_answer(loyalty.receipt_pk(tenant_id, body.receipt_id), loyalty.RECEIPT_SK, fingerprint,
                         PurchaseResult, f"Receipt {body.receipt_id!r}", "receipt_id")


def _write(tx: Tx, *, tenant_id: str, receipt_id: str, outcome: Outcome, receipt: dict, at: datetime) -> None:
    """Receipt first (index 0), then the card (1): callers read failures by index."""
    loyalty.add_once(tx, loyalty.receipt_pk(tenant_id, receipt_id), loyalty.RECEIPT_SK, "receipt", receipt, at)
    loyalty.save_card(tx, tenant_id, outcome.card, at)
    for seq, entry in enumerate(outcome.entries):
        loyalty.add_entry(tx, tenant_id, outcome.card.number, entry, seq)


def purchase(tenant_id: str, principal: Principal, body: PurchaseIn, actor: str) -> PurchaseResult:
    fingerprint = request_hash(body)
    check_store_binding(principal, body.store_id)  # before the replay path: a refusal, not someone's answer
    deadline = time.monotonic() + RETRY_SECONDS
    for attempt in range(MAX_ATTEMPTS):
        at = loyalty.now()
        try:
            card = _identify(tenant_id, body)
            program, store = program_and_store(tenant_id, principal, card, body.store_id)
            outcome = price(program, store, card, body, at, actor)
        except ApiError:
            previous = replay(tenant_id, body, fingerprint)  # a retry must get its answer even if rules now refuse
            if previous is not None:
                return previous
            raise
        receipt = {**outcome.receipt, "request_hash": fingerprint, "response": outcome.result.model_dump(mode="json")}

        build = functools.partial(_write, tenant_id=tenant_id, receipt_id=body.receipt_id, outcome=outcome,
                                  receipt=receipt, at=at)
        try:
            transactions.write(build)
            return outcome.result
        except TransactionFailed as err:
            if err.condition_failed(0):
                previous = replay(tenant_id, body, fingerprint)
                if previous is not None:
                    return previous
            if not err.condition_failed(1):
                raise
        if time.monotonic() > deadline:
            break
        time.sleep(transactions.backoff(attempt))
    raise ApiError(409, "card_busy", "The card is being changed by other requests; retry shortly.",
                   headers={"Retry-After": "1"})
