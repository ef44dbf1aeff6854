"""Live numbers for the tenant dashboard: counted inside the writes that make them, read by day.

Counting: every hook queues one ADD update on the caller's transaction, so a
figure moves exactly when its receipt, refund, card or customer is written
(a replayed or refused request counts nothing), with no read on the purchase
path (the tenant's time zone comes from the catalog, already warm there).
Days are the tenant's local days, and an event counts on the day it is
processed (a receipt sent later with an earlier `purchased_at` counts today).

Reading: one Query per local day of the month so far (at most 31, each of at
most 16 x (programs + 1) small items). Not cached: past days could be (they
no longer change), but a dashboard is opened by people, not tills, and an
uncached read is never stale.
"""

from __future__ import annotations

from datetime import datetime

from chalicelib import clock
from chalicelib.domain import dashboard as rules
from chalicelib.errors import ApiError, ErrorDetail
from chalicelib.schemas.dashboard import Dashboard, Figures
from chalicelib.services.program import catalog
from chalicelib.storage import dashboard as store
from chalicelib.storage.documents.receipts import Receipt
from chalicelib.storage.transactions import Tx


def dashboard(tenant_id: str, program_id: str | None = None) -> Dashboard:
    """The tenant's (or one program's) figures of today and this month, from the day counters."""
    if program_id is not None:
        _check_program(tenant_id, program_id)
    at = clock.now()
    timezone = catalog.timezone(tenant_id)
    today = rules.local_day(at, timezone)
    days = {day: rules.add_up(store.day_rows(tenant_id, day), program_id) for day in rules.month_days(today)}
    month = rules.add_up(("", figures) for figures in days.values())
    return Dashboard(today=_figures(days[today]), month=_figures(month), day=today, month_start=today.replace(day=1),
                     as_of=at, timezone=timezone, program_id=program_id)


def record(tx: Tx, tenant_id: str, program_id: str | None, key: str, deltas: dict[str, int], at: datetime) -> None:
    """Queue `deltas` on the tenant's counter for `at`'s local day, shard chosen by `key` (the record's own id)."""
    changes = rules.nonzero(deltas)
    if changes:
        day = rules.local_day(at, catalog.timezone(tenant_id))
        store.count(tx, tenant_id, program_id, day, rules.shard_of(key), changes, at)


def count_purchase(tx: Tx, tenant_id: str, receipt_id: str, receipt: Receipt, *, activated: bool,
                   at: datetime) -> None:
    """Queue what the receipt being written adds to its program's day (only the figures the rule reads, no dump)."""
    figures = {"total": receipt.total, "points_earned": receipt.points_earned,
               "points_redeemed": receipt.points_redeemed, "points_discount": receipt.points_discount}
    record(tx, tenant_id, receipt.program_id, receipt_id, rules.purchase_figures(figures, activated=activated), at)


def count_refund(tx: Tx, tenant_id: str, refund_id: str, program_id: str | None, *, amount: int,
                 points_reversed: int, at: datetime) -> None:
    record(tx, tenant_id, program_id, refund_id, rules.refund_figures(amount=amount, points_reversed=points_reversed),
           at)


def count_card(tx: Tx, tenant_id: str, program_id: str, number: str, *, activated: bool, at: datetime) -> None:
    record(tx, tenant_id, program_id, number, rules.card_figures(activated=activated), at)


def count_customer(tx: Tx, tenant_id: str, customer_id: str, at: datetime) -> None:
    record(tx, tenant_id, None, customer_id, rules.customer_figures(), at)


def _check_program(tenant_id: str, program_id: str) -> None:
    """The tenant's own program or a coalition program it is a partner of; anything else is a 404."""
    if not any(catalog.program(scope, program_id) for scope in catalog.card_scopes(tenant_id)):
        raise ApiError(404, "program_not_found", f"No program {program_id!r}.",
                       [ErrorDetail("program_id", "not found")])


def _figures(totals: dict[str, int]) -> Figures:
    return Figures(**totals, **rules.derived(totals))
