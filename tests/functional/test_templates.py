"""Templates through the API: create, validation errors by field, update, list, previews for a real customer, isolation."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from chalicelib.domain.templating import RenderError
from chalicelib.services.marketing import mail_context
from chalicelib.services.marketing import templates as template_service
from tests.functional.conftest import Api, TenantKeys
from tests.functional.test_pos_rules import buy, set_program

TIERS = {"metric": "spend", "levels": [
    {"id": "base", "name": "Base", "threshold": 0},
    {"id": "silver", "name": "Silver", "threshold": 150_000, "earn_multiplier_bps": 20_000},
]}
EMAIL_CONSENT = {"kind": "email", "granted": True, "source": "site", "text_version": "v1"}
WELCOME = {"id": "welcome", "name": "Welcome", "channel": "email",
           "subject": "{{ first_name }}, welcome to {{ tenant_name }}",
           "body": "Hello {{ first_name }}! Balance: {{ balance }} points, tier {{ tier }}.\n"
                   "{% if expiring_points %}{{ expiring_points }} points expire on {{ expiring_date }}.\n{% endif %}"
                   "{% if coupon_code %}Your coupon: {{ coupon_code }}\n{% endif %}"
                   "Unsubscribe: {{ unsubscribe_url }}"}
SMS = {"id": "sms-balance", "name": "Balance SMS", "channel": "sms",
       "body": "{{ first_name }}: {{ balance }} баллов"}


@pytest.fixture
def customer(api: Api, tenant: TenantKeys, clock: Any) -> str:
    """A customer with a Cyrillic first name, an e-mail consent, a card and one purchase (silver tier, 60-day expiry)."""
    set_program(api, tenant, tiers=TIERS, expiry_days=60)
    created = api.post("/v1/customers", tenant.admin, {"phone": "+79161234567", "first_name": "Анна",
                                                       "email": "anna@example.com", "consents": [EMAIL_CONSENT]})
    assert created.status_code == 201, created.data
    card = api.post("/v1/cards", tenant.pos, {"program_id": "main", "customer": {"phone": "+79161234567"}})
    assert card.status_code == 201 and card.data["customer_id"] == created.data["customer_id"], card.data
    bought = buy(api, tenant.pos, "r-1", card.data["number"], 200_000)
    assert bought.status_code == 200 and bought.data["tier"] == "silver", bought.data
    assert bought.data["balance"] == 100, bought.data
    return created.data["customer_id"]


def test_create_get_update_and_list(api: Api, tenant: TenantKeys, clock: Any) -> None:
    r = api.post("/v1/templates", tenant.admin, WELCOME)
    assert r.status_code == 201, r.data
    assert r.data == {**WELCOME, "blocks": None,
                      "variables": ["balance", "coupon_code", "expiring_date", "expiring_points",
                                    "first_name", "tenant_name", "tier", "unsubscribe_url"],
                      "version": 1, "created_at": "2026-11-02T10:00:00Z", "updated_at": "2026-11-02T10:00:00Z"}
    assert api.get("/v1/templates/welcome", tenant.admin).data == r.data
    again = api.post("/v1/templates", tenant.admin, WELCOME)
    assert again.status_code == 409 and again.data["error"]["code"] == "template_exists"

    clock.advance(hours=1)
    change = {k: v for k, v in WELCOME.items() if k != "id"} | {"subject": "Hi {{ first_name }}", "version": 1}
    updated = api.put("/v1/templates/welcome", tenant.admin, change)
    assert updated.status_code == 200, updated.data
    assert (updated.data["subject"], updated.data["version"], updated.data["updated_at"]) == (
        "Hi {{ first_name }}", 2, "2026-11-02T11:00:00Z")
    stale = api.put("/v1/templates/welcome", tenant.admin, change)
    assert stale.status_code == 409 and stale.data["error"]["code"] == "template_changed"
    bad_update = api.put("/v1/templates/welcome", tenant.admin, change | {"version": 2, "body": "{{ secret }}"})
    assert bad_update.status_code == 422
    assert api.get("/v1/templates/welcome", tenant.admin).data["version"] == 2, "a refused update writes nothing"

    assert api.post("/v1/templates", tenant.admin, SMS).status_code == 201
    first = api.get("/v1/templates?limit=1", tenant.admin)
    assert [t["id"] for t in first.data["items"]] == ["sms-balance"] and first.data["has_more"] is True
    second = api.get(f"/v1/templates?limit=1&cursor={first.data['cursor']}", tenant.admin)
    assert [t["id"] for t in second.data["items"]] == ["welcome"] and second.data["has_more"] is False
    assert api.get("/v1/templates/nope", tenant.admin).status_code == 404
    assert api.get("/v1/templates", tenant.pos).status_code == 403


@pytest.mark.parametrize("changes,status,field,issue", [
    ({"subject": None}, 400, "subject", "an e-mail template needs a subject"),
    ({"channel": "sms"}, 400, "subject", "an SMS template has no subject"),
    ({"body": "Hi {{ first_name }} {{ password }}"}, 422, "body", "unknown variable(s): password;"),
    ({"subject": "Hi\n{{ first_name }"}, 422, "subject", "syntax error on line 2: unexpected '}'"),
    ({"body": "{{ ''.__class__.__mro__ }}"}, 422, "body", "not allowed in the sandbox: access to '__mro__'"),
    ({"body": "{% for x in range(10**9) %}.{% endfor %}"}, 422, "body",
     "not allowed in the sandbox: range() is limited to 1000 items"),
    ({"body": "{{ first_name|center(1000000) }}"}, 422, "body", "not allowed in the sandbox: filter 'center'"),
])
def test_invalid_templates_are_refused_by_field(api: Api, tenant: TenantKeys, changes: dict[str, Any], status: int,
                                                field: str, issue: str) -> None:
    r = api.post("/v1/templates", tenant.admin, {**WELCOME, **changes})
    assert r.status_code == status, r.data
    details = r.data["error"]["details"]
    assert any(d["field"] == field and issue in d["issue"] for d in details), details
    assert api.get("/v1/templates/welcome", tenant.admin).status_code == 404, "nothing saved"


NESTED_LOOPS = "{% for i in range(999) %}{% for j in range(999) %}{% endfor %}{% endfor %}Hi"


@pytest.mark.parametrize("changes,field,issue", [
    ({"body": "{{ 9**9**9 }}"}, "body", "the body was stopped by the sandbox: a number too large was built"),
    ({"body": NESTED_LOOPS}, "body", "the body was stopped by the sandbox: loops ran more than 10000 iterations"),
    ({"body": "{{ 'a' * 10**9 }}"}, "body", "the body was stopped by the sandbox: a value longer than 20000"),
    ({"body": "{% for i in range(1000) %}{{ first_name * 20 }}{% endfor %}"}, "body",
     "the body is longer than 20480 characters"),
    ({"subject": "{% for i in range(100) %}{{ tier }}-{% endfor %}"}, "subject",
     "the subject is longer than 300 characters"),
    ({"body": "{% if extra.vip %}{{ (first_name ~ first_name) * 100000 }}{% endif %}"}, "body",
     "a value longer than 20000 was built"),
    ({"channel": "sms", "subject": None, "body": "{% for i in range(100) %}Привет {% endfor %}"}, "body",
     "the SMS takes 11 segments; at most 10 are allowed"),
])
def test_a_template_that_cannot_render_within_its_limits_is_refused_when_saved(
        api: Api, tenant: TenantKeys, changes: dict[str, Any], field: str, issue: str) -> None:
    r = api.post("/v1/templates", tenant.admin, {**WELCOME, **changes})
    assert (r.status_code, r.data["error"]["code"]) == (422, "render_failed"), r.data
    assert r.data["error"]["details"] == [{"field": field, "issue": r.data["error"]["details"][0]["issue"]}]
    assert issue in r.data["error"]["details"][0]["issue"]
    assert r.data["error"]["message"].startswith("The template cannot be saved: it does not render within its limits")
    assert api.get("/v1/templates/welcome", tenant.admin).status_code == 404, "nothing saved"
    assert api.post("/v1/templates", tenant.admin, WELCOME).status_code == 201
    change = {k: v for k, v in {**WELCOME, **changes}.items() if k != "id"}
    updated = api.put("/v1/templates/welcome", tenant.admin, {**change, "version": 1})
    assert (updated.status_code, updated.data["error"]["code"]) == (422, "render_failed"), updated.data
    kept = api.get("/v1/templates/welcome", tenant.admin).data
    assert (kept["version"], kept["body"], kept["subject"]) == (1, WELCOME["body"], WELCOME["subject"])


@pytest.mark.parametrize("body", [
    "{{ extra.order_id }} for {{ first_name }}",  # a key only the campaign passes
    "{% if balance > 1000000 %}{% for i in range(1000) %}{{ first_name }}{% endfor %}{% endif %}Hi",
    "{{ extra.count + 1 }} items",  # the campaign's value may be a number: not judged at save
    "{% for i in range(1000) %}.{% endfor %}",  # 1,000 characters: within the limits
])
def test_templates_that_render_within_their_limits_for_the_sample_recipient_are_saved(
        api: Api, tenant: TenantKeys, body: str) -> None:
    r = api.post("/v1/templates", tenant.admin, {**WELCOME, "body": body})
    assert r.status_code == 201, r.data
    assert api.get("/v1/templates/welcome", tenant.admin).data["body"] == body


def test_preview_for_a_real_customer_and_the_unsubscribe_link_works(api: Api, tenant: TenantKeys,
                                                                    customer: str) -> None:
    assert api.post("/v1/templates", tenant.admin, WELCOME).status_code == 201
    r = api.post("/v1/templates/welcome/preview", tenant.admin, {"customer_id": customer, "coupon_code": "HELLO-10"})
    assert r.status_code == 200, r.data
    url = r.data["body"].rsplit("Unsubscribe: ", 1)[1]
    token = parse_qs(urlsplit(url).query)["token"][0]
    assert urlsplit(url).path == "/v1/public/unsubscribe/one-click"
    expected = ("Hello Анна! Balance: 100 points, tier silver.\n100 points expire on 2027-01-01.\n"
                f"Your coupon: HELLO-10\nUnsubscribe: /v1/public/unsubscribe/one-click?token={token}")
    html = r.data.pop("html")
    assert r.data == {"subject": "Анна, welcome to coffee-house LLC", "body": expected, "sms_segments": None,
                      "encoding": None, "characters": len(expected)}
    assert "<p " in html and "Hello Анна! Balance: 100 points, tier silver.<br>" in html, "the body in the frame"
    assert f'href="/v1/public/unsubscribe/one-click?token={token}"' in html, "the footer links the same token"

    page = api.get(url)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert 'method="post"' in page.body.decode() and token in page.body.decode()
    consents = api.get(f"/v1/customers/{customer}", tenant.admin).data["consents"]
    assert all(c["granted"] for c in consents), "opening the page (or a link scanner) changes nothing"
    withdrawn = api.call("POST", url, None, raw=b"List-Unsubscribe=One-Click",
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert withdrawn.status_code == 200 and withdrawn.data["kind"] == "email"
    assert api.get("/v1/public/unsubscribe/one-click?token=forged-token-xyz").status_code == 400
    consents = api.get(f"/v1/customers/{customer}", tenant.admin).data["consents"]
    assert [(c["kind"], c["granted"]) for c in consents] == [("email", False)]


def test_sms_preview_counts_segments_and_draft_preview(api: Api, tenant: TenantKeys, customer: str) -> None:
    assert api.post("/v1/templates", tenant.admin, SMS).status_code == 201
    r = api.post("/v1/templates/sms-balance/preview", tenant.admin, {"customer_id": customer})
    assert r.data == {"subject": None, "body": "Анна: 100 баллов", "sms_segments": 1, "encoding": "UCS-2",
                      "characters": 16, "html": None}
    long_gsm = "{% for i in range(20) %}Hi {{ balance }} pts! {% endfor %}"
    draft = api.post("/v1/templates/preview", tenant.admin, {"customer_id": customer, "channel": "sms",
                                                            "body": long_gsm})
    assert draft.status_code == 200, draft.data
    assert draft.data == {"subject": None, "body": ("Hi 100 pts! " * 20).strip(), "sms_segments": 2,
                          "encoding": "GSM-7", "characters": 239, "html": None}
    bomb = ("{% for a in range(1000) %}{% for b in range(1000) %}{{ first_name }}{% endfor %}{% endfor %}")
    failed = api.post("/v1/templates/preview", tenant.admin, {"customer_id": customer, "channel": "sms",
                                                             "body": bomb})
    assert failed.status_code == 422 and failed.data["error"]["code"] == "render_failed"
    assert failed.data["error"]["details"] == [{"field": "body", "issue": "the body is longer than 1530 characters"}]
    assert api.get("/v1/templates", tenant.admin).data["items"][0]["id"] == "sms-balance", "drafts are not saved"


def test_render_for_is_what_the_mail_worker_calls(api: Api, tenant: TenantKeys, customer: str) -> None:
    assert api.post("/v1/templates", tenant.admin, SMS).status_code == 201
    values = mail_context.variables(tenant.tenant_id, tenant.tenant_id, customer, channel="sms")
    assert {k: v for k, v in values.items() if k != "unsubscribe_url"} == {
        "first_name": "Анна", "last_name": None, "balance": 100, "tier": "silver", "expiring_points": 100,
        "expiring_date": "2027-01-01", "coupon_code": None, "tenant_name": "coffee-house LLC", "extra": {}}
    assert mail_context.contact(tenant.tenant_id, customer, "sms") == "+79161234567"
    assert mail_context.contact(tenant.tenant_id, customer, "email") == "anna@example.com"
    rendered = template_service.render_for(tenant.tenant_id, "sms-balance", "sms", values)
    assert (rendered.subject, rendered.body, rendered.sms_segments, rendered.encoding) == (
        None, "Анна: 100 баллов", 1, "UCS-2")
    with pytest.raises(RenderError, match="is for sms, not email"):
        template_service.render_for(tenant.tenant_id, "sms-balance", "email", values)
    with pytest.raises(RenderError, match="does not exist"):
        template_service.render_for(tenant.tenant_id, "missing", "sms", values)
    with pytest.raises(RenderError, match="does not exist"):
        mail_context.variables(tenant.tenant_id, tenant.tenant_id, "no-such-customer")


def test_another_tenant_sees_neither_templates_nor_customers(api: Api, tenant: TenantKeys, other_tenant: TenantKeys,
                                                             customer: str) -> None:
    assert api.post("/v1/templates", tenant.admin, WELCOME).status_code == 201
    assert api.get("/v1/templates/welcome", other_tenant.admin).status_code == 404
    assert api.put("/v1/templates/welcome", other_tenant.admin,
                   {k: v for k, v in WELCOME.items() if k != "id"}).status_code == 404
    assert api.get("/v1/templates", other_tenant.admin).data["items"] == []
    own = api.post("/v1/templates", other_tenant.admin, SMS)
    assert own.status_code == 201
    other_template = api.post("/v1/templates/welcome/preview", other_tenant.admin, {"customer_id": customer})
    assert other_template.status_code == 404 and other_template.data["error"]["code"] == "template_not_found"
    other_customer = api.post("/v1/templates/sms-balance/preview", other_tenant.admin, {"customer_id": customer})
    assert other_customer.status_code == 404 and other_customer.data["error"]["code"] == "customer_not_found"
    draft = api.post("/v1/templates/preview", other_tenant.admin, {"customer_id": customer, "channel": "sms",
                                                                  "body": "{{ first_name }}"})
    assert draft.status_code == 404
    with pytest.raises(RenderError, match="does not exist"):
        template_service.render_for(other_tenant.tenant_id, "welcome", "email", {})
