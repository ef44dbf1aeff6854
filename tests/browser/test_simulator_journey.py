"""The promotion simulator in a real browser (issue 22, page 8): a newly invited tenant admin opens the example
tenant's program in the simulator, changes the earning rate (an invalid value refused at its field first), runs
the replay over the last 30 days, sees the comparison with its chart, publishes, and the program's page shows
the new rule. axe-core on every page, at phone and desktop widths."""

from __future__ import annotations

import re

from playwright.sync_api import BrowserContext, expect

from tests.browser.conftest import check_page
from tests.browser.test_console_journeys import join_and_sign_in
from tests.e2e.conftest import LocalStack

EMAIL = "sima.simulator@coffee.example"
PROGRAM = "zerno-points"
SLOW = 30_000
"""ms to wait for an answer that replays receipts or publishes rules."""


def test_a_tenant_admin_simulates_a_rate_change_and_publishes_it(stack: LocalStack, context: BrowserContext) -> None:
    admin_key = stack.key("tenant_admin", "coffee-chain")["secret"]
    pos = stack.key("pos", "coffee-chain")["secret"]
    before = stack.request("GET", f"/v1/programs/{PROGRAM}", admin_key).json()
    rate = before["earning"]["rate_bps"]
    doubled = str(rate * 2)
    card = stack.request("POST", "/v1/cards", pos, json={"program_id": PROGRAM}).json()["number"]
    bought = stack.request("POST", "/v1/purchases", pos, json={
        "receipt_id": "journey-simulator-1", "card_number": card, "store_id": "msk-tverskaya", "total": 100_000,
        "items": [{"sku": "latte", "category": "coffee", "amount": 100_000}]})
    assert bought.status_code == 200, bought.text
    assert bought.json()["points_earned"] > 0
    r = stack.request("POST", "/v1/invitations", admin_key, json={"email": EMAIL, "role": "tenant_admin"})
    assert r.status_code == 201, r.text
    page = context.new_page()
    join_and_sign_in(page, stack, EMAIL)

    page.get_by_role("link", name="Simulator").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Promotion simulator")
    check_page(page, "simulator-programs")
    page.locator(f'a[href="/console/simulator/{PROGRAM}"]').click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Simulate a change to")
    rate_input = page.get_by_label("Earning rate", exact=True)
    expect(rate_input).to_have_value(str(rate))  # the rules in force
    check_page(page, "simulator")

    rate_input.fill("twice")
    page.get_by_role("button", name="Run the simulation").click()
    expect(page.get_by_label("Earning rate", exact=True)).to_have_attribute("aria-invalid", "true", timeout=SLOW)
    expect(page.get_by_label("Earning rate", exact=True)).to_have_value("twice")  # what was typed is kept
    check_page(page, "simulator-error")

    page.get_by_label("Earning rate", exact=True).fill(doubled)
    page.get_by_role("button", name="Run the simulation").click()
    points = page.locator("#sim-points")
    expect(points).to_be_visible(timeout=SLOW)  # the replay of 30 days on the local stack, on shared cores
    figures = [int(re.sub(r"\D", "", c) or 0) for c in points.locator("td").all_inner_texts()]
    current, proposed, extra = figures
    assert proposed > current > 0 and extra == proposed - current, figures
    expect(page.locator("svg.chart title").first).to_have_text("Points issued per day")
    expect(page.get_by_role("table", name="Points per day")).to_be_visible()
    check_page(page, "simulator-result")

    page.get_by_role("button", name="Publish this change").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(before["name"], timeout=SLOW)
    expect(page.get_by_text("The new rules are published.")).to_be_visible()
    expect(page.get_by_label("Earning rate", exact=True)).to_have_value(doubled)
    check_page(page, "simulator-published")
    after = stack.request("GET", f"/v1/programs/{PROGRAM}", admin_key).json()
    assert after["version"] == before["version"] + 1 and after["earning"]["rate_bps"] == rate * 2
