"""HTML e-mail end to end: templates with blocks, previews, the mail worker's multipart message, test sends."""

from __future__ import annotations

import base64
import dataclasses
import email
from email import policy
from typing import Any

import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from chalicelib.schemas.tenancy import Branding
from chalicelib.services.marketing import mail_context, templates
from chalicelib.services.tenancy import branding
from chalicelib.storage import audit as audit_store
from infra.local import outbox
from infra.local.moto_server import SerialisingMiddleware
from tests.functional.conftest import Api, TenantKeys
from tests.functional.people import Person, invite_and_join, sign_in, verify_sender
from tests.functional.test_mail_delivery import (  # noqa: F401
    ALL_CONSENTS,
    REGION,
    SENDER,
    mailer,
    message,
    rendering,
    run,
)
from tests.unit.test_email_html import png

BASE = "https://loyalty.example/api"
HOSTILE = '<script>alert("x")</script>'
BLOCKS: list[dict[str, Any]] = [
    {"type": "header", "text": "Осень в {{ tenant_name }}"},
    {"type": "text", "text": "Здравствуйте, {{ first_name }}!\n\nВаш код ниже."},  # noqa: RUF001
    {"type": "coupon"},
    {"type": "balance"},
    {"type": "button", "label": "В магазин", "url": "https://shop.example/autumn?c={{ coupon_code|urlencode }}"},  # noqa: RUF001
    {"type": "footer", "text": "Вы получили это письмо как участник программы."},
]
HTML_TEMPLATE = {"id": "autumn-html", "name": "Осень HTML", "channel": "email",
                 "subject": "Осенняя скидка для {{ first_name }}", "blocks": BLOCKS}


@pytest.fixture
def public_base(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(mail_context, "settings", dataclasses.replace(mail_context.settings, public_base_url=BASE))
    return BASE


def sent() -> list[Any]:
    return list(ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages)


def hostile_customer(api: Api, key: str) -> str:
    r = api.post("/v1/customers", key, {"phone": "+79161234567", "email": "anna@example.com", "first_name": HOSTILE,
                                        "consents": ALL_CONSENTS})
    assert r.status_code == 201, r.data
    return str(r.data["customer_id"])


def test_blocks_are_saved_with_a_derived_body_and_previewed(api: Api, tenant: TenantKeys) -> None:
    r = api.post("/v1/templates", tenant.admin, HTML_TEMPLATE)
    assert r.status_code == 201, r.data
    assert r.data["blocks"] == [{**{"text": None, "asset_id": None, "alt": None, "url": None, "label": None}, **b}
                                for b in BLOCKS]
    assert r.data["body"].startswith("Осень в {{ tenant_name }}\n\nЗдравствуйте, {{ first_name }}!")  # noqa: RUF001
    assert r.data["body"].endswith("Отписаться от рассылки: {{ unsubscribe_url }}")
    assert r.data["variables"] == ["balance", "coupon_code", "first_name", "tenant_name", "tier", "unsubscribe_url"]

    sample = api.post("/v1/templates/autumn-html/preview", tenant.admin, {})
    assert sample.status_code == 200, sample.data
    assert sample.data["subject"] == "Осенняя скидка для Anna"
    html = sample.data["html"]
    assert "Здравствуйте, Anna!</p>" in html and "SAMPLE-2026</p>" in html
    assert 'href="https://shop.example/autumn?c=SAMPLE-2026"' in html
    assert "Осень в coffee-house LLC" in html, "the tenant's own name, even for the sample recipient"


def test_the_worker_sends_multipart_with_escaped_names_and_the_unsubscribe_link(
        api: Api, mailer: TenantKeys, public_base: str) -> None:  # noqa: F811
    assert api.post("/v1/templates", mailer.admin, HTML_TEMPLATE).status_code == 201
    cid = hostile_customer(api, mailer.admin)
    assert run(message(mailer.tenant_id, cid, "email", template="autumn-html")) == []

    [raw] = sent()
    assert raw.raw_data.isascii() and "\r\n\r\n" in raw.raw_data
    parsed = email.message_from_string(raw.raw_data, policy=policy.default)
    assert parsed.get_content_type() == "multipart/alternative"
    assert parsed["Subject"] == f"Осенняя скидка для {HOSTILE}", "a subject is text: nothing to escape"
    text_part, html_part = parsed.iter_parts()
    assert (text_part.get_content_type(), html_part.get_content_type()) == ("text/plain", "text/html")
    text, html = text_part.get_content(), html_part.get_content()
    assert f"Здравствуйте, {HOSTILE}!" in text, "the plain part is plain"
    assert "<script" not in html
    assert "Здравствуйте, &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;!</p>" in html
    assert "AUT-10</p>" in html and 'href="https://shop.example/autumn?c=AUT-10"' in html
    header = str(parsed["List-Unsubscribe"]).strip()
    url = header[1:-1]
    assert url.startswith(f"{BASE}/v1/public/unsubscribe/one-click?token=")
    assert f'href="{url}"' in html and f"Отписаться от рассылки: {url}" in text, "one link in headers and parts"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    shown = next(m for m in outbox.messages() if m.kind == "email")
    assert shown.body == text and shown.html == html and shown.to_json()["has_html"] is True
    assert outbox.html_part(shown.id) == html and outbox.html_part("nope") is None
    page = outbox.render_html()
    assert f'href="{outbox.OUTBOX_HTML_PATH}?id={shown.id}"' in page and "open the HTML part" in page
    assert "<script>alert" not in page
    pages = SerialisingMiddleware(lambda environ, start: [])
    served = pages._local_page({"PATH_INFO": outbox.OUTBOX_HTML_PATH, "QUERY_STRING": f"id={shown.id}"})
    assert served is not None
    status, headers, body = served
    assert (status, body.decode()) == ("200 OK", html)
    policy_header = dict(headers)["Content-Security-Policy"]
    assert "default-src 'none'" in policy_header and "sandbox" in policy_header and "script" not in policy_header
    missing = pages._local_page({"PATH_INFO": outbox.OUTBOX_HTML_PATH, "QUERY_STRING": "id=nope"})
    assert missing is not None and missing[0] == "404 Not Found"


def test_block_errors_are_named_at_the_block(api: Api, tenant: TenantKeys) -> None:
    blocks = [{"type": "text", "text": "Hi"}, {"type": "text", "text": "line 1\n{% if first_name %}no end"}]
    r = api.post("/v1/templates", tenant.admin, {**HTML_TEMPLATE, "blocks": blocks})
    assert (r.status_code, r.data["error"]["code"]) == (422, "invalid_template"), r.data
    [detail] = r.data["error"]["details"]
    assert detail["field"] == "blocks.1.text" and detail["issue"].startswith("syntax error on line 2")
    r = api.post("/v1/templates", tenant.admin, {**HTML_TEMPLATE, "blocks": [
        {"type": "button", "label": "Go", "url": "javascript:alert(1)"}, {"type": "image", "asset_id": "missing123"}]})
    assert [d["field"] for d in r.data["error"]["details"]] == ["blocks.0.url"]
    r = api.post("/v1/templates", tenant.admin, {**HTML_TEMPLATE, "blocks": [{"type": "image",
                                                                              "asset_id": "missing123"}]})
    assert r.data["error"]["details"] == [{"field": "blocks.0.asset_id", "issue": "no image 'missing123' in the "
                                                                                   "library"}]
    r = api.post("/v1/templates", tenant.admin, {"id": "sms", "name": "S", "channel": "sms", "body": "Hi",
                                                 "blocks": [{"type": "divider"}]})
    assert (r.status_code, r.data["error"]["details"][0]["field"]) == (400, "blocks")
    r = api.post("/v1/templates", tenant.admin, {"id": "none", "name": "N", "channel": "email", "subject": "S"})
    assert (r.status_code, r.data["error"]["details"][0]["field"]) == (400, "body")
    assert api.get("/v1/templates", tenant.admin).data["items"] == []


def test_an_image_block_shows_the_library_image(api: Api, tenant: TenantKeys) -> None:
    data = base64.b64encode(png(2, 2)).decode()
    asset = api.post("/v1/assets", tenant.admin, {"filename": "logo.png", "data_base64": data}).data
    blocks = [{"type": "header", "asset_id": asset["id"], "text": "Hi"},
              {"type": "image", "asset_id": asset["id"], "alt": "Logo"}]
    draft = api.post("/v1/templates/preview", tenant.admin, {"channel": "email", "subject": "S", "blocks": blocks})
    assert draft.status_code == 200, draft.data
    assert draft.data["html"].count(f'src="{asset["url"]}"') == 2


def person(api: Api, tenant: TenantKeys, email_address: str) -> Person:
    verify_sender()
    invite_and_join(api, None, email_address, "tenant_admin", key=tenant.admin)
    return sign_in(api, email_address, "Correct-Horse-42", None)


def test_a_test_send_reaches_only_the_person_and_is_limited(api: Api, mailer: TenantKeys,  # noqa: F811
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    assert api.post("/v1/templates", mailer.admin, HTML_TEMPLATE).status_code == 201
    anna = person(api, mailer, "anna@coffee.example")
    before = len(sent())
    r = api.post("/v1/templates/autumn-html/test-send", None, {}, headers=anna.headers())
    assert r.status_code == 200, r.data
    assert {k: r.data[k] for k in ("to", "subject")} == {"to": "anna@coffee.example",
                                                          "subject": "[Test] Осенняя скидка для Anna"}
    [raw] = sent()[before:]
    parsed = email.message_from_string(raw.raw_data, policy=policy.default)
    assert parsed["To"] == "anna@coffee.example" and parsed["From"] == SENDER
    assert parsed["Subject"] == "[Test] Осенняя скидка для Anna"
    assert "SAMPLE-2026</p>" in parsed.get_body(("html",)).get_content()
    [entry] = audit_store.list_entries(mailer.tenant_id, 10, None, action="template.test_sent").items
    assert (entry.actor_email, entry.target) == ("anna@coffee.example", "template:autumn-html")

    draft = api.post("/v1/templates/test-send", None, {"subject": "Черновик {{ first_name }}",
                                                       "blocks": [{"type": "text", "text": "Текст"}]},
                     headers=anna.headers())
    assert draft.status_code == 200 and draft.data["subject"] == "[Test] Черновик Anna", draft.data

    keyed = api.post("/v1/templates/autumn-html/test-send", mailer.admin, {})
    assert (keyed.status_code, keyed.data["error"]["code"]) == (403, "session_required")
    monkeypatch.setattr(templates, "TEST_SENDS_PER_HOUR", 3)
    assert api.post("/v1/templates/autumn-html/test-send", None, {}, headers=anna.headers()).status_code == 200
    limited = api.post("/v1/templates/autumn-html/test-send", None, {}, headers=anna.headers())
    assert (limited.status_code, limited.data["error"]["code"]) == (429, "test_send_limited"), limited.data
    assert 0 < int(limited.headers["Retry-After"]) <= 3600
    assert len(sent()) == before + 3, "the refused one was not sent"


def test_a_block_that_fails_for_one_customer_is_named_and_an_update_drops_blocks(api: Api, tenant: TenantKeys) -> None:
    blocks = [{"type": "button", "label": "Go", "url": "{{ extra.link }}"}]
    r = api.post("/v1/templates/preview", tenant.admin, {"channel": "email", "subject": "S", "blocks": blocks,
                                                         "extra": {"link": "javascript:alert(1)"}})
    assert (r.status_code, r.data["error"]["code"]) == (422, "render_failed"), r.data
    assert r.data["error"]["details"] == [{"field": "blocks.0.url",
                                           "issue": "the link 'javascript:alert(1)' is not an http(s) URL"}]
    ok = api.post("/v1/templates/preview", tenant.admin, {"channel": "email", "subject": "S", "blocks": blocks,
                                                          "extra": {"link": "https://shop.example/x"}})
    assert ok.status_code == 200 and 'href="https://shop.example/x"' in ok.data["html"]

    assert api.post("/v1/templates", tenant.admin, HTML_TEMPLATE).status_code == 201
    plain = api.put("/v1/templates/autumn-html", tenant.admin, {"name": "Plain", "channel": "email",
                                                                "subject": "S", "body": "Hi {{ first_name }}",
                                                                "version": 1})
    assert plain.status_code == 200 and (plain.data["blocks"], plain.data["body"]) == (None, "Hi {{ first_name }}")
    html = api.post("/v1/templates/autumn-html/preview", tenant.admin, {}).data["html"]
    assert ">Hi Anna</p>" in html, "without blocks, the body in the brand frame"


def test_the_frame_wears_the_tenants_branding(api: Api, tenant: TenantKeys) -> None:
    """The member site's brand colour and logo reach the e-mail; a pale colour keeps its text readable."""
    data = base64.b64encode(png(2, 2)).decode()
    logo = api.post("/v1/assets", tenant.admin, {"filename": "logo.png", "data_base64": data}).data
    blocks = [{"type": "header", "text": "Hi"}, {"type": "button", "label": "Go", "url": "https://shop.example/"}]
    draft = {"channel": "email", "subject": "S", "blocks": blocks}

    before = api.post("/v1/templates/preview", tenant.admin, draft).data["html"]
    assert "background:#1f5f8b" in before and "<img" not in before, "the default brand colour, no logo"

    branding.update(tenant.tenant_id, Branding(primary_colour="#FFD400", logo_asset_id=logo["id"]), "test")
    html = api.post("/v1/templates/preview", tenant.admin, draft).data["html"]
    assert f'<img src="{logo["url"]}" alt="coffee-house LLC"' in html, "the tenant's logo heads the message"
    assert 'bgcolor="#ffd400" style="border-radius:6px;background:#ffd400;"' in html
    assert "font-weight:bold;color:#000000;" in html, "black on the pale yellow button, not white"
    assert "color:#1f2328;\">Hi</h1>" in html, "the heading falls back to dark text on white"

    branding.update(tenant.tenant_id, Branding(primary_colour="#7a1f5c"), "test")
    html = api.post("/v1/templates/preview", tenant.admin, draft).data["html"]
    assert "color:#7a1f5c;\">Hi</h1>" in html and "font-weight:bold;color:#ffffff;" in html
    assert "<img" not in html
