"""SMS campaigns never start inside the tenant's quiet hours: `create` moves them to the window's end."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.services.marketing import campaigns
from chalicelib.settings import settings
from chalicelib.storage import deliveries, queues
from tests.functional.conftest import Api, TenantKeys
from tests.functional.jobqueue import drain
from tests.functional.test_campaigns import deliver, mail_bodies
from tests.functional.test_mail_delivery import mailer, new_customer, rendering, sms_sent  # noqa: F401


@pytest.fixture
def job_delays(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """(campaign id, delay in seconds) of every fan-out job put on the jobs queue, in order."""
    seen: list[tuple[str, int]] = []
    real_send = queues.send

    def send(queue_name: str, message: dict[str, Any], *, delay_seconds: int = 0) -> str:
        if queue_name == settings.jobs_queue and message.get("job") == campaigns.FANOUT_JOB:
            seen.append((str(message["campaign_id"]), delay_seconds))
        return real_send(queue_name, message, delay_seconds=delay_seconds)

    monkeypatch.setattr(queues, "send", send)
    return seen


def segment_of_three(api: Api, tenant: TenantKeys) -> tuple[list[str], str]:
    customers = [new_customer(api, tenant.admin, f"+7916100000{i}", name=f"Anna{i}") for i in range(3)]
    r = api.post("/v1/segments", tenant.admin, {"name": "Everybody", "filter": {}})
    assert r.status_code == 201, r.data
    return customers, r.data["segment_id"]


def campaign(api: Api, key: str, segment_id: str, cid: str, channel: str, **extra: Any) -> Any:
    return api.post("/v1/campaigns", key, {"id": cid, "name": cid, "segment_id": segment_id, "channel": channel,
                                           "template_id": f"autumn-{channel}", "holdout_bps": 0, **extra})


def test_sms_campaign_created_in_quiet_hours_starts_at_their_end_and_not_before(
    api: Api, mailer: TenantKeys, clock: Any, other_tenant: TenantKeys, job_delays: list[tuple[str, int]]  # noqa: F811
) -> None:
    customers, segment_id = segment_of_three(api, mailer)
    clock.advance(hours=9, minutes=30)  # 19:30 UTC = 22:30 in Moscow, inside the default 21:00-09:00 window
    created = campaign(api, mailer.admin, segment_id, "night-sms", "sms")
    assert created.status_code == 201, created.data
    assert created.data["send_at"] == "2026-11-03T06:00:00Z", "09:00 Moscow the next morning"
    assert created.data["send_at_requested"] == "2026-11-02T19:30:00Z"
    assert created.data["status"] == "scheduled"
    assert job_delays == [("night-sms", 900)], "SQS waits at most 15 minutes; the job re-queues itself"

    campaigns.handle_job(campaigns.job_message(mailer.tenant_id, "night-sms"))
    clock.advance(hours=10, minutes=29, seconds=59)  # 08:59:59 Moscow
    campaigns.handle_job(campaigns.job_message(mailer.tenant_id, "night-sms"))
    assert job_delays[1:] == [("night-sms", 900), ("night-sms", 1)]
    waiting = api.get("/v1/campaigns/night-sms", mailer.admin).data
    assert (waiting["status"], waiting["counts"]["queued"]) == ("scheduled", 0)
    assert waiting["send_at"] == "2026-11-03T06:00:00Z"
    assert mail_bodies() == [] and sms_sent() == []

    clock.advance(seconds=1)  # 09:00 Moscow
    campaigns.handle_job(campaigns.job_message(mailer.tenant_id, "night-sms"))
    bodies = mail_bodies()
    assert sorted(json.loads(b)["customer_id"] for b in bodies) == sorted(customers)
    deliver(bodies)
    assert sorted(phone for phone, _ in sms_sent()) == ["+79161000000", "+79161000001", "+79161000002"]
    assert deliveries.counts(mailer.tenant_id, "campaign", "night-sms") == {"sent": 3}, "nothing hit quiet hours"
    assert api.get("/v1/campaigns/night-sms", mailer.admin).data["status"] == "sent"
    assert api.get("/v1/campaigns/night-sms", other_tenant.admin).status_code == 404


def test_an_explicit_send_at_inside_quiet_hours_is_moved_in_the_tenant_zone(
    api: Api, mailer: TenantKeys, clock: Any  # noqa: F811
) -> None:
    _, segment_id = segment_of_three(api, mailer)
    r = api.put("/v1/mail-settings", mailer.admin, {"email_from": "news@coffee.example",
                                                    "quiet_hours": {"start": "22:00", "end": "08:30"}})
    assert r.status_code == 200, r.data
    late = campaign(api, mailer.admin, segment_id, "late", "sms", send_at="2026-11-05T23:15:00+03:00")
    assert late.status_code == 201, late.data
    assert (late.data["send_at"], late.data["send_at_requested"]) == (
        "2026-11-06T08:30:00+03:00", "2026-11-05T23:15:00+03:00"), "in the zone the request was written in"
    early = campaign(api, mailer.admin, segment_id, "early", "sms", send_at="2026-11-06T02:00:00Z")  # 05:00 Moscow
    assert (early.data["send_at"], early.data["send_at_requested"]) == ("2026-11-06T05:30:00Z", "2026-11-06T02:00:00Z")
    edge = campaign(api, mailer.admin, segment_id, "edge", "sms", send_at="2026-11-06T08:30:00+03:00")
    assert (edge.data["send_at"], edge.data["send_at_requested"]) == ("2026-11-06T08:30:00+03:00", None), "the end is open"
    day = campaign(api, mailer.admin, segment_id, "day", "sms", send_at="2026-11-06T12:00:00+03:00")
    assert (day.data["send_at"], day.data["send_at_requested"]) == ("2026-11-06T12:00:00+03:00", None)


def test_email_campaigns_are_not_moved(api: Api, mailer: TenantKeys, clock: Any) -> None:  # noqa: F811
    customers, segment_id = segment_of_three(api, mailer)
    clock.advance(hours=9, minutes=30)  # 22:30 Moscow
    created = campaign(api, mailer.admin, segment_id, "night-mail", "email")
    assert created.status_code == 201, created.data
    assert (created.data["send_at"], created.data["send_at_requested"]) == ("2026-11-02T19:30:00Z", None)
    drain()
    assert api.get("/v1/campaigns/night-mail", mailer.admin).data["status"] == "sent"
    bodies = mail_bodies()
    assert sorted(json.loads(b)["customer_id"] for b in bodies) == sorted(customers)
    deliver(bodies)
    assert deliveries.counts(mailer.tenant_id, "campaign", "night-mail") == {"sent": 3}
