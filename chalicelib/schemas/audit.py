"""Audit trail entries as listed."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from chalicelib.schemas.common import Output, PageQuery


class AuditEntry(Output):
    at: datetime
    action: str
    actor: str
    """`<role>:<key id>` for an API key, `user:<user id>` for a person."""
    actor_email: str | None = None
    """The person's e-mail, when a person did it."""
    target: str | None = None
    detail: dict[str, str] = {}


class AuditQuery(PageQuery):
    actor: str | None = Field(default=None, min_length=1, max_length=254,
                              description="Only what this person (user id or e-mail) or key (key id) did.")
    action: str | None = Field(default=None, min_length=1, max_length=60,
                               description="Only actions starting so (`member.`, `key.created`).")
