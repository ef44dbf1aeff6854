"""The committed CloudFormation resources match the code and keep the safety settings on."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.errors import gateway_error
from chalicelib.storage.tables import TABLES
from infra import template


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    return json.loads(template.RESOURCES_PATH.read_text())["Resources"]


def _of_type(resources: dict[str, Any], cfn_type: str) -> dict[str, dict[str, Any]]:
    return {name: res for name, res in resources.items() if res.get("Type") == cfn_type}


def _table_for(resources: dict[str, Any], model: type) -> dict[str, Any]:
    wanted = model.Meta.table_name.replace("loyalty-test-", "loyalty-${Stage}-")
    matches = [
        res["Properties"]
        for res in _of_type(resources, "AWS::DynamoDB::Table").values()
        if res["Properties"]["TableName"] == {"Fn::Sub": wanted}
    ]
    assert len(matches) == 1, f"no single table named {wanted}"
    return matches[0]


def test_committed_file_is_fresh() -> None:
    assert template.RESOURCES_PATH.read_text() == template.render(), "run `python -m infra.template`"
    assert template.main(["--check"]) == 0


def test_every_model_has_exactly_one_table(resources: dict[str, Any]) -> None:
    assert len(_of_type(resources, "AWS::DynamoDB::Table")) == len(TABLES)


@pytest.mark.parametrize("model", list(TABLES), ids=lambda m: m.__name__)
def test_table_key_schema_matches_model(resources: dict[str, Any], model: type) -> None:
    props = _table_for(resources, model)
    expected_keys = [{"AttributeName": model._hash_key_attribute().attr_name, "KeyType": "HASH"}]
    if model._range_key_attribute() is not None:
        expected_keys.append({"AttributeName": model._range_key_attribute().attr_name, "KeyType": "RANGE"})
    assert props["KeySchema"] == expected_keys

    attributes = {a.attr_name: a.attr_type for a in model.get_attributes().values()}
    definitions = {d["AttributeName"]: d["AttributeType"] for d in props["AttributeDefinitions"]}
    assert len(definitions) == len(props["AttributeDefinitions"]), "duplicate attribute definitions"
    for name, attr_type in definitions.items():
        assert attributes[name] == attr_type

    indexes = {i["IndexName"]: i for i in props.get("GlobalSecondaryIndexes", [])}
    assert set(indexes) == {i.Meta.index_name for i in model._indexes.values()}
    for index in model._indexes.values():
        expected = [
            {"AttributeName": a.attr_name, "KeyType": "HASH" if a.is_hash_key else "RANGE"}
            for a in index.Meta.attributes.values()
            if a.is_hash_key or a.is_range_key
        ]
        expected.sort(key=lambda k: k["KeyType"] != "HASH")
        assert indexes[index.Meta.index_name]["KeySchema"] == expected
        for key in expected:
            assert key["AttributeName"] in definitions

    ttl = TABLES[model]
    if ttl is None:
        assert "TimeToLiveSpecification" not in props
    else:
        assert props["TimeToLiveSpecification"] == {"AttributeName": ttl, "Enabled": True}
        assert ttl in attributes


def test_every_table_is_protected(resources: dict[str, Any]) -> None:
    for name, res in _of_type(resources, "AWS::DynamoDB::Table").items():
        props = res["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST", name
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}, name
        assert props["SSESpecification"] == {"SSEEnabled": True}, name
        assert props["DeletionProtectionEnabled"] is True, name
        assert res["DeletionPolicy"] == "Retain", name


def test_every_queue_is_encrypted_and_has_a_dlq(resources: dict[str, Any]) -> None:
    queues = _of_type(resources, "AWS::SQS::Queue")
    dlqs = {
        props["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for props in (q["Properties"] for q in queues.values())
        if "RedrivePolicy" in props
    }
    assert queues and dlqs
    for name, queue in queues.items():
        props = queue["Properties"]
        assert props["SqsManagedSseEnabled"] is True, name
        if name in dlqs:
            assert "RedrivePolicy" not in props, "a dead-letter queue must not redrive further"
            continue
        assert props["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0] in queues, name
        assert 3 <= props["RedrivePolicy"]["maxReceiveCount"] <= 5, name
        assert props["VisibilityTimeout"] >= 6 * 30, f"{name}: six times the 30 s function timeout (AWS advice)"
    assert queues["JobsQueue"]["Properties"]["VisibilityTimeout"] >= 6 * 60, "the jobs worker runs up to 60 s"


def test_physical_names_follow_settings(resources: dict[str, Any]) -> None:
    from chalicelib.settings import settings

    names = {
        json.dumps(res["Properties"].get("TableName") or res["Properties"].get("QueueName")
                   or res["Properties"].get("BucketName"))
        for res in resources.values()
    }
    for physical in (settings.directory_table, settings.api_keys_table, settings.audit_table,
                     settings.jobs_queue, f"{settings.jobs_queue}-dlq", settings.reports_bucket):
        templated = physical.replace(f"loyalty-{settings.stage}-", "loyalty-${Stage}-")
        assert json.dumps({"Fn::Sub": templated}) in names, physical


def test_reports_bucket_is_private_encrypted_and_expiring(resources: dict[str, Any]) -> None:
    (bucket,) = _of_type(resources, "AWS::S3::Bucket").values()
    props = bucket["Properties"]
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert len(props["PublicAccessBlockConfiguration"]) == 4
    sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert sse["SSEAlgorithm"] == "AES256"
    rules = props["LifecycleConfiguration"]["Rules"]
    assert [(r["Status"], r["Prefix"], r["ExpirationInDays"]) for r in rules] == [
        ("Enabled", "reports/", 7), ("Enabled", "imports/", 7)], "reports and customer files (personal data) expire"

    (policy,) = _of_type(resources, "AWS::S3::BucketPolicy").values()
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


@pytest.mark.parametrize(
    ("response_type", "status", "code"),
    [
        ("UNAUTHORIZED", "401", "unauthorized"),
        ("ACCESS_DENIED", "403", "forbidden"),
        ("MISSING_AUTHENTICATION_TOKEN", "404", "not_found"),
        ("DEFAULT_4XX", None, "bad_request"),
        ("DEFAULT_5XX", None, "internal_error"),
    ],
)
def test_gateway_responses_use_our_error_shape(
    resources: dict[str, Any], response_type: str, status: str | None, code: str
) -> None:
    (props,) = [
        res["Properties"]
        for res in _of_type(resources, "AWS::ApiGateway::GatewayResponse").values()
        if res["Properties"]["ResponseType"] == response_type
    ]
    assert props["RestApiId"] == {"Ref": "RestAPI"}
    assert props.get("StatusCode") == status
    body = json.loads(props["ResponseTemplates"]["application/json"])
    assert body["error"]["code"] == code
    assert body == gateway_error(int(status or (400 if code == "bad_request" else 500)), "$context.requestId")


def test_sqs_workers_report_batch_item_failures_and_wait_for_their_queue(resources: dict[str, Any]) -> None:
    from chalice.app import SQSEventConfig
    from chalice.utils import to_cfn_resource_name

    from app import app

    workers = [s for s in app.event_sources if isinstance(s, SQSEventConfig)]
    assert workers
    for worker in workers:
        patch = resources[to_cfn_resource_name(worker.name)]
        assert "Type" not in patch, "a patch must merge into Chalice's function, not replace it"
        (event,) = patch["Properties"]["Events"].values()
        assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        (queue,) = patch["DependsOn"]
        assert resources[queue]["Type"] == "AWS::SQS::Queue"


def test_visibility_timeout_is_six_times_the_worker_timeout(resources: dict[str, Any]) -> None:
    config = json.loads((template.RESOURCES_PATH.parents[1] / ".chalice" / "config.json").read_text())
    jobs = resources["JobsQueue"]["Properties"]
    for stage, stage_config in config["stages"].items():
        worker = stage_config.get("lambda_functions", {}).get("jobs_worker", {})
        timeout = worker.get("lambda_timeout", stage_config.get("lambda_timeout", config.get("lambda_timeout", 60)))
        assert jobs["VisibilityTimeout"] >= 6 * timeout, stage


def test_reports_queue_outlasts_the_reports_worker_and_has_a_dlq(resources: dict[str, Any]) -> None:
    from chalicelib.domain.reporting import WORKER_TIMEOUT_SECONDS

    config = json.loads((template.RESOURCES_PATH.parents[1] / ".chalice" / "config.json").read_text())
    props = resources["ReportsQueue"]["Properties"]
    assert props["QueueName"] == {"Fn::Sub": "loyalty-${Stage}-reports"}
    assert props["SqsManagedSseEnabled"] is True
    assert props["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": ["ReportsDeadLetterQueue", "Arn"]},
                                      "maxReceiveCount": 3}
    dlq = resources["ReportsDeadLetterQueue"]["Properties"]
    assert dlq["SqsManagedSseEnabled"] is True and "RedrivePolicy" not in dlq
    for stage in ("dev", "prod"):
        worker = config["stages"][stage]["lambda_functions"]["reports_worker"]
        assert worker["lambda_timeout"] == WORKER_TIMEOUT_SECONDS == template.REPORTS_WORKER_TIMEOUT, stage
        assert props["VisibilityTimeout"] == 6 * worker["lambda_timeout"], stage
    for stage, stage_config in config["stages"].items():
        assert stage_config["environment_variables"]["REPORTS_QUEUE"] == f"loyalty-{stage}-reports", stage
    statements = {s["Sid"]: s for s in resources["DataAccessPolicy"]["Properties"]["PolicyDocument"]["Statement"]}
    assert {"Fn::GetAtt": ["ReportsQueue", "Arn"]} in statements["Jobs"]["Resource"]
    assert {"Fn::GetAtt": ["ReportsDeadLetterQueue", "Arn"]} not in statements["Jobs"]["Resource"]
    assert "s3:PutObject" in statements["Reports"]["Action"] and "s3:AbortMultipartUpload" in \
        statements["Reports"]["Action"]
    assert resources["ReportsWorker"]["DependsOn"] == ["ReportsQueue"]


def test_loyalty_table_indexes_the_ledger_by_day(resources: dict[str, Any]) -> None:
    from chalicelib.storage.tables import LoyaltyRecord

    props = _table_for(resources, LoyaltyRecord)
    (gsi2,) = [i for i in props["GlobalSecondaryIndexes"] if i["IndexName"] == "gsi2"]
    assert gsi2["KeySchema"] == [{"AttributeName": "gsi2pk", "KeyType": "HASH"},
                                 {"AttributeName": "gsi2sk", "KeyType": "RANGE"}]
    assert gsi2["Projection"] == {"ProjectionType": "ALL"}


def test_functions_may_use_the_data_and_nothing_else(resources: dict[str, Any]) -> None:
    policy = resources["DataAccessPolicy"]["Properties"]
    assert policy["Roles"] == [{"Ref": "DefaultRole"}]
    statements = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}
    table_refs = {r["Fn::GetAtt"][0] for r in statements["Tables"]["Resource"] if "Fn::GetAtt" in r}
    assert table_refs == set(_of_type(resources, "AWS::DynamoDB::Table"))
    assert not any(a.endswith("*") for s in statements.values() for a in s["Action"])
    assert "dynamodb:Scan" not in statements["Tables"]["Action"]
