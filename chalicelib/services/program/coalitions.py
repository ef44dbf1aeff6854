"""Coalitions: an agency links several of its tenants (partners) into one shared points program.

The shared program, cards, customers and ledgers live under the scope
`coalition.<id>`; each partner's Tenant record lists its coalitions, which is
how its tills find the shared cards (`catalog.card_scopes`). Receipts stay with
the partner that processed them, and every ledger entry names that partner,
so settlement between partners is a sum over the partner index for a period.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime

from chalicelib import clock
from chalicelib.domain import settlement as arithmetic
from chalicelib.errors import ApiError, ErrorDetail, conflict, field_error, not_found
from chalicelib.schemas.coalitions import (
    MAX_MEMBERS,
    Coalition,
    CoalitionCreate,
    CoalitionDetail,
    MemberCoalition,
    Settlement,
    SettlementLine,
    SettlementTotals,
)
from chalicelib.schemas.tenancy import Program, Tenant, TenantStatus
from chalicelib.services.program import catalog
from chalicelib.storage import audit, directory, loyalty, pagination, transactions
from chalicelib.storage.tables import DirectoryRecord, agency_partition
from chalicelib.storage.transactions import TransactionFailed, Tx

MAX_COALITIONS_PER_TENANT = 20
"""A tenant's tills look a card up in each of its coalitions: keep that bounded."""


# --- the agency's side ----------------------------------------------------------------

def create(agency_id: str, spec: CoalitionCreate, actor: str) -> CoalitionDetail:
    """Coalition, its claim on the scope, its program and every partner's membership: one transaction."""
    dupes = sorted({m for m in spec.members if spec.members.count(m) > 1})
    if dupes:
        raise _unprocessable("duplicate_member", f"Listed more than once: {', '.join(dupes)}.", "members")
    if directory.get_coalition(agency_id, spec.coalition_id) is not None:
        raise conflict("coalition_exists", f"Coalition {spec.coalition_id!r} already exists.", "coalition_id")
    if spec.program.store_ids:
        raise _unprocessable("coalition_store_ids", "A coalition program spans its partners' stores: leave store_ids "
                             "empty (use regions to limit it).", "program.store_ids")
    members = [_check_member(agency_id, m, spec.program.id, None, f"members[{i}]")
               for i, m in enumerate(spec.members)]
    currencies = sorted({m.currency for m in members})
    if len(currencies) > 1:
        raise _unprocessable("currency_mismatch", f"Partners use several currencies ({', '.join(currencies)}); "
                             "they settle in one.", "members")
    at = clock.now()
    scope = loyalty.coalition_scope(spec.coalition_id)
    doc = {"coalition_id": spec.coalition_id, "agency_id": agency_id, "name": spec.name,
           "program_id": spec.program.id, "currency": currencies[0], "members": list(spec.members),
           "former_members": []}
    claim = directory.coalition_claim_record(scope, agency_id, spec.coalition_id, at)
    record = directory.coalition_record(agency_id, doc, at)
    program = directory.program_record(scope, spec.program, at, at)
    program_v1 = directory.program_version_record(scope, spec.program, 1, at, at, at)
    tenants = [_member_record(m.tenant_id, spec.coalition_id, join=True, at=at) for m in members]
    if None in tenants:
        raise conflict("concurrent_change", "A partner tenant was deleted meanwhile; retry.")

    def build(tx: Tx) -> None:
        directory.add_new(tx, claim)
        directory.add_new(tx, record)
        directory.add_new(tx, program)
        directory.add_new(tx, program_v1)
        for rec in tenants:
            if rec is not None:
                directory.save_versioned(tx, rec)
        audit.add(tx, audit.entry(agency_partition(agency_id), action="coalition.created", actor=actor, at=at,
                                  target=f"coalition:{spec.coalition_id}",
                                  detail={"members": ",".join(spec.members), "program_id": spec.program.id}))

    try:
        transactions.write(build)
    except TransactionFailed as err:
        if any(err.condition_failed(i) for i in range(4)):
            raise conflict("coalition_exists", f"Coalition {spec.coalition_id!r} already exists.",
                           "coalition_id") from None
        raise conflict("concurrent_change", "A partner tenant changed concurrently; retry.") from None
    _forget(spec.members)
    return get(agency_id, spec.coalition_id)


def require(agency_id: str, coalition_id: str) -> Coalition:
    """The agency's coalition, or a 404."""
    coalition = directory.get_coalition(agency_id, coalition_id)
    if coalition is None:
        raise not_found("Coalition")
    return coalition


def get(agency_id: str, coalition_id: str) -> CoalitionDetail:
    """The coalition with its shared program."""
    coalition = require(agency_id, coalition_id)
    return CoalitionDetail(**coalition.model_dump(), program=_program(coalition))


def list_all(agency_id: str, limit: int, cursor: str | None) -> tuple[list[Coalition], str | None]:
    """The agency's coalitions."""
    return directory.list_coalitions(agency_id, limit, cursor)


def add_member(agency_id: str, coalition_id: str, tenant_id: str, actor: str) -> Coalition:
    """The tenant becomes a partner: its tills find the coalition's cards and program from now on."""
    rec, coalition = _load(agency_id, coalition_id)
    if tenant_id in coalition.members:
        raise conflict("already_member", f"Tenant {tenant_id!r} is already a partner.", "tenant_id")
    if len(coalition.members) >= MAX_MEMBERS:
        raise _unprocessable("too_many_members", f"A coalition has at most {MAX_MEMBERS} partners.", "tenant_id")
    _check_member(agency_id, tenant_id, coalition.program_id, coalition.currency, "tenant_id")
    at = clock.now()
    directory.with_changes(rec, {"members": [*coalition.members, tenant_id],
                                 "former_members": [m for m in coalition.former_members if m != tenant_id]}, at)
    member = _member_record(tenant_id, coalition_id, join=True, at=at)
    if member is None:
        raise _unprocessable("unknown_tenant", f"Tenant {tenant_id!r} is not a tenant of this agency.", "tenant_id")

    def build(tx: Tx) -> None:
        directory.save_versioned(tx, rec)
        directory.save_versioned(tx, member)
        audit.add(tx, audit.entry(agency_partition(agency_id), action="coalition.member_added", actor=actor, at=at,
                                  target=f"coalition:{coalition_id}", detail={"tenant_id": tenant_id}))

    _write(build, "coalition or tenant")
    _forget([tenant_id])
    return directory.coalition_of(rec)


def remove_member(agency_id: str, coalition_id: str, tenant_id: str, actor: str) -> Coalition:
    """The partner leaves: its tills stop finding the shared cards; the shared data stays, and what it processed
    is still settled (it is kept in `former_members`)."""
    rec, coalition = _load(agency_id, coalition_id)
    if tenant_id not in coalition.members:
        raise not_found("Member")
    if len(coalition.members) == 1:
        raise _unprocessable("last_member", "A coalition keeps at least one partner.", "tenant_id")
    at = clock.now()
    directory.with_changes(rec, {"members": [m for m in coalition.members if m != tenant_id],
                                 "former_members": [*coalition.former_members, tenant_id]}, at)
    member = _member_record(tenant_id, coalition_id, join=False, at=at)

    def build(tx: Tx) -> None:
        directory.save_versioned(tx, rec)
        if member is not None:
            directory.save_versioned(tx, member)
        audit.add(tx, audit.entry(agency_partition(agency_id), action="coalition.member_removed", actor=actor,
                                  at=at, target=f"coalition:{coalition_id}", detail={"tenant_id": tenant_id}))

    _write(build, "coalition or tenant")
    _forget([tenant_id])
    return directory.coalition_of(rec)


# --- settlement -------------------------------------------------------------------------

def settlement(agency_id: str, coalition_id: str, start: datetime, end: datetime) -> Settlement:
    """The coalition's settlement for [start, end): what its partners issued and accepted, and what they owe."""
    return _settle(require(agency_id, coalition_id), start, end)


def partner_settlement(tenant_id: str, coalition_id: str, start: datetime, end: datetime) -> Settlement:
    """A partner's view: its own line and the coalition's totals, never another partner's line."""
    return _settle(_coalition_of_member(tenant_id, coalition_id), start, end, only=tenant_id)


def of_tenant(tenant_id: str) -> list[MemberCoalition]:
    """The coalitions a tenant is a partner of, with the shared program's rules."""
    return list(_member_coalitions(tenant_id, after=None))


def page_of_tenant(tenant_id: str, limit: int, cursor: str | None) -> tuple[list[MemberCoalition], str | None]:
    """One page of `of_tenant`; the cursor is the last coalition id, bound to this tenant's list (forged: 400)."""
    list_id = f"{tenant_id}#member-coalitions"
    raw = pagination.decode(cursor, hash_attr="list", hash_value=list_id)
    after = raw.get("after", {}).get("S") if raw else None
    if raw is not None and not after:
        raise field_error("cursor", "The cursor is not one this API returned.")
    items = list(itertools.islice(_member_coalitions(tenant_id, after), limit + 1))
    if len(items) <= limit:
        return items, None
    items = items[:limit]
    return items, pagination.encode({"list": {"S": list_id}, "after": {"S": items[-1].coalition_id}})


# --- helpers --------------------------------------------------------------------------------------------

def _unprocessable(code: str, message: str, field: str) -> ApiError:
    return ApiError(422, code, message, [ErrorDetail(field, message)])


def _program_ids(tenant: Tenant) -> set[str]:
    """Every program id the tenant's tills can reach: its own, then each of its coalitions'."""
    ids: set[str] = set()
    for scope in [tenant.tenant_id] + [loyalty.coalition_scope(c) for c in tenant.coalitions]:
        cursor = None
        while True:
            programs, cursor = directory.list_programs(scope, 200, cursor)
            ids.update(p.id for p in programs)
            if cursor is None:
                break
    return ids


def _check_member(agency_id: str, tenant_id: str, program_id: str, currency: str | None, field: str) -> Tenant:
    """A tenant that may join: this agency's, not being deleted, same currency, no clashing program id."""
    tenant = directory.get_tenant_of_agency(agency_id, tenant_id)
    if tenant is None or tenant.status is TenantStatus.DELETING:
        raise _unprocessable("unknown_tenant", f"Tenant {tenant_id!r} is not a tenant of this agency.", field)
    if currency is not None and tenant.currency != currency:
        raise _unprocessable("currency_mismatch", f"Tenant {tenant_id!r} uses {tenant.currency}, the coalition "
                             f"{currency}: partners settle in one currency.", field)
    if len(tenant.coalitions) >= MAX_COALITIONS_PER_TENANT:
        raise _unprocessable("too_many_coalitions", f"Tenant {tenant_id!r} is already in "
                             f"{MAX_COALITIONS_PER_TENANT} coalitions.", field)
    if program_id in _program_ids(tenant):
        raise _unprocessable("program_id_clash", f"Tenant {tenant_id!r} already reaches a program {program_id!r}: "
                             "its tills find programs by id, so the coalition's must differ.", field)
    return tenant


def _member_record(tenant_id: str, coalition_id: str, *, join: bool, at: datetime) -> DirectoryRecord | None:
    """The tenant's record with the coalition added to (or removed from) its list, from the very version that
    will be saved: a concurrent change then fails the transaction instead of being overwritten."""
    rec = directory.tenant_for_update(tenant_id)
    if rec is None:
        return None
    current = [c for c in directory.tenant_of(rec).coalitions if c != coalition_id]
    return directory.with_changes(rec, {"coalitions": [*current, coalition_id] if join else current}, at)


def _write(build: Callable[[Tx], None], what: str) -> None:
    try:
        transactions.write(build)
    except TransactionFailed:
        raise conflict("concurrent_change", f"The {what} changed concurrently; retry.") from None


def _forget(tenant_ids: Iterable[str]) -> None:
    for tenant_id in tenant_ids:
        catalog.forget(tenant_id)


def _program(coalition: Coalition) -> Program | None:
    return directory.get_program(loyalty.coalition_scope(coalition.coalition_id), coalition.program_id)


def _load(agency_id: str, coalition_id: str) -> tuple[DirectoryRecord, Coalition]:
    rec = directory.coalition_for_update(agency_id, coalition_id)
    if rec is None:
        raise not_found("Coalition")
    return rec, directory.coalition_of(rec)


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _settle(coalition: Coalition, start: datetime, end: datetime, only: str | None = None) -> Settlement:
    """Sum every partner's (current and former) entries in [start, end); `only`: keep that partner's line."""
    program = _program(coalition)
    if program is None:
        raise not_found("Coalition program")
    scope = loyalty.coalition_scope(coalition.coalition_id)
    start, end = _utc(start), _utc(end)
    partners = sorted({*coalition.members, *coalition.former_members})
    entries = {p: list(loyalty.partner_entries(scope, p, start, end)) for p in partners}
    result = arithmetic.settle(entries, program.redemption.point_value,
                               loyalty.breakage_entries(scope, start, end))
    lines = [SettlementLine(
        partner_id=s.partner_id, points_accrued=s.accrued, points_bonus=s.bonus, points_reversed=s.reversed,
        points_adjusted=s.adjusted, points_issued=s.issued, points_redeemed_gross=s.redeemed_gross,
        points_returned=s.returned, points_redeemed=s.redeemed, net_points=s.net, amount=result.amount(s),
        points_expired=s.expired, entries=s.entries,
    ) for s in result.partners if only is None or s.partner_id == only]
    totals = SettlementTotals(
        points_issued=result.issued, points_redeemed=result.redeemed, net_points=result.net,
        amount=result.total_amount, pool_amount=result.pool_amount, breakage_points=result.breakage,
        breakage_amount=result.breakage_amount, outstanding_change=result.outstanding_change,
    )
    return Settlement(coalition_id=coalition.coalition_id, program_id=coalition.program_id,
                      point_value=result.point_value, currency=coalition.currency, start=start, end=end,
                      partners=lines, totals=totals)


def _coalition_of_member(tenant_id: str, coalition_id: str) -> Coalition:
    """A coalition the tenant is a current partner of; any other is a 404."""
    tenant = directory.get_tenant(tenant_id)
    if tenant is None or coalition_id not in tenant.coalitions:
        raise not_found("Coalition")
    coalition = directory.get_coalition(tenant.agency_id, coalition_id)
    if coalition is None or tenant_id not in coalition.members:
        raise not_found("Coalition")
    return coalition


def _member_coalitions(tenant_id: str, after: str | None) -> Iterator[MemberCoalition]:
    """The tenant's coalitions by id, those after `after` (one read each, as they are taken)."""
    tenant = directory.get_tenant(tenant_id)
    if tenant is None:
        raise not_found("Tenant")
    for coalition_id in sorted(tenant.coalitions):
        if after is not None and coalition_id <= after:
            continue
        coalition = directory.get_coalition(tenant.agency_id, coalition_id)
        if coalition is None or tenant_id not in coalition.members:
            continue
        yield MemberCoalition(coalition_id=coalition.coalition_id, name=coalition.name,
                              members=coalition.members, program=_program(coalition))
