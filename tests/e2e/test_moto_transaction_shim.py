"""The dev-only moto transaction shim (infra/local/moto_patches.py) keeps TransactWriteItems all-or-nothing.

Every scenario runs on shimmed moto and, where the outcome is compared, on moto as is: the shim must
only change how the rollback is made, never what a transaction does or answers.
"""

from __future__ import annotations

import contextlib
import copy
import functools
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import moto
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.models.table import Table

from infra.local import moto_patches
from infra.local.moto_patches import (
    MotoVersionError,
    install_transaction_shim,
    is_transaction_shim_installed,
    uninstall_transaction_shim,
)
from infra.local.moto_server import LocalMotoServer

REGION = "eu-central-1"
OTHER_REGION = "eu-west-1"  # the unshimmed twin of a comparison lives here
MAIN = "main"  # pk + sk, GSI by_g on gsi1pk/gsi1sk
FLAT = "flat"  # pk only, with a stream
GSI = "by_g"


def _create_tables(ddb: Any) -> None:
    ddb.create_table(
        TableName=MAIN,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk", "gsi1pk", "gsi1sk")],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[{
            "IndexName": GSI,
            "KeySchema": [{"AttributeName": "gsi1pk", "KeyType": "HASH"}, {"AttributeName": "gsi1sk", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "ALL"},
        }],
    )
    ddb.create_table(
        TableName=FLAT,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )


@functools.cache
def _client(region: str = REGION, validate: bool = True) -> Any:
    """Cached: creating a boto3 client costs more than a transaction. moto intercepts it whenever mock_aws is on."""
    return boto3.client("dynamodb", region_name=region, config=Config(parameter_validation=validate))


@contextlib.contextmanager
def _shim(on: bool) -> Iterator[None]:
    """The shim on or off for the block, then back to how the test found it."""
    was = is_transaction_shim_installed()
    (install_transaction_shim if on else uninstall_transaction_shim)()
    try:
        yield
    finally:
        (install_transaction_shim if was else uninstall_transaction_shim)()


@pytest.fixture
def shimmed() -> Iterator[None]:
    with _shim(True):
        yield


@pytest.fixture
def ddb(shimmed: None) -> Iterator[Any]:
    with mock_aws():
        client = _client()
        _create_tables(client)
        yield client


def _key(pk: str, sk: str | None = None) -> dict[str, Any]:
    return {"pk": {"S": pk}} | ({"sk": {"S": sk}} if sk is not None else {})


def _get(ddb: Any, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
    return ddb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")


def _scan(ddb: Any, table: str) -> list[dict[str, Any]]:
    return sorted(ddb.scan(TableName=table, ConsistentRead=True)["Items"], key=repr)


def _gsi(ddb: Any, value: str) -> list[dict[str, Any]]:
    return ddb.query(TableName=MAIN, IndexName=GSI, KeyConditionExpression="gsi1pk = :g",
                     ExpressionAttributeValues={":g": {"S": value}})["Items"]


def _transact(ddb: Any, items: list[dict[str, Any]]) -> tuple[str, ...] | tuple[str, str, Any]:
    """("ok",) or (error code, message, CancellationReasons)."""
    try:
        ddb.transact_write_items(TransactItems=items)
    except ClientError as err:
        return err.response["Error"]["Code"], err.response["Error"]["Message"], err.response.get("CancellationReasons")
    return ("ok",)


def _seed(ddb: Any) -> None:
    ddb.put_item(TableName=MAIN, Item=_key("card", "a") | {"v": {"N": "1"}, "gsi1pk": {"S": "x"}, "gsi1sk": {"S": "a"}})
    ddb.put_item(TableName=MAIN, Item=_key("card", "gone") | {"v": {"N": "7"}})
    ddb.put_item(TableName=MAIN, Item=_key("guard", "g") | {"v": {"N": "0"}})
    ddb.put_item(TableName=FLAT, Item=_key("f1") | {"v": {"N": "1"}})


def _update(table: str, key: dict[str, Any], expression: str, values: dict[str, Any], condition: str | None = None,
            **extra: Any) -> dict[str, Any]:
    op = {"TableName": table, "Key": key, "UpdateExpression": expression, "ExpressionAttributeValues": values, **extra}
    if condition:
        op["ConditionExpression"] = condition
    return {"Update": op}


# Updates A (and moves it in the GSI), puts B (into the GSI), deletes C, then fails on the guard's condition.
FAILING_PURCHASE = [
    _update(MAIN, _key("card", "a"), "SET v = v + :d, gsi1pk = :y", {":d": {"N": "5"}, ":y": {"S": "y"}}),
    {"Put": {"TableName": MAIN, "Item": _key("card", "b") | {"v": {"N": "1"}, "gsi1pk": {"S": "y"}, "gsi1sk": {"S": "b"}},
             "ConditionExpression": "attribute_not_exists(pk)"}},
    {"Delete": {"TableName": MAIN, "Key": _key("card", "gone")}},
    _update(MAIN, _key("guard", "g"), "SET v = v + :d", {":d": {"N": "1"}, ":old": {"N": "99"}}, "v = :old",
            ReturnValuesOnConditionCheckFailure="ALL_OLD"),
]
FAILING_REASONS = [
    {"Code": "None"},
    {"Code": "None"},
    {"Code": "None"},
    {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed",
     "Item": {"pk": {"S": "guard"}, "sk": {"S": "g"}, "v": {"N": "0"}}},
]


def test_failed_transaction_restores_every_item_it_touched(ddb: Any) -> None:
    _seed(ddb)
    before = _scan(ddb, MAIN), _scan(ddb, FLAT)

    code, _, reasons = _transact(ddb, FAILING_PURCHASE)

    assert code == "TransactionCanceledException"
    assert reasons == FAILING_REASONS
    assert (_scan(ddb, MAIN), _scan(ddb, FLAT)) == before
    assert _get(ddb, MAIN, _key("card", "a")) == _key("card", "a") | {"v": {"N": "1"}, "gsi1pk": {"S": "x"},
                                                                      "gsi1sk": {"S": "a"}}
    assert _get(ddb, MAIN, _key("card", "b")) is None
    assert _get(ddb, MAIN, _key("card", "gone")) == _key("card", "gone") | {"v": {"N": "7"}}


def test_gsi_is_consistent_after_rollback(ddb: Any) -> None:
    _seed(ddb)
    _transact(ddb, FAILING_PURCHASE)
    assert [i["sk"]["S"] for i in _gsi(ddb, "x")] == ["a"]
    assert _gsi(ddb, "y") == []


def test_successful_transaction_applies_every_item(ddb: Any) -> None:
    _seed(ddb)
    ok = [*FAILING_PURCHASE[:3], _update(MAIN, _key("guard", "g"), "SET v = v + :d", {":d": {"N": "1"}, ":old": {"N": "0"}},
                                         "v = :old")]
    assert _transact(ddb, ok) == ("ok",)
    assert _get(ddb, MAIN, _key("card", "a"))["v"] == {"N": "6"}
    assert _get(ddb, MAIN, _key("card", "b")) is not None
    assert _get(ddb, MAIN, _key("card", "gone")) is None
    assert _get(ddb, MAIN, _key("guard", "g"))["v"] == {"N": "1"}
    assert sorted(i["sk"]["S"] for i in _gsi(ddb, "y")) == ["a", "b"]
    assert _gsi(ddb, "x") == []


def test_condition_check_only(ddb: Any) -> None:
    _seed(ddb)
    check = {"ConditionCheck": {"TableName": FLAT, "Key": _key("f1"), "ConditionExpression": "v = :v",
                                "ExpressionAttributeValues": {":v": {"N": "1"}}}}
    assert _transact(ddb, [check]) == ("ok",)
    check["ConditionCheck"]["ExpressionAttributeValues"] = {":v": {"N": "2"}}
    code, _, reasons = _transact(ddb, [check])
    assert code == "TransactionCanceledException"
    assert reasons == [{"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"}]
    assert _scan(ddb, FLAT) == [_key("f1") | {"v": {"N": "1"}}]


def test_two_tables_roll_back_together(ddb: Any) -> None:
    _seed(ddb)
    before = _scan(ddb, MAIN), _scan(ddb, FLAT)
    items = [
        _update(FLAT, _key("f1"), "SET v = :n", {":n": {"N": "100"}}),
        {"Put": {"TableName": FLAT, "Item": _key("f2") | {"v": {"N": "2"}}}},
        {"Delete": {"TableName": FLAT, "Key": _key("f1-missing")}},
        {"Put": {"TableName": MAIN, "Item": _key("card", "new")}},
        {"ConditionCheck": {"TableName": MAIN, "Key": _key("card", "a"), "ConditionExpression": "attribute_not_exists(pk)"}},
    ]
    code, _, reasons = _transact(ddb, items)
    assert code == "TransactionCanceledException"
    assert [r["Code"] for r in reasons] == ["None", "None", "None", "None", "ConditionalCheckFailed"]
    assert (_scan(ddb, MAIN), _scan(ddb, FLAT)) == before


def test_rollback_drops_the_stream_records_of_the_failed_transaction(ddb: Any) -> None:
    _seed(ddb)
    shard = dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION].tables[FLAT].stream_shard
    before = [r.to_json()["dynamodb"]["SequenceNumber"] for r in shard.items]
    items = [{"Put": {"TableName": FLAT, "Item": _key("f2")}},
             {"ConditionCheck": {"TableName": FLAT, "Key": _key("f1"), "ConditionExpression": "attribute_not_exists(pk)"}}]
    assert _transact(ddb, items)[0] == "TransactionCanceledException"
    assert [r.to_json()["dynamodb"]["SequenceNumber"] for r in shard.items] == before
    assert _transact(ddb, items[:1]) == ("ok",)
    assert len(shard.items) == len(before) + 1


def test_duplicate_item_is_a_validation_error_and_changes_nothing(ddb: Any) -> None:
    _seed(ddb)
    before = _scan(ddb, MAIN)
    items = [_update(MAIN, _key("card", "a"), "SET v = :n", {":n": {"N": "0"}}),
             {"ConditionCheck": {"TableName": MAIN, "Key": _key("card", "a"), "ConditionExpression": "attribute_exists(pk)"}}]
    code, message, _ = _transact(ddb, items)
    assert (code, message) == ("ValidationException", "Transaction request cannot include multiple operations on one item")
    assert _scan(ddb, MAIN) == before


def test_more_than_100_items_is_refused(ddb: Any) -> None:
    items = [{"Put": {"TableName": FLAT, "Item": _key(f"k{i}")}} for i in range(101)]
    code, message, _ = _transact(ddb, items)
    assert code == "ValidationException" and "less than or equal to 100" in message
    assert _scan(ddb, FLAT) == []


def test_an_item_with_two_operations_rolls_back_the_earlier_items(ddb: Any) -> None:
    """Unlike moto as is, which leaves item 1 applied: moto raises this outside its own rollback."""
    _seed(ddb)
    before = _scan(ddb, FLAT)
    two_ops = {"Put": {"TableName": FLAT, "Item": _key("f3")},
               "ConditionCheck": {"TableName": FLAT, "Key": _key("f1"), "ConditionExpression": "attribute_exists(pk)"}}
    client = _client(validate=False)  # botocore would refuse it
    code, _, _ = _transact(client, [{"Put": {"TableName": FLAT, "Item": _key("f2")}}, two_ops])
    assert code == "ValidationException"
    assert _scan(ddb, FLAT) == before


def test_no_table_is_copied(ddb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The point of the shim: a transaction, failed or not, never deep-copies a table."""
    _seed(ddb)

    def refuse(self: Table, memo: dict[int, Any]) -> Table:
        raise AssertionError(f"table {self.name} deep-copied")

    monkeypatch.setattr(Table, "__deepcopy__", refuse, raising=False)
    assert _transact(ddb, FAILING_PURCHASE)[0] == "TransactionCanceledException"
    assert _transact(ddb, FAILING_PURCHASE[:3]) == ("ok",)
    with _shim(False), pytest.raises(AssertionError, match="deep-copied"):  # moto as is does copy
        _client().transact_write_items(TransactItems=FAILING_PURCHASE[:1])


def test_install_is_idempotent_and_uninstall_restores_moto() -> None:
    with _shim(False):
        from moto.dynamodb import models

        original = models.DynamoDBBackend.transact_write_items
        install_transaction_shim()
        install_transaction_shim()
        assert is_transaction_shim_installed()
        uninstall_transaction_shim()
        assert models.DynamoDBBackend.transact_write_items is original
        assert models.copy is copy


def test_install_refuses_another_moto_version(monkeypatch: pytest.MonkeyPatch) -> None:
    with _shim(False):  # the patches below are undone before _shim puts the shim back, if it was installed
        with monkeypatch.context() as patch:
            patch.setattr(moto, "__version__", "5.2.6")
            with pytest.raises(MotoVersionError, match=r"5\.2\.5"):
                install_transaction_shim()
        assert not is_transaction_shim_installed()
        with monkeypatch.context() as patch:
            patch.setattr(moto_patches, "TRANSACT_WRITE_ITEMS_SHA256", "0" * 64)
            with pytest.raises(MotoVersionError, match="source"):
                install_transaction_shim()
        assert not is_transaction_shim_installed()


def test_through_the_locked_moto_server() -> None:
    with _shim(False):
        server = LocalMotoServer(port=0)
        server.start()
        try:
            server.reset()
            assert is_transaction_shim_installed()
            client = boto3.client("dynamodb", endpoint_url=server.url, region_name=REGION,
                                  aws_access_key_id="local", aws_secret_access_key="local")
            _create_tables(client)
            _seed(client)
            before = _scan(client, MAIN), _scan(client, FLAT)
            code, _, reasons = _transact(client, FAILING_PURCHASE)
            assert code == "TransactionCanceledException"
            assert reasons == FAILING_REASONS
            assert (_scan(client, MAIN), _scan(client, FLAT)) == before
            assert _gsi(client, "y") == []
        finally:
            server.stop()
        assert not is_transaction_shim_installed()  # this server installed it, so it took it away


def test_moto_server_without_the_shim() -> None:
    with _shim(False):
        server = LocalMotoServer(port=0, transaction_shim=False)
        server.start()
        try:
            assert not is_transaction_shim_installed()
        finally:
            server.stop()


# --- Shimmed and unshimmed moto agree on random transaction sequences -------------------------------------

PKS = ("a", "b", "c")
SKS = ("1", "2")
CONDITIONS = (None, "attribute_exists(pk)", "attribute_not_exists(pk)", "v = :c", "v < :c", "attribute_exists(gsi1pk)")
UPDATES = (
    ("SET v = if_not_exists(v, :z) + :d", (":z", ":d")),
    ("SET v = v + :d", (":d",)),  # fails on an item without v, after moto has created it: a mid-item error
    ("SET gsi1pk = :g, gsi1sk = :s", (":g", ":s")),
    ("REMOVE gsi1pk", ()),
)
VALUES = {":z": {"N": "0"}, ":d": {"N": "1"}, ":s": {"S": "s"}}


@st.composite
def transact_item(draw: Callable[..., Any]) -> dict[str, Any]:
    table = draw(st.sampled_from((MAIN, FLAT)))
    key = _key(draw(st.sampled_from(PKS)), draw(st.sampled_from(SKS)) if table == MAIN else None)
    kind = draw(st.sampled_from(("Put", "Update", "Delete", "ConditionCheck")))
    condition = draw(st.sampled_from(CONDITIONS[1:] if kind == "ConditionCheck" else CONDITIONS))
    values: dict[str, Any] = {}
    op: dict[str, Any] = {"TableName": table}
    if kind == "Put":
        item = key | {"v": {"N": str(draw(st.integers(0, 3)))}}
        if draw(st.booleans()):
            item |= {"gsi1pk": {"S": draw(st.sampled_from(("x", "y")))}, "gsi1sk": {"S": "s"}}
        op["Item"] = item
    else:
        op["Key"] = key
    if kind == "Update":
        expression, names = draw(st.sampled_from(UPDATES))
        op["UpdateExpression"] = expression
        values |= {n: VALUES.get(n) or {"S": draw(st.sampled_from(("x", "y")))} for n in names}
    if condition is not None:
        op["ConditionExpression"] = condition
        if ":c" in condition:
            values[":c"] = {"N": str(draw(st.integers(0, 3)))}
        if draw(st.booleans()):
            op["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    if values:
        op["ExpressionAttributeValues"] = values
    return {kind: op}


def _state(client: Any, region: str) -> Any:
    """Everything a client can read, plus moto's partitions (empty ones included) and stream records."""
    tables = dynamodb_backends[DEFAULT_ACCOUNT_ID][region].tables
    partitions = {repr(h): sorted(map(repr, part)) for h, part in tables[MAIN].items.items()}
    varying = ("ApproximateCreationDateTime", "SizeBytes")  # SizeBytes counts the timestamp's digits
    stream = [(r.record["eventName"], {k: v for k, v in r.record["dynamodb"].items() if k not in varying})
              for r in tables[FLAT].stream_shard.items]
    return _scan(client, MAIN), _scan(client, FLAT), _gsi(client, "x"), _gsi(client, "y"), partitions, stream


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(transact_item(), min_size=1, max_size=4), min_size=1, max_size=8))
def test_shimmed_and_unshimmed_moto_agree(transactions: list[list[dict[str, Any]]]) -> None:
    with mock_aws():
        runs = []
        for region, shim in ((REGION, True), (OTHER_REGION, False)):
            client = _client(region)
            _create_tables(client)
            with _shim(shim):
                outcomes = [_transact(client, items) for items in transactions]
                runs.append((outcomes, _state(client, region)))
        (shim_outcomes, shim_state), (moto_outcomes, moto_state) = runs
        assert shim_outcomes == moto_outcomes
        assert shim_state == moto_state
        for outcome in shim_outcomes:  # shown by --hypothesis-show-statistics: failures must be common
            reasons = outcome[2] if len(outcome) == 3 else None
            event(f"{outcome[0]} {sorted({r['Code'] for r in reasons})}" if reasons else outcome[0])
