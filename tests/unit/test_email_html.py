"""The HTML part of e-mail (domain.email_html), the image header reader (domain.images) and the MIME builder."""

from __future__ import annotations

import base64
import email
import struct
import zlib
from email import policy
from typing import Any

import pytest

from chalicelib.domain import email_html, images
from chalicelib.domain.templating import SAMPLE_VARIABLES, OverLimit, RenderError
from chalicelib.schemas.templates import EmailBlock
from chalicelib.services.marketing.channels import mime_message

HOSTILE = '<script>alert("x")</script>'
UNSUB = "https://loyalty.example/api/v1/public/unsubscribe/one-click?token=abc.def&x=1"


def values(**changes: Any) -> dict[str, Any]:
    return {**SAMPLE_VARIABLES, "unsubscribe_url": UNSUB, "extra": {}, **changes}


def asset_url(asset_id: str) -> str:
    return f"https://loyalty.example/api/v1/public/assets/coffee/{asset_id}"


def render(blocks: list[EmailBlock], **changes: Any) -> str:
    return email_html.render(blocks, values(**changes), email_html.Brand("Coffee & Co"), "Title", asset_url)


BLOCKS = [
    EmailBlock(type="header", text="Hello, {{ first_name }}!", asset_id="logo12345678"),
    EmailBlock(type="text", text="Dear {{ first_name }},\nthank you.\n\nSecond paragraph."),
    EmailBlock(type="button", label="Open {{ first_name }}",
               url="https://shop.example/?c={{ coupon_code|urlencode }}"),
    EmailBlock(type="balance"),
    EmailBlock(type="coupon"),
    EmailBlock(type="divider"),
    EmailBlock(type="image", asset_id="banner123456", alt='Autumn "sale"', url="https://shop.example/autumn"),
    EmailBlock(type="footer", text="You are a member of {{ tenant_name }}."),
]


def test_personal_values_are_escaped_everywhere_in_the_html_part() -> None:
    html = render(BLOCKS, first_name=HOSTILE, coupon_code='"><img src=x onerror=1>')
    assert "<script" not in html and "onerror=1>" not in html
    assert html.count("&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") == 3, "header, text and button label"
    assert "&#34;&gt;&lt;img src=x onerror=1&gt;</p>" in html, "the coupon value is escaped too"
    assert 'href="https://shop.example/?c=%22%3E%3Cimg%20src%3Dx%20onerror%3D1%3E"' in html, "and urlencoded"
    assert 'alt="Autumn &#34;sale&#34;"' in html
    assert "Coffee &amp; Co" in html


def test_the_frame_has_the_blocks_in_order_and_the_unsubscribe_link() -> None:
    html = render(BLOCKS)
    order = [html.index(s) for s in ("logo12345678", "Hello, Anna!", "Dear Anna,<br>thank you.</p>",
                                     "Second paragraph.</p>", "Open Anna</a>", "1\u202f250", "SAMPLE-2026</p>",
                                     "banner123456", "You are a member of Sample Coffee.", "Отписаться от рассылки")]
    assert order == sorted(order)
    assert f'href="{UNSUB.replace("&", "&amp;")}"' in html, "the signed link, escaped once for the attribute"
    assert 'href="https://shop.example/?c=SAMPLE-2026"' in html
    assert 'href="https://shop.example/autumn"' in html
    assert f'src="{asset_url("logo12345678")}"' in html
    assert "Уровень: Gold" in html
    assert html.startswith("<!DOCTYPE html>") and html.endswith("</html>")
    assert "@media only screen and (max-width:620px)" in html, "responsive: the container shrinks on phones"
    assert "<script" not in html and "<link" not in html, "no script, no other origin's CSS or fonts"


def test_a_missing_coupon_drops_its_block_and_a_bad_colour_falls_back() -> None:
    html = email_html.render([EmailBlock(type="coupon")], values(coupon_code=None),
                             email_html.Brand("Coffee", colour="red;background:url(x)"), "T", asset_url)
    assert "Ваш купон" not in html
    assert email_html.DEFAULT_COLOUR in html and "url(x)" not in html


@pytest.mark.parametrize("url", ["{{ extra.link }}", "https://x.example/{{ extra.link }}"])
def test_a_link_that_renders_to_anything_but_http_fails_that_message(url: str) -> None:
    block = EmailBlock(type="button", label="Go", url=url)
    with pytest.raises(RenderError, match=r"blocks\.0\.url: the link"):
        email_html.render([block], values(extra={"link": 'javascript:alert(1)" x="'}), email_html.Brand("C"), "T",
                          asset_url)


def test_validation_names_the_block_field_and_the_line() -> None:
    problems = email_html.validate([
        EmailBlock(type="text", text="fine"),
        EmailBlock(type="text", text="line one\n{{ first_name "),
        EmailBlock(type="header", text="{{ ''.__class__ }}"),
        EmailBlock(type="button", label="Go", url="javascript:alert(1)"),
        EmailBlock(type="image"),
        EmailBlock(type="text", text="{{ password }}"),
    ])
    by_field = {p.field: p.issue for p in problems}
    assert set(by_field) == {"blocks.1.text", "blocks.2.text", "blocks.3.url", "blocks.4.asset_id", "blocks.5.text"}
    assert by_field["blocks.1.text"].startswith("syntax error on line 2")
    assert "access to '__class__' is not allowed" in by_field["blocks.2.text"]
    assert by_field["blocks.3.url"].startswith("a link must start with https://")
    assert by_field["blocks.4.asset_id"] == "a image block needs `asset_id`"
    assert by_field["blocks.5.text"].startswith("unknown variable(s): password")


def test_the_plain_text_alternative_says_what_the_blocks_say() -> None:
    assert email_html.plain_text(BLOCKS) == (
        "Hello, {{ first_name }}!\n\n"
        "Dear {{ first_name }},\nthank you.\n\nSecond paragraph.\n\n"
        "Open {{ first_name }}: https://shop.example/?c={{ coupon_code|urlencode }}\n\n"
        "Ваш баланс, баллов: {{ balance }}{% if tier %}\nУровень: {{ tier }}{% endif %}\n\n"  # noqa: RUF001
        "{% if coupon_code %}Ваш купон: {{ coupon_code }}{% endif %}\n\n"
        "----\n\n"
        'Autumn "sale"\n\n'
        "You are a member of {{ tenant_name }}.\n\n"
        "Отписаться от рассылки: {{ unsubscribe_url }}")
    assert email_html.validate([EmailBlock(type="text", text=email_html.plain_text(BLOCKS))]) == []


def test_a_body_without_blocks_becomes_escaped_paragraphs_in_the_frame() -> None:
    html = email_html.from_text(f"Hi {HOSTILE}!\nLine two.\n\nBye", values(), email_html.Brand("Coffee"), "T")
    assert "<p " in html and "Hi &lt;script&gt;" in html and "<script" not in html
    assert "!<br>Line two.</p>" in html and ">Bye</p>" in html
    assert "Отписаться от рассылки" in html


def test_urls_in_text_become_links_without_leaving_the_escaping() -> None:
    body = ('See https://shop.example/a?x=1&y=2. Or "https://evil.example/"onmouseover=1" '
            "<https://x.example/p>, and javascript:alert(1)")
    html = email_html.from_text(body, values(), email_html.Brand("Coffee"), "T")
    assert ('<a href="https://shop.example/a?x=1&amp;y=2" target="_blank" style="color:inherit;">'
            "https://shop.example/a?x=1&amp;y=2</a>. Or") in html
    assert '<a href="https://evil.example/" target' in html and "onmouseover=1&#34;" in html
    assert '&lt;<a href="https://x.example/p" target' in html and "</a>&gt;," in html
    assert 'href="javascript' not in html


def test_the_html_part_is_bounded() -> None:
    blocks = [EmailBlock(type="text", text="word " * 999)] * 30
    with pytest.raises(OverLimit, match="HTML part is larger than"):
        render(blocks)


# --- image headers ---------------------------------------------------------------------------------------------

def png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\x00\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


JPEG = (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
        b"\xff\xdb\x00\x04\x00\x00" b"\xff\xc2\x00\x0b\x08\x01\x2c\x02\x58\x01\x01\x11\x00" b"\xff\xd9")
GIF = b"GIF89a\x40\x01\xf0\x00\x80\x00\x00"
WEBP_VP8X = b"RIFF\x00\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00\x10\x00\x00\x00" + (799).to_bytes(3, "little") + \
    (599).to_bytes(3, "little")
WEBP_VP8L = b"RIFF\x00\x00\x00\x00WEBPVP8L\x00\x00\x00\x00\x2f" + ((99) | (49 << 14)).to_bytes(4, "little")
WEBP_VP8 = (b"RIFF\x00\x00\x00\x00WEBPVP8 \x00\x00\x00\x00" + b"\x00\x00\x00" + b"\x9d\x01\x2a"
            + struct.pack("<HH", 640, 480))


@pytest.mark.parametrize("data,expected", [
    (png(3, 2), images.ImageInfo("image/png", 3, 2)),
    (JPEG, images.ImageInfo("image/jpeg", 600, 300)),
    (GIF, images.ImageInfo("image/gif", 320, 240)),
    (WEBP_VP8X, images.ImageInfo("image/webp", 800, 600)),
    (WEBP_VP8L, images.ImageInfo("image/webp", 100, 50)),
    (WEBP_VP8, images.ImageInfo("image/webp", 640, 480)),
])
def test_images_are_known_by_their_magic_bytes_with_their_size(data: bytes, expected: images.ImageInfo) -> None:
    assert images.sniff(data) == expected


@pytest.mark.parametrize("data", [
    b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    b"%PDF-1.7", b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0\x00\x10JFIF", png(20_000, 1)[:40],
    b"GIF89a\x00\x00\x00\x00", b"RIFF\x00\x00\x00\x00WEBPVP8 ",
])
def test_anything_else_is_not_an_image(data: bytes) -> None:
    assert images.sniff(data) is None


# --- MIME ------------------------------------------------------------------------------------------------------

def test_with_html_the_message_is_multipart_alternative_text_first() -> None:
    html = render(BLOCKS, first_name="Анна")
    raw = mime_message("Кофе <shop@coffee.example>", "anna@example.com", "Осенняя скидка, Анна", "Привет, Анна!",
                       {"List-Unsubscribe": f"<{UNSUB}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
                       html)
    assert raw.isascii() and b"\r\n\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    assert f"<{UNSUB}>".encode() in raw, "the header URL stays on one line, unencoded"
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert parsed.get_content_type() == "multipart/alternative"
    assert parsed["Subject"] == "Осенняя скидка, Анна"
    text_part, html_part = parsed.iter_parts()
    assert text_part.get_content_type() == "text/plain" and text_part.get_content() == "Привет, Анна!"
    assert html_part.get_content_type() == "text/html" and html_part.get_content() == html
    assert "Hello, Анна!" in html_part.get_content()
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert base64.b64decode(raw.split(b"base64\r\n\r\n")[1].split(b"\r\n\r\n")[0]).decode() == "Привет, Анна!"


@pytest.mark.parametrize(("colour", "ink", "text"), [("#1f4e79", "#ffffff", "#1f4e79"), ("#FFD400", "#000000", "#1f2328"),
                                                     ("#767676", "#000000", "#767676"), ("#777777", "#000000", "#1f2328")])
def test_text_on_and_beside_the_brand_colour_stays_readable(colour: str, ink: str, text: str) -> None:
    """#767676 is the palest grey that still reads on white (4.54:1); #777777 (4.48:1) is not."""
    brand = email_html.Brand("Coffee", colour=colour)
    assert (brand.safe_colour, brand.ink, brand.text_colour) == (colour.lower(), ink, text)
