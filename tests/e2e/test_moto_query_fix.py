"""The local server's query fix (infra/local/moto_patches.py): a Query reads its partition, results unchanged.

The same scenario (queries on the table and on an index, paged both ways,
interleaved with every kind of write: put, update moving an item between
index partitions, delete, batch write, a cancelled transaction) runs against a
server with the fix and one without; every answer must be the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from infra.local import moto_patches
from infra.local.moto_server import LocalMotoServer

TABLE = "t"


def _client(url: str) -> Any:
    return boto3.client("dynamodb", region_name="eu-central-1", endpoint_url=url)


def _pages(ddb: Any, **kwargs: Any) -> list[list[str]]:
    pages = []
    while True:
        page = ddb.query(TableName=TABLE, **kwargs)
        pages.append([f"{i['pk']['S']}/{i['sk']['S']}" for i in page["Items"]])
        if "LastEvaluatedKey" not in page:
            return pages
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _queries(ddb: Any) -> list[Any]:
    out: list[Any] = []
    for pk in ("p0", "p1", "missing"):
        for forward in (True, False):
            out.append(_pages(ddb, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": pk}},
                              Limit=7, ScanIndexForward=forward))
    out.append(_pages(ddb, KeyConditionExpression="pk = :p AND sk BETWEEN :a AND :b",
                      ExpressionAttributeValues={":p": {"S": "p2"}, ":a": {"S": "s05"}, ":b": {"S": "s14"}}))
    for group in ("g0", "g1", "g3", "none"):
        for forward in (True, False):
            out.append(_pages(ddb, IndexName="by_group", KeyConditionExpression="gpk = :g",
                              ExpressionAttributeValues={":g": {"S": group}}, Limit=5, ScanIndexForward=forward))
    out.append(_pages(ddb, IndexName="by_group", KeyConditionExpression="gpk = :g AND gsk >= :s",
                      ExpressionAttributeValues={":g": {"S": "g2"}, ":s": {"N": "30"}}))
    return out


def scenario(url: str) -> list[Any]:
    ddb = _client(url)
    ddb.create_table(
        TableName=TABLE, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": t}
                              for n, t in (("pk", "S"), ("sk", "S"), ("gpk", "S"), ("gsk", "N"))],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[{"IndexName": "by_group", "Projection": {"ProjectionType": "ALL"},
                                 "KeySchema": [{"AttributeName": "gpk", "KeyType": "HASH"},
                                               {"AttributeName": "gsk", "KeyType": "RANGE"}]}])
    for i in range(60):
        item = {"pk": {"S": f"p{i % 3}"}, "sk": {"S": f"s{i:02d}"}}
        if i % 5:  # every fifth item is not in the index
            item |= {"gpk": {"S": f"g{i % 4}"}, "gsk": {"N": str(i)}}
        ddb.put_item(TableName=TABLE, Item=item)
    results = [_queries(ddb)]
    ddb.update_item(TableName=TABLE, Key={"pk": {"S": "p1"}, "sk": {"S": "s01"}},
                    UpdateExpression="SET gpk = :g", ExpressionAttributeValues={":g": {"S": "g3"}})
    ddb.delete_item(TableName=TABLE, Key={"pk": {"S": "p0"}, "sk": {"S": "s03"}})
    ddb.put_item(TableName=TABLE, Item={"pk": {"S": "p0"}, "sk": {"S": "s99"}, "gpk": {"S": "g0"}, "gsk": {"N": "1"}})
    ddb.batch_write_item(RequestItems={TABLE: [
        {"PutRequest": {"Item": {"pk": {"S": "p1"}, "sk": {"S": f"b{i}"}, "gpk": {"S": "g1"}, "gsk": {"N": str(i)}}}}
        for i in range(3)]})
    with pytest.raises(ClientError) as cancelled:
        ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": TABLE, "Item": {"pk": {"S": "p2"}, "sk": {"S": "tx"}, "gpk": {"S": "g0"},
                                                  "gsk": {"N": "0"}}}},
            {"Update": {"TableName": TABLE, "Key": {"pk": {"S": "p2"}, "sk": {"S": "s02"}},
                        "UpdateExpression": "SET gpk = :g", "ConditionExpression": "attribute_not_exists(pk)",
                        "ExpressionAttributeValues": {":g": {"S": "g1"}}}}])
    assert cancelled.value.response["Error"]["Code"] == "TransactionCanceledException"
    results.append(_queries(ddb))
    return results


@pytest.fixture(scope="module")
def answers() -> Iterator[dict[str, list[Any]]]:
    was = moto_patches.is_query_fix_installed()
    out: dict[str, list[Any]] = {}
    with pytest.MonkeyPatch.context() as env:
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            env.setenv(name, "testing")
        env.delenv("AWS_ENDPOINT_URL", raising=False)
        try:
            moto_patches.uninstall_query_fix()
            for label, shim in (("moto", False), ("fixed", True)):
                with LocalMotoServer(port=0, transaction_shim=shim) as server:
                    server.reset()
                    assert moto_patches.is_query_fix_installed() is shim
                    out[label] = scenario(server.url)
                    server.reset()
            yield out
        finally:
            (moto_patches.install_query_fix if was else moto_patches.uninstall_query_fix)()


def test_every_query_answer_is_moto_own(answers: dict[str, list[Any]]) -> None:
    assert answers["fixed"] == answers["moto"]


def test_the_answers_see_every_write(answers: dict[str, list[Any]]) -> None:
    before, after = answers["fixed"]
    group3_before = [key for page in before[7 + 4] for key in page]  # g3, forward
    group3_after = [key for page in after[7 + 4] for key in page]
    assert "p1/s01" not in group3_before and group3_after[0] == "p1/s01"  # moved into g3 by the update (gsk 1)
    group0_after = [key for page in after[7] for key in page]
    assert group0_after[0] == "p0/s99" and "p2/tx" not in group0_after  # the put is in, the cancelled put is not
    assert [key for page in after[0] for key in page].count("p0/s03") == 0  # deleted
    assert [key for page in after[2] for key in page][:3] == ["p1/b0", "p1/b1", "p1/b2"]  # batch-written
    assert [len(page) for page in before[0]] == [7, 7, 6]  # 20 items of p0, pages of 7


def test_install_is_idempotent_and_uninstall_restores_moto() -> None:
    from moto.dynamodb.models.table import Table

    was = moto_patches.is_query_fix_installed()
    try:
        moto_patches.uninstall_query_fix()
        original = Table.query
        moto_patches.install_query_fix()
        moto_patches.install_query_fix()
        assert Table.query is not original and moto_patches.is_query_fix_installed()
        moto_patches.uninstall_query_fix()
        assert Table.query is original
    finally:
        (moto_patches.install_query_fix if was else moto_patches.uninstall_query_fix)()
