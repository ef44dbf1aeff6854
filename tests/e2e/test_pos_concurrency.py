"""Many tills hitting one card at once, over real HTTP, against the local stack.

The stack (`python -m infra.local.run`, a subprocess: AWS_ENDPOINT_URL must be set before
chalicelib creates its clients, which the stack's entry point does) serves the API with
chalice's threaded server, so the requests below really run concurrently inside the app: each
reads the card, prices the purchase and sends its TransactWriteItems while the others do the
same. Storage is `LocalMotoServer`: moto behind one global lock, because moto itself is not
concurrency-safe (two parallel transactions on one item have both succeeded there, overdrawing
a balance). The lock serialises each AWS call, never a whole purchase, so the races these tests
provoke are between the app's read of the card and its conditional write, exactly the window
DynamoDB's conditions guard in production. What is checked is our conditions (card version,
receipt id exactly once) and our retry loop, not moto's locking, which is assumed.

Example tenant `coffee-chain` (tenants/coffee-chain.yaml), program `zerno-points`: 5% back
(rounded down), 1 point = 1 RUB, at most 30% of a receipt in points, at least 50 points held to
redeem, earned points pending 14 days (the test sets 0 while funding the card, then 14 again so
that the storm's own accruals cannot be spent by the storm).

Answers accepted from a storm: 200; 422 `redeem_exceeds_limit` / `insufficient_points` (or, for
refunds, `refund_exceeds_receipt` / `already_refunded`) once the balance (receipt) is used up;
and 409 `card_busy` only on the way: it is the API's documented "retry shortly" (Retry-After),
given when a request lost the version race `MAX_ATTEMPTS` times, so the till re-sends it after
Retry-After (at most BUSY_RETRIES times) and the final outcome must still be exact: 10 x 200 and
40 x 422. How many 409s the tills saw is printed; ideally none (see the report on the retry
budget). The count of transactions moto cancelled (its verbose log) shows the requests raced.

This module runs its own stack (MOTO_VERBOSE=1), always stopped at the end; every request, the
barrier and every thread is bounded by a timeout.
"""

from __future__ import annotations

import functools
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from tests.e2e.conftest import LocalStack

TENANT, PROGRAM, STORE = "coffee-chain", "zerno-points", "msk-tverskaya"
REQUEST_TIMEOUT = 60.0
STORM_TIMEOUT = 240.0
READ_ONLY = ("id", "tenant_id", "version", "created_at", "updated_at")

REDEEM = 100  # points per storm purchase
WINNERS = 10  # the card is funded with exactly WINNERS * REDEEM spendable points
THREADS = 50
STORM_TOTAL = 50_000  # 500 RUB: 30% allows 150 points, so REDEEM is within the cap; earns 5% of 400 RUB = 20 points
STORM_EARNED = (STORM_TOTAL - REDEEM * 100) * 500 // (10_000 * 100)
BUSY_RETRIES = 5  # a till re-sends a 409 card_busy after its Retry-After, at most this many times


class Till:
    """A POS key talking to the stack; `post` retries 409 card_busy as a till would, and counts them."""

    def __init__(self, stack: LocalStack) -> None:
        self.url = stack.url
        self.pos = stack.key("pos", TENANT)["secret"]
        self.admin = stack.key("tenant_admin", TENANT)["secret"]
        self.busy = 0
        self._lock = threading.Lock()

    def call(self, method: str, path: str, secret: str, body: Any = None,
             session: requests.Session | None = None) -> requests.Response:
        return (session or requests).request(method, f"{self.url}{path}", json=body, timeout=REQUEST_TIMEOUT,
                                             headers={"Authorization": f"Bearer {secret}"})

    def connected(self, count: int) -> list[requests.Session]:
        """Sessions with an open keep-alive connection each, opened one by one.

        chalice's local server listens with Python's default backlog of 5: fifty simultaneous
        connects get some resets. Connecting first means the storm's requests, not its TCP
        handshakes, arrive together.
        """
        sessions = []
        for _ in range(count):
            session = requests.Session()
            assert self.call("GET", "/v1/whoami", self.pos, session=session).status_code == 200
            sessions.append(session)
        return sessions

    def post(self, path: str, body: dict[str, Any], session: requests.Session | None = None) -> requests.Response:
        for _ in range(BUSY_RETRIES):
            r = self.call("POST", path, self.pos, body, session)
            if r.status_code != 409:
                return r
            assert r.json()["error"]["code"] == "card_busy", r.text
            with self._lock:
                self.busy += 1
            time.sleep(float(r.headers.get("Retry-After", "1")))
        return self.call("POST", path, self.pos, body, session)

    def card(self, number: str) -> dict[str, Any]:
        r = self.call("GET", f"/v1/cards/{number}", self.pos)
        assert r.status_code == 200, r.text
        return dict(r.json())

    def ledger(self, number: str, limit: int = 7) -> list[dict[str, Any]]:
        """Every entry of the card's ledger, page by page (newest first)."""
        entries: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": limit}
        for _ in range(1000):
            r = requests.get(f"{self.url}/v1/cards/{number}/transactions", params=params, timeout=REQUEST_TIMEOUT,
                             headers={"Authorization": f"Bearer {self.pos}"})
            assert r.status_code == 200, r.text
            page = r.json()
            entries += page["items"]
            if not page["has_more"]:
                return entries
            params["cursor"] = page["cursor"]
        raise AssertionError("the ledger pages never ended")

    def set_pending_days(self, days: int) -> None:
        r = self.call("GET", f"/v1/programs/{PROGRAM}", self.admin)
        assert r.status_code == 200, r.text
        body = {k: v for k, v in r.json().items() if k not in READ_ONLY}
        r = self.call("PUT", f"/v1/programs/{PROGRAM}", self.admin, {**body, "pending_days": days})
        assert r.status_code == 200 and r.json()["pending_days"] == days, r.text

    def new_card(self) -> str:
        r = self.call("POST", "/v1/cards", self.pos, {"program_id": PROGRAM, "kind": "virtual"})
        assert r.status_code == 201, r.text
        return str(r.json()["number"])


def purchase(card: str, receipt_id: str, total: int, redeem: int = 0) -> dict[str, Any]:
    return {"receipt_id": receipt_id, "card_number": card, "store_id": STORE, "total": total, "redeem_points": redeem,
            "items": [{"sku": "cappuccino", "category": "coffee", "quantity": 1, "amount": total}]}


def all_at_once(till: Till, calls: list[Callable[[requests.Session], requests.Response]]) -> list[requests.Response]:
    """Run each call on its own thread and connection, released together; every wait is bounded."""
    sessions = till.connected(len(calls))
    barrier = threading.Barrier(len(calls), timeout=REQUEST_TIMEOUT)

    def run(call: Callable[[requests.Session], requests.Response], session: requests.Session) -> requests.Response:
        barrier.wait()
        return call(session)

    try:
        with ThreadPoolExecutor(max_workers=len(calls)) as pool:
            futures = [pool.submit(run, call, session) for call, session in zip(calls, sessions, strict=True)]
            deadline = time.monotonic() + STORM_TIMEOUT
            return [f.result(timeout=max(deadline - time.monotonic(), 0.1)) for f in futures]
    finally:
        for session in sessions:
            session.close()


def cancelled_transactions(stack: LocalStack) -> int:
    """DynamoDB calls moto answered 400 so far: here, TransactWriteItems cancelled by a condition."""
    return len(re.findall(r'"POST / HTTP/1\.1" 400', re.sub(r"\x1b\[[0-9;]*m", "", stack.log())))


@pytest.fixture(scope="module")
def verbose_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """This module's own stack, with MOTO_VERBOSE=1 so that moto logs every call (to count cancellations)."""
    running = LocalStack(tmp_path_factory.mktemp("pos-concurrency") / "state")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MOTO_VERBOSE", "1")
        try:
            yield running.start()
        finally:
            running.stop()


@pytest.fixture(scope="module")
def till(verbose_stack: LocalStack) -> Iterator[Till]:
    till = Till(verbose_stack)
    r = till.call("GET", f"/v1/programs/{PROGRAM}", till.admin)
    assert r.status_code == 200, r.text
    program = r.json()
    # The arithmetic below relies on the example tenant's rules.
    assert program["earning"]["rate_bps"] == 500 and program["earning"]["rounding"] == "down"
    assert program["earning"]["min_receipt"] <= STORM_TOTAL and program["activation"] == "first_purchase"
    assert program["redemption"] == {**program["redemption"], "point_value": 100, "max_share_bps": 3000,
                                     "min_balance": 50, "refund_spent_policy": "negative_balance"}
    assert program["pending_days"] == 14
    yield till
    till.set_pending_days(14)


def test_fifty_tills_redeeming_a_balance_worth_ten_redemptions(till: Till, verbose_stack: LocalStack) -> None:
    card = till.new_card()
    till.set_pending_days(0)  # funding: these purchases' points are spendable at once
    try:
        for i in range(2):  # 2 x 10,000 RUB at 5% = 1,000 points
            r = till.post("/v1/purchases", purchase(card, f"{card}-fund-{i}", 1_000_000))
            assert r.status_code == 200 and r.json()["points_earned"] == WINNERS * REDEEM // 2, r.text
    finally:
        till.set_pending_days(14)
    assert (till.card(card)["balance"], till.card(card)["pending"]) == (WINNERS * REDEEM, 0)

    bodies = [purchase(card, f"{card}-storm-{i:02d}", STORM_TOTAL, REDEEM) for i in range(THREADS)]
    busy_before = till.busy
    cancelled_before = cancelled_transactions(verbose_stack)
    started = time.monotonic()
    answers = all_at_once(till, [functools.partial(till.post, "/v1/purchases", body) for body in bodies])
    elapsed = time.monotonic() - started
    cancelled = cancelled_transactions(verbose_stack) - cancelled_before

    outcomes = Counter(r.status_code if r.status_code == 200 else (r.status_code, r.json()["error"]["code"])
                       for r in answers)
    print(f"\n{THREADS} concurrent redemptions: {dict(outcomes)} in {elapsed:.1f}s; {cancelled} transactions "
          f"cancelled by the card's version condition and retried; 409 card_busy answers re-sent: "
          f"{till.busy - busy_before}")
    assert cancelled > 0, "the requests never raced (or moto's log format changed): nothing was tested"
    won = [(body, r.json()) for body, r in zip(bodies, answers, strict=True) if r.status_code == 200]
    lost = [(body, r) for body, r in zip(bodies, answers, strict=True) if r.status_code != 200]
    assert len(won) == WINNERS, outcomes
    for body, answer in won:
        assert (answer["points_redeemed"], answer["discount"], answer["points_earned"], answer["replayed"]) == (
            REDEEM, REDEEM * 100, STORM_EARNED, False)
        assert answer["receipt_id"] == body["receipt_id"]
    # Every successful redemption saw a different balance: they were applied one after another.
    assert sorted(a["balance"] for _, a in won) == [REDEEM * k for k in range(WINNERS)]
    for _, r in lost:  # refused by the rules once the balance was gone; never 409 after the tills' re-sends
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] in ("redeem_exceeds_limit", "insufficient_points"), r.text

    state = till.card(card)
    assert (state["balance"], state["pending"]) == (0, WINNERS * STORM_EARNED)
    entries = till.ledger(card)
    assert sum(e["points"] for e in entries) == state["balance"] + state["pending"]
    assert Counter(e["type"] for e in entries) == {"accrual": 2 + WINNERS, "redemption": WINNERS}
    winners = {body["receipt_id"] for body, _ in won}
    assert {e["receipt_id"] for e in entries if e["type"] == "redemption"} == winners
    # A refused receipt id left nothing behind: the same request is judged again (and refused again).
    body, _ = lost[0]
    again = till.post("/v1/purchases", body)
    assert again.status_code == 422 and "Idempotent-Replayed" not in again.headers, again.text


def test_twenty_copies_of_one_purchase_accrue_once(till: Till) -> None:
    card = till.new_card()
    body = purchase(card, f"{card}-same", 300_000)  # earns 150 points, pending
    answers = all_at_once(till, [functools.partial(till.post, "/v1/purchases", body)] * 20)

    assert [r.status_code for r in answers] == [200] * 20, [r.text for r in answers if r.status_code != 200]
    data = [r.json() for r in answers]
    first = [d for d in data if not d["replayed"]]
    assert len(first) == 1, "exactly one copy is the purchase; the others are its replays"
    assert first[0]["points_earned"] == 150 and first[0]["card_activated"] is True
    assert all(d == {**first[0], "replayed": True} for d in data if d["replayed"])
    assert all(r.headers.get("Idempotent-Replayed") == ("true" if r.json()["replayed"] else None) for r in answers)

    state = till.card(card)
    assert (state["balance"], state["pending"], state["status"]) == (0, 150, "active")
    entries = till.ledger(card)
    assert [(e["type"], e["points"], e["receipt_id"]) for e in entries] == [("accrual", 150, body["receipt_id"])]


def test_twenty_concurrent_partial_refunds_never_refund_more_than_the_receipt(till: Till) -> None:
    card = till.new_card()
    r = till.post("/v1/purchases", purchase(card, f"{card}-big", 1_000_000))  # earns 500 points, pending
    assert r.status_code == 200 and r.json()["points_earned"] == 500, r.text
    bodies = [{"refund_id": f"{card}-refund-{i:02d}", "receipt_id": f"{card}-big", "amount": 100_000}
              for i in range(20)]
    busy_before = till.busy
    answers = all_at_once(till, [functools.partial(till.post, "/v1/refunds", body) for body in bodies])

    won = [r.json() for r in answers if r.status_code == 200]
    print(f"\n20 concurrent refunds of 10%: {len(won)} applied; 409 card_busy answers re-sent: "
          f"{till.busy - busy_before}")
    assert len(won) == 10, [r.text for r in answers]
    assert all((a["amount_refunded"], a["points_reversed"], a["replayed"]) == (100_000, 50, False) for a in won)
    assert sorted(a["pending"] for a in won) == [50 * k for k in range(10)]  # applied one after another
    for r in answers:
        if r.status_code != 200:
            assert r.status_code == 422, r.text
            assert r.json()["error"]["code"] in ("refund_exceeds_receipt", "already_refunded"), r.text
    state = till.card(card)
    assert (state["balance"], state["pending"]) == (0, 0)
    entries = till.ledger(card)
    assert Counter(e["type"] for e in entries) == {"accrual": 1, "reversal": 10}
    assert sum(e["points"] for e in entries) == 0
