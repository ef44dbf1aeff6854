"""A message template (`<tid>#templates` / `template#<id>`): name, channel, subject, body, blocks, creation time."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from chalicelib.storage.documents.common import Document


class TemplateDoc(Document):
    """The template as saved; `subject` only for e-mail templates that have one.

    `template_id` (from the key) and `updated_at` (the record's time) are never in the doc.
    """

    name: str
    channel: str
    subject: str | None = None
    body: str
    blocks: list[dict[str, Any]] | None = None
    """E-mail only: the HTML part's blocks (schemas.templates.EmailBlock, without empty fields)."""
    created_at: str
    template_id: str = Field(default="", exclude=True)
    updated_at: datetime | None = Field(default=None, exclude=True)
