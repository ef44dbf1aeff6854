"""One of every resource a path parameter can name, seeded through the API for the isolation tests.

Each tenant's ids are unique to it (`iso-a-...`, generated card numbers and customer ids) and every name it
chooses carries its marker (e.g. `ISOLATION-A-7f3`), so an answer that shows another tenant's data is
detectable whatever its shape. `Guard` snapshots every table, bucket and queue, so a test can prove that
calls made with one tenant's keys changed nothing outside that tenant.

With `people=True` each tenant also gets signed-in people, made through the real invitation and sign-in routes:
a staff member of its agency, a tenant admin and a support operator (Person: cookie and CSRF token), plus one
pending invitation. Their e-mails (`<role>.iso-a@people.example`) are secret values like the ids.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chalice.test import Client
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends

from app import app
from chalicelib import clock as rules_clock
from chalicelib.domain.roles import Role
from chalicelib.schemas.keys import KeyCreate
from chalicelib.services.integrations import webhooks
from chalicelib.services.reporting.reports import service as report_service
from chalicelib.services.tenancy import keys as api_keys
from chalicelib.services.tenancy.scopes import Scope
from chalicelib.settings import settings
from chalicelib.storage.aws import client
from chalicelib.storage.loyalty import coalition_scope
from chalicelib.storage.tables import TABLES
from infra.local import wallet_keys
from infra.local.gateway import install_gateway_responses
from infra.local.resources import create_resources
from tests.conftest import _reset_caches
from tests.functional import people as staff
from tests.functional import phone_codes
from tests.functional.conftest import Api, TenantKeys, make_agency, make_tenant
from tests.functional.jobqueue import drain, receive_all, run_worker
from tests.functional.people import Person

MARKER_SUFFIX = "7f3"
PERIOD = {"from": "2026-11-01", "to": "2026-11-03"}


@dataclass
class Seeded:
    """A tenant with one of each resource; `ids` maps a resource name to its id."""

    keys: TenantKeys
    tag: str
    marker: str
    partner: str
    ids: dict[str, str] = field(default_factory=dict)
    people: dict[str, Person] = field(default_factory=dict)
    """Signed-in people by role (agency, tenant_admin, support); empty unless seeded with people."""
    emails: set[str] = field(default_factory=set)
    """Every e-mail address of this tenant's people, the pending invitation's included."""

    @property
    def tenant_id(self) -> str:
        return self.keys.tenant_id

    @property
    def key_by_role(self) -> dict[str, str]:
        return {"agency": self.keys.agency, "tenant_admin": self.keys.admin, "pos": self.keys.pos,
                "support": self.keys.support}

    @property
    def user_ids(self) -> set[str]:
        return {p.user_id for p in self.people.values()}

    def owns(self, partition: str, item: dict[str, Any] | None = None) -> bool:
        """Is this partition key one of this tenant's (its tenant, partner tenant, agency or coalition)?

        The identity table is the platform's, not partitioned by tenant: there the tenant owns its own
        people's accounts and sessions (`user#<uid>`, spent MFA codes `totp#<uid>`, `email#<address>`), the
        admin counters of its scopes (`scope#<partition>`) and the invitations to them (`invite#<id>`, by the
        scope the item names); sign-in attempt counters (`limit#...`) and pending sign-ins (`signin#...`) are
        the bookkeeping of whoever signs in. Everything else there (the other tenant's people) is not its own.
        """
        owners = (self.tenant_id, self.partner, f"agency#{self.keys.agency_id}", coalition_scope(self.ids["coalition"]))
        if any(partition == o or partition.startswith(o + "#") for o in owners):
            return True
        kind, _, rest = partition.partition("#")
        if kind in ("user", "totp"):
            return rest in self.user_ids
        if kind == "email":
            return rest in self.emails
        if kind == "scope":
            return self.owns(rest)
        if kind == "invite":
            scope = ((item or {}).get("gsi1pk") or {}).get("S", "")
            return scope.startswith("invites#") and self.owns(scope.removeprefix("invites#"))
        return kind in ("limit", "signin")

    def secret_values(self) -> set[str]:
        """Values no other tenant may ever be shown: the marker, every id this tenant's seeding chose or got,
        its people's user ids and e-mails."""
        return {self.marker, *self.ids.values(), *self.user_ids, *self.emails} - {self.ids["version"]}


def _ok(r: Any, *statuses: int) -> Any:
    assert r.status_code in statuses, (r.status_code, r.data)
    return r.data


TINY_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
"""A 1x1 PNG for the tenant's image library."""


def seed(api: Api, keys: TenantKeys, tag: str, phone_base: int) -> Seeded:
    """Create one of each resource for `keys`' tenant (and a partner tenant of its agency, for a coalition)."""
    t = f"iso-{tag}"
    marker = f"ISOLATION-{tag.upper()}-{MARKER_SUFFIX}"
    partner = make_tenant(api, keys.agency, keys.agency_id, f"{keys.tenant_id}-partner")
    s = Seeded(keys, tag, marker, partner.tenant_id)
    ids = s.ids
    admin, pos = keys.admin, keys.pos
    phones = [f"+7916{phone_base + i:07d}" for i in range(3)]
    ids.update(phone=phones[0], phone2=phones[1], tenant=keys.tenant_id, agency=keys.agency_id)

    _ok(api.post("/v1/programs", admin, {"id": f"{t}-prog", "name": f"{marker} points", "earning": {"rate_bps": 500},
                                         "redemption": {"point_value": 100, "max_share_bps": 3000}}), 201)
    _ok(api.post("/v1/programs", admin, {"id": f"{t}-gift", "name": f"{marker} gift", "kind": "gift", "gift": {}}),
        201)
    ids.update(program=f"{t}-prog", gift_program=f"{t}-gift", version="1")
    _ok(api.post("/v1/stores", admin, {"id": f"{t}-store", "name": f"{marker} store", "region": "moscow"}), 201)
    ids["store"] = f"{t}-store"

    card = _ok(api.post("/v1/cards", pos, {"program_id": ids["program"], "customer": {
        "phone": phones[0], "email": f"{t}@example.com", "first_name": marker}}), 201)
    ids["card"] = card["number"]
    ids["customer"] = _ok(api.get(f"/v1/customers?card={card['number']}", admin), 200)["customer_id"]
    ids["customer2"] = _ok(api.post("/v1/customers", admin, {"phone": phones[1], "first_name": marker}),
                           201)["customer_id"]
    ids["receipt"] = f"{t}-r1"
    _ok(api.post("/v1/purchases", pos, {"receipt_id": ids["receipt"], "card_number": ids["card"],
                                        "store_id": ids["store"], "total": 50_000,
                                        "items": [{"sku": "latte", "category": "coffee", "quantity": 1,
                                                   "amount": 50_000}]}), 200)
    ids["gift_card"] = _ok(api.post("/v1/gift-cards", pos, {"sale_id": f"{t}-sale", "program_id": ids["gift_program"],
                                                            "amount": 50_000}), 201)["number"]

    ids["coupon_campaign"], ids["coupon_code"] = f"{t}-coupons", f"ISO{tag.upper()}CODE"
    _ok(api.post("/v1/coupon-campaigns", admin, {
        "id": ids["coupon_campaign"], "name": f"{marker} coupons", "program_id": ids["program"], "mode": "shared",
        "code": ids["coupon_code"], "effect": {"kind": "percent_off", "value": 1000}}), 201)
    ids["segment"] = _ok(api.post("/v1/segments", admin, {"name": f"{marker} segment", "filter": {}}),
                         201)["segment_id"]
    ids["template"] = f"{t}-tpl"
    _ok(api.post("/v1/templates", admin, {"id": ids["template"], "name": f"{marker} template", "channel": "sms",
                                          "body": "{{ first_name }}: {{ balance }}"}), 201)
    ids["asset"] = _ok(api.post("/v1/assets", admin, {"filename": f"{marker}.png", "data_base64": TINY_PNG}),
                       201)["id"]
    ids["survey"] = f"{t}-survey"
    _ok(api.post("/v1/surveys", admin, {
        "id": ids["survey"], "title": f"{marker} survey", "kind": "feedback", "status": "active",
        "questions": [{"id": "nps", "type": "nps", "label": "Recommend us?", "required": True}]}), 201)
    _ok(api.put("/v1/mail-settings", admin, {"sms_sender_id": f"Iso{tag.upper()}"}), 200)
    ids["verification"] = _ok(api.post(f"/v1/public/verifications/{keys.tenant_id}", None, {"phone": phones[2]}),
                              201)["verification_id"]
    ids["proof"] = phone_codes.proof_for(api, keys.tenant_id, phones[2])
    ids["campaign"] = f"{t}-mail"
    _ok(api.post("/v1/campaigns", admin, {
        "id": ids["campaign"], "name": f"{marker} mail", "segment_id": ids["segment"], "channel": "sms",
        "template_id": ids["template"], "send_at": "2026-12-01T10:00:00Z"}), 201)
    ids["report"] = _ok(api.post("/v1/reports", admin, {"type": "ledger", "program_id": ids["program"], **PERIOD}),
                        202)["report_id"]
    report_service.build(keys.tenant_id, ids["report"])
    ids["import"] = _ok(api.post("/v1/customer-imports/inline", admin, {
        "csv": f"phone;first_name\n{phones[2]};{marker}\n", "filename": f"{t}.csv"}), 201)["import_id"]
    ids["webhook"] = _ok(api.post("/v1/webhooks", admin, {"url": f"https://hooks.example.com/{t}",
                                                          "events": ["card.issued"], "description": marker}),
                         201)["id"]
    ids["batch"] = f"{t}-batch"
    _ok(api.post("/v1/pos/batches", pos, {"batch_id": ids["batch"], "store_id": ids["store"], "receipts": [
        {"kind": "purchase", "receipt_id": f"{t}-offline-1", "card_number": ids["card"], "total": 10_000,
         "items": [{"sku": "latte", "category": "coffee", "quantity": 1, "amount": 10_000}],
         "purchased_at": "2026-11-02T09:00:00Z"}]}), 202)
    wallet_keys.ensure_configured()  # the test pass certificates, as `make run` makes them
    ids["pass_serial"] = _ok(api.get(f"/v1/cards/{ids['card']}/wallet/google", pos), 200)["serial_number"]
    ids.update(device=f"{t}-device", pass_type=settings.wallet_pass_type_id)
    ids["series"] = _ok(api.post("/v1/card-series", admin, {"program_id": ids["program"], "count": 2,
                                                            "name": f"{marker} series"}), 201)["series_id"]
    ids["key"] = next(k["key_id"] for k in _ok(api.get("/v1/keys", admin), 200)["items"] if k["role"] == "pos")
    ids["coalition"] = f"{t}-club"
    _ok(api.post("/v1/agency/coalitions", keys.agency, {
        "coalition_id": ids["coalition"], "name": f"{marker} club", "members": [keys.tenant_id, partner.tenant_id],
        "program": {"id": f"{t}-club", "name": f"{marker} club points", "earning": {"rate_bps": 500}}}), 201)
    drain()
    return s


def seed_people(api: Api, s: Seeded) -> None:
    """Through the real routes: an agency staff member (invited with the agency key, its own scope), a tenant
    admin and a support operator (invited with the tenant admin key), each accepted and signed in (MFA enrolled
    where the role needs it), and one invitation left pending.

    `ids["user"]` is the support operator (a member of the tenant only), `ids["invitation"]` the pending one.
    """
    keys = s.keys
    for role, key in (("agency", keys.agency), ("tenant_admin", keys.admin), ("support", keys.admin)):
        email = f"{role.replace('_', '-')}.iso-{s.tag}@people.example"
        staff.invite_and_join(api, None, email, role, key=key)
        s.people[role] = staff.sign_in(api, email, staff.PASSWORD, None)
        s.emails.add(email)
    pending = f"pending.iso-{s.tag}@people.example"
    s.ids["invitation"] = _ok(api.post("/v1/invitations", keys.admin, {"email": pending, "role": "support"}),
                              201)["invitation_id"]
    s.emails.add(pending)
    s.ids["user"] = s.people["support"].user_id


# --- the world: two seeded tenants of two agencies -------------------------------------------------------


@dataclass
class World:
    api: Api
    a: Seeded
    b: Seeded
    platform_key: str


def seeded_world(people: bool = False) -> Iterator[World]:
    """Both tenants seeded in a fresh moto and app client: a module-scoped fixture's body (seeding takes seconds).

    `people`: each tenant also gets its signed-in people and a pending invitation (seed_people).

    The webhook subscriptions cache (a minute per tenant, not reset by tests/conftest.py) is cleared on both
    sides, so the endpoints seeded here are not seen by later modules' tenants of the same ids.
    """
    rules_clock.freeze(datetime(2026, 11, 2, 10, 0, tzinfo=UTC))
    with mock_aws():
        _reset_caches()
        webhooks.clear_cache()
        create_resources(stage="test")
        install_gateway_responses()
        if people:
            staff.verify_sender()
        platform_key = api_keys.create(Scope.platform(), KeyCreate(role=Role.PLATFORM, name="p"), "test").secret
        with Client(app) as client:
            api = Api(client)
            a_keys = make_tenant(api, make_agency(api, platform_key, "acme-agency"), "acme-agency", "coffee-house")
            b_keys = make_tenant(api, make_agency(api, platform_key, "rival-agency"), "rival-agency", "fuel-net")
            a, b = seed(api, a_keys, "a", 1110000), seed(api, b_keys, "b", 2220000)
            if people:
                seed_people(api, a)
                seed_people(api, b)
            yield World(api, a, b, platform_key)
    _reset_caches()
    webhooks.clear_cache()
    rules_clock.unfreeze()


# --- snapshots -----------------------------------------------------------------------------------------------


def _queue_names() -> list[str]:
    return [settings.jobs_queue, settings.mail_queue, settings.reports_queue, settings.webhooks_queue,
            settings.wallet_queue]


def take_queued() -> list[str]:
    """Every message body on the app's queues, taken off them."""
    bodies: list[str] = []
    for name in _queue_names():
        while batch := receive_all(name):
            bodies.extend(batch)
    return bodies


def table_items() -> dict[tuple[str, str, str], dict[str, Any]]:
    """Every item of every table, keyed by (table, pk, sk), as DynamoDB JSON.

    Read from moto's in-memory backend rather than by Scan: a consistent Scan of every table through the
    mocked HTTP layer takes most of a second, and the sweeps take a dozen snapshots.
    """
    backend = dynamodb_backends[DEFAULT_ACCOUNT_ID][settings.region]
    out: dict[tuple[str, str, str], dict[str, Any]] = {}
    for model in TABLES:
        name = model.Meta.table_name
        for item in backend.get_table(name).all_items():
            attrs = item.to_json()["Attributes"]
            out[(name, attrs["pk"]["S"], attrs["sk"]["S"])] = attrs
    return out


def s3_objects() -> dict[tuple[str, str], str]:
    """Every object of every bucket: (bucket, key) -> ETag."""
    s3 = client("s3")
    out: dict[tuple[str, str], str] = {}
    for bucket in (b["Name"] for b in s3.list_buckets()["Buckets"]):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                out[(bucket, obj["Key"])] = obj["ETag"]
    return out


def mentions(text: str, values: set[str]) -> list[str]:
    return sorted(v for v in values if v and v in text)


def as_text(data: Any) -> str:
    return data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, default=str)


def owned_by_others(attacker: Seeded, items: dict[Any, Any]) -> dict[Any, Any]:
    return {k: v for k, v in items.items() if not attacker.owns(k[1], v)}


class Guard:
    """Snapshots everything outside the attacker's own partitions; `problems()` says what changed.

    S3 objects are owned by the tenant id as a path segment (`reports/<tenant>/...`); queued messages must not
    name the victim; the caller's own queued jobs are run, and must not change anything of others either.
    """

    def __init__(self, attacker: Seeded, victim: Seeded) -> None:
        self.attacker, self.victim = attacker, victim
        take_queued()
        self.items = owned_by_others(attacker, table_items())
        self.objects = s3_objects()

    def problems(self) -> list[str]:
        out = []
        everything = table_items()
        after = owned_by_others(self.attacker, everything)
        for key in sorted(set(after) | set(self.items)):
            if after.get(key) != self.items.get(key):
                out.append(f"item outside the caller's partitions changed: {key}")
        # The victim's marker and its people's e-mails are never sent by the caller: in the caller's own items they
        # can only be a copy.
        never_sent = {self.victim.marker, *self.victim.emails}
        out += [f"the caller's item {key} holds the victim's data" for key, item in sorted(everything.items())
                if key not in after and mentions(json.dumps(item, ensure_ascii=False), never_sent)]
        objects = s3_objects()
        for key in sorted(set(objects) | set(self.objects)):
            owned = bool({self.attacker.tenant_id, self.attacker.partner} & set(key[1].split("/")))
            if objects.get(key) != self.objects.get(key) and not owned:
                out.append(f"S3 object outside the caller's prefix changed: {key}")
        queued = take_queued()
        for body in queued:
            if mentions(body, {f'"{self.victim.tenant_id}"', self.victim.marker}):
                out.append(f"queued for the victim: {body[:300]}")
        jobs = [b for b in queued if '"job"' in b]
        if jobs:
            assert run_worker(jobs) == {"batchItemFailures": []}
            after_jobs = owned_by_others(self.attacker, table_items())
            out += [f"a queued job of the caller changed {k}" for k in sorted(set(after_jobs) | set(after))
                    if after_jobs.get(k) != after.get(k)]
        return out
