"""The console's reports page through the Chalice test client: a ledger report requested through the form, built
by the reports worker, followed on its page (htmx polling while it runs, a plain refresh link) and downloaded
through the presigned link (moto's S3 answers it); the period's error at its field with the typed values kept;
another tenant's person and a support person see nothing of it; hostile text is escaped.
"""

from __future__ import annotations

import dataclasses
import re
from html import unescape
from typing import Any

import pytest

from chalicelib.services.reporting.reports import registry
from tests.functional.conftest import Api, TenantKeys
from tests.functional.test_console_customers import HOSTILE, person, rows, seed
from tests.functional.test_console_sign_in import field_error, hidden
from tests.functional.test_reports import build_all, download, parse_csv


def _form(page: str, **values: str) -> dict[str, str]:
    return {"csrf": hidden(page, "csrf"), "type": "ledger", "program_id": "main", "campaign_id": "",
            "survey_id": "", "coalition_id": "", "from": "2026-11-01", "to": "2026-11-03", "format": "csv",
            "delimiter": ",", **values}


def _download_link(page: str) -> str:
    found = re.search(r'<a class="reports-download" href="([^"]+)"', page)
    assert found, "no download link"
    return unescape(found.group(1))


def test_a_ledger_report_is_requested_built_followed_and_downloaded(
        api: Api, tenant: TenantKeys, clock: Any) -> None:
    card = seed(api, tenant)  # one purchase of 1 000 ₽ on Nov 2: 50 points
    r = api.post("/v1/programs", tenant.admin, {"id": "other", "name": f"Other {HOSTILE}",
                                                "earning": {"rate_bps": 500}})
    assert r.status_code == 201, r.data
    anna = person(api, tenant, "anna@coffee.example")

    page = anna.get("/console/reports")
    assert page.status_code == 200 and page.text.count("<h1>") == 1 and "No reports yet." in page.text
    assert 'href="/console/reports"' in page.text, "in the navigation"
    assert f"Other {HOSTILE}" not in page.text and "Other &lt;script&gt;alert(1)&lt;/script&gt; (other)" in page.text

    r = anna.post("/console/reports", _form(page.text))
    assert r.status_code == 303 and r.headers["Location"].endswith("?done=requested")
    location = r.headers["Location"]
    report_id = location.split("/")[-1].split("?")[0]
    queued = anna.get(location)
    assert queued.status_code == 200 and queued.text.count("<h1>") == 1
    assert "Status: Queued" in queued.text and "The report is requested" in queued.text
    assert f'hx-get="/console/reports/{report_id}" hx-trigger="every 2s" hx-select="#report-status"' in queued.text
    assert f'<a href="/console/reports/{report_id}">Refresh</a>' in queued.text
    assert "Download the file" not in queued.text
    # the same request the API records, with its audit entry
    from_api = api.get(f"/v1/reports/{report_id}", tenant.admin).data
    assert (from_api["type"], from_api["program_id"], from_api["from"], from_api["to"], from_api["format"]) == (
        "ledger", "main", "2026-11-01", "2026-11-03", "csv")
    audit = api.get("/v1/audit", tenant.admin).data["items"]
    assert any(e["action"] == "report.requested" and e["target"] == f"report:{report_id}" for e in audit)

    build_all()
    done = anna.get(f"/console/reports/{report_id}")
    assert "Status: Ready" in done.text and "hx-trigger" not in done.text and ">Refresh<" not in done.text
    url = _download_link(done.text)
    raw, _ = download(url)
    (row,) = parse_csv(raw)
    assert (row["card_number"], row["type"], int(row["points"])) == (card["number"], "accrual", 50)
    ready = api.get(f"/v1/reports/{report_id}", tenant.admin).data
    assert ready["size_bytes"] == len(raw) and f"{len(raw)} bytes" in done.text

    listed = rows(anna.get("/console/reports").text, "The tenant's reports")
    assert len(listed) == 1
    assert listed[0][0].startswith("Points ledger") and "main · CSV" in listed[0][0]
    assert listed[0][1:4] == ["2026-11-01 to 2026-11-03", "Ready", f"{len(raw)} bytes"]
    assert listed[0][5] != "—", "the file's expiry is shown"


def test_the_period_and_the_subject_are_refused_at_their_fields_and_a_failed_report_says_why(
        api: Api, tenant: TenantKeys, monkeypatch: pytest.MonkeyPatch) -> None:
    anna = person(api, tenant, "anna@coffee.example")
    page = anna.get("/console/reports").text

    r = anna.post("/console/reports", _form(page, **{"from": "2026-11-05", "to": "2026-11-03", "format": "xlsx"}))
    assert r.status_code == 400
    assert field_error(r.text, "to") == "`to` must be after `from` (the period is [from, to))"
    assert 'aria-invalid="true"' in r.text and 'value="2026-11-05"' in r.text and 'value="2026-11-03"' in r.text
    assert 'value="xlsx" checked' in r.text

    r = anna.post("/console/reports", _form(page, **{"from": ""}))
    assert r.status_code == 400 and field_error(r.text, "from")

    r = anna.post("/console/reports", _form(page, type="survey_results"))
    assert r.status_code == 422 and field_error(r.text, "survey_id") == "A survey_results report needs survey_id."
    assert '<option value="survey_results" selected>' in r.text

    r = anna.post("/console/reports", _form(page, program_id=HOSTILE))
    assert r.status_code == 400 and field_error(r.text, "program_id")
    assert HOSTILE not in r.text
    assert api.get("/v1/reports", tenant.admin).data["items"] == [], "nothing was requested"

    def boom(ctx: Any) -> Any:
        raise RuntimeError(f"secret detail {HOSTILE}")
        yield []

    monkeypatch.setitem(registry.TYPES, "ledger", dataclasses.replace(registry.TYPES["ledger"], rows=boom))
    r = anna.post("/console/reports", _form(page, format="xlsx"))
    assert r.status_code == 303
    build_all()
    failed = anna.get(r.headers["Location"])
    assert "Status: Failed" in failed.text and "hx-trigger" not in failed.text and "reports-download" not in failed.text
    assert ("The report failed: The report could not be built; the error has been logged." in failed.text
            and "secret detail" not in failed.text)
    listed = rows(anna.get("/console/reports").text, "The tenant's reports")
    assert [(row[2], row[3]) for row in listed] == [("Failed", "—")]


def test_another_tenants_person_gets_404_and_support_403(
        api: Api, tenant: TenantKeys, other_tenant: TenantKeys) -> None:
    report_id = api.post("/v1/reports", tenant.admin, {"type": "ledger", "program_id": "main",
                                                       "from": "2026-11-01", "to": "2026-11-03"}).data["report_id"]
    build_all()
    boris = person(api, other_tenant, "boris@tea.example")
    r = boris.get(f"/console/reports/{report_id}")
    assert r.status_code == 404 and report_id not in r.text
    assert report_id not in boris.get("/console/reports").text

    olga = person(api, tenant, "olga@coffee.example", "support")
    assert api.get("/v1/reports", tenant.support).status_code == 403, "the API refuses support"
    assert olga.get("/console/reports").status_code == 403
    r = olga.get(f"/console/reports/{report_id}")
    assert r.status_code == 403 and report_id not in r.text
    r = olga.post("/console/reports", {"csrf": hidden(olga.get("/console").text, "csrf"), "type": "ledger",
                                       "program_id": "main", "from": "2026-11-01", "to": "2026-11-03"})
    assert r.status_code == 403
    assert len(api.get("/v1/reports", tenant.admin).data["items"]) == 1
