"""The jobs worker: tenant purge after offboarding, per-message failures, malformed messages."""

from __future__ import annotations

import base64
import json

import boto3

from app import app
from chalicelib.settings import settings
from chalicelib.storage.tables import ApiKeyRecord, AuditRecord, DirectoryRecord, LoyaltyRecord
from tests.functional.conftest import Api, TenantKeys
from tests.unit.test_email_html import png


def _receive_all() -> list[dict]:
    sqs = boto3.client("sqs", region_name=settings.region)
    url = sqs.get_queue_url(QueueName=settings.jobs_queue)["QueueUrl"]
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    for m in messages:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return messages


def _sqs_event(bodies: list[str]) -> dict:
    return {"Records": [{"messageId": f"m{i}", "receiptHandle": f"h{i}", "body": body, "attributes": {},
                         "messageAttributes": {}, "eventSource": "aws:sqs",
                         "eventSourceARN": f"arn:aws:sqs:eu-central-1:123456789012:{settings.jobs_queue}",
                         "awsRegion": "eu-central-1"} for i, body in enumerate(bodies)]}


def _run_worker_until_queue_empty(limit: int = 50) -> int:
    runs = 0
    while runs < limit:
        messages = _receive_all()
        if not messages:
            return runs
        result = app.handler_map["jobs_worker"](_sqs_event([m["Body"] for m in messages]), None)
        assert result == {"batchItemFailures": []}
        runs += 1
    raise AssertionError("queue never drained")


def test_deleting_a_tenant_stops_keys_and_purges_all_its_rows(
    api: Api, tenant: TenantKeys, other_tenant: TenantKeys, monkeypatch
) -> None:
    from chalicelib.services.tenancy import purge

    for i in range(12):
        api.post("/v1/stores", tenant.admin, {"id": f"s{i:02d}", "name": f"Store {i}"})
    for who in (tenant, other_tenant):
        for i in range(3):
            card = api.post("/v1/cards", who.pos, {"program_id": "main", "customer": {"phone": f"+7916000000{i}"}})
            api.post("/v1/purchases", who.pos, {"receipt_id": f"r{i}", "card_number": card.data["number"],
                                                "store_id": "msk-01", "total": 10_000,
                                                "items": [{"sku": "a", "amount": 10_000}]})
    logo = base64.b64encode(png(2, 2)).decode()
    for who in (tenant, other_tenant):
        for name in ("logo.png", "banner.png"):
            r = api.post("/v1/assets", who.admin, {"filename": name, "data_base64": logo})
            assert r.status_code == 201, r.data
    assert len(_files(tenant.tenant_id)) == len(_files(other_tenant.tenant_id)) == 2
    theirs_before = _loyalty_rows(other_tenant.tenant_id)
    their_people = _people_rows(other_tenant.tenant_id)
    def same_shape(rows: list[tuple[str, str]]) -> int:
        """Rows minus the dashboard counters, whose shard items depend on random card and customer ids."""
        return len([row for row in rows if "#dash#" not in row[0]])

    assert same_shape(_loyalty_rows(tenant.tenant_id)) == same_shape(theirs_before) > 15
    assert any("#dash#" in pk for pk, _ in _loyalty_rows(tenant.tenant_id))
    assert len(_people_rows(tenant.tenant_id)) == len(their_people) == 6, "3 profiles and 3 phone index items"
    monkeypatch.setattr(purge, "PAGE", 5)
    r = api.delete(f"/v1/agency/tenants/{tenant.tenant_id}?confirm={tenant.tenant_id}", tenant.agency)
    assert r.status_code == 202 and r.data["status"] == "deleting"
    refused = api.get("/v1/whoami", tenant.admin)
    assert refused.status_code == 401 and refused.data["error"]["code"] == "tenant_suspended"
    assert api.patch(f"/v1/agency/tenants/{tenant.tenant_id}", tenant.agency, {"name": "x"}).status_code == 409

    runs = _run_worker_until_queue_empty()
    assert runs > 2, "a purge this size takes several resumable pages"
    assert list(DirectoryRecord.query(tenant.tenant_id)) == []
    assert list(ApiKeyRecord.query(tenant.tenant_id)) == []
    assert list(AuditRecord.query(tenant.tenant_id)) == []
    assert _loyalty_rows(tenant.tenant_id) == [], "cards, customers, receipts and ledgers are personal data"
    assert _loyalty_rows(other_tenant.tenant_id) == theirs_before
    assert _people_rows(tenant.tenant_id) == [], "the personal-data table too"
    assert _people_rows(other_tenant.tenant_id) == their_people
    assert _files(tenant.tenant_id) == [], "the image library's files go with the records"
    assert len(_files(other_tenant.tenant_id)) == 2
    assert api.get(f"/v1/agency/tenants/{tenant.tenant_id}", tenant.agency).status_code == 404
    assert api.get("/v1/whoami", other_tenant.pos).status_code == 200
    assert sorted(r.sk.split("#")[0] for r in DirectoryRecord.query(other_tenant.tenant_id)) == [
        "program", "programv", "store", "tenant"]  # untouched: the tenant, its program (head + version 1), store


def _files(tenant_id: str) -> list[str]:
    s3 = boto3.client("s3", region_name=settings.region)
    listed = s3.list_objects_v2(Bucket=settings.assets_bucket, Prefix=f"tenants/{tenant_id}/")
    return [str(item["Key"]) for item in listed.get("Contents", [])]


def _people_rows(tenant_id: str) -> list[tuple[str, str]]:
    from chalicelib.storage.tables import PersonRecord

    return sorted((r.pk, r.sk) for r in PersonRecord.scan(PersonRecord.pk.startswith(f"{tenant_id}#")))


def _loyalty_rows(tenant_id: str) -> list[tuple[str, str]]:
    return sorted((r.pk, r.sk) for r in LoyaltyRecord.scan(LoyaltyRecord.pk.startswith(f"{tenant_id}#")))


def test_worker_reports_only_failed_messages_and_drops_malformed_ones(aws_stack: None, monkeypatch) -> None:
    from chalicelib.workers import jobs

    calls: list[str] = []

    def flaky(message: dict) -> None:
        calls.append(message["tenant_id"])
        if message["tenant_id"] == "bad":
            raise RuntimeError("boom")

    monkeypatch.setitem(jobs.JOBS, "tenant.purge", flaky)
    event = _sqs_event([json.dumps({"job": "tenant.purge", "tenant_id": "good"}), "not json",
                        json.dumps({"job": "tenant.purge", "tenant_id": "bad"}),
                        json.dumps({"job": "unknown.job"})])
    result = app.handler_map["jobs_worker"](event, None)
    assert result == {"batchItemFailures": [{"itemIdentifier": "m2"}]}
    assert calls == ["good", "bad"]


def test_purge_refuses_a_tenant_not_marked_for_deletion(api: Api, tenant: TenantKeys) -> None:
    from chalicelib.services.tenancy import purge

    try:
        purge.purge_tenant_page(tenant.tenant_id)
    except RuntimeError as exc:
        assert "not marked for deletion" in str(exc)
    else:
        raise AssertionError("purge ran on an active tenant")
    assert api.get("/v1/whoami", tenant.pos).status_code == 200
