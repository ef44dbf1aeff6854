"""Offline receipt batches: which receipts a till may upload late, in what order they run, what they came to.

Pure rules, no AWS. A till that was offline uploads its receipts with their
original times; they are processed in the order they happened (ties in upload
order), which keeps every card's receipts in order whatever order the till
sent them in. Each receipt ends with exactly one status.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from datetime import datetime, timedelta
from typing import Literal

MAX_RECEIPTS = 500
FUTURE_SLACK = timedelta(minutes=5)
"""A till's clock may run a little fast; a receipt further in the future than this is refused."""
DEFAULT_WINDOW_DAYS = 90
"""How old an offline receipt may be when no program sets its own window."""

Status = Literal["pending", "ok", "duplicate", "error"]
STATUSES: tuple[Status, ...] = ("ok", "duplicate", "error", "pending")
BatchState = Literal["accepted", "processing", "done"]


def time_problem(at: datetime, now: datetime, window_days: int | None = None) -> tuple[str, str] | None:
    """Why an offline receipt's own time is refused, as (code, message), or None when it is acceptable."""
    if at > now + FUTURE_SLACK:
        return "receipt_in_future", f"{at.isoformat()} is in the future (the till's clock may be wrong)."
    days = DEFAULT_WINDOW_DAYS if window_days is None else window_days
    if at < now - timedelta(days=days):
        return "receipt_too_old", f"Offline receipts are accepted up to {days} days after the sale."
    return None


def processing_order(times: Sequence[datetime | None]) -> list[int]:
    """Indices of the receipts to process (None: invalid, never processed) by (own time, upload position)."""
    return sorted((i for i, t in enumerate(times) if t is not None), key=lambda i: (times[i], i))


def originals(order: Sequence[int], keys: Sequence[Hashable], known: set[Hashable]) -> set[int]:
    """Receipts that are processed for the first time by this batch: replayed answers to them are our own.

    The first receipt in processing order with a given key is the original,
    unless that key was already processed before the batch was uploaded; every
    later one (and every receipt of a known key) is a duplicate. A job that is
    redelivered after a crash gets replayed answers for originals it already
    processed, and must still report them as ok, not as duplicates.
    """
    seen: set[Hashable] = set()
    found: set[int] = set()
    for index in order:
        key = keys[index]
        if key not in seen and key not in known:
            found.add(index)
        seen.add(key)
    return found


def tally(statuses: Sequence[Status]) -> dict[str, int]:
    """How many receipts are in each status (every receipt is counted exactly once)."""
    counts: dict[str, int] = dict.fromkeys(STATUSES, 0)
    for status in statuses:
        counts[status] += 1
    return counts


def batch_state(position: int, to_process: int) -> BatchState:
    """accepted (nothing run yet), processing, or done (every valid receipt has its result)."""
    if position >= to_process:
        return "done"
    return "processing" if position else "accepted"


def spans(sizes: Sequence[int], budget: int, max_items: int) -> list[tuple[int, int]]:
    """Split items of these sizes into consecutive [start, end) runs under `budget` bytes and `max_items` each.

    An item larger than the budget gets a run of its own (the caller's body
    limit keeps it under what one stored item may hold).
    """
    runs: list[tuple[int, int]] = []
    start, used = 0, 0
    for i, size in enumerate(sizes):
        if i > start and (used + size > budget or i - start >= max_items):
            runs.append((start, i))
            start, used = i, 0
        used += size
    if start < len(sizes):
        runs.append((start, len(sizes)))
    return runs
