"""Programs and stores as the hot path reads them: cached in memory for a short time.

A till's purchase must cost one read and one transaction; the program's rules
and the tenant's stores change rarely, so each warm process keeps them for
`TTL` seconds. A change made through this process is visible at once; other
processes see it within `TTL`.

Program rules are versioned: the rules in force at a time t are the version
with the highest number among those whose `effective_at` <= t, so a newer
version supersedes everything scheduled before it once it takes effect. The
cache keeps each program's `RECENT` newest versions (scheduled ones included,
so a version takes effect on time without a refresh); an older moment is
looked up in storage.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from datetime import datetime

from chalicelib import clock
from chalicelib.schemas.tenancy import Program, Store, Tenant, TenantStatus
from chalicelib.storage import directory, loyalty

TTL = 30.0
RECENT = 4
_lock = threading.Lock()
_programs: dict[tuple[str, str], tuple[float, list[Program], bool]] = {}
_stores: dict[str, tuple[float, dict[str, Store]]] = {}
_tenants: dict[str, tuple[float, Tenant | None]] = {}

DEFAULT_TIMEZONE = "Europe/Moscow"


def program(tenant_id: str, program_id: str) -> Program | None:
    """The program's rules in force now (not a version scheduled for later)."""
    return program_at(tenant_id, program_id, clock.now())


def in_force(versions_newest_first: Iterable[Program], at: datetime) -> Program | None:
    """The first version, newest first, that has taken effect by `at` (no `effective_at`: since always)."""
    for version in versions_newest_first:
        if version.effective_at is None or version.effective_at <= at:
            return version
    return None


def program_at(scope: str, program_id: str, at: datetime) -> Program | None:
    """The program's rules in force at `at` (the rule version that prices a receipt of that moment).

    A moment before the program's first version takes effect gets that first version: a program that
    exists always has rules. None only if the program does not exist.
    """
    versions, complete = _recent_versions(scope, program_id)
    if not versions:
        return None
    found = in_force(versions, at)
    if found is not None:
        return found
    oldest = versions[-1]
    if not complete:
        for older in directory.program_versions_below(scope, program_id, oldest.version):
            if older.effective_at is None or older.effective_at <= at:
                return older
            oldest = older
    return oldest


def tenant(tenant_id: str) -> Tenant | None:
    """The tenant's settings (coalitions, privacy), cached like programs: read per request, changed rarely."""
    now = time.monotonic()
    with _lock:
        hit = _tenants.get(tenant_id)
    if hit and now - hit[0] < TTL:
        return hit[1]
    value = directory.get_tenant(tenant_id)
    with _lock:
        _tenants[tenant_id] = (now, value)
    return value


def usage_plan(kind: str, owner_id: str) -> str | None:
    """The plan that meters a usage key's owner (`rate_limits.usage_owner`): a tenant's own (cached read, None if it
    is gone), the agency plan for agencies and the platform, the anonymous plan for failed authentications."""
    from chalicelib.domain.rate_limits import AGENCY_PLAN, ANONYMOUS, ANONYMOUS_PLAN, PLATFORM_PLAN

    if kind == "tenant":
        found = tenant(owner_id)
        return found.plan.value if found is not None else None
    if (kind, owner_id) == ANONYMOUS:
        return ANONYMOUS_PLAN
    return AGENCY_PLAN if kind == "agency" else PLATFORM_PLAN


def timezone(tenant_id: str) -> str:
    """The tenant's IANA time zone (local days, quiet hours, birthdays), from the cached tenant."""
    found = tenant(tenant_id)
    return found.timezone if found else DEFAULT_TIMEZONE


def active_tenants(page: int = 200) -> Iterator[Tenant]:
    """Every active tenant of every agency, read from the directory page by page (schedules, not requests)."""
    agency_cursor: str | None = None
    while True:
        agencies, agency_cursor = directory.list_agencies(page, agency_cursor)
        for agency in agencies:
            cursor: str | None = None
            while True:
                tenants, cursor = directory.list_tenants_of_agency(agency.agency_id, page, cursor)
                yield from (t for t in tenants if t.status is TenantStatus.ACTIVE)
                if cursor is None:
                    break
        if agency_cursor is None:
            return


def card_scopes(tenant_id: str) -> list[str]:
    """Where this tenant's POS may find cards: its own data first, then each coalition it is a partner of."""
    found = tenant(tenant_id)
    return [tenant_id] + [loyalty.coalition_scope(c) for c in (found.coalitions if found else [])]


def stores(tenant_id: str) -> dict[str, Store]:
    """The tenant's stores by id, cached for `TTL` seconds (read on every purchase)."""
    now = time.monotonic()
    with _lock:
        hit = _stores.get(tenant_id)
    if hit and now - hit[0] < TTL:
        return hit[1]
    value: dict[str, Store] = {}
    cursor = None
    while True:
        page, cursor = directory.list_stores(tenant_id, 200, cursor)
        value.update((s.id, s) for s in page)
        if cursor is None:
            break
    with _lock:
        _stores[tenant_id] = (now, value)
    return value


def forget(tenant_id: str) -> None:
    """Drop a tenant's cached programs and stores (called after this process changes them)."""
    with _lock:
        for key in [k for k in _programs if k[0] == tenant_id]:
            del _programs[key]
        _stores.pop(tenant_id, None)
        _tenants.pop(tenant_id, None)


def clear() -> None:
    """Forget every cached program, store and tenant, so the next reads go to the tables (tests use it)."""
    with _lock:
        _programs.clear()
        _stores.clear()
        _tenants.clear()


# --- helpers --------------------------------------------------------------------------------------------

def _recent_versions(scope: str, program_id: str) -> tuple[list[Program], bool]:
    key = (scope, program_id)
    now = time.monotonic()
    with _lock:
        hit = _programs.get(key)
    if hit and now - hit[0] < TTL:
        return hit[1], hit[2]
    versions, complete = directory.recent_program_versions(scope, program_id, RECENT)
    with _lock:
        _programs[key] = (now, versions, complete)
    return versions, complete
