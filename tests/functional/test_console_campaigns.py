"""The console's campaigns through the Chalice test client: create (errors at the field, values kept), send now,
progress while the workers send, results against the control group with purchases made at the till, cancel.

Customer ids are deterministic (the `members` fixture of test_campaign_results): campaign `spring25` at 30%
holds out members 5, 6 and 7 and sends to members 0 to 4; member 3 gave no SMS consent. The jobs worker runs
the fan-out (`drain`) and the mail worker delivers through moto's SNS (`deliver`), as in production.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from html import unescape
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from chalicelib.console.render import money
from tests.functional.conftest import Api, TenantKeys
from tests.functional.jobqueue import drain
from tests.functional.test_campaign_results import CAMPAIGN, IDS, bought, members, segment  # noqa: F401
from tests.functional.test_campaigns import deliver, mail_bodies
from tests.functional.test_console_programs import form_of, person, value_of
from tests.functional.test_console_sign_in import Browser, field_error
from tests.functional.test_mail_delivery import mailer, rendering  # noqa: F401
from tests.functional.test_pos_rules import buy

HOSTILE = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


@pytest.fixture
def anna(api: Api, mailer: TenantKeys) -> Browser:  # noqa: F811
    return person(api, mailer, "anna@coffee.example")


def new_form(browser: Browser, **fields: str) -> dict[str, str]:
    page = browser.get("/console/campaigns/new")
    assert page.status_code == 200, page.text[:2000]
    return {**form_of(page.text, "/console/campaigns"), **fields}


def fact(page: str, ident: str) -> str:
    found = re.search(rf'<dd id="{ident}">([^<]*)</dd>', page)
    assert found, f"no {ident}"
    return unescape(found.group(1)).strip()


def row(page: str, label: str) -> tuple[str, str]:
    found = re.search(rf'<tr><th scope="row">{re.escape(label)}</th><td class="num">([^<]*)</td>'
                      rf'<td class="num">([^<]*)</td></tr>', page)
    assert found, f"no row {label}"
    return unescape(found.group(1)), unescape(found.group(2))


def test_create_send_now_progress_and_results_against_the_control_group(
    api: Api, mailer: TenantKeys, members: list[str], anna: Browser, clock: Any  # noqa: F811
) -> None:
    tenant = mailer
    a, b, _, _, _, f, _, _ = members
    segment_id = segment(api, tenant)
    listing = anna.get("/console/campaigns")
    assert listing.status_code == 200 and "No campaigns yet." in listing.text
    assert 'href="/console/campaigns"' in listing.text, "in the navigation"
    form = new_form(anna)
    assert form["channel"] == "email" and form["holdout_pct"] == "10" and form["id"].startswith("c-")
    page = anna.get("/console/campaigns/new").text
    assert "21:00" in page and "09:00" in page and "At most 3 messages per customer per week" in page
    assert "news@coffee.example" in page, "the tenant's sender and delivery rules are shown"
    assert 'hx-post="/console/campaigns/audience"' in page and 'hx-post="/console/campaigns/templates"' in page

    # the live audience (htmx) and the templates of the chosen channel
    live = anna.post("/console/campaigns/audience", {**form, "segment_id": segment_id, "holdout_pct": "30"})
    assert live.status_code == 200 and "<html" not in live.text
    assert re.search(r"<strong>8</strong> customers are in the segment now", live.text)
    assert "About 6 get the message and 2 are kept out" in live.text
    sms = anna.post("/console/campaigns/templates", {**form, "channel": "sms"})
    assert 'value="autumn-sms"' in sms.text and 'value="autumn-email"' not in sms.text
    assert 'value="autumn-email"' in page and 'value="autumn-sms"' not in page

    # the model's errors at their fields, what was typed kept
    typed = {**form, "id": CAMPAIGN, "name": "", "segment_id": segment_id, "channel": "sms",
             "template_id": "autumn-sms", "holdout_pct": "60", "attribution_days": "a week", "do": "create"}
    wrong = anna.post("/console/campaigns", typed)
    assert wrong.status_code == 400
    assert "at least 1 character" in field_error(wrong.text, "name")
    assert "0 to 50" in field_error(wrong.text, "holdout_pct")
    assert "whole number of days" in field_error(wrong.text, "attribution_days")
    assert value_of(wrong.text, "holdout_pct") == "60" and value_of(wrong.text, "attribution_days") == "a week"
    assert value_of(wrong.text, "id") == CAMPAIGN and 'aria-invalid="true"' in wrong.text
    assert re.search(r'<option value="autumn-sms" selected>', wrong.text), "the chosen template kept"
    assert "<strong>8</strong>" in wrong.text, "the audience of the chosen segment"
    later = anna.post("/console/campaigns", {**typed, "name": "Spring", "holdout_pct": "30", "attribution_days": "7",
                                             "when": "later", "send_at": ""})
    assert later.status_code == 400 and "date and time" in field_error(later.text, "send_at")
    # the service's refusal at its field: an e-mail template for an SMS campaign
    mismatch = anna.post("/console/campaigns", {**typed, "name": "Spring", "holdout_pct": "30",
                                                "attribution_days": "7", "template_id": "autumn-email"})
    assert mismatch.status_code == 422 and "is for email" in field_error(mismatch.text, "template_id")
    assert api.get(f"/v1/campaigns/{CAMPAIGN}", tenant.admin).status_code == 404, "nothing created yet"

    # send now
    created = anna.post("/console/campaigns", {**typed, "name": f"Spring {HOSTILE}", "holdout_pct": "30",
                                               "attribution_days": "7"})
    assert created.status_code == 303, created.text[:2000]
    assert created.headers["Location"] == f"/console/campaigns/{CAMPAIGN}?done=created"
    data = api.get(f"/v1/campaigns/{CAMPAIGN}", tenant.admin).data
    assert (data["name"], data["segment_id"], data["channel"], data["template_id"], data["holdout_bps"],
            data["attribution_days"], data["status"]) == (f"Spring {HOSTILE}", segment_id, "sms", "autumn-sms",
                                                          3000, 7, "scheduled")
    page = anna.get(created.headers["Location"]).text
    assert "The campaign is created." in page and ESCAPED in page and HOSTILE not in page
    assert f'hx-get="/console/campaigns/{CAMPAIGN}/progress"' in page, "polls while it is due"

    drain()  # the fan-out: 5 messages queued, 3 held out
    progress = anna.get(f"/console/campaigns/{CAMPAIGN}/progress")
    assert progress.status_code == 200 and "<html" not in progress.text
    assert "0 of 5 messages processed" in progress.text and 'hx-trigger="every 2s"' in progress.text
    assert (fact(progress.text, "camp-targeted"), fact(progress.text, "camp-control"),
            fact(progress.text, "camp-queued")) == ("8", "3", "5")
    deliver(mail_bodies())  # member 3 has no SMS consent: suppressed
    done = anna.get(f"/console/campaigns/{CAMPAIGN}/progress").text
    assert "5 of 5 messages processed (100 %)" in done and "hx-trigger" not in done, "polling stops"
    assert (fact(done, "camp-delivered"), fact(done, "camp-failed")) == ("4", "0")
    assert fact(done, "camp-suppressed") == "1 (no consent: 1)"
    assert (fact(done, "res-delivered"), fact(done, "res-opt-outs")) == ("4", "0")
    assert row(done, "Members") == ("5", "3")

    # purchases at the till after the send: the recipients against the control group
    clock.advance(days=1)
    bought(buy(api, tenant.pos, "p1", a, 30_000))
    bought(buy(api, tenant.pos, "p2", b, 20_000))
    bought(buy(api, tenant.pos, "f1", f, 10_000))
    page = anna.get(f"/console/campaigns/{CAMPAIGN}")
    assert page.status_code == 200 and "hx-trigger" not in page.text, "without JavaScript: a reload is complete"
    text = page.text
    api_results = api.get(f"/v1/campaigns/{CAMPAIGN}/results", tenant.admin).data
    assert api_results["conversion_uplift_bps"] == 667 and api_results["incremental_revenue"] == 33_333
    assert row(text, "Members") == ("5", "3")
    assert row(text, "Buyers") == ("2", "1")
    assert row(text, "Purchases in the window") == ("2", "1")
    assert row(text, "Conversion") == ("40\u00a0%", "33.33\u00a0%")
    assert row(text, "Revenue (net of refunds)") == (money(50_000, "RUB", "en"), money(10_000, "RUB", "en"))
    assert row(text, "Revenue per member") == (money(10_000, "RUB", "en"), money(3_333, "RUB", "en"))
    assert fact(text, "res-uplift") == "+6.67 percentage points"
    assert fact(text, "res-incremental") == money(33_333, "RUB", "en")
    assert text.count('<svg class="chart"') == 2 and "<title id=\"chart-campaign-conversion-title\">" in text
    assert "<title>Recipients: 40\u00a0%</title>" in text and "<title>Control group: 33.33\u00a0%</title>" in text
    assert "Too late" not in text and "Cancel the campaign" not in text, "a sent campaign has no cancel"
    assert 'style="' not in text and "<script>" not in text.split("</head>")[1]
    listing = anna.get("/console/campaigns").text
    assert ESCAPED in listing and HOSTILE not in listing and "4 / 5" in listing and "Sent" in listing
    anna.language = "ru"
    russian = anna.get(f"/console/campaigns/{CAMPAIGN}").text
    assert "Результаты" in russian and "+6,67 п. п." in russian and "33,33\u00a0%" in russian
    assert "Тихие часы" in anna.get("/console/campaigns/new").text
    anna.language = "en"
    # too late to cancel: the 409 on the page
    late = anna.post(f"/console/campaigns/{CAMPAIGN}/cancel", {"csrf": form["csrf"]})
    assert late.status_code == 409 and "Too late to cancel: the campaign&#39;s status is “Sent”." in late.text


def test_a_scheduled_campaign_is_cancelled_after_a_confirmation(
    api: Api, mailer: TenantKeys, members: list[str], anna: Browser, clock: Any  # noqa: F811
) -> None:
    tenant = mailer
    segment_id = segment(api, tenant)
    zone = ZoneInfo(api.get(f"/v1/tenants/{tenant.tenant_id}", tenant.admin).data.get("timezone", "Europe/Moscow"))
    local = (clock.now() + timedelta(days=1)).astimezone(zone).replace(second=0, microsecond=0, tzinfo=None)
    form = new_form(anna, id="evening", name="Evening", segment_id=segment_id, channel="email",
                    template_id="autumn-email", when="later", send_at=local.strftime("%Y-%m-%dT%H:%M"),
                    holdout_pct="0", do="create")
    created = anna.post("/console/campaigns", form)
    assert created.status_code == 303, created.text[:2000]
    data = api.get("/v1/campaigns/evening", tenant.admin).data
    assert datetime.fromisoformat(data["send_at"]) == local.replace(tzinfo=zone), "the time typed, in the tenant's zone"
    assert data["holdout_bps"] == 0 and data["status"] == "scheduled"
    page = anna.get("/console/campaigns/evening").text
    assert "Sending starts at" in page and "hx-trigger" not in page, "a day ahead: no polling yet"
    assert 'action="/console/campaigns/evening/cancel"' in page and "no uplift" not in page
    confirm = anna.get("/console/campaigns/evening/cancel")
    assert confirm.status_code == 200 and "Cancel the campaign Evening?" in confirm.text
    done = anna.post("/console/campaigns/evening/cancel", {"csrf": form["csrf"]})
    assert done.status_code == 303 and done.headers["Location"] == "/console/campaigns/evening?done=cancelled"
    assert api.get("/v1/campaigns/evening", tenant.admin).data["status"] == "cancelled"
    page = anna.get(done.headers["Location"]).text
    assert "The campaign is cancelled." in page and "Status: Cancelled" in page
    again = anna.post("/console/campaigns/evening/cancel", {"csrf": form["csrf"]})
    assert again.status_code == 409 and "Too late to cancel: the campaign&#39;s status is “Cancelled”." in again.text
    clock.advance(days=2)
    drain()
    assert mail_bodies() == [], "nothing sent"
    # a duplicate id: the service's 409 at the id field, values kept
    dup = anna.post("/console/campaigns", {**form, "name": "Again"})
    assert dup.status_code == 409 and "already exists" in field_error(dup.text, "id")
    assert value_of(dup.text, "name") == "Again"


def test_another_tenants_person_sees_nothing_and_support_is_refused(
    api: Api, mailer: TenantKeys, members: list[str], anna: Browser, other_tenant: TenantKeys  # noqa: F811
) -> None:
    tenant = mailer
    segment_id = api.post("/v1/segments", tenant.admin, {"name": f"Secret {HOSTILE}", "filter": {}}).data["segment_id"]
    form = new_form(anna, id="secret-one", name="Secret plan", segment_id=segment_id, channel="sms",
                    template_id="autumn-sms", when="later", send_at="2027-01-10T12:00", do="create")
    assert anna.post("/console/campaigns", form).status_code == 303
    new_page = anna.get("/console/campaigns/new").text
    assert f"Secret {ESCAPED}" in new_page and HOSTILE not in new_page, "a hostile segment name is text"
    olga = person(api, other_tenant, "olga@fuel.example")
    for path in ("/console/campaigns/secret-one", "/console/campaigns/secret-one/progress",
                 "/console/campaigns/secret-one/cancel"):
        got = olga.get(path)
        assert got.status_code == 404 and "Secret plan" not in got.text, path
    csrf = form_of(olga.get("/console/campaigns/new").text, "/console/campaigns")["csrf"]
    refused = olga.post("/console/campaigns/secret-one/cancel", {"csrf": csrf})
    assert refused.status_code == 404 and "Secret plan" not in refused.text
    assert api.get("/v1/campaigns/secret-one", tenant.admin).data["status"] == "scheduled", "unchanged"
    theirs = olga.get("/console/campaigns").text
    assert "Secret plan" not in theirs and "No campaigns yet." in theirs
    count = olga.post("/console/campaigns/audience", {"csrf": csrf, "segment_id": segment_id})
    assert "Secret" not in count.text and "<strong>" not in count.text, "another tenant's segment is not counted"
    support = person(api, tenant, "sam@coffee.example", role="support")
    assert support.get("/console/campaigns").status_code == 403
    assert support.get("/console/campaigns/secret-one").status_code == 403
