"""Gift and prepaid cards: sale, top-up, balance, ledger, manual correction. Money only, never points.

Every operation that moves money is one DynamoDB transaction: the operation
record (created only if its id is new: the idempotency key), the card
(created, or replaced only if its version is still the one read) and a money
ledger entry. A retry with the same id and body gets the stored answer back,
marked `replayed`; the same id with another body is refused. A card changed
concurrently fails the version condition and the operation is recomputed from a
fresh read with jittered backoff, then 409 `card_busy`.

Sales and top-ups are recorded under the id's receipt partition with their own
sort keys, so they never collide with purchase receipts a refund looks up; a
manual correction shares the points cards' adjustment record, so an
`adjustment_id` is unique per tenant whatever the card.
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from chalicelib.domain import gift_cards as rules
from chalicelib.domain.cards import CardKind, CardState, CardStatus, generate_number, luhn_valid
from chalicelib.domain.ids import new_id
from chalicelib.domain.principal import Principal
from chalicelib.domain.wallet import Wallet
from chalicelib.errors import ApiError, ErrorDetail, card_busy, conflict, forbidden
from chalicelib.schemas.gift_cards import GiftCard, GiftCardAdjustmentIn, GiftCardSale, GiftCardTopUp
from chalicelib.schemas.pos import MoneyEntry
from chalicelib.schemas.tenancy import Program, ProgramKind, ProgramStatus
from chalicelib.services.pos.purchases import refused
from chalicelib.services.program import catalog
from chalicelib.services.tenancy import tenancy
from chalicelib.storage import audit, loyalty, transactions
from chalicelib.storage.documents.common import Document
from chalicelib.storage.documents.operations import Adjustment, GiftSale, GiftTopUp
from chalicelib.storage.transactions import TransactionFailed, Tx

Answer = TypeVar("Answer", GiftCard, MoneyEntry)
Kept = TypeVar("Kept", GiftSale, GiftTopUp, Adjustment)
Sold = TypeVar("Sold", GiftSale, GiftTopUp)
SALE_SK = "gift_sale"
TOPUP_SK = "gift_topup"
MAX_ATTEMPTS = 40
RETRY_SECONDS = 2.5
"""Retry a card that others keep changing for this long (capped jittered backoff), then 409 card_busy."""


def currency_of(tenant_id: str) -> str:
    """The tenant's currency, which every gift card amount is in."""
    return tenancy.require_tenant(tenant_id).currency


def view(card: CardState, currency: str, at: datetime | None = None) -> GiftCard:
    """A gift card as the API shows it, expired as of `at` (default now) even before the sweep marks it."""
    at = at or loyalty.now()
    expired = rules.is_expired(card, at)
    return GiftCard(number=card.number, program_id=card.program_id, kind=card.kind.value,
                    status=CardStatus.EXPIRED.value if expired else card.status.value, money=card.money,
                    currency=currency, expires_at=card.expires_at, expired=expired, issued_at=card.issued_at,
                    activated_at=card.activated_at, block_reason=card.block_reason)


# --- use cases ------------------------------------------------------------------------

def sell(tenant_id: str, principal: Principal, body: GiftCardSale, actor: str) -> tuple[GiftCard, bool]:
    """Sell a gift card loaded with `amount`: a new virtual card, a new plastic number, or an unsold series card.

    Returns (card view, replayed).
    """
    _check_binding(principal, body.store_id)
    if body.number is not None and not luhn_valid(body.number):
        raise refused(400, "invalid_card_number", "The card number fails its Luhn check digit.", "number")
    fingerprint = _fingerprint("sale", body)
    pk = loyalty.receipt_pk(tenant_id, body.sale_id)
    currency = currency_of(tenant_id)

    def compute(at: datetime) -> _Move[GiftCard]:
        program = _gift_program(tenant_id, body.program_id)
        store_id = _store(tenant_id, principal, program, body.store_id)
        problem = rules.sale_problem(program.gift, body.amount)
        if problem is not None:
            raise _refuse(problem)
        existing = loyalty.get_card(tenant_id, body.number) if body.number is not None else None
        if existing is not None and not rules.sellable(existing, program.id):
            raise conflict("card_exists", f"Card {existing.number} is already sold or belongs to another program.",
                           "number")
        card = existing or CardState(
            number=body.number or generate_number(program.card_numbers.prefix, program.card_numbers.length),
            program_id=program.id, kind=CardKind.PLASTIC if body.number else CardKind.VIRTUAL,
            status=CardStatus.ACTIVE, wallet=Wallet(), issued_at=at)
        card.status, card.activated_at = CardStatus.ACTIVE, at
        card.money, card.expires_at = body.amount, rules.expiry_after(program.gift, at)
        entry = MoneyEntry(entry_id=new_id(), type="sale", amount=body.amount, balance_after=card.money, at=at,
                           operation_id=body.sale_id, actor=actor, rule_version=program.version, store_id=store_id)
        answer = view(card, currency, at)
        record = GiftSale(request_hash=fingerprint, card_number=card.number, program_id=program.id,
                          amount=body.amount, store_id=store_id, at=at.isoformat(),
                          response=answer.model_dump(mode="json"))
        return _Move(card, existing is None, entry, record, answer)

    def replay() -> GiftCard | None:
        return _replayed(pk, SALE_SK, GiftSale, fingerprint, f"Sale {body.sale_id!r}", "sale_id")

    return _run(tenant_id, compute, replay, (pk, SALE_SK, "gift_sale"))


def top_up(tenant_id: str, principal: Principal, number: str, body: GiftCardTopUp, actor: str
           ) -> tuple[GiftCard, bool]:
    """Load money onto a reloadable (prepaid, subscription, fuel) card: (card view, replayed).

    A top-up also pushes the expiry to now + validity_days: a prepaid card lives
    as long as it is used, while a gift card nobody reloads expires on schedule.
    """
    _check_binding(principal, body.store_id)
    fingerprint = _fingerprint(f"topup|{number}", body)
    pk = loyalty.receipt_pk(tenant_id, body.topup_id)
    currency = currency_of(tenant_id)

    def compute(at: datetime) -> _Move[GiftCard]:
        card, program = _gift_card(tenant_id, number)
        _check_active(program, "number")
        store_id = _store(tenant_id, principal, program, body.store_id)
        _check_movable(card, at)
        problem = rules.topup_problem(program.gift, card.money, body.amount)
        if problem is not None:
            raise _refuse(problem)
        card.money += body.amount
        card.expires_at = rules.extended_expiry(program.gift, card.expires_at, at)
        entry = MoneyEntry(entry_id=new_id(), type="topup", amount=body.amount, balance_after=card.money, at=at,
                           operation_id=body.topup_id, actor=actor, rule_version=program.version, store_id=store_id)
        answer = view(card, currency, at)
        record = GiftTopUp(request_hash=fingerprint, card_number=number, amount=body.amount, store_id=store_id,
                           at=at.isoformat(), response=answer.model_dump(mode="json"))
        return _Move(card, False, entry, record, answer)

    def replay() -> GiftCard | None:
        return _replayed(pk, TOPUP_SK, GiftTopUp, fingerprint, f"Top-up {body.topup_id!r}", "topup_id")

    return _run(tenant_id, compute, replay, (pk, TOPUP_SK, "gift_topup"))


def get(tenant_id: str, number: str) -> GiftCard:
    """One gift card with its money and status."""
    card, _ = _gift_card(tenant_id, number)
    return view(card, currency_of(tenant_id))


def ledger(tenant_id: str, number: str, limit: int, cursor: str | None) -> tuple[list[MoneyEntry], str | None]:
    """The card's money movements, newest first."""
    _gift_card(tenant_id, number)
    return loyalty.list_entries(tenant_id, number, limit, cursor, model=MoneyEntry)


def adjust(tenant_id: str, number: str, body: GiftCardAdjustmentIn, actor: str) -> MoneyEntry:
    """A manual correction with a mandatory reason, never below zero nor above max_balance: ledger + audit, once.

    Allowed on blocked and expired cards too: correcting a mistake must not wait for the card to be usable.
    """
    fingerprint = _fingerprint(f"gift-adjustment|{number}", body)
    pk = loyalty.adjustment_pk(tenant_id, body.adjustment_id)

    def compute(at: datetime) -> _Move[MoneyEntry]:
        card, program = _gift_card(tenant_id, number)
        _check_sold(card)
        problem = rules.adjustment_problem(program.gift, card.money, body.amount)
        if problem is not None:
            raise _refuse(problem)
        card.money += body.amount
        entry = MoneyEntry(entry_id=new_id(), type="adjustment", amount=body.amount, balance_after=card.money, at=at,
                           operation_id=body.adjustment_id, reason=body.reason, actor=actor,
                           rule_version=program.version)
        record = Adjustment(request_hash=fingerprint, entry=entry.model_dump(mode="json"))
        return _Move(card, False, entry, record, entry)

    def replay() -> MoneyEntry | None:
        doc = _stored(pk, loyalty.ADJUSTMENT_SK, Adjustment, fingerprint, f"Adjustment {body.adjustment_id!r}",
                      "adjustment_id")
        return MoneyEntry.model_validate(doc.entry) if doc else None

    def audited(tx: Tx, move: _Move[MoneyEntry], at: datetime) -> None:
        audit.add(tx, audit.entry(tenant_id, action="gift_card.adjusted", actor=actor, at=at, target=f"card:{number}",
                                  detail={"amount": str(body.amount), "reason": body.reason,
                                          "entry_id": move.entry.entry_id}))

    entry, _ = _run(tenant_id, compute, replay, (pk, loyalty.ADJUSTMENT_SK, "adjustment"), audited)
    return entry


# --- helpers --------------------------------------------------------------------------------------------

def _fingerprint(what: str, body: GiftCardSale | GiftCardTopUp | GiftCardAdjustmentIn) -> str:
    """What was asked, independent of JSON formatting and key order."""
    return hashlib.sha256(f"{what}|{body.model_dump_json()}".encode()).hexdigest()


def _refuse(problem: rules.Refusal, field: str = "amount") -> ApiError:
    return ApiError(422, problem.code, problem.message, [ErrorDetail(field, problem.issue)])


def _gift_card(tenant_id: str, number: str) -> tuple[CardState, Program]:
    """The card and its program, if it is a gift card of this tenant: a points card is not one, and never shows
    its points as money."""
    card = loyalty.get_card(tenant_id, number)
    program = catalog.program(tenant_id, card.program_id) if card else None
    if card is None or program is None or program.kind is not ProgramKind.GIFT:
        raise refused(404, "gift_card_not_found", f"No gift card {number}.", "number")
    return card, program


def _gift_program(tenant_id: str, program_id: str) -> Program:
    program = catalog.program(tenant_id, program_id)
    if program is None:
        raise refused(422, "unknown_program", f"Program {program_id!r} does not exist.", "program_id")
    if program.kind is not ProgramKind.GIFT:
        raise refused(422, "not_gift_program", f"Program {program_id!r} is not a gift program.", "program_id")
    _check_active(program, "program_id")
    return program


def _check_active(program: Program, field: str) -> None:
    if program.status is ProgramStatus.ARCHIVED:
        raise refused(422, "program_archived", f"Program {program.id!r} is archived.", field)


def _check_binding(principal: Principal, store_id: str | None) -> None:
    """A key bound to one store acts for that store only (checked before any replay: a refusal, not an answer)."""
    if principal.store_id is not None and store_id is not None and principal.store_id != store_id:
        raise forbidden(f"This key is bound to store {principal.store_id!r}, not {store_id!r}.")


def _store(tenant_id: str, principal: Principal, program: Program, store_id: str | None) -> str | None:
    """The store the operation happens at (a bound key's own store by default): it must exist, be open and be
    in the program's geography."""
    store_id = store_id or principal.store_id
    if store_id is None:
        return None
    store = catalog.stores(tenant_id).get(store_id)
    if store is None or not store.active:
        raise refused(422, "unknown_store", f"Store {store_id!r} does not exist or is closed.", "store_id")
    covered = (not program.store_ids and not program.regions) or store.id in program.store_ids or (
        bool(store.region) and store.region in program.regions)
    if not covered:
        raise refused(422, "store_not_in_program", f"Program {program.id!r} does not run at store {store_id!r}.",
                      "store_id")
    return store_id


def _check_sold(card: CardState) -> None:
    if card.status is CardStatus.ISSUED:
        raise refused(422, "gift_card_not_sold", f"Card {card.number} has not been sold yet; sell it first.",
                      "number")


def _check_movable(card: CardState, at: datetime) -> None:
    """Money can be loaded only onto a sold card that is neither blocked nor expired."""
    if card.status is CardStatus.BLOCKED:
        reason = f": {card.block_reason}" if card.block_reason else ""
        raise refused(422, "card_blocked", f"Card {card.number} is blocked{reason}.", "number")
    if rules.is_expired(card, at):
        raise refused(422, "gift_card_expired", f"Card {card.number} has expired.", "number")
    _check_sold(card)


def _stored(pk: str, sk: str, model: type[Kept], fingerprint: str, what: str, field: str) -> Kept | None:
    """The kept record of an already processed operation; refuses the same id with another body."""
    stored = loyalty.get_doc(pk, sk, model)
    if stored is None:
        return None
    if stored.doc.request_hash != fingerprint:
        raise refused(422, "idempotency_key_reused", f"{what} was already used with a different body.", field)
    return stored.doc


def _replayed(pk: str, sk: str, model: type[Sold], fingerprint: str, what: str, field: str) -> GiftCard | None:
    doc = _stored(pk, sk, model, fingerprint, what, field)
    return GiftCard.model_validate({**doc.response, "replayed": True}) if doc else None


@dataclass
class _Move(Generic[Answer]):
    """One computed operation, ready to write: its record, the card, the ledger entry, and what to answer."""

    card: CardState
    new_card: bool
    entry: MoneyEntry
    record: Document
    answer: Answer


def _write_move(tx: Tx, *, tenant_id: str, record_key: tuple[str, str, str], move: _Move[Answer], at: datetime,
                extra: Callable[[Tx, _Move[Answer], datetime], None] | None) -> None:
    """The record first (its failure means 'already processed'), then the card (version-guarded) and the entry."""
    pk, sk, kind = record_key
    loyalty.add_once(tx, pk, sk, kind, move.record, at)
    if move.new_card:
        loyalty.add_card(tx, tenant_id, move.card, at)
    else:
        loyalty.save_card(tx, tenant_id, move.card, at)
    loyalty.add_entry(tx, tenant_id, move.card.number, move.entry, 0)
    if extra is not None:
        extra(tx, move, at)


def _run(tenant_id: str, compute: Callable[[datetime], _Move[Answer]], replay: Callable[[], Answer | None],
         record_key: tuple[str, str, str], extra: Callable[[Tx, _Move[Answer], datetime], None] | None = None
         ) -> tuple[Answer, bool]:
    """Compute, then write record (0), card (1), entry (2) in one transaction: (answer, replayed).

    A failed record condition means the id was processed already: its stored answer is returned. A failed
    card condition means someone changed the card (or took the new number): recompute from a fresh read.
    """
    deadline = time.monotonic() + RETRY_SECONDS
    for attempt in range(MAX_ATTEMPTS):
        at = loyalty.now()
        try:
            computed = compute(at)
        except ApiError:
            previous = replay()  # a retry must get its answer even if the rules would now refuse it
            if previous is not None:
                return previous, True
            raise

        build = functools.partial(_write_move, tenant_id=tenant_id, record_key=record_key, move=computed, at=at,
                                  extra=extra)
        try:
            transactions.write(build)
            return computed.answer, False
        except TransactionFailed as err:
            if err.condition_failed(0):
                previous = replay()
                if previous is not None:
                    return previous, True
            if not err.condition_failed(1):
                raise
        if time.monotonic() > deadline:
            break
        time.sleep(transactions.backoff(attempt))
    raise card_busy()
