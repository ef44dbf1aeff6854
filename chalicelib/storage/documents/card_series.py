"""A plastic card series (`<tid>#series` / `series#<sid>`) and its chunks (`<tid>#series#<sid>` / `chunk#<k>`).

The series record is the generator's progress as well as what the API shows:
`created` grows a chunk at a time, `status` moves queued -> running ->
completed (or failed, with `error`). `status` stays the stored text (the
schema's `SeriesStatus` values), so a round trip never changes it.
"""

from __future__ import annotations

from chalicelib.storage.documents.common import Document


class SeriesDoc(Document):
    """A series as requested and as far as it got; `chunk_size` is stored so the chunk size can change later."""

    series_id: str
    program_id: str
    name: str | None = None
    prefix: str
    length: int
    count: int
    created: int = 0
    chunk_size: int
    status: str
    error: str | None = None
    created_at: str
    completed_at: str | None = None


class SeriesChunk(Document):
    """The numbers chunk k is made of, fixed before any of its cards is written."""

    numbers: list[str]
