"""Outbound webhooks end to end: a real HTTP receiver on loopback, the webhooks queue over moto, the real worker.

Signatures are checked with an implementation written here (hmac + hashlib),
not the domain module's, so a bug there cannot hide behind itself. Delayed
SQS messages are taken straight from moto's queue (moto holds them back in
real time); the rules' clock is moved instead of waiting.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sqs.models import sqs_backends

from chalicelib.schemas.webhooks import DeliveryMessage
from chalicelib.services.integrations import webhooks as service
from chalicelib.settings import settings
from chalicelib.storage import queues
from chalicelib.workers import webhooks as worker
from tests.functional.conftest import Api, TenantKeys
from tests.functional.jobqueue import drain
from tests.functional.test_mail_delivery import mailer, new_customer, rendering  # noqa: F401

REGION = "eu-central-1"


# --- an independent receiver-side verification --------------------------------------------------

def signatures(header: str) -> tuple[int, list[str]]:
    parts = [p.split("=", 1) for p in header.split(",")]
    timestamp = int(next(v for k, v in parts if k == "t"))
    return timestamp, [v for k, v in parts if k == "v1"]


def verified(secret: str, headers: dict[str, str], body: bytes) -> bool:
    timestamp, sigs = signatures(headers["Loyalty-Signature"])
    expected = hmac.new(secret.encode("utf-8"), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return headers["Loyalty-Timestamp"] == str(timestamp) and any(hmac.compare_digest(expected, s) for s in sigs)


# --- the receiver -------------------------------------------------------------------------------

@dataclasses.dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)


class Receiver:
    """Records every POST and answers the next programmed status (200 once they run out, or `default`)."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.statuses: list[int] = []
        self.default = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests.append(Received(self.path, dict(self.headers.items()), body))
                status = receiver.statuses.pop(0) if receiver.statuses else receiver.default
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/loyalty"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        return [r.event for r in self.requests if event_type is None or r.event["type"] == event_type]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


# --- queue and settings -------------------------------------------------------------------------

@dataclasses.dataclass
class Sent:
    message: dict[str, Any]
    delay: int


@pytest.fixture
def hooks(api: Api, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Sent]]:
    """Loopback receivers allowed, the webhooks queue created, and every message sent to it recorded."""
    monkeypatch.setattr(service, "settings", dataclasses.replace(settings, webhooks_allow_loopback_http=True))
    sqs = boto3.client("sqs", region_name=REGION)
    try:
        sqs.get_queue_url(QueueName=settings.webhooks_queue)
    except sqs.exceptions.QueueDoesNotExist:
        sqs.create_queue(QueueName=settings.webhooks_queue)
    sent: list[Sent] = []
    real_send, real_batch = queues.send, queues.send_batch

    def send(queue_name: str, message: dict[str, Any], *, delay_seconds: int = 0) -> str:
        if queue_name == settings.webhooks_queue:
            sent.append(Sent(message, delay_seconds))
        return real_send(queue_name, message, delay_seconds=delay_seconds)

    def send_batch(queue_name: str, messages: list[dict[str, Any]]) -> int:
        if queue_name == settings.webhooks_queue:
            sent.extend(Sent(m, 0) for m in messages)
        return real_batch(queue_name, messages)

    monkeypatch.setattr(queues, "send", send)
    monkeypatch.setattr(queues, "send_batch", send_batch)
    service.clear_cache()
    yield sent
    service.clear_cache()


def take() -> list[str]:
    """Every message body in the webhooks queue, delayed ones included, removed from it."""
    queue = sqs_backends[DEFAULT_ACCOUNT_ID][REGION].queues[settings.webhooks_queue]
    bodies = [m.body for m in queue._messages]
    queue._messages = []
    return bodies


def feed(bodies: list[str]) -> dict[str, Any]:
    records = [{"messageId": f"m{i}", "receiptHandle": f"h{i}", "body": b, "attributes": {},
                "messageAttributes": {}, "eventSource": "aws:sqs", "awsRegion": REGION}
               for i, b in enumerate(bodies)]
    return worker.handle_records(records)


def run(clock: Any, rounds: int = 200) -> int:
    """Deliver until the queue is empty, moving the clock to each round's latest `not_before`; rounds run."""
    for n in range(rounds):
        bodies = take()
        if not bodies:
            return n
        due = [datetime.fromisoformat(json.loads(b)["not_before"]) for b in bodies if json.loads(b)["not_before"]]
        if due and max(due) > clock.now():
            clock.advance(seconds=(max(due) - clock.now()).total_seconds())
        assert feed(bodies) == {"batchItemFailures": []}
    raise AssertionError("the webhooks queue never drained")


def register(api: Api, key: str, url: str, events: list[str]) -> dict[str, Any]:
    r = api.post("/v1/webhooks", key, {"url": url, "events": events, "description": "ERP"})
    assert r.status_code == 201, r.data
    return r.data


def issue_card(api: Api, tenant: TenantKeys) -> str:
    r = api.post("/v1/cards", tenant.pos, {"program_id": "main"})
    assert r.status_code == 201, r.data
    return r.data["number"]


def purchase_body(card: str, receipt_id: str = "till1-0001", total: int = 100_000) -> dict[str, Any]:
    return {"receipt_id": receipt_id, "card_number": card, "store_id": "msk-01", "total": total,
            "items": [{"sku": "latte", "category": "coffee", "quantity": 1, "amount": total}]}


# --- the resource -------------------------------------------------------------------------------

def test_register_shows_the_secret_once_and_lists_only_own_endpoints(api: Api, tenant: TenantKeys,
                                                                     other_tenant: TenantKeys, hooks: list[Sent],
                                                                     receiver: Receiver) -> None:
    created = register(api, tenant.admin, "https://hooks.example.com:8443/loyalty?x=1",
                       ["purchase.processed", "card.issued", "purchase.processed"])
    assert created["secret"].startswith("whsec_") and len(created["secret"]) == 6 + 43
    assert created["events"] == ["purchase.processed", "card.issued"]
    assert created["enabled"] is True and created["secret_hint"] == "..." + created["secret"][-4:]
    one = api.get(f"/v1/webhooks/{created['id']}", tenant.admin)
    assert one.status_code == 200 and "secret" not in one.data
    assert one.data["url"] == "https://hooks.example.com:8443/loyalty?x=1"
    register(api, other_tenant.admin, receiver.url, ["report.ready"])
    listed = api.get("/v1/webhooks", tenant.admin)
    assert [w["id"] for w in listed.data["items"]] == [created["id"]] and listed.data["has_more"] is False
    assert all("secret" not in w for w in listed.data["items"])

    for method, path in (("GET", ""), ("PATCH", ""), ("DELETE", ""), ("POST", "/ping"), ("POST", "/rotate-secret"),
                         ("GET", "/deliveries")):
        body = {"description": "x"} if method == "PATCH" else ({} if method == "POST" else None)
        r = api.call(method, f"/v1/webhooks/{created['id']}{path}", other_tenant.admin, body)
        assert r.status_code == 404, (method, path, r.data)
    assert api.get("/v1/webhooks", tenant.pos).status_code == 403

    patched = api.patch(f"/v1/webhooks/{created['id']}", tenant.admin, {"events": ["report.ready"]})
    assert patched.status_code == 200 and patched.data["events"] == ["report.ready"]
    deleted = api.delete(f"/v1/webhooks/{created['id']}", tenant.admin)
    assert deleted.status_code == 200 and deleted.data["id"] == created["id"]
    assert api.get(f"/v1/webhooks/{created['id']}", tenant.admin).status_code == 404


@pytest.mark.parametrize(("url", "issue"), [
    ("http://hooks.example.com/x", "https"),
    ("https://10.1.2.3/x", "private"),
    ("https://169.254.169.254/latest/meta-data", "private"),
    ("https://[::1]:8443/x", "loopback"),
    ("https://user:pw@hooks.example.com/x", "credentials"),
    ("ftp://hooks.example.com/x", "https"),
    ("https://localhost/x", "loopback"),
])
def test_unsafe_urls_are_refused_with_the_field(api: Api, tenant: TenantKeys, hooks: list[Sent], url: str,
                                               issue: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "settings", settings)  # loopback not allowed: the deployed default
    r = api.post("/v1/webhooks", tenant.admin, {"url": url, "events": ["card.issued"]})
    assert r.status_code == 422, r.data
    assert r.data["error"]["code"] == "invalid_webhook_url"
    assert r.data["error"]["details"][0]["field"] == "url" and issue in r.data["error"]["message"]


def test_unknown_event_types_and_the_endpoint_limit_are_422(api: Api, tenant: TenantKeys, hooks: list[Sent],
                                                           receiver: Receiver) -> None:
    r = api.post("/v1/webhooks", tenant.admin, {"url": receiver.url, "events": ["card.issued", "card.stolen"]})
    assert r.status_code == 422 and r.data["error"]["code"] == "unknown_event_type"
    assert r.data["error"]["details"][0]["field"] == "events[1]"
    ping_only = api.post("/v1/webhooks", tenant.admin, {"url": receiver.url, "events": ["card.issued", "webhook.ping"]})
    assert ping_only.status_code == 422 and ping_only.data["error"]["code"] == "unknown_event_type"
    assert ping_only.data["error"]["message"] == ("webhook.ping is not subscribed to: POST /v1/webhooks/{id}/ping "
                                                  "sends it to that endpoint, whatever its events.")
    assert ping_only.data["error"]["details"][0]["field"] == "events[1]"
    assert api.post("/v1/webhooks", tenant.admin, {"url": receiver.url, "events": []}).status_code == 400
    for _ in range(10):
        register(api, tenant.admin, receiver.url, ["card.issued"])
    eleventh = api.post("/v1/webhooks", tenant.admin, {"url": receiver.url, "events": ["card.issued"]})
    assert eleventh.status_code == 422 and eleventh.data["error"]["code"] == "too_many_webhooks"
    first = api.get("/v1/webhooks?limit=4", tenant.admin).data
    rest = api.get(f"/v1/webhooks?limit=10&cursor={first['cursor']}", tenant.admin).data
    assert first["has_more"] and len(first["items"]) == 4 and len(rest["items"]) == 6 and not rest["has_more"]


# --- events -------------------------------------------------------------------------------------

def test_a_purchase_is_delivered_signed_with_exact_data_and_a_replay_re_emits_the_same_id(
        api: Api, tenant: TenantKeys, hooks: list[Sent], receiver: Receiver, clock: Any) -> None:
    endpoint = register(api, tenant.admin, receiver.url, ["purchase.processed", "purchase.refunded"])
    card = issue_card(api, tenant)
    assert hooks == []  # card.issued is not subscribed: nothing queued
    r = api.post("/v1/purchases", tenant.pos, purchase_body(card))
    assert r.status_code == 200, r.data
    assert len(hooks) == 1
    run(clock)
    [got] = receiver.requests
    assert got.path == "/hooks/loyalty"
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["Loyalty-Event-Type"] == "purchase.processed"
    assert verified(endpoint["secret"], got.headers, got.body)
    assert not verified("whsec_wrong", got.headers, got.body)
    assert int(got.headers["Loyalty-Timestamp"]) == int(clock.now().timestamp())
    event = got.event
    assert event["id"] == got.headers["Loyalty-Event-Id"] and event["id"].startswith("evt_")
    assert event["id"] == "evt_" + hashlib.sha256(
        f"{tenant.tenant_id}|purchase.processed|receipt:till1-0001".encode()).hexdigest()[:32]
    assert event["tenant_id"] == tenant.tenant_id and event["created_at"] == "2026-11-02T10:00:00Z"
    assert event["data"] == {"receipt_id": "till1-0001", "card_number": card, "store_id": "msk-01",
                             "total": 100_000, "discount": 0, "payable": 100_000, "to_pay": 100_000,
                             "points_earned": 50, "points_redeemed": 0, "balance": 50, "pending": 0,
                             "tier": None}

    again = api.post("/v1/purchases", tenant.pos, purchase_body(card))
    assert again.data["replayed"] is True
    assert [s.message["event"]["id"] for s in hooks] == [event["id"], event["id"]]
    run(clock)
    assert len(receiver.requests) == 1  # the receiver already has it: the log item guards a second POST

    clock.advance(minutes=1)
    refund = api.post("/v1/refunds", tenant.pos, {"refund_id": "rf-1", "receipt_id": "till1-0001",
                                                  "amount": 40_000})
    assert refund.status_code == 200, refund.data
    run(clock)
    [refunded] = receiver.events("purchase.refunded")
    assert refunded["data"] == {"refund_id": "rf-1", "receipt_id": "till1-0001", "card_number": card,
                                "amount_refunded": 40_000, "points_reversed": 20, "points_returned": 0,
                                "points_written_off": 0, "balance": 30, "pending": 0}
    log = api.get(f"/v1/webhooks/{endpoint['id']}/deliveries", tenant.admin).data["items"]
    assert [(d["type"], d["status"], d["attempts"], d["last_status_code"]) for d in log] == [
        ("purchase.refunded", "delivered", 1, 200), ("purchase.processed", "delivered", 1, 200)]


def test_card_events_and_no_aws_call_for_an_unsubscribed_tenant(api: Api, tenant: TenantKeys, hooks: list[Sent],
                                                               receiver: Receiver, clock: Any,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[str] = []
    real = service.store.all_endpoints
    monkeypatch.setattr(service.store, "all_endpoints", lambda tid: reads.append(tid) or real(tid))
    issue_card(api, tenant)
    issue_card(api, tenant)
    assert hooks == [] and reads == [tenant.tenant_id]  # one read, then the cached "nobody listens"
    register(api, tenant.admin, receiver.url, ["card.issued", "card.activated"])
    card = issue_card(api, tenant)
    run(clock)
    assert [e["type"] for e in receiver.events()] == ["card.issued", "card.activated"]
    assert receiver.events()[0]["data"] == {"card_number": card, "program_id": "main", "kind": "virtual",
                                            "status": "active"}


def test_ping_goes_to_that_endpoint_only(api: Api, tenant: TenantKeys, hooks: list[Sent], receiver: Receiver,
                                        clock: Any) -> None:
    one = register(api, tenant.admin, receiver.url, ["report.ready"])
    register(api, tenant.admin, receiver.url + "/other", ["report.ready"])
    r = api.post(f"/v1/webhooks/{one['id']}/ping", tenant.admin)
    assert r.status_code == 202 and r.data["type"] == "webhook.ping"
    run(clock)
    [got] = receiver.requests
    assert got.path == "/hooks/loyalty" and got.event["id"] == r.data["event_id"]
    assert got.event["data"] == {"endpoint_id": one["id"]} and verified(one["secret"], got.headers, got.body)
    [entry] = api.get(f"/v1/webhooks/{one['id']}/deliveries", tenant.admin).data["items"]
    assert entry["event_id"] == r.data["event_id"] and entry["status"] == "delivered"
    assert entry["duration_ms"] is not None and entry["next_attempt_at"] is None


# --- retries, disabling, rotation, duplicates ----------------------------------------------------

def test_a_failing_receiver_is_retried_with_backoff_until_it_answers(api: Api, tenant: TenantKeys,
                                                                    hooks: list[Sent], receiver: Receiver,
                                                                    clock: Any) -> None:
    endpoint = register(api, tenant.admin, receiver.url, ["report.ready"])
    receiver.statuses = [500, 500, 200]
    event_id = api.post(f"/v1/webhooks/{endpoint['id']}/ping", tenant.admin).data["event_id"]
    feed(take())
    assert [s.delay for s in hooks[1:]] == [60]
    log = api.get(f"/v1/webhooks/{endpoint['id']}/deliveries", tenant.admin).data["items"][0]
    assert (log["status"], log["attempts"], log["last_status_code"], log["last_error"]) == (
        "retrying", 1, 500, "HTTP 500")
    assert log["next_attempt_at"] == "2026-11-02T10:01:00Z"
    feed(take())  # not due yet: put back with the time left, nothing POSTed
    assert len(receiver.requests) == 1 and hooks[-1].delay == 60 and hooks[-1].message["attempt"] == 2
    clock.advance(seconds=60)
    feed(take())
    assert [s.delay for s in hooks if s.message["attempt"] == 3] == [120]
    clock.advance(seconds=120)
    feed(take())
    assert take() == []
    assert [r.event["id"] for r in receiver.requests] == [event_id] * 3
    assert [r.headers["Loyalty-Attempt"] for r in receiver.requests] == ["1", "2", "3"]
    log = api.get(f"/v1/webhooks/{endpoint['id']}/deliveries", tenant.admin).data["items"][0]
    assert (log["status"], log["attempts"], log["last_status_code"]) == ("delivered", 3, 200)
    assert api.get(f"/v1/webhooks/{endpoint['id']}", tenant.admin).data["failing_since"] is None


def test_an_endpoint_that_keeps_failing_is_disabled_with_a_notice(api: Api, tenant: TenantKeys, hooks: list[Sent],
                                                                 receiver: Receiver, clock: Any) -> None:
    endpoint = register(api, tenant.admin, receiver.url, ["purchase.processed"])
    receiver.default = 503
    for _ in range(5):
        assert api.post(f"/v1/webhooks/{endpoint['id']}/ping", tenant.admin).status_code == 202
    started = clock.now()
    run(clock)
    assert len(receiver.requests) == 5 * 29  # 29 attempts each: 1 min doubling to 1 h, for 23 h
    assert clock.now() - started == timedelta(hours=23, minutes=3)
    after = api.get(f"/v1/webhooks/{endpoint['id']}", tenant.admin).data
    assert after["enabled"] is False and after["consecutive_failures"] == 5
    assert "5 events in a row" in after["disabled_reason"] and "Disabled automatically" in after["notice"]
    log = api.get(f"/v1/webhooks/{endpoint['id']}/deliveries", tenant.admin).data["items"]
    assert {(d["status"], d["attempts"]) for d in log} == {("failed", 29)}
    trail = api.get("/v1/audit", tenant.admin).data["items"]
    assert any(e["action"] == "webhook.disabled" and e["target"] == f"webhook:{endpoint['id']}" for e in trail)

    # Deliveries to a disabled endpoint are dropped, pings refused; re-enabling resets the failure state.
    card = issue_card(api, tenant)
    assert api.post("/v1/purchases", tenant.pos, purchase_body(card)).status_code == 200
    event = {"id": "evt_" + "0" * 32, "type": "purchase.processed", "created_at": "2026-11-03T09:03:00Z",
             "tenant_id": tenant.tenant_id, "data": {}}
    stale = DeliveryMessage(tenant_id=tenant.tenant_id, endpoint_id=endpoint["id"], event=event, attempt=1)
    assert service.deliver(stale) == "dropped"
    assert api.post(f"/v1/webhooks/{endpoint['id']}/ping", tenant.admin).status_code == 409
    back = api.patch(f"/v1/webhooks/{endpoint['id']}", tenant.admin, {"enabled": True}).data
    assert back["enabled"] is True and back["consecutive_failures"] == 0 and back["notice"] is None
    receiver.default = 200
    assert api.post(f"/v1/webhooks/{endpoint['id']}/ping", tenant.admin).status_code == 202
    run(clock)
    assert receiver.requests[-1].event["type"] == "webhook.ping"


def test_no_success_for_over_a_day_disables_too(api: Api, tenant: TenantKeys, hooks: list[Sent],
                                               receiver: Receiver, clock: Any) -> None:
    endpoint = register(api, tenant.admin, receiver.url, ["purchase.processed"])
    receiver.default = 500
    api.post(f"/v1/webhooks/{endpoint['id']}/ping", tenant.admin)
    feed(take())
    clock.advance(hours=12)
    api.post(f"/v1/webhooks/{endpoint['id']}/ping", tenant.admin)
    run(clock)
    after = api.get(f"/v1/webhooks/{endpoint['id']}", tenant.admin).data
    assert after["enabled"] is False and after["disabled_reason"].startswith("every delivery failed since")
    assert after["consecutive_failures"] == 1


def test_rotation_signs_with_both_secrets_for_a_day(api: Api, tenant: TenantKeys, hooks: list[Sent],
                                                   receiver: Receiver, clock: Any) -> None:
    endpoint = register(api, tenant.admin, receiver.url, ["report.ready"])
    rotated = api.post(f"/v1/webhooks/{endpoint['id']}/rotate-secret", tenant.admin)
    assert rotated.status_code == 200 and rotated.data["secret"] != endpoint["secret"]
    assert rotated.data["previous_secret_until"] == "2026-11-03T10:00:00Z"
    api.post(f"/v1/webhooks/{endpoint['id']}/ping", tenant.admin)
    run(clock)
    got = receiver.requests[-1]
    assert len(signatures(got.headers["Loyalty-Signature"])[1]) == 2
    assert verified(rotated.data["secret"], got.headers, got.body) and verified(endpoint["secret"], got.headers,
                                                                                got.body)
    clock.advance(hours=24, seconds=1)
    api.post(f"/v1/webhooks/{endpoint['id']}/ping", tenant.admin)
    run(clock)
    got = receiver.requests[-1]
    assert len(signatures(got.headers["Loyalty-Signature"])[1]) == 1
    assert verified(rotated.data["secret"], got.headers, got.body)
    assert not verified(endpoint["secret"], got.headers, got.body)


def test_a_redelivered_message_is_not_posted_twice(api: Api, tenant: TenantKeys, hooks: list[Sent],
                                                  receiver: Receiver, clock: Any) -> None:
    endpoint = register(api, tenant.admin, receiver.url, ["report.ready"])
    api.post(f"/v1/webhooks/{endpoint['id']}/ping", tenant.admin)
    bodies = take()
    assert feed(bodies) == {"batchItemFailures": []}
    assert feed(bodies) == {"batchItemFailures": []}  # SQS at-least-once: the same message again
    message = DeliveryMessage.model_validate(json.loads(bodies[0]))
    assert service.deliver(message) == "duplicate"
    assert len(receiver.requests) == 1
    assert feed(["not json"]) == {"batchItemFailures": []}  # malformed: logged and dropped


def test_the_worker_refuses_to_connect_to_loopback_when_not_allowed(api: Api, tenant: TenantKeys,
                                                                    hooks: list[Sent], receiver: Receiver,
                                                                    clock: Any,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint = register(api, tenant.admin, receiver.url, ["report.ready"])
    api.post(f"/v1/webhooks/{endpoint['id']}/ping", tenant.admin)
    monkeypatch.setattr(service, "settings", settings)
    feed(take())
    assert receiver.requests == []
    log = api.get(f"/v1/webhooks/{endpoint['id']}/deliveries", tenant.admin).data["items"][0]
    assert log["status"] == "retrying" and "non-public address" in log["last_error"]


def test_tier_changes_expiring_points_and_ready_reports_are_emitted(api: Api, tenant: TenantKeys, hooks: list[Sent],
                                                                   receiver: Receiver, clock: Any) -> None:
    from chalicelib.services.program import sweeps
    from tests.functional.test_reports import build_all, request_report

    program = {"name": "Main program", "earning": {"rate_bps": 500},
               "redemption": {"point_value": 100, "max_share_bps": 3000}, "expiry_days": 30,
               "tiers": {"metric": "spend", "levels": [{"id": "silver", "name": "Silver", "threshold": 0},
                                                       {"id": "gold", "name": "Gold", "threshold": 100_000}]}}
    assert api.put("/v1/programs/main", tenant.admin, program).status_code == 200
    register(api, tenant.admin, receiver.url, ["tier.changed", "points.expiring", "report.ready"])
    card = issue_card(api, tenant)
    assert api.post("/v1/purchases", tenant.pos, purchase_body(card))
    r = api.post(f"/v1/cards/{card}/tier", tenant.admin, {"tier": "silver", "reason": "Back to silver",
                                                          "assignment_id": "a-1"})
    assert r.status_code == 200, r.data
    run(clock)
    assert [e["data"] for e in receiver.events("tier.changed")] == [
        {"card_number": card, "program_id": None, "previous_tier": "silver", "tier": "gold", "reason": "upgrade"},
        {"card_number": card, "program_id": "main", "previous_tier": "gold", "tier": "silver",
         "reason": "assigned"}]

    clock.advance(days=22)  # 24 November: the points earned on 2 November expire on 2 December, in 8 days
    sweeps.run_scope(tenant.tenant_id, clock.now().date())
    run(clock)
    assert receiver.events("points.expiring") == []
    clock.advance(days=1)
    sweeps.run_scope(tenant.tenant_id, clock.now().date())
    sweeps.run_scope(tenant.tenant_id, clock.now().date())  # a rerun re-emits the same event id
    run(clock)
    [expiring] = receiver.events("points.expiring")
    assert expiring["data"] == {"card_number": card, "program_id": "main", "points": 50,
                                "expires_on": "2026-12-02"}

    report = request_report(api, tenant.admin, {"type": "ledger", "program_id": "main", "from": "2026-11-01",
                                                "to": "2026-11-03"})
    build_all()
    run(clock)
    [ready] = receiver.events("report.ready")
    assert ready["data"]["report_id"] == report["report_id"] and ready["data"]["type"] == "ledger"
    assert ready["data"]["rows"] >= 1 and ready["data"]["size_bytes"] > 0


def test_a_survey_response_is_emitted_with_ids_only(api: Api, tenant: TenantKeys, hooks: list[Sent],
                                                    receiver: Receiver, clock: Any) -> None:
    from tests.functional.test_surveys import _answers, _create, _registration, _respond

    register(api, tenant.admin, receiver.url, ["survey.completed"])
    _create(api, tenant, _registration(reward={"kind": "points", "program_id": "main", "points": 150}))
    r = _respond(api, tenant, "welcome", _answers())
    assert r.status_code == 201, r.data
    run(clock)
    [got] = receiver.requests
    data = got.event["data"]
    assert data["survey_id"] == "welcome" and data["response_id"] == r.data["response_id"]
    assert data["reward_points"] == 150 and data["customer_id"]
    assert set(data) == {"survey_id", "response_id", "customer_id", "receipt_id", "store_id", "reward_points"}
    assert b"Anna" not in got.body and b"example.com" not in got.body.lower() and b"+7916" not in got.body


def test_a_finished_campaign_is_emitted_with_its_counts(api: Api, mailer: TenantKeys,  # noqa: F811
                                                        hooks: list[Sent], receiver: Receiver, clock: Any) -> None:
    tenant = mailer
    register(api, tenant.admin, receiver.url, ["campaign.finished"])
    new_customer(api, tenant.admin, "+79161000001")
    segment = api.post("/v1/segments", tenant.admin, {"name": "Everybody", "filter": {}}).data["segment_id"]
    created = api.post("/v1/campaigns", tenant.admin, {"id": "autumn", "name": "Autumn", "segment_id": segment,
                                                       "channel": "sms", "template_id": "autumn-sms"})
    assert created.status_code == 201, created.data
    drain()
    run(clock)
    [got] = receiver.requests
    data = got.event["data"]
    assert (data["campaign_id"], data["status"]) == ("autumn", "sent")
    assert data["counts"]["targeted"] == 1 and data["finished_at"]
