"""The dashboard's figures day by day over the last weeks, for the console's charts.

The same day counters as `dashboard.dashboard` (kept inside the writes that
make them, summed by `domain.dashboard`), read for each of the tenant's local
days from `count - 1` days ago up to today instead of the month so far: one
Query per day, so 30 days cost 30 small reads. The program filter is the
dashboard's own (a program of the tenant or of a coalition it is in, else 404;
new customers stay tenant-wide).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from chalicelib import clock
from chalicelib.domain import dashboard as rules
from chalicelib.schemas.dashboard import Figures
from chalicelib.services.program import catalog
from chalicelib.services.reporting import dashboard
from chalicelib.storage import dashboard as store

MAX_DAYS = 62


@dataclass(frozen=True)
class Days:
    """Figures of each local day, oldest first, and of the periods ending today."""

    today: date
    timezone: str
    as_of: datetime
    program_id: str | None
    days: list[tuple[date, Figures]]

    def period(self, count: int) -> Figures:
        """The sum of the last `count` days, today included (derived figures computed on the sum)."""
        return _figures(rules.add_up(("", f.model_dump(include=set(rules.FIGURES))) for _, f in self.days[-count:]))


def recent_days(tenant_id: str, count: int = 30, program_id: str | None = None) -> Days:
    """The tenant's (or one program's) figures for each of its last `count` local days, today last."""
    if not 1 <= count <= MAX_DAYS:
        raise ValueError(f"between 1 and {MAX_DAYS} days")
    if program_id is not None:
        dashboard._check_program(tenant_id, program_id)
    at = clock.now()
    timezone = catalog.timezone(tenant_id)
    today = rules.local_day(at, timezone)
    days = [today - timedelta(days=back) for back in range(count - 1, -1, -1)]
    figures = [(day, _figures(rules.add_up(store.day_rows(tenant_id, day), program_id))) for day in days]
    return Days(today=today, timezone=timezone, as_of=at, program_id=program_id, days=figures)


def _figures(totals: dict[str, int]) -> Figures:
    return Figures(**totals, **rules.derived(totals))
