"""An offline receipt batch (`<tid>#posbatch#<bid>` / `batch`), its chunks, and its entry in the tenant's list.

The header is the batch as uploaded (fingerprint, uploader, counts) and the
job's progress (`position`, `status`, `counts`). The uploader's principal and
the counts stay in their JSON form (`dict`): `Principal.from_context` and the
API schemas read them as such.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from chalicelib.storage.documents.common import Document


class BatchHeader(Document):
    """Which body the batch is (`fingerprint`, its start `tag`), who sent it, and how far its job got."""

    batch_id: str
    fingerprint: str
    tag: str
    store_id: str | None = None
    bound_store: str | None = None
    principal: dict[str, Any] = Field(default_factory=dict)
    actor: str
    created_at: str
    completed_at: str | None = None
    total: int
    to_process: int
    position: int = 0
    known: list[int] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict)
    status: str


class BatchChunk(Document):
    """A receipts or results chunk: a JSON array as text, so a chunk's size is known before it is written."""

    payload: str


class BatchListing(Document):
    """`<tid>#posbatches` / `<created at>#<bid>`: points the tenant's newest-first list at a header."""

    batch_id: str
