"""The console's card pages through the Chalice test client: plastic series generated through the form (queued
for the jobs worker like the API's) and their print list; gift and prepaid cards sold, topped up and corrected
(each form once however often it is sent); the coalitions the tenant is a partner of and its settlement; another
tenant's person and an operator see nothing of it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from chalicelib.domain.cards import luhn_valid
from tests.functional.conftest import Api, TenantKeys, make_tenant
from tests.functional.jobqueue import drain
from tests.functional.test_coalitions import coalition_body, write_entries
from tests.functional.test_console_customers import HOSTILE, person, post_forms, rows
from tests.functional.test_console_sign_in import field_error, hidden
from tests.functional.test_gift_cards import gift_program


def test_a_series_is_generated_through_the_form_queued_and_its_print_list_downloaded(
        api: Api, tenant: TenantKeys) -> None:
    anna = person(api, tenant, "anna@coffee.example")
    page = anna.get("/console/cards")
    assert page.status_code == 200 and page.text.count("<h1>") == 1 and "No series yet." in page.text
    form = {"csrf": hidden(page.text, "csrf"), "program_id": "main", "count": "many", "name": "", "prefix": "",
            "length": ""}

    r = anna.post("/console/cards/series", form)
    assert r.status_code == 400 and field_error(r.text, "count") == "Enter a whole number, e.g. 100 or -50."
    assert 'value="many"' in r.text
    r = anna.post("/console/cards/series", {**form, "count": "0"})
    assert r.status_code == 400 and field_error(r.text, "count") == "Input should be greater than or equal to 1"
    r = anna.post("/console/cards/series", {**form, "count": "10", "prefix": "9", "length": "8"})
    assert r.status_code == 422 and field_error(r.text, "length")  # the API's room check, at its field
    assert api.get("/v1/card-series", tenant.admin).data["items"] == []

    r = anna.post("/console/cards/series", {**form, "count": "501", "name": f"Spring {HOSTILE}"})
    assert r.status_code == 303 and r.headers["Location"].endswith("?done=queued")
    series_id = r.headers["Location"].split("/")[-1].split("?")[0]
    queued = anna.get(r.headers["Location"])
    assert queued.status_code == 200 and "queued" in queued.text and "print-list" not in queued.text
    assert HOSTILE not in queued.text and "Spring &lt;script&gt;" in queued.text
    assert anna.get(f"/console/cards/series/{series_id}/print-list").status_code == 409

    assert drain(), "the jobs worker made the series"
    done = anna.get(f"/console/cards/series/{series_id}")
    assert "complete" in done.text and f"/console/cards/series/{series_id}/print-list" in done.text
    assert "501 / 501" in done.text
    listed = rows(anna.get("/console/cards").text, "The tenant's card series")
    assert [(r[0], r[1], r[3], r[4]) for r in listed] == [(series_id, f"Spring {HOSTILE}", "501 / 501", "complete")]

    csv = anna.get(f"/console/cards/series/{series_id}/print-list")
    assert csv.status_code == 200 and csv.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert csv.headers["Content-Disposition"] == f'attachment; filename="series-{series_id}.csv"'
    lines = csv.text.split("\r\n")
    assert lines[0] == "number" and lines[-1] == ""
    numbers = lines[1:-1]
    assert len(numbers) == len(set(numbers)) == 501 and all(luhn_valid(n) for n in numbers)
    from_api: list[str] = []
    cursor = None
    while True:
        got = api.get(f"/v1/card-series/{series_id}/cards?limit=200" + (f"&cursor={cursor}" if cursor else ""),
                      tenant.admin).data
        from_api += [c["number"] for c in got["items"]]
        cursor = got["cursor"]
        if not got["has_more"]:
            break
    assert numbers == from_api


def test_a_small_series_is_made_at_once(api: Api, tenant: TenantKeys) -> None:
    anna = person(api, tenant, "anna@coffee.example")
    csrf = hidden(anna.get("/console/cards").text, "csrf")
    r = anna.post("/console/cards/series", {"csrf": csrf, "program_id": "main", "count": "3", "name": "",
                                            "prefix": "", "length": ""})
    assert r.status_code == 303 and r.headers["Location"].endswith("?done=created")
    assert "The series is made." in anna.get(r.headers["Location"]).text
    csv = anna.get(r.headers["Location"].split("?")[0] + "/print-list")
    assert csv.status_code == 200 and len(csv.text.split()) == 4


def test_a_prepaid_card_is_sold_topped_up_once_per_form_and_corrected(api: Api, tenant: TenantKeys) -> None:
    gift_program(api, tenant, nominals=[100_000, 50_000], validity_days=365)
    gift_program(api, tenant, "prepaid", reloadable=True, min_amount=1_000, max_amount=200_000, max_balance=300_000,
                 validity_days=30)
    anna = person(api, tenant, "anna@coffee.example")
    page = anna.get("/console/cards/gift")
    assert page.status_code == 200 and page.text.count("<h1>") == 1
    sale = {"csrf": hidden(page.text, "csrf"), "sale_id": hidden(page.text, "sale_id"), "program_id": "prepaid",
            "number": "", "store_id": "msk-01"}

    r = anna.post("/console/cards/gift", {**sale, "amount": "five"})
    assert r.status_code == 400 and field_error(r.text, "amount") == "Enter an amount such as 1500 or 1500.50."
    r = anna.post("/console/cards/gift", {**sale, "amount": "5"})
    assert r.status_code == 422 and field_error(r.text, "amount") == "The amount must be between 1000 and 200000."
    assert 'value="5"' in r.text
    r = anna.post("/console/cards/gift", {**sale, "amount": "500"})
    assert r.status_code == 303 and r.headers["Location"].endswith("?done=sold")
    again = anna.post("/console/cards/gift", {**sale, "amount": "500"})
    assert again.status_code == 303 and again.headers["Location"] == r.headers["Location"], "the same sale"
    number = r.headers["Location"].split("/")[-1].split("?")[0]
    assert api.get(f"/v1/gift-cards/{number}", tenant.admin).data["money"] == 50_000

    card = anna.get(r.headers["Location"])
    assert card.status_code == 200 and "RUB500.00" in card.text.replace("\u00a0", "")
    assert "The card is sold." in card.text
    top = {"csrf": hidden(card.text, "csrf"), "topup_id": hidden(card.text, "topup_id")}
    r = anna.post(f"/console/cards/gift/{number}/top-up", {**top, "amount": "2 500,5"})
    assert r.status_code == 422 and field_error(r.text, "amount") == "The amount must be between 1000 and 200000."
    assert 'value="2 500,5"' in r.text
    r = anna.post(f"/console/cards/gift/{number}/top-up", {**top, "amount": "250,50"})
    assert r.status_code == 303
    assert anna.post(f"/console/cards/gift/{number}/top-up", {**top, "amount": "250,50"}).status_code == 303
    assert api.get(f"/v1/gift-cards/{number}", tenant.admin).data["money"] == 75_050, "one top-up"

    shown = anna.get(f"/console/cards/gift/{number}")
    ledger = rows(shown.text, "The card's money movements")
    assert [(row[1], row[2].replace("\u00a0", " ")) for row in ledger] == [("top-up", "+RUB250.50"),
                                                                            ("sale", "+RUB500.00")]
    fix = {"csrf": hidden(shown.text, "csrf"), "adjustment_id": hidden(shown.text, "adjustment_id")}
    r = anna.post(f"/console/cards/gift/{number}/adjust", {**fix, "correction": "-1000", "reason": "refund"})
    assert r.status_code == 422 and field_error(r.text, "correction").startswith("The card holds 75050")
    r = anna.post(f"/console/cards/gift/{number}/adjust", {**fix, "correction": "-0,50",
                                                           "reason": f"rounding {HOSTILE}"})
    assert r.status_code == 303
    shown = anna.get(f"/console/cards/gift/{number}")
    assert HOSTILE not in shown.text and "rounding &lt;script&gt;" in shown.text
    assert api.get(f"/v1/gift-cards/{number}", tenant.admin).data["money"] == 75_000

    found = anna.get(f"/console/cards/gift?number={number}")
    assert found.status_code == 303 and found.headers["Location"] == f"/console/cards/gift/{number}"
    nothing = anna.get("/console/cards/gift?number=1234567890")
    assert nothing.status_code == 404 and field_error(nothing.text, "number") == "No gift card 1234567890."


def test_a_gift_card_that_is_not_reloadable_offers_no_top_up(api: Api, tenant: TenantKeys) -> None:
    gift_program(api, tenant, nominals=[100_000, 50_000], validity_days=365)
    sold = api.post("/v1/gift-cards", tenant.pos, {"sale_id": "s-1", "program_id": "gift", "amount": 50_000})
    assert sold.status_code == 201, sold.data
    anna = person(api, tenant, "anna@coffee.example")
    page = anna.get(f"/console/cards/gift/{sold.data['number']}").text
    assert "Cards of this program cannot be topped up." in page and 'name="topup_id"' not in page


def test_a_partner_sees_its_coalitions_and_its_settlement_for_a_period(
        api: Api, agency_key: str, tenant: TenantKeys) -> None:
    make_tenant(api, agency_key, "acme-agency", "shop-b")
    r = api.post("/v1/agency/coalitions", agency_key, coalition_body(members=["coffee-house", "shop-b"]))
    assert r.status_code == 201, r.data
    at = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    write_entries("7000000000001", [("accrual", 300, at, "coffee-house"), ("redemption", -100, at, "coffee-house"),
                                    ("accrual", 50, at, "shop-b")])
    anna = person(api, tenant, "anna@coffee.example")

    page = anna.get("/console/cards/coalitions")
    assert page.status_code == 200
    assert rows(page.text, "The coalitions this business") == [
        ["City club", "City club points", "coffee-house, shop-b", "Settlement of City club"]]
    r = anna.get("/console/cards/coalitions/city-club?from=2026-11-01&to=2026-11-30")
    assert r.status_code == 200
    line = rows(r.text, "Points your business")
    assert [[c.replace("\u00a0", " ") for c in row] for row in line] == [
        ["coffee-house", "300", "100", "200", "RUB200.00", "0"]]
    assert "shop-b</th>" not in r.text, "never another partner's line"
    outside = anna.get("/console/cards/coalitions/city-club?from=2026-11-02&to=2026-11-30")
    assert rows(outside.text, "Points your business")[0][1:4] == ["0", "0", "0"]

    wrong = anna.get("/console/cards/coalitions/city-club?from=2026-11-30&to=2026-11-01")
    assert wrong.status_code == 400 and field_error(wrong.text, "to") == "Value error, must be after from"
    assert 'value="2026-11-30"' in wrong.text
    bad = anna.get("/console/cards/coalitions/city-club?from=yesterday&to=2026-11-01")
    assert bad.status_code == 400 and field_error(bad.text, "from") == "Enter a date such as 2026-11-01."
    assert anna.get("/console/cards/coalitions/nope?from=2026-11-01&to=2026-11-02").status_code == 404


def test_another_tenants_person_and_an_operator_see_nothing_of_the_cards(
        api: Api, agency_key: str, tenant: TenantKeys, other_tenant: TenantKeys) -> None:
    gift_program(api, tenant, "prepaid", reloadable=True, min_amount=1_000, max_amount=200_000, max_balance=300_000)
    sold = api.post("/v1/gift-cards", tenant.pos, {"sale_id": "s-1", "program_id": "prepaid", "amount": 50_000})
    series = api.post("/v1/card-series", tenant.admin, {"program_id": "main", "count": 2})
    assert sold.status_code == 201 and series.status_code == 201, (sold.data, series.data)
    number, series_id = sold.data["number"], series.data["series_id"]
    make_tenant(api, agency_key, "acme-agency", "shop-b")
    coalition = api.post("/v1/agency/coalitions", agency_key, coalition_body(members=["coffee-house", "shop-b"]))
    assert coalition.status_code == 201

    ivan = person(api, other_tenant, "ivan@fuel.example")
    for path in (f"/console/cards/series/{series_id}", f"/console/cards/series/{series_id}/print-list",
                 f"/console/cards/gift/{number}", f"/console/cards/gift?number={number}",
                 "/console/cards/coalitions/city-club?from=2026-11-01&to=2026-11-02"):
        r = ivan.get(path)
        assert r.status_code == 404, path
        assert "500.00" not in r.text and "City club" not in r.text and "print-list" not in r.text, path
    assert "City club" not in ivan.get("/console/cards/coalitions").text
    assert series_id not in ivan.get("/console/cards").text
    csrf = hidden(ivan.get("/console/cards").text, "csrf")
    r = ivan.post(f"/console/cards/gift/{number}/top-up", {"csrf": csrf, "topup_id": "t-1", "amount": "100"})
    assert r.status_code == 404
    r = ivan.post(f"/console/cards/gift/{number}/adjust", {"csrf": csrf, "adjustment_id": "a-1",
                                                            "correction": "100", "reason": "mine now"})
    assert r.status_code == 404
    assert api.get(f"/v1/gift-cards/{number}", tenant.admin).data["money"] == 50_000

    olga = person(api, tenant, "olga@coffee.example", "support")
    csrf = hidden(olga.get("/console/call-center").text, "csrf")
    for path in ("/console/cards", f"/console/cards/series/{series_id}", f"/console/cards/gift/{number}",
                 "/console/cards/coalitions"):
        assert olga.get(path).status_code == 403, path
    for path, form in (("/console/cards/series", {"program_id": "main", "count": "5"}),
                       ("/console/cards/gift", {"sale_id": "s-9", "program_id": "prepaid", "amount": "100"}),
                       (f"/console/cards/gift/{number}/top-up", {"topup_id": "t-1", "amount": "100"}),
                       (f"/console/cards/gift/{number}/adjust", {"adjustment_id": "a-1", "correction": "1",
                                                                 "reason": "please"})):
        assert olga.post(path, {"csrf": csrf, **form}).status_code == 403, path
    assert api.get(f"/v1/gift-cards/{number}", tenant.admin).data["money"] == 50_000
    assert len(api.get("/v1/card-series", tenant.admin).data["items"]) == 1
    assert post_forms(olga.get("/console/call-center").text) == ["/console/sign-out"]


def test_money_typed_in_roubles_becomes_kopecks_exactly() -> None:
    from chalicelib.console.routes.customers import minor_units

    class Req:
        locale = "en"

    for typed, minor in (("1500", 150_000), ("1 500,50", 150_050), ("0.01", 1), ("-0,5", -50),
                         ("1\u00a0234.56", 123_456)):
        assert minor_units(Req(), typed, "RUB", "amount") == (minor, {}), typed  # type: ignore[arg-type]
    for typed in ("1.234", "1e3", "abc", "", "1,2,3", "NaN"):
        assert minor_units(Req(), typed, "RUB", "amount")[0] is None, typed  # type: ignore[arg-type]
    assert minor_units(Req(), "500", "JPY", "amount") == (500, {})  # type: ignore[arg-type]
    assert minor_units(Req(), "500.5", "JPY", "amount")[0] is None  # type: ignore[arg-type]
