"""A message template (`<tid>#templates` / `template#<id>`): name, channel, subject, body, creation time."""

from __future__ import annotations

from datetime import datetime

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
    created_at: str
    template_id: str = Field(default="", exclude=True)
    updated_at: datetime | None = Field(default=None, exclude=True)
