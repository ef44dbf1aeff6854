"""A customer import job (`<tid>#imports` / `import#<iid>`): options, status and committed progress.

No personal data: counts and byte offsets only (the rows are in the private bucket).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from chalicelib.storage.documents.common import Document


class ImportJob(Document):
    """The job; `etag`, `encoding`, `delimiter` and `columns` appear once its file's header was read (start)."""

    import_id: str
    filename: str
    status: str
    program_id: str | None = None
    default_consents: list[dict[str, Any]] = Field(default_factory=list)
    consent_text_version: str = ""
    overrides: dict[str, str] = Field(default_factory=dict)
    rows: int = 0
    created: int = 0
    updated: int = 0
    rejected: int = 0
    cards_issued: int = 0
    bytes_done: int = 0
    bytes_total: int = 0
    line: int = 1
    parts: list[int] = Field(default_factory=list)
    chunks: int = 0
    error: str | None = None
    created_at: str
    started_at: str | None = None
    completed_at: str | None = None
    committed_at: str
    etag: str | None = None
    encoding: str | None = None
    delimiter: str | None = None
    columns: list[str | None] | None = None
    result_ready: bool | None = None
