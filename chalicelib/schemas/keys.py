"""API key management models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints

from chalicelib.schemas.common import Input, Output, Slug
from chalicelib.schemas.roles import Role

KeyName = Annotated[str, StringConstraints(min_length=1, max_length=80)]


class KeyCreate(Input):
    role: Role
    name: KeyName = Field(description="What the key is for, e.g. 'till 3, Tverskaya store'.")
    store_id: Slug | None = Field(default=None, description="Bind a POS key to one store.")


class KeyRotate(Input):
    grace_seconds: int = Field(
        default=0, ge=0, le=7 * 24 * 3600,
        description="Keep the old key working this long so integrations can switch; 0 revokes it now.",
    )


class KeyInfo(Output):
    """A key as listed: everything but the secret."""

    key_id: str
    prefix: str = Field(description="The public start of the key, e.g. lp_pos_coffee-house.k7hx2mq9rtaw")
    role: Role
    name: str
    owner: str
    store_id: str | None = None
    status: str = Field(description="active, revoked or expiring (rotated with a grace period)")
    created_at: datetime
    created_by: str | None = None
    revoked_at: datetime | None = None
    expires_at: datetime | None = None
    rotated_to: str | None = None


class KeyCreated(KeyInfo):
    secret: str = Field(description="The full key. Shown once: store it now, it cannot be retrieved again.")


class WhoAmI(Output):
    role: Role
    key_id: str
    owner: str
    tenant_id: str | None = None
    agency_id: str | None = None
    store_id: str | None = None
    user_id: str | None = None
    """A signed-in person (then `key_id` is their session)."""
    email: str | None = None
