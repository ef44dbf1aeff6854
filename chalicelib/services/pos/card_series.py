"""Plastic card series: pre-printed card numbers generated in bulk for a program.

Numbers are random (prefix + random digits + Luhn check digit), never
sequential: a card number is all a till needs to spend a card's points, so a
printed number must not reveal its neighbours. The check digit only catches
typing errors; it is not a secret.

A series of up to `SYNC_LIMIT` cards is made in the request (201); a larger
one is answered 202 `queued` and made by the jobs worker in chunks of
`CHUNK` cards, re-enqueueing itself every `BUDGET_SECONDS` until done.

Exactly `count` cards, however often a job is delivered. The series record
holds `created` (always a whole number of chunks, except for the last one)
and a version. Chunk k is made in three steps, each safe to repeat:

1. claim: choose k's numbers and store them in a chunk record created only if
   absent; a second run finds the record and uses the same numbers;
2. write: read those numbers back (strongly consistent BatchGetItem), write
   the absent ones, keep the ones already ours, and swap the ones someone else
   took in the meantime for fresh numbers (in the chunk record first, by
   version, then the cards), so nothing outside the chunk is ever written;
3. count: `created += len(chunk)` only if the series is still at the version
   read; a run that loses re-reads and carries on from the winner's progress.

A crash between 2 and 3 leaves written but uncounted cards that the retry
finds as its own in step 2: no card is written twice into the count, and none
outside it. The print list reads the chunk records of counted chunks only.

Why BatchGetItem + BatchWriteItem rather than conditional writes. BatchWrite
has no conditions; TransactWriteItems of up to 100 conditional puts would be
airtight, but costs twice the write units, one collision cancels all 100, and
in-process moto deep-copies the whole table on every transaction (we measured
over a minute per 100-put call with 6,000 items in the table); a conditional
PutItem per card costs 25 times the round trips (about 50 s for 10,000 cards on
moto, where BatchWriteItem takes about 10 s), for the same write units.
The price is a small race: a number read as free can be issued by someone
else (a virtual card drawn from the same space, or another series) in the
milliseconds before our batch lands, and our write would replace that card.
Its odds per chunk are about (cards issued by others in that window) x
`CHUNK` / (number space); the space is at least 10^7 and a tenant's series
may fill at most 1% of it, so e.g. 10 issues/s against a 10^9 space is ~1e-7
per chunk. Our own retries never replace a card (step 2 skips existing ones).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib import clock
from chalicelib.domain.cards import CardKind, CardState, CardStatus, generate_number, space_problem
from chalicelib.domain.ids import new_id
from chalicelib.domain.wallet import Wallet
from chalicelib.errors import ApiError, ErrorDetail, conflict, not_found
from chalicelib.observability import logger
from chalicelib.schemas.card_series import CardSeries, CardSeriesCreate, SeriesCard, SeriesStatus
from chalicelib.schemas.tenancy import Program, ProgramStatus
from chalicelib.services.program import catalog
from chalicelib.services.tenancy import tenancy
from chalicelib.settings import settings
from chalicelib.storage import audit, queues, transactions
from chalicelib.storage import card_series as store
from chalicelib.storage.documents.card_series import SeriesDoc
from chalicelib.storage.transactions import Tx

GENERATE_JOB = "card_series.generate"
SYNC_LIMIT = 500
CHUNK = 500
"""Cards per chunk: 20 BatchWriteItem calls, a 10 KB chunk record; stored per series so it can change."""
BUDGET_SECONDS = 10.0
"""Work per job message; the worker takes up to 10 messages per 30-60 s invocation."""
MAX_ROUNDS = 20
SERIES_ID = re.compile(r"^[0-9]{8}-[0-9]{6}-[a-z0-9]{6}$")


class NumbersExhausted(Exception):
    """Free numbers could not be found: the space is crowded by cards issued outside the series budget."""


def new_series_id(at: datetime) -> str:
    """Creation time first, so the tenant's list sorts newest first; random tail against clashes."""
    return f"{at:%Y%m%d-%H%M%S}-{new_id(6)}"


# --- creating and reading --------------------------------------------------------------

def job_message(tenant_id: str, series_id: str) -> dict[str, str]:
    """The jobs-queue message that makes (or carries on making) one series."""
    return {"job": GENERATE_JOB, "tenant_id": tenant_id, "series_id": series_id}


def create(tenant_id: str, spec: CardSeriesCreate, actor: str) -> tuple[int, CardSeries]:
    """Record the series; make it now (201) if small, else queue the job (202).

    The 1% budget check reads earlier series first, so two requests racing
    into one space can both pass; the budget is a guard for rarity, and the
    generator still stops (status `failed`) if free numbers run out.
    """
    program = _program(tenant_id, spec.program_id)
    prefix = spec.prefix if spec.prefix is not None else program.card_numbers.prefix
    length = spec.length or program.card_numbers.length
    problem = space_problem(prefix, length, spec.count, _used_in_space(tenant_id, prefix, length))
    if problem is not None:
        code, message = problem
        raise ApiError(422, code, message, [ErrorDetail("count" if code == "series_too_large" else "length", message)])
    at = _now()
    series_id = new_series_id(at)
    doc = SeriesDoc(series_id=series_id, program_id=program.id, name=spec.name, prefix=prefix, length=length,
                    count=spec.count, created=0, chunk_size=CHUNK, status=SeriesStatus.QUEUED.value,
                    error=None, created_at=at.isoformat(), completed_at=None)

    def build(tx: Tx) -> None:
        store.add_series(tx, tenant_id, series_id, doc, at)
        audit.add(tx, audit.entry(tenant_id, action="card_series.created", actor=actor, at=at,
                                  target=f"card_series:{series_id}",
                                  detail={"program_id": program.id, "count": str(spec.count), "prefix": prefix,
                                          "length": str(length)}))

    transactions.write(build)
    if spec.count <= SYNC_LIMIT:
        try:
            generate(tenant_id, series_id, budget_seconds=None)
            return 201, get(tenant_id, series_id)
        except Exception:
            # Resumable by design: let the worker finish what the request could not.
            logger.exception("inline card series failed; queued", extra={"series_id": series_id})
    queues.send(settings.jobs_queue, job_message(tenant_id, series_id))
    return 202, get(tenant_id, series_id)


def create_for_agency(agency_id: str, tenant_id: str, spec: CardSeriesCreate, actor: str) -> tuple[int, CardSeries]:
    """An agency's series for one of its tenants; a tenant being deleted gets no new cards."""
    tenant = tenancy.require_tenant_of_agency(agency_id, tenant_id)
    if tenant.status.value == "deleting":
        raise conflict("tenant_deleting", "This tenant is being deleted.")
    return create(tenant.tenant_id, spec, actor)


def get(tenant_id: str, series_id: str) -> CardSeries:
    """The series as far as it got (a running one shows its progress)."""
    return _view(_require(tenant_id, series_id))


def list_all(tenant_id: str, limit: int, cursor: str | None) -> tuple[list[CardSeries], str | None]:
    """The tenant's series, newest first."""
    docs, next_cursor = store.list_series(tenant_id, limit, cursor)
    return [_view(d) for d in docs], next_cursor


def numbers(tenant_id: str, series_id: str, limit: int, cursor: str | None) -> tuple[list[SeriesCard], str | None]:
    """The series' numbers in generation order, counted chunks only (a running series shows what is done)."""
    doc = _require(tenant_id, series_id)
    start = store.decode_position(tenant_id, series_id, cursor)
    created, size = doc.created, doc.chunk_size
    end = min(start + limit, created)
    if start >= end:
        return [], None
    first = start // size
    found = store.chunk_numbers(tenant_id, series_id, first, (end - 1) // size)
    offset = start - first * size
    items = [SeriesCard(number=n) for n in found[offset:offset + end - start]]
    return items, store.encode_position(tenant_id, series_id, end) if end < created else None


# --- generating ---------------------------------------------------------------------

def generate(tenant_id: str, series_id: str, budget_seconds: float | None) -> bool:
    """Make the series' cards chunk by chunk for about `budget_seconds` (None: to the end).

    Returns True when nothing is left to do (completed, failed, or gone),
    False when the budget ran out first. At least one chunk per call, so a
    job always makes progress.
    """
    deadline = None if budget_seconds is None else time.monotonic() + budget_seconds
    chunks_done = 0
    while True:
        loaded = store.get_series(tenant_id, series_id)
        if loaded is None:
            logger.warning("card series gone; job dropped", extra={"tenant_id": tenant_id, "series_id": series_id})
            return True
        doc, version = loaded.doc, loaded.version
        if doc.status in (SeriesStatus.COMPLETED, SeriesStatus.FAILED):
            return True
        if chunks_done and deadline is not None and time.monotonic() >= deadline:
            return False
        s = _Series(tenant_id, series_id, doc)
        count, created, size = doc.count, doc.created, doc.chunk_size
        n = max(0, min(size, count - created))
        if n:
            try:
                _write_chunk(s, created // size, n)
            except NumbersExhausted:
                failed = doc.model_copy(update={
                    "status": SeriesStatus.FAILED.value,
                    "error": "No free card numbers could be found: the number space is crowded."})
                store.save_series(tenant_id, series_id, failed, version, _now())
                logger.error("card series failed", extra={"tenant_id": tenant_id, "series_id": series_id})
                continue
        at = _now()
        done = created + n >= count
        progressed: dict[str, Any] = {
            "created": created + n, "status": (SeriesStatus.COMPLETED if done else SeriesStatus.RUNNING).value}
        if done:
            progressed["completed_at"] = at.isoformat()
        if store.save_series(tenant_id, series_id, doc.model_copy(update=progressed), version, at):
            chunks_done += 1
        # else: another run counted this chunk first; re-read and continue from its progress


def handle_job(message: dict[str, Any]) -> None:
    """The jobs worker's entry: run for a while, then hand the rest to a fresh message."""
    tenant_id, series_id = str(message["tenant_id"]), str(message["series_id"])
    if not generate(tenant_id, series_id, BUDGET_SECONDS):
        queues.send(settings.jobs_queue, job_message(tenant_id, series_id))
    else:
        logger.info("card series finished", extra={"tenant_id": tenant_id, "series_id": series_id})


# --- helpers --------------------------------------------------------------------------------------------

def _now() -> datetime:
    return clock.now()


def _program(tenant_id: str, program_id: str) -> Program:
    program = catalog.program(tenant_id, program_id)
    if program is None:
        raise ApiError(422, "unknown_program", f"Program {program_id!r} does not exist.",
                       [ErrorDetail("program_id", "no such program")])
    if program.status is ProgramStatus.ARCHIVED:
        raise ApiError(422, "program_archived", f"Program {program_id!r} is archived.",
                       [ErrorDetail("program_id", "archived")])
    return program


def _view(doc: SeriesDoc) -> CardSeries:
    return CardSeries.model_validate({k: v for k, v in doc.dump().items() if k in CardSeries.model_fields})


def _used_in_space(tenant_id: str, prefix: str, length: int) -> int:
    return sum(d.created if d.status == SeriesStatus.FAILED else d.count
               for d in store.all_series(tenant_id) if d.prefix == prefix and d.length == length)


def _require(tenant_id: str, series_id: str) -> SeriesDoc:
    loaded = store.get_series(tenant_id, series_id) if SERIES_ID.fullmatch(series_id) else None
    if loaded is None:
        raise not_found("Card series")
    return loaded.doc


@dataclass
class _Series:
    tenant_id: str
    series_id: str
    doc: SeriesDoc

    @property
    def prefix(self) -> str:
        return self.doc.prefix

    @property
    def length(self) -> int:
        return self.doc.length


def _fresh_numbers(s: _Series, n: int, exclude: set[str]) -> list[str]:
    """`n` distinct random numbers that are not cards yet (as of a strongly consistent read)."""
    chosen: list[str] = []
    seen = set(exclude)
    for _ in range(MAX_ROUNDS):
        candidates: list[str] = []
        while len(candidates) < n - len(chosen):
            number = generate_number(s.prefix, s.length)
            if number not in seen:
                seen.add(number)
                candidates.append(number)
        taken = store.card_owners(s.tenant_id, candidates)
        chosen.extend(c for c in candidates if c not in taken)
        if len(chosen) == n:
            return chosen
    raise NumbersExhausted


def _write_chunk(s: _Series, index: int, n: int) -> None:
    """Steps 1 and 2 of the module docstring for chunk `index` of `n` cards."""
    chunk = store.get_chunk(s.tenant_id, s.series_id, index)
    just_checked = False
    if chunk is None:
        at = _now()
        fresh = _fresh_numbers(s, n, set())
        if store.claim_chunk(s.tenant_id, s.series_id, index, fresh, at):
            chunk, just_checked = store.ClaimedChunk(fresh, 1, at), True
        else:
            chunk = store.get_chunk(s.tenant_id, s.series_id, index)
            assert chunk is not None, "a claimed chunk is never deleted"
    chosen, version, issued_at = chunk.numbers, chunk.version, chunk.claimed_at
    for _ in range(MAX_ROUNDS):
        # Numbers we claimed a moment ago were all free then; re-reading them would not close the race.
        owners = {} if just_checked else store.card_owners(s.tenant_id, chosen)
        just_checked = False
        foreign = [x for x in chosen if x in owners and owners[x] != s.series_id]
        if not foreign:
            cards = [CardState(number=x, program_id=s.doc.program_id, kind=CardKind.PLASTIC,
                               status=CardStatus.ISSUED, wallet=Wallet(), issued_at=issued_at, series_id=s.series_id)
                     for x in chosen if x not in owners]
            store.put_new_cards(s.tenant_id, cards, issued_at)
            return
        swap = dict(zip(foreign, _fresh_numbers(s, len(foreign), set(chosen)), strict=True))
        replaced = [swap.get(x, x) for x in chosen]
        if store.replace_chunk(s.tenant_id, s.series_id, index, replaced, version, issued_at):
            chosen, version = replaced, version + 1
        else:
            reread = store.get_chunk(s.tenant_id, s.series_id, index)
            assert reread is not None, "a claimed chunk is never deleted"
            chosen, version, issued_at = reread.numbers, reread.version, reread.claimed_at
    raise NumbersExhausted
