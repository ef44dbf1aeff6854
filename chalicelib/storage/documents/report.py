"""A report request (`<tid>#report` / `<report id>`): what was asked for and how far it got (no personal data)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from chalicelib.storage.documents.common import Document

SUBJECTS = ("program_id", "campaign_id", "survey_id", "coalition_id")
"""The subject id fields a request may carry (one set at most)."""


class ReportDoc(Document):
    """The request, its status (queued, running, ready, failed) and outcome; `from` is stored under that name."""

    report_id: str
    type: str
    program_id: str | None = None
    campaign_id: str | None = None
    survey_id: str | None = None
    coalition_id: str | None = None
    from_: str = Field(alias="from")
    to: str
    format: str
    delimiter: str | None = None
    status: str
    created_at: str
    requested_by: str | None = None
    started_at: str | None = None
    completed_at: str | None = None
    rows: int | None = None
    size_bytes: int | None = None
    failure: dict[str, str] | None = None
    proposed: dict[str, Any] | None = None

    def subjects(self) -> dict[str, str | None]:
        """Subject field -> id, for every subject field (None where not set)."""
        return {name: getattr(self, name) for name in SUBJECTS}
