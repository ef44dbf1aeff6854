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
                     settings.jobs_queue, f"{settings.jobs_queue}-dlq", settings.reports_bucket,
                     settings.assets_bucket):
        templated = physical.replace(f"loyalty-{settings.stage}-", "loyalty-${Stage}-")
        assert json.dumps({"Fn::Sub": templated}) in names, physical


def test_reports_bucket_is_private_encrypted_and_expiring(resources: dict[str, Any]) -> None:
    assert set(_of_type(resources, "AWS::S3::Bucket")) == {"ReportsBucket", "AssetsBucket"}
    props = resources["ReportsBucket"]["Properties"]
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert len(props["PublicAccessBlockConfiguration"]) == 4
    sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert sse["SSEAlgorithm"] == "AES256"
    rules = props["LifecycleConfiguration"]["Rules"]
    assert [(r["Status"], r["Prefix"], r["ExpirationInDays"]) for r in rules] == [
        ("Enabled", "reports/", 7), ("Enabled", "imports/", 7), ("Enabled", "downloads/", 1)
    ], "reports, customer files and one-off downloads (personal data) expire"

    for policy in _of_type(resources, "AWS::S3::BucketPolicy").values():
        (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
        assert statement["Effect"] == "Deny"
        assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_assets_bucket_is_private_encrypted_versioned_and_reached_only_by_the_api(resources: dict[str, Any]) -> None:
    props = resources["AssetsBucket"]["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert sse["SSEAlgorithm"] == "AES256"
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert [r["NoncurrentVersionExpiration"] for r in props["LifecycleConfiguration"]["Rules"]] == [
        {"NoncurrentDays": 30}], "images are kept; only deleted ones are forgotten"
    assert resources["AssetsBucketPolicy"]["Properties"]["Bucket"] == {"Ref": "AssetsBucket"}
    grants = {name: [s for s in role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
                     if s["Sid"] == "ObjectsAssets"]
              for name, role in _of_type(resources, "AWS::IAM::Role").items()}
    holders = {name: found for name, found in grants.items() if found}
    assert len(holders) == 1, "only the API's handler touches the images"
    [[statement]] = holders.values()
    assert statement["Action"] == ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    assert statement["Resource"] == [{"Fn::Sub": "arn:${AWS::Partition}:s3:::loyalty-${Stage}-assets/tenants/*"}]


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
    statements = _statements(resources, "ReportsWorker")
    assert statements["QueueReceive"]["Resource"] == [{"Fn::GetAtt": ["ReportsQueue", "Arn"]}]
    assert {"s3:PutObject", "s3:AbortMultipartUpload"} <= set(statements["ObjectsReports"]["Action"])
    assert {"Fn::GetAtt": ["ReportsQueue", "Arn"]} in _statements(resources, "APIHandler")["QueuesSend"]["Resource"]
    assert resources["ReportsWorker"]["DependsOn"] == ["ReportsQueue"]


def test_loyalty_table_indexes_the_ledger_by_day(resources: dict[str, Any]) -> None:
    from chalicelib.storage.tables import LoyaltyRecord

    props = _table_for(resources, LoyaltyRecord)
    (gsi2,) = [i for i in props["GlobalSecondaryIndexes"] if i["IndexName"] == "gsi2"]
    assert gsi2["KeySchema"] == [{"AttributeName": "gsi2pk", "KeyType": "HASH"},
                                 {"AttributeName": "gsi2sk", "KeyType": "RANGE"}]
    assert gsi2["Projection"] == {"ProjectionType": "ALL"}


def _statements(resources: dict[str, Any], function: str) -> dict[str, dict[str, Any]]:
    (policy,) = resources[f"{function}Role"]["Properties"]["Policies"]
    return {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}


def _granted_tables(statement: dict[str, Any]) -> set[str]:
    return {r["Fn::GetAtt"][0] for r in statement["Resource"] if "Fn::GetAtt" in r}


def test_every_function_of_the_app_has_its_own_role(resources: dict[str, Any]) -> None:
    ids = template.function_ids()
    assert set(ids) == set(template.FUNCTIONS)
    assert {"jobs_worker", "mail_worker", "reports_worker", "daily_sweep", "mail_triggers"} <= set(ids)
    roles = set(_of_type(resources, "AWS::IAM::Role"))
    assert roles == {f"{logical_id}Role" for _, logical_id in ids.values()}
    for name, logical_id in ids.values():
        patch = resources[logical_id]
        assert "Type" not in patch, "a patch must merge into Chalice's function, not replace it"
        assert patch["Properties"]["Role"] == {"Fn::GetAtt": [f"{logical_id}Role", "Arn"]}
        assert patch["Properties"]["FunctionName"] == {"Fn::Sub": f"loyalty-${{Stage}}-{name}"}
        logs = _statements(resources, logical_id)["Logs"]
        assert {"Fn::Sub": f"arn:${{AWS::Partition}}:logs:${{AWS::Region}}:${{AWS::AccountId}}:log-group:"
                           f"/aws/lambda/loyalty-${{Stage}}-{name}:*"} in logs["Resource"]
    assert not _of_type(resources, "AWS::IAM::Policy"), "no policy shared by several functions"
    assert "DefaultRole" not in json.dumps(resources)


def test_chalice_does_not_make_its_own_role() -> None:
    config = json.loads((template.RESOURCES_PATH.parents[1] / ".chalice" / "config.json").read_text())
    assert config["manage_iam_role"] is False
    assert config["iam_role_arn"].startswith("arn:aws:iam::"), "a placeholder, replaced by the merge"
    for stage in config["stages"].values():
        assert "manage_iam_role" not in stage and "iam_role_arn" not in stage


def test_no_wildcard_actions_and_no_data_action_on_every_resource(resources: dict[str, Any]) -> None:
    assert template.policy_problems(resources) == []
    bad = {"R": {"Type": "AWS::IAM::Role", "Properties": {"Policies": [{"PolicyDocument": {"Statement": [
        {"Effect": "Allow", "Action": ["sqs:ReceiveMessage"], "Resource": "*"},
        {"Effect": "Allow", "Action": "dynamodb:*", "Resource": ["arn:aws:dynamodb:::table/t"]},
        {"Effect": "Allow", "Action": ["sns:Publish"], "Resource": "*"},
    ]}}]}}}
    assert template.policy_problems(bad) == ["R: sqs:ReceiveMessage on ['*']", "R: action dynamodb:*"]


def test_least_privilege_per_function(resources: dict[str, Any]) -> None:
    tables = set(_of_type(resources, "AWS::DynamoDB::Table"))
    authorizer = _statements(resources, template.function_ids()[template.AUTHORIZER][1])
    assert set(authorizer) == {"Logs", "TablesRead", "TablesWrite"}, "keys and tenants read; sessions read, touched"
    assert _granted_tables(authorizer["TablesRead"]) == {"ApiKeysTable", "DirectoryTable", "IdentityTable"}
    assert _granted_tables(authorizer["TablesWrite"]) == {"IdentityTable"}

    api = _statements(resources, "APIHandler")
    assert _granted_tables(api["TablesWrite"]) == tables
    assert "TablesScan" not in api and "QueueReceive" not in api and "SendEmail" not in api
    assert api["ObjectsReports"]["Action"] == ["s3:GetObject"], "presigned downloads only"
    assert "apigateway:POST" in api["UsageKeys"]["Action"]
    assert {r["Fn::Sub"].rsplit("::", 1)[1] for r in api["UsageKeys"]["Resource"]} == {
        "/apikeys", "/apikeys/*", "/usageplans/*/keys", "/usageplans/*/keys/*"}

    jobs = _statements(resources, "JobsWorker")
    assert _granted_tables(jobs["TablesScan"]) == {"LoyaltyTable", "PeopleTable"}, "only the tenant purge scans"
    assert jobs["QueueReceive"]["Resource"] == [{"Fn::GetAtt": ["JobsQueue", "Arn"]}]

    mail = _statements(resources, "MailWorker")
    assert "TablesWrite" in mail and _granted_tables(mail["TablesWrite"]) == {"LoyaltyTable"}
    assert "PeopleTable" in _granted_tables(mail["TablesRead"])
    assert mail["SendEmail"]["Action"] == ["ses:SendEmail", "ses:SendRawEmail"]
    for schedule in ("DailySweep", "MailTriggers"):
        statements = _statements(resources, schedule)
        assert statements["QueuesSend"]["Resource"] == [{"Fn::GetAtt": ["JobsQueue", "Arn"]}]
        assert not any(sid.startswith("Objects") for sid in statements)
    for name in ("UsageKeys", "VerifySender", "SendSms"):
        holders = [r for r in _of_type(resources, "AWS::IAM::Role") if name in _statements(resources, r[:-4])]
        assert len(holders) == 1, name


def test_usage_plans_match_the_plan_limits(resources: dict[str, Any]) -> None:
    from chalicelib.domain.rate_limits import PLAN_LIMITS

    plans = {res["Properties"]["UsagePlanName"]["Fn::Sub"].rsplit("-", 1)[1]: (name, res["Properties"])
             for name, res in _of_type(resources, "AWS::ApiGateway::UsagePlan").items()}
    assert set(plans) == set(PLAN_LIMITS)
    ids = json.loads(resources["APIHandler"]["Properties"]["Environment"]["Variables"]["USAGE_PLAN_IDS"]["Fn::Sub"])
    for plan, limits in PLAN_LIMITS.items():
        logical_id, props = plans[plan]
        assert props["Throttle"] == {"RateLimit": limits.rate_per_second, "BurstLimit": limits.burst}
        assert props["Quota"] == {"Limit": limits.quota_per_day, "Period": "DAY"}
        assert props["ApiStages"] == [{"ApiId": {"Ref": "RestAPI"}, "Stage": {"Ref": "RestAPI.Stage"}}]
        assert ids[plan] == f"${{{logical_id}}}"


def test_rest_api_takes_usage_keys_from_the_authorizer_and_has_a_stage_throttle(resources: dict[str, Any]) -> None:
    from chalicelib.domain.rate_limits import PLAN_LIMITS

    api = resources["RestAPI"]
    assert "Type" not in api, "merged into Chalice's AWS::Serverless::Api"
    assert api["Properties"]["DefinitionBody"]["x-amazon-apigateway-api-key-source"] == "AUTHORIZER"
    (setting,) = api["Properties"]["MethodSettings"]
    assert setting["ResourcePath"] == "/*" and setting["HttpMethod"] == "*"
    assert setting["ThrottlingRateLimit"] > max(limits.rate_per_second for limits in PLAN_LIMITS.values())


@pytest.mark.parametrize(("response_type", "seconds"), [("THROTTLED", "'1'"), ("QUOTA_EXCEEDED", "'3600'")])
def test_429_gateway_responses_say_when_to_retry(resources: dict[str, Any], response_type: str, seconds: str) -> None:
    (props,) = [res["Properties"] for res in _of_type(resources, "AWS::ApiGateway::GatewayResponse").values()
                if res["Properties"]["ResponseType"] == response_type]
    assert props["StatusCode"] == "429"
    assert props["ResponseParameters"] == {"gatewayresponse.header.Retry-After": seconds}


def _alarms(resources: dict[str, Any]) -> list[dict[str, Any]]:
    return [res["Properties"] for res in _of_type(resources, "AWS::CloudWatch::Alarm").values()]


def _dimension(alarm: dict[str, Any], name: str) -> Any:
    return next((d["Value"] for d in alarm.get("Dimensions", []) if d["Name"] == name), None)


def test_alarms_cover_dlqs_workers_throttles_5xx_and_queue_age(resources: dict[str, Any]) -> None:
    alarms = _alarms(resources)
    for alarm in alarms:
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
        assert alarm["AlarmName"]["Fn::Sub"].startswith("loyalty-${Stage}-")
    queues = _of_type(resources, "AWS::SQS::Queue")
    dlqs = [q for q in queues.values() if "RedrivePolicy" not in q["Properties"]]
    for dlq in dlqs:
        assert any(a.get("MetricName") == "ApproximateNumberOfMessagesVisible"
                   and _dimension(a, "QueueName") == dlq["Properties"]["QueueName"] and a["Threshold"] == 0
                   for a in alarms), dlq
    for queue in (q for q in queues.values() if "RedrivePolicy" in q["Properties"]):
        assert any(a.get("MetricName") == "ApproximateAgeOfOldestMessage"
                   and _dimension(a, "QueueName") == queue["Properties"]["QueueName"] for a in alarms), queue
    ids = template.function_ids()
    for key in template.WORKERS:
        assert any(a.get("MetricName") == "Errors" and _dimension(a, "FunctionName") == {"Ref": ids[key][1]}
                   for a in alarms), key
    for _, logical_id in ids.values():
        assert any(a.get("MetricName") == "Throttles" and _dimension(a, "FunctionName") == {"Ref": logical_id}
                   for a in alarms), logical_id
    (rate,) = [a for a in alarms if "Metrics" in a and a["AlarmName"]["Fn::Sub"].endswith("api-5xx-rate")]
    names = {m["MetricStat"]["Metric"]["MetricName"] for m in rate["Metrics"] if "MetricStat" in m}
    assert names == {"5XXError", "Count"} and rate["Threshold"] == 1
    assert resources["AlarmEmailSubscription"]["Condition"] == "HasAlarmEmail"



def test_nightly_reconciliation_is_scheduled_with_its_own_role_and_alarms_on_any_mismatch(
        resources: dict[str, Any]) -> None:
    from chalice.app import ScheduledEventConfig

    from app import app

    (schedule,) = [s for s in app.event_sources
                   if isinstance(s, ScheduledEventConfig) and s.name == "nightly_reconciliation"]
    assert schedule.schedule_expression.to_string() == "cron(0 3 * * ? *)", "nightly, after the 02:00 sweep"
    statements = _statements(resources, "NightlyReconciliation")
    assert set(statements) == {"Logs", "TablesRead", "QueuesSend"}, "lists tenants, queues jobs; never scans"
    assert _granted_tables(statements["TablesRead"]) == {"DirectoryTable"}
    assert statements["QueuesSend"]["Resource"] == [{"Fn::GetAtt": ["JobsQueue", "Arn"]}]
    assert "NightlyReconciliationErrorsAlarm" in resources

    alarm = resources["ReconciliationMismatchesAlarm"]["Properties"]
    assert {k: alarm[k] for k in ("Namespace", "MetricName", "Dimensions", "Statistic", "Period", "Threshold",
                                  "ComparisonOperator", "AlarmActions", "TreatMissingData")} == {
        "Namespace": "Loyalty", "MetricName": "ReconciliationMismatches",
        "Dimensions": [{"Name": "service", "Value": "loyalty"}], "Statistic": "Sum", "Period": 86400,
        "Threshold": 0, "ComparisonOperator": "GreaterThanThreshold", "AlarmActions": [{"Ref": "AlarmTopic"}],
        "TreatMissingData": "notBreaching"}
    assert alarm["AlarmName"] == {"Fn::Sub": "loyalty-${Stage}-reconciliation-mismatches"}
