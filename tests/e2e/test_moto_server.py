"""The serialised, recording moto server behind the local stack (infra/local/moto_server.py), in-process."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from infra.local.moto_server import LocalMotoServer, ReplayError

REGION = "eu-central-1"


def _client(server: LocalMotoServer, service: str) -> Any:
    return boto3.session.Session().client(
        service,
        endpoint_url=server.url,
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(max_pool_connections=64, retries={"max_attempts": 1}),
    )


def _create_table(ddb: Any, name: str = "t") -> None:
    ddb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LocalMotoServer]:
    running = LocalMotoServer(port=0, recording_path=tmp_path / "recording.log")
    running.start()
    running.reset()  # moto's backends are per process: start from nothing
    try:
        yield running
    finally:
        running.stop()


def test_parallel_transactions_on_one_item_are_serialised(server: LocalMotoServer) -> None:
    """Unlocked, moto crashes ("dictionary changed size during iteration") or lets two writers win."""
    ddb = _client(server, "dynamodb")
    _create_table(ddb)
    for n in range(0, 200, 25):  # a bigger table makes moto's copy-for-rollback slower, races likelier
        ddb.batch_write_item(
            RequestItems={"t": [{"PutRequest": {"Item": {"pk": {"S": f"filler-{n + i}"}}}} for i in range(25)]}
        )
    writers = 24
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # make interleavings likely
    try:
        for trial in range(6):
            ddb.put_item(TableName="t", Item={"pk": {"S": "acct"}, "version": {"N": "1"}})
            barrier = threading.Barrier(writers)
            errors: list[str] = []

            def write(i: int, trial: int = trial, barrier: threading.Barrier = barrier, errors: list[str] = errors) -> int:
                barrier.wait()
                try:
                    ddb.transact_write_items(
                        TransactItems=[
                            {"Put": {"TableName": "t", "Item": {"pk": {"S": "acct"}, "version": {"N": "2"}},
                                     "ConditionExpression": "version = :v",
                                     "ExpressionAttributeValues": {":v": {"N": "1"}}}},
                            {"Put": {"TableName": "t", "Item": {"pk": {"S": f"tx-{trial}-{i}"}}}},
                        ]
                    )
                    return 1
                except ddb.exceptions.TransactionCanceledException:
                    return 0
                except Exception as exc:  # anything else is moto breaking under concurrency
                    errors.append(repr(exc))
                    return 0

            with ThreadPoolExecutor(writers) as pool:
                winners = sum(pool.map(write, range(writers)))
            assert errors == []
            assert winners == 1, f"trial {trial}: {winners} writers won the same version"
    finally:
        sys.setswitchinterval(old_interval)


def test_a_long_poll_does_not_block_other_requests(server: LocalMotoServer) -> None:
    sqs, ddb = _client(server, "sqs"), _client(server, "dynamodb")
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    _create_table(ddb)
    polled: dict[str, Any] = {}

    def poll() -> None:
        started = time.monotonic()
        polled["messages"] = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=3).get("Messages", [])
        polled["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=poll)
    thread.start()
    time.sleep(0.3)
    started = time.monotonic()
    ddb.put_item(TableName="t", Item={"pk": {"S": "x"}})
    sqs.send_message(QueueUrl=url, MessageBody="hello")
    assert time.monotonic() - started < 1.0, "a long poll held the server lock"
    thread.join(10)
    assert [m["Body"] for m in polled["messages"]] == ["hello"], "the long poll must return the message sent meanwhile"
    assert polled["seconds"] < 2.5


def test_an_empty_long_poll_waits_its_time(server: LocalMotoServer) -> None:
    sqs = _client(server, "sqs")
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    started = time.monotonic()
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", []) == []
    assert 0.9 <= time.monotonic() - started < 3


def test_only_durable_writes_are_recorded_and_replay_restores_them(server: LocalMotoServer) -> None:
    ddb, sqs, s3 = _client(server, "dynamodb"), _client(server, "sqs"), _client(server, "s3")
    server.start_recording()
    _create_table(ddb)
    ddb.put_item(TableName="t", Item={"pk": {"S": "kept"}, "n": {"N": "1"}})
    ddb.put_item(TableName="t", Item={"pk": {"S": "gone"}})
    ddb.delete_item(TableName="t", Key={"pk": {"S": "gone"}})
    ddb.get_item(TableName="t", Key={"pk": {"S": "kept"}})
    ddb.scan(TableName="t")
    s3.create_bucket(Bucket="bkt-local", CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket="bkt-local", Key="reports/a.csv", Body=b"a,b\n1,2\n")
    s3.get_object(Bucket="bkt-local", Key="reports/a.csv")
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="not kept")
    server.stop_recording()
    ddb.put_item(TableName="t", Item={"pk": {"S": "after-stop"}})

    lines = [json.loads(line) for line in server.recording_path.read_text().splitlines()]  # type: ignore[union-attr]
    targets = [e["headers"].get("X-Amz-Target", e["method"]) for e in lines]
    assert targets == [
        "DynamoDB_20120810.CreateTable",
        "DynamoDB_20120810.PutItem",
        "DynamoDB_20120810.PutItem",
        "DynamoDB_20120810.DeleteItem",
        "PUT",
        "PUT",
    ]

    server.reset()
    result = server.replay()
    assert result.requests == 6 and not result.dropped_torn_line
    items = {i["pk"]["S"] for i in ddb.scan(TableName="t")["Items"]}
    assert items == {"kept"}
    assert s3.get_object(Bucket="bkt-local", Key="reports/a.csv")["Body"].read() == b"a,b\n1,2\n"
    assert sqs.list_queues().get("QueueUrls", []) == []


def test_a_torn_last_line_is_dropped_and_the_file_repaired(server: LocalMotoServer) -> None:
    ddb = _client(server, "dynamodb")
    server.start_recording()
    _create_table(ddb)
    server.stop_recording()
    path = server.recording_path
    assert path is not None
    with path.open("a") as file:
        file.write('{"headers": {"X-Amz-Target": "DynamoDB_2012')  # killed mid-write
    server.reset()
    result = server.replay()
    assert result.dropped_torn_line and result.requests == 1
    assert path.read_text().endswith("}\n") and len(path.read_text().splitlines()) == 1
    assert ddb.list_tables()["TableNames"] == ["t"]


def test_a_corrupt_recording_fails_the_replay(server: LocalMotoServer) -> None:
    path = server.recording_path
    assert path is not None
    path.write_text("garbage\n{}\n")
    with pytest.raises(ReplayError, match="line 1"):
        server.replay()
