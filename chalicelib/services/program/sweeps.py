"""The daily sweep (points and gift money expiry, tier reviews), expiring-points queries, manual tier assignment.

Sweep. A card is indexed under the day of its next due moment
(`CardState.next_due`: a lot or the gift money expiring, a tier check), so the
sweep never scans: `start_daily` queues one `sweep.scope` job per scope (every
active tenant and every coalition its tenants are partners of), and the job
walks the day partitions from the day after the scope's last completed day up
to today (a scope never swept starts on the day its tenant or coalition was
created: nothing can be due earlier, so a new tenant's first sweep reads one
day, not a year). Each card is re-read (the index is eventually consistent), maintained
under the rules in force, and written back with its ledger entries in one
transaction guarded by the card's version; a card changed meanwhile is re-read
and recomputed. A maintained card moves to its next due day, so reprocessing a
day is a no-op: the sweep is idempotent, and a job redelivered or resumed from
its cursor (after its time budget) just carries on. Today's partition is walked
on every run but only recorded as completed the next day, so cards due later
today are picked up tomorrow.

Queries. "Points expiring within N days" reads the same index: a card with
points expiring by today + N is due on or before that day; the query starts a
week back to include cards the sweep has not reached yet.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from chalicelib.domain import tiers
from chalicelib.domain.cards import CardState
from chalicelib.domain.ids import new_id
from chalicelib.domain.maintenance import maintain
from chalicelib.errors import ApiError, ErrorDetail, card_busy, not_found
from chalicelib.observability import logger
from chalicelib.schemas.pos import Card, LedgerEntry, MoneyEntry
from chalicelib.schemas.tenancy import Program, TenantStatus
from chalicelib.services.pos import cards as card_service
from chalicelib.services.program import catalog
from chalicelib.settings import settings
from chalicelib.storage import audit, directory, loyalty, pagination, queues, transactions
from chalicelib.storage.documents.common import Versioned
from chalicelib.storage.documents.operations import SweepState, TierAssignment
from chalicelib.storage.transactions import TransactionFailed, Tx

SCOPE_JOB = "sweep.scope"
BUDGET_SECONDS = 10.0
"""Work per job message before it re-enqueues itself with its cursor."""
PAGE = 100
"""Cards read per index query."""
FIRST_RUN_DAYS = 400
"""A scope never swept whose owner's creation is unknown starts this far back (no card can be older)."""
CARD_ATTEMPTS = 8
STATE_SK = "state"
TIER_ASSIGNMENT_SK = "tier_assignment"
"""Shares the adjustment partition per id (`loyalty.adjustment_pk`): manual changes by an admin, told apart by sk."""
LOOKBACK_DAYS = 7
"""Expiring queries also read this many past days: cards due there that the sweep has not processed yet."""
SCAN_BUDGET = 1_000
"""Cards an expiring-points page may read; past that it returns what it has with a cursor."""
DIRECTORY_PAGE = 200


class KeptChanging(Exception):
    """A card (or the sweep state) kept changing under the sweep; the job fails and SQS redelivers it."""


@dataclass
class Progress:
    done: bool
    cursor: dict[str, Any] | None = None
    """Where to resume: {"day", "key"} (the index's last evaluated key in that day's partition)."""
    cards_seen: int = 0
    cards_changed: int = 0
    entries: int = 0
    days: int = 0
    """Day partitions of the index walked to their end in this run: its cost, one Query or more each."""


@dataclass(frozen=True)
class CardExpiry:
    card_number: str
    total: int
    """Points expiring in the whole window, whatever the page."""
    items: list[tuple[datetime, int]] = field(default_factory=list)
    """(expiry moment, points), soonest first: one page of them."""
    cursor: str | None = None
    """Where the next page starts; None on the last page."""


@dataclass(frozen=True)
class ExpiringCard:
    card_number: str
    customer_id: str | None
    points: int
    first_expires_at: datetime


# --- which scopes to sweep ---------------------------------------------------------------

def scopes_to_sweep() -> list[str]:
    """Every active tenant's own scope and the coalition scopes they are partners of (each once)."""
    scopes: list[str] = []
    for tenant in catalog.active_tenants(DIRECTORY_PAGE):
        scopes.extend(s for s in catalog.card_scopes(tenant.tenant_id) if s not in scopes)
    return scopes


def job_message(scope: str, day: date, cursor: dict[str, Any] | None = None) -> dict[str, Any]:
    """The jobs-queue message that sweeps one scope for `day`, from `cursor` when resuming."""
    message: dict[str, Any] = {"job": SCOPE_JOB, "scope": scope, "day": day.isoformat()}
    if cursor is not None:
        message["cursor"] = cursor
    return message


def start_daily(at: datetime) -> list[str]:
    """The scheduled entry: queue one sweep job per scope for the UTC day of `at`; returns the scopes."""
    scopes = scopes_to_sweep()
    for scope in scopes:
        queues.send(settings.jobs_queue, job_message(scope, at.date()))
    logger.info("daily sweep queued", extra={"scopes": len(scopes), "day": at.date().isoformat()})
    return scopes


# --- one scope ------------------------------------------------------------------------

def last_completed(scope: str) -> date | None:
    """The last day the scope's sweep finished, or None if it never has."""
    stored = loyalty.get_doc(_state_pk(scope), STATE_SK, SweepState)
    return stored.doc.completed_day if stored else None


def first_day(scope: str, day: date) -> date:
    """Where a scope's first sweep starts: the UTC day its owner was created, since every due moment (a lot's
    expiry, gift money's, a tier check) lies after a card write, and cards exist only once their owner does.

    An owner unknown, or created after `day` (clocks that disagree), gives the old full lookback instead.
    """
    created = directory.scope_created_at(scope)
    start = created.astimezone(UTC).date() if created else None
    return start if start is not None and start <= day else day - timedelta(days=FIRST_RUN_DAYS)


def maintain_card(scope: str, number: str) -> int | None:
    """Maintain one card now; returns the entries written (None: nothing to do, or the card is gone)."""
    for attempt in range(CARD_ATTEMPTS):
        card = loyalty.get_card(scope, number)
        if card is None:
            return None
        at = loyalty.now()
        result = maintain(card, catalog.program_at(scope, card.program_id, at), at)
        if not result.changed:
            return None

        def build(tx: Tx, new: CardState = result.card, entries: list[LedgerEntry | MoneyEntry] = result.entries,
                  at: datetime = at) -> None:
            loyalty.save_card(tx, scope, new, at)
            for seq, entry in enumerate(entries):
                loyalty.add_entry(tx, scope, number, entry, seq)

        try:
            transactions.write(build)
            from chalicelib.services.integrations import webhooks

            webhooks.tier_entries(scope, number, result.card.program_id, result.entries)
            from chalicelib.services.wallet import changes as wallet_changes

            wallet_changes.card_changed(scope, number)  # points expired or matured, tier reviewed: the pass shows it
            return len(result.entries)
        except TransactionFailed as err:
            if not err.condition_failed(0):
                raise
            time.sleep(transactions.backoff(attempt))
    raise KeptChanging(f"card {number} in {scope} kept changing")


def run_scope(scope: str, day: date, cursor: dict[str, Any] | None = None, *, budget_seconds: float | None = None,
              page_size: int | None = None) -> Progress:
    """Sweep `scope` up to and including `day`, from `cursor` or from where the last run completed.

    With a budget, stops once it is spent (after at least one page holding
    cards, so every run makes progress) and returns the cursor to resume from.
    """
    if not _scope_active(scope):
        logger.info("sweep skipped: tenant not active", extra={"scope": scope})
        return Progress(done=True)
    deadline = None if budget_seconds is None else time.monotonic() + budget_seconds
    size = page_size or PAGE
    if cursor is not None:
        current, key = date.fromisoformat(str(cursor["day"])), cursor.get("key")
    else:
        completed = last_completed(scope)
        current, key = (completed + timedelta(days=1) if completed else first_day(scope, day)), None
    progress = Progress(done=False)
    while current <= day:
        if progress.cards_seen and deadline is not None and time.monotonic() >= deadline:
            progress.cursor = {"day": current.isoformat(), "key": key}
            return progress
        numbers, key = loyalty.due_cards(scope, current, size, key)
        for number in numbers:
            progress.cards_seen += 1
            written = maintain_card(scope, number)
            if written is not None:
                progress.cards_changed += 1
                progress.entries += written
        if key is None:
            current += timedelta(days=1)
            progress.days += 1
    _record_completed(scope, day - timedelta(days=1))
    from chalicelib.services.integrations import webhooks

    webhooks.points_expiring(scope, day)
    from chalicelib.services.wallet import changes as wallet_changes

    wallet_changes.start_refresh(scope)  # passes whose points matured today show it (no write announces that)
    progress.done = True
    return progress


def handle_job(message: dict[str, Any]) -> None:
    """The jobs worker's entry: sweep for a while, then hand the rest to a fresh message."""
    scope, day = str(message["scope"]), date.fromisoformat(str(message["day"]))
    progress = run_scope(scope, day, message.get("cursor"), budget_seconds=BUDGET_SECONDS)
    if not progress.done:
        queues.send(settings.jobs_queue, job_message(scope, day, progress.cursor))
    logger.info("sweep progress", extra={"scope": scope, "day": day.isoformat(), "done": progress.done,
                                          "cards_changed": progress.cards_changed, "entries": progress.entries})


def run_daily(at: datetime) -> dict[str, Progress]:
    """The whole daily sweep in this process, to the end (the local stack's `cli sweep`)."""
    return {scope: run_scope(scope, at.date()) for scope in scopes_to_sweep()}


# --- expiring points --------------------------------------------------------------------

def card_expiring(tenant_id: str, number: str, within_days: int, limit: int = 200,
                  cursor: str | None = None) -> CardExpiry:
    """Points of one card that expire within `within_days` from now (pending points included), a page at a time.

    The cursor is the last expiry moment returned, bound to this tenant, card and window (a forged one is a
    400), so a page boundary stays put while time passes or points are spent between pages.
    """
    _, card = _locate(tenant_id, number)
    list_id = f"{tenant_id}#card-expiring#{card.number}#{within_days}"
    raw = pagination.decode(cursor, hash_attr="list", hash_value=list_id)
    after: datetime | None = None
    if raw is not None:
        try:
            after = datetime.fromisoformat(raw["after"]["S"])
        except (KeyError, ValueError):
            raise ApiError(400, "validation_error", "The cursor is not one this API returned.",
                           [ErrorDetail("cursor", "malformed")]) from None
    at = loyalty.now()
    items = card.wallet.expiring(at, at + timedelta(days=within_days))
    rest = [(moment, points) for moment, points in items if after is None or moment > after]
    page, more = rest[:limit], len(rest) > limit
    next_cursor = pagination.encode({"list": {"S": list_id}, "after": {"S": page[-1][0].isoformat()}}) if more else None
    return CardExpiry(card_number=card.number, total=sum(p for _, p in items), items=page, cursor=next_cursor)


def program_expiring(tenant_id: str, program_id: str, *, within_days: int, min_points: int = 1, limit: int = 50,
                     cursor: str | None = None) -> tuple[list[ExpiringCard], str | None]:
    """Cards of a program holding at least `min_points` points that expire within `within_days`, by due day.

    For the admin's list and for mailings ("your points expire soon"). Each
    card is listed once: under the day it is indexed now (a card whose due day
    moved while paging is taken where it moved to).
    """
    at = loyalty.now()
    scope, program = _program_scope(tenant_id, program_id, at)
    until = at + timedelta(days=within_days)
    first, last = at.date() - timedelta(days=LOOKBACK_DAYS), until.date()
    list_id = _list_id(tenant_id, program.id, within_days, min_points)
    start = _decode(cursor, list_id, scope)
    day, key = start if start else (first, None)
    if day < first:
        day, key = first, None
    items: list[ExpiringCard] = []
    read = 0
    while day <= last and len(items) < limit and read < SCAN_BUDGET:
        numbers, key = loyalty.due_cards(scope, day, min(limit - len(items), SCAN_BUDGET - read), key)
        for number in numbers:
            read += 1
            card = loyalty.get_card(scope, number)
            if card is None or card.program_id != program.id or card.next_due is None \
                    or card.next_due.date() != day:
                continue
            due = card.wallet.expiring(at, until)
            points = sum(p for _, p in due)
            if due and points >= min_points:
                items.append(ExpiringCard(card.number, card.customer_id, points, due[0][0]))
        if key is None:
            day += timedelta(days=1)
    if day > last:
        return items, None
    return items, pagination.encode({"list": {"S": list_id}, "day": {"S": day.isoformat()}, **(key or {})})


# --- manual tier assignment ---------------------------------------------------------------

def assign_tier(tenant_id: str, number: str, *, tier: str, reason: str, until: datetime | None, assignment_id: str,
                actor: str) -> Card:
    """An admin sets a card's tier (a floor for downgrades until `until`): card, ledger and audit, exactly once."""
    fingerprint = _assignment_hash(number, tier, reason, until)
    pk = loyalty.adjustment_pk(tenant_id, assignment_id)
    for attempt in range(CARD_ATTEMPTS):
        scope, card = _locate(tenant_id, number)
        at = loyalty.now()
        program = catalog.program_at(scope, card.program_id, at)
        if program is None or program.tiers is None:
            return _refuse_or_replay(pk, fingerprint, ApiError(
                422, "program_has_no_tiers", f"Program {card.program_id!r} has no tiers.",
                [ErrorDetail("tier", "the card's program has no tiers")]))
        if until is not None and until <= at:
            return _refuse_or_replay(pk, fingerprint, ApiError(
                422, "until_in_past", "`until` must be in the future.", [ErrorDetail("until", "not in the future")]))
        try:
            change = tiers.assign(card.tiers, program.tiers, tier, reason=reason, actor=actor, at=at, until=until)
        except KeyError:
            known = ", ".join(t.id for t in program.tiers.levels)
            return _refuse_or_replay(pk, fingerprint, ApiError(
                422, "unknown_tier", f"Program {program.id!r} has no tier {tier!r} (tiers: {known}).",
                [ErrorDetail("tier", "no such tier")]))
        entry = LedgerEntry(entry_id=new_id(), type="tier", points=0, balance_after=card.wallet.total, at=at,
                            reason=reason, actor=actor, rule_version=program.version, tier=change.tier,
                            previous_tier=change.previous)
        answer = card_service.view(card, at)

        def build(tx: Tx, card: CardState = card, entry: LedgerEntry = entry, answer: Card = answer,
                  at: datetime = at, scope: str = scope, previous: str | None = change.previous) -> None:
            loyalty.add_once(tx, pk, TIER_ASSIGNMENT_SK, "tier_assignment",
                             TierAssignment(request_hash=fingerprint, card=answer.model_dump(mode="json")), at)
            loyalty.save_card(tx, scope, card, at)
            loyalty.add_entry(tx, scope, number, entry, 0)
            audit.add(tx, audit.entry(tenant_id, action="card.tier_assigned", actor=actor, at=at,
                                      target=f"card:{number}",
                                      detail={"tier": tier, "previous_tier": previous or "", "reason": reason,
                                              "until": until.isoformat() if until else "",
                                              "entry_id": entry.entry_id}))

        try:
            transactions.write(build)
            from chalicelib.services.integrations import webhooks

            webhooks.tier_changed(tenant_id, number, card.program_id, change.previous, change.tier, "assigned",
                                  f"assignment:{assignment_id}")
            from chalicelib.services.wallet import changes as wallet_changes

            wallet_changes.card_changed(tenant_id, number)
            return answer
        except TransactionFailed as err:
            if err.condition_failed(0):
                stored = _stored_assignment(pk, fingerprint)
                if stored is not None:
                    return stored
            if not err.condition_failed(1):
                raise
            time.sleep(transactions.backoff(attempt))
    raise card_busy()


# --- helpers --------------------------------------------------------------------------------------------

def _state_pk(scope: str) -> str:
    return f"{scope}#sweep"


def _record_completed(scope: str, day: date) -> None:
    """Remember the last day whose partition is done; never moves back (a late or duplicate job loses)."""
    for _ in range(CARD_ATTEMPTS):
        stored = loyalty.get_doc(_state_pk(scope), STATE_SK, SweepState)
        if stored and stored.doc.completed_day >= day:
            return
        at = loyalty.now()
        doc = SweepState(completed=day.isoformat())

        def build(tx: Tx, stored: Versioned[SweepState] | None = stored, doc: SweepState = doc,
                  at: datetime = at) -> None:
            if stored is None:
                loyalty.add_once(tx, _state_pk(scope), STATE_SK, "sweep_state", doc, at)
            else:
                loyalty.replace_versioned(tx, _state_pk(scope), STATE_SK, "sweep_state", doc, stored.version, at)

        try:
            transactions.write(build)
            return
        except TransactionFailed as err:
            if not err.condition_failed(0):
                raise
    raise KeptChanging(f"sweep state of {scope} kept changing")


def _scope_active(scope: str) -> bool:
    """A tenant scope is swept only while the tenant is active; a coalition's shared scope always."""
    if scope.startswith(loyalty.coalition_scope("")):
        return True
    tenant = directory.get_tenant(scope)
    return tenant is not None and tenant.status is TenantStatus.ACTIVE


def _locate(tenant_id: str, number: str) -> tuple[str, CardState]:
    """The card in the tenant's own scope or a coalition it is a partner of; anything else is a 404."""
    if number.isdigit():
        for scope in catalog.card_scopes(tenant_id):
            card = loyalty.get_card(scope, number)
            if card is not None:
                return scope, card
    raise ApiError(404, "card_not_found", f"No card {number}.", [ErrorDetail("number", "no such card")])


def _program_scope(tenant_id: str, program_id: str, at: datetime) -> tuple[str, Program]:
    for scope in catalog.card_scopes(tenant_id):
        program = catalog.program_at(scope, program_id, at)
        if program is not None:
            return scope, program
    raise not_found("Program")


def _list_id(tenant_id: str, program_id: str, within_days: int, min_points: int) -> str:
    """What a cursor is bound to: this tenant's list with these filters (another tenant's cursor is a 400)."""
    return f"{tenant_id}#expiring#{program_id}#{within_days}#{min_points}"


def _decode(cursor: str | None, list_id: str, scope: str) -> tuple[date, dict[str, Any] | None] | None:
    raw = pagination.decode(cursor, hash_attr="list", hash_value=list_id)
    if raw is None:
        return None
    try:
        day = date.fromisoformat(raw["day"]["S"])
    except (KeyError, ValueError):
        raise ApiError(400, "validation_error", "The cursor is not one this API returned.",
                       [ErrorDetail("cursor", "malformed")]) from None
    key = {k: v for k, v in raw.items() if k not in ("list", "day")} or None
    if key is not None:
        number = key.get("gsi1sk", {}).get("S", "")
        if (set(key) != {"gsi1pk", "gsi1sk", "pk", "sk"} or key["gsi1pk"].get("S") != loyalty.due_pk(scope, day)
                or key["pk"].get("S") != loyalty.card_pk(scope, number) or key["sk"].get("S") != loyalty.CARD_SK):
            raise ApiError(400, "validation_error", "The cursor does not belong to this list.",
                           [ErrorDetail("cursor", "not this list")])
    return day, key


def _assignment_hash(number: str, tier: str, reason: str, until: datetime | None) -> str:
    return hashlib.sha256(f"{number}|{tier}|{reason}|{until.isoformat() if until else ''}".encode()).hexdigest()


def _stored_assignment(pk: str, fingerprint: str) -> Card | None:
    stored = loyalty.get_doc(pk, TIER_ASSIGNMENT_SK, TierAssignment)
    if stored is None:
        return None
    doc = stored.doc
    if doc.request_hash != fingerprint:
        raise ApiError(422, "idempotency_key_reused", "This assignment_id was already used for another assignment.",
                       [ErrorDetail("assignment_id", "already used")])
    return Card.model_validate(doc.card)


def _refuse_or_replay(pk: str, fingerprint: str, err: ApiError) -> Card:
    """A retried assignment is answered as the first time, even if it could not be made now."""
    stored = _stored_assignment(pk, fingerprint)
    if stored is not None:
        return stored
    raise err
