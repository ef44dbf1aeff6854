"""The customer base on the local stack over HTTP: a survey answered from a tablet, a referral paid once, erasure."""

from __future__ import annotations

import re
import uuid

import requests

from tests.e2e.conftest import LocalStack

SURVEY = {"title": "Join Zerno", "kind": "registration", "status": "active",
          "questions": [{"id": "phone", "type": "phone", "label": "Phone", "required": True, "maps_to": "phone"},
                        {"id": "name", "type": "text", "label": "Name", "maps_to": "first_name"},
                        {"id": "sms", "type": "consent", "label": "SMS offers", "consent_kind": "sms",
                         "consent_text_version": "2026-09"}],
          "reward": {"kind": "card", "program_id": "zerno-points"}}


def test_survey_referral_and_erasure_over_http(stack: LocalStack) -> None:
    admin = stack.key("tenant_admin", "coffee-chain")["secret"]
    pos = stack.key("pos", "coffee-chain")["secret"]
    survey_id = f"join-{uuid.uuid4().hex[:8]}"
    created = stack.request("POST", "/v1/surveys", admin, json={"id": survey_id, **SURVEY})
    assert created.status_code == 201, created.text

    member = stack.request("POST", "/v1/customers", pos, json={"phone": "+7 916 555-00-11"}).json()
    code = member["referral"]["code"]
    unverified = stack.request("POST", f"/v1/public/surveys/coffee-chain/{survey_id}/responses", None,
                               json={"answers": {"phone": "+7 916 555-00-11", "name": "Mallory", "sms": True}})
    assert unverified.status_code == 201 and unverified.json()["verified"] is False, unverified.text
    assert stack.get("/v1/customers?phone=%2B79165550011", admin).json()["first_name"] is None

    started = stack.request("POST", "/v1/public/verifications/coffee-chain", None, json={"phone": "8 916 555 00 22"})
    assert started.status_code == 201, started.text
    [sms] = [m for m in requests.get(f"http://127.0.0.1:{stack.moto_port}/_local/sms", timeout=10).json()
             if m["to"] == "+79165550022"]
    sms_code = re.search(r"\b(\d{6})\b", sms["text"])
    assert sms_code, sms
    checked = stack.request("POST", f"/v1/public/verifications/coffee-chain/{started.json()['verification_id']}/check",
                            None, json={"phone": "+79165550022", "code": sms_code.group(1)})
    assert checked.status_code == 200, checked.text
    answered = stack.request("POST", f"/v1/public/surveys/coffee-chain/{survey_id}/responses", None,
                             json={"answers": {"phone": "8 916 555 00 22", "name": "Варвара", "sms": True},
                                   "phone_verification": checked.json()["proof"]})
    assert answered.status_code == 201 and answered.json()["verified"] is True, answered.text
    card = answered.json()["reward"]["card_number"]
    friend = stack.get("/v1/customers?phone=%2B79165550022", admin).json()
    assert friend["first_name"] == "Варвара" and friend["cards"] == [card]
    assert [(c["kind"], c["granted"]) for c in friend["consents"]] == [("sms", True)]
    assert friend["referral"]["referred_by"] is None, "a survey answer does not carry a referral code"

    invited = stack.request("POST", "/v1/cards", pos, json={"program_id": "zerno-points", "customer": {
        "phone": "+79165550033", "referral_code": code}})
    assert invited.status_code == 201, invited.text
    member_card = stack.request("POST", "/v1/cards", pos, json={"program_id": "zerno-points", "customer": {
        "phone": "+79165550011"}}).json()["number"]
    receipt = {"receipt_id": f"e2e-{uuid.uuid4().hex[:8]}", "card_number": invited.json()["number"],
               "store_id": "msk-tverskaya", "total": 40_000, "items": [{"sku": "latte", "amount": 40_000}]}
    first = stack.request("POST", "/v1/purchases", pos, json=receipt)
    again = stack.request("POST", "/v1/purchases", pos, json=receipt)
    assert first.status_code == again.status_code == 200, first.text
    assert first.json()["referral_points"] == 100 and again.json()["replayed"] is True
    member_ledger = stack.get(f"/v1/cards/{member_card}/transactions", admin).json()["items"]
    assert [(e["type"], e["points"]) for e in member_ledger] == [("bonus", 200)]

    erased = stack.request("POST", f"/v1/customers/{friend['customer_id']}/erase", admin,
                           json={"confirm": "erase", "reason": "asked at the counter"})
    assert erased.status_code == 200 and erased.json()["first_name"] is None
    assert stack.get("/v1/customers?phone=%2B79165550022", admin).status_code == 404
