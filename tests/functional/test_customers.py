"""Customer profiles through the API: one per phone, derived stats, consents, merging, minimal-data mode, isolation."""

from __future__ import annotations

from typing import Any

from chalicelib.services.customers import customers as customer_service
from chalicelib.storage import people
from tests.functional import phone_codes
from tests.functional.conftest import Api, TenantKeys
from tests.functional.test_pos_rules import buy

ANNA = {"phone": "8 (916) 123-45-67", "email": "Anna.Petrova@Example.com", "first_name": "Анна",
        "last_name": "Петрова", "gender": "female", "birth_date": "1990-04-12",
        "children": [{"name": "Миша", "birth_date": "2018-01-05"}], "preferences": ["coffee", "desserts"],
        "tags": ["vip"], "preferred_channel": "sms",
        "acquisition": {"channel": "site", "source": "yandex", "medium": "cpc", "campaign": "autumn"},
        "consents": [{"kind": "sms", "granted": True, "source": "site", "text_version": "2026-09"},
                     {"kind": "personal_data", "granted": True, "source": "site", "text_version": "2026-09"}]}


def create(api: Api, key: str, body: dict[str, Any]) -> dict[str, Any]:
    r = api.post("/v1/customers", key, body)
    assert r.status_code == 201, r.data
    return r.data


def card_for(api: Api, tenant: TenantKeys, phone: str) -> str:
    r = api.post("/v1/cards", tenant.pos, {"program_id": "main", "customer": {"phone": phone}})
    assert r.status_code == 201, r.data
    return r.data["number"]


def test_profile_is_normalised_stored_and_read_back(api: Api, tenant: TenantKeys, clock: Any) -> None:
    customer = create(api, tenant.admin, ANNA)
    assert customer["phone"] == "+79161234567" and customer["email"] == "anna.petrova@example.com"
    assert customer["first_name"] == "Анна" and customer["birth_date"] == "1990-04-12"
    assert customer["children"] == [{"name": "Миша", "birth_date": "2018-01-05", "gender": None}]
    assert customer["tags"] == ["vip"] and customer["preferences"] == ["coffee", "desserts"]
    assert customer["acquisition"] == {"channel": "site", "source": "yandex", "medium": "cpc", "campaign": "autumn"}
    assert {c["kind"]: (c["granted"], c["text_version"]) for c in customer["consents"]} == {
        "sms": (True, "2026-09"), "personal_data": (True, "2026-09")}
    assert len(customer["referral"]["code"]) == 8 and customer["status"] == "active"
    assert customer["stats"]["purchase_count"] == 0 and customer["cards"] == []

    again = api.post("/v1/customers", tenant.pos, {"phone": "+7 916 123 45 67"})
    assert again.status_code == 409 and again.data["error"]["code"] == "customer_exists"
    assert again.data["error"]["details"] == [{"field": "phone", "issue": customer["customer_id"]}]

    by_phone = api.get("/v1/customers?phone=89161234567", tenant.support)
    assert by_phone.status_code == 200 and by_phone.data["customer_id"] == customer["customer_id"]
    bad = api.post("/v1/customers", tenant.admin, {"phone": "+7916", "email": "not-an-email"})
    assert bad.status_code == 400 and {d["field"] for d in bad.data["error"]["details"]} == {"phone", "email"}
    assert api.post("/v1/customers", tenant.admin, {"first_name": "Nobody"}).status_code == 400


def test_personal_fields_live_only_in_the_personal_data_table(api: Api, tenant: TenantKeys) -> None:
    customer = create(api, tenant.admin, ANNA)
    stored = people.get_person(tenant.tenant_id, customer["customer_id"])
    assert stored is not None and stored.doc.phone == "+79161234567" and stored.doc.last_name == "Петрова"
    from chalicelib.storage.tables import LoyaltyRecord

    texts = [str(r.doc.as_dict()) + r.pk + r.sk for r in LoyaltyRecord.scan()]
    assert texts and not [t for t in texts if "9161234567" in t or "Петрова" in t or "example.com" in t]


def test_update_changes_removes_and_moves_the_phone(api: Api, tenant: TenantKeys) -> None:
    anna = create(api, tenant.admin, ANNA)
    other = create(api, tenant.admin, {"phone": "+79160000001"})
    path = f"/v1/customers/{anna['customer_id']}"
    r = api.patch(path, tenant.pos, {"first_name": "Аня", "birth_date": None, "tags": ["vip", "regular"],
                                     "phone": "+7 903 111-22-33"})
    assert r.status_code == 200, r.data
    assert r.data["first_name"] == "Аня" and r.data["birth_date"] is None and r.data["last_name"] == "Петрова"
    assert r.data["phone"] == "+79031112233" and r.data["tags"] == ["vip", "regular"]
    assert api.get("/v1/customers?phone=%2B79161234567", tenant.admin).status_code == 404
    assert api.get("/v1/customers?phone=%2B79031112233", tenant.admin).data["customer_id"] == anna["customer_id"]
    taken = api.patch(path, tenant.admin, {"phone": "+79160000001"})
    assert taken.status_code == 409 and taken.data["error"]["code"] == "phone_taken"
    assert taken.data["error"]["details"][0]["issue"] == other["customer_id"]
    assert api.get(path, tenant.admin).data["phone"] == "+79031112233"
    assert api.patch(path, tenant.support, {"first_name": "X"}).status_code == 403


def test_minimal_data_mode_refuses_switched_off_fields(api: Api, tenant: TenantKeys) -> None:
    r = api.patch(f"/v1/agency/tenants/{tenant.tenant_id}", tenant.agency,
                  {"privacy": {"disabled_fields": ["birth_date", "children"], "consent_text_version": "v7"}})
    assert r.status_code == 200 and r.data["privacy"]["disabled_fields"] == ["birth_date", "children"]
    refused = api.post("/v1/customers", tenant.admin, ANNA)
    assert refused.status_code == 422 and refused.data["error"]["code"] == "field_disabled"
    assert {d["field"] for d in refused.data["error"]["details"]} == {"birth_date", "children"}
    assert people.customer_by_phone(tenant.tenant_id, "+79161234567") is None, "nothing stored"
    card = api.post("/v1/cards", tenant.pos, {"program_id": "main",
                                              "customer": {"phone": "+79161234567", "birth_date": "1990-01-01"}})
    assert card.status_code == 422 and card.data["error"]["details"][0]["field"] == "birth_date"
    lean = {k: v for k, v in ANNA.items() if k not in ("birth_date", "children")}
    created = create(api, tenant.admin, lean)
    assert created["birth_date"] is None and created["first_name"] == "Анна"
    patched = api.patch(f"/v1/customers/{created['customer_id']}", tenant.admin, {"birth_date": "1991-01-01"})
    assert patched.status_code == 422


def test_stats_follow_purchases_and_refunds(api: Api, tenant: TenantKeys, clock: Any) -> None:
    api.post("/v1/stores", tenant.admin, {"id": "spb-01", "name": "Nevsky 1", "region": "spb"})
    card = card_for(api, tenant, "+79161234567")
    assert buy(api, tenant.pos, "r1", card, 30_000, category="coffee").status_code == 200
    clock.advance(days=2)
    assert buy(api, tenant.pos, "r2", card, 10_000, category="tea", store="spb-01").status_code == 200
    assert buy(api, tenant.pos, "r2", card, 10_000, category="tea", store="spb-01").data["replayed"] is True
    clock.advance(days=1)
    assert buy(api, tenant.pos, "r3", card, 20_000, category="tea", store="spb-01").status_code == 200
    customer = api.get("/v1/customers?card=" + card, tenant.admin).data
    assert customer["stats"] == {
        "purchase_count": 3, "refund_count": 0, "total_spend": 60_000, "average_receipt": 20_000,
        "first_purchase_at": "2026-11-02T10:00:00Z", "last_purchase_at": "2026-11-05T10:00:00Z",
        "favourite_store": "spb-01", "favourite_category": "coffee"}
    refund = api.post("/v1/refunds", tenant.pos, {"refund_id": "f1", "receipt_id": "r1",
                                                  "items": [{"sku": "latte", "quantity": 1, "amount": 30_000}]})
    assert refund.status_code == 200, refund.data
    stats = api.get(f"/v1/customers/{customer['customer_id']}", tenant.admin).data["stats"]
    assert stats["total_spend"] == 30_000 and stats["refund_count"] == 1 and stats["purchase_count"] == 3
    assert stats["favourite_category"] == "tea" and stats["average_receipt"] == 10_000


def test_consents_history_and_one_click_withdrawal(api: Api, tenant: TenantKeys, clock: Any) -> None:
    customer = create(api, tenant.admin, ANNA)
    cid = customer["customer_id"]
    clock.advance(hours=1)
    r = api.post(f"/v1/customers/{cid}/consents", tenant.pos,
                 {"consents": [{"kind": "email", "granted": True, "source": "pos", "text_version": "2026-10"}]})
    assert r.status_code == 200
    assert {c["kind"]: c["granted"] for c in r.data["consents"]} == {"sms": True, "email": True,
                                                                     "personal_data": True}
    token = customer_service.unsubscribe_token(tenant.tenant_id, cid, "sms")
    clock.advance(hours=1)
    first = api.post("/v1/public/unsubscribe", None, {"token": token})
    assert first.status_code == 200 and first.data["kind"] == "sms" and first.data["granted"] is False
    assert api.post("/v1/public/unsubscribe", None, {"token": token}).status_code == 200
    sms = next(c for c in api.get(f"/v1/customers/{cid}", tenant.admin).data["consents"] if c["kind"] == "sms")
    assert sms == {"kind": "sms", "granted": False, "at": "2026-11-02T12:00:00Z", "source": "link",
                   "text_version": "2026-09", "actor": "link"}
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    bad = api.post("/v1/public/unsubscribe", None, {"token": tampered})
    assert bad.status_code == 400 and bad.data["error"]["code"] == "invalid_link"
    history = api.get(f"/v1/customers/{cid}/export", tenant.admin).data["consent_history"]
    assert [(h["kind"], h["granted"], h["source"]) for h in history] == [
        ("sms", True, "site"), ("personal_data", True, "site"), ("email", True, "pos"), ("sms", False, "link")]


def test_merge_moves_cards_history_stats_and_missing_fields(api: Api, tenant: TenantKeys, clock: Any) -> None:
    keep_card = card_for(api, tenant, "+79161234567")
    dup = create(api, tenant.admin, {"phone": "+79035550000", "email": "anna@example.com", "last_name": "Петрова",
                                     "tags": ["event"]})
    dup_card = api.post("/v1/cards", tenant.pos, {"program_id": "main", "customer": {"phone": "+79035550000"}}
                        ).data["number"]
    assert buy(api, tenant.pos, "r1", keep_card, 10_000).status_code == 200
    assert buy(api, tenant.pos, "r2", dup_card, 40_000, category="tea").status_code == 200
    survey = {"id": "hello", "title": "Hello", "kind": "registration", "status": "active", "reward": {"kind": "none"},
              "questions": [{"id": "phone", "type": "phone", "label": "Phone", "required": True, "maps_to": "phone"},
                            {"id": "note", "type": "text", "label": "Note"}]}
    assert api.post("/v1/surveys", tenant.admin, survey).status_code == 201
    assert api.post(f"/v1/public/surveys/{tenant.tenant_id}/hello/responses", None,
                    {"answers": {"phone": "+79035550000", "note": "love the cakes"},
                     "phone_verification": phone_codes.proof_for(api, tenant.tenant_id, "+79035550000")}
                    ).status_code == 201
    keep_id = api.get("/v1/customers?card=" + keep_card, tenant.admin).data["customer_id"]
    merged = api.post(f"/v1/customers/{keep_id}/merge", tenant.admin, {"duplicate_id": dup["customer_id"]})
    assert merged.status_code == 200, merged.data
    data = merged.data
    assert sorted(data["cards"]) == sorted([keep_card, dup_card])
    assert data["phone"] == "+79161234567" and data["email"] == "anna@example.com" and data["last_name"] == "Петрова"
    assert data["tags"] == ["event"]
    assert data["stats"]["purchase_count"] == 2 and data["stats"]["total_spend"] == 50_000
    assert data["stats"]["favourite_category"] == "tea"
    gone = api.get(f"/v1/customers/{dup['customer_id']}", tenant.admin).data
    assert gone["status"] == "merged" and gone["merged_into"] == keep_id and gone["cards"] == []
    assert api.get("/v1/customers?phone=%2B79035550000", tenant.admin).data["customer_id"] == keep_id
    assert api.get(f"/v1/cards/{dup_card}", tenant.pos).data["customer_id"] == keep_id
    ledger = api.get(f"/v1/cards/{dup_card}/transactions", tenant.admin).data["items"]
    assert [e["receipt_id"] for e in ledger] == ["r2"]
    assert buy(api, tenant.pos, "r3", dup_card, 10_000).status_code == 200
    assert api.get(f"/v1/customers/{keep_id}", tenant.admin).data["stats"]["purchase_count"] == 3
    again = api.post(f"/v1/customers/{keep_id}/merge", tenant.admin, {"duplicate_id": dup["customer_id"]})
    assert again.status_code == 200 and again.data["stats"]["purchase_count"] == 3
    itself = api.post(f"/v1/customers/{keep_id}/merge", tenant.admin, {"duplicate_id": keep_id})
    assert itself.status_code == 422 and itself.data["error"]["code"] == "same_customer"
    assert people.get_person(tenant.tenant_id, dup["customer_id"]) is None
    answers = api.get(f"/v1/customers/{keep_id}/export", tenant.admin).data["survey_responses"]
    assert [(r["survey_id"], r["customer_id"], r["answers"]["note"]) for r in answers] == [
        ("hello", keep_id, "love the cakes")]
    listed = api.get("/v1/surveys/hello/responses", tenant.admin).data["items"]
    assert [(r["customer_id"], r["answers"]["note"]) for r in listed] == [(keep_id, "love the cakes")]


def test_another_tenant_never_reaches_a_customer(api: Api, tenant: TenantKeys, other_tenant: TenantKeys) -> None:
    anna = create(api, tenant.admin, ANNA)
    cid = anna["customer_id"]
    mine = create(api, other_tenant.admin, {"phone": "+79161234567"})
    assert mine["customer_id"] != cid, "one customer per phone per tenant, not across tenants"
    for method, path, body in [("GET", f"/v1/customers/{cid}", None), ("PATCH", f"/v1/customers/{cid}", {"tags": []}),
                               ("GET", f"/v1/customers/{cid}/export", None),
                               ("POST", f"/v1/customers/{cid}/erase", {"confirm": "erase", "reason": "x"}),
                               ("POST", f"/v1/customers/{mine['customer_id']}/merge", {"duplicate_id": cid}),
                               ("POST", f"/v1/customers/{cid}/consents", {"consents": [
                                   {"kind": "sms", "granted": False, "source": "pos", "text_version": "1"}]})]:
        r = api.call(method, path, other_tenant.admin, body)
        assert r.status_code == 404, (method, path, r.data)
        assert "Петрова" not in str(r.data)
    found = api.get("/v1/customers?phone=%2B79161234567", other_tenant.admin).data
    assert found["customer_id"] == mine["customer_id"] and found["last_name"] is None
    assert api.get(f"/v1/customers/{cid}", tenant.admin).data["consents"][0]["granted"] is True


def test_idempotent_create_keeps_no_personal_fields_in_its_replay(api: Api, tenant: TenantKeys) -> None:
    first = api.post("/v1/customers", tenant.admin, ANNA, headers={"Idempotency-Key": "k-1"})
    second = api.post("/v1/customers", tenant.admin, ANNA, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == second.status_code == 201
    assert first.data["phone"] == "+79161234567"
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.data == first.data, "a replay answers the customer as stored now"
    api.patch(f"/v1/customers/{first.data['customer_id']}", tenant.admin, {"first_name": "Аня"})
    third = api.post("/v1/customers", tenant.admin, ANNA, headers={"Idempotency-Key": "k-1"})
    assert third.status_code == 201 and third.data["first_name"] == "Аня"


def test_a_stage_without_link_secret_answers_503_not_a_crash(api: Api, tenant: TenantKeys, monkeypatch: Any) -> None:
    import dataclasses

    from chalicelib.services.tenancy import signing

    token = customer_service.unsubscribe_token(tenant.tenant_id, create(api, tenant.admin, ANNA)["customer_id"], "sms")
    monkeypatch.setattr(signing, "settings", dataclasses.replace(signing.settings, link_secret=""))
    r = api.post("/v1/public/unsubscribe", None, {"token": token})
    assert r.status_code == 503 and r.data["error"]["code"] == "not_configured"
