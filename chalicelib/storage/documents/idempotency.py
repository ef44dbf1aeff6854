"""An Idempotency-Key record (`<partition>#idem#<route>#<key> / idempotency`): claimed, then completed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chalicelib.storage.documents.common import Document


class IdempotencyRecord(Document):
    """A key in flight (held until `lease_until`) or completed with the answer to replay."""

    state: str
    fingerprint: str
    lease_until: str
    status: int | None = None
    body: Any = None
    headers: dict[str, str] | None = None

    @property
    def lease_ends(self) -> datetime:
        return datetime.fromisoformat(self.lease_until)
