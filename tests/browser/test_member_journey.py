"""The member site on a phone (issue 23): a customer joins with the SMS code read from the local outbox, sees the
new card on the home page, signs out and back in. A real browser at 390 px; axe-core on every page."""

from __future__ import annotations

import random
import re
import time

import requests
from playwright.sync_api import Browser, expect

from tests.browser.conftest import check_page
from tests.e2e.conftest import LocalStack

CODE = re.compile(r"\b(\d{6})\b")
TENANT = "coffee-chain"


def sms_code(stack: LocalStack, phone: str, seen: set[str], wait: float = 30.0) -> str:
    """The code of the newest SMS to `phone` in the local outbox that was not read before."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        messages = requests.get(f"http://127.0.0.1:{stack.moto_port}/_local/outbox.json", params={"to": phone},
                                timeout=10).json()["messages"]
        sms = [m for m in messages if m["kind"] == "sms" and m["id"] not in seen]
        found = CODE.search(sms[0]["body"]) if sms else None
        if found:
            seen.add(sms[0]["id"])
            return found.group(1)
        time.sleep(0.5)
    raise AssertionError(f"no new SMS code to {phone} in the outbox")


def test_a_customer_joins_on_a_phone_sees_the_new_card_and_signs_in_again(stack: LocalStack,
                                                                         browser: Browser) -> None:
    phone = "+7916" + "".join(random.choice("0123456789") for _ in range(7))
    seen: set[str] = set()
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="en-US")
    page = context.new_page()
    page.goto(f"{stack.url}/m/{TENANT}/?lang=en")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in or join")
    check_page(page, "member-sign-in")
    page.get_by_label("Mobile phone").fill(phone)
    page.get_by_role("button", name="Send me the code").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("The code from the SMS")
    check_page(page, "member-code")
    page.get_by_label("Code").fill(sms_code(stack, phone, seen))
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Join the program")
    page.get_by_label("First name").fill("<b>Masha</b>")
    page.get_by_role("button", name="Join and get my card").click()  # the personal-data consent left unticked
    expect(page.locator("#f-consent_personal_data-error")).to_contain_text("Tick the box to join")
    expect(page.get_by_label("First name")).to_have_value("<b>Masha</b>")
    check_page(page, "member-sign-up-error")
    page.locator("#f-consent_personal_data").check()
    page.get_by_role("button", name="Join and get my card").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Hello, <b>Masha</b>")
    expect(page.get_by_role("status")).to_contain_text("Welcome! Your card is ready.")

    admin = stack.key("tenant_admin", TENANT)["secret"]
    customer = stack.request("GET", "/v1/customers", admin, params={"phone": phone}).json()
    assert customer["first_name"] == "<b>Masha</b>" and len(customer["cards"]) == 1
    card = stack.request("GET", f"/v1/cards/{customer['cards'][0]}", admin).json()
    assert (card["program_id"], card["kind"]) == ("zerno-points", "virtual")  # the branding's sign-up program
    expect(page.locator("main")).to_contain_text(card["number"])
    words = {"active": "The card is active", "issued": "The card is not active yet"}  # the program's activation
    expect(page.locator("main")).to_contain_text(words[card["status"]])
    check_page(page, "member-home")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in or join")
    expect(page.get_by_role("status")).to_contain_text("You are signed out.")
    page.get_by_label("Mobile phone").fill(phone)
    page.get_by_role("button", name="Send me the code").click()
    page.get_by_label("Code").fill(sms_code(stack, phone, seen))
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator("main")).to_contain_text(card["number"])
    page.goto(f"{stack.url}/m/{TENANT}/?lang=ru")
    expect(page.get_by_role("heading", level=1)).to_have_text("Здравствуйте, <b>Masha</b>")
    check_page(page, "member-home-ru")
    context.close()
