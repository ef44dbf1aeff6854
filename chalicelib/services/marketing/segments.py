"""Segments: saved filters over the customer base, their count, and the members mailings and reports use.

Evaluating a segment is one pass over the tenant's own customers
(`storage.customers.iter_all`: one query page per 200 customers and shard),
with the cheap conditions on the customer record checked first; only the
customers that pass them cost more reads: one query for their card links and
one read per card (when the filter asks about cards, or to hand a member to a
mailing), and one read of the personal-data table when the filter asks about
birthdays. That is fine inside a request for tens of thousands of customers;
beyond that, counts and member lists belong in a background job (a report),
which can iterate `members` with its own time budget.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from chalicelib import clock
from chalicelib.domain import segments as rules
from chalicelib.domain.cards import CardState
from chalicelib.domain.customers import SHARDS
from chalicelib.domain.ids import new_id
from chalicelib.errors import ApiError, ErrorDetail, conflict
from chalicelib.schemas.segments import (
    SAMPLE_SIZE,
    PreviewOut,
    SegmentCount,
    SegmentFilter,
    SegmentIn,
    SegmentOut,
    SegmentUpdate,
)
from chalicelib.services.program import catalog
from chalicelib.storage import audit, loyalty, people, transactions
from chalicelib.storage import customers as records
from chalicelib.storage import segments as store
from chalicelib.storage.documents.common import Versioned
from chalicelib.storage.documents.customer import CustomerDoc
from chalicelib.storage.documents.segment import SegmentDoc
from chalicelib.storage.transactions import Tx


@dataclass(frozen=True)
class MemberCard:
    number: str
    program_id: str
    status: str
    tier: str | None
    balance: int
    pending: int


@dataclass(frozen=True)
class Member:
    """What a mailing or a report needs about one member, by id only (personal fields stay in their table)."""

    customer_id: str
    scope: str
    cards: tuple[MemberCard, ...]
    consents: dict[str, bool]
    preferred_channel: str | None

    @property
    def card_numbers(self) -> list[str]:
        return [c.number for c in self.cards]

    @property
    def tier(self) -> str | None:
        """The first tier among the member's cards (a member usually has one card per program)."""
        return next((c.tier for c in self.cards if c.tier), None)

    @property
    def balance(self) -> int:
        """Spendable points over all the member's cards."""
        return sum(c.balance for c in self.cards)


def create(tenant_id: str, body: SegmentIn, actor: str) -> SegmentOut:
    """Save a segment definition; the programs and stores it names must exist."""
    _check_references(tenant_id, body.filter)
    at = clock.now()
    segment_id = new_segment_id(at)
    doc = _doc(body, at.isoformat())

    def build(tx: Tx) -> None:
        store.add(tx, tenant_id, segment_id, doc, at)
        _audit(tx, tenant_id, "segment.created", segment_id, actor, at)

    transactions.write(build)
    return _out(_written(doc, segment_id, 1, at))


def get(tenant_id: str, segment_id: str) -> SegmentOut:
    """A saved segment with its version (for a conditional update)."""
    return _out(_read(tenant_id, segment_id))


def list_segments(tenant_id: str, limit: int, cursor: str | None) -> tuple[list[SegmentOut], str | None]:
    """The tenant's saved segments, newest first."""
    docs, next_cursor = store.list_page(tenant_id, limit, cursor)
    return [_out(d) for d in docs], next_cursor


def update(tenant_id: str, segment_id: str, body: SegmentUpdate, actor: str) -> SegmentOut:
    """Replace the definition; with `version`, only if nobody changed it since that version."""
    current = _read(tenant_id, segment_id)
    version = current.version
    if body.version is not None and body.version != version:
        raise _changed(segment_id)
    _check_references(tenant_id, body.filter)
    at = clock.now()
    doc = _doc(body, current.doc.created_at)

    def build(tx: Tx) -> None:
        store.replace(tx, tenant_id, segment_id, doc, version, at)
        _audit(tx, tenant_id, "segment.updated", segment_id, actor, at)

    if not transactions.written(build):
        raise _changed(segment_id)
    return _out(_written(doc, segment_id, version + 1, at))


def delete(tenant_id: str, segment_id: str, actor: str) -> SegmentOut:
    """Delete the definition; answers with what was deleted."""
    current = _read(tenant_id, segment_id)
    at = clock.now()

    def build(tx: Tx) -> None:
        store.delete(tx, tenant_id, segment_id, current.version)
        _audit(tx, tenant_id, "segment.deleted", segment_id, actor, at)

    if not transactions.written(build):
        raise _changed(segment_id)
    return _out(current)


def preview(tenant_id: str, flt: SegmentFilter) -> PreviewOut:
    """How many customers an unsaved filter matches now, with a few ids: nothing is stored."""
    _check_references(tenant_id, flt)
    count = 0
    sample: list[str] = []
    for member in evaluate(tenant_id, flt, clock.now()):
        count += 1
        if len(sample) < SAMPLE_SIZE:
            sample.append(member.customer_id)
    return PreviewOut(count=count, sample=sample)


def count(tenant_id: str, segment_id: str) -> SegmentCount:
    """How many customers a saved segment holds now (evaluated, never cached)."""
    at = clock.now()
    flt = _filter_of(_read(tenant_id, segment_id).doc)
    return SegmentCount(segment_id=segment_id, count=sum(1 for _ in evaluate(tenant_id, flt, at)), at=at)


def not_found(segment_id: str) -> ApiError:
    return ApiError(404, "segment_not_found", f"Segment {segment_id!r} does not exist.",
                    [ErrorDetail("segment_id", "not found")])


# --- evaluation ------------------------------------------------------------------------

def evaluate(tenant_id: str, flt: SegmentFilter | rules.Filter, at: datetime) -> Iterator[Member]:
    """The tenant's own customers matching `flt` at `at`, lazily (see the module docstring for the cost)."""
    match = _matching(tenant_id, flt, at)
    for customer_id, doc in records.iter_all(tenant_id):
        member = match(customer_id, doc)
        if member is not None:
            yield member


def members_page(tenant_id: str, segment_id: str, at: datetime, position: Position, scan: int, *,
                 with_cards: bool = True) -> tuple[list[Member], Position | None]:
    """Up to `scan` customers examined from `position`: the members among them and where to go on (None: done).

    Fan-outs walk a segment this way so a job can stop on a time budget and
    resume from a saved position.
    """
    match = _matching(tenant_id, _filter_of(_read(tenant_id, segment_id).doc), at, with_cards)
    shard, cursor = position
    rows, next_cursor = records.list_page(tenant_id, shard, scan, cursor)
    found = [m for m in (match(cid, doc) for cid, doc in rows) if m is not None]
    if next_cursor is not None:
        return found, (shard, next_cursor)
    return found, ((shard + 1, None) if shard + 1 < SHARDS else None)


def members(tenant_id: str, segment_id: str) -> Iterator[Member]:
    """A saved segment's members now (mailings, reports); 404 ApiError if the segment does not exist."""
    return evaluate(tenant_id, _filter_of(_read(tenant_id, segment_id).doc), clock.now())


# --- definitions -----------------------------------------------------------------------

def new_segment_id(at: datetime) -> str:
    """Creation time first, so the tenant's list reads newest first."""
    return f"{at:%Y%m%d-%H%M%S}-{new_id(6)}"


# --- helpers --------------------------------------------------------------------------------------------

def _context(tenant_id: str, flt: rules.Filter, at: datetime) -> rules.Context:
    tz = ZoneInfo(catalog.timezone(tenant_id))
    regions = {sid: s.region for sid, s in catalog.stores(tenant_id).items()} if flt.needs_regions else {}
    return rules.Context(at=at, tz=tz, store_regions=regions)


def _cards(scope: str, customer_id: str) -> list[CardState]:
    found = (loyalty.get_card(scope, number) for number in records.card_numbers(scope, customer_id))
    return [card for card in found if card is not None]


def _birth_date(scope: str, customer_id: str) -> date | None:
    got = people.get_person(scope, customer_id)
    raw = got.doc.birth_date if got else None
    return date.fromisoformat(str(raw)) if raw else None


def _member(scope: str, customer_id: str, doc: CustomerDoc, cards: list[CardState], at: datetime) -> Member:
    consents = {kind: bool(c.granted) for kind, c in sorted(doc.consents.items())}
    return Member(
        customer_id=customer_id, scope=scope,
        cards=tuple(MemberCard(c.number, c.program_id, c.status.value, c.tier, c.wallet.spendable(at),
                               c.wallet.pending(at)) for c in cards),
        consents=consents, preferred_channel=doc.profile_or_empty().preferred_channel)


def _domain_filter(flt: SegmentFilter | rules.Filter) -> rules.Filter:
    return flt if isinstance(flt, rules.Filter) else rules.Filter.from_dict(flt.as_doc())


def _matching(tenant_id: str, flt: SegmentFilter | rules.Filter, at: datetime, with_cards: bool = True
              ) -> Callable[[str, CustomerDoc], Member | None]:
    """A per-customer test: cheap conditions on the record first, cards and birth date only for candidates.

    `with_cards=False` skips reading cards unless the filter needs them (the
    members then carry no cards): a mailing fan-out needs only who, not what.
    """
    full = _domain_filter(flt)
    ctx = _context(tenant_id, full, at)
    cheap = dataclasses.replace(full, program_id=None, tiers=(), points_expiring_within_days=None,
                                birthday_within_days=None)
    scope = tenant_id

    def match(customer_id: str, doc: CustomerDoc) -> Member | None:
        plain = doc.plain()
        if not rules.matches(cheap, rules.Snapshot(customer_id, plain), ctx):
            return None
        cards = _cards(scope, customer_id) if with_cards or full.needs_cards else []
        born = _birth_date(scope, customer_id) if full.needs_birth_date else None
        if rules.matches(full, rules.Snapshot(customer_id, plain, cards, born), ctx):
            return _member(scope, customer_id, doc, cards if with_cards else [], at)
        return None

    return match


def _check_references(tenant_id: str, flt: SegmentFilter) -> None:
    """A filter naming a program or store the tenant does not have would match nobody, silently: refuse it."""
    at = clock.now()
    if flt.program_id is not None and not any(catalog.program_at(scope, flt.program_id, at)
                                              for scope in catalog.card_scopes(tenant_id)):
        raise ApiError(422, "unknown_program", f"Program {flt.program_id!r} does not exist.",
                       [ErrorDetail("filter.program_id", "no such program")])
    missing = [s for s in flt.store_ids or [] if s not in catalog.stores(tenant_id)]
    if missing:
        raise ApiError(422, "unknown_store", f"Store {missing[0]!r} does not exist in this tenant.",
                       [ErrorDetail("filter.store_ids", f"no such store: {', '.join(missing[:5])}")])


def _filter_of(doc: SegmentDoc) -> SegmentFilter:
    return SegmentFilter.model_validate(doc.filter or {}, strict=False)


def _read(tenant_id: str, segment_id: str) -> Versioned[SegmentDoc]:
    got = store.get(tenant_id, segment_id)
    if got is None:
        raise not_found(segment_id)
    return got


def _out(got: Versioned[SegmentDoc]) -> SegmentOut:
    doc = got.doc
    return SegmentOut(segment_id=doc.segment_id, name=doc.name, description=doc.description,
                      filter=_filter_of(doc), version=got.version, created_at=doc.created_at,
                      updated_at=doc.updated_at)


def _doc(body: SegmentIn, created_at: str) -> SegmentDoc:
    doc = SegmentDoc(name=body.name, filter=body.filter.as_doc(), created_at=created_at)
    if body.description:
        doc.description = body.description
    return doc


def _written(doc: SegmentDoc, segment_id: str, version: int, at: datetime) -> Versioned[SegmentDoc]:
    """What a write just stored, as a read would give it back."""
    doc.segment_id, doc.updated_at = segment_id, at
    return Versioned(doc, version)


def _audit(tx: Tx, tenant_id: str, action: str, segment_id: str, actor: str, at: datetime) -> None:
    audit.add(tx, audit.entry(tenant_id, action=action, actor=actor, at=at, target=f"segment:{segment_id}"))


def _changed(segment_id: str) -> ApiError:
    return conflict("segment_changed", f"Segment {segment_id!r} was changed since you read it; read it again.",
                    "version")


Position = tuple[int, str | None]


"""Where a paged walk over a scope's customers resumes: (shard, cursor within it)."""
