"""The console's templates and image library through the Chalice test client, as a browser sees them.

A tenant admin writes SMS and e-mail templates in the editor (the service and models of /v1/templates): the
model's and the sandbox's errors at their inputs (with the line), the typed values kept; the SMS counter's
characters, segments and encoding for Latin and Cyrillic text; the e-mail block builder without JavaScript
(add, move, remove as form posts, everything typed kept); the preview for the sample or a customer found by
phone, its HTML in a sandboxed frame of ours under its own CSP with a hostile first name escaped; a test send
that lands in moto's SES with an HTML part; the image library (upload of real PNG bytes, list, delete; a wrong
type and an oversize file refused at the input). Another tenant's person gets 404 for this tenant's template
and image and sees nothing of them; the support role is refused.
"""

from __future__ import annotations

import email
import hashlib
import re
import struct
import zlib
from email import policy
from html import unescape
from typing import Any
from urllib.parse import urlparse

import boto3
import pytest

from chalicelib.console.pages import FRAMED_CSP, pages
from chalicelib.settings import settings
from tests.functional.conftest import Api, TenantKeys
from tests.functional.test_console_programs import form_of, person, value_of
from tests.functional.test_console_sign_in import Browser, field_error, hidden

HOSTILE = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
MULTIPART_BOUNDARY = "----console-test-boundary"


def png(width: int = 2, height: int = 1) -> bytes:
    """A real, tiny PNG: signature, IHDR, one IDAT, IEND (each chunk with its CRC)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@pytest.fixture
def anna(api: Api, tenant: TenantKeys) -> Browser:
    return person(api, tenant, "anna@coffee.example")


def editor(browser: Browser, channel: str, **fields: str) -> dict[str, str]:
    page = browser.get(f"/console/templates/new?channel={channel}")
    assert page.status_code == 200, page.text[-2000:]
    return {**form_of(page.text, "/console/templates"), **fields}


def counter_of(text: str) -> tuple[int, int, str]:
    found = re.search(r'<p class="tpl-count">[^<]*<strong>([^<]*)</strong>[^<]*<strong>([^<]*)</strong>[^<]*'
                      r'<strong>([^<]*)</strong>', text)
    assert found, text[:3000]
    return int(re.sub(r"\D", "", found.group(1))), int(re.sub(r"\D", "", found.group(2))), found.group(3)


def blocks_of(text: str) -> list[tuple[str, str]]:
    """(type, text) of each block the editor shows, in order."""
    form = form_of(text, next(iter(re.findall(r'<form method="post" action="(/console/templates[^"]*)"', text))))
    out = []
    i = 0
    while f"blocks-{i}-type" in form:
        out.append((form[f"blocks-{i}-type"], form.get(f"blocks-{i}-text", form.get(f"blocks-{i}-label", ""))))
        i += 1
    return out


def test_an_sms_template_is_written_with_errors_at_the_field_counted_previewed_and_saved(
        api: Api, tenant: TenantKeys, anna: Browser) -> None:
    listing = anna.get("/console/templates")
    assert listing.status_code == 200 and "No templates yet." in listing.text
    assert 'href="/console/templates"' in listing.text  # the navigation's section
    form = editor(anna, "sms", id="Bad Id!", name="", body="Hello {{ first_name }")
    page = anna.post("/console/templates", {**form, "action": "save"})
    assert page.status_code == 400
    assert field_error(page.text, "id") and field_error(page.text, "name")
    assert value_of(page.text, "id") == "Bad Id!"
    assert "Hello {{ first_name }</textarea>" in unescape(page.text)
    # the sandbox's error at the body, with its line shown
    page = anna.post("/console/templates", {**form, "id": "welcome-sms", "name": f"Welcome {HOSTILE}",
                                            "body": "Hi!\nHello {{ first_name }", "action": "save"})
    assert page.status_code == 422
    assert "line 2" in field_error(page.text, "body")
    assert re.search(r'id="f-body-line"><span>The line:</span> <code>Hello \{\{ first_name }</code>', page.text)
    assert 'aria-describedby="f-body-error f-body-line"' in page.text
    assert value_of(page.text, "name") == f"Welcome {HOSTILE}" and ESCAPED in page.text
    page = anna.post("/console/templates", {**form, "id": "welcome-sms", "name": "W",
                                            "body": "Hi {{ nickname }}", "action": "save"})
    assert page.status_code == 422 and "Unknown variable(s): nickname" in field_error(page.text, "body")
    # the preview for the sample customer
    good = {**form, "id": "welcome-sms", "name": f"Welcome {HOSTILE}", "body": "Hi {{ first_name }}, {{ balance }} points"}
    shown = anna.post("/console/templates", {**good, "action": "preview"})
    assert shown.status_code == 200 and "Hi Anna, 1250 points" in shown.text
    assert counter_of(shown.text.split('id="tpl-preview"')[1]) == (len("Hi Anna, 1250 points"), 1, "GSM-7")
    # save, then the list and the page show it as text
    saved = anna.post("/console/templates", {**good, "action": "save"})
    assert saved.status_code == 303 and saved.headers["Location"] == "/console/templates/welcome-sms?done=saved"
    got = api.get("/v1/templates/welcome-sms", tenant.admin).data
    assert got["name"] == f"Welcome {HOSTILE}" and got["channel"] == "sms" and got["subject"] is None
    assert got["body"] == "Hi {{ first_name }}, {{ balance }} points" and got["version"] == 1
    page = anna.get(saved.headers["Location"])
    assert page.status_code == 200 and "The template is saved." in page.text
    assert ESCAPED in page.text and HOSTILE not in page.text
    listing = anna.get("/console/templates").text
    assert ESCAPED in listing and HOSTILE not in listing and "<code>balance</code>, <code>first_name</code>" in listing
    # edit with the version read; a stale version is refused at the top, the typed text kept
    edit = {**form_of(page.text, "/console/templates/welcome-sms"), "body": "Bye {{ first_name }}", "action": "save"}
    assert anna.post("/console/templates/welcome-sms", edit).status_code == 303
    assert api.get("/v1/templates/welcome-sms", tenant.admin).data["version"] == 2
    stale = anna.post("/console/templates/welcome-sms", {**edit, "body": "Stale"})
    assert stale.status_code == 409 and "was changed since you read it" in stale.text and ">Stale</textarea>" in stale.text
    # a duplicate id is refused at the id
    dup = anna.post("/console/templates", {**good, "action": "save"})
    assert dup.status_code == 409 and "already exists" in field_error(dup.text, "id")


@pytest.mark.parametrize(("text", "expected"), [
    ("a" * 160, (160, 1, "GSM-7")),
    ("a" * 161, (161, 2, "GSM-7")),
    ("a" * 306, (306, 2, "GSM-7")),
    ("a" * 307, (307, 3, "GSM-7")),
    ("€" * 80, (80, 1, "GSM-7")),
    ("я" * 70, (70, 1, "UCS-2")),
    ("я" * 71, (71, 2, "UCS-2")),
    ("Привет, " + "ж" * 126, (134, 2, "UCS-2")),
    ("я" * 135, (135, 3, "UCS-2")),
])
def test_the_sms_counter_counts_characters_segments_and_encoding(api: Api, tenant: TenantKeys, anna: Browser,
                                                                text: str, expected: tuple[int, int, str]) -> None:
    form = editor(anna, "sms")
    live = anna.post("/console/templates/count", {"csrf": form["csrf"], "body": text})  # htmx, on typing
    assert live.status_code == 200 and "<html" not in live.text
    assert counter_of(live.text) == expected
    assert ("Cyrillic" in live.text) == (expected[2] == "UCS-2")
    page = anna.post("/console/templates", {**form, "body": text, "action": "count"})  # without JavaScript
    assert page.status_code == 200 and counter_of(page.text) == expected
    assert 'hx-post="/console/templates/count"' in page.text


def test_the_counter_uses_the_sample_values_and_says_so(api: Api, tenant: TenantKeys, anna: Browser) -> None:
    form = editor(anna, "sms")
    live = anna.post("/console/templates/count", {"csrf": form["csrf"], "body": "Привет, {{ first_name }}!"})
    assert counter_of(live.text) == (len("Привет, Anna!"), 1, "UCS-2")
    assert "sample customer" in live.text
    broken = anna.post("/console/templates/count", {"csrf": form["csrf"], "body": "Hi {{ first_name"})
    assert counter_of(broken.text) == (len("Hi {{ first_name"), 1, "GSM-7")


def test_the_preview_for_a_customer_found_by_phone_and_an_unknown_phone_at_its_field(
        api: Api, tenant: TenantKeys, anna: Browser) -> None:
    r = api.post("/v1/cards", tenant.pos, {"program_id": "main", "customer": {"phone": "+79160000021",
                                                                                "first_name": HOSTILE}})
    assert r.status_code == 201, r.data
    form = editor(anna, "sms", name="Hi", body="Hi {{ first_name }}")
    shown = anna.post("/console/templates", {**form, "preview_phone": "+7 916 000-00-21", "action": "preview"})
    assert shown.status_code == 200, shown.text[-3000:]
    assert f"Hi {ESCAPED}" in shown.text and HOSTILE not in shown.text
    assert "As the chosen customer will see it." in shown.text
    unknown = anna.post("/console/templates", {**form, "preview_phone": "+79160009999", "action": "preview"})
    assert unknown.status_code == 422 and field_error(unknown.text, "preview_phone")
    assert value_of(unknown.text, "preview_phone") == "+79160009999"
    live = anna.post("/console/templates/preview", {**form, "preview_card": "0000"})
    assert "<html" not in live.text and "Correct the marked fields" in live.text


def test_another_tenants_person_gets_404_and_support_403(api: Api, tenant: TenantKeys, other_tenant: TenantKeys,
                                                        anna: Browser) -> None:
    made = api.post("/v1/templates", tenant.admin, {"id": "secret-tpl", "name": "SECRET-TEMPLATE", "channel": "sms",
                                                     "body": "SECRET-BODY"})
    assert made.status_code == 201, made.data
    boris = person(api, other_tenant, "boris@tea.example")
    csrf = hidden(boris.get("/console").text, "csrf")
    for r in (boris.get("/console/templates/secret-tpl"),
              boris.post("/console/templates/secret-tpl", {"csrf": csrf, "name": "taken", "channel": "sms",
                                                           "body": "x", "action": "save"})):
        assert r.status_code == 404 and "SECRET" not in r.text
    assert "SECRET" not in boris.get("/console/templates").text
    got = api.get("/v1/templates/secret-tpl", tenant.admin).data
    assert got["name"] == "SECRET-TEMPLATE" and got["version"] == 1
    # the frame of a draft is signed with this session's token: a forged or another session's address is 404
    assert boris.get("/console/templates/frame/desktop?d=eJwrSS0uAQAEXQHB&s=00").status_code == 404
    sam = person(api, tenant, "sam@coffee.example", "support")
    for path in ("/console/templates", "/console/templates/secret-tpl", "/console/templates/new"):
        assert sam.get(path).status_code == 403
    assert 'href="/console/templates"' not in sam.get("/console").text


def test_the_pages_are_declared_for_the_tenant_admin_only() -> None:
    mine = [p for p in pages() if p.path.startswith("/console/templates")]
    assert len(mine) >= 8 and all({r.value for r in p.roles} == {"tenant_admin"} for p in mine)


def upload(browser: Browser, csrf: str, filename: str, content_type: str, data: bytes) -> Any:
    """A multipart form post with one file, as a browser sends the library's upload form."""
    b = MULTIPART_BOUNDARY.encode()
    body = (b"--" + b + b'\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n' + csrf.encode() + b"\r\n"
            + b"--" + b + b'\r\nContent-Disposition: form-data; name="file"; filename="' + filename.encode()
            + b'"\r\nContent-Type: ' + content_type.encode() + b"\r\n\r\n" + data + b"\r\n--" + b + b"--\r\n")
    headers = browser._headers({"Content-Type": f"multipart/form-data; boundary={MULTIPART_BOUNDARY}"})
    return browser._keep(browser.http.post("/console/images", headers=headers, body=body))


def test_the_image_library_uploads_lists_and_deletes_and_refuses_at_the_file_input(
        api: Api, tenant: TenantKeys, other_tenant: TenantKeys, anna: Browser) -> None:
    page = anna.get("/console/images")
    assert page.status_code == 200 and "No images yet." in page.text and 'enctype="multipart/form-data"' in page.text
    csrf = hidden(page.text, "csrf")
    picture = png(3, 2)
    done = upload(anna, csrf, f"logo {HOSTILE}.png", "image/png", picture)
    assert done.status_code == 303 and done.headers["Location"] == "/console/images?done=uploaded", done.text[-2000:]
    [item] = api.get("/v1/assets", tenant.admin).data["items"]
    assert item["width"] == 3 and item["height"] == 2 and item["size"] == len(picture)
    listing = anna.get(done.headers["Location"])
    src = urlparse(item["url"]).path  # the public route e-mails load it from, on our origin
    assert src.endswith(f"/{tenant.tenant_id}/{item['id']}")
    assert f'src="{src}"' in listing.text and "3\u00d72 px" in listing.text and "The image is in the library." in listing.text
    assert ESCAPED in listing.text and HOSTILE not in listing.text
    assert re.search(rf'id="url-{item["id"]}" type="text" readonly value="[^"]*{src}"', listing.text)
    served = anna.http.get(src, headers={"Accept": "image/png"})  # the public route e-mails use, same origin
    assert served.status_code == 200 and served.body == picture
    # refused at the file input: not an image, too large, nothing chosen
    wrong = upload(anna, csrf, "notes.png", "image/png", b"just some text, not a picture")
    assert wrong.status_code == 422 and "Only PNG, JPEG, GIF and WebP" in field_error(wrong.text, "file")
    assert 'aria-invalid="true"' in wrong.text
    big = upload(anna, csrf, "huge.png", "image/png", picture + b"\x00" * (2 * 1024 * 1024))
    assert big.status_code == 413 and "larger than 2 MB" in field_error(big.text, "file")
    huge = upload(anna, csrf, "huge.png", "image/png", b"\x00" * (3 * 1024 * 1024))
    assert huge.status_code == 413 and "at most 2.5 MB" in huge.text
    empty = upload(anna, csrf, "", "application/octet-stream", b"")
    assert empty.status_code == 400 and "Choose an image file" in field_error(empty.text, "file")
    assert len(api.get("/v1/assets", tenant.admin).data["items"]) == 1
    # another tenant's person: 404 and nothing shown, nothing deleted
    boris = person(api, other_tenant, "boris@tea.example")
    boris_csrf = hidden(boris.get("/console").text, "csrf")
    for r in (boris.get(f"/console/images/{item['id']}/delete"),
              boris.post(f"/console/images/{item['id']}/delete", {"csrf": boris_csrf})):
        assert r.status_code == 404 and "logo" not in r.text and src not in r.text
    assert item["id"] not in boris.get("/console/images").text
    # delete, with a confirmation page first
    confirm = anna.get(f"/console/images/{item['id']}/delete")
    assert confirm.status_code == 200 and "broken image" in confirm.text
    gone = anna.post(f"/console/images/{item['id']}/delete", {"csrf": csrf})
    assert gone.status_code == 303 and gone.headers["Location"] == "/console/images?done=deleted"
    assert api.get("/v1/assets", tenant.admin).data["items"] == []
    assert anna.get(f"/console/images/{item['id']}/delete").status_code == 404
    sam = person(api, tenant, "sam@coffee.example", "support")
    assert sam.get("/console/images").status_code == 403
    assert upload(sam, hidden(sam.get("/console").text, "csrf"), "a.png", "image/png", picture).status_code == 403


def test_the_email_builder_adds_moves_and_removes_blocks_without_javascript_keeping_everything_typed(
        api: Api, tenant: TenantKeys, anna: Browser) -> None:
    form = editor(anna, "email", id="news", name="News", subject="Hello {{ first_name }}")
    assert blocks_of(anna.get("/console/templates/new?channel=email").text) == [
        ("header", "{{ tenant_name }}"), ("text", ""), ("footer", "")]
    form = {**form, "blocks-1-text": f"Dear {{{{ first_name }}}},\n\nnews {HOSTILE}", "blocks-2-text": "Coffee House"}
    page = anna.post("/console/templates", {**form, "new_block": "button", "action": "add"})
    assert page.status_code == 200
    assert blocks_of(page.text) == [("header", "{{ tenant_name }}"), ("text", f"Dear {{{{ first_name }}}},\n\nnews {HOSTILE}"),
                                    ("footer", "Coffee House"), ("button", "")]
    assert ESCAPED in page.text and value_of(page.text, "subject") == "Hello {{ first_name }}"
    assert re.search(r'value="up:3"\s+autofocus', page.text)  # the focus stays on the block just added
    form = {**form_of(page.text, "/console/templates"), "blocks-3-label": "Shop now",
            "blocks-3-url": "https://shop.example/?c={{ coupon_code }}"}
    page = anna.post("/console/templates", {**form, "action": "up:3"})
    assert [b[0] for b in blocks_of(page.text)] == ["header", "text", "button", "footer"]
    assert value_of(page.text, "blocks-2-label") == "Shop now"
    form = form_of(page.text, "/console/templates")
    page = anna.post("/console/templates", {**form, "action": "remove:0"})
    assert [b[0] for b in blocks_of(page.text)] == ["text", "button", "footer"]
    form = form_of(page.text, "/console/templates")
    page = anna.post("/console/templates", {**form, "action": "down:0"})
    assert [b[0] for b in blocks_of(page.text)] == ["button", "text", "footer"]
    # a sandbox error inside a block is at that block's input, with its line
    form = form_of(page.text, "/console/templates")
    bad = anna.post("/console/templates", {**form, "blocks-1-text": "ok\n{% for %}", "action": "save"})
    assert bad.status_code == 422 and "line 2" in field_error(bad.text, "blocks-1-text")
    assert '<code>{% for %}</code>' in bad.text and value_of(bad.text, "blocks-0-label") == "Shop now"
    # switching the editor to SMS and back loses nothing
    sms = anna.post("/console/templates", {**form, "channel": "sms", "action": "channel"})
    assert sms.status_code == 200 and 'id="tpl-counter"' in sms.text and "Add the block" not in sms.text
    back = anna.post("/console/templates", {**form_of(sms.text, "/console/templates"), "channel": "email",
                                            "action": "channel"})
    assert blocks_of(back.text) == blocks_of(page.text)
    saved = anna.post("/console/templates", {**form, "action": "save"})
    assert saved.status_code == 303, saved.text[-3000:]
    got = api.get("/v1/templates/news", tenant.admin).data
    assert [b["type"] for b in got["blocks"]] == ["button", "text", "footer"]
    assert got["blocks"][0] == {**got["blocks"][0], "label": "Shop now", "url": "https://shop.example/?c={{ coupon_code }}"}
    assert got["body"]  # the plain-text part made from the blocks
    page = anna.get("/console/templates/news")
    assert [b[0] for b in blocks_of(page.text)] == ["button", "text", "footer"]
    assert len(re.findall(r"<iframe [^>]*sandbox src=", page.text)) == 2  # opens with its preview


def test_the_preview_shows_the_html_in_a_sandboxed_frame_of_ours_and_escapes_the_customer(
        api: Api, tenant: TenantKeys, anna: Browser) -> None:
    r = api.post("/v1/cards", tenant.pos, {"program_id": "main", "customer": {"phone": "+79160000031",
                                                                                "first_name": HOSTILE}})
    assert r.status_code == 201, r.data
    form = editor(anna, "email", id="hi", name="Hi", subject="Hi {{ first_name }}",
                  **{"blocks-1-text": "Hello {{ first_name }}, you have {{ balance }} points"})
    page = anna.post("/console/templates", {**form, "preview_phone": "+79160000031", "action": "preview"})
    assert page.status_code == 200, page.text[-3000:]
    assert "frame-src 'self'" in page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]  # the editor itself is never framed
    frames = re.findall(r'<iframe class="tpl-frame tpl-frame-(\w+)" sandbox src="([^"]+)" title="[^"]+">', page.text)
    assert [view for view, _ in frames] == ["desktop", "phone"]
    shown = anna.get(unescape(frames[0][1]))
    assert shown.status_code == 200
    assert shown.headers["Content-Security-Policy"] == FRAMED_CSP
    assert "default-src 'none'" in FRAMED_CSP and "img-src 'self'" in FRAMED_CSP and "sandbox" in FRAMED_CSP
    assert shown.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert "Hello &lt;script&gt;alert(1)&lt;/script&gt;, you have 0 points" in shown.text
    assert HOSTILE not in shown.text and "<script" not in shown.text.lower()
    assert anna.get(unescape(frames[1][1])).status_code == 200
    # the live preview (htmx) answers only the box, for the sample customer when none is chosen
    live = anna.post("/console/templates/preview", form)
    assert live.status_code == 200 and "<html" not in live.text and "sample customer" in live.text
    sample = re.findall(r'sandbox src="([^"]+)"', live.text)
    assert "Hello Anna, you have 1250 points" in anna.get(unescape(sample[0])).text
    # a changed or forged address is refused
    tampered = unescape(frames[0][1]).replace("&s=", "&s=0")
    assert anna.get(tampered).status_code == 404
    assert anna.get("/console/templates/frame/desktop").status_code == 404


def test_a_test_send_lands_in_ses_with_the_html_part(api: Api, tenant: TenantKeys, anna: Browser) -> None:

    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends
    boto3.client("ses", region_name=settings.region).verify_email_identity(EmailAddress="news@coffee.example")
    assert api.put("/v1/mail-settings", tenant.admin, {"email_from": "news@coffee.example"}).status_code == 200
    form = editor(anna, "email", id="t", name="T", subject="Test {{ first_name }}",
                  **{"blocks-1-text": "Hello {{ first_name }} from the builder"})
    sent = anna.post("/console/templates", {**form, "action": "test"})
    assert sent.status_code == 200, sent.text[-3000:]
    assert "A test was sent to anna@coffee.example." in sent.text and "in the local outbox" in sent.text
    assert value_of(sent.text, "subject") == "Test {{ first_name }}"  # still the draft, nothing saved
    assert api.get("/v1/templates/t", tenant.admin).status_code == 404
    messages = [m for m in ses_backends[DEFAULT_ACCOUNT_ID][settings.region].sent_messages
                if "anna@coffee.example" in (getattr(m, "destinations", None) or [])
                or "anna@coffee.example" in str(getattr(m, "destinations", ""))]
    raw = getattr(messages[-1], "raw_data", None)
    assert raw, messages[-1]
    parsed = email.message_from_string(raw, policy=policy.default)
    assert "Test Anna" in str(parsed["Subject"])
    html = parsed.get_body(preferencelist=("html",))
    assert html is not None and "Hello Anna from the builder" in html.get_content()
    sms = editor(anna, "sms", id="s", name="S", body="Hi")
    refused = anna.post("/console/templates", {**sms, "action": "test"})
    assert refused.status_code == 422 and "A test send is for e-mail templates." in refused.text


def test_an_email_without_blocks_is_its_text_in_a_simple_layout(api: Api, tenant: TenantKeys, anna: Browser) -> None:
    form = editor(anna, "email", id="plain", name="Plain", subject="News")
    form = {k: v for k, v in form.items() if not k.startswith("blocks-")}
    page = anna.post("/console/templates", {**form, "body": "", "action": "preview"})
    assert 'id="f-body"' in page.text and "simple layout" in page.text and "No blocks yet" in page.text
    refused = anna.post("/console/templates", {**form, "body": "", "action": "save"})
    assert refused.status_code in (400, 422) and field_error(refused.text, "body")
    shown = anna.post("/console/templates", {**form, "body": "Hello {{ first_name }}", "action": "preview"})
    frames = re.findall(r'sandbox src="([^"]+)"', shown.text)
    assert len(frames) == 2 and "Hello Anna" in anna.get(unescape(frames[0])).text
    assert anna.post("/console/templates", {**form, "body": "Hello {{ first_name }}", "action": "save"}).status_code == 303
    got = api.get("/v1/templates/plain", tenant.admin).data
    assert got["body"] == "Hello {{ first_name }}" and not got.get("blocks")
    page = anna.get("/console/templates/plain")
    assert "Hello {{ first_name }}</textarea>" in unescape(page.text) and "No blocks yet" in page.text


def test_a_saved_email_too_long_for_the_draft_frame_is_framed_by_its_id(
        api: Api, tenant: TenantKeys, anna: Browser, other_tenant: TenantKeys) -> None:
    # random words compress badly: the sealed draft exceeds the frame address's limit
    words = " ".join(hashlib.sha256(str(i).encode()).hexdigest()[:10] for i in range(1_700))
    chunks = words.split()
    blocks = [{"type": "text", "text": "Hello {{ first_name }}."}] + [
        {"type": "text", "text": " ".join(chunks[i:i + 450])} for i in range(0, len(chunks), 450)]
    r = api.post("/v1/templates", tenant.admin, {"id": "long-mail", "name": "Long", "channel": "email",
                                                 "subject": "Long", "blocks": blocks})
    assert r.status_code == 201, r.data
    page = anna.get("/console/templates/long-mail")
    assert page.status_code == 200
    assert "too long to preview" not in page.text
    frames = re.findall(r'<iframe class="tpl-frame tpl-frame-(\w+)" sandbox src="([^"]+)"', page.text)
    assert frames == [("desktop", "/console/templates/long-mail/frame/desktop"),
                      ("phone", "/console/templates/long-mail/frame/phone")]
    shown = anna.get(frames[1][1])
    assert shown.status_code == 200 and shown.headers["Content-Security-Policy"] == FRAMED_CSP
    assert "Hello Anna." in shown.text and words.split()[-1] in shown.text
    assert anna.get("/console/templates/long-mail/frame/tablet").status_code == 404
    assert anna.get("/console/templates/nothing/frame/desktop").status_code == 404
    # the same template id in another tenant's console shows nothing of it
    other = person(api, other_tenant, "olga@other.example")
    assert other.get("/console/templates/long-mail/frame/desktop").status_code == 404
