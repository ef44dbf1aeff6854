"""Campaigns: a segment x channel x template, sent now or later, fanned out through SQS with a control group.

Fan-out is a job on the jobs queue. Each run walks the segment page by page
(`segments.members_page`), holds out the control group (a stable draw per
customer), gives each recipient a coupon code if the campaign attaches one,
and hands messages to the mail queue in batches of 10 (one SQS call per 10
recipients). After each page it saves the position and counts under the
campaign's version; out of time, it re-queues itself. A redelivered or
concurrent copy of the job can re-send a page whose progress was not saved:
the mail worker's dedup key (`campaign:<id>:<customer>`) makes that harmless,
and only the copy that saves the progress counts the page.

A campaign scheduled later waits on the queue itself: SQS delays a message
by at most 15 minutes, so the job re-queues itself until its time.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from chalicelib import clock
from chalicelib.domain import campaigns as rules
from chalicelib.domain import delivery_rules
from chalicelib.domain.grammar import article
from chalicelib.errors import ApiError, ErrorDetail, conflict
from chalicelib.observability import logger
from chalicelib.schemas.campaigns import Campaign, CampaignCounts, CampaignCreate
from chalicelib.services.marketing import delivery, mail_settings, segments, templates
from chalicelib.services.program import catalog, coupons
from chalicelib.settings import settings
from chalicelib.storage import audit, queues
from chalicelib.storage import campaigns as store
from chalicelib.storage.documents.campaign import FanOutCounts, MailCampaignDoc
from chalicelib.storage.documents.common import Versioned

FANOUT_JOB = "campaign.fanout"
SCAN = 200
"""Customers examined per page of the segment walk."""
BUDGET_SECONDS = 20.0
"""Work per job run, well inside the jobs worker's 60 s timeout; then it re-queues itself."""


def create(tenant_id: str, spec: CampaignCreate, actor: str) -> Campaign:
    """Check what the campaign names, store it `scheduled` and queue its fan-out (delayed until `send_at`).

    An SMS campaign due inside the tenant's quiet hours starts when they end (`send_at_requested` keeps the asked
    time): otherwise every message would reach the worker in quiet hours and be suppressed, not delayed.
    """
    segments.get(tenant_id, spec.segment_id)
    template = templates.get(tenant_id, spec.template_id)
    if template.channel != spec.channel:
        raise ApiError(422, "template_channel", f"Template {spec.template_id!r} is for {template.channel}.",
                       [ErrorDetail("template_id", f"{article(spec.channel)} template is needed")])
    if spec.coupon_campaign_id:
        coupons.get(tenant_id, spec.coupon_campaign_id)
    at = clock.now()
    requested = spec.send_at or at
    send_at = requested
    if spec.channel == "sms":
        quiet = mail_settings.get(tenant_id).quiet_hours
        send_at = delivery_rules.next_allowed(requested, catalog.timezone(tenant_id),
                                              quiet.start, quiet.end)
    moved_from = requested if send_at != requested else None
    doc = MailCampaignDoc.load({
        **spec.model_dump(mode="json"), "send_at": send_at.isoformat(), "tenant_id": tenant_id,
        "send_at_requested": moved_from.isoformat() if moved_from else None, "status": "scheduled",
        "counts": {"targeted": 0, "control": 0, "queued": 0}, "position": [0, None]})
    if not store.add(tenant_id, spec.id, doc, at):
        raise conflict("campaign_exists", f"Campaign {spec.id!r} already exists.", "id")
    audit.put(audit.entry(tenant_id, action="campaign.created", actor=actor, at=at, target=f"campaign:{spec.id}",
                          detail={"segment_id": spec.segment_id, "channel": spec.channel}))
    queues.send(settings.jobs_queue, job_message(tenant_id, spec.id),
                delay_seconds=rules.delay_until((send_at - at).total_seconds()))
    return get(tenant_id, spec.id)


def get(tenant_id: str, campaign_id: str) -> Campaign:
    """The campaign with its fan-out and delivery counts."""
    return view(_require(tenant_id, campaign_id).doc)


def list_all(tenant_id: str, limit: int, cursor: str | None) -> tuple[list[Campaign], str | None]:
    """The tenant's campaigns, newest first."""
    docs, next_cursor = store.list_page(tenant_id, limit, cursor)
    return [view(d) for d in docs], next_cursor


def cancel(tenant_id: str, campaign_id: str, actor: str) -> Campaign:
    """Stop a campaign not yet sent: the fan-out stops at its next page; messages already queued still go."""
    for _ in range(5):
        got = _require(tenant_id, campaign_id)
        doc, version = got.doc, got.version
        if doc.status not in ("scheduled", "sending"):
            raise conflict("campaign_finished", f"The campaign is {doc.status}.", "campaign_id")
        doc.status, doc.finished_at = "cancelled", clock.now().isoformat()
        try:
            store.save(tenant_id, campaign_id, doc, version, _created(doc))
        except store.Changed:
            continue
        audit.put(audit.entry(tenant_id, action="campaign.cancelled", actor=actor, at=clock.now(),
                              target=f"campaign:{campaign_id}"))
        return view(doc)
    raise conflict("campaign_busy", "The campaign is being changed; retry.", "campaign_id")


def handle_job(message: dict[str, Any], budget_seconds: float = BUDGET_SECONDS) -> None:
    """Run (or continue) a campaign's fan-out for a while; re-queue itself when out of time or not yet due."""
    tenant_id, campaign_id = str(message["tenant_id"]), str(message["campaign_id"])
    got = store.get(tenant_id, campaign_id)
    if got is None:
        return
    doc, version = got.doc, got.version
    if doc.status not in ("scheduled", "sending"):
        return
    now = clock.now()
    wait = (datetime.fromisoformat(doc.send_at) - now).total_seconds()
    if wait > 0:
        queues.send(settings.jobs_queue, job_message(tenant_id, campaign_id), delay_seconds=rules.delay_until(wait))
        return
    deadline = time.monotonic() + budget_seconds
    if doc.status == "scheduled":
        doc.status, doc.started_at = "sending", now.isoformat()
    while True:
        try:
            deltas, position = fan_out_page(tenant_id, doc, now)
        except ApiError as err:
            doc.status, doc.failure, doc.finished_at = "failed", err.message, clock.now().isoformat()
            _save_quietly(tenant_id, campaign_id, doc, version)
            return
        counts = (doc.counts or FanOutCounts()).dump()
        for key, value in deltas.items():
            counts[key] = int(counts.get(key, 0)) + value
        doc.counts = FanOutCounts.load(counts)
        doc.position = list(position) if position else None
        if position is None:
            doc.status, doc.finished_at = "sent", clock.now().isoformat()
        try:
            version = store.save(tenant_id, campaign_id, doc, version, _created(doc))
        except store.Changed:
            logger.info("campaign saved by another run; this copy stops", extra={"campaign_id": campaign_id})
            return
        if position is None:
            from chalicelib.services.integrations import webhooks

            webhooks.campaign_finished(tenant_id, campaign_id, doc)
            return
        if time.monotonic() > deadline:
            queues.send(settings.jobs_queue, job_message(tenant_id, campaign_id))
            return


def not_found() -> ApiError:
    return ApiError(404, "campaign_not_found", "No such campaign.", [ErrorDetail("campaign_id", "not found")])


def view(doc: MailCampaignDoc) -> Campaign:
    """The campaign as the API shows it, with its fan-out and delivery counts."""
    return Campaign(id=doc.id, name=doc.name, segment_id=doc.segment_id, channel=doc.channel,
                    template_id=doc.template_id, coupon_campaign_id=doc.coupon_campaign_id, send_at=doc.send_at,
                    send_at_requested=doc.send_at_requested, holdout_bps=doc.holdout_bps,
                    attribution_days=doc.attribution_days, status=doc.status, started_at=doc.started_at,
                    finished_at=doc.finished_at, failure=doc.failure, created_at=doc.created_at,
                    counts=_counts(doc))


def job_message(tenant_id: str, campaign_id: str) -> dict[str, str]:
    return {"job": FANOUT_JOB, "tenant_id": tenant_id, "campaign_id": campaign_id}


def fan_out_page(tenant_id: str, doc: MailCampaignDoc, at: datetime
                 ) -> tuple[dict[str, int], segments.Position | None]:
    """About SCAN members of the segment: control group recorded, messages queued in batches of 10.

    Returns the count deltas and where the walk goes on (None: the segment is done).
    """
    shard, cursor = doc.position or [0, None]
    position: segments.Position | None = (int(shard), cursor)
    found: list[segments.Member] = []
    while position is not None and len(found) < SCAN:  # across shards, so batches of 10 stay full
        page, position = segments.members_page(tenant_id, doc.segment_id, at, position, SCAN, with_cards=False)
        found += page
    rows: list[tuple[str, str]] = []
    messages: list[dict[str, Any]] = []
    for member in found:
        if rules.in_control_group(doc.id, member.customer_id, doc.holdout_bps):
            rows.append((member.customer_id, "control"))
            continue
        rows.append((member.customer_id, "target"))
        messages.append(_message(tenant_id, doc, member, _coupon(tenant_id, doc, member, at)))
    store.add_recipients(tenant_id, doc.id, rows, at)
    for start in range(0, len(messages), 10):
        queues.send_batch(settings.mail_queue, messages[start:start + 10])
    control = sum(1 for _, group in rows if group == "control")
    return {"targeted": len(rows), "control": control, "queued": len(messages)}, position


def _require(tenant_id: str, campaign_id: str) -> Versioned[MailCampaignDoc]:
    got = store.get(tenant_id, campaign_id)
    if got is None:
        raise not_found()
    return got


def _counts(doc: MailCampaignDoc) -> CampaignCounts:
    base = doc.counts or FanOutCounts()
    return CampaignCounts(targeted=base.targeted, control=base.control, queued=base.queued,
                          **delivery.counts(doc.tenant_id, "campaign", doc.id).model_dump())


def _created(doc: MailCampaignDoc) -> datetime:
    """The record's time, which a save keeps (a campaign read from storage always has it)."""
    assert doc.created_at is not None
    return doc.created_at


def _message(tenant_id: str, doc: MailCampaignDoc, member: segments.Member, coupon_code: str | None
             ) -> dict[str, Any]:
    return {"v": 1, "tenant_id": tenant_id, "scope": member.scope, "customer_id": member.customer_id,
            "channel": doc.channel, "template_id": doc.template_id,
            "source": {"kind": "campaign", "id": doc.id, "occasion": doc.id},
            "dedup_key": rules.message_key(doc.id, member.customer_id), "coupon_code": coupon_code, "extra": {}}


def _coupon(tenant_id: str, doc: MailCampaignDoc, member: segments.Member, at: datetime) -> str | None:
    if not doc.coupon_campaign_id:
        return None
    return coupons.grant_code(tenant_id, doc.coupon_campaign_id, member.customer_id,
                              f"mail:{doc.id}:{member.customer_id}", at, source="campaign", origin=doc.id,
                              scope=member.scope)


def _save_quietly(tenant_id: str, campaign_id: str, doc: MailCampaignDoc, version: int) -> None:
    try:
        store.save(tenant_id, campaign_id, doc, version, _created(doc))
    except store.Changed:
        logger.info("campaign changed while failing; the other run decides", extra={"campaign_id": campaign_id})
