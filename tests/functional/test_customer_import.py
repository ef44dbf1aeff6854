"""Customer imports from CSV: inline and queued, exact counts, merging by phone, the result file, access."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import boto3
import pytest

from chalicelib.services.customers import imports as customer_import
from chalicelib.settings import settings
from chalicelib.storage import imports as import_store
from tests.functional.conftest import Api, TenantKeys, tenant_body
from tests.functional.jobqueue import drain, receive_all, run_worker

HEADER = "phone;first_name;last_name;email;gender;birth_date;tags;consent_sms"
GOOD = [
    "+79161234501;Anna;;anna@example.com;f;;;yes",
    "89161234502;Boris;Petrov;;m;1985-03-04;;",
    "8 (916) 123-45-01;;Ivanova;;;01.02.1990;vip|coffee;",  # Anna again: fills her last name and birth date
    "+7 916 123 45 03;Vera;;;ж;;;нет",
    "79161234504;Gleb;;;;;vip;1",
    "9161234502;Борис;;boris@example.com;;;;",  # Boris again, without the country code: fills his e-mail
    "+79161234505;Dina;;;female;;;",
]
BAD = [
    ("12345;Eve;;;;;;", "phone: not a valid phone number"),
    ("+79161234506;Fedor;;;;31.02.1990;;", "birth_date: expected a date as YYYY-MM-DD or DD.MM.YYYY"),
    ("+79161234507;Galina;;;x;;;", "gender: expected f, m, female, male, ж or м"),
    ("+79161234508;Ivan;;;;;;maybe", "consent_sms: expected yes/no, 1/0 or да/нет"),
]


def _file(rows: list[str]) -> str:
    return "\r\n".join([HEADER, *rows]) + "\r\n"


MIXED = _file([GOOD[0], GOOD[1], BAD[0][0], GOOD[2], GOOD[3], BAD[1][0], GOOD[4], BAD[2][0], GOOD[5], BAD[3][0],
               GOOD[6]])
BAD_LINES = {4: BAD[0], 7: BAD[1], 9: BAD[2], 11: BAD[3]}


def _counts(status: dict[str, Any]) -> tuple[int, int, int, int]:
    return status["rows"], status["created"], status["updated"], status["rejected"]


def _result_rows(tenant_id: str, import_id: str) -> list[list[str]]:
    raw = import_store.read_result(tenant_id, import_id)
    assert raw.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline=""), delimiter=";"))


def _customer(api: Api, key: str, phone: str) -> dict[str, Any]:
    r = api.get(f"/v1/customers?phone={phone}", key)
    assert r.status_code == 200, r.data
    return r.data


def _upload(tenant_id: str, import_id: str, body: bytes) -> None:
    """What the client's PUT to the presigned URL does."""
    boto3.client("s3", region_name=settings.region).put_object(
        Bucket=settings.reports_bucket, Key=import_store.upload_key(tenant_id, import_id), Body=body)


def _created(api: Api, key: str, **body: Any) -> dict[str, Any]:
    r = api.post("/v1/customer-imports", key, {"filename": "base.csv", **body})
    assert r.status_code == 201, r.data
    return r.data


# --- inline --------------------------------------------------------------------------------

def test_inline_import_counts_merges_by_phone_and_lists_bad_rows(api: Api, tenant: TenantKeys, clock: Any) -> None:
    r = api.post("/v1/customer-imports/inline", tenant.admin, {"csv": MIXED, "filename": "shop.csv"})
    assert r.status_code == 201, r.data
    status = r.data
    assert status["status"] == "done" and status["error"] is None
    assert _counts(status) == (11, 5, 2, 4)
    assert status["bytes_done"] == status["bytes_total"] == len(MIXED.encode())
    assert status["result_url"].startswith("https://") and "result.csv" in status["result_url"]

    anna = _customer(api, tenant.admin, "+79161234501")
    assert (anna["first_name"], anna["last_name"], anna["email"], anna["birth_date"], anna["gender"]) == (
        "Anna", "Ivanova", "anna@example.com", "1990-02-01", "female")
    assert [(c["kind"], c["granted"], c["source"]) for c in anna["consents"]] == [
        ("sms", True, f"import:{status['import_id']}")]
    assert anna["acquisition"] == {"channel": "import", "source": status["import_id"]}
    boris = _customer(api, tenant.admin, "8 916 123-45-02")
    assert (boris["first_name"], boris["last_name"], boris["email"], boris["birth_date"]) == (
        "Boris", "Petrov", "boris@example.com", "1985-03-04")
    assert _customer(api, tenant.admin, "+79161234504")["tags"] == ["vip"]
    assert api.get("/v1/customers?phone=%2B79161234506", tenant.admin).status_code == 404

    rows = _result_rows(tenant.tenant_id, status["import_id"])
    assert rows[0] == ["line", "row", "reason"]
    assert {int(line): (row, reason) for line, row, reason in rows[1:]} == BAD_LINES

    listed = api.get("/v1/customer-imports", tenant.admin)
    assert listed.status_code == 200
    assert [(i["import_id"], i["filename"]) for i in listed.data["items"]] == [(status["import_id"], "shop.csv")]


def test_a_file_without_rejections_has_no_result_file(api: Api, tenant: TenantKeys) -> None:
    r = api.post("/v1/customer-imports/inline", tenant.admin, {"csv": _file(GOOD[:2])})
    assert r.status_code == 201, r.data
    assert _counts(r.data) == (2, 2, 0, 0) and r.data["result_url"] is None


def test_unknown_columns_refuse_the_import_unless_mapped(api: Api, tenant: TenantKeys) -> None:
    text = "Телефон;Имя;Любимый напиток;Комментарий\n+79161234501;Анна;латте;\n"
    r = api.post("/v1/customer-imports/inline", tenant.admin, {"csv": text})
    assert r.status_code == 422 and r.data["error"]["code"] == "unknown_columns"
    assert [d["field"] for d in r.data["error"]["details"]] == ["columns.Любимый напиток", "columns.Комментарий"]
    failed = api.get("/v1/customer-imports", tenant.admin).data["items"][0]
    assert failed["status"] == "failed" and "Любимый напиток, Комментарий" in failed["error"]
    assert failed["rows"] == 0

    mapped = api.post("/v1/customer-imports/inline", tenant.admin,
                      {"csv": text, "columns": {"любимый напиток": "skip", "КОММЕНТАРИЙ": "skip"}})
    assert mapped.status_code == 201, mapped.data
    assert _counts(mapped.data) == (1, 1, 0, 0)
    assert _customer(api, tenant.admin, "+79161234501")["first_name"] == "Анна"


def test_a_disabled_field_with_a_value_rejects_the_row(api: Api, agency_key: str) -> None:
    r = api.post("/v1/agency/tenants", agency_key,
                 tenant_body("slim-shop", privacy={"disabled_fields": ["birth_date", "gender"]}))
    assert r.status_code == 201, r.data
    admin = {k["role"]: k["secret"] for k in r.data["keys"]}["tenant_admin"]
    r = api.post("/v1/customer-imports/inline", admin, {"csv": _file([GOOD[1], GOOD[6], GOOD[0].replace(";f;", ";;")])})
    assert r.status_code == 201, r.data
    assert _counts(r.data) == (3, 1, 0, 2)
    rows = _result_rows("slim-shop", r.data["import_id"])
    assert [(line, reason) for line, _, reason in rows[1:]] == [
        ("2", "birth_date: switched off by the tenant (minimal-data mode); "
              "gender: switched off by the tenant (minimal-data mode)"),
        ("3", "gender: switched off by the tenant (minimal-data mode)")]


def test_with_a_program_each_customer_gets_exactly_one_card(api: Api, tenant: TenantKeys) -> None:
    existing = api.post("/v1/cards", tenant.pos, {"program_id": "main", "customer": {"phone": "+79161234505"}})
    assert existing.status_code == 201, existing.data
    r = api.post("/v1/customer-imports/inline", tenant.admin, {"csv": MIXED, "program_id": "main"})
    assert r.status_code == 201, r.data
    assert _counts(r.data) == (11, 4, 3, 4) and r.data["cards_issued"] == 4
    for phone in ("+79161234501", "+79161234502", "+79161234503", "+79161234504", "+79161234505"):
        assert len(_customer(api, tenant.admin, phone)["cards"]) == 1, phone
    assert _customer(api, tenant.admin, "+79161234505")["cards"] == [existing.data["number"]]
    again = api.post("/v1/customer-imports/inline", tenant.admin, {"csv": MIXED, "program_id": "main"})
    assert _counts(again.data) == (11, 0, 7, 4) and again.data["cards_issued"] == 0

    unknown = api.post("/v1/customer-imports", tenant.admin, {"filename": "x.csv", "program_id": "nope"})
    assert unknown.status_code == 422 and unknown.data["error"]["code"] == "unknown_program"


def test_rows_past_the_limit_are_not_imported_and_the_import_says_so(api: Api, tenant: TenantKeys,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(customer_import.rules, "MAX_ROWS", 5)
    r = api.post("/v1/customer-imports/inline", tenant.admin, {"csv": MIXED})
    assert r.status_code == 201, r.data
    assert r.data["status"] == "failed" and _counts(r.data) == (5, 3, 1, 1)
    assert r.data["error"] == "The file has more than 5 rows: the rows from line 7 on were not imported."
    assert r.data["bytes_done"] == len(_file([GOOD[0], GOOD[1], BAD[0][0], GOOD[2], GOOD[3]]).encode())
    assert [int(row[0]) for row in _result_rows(tenant.tenant_id, r.data["import_id"])[1:]] == [4]


# --- uploaded and queued --------------------------------------------------------------------

def test_upload_start_and_queued_import_resumes_in_chunks_with_exact_counts(
        api: Api, tenant: TenantKeys, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(customer_import, "BUDGET_SECONDS", 0.0)  # one chunk per message
    monkeypatch.setattr(customer_import, "CHUNK_ROWS", 3)
    created = _created(api, tenant.admin)
    import_id = created["import_id"]
    assert created["status"] == "awaiting_upload"
    assert created["upload_key"] == f"imports/{tenant.tenant_id}/{import_id}/upload.csv"
    assert "X-Amz-Signature=" in created["upload_url"] and "upload.csv" in created["upload_url"]

    early = api.post(f"/v1/customer-imports/{import_id}/start", tenant.admin)
    assert early.status_code == 409 and early.data["error"]["code"] == "upload_missing"
    body = MIXED.encode("cp1251")
    _upload(tenant.tenant_id, import_id, body)
    started = api.post(f"/v1/customer-imports/{import_id}/start", tenant.admin)
    assert started.status_code == 202, started.data
    assert started.data["status"] == "queued" and started.data["bytes_total"] == len(body)

    seen = drain()
    assert len(seen) == 4  # 11 rows in chunks of 3: the start's message, then three re-enqueued by the worker
    assert [json.loads(m)["job"] for m in seen] == [customer_import.IMPORT_JOB] * 4
    status = api.get(f"/v1/customer-imports/{import_id}", tenant.admin).data
    assert status["status"] == "done" and _counts(status) == (11, 5, 2, 4)
    assert status["bytes_done"] == status["bytes_total"] == len(body)
    rows = _result_rows(tenant.tenant_id, import_id)
    assert {int(line): (row, reason) for line, row, reason in rows[1:]} == BAD_LINES
    again = api.post(f"/v1/customer-imports/{import_id}/start", tenant.admin)
    assert again.status_code == 409 and again.data["error"]["code"] == "import_finished"


def test_a_redelivered_message_does_not_double_count(api: Api, tenant: TenantKeys,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(customer_import, "BUDGET_SECONDS", 0.0)
    monkeypatch.setattr(customer_import, "CHUNK_ROWS", 4)
    import_id = _created(api, tenant.admin)["import_id"]
    _upload(tenant.tenant_id, import_id, MIXED.encode())
    assert api.post(f"/v1/customer-imports/{import_id}/start", tenant.admin).status_code == 202
    first = receive_all()
    assert len(first) == 1
    assert run_worker(first) == {"batchItemFailures": []}
    assert run_worker(first) == {"batchItemFailures": []}  # SQS delivered it twice
    drain()
    status = api.get(f"/v1/customer-imports/{import_id}", tenant.admin).data
    assert status["status"] == "done" and _counts(status) == (11, 5, 2, 4)
    assert len(_result_rows(tenant.tenant_id, import_id)) == 1 + 4


def test_a_chunk_rerun_after_a_crash_counts_its_customers_once(api: Api, tenant: TenantKeys,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The crashed run created customers but never committed: the rerun still counts them as created."""
    import_id = _created(api, tenant.admin)["import_id"]
    _upload(tenant.tenant_id, import_id, MIXED.encode())
    assert api.post(f"/v1/customer-imports/{import_id}/start", tenant.admin).status_code == 202
    real_save = import_store.save
    crashed = []

    def crash_once(*args: Any) -> bool:
        if not crashed:
            crashed.append(True)
            raise RuntimeError("lambda timed out")
        return real_save(*args)

    monkeypatch.setattr(import_store, "save", crash_once)
    message = receive_all()
    assert run_worker(message) == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert run_worker(message) == {"batchItemFailures": []}
    status = api.get(f"/v1/customer-imports/{import_id}", tenant.admin).data
    assert status["status"] == "done" and _counts(status) == (11, 5, 2, 4)


# --- access ---------------------------------------------------------------------------------

def test_another_tenant_cannot_see_or_start_an_import(api: Api, tenant: TenantKeys, other_tenant: TenantKeys) -> None:
    import_id = _created(api, tenant.admin)["import_id"]
    _upload(tenant.tenant_id, import_id, MIXED.encode())
    for r in (api.get(f"/v1/customer-imports/{import_id}", other_tenant.admin),
              api.post(f"/v1/customer-imports/{import_id}/start", other_tenant.admin)):
        assert r.status_code == 404 and r.data["error"]["code"] == "not_found"
    assert api.get("/v1/customer-imports", other_tenant.admin).data["items"] == []
    assert api.get(f"/v1/customer-imports/{import_id}", tenant.admin).data["status"] == "awaiting_upload"
    assert api.get(f"/v1/customer-imports/{import_id}", tenant.pos).status_code == 403
    assert api.get("/v1/customer-imports/not-an-id", tenant.admin).status_code == 404
