"""Deliver one mail message to one customer, exactly once, within consent, quiet hours and the weekly cap.

Order matters: the dedup claim comes first, so a second copy of a message
(SQS redelivery, or the same dedup key queued twice) sends and counts
nothing; rules before contact and rendering, so a suppressed message reads
no personal data; the weekly cap is taken just before the provider call and
given back if the provider is unavailable, so a retry is not counted twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from chalicelib import clock
from chalicelib.domain import delivery_rules as rules
from chalicelib.domain.templating import Rendered, RenderError
from chalicelib.errors import ApiError
from chalicelib.observability import logger
from chalicelib.schemas.mail import DeliveryCounts, MailMessage, MailSettings
from chalicelib.services.customers import customers
from chalicelib.services.marketing import channels, mail_context, mail_settings, templates
from chalicelib.services.program import catalog
from chalicelib.storage import deliveries

LEASE = timedelta(seconds=120)
"""Shorter than the mail queue's visibility timeout (180 s): a crashed send can be taken over by the redelivery."""


@dataclass(frozen=True)
class Outcome:
    status: str
    """sent | suppressed | failed, or `sending` when another worker holds the claim right now."""
    reason: str | None = None
    provider_id: str | None = None
    duplicate: bool = False


def deliver(message: MailMessage) -> Outcome:
    """Send the message or record why not. Raises TransientSendError (claim released) when SQS should retry."""
    now = clock.now()
    claimed = deliveries.claim(message.tenant_id, message.dedup_key, now, LEASE)
    token, existing = claimed.token, claimed.existing
    if token is None:
        return Outcome(existing.state, existing.reason, existing.provider_id, duplicate=True)
    try:
        outcome = _attempt(message, now)
    except Exception:
        deliveries.release(message.tenant_id, message.dedup_key, token)
        raise
    _record(message, token, outcome)
    return outcome


def counts(tenant_id: str, source_kind: str, source_id: str) -> DeliveryCounts:
    """The outcome counters of one campaign or trigger (written once per message by `_record`)."""
    raw = deliveries.counts(tenant_id, source_kind, source_id)
    return DeliveryCounts(sent=raw.get("sent", 0), failed=raw.get("failed", 0), suppressed=raw.get("suppressed", 0),
                          suppressed_by_reason={k.split(":", 1)[1]: v for k, v in raw.items()
                                                if k.startswith("suppressed:")})


def _customer(message: MailMessage) -> customers.Found | None:
    """The customer, looked up only in the tenant's own scopes: another tenant's customer does not exist here."""
    try:
        found = customers.find(message.tenant_id, message.customer_id)
    except ApiError:
        return None
    return found if found.scope == message.scope else None


def _record(message: MailMessage, token: str, outcome: Outcome) -> None:
    """Write the outcome and count it once. Never raises: the message is already decided (maybe sent), and
    a retry after the lease ran out would send it again; a failure here only leaves the claim `sending`."""
    log = {"tenant_id": message.tenant_id, "dedup_key": message.dedup_key, "status": outcome.status}
    try:
        if deliveries.finish(message.tenant_id, message.dedup_key, token, outcome.status, clock.now(),
                             reason=outcome.reason, provider_id=outcome.provider_id):
            deliveries.add_counts(message.tenant_id, message.source.kind, message.source.id, outcome.status,
                                  outcome.reason, clock.now())
        else:
            logger.warning("delivery claim lost before it was recorded", extra=log)
    except Exception:
        logger.exception("delivery outcome not recorded", extra=log)


def _attempt(message: MailMessage, now: datetime) -> Outcome:
    found = _customer(message)
    if found is None:
        return Outcome("failed", "customer_not_found")
    config = mail_settings.get(message.tenant_id)
    tz = catalog.timezone(message.tenant_id)
    week = rules.week_key(now, tz)
    sent = deliveries.sent_in_week(found.scope, found.customer_id, week) if config.weekly_cap else 0
    reason = rules.decide(found.doc.consents_dump(), found.doc.status, message.channel, now,
                          tz, config.quiet_hours.start, config.quiet_hours.end, sent, config.weekly_cap)
    if reason:
        return Outcome("suppressed", reason)
    if message.channel == "email" and not config.email_from:
        return Outcome("failed", "no_sender")
    to = mail_context.contact(message.scope, message.customer_id, message.channel)
    if not to:
        return Outcome("suppressed", rules.NO_CONTACT)
    try:
        values = mail_context.variables(message.tenant_id, message.scope, message.customer_id,
                                        coupon_code=message.coupon_code, extra=dict(message.extra),
                                        channel=message.channel)
        rendered = templates.render_for(message.tenant_id, message.template_id, message.channel, values)
    except RenderError as err:
        return Outcome("failed", f"render_error: {err.message}"[:300])
    if not deliveries.count_against_cap(found.scope, found.customer_id, week, config.weekly_cap, now):
        return Outcome("suppressed", rules.FREQUENCY_CAP)
    try:
        provider_id = _send(message, config, to, rendered)
    except channels.TransientSendError:
        if config.weekly_cap:
            deliveries.uncount(found.scope, found.customer_id, week)
        raise
    except channels.PermanentSendError as err:
        if config.weekly_cap:
            deliveries.uncount(found.scope, found.customer_id, week)
        return Outcome("failed", f"provider_error: {err}"[:300])
    return Outcome("sent", provider_id=provider_id)


def _send(message: MailMessage, config: MailSettings, to: str, rendered: Rendered) -> str:
    if message.channel == "email":
        headers = mail_context.list_unsubscribe_headers(message.scope, message.customer_id)
        return channels.EMAIL_PROVIDER.send_email(str(config.email_from), to, rendered.subject or "", rendered.body,
                                                  headers, html=rendered.html)
    return channels.sms_provider(config.sms_provider).send_sms(to, rendered.body, config.sms_sender_id,
                                                               transactional=message.source.kind == "test")
