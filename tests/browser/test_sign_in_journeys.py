"""Signing in, in a real browser: the printed first admin with the code, an invited admin who enrols an
authenticator from the QR page, the language switch, keyboard-only use, and axe-core on every page."""

from __future__ import annotations

from playwright.sync_api import BrowserContext, expect

from tests.browser.conftest import admin_of, check_page, code_for, outbox_link, used_codes
from tests.e2e.conftest import LocalStack

PASSWORD = "Correct-Horse-42"


def test_the_first_admin_signs_in_with_the_keyboard_only_and_switches_language(
        stack: LocalStack, context: BrowserContext) -> None:
    admin = admin_of(stack)
    used = used_codes(stack, admin["email"])
    page = context.new_page()
    page.goto(f"{stack.url}/console")
    expect(page).to_have_url(f"{stack.url}/console/sign-in?next=/console")
    check_page(page, "sign-in")
    page.keyboard.press("Tab")  # the skip link first
    expect(page.locator(".skip")).to_be_focused()
    page.locator("#f-email").focus()
    page.keyboard.type(admin["email"])
    page.keyboard.press("Tab")
    page.keyboard.type(admin["password"])
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Enter your code")
    check_page(page, "sign-in-code")
    page.get_by_label("6-digit code").fill("000000")
    page.keyboard.press("Enter")
    expect(page.locator("#f-code-error")).to_have_text("The code is wrong; 4 tries left.")
    expect(page.locator("#f-code")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("6-digit code").fill(code_for(admin["mfa_secret"], used))
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{stack.url}/console")
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome")
    cookie = next(c for c in context.cookies() if c["name"] == "__Host-lp_session")
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == "", "no script can read the session"
    check_page(page, "home")
    page.get_by_label("Language", exact=True).select_option("ru")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Добро пожаловать")
    expect(page.locator("html")).to_have_attribute("lang", "ru")
    page.get_by_role("button", name="Выйти").click()
    expect(page).to_have_url(f"{stack.url}/console/sign-in")
    page.goto(f"{stack.url}/console")
    expect(page).to_have_url(f"{stack.url}/console/sign-in?next=/console")


def test_an_invited_admin_joins_from_the_email_and_enrols_from_the_qr_page(
        stack: LocalStack, context: BrowserContext) -> None:
    agency = stack.key("agency")
    r = stack.request("POST", "/v1/invitations", agency["secret"], json={"email": "olga@agency.example",
                                                                         "role": "agency"})
    assert r.status_code == 201, r.text
    link = outbox_link(stack, "olga@agency.example", "/console/invitation?token=")
    assert link.startswith(stack.url)
    page = context.new_page()
    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_contain_text("You are invited to")
    check_page(page, "invitation")
    page.get_by_label("Choose a password").fill("short")
    page.get_by_role("button", name="Accept the invitation").click()
    expect(page.locator("#f-password-error")).to_be_visible()
    page.get_by_label("Choose a password").fill(PASSWORD)
    page.get_by_role("button", name="Accept the invitation").click()
    expect(page.get_by_role("status")).to_have_text("You have joined. Sign in to continue.")
    page.get_by_label("E-mail").fill("olga@agency.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Set up your authenticator")
    expect(page.locator(".qr svg")).to_be_visible()
    check_page(page, "enrolment")
    secret = page.locator("code.secret").inner_text()
    page.get_by_label("6-digit code").fill(code_for(secret, set()))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome")
    expect(page.locator("main")).to_contain_text("agency staff")


def test_a_forgotten_password_is_reset_from_the_emailed_link(stack: LocalStack, context: BrowserContext) -> None:
    agency = stack.key("agency")
    r = stack.request("POST", "/v1/invitations", agency["secret"], json={"email": "ivan@agency.example",
                                                                         "role": "agency"})
    assert r.status_code == 201, r.text
    token = outbox_link(stack, "ivan@agency.example", "/console/invitation?token=").split("token=")[1]
    assert stack.request("POST", "/v1/auth/invitations/accept",
                         json={"token": token, "password": PASSWORD}).status_code == 201
    page = context.new_page()
    page.goto(f"{stack.url}/console/forgot-password")
    check_page(page, "forgot-password")
    page.get_by_label("E-mail").fill("ivan@agency.example")
    page.get_by_role("button", name="Send the link").click()
    expect(page.get_by_role("status")).to_contain_text("a link to choose a new password is on its way")
    page.goto(outbox_link(stack, "ivan@agency.example", "/console/reset-password?token="))
    check_page(page, "reset-password")
    page.get_by_label("New password").fill("New-Password-2027")
    page.get_by_role("button", name="Save the password").click()
    expect(page.get_by_role("status")).to_have_text("Your password is saved. Sign in with it.")


def test_the_audit_filter_updates_the_results_in_place_and_the_address_with_them(
        stack: LocalStack, context: BrowserContext) -> None:
    admin = admin_of(stack)
    page = context.new_page()
    page.goto(f"{stack.url}/console/sign-in")
    page.get_by_label("E-mail").fill(admin["email"])
    page.get_by_label("Password").fill(admin["password"])
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("6-digit code").fill(code_for(admin["mfa_secret"], used_codes(stack, admin["email"])))
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{stack.url}/console")  # (in the admin's own language: another test may set it)
    page.goto(f"{stack.url}/console/integrations/audit?lang=en")
    check_page(page, "audit")
    page.evaluate("window.stillTheSamePage = true")
    with page.expect_response(lambda r: "/console/integrations/audit?" in r.url
                              and r.request.headers.get("hx-request") == "true") as answer:
        page.get_by_label("Action").fill("member.")
        page.get_by_role("button", name="Show").click()
    assert answer.value.status == 200
    expect(page).to_have_url(f"{stack.url}/console/integrations/audit?actor=&action=member.")
    expect(page.locator("#audit-results tbody")).to_contain_text("member.joined")
    assert page.evaluate("window.stillTheSamePage") is True, "only the results were swapped, not the page"
    check_page(page, "audit-filtered")


def test_a_network_or_server_failure_keeps_what_was_typed_and_says_so(
        stack: LocalStack, context: BrowserContext) -> None:
    page = context.new_page()
    page.goto(f"{stack.url}/console/forgot-password")
    page.get_by_label("E-mail").fill("kept@agency.example")
    page.route("**/console/forgot-password", lambda route: route.abort() if route.request.method == "POST"
               else route.continue_())
    page.get_by_role("button", name="Send the link").click()
    expect(page.locator("#net-alert")).to_be_visible()
    expect(page.locator("#net-alert")).to_contain_text("The answer did not arrive (network)")
    expect(page.get_by_label("E-mail")).to_have_value("kept@agency.example")
    page.unroute("**/console/forgot-password")
    page.route("**/console/forgot-password", lambda route: route.fulfill(status=500, body="boom")
               if route.request.method == "POST" else route.continue_())
    page.get_by_role("button", name="Send the link").click()
    expect(page.locator("#net-alert")).to_contain_text("Something went wrong on our side")
    expect(page.get_by_label("E-mail")).to_have_value("kept@agency.example")
    check_page(page, "network-error")
    page.unroute("**/console/forgot-password")
    page.get_by_role("button", name="Send the link").click()
    expect(page.get_by_role("status")).to_contain_text("a link to choose a new password is on its way")
    expect(page.locator("#net-alert")).to_be_hidden()
