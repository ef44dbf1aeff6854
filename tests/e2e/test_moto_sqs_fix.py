"""The dev-only SQS send fix (infra/local/moto_patches.py): SendMessage stops reading every queued message,
and nothing a client can observe changes."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from infra.local import moto_patches


@pytest.fixture(params=[False, True], ids=["moto", "fixed"])
def sqs(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    was = moto_patches.is_sqs_send_fix_installed()
    (moto_patches.install_sqs_send_fix if request.param else moto_patches.uninstall_sqs_send_fix)()
    try:
        with mock_aws():
            yield boto3.client("sqs", region_name="eu-central-1")
    finally:
        (moto_patches.install_sqs_send_fix if was else moto_patches.uninstall_sqs_send_fix)()


def _count(sqs: object, url: str) -> dict[str, str]:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]  # type: ignore[attr-defined]
    return {k: attrs[k] for k in ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed")}


def test_standard_queue_counts_delays_and_bodies_are_unchanged(sqs: object) -> None:
    url = sqs.create_queue(QueueName="q")["QueueUrl"]  # type: ignore[attr-defined]
    for start in range(0, 30, 10):
        sent = sqs.send_message_batch(QueueUrl=url, Entries=[  # type: ignore[attr-defined]
            {"Id": str(i), "MessageBody": f"m{start + i}"} for i in range(10)])
        assert len(sent["Successful"]) == 10
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=600)  # type: ignore[attr-defined]
    assert _count(sqs, url) == {"ApproximateNumberOfMessages": "30", "ApproximateNumberOfMessagesDelayed": "1"}
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]  # type: ignore[attr-defined]
    assert [m["Body"] for m in got] == [f"m{i}" for i in range(10)]


def test_fifo_content_based_deduplication_and_group_id_rules_still_hold(sqs: object) -> None:
    url = sqs.create_queue(QueueName="f.fifo", Attributes={  # type: ignore[attr-defined]
        "FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]
    for _ in range(3):
        sqs.send_message(QueueUrl=url, MessageBody="same", MessageGroupId="g")  # type: ignore[attr-defined]
    assert _count(sqs, url)["ApproximateNumberOfMessages"] == "1"
    plain = sqs.create_queue(QueueName="p.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]  # type: ignore
    with pytest.raises(sqs.exceptions.ClientError, match="ContentBasedDeduplication"):  # type: ignore[attr-defined]
        sqs.send_message(QueueUrl=plain, MessageBody="x", MessageGroupId="g")  # type: ignore[attr-defined]


def test_install_is_idempotent_and_uninstall_restores_moto() -> None:
    from moto.sqs.models import Queue, SQSBackend

    was = moto_patches.is_sqs_send_fix_installed()
    moto_patches.uninstall_sqs_send_fix()
    original_send, original_attributes = SQSBackend.send_message, Queue.__dict__["attributes"]
    try:
        moto_patches.install_sqs_send_fix()
        moto_patches.install_sqs_send_fix()
        assert moto_patches.is_sqs_send_fix_installed()
        moto_patches.uninstall_sqs_send_fix()
        assert SQSBackend.send_message is original_send and Queue.__dict__["attributes"] is original_attributes
    finally:
        (moto_patches.install_sqs_send_fix if was else moto_patches.uninstall_sqs_send_fix)()
