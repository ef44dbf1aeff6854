"""A saved segment (`<tid>#segments` / `segment#<sid>`): name, description, filter, creation time."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from chalicelib.storage.documents.common import Document


class SegmentDoc(Document):
    """The definition; `segment_id` (from the key) and `updated_at` (the record's time) are never in the doc."""

    name: str
    description: str | None = None
    filter: dict[str, Any] = Field(default_factory=dict)
    created_at: str
    segment_id: str = Field(default="", exclude=True)
    updated_at: datetime | None = Field(default=None, exclude=True)
