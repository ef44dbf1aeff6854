"""An image of a tenant's asset library (`<tid>#assets` / `asset#<id>`): what the file is, not the file."""

from __future__ import annotations

from chalicelib.storage.documents.common import Document


class AssetDoc(Document):
    """The image's original name, its type (from its magic bytes), size in bytes, pixel size and upload time."""

    filename: str
    content_type: str
    size: int
    width: int
    height: int
    created_at: str
    created_by: str = ""
