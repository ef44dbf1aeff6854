"""The console's segments through the Chalice test client: the builder, the live count, edit, duplicate, delete.

Customers are seeded through the till's and the admin's API; the console's
count is the service of POST /v1/segments/preview and must agree with it.
Invalid conditions show the model's error at the input with what was typed
kept; another tenant's person gets 404 for this tenant's segment; the support
role is refused; a hostile name is text.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.functional.conftest import Api, TenantKeys
from tests.functional.test_console_programs import form_of, person, value_of
from tests.functional.test_console_sign_in import Browser, field_error, hidden
from tests.functional.test_pos_rules import buy

HOSTILE = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
SMS = {"kind": "sms", "granted": True, "source": "pos", "text_version": "v1"}


def card_for(api: Api, tenant: TenantKeys, customer: dict[str, Any]) -> str:
    r = api.post("/v1/cards", tenant.pos, {"program_id": "main", "customer": customer})
    assert r.status_code == 201, r.data
    return str(r.data["number"])


@pytest.fixture
def customers(api: Api, tenant: TenantKeys) -> None:
    """Three customers: two VIPs (one with an SMS consent and 300 roubles spent), one plain."""
    vip = card_for(api, tenant, {"phone": "+79160000011", "tags": ["vip"], "consents": [SMS],
                                 "acquisition": {"channel": "site"}})
    assert buy(api, tenant.pos, "s-1", vip, 30_000).status_code == 200
    card_for(api, tenant, {"phone": "+79160000012", "tags": ["vip", "kids"]})
    card_for(api, tenant, {"phone": "+79160000013", "first_name": "Plain"})


@pytest.fixture
def anna(api: Api, tenant: TenantKeys) -> Browser:
    return person(api, tenant, "anna@coffee.example")


def set_(flt: dict[str, Any]) -> dict[str, Any]:
    """The conditions a filter sets (the API answers the others as null)."""
    return {k: v for k, v in flt.items() if v is not None}


def count_of(text: str) -> int:
    found = re.search(r'<p class="seg-count"><strong>([^<]*)</strong>', text)
    assert found, text[:2000]
    return int(re.sub(r"\D", "", found.group(1)))


def builder(browser: Browser, **fields: str) -> dict[str, str]:
    page = browser.get("/console/segments/new")
    assert page.status_code == 200
    return {**form_of(page.text, "/console/segments"), **fields}


def test_the_builder_counts_live_saves_edits_and_duplicates(api: Api, tenant: TenantKeys, customers: None,
                                                          anna: Browser) -> None:
    listing = anna.get("/console/segments")
    assert listing.status_code == 200 and 'href="/console/segments"' in listing.text and "No segments yet." in listing.text
    form = builder(anna, name=f"VIP {HOSTILE}", tags_any="vip", consent="sms", spend_min="10000",
                   channel_site="on")
    assert 'hx-post="/console/segments/count"' in anna.get("/console/segments/new").text
    # the live count (htmx): the same number as the API's preview
    api_count = api.post("/v1/segments/preview", tenant.admin,
                         {"filter": {"tags_any": ["vip"], "consent": "sms", "spend_min": 10000,
                                     "acquisition_channels": ["site"]}}).data["count"]
    live = anna.post("/console/segments/count", form)
    assert live.status_code == 200 and count_of(live.text) == api_count == 1
    assert "<html" not in live.text
    assert count_of(anna.post("/console/segments/count", {**form, "consent": "", "spend_min": "",
                                                           "channel_site": ""}).text) == 2
    assert count_of(anna.post("/console/segments/count", {"csrf": form["csrf"]}).text) == 3
    # without JavaScript: the Count button posts the form, the page shows the count and keeps the values
    counted = anna.post("/console/segments", {**form, "do": "count"})
    assert counted.status_code == 200 and count_of(counted.text) == 1
    assert value_of(counted.text, "spend_min") == "10000" and ESCAPED in counted.text
    # save
    saved = anna.post("/console/segments", {**form, "do": "save"})
    assert saved.status_code == 303, saved.text[:2000]
    segment_id = saved.headers["Location"].split("/")[-1].split("?")[0]
    got = api.get(f"/v1/segments/{segment_id}", tenant.admin).data
    assert got["name"] == f"VIP {HOSTILE}"
    assert set_(got["filter"]) == {"tags_any": ["vip"], "consent": "sms", "spend_min": 10000,
                                   "acquisition_channels": ["site"]}
    page = anna.get(saved.headers["Location"])
    assert page.status_code == 200 and count_of(page.text) == 1 and HOSTILE not in page.text and ESCAPED in page.text
    listing = anna.get("/console/segments").text
    assert ESCAPED in listing and HOSTILE not in listing and "Any of the tags: vip" in listing
    assert "Spent at least" in listing
    # edit: drop the consent, add a second tag condition
    edit = {**form_of(page.text, f"/console/segments/{segment_id}"), "name": "VIP kids", "consent": "",
            "spend_min": "", "channel_site": "", "tags_all": "vip, kids", "do": "save"}
    assert anna.post(f"/console/segments/{segment_id}", edit).status_code == 303
    got = api.get(f"/v1/segments/{segment_id}", tenant.admin).data
    assert got["name"] == "VIP kids" and got["version"] == 2
    assert set_(got["filter"]) == {"tags_any": ["vip"], "tags_all": ["vip", "kids"]}
    assert api.get(f"/v1/segments/{segment_id}/count", tenant.admin).data["count"] == 1
    # duplicate
    copied = anna.post(f"/console/segments/{segment_id}/duplicate", {"csrf": form["csrf"]})
    assert copied.status_code == 303
    copy_id = copied.headers["Location"].split("/")[-1].split("?")[0]
    assert copy_id != segment_id
    copy = api.get(f"/v1/segments/{copy_id}", tenant.admin).data
    assert copy["name"] == "VIP kids (copy)" and copy["filter"] == got["filter"]
    # delete
    gone = anna.post(f"/console/segments/{copy_id}/delete", {"csrf": form["csrf"]})
    assert gone.status_code == 303 and gone.headers["Location"] == "/console/segments?done=deleted"
    assert api.get(f"/v1/segments/{copy_id}", tenant.admin).status_code == 404
    assert anna.get(f"/console/segments/{copy_id}").status_code == 404


def test_invalid_conditions_show_the_error_at_the_input_and_keep_what_was_typed(api: Api, tenant: TenantKeys,
                                                                              anna: Browser) -> None:
    form = builder(anna, name="Lapsed", no_purchase_for_days="-5", spend_min="5000", spend_max="100",
                   tags_any="vip")
    page = anna.post("/console/segments", {**form, "do": "save"})
    assert page.status_code == 400
    assert "greater than or equal to 1" in field_error(page.text, "no_purchase_for_days")
    assert value_of(page.text, "no_purchase_for_days") == "-5" and value_of(page.text, "tags_any") == "vip"
    assert 'aria-invalid="true"' in page.text
    page = anna.post("/console/segments", {**form, "no_purchase_for_days": "30", "do": "save"})
    assert page.status_code == 400
    assert "spend_min must not exceed spend_max" in field_error(page.text, "spend_max")
    assert value_of(page.text, "spend_min") == "5000" and value_of(page.text, "spend_max") == "100"
    live = anna.post("/console/segments/count", {**form, "no_purchase_for_days": "30"})
    assert live.status_code == 422 and "Correct the marked conditions" in live.text
    unknown = anna.post("/console/segments", {**form, "no_purchase_for_days": "30", "spend_max": "",
                                              "store_ids": "nowhere", "do": "save"})
    assert unknown.status_code == 422 and "does not exist" in field_error(unknown.text, "store_ids")
    assert value_of(unknown.text, "store_ids") == "nowhere"
    nameless = anna.post("/console/segments", {**form, "name": "", "spend_max": "", "do": "save"})
    assert nameless.status_code == 400 and field_error(nameless.text, "name")
    assert api.get("/v1/segments", tenant.admin).data["items"] == []


def test_another_tenants_person_gets_404_and_support_403(api: Api, tenant: TenantKeys, other_tenant: TenantKeys,
                                                        anna: Browser) -> None:
    made = api.post("/v1/segments", tenant.admin, {"name": "SECRET-SEGMENT", "filter": {"tags_any": ["vip"]}})
    assert made.status_code == 201, made.data
    segment_id = made.data["segment_id"]
    boris = person(api, other_tenant, "boris@tea.example")
    csrf = hidden(boris.get("/console").text, "csrf")
    for r in (boris.get(f"/console/segments/{segment_id}"),
              boris.post(f"/console/segments/{segment_id}", {"csrf": csrf, "name": "taken", "do": "save"}),
              boris.post(f"/console/segments/{segment_id}/duplicate", {"csrf": csrf}),
              boris.post(f"/console/segments/{segment_id}/delete", {"csrf": csrf})):
        assert r.status_code == 404 and "SECRET-SEGMENT" not in r.text
    assert "SECRET-SEGMENT" not in boris.get("/console/segments").text
    got = api.get(f"/v1/segments/{segment_id}", tenant.admin).data
    assert got["name"] == "SECRET-SEGMENT" and got["version"] == 1
    assert len(api.get("/v1/segments", other_tenant.admin).data["items"]) == 0
    sam = person(api, tenant, "sam@coffee.example", "support")
    assert sam.get("/console/segments").status_code == 403
    assert sam.get(f"/console/segments/{segment_id}").status_code == 403
    assert 'href="/console/segments"' not in sam.get("/console").text
