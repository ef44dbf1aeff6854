"""A state machine drives the till API at random and checks every answer against a small model.

Hypothesis picks the steps: purchases (random lines, redeeming nothing, some, exactly the
maximum, or more than allowed), refunds (everything left, by amount, by lines; also too much,
unknown lines, already refunded), retries of earlier purchases and refunds (the same body,
the same body re-encoded, or a different body under the same id), re-sending requests that
were refused, and admin credits (the only way to get spendable points while earned ones are
pending). The model is plain integers: a wallet of matured points, pending points and debt,
and per receipt its lines, weights and cumulative refund totals, following the program rules
(5% of what was not paid with points, rounded down; at most 30% of a receipt in points;
refunds reverse earned and return redeemed points in proportion, cumulatively).

After every step: the card's `balance` and `pending` (GET) equal the model's; balance + pending
== ledger_sum == the model's total (so a replay wrote nothing: no entry is worth 0 points); the
balance is negative only under `negative_balance` after a refund reversed points that were
already spent, never inside the return window. After every refund-related step: the stored
receipt's refund totals equal the model's and never exceed what it sold. A step of its own reads
GET /transactions page by page: exactly the model's number of entries, newest first, each
`balance_after` the running sum.

Each combination of the program's `refund_spent_policy` (negative_balance / write_off) and
`pending_days` (0 / 14) is its own test; every example gets a fresh in-process moto, tenant,
program and card, so examples share nothing. A step draws its action from ACTIONS, offset by
the step number: the all-zero example Hypothesis always tries walks the whole list in order (a
story that spends earned points and then refunds them), random examples mix freely. Each test
fails if some outcome (debt, write-off, each refusal, each kind of replay...) never happened,
so a change that makes the machine miss a path does not go unnoticed. Deterministic
(derandomized, no example database); about 45 s for the four tests. A failure is shrunk for
at most Hypothesis' 5 minutes.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pytest
from chalice.test import Client
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from moto import mock_aws

from chalicelib.domain.roles import Role
from chalicelib.schemas.keys import KeyCreate
from chalicelib.services.tenancy import keys as api_keys
from chalicelib.services.tenancy.scopes import Scope
from chalicelib.storage import loyalty
from tests.conftest import _reset_caches
from tests.functional.conftest import Api, make_agency, make_tenant

TENANT = "coffee-house"
STORE = "msk-01"
BPS = 10_000
RATE_BPS = 500
POINT_VALUE = 100
MAX_SHARE_BPS = 3_000
SKUS = ["latte", "croissant", "beans", "mug"]
CATEGORIES = ["coffee", "bakery", "retail"]
EXAMPLES, STEPS = 4, 30
AMOUNTS = st.one_of(st.integers(100_000, 400_000), st.integers(1, 99_999), st.sampled_from([0, 1_999, 2_000, 2_001]))
LINES = st.lists(st.tuples(st.sampled_from(SKUS), st.sampled_from(CATEGORIES), st.integers(1, 3), AMOUNTS),
                 min_size=1, max_size=4)

# --- the model -----------------------------------------------------------------------------------


def earned_points(total: int, discount: int) -> int:
    """5% of what was not paid with points, in points of 100 kopecks, rounded down."""
    return (total - discount) * RATE_BPS // (BPS * POINT_VALUE) if total > 0 else 0


def redeem_limit(spendable: int, total: int) -> int:
    return 0 if spendable <= 0 else min(spendable, total * MAX_SHARE_BPS // BPS // POINT_VALUE)


def discount_shares(discount: int, amounts: list[int]) -> list[int]:
    """The discount spread over lines pro rata to amounts: floors, then +1 for the largest remainders."""
    whole = sum(amounts)
    if discount <= 0 or whole <= 0:
        return [0] * len(amounts)
    shares = [discount * a // whole for a in amounts]
    remainders = [discount * a % whole for a in amounts]
    for i in sorted(range(len(amounts)), key=lambda i: (-remainders[i], i))[: discount - sum(shares)]:
        shares[i] += 1
    return shares


@dataclass
class Wallet:
    matured: int = 0
    pending: int = 0
    debt: int = 0

    @property
    def spendable(self) -> int:
        return self.matured - self.debt

    @property
    def total(self) -> int:
        return self.matured + self.pending - self.debt

    def earn(self, points: int, *, pending: bool) -> None:
        """New points repay a debt first."""
        repay = min(self.debt, points)
        self.debt -= repay
        if pending:
            self.pending += points - repay
        else:
            self.matured += points - repay

    def reverse(self, points: int, *, allow_debt: bool) -> int:
        """Pending points go first (they were never spendable), then matured; returns what was written off."""
        from_pending = min(points, self.pending)
        self.pending -= from_pending
        from_matured = min(points - from_pending, self.matured)
        self.matured -= from_matured
        missing = points - from_pending - from_matured
        if allow_debt:
            self.debt += missing
            return 0
        return missing


@dataclass
class Line:
    sku: str
    quantity: int
    amount: int
    weight: int
    refunded_quantity: int = 0
    refunded_amount: int = 0


@dataclass
class Receipt:
    body: dict[str, Any]
    response: dict[str, Any]
    total: int
    earned: int
    redeemed: int
    lines: list[Line]
    refunded_amount: int = 0
    refunded_weight_scaled: int = 0
    reversed: int = 0
    returned: int = 0

    @property
    def remaining(self) -> int:
        return self.total - self.refunded_amount


@dataclass
class RefundPlan:
    amount: int
    reversed: int
    returned: int
    weight_scaled: int
    line_changes: dict[int, tuple[int, int]] = field(default_factory=dict)


def plan_refund(rc: Receipt, items: list[dict[str, Any]] | None, amount: int | None) -> RefundPlan | str:
    """What a refund does to a receipt, or the error code that refuses it."""
    if rc.remaining <= 0:
        return "already_refunded"
    changes: dict[int, tuple[int, int]] = {}
    if items:
        weight_scaled = refund_amount = 0
        for item in items:
            candidates = [i for i, ln in enumerate(rc.lines) if ln.sku == item["sku"]]
            if not candidates:
                return "unknown_line"
            idx = next((i for i in candidates
                        if rc.lines[i].refunded_quantity + changes.get(i, (0, 0))[0] < rc.lines[i].quantity),
                       candidates[-1])
            line, (q_done, a_done) = rc.lines[idx], changes.get(idx, (0, 0))
            if (line.refunded_quantity + q_done + item["quantity"] > line.quantity
                    or line.refunded_amount + a_done + item["amount"] > line.amount):
                return "refund_exceeds_line"
            changes[idx] = (q_done + item["quantity"], a_done + item["amount"])
            refund_amount += item["amount"]
            if line.amount:
                weight_scaled += line.weight * item["amount"] * rc.total // line.amount
        if refund_amount > rc.remaining:
            return "refund_exceeds_receipt"
    else:
        refund_amount = rc.remaining if amount is None else amount
        if refund_amount > rc.remaining:
            return "refund_exceeds_receipt"
        weight_scaled = sum(ln.weight for ln in rc.lines) * refund_amount
    scale = sum(ln.weight for ln in rc.lines) * rc.total
    refunded = rc.refunded_amount + refund_amount
    if refunded == rc.total:
        reversed_cum, returned_cum = rc.earned, rc.redeemed
        weight_scaled = scale - rc.refunded_weight_scaled
    else:
        cum_weight = min(rc.refunded_weight_scaled + weight_scaled, scale)
        reversed_cum = rc.earned * cum_weight // scale if scale else rc.earned * refunded // rc.total
        returned_cum = rc.redeemed * refunded // rc.total
    return RefundPlan(refund_amount, max(reversed_cum - rc.reversed, 0), max(returned_cum - rc.returned, 0),
                      weight_scaled, changes)


# --- the machine -----------------------------------------------------------------------------------

AMOUNTS = st.one_of(st.integers(100_000, 400_000), st.integers(1, 99_999), st.sampled_from([0, 1_999, 2_000, 2_001]))
LINES = st.lists(st.tuples(st.sampled_from(SKUS), st.sampled_from(CATEGORIES), st.integers(1, 3), AMOUNTS),
                 min_size=1, max_size=4)
# What a step does, weighted by repetition. Step n does ACTIONS[(drawn + n) % len]: the simplest example (every
# draw zero, which Hypothesis always tries) walks the list in order, a story that reaches every outcome.
ACTIONS = [
    "purchase", "purchase_redeeming", "refund_amount", "retry_purchase", "over_redeem", "purchase", "refund_lines",
    "retry_refund", "reuse_receipt_id", "spend_everything", "refund_oldest", "refund_closed", "over_refund",
    "resend_refused", "reuse_refund_id", "purchase", "credit", "refund_amount", "purchase_redeeming", "refund_lines",
    "refund_rest", "resend_refused", "read_ledger_pages",
]
NEEDS = {"refund": "receipts", "over_refund": "receipts", "retry_purchase": "receipts",
         "reuse_receipt_id": "receipts", "retry_refund": "refunds", "reuse_refund_id": "refunds",
         "resend_refused": "refused"}
"""Actions (by name prefix) that need something earlier steps made; without it the step is a purchase."""


def reencoded(body: dict[str, Any], *optional: str) -> dict[str, Any]:
    """The same request written differently: keys reversed, absent optional fields spelled out as null."""
    out: dict[str, Any] = {key: None for key in optional if key not in body}
    for key in reversed(list(body)):
        value = body[key]
        out[key] = [dict(reversed(list(v.items()))) for v in value] if isinstance(value, list) else value
    return out


class PosMachine(RuleBasedStateMachine):
    """One card of a fresh tenant whose program has `policy` and `pending_days` (set by `configured`)."""

    policy = "negative_balance"
    pending_days = 0
    seen: Counter[str] = Counter()
    """What the examples exercised, summed over examples: the test fails if something never happened."""

    def __init__(self) -> None:
        super().__init__()
        from app import app
        from infra.local.resources import create_resources

        self.mock = mock_aws()
        self.mock.start()
        try:
            _reset_caches()
            create_resources(stage="test")
            self.api = Api(Client(app))
            platform = api_keys.create(Scope.platform(), KeyCreate(role=Role.PLATFORM, name="p"), "test").secret
            self.keys = make_tenant(self.api, make_agency(self.api, platform, "acme-agency"), "acme-agency", TENANT)
        except BaseException:
            self.teardown()
            raise
        self.card = ""
        self.wallet = Wallet()
        self.entries = 0
        self.debt_from_refund = False
        self.written_off = 0
        self.receipts: dict[str, Receipt] = {}
        self.refunds: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        self.refused: list[tuple[str, dict[str, Any]]] = []
        self.seq = 0
        self.steps = 0

    @classmethod
    def configured(cls, policy: str, pending_days: int) -> type[PosMachine]:
        return type(f"PosMachine_{policy}_{pending_days}", (cls,),
                    {"policy": policy, "pending_days": pending_days, "seen": Counter()})

    def teardown(self) -> None:
        self.mock.stop()
        _reset_caches()

    def next_id(self, prefix: str) -> str:
        self.seq += 1
        return f"{prefix}-{self.seq:04d}"

    @initialize()
    def set_up_program_and_card(self) -> None:
        program = self.api.get("/v1/programs/main", self.keys.admin).data
        body = {k: v for k, v in program.items() if k not in ("id", "tenant_id", "version", "created_at",
                                                                "updated_at")}
        body["pending_days"] = self.pending_days
        body["redemption"]["refund_spent_policy"] = self.policy
        r = self.api.put("/v1/programs/main", self.keys.admin, body)
        assert r.status_code == 200, r.data
        assert (r.data["earning"]["rate_bps"], r.data["redemption"]["point_value"],
                r.data["redemption"]["max_share_bps"], r.data["redemption"]["min_balance"]) == (
                    RATE_BPS, POINT_VALUE, MAX_SHARE_BPS, 0)
        self.rule_version: int | None = None
        r = self.api.post("/v1/cards", self.keys.pos, {"program_id": "main", "kind": "virtual"})
        assert r.status_code == 201, r.data
        assert r.data["status"] == "active" and r.data["balance"] == 0
        self.card = r.data["number"]

    @rule(data=st.data())
    def step(self, data: st.DataObject) -> None:
        self.steps += 1
        self.seen["steps"] += 1
        action = ACTIONS[(data.draw(st.integers(0, len(ACTIONS) - 1), label="action") + self.steps - 1) % len(ACTIONS)]
        if not next((getattr(self, need) for prefix, need in NEEDS.items() if action.startswith(prefix)), True):
            action = "purchase"
        getattr(self, action)(data)

    # --- purchases ---------------------------------------------------------------------------------

    def expect_purchase(self, body: dict[str, Any]) -> None:
        """Send a purchase whose receipt id was never recorded; check the answer and update the model."""
        r = self.api.post("/v1/purchases", self.keys.pos, body)
        total, redeem = body["total"], body["redeem_points"]
        limit = redeem_limit(self.wallet.spendable, total)
        if redeem > limit:
            assert r.status_code == 422, r.data
            assert r.data["error"]["code"] == "redeem_exceeds_limit"
            assert r.data["error"]["details"] == [{"field": "redeem_points", "issue": f"allowed maximum: {limit}"}]
            self.refused.append(("purchase", body))
            self.seen["purchase refused"] += 1
            return
        assert r.status_code == 200, r.data
        assert "Idempotent-Replayed" not in r.headers
        discount = redeem * POINT_VALUE
        earned = earned_points(total, discount)
        self.wallet.matured -= redeem
        self.wallet.earn(earned, pending=self.pending_days > 0)
        self.entries += (redeem > 0) + (earned > 0)
        if self.rule_version is None:  # every receipt of the run is priced by the one version in force
            self.rule_version = r.data["rule_version"]
            assert isinstance(self.rule_version, int) and self.rule_version >= 1
        assert r.data == {
            "receipt_id": body["receipt_id"], "card_number": self.card, "points_earned": earned,
            "points_redeemed": redeem, "discount": discount, "payable": total - discount,
            "balance": self.wallet.spendable, "pending": self.wallet.pending, "tier": None, "promotions": [],
            "card_activated": False, "replayed": False, "tier_upgrade": None, "coupons": [], "gift_cards": [],
            "to_pay": total - discount, "rule_version": self.rule_version, "referral_points": 0,
        }
        amounts = [item["amount"] for item in body["items"]]
        weights = ([(a - s) * BPS for a, s in zip(amounts, discount_shares(discount, amounts), strict=True)]
                   if total > 0 else [0] * len(amounts))
        assert sum(weights) * RATE_BPS // (BPS * BPS * POINT_VALUE) == earned
        self.receipts[body["receipt_id"]] = Receipt(
            body, r.data, total, earned, redeem,
            [Line(i["sku"], i["quantity"], i["amount"], w) for i, w in zip(body["items"], weights, strict=True)])
        self.seen["purchase redeeming" if redeem else "purchase"] += 1

    def purchase_with(self, lines: list[tuple[str, str, int, int]], redeem: str, fraction: int) -> None:
        total = sum(amount for *_, amount in lines)
        limit = redeem_limit(self.wallet.spendable, total)
        points = {"none": 0, "some": limit * fraction // 1000, "max": limit,
                  "over": limit + 1 + fraction % 3 * (limit // 2)}[redeem]
        self.expect_purchase({
            "receipt_id": self.next_id("rcpt"), "card_number": self.card, "store_id": STORE, "total": total,
            "items": [{"sku": s, "category": c, "quantity": q, "amount": a} for s, c, q, a in lines],
            "redeem_points": points,
        })

    def purchase(self, data: st.DataObject) -> None:
        self.purchase_with(data.draw(LINES, label="lines"), "none", 0)

    def purchase_redeeming(self, data: st.DataObject) -> None:
        """Redeem some of the allowed maximum, exactly the maximum, or more (30% of the receipt, or the balance)."""
        self.purchase_with(data.draw(LINES, label="lines"), data.draw(st.sampled_from(["max", "some", "over"])),
                           data.draw(st.integers(0, 1000), label="fraction"))

    def over_redeem(self, data: st.DataObject) -> None:
        self.purchase_with(data.draw(LINES, label="lines"), "over", data.draw(st.integers(0, 1000), label="fraction"))

    def spend_everything(self, data: st.DataObject) -> None:
        """Redeem the whole spendable balance, on a receipt big enough for the 30% cap to allow it."""
        lines = data.draw(LINES, label="lines")
        total = sum(amount for *_, amount in lines)
        needed = -(-max(self.wallet.spendable, 0) * POINT_VALUE * BPS // MAX_SHARE_BPS)
        if total < needed:
            lines.append(("beans", "retail", 1, needed - total))
        self.purchase_with(lines, "max", 0)

    def retry_purchase(self, data: st.DataObject) -> None:
        """The same purchase again (as sent, or re-encoded): the stored answer, marked replayed; nothing changes."""
        rc = data.draw(st.sampled_from(list(self.receipts.values())), label="receipt")
        reencode = data.draw(st.booleans(), label="reencode")
        r = self.api.post("/v1/purchases", self.keys.pos, reencoded(rc.body, "phone") if reencode else rc.body)
        assert r.status_code == 200, r.data
        assert r.headers.get("Idempotent-Replayed") == "true"
        assert r.data == {**rc.response, "replayed": True}
        self.seen["purchase replayed"] += 1

    def reuse_receipt_id(self, data: st.DataObject) -> None:
        rc = data.draw(st.sampled_from(list(self.receipts.values())), label="receipt")
        body = json.loads(json.dumps(rc.body))
        change = data.draw(st.sampled_from(["redeem", "amount", "sku", "extra_line"]), label="change")
        if change == "redeem":
            body["redeem_points"] += 1
        elif change == "amount":
            body["items"][0]["amount"] += 1
            body["total"] += 1
        elif change == "sku":
            body["items"][0]["sku"] += "-x"
        else:
            body["items"].append({"sku": "bag", "category": "retail", "quantity": 1, "amount": 0})
        r = self.api.post("/v1/purchases", self.keys.pos, body)
        assert r.status_code == 422, r.data
        assert r.data["error"]["code"] == "idempotency_key_reused"
        assert "Idempotent-Replayed" not in r.headers
        self.seen["receipt id reused"] += 1

    def resend_refused(self, data: st.DataObject) -> None:
        """A refused request left nothing behind: its id is still free and the rules decide again."""
        kind, body = data.draw(st.sampled_from(self.refused), label="refused")
        self.refused.remove((kind, body))
        self.seen["refused request re-sent"] += 1
        (self.expect_purchase if kind == "purchase" else self.expect_refund)(body)

    # --- refunds -----------------------------------------------------------------------------------

    def expect_refund(self, body: dict[str, Any]) -> None:
        """Send a refund whose refund id was never recorded; check the answer and update the model."""
        rc = self.receipts[body["receipt_id"]]
        plan = plan_refund(rc, body.get("items"), body.get("amount"))
        r = self.api.post("/v1/refunds", self.keys.pos, body)
        if isinstance(plan, str):
            assert r.status_code == 422, (plan, r.data)
            assert r.data["error"]["code"] == plan
            self.check_receipt(body["receipt_id"])
            self.refused.append(("refund", body))
            self.seen[f"refund refused: {plan}"] += 1
            return
        assert r.status_code == 200, (plan, r.data)
        assert "Idempotent-Replayed" not in r.headers
        written_off = self.wallet.reverse(plan.reversed, allow_debt=self.policy == "negative_balance")
        self.debt_from_refund |= self.wallet.debt > 0
        self.written_off += written_off
        self.wallet.earn(plan.returned, pending=False)
        self.entries += (plan.reversed - written_off > 0) + (plan.returned > 0)
        assert r.data == {
            "refund_id": body["refund_id"], "receipt_id": body["receipt_id"], "card_number": self.card,
            "amount_refunded": plan.amount, "points_reversed": plan.reversed - written_off,
            "points_returned": plan.returned, "points_written_off": written_off, "balance": self.wallet.spendable,
            "pending": self.wallet.pending, "replayed": False, "points_expired": 0, "gift_cards": [],
            "coupons_released": [],
        }
        rc.refunded_amount += plan.amount
        rc.refunded_weight_scaled += plan.weight_scaled
        rc.reversed += plan.reversed
        rc.returned += plan.returned
        for idx, (quantity, amount) in plan.line_changes.items():
            rc.lines[idx].refunded_quantity += quantity
            rc.lines[idx].refunded_amount += amount
        assert rc.reversed <= rc.earned and rc.returned <= rc.redeemed
        if all(ln.refunded_amount == 0 for ln in rc.lines):  # by amount only so far: the money's exact proportion
            assert rc.reversed == rc.earned * rc.refunded_amount // rc.total
        if rc.remaining == 0:  # partial refunds add up to what one full refund reverses and returns
            assert (rc.reversed, rc.returned) == (rc.earned, rc.redeemed)
        self.check_receipt(body["receipt_id"])
        self.refunds[body["refund_id"]] = (body, r.data)
        mode = "lines" if "items" in body else "amount" if "amount" in body else "rest"
        self.seen[f"refund by {mode}"] += 1
        self.seen.update(["points returned"] * (plan.returned > 0) + ["points written off"] * (written_off > 0)
                         + ["negative balance"] * (self.wallet.spendable < 0)
                         + ["receipt closed"] * (rc.remaining == 0))

    def refund_body(self, data: st.DataObject) -> tuple[Receipt, dict[str, Any]]:
        """A new refund of a receipt: the newest open ones first; a closed one a third of the time, if any."""
        receipts = list(self.receipts.values())[::-1]
        open_ = [rc for rc in receipts if rc.remaining > 0]
        closed = [rc for rc in receipts if rc.remaining <= 0]
        pool = closed if closed and (not open_ or data.draw(st.integers(0, 2), label="closed?") == 2) else open_
        rc = data.draw(st.sampled_from(pool), label="receipt")
        return rc, {"refund_id": self.next_id("rfnd"), "receipt_id": rc.body["receipt_id"]}

    def refund_rest(self, data: st.DataObject) -> None:
        self.expect_refund(self.refund_body(data)[1])

    def refund_oldest(self, data: st.DataObject) -> None:
        """Everything left of the oldest open receipt: its points may have been spent since."""
        oldest = next((rc for rc in self.receipts.values() if rc.remaining > 0), None)
        if oldest is None:
            return self.refund_rest(data)
        return self.expect_refund({"refund_id": self.next_id("rfnd"), "receipt_id": oldest.body["receipt_id"]})

    def refund_closed(self, data: st.DataObject) -> None:
        closed = [rc for rc in self.receipts.values() if rc.remaining <= 0]
        if not closed:
            return self.refund_rest(data)
        rc = data.draw(st.sampled_from(closed), label="receipt")
        return self.expect_refund({"refund_id": self.next_id("rfnd"), "receipt_id": rc.body["receipt_id"]})

    def over_refund(self, data: st.DataObject) -> None:
        """One kopeck more than the receipt has left; then one unit, or one kopeck, more than a line has left."""
        rc, body = self.refund_body(data)
        self.expect_refund({**body, "amount": rc.remaining + 1})
        ln = data.draw(st.sampled_from(rc.lines), label="line")
        units, money = ln.quantity - ln.refunded_quantity, ln.amount - ln.refunded_amount
        item = ({"sku": ln.sku, "quantity": units + 1, "amount": money} if data.draw(st.booleans(), label="units")
                else {"sku": ln.sku, "quantity": max(units, 1), "amount": money + 1})
        self.expect_refund({**body, "refund_id": self.next_id("rfnd"), "items": [item]})

    def refund_amount(self, data: st.DataObject) -> None:
        """Half, all, one kopeck, some of what is left; or one kopeck more than that, or double."""
        rc, body = self.refund_body(data)
        left = max(rc.remaining, 1)
        how = data.draw(st.sampled_from(["half", "all", "one", "some", "over", "double"]), label="how")
        if how == "some":
            body["amount"] = data.draw(st.integers(1, left), label="some")
        else:
            body["amount"] = {"half": left // 2 or 1, "all": left, "one": 1, "over": left + 1, "double": 2 * left}[how]
        self.expect_refund(body)

    def refund_lines(self, data: st.DataObject) -> None:
        """Units and money of some lines; sometimes more units or money than the line has left, or an unknown SKU."""
        rc, body = self.refund_body(data)
        items = []
        for idx in data.draw(st.lists(st.integers(0, len(rc.lines) - 1), min_size=1, max_size=3), label="lines"):
            ln = rc.lines[idx]
            units, money = ln.quantity - ln.refunded_quantity, ln.amount - ln.refunded_amount
            how = data.draw(st.sampled_from(["rest", "some", "rest", "some", "too many units", "too much money"]),
                            label="how")
            if how == "rest":
                items.append({"sku": ln.sku, "quantity": max(units, 1), "amount": money})
            elif how == "some":
                items.append({"sku": ln.sku, "quantity": data.draw(st.integers(1, max(units, 1)), label="units"),
                              "amount": data.draw(st.integers(0, money), label="money")})
            else:
                over = how == "too many units"
                items.append({"sku": ln.sku, "quantity": units + 1 if over else max(units, 1),
                              "amount": money if over else money + 1})
        if data.draw(st.integers(0, 9), label="unknown sku?") == 9:
            items.append({"sku": "no-such-sku", "quantity": 1, "amount": 1})
        body["items"] = items
        self.expect_refund(body)

    def retry_refund(self, data: st.DataObject) -> None:
        body, response = data.draw(st.sampled_from(list(self.refunds.values())), label="refund")
        reencode = data.draw(st.booleans(), label="reencode")
        r = self.api.post("/v1/refunds", self.keys.pos, reencoded(body, "items", "amount") if reencode else body)
        assert r.status_code == 200, r.data
        assert r.headers.get("Idempotent-Replayed") == "true"
        assert r.data == {**response, "replayed": True}
        self.check_receipt(body["receipt_id"])
        self.seen["refund replayed"] += 1

    def reuse_refund_id(self, data: st.DataObject) -> None:
        body, _ = data.draw(st.sampled_from(list(self.refunds.values())), label="refund")
        changed = {k: v for k, v in body.items() if k not in ("amount", "items")}
        changed["amount"] = body["amount"] + 1 if "amount" in body else 1
        r = self.api.post("/v1/refunds", self.keys.pos, changed)
        assert r.status_code == 422, r.data
        assert r.data["error"]["code"] == "idempotency_key_reused"
        self.check_receipt(body["receipt_id"])
        self.seen["refund id reused"] += 1

    # --- funding while earned points are pending, and the ledger as the API shows it ------------------

    def credit(self, data: st.DataObject) -> None:
        points = data.draw(st.integers(1, 400), label="points")
        r = self.api.post(f"/v1/cards/{self.card}/adjustments", self.keys.admin,
                          {"points": points, "reason": "goodwill", "adjustment_id": self.next_id("adj")})
        assert r.status_code == 201, r.data
        self.wallet.earn(points, pending=False)
        self.entries += 1
        assert r.data["points"] == points and r.data["balance_after"] == self.wallet.total

    def read_ledger_pages(self, data: st.DataObject) -> None:
        """GET /transactions page by page: every entry exactly once, newest first, balance_after chained."""
        limit = data.draw(st.integers(1, 7), label="limit")
        entries: list[dict[str, Any]] = []
        cursor = None
        for _ in range(self.entries + 2):
            query = f"?limit={limit}" + (f"&cursor={quote(cursor)}" if cursor else "")
            r = self.api.get(f"/v1/cards/{self.card}/transactions{query}", self.keys.support)
            assert r.status_code == 200, r.data
            assert len(r.data["items"]) <= limit
            entries += r.data["items"]
            cursor = r.data["cursor"]
            if not r.data["has_more"]:
                break
        assert len(entries) == self.entries
        assert len({e["entry_id"] for e in entries}) == len(entries)
        running = 0
        for entry in reversed(entries):
            running += entry["points"]
            assert entry["balance_after"] == running, entries
        assert running == self.wallet.total
        self.seen["ledger read"] += 1

    # --- invariants, after every step ------------------------------------------------------------------

    @invariant()
    def balances_agree(self) -> None:
        if not self.card:
            return
        r = self.api.get(f"/v1/cards/{self.card}", self.keys.support)
        assert r.status_code == 200, r.data
        balance, pending = r.data["balance"], r.data["pending"]
        assert (balance, pending) == (self.wallet.spendable, self.wallet.pending)
        assert balance + pending == loyalty.ledger_sum(TENANT, self.card) == self.wallet.total
        if balance < 0:
            assert self.policy == "negative_balance" and self.debt_from_refund
        if self.policy == "write_off" or self.pending_days:  # inside the return window the receipt's points are
            assert self.wallet.debt == 0 and balance >= 0  # still there to reverse: never a debt
        if self.pending_days:
            assert not self.written_off

    def check_receipt(self, receipt_id: str) -> None:
        """The stored receipt has exactly the model's refund totals, never more than it sold."""
        rc = self.receipts[receipt_id]
        stored = loyalty.get_receipt(TENANT, receipt_id)
        assert stored is not None
        doc = stored.doc.dump()
        assert int(doc["refunded_amount"]) == rc.refunded_amount <= int(doc["total"]) == rc.total
        assert int(doc["points_reversed"]) == rc.reversed <= rc.earned
        assert int(doc["points_returned"]) == rc.returned <= rc.redeemed
        for line, model in zip(doc["lines"], rc.lines, strict=True):
            assert int(line["refunded_amount"]) == model.refunded_amount <= int(line["amount"])
            assert int(line["refunded_quantity"]) == model.refunded_quantity <= int(line["quantity"])


@pytest.mark.parametrize("pending_days", [0, 14])
@pytest.mark.parametrize("policy", ["negative_balance", "write_off"])
def test_pos_state_machine(policy: str, pending_days: int) -> None:
    machine = PosMachine.configured(policy, pending_days)
    run_state_machine_as_test(machine, settings=settings(
        max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None, derandomize=True, database=None,
        suppress_health_check=list(HealthCheck),
    ))
    print(f"\n{policy}, pending_days={pending_days}:", dict(sorted(machine.seen.items())))
    expected = {"purchase", "purchase redeeming", "purchase refused", "purchase replayed", "receipt id reused",
                "refund by amount", "refund by lines", "refund by rest", "refund replayed", "refund id reused",
                "refund refused: already_refunded", "refund refused: refund_exceeds_receipt",
                "refund refused: refund_exceeds_line", "refused request re-sent", "points returned", "ledger read"}
    if not pending_days:  # points already spent when a refund reverses them: only without a return window
        expected |= {"negative balance"} if policy == "negative_balance" else {"points written off"}
    assert expected <= set(machine.seen), f"never exercised: {sorted(expected - set(machine.seen))}"
