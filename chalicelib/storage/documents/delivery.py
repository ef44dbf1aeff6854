"""Mail delivery documents: one message's exactly-once record and a tenant's mail settings."""

from __future__ import annotations

from chalicelib.storage.documents.common import Document


class DeliveryRecord(Document):
    """`<tid>#delivery#<dedup key>` / `delivery`: `sending` under a lease, then sent, suppressed or failed."""

    state: str = "sending"
    token: str | None = None
    lease_until: str | None = None
    reason: str | None = None
    provider_id: str | None = None
    at: str | None = None


class QuietHoursDoc(Document):
    start: str = "21:00"
    end: str = "09:00"


class MailSettingsDoc(Document):
    """`<tid>#mail` / `settings`: the tenant's MailSettings in JSON form."""

    email_from: str | None = None
    sms_sender_id: str | None = None
    quiet_hours: QuietHoursDoc | None = None
    weekly_cap: int = 3
    sms_provider: str = "sns"
