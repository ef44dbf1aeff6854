"""Reports through the API and the reports worker, read back from moto's S3 and checked against the seed."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
import requests

from app import app
from chalicelib.services.reporting.reports import registry, service
from chalicelib.settings import settings
from chalicelib.storage import reports as store
from tests.functional.conftest import Api, TenantKeys
from tests.functional.test_pos_rules import buy, new_card

PERIOD = {"type": "ledger", "program_id": "main", "from": "2026-11-03", "to": "2026-11-05"}


# --- helpers ------------------------------------------------------------------------

def _queue_url() -> str:
    return boto3.client("sqs", region_name=settings.region).get_queue_url(QueueName=settings.reports_queue)["QueueUrl"]


def take_messages() -> list[str]:
    """Take (and delete) what is waiting on the reports queue."""
    sqs = boto3.client("sqs", region_name=settings.region)
    messages = sqs.receive_message(QueueUrl=_queue_url(), MaxNumberOfMessages=10).get("Messages", [])
    for m in messages:
        sqs.delete_message(QueueUrl=_queue_url(), ReceiptHandle=m["ReceiptHandle"])
    return [m["Body"] for m in messages]


def run_worker(bodies: list[str]) -> dict[str, Any]:
    """The deployed `reports_worker` handler with an SQS event of these bodies."""
    event = {"Records": [{"messageId": f"m{i}", "receiptHandle": f"h{i}", "body": body, "attributes": {},
                          "messageAttributes": {}, "eventSource": "aws:sqs",
                          "eventSourceARN": f"arn:aws:sqs:eu-central-1:123456789012:{settings.reports_queue}",
                          "awsRegion": "eu-central-1"} for i, body in enumerate(bodies)]}
    return app.handler_map["reports_worker"](event, None)


def request_report(api: Api, key: str, body: dict[str, Any] | None = None, path: str = "/v1/reports") -> dict:
    r = api.post(path, key, body or PERIOD)
    assert r.status_code == 202, r.data
    assert r.data["status"] == "queued" and r.data["download_url"] is None
    return r.data


def build_all() -> list[str]:
    bodies = take_messages()
    assert run_worker(bodies) == {"batchItemFailures": []}
    return bodies


def download(url: str) -> tuple[bytes, dict[str, str]]:
    """GET the presigned URL (moto's in-process mock answers it)."""
    response = requests.get(url, timeout=10)
    assert response.status_code == 200, response.text
    return response.content, dict(response.headers)


def parse_csv(raw: bytes, delimiter: str = ",") -> list[dict[str, str]]:
    assert raw.startswith(b"\xef\xbb\xbf"), "UTF-8 with BOM, for Excel"
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig")), delimiter=delimiter))


def report_objects(tenant_id: str) -> list[str]:
    s3 = boto3.client("s3", region_name=settings.region)
    listed = s3.list_objects_v2(Bucket=settings.reports_bucket, Prefix=f"reports/{tenant_id}/")
    return [o["Key"] for o in listed.get("Contents", [])]


def adjust(api: Api, tenant: TenantKeys, card: str, adjustment_id: str, points: int, reason: str) -> None:
    r = api.post(f"/v1/cards/{card}/adjustments", tenant.admin,
                 {"adjustment_id": adjustment_id, "points": points, "reason": reason})
    assert r.status_code in (200, 201), r.data


@pytest.fixture
def seeded(api: Api, tenant: TenantKeys, clock: Any) -> dict[str, Any]:
    """Two cards of `main` and one of `other`, with entries before, inside and after [Nov 3, Nov 5)."""
    r = api.post("/v1/programs", tenant.admin, {"id": "other", "name": "Other program",
                                                "earning": {"rate_bps": 1000}})
    assert r.status_code == 201, r.data
    anna = new_card(api, tenant, "+79161234567")
    anonymous = new_card(api, tenant, None)
    r = api.post("/v1/cards", tenant.pos, {"program_id": "other"})
    assert r.status_code == 201, r.data
    other = r.data["number"]
    assert buy(api, tenant.pos, "r-before", anna, 10_000).status_code == 200         # Nov 2: outside
    clock.advance(days=1)                                                               # Nov 3 10:00
    assert buy(api, tenant.pos, "r1", anna, 20_000).status_code == 200                 # +10
    assert buy(api, tenant.pos, "r-other", other, 10_000).status_code == 200           # other program: excluded
    clock.advance(hours=1)
    assert buy(api, tenant.pos, "r2", anonymous, 30_000).status_code == 200            # +15
    clock.advance(days=1)                                                               # Nov 4 11:00
    r = api.post("/v1/refunds", tenant.pos, {"refund_id": "f1", "receipt_id": "r1"})
    assert r.status_code == 200, r.data                                                 # -10
    clock.advance(minutes=1)
    adjust(api, tenant, anonymous, "adj-1", 250, "=HYPERLINK(\"x\") goodwill")         # +250
    clock.advance(days=1)                                                               # Nov 5 11:01: outside
    assert buy(api, tenant.pos, "r3", anna, 10_000).status_code == 200
    return {"anna": anna, "anonymous": anonymous, "other": other}


def card_ledger(api: Api, tenant: TenantKeys, card: str) -> list[dict[str, Any]]:
    return api.get(f"/v1/cards/{card}/transactions?limit=200", tenant.support).data["items"]


# --- the ledger export ----------------------------------------------------------------

def test_ledger_export_has_every_entry_of_the_program_in_the_period_in_time_order(
        api: Api, tenant: TenantKeys, seeded: dict[str, Any]) -> None:
    report = request_report(api, tenant.admin)
    assert report["type"] == "ledger" and report["from"] == "2026-11-03" and report["to"] == "2026-11-05"
    assert build_all() == [json.dumps({"tenant_id": tenant.tenant_id, "report_id": report["report_id"]},
                                      separators=(",", ":"))]
    ready = api.get(f"/v1/reports/{report['report_id']}", tenant.admin).data
    assert ready["status"] == "ready" and ready["failure"] is None
    assert ready["rows"] == 4
    raw, headers = download(ready["download_url"])
    assert ready["size_bytes"] == len(raw)
    assert headers["Content-Disposition"] == 'attachment; filename="ledger-main-2026-11-03-2026-11-04.csv"'
    rows = parse_csv(raw)
    anna, anonymous = seeded["anna"], seeded["anonymous"]
    customer = api.get(f"/v1/cards/{anna}", tenant.pos).data["customer_id"]
    assert [(r["card_number"], r["type"], int(r["points"]), r["receipt_id"]) for r in rows] == [
        (anna, "accrual", 10, "r1"),
        (anonymous, "accrual", 15, "r2"),
        (anna, "reversal", -10, "r1"),
        (anonymous, "adjustment", 250, ""),
    ]
    assert [r["at"] for r in rows] == sorted(r["at"] for r in rows)
    assert rows[0]["at"] == "2026-11-03T10:00:00Z" and rows[3]["at"] == "2026-11-04T11:01:00Z"
    assert [r["customer_id"] for r in rows] == [customer, "", customer, ""]
    assert rows[0]["store_id"] == "msk-01" and rows[0]["rule_version"] == "1"
    assert rows[3]["reason"] == "'=HYPERLINK(\"x\") goodwill", "a formula is defused for Excel"
    # Number by number against the cards' own ledgers (the API's view of the same entries).
    by_id = {e["entry_id"]: e for card in (anna, anonymous) for e in card_ledger(api, tenant, card)}
    for row in rows:
        entry = by_id[row["entry_id"]]
        assert (int(row["points"]), int(row["balance_after"]), row["type"]) == (
            entry["points"], entry["balance_after"], entry["type"])
    assert len({r["entry_id"] for r in rows}) == 4
    assert report_objects(tenant.tenant_id) == [f"reports/{tenant.tenant_id}/{report['report_id']}.csv"]


def test_semicolon_delimiter_and_empty_period(api: Api, tenant: TenantKeys, seeded: dict[str, Any]) -> None:
    report = request_report(api, tenant.admin, {**PERIOD, "delimiter": ";"})
    empty = request_report(api, tenant.admin, {**PERIOD, "from": "2026-10-01", "to": "2026-11-01"})
    build_all()
    ready = api.get(f"/v1/reports/{report['report_id']}", tenant.admin).data
    rows = parse_csv(download(ready["download_url"])[0], delimiter=";")
    assert [int(r["points"]) for r in rows] == [10, 15, -10, 250]
    nothing = api.get(f"/v1/reports/{empty['report_id']}", tenant.admin).data
    assert nothing["status"] == "ready" and nothing["rows"] == 0
    raw = download(nothing["download_url"])[0]
    assert raw.decode("utf-8-sig").splitlines()[0].split(",")[:3] == ["at", "card_number", "customer_id"]
    assert parse_csv(raw) == []


def test_the_agency_requests_and_reads_its_tenants_reports(api: Api, tenant: TenantKeys,
                                                           seeded: dict[str, Any]) -> None:
    path = f"/v1/agency/tenants/{tenant.tenant_id}/reports"
    report = request_report(api, tenant.agency, path=path)
    build_all()
    got = api.get(f"{path}/{report['report_id']}", tenant.agency).data
    assert got["status"] == "ready" and got["rows"] == 4
    listed = api.get(path, tenant.agency).data
    assert [r["report_id"] for r in listed["items"]] == [report["report_id"]]
    assert api.get(f"/v1/reports/{report['report_id']}", tenant.admin).data["rows"] == 4, "the same report"


def test_list_is_newest_first_and_paginated(api: Api, tenant: TenantKeys, clock: Any) -> None:
    ids = []
    for _ in range(3):
        ids.append(request_report(api, tenant.admin)["report_id"])
        clock.advance(seconds=1)
    first = api.get("/v1/reports?limit=2", tenant.admin).data
    assert [r["report_id"] for r in first["items"]] == ids[::-1][:2] and first["has_more"] is True
    rest = api.get(f"/v1/reports?limit=2&cursor={first['cursor']}", tenant.admin).data
    assert [r["report_id"] for r in rest["items"]] == ids[:1] and rest["has_more"] is False
    forged = api.get("/v1/reports?cursor=eyJwayI6eyJTIjoiZnVlbC1uZXQjcmVwb3J0In19", tenant.admin)
    assert forged.status_code == 400


def test_idempotency_key_gives_one_report(api: Api, tenant: TenantKeys, clock: Any) -> None:
    headers = {"Idempotency-Key": "monthly-ledger-1"}
    first = api.post("/v1/reports", tenant.admin, PERIOD, headers=headers)
    again = api.post("/v1/reports", tenant.admin, PERIOD, headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.data["report_id"] == first.data["report_id"]
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert len(take_messages()) == 1


# --- refusals -----------------------------------------------------------------------

def test_isolation_and_roles(api: Api, tenant: TenantKeys, other_tenant: TenantKeys,
                             seeded: dict[str, Any]) -> None:
    report = request_report(api, tenant.admin)
    build_all()
    rid = report["report_id"]
    assert api.get(f"/v1/reports/{rid}", tenant.admin).data["status"] == "ready"
    assert api.get(f"/v1/reports/{rid}", other_tenant.admin).status_code == 404
    assert api.get("/v1/reports", other_tenant.admin).data["items"] == []
    assert api.get(f"/v1/agency/tenants/{tenant.tenant_id}/reports/{rid}", other_tenant.agency).status_code == 404
    assert api.get(f"/v1/agency/tenants/{tenant.tenant_id}/reports", other_tenant.agency).status_code == 404
    refused = api.post(f"/v1/agency/tenants/{tenant.tenant_id}/reports", other_tenant.agency, PERIOD)
    assert refused.status_code == 404
    assert api.get(f"/v1/agency/tenants/{other_tenant.tenant_id}/reports/{rid}", other_tenant.agency
                   ).status_code == 404, "the id under another tenant is not found"
    for key in (tenant.pos, tenant.support):
        assert api.post("/v1/reports", key, PERIOD).status_code == 403
        assert api.get(f"/v1/reports/{rid}", key).status_code == 403
        assert api.get("/v1/reports", key).status_code == 403
    assert api.get("/v1/reports/not-a-report-id", tenant.admin).status_code == 404
    # The file itself is under the tenant's prefix only; the other tenant's prefix is empty.
    assert report_objects(other_tenant.tenant_id) == []


@pytest.mark.parametrize(("change", "status", "code", "field"), [
    ({"type": "nope"}, 422, "unknown_report_type", "type"),
    ({"type": "Ledger"}, 400, "validation_error", "type"),
    ({"program_id": "ghost"}, 422, "unknown_program", "program_id"),
    ({"format": "pdf"}, 400, "validation_error", "format"),
    ({"to": "2026-11-03"}, 400, "validation_error", "body"),
    ({"from": "2025-01-01", "to": "2026-11-05"}, 400, "validation_error", "body"),
    ({"from": "3 Nov"}, 400, "validation_error", "from"),
    ({"delimiter": "|"}, 400, "validation_error", "delimiter"),
])
def test_bad_requests_are_refused_and_write_nothing(api: Api, tenant: TenantKeys, change: dict[str, Any],
                                                    status: int, code: str, field: str) -> None:
    r = api.post("/v1/reports", tenant.admin, {**PERIOD, **change})
    assert r.status_code == status, r.data
    assert r.data["error"]["code"] == code
    assert r.data["error"]["details"][0]["field"] == field
    assert api.get("/v1/reports", tenant.admin).data["items"] == []
    assert take_messages() == []


def test_a_format_a_type_does_not_offer_is_refused(api: Api, tenant: TenantKeys,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.TYPES, "ledger", dataclasses.replace(registry.TYPES["ledger"],
                                                                      formats=frozenset({"csv"})))
    r = api.post("/v1/reports", tenant.admin, {**PERIOD, "format": "xlsx"})
    assert r.status_code == 422 and r.data["error"]["code"] == "format_unsupported"
    assert r.data["error"]["details"] == [{"field": "format", "issue": "one of: csv"}]
    assert take_messages() == []


# --- failures and redelivery ----------------------------------------------------------

def test_a_builder_error_fails_the_report_with_a_reason(api: Api, tenant: TenantKeys, seeded: dict[str, Any],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(ctx: Any) -> Any:
        yield ["2026-11-03T10:00:00Z"]
        raise RuntimeError("secret detail +79161234567")

    monkeypatch.setitem(registry.TYPES, "ledger", dataclasses.replace(registry.TYPES["ledger"], rows=boom))
    report = request_report(api, tenant.admin)
    build_all()
    failed = api.get(f"/v1/reports/{report['report_id']}", tenant.admin).data
    assert failed["status"] == "failed" and failed["download_url"] is None and failed["rows"] is None
    assert failed["failure"] == {"code": "build_failed",
                                 "message": "The report could not be built; the error has been logged."}
    assert "+7916" not in json.dumps(failed)
    assert report_objects(tenant.tenant_id) == []
    # A redelivered message for a failed report does nothing.
    run_worker([json.dumps({"tenant_id": tenant.tenant_id, "report_id": report["report_id"]})])
    assert api.get(f"/v1/reports/{report['report_id']}", tenant.admin).data["failure"]["code"] == "build_failed"


def test_a_multipart_build_that_fails_is_aborted(api: Api, tenant: TenantKeys, seeded: dict[str, Any],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.s3 import models as s3_models

    monkeypatch.setattr(store, "PART_SIZE", 64)
    monkeypatch.setattr(s3_models, "S3_UPLOAD_PART_MIN_SIZE", 0)

    def many_then_boom(ctx: Any) -> Any:
        for i in range(50):
            yield [f"row {i}"]
        raise RuntimeError("storage went away")

    monkeypatch.setitem(registry.TYPES, "ledger", dataclasses.replace(registry.TYPES["ledger"], rows=many_then_boom))
    report = request_report(api, tenant.admin)
    build_all()
    assert api.get(f"/v1/reports/{report['report_id']}", tenant.admin).data["status"] == "failed"
    s3 = boto3.client("s3", region_name=settings.region)
    assert s3.list_multipart_uploads(Bucket=settings.reports_bucket).get("Uploads", []) == []
    assert report_objects(tenant.tenant_id) == []


def test_a_large_file_is_uploaded_in_parts(api: Api, tenant: TenantKeys, seeded: dict[str, Any],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.s3 import models as s3_models

    monkeypatch.setattr(store, "PART_SIZE", 100)
    monkeypatch.setattr(s3_models, "S3_UPLOAD_PART_MIN_SIZE", 0)
    report = request_report(api, tenant.admin)
    build_all()
    ready = api.get(f"/v1/reports/{report['report_id']}", tenant.admin).data
    raw = store.read_file(tenant.tenant_id, report["report_id"], "csv")
    assert len(raw) == ready["size_bytes"] and [int(r["points"]) for r in parse_csv(raw)] == [10, 15, -10, 250]
    s3 = boto3.client("s3", region_name=settings.region)
    head = s3.head_object(Bucket=settings.reports_bucket, Key=f"reports/{tenant.tenant_id}/{report['report_id']}.csv")
    parts = int(head["ETag"].strip('"').rsplit("-", 1)[1])
    assert parts >= 3 and parts <= len(raw) // 100, "a multipart upload of parts of at least PART_SIZE bytes"
    assert head["ServerSideEncryption"] == "AES256"


def test_the_same_message_twice_makes_one_file(api: Api, tenant: TenantKeys, seeded: dict[str, Any],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    report = request_report(api, tenant.admin)
    bodies = take_messages()
    assert run_worker(bodies) == {"batchItemFailures": []}
    first = store.get(tenant.tenant_id, report["report_id"])
    puts: list[str] = []
    monkeypatch.setattr(store.Upload, "complete", lambda self: puts.append(self.key))
    assert run_worker(bodies + bodies) == {"batchItemFailures": []}
    assert puts == [], "a ready report is not rebuilt"
    assert store.get(tenant.tenant_id, report["report_id"]) == first, "the record is untouched"
    assert report_objects(tenant.tenant_id) == [f"reports/{tenant.tenant_id}/{report['report_id']}.csv"]


def test_a_report_left_running_is_reported_timed_out(api: Api, tenant: TenantKeys, clock: Any) -> None:
    report = request_report(api, tenant.admin)
    rid = report["report_id"]
    assert service._finish(tenant.tenant_id, rid, {"status": "running", "started_at": clock.now().isoformat()})
    clock.advance(minutes=10)
    assert api.get(f"/v1/reports/{rid}", tenant.admin).data["status"] == "running"
    run_worker(take_messages())
    assert api.get(f"/v1/reports/{rid}", tenant.admin).data["status"] == "running", "another worker's copy"
    clock.advance(minutes=8)
    late = api.get(f"/v1/reports/{rid}", tenant.admin).data
    assert late["status"] == "failed" and late["failure"]["code"] == "timed_out"
    run_worker([json.dumps({"tenant_id": tenant.tenant_id, "report_id": rid})])
    doc = store.get(tenant.tenant_id, rid).doc
    assert doc.status == "failed" and doc.failure["code"] == "timed_out", "the redelivery records it"


def test_old_reports_show_expired_and_queued_ones_are_not_left_waiting(api: Api, tenant: TenantKeys,
                                                                       seeded: dict[str, Any], clock: Any) -> None:
    ready = request_report(api, tenant.admin)
    build_all()
    lost = request_report(api, tenant.admin)
    take_messages()  # the message is lost
    clock.advance(hours=7)
    late = api.get(f"/v1/reports/{lost['report_id']}", tenant.admin).data
    assert late["status"] == "failed" and late["failure"]["code"] == "not_started"
    clock.advance(days=7)
    gone = api.get(f"/v1/reports/{ready['report_id']}", tenant.admin).data
    assert gone["status"] == "expired" and gone["download_url"] is None and gone["rows"] == 4


def test_the_record_expires_by_ttl_and_holds_no_personal_data(api: Api, tenant: TenantKeys,
                                                              seeded: dict[str, Any]) -> None:
    from chalicelib.storage.tables import LoyaltyRecord

    report = request_report(api, tenant.admin)
    build_all()
    rec = LoyaltyRecord.get(store.list_pk(tenant.tenant_id), report["report_id"])
    created = datetime.fromisoformat(report["created_at"])
    assert rec.expires_at_epoch == int(created.timestamp()) + 30 * 86400
    assert "+7916" not in json.dumps(rec.doc.as_dict()) and "Anna" not in json.dumps(rec.doc.as_dict())
    assert created == datetime(2026, 11, 5, 11, 1, tzinfo=UTC)


# --- the members export ---------------------------------------------------------------

ANNA = {"phone": "+79161234567", "first_name": "Анна", "last_name": "Иванова", "email": "anna@example.com",
        "birth_date": "1990-05-17", "tags": ["vip"], "acquisition": {"channel": "store", "source": "flyer"},
        "consents": [{"kind": "sms", "granted": True, "source": "pos", "text_version": "v1"},
                     {"kind": "email", "granted": False, "source": "pos", "text_version": "v1"}]}
MEMBERS = {"type": "members", "program_id": "main", "from": "2026-11-01", "to": "2026-11-10"}


def issue(api: Api, tenant: TenantKeys, program: str, customer: dict[str, Any] | None) -> dict[str, Any]:
    body: dict[str, Any] = {"program_id": program}
    if customer is not None:
        body["customer"] = customer
    r = api.post("/v1/cards", tenant.pos, body)
    assert r.status_code == 201, r.data
    return r.data


def test_members_export_has_personal_data_for_the_admin_only(api: Api, tenant: TenantKeys, clock: Any) -> None:
    assert api.post("/v1/programs", tenant.admin, {"id": "other", "name": "Other",
                                                   "earning": {"rate_bps": 100}}).status_code == 201
    anna = issue(api, tenant, "main", ANNA)
    assert buy(api, tenant.pos, "m1", anna["number"], 20_000).status_code == 200
    assert buy(api, tenant.pos, "m2", anna["number"], 30_000).status_code == 200
    issue(api, tenant, "other", {"phone": "+79160000001", "first_name": "Boris"})           # another program
    vera = issue(api, tenant, "main", {"phone": "+79160000002", "first_name": "Vera"})
    r = api.post(f"/v1/customers/{vera['customer_id']}/erase", tenant.admin, {"confirm": "erase", "reason": "asked"})
    assert r.status_code == 200, r.data
    issue(api, tenant, "main", None)                                                         # anonymous card
    clock.advance(days=10)
    issue(api, tenant, "main", {"phone": "+79160000003", "first_name": "Late"})              # after the period

    refused = api.post(f"/v1/agency/tenants/{tenant.tenant_id}/reports", tenant.agency, MEMBERS)
    assert refused.status_code == 403 and "tenant_admin" in refused.data["error"]["message"]
    report = request_report(api, tenant.admin, MEMBERS)
    build_all()
    ready = api.get(f"/v1/reports/{report['report_id']}", tenant.admin).data
    assert ready["status"] == "ready" and ready["rows"] == 1
    agency_view = api.get(f"/v1/agency/tenants/{tenant.tenant_id}/reports/{report['report_id']}", tenant.agency)
    assert agency_view.data["status"] == "ready" and agency_view.data["download_url"] is None, "no link for an agency"
    listed = api.get(f"/v1/agency/tenants/{tenant.tenant_id}/reports", tenant.agency).data["items"]
    assert [r["download_url"] for r in listed] == [None]
    (row,) = parse_csv(download(ready["download_url"])[0])
    assert row["customer_id"] == anna["customer_id"] and row["registered_at"].startswith("2026-11-02T10:00:00")
    assert (row["phone"], row["email"], row["first_name"], row["last_name"], row["birth_date"]) == (
        "+79161234567", "anna@example.com", "Анна", "Иванова", "1990-05-17")
    assert (row["tags"], row["acquisition_channel"], row["acquisition_source"]) == ("vip", "store", "flyer")
    assert (row["consent_sms"], row["consent_email"], row["consent_personal_data"]) == ("yes", "no", "")
    assert (row["purchase_count"], row["spend"], row["cards"]) == ("2", "50000", anna["number"])


def test_members_export_respects_minimal_data_mode(api: Api, tenant: TenantKeys, clock: Any) -> None:
    anna = issue(api, tenant, "main", ANNA)
    r = api.patch(f"/v1/agency/tenants/{tenant.tenant_id}", tenant.agency,
                  {"privacy": {"disabled_fields": ["birth_date", "last_name"]}})
    assert r.status_code == 200, r.data
    report = request_report(api, tenant.admin, MEMBERS)
    build_all()
    ready = api.get(f"/v1/reports/{report['report_id']}", tenant.admin).data
    (row,) = parse_csv(download(ready["download_url"])[0])
    assert row["customer_id"] == anna["customer_id"] and row["first_name"] == "Анна"
    assert row["birth_date"] == "" and row["last_name"] == "", "switched-off fields are not exported"


# --- program summary and tier distribution ------------------------------------------------

TIERS = {"metric": "spend", "levels": [{"id": "base", "name": "Base", "threshold": 0},
                                       {"id": "silver", "name": "Silver", "threshold": 150_000}]}
MAIN_RULES = {"name": "Main program", "earning": {"rate_bps": 500},
              "redemption": {"point_value": 100, "max_share_bps": 3000}}
SUMMARY = {"type": "program_summary", "program_id": "main", "from": "2026-11-02", "to": "2026-12-05"}


@pytest.fixture
def story(api: Api, tenant: TenantKeys, clock: Any) -> dict[str, Any]:
    """Two members (store, site), one erased, one anonymous card; purchases, a redemption, a refund, expiry."""
    from chalicelib.services.program import sweeps
    from chalicelib.storage import loyalty

    r = api.put("/v1/programs/main", tenant.admin, {**MAIN_RULES, "expiry_days": 30, "pending_days": 0,
                                                    "tiers": TIERS})
    assert r.status_code == 200, r.data
    anna = issue(api, tenant, "main", {"phone": "+79161234567", "acquisition": {"channel": "store"}})
    boris = issue(api, tenant, "main", {"phone": "+79160000001", "acquisition": {"channel": "site"}})
    vera = issue(api, tenant, "main", {"phone": "+79160000002", "acquisition": {"channel": "app"}})
    assert api.post(f"/v1/customers/{vera['customer_id']}/erase", tenant.admin,
                    {"confirm": "erase", "reason": "asked"}).status_code == 200
    anonymous = issue(api, tenant, "main", None)
    assert buy(api, tenant.pos, "s1", anna["number"], 200_000).status_code == 200       # Nov 2
    assert buy(api, tenant.pos, "s2", boris["number"], 50_000).status_code == 200
    clock.advance(days=1)                                                                 # Nov 3
    redeemed = buy(api, tenant.pos, "s3", anna["number"], 40_000, redeem=20)
    assert redeemed.status_code == 200 and redeemed.data["points_redeemed"] == 20, redeemed.data
    assert buy(api, tenant.pos, "s4", anonymous["number"], 10_000).status_code == 200
    clock.advance(days=1)                                                                 # Nov 4
    assert api.post("/v1/refunds", tenant.pos, {"refund_id": "sf2", "receipt_id": "s2"}).status_code == 200
    clock.advance(days=30)                                                                # Dec 4: all expired
    assert sweeps.run_scope(tenant.tenant_id, loyalty.now().date()).done
    return {"anna": anna, "boris": boris, "anonymous": anonymous}


def _expected_points(api: Api, tenant: TenantKeys, cards: list[str]) -> dict[str, dict[str, int]]:
    """Per day, from the cards' own ledgers: earned and redeemed (gross), reversed, returned, expired."""
    out: dict[str, dict[str, int]] = {}
    for card in cards:
        for e in card_ledger(api, tenant, card):
            day = out.setdefault(e["at"][:10], {"earned": 0, "reversed": 0, "redeemed": 0, "returned": 0,
                                                "expired": 0})
            if e["type"] in ("accrual", "bonus"):
                day["earned"] += e["points"]
            elif e["type"] == "reversal":
                day["reversed"] -= e["points"]
            elif e["type"] == "redemption":
                day["redeemed"] -= e["points"]
            elif e["type"] == "return":
                day["returned"] += e["points"]
            elif e["type"] == "expiry":
                day["expired"] -= e["points"]
    return out


def test_program_summary_day_by_day_and_in_total(api: Api, tenant: TenantKeys, story: dict[str, Any]) -> None:
    report = request_report(api, tenant.admin, SUMMARY)
    build_all()
    ready = api.get(f"/v1/reports/{report['report_id']}", tenant.admin).data
    assert ready["status"] == "ready" and ready["rows"] == 34, "33 days and the total"
    rows = parse_csv(download(ready["download_url"])[0])
    by_day = {r["day"]: r for r in rows}
    total = rows[-1]
    assert total["day"] == "total" and rows[0]["day"] == "2026-11-02" and rows[-2]["day"] == "2026-12-04"

    def ints(row: dict[str, str], *names: str) -> tuple[int | str, ...]:
        return tuple(int(row[n]) if row[n] != "" else "" for n in names)

    assert ints(by_day["2026-11-02"], "members", "new_members", "new_store", "new_site", "new_app") == (2, 2, 1, 1, 0)
    assert ints(by_day["2026-11-02"], "active_members", "receipts", "revenue", "average_receipt") == (
        2, 2, 250_000, 125_000)
    assert ints(by_day["2026-11-03"], "members", "new_members", "active_members", "receipts", "revenue",
                "average_receipt") == (2, 0, 2, 2, 50_000, 25_000)
    assert ints(by_day["2026-11-04"], "active_members", "receipts", "revenue", "average_receipt") == (0, 0, 0, "")
    assert ints(total, "members", "new_members", "new_store", "new_site", "active_members", "receipts", "revenue",
                "average_receipt") == (2, 2, 1, 1, 3, 4, 300_000, 75_000)

    anna, boris, anonymous = (story[k]["number"] for k in ("anna", "boris", "anonymous"))
    expected = _expected_points(api, tenant, [anna, boris, anonymous])
    names = ("points_earned", "points_reversed", "points_redeemed", "points_returned", "points_expired")
    for day, figures in expected.items():
        assert ints(by_day[day], *names) == (figures["earned"], figures["reversed"], figures["redeemed"],
                                             figures["returned"], figures["expired"]), day
    earned = sum(f["earned"] for f in expected.values())
    expired = sum(f["expired"] for f in expected.values())
    assert earned > 0 and expired > 0 and sum(f["redeemed"] for f in expected.values()) == 20
    assert ints(by_day["2026-11-04"], "points_earned", "points_reversed") == (0, 25), "boris's s2, refunded"
    assert ints(total, *names) == (earned, 25, 20, 0, expired)
    assert int(total["breakage_bps"]) == expired * 10_000 // (earned - 25)
    members_points = sum(api.get(f"/v1/cards/{n}", tenant.pos).data["balance"]
                         + api.get(f"/v1/cards/{n}", tenant.pos).data["pending"] for n in (anna, boris))
    assert ints(total, "liability_points", "liability_money") == (members_points, members_points * 100)
    assert by_day["2026-11-10"]["points_earned"] == "0" and by_day["2026-11-10"]["breakage_bps"] == ""


def test_program_summary_and_dashboard_give_the_same_figures_for_a_day_with_refunds(
        api: Api, tenant: TenantKeys, clock: Any) -> None:
    r = api.put("/v1/programs/main", tenant.admin, {**MAIN_RULES, "pending_days": 0})
    assert r.status_code == 200, r.data
    anna = issue(api, tenant, "main", {"phone": "+79161234567"})["number"]
    assert buy(api, tenant.pos, "d1", anna, 200_000).data["points_earned"] == 100
    assert buy(api, tenant.pos, "d2", anna, 50_000).data["points_earned"] == 25
    d3 = buy(api, tenant.pos, "d3", anna, 40_000, redeem=20).data                   # 380.00 paid: 19 points
    assert (d3["points_earned"], d3["points_redeemed"]) == (19, 20)
    full = api.post("/v1/refunds", tenant.pos, {"refund_id": "df2", "receipt_id": "d2"}).data
    half = api.post("/v1/refunds", tenant.pos, {"refund_id": "df3", "receipt_id": "d3", "amount": 20_000}).data
    assert (full["points_reversed"], half["points_reversed"], half["points_returned"]) == (25, 9, 10)

    report = request_report(api, tenant.admin, {**SUMMARY, "from": "2026-11-02", "to": "2026-11-03"})
    build_all()
    ready = api.get(f"/v1/reports/{report['report_id']}", tenant.admin).data
    day, total = parse_csv(download(ready["download_url"])[0])
    today = api.get("/v1/dashboard?program_id=main", tenant.admin).data["today"]
    shared = ("receipts", "revenue", "points_earned", "points_reversed", "points_redeemed")
    assert {name: int(day[name]) for name in shared} == {name: today[name] for name in shared} == {
        "receipts": 3, "revenue": 290_000, "points_earned": 144, "points_reversed": 34, "points_redeemed": 20}
    assert int(day["points_returned"]) == 10
    assert {name: total[name] for name in (*shared, "points_returned")} == {
        name: day[name] for name in (*shared, "points_returned")}


def _xlsx_parts(raw: bytes) -> dict[str, str]:
    import zipfile

    with zipfile.ZipFile(io.BytesIO(raw)) as z:
        return {name: z.read(name).decode("utf-8") for name in z.namelist() if name.endswith(".xml")}


def test_program_summary_as_xlsx_has_native_charts(api: Api, tenant: TenantKeys, story: dict[str, Any]) -> None:
    csv_report = request_report(api, tenant.admin, SUMMARY)
    report = request_report(api, tenant.admin, {**SUMMARY, "format": "xlsx"})
    build_all()
    ready = api.get(f"/v1/reports/{report['report_id']}", tenant.admin).data
    assert ready["status"] == "ready" and ready["rows"] == 34
    raw, headers = download(ready["download_url"])
    assert headers["Content-Disposition"].endswith('program_summary-main-2026-11-02-2026-12-04.xlsx"')
    parts = _xlsx_parts(raw)
    charts = sorted(name for name in parts if name.startswith("xl/charts/chart"))
    assert len(charts) == 2
    assert "<c:lineChart>" in parts[charts[0]] and "<c:barChart>" in parts[charts[1]]
    assert "program_summary!$B$2:$B$34" in parts[charts[0]], "members over the 33 days, not the total row"
    assert "<c:barDir val=\"col\"/>" in parts[charts[1]]
    sheet = parts["xl/worksheets/sheet1.xml"]
    assert sheet.count("<row ") == 35, "header, 33 days, total"
    rows = parse_csv(download(api.get(f"/v1/reports/{csv_report['report_id']}", tenant.admin
                                      ).data["download_url"])[0])
    revenue_col = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[list(rows[0]).index("revenue")]
    assert f'<c r="{revenue_col}35" s="0"><v>300000</v></c>' in sheet or \
        f'<c r="{revenue_col}35"><v>300000</v></c>' in sheet, "numbers are numbers in the sheet"


def test_tier_distribution_now_and_moves(api: Api, tenant: TenantKeys, story: dict[str, Any]) -> None:
    report = request_report(api, tenant.admin, {**SUMMARY, "type": "tier_distribution"})
    xlsx = request_report(api, tenant.admin, {**SUMMARY, "type": "tier_distribution", "format": "xlsx"})
    build_all()
    ready = api.get(f"/v1/reports/{report['report_id']}", tenant.admin).data
    rows = parse_csv(download(ready["download_url"])[0])
    now = {r["tier"]: int(r["cards"]) for r in rows if r["section"] == "now"}
    moves = {(r["from_tier"], r["to_tier"]): int(r["cards"]) for r in rows if r["section"] == "movement"}
    expected_now: dict[str, int] = {}
    expected_moves: dict[tuple[str, str], int] = {}
    for key in ("anna", "boris", "anonymous"):
        number = story[key]["number"]
        if key != "anonymous":
            tier = api.get(f"/v1/cards/{number}", tenant.pos).data["tier"] or "none"
            expected_now[tier] = expected_now.get(tier, 0) + 1
        for e in card_ledger(api, tenant, number):
            if e["type"] == "tier":
                move = (e["previous_tier"] or "none", e["tier"] or "none")
                expected_moves[move] = expected_moves.get(move, 0) + 1
    assert now == expected_now and now.get("silver") == 1, "anna spent 240,000: silver"
    assert moves == expected_moves and expected_moves, "the upgrade is a move of the period"
    parts = _xlsx_parts(download(api.get(f"/v1/reports/{xlsx['report_id']}", tenant.admin).data["download_url"])[0])
    (chart,) = [v for k, v in parts.items() if k.startswith("xl/charts/chart")]
    assert "<c:pieChart>" in chart and f"tier_distribution!$E$2:$E${1 + len(now)}" in chart


def test_a_queue_outage_is_a_503_and_the_report_is_not_left_queued(api: Api, tenant: TenantKeys, clock: Any,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.storage import queues

    def down(*args: Any, **kwargs: Any) -> str:
        raise RuntimeError("sqs down")

    monkeypatch.setattr(queues, "send", down)
    r = api.post("/v1/reports", tenant.admin, PERIOD)
    assert r.status_code == 503 and r.data["error"]["code"] == "queue_unavailable"
    assert r.headers["Retry-After"] == "5"
    (listed,) = api.get("/v1/reports", tenant.admin).data["items"]
    assert listed["status"] == "failed" and listed["failure"]["code"] == "not_queued"
