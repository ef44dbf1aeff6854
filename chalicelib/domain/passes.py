"""Wallet passes of a card: what an Apple Wallet store card and a Google Wallet loyalty object show, as data.

Pure rules, no I/O: the service (services/wallet) signs and stores; this
module decides the content. One pass per card, named by an unguessable serial
number, and authenticated on Apple's pass web service by its own token (derived
from a server secret and a random per-pass salt, stored nowhere, compared in
constant time). A change of balance, tier or status gives the pass a new "last updated" tag: an integer of
milliseconds, strictly increasing per pass, which Apple's `passesUpdatedSince`
and our update jobs' de-duplication both key on.

Formats, from the platforms' references:
* Apple: pass.json (formatVersion 1, storeCard with header/primary/secondary/
  auxiliary/back fields, `barcodes` Code 128 and QR), manifest.json (SHA-1 hex
  of every other file), a detached PKCS#7 signature of the manifest;
  https://developer.apple.com/documentation/walletpasses/pass
* Google: a loyalty class and object in a "Save to Google Wallet" JWT
  (iss, aud "google", typ "savetowallet", iat, origins, payload.loyaltyClasses/
  loyaltyObjects), RS256; https://developers.google.com/wallet/reference/rest/v1/Jwt
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import struct
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

from chalicelib.domain import colours
from chalicelib.domain.images import sniff

FORMAT_VERSION = 1
GOOGLE_SAVE_URL = "https://pay.google.com/gp/v/save/"
SERIAL_BYTES = 18
"""24 URL-safe characters (144 random bits): a serial cannot be guessed or enumerated."""
MAX_LOG_LINES = 50
MAX_LOG_CHARS = 1000
UPDATE_ATTEMPTS = 8
"""An update (APNs push or Google PATCH) is tried this many times, backing off, then given up."""
FIRST_RETRY_SECONDS = 30
MAX_RETRY_SECONDS = 900
"""SQS delays at most 15 minutes: the backoff stops doubling there (30 s, 1, 2, 4, 8, 15, 15 min)."""


@dataclass(frozen=True)
class Rgb:
    red: int
    green: int
    blue: int

    @property
    def css(self) -> str:
        """pass.json's colour form: `rgb(r, g, b)`."""
        return f"rgb({self.red}, {self.green}, {self.blue})"

    @property
    def hex(self) -> str:
        """Google's form: `#rrggbb`."""
        return f"#{self.red:02x}{self.green:02x}{self.blue:02x}"

    @classmethod
    def parse(cls, value: str) -> Rgb:
        """`#rrggbb` (how the console and tenants/*.yaml will give a brand colour)."""
        text = value.strip().lstrip("#")
        if len(text) != 6 or any(c not in "0123456789abcdefABCDEF" for c in text):
            raise ValueError(f"not a #rrggbb colour: {value!r}")
        return cls(int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16))


DEFAULT_BACKGROUND = Rgb(31, 41, 55)
DEFAULT_FOREGROUND = Rgb(255, 255, 255)
DEFAULT_LABEL = Rgb(209, 213, 219)


DARK_TEXT = Rgb(17, 24, 39)
LABEL_SHARE = 0.75
"""A label is the text colour mixed a quarter of the way towards the background: set apart yet readable."""


LANGUAGES = ("ru", "en")
"""The languages of every pass text: the pass's strings files, Google's translated values."""


def tenant_language(language: str) -> str:
    """A tenant's first language: its `language` setting (`Tenant.language`, "ru" or "en"); anything else English.

    Google shows a LocalizedString's `defaultValue` when the phone's language is none of its translations.
    """
    return language if language in LANGUAGES else "en"


@dataclass(frozen=True)
class Branding:
    """How the tenant's passes look: its name, colours and first language."""

    name: str
    background: Rgb = DEFAULT_BACKGROUND
    foreground: Rgb = DEFAULT_FOREGROUND
    label: Rgb = DEFAULT_LABEL
    language: str = "en"
    logo_id: str | None = None
    """The tenant's member-site logo (an image of its library), shown top left when it is a PNG."""

    @classmethod
    def of_tenant(cls, name: str, primary_colour: str, language: str = "en",
                  logo_id: str | None = None) -> Branding:
        """The tenant's primary colour as the background, with white or dark text, whichever reads better on it."""
        background = Rgb.parse(primary_colour)
        foreground = readable_on(background)
        return cls(name=name, background=background, foreground=foreground,
                   label=mix(foreground, background, LABEL_SHARE), language=language, logo_id=logo_id)


def contrast(a: Rgb, b: Rgb) -> float:
    """WCAG 2 contrast ratio (1 .. 21)."""
    return colours.contrast(a.hex, b.hex)


def readable_on(background: Rgb) -> Rgb:
    """White text, or dark text when it contrasts more with the background (a light brand colour)."""
    return DEFAULT_FOREGROUND if contrast(DEFAULT_FOREGROUND, background) >= contrast(DARK_TEXT, background) \
        else DARK_TEXT


def mix(a: Rgb, b: Rgb, share_of_a: float) -> Rgb:
    def part(x: int, y: int) -> int:
        return round(x * share_of_a + y * (1 - share_of_a))
    return Rgb(part(a.red, b.red), part(a.green, b.green), part(a.blue, b.blue))


@dataclass(frozen=True)
class CardFace:
    """What a pass shows of its card: integers for points, the status as the API names it."""

    number: str
    balance: int
    pending: int
    tier: str | None
    status: str

    @property
    def active(self) -> bool:
        """A blocked or closed card's pass is voided (Apple) / inactive (Google), not deleted."""
        return self.status in ("issued", "active")


@dataclass(frozen=True)
class AppleIds:
    pass_type_id: str
    team_id: str
    web_service_url: str
    """`<public base>/v1/wallet/apple/<tenant>`: the device calls `<this>/v1/devices/...`."""


# --- secrets ------------------------------------------------------------------------------------------

def new_serial() -> str:
    return secrets.token_urlsafe(SERIAL_BYTES)


def new_salt() -> str:
    return secrets.token_urlsafe(16)


def pass_token(secret: bytes, tenant_id: str, serial: str, salt: str) -> str:
    """A pass's authentication token: HMAC-SHA256 of the server's secret over tenant, serial and the pass's salt.

    Random per pass (the salt is), the same for every download of that pass (Apple requires the token never to
    change), and stored nowhere: a copy of the table alone cannot call the pass web service. 43 characters.
    """
    mac = hmac.new(secret, f"wallet-pass:{tenant_id}:{serial}:{salt}".encode(), hashlib.sha256)
    return b64url(mac.digest())


def token_valid(secret: bytes, tenant_id: str, serial: str, salt: str, presented: str | None) -> bool:
    """Constant-time comparison of a presented `ApplePass` token with the pass's own."""
    expected = pass_token(secret, tenant_id, serial, salt).encode()
    return hmac.compare_digest(expected, (presented or "").encode()) and presented is not None


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: ApplePass <token>` header; None for any other form."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    return token if scheme == "ApplePass" and token and len(token) <= 256 else None


# --- the update tag -----------------------------------------------------------------------------------

def next_tag(previous: int | None, now: datetime) -> int:
    """Milliseconds since the epoch, and always past the previous tag (two changes in one millisecond)."""
    tag = int(now.timestamp() * 1000)
    return max(tag, (previous or 0) + 1)


def tag_time(tag: int) -> datetime:
    return datetime.fromtimestamp(tag / 1000, UTC)


def parse_since(value: str | None) -> int | None:
    """`passesUpdatedSince` as we issued it (our `lastUpdated`); anything else means "since ever"."""
    if value is None or not value.strip().isdigit() or len(value.strip()) > 16:
        return None
    return int(value.strip())


def http_date(tag: int) -> str:
    """Last-Modified of a pass: HTTP dates have whole seconds."""
    return format_datetime(tag_time(tag).replace(microsecond=0), usegmt=True)


def modified_since(tag: int, if_modified_since: str | None) -> bool:
    """Whether the pass changed after the If-Modified-Since date (an unreadable date: yes, send it)."""
    if not if_modified_since:
        return True
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError, IndexError):
        return True
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return tag_time(tag).replace(microsecond=0) > since


def retry_delay(attempt: int) -> int | None:
    """Seconds before attempt `attempt + 1`, or None when `attempt` was the last."""
    if attempt >= UPDATE_ATTEMPTS:
        return None
    return int(min(FIRST_RETRY_SECONDS << (attempt - 1), MAX_RETRY_SECONDS))


def log_lines(lines: list[str]) -> list[str]:
    """What of a device's log we keep: at most 50 lines of at most 1000 characters, control characters gone."""
    out = []
    for line in lines[:MAX_LOG_LINES]:
        out.append("".join(c if c.isprintable() else " " for c in str(line))[:MAX_LOG_CHARS])
    return out


# --- Apple ---------------------------------------------------------------------------------------------

def pass_json(face: CardFace, brand: Branding, ids: AppleIds, serial: str, token: str) -> dict[str, Any]:
    """pass.json of a store card: balance up front, tier in the header, pending and status below, number on the back.

    Labels, change messages, the status, and the organisation name, description and logo text (localizable
    strings in Apple's pass format) are keys of the pass's strings files (`localizations`): Wallet shows them in
    the phone's language, Russian or English.
    """
    barcode = {"message": face.number, "messageEncoding": "iso-8859-1", "altText": face.number}
    fields: dict[str, Any] = {
        "headerFields": [{"key": "tier", "label": "label.tier", "value": face.tier or "—"}],
        "primaryFields": [{"key": "balance", "label": "label.points", "value": face.balance,
                           "numberStyle": "PKNumberStyleDecimal", "changeMessage": "change.balance"}],
        "secondaryFields": [{"key": "pending", "label": "label.pending", "value": face.pending,
                             "numberStyle": "PKNumberStyleDecimal"}],
        "auxiliaryFields": [{"key": "status", "label": "label.status", "value": f"status.{face.status}",
                             "changeMessage": "change.status"}],
        "backFields": [{"key": "number", "label": "label.number", "value": face.number}],
    }
    out: dict[str, Any] = {
        "formatVersion": FORMAT_VERSION,
        "passTypeIdentifier": ids.pass_type_id,
        "serialNumber": serial,
        "teamIdentifier": ids.team_id,
        "organizationName": "pass.organization",
        "description": "pass.description",
        "logoText": "pass.logo",
        "foregroundColor": brand.foreground.css,
        "backgroundColor": brand.background.css,
        "labelColor": brand.label.css,
        "webServiceURL": ids.web_service_url,
        "authenticationToken": token,
        "barcodes": [{"format": "PKBarcodeFormatCode128", **barcode}, {"format": "PKBarcodeFormatQR", **barcode}],
        "storeCard": fields,
    }
    if not face.active:
        out["voided"] = True
    return out


STRINGS: dict[str, dict[str, str]] = {
    "en": {"label.tier": "Tier", "label.points": "Points", "label.pending": "Pending", "label.status": "Status",
           "label.number": "Card number", "change.balance": "Your balance is now %@",
           "change.status": "Your card is now %@", "status.issued": "Issued", "status.active": "Active",
           "status.blocked": "Blocked", "status.expired": "Expired"},
    "ru": {"label.tier": "Уровень", "label.points": "Баллы", "label.pending": "Ожидают",
           "label.status": "Статус", "label.number": "Номер карты", "change.balance": "Ваш баланс: %@",
           "change.status": "Статус карты: %@", "status.issued": "Выпущена", "status.active": "Активна",
           "status.blocked": "Заблокирована", "status.expired": "Истекла"},
}
"""The fixed keys pass_json uses, per language (`<lang>.lproj/pass.strings`); `brand_strings` adds the tenant's."""


def brand_strings(name: str) -> dict[str, dict[str, str]]:
    """The tenant's keys: its name (a name is not translated) and the pass's description, per language."""
    return {"en": {"pass.organization": name, "pass.logo": name, "pass.description": f"{name} loyalty card"},
            "ru": {"pass.organization": name, "pass.logo": name, "pass.description": f"Карта лояльности {name}"}}


def strings_file(entries: dict[str, str]) -> bytes:
    """A `.strings` file (`"key" = "value";` lines) in UTF-16 with a byte-order mark, as Apple documents them."""
    def quoted(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    lines = [f"{quoted(key)} = {quoted(value)};" for key, value in sorted(entries.items())]
    return ("\n".join(lines) + "\n").encode("utf-16")


def localizations(name: str) -> dict[str, bytes]:
    """The pass's strings files, by their path in the package: the fixed keys and the tenant's (`name`)."""
    tenant = brand_strings(name)
    return {f"{lang}.lproj/pass.strings": strings_file({**entries, **tenant[lang]})
            for lang, entries in STRINGS.items()}


def manifest(files: dict[str, bytes]) -> dict[str, str]:
    """manifest.json: the SHA-1 hex digest of every file of the pass (Apple's format requires SHA-1 here)."""
    return {name: hashlib.sha1(data, usedforsecurity=False).hexdigest() for name, data in sorted(files.items())}


def look_fingerprint(brand: Branding) -> str:
    """What every pass of the tenant shows of the tenant (its name in the strings files, its colours and the
    images made of them, its logo, its language: the Google labels' default), in 32 hex characters: a change of it
    re-pushes all the tenant's passes."""
    return hashlib.sha256(canonical_json([brand.name, brand.background.css, brand.foreground.css, brand.label.css,
                                          brand.language, *([brand.logo_id] if brand.logo_id else [])])
                          ).hexdigest()[:32]


def face_fingerprint(face: CardFace) -> str:
    """What a pass showed, in 32 hex characters: the daily refresh compares it with what the card shows now."""
    return hashlib.sha256(canonical_json([face.number, face.balance, face.pending, face.tier, face.status])
                          ).hexdigest()[:32]


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


# --- images --------------------------------------------------------------------------------------------

IMAGE_SIZES: dict[str, tuple[int, int]] = {
    "icon.png": (29, 29), "icon@2x.png": (58, 58), "icon@3x.png": (87, 87),
    "logo.png": (160, 50), "logo@2x.png": (320, 100),
}
"""Apple requires icon.png; logo.png is shown top left. Retina variants keep them sharp."""


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png(width: int, height: int, fill: Rgb, mark: Rgb | None = None) -> bytes:
    """An 8-bit RGB PNG of one colour, with a centred square of `mark` (a third of the height) if given."""
    side = height // 3
    top, left = (height - side) // 2, (width - side) // 2
    rows = []
    plain = bytes((fill.red, fill.green, fill.blue)) * width
    for y in range(height):
        if mark is not None and top <= y < top + side:
            accent = bytes((mark.red, mark.green, mark.blue)) * side
            rows.append(b"\x00" + plain[:left * 3] + accent + plain[(left + side) * 3:])
        else:
            rows.append(b"\x00" + plain)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
            + _chunk(b"IEND", b""))


LOGO_FILES = ("logo.png", "logo@2x.png")
MAX_LOGO_BYTES = 512 * 1024
"""A larger logo is left out: every device downloads the whole pass on every update."""


def images(brand: Branding, logo: bytes | None = None) -> dict[str, bytes]:
    """The pass's images: tiles in the tenant's colours, and the tenant's logo top left when it is a PNG
    (Wallet takes PNG only and scales the image into its 160 x 50 point space; without an image library
    here, a JPEG, GIF or WebP logo is not converted and the tile stays)."""
    out = {name: png(w, h, brand.background, brand.foreground) for name, (w, h) in IMAGE_SIZES.items()}
    found = sniff(logo) if logo and len(logo) <= MAX_LOGO_BYTES else None
    if logo is not None and found is not None and found.content_type == "image/png":
        out.update(dict.fromkeys(LOGO_FILES, logo))
    return out


# --- Google --------------------------------------------------------------------------------------------

def google_id(issuer_id: str, suffix: str) -> str:
    """Google ids are `<issuer id>.<suffix>`, the suffix of letters, digits, '.', '_' and '-'."""
    clean = "".join(c if c.isalnum() or c in "._-" else "_" for c in suffix)
    return f"{issuer_id}.{clean}"


GOOGLE_TEXT: dict[str, dict[str, str]] = {
    "points": {"ru": "Баллы", "en": "Points"},
    "tier": {"ru": "Уровень", "en": "Tier"},
    "number": {"ru": "Номер карты", "en": "Card number"},
    "program": {"ru": "Программа лояльности {name}", "en": "{name} loyalty"},
}
"""The Google class's and object's texts, per language (`{name}`: the tenant's name)."""


def localized(key: str, language: str, name: str = "") -> dict[str, Any]:
    """A Google LocalizedString of a GOOGLE_TEXT entry: the tenant's language as `defaultValue`, the others as
    `translatedValues` (https://developers.google.com/wallet/reference/rest/v1/LocalizedString)."""
    texts = {lang: text.replace("{name}", name) for lang, text in GOOGLE_TEXT[key].items()}
    first = language if language in texts else "en"
    return {"defaultValue": {"language": first, "value": texts[first]},
            "translatedValues": [{"language": lang, "value": texts[lang]} for lang in LANGUAGES
                                 if lang != first and lang in texts]}


def _default(value: dict[str, Any]) -> str:
    return str(value["defaultValue"]["value"])


def google_class(class_id: str, brand: Branding, logo_url: str, callback_url: str = "") -> dict[str, Any]:
    """The tenant's loyalty class (one per tenant); Google requires the logo to approve it (set it when deployed).

    The plain fields (`programName`, `accountIdLabel`...) hold the tenant's language, their `localized...`
    twins both languages. `callback_url` is where Google posts saves and deletions of the class's objects
    (`callbackOptions`). Also the body of the class PATCH when the tenant's look changes (`class_fingerprint`).
    """
    program, number = localized("program", brand.language, brand.name), localized("number", brand.language)
    out: dict[str, Any] = {"id": class_id, "issuerName": brand.name,
                           "programName": _default(program), "localizedProgramName": program,
                           "accountIdLabel": _default(number), "localizedAccountIdLabel": number,
                           "accountNameLabel": _default(number), "localizedAccountNameLabel": number,
                           "hexBackgroundColor": brand.background.hex, "reviewStatus": "UNDER_REVIEW"}
    if callback_url:
        out["callbackOptions"] = {"url": callback_url}
    if logo_url:
        out["programLogo"] = {"sourceUri": {"uri": logo_url},
                              "contentDescription": {"defaultValue": {"language": brand.language,
                                                                      "value": brand.name}}}
    return out


def class_fingerprint(cls: dict[str, Any]) -> str:
    """What a class shows, in 32 hex characters (its id aside): a change of it is PATCHed to Google."""
    return hashlib.sha256(canonical_json({k: v for k, v in cls.items() if k != "id"})).hexdigest()[:32]


def google_object(object_id: str, class_id: str, face: CardFace, language: str = "en") -> dict[str, Any]:
    """The card's loyalty object: also the body of the PATCH that updates it. Labels in both languages."""
    points, tier = localized("points", language), localized("tier", language)
    return {"id": object_id, "classId": class_id, "state": "ACTIVE" if face.active else "INACTIVE",
            "accountId": face.number, "accountName": face.number,
            "loyaltyPoints": {"label": _default(points), "localizedLabel": points,
                              "balance": {"int": face.balance}},
            "secondaryLoyaltyPoints": {"label": _default(tier), "localizedLabel": tier,
                                       "balance": {"string": face.tier or "—"}},
            "barcode": {"type": "CODE_128", "value": face.number, "alternateText": face.number}}


def save_claims(service_account: str, origins: list[str], cls: dict[str, Any], obj: dict[str, Any],
                issued_at: datetime) -> dict[str, Any]:
    """The "Save to Google Wallet" JWT's claims."""
    return {"iss": service_account, "aud": "google", "typ": "savetowallet", "iat": int(issued_at.timestamp()),
            "origins": origins, "payload": {"loyaltyClasses": [cls], "loyaltyObjects": [obj]}}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_signing_input(claims: dict[str, Any], key_id: str | None = None) -> bytes:
    """`<header>.<claims>`, base64url: what RS256 signs."""
    header: dict[str, Any] = {"alg": "RS256", "typ": "JWT"}
    if key_id:
        header["kid"] = key_id
    return f"{b64url(canonical_json(header))}.{b64url(canonical_json(claims))}".encode()


def jwt(signing_input: bytes, signature: bytes) -> str:
    return f"{signing_input.decode()}.{b64url(signature)}"


# --- Google callbacks (saves and deletions) ----------------------------------------------------------------

CALLBACK_PROTOCOL = "ECv2SigningOnly"
CALLBACK_KEY_SENDER = "Google"
"""Who signs the intermediate signing key (with a root signing key)."""
CALLBACK_SENDER = "GooglePayPasses"
"""Who signs a callback message (with the intermediate key); the recipient is the issuer id."""
CALLBACK_EVENTS = ("save", "del")


@dataclass(frozen=True)
class CallbackEvent:
    """A verified callback: which object was saved to or deleted from a wallet, until when the message holds."""

    class_id: str
    object_id: str
    event_type: str
    nonce: str
    expires_ms: int


def length_value(*chunks: str) -> bytes:
    """Google's signed bytes: each chunk as its UTF-8 length (4 bytes, little-endian) followed by the chunk."""
    out = b""
    for chunk in chunks:
        data = chunk.encode()
        out += struct.pack("<I", len(data)) + data
    return out


def key_usable(expiration_ms: object, now: datetime) -> bool:
    """A signing key holds while its `keyExpiration` (milliseconds, as a string) is after now."""
    try:
        return int(str(expiration_ms)) > int(now.timestamp() * 1000)
    except ValueError:
        return False


def callback_event(signed_message: str) -> CallbackEvent | None:
    """The signed message's fields (classId, objectId, eventType, nonce, expTimeMillis); None if malformed."""
    try:
        raw = json.loads(signed_message)
        event = CallbackEvent(class_id=str(raw["classId"]), object_id=str(raw["objectId"]),
                              event_type=str(raw["eventType"]), nonce=str(raw["nonce"]),
                              expires_ms=int(raw["expTimeMillis"]))
    except (ValueError, KeyError, TypeError):
        return None
    if event.event_type not in CALLBACK_EVENTS or not 8 <= len(event.nonce) <= 200:
        return None
    return event
