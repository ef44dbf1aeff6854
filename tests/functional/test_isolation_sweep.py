"""Tenant isolation, swept over the app's own route table with real resources on both sides.

Two tenants of two agencies are seeded with one of each resource a path parameter can name, and with signed-in
people (an agency staff member, a tenant admin, a support operator) made through the invitation and sign-in
routes (tests/functional/isolation_seed.py). Then:

* sweep 1: every route with a path parameter, for every role the other tenant holds, is called with the
  other tenant's credentials and this tenant's ids in the path (the body and query valid for the caller, so
  the call gets as far as the lookup): always 404 (or 403), in the documented error shape, never showing this
  tenant's data; paths under an owner (`/agency/tenants/{own}/keys/{theirs}`) are mixed too, and every
  list the caller can read is checked for the other tenant's data. It runs twice: with the other tenant's API
  keys (every role, public routes without one), and with its people's sessions (agency, tenant_admin,
  support: no person is a till). Routes only a person may call (`sessions_only`) answer a key 403
  `session_required`;
* sweep 2: every route whose body or query names a resource is called with the caller's own ids in the path
  and, one field at a time, the other tenant's id in that field: refused (404 / 400 / 422), except the few
  fields listed in LENIENT, where the answer says why it is harmless. With keys, except the routes only a
  person may call (switching the session's scope to the other tenant's), called with the caller's person;
* a page cursor taken from one tenant's list is refused on the other's;
* both directions, and around each sweep every table item, S3 object and queued message outside the
  caller's own partitions is compared (Guard): no call wrote anything of someone else's, nothing was queued
  for them, and the caller's own queued jobs, run, do not either.

Path parameters, body models and query models are looked up in tables below; a route with a parameter or
model they do not know fails the suite, so a new route has to be added to the sweep.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
from pydantic import BaseModel

from chalicelib.api.registry import RouteSpec, routes
from chalicelib.domain.roles import Role
from tests.functional.conftest import Api
from tests.functional.isolation_seed import Guard, Seeded, World, as_text, mentions, seeded_world
from tests.functional.people import PASSWORD, Person

ROUTES = routes()
TENANT_ROLES = (Role.POS, Role.TENANT_ADMIN, Role.AGENCY, Role.SUPPORT)
PERSON_ROLES = (Role.TENANT_ADMIN, Role.AGENCY, Role.SUPPORT)
"""The tenant-side roles a signed-in person can hold (pos is a till's)."""
KEYS, SESSIONS = "keys", "sessions"
REFUSED = {403, 404}
INVALID = {400, 422}
"""A body or query refused before any lookup, or a reference to an unknown resource in the body."""
ERROR_KEYS = {"code", "message", "details", "request_id"}

# --- what each path parameter names ------------------------------------------------------------------------

PARAMS: dict[str, Callable[[str], str]] = {
    "tenant_id": lambda path: "tenant",
    "agency_id": lambda path: "agency",
    "key_id": lambda path: "key",
    "program_id": lambda path: "program",
    "version": lambda path: "version",
    "store_id": lambda path: "store",
    "customer_id": lambda path: "customer",
    "number": lambda path: "gift_card" if path.startswith("/v1/gift-cards") else "card",
    "code": lambda path: "coupon_code",
    "campaign_id": lambda path: "coupon_campaign" if path.startswith("/v1/coupon-campaigns") else "campaign",
    "series_id": lambda path: "series",
    "coalition_id": lambda path: "coalition",
    "import_id": lambda path: "import",
    "batch_id": lambda path: "batch",
    "report_id": lambda path: "report",
    "segment_id": lambda path: "segment",
    "survey_id": lambda path: "survey",
    "template_id": lambda path: "template",
    "webhook_id": lambda path: "webhook",
    "verification_id": lambda path: "verification",
    "user_id": lambda path: "user",
    "invitation_id": lambda path: "invitation",
    "asset_id": lambda path: "asset",
    "device_id": lambda path: "device",
    "pass_type_id": lambda path: "pass_type",
    "serial": lambda path: "pass_serial",
}
OWNER_PARAMS = {"tenant_id", "coalition_id", "agency_id"}
"""Parameters that name the owner of the rest of the path: swapped alone in the mixed-ownership probes."""


class Ids(dict[str, str]):
    """A tenant's ids, remembering which of them a sample body read (those are the fields it refers to)."""

    def __init__(self, values: dict[str, str]) -> None:
        super().__init__(values)
        self.used: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.used.add(name)
        return super().__getitem__(name)


Sample = Callable[[Ids], list[dict[str, Any]]]


def uid(i: Ids) -> str:
    """A suffix unique to this mix of ids: each probe's idempotency keys and new ids are its own."""
    return f"{zlib.crc32(json.dumps(sorted(dict.items(i))).encode()):08x}"
ITEM = {"sku": "latte", "category": "coffee", "quantity": 1, "amount": 10_000}
TINY_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
AT = "2026-11-02T09:00:00Z"
SURVEY_DEF = {"title": "Probe", "kind": "feedback", "status": "active",
              "questions": [{"id": "nps", "type": "nps", "label": "Recommend us?"}]}
TIMES = {"from": "2026-11-01T00:00:00Z", "to": "2026-11-03T00:00:00Z"}
DAYS = {"from": "2026-11-01", "to": "2026-11-03"}


def _program_body(i: Ids) -> dict[str, Any]:
    return {"name": "Probe", "earning": {"rate_bps": 500}, "store_ids": [i["store"]]}


def _triggers(i: Ids) -> list[dict[str, Any]]:
    on = {"enabled": True, "channel": "sms", "template_id": i["template"]}
    return [{"welcome": on}, {"birthday": {**on, "coupon_campaign_id": i["coupon_campaign"]}},
            {"feedback": {**on, "survey_id": i["survey"]}}]


# Bodies by model (module.Class): each a list of bodies that refer to the given tenant's resources.
BODIES: dict[str, Sample] = {
    "keys.KeyCreate": lambda i: [{"role": "pos", "name": "probe", "store_id": i["store"]}],
    "keys.KeyRotate": lambda i: [{"grace_seconds": 0}],
    "tenancy.TenantCreate": lambda i: [{"tenant_id": i["tenant"], "name": "Probe",
                                        "program": {"id": "main", "name": "Probe", "earning": {"rate_bps": 500}}}],
    "tenancy.TenantUpdate": lambda i: [{"name": "Probe renamed"}],
    "tenancy.Branding": lambda i: [{"primary_colour": "#123456", "logo_asset_id": i["asset"],
                                    "sign_up_program_id": i["program"]}],
    "campaigns.CampaignCreate": lambda i: [{"id": f"probe-mail-{uid(i)}", "name": "Probe", "segment_id": i["segment"],
                                            "channel": "sms", "template_id": i["template"],
                                            "coupon_campaign_id": i["coupon_campaign"]}],
    "card_series.CardSeriesCreate": lambda i: [{"program_id": i["program"], "count": 2}],
    "coalitions.CoalitionCreate": lambda i: [{"coalition_id": f"probe-club-{uid(i)}", "name": "Probe",
                                              "program": {"id": f"probe-club-{uid(i)}", "name": "Probe",
                                                          "earning": {"rate_bps": 500}},
                                              "members": [i["tenant"], i["partner"]]}],
    "coalitions.MemberAdd": lambda i: [{"tenant_id": i["tenant"]}],
    "coupons.CampaignCreate": lambda i: [{"id": f"probe-coupons-{uid(i)}", "name": "Probe", "program_id": i["program"],
                                          "mode": "shared", "code": f"P{uid(i)}".upper(),
                                          "effect": {"kind": "percent_off", "value": 1000}}],
    "coupons.CampaignUpdate": lambda i: [{"name": "Probe renamed"}],
    "customers.CustomerCreate": lambda i: [{"phone": "+79169990001", "first_name": "Probe",
                                            "referral_code": i["card"]}],
    "customers.CustomerUpdate": lambda i: [{"first_name": "Probe"}],
    "customers.ConsentsIn": lambda i: [{"consents": [{"kind": "sms", "granted": False, "source": "pos",
                                                      "text_version": "v1"}]}],
    "customers.MergeIn": lambda i: [{"duplicate_id": i["customer2"]}],
    "customers.EraseIn": lambda i: [{"confirm": "erase", "reason": "probe"}],
    "customers.WithdrawIn": lambda i: [{"token": f"{i['tenant']}.{i['customer']}.forged"}],
    "expiry.TierAssignIn": lambda i: [{"tier": "gold", "reason": "probe", "assignment_id": f"probe-tier-{uid(i)}"}],
    "gift_cards.GiftCardSale": lambda i: [{"sale_id": f"probe-sale-{uid(i)}", "program_id": i["gift_program"],
                                           "amount": 1_000, "store_id": i["store"]}],
    "gift_cards.GiftCardTopUp": lambda i: [{"topup_id": f"probe-top-{uid(i)}", "amount": 1_000, "store_id": i["store"]}],
    "gift_cards.GiftCardAdjustmentIn": lambda i: [{"amount": 100, "reason": "probe", "adjustment_id": f"probe-adj-{uid(i)}"}],
    "imports.ImportCreate": lambda i: [{"filename": "probe.csv", "program_id": i["program"]}],
    "imports.ImportInline": lambda i: [{"csv": "phone;first_name\n+79169990000;Probe\n",
                                        "program_id": i["program"]}],
    "mail.MailSettings": lambda i: [{"sms_sender_id": "Probe"}],
    "tenancy.AgencyCreate": lambda i: [{"agency_id": i["agency"], "name": "Probe"}],
    "pos.CardIssue": lambda i: [{"program_id": i["program"]}],
    "pos.PurchaseIn": lambda i: [
        {"receipt_id": f"probe-r-{uid(i)}", "card_number": i["card"], "store_id": i["store"], "total": 10_000,
         "items": [ITEM], "coupons": [i["coupon_code"]]},
        {"receipt_id": f"probe-r-{uid(i)}", "phone": i["phone"], "store_id": i["store"], "total": 10_000, "items": [ITEM]},
        {"receipt_id": f"probe-r-{uid(i)}", "card_number": i["card"], "store_id": i["store"], "total": 10_000,
         "items": [ITEM], "gift_cards": [{"card_number": i["gift_card"], "amount": 1_000}]}],
    "pos.RefundIn": lambda i: [{"refund_id": f"probe-rf-{uid(i)}", "receipt_id": i["receipt"]}],
    "pos.BlockIn": lambda i: [{"reason": "probe"}],
    "pos.AdjustmentIn": lambda i: [{"points": 10, "reason": "probe", "adjustment_id": f"probe-adj-{uid(i)}"}],
    "pos_batches.BatchIn": lambda i: [{"batch_id": f"probe-batch-{uid(i)}", "store_id": i["store"], "receipts": [
        {"kind": "purchase", "receipt_id": f"probe-o1-{uid(i)}", "card_number": i["card"], "total": 10_000,
         "items": [ITEM], "purchased_at": AT},
        {"kind": "refund", "refund_id": f"probe-orf-{uid(i)}", "receipt_id": i["receipt"], "refunded_at": AT}]}],
    "reports.ReportCreate": lambda i: [
        {"type": "ledger", "program_id": i["program"], **DAYS},
        {"type": "campaign_results", "campaign_id": i["campaign"], **DAYS},
        {"type": "survey_results", "survey_id": i["survey"], **DAYS},
        {"type": "coalition_settlement", "coalition_id": i["coalition"], **DAYS}],
    "segments.SegmentIn": lambda i: [{"name": "Probe", "filter": {"program_id": i["program"]}},
                                     {"name": "Probe", "filter": {"store_ids": [i["store"]]}}],
    "segments.PreviewIn": lambda i: [{"filter": {"program_id": i["program"]}},
                                     {"filter": {"store_ids": [i["store"]]}}],
    "segments.SegmentUpdate": lambda i: [{"name": "Probe", "filter": {"program_id": i["program"]}}],
    "simulation.SimulationRequest": lambda i: [{**DAYS, "proposed": _program_body(i)}],
    "surveys.SurveyCreate": lambda i: [{**SURVEY_DEF, "id": f"probe-survey-{uid(i)}",
                                        "reward": {"kind": "points", "program_id": i["program"], "points": 5}}],
    "surveys.SurveyDefinition": lambda i: [{**SURVEY_DEF, "reward": {"kind": "card", "program_id": i["program"]}}],
    "surveys.InvitationIn": lambda i: [{"receipt_id": i["receipt"]}],
    "surveys.ResponseIn": lambda i: [{"answers": {"nps": 9}},
                                     {"answers": {"nps": 9}, "phone_verification": i["proof"]}],
    "templates.TemplateIn": lambda i: [{"id": f"probe-tpl-{uid(i)}", "name": "Probe", "channel": "sms", "body": "Hi"},
                                       {"id": f"probe-html-{uid(i)}", "name": "Probe", "channel": "email",
                                        "subject": "Hi", "blocks": [{"type": "image", "asset_id": i["asset"]}]}],
    "templates.DraftPreviewIn": lambda i: [
        {"customer_id": i["customer"], "channel": "sms", "body": "{{ first_name }} {{ balance }}"},
        {"customer_id": i["customer"], "coupon_code": i["coupon_code"], "channel": "sms", "body": "{{ coupon_code }}"},
        {"channel": "email", "subject": "Hi", "blocks": [{"type": "image", "asset_id": i["asset"]}]}],
    "templates.TemplateUpdate": lambda i: [{"name": "Probe", "channel": "sms", "body": "Hi"},
                                           {"name": "Probe", "channel": "email", "subject": "Hi",
                                            "blocks": [{"type": "image", "asset_id": i["asset"]}]}],
    "templates.PreviewIn": lambda i: [{"customer_id": i["customer"]},
                                      {"customer_id": i["customer"], "coupon_code": i["coupon_code"]}],
    "templates.TestSendIn": lambda i: [{"customer_id": i["customer"]},
                                       {"customer_id": i["customer"], "coupon_code": i["coupon_code"]}],
    "templates.DraftTestSendIn": lambda i: [
        {"customer_id": i["customer"], "subject": "Probe", "body": "{{ first_name }}"},
        {"subject": "Probe", "blocks": [{"type": "image", "asset_id": i["asset"], "alt": "Probe"}]}],
    "assets.AssetIn": lambda i: [{"filename": "probe.png", "data_base64": TINY_PNG}],
    "tenancy.ProgramSpec": lambda i: [{**_program_body(i), "id": f"probe-prog-{uid(i)}"}],
    "tenancy.ProgramUpdate": lambda i: [_program_body(i)],
    "tenancy.StoreSpec": lambda i: [{"id": f"probe-store-{uid(i)}", "name": "Probe"}],
    "tenancy.StoreUpdate": lambda i: [{"name": "Probe"}],
    "triggers.TriggerSettings": _triggers,
    "webhooks.WebhookCreate": lambda i: [{"url": "https://hooks.example.com/probe", "events": ["card.issued"]}],
    "webhooks.WebhookUpdate": lambda i: [{"description": "Probe"}],
    "verification.VerificationStart": lambda i: [{"phone": i["phone"]}],
    "verification.VerificationCheck": lambda i: [{"phone": i["phone"], "code": "000000"}],
    "wallet.DeviceRegistration": lambda i: [{"pushToken": "abcd0123"}],
    "wallet.DeviceLog": lambda i: [{"logs": ["probe"]}],
    # Google's callback: a message no Google key signed and naming no tenant's id (only Google can sign one; the
    # tenant and pass checks of a signed one are in test_wallet_passes.py).
    "wallet.GoogleCallback": lambda i: [{
        "protocolVersion": "ECv2SigningOnly", "signature": "MEUCIQ==",
        "intermediateSigningKey": {"signedKey": '{"keyValue":"AA==","keyExpiration":"4102444800000"}',
                                   "signatures": ["MEUCIQ=="]},
        "signedMessage": json.dumps({"classId": "x.loyalty-probe", "objectId": "x.probe-serial", "eventType": "del",
                                     "nonce": "probe-nonce-0001", "expTimeMillis": 4102444800000})}],
    # Signing in names no tenant's resource: fixed probe values (an address nobody has, links nobody got).
    "identity.SignIn": lambda i: [{"email": "nobody@probe.example", "password": "Wrong-Horse-42"}],
    "identity.SignInCode": lambda i: [{"sign_in_id": "probe-sign-in-0000", "code": "000000"}],
    "identity.PasswordForgot": lambda i: [{"email": "nobody@probe.example"}],
    "identity.PasswordReset": lambda i: [{"token": "probereset0.AAAAAAAAAAAAAAAAAAAAAAAA", "password": PASSWORD}],
    "identity.InvitationAccept": lambda i: [{"token": "probeinvite0.AAAAAAAAAAAAAAAAAAAAAAAA", "password": PASSWORD}],
    "identity.InvitationCreate": lambda i: [{"email": f"probe-{uid(i)}@probe.example", "role": "support"}],
    "identity.MemberUpdate": lambda i: [{"status": "disabled"}],
    "identity.ScopeSwitch": lambda i: [{"scope": f"tenant:{i['tenant']}"}, {"scope": f"agency:{i['agency']}"}],
}

QUERIES: dict[str, Sample] = {
    "common.PageQuery": lambda i: [{}],
    "agency.DeleteQuery": lambda i: [{"confirm": i["tenant"]}],
    "coalitions.SettlementQuery": lambda i: [TIMES],
    "customers.CustomerQuery": lambda i: [{"phone": i["phone"]}, {"card": i["card"]}],
    "customers.LinkQuery": lambda i: [{"token": f"{i['tenant']}.{i['customer']}.forged"}],
    "dashboard.DashboardQuery": lambda i: [{"program_id": i["program"]}],
    "expiry.ExpiringQuery": lambda i: [{}],
    "expiry.ProgramExpiringQuery": lambda i: [{}],
    "pos.CardLookupQuery": lambda i: [{"phone": i["phone"]}],
    "pos_batches.BatchQuery": lambda i: [{}],
    "segments.SegmentListQuery": lambda i: [{}],
    "templates.TemplateListQuery": lambda i: [{}],
    "assets.AssetListQuery": lambda i: [{}],
    "support.SupportQuery": lambda i: [{"phone": i["phone"]}, {"card": i["card"]}],
    "audit.AuditQuery": lambda i: [{}, {"actor": i["user"]}, {"action": "member."}],
    "wallet.SerialsQuery": lambda i: [{}, {"passesUpdatedSince": "0"}],
}


def model_key(model: type[BaseModel]) -> str:
    return f"{model.__module__.rsplit('.', 1)[-1]}.{model.__name__}"


def samples(table: dict[str, Sample], model: type[BaseModel] | None, ids: Ids) -> list[dict[str, Any]]:
    if model is None:
        return [{}]
    key = model_key(model)
    assert key in table, f"no sample for {key}: add one to the isolation sweep"
    return table[key](ids)


def path_for(spec: RouteSpec, ids: dict[str, str]) -> str:
    """The route's path with every parameter naming this tenant's resource."""
    return fill(spec, lambda p: ids[PARAMS[p](spec.path)])


def fill(spec: RouteSpec, pick: Callable[[str], str]) -> str:
    path = spec.path
    for param in spec.path_params:
        assert param in PARAMS, f"{spec.method} {spec.path}: unknown path parameter {param!r}; add it to the sweep"
        path = path.replace("{" + param + "}", pick(param), 1)
    return path


# --- the world: seeded once for the module ---------------------------------------------------------------


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    yield from seeded_world(people=True)


# --- probes -------------------------------------------------------------------------------------------------


@dataclass
class Probe:
    spec: RouteSpec
    role: Role | None
    path: str
    body: dict[str, Any] | None
    query: dict[str, Any]
    foreign: set[str]
    """Which of the victim's ids (by resource name) this call carries."""

    @property
    def url(self) -> str:
        return self.path + ("?" + urlencode(self.query) if self.query else "")

    @property
    def sent(self) -> str:
        return self.url + json.dumps(self.body or {}, ensure_ascii=False)

    def __str__(self) -> str:
        who = self.role.value if self.role else "public"
        return f"{who} {self.spec.method} {self.url} {json.dumps(self.body) if self.body else ''}"


Credential = str | Person | None
"""An API key, a signed-in person (their session cookie and CSRF token), or nothing (a public route)."""


def call(api: Api, credential: Credential, probe: Probe) -> Any:
    body = probe.body if probe.spec.method in ("POST", "PUT", "PATCH") else None
    if isinstance(credential, Person):
        return api.call(probe.spec.method, probe.url, None, body, headers=credential.headers())
    return api.call(probe.spec.method, probe.url, credential, body)


def refusal_problems(probe: Probe, r: Any, victim: Seeded, allowed: set[int], code: str | None = None
                     ) -> list[str]:
    """Why this answer is not a clean refusal that shows nothing of the victim's (empty when it is)."""
    problems = []
    text = as_text(r.data)
    leaked = [v for v in mentions(text, victim.secret_values()) if v not in probe.sent]
    if leaked:
        problems.append(f"shows the victim's {leaked}")
    if r.status_code not in allowed:
        problems.append(f"status {r.status_code} (expected one of {sorted(allowed)}): {text[:300]}")
    elif r.status_code >= 400:
        error = r.data.get("error") if isinstance(r.data, dict) else None
        if not isinstance(error, dict) or set(error) != ERROR_KEYS:
            problems.append(f"error shape {text[:200]}")
        elif error["request_id"] != r.headers.get("X-Request-Id"):
            problems.append("error request_id differs from X-Request-Id")
        elif code is not None and error["code"] != code:
            problems.append(f"error code {error['code']} (expected {code})")
    return [f"{probe}: {p}" for p in problems]


def role_keys(s: Seeded) -> dict[Role | None, str | None]:
    return {Role.AGENCY: s.keys.agency, Role.TENANT_ADMIN: s.keys.admin, Role.POS: s.keys.pos,
            Role.SUPPORT: s.keys.support, None: None}


def role_people(s: Seeded) -> dict[Role, Person]:
    return {Role(role): person for role, person in s.people.items()}


def credentials(s: Seeded, kind: str) -> dict[Role | None, Credential]:
    return {**role_people(s)} if kind == SESSIONS else {**role_keys(s)}


def roles_of(spec: RouteSpec, kind: str = KEYS) -> list[Role | None]:
    """The tenant-side roles that may call the route (the platform role owns no tenant); None: public.

    With sessions, only the roles a person holds, and no public route (a session changes nothing there).
    """
    if kind == SESSIONS:
        return [] if spec.public else [r for r in PERSON_ROLES if r in spec.roles]
    return [None] if spec.public else [r for r in TENANT_ROLES if r in spec.roles]


def expected(probe: Probe, kind: str) -> tuple[set[int], str | None]:
    """The statuses (and error code) a sweep-1 probe may get."""
    if kind == KEYS and probe.spec.sessions_only:
        return {403}, "session_required"
    if probe.spec.public and probe.spec.path.startswith("/v1/wallet/apple/"):
        # Apple's pass web service: a pass is reached only with its own token (without it 401, PassKit's answer),
        # and a device's passes under the caller's own tenant are none of the victim's (204).
        return {401, 204}, None
    if probe.spec.public and probe.spec.path.startswith("/v1/wallet/google/"):
        # Google's callbacks change a pass only with Google's signature: the sweep's probe has none (401).
        return {401}, "invalid_callback"
    return (REFUSED if probe.foreign - {"version"} else set(range(200, 300))), None


def victim_ids(s: Seeded) -> Ids:
    return Ids({**s.ids, "partner": s.partner})


# --- sweep 1: the other tenant's keys or people on this tenant's ids in the path ---------------------------


def probes_on_victim(attacker: Seeded, victim: Seeded, kind: str = KEYS) -> Iterator[Probe]:
    """Every route with a path parameter x every role of the attacker, the victim's ids in the path.

    The body and query carry the attacker's own ids (so they pass validation and the call reaches the
    lookup), except where they must repeat the path (`?confirm=` the tenant being deleted). A path under an
    owner parameter is also called with the attacker's own owner id and the victim's other ids
    (`/agency/tenants/{own}/reports/{victim's report}`), one owner parameter at a time.
    """
    theirs, mine = victim_ids(victim), victim_ids(attacker)
    for spec in ROUTES:
        if not spec.path_params:
            continue
        params = spec.path_params
        owners = [p for p in params if p in OWNER_PARAMS] if len(params) > 1 else []
        # A public route under the victim's own tenant id is the victim's public page (a survey form) by design.
        for own in owners if spec.public else [None, *owners]:
            named = {p: PARAMS[p](spec.path) for p in params}
            path = fill(spec, lambda p, own=own, named=named: (mine if p == own else theirs)[named[p]])
            foreign = {named[p] for p in params if p != own}
            ids = Ids({**mine, **{r: theirs[r] for r in foreign}})
            for role in roles_of(spec, kind):
                for body in samples(BODIES, spec.body, ids) if spec.body else [None]:
                    for query in samples(QUERIES, spec.query, ids):
                        yield Probe(spec, role, path, body, query, foreign)


def lists_of_attacker(attacker: Seeded, kind: str = KEYS) -> Iterator[Probe]:
    """Every GET without a path parameter, as the attacker: their own lists, which must show nothing else."""
    for spec in ROUTES:
        if spec.public or spec.path_params or spec.method != "GET":
            continue
        for role in roles_of(spec, kind):
            for query in samples(QUERIES, spec.query, victim_ids(attacker)):
                yield Probe(spec, role, spec.path, None, query, set())


@pytest.mark.parametrize("kind", [KEYS, SESSIONS])
def test_every_route_refuses_the_other_tenants_credentials_on_this_tenants_ids(world: World, kind: str) -> None:
    """With keys (every role) and with signed-in people (every role a person holds)."""
    problems: list[str] = []
    calls = 0
    for attacker, victim in ((world.b, world.a), (world.a, world.b)):
        guard = Guard(attacker, victim)
        callers = credentials(attacker, kind)
        for probe in [*lists_of_attacker(attacker, kind), *probes_on_victim(attacker, victim, kind)]:
            r = call(world.api, callers[probe.role], probe)
            calls += 1
            problems += refusal_problems(probe, r, victim, *expected(probe, kind))
        problems += guard.problems()
    assert calls > (2 if kind == KEYS else 1) * len(ROUTES), calls
    assert not problems, "\n".join(problems)


# --- sweep 2: the other tenant's ids in bodies and query strings -------------------------------------------


def requests_of(spec: RouteSpec, ids: Ids) -> list[tuple[dict[str, Any] | None, dict[str, Any]]]:
    """The (body, query) pairs the samples give for this route with these ids."""
    return [(body, query) for body in (samples(BODIES, spec.body, ids) if spec.body else [None])
            for query in samples(QUERIES, spec.query, ids)]


def probes_with_foreign_fields(attacker: Seeded, victim: Seeded) -> Iterator[Probe]:
    """Every route whose body or query names a resource: own ids in the path, one field at a time the victim's.

    One role per route (the path is the caller's own, so the role changes no lookup of the other tenant's);
    sweep 1 covers every role. A route only a person may call is probed as the caller's person of that role.
    """
    theirs, mine = victim_ids(victim), victim_ids(attacker)
    for spec in ROUTES:
        if (spec.body is None and spec.query is None) or not roles_of(spec):
            continue
        path = path_for(spec, mine)
        role = roles_of(spec)[0]
        own = Ids(mine)
        requests_of(spec, own)
        for name in sorted(own.used - {"version"}):
            for body, query in requests_of(spec, Ids({**mine, name: theirs[name]})):
                if theirs[name] in json.dumps(body) + json.dumps(query):
                    yield Probe(spec, role, path, body, query, {name})


def _coupon_ignored(r: Any, probe: Probe) -> bool:
    return [(c["applied"], c["reason"]) for c in r.data["coupons"]] == [(False, "unknown_code")]


def _nothing_more(r: Any, probe: Probe) -> bool:
    """Nothing to check beyond what every answer is checked for: none of the victim's data."""
    return True


def _code_sent_and_nothing_told(r: Any, probe: Probe) -> bool:
    return set(r.data) == {"verification_id", "expires_at", "attempts", "message"}


def _says_only_taken(r: Any, probe: Probe) -> bool:
    return r.data["error"]["code"] == "tenant_exists"


def _nothing_found(r: Any, probe: Probe) -> bool:
    return r.data["items"] == [] and not r.data["has_more"]


@dataclass(frozen=True)
class Lenient:
    why: str
    holds: Callable[[Any, Probe], bool]
    """What the answer must show (on top of showing nothing of the victim's)."""
    statuses: frozenset[int] = frozenset({200, 201})


LENIENT: dict[tuple[str, str, str], Lenient] = {}
for _path in ("/v1/purchases", "/v1/purchases/quote"):
    LENIENT[("POST", _path, "coupon_code")] = Lenient(
        "a code unknown in the caller's tenant is reported as not applied (unknown_code); the sale goes on",
        _coupon_ignored)
for _path in ("/v1/templates/preview", "/v1/templates/{template_id}/preview"):
    LENIENT[("POST", _path, "coupon_code")] = Lenient(
        "a preview's coupon_code is only a sample value for the template variable, shown as typed",
        _nothing_more)
LENIENT[("POST", "/v1/agency/tenants", "tenant")] = Lenient(
    "tenant ids are one namespace for the whole platform (they prefix every partition key): a taken id is a "
    "409 whoever holds it, and the answer says only that", _says_only_taken, frozenset({409}))

LENIENT[("GET", "/v1/audit", "user")] = Lenient(
    "an actor filter only narrows the caller's own audit trail: the other tenant's person did nothing there",
    _nothing_found, frozenset({200}))

LENIENT[("POST", "/v1/public/verifications/{tenant_id}", "phone")] = Lenient(
    "a phone is nobody's resource: a code goes to any phone typed into a tenant's form, with the same answer "
    "whether or not some tenant knows the phone (what it proves is checked where it is used)",
    _code_sent_and_nothing_told)

BATCH_ROUTE = ("POST", "/v1/pos/batches")
BATCH_ERRORS = {"card": 0, "receipt": 1}
"""The receipt of the probe batch that carries each foreign id (0: the purchase, 1: the refund)."""


def test_the_other_tenants_ids_in_bodies_and_queries_are_refused(world: World) -> None:
    """Refused up front, or (offline batches) accepted and then each receipt naming the other tenant fails."""
    problems: list[str] = []
    fields: set[tuple[str, str, str]] = set()
    followed: list[str] = []
    for attacker, victim in ((world.b, world.a), (world.a, world.b)):
        guard = Guard(attacker, victim)
        keys, people = role_keys(attacker), credentials(attacker, SESSIONS)
        batches: list[tuple[Probe, str]] = []
        for probe in probes_with_foreign_fields(attacker, victim):
            r = call(world.api, (people if probe.spec.sessions_only else keys)[probe.role], probe)
            (name,) = probe.foreign
            route = (probe.spec.method, probe.spec.path)
            fields.add((*route, name))
            lenient = LENIENT.get((*route, name))
            if route == BATCH_ROUTE and r.status_code == 202:
                batches.append((probe, name))
                problems += refusal_problems(probe, r, victim, {202})
                continue
            problems += refusal_problems(probe, r, victim, REFUSED | INVALID | (lenient.statuses if lenient else set()))
            if lenient and r.status_code in lenient.statuses and not lenient.holds(r, probe):
                problems.append(f"{probe}: allowed only because {lenient.why}, but got {as_text(r.data)[:300]}")
        problems += guard.problems()
        followed += [name for _, name in batches]
        for probe, name in batches:
            assert probe.body is not None
            status = world.api.get(f"/v1/pos/batches/{probe.body['batch_id']}", keys[probe.role])
            assert status.status_code == 200, status.data
            problems += refusal_problems(probe, status, victim, {200})
            receipt = status.data["receipts"][BATCH_ERRORS[name]]
            if status.data["status"] != "done" or receipt["status"] != "error":
                problems.append(f"{probe}: the receipt naming the other tenant's {name} was not refused: {receipt}")
    assert len(fields) > 50, sorted(fields)
    assert {("PUT", "/v1/auth/session/scope", "tenant"), ("GET", "/v1/audit", "user")} <= fields, sorted(fields)
    # The batch's own store is checked when it is uploaded (422); a receipt's card or refunded receipt only when
    # the job runs it, so those batches are accepted and followed to their end.
    assert sorted(followed) == ["card", "card", "receipt", "receipt"], followed
    assert not problems, "\n".join(problems)


def test_the_guard_sees_a_write_outside_the_callers_partitions(world: World) -> None:
    """The sweeps' "nothing changed" is only worth something if a change would be seen: here the victim's own."""
    guard = Guard(world.b, world.a)
    r = world.api.put(f"/v1/stores/{world.a.ids['store']}", world.a.keys.admin, {"name": f"{world.a.marker} moved"})
    assert r.status_code == 200, r.data
    seen = guard.problems()
    assert seen and all(world.a.tenant_id in p for p in seen), seen


def test_the_guard_sees_a_change_to_the_other_tenants_people(world: World) -> None:
    """The identity table is not partitioned by tenant: the victim's invitations and people are still watched."""
    guard = Guard(world.b, world.a)
    invitation, person = world.a.ids["invitation"], world.a.people["support"]
    r = world.api.post(f"/v1/invitations/{invitation}/resend", world.a.keys.admin)
    assert r.status_code == 200, r.data
    r = world.api.put("/v1/auth/session/scope", None, {"scope": f"tenant:{world.a.tenant_id}"},
                      headers=person.headers())
    assert r.status_code == 200, r.data
    seen = guard.problems()
    assert any(f"'invite#{invitation}'" in p for p in seen), seen
    assert any(f"'user#{person.user_id}'" in p for p in seen), seen


def test_a_page_cursor_from_the_other_tenants_list_is_refused(world: World) -> None:
    """Cursors are opaque but carry a key: one taken from the victim's list never pages through it for another."""
    problems: list[str] = []
    tried: set[str] = set()
    attacker, victim = world.b, world.a
    theirs, mine = victim_ids(victim), victim_ids(attacker)
    for spec in ROUTES:
        if spec.method != "GET" or spec.query is None or "cursor" not in spec.query.model_fields:
            continue
        if not (roles := roles_of(spec)) or roles == [None]:
            continue
        kind = SESSIONS if spec.sessions_only else KEYS  # a person's own list is read with their session
        victim_cred, attacker_cred = credentials(victim, kind)[roles[0]], credentials(attacker, kind)[roles[0]]
        first = call(world.api, victim_cred, Probe(spec, roles[0], path_for(spec, theirs), None, {"limit": 1}, set()))
        assert first.status_code == 200, (spec.path, first.data)
        if not first.data.get("cursor"):
            continue
        tried.add(spec.path)
        probe = Probe(spec, roles[0], path_for(spec, mine), None, {"limit": 1, "cursor": first.data["cursor"]},
                      {"cursor"})
        problems += refusal_problems(probe, call(world.api, attacker_cred, probe), victim, {400})
    assert len(tried) >= 8, sorted(tried)
    assert not problems, "\n".join(problems)
