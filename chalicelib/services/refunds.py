"""Refunds: reverse earned points and return redeemed points in proportion, exactly once.

The refund record (keyed by `refund_id`), the receipt's refund totals, the
card and the ledger entries change in one transaction. Reversal takes the
refunded receipt's own points first (still pending inside the return window),
then other pending points, then the oldest. Points that were already spent
become a negative balance repaid by later accruals (`negative_balance`, the
default), or are written off (`write_off`), per the program.
"""

from __future__ import annotations

import functools
import hashlib
import time
from datetime import datetime
from typing import Any

from chalicelib.domain import refunds as rules
from chalicelib.domain.cards import CardState
from chalicelib.domain.ids import new_id
from chalicelib.domain.principal import Principal
from chalicelib.domain.wallet import Lot
from chalicelib.errors import ApiError, ErrorDetail
from chalicelib.schemas.pos import LedgerEntry, RefundIn, RefundResult
from chalicelib.schemas.tenancy import RefundSpentPolicy
from chalicelib.services import catalog
from chalicelib.services.purchases import card_by_number, expiry_of, refused, stored_answer
from chalicelib.storage import loyalty, transactions
from chalicelib.storage.transactions import TransactionFailed, Tx

MAX_ATTEMPTS = 40
RETRY_SECONDS = 2.5
"""Retry a card that others keep changing for this long (capped jittered backoff), then 409 card_busy."""


def _state(doc: dict[str, Any]) -> rules.ReceiptState:
    return rules.ReceiptState(
        total=int(doc["total"]), points_earned=int(doc["points_earned"]), points_redeemed=int(doc["points_redeemed"]),
        lines=[rules.ReceiptLine(sku=ln["sku"], quantity=int(ln["quantity"]), amount=int(ln["amount"]),
                                 weight=int(ln["weight"]), refunded_quantity=int(ln["refunded_quantity"]),
                                 refunded_amount=int(ln["refunded_amount"])) for ln in doc["lines"]],
        refunded_amount=int(doc["refunded_amount"]), refunded_weight_scaled=int(doc["refunded_weight_scaled"]),
        points_reversed=int(doc["points_reversed"]), points_returned=int(doc["points_returned"]),
    )


def _with_state(doc: dict[str, Any], state: rules.ReceiptState) -> dict[str, Any]:
    lines = [{**old, "refunded_quantity": ln.refunded_quantity, "refunded_amount": ln.refunded_amount}
             for old, ln in zip(doc["lines"], state.lines, strict=True)]
    return {**doc, "lines": lines, "refunded_amount": state.refunded_amount,
            "refunded_weight_scaled": state.refunded_weight_scaled, "points_reversed": state.points_reversed,
            "points_returned": state.points_returned}


def request_hash(body: RefundIn) -> str:
    return hashlib.sha256(body.model_dump_json().encode()).hexdigest()


def replay(tenant_id: str, body: RefundIn, fingerprint: str) -> RefundResult | None:
    return stored_answer(loyalty.refund_pk(tenant_id, body.refund_id), loyalty.REFUND_SK, fingerprint, RefundResult,
                         f"Refund {body.refund_id!r}", "refund_id")


def _write(tx: Tx, *, tenant_id: str, body: RefundIn, card: CardState, entries: list[LedgerEntry],
           refund_doc: dict[str, Any], receipt: dict[str, Any], receipt_version: int, at: datetime) -> None:
    """Refund record first (index 0), then card (1) and receipt (2): callers read failures by index."""
    loyalty.add_once(tx, loyalty.refund_pk(tenant_id, body.refund_id), loyalty.REFUND_SK, "refund", refund_doc, at)
    loyalty.save_card(tx, tenant_id, card, at)
    loyalty.replace_versioned(tx, loyalty.receipt_pk(tenant_id, body.receipt_id), loyalty.RECEIPT_SK, "receipt",
                              receipt, receipt_version, at)
    for seq, entry in enumerate(entries):
        loyalty.add_entry(tx, tenant_id, card.number, entry, seq)


def refund(tenant_id: str, principal: Principal, body: RefundIn, actor: str) -> RefundResult:
    fingerprint = request_hash(body)
    deadline = time.monotonic() + RETRY_SECONDS
    for attempt in range(MAX_ATTEMPTS):
        at = loyalty.now()
        stored = loyalty.get_doc(loyalty.receipt_pk(tenant_id, body.receipt_id), loyalty.RECEIPT_SK)
        if stored is None:
            previous = replay(tenant_id, body, fingerprint)  # a reused refund_id is a reuse, whatever it names
            if previous is not None:
                return previous
            raise refused(404, "receipt_not_found", f"No purchase with receipt_id {body.receipt_id!r}.", "receipt_id")
        receipt, receipt_version = stored
        if principal.store_id is not None and principal.store_id != receipt["store_id"]:
            raise ApiError(403, "forbidden", f"This key is bound to store {principal.store_id!r}; the purchase was "
                           f"made at {receipt['store_id']!r}.")
        state = _state(receipt)
        lines = [rules.RefundLineRequest(i.sku, i.quantity, i.amount) for i in body.items] if body.items else None
        try:
            plan = rules.plan(state, lines=lines, amount=body.amount)
        except rules.RefundRefused as exc:
            previous = replay(tenant_id, body, fingerprint)
            if previous is not None:
                return previous
            raise ApiError(422, exc.code, exc.message, [ErrorDetail(exc.field, exc.message)]) from None
        card = card_by_number(tenant_id, receipt["card_number"], "receipt_id")
        program = catalog.program(tenant_id, card.program_id)
        allow_debt = program is None or program.redemption.refund_spent_policy is RefundSpentPolicy.NEGATIVE_BALANCE
        wallet = card.wallet
        written_off = wallet.reverse(plan.points_reversed, body.receipt_id, at, allow_debt=allow_debt)
        reversed_points = plan.points_reversed - written_off
        entries = []
        if reversed_points:
            entries.append(LedgerEntry(entry_id=new_id(), type="reversal", points=-reversed_points,
                                       balance_after=wallet.total, at=at, receipt_id=body.receipt_id,
                                       refund_id=body.refund_id, actor=actor,
                                       reason=f"{written_off} point(s) written off: already spent" if written_off
                                       else None))
        if plan.points_returned:
            wallet.give_back(Lot(plan.points_returned, at, at, expiry_of(program, at) if program else None,
                                 f"return:{body.refund_id}"))
            entries.append(LedgerEntry(entry_id=new_id(), type="return", points=plan.points_returned,
                                       balance_after=wallet.total, at=at, receipt_id=body.receipt_id,
                                       refund_id=body.refund_id, actor=actor))
        wallet.compact(at)
        rules.apply(state, plan)
        result = RefundResult(
            refund_id=body.refund_id, receipt_id=body.receipt_id, card_number=card.number,
            amount_refunded=plan.amount, points_reversed=reversed_points, points_returned=plan.points_returned,
            points_written_off=written_off, balance=wallet.spendable(at), pending=wallet.pending(at),
        )
        refund_doc = {"receipt_id": body.receipt_id, "request_hash": fingerprint,
                      "response": result.model_dump(mode="json")}
        new_receipt = _with_state(receipt, state)

        build = functools.partial(_write, tenant_id=tenant_id, body=body, card=card, entries=entries,
                                  refund_doc=refund_doc, receipt=new_receipt, receipt_version=receipt_version, at=at)
        try:
            transactions.write(build)
            return result
        except TransactionFailed as err:
            if err.condition_failed(0):
                previous = replay(tenant_id, body, fingerprint)
                if previous is not None:
                    return previous
            if not (err.condition_failed(1) or err.condition_failed(2)):
                raise
        if time.monotonic() > deadline:
            break
        time.sleep(transactions.backoff(attempt))
    raise ApiError(409, "card_busy", "The card or receipt is being changed by other requests; retry shortly.",
                   headers={"Retry-After": "1"})
