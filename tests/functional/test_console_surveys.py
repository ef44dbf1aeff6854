"""The console's questionnaires through the Chalice test client: the builder, the public link and QR code, results.

The builder works without JavaScript: "add", "up", "down" and "remove" post the whole form and it comes back
with every value kept; saving parses it into the API's own SurveyCreate / SurveyDefinition, so the model's
and the service's errors are shown at the inputs they name (`questions.2.options` at `q-2-options`). Results
are aggregates only: no personal answer is ever shown. Another tenant's person gets 404 for this tenant's
questionnaire; the support role is refused; hostile text is shown as text.
"""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import pytest

from tests.functional.conftest import Api, TenantKeys
from tests.functional.test_console_programs import form_of, person, value_of
from tests.functional.test_console_sign_in import Browser, field_error
from tests.functional.test_public_survey_page import SURVEY, answer_publicly, create_survey

HOSTILE = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
TEA = "Чай с мёдом"  # noqa: RUF001 - a Russian option label


@pytest.fixture
def anna(api: Api, tenant: TenantKeys) -> Browser:
    return person(api, tenant, "anna@coffee.example")


def post(browser: Browser, form: dict[str, str], action: str, path: str = "/console/surveys", **fields: str) -> Any:
    return browser.post(path, {**form, **fields, "action": action})


def test_the_builder_adds_moves_and_removes_questions_keeping_every_value_then_saves(
        api: Api, tenant: TenantKeys, anna: Browser) -> None:
    listing = anna.get("/console/surveys")
    assert listing.status_code == 200 and "No questionnaires yet." in listing.text
    assert 'href="/console/surveys"' in listing.text  # in the navigation
    page = anna.get("/console/surveys/new")
    assert page.status_code == 200 and page.text.count("<h1>") == 1
    form = form_of(page.text, "/console/surveys")
    assert form["q-0-type"] == "text" and form["q-0-id"] == "q1" and form["verify_phone"] == "on"
    form.update({"title": f"Coffee club {HOSTILE}", "id": "club", "status": "active", "reward_kind": "points",
                 "reward_program_id": "main", "reward_points": "150", "q-0-type": "phone", "q-0-text": "Your phone",
                 "q-0-required": "on", "q-0-maps_to": "phone"})
    page = post(anna, form, "add")
    assert page.status_code == 200 and value_of(page.text, "q-1-id") == "q2"
    assert value_of(page.text, "title") == f"Coffee club {HOSTILE}" and ESCAPED in page.text
    assert HOSTILE not in page.text
    form = form_of(page.text, "/console/surveys")
    assert (form["q-0-type"], form["q-0-text"], form["q-0-required"], form["q-0-maps_to"]) == (
        "phone", "Your phone", "on", "phone")
    form.update({"q-1-type": "single_choice", "q-1-text": "Your drink", "q-1-options": "Coffee\n" + TEA})
    form = form_of(post(anna, form, "add").text, "/console/surveys")
    form.update({"q-2-type": "nps", "q-2-text": "Would you recommend us?"})
    form = form_of(post(anna, form, "add").text, "/console/surveys")
    form.update({"q-3-type": "rating", "q-3-text": "Rate the coffee", "q-3-scale": "5"})
    form = form_of(post(anna, form, "add").text, "/console/surveys")
    form.update({"q-4-type": "multiple_choice", "q-4-text": f"You like {HOSTILE}", "q-4-maps_to": "tags",
                 "q-4-options": "cakes | Cakes\nmusic | Live music"})
    form = form_of(post(anna, form, "add").text, "/console/surveys")
    form.update({"q-5-type": "consent", "q-5-text": "Offers by SMS", "q-5-consent_kind": "sms",
                 "q-5-consent_text_version": "sms-v3"})
    form = form_of(post(anna, form, "add").text, "/console/surveys")
    assert form["q-6-id"] == "q7"
    form["q-6-text"] = "To be removed"
    # move the NPS question up, then remove the last one: every other value stays
    page = post(anna, form, "up:2")
    assert value_of(page.text, "q-1-text") == "Would you recommend us?" and value_of(page.text, "q-2-text") == \
        "Your drink"
    form = form_of(page.text, "/console/surveys")
    assert form["q-2-options"] == "Coffee\n" + TEA and form["q-1-type"] == "nps"
    page = post(anna, form, "down:1")
    form = form_of(page.text, "/console/surveys")
    assert (form["q-1-type"], form["q-2-type"]) == ("single_choice", "nps")
    page = post(anna, form, "remove:6")
    form = form_of(page.text, "/console/surveys")
    assert "q-6-id" not in form and "To be removed" not in page.text and form["q-5-type"] == "consent"

    # errors at their inputs, everything typed kept
    bad = {**form, "q-1-options": "Only one", "q-0-scale": "5", "reward_points": "0", "q-4-maps_to": "gender"}
    page = post(anna, bad, "save")
    assert page.status_code == 400
    assert field_error(page.text, "q-1-options") == "a choice question needs at least 2 options"
    assert field_error(page.text, "q-0-scale") == "only rating questions have a scale"
    assert "greater than or equal to 1" in field_error(page.text, "reward_points")
    assert field_error(page.text, "q-4-maps_to") == "a multiple_choice question cannot fill gender"
    assert 'aria-describedby="f-q-1-options-hint f-q-1-options-error"' in page.text
    assert form_of(page.text, "/console/surveys") == {k: v for k, v in bad.items()}
    # the service's refusal (an unknown program) at the reward's program
    page = post(anna, {**form, "reward_program_id": "nope"}, "save")
    assert page.status_code == 422 and field_error(page.text, "reward_program_id")
    assert value_of(page.text, "q-2-text") == "Would you recommend us?"

    saved = post(anna, form, "save")
    assert saved.status_code == 303 and saved.headers["Location"] == "/console/surveys/club?done=saved"
    stored = api.get("/v1/surveys/club", tenant.admin).data
    assert [(q["id"], q["type"]) for q in stored["questions"]] == [
        ("q1", "phone"), ("q2", "single_choice"), ("q3", "nps"), ("q4", "rating"), ("q5", "multiple_choice"),
        ("q6", "consent")]
    assert stored["questions"][1]["options"] == [{"id": "coffee", "label": "Coffee"},
                                                 {"id": "chay-s-medom", "label": TEA}]
    assert stored["questions"][0]["maps_to"] == "phone" and stored["questions"][0]["required"] is True
    assert stored["reward"] == {"kind": "points", "program_id": "main", "points": 150}
    assert stored["title"] == f"Coffee club {HOSTILE}" and stored["status"] == "active"

    page = anna.get("/console/surveys/club?done=saved")
    assert page.status_code == 200 and "The questionnaire is saved." in page.text
    assert form_of(page.text, "/console/surveys/club")["q-1-options"] == "coffee | Coffee\nchay-s-medom | " + TEA
    link = f"/s/{tenant.tenant_id}/club"
    assert f'href="{link}">{link}</a>' in page.text.replace("http://localhost", "")
    assert re.search(r'<svg role="img" focusable="false" viewBox="0 0 \d+ \d+" class="sv-qr-code"><title>', page.text)
    assert " style=" not in page.text and "<style" not in page.text and "<script>" not in page.text
    poster = anna.get("/console/surveys/club/qr")
    assert poster.status_code == 200 and 'class="sv-qr-code"' in poster.text and link in poster.text

    # edit: reword a question, the API sees it
    form = form_of(page.text, "/console/surveys/club")
    assert "id" not in form
    r = post(anna, {**form, "q-1-text": "Your favourite drink"}, "save", "/console/surveys/club")
    assert r.status_code == 303
    assert api.get("/v1/surveys/club", tenant.admin).data["questions"][1]["label"] == "Your favourite drink"
    listing = anna.get("/console/surveys")
    assert '<a href="/console/surveys/club">' in listing.text and ESCAPED in listing.text and HOSTILE not in \
        listing.text


def test_a_survey_with_answers_refuses_a_retyped_question_at_its_input(
        api: Api, tenant: TenantKeys, anna: Browser, clock: Any) -> None:
    create_survey(api, tenant)
    answer_publicly(api, tenant, "+79161110001", {"a-drink": "tea", "a-likes-music": "on", "a-nps": "9",
                                                  "a-stars": "4"})
    form = form_of(anna.get(f"/console/surveys/{SURVEY}").text, f"/console/surveys/{SURVEY}")
    assert form["q-2-id"] == "drink"
    r = post(anna, {**form, "q-2-type": "multiple_choice"}, "save", f"/console/surveys/{SURVEY}")
    assert r.status_code == 409 and "The survey has responses" in unescape(r.text)
    assert field_error(r.text, "q-2-type") == "cannot change once the survey has responses"
    assert 'value="multiple_choice" selected' in r.text


def test_results_show_counts_nps_and_averages_as_charts_and_tables_without_personal_answers(
        api: Api, tenant: TenantKeys, anna: Browser, clock: Any) -> None:
    create_survey(api, tenant)
    secret_text = "My secret complaint XJ-7731"
    answer_publicly(api, tenant, "+79161110001", {"a-name": "Anna", "a-drink": "tea", "a-likes-music": "on",
                                                  "a-likes-cakes": "on", "a-nps": "10", "a-stars": "5",
                                                  "a-comment": f"{secret_text} {HOSTILE}"})
    answer_publicly(api, tenant, "+79161110002", {"a-drink": "coffee", "a-likes-music": "on", "a-nps": "3",
                                                  "a-stars": "2"})
    page = anna.get(f"/console/surveys/{SURVEY}/results")
    assert page.status_code == 200 and page.text.count("<h1>") == 1
    text = unescape(page.text)
    assert '<dd class="sv-total">2</dd>' in page.text
    assert "<dt>NPS</dt><dd>0.0</dd>" in page.text  # one promoter, one detractor
    assert '<dd class="sv-average">3.50</dd>' in page.text
    rows = re.findall(r'<tr><th scope="row">([^<]*)</th><td class="num">(\d+)</td><td class="num">([^<]*)</td></tr>',
                      page.text)
    assert ("Tea", "1", "50 %") in rows and ("Coffee", "1", "50 %") in rows and ("Live music", "2", "100 %") in rows
    assert ("10", "1", "50 %") in rows and ("3", "1", "50 %") in rows
    assert page.text.count('<svg class="chart"') == 4 and "&#34;" not in page.text  # drink, likes, nps, stars
    assert 'viewBox="0 0 640 80" role="img" aria-labelledby="chart-sv-q2-title' in page.text  # two options' bars
    assert "<title id=\"chart-sv-q2-title\">Your drink</title>" in page.text
    assert secret_text not in text and "Anna" not in text and "+7916111" not in text
    assert HOSTILE not in page.text and " style=" not in page.text
    assert text.count("Identified by phone or invitation") == 2 and "Bonus points: 150" in text


def test_another_tenant_gets_404_and_support_is_refused(api: Api, tenant: TenantKeys, other_tenant: TenantKeys,
                                                       clock: Any) -> None:
    create_survey(api, tenant)
    olga = person(api, other_tenant, "olga@tea.example")
    for path in (f"/console/surveys/{SURVEY}", f"/console/surveys/{SURVEY}/results", f"/console/surveys/{SURVEY}/qr"):
        r = olga.get(path)
        assert r.status_code == 404 and "Join our club" not in r.text, path
    csrf = re.search(r'name="csrf" value="([^"]*)"', olga.get("/console/surveys").text)
    assert csrf
    r = olga.post(f"/console/surveys/{SURVEY}", {"csrf": csrf.group(1), "title": "Hijacked", "kind": "feedback",
                                                 "status": "active", "q-0-type": "text", "q-0-text": "x",
                                                 "q-0-id": "x", "action": "save"})
    assert r.status_code == 404
    assert api.get(f"/v1/surveys/{SURVEY}", tenant.admin).data["title"] == "Join our club"
    assert "Join our club" not in olga.get("/console/surveys").text
    sam = person(api, tenant, "sam@coffee.example", "support")
    assert sam.get("/console/surveys").status_code == 403
    assert sam.get(f"/console/surveys/{SURVEY}/results").status_code == 403
