"""The hosted questionnaire page (`/s/{tenant}/{survey}`) through the Chalice test client, as a customer's browser.

No staff session: the questions, the phone's SMS code (read from moto's SNS), the answers sent through the
service of the API's public route with the verification, and a thank-you page naming the reward, which is
then on the customer's card (read through the API). Errors are shown at their questions with every answer
kept across the steps (in hidden fields, escaped); the form carries a signed token bound to the tenant and the
survey; a second answer gets no second reward; another tenant's or a draft survey is 404.
"""

from __future__ import annotations

import re
from html import unescape
from typing import Any

from chalicelib.console.pages import SECURITY_HEADERS
from tests.functional import phone_codes
from tests.functional.conftest import Api, TenantKeys
from tests.functional.test_console_programs import form_of
from tests.functional.test_console_sign_in import Browser, field_error, hidden

SURVEY = "welcome"
HOSTILE = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
OFFER_RU = "За ответы: 150 бонусных баллов."  # noqa: RUF001 - the Russian page


def create_survey(api: Api, tenant: TenantKeys, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": SURVEY, "title": "Join our club", "kind": "registration", "status": "active",
        "questions": [
            {"id": "phone", "type": "phone", "label": "Your phone", "required": True, "maps_to": "phone"},
            {"id": "name", "type": "text", "label": "Your first name", "maps_to": "first_name"},
            {"id": "drink", "type": "single_choice", "label": "Your drink", "required": True,
             "options": [{"id": "coffee", "label": "Coffee"}, {"id": "tea", "label": "Tea"}]},
            {"id": "likes", "type": "multiple_choice", "label": "You like", "maps_to": "tags",
             "options": [{"id": "cakes", "label": "Cakes"}, {"id": "music", "label": "Live music"}]},
            {"id": "nps", "type": "nps", "label": "Would you recommend us?"},
            {"id": "stars", "type": "rating", "label": "Rate the coffee", "scale": 5},
            {"id": "comment", "type": "text", "label": "Anything to tell us?", "max_length": 500},
            {"id": "sms", "type": "consent", "label": "Send me offers by SMS", "consent_kind": "sms",
             "consent_text_version": "sms-v3"},
        ],
        "reward": {"kind": "points", "program_id": "main", "points": 150},
    }
    body.update(overrides)
    r = api.post("/v1/surveys", tenant.admin, body)
    assert r.status_code == 201, r.data
    return dict(r.data)


def page_path(tenant: TenantKeys, survey_id: str = SURVEY) -> str:
    return f"/s/{tenant.tenant_id}/{survey_id}"


def action_of(page: str) -> str:
    found = re.search(r'<form method="post" action="([^"]+)"', page)
    assert found, page[:3000]
    return unescape(found.group(1))


def send(browser: Browser, page: str, action: str, **fields: str) -> Any:
    """Post the page's form as a browser would: its fields (hidden ones included), these changes, the button."""
    path = action_of(page)
    return browser.post(path, {**form_of(page, path), **fields, "action": action})


def answer_publicly(api: Api, tenant: TenantKeys, phone: str, answers: dict[str, str]) -> str:
    """The whole walk: answers, code by SMS, code typed; the thank-you page's text."""
    customer = Browser(api)
    form = customer.get(page_path(tenant))
    assert form.status_code == 200, form.text[:500]
    code_page = send(customer, form.text, "answers", **{"a-phone": phone, **answers})
    assert code_page.status_code == 200 and "The code from the SMS" in code_page.text, code_page.text[-3000:]
    thanks = send(customer, code_page.text, "confirm", code=phone_codes.last_code(phone))
    assert thanks.status_code == 201, thanks.text[-3000:]
    return str(thanks.text)


def balance(api: Api, tenant: TenantKeys, number: str) -> int:
    r = api.get(f"/v1/cards/{number}", tenant.pos)
    assert r.status_code == 200, r.data
    return int(r.data["balance"])


def test_a_customer_answers_with_the_sms_code_and_the_points_are_on_the_card(
        api: Api, tenant: TenantKeys, clock: Any) -> None:
    create_survey(api, tenant)
    customer = Browser(api)
    form = customer.get(page_path(tenant))
    assert form.status_code == 200 and form.text.count("<h1>") == 1 and "<h1>Join our club</h1>" in form.text
    for name, value in SECURITY_HEADERS.items():
        assert form.headers[name] == value, name
    assert "<script" not in form.text and " style=" not in form.text
    assert "For your answers: 150 bonus points." in form.text
    brand = api.get(f"/v1/agency/tenants/{tenant.tenant_id}", tenant.agency).data["name"]
    assert hidden(form.text, "form_token") and f'<span class="brand">{brand}</span>' in form.text
    # a required answer missing and a bad e-mail-less phone: errors at their questions, answers kept
    typed = {"a-phone": "", "a-name": f"Anna {HOSTILE}", "a-likes-music": "on", "a-nps": "9", "a-stars": "4",
             "a-comment": f"Cold tables {HOSTILE}", "a-sms": "on"}
    r = send(customer, form.text, "answers", **typed)
    assert r.status_code == 400, re.findall(r'class="(?:error|alert)"[^>]*>(.*?)</', r.text)
    assert field_error(r.text, "a-phone") == "An answer is required."
    assert field_error(r.text, "a-drink") == "An answer is required."
    assert HOSTILE not in r.text and f"Cold tables {ESCAPED}</textarea>" in r.text
    assert 'name="a-likes-music" value="on" checked' in r.text and 'id="f-a-nps-9" name="a-nps" value="9" checked' \
        in r.text
    # the phone answered: the code goes to it; the answers ride along in hidden fields, escaped
    r = send(customer, r.text, "answers", **{"a-phone": "+7 916 123-45-67", "a-drink": "tea"})
    assert r.status_code == 200 and "We sent a code to +79161234567." in r.text, r.text[-2000:]
    assert hidden(r.text, "a-comment") == f"Cold tables {HOSTILE}" and HOSTILE not in r.text
    assert hidden(r.text, "a-likes-music") == "on" and hidden(r.text, "verification_id")
    # a wrong code: refused at the code, nothing lost
    wrong = send(customer, r.text, "confirm", code="000000")
    assert wrong.status_code == 400 and field_error(wrong.text, "code") == "The code is not right; 4 tries left."
    assert hidden(wrong.text, "a-comment") == f"Cold tables {HOSTILE}" and hidden(wrong.text, "a-drink") == "tea"
    bad = send(customer, wrong.text, "confirm", code="12")
    assert bad.status_code == 400 and field_error(bad.text, "code") == "Enter the 6 digits of the code."
    thanks = send(customer, bad.text, "confirm", code=phone_codes.last_code("+79161234567"))
    assert thanks.status_code == 201 and "Thank you for your answers!" in thanks.text
    found = re.search(r"150 points are on your card (\d+)\.", thanks.text)
    assert found, thanks.text[-2000:]
    number = found.group(1)
    assert balance(api, tenant, number) == 150
    profile = api.get("/v1/customers?phone=%2B79161234567", tenant.admin).data
    assert profile["first_name"] == f"Anna {HOSTILE}" and "music" in profile["tags"]
    # a replay of the same code step is refused clearly
    replay = send(customer, bad.text, "confirm", code=phone_codes.last_code("+79161234567"))
    assert replay.status_code in (400, 409) and field_error(replay.text, "code")
    # the same customer again: the answers are saved, the reward is not given twice
    again = answer_publicly(api, tenant, "+79161234567", {"a-drink": "coffee"})
    assert "You have already received the reward for this questionnaire" in again
    assert balance(api, tenant, number) == 150


def test_a_phone_step_when_the_survey_asks_no_phone_and_its_errors(api: Api, tenant: TenantKeys,
                                                                   clock: Any) -> None:
    create_survey(api, tenant, id="taste", kind="feedback", questions=[
        {"id": "stars", "type": "rating", "label": "Rate the coffee", "required": True, "scale": 5}])
    customer = Browser(api, "ru")
    form = customer.get(page_path(tenant, "taste"))
    assert form.status_code == 200 and '<html lang="ru">' in form.text and OFFER_RU in form.text
    assert '<button type="submit" name="action" value="answers" class="primary">Далее</button>' in form.text
    r = send(customer, form.text, "answers", **{"a-stars": "5"})
    assert r.status_code == 200 and 'name="phone"' in r.text and hidden(r.text, "a-stars") == "5"
    r = send(customer, r.text, "send", phone="12")
    assert r.status_code == 400 and field_error(r.text, "phone")
    r = send(customer, r.text, "send", phone="+79165550011")
    assert r.status_code == 200 and hidden(r.text, "phone") == "+79165550011"
    first_id = hidden(r.text, "verification_id")
    r = send(customer, r.text, "resend")
    assert r.status_code == 200 and hidden(r.text, "verification_id") != first_id
    assert hidden(r.text, "a-stars") == "5" and hidden(r.text, "phone") == "+79165550011"
    edit = send(customer, r.text, "edit")
    assert edit.status_code == 200 and 'id="f-a-stars-5" name="a-stars" value="5" checked' in edit.text
    done = send(customer, r.text, "confirm", code=phone_codes.last_code("+79165550011"))
    assert done.status_code == 201 and "150" in done.text


def test_the_form_token_is_bound_to_the_survey_and_an_expired_form_keeps_the_answers(
        api: Api, tenant: TenantKeys, clock: Any) -> None:
    create_survey(api, tenant)
    create_survey(api, tenant, id="other", kind="feedback", questions=[
        {"id": "drink", "type": "single_choice", "label": "Your drink", "required": True,
         "options": [{"id": "coffee", "label": "Coffee"}, {"id": "tea", "label": "Tea"}]}])
    customer = Browser(api)
    token = hidden(customer.get(page_path(tenant, "other")).text, "form_token")
    page = customer.get(page_path(tenant))
    r = customer.post(page_path(tenant), {"form_token": token, "a-comment": "kept", "a-drink": "tea",
                                          "action": "answers"})
    assert r.status_code == 400 and "This form has expired" in r.text and "kept</textarea>" in r.text
    assert hidden(r.text, "form_token") != token
    clock.advance(hours=4)
    r = send(customer, page.text, "answers", **{"a-phone": "+79161234567", "a-drink": "tea"})
    assert r.status_code == 400 and "This form has expired" in r.text
    assert 'value="tea" checked' in r.text
    # a post from another site is refused before anything (the console's Origin check)
    r = customer.post(page_path(tenant), {"form_token": token}, Origin="https://evil.example")
    assert r.status_code == 403


def test_another_tenants_draft_or_unknown_survey_is_404_and_anonymous_surveys_answer_directly(
        api: Api, tenant: TenantKeys, other_tenant: TenantKeys, clock: Any) -> None:
    create_survey(api, tenant)
    create_survey(api, tenant, id="draft", status="draft")
    customer = Browser(api)
    for path in (page_path(other_tenant), page_path(tenant, "draft"), page_path(tenant, "nope"),
                 f"/s/{tenant.tenant_id}/..%2F..", "/s/UPPER/welcome"):
        r = customer.get(path)
        assert r.status_code == 404 and "Join our club" not in r.text, path
        assert "This questionnaire does not exist or is not open." in r.text
    r = customer.post(page_path(other_tenant), {"a-phone": "+79161234567", "action": "answers"})
    assert r.status_code == 404
    create_survey(api, tenant, id="quick", kind="feedback", verify_phone=False, reward={"kind": "none"},
                  rate_limit_per_hour=1,
                  questions=[{"id": "nps", "type": "nps", "label": f"Recommend {HOSTILE}?", "required": True}])
    form = customer.get(page_path(tenant, "quick"))
    assert ESCAPED in form.text and HOSTILE not in form.text and "Send my answers" in form.text
    done = send(customer, form.text, "answers", **{"a-nps": "10"})
    assert done.status_code == 201 and "Thank you for your answers!" in done.text
    results = api.get("/v1/surveys/quick/results", tenant.admin).data
    assert results["responses"] == 1 and results["questions"][0]["promoters"] == 1
    # the survey's abuse limit (one answer per address per hour here) is said clearly, the answer kept
    limited = send(customer, form.text, "answers", **{"a-nps": "7"})
    assert limited.status_code == 429 and "Too many responses from this address; retry later." in limited.text
    assert 'id="f-a-nps-7" name="a-nps" value="7" checked' in limited.text


def test_a_post_purchase_invitation_link_answers_without_a_phone_code_once(
        api: Api, tenant: TenantKeys, clock: Any) -> None:
    create_survey(api, tenant, id="visit", kind="feedback", questions=[
        {"id": "nps", "type": "nps", "label": "Would you recommend us?", "required": True}])
    card = api.post("/v1/cards", tenant.pos, {"program_id": "main", "customer": {"phone": "+79167770001"}})
    assert card.status_code == 201, card.data
    number = card.data["number"]
    bought = api.post("/v1/purchases", tenant.pos, {
        "receipt_id": "r-1", "store_id": "msk-01", "total": 10000, "card_number": number,
        "items": [{"sku": "latte", "category": "coffee", "quantity": 1, "amount": 10000}]})
    assert bought.status_code == 200, bought.data
    before = balance(api, tenant, number)
    token = api.post("/v1/surveys/visit/invitations", tenant.pos, {"receipt_id": "r-1"}).data["token"]
    customer = Browser(api)
    form = customer.get(f"{page_path(tenant, 'visit')}?invitation={token}")
    assert form.status_code == 200 and hidden(form.text, "invitation") == token
    assert "Send my answers" in form.text and "code by SMS" not in form.text
    thanks = send(customer, form.text, "answers", **{"a-nps": "8"})
    assert thanks.status_code == 201 and f"150 points are on your card {number}." in thanks.text
    assert balance(api, tenant, number) == before + 150
    again = send(customer, form.text, "answers", **{"a-nps": "2"})
    assert again.status_code == 409 and "This invitation was already answered." in again.text
    assert 'id="f-a-nps-2" name="a-nps" value="2" checked' in again.text
    forged = send(customer, form.text, "answers", invitation=token[:-3] + "abc", **{"a-nps": "2"})
    assert forged.status_code == 400 and "This invitation is not valid for this survey." in forged.text


def test_the_invitation_link_the_api_hands_out_opens_the_hosted_page_and_answers_without_a_code(
        api: Api, tenant: TenantKeys, clock: Any) -> None:
    """The link a mailing sends is followed as is: its path is the hosted page, not a page nobody serves."""
    create_survey(api, tenant, id="visit", kind="feedback", questions=[
        {"id": "nps", "type": "nps", "label": "Would you recommend us?", "required": True}])
    card = api.post("/v1/cards", tenant.pos, {"program_id": "main", "customer": {"phone": "+79167770002"}})
    assert card.status_code == 201, card.data
    bought = api.post("/v1/purchases", tenant.pos, {
        "receipt_id": "r-2", "store_id": "msk-01", "total": 5000, "card_number": card.data["number"],
        "items": [{"sku": "latte", "category": "coffee", "quantity": 1, "amount": 5000}]})
    assert bought.status_code == 200, bought.data
    invited = api.post("/v1/surveys/visit/invitations", tenant.pos, {"receipt_id": "r-2"})
    assert invited.status_code == 201, invited.data
    link = invited.data["url_path"]
    assert link == f"/s/{tenant.tenant_id}/visit?invitation={invited.data['token']}"
    customer = Browser(api)
    form = customer.get(link)
    assert form.status_code == 200 and hidden(form.text, "invitation") == invited.data["token"]
    assert "code by SMS" not in form.text and 'name="phone"' not in form.text
    thanks = send(customer, form.text, "answers", **{"a-nps": "9"})
    assert thanks.status_code == 201, thanks.text[:2000]
    rows = api.get("/v1/surveys/visit/responses", tenant.admin)
    assert rows.status_code == 200, rows.data
    assert [(row["customer_id"], row["receipt_id"], row["answers"]) for row in rows.data["items"]] == [
        (card.data["customer_id"], "r-2", {"nps": 9})]
