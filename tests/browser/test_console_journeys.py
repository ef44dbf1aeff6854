"""The console's main journeys in a real browser (issue 21): an agency provisions a tenant and invites its
admin; the admin signs in with MFA and works in the tenant; a support operator finds a customer by phone
and cannot change anything. Every page visited is checked by axe-core at phone and desktop widths."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.conftest import check_page, code_for, outbox_link
from tests.e2e.conftest import LocalStack

PASSWORD = "Correct-Horse-42"
PHONE = "+79161234567"


def join_and_sign_in(page: Page, stack: LocalStack, email: str, enrol: bool = True) -> None:
    """Open the invitation e-mail's link, choose a password, sign in (enrolling the authenticator if asked)."""
    page.goto(outbox_link(stack, email, "/console/invitation?token="))
    page.get_by_label("Choose a password").fill(PASSWORD)
    page.get_by_role("button", name="Accept the invitation").click()
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    if enrol:
        expect(page.get_by_role("heading", level=1)).to_have_text("Set up your authenticator")
        page.get_by_label("6-digit code").fill(code_for(page.locator("code.secret").inner_text(), set()))
        page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome")


def provision(page: Page, stack: LocalStack) -> dict[str, str]:
    """The agency's provisioning form, one mistake first: the keys shown once come back."""
    page.get_by_role("link", name="Tenants").click()
    check_page(page, "agency-tenants")
    page.goto(f"{stack.url}/console/agency/provision")
    check_page(page, "agency-provision")
    page.get_by_label("Tenant id").fill("Tea Room!")
    page.get_by_label("Name", exact=True).fill("Tea <b>Room</b>")
    page.get_by_label("Currency").fill("RUB")
    page.get_by_label("Time zone").fill("Europe/Moscow")
    page.get_by_label("Program id").fill("tea-points")
    page.get_by_label("Program name").fill("Tea points")
    page.get_by_label("Earning rate, basis points").fill("500")
    page.locator("#f-store_id_0").fill("spb-01")
    page.locator("#f-store_name_0").fill("Nevsky 1")
    page.get_by_label("The first admin's e-mail").fill("anna@tea.example")
    page.get_by_role("button", name="Provision the tenant").last.click()
    expect(page.locator("#f-tenant_id")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-program_name")).to_have_value("Tea points")  # what was typed is kept
    page.get_by_label("Tenant id").fill("tea-room")
    page.get_by_role("button", name="Provision the tenant").last.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Tenant provisioned: Tea <b>Room</b>")
    check_page(page, "agency-provisioned")
    return {role: page.locator(f'code.secret[data-key-role="{role}"]').inner_text()
            for role in ("tenant_admin", "pos")}


def change_the_earning_rate(page: Page, stack: LocalStack) -> None:
    """5% -> 10% in the program's form: a wrong value first (its error at the field), the review, publish."""
    page.get_by_role("link", name="Programs").click()
    check_page(page, "programs")
    page.get_by_role("link", name="Tea points").first.click()
    check_page(page, "program")
    rate = page.locator("#f-earning\\.rate_bps")
    rate.fill("-5")
    page.get_by_role("button", name="Review the changes").first.click()
    expect(page.locator("#f-earning\\.rate_bps")).to_have_attribute("aria-invalid", "true")
    page.locator("#f-earning\\.rate_bps").fill("1000")
    page.get_by_role("button", name="Review the changes").first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Review the changes to Tea points")
    expect(page.locator("table tr", has_text="Earning rate")).to_contain_text("5%")
    expect(page.locator("table tr", has_text="Earning rate")).to_contain_text("10%")
    check_page(page, "program-review")
    page.get_by_role("button", name="Publish").click()
    expect(page.get_by_role("heading", level=1)).not_to_contain_text("Review")


def purchase(stack: LocalStack, pos: str, receipt: str) -> dict[str, Any]:
    card = stack.request("POST", "/v1/cards", pos, json={"program_id": "tea-points",
                                                         "customer": {"phone": PHONE, "first_name": "Ivan"}})
    assert card.status_code in (200, 201), card.text
    number = card.json()["number"]
    r = stack.request("POST", "/v1/purchases", pos, json={
        "receipt_id": receipt, "card_number": number, "store_id": "spb-01", "total": 100_000,
        "items": [{"sku": "tea", "amount": 100_000}]})
    assert r.status_code == 200, r.text
    return {"number": number, **r.json()}


def test_an_agency_provisions_a_tenant_whose_admin_and_operator_work_in_it(
        stack: LocalStack, context: BrowserContext, browser: Any) -> None:
    agency = stack.key("agency")
    r = stack.request("POST", "/v1/invitations", agency["secret"], json={"email": "maria@agency.example",
                                                                         "role": "agency"})
    assert r.status_code == 201, r.text
    page = context.new_page()
    join_and_sign_in(page, stack, "maria@agency.example")
    keys = provision(page, stack)

    admin_context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    admin = admin_context.new_page()
    join_and_sign_in(admin, stack, "anna@tea.example")
    expect(admin.locator("main")).to_contain_text("You act in Tea <b>Room</b> as administrator.")
    change_the_earning_rate(admin, stack)
    sold = purchase(stack, keys["pos"], "r-1")
    assert sold["points_earned"] == 100, sold  # 10% of 1,000.00 roubles: the rule just published

    admin.get_by_role("link", name="Dashboard").click()
    expect(admin.get_by_role("heading", level=1)).to_have_text("Dashboard")
    today = admin.locator("table").first
    expect(today.locator("tr", has_text="Receipts")).to_contain_text("1")
    expect(today.locator("tr", has_text="Revenue")).to_contain_text("1,000.00")
    assert admin.locator("svg").count() >= 2, "the charts"
    check_page(admin, "dashboard")

    admin.get_by_role("link", name="Customers").click()
    check_page(admin, "customers-search")
    admin.get_by_label("Phone").fill("8 916 123-45-67")
    admin.get_by_role("button", name="Find").click()
    check_page(admin, "customer")
    admin.get_by_role("link", name=sold["number"]).first.click()
    earned = admin.locator("tbody tr", has_text="r-1").first
    expect(earned.locator("td").nth(1)).to_contain_text("100")
    expect(earned.locator("td").nth(4)).to_have_text("2")  # its rule version: the one published above
    check_page(admin, "customer-card")

    r = stack.request("POST", "/v1/invitations", keys["tenant_admin"], json={"email": "oleg@tea.example",
                                                                            "role": "support"})
    assert r.status_code == 201, r.text
    operator_context = browser.new_context(viewport={"width": 390, "height": 800}, locale="en-US")
    operator = operator_context.new_page()
    join_and_sign_in(operator, stack, "oleg@tea.example", enrol=False)
    operator.get_by_role("link", name="Customer look-up").click()
    operator.get_by_label("Phone").fill(PHONE)
    operator.get_by_role("button", name="Find").click()
    expect(operator.locator("main")).to_contain_text("Ivan")
    check_page(operator, "call-center")
    assert operator.locator("main form").count() == 1, "the look-up form only: nothing to change"
    assert operator.locator("main").inner_text().count(PHONE) == 0, "contacts are masked"
    operator.goto(f"{stack.url}/console/customers")
    expect(operator.get_by_role("heading", level=1)).to_have_text("Not allowed")
    admin_context.close()
    operator_context.close()
