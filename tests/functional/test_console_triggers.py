"""The console's trigger messages through the Chalice test client: settings per program, errors at the field,
what was sent after a run, and isolation.

Templates, a feedback survey and a birthday coupon come from test_triggers.prepare; the console's form is parsed
into the API's TriggerSettings and saved by its service, so GET /v1/programs/{id}/triggers must show what the form
saved. The run and the mail worker are the real ones (moto's SNS).
"""

from __future__ import annotations

import re
from html import unescape
from typing import Any

from chalicelib.console import render
from chalicelib.schemas.templates import TemplateIn
from chalicelib.services.marketing import templates
from tests.functional.conftest import Api, TenantKeys
from tests.functional.test_console_programs import form_of, person, value_of
from tests.functional.test_console_sign_in import Browser, field_error
from tests.functional.test_mail_delivery import mailer, rendering  # noqa: F401
from tests.functional.test_triggers import buy, member, run_and_deliver, shop, texts  # noqa: F401

HOSTILE = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
PAGE = "/console/triggers/main"


def selected(page: str, name: str) -> str:
    found = re.search(rf'<select id="f-{re.escape(name)}" name="{re.escape(name)}"[^>]*>(.*?)</select>', page, re.S)
    assert found, f"no select {name}"
    chosen = re.search(r'<option value="([^"]*)" selected>', found.group(1))
    return unescape(chosen.group(1)) if chosen else ""


def checked(page: str, name: str) -> bool:
    found = re.search(rf'<input type="checkbox" id="f-{re.escape(name)}"[^>]*>', page)
    assert found, f"no checkbox {name}"
    return " checked" in found.group(0)


def settings_form(browser: Browser, **changes: str) -> dict[str, str]:
    page = browser.get(PAGE)
    assert page.status_code == 200, page.text[:2000]
    form = form_of(page.text, PAGE)
    for name, value in changes.items():
        if value is None:
            form.pop(name, None)
        else:
            form[name] = value
    return form


def test_an_admin_switches_triggers_on_with_templates_and_gifts_and_sees_what_was_sent(
        api: Api, shop: TenantKeys, clock: Any) -> None:  # noqa: F811
    templates.create(shop.tenant_id, TemplateIn(id="hostile-sms", name=f"Hi {HOSTILE}", channel="sms", body="Hi"),
                     "test")
    anna = person(api, shop, "anna@coffee.example")
    listing = anna.get("/console/triggers")
    assert listing.status_code == 200 and 'href="/console/triggers"' in listing.text
    assert '<a href="/console/triggers/main">Main program</a>' in listing.text and "None" in listing.text

    page = anna.get(PAGE)
    assert page.status_code == 200 and page.text.count("<h1>") == 1
    assert value_of(page.text, "send_time") == "10:00" and not checked(page.text, "welcome-enabled")
    assert '<option value="welcome-sms">welcome-sms (welcome-sms)</option>' in page.text
    assert '<option value="bday">Birthday (bday)</option>' in page.text  # the birthday gift's coupon campaign
    assert '<option value="visit">How was your visit? (visit)</option>' in page.text
    assert ESCAPED in page.text and HOSTILE not in page.text
    assert "The triggers of this program have not run yet." in page.text

    form = settings_form(anna, **{"welcome-enabled": "on", "welcome-template_id": "welcome-sms",
                                  "birthday-enabled": "on", "birthday-template_id": "bday-sms",
                                  "birthday-days_before": "3", "birthday-bonus_points": "100",
                                  "birthday-coupon_campaign_id": "bday", "win_back-days": "30",
                                  "send_time": "11:30"})
    saved = anna.post(PAGE, form)
    assert saved.status_code == 303 and saved.headers["Location"] == f"{PAGE}?done=saved", saved.text[:3000]
    got = api.get("/v1/programs/main/triggers", shop.admin).data
    assert got["send_time"] == "11:30"
    assert got["welcome"] == {"enabled": True, "channel": "sms", "template_id": "welcome-sms"}
    assert got["birthday"] == {"enabled": True, "channel": "sms", "template_id": "bday-sms", "days_before": 3,
                               "bonus_points": 100, "coupon_campaign_id": "bday"}
    assert got["win_back"]["days"] == 30 and got["win_back"]["enabled"] is False
    page = anna.get(saved.headers["Location"]).text
    assert "The trigger settings are saved." in page and checked(page, "welcome-enabled")
    assert selected(page, "birthday-coupon_campaign_id") == "bday" and value_of(page, "birthday-bonus_points") == "100"
    listing = anna.get("/console/triggers").text
    assert "Welcome, Birthday" in listing

    # a member activates a card; the next day's run sends the welcome, and the page shows what was sent
    customer, card = member(api, shop, "+79161110009", "Vera")
    silent, silent_card = member(api, shop, "+79161110010", "Gleb", consents=[])
    buy(api, shop, "r-v1", card, 20_000)
    buy(api, shop, "r-g1", silent_card, 20_000)
    clock.advance(days=1)
    run, _messages = run_and_deliver(shop.tenant_id)
    assert run.by_kind == {"welcome": 2} and texts() == ["Welcome, Vera! Balance 10"]
    page = anna.get(PAGE).text
    row = re.search(r'<th scope="row">Welcome</th>\s*<td>On</td>\s*<td class="num">(\d+)</td>\s*<td class="num">(\d+)'
                    r'</td>\s*<td class="num">(\d+)</td>\s*<td class="num">(\d+)</td>', page)
    assert row and row.groups() == ("1", "1", "0", "2"), page
    assert "Customers checked" in page
    sent = anna.get(f"{PAGE}/sent?trigger=welcome")
    assert sent.status_code == 200 and sent.text.count("<h1>") == 1
    rows = re.findall(r'<tr>\s*<th scope="row">[^<]+</th>\s*<td><a href="/console/customers/([^"]+)">[^<]+</a></td>'
                      r'\s*<td>([^<]+)</td>\s*<td>([^<]+)</td>\s*<td>([^<]+)</td>\s*<td><span class="trg-status '
                      r'trg-(\w+)">([^<]+)</span>', sent.text)
    assert sorted(rows) == sorted([(customer, "SMS", "welcome-sms", "activation", "sent", "Sent"),
                                   (silent, "SMS", "welcome-sms", "activation", "suppressed", "Not sent (rules)")]
                                  ), sent.text
    assert "Not sent (rules)</span>: no consent" in sent.text and "<dd>1 (no consent: 1)</dd>" in sent.text
    assert "+79161110009" not in sent.text and "Vera" not in sent.text  # no personal data beyond the id
    anna.language = "ru"
    russian = anna.get(f"{PAGE}/sent?trigger=welcome")
    assert russian.status_code == 200 and "Что отправил триггер" in russian.text
    assert render.gettext("ru", "Not sent (rules)") in russian.text
    assert "Триггерные сообщения программы main" in anna.get(PAGE).text
    anna.language = "en"
    empty = anna.get(f"{PAGE}/sent?trigger=birthday").text
    assert "Nothing sent yet." in empty
    assert anna.get(f"{PAGE}/sent?trigger=nonsense").status_code == 404


def test_errors_are_shown_at_their_inputs_with_what_was_typed_kept(api: Api, shop: TenantKeys,  # noqa: F811
                                                                 clock: Any) -> None:
    anna = person(api, shop, "anna@coffee.example")
    # the model: a trigger switched on needs a template; days are whole numbers in range
    form = settings_form(anna, **{"birthday-enabled": "on", "birthday-bonus_points": "250",
                                  "win_back-days": "3", "points_expiring-min_points": "lots"})
    refused = anna.post(PAGE, form)
    assert refused.status_code == 400
    page = refused.text
    assert field_error(page, "birthday-template_id") == "Pick a template to switch this trigger on."
    assert 'aria-invalid="true" aria-describedby="f-birthday-template_id-hint f-birthday-template_id-error"' in page
    assert "greater than or equal to 7" in field_error(page, "win_back-days")
    assert "integer" in field_error(page, "points_expiring-min_points")
    assert value_of(page, "birthday-bonus_points") == "250" and value_of(page, "points_expiring-min_points") == "lots"
    assert checked(page, "birthday-enabled")
    # the service: the template's channel, the SMS quiet hours
    form = settings_form(anna, **{"welcome-enabled": "on", "welcome-template_id": "news-email"})
    refused = anna.post(PAGE, form)
    assert refused.status_code == 422
    assert "is for email, the welcome trigger sends sms" in field_error(refused.text, "welcome-template_id")
    assert selected(refused.text, "welcome-template_id") == "news-email"
    form = settings_form(anna, **{"welcome-enabled": "on", "welcome-template_id": "welcome-sms",
                                  "send_time": "22:30"})
    refused = anna.post(PAGE, form)
    assert refused.status_code == 422 and "quiet hours" in field_error(refused.text, "send_time")
    assert value_of(refused.text, "send_time") == "22:30"
    form = settings_form(anna, **{"feedback-enabled": "on", "feedback-template_id": "feedback-sms"})
    refused = anna.post(PAGE, form)
    assert refused.status_code == 400
    assert field_error(refused.text, "feedback-survey_id") == "Pick a feedback questionnaire to switch this trigger on."
    assert api.get("/v1/programs/main/triggers", shop.admin).data["updated_at"] is None  # nothing saved

    # settings saved by someone else meanwhile: refused, what was typed kept
    stale = settings_form(anna, **{"win_back-enabled": "on", "win_back-template_id": "winback-sms",
                                   "win_back-days": "45"})
    assert api.put("/v1/programs/main/triggers", shop.admin,
                   {"welcome": {"enabled": True, "template_id": "welcome-sms"}}).status_code == 200
    refused = anna.post(PAGE, stale)
    assert refused.status_code == 409 and "changed by someone else" in refused.text
    assert value_of(refused.text, "win_back-days") == "45" and checked(refused.text, "win_back-enabled")
    assert api.get("/v1/programs/main/triggers", shop.admin).data["win_back"]["enabled"] is False
    again = anna.post(PAGE, {**stale, "updated": value_of(refused.text, "updated")})
    assert again.status_code == 303
    assert api.get("/v1/programs/main/triggers", shop.admin).data["win_back"]["days"] == 45


def test_another_tenants_program_is_not_found_and_support_is_refused(api: Api, shop: TenantKeys,  # noqa: F811
                                                                     other_tenant: TenantKeys, clock: Any) -> None:
    r = api.post("/v1/programs", shop.admin, {"id": "summer", "name": f"Summer {HOSTILE}",
                                              "earning": {"rate_bps": 500}})
    assert r.status_code == 201, r.data
    anna = person(api, shop, "anna@coffee.example")
    page = anna.get("/console/triggers")
    assert ESCAPED in page.text and HOSTILE not in page.text
    zoe = person(api, other_tenant, "zoe@fuel.example")
    for path in ("/console/triggers/summer", "/console/triggers/summer/sent?trigger=welcome"):
        seen = zoe.get(path)
        assert seen.status_code == 404 and "Summer" not in seen.text
    csrf = value_of(zoe.get("/console/triggers").text, "csrf")
    posted = zoe.post("/console/triggers/summer", {"csrf": csrf, "welcome-enabled": "on",
                                                   "welcome-template_id": "welcome-sms"})
    assert posted.status_code == 404
    assert api.get("/v1/programs/summer/triggers", shop.admin).data["welcome"]["enabled"] is False
    assert "Summer" not in zoe.get("/console/triggers").text
    sam = person(api, shop, "sam@coffee.example", role="support")
    for path in ("/console/triggers", PAGE, f"{PAGE}/sent?trigger=welcome"):
        assert sam.get(path).status_code == 403
    assert 'href="/console/triggers"' not in sam.get("/console").text
