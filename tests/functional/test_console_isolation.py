"""Tenant isolation in the console: every page x every role a person can hold, generated from the page table.

Two tenants of two agencies, each with one of each resource a page's path can name (seeded through the
API with unique, marked names) and a signed-in person per role (agency staff, tenant admin, support).
Then, for the other tenant's people:

* every page without a path parameter opens (200) for the roles it declares and is refused (403) for the
  others, and none of them shows anything of this tenant (its marker, its ids, its people's e-mails);
* every page with a path parameter, given this tenant's ids, is refused (404 or 403) and shows nothing of
  this tenant: GET pages and form posts alike (with the caller's own, valid CSRF token);
* nothing outside the caller's tenant changed (the victim's items compared before and after).

A page with a path parameter this sweep does not know fails the suite: a new page must be added here.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from typing import Any

from chalicelib.console.pages import PageSpec, pages
from chalicelib.domain.roles import Role
from tests.functional.conftest import Api, TenantKeys
from tests.functional.isolation_seed import table_items
from tests.functional.jobqueue import drain
from tests.functional.people import invite_and_join, verify_sender
from tests.functional.test_console_sign_in import Browser, hidden, signed_in
from tests.functional.test_console_templates import png

ROLES = (Role.AGENCY, Role.TENANT_ADMIN, Role.SUPPORT)
REFUSED = {403, 404}


@dataclass
class Side:
    keys: TenantKeys
    marker: str
    ids: dict[str, str] = field(default_factory=dict)
    people: dict[Role, Browser] = field(default_factory=dict)
    emails: list[str] = field(default_factory=list)

    def secrets(self) -> set[str]:
        """What the other side must never be shown."""
        return {self.marker, *self.emails, *(v for k, v in self.ids.items() if k not in COMMON_IDS)}


COMMON_IDS = {"version", "view"}
"""Ids both sides share by construction (a version number), not worth a leak check."""

# What each path parameter of a page names, by parameter name.
PARAMS: dict[str, str] = {
    "tenant_id": "tenant",
    "agency_id": "agency",
    "program_id": "program",
    "version": "version",
    "store_id": "store",
    "customer_id": "customer",
    "number": "card",
    "key_id": "key",
    "segment_id": "segment",
    "user_id": "user",
    "invitation_id": "invitation",
    "webhook_id": "webhook",
    "series_id": "series",
    "coalition_id": "coalition",
    "asset": "asset",
    "report_id": "report",
    "template_id": "template", "asset_id": "image", "view": "view",
    "coupon_campaign_id": "coupon_campaign",
    "campaign_id": "campaign",
    "survey_id": "survey",
}


def seed(api: Api, keys: TenantKeys, tag: str) -> Side:
    marker = f"CONSOLE-ISO-{tag.upper()}"
    side = Side(keys, marker)
    admin, pos = keys.admin, keys.pos
    ids = side.ids
    ids.update(tenant=keys.tenant_id, agency=keys.agency_id, version="1", asset="nothing.css")
    ok = _ok
    ok(api.post("/v1/programs", admin, {"id": f"iso-{tag}-prog", "name": f"{marker} points",
                                        "earning": {"rate_bps": 500}}), 201)
    ids["program"] = f"iso-{tag}-prog"
    ok(api.post("/v1/stores", admin, {"id": f"iso-{tag}-store", "name": f"{marker} store"}), 201)
    ids["store"] = f"iso-{tag}-store"
    card = ok(api.post("/v1/cards", pos, {"program_id": "main", "customer": {
        "phone": f"+7916{7000000 if tag == 'a' else 8000000}", "first_name": marker}}), 201)
    ids["card"], ids["customer"] = card["number"], card["customer_id"]
    ids["key"] = ok(api.post("/v1/keys", admin, {"role": "pos", "name": f"{marker} till"}), 201)["key_id"]
    ids["segment"] = ok(api.post("/v1/segments", admin, {"name": f"{marker} segment",
                                                        "filter": {"tags_any": ["vip"]}}), 201)["segment_id"]
    ids["webhook"] = ok(api.post("/v1/webhooks", admin, {"url": f"https://hooks.example.com/{tag}",
                                                          "events": ["card.issued"], "description": marker}),
                        201)["id"]
    ids["series"] = ok(api.post("/v1/card-series", admin, {"program_id": "main", "count": 2,
                                                           "name": f"{marker} series"}), 201)["series_id"]
    ids["coalition"] = f"iso-{tag}-club"
    ids["coupon_campaign"] = ok(api.post("/v1/coupon-campaigns", admin, {
        "id": f"iso-{tag}-coupons", "name": f"{marker} coupons", "program_id": "main", "mode": "shared",
        "code": f"ISO-{tag.upper()}-CODE", "effect": {"kind": "percent_off", "value": 500}}), 201)["id"]
    ids["template"] = ok(api.post("/v1/templates", admin, {"id": f"iso-{tag}-tpl", "name": f"{marker} template",
                                                            "channel": "sms", "body": marker}), 201)["id"]
    ids["image"], ids["view"] = ok(api.post("/v1/assets", admin, {"filename": f"{marker}.png", "data_base64": base64.b64encode(png()).decode()}), 201)["id"], "phone"
    ids["report"] = ok(api.post("/v1/reports", admin, {"type": "ledger", "program_id": "main", "from": "2026-11-01",
                                                        "to": "2026-11-03"}), 202)["report_id"]
    ok(api.post("/v1/templates", admin, {"id": f"iso-{tag}-camp-sms", "name": f"{marker} sms", "channel": "sms",
                                          "body": "Hi"}), 201)
    ids["campaign"] = ok(api.post("/v1/campaigns", admin, {"id": f"iso-{tag}-camp", "name": f"{marker} campaign",
                                                            "segment_id": ids["segment"], "channel": "sms",
                                                            "template_id": f"iso-{tag}-camp-sms"}), 201)["id"]
    ids["survey"] = ok(api.post("/v1/surveys", admin, {"id": f"iso-{tag}-survey", "title": f"{marker} survey",
                                                        "kind": "feedback", "questions": [
                                                            {"id": "nps", "type": "nps", "label": marker}]}), 201)["id"]
    ids["invitation"] = ok(api.post("/v1/invitations", admin, {"email": f"pending.{tag}@iso.example",
                                                                "role": "support"}), 201)["invitation_id"]
    verify_sender()
    for role, email, key in ((Role.TENANT_ADMIN, f"admin.{tag}@iso.example", admin),
                             (Role.SUPPORT, f"support.{tag}@iso.example", admin),
                             (Role.AGENCY, f"agency.{tag}@iso.example", keys.agency)):
        invite_and_join(api, None, email, role.value, key=key)
        side.emails.append(email)
        side.people[role] = signed_in(api, email, None)
    ids["user"] = _user_id(api, admin, f"support.{tag}@iso.example")
    drain()
    return side


def _ok(r: Any, status: int) -> Any:
    assert r.status_code == status, (r.status_code, r.data)
    return r.data


def _user_id(api: Api, admin: str, email: str) -> str:
    members = _ok(api.get("/v1/members", admin), 200)["items"]
    return str(next(m["user_id"] for m in members if m["email"] == email))


def fill(spec: PageSpec, ids: dict[str, str]) -> str:
    path = spec.path
    for name in re.findall(r"{(\w+)}", spec.path):
        assert name in PARAMS, f"{spec.method} {spec.path}: unknown path parameter {name!r}; add it to the sweep"
        path = path.replace("{" + name + "}", ids[PARAMS[name]])
    return path


def leaks(text: str, victim: Side, sent: str) -> list[str]:
    """The victim's values a page shows, but for those the caller sent itself (a page may say what it was asked)."""
    return sorted(value for value in victim.secrets() if value and value in text and value not in sent)


def call(browser: Browser, spec: PageSpec, path: str, csrf: str) -> Any:
    if spec.method == "GET":
        return browser.get(path)
    return browser.post(path, {"csrf": csrf})


def test_every_console_page_refuses_the_other_tenants_people(api: Api, tenant: TenantKeys,
                                                           other_tenant: TenantKeys) -> None:
    a, b = seed(api, tenant, "a"), seed(api, other_tenant, "b")
    problems: list[str] = []
    calls = 0
    for attacker, victim in ((b, a), (a, b)):
        victim_items = {k: v for k, v in table_items().items() if victim.keys.tenant_id in k[1]}
        for role, browser in attacker.people.items():
            csrf = hidden(browser.get("/console").text, "csrf")
            for spec in pages():
                if spec.public:
                    continue
                params = re.findall(r"{(\w+)}", spec.path)
                if not params and spec.method != "GET":
                    continue  # own-scope actions: their forms' own tests cover them
                path = fill(spec, {**attacker.ids, **{PARAMS[p]: victim.ids[PARAMS[p]] for p in params}})
                r = call(browser, spec, path, csrf)
                calls += 1
                # A form posted with the caller's token but no fields may be refused as incomplete (400/422)
                # before any lookup: it shows and changes nothing either (the areas' own tests post full forms).
                refused = REFUSED | ({400, 422} if spec.method == "POST" else set())
                expected = refused if params else ({200} if role in spec.roles else {403})
                if spec.path == "/console/static/{asset}":
                    expected = {404}
                if r.status_code not in expected and not (r.status_code == 303 and not params):
                    problems.append(f"{role.value} {spec.method} {path}: {r.status_code} "
                                    f"(expected {sorted(expected)})")
                shown = leaks(r.text, victim, path)
                if shown:
                    problems.append(f"{role.value} {spec.method} {path}: shows the other tenant's {shown}")
        after = {k: v for k, v in table_items().items() if victim.keys.tenant_id in k[1]}
        changed = sorted(k for k in set(after) | set(victim_items)
                         if after.get(k) != victim_items.get(k) and "#dash#" not in k[1])
        if changed:
            problems.append(f"items of {victim.keys.tenant_id} changed: {json.dumps(changed[:10])}")
    assert calls >= len([p for p in pages() if not p.public]) * 3
    assert not problems, "\n".join(problems)
