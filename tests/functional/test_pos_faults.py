"""Purchases and refunds when the network between the app and DynamoDB fails around the transaction.

A botocore event hook on the TransactWriteItems call breaks chosen sends of the request. It is
registered on one botocore session that every PynamoDB connection is given here (patched
`pynamodb.connection.base.get_session`, then the app's shared transaction connection is reset),
so it reaches whatever client `transactions.write` uses; each test asserts the fault fired.

  * request lost: raised before moto sees the request (a handler on
    `before-send.dynamodb.TransactWriteItems`, which botocore calls before moto's stub on plain
    `before-send`); nothing was written; botocore retries, the retry writes;
  * response lost: raised after moto applied the transaction (`register_last` on `before-send`,
    after moto's stub); botocore retries the very same request (same body, same token);
  * every response lost: botocore gives up, the app answers 5xx although the purchase was
    recorded; the till re-sends the same request and gets the stored answer.

What answers the retried call differs between moto and DynamoDB. moto ignores
ClientRequestToken (nothing in moto.dynamodb reads it), so on moto the retried transaction runs
again and is cancelled by the receipt's (refund's) exactly-once condition: the app reads the
stored answer and returns it marked `replayed`, although the till sent the request once. On
DynamoDB the token makes botocore's retry of that same call idempotent: DynamoDB answers it as
the first call succeeded, without applying anything, and the app returns its fresh answer
(`replayed: false`). Either way exactly one accrual (one reversal) is written.

`dynamodb_tokens` emulates DynamoDB's token rules on moto, to check the DynamoDB side too:
botocore's retry answered by the token, and two copies of one request in flight (which got a
500, IdempotentParameterMismatch, while the token was derived from the request and the card
version; fixed in 01a8ebd with a fresh token per attempt). The last two tests pinned two bugs in what
a replay may answer (a store-bound key got another store's stored answer; a reused refund_id naming an
unknown receipt got 404), both fixed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import botocore.session
import pynamodb.connection.base as pynamodb_base
import pytest
from botocore.exceptions import ConnectionClosedError, EndpointConnectionError, ReadTimeoutError
from moto.core.responses import ActionResult
from moto.dynamodb.exceptions import ERROR_TYPE_PREFIX, DynamodbException
from moto.dynamodb.responses import DynamoHandler

from chalicelib.schemas.pos import PurchaseIn, RefundIn
from chalicelib.services.pos import purchases, refunds
from chalicelib.services.reporting.reconciliation import reconcile
from chalicelib.services.tenancy import keys as api_keys
from chalicelib.storage import loyalty, transactions
from chalicelib.storage.tables import TABLES
from tests.functional.conftest import Api, TenantKeys

TENANT = "coffee-house"
EVENT = "before-send.dynamodb.TransactWriteItems"
LOSE_REQUEST, LOSE_RESPONSE = "lose request", "lose response"


class NetworkFaults:
    """Fails chosen sends of TransactWriteItems; `sends` records what each send did."""

    def __init__(self, session: botocore.session.Session) -> None:
        self.planned: list[str] = []
        self.lose_every_response = False
        self.lose_every_request = False
        self.response_lost_as: type[Exception] = ReadTimeoutError
        """What the client sees when a response is lost: a read timeout, or the connection closed under it."""
        self.sends: list[str] = []
        self.before_moto: Callable[[], None] | None = None
        self._fault = ""
        emitter = session.get_component("event_emitter")
        # botocore calls the most specific event name's handlers first, so this one runs before moto's stub
        # (registered on plain "before-send"); the second one runs after it, being last on that same name.
        emitter.register_first(EVENT, self._before_moto)
        emitter.register_last("before-send", self._after_moto)

    def _before_moto(self, request: Any, **_: Any) -> None:
        hook, self.before_moto = self.before_moto, None
        if hook is not None:
            hook()
        every = LOSE_RESPONSE if self.lose_every_response else LOSE_REQUEST if self.lose_every_request else ""
        self._fault = self.planned.pop(0) if self.planned else every
        self.sends.append(self._fault or "delivered")
        if self._fault == LOSE_REQUEST:
            raise EndpointConnectionError(endpoint_url=request.url)

    def _after_moto(self, request: Any, event_name: str, **_: Any) -> None:
        if event_name == EVENT and self._fault == LOSE_RESPONSE:  # moto has applied (or cancelled) it by now
            raise self.response_lost_as(endpoint_url=request.url)


@pytest.fixture
def faults(aws_stack: None, monkeypatch: pytest.MonkeyPatch) -> NetworkFaults:
    """Every PynamoDB connection made from now on gets its client from one hooked botocore session."""
    session = botocore.session.get_session()
    monkeypatch.setattr(pynamodb_base, "get_session", lambda: session)
    hooked = NetworkFaults(session)
    transactions.reset_connection()  # the app's shared transaction connection: rebuilt from the hooked session
    for model in TABLES:
        model._connection = None
    return hooked


@pytest.fixture
def card(api: Api, tenant: TenantKeys, faults: NetworkFaults) -> str:
    """A card with 200 spendable points (purchase of 4000 RUB at 5%)."""
    r = api.post("/v1/cards", tenant.pos, {"program_id": "main", "kind": "virtual"})
    assert r.status_code == 201, r.data
    number = r.data["number"]
    r = api.post("/v1/purchases", tenant.pos, purchase_body(number, "fund", 400_000))
    assert r.status_code == 200 and r.data["points_earned"] == 200, r.data
    faults.sends.clear()
    return str(number)


def purchase_body(card: str, receipt_id: str, total: int, redeem: int = 0) -> dict[str, Any]:
    return {"receipt_id": receipt_id, "card_number": card, "store_id": "msk-01", "total": total,
            "redeem_points": redeem,
            "items": [{"sku": "latte", "category": "coffee", "quantity": 2, "amount": total - 50_000},
                      {"sku": "beans", "category": "retail", "quantity": 1, "amount": 50_000}]}


def ledger(card: str) -> list[dict[str, Any]]:
    """The card's ledger entries, oldest first, read straight from the table."""
    entries, _ = loyalty.list_entries(TENANT, card, 200, None)
    return [e.model_dump(mode="json") for e in reversed(entries)]


def assert_balance(api: Api, tenant: TenantKeys, card: str, expected: int) -> None:
    r = api.get(f"/v1/cards/{card}", tenant.pos)
    assert (r.data["balance"], r.data["pending"]) == (expected, 0)
    assert loyalty.ledger_sum(TENANT, card) == expected


# 100,000 kopecks with 30 points redeemed: 3,000 off, earns 5% of 97,000 = 48 points.
PURCHASE = {"points_earned": 48, "points_redeemed": 30, "discount": 3_000, "payable": 97_000, "balance": 218,
            "pending": 0}


# --- purchases ------------------------------------------------------------------------------------


def test_purchase_whose_request_was_lost_is_applied_once_by_the_retry(api: Api, tenant: TenantKeys, card: str,
                                                                      faults: NetworkFaults) -> None:
    faults.planned = [LOSE_REQUEST]
    r = api.post("/v1/purchases", tenant.pos, purchase_body(card, "r-1", 100_000, redeem=30))
    assert r.status_code == 200, r.data
    assert faults.sends == [LOSE_REQUEST, "delivered"]  # botocore retried the call
    assert {k: r.data[k] for k in PURCHASE} == PURCHASE
    assert r.data["replayed"] is False and "Idempotent-Replayed" not in r.headers
    assert [(e["type"], e["points"]) for e in ledger(card)] == [("accrual", 200), ("redemption", -30),
                                                                ("accrual", 48)]
    assert_balance(api, tenant, card, 218)


def test_purchase_whose_response_was_lost_is_accrued_once(api: Api, tenant: TenantKeys, card: str,
                                                          faults: NetworkFaults) -> None:
    faults.planned = [LOSE_RESPONSE]
    body = purchase_body(card, "r-1", 100_000, redeem=30)
    r = api.post("/v1/purchases", tenant.pos, body)
    assert r.status_code == 200, r.data
    assert faults.sends == [LOSE_RESPONSE, "delivered"]
    assert {k: r.data[k] for k in PURCHASE} == PURCHASE
    # moto ran the retried transaction again; the receipt condition cancelled it and the stored answer came back.
    # (On DynamoDB the token answers the retry instead: replayed would be false. Same ledger either way.)
    assert r.data["replayed"] is True and r.headers["Idempotent-Replayed"] == "true"
    assert [(e["type"], e["points"]) for e in ledger(card)] == [("accrual", 200), ("redemption", -30),
                                                                ("accrual", 48)]
    assert_balance(api, tenant, card, 218)
    again = api.post("/v1/purchases", tenant.pos, body)
    assert again.status_code == 200 and again.data == r.data
    assert len(ledger(card)) == 3


def test_purchase_whose_every_response_was_lost_is_5xx_then_the_till_resend_gets_the_answer(
        api: Api, tenant: TenantKeys, card: str, faults: NetworkFaults) -> None:
    faults.lose_every_response = True
    body = purchase_body(card, "r-1", 100_000, redeem=30)
    r = api.post("/v1/purchases", tenant.pos, body)
    assert r.status_code >= 500, r.data  # an ambiguous outcome: the till must retry
    assert len(faults.sends) > 1 and set(faults.sends) == {LOSE_RESPONSE}
    assert [(e["type"], e["points"]) for e in ledger(card)] == [("accrual", 200), ("redemption", -30),
                                                                ("accrual", 48)]  # it was applied, once
    faults.lose_every_response = False
    resent = api.post("/v1/purchases", tenant.pos, body)
    assert resent.status_code == 200, resent.data
    assert {k: resent.data[k] for k in PURCHASE} == PURCHASE
    assert resent.data["replayed"] is True
    assert len(ledger(card)) == 3
    assert_balance(api, tenant, card, 218)


# --- refunds --------------------------------------------------------------------------------------


@pytest.fixture
def purchased(api: Api, tenant: TenantKeys, card: str, faults: NetworkFaults) -> dict[str, Any]:
    r = api.post("/v1/purchases", tenant.pos, purchase_body(card, "r-1", 100_000, redeem=30))
    assert r.status_code == 200 and r.data["balance"] == 218, r.data
    faults.sends.clear()
    return dict(r.data)


# Half of the receipt back: reverses 24 of its 48 points, returns 15 of its 30 redeemed points.
REFUND = {"amount_refunded": 50_000, "points_reversed": 24, "points_returned": 15, "points_written_off": 0,
          "balance": 209, "pending": 0}
REFUND_LEDGER = [("accrual", 200), ("redemption", -30), ("accrual", 48), ("reversal", -24), ("return", 15)]


def receipt_refunded(receipt_id: str) -> tuple[int, int, int]:
    stored = loyalty.get_receipt(TENANT, receipt_id)
    assert stored is not None
    doc = stored.doc.dump()
    return int(doc["refunded_amount"]), int(doc["points_reversed"]), int(doc["points_returned"])


@pytest.mark.parametrize("fault", [LOSE_REQUEST, LOSE_RESPONSE])
def test_refund_with_a_lost_request_or_response_is_applied_once(api: Api, tenant: TenantKeys, card: str,
                                                                purchased: dict[str, Any], faults: NetworkFaults,
                                                                fault: str) -> None:
    faults.planned = [fault]
    body = {"refund_id": "f-1", "receipt_id": "r-1", "amount": 50_000}
    r = api.post("/v1/refunds", tenant.pos, body)
    assert r.status_code == 200, r.data
    assert faults.sends == [fault, "delivered"]
    assert {k: r.data[k] for k in REFUND} == REFUND
    assert r.data["replayed"] is (fault == LOSE_RESPONSE)  # moto: the refund_id condition answered the retry
    assert [(e["type"], e["points"]) for e in ledger(card)] == REFUND_LEDGER
    assert receipt_refunded("r-1") == (50_000, 24, 15)
    assert_balance(api, tenant, card, 209)


def test_refund_whose_every_response_was_lost_is_5xx_then_the_resend_gets_the_answer(
        api: Api, tenant: TenantKeys, card: str, purchased: dict[str, Any], faults: NetworkFaults) -> None:
    faults.lose_every_response = True
    body = {"refund_id": "f-1", "receipt_id": "r-1", "amount": 50_000}
    r = api.post("/v1/refunds", tenant.pos, body)
    assert r.status_code >= 500, r.data
    assert [(e["type"], e["points"]) for e in ledger(card)] == REFUND_LEDGER
    faults.lose_every_response = False
    resent = api.post("/v1/refunds", tenant.pos, body)
    assert resent.status_code == 200, resent.data
    assert {k: resent.data[k] for k in REFUND} == REFUND and resent.data["replayed"] is True
    assert receipt_refunded("r-1") == (50_000, 24, 15)
    assert_balance(api, tenant, card, 209)


# --- every answer lost: a 503 the till retries, never a 500 -------------------------------------------


@pytest.mark.parametrize("kind", ["purchase", "refund"])
@pytest.mark.parametrize("lost", [(LOSE_REQUEST, EndpointConnectionError), (LOSE_RESPONSE, ReadTimeoutError),
                                  (LOSE_RESPONSE, ConnectionClosedError)],
                         ids=["request-lost", "read-timeout", "connection-closed"])
def test_every_answer_lost_is_503_with_retry_after_and_the_retry_lands_once(
        api: Api, tenant: TenantKeys, card: str, purchased: dict[str, Any], faults: NetworkFaults,
        kind: str, lost: tuple[str, type[Exception]]) -> None:
    """botocore gave up on connection errors or read timeouts: the write may or may not have landed. The till is
    told to retry (503 storage_unavailable, Retry-After), not that the server failed (500); its retry with the
    same receipt (refund) id is processed once, or answered from what landed."""
    fault, error_class = lost
    if kind == "purchase":
        path, body, answer = "/v1/purchases", purchase_body(card, "r-2", 100_000, redeem=10), {"balance": 257}
        entries = [("redemption", -10), ("accrual", 49)]
    else:
        path, body, answer = "/v1/refunds", {"refund_id": "f-1", "receipt_id": "r-1", "amount": 50_000}, REFUND
        entries = [("reversal", -24), ("return", 15)]
    before = [(e["type"], e["points"]) for e in ledger(card)]
    faults.response_lost_as = error_class
    faults.lose_every_request, faults.lose_every_response = fault == LOSE_REQUEST, fault == LOSE_RESPONSE
    r = api.post(path, tenant.pos, body, headers={"Idempotency-Key": f"{kind}-1"})
    assert (r.status_code, r.data["error"]["code"], r.headers.get("Retry-After")) == (503, "storage_unavailable",
                                                                                      "1"), r.data
    assert len(faults.sends) > 1 and set(faults.sends) == {fault}, "botocore retried, every attempt was lost"
    landed = [(e["type"], e["points"]) for e in ledger(card)]
    assert landed == (before + entries if fault == LOSE_RESPONSE else before)
    faults.lose_every_request = faults.lose_every_response = False
    for _ in range(2):  # the till's retry, and a duplicate of it
        resent = api.post(path, tenant.pos, body, headers={"Idempotency-Key": f"{kind}-1"})
        assert resent.status_code == 200, resent.data
        assert {k: resent.data[k] for k in answer} == answer
    assert [(e["type"], e["points"]) for e in ledger(card)] == before + entries, "applied exactly once"
    report = reconcile(TENANT)
    assert report.ok and report.cards == 1, report.mismatches


# --- DynamoDB's ClientRequestToken rules, emulated on moto ---------------------------------------------


@pytest.fixture
def dynamodb_tokens(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """moto's TransactWriteItems with DynamoDB's idempotency token rules (documented for TransactWriteItems).

    A call whose token already succeeded (within 10 minutes) is answered as a success without being
    applied if its parameters are the same, and fails with IdempotentParameterMismatchException if
    they differ. Only successful calls are remembered (the least DynamoDB promises).
    """
    used: dict[str, str] = {}
    original = DynamoHandler.transact_write_items

    def transact_write_items(self: DynamoHandler) -> Any:
        token = self.body.get("ClientRequestToken")
        if not token:
            return original(self)
        params = {k: v for k, v in self.body.items() if k not in ("ClientRequestToken", "ReturnConsumedCapacity")}
        digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()
        if token in used:
            if used[token] != digest:
                raise DynamodbException(ERROR_TYPE_PREFIX + "IdempotentParameterMismatchException",
                                        "The request uses the same client token as a previous, but non-identical "
                                        "request.")
            return ActionResult({"ConsumedCapacity": [], "ItemCollectionMetrics": {}})
        result = original(self)
        used[token] = digest
        return result

    monkeypatch.setattr(DynamoHandler, "transact_write_items", transact_write_items)
    return used


def test_on_dynamodb_the_token_answers_the_retry_of_a_call_whose_response_was_lost(
        api: Api, tenant: TenantKeys, card: str, faults: NetworkFaults, dynamodb_tokens: dict[str, str]) -> None:
    faults.planned = [LOSE_RESPONSE]
    r = api.post("/v1/purchases", tenant.pos, purchase_body(card, "r-1", 100_000, redeem=30))
    assert r.status_code == 200, r.data
    assert faults.sends == [LOSE_RESPONSE, "delivered"] and len(dynamodb_tokens) == 1
    assert {k: r.data[k] for k in PURCHASE} == PURCHASE
    assert r.data["replayed"] is False  # the token, not the receipt condition, answered botocore's retry
    assert [(e["type"], e["points"]) for e in ledger(card)] == [("accrual", 200), ("redemption", -30),
                                                                ("accrual", 48)]
    assert_balance(api, tenant, card, 218)


@pytest.mark.parametrize("kind", ["purchase", "refund"])
def test_two_copies_of_one_request_in_flight_both_get_the_answer_on_dynamodb(
        api: Api, tenant: TenantKeys, card: str, purchased: dict[str, Any], faults: NetworkFaults,
        dynamodb_tokens: dict[str, str], kind: str) -> None:
    """The till times out and re-sends while the first request is still running (the case idempotency is for).

    Interleaving, made deterministic: the first copy has read the card and built its transaction; just
    before its TransactWriteItems is sent, the second copy runs start to finish (same body, same card
    version); then the first copy's call reaches DynamoDB.
    """
    principal = api_keys.authenticate(tenant.pos)
    if kind == "purchase":
        body: dict[str, Any] = purchase_body(card, "r-2", 100_000, redeem=10)
        path, run_second = "/v1/purchases", lambda: purchases.purchase(TENANT, principal, PurchaseIn(**body), "till")
    else:
        body = {"refund_id": "f-1", "receipt_id": "r-1", "amount": 50_000}
        path, run_second = "/v1/refunds", lambda: refunds.refund(TENANT, principal, RefundIn(**body), "till")
    second: list[Any] = []
    faults.before_moto = lambda: second.append(run_second().model_dump(mode="json"))
    first = api.post(path, tenant.pos, body)
    assert len(second) == 1
    assert first.status_code == 200, first.data
    assert {**first.data, "replayed": False} == {**second[0], "replayed": False}
    assert first.data["replayed"] is True
    entries = ledger(card)
    assert loyalty.ledger_sum(TENANT, card) == sum(e["points"] for e in entries) == first.data["balance"]


def test_two_copies_of_one_request_in_flight_on_moto(api: Api, tenant: TenantKeys, card: str,
                                                     faults: NetworkFaults) -> None:
    """The same interleaving without the token emulation: the receipt condition makes the first copy a replay."""
    principal = api_keys.authenticate(tenant.pos)
    body = purchase_body(card, "r-2", 100_000, redeem=10)
    second: list[Any] = []
    faults.before_moto = lambda: second.append(
        purchases.purchase(TENANT, principal, PurchaseIn(**body), "till").model_dump(mode="json"))
    first = api.post("/v1/purchases", tenant.pos, body)
    assert first.status_code == 200, first.data
    assert second[0]["replayed"] is False and first.data == {**second[0], "replayed": True}
    assert [(e["type"], e["points"]) for e in ledger(card)] == [("accrual", 200), ("redemption", -10),
                                                                ("accrual", 49)]
    assert_balance(api, tenant, card, 239)


# --- what a replay may answer ------------------------------------------------------------------------


def test_a_key_bound_to_another_store_gets_403_not_the_stored_answer(api: Api, tenant: TenantKeys,
                                                                      card: str) -> None:
    assert api.post("/v1/stores", tenant.admin, {"id": "msk-02", "name": "Arbat 2"}).status_code == 201
    r = api.post("/v1/keys", tenant.admin, {"role": "pos", "name": "Arbat till", "store_id": "msk-02"})
    assert r.status_code == 201, r.data
    arbat = r.data["secret"]
    body = purchase_body(card, "r-1", 100_000)  # at msk-01
    assert api.post("/v1/purchases", tenant.pos, body).status_code == 200
    fresh = api.post("/v1/purchases", arbat, {**body, "receipt_id": "r-2"})
    assert fresh.status_code == 403, fresh.data  # the binding is enforced for a new receipt...
    retried = api.post("/v1/purchases", arbat, body)
    assert retried.status_code == 403, retried.data  # ...and must be for a recorded one


def test_a_reused_refund_id_is_refused_as_reused_whatever_its_new_body(api: Api, tenant: TenantKeys, card: str,
                                                                        purchased: dict[str, Any]) -> None:
    r = api.post("/v1/refunds", tenant.pos, {"refund_id": "f-1", "receipt_id": "r-1", "amount": 1_000})
    assert r.status_code == 200, r.data
    reused_purchase = api.post("/v1/purchases", tenant.pos, {**purchase_body(card, "r-1", 100_000, redeem=30),
                                                             "card_number": "0000000000000"})
    assert (reused_purchase.status_code, reused_purchase.data["error"]["code"]) == (422, "idempotency_key_reused")
    reused = api.post("/v1/refunds", tenant.pos, {"refund_id": "f-1", "receipt_id": "no-such-receipt", "amount": 1})
    assert (reused.status_code, reused.data["error"]["code"]) == (422, "idempotency_key_reused"), reused.data
