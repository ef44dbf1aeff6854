"""Bad input only real HTTP can send: raw bytes, sizes, content types, percent-encoded path ids.

The functional catalogue (tests/functional/test_bad_input.py) covers the rest
through the test client; here the local gateway parses the request line and
headers itself, as API Gateway does, and every answer must still be the API's
one error shape, and a valid request afterwards must see nothing changed.
"""

from __future__ import annotations

import json
import socket
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.e2e.conftest import LocalStack

MAX_BODY = 262144


def _error(r: requests.Response, status: int, code: str, field: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text[:500])
    assert r.headers["Content-Type"].startswith("application/json")
    err = r.json()["error"]
    assert set(err) == {"code", "message", "details", "request_id"} and err["code"] == code, err
    assert err["request_id"] == r.headers["X-Request-Id"]
    assert "Traceback" not in r.text
    if field is not None:
        assert field in [d["field"] for d in err["details"]], err
    return err


@pytest.fixture(scope="module")
def seeded(stack: LocalStack) -> dict[str, Any]:
    """A coffee-chain card with one purchase, and a fuel-network card."""
    pos, other = stack.key("pos", "coffee-chain")["secret"], stack.key("pos", "fuel-network")["secret"]
    card = stack.request("POST", "/v1/cards", pos, json={"program_id": "zerno-points"}).json()["number"]
    other_card = stack.request("POST", "/v1/cards", other, json={"program_id": "fuel-points"}).json()["number"]
    bought = stack.request("POST", "/v1/purchases", pos, json={
        "receipt_id": "http-bad-1", "card_number": card, "store_id": "msk-tverskaya", "total": 50000,
        "items": [{"sku": "latte", "category": "coffee", "amount": 50000}]})
    assert bought.status_code == 200, bought.text
    return {"pos": pos, "card": card, "other_card": other_card, "before": stack.get(f"/v1/cards/{card}", pos).json()}


def _post(stack: LocalStack, pos: str, raw: bytes, content_type: str | None = "application/json") -> requests.Response:
    headers = {"Content-Type": content_type} if content_type else {}
    return stack.request("POST", "/v1/purchases", pos, data=raw, headers=headers)


def _raw_http(stack: LocalStack, request: bytes) -> bytes:
    """Send bytes the requests library would refuse to (or fix up), and read the whole answer."""
    parts = urlsplit(stack.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_raw_bodies_sizes_and_content_types(stack: LocalStack, seeded: dict[str, Any]) -> None:
    pos, card = seeded["pos"], seeded["card"]
    good = {"receipt_id": "http-bad-2", "card_number": card, "store_id": "msk-tverskaya", "total": 1000,
            "items": [{"sku": "tea", "amount": 1000}]}
    body = json.dumps(good).encode()
    _error(_post(stack, pos, b'{"receipt_id": "x", '), 400, "malformed_json", "body")
    _error(_post(stack, pos, b'{"receipt_id": "\xff\xfe\xfd"}'), 400, "malformed_json", "body")
    _error(_post(stack, pos, body.replace(b'"total": 1000', b'"total": NaN')), 400, "malformed_json", "body")
    _error(_post(stack, pos, body[:-1] + b', "total": 1}'), 400, "malformed_json", "body")
    _error(_post(stack, pos, b"[" * 20000 + b"]" * 20000), 400, "malformed_json", "body")
    _error(_post(stack, pos, body[:-1] + b" " * (MAX_BODY + 1 - len(body)) + b"}"), 413, "payload_too_large")
    _error(_post(stack, pos, body, "text/plain"), 415, "unsupported_media_type")
    _error(_post(stack, pos, b"receipt_id=x&total=1", "application/x-www-form-urlencoded"), 415,
           "unsupported_media_type")
    _error(_post(stack, pos, body, "application/xml"), 415, "unsupported_media_type")
    quoted = stack.request("POST", "/v1/purchases/quote", pos, data=body[:-1] + b" " * (MAX_BODY - len(body)) + b"}",
                           headers={"Content-Type": "application/json; charset=utf-8"})
    assert quoted.status_code == 200 and quoted.json()["payable"] == 1000, quoted.text


def test_percent_encoded_ids_never_leave_the_tenant(stack: LocalStack, seeded: dict[str, Any]) -> None:
    pos, card, other = seeded["pos"], seeded["card"], seeded["other_card"]
    for path in (f"/v1/cards/fuel-network%23card%23{other}", f"/v1/cards/{other}", f"/v1/cards/..%2F{card}",
                 f"/v1/cards/%2e%2e%2f{card}", f"/v1/cards/{card}%00", "/v1/cards/%D0%BA%D0%B0%D1%80%D1%82%D0%B0",
                 f"/v1/cards/{card}%23card"):
        _error(stack.get(path, pos), 404, "card_not_found", "number")
    _error(stack.get(f"/v1/cards/{'9' * 3000}", pos), 404, "not_found", "number")
    _error(stack.get(f"/v1/cards/{'%D0%96' * 200}", pos), 404, "not_found", "number")
    r = stack.get(f"/v1/cards/{card}/transactions?limit=1&limit=500", pos)
    _error(r, 400, "validation_error", "limit")


def test_broken_request_lines_get_our_shape_or_a_plain_400(stack: LocalStack, seeded: dict[str, Any]) -> None:
    """Hand-written requests: an empty object body, a raw (unencoded) non-ASCII path; never a 500."""
    pos, port = seeded["pos"], urlsplit(stack.url).port
    head = (f"POST /v1/purchases HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {pos}\r\n"
            "Content-Type: application/json\r\nConnection: close\r\n").encode()
    answer = _raw_http(stack, head + b"Content-Length: 2\r\n\r\n{}")
    status = int(answer.split(b" ", 2)[1])
    assert status == 400 and b'"code":"validation_error"' in answer.replace(b" ", b""), answer[:500]
    answer = _raw_http(stack, f"GET /v1/cards/\xd0\xba HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer "
                              f"{pos}\r\nConnection: close\r\n\r\n".encode("latin-1"))
    assert int(answer.split(b" ", 2)[1]) in (400, 404), answer[:500]
    assert b" 500 " not in answer.split(b"\r\n", 1)[0]


def test_nothing_changed_and_a_valid_purchase_still_works(stack: LocalStack, seeded: dict[str, Any]) -> None:
    pos, card = seeded["pos"], seeded["card"]
    assert stack.get(f"/v1/cards/{card}", pos).json() == seeded["before"]
    ledger = stack.get(f"/v1/cards/{card}/transactions", pos).json()["items"]
    assert [e["receipt_id"] for e in ledger] == ["http-bad-1"]
    ok = stack.request("POST", "/v1/purchases", pos, json={
        "receipt_id": "http-bad-3", "card_number": card, "store_id": "msk-tverskaya", "total": 50000,
        "items": [{"sku": "latte", "category": "coffee", "amount": 50000}]})
    assert ok.status_code == 200 and ok.json()["points_earned"] == ledger[0]["points"], ok.text
