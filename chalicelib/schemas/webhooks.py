"""Outbound webhook endpoints of a tenant, their delivery log, and the SQS message of one delivery attempt.

Event types and URLs are checked by the service (422 with the field), not
here: a well-formed but unknown event type is a business refusal, not a
malformed request.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, model_validator

from chalicelib.schemas.common import Input, Output


class WebhookCreate(Input):
    url: str = Field(min_length=1, max_length=2048, description="https:// only; no credentials; a public host.")
    events: list[str] = Field(min_length=1, max_length=20, description="Event types to receive (card.issued, "
                                    "card.activated, purchase.processed, purchase.refunded, tier.changed, "
                                    "points.expiring, survey.completed, campaign.finished, report.ready).")
    description: str | None = Field(default=None, max_length=200)


class WebhookUpdate(Input):
    url: str | None = Field(default=None, min_length=1, max_length=2048)
    events: list[str] | None = Field(default=None, min_length=1, max_length=20)
    description: str | None = Field(default=None, max_length=200)
    enabled: bool | None = Field(default=None, description="false disables deliveries; true re-enables an endpoint "
                                 "(also one disabled automatically) and resets its failure state.")

    @model_validator(mode="after")
    def _something(self) -> WebhookUpdate:
        if not self.model_fields_set:
            raise ValueError("send at least one of url, events, description, enabled")
        return self


class Webhook(Output):
    id: str
    url: str
    events: list[str]
    description: str | None = None
    enabled: bool
    disabled_reason: str | None = Field(default=None, description="Why it was disabled (by an admin or "
                                        "automatically after repeated failures).")
    disabled_at: datetime | None = None
    notice: str | None = Field(default=None, description="The notice recorded when the endpoint was disabled "
                               "automatically (also in the audit trail as webhook.disabled).")
    consecutive_failures: int = Field(default=0, description="Events in a row that failed after every retry.")
    failing_since: datetime | None = Field(default=None, description="First failed attempt since the last success.")
    secret_hint: str = Field(description="The secret's last 4 characters; the secret is shown only on create and "
                             "rotate.")
    previous_secret_until: datetime | None = Field(default=None, description="After a rotation: the previous "
                                                   "secret also signs deliveries until then.")
    created_at: datetime
    updated_at: datetime


class WebhookCreated(Webhook):
    secret: str = Field(description="`whsec_...`: verify `Loyalty-Signature` with it. Shown only now.")


class PingAccepted(Output):
    event_id: str
    type: str


DeliveryStatus = Literal["pending", "delivered", "retrying", "failed"]


class Delivery(Output):
    """One event's delivery to one endpoint, over all its attempts."""

    event_id: str
    type: str
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None = None
    last_error: str | None = None
    duration_ms: int | None = Field(default=None, description="The last attempt's duration.")
    first_attempt_at: datetime | None = None
    last_attempt_at: datetime | None = None
    next_attempt_at: datetime | None = None


class DeliveryMessage(Input):
    """The webhooks queue's message: one attempt of one event to one endpoint."""

    v: Literal[1] = 1
    tenant_id: str
    endpoint_id: str
    event: dict[str, Any]
    attempt: int = Field(ge=1)
    first_attempt_at: str | None = None
    not_before: str | None = None
