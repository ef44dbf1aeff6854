"""Wallet pass content: pass.json fields, the manifest's hashes, Google's class, object and JWT claims, the PNGs."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from datetime import UTC, datetime

import pytest

from chalicelib.domain import passes as rules

FACE = rules.CardFace(number="2000000000017", balance=1234, pending=56, tier="gold", status="active")
BRAND = rules.Branding(name="Coffee House", background=rules.Rgb.parse("#102030"))
IDS = rules.AppleIds("pass.example.loyalty", "ABCDE12345", "https://api.example.com/api/v1/wallet/apple/coffee")
AT = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


def test_pass_json_is_a_store_card_with_balance_tier_number_and_both_barcodes() -> None:
    doc = rules.pass_json(FACE, BRAND, IDS, "SERIAL-1", "t" * 43)
    assert (doc["formatVersion"], doc["passTypeIdentifier"], doc["teamIdentifier"], doc["serialNumber"]) == (
        1, "pass.example.loyalty", "ABCDE12345", "SERIAL-1")
    assert doc["webServiceURL"] == "https://api.example.com/api/v1/wallet/apple/coffee"
    assert doc["authenticationToken"] == "t" * 43
    assert (doc["organizationName"], doc["description"], doc["logoText"]) == (
        "pass.organization", "pass.description", "pass.logo")  # localizable strings: keys of pass.strings
    assert (doc["backgroundColor"], doc["foregroundColor"]) == ("rgb(16, 32, 48)", "rgb(255, 255, 255)")
    card = doc["storeCard"]
    assert card["primaryFields"][0]["value"] == 1234 and isinstance(card["primaryFields"][0]["value"], int)
    assert card["headerFields"][0]["value"] == "gold"
    assert card["secondaryFields"][0]["value"] == 56
    assert card["backFields"][0]["value"] == "2000000000017"
    assert [(b["format"], b["message"], b["altText"]) for b in doc["barcodes"]] == [
        ("PKBarcodeFormatCode128", "2000000000017", "2000000000017"),
        ("PKBarcodeFormatQR", "2000000000017", "2000000000017")]
    assert "voided" not in doc


def test_a_blocked_cards_pass_is_voided_and_its_google_object_inactive() -> None:
    blocked = rules.CardFace(number="1", balance=0, pending=0, tier=None, status="blocked")
    assert rules.pass_json(blocked, BRAND, IDS, "S", "t" * 43)["voided"] is True
    assert rules.google_object("i.o", "i.c", blocked)["state"] == "INACTIVE"
    assert rules.pass_json(blocked, BRAND, IDS, "S", "t" * 43)["storeCard"]["headerFields"][0]["value"] == "—"


def test_manifest_is_the_sha1_hex_of_every_file() -> None:
    files = {"pass.json": b'{"a":1}', "icon.png": b"\x89PNG..."}
    assert rules.manifest(files) == {"icon.png": "4d1fb8216c8deca6fd503ae6895cc0ed5cd29089",
                                     "pass.json": "9f89c740ceb46d7418c924a78ac57941d5e96520"}


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at:at + 4])
        kind, body = data[at + 4:at + 8], data[at + 8:at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length:at + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF
        chunks.append((kind, body))
        at += 12 + length
    return chunks


@pytest.mark.parametrize(("name", "size"), sorted(rules.IMAGE_SIZES.items()))
def test_each_image_is_a_valid_png_of_its_size_in_the_tenant_colour(name: str, size: tuple[int, int]) -> None:
    chunks = _png_chunks(rules.images(BRAND)[name])
    assert [k for k, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    width, height, depth, colour, *_ = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (width, height, depth, colour) == (*size, 8, 2)
    raw = zlib.decompress(chunks[1][1])
    assert len(raw) == height * (1 + 3 * width)
    assert raw[0] == 0 and raw[1:4] == bytes((16, 32, 48))  # filter byte, then the background colour
    middle = (height // 2) * (1 + 3 * width) + 1 + 3 * (width // 2)
    assert raw[middle:middle + 3] == bytes((255, 255, 255))  # the mark in the foreground colour


def test_a_png_logo_takes_the_logo_places_and_anything_else_leaves_the_tiles() -> None:
    logo = rules.png(320, 100, rules.Rgb(200, 10, 10))
    tiles = rules.images(BRAND)
    with_logo = rules.images(BRAND, logo)
    assert with_logo["logo.png"] == with_logo["logo@2x.png"] == logo
    assert {k: v for k, v in with_logo.items() if k not in rules.LOGO_FILES} == \
        {k: v for k, v in tiles.items() if k not in rules.LOGO_FILES}, "the icons stay tiles"
    jpeg = b"\xff\xd8\xff\xc0\x00\x11\x08\x00\x64\x01\x40\x03" + b"\x00" * 40
    oversized = logo + b"\x00" * rules.MAX_LOGO_BYTES
    for other in (jpeg, b"not an image", oversized, b""):
        assert rules.images(BRAND, other) == tiles


def test_google_class_object_and_save_claims() -> None:
    cls = rules.google_class("3388.loyalty-coffee", BRAND, "https://cdn.example.com/logo.png")
    assert (cls["id"], cls["issuerName"], cls["hexBackgroundColor"]) == ("3388.loyalty-coffee", "Coffee House",
                                                                         "#102030")
    assert cls["programLogo"]["sourceUri"]["uri"] == "https://cdn.example.com/logo.png"
    assert "programLogo" not in rules.google_class("3388.x", BRAND, "")
    assert "callbackOptions" not in cls
    assert rules.google_class("3388.x", BRAND, "", "https://api.example.com/cb")["callbackOptions"] == {
        "url": "https://api.example.com/cb"}
    obj = rules.google_object("3388.coffee-S", cls["id"], FACE)
    assert obj["loyaltyPoints"]["balance"] == {"int": 1234}
    assert obj["secondaryLoyaltyPoints"]["balance"] == {"string": "gold"}
    assert (obj["barcode"]["type"], obj["barcode"]["value"], obj["state"]) == ("CODE_128", "2000000000017", "ACTIVE")
    claims = rules.save_claims("sa@p.iam.gserviceaccount.com", ["https://console.example.com"], cls, obj, AT)
    assert claims == {"iss": "sa@p.iam.gserviceaccount.com", "aud": "google", "typ": "savetowallet",
                      "iat": int(AT.timestamp()), "origins": ["https://console.example.com"],
                      "payload": {"loyaltyClasses": [cls], "loyaltyObjects": [obj]}}
    assert rules.google_id("3388", "coffee/house#1") == "3388.coffee_house_1"


def test_jwt_signing_input_is_base64url_header_and_claims() -> None:
    signing_input = rules.jwt_signing_input({"a": 1}, "kid-1").decode()
    header, claims = signing_input.split(".")
    def pad(text: str) -> str:
        return text + "=" * (-len(text) % 4)

    assert json.loads(base64.urlsafe_b64decode(pad(header))) == {"alg": "RS256", "typ": "JWT", "kid": "kid-1"}
    assert json.loads(base64.urlsafe_b64decode(pad(claims))) == {"a": 1}
    assert rules.jwt(signing_input.encode(), b"\xff\xfe") == signing_input + ".__4"


def test_tokens_are_per_pass_and_compared_whole() -> None:
    secret = b"s" * 32
    token = rules.pass_token(secret, "coffee", "SERIAL", "salt-1")
    assert len(token) == 43 and token == rules.pass_token(secret, "coffee", "SERIAL", "salt-1")
    assert token != rules.pass_token(secret, "coffee", "SERIAL", "salt-2")
    assert token != rules.pass_token(secret, "fuel", "SERIAL", "salt-1")
    assert rules.token_valid(secret, "coffee", "SERIAL", "salt-1", token)
    for wrong in (None, "", token[:-1], token + "x", rules.pass_token(secret, "coffee", "OTHER", "salt-1")):
        assert not rules.token_valid(secret, "coffee", "SERIAL", "salt-1", wrong)
    assert rules.bearer_token(f"ApplePass {token}") == token
    assert [rules.bearer_token(h) for h in (None, "", f"Bearer {token}", "ApplePass ", "ApplePass")] == [None] * 5
    assert len(rules.new_serial()) == 24 and rules.new_serial() != rules.new_serial()


def test_tags_increase_and_dates_follow_http_rules() -> None:
    first = rules.next_tag(None, AT)
    assert first == int(AT.timestamp() * 1000)
    assert rules.next_tag(first, AT) == first + 1  # a second change in the same millisecond
    assert rules.http_date(first) == "Mon, 02 Nov 2026 10:00:00 GMT"
    assert not rules.modified_since(first, "Mon, 02 Nov 2026 10:00:00 GMT")
    assert rules.modified_since(first + 1000, "Mon, 02 Nov 2026 10:00:00 GMT")
    assert rules.modified_since(first, None) and rules.modified_since(first, "yesterday")
    assert [rules.parse_since(v) for v in ("123", " 45 ", None, "abc", "1" * 17)] == [123, 45, None, None, None]


def test_retries_back_off_then_stop_and_logs_are_bounded() -> None:
    assert [rules.retry_delay(n) for n in range(1, 9)] == [30, 60, 120, 240, 480, 900, 900, None]
    kept = rules.log_lines(["ok", "bad\x00line\n", "x" * 5000, *(["y"] * 100)])
    assert kept[:2] == ["ok", "bad line "] and len(kept[2]) == 1000 and len(kept) == 50
    with pytest.raises(ValueError):
        rules.Rgb.parse("#12345g")


def test_the_face_fingerprint_changes_with_what_the_pass_shows_only() -> None:
    same = rules.CardFace(number="2000000000017", balance=1234, pending=56, tier="gold", status="active")
    assert rules.face_fingerprint(FACE) == rules.face_fingerprint(same) and len(rules.face_fingerprint(FACE)) == 32
    for changed in (rules.CardFace("2000000000017", 1290, 0, "gold", "active"),
                    rules.CardFace("2000000000017", 1234, 56, "silver", "active"),
                    rules.CardFace("2000000000017", 1234, 56, "gold", "blocked")):
        assert rules.face_fingerprint(changed) != rules.face_fingerprint(FACE)


def test_the_tenants_colour_is_the_background_with_the_text_that_reads_better() -> None:
    dark = rules.Branding.of_tenant("Coffee House", "#1f5f8b")
    assert (dark.background.css, dark.foreground.css, dark.label.css) == (
        "rgb(31, 95, 139)", "rgb(255, 255, 255)", "rgb(199, 215, 226)")
    light = rules.Branding.of_tenant("Coffee House", "#FFD700")
    assert (light.foreground.css, light.label.css) == ("rgb(17, 24, 39)", "rgb(76, 72, 29)")
    assert rules.contrast(light.foreground, light.background) > 4.5


def test_the_strings_files_translate_every_key_the_pass_uses_and_escape_quotes() -> None:
    """A key with no translation would show as the key itself on the phone."""
    assert set(rules.STRINGS["ru"]) == set(rules.STRINGS["en"])
    card = rules.pass_json(FACE, BRAND, IDS, "SERIAL-1", "t" * 43)["storeCard"]
    used = {f[k] for group in card.values() for f in group for k in ("label", "changeMessage") if k in f}
    assert used | {card["auxiliaryFields"][0]["value"]} <= set(rules.STRINGS["ru"])
    data = rules.strings_file({"a": 'say "hi"\\now'})
    assert data.startswith(b"\xff\xfe") and data.decode("utf-16") == '"a" = "say \\"hi\\"\\\\now";\n'
    assert sorted(rules.localizations("Coffee House")) == ["en.lproj/pass.strings", "ru.lproj/pass.strings"]
    doc = rules.pass_json(FACE, BRAND, IDS, "SERIAL-1", "t" * 43)
    for lang in ("ru", "en"):  # the top-level localizable keys too, with the tenant's name
        entries = {**rules.STRINGS[lang], **rules.brand_strings("Coffee House")[lang]}
        assert {doc["organizationName"], doc["description"], doc["logoText"]} <= set(entries)


def test_the_pass_names_its_tenant_and_describes_itself_in_russian_and_english() -> None:
    files = rules.localizations('Кофе "Дом"')
    ru, en = files["ru.lproj/pass.strings"].decode("utf-16"), files["en.lproj/pass.strings"].decode("utf-16")
    assert '"pass.description" = "Карта лояльности Кофе \\"Дом\\"";' in ru
    assert '"pass.organization" = "Кофе \\"Дом\\"";' in ru and '"pass.logo" = "Кофе \\"Дом\\"";' in ru
    assert '"pass.description" = "Кофе \\"Дом\\" loyalty card";' in en
    assert '"label.points" = "Points";' in en and '"label.points" = "Баллы";' in ru


def test_google_labels_are_localized_strings_in_the_tenants_language_first() -> None:
    assert (rules.tenant_language("ru"), rules.tenant_language("en"), rules.tenant_language("de")) == (
        "ru", "en", "en")
    russian = rules.Branding.of_tenant("Кофейня", "#1f5f8b", "ru")
    obj = rules.google_object("3388.o", "3388.c", FACE, "ru")
    assert obj["loyaltyPoints"] == {
        "label": "Баллы", "balance": {"int": 1234},
        "localizedLabel": {"defaultValue": {"language": "ru", "value": "Баллы"},
                           "translatedValues": [{"language": "en", "value": "Points"}]}}
    assert obj["secondaryLoyaltyPoints"]["localizedLabel"] == {
        "defaultValue": {"language": "ru", "value": "Уровень"},
        "translatedValues": [{"language": "en", "value": "Tier"}]}
    english = rules.google_object("3388.o", "3388.c", FACE, "en")["loyaltyPoints"]
    assert (english["label"], english["localizedLabel"]) == ("Points", {
        "defaultValue": {"language": "en", "value": "Points"},
        "translatedValues": [{"language": "ru", "value": "Баллы"}]})
    cls = rules.google_class("3388.c", russian, "https://cdn.example.com/logo.png")
    assert (cls["programName"], cls["localizedProgramName"]) == ("Программа лояльности Кофейня", {
        "defaultValue": {"language": "ru", "value": "Программа лояльности Кофейня"},
        "translatedValues": [{"language": "en", "value": "Кофейня loyalty"}]})
    assert (cls["accountIdLabel"], cls["localizedAccountIdLabel"]["translatedValues"]) == (
        "Номер карты", [{"language": "en", "value": "Card number"}])
    assert cls["programLogo"]["contentDescription"] == {"defaultValue": {"language": "ru", "value": "Кофейня"}}


def test_the_class_fingerprint_follows_what_the_class_shows_not_its_id() -> None:
    cls = rules.google_class("3388.a", BRAND, "https://cdn.example.com/logo.png", "https://api.example.com/cb")
    same = rules.google_class("3388.b", BRAND, "https://cdn.example.com/logo.png", "https://api.example.com/cb")
    assert rules.class_fingerprint(cls) == rules.class_fingerprint(same) and len(rules.class_fingerprint(cls)) == 32
    for changed in (rules.Branding(name="Coffee House", background=rules.Rgb.parse("#102031")),
                    rules.Branding(name="Coffee Home", background=rules.Rgb.parse("#102030")),
                    rules.Branding(name="Coffee House", background=rules.Rgb.parse("#102030"), language="ru")):
        other = rules.google_class("3388.a", changed, "https://cdn.example.com/logo.png", "https://api.example.com/cb")
        assert rules.class_fingerprint(other) != rules.class_fingerprint(cls)
    moved_logo = rules.google_class("3388.a", BRAND, "https://cdn.example.com/new.png", "https://api.example.com/cb")
    assert rules.class_fingerprint(moved_logo) != rules.class_fingerprint(cls)


def test_google_signed_bytes_are_little_endian_length_prefixed_chunks() -> None:
    assert rules.length_value("Google", "ЖЖ") == b"\x06\x00\x00\x00Google\x04\x00\x00\x00" + "ЖЖ".encode()


def test_a_callback_message_needs_every_field_a_known_event_and_a_real_nonce() -> None:
    good = '{"classId":"1.c","objectId":"1.o","eventType":"del","nonce":"n-123456","expTimeMillis":5}'
    assert rules.callback_event(good) == rules.CallbackEvent("1.c", "1.o", "del", "n-123456", 5)
    for bad in ("not json", good.replace('"del"', '"update"'), good.replace('"n-123456"', '"n"'),
                good.replace('"expTimeMillis":5', '"expTimeMillis":"soon"'), '{"classId":"1.c"}'):
        assert rules.callback_event(bad) is None, bad
    assert rules.key_usable(str(int(AT.timestamp() * 1000) + 1), AT) is True
    assert rules.key_usable(str(int(AT.timestamp() * 1000)), AT) is False
    assert rules.key_usable("never", AT) is False


def test_the_look_fingerprint_follows_the_name_and_colours_every_pass_shows() -> None:
    base = rules.Branding.of_tenant("Coffee House", "#1f5f8b")
    assert rules.look_fingerprint(base) == rules.look_fingerprint(rules.Branding.of_tenant("Coffee House", "#1F5F8B"))
    assert len({rules.look_fingerprint(b) for b in (base, rules.Branding.of_tenant("Coffee Home", "#1f5f8b"),
                                                   rules.Branding.of_tenant("Coffee House", "#1f5f8c"),
                                                   rules.Branding.of_tenant("Coffee House", "#1f5f8b", logo_id="a1"),
                                                   rules.Branding.of_tenant("Coffee House", "#1f5f8b", "ru"))
                }) == 5
