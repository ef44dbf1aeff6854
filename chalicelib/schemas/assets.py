"""The tenant's image library (logos and pictures for HTML e-mail)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints

from chalicelib.schemas.common import Input, Output, Query

PUBLIC_PATH = "/v1/public/assets"
"""Where the tenants' library images are served without an account (api/routes/assets.py)."""


def public_path(tenant_id: str, asset_id: str) -> str:
    """The same-origin path of one library image (console and member pages; mail and Google get it absolute)."""
    return f"{PUBLIC_PATH}/{tenant_id}/{asset_id}"


MAX_ASSET_BYTES = 2 * 1024 * 1024
UPLOAD_BODY_BYTES = 3 * 1024 * 1024
"""The upload route's body limit: a 2 MB file in base64 with its JSON (other routes keep MAX_BODY_BYTES)."""


class AssetIn(Input):
    filename: Annotated[str, StringConstraints(min_length=1, max_length=200)] = Field(
        description="The file's name, shown in the library (the type is read from the file itself).")
    content_type: Annotated[str, StringConstraints(max_length=100)] | None = Field(
        default=None, description="Informative only: the type is taken from the file's first bytes.")
    data_base64: Annotated[str, StringConstraints(min_length=1)] = Field(
        description="The file, base64 (RFC 4648): PNG, JPEG, GIF or WebP, at most 2 MB decoded.")


class AssetOut(Output):
    id: str
    filename: str
    content_type: str
    size: int = Field(description="Bytes.")
    width: int = Field(description="Pixels.")
    height: int = Field(description="Pixels.")
    url: str = Field(description="Where mail clients load it (our public `/assets/` route, cached for a year).")
    created_at: datetime


class AssetListQuery(Query):
    limit: int = Field(default=100, ge=1, le=500)
    cursor: str | None = Field(default=None, max_length=200)
