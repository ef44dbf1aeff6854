"""Coupon campaigns: shared and unique codes, background generation, editing, listing, look-up, access."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.domain.coupons import CODE_ALPHABET, CODE_LENGTH
from chalicelib.services.program import coupons
from chalicelib.storage import coupons as coupon_store
from chalicelib.storage import transactions
from chalicelib.storage.tables import AuditRecord, LoyaltyRecord
from tests.functional.conftest import Api, TenantKeys
from tests.functional.jobqueue import drain, receive_all, run_worker

BASE = "/v1/coupon-campaigns"
_drain, _worker, _receive_all = drain, run_worker, receive_all


# --- helpers -------------------------------------------------------------------------

def _stored_codes(tenant_id: str, campaign_id: str) -> list[str]:
    """Every code item of the campaign, read through the index the listing uses."""
    return [r.gsi1sk for r in LoyaltyRecord.due_and_partner.query(coupon_store.campaign_codes_pk(tenant_id,
                                                                                                 campaign_id))]


def _listed(api: Api, key: str, campaign_id: str, limit: int) -> tuple[list[dict[str, Any]], int]:
    items: list[dict[str, Any]] = []
    cursor, pages = None, 0
    while True:
        r = api.get(f"{BASE}/{campaign_id}/codes?limit={limit}" + (f"&cursor={cursor}" if cursor else ""), key)
        assert r.status_code == 200, r.data
        items += r.data["items"]
        pages += 1
        if not r.data["has_more"]:
            assert r.data["cursor"] is None
            return items, pages
        cursor = r.data["cursor"]


def _shared(**overrides: Any) -> dict[str, Any]:
    body = {"id": "welcome", "name": "Welcome 10%", "program_id": "main", "mode": "shared", "code": "welcome-10",
            "effect": {"kind": "percent_off", "value": 1000},
            "limits": {"starts_at": "2026-11-01T00:00:00Z", "ends_at": "2026-12-01T00:00:00Z",
                       "uses_per_code": 0, "per_customer": 1, "min_receipt": 50000}}
    body.update(overrides)
    return body


def _unique(count: int, **overrides: Any) -> dict[str, Any]:
    body = {"id": "flyer", "name": "Flyer bonus", "program_id": "main", "mode": "unique", "count": count,
            "effect": {"kind": "bonus_points", "value": 200}}
    body.update(overrides)
    return body


def _audit(tenant_id: str, action: str) -> list[AuditRecord]:
    return [r for r in AuditRecord.query(tenant_id) if r.action == action]


def _add_program(api: Api, key: str, body: dict[str, Any]) -> None:
    r = api.post("/v1/programs", key, body)
    assert r.status_code == 201, r.data


# --- shared campaigns ------------------------------------------------------------------

def test_a_shared_campaign_is_ready_at_once_with_its_one_code(api: Api, tenant: TenantKeys, clock: Any) -> None:
    r = api.post(BASE, tenant.admin, _shared())
    assert r.status_code == 201, r.data
    c = r.data
    assert (c["id"], c["mode"], c["code"], c["count"]) == ("welcome", "shared", "WELCOME10", None)
    assert (c["status"], c["generation"], c["generated"], c["generation_error"]) == ("active", "ready", 0, None)
    assert c["effect"] == {"kind": "percent_off", "value": 1000}
    assert c["limits"]["uses_per_code"] == 0 and c["limits"]["min_receipt"] == 50000
    assert c["created_at"].startswith("2026-11-02T10:00:00")

    assert _stored_codes(tenant.tenant_id, "welcome") == ["WELCOME10"]
    entries = _audit(tenant.tenant_id, "coupon_campaign.created")
    assert len(entries) == 1 and entries[0].target == "coupon_campaign:welcome"
    assert entries[0].detail.as_dict() == {"program_id": "main", "mode": "shared", "effect": "percent_off",
                                           "value": "1000", "code": "WELCOME10"}
    assert api.get(f"{BASE}/welcome", tenant.support).data == c

    items, _ = _listed(api, tenant.admin, "welcome", 50)
    assert items == [{"code": "WELCOME10", "campaign_id": "welcome", "uses": 0, "max_uses": 0}]


def test_campaign_ids_and_shared_codes_are_unique_per_tenant(api: Api, tenant: TenantKeys, other_tenant: TenantKeys,
                                                             clock: Any) -> None:
    assert api.post(BASE, tenant.admin, _shared()).status_code == 201
    again = api.post(BASE, tenant.admin, _shared(name="Other name", code="OTHER-CODE"))
    assert again.status_code == 409 and again.data["error"]["code"] == "campaign_exists"
    assert again.data["error"]["details"] == [{"field": "id", "issue": "Campaign 'welcome' already exists."}]
    taken = api.post(BASE, tenant.admin, _shared(id="welcome-2", code="Welcome10"))
    assert taken.status_code == 409 and taken.data["error"]["code"] == "code_taken"
    assert taken.data["error"]["details"][0]["field"] == "code"
    # Nothing of the refused campaign was written, not even its audit entry.
    assert api.get(f"{BASE}/welcome-2", tenant.admin).status_code == 404
    assert len(_audit(tenant.tenant_id, "coupon_campaign.created")) == 1
    # Another tenant has its own code space and ids.
    assert api.post(BASE, other_tenant.admin, _shared()).status_code == 201


# --- unique campaigns --------------------------------------------------------------------

def test_a_unique_campaign_is_generated_by_the_job_worker(api: Api, tenant: TenantKeys, clock: Any) -> None:
    r = api.post(BASE, tenant.admin, _unique(250))
    assert r.status_code == 202, r.data
    assert (r.data["generation"], r.data["generated"], r.data["count"], r.data["code"]) == ("generating", 0, 250, None)
    assert api.get(f"{BASE}/flyer", tenant.admin).data["generation"] == "generating"

    ran = _drain()
    assert [json.loads(b) for b in ran] == [{"job": "coupons.generate", "tenant_id": tenant.tenant_id,
                                             "campaign_id": "flyer"}]
    done = api.get(f"{BASE}/flyer", tenant.admin).data
    assert (done["generation"], done["generated"], done["generation_error"]) == ("ready", 250, None)

    codes = _stored_codes(tenant.tenant_id, "flyer")
    assert len(codes) == len(set(codes)) == 250
    assert all(len(c) == CODE_LENGTH == 16 and set(c) <= set(CODE_ALPHABET) for c in codes)

    items, pages = _listed(api, tenant.admin, "flyer", 100)
    assert pages == 3
    assert [i["code"].replace("-", "") for i in items] == sorted(codes)
    assert all(len(i["code"]) == 19 and i["code"].count("-") == 3 for i in items)
    assert {(i["campaign_id"], i["uses"], i["max_uses"]) for i in items} == {("flyer", 0, 1)}


def test_a_redelivered_or_late_job_message_makes_no_extra_codes(api: Api, tenant: TenantKeys, clock: Any) -> None:
    assert api.post(BASE, tenant.admin, _unique(120)).status_code == 202
    bodies = _receive_all()
    assert len(bodies) == 1
    # The same message delivered twice in one batch, then once more after the campaign is ready.
    assert _worker(bodies * 2) == {"batchItemFailures": []}
    assert _worker(bodies) == {"batchItemFailures": []}
    assert _drain() == []
    assert len(_stored_codes(tenant.tenant_id, "flyer")) == 120
    assert api.get(f"{BASE}/flyer", tenant.admin).data["generated"] == 120


def test_a_job_out_of_time_re_enqueues_itself_and_resumes(api: Api, tenant: TenantKeys, clock: Any,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(coupons, "BUDGET_SECONDS", 0.0)  # one batch per message
    assert api.post(BASE, tenant.admin, _unique(250)).status_code == 202
    first = _receive_all()
    _worker(first)
    progress = api.get(f"{BASE}/flyer", tenant.admin).data
    assert (progress["generation"], progress["generated"]) == ("generating", coupons.BATCH)
    assert len(_stored_codes(tenant.tenant_id, "flyer")) == coupons.BATCH
    rest = _drain()
    assert len(rest) == 2  # 99 + 99 + 52
    assert api.get(f"{BASE}/flyer", tenant.admin).data["generated"] == 250
    assert len(set(_stored_codes(tenant.tenant_id, "flyer"))) == 250


def test_a_colliding_batch_is_drawn_again_and_never_overwrites(api: Api, tenant: TenantKeys, clock: Any,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    assert api.post(BASE, tenant.admin, _shared(code="AAAA-AAAA-AAAA-AAAA")).status_code == 201
    assert api.post(BASE, tenant.admin, _unique(3)).status_code == 202
    draws = iter(["AAAAAAAAAAAAAAAA", "BBBBBBBBBBBBBBBB", "CCCCCCCCCCCCCCCC",
                  "DDDDDDDDDDDDDDDD", "EEEEEEEEEEEEEEEE", "FFFFFFFFFFFFFFFF"])
    monkeypatch.setattr(coupons.rules, "generate_code", lambda: next(draws))
    _drain()
    assert _stored_codes(tenant.tenant_id, "flyer") == ["DDDDDDDDDDDDDDDD", "EEEEEEEEEEEEEEEE", "FFFFFFFFFFFFFFFF"]
    assert _stored_codes(tenant.tenant_id, "welcome") == ["AAAAAAAAAAAAAAAA"]
    assert coupon_store.get_code(tenant.tenant_id, "AAAAAAAAAAAAAAAA").campaign_id == "welcome"
    assert api.get(f"{BASE}/flyer", tenant.admin).data["generated"] == 3


def test_generation_fails_with_a_reason_when_every_batch_collides(api: Api, tenant: TenantKeys, clock: Any,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    assert api.post(BASE, tenant.admin, _shared(code="AAAAAAAAAAAAAAAA")).status_code == 201
    assert api.post(BASE, tenant.admin, _unique(1)).status_code == 202
    monkeypatch.setattr(coupons.rules, "generate_code", lambda: "AAAAAAAAAAAAAAAA")
    assert len(_drain()) == 1
    failed = api.get(f"{BASE}/flyer", tenant.admin).data
    assert (failed["generation"], failed["generated"]) == ("failed", 0)
    assert failed["generation_error"] == "10 batches in a row collided with existing codes; 0 of 1 codes were made."
    assert _stored_codes(tenant.tenant_id, "flyer") == []


# --- validation --------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "field"), [
    (_shared(code=None), "body"),
    ({**_shared(), "count": 5}, "body"),
    ({**_unique(10), "count": None}, "body"),
    (_unique(10, effect={"kind": "percent_off", "value": 10_001}), "effect"),
    (_unique(10, effect={"kind": "multiplier", "value": 10_000}), "effect"),
    (_unique(10, effect={"kind": "multiplier", "value": 100_001}), "effect"),
    (_unique(10, effect={"kind": "amount_off", "value": 0}), "effect.value"),
    ({**_unique(10), "count": 0}, "count"),
    (_unique(10, limits={"ends_at": "2026-12-01T00:00:00"}), "limits"),
    (_unique(10, limits={"starts_at": "2026-12-01T00:00:00Z", "ends_at": "2026-11-01T00:00:00Z"}), "limits"),
    (_shared(code="no spaces!"), "code"),
    (_unique(10, extra=1), "extra"),
])
def test_schema_errors_are_400_with_the_field(api: Api, tenant: TenantKeys, body: dict[str, Any], field: str) -> None:
    r = api.post(BASE, tenant.admin, body)
    assert r.status_code == 400, r.data
    assert r.data["error"]["code"] == "validation_error"
    assert [d["field"] for d in r.data["error"]["details"]] == [field]
    assert api.get(BASE, tenant.admin).data["items"] == []


def test_business_rule_errors_are_422_with_the_field(api: Api, tenant: TenantKeys, clock: Any) -> None:
    _add_program(api, tenant.admin, {"id": "gifts", "name": "Gift cards", "kind": "gift"})
    _add_program(api, tenant.admin, {"id": "club", "name": "Discount club", "kind": "discount",
                                     "discount": {"percent_bps": 500}})
    cases = [
        (_unique(10, program_id="nope"), "unknown_program", "program_id"),
        (_unique(10, program_id="gifts"), "program_kind_not_supported", "program_id"),
        (_unique(10, program_id="club"), "effect_needs_points_program", "effect.kind"),
        (_unique(10, limits={"ends_at": "2026-11-01T00:00:00Z"}), "campaign_already_ended", "limits.ends_at"),
    ]
    for body, code, field in cases:
        r = api.post(BASE, tenant.admin, body)
        assert r.status_code == 422, (body, r.data)
        assert r.data["error"]["code"] == code
        assert [d["field"] for d in r.data["error"]["details"]] == [field]
    assert api.get(BASE, tenant.admin).data["items"] == []
    assert _receive_all() == []
    # A discount program takes money-off coupons.
    ok = api.post(BASE, tenant.admin, _shared(program_id="club"))
    assert ok.status_code == 201 and ok.data["program_id"] == "club"


# --- listing and editing ------------------------------------------------------------------

def test_campaigns_are_listed_by_id_with_pagination(api: Api, tenant: TenantKeys, clock: Any) -> None:
    for i in (3, 1, 2):
        assert api.post(BASE, tenant.admin, _shared(id=f"camp-{i}", code=f"CODE-{i}000")).status_code == 201
    first = api.get(f"{BASE}?limit=2", tenant.support)
    assert first.status_code == 200
    assert [c["id"] for c in first.data["items"]] == ["camp-1", "camp-2"] and first.data["has_more"] is True
    second = api.get(f"{BASE}?limit=2&cursor={first.data['cursor']}", tenant.admin)
    assert [c["id"] for c in second.data["items"]] == ["camp-3"]
    assert (second.data["has_more"], second.data["cursor"]) == (False, None)
    assert api.get(f"{BASE}?cursor=garbage!", tenant.admin).status_code == 400


def test_put_renames_pauses_resumes_and_moves_the_end(api: Api, tenant: TenantKeys, clock: Any) -> None:
    assert api.post(BASE, tenant.admin, _shared()).status_code == 201
    lookup = api.get("/v1/coupons/welcome10", tenant.pos).data
    assert (lookup["usable_now"], lookup["reason"]) == (True, None)

    paused = api.put(f"{BASE}/welcome", tenant.admin, {"status": "paused", "name": "Welcome (on hold)"})
    assert paused.status_code == 200, paused.data
    assert (paused.data["status"], paused.data["name"]) == ("paused", "Welcome (on hold)")
    assert api.get(f"{BASE}/welcome", tenant.admin).data["status"] == "paused"
    lookup = api.get("/v1/coupons/welcome10", tenant.pos).data
    assert (lookup["usable_now"], lookup["reason"]) == (False, "campaign_paused")

    resumed = api.put(f"{BASE}/welcome", tenant.admin, {"status": "active", "ends_at": "2027-01-01T00:00:00+03:00"})
    assert resumed.status_code == 200
    assert resumed.data["status"] == "active"
    assert resumed.data["limits"]["ends_at"] == "2027-01-01T00:00:00+03:00"
    assert resumed.data["limits"]["starts_at"] == "2026-11-01T00:00:00Z"
    assert api.get("/v1/coupons/welcome10", tenant.pos).data["usable_now"] is True

    before_start = api.put(f"{BASE}/welcome", tenant.admin, {"ends_at": "2026-10-01T00:00:00Z"})
    assert before_start.status_code == 422 and before_start.data["error"]["code"] == "invalid_validity"
    assert before_start.data["error"]["details"] == [{"field": "ends_at", "issue": "ends_at must be after starts_at"}]
    open_ended = api.put(f"{BASE}/welcome", tenant.admin, {"ends_at": None})
    assert open_ended.status_code == 200 and open_ended.data["limits"]["ends_at"] is None

    unchanged = api.put(f"{BASE}/welcome", tenant.admin, {})
    assert unchanged.status_code == 200 and unchanged.data == open_ended.data
    bad = api.put(f"{BASE}/welcome", tenant.admin, {"status": "deleted"})
    assert bad.status_code == 400 and bad.data["error"]["details"][0]["field"] == "status"

    details = sorted((r.detail.as_dict() for r in _audit(tenant.tenant_id, "coupon_campaign.updated")),
                     key=lambda d: sorted(d.items()))
    assert details == sorted([{"status": "paused", "name": "Welcome (on hold)"},
                              {"status": "active", "ends_at": "2027-01-01T00:00:00+03:00"},
                              {"ends_at": ""}], key=lambda d: sorted(d.items()))


def test_an_edit_during_generation_is_kept_and_generation_goes_on(api: Api, tenant: TenantKeys, clock: Any,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(coupons, "BUDGET_SECONDS", 0.0)
    assert api.post(BASE, tenant.admin, _unique(150)).status_code == 202
    _worker(_receive_all())
    assert api.put(f"{BASE}/flyer", tenant.admin, {"status": "paused"}).status_code == 200
    _drain()
    done = api.get(f"{BASE}/flyer", tenant.admin).data
    assert (done["status"], done["generation"], done["generated"]) == ("paused", "ready", 150)
    assert len(_stored_codes(tenant.tenant_id, "flyer")) == 150


# --- look-up -------------------------------------------------------------------------------

def test_a_code_is_looked_up_in_any_case_with_or_without_dashes(api: Api, tenant: TenantKeys, clock: Any) -> None:
    assert api.post(BASE, tenant.admin, _unique(5, limits={"ends_at": "2026-11-30T00:00:00Z",
                                                          "uses_per_code": 3})).status_code == 202
    _drain()
    code = _stored_codes(tenant.tenant_id, "flyer")[0]
    dashed = "-".join(code[i:i + 4] for i in range(0, 16, 4))
    expected = {"code": dashed, "campaign_id": "flyer", "campaign_name": "Flyer bonus", "program_id": "main",
                "effect": {"kind": "bonus_points", "value": 200}, "starts_at": None, "ends_at": "2026-11-30T00:00:00Z",
                "min_receipt": 0, "categories": [], "uses": 0, "max_uses": 3, "uses_left": 3, "per_customer": 1,
                "usable_now": True, "reason": None, "message": None}
    for typed, key in ((code, tenant.pos), (dashed.lower(), tenant.support), (code.lower(), tenant.admin)):
        r = api.get(f"/v1/coupons/{typed}", key)
        assert r.status_code == 200, r.data
        assert r.data == expected

    clock.advance(days=30)
    expired = api.get(f"/v1/coupons/{dashed}", tenant.pos).data
    assert (expired["usable_now"], expired["reason"]) == (False, "expired")
    assert expired["message"] == "This coupon expired at 2026-11-30T00:00:00+00:00."

    for unknown in ("ZZZZ-ZZZZ-ZZZZ-ZZZZ", "x", "%21%21%21%21%21"):
        r = api.get(f"/v1/coupons/{unknown}", tenant.pos)
        assert r.status_code == 404 and r.data["error"]["code"] == "coupon_not_found", unknown


def test_a_not_yet_started_or_used_up_code_says_so(api: Api, tenant: TenantKeys, clock: Any) -> None:
    assert api.post(BASE, tenant.admin, _shared(limits={"starts_at": "2026-11-10T00:00:00Z",
                                                        "uses_per_code": 1})).status_code == 201
    early = api.get("/v1/coupons/WELCOME10", tenant.pos).data
    assert (early["usable_now"], early["reason"], early["uses_left"]) == (False, "not_started", 1)
    clock.advance(days=10)
    state = coupon_store.get_code(tenant.tenant_id, "WELCOME10")
    assert state is not None
    transactions.write(lambda tx: coupon_store.count_code_use(tx, tenant.tenant_id, state, 1, clock.now()))
    used = api.get("/v1/coupons/WELCOME10", tenant.pos).data
    assert (used["usable_now"], used["reason"], used["uses"], used["uses_left"]) == (False, "used_up", 1, 0)


# --- isolation and roles ----------------------------------------------------------------------

def test_another_tenants_campaigns_and_codes_are_not_found(api: Api, tenant: TenantKeys, other_tenant: TenantKeys,
                                                          clock: Any) -> None:
    assert api.post(BASE, tenant.admin, _shared()).status_code == 201
    for key in (other_tenant.admin, other_tenant.support):
        r = api.get(f"{BASE}/welcome", key)
        assert r.status_code == 404 and r.data["error"]["code"] == "campaign_not_found"
    assert api.get(f"{BASE}/welcome/codes", other_tenant.admin).status_code == 404
    put = api.put(f"{BASE}/welcome", other_tenant.admin, {"status": "paused"})
    assert put.status_code == 404
    for key in (other_tenant.pos, other_tenant.admin, other_tenant.support):
        r = api.get("/v1/coupons/WELCOME10", key)
        assert r.status_code == 404 and r.data["error"]["code"] == "coupon_not_found"
    assert api.get(BASE, other_tenant.admin).data["items"] == []
    assert api.get(f"{BASE}/welcome", tenant.admin).data["status"] == "active"
    # A cursor of one tenant's list is refused on another's.
    assert api.post(BASE, tenant.admin, _shared(id="second", code="SECOND")).status_code == 201
    cursor = api.get(f"{BASE}?limit=1", tenant.admin).data["cursor"]
    assert api.get(f"{BASE}?limit=1&cursor={cursor}", other_tenant.admin).status_code == 400


def test_roles(api: Api, tenant: TenantKeys) -> None:
    for key in (tenant.pos, tenant.support, tenant.agency):
        r = api.post(BASE, key, _shared())
        assert r.status_code == 403 and r.data["error"]["code"] == "forbidden"
    for key in (tenant.pos, tenant.support):
        assert api.put(f"{BASE}/welcome", key, {"status": "paused"}).status_code == 403
        assert api.get(f"{BASE}/welcome/codes", key).status_code == 403
    assert api.get(BASE, tenant.pos).status_code == 403
    assert api.get("/v1/coupons/WELCOME10", tenant.agency).status_code == 403
