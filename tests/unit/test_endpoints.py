"""Every AWS client takes its endpoint from configuration, per service (`AWS_ENDPOINT_URL_<SERVICE>`).

A moto server stands in for a DynamoDB/SQS/S3-compatible cloud; `AWS_ENDPOINT_URL` points at a port
where nothing listens, so a client that ignored the per-service variable would fail to connect.
"""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator

import pytest

from chalicelib.settings import settings
from chalicelib.storage import aws, queues, reports, tables, transactions
from chalicelib.storage.tables import TABLES, DirectoryRecord
from infra.local.moto_server import LocalMotoServer
from infra.local.resources import create_resources

SERVICES = ("DYNAMODB", "SQS", "S3", "SES", "SNS", "COGNITO_IDENTITY_PROVIDER")


def _unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _forget_clients() -> None:
    aws.reset_clients()
    queues.queue_url.cache_clear()
    transactions.reset_connection()
    for model in TABLES:
        model._connection = None


@pytest.fixture(scope="module")
def moto_server() -> Iterator[LocalMotoServer]:
    server = LocalMotoServer(port=0, transaction_shim=False)
    server.start()
    server.reset()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def per_service_endpoints(moto_server: LocalMotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_unused_port()}")
    for service in SERVICES:
        monkeypatch.setenv(f"AWS_ENDPOINT_URL_{service}", moto_server.url)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    _forget_clients()
    create_resources(stage="test")
    yield moto_server.url
    _forget_clients()


def test_pynamodb_and_boto3_reach_the_dynamodb_endpoint(per_service_endpoints: str) -> None:
    aws.client("dynamodb").put_item(
        TableName=settings.directory_table,
        Item={"pk": {"S": "bakery"}, "sk": {"S": "marker"}, "kind": {"S": "test"}},
    )
    found = tables.get_item(DirectoryRecord, "bakery", "marker")
    assert found is not None and found.kind == "test"
    assert DirectoryRecord._get_connection().connection.client.meta.endpoint_url == per_service_endpoints
    assert transactions.connection().client.meta.endpoint_url == per_service_endpoints


def test_sqs_send_reaches_the_sqs_endpoint(per_service_endpoints: str) -> None:
    queues.send(settings.jobs_queue, {"job": "probe"})
    sqs = aws.client("sqs")
    assert sqs.meta.endpoint_url == per_service_endpoints
    received = sqs.receive_message(QueueUrl=queues.queue_url(settings.jobs_queue), WaitTimeSeconds=0)
    assert [m["Body"] for m in received["Messages"]] == ['{"job":"probe"}']


def test_s3_objects_and_presigned_urls_use_the_s3_endpoint(per_service_endpoints: str) -> None:
    key = reports.file_key("bakery", "r1", "csv")
    aws.client("s3").put_object(Bucket=settings.reports_bucket, Key=key, Body=b"a,b\n1,2\n")
    url = reports.download_url("bakery", "r1", "csv", "r1.csv", 60)
    assert url.startswith(per_service_endpoints + "/")
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b"a,b\n1,2\n"
        assert response.headers["Content-Disposition"] == 'attachment; filename="r1.csv"'


@pytest.mark.parametrize("service", ["ses", "sns"])
def test_message_channels_use_their_endpoint(per_service_endpoints: str, service: str) -> None:
    assert aws.client(service).meta.endpoint_url == per_service_endpoints
    if service == "ses":
        aws.client("ses").verify_email_identity(EmailAddress="shop@example.com")
        assert "shop@example.com" in aws.client("ses").list_identities()["Identities"]
    else:
        assert "MessageId" in aws.client("sns").publish(PhoneNumber="+79161234567", Message="probe")


def test_without_per_service_variables_the_general_endpoint_is_used(
    moto_server: LocalMotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for service in SERVICES:
        monkeypatch.delenv(f"AWS_ENDPOINT_URL_{service}", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.url)
    _forget_clients()
    try:
        assert aws.client("s3").meta.endpoint_url == moto_server.url
        assert DirectoryRecord._get_connection().connection.client.meta.endpoint_url == moto_server.url
    finally:
        _forget_clients()
