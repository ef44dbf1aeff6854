"""Load: concurrent POS clients against the local stack over HTTP, then every write reconciled.

Starts its own local stack (`python -m infra.local.run` in a subprocess, on free loopback ports,
state in a temporary directory, always stopped), provisions an agency and `--tenants` tenants over
the API, each with a program, stores and cards with customers, and runs `--clients` tills in a
bounded thread pool until `--duration` seconds or `--max-requests` requests have passed. Each till
uses its tenant's POS key and one keep-alive connection, and does what a till does: look a
customer up by phone, read a card or its ledger, quote a basket and buy it, buy with and without
points, refund an earlier receipt of its own (by line, by amount, or what is left).

Cards: each till owns a few cards (its customers): only it writes them, so it knows their exact
balance and redeems only what the rules allow (never a refusal by design); every answer's balance is
checked against the till's own running total. Each tenant also has one shared card (a family card)
that all its tills buy on without redeeming, so tills do race on one card sometimes: a 409
`card_busy` is re-sent with the same body and key after its Retry-After (for up to BUSY_GIVE_UP
seconds, then it is an error), and counted.

Request limits: the local stack enforces the usage plans (infra/local/gateway.py; basic 10/s is far
below this load). The tenants are provisioned on the `premium` plan (200/s, burst 400, per tenant),
which covers what 2 cores can serve, so the figures measure the application, not the limiter, and a
429 is unexpected: it is counted as an error (and shown on its own line).

Afterwards, through the API and directly in the stack's moto:
  * no lost write: every receipt and refund a till got 200 for is in its card's ledger with exactly
    the points the answer gave (accrual, redemption, reversal, return);
  * no double write: each receipt / refund id appears once per entry type, and the ledger holds no
    entry no answer accounts for; 20 random purchases replayed (half with their Idempotency-Key,
    half with a new key and the same receipt id) return the original answer and change nothing;
  * balances: each card's balance + pending == the total expected from the 200 answers == the sum of
    its ledger pages; and `chalicelib.services.reporting.reconciliation.reconcile` per tenant finds no mismatch.

Printed: requests, per-kind counts, throughput, p50/p95/p99/max latency overall and per kind, errors,
busy re-sends, the reconciliation; and the baseline: one client doing `GET /v1/whoami` (authenticated,
no data) sequentially on the same stack in the same run, so latencies are also given as ratios.
Exit status 1 on any error or mismatch. Loopback only; every request has a timeout.

Run: .venv/bin/python -m bench.load_test [--clients 20] [--duration 60] [--tenants 3] [--max-requests N]
                                         [--cards 3] [--baseline 200] [--seed 1] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from tests.e2e.conftest import LocalStack

REQUEST_TIMEOUT = 30.0
BUSY_GIVE_UP = 60.0
"""A 409 card_busy is re-sent after its Retry-After for up to this many seconds, then it counts as an error."""
BASELINE_REQUESTS = 200
REPLAYS = 20
AGENCY = "load-agency"
PROGRAM = "main"
STORES = ("st-1", "st-2", "st-3")
RATE_BPS, POINT_VALUE, MAX_SHARE_BPS = 500, 100, 3000
WELCOME_POINTS = 300
CATALOG = (  # sku, category, unit price in kopecks
    ("latte-l", "coffee", 25_000), ("cappuccino", "coffee", 21_000), ("espresso", "coffee", 12_000),
    ("croissant", "bakery", 18_000), ("cheesecake", "bakery", 32_000), ("sandwich", "food", 41_000),
    ("beans-1kg", "retail", 190_000), ("water", "drinks", 9_000),
)
# kind -> weight of the till's next step
MIX = {"lookup": 10, "card": 10, "transactions": 8, "quote": 12, "purchase": 22, "purchase_redeem": 14,
       "purchase_shared": 8, "refund": 16}
READS = ("whoami", "lookup", "card", "transactions", "quote")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of `values` (q in 0..100); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


@dataclass
class Recorder:
    """Latencies per kind, errors, busy re-sends and 429s of every till, thread-safe."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    busy: int = 0
    busy_most: int = 0
    """The most re-sends one request needed."""
    throttled: int = 0
    sent: int = 0
    limit: int = 0
    deadline: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def claim(self, count: int = 1) -> bool:
        """Reserve `count` requests of the run's budget; False once the deadline or the count is reached."""
        with self._lock:
            if time.monotonic() >= self.deadline or (self.limit and self.sent + count > self.limit):
                return False
            self.sent += count
            return True

    def record(self, kind: str, seconds: float) -> None:
        with self._lock:
            self.latencies[kind].append(seconds)

    def error(self, message: str) -> None:
        with self._lock:
            self.errors.append(message[:400])

    def count_busy(self, resends: int) -> None:
        with self._lock:
            self.busy += 1
            self.busy_most = max(self.busy_most, resends)

    def count_throttled(self) -> None:
        with self._lock:
            self.throttled += 1


class Api:
    """One connection to the stack with one key; every request timed and bounded by REQUEST_TIMEOUT."""

    def __init__(self, url: str, secret: str, recorder: Recorder | None = None) -> None:
        self.url = url
        self.secret = secret
        self.recorder = recorder
        self.session = requests.Session()

    def call(self, method: str, path: str, body: Any = None, *, kind: str = "", key: str | None = None,
             params: dict[str, Any] | None = None) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.secret}"}
        if key:
            headers["Idempotency-Key"] = key
        started = time.perf_counter()
        response = self.session.request(method, f"{self.url}{path}", json=body, params=params, headers=headers,
                                        timeout=REQUEST_TIMEOUT)
        if kind and self.recorder is not None:
            self.recorder.record(kind, time.perf_counter() - started)
        return response

    def close(self) -> None:
        self.session.close()


def expect(response: requests.Response, status: int, what: str) -> dict[str, Any]:
    if response.status_code != status:
        raise RuntimeError(f"{what}: {response.status_code} {response.text[:500]}")
    return dict(response.json())


# --- provisioning -------------------------------------------------------------------------------------


@dataclass
class OwnCard:
    number: str
    phone: str
    total: int = 0
    """balance + pending as the till expects it from its own answers (it is the only writer)."""
    balance: int = 0
    """Spendable points after the till's last answer on this card."""


@dataclass
class Receipt:
    receipt_id: str
    card: str
    lines: list[dict[str, Any]]
    total: int
    refunded: int = 0
    refunds: int = 0


@dataclass
class TenantSetup:
    tenant_id: str
    pos: str
    admin: str
    shared_card: str
    phones: list[tuple[str, str]] = field(default_factory=list)
    """(phone, card number) of every customer of the tenant: any till may look them up."""


@dataclass
class Ledgered:
    """What a 200 answer says a card's ledger must hold: (type, receipt/refund id) -> points."""

    card: str
    entries: dict[tuple[str, str], int]


def provision(stack: LocalStack, tenants: int) -> list[TenantSetup]:
    platform = Api(stack.url, stack.key("platform")["secret"])
    created = expect(platform.call("POST", "/v1/platform/agencies", {"agency_id": AGENCY, "name": "Load test"}),
                     201, "create the agency")
    agency = Api(stack.url, created["key"]["secret"])
    out = []
    for t in range(1, tenants + 1):
        tenant_id = f"load-t{t}"
        body = {
            "tenant_id": tenant_id, "name": f"Load tenant {t}", "plan": "premium", "currency": "RUB",
            "timezone": "Europe/Moscow",
            "program": {"id": PROGRAM, "name": "Points", "activation": "immediate", "pending_days": 0,
                        "earning": {"rate_bps": RATE_BPS, "rounding": "down", "min_receipt": 0},
                        "redemption": {"point_value": POINT_VALUE, "max_share_bps": MAX_SHARE_BPS,
                                       "min_balance": 0}},
            "stores": [{"id": s, "name": f"Store {s}", "region": "moscow"} for s in STORES],
        }
        done = expect(agency.call("POST", "/v1/agency/tenants", body), 201, f"provision {tenant_id}")
        keys = {k["role"]: k["secret"] for k in done["keys"]}
        pos = Api(stack.url, keys["pos"])
        shared = expect(pos.call("POST", "/v1/cards", {"program_id": PROGRAM}), 201, "issue the shared card")
        pos.close()
        out.append(TenantSetup(tenant_id, keys["pos"], keys["tenant_admin"], shared["number"]))
    platform.close()
    agency.close()
    return out


def issue_cards(url: str, tenant: TenantSetup, t: int, client: int, count: int) -> tuple[list[OwnCard], list[Ledgered]]:
    """The till's own customers: a card each, with a welcome bonus (spendable at once) to redeem from."""
    pos, admin = Api(url, tenant.pos), Api(url, tenant.admin)
    cards, ledgered = [], []
    try:
        for k in range(count):
            phone = f"+7916{t:01d}{client:03d}{k:03d}"
            issued = expect(pos.call("POST", "/v1/cards", {"program_id": PROGRAM,
                                                           "customer": {"phone": phone, "first_name": "Load"}}),
                            201, "issue a card")
            card = OwnCard(issued["number"], phone)
            adjustment_id = f"welcome-{card.number}"
            entry = expect(admin.call("POST", f"/v1/cards/{card.number}/adjustments",
                                      {"points": WELCOME_POINTS, "reason": "welcome bonus",
                                       "adjustment_id": adjustment_id}), 201, "welcome bonus")
            card.total = card.balance = int(entry["balance_after"])
            cards.append(card)
            ledgered.append(Ledgered(card.number, {("adjustment", ""): WELCOME_POINTS}))
    finally:
        pos.close()
        admin.close()
    return cards, ledgered


# --- the tills ----------------------------------------------------------------------------------------


@dataclass
class Till:
    """One POS client: its tenant's POS key, its own cards and receipts, and what its 200 answers said."""

    index: int
    url: str
    tenant: TenantSetup
    cards: list[OwnCard]
    recorder: Recorder
    rng: random.Random
    run_id: str
    receipts: list[Receipt] = field(default_factory=list)
    ledgered: list[Ledgered] = field(default_factory=list)
    purchases: list[tuple[dict[str, Any], str, dict[str, Any]]] = field(default_factory=list)
    """(body, Idempotency-Key, answer) of every purchase that got 200: replayed afterwards."""
    shared_delta: int = 0
    """Points this till's answers moved on the tenant's shared card."""
    counts: Counter[str] = field(default_factory=Counter)
    refunds_ok: int = 0
    seq: int = 0

    def __post_init__(self) -> None:
        self.api = Api(self.url, self.tenant.pos, self.recorder)

    def next_id(self, prefix: str) -> str:
        self.seq += 1
        return f"{self.run_id}-c{self.index:02d}-{prefix}{self.seq:06d}"

    def send(self, kind: str, method: str, path: str, body: Any = None, key: str | None = None,
             params: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """The answer's body if 2xx; a 409 card_busy re-sent after Retry-After; anything else is an error.

        A timeout or a broken connection is re-sent once with the same key (what the docs tell a till
        to do), so that the run still knows whether the write happened; it counts as an error anyway.
        """
        self.counts[kind] += 1
        ids = " ".join(f"{k}={body[k]}" for k in ("receipt_id", "refund_id") if isinstance(body, dict) and k in body)
        path_ids = f"{path} {ids}".strip()
        lost_once = False
        resends = 0
        give_up = time.monotonic() + BUSY_GIVE_UP
        while True:
            try:
                r = self.api.call(method, path, body, kind=kind, key=key, params=params)
            except requests.RequestException as exc:
                self.recorder.error(f"{kind} {path_ids}: {type(exc).__name__}: {exc}")
                if lost_once or (method == "POST" and key is None):
                    return None
                lost_once = True
                continue
            if r.status_code < 300:
                return dict(r.json())
            busy = r.status_code == 409 and r.json().get("error", {}).get("code") == "card_busy"
            if busy and r.headers.get("Idempotent-Replayed") == "true":
                self.recorder.error(f"{kind} {path_ids}: 409 card_busy replayed from the Idempotency-Key's kept "
                                    f"answer after {resends} re-sends: re-sending this key can never succeed")
                return None
            if busy and time.monotonic() < give_up:
                resends += 1
                self.recorder.count_busy(resends)
                time.sleep(float(r.headers.get("Retry-After", "1")))
                continue
            if r.status_code == 429:
                self.recorder.count_throttled()
            self.recorder.error(f"{kind} {path_ids}: {r.status_code} {r.text}" + (
                f" (after {resends} re-sends in {BUSY_GIVE_UP:.0f} s)" if busy else ""))
            return None

    def basket(self) -> tuple[list[dict[str, Any]], int]:
        lines = []
        for sku, category, price in self.rng.sample(CATALOG, self.rng.randint(1, 3)):
            quantity = self.rng.randint(1, 3)
            lines.append({"sku": sku, "category": category, "quantity": quantity, "amount": price * quantity})
        return lines, sum(line["amount"] for line in lines)

    def purchase_body(self, card: str, redeem: bool, balance: int) -> dict[str, Any]:
        lines, total = self.basket()
        points = 0
        if redeem:
            cap = total * MAX_SHARE_BPS // 10_000 // POINT_VALUE
            if min(cap, balance) >= 1:
                points = self.rng.randint(1, min(cap, balance))
        return {"receipt_id": self.next_id("r"), "card_number": card, "store_id": self.rng.choice(STORES),
                "total": total, "items": lines, "redeem_points": points}

    def step(self) -> bool:
        """One step of the mix; False when the run's budget is spent."""
        kind = self.rng.choices(list(MIX), weights=list(MIX.values()))[0]
        if kind == "refund" and not any(r.refunded < r.total for r in self.receipts):
            kind = "purchase"
        if not self.recorder.claim(2 if kind == "quote" else 1):
            return False
        own = self.rng.choice(self.cards)
        if kind == "lookup":
            phone, number = self.rng.choice(self.tenant.phones)
            got = self.send("lookup", "GET", "/v1/customers/lookup", params={"phone": phone})
            if got is not None and number not in {c["number"] for c in got["cards"]}:
                self.recorder.error(f"lookup {phone}: card {number} missing from {got}")
        elif kind == "card":
            got = self.send("card", "GET", f"/v1/cards/{own.number}")
            if got is not None and got["balance"] + got["pending"] != own.total:
                self.recorder.error(f"card {own.number}: {got['balance']}+{got['pending']} != expected {own.total}")
        elif kind == "transactions":
            number = self.rng.choice([own.number, self.tenant.shared_card])
            got = self.send("transactions", "GET", f"/v1/cards/{number}/transactions", params={"limit": 10})
            if got is not None and not got["items"] and number == own.number:
                self.recorder.error(f"transactions {number}: empty, the welcome bonus at least must be there")
        elif kind == "quote":
            body = self.purchase_body(own.number, self.rng.random() < 0.5, own.balance)
            quote = self.send("quote", "POST", "/v1/purchases/quote", body)
            bought = self.buy(own, body)
            if quote is not None and bought is not None and (
                    quote["points_earned"], quote["points_redeemed"], quote["payable"]) != (
                    bought["points_earned"], bought["points_redeemed"], bought["payable"]):
                self.recorder.error(f"quote {body['receipt_id']} {quote} differs from the purchase {bought}")
        elif kind == "purchase_shared":
            self.buy(None, self.purchase_body(self.tenant.shared_card, False, 0))
        elif kind in ("purchase", "purchase_redeem"):
            self.buy(own, self.purchase_body(own.number, kind == "purchase_redeem", own.balance))
        else:
            self.refund()
        return True

    def buy(self, own: OwnCard | None, body: dict[str, Any]) -> dict[str, Any] | None:
        """A purchase on an own card (with or without points) or on the shared card (points earned only)."""
        key = f"purchase-{body['receipt_id']}"
        kind = "purchase_shared" if own is None else "purchase_redeem" if body["redeem_points"] else "purchase"
        got = self.send(kind, "POST", "/v1/purchases", body, key)
        if got is None:
            return None
        delta = got["points_earned"] - got["points_redeemed"] + got.get("referral_points", 0)
        self.purchases.append((body, key, got))
        self.receipts.append(Receipt(body["receipt_id"], body["card_number"], body["items"], body["total"]))
        self.ledgered.append(Ledgered(body["card_number"], {("accrual", body["receipt_id"]): got["points_earned"],
                                                           ("redemption", body["receipt_id"]):
                                                               -got["points_redeemed"]}))
        if own is None:
            self.shared_delta += delta
        else:
            self.settle(own, delta, got, body["receipt_id"])
        return got

    def settle(self, own: OwnCard, delta: int, got: dict[str, Any], what: str) -> None:
        own.total += delta
        own.balance = got["balance"]
        if got["balance"] + got["pending"] != own.total:
            self.recorder.error(f"{what} on {own.number}: answer {got['balance']}+{got['pending']} "
                                f"!= expected {own.total}")

    def refund(self) -> None:
        receipt = self.rng.choice([r for r in self.receipts if r.refunded < r.total])
        body: dict[str, Any] = {"refund_id": self.next_id("f"), "receipt_id": receipt.receipt_id}
        how = self.rng.choice(("full", "amount", "line"))
        left = receipt.total - receipt.refunded
        if how == "amount" and left > 1:
            body["amount"] = self.rng.randint(1, left - 1)
        elif how == "line" and receipt.refunds == 0 and len(receipt.lines) > 1:
            line = self.rng.choice(receipt.lines)
            body["items"] = [{"sku": line["sku"], "quantity": line["quantity"], "amount": line["amount"]}]
        got = self.send("refund", "POST", "/v1/refunds", body, f"refund-{body['refund_id']}")
        if got is None:
            return
        receipt.refunded += got["amount_refunded"]
        receipt.refunds += 1
        self.refunds_ok += 1
        expected = body.get("amount") or (body["items"][0]["amount"] if "items" in body else left)
        if got["amount_refunded"] != expected:
            self.recorder.error(f"refund {body['refund_id']}: refunded {got['amount_refunded']}, expected {expected}")
        self.ledgered.append(Ledgered(receipt.card, {("reversal", body["refund_id"]): -got["points_reversed"],
                                                     ("return", body["refund_id"]): got["points_returned"]}))
        delta = got["points_returned"] - got["points_reversed"]
        own = next((c for c in self.cards if c.number == receipt.card), None)
        if own is None:
            self.shared_delta += delta
        else:
            self.settle(own, delta, got, body["refund_id"])

    def run(self) -> None:
        try:
            while self.step():
                pass
        except Exception as exc:  # a bug in the till itself must fail the run, not vanish with the thread
            self.recorder.error(f"till {self.index} crashed: {type(exc).__name__}: {exc}")
        finally:
            self.api.close()


# --- after the run ------------------------------------------------------------------------------------


def ledger(api: Api, number: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 100}
    for _ in range(10_000):
        page = expect(api.call("GET", f"/v1/cards/{number}/transactions", params=params), 200, f"ledger {number}")
        entries += page["items"]
        if not page["has_more"]:
            return entries
        params["cursor"] = page["cursor"]
    raise RuntimeError(f"the ledger pages of {number} never ended")


def check_ledgers(url: str, tenant: TenantSetup, expected_totals: dict[str, int],
                  ledgered: Iterable[Ledgered]) -> tuple[list[str], int]:
    """Each card's balance + pending == expected == its ledger sum; each answer's entries there exactly once."""
    problems: list[str] = []
    wanted: dict[str, dict[tuple[str, str], int]] = defaultdict(dict)
    for item in ledgered:
        for (kind, op), points in item.entries.items():
            if points or kind == "adjustment":
                wanted[item.card][(kind, op)] = points
    api = Api(url, tenant.pos)
    count = 0
    try:
        for number, total in sorted(expected_totals.items()):
            card = expect(api.call("GET", f"/v1/cards/{number}"), 200, f"card {number}")
            entries = ledger(api, number)
            count += len(entries)
            ledger_sum = sum(e["points"] for e in entries)
            if not card["balance"] + card["pending"] == total == ledger_sum:
                problems.append(f"{tenant.tenant_id} {number}: card {card['balance']}+{card['pending']}, "
                                f"expected {total}, ledger {ledger_sum}")
            found: dict[tuple[str, str], list[int]] = defaultdict(list)
            for e in entries:
                op = e.get("refund_id") if e["type"] in ("reversal", "return") else e.get("receipt_id")
                found[(e["type"], op or "")].append(e["points"])
            for key, points in wanted[number].items():
                if found.get(key) != [points]:
                    problems.append(f"{tenant.tenant_id} {number} {key}: answered {points}, ledger {found.get(key)}")
            for key in set(found) - set(wanted[number]):
                problems.append(f"{tenant.tenant_id} {number} {key}: ledger {found[key]} that no answer accounts for")
    finally:
        api.close()
    return problems, count


def replay(url: str, tills: list[Till], rng: random.Random, count: int) -> list[str]:
    """Re-send purchases: with their own key (the stored answer) or a new key (the receipt's exactly-once)."""
    problems = []
    done = [(till, p) for till in tills for p in till.purchases]
    for i, (till, (body, key, answer)) in enumerate(rng.sample(done, min(count, len(done)))):
        api = Api(url, till.tenant.pos)
        try:
            again = api.call("POST", "/v1/purchases", body, key=key if i % 2 == 0 else f"{key}-again")
        finally:
            api.close()
        got = again.json() if again.status_code == 200 else {}
        same = {k: v for k, v in got.items() if k != "replayed"}
        original = {k: v for k, v in answer.items() if k != "replayed"}
        marked = again.headers.get("Idempotent-Replayed") == "true" or got.get("replayed") is True
        if again.status_code != 200 or same != original or not marked:
            problems.append(f"replay of {body['receipt_id']}: {again.status_code} {again.text[:300]} "
                            f"(original {answer})")
    return problems


def reconcile_directly(stack: LocalStack, tenants: list[TenantSetup]) -> dict[str, Any]:
    """`reconcile` on each tenant, in this process, against the stack's moto (not through the API)."""
    from infra.local.run import chalice_config, set_environment

    set_environment(chalice_config(), f"http://127.0.0.1:{stack.moto_port}")
    from chalicelib.services.reporting.reconciliation import reconcile

    out: dict[str, Any] = {"ok": True, "cards": 0, "entries": 0, "mismatches": []}
    for tenant in tenants:
        report = reconcile(tenant.tenant_id)
        out["ok"] = out["ok"] and report.ok
        out["cards"] += report.cards
        out["entries"] += report.entries
        out["mismatches"] += [str(m) for m in report.mismatches]
    return out


# --- the run ------------------------------------------------------------------------------------------


def figures(latencies: list[float]) -> dict[str, float]:
    return {"count": len(latencies), "p50": percentile(latencies, 50) * 1000, "p95": percentile(latencies, 95) * 1000,
            "p99": percentile(latencies, 99) * 1000, "max": max(latencies, default=0.0) * 1000}


def baseline(stack: LocalStack, secret: str, count: int) -> dict[str, float]:
    recorder = Recorder()
    api = Api(stack.url, secret, recorder)
    try:
        for _ in range(count):
            expect(api.call("GET", "/v1/whoami", kind="whoami"), 200, "whoami")
    finally:
        api.close()
    return figures(recorder.latencies["whoami"])


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time a process has used (Linux /proc), to show whether the stack is CPU-bound."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def in_pool(count: int, work: Callable[[int], Any], timeout: float, workers: int = 0) -> list[Any]:
    """work(0) .. work(count - 1) on `workers` threads (one each by default); the results in order."""
    with ThreadPoolExecutor(max_workers=workers or count) as pool:
        futures = [pool.submit(work, i) for i in range(count)]
        deadline = time.monotonic() + timeout
        return [f.result(timeout=max(deadline - time.monotonic(), 0.1)) for f in futures]


def load(stack: LocalStack, args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    run_id = f"L{args.seed}"
    started = time.monotonic()
    tenants = provision(stack, args.tenants)

    def setup(i: int) -> tuple[list[OwnCard], list[Ledgered]]:
        t = i % len(tenants)
        return issue_cards(stack.url, tenants[t], t + 1, i, args.cards)

    issued = in_pool(args.clients, setup, 600.0, workers=min(args.clients, 8))
    for i, (cards, _) in enumerate(issued):
        tenants[i % len(tenants)].phones += [(c.phone, c.number) for c in cards]
    setup_seconds = time.monotonic() - started
    base = baseline(stack, tenants[0].pos, args.baseline)

    recorder = Recorder(limit=args.max_requests)
    tills = [Till(i, stack.url, tenants[i % len(tenants)], issued[i][0], recorder, random.Random(args.seed * 1000 + i),
                  run_id) for i in range(args.clients)]
    assert stack.proc is not None
    cpu_before = cpu_seconds(stack.proc.pid)
    recorder.deadline = time.monotonic() + args.duration
    load_started = time.perf_counter()
    in_pool(args.clients, lambda i: tills[i].run(), args.duration + BUSY_GIVE_UP + REQUEST_TIMEOUT * 4)
    elapsed = time.perf_counter() - load_started
    cpu_after = cpu_seconds(stack.proc.pid)
    stack_cpu = cpu_after - cpu_before if cpu_before is not None and cpu_after is not None else None

    def totals(tenant: TenantSetup) -> dict[str, int]:
        """Every card of the tenant and the balance + pending its tills' answers add up to."""
        mine = [till for till in tills if till.tenant is tenant]
        out = {c.number: c.total for till in mine for c in till.cards}
        out[tenant.shared_card] = sum(till.shared_delta for till in mine)
        return out

    def ledgered(t: int) -> list[Ledgered]:
        """The entries every 200 answer (welcome bonuses included) put in tenant t's ledgers."""
        out = [item for i, (_, items) in enumerate(issued) if i % len(tenants) == t for item in items]
        return out + [item for till in tills if till.tenant is tenants[t] for item in till.ledgered]

    problems: list[str] = []
    entries = 0
    for t, tenant in enumerate(tenants):
        found, count = check_ledgers(stack.url, tenant, totals(tenant), ledgered(t))
        problems += found
        entries += count
    replay_problems = replay(stack.url, tills, rng, REPLAYS)
    for t, tenant in enumerate(tenants):  # the replays changed nothing: the same totals and entries again
        replay_problems += [f"after the replays: {p}"
                            for p in check_ledgers(stack.url, tenant, totals(tenant), ledgered(t))[0]]
    reconciled = reconcile_directly(stack, tenants)

    all_latencies = [s for kind, values in recorder.latencies.items() for s in values]
    kinds = Counter[str]()
    for till in tills:
        kinds.update(till.counts)
    return {
        "clients": args.clients, "tenants": args.tenants, "cards_per_client": args.cards,
        "duration": args.duration, "max_requests": args.max_requests, "setup_seconds": setup_seconds,
        "elapsed": elapsed, "stack_cpu_seconds": stack_cpu, "requests": sum(kinds.values()),
        "answered": len(all_latencies),
        "kinds": dict(sorted(kinds.items())),
        "throughput": len(all_latencies) / elapsed if elapsed else 0.0,
        "latency": figures(all_latencies),
        "per_kind": {kind: figures(values) for kind, values in sorted(recorder.latencies.items())},
        "baseline": base, "errors": recorder.errors, "busy_resends": recorder.busy,
        "busy_most": recorder.busy_most, "throttled": recorder.throttled,
        "purchases_ok": sum(len(till.purchases) for till in tills),
        "refunds_ok": sum(till.refunds_ok for till in tills),
        "cards": sum(len(tenant.phones) + 1 for tenant in tenants), "ledger_entries": entries,
        "ledger_problems": problems, "replays": min(REPLAYS, sum(len(till.purchases) for till in tills)),
        "replay_problems": replay_problems,
        "reconciliation": reconciled,
    }


def failed(report: dict[str, Any]) -> bool:
    return bool(report["errors"] or report["ledger_problems"] or report["replay_problems"]
                or not report["reconciliation"]["ok"]
                or report["reconciliation"]["cards"] != report["cards"]
                or report["reconciliation"]["entries"] != report["ledger_entries"])


def render(report: dict[str, Any]) -> str:
    base = report["baseline"]
    lat = report["latency"]
    rec = report["reconciliation"]
    lines = [
        f"clients {report['clients']}, tenants {report['tenants']} (plan premium), {report['cards']} cards "
        f"({report['cards_per_client']} per client + 1 shared per tenant); set-up {report['setup_seconds']:.1f} s",
        f"requests {report['requests']} in {report['elapsed']:.1f} s: throughput {report['throughput']:.1f} req/s",
        f"stack process CPU during the load: {cpu:.1f} s = {cpu / report['elapsed']:.2f} cores of {os.cpu_count()}"
        if (cpu := report["stack_cpu_seconds"]) is not None else "stack process CPU: not measured (no /proc)",
        "per kind: " + ", ".join(f"{k} {v}" for k, v in report["kinds"].items()),
        f"latency ms: p50 {lat['p50']:.1f}  p95 {lat['p95']:.1f}  p99 {lat['p99']:.1f}  max {lat['max']:.1f}",
        f"baseline (1 client, sequential GET /v1/whoami x{base['count']}): p50 {base['p50']:.1f}  "
        f"p95 {base['p95']:.1f}  p99 {base['p99']:.1f}  max {base['max']:.1f} ms",
        f"ratio load/baseline: p50 {lat['p50'] / base['p50']:.1f}x  p95 {lat['p95'] / base['p95']:.1f}x  "
        f"p99 {lat['p99'] / base['p99']:.1f}x",
        f"{'kind':<16}{'n':>7}{'p50':>9}{'p95':>9}{'p99':>9}{'max':>9}{'p50/base':>10}",
    ]
    for kind, f in report["per_kind"].items():
        lines.append(f"{kind:<16}{f['count']:>7}{f['p50']:>9.1f}{f['p95']:>9.1f}{f['p99']:>9.1f}{f['max']:>9.1f}"
                     f"{f['p50'] / base['p50']:>9.1f}x")
    lines += [
        f"errors {len(report['errors'])} (of which 429: {report['throttled']}); card_busy re-sends "
        f"{report['busy_resends']} (at most {report['busy_most']} for one request)",
        f"writes: {report['purchases_ok']} purchases and {report['refunds_ok']} refunds answered 200; ledgers "
        f"({report['ledger_entries']} entries): {len(report['ledger_problems'])} problems; "
        f"{report['replays']} replays: {len(report['replay_problems'])} problems",
        f"reconcile(): {'ok' if rec['ok'] else 'MISMATCHES'}, {rec['cards']} cards, {rec['entries']} entries, "
        f"{len(rec['mismatches'])} mismatches",
    ]
    for problem in (report["errors"] + report["ledger_problems"] + report["replay_problems"]
                    + rec["mismatches"])[:30]:
        lines.append(f"  ! {problem}")
    lines.append("RESULT: " + ("FAILED" if failed(report) else "ok: zero errors, zero lost or double writes"))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--tenants", type=int, default=3)
    parser.add_argument("--max-requests", type=int, default=0, help="stop after this many requests (0: no limit)")
    parser.add_argument("--cards", type=int, default=3, help="cards each client owns")
    parser.add_argument("--baseline", type=int, default=BASELINE_REQUESTS, help="sequential whoami requests")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args(argv)
    if not (1 <= args.tenants <= 9 and args.clients >= 1 and args.cards >= 1 and args.duration > 0):
        parser.error("need 1..9 tenants, at least one client and one card, a positive duration")
    with tempfile.TemporaryDirectory(prefix="load-test-") as tmp:
        stack = LocalStack(Path(tmp) / "state")
        try:
            stack.start()
            report = load(stack, args)
        except Exception:
            print(stack.log()[-3000:], file=sys.stderr)
            raise
        finally:
            stack.stop()
    print(render(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 1 if failed(report) else 0


if __name__ == "__main__":
    sys.exit(main())
