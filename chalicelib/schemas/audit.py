"""Audit trail entries as listed."""

from __future__ import annotations

from datetime import datetime

from chalicelib.schemas.common import Output


class AuditEntry(Output):
    at: datetime
    action: str
    actor: str
    target: str | None = None
    detail: dict[str, str] = {}
