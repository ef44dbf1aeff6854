"""Surveys: definitions, the public form, customers and consents from answers, rewards once, limits, feedback."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.domain.phones import normalise
from chalicelib.storage import coupons as coupon_store
from chalicelib.storage.tables import LoyaltyRecord
from tests.functional import phone_codes
from tests.functional.conftest import Api, TenantKeys

BASE = "/v1/surveys"
PHONE = "+79161234567"
TEXT = "Tables by the window are too cold, XJ-7731"


def _public(tenant_id: str, survey_id: str) -> str:
    return f"/v1/public/surveys/{tenant_id}/{survey_id}"


def _registration(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "welcome", "title": "Join our club", "kind": "registration", "status": "active",
        "questions": [
            {"id": "phone", "type": "phone", "label": "Your phone", "required": True, "maps_to": "phone"},
            {"id": "name", "type": "text", "label": "Your first name", "maps_to": "first_name"},
            {"id": "born", "type": "date", "label": "Birthday", "maps_to": "birth_date"},
            {"id": "mail", "type": "email", "label": "E-mail", "maps_to": "email"},
            {"id": "comment", "type": "text", "label": "Anything to tell us?", "max_length": 200},
            {"id": "drink", "type": "single_choice", "label": "Your drink",
             "options": [{"id": "coffee", "label": "Coffee"}, {"id": "tea", "label": "Tea"}]},
            {"id": "likes", "type": "multiple_choice", "label": "You like", "maps_to": "tags",
             "options": [{"id": "cakes", "label": "Cakes"}, {"id": "music", "label": "Live music"},
                         {"id": "wifi", "label": "Wi-Fi"}]},
            {"id": "stars", "type": "rating", "label": "Rate us", "scale": 5},
            {"id": "sms", "type": "consent", "label": "Send me offers by SMS", "consent_kind": "sms",
             "consent_text_version": "sms-v3"},
        ],
        "reward": {"kind": "none"},
    }
    body.update(overrides)
    return body


def _answers(phone: str = PHONE, **overrides: Any) -> dict[str, Any]:
    answers: dict[str, Any] = {"phone": phone, "name": "Anna", "born": "1990-05-17", "mail": "Anna@Example.com",
                               "comment": TEXT, "drink": "tea", "likes": ["music", "cakes"], "stars": 4, "sms": True}
    answers.update(overrides)
    return answers


def _create(api: Api, tenant: TenantKeys, body: dict[str, Any]) -> dict[str, Any]:
    r = api.post(BASE, tenant.admin, body)
    assert r.status_code == 201, r.data
    return r.data


def _respond(api: Api, tenant: TenantKeys, survey_id: str, answers: dict[str, Any], verify: bool = True,
             **extra: Any) -> Any:
    """Answer as a form does: a phone answered is first verified by SMS code (unless told not to)."""
    if verify and "invitation" not in extra and "phone_verification" not in extra and _valid_phone(answers):
        extra["phone_verification"] = phone_codes.proof_for(api, tenant.tenant_id, answers["phone"])
    return api.post(f"{_public(tenant.tenant_id, survey_id)}/responses", None, {"answers": answers, **extra})


def _valid_phone(answers: dict[str, Any]) -> bool:
    try:
        normalise(str(answers.get("phone")))
    except ValueError:
        return False
    return True


def _customer(api: Api, tenant: TenantKeys, phone: str = PHONE) -> dict[str, Any]:
    r = api.get(f"/v1/customers?phone={phone.replace('+', '%2B')}", tenant.admin)
    assert r.status_code == 200, r.data
    return r.data


def _all_loyalty_items() -> list[LoyaltyRecord]:
    return list(LoyaltyRecord.scan())


def _purchase(api: Api, tenant: TenantKeys, receipt_id: str, card_number: str | None, total: int = 10000) -> None:
    body: dict[str, Any] = {"receipt_id": receipt_id, "store_id": "msk-01", "total": total,
                            "items": [{"sku": "latte", "category": "coffee", "quantity": 1, "amount": total}]}
    if card_number:
        body["card_number"] = card_number
    r = api.post("/v1/purchases", tenant.pos, body)
    assert r.status_code == 200, r.data


def _card_for(api: Api, tenant: TenantKeys, phone: str) -> str:
    r = api.post("/v1/cards", tenant.pos, {"program_id": "main", "customer": {"phone": phone}})
    assert r.status_code == 201, r.data
    return r.data["number"]


# --- definitions and the public form ----------------------------------------------------------

def test_admin_defines_a_survey_and_the_public_form_shows_only_what_a_form_needs(
        api: Api, tenant: TenantKeys, clock: Any) -> None:
    created = _create(api, tenant, _registration(reward={"kind": "points", "program_id": "main", "points": 150}))
    assert (created["id"], created["kind"], created["status"], created["rate_limit_per_hour"]) == (
        "welcome", "registration", "active", 20)
    assert created["reward"] == {"kind": "points", "program_id": "main", "points": 150}
    assert created["created_at"].startswith("2026-11-02T10:00:00")
    assert api.get(f"{BASE}/welcome", tenant.admin).data == created
    listed = api.get(BASE, tenant.admin).data
    assert [s["id"] for s in listed["items"]] == ["welcome"] and listed["has_more"] is False

    r = api.get(_public(tenant.tenant_id, "welcome"))
    assert r.status_code == 200, r.data
    form = r.data
    assert (form["tenant_id"], form["survey_id"], form["title"]) == (tenant.tenant_id, "welcome", "Join our club")
    assert form["reward"] == "150 bonus points"
    assert [q["id"] for q in form["questions"]] == ["phone", "name", "born", "mail", "comment", "drink", "likes",
                                                    "stars", "sms"]
    comment = form["questions"][4]
    assert (comment["type"], comment["max_length"], comment["required"]) == ("text", 200, False)
    assert form["questions"][7]["scale"] == 5
    assert form["questions"][8]["consent_text_version"] == "sms-v3"
    raw = json.dumps(form)
    assert "maps_to" not in raw and "program_id" not in raw and "rate_limit" not in raw


def test_definitions_are_validated(api: Api, tenant: TenantKeys, clock: Any) -> None:
    no_phone = _registration(questions=[{"id": "q", "type": "nps", "label": "Recommend us?"}])
    r = api.post(BASE, tenant.admin, no_phone)
    assert r.status_code == 400 and r.data["error"]["code"] == "validation_error"
    bad_map = _registration()
    bad_map["questions"][1]["maps_to"] = "birth_date"
    r = api.post(BASE, tenant.admin, bad_map)
    assert r.status_code == 400
    assert "cannot fill birth_date" in json.dumps(r.data["error"]["details"])
    r = api.post(BASE, tenant.admin, _registration(reward={"kind": "coupon", "campaign_id": "nope"}))
    assert (r.status_code, r.data["error"]["code"]) == (422, "unknown_campaign")
    assert r.data["error"]["details"][0]["field"] == "reward.campaign_id"
    too_many = _registration()
    too_many["questions"] += [{"id": f"x{i}", "type": "nps", "label": "More?"} for i in range(45)]
    r = api.post(BASE, tenant.admin, too_many)
    assert r.status_code == 400 and r.data["error"]["details"][0]["field"] == "questions"
    _create(api, tenant, _registration())
    r = api.post(BASE, tenant.admin, _registration())
    assert (r.status_code, r.data["error"]["code"]) == (409, "survey_exists")


def test_draft_closed_and_out_of_window_surveys_are_refused_with_clear_codes(
        api: Api, tenant: TenantKeys, clock: Any) -> None:
    _create(api, tenant, _registration(id="later", starts_at="2026-11-10T00:00:00Z"))
    _create(api, tenant, _registration(id="over", ends_at="2026-11-02T09:00:00Z", starts_at="2026-10-01T00:00:00Z"))
    _create(api, tenant, _registration(id="draft", status="draft"))
    _create(api, tenant, _registration(id="shut", status="closed"))
    cases = {"later": (409, "survey_not_started"), "over": (409, "survey_ended"), "draft": (404, "survey_not_found"),
             "shut": (409, "survey_closed"), "missing": (404, "survey_not_found")}
    for survey_id, (status, code) in cases.items():
        for r in (api.get(_public(tenant.tenant_id, survey_id)), _respond(api, tenant, survey_id, _answers())):
            assert (r.status_code, r.data["error"]["code"]) == (status, code), survey_id
    r = api.get(_public("no-such-tenant", "later"))
    assert (r.status_code, r.data["error"]["code"]) == (404, "survey_not_found")


# --- responses: customer, profile, consents, privacy -------------------------------------------------

def test_a_response_creates_the_customer_with_mapped_profile_fields_and_consents(
        api: Api, tenant: TenantKeys, clock: Any) -> None:
    _create(api, tenant, _registration())
    r = _respond(api, tenant, "welcome", _answers(phone="8 (916) 123-45-67"))
    assert r.status_code == 201, r.data
    assert r.data["reward"] == {"granted": False, "reason": "no_reward", "kind": None, "card_number": None,
                                "points": None, "coupon_code": None}
    customer = _customer(api, tenant)
    full = api.get(f"/v1/customers/{customer['customer_id']}", tenant.admin).data
    assert (full["phone"], full["first_name"], full["birth_date"], full["email"]) == (
        PHONE, "Anna", "1990-05-17", "anna@example.com")
    assert full["tags"] == ["cakes", "music"]
    assert full["acquisition"] == {"channel": "survey", "source": "welcome"}
    assert [(c["kind"], c["granted"], c["source"], c["text_version"]) for c in full["consents"]] == [
        ("sms", True, "survey:welcome", "sms-v3")]

    again = _respond(api, tenant, "welcome", _answers(name="Anya", sms=False))
    assert again.status_code == 201, again.data
    full = api.get(f"/v1/customers/{customer['customer_id']}", tenant.admin).data
    assert full["first_name"] == "Anya"
    assert [(c["kind"], c["granted"]) for c in full["consents"]] == [("sms", False)]


def test_free_text_and_personal_answers_never_reach_the_loyalty_table_but_admins_read_them(
        api: Api, tenant: TenantKeys, clock: Any) -> None:
    _create(api, tenant, _registration())
    r = _respond(api, tenant, "welcome", _answers())
    assert r.status_code == 201, r.data
    dumped = json.dumps([{"pk": i.pk, "sk": i.sk, "doc": i.doc.as_dict(), "gsi": i.gsi1pk}
                         for i in _all_loyalty_items()], default=str)
    for secret in (TEXT, "XJ-7731", PHONE, "Anna", "1990-05-17", "anna@example.com"):
        assert secret not in dumped, secret
    summaries = [i for i in _all_loyalty_items() if i.kind == "survey_response"]
    assert len(summaries) == 1
    assert summaries[0].doc.as_dict()["answers"] == {"drink": "tea", "likes": ["cakes", "music"], "stars": 4,
                                                     "sms": True}

    listed = api.get(f"{BASE}/welcome/responses", tenant.admin)
    assert listed.status_code == 200, listed.data
    [item] = listed.data["items"]
    assert item["response_id"] == r.data["response_id"]
    assert item["answers"] == {"phone": PHONE, "name": "Anna", "born": "1990-05-17", "mail": "anna@example.com",
                               "comment": TEXT, "drink": "tea", "likes": ["cakes", "music"], "stars": 4, "sms": True}
    assert item["reward"]["reason"] == "no_reward"

    exported = api.get(f"/v1/customers/{item['customer_id']}/export", tenant.admin)
    assert exported.status_code == 200, exported.data
    [response] = exported.data["survey_responses"]
    assert response["survey_id"] == "welcome" and response["answers"]["comment"] == TEXT


def test_invalid_answers_are_refused_per_question_and_nothing_is_stored(
        api: Api, tenant: TenantKeys, clock: Any) -> None:
    _create(api, tenant, _registration())
    bad = {"phone": "12", "name": "x" * 121, "born": "2030-01-01", "mail": "not-an-email", "comment": "y" * 201,
           "drink": "beer", "likes": ["cakes", "cakes"], "stars": 6, "sms": "yes", "ghost": 1}
    r = _respond(api, tenant, "welcome", bad)
    assert r.status_code == 400, r.data
    assert r.data["error"]["code"] == "validation_error"
    fields = {d["field"] for d in r.data["error"]["details"]}
    assert fields == {f"answers.{q}" for q in ("phone", "name", "born", "mail", "comment", "drink", "likes", "stars",
                                                "sms", "ghost")}
    missing = _respond(api, tenant, "welcome", {"name": "Anna"})
    assert missing.status_code == 400
    assert missing.data["error"]["details"] == [{"field": "answers.phone", "issue": "an answer is required"}]
    too_long = _respond(api, tenant, "welcome", _answers(comment="z" * 2001))
    assert too_long.status_code == 400 and too_long.data["error"]["details"][0]["field"] == "answers.comment"

    assert api.get("/v1/customers?phone=%2B79161234567", tenant.admin).status_code == 404
    kinds = {i.kind for i in _all_loyalty_items()}
    assert not kinds & {"customer", "survey_response", "survey_reward"}
    assert api.get(f"{BASE}/welcome/results", tenant.admin).data["responses"] == 0


# --- rewards --------------------------------------------------------------------------------------------

def test_a_card_reward_issues_one_active_card_and_never_a_second(api: Api, tenant: TenantKeys, clock: Any) -> None:
    _create(api, tenant, _registration(reward={"kind": "card", "program_id": "main"}))
    r = _respond(api, tenant, "welcome", _answers())
    assert r.status_code == 201, r.data
    reward = r.data["reward"]
    assert (reward["granted"], reward["kind"]) == (True, "card")
    card = api.get(f"/v1/cards/{reward['card_number']}", tenant.pos).data
    customer = _customer(api, tenant)
    assert (card["status"], card["program_id"], card["customer_id"]) == ("active", "main", customer["customer_id"])

    again = _respond(api, tenant, "welcome", _answers(stars=5))
    assert again.status_code == 201, again.data
    assert (again.data["reward"]["granted"], again.data["reward"]["reason"]) == (False, "already_rewarded")
    assert _customer(api, tenant)["cards"] == [reward["card_number"]]
    assert api.get(f"{BASE}/welcome/results", tenant.admin).data["responses"] == 2


def test_a_card_reward_reuses_the_card_the_customer_already_has(api: Api, tenant: TenantKeys, clock: Any) -> None:
    number = _card_for(api, tenant, PHONE)
    _create(api, tenant, _registration(reward={"kind": "card", "program_id": "main"}))
    r = _respond(api, tenant, "welcome", _answers())
    assert r.data["reward"]["card_number"] == number
    assert _customer(api, tenant)["cards"] == [number]


def test_a_points_reward_credits_exactly_once_per_customer(api: Api, tenant: TenantKeys, clock: Any) -> None:
    _create(api, tenant, _registration(reward={"kind": "points", "program_id": "main", "points": 150}))
    first = _respond(api, tenant, "welcome", _answers())
    assert first.status_code == 201, first.data
    reward = first.data["reward"]
    assert (reward["granted"], reward["kind"], reward["points"]) == (True, "points", 150)
    second = _respond(api, tenant, "welcome", _answers(phone="+7 916 123 45 67"))
    assert second.data["reward"] == {"granted": False, "reason": "already_rewarded", "kind": "points",
                                     "card_number": None, "points": None, "coupon_code": None}
    number = reward["card_number"]
    assert api.get(f"/v1/cards/{number}", tenant.pos).data["balance"] == 150
    ledger = api.get(f"/v1/cards/{number}/transactions", tenant.pos).data["items"]
    assert [(e["type"], e["points"], e["reason"]) for e in ledger] == [("adjustment", 150, "survey welcome")]

    other = _respond(api, tenant, "welcome", _answers(phone="+79161234568"))
    assert (other.data["reward"]["granted"], other.data["reward"]["points"]) == (True, 150)
    assert other.data["reward"]["card_number"] != number


def test_a_reward_interrupted_after_its_marker_is_completed_once_by_a_later_response(
        api: Api, tenant: TenantKeys, clock: Any, monkeypatch: Any) -> None:
    from chalicelib.services.customers import surveys as service

    _create(api, tenant, _registration(reward={"kind": "points", "program_id": "main", "points": 70}))
    real = service._grant

    def crash(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)
        raise RuntimeError("lambda died after the grant, before the marker was finished")

    monkeypatch.setattr(service, "_grant", crash)
    assert _respond(api, tenant, "welcome", _answers()).status_code == 500
    monkeypatch.setattr(service, "_grant", real)
    pending = _respond(api, tenant, "welcome", _answers())
    assert (pending.data["reward"]["granted"], pending.data["reward"]["reason"]) == (False, "reward_pending")
    clock.advance(minutes=2)
    done = _respond(api, tenant, "welcome", _answers())
    assert (done.data["reward"]["granted"], done.data["reward"]["points"]) == (True, 70)
    number = done.data["reward"]["card_number"]
    assert api.get(f"/v1/cards/{number}", tenant.pos).data["balance"] == 70
    assert _customer(api, tenant)["cards"] == [number]
    assert _respond(api, tenant, "welcome", _answers()).data["reward"]["reason"] == "already_rewarded"


def test_a_refused_grant_frees_the_reward_for_a_later_response(
        api: Api, tenant: TenantKeys, clock: Any, monkeypatch: Any) -> None:
    from chalicelib.errors import ApiError
    from chalicelib.services.customers import surveys as service

    _create(api, tenant, _registration(reward={"kind": "points", "program_id": "main", "points": 40}))

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise ApiError(422, "program_archived", "Program 'main' is archived.")

    monkeypatch.setattr(service.cards, "adjust", refuse)
    refused = _respond(api, tenant, "welcome", _answers())
    assert refused.status_code == 201, refused.data
    assert (refused.data["reward"]["granted"], refused.data["reward"]["reason"]) == (False, "reward_unavailable")
    assert not [i for i in _all_loyalty_items() if i.kind == "survey_reward"]
    monkeypatch.undo()
    granted = _respond(api, tenant, "welcome", _answers())
    assert (granted.data["reward"]["granted"], granted.data["reward"]["points"]) == (True, 40)
    assert api.get(f"/v1/cards/{granted.data['reward']['card_number']}", tenant.pos).data["balance"] == 40


def test_coupon_rewards_shared_and_unique_the_unique_code_works_at_the_till(
        api: Api, tenant: TenantKeys, clock: Any) -> None:
    r = api.post("/v1/coupon-campaigns", tenant.admin,
                 {"id": "hello", "name": "Hello", "program_id": "main", "mode": "shared", "code": "hello-10",
                  "effect": {"kind": "percent_off", "value": 1000}})
    assert r.status_code == 201, r.data
    r = api.post("/v1/coupon-campaigns", tenant.admin,
                 {"id": "thanks", "name": "Thanks", "program_id": "main", "mode": "unique", "count": 1,
                  "effect": {"kind": "amount_off", "value": 5000}})
    assert r.status_code == 202, r.data
    _create(api, tenant, _registration(id="shared", reward={"kind": "coupon", "campaign_id": "hello"}))
    _create(api, tenant, _registration(id="unique", reward={"kind": "coupon", "campaign_id": "thanks"}))

    shared = _respond(api, tenant, "shared", _answers())
    assert shared.data["reward"]["coupon_code"] == "HELLO10"
    unique = _respond(api, tenant, "unique", _answers())
    code = unique.data["reward"]["coupon_code"]
    assert unique.data["reward"]["granted"] is True and len(code) == 19 and code.count("-") == 3
    again = _respond(api, tenant, "unique", _answers())
    assert again.data["reward"]["reason"] == "already_rewarded"
    minted = list(LoyaltyRecord.due_and_partner.query(coupon_store.campaign_codes_pk(tenant.tenant_id, "thanks")))
    assert [m.gsi1sk for m in minted] == [code.replace("-", "")]

    number = _card_for(api, tenant, PHONE)
    quote = api.post("/v1/purchases/quote", tenant.pos,
                     {"receipt_id": "q-1", "card_number": number, "store_id": "msk-01", "total": 20000,
                      "items": [{"sku": "cake", "category": "food", "quantity": 1, "amount": 20000}],
                      "coupons": [code.lower()]})
    assert quote.status_code == 200, quote.data
    [applied] = quote.data["coupons"]
    assert (applied["applied"], applied["campaign_id"]) == (True, "thanks")
    assert quote.data["discount"] == 5000


def test_the_rate_limit_answers_429_with_retry_after_then_a_new_window_opens(
        api: Api, tenant: TenantKeys, clock: Any) -> None:
    _create(api, tenant, _registration(rate_limit_per_hour=3))
    clock.advance(minutes=15)
    for i in range(3):
        r = _respond(api, tenant, "welcome", _answers(phone=f"+7916123456{i}"))
        assert r.status_code == 201, r.data
    r = _respond(api, tenant, "welcome", _answers(phone="+79161234569"))
    assert (r.status_code, r.data["error"]["code"]) == (429, "rate_limited")
    assert r.headers["Retry-After"] == str(45 * 60)
    rate_items = [i for i in _all_loyalty_items() if i.kind == "survey_rate"]
    assert len(rate_items) == 1 and int(rate_items[0].version) == 3
    assert "#survey-rate#welcome#" in rate_items[0].pk and rate_items[0].expires_at_epoch is not None
    clock.advance(minutes=45)
    assert _respond(api, tenant, "welcome", _answers(phone="+79161234569")).status_code == 201


# --- changing a survey ------------------------------------------------------------------------------------

def test_a_survey_with_responses_can_be_reworded_but_not_retyped(api: Api, tenant: TenantKeys, clock: Any) -> None:
    created = _create(api, tenant, _registration())
    body = {k: v for k, v in _registration().items() if k != "id"}
    body["questions"][7]["type"] = "nps"
    body["questions"][7].pop("scale")
    assert api.put(f"{BASE}/welcome", tenant.admin, body).status_code == 200
    assert _respond(api, tenant, "welcome", _answers(stars=9)).status_code == 201

    body["questions"][7] = {**_registration()["questions"][7]}
    r = api.put(f"{BASE}/welcome", tenant.admin, body)
    assert (r.status_code, r.data["error"]["code"]) == (409, "survey_has_responses")
    assert {d["field"] for d in r.data["error"]["details"]} == {"questions[7].type", "questions[7].scale"}

    reworded = {k: v for k, v in _registration().items() if k != "id"}
    reworded["questions"][7] = {"id": "stars", "type": "nps", "label": "Would you recommend us?"}
    reworded["questions"][5]["options"].append({"id": "cocoa", "label": "Cocoa"})
    reworded["title"] = "Join us"
    r = api.put(f"{BASE}/welcome", tenant.admin, reworded)
    assert r.status_code == 200, r.data
    assert (r.data["title"], r.data["created_at"]) == ("Join us", created["created_at"])
    assert r.data["updated_at"].startswith("2026-11-02T10:00:00")


# --- feedback after a purchase ----------------------------------------------------------------------------

def _feedback() -> dict[str, Any]:
    return {"id": "visit", "title": "How was your visit?", "kind": "feedback", "status": "active",
            "questions": [{"id": "nps", "type": "nps", "label": "Recommend us?", "required": True},
                          {"id": "taste", "type": "rating", "label": "Taste", "scale": 5},
                          {"id": "why", "type": "text", "label": "Why?"},
                          {"id": "news", "type": "consent", "label": "E-mail me news", "consent_kind": "email",
                           "consent_text_version": "news-v1"}],
            "reward": {"kind": "points", "program_id": "main", "points": 20}}


def test_feedback_invitations_after_purchases_and_nps_results(api: Api, tenant: TenantKeys, clock: Any) -> None:
    _create(api, tenant, _feedback())
    anna, boris = _card_for(api, tenant, PHONE), _card_for(api, tenant, "+79161234568")
    _purchase(api, tenant, "r-1", anna)
    _purchase(api, tenant, "r-2", anna)
    _purchase(api, tenant, "r-3", boris)
    tokens = {}
    for receipt_id, key in (("r-1", tenant.pos), ("r-2", tenant.admin), ("r-3", tenant.pos)):
        r = api.post(f"{BASE}/visit/invitations", key, {"receipt_id": receipt_id})
        assert r.status_code == 201, r.data
        assert r.data["url_path"] == f"/s/{tenant.tenant_id}/visit?invitation={r.data['token']}"
        assert r.data["expires_at"].startswith("2026-12-02T10:00:00")
        tokens[receipt_id] = r.data["token"]

    r1 = _respond(api, tenant, "visit", {"nps": 10, "taste": 5, "why": "Great flat white", "news": True},
                  invitation=tokens["r-1"])
    assert r1.status_code == 201, r1.data
    consents = _customer(api, tenant)["consents"]
    assert [(c["kind"], c["granted"], c["source"], c["text_version"]) for c in consents] == [
        ("email", True, "survey:visit", "news-v1")]
    assert (r1.data["reward"]["granted"], r1.data["reward"]["card_number"]) == (True, anna)
    reused = _respond(api, tenant, "visit", {"nps": 0}, invitation=tokens["r-1"])
    assert (reused.status_code, reused.data["error"]["code"]) == (409, "invitation_used")
    r2 = _respond(api, tenant, "visit", {"nps": 9, "taste": 4}, invitation=tokens["r-2"])
    assert r2.data["reward"]["reason"] == "already_rewarded"
    r3 = _respond(api, tenant, "visit", {"nps": 4, "taste": 2}, invitation=tokens["r-3"])
    assert r3.data["reward"]["granted"] is True

    results = api.get(f"{BASE}/visit/results", tenant.admin).data
    assert results["responses"] == 3
    nps, taste, why, news = results["questions"]
    assert (news["granted"], news["declined"], news["answered"]) == (1, 0, 1)
    assert (nps["promoters"], nps["passives"], nps["detractors"], nps["nps_bps"]) == (2, 0, 1, 3333)
    assert nps["distribution"]["10"] == 1 and nps["distribution"]["4"] == 1
    assert (taste["answered"], taste["average_x100"]) == (3, 367)
    assert (why["answered"], why.get("options"), why.get("distribution")) == (1, None, None)
    assert "Great flat white" not in json.dumps(results)

    items = api.get(f"{BASE}/visit/responses", tenant.admin).data["items"]
    assert sorted((i["receipt_id"], i["store_id"]) for i in items) == [("r-1", "msk-01"), ("r-2", "msk-01"),
                                                                       ("r-3", "msk-01")]
    assert next(i for i in items if i["receipt_id"] == "r-1")["answers"]["why"] == "Great flat white"
    ledger = api.get(f"/v1/cards/{anna}/transactions", tenant.pos).data["items"]
    assert [(e["points"], e["reason"]) for e in ledger if e["type"] == "adjustment"] == [(20, "survey visit")]


def test_invitations_need_a_receipt_with_a_customer_and_a_valid_token(
        api: Api, tenant: TenantKeys, clock: Any) -> None:
    _create(api, tenant, _feedback())
    r = api.post(f"{BASE}/visit/invitations", tenant.pos, {"receipt_id": "nope"})
    assert (r.status_code, r.data["error"]["code"]) == (404, "receipt_not_found")
    anonymous = api.post("/v1/cards", tenant.pos, {"program_id": "main"}).data["number"]
    _purchase(api, tenant, "r-anon", anonymous)
    r = api.post(f"{BASE}/visit/invitations", tenant.pos, {"receipt_id": "r-anon"})
    assert (r.status_code, r.data["error"]["code"]) == (422, "receipt_without_customer")
    r = _respond(api, tenant, "visit", {"nps": 7})
    assert (r.status_code, r.data["error"]["code"]) == (400, "invitation_required")
    r = _respond(api, tenant, "visit", {"nps": 7}, invitation="forged.token-value")
    assert (r.status_code, r.data["error"]["code"]) == (400, "invalid_invitation")
    _purchase(api, tenant, "r-9", _card_for(api, tenant, PHONE))
    token = api.post(f"{BASE}/visit/invitations", tenant.pos, {"receipt_id": "r-9"}).data["token"]
    clock.advance(days=31)
    r = _respond(api, tenant, "visit", {"nps": 7}, invitation=token)
    assert (r.status_code, r.data["error"]["code"]) == (400, "invalid_invitation")


# --- isolation ------------------------------------------------------------------------------------------------

def test_another_tenant_sees_nothing_of_a_survey(api: Api, tenant: TenantKeys, other_tenant: TenantKeys,
                                                 clock: Any) -> None:
    _create(api, tenant, _registration())
    _create(api, tenant, _feedback())
    assert _respond(api, tenant, "welcome", _answers()).status_code == 201
    for path in (f"{BASE}/welcome", f"{BASE}/welcome/results", f"{BASE}/welcome/responses"):
        r = api.get(path, other_tenant.admin)
        assert (r.status_code, r.data["error"]["code"]) == (404, "survey_not_found"), path
    body = {k: v for k, v in _registration().items() if k != "id"}
    assert api.put(f"{BASE}/welcome", other_tenant.admin, body).status_code == 404
    _purchase(api, tenant, "r-1", _card_for(api, tenant, PHONE))
    assert api.post(f"{BASE}/visit/invitations", other_tenant.pos, {"receipt_id": "r-1"}).status_code == 404
    assert api.get(BASE, other_tenant.admin).data["items"] == []

    r = api.get(_public(other_tenant.tenant_id, "welcome"))
    assert (r.status_code, r.data["error"]["code"]) == (404, "survey_not_found")
    r = _respond(api, other_tenant, "welcome", _answers(phone="+79161234568"))
    assert (r.status_code, r.data["error"]["code"]) == (404, "survey_not_found")
    assert api.get("/v1/customers?phone=%2B79161234568", other_tenant.admin).status_code == 404
    assert api.get("/v1/customers?phone=%2B79161234568", tenant.admin).status_code == 404
