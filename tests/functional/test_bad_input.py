"""The bad input catalogue: every malformed, mistyped, out-of-range or hostile input gets its documented error.

Each case names the route, the input, the status, the error code and the field
at fault. Around every case the whole embedded AWS is snapshotted (every
DynamoDB item, every S3 object, every queued message): a refused request
writes nothing. The cases share one stack and two tenants (module scope) so
that ~180 of them run in seconds; the last test checks nothing was lost: the
card's balance and ledger are as seeded, they reconcile, and valid requests
still work.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from chalice.test import Client
from moto import mock_aws

from chalicelib.domain.roles import Role
from chalicelib.schemas.common import ErrorResponse
from chalicelib.schemas.keys import KeyCreate
from chalicelib.services.reporting.reconciliation import reconcile
from chalicelib.services.tenancy import keys as api_keys
from chalicelib.services.tenancy.scopes import Scope
from chalicelib.settings import settings
from tests.conftest import _reset_caches
from tests.functional import phone_codes
from tests.functional.conftest import Api, TenantKeys, make_agency, make_tenant

MAX_BODY = 262144


@dataclass
class World:
    api: Api
    a: TenantKeys
    b: TenantKeys
    card: str
    customer: str
    b_card: str
    b_customer: str
    seeded_card: dict[str, Any] = field(default_factory=dict)
    seeded_ledger: list[dict[str, Any]] = field(default_factory=list)
    phone: dict[str, str] = field(default_factory=dict)
    """Seeded phone verifications by token (`<vid>`, `<proof>`...): see `_seed_verifications`."""

    def key(self, role: str) -> str | None:
        return {"pos": self.a.pos, "admin": self.a.admin, "support": self.a.support, "b_pos": self.b.pos,
                "public": None}[role]

    def fill(self, value: Any) -> Any:
        """Put the seeded ids into a case's path or body (`<card>`, `<customer>`, `<b_card>`, `<b_customer>`)."""
        if isinstance(value, str):
            for token, real in (("<card>", self.card), ("<customer>", self.customer), ("<b_card>", self.b_card),
                                ("<b_customer>", self.b_customer), *self.phone.items()):
                value = value.replace(token, real)
            return value
        if isinstance(value, bytes):
            return self.fill(value.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")
        if isinstance(value, dict):
            return {k: self.fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.fill(v) for v in value]
        return value


def _ok(r: Any, status: int = 200) -> dict[str, Any]:
    assert r.status_code == status, r.data
    return r.data


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    """One embedded AWS for the module: tenant A with a card that has history, tenant B with its own."""
    from chalicelib import clock
    from infra.local.gateway import install_gateway_responses
    from infra.local.resources import create_resources

    with mock_aws():
        _reset_caches()
        create_resources(stage="test")
        clock.freeze(datetime(2026, 11, 2, 10, 0, tzinfo=UTC))
        from app import app

        install_gateway_responses()
        try:
            with Client(app) as client:
                api = Api(client)
                platform = api_keys.create(Scope.platform(), KeyCreate(role=Role.PLATFORM, name="p"), "test").secret
                a = make_tenant(api, make_agency(api, platform, "acme-agency"), "acme-agency", "coffee-house")
                b = make_tenant(api, make_agency(api, platform, "rival-agency"), "rival-agency", "fuel-net")
                card = _ok(api.post("/v1/cards", a.pos, {"program_id": "main", "customer": {
                    "phone": "+79161234567", "first_name": "Anna"}}), 201)
                b_card = _ok(api.post("/v1/cards", b.pos, {"program_id": "main", "customer": {
                    "phone": "+79169998877", "first_name": "Boris"}}), 201)
                w = World(api, a, b, card["number"], card["customer_id"], b_card["number"], b_card["customer_id"])
                for receipt, amount in (("seed-1", 10000), ("seed-2", 20000)):
                    _ok(api.post("/v1/purchases", a.pos, {
                        "receipt_id": receipt, "card_number": w.card, "store_id": "msk-01", "total": amount,
                        "items": [{"sku": "latte", "category": "coffee", "amount": amount}]}))
                _ok(api.post("/v1/purchases", b.pos, {
                    "receipt_id": "seed-1", "card_number": w.b_card, "store_id": "msk-01", "total": 5000,
                    "items": [{"sku": "fuel", "amount": 5000}]}))
                _ok(api.post("/v1/refunds", a.pos, {"refund_id": "seed-r1", "receipt_id": "seed-1", "amount": 1000}))
                _ok(api.post(f"/v1/cards/{w.card}/adjustments", a.admin,
                             {"points": 7, "reason": "goodwill", "adjustment_id": "seed-adj"}), 201)
                _ok(api.post("/v1/purchases/quote", a.pos, _purchase(w.card), headers={"Idempotency-Key": "seed-key"}))
                _ok(api.post("/v1/pos/batches", a.pos, {"batch_id": "seed-batch", "store_id": "msk-01", "receipts": [
                    {"kind": "purchase", "receipt_id": "offline-1", "card_number": w.card, "total": 500,
                     "items": [{"sku": "tea", "amount": 500}], "purchased_at": "2026-11-02T09:00:00+00:00"}]}), 202)
                _ok(api.post("/v1/templates", a.admin, {"id": "welcome", "name": "Welcome", "channel": "sms",
                                                        "body": "Hi {{ first_name }}, you have {{ balance }}"}), 201)
                _seed_verifications(w)
                w.seeded_card = _ok(api.get(f"/v1/cards/{w.card}", a.pos))
                w.seeded_ledger = _ok(api.get(f"/v1/cards/{w.card}/transactions", a.pos))["items"]
                yield w
        finally:
            clock.unfreeze()
    _reset_caches()


JOIN = {"id": "join", "title": "Join", "kind": "registration", "status": "active",
        "questions": [{"id": "phone", "type": "phone", "label": "Phone", "required": True, "maps_to": "phone"},
                      {"id": "name", "type": "text", "label": "Name", "maps_to": "first_name"}]}
V_PHONE, V_OTHER = "+79161112233", "+79164445566"


def _seed_verifications(w: World) -> None:
    """Tenant A's sign-up survey and phone verifications in every state the catalogue refers to."""
    api, t = w.api, w.a.tenant_id
    _ok(api.post("/v1/surveys", w.a.admin, JOIN), 201)

    def started(tenant_id: str, phone: str) -> str:
        return str(_ok(phone_codes.start(api, tenant_id, phone), 201)["verification_id"])

    w.phone["<vid>"] = started(t, V_PHONE)
    w.phone["<b_vid>"] = started(w.b.tenant_id, V_OTHER)
    w.phone["<checked_vid>"] = checked = started(t, V_PHONE)
    _ok(phone_codes.check(api, t, checked, V_PHONE, phone_codes.last_code(V_PHONE)))
    w.phone["<locked_vid>"] = locked = started(t, V_OTHER)
    for _ in range(5):
        _ok(phone_codes.check(api, t, locked, V_OTHER, "000000" if phone_codes.last_code(V_OTHER) != "000000"
                              else "111111"), 400)
    w.phone["<proof>"] = phone_codes.proof_for(api, t, V_PHONE)
    w.phone["<b_proof>"] = phone_codes.proof_for(api, w.b.tenant_id, V_PHONE)
    w.phone["<used_proof>"] = used = phone_codes.proof_for(api, t, V_OTHER)
    _ok(api.post(f"/v1/public/surveys/{t}/join/responses", None,
                 {"answers": {"phone": V_OTHER, "name": "Vera"}, "phone_verification": used}), 201)


def snapshot() -> dict[str, Any]:
    """Everything stored in the embedded AWS: DynamoDB items, S3 objects, queued messages.

    Read from moto's in-memory backends rather than through the API (a scan per
    table per case would cost seconds on a busy machine).
    """
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends
    from moto.s3.models import s3_backends
    from moto.sqs.models import sqs_backends

    state: dict[str, Any] = {}
    for name, table in dynamodb_backends[DEFAULT_ACCOUNT_ID][settings.region].tables.items():
        state[f"dynamodb:{name}"] = sorted(json.dumps(item.to_json(), sort_keys=True) for item in table.all_items())
    for name, bucket in s3_backends[DEFAULT_ACCOUNT_ID]["global"].buckets.items():
        state[f"s3:{name}"] = sorted((key, obj.etag) for key, obj in bucket.keys.items())
    for name, queue in sqs_backends[DEFAULT_ACCOUNT_ID][settings.region].queues.items():
        state[f"sqs:{name}"] = sorted(message.id for message in queue._messages)
    return state


def assert_unchanged(before: dict[str, Any], after: dict[str, Any]) -> None:
    changed = {k: sorted(set(after.get(k, [])) ^ set(before.get(k, []))) if k.startswith("dynamodb") else
               (before.get(k), after.get(k)) for k in set(before) | set(after) if before.get(k) != after.get(k)}
    assert not changed, f"a refused request wrote something: {changed}"


def assert_error(r: Any, status: int, code: str, field: str | None = None, issue: str | None = None) -> dict:
    """The one documented error shape, with the field at fault named; never a 500 or a traceback."""
    assert r.status_code == status, (r.status_code, r.body[:500])
    assert r.headers["Content-Type"].startswith("application/json")
    ErrorResponse.model_validate(r.data)
    err = r.data["error"]
    assert set(err) == {"code", "message", "details", "request_id"}, err
    assert err["code"] == code, err
    assert err["message"] and err["request_id"] == r.headers["X-Request-Id"]
    assert all(set(d) == {"field", "issue"} and d["issue"] for d in err["details"]), err
    assert b"Traceback" not in r.body
    if field is not None:
        named = [d for d in err["details"] if d["field"] == field]
        assert named, f"field {field!r} not named: {err['details']}"
        if issue is not None:
            assert any(issue in d["issue"] for d in named), err["details"]
    return err


def _purchase(card: str = "<card>", **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"receipt_id": "bad-1", "card_number": card, "store_id": "msk-01", "total": 10000,
                            "items": [{"sku": "latte", "category": "coffee", "amount": 10000}]}
    body.update(changes)
    return body


def _amount(value: Any) -> dict[str, Any]:
    """A purchase whose total and only line both carry `value`."""
    return _purchase(total=value, items=[{"sku": "latte", "amount": value}])


def _raw_purchase(total: str) -> bytes:
    return (b'{"receipt_id": "bad-1", "card_number": "<card>", "store_id": "msk-01", "total": ' + total.encode()
            + b', "items": [{"sku": "latte", "amount": 10000}]}')


NO_BODY = object()


@dataclass(frozen=True)
class Case:
    id: str
    method: str
    path: str
    status: int
    code: str
    field: str | None = None
    issue: str | None = None
    body: Any = NO_BODY
    role: str = "pos"
    headers: tuple[tuple[str, str], ...] = ()
    counted: bool = False
    """A public form counts every attempt from an address, refused ones too (that is what slows brute force):
    the attempt counter is the one write allowed."""


def run_case(w: World, case: Case) -> dict:
    before = snapshot()
    kwargs: dict[str, Any] = {"headers": dict(case.headers)}
    if isinstance(case.body, bytes):
        kwargs["raw"] = w.fill(case.body)
    elif case.body is not NO_BODY:
        kwargs["body"] = w.fill(case.body)
    started = time.monotonic()
    r = w.api.call(case.method, w.fill(case.path), w.key(case.role), **kwargs)
    assert time.monotonic() - started < 5, "bounded: a hostile input must not hold the function"
    err = assert_error(r, case.status, case.code, case.field, case.issue)
    after = snapshot()
    if case.counted:
        before, after = _without_attempt_counters(before), _without_attempt_counters(after)
    assert_unchanged(before, after)
    return err


def _without_attempt_counters(state: dict[str, Any]) -> dict[str, Any]:
    counters = ('"kind": {"S": "survey_rate"}', '"kind": {"S": "limit"}')
    return {name: [i for i in items if not any(c in i for c in counters)] if name.startswith("dynamodb:")
            else items for name, items in state.items()}


P = "/v1/purchases"
INT = "Input should be a valid integer"
LE_MONEY = "Input should be less than or equal to 1000000000000"
GE0 = "Input should be greater than or equal to 0"
GE1 = "Input should be greater than or equal to 1"
OBJ = "Input should be an object"

MALFORMED = [
    Case("truncated", "POST", P, 400, "malformed_json", "body", body=b'{"receipt_id": "bad-1", '),
    Case("trailing-garbage", "POST", P, 400, "malformed_json", "body", "Extra data",
         body=json.dumps(_purchase()).encode() + b" xx"),
    Case("two-documents", "POST", P, 400, "malformed_json", "body", "Extra data",
         body=json.dumps(_purchase()).encode() * 2),
    Case("nan-literal", "POST", P, 400, "malformed_json", "body", "NaN is not a JSON value",
         body=_raw_purchase("NaN")),
    Case("infinity-literal", "POST", P, 400, "malformed_json", "body", "Infinity", body=_raw_purchase("Infinity")),
    Case("minus-infinity-literal", "POST", P, 400, "malformed_json", "body", "-Infinity",
         body=_raw_purchase("-Infinity")),
    Case("duplicate-key", "POST", P, 400, "malformed_json", "body", "duplicate key 'total'",
         body=_raw_purchase('10000, "total": 5')),
    Case("duplicate-key-nested", "POST", P, 400, "malformed_json", "body", "duplicate key 'amount'",
         body=b'{"receipt_id": "bad-1", "card_number": "<card>", "store_id": "msk-01", "total": 10000, '
              b'"items": [{"sku": "latte", "amount": 10000, "amount": 1}]}'),
    Case("single-quotes", "POST", P, 400, "malformed_json", "body", body=b"{'receipt_id': 'bad-1'}"),
    Case("comment", "POST", P, 400, "malformed_json", "body", body=b'{"receipt_id": "bad-1" /* c */}'),
    Case("unquoted-key", "POST", P, 400, "malformed_json", "body", body=b'{receipt_id: "bad-1"}'),
    Case("open-bracket", "POST", P, 400, "malformed_json", "body", body=b"["),
    Case("non-utf8-bytes", "POST", P, 400, "malformed_json", "body", body=b'{"receipt_id": "\xff\xfe"}'),
    Case("cp1251-cyrillic", "POST", "/v1/customers", 400, "malformed_json", "body",
         body='{"phone": "+79160000001", "first_name": "Анна"}'.encode("cp1251")),
    Case("utf16-body", "POST", P, 400, "malformed_json", "body", body=json.dumps(_purchase()).encode("utf-16")),
    Case("utf8-bom", "POST", P, 400, "malformed_json", "body", body=b"\xef\xbb\xbf" + json.dumps(_purchase()).encode()),
    Case("lone-surrogate-escape", "POST", "/v1/customers", 400, "malformed_json", "body",
         body=b'{"phone": "+79160000001", "first_name": "\\ud800"}'),
    Case("nested-arrays-10000", "POST", P, 400, "malformed_json", "body", "nested too deeply",
         body=b"[" * 10000 + b"]" * 10000),
    Case("nested-objects-10000", "POST", P, 400, "malformed_json", "body", "nested too deeply",
         body=b'{"a":' * 10000 + b"1" + b"}" * 10000),
    Case("nested-arrays-300", "POST", P, 400, "malformed_json", "body", "recursion limit",
         body=b"[" * 300 + b"]" * 300),
    Case("nested-inside-a-field", "POST", "/v1/pos/batches", 400, "malformed_json", "body",
         body=b'{"batch_id": "b-deep", "receipts": [{"kind": "purchase", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}]}"),
    Case("integer-5000-digits", "POST", P, 400, "malformed_json", "body", "digits", body=_raw_purchase("9" * 5000)),
]

TOP_LEVEL = [
    Case("null", "POST", P, 400, "validation_error", "body", OBJ, body=b"null"),
    Case("array", "POST", P, 400, "validation_error", "body", OBJ, body=b"[]"),
    Case("array-of-objects", "POST", P, 400, "validation_error", "body", OBJ, body=json.dumps([_purchase()]).encode()),
    Case("string", "POST", P, 400, "validation_error", "body", OBJ, body=b'"receipt"'),
    Case("number", "POST", P, 400, "validation_error", "body", OBJ, body=b"1"),
    Case("true", "POST", P, 400, "validation_error", "body", OBJ, body=b"true"),
    Case("empty-body", "POST", P, 400, "validation_error", "receipt_id", "Field required", body=b""),
    Case("whitespace-body", "POST", P, 400, "validation_error", "items", "Field required", body=b" \n\t "),
    Case("empty-object", "POST", P, 400, "validation_error", "total", "Field required", body={}),
    Case("items-missing", "POST", P, 400, "validation_error", "items", "Field required",
         body={k: v for k, v in _purchase().items() if k != "items"}),
    Case("empty-body-refund", "POST", "/v1/refunds", 400, "validation_error", "refund_id", "Field required", body=b""),
    Case("empty-body-customer", "POST", "/v1/customers", 400, "validation_error", "body",
         "a customer needs a phone or an e-mail", body=b""),
]

TYPES = [
    Case("total-string", "POST", P, 400, "validation_error", "total", INT, body=_purchase(total="1000")),
    Case("total-float", "POST", P, 400, "validation_error", "total", INT, body=_amount(10.5)),
    Case("total-float-integral", "POST", P, 400, "validation_error", "total", INT, body=_raw_purchase("1000.0")),
    Case("total-exponent", "POST", P, 400, "validation_error", "total", INT, body=_raw_purchase("1e3")),
    Case("total-exponent-huge", "POST", P, 400, "validation_error", "total", INT, body=_raw_purchase("1e30")),
    Case("total-exponent-overflow", "POST", P, 400, "validation_error", "total", INT, body=_raw_purchase("1e400")),
    Case("total-true", "POST", P, 400, "validation_error", "total", INT, body=_purchase(total=True)),
    Case("total-false", "POST", P, 400, "validation_error", "total", INT, body=_purchase(total=False)),
    Case("total-null", "POST", P, 400, "validation_error", "total", INT, body=_purchase(total=None)),
    Case("total-list", "POST", P, 400, "validation_error", "total", INT, body=_purchase(total=[1000])),
    Case("total-object", "POST", P, 400, "validation_error", "total", INT, body=_purchase(total={"amount": 1000})),
    Case("amount-string", "POST", P, 400, "validation_error", "items[0].amount", INT,
         body=_purchase(items=[{"sku": "latte", "amount": "1000"}])),
    Case("amount-true", "POST", P, 400, "validation_error", "items[0].amount", INT,
         body=_purchase(total=1, items=[{"sku": "latte", "amount": True}])),
    Case("quantity-string", "POST", P, 400, "validation_error", "items[0].quantity", INT,
         body=_purchase(items=[{"sku": "latte", "amount": 10000, "quantity": "2"}])),
    Case("receipt-id-number", "POST", P, 400, "validation_error", "receipt_id", "Input should be a valid string",
         body=_purchase(receipt_id=123)),
    Case("receipt-id-list", "POST", P, 400, "validation_error", "receipt_id", "Input should be a valid string",
         body=_purchase(receipt_id=["bad-1"])),
    Case("card-number-number", "POST", P, 400, "validation_error", "card_number", "Input should be a valid string",
         body=_purchase(card=6507359046610)),
    Case("sku-list", "POST", P, 400, "validation_error", "items[0].sku", "Input should be a valid string",
         body=_purchase(items=[{"sku": ["latte"], "amount": 10000}])),
    Case("items-object", "POST", P, 400, "validation_error", "items", "Input should be a valid array",
         body=_purchase(items={"sku": "latte", "amount": 1000})),
    Case("coupons-string", "POST", P, 400, "validation_error", "coupons", "Input should be a valid array",
         body=_purchase(coupons="WELCOME")),
    Case("redeem-true", "POST", P, 400, "validation_error", "redeem_points", INT, body=_purchase(redeem_points=True)),
    Case("unknown-field", "POST", P, 400, "validation_error", "discount", "Extra inputs are not permitted",
         body=_purchase(discount=500)),
    Case("unknown-nested-field", "POST", P, 400, "validation_error", "items[0].price", "Extra inputs",
         body=_purchase(items=[{"sku": "latte", "amount": 10000, "price": 1}])),
    Case("purchased-at-naive", "POST", P, 400, "validation_error", "body", "time zone",
         body=_purchase(purchased_at="2026-11-02T09:00:00")),
    Case("purchased-at-garbage", "POST", P, 400, "validation_error", "purchased_at", body=_purchase(purchased_at="yesterday")),
    Case("refund-amount-string", "POST", "/v1/refunds", 400, "validation_error", "amount", INT,
         body={"refund_id": "bad-r", "receipt_id": "seed-2", "amount": "100"}),
    Case("refund-amount-float", "POST", "/v1/refunds", 400, "validation_error", "amount", INT,
         body={"refund_id": "bad-r", "receipt_id": "seed-2", "amount": 10.5}),
    Case("adjustment-points-true", "POST", "/v1/cards/<card>/adjustments", 400, "validation_error", "points", INT,
         role="admin", body={"points": True, "reason": "goodwill", "adjustment_id": "bad-adj"}),
]

AMOUNTS = [
    Case("total-negative", "POST", P, 400, "validation_error", "total", GE0, body=_amount(-1)),
    Case("line-negative", "POST", P, 400, "validation_error", "items[1].amount", GE0,
         body=_purchase(items=[{"sku": "latte", "amount": 10001}, {"sku": "promo", "amount": -1}])),
    Case("total-over-limit", "POST", P, 400, "validation_error", "total", LE_MONEY, body=_amount(10**12 + 1)),
    Case("total-int64-max", "POST", P, 400, "validation_error", "total", LE_MONEY, body=_amount(2**63 - 1)),
    Case("total-int64-overflow", "POST", P, 400, "validation_error", "total", LE_MONEY, body=_amount(2**63)),
    Case("total-uint64-overflow", "POST", P, 400, "validation_error", "total", LE_MONEY, body=_amount(2**64)),
    Case("total-10e30", "POST", P, 400, "validation_error", "total", LE_MONEY, body=_amount(10**30)),
    Case("total-int64-underflow", "POST", P, 400, "validation_error", "total", GE0, body=_amount(-2**63 - 1)),
    Case("lines-overflow-int64-together", "POST", P, 400, "validation_error", "body", "differs from the sum",
         body=_purchase(total=10**12, items=[{"sku": "a", "amount": 10**12}] * 10)),
    Case("total-differs-from-lines", "POST", P, 400, "validation_error", "body", "differs from the sum",
         body=_purchase(total=10001)),
    Case("redeem-negative", "POST", P, 400, "validation_error", "redeem_points", GE0, body=_purchase(redeem_points=-1)),
    Case("redeem-int64", "POST", P, 400, "validation_error", "redeem_points", "less than or equal to 1000000000",
         body=_purchase(redeem_points=2**63)),
    Case("redeem-over-balance", "POST", P, 422, "redeem_exceeds_limit", "redeem_points",
         body=_purchase(redeem_points=10**9)),
    Case("quantity-zero", "POST", P, 400, "validation_error", "items[0].quantity", GE1,
         body=_purchase(items=[{"sku": "latte", "amount": 10000, "quantity": 0}])),
    Case("quantity-negative", "POST", P, 400, "validation_error", "items[0].quantity", GE1,
         body=_purchase(items=[{"sku": "latte", "amount": 10000, "quantity": -3}])),
    Case("quantity-uint64", "POST", P, 400, "validation_error", "items[0].quantity", "less than or equal to 1000000",
         body=_purchase(items=[{"sku": "latte", "amount": 10000, "quantity": 2**64}])),
    Case("gift-tender-zero", "POST", P, 400, "validation_error", "gift_cards[0].amount", GE1,
         body=_purchase(gift_cards=[{"card_number": "<b_card>", "amount": 0}])),
    Case("gift-tender-uint64", "POST", P, 400, "validation_error", "gift_cards[0].amount", LE_MONEY,
         body=_purchase(gift_cards=[{"card_number": "<b_card>", "amount": 2**64}])),
    Case("refund-zero", "POST", "/v1/refunds", 400, "validation_error", "amount", GE1,
         body={"refund_id": "bad-r", "receipt_id": "seed-2", "amount": 0}),
    Case("refund-negative", "POST", "/v1/refunds", 400, "validation_error", "amount", GE1,
         body={"refund_id": "bad-r", "receipt_id": "seed-2", "amount": -500}),
    Case("refund-int64", "POST", "/v1/refunds", 400, "validation_error", "amount", LE_MONEY,
         body={"refund_id": "bad-r", "receipt_id": "seed-2", "amount": 2**63}),
    Case("refund-more-than-paid", "POST", "/v1/refunds", 422, "refund_exceeds_receipt", "amount",
         body={"refund_id": "bad-r", "receipt_id": "seed-2", "amount": 20001}),
    Case("refund-line-negative", "POST", "/v1/refunds", 400, "validation_error", "items[0].amount", GE0,
         body={"refund_id": "bad-r", "receipt_id": "seed-2", "items": [{"sku": "latte", "amount": -1}]}),
    Case("adjustment-zero", "POST", "/v1/cards/<card>/adjustments", 400, "validation_error", "points",
         "an adjustment must change the balance", role="admin",
         body={"points": 0, "reason": "goodwill", "adjustment_id": "bad-adj"}),
    Case("adjustment-int64", "POST", "/v1/cards/<card>/adjustments", 400, "validation_error", "points",
         "less than or equal to 1000000000", role="admin",
         body={"points": 2**63, "reason": "goodwill", "adjustment_id": "bad-adj"}),
    Case("adjustment-int64-negative", "POST", "/v1/cards/<card>/adjustments", 400, "validation_error", "points",
         "greater than or equal to -1000000000", role="admin",
         body={"points": -2**63 - 1, "reason": "goodwill", "adjustment_id": "bad-adj"}),
]

_CUSTOMER = {"phone": "+79160000001"}
NAMES = [
    Case("name-nul", "POST", "/v1/customers", 400, "validation_error", "first_name", "control characters",
         body={**_CUSTOMER, "first_name": "Ann\u0000a"}),
    Case("name-newline", "POST", "/v1/customers", 400, "validation_error", "first_name", "line breaks",
         body={**_CUSTOMER, "first_name": "Anna\r\nBcc: all@example.com"}),
    Case("name-tab", "POST", "/v1/customers", 400, "validation_error", "last_name", "control characters",
         body={**_CUSTOMER, "last_name": "Iva\tnova"}),
    Case("name-del", "POST", "/v1/customers", 400, "validation_error", "middle_name", "control characters",
         body={**_CUSTOMER, "middle_name": "Pet\u007frovna"}),
    Case("name-c1-nel", "POST", "/v1/customers", 400, "validation_error", "first_name", "control characters",
         body={**_CUSTOMER, "first_name": "An\u0085na"}),
    Case("name-rtl-override", "POST", "/v1/customers", 400, "validation_error", "first_name",
         "bidirectional overrides", body={**_CUSTOMER, "first_name": "Anna\u202egpj.exe"}),
    Case("name-rtl-isolate", "POST", "/v1/customers", 400, "validation_error", "last_name",
         "bidirectional overrides", body={**_CUSTOMER, "last_name": "\u2067Ivanova\u2069"}),
    Case("name-too-long", "POST", "/v1/customers", 400, "validation_error", "first_name",
         "String should have at most 120 characters", body={**_CUSTOMER, "first_name": "Ж" * 121}),
    Case("name-empty", "POST", "/v1/customers", 400, "validation_error", "first_name", "at least 1 character",
         body={**_CUSTOMER, "first_name": ""}),
    Case("name-blank", "POST", "/v1/customers", 400, "validation_error", "first_name", "at least 1 character",
         body={**_CUSTOMER, "first_name": "   "}),
    Case("name-number", "POST", "/v1/customers", 400, "validation_error", "first_name", "valid string",
         body={**_CUSTOMER, "first_name": 42}),
    Case("child-name-nul", "POST", "/v1/customers", 400, "validation_error", "children[0].name", "control characters",
         body={**_CUSTOMER, "children": [{"name": "Ma\u0000sha"}]}),
    Case("phone-cyrillic", "POST", "/v1/customers", 400, "validation_error", "phone", "not a phone number",
         body={"phone": "восемь-девять-один-шесть"}),
    Case("tag-with-hash", "POST", "/v1/customers", 400, "validation_error", "tags[0]", "pattern",
         body={**_CUSTOMER, "tags": ["fuel-net#customer"]}),
    Case("store-name-newline", "POST", "/v1/stores", 400, "validation_error", "name", "line breaks",
         role="admin", body={"id": "bad-store", "name": "Arbat\n10"}),
    Case("template-name-nul", "POST", "/v1/templates", 400, "validation_error", "name", "control characters",
         role="admin", body={"id": "bad-tpl", "name": "Wel\u0000come", "channel": "sms", "body": "Hi"}),
]

LONG_ID = "9" * 300
PATHS = [
    Case("card-dotdot-encoded", "GET", "/v1/cards/..%2F..%2F<card>", 404, "card_not_found", "number"),
    Case("card-dot-encoded", "GET", "/v1/cards/%2e%2e%2f", 404, "card_not_found", "number"),
    Case("card-dotdot-raw", "GET", "/v1/cards/../<card>", 404, "not_found"),
    Case("card-hash-encoded", "GET", "/v1/cards/fuel-net%23card%23<b_card>", 404, "card_not_found", "number"),
    Case("card-other-tenant", "GET", "/v1/cards/<b_card>", 404, "card_not_found", "number"),
    Case("card-cyrillic", "GET", "/v1/cards/карта", 404, "card_not_found", "number"),
    Case("card-nul", "GET", "/v1/cards/%00", 404, "card_not_found", "number"),
    Case("card-too-long", "GET", f"/v1/cards/{LONG_ID}", 404, "not_found", "number", "longer than 256 bytes"),
    Case("ledger-too-long", "GET", f"/v1/cards/{LONG_ID}/transactions", 404, "not_found", "number"),
    Case("customer-too-long", "GET", f"/v1/customers/{'x' * 2100}", 404, "not_found", "customer_id"),
    Case("customer-other-tenant", "GET", "/v1/customers/<b_customer>", 404, "customer_not_found", "customer_id"),
    Case("customer-hash-encoded", "GET", "/v1/customers/fuel-net%23customer%23<b_customer>", 404,
         "customer_not_found", "customer_id"),
    Case("customer-empty-segment", "GET", "/v1/customers//export", 404, "customer_not_found", "customer_id",
         role="admin"),
    Case("template-traversal", "GET", "/v1/templates/..%2Fwelcome", 404, "template_not_found", role="admin"),
    Case("adjust-other-tenant-card", "POST", "/v1/cards/<b_card>/adjustments", 404, "card_not_found", "number",
         role="admin", body={"points": 5, "reason": "goodwill", "adjustment_id": "bad-adj"}),
    Case("block-too-long", "POST", f"/v1/cards/{LONG_ID}/block", 404, "not_found", "number", role="admin",
         body={"reason": "lost"}),
]

L = "/v1/cards/<card>/transactions"
QUERIES = [
    Case("limit-negative", "GET", f"{L}?limit=-1", 400, "validation_error", "limit", GE1),
    Case("limit-zero", "GET", f"{L}?limit=0", 400, "validation_error", "limit", GE1),
    Case("limit-over", "GET", f"{L}?limit=201", 400, "validation_error", "limit", "less than or equal to 200"),
    Case("limit-huge", "GET", f"{L}?limit=99999999999999999999999", 400, "validation_error", "limit",
         "less than or equal to 200"),
    Case("limit-float", "GET", f"{L}?limit=1.5", 400, "validation_error", "limit"),
    Case("limit-text", "GET", f"{L}?limit=ten", 400, "validation_error", "limit"),
    Case("limit-empty", "GET", f"{L}?limit=", 400, "validation_error", "limit"),
    Case("cursor-garbage", "GET", f"{L}?cursor=AAAA", 400, "validation_error", "cursor"),
    Case("cursor-not-base64", "GET", f"{L}?cursor=%25%25%25", 400, "validation_error", "cursor"),
    Case("cursor-json-injection", "GET", f"{L}?cursor=" + base64.urlsafe_b64encode(
        b'{"pk": "fuel-net#card#1", "sk": "entry"}').decode(), 400, "validation_error", "cursor"),
    Case("cursor-too-long", "GET", f"{L}?cursor={'A' * 3000}", 400, "validation_error", "cursor", "at most 2048"),
    Case("unknown-param", "GET", f"{L}?tenant_id=fuel-net", 400, "validation_error", "tenant_id", "Extra inputs"),
    Case("no-query-route", "GET", "/v1/cards/<card>?tenant=fuel-net", 400, "validation_error", "tenant",
         "unknown parameter"),
    Case("phone-injection", "GET", "/v1/customers/lookup?phone=%27%20OR%201%3D1--", 400, "validation_error", "phone"),
    Case("phone-nul", "GET", "/v1/customers/lookup?phone=%00%00%00%00%00", 400, "validation_error", "phone"),
    Case("phone-missing", "GET", "/v1/customers/lookup", 400, "validation_error", "phone", "Field required"),
    Case("phone-of-other-tenant", "GET", "/v1/customers/lookup?phone=%2B79169998877", 404, "customer_not_found",
         "phone"),
    Case("repeated-phone-last-wins", "GET", "/v1/customers/lookup?phone=%2B79161234567&phone=%2B79169998877", 404,
         "customer_not_found", "phone"),
]

T = "/v1/templates"
_SMS = {"id": "bad-tpl", "name": "Bad", "channel": "sms"}
_DRAFT = {"customer_id": "<customer>", "channel": "sms"}
TEMPLATES = [
    Case("import-os", "POST", T, 422, "invalid_template", "body", "syntax error", role="admin",
         body={**_SMS, "body": "{% import os %}"}),
    Case("import-as", "POST", T, 422, "invalid_template", "body", "imports are not allowed", role="admin",
         body={**_SMS, "body": "{% import 'os' as os %}{{ os }}"}),
    Case("from-import", "POST", T, 422, "invalid_template", "body", "imports are not allowed", role="admin",
         body={**_SMS, "body": "{% from 'os' import system %}"}),
    Case("include-file", "POST", T, 422, "invalid_template", "body", "includes are not allowed", role="admin",
         body={**_SMS, "body": "{% include '/etc/passwd' %}"}),
    Case("extends", "POST", T, 422, "invalid_template", "body", "inheritance is not allowed", role="admin",
         body={**_SMS, "body": "{% extends 'base.html' %}"}),
    Case("macro", "POST", T, 422, "invalid_template", "body", "macros are not allowed", role="admin",
         body={**_SMS, "body": "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}"}),
    Case("cycler-globals", "POST", T, 422, "invalid_template", "body", "unknown variable(s): cycler", role="admin",
         body={**_SMS, "body": "{{ cycler.__init__.__globals__.os.popen('id').read() }}"}),
    Case("lipsum-globals", "POST", T, 422, "invalid_template", "body", "unknown variable(s): lipsum", role="admin",
         body={**_SMS, "body": "{{ lipsum.__globals__['os'] }}"}),
    Case("self-globals", "POST", T, 422, "invalid_template", "body", "access to '__globals__'", role="admin",
         body={**_SMS, "body": "{{ self.__init__.__globals__ }}"}),
    Case("subclasses", "POST", T, 422, "invalid_template", "body", "not allowed in the sandbox", role="admin",
         body={**_SMS, "body": "{{ first_name.__class__.__base__.__subclasses__() }}"}),
    Case("config-request", "POST", T, 422, "invalid_template", "body", "unknown variable(s): config, request",
         role="admin", body={**_SMS, "body": "{{ config }}{{ request.environ }}"}),
    Case("list-append", "POST", T, 422, "invalid_template", "body", "calling .append() is not allowed",
         role="admin", body={**_SMS, "body": "{% set x = [1] %}{% for i in x %}{{ x.append(i) }}{% endfor %}"}),
    Case("open-braces-5000", "POST", T, 422, "invalid_template", "body", "nested too deeply", role="admin",
         body={**_SMS, "body": "{{" * 5000}),
    Case("subject-injection", "POST", T, 422, "invalid_template", "subject", "access to '__class__'", role="admin",
         body={"id": "bad-tpl", "name": "Bad", "channel": "email", "subject": "{{ ''.__class__ }}", "body": "Hi"}),
    Case("body-over-limit", "POST", T, 400, "validation_error", "body", "at most 20000 characters", role="admin",
         body={**_SMS, "body": "x" * 20001}),
    Case("update-injection", "PUT", f"{T}/welcome", 422, "invalid_template", "body", "access to '__mro__'",
         role="admin", body={"name": "Welcome", "channel": "sms", "body": "{{ ''.__class__.__mro__ }}"}),
    Case("preview-range-bomb", "POST", f"{T}/preview", 422, "invalid_template", "body", "range() is limited",
         role="admin", body={**_DRAFT, "body": "{% for i in range(10**9) %}x{% endfor %}"}),
    Case("preview-nested-loops", "POST", f"{T}/preview", 422, "render_failed", "body", role="admin",
         body={**_DRAFT, "body": "{% for i in range(999) %}{% for j in range(999) %}x{% endfor %}{% endfor %}"}),
    Case("preview-power-tower", "POST", f"{T}/preview", 422, "render_failed", "body", "a number too large",
         role="admin", body={**_DRAFT, "body": "{{ 9**9**9 }}"}),
    Case("preview-string-bomb", "POST", f"{T}/preview", 422, "render_failed", "body", "a value longer than",
         role="admin", body={**_DRAFT, "body": "{{ 'a' * 10**9 }}"}),
    Case("preview-name-bomb", "POST", f"{T}/preview", 422, "render_failed", "body", "a value longer than",
         role="admin", body={**_DRAFT, "body": "{{ (first_name ~ first_name) * 100000 }}"}),
    Case("save-power-tower", "POST", T, 422, "render_failed", "body", "a number too large", role="admin",
         body={**_SMS, "body": "{{ 9**9**9 }}"}),
    Case("save-nested-loops", "POST", T, 422, "render_failed", "body", "loops ran more than", role="admin",
         body={**_SMS, "body": "{% for i in range(999) %}{% for j in range(999) %}{% endfor %}{% endfor %}x"}),
    Case("update-string-bomb", "PUT", f"{T}/welcome", 422, "render_failed", "body", "a value longer than",
         role="admin", body={"name": "Welcome", "channel": "sms", "body": "{{ 'a' * 10**9 }}"}),
    Case("preview-extra-dunder", "POST", f"{T}/welcome/preview", 400, "validation_error", "extra.__class__.[key]",
         role="admin", body={"customer_id": "<customer>", "extra": {"__class__": "x"}}),
    Case("preview-other-tenant-customer", "POST", f"{T}/welcome/preview", 404, "customer_not_found", "customer_id",
         role="admin", body={"customer_id": "<b_customer>"}),
    Case("preview-hash-customer", "POST", f"{T}/welcome/preview", 404, "customer_not_found", "customer_id",
         role="admin", body={"customer_id": "fuel-net#customer#<b_customer>"}),
]

_EMAIL = {"id": "bad-html", "name": "Bad", "channel": "email", "subject": "Hi"}
_PNG_HEAD = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"
_OVERSIZE = base64.b64encode(_PNG_HEAD + b"\x00" * (2 * 1024 * 1024 + 1 - len(_PNG_HEAD))).decode()
HTML_MAIL = [
    Case("sms-with-blocks", "POST", T, 400, "validation_error", "blocks", "an SMS template has no blocks",
         role="admin", body={**_SMS, "body": "Hi", "blocks": [{"type": "divider"}]}),
    Case("block-syntax-error-line", "POST", T, 422, "invalid_template", "blocks.1.text", "syntax error on line 2",
         role="admin", body={**_EMAIL, "blocks": [{"type": "divider"}, {"type": "text", "text": "a\n{{ x"}]}),
    Case("block-dunder", "POST", T, 422, "invalid_template", "blocks.0.label", "access to '__class__'",
         role="admin", body={**_EMAIL, "blocks": [{"type": "button", "label": "{{ ''.__class__ }}",
                                                   "url": "https://x.example"}]}),
    Case("block-javascript-link", "POST", T, 422, "invalid_template", "blocks.0.url", "must start with https://",
         role="admin", body={**_EMAIL, "blocks": [{"type": "button", "label": "Go", "url": "javascript:alert(1)"}]}),
    Case("block-unknown-image", "POST", T, 422, "invalid_template", "blocks.0.asset_id", "no image",
         role="admin", body={**_EMAIL, "blocks": [{"type": "image", "asset_id": "notinlibrary1"}]}),
    Case("blocks-over-30", "POST", T, 400, "validation_error", "blocks", "at most 30 items", role="admin",
         body={**_EMAIL, "blocks": [{"type": "divider"}] * 31}),
    Case("block-unknown-type", "POST", T, 400, "validation_error", "blocks[0].type", role="admin",
         body={**_EMAIL, "blocks": [{"type": "script"}]}),
    Case("asset-oversize", "POST", "/v1/assets", 413, "asset_too_large", "data_base64", role="admin",
         body={"filename": "big.png", "data_base64": _OVERSIZE}),
    Case("asset-body-over-route-limit", "POST", "/v1/assets", 413, "payload_too_large", role="admin",
         body={"filename": "huge.png", "data_base64": "A" * (3 * 1024 * 1024)}),
    Case("asset-svg-as-png", "POST", "/v1/assets", 422, "unsupported_image", "data_base64", role="admin",
         body={"filename": "logo.png", "content_type": "image/png",
               "data_base64": base64.b64encode(b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>')
               .decode()}),
    Case("asset-html-as-gif", "POST", "/v1/assets", 422, "unsupported_image", "data_base64", role="admin",
         body={"filename": "a.gif", "data_base64": base64.b64encode(b"<html><script>x</script>").decode()}),
    Case("asset-not-base64", "POST", "/v1/assets", 422, "unsupported_image", "data_base64", role="admin",
         body={"filename": "a.png", "data_base64": "%%%"}),
    Case("asset-no-filename", "POST", "/v1/assets", 400, "validation_error", "filename", role="admin",
         body={"data_base64": "AAAA"}),
    Case("asset-by-pos", "POST", "/v1/assets", 403, "forbidden", role="pos",
         body={"filename": "a.png", "data_base64": "AAAA"}),
    Case("asset-unknown-public", "GET", "/v1/public/assets/no-such-tenant/nosuchimage0", 404, "asset_not_found",
         "asset_id", role="public"),
]

DUPLICATES = [
    Case("receipt-reused-other-amount", "POST", P, 422, "idempotency_key_reused", "receipt_id",
         "already processed with a different body",
         body=_purchase(receipt_id="seed-1", total=10001, items=[{"sku": "latte", "category": "coffee",
                                                                  "amount": 10001}])),
    Case("receipt-reused-other-store-line", "POST", P, 422, "idempotency_key_reused", "receipt_id",
         body=_purchase(receipt_id="seed-2", total=20000, items=[{"sku": "cake", "amount": 20000}])),
    Case("refund-id-reused-other-amount", "POST", "/v1/refunds", 422, "idempotency_key_reused", "refund_id",
         body={"refund_id": "seed-r1", "receipt_id": "seed-1", "amount": 2000}),
    Case("refund-id-reused-other-receipt", "POST", "/v1/refunds", 422, "idempotency_key_reused", "refund_id",
         body={"refund_id": "seed-r1", "receipt_id": "seed-2", "amount": 1000}),
    Case("adjustment-id-reused", "POST", "/v1/cards/<card>/adjustments", 422, "idempotency_key_reused",
         "adjustment_id", role="admin", body={"points": 700, "reason": "goodwill", "adjustment_id": "seed-adj"}),
    Case("idempotency-key-other-body", "POST", "/v1/purchases/quote", 422, "idempotency_key_reused",
         "Idempotency-Key", body=_purchase(total=999, items=[{"sku": "latte", "amount": 999}]),
         headers=(("Idempotency-Key", "seed-key"),)),
    Case("idempotency-key-control-char", "POST", "/v1/purchases/quote", 400, "invalid_idempotency_key",
         "Idempotency-Key", body=_purchase(), headers=(("Idempotency-Key", "k\u0001ey"),)),
    Case("idempotency-key-too-long", "POST", "/v1/purchases/quote", 400, "invalid_idempotency_key",
         "Idempotency-Key", body=_purchase(), headers=(("Idempotency-Key", "k" * 256),)),
    Case("batch-id-reused-other-body", "POST", "/v1/pos/batches", 409, "batch_conflict", role="pos",
         body={"batch_id": "seed-batch", "receipts": [{"kind": "refund", "refund_id": "x", "receipt_id": "y",
                                                       "refunded_at": "2026-11-02T09:30:00+00:00"}]}),
    Case("refund-other-tenant-receipt", "POST", "/v1/refunds", 404, "receipt_not_found", "receipt_id",
         role="b_pos", body={"refund_id": "bad-r", "receipt_id": "seed-2"}),
    Case("purchase-other-tenant-card", "POST", P, 404, "card_not_found", "card_number", body=_purchase(card="<b_card>")),
    Case("receipt-id-with-hash", "POST", P, 400, "validation_error", "receipt_id", "pattern",
         body=_purchase(receipt_id="fuel-net#receipt#seed-1")),
    Case("store-id-other-tenant-prefix", "POST", P, 400, "validation_error", "store_id", "pattern",
         body=_purchase(store_id="fuel-net#store#msk-01")),
    Case("merge-other-tenant-customer", "POST", "/v1/customers/<customer>/merge", 404, "customer_not_found",
         role="admin", body={"duplicate_id": "<b_customer>"}),
    Case("merge-hash-customer", "POST", "/v1/customers/<customer>/merge", 404, "customer_not_found", role="admin",
         body={"duplicate_id": "fuel-net#customer#<b_customer>"}),
]

V = "/v1/public/verifications"
R = "/v1/public/surveys/coffee-house/join/responses"
VERIFICATION = [
    Case("code-five-digits", "POST", f"{V}/coffee-house/<vid>/check", 400, "validation_error", "code", "pattern",
         role="public", body={"phone": V_PHONE, "code": "12345"}),
    Case("code-letters", "POST", f"{V}/coffee-house/<vid>/check", 400, "validation_error", "code", "pattern",
         role="public", body={"phone": V_PHONE, "code": "12a456"}),
    Case("code-as-number", "POST", f"{V}/coffee-house/<vid>/check", 400, "validation_error", "code",
         role="public", body={"phone": V_PHONE, "code": 123456}),
    Case("code-check-without-phone", "POST", f"{V}/coffee-house/<vid>/check", 400, "validation_error", "phone",
         role="public", body={"code": "123456"}),
    Case("code-of-other-tenant", "POST", f"{V}/coffee-house/<b_vid>/check", 404, "verification_not_found",
         role="public", body={"phone": V_OTHER, "code": "123456"}),
    Case("code-unknown-verification", "POST", f"{V}/coffee-house/zzzzzzzzzzzzzzzzzzzz/check", 404,
         "verification_not_found", role="public", body={"phone": V_PHONE, "code": "123456"}),
    Case("code-verification-id-with-hash", "POST", f"{V}/coffee-house/fuel-net%23verification%23x/check", 404,
         "verification_not_found", role="public", body={"phone": V_PHONE, "code": "123456"}),
    Case("code-replayed-after-success", "POST", f"{V}/coffee-house/<checked_vid>/check", 409, "code_already_used",
         "code", role="public", body={"phone": V_PHONE, "code": "123456"}),
    Case("code-brute-force-after-five", "POST", f"{V}/coffee-house/<locked_vid>/check", 429, "too_many_attempts",
         "code", role="public", body={"phone": V_OTHER, "code": "123456"}),
    Case("start-bad-phone", "POST", f"{V}/coffee-house", 400, "validation_error", "phone", role="public",
         body={"phone": "12"}),
    Case("start-unknown-language", "POST", f"{V}/coffee-house", 400, "validation_error", "language", role="public",
         body={"phone": V_PHONE, "language": "de"}),
    Case("start-unknown-tenant", "POST", f"{V}/no-such-tenant", 404, "not_found", role="public",
         body={"phone": V_PHONE}),
    Case("response-proof-other-phone", "POST", R, 422, "phone_mismatch", "answers.phone", role="public", counted=True,
         body={"answers": {"phone": V_OTHER, "name": "Mallory"}, "phone_verification": "<proof>"}),
    Case("response-proof-other-tenant", "POST", R, 400, "invalid_verification", "phone_verification",
         role="public", counted=True, body={"answers": {"phone": V_PHONE, "name": "Mallory"}, "phone_verification": "<b_proof>"}),
    Case("response-proof-replayed", "POST", R, 409, "verification_used", "phone_verification", role="public", counted=True,
         body={"answers": {"phone": V_OTHER, "name": "Mallory"}, "phone_verification": "<used_proof>"}),
    Case("response-proof-forged", "POST", R, 400, "invalid_verification", "phone_verification", role="public", counted=True,
         body={"answers": {"phone": V_PHONE}, "phone_verification": "eyJwIjoicGhvbmUifQ.AAAAAAAAAAAAAAAAAAAAAAAAAAA"}),
    Case("response-other-tenant-survey", "POST", "/v1/public/surveys/fuel-net/join/responses", 404,
         "survey_not_found", role="public", body={"answers": {"phone": V_PHONE}, "phone_verification": "<proof>"}),
]

S = "/v1/auth/sign-in"
TOKEN = "abcdefgh12.abcdefghijklmnopqrstuv"
PEOPLE = [
    Case("signin-email-not-an-address", "POST", S, 400, "validation_error", "email", role="public",
         body={"email": "not-an-email", "password": "x"}),
    Case("signin-email-header-injection", "POST", S, 400, "validation_error", "email", role="public",
         body={"email": "a@b.example\r\nBcc: x@evil.example", "password": "x"}),
    Case("signin-email-quoted-local-part", "POST", S, 400, "validation_error", "email", role="public",
         body={"email": '"a b"@b.example', "password": "x"}),
    Case("signin-password-oversize", "POST", S, 400, "validation_error", "password", role="public",
         body={"email": "a@b.example", "password": "x" * 257}),
    Case("signin-password-as-number", "POST", S, 400, "validation_error", "password", role="public",
         body={"email": "a@b.example", "password": 12345678}),
    Case("signin-unknown-field", "POST", S, 400, "validation_error", "otp", role="public",
         body={"email": "a@b.example", "password": "x", "otp": "123456"}),
    Case("signin-foreign-origin", "POST", S, 403, "cross_site_request", "Origin", role="public",
         body={"email": "a@b.example", "password": "x"}, headers=(("Origin", "https://evil.example"),)),
    Case("signin-code-letters", "POST", f"{S}/code", 400, "validation_error", "code", role="public",
         body={"sign_in_id": "abcdefgh12", "code": "12a456"}),
    Case("signin-code-id-with-hash", "POST", f"{S}/code", 400, "validation_error", "sign_in_id", role="public",
         body={"sign_in_id": "abc#signin#x", "code": "123456"}),
    Case("signin-code-unknown-sign-in", "POST", f"{S}/code", 401, "sign_in_expired", role="public", counted=True,
         body={"sign_in_id": "zzzzzzzzzzzzzzzzzzzzzzzz", "code": "123456"}),
    Case("accept-token-without-secret", "POST", "/v1/auth/invitations/accept", 400, "validation_error", "token",
         role="public", body={"token": "abcdefgh12"}),
    Case("accept-token-unknown", "POST", "/v1/auth/invitations/accept", 404, "invitation_not_found", "token",
         role="public", body={"token": TOKEN, "password": "Good-Password-1"}),
    Case("reset-token-unknown", "POST", "/v1/auth/password/reset", 404, "reset_link_invalid", "token",
         role="public", body={"token": TOKEN, "password": "Good-Password-1"}),
    Case("reset-weak-password", "POST", "/v1/auth/password/reset", 422, "weak_password", "password",
         role="public", body={"token": TOKEN, "password": "short"}),
    Case("invite-pos-role", "POST", "/v1/invitations", 400, "validation_error", "role", role="admin",
         body={"email": "x@coffee.example", "role": "pos"}),
    Case("invite-agency-role-into-tenant", "POST", "/v1/invitations", 400, "validation_error", "role", role="admin",
         body={"email": "x@coffee.example", "role": "agency"}),
    Case("invite-cyrillic-address", "POST", "/v1/invitations", 400, "validation_error", "email", role="admin",
         body={"email": "анна@пример.рф", "role": "support"}),
    Case("member-unknown", "PATCH", "/v1/members/zzzzzzzzzzzzzzzzzzzz", 404, "not_found", role="admin",
         body={"role": "support"}),
    Case("member-unknown-status", "PATCH", "/v1/members/zzzzzzzzzzzzzzzzzzzz", 400, "validation_error", "status",
         role="admin", body={"status": "banned"}),
    Case("session-forged-token", "GET", "/v1/auth/session", 401, "invalid_session", role="public",
         headers=(("Authorization", "Session abc.def.ghi"),)),
    Case("session-route-with-a-key", "POST", "/v1/auth/sign-out", 403, "session_required", role="admin"),
    Case("audit-actor-oversize", "GET", "/v1/audit?actor=" + "a" * 255, 400, "validation_error", "actor",
         role="admin"),
]

CATALOGUE = (MALFORMED + TOP_LEVEL + TYPES + AMOUNTS + NAMES + PATHS + QUERIES + TEMPLATES + HTML_MAIL + DUPLICATES
             + VERIFICATION + PEOPLE)


def test_catalogue_ids_are_unique() -> None:
    ids = [c.id for c in CATALOGUE]
    assert len(ids) == len(set(ids)) and len(ids) >= 100




@pytest.mark.parametrize("case", [
    pytest.param(c, id=c.id) for c in CATALOGUE])
def test_bad_input_is_refused_with_its_error_and_writes_nothing(world: World, case: Case) -> None:
    run_case(world, case)


def test_oversize_body_is_413_and_a_body_of_exactly_the_limit_is_accepted(world: World) -> None:
    before = snapshot()
    body = json.dumps(_purchase(world.card)).encode()
    at_limit = body[:-1] + b" " * (MAX_BODY - len(body)) + b"}"
    assert len(at_limit) == MAX_BODY
    quoted = world.api.call("POST", "/v1/purchases/quote", world.a.pos, raw=at_limit)
    assert quoted.status_code == 200 and quoted.data["points_earned"] == 5, quoted.data
    for size in (MAX_BODY + 1, 10 * 1024 * 1024):
        raw = body[:-1] + b" " * (size - len(body)) + b"}"
        assert_error(world.api.call("POST", "/v1/purchases", world.a.pos, raw=raw), 413, "payload_too_large")
    assert_unchanged(before, snapshot())


def test_unicode_names_are_stored_and_returned_exactly(world: World) -> None:
    """Cyrillic, emoji with joiners, combining marks (not normalised), RTL scripts, 120 characters of 2 bytes."""
    names = {
        "first_name": "Анна-Мария Жёлтикова",
        "last_name": "Zoë 👩\u200d👩\u200d👧 O'Brien",
        "middle_name": "Jose\u0301",
    }
    for i, extra in enumerate(({}, {"first_name": "مريم", "last_name": "李小龙"}, {"first_name": "Ж" * 120})):
        body = {"email": f"unicode-{i}@example.com", **names, **extra}
        created = world.api.post("/v1/customers", world.a.pos, body)
        assert created.status_code == 201, created.data
        got = world.api.get(f"/v1/customers/{created.data['customer_id']}", world.a.support).data
        for key in ("first_name", "last_name", "middle_name"):
            assert got[key] == body[key] == created.data[key]
    assert got["middle_name"] != "Jos\u00e9", "stored as sent: NFD is not silently normalised to NFC"


def test_repeated_query_parameter_takes_the_last_value(world: World) -> None:
    ledger = f"/v1/cards/{world.card}/transactions"
    assert len(world.api.get(f"{ledger}?limit=1&limit=3", world.a.pos).data["items"]) == 3
    assert len(world.api.get(f"{ledger}?limit=3&limit=1", world.a.pos).data["items"]) == 1
    found = world.api.get("/v1/customers/lookup?phone=%2B79169998877&phone=%2B79161234567", world.a.pos)
    assert found.status_code == 200 and found.data["customer"]["customer_id"] == world.customer


def test_cursors_of_another_card_tenant_or_list_and_tampered_cursors_are_refused(world: World) -> None:
    api, a, b = world.api, world.a, world.b
    before = snapshot()
    mine = api.get(f"/v1/cards/{world.card}/transactions?limit=1", a.pos).data
    assert mine["has_more"] is True and mine["cursor"]
    _ok(api.post("/v1/stores", b.admin, {"id": "b-2", "name": "B2"}), 201)
    their_stores = api.get("/v1/stores?limit=1", b.admin).data["cursor"]
    stores = api.get("/v1/stores?limit=1", a.admin).data["cursor"]
    tampered = mine["cursor"][:-3] + ("AAA" if not mine["cursor"].endswith("AAA") else "BBB")
    snap_b = snapshot()
    for cursor, key, path in (
        (their_stores, a.admin, "/v1/stores"),
        (stores, a.pos, f"/v1/cards/{world.card}/transactions"),
        (mine["cursor"], b.pos, f"/v1/cards/{world.b_card}/transactions"),
        (tampered, a.pos, f"/v1/cards/{world.card}/transactions"),
    ):
        assert_error(api.get(f"{path}?limit=1&cursor={cursor}", key), 400, "validation_error", "cursor")
    assert_unchanged(snap_b, snapshot())
    rest = api.get(f"/v1/cards/{world.card}/transactions?limit=1&cursor={mine['cursor']}", a.pos)
    assert rest.status_code == 200 and rest.data["items"][0]["entry_id"] != mine["items"][0]["entry_id"]
    assert set(snapshot()) == set(before)


FORGED = {
    "sort-key-not-a-number": {"sk": {"N": "x"}},
    "sort-key-wrong-type": {"sk": {"N": "1"}},
    "sort-key-list": {"sk": {"S": ["x"]}},
    "sort-key-missing": {},
    "sort-key-empty": {"sk": {"S": ""}},
    "sort-key-two-types": {"sk": {"S": "entry#x", "N": "1"}},
    "extra-attribute": {"sk": {"S": "entry#x"}, "gsi1pk": {"S": "fuel-net#customers#00"}},
}


@pytest.mark.parametrize("forged", FORGED.values(), ids=FORGED.keys())
def test_forged_cursor_on_this_lists_own_partition_is_a_400(world: World, forged: dict[str, Any]) -> None:
    """The cursor format is visible (base64 JSON), so a client can forge one that names its own card's partition."""
    key = {"pk": {"S": f"{world.a.tenant_id}#card#{world.card}"}, **forged}
    cursor = base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")
    before = snapshot()
    r = world.api.get(f"/v1/cards/{world.card}/transactions?limit=1&cursor={cursor}", world.a.pos)
    assert_error(r, 400, "validation_error", "cursor")
    assert_unchanged(before, snapshot())


def test_same_receipt_same_body_replays_and_writes_nothing(world: World) -> None:
    before = snapshot()
    body = {"receipt_id": "seed-1", "card_number": world.card, "store_id": "msk-01", "total": 10000,
            "items": [{"sku": "latte", "category": "coffee", "amount": 10000}]}
    r = world.api.post("/v1/purchases", world.a.pos, body)
    assert r.status_code == 200 and r.data["replayed"] is True and r.data["points_earned"] == 5, r.data
    refund = world.api.post("/v1/refunds", world.a.pos, {"refund_id": "seed-r1", "receipt_id": "seed-1",
                                                         "amount": 1000})
    assert refund.status_code == 200 and refund.data["replayed"] is True, refund.data
    assert_unchanged(before, snapshot())


def test_path_id_over_dynamodb_key_limit_is_404_not_a_dynamodb_error(world: World, monkeypatch) -> None:
    """DynamoDB refuses a key over 2048 bytes on reads too (moto only on writes): reproduce that refusal."""
    real = BaseClient._make_api_call

    def like_dynamodb(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        keys = list((params.get("Key") or {}).values()) + list((params.get("ExpressionAttributeValues") or {}).values())
        if self.meta.service_model.service_name == "dynamodb" and any(len(json.dumps(k)) > 2048 for k in keys):
            raise ClientError({"Error": {"Code": "ValidationException", "Message": "One or more parameter values "
                                         "were invalid: Size of hashkey has exceeded the maximum size limit of "
                                         "2048 bytes"}}, operation)
        return real(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", like_dynamodb)
    for path in (f"/v1/cards/{'4' * 2100}", f"/v1/customers/{'c' * 2100}", f"/v1/cards/{'4' * 2100}/transactions"):
        assert_error(world.api.get(path, world.a.support), 404, "not_found", issue="longer than 256 bytes")


def test_nothing_was_lost_balance_and_ledger_reconcile_and_valid_requests_still_work(world: World) -> None:
    api, a = world.api, world.a
    assert api.get(f"/v1/cards/{world.card}", a.pos).data == world.seeded_card
    assert api.get(f"/v1/cards/{world.card}/transactions", a.pos).data["items"] == world.seeded_ledger
    for scope in (a.tenant_id, world.b.tenant_id):
        report = reconcile(scope)
        assert report.ok and report.cards >= 1 and report.entries >= 1, report.mismatches
    before = snapshot()
    bought = api.post("/v1/purchases", a.pos, _purchase(world.card, receipt_id="after-catalogue"))
    written = snapshot()
    assert written != before, "the snapshot sees writes, so 'unchanged' above means nothing was written"
    assert any("#receipt#after-catalogue" in item for item in written["dynamodb:loyalty-test-loyalty"])
    assert bought.status_code == 200 and bought.data["points_earned"] == 5, bought.data
    assert bought.data["balance"] + bought.data["pending"] == (
        world.seeded_card["balance"] + world.seeded_card["pending"] + 5)
    assert api.post("/v1/customers", a.pos, {"phone": "+79160000001", "first_name": "Анна"}).status_code == 201
    assert reconcile(a.tenant_id).ok
