"""The local stack's outbox: every e-mail and SMS the embedded AWS "sent", and every wallet push, as JSON and HTML.

Why: on the local stage nothing leaves the machine (moto's SES and SNS keep messages in memory), yet a new
user has to read an invitation, a phone code or a campaign message. moto records no send time, so the moto
server's middleware calls `stamp_new()` after every SES or SNS request: each message is stamped once, in
arrival order, which puts e-mail and SMS on one timeline (newest first).
Call everything here under the middleware's lock: the backends change during requests.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_string, policy
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

OUTBOX_PATH = "/_local/outbox"
OUTBOX_JSON_PATH = "/_local/outbox.json"
OUTBOX_CSS_PATH = "/_local/outbox.css"
OUTBOX_HTML_PATH = "/_local/outbox/html"
"""`?id=<message id>`: the HTML part of one e-mail, as a mail client would show it (under HTML_PART_POLICY)."""
HTML_PART_POLICY = ("default-src 'none'; img-src http: https: data:; style-src 'unsafe-inline'; base-uri 'none'; "
                    "form-action 'none'; frame-ancestors 'none'; sandbox allow-popups allow-popups-to-escape-sandbox")
"""An e-mail's HTML is shown as mail clients show it: its inline styles and images, never a script or a form
(`sandbox` makes it an opaque origin too); its links open in a new tab."""
CONTENT_SECURITY_POLICY = ("default-src 'none'; style-src 'self'; form-action 'self'; base-uri 'none'; "
                           "frame-ancestors 'none'")
"""No script, frame, image or font at all; only the stack's own stylesheet; the filter form submits to this page."""

HERE = Path(__file__).resolve().parent
# Shown with the message, not as headers: the page has fields for them, or they only describe the MIME structure.
STRUCTURAL_HEADERS = frozenset({"from", "to", "subject", "mime-version", "content-type", "content-transfer-encoding"})
URL = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]")

_sequence = itertools.count(1)
KIND_LABELS = {"email": "E-mail", "sms": "SMS", "wallet": "Wallet push"}
_stamps: dict[str, tuple[int, float]] = {}
"""Message key (kind:id) -> (arrival order, epoch seconds). Keys are random ids, so a moto reset needs no purge."""


@dataclass(frozen=True)
class OutboxMessage:
    """One e-mail or SMS as a reader wants it: decoded subject and body, recipients, the headers that matter."""

    kind: str
    id: str
    order: int
    sent_at: float | None
    region: str
    sender: str | None
    to: tuple[str, ...]
    subject: str | None
    body: str
    headers: tuple[tuple[str, str], ...] = ()
    attachments: tuple[str, ...] = ()
    html: str | None = None
    """The HTML part of a multipart e-mail (the page shows the text part and links this one)."""

    @property
    def sent_iso(self) -> str | None:
        """UTC, to the second; None for a message sent around the middleware (never, on the local stack)."""
        return datetime.fromtimestamp(self.sent_at, UTC).isoformat(timespec="seconds") if self.sent_at else None

    @property
    def label(self) -> str:
        """What the page calls the kind: e-mail, SMS, or a wallet push (APNs or a Google Wallet update)."""
        return KIND_LABELS.get(self.kind, self.kind)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.id, "sent_at": self.sent_iso, "region": self.region, "from": self.sender,
                "to": list(self.to), "subject": self.subject, "body": self.body, "headers": dict(self.headers),
                "attachments": list(self.attachments), "has_html": self.html is not None}


def _backends(backends: Any) -> Iterator[tuple[str, Any]]:
    """(region, backend) of every backend moto has created (iterating does not create more)."""
    for account in backends.values():
        yield from account.items()


def _ses_key(message: Any) -> str:
    ids = getattr(message, "ids", None)  # BulkTemplateMessage: one object for many messages
    return f"email:{ids[0] if ids else message.id}"


def _stamp_tail(keys_newest_first: Iterator[str]) -> None:
    """Stamp the keys not stamped yet; walking from the newest, stop at the first stamped (sending only appends)."""
    fresh = list(itertools.takewhile(lambda key: key not in _stamps, keys_newest_first))
    now = time.time()
    for key in reversed(fresh):
        _stamps[key] = (next(_sequence), now)


def stamp(key: str) -> None:
    """Give one message sent outside moto (a wallet push: infra/local/wallet_recorder.py) its order and time."""
    _stamps.setdefault(key, (next(_sequence), time.time()))


def stamp_new() -> None:
    """Give every message sent since the last call its arrival order and time."""
    from moto.ses.models import ses_backends
    from moto.sns.models import sns_backends

    for _, backend in _backends(ses_backends):
        _stamp_tail(_ses_key(m) for m in reversed(backend.sent_messages))
    for _, backend in _backends(sns_backends):
        _stamp_tail(f"sms:{mid}" for mid in reversed(backend.sms_messages))


def _decoded(value: str) -> str:
    """An RFC 2047 header value as text (`=?utf-8?b?...?=` parts joined, folding and edge blanks gone)."""
    return str(make_header(decode_header(value))).replace("\r\n", "").replace("\n", "").strip()


def _text_of(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    return payload.decode(part.get_content_charset() or "utf-8", errors="replace").replace("\r\n", "\n")


def _mime_body(parsed: Message) -> tuple[str, tuple[str, ...], str | None]:
    """The first text/plain part (else the first text/html, as source), the names of attached files, and the
    first text/html part of a message that has both (multipart/alternative)."""
    texts: dict[str, str] = {}
    attachments = []
    for part in parsed.walk():
        if part.is_multipart():
            continue
        filename = part.get_filename()
        if filename or part.get_content_disposition() == "attachment":
            attachments.append(_decoded(filename or "(unnamed)"))
        elif part.get_content_type() in ("text/plain", "text/html"):
            texts.setdefault(part.get_content_type(), _text_of(part))
    html = texts.get("text/html") if "text/plain" in texts else None
    return texts.get("text/plain", texts.get("text/html", "")), tuple(attachments), html


def _unique(addresses: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(a for a in addresses if a))


def _email(region: str, message: Any) -> OutboxMessage:
    """One SES message of any kind moto keeps: SendEmail, SendRawEmail (MIME) or a templated send."""
    key = _ses_key(message)
    order, sent_at = _stamps.get(key, (0, None))
    sender, subject, body = message.source, None, ""
    headers: tuple[tuple[str, str], ...] = ()
    attachments: tuple[str, ...] = ()
    html: str | None = None
    raw = getattr(message, "raw_data", None)
    destinations = message.destinations
    if raw is not None:
        parsed = message_from_string(raw, policy=policy.compat32)
        body, attachments, html = _mime_body(parsed)
        headers = tuple((name, _decoded(str(value))) for name, value in parsed.items()
                        if name.lower() not in STRUCTURAL_HEADERS)
        sender, subject = _decoded(parsed["From"] or sender or ""), _decoded(parsed["Subject"] or "")
        recipients = [address for _, address in getaddresses(list(destinations))]
    elif isinstance(destinations, dict):
        recipients = [a for addresses in destinations.values() for a in addresses]
    else:  # bulk templated: [{"Destination": {"ToAddresses": [...]}, ...}]
        recipients = [a for d in destinations for addresses in d.get("Destination", {}).values() for a in addresses]
    if hasattr(message, "template"):
        subject, body = f"(SES template {message.template})", str(message.template_data or "")
    elif raw is None:
        subject, body = message.subject, str(message.body or "")
    return OutboxMessage(kind="email", id=key.split(":", 1)[1], order=order, sent_at=sent_at, region=region,
                         sender=sender, to=_unique(recipients), subject=subject, body=body, headers=headers,
                         attachments=attachments, html=html)


def messages(to: str = "") -> list[OutboxMessage]:
    """Every e-mail and SMS kept, newest first; with `to`, those with a recipient containing it (any case)."""
    from moto.ses.models import ses_backends
    from moto.sns.models import sns_backends

    found = [_email(region, m) for region, backend in _backends(ses_backends) for m in backend.sent_messages]
    for region, backend in _backends(sns_backends):
        for mid, (phone, text) in backend.sms_messages.items():
            order, sent_at = _stamps.get(f"sms:{mid}", (0, None))
            found.append(OutboxMessage(kind="sms", id=mid, order=order, sent_at=sent_at, region=region,
                                       sender=None, to=(phone,), subject=None, body=text))
    from infra.local import wallet_recorder

    for push in wallet_recorder.pushes():
        order, sent_at = _stamps.get(f"wallet:{push['id']}", (0, push["sent_at"]))
        what = {"apns": "APNs push (pass updated)", "google_class": "Google Wallet class update (PATCH)"}.get(
            push["kind"], "Google Wallet object update (PATCH)")
        found.append(OutboxMessage(kind="wallet", id=push["id"], order=order, sent_at=sent_at, region="local",
                                   sender=None, to=(push["target"],), subject=what, body=push["body"],
                                   headers=tuple(sorted(push["headers"].items()))))
    needle = to.strip().lower()
    if needle:
        found = [m for m in found if any(needle in address.lower() for address in m.to)]
    # A stable sort: unstamped messages (order 0, none on the local stack) come last, latest kept first.
    return sorted(reversed(found), key=lambda m: m.order, reverse=True)


def link_segments(text: str) -> list[tuple[str, bool]]:
    """The text cut into (piece, is_http_url): the page makes links of URLs (an invitation, an unsubscribe)."""
    segments: list[tuple[str, bool]] = []
    last = 0
    for match in URL.finditer(text):
        segments += [(text[last:match.start()], False), (match.group(), True)]
        last = match.end()
    segments.append((text[last:], False))
    return [s for s in segments if s[0]]


@cache
def _environment() -> Environment:
    """Autoescape on for every template: subjects and bodies are user text."""
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["links"] = link_segments
    return env


def render_html(to: str = "") -> str:
    shown = messages(to)
    return _environment().get_template("outbox.html").render(
        messages=shown, to=to.strip(), json_path=OUTBOX_JSON_PATH,
        page_path=OUTBOX_PATH, css_path=OUTBOX_CSS_PATH, html_path=OUTBOX_HTML_PATH)


def html_part(message_id: str) -> str | None:
    """The HTML part of the e-mail with this id, or None (no such e-mail, or it has no HTML part)."""
    return next((m.html for m in messages() if m.kind == "email" and m.id == message_id and m.html), None)


def stylesheet() -> bytes:
    return (HERE / "static" / "outbox.css").read_bytes()
