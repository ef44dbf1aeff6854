"""examples/pos_client.py and docs/pos-client.md: signatures, retries, and the doc's commands against the route table.

The e2e twin (tests/e2e/test_pos_client_example.py) runs the same flow against
the local stack; this one needs no AWS.
"""

from __future__ import annotations

import importlib.util
import json
import re
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from chalicelib.domain import webhooks as server_rules

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "pos-client.md"
SAMPLE_CARD = "6292887115332"
"""The card number the doc's answers show; `$CARD` in its commands."""


def load_client() -> ModuleType:
    """examples/ is not a package: integrators copy the file, the tests load it the same way."""
    name = "pos_client_example"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "examples" / "pos_client.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


pc = load_client()


@dataclass
class Step:
    """One curl command of the doc, and the JSON answer shown right after it (if any)."""

    method: str
    path: str
    body: dict[str, Any] | None
    response: dict[str, Any] | None = None


def doc_steps(text: str | None = None) -> list[Step]:
    """Every curl of the doc's sh blocks, in order; `$CARD` replaced by SAMPLE_CARD."""
    text = DOC.read_text() if text is None else text
    steps: list[Step] = []
    previous_lang = None
    for lang, code in re.findall(r"```(\w+)\n(.*?)```", text, re.S):
        if lang == "json" and previous_lang == "sh" and steps and steps[-1].response is None:
            steps[-1].response = json.loads(code)
        previous_lang = lang
        if lang != "sh":
            continue
        lines = code.splitlines()
        i = 0
        while i < len(lines):
            command = lines[i]
            while command.endswith("\\"):
                i += 1
                command = command[:-1] + lines[i]
            body = None
            if "<<EOF" in command:
                end = lines.index("EOF", i + 1)
                body = json.loads("\n".join(lines[i + 1:end]).replace("$CARD", SAMPLE_CARD))
                i = end
            i += 1
            if "curl " not in command:
                continue
            method = re.search(r"-X (\w+)", command)
            path = re.search(r'"\$API(/[^"?]*)', command)
            assert path, f"a curl without \"$API/...\": {command}"
            steps.append(Step(method.group(1) if method else "GET", path.group(1).replace("$CARD", SAMPLE_CARD), body))
    return steps


def route_of(method: str, path: str) -> Any:
    from app import app  # noqa: F401  (registers every route)
    from chalicelib.api.registry import routes

    for spec in routes():
        pattern = "^" + re.sub(r"\{[^/]+\}", "[^/]+", spec.path) + "$"
        if spec.method == method and re.match(pattern, path):
            return spec
    return None


# --- verify_webhook ---------------------------------------------------------------------------

SECRET = "whsec_test-secret"
BODY = b'{"id":"evt_1","type":"purchase.processed","data":{"points_earned":22}}'
NOW = 1_795_391_422


def _headers(secrets: list[str], timestamp: int = NOW, body: bytes = BODY) -> dict[str, str]:
    """Signed by the server's own code, so the example's independent implementation is checked against it."""
    return {"Loyalty-Signature": server_rules.signature_header(secrets, timestamp, body),
            "Loyalty-Timestamp": str(timestamp), "Content-Type": "application/json"}


def test_a_delivery_signed_by_the_server_verifies() -> None:
    assert pc.verify_webhook(SECRET, _headers([SECRET]), BODY, now=NOW)
    assert pc.verify_webhook(SECRET, _headers([SECRET]), BODY.decode(), now=NOW + 299)
    lowered = {k.lower(): v for k, v in _headers([SECRET]).items()}  # frameworks lower-case header names
    assert pc.verify_webhook(SECRET, lowered, BODY, now=NOW)


def test_during_a_rotation_either_secret_verifies() -> None:
    headers = _headers(["whsec_new", "whsec_old"])
    assert headers["Loyalty-Signature"].count("v1=") == 2
    assert pc.verify_webhook("whsec_new", headers, BODY, now=NOW)
    assert pc.verify_webhook("whsec_old", headers, BODY, now=NOW)
    assert not pc.verify_webhook("whsec_other", headers, BODY, now=NOW)


@pytest.mark.parametrize("case", ["tampered body", "wrong secret", "too old", "from the future", "no header",
                                  "no timestamp", "two timestamps", "bad timestamp", "timestamp swapped"])
def test_anything_else_fails(case: str) -> None:
    headers, body, secret = _headers([SECRET]), BODY, SECRET
    if case == "tampered body":
        body = BODY.replace(b"22", b"2200")
    elif case == "wrong secret":
        secret = "whsec_guess"
    elif case == "too old":
        headers = _headers([SECRET], NOW - 301)
    elif case == "from the future":
        headers = _headers([SECRET], NOW + 301)
    elif case == "no header":
        del headers["Loyalty-Signature"]
    elif case == "no timestamp":
        headers["Loyalty-Signature"] = headers["Loyalty-Signature"].split(",", 1)[1]
    elif case == "two timestamps":
        headers["Loyalty-Signature"] = f"t={NOW - 1}," + headers["Loyalty-Signature"]
    elif case == "bad timestamp":
        headers["Loyalty-Signature"] = headers["Loyalty-Signature"].replace(f"t={NOW}", "t=abc")
    elif case == "timestamp swapped":  # a valid signature replayed under a fresh timestamp
        headers["Loyalty-Signature"] = headers["Loyalty-Signature"].replace(f"t={NOW}", f"t={NOW + 5}")
    assert not pc.verify_webhook(secret, headers, body, now=NOW)


def test_a_wider_tolerance_accepts_an_older_delivery() -> None:
    headers = _headers([SECRET], NOW - 600)
    assert not pc.verify_webhook(SECRET, headers, BODY, now=NOW)
    assert pc.verify_webhook(SECRET, headers, BODY, tolerance=900, now=NOW)


# --- the client's retries, against a scripted HTTP server --------------------------------------

class Scripted:
    """Answers requests from a script of (status, body, headers) and records what it was sent."""

    def __init__(self, script: list[tuple[int, Any, dict[str, str]]]) -> None:
        self.script, self.seen = list(script), []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                owner.seen.append((self.command, self.path, dict(self.headers), raw))
                status, body, headers = owner.script.pop(0)
                data = json.dumps(body).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def scripted() -> Iterator[Any]:
    servers: list[Scripted] = []

    def make(*script: tuple[int, Any, dict[str, str]]) -> Scripted:
        servers.append(Scripted(list(script)))
        return servers[-1]

    yield make
    for server in servers:
        server.server.shutdown()
        server.server.server_close()


def _error(code: str, status_message: str = "x") -> dict[str, Any]:
    return {"error": {"code": code, "message": status_message, "details": [], "request_id": "rid-1"}}


def test_a_purchase_is_retried_with_the_same_key_and_bytes(scripted: Any) -> None:
    answer = {"receipt_id": "r-1", "points_earned": 22}
    server = scripted((409, _error("card_busy"), {"Retry-After": "1"}), (429, _error("rate_limited"), {}),
                      (503, _error("dependency_unavailable"), {}), (200, answer, {}))
    waits: list[float] = []
    client = pc.LoyaltyClient(server.url, "lp_pos_x", sleep=waits.append)
    assert client.purchase("r-1", "6292887115332", "msk-tverskaya", pc.BASKET, 100, ["WELCOME10"]) == answer
    assert len(server.seen) == 4
    assert {(m, p) for m, p, _, _ in server.seen} == {("POST", "/v1/purchases")}
    assert {h["Idempotency-Key"] for _, _, h, _ in server.seen} == {"purchase-r-1"}
    assert len({raw for _, _, _, raw in server.seen}) == 1
    assert json.loads(server.seen[0][3])["total"] == 60000
    assert server.seen[0][2]["Authorization"] == "Bearer lp_pos_x"
    assert waits[0] == 1.0  # the server's Retry-After, then jittered backoff
    assert all(0 <= w <= 8 for w in waits) and len(waits) == 3


def test_a_request_error_is_raised_at_once_with_its_details(scripted: Any) -> None:
    details = [{"field": "redeem_points", "issue": "allowed maximum: 162"}]
    body = {"error": {"code": "redeem_exceeds_limit", "message": "At most 162 points", "details": details,
                      "request_id": "rid-2"}}
    server = scripted((422, body, {}))
    client = pc.LoyaltyClient(server.url, "lp_pos_x", sleep=lambda _: pytest.fail("must not retry"))
    with pytest.raises(pc.LoyaltyError) as caught:
        client.purchase("r-2", "6292887115332", "msk-tverskaya", pc.BASKET, 170)
    error = caught.value
    assert (error.status, error.code, error.message, error.details, error.request_id) == (
        422, "redeem_exceeds_limit", "At most 162 points", details, "rid-2")
    assert len(server.seen) == 1


def test_other_conflicts_are_not_retried_and_unknown_customers_are_none(scripted: Any) -> None:
    server = scripted((409, _error("campaign_exists"), {}), (404, _error("customer_not_found"), {}),
                      (404, _error("card_not_found"), {}))
    client = pc.LoyaltyClient(server.url, "k", sleep=lambda _: pytest.fail("must not retry"))
    with pytest.raises(pc.LoyaltyError, match="campaign_exists"):
        client.request("POST", "/v1/coupon-campaigns", pc.COUPON_CAMPAIGN, idempotency_key="c-1")
    assert client.identify("8 916 123-45-67") is None
    assert server.seen[1][1] == "/v1/customers/lookup?phone=8+916+123-45-67"
    with pytest.raises(pc.LoyaltyError, match="card_not_found"):
        client.card("1")


def test_a_long_retry_after_is_handed_to_the_caller(scripted: Any) -> None:
    server = scripted((429, _error("rate_limited"), {"Retry-After": "3600"}))
    client = pc.LoyaltyClient(server.url, "k", sleep=lambda _: pytest.fail("must not wait an hour"))
    with pytest.raises(pc.LoyaltyError) as caught:
        client.purchase("r-4", "6292887115332", "msk-tverskaya", pc.BASKET)
    assert (caught.value.status, caught.value.code, caught.value.retry_after) == (429, "rate_limited", 3600.0)


def test_gives_up_after_the_last_attempt(scripted: Any) -> None:
    server = scripted(*[(502, "bad gateway", {})] * 3)
    client = pc.LoyaltyClient(server.url, "k", max_attempts=3, sleep=lambda _: None)
    with pytest.raises(pc.LoyaltyError) as caught:
        client.refund("f-1", "r-1")
    assert (caught.value.status, caught.value.code) == (502, "http_502")  # a body not in our shape (a proxy's)
    assert len(server.seen) == 3


def test_network_errors_are_retried_then_reported_as_unknown_outcome() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: connections are refused
    waits: list[float] = []
    client = pc.LoyaltyClient(f"http://127.0.0.1:{port}", "k", timeout=1, max_attempts=3, sleep=waits.append)
    started = time.monotonic()
    with pytest.raises(pc.LoyaltyError) as caught:
        client.purchase("r-3", "6292887115332", "msk-tverskaya", pc.BASKET)
    assert (caught.value.status, caught.value.code) == (0, "network_error")
    assert "outcome unknown" in caught.value.message
    assert len(waits) == 2 and time.monotonic() - started < 5
    no_retry = pc.LoyaltyClient(f"http://127.0.0.1:{port}", "k", sleep=lambda _: pytest.fail("must not retry"))
    with pytest.raises(pc.LoyaltyError, match="network_error"):
        no_retry.request("POST", "/v1/anything", {})  # a write without an idempotency key is never resent


def test_only_http_urls() -> None:
    with pytest.raises(ValueError, match="http"):
        pc.LoyaltyClient("file:///etc/passwd", "k")


# --- the doc ------------------------------------------------------------------------------------

def test_every_curl_in_the_doc_is_a_route_with_a_valid_body() -> None:
    from chalicelib.api.registry import parse_body

    steps = doc_steps()
    assert len(steps) >= 10
    for step in steps:
        spec = route_of(step.method, step.path)
        assert spec is not None, f"docs/pos-client.md: {step.method} {step.path} is not a route"
        if step.body is not None:
            assert spec.body is not None, f"{step.method} {step.path} takes no body"
            parse_body(spec.body, json.dumps(step.body).encode())  # as the API parses it: strict JSON


class Replay(pc.LoyaltyClient):
    """A client that records its calls and answers with the doc's own answers (errors raised as the API would)."""

    def __init__(self, steps: list[Step], calls: list[Step]) -> None:
        super().__init__("http://doc.invalid", "k")
        self.answers = [s for s in steps if s.response is not None]
        self.calls = calls

    def request(self, method: str, path: str, body: Any = None, query: Any = None, idempotency_key: str | None = None,
                retry: bool | None = None) -> Any:
        self.calls.append(Step(method, path, body))
        answer = next(s for s in self.answers if (s.method, s.path) == (method, path) and s.body == body).response
        self.answers.remove(next(s for s in self.answers if s.response is answer))
        if "error" in answer:
            raise pc.LoyaltyError(404, answer["error"]["code"], answer["error"]["message"])
        return answer


def test_the_python_demo_makes_the_docs_calls_in_the_docs_order() -> None:
    steps = doc_steps()
    calls: list[Step] = []
    lines: list[str] = []
    out = pc.demo(Replay(steps, calls), Replay(steps, calls), "+79161234567", "till3-000201", say=lines.append)
    # The doc adds a refused quote (redeem 170), the ledger and the webhook registration; the rest is the demo.
    # (and the look-up that keeps the card number in $CARD).
    extra = [s for s in steps if (s.body or {}).get("redeem_points") == 170 or s.path.endswith("/transactions")
             or s.path == "/v1/webhooks" or (s.path == "/v1/customers/lookup" and s.response is None)]
    flow = [s for s in steps if s not in extra]
    assert [(c.method, c.path, c.body) for c in calls] == [(s.method, s.path, s.body) for s in flow]
    assert out["identified"] is False and out["final"]["balance"] == 133
    assert lines[-1] == f"card {SAMPLE_CARD}: active, balance 133, pending 15"
    quote = next(s for s in steps if s.path == "/v1/purchases/quote")
    assert quote.body == pc.LoyaltyClient.receipt("till3-000201", SAMPLE_CARD, pc.STORE, pc.BASKET, pc.REDEEM,
                                                  [pc.COUPON])


def test_the_doc_shows_the_demos_printed_output() -> None:
    text = DOC.read_text()
    steps = doc_steps()
    calls: list[Step] = []
    lines: list[str] = []
    pc.demo(Replay(steps, calls), Replay(steps, calls), "+79161234567", "till3-000201", say=lines.append)
    shown = re.search(r"```text\n(.*?)```", text, re.S)
    assert shown  # the first run of the script (receipt till3-000301 there)
    expected = [re.sub(r"card \d+", f"card {SAMPLE_CARD}", line).replace("till3-000301", "till3-000201")
                for line in shown.group(1).splitlines()]
    assert lines == expected
