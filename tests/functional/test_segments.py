"""Segments through the API: exact counts over a seeded customer base, CRUD, validation, tenant isolation."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.services.marketing import segments as segment_service
from tests.functional.conftest import Api, TenantKeys
from tests.functional.test_pos_rules import buy, set_program

TIERS = {"metric": "spend", "levels": [
    {"id": "base", "name": "Base", "threshold": 0},
    {"id": "silver", "name": "Silver", "threshold": 150_000, "earn_multiplier_bps": 20_000},
]}
SMS = {"kind": "sms", "granted": True, "source": "pos", "text_version": "v1"}
EMAIL = {"kind": "email", "granted": True, "source": "site", "text_version": "v1"}


def card_for(api: Api, tenant: TenantKeys, customer: dict[str, Any]) -> tuple[str, str]:
    r = api.post("/v1/cards", tenant.pos, {"program_id": "main", "customer": customer})
    assert r.status_code == 201, r.data
    return r.data["number"], r.data["customer_id"]


@pytest.fixture
def base(api: Api, tenant: TenantKeys, clock: Any) -> dict[str, str]:
    """Five customers, seeded through the till's and the admin's own calls; the clock ends at 2026-12-12 10:00Z.

    dmitri bought 40 days ago (his points expire in 20 days); anna, boris and
    clara joined today; eve was erased. Store spb-01 is in region spb.
    """
    assert api.post("/v1/stores", tenant.admin, {"id": "spb-01", "name": "Nevsky 1", "region": "spb"}).status_code \
        == 201
    set_program(api, tenant, tiers=TIERS, expiry_days=60)
    dmitri_card, dmitri = card_for(api, tenant, {"phone": "+79160000004", "first_name": "Dmitri"})
    assert buy(api, tenant.pos, "d-1", dmitri_card, 50_000).data["points_earned"] == 25
    clock.advance(days=40)
    anna_card, anna = card_for(api, tenant, {"phone": "+79160000001", "first_name": "Anna",
                                             "birth_date": "1990-12-20"})
    assert buy(api, tenant.pos, "a-1", anna_card, 200_000).data["tier"] == "silver"
    boris_card, boris = card_for(api, tenant, {"phone": "+79160000002", "birth_date": "1985-01-05", "tags": ["vip"],
                                               "consents": [SMS], "acquisition": {"channel": "site"}})
    assert buy(api, tenant.pos, "b-1", boris_card, 30_000, store="spb-01").status_code == 200
    clara = api.post("/v1/customers", tenant.admin, {"email": "clara@example.com", "birth_date": "2000-02-29",
                                                     "tags": ["vip", "kids"], "consents": [EMAIL],
                                                     "acquisition": {"channel": "app"}})
    assert clara.status_code == 201, clara.data
    eve = api.post("/v1/customers", tenant.admin, {"phone": "+79160000005", "tags": ["vip"], "consents": [SMS]})
    erased = api.post(f"/v1/customers/{eve.data['customer_id']}/erase", tenant.admin,
                      {"confirm": "erase", "reason": "asked to be forgotten"})
    assert erased.status_code == 200, erased.data
    return {"anna": anna, "boris": boris, "clara": clara.data["customer_id"], "dmitri": dmitri,
            "eve": eve.data["customer_id"]}


PROFILE_AND_CARD_CASES: list[tuple[dict[str, Any], set[str]]] = [
    ({}, {"anna", "boris", "clara", "dmitri"}),
    ({"tags_any": ["vip"]}, {"boris", "clara"}),
    ({"tags_all": ["vip", "kids"]}, {"clara"}),
    ({"program_id": "main"}, {"anna", "boris", "dmitri"}),
    ({"tiers": ["silver"]}, {"anna"}),
    ({"program_id": "main", "tiers": ["base"]}, {"boris", "dmitri"}),
    ({"consent": "sms"}, {"boris"}),
    ({"consent": "email"}, {"clara"}),
    ({"points_expiring_within_days": 30}, {"dmitri"}),
    ({"points_expiring_within_days": 30, "points_expiring_min": 25}, {"dmitri"}),
    ({"points_expiring_within_days": 30, "points_expiring_min": 26}, set()),
    ({"points_expiring_within_days": 60}, {"anna", "boris", "dmitri"}),
    ({"acquisition_channels": ["site", "app"]}, {"boris", "clara"}),
    ({"created_within_days": 30}, {"anna", "boris", "clara"}),
    ({"birthday_within_days": 8}, {"anna"}),
    ({"birthday_within_days": 7}, set()),
    ({"birthday_within_days": 24}, {"anna", "boris"}),
    ({"tags_any": ["vip"], "consent": "email"}, {"clara"}),
]
PURCHASE_STATS_CASES: list[tuple[dict[str, Any], set[str]]] = [
    ({"spend_min": 30_000, "spend_max": 50_000}, {"boris", "dmitri"}),
    ({"spend_min": 30_001, "spend_max": 49_999}, set()),
    ({"spend_min": 200_000}, {"anna"}),
    ({"no_purchase_for_days": 30}, {"clara", "dmitri"}),
    ({"purchased_within_days": 30}, {"anna", "boris"}),
    ({"no_purchase_for_days": 40}, {"clara", "dmitri"}),
    ({"no_purchase_for_days": 41}, {"clara"}),
    ({"store_ids": ["spb-01"]}, {"boris"}),
    ({"regions": ["moscow"]}, {"anna", "dmitri"}),
    ({"tags_any": ["vip"], "program_id": "main", "regions": ["spb"], "birthday_within_days": 30}, {"boris"}),
]


def assert_previews(api: Api, tenant: TenantKeys, base: dict[str, str],
                    cases: list[tuple[dict[str, Any], set[str]]]) -> None:
    for flt, names in cases:
        r = api.post("/v1/segments/preview", tenant.admin, {"filter": flt})
        assert r.status_code == 200, (flt, r.data)
        assert r.data["count"] == len(names), (flt, r.data)
        assert set(r.data["sample"]) == {base[n] for n in names}, flt


def test_previews_by_profile_consents_and_cards(api: Api, tenant: TenantKeys, base: dict[str, str]) -> None:
    assert_previews(api, tenant, base, PROFILE_AND_CARD_CASES)
    assert api.get("/v1/segments", tenant.admin).data["items"] == [], "a preview saves nothing"


def test_previews_by_purchase_stats(api: Api, tenant: TenantKeys, base: dict[str, str]) -> None:
    """Spend, purchase dates and stores come from the stats each purchase adds to its customer."""
    assert_previews(api, tenant, base, PURCHASE_STATS_CASES)


def test_a_preview_samples_at_most_ten_ids(api: Api, tenant: TenantKeys) -> None:
    ids = {api.post("/v1/customers", tenant.pos, {"phone": f"+7916100{i:04d}", "tags": ["bulk"]}).data["customer_id"]
           for i in range(12)}
    r = api.post("/v1/segments/preview", tenant.admin, {"filter": {"tags_all": ["bulk"]}})
    assert r.data["count"] == 12 and len(r.data["sample"]) == 10 and set(r.data["sample"]) <= ids


def test_a_saved_segment_counts_now_and_lists_members_for_mailings(api: Api, tenant: TenantKeys, base: dict[str, str],
                                                                   clock: Any) -> None:
    r = api.post("/v1/segments", tenant.admin, {"name": "Lapsed", "description": "No purchase for a month",
                                                "filter": {"no_purchase_for_days": 30, "program_id": "main"}})
    assert r.status_code == 201, r.data
    seg = r.data
    assert (seg["name"], seg["version"], seg["filter"]) == (
        "Lapsed", 1, {**{k: None for k in seg["filter"]}, "no_purchase_for_days": 30, "program_id": "main"})
    count = api.get(f"/v1/segments/{seg['segment_id']}/count", tenant.admin)
    assert count.status_code == 200
    assert (count.data["segment_id"], count.data["count"]) == (seg["segment_id"], 1)
    assert count.data["at"].startswith("2026-12-12T10:00:00")

    members = list(segment_service.members(tenant.tenant_id, seg["segment_id"]))
    assert [m.customer_id for m in members] == [base["dmitri"]]
    dmitri = members[0]
    assert (dmitri.scope, dmitri.tier, dmitri.balance, dmitri.consents) == (tenant.tenant_id, "base", 25, {})
    assert len(dmitri.card_numbers) == 1 and dmitri.cards[0].program_id == "main"

    clock.advance(days=25)  # anna and boris bought 25 days ago: not lapsed yet; clara has no card of main
    assert api.get(f"/v1/segments/{seg['segment_id']}/count", tenant.admin).data["count"] == 1
    clock.advance(days=5)  # exactly 30 days: a purchase N days ago is outside the window
    assert api.get(f"/v1/segments/{seg['segment_id']}/count", tenant.admin).data["count"] == 3


def test_segment_crud_and_versions(api: Api, tenant: TenantKeys, clock: Any) -> None:
    first = api.post("/v1/segments", tenant.admin, {"name": "VIP", "filter": {"tags_any": ["vip"]}}).data
    clock.advance(seconds=1)
    second = api.post("/v1/segments", tenant.admin, {"name": "Birthdays", "filter": {"birthday_within_days": 7}}).data
    listed = api.get("/v1/segments?limit=1", tenant.admin).data
    assert [s["segment_id"] for s in listed["items"]] == [second["segment_id"]] and listed["has_more"] is True
    rest = api.get(f"/v1/segments?limit=1&cursor={listed['cursor']}", tenant.admin).data
    assert [s["segment_id"] for s in rest["items"]] == [first["segment_id"]] and rest["has_more"] is False

    path = f"/v1/segments/{first['segment_id']}"
    assert api.get(path, tenant.admin).data == first
    changed = api.put(path, tenant.admin, {"name": "VIP by e-mail", "filter": {"tags_any": ["vip"],
                                                                               "consent": "email"}, "version": 1})
    assert changed.status_code == 200, changed.data
    assert (changed.data["version"], changed.data["name"], changed.data["filter"]["consent"]) == (
        2, "VIP by e-mail", "email")
    assert changed.data["created_at"] == first["created_at"]
    stale = api.put(path, tenant.admin, {"name": "Stale edit", "filter": {}, "version": 1})
    assert stale.status_code == 409 and stale.data["error"]["code"] == "segment_changed"
    assert api.get(path, tenant.admin).data["name"] == "VIP by e-mail"

    deleted = api.delete(path, tenant.admin)
    assert deleted.status_code == 200 and deleted.data["version"] == 2
    for method in ("GET", "DELETE"):
        gone = api.call(method, path, tenant.admin)
        assert gone.status_code == 404 and gone.data["error"]["code"] == "segment_not_found"
    assert api.get(f"{path}/count", tenant.admin).status_code == 404
    assert api.put(path, tenant.admin, {"name": "x", "filter": {}}).status_code == 404
    audit = api.get("/v1/audit", tenant.admin).data["items"]
    actions = [e["action"] for e in audit if e["action"].startswith("segment.")]
    assert sorted(actions) == ["segment.created", "segment.created", "segment.deleted", "segment.updated"]


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "x", "filter": {"spend_min": 500, "spend_max": 100}}, "filter"),
    ({"name": "x", "filter": {"birthday_within_days": 61}}, "filter.birthday_within_days"),
    ({"name": "x", "filter": {"spend_min": 10.5}}, "filter.spend_min"),
    ({"name": "x", "filter": {"consent": "personal_data"}}, "filter.consent"),
    ({"name": "x", "filter": {"no_purchase_for_days": 30, "purchased_within_days": 10}}, "filter"),
    ({"name": "x", "filter": {"points_expiring_min": 10}}, "filter"),
    ({"name": "x", "filter": {"colour": "red"}}, "filter.colour"),
    ({"filter": {}}, "name"),
])
def test_invalid_segments_are_refused_with_the_field(api: Api, tenant: TenantKeys, body: dict[str, Any],
                                                      field: str) -> None:
    for path in ("/v1/segments", "/v1/segments/preview"):
        payload = body if path == "/v1/segments" else {"filter": body["filter"]}
        r = api.post(path, tenant.admin, payload)
        if path.endswith("preview") and field == "name":
            assert r.status_code == 200
            continue
        assert r.status_code == 400, (path, r.data)
        assert r.data["error"]["code"] == "validation_error"
        assert r.data["error"]["details"][0]["field"] == field, r.data
    assert api.get("/v1/segments", tenant.admin).data["items"] == []


def test_only_tenant_admins_manage_segments(api: Api, tenant: TenantKeys) -> None:
    for key in (tenant.pos, tenant.support):
        assert api.post("/v1/segments", key, {"name": "x", "filter": {}}).status_code == 403
        assert api.post("/v1/segments/preview", key, {"filter": {}}).status_code == 403
        assert api.get("/v1/segments", key).status_code == 403


def test_tenants_never_see_or_count_each_others_customers(api: Api, tenant: TenantKeys, other_tenant: TenantKeys,
                                                          base: dict[str, str]) -> None:
    mine = api.post("/v1/segments", tenant.admin, {"name": "Everyone", "filter": {}}).data
    for method in ("GET", "PUT", "DELETE"):
        r = api.call(method, f"/v1/segments/{mine['segment_id']}", other_tenant.admin,
                     {"name": "x", "filter": {}} if method == "PUT" else None)
        assert r.status_code == 404 and r.data["error"]["code"] == "segment_not_found", method
    assert api.get(f"/v1/segments/{mine['segment_id']}/count", other_tenant.admin).status_code == 404
    assert api.get("/v1/segments", other_tenant.admin).data["items"] == []

    theirs = api.post("/v1/customers", other_tenant.admin, {"phone": "+79160000009", "tags": ["vip"]}).data
    everyone = api.post("/v1/segments", other_tenant.admin, {"name": "Everyone", "filter": {}}).data
    assert api.get(f"/v1/segments/{everyone['segment_id']}/count", other_tenant.admin).data["count"] == 1
    preview = api.post("/v1/segments/preview", other_tenant.admin, {"filter": {"tags_any": ["vip"]}}).data
    assert preview == {"count": 1, "sample": [theirs["customer_id"]]}
    assert api.get(f"/v1/segments/{mine['segment_id']}/count", tenant.admin).data["count"] == 4


def test_a_filter_naming_a_program_or_store_the_tenant_lacks_is_refused(api: Api, tenant: TenantKeys) -> None:
    """It would match nobody without saying why (a typo, or another tenant's id); nothing is saved."""
    cases = [({"program_id": "no-such"}, "unknown_program", "filter.program_id"),
             ({"store_ids": ["msk-01", "spb-99"]}, "unknown_store", "filter.store_ids")]
    for flt, code, field in cases:
        for path, body in (("/v1/segments", {"name": "Typo", "filter": flt}),
                           ("/v1/segments/preview", {"filter": flt})):
            r = api.post(path, tenant.admin, body)
            assert (r.status_code, r.data["error"]["code"]) == (422, code), (path, r.data)
            assert r.data["error"]["details"][0]["field"] == field
    assert api.get("/v1/segments", tenant.admin).data["items"] == []
    saved = api.post("/v1/segments", tenant.admin, {"name": "Ok", "filter": {"store_ids": ["msk-01"]}})
    assert saved.status_code == 201, saved.data
    r = api.put(f"/v1/segments/{saved.data['segment_id']}", tenant.admin,
                {"name": "Ok", "filter": {"program_id": "no-such"}})
    assert r.status_code == 422 and r.data["error"]["code"] == "unknown_program"
    assert api.get(f"/v1/segments/{saved.data['segment_id']}", tenant.admin).data["filter"]["store_ids"] == ["msk-01"]
