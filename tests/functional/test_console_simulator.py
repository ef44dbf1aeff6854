"""The console's promotion simulator through the Chalice test client: replay, compare, publish.

Receipts are made through the till's API on the frozen clock; the figures are
worked out by hand here and must be the page's (and the API's). Publishing
goes through the service of PUT /v1/programs/{id} and is read back through
the API; a version published meanwhile is a 409 on the page. Another tenant's
person gets 404 for this tenant's program; the support role is refused; a
hostile program name is text.
"""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import pytest

from tests.functional.conftest import Api, TenantKeys
from tests.functional.test_console_programs import form_of, person, value_of
from tests.functional.test_console_sign_in import Browser, field_error, hidden
from tests.functional.test_pos_rules import buy, new_card
from tests.functional.test_reports import build_all

HOSTILE = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
PAGE = "/console/simulator/main"


@pytest.fixture
def receipts(api: Api, tenant: TenantKeys, clock: Any) -> None:
    """Three receipts at 5 percent, 1 point = 1.00 RUB: 10 + 15 on Nov 2, 19 on Nov 3 (10 points redeemed)."""
    anna = new_card(api, tenant, "+79161234567")
    bob = new_card(api, tenant, "+79167654321")
    assert buy(api, tenant.pos, "r1", anna, 20_000).data["points_earned"] == 10                  # coffee
    assert buy(api, tenant.pos, "r2", bob, 30_000, category="food").data["points_earned"] == 15  # food
    clock.advance(days=1)                                                                         # Nov 3
    assert buy(api, tenant.pos, "r3", anna, 40_000, redeem=10).data["points_earned"] == 19       # 5% of 390.00


@pytest.fixture
def anna(api: Api, tenant: TenantKeys) -> Browser:
    return person(api, tenant, "anna@coffee.example")


def cells(page: str, row_id: str) -> list[str]:
    found = re.search(rf'<tr id="{row_id}"><th scope="row">[^<]*</th>(.*?)</tr>', page, re.S)
    assert found, f"no row {row_id}"
    return [unescape(c) for c in re.findall(r'<td class="num">([^<]*)</td>', found.group(1))]


def table_rows(page: str, table: str) -> list[list[str]]:
    body = re.search(rf'<table class="{table}">.*?<tbody>(.*?)</tbody>', page, re.S)
    assert body, f"no table {table}"
    return [[unescape(c) for c in re.findall(r"<t[hd][^>]*>([^<]*)</t[hd]>", row)]
            for row in re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S)]


def run(browser: Browser, **changes: str) -> Any:
    form = form_of(browser.get(PAGE).text, PAGE)
    return browser.post(PAGE, {**form, **changes})


def test_a_rate_change_shows_exact_points_and_cost_then_publishes_the_simulated_rules(
        api: Api, tenant: TenantKeys, receipts: None, anna: Browser) -> None:
    listing = anna.get("/console/simulator")
    assert listing.status_code == 200 and 'href="/console/simulator"' in listing.text
    assert '<a href="/console/simulator/main">' in listing.text
    page = anna.get(PAGE)
    assert page.status_code == 200 and page.text.count("<h1>") == 1
    assert value_of(page.text, "earning.rate_bps") == "500", "the form starts from the rules in force"
    assert value_of(page.text, "from") == "2026-10-05" and value_of(page.text, "to") == "2026-11-04"  # last 30 days

    r = run(anna, **{"earning.rate_bps": "1000"})
    assert r.status_code == 200, r.text[-3000:]
    # 10% instead of 5%: r1 10 -> 20, r2 15 -> 30, r3 19 -> 39 (on 390.00 paid): 44 -> 89, 45 extra.
    assert cells(r.text, "sim-receipts") == ["3", "3", "—"]
    assert cells(r.text, "sim-points") == ["44", "89", "+45"]
    # Value: points x 1.00 RUB. Redeemed 10 of 44 earned = 2272.7 bps -> 2273; 45 x 1.00 x 22.73% = 10.2285 -> 10.23.
    assert cells(r.text, "sim-value") == ["RUB44.00", "RUB89.00", "+RUB45.00"]
    assert cells(r.text, "sim-cost") == ["—", "—", "+RUB10.23"]
    assert "22.73%" in r.text and re.search(r'id="sim-affected">2<', r.text)
    api_answer = api.post("/v1/programs/main/simulate", tenant.admin, {
        "from": "2026-10-05", "to": "2026-11-04", "proposed": {
            **{k: v for k, v in api.get("/v1/programs/main", tenant.admin).data.items()
               if k not in ("id", "tenant_id", "version", "effective_at", "created_at", "updated_at")},
            "earning": {**api.get("/v1/programs/main", tenant.admin).data["earning"], "rate_bps": 1000}}})
    assert api_answer.status_code == 200 and api_answer.data["totals"] == {
        "receipts": 3, "points_current": 44, "points_proposed": 89, "extra_points": 45,
        "expected_redemption_cost": 1023, "liability_change": 4500}
    # per day and per category: the chart (inline SVG with its title) and the same figures in tables
    assert table_rows(r.text, "sim-days") == [["2026-11-02", "2", "25", "50", "25", "RUB25.00"],
                                              ["2026-11-03", "1", "19", "39", "20", "RUB20.00"]]
    assert table_rows(r.text, "sim-categories") == [["coffee", "29", "59", "30", "RUB30.00"],
                                                    ["food", "15", "30", "15", "RUB15.00"]]
    assert '<svg class="chart"' in r.text and "<title id=\"chart-sim-days-title\">Points issued per day</title>" in r.text
    assert "Points issued per category" in r.text and "Simulated rules, coffee: 59" in r.text
    assert "style=" not in r.text and "<script>" not in r.text.split("</head>")[1]
    assert value_of(r.text, "earning.rate_bps") == "1000", "what was typed stays in the form"

    confirm = form_of(r.text, "/console/simulator/main/publish")
    assert confirm["base_version"] == "1" and confirm["earning.rate_bps"] == "1000"
    published = anna.post("/console/simulator/main/publish", confirm)
    assert published.status_code == 303, published.text[-2000:]
    assert published.headers["Location"] == "/console/programs/main?done=published&version=2"
    program = api.get("/v1/programs/main", tenant.admin).data
    assert program["version"] == 2 and program["earning"]["rate_bps"] == 1000
    assert program["redemption"]["point_value"] == 100, "the rules not simulated are kept"
    entries = api.get("/v1/audit?action=program.updated", tenant.admin).data["items"]
    assert entries and entries[0]["actor_email"] == "anna@coffee.example"
    shown = anna.get(published.headers["Location"])
    assert "The new rules are published." in shown.text and value_of(shown.text, "earning.rate_bps") == "1000"

    anna.language = "ru"
    russian = anna.post(PAGE, {**form_of(anna.get(PAGE).text, PAGE), "earning.rate_bps": "1500"})
    assert russian.status_code == 200 and "Симулятор" in russian.text and "Запустить моделирование" in russian.text
    # 15% against the 10% now in force: r1 30 - 20, r2 45 - 30, r3 58 (58.5 down) - 39: 44 points, 44.00 RUB
    assert cells(russian.text, "sim-value")[2] == "+44,00\u00a0₽"


def test_a_category_multiplier_and_a_promotion_are_replayed(api: Api, tenant: TenantKeys, receipts: None,
                                                            anna: Browser) -> None:
    r = run(anna, **{"earning.category_multipliers.0.key": "food",
                     "earning.category_multipliers.0.multiplier_bps": "30000",
                     "earning.promotions.0.id": "coffee-day", "earning.promotions.0.name": "Coffee day",
                     "earning.promotions.0.starts_at": "2026-11-03T00:00",
                     "earning.promotions.0.ends_at": "2026-11-04T00:00",
                     "earning.promotions.0.categories": "coffee",
                     "earning.promotions.0.bonus_points": "7"})
    assert r.status_code == 200, r.text[-3000:]
    # food x3: r2 15 -> 45; the promotion (Nov 3, Moscow time, coffee) adds 7 to r3: 44 -> 81.
    assert cells(r.text, "sim-points") == ["44", "81", "+37"]
    categories = table_rows(r.text, "sim-categories")
    assert ["food", "15", "45", "30", "RUB30.00"] in categories
    assert ["(bonus per receipt)", "0", "7", "7", "RUB7.00"] in categories
    confirm = form_of(r.text, "/console/simulator/main/publish")
    assert anna.post("/console/simulator/main/publish", confirm).status_code == 303
    earning = api.get("/v1/programs/main", tenant.admin).data["earning"]
    assert earning["category_multipliers"] == {"food": 30000}
    assert [(p["id"], p["bonus_points"], p["categories"]) for p in earning["promotions"]] == [
        ("coffee-day", 7, ["coffee"])]


def test_errors_show_at_their_fields_with_what_was_typed_kept(api: Api, tenant: TenantKeys, receipts: None,
                                                              anna: Browser) -> None:
    r = run(anna, **{"earning.rate_bps": "5,5", "earning.category_multipliers.0.key": "tea"})
    assert r.status_code == 400
    assert field_error(r.text, "earning.rate_bps") and 'aria-invalid="true"' in r.text
    assert value_of(r.text, "earning.rate_bps") == "5,5"
    assert value_of(r.text, "earning.category_multipliers.0.key") == "tea"
    assert "Nothing was run or published. Correct these fields:" in r.text and 'href="#f-earning.rate_bps"' in r.text

    r = run(anna, **{"from": "2026-11-04", "to": "2026-11-01", "earning.rate_bps": "700"})
    assert r.status_code == 400 and "must be after" in field_error(r.text, "to")
    assert value_of(r.text, "from") == "2026-11-04" and value_of(r.text, "earning.rate_bps") == "700"
    r = run(anna, **{"from": "2026-11-04", "to": "2026-11-01", "earning.rate_bps": "-1"})
    assert r.status_code == 400 and field_error(r.text, "to") and field_error(r.text, "earning.rate_bps")

    more = run(anna, **{"earning.rate_bps": "650", "add": "earning.promotions"})  # a row more, no JavaScript
    assert more.status_code == 200 and value_of(more.text, "earning.rate_bps") == "650"
    assert 'name="earning.promotions.1.name"' in more.text and 'name="extra.earning.promotions" value="1"' in more.text

    r = run(anna, **{"from": "2024-01-01", "to": "2026-11-04"})
    assert r.status_code == 400 and "at most 400 days" in field_error(r.text, "to")

    r = run(anna, **{"earning.promotions.0.id": "late", "earning.promotions.0.name": "Late",
                     "earning.promotions.0.starts_at": "2026-11-05T00:00",
                     "earning.promotions.0.ends_at": "2026-11-01T00:00",
                     "earning.promotions.0.multiplier_bps": "20000"})
    assert r.status_code == 400, r.text[-2000:]
    assert field_error(r.text, "earning.promotions.0.ends_at")
    assert value_of(r.text, "earning.promotions.0.ends_at") == "2026-11-01T00:00"
    assert api.get("/v1/programs/main", tenant.admin).data["version"] == 1, "nothing published"


def test_a_version_published_meanwhile_is_a_clear_409_not_an_overwrite(
        api: Api, tenant: TenantKeys, receipts: None, anna: Browser) -> None:
    r = run(anna, **{"earning.rate_bps": "800"})
    confirm = form_of(r.text, "/console/simulator/main/publish")
    changed = api.put("/v1/programs/main", tenant.admin, {"name": "Main program", "earning": {"rate_bps": 900},
                                                          "redemption": {"point_value": 100}})
    assert changed.status_code == 200 and changed.data["version"] == 2
    stale = anna.post("/console/simulator/main/publish", confirm)
    assert stale.status_code == 409
    assert "Someone published other rules meanwhile (version 2): nothing was published." in stale.text
    assert value_of(stale.text, "earning.rate_bps") == "800" and value_of(stale.text, "base_version") == "2"
    program = api.get("/v1/programs/main", tenant.admin).data
    assert program["version"] == 2 and program["earning"]["rate_bps"] == 900
    # run again against version 2, then publish
    again = anna.post(PAGE, form_of(stale.text, PAGE))
    # in force now 9%: 18 + 27 + 35 = 80; simulated 8%: 16 + 24 + 31 = 71
    assert again.status_code == 200 and cells(again.text, "sim-points") == ["80", "71", "-9"]
    assert anna.post("/console/simulator/main/publish",
                     form_of(again.text, "/console/simulator/main/publish")).status_code == 303
    assert api.get("/v1/programs/main", tenant.admin).data["earning"]["rate_bps"] == 800


def test_a_long_period_is_replayed_in_the_background_then_shown_and_published(
        api: Api, tenant: TenantKeys, receipts: None, anna: Browser) -> None:
    r = run(anna, **{"from": "2026-10-01", "earning.rate_bps": "1000"})
    assert r.status_code == 303, r.text[-2000:]
    location = r.headers["Location"]
    assert re.fullmatch(r"/console/simulator/main/runs/[^/?]+\?base=1", location)
    waiting = anna.get(location)
    assert waiting.status_code == 200 and "Status: Queued" in waiting.text
    assert f'hx-get="{location.replace("&", "&amp;")}"' in waiting.text and 'hx-trigger="every 2s"' in waiting.text
    assert "Publish this change" not in waiting.text
    build_all()
    ready = anna.get(location)
    assert ready.status_code == 200 and "Status: Ready" in ready.text and "hx-trigger" not in ready.text
    assert cells(ready.text, "sim-points") == ["44", "89", "+45"]
    assert cells(ready.text, "sim-cost") == ["—", "—", "+RUB10.23"]
    assert table_rows(ready.text, "sim-categories")[0] == ["coffee", "29", "59", "30", "RUB30.00"]
    confirm = form_of(ready.text, "/console/simulator/main/publish")
    assert confirm["base_version"] == "1" and confirm["earning.rate_bps"] == "1000"
    assert anna.post("/console/simulator/main/publish", confirm).status_code == 303
    assert api.get("/v1/programs/main", tenant.admin).data["earning"]["rate_bps"] == 1000
    # a report of another program (or none) is not this program's run
    assert anna.get("/console/simulator/main/runs/nothing-here").status_code == 404


def test_another_tenants_program_is_404_and_shows_nothing(api: Api, tenant: TenantKeys, other_tenant: TenantKeys,
                                                          receipts: None) -> None:
    secret = {"id": "secret-club", "name": "Secret club CONSOLE-SIM", "earning": {"rate_bps": 700}}
    assert api.post("/v1/programs", tenant.admin, secret).status_code == 201
    rival = person(api, other_tenant, "rita@fuel.example")
    csrf = hidden(rival.get("/console/simulator").text, "csrf")
    form = {"csrf": csrf, "base_version": "1", "earning.rate_bps": "100", "from": "2026-11-01", "to": "2026-11-04"}
    for r in (rival.get("/console/simulator/secret-club"),
              rival.post("/console/simulator/secret-club", form),
              rival.post("/console/simulator/secret-club/edit", form),
              rival.post("/console/simulator/secret-club/publish", form)):
        assert r.status_code == 404, r.status_code
        assert "CONSOLE-SIM" not in r.text and "Secret club" not in r.text
    assert "Secret club" not in rival.get("/console/simulator").text
    assert api.get("/v1/programs/secret-club", tenant.admin).data["version"] == 1


def test_a_support_person_is_refused(api: Api, tenant: TenantKeys) -> None:
    sam = person(api, tenant, "sam@coffee.example", role="support")
    assert sam.get("/console/simulator").status_code == 403
    assert sam.get(PAGE).status_code == 403
    assert 'href="/console/simulator"' not in sam.get("/console").text


def test_a_hostile_program_name_is_text(api: Api, tenant: TenantKeys, receipts: None, anna: Browser) -> None:
    card = new_card(api, tenant, "+79160000099")
    assert buy(api, tenant.pos, "r-hostile", card, 10_000, category=HOSTILE).status_code == 200
    changed = api.put("/v1/programs/main", tenant.admin, {"name": f"Main {HOSTILE}", "earning": {"rate_bps": 500},
                                                          "redemption": {"point_value": 100}})
    assert changed.status_code == 200
    listing = anna.get("/console/simulator")
    assert ESCAPED in listing.text and HOSTILE not in listing.text
    r = run(anna, **{"earning.rate_bps": "600", "earning.category_multipliers.0.key": HOSTILE,
                     "earning.category_multipliers.0.multiplier_bps": "20000"})
    assert r.status_code == 200 and HOSTILE not in r.text and ESCAPED in r.text
    assert f"<th scope=\"row\">{ESCAPED}</th>" in r.text, "the category in the table"
    assert f"<title>Simulated rules, {ESCAPED}: " in r.text, "and in the chart's bar"
    assert "Main &lt;script&gt;" in r.text


def test_the_grouped_bar_chart_names_every_bar_escapes_text_and_tells_series_apart_without_colour() -> None:
    from chalicelib.console import charts

    svg = str(charts.grouped_bar_chart("sim-x", f"Title {HOSTILE}", "Desc", ["coffee", HOSTILE],
                                       [charts.Series("In force", [29, 0]), charts.Series("Simulated", [59, 7])]))
    assert svg.startswith('<svg class="chart"') and 'role="img"' in svg and "style=" not in svg
    assert HOSTILE not in svg and f"<title id=\"chart-sim-x-title\">Title {ESCAPED}</title>" in svg
    bars = re.findall(r'<rect class="chart-gbar"[^>]*><title>([^<]*)</title>', svg)
    assert bars == ["In force, coffee: 29", f"In force, {ESCAPED}: 0", "Simulated, coffee: 59",
                    f"Simulated, {ESCAPED}: 7", "In force", "Simulated"]  # then the legend's keys
    assert 'class="chart-series chart-g2"' in svg and 'stroke-dasharray="6 4"' in svg
    with pytest.raises(ValueError):
        charts.grouped_bar_chart("x", "t", "d", ["a"], [charts.Series("one", [1, 2])])
