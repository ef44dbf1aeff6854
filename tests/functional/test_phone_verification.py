"""Public forms must prove the phone: SMS codes, proofs spent once, and nothing unverified changes a customer."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.services.customers import verification
from chalicelib.storage.tables import LoyaltyRecord
from tests.functional import phone_codes
from tests.functional.conftest import Api, TenantKeys

PHONE = "+79161234567"
OTHER_PHONE = "+79169876543"


def _survey(api: Api, tenant: TenantKeys, **overrides: Any) -> None:
    body: dict[str, Any] = {
        "id": "join", "title": "Join", "kind": "registration", "status": "active",
        "questions": [
            {"id": "phone", "type": "phone", "label": "Phone", "required": True, "maps_to": "phone"},
            {"id": "name", "type": "text", "label": "First name", "maps_to": "first_name"},
            {"id": "mail", "type": "email", "label": "E-mail", "maps_to": "email"},
            {"id": "stars", "type": "rating", "label": "Rate us", "scale": 5},
            {"id": "sms", "type": "consent", "label": "Offers by SMS", "consent_kind": "sms",
             "consent_text_version": "sms-v1"},
        ],
        "reward": {"kind": "points", "program_id": "main", "points": 100},
    }
    body.update(overrides)
    r = api.post("/v1/surveys", tenant.admin, body)
    assert r.status_code == 201, r.data


def _respond(api: Api, tenant: TenantKeys, answers: dict[str, Any], survey_id: str = "join", **extra: Any) -> Any:
    return api.post(f"/v1/public/surveys/{tenant.tenant_id}/{survey_id}/responses", None,
                    {"answers": answers, **extra})


def _member(api: Api, tenant: TenantKeys) -> dict[str, Any]:
    """An existing member: Anna, with her own e-mail and no SMS consent."""
    r = api.post("/v1/customers", tenant.admin, {"phone": PHONE, "first_name": "Anna", "email": "anna@example.com"})
    assert r.status_code in (200, 201), r.data
    return r.data


def _profile(api: Api, tenant: TenantKeys, customer_id: str) -> dict[str, Any]:
    r = api.get(f"/v1/customers/{customer_id}", tenant.admin)
    assert r.status_code == 200, r.data
    return r.data


def _customers(api: Api, tenant: TenantKeys) -> list[str]:
    """Every customer id of the tenant, read from the table (the API looks customers up one by one)."""
    return sorted(i.pk.split("#customer#")[1] for i in LoyaltyRecord.scan()
                  if i.kind == "customer" and i.pk.startswith(f"{tenant.tenant_id}#"))


# --- the hole: an unverified form cannot rewrite a member ------------------------------------------

def test_an_unverified_response_with_a_members_phone_changes_nothing_of_the_member(
        api: Api, tenant: TenantKeys, clock: Any) -> None:
    member = _member(api, tenant)
    _survey(api, tenant)
    r = _respond(api, tenant, {"phone": PHONE, "name": "Mallory", "mail": "mallory@evil.example", "stars": 2,
                               "sms": True})
    assert r.status_code == 201, r.data
    assert r.data["verified"] is False
    assert r.data["reward"]["granted"] is False and r.data["reward"]["reason"] == "phone_not_verified"

    after = _profile(api, tenant, member["customer_id"])
    assert (after["first_name"], after["email"]) == ("Anna", "anna@example.com")
    assert after["consents"] == []
    assert len(_customers(api, tenant)) == 1
    results = api.get("/v1/surveys/join/results", tenant.admin).data
    by_id = {q["question_id"]: q for q in results["questions"]}
    assert results["responses"] == 1
    assert by_id["stars"]["distribution"]["2"] == 1
    assert (by_id["sms"]["granted"], by_id["sms"]["declined"], by_id["name"]["answered"]) == (0, 0, 0)
    [kept] = api.get("/v1/surveys/join/responses", tenant.admin).data["items"]
    assert kept["customer_id"] is None and kept["answers"] == {"stars": 2}
    assert kept["reward"]["reason"] == "phone_not_verified"
    dumped = json.dumps([i.doc.as_dict() for i in LoyaltyRecord.scan()], default=str)
    assert "Mallory" not in dumped and "mallory@evil.example" not in dumped


def test_a_verified_response_links_the_member_fills_the_profile_records_consent_and_rewards_once(
        api: Api, tenant: TenantKeys, clock: Any) -> None:
    member = _member(api, tenant)
    _survey(api, tenant)
    proof = phone_codes.proof_for(api, tenant.tenant_id, PHONE)
    r = _respond(api, tenant, {"phone": "8 916 123-45-67", "name": "Anya", "mail": "anya@example.com", "stars": 5,
                               "sms": True}, phone_verification=proof)
    assert r.status_code == 201, r.data
    assert r.data["verified"] is True
    assert (r.data["reward"]["granted"], r.data["reward"]["points"]) == (True, 100)
    after = _profile(api, tenant, member["customer_id"])
    assert (after["first_name"], after["email"]) == ("Anya", "anya@example.com")
    assert [(c["kind"], c["granted"], c["source"]) for c in after["consents"]] == [("sms", True, "survey:join")]

    replay = _respond(api, tenant, {"phone": PHONE, "name": "Mallory", "stars": 1}, phone_verification=proof)
    assert replay.status_code == 409, replay.data
    assert replay.data["error"]["code"] == "verification_used"
    assert [d["field"] for d in replay.data["error"]["details"]] == ["phone_verification"]
    assert _profile(api, tenant, member["customer_id"])["first_name"] == "Anya"
    assert api.get("/v1/surveys/join/results", tenant.admin).data["responses"] == 1


def test_a_proof_for_another_phone_another_tenant_or_out_of_time_is_refused_and_nothing_changes(
        api: Api, tenant: TenantKeys, other_tenant: TenantKeys, clock: Any) -> None:
    member = _member(api, tenant)
    _survey(api, tenant)
    other_proof = phone_codes.proof_for(api, tenant.tenant_id, OTHER_PHONE)
    mismatch = _respond(api, tenant, {"phone": PHONE, "name": "Mallory", "stars": 1},
                        phone_verification=other_proof)
    assert mismatch.status_code == 422, mismatch.data
    assert (mismatch.data["error"]["code"], mismatch.data["error"]["details"][0]["field"]) == (
        "phone_mismatch", "answers.phone")

    foreign = phone_codes.proof_for(api, other_tenant.tenant_id, PHONE)
    wrong_tenant = _respond(api, tenant, {"phone": PHONE, "name": "Mallory", "stars": 1}, phone_verification=foreign)
    assert wrong_tenant.status_code == 400, wrong_tenant.data
    assert wrong_tenant.data["error"]["code"] == "invalid_verification"

    forged = _respond(api, tenant, {"phone": PHONE, "name": "Mallory"}, phone_verification=other_proof[:-4] + "AAAA")
    assert forged.status_code == 400 and forged.data["error"]["code"] == "invalid_verification"

    late = phone_codes.proof_for(api, tenant.tenant_id, PHONE)
    clock.advance(minutes=16)
    expired = _respond(api, tenant, {"phone": PHONE, "name": "Mallory", "stars": 1}, phone_verification=late)
    assert expired.status_code == 400 and expired.data["error"]["code"] == "invalid_verification"

    assert _profile(api, tenant, member["customer_id"])["first_name"] == "Anna"
    assert api.get("/v1/surveys/join/results", tenant.admin).data["responses"] == 0


def test_a_refused_proof_is_not_spent(api: Api, tenant: TenantKeys, clock: Any) -> None:
    _survey(api, tenant)
    other_proof = phone_codes.proof_for(api, tenant.tenant_id, OTHER_PHONE)
    mismatch = _respond(api, tenant, {"phone": PHONE, "stars": 1}, phone_verification=other_proof)
    assert mismatch.status_code == 422
    ok = _respond(api, tenant, {"phone": OTHER_PHONE, "name": "Boris", "stars": 4}, phone_verification=other_proof)
    assert ok.status_code == 201 and ok.data["verified"] is True


def test_a_request_that_died_after_spending_the_proof_can_be_retried_once(
        api: Api, tenant: TenantKeys, clock: Any) -> None:
    _survey(api, tenant)
    proof = phone_codes.proof_for(api, tenant.tenant_id, PHONE)
    verification_id, phone = verification.proven_phone(tenant.tenant_id, proof, "phone_verification")
    assert phone == PHONE
    verification.spend(tenant.tenant_id, verification_id, "survey:join", "phone_verification")
    retried = _respond(api, tenant, {"phone": PHONE, "name": "Anna", "stars": 5}, phone_verification=proof)
    assert retried.status_code == 201, retried.data
    assert retried.data["reward"]["points"] == 100
    again = _respond(api, tenant, {"phone": PHONE, "name": "Anna", "stars": 5}, phone_verification=proof)
    assert again.status_code == 409 and again.data["error"]["code"] == "verification_used"


# --- the code itself ----------------------------------------------------------------------------------

def test_the_code_goes_by_sms_and_only_its_keyed_hash_is_kept(api: Api, tenant: TenantKeys, clock: Any) -> None:
    started = phone_codes.start(api, tenant.tenant_id, "8 (916) 123-45-67", language="en")
    assert started.status_code == 201, started.data
    assert started.data["attempts"] == 5
    assert started.data["expires_at"].startswith("2026-11-02T10:05:00")
    code = phone_codes.last_code(PHONE)
    [(to, text)] = [m for m in phone_codes.sns_backends[phone_codes.DEFAULT_ACCOUNT_ID][phone_codes.REGION]
                    .sms_messages.values()]
    assert to == PHONE
    assert text.startswith(f"{code} is your phone verification code for ")
    dumped = json.dumps([{"pk": i.pk, "doc": i.doc.as_dict()} for i in LoyaltyRecord.scan()], default=str)
    assert code not in dumped and PHONE not in dumped and "9161234567" not in dumped

    ru = phone_codes.start(api, tenant.tenant_id, OTHER_PHONE)
    assert ru.status_code == 201
    assert "код подтверждения" in phone_codes.sns_backends[phone_codes.DEFAULT_ACCOUNT_ID][
        phone_codes.REGION].sms_messages[list(phone_codes.sns_backends[phone_codes.DEFAULT_ACCOUNT_ID][
            phone_codes.REGION].sms_messages)[-1]][1]


def test_five_wrong_codes_spend_the_code_and_the_right_one_then_fails(
        api: Api, tenant: TenantKeys, clock: Any) -> None:
    started = phone_codes.start(api, tenant.tenant_id, PHONE).data
    vid, code = started["verification_id"], phone_codes.last_code(PHONE)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    issues = []
    for _ in range(5):
        r = phone_codes.check(api, tenant.tenant_id, vid, PHONE, wrong)
        assert r.status_code == 400 and r.data["error"]["code"] == "wrong_code", r.data
        issues.append(r.data["error"]["details"][0]["issue"])
    assert issues == ["wrong code, 4 tries left", "wrong code, 3 tries left", "wrong code, 2 tries left",
                      "wrong code, 1 tries left", "wrong code, no tries left: ask for a new one"]
    locked = phone_codes.check(api, tenant.tenant_id, vid, PHONE, code)
    assert locked.status_code == 429 and locked.data["error"]["code"] == "too_many_attempts"


def test_a_code_is_for_its_phone_its_tenant_its_five_minutes_and_works_once(
        api: Api, tenant: TenantKeys, other_tenant: TenantKeys, clock: Any) -> None:
    vid = phone_codes.start(api, tenant.tenant_id, PHONE).data["verification_id"]
    code = phone_codes.last_code(PHONE)
    other_phone = phone_codes.check(api, tenant.tenant_id, vid, OTHER_PHONE, code)
    assert other_phone.status_code == 400 and other_phone.data["error"]["code"] == "wrong_code"
    other_tenant_check = phone_codes.check(api, other_tenant.tenant_id, vid, PHONE, code)
    assert other_tenant_check.status_code == 404
    assert other_tenant_check.data["error"]["code"] == "verification_not_found"
    ok = phone_codes.check(api, tenant.tenant_id, vid, PHONE, code)
    assert ok.status_code == 200, ok.data
    assert ok.data["phone"] == PHONE and ok.data["expires_at"].startswith("2026-11-02T10:15:00")
    replay = phone_codes.check(api, tenant.tenant_id, vid, PHONE, code)
    assert replay.status_code == 409 and replay.data["error"]["code"] == "code_already_used"

    vid2 = phone_codes.start(api, tenant.tenant_id, PHONE).data["verification_id"]
    code2 = phone_codes.last_code(PHONE)
    clock.advance(minutes=5)
    late = phone_codes.check(api, tenant.tenant_id, vid2, PHONE, code2)
    assert late.status_code == 400 and late.data["error"]["code"] == "code_expired"
    unknown = phone_codes.check(api, tenant.tenant_id, "nosuchverification", PHONE, code2)
    assert unknown.status_code == 404 and unknown.data["error"]["code"] == "verification_not_found"


def test_codes_are_rate_limited_per_phone_and_per_address_with_retry_after(
        api: Api, tenant: TenantKeys, clock: Any) -> None:
    for _ in range(5):
        assert phone_codes.start(api, tenant.tenant_id, PHONE).status_code == 201
    per_phone = phone_codes.start(api, tenant.tenant_id, PHONE)
    assert per_phone.status_code == 429, per_phone.data
    assert per_phone.data["error"]["details"] == [{"field": "phone", "issue": "at most 5 codes per hour"}]
    assert per_phone.headers["Retry-After"] == "3600"
    for n in range(4):
        assert phone_codes.start(api, tenant.tenant_id, f"+7916555000{n}").status_code == 201
    per_address = phone_codes.start(api, tenant.tenant_id, "+79165550009")
    assert per_address.status_code == 429
    assert per_address.data["error"]["details"][0]["field"] == "source"
    sent = phone_codes.sns_backends[phone_codes.DEFAULT_ACCOUNT_ID][phone_codes.REGION].sms_messages
    assert len(sent) == 9
    clock.advance(hours=1)
    assert phone_codes.start(api, tenant.tenant_id, PHONE).status_code == 201


def test_the_answer_is_the_same_for_a_member_and_a_stranger(api: Api, tenant: TenantKeys, clock: Any) -> None:
    _member(api, tenant)
    known = phone_codes.start(api, tenant.tenant_id, PHONE)
    unknown = phone_codes.start(api, tenant.tenant_id, OTHER_PHONE)
    assert (known.status_code, unknown.status_code) == (201, 201)
    strip = {"verification_id"}
    assert {k: v for k, v in known.data.items() if k not in strip} == {
        k: v for k, v in unknown.data.items() if k not in strip}
    assert sorted(known.headers) == sorted(unknown.headers)


def test_unknown_or_suspended_tenants_send_nothing(api: Api, tenant: TenantKeys, clock: Any) -> None:
    assert phone_codes.start(api, "no-such-tenant", PHONE).status_code == 404
    assert phone_codes.start(api, "Bad#Id", PHONE).status_code == 404
    r = api.patch(f"/v1/agency/tenants/{tenant.tenant_id}", tenant.agency, {"status": "suspended"})
    assert r.status_code == 200, r.data
    assert phone_codes.start(api, tenant.tenant_id, PHONE).status_code == 404
    assert not phone_codes.sns_backends[phone_codes.DEFAULT_ACCOUNT_ID][phone_codes.REGION].sms_messages


# --- surveys that need no verification ----------------------------------------------------------------

def test_verification_can_be_off_only_for_surveys_that_collect_no_phone_email_or_consent(
        api: Api, tenant: TenantKeys, clock: Any) -> None:
    refused = api.post("/v1/surveys", tenant.admin, {
        "id": "join", "title": "Join", "kind": "feedback", "status": "active", "verify_phone": False,
        "questions": [{"id": "mail", "type": "email", "label": "E-mail"}]})
    assert refused.status_code == 400, refused.data
    assert "verify_phone" in json.dumps(refused.data["error"])

    anonymous = {"id": "poll", "title": "Poll", "kind": "feedback", "status": "active", "verify_phone": False,
                 "questions": [{"id": "stars", "type": "rating", "label": "Rate us"},
                               {"id": "why", "type": "text", "label": "Why?"}],
                 "reward": {"kind": "points", "program_id": "main", "points": 50}}
    assert api.post("/v1/surveys", tenant.admin, anonymous).status_code == 201
    assert api.get(f"/v1/public/surveys/{tenant.tenant_id}/poll").data["verify_phone"] is False
    r = _respond(api, tenant, {"stars": 4, "why": "Nice staff"}, survey_id="poll")
    assert r.status_code == 201, r.data
    assert (r.data["verified"], r.data["reward"]["reason"]) == (False, "anonymous")
    assert _customers(api, tenant) == []
    [kept] = api.get("/v1/surveys/poll/responses", tenant.admin).data["items"]
    assert kept["answers"] == {"stars": 4} and kept["customer_id"] is None


def test_a_verified_phone_identifies_the_respondent_of_a_survey_without_a_phone_question(
        api: Api, tenant: TenantKeys, clock: Any) -> None:
    r = api.post("/v1/surveys", tenant.admin, {
        "id": "rate", "title": "Rate", "kind": "feedback", "status": "active",
        "questions": [{"id": "stars", "type": "rating", "label": "Rate us"}],
        "reward": {"kind": "points", "program_id": "main", "points": 30}})
    assert r.status_code == 201, r.data
    nobody = _respond(api, tenant, {"stars": 3}, survey_id="rate")
    assert nobody.status_code == 400 and nobody.data["error"]["code"] == "invitation_required"
    proof = phone_codes.proof_for(api, tenant.tenant_id, PHONE)
    ok = _respond(api, tenant, {"stars": 3}, survey_id="rate", phone_verification=proof)
    assert ok.status_code == 201, ok.data
    assert (ok.data["verified"], ok.data["reward"]["points"]) == (True, 30)
    [customer_id] = _customers(api, tenant)
    assert _profile(api, tenant, customer_id)["phone"] == PHONE
