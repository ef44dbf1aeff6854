"""The console's dashboard: today, 7 and 30 days of the live counters, charts with a table, the tenant's days.

Figures are made through the real POS API (cards, purchases, refunds) with the
rules' clock frozen, and read back from the page: the summary table, the
per-day table and the SVG charts drawn from the same numbers.
"""

from __future__ import annotations

import re
from html import unescape
from typing import Any

from tests.functional.conftest import Api, TenantKeys
from tests.functional.test_console_programs import ESCAPED, HOSTILE, person
from tests.functional.test_pos_rules import buy, new_card

FIGURES = ("receipts", "revenue", "average_receipt", "points_earned", "points_redeemed", "money_redeemed",
           "new_customers", "cards_activated", "refunds", "refunded")


def summary(page: str) -> dict[str, tuple[str, str, str]]:
    """The summary table: figure -> (today, 7 days, 30 days) as shown."""
    out = {}
    for name in FIGURES:
        row = re.search(rf'<tr id="fig-{name}"><th scope="row">[^<]*</th>\s*'
                        r'<td class="num">([^<]*)</td><td class="num">([^<]*)</td><td class="num">([^<]*)</td>', page)
        assert row, name
        out[name] = tuple(unescape(v) for v in row.groups())
    return out


def per_day(page: str) -> list[list[str]]:
    """The per-day table's rows: [day, receipts, revenue, points earned and redeemed, discount, new members, activated]."""
    body = page.split('<table class="figures per-day">')[1].split("</table>")[0]
    rows = re.findall(r'<tr><th scope="row">([^<]*)</th>\s*((?:<td class="num">[^<]*</td>)+)', body)
    return [[unescape(day), *map(unescape, re.findall(r'<td class="num">([^<]*)</td>', cells))] for day, cells in rows]


def bars(page: str, chart: str) -> list[str]:
    svg = page.split(f'aria-labelledby="chart-{chart}-title chart-{chart}-desc"')[1].split("</svg>")[0]
    return [unescape(t) for t in re.findall(r'<rect class="chart-bar"[^>]*><title>([^<]*)</title>', svg)]


def test_today_7_and_30_days_from_the_live_counters_in_the_tenants_days(
        api: Api, tenant: TenantKeys, clock: Any) -> None:
    anna = person(api, tenant, "anna@coffee.example")
    empty = anna.get("/console/dashboard")
    assert empty.status_code == 200 and empty.text.count("<h1>") == 1
    assert summary(empty.text)["receipts"] == ("0", "0", "0") and len(bars(empty.text, "revenue")) == 30

    card = new_card(api, tenant)                                   # 2 Nov: a new member, an active card
    assert buy(api, tenant.pos, "r1", card, 100_000).status_code == 200  # 50 points
    clock.advance(days=10)                                         # 12 Nov
    assert buy(api, tenant.pos, "r2", card, 20_000).status_code == 200   # 10 points
    clock.advance(days=4, hours=11, minutes=30)                    # 16 Nov 21:30 UTC = 17 Nov 00:30 in Moscow
    assert buy(api, tenant.pos, "r3", card, 30_000, redeem=20).status_code == 200
    refund = api.post("/v1/refunds", tenant.pos, {"refund_id": "f1", "receipt_id": "r2"})
    assert refund.status_code == 200, refund.data

    page = anna.get("/console/dashboard").text
    figures = summary(page)
    assert figures["receipts"] == ("1", "2", "3")
    assert figures["revenue"] == ("RUB300.00", "RUB500.00", "RUB1,500.00")
    assert figures["average_receipt"] == ("RUB300.00", "RUB250.00", "RUB500.00")
    assert figures["points_redeemed"] == ("20", "20", "20") and figures["money_redeemed"][0] == "RUB20.00"
    assert figures["points_earned"][2] == str(50 + 10 + int(figures["points_earned"][0]))
    assert figures["new_customers"] == ("0", "0", "1") and figures["cards_activated"] == ("0", "0", "1")
    assert figures["refunds"] == ("1", "1", "1") and figures["refunded"] == ("RUB200.00", "RUB200.00", "RUB200.00")
    assert "Nov 17, 2026" in page and "Europe/Moscow" in page  # today is the tenant's day, not UTC's 16th

    days = per_day(page)
    assert len(days) == 30 and days[0][0] == "Nov 17, 2026" and days[-1][0] == "Oct 19, 2026"
    by_day = {row[0]: row[1:] for row in days}
    assert by_day["Nov 17, 2026"][:2] == ["1", "RUB300.00"] and by_day["Nov 12, 2026"][:2] == ["1", "RUB200.00"]
    assert by_day["Nov 2, 2026"] == ["1", "RUB1,000.00", "50", "0", "RUB0.00", "1", "1"]
    assert by_day["Nov 16, 2026"][:2] == ["0", "RUB0.00"]
    revenue = bars(page, "revenue")
    assert len(revenue) == 30 and revenue[-1] == "11/17: RUB300.00" and "11/2: RUB1,000.00" in revenue
    assert '<desc id="chart-revenue-desc">coffee-house LLC, Oct 19, 2026 to Nov 17, 2026.' in page
    assert page.count('<svg class="chart"') == 4 and page.count("<title id=\"chart-") == 4

    week = anna.get("/console/dashboard?range=7").text
    assert len(bars(week, "revenue")) == 7 and len(per_day(week)) == 7 and summary(week) == figures
    assert '<option value="7" selected>' in week

    russian = anna.get("/console/dashboard?lang=ru").text
    assert summary(russian)["revenue"][2] == "1\u00a0500,00\u00a0₽" and "17 нояб. 2026" in russian


def test_the_program_filter_is_the_apis_and_names_the_program_in_the_charts(
        api: Api, tenant: TenantKeys, other_tenant: TenantKeys, clock: Any) -> None:
    made = api.post("/v1/programs", tenant.admin, {"id": "espresso", "name": HOSTILE, "earning": {"rate_bps": 700}})
    assert made.status_code == 201, made.data
    card = new_card(api, tenant)
    assert buy(api, tenant.pos, "r1", card, 10_000).status_code == 200
    anna = person(api, tenant, "anna@coffee.example")
    main = anna.get("/console/dashboard?program_id=main").text
    assert summary(main)["receipts"] == ("1", "1", "1") and '<option value="main" selected>' in main
    espresso = anna.get("/console/dashboard?program_id=espresso")
    assert espresso.status_code == 200
    figures = summary(espresso.text)
    assert figures["receipts"] == ("0", "0", "0") and figures["new_customers"] == ("1", "1", "1")  # tenant-wide
    assert "<script>alert" not in espresso.text and f'<desc id="chart-revenue-desc">{ESCAPED},' in espresso.text
    for bad in ("fuel-main", "nope", "%3Cscript%3E"):
        r = anna.get(f"/console/dashboard?program_id={bad}")
        assert r.status_code == 404 and "<script>" not in r.text


def test_only_the_tenant_admin_sees_the_dashboard_and_only_their_own_tenant(
        api: Api, tenant: TenantKeys, other_tenant: TenantKeys) -> None:
    card = new_card(api, tenant)
    assert buy(api, tenant.pos, "r1", card, 10_000).status_code == 200
    boris = person(api, other_tenant, "boris@fuel.example")
    theirs = boris.get("/console/dashboard")
    assert theirs.status_code == 200 and summary(theirs.text)["receipts"] == ("0", "0", "0")
    assert "coffee-house" not in theirs.text and "fuel-net LLC" in theirs.text
    assert boris.get("/console/dashboard?program_id=main").status_code == 200  # their own program "main"
    sam = person(api, tenant, "sam@coffee.example", role="support")
    r = sam.get("/console/dashboard")
    assert r.status_code == 403 and "RUB100.00" not in r.text
    assert 'href="/console/dashboard"' not in sam.get("/console").text
