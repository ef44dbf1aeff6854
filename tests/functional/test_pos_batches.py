"""Offline receipt batches: upload (202), processing in time order through the jobs queue, per-receipt results.

One scenario: three cards, thirteen receipts uploaded out of order, with a
duplicate, a same-id different-body pair, invalid receipts, a receipt already
processed online, a refund of an earlier receipt of the batch, and receipts on
both sides of a program rule change. It is checked once straight through and
once with a job that stops after every receipt and crashes once between
checkpoints: the results are the same.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from chalicelib.services.pos import pos_batches as service
from chalicelib.services.pos import purchases
from chalicelib.services.program import sweeps
from chalicelib.storage import loyalty, transactions
from chalicelib.storage import pos_batches as batch_store
from chalicelib.storage.documents.receipts import Receipt
from tests.functional import jobqueue
from tests.functional.conftest import Api, TenantKeys

MAIN = {"name": "Main program", "earning": {"rate_bps": 500}, "redemption": {"point_value": 100, "max_share_bps": 3000}}


def iso(at: datetime) -> str:
    return at.isoformat()


def new_card(api: Api, tenant: TenantKeys, phone: str) -> str:
    r = api.post("/v1/cards", tenant.pos, {"program_id": "main", "customer": {"phone": phone}})
    assert r.status_code == 201, r.data
    return r.data["number"]


def sale(receipt_id: str, card: str, amount: int, at: datetime, redeem: int = 0, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": "purchase", "receipt_id": receipt_id, "card_number": card, "total": amount,
                            "items": [{"sku": "latte", "category": "coffee", "quantity": 1, "amount": amount}],
                            "purchased_at": iso(at), **extra}
    if redeem:
        body["redeem_points"] = redeem
    return body


def ledger(tenant: TenantKeys, card: str) -> list[dict[str, Any]]:
    entries, _ = loyalty.list_entries(tenant.tenant_id, card, 100, None)
    return [e.model_dump() for e in entries]


def drain_with_redelivery(crash_once_at: int | None, monkeypatch: pytest.MonkeyPatch) -> int:
    """Run the jobs queue to empty; a failed job is delivered again, as SQS would. Returns the runs."""
    calls = {"n": 0}
    real = batch_store.save_progress

    def save_progress(*args: Any, **kwargs: Any) -> bool:
        calls["n"] += 1
        if calls["n"] == crash_once_at:
            raise RuntimeError("the Lambda died before its checkpoint")
        return real(*args, **kwargs)

    monkeypatch.setattr(batch_store, "save_progress", save_progress)
    runs = 0
    for _ in range(200):
        bodies = jobqueue.receive_all()
        if not bodies:
            return runs
        for body in bodies:
            runs += 1
            while jobqueue.run_worker([body])["batchItemFailures"]:
                runs += 1
    raise AssertionError("queue never drained")


class Scenario:
    """Three cards, the rule change, the online receipt, and the batch (uploaded but not yet processed)."""

    def __init__(self, clock: Any, api: Api, tenant: TenantKeys) -> None:
        self.api, self.tenant = api, tenant
        t0 = clock.now()  # the tenant's program (5%) is in force from t0
        self.a = new_card(api, tenant, "+79160000001")
        self.b = new_card(api, tenant, "+79160000002")
        self.c = new_card(api, tenant, "+79160000003")
        day = timedelta(days=1)
        clock.advance(days=9)
        online = sale("c0", self.c, 800_000, t0 + day + timedelta(hours=5), store_id="msk-01")
        r = api.post("/v1/purchases", tenant.pos, {k: v for k, v in online.items() if k != "kind"})
        assert r.status_code == 200 and r.data["points_earned"] == 400, r.data
        self.online = r.data
        clock.advance(days=1)
        t1 = clock.now()  # the rate doubles from t1
        assert api.put("/v1/programs/main", tenant.admin,
                       {**MAIN, "earning": {"rate_bps": 1000}}).status_code == 200
        clock.advance(hours=1)
        a, b, c = self.a, self.b, self.c
        self.receipts: list[dict[str, Any]] = [
            sale("c2", c, 200_000, t0 + 8 * day, redeem=600),                     # 0: needs c1's points first
            {"kind": "refund", "refund_id": "r1", "receipt_id": "a1",              # 1: refund of 3 (after it)
             "refunded_at": iso(t0 + 2 * day)},
            sale("a2", a, 1_000_000, t1 + timedelta(minutes=10)),                     # 2: after the change: 10%
            sale("a1", a, 1_000_000, t0 + day),                                       # 3: before the change: 5%
            sale("b1", b, 2_000_000, t0 + 3 * day),                                # 4
            sale("b1", b, 2_000_000, t0 + 3 * day),                                # 5: same body: duplicate
            sale("x1", a, -5, t0 + day),                                           # 6: invalid: negative amount
            sale("b3", b, 600_000, t0 + 5 * day),                                  # 7
            sale("b3", b, 700_000, t0 + 6 * day),                                  # 8: same id, other body
            sale("c1", c, 1_000_000, t0 + 7 * day),                                # 9
            sale("x2", a, 3_000, t0 + 4 * day, store_id="nowhere"),                # 10: unknown store
            sale("c0", c, 800_000, t0 + day + timedelta(hours=5)),                 # 11: processed online before
            sale("b2", b, 400_000, t0 + 4 * day + timedelta(hours=1)),             # 12
        ]
        self.body = {"batch_id": "till3-2026-11-12", "store_id": "msk-01", "receipts": self.receipts}

    def upload(self) -> Any:
        return self.api.post("/v1/pos/batches", self.tenant.pos, self.body)

    def status(self, **query: Any) -> dict[str, Any]:
        qs = "&".join(f"{k}={v}" for k, v in query.items())
        r = self.api.get(f"/v1/pos/batches/{self.body['batch_id']}" + (f"?{qs}" if qs else ""), self.tenant.pos)
        assert r.status_code == 200, r.data
        return r.data

    def check_results(self) -> None:
        data = self.status()
        assert data["status"] == "done" and data["completed_at"]
        assert data["counts"] == {"ok": 8, "duplicate": 2, "error": 3, "pending": 0}
        got = {r["index"]: r for r in data["receipts"]}
        assert sorted(got) == list(range(13)), "every receipt has exactly one result"

        def ok(index: int, **expected: int) -> None:
            row = got[index]
            assert row["status"] == "ok" and not row["duplicate"] and row["error"] is None, row
            assert {k: row["result"][k] for k in expected} == expected, row

        ok(3, points_earned=500, rule_version=1)                                  # 5% before the change
        ok(2, points_earned=1_000, rule_version=2)                                # 10% after it
        ok(1, amount_refunded=1_000_000, points_reversed=500)
        ok(4, points_earned=1_000)
        ok(12, points_earned=200)
        ok(7, points_earned=300)
        ok(9, points_earned=500)
        ok(0, points_earned=70, points_redeemed=600, discount=60_000, balance=400 + 500 - 600 + 70)
        assert got[1]["kind"] == "refund" and got[1]["refund_id"] == "r1" and got[1]["receipt_id"] == "a1"

        assert got[5]["status"] == "duplicate" and got[5]["duplicate"]
        assert got[5]["result"] == got[4]["result"], "a duplicate reports the original answer"
        assert got[11]["status"] == "duplicate" and got[11]["result"]["points_earned"] == 400
        assert got[11]["result"]["balance"] == self.online["balance"], "the answer given online"

        errors = {i: got[i]["error"] for i in (6, 8, 10)}
        assert all(got[i]["status"] == "error" and got[i]["result"] is None for i in errors)
        assert (errors[6]["code"], errors[6]["field"]) == ("validation_error", "total")
        assert "items[0].amount" in {d["field"] for d in errors[6]["details"]}
        assert (errors[8]["code"], errors[8]["field"]) == ("receipt_conflict", "receipt_id")
        assert (errors[10]["code"], errors[10]["field"]) == ("unknown_store", "store_id")
        assert got[6]["receipt_id"] == "x1" and got[6]["kind"] == "purchase"

        expected = {self.a: (1_000, 3), self.b: (1_500, 3), self.c: (370, 4)}
        for card, (points, entries) in expected.items():
            shown = self.api.get(f"/v1/cards/{card}", self.tenant.pos).data
            assert shown["balance"] + shown["pending"] == points == loyalty.ledger_sum(self.tenant.tenant_id, card)
            assert len(ledger(self.tenant, card)) == entries, "nothing processed twice"


def test_offline_batch_in_time_order_with_duplicates_conflicts_and_invalid_receipts(
        clock: Any, api: Api, tenant: TenantKeys, other_tenant: TenantKeys) -> None:
    s = Scenario(clock, api, tenant)
    r = s.upload()
    assert r.status_code == 202, r.data
    assert r.data == {"batch_id": "till3-2026-11-12", "status": "accepted", "receipts": 13,
                      "counts": {"ok": 0, "duplicate": 0, "error": 1, "pending": 12},
                      "status_url": "/v1/pos/batches/till3-2026-11-12", "replayed": False}
    before = s.status()
    assert before["status"] == "accepted" and before["counts"]["pending"] == 12
    fields = {d["field"] for d in before["receipts"][6]["error"]["details"]}
    assert fields == {"total", "items[0].amount"}, "invalid receipts are known at once"

    ran = jobqueue.drain()
    assert [json.loads(b)["job"] for b in ran] == ["pos_batch.process"]
    s.check_results()

    again = s.upload()
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.data["status"] == "done" and again.data["replayed"] and again.data["counts"]["ok"] == 8
    assert jobqueue.drain() == [], "a finished batch is not queued again"
    s.check_results()

    changed = {**s.body, "receipts": s.receipts[:-1]}
    r = api.post("/v1/pos/batches", tenant.pos, changed)
    assert r.status_code == 409 and r.data["error"]["code"] == "batch_conflict"

    assert api.get("/v1/pos/batches/till3-2026-11-12", other_tenant.pos).status_code == 404
    assert api.get("/v1/pos/batches/no-such-batch", tenant.pos).status_code == 404
    assert api.get("/v1/pos/batches", other_tenant.admin).data["items"] == []
    listed = api.get("/v1/pos/batches", tenant.admin).data
    assert [(b["batch_id"], b["status"], b["total"]) for b in listed["items"]] == [("till3-2026-11-12", "done", 13)]


def test_resumed_and_redelivered_job_gives_the_same_results(
        clock: Any, api: Api, tenant: TenantKeys, monkeypatch: pytest.MonkeyPatch) -> None:
    s = Scenario(clock, api, tenant)
    monkeypatch.setattr(service, "BUDGET_SECONDS", 0.0)  # stop (and re-enqueue) after every receipt
    assert s.upload().status_code == 202
    runs = drain_with_redelivery(crash_once_at=3, monkeypatch=monkeypatch)
    assert runs == 12 + 1, "one run per valid receipt, plus the crashed one"
    s.check_results()


def test_status_pages_and_the_envelope_limits(
        clock: Any, api: Api, tenant: TenantKeys, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch_store, "RESULTS_PER_ITEM", 4)  # several stored chunks for a dozen receipts
    monkeypatch.setattr(service, "RECEIPTS_PER_CHUNK", 3)
    card = new_card(api, tenant, "+79160000009")
    at = clock.now() - timedelta(hours=1)
    receipts = [sale(f"p{i}", card, 100_000, at - timedelta(seconds=i)) for i in range(12)]
    receipts[5] = sale("late", card, 1_000, clock.now() - timedelta(days=91))
    receipts[6] = sale("early", card, 1_000, clock.now() + timedelta(minutes=10))
    receipts[7] = {k: v for k, v in sale("nodate", card, 1_000, at).items() if k != "purchased_at"}
    receipts[8] = {"kind": "exchange", "receipt_id": "odd"}
    r = api.post("/v1/pos/batches", tenant.pos, {"batch_id": "b-12", "store_id": "msk-01", "receipts": receipts})
    assert r.status_code == 202 and r.data["counts"]["error"] == 4
    jobqueue.drain()

    path = "/v1/pos/batches/b-12"
    pages: list[list[int]] = []
    rows: dict[int, dict[str, Any]] = {}
    cursor = None
    while True:
        data = api.get(f"{path}?limit=5" + (f"&cursor={cursor}" if cursor else ""), tenant.admin).data
        pages.append([x["index"] for x in data["receipts"]])
        rows.update({x["index"]: x for x in data["receipts"]})
        cursor = data["cursor"]
        if not data["has_more"]:
            break
    assert pages == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11]]
    assert data["counts"] == {"ok": 8, "duplicate": 0, "error": 4, "pending": 0}
    assert [rows[i]["result"]["points_earned"] for i in (0, 4, 9, 11)] == [50] * 4
    assert [(rows[i]["error"]["code"], rows[i]["error"]["field"]) for i in (5, 6, 7, 8)] == [
        ("receipt_too_old", "purchased_at"), ("receipt_in_future", "purchased_at"),
        ("validation_error", "purchased_at"), ("validation_error", "kind")]
    assert rows[8]["receipt_id"] == "odd" and rows[8]["kind"] is None
    assert loyalty.ledger_sum(tenant.tenant_id, card) == 8 * 50

    first = api.get(f"{path}?limit=5", tenant.admin).data
    assert api.get(f"{path}?cursor=not-a-cursor", tenant.admin).status_code == 400
    small = {"batch_id": "b-1", "store_id": "msk-01", "receipts": receipts[5:6]}
    r = api.post("/v1/pos/batches", tenant.pos, small)
    assert r.status_code == 202 and r.data["status"] == "done", "nothing valid to run: done at once"
    moved = api.get(f"/v1/pos/batches/b-1?cursor={first['cursor']}", tenant.admin)
    assert moved.status_code == 400, "a cursor is bound to its batch"

    too_many = [sale(f"q{i}", card, 100, at) for i in range(501)]
    r = api.post("/v1/pos/batches", tenant.pos, {"batch_id": "b-501", "store_id": "msk-01", "receipts": too_many})
    assert r.status_code == 422 and r.data["error"]["code"] == "batch_too_large"
    assert r.data["error"]["details"][0]["field"] == "receipts"
    assert api.get("/v1/pos/batches/b-501", tenant.pos).status_code == 404, "a refused batch stores nothing"

    r = api.post("/v1/pos/batches", tenant.pos, {"batch_id": "b-x", "store_id": "nowhere", "receipts": receipts})
    assert r.status_code == 422 and r.data["error"]["code"] == "unknown_store"
    r = api.post("/v1/pos/batches", tenant.pos, {"batch_id": "b/x", "receipts": receipts})
    assert r.status_code == 400


def test_a_store_bound_key_uploads_for_its_store_and_sees_its_own_batches(
        clock: Any, api: Api, tenant: TenantKeys) -> None:
    assert api.post("/v1/stores", tenant.admin, {"id": "spb-01", "name": "Nevsky 1"}).status_code == 201
    keys = {s: api.post("/v1/keys", tenant.admin, {"role": "pos", "name": s, "store_id": s}).data["secret"]
            for s in ("msk-01", "spb-01")}
    card = new_card(api, tenant, "+79160000010")
    at = clock.now() - timedelta(hours=2)
    receipts = [sale("m1", card, 100_000, at), sale("m2", card, 100_000, at, store_id="spb-01")]
    r = api.post("/v1/pos/batches", keys["msk-01"], {"batch_id": "m", "store_id": "spb-01", "receipts": receipts})
    assert r.status_code == 403, "the batch's store must be the key's"
    r = api.post("/v1/pos/batches", keys["msk-01"], {"batch_id": "m", "store_id": "msk-01", "receipts": receipts})
    assert r.status_code == 202
    jobqueue.drain()
    data = api.get("/v1/pos/batches/m", keys["msk-01"]).data
    assert [x["status"] for x in data["receipts"]] == ["ok", "error"]
    assert data["receipts"][1]["error"]["code"] == "forbidden", "a receipt of another store is refused"
    assert api.get("/v1/pos/batches/m", keys["spb-01"]).status_code == 404
    assert api.get("/v1/pos/batches", keys["spb-01"]).data["items"] == []
    assert [b["batch_id"] for b in api.get("/v1/pos/batches", tenant.pos).data["items"]] == ["m"]
    r = api.post("/v1/pos/batches", keys["spb-01"], {"batch_id": "m", "store_id": "msk-01", "receipts": receipts})
    assert r.status_code == 403


# --- one sale, sent online and offline -----------------------------------------------------

def online_body(receipt: dict[str, Any], *, with_time: bool = False) -> dict[str, Any]:
    """The batch receipt as the till sends it to POST /v1/purchases (the POS guide leaves `purchased_at` out)."""
    drop = {"kind"} if with_time else {"kind", "purchased_at"}
    return {**{k: v for k, v in receipt.items() if k not in drop}, "store_id": "msk-01"}


def upload(api: Api, tenant: TenantKeys, batch_id: str, receipts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Upload and run a batch; its receipts' rows in upload order."""
    r = api.post("/v1/pos/batches", tenant.pos, {"batch_id": batch_id, "store_id": "msk-01", "receipts": receipts})
    assert r.status_code == 202, r.data
    jobqueue.drain()
    data = api.get(f"/v1/pos/batches/{batch_id}", tenant.pos).data
    assert data["status"] == "done", data
    return data["receipts"]


def summary(answer: dict[str, Any]) -> dict[str, Any]:
    keys = ("card_number", "points_earned", "points_redeemed", "discount", "payable", "balance", "pending",
            "rule_version")
    return {k: answer[k] for k in keys}


def legacy_request_hash(body: Any) -> str:
    """How receipts were fingerprinted before: the whole body, `purchased_at` (null when omitted) included."""
    return hashlib.sha256(body.model_dump_json().encode()).hexdigest()


def test_a_receipt_sent_online_without_its_time_is_a_duplicate_in_a_later_batch(
        clock: Any, api: Api, tenant: TenantKeys) -> None:
    card = new_card(api, tenant, "+79160000020")
    sold = sale("t-100", card, 100_000, clock.now())
    r = api.post("/v1/purchases", tenant.pos, online_body(sold))
    assert r.status_code == 200 and r.data["points_earned"] == 50, r.data
    online = r.data
    clock.advance(hours=3)  # the till uploads its copy of the receipt later, with the sale's own time

    rows = upload(api, tenant, "after-online", [sold, sale("t-100", card, 90_000, clock.now() - timedelta(hours=3))])
    assert [(x["status"], x["duplicate"]) for x in rows] == [("duplicate", True), ("error", False)]
    assert rows[0]["result"] == summary(online), "the answer given online"
    assert rows[1]["error"]["code"] == "receipt_conflict", "another body under the same id is still a conflict"
    assert [e["type"] for e in ledger(tenant, card)] == ["accrual"], "the sale counted once"
    assert loyalty.ledger_sum(tenant.tenant_id, card) == 50


def test_a_receipt_uploaded_offline_first_is_replayed_online_with_or_without_its_time(
        clock: Any, api: Api, tenant: TenantKeys) -> None:
    card = new_card(api, tenant, "+79160000021")
    sold = sale("t-200", card, 100_000, clock.now() - timedelta(hours=2))
    rows = upload(api, tenant, "before-online", [sold])
    assert rows[0]["status"] == "ok" and rows[0]["result"]["points_earned"] == 50, rows

    later = {**sold, "purchased_at": iso(clock.now() - timedelta(minutes=1))}
    for body in (online_body(sold), online_body(sold, with_time=True), online_body(later, with_time=True)):
        r = api.post("/v1/purchases", tenant.pos, body)
        assert r.status_code == 200 and r.data["replayed"] and r.headers["Idempotent-Replayed"] == "true", r.data
        assert summary(r.data) == rows[0]["result"]
    r = api.post("/v1/purchases", tenant.pos, {**online_body(sold), "total": 90_000,
                                               "items": [{"sku": "latte", "category": "coffee", "amount": 90_000}]})
    assert r.status_code == 422 and r.data["error"]["code"] == "idempotency_key_reused"
    assert loyalty.ledger_sum(tenant.tenant_id, card) == 50 and len(ledger(tenant, card)) == 1


def test_receipts_stored_with_the_old_fingerprint_are_still_recognised(
        clock: Any, api: Api, tenant: TenantKeys, monkeypatch: pytest.MonkeyPatch) -> None:
    card = new_card(api, tenant, "+79160000022")
    moscow = timezone(timedelta(hours=3))
    online = sale("old-1", card, 100_000, clock.now())
    utc = sale("old-2", card, 200_000, clock.now() - timedelta(hours=2))
    local = sale("old-3", card, 300_000, (clock.now() - timedelta(hours=1)).astimezone(moscow))
    assert local["purchased_at"].endswith("+03:00")

    monkeypatch.setattr(purchases, "request_hash", legacy_request_hash)  # written by the code before the fix
    r = api.post("/v1/purchases", tenant.pos, online_body(online))
    assert r.status_code == 200, r.data
    first = upload(api, tenant, "old-batch", [utc, local])
    assert [x["status"] for x in first] == ["ok", "ok"]
    monkeypatch.undo()
    clock.advance(hours=1)

    rows = upload(api, tenant, "new-batch", [online, {**online, "total": 1, "items": [{"sku": "x", "amount": 1}]},
                                             utc, local])
    assert [x["status"] for x in rows] == ["duplicate", "error", "duplicate", "duplicate"]
    assert rows[0]["result"] == summary(r.data)
    assert rows[1]["error"]["code"] == "receipt_conflict"
    assert [x["result"] for x in rows[2:]] == [x["result"] for x in first]
    for receipt, stored in ((utc, first[0]), (local, first[1])):
        for body in (online_body(receipt), online_body(receipt, with_time=True)):
            again = api.post("/v1/purchases", tenant.pos, body)
            assert again.status_code == 200 and again.data["replayed"], again.data
            assert summary(again.data) == stored["result"]
    assert loyalty.ledger_sum(tenant.tenant_id, card) == 50 + 100 + 150 and len(ledger(tenant, card)) == 3


# --- the clocks of a late receipt ------------------------------------------------------------

def test_offline_points_are_pending_and_expire_counted_from_the_sale(
        clock: Any, api: Api, tenant: TenantKeys) -> None:
    assert api.put("/v1/programs/main", tenant.admin,
                   {**MAIN, "pending_days": 2, "expiry_days": 10}).status_code == 200
    card = new_card(api, tenant, "+79160000030")
    t0, day = clock.now(), timedelta(days=1)
    clock.advance(days=12)  # the till comes back online on day 12
    rows = upload(api, tenant, "late", [
        sale("gone", card, 100_000, t0 + day),           # expired on day 11, before the upload
        sale("matured", card, 200_000, t0 + 9 * day),    # its return window closed on day 11: spendable at once
        sale("fresh", card, 400_000, t0 + 11 * day),     # pending until day 13, not day 14
    ])
    assert [(x["status"], x["result"]["points_earned"]) for x in rows] == [("ok", 50), ("ok", 100), ("ok", 200)]
    assert [(x["result"]["balance"], x["result"]["pending"]) for x in rows] == [(0, 0), (100, 0), (100, 200)]
    view = api.get(f"/v1/cards/{card}", tenant.pos).data
    assert (view["balance"], view["pending"]) == (100, 200)
    assert loyalty.ledger_sum(tenant.tenant_id, card) == 300 == view["balance"] + view["pending"]
    gone = sorted((e["type"], e["points"], e["balance_after"]) for e in ledger(tenant, card)
                  if e["receipt_id"] == "gone")
    assert gone == [("accrual", 50, 50), ("expiry", -50, 0)], "earned and expired at once, in the ledger"
    stored = loyalty.get_card(tenant.tenant_id, card)
    assert stored is not None and stored.next_due == t0 + 19 * day, "the sweep's next work: 'matured' expiring"

    clock.advance(days=1)  # day 13
    view = api.get(f"/v1/cards/{card}", tenant.pos).data
    assert (view["balance"], view["pending"]) == (300, 0)
    clock.advance(days=6)  # day 19: the day-9 sale's points expire
    assert api.get(f"/v1/cards/{card}", tenant.pos).data["balance"] == 200
    assert sweeps.maintain_card(tenant.tenant_id, card) == 1, "the sweep's work on the card: one expiry entry"
    assert loyalty.ledger_sum(tenant.tenant_id, card) == 200


def test_a_refund_after_an_offline_sales_points_expired_takes_no_other_points(
        clock: Any, api: Api, tenant: TenantKeys) -> None:
    assert api.put("/v1/programs/main", tenant.admin, {**MAIN, "expiry_days": 10}).status_code == 200
    card = new_card(api, tenant, "+79160000031")
    t0 = clock.now()
    clock.advance(days=2)
    rows = upload(api, tenant, "early", [sale("early", card, 100_000, t0 + timedelta(days=1))])  # expires day 11
    assert rows[0]["result"]["points_earned"] == 50
    r = api.post("/v1/purchases", tenant.pos, online_body(sale("today", card, 100_000, clock.now())))
    assert r.status_code == 200 and r.data["points_earned"] == 50  # expires day 12
    clock.advance(days=9, hours=12)

    r = api.post("/v1/refunds", tenant.pos, {"refund_id": "early-r", "receipt_id": "early"})
    assert r.status_code == 200, r.data
    assert (r.data["points_reversed"], r.data["points_expired"], r.data["balance"]) == (0, 50, 50)
    assert api.get(f"/v1/cards/{card}", tenant.pos).data["balance"] == 50, "today's points are untouched"


def test_a_receipt_kept_before_its_points_expiry_was_stored_dates_it_from_processing(
        clock: Any, api: Api, tenant: TenantKeys) -> None:
    assert api.put("/v1/programs/main", tenant.admin, {**MAIN, "expiry_days": 10}).status_code == 200
    card = new_card(api, tenant, "+79160000032")
    r = api.post("/v1/purchases", tenant.pos, online_body(sale("old", card, 100_000, clock.now())))
    assert r.status_code == 200 and r.data["points_earned"] == 50
    pk = loyalty.receipt_pk(tenant.tenant_id, "old")
    stored = loyalty.get_receipt(tenant.tenant_id, "old")
    assert stored is not None and stored.doc.points_expire_at == iso(clock.now() + timedelta(days=10))
    doc = {k: v for k, v in stored.doc.dump().items() if k != "points_expire_at"}  # as the code before this field kept it
    transactions.write(lambda tx: loyalty.replace_versioned(tx, pk, loyalty.RECEIPT_SK, "receipt",
                                                            Receipt.load(doc), stored.version, clock.now()))
    clock.advance(days=10, hours=1)

    r = api.post("/v1/refunds", tenant.pos, {"refund_id": "old-r", "receipt_id": "old"})
    assert r.status_code == 200 and (r.data["points_reversed"], r.data["points_expired"]) == (0, 50), r.data


def test_a_late_receipts_referral_bonus_matures_with_the_sales_return_window(
        clock: Any, api: Api, tenant: TenantKeys) -> None:
    referral = {"friend_points": 100, "referrer_points": 200, "min_purchase": 50_000, "max_per_referrer": 1}
    assert api.put("/v1/programs/main", tenant.admin,
                   {**MAIN, "pending_days": 2, "referral": referral}).status_code == 200
    member = api.post("/v1/customers", tenant.admin, {"phone": "+79160000040"}).data
    referrer = new_card(api, tenant, "+79160000040")
    r = api.post("/v1/cards", tenant.pos, {"program_id": "main", "customer": {
        "phone": "+79160000041", "referral_code": member["referral"]["code"]}})
    assert r.status_code == 201, r.data
    friend = r.data["number"]
    sold = clock.now()
    clock.advance(days=3)  # the return window closed a day before the upload

    rows = upload(api, tenant, "referred", [sale("ref-1", friend, 100_000, sold)])
    assert (rows[0]["result"]["points_earned"], rows[0]["result"]["balance"], rows[0]["result"]["pending"]) == (
        50, 150, 0), "the sale's points and the friend's bonus: spendable at once"
    view = api.get(f"/v1/cards/{referrer}", tenant.pos).data
    assert (view["balance"], view["pending"]) == (200, 0)
