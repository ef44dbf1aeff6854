"""An admin's manual tier assignment: validation, exactly once, ledger and audit, isolation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.storage.loyalty import ledger_sum
from tests.functional.conftest import Api, TenantKeys

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
MAIN = {"name": "Main program", "earning": {"rate_bps": 500}, "redemption": {"point_value": 100, "max_share_bps": 3000}}
TIERS = {"metric": "spend", "levels": [{"id": "silver", "name": "Silver", "threshold": 0},
                                       {"id": "gold", "name": "Gold", "threshold": 100_000, "discount_bps": 500}]}


def set_program(api: Api, tenant: TenantKeys, **changes: Any) -> None:
    r = api.put("/v1/programs/main", tenant.admin, {**MAIN, **changes})
    assert r.status_code == 200, r.data


def new_card(api: Api, tenant: TenantKeys) -> str:
    r = api.post("/v1/cards", tenant.pos, {"program_id": "main", "customer": {"phone": "+79167770001"}})
    assert r.status_code == 201, r.data
    return r.data["number"]


def assign(api: Api, key: str, card: str, **body: Any) -> Any:
    return api.post(f"/v1/cards/{card}/tier", key, {"tier": "gold", "reason": "Key account", "assignment_id": "a-1",
                                                    **body})


def tier_entries(api: Api, tenant: TenantKeys, card: str) -> list[dict]:
    return [e for e in api.get(f"/v1/cards/{card}/transactions", tenant.support).data["items"] if e["type"] == "tier"]


@pytest.fixture
def tiered(api: Api, tenant: TenantKeys, clock: Any) -> TenantKeys:
    set_program(api, tenant, tiers=TIERS)
    return tenant


def test_assignment_sets_the_tier_with_a_ledger_entry_and_an_audit_entry(api: Api, tiered: TenantKeys) -> None:
    card = new_card(api, tiered)
    until = (T0 + timedelta(days=90)).isoformat()
    r = assign(api, tiered.admin, card, until=until)
    assert r.status_code == 200, r.data
    assert r.data["number"] == card and r.data["tier"] == "gold"
    assert api.get(f"/v1/cards/{card}", tiered.pos).data["tier"] == "gold"
    (entry,) = tier_entries(api, tiered, card)
    assert (entry["points"], entry["tier"], entry["previous_tier"], entry["reason"]) == (0, "gold", None,
                                                                                        "Key account")
    assert entry["actor"].startswith("tenant_admin:") and entry["at"] == "2026-11-02T10:00:00Z"
    assert ledger_sum(tiered.tenant_id, card) == 0
    audit = [a for a in api.get("/v1/audit", tiered.admin).data["items"] if a["action"] == "card.tier_assigned"]
    assert len(audit) == 1
    assert audit[0]["target"] == f"card:{card}" and audit[0]["actor"] == entry["actor"]
    assert audit[0]["detail"]["tier"] == "gold" and audit[0]["detail"]["reason"] == "Key account"
    assert audit[0]["detail"]["until"] == until.replace("Z", "+00:00")


def test_the_same_assignment_id_applies_once(api: Api, tiered: TenantKeys, clock: Any) -> None:
    card = new_card(api, tiered)
    first = assign(api, tiered.admin, card)
    clock.advance(minutes=5)
    again = assign(api, tiered.admin, card)
    assert again.status_code == 200 and again.data == first.data
    assert len(tier_entries(api, tiered, card)) == 1
    reused = assign(api, tiered.admin, card, tier="silver")
    assert reused.status_code == 422 and reused.data["error"]["code"] == "idempotency_key_reused"
    down = assign(api, tiered.admin, card, tier="silver", assignment_id="a-2", reason="Back to normal")
    assert down.status_code == 200 and down.data["tier"] == "silver"
    assert [(e["previous_tier"], e["tier"]) for e in tier_entries(api, tiered, card)] == [("gold", "silver"),
                                                                                          (None, "gold")]


def test_refusals(api: Api, tenant: TenantKeys, clock: Any) -> None:
    card = new_card(api, tenant)
    no_tiers = assign(api, tenant.admin, card)
    assert no_tiers.status_code == 422 and no_tiers.data["error"]["code"] == "program_has_no_tiers"
    set_program(api, tenant, tiers=TIERS)
    unknown = assign(api, tenant.admin, card, tier="platinum")
    assert unknown.status_code == 422 and unknown.data["error"]["code"] == "unknown_tier"
    assert unknown.data["error"]["details"][0]["field"] == "tier"
    past = assign(api, tenant.admin, card, until=(T0 - timedelta(days=1)).isoformat())
    assert past.status_code == 422 and past.data["error"]["code"] == "until_in_past"
    naive = assign(api, tenant.admin, card, until="2027-01-01T00:00:00")
    assert naive.status_code == 400
    assert assign(api, tenant.admin, card, reason="no").status_code == 400
    assert assign(api, tenant.admin, card, assignment_id="bad id!").status_code == 400
    assert api.post(f"/v1/cards/{card}/tier", tenant.admin, {"tier": "gold", "reason": "Key account"}).status_code \
        == 400
    assert assign(api, tenant.admin, "4000000000006").status_code == 404
    assert assign(api, tenant.pos, card).status_code == 403
    assert assign(api, tenant.support, card).status_code == 403
    assert tier_entries(api, tenant, card) == [], "nothing written by any refusal"
    assert api.get(f"/v1/cards/{card}", tenant.pos).data["tier"] is None


def test_another_tenants_admin_cannot_assign_this_card(api: Api, tiered: TenantKeys,
                                                       other_tenant: TenantKeys) -> None:
    card = new_card(api, tiered)
    set_program(api, other_tenant, tiers=TIERS)
    r = assign(api, other_tenant.admin, card)
    assert r.status_code == 404 and r.data["error"]["code"] == "card_not_found"
    assert tier_entries(api, tiered, card) == []
    theirs = new_card(api, other_tenant)
    assert assign(api, other_tenant.admin, theirs).status_code == 200
    mine = assign(api, tiered.admin, card)
    assert mine.status_code == 200 and mine.data["number"] == card, "assignment ids are per tenant"
    assert len(tier_entries(api, tiered, card)) == 1
