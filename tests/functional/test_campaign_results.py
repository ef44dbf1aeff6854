"""Campaign results end to end: deliveries, opt-outs, and purchases in the attribution window against the control group.

Customer ids are made deterministic so that the control-group draw (a hash of
campaign and customer ids) is known: with these ids, campaign `spring25` at
30% holds out members 5, 6 and 7 and sends to members 0 to 4.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from chalicelib.domain import campaigns as rules
from chalicelib.services.customers import customers as customer_service
from chalicelib.storage import purchase_log
from tests.functional.conftest import Api, TenantKeys
from tests.functional.jobqueue import drain
from tests.functional.test_campaigns import deliver, mail_bodies
from tests.functional.test_mail_delivery import ALL_CONSENTS, mailer, rendering  # noqa: F401
from tests.functional.test_pos_rules import buy, set_program

IDS = [f"member{c}aaaaa" for c in "abcdefgh"]
CAMPAIGN = "spring25"
EMAIL_ONLY = [c for c in ALL_CONSENTS if c["kind"] == "email"]


@pytest.fixture
def members(api: Api, mailer: TenantKeys, monkeypatch: pytest.MonkeyPatch) -> list[str]:  # noqa: F811
    """Eight customers with a card each; member 3 never consented to SMS. Returns their card numbers."""
    ids: Iterator[str] = iter(IDS)
    monkeypatch.setattr(customer_service, "new_id", lambda length=12: next(ids))
    set_program(api, mailer)
    cards = []
    for i in range(8):
        customer = {"phone": f"+7916300000{i}", "first_name": f"Anna{i}",
                    "consents": EMAIL_ONLY if i == 3 else ALL_CONSENTS}
        r = api.post("/v1/cards", mailer.pos, {"program_id": "main", "customer": customer})
        assert r.status_code == 201, r.data
        assert r.data["customer_id"] == IDS[i]
        cards.append(r.data["number"])
    return cards


def campaign_body(segment_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": CAMPAIGN, "name": "Spring", "segment_id": segment_id, "channel": "sms",
            "template_id": "autumn-sms", "holdout_bps": 3000, "attribution_days": 7, **extra}


def segment(api: Api, tenant: TenantKeys) -> str:
    r = api.post("/v1/segments", tenant.admin, {"name": "Everybody", "filter": {}})
    assert r.status_code == 201, r.data
    return str(r.data["segment_id"])


def withdraw(api: Api, tenant: TenantKeys, customer_id: str, kind: str) -> None:
    r = api.post(f"/v1/customers/{customer_id}/consents", tenant.pos,
                 {"consents": [{"kind": kind, "granted": False, "source": "pos", "text_version": "2026-10"}]})
    assert r.status_code == 200, r.data


def refund(api: Api, tenant: TenantKeys, refund_id: str, receipt_id: str, amount: int | None = None) -> None:
    body: dict[str, Any] = {"refund_id": refund_id, "receipt_id": receipt_id}
    if amount is not None:
        body["amount"] = amount
    r = api.post("/v1/refunds", tenant.pos, body)
    assert r.status_code == 200, r.data


def bought(response: Any) -> None:
    assert response.status_code == 200, response.data


def test_results_attribute_window_purchases_against_the_control_group(
    api: Api, mailer: TenantKeys, members: list[str], clock: Any, other_tenant: TenantKeys  # noqa: F811
) -> None:
    tenant = mailer
    a, b, _, d, _, f, _, h = members
    target, control = IDS[:5], IDS[5:]
    assert [c for c in IDS if rules.in_control_group(CAMPAIGN, c, 3000)] == control

    bought(buy(api, tenant.pos, "p0", a, 10_000))  # before the send
    bought(buy(api, tenant.pos, "h0", h, 6_000))
    clock.advance(hours=1)
    created = api.post("/v1/campaigns", tenant.admin, campaign_body(segment(api, tenant)))
    assert created.status_code == 201, created.data
    drain()
    bodies = mail_bodies()
    assert sorted(json.loads(x)["customer_id"] for x in bodies) == target
    retired = [json.dumps({**json.loads(x), "template_id": "retired-sms"}) if json.loads(x)["customer_id"] == IDS[4]
               else x for x in bodies]  # member 4's message fails: its template is gone
    deliver(retired)

    at_send = api.get(f"/v1/campaigns/{CAMPAIGN}/results", tenant.admin)
    assert at_send.status_code == 200, at_send.data
    zero = {"buyers": 0, "receipts": 0, "revenue": 0, "refunded": 0, "conversion_bps": 0, "revenue_per_member": 0}
    assert at_send.data == {
        "campaign_id": CAMPAIGN, "status": "sent", "channel": "sms", "sent_at": "2026-11-02T11:00:00Z",
        "attribution_days": 7, "window_end": "2026-11-09T11:00:00Z", "window_open": True,
        "delivered": 3, "failed": 1, "suppressed": 1, "suppressed_by_reason": {"no_consent": 1}, "opt_outs": 0,
        "target": {"members": 5, **zero}, "control": {"members": 3, **zero},
        "conversion_uplift_bps": 0, "incremental_revenue": 0}

    clock.advance(days=1)
    bought(buy(api, tenant.pos, "p1", a, 30_000))
    bought(buy(api, tenant.pos, "p2", b, 20_000))
    bought(buy(api, tenant.pos, "f1", f, 10_000))
    withdraw(api, tenant, IDS[2], "sms")  # an opt-out from the campaign's channel
    withdraw(api, tenant, IDS[1], "email")  # another channel: not an opt-out of this campaign
    clock.advance(days=1)
    refund(api, tenant, "r2", "p2", 5_000)
    refund(api, tenant, "r0", "p0")  # refunds a sale made before the send: not the campaign's
    offline = {"purchased_at": "2026-11-02T10:30:00+00:00"}  # uploaded now, sold before the send
    bought(buy(api, tenant.pos, "p5", b, 7_000, **offline))
    bought(buy(api, tenant.pos, "p3", d, 8_000))  # never sent to (no consent), still a target member
    clock.advance(days=1)
    bought(buy(api, tenant.pos, "p4", a, 5_000))
    bought(buy(api, tenant.pos, "f1", f, 10_000))  # a replay adds nothing
    assert api.get(f"/v1/campaigns/{CAMPAIGN}/results", tenant.admin).data["window_open"] is True

    clock.advance(days=4)  # 2026-11-09T11:00Z: the window's end, excluded
    bought(buy(api, tenant.pos, "p9", a, 99_000))
    refund(api, tenant, "r4", "p4", 1_000)  # a later refund of a sale in the window still counts
    clock.advance(days=1)
    bought(buy(api, tenant.pos, "h1", h, 6_000))

    results = api.get(f"/v1/campaigns/{CAMPAIGN}/results", tenant.admin)
    assert results.status_code == 200
    data = results.data
    assert (data["window_open"], data["opt_outs"], data["delivered"], data["failed"]) == (False, 1, 3, 1)
    assert data["target"] == {"members": 5, "buyers": 3, "receipts": 4, "revenue": 57_000, "refunded": 6_000,
                              "conversion_bps": 6000, "revenue_per_member": 11_400}
    assert data["control"] == {"members": 3, "buyers": 1, "receipts": 1, "revenue": 10_000, "refunded": 0,
                               "conversion_bps": 3333, "revenue_per_member": 3333}
    assert data["conversion_uplift_bps"] == 2667, "60% - 33.33% = 26.67 points"
    assert data["incremental_revenue"] == 40_333, "57000 - 10000 x 5 / 3 = 40333.3"

    start, end = datetime.fromisoformat("2026-11-02T11:00:00+00:00"), datetime.fromisoformat(
        "2026-11-09T11:00:00+00:00")
    log = purchase_log.between(tenant.tenant_id, IDS[0], start, end)
    assert [(e.kind, e.receipt_id, e.total, e.refund_id) for e in log] == [
        ("purchase", "p1", 30_000, None), ("purchase", "p4", 5_000, None), ("refund", "p4", -1_000, "r4")]
    whole = purchase_log.between(tenant.tenant_id, IDS[1], datetime.fromisoformat("2026-11-01T00:00:00+00:00"), end)
    assert [(e.receipt_id, e.total, e.purchased_at.isoformat()) for e in whole] == [
        ("p5", 7_000, "2026-11-02T10:30:00+00:00"), ("p2", 20_000, "2026-11-03T11:00:00+00:00"),
        ("p2", -5_000, "2026-11-03T11:00:00+00:00")], "offline sales by their sale time; refunds beside their sale"

    assert api.get(f"/v1/campaigns/{CAMPAIGN}/results", other_tenant.admin).status_code == 404
    assert api.get(f"/v1/campaigns/{CAMPAIGN}/results", tenant.pos).status_code == 403
    missing = api.get("/v1/campaigns/nope/results", tenant.admin)
    assert (missing.status_code, missing.data["error"]["code"]) == (404, "campaign_not_found")


def test_a_campaign_not_yet_sent_has_no_window_and_no_uplift(
    api: Api, mailer: TenantKeys, members: list[str], clock: Any  # noqa: F811
) -> None:
    later = campaign_body(segment(api, mailer), send_at="2026-11-05T10:00:00+00:00")
    assert api.post("/v1/campaigns", mailer.admin, later).status_code == 201
    bought(buy(api, mailer.pos, "p1", members[0], 30_000))
    data = api.get(f"/v1/campaigns/{CAMPAIGN}/results", mailer.admin).data
    empty = {"members": 0, "buyers": 0, "receipts": 0, "revenue": 0, "refunded": 0, "conversion_bps": None,
             "revenue_per_member": None}
    assert data == {
        "campaign_id": CAMPAIGN, "status": "scheduled", "channel": "sms", "sent_at": None, "attribution_days": 7,
        "window_end": None, "window_open": True, "delivered": 0, "failed": 0, "suppressed": 0,
        "suppressed_by_reason": {}, "opt_outs": 0, "target": empty, "control": empty,
        "conversion_uplift_bps": None, "incremental_revenue": None}
