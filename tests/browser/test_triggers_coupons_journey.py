"""Trigger messages and coupons (issue 22, pages 4 and 6) in a real browser: a tenant admin switches the welcome
trigger on with a template and saves it; creates a unique-code coupon campaign (a mistake at its field first),
watches the codes being made (htmx polling) and downloads the CSV file, whose rows are checked. axe-core on every
page at phone and desktop widths."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from playwright.sync_api import BrowserContext, expect

from tests.browser.conftest import check_page
from tests.browser.test_console_journeys import join_and_sign_in
from tests.e2e.conftest import LocalStack

CODE = re.compile(r"^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$")


def test_a_tenant_admin_switches_a_trigger_on_and_makes_downloads_coupon_codes(
        stack: LocalStack, context: BrowserContext, tmp_path: Path) -> None:
    admin_key = stack.key("tenant_admin", "coffee-chain")["secret"]
    r = stack.request("POST", "/v1/programs", admin_key, json={"id": "journey-triggers", "name": "Journey triggers",
                                                                "earning": {"rate_bps": 500}})
    assert r.status_code == 201, r.text
    r = stack.request("POST", "/v1/templates", admin_key, json={"id": "journey-welcome", "name": "Journey welcome",
                                                                 "channel": "sms", "body": "Welcome!"})
    assert r.status_code == 201, r.text
    r = stack.request("POST", "/v1/invitations", admin_key, json={"email": "tess@coffee.example",
                                                                 "role": "tenant_admin"})
    assert r.status_code == 201, r.text
    page = context.new_page()
    join_and_sign_in(page, stack, "tess@coffee.example")

    # a trigger switched on with its template, saved through PUT /v1/programs/{id}/triggers' service
    page.get_by_role("link", name="Triggers").click()
    check_page(page, "triggers")
    page.get_by_role("link", name="Journey triggers").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Trigger messages of journey-triggers")
    page.locator("#f-welcome-enabled").check()
    page.locator("#f-welcome-template_id").select_option("journey-welcome")
    page.get_by_role("button", name="Save the trigger settings").click()
    expect(page.get_by_role("status").filter(has_text="The trigger settings are saved.")).to_be_visible()
    expect(page.locator("#f-welcome-enabled")).to_be_checked()
    check_page(page, "trigger-settings")
    saved = stack.request("GET", "/v1/programs/journey-triggers/triggers", admin_key).json()
    assert saved["welcome"] == {"enabled": True, "channel": "sms", "template_id": "journey-welcome"}
    page.get_by_role("link", name="Messages of Welcome").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("What the Welcome trigger sent")
    check_page(page, "trigger-sent")

    # a unique-code coupon campaign: a mistake first, then made by the jobs worker while the page polls
    page.get_by_role("link", name="Coupons").click()
    check_page(page, "coupons")
    page.get_by_role("link", name="New coupon campaign").click()
    page.get_by_label("Coupon campaign id").fill("journey-flyer")
    page.get_by_label("Name", exact=True).fill("Journey flyer")
    page.get_by_label("Program", exact=True).select_option("journey-triggers")
    page.get_by_label("How many unique codes").fill("120")
    page.get_by_label("What the coupon gives").select_option("bonus_points")
    page.get_by_label("Value", exact=True).fill("fifty")
    page.get_by_role("button", name="Create the campaign").click()
    expect(page.locator("#f-effect_value")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("How many unique codes")).to_have_value("120")
    check_page(page, "coupon-new")
    page.get_by_label("Value", exact=True).fill("50")
    page.get_by_role("button", name="Create the campaign").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Journey flyer")
    download_link = page.get_by_role("link", name="Download the codes (CSV)")
    expect(download_link).to_be_visible(timeout=60_000)  # htmx polls the progress block
    expect(page.locator("#coupon-progress")).to_contain_text("120 of 120")
    check_page(page, "coupon-campaign")
    with page.expect_download() as downloading:
        download_link.click()
    saved_file = tmp_path / "codes.csv"
    downloading.value.save_as(saved_file)
    assert downloading.value.suggested_filename == "coupons-journey-flyer.csv"
    with saved_file.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["code", "campaign", "uses", "max_uses"]
    assert len(rows) == 121 and all(CODE.fullmatch(r[0]) and r[1:] == ["Journey flyer", "0", "1"] for r in rows[1:])
    assert [r[0] for r in rows[1:]] == sorted({r[0] for r in rows[1:]})
    listed = stack.request("GET", "/v1/coupon-campaigns/journey-flyer/codes?limit=200", admin_key).json()["items"]
    assert [c["code"] for c in listed] == [r[0] for r in rows[1:]]
