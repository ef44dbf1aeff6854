"""Apple Wallet: the signed `.pkpass` of a card, and Apple's pass web service for the devices that installed it.

The package: pass.json, the images, manifest.json (SHA-1 of each file) and
`signature`, a detached PKCS#7 (DER) signature of manifest.json made with the
Pass Type ID certificate's key, SHA-256, carrying the certificate and Apple's
WWDR intermediate (cryptography's PKCS7SignatureBuilder).

The web service (https://developer.apple.com/documentation/walletpasses/adding-a-web-service-to-update-passes):
the device calls `<webServiceURL>/v1/...`, webServiceURL being
`<public base>/v1/wallet/apple/<tenant>`. Every call about one pass carries
`Authorization: ApplePass <token>`; a missing or wrong token, or a token of
another pass, is 401 and changes nothing. The pass type must be ours (else 404).
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from chalicelib import clock
from chalicelib.domain import passes as rules
from chalicelib.errors import ApiError, not_found, unauthorized
from chalicelib.observability import logger
from chalicelib.schemas.common import SLUG_PATTERN
from chalicelib.schemas.wallet import UpdatedSerials
from chalicelib.services.wallet import cards
from chalicelib.services.wallet.credentials import Credentials, load
from chalicelib.settings import settings
from chalicelib.storage import passes as store


@dataclass(frozen=True)
class Package:
    """A `.pkpass` file and when its pass last changed (Last-Modified)."""

    data: bytes
    tag: int

    @property
    def last_modified(self) -> str:
        return rules.http_date(self.tag)


def sign(manifest_json: bytes, creds: Credentials) -> bytes:
    """Detached PKCS#7 signature (DER) of the manifest, with the signer's certificate and the WWDR intermediate."""
    builder = (pkcs7.PKCS7SignatureBuilder().set_data(manifest_json)
               .add_signer(creds.apple_certificate, creds.apple_key, hashes.SHA256())
               .add_certificate(creds.apple_wwdr))
    return builder.sign(serialization.Encoding.DER,
                        [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary])


def package(pass_json: dict[str, object], images: dict[str, bytes], creds: Credentials, name: str) -> bytes:
    """The `.pkpass` zip: pass.json, images, the strings files (en, ru; `name` the tenant's), manifest.json and its
    signature."""
    files = {"pass.json": json.dumps(pass_json, ensure_ascii=False, indent=1).encode(), **images,
             **rules.localizations(name)}
    manifest_json = json.dumps(rules.manifest(files), indent=1).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr("manifest.json", manifest_json)
        archive.writestr("signature", sign(manifest_json, creds))
    return out.getvalue()


def build(found: cards.CardPass, creds: Credentials) -> Package:
    brand = cards.branding(found.tenant_id)
    ids = rules.AppleIds(settings.wallet_pass_type_id, settings.wallet_team_id, cards.web_service_url(found.tenant_id))
    content = rules.pass_json(cards.face(found.card), brand, ids, found.serial,
                              cards.pass_token(creds, found.tenant_id, found.stored.doc))
    return Package(package(content, rules.images(brand, cards.logo(found.tenant_id, brand)), creds, brand.name),
                   found.tag)


def for_card(tenant_id: str, number: str) -> Package:
    """The card's pass (made on first request), signed, for staff to hand over (the member site will link it)."""
    creds = load()
    return build(cards.ensure(tenant_id, number), creds)


# --- the pass web service ---------------------------------------------------------------------------------

def _check_type(tenant_id: str, pass_type_id: str) -> None:
    """Our pass type, under a tenant id that can be one (a slug: never a '#' to reach into other partitions)."""
    if not re.match(SLUG_PATTERN, tenant_id):
        raise not_found("Tenant")
    if pass_type_id != settings.wallet_pass_type_id:
        raise not_found("Pass type")


def _authorised(tenant_id: str, pass_type_id: str, serial: str, authorization: str | None
                ) -> tuple[cards.CardPass, Credentials]:
    """The pass, if the caller holds its token; 401 otherwise (an unknown serial looks the same)."""
    _check_type(tenant_id, pass_type_id)
    creds = load()
    found = cards.by_serial(tenant_id, serial)
    presented = rules.bearer_token(authorization)
    if found is None or not cards.token_valid(creds, tenant_id, found.stored.doc, presented):
        raise unauthorized("The pass's ApplePass token is missing or wrong.", "invalid_pass_token")
    return found, creds


def register(tenant_id: str, device_id: str, pass_type_id: str, serial: str, authorization: str | None,
             push_token: str) -> int:
    """201 when the device is newly registered for the pass, 200 when it already was."""
    found, _ = _authorised(tenant_id, pass_type_id, serial, authorization)
    _check_device(device_id)
    created = store.register(tenant_id, found.serial, device_id, push_token, clock.now())
    return 201 if created else 200


def unregister(tenant_id: str, device_id: str, pass_type_id: str, serial: str, authorization: str | None) -> None:
    """The device no longer wants the pass's updates (it was removed from the wallet)."""
    found, _ = _authorised(tenant_id, pass_type_id, serial, authorization)
    _check_device(device_id)
    store.unregister(tenant_id, found.serial, device_id)


def updated_serials(tenant_id: str, device_id: str, pass_type_id: str, since: str | None) -> UpdatedSerials | None:
    """The device's passes changed after `since` (our own lastUpdated tag); None when none did (204).

    Not authenticated by a pass token (Apple sends none here): the device library id, random per device and
    per web service, is the secret, and the answer holds serials only.
    """
    _check_type(tenant_id, pass_type_id)
    _check_device(device_id)
    serials = store.serials_of_device(tenant_id, device_id)
    found = store.passes(tenant_id, serials) if serials else {}
    after = rules.parse_since(since)
    changed = sorted((doc for doc in found.values() if after is None or int(doc.tag) > after),
                     key=lambda doc: int(doc.tag))
    if not changed:
        return None
    return UpdatedSerials(serialNumbers=[doc.serial for doc in changed], lastUpdated=str(int(changed[-1].tag)))


def latest(tenant_id: str, pass_type_id: str, serial: str, authorization: str | None,
           if_modified_since: str | None) -> Package | None:
    """The pass as it is now, or None when it has not changed since If-Modified-Since (304)."""
    found, creds = _authorised(tenant_id, pass_type_id, serial, authorization)
    if not rules.modified_since(found.tag, if_modified_since):
        return None
    return build(found, creds)


def log(tenant_id: str, lines: list[str], source_ip: str) -> int:
    """A device's error messages about our passes: logged (bounded), for whoever debugs a pass. Lines kept."""
    if not re.match(SLUG_PATTERN, tenant_id):
        raise not_found("Tenant")
    kept = rules.log_lines(lines)
    for line in kept:
        logger.warning("wallet device log", extra={"tenant_id": tenant_id, "line": line, "source_ip": source_ip})
    return len(kept)


def _check_device(device_id: str) -> None:
    if not device_id or len(device_id) > 64 or not all(c.isalnum() or c in "-_." for c in device_id):
        raise ApiError(404, "not_found", "No such device.")
