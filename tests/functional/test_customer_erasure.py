"""Erasure and export: after an erase, no stored item of any table holds the customer's personal fields."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.storage.loyalty import ledger_sum
from chalicelib.storage.tables import TABLES
from tests.functional import phone_codes
from tests.functional.conftest import Api, TenantKeys
from tests.functional.test_pos_rules import buy

PERSON = {"phone": "+7 916 765-43-21", "email": "evlampia.unique@example.org", "first_name": "Евлампия",
          "last_name": "Ксенофонтова", "middle_name": "Пантелеймоновна", "gender": "female",
          "birth_date": "1987-06-23", "children": [{"name": "Аристарх", "birth_date": "2015-03-09"}],
          "preferences": ["knitting-yarn"], "tags": ["zebra-lover"],
          "acquisition": {"channel": "event", "source": "crafts-fair-kazan", "campaign": "yarn-week"},
          "consents": [{"kind": "sms", "granted": True, "source": "tablet", "text_version": "2026-09"}]}
SURVEY = {"id": "feedback-form", "title": "Tell us", "kind": "registration", "status": "active",
          "questions": [{"id": "phone", "type": "phone", "label": "Phone", "required": True, "maps_to": "phone"},
                        {"id": "comment", "type": "text", "label": "Anything?", "max_length": 200},
                        {"id": "stars", "type": "rating", "label": "Rate us", "scale": 5}],
          "reward": {"kind": "none"}}
COMMENT = "Бариста Севастиан помнит мой заказ"
TRACES = ["9167654321", "Севастиан", "evlampia.unique", "Евлампия", "Ксенофонтова", "Пантелеймоновна", "1987-06-23",
          "Аристарх", "2015-03-09", "knitting-yarn", "zebra-lover", "crafts-fair-kazan", "yarn-week"]


def every_item() -> list[str]:
    """Every item of every table, as text (keys and attributes)."""
    items = []
    for model in TABLES:
        for rec in model.scan():
            items.append(json.dumps(rec.serialize(), ensure_ascii=False, default=str))
    return items


def traces(items: list[str]) -> dict[str, int]:
    return {t: n for t in TRACES if (n := sum(t in item for item in items))}


def seed(api: Api, tenant: TenantKeys, clock: Any) -> tuple[str, str]:
    created = api.post("/v1/customers", tenant.admin, PERSON, headers={"Idempotency-Key": "reg-1"})
    assert created.status_code == 201, created.data
    cid = created.data["customer_id"]
    card = api.post("/v1/cards", tenant.pos, {"program_id": "main", "customer": {"phone": PERSON["phone"]}},
                    headers={"Idempotency-Key": "card-1"}).data["number"]
    assert buy(api, tenant.pos, "r1", card, 50_000).status_code == 200
    clock.advance(minutes=1)
    assert buy(api, tenant.pos, "r2", card, 20_000, redeem=10).status_code == 200
    clock.advance(minutes=5)
    consent = {"consents": [{"kind": "email", "granted": True, "source": "pos", "text_version": "2026-10"}]}
    assert api.post(f"/v1/customers/{cid}/consents", tenant.pos, consent,
                    headers={"Idempotency-Key": "consent-1"}).status_code == 200
    assert api.patch(f"/v1/customers/{cid}", tenant.admin, {"preferred_channel": "email"}).status_code == 200
    assert api.post("/v1/surveys", tenant.admin, SURVEY).status_code == 201
    answered = api.post(f"/v1/public/surveys/{tenant.tenant_id}/feedback-form/responses", None,
                        {"answers": {"phone": PERSON["phone"], "comment": COMMENT, "stars": 5},
                         "phone_verification": phone_codes.proof_for(api, tenant.tenant_id, PERSON["phone"])})
    assert answered.status_code == 201, answered.data
    return cid, card


def test_export_holds_everything_stored(api: Api, tenant: TenantKeys, clock: Any) -> None:
    cid, card = seed(api, tenant, clock)
    r = api.get(f"/v1/customers/{cid}/export", tenant.admin)
    assert r.status_code == 200
    data = r.data
    assert data["customer"]["last_name"] == "Ксенофонтова" and data["customer"]["children"][0]["name"] == "Аристарх"
    assert data["customer"]["acquisition"]["source"] == "crafts-fair-kazan"
    assert [(c["kind"], c["granted"]) for c in data["consent_history"]] == [("sms", True), ("email", True)]
    assert [c["number"] for c in data["cards"]] == [card]
    assert [(e["type"], e["points"]) for e in data["cards"][0]["ledger"]] == [
        ("accrual", 9), ("redemption", -10), ("accrual", 25)], "newest first"
    assert data["cards"][0]["balance"] == 24 and data["truncated"] is False
    assert [(r["survey_id"], r["answers"]["comment"], r["answers"]["stars"]) for r in data["survey_responses"]] == [
        ("feedback-form", COMMENT, 5)]
    assert api.get(f"/v1/customers/{cid}/export", tenant.support).status_code == 403


def test_erase_leaves_no_trace_and_keeps_the_ledger(api: Api, tenant: TenantKeys, clock: Any) -> None:
    cid, card = seed(api, tenant, clock)
    assert traces(every_item()), "the seed stored the personal fields somewhere"
    refused = api.post(f"/v1/customers/{cid}/erase", tenant.admin, {"confirm": "yes", "reason": "request"})
    assert refused.status_code == 400
    r = api.post(f"/v1/customers/{cid}/erase", tenant.admin, {"confirm": "erase", "reason": "data subject request"})
    assert r.status_code == 200, r.data
    assert r.data["status"] == "erased" and r.data["phone"] is None and r.data["tags"] == []
    assert r.data["acquisition"] == {"channel": "event"} and r.data["cards"] == [card]

    assert traces(every_item()) == {}
    results = api.get("/v1/surveys/feedback-form/results", tenant.admin)
    stars = next(q for q in results.data["questions"] if q["question_id"] == "stars")
    assert results.data["responses"] == 1 and stars["average_x100"] == 500, "non-personal answers still count"

    assert api.get(f"/v1/customers/{cid}", tenant.admin).data["erased_at"] is not None
    assert api.get("/v1/customers?phone=%2B79167654321", tenant.admin).status_code == 404
    assert api.get("/v1/customers/lookup?phone=%2B79167654321", tenant.pos).status_code == 404
    card_now = api.get(f"/v1/cards/{card}", tenant.pos).data
    assert card_now["balance"] == 24 and ledger_sum(tenant.tenant_id, card) == 24
    assert api.post(f"/v1/customers/{cid}/erase", tenant.admin,
                    {"confirm": "erase", "reason": "again"}).status_code == 200
    patched = api.patch(f"/v1/customers/{cid}", tenant.admin, {"first_name": "Back"})
    assert patched.status_code == 410 and patched.data["error"]["code"] == "customer_erased"
    fresh = api.post("/v1/customers", tenant.admin, {"phone": "+79167654321"})
    assert fresh.status_code == 201 and fresh.data["customer_id"] != cid and fresh.data["cards"] == []
    audit = api.get("/v1/audit?limit=200", tenant.admin)
    if audit.status_code == 200:
        assert "customer.erased" in {e["action"] for e in audit.data["items"]}
