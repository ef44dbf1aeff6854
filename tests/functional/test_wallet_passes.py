"""Wallet passes end to end: the signed .pkpass, the Google save link, Apple's pass web service, and pass updates.

The .pkpass signature is verified with `openssl smime -verify` against the test CA that `make run` generates
(infra/local/wallet_keys.py), its manifest hashes against the zip's files; the Google JWT with the service
account's public key. Updates go to the local stack's recorder (infra/local/wallet_recorder.py), served here
on a loopback port, exactly as `make run` serves it from moto's server.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import re
import shutil
import subprocess
import threading
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sqs.models import sqs_backends

from app import app
from chalicelib.domain import passes as passes_domain
from chalicelib.schemas.wallet import PKPASS_TYPE
from chalicelib.services.wallet import cards as wallet_cards
from chalicelib.services.wallet import google as wallet_google
from chalicelib.services.wallet import http as wallet_http
from chalicelib.services.wallet import updates as wallet_updates
from chalicelib.settings import settings
from chalicelib.storage import passes as passes_store
from chalicelib.storage import queues
from infra.local import wallet_keys, wallet_recorder
from tests.functional.conftest import Api, TenantKeys, make_tenant
from tests.functional.jobqueue import sqs_event

PASS_TYPE = settings.wallet_pass_type_id
ACCEPT = {"Accept": PKPASS_TYPE}


@pytest.fixture(scope="module")
def credentials() -> dict[str, Any]:
    wallet_keys.ensure_configured()
    path = Path(settings.wallet_credentials.removeprefix("dir:")) / wallet_keys.FILE_NAME
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


def _recorder_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    status, headers, body = wallet_recorder.handle(environ) or ("404 Not Found", [], b"")
    start_response(status, [*headers, ("Content-Length", str(len(body)))])
    return [body]


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The stack's push recorder on a loopback port, with APNs and Google pointed at it."""
    server = make_server("127.0.0.1", 0, _recorder_app, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}{wallet_recorder.PREFIX}"
    local = dataclasses.replace(settings, apns_url=base + "/apns", google_wallet_api=base + "/google",
                                google_token_url=base + "/google/token")
    monkeypatch.setattr(wallet_updates, "settings", local)
    monkeypatch.setattr(wallet_google, "settings", local)
    wallet_recorder.clear()
    wallet_google.forget_token()
    yield base
    server.shutdown()
    server.server_close()
    wallet_http.close_all()
    wallet_recorder.clear()
    wallet_recorder.serve_keys()


def take() -> list[str]:
    """Every message body on the wallet queue, delayed ones (retries) included, removed from it."""
    queue = sqs_backends[DEFAULT_ACCOUNT_ID][settings.region].queues[settings.wallet_queue]
    bodies = [m.body for m in queue._messages]
    queue._messages = []
    return bodies


@pytest.fixture
def delays(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The delay of every message sent to the wallet queue (retries back off)."""
    sent: list[int] = []
    real = queues.send

    def send(queue_name: str, message: dict[str, Any], *, delay_seconds: int = 0) -> str:
        if queue_name == settings.wallet_queue:
            sent.append(delay_seconds)
        return real(queue_name, message, delay_seconds=delay_seconds)

    monkeypatch.setattr(queues, "send", send)
    return sent


def _card(api: Api, tenant: TenantKeys) -> str:
    r = api.post("/v1/cards", tenant.pos, {"program_id": "main"})
    assert r.status_code == 201, r.data
    return str(r.data["number"])


def _pkpass(api: Api, key: str, number: str) -> tuple[Any, dict[str, bytes]]:
    r = api.get(f"/v1/cards/{number}/wallet/apple", key, headers=ACCEPT)
    assert r.status_code == 200, r.body
    assert r.headers["Content-Type"] == PKPASS_TYPE
    with zipfile.ZipFile(io.BytesIO(r.body)) as archive:
        return r, {name: archive.read(name) for name in archive.namelist()}


def _pass_json(files: dict[str, bytes]) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(files["pass.json"])
    return loaded


def _service(tenant_id: str) -> str:
    return f"/v1/wallet/apple/{tenant_id}/v1"


def _apple(token: str) -> dict[str, str]:
    return {"Authorization": f"ApplePass {token}"}


def _registered(api: Api, tenant_id: str, device: str) -> list[str]:
    r = api.get(f"{_service(tenant_id)}/devices/{device}/registrations/{PASS_TYPE}")
    return list(r.data["serialNumbers"]) if r.status_code == 200 else []


def test_the_pkpass_is_signed_by_the_pass_certificate_and_its_manifest_hashes_its_files(
        api: Api, tenant: TenantKeys, credentials: dict[str, Any], tmp_path: Path) -> None:
    number = _card(api, tenant)
    r, files = _pkpass(api, tenant.admin, number)
    assert sorted(files) == ["en.lproj/pass.strings", "icon.png", "icon@2x.png", "icon@3x.png", "logo.png",
                             "logo@2x.png", "manifest.json", "pass.json", "ru.lproj/pass.strings", "signature"]
    manifest = json.loads(files["manifest.json"])
    assert manifest == {name: hashlib.sha1(data).hexdigest() for name, data in files.items()
                        if name not in ("manifest.json", "signature")}
    doc = _pass_json(files)
    assert (doc["passTypeIdentifier"], doc["teamIdentifier"]) == (PASS_TYPE, settings.wallet_team_id)
    # Organisation name, description and logo text are localizable: keys the strings files give per language.
    assert (doc["organizationName"], doc["description"], doc["logoText"]) == (
        "pass.organization", "pass.description", "pass.logo")
    ru, en = _strings(files["ru.lproj/pass.strings"]), _strings(files["en.lproj/pass.strings"])
    assert (ru["pass.organization"], ru["pass.description"], ru["pass.logo"]) == (
        "coffee-house LLC", "Карта лояльности coffee-house LLC", "coffee-house LLC")
    assert (en["pass.organization"], en["pass.description"], en["pass.logo"]) == (
        "coffee-house LLC", "coffee-house LLC loyalty card", "coffee-house LLC")
    assert doc["webServiceURL"] == f"{settings.public_base_url}/v1/wallet/apple/coffee-house"
    assert doc["barcodes"][0]["message"] == number and doc["storeCard"]["primaryFields"][0]["value"] == 0
    assert len(doc["serialNumber"]) == 24 and len(doc["authenticationToken"]) >= 16
    assert r.headers["Last-Modified"].endswith(" GMT")

    openssl = shutil.which("openssl")
    assert openssl is not None, "openssl verifies the signature as Apple's tools would"
    for name in ("manifest.json", "signature"):
        (tmp_path / name).write_bytes(files[name])
    (tmp_path / "ca.pem").write_text(credentials["apple_root_ca"])
    verify = [openssl, "smime", "-verify", "-binary", "-inform", "DER", "-in", str(tmp_path / "signature"),
              "-content", str(tmp_path / "manifest.json"), "-CAfile", str(tmp_path / "ca.pem"), "-purpose", "any",
              "-out", str(tmp_path / "verified")]
    done = subprocess.run(verify, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "verified").read_bytes() == files["manifest.json"]
    # A changed manifest (a swapped image) no longer verifies.
    (tmp_path / "manifest.json").write_bytes(files["manifest.json"].replace(b'"icon.png": "', b'"icon.png": "0'))
    tampered = subprocess.run(verify, capture_output=True, text=True, check=False)
    assert tampered.returncode != 0

    # Without an Accept header naming the pass type (or */*), one clear error (Chalice's rule for binary answers).
    bare = api.get(f"/v1/cards/{number}/wallet/apple", tenant.admin)
    assert bare.status_code == 400 and "Accept header" in json.loads(bare.body)["error"]["message"]
    assert api.get(f"/v1/cards/{number}/wallet/apple", tenant.admin, headers={"Accept": "*/*"}).status_code == 200

    # The same pass on every download: serial and token never change (Apple requires it).
    again = _pass_json(_pkpass(api, tenant.support, number)[1])
    assert (again["serialNumber"], again["authenticationToken"]) == (doc["serialNumber"], doc["authenticationToken"])


def test_the_google_link_is_an_rs256_jwt_of_the_loyalty_class_and_object(
        api: Api, tenant: TenantKeys, credentials: dict[str, Any]) -> None:
    number = _card(api, tenant)
    r = api.get(f"/v1/cards/{number}/wallet/google", tenant.pos)
    assert r.status_code == 200, r.data
    prefix = "https://pay.google.com/gp/v/save/"
    assert r.data["save_url"].startswith(prefix)
    token = r.data["save_url"].removeprefix(prefix)
    header_b64, claims_b64, signature_b64 = token.split(".")

    def decoded(part: str) -> bytes:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))

    key = load_pem_private_key(credentials["google_service_account"]["private_key"].encode(), password=None)
    assert isinstance(key, RSAPrivateKey)
    public = key.public_key()
    public.verify(decoded(signature_b64), f"{header_b64}.{claims_b64}".encode(), padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(InvalidSignature):
        public.verify(decoded(signature_b64), f"{header_b64}.{claims_b64}x".encode(), padding.PKCS1v15(),
                      hashes.SHA256())
    header, claims = json.loads(decoded(header_b64)), json.loads(decoded(claims_b64))
    assert header["alg"] == "RS256" and header["kid"] == credentials["google_service_account"]["private_key_id"]
    assert (claims["iss"], claims["aud"], claims["typ"]) == (
        credentials["google_service_account"]["client_email"], "google", "savetowallet")
    issuer = credentials["google_issuer_id"]
    (cls,), (obj,) = claims["payload"]["loyaltyClasses"], claims["payload"]["loyaltyObjects"]
    assert cls["id"] == f"{issuer}.loyalty-coffee-house" and obj["classId"] == cls["id"]
    assert cls["callbackOptions"] == {"url": f"{settings.public_base_url}/v1/wallet/google/coffee-house/callback"}
    assert obj["id"] == r.data["object_id"] == f"{issuer}.coffee-house-{r.data['serial_number']}"
    assert (obj["accountId"], obj["barcode"]["value"], obj["loyaltyPoints"]["balance"]) == (number, number, {"int": 0})
    # A rouble tenant's labels: Russian first (Google's defaultValue), English translated.
    assert obj["loyaltyPoints"]["label"] == "Баллы" and obj["loyaltyPoints"]["localizedLabel"] == {
        "defaultValue": {"language": "ru", "value": "Баллы"},
        "translatedValues": [{"language": "en", "value": "Points"}]}
    assert obj["secondaryLoyaltyPoints"]["localizedLabel"] == {
        "defaultValue": {"language": "ru", "value": "Уровень"},
        "translatedValues": [{"language": "en", "value": "Tier"}]}
    assert (cls["programName"], cls["localizedProgramName"]["translatedValues"]) == (
        "Программа лояльности coffee-house LLC", [{"language": "en", "value": "coffee-house LLC loyalty"}])
    assert cls["localizedAccountIdLabel"] == {"defaultValue": {"language": "ru", "value": "Номер карты"},
                                              "translatedValues": [{"language": "en", "value": "Card number"}]}


def test_the_pass_web_service_registers_devices_only_with_the_passs_own_token(
        api: Api, tenant: TenantKeys, credentials: dict[str, Any]) -> None:
    number, other = _card(api, tenant), _card(api, tenant)
    doc, other_doc = _pass_json(_pkpass(api, tenant.pos, number)[1]), _pass_json(_pkpass(api, tenant.pos, other)[1])
    serial, token = doc["serialNumber"], doc["authenticationToken"]
    base = _service("coffee-house")
    path = f"{base}/devices/device0001/registrations/{PASS_TYPE}/{serial}"
    body = {"pushToken": "a1b2c3d4"}

    for headers in ({}, _apple("x" * 43), _apple(other_doc["authenticationToken"]), {"Authorization": f"Bearer {token}"}):
        refused = api.post(path, None, body, headers=headers)
        assert refused.status_code == 401, (headers, refused.data)
        assert refused.data["error"]["code"] == "invalid_pass_token"
    # Another pass's serial with this pass's token: 401 too, and nothing was registered anywhere.
    crossed = api.post(f"{base}/devices/device0001/registrations/{PASS_TYPE}/{other_doc['serialNumber']}", None, body,
                       headers=_apple(token))
    assert crossed.status_code == 401
    assert _registered(api, "coffee-house", "device0001") == []

    assert api.post(path, None, body, headers=_apple(token)).status_code == 201
    assert api.post(path, None, body, headers=_apple(token)).status_code == 200  # already registered
    assert api.post(path, None, {"pushToken": "ffee"}, headers=_apple(token)).status_code == 200  # a new push token
    assert [(d.device_id, d.push_token) for d in passes_store.devices("coffee-house", serial)] == [
        ("device0001", "ffee")]
    assert _registered(api, "coffee-house", "device0001") == [serial]
    # The wrong pass type, and a malformed push token, change nothing either.
    assert api.post(path.replace(PASS_TYPE, "pass.other.type"), None, body, headers=_apple(token)).status_code == 404
    malformed = api.post(path.replace("device0001", "device0002"), None, {"pushToken": "not hex"},
                         headers=_apple(token))
    assert malformed.status_code == 400 and malformed.data["error"]["details"][0]["field"] == "pushToken"
    assert _registered(api, "coffee-house", "device0002") == []

    # Unregistering needs the token as well.
    assert api.delete(path, None, headers=_apple(other_doc["authenticationToken"])).status_code == 401
    assert _registered(api, "coffee-house", "device0001") == [serial]
    assert api.delete(path, None, headers=_apple(token)).status_code == 200
    assert _registered(api, "coffee-house", "device0001") == []


def test_a_purchase_marks_the_pass_updated_and_the_latest_pass_honours_if_modified_since(
        api: Api, tenant: TenantKeys, credentials: dict[str, Any], clock: Any) -> None:
    number = _card(api, tenant)
    doc = _pass_json(_pkpass(api, tenant.pos, number)[1])
    serial, token = doc["serialNumber"], doc["authenticationToken"]
    base = _service("coffee-house")
    assert api.post(f"{base}/devices/phone01/registrations/{PASS_TYPE}/{serial}", None, {"pushToken": "abcd"},
                    headers=_apple(token)).status_code == 201
    listed = api.get(f"{base}/devices/phone01/registrations/{PASS_TYPE}")
    assert listed.status_code == 200 and listed.data["serialNumbers"] == [serial]
    since = listed.data["lastUpdated"]
    unchanged = api.get(f"{base}/devices/phone01/registrations/{PASS_TYPE}?passesUpdatedSince={since}")
    assert unchanged.status_code == 204 and not unchanged.body

    latest = api.get(f"{base}/passes/{PASS_TYPE}/{serial}", None, headers={**_apple(token), **ACCEPT})
    assert latest.status_code == 200 and latest.headers["Content-Type"] == PKPASS_TYPE
    modified = latest.headers["Last-Modified"]
    not_again = api.get(f"{base}/passes/{PASS_TYPE}/{serial}", None,
                        headers={**_apple(token), **ACCEPT, "If-Modified-Since": modified})
    assert not_again.status_code == 304 and not not_again.body
    assert api.get(f"{base}/passes/{PASS_TYPE}/{serial}", None, headers={**_apple("y" * 43), **ACCEPT}
                   ).status_code == 401

    clock.advance(seconds=5)
    bought = api.post("/v1/purchases", tenant.pos, {
        "receipt_id": "wallet-r1", "card_number": number, "store_id": "msk-01", "total": 10_000,
        "items": [{"sku": "latte", "category": "coffee", "quantity": 1, "amount": 10_000}]})
    assert bought.status_code == 200, bought.data
    earned = bought.data["points_earned"]
    assert earned > 0

    changed = api.get(f"{base}/devices/phone01/registrations/{PASS_TYPE}?passesUpdatedSince={since}")
    assert changed.status_code == 200 and changed.data["serialNumbers"] == [serial]
    assert int(changed.data["lastUpdated"]) > int(since)
    fresh = api.get(f"{base}/passes/{PASS_TYPE}/{serial}", None,
                    headers={**_apple(token), **ACCEPT, "If-Modified-Since": modified})
    assert fresh.status_code == 200 and fresh.headers["Last-Modified"] != modified
    with zipfile.ZipFile(io.BytesIO(fresh.body)) as archive:
        updated = json.loads(archive.read("pass.json"))
    card = api.get(f"/v1/cards/{number}", tenant.pos).data
    shown = updated["storeCard"]
    assert (shown["primaryFields"][0]["value"], shown["secondaryFields"][0]["value"]) == (
        card["balance"], card["pending"])
    assert card["balance"] + card["pending"] == earned
    assert updated["authenticationToken"] == token  # the token never changes
    # A replayed purchase changes nothing, so the pass is not marked again.
    replay = api.post("/v1/purchases", tenant.pos, {
        "receipt_id": "wallet-r1", "card_number": number, "store_id": "msk-01", "total": 10_000,
        "items": [{"sku": "latte", "category": "coffee", "quantity": 1, "amount": 10_000}]})
    assert replay.status_code == 200
    assert api.get(f"{base}/devices/phone01/registrations/{PASS_TYPE}?passesUpdatedSince="
                   f"{changed.data['lastUpdated']}").status_code == 204

    log = api.post(f"{base}/log", None, {"logs": ["Web service error for pass.x: 401", "second line"]})
    assert log.status_code == 200 and log.data == {}
    for bad, field in (({"logs": "one line"}, "logs"), ({"logs": []}, "logs"), ({"logs": ["x"], "more": 1}, "more")):
        refused = api.post(f"{base}/log", None, bad)
        assert refused.status_code == 400 and refused.data["error"]["details"][0]["field"] == field, refused.data


def test_the_worker_pushes_each_device_and_google_once_per_change_even_if_the_job_comes_twice(
        api: Api, tenant: TenantKeys, credentials: dict[str, Any], recorder: str) -> None:
    number = _card(api, tenant)
    doc = _pass_json(_pkpass(api, tenant.pos, number)[1])
    serial, token = doc["serialNumber"], doc["authenticationToken"]
    assert api.get(f"/v1/cards/{number}/wallet/google", tenant.pos).status_code == 200
    base = _service("coffee-house")
    for device, push in (("iphone", "aa11"), ("watch", "bb22")):
        assert api.post(f"{base}/devices/{device}/registrations/{PASS_TYPE}/{serial}", None, {"pushToken": push},
                        headers=_apple(token)).status_code == 201
    take()  # the class's first PATCH (the Google link), tested on its own below

    blocked = api.post(f"/v1/cards/{number}/block", tenant.admin, {"reason": "reported stolen"})
    assert blocked.status_code == 200, blocked.data
    jobs = take()
    assert [json.loads(j)["serial"] for j in jobs] == [serial]

    handler = app.handler_map["wallet_worker"]
    assert handler(sqs_event(jobs), None) == {"batchItemFailures": []}
    assert handler(sqs_event(jobs), None) == {"batchItemFailures": []}  # SQS delivered it twice
    assert take() == []  # nothing failed, nothing re-queued

    pushes = wallet_recorder.pushes()
    apns = sorted((p["target"], p["headers"]["apns-topic"], p["body"]) for p in pushes if p["kind"] == "apns")
    assert apns == [("aa11", PASS_TYPE, "{}"), ("bb22", PASS_TYPE, "{}")]
    (patched,) = [p for p in pushes if p["kind"] == "google"]
    body = json.loads(patched["body"])
    assert (patched["target"], body["state"], body["accountId"]) == (
        f"{credentials['google_issuer_id']}.coffee-house-{serial}", "INACTIVE", number)

    latest = api.get(f"{base}/passes/{PASS_TYPE}/{serial}", None, headers={**_apple(token), **ACCEPT})
    with zipfile.ZipFile(io.BytesIO(latest.body)) as archive:
        assert json.loads(archive.read("pass.json"))["voided"] is True


def test_a_failed_push_is_retried_with_backoff_and_a_gone_device_is_unregistered(
        api: Api, tenant: TenantKeys, credentials: dict[str, Any], recorder: str,
        monkeypatch: pytest.MonkeyPatch, delays: list[int]) -> None:
    number = _card(api, tenant)
    doc = _pass_json(_pkpass(api, tenant.pos, number)[1])
    serial, token = doc["serialNumber"], doc["authenticationToken"]
    base = _service("coffee-house")
    for device, push in (("phone02", "cc33"), ("oldphone", "dead44")):  # the recorder answers 410 to dead...
        assert api.post(f"{base}/devices/{device}/registrations/{PASS_TYPE}/{serial}", None, {"pushToken": push},
                        headers=_apple(token)).status_code == 201
    adjusted = api.post(f"/v1/cards/{number}/adjustments", tenant.admin,
                        {"points": 100, "reason": "goodwill", "adjustment_id": "wallet-adj-1"})
    assert adjusted.status_code in (200, 201), adjusted.data
    jobs = take()
    assert len(jobs) == 1
    handler = app.handler_map["wallet_worker"]

    live = wallet_updates.settings
    monkeypatch.setattr(wallet_updates, "settings", dataclasses.replace(live, apns_url="http://127.0.0.1:9/apns"))
    assert handler(sqs_event(jobs), None) == {"batchItemFailures": []}  # APNs unreachable: both retried
    (retry,) = take()
    assert json.loads(retry)["attempt"] == 2 and wallet_recorder.pushes() == []
    assert delays == [0, 30]  # the change, then its retry 30 s later

    monkeypatch.setattr(wallet_updates, "settings", live)
    assert handler(sqs_event([retry]), None) == {"batchItemFailures": []}
    assert [p["target"] for p in wallet_recorder.pushes()] == ["cc33"]
    assert take() == []  # delivered, and the dead device is gone: nothing to retry
    assert _registered(api, "coffee-house", "oldphone") == [] and _registered(api, "coffee-house", "phone02") == [
        serial]
    assert handler(sqs_event([retry]), None) == {"batchItemFailures": []}  # the same attempt again: no push
    assert len(wallet_recorder.pushes()) == 1
    assert wallet_cards.tenant_has_passes("coffee-house")


def test_another_tenants_card_is_not_found_and_the_wallet_routes_keep_to_the_callers_tenant(
        api: Api, tenant: TenantKeys, other_tenant: TenantKeys, credentials: dict[str, Any]) -> None:
    number = _card(api, tenant)
    doc = _pass_json(_pkpass(api, tenant.pos, number)[1])
    for kind in ("apple", "google"):
        for key in (other_tenant.admin, other_tenant.pos, other_tenant.support):
            r = api.get(f"/v1/cards/{number}/wallet/{kind}", key, headers=ACCEPT)
            assert r.status_code == 404, r.body
            assert json.loads(r.body)["error"]["code"] == "card_not_found"
    # The pass's token under the other tenant's web service: 401, nothing registered there.
    foreign = f"{_service('fuel-net')}/devices/dev9/registrations/{PASS_TYPE}/{doc['serialNumber']}"
    assert api.post(foreign, None, {"pushToken": "ab"}, headers=_apple(doc["authenticationToken"])).status_code == 401
    assert api.get(f"{_service('fuel-net')}/passes/{PASS_TYPE}/{doc['serialNumber']}", None,
                   headers={**_apple(doc["authenticationToken"]), **ACCEPT}).status_code == 401
    assert _registered(api, "fuel-net", "dev9") == []
    # A tenant id that is no slug cannot reach into other partitions.
    assert api.get(f"/v1/wallet/apple/coffee-house%23pass/v1/devices/dev9/registrations/{PASS_TYPE}"
                   ).status_code == 404
    # Only the tenant's staff roles get a pass.
    assert api.get(f"/v1/cards/{number}/wallet/apple", tenant.agency, headers=ACCEPT).status_code == 403


def test_the_daily_refresh_pushes_a_pass_whose_points_matured_and_only_then(
        api: Api, tenant: TenantKeys, credentials: dict[str, Any], clock: Any, recorder: str) -> None:
    from chalicelib.services.program import sweeps
    from chalicelib.services.wallet import changes as wallet_changes
    from tests.functional.jobqueue import drain

    held = api.post("/v1/programs", tenant.admin, {"id": "held", "name": "Held points", "earning": {"rate_bps": 500},
                                                   "pending_days": 7})
    assert held.status_code == 201, held.data
    number = api.post("/v1/cards", tenant.pos, {"program_id": "held"}).data["number"]
    doc = _pass_json(_pkpass(api, tenant.pos, number)[1])
    serial, token = doc["serialNumber"], doc["authenticationToken"]
    base = _service("coffee-house")
    assert api.post(f"{base}/devices/held01/registrations/{PASS_TYPE}/{serial}", None, {"pushToken": "ab12"},
                    headers=_apple(token)).status_code == 201
    bought = api.post("/v1/purchases", tenant.pos, {
        "receipt_id": "held-r1", "card_number": number, "store_id": "msk-01", "total": 10_000,
        "items": [{"sku": "latte", "category": "coffee", "quantity": 1, "amount": 10_000}]})
    earned = bought.data["points_earned"]
    assert bought.status_code == 200 and earned > 0, bought.data
    assert (bought.data["pending"], bought.data["balance"]) == (earned, 0)
    handler = app.handler_map["wallet_worker"]
    assert handler(sqs_event(take()), None) == {"batchItemFailures": []}
    assert [p["target"] for p in wallet_recorder.pushes()] == ["ab12"]

    # Nothing changed: the refresh marks nothing.
    wallet_changes.handle_job({"job": wallet_changes.REFRESH_JOB, "tenant_id": "coffee-house", "cursor": None})
    assert take() == []

    # A week later the points are spendable, though nothing wrote the card: the daily sweep's refresh finds it.
    clock.advance(days=8)
    sweeps.run_daily(clock.now())
    drain()
    jobs = take()
    assert [json.loads(j)["serial"] for j in jobs] == [serial]
    assert handler(sqs_event(jobs), None) == {"batchItemFailures": []}
    assert [p["target"] for p in wallet_recorder.pushes()] == ["ab12", "ab12"]
    latest = api.get(f"{base}/passes/{PASS_TYPE}/{serial}", None, headers={**_apple(token), **ACCEPT})
    with zipfile.ZipFile(io.BytesIO(latest.body)) as archive:
        fields = json.loads(archive.read("pass.json"))["storeCard"]
    assert (fields["primaryFields"][0]["value"], fields["secondaryFields"][0]["value"]) == (earned, 0)
    wallet_changes.handle_job({"job": wallet_changes.REFRESH_JOB, "tenant_id": "coffee-house", "cursor": None})
    assert take() == []  # pushed once: the pass now shows what the card does


def test_erasing_the_customer_removes_the_passs_devices_and_stops_its_pushes(
        api: Api, tenant: TenantKeys, credentials: dict[str, Any], recorder: str) -> None:
    """A device's push token is the customer's personal data: it goes with them, and nothing is pushed after."""
    created = api.post("/v1/cards", tenant.pos, {"program_id": "main", "customer": {"phone": "+79165550101"}})
    assert created.status_code == 201, created.data
    number, customer_id = str(created.data["number"]), created.data["customer_id"]
    kept = _card(api, tenant)  # another customer's card: its pass and device stay
    doc, kept_doc = _pass_json(_pkpass(api, tenant.pos, number)[1]), _pass_json(_pkpass(api, tenant.pos, kept)[1])
    serial, token = doc["serialNumber"], doc["authenticationToken"]
    assert api.get(f"/v1/cards/{number}/wallet/google", tenant.pos).status_code == 200
    base = _service("coffee-house")
    path = f"{base}/devices/iphone/registrations/{PASS_TYPE}/{serial}"
    assert api.post(path, None, {"pushToken": "aa11"}, headers=_apple(token)).status_code == 201
    kept_path = f"{base}/devices/other/registrations/{PASS_TYPE}/{kept_doc['serialNumber']}"
    assert api.post(kept_path, None, {"pushToken": "cc33"}, headers=_apple(kept_doc["authenticationToken"])
                    ).status_code == 201
    take()

    erased = api.post(f"/v1/customers/{customer_id}/erase", tenant.admin,
                      {"confirm": "erase", "reason": "data subject request"})
    assert erased.status_code == 200, erased.data
    assert passes_store.devices("coffee-house", serial) == []
    assert passes_store.get_pass("coffee-house", serial) is None
    assert passes_store.serial_of_card("coffee-house", number) is None
    assert _registered(api, "coffee-house", "iphone") == []
    assert [d.push_token for d in passes_store.devices("coffee-house", kept_doc["serialNumber"])] == ["cc33"]
    # The old token authenticates nothing: registering again, unregistering, fetching the pass are 401.
    for call in (lambda: api.post(path, None, {"pushToken": "aa11"}, headers=_apple(token)),
                 lambda: api.delete(path, None, headers=_apple(token)),
                 lambda: api.get(f"{base}/passes/{PASS_TYPE}/{serial}", None, headers={**_apple(token), **ACCEPT})):
        refused = call()
        assert refused.status_code == 401 and refused.data["error"]["code"] == "invalid_pass_token"
    again = api.post(f"/v1/customers/{customer_id}/erase", tenant.admin,
                     {"confirm": "erase", "reason": "data subject request"})
    assert again.status_code == 200, again.data  # repeating the erasure finds nothing left and fails on nothing

    blocked = api.post(f"/v1/cards/{number}/block", tenant.admin, {"reason": "account closed"})
    assert blocked.status_code == 200, blocked.data
    assert take() == []  # the card changed: no job queued, so no APNs push and no Google PATCH
    assert wallet_recorder.pushes() == []


def _strings(data: bytes) -> dict[str, str]:
    """A `.strings` file read as Wallet reads it: UTF-16 with its byte-order mark, `"key" = "value";` lines."""
    assert data[:2] in (b"\xff\xfe", b"\xfe\xff")
    found = re.findall(r'^"((?:[^"\\]|\\.)*)" = "((?:[^"\\]|\\.)*)";$', data.decode("utf-16"), re.MULTILINE)
    return dict(found)


def test_the_pass_wears_the_tenants_brand_colour_and_its_labels_read_in_russian_or_english(
        api: Api, tenant: TenantKeys, credentials: dict[str, Any]) -> None:
    """Colours come from the member site's branding; labels are keys both strings files translate."""
    branded = api.patch(f"/v1/agency/tenants/{tenant.tenant_id}", tenant.agency,
                        {"branding": {"primary_colour": "#1F5F8B", "accent_colour": "#B3541E"}})
    assert branded.status_code == 200, branded.data
    number = _card(api, tenant)
    files = _pkpass(api, tenant.pos, number)[1]
    doc = _pass_json(files)
    assert (doc["backgroundColor"], doc["foregroundColor"], doc["labelColor"]) == (
        "rgb(31, 95, 139)", "rgb(255, 255, 255)", "rgb(199, 215, 226)")
    manifest = json.loads(files["manifest.json"])
    ru, en = _strings(files["ru.lproj/pass.strings"]), _strings(files["en.lproj/pass.strings"])
    for name in ("ru.lproj/pass.strings", "en.lproj/pass.strings"):
        assert manifest[name] == hashlib.sha1(files[name]).hexdigest()
    card = doc["storeCard"]
    keys = [f["label"] for group in card.values() for f in group] + [
        f["changeMessage"] for group in card.values() for f in group if "changeMessage" in f]
    assert set(keys) <= set(ru) and set(keys) <= set(en)
    assert (ru[card["primaryFields"][0]["label"]], en[card["primaryFields"][0]["label"]]) == ("Баллы", "Points")
    assert card["auxiliaryFields"][0]["value"] == "status.active"
    assert (ru["status.active"], en["status.active"]) == ("Активна", "Active")
    assert ru["change.balance"] == "Ваш баланс: %@"

    # A light brand colour gets dark text; Google's class shows the same background.
    assert api.patch(f"/v1/agency/tenants/{tenant.tenant_id}", tenant.agency,
                     {"branding": {"primary_colour": "#FFD700"}}).status_code == 200
    light = _pass_json(_pkpass(api, tenant.pos, number)[1])
    assert (light["backgroundColor"], light["foregroundColor"]) == ("rgb(255, 215, 0)", "rgb(17, 24, 39)")


def _lv(*chunks: str) -> bytes:
    return b"".join(len(c.encode()).to_bytes(4, "little") + c.encode() for c in chunks)


def _google_says(credentials: dict[str, Any], message: dict[str, Any], root: Any = None) -> dict[str, Any]:
    """A callback signed as Google signs one: root key -> intermediate key -> message (ECv2SigningOnly)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from chalicelib import clock as app_clock

    root = root or load_pem_private_key(credentials["google_callback_root_private_key"].encode(), password=None)
    intermediate = ec.generate_private_key(ec.SECP256R1())
    public = intermediate.public_key().public_bytes(serialization.Encoding.DER,
                                                    serialization.PublicFormat.SubjectPublicKeyInfo)
    now_ms = int(app_clock.now().timestamp() * 1000)
    signed_key = json.dumps({"keyValue": base64.b64encode(public).decode(), "keyExpiration": str(now_ms + 3_600_000)})
    key_signature = root.sign(_lv("Google", "ECv2SigningOnly", signed_key), ec.ECDSA(hashes.SHA256()))
    signed_message = json.dumps({"expTimeMillis": now_ms + 300_000, **message})
    signature = intermediate.sign(_lv("GooglePayPasses", credentials["google_issuer_id"], "ECv2SigningOnly",
                                      signed_message), ec.ECDSA(hashes.SHA256()))
    return {"protocolVersion": "ECv2SigningOnly", "signature": base64.b64encode(signature).decode(),
            "intermediateSigningKey": {"signedKey": signed_key,
                                       "signatures": [base64.b64encode(key_signature).decode()]},
            "signedMessage": signed_message}


def test_google_save_and_delete_callbacks_are_verified_applied_once_and_a_deleted_pass_gets_no_patch(
        api: Api, tenant: TenantKeys, credentials: dict[str, Any], recorder: str) -> None:
    """Only a message Google's root key vouches for changes the pass; a forgery or a replay is 401, nothing changed."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from chalicelib.services.wallet import credentials as wallet_credentials

    wallet_credentials.forget()
    number = _card(api, tenant)
    link = api.get(f"/v1/cards/{number}/wallet/google", tenant.pos)
    assert link.status_code == 200, link.data
    serial, object_id = link.data["serial_number"], link.data["object_id"]
    issuer = credentials["google_issuer_id"]
    event = {"classId": f"{issuer}.loyalty-coffee-house", "objectId": object_id, "eventType": "save",
             "nonce": "nonce-save-0001"}
    path = "/v1/wallet/google/coffee-house/callback"

    saved = _google_says(credentials, event)
    r = api.post(path, None, saved)
    assert r.status_code == 200, r.data
    assert r.data == {"event": "save", "serial_number": serial}
    doc = passes_store.get_pass("coffee-house", serial)
    assert doc is not None and (doc.doc.google, doc.doc.google_saved) == (True, True)

    replay = api.post(path, None, saved)
    assert replay.status_code == 401 and replay.data["error"]["code"] == "invalid_callback"
    assert "already received" in replay.data["error"]["message"]

    forged_root = ec.generate_private_key(ec.SECP256R1())
    deleting = {**event, "eventType": "del", "nonce": "nonce-del-0002"}
    forged = api.post(path, None, _google_says(credentials, deleting, root=forged_root))
    assert forged.status_code == 401 and forged.data["error"]["code"] == "invalid_callback"
    tampered = _google_says(credentials, {**event, "nonce": "nonce-save-0003"})
    tampered["signedMessage"] = tampered["signedMessage"].replace('"save"', '"del"')
    assert api.post(path, None, tampered).status_code == 401
    elsewhere = api.post("/v1/wallet/google/other-shop/callback", None,
                         _google_says(credentials, {**deleting, "nonce": "nonce-del-0004"}))
    assert elsewhere.status_code == 401  # another tenant's path: the message names coffee-house's pass
    doc = passes_store.get_pass("coffee-house", serial)
    assert doc is not None and (doc.doc.google, doc.doc.google_saved) == (True, True)  # nothing changed

    deleted = api.post(path, None, _google_says(credentials, deleting))
    assert deleted.status_code == 200 and deleted.data["event"] == "del"
    doc = passes_store.get_pass("coffee-house", serial)
    assert doc is not None and (doc.doc.google, doc.doc.google_saved) == (False, False)
    take()
    assert api.post(f"/v1/cards/{number}/block", tenant.admin, {"reason": "lost"}).status_code == 200
    jobs = take()
    assert app.handler_map["wallet_worker"](sqs_event(jobs), None) == {"batchItemFailures": []}
    assert [p for p in wallet_recorder.pushes() if p["kind"] == "google"] == []


def _class_pushes() -> list[dict[str, Any]]:
    return [json.loads(p["body"]) for p in reversed(wallet_recorder.pushes()) if p["kind"] == "google_class"]


def test_a_change_of_the_tenants_look_patches_its_google_class_once_and_only_when_the_class_shows_it(
        api: Api, tenant: TenantKeys, credentials: dict[str, Any], recorder: str, delays: list[int],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Google keeps the class the first save inserted: a new name or colour reaches it only by a class PATCH."""
    number = _card(api, tenant)
    handler = app.handler_map["wallet_worker"]
    look = {"primary_colour": "#112233", "accent_colour": "#445566"}
    # No save link yet: Google holds no class of this tenant, so a new colour queues nothing.
    assert api.put("/v1/branding", tenant.admin, look).status_code == 200
    assert take() == [] and passes_store.google_class_state("coffee-house") is None
    assert api.get(f"/v1/cards/{number}/wallet/google", tenant.pos).status_code == 200
    assert passes_store.google_class_state("coffee-house") is not None
    # The first link PATCHes the class once (Google may hold an older one); later links queue nothing.
    first = take()
    assert [(json.loads(j)["kind"], json.loads(j)["tenant_id"]) for j in first] == [("class", "coffee-house")]
    assert api.get(f"/v1/cards/{_card(api, tenant)}/wallet/google", tenant.pos).status_code == 200
    assert take() == []
    assert handler(sqs_event(first), None) == {"batchItemFailures": []}
    assert [b["hexBackgroundColor"] for b in _class_pushes()] == ["#112233"]
    wallet_recorder.clear()
    # The accent colour is not on the class: nothing to PATCH.
    assert api.put("/v1/branding", tenant.admin, {**look, "accent_colour": "#000000"}).status_code == 200
    assert take() == []

    # The primary colour is: one job, PATCHed once though SQS delivers it twice.
    assert api.put("/v1/branding", tenant.admin, {**look, "primary_colour": "#aa2233"}).status_code == 200
    jobs = take()
    assert [(json.loads(j)["kind"], json.loads(j)["tenant_id"]) for j in jobs] == [("class", "coffee-house")]
    assert handler(sqs_event(jobs), None) == {"batchItemFailures": []}
    assert handler(sqs_event(jobs), None) == {"batchItemFailures": []}
    assert take() == []
    (patched,) = [p for p in wallet_recorder.pushes() if p["kind"] == "google_class"]
    body = json.loads(patched["body"])
    assert patched["target"] == f"{credentials['google_issuer_id']}.loyalty-coffee-house"
    assert (body["id"], body["hexBackgroundColor"], body["programName"], body["reviewStatus"]) == (
        patched["target"], "#aa2233", "Программа лояльности coffee-house LLC", "UNDER_REVIEW")
    assert body["callbackOptions"] == {"url": f"{settings.public_base_url}/v1/wallet/google/coffee-house/callback"}

    # The agency renames the tenant: the name is on the class. The older job, delivered again, is superseded.
    renamed = api.patch(f"/v1/agency/tenants/{tenant.tenant_id}", tenant.agency, {"name": "Coffee House"})
    assert renamed.status_code == 200, renamed.data
    newer = take()
    assert len(newer) == 1 and json.loads(newer[0])["tag"] > json.loads(jobs[0])["tag"]
    assert handler(sqs_event(jobs), None) == {"batchItemFailures": []}
    assert len(_class_pushes()) == 1

    # A failed PATCH is retried with the pass updates' backoff, then delivered once.
    real = wallet_google.update_class
    answers = [wallet_http.Outcome(503, "HTTP 503: busy", 1)]
    monkeypatch.setattr(wallet_google, "update_class",
                        lambda tenant_id, creds: answers.pop() if answers else real(tenant_id, creds))
    delays.clear()
    assert handler(sqs_event(newer), None) == {"batchItemFailures": []}
    retry = take()
    assert delays == [30] and json.loads(retry[0])["attempt"] == 2
    assert handler(sqs_event(retry), None) == {"batchItemFailures": []}
    assert [(b["programName"], b["issuerName"]) for b in _class_pushes()] == [
        ("Программа лояльности coffee-house LLC", "coffee-house LLC"),
        ("Программа лояльности Coffee House", "Coffee House")]
    assert take() == []


def _cloudwatch_event() -> dict[str, Any]:
    return {"version": "0", "account": "123456789012", "region": "eu-central-1", "detail": {},
            "detail-type": "Scheduled Event", "source": "aws.events", "time": "2026-11-02T10:00:00Z",
            "id": "e1", "resources": []}


def test_googles_root_keys_are_fetched_on_schedule_kept_until_they_expire_and_a_failed_fetch_keeps_them(
        api: Api, tenant: TenantKeys, credentials: dict[str, Any], recorder: str, clock: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from chalicelib.services.wallet import credentials as wallet_credentials
    from chalicelib.services.wallet import google_callbacks, root_keys

    monkeypatch.setattr(root_keys, "settings", dataclasses.replace(
        settings, google_callback_keys_url=recorder + "/google/keys"))
    monkeypatch.setattr(root_keys, "_cache", [])  # this test's keys stay out of the other tests' cache
    wallet_credentials.forget()
    # A credentials document without keys: callbacks verify with the fetched keys only.
    monkeypatch.setattr(google_callbacks, "load", lambda: dataclasses.replace(wallet_credentials.load(),
                                                                              google_callback_root_keys=()))
    number = _card(api, tenant)
    link = api.get(f"/v1/cards/{number}/wallet/google", tenant.pos)
    event = {"classId": f"{credentials['google_issuer_id']}.loyalty-coffee-house",
             "objectId": link.data["object_id"], "eventType": "save"}
    path = "/v1/wallet/google/coffee-house/callback"
    nonces = iter(f"nonce-keys-{i:04d}" for i in range(100))

    def callback(root: Any = None) -> int:
        return int(api.post(path, None, _google_says(credentials, {**event, "nonce": next(nonces)}, root)).status_code)

    assert callback() == 503  # no key stored yet
    # The schedule fetches the stack's keys endpoint: the local test root key.
    app.handler_map["wallet_google_keys"](_cloudwatch_event(), None)
    local_key = credentials["google_callback_keys"]["keys"][0]["keyValue"]
    assert [k["keyValue"] for k in passes_store.google_root_keys()[0]] == [local_key]
    assert callback() == 200

    # Google rotates: the old key (expiring in an hour) is no longer listed, a new one is. Both verify until then.
    now_ms = int(clock.now().timestamp() * 1000)
    wallet_recorder.serve_keys("200 OK", {"keys": [{"keyValue": local_key, "protocolVersion": "ECv2SigningOnly",
                                                    "keyExpiration": str(now_ms + 3_600_000)}]})
    assert root_keys.refresh(clock.now()) == "stored"
    new_root = ec.generate_private_key(ec.SECP256R1())
    new_value = base64.b64encode(new_root.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
    year = str(now_ms + 365 * 86_400_000)
    wallet_recorder.serve_keys("200 OK", {"keys": [{"keyValue": new_value, "protocolVersion": "ECv2SigningOnly",
                                                    "keyExpiration": year}]})
    assert root_keys.refresh(clock.now()) == "stored"
    assert [(k["keyValue"], k["keyExpiration"]) for k in passes_store.google_root_keys()[0]] == [
        (new_value, year), (local_key, str(now_ms + 3_600_000))]
    assert (callback(), callback(new_root)) == (200, 200)

    # A fetch that fails (an error, a key that is no key, no answer at all) keeps every stored key, and logs.
    stored = passes_store.google_root_keys()[0]
    for status, body in (("500 Internal Server Error", {"error": "unavailable"}),
                         ("200 OK", {"keys": [{"keyValue": "bm90IGEga2V5", "protocolVersion": "ECv2SigningOnly",
                                               "keyExpiration": year}]}),
                         ("200 OK", ["not", "keys"])):
        wallet_recorder.serve_keys(status, body)
        assert root_keys.refresh(clock.now()) == "kept"
        assert passes_store.google_root_keys()[0] == stored
    monkeypatch.setattr(root_keys, "settings", dataclasses.replace(settings,
                                                                   google_callback_keys_url="http://127.0.0.1:9/keys"))
    assert root_keys.refresh(clock.now()) == "kept" and passes_store.google_root_keys()[0] == stored

    # Two hours on, the old key has expired: the next good fetch drops it, and it verifies nothing more.
    monkeypatch.setattr(root_keys, "settings", dataclasses.replace(
        settings, google_callback_keys_url=recorder + "/google/keys"))
    clock.advance(seconds=7200)
    wallet_recorder.serve_keys("200 OK", {"keys": [{"keyValue": new_value, "protocolVersion": "ECv2SigningOnly",
                                                    "keyExpiration": year}]})
    assert root_keys.refresh(clock.now()) == "stored"
    assert [k["keyValue"] for k in passes_store.google_root_keys()[0]] == [new_value]
    assert (callback(), callback(new_root)) == (401, 200)


def test_erasing_a_coalition_customer_removes_every_partners_pass_of_the_shared_card(
        api: Api, agency_key: str, credentials: dict[str, Any], recorder: str) -> None:
    """A shared card's passes live under each partner that handed one out: all of them are the customer's."""
    shop_a, shop_b = make_tenant(api, agency_key, "acme-agency", "shop-a"), make_tenant(api, agency_key,
                                                                                      "acme-agency", "shop-b")
    club = {"id": "club", "name": "City club points", "earning": {"rate_bps": 500}}
    shop_c, shop_d = (make_tenant(api, agency_key, "acme-agency", t) for t in ("shop-c", "shop-d"))
    made = api.post("/v1/agency/coalitions", agency_key, {
        "coalition_id": "city-club", "name": "City club", "program": club,
        "members": ["shop-a", "shop-b", "shop-c", "shop-d"]})
    assert made.status_code == 201, made.data
    issued = api.post("/v1/cards", shop_a.pos, {"program_id": "club", "customer": {"phone": "+79161234567"}})
    assert issued.status_code == 201, issued.data
    number, customer_id = str(issued.data["number"]), issued.data["customer_id"]
    kept = str(api.post("/v1/cards", shop_b.pos, {"program_id": "club"}).data["number"])
    docs = {}
    for shop in (shop_a, shop_b):
        doc = _pass_json(_pkpass(api, shop.pos, number)[1])
        docs[shop.tenant_id] = doc
        assert api.post(f"{_service(shop.tenant_id)}/devices/ph-{shop.tenant_id}/registrations/{PASS_TYPE}/"
                        f"{doc['serialNumber']}", None, {"pushToken": "ab12"},
                        headers=_apple(doc["authenticationToken"])).status_code == 201
    kept_doc = _pass_json(_pkpass(api, shop_b.pos, kept)[1])
    assert docs["shop-a"]["serialNumber"] != docs["shop-b"]["serialNumber"]
    # Shop D has a plastic card of its own under the same number: its tills, and its pass, show that one.
    own = api.post("/v1/cards", shop_d.pos, {"program_id": "main", "kind": "plastic", "number": number})
    assert own.status_code == 201, own.data
    own_doc = _pass_json(_pkpass(api, shop_d.pos, number)[1])
    # Shop C handed out a pass of the card too, then left the coalition: its pass still shows the customer's card.
    docs["shop-c"] = _pass_json(_pkpass(api, shop_c.pos, number)[1])
    assert api.delete("/v1/agency/coalitions/city-club/members/shop-c", agency_key).status_code == 200
    assert passes_store.serial_of_card("shop-c", number) == docs["shop-c"]["serialNumber"]

    # Erased through partner B, though A issued the card: both partners' passes and devices go.
    erased = api.post(f"/v1/customers/{customer_id}/erase", shop_b.admin,
                      {"confirm": "erase", "reason": "data subject request"})
    assert erased.status_code == 200, erased.data
    assert sorted(docs) == ["shop-a", "shop-b", "shop-c"]
    for shop_id, doc in docs.items():
        assert passes_store.serial_of_card(shop_id, number) is None
        assert passes_store.get_pass(shop_id, doc["serialNumber"]) is None
        assert passes_store.devices(shop_id, doc["serialNumber"]) == []
        assert _registered(api, shop_id, f"ph-{shop_id}") == []
        refused = api.get(f"{_service(shop_id)}/passes/{PASS_TYPE}/{doc['serialNumber']}", None,
                          headers={**_apple(doc["authenticationToken"]), **ACCEPT})
        assert refused.status_code == 401
    assert passes_store.serial_of_card("shop-b", kept) == kept_doc["serialNumber"]  # another customer's stays
    assert passes_store.serial_of_card("shop-d", number) == own_doc["serialNumber"]  # so does shop D's own card's
    take()
    assert api.post(f"/v1/cards/{number}/block", shop_a.admin, {"reason": "account closed"}).status_code == 200
    assert take() == []


def test_a_new_name_or_colour_re_pushes_every_pass_of_the_tenant_and_a_new_accent_does_not(
        api: Api, tenant: TenantKeys, credentials: dict[str, Any], recorder: str) -> None:
    """An installed Apple pass changes only when its device is pushed: the tenant's look is on every pass."""
    from tests.functional.jobqueue import drain

    numbers = [_card(api, tenant), _card(api, tenant)]
    docs = [_pass_json(_pkpass(api, tenant.pos, n)[1]) for n in numbers]
    for i, doc in enumerate(docs):
        assert api.post(f"{_service('coffee-house')}/devices/look{i}/registrations/{PASS_TYPE}/{doc['serialNumber']}",
                        None, {"pushToken": f"ab{i}"}, headers=_apple(doc["authenticationToken"])).status_code == 201
    take()
    handler = app.handler_map["wallet_worker"]
    look = {"primary_colour": "#112233", "accent_colour": "#445566"}
    assert api.put("/v1/branding", tenant.admin, look).status_code == 200
    drain()
    jobs = take()
    assert sorted(json.loads(j)["serial"] for j in jobs) == sorted(d["serialNumber"] for d in docs)
    assert handler(sqs_event(jobs), None) == {"batchItemFailures": []}
    assert sorted(p["target"] for p in wallet_recorder.pushes()) == ["ab0", "ab1"]

    # The accent colour is on no pass: nothing is pushed.
    assert api.put("/v1/branding", tenant.admin, {**look, "accent_colour": "#000000"}).status_code == 200
    drain()
    assert take() == []

    # A logo is: every pass again, the PNG top left of each.
    logo = passes_domain.png(320, 100, passes_domain.Rgb(200, 10, 10))
    asset = api.post("/v1/assets", tenant.admin, {"filename": "logo.png",
                                                  "data_base64": base64.b64encode(logo).decode()}).data
    branded = {**look, "accent_colour": "#000000", "logo_asset_id": asset["id"]}
    assert api.put("/v1/branding", tenant.admin, branded).status_code == 200
    drain()
    assert sorted(json.loads(j)["serial"] for j in take()) == sorted(d["serialNumber"] for d in docs)
    files = _pkpass(api, tenant.pos, numbers[0])[1]
    assert files["logo.png"] == files["logo@2x.png"] == logo
    assert json.loads(files["manifest.json"])["logo.png"] == hashlib.sha1(logo).hexdigest()

    # A new name is: every pass again, and the downloaded pass names the tenant anew in both languages.
    assert api.patch(f"/v1/agency/tenants/{tenant.tenant_id}", tenant.agency, {"name": "Coffee House"}
                     ).status_code == 200
    drain()
    assert sorted(json.loads(j)["serial"] for j in take()) == sorted(d["serialNumber"] for d in docs)
    latest = api.get(f"{_service('coffee-house')}/passes/{PASS_TYPE}/{docs[0]['serialNumber']}", None,
                     headers={**_apple(docs[0]["authenticationToken"]), **ACCEPT})
    with zipfile.ZipFile(io.BytesIO(latest.body)) as archive:
        assert json.loads(archive.read("pass.json"))["backgroundColor"] == "rgb(17, 34, 51)"
        ru = _strings(archive.read("ru.lproj/pass.strings"))
    assert (ru["pass.organization"], ru["pass.description"]) == ("Coffee House", "Карта лояльности Coffee House")


def _save_claims(api: Api, tenant: TenantKeys, number: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The class and object of the card's "Save to Google Wallet" link (its JWT's claims, signature not checked)."""
    r = api.get(f"/v1/cards/{number}/wallet/google", tenant.pos)
    assert r.status_code == 200, r.data
    claims_b64 = r.data["save_url"].removeprefix("https://pay.google.com/gp/v/save/").split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(claims_b64 + "=" * (-len(claims_b64) % 4)))
    (cls,), (obj,) = claims["payload"]["loyaltyClasses"], claims["payload"]["loyaltyObjects"]
    return cls, obj


def test_the_tenants_language_is_its_passes_first_language_and_a_change_of_it_re_pushes_them_and_the_class(
        api: Api, tenant: TenantKeys, credentials: dict[str, Any], recorder: str) -> None:
    """Tenant.language (default ru, whatever the currency) is Google's defaultValue; English is set by the agency."""
    from tests.functional.jobqueue import drain

    number = _card(api, tenant)
    doc = _pass_json(_pkpass(api, tenant.pos, number)[1])
    assert api.post(f"{_service('coffee-house')}/devices/lang0/registrations/{PASS_TYPE}/{doc['serialNumber']}",
                    None, {"pushToken": "cd0"}, headers=_apple(doc["authenticationToken"])).status_code == 201
    cls, obj = _save_claims(api, tenant, number)
    assert (obj["loyaltyPoints"]["label"], cls["programName"]) == ("Баллы", "Программа лояльности coffee-house LLC")
    handler = app.handler_map["wallet_worker"]
    assert handler(sqs_event(take()), None) == {"batchItemFailures": []}  # the first link's class PATCH
    wallet_recorder.clear()

    changed = api.patch(f"/v1/agency/tenants/{tenant.tenant_id}", tenant.agency, {"language": "en"})
    assert changed.status_code == 200 and changed.data["language"] == "en"
    drain()
    jobs = take()
    assert sorted((json.loads(j).get("kind", "pass"), json.loads(j).get("serial")) for j in jobs) == [
        ("class", None), ("pass", doc["serialNumber"])]
    assert handler(sqs_event(jobs), None) == {"batchItemFailures": []}
    assert [p["target"] for p in wallet_recorder.pushes() if p["kind"] == "apns"] == ["cd0"]
    (patched,) = _class_pushes()
    assert (patched["programName"], patched["localizedProgramName"]) == ("coffee-house LLC loyalty", {
        "defaultValue": {"language": "en", "value": "coffee-house LLC loyalty"},
        "translatedValues": [{"language": "ru", "value": "Программа лояльности coffee-house LLC"}]})
    assert patched["localizedAccountIdLabel"]["defaultValue"] == {"language": "en", "value": "Card number"}

    cls, obj = _save_claims(api, tenant, number)
    assert obj["loyaltyPoints"]["label"] == "Points" and obj["loyaltyPoints"]["localizedLabel"] == {
        "defaultValue": {"language": "en", "value": "Points"},
        "translatedValues": [{"language": "ru", "value": "Баллы"}]}
    assert obj["secondaryLoyaltyPoints"]["label"] == "Tier" and cls["programName"] == "coffee-house LLC loyalty"
    take()
    # The same language again changes nothing: no pass, no class job.
    assert api.patch(f"/v1/agency/tenants/{tenant.tenant_id}", tenant.agency, {"language": "en"}).status_code == 200
    drain()
    assert take() == []
