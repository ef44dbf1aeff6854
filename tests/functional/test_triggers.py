"""Trigger messages end to end over moto: settings, the hourly start, the daily run, what SNS received, once each."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from chalicelib.schemas.templates import TemplateIn
from chalicelib.services.marketing import templates, triggers
from chalicelib.storage import loyalty
from tests.functional.conftest import Api, TenantKeys
from tests.functional.jobqueue import drain
from tests.functional.test_campaigns import deliver, mail_bodies
from tests.functional.test_mail_delivery import ALL_CONSENTS, mailer, rendering, sms_sent  # noqa: F401

MAIN = {"name": "Main program", "earning": {"rate_bps": 500}, "redemption": {"point_value": 100, "max_share_bps": 3000},
        "expiry_days": 30,
        "tiers": {"metric": "spend", "levels": [{"id": "silver", "name": "Silver", "threshold": 0},
                                                {"id": "gold", "name": "Gold", "threshold": 100_000}]}}
TEMPLATES = {
    "welcome-sms": "Welcome, {{ first_name }}! Balance {{ balance }}",
    "bday-sms": "Happy birthday, {{ first_name }}! +{{ extra.bonus_points }} points, code {{ coupon_code }}",
    "expiring-sms": "{{ extra.points }} points expire on {{ extra.first_day }}",
    "tier-sms": "You are {{ tier }} now",
    "winback-sms": "We miss you, {{ first_name }}",
    "feedback-sms": "Rate your visit: {{ extra.survey_url }}",
    "news-email": "News for {{ first_name }}",
}
FEEDBACK = {"id": "visit", "title": "How was your visit?", "kind": "feedback", "status": "active",
            "questions": [{"id": "nps", "type": "nps", "label": "Recommend us?", "required": True}]}
BDAY_COUPON = {"id": "bday", "name": "Birthday", "program_id": "main", "mode": "shared", "code": "HAPPYBDAY",
               "effect": {"kind": "percent_off", "value": 1500}}


def settings_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "welcome": {"enabled": True, "channel": "sms", "template_id": "welcome-sms"},
        "birthday": {"enabled": True, "channel": "sms", "template_id": "bday-sms", "days_before": 3,
                     "bonus_points": 100, "coupon_campaign_id": "bday"},
        "points_expiring": {"enabled": True, "channel": "sms", "template_id": "expiring-sms", "within_days": 14},
        "tier_upgrade": {"enabled": True, "channel": "sms", "template_id": "tier-sms"},
        "win_back": {"enabled": True, "channel": "sms", "template_id": "winback-sms", "days": 14},
        "feedback": {"enabled": True, "channel": "sms", "template_id": "feedback-sms", "survey_id": "visit"},
    }
    body.update(changes)
    return body


def prepare(api: Api, tenant: TenantKeys) -> None:
    """Program with tiers and expiry, trigger templates, a feedback survey, a birthday coupon; a weekly cap of 10
    (triggers count against the cap like any message: the default 3 would hold back Anna's fourth)."""
    r = api.put("/v1/mail-settings", tenant.admin, {"email_from": "news@coffee.example", "weekly_cap": 10})
    assert r.status_code == 200, r.data
    assert api.put("/v1/programs/main", tenant.admin, MAIN).status_code == 200
    for template_id, body in TEMPLATES.items():
        channel = "email" if template_id.endswith("email") else "sms"
        templates.create(tenant.tenant_id, TemplateIn(id=template_id, name=template_id, channel=channel, body=body,
                                                      subject="News" if channel == "email" else None), "test")
    assert api.post("/v1/surveys", tenant.admin, FEEDBACK).status_code == 201
    assert api.post("/v1/coupon-campaigns", tenant.admin, BDAY_COUPON).status_code == 201


def member(api: Api, tenant: TenantKeys, phone: str, name: str, *, born: str | None = None,
           consents: list[dict[str, Any]] | None = None) -> tuple[str, str]:
    body: dict[str, Any] = {"phone": phone, "first_name": name, "consents": ALL_CONSENTS if consents is None else consents}
    if born:
        body["birth_date"] = born
    r = api.post("/v1/customers", tenant.admin, body)
    assert r.status_code == 201, r.data
    card = api.post("/v1/cards", tenant.pos, {"program_id": "main", "customer": {"phone": phone}})
    assert card.status_code == 201, card.data
    return r.data["customer_id"], card.data["number"]


def buy(api: Api, tenant: TenantKeys, receipt: str, card: str, amount: int) -> None:
    r = api.post("/v1/purchases", tenant.pos, {"receipt_id": receipt, "card_number": card, "store_id": "msk-01",
                                               "total": amount,
                                               "items": [{"sku": "latte", "category": "coffee", "quantity": 1,
                                                          "amount": amount}]})
    assert r.status_code == 200, r.data


def texts() -> list[str]:
    return sorted(body for _, body in sms_sent())


def run_and_deliver(tenant_id: str) -> tuple[Any, list[dict[str, Any]]]:
    run = triggers.run_now(tenant_id, "main")
    bodies = mail_bodies()
    deliver(bodies)
    return run, [json.loads(b) for b in bodies]


@pytest.fixture
def shop(api: Api, mailer: TenantKeys) -> TenantKeys:  # noqa: F811
    prepare(api, mailer)
    return mailer


def test_a_day_of_triggers_sends_each_once_with_gifts_and_obeys_consent(api: Api, shop: TenantKeys,
                                                                        clock: Any) -> None:
    anna, anna_card = member(api, shop, "+79161110001", "Anna", born="1990-11-06")
    boris, boris_card = member(api, shop, "+79161110002", "Boris", consents=[])
    buy(api, shop, "r-a1", anna_card, 120_000)  # activates the card, reaches gold, earns 60 points
    buy(api, shop, "r-b1", boris_card, 50_000)
    r = api.put("/v1/programs/main/triggers", shop.admin, settings_body())
    assert r.status_code == 200, r.data
    assert r.data["birthday"]["bonus_points"] == 100 and r.data["stats"] == {} and r.data["last_run"] is None

    clock.advance(days=1)  # 3 November, 13:00 in Moscow: Anna's birthday is 3 days away
    run, messages = run_and_deliver(shop.tenant_id)
    assert (run.customers, run.queued) == (2, 6)
    assert run.by_kind == {"welcome": 2, "birthday": 1, "tier_upgrade": 1, "feedback": 2}
    keys = {m["dedup_key"] for m in messages}
    assert f"trigger:birthday:main:2026:{anna}" in keys and f"trigger:welcome:main:activation:{boris}" in keys
    assert f"trigger:feedback:main:r-a1:{anna}" in keys
    sent = texts()
    assert len(sent) == 4  # Boris has no SMS consent: his two are suppressed, nothing reaches SNS
    assert "Happy birthday, Anna! +100 points, code HAPPYBDAY" in sent
    assert "You are gold now" in sent
    assert "Welcome, Anna! Balance 160" in sent
    invitation = next(t for t in sent if t.startswith("Rate your visit: "))
    assert f"/s/{shop.tenant_id}/visit?invitation=" in invitation
    assert api.get(f"/v1/cards/{anna_card}", shop.pos).data["balance"] == 160
    bonus = [e for e in api.get(f"/v1/cards/{anna_card}/transactions", shop.support).data["items"]
             if e["reason"] == "birthday 2026"]
    assert [(e["type"], e["points"]) for e in bonus] == [("adjustment", 100)]

    again, repeated = run_and_deliver(shop.tenant_id)
    assert (again.queued, repeated) == (0, [])
    deliver([json.dumps(m) for m in messages])  # SQS delivering every message a second time
    assert len(sms_sent()) == 4
    assert api.get(f"/v1/cards/{anna_card}", shop.pos).data["balance"] == 160

    view = api.get("/v1/programs/main/triggers", shop.admin).data
    assert view["stats"]["birthday"] == {"sent": 1, "failed": 0, "suppressed": 0, "suppressed_by_reason": {}}
    assert view["stats"]["welcome"] == {"sent": 1, "failed": 0, "suppressed": 1,
                                        "suppressed_by_reason": {"no_consent": 1}}
    assert view["last_run"]["queued"] == 0 and view["last_run"]["day"] == "2026-11-03"

    clock.advance(days=17)  # 20 November: points expire on 2 December, 18 days since the last purchases
    run, messages = run_and_deliver(shop.tenant_id)
    assert run.by_kind == {"points_expiring": 2, "win_back": 2}
    assert {m["source"]["occasion"] for m in messages if m["source"]["id"] == "main.win_back"} == {"2026-11-02"}
    new = sorted(set(texts()) - set(sent))
    assert new == ["160 points expire on 2026-12-02", "We miss you, Anna"]


def test_the_hourly_start_claims_each_local_day_once_and_the_job_runs_it(api: Api, shop: TenantKeys,
                                                                         clock: Any) -> None:
    _, anna_card = member(api, shop, "+79161110003", "Anna")
    assert api.put("/v1/programs/main/triggers", shop.admin,
                   {"welcome": {"enabled": True, "template_id": "welcome-sms"}, "send_time": "14:00"}
                   ).status_code == 200
    buy(api, shop, "r-1", anna_card, 20_000)
    assert triggers.start_due(clock.now()) == []  # 13:00 in Moscow: before the 14:00 send time
    clock.advance(hours=1)
    assert triggers.start_due(clock.now()) == [(shop.tenant_id, "main", clock.now().date())]
    assert triggers.start_due(clock.now() + timedelta(minutes=59)) == []
    ran = drain()
    assert [json.loads(b)["job"] for b in ran] == ["triggers.run"]
    deliver(mail_bodies())
    assert texts() == ["Welcome, Anna! Balance 10"]
    assert api.get("/v1/programs/main/triggers", shop.admin).data["last_run"]["customers"] == 1
    clock.advance(days=1)
    assert triggers.start_due(clock.now()) == [(shop.tenant_id, "main", clock.now().date())]
    drain()
    assert mail_bodies() == []  # the welcome went out yesterday


def test_a_long_run_resumes_from_its_position_with_its_totals(api: Api, shop: TenantKeys, clock: Any) -> None:
    for i in range(5):
        _, card = member(api, shop, f"+7916222000{i}", f"Anna{i}")
        buy(api, shop, f"r-{i}", card, 1_000)
    api.put("/v1/programs/main/triggers", shop.admin, {"welcome": {"enabled": True, "template_id": "welcome-sms"}})
    original = triggers.PAGE
    triggers.PAGE = 1
    try:
        triggers.handle_job(triggers.job_message(shop.tenant_id, "main", clock.now().date()), budget_seconds=0)
        ran = drain()
    finally:
        triggers.PAGE = original
    assert len(ran) == 1 and json.loads(ran[0])["position"] is not None  # the first page ran out of budget
    assert json.loads(ran[0])["totals"]["customers"] == 1
    last = api.get("/v1/programs/main/triggers", shop.admin).data["last_run"]
    assert (last["customers"], last["queued"], last["by_kind"]) == (5, 5, {"welcome": 5})
    assert len(mail_bodies()) == 5


def test_settings_are_checked_and_belong_to_the_tenant(api: Api, shop: TenantKeys, other_tenant: TenantKeys,
                                                        clock: Any) -> None:
    def put(body: dict[str, Any], key: str = shop.admin, program: str = "main") -> Any:
        return api.put(f"/v1/programs/{program}/triggers", key, body)

    r = put({"welcome": {"enabled": True}})
    assert r.status_code == 400 and r.data["error"]["details"][0]["field"].startswith("welcome")
    r = put({"welcome": {"enabled": True, "channel": "sms", "template_id": "news-email"}})
    assert (r.status_code, r.data["error"]["code"], r.data["error"]["details"][0]["field"]) == (
        422, "template_channel", "welcome.template_id")
    r = put({"welcome": {"enabled": True, "template_id": "welcome-sms"}, "send_time": "22:30"})
    assert (r.status_code, r.data["error"]["code"]) == (422, "send_time_in_quiet_hours")
    r = put({"welcome": {"enabled": True, "channel": "email", "template_id": "news-email"}, "send_time": "22:30"})
    assert r.status_code == 200, r.data  # e-mail has no quiet hours
    r = put({"welcome": {"enabled": True, "template_id": "no-such"}})
    assert r.status_code == 404
    r = put({"feedback": {"enabled": True, "template_id": "feedback-sms", "survey_id": "no-such"}})
    assert r.status_code == 404
    assert put({}, program="no-such").status_code == 404
    assert put({}, key=shop.pos).status_code == 403
    assert api.get("/v1/programs/main/triggers", shop.support).status_code == 403

    # Another tenant's admin sees its own (default) settings for its own `main`, never these.
    theirs = api.get("/v1/programs/main/triggers", other_tenant.admin)
    assert theirs.status_code == 200 and theirs.data["welcome"]["enabled"] is False
    assert api.get("/v1/programs/main/triggers", shop.admin).data["welcome"]["channel"] == "email"


def test_a_run_only_reads_and_mails_its_own_tenant(api: Api, shop: TenantKeys, other_tenant: TenantKeys,
                                                   clock: Any) -> None:
    prepare(api, other_tenant)
    _, mine = member(api, shop, "+79163330001", "Anna")
    _, theirs = member(api, other_tenant, "+79163330002", "Zoe")
    buy(api, shop, "r-1", mine, 1_000)
    buy(api, other_tenant, "r-1", theirs, 1_000)
    for tenant in (shop, other_tenant):
        assert api.put("/v1/programs/main/triggers", tenant.admin,
                       {"welcome": {"enabled": True, "template_id": "welcome-sms"}}).status_code == 200
    run = triggers.run_now(shop.tenant_id, "main")
    bodies = [json.loads(b) for b in mail_bodies()]
    assert run.customers == 1
    assert [(b["tenant_id"], b["scope"]) for b in bodies] == [(shop.tenant_id, shop.tenant_id)]
    assert loyalty.get_card(other_tenant.tenant_id, theirs) is not None


def test_a_message_for_a_missing_tenant_or_program_records_no_run(api: Api, shop: TenantKeys, clock: Any) -> None:
    """A forged or late message (tenant deleted) must not leave a run record that no purge would ever find."""
    from chalicelib.storage import triggers as trigger_store

    for tenant_id, program_id in (("ghost-tenant", "main"), (shop.tenant_id, "no-such-program")):
        triggers.handle_job(triggers.job_message(tenant_id, program_id, clock.now().date()))
        assert trigger_store.run_state(tenant_id, program_id).dump() == {}, (tenant_id, program_id)
    assert drain() == [], "nothing queued either"
