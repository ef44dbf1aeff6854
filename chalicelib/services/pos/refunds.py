"""Refunds: reverse earned points, return redeemed points and gift card money in proportion, exactly once.

The refund record (keyed by `refund_id`), the receipt's refund totals, the
cards, released coupon counters and the ledger entries change in one
transaction. A receipt refunded in full gives back its coupons when their
campaign's policy is `release`. Gift card money goes back to the cards that
paid, in proportion to what is refunded (all of it on the last refund).
Points past their expiry date are not reversed: by then they were spent or
expired, and taking other points instead would punish the customer twice. Reversal takes the
refunded receipt's own points first (still pending inside the return window),
then other pending points, then the oldest. Points that were already spent
become a negative balance repaid by later accruals (`negative_balance`, the
default), or are written off (`write_off`), per the program.
"""

from __future__ import annotations

import functools
import hashlib
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from chalicelib.domain import coupons as coupon_rules
from chalicelib.domain import customers as customer_rules
from chalicelib.domain import refunds as rules
from chalicelib.domain import tiers
from chalicelib.domain.cards import CardState
from chalicelib.domain.ids import new_id
from chalicelib.domain.principal import Principal
from chalicelib.domain.wallet import Lot
from chalicelib.errors import ApiError, ErrorDetail, card_busy
from chalicelib.schemas.coupons import RefundPolicy
from chalicelib.schemas.pos import GiftCharge, LedgerEntry, MoneyEntry, RefundIn, RefundResult
from chalicelib.schemas.tenancy import Program, RefundSpentPolicy, TierMetric
from chalicelib.services.pos.purchases import (
    CouponUse,
    Located,
    expiry_of,
    refused,
    stored_answer,
    write_coupon_uses,
    write_once,
)
from chalicelib.services.program import catalog
from chalicelib.services.reporting import dashboard
from chalicelib.storage import coupons as coupon_store
from chalicelib.storage import customers as customer_records
from chalicelib.storage import loyalty, purchase_log, transactions
from chalicelib.storage.documents.receipts import Receipt, ReceiptGiftCard, Refund
from chalicelib.storage.transactions import Tx

MAX_ATTEMPTS = 40
RETRY_SECONDS = 2.5
"""Retry a card that others keep changing for this long (capped jittered backoff), then 409 card_busy."""


def request_hash(body: RefundIn) -> str:
    """The refund body's fingerprint, stored with it so a retry with another body is a conflict."""
    return hashlib.sha256(body.model_dump_json().encode()).hexdigest()


def replay(tenant_id: str, body: RefundIn, fingerprint: str) -> RefundResult | None:
    """The stored answer of an already processed refund, None if it is new; 409 if its body differs."""
    return stored_answer(loyalty.get_refund(tenant_id, body.refund_id), fingerprint, RefundResult,
                         f"Refund {body.refund_id!r}", "refund_id")


def card_by_scope(scope: str, number: str) -> CardState:
    """The receipt's card in the scope it was charged in; a deleted card leaves nothing to refund."""
    card = loyalty.get_card(scope, number)
    if card is None:
        raise refused(404, "card_not_found", f"Card {number} of this receipt no longer exists.", "receipt_id")
    return card


def refund(tenant_id: str, principal: Principal, body: RefundIn, actor: str) -> RefundResult:
    """Process the refund (or replay its kept answer), then its webhook event (the same event id on a replay)."""
    from chalicelib.services.integrations import webhooks

    result = _refund(tenant_id, principal, body, actor)
    webhooks.refunded(tenant_id, result)
    if result.card_number and not result.replayed:
        from chalicelib.services.wallet import changes as wallet_changes

        wallet_changes.card_changed(tenant_id, result.card_number)  # its wallet pass shows the new balance
    return result


# --- helpers --------------------------------------------------------------------------------------------

def _state(doc: Receipt) -> rules.ReceiptState:
    return rules.ReceiptState(
        total=doc.total, points_earned=doc.points_earned, points_redeemed=doc.points_redeemed,
        lines=[rules.ReceiptLine(sku=ln.sku, quantity=ln.quantity, amount=ln.amount, weight=ln.weight,
                                 refunded_quantity=ln.refunded_quantity, refunded_amount=ln.refunded_amount)
               for ln in doc.lines],
        refunded_amount=doc.refunded_amount, refunded_weight_scaled=doc.refunded_weight_scaled,
        points_reversed=doc.points_reversed, points_returned=doc.points_returned,
    )


def _with_state(doc: Receipt, state: rules.ReceiptState, tenders: list[ReceiptGiftCard]) -> Receipt:
    """The receipt with this refund's totals (lines and gift card tenders included), to write back."""
    lines = [old.model_copy(update={"refunded_quantity": ln.refunded_quantity, "refunded_amount": ln.refunded_amount})
             for old, ln in zip(doc.lines, state.lines, strict=True)]
    return doc.model_copy(update={
        "lines": lines, "refunded_amount": state.refunded_amount,
        "refunded_weight_scaled": state.refunded_weight_scaled, "points_reversed": state.points_reversed,
        "points_returned": state.points_returned, "gift_cards": tenders})


def _write(tx: Tx, *, tenant_id: str, body: RefundIn, cards: list[Located], entries: list[tuple[Located, Any]],
           coupon_uses: list[CouponUse], refund_doc: Refund, receipt: Receipt, receipt_version: int,
           customer: tuple[str, str, customer_rules.PurchaseStats] | None, at: datetime) -> None:
    """Refund record first (index 0: its failure means 'already processed'); every later item is version-guarded."""
    loyalty.add_once(tx, loyalty.refund_pk(tenant_id, body.refund_id), loyalty.REFUND_SK, "refund", refund_doc, at)
    loyalty.replace_versioned(tx, loyalty.receipt_pk(tenant_id, body.receipt_id), loyalty.RECEIPT_SK, "receipt",
                              receipt, receipt_version, at)
    for located in cards:
        loyalty.save_card(tx, located.scope, located.card, at)
    write_coupon_uses(tx, tenant_id, coupon_uses, -1, at)
    for seq, (located, entry) in enumerate(entries):
        loyalty.add_entry(tx, located.scope, located.card.number, entry, seq)
    dashboard.count_refund(tx, tenant_id, body.refund_id, receipt.program_id,
                           amount=int(refund_doc.response["amount_refunded"]),
                           points_reversed=int(refund_doc.response["points_reversed"]), at=at)
    if customer is not None:
        customer_records.count_receipt(tx, customer[0], customer[1], customer[2], at)
        purchase_log.add(tx, customer[0], customer[1], tenant_id=tenant_id,
                         purchased_at=receipt.sold_at, receipt_id=body.receipt_id,
                         total=customer[2].spend, kind="refund",
                         store_id=customer[2].store_id, at=at, refund_id=body.refund_id)


def _customer_of(receipt: Receipt, out: _Refund, plan: rules.RefundPlan
                 ) -> tuple[str, str, customer_rules.PurchaseStats] | None:
    """Whose stats the refund reduces: the customer of the receipt's points card, as the card says now."""
    number, scope = receipt.card_number, receipt.card_scope
    if not number or not scope:
        return None
    card = next((c.card for c in out.cards if c.card.number == number), None) or loyalty.get_card(scope, number)
    if card is None or card.customer_id is None:
        return None
    lines = [(receipt.lines[i].category or "", amount) for i, (_, amount) in sorted(plan.line_changes.items())]
    return scope, card.customer_id, customer_rules.receipt_stats(plan.amount, receipt.store_id, lines, refund=True)


def _cumulative_share(paid: int, refunded: int, total: int) -> int:
    """What of `paid` goes back after `refunded` of `total` was refunded, rounded down (all of it at the end)."""
    return paid if refunded >= total else paid * refunded // total


@dataclass
class _Refund:
    result: RefundResult
    cards: list[Located] = field(default_factory=list)
    entries: list[tuple[Located, Any]] = field(default_factory=list)
    coupon_uses: list[CouponUse] = field(default_factory=list)


def _points_expired(receipt: Receipt, program: Program | None, at: datetime) -> bool:
    """Whether the receipt's earned points were past their expiry at `at`.

    The receipt keeps the expiry its points were earned with (counted from the
    sale, so a late offline receipt's too); a receipt kept before that dated
    its points from when it was processed, by the program's expiry days.
    """
    if receipt.keeps_points_expiry:
        expires = receipt.points_expire_at
        return expires is not None and datetime.fromisoformat(expires) <= at
    processed = receipt.processed_at
    return bool(program and program.expiry_days and processed + timedelta(days=program.expiry_days) <= at)


def _points_part(tenant_id: str, receipt: Receipt, number: str, plan: rules.RefundPlan, body: RefundIn, at: datetime,
                 actor: str, out: _Refund) -> None:
    """Reverse earned points and return redeemed ones on the receipt's points card."""
    scope = receipt.card_scope or tenant_id
    located = Located(scope, card_by_scope(scope, number))
    card = located.card
    program = catalog.program_at(scope, card.program_id, at)
    allow_debt = program is None or program.redemption.refund_spent_policy is RefundSpentPolicy.NEGATIVE_BALANCE
    purchased = receipt.processed_at
    to_reverse, expired = plan.points_reversed, 0
    if _points_expired(receipt, program, at):
        to_reverse, expired = 0, plan.points_reversed  # spent or expired by their expiry date: nothing to take
    wallet = card.wallet
    written_off = wallet.reverse(to_reverse, body.receipt_id, at, allow_debt=allow_debt)
    reversed_points = to_reverse - written_off
    stamp = {"at": at, "receipt_id": body.receipt_id, "refund_id": body.refund_id, "actor": actor,
             "rule_version": program.version if program else None, "store_id": receipt.store_id,
             "partner_id": tenant_id if scope != tenant_id else receipt.partner_id}
    if reversed_points:
        out.entries.append((located, LedgerEntry(
            entry_id=new_id(), type="reversal", points=-reversed_points, balance_after=wallet.total,
            reason=f"{written_off} point(s) written off: already spent" if written_off else None, **stamp)))
    if plan.points_returned:
        wallet.give_back(Lot(plan.points_returned, at, at, expiry_of(program, at) if program else None,
                             f"return:{body.refund_id}"))
        out.entries.append((located, LedgerEntry(entry_id=new_id(), type="return", points=plan.points_returned,
                                                 balance_after=wallet.total, **stamp)))
    wallet.compact(at)
    if program is not None and program.tiers is not None and receipt.tier_value:
        value = receipt.tier_value
        taken = (reversed_points + expired if program.tiers.metric is TierMetric.POINTS
                 else value * plan.amount // receipt.total)
        tiers.refund_day(card.tiers, program.tiers, min(taken, value), purchased, at)
    out.cards.append(located)
    out.result = out.result.model_copy(update={
        "card_number": card.number, "points_reversed": reversed_points, "points_returned": plan.points_returned,
        "points_written_off": written_off, "points_expired": expired, "balance": wallet.spendable(at),
        "pending": wallet.pending(at)})


def _gift_part(tenant_id: str, receipt: Receipt, refunded_after: int, body: RefundIn, at: datetime,
               actor: str, out: _Refund) -> list[ReceiptGiftCard]:
    """Give gift card money back in proportion to what the refund covers; returns the receipt's updated tenders."""
    tenders = []
    charges = []
    for tender in receipt.gift_cards:
        give = _cumulative_share(tender.amount, refunded_after, receipt.total) - tender.returned
        tenders.append(tender.model_copy(update={"returned": tender.returned + max(give, 0)}))
        if give <= 0:
            continue
        located = Located(tender.scope, card_by_scope(tender.scope, tender.card_number))
        located.card.money += give
        out.cards.append(located)
        out.entries.append((located, MoneyEntry(
            entry_id=new_id(), type="refund", amount=give, balance_after=located.card.money, at=at,
            receipt_id=body.receipt_id, refund_id=body.refund_id, actor=actor, store_id=receipt.store_id,
            partner_id=tenant_id if tender.scope != tenant_id else None)))
        charges.append(GiftCharge(card_number=located.card.number, amount=give, balance=located.card.money))
    out.result = out.result.model_copy(update={"gift_cards": charges})
    return tenders


def _release_coupons(tenant_id: str, receipt: Receipt, out: _Refund) -> None:
    """A receipt refunded in full gives back the coupons whose campaign says so."""
    released = []
    for used in receipt.coupons:
        found = coupon_store.get_campaign(tenant_id, used.campaign_id)
        if found is None or found.doc.refund_policy is not RefundPolicy.RELEASE:
            continue
        state = coupon_store.get_code(tenant_id, used.code) if used.counted_code else None
        customer = (coupon_store.customer_uses(tenant_id, used.campaign_id, used.holder)
                    if used.counted_customer else None)
        if customer is not None and customer.version == 0:
            customer = None
        out.coupon_uses.append(CouponUse(used.code, used.campaign_id, used.holder, state, customer))
        released.append(coupon_rules.display(used.code))
    out.result = out.result.model_copy(update={"coupons_released": released})


def _refund(tenant_id: str, principal: Principal, body: RefundIn, actor: str) -> RefundResult:
    fingerprint = request_hash(body)
    deadline = time.monotonic() + RETRY_SECONDS
    for attempt in range(MAX_ATTEMPTS):
        at = loyalty.now()
        stored = loyalty.get_receipt(tenant_id, body.receipt_id)
        if stored is None:
            previous = replay(tenant_id, body, fingerprint)  # a reused refund_id is a reuse, whatever it names
            if previous is not None:
                return previous
            raise refused(404, "receipt_not_found", f"No purchase with receipt_id {body.receipt_id!r}.", "receipt_id")
        receipt = stored.doc
        if principal.store_id is not None and principal.store_id != receipt.store_id:
            raise ApiError(403, "forbidden", f"This key is bound to store {principal.store_id!r}; the purchase was "
                           f"made at {receipt.store_id!r}.")
        state = _state(receipt)
        lines = [rules.RefundLineRequest(i.sku, i.quantity, i.amount) for i in body.items] if body.items else None
        try:
            plan = rules.plan(state, lines=lines, amount=body.amount)
        except rules.RefundRefused as exc:
            previous = replay(tenant_id, body, fingerprint)
            if previous is not None:
                return previous
            raise ApiError(422, exc.code, exc.message, [ErrorDetail(exc.field, exc.message)]) from None
        out = _Refund(RefundResult(refund_id=body.refund_id, receipt_id=body.receipt_id, card_number=None,
                                   amount_refunded=plan.amount, points_reversed=0, points_returned=0, balance=0,
                                   pending=0))
        if receipt.card_number:
            _points_part(tenant_id, receipt, receipt.card_number, plan, body, at, actor, out)
        rules.apply(state, plan)
        tenders = _gift_part(tenant_id, receipt, state.refunded_amount, body, at, actor, out)
        if state.refunded_amount >= state.total:
            _release_coupons(tenant_id, receipt, out)
        refund_doc = Refund(receipt_id=body.receipt_id, request_hash=fingerprint,
                            response=out.result.model_dump(mode="json"))
        new_receipt = _with_state(receipt, state, tenders)

        build = functools.partial(_write, tenant_id=tenant_id, body=body, cards=out.cards, entries=out.entries,
                                  coupon_uses=out.coupon_uses, refund_doc=refund_doc, receipt=new_receipt,
                                  receipt_version=stored.version, customer=_customer_of(receipt, out, plan), at=at)
        done = write_once(build, out.result, lambda: replay(tenant_id, body, fingerprint))
        if done is not None:
            return done
        if time.monotonic() > deadline:
            break
        time.sleep(transactions.backoff(attempt))
    raise card_busy("The card or receipt")
