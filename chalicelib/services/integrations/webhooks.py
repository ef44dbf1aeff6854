"""Outbound webhooks: a tenant admin's endpoints, emitting events after operations commit, and delivering them.

Emitting. Services call `emit` (or one of the helpers below) after their
operation committed. Which endpoints want which events comes from a
per-process cache (60 s), so an operation of a tenant with no subscribed
endpoint makes no AWS call at all; otherwise one SendMessageBatch carries one
message per endpoint. An SQS failure is logged and counted, never raised: the
operation already happened. Event ids are deterministic from the operation,
so an idempotent replay (a till retrying a receipt) emits the same event
again and receivers de-duplicate it.

Delivering. The webhooks worker gives each message to `deliver`: a message
not yet due (`not_before`, for waits longer than SQS's 15-minute delay) is
re-delayed untouched; otherwise the attempt is claimed on the delivery log
item (a conditional write: never after a 2xx, never twice), POSTed with a 5 s
timeout and signed, and its outcome recorded. A failure is re-queued with
exponential backoff (1 min doubling to 1 h) for about a day, then the event
is failed; five failed events in a row, or no success for over 24 h, disable
the endpoint automatically (a notice on the endpoint and in the audit trail).
The worker connects only to public addresses (checked after resolving,
and connected to by that very address), unless loopback is allowed for the
local stack and tests.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import urllib3
from aws_lambda_powertools import single_metric
from aws_lambda_powertools.metrics import MetricUnit

from chalicelib import clock
from chalicelib.domain import webhooks as rules
from chalicelib.domain.ids import new_id
from chalicelib.errors import ApiError, ErrorDetail, conflict, not_found
from chalicelib.observability import NAMESPACE, logger
from chalicelib.schemas.pos import Card, LedgerEntry, MoneyEntry, PurchaseResult, RefundResult
from chalicelib.schemas.surveys import RewardOut
from chalicelib.schemas.webhooks import (
    Delivery,
    DeliveryMessage,
    PingAccepted,
    Webhook,
    WebhookCreate,
    WebhookCreated,
    WebhookUpdate,
)
from chalicelib.settings import settings
from chalicelib.storage import audit, loyalty, queues
from chalicelib.storage import webhooks as store
from chalicelib.storage.documents.campaign import MailCampaignDoc
from chalicelib.storage.documents.common import Versioned
from chalicelib.storage.documents.survey import ResponseDoc
from chalicelib.storage.documents.webhook import EndpointDoc, WebhookDeliveryDoc

MAX_ENDPOINTS = 10
CACHE_SECONDS = 60.0
TIMEOUT_SECONDS = 5.0
LEASE = timedelta(seconds=30)
"""A claimed attempt older than this (a worker died mid-attempt) may be taken over by SQS's redelivery."""
EXPIRING_NOTICE_DAYS = 7
"""points.expiring is emitted this many days before the points expire (once per card and expiry day)."""
ACTOR = "system:webhooks"
USER_AGENT = "Loyalty-Webhooks/1"
ERROR_CHARS = 300


# --- subscriptions cache ----------------------------------------------------------------------

_cache: dict[str, tuple[float, list[tuple[str, frozenset[str]]]]] = {}
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class Attempt:
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def create(tenant_id: str, spec: WebhookCreate, actor: str) -> WebhookCreated:
    """Register an endpoint (at most MAX_ENDPOINTS); its signing secret is shown this once."""
    url, events = _check_url(spec.url), _check_events(spec.events)
    if len(store.all_endpoints(tenant_id)) >= MAX_ENDPOINTS:
        raise _unprocessable("too_many_webhooks", f"A tenant may register at most {MAX_ENDPOINTS} endpoints.", "url")
    at = clock.now()
    endpoint_id = "wh_" + new_id(12)
    doc = EndpointDoc(id=endpoint_id, url=url, events=events, description=spec.description, enabled=True,
                      secret=rules.new_secret(), previous_secret=None, previous_secret_until=None,
                      consecutive_failures=0, failing_since=None, disabled_reason=None, disabled_at=None,
                      notice=None, created_at=at.isoformat(), updated_at=at.isoformat())
    store.add_endpoint(tenant_id, endpoint_id, doc, at)
    clear_cache(tenant_id)
    _audit(tenant_id, "webhook.created", actor, at, endpoint_id, url=url, events=",".join(events))
    return WebhookCreated(**view(doc).model_dump(), secret=doc.secret)


def get(tenant_id: str, endpoint_id: str) -> Webhook:
    """The endpoint, its secret only as a hint."""
    return view(_require(tenant_id, endpoint_id).doc)


def list_all(tenant_id: str, limit: int, cursor: str | None) -> tuple[list[Webhook], str | None]:
    """The tenant's endpoints."""
    docs, next_cursor = store.list_endpoints(tenant_id, limit, cursor)
    return [view(doc) for doc in docs], next_cursor


def update(tenant_id: str, endpoint_id: str, spec: WebhookUpdate, actor: str) -> Webhook:
    """Change url, events, description or enabled; re-enabling clears the failure state."""
    _require(tenant_id, endpoint_id)
    url = _check_url(spec.url) if spec.url is not None else None
    events = _check_events(spec.events) if spec.events is not None else None

    def apply(doc: EndpointDoc, at: datetime) -> bool:
        if url is not None:
            doc.url = url
        if events is not None:
            doc.events = events
        if "description" in spec.model_fields_set:
            doc.description = spec.description
        if spec.enabled is True:
            doc.enabled = True
            _reset_health(doc)
        elif spec.enabled is False and doc.enabled:
            doc.enabled, doc.disabled_reason, doc.disabled_at = False, "disabled by an admin", at.isoformat()
        return True

    doc = _change(tenant_id, endpoint_id, apply)
    if doc is None:
        raise not_found("Webhook endpoint")
    _audit(tenant_id, "webhook.updated", actor, clock.now(), endpoint_id,
           fields=",".join(sorted(spec.model_fields_set)), enabled=str(doc.enabled).lower())
    return view(doc)


def delete(tenant_id: str, endpoint_id: str, actor: str) -> Webhook:
    """Delete the endpoint; its delivery log goes with the log items' own 30-day TTL."""
    doc = _require(tenant_id, endpoint_id).doc
    if not store.delete_endpoint(tenant_id, endpoint_id):
        raise not_found("Webhook endpoint")
    clear_cache(tenant_id)
    _audit(tenant_id, "webhook.deleted", actor, clock.now(), endpoint_id)
    return view(doc)


def rotate(tenant_id: str, endpoint_id: str, actor: str) -> WebhookCreated:
    """A new secret; the current one keeps signing (a second `v1=`) for 24 h so receivers can roll over."""
    _require(tenant_id, endpoint_id)

    def apply(doc: EndpointDoc, at: datetime) -> bool:
        doc.previous_secret, doc.previous_secret_until = doc.secret, (at + rules.ROTATION_OVERLAP).isoformat()
        doc.secret = rules.new_secret()
        return True

    doc = _change(tenant_id, endpoint_id, apply)
    if doc is None:
        raise not_found("Webhook endpoint")
    _audit(tenant_id, "webhook.secret_rotated", actor, clock.now(), endpoint_id,
           previous_until=str(doc.previous_secret_until))
    return WebhookCreated(**view(doc).model_dump(), secret=doc.secret)


def ping(tenant_id: str, endpoint_id: str) -> PingAccepted:
    """Queue a `webhook.ping` to one enabled endpoint (not subscribable: sent only on request)."""
    doc = _require(tenant_id, endpoint_id).doc
    if not doc.enabled:
        raise conflict("webhook_disabled", "The endpoint is disabled; re-enable it (PATCH enabled=true) first.",
                       "enabled")
    at = clock.now()
    event = rules.envelope(rules.event_id(tenant_id, rules.PING, f"ping:{endpoint_id}:{new_id(16)}"), rules.PING,
                           at, tenant_id, {"endpoint_id": endpoint_id})
    queues.send(settings.webhooks_queue, _message(tenant_id, endpoint_id, event))
    return PingAccepted(event_id=event["id"], type=rules.PING)


def deliveries(tenant_id: str, endpoint_id: str, limit: int, cursor: str | None) -> tuple[list[Delivery], str | None]:
    """The endpoint's delivery log, newest first."""
    _require(tenant_id, endpoint_id)
    docs, next_cursor = store.list_deliveries(tenant_id, endpoint_id, limit, cursor)
    return [_delivery_view(doc) for doc in docs], next_cursor


def deliver(message: DeliveryMessage) -> str:
    """One attempt of one event to one endpoint; the outcome (for the worker's log line).

    deferred | dropped | duplicate | delivered | retrying | failed. Raises only
    when SQS or DynamoDB fail: the worker reports the message for redelivery.
    """
    now = clock.now()
    tenant_id, endpoint_id, event = message.tenant_id, message.endpoint_id, message.event
    log = {"tenant_id": tenant_id, "endpoint_id": endpoint_id, "event_id": event.get("id"),
           "attempt": message.attempt}
    not_before = _dt(message.not_before)
    if not_before is not None and now < not_before:
        queues.send(settings.webhooks_queue, message.model_dump(mode="json"),
                    delay_seconds=rules.sqs_delay(not_before, now))
        return "deferred"
    got = store.get_endpoint(tenant_id, endpoint_id)
    if got is None:
        logger.info("webhook dropped: endpoint deleted", extra=log)
        return "dropped"
    doc = got.doc
    event_id, event_type = str(event["id"]), str(event["type"])
    reason = None
    if not doc.enabled:
        reason = "dropped: endpoint disabled"
    elif event_type != rules.PING and event_type not in doc.events:
        reason = "dropped: endpoint no longer subscribed to this event type"
    if reason is not None:
        store.record_dropped(tenant_id, endpoint_id, event_id, event_type, reason, now)
        logger.info("webhook " + reason, extra=log)
        return "dropped"
    token = store.claim_attempt(tenant_id, endpoint_id, event_id, event_type, message.attempt, now, LEASE)
    if token is None:
        logger.info("webhook attempt already taken; duplicate message ignored", extra=log)
        return "duplicate"
    first = message.first_attempt_at or store.stamp(now)
    body = body_of(event)
    attempt = post(doc.url, body, _headers(event, body, doc, message.attempt, now))
    outcome = {"last_status_code": attempt.status_code, "last_error": attempt.error,
               "duration_ms": attempt.duration_ms}
    if attempt.ok:
        try:
            store.finish_attempt(tenant_id, endpoint_id, event_id, token,
                                 {**outcome, "status": "delivered", "next_attempt_at": None, "token": None})
            _record_health(tenant_id, endpoint_id, success=True, final=False)
        except Exception:
            # The receiver has the event: a redelivery (after the queue's visibility timeout, long past the
            # claim's lease) would POST it again, so the message is done even if its log entry stays pending.
            logger.exception("webhook delivered but its outcome was not recorded", extra=log)
        logger.info("webhook delivered", extra={**log, "status_code": attempt.status_code})
        return "delivered"
    due = rules.next_attempt(message.attempt, _dt(first.replace("Z", "+00:00")) or now, now)
    if due is not None:
        queues.send(settings.webhooks_queue,
                    _message(tenant_id, endpoint_id, event, message.attempt + 1, first, due),
                    delay_seconds=rules.sqs_delay(due, now))
        status = "retrying"
    else:
        status = "failed"
    store.finish_attempt(tenant_id, endpoint_id, event_id, token,
                         {**outcome, "status": status, "next_attempt_at": store.stamp(due) if due else None,
                          "token": None})
    _record_health(tenant_id, endpoint_id, success=False, final=due is None)
    logger.info("webhook attempt failed", extra={**log, "status": status, "status_code": attempt.status_code,
                                                 "error": attempt.error})
    return status


def emit(tenant_id: str, event_type: str, subject_id: str, data: dict[str, Any], at: datetime) -> str | None:
    """Queue the event to every endpoint subscribed to it; its id, or None when nobody wants it.

    Call after the operation committed. Never raises: a failure is logged and
    counted (metric WebhookEmitFailures) and the operation's answer stands.
    """
    try:
        targets = subscribed(tenant_id, event_type)
        if not targets:
            return None
        event = rules.envelope(rules.event_id(tenant_id, event_type, subject_id), event_type, at, tenant_id, data)
        _send_all([_message(tenant_id, endpoint_id, event) for endpoint_id in targets])
        return str(event["id"])
    except Exception:
        logger.exception("webhook event not queued", extra={"tenant_id": tenant_id, "event_type": event_type,
                                                            "subject_id": subject_id})
        try:
            _count("WebhookEmitFailures", tenant_id)
        except Exception:
            logger.exception("webhook emit failure not counted")
        return None


def clear_cache(tenant_id: str | None = None) -> None:
    """Forget cached subscriptions (after a change here; tests between stacks)."""
    with _cache_lock:
        if tenant_id is None:
            _cache.clear()
        else:
            _cache.pop(tenant_id, None)


def subscribed(tenant_id: str, event_type: str) -> list[str]:
    """Endpoint ids that want this event type."""
    return [endpoint_id for endpoint_id, events in _subscriptions(tenant_id) if event_type in events]


# --- emitting -------------------------------------------------------------------------------

def purchase_processed(tenant_id: str, store_id: str, total: int, result: PurchaseResult) -> None:
    """purchase.processed, and card.activated / tier.changed when the purchase did that (fresh or replayed)."""
    at = clock.now()
    data = {"receipt_id": result.receipt_id, "card_number": result.card_number, "store_id": store_id,
            "total": total, "discount": result.discount, "payable": result.payable, "to_pay": result.to_pay,
            "points_earned": result.points_earned, "points_redeemed": result.points_redeemed,
            "balance": result.balance, "pending": result.pending, "tier": result.tier}
    emit(tenant_id, "purchase.processed", f"receipt:{result.receipt_id}", data, at)
    if result.card_activated and result.card_number:
        emit(tenant_id, "card.activated", f"card:{result.card_number}",
             {"card_number": result.card_number, "receipt_id": result.receipt_id}, at)
    if result.tier_upgrade is not None and result.card_number:
        tier_changed(tenant_id, result.card_number, None, result.tier_upgrade.previous, result.tier_upgrade.tier,
                     "upgrade", f"receipt:{result.receipt_id}")


def refunded(tenant_id: str, result: RefundResult) -> None:
    data = {k: getattr(result, k) for k in ("refund_id", "receipt_id", "card_number", "amount_refunded",
                                            "points_reversed", "points_returned", "points_written_off",
                                            "balance", "pending")}
    emit(tenant_id, "purchase.refunded", f"refund:{result.refund_id}", data, clock.now())


def card_issued(tenant_id: str, card: Card) -> None:
    """card.issued for a new card; card.activated too when it is active from the start."""
    at = clock.now()
    data = {"card_number": card.number, "program_id": card.program_id, "kind": card.kind, "status": card.status}
    emit(tenant_id, "card.issued", f"card:{card.number}", data, at)
    card_activated(tenant_id, card)


def card_activated(tenant_id: str, card: Card) -> None:
    """card.activated once per card (the id is the card's), whichever path activated it."""
    if card.status == "active":
        emit(tenant_id, "card.activated", f"card:{card.number}",
             {"card_number": card.number, "program_id": card.program_id}, clock.now())


def tier_changed(scope: str, card_number: str, program_id: str | None, previous: str | None, tier: str | None,
                 reason: str, subject_id: str) -> None:
    """tier.changed; cards of a coalition's shared scope have no single tenant to tell, so none is sent."""
    if scope.startswith(loyalty.coalition_scope("")):
        return
    emit(scope, "tier.changed", f"tier:{subject_id}",
         {"card_number": card_number, "program_id": program_id, "previous_tier": previous, "tier": tier,
          "reason": reason}, clock.now())


def tier_entries(scope: str, card_number: str, program_id: str, entries: Iterable[LedgerEntry | MoneyEntry]) -> None:
    """tier.changed for the tier entries the daily sweep wrote to a card."""
    for entry in entries:
        if isinstance(entry, LedgerEntry) and entry.type == "tier":
            tier_changed(scope, card_number, program_id, entry.previous_tier, entry.tier, entry.reason or "review",
                         f"entry:{card_number}:{entry.entry_id}")


def survey_completed(tenant_id: str, summary: ResponseDoc, reward: RewardOut) -> None:
    """Ids only: answers may hold personal data and stay out of the event."""
    data: dict[str, Any] = {"survey_id": summary.survey_id, "response_id": summary.response_id,
                            "customer_id": summary.customer_id, "receipt_id": summary.receipt_id,
                            "store_id": summary.store_id}
    data["reward_points"] = int(reward.points or 0) if reward.granted else 0
    emit(tenant_id, "survey.completed", f"response:{summary.survey_id}:{summary.response_id}", data,
         clock.now())


def campaign_finished(tenant_id: str, campaign_id: str, doc: MailCampaignDoc) -> None:
    stored = doc.counts.dump() if doc.counts else {}
    counts = {str(k): int(v) for k, v in stored.items() if isinstance(v, int | float)}
    emit(tenant_id, "campaign.finished", f"campaign:{campaign_id}",
         {"campaign_id": campaign_id, "status": doc.status, "finished_at": doc.finished_at,
          "counts": counts}, clock.now())


def report_ready(tenant_id: str, report_id: str, report_type: str, rows: int, size_bytes: int) -> None:
    emit(tenant_id, "report.ready", f"report:{report_id}",
         {"report_id": report_id, "type": report_type, "rows": rows, "size_bytes": size_bytes}, clock.now())


def points_expiring(scope: str, day: date) -> int:
    """After the daily sweep of `day`: points.expiring for every card whose points expire on day + 7 (UTC).

    Costs nothing unless an endpoint subscribed. Cards are found through the
    sweep's due index over the next 7 days (a card is indexed under its
    soonest work, which may be before the expiry day). Returns events queued.
    """
    try:
        if scope.startswith(loyalty.coalition_scope("")) or not subscribed(scope, "points.expiring"):
            return 0
        target = day + timedelta(days=EXPIRING_NOTICE_DAYS)
        start = datetime(target.year, target.month, target.day, tzinfo=UTC)
        end = start + timedelta(days=1)
        sent = 0
        seen: set[str] = set()
        for offset in range(1, EXPIRING_NOTICE_DAYS + 1):
            cursor = None
            while True:
                numbers, cursor = loyalty.due_cards(scope, day + timedelta(days=offset), 100, cursor)
                for number in numbers:
                    if number in seen:
                        continue
                    seen.add(number)
                    card = loyalty.get_card(scope, number)
                    due = card.wallet.expiring(start - timedelta(microseconds=1), end - timedelta(microseconds=1)) \
                        if card is not None else []
                    points = sum(p for _, p in due)
                    if card is not None and points > 0:
                        emit(scope, "points.expiring", f"expiring:{number}:{target.isoformat()}",
                             {"card_number": number, "program_id": card.program_id, "points": points,
                              "expires_on": target.isoformat()}, clock.now())
                        sent += 1
                if cursor is None:
                    break
        return sent
    except Exception:
        logger.exception("points.expiring events not queued", extra={"scope": scope, "day": day.isoformat()})
        return 0


# --- the admin API ------------------------------------------------------------------------------

def view(doc: EndpointDoc) -> Webhook:
    """The endpoint as the API shows it: the secret only as a hint."""
    return Webhook(id=doc.id, url=doc.url, events=list(doc.events), description=doc.description,
                   enabled=bool(doc.enabled), disabled_reason=doc.disabled_reason,
                   disabled_at=_dt(doc.disabled_at), notice=doc.notice,
                   consecutive_failures=int(doc.consecutive_failures or 0),
                   failing_since=_dt(doc.failing_since), secret_hint="..." + doc.secret[-4:],
                   previous_secret_until=_dt(doc.previous_secret_until), created_at=_dt(doc.created_at),
                   updated_at=_dt(doc.updated_at))


# --- delivering -------------------------------------------------------------------------------

def post(url: str, body: bytes, headers: dict[str, str]) -> Attempt:
    """POST once: resolve, refuse private addresses (unless loopback is allowed), connect to the checked address
    itself (no second lookup to rebind), no redirects, 5 s in all."""
    started = time.monotonic()

    def done(status: int | None, error: str | None) -> Attempt:
        return Attempt(status, error[:ERROR_CHARS] if error else None, int((time.monotonic() - started) * 1000))

    parts = urlsplit(url)
    host = parts.hostname or ""
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    try:
        addresses = _resolve(host, port)
    except OSError as exc:
        return done(None, f"cannot resolve {host}: {exc}")
    allowed = [a for a in addresses if rules.address_allowed(a, settings.webhooks_allow_loopback_http)]
    if not allowed or len(allowed) < len(addresses):
        return done(None, f"refused to connect: {host} resolves to a non-public address")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    timeout = urllib3.Timeout(total=TIMEOUT_SECONDS)
    if https:
        pool: urllib3.HTTPConnectionPool = urllib3.HTTPSConnectionPool(
            allowed[0], port, timeout=timeout, retries=False, maxsize=1, server_hostname=host,
            assert_hostname=host)
    else:
        pool = urllib3.HTTPConnectionPool(allowed[0], port, timeout=timeout, retries=False, maxsize=1)
    try:
        response = pool.urlopen("POST", path, body=body, headers={**headers, "Host": parts.netloc.rsplit("@", 1)[-1]},
                                redirect=False, retries=False, preload_content=False, assert_same_host=False)
        status = int(response.status)
        response.drain_conn()
        response.release_conn()
        return done(status, None if 200 <= status < 300 else f"HTTP {status}")
    except urllib3.exceptions.HTTPError as exc:
        return done(None, f"{type(exc).__name__}: {exc}")
    except OSError as exc:
        return done(None, f"{type(exc).__name__}: {exc}")
    finally:
        pool.close()


def body_of(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()


# --- helpers --------------------------------------------------------------------------------------------

def _subscriptions(tenant_id: str) -> list[tuple[str, frozenset[str]]]:
    """(endpoint id, event types) of the tenant's enabled endpoints, read at most once a minute per process."""
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(tenant_id)
        if hit is not None and hit[0] > now:
            return hit[1]
    subs = [(doc.id, frozenset(doc.events)) for doc in store.all_endpoints(tenant_id) if doc.enabled]
    with _cache_lock:
        _cache[tenant_id] = (now + CACHE_SECONDS, subs)
    return subs


def _count(name: str, tenant_id: str) -> None:
    with single_metric(name=name, unit=MetricUnit.Count, value=1, namespace=NAMESPACE) as metric:
        metric.add_dimension(name="tenant_id", value=tenant_id)


def _message(tenant_id: str, endpoint_id: str, event: dict[str, Any], attempt: int = 1,
             first_attempt_at: str | None = None, not_before: datetime | None = None) -> dict[str, Any]:
    return DeliveryMessage(tenant_id=tenant_id, endpoint_id=endpoint_id, event=event, attempt=attempt,
                           first_attempt_at=first_attempt_at,
                           not_before=not_before.isoformat() if not_before else None).model_dump(mode="json")


def _send_all(messages: list[dict[str, Any]]) -> None:
    for start in range(0, len(messages), 10):
        queues.send_batch(settings.webhooks_queue, messages[start:start + 10])


def _unprocessable(code: str, message: str, field_name: str) -> ApiError:
    return ApiError(422, code, message, [ErrorDetail(field_name, message)])


def _check_url(url: str) -> str:
    try:
        return rules.check_url(url, settings.webhooks_allow_loopback_http)
    except rules.UnsafeUrl as exc:
        raise _unprocessable("invalid_webhook_url", f"The URL is not allowed: {exc}.", "url") from None


def _check_events(events: list[str]) -> list[str]:
    for i, name in enumerate(events):
        if name == rules.PING:
            raise _unprocessable("unknown_event_type", f"{rules.PING} is not subscribed to: POST "
                                 "/v1/webhooks/{id}/ping sends it to that endpoint, whatever its events.",
                                 f"events[{i}]")
        if name not in rules.EVENT_TYPES:
            raise _unprocessable("unknown_event_type", f"Unknown event type {name!r} (one of: "
                                 f"{', '.join(rules.EVENT_TYPES)}).", f"events[{i}]")
    return list(dict.fromkeys(events))


def _dt(value: Any) -> datetime | None:
    return datetime.fromisoformat(str(value)) if value else None


def _require(tenant_id: str, endpoint_id: str) -> Versioned[EndpointDoc]:
    got = store.get_endpoint(tenant_id, endpoint_id) if len(endpoint_id) <= 40 else None
    if got is None:
        raise not_found("Webhook endpoint")
    return got


def _audit(tenant_id: str, action: str, actor: str, at: datetime, endpoint_id: str, **detail: str) -> None:
    audit.put(audit.entry(tenant_id, action=action, actor=actor, at=at, target=f"webhook:{endpoint_id}",
                          detail=detail))


def _change(tenant_id: str, endpoint_id: str, apply: Callable[[EndpointDoc, datetime], bool],
            attempts: int = 5) -> EndpointDoc | None:
    """Read, change and save the endpoint under its version, re-reading if it changed meanwhile.

    `apply` edits the doc and says whether to save it. None when the endpoint is gone.
    """
    for _ in range(attempts):
        got = store.get_endpoint(tenant_id, endpoint_id)
        if got is None:
            return None
        doc, version = got.doc, got.version
        at = clock.now()
        if not apply(doc, at):
            return doc
        doc.updated_at = at.isoformat()
        try:
            store.save_endpoint(tenant_id, endpoint_id, doc, version, at)
        except store.Changed:
            continue
        clear_cache(tenant_id)
        return doc
    raise conflict("webhook_busy", "The endpoint is being changed by other requests; retry shortly.")


def _reset_health(doc: EndpointDoc) -> None:
    doc.consecutive_failures, doc.failing_since, doc.disabled_reason = 0, None, None
    doc.disabled_at, doc.notice = None, None


def _delivery_view(doc: WebhookDeliveryDoc) -> Delivery:
    def when(stamped: str | None) -> datetime | None:
        return _dt(stamped.replace("Z", "+00:00")) if stamped else None

    return Delivery(event_id=doc.event_id, type=doc.type, status=doc.status,
                    attempts=int(doc.attempts or 0),
                    last_status_code=int(doc.last_status_code) if doc.last_status_code else None,
                    last_error=doc.last_error,
                    duration_ms=int(doc.duration_ms) if doc.duration_ms is not None else None,
                    first_attempt_at=when(doc.first_attempt_at), last_attempt_at=when(doc.last_attempt_at),
                    next_attempt_at=when(doc.next_attempt_at))


def _resolve(host: str, port: int) -> list[str]:
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def _headers(event: dict[str, Any], body: bytes, doc: EndpointDoc, attempt: int, now: datetime) -> dict[str, str]:
    timestamp = int(now.timestamp())
    keys = rules.signing_secrets(doc.secret, doc.previous_secret, _dt(doc.previous_secret_until), now)
    return {"Content-Type": "application/json", "User-Agent": USER_AGENT, "Loyalty-Event-Id": str(event["id"]),
            "Loyalty-Event-Type": str(event["type"]), "Loyalty-Timestamp": str(timestamp),
            "Loyalty-Signature": rules.signature_header(keys, timestamp, body), "Loyalty-Attempt": str(attempt)}


def _record_health(tenant_id: str, endpoint_id: str, *, success: bool, final: bool) -> None:
    """Keep the endpoint's failure state; disable it (with a notice) once it keeps failing."""
    disabled: dict[str, str] = {}

    def apply(doc: EndpointDoc, at: datetime) -> bool:
        if success:
            if not doc.consecutive_failures and not doc.failing_since:
                return False
            doc.consecutive_failures, doc.failing_since = 0, None
            return True
        changed = False
        if not doc.failing_since:
            doc.failing_since, changed = at.isoformat(), True
        if final:
            doc.consecutive_failures, changed = int(doc.consecutive_failures or 0) + 1, True
        reason = rules.disable_reason(rules.Health(int(doc.consecutive_failures or 0), _dt(doc.failing_since)), at)
        if reason is not None and doc.enabled:
            notice = (f"Disabled automatically at {at.strftime('%Y-%m-%dT%H:%M:%SZ')}: {reason}. Deliveries to it "
                      "are dropped; fix the receiver, then re-enable it (PATCH enabled=true).")
            doc.enabled, doc.disabled_reason, doc.disabled_at, doc.notice = False, reason, at.isoformat(), notice
            disabled.update(reason=reason, notice=notice)
            changed = True
        return changed

    doc = _change(tenant_id, endpoint_id, apply)
    if doc is not None and disabled:
        _audit(tenant_id, "webhook.disabled", ACTOR, clock.now(), endpoint_id, reason=disabled["reason"],
               url=doc.url)
        _count("WebhookEndpointsDisabled", tenant_id)
        logger.warning("webhook endpoint disabled", extra={"tenant_id": tenant_id, "endpoint_id": endpoint_id,
                                                           "reason": disabled["reason"]})
