"""Reconciliation over real stored cards: clean after real traffic, exact when a card is tampered with."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest

from app import app
from chalicelib import cli
from chalicelib.observability import logger
from chalicelib.services.reporting.reconciliation import Mismatch, reconcile
from chalicelib.storage.loyalty import CARD_SK, card_pk
from chalicelib.storage.tables import LoyaltyRecord
from tests.functional.conftest import Api, TenantKeys
from tests.functional.jobqueue import receive_all, run_worker
from tests.functional.test_pos_rules import buy, new_card, set_program


def traffic(api: Api, tenant: TenantKeys) -> list[str]:
    """Two cards with accruals, a redemption and a partial refund: 5 ledger entries in all."""
    set_program(api, tenant, pending_days=0)
    first, second = new_card(api, tenant), new_card(api, tenant, phone="+79160000002")
    assert buy(api, tenant.pos, "r1", first, 100_000).status_code == 200          # +50
    assert buy(api, tenant.pos, "r2", first, 10_000, redeem=20).status_code == 200  # -20, +4
    assert buy(api, tenant.pos, "r3", second, 40_000).status_code == 200          # +20
    refund = {"refund_id": "f1", "receipt_id": "r3", "items": [{"sku": "latte", "quantity": 1, "amount": 20_000}]}
    r = api.post("/v1/refunds", tenant.pos, refund)
    assert r.status_code == 200, r.data
    return [first, second]


def tamper(tenant_id: str, number: str, points: int) -> None:
    """Add points to the card's first lot behind the ledger's back (what a bug outside a transaction would do)."""
    rec = LoyaltyRecord.get(card_pk(tenant_id, number), CARD_SK)
    doc: dict[str, Any] = rec.doc.as_dict()
    doc["wallet"]["lots"][0]["points"] += points
    rec.doc = doc
    rec.save()


def test_real_traffic_reconciles_with_exact_counts(api: Api, tenant: TenantKeys) -> None:
    traffic(api, tenant)
    report = reconcile(tenant.tenant_id)
    assert report.ok, report.mismatches
    assert (report.cards, report.entries) == (2, 5)


def test_a_tampered_card_is_named_in_its_scope_only_and_the_cli_fails(
    api: Api, tenant: TenantKeys, other_tenant: TenantKeys, capsys: pytest.CaptureFixture[str]
) -> None:
    traffic(api, tenant)
    theirs = traffic(api, other_tenant)[0]
    tamper(other_tenant.tenant_id, theirs, 7)
    assert reconcile(tenant.tenant_id).ok, "another tenant's damage is not this tenant's finding"
    expected = Mismatch(other_tenant.tenant_id, theirs, "points", 41, 34)
    assert reconcile(other_tenant.tenant_id).mismatches == [expected]
    everyone = reconcile()
    assert everyone.mismatches == [expected] and everyone.cards >= 4

    assert cli.main(["reconcile", "--scope", tenant.tenant_id], target=cli.Target.as_configured()) == 0
    assert "2 card(s), 5 ledger entries: all balances equal their ledgers" in capsys.readouterr().out
    assert cli.main(["reconcile"], target=cli.Target.as_configured()) == 1
    out = capsys.readouterr().out
    assert f"MISMATCH {other_tenant.tenant_id} card {theirs}: points: card 41, ledger 34" in out
    assert "1 mismatch(es)" in out


SCHEDULED = {"version": "0", "id": "e1", "detail-type": "Scheduled Event", "source": "aws.events",
             "account": "123456789012", "time": "2026-12-03T03:00:00Z", "region": "eu-central-1",
             "resources": [], "detail": {}}


def test_the_nightly_schedule_reconciles_every_scope_and_counts_mismatches_in_a_metric(
    api: Api, tenant: TenantKeys, other_tenant: TenantKeys, capsys: pytest.CaptureFixture[str]
) -> None:
    traffic(api, tenant)
    theirs = traffic(api, other_tenant)[0]
    tamper(other_tenant.tenant_id, theirs, 7)
    receive_all()

    app.handler_map["nightly_reconciliation"](SCHEDULED, None)
    jobs = [json.loads(body) for body in receive_all()]
    assert sorted((job["job"], job["scope"]) for job in jobs) == sorted([
        ("reconcile.scope", other_tenant.tenant_id), ("reconcile.scope", tenant.tenant_id)])
    assert receive_all() == [], "one job per scope, nothing else"

    buffer = io.StringIO()
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    previous = handler.setStream(buffer)
    capsys.readouterr()
    try:
        assert run_worker([json.dumps(job) for job in jobs]) == {"batchItemFailures": []}
    finally:
        handler.setStream(previous)
    lines = [json.loads(line) for line in buffer.getvalue().splitlines() + capsys.readouterr().out.splitlines()
             if line.startswith("{")]
    metrics = {line["scope"]: line for line in lines if "ReconciliationMismatches" in line}
    assert {scope: line["ReconciliationMismatches"] for scope, line in metrics.items()} == {
        tenant.tenant_id: [0.0], other_tenant.tenant_id: [1.0]}
    emf = metrics[other_tenant.tenant_id]["_aws"]["CloudWatchMetrics"][0]
    assert (emf["Namespace"], emf["Dimensions"], metrics[other_tenant.tenant_id]["service"]) == (
        "Loyalty", [["service"]], "loyalty"), "the dimensions the alarm in infra/template.py names"
    found = [line for line in lines if line.get("message") == "reconciliation mismatch"]
    assert [(f["scope"], f["card"], f["field"], f["card_value"], f["ledger_value"]) for f in found] == [
        (other_tenant.tenant_id, theirs, "points", 41, 34)]
