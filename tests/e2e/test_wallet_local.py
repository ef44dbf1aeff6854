"""Wallet passes on the running local stack (`make run`): test keys made on first start, pushes in the outbox.

The whole loop as a phone would run it, over HTTP: download the pass, register a device at the pass's own
webServiceURL, buy through the POS API, and the wallet worker's APNs push reaches the stack's recorder
(`/_local/wallet-pushes` on the moto port), listed in the outbox as a "Wallet push"; the device then finds
the pass among the serials updated since its last tag.
"""

from __future__ import annotations

import io
import json
import time
import uuid
import zipfile

import requests

from tests.e2e.conftest import LocalStack

PKPASS = "application/vnd.apple.pkpass"
TENANT = "coffee-chain"


def _moto(stack: LocalStack, path: str) -> requests.Response:
    return requests.get(f"http://127.0.0.1:{stack.moto_port}{path}", timeout=10)


def test_a_purchase_pushes_the_registered_device_through_the_local_recorder(stack: LocalStack) -> None:
    assert json.loads((stack.state_dir / "wallet" / "wallet.json").read_text())["apple_root_ca"].startswith(
        "-----BEGIN CERTIFICATE-----")
    pos = stack.key("pos", TENANT)["secret"]
    issued = stack.request("POST", "/v1/cards", pos, json={"program_id": "zerno-points"})
    assert issued.status_code == 201, issued.text
    number = issued.json()["number"]

    download = stack.get(f"/v1/cards/{number}/wallet/apple", pos, headers={"Accept": PKPASS})
    assert download.status_code == 200 and download.headers["Content-Type"] == PKPASS, download.text[:300]
    with zipfile.ZipFile(io.BytesIO(download.content)) as archive:
        doc = json.loads(archive.read("pass.json"))
        assert {"signature", "manifest.json", "icon.png"} <= set(archive.namelist())
    service = doc["webServiceURL"]
    assert service == f"{stack.url}/v1/wallet/apple/{TENANT}"
    serial, auth = doc["serialNumber"], {"Authorization": f"ApplePass {doc['authenticationToken']}"}
    push_token = uuid.uuid4().hex
    device = f"e2e{uuid.uuid4().hex[:12]}"
    registered = requests.post(f"{service}/v1/devices/{device}/registrations/{doc['passTypeIdentifier']}/{serial}",
                               json={"pushToken": push_token}, headers=auth, timeout=10)
    assert registered.status_code == 201, registered.text
    listed = requests.get(f"{service}/v1/devices/{device}/registrations/{doc['passTypeIdentifier']}", timeout=10)
    since = listed.json()["lastUpdated"]

    bought = stack.request("POST", "/v1/purchases", pos, json={
        "receipt_id": f"wallet-{uuid.uuid4().hex[:10]}", "card_number": number, "store_id": "msk-tverskaya",
        "total": 25_000, "items": [{"sku": "latte", "category": "coffee", "quantity": 1, "amount": 25_000}]})
    assert bought.status_code == 200, bought.text

    deadline, pushes = time.monotonic() + 30, []
    while time.monotonic() < deadline and not pushes:
        pushes = [p for p in _moto(stack, "/_local/wallet-pushes").json()["pushes"] if p["target"] == push_token]
        time.sleep(0.25)
    assert len(pushes) == 1, "the wallet worker pushed the device once"
    assert (pushes[0]["kind"], pushes[0]["headers"]["apns-topic"], pushes[0]["body"]) == (
        "apns", doc["passTypeIdentifier"], "{}")
    outbox = _moto(stack, "/_local/outbox.json").json()["messages"]
    assert [m["kind"] for m in outbox if push_token in m["to"]] == ["wallet"]
    page = _moto(stack, "/_local/outbox").content.decode()
    assert f"Wallet push to {push_token}" in page

    changed = requests.get(f"{service}/v1/devices/{device}/registrations/{doc['passTypeIdentifier']}",
                           params={"passesUpdatedSince": since}, timeout=10)
    assert changed.status_code == 200 and changed.json()["serialNumbers"] == [serial]


def test_the_stack_serves_its_test_root_key_and_records_the_google_class_patch_of_a_new_look(
        stack: LocalStack) -> None:
    """Google's keys endpoint stand-in serves the test root key; a new brand colour PATCHes the Google class."""
    local = json.loads((stack.state_dir / "wallet" / "wallet.json").read_text())["google_callback_keys"]
    served = _moto(stack, "/_local/wallet-pushes/google/keys")
    assert served.status_code == 200 and served.json() == local

    pos, admin = stack.key("pos", TENANT)["secret"], stack.key("tenant_admin", TENANT)["secret"]
    number = stack.request("POST", "/v1/cards", pos, json={"program_id": "zerno-points"}).json()["number"]
    assert stack.get(f"/v1/cards/{number}/wallet/google", pos).status_code == 200  # the class is offered
    before = stack.get("/v1/branding", admin).json()
    colour = "#0b6e4f" if before["primary_colour"].lower() != "#0b6e4f" else "#6e0b4f"
    seen = {p["id"] for p in _moto(stack, "/_local/wallet-pushes").json()["pushes"]}
    try:
        changed = stack.request("PUT", "/v1/branding", admin, json={**before, "primary_colour": colour})
        assert changed.status_code == 200, changed.text
        deadline, patched = time.monotonic() + 30, []
        while time.monotonic() < deadline and not patched:
            patched = [json.loads(p["body"]) for p in _moto(stack, "/_local/wallet-pushes").json()["pushes"]
                       if p["kind"] == "google_class" and p["id"] not in seen
                       and json.loads(p["body"])["hexBackgroundColor"] == colour]
            time.sleep(0.25)
        assert len(patched) == 1, "the wallet worker PATCHed the class once"
        assert patched[0]["id"].endswith(f".loyalty-{TENANT}")
        assert patched[0]["localizedProgramName"]["translatedValues"][0]["language"] == "en"
        page = _moto(stack, "/_local/outbox").content.decode()
        assert "Google Wallet class update (PATCH)" in page
    finally:
        stack.request("PUT", "/v1/branding", admin, json=before)
