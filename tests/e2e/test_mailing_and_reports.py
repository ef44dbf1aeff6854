"""Mailings, reports and live numbers on the local stack over HTTP, with the local workers doing the work."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from tests.e2e.conftest import LocalStack

WAIT = 90.0


def _until(stack: LocalStack, path: str, secret: str, done: Any) -> dict[str, Any]:
    """Poll `path` until `done(body)`: the local poller runs the workers in the background."""
    deadline = time.monotonic() + WAIT
    while True:
        body = stack.get(path, secret).json()
        if done(body):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.5)


def test_an_email_campaign_is_sent_by_the_workers_and_measured(stack: LocalStack) -> None:
    admin = stack.key("tenant_admin", "coffee-chain")["secret"]
    run = uuid.uuid4().hex[:8]
    settings = stack.request("PUT", "/v1/mail-settings", admin, json={
        "email_from": "news@zerno.example", "weekly_cap": 0, "quiet_hours": {"start": "00:00", "end": "00:00"}})
    assert settings.status_code == 200, settings.text
    template = stack.request("POST", "/v1/templates", admin, json={
        "id": f"hello-{run}", "name": "Hello", "channel": "email", "subject": "Привет, {{ first_name }}",
        "body": "Баланс: {{ balance }}. Отписаться: {{ unsubscribe_url }}"})
    assert template.status_code == 201, template.text
    customer = stack.request("POST", "/v1/customers", admin, json={
        "phone": f"+7916{int(run, 16) % 10_000_000:07d}", "email": f"{run}@example.com", "first_name": "Вера",  # noqa: RUF001
        "tags": [f"e2e-{run}"],
        "consents": [{"kind": "email", "granted": True, "source": "site", "text_version": "2026-09"}]})
    assert customer.status_code == 201, customer.text
    segment = stack.request("POST", "/v1/segments", admin, json={"name": run, "filter": {"tags_any": [f"e2e-{run}"]}})
    assert segment.status_code == 201, segment.text
    campaign = stack.request("POST", "/v1/campaigns", admin, json={
        "id": f"c-{run}", "name": "E2E", "segment_id": segment.json()["segment_id"], "channel": "email",
        "template_id": f"hello-{run}", "holdout_bps": 0})
    assert campaign.status_code == 201, campaign.text

    sent = _until(stack, f"/v1/campaigns/c-{run}", admin, lambda b: b["counts"]["sent"] >= 1)
    assert sent["status"] == "sent"
    assert {k: sent["counts"][k] for k in ("targeted", "control", "queued", "sent", "failed", "suppressed")} == {
        "targeted": 1, "control": 0, "queued": 1, "sent": 1, "failed": 0, "suppressed": 0}
    results = stack.get(f"/v1/campaigns/c-{run}/results", admin)
    assert results.status_code == 200, results.text
    assert results.json()["delivered"] == 1 and results.json()["window_open"] is True


def test_a_purchase_shows_on_the_dashboard_and_a_report_downloads(stack: LocalStack) -> None:
    admin = stack.key("tenant_admin", "coffee-chain")["secret"]
    pos = stack.key("pos", "coffee-chain")["secret"]
    before = stack.get("/v1/dashboard", admin)
    assert before.status_code == 200, before.text
    card = stack.request("POST", "/v1/cards", pos, json={"program_id": "zerno-points"}).json()["number"]
    bought = stack.request("POST", "/v1/purchases", pos, json={
        "receipt_id": f"e2e-{uuid.uuid4().hex[:8]}", "card_number": card, "store_id": "msk-tverskaya",
        "total": 35_000, "items": [{"sku": "latte", "amount": 35_000}]})
    assert bought.status_code == 200, bought.text
    after = stack.get("/v1/dashboard", admin).json()
    assert after["today"]["receipts"] == before.json()["today"]["receipts"] + 1
    assert after["today"]["revenue"] == before.json()["today"]["revenue"] + 35_000

    today = datetime.now(UTC).date()
    for fmt, magic in (("csv", b"\xef\xbb\xbf"), ("xlsx", b"PK")):
        asked = stack.request("POST", "/v1/reports", admin, json={
            "type": "ledger", "program_id": "zerno-points", "from": today.isoformat(),
            "to": (today + timedelta(days=1)).isoformat(), "format": fmt})
        assert asked.status_code == 202, asked.text
        report = _until(stack, f"/v1/reports/{asked.json()['report_id']}", admin,
                        lambda b: b["status"] in ("ready", "failed"))
        assert report["status"] == "ready", report
        assert report["rows"] >= 1
        file = requests.get(report["download_url"], timeout=10)
        assert file.status_code == 200
        assert file.content.startswith(magic)
        if fmt == "csv":
            assert card in file.content.decode("utf-8-sig")
