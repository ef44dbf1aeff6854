"""Campaigns end to end over moto: fan-out in batches of 10, control group, coupons, scheduling, what SNS received."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import boto3

from chalicelib.domain import campaigns as rules
from chalicelib.services.marketing import campaigns
from chalicelib.settings import settings
from chalicelib.storage import queues
from chalicelib.workers import mail
from tests.functional.conftest import Api, TenantKeys
from tests.functional.jobqueue import drain
from tests.functional.test_mail_delivery import mailer, new_customer, rendering, sms_sent  # noqa: F401

SHARED = {"id": "autumn10", "name": "Autumn 10%", "program_id": "main", "mode": "shared", "code": "AUTUMN10",
          "effect": {"kind": "percent_off", "value": 1000}}


def mail_bodies() -> list[str]:
    """Take (and delete) every message on the mail queue."""
    sqs = boto3.client("sqs", region_name=settings.region)
    url = sqs.get_queue_url(QueueName=settings.mail_queue)["QueueUrl"]
    bodies: list[str] = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return bodies
        for m in got:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        bodies += [m["Body"] for m in got]


def deliver(bodies: list[str]) -> None:
    for start in range(0, len(bodies), 10):
        records = [{"messageId": f"m{start + i}", "body": b} for i, b in enumerate(bodies[start:start + 10])]
        assert mail.handle_records(records) == {"batchItemFailures": []}


def seed(api: Api, tenant: TenantKeys) -> tuple[list[str], list[str], str]:
    consenting = [new_customer(api, tenant.admin, f"+791610000{i:02d}", name=f"Anna{i}") for i in range(24)]
    silent = [new_customer(api, tenant.admin, f"+791620000{i:02d}", consents=[], name=f"Olga{i}") for i in range(3)]
    segment = api.post("/v1/segments", tenant.admin, {"name": "Everybody", "filter": {}})
    assert segment.status_code == 201, segment.data
    return consenting, silent, segment.data["segment_id"]


def test_fan_out_holds_out_control_attaches_coupons_and_sends_once(
    api: Api, mailer: TenantKeys, clock: Any, monkeypatch: Any  # noqa: F811
) -> None:
    tenant = mailer
    consenting, silent, segment_id = seed(api, tenant)
    assert api.post("/v1/coupon-campaigns", tenant.admin, SHARED).status_code == 201
    calls: list[int] = []
    real_batch = queues.send_batch
    monkeypatch.setattr(queues, "send_batch", lambda q, m: calls.append(len(m)) or real_batch(q, m))

    created = api.post("/v1/campaigns", tenant.admin, {
        "id": "autumn", "name": "Autumn promo", "segment_id": segment_id, "channel": "sms",
        "template_id": "autumn-sms", "coupon_campaign_id": "autumn10", "holdout_bps": 2000})
    assert created.status_code == 201, created.data
    assert created.data["status"] == "scheduled" and created.data["counts"]["queued"] == 0
    drain()

    everyone = consenting + silent
    control = {c for c in everyone if rules.in_control_group("autumn", c, 2000)}
    targets = [c for c in everyone if c not in control]
    assert 0 < len(control) < len(everyone)
    state = api.get("/v1/campaigns/autumn", tenant.admin).data
    assert state["status"] == "sent"
    assert (state["counts"]["targeted"], state["counts"]["control"], state["counts"]["queued"]) == (
        27, len(control), len(targets))
    assert sum(calls) == len(targets) and len(calls) == -(-len(targets) // 10), "one SQS call per 10 recipients"

    bodies = mail_bodies()
    assert sorted(json.loads(b)["customer_id"] for b in bodies) == sorted(targets)
    assert {json.loads(b)["coupon_code"] for b in bodies} == {"AUTUMN10"}
    deliver(bodies)
    deliver(bodies[:5])
    sent = sms_sent()
    expected = [c for c in targets if c in consenting]
    assert len(sent) == len(expected), "a redelivered message is never sent twice"
    assert all(text.startswith("Hi Anna") and text.endswith("Code AUTUMN10") for _, text in sent)
    counts = api.get("/v1/campaigns/autumn", tenant.admin).data["counts"]
    assert counts["sent"] == len(expected)
    assert counts["suppressed_by_reason"] == ({"no_consent": len(targets) - len(expected)}
                                              if len(targets) > len(expected) else {})
    campaigns.handle_job(campaigns.job_message(tenant.tenant_id, "autumn"))
    assert mail_bodies() == [], "a redelivered fan-out job after the end queues nothing"


def test_scheduled_campaigns_wait_resume_on_budget_and_can_be_cancelled(
    api: Api, mailer: TenantKeys, clock: Any, other_tenant: TenantKeys, monkeypatch: Any  # noqa: F811
) -> None:
    tenant = mailer
    monkeypatch.setattr(campaigns, "SCAN", 5)
    _, _, segment_id = seed(api, tenant)
    later = (clock.now() + timedelta(hours=2)).isoformat()
    body = {"id": "evening", "name": "Evening", "segment_id": segment_id, "channel": "sms",
            "template_id": "autumn-sms", "send_at": later, "holdout_bps": 0}
    assert api.post("/v1/campaigns", tenant.admin, body).status_code == 201
    campaigns.handle_job(campaigns.job_message(tenant.tenant_id, "evening"))
    assert api.get("/v1/campaigns/evening", tenant.admin).data["status"] == "scheduled"
    clock.advance(hours=2)
    campaigns.handle_job(campaigns.job_message(tenant.tenant_id, "evening"), budget_seconds=0)
    first = api.get("/v1/campaigns/evening", tenant.admin).data
    assert first["status"] == "sending" and 0 < first["counts"]["targeted"] < 27, "stopped after one page"
    drain()
    done = api.get("/v1/campaigns/evening", tenant.admin).data
    assert done["status"] == "sent" and done["counts"]["targeted"] == done["counts"]["queued"] == 27
    assert len(mail_bodies()) == 27

    cancelled_body = {**body, "id": "night", "send_at": (clock.now() + timedelta(days=1)).isoformat()}
    assert api.post("/v1/campaigns", tenant.admin, cancelled_body).status_code == 201
    cancelled = api.post("/v1/campaigns/night/cancel", tenant.admin)
    assert cancelled.status_code == 200 and cancelled.data["status"] == "cancelled"
    clock.advance(days=1)
    campaigns.handle_job(campaigns.job_message(tenant.tenant_id, "night"))
    assert mail_bodies() == [] and api.post("/v1/campaigns/night/cancel", tenant.admin).status_code == 409

    assert api.get("/v1/campaigns/evening", other_tenant.admin).status_code == 404
    wrong = api.post("/v1/campaigns", tenant.admin, {**body, "id": "x", "template_id": "autumn-email"})
    assert wrong.status_code == 422 and wrong.data["error"]["code"] == "template_channel"
    missing = api.post("/v1/campaigns", other_tenant.admin, {**body, "id": "y"})
    assert missing.status_code == 404
    dup = api.post("/v1/campaigns", tenant.admin, body)
    assert dup.status_code == 409
