"""Cards: issuing (virtual on the spot, pre-printed plastic), looking up, blocking, adjusting."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from chalicelib.domain.cards import CardKind, CardState, CardStatus, generate_number, luhn_valid
from chalicelib.domain.ids import new_id
from chalicelib.domain.wallet import InsufficientPoints, Lot, Wallet
from chalicelib.errors import ApiError, ErrorDetail, card_busy, conflict
from chalicelib.schemas.pos import (
    AdjustmentIn,
    Card,
    CardIssue,
    Customer,
    CustomerCards,
    LedgerEntry,
)
from chalicelib.schemas.tenancy import Activation, Program, ProgramKind, ProgramStatus
from chalicelib.services.customers import customers
from chalicelib.services.pos.purchases import Located, expiry_of, locate, refused
from chalicelib.services.program import catalog
from chalicelib.services.reporting import dashboard
from chalicelib.storage import audit, loyalty, people, transactions
from chalicelib.storage import customers as customer_records
from chalicelib.storage.documents.operations import Adjustment
from chalicelib.storage.transactions import TransactionFailed, Tx

NUMBER_ATTEMPTS = 5


def view(card: CardState, at: datetime | None = None, *, gift: bool = False) -> Card:
    """The card as the API shows it: points for a points card, money for a gift card, never both."""
    at = at or loyalty.now()
    return Card(number=card.number, program_id=card.program_id, kind=card.kind.value, status=card.status.value,
                balance=card.wallet.spendable(at), pending=card.wallet.pending(at), tier=card.tier,
                tier_since=card.tiers.since, money=card.money if gift else None,
                expires_at=card.expires_at if gift else None, customer_id=card.customer_id,
                issued_at=card.issued_at, activated_at=card.activated_at, block_reason=card.block_reason)


def is_gift(located: Located) -> bool:
    """Whether the card belongs to a gift program (its money is served by the gift card routes)."""
    program = catalog.program(located.scope, located.card.program_id)
    return program is not None and program.kind is ProgramKind.GIFT


def issue(tenant_id: str, spec: CardIssue, actor: str) -> tuple[int, Card]:
    """Issue a card: 201 for a new card, 200 when a pre-printed plastic card is registered to a customer.

    The customer (found by phone, created if new) is written first: a card
    issue that then fails still leaves the registration, never a card that
    points at a customer who does not exist.
    """
    scope, program = _program(tenant_id, spec.program_id)
    at = loyalty.now()
    existing = None
    if spec.number is not None:
        if not luhn_valid(spec.number):
            raise refused(400, "invalid_card_number", "The card number fails its Luhn check digit.", "number")
        existing = loyalty.get_card(scope, spec.number)
        if existing is not None:
            _check_registrable(existing, program, spec)
    customer_id = None
    if spec.customer is not None:
        customer_id, _ = customers.ensure(tenant_id, scope, spec.customer, actor, mode="fill")
    from chalicelib.services.integrations import webhooks

    if existing is not None and customer_id is not None:
        registered = _register(tenant_id, scope, existing, program, customer_id, at)
        webhooks.card_activated(tenant_id, registered)
        _pass_changed(tenant_id, registered.number)
        return 200, registered

    def status_for(has_customer: bool) -> tuple[CardStatus, datetime | None]:
        active = program.activation is Activation.IMMEDIATE or (
            program.activation is Activation.REGISTRATION and has_customer)
        return (CardStatus.ACTIVE, at) if active else (CardStatus.ISSUED, None)

    for _ in range(NUMBER_ATTEMPTS):
        number = spec.number or generate_number(program.card_numbers.prefix, program.card_numbers.length)
        status, activated_at = status_for(customer_id is not None)
        card = CardState(number=number, program_id=program.id, kind=CardKind(spec.kind), status=status,
                         wallet=Wallet(), issued_at=at, customer_id=customer_id, activated_at=activated_at)

        def build(tx: Tx, card: CardState = card) -> None:
            loyalty.add_card(tx, scope, card, at)
            if customer_id is not None:
                customer_records.link_card(tx, scope, customer_id, card.number, program.id, at)
            dashboard.count_card(tx, tenant_id, program.id, card.number, activated=card.status is CardStatus.ACTIVE,
                                 at=at)

        try:
            transactions.write(build)
            issued = view(card, at)
            webhooks.card_issued(tenant_id, issued)
            return 201, issued
        except TransactionFailed as err:
            if err.condition_failed(0) and spec.number is not None:
                raise conflict("card_exists", f"Card {spec.number} already exists.", "number") from None
            if not err.condition_failed(0):
                raise
    raise ApiError(503, "numbers_exhausted", "Could not find a free card number; widen the program's number range.")


def get(tenant_id: str, number: str) -> Card:
    """The card as the till sees it (with its money if it is a gift card)."""
    located = locate(tenant_id, number, "number")
    return view(located.card, gift=is_gift(located))


def lookup_by_phone(tenant_id: str, phone: str) -> CustomerCards:
    """The customer and their cards: in the tenant's own base, then in its coalitions' shared bases."""
    at = loyalty.now()
    customer: Customer | None = None
    cards: list[Card] = []
    for scope in catalog.card_scopes(tenant_id):
        customer_id = people.customer_by_phone(scope, phone)
        got = customer_records.get(scope, customer_id) if customer_id else None
        if customer_id is None or got is None:
            continue
        customer = customer or _customer_view(scope, customer_id, got.doc.plain())
        for number in customer_records.card_numbers(scope, customer_id):
            card = loyalty.get_card(scope, number)
            if card:
                cards.append(view(card, at, gift=is_gift(Located(scope, card))))
    if customer is None:
        raise refused(404, "customer_not_found", "No customer with this phone number.", "phone")
    return CustomerCards(customer=customer, cards=cards)


def redacted(entry: LedgerEntry, tenant_id: str) -> LedgerEntry:
    """A coalition partner sees the shared balance's movements, never another partner's receipts."""
    if entry.partner_id is None or entry.partner_id == tenant_id:
        return entry
    return entry.model_copy(update={"receipt_id": None, "refund_id": None, "actor": None, "store_id": None})


def ledger(tenant_id: str, number: str, limit: int, cursor: str | None) -> tuple[list[LedgerEntry], str | None]:
    """A points card's entries, newest first; a gift card's money ledger has its own route."""
    located = locate(tenant_id, number, "number")
    if is_gift(located):
        raise refused(404, "card_not_found", f"Card {number} is a gift card: its money ledger is at "
                      f"/v1/gift-cards/{number}/transactions.", "number")
    entries, next_cursor = loyalty.list_entries(located.scope, number, limit, cursor)
    if located.scope != tenant_id:
        entries = [redacted(e, tenant_id) for e in entries]
    return entries, next_cursor


def set_blocked(tenant_id: str, number: str, reason: str | None, actor: str) -> Card:
    """Block (reason given) or unblock (reason None) a card; recorded in the audit trail."""
    for _ in range(transactions.MAX_ATTEMPTS):
        located = locate(tenant_id, number, "number")
        card = located.card
        at = loyalty.now()
        if reason is not None:
            card.status, card.block_reason = CardStatus.BLOCKED, reason
        elif card.status is CardStatus.BLOCKED:
            card.status = CardStatus.ACTIVE if card.activated_at else CardStatus.ISSUED
            card.block_reason = None
        else:
            return view(card, at, gift=is_gift(located))

        def build(tx: Tx, card: CardState = card, at: datetime = at, scope: str = located.scope) -> None:
            loyalty.save_card(tx, scope, card, at)
            audit.add(tx, audit.entry(tenant_id, action="card.blocked" if reason else "card.unblocked", actor=actor,
                                      at=at, target=f"card:{number}", detail={"reason": reason or ""}))

        try:
            transactions.write(build)
            card.version += 1
            _pass_changed(tenant_id, number)
            return view(card, at, gift=is_gift(located))
        except TransactionFailed as err:
            if not err.condition_failed(0):
                raise
    raise card_busy()


def adjust(tenant_id: str, number: str, spec: AdjustmentIn, actor: str) -> LedgerEntry:
    """A manual credit or debit with a mandatory reason: ledger entry + audit entry, exactly once."""
    fingerprint = hashlib.sha256(f"{number}|{spec.model_dump_json()}".encode()).hexdigest()
    pk = loyalty.adjustment_pk(tenant_id, spec.adjustment_id)
    for _ in range(transactions.MAX_ATTEMPTS):
        located = locate(tenant_id, number, "number")
        card = located.card
        if is_gift(located):
            raise refused(422, "gift_card", f"Card {number} holds money, not points: adjust it at "
                          f"/v1/gift-cards/{number}/adjustments.", "number")
        at = loyalty.now()
        program = catalog.program_at(located.scope, card.program_id, at)
        if spec.points > 0:
            card.wallet.earn(Lot(spec.points, at, at, expiry_of(program, at) if program else None,
                                 f"adj:{spec.adjustment_id}"))
        else:
            try:
                card.wallet.spend(-spec.points, at)
            except InsufficientPoints as exc:
                stored = _stored_adjustment(pk, fingerprint)
                if stored:
                    return stored
                raise ApiError(422, "insufficient_points", f"Only {exc.available} points are spendable.",
                               [ErrorDetail("points", f"at most -{exc.available}")]) from None
        entry = LedgerEntry(entry_id=new_id(), type="adjustment", points=spec.points, balance_after=card.wallet.total,
                            at=at, reason=spec.reason, actor=actor, rule_version=program.version if program else None,
                            partner_id=tenant_id if located.scope != tenant_id else None)

        def build(tx: Tx, card: CardState = card, entry: LedgerEntry = entry, at: datetime = at,
                  scope: str = located.scope) -> None:
            loyalty.add_once(tx, pk, loyalty.ADJUSTMENT_SK, "adjustment",
                             Adjustment(request_hash=fingerprint, entry=entry.model_dump(mode="json")), at)
            loyalty.save_card(tx, scope, card, at)
            loyalty.add_entry(tx, scope, number, entry, 0)
            audit.add(tx, audit.entry(tenant_id, action="card.adjusted", actor=actor, at=at, target=f"card:{number}",
                                      detail={"points": str(spec.points), "reason": spec.reason,
                                              "entry_id": entry.entry_id}))

        try:
            transactions.write(build)
            _pass_changed(tenant_id, number)
            return entry
        except TransactionFailed as err:
            if err.condition_failed(0):
                stored = _stored_adjustment(pk, fingerprint)
                if stored:
                    return stored
            if not err.condition_failed(1):
                raise
    raise card_busy()


# --- helpers --------------------------------------------------------------------------------------------

def _pass_changed(tenant_id: str, number: str) -> None:
    """The card's wallet pass (if it has one) shows the new status or balance (services/wallet/changes.py)."""
    from chalicelib.services.wallet import changes as wallet_changes

    wallet_changes.card_changed(tenant_id, number)


def _program(tenant_id: str, program_id: str) -> tuple[str, Program]:
    """A program this tenant may issue cards of: its own, else a coalition's it is a partner of; and its scope."""
    for scope in catalog.card_scopes(tenant_id):
        program = catalog.program(scope, program_id)
        if program is None:
            continue
        if program.status is ProgramStatus.ARCHIVED:
            raise refused(422, "program_archived", f"Program {program_id!r} is archived.", "program_id")
        if program.kind is ProgramKind.GIFT:
            raise refused(422, "gift_program", f"Program {program_id!r} holds money: sell its cards with "
                          "POST /v1/gift-cards.", "program_id")
        return scope, program
    raise refused(422, "unknown_program", f"Program {program_id!r} does not exist.", "program_id")


def _customer_view(scope: str, customer_id: str, doc: dict[str, Any]) -> Customer:
    personal = customers.person(scope, customer_id).dump()
    return Customer(customer_id=customer_id, **{k: personal.get(k) for k in ("phone", "email", "first_name",
                                                                              "last_name")},
                    created_at=doc["created_at"])


def _check_registrable(card: CardState, program: Program, spec: CardIssue) -> None:
    if card.program_id != program.id:
        raise conflict("card_exists", f"Card {card.number} belongs to another program.", "number")
    if card.customer_id is not None or spec.customer is None:
        raise conflict("card_exists", f"Card {card.number} is already issued.", "number")


def _register(tenant_id: str, scope: str, card: CardState, program: Program, customer_id: str, at: datetime
              ) -> Card:
    """Attach a customer to a pre-printed card from a series (activation on registration)."""
    card.customer_id = customer_id
    activated = card.status is CardStatus.ISSUED and program.activation is not Activation.FIRST_PURCHASE
    if activated:
        card.status, card.activated_at = CardStatus.ACTIVE, at

    def build(tx: Tx) -> None:
        loyalty.save_card(tx, scope, card, at)
        customer_records.link_card(tx, scope, customer_id, card.number, program.id, at)
        dashboard.count_card(tx, tenant_id, program.id, card.number, activated=activated, at=at)

    try:
        transactions.write(build)
    except TransactionFailed:
        raise conflict("card_changed", f"Card {card.number} changed concurrently; retry.", "number") from None
    card.version += 1
    return view(card, at)


def _stored_adjustment(pk: str, fingerprint: str) -> LedgerEntry | None:
    stored = loyalty.get_doc(pk, loyalty.ADJUSTMENT_SK, Adjustment)
    if stored is None:
        return None
    if stored.doc.request_hash != fingerprint:
        raise refused(422, "idempotency_key_reused", "This adjustment_id was already used for another adjustment.",
                      "adjustment_id")
    return LedgerEntry.model_validate(stored.doc.entry)
