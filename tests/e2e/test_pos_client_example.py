"""examples/pos_client.py and docs/pos-client.md against the real local stack: every number the doc shows.

The doc's answers are abridged copies of real ones; here the same flow runs
on a fresh stack and each shown answer must be a sub-document of the real one
(ids, card numbers and times aside), so neither the example nor the doc can
rot. Then a webhook to a loopback receiver, verified with the example's
`verify_webhook`.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.e2e.conftest import REPO, LocalStack
from tests.unit.test_pos_client_example import DOC, SAMPLE_CARD, Step, doc_steps, load_client

pc = load_client()
TENANT = "coffee-chain"
DELIVERY_TIMEOUT = 30.0
VARIABLE = frozenset({"number", "card_number", "customer_id", "issued_at", "activated_at", "created_at",
                      "updated_at", "entry_id", "at", "actor", "request_id", "id", "secret", "secret_hint", "url"})
"""Fields whose values differ from run to run: the doc shows one run's."""


def contains(actual: Any, shown: Any, where: str = "") -> None:
    """`shown` (the doc) is `actual` with fields left out; values equal except VARIABLE ones."""
    if isinstance(shown, dict):
        assert isinstance(actual, dict), where
        for key, value in shown.items():
            assert key in actual, f"{where}.{key} is not in the real answer"
            if key not in VARIABLE:
                contains(actual[key], value, f"{where}.{key}")
    elif isinstance(shown, list):
        assert isinstance(actual, list) and len(actual) == len(shown), f"{where}: {actual} vs {shown}"
        for i, (a, s) in enumerate(zip(actual, shown, strict=True)):
            contains(a, s, f"{where}[{i}]")
    else:
        assert actual == shown, f"{where}: the API says {actual!r}, the doc {shown!r}"


@pytest.fixture(scope="module")
def clients(stack: LocalStack) -> tuple[Any, Any]:
    return (pc.LoyaltyClient(stack.url, stack.key("pos", TENANT)["secret"]),
            pc.LoyaltyClient(stack.url, stack.key("tenant_admin", TENANT)["secret"]))


def _shown(steps: list[Step], method: str, path_end: str, **body: Any) -> dict[str, Any]:
    step = next(s for s in steps if s.method == method and s.path.endswith(path_end) and s.response is not None
                and all((s.body or {}).get(k) == v for k, v in body.items()))
    assert step.response is not None
    return step.response


def test_the_docs_flow_gives_the_docs_numbers(stack: LocalStack, clients: tuple[Any, Any]) -> None:
    pos, admin = clients
    steps = doc_steps()
    with pytest.raises(pc.LoyaltyError) as unknown:
        pos.request("GET", "/v1/customers/lookup", query={"phone": "8 916 123-45-67"})
    contains({"error": {"code": unknown.value.code, "message": unknown.value.message,
                        "details": unknown.value.details}}, _shown(steps, "GET", "/v1/customers/lookup"), "lookup")

    out = pc.demo(pos, admin, "+79161234567", "till3-000201", say=lambda _: None)
    number = out["card"]["number"]
    assert out["identified"] is False and out["campaign"]["code"] == "WELCOME10"
    assert (out["card"]["status"], out["card"]["balance"], out["card"]["pending"]) == ("issued", 0, 0)
    assert (out["bonus"]["points"], out["bonus"]["balance_after"]) == (200, 200)
    for answer in (out["quote"], out["purchase"]):
        assert (answer["discount"], answer["payable"], answer["to_pay"]) == (16000, 44000, 44000)
        assert (answer["points_redeemed"], answer["points_earned"], answer["balance"], answer["pending"]) == (
            100, 22, 100, 22)
        assert [(c["code"], c["applied"], c["discount"]) for c in answer["coupons"]] == [("WELCOME10", True, 6000)]
    refund = out["refund"]
    assert (refund["amount_refunded"], refund["points_reversed"], refund["points_returned"]) == (20000, 7, 33)
    assert (refund["balance"], refund["pending"]) == (133, 15)
    assert (out["final"]["status"], out["final"]["balance"], out["final"]["pending"]) == ("active", 133, 15)

    # Each answer the doc shows, against the real one.
    contains(out["campaign"], _shown(steps, "POST", "/v1/coupon-campaigns"), "campaign")
    contains(out["card"], _shown(steps, "POST", "/v1/cards"), "card")
    contains(out["bonus"], _shown(steps, "POST", "/adjustments"), "bonus")
    contains(out["quote"], _shown(steps, "POST", "/v1/purchases/quote", redeem_points=100), "quote")
    contains(out["purchase"], _shown(steps, "POST", "/v1/purchases"), "purchase")
    contains(out["refund"], _shown(steps, "POST", "/v1/refunds"), "refund")
    contains(out["final"], _shown(steps, "GET", f"/v1/cards/{SAMPLE_CARD}"), "card after")
    ledger = pos.request("GET", f"/v1/cards/{number}/transactions")
    contains(ledger, _shown(steps, "GET", "/transactions"), "ledger")

    # The retry the doc describes: the same request and key again is the stored answer, marked replayed.
    body = pc.LoyaltyClient.receipt("till3-000201", number, pc.STORE, pc.BASKET, pc.REDEEM, [pc.COUPON])
    again = stack.request("POST", "/v1/purchases", stack.key("pos", TENANT)["secret"], data=json.dumps(body),
                          headers={"Content-Type": "application/json", "Idempotency-Key": "purchase-till3-000201"})
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == out["purchase"]
    assert pos.card(number)["balance"] == 133


def test_the_refused_redemption_is_the_docs(clients: tuple[Any, Any]) -> None:
    pos, admin = clients
    card = pos.issue_card(pc.PROGRAM, "+79160000170")
    admin.request("POST", f"/v1/cards/{card['number']}/adjustments", pc.welcome_bonus(card["number"]))
    with pytest.raises(pc.LoyaltyError) as refused:
        pos.quote("till3-000170", card["number"], pc.STORE, pc.BASKET, 170, [pc.COUPON])
    error = refused.value
    assert (error.status, error.code) == (422, "redeem_exceeds_limit")
    assert error.details == [{"field": "redeem_points", "issue": "allowed maximum: 162"}]
    contains({"error": {"code": error.code, "message": error.message, "details": error.details}},
             _shown(doc_steps(), "POST", "/v1/purchases/quote", redeem_points=170), "refused quote")


def test_the_script_prints_what_the_doc_shows(stack: LocalStack) -> None:
    def run(receipt_id: str) -> list[str]:
        done = subprocess.run(
            [sys.executable, "examples/pos_client.py", "--api", stack.url, "--pos-key", stack.key("pos", TENANT)["secret"],
             "--admin-key", stack.key("tenant_admin", TENANT)["secret"], "--phone", "+7 916 765-43-21",
             "--receipt-id", receipt_id], cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        return [re.sub(r"card \d+", "card N", line) for line in done.stdout.splitlines()]

    shown = [[re.sub(r"card \d+", "card N", line) for line in block.splitlines()]
             for block in re.findall(r"```text\n(.*?)```", DOC.read_text(), re.S)]
    assert run("till3-000301") == shown[0]
    assert run("till3-000302") == shown[1]


class Receiver:
    """A loopback webhook endpoint: records each delivery's headers and raw body, answers 204."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[dict[str, str], bytes]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                owner.deliveries.append((dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, event_type: str, receipt_id: str) -> tuple[dict[str, str], bytes]:
        deadline = time.monotonic() + DELIVERY_TIMEOUT
        while time.monotonic() < deadline:
            for headers, body in list(self.deliveries):
                event = json.loads(body)
                if event["type"] == event_type and event["data"].get("receipt_id") == receipt_id:
                    return headers, body
            time.sleep(0.2)
        raise AssertionError(f"no {event_type} for {receipt_id} within {DELIVERY_TIMEOUT}s: {self.deliveries}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.server.shutdown()
    running.server.server_close()


def test_a_webhook_delivery_verifies_with_the_example(stack: LocalStack, clients: tuple[Any, Any],
                                                      receiver: Receiver) -> None:
    pos, admin = clients
    shown = next(s for s in doc_steps() if s.path == "/v1/webhooks")
    assert shown.body is not None
    endpoint = admin.request("POST", "/v1/webhooks", {**shown.body, "url": receiver.url})
    try:
        assert shown.response is not None
        contains(endpoint, shown.response, "webhook")
        secret = endpoint["secret"]
        card = pos.issue_card(pc.PROGRAM, "+79160000200")
        sale = pos.purchase("till3-wh-1", card["number"], pc.STORE, pc.BASKET)
        assert (sale["points_earned"], sale["payable"], sale["pending"]) == (30, 60000, 30)

        headers, body = receiver.wait_for("purchase.processed", "till3-wh-1")
        assert pc.verify_webhook(secret, headers, body)
        assert not pc.verify_webhook(secret, headers, body.replace(b'"points_earned":30', b'"points_earned":3000'))
        assert not pc.verify_webhook(secret + "x", headers, body)
        assert not pc.verify_webhook(secret, headers, body, now=int(headers["Loyalty-Timestamp"]) + 301)
        event = json.loads(body)
        assert headers["Loyalty-Event-Id"] == event["id"] and headers["Loyalty-Event-Type"] == "purchase.processed"
        assert headers["Loyalty-Signature"].startswith(f"t={headers['Loyalty-Timestamp']},v1=")
        assert headers["Loyalty-Attempt"] == "1" and headers["Content-Type"] == "application/json"
        assert event["tenant_id"] == TENANT
        assert {k: event["data"][k] for k in ("card_number", "total", "payable", "points_earned", "pending")} == {
            "card_number": card["number"], "total": 60000, "payable": 60000, "points_earned": 30, "pending": 30}

        refund = pos.refund("till3-wh-1-r1", "till3-wh-1")
        assert (refund["amount_refunded"], refund["points_reversed"], refund["balance"], refund["pending"]) == (
            60000, 30, 0, 0)
        headers, body = receiver.wait_for("purchase.refunded", "till3-wh-1")
        assert pc.verify_webhook(secret, headers, body)
    finally:
        admin.request("DELETE", f"/v1/webhooks/{endpoint['id']}")
