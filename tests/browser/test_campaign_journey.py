"""A campaign in a real browser (issue 22): a new tenant admin creates an e-mail campaign to a segment with a
control group (a mistake at a field first), sends it now, watches the local workers deliver it through moto's
SES (the page polls its progress with htmx) and reads the results with the control group. axe-core on every
page."""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import BrowserContext, expect

from chalicelib.domain import campaigns as rules
from tests.browser.conftest import check_page
from tests.browser.test_console_journeys import join_and_sign_in
from tests.e2e.conftest import LocalStack

CUSTOMERS = 8
HOLDOUT_BPS = 3000


def test_a_manager_sends_a_campaign_and_sees_its_results_with_the_control_group(
        stack: LocalStack, context: BrowserContext) -> None:
    admin = stack.key("tenant_admin", "coffee-chain")["secret"]
    run = uuid.uuid4().hex[:8]
    settings = stack.request("PUT", "/v1/mail-settings", admin, json={
        "email_from": "news@zerno.example", "weekly_cap": 0, "quiet_hours": {"start": "00:00", "end": "00:00"}})
    assert settings.status_code == 200, settings.text  # the sender is verified with (moto's) SES when saved
    template = stack.request("POST", "/v1/templates", admin, json={
        "id": f"spring-{run}", "name": f"Spring letter {run}", "channel": "email",
        "subject": "Spring, {{ first_name }}", "body": "Hello {{ first_name }}! Unsubscribe: {{ unsubscribe_url }}"})
    assert template.status_code == 201, template.text
    ids = []
    for i in range(CUSTOMERS):
        r = stack.request("POST", "/v1/customers", admin, json={
            "phone": f"+7917{int(run, 16) % 1_000_000:06d}{i}", "email": f"{run}.{i}@example.com",
            "first_name": f"Vera{i}", "tags": [f"camp-{run}"],
            "consents": [{"kind": "email", "granted": True, "source": "site", "text_version": "2026-09"}]})
        assert r.status_code == 201, r.text
        ids.append(r.json()["customer_id"])
    segment = stack.request("POST", "/v1/segments", admin, json={"name": f"Spring {run}",
                                                                 "filter": {"tags_any": [f"camp-{run}"]}})
    assert segment.status_code == 201, segment.text
    # a campaign id whose control group (a stable draw per customer) is neither empty nor everybody
    campaign_id = next(f"spring-{run}-{k}" for k in range(100)
                       if 0 < sum(rules.in_control_group(f"spring-{run}-{k}", c, HOLDOUT_BPS) for c in ids) < CUSTOMERS)
    control = sum(rules.in_control_group(campaign_id, c, HOLDOUT_BPS) for c in ids)
    recipients = CUSTOMERS - control
    email = f"camp-{run}@coffee.example"
    invited = stack.request("POST", "/v1/invitations", admin, json={"email": email, "role": "tenant_admin"})
    assert invited.status_code == 201, invited.text

    page = context.new_page()
    join_and_sign_in(page, stack, email)
    page.get_by_role("link", name="Campaigns").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Campaigns")
    check_page(page, "campaigns")
    page.get_by_role("link", name="New campaign").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("New campaign")
    page.get_by_label("Name", exact=True).fill(f"Spring <b>{run}</b>")
    page.get_by_label("Campaign id").fill(campaign_id)
    with page.expect_response(lambda answer: "/console/campaigns/audience" in answer.url):
        page.get_by_label("Segment", exact=True).select_option(segment.json()["segment_id"])
    expect(page.locator("#camp-audience")).to_contain_text(f"{CUSTOMERS} customers are in the segment now.")
    with page.expect_response(lambda answer: "/console/campaigns/templates" in answer.url):
        page.get_by_label("SMS", exact=True).check()  # the templates of the channel chosen (htmx)
    expect(page.locator("#f-template_id option", has_text=f"Spring letter {run}")).to_have_count(0)
    with page.expect_response(lambda answer: "/console/campaigns/templates" in answer.url):
        page.get_by_label("E-mail", exact=True).check()
    page.get_by_label("Template").select_option(f"spring-{run}")
    page.get_by_label("Control group, percent of the segment").fill("80")
    page.get_by_role("button", name="Create the campaign").click()
    expect(page.locator("#f-holdout_pct")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-holdout_pct")).to_have_value("80")  # what was typed is kept
    expect(page.locator("#f-template_id")).to_have_value(f"spring-{run}")
    check_page(page, "campaign-new")
    page.get_by_label("Control group, percent of the segment").fill("30")
    page.get_by_role("button", name="Create the campaign").click()

    expect(page.get_by_role("heading", level=1)).to_have_text(f"Spring <b>{run}</b>")
    # the local workers fan out and deliver through moto's SES; the page polls its progress fragment
    expect(page.locator("#camp-delivered")).to_have_text(str(recipients), timeout=90_000)
    expect(page.locator("#res-delivered")).to_have_text(str(recipients), timeout=30_000)
    expect(page.locator("#camp-control")).to_have_text(str(control))
    members = page.locator("table.camp-table tr", has_text="Members")
    expect(members).to_contain_text(re.compile(rf"Members\s*{recipients}\s*{control}"))
    expect(page.locator("svg.chart").first).to_be_visible()
    check_page(page, "campaign-results")
    api = stack.get(f"/v1/campaigns/{campaign_id}/results", admin).json()
    assert (api["delivered"], api["target"]["members"], api["control"]["members"]) == (recipients, recipients, control)
    outbox = stack.get(f"/v1/campaigns/{campaign_id}", admin).json()["counts"]
    assert outbox["sent"] == recipients and outbox["failed"] == 0
    page.get_by_role("link", name="Русский").click()
    expect(page.get_by_role("heading", name="Результаты")).to_be_visible()
    check_page(page, "campaign-results-ru")
    page.get_by_role("link", name="Все рассылки").click()  # noqa: RUF001
    expect(page.locator("table")).to_contain_text(f"{recipients} / {recipients}")
