"""The one clock every rule reads: time-dependent rules (pending, expiry, tiers, coupons) are tested by moving it.

Production never sets it; tests freeze and advance it through the `clock`
fixture, so a 30-day expiry is checked without waiting 30 days.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

_lock = threading.Lock()
_frozen: datetime | None = None


def now() -> datetime:
    with _lock:
        return _frozen if _frozen is not None else datetime.now(UTC)


def freeze(at: datetime) -> None:
    global _frozen
    if at.tzinfo is None:
        raise ValueError("freeze() needs an aware datetime")
    with _lock:
        _frozen = at


def advance(**delta: float) -> datetime:
    """Move a frozen clock forward, e.g. advance(days=31)."""
    global _frozen
    with _lock:
        if _frozen is None:
            raise RuntimeError("freeze the clock before advancing it")
        _frozen = _frozen + timedelta(**delta)
        return _frozen


def unfreeze() -> None:
    global _frozen
    with _lock:
        _frozen = None
