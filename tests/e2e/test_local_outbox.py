"""The local outbox (`/_local/outbox` on the moto port) shows every e-mail and SMS the running stack sent."""

from __future__ import annotations

import base64
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import requests

from chalicelib.services.marketing.channels import mime_message
from tests.e2e.conftest import LocalStack

SENDER = "news@zerno.example"
XSS = "<script>alert(1)</script>"
SUBJECT = f"Привет, Вера {XSS}"  # noqa: RUF001
BODY = "Ваш баланс: 120 баллов.\nОтписаться: {url}\n" + XSS  # noqa: RUF001
ESCAPED_SUBJECT = "Привет, Вера &lt;script&gt;alert(1)&lt;/script&gt;"  # noqa: RUF001
LINKED = 'Отписаться: <a href="{url}">{url}</a>'


def _moto(stack: LocalStack, path: str, **params: str) -> requests.Response:
    return requests.get(f"http://127.0.0.1:{stack.moto_port}{path}", params=params, timeout=10)


def _ses(stack: LocalStack) -> Any:
    return boto3.client("ses", endpoint_url=f"http://127.0.0.1:{stack.moto_port}", region_name="eu-central-1",
                        aws_access_key_id="local", aws_secret_access_key="local")


def _send(stack: LocalStack, run: str) -> tuple[str, str, str]:
    """An SMS through the API, then a raw MIME e-mail as the app builds them, then a plain SendEmail."""
    phone = f"+7916{int(run, 16) % 10_000_000:07d}"
    started = stack.request("POST", "/v1/public/verifications/coffee-chain", None, json={"phone": phone})
    assert started.status_code == 201, started.text
    ses = _ses(stack)
    ses.verify_email_identity(EmailAddress=SENDER)
    raw = mime_message(SENDER, f"vera-{run}@example.com", SUBJECT, BODY.format(url=f"http://127.0.0.1/u/{run}"),
                       {"List-Unsubscribe": f"<http://127.0.0.1/u/{run}>",
                        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"})
    ses.send_raw_email(Source=SENDER, Destinations=[f"vera-{run}@example.com"], RawMessage={"Data": raw})
    ses.send_email(Source=SENDER, Destination={"ToAddresses": [f"oleg-{run}@example.com"]},
                   Message={"Subject": {"Data": "Приглашение", "Charset": "UTF-8"},
                            "Body": {"Text": {"Data": "Добро пожаловать!", "Charset": "UTF-8"}}})
    return phone, f"vera-{run}@example.com", f"oleg-{run}@example.com"


def test_the_outbox_lists_sms_and_email_newest_first_decoded(stack: LocalStack) -> None:
    run = uuid.uuid4().hex[:8]
    phone, vera, oleg = _send(stack, run)

    listed = _moto(stack, "/_local/outbox.json")
    assert listed.status_code == 200 and listed.headers["Content-Type"] == "application/json; charset=utf-8"
    mine = [m for m in listed.json()["messages"] if set(m["to"]) & {phone, vera, oleg}]
    assert [(m["kind"], m["to"]) for m in mine] == [("email", [oleg]), ("email", [vera]), ("sms", [phone])]
    plain, rich, sms = mine
    assert {k: plain[k] for k in ("from", "subject", "body", "headers", "attachments")} == {
        "from": SENDER, "subject": "Приглашение", "body": "Добро пожаловать!", "headers": {}, "attachments": []}
    assert {k: rich[k] for k in ("from", "subject", "body", "headers")} == {
        "from": SENDER, "subject": SUBJECT, "body": BODY.format(url=f"http://127.0.0.1/u/{run}"),
        "headers": {"List-Unsubscribe": f"<http://127.0.0.1/u/{run}>",
                    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}}
    assert sms["from"] is None and sms["subject"] is None
    assert re.fullmatch(r".*\b\d{6}\b.*", sms["body"], re.DOTALL), sms["body"]
    assert plain["sent_at"] >= rich["sent_at"] >= sms["sent_at"]
    assert abs(datetime.now(UTC) - datetime.fromisoformat(plain["sent_at"])) < timedelta(minutes=2)

    assert [m["to"] for m in _moto(stack, "/_local/outbox.json", to=f"VERA-{run}").json()["messages"]] == [[vera]]
    assert [m["id"] for m in _moto(stack, "/_local/sms").json() if m["to"] == phone] == [sms["id"]]


def test_the_page_escapes_message_text_and_forbids_scripts(stack: LocalStack) -> None:
    run = uuid.uuid4().hex[:8]
    _, vera, oleg = _send(stack, run)

    page = _moto(stack, "/_local/outbox", to=vera)
    assert page.status_code == 200 and page.headers["Content-Type"] == "text/html; charset=utf-8"
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp.split("; ") and "style-src 'self'" in csp.split("; ")
    html = page.content.decode("utf-8")
    assert '<html lang="en">' in html and '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert "<script" not in html.lower() and " style=" not in html and "http://" not in html.split("<main>")[0]
    assert html.count(ESCAPED_SUBJECT) == 2  # the index and the heading
    assert LINKED.format(url=f"http://127.0.0.1/u/{run}") in html
    assert '<dt>List-Unsubscribe-Post</dt><dd>List-Unsubscribe=One-Click</dd>' in html
    assert vera in html and oleg not in html and "1 message to an address containing" in html

    css = _moto(stack, "/_local/outbox.css")
    assert css.status_code == 200 and css.headers["Content-Type"] == "text/css; charset=utf-8"
    assert "pre.body" in css.text
    nothing = _moto(stack, "/_local/outbox", to=f"nobody-{run}")
    assert "No message to an address containing “nobody-" in nothing.text and "<article" not in nothing.text
    assert requests.post(f"http://127.0.0.1:{stack.moto_port}/_local/outbox", timeout=10).status_code == 405


def test_the_banner_prints_the_outbox_url(stack: LocalStack) -> None:
    assert f"  outbox:   http://127.0.0.1:{stack.moto_port}/_local/outbox  " in stack.log()


def test_a_campaign_the_workers_send_is_readable_in_the_outbox(stack: LocalStack) -> None:
    admin = stack.key("tenant_admin", "coffee-chain")["secret"]
    run = uuid.uuid4().hex[:8]
    created = [
        stack.request("PUT", "/v1/mail-settings", admin, json={
            "email_from": SENDER, "weekly_cap": 0, "quiet_hours": {"start": "00:00", "end": "00:00"}}),
        stack.request("POST", "/v1/templates", admin, json={
            "id": f"news-{run}", "name": "News", "channel": "email", "subject": "Новости, {{ first_name }}",
            "body": "Баланс: {{ balance }}.\nОтписаться: {{ unsubscribe_url }}"}),  # noqa: RUF001
        stack.request("POST", "/v1/customers", admin, json={
            "phone": f"+7917{int(run, 16) % 10_000_000:07d}", "email": f"anna-{run}@example.com",
            "first_name": "Анна", "tags": [f"outbox-{run}"],
            "consents": [{"kind": "email", "granted": True, "source": "site", "text_version": "2026-09"}]}),
    ]
    assert [r.status_code for r in created] == [200, 201, 201], [r.text for r in created]
    segment = stack.request("POST", "/v1/segments", admin, json={"name": run, "filter": {"tags_any": [f"outbox-{run}"]}})
    campaign = stack.request("POST", "/v1/campaigns", admin, json={
        "id": f"c-{run}", "name": "Outbox", "segment_id": segment.json()["segment_id"], "channel": "email",
        "template_id": f"news-{run}", "holdout_bps": 0})
    assert campaign.status_code == 201, campaign.text

    deadline = time.monotonic() + 90
    while not (found := _moto(stack, "/_local/outbox.json", to=f"anna-{run}@").json()["messages"]):
        assert time.monotonic() < deadline, "the campaign's e-mail never reached the outbox"
        time.sleep(0.5)
    [mail] = found
    assert (mail["from"], mail["to"], mail["subject"]) == (SENDER, [f"anna-{run}@example.com"], "Новости, Анна")
    unsubscribe = re.fullmatch(r"Баланс: \d+\.\nОтписаться: (http://127\.0\.0\.1:\d+/\S+)", mail["body"])  # noqa: RUF001
    assert unsubscribe, mail["body"]
    assert mail["headers"] == {"List-Unsubscribe": f"<{unsubscribe.group(1)}>",
                               "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    assert mail["has_html"] is True, "every e-mail has an HTML part"
    part = _moto(stack, "/_local/outbox/html", id=mail["id"])
    assert part.status_code == 200 and part.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in part.headers["Content-Security-Policy"] and "sandbox" in part.headers[
        "Content-Security-Policy"]
    assert "Баланс: " in part.text and f'href="{unsubscribe.group(1)}"' in part.text
    page = _moto(stack, "/_local/outbox", to=f"anna-{run}@").text
    assert f'href="/_local/outbox/html?id={mail["id"]}"' in page


def test_an_uploaded_image_is_served_by_the_stack_as_bytes(stack: LocalStack) -> None:
    admin = stack.key("tenant_admin", "coffee-chain")["secret"]
    png = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC")
    made = stack.request("POST", "/v1/assets", admin, json={"filename": "dot.png",
                                                           "data_base64": base64.b64encode(png).decode()})
    assert made.status_code == 201, made.text
    image = stack.request("GET", made.json()["url"].removeprefix(stack.url),
                          headers={"Accept": "image/avif,image/webp,*/*;q=0.8"})
    assert image.status_code == 200 and image.content == png
    assert (image.headers["Content-Type"], image.headers["X-Content-Type-Options"]) == ("image/png", "nosniff")


def test_after_a_restart_the_outbox_shows_the_replayed_messages(make_stack: Callable[[str], LocalStack]) -> None:
    stack = make_stack("restarted").start()
    started = stack.request("POST", "/v1/public/verifications/coffee-chain", None, json={"phone": "+79165550044"})
    assert started.status_code == 201, started.text
    [before] = _moto(stack, "/_local/outbox.json", to="+79165550044").json()["messages"]
    assert stack.stop() == 0

    stack.start()
    [after] = _moto(stack, "/_local/outbox.json", to="+79165550044").json()["messages"]
    assert (after["kind"], after["to"], after["body"]) == ("sms", ["+79165550044"], before["body"])
    assert after["id"] != before["id"] and after["sent_at"] >= before["sent_at"]
