"""The member's own pages on a phone (issue 23): a customer joins with the SMS code from the local outbox, sees the
new card with its barcode, a purchase is made through the POS API, then the points show; "Add to Apple Wallet"
really downloads the pass (its manifest hashes every file, its signature verifies against the stack's test CA,
its barcode is the card number); the member answers a hosted questionnaire with a points reward (the phone's code
from the outbox) and the card and the plain-words history show exactly that reward. A real browser at 390 px;
axe-core on every member page."""

from __future__ import annotations

import json
import random
import uuid
from pathlib import Path

from playwright.sync_api import Browser, expect

from tests.browser.conftest import check_page, opened_pkpass
from tests.browser.test_member_journey import TENANT, sms_code
from tests.e2e.conftest import LocalStack

PHONE = {"width": 390, "height": 844}
REWARD = 75
"""The questionnaire's reward, in points of the member's program."""


def test_a_member_sees_the_card_downloads_the_pass_answers_a_questionnaire_and_sees_the_reward(
        stack: LocalStack, browser: Browser, tmp_path: Path) -> None:
    phone = "+7916" + "".join(random.choice("0123456789") for _ in range(7))
    seen: set[str] = set()
    context = browser.new_context(viewport=PHONE, locale="en-US", accept_downloads=True)
    page = context.new_page()
    page.goto(f"{stack.url}/m/{TENANT}/?lang=en")
    page.get_by_label("Mobile phone").fill(phone)
    page.get_by_role("button", name="Send me the code").click()
    page.get_by_label("Code").fill(sms_code(stack, phone, seen))
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Join the program")
    page.get_by_label("First name").fill("Vera")
    page.locator("#f-consent_personal_data").check()
    page.get_by_role("button", name="Join and get my card").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Hello, Vera")

    admin = stack.key("tenant_admin", TENANT)["secret"]
    customer = stack.request("GET", "/v1/customers", admin, params={"phone": phone}).json()
    number = customer["cards"][0]

    page.get_by_role("link", name="My card").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("My card")
    expect(page.locator("main")).to_contain_text(number)
    expect(page.locator("svg.m-barcode text")).to_have_text(number)
    expect(page.locator(f"#balance-{number}")).to_have_text("0")
    check_page(page, "member-card-new")

    pos = stack.key("pos", TENANT)["secret"]
    bought = stack.request("POST", "/v1/purchases", pos, json={
        "receipt_id": f"member-journey-{number}", "card_number": number, "store_id": "msk-tverskaya",
        "total": 40000, "items": [{"sku": "latte", "category": "coffee", "amount": 40000}]})
    assert bought.status_code == 200, bought.text
    earned = bought.json()["points_earned"]
    assert earned > 0
    card = stack.request("GET", f"/v1/cards/{number}", admin).json()

    page.reload()
    expect(page.locator(f"#balance-{number}")).to_have_text(f"{card['balance']:,}")
    expect(page.locator(f"#pending-{number}")).to_have_text(f"{card['pending']:,}")
    assert card["balance"] + card["pending"] == earned
    check_page(page, "member-card-points")

    # the pass, downloaded by the browser itself from the button (check_page left the page at desktop width)
    page.set_viewport_size(PHONE)
    link = page.get_by_role("link", name="Add to Apple Wallet")
    assert link.get_attribute("href") == f"/m/{TENANT}/card/{number}/card.pkpass"
    with page.expect_download() as downloading:
        link.click()
    download = downloading.value
    assert download.failure() is None
    assert download.suggested_filename == f"{number}.pkpass"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    ca = json.loads((stack.state_dir / "wallet" / "wallet.json").read_text())["apple_root_ca"]
    content = opened_pkpass(saved, ca)
    assert content["barcodes"][0]["message"] == number
    assert content["storeCard"]["backFields"][0]["value"] == number
    assert (content["storeCard"]["primaryFields"][0]["value"], content["storeCard"]["secondaryFields"][0]["value"]) \
        == (card["balance"], card["pending"])
    assert len(content["serialNumber"]) == 24 and content["serialNumber"] != number  # Apple's serial, not the card's
    expect(page.get_by_role("heading", level=1)).to_have_text("My card")  # the download left the page where it was

    # a hosted questionnaire with a points reward, answered on the phone with the code from the outbox
    survey = f"journey-{uuid.uuid4().hex[:8]}"
    created = stack.request("POST", "/v1/surveys", admin, json={
        "id": survey, "title": "How was your coffee?", "kind": "feedback", "status": "active",
        "questions": [
            {"id": "phone", "type": "phone", "label": "Your phone", "required": True, "maps_to": "phone"},
            {"id": "drink", "type": "single_choice", "label": "Your drink", "required": True,
             "options": [{"id": "coffee", "label": "Coffee"}, {"id": "tea", "label": "Tea"}]}],
        "reward": {"kind": "points", "program_id": "zerno-points", "points": REWARD}})
    assert created.status_code == 201, created.text
    page.goto(f"{stack.url}/s/{TENANT}/{survey}?lang=en")
    expect(page.get_by_role("heading", level=1)).to_have_text("How was your coffee?")
    expect(page.locator(".pub-reward")).to_have_text(f"For your answers: {REWARD} bonus points.")
    page.get_by_label("Your phone").fill(phone)
    page.get_by_label("Tea").check()
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("The code from the SMS")
    page.get_by_label("Code").fill(sms_code(stack, phone, seen))
    page.get_by_role("button", name="Confirm and send my answers").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you for your answers!")
    expect(page.locator(".pub-reward")).to_have_text(f"{REWARD} points are on your card {number}.")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    rewarded = stack.request("GET", f"/v1/cards/{number}", admin).json()
    assert (rewarded["balance"], rewarded["pending"]) == (card["balance"] + REWARD, card["pending"])
    page.goto(f"{stack.url}/m/{TENANT}/card?lang=en")
    expect(page.locator(f"#balance-{number}")).to_have_text(f"{card['balance'] + REWARD:,}")
    expect(page.locator(f"#pending-{number}")).to_have_text(f"{card['pending']:,}")

    page.get_by_role("link", name="History", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("History")
    entries = page.locator(".m-entry")
    expect(entries.nth(0).locator(".m-entry-text")).to_have_text(
        f"Reward for the questionnaire “How was your coffee?”: {REWARD}")
    expect(entries.nth(0).locator(".m-points")).to_have_text(f"+{REWARD}")
    expect(entries.nth(1).locator(".m-entry-text")).to_have_text(
        f"Purchase of RUB400.00 at Zerno on Tverskaya · points earned: {earned}")
    expect(entries.nth(1).locator(".m-points")).to_have_text(f"+{earned:,}")
    check_page(page, "member-history")

    for link, title in (("Invite friends", "Invite friends"), ("Profile and consents", "Profile and consents"),
                        ("My data", "My data")):
        page.get_by_role("link", name=link).click()
        expect(page.get_by_role("heading", level=1)).to_have_text(title)
        check_page(page, f"member-{link.split()[0].lower()}")
    page.goto(f"{stack.url}/m/{TENANT}/card?lang=ru")
    expect(page.get_by_role("heading", level=1)).to_have_text("Моя карта")
    check_page(page, "member-card-ru")

    # the site's own refusal pages, axe-clean: a page that does not exist, and a form sent after the session ended
    missing = page.goto(f"{stack.url}/m/{TENANT}/no-such-page?lang=en")
    assert missing is not None and missing.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")
    check_page(page, "member-404")
    page.goto(f"{stack.url}/m/{TENANT}/profile?lang=en")
    context.clear_cookies()
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Please sign in again")
    check_page(page, "member-refused")
    page.get_by_role("link", name="Sign in again").click()
    assert "next=" in page.url
    context.close()
