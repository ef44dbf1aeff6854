"""E-mail with RFC 2369 / RFC 8058 one-click unsubscribe headers, as SES (moto) received the raw message."""

from __future__ import annotations

import dataclasses
import email
from email import policy
from typing import Any
from urllib.parse import urlsplit

import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import RawMessage, ses_backends

from chalicelib.schemas.templates import TemplateIn
from chalicelib.services.marketing import channels, mail_context, templates
from chalicelib.storage import deliveries
from tests.functional.conftest import Api, TenantKeys
from tests.functional.test_mail_delivery import (  # noqa: F401
    ALL_CONSENTS,
    REGION,
    SENDER,
    mailer,
    message,
    new_customer,
    rendering,
    run,
    sms_sent,
)

BASE = "https://loyalty.example/api"
PATH = "/v1/public/unsubscribe/one-click"


@pytest.fixture
def public_base(monkeypatch: pytest.MonkeyPatch) -> str:
    """The stage's PUBLIC_BASE_URL, as a deployer sets it."""
    monkeypatch.setattr(mail_context, "settings", dataclasses.replace(mail_context.settings, public_base_url=BASE))
    return BASE


def russian_customer(api: Api, key: str) -> str:
    r = api.post("/v1/customers", key, {"phone": "+79161234567", "email": "anna@example.com", "first_name": "Анна",
                                        "consents": ALL_CONSENTS})
    assert r.status_code == 201, r.data
    return str(r.data["customer_id"])


def sent() -> list[Any]:
    return list(ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages)


def save_russian_templates(tenant_id: str) -> None:
    for spec in (TemplateIn(id="ru-email", name="Осень", channel="email", subject="Осенняя скидка для {{ first_name }}",
                            body="Здравствуйте, {{ first_name }}! Ваш код {{ coupon_code }}.\n"
                                 "Отписаться: {{ unsubscribe_url }}"),
                 TemplateIn(id="ru-sms", name="Осень SMS", channel="sms",
                            body="Код {{ coupon_code }}. Отписка: {{ unsubscribe_url }}")):
        templates.create(tenant_id, spec, "test")


def test_email_carries_one_click_headers_and_decodes_to_cyrillic(api: Api, mailer: TenantKeys,  # noqa: F811
                                                                 public_base: str) -> None:
    save_russian_templates(mailer.tenant_id)
    cid = russian_customer(api, mailer.admin)
    assert run(message(mailer.tenant_id, cid, "email", template="ru-email")) == []

    [raw] = sent()
    assert isinstance(raw, RawMessage)
    assert raw.source == SENDER and raw.destinations[0] == "anna@example.com"
    assert "\r\n\r\n" in raw.raw_data, "CRLF line ends"
    parsed = email.message_from_string(raw.raw_data, policy=policy.default)
    assert parsed["From"] == SENDER and parsed["To"] == "anna@example.com"
    assert parsed["Subject"] == "Осенняя скидка для Анна"
    assert parsed.get_content_type() == "multipart/alternative"
    text_part, html_part = parsed.iter_parts()
    assert (text_part.get_content_type(), html_part.get_content_type()) == ("text/plain", "text/html")
    assert text_part.get_content_charset() == "utf-8" == html_part.get_content_charset()
    greeting, link_line = text_part.get_content().split("\n")
    assert greeting == "Здравствуйте, Анна! Ваш код AUT-10."

    header = str(parsed["List-Unsubscribe"]).strip()
    assert header.startswith(f"<{BASE}{PATH}?token=") and header.endswith(">")
    url = header[1:-1]
    assert link_line == f"Отписаться: {url}", "the body links to the same absolute one-click URL"
    assert f'href="{url}"' in html_part.get_content(), "and so does the HTML part's footer"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert raw.raw_data.isascii(), "subject and body are encoded (RFC 2047, base64), never raw 8-bit"

    parts = urlsplit(url)
    one_click = api.call("POST", f"{parts.path.removeprefix('/api')}?{parts.query}",
                         headers={"Content-Type": "application/x-www-form-urlencoded"},
                         raw=b"List-Unsubscribe=One-Click")
    assert (one_click.status_code, one_click.data["kind"]) == (200, "email")
    assert run(message(mailer.tenant_id, cid, "email", template="ru-email", source_id="c2")) == []
    assert len(sent()) == 1
    assert deliveries.get_delivery(mailer.tenant_id, f"campaign:c2:email:{cid}").reason == "opted_out"


def test_sms_links_are_absolute_once_the_base_url_is_set(api: Api, mailer: TenantKeys,  # noqa: F811
                                                         public_base: str) -> None:
    save_russian_templates(mailer.tenant_id)
    cid = new_customer(api, mailer.admin, "+79161234567")
    assert run(message(mailer.tenant_id, cid, "sms", template="ru-sms")) == []
    [(phone, text)] = sms_sent()
    assert phone == "+79161234567"
    assert text.startswith(f"Код AUT-10. Отписка: {BASE}{PATH}?token=")
    token = text.split("token=", 1)[1]
    assert token == mail_context.unsubscribe_url(mailer.tenant_id, cid, "sms").split("token=", 1)[1]


def test_without_a_base_url_email_goes_without_list_headers_with_a_relative_link(
        api: Api, mailer: TenantKeys) -> None:  # noqa: F811
    save_russian_templates(mailer.tenant_id)
    cid = russian_customer(api, mailer.admin)
    assert mail_context.list_unsubscribe_headers(mailer.tenant_id, cid) == {}
    assert run(message(mailer.tenant_id, cid, "email", template="ru-email")) == []
    [raw] = sent()
    parsed = email.message_from_string(raw.raw_data, policy=policy.default)
    assert "List-Unsubscribe" not in parsed and "List-Unsubscribe-Post" not in parsed, "a relative link is useless"
    assert parsed["Subject"] == "Осенняя скидка для Анна"
    assert parsed.get_body(("plain",)).get_content().split("\n")[1].startswith(f"Отписаться: {PATH}?token=")


def test_a_long_unsubscribe_url_is_never_folded_inside() -> None:
    url = f"{BASE}{PATH}?token={'x' * 300}.{'y' * 43}"
    subject = " ".join(["Тема"] * 30)
    raw = channels.mime_message(SENDER, "anna@example.com", subject, "Текст",
                                {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"})
    assert f"<{url}>".encode() in raw, "the URL stays on one line, unencoded"
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert parsed["Subject"] == subject
    assert all(len(line) <= 78 for line in raw.split(b"\r\n") if line.startswith((b"Subject", b" =?")))
    assert parsed.get_content() == "Текст"
