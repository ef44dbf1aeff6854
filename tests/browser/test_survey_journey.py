"""A questionnaire in a real browser (issue 22, page 5): a newly invited tenant admin builds a questionnaire with a
points reward (a mistake at a field first, then questions added without losing anything), gets its public link
and QR code, and a customer in ANOTHER browser context (a phone, no staff session) answers it with the SMS code
read from the local outbox; the points are then on the customer's card (read through the API), and the manager
sees the results. axe-core on every page, the public ones included, at 390 and 1280 px."""

from __future__ import annotations

import re
import time
import uuid

import requests
from playwright.sync_api import Browser, BrowserContext, expect

from tests.browser.conftest import check_page
from tests.browser.test_console_journeys import join_and_sign_in
from tests.e2e.conftest import LocalStack

POINTS = 120
CODE = re.compile(r"\b(\d{6})\b")


def sms_code(stack: LocalStack, phone: str, wait: float = 30.0) -> str:
    """The code in the newest SMS to `phone` in the local outbox."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        messages = requests.get(f"http://127.0.0.1:{stack.moto_port}/_local/outbox.json", params={"to": phone},
                                timeout=10).json()["messages"]
        found = [CODE.search(m["body"]) for m in messages if m["kind"] == "sms"]
        if found and found[0]:
            return found[0].group(1)
        time.sleep(0.5)
    raise AssertionError(f"no SMS code to {phone} in the outbox")


def test_a_manager_builds_a_questionnaire_and_a_customer_answers_it_with_the_phone_code(
        stack: LocalStack, context: BrowserContext, browser: Browser) -> None:
    admin = stack.key("tenant_admin", "coffee-chain")["secret"]
    run = uuid.uuid4().hex[:8]
    email = f"survey-{run}@coffee.example"
    invited = stack.request("POST", "/v1/invitations", admin, json={"email": email, "role": "tenant_admin"})
    assert invited.status_code == 201, invited.text

    page = context.new_page()
    join_and_sign_in(page, stack, email)
    page.get_by_role("link", name="Questionnaires").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Questionnaires")
    check_page(page, "surveys")
    page.get_by_role("link", name="New questionnaire").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("New questionnaire")
    page.get_by_label("Title", exact=True).fill(f"Tell us <b>{run}</b>")
    page.get_by_label("Id in the link").fill(f"tell-{run}")
    page.get_by_label("Status", exact=True).select_option("active")
    page.get_by_label("Reward", exact=True).select_option("points")
    page.get_by_label("Program of the card or points").select_option("zerno-points")
    page.get_by_label("Points", exact=True).fill(str(POINTS))
    page.locator("#f-q-0-text").fill("Your phone")
    page.locator("#f-q-0-type").select_option("phone")
    page.locator("#f-q-0-maps_to").select_option("phone")
    page.locator("#f-q-0-required").check()
    page.get_by_role("button", name="Add a question").click()
    expect(page.locator("#f-q-1-text")).to_be_visible()
    expect(page.locator("#f-q-0-text")).to_have_value("Your phone")  # kept through the add
    page.locator("#f-q-1-text").fill("Your drink")
    page.locator("#f-q-1-type").select_option("single_choice")
    page.locator("#f-q-1-options").fill("Coffee only")  # one option: a mistake
    page.get_by_role("button", name="Add a question").click()
    page.locator("#f-q-2-text").fill("Would you recommend us?")
    page.locator("#f-q-2-type").select_option("nps")
    page.get_by_role("button", name="Save the questionnaire").click()
    expect(page.locator("#f-q-1-options")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-q-1-options-error")).to_have_text("a choice question needs at least 2 options")
    expect(page.locator("#f-q-2-text")).to_have_value("Would you recommend us?")  # what was typed is kept
    expect(page.locator("#f-reward_points")).to_have_value(str(POINTS))
    check_page(page, "survey-builder-error")
    page.locator("#f-q-1-options").fill("Coffee\nTea")
    page.get_by_role("button", name="Save the questionnaire").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Tell us <b>{run}</b>")
    expect(page.get_by_role("status")).to_contain_text("The questionnaire is saved.")
    expect(page.locator("svg.sv-qr-code")).to_be_visible()
    link = page.locator(".sv-url a").get_attribute("href")
    assert link and link.endswith(f"/s/coffee-chain/tell-{run}"), link
    check_page(page, "survey")

    # the customer, on a phone, in another browser context: no staff session
    phone = f"+7926{int(run, 16) % 10_000_000:07d}"
    customer = browser.new_context(viewport={"width": 390, "height": 844}, locale="en-US")
    try:
        public = customer.new_page()
        public.goto(link if link.startswith("http") else f"{stack.url}{link}")
        expect(public.get_by_role("heading", level=1)).to_have_text(f"Tell us <b>{run}</b>")
        expect(public.locator(".brand")).to_have_text("Zerno Coffee")
        expect(public.locator(".pub-reward")).to_have_text(f"For your answers: {POINTS} bonus points.")
        check_page(public, "public-survey")
        public.get_by_role("button", name="Next").click()  # nothing answered: errors at the questions
        expect(public.locator("#f-a-q1")).to_have_attribute("aria-invalid", "true")
        public.get_by_label("Your phone").fill(phone)
        public.get_by_label("Tea").check()
        public.locator("label[for='f-a-q3-9']").click()
        check_page(public, "public-survey-error")
        public.get_by_role("button", name="Next").click()
        expect(public.get_by_role("heading", level=1)).to_have_text("The code from the SMS")
        check_page(public, "public-survey-code")
        public.get_by_label("Code").fill("000000")
        public.get_by_role("button", name="Confirm and send my answers").click()
        expect(public.locator("#f-code-error")).to_contain_text("The code is not right")
        public.get_by_label("Code").fill(sms_code(stack, phone))
        public.get_by_role("button", name="Confirm and send my answers").click()
        expect(public.get_by_role("heading", level=1)).to_have_text("Thank you for your answers!")
        reward = public.locator(".pub-reward").inner_text()
        found = re.fullmatch(rf"{POINTS} points are on your card (\d+)\.", reward)
        assert found, reward
        check_page(public, "public-survey-thanks")
    finally:
        customer.close()
    card = stack.get(f"/v1/cards/{found.group(1)}", admin)
    assert card.status_code == 200 and card.json()["balance"] == POINTS, card.text

    # the manager's results: the answer counted, nothing personal shown
    page.get_by_role("link", name="Responses and results").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Results: Tell us <b>{run}</b>")
    expect(page.locator(".sv-total")).to_have_text("1")
    expect(page.locator("svg.chart").first).to_be_visible()
    assert phone not in page.content()
    check_page(page, "survey-results")
