"""Webhook documents: an endpoint (`<tid>#webhooks` / `endpoint#<id>`) and one event's delivery log item."""

from __future__ import annotations

from pydantic import Field

from chalicelib.storage.documents.common import Document


class EndpointDoc(Document):
    """The endpoint: where to POST, which events, its signing secrets and its failure state."""

    id: str
    url: str
    events: list[str] = Field(default_factory=list)
    description: str | None = None
    enabled: bool = True
    secret: str
    previous_secret: str | None = None
    previous_secret_until: str | None = None
    consecutive_failures: int | None = 0
    failing_since: str | None = None
    disabled_reason: str | None = None
    disabled_at: str | None = None
    notice: str | None = None
    created_at: str
    updated_at: str


class WebhookDeliveryDoc(Document):
    """`<tid>#webhook-log#<endpoint id>` / `<event id>`: one event's attempts; `event_id` is the key, not stored.

    Times are `stamp()` strings (`...Z`), as the log's index sorts them.
    """

    type: str
    status: str
    attempts: int = 0
    token: str | None = None
    claimed_at: str | None = None
    first_attempt_at: str | None = None
    last_attempt_at: str | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    duration_ms: int | None = None
    next_attempt_at: str | None = None
    event_id: str = Field(default="", exclude=True)
