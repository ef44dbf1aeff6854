"""The template editor in a real browser (issue 22, page 2): a manager uploads a logo to the image library,
writes an e-mail template from blocks (the logo in the header, a text, a button added and moved by form posts),
previews it at desktop and phone widths (the rendered HTML inside the sandboxed frames contains the text) and
saves it. axe-core on every page; the frames' own CSP is checked in the functional tests."""

from __future__ import annotations

import time
from pathlib import Path

import requests
from playwright.sync_api import BrowserContext, expect

from tests.browser.conftest import check_page
from tests.browser.test_console_journeys import join_and_sign_in
from tests.e2e.conftest import LocalStack
from tests.functional.test_console_templates import png


def test_a_manager_writes_an_email_template_from_blocks_previews_and_saves_it(
        stack: LocalStack, context: BrowserContext, tmp_path: Path) -> None:
    admin_key = stack.key("tenant_admin", "coffee-chain")["secret"]
    r = stack.request("POST", "/v1/invitations", admin_key, json={"email": "tina@coffee.example",
                                                                 "role": "tenant_admin"})
    assert r.status_code == 201, r.text
    mail = stack.request("PUT", "/v1/mail-settings", admin_key, json={"email_from": "news@zerno.example"})
    assert mail.status_code == 200, mail.text  # the tenant's sender, for the test send
    page = context.new_page()
    join_and_sign_in(page, stack, "tina@coffee.example")

    logo = tmp_path / "logo.png"
    logo.write_bytes(png(40, 20))
    page.get_by_role("link", name="Images").click()
    check_page(page, "images")
    page.get_by_label("Image file").set_input_files(str(logo))
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_role("status")).to_contain_text("The image is in the library.")
    expect(page.locator(".tpl-images li")).to_have_count(1)
    library_image = page.locator(".tpl-images img")
    expect(library_image).to_have_js_property("complete", True)  # loaded (or failed): then its pixels say which
    assert library_image.evaluate("img => img.naturalWidth") == 40
    check_page(page, "images-one")

    page.get_by_role("link", name="Templates").first.click()
    check_page(page, "templates")
    page.get_by_role("link", name="New e-mail template").click()
    page.get_by_label("Id", exact=True).fill("autumn-news")
    page.get_by_label("Name", exact=True).fill("Autumn news")
    page.get_by_label("Subject").fill("{{ first_name }}, autumn is here")
    page.locator("#f-blocks-0-asset_id").select_option(index=1)
    page.locator("#f-blocks-1-text").fill("Dear {{ first_name }},\n\nour pumpkin latte is back.")
    page.get_by_label("Block to add").select_option("button")
    page.get_by_role("button", name="Add the block").click()
    expect(page.locator("#f-blocks-3-label")).to_be_visible()
    expect(page.locator("#f-blocks-1-text")).to_have_value("Dear {{ first_name }},\n\nour pumpkin latte is back.")
    page.locator("#f-blocks-3-label").fill("See the menu")
    page.locator("#f-blocks-3-url").fill("https://coffee.example/menu")
    page.get_by_role("button", name="Move up block 4").click()
    expect(page.locator("#f-blocks-2-label")).to_have_value("See the menu")
    check_page(page, "template-builder")

    page.get_by_role("button", name="Preview", exact=True).last.click()
    desktop = page.frame_locator("iframe.tpl-frame-desktop")
    expect(desktop.locator("body")).to_contain_text("our pumpkin latte is back.", timeout=20_000)
    expect(desktop.locator("body")).to_contain_text("Anna")
    expect(desktop.locator("body")).to_contain_text("See the menu")
    expect(page.frame_locator("iframe.tpl-frame-phone").locator("body")).to_contain_text("pumpkin latte")
    assert page.locator("iframe.tpl-frame-desktop").get_attribute("sandbox") == ""
    logo = desktop.locator("img").first  # the header's logo, from our own origin under the frame's img-src 'self'
    expect(logo).to_have_js_property("complete", True)
    assert logo.evaluate("img => img.naturalWidth") == 40
    check_page(page, "template-preview")
    with page.expect_response(lambda answer: answer.url.endswith("/console/templates/preview")):  # htmx, live
        page.locator("#f-blocks-1-text").fill("Dear {{ first_name }},\n\nour pumpkin latte and cinnamon buns are back.")
        page.locator("#f-blocks-1-text").blur()
    expect(desktop.locator("body")).to_contain_text("cinnamon buns are back.", timeout=20_000)

    page.get_by_role("button", name="Send a test to me").click()
    expect(page.get_by_role("status")).to_contain_text("A test was sent to tina@coffee.example.")
    deadline = time.monotonic() + 30
    subjects: list[str] = []
    while time.monotonic() < deadline and not any("autumn is here" in s for s in subjects):
        found = requests.get(f"http://127.0.0.1:{stack.moto_port}/_local/outbox.json",
                             params={"to": "tina@coffee.example"}, timeout=10).json()["messages"]
        subjects = [str(m.get("subject", "")) for m in found]
        time.sleep(0.5)
    assert any("autumn is here" in s for s in subjects), subjects

    page.get_by_role("button", name="Save the template").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Autumn news")
    expect(page.get_by_role("status")).to_contain_text("The template is saved.")
    check_page(page, "template-saved")
    saved = stack.request("GET", "/v1/templates/autumn-news", admin_key).json()
    assert [b["type"] for b in saved["blocks"]] == ["header", "text", "button", "footer"], saved
    assert saved["blocks"][0].get("asset_id") and saved["subject"] == "{{ first_name }}, autumn is here"
