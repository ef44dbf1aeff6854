"""The first pages of the console's marketing half (issue 22) in a real browser: a segment built with its
live count, and an XLSX report requested, followed to its download link, downloaded and opened (its rows
checked). axe-core on every page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from openpyxl import load_workbook
from playwright.sync_api import BrowserContext, expect

from tests.browser.conftest import check_page
from tests.browser.test_console_journeys import join_and_sign_in
from tests.e2e.conftest import LocalStack


def test_a_tenant_admin_builds_a_segment_with_its_live_count_and_requests_a_report(
        stack: LocalStack, context: BrowserContext, tmp_path: Path) -> None:
    admin_key = stack.key("tenant_admin", "coffee-chain")["secret"]
    pos = stack.key("pos", "coffee-chain")["secret"]
    card = stack.request("POST", "/v1/cards", pos, json={"program_id": "zerno-points"}).json()["number"]
    bought = stack.request("POST", "/v1/purchases", pos, json={
        "receipt_id": "journey-xlsx-1", "card_number": card, "store_id": "msk-tverskaya", "total": 40000,
        "items": [{"sku": "latte", "category": "coffee", "amount": 40000}]})
    assert bought.status_code == 200, bought.text
    earned = bought.json()["points_earned"]
    today = datetime.now(UTC).date()
    r = stack.request("POST", "/v1/invitations", admin_key, json={"email": "mila@coffee.example",
                                                                 "role": "tenant_admin"})
    assert r.status_code == 201, r.text
    page = context.new_page()
    join_and_sign_in(page, stack, "mila@coffee.example")

    page.get_by_role("link", name="Segments").click()
    check_page(page, "segments")
    page.get_by_role("link", name="New segment").click()
    page.get_by_label("Name", exact=True).fill("Birthday this month")
    with page.expect_response(lambda answer: "/console/segments/count" in answer.url):
        page.get_by_label("Birthday within days").fill("30")
        page.get_by_label("Birthday within days").blur()
    expect(page.locator("#seg-count")).to_contain_text("customers match now.")
    check_page(page, "segment-builder")
    page.get_by_role("button", name="Save the segment").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Birthday this month")

    page.get_by_role("link", name="Reports").click()
    check_page(page, "reports")
    page.get_by_label("From (first day)").fill("2026-11-01")
    page.get_by_label("To (day after the last)").fill("2026-10-01")
    page.get_by_role("button", name="Request the report").click()
    expect(page.locator("#f-to")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("From (first day)").fill(today.isoformat())
    page.get_by_label("To (day after the last)").fill((today + timedelta(days=1)).isoformat())
    page.get_by_label("Program", exact=True).select_option("zerno-points")
    page.get_by_label("XLSX").check()
    page.get_by_role("button", name="Request the report").click()
    download_link = page.get_by_role("link", name="Download")
    expect(download_link).to_be_visible(timeout=60_000)  # htmx polls the status
    check_page(page, "report")
    with page.expect_download() as downloading:
        download_link.click()
    saved = tmp_path / "ledger.xlsx"
    downloading.value.save_as(saved)
    sheet = load_workbook(saved, read_only=True).worksheets[0]
    rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    header = rows[0]
    assert header[:3] == ["at", "card_number", "customer_id"], header
    ours = [dict(zip(header, row, strict=True)) for row in rows[1:] if row[1] == card]
    accruals = [(r["type"], r["points"], r["store_id"]) for r in ours if r["receipt_id"] == "journey-xlsx-1"]
    assert accruals == [("accrual", earned, "msk-tverskaya")], ours
