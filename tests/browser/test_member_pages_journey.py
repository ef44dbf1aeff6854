"""The member's own pages on a phone (issue 23): a customer joins with the SMS code from the local outbox, sees the
new card with its barcode, a purchase is made through the POS API, then the points and the plain-words history
show; the Apple Wallet pass downloads as a zip whose pass.json names the card. A real browser at 390 px; axe-core
on every page."""

from __future__ import annotations

import json
import random
import zipfile
from pathlib import Path

from playwright.sync_api import Browser, expect

from tests.browser.conftest import check_page
from tests.browser.test_member_journey import TENANT, sms_code
from tests.e2e.conftest import LocalStack

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
"""What a browser sends when it follows a link (the pass is a download, fetched with the page's cookies)."""


def test_a_member_sees_the_card_the_points_and_the_history_and_downloads_the_pass(
        stack: LocalStack, browser: Browser, tmp_path: Path) -> None:
    phone = "+7916" + "".join(random.choice("0123456789") for _ in range(7))
    seen: set[str] = set()
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="en-US", accept_downloads=True)
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

    link = page.get_by_role("link", name="Add to Apple Wallet")
    href = link.get_attribute("href")
    assert href == f"/m/{TENANT}/card/{number}/card.pkpass"
    got = context.request.get(f"{stack.url}{href}", headers={"Accept": BROWSER_ACCEPT})
    assert got.status == 200, got.text()[:500]
    assert got.headers["content-type"] == "application/vnd.apple.pkpass"
    saved = tmp_path / "card.pkpass"
    saved.write_bytes(got.body())
    with zipfile.ZipFile(saved) as pkpass:
        content = json.loads(pkpass.read("pass.json"))
        assert {"manifest.json", "signature"} <= set(pkpass.namelist())
    assert content["barcodes"][0]["message"] == number

    page.get_by_role("link", name="History", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("History")
    expect(page.locator(".m-entry-text").first).to_have_text(
        f"Purchase of RUB400.00 at Zerno on Tverskaya · points earned: {earned}")
    check_page(page, "member-history")

    for link, title in (("Invite friends", "Invite friends"), ("Profile and consents", "Profile and consents"),
                        ("My data", "My data")):
        page.get_by_role("link", name=link).click()
        expect(page.get_by_role("heading", level=1)).to_have_text(title)
        check_page(page, f"member-{link.split()[0].lower()}")
    page.goto(f"{stack.url}/m/{TENANT}/card?lang=ru")
    expect(page.get_by_role("heading", level=1)).to_have_text("Моя карта")
    check_page(page, "member-card-ru")
    context.close()
