"""The console's programs and stores through the Chalice test client, as a browser sees them.

A tenant admin edits a program's rules in the form, reviews the differences
from the rules in force, publishes (the service of PUT /v1/programs/{id}); the
next purchase through the POS API is priced by the new rule version and shows
on the dashboard. Refused rules show the model's error at the input and keep
what was typed; another tenant's ids are 404; the support role is refused;
hostile names are text everywhere.
"""

from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser
from typing import Any

import pytest

from chalicelib.console.pages import pages
from tests.functional.conftest import Api, TenantKeys
from tests.functional.people import invite_and_join, verify_sender
from tests.functional.test_console_sign_in import Browser, field_error, hidden, signed_in
from tests.functional.test_pos_rules import buy, new_card

HOSTILE = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


class _Form(HTMLParser):
    """The fields a browser would send for the form with `action`: inputs, checked boxes, selects, textareas."""

    def __init__(self, action: str) -> None:
        super().__init__(convert_charrefs=True)
        self.action, self.inside, self.fields = action, False, {}
        self.select: str | None = None
        self.first_option: str | None = None
        self.textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = a.get("action") == self.action
        if not self.inside:
            return
        if tag == "input" and a.get("name"):
            if a.get("type") in ("checkbox", "radio"):
                if "checked" in a:
                    self.fields[a["name"]] = a.get("value", "on")
            else:
                self.fields[a["name"]] = a.get("value", "")
        elif tag == "select":
            self.select, self.first_option = a.get("name"), None
        elif tag == "option" and self.select:
            if self.first_option is None:
                self.first_option = a.get("value", "")
                self.fields.setdefault(self.select, self.first_option)
            if "selected" in a:
                self.fields[self.select] = a.get("value", "")
        elif tag == "textarea":
            self.textarea = a.get("name")
            self.fields[self.textarea] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self.select = None
        elif tag == "textarea":
            self.textarea = None

    def handle_data(self, data: str) -> None:
        if self.textarea:
            self.fields[self.textarea] += data


def form_of(page: str, action: str) -> dict[str, str]:
    parser = _Form(action)
    parser.feed(page)
    assert parser.fields, f"no form posting to {action}"
    return dict(parser.fields)


def value_of(page: str, name: str) -> str:
    found = re.search(rf'name="{re.escape(name)}"[^>]*value="([^"]*)"', page)
    assert found, f"no input {name}"
    return unescape(found.group(1))


def diff_rows(page: str) -> list[tuple[str, str, str]]:
    rows = re.findall(r'<tr><th scope="row">([^<]*)</th><td class="old"><del>([^<]*)</del></td>'
                      r'<td class="new"><ins>([^<]*)</ins></td></tr>', page)
    return [(unescape(a), unescape(b), unescape(c)) for a, b, c in rows]


def person(api: Api, tenant: TenantKeys, email: str, role: str = "tenant_admin") -> Browser:
    """A person of the tenant, invited with its admin key, signed in to the console (MFA enrolled)."""
    verify_sender()
    invite_and_join(api, None, email, role, key=tenant.admin)
    return signed_in(api, email, None)


@pytest.fixture
def anna(api: Api, tenant: TenantKeys) -> Browser:
    return person(api, tenant, "anna@coffee.example")


def review(browser: Browser, program: str, form: dict[str, str]) -> Any:
    return browser.post(f"/console/programs/{program}/review", form)


def test_an_admin_changes_the_earning_rate_reviews_publishes_and_the_next_purchase_uses_it(
        api: Api, tenant: TenantKeys, anna: Browser) -> None:
    listing = anna.get("/console/programs")
    assert listing.status_code == 200 and '<a href="/console/programs/main">Main program</a>' in listing.text
    page = anna.get("/console/programs/main")
    assert page.status_code == 200 and page.text.count("<h1>") == 1
    assert value_of(page.text, "earning.rate_bps") == "500" and 'for="f-earning.rate_bps"' in page.text
    form = form_of(page.text, "/console/programs/main/review")
    assert form["kind"] == "points" and form["redemption.point_value"] == "100" and "tiers.enabled" not in form
    assert "store_ids.msk-01" not in form  # no store ticked: every store

    r = review(anna, "main", {**form, "earning.rate_bps": "1000"})
    assert r.status_code == 200, r.text[-2000:]
    assert diff_rows(r.text) == [("Earning · Earning rate", "5%", "10%")]
    assert "The new rules take effect as soon as you publish them." in r.text
    confirm = form_of(r.text, "/console/programs/main/publish")
    assert confirm["base_version"] == "1" and confirm["earning.rate_bps"] == "1000"

    r = anna.post("/console/programs/main/publish", confirm)
    assert r.status_code == 303 and r.headers["Location"] == "/console/programs/main?done=published&version=2"
    page = anna.get(r.headers["Location"])
    assert "The new rules are published." in page.text and "Version 2" in page.text
    assert value_of(page.text, "earning.rate_bps") == "1000"
    program = api.get("/v1/programs/main", tenant.admin).data
    assert program["version"] == 2 and program["earning"]["rate_bps"] == 1000
    entries = api.get("/v1/audit?action=program.updated", tenant.admin).data["items"]
    assert entries and entries[0]["actor_email"] == "anna@coffee.example"

    history = anna.get("/console/programs/main/versions")
    assert history.status_code == 200
    assert re.findall(r"versions/(\d+)\">Version", history.text) == ["2", "1"]
    assert "In force" in history.text and "Replaced" in history.text
    version = anna.get("/console/programs/main/versions/2")
    assert version.status_code == 200
    assert diff_rows(version.text) == [("Earning · Earning rate", "5%", "10%")]
    assert "Changes from version 1" in version.text
    first = anna.get("/console/programs/main/versions/1")
    assert first.status_code == 200 and "<td>5%</td>" in first.text and "Changes from version" not in first.text
    assert anna.get("/console/programs/main/versions/9").status_code == 404

    card = new_card(api, tenant)
    sale = buy(api, tenant.pos, "r-1", card, 100_000)
    assert sale.status_code == 200, sale.data
    assert sale.data["points_earned"] == 100 and sale.data["rule_version"] == 2  # 10% of 1 000 RUB, 1 RUB a point
    ledger = api.get(f"/v1/cards/{card}/transactions", tenant.pos)
    assert ledger.status_code == 200 and ledger.data["items"][0]["rule_version"] == 2

    dash = anna.get("/console/dashboard")
    assert dash.status_code == 200
    today = {name: re.search(rf'<tr id="fig-{name}"><th scope="row">[^<]*</th>\s*<td class="num">([^<]*)</td>',
                             dash.text).group(1) for name in ("receipts", "revenue", "points_earned",
                                                              "new_customers", "cards_activated")}
    assert today == {"receipts": "1", "revenue": "RUB1,000.00", "points_earned": "100", "new_customers": "1",
                     "cards_activated": "1"}


def test_invalid_rules_show_the_models_error_at_the_input_and_keep_what_was_typed(
        api: Api, tenant: TenantKeys, anna: Browser) -> None:
    form = form_of(anna.get("/console/programs/main").text, "/console/programs/main/review")

    r = review(anna, "main", {**form, "earning.rate_bps": "5,5", "name": ""})
    assert r.status_code == 400
    assert "valid integer" in field_error(r.text, "earning.rate_bps")
    assert value_of(r.text, "earning.rate_bps") == "5,5"
    assert "at least 1 character" in field_error(r.text, "name")
    assert 'aria-describedby="f-earning.rate_bps-hint f-earning.rate_bps-error"' in r.text
    assert 'href="#f-earning.rate_bps"' in r.text  # the summary at the top links to the input

    r = review(anna, "main", {**form, "earning.rate_bps": "20000", "redemption.max_share_bps": "-1"})
    assert r.status_code == 400
    assert field_error(r.text, "earning.rate_bps") == "Input should be less than or equal to 10000"
    assert field_error(r.text, "redemption.max_share_bps") == "Input should be greater than or equal to 0"
    assert value_of(r.text, "earning.rate_bps") == "20000"

    r = review(anna, "main", {**form, "earning.rate_bps": "0"})  # a whole-program rule, placed at its input
    assert r.status_code == 400
    assert field_error(r.text, "earning.rate_bps") == "Value error, a points program needs earning.rate_bps > 0"

    promotion = {"earning.promotions.0.id": "", "earning.promotions.1.id": "double",
                 "earning.promotions.1.name": "Double <b>week</b>", "earning.promotions.1.starts_at": "2030-01-10T00:00",
                 "earning.promotions.1.ends_at": "2030-01-03T00:00", "earning.promotions.1.multiplier_bps": "20000"}
    tiers = {"tiers.enabled": "on", "tiers.levels.0.id": "silver", "tiers.levels.0.name": "Silver",
             "tiers.levels.0.threshold": "100"}
    r = review(anna, "main", {**form, **promotion, **tiers, "card_numbers.length": "30"})
    assert r.status_code == 400
    assert field_error(r.text, "earning.promotions.1.ends_at") == "Value error, ends_at must be after starts_at"
    assert value_of(r.text, "earning.promotions.1.name") == "Double <b>week</b>"
    assert "Double <b>week</b>" not in r.text
    assert re.search(r'id="g-tiers-error">Value error, the first tier is the base tier', r.text)
    assert field_error(r.text, "card_numbers.length") == "Input should be less than or equal to 19"
    assert value_of(r.text, "tiers.levels.0.threshold") == "100" and 'name="tiers.enabled" value="on" checked' in \
        r.text

    r = review(anna, "main", {**form, "tiers.enabled": "on"})  # tiers on, no level typed
    assert r.status_code == 400 and re.search(r'id="g-tiers.levels-error">List should have at least 1 item', r.text)
    r = review(anna, "main", {**form, **tiers, "tiers.levels.0.threshold": "0", "kind": "gift"})
    assert field_error(r.text, "tiers.enabled") == "Value error, a gift program holds money; it has no tiers"

    past = review(anna, "main", {**form, "earning.rate_bps": "600", "effective_at": "2020-01-01T00:00"})
    assert past.status_code == 200  # the model takes it; the service refuses it when publishing
    r = anna.post("/console/programs/main/publish", form_of(past.text, "/console/programs/main/publish"))
    assert r.status_code == 422
    assert field_error(r.text, "effective_at") == "Rules cannot change in the past: history stays as it was."
    assert value_of(r.text, "effective_at") == "2020-01-01T00:00" and value_of(r.text, "earning.rate_bps") == "600"
    assert api.get("/v1/programs/main", tenant.admin).data["version"] == 1  # nothing was written


def test_rows_are_added_without_javascript_and_nested_rules_are_published(
        api: Api, tenant: TenantKeys, anna: Browser) -> None:
    page = anna.get("/console/programs/main").text
    form = form_of(page, "/console/programs/main/review")
    assert "earning.promotions.0.id" in form and "earning.promotions.1.id" not in form
    more = anna.post("/console/programs/main/edit", {**form, "add": "earning.promotions",
                                                     "earning.rate_bps": "700"})
    assert more.status_code == 200
    form = form_of(more.text, "/console/programs/main/review")
    assert "earning.promotions.1.id" in form and form["earning.rate_bps"] == "700"  # typed values kept
    form.update({
        "earning.promotions.1.id": "winter", "earning.promotions.1.name": "Winter",
        "earning.promotions.1.starts_at": "2030-01-01T00:00", "earning.promotions.1.ends_at": "2030-02-01T00:00",
        "earning.promotions.1.categories": "coffee, tea", "earning.promotions.1.multiplier_bps": "20000",
        "earning.category_multipliers.0.key": "beans", "earning.category_multipliers.0.multiplier_bps": "15000",
        "tiers.enabled": "on", "tiers.levels.0.id": "base", "tiers.levels.0.name": "Base",
        "tiers.levels.0.threshold": "0", "tiers.levels.1.id": "gold", "tiers.levels.1.name": "Gold",
        "tiers.levels.1.threshold": "1000000", "tiers.levels.1.earn_multiplier_bps": "15000",
        "referral.enabled": "on", "referral.friend_points": "50", "referral.referrer_points": "100",
        "pending_days": "14", "expiry_days": "365", "store_ids.msk-01": "on",
    })
    r = review(anna, "main", form)
    assert r.status_code == 200, r.text[-3000:]
    changes = dict((label, (old, new)) for label, old, new in diff_rows(r.text))
    assert changes["Earning · Earning rate"] == ("5%", "7%")
    assert changes["Promotions · «winter» · Multiplier"] == ("—", "200%")
    assert changes["Promotions · «winter» · Starts at"] == ("—", "1/1/30, 12:00\u202fAM")
    assert changes["Category multipliers · «beans»"] == ("—", "150%")
    assert changes["Tiers"] == ("No", "Yes") and changes["Levels · «gold» · Earning multiplier"] == ("—", "150%")
    assert changes["Referral · Points for the member who invited"] == ("—", "100")
    assert changes["Pending and expiry · Days before earned points can be spent"] == ("0", "14")
    assert changes["Where it runs · Stores"] == ("—", "msk-01")
    r = anna.post("/console/programs/main/publish", form_of(r.text, "/console/programs/main/publish"))
    assert r.status_code == 303, r.text[-3000:]
    program = api.get("/v1/programs/main", tenant.admin).data
    promo = program["earning"]["promotions"][0]
    assert promo["id"] == "winter" and promo["categories"] == ["coffee", "tea"]
    assert promo["starts_at"] == "2030-01-01T00:00:00+03:00"  # typed in the tenant's time zone
    assert program["earning"]["category_multipliers"] == {"beans": 15000}
    assert [t["id"] for t in program["tiers"]["levels"]] == ["base", "gold"]
    assert program["referral"]["referrer_points"] == 100 and program["store_ids"] == ["msk-01"]

    page = anna.get("/console/programs/main").text
    form = form_of(page, "/console/programs/main/review")
    assert form["earning.promotions.0.starts_at"] == "2030-01-01T00:00" and form["tiers.levels.1.id"] == "gold"
    form["earning.promotions.0.remove"] = "on"
    del form["referral.enabled"]
    r = review(anna, "main", form)
    changes = dict((label, (old, new)) for label, old, new in diff_rows(r.text))
    assert changes["Promotions · «winter» · Multiplier"] == ("200%", "—") and changes["Referral"] == ("Yes", "No")


def test_a_version_published_meanwhile_is_reviewed_again_not_overwritten(
        api: Api, tenant: TenantKeys, anna: Browser) -> None:
    form = form_of(anna.get("/console/programs/main").text, "/console/programs/main/review")
    r = review(anna, "main", {**form, "earning.rate_bps": "800"})
    confirm = form_of(r.text, "/console/programs/main/publish")
    changed = api.put("/v1/programs/main", tenant.admin, {"name": "Main program", "earning": {"rate_bps": 900}})
    assert changed.status_code == 200
    r = anna.post("/console/programs/main/publish", confirm)
    assert r.status_code == 409 and "Someone published other rules meanwhile" in r.text
    assert diff_rows(r.text)[0] == ("Earning · Earning rate", "9%", "8%")
    r = anna.post("/console/programs/main/publish", form_of(r.text, "/console/programs/main/publish"))
    assert r.status_code == 303
    assert api.get("/v1/programs/main", tenant.admin).data["earning"]["rate_bps"] == 800


def test_a_new_program_is_created_in_the_form(api: Api, tenant: TenantKeys, anna: Browser) -> None:
    page = anna.get("/console/programs?new")
    assert page.status_code == 200 and "<h1>New program</h1>" in page.text
    form = form_of(page.text, "/console/programs")
    assert form["earning.rate_bps"] == "500" and form["id"] == ""
    r = anna.post("/console/programs", {**form, "id": "Bad Id", "name": "Espresso club"})
    assert r.status_code == 400 and "should match pattern" in field_error(r.text, "id")
    assert value_of(r.text, "name") == "Espresso club"
    r = anna.post("/console/programs", {**form, "id": "main", "name": "Again"})
    assert r.status_code == 409 and field_error(r.text, "id") == "Program 'main' already exists."
    r = anna.post("/console/programs", {**form, "id": "espresso", "name": "Espresso club", "kind": "discount",
                                        "discount.percent_bps": "300"})
    assert r.status_code == 303 and r.headers["Location"] == "/console/programs/espresso?done=created"
    made = api.get("/v1/programs/espresso", tenant.admin).data
    assert made["kind"] == "discount" and made["discount"]["percent_bps"] == 300 and made["version"] == 1
    assert "Espresso club" in anna.get("/console/programs").text


def test_stores_are_listed_added_edited_closed_and_reopened(api: Api, tenant: TenantKeys, anna: Browser) -> None:
    page = anna.get("/console/stores")
    assert page.status_code == 200 and "Tverskaya 1" in page.text and page.text.count("<h1>") == 1
    form = form_of(page.text, "/console/stores")
    r = anna.post("/console/stores", {**form, "id": "SPb 2", "name": "Nevsky 2"})
    assert r.status_code == 400 and "should match pattern" in field_error(r.text, "id")
    assert value_of(r.text, "name") == "Nevsky 2"
    r = anna.post("/console/stores", {**form, "id": "msk-01", "name": "Again"})
    assert r.status_code == 409 and field_error(r.text, "id") == "Store 'msk-01' already exists."
    r = anna.post("/console/stores", {**form, "id": "spb-02", "name": "Nevsky 2", "region": "spb",
                                      "address": "Nevsky pr. 2"})
    assert r.status_code == 303 and r.headers["Location"] == "/console/stores?done=created"
    store = api.get("/v1/stores/spb-02", tenant.admin).data
    assert (store["name"], store["region"], store["address"], store["active"]) == ("Nevsky 2", "spb",
                                                                                   "Nevsky pr. 2", True)

    page = anna.get("/console/stores/spb-02")
    assert page.status_code == 200 and value_of(page.text, "name") == "Nevsky 2"
    edit = form_of(page.text, "/console/stores/spb-02")
    r = anna.post("/console/stores/spb-02", {**edit, "name": ""})
    assert r.status_code == 400 and "at least 1 character" in field_error(r.text, "name")
    assert value_of(r.text, "address") == "Nevsky pr. 2"
    r = anna.post("/console/stores/spb-02", {**edit, "name": "Nevsky 2A"})
    assert r.status_code == 303 and r.headers["Location"] == "/console/stores/spb-02?done=saved"
    assert api.get("/v1/stores/spb-02", tenant.admin).data["name"] == "Nevsky 2A"

    card = new_card(api, tenant)
    r = anna.post("/console/stores/spb-02/close", {"csrf": hidden(page.text, "csrf")})
    assert r.status_code == 303 and r.headers["Location"] == "/console/stores?done=closed"
    listing = anna.get(r.headers["Location"]).text
    assert "The store is closed." in listing and re.search(r"Nevsky 2A</a></th>\s*<td>spb-02</td>.*?<td>Closed</td>",
                                                           listing, re.S)
    assert api.get("/v1/stores/spb-02", tenant.admin).data["active"] is False
    refused = buy(api, tenant.pos, "r-closed", card, 1_000, store="spb-02")
    assert refused.status_code == 422 and refused.data["error"]["code"] == "unknown_store"
    r = anna.post("/console/stores/spb-02/reopen", {"csrf": hidden(page.text, "csrf")})
    assert r.status_code == 303 and api.get("/v1/stores/spb-02", tenant.admin).data["active"] is True
    assert buy(api, tenant.pos, "r-open", card, 1_000, store="spb-02").status_code == 200


def test_another_tenants_person_gets_404_for_this_tenants_programs_and_stores(
        api: Api, tenant: TenantKeys, other_tenant: TenantKeys) -> None:
    assert api.post("/v1/stores", tenant.admin, {"id": "spb-02", "name": "Nevsky secret"}).status_code == 201
    assert api.post("/v1/programs", tenant.admin, {"id": "espresso", "name": "Espresso secret",
                                                   "earning": {"rate_bps": 700}}).status_code == 201
    boris = person(api, other_tenant, "boris@fuel.example")
    csrf = hidden(boris.get("/console/programs").text, "csrf")
    form = form_of(boris.get("/console/programs/main").text, "/console/programs/main/review")  # their own main
    for method, path in (("GET", "/console/programs/espresso"), ("GET", "/console/programs/espresso/versions"),
                         ("GET", "/console/programs/espresso/versions/1"),
                         ("POST", "/console/programs/espresso/review"), ("POST", "/console/programs/espresso/edit"),
                         ("POST", "/console/programs/espresso/publish"), ("GET", "/console/stores/spb-02"),
                         ("POST", "/console/stores/spb-02"), ("POST", "/console/stores/spb-02/close")):
        r = boris.get(path) if method == "GET" else boris.post(path, {**form, "csrf": csrf, "base_version": "1",
                                                                      "name": "Taken over"})
        assert r.status_code == 404, (method, path, r.status_code)
        assert "secret" not in r.text and "Nevsky" not in r.text and "Espresso" not in r.text
    listing = boris.get("/console/stores").text + boris.get("/console/programs").text
    assert "Nevsky" not in listing and "Espresso" not in listing and "Tverskaya" in listing  # their own msk-01
    ours = api.get("/v1/stores/spb-02", tenant.admin).data
    assert ours["name"] == "Nevsky secret" and ours["active"] is True
    assert api.get("/v1/programs/espresso", tenant.admin).data["version"] == 1
    assert "(spb-02" not in boris.get("/console/programs/main").text  # our store is not offered to their program
    r = boris.post("/console/programs/main/review", {**form, "csrf": csrf, "store_ids.spb-02": "on",
                                                     "earning.rate_bps": "600"})
    assert r.status_code == 200 and ("Where it runs · Stores", "—", "spb-02") not in diff_rows(r.text)


def test_a_support_person_cannot_open_the_program_and_store_pages(api: Api, tenant: TenantKeys) -> None:
    sam = person(api, tenant, "sam@coffee.example", role="support")
    home = sam.get("/console").text
    assert 'href="/console/programs"' not in home and 'href="/console/dashboard"' not in home
    csrf = hidden(home, "csrf")
    for path in ("/console/programs", "/console/programs/main", "/console/programs/main/versions",
                 "/console/programs/main/versions/1", "/console/programs?new", "/console/stores",
                 "/console/stores/msk-01", "/console/dashboard"):
        r = sam.get(path)
        assert r.status_code == 403 and "Not allowed" in r.text, path
    for path in ("/console/programs/main/review", "/console/programs/main/publish", "/console/programs/main/edit",
                 "/console/programs", "/console/stores", "/console/stores/msk-01/close"):
        r = sam.post(path, {"csrf": csrf, "name": "x", "earning.rate_bps": "9000"})
        assert r.status_code == 403, path
    assert api.get("/v1/programs/main", tenant.admin).data["version"] == 1
    assert api.get("/v1/stores/msk-01", tenant.admin).data["active"] is True


def test_script_in_a_store_or_program_name_is_text_on_every_page(api: Api, tenant: TenantKeys,
                                                                 anna: Browser) -> None:
    page = anna.get("/console/stores")
    r = anna.post("/console/stores", {**form_of(page.text, "/console/stores"), "id": "evil",
                                      "name": HOSTILE, "region": HOSTILE, "address": HOSTILE})
    assert r.status_code == 303
    form = form_of(anna.get("/console/programs/main").text, "/console/programs/main/review")
    r = review(anna, "main", {**form, "name": HOSTILE, "description": HOSTILE, "store_ids.evil": "on",
                              "earning.promotions.0.id": "p1", "earning.promotions.0.name": HOSTILE,
                              "earning.promotions.0.starts_at": "2030-01-01T00:00",
                              "earning.promotions.0.ends_at": "2030-01-02T00:00",
                              "earning.promotions.0.categories": HOSTILE})
    assert r.status_code == 200 and ESCAPED in r.text
    published = anna.post("/console/programs/main/publish", form_of(r.text, "/console/programs/main/publish"))
    assert published.status_code == 303
    shown = [anna.get(path) for path in ("/console/stores", "/console/stores/evil", "/console/programs",
                                         "/console/programs/main", "/console/programs/main/versions",
                                         "/console/programs/main/versions/2", "/console/dashboard",
                                         "/console/dashboard?program_id=main")]
    shown.append(anna.post("/console/stores/evil", {**form_of(shown[1].text, "/console/stores/evil"), "id": "x",
                                                    "name": ""}))
    for r in shown:
        assert r.status_code in (200, 400), r.text[-500:]
        assert "<script>alert" not in r.text and ESCAPED in r.text
        assert "<script" not in r.text.replace('<script src="/console/static/', "")
        assert " style=" not in r.text and "<style" not in r.text
    chart = re.search(r'<desc id="chart-revenue-desc">([^<]*)</desc>', shown[-2].text)
    assert chart and chart.group(1).startswith(ESCAPED + ",")  # the program's name in the chart, as text


def test_the_pages_are_declared_for_the_tenant_admin_only() -> None:
    ours = [p for p in pages() if p.path.startswith(("/console/programs", "/console/stores", "/console/dashboard"))]
    assert len(ours) == 15 and all({r.value for r in p.roles} == {"tenant_admin"} for p in ours)
