"""Campaign results, survey results and coalition settlement as reports, checked against their API answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.services.reporting.reports.campaigns import COLUMNS
from tests.functional.conftest import Api, TenantKeys
from tests.functional.jobqueue import drain
from tests.functional.test_campaign_results import (
    CAMPAIGN,
    IDS,
    bought,
    campaign_body,
    members,  # noqa: F401
    segment,
    withdraw,
)
from tests.functional.test_campaigns import deliver, mail_bodies
from tests.functional.test_coalitions import START, club, shop_a, shop_b, write_entries  # noqa: F401
from tests.functional.test_mail_delivery import mailer, rendering  # noqa: F401
from tests.functional.test_pos_rules import buy
from tests.functional.test_reports import _xlsx_parts, build_all, download, parse_csv, request_report, take_messages
from tests.functional.test_surveys import _create, _registration, _respond

CAMPAIGNS = {"type": "campaign_results", "from": "2026-11-01", "to": "2026-11-03"}


def ready(api: Api, key: str, report: dict[str, Any], path: str = "/v1/reports") -> dict[str, Any]:
    got = api.get(f"{path}/{report['report_id']}", key)
    assert got.status_code == 200, got.data
    assert got.data["status"] == "ready", got.data
    return got.data


def csv_of(api: Api, key: str, report: dict[str, Any], path: str = "/v1/reports") -> list[dict[str, str]]:
    return parse_csv(download(ready(api, key, report, path)["download_url"])[0])


def ints(row: dict[str, str], *names: str) -> list[int | None]:
    return [int(row[n]) if row[n] != "" else None for n in names]


# --- campaign results ---------------------------------------------------------------------

@pytest.fixture
def sent_campaign(api: Api, mailer: TenantKeys, members: list[str], clock: Any) -> TenantKeys:  # noqa: F811
    """`spring25` sent at Nov 2 11:00 to members 0-4 (member 3 has no SMS consent), 5-7 held out; purchases."""
    a, b, _, _, _, f, _, _ = members
    bought(buy(api, mailer.pos, "p0", a, 10_000))  # before the send: not counted
    clock.advance(hours=1)
    created = api.post("/v1/campaigns", mailer.admin, campaign_body(segment(api, mailer)))
    assert created.status_code == 201, created.data
    drain()
    deliver(mail_bodies())
    clock.advance(days=1)
    bought(buy(api, mailer.pos, "p1", a, 30_000))
    bought(buy(api, mailer.pos, "p2", b, 20_000))
    bought(buy(api, mailer.pos, "f1", f, 10_000))  # a control member
    withdraw(api, mailer, IDS[2], "sms")
    return mailer


def test_campaign_results_report_matches_the_results_api_and_the_seed(api: Api, sent_campaign: TenantKeys) -> None:
    tenant = sent_campaign
    everything = request_report(api, tenant.admin, CAMPAIGNS)
    later = request_report(api, tenant.admin, {**CAMPAIGNS, "from": "2026-11-03", "to": "2026-11-10"})
    one = request_report(api, tenant.admin, {**CAMPAIGNS, "campaign_id": CAMPAIGN, "from": "2026-12-01",
                                             "to": "2026-12-02"})
    assert one["campaign_id"] == CAMPAIGN and one["program_id"] is None
    build_all()
    api_view = api.get(f"/v1/campaigns/{CAMPAIGN}/results", tenant.admin).data
    campaign = api.get(f"/v1/campaigns/{CAMPAIGN}", tenant.admin).data

    rows = csv_of(api, tenant.admin, everything)
    assert len(rows) == 1
    row = rows[0]
    assert (row["campaign_id"], row["name"], row["channel"], row["status"]) == (CAMPAIGN, "Spring", "sms", "sent")
    assert (row["started_at"], row["window_end"], row["window_open"]) == (
        "2026-11-02T11:00:00+00:00", "2026-11-09T11:00:00+00:00", "True")
    assert ints(row, "targeted", "control", "queued") == [
        campaign["counts"]["targeted"], campaign["counts"]["control"], campaign["counts"]["queued"]] == [8, 3, 5]
    assert ints(row, "delivered", "failed", "suppressed", "suppressed_no_consent", "suppressed_opted_out",
                "suppressed_other", "opt_outs") == [
        api_view["delivered"], api_view["failed"], api_view["suppressed"],
        api_view["suppressed_by_reason"]["no_consent"], 0, 0, api_view["opt_outs"]] == [4, 0, 1, 1, 0, 0, 1]
    fields = ("members", "buyers", "receipts", "revenue", "refunded", "conversion_bps", "revenue_per_member")
    for group in ("target", "control"):
        assert ints(row, *(f"{group}_{f}" for f in fields)) == [api_view[group][f] for f in fields]
    assert ints(row, *(f"target_{f}" for f in fields)) == [5, 2, 2, 50_000, 0, 4000, 10_000]
    assert ints(row, *(f"control_{f}" for f in fields)) == [3, 1, 1, 10_000, 0, 3333, 3333]
    assert ints(row, "conversion_uplift_bps", "incremental_revenue") == [
        api_view["conversion_uplift_bps"], api_view["incremental_revenue"]] == [667, 33_333]

    assert csv_of(api, tenant.admin, later) == [], "started before the period"
    assert csv_of(api, tenant.admin, one) == rows, "the campaign asked for, whatever the period"
    name = ready(api, tenant.admin, one)["download_url"]
    assert f"campaign_results-{CAMPAIGN}-2026-12-01-2026-12-01.csv" in requests_disposition(name)
    assert not any(phone in json.dumps(rows) for phone in ("+79163000000", "Anna0")), "no personal data"


def column_letter(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA."""
    return ("" if index < 26 else chr(ord("A") + index // 26 - 1)) + chr(ord("A") + index % 26)


def requests_disposition(url: str) -> str:
    return download(url)[1]["Content-Disposition"]


def test_campaign_results_xlsx_charts_target_vs_control_and_the_agency_gets_it(
        api: Api, sent_campaign: TenantKeys) -> None:
    tenant = sent_campaign
    path = f"/v1/agency/tenants/{tenant.tenant_id}/reports"
    report = request_report(api, tenant.agency, {**CAMPAIGNS, "format": "xlsx"}, path=path)
    build_all()
    parts = _xlsx_parts(download(ready(api, tenant.agency, report, path)["download_url"])[0])
    charts = [name for name in parts if name.startswith("xl/charts/chart")]
    assert len(charts) == 1
    chart = parts[charts[0]]
    assert '<c:barDir val="col"/>' in chart
    for column in ("target_conversion_bps", "control_conversion_bps"):
        letter = column_letter(COLUMNS.index(column))
        assert f"<c:f>campaign_results!${letter}$2</c:f>" in chart, column


def test_campaign_report_refusals(api: Api, sent_campaign: TenantKeys, other_tenant: TenantKeys) -> None:
    tenant = sent_campaign
    foreign = api.post("/v1/reports", other_tenant.admin, {**CAMPAIGNS, "campaign_id": CAMPAIGN})
    assert (foreign.status_code, foreign.data["error"]["code"]) == (404, "campaign_not_found")
    assert foreign.data["error"]["details"][0]["field"] == "campaign_id"
    wrong = api.post("/v1/reports", tenant.admin, {**CAMPAIGNS, "program_id": "main"})
    assert (wrong.status_code, wrong.data["error"]["code"]) == (422, "field_not_applicable")
    assert wrong.data["error"]["details"][0]["field"] == "program_id"
    assert api.post("/v1/reports", tenant.pos, CAMPAIGNS).status_code == 403
    assert take_messages() == [] and api.get("/v1/reports", tenant.admin).data["items"] == []
    report = request_report(api, tenant.admin, CAMPAIGNS)
    build_all()
    assert api.get(f"/v1/reports/{report['report_id']}", other_tenant.admin).status_code == 404
    assert api.get(f"/v1/agency/tenants/{tenant.tenant_id}/reports/{report['report_id']}",
                   other_tenant.agency).status_code == 404


# --- survey results -----------------------------------------------------------------------

NPS = {"id": "nps", "type": "nps", "label": "Recommend us?"}
COMMENTS = ["Too cold by the window, XJ-7731", "Loved it", "Slow service"]


@pytest.fixture
def answered(api: Api, tenant: TenantKeys, clock: Any) -> TenantKeys:
    """Survey `welcome` with an NPS question and three responses."""
    body = _registration()
    _create(api, tenant, {**body, "questions": [*body["questions"], NPS]})
    answers = [
        {"drink": "tea", "likes": ["music", "cakes"], "stars": 4, "sms": True, "nps": 10},
        {"drink": "coffee", "likes": ["cakes"], "stars": 5, "sms": False, "nps": 9},
        {"drink": "tea", "stars": 2, "nps": 3},
    ]
    for i, extra in enumerate(answers):
        r = _respond(api, tenant, "welcome", {"phone": f"+7916123456{i}", "name": f"Anna{i}",
                                              "mail": f"anna{i}@example.com", "comment": COMMENTS[i], **extra})
        assert r.status_code == 201, r.data
    return tenant


def test_survey_results_report_matches_the_results_api_without_personal_answers(
        api: Api, answered: TenantKeys) -> None:
    tenant = answered
    body = {"type": "survey_results", "survey_id": "welcome", "from": "2026-11-01", "to": "2026-12-01"}
    report = request_report(api, tenant.admin, body)
    build_all()
    raw = download(ready(api, tenant.admin, report)["download_url"])[0]
    rows = parse_csv(raw)
    results = api.get("/v1/surveys/welcome/results", tenant.admin).data
    assert results["responses"] == 3
    text = raw.decode("utf-8-sig")
    for secret in (*COMMENTS, "Anna0", "anna1@example.com", "+79161234562", "1990"):
        assert secret not in text
    by_question: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_question.setdefault(row["question_id"], []).append(row)
    assert list(by_question) == [q["question_id"] for q in results["questions"]]
    for q in results["questions"]:
        head, *parts = by_question[q["question_id"]]
        assert (head["option"], head["question"], head["type"], int(head["count"])) == (
            "", q["label"], q["type"], q["answered"])
        assert ints(head, "average_x100", "nps_bps") == [q.get("average_x100"), q.get("nps_bps")]
        counts = {p["option"]: int(p["count"]) for p in parts}
        expected = {o["id"]: o["count"] for o in q.get("options") or []}
        expected.update(q.get("distribution") or {})
        if q["type"] == "nps":
            expected.update(promoters=q["promoters"], passives=q["passives"], detractors=q["detractors"])
        if q["type"] == "consent":
            expected.update(granted=q["granted"], declined=q["declined"])
        assert counts == expected, q["question_id"]

    def part(qid: str, option: str) -> dict[str, str]:
        return next(p for p in by_question[qid] if p["option"] == option)

    assert [(p["option"], p["count"], p["share_bps"]) for p in by_question["comment"]] == [("", "3", "10000")]
    assert [p["option"] for p in by_question["phone"]] == [""], "personal questions: how many answered only"
    assert (part("drink", "tea")["count"], part("drink", "tea")["share_bps"], part("drink", "tea")["label"]) == (
        "2", "6667", "Tea")
    assert (part("likes", "cakes")["count"], part("likes", "music")["share_bps"]) == ("2", "5000")
    assert ints(by_question["stars"][0], "count", "average_x100") == [3, 367]
    assert ints(by_question["nps"][0], "count", "nps_bps") == [3, 3333]
    assert [(part("nps", k)["count"], part("nps", k)["share_bps"]) for k in ("promoters", "passives",
                                                                              "detractors")] == [
        ("2", "6667"), ("0", "0"), ("1", "3333")]
    assert (part("sms", "granted")["count"], part("sms", "declined")["count"]) == ("1", "1")


def test_survey_results_xlsx_has_an_nps_pie_and_option_columns(api: Api, answered: TenantKeys) -> None:
    body = {"type": "survey_results", "survey_id": "welcome", "from": "2026-11-01", "to": "2026-12-01",
            "format": "xlsx"}
    report = request_report(api, answered.agency, body, path=f"/v1/agency/tenants/{answered.tenant_id}/reports")
    build_all()
    got = api.get(f"/v1/agency/tenants/{answered.tenant_id}/reports/{report['report_id']}", answered.agency).data
    parts = _xlsx_parts(download(got["download_url"])[0])
    charts = [parts[n] for n in sorted(parts, key=lambda n: (len(n), n)) if n.startswith("xl/charts/chart")]
    assert ["<c:pieChart>" in c for c in charts] == [False, False, False, True], "drink, likes, stars; nps"
    # Rows: phone 1, name 2, born 3, mail 4, comment 5, drink 6-8, likes 9-12, stars 13-18, sms 19-21,
    # nps 22 then values 0..10 at 23-33 and promoters/passives/detractors at 34-36 (sheet rows +1 for the header).
    assert "survey_results!$F$35:$F$37" in charts[3]
    assert "survey_results!$F$8:$F$9" in charts[0]


def test_survey_report_refusals(api: Api, answered: TenantKeys, other_tenant: TenantKeys) -> None:
    body = {"type": "survey_results", "from": "2026-11-01", "to": "2026-12-01"}
    missing = api.post("/v1/reports", answered.admin, body)
    assert (missing.status_code, missing.data["error"]["code"]) == (422, "missing_field")
    assert missing.data["error"]["details"] == [{"field": "survey_id", "issue": "required for this report type"}]
    foreign = api.post("/v1/reports", other_tenant.admin, {**body, "survey_id": "welcome"})
    assert (foreign.status_code, foreign.data["error"]["code"]) == (404, "survey_not_found")
    assert take_messages() == []
    report = request_report(api, answered.admin, {**body, "survey_id": "welcome"})
    build_all()
    assert api.get(f"/v1/reports/{report['report_id']}", other_tenant.admin).status_code == 404


# --- coalition settlement -----------------------------------------------------------------

SETTLEMENT = {"type": "coalition_settlement", "coalition_id": "city-club", "from": "2026-11-01", "to": "2026-11-02"}
LINE = ("points_accrued", "points_bonus", "points_reversed", "points_adjusted", "points_issued",
        "points_redeemed_gross", "points_returned", "points_redeemed", "net_points", "amount", "points_expired",
        "entries")


@pytest.fixture
def settled(club: dict[str, Any]) -> None:  # noqa: F811
    inside = START + timedelta(hours=5)
    write_entries("1000000000001", [("accrual", 300, START, "shop-a"), ("bonus", 50, inside, "shop-a"),
                                    ("redemption", -40, inside, "shop-a"), ("expiry", -5, inside, "shop-a"),
                                    ("accrual", 999, datetime(2026, 11, 2, tzinfo=UTC), "shop-a")])
    write_entries("1000000000002", [("redemption", -200, inside, "shop-b"), ("return", 30, inside, "shop-b"),
                                    ("accrual", 60, inside, "shop-b")])


def _line(row: dict[str, str]) -> dict[str, int | None]:
    return dict(zip(LINE, ints(row, *LINE), strict=True))


PERIOD_QUERY = "from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z"


def test_a_partner_gets_its_own_line_and_the_totals(api: Api, settled: None, shop_a: TenantKeys,  # noqa: F811
                                                     shop_b: TenantKeys, agency_key: str) -> None:  # noqa: F811
    report = request_report(api, shop_b.admin, SETTLEMENT)
    build_all()
    rows = csv_of(api, shop_b.admin, report)
    own = api.get(f"/v1/coalitions/city-club/settlement?{PERIOD_QUERY}", shop_b.admin).data
    assert [r["partner_id"] for r in rows] == ["shop-b", "total", "pool"], "never another partner's line"
    assert {(r["coalition_id"], r["currency"], r["point_value"]) for r in rows} == {("city-club", "RUB", "100")}
    line = {k: v for k, v in own["partners"][0].items() if k != "partner_id"}
    assert _line(rows[0]) == line
    assert ints(rows[0], "points_issued", "points_redeemed", "net_points", "amount") == [60, 170, -110, -11_000]
    totals = own["totals"]
    assert _line(rows[1]) == {**dict.fromkeys(LINE), "points_issued": totals["points_issued"],
                              "points_redeemed": totals["points_redeemed"], "net_points": totals["net_points"],
                              "amount": totals["amount"], "points_expired": totals["breakage_points"]}
    assert ints(rows[1], "points_issued", "points_redeemed", "net_points", "amount", "points_expired") == [
        410, 210, 200, 20_000, 5]
    assert ints(rows[2], "amount") == [totals["pool_amount"]] == [-20_000]
    assert ready(api, shop_b.admin, report)["coalition_id"] == "city-club"


def test_the_agency_gets_every_partner_and_only_agency_keys_get_that_file(
        api: Api, settled: None, shop_a: TenantKeys, shop_b: TenantKeys, agency_key: str) -> None:  # noqa: F811
    path = f"/v1/agency/tenants/{shop_a.tenant_id}/reports"
    report = request_report(api, agency_key, SETTLEMENT, path=path)
    build_all()
    rows = csv_of(api, agency_key, report, path)
    full = api.get(f"/v1/agency/coalitions/city-club/settlement?{PERIOD_QUERY}", agency_key).data
    assert [r["partner_id"] for r in rows] == ["shop-a", "shop-b", "total", "pool"]
    for row, line in zip(rows, full["partners"], strict=False):
        assert _line(row) == {k: v for k, v in line.items() if k != "partner_id"}
    assert ints(rows[0], "points_issued", "points_redeemed", "amount", "points_expired") == [350, 40, 31_000, 5]
    assert ints(rows[3], "amount") == [full["totals"]["pool_amount"]]
    as_admin = api.get(f"/v1/reports/{report['report_id']}", shop_a.admin).data
    assert as_admin["status"] == "ready" and as_admin["download_url"] is None, "other partners' lines: agency only"


def test_settlement_report_refusals(api: Api, settled: None, shop_a: TenantKeys, tenant: TenantKeys,  # noqa: F811
                                    other_tenant: TenantKeys) -> None:
    for key in (tenant.admin, other_tenant.admin):
        refused = api.post("/v1/reports", key, SETTLEMENT)
        assert (refused.status_code, refused.data["error"]["code"]) == (404, "coalition_not_found")
    missing = api.post("/v1/reports", shop_a.admin, {**SETTLEMENT, "coalition_id": None})
    assert (missing.status_code, missing.data["error"]["details"][0]["field"]) == (422, "coalition_id")
    too_long = api.post("/v1/reports", shop_a.admin, {**SETTLEMENT, "from": "2025-10-01"})
    assert (too_long.status_code, too_long.data["error"]["code"]) == (422, "period_too_long")
    assert too_long.data["error"]["details"] == [{"field": "to", "issue": "at most 366 days after from"}]
    assert take_messages() == []
    report = request_report(api, shop_a.admin, SETTLEMENT)
    build_all()
    assert api.get(f"/v1/reports/{report['report_id']}", other_tenant.admin).status_code == 404
    assert api.get(f"/v1/reports/{report['report_id']}", tenant.admin).status_code == 404
