"""A message template (`<tid>#templates` / `template#<id>`): name, channel, subject, body, creation time."""

from __future__ import annotations

from chalicelib.storage.documents.common import Document


class TemplateDoc(Document):
    """The template as saved; `subject` only for e-mail templates that have one."""

    name: str
    channel: str
    subject: str | None = None
    body: str
    created_at: str
