"""The HTML part of an e-mail: the tenant's blocks (or its plain body) in a branded, responsive frame.

Why hand-written tables and not MJML: the pure-Python MJML port (PyPI `mjml` 0.12) was tried first. It
renders well, but it decodes entities in attribute values and writes them back raw, so an escaped `alt`
or link (`a &quot; onerror=&quot;...`) comes out as a live attribute: personal values would have to be
trusted, which they are not. It also pulls four more packages and links Google Fonts by default. The
mail-client rules MJML encodes that matter here are few and are written below directly: nested
`role="presentation"` tables 600 px wide that shrink to the screen under a `max-width` media query (the
only CSS left in `<style>`, as media queries cannot be inlined), every other style written inline on its
element (so no CSS inliner is needed: we own the markup, and Gmail or Outlook drop `<style>` in places),
a "bulletproof" table button, images `max-width:100%` with alt text, and an Outlook (`mso`) fixed-width
wrapper. No script, form, iframe or external CSS/font is ever produced.

Escaping: every block's Jinja text and label is rendered by the sandbox with HTML autoescape
(`templating.HTML_ENV`), so a first name `<script>` arrives as `&lt;script&gt;`; links are rendered plain,
must then be http(s) URLs without quotes, spaces or angle brackets, and are escaped once into `href`.
Everything else put in the markup (brand name, alt text, captions, balance, coupon code) goes through
`markupsafe.escape`. The sandbox rules and bounds of `templating` hold for every block: the blocks of one
message share one time and loop budget.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import escape

from chalicelib.domain import colours, templating
from chalicelib.domain.templating import OverLimit, Part, Problem, RenderError
from chalicelib.schemas.templates import EmailBlock

DEFAULT_COLOUR = "#1f4e79"
"""A neutral dark blue (white text on it passes WCAG AA) for tenants without a brand colour."""
BODY_TEXT = "#1f2328"
"""The message's text colour (and the fallback for a brand colour too pale to read on white)."""
MAX_HTML_BYTES = 100 * 1024
"""Gmail clips a message whose HTML passes ~102 KB behind a "view entire message" link."""
MAX_BLOCK_CHARS = 20_000
"""The longest rendered text of one block."""
_URL = re.compile(r"^https?://[^\s\"'<>\\`]+$")
_PARAGRAPHS = re.compile(r"\n[ \t]*\n+")
_ESCAPED_URL = re.compile(r"https?://(?:(?!&#3[49];|&lt;|&gt;|&quot;)[^\s<>\"'])+")
"""An http(s) URL inside already escaped text: it ends before an escaped quote or angle bracket."""
_TRAILING = ".,;:!?)"
FONT = "Arial, Helvetica, sans-serif"

CAPTIONS: Mapping[str, Mapping[str, str]] = {
    "ru": {"balance": "Ваш баланс, баллов", "tier": "Уровень", "coupon": "Ваш купон", "unsubscribe":
           "Отписаться от рассылки", "logo": "Логотип"},
    "en": {"balance": "Your balance, points", "tier": "Tier", "coupon": "Your coupon", "unsubscribe":
           "Unsubscribe", "logo": "Logo"},
}
"""Texts the frame adds itself (a block's own `text` replaces a caption)."""

NEEDS: Mapping[str, tuple[str, ...]] = {
    "header": (), "text": ("text",), "image": ("asset_id",), "button": ("label", "url"), "balance": (),
    "coupon": (), "divider": (), "footer": (),
}
"""The fields each block type must have."""


@dataclass(frozen=True)
class Brand:
    """How the frame shows the tenant: its name, a colour (#rrggbb) and a logo URL, each optional but the name."""

    name: str
    colour: str = DEFAULT_COLOUR
    logo_url: str | None = None

    @property
    def safe_colour(self) -> str:
        """The colour if it is a plain #rrggbb (it goes into style attributes), else the default."""
        return self.colour.lower() if colours.is_hex(self.colour) else DEFAULT_COLOUR

    @property
    def ink(self) -> str:
        """Text on the colour (the button's label): white, or black on a pale brand colour."""
        return colours.ink(self.safe_colour)

    @property
    def text_colour(self) -> str:
        """The colour for text on the white message (heading, balance, code): the brand colour when it reads
        (WCAG AA), else the body's dark grey."""
        return colours.readable_on_white(self.safe_colour, BODY_TEXT)


# --- validation ------------------------------------------------------------------------------

def _has_jinja(source: str) -> bool:
    return "{{" in source or "{%" in source


def validate(blocks: Sequence[EmailBlock]) -> list[Problem]:
    """Every problem of the blocks, at `blocks.<i>.<field>`: missing fields, Jinja (sandbox rules), literal links."""
    problems: list[Problem] = []
    for i, block in enumerate(blocks):
        at = f"blocks.{i}"
        for name in NEEDS[block.type]:
            value = getattr(block, name)
            if value is None or not str(value).strip():
                problems.append(Problem(f"{at}.{name}", f"a {block.type} block needs `{name}`"))
        for part in _parts_of(i, block):
            problems.extend(templating.check(part.field, part.source))
        if block.url is not None and not _has_jinja(block.url) and not block.url.strip().startswith("https://"):
            problems.append(Problem(f"{at}.url", "a link must start with https:// (or be made with a variable, "
                                                 "e.g. {{ unsubscribe_url }})"))
        if block.url is not None and not _has_jinja(block.url) and block.url.startswith("https://") \
                and not _URL.match(block.url.strip()):
            problems.append(Problem(f"{at}.url", "a link may not contain spaces, quotes or angle brackets"))
    return problems


def _parts_of(i: int, block: EmailBlock) -> list[Part]:
    """The Jinja fields of one block: text and label print into HTML (escaped), the link is plain (checked)."""
    parts = []
    if block.text is not None:
        parts.append(Part(f"blocks.{i}.text", block.text, html=True, max_chars=MAX_BLOCK_CHARS))
    if block.label is not None:
        parts.append(Part(f"blocks.{i}.label", block.label, html=True, max_chars=MAX_BLOCK_CHARS))
    if block.url is not None:
        parts.append(Part(f"blocks.{i}.url", block.url, html=False, max_chars=2000))
    return parts


def parts(blocks: Sequence[EmailBlock]) -> list[Part]:
    """Every Jinja field of the blocks (for the trial render at save)."""
    return [part for i, block in enumerate(blocks) for part in _parts_of(i, block)]


# --- the plain-text alternative ------------------------------------------------------------------

def plain_text(blocks: Sequence[EmailBlock], lang: str = "ru") -> str:
    """A Jinja body for the text/plain part that says what the blocks say (the body when none was written).

    Texts are kept as written (same variables), a button becomes "label: link", an image its alt text,
    balance and coupon their caption and value, and the unsubscribe link always ends it.
    """
    words = CAPTIONS.get(lang, CAPTIONS["ru"])
    out: list[str] = []
    for block in blocks:
        text = (block.text or "").strip()
        if block.type in ("header", "text", "footer") and text:
            out.append(text)
        elif block.type == "image" and block.alt and block.alt.strip():
            out.append(block.alt.strip().replace("{", "(").replace("}", ")"))
        elif block.type == "button" and block.label and block.url:
            out.append(f"{block.label.strip()}: {block.url.strip()}")
        elif block.type == "balance":
            out.append(f"{text or words['balance']}: {{{{ balance }}}}"
                       f"{{% if tier %}}\n{words['tier']}: {{{{ tier }}}}{{% endif %}}")
        elif block.type == "coupon":
            out.append(f"{{% if coupon_code %}}{text or words['coupon']}: {{{{ coupon_code }}}}{{% endif %}}")
        elif block.type == "divider":
            out.append("----")
    out.append(f"{words['unsubscribe']}: {{{{ unsubscribe_url }}}}")
    return "\n\n".join(out)


# --- rendering --------------------------------------------------------------------------------

def _linked(escaped: str) -> str:
    """Escaped text with its http(s) URLs made links (the URL text is escaped already, so it is a safe href)."""

    def link(match: re.Match[str]) -> str:
        url = match.group(0)
        tail = ""
        while url and url[-1] in _TRAILING:
            url, tail = url[:-1], url[-1] + tail
        return f'<a href="{url}" target="_blank" style="color:inherit;">{url}</a>{tail}'

    return _ESCAPED_URL.sub(link, escaped)


def _paragraphs(escaped: str, style: str) -> str:
    """Escaped text as paragraphs: a blank line starts a new one, a single newline is a line break, and URLs
    are links."""
    chunks = [c.strip() for c in _PARAGRAPHS.split(escaped.replace("\r\n", "\n")) if c.strip()]
    return "".join(f'<p style="{style}">{_linked(chunk).replace(chr(10), "<br>")}</p>' for chunk in chunks)


def _link(raw: str, field: str) -> str:
    """A rendered link, checked and escaped for an attribute; RenderError if it is not a plain http(s) URL."""
    url = raw.strip()
    if not _URL.match(url):
        raise RenderError(f"{field}: the link {url[:80]!r} is not an http(s) URL")
    return str(escape(url))


TEXT = f"margin:0 0 16px 0;font-family:{FONT};font-size:16px;line-height:24px;color:{BODY_TEXT};"
CELL = "padding:0 32px;"
SMALL = f"margin:0 0 8px 0;font-family:{FONT};font-size:13px;line-height:20px;color:#57606a;"


def _row(content: str, padding: str = "8px 32px") -> str:
    return f'<tr><td class="px" style="padding:{padding};">{content}</td></tr>'


def _button(href: str, label: str, brand: Brand) -> str:
    colour = brand.safe_colour
    return (f'<table role="presentation" cellpadding="0" cellspacing="0" border="0" style="margin:8px 0 16px 0;">'
            f'<tr><td bgcolor="{colour}" style="border-radius:6px;background:{colour};">'
            f'<a href="{href}" target="_blank" style="display:inline-block;padding:12px 28px;font-family:{FONT};'
            f'font-size:16px;line-height:20px;font-weight:bold;color:{brand.ink};text-decoration:none;'
            f'border-radius:6px;">{label}</a></td></tr></table>')


def _value_box(caption: str, value: str, colour: str, extra: str = "") -> str:
    return (f'<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" '
            f'style="margin:0 0 16px 0;border:1px solid #d0d7de;border-radius:6px;"><tr>'
            f'<td style="padding:16px;text-align:center;">'
            f'<p style="{SMALL}">{caption}</p>'
            f'<p style="margin:0;font-family:{FONT};font-size:28px;line-height:36px;font-weight:bold;'
            f'color:{colour};letter-spacing:1px;">{value}</p>{extra}</td></tr></table>')


def _number(value: Any) -> str:
    """An integer with non-breaking thin-space thousands, as Russian writes it ("1 250")."""
    if isinstance(value, bool) or not isinstance(value, int):
        return str(escape("" if value is None else value))
    return f"{value:,}".replace(",", "\u202f")


def _block_html(block: EmailBlock, texts: Mapping[str, str], values: Mapping[str, Any], brand: Brand,
                asset_url: Callable[[str], str], words: Mapping[str, str], i: int) -> str:
    """One block as rows of the frame's table ('' when it shows nothing for this recipient)."""
    colour = brand.text_colour
    text = texts.get("text", "")
    if block.type == "header":
        logo = asset_url(block.asset_id) if block.asset_id else brand.logo_url
        html = ""
        if logo:
            alt = escape(block.alt or brand.name or words["logo"])
            html += (f'<img src="{escape(logo)}" alt="{alt}" height="48" style="display:block;height:48px;'
                     f'width:auto;max-width:100%;border:0;margin:0 0 16px 0;">')
        if text.strip():
            html += (f'<h1 style="margin:0 0 8px 0;font-family:{FONT};font-size:26px;line-height:32px;'
                     f'color:{colour};">{text.strip()}</h1>')
        return _row(html, "24px 32px 8px 32px") if html else ""
    if block.type == "text":
        return _row(_paragraphs(text, TEXT))
    if block.type == "image":
        assert block.asset_id is not None  # validated at save
        img = (f'<img src="{escape(asset_url(block.asset_id))}" alt="{escape(block.alt or "")}" '
               f'style="display:block;width:100%;max-width:536px;height:auto;border:0;margin:0 0 16px 0;">')
        if "url" in texts:
            img = f'<a href="{_link(texts["url"], f"blocks.{i}.url")}" target="_blank">{img}</a>'
        return _row(img)
    if block.type == "button":
        return _row(_button(_link(texts.get("url", ""), f"blocks.{i}.url"), texts.get("label", "").strip(), brand))
    if block.type == "balance":
        tier = values.get("tier")
        extra = f'<p style="{SMALL}margin-top:8px;">{escape(words["tier"])}: {escape(tier)}</p>' if tier else ""
        caption = text.strip() or str(escape(words["balance"]))
        return _row(_value_box(caption, _number(values.get("balance")), colour, extra))
    if block.type == "coupon":
        code = values.get("coupon_code")
        if not code:
            return ""
        caption = text.strip() or str(escape(words["coupon"]))
        return _row(_value_box(caption, str(escape(code)), colour))
    if block.type == "divider":
        return _row('<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0"><tr>'
                    '<td style="border-top:1px solid #d0d7de;font-size:1px;line-height:1px;">&nbsp;</td></tr></table>')
    return ""  # footer: shown in the frame's footer


def _footer(footer_texts: list[str], brand: Brand, unsubscribe_url: str, words: Mapping[str, str]) -> str:
    """Footer texts, the tenant's name and the signed one-click unsubscribe link (always there)."""
    html = "".join(_paragraphs(t, SMALL) for t in footer_texts if t.strip())
    if brand.name:
        html += f'<p style="{SMALL}">{escape(brand.name)}</p>'
    if unsubscribe_url:
        html += (f'<p style="{SMALL}"><a href="{escape(unsubscribe_url.strip())}" target="_blank" '
                 f'style="color:#57606a;text-decoration:underline;">{escape(words["unsubscribe"])}</a></p>')
    return (f'<tr><td class="px" style="padding:16px 32px 24px 32px;border-top:1px solid #eaeef2;'
            f'background:#f6f8fa;">{html}</td></tr>')


def _page(title: str, rows: str, lang: str) -> str:
    html = (
        f'<!DOCTYPE html><html lang="{escape(lang)}" xmlns="http://www.w3.org/1999/xhtml"><head>'
        '<meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta http-equiv="X-UA-Compatible" content="IE=edge"><meta name="x-apple-disable-message-reformatting">'
        '<meta name="color-scheme" content="light"><meta name="supported-color-schemes" content="light">'
        f'<title>{escape(title)}</title>'
        '<style>@media only screen and (max-width:620px){.container{width:100%!important}'
        '.px{padding-left:16px!important;padding-right:16px!important}}</style></head>'
        '<body style="margin:0;padding:0;background:#f4f4f5;-webkit-text-size-adjust:100%;">'
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" '
        'style="background:#f4f4f5;"><tr><td align="center" style="padding:24px 8px;">'
        '<!--[if mso]><table role="presentation" width="600" cellpadding="0" cellspacing="0" border="0"><tr><td>'
        '<![endif]-->'
        '<table role="presentation" class="container" width="600" cellpadding="0" cellspacing="0" border="0" '
        'style="width:600px;max-width:600px;background:#ffffff;border-radius:8px;overflow:hidden;">'
        f'{rows}</table><!--[if mso]></td></tr></table><![endif]--></td></tr></table></body></html>'
    )
    if len(html.encode()) > MAX_HTML_BYTES:
        raise OverLimit(f"the HTML part is larger than {MAX_HTML_BYTES} bytes (mail clients clip it)")
    return html


def _top_bar(brand: Brand) -> str:
    colour = brand.safe_colour
    return (f'<tr><td bgcolor="{colour}" style="background:{colour};height:6px;font-size:1px;line-height:1px;">'
            '&nbsp;</td></tr>')


def render(blocks: Sequence[EmailBlock], values: Mapping[str, Any], brand: Brand, title: str,
           asset_url: Callable[[str], str], *, lang: str = "ru",
           time_budget: float = templating.TIME_BUDGET_SECONDS) -> str:
    """The HTML part for one recipient from the blocks; RenderError (naming `blocks.<i>.<field>`) if one fails."""
    words = CAPTIONS.get(lang, CAPTIONS["ru"])
    all_parts = parts(blocks)
    rendered = dict(zip((p.field for p in all_parts),
                        templating.render_parts(all_parts, values, time_budget=time_budget), strict=True))
    rows = [_top_bar(brand)]
    footers: list[str] = []
    for i, block in enumerate(blocks):
        texts = {name: rendered[f"blocks.{i}.{name}"] for name in ("text", "label", "url")
                 if f"blocks.{i}.{name}" in rendered}
        if block.type == "footer":
            footers.append(texts.get("text", ""))
            continue
        rows.append(_block_html(block, texts, values, brand, asset_url, words, i))
    rows.append(_footer(footers, brand, str(values.get("unsubscribe_url") or ""), words))
    return _page(title, "".join(rows), lang)


def from_text(body: str, values: Mapping[str, Any], brand: Brand, title: str, *, lang: str = "ru") -> str:
    """The HTML part of an e-mail without blocks: its rendered plain body as escaped paragraphs in the frame."""
    words = CAPTIONS.get(lang, CAPTIONS["ru"])
    rows = _top_bar(brand) + _row(_paragraphs(str(escape(body)), TEXT), "24px 32px 8px 32px")
    return _page(title, rows + _footer([], brand, str(values.get("unsubscribe_url") or ""), words), lang)
