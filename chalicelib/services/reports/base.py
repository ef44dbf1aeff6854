"""What a report type is: its columns, its rows for a period, who may ask for it, and its formats."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from chalicelib.domain.roles import Role
from chalicelib.schemas.tenancy import Program
from chalicelib.services.reports.output import Charts

ADMIN_AND_AGENCY: frozenset[Role] = frozenset({Role.TENANT_ADMIN, Role.AGENCY})
ADMIN_ONLY: frozenset[Role] = frozenset({Role.TENANT_ADMIN})
"""For reports with personal data: the agency runs the program but is not the data controller's staff."""


class ReportError(Exception):
    """An expected reason a report cannot be built; its code and message are shown to the client."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ReportContext:
    """One report to build: the tenant (its own scope), the program, the days [start, end) in UTC."""

    tenant_id: str
    report_id: str
    program: Program
    start: date
    end: date
    notes: dict[str, Any] = field(default_factory=dict)
    """What `rows` learnt that `charts` needs (e.g. how many rows a chart spans); filled while rows are written."""


@dataclass(frozen=True)
class ReportType:
    """A report type. `rows` yields the data rows lazily (the writers stream them), matching `columns`."""

    name: str
    description: str
    columns: Sequence[str]
    rows: Callable[[ReportContext], Iterable[Sequence[Any]]]
    roles: frozenset[Role] = ADMIN_AND_AGENCY
    formats: frozenset[str] = field(default_factory=lambda: frozenset({"csv", "xlsx"}))
    charts: Charts | None = None
    """XLSX only: native charts over the data sheet (e.g. a line chart of members over time)."""
