"""Tenant isolation in the workers: a message names its tenant, and only that tenant's items are touched.

Queue messages are written by the app itself, but a bug upstream (or a hand-replayed dead letter) can put one
tenant's id next to another tenant's resource id. Each worker is fed such forged messages, and a message for
a tenant that does not exist, through its deployed handler: whatever it does, it reads and writes only the
named tenant's partitions (a snapshot of everything else is compared), shows nothing of the other tenant,
sends nothing on the other tenant's behalf, and does not fail the batch (there is nothing a retry could fix).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from app import app
from chalicelib.services.customers import imports as customer_import
from chalicelib.services.integrations import webhooks as webhook_service
from chalicelib.services.integrations.webhooks import Attempt
from chalicelib.services.marketing import campaigns, delivery, triggers
from chalicelib.services.pos import card_series, pos_batches
from chalicelib.services.program import coupons
from chalicelib.settings import settings
from chalicelib.storage.loyalty import coalition_scope
from tests.functional.conftest import make_tenant
from tests.functional.isolation_seed import (
    Seeded,
    World,
    mentions,
    s3_objects,
    seeded_world,
    table_items,
    take_queued,
)
from tests.functional.jobqueue import drain, sqs_event

GHOST = "ghost-tenant"
Items = dict[tuple[str, str, str], dict[str, Any]]


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    yield from seeded_world()


def run(worker: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The deployed SQS handler `worker`, called with one event of these message bodies."""
    return app.handler_map[worker](sqs_event([json.dumps(m) for m in messages]), None)


def owner_of(pk: str) -> str:
    return pk.split("#", 1)[0]


def changes(before: Items, after: Items) -> dict[tuple[str, str, str], dict[str, Any] | None]:
    return {k: after.get(k) for k in set(before) | set(after) if before.get(k) != after.get(k)}


def trespasses(message: dict[str, Any], other: Seeded, changed: dict[tuple[str, str, str], dict[str, Any] | None]
               ) -> list[str]:
    """Changed items outside the message's tenant's partitions, or inside them but showing `other`'s data.

    The forged ids the message itself carries may be echoed (a run marker keyed by the program id it was
    given, a failure reason naming the missing template): that is the message, not the other tenant's data.
    """
    out = []
    secrets = {v for v in other.secret_values() if v not in json.dumps(message)}
    for key, item in sorted(changed.items(), key=lambda kv: kv[0]):
        if owner_of(key[1]) != message["tenant_id"]:
            out.append(f"changed an item of {owner_of(key[1])!r}: {key}")
        elif item is not None and (leaked := mentions(json.dumps(item), secrets)):
            out.append(f"wrote {leaked} of the other tenant into {key}")
    return out


def check_worker(worker: str, message: dict[str, Any], other: Seeded) -> list[str]:
    """Run one message; what it did wrong (empty: it touched only its own tenant and did not fail the batch)."""
    take_queued()
    before, objects = table_items(), s3_objects()
    result = run(worker, [message])
    problems = trespasses(message, other, changes(before, table_items()))
    if result != {"batchItemFailures": []}:
        problems.append(f"the batch failed: {result}")
    new_objects = {k for k in s3_objects() if objects.get(k) is None}
    problems += [f"stored {key}" for key in sorted(new_objects)]
    problems += [f"queued {body[:200]}" for body in take_queued()]
    return [f"{worker} {json.dumps(message)}: {p}" for p in problems]


def forged_jobs(tenant_id: str, b: Seeded) -> list[dict[str, Any]]:
    """Every job that names a resource, with `tenant_id` and the other tenant's resource id."""
    ids = b.ids
    return [
        campaigns.job_message(tenant_id, ids["campaign"]),
        card_series.job_message(tenant_id, ids["series"]),
        coupons.job_message(tenant_id, ids["coupon_campaign"]),
        customer_import.job_message(tenant_id, ids["import"], 0),
        pos_batches.job_message(tenant_id, ids["batch"]),
        {**triggers.job_message(tenant_id, ids["program"], date_of_run()), "position": None},
    ]


def date_of_run() -> Any:
    from chalicelib import clock

    return clock.now().date()


def test_jobs_naming_one_tenant_and_anothers_resources_touch_only_the_named_tenant(world: World) -> None:
    problems: list[str] = []
    for tenant_id in (world.a.tenant_id, GHOST):
        for message in forged_jobs(tenant_id, world.b):
            problems += check_worker("jobs_worker", message, world.b)
    assert not problems, "\n".join(problems)


def test_a_report_request_for_another_tenants_report_builds_nothing(world: World) -> None:
    problems: list[str] = []
    for tenant_id in (world.a.tenant_id, GHOST):
        problems += check_worker("reports_worker", {"tenant_id": tenant_id, "report_id": world.b.ids["report"]},
                                 world.b)
    assert not problems, "\n".join(problems)
    r = world.api.get(f"/v1/reports/{world.b.ids['report']}", world.b.keys.admin)
    assert r.status_code == 200 and r.data["status"] == "ready", "the other tenant's report is as it was"


@pytest.fixture
def outcomes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str | None]]:
    """Every mail delivery's (status, reason), as the worker got it."""
    seen: list[tuple[str, str | None]] = []
    real = delivery.deliver

    def spy(message: Any) -> Any:
        outcome = real(message)
        seen.append((outcome.status, outcome.reason))
        return outcome

    monkeypatch.setattr(delivery, "deliver", spy)
    return seen


def mail(tenant_id: str, scope: str, customer_id: str, template_id: str, n: int) -> dict[str, Any]:
    return {"v": 1, "tenant_id": tenant_id, "scope": scope, "customer_id": customer_id, "channel": "sms",
            "template_id": template_id, "source": {"kind": "campaign", "id": "iso-probe", "occasion": "probe"},
            "dedup_key": f"campaign:iso-probe:sms:{n}", "extra": {}}


def test_a_mail_message_never_reaches_or_renders_another_tenants_customer(
        world: World, outcomes: list[tuple[str, str | None]]) -> None:
    a, b = world.a, world.b
    consent = {"consents": [{"kind": "sms", "granted": True, "source": "pos", "text_version": "v1"}]}
    for s in (a, b):
        r = world.api.post(f"/v1/customers/{s.ids['customer']}/consents", s.keys.admin, consent)
        assert r.status_code == 200, r.data
    forged = [
        mail(a.tenant_id, a.tenant_id, b.ids["customer"], a.ids["template"], 1),
        mail(a.tenant_id, b.tenant_id, b.ids["customer"], b.ids["template"], 2),
        mail(a.tenant_id, coalition_scope(b.ids["coalition"]), b.ids["customer"], a.ids["template"], 3),
        mail(a.tenant_id, a.tenant_id, a.ids["customer"], b.ids["template"], 4),
        mail(GHOST, b.tenant_id, b.ids["customer"], b.ids["template"], 5),
    ]
    problems: list[str] = []
    for message in forged:
        problems += check_mail(message, b)
    assert not problems, "\n".join(problems)
    assert [status for status, _ in outcomes] == ["failed"] * len(forged), outcomes

    take_queued()
    assert run("mail_worker", [mail(a.tenant_id, a.tenant_id, a.ids["customer"], a.ids["template"], 6)]) == {
        "batchItemFailures": []}
    assert outcomes[-1] == ("sent", None), "the same message, all of one tenant, is sent: the refusals are real"


def check_mail(message: dict[str, Any], other: Seeded) -> list[str]:
    """A forged mail message may record its own failed delivery under its tenant, and nothing else."""
    before = table_items()
    result = run("mail_worker", [message])
    changed = changes(before, table_items())
    problems = trespasses(message, other, changed)
    if result != {"batchItemFailures": []}:
        problems.append(f"the batch failed: {result}")
    return [f"mail {json.dumps(message)}: {p}" for p in problems]


def test_a_webhook_attempt_for_another_tenants_endpoint_posts_nothing(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    posted: list[str] = []
    monkeypatch.setattr(webhook_service, "post",
                        lambda url, body, headers: posted.append(url) or Attempt(200, None, 1))
    event = {"id": "evt_isolation_probe", "type": "card.issued", "created_at": "2026-11-02T10:00:00Z",
             "tenant_id": world.a.tenant_id, "data": {"number": world.a.ids["card"]}}
    problems: list[str] = []
    for tenant_id in (world.a.tenant_id, GHOST):
        message = {"v": 1, "tenant_id": tenant_id, "endpoint_id": world.b.ids["webhook"], "event": event,
                   "attempt": 1}
        problems += check_worker("webhooks_worker", message, world.b)
    assert not problems, "\n".join(problems)
    assert posted == []

    own = {"v": 1, "tenant_id": world.b.tenant_id, "endpoint_id": world.b.ids["webhook"],
           "event": {**event, "tenant_id": world.b.tenant_id}, "attempt": 1}
    assert run("webhooks_worker", [own]) == {"batchItemFailures": []}
    assert posted == [f"https://hooks.example.com/iso-{world.b.tag}"], "the endpoint's own tenant does reach it"


def test_a_wallet_update_for_another_tenants_pass_pushes_nothing(world: World) -> None:
    """A pass update naming one tenant and the other tenant's pass serial: dropped, nothing pushed or queued."""
    problems: list[str] = []
    for tenant_id in (world.a.tenant_id, GHOST):
        message = {"v": 1, "tenant_id": tenant_id, "serial": world.b.ids["pass_serial"], "tag": 1, "attempt": 1}
        problems += check_worker("wallet_worker", message, world.b)
    assert not problems, "\n".join(problems)


def test_purging_a_tenant_leaves_a_tenant_whose_id_it_prefixes_alone(world: World) -> None:
    """`fuel` is purged; `fuel-net` (the other seeded tenant), whose every key starts with `fuel`, keeps all."""
    b = world.b
    fuel = make_tenant(world.api, b.keys.agency, b.keys.agency_id, "fuel")
    card = world.api.post("/v1/cards", fuel.pos, {"program_id": "main", "customer": {"phone": b.ids["phone"]}})
    assert card.status_code == 201, card.data
    bought = world.api.post("/v1/purchases", fuel.pos, {
        "receipt_id": "fuel-r1", "card_number": card.data["number"], "store_id": "msk-01", "total": 10_000,
        "items": [{"sku": "a95", "category": "fuel", "quantity": 1, "amount": 10_000}]})
    assert bought.status_code == 200, bought.data
    take_queued()
    before = table_items()
    assert world.api.delete("/v1/agency/tenants/fuel?confirm=fuel", b.keys.agency).status_code == 202
    drain()
    changed = changes(before, table_items())
    # Besides the purged tenant's own partitions, only the agency's audit trail (the deletion) changes.
    agency_audit = (settings.audit_table, f"agency#{b.keys.agency_id}")
    assert changed and all(owner_of(k[1]) == "fuel" or k[:2] == agency_audit for k in changed), sorted(
        k for k in changed if owner_of(k[1]) != "fuel")
    assert not [k for k, item in changed.items() if item is not None and owner_of(k[1]) == "fuel"], \
        "every item of the purged tenant is gone"
    assert world.api.get(f"/v1/cards/{b.ids['card']}", b.keys.pos).status_code == 200
    assert world.api.get(f"/v1/customers/{b.ids['customer']}", b.keys.admin).status_code == 200
