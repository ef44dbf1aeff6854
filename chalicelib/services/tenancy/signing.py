"""The secret behind signed public links and keyed hashes, or one clear error when a stage lacks it."""

from __future__ import annotations

from chalicelib.errors import ApiError
from chalicelib.settings import settings


def link_secret() -> str:
    """`LINK_SECRET` of this stage; 503 `not_configured` (never a bare 500, never an unkeyed hash) without it."""
    if not settings.link_secret:
        raise ApiError(503, "not_configured", "Signed links are not configured on this deployment (LINK_SECRET).")
    return settings.link_secret
