"""Injected faults on every path that moves value or sends something, each followed by a reconciliation.

Faults are injected at the botocore level, so the real retry code runs: botocore's own retries (PynamoDB's
connections: 4 attempts, standard mode; the app's boto3 clients: 5), then ours (`transactions.write` for
TransactionConflict, the purchase / refund / gift-card loops for a card changed underneath, the channels'
throttling backoff, SQS redelivery through `batchItemFailures`). A `before-send` handler registered ahead of
moto's stub answers a chosen call with an error response, as DynamoDB, S3, SES or SNS would, or runs a
concurrent writer just before the call reaches moto. Backoff sleeps are zeroed (their lengths are recorded).

  * DynamoDB throttling (ProvisionedThroughputExceeded, ThrottlingException, a 500) on purchase, redemption,
    refund and gift top-up: retried, applied once; past every retry a 5xx in the error shape with nothing
    written, and the till's retry with the same receipt id (or Idempotency-Key) is applied once; the 5xx is a
    503 `storage_unavailable` with Retry-After, never a 500;
  * races: a transaction cancelled (TransactionConflict, a failed version condition), and a card changed by a
    concurrent purchase between the read and the write of a purchase or refund: recomputed, exact balances;
  * SQS redelivery, after a partial failure and as plain duplicates, for every worker: jobs (an offline batch,
    a trigger run that granted birthday points), mail, reports, webhooks (a POST whose outcome could not be
    recorded is not posted again); a survey reward whose grant was throttled is granted once later;
  * S3 failing in the middle of a multipart report upload, and a part failing once;
  * SES and SNS errors per recipient: retriable ones redelivered, permanent ones recorded once, counters exact.

After each scenario that touches value, `reconcile(tenant)` finds every card equal to its ledger.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs

import botocore.session
import pynamodb.connection.base as pynamodb_base
import pytest
from botocore.awsrequest import AWSResponse
from botocore.retries import standard
from moto.core import models as moto_models
from moto.core.botocore_stubber import MockRawResponse

from chalicelib.schemas.pos import PurchaseIn
from chalicelib.services.pos import purchases
from chalicelib.services.reporting.reconciliation import reconcile
from chalicelib.services.tenancy import keys as api_keys
from chalicelib.storage import loyalty, transactions
from chalicelib.storage.tables import TABLES, LoyaltyRecord
from tests.functional.conftest import Api, TenantKeys
from tests.functional.test_mail_delivery import mailer, rendering  # noqa: F401  (fixtures)
from tests.functional.test_reports import seeded  # noqa: F401  (fixture)
from tests.functional.test_webhooks import hooks, receiver  # noqa: F401  (fixtures)

TENANT = "coffee-house"
TWI = "TransactWriteItems"
THROTTLED = ("ProvisionedThroughputExceededException", 400)
THROTTLING = ("ThrottlingException", 400)
SERVER_ERROR = ("InternalServerError", 500)


# --- injecting faults ------------------------------------------------------------------------------


@dataclass
class Fault:
    """One planned answer to one send: an error (code, HTTP status), or a side effect before moto answers."""

    code: str = ""
    status: int = 400
    reasons: Callable[[int], list[str]] | None = None
    """For TransactionCanceledException: the cancellation reason codes, given the number of items."""
    before: Callable[[], None] | None = None


def error(code: str, status: int = 400) -> Fault:
    return Fault(code, status)


def cancelled(index: int, reason: str) -> Fault:
    """TransactionCanceledException with `reason` on item `index` (the others 'None'), as DynamoDB reports it."""
    return Fault("TransactionCanceledException", 400,
                 reasons=lambda n: [reason if i == index else "None" for i in range(n)])


def concurrently(action: Callable[[], None]) -> Fault:
    return Fault(before=action)


def error_response(url: str, service: str, code: str, status: int, reasons: list[str] | None = None,
                   message: str = "injected fault") -> AWSResponse:
    """What the service itself would answer: JSON for DynamoDB and SQS, XML for S3 and the query protocols."""
    if service in ("dynamodb", "sqs"):
        body: dict[str, Any] = {"__type": f"com.amazonaws.{service}#{code}", "message": message}
        if reasons is not None:
            body["CancellationReasons"] = [{"Code": r, "Message": "injected"} if r != "None" else {"Code": "None"}
                                           for r in reasons]
        return AWSResponse(url, status, {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "fault"},
                           MockRawResponse(json.dumps(body)))
    if service == "s3":
        xml = f"<Error><Code>{code}</Code><Message>{message}</Message><RequestId>fault</RequestId></Error>"
    else:
        xml = (f"<ErrorResponse><Error><Type>{'Receiver' if status >= 500 else 'Sender'}</Type><Code>{code}</Code>"
               f"<Message>{message}</Message></Error><RequestId>fault</RequestId></ErrorResponse>")
    return AWSResponse(url, status, {"Content-Type": "text/xml", "x-amzn-RequestId": "fault"}, MockRawResponse(xml))


class Faults:
    """Answers planned sends of chosen operations instead of moto; `sends` records every send of those operations.

    Registered on an event emitter ahead of moto's stub (botocore calls the handlers of the most specific event
    name first, and moto's are on plain `before-send`). botocore runs every `before-send` handler and uses the
    first response, so moto's stub is switched off for a faulted send (and on again by the last handler):
    otherwise moto would apply the request the fault claims was refused.
    """

    def __init__(self) -> None:
        self.planned: dict[str, list[Fault | None]] = {}
        self.always: dict[str, Fault] = {}
        self.choose: dict[str, Callable[[str], Fault | None]] = {}
        """Per-request faults: given the request's body, the fault or None."""
        self.watched: set[str] = set()
        """Operations whose sends are recorded though no fault is planned for them."""
        self.sends: list[tuple[str, str]] = []
        self._muted = False

    def plan(self, operation: str, *faults: Fault | None) -> None:
        """The next sends of `operation` get these answers in turn (None: moto answers that one)."""
        self.planned.setdefault(operation, []).extend(faults)

    def count(self, operation: str, outcome: str | None = None) -> int:
        return sum(1 for op, what in self.sends if op == operation and (outcome is None or what == outcome))

    def install(self, emitter: Any, service: str) -> None:
        emitter.register_first(f"before-send.{service}", self._before_send)
        emitter.register_last("before-send", self._after_send)

    def _after_send(self, **_: Any) -> None:
        if self._muted:
            self._muted = False
            moto_models.botocore_stubber.enabled = True

    def _before_send(self, request: Any, event_name: str, **_: Any) -> AWSResponse | None:
        _, service, operation = event_name.split(".")
        queue = self.planned.get(operation)
        fault = queue.pop(0) if queue else self.always.get(operation)
        if operation in self.choose:
            body = request.body.decode() if isinstance(request.body, bytes) else str(request.body or "")
            fault = self.choose[operation](body)
        if fault is None:
            if operation in self.planned or operation in self.always or operation in self.watched:
                self.sends.append((operation, "delivered"))
            return None
        if fault.before is not None:
            self.sends.append((operation, "raced"))
            fault.before()
            return None
        self.sends.append((operation, fault.code))
        self._muted = True
        moto_models.botocore_stubber.enabled = False
        reasons = None
        if fault.reasons is not None:
            reasons = fault.reasons(len(json.loads(request.body)["TransactItems"]))
        return error_response(request.url, service, fault.code, fault.status, reasons)


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """botocore's retry delays and ours are zero; the delays botocore would have waited are recorded."""
    waited: list[float] = []
    real = standard.ExponentialBackoff.delay_amount

    def delay_amount(self: Any, context: Any) -> float:
        waited.append(real(self, context))
        return 0.0

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", delay_amount)
    monkeypatch.setattr(transactions, "backoff", lambda attempt: 0.0)
    return waited


@pytest.fixture
def our_backoff(monkeypatch: pytest.MonkeyPatch, no_backoff: list[float]) -> list[int]:
    """The attempts our own retry loops backed off after (transactions.write, purchases, refunds, gift cards)."""
    attempts: list[int] = []
    monkeypatch.setattr(transactions, "backoff", lambda attempt: attempts.append(attempt) or 0.0)
    return attempts


@pytest.fixture
def dynamo(aws_stack: None, monkeypatch: pytest.MonkeyPatch, no_backoff: list[float]) -> Faults:
    """Every PynamoDB connection made from now on gets its client from one hooked botocore session."""
    session = botocore.session.get_session()
    monkeypatch.setattr(pynamodb_base, "get_session", lambda: session)
    faults = Faults()
    faults.install(session.get_component("event_emitter"), "dynamodb")
    transactions.reset_connection()
    for model in TABLES:
        model._connection = None
    return faults


# --- a tenant with a funded card ---------------------------------------------------------------


def purchase_body(card: str, receipt_id: str, total: int, redeem: int = 0) -> dict[str, Any]:
    return {"receipt_id": receipt_id, "card_number": card, "store_id": "msk-01", "total": total,
            "redeem_points": redeem,
            "items": [{"sku": "latte", "category": "coffee", "quantity": 2, "amount": total - 50_000},
                      {"sku": "beans", "category": "retail", "quantity": 1, "amount": 50_000}]}


@pytest.fixture
def card(api: Api, tenant: TenantKeys, dynamo: Faults, clock: Any) -> str:
    """A card with 200 spendable points (4,000 RUB at 5%, no pending days)."""
    r = api.post("/v1/cards", tenant.pos, {"program_id": "main", "kind": "virtual"})
    assert r.status_code == 201, r.data
    number = str(r.data["number"])
    r = api.post("/v1/purchases", tenant.pos, purchase_body(number, "fund", 400_000))
    assert r.status_code == 200 and r.data["points_earned"] == 200, r.data
    return number


def ledger(number: str) -> list[tuple[str, int]]:
    """The card's ledger entries (type, points), sorted (the clock is frozen: one instant orders nothing)."""
    entries, _ = loyalty.list_entries(TENANT, number, 200, None)
    return sorted((e.type, e.points) for e in entries)


def assert_reconciled(tenant_id: str = TENANT, cards: int | None = None) -> None:
    report = reconcile(tenant_id)
    assert report.ok, report.mismatches
    if cards is not None:
        assert report.cards == cards


def balance(api: Api, tenant: TenantKeys, number: str) -> int:
    r = api.get(f"/v1/cards/{number}", tenant.support)
    assert r.status_code == 200, r.data
    return int(r.data["balance"])


# --- DynamoDB throttling and server errors on the value paths ------------------------------------------


@dataclass(frozen=True)
class Step:
    """One value-moving call on the card (or the gift card): its answer and the entries it adds."""

    name: str
    request: Callable[[str, str], tuple[str, dict[str, Any]]]
    """(card, gift card) -> (path, body)."""
    answer: dict[str, int]
    entries: list[tuple[str, int]]
    status: int = 200
    money: bool = False


# One after the other on a card of 200 points: 100,000 kopecks at 5% earn 50 points; with 30 points redeemed,
# 3,000 off and 5% of 97,000 = 48 points; half of that receipt refunded reverses 24 of its 48 points and returns
# 15 of its 30. A prepaid gift card sold with 100,000 is topped up with 50,000.
STEPS = [
    Step("purchase", lambda c, g: ("/v1/purchases", purchase_body(c, "r-1", 100_000)),
         {"points_earned": 50, "points_redeemed": 0, "balance": 250}, [("accrual", 50)]),
    Step("redemption", lambda c, g: ("/v1/purchases", purchase_body(c, "r-2", 100_000, redeem=30)),
         {"points_earned": 48, "points_redeemed": 30, "discount": 3_000, "balance": 268},
         [("redemption", -30), ("accrual", 48)]),
    Step("refund", lambda c, g: ("/v1/refunds", {"refund_id": "f-1", "receipt_id": "r-2", "amount": 50_000}),
         {"amount_refunded": 50_000, "points_reversed": 24, "points_returned": 15, "balance": 259},
         [("reversal", -24), ("return", 15)]),
    Step("gift top-up", lambda c, g: (f"/v1/gift-cards/{g}/top-ups",
                                      {"topup_id": "t-1", "amount": 50_000, "store_id": "msk-01"}),
         {"money": 150_000}, [("topup", 50_000)], status=201, money=True),
]


def gift_card(api: Api, tenant: TenantKeys) -> str:
    """A reloadable prepaid card sold with 100,000."""
    r = api.post("/v1/programs", tenant.admin, {"id": "prepaid", "name": "Prepaid", "kind": "gift",
                                                "gift": {"reloadable": True, "min_amount": 1_000,
                                                         "max_amount": 200_000, "validity_days": 30}})
    assert r.status_code == 201, r.data
    r = api.post("/v1/gift-cards", tenant.pos, {"sale_id": "s-1", "program_id": "prepaid", "amount": 100_000})
    assert r.status_code == 201, r.data
    return str(r.data["number"])


def entries_of(number: str, money: bool = False) -> list[tuple[str, int]]:
    """A card's ledger entries as (type, points), or (type, amount) for a gift card's money, sorted."""
    if not money:
        return ledger(number)
    pk = loyalty.card_pk(TENANT, number)
    docs = [r.doc.as_dict() for r in LoyaltyRecord.query(pk, LoyaltyRecord.sk.startswith("entry#"),
                                                         consistent_read=True)]
    return sorted((str(d["type"]), int(d.get("amount", 0))) for d in docs)


def shown(api: Api, tenant: TenantKeys, step: Step, number: str) -> int:
    """What the card shows now: its balance, or a gift card's money."""
    r = api.get(f"/v1/gift-cards/{number}" if step.money else f"/v1/cards/{number}", tenant.support)
    assert r.status_code == 200, r.data
    return int(r.data["money" if step.money else "balance"])


def test_throttled_or_failed_transactions_are_retried_and_applied_once(
        api: Api, tenant: TenantKeys, card: str, dynamo: Faults, no_backoff: list[float]) -> None:
    gift = gift_card(api, tenant)
    expected = {card: ledger(card), gift: entries_of(gift, money=True)}
    for step in STEPS:
        dynamo.sends.clear()
        waited = len(no_backoff)
        number = gift if step.money else card
        dynamo.plan(TWI, error(*THROTTLED), error(*THROTTLING), error(*SERVER_ERROR))
        path, body = step.request(card, gift)
        r = api.post(path, tenant.pos, body)
        assert r.status_code == step.status, (step.name, r.data)
        assert dynamo.sends == [(TWI, THROTTLED[0]), (TWI, THROTTLING[0]), (TWI, SERVER_ERROR[0]),
                                (TWI, "delivered")], step.name
        assert len(no_backoff) - waited == 3, "botocore retried each, with its backoff"
        assert {k: r.data[k] for k in step.answer} == step.answer and r.data["replayed"] is False, step.name
        expected[number] = sorted(expected[number] + step.entries)
        assert entries_of(number, step.money) == expected[number], step.name
        assert shown(api, tenant, step, number) == step.answer["money" if step.money else "balance"]
        assert_reconciled(cards=2)


def test_throttled_past_every_retry_writes_nothing_and_the_retry_applies_once(
        api: Api, tenant: TenantKeys, card: str, dynamo: Faults) -> None:
    """Every attempt PynamoDB makes is throttled: a 5xx in the error shape, nothing written. The till's retry
    (same receipt id; every other step also with an Idempotency-Key, which the 5xx released) applies once, and
    a third send is answered from what was stored."""
    gift = gift_card(api, tenant)
    for i, step in enumerate(STEPS):
        number = gift if step.money else card
        path, body = step.request(card, gift)
        headers = {"Idempotency-Key": f"till-1-{step.name}"} if i % 2 else None
        before, showing = entries_of(number, step.money), shown(api, tenant, step, number)
        dynamo.sends.clear()
        dynamo.always[TWI] = error(*THROTTLED)
        r = api.post(path, tenant.pos, body, headers=headers)
        assert dynamo.sends == [(TWI, THROTTLED[0])] * 4, "PynamoDB's 4 attempts, each throttled"
        assert r.status_code >= 500 and set(r.data["error"]) == {"code", "message", "details", "request_id"}
        assert entries_of(number, step.money) == before and shown(api, tenant, step, number) == showing
        assert_reconciled(cards=2)

        del dynamo.always[TWI]
        retried = api.post(path, tenant.pos, body, headers=headers)
        assert retried.status_code == step.status, (step.name, retried.data)
        assert {k: retried.data[k] for k in step.answer} == step.answer and retried.data["replayed"] is False
        again = api.post(path, tenant.pos, body, headers=headers)
        # The Idempotency-Key layer answers with the stored response as it was; the receipt id with the kept answer.
        assert (again.status_code, again.data) == ((step.status, retried.data) if headers
                                                   else (200, {**retried.data, "replayed": True})), step.name
        assert again.headers["Idempotent-Replayed"] == "true"
        assert entries_of(number, step.money) == sorted(before + step.entries), step.name
        assert_reconciled(cards=2)


def test_throttled_past_every_retry_is_a_503_with_retry_after(api: Api, tenant: TenantKeys, card: str,
                                                              dynamo: Faults) -> None:
    before = ledger(card)
    dynamo.always[TWI] = error(*THROTTLED)
    r = api.post("/v1/purchases", tenant.pos, purchase_body(card, "r-1", 100_000))
    assert (r.status_code, r.data["error"]["code"]) == (503, "storage_unavailable"), r.data
    assert int(r.headers["Retry-After"]) >= 1
    del dynamo.always[TWI]
    assert ledger(card) == before, "nothing was written"
    again = api.post("/v1/purchases", tenant.pos, purchase_body(card, "r-1", 100_000))
    assert again.status_code == 200 and again.data["replayed"] is False
    assert ledger(card) == sorted([*before, ("accrual", again.data["points_earned"])])


# --- races: a transaction cancelled, a card changed between the read and the write --------------------------


def test_a_cancelled_transaction_is_retried_by_our_loops_and_applied_once(
        api: Api, tenant: TenantKeys, card: str, dynamo: Faults, our_backoff: list[int]) -> None:
    """TransactionConflict (another transaction on an item) is retried by transactions.write; a failed card
    version condition (item 1) by the purchase loop, which re-reads the card and recomputes. botocore retries
    neither: each backoff recorded here is ours."""
    for step, reason in zip(STEPS[:2], ["TransactionConflict", "ConditionalCheckFailed"], strict=True):
        dynamo.sends.clear()
        our_backoff.clear()
        dynamo.plan(TWI, cancelled(1, reason), cancelled(2, reason))
        path, body = step.request(card, "")
        r = api.post(path, tenant.pos, body)
        assert r.status_code == 200, r.data
        assert dynamo.sends == [(TWI, "TransactionCanceledException")] * 2 + [(TWI, "delivered")]
        assert our_backoff == [0, 1], reason
        assert {k: r.data[k] for k in step.answer} == step.answer and r.data["replayed"] is False
    assert ledger(card) == sorted([("accrual", 200), ("accrual", 50), ("redemption", -30), ("accrual", 48)])
    assert balance(api, tenant, card) == 268
    assert_reconciled(cards=1)


def buy_now(tenant: TenantKeys, body: dict[str, Any], results: list[Any]) -> Callable[[], None]:
    """Another till's purchase, run to completion (the concurrent writer); its answer goes to `results`."""
    principal = api_keys.authenticate(tenant.pos)
    return lambda: results.append(purchases.purchase(TENANT, principal, PurchaseIn(**body), "till-2"))


def test_a_card_spent_by_a_concurrent_purchase_is_recomputed_never_overdrawn(
        api: Api, tenant: TenantKeys, card: str, dynamo: Faults) -> None:
    """This till has read 200 points and redeems 150; before its write lands, another till redeems 200 of them.

    The version condition refuses the stale write; the recomputation finds 40 points (200 - 200 + 40 earned)
    and refuses 150 with the allowed maximum: the card is never overdrawn and nothing of this receipt is written.
    """
    concurrent: list[Any] = []
    dynamo.plan(TWI, concurrently(buy_now(tenant, purchase_body(card, "r-other", 100_000, redeem=200), concurrent)))
    r = api.post("/v1/purchases", tenant.pos, purchase_body(card, "r-1", 100_000, redeem=150))
    assert [p.balance for p in concurrent] == [40]
    assert (r.status_code, r.data["error"]["code"]) == (422, "redeem_exceeds_limit"), r.data
    assert dynamo.sends == [(TWI, "raced"), (TWI, "delivered")], "the stale write was refused, not retried as is"
    assert ledger(card) == sorted([("accrual", 200), ("redemption", -200), ("accrual", 40)])
    assert balance(api, tenant, card) == 40
    fits = api.post("/v1/purchases", tenant.pos, purchase_body(card, "r-1", 100_000, redeem=40))
    assert fits.status_code == 200 and fits.data["balance"] == 40 - 40 + 48, fits.data
    assert_reconciled(cards=1)


def test_a_refund_and_a_purchase_racing_on_one_card_both_apply_exactly(
        api: Api, tenant: TenantKeys, card: str, dynamo: Faults) -> None:
    r = api.post("/v1/purchases", tenant.pos, purchase_body(card, "r-1", 100_000, redeem=30))
    assert r.status_code == 200 and r.data["balance"] == 218, r.data
    concurrent: list[Any] = []
    dynamo.plan(TWI, concurrently(buy_now(tenant, purchase_body(card, "r-2", 200_000), concurrent)))
    refund = api.post("/v1/refunds", tenant.pos, {"refund_id": "f-1", "receipt_id": "r-1", "amount": 50_000})
    assert [p.balance for p in concurrent] == [218 + 100]
    assert refund.status_code == 200, refund.data
    assert dynamo.sends == [(TWI, "raced"), (TWI, "delivered"), (TWI, "delivered")]
    assert (refund.data["points_reversed"], refund.data["points_returned"], refund.data["balance"]) == (
        24, 15, 318 - 24 + 15)
    assert ledger(card) == sorted([("accrual", 200), ("redemption", -30), ("accrual", 48), ("accrual", 100),
                                   ("reversal", -24), ("return", 15)])
    assert balance(api, tenant, card) == 309
    assert_reconciled(cards=1)


# --- SQS redelivery: the jobs worker (an offline receipt batch) ------------------------------------------


def test_a_batch_job_failing_midway_is_redelivered_and_applies_every_receipt_once(
        api: Api, tenant: TenantKeys, card: str, dynamo: Faults, clock: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Six offline receipts; the jobs worker checkpoints every 2. DynamoDB throttles every attempt of the fourth
    receipt's transaction: the job fails (batchItemFailures), SQS redelivers it, the rerun redoes the receipts
    after the last checkpoint (their purchases replay) and finishes. Delivered once more after the end: nothing."""
    from chalicelib.services.pos import pos_batches
    from tests.functional import jobqueue

    monkeypatch.setattr(pos_batches, "CHECKPOINT_EVERY", 2)
    sold_at = clock.now() - timedelta(hours=2)
    receipts = [{"kind": "purchase", "receipt_id": f"off-{i}", "card_number": card, "total": 20_000 * (i + 1),
                 "items": [{"sku": "latte", "category": "coffee", "quantity": 1, "amount": 20_000 * (i + 1)}],
                 "purchased_at": (sold_at + timedelta(minutes=i)).isoformat()} for i in range(6)]
    r = api.post("/v1/pos/batches", tenant.pos, {"batch_id": "till-9", "store_id": "msk-01", "receipts": receipts})
    assert r.status_code == 202, r.data
    (job,) = jobqueue.receive_all()
    # Receipts 1-2, checkpoint, receipt 3 go through; receipt 4's transaction is throttled on all 4 attempts.
    dynamo.plan(TWI, None, None, None, None, *[error(*THROTTLED)] * 4)
    assert jobqueue.run_worker([job]) == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert dynamo.count(TWI, THROTTLED[0]) == 4
    assert_reconciled(cards=1)
    halfway = api.get("/v1/pos/batches/till-9", tenant.pos).data
    assert (halfway["status"], halfway["counts"]["ok"]) == ("processing", 2), halfway

    assert jobqueue.run_worker([job]) == {"batchItemFailures": []}  # SQS's redelivery
    assert jobqueue.run_worker([job]) == {"batchItemFailures": []}  # and a duplicate copy of it
    done = api.get("/v1/pos/batches/till-9", tenant.pos).data
    assert done["status"] == "done" and done["counts"]["ok"] == 6, done
    earned = [e["result"]["points_earned"] for e in done["receipts"]]
    assert earned == [10 * (i + 1) for i in range(6)]  # 5% of 200 RUB, 400 RUB, ...
    assert ledger(card) == sorted([("accrual", 200)] + [("accrual", p) for p in earned])
    assert balance(api, tenant, card) == 200 + sum(earned)
    assert_reconciled(cards=1)


# --- S3 failing in the middle of a multipart report upload --------------------------------------------


@pytest.fixture
def s3(seeded: dict[str, Any], no_backoff: list[float], monkeypatch: pytest.MonkeyPatch) -> Faults:  # noqa: F811
    """The seeded ledger report (4 rows) written in parts of 100 bytes; faults on the app's S3 client."""
    from moto.s3 import models as s3_models

    from chalicelib.storage import aws
    from chalicelib.storage import reports as report_store

    monkeypatch.setattr(report_store, "PART_SIZE", 100)
    monkeypatch.setattr(s3_models, "S3_UPLOAD_PART_MIN_SIZE", 0)
    faults = Faults()
    faults.install(aws.client("s3").meta.events, "s3")
    return faults


def open_uploads() -> list[dict[str, Any]]:
    import boto3

    from chalicelib.settings import settings

    s3 = boto3.client("s3", region_name=settings.region)
    return list(s3.list_multipart_uploads(Bucket=settings.reports_bucket).get("Uploads", []))


def report_rows(tenant_id: str, report_id: str) -> list[tuple[str, str]]:
    from chalicelib.storage import reports as report_store
    from tests.functional.test_reports import parse_csv

    raw = report_store.read_file(tenant_id, report_id, "csv")
    return [(row["receipt_id"], row["points"]) for row in parse_csv(raw)]


EXPECTED_ROWS = [("r1", "10"), ("r2", "15"), ("r1", "-10"), ("", "250")]


def test_s3_failing_midway_fails_the_report_aborts_the_upload_and_a_transient_failure_is_retried(
        api: Api, tenant: TenantKeys, s3: Faults) -> None:
    """Part 3, then the completion, fails on all 6 of botocore's attempts: each report is `failed` with the
    generic reason, its multipart upload is aborted (no orphan parts) and no object exists. By design a failed
    report is final: the redelivered message changes nothing. The same request again, meeting one failed
    part only (retried by botocore), builds the whole file."""
    from tests.functional.test_reports import build_all, report_objects, request_report, run_worker, take_messages

    s3.watched.add("AbortMultipartUpload")
    for operation, before in (("UploadPart", [None, None]), ("CompleteMultipartUpload", [])):
        s3.sends.clear()
        s3.plan(operation, *before)
        s3.always[operation] = error("InternalError", 500)
        report = request_report(api, tenant.admin)
        bodies = take_messages()
        assert run_worker(bodies) == {"batchItemFailures": []}
        assert s3.count(operation, "InternalError") == 6, "the first attempt and botocore's 5 retries"
        failed = api.get(f"/v1/reports/{report['report_id']}", tenant.admin).data
        assert (failed["status"], failed["failure"]["code"], failed["download_url"]) == (
            "failed", "build_failed", None), failed
        assert s3.count("AbortMultipartUpload") == 1 and open_uploads() == [], "aborted: no orphan parts"
        assert report_objects(tenant.tenant_id) == []
        del s3.always[operation]
        assert run_worker(bodies) == {"batchItemFailures": []}  # SQS redelivers the message: the outcome stands
        assert api.get(f"/v1/reports/{report['report_id']}", tenant.admin).data == failed
        assert report_objects(tenant.tenant_id) == []

    s3.sends.clear()
    s3.plan("UploadPart", None, error("InternalError", 500))
    again = request_report(api, tenant.admin)
    build_all()
    ready = api.get(f"/v1/reports/{again['report_id']}", tenant.admin).data
    assert (ready["status"], ready["rows"]) == ("ready", 4), ready
    assert s3.sends[:3] == [("UploadPart", "delivered"), ("UploadPart", "InternalError"), ("UploadPart", "delivered")]
    assert report_rows(tenant.tenant_id, again["report_id"]) == EXPECTED_ROWS
    assert report_objects(tenant.tenant_id) == [f"reports/{tenant.tenant_id}/{again['report_id']}.csv"]
    assert open_uploads() == [] and s3.count("AbortMultipartUpload") == 0


# --- SES and SNS errors per recipient, through a campaign and the mail worker -----------------------------


def form(body: str) -> dict[str, str]:
    """The parameters of a query-protocol request (SES, SNS)."""
    return {k: v[0] for k, v in parse_qs(body).items()}


def mail_records(bodies: list[str], prefix: str = "m") -> list[dict[str, Any]]:
    return [{"messageId": f"{prefix}{i}", "body": b} for i, b in enumerate(bodies)]


def test_sms_errors_per_recipient_retry_the_retriable_only_and_count_each_once(
        api: Api, mailer: TenantKeys, no_backoff: list[float]) -> None:  # noqa: F811
    """Five recipients of one SMS campaign, each meeting another SNS answer:

      ...01 throttled twice, then accepted: botocore's retries absorb it;
      ...02 refused as an invalid number: failed for good, never retried;
      ...03 a 500 on every attempt: reported for redelivery, sent on the redelivery;
      ...04 throttled past botocore's and our retries: reported for redelivery, sent on it;
      ...05 accepted.
    Then every message is delivered once more (SQS at least once): nothing is sent or counted twice.
    """
    from chalicelib.storage import aws
    from chalicelib.workers import mail
    from tests.functional.jobqueue import drain
    from tests.functional.test_campaigns import mail_bodies
    from tests.functional.test_mail_delivery import new_customer, sms_sent

    phones = [f"+7916100000{i}" for i in range(1, 6)]
    ids = {new_customer(api, mailer.admin, phone, name=f"Anna{i}"): phone for i, phone in enumerate(phones, 1)}
    segment = api.post("/v1/segments", mailer.admin, {"name": "Everybody", "filter": {}})
    assert segment.status_code == 201, segment.data
    created = api.post("/v1/campaigns", mailer.admin, {
        "id": "autumn", "name": "Autumn", "segment_id": segment.data["segment_id"], "channel": "sms",
        "template_id": "autumn-sms", "holdout_bps": 0})
    assert created.status_code == 201, created.data
    drain()
    bodies = sorted(mail_bodies(), key=lambda b: ids[json.loads(b)["customer_id"]])
    assert len(bodies) == 5

    sns = Faults()
    sns.install(aws.client("sns").meta.events, "sns")
    throttled_once: list[str] = []
    failing = {phones[2], phones[3]}

    def answer(body: str) -> Fault | None:
        phone = form(body).get("PhoneNumber", "")
        if phone == phones[0] and throttled_once.count(phone) < 2:
            throttled_once.append(phone)
            return error("Throttling", 400)
        if phone == phones[1]:
            return error("InvalidParameter", 400)
        if phone == phones[2] and phone in failing:
            return error("InternalError", 500)
        if phone == phones[3] and phone in failing:
            return error("Throttling", 400)
        return None

    sns.choose["Publish"] = answer
    records = mail_records(bodies)
    result = mail.handle_records(records)
    assert result == {"batchItemFailures": [{"itemIdentifier": "m2"}, {"itemIdentifier": "m3"}]}
    assert sorted(to for to, _ in sms_sent()) == [phones[0], phones[4]]
    assert sns.count("Publish", "InvalidParameter") == 1, "a permanent refusal is not retried"
    assert sns.count("Publish", "InternalError") == 6, "botocore's retries of a 5xx, then the message is redelivered"
    assert sns.count("Publish", "Throttling") == 2 + 6 * 4, "botocore's 6 attempts, 4 times by our backoff"
    counts = api.get("/v1/campaigns/autumn", mailer.admin).data["counts"]
    assert (counts["sent"], counts["failed"]) == (2, 1), counts

    failing.clear()  # the provider recovers; SQS redelivers the two reported messages
    assert mail.handle_records([records[2], records[3]]) == {"batchItemFailures": []}
    assert mail.handle_records(records) == {"batchItemFailures": []}  # and every message once more
    sent = sms_sent()
    assert sorted(to for to, _ in sent) == sorted(phones[:1] + phones[2:]), "each accepted once, none twice"
    assert all(text.startswith("Hi Anna") for _, text in sent)
    counts = api.get("/v1/campaigns/autumn", mailer.admin).data["counts"]
    assert (counts["queued"], counts["sent"], counts["failed"], counts["suppressed"]) == (5, 4, 1, 0), counts
    assert sns.count("Publish", "InvalidParameter") == 1


def test_email_rejected_is_final_and_an_ses_outage_is_redelivered(api: Api, mailer: TenantKeys,  # noqa: F811
                                                                  no_backoff: list[float]) -> None:
    from chalicelib.storage import aws, deliveries
    from chalicelib.workers import mail
    from tests.functional.test_mail_delivery import emails_sent, message, new_customer

    anna = new_customer(api, mailer.admin, "+79161000001", name="Anna")
    boris = new_customer(api, mailer.admin, "+79161000002", name="Boris")
    ses = Faults()
    ses.install(aws.client("ses").meta.events, "ses")
    outage = [True]

    def answer(body: str) -> Fault | None:
        params = form(body)
        to = params.get("Destination.ToAddresses.member.1") or params.get("Destinations.member.1", "")
        if to.startswith("anna@"):
            return error("MessageRejected", 400)
        return error("ServiceUnavailable", 503) if outage[0] else None

    ses.choose["SendEmail"] = ses.choose["SendRawEmail"] = answer
    bodies = [json.dumps(message(mailer.tenant_id, cid, "email")) for cid in (anna, boris)]
    records = mail_records(bodies)
    assert mail.handle_records(records) == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert deliveries.get_delivery(mailer.tenant_id, json.loads(bodies[0])["dedup_key"]).reason == (
        "provider_error: MessageRejected")
    assert deliveries.get_delivery(mailer.tenant_id, json.loads(bodies[1])["dedup_key"]) is None, "claim released"
    assert emails_sent() == []
    outage[0] = False
    assert mail.handle_records(records) == {"batchItemFailures": []}
    assert mail.handle_records(records) == {"batchItemFailures": []}
    assert len(emails_sent()) == 1, "Boris's, once"
    assert sum(1 for _, what in ses.sends if what == "MessageRejected") == 1, "a rejection is never retried"
    assert sum(1 for _, what in ses.sends if what == "ServiceUnavailable") == 6, "botocore's retries, then SQS's"
    assert deliveries.counts(mailer.tenant_id, "campaign", "c1") == {"sent": 1, "failed": 1,
                                                                     "failed:provider_error": 1}


# --- SQS redelivery: the webhooks worker ---------------------------------------------------------------


def test_a_delivered_webhook_whose_outcome_cannot_be_recorded_is_not_posted_again(
        api: Api, tenant: TenantKeys, hooks: Any, receiver: Any, dynamo: Faults, clock: Any) -> None:  # noqa: F811
    """The receiver got the event (2xx), then DynamoDB throttles every attempt to record it.

    Reporting the message as failed would make SQS redeliver it after the queue's visibility timeout (360 s),
    long after the 30 s claim lease, and the redelivery would POST the event a second time. Like the mail
    worker, the webhooks worker treats an attempt that was made as decided: the failure to record it is
    logged, the message is not retried, and the receiver gets the event once.
    """
    from tests.functional.test_webhooks import feed, register, take

    endpoint = register(api, tenant.admin, receiver.url, ["report.ready"])
    assert api.post(f"/v1/webhooks/{endpoint['id']}/ping", tenant.admin).status_code == 202
    bodies = take()
    dynamo.always["UpdateItem"] = error(*THROTTLED)
    assert feed(bodies) == {"batchItemFailures": []}
    assert dynamo.count("UpdateItem", THROTTLED[0]) == 4, "the outcome's write was tried and throttled"
    assert len(receiver.requests) == 1
    del dynamo.always["UpdateItem"]
    clock.advance(seconds=360)  # had it been reported, SQS would redeliver it now
    assert take() == [], "nothing re-queued"
    assert len(receiver.requests) == 1


def test_a_webhook_redelivered_while_its_attempt_is_claimed_is_not_posted_twice(
        api: Api, tenant: TenantKeys, hooks: Any, receiver: Any, dynamo: Faults, clock: Any) -> None:  # noqa: F811
    """A copy of the message arrives while the first is being delivered (SQS at least once): it finds the
    attempt claimed and does nothing; after the POST was recorded, later copies do nothing either."""
    from chalicelib.schemas.webhooks import DeliveryMessage
    from chalicelib.services.integrations import webhooks
    from tests.functional.test_webhooks import feed, register, take

    endpoint = register(api, tenant.admin, receiver.url, ["report.ready"])
    assert api.post(f"/v1/webhooks/{endpoint['id']}/ping", tenant.admin).status_code == 202
    bodies = take()
    copy = DeliveryMessage.model_validate(json.loads(bodies[0]))
    outcomes: list[str] = []
    dynamo.plan("UpdateItem", concurrently(lambda: outcomes.append(webhooks.deliver(copy))))
    assert feed(bodies) == {"batchItemFailures": []}
    assert outcomes == ["duplicate"] and len(receiver.requests) == 1
    clock.advance(seconds=360)
    assert feed(bodies) == {"batchItemFailures": []}
    assert len(receiver.requests) == 1
    got = api.get(f"/v1/webhooks/{endpoint['id']}/deliveries", tenant.admin).data["items"]
    assert [(d["status"], d["attempts"]) for d in got] == [("delivered", 1)], got


# --- SQS redelivery: the jobs worker (a trigger run granting birthday points) ---------------------------


def test_a_trigger_run_failing_after_granting_points_is_redelivered_without_granting_twice(
        api: Api, mailer: TenantKeys, clock: Any, no_backoff: list[float]) -> None:  # noqa: F811
    """The daily trigger run grants Anna's birthday points, then SQS refuses the mail batch on every attempt:
    the job fails and is redelivered. The rerun finds the grant made (its adjustment id) and queues the
    messages; delivered twice, each is sent once. The card equals its ledger throughout."""
    from chalicelib.services.marketing import triggers
    from chalicelib.storage import aws
    from tests.functional import jobqueue
    from tests.functional.test_campaigns import mail_bodies
    from tests.functional.test_mail_delivery import sms_sent
    from tests.functional.test_triggers import buy, member, prepare, settings_body

    prepare(api, mailer)
    _, anna_card = member(api, mailer, "+79161110001", "Anna", born="1990-11-06")
    buy(api, mailer, "r-a1", anna_card, 120_000)  # 60 points
    assert api.put("/v1/programs/main/triggers", mailer.admin, settings_body()).status_code == 200
    clock.advance(days=1)  # 3 November in Moscow: the birthday is 3 days away
    job = json.dumps(triggers.job_message(mailer.tenant_id, "main", clock.now().date()))

    sqs = Faults()
    sqs.install(aws.client("sqs").meta.events, "sqs")
    sqs.always["SendMessageBatch"] = error("InternalError", 500)
    assert jobqueue.run_worker([job]) == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert sqs.count("SendMessageBatch", "InternalError") == 6
    assert balance(api, mailer, anna_card) == 160, "the points were granted before the messages were queued"
    assert_reconciled(mailer.tenant_id, cards=1)

    del sqs.always["SendMessageBatch"]
    assert jobqueue.run_worker([job]) == {"batchItemFailures": []}  # SQS's redelivery
    assert jobqueue.run_worker([job]) == {"batchItemFailures": []}  # and one copy more
    bodies = mail_bodies()
    records = mail_records(bodies)
    from chalicelib.workers import mail

    assert mail.handle_records(records) == {"batchItemFailures": []}
    assert mail.handle_records(records) == {"batchItemFailures": []}
    birthday = [text for _, text in sms_sent() if text.startswith("Happy birthday")]
    assert birthday == ["Happy birthday, Anna! +100 points, code HAPPYBDAY"]
    assert len(sms_sent()) == len({json.loads(b)["dedup_key"] for b in bodies}), "each message sent once"
    entries = api.get(f"/v1/cards/{anna_card}/transactions", mailer.support).data["items"]
    assert [(e["type"], e["points"]) for e in entries if e["reason"] == "birthday 2026"] == [("adjustment", 100)]
    assert balance(api, mailer, anna_card) == 160
    assert_reconciled(mailer.tenant_id, cards=1)


# --- a survey's points reward whose grant is throttled ------------------------------------------------


def test_a_survey_reward_whose_grant_is_throttled_is_granted_once_by_a_later_response(
        api: Api, tenant: TenantKeys, dynamo: Faults, clock: Any) -> None:
    """The response is recorded, then every attempt of the points credit is throttled: the answer is a 5xx and
    the card holds nothing. The reward's marker stays pending for its lease; a later response completes it,
    once, and the one after that is told it was already rewarded."""
    from tests.functional.test_surveys import _answers, _create, _registration, _respond

    _create(api, tenant, _registration(reward={"kind": "points", "program_id": "main", "points": 70}))
    throttle = [True]
    dynamo.choose[TWI] = lambda body: error(*THROTTLED) if throttle[0] and '"survey welcome"' in body else None
    failed = _respond(api, tenant, "welcome", _answers())
    assert failed.status_code >= 500 and "error" in failed.data, failed.data
    assert dynamo.count(TWI, THROTTLED[0]) == 4
    assert_reconciled()
    throttle[0] = False
    clock.advance(minutes=2)
    done = _respond(api, tenant, "welcome", _answers())
    assert done.status_code == 201, done.data
    assert (done.data["reward"]["granted"], done.data["reward"]["points"]) == (True, 70)
    number = done.data["reward"]["card_number"]
    assert ledger(number) == [("adjustment", 70)] and balance(api, tenant, number) == 70
    assert _respond(api, tenant, "welcome", _answers()).data["reward"]["reason"] == "already_rewarded"
    assert balance(api, tenant, number) == 70
    assert_reconciled(cards=1)
