"""The template `make package` deploys: Chalice's output merged with infra/resources.json, linted and checked.

`chalice package` runs once per session into a temporary directory (the same build as
`make package`, through `infra.package`). It needs the package index for the Lambda wheels
(Chalice caches them in .chalice/deployments, so later runs are quick); only when the index is
unreachable is the module skipped, with that reason.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra import package, template


def _index_reachable(tmp: Path) -> bool:
    probe = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--dest", str(tmp),
         "pynamodb==6.1.0"], capture_output=True, timeout=60, check=False,
    )
    return probe.returncode == 0


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, package.PackageSizes]]:
    out = tmp_path_factory.mktemp("package") / "build"
    try:
        sizes = package.build("dev", out)
    except subprocess.CalledProcessError:
        if not _index_reachable(tmp_path_factory.mktemp("probe")):
            pytest.skip("`chalice package` needs the package index (PyPI) for the Lambda wheels; it is unreachable")
        raise
    yield out, sizes


@pytest.fixture(scope="module")
def sam(built: tuple[Path, package.PackageSizes]) -> dict[str, Any]:
    return json.loads((built[0] / "sam.json").read_text())


@pytest.fixture(scope="module")
def resources(sam: dict[str, Any]) -> dict[str, Any]:
    return sam["Resources"]


def _of_type(resources: dict[str, Any], cfn_type: str) -> dict[str, dict[str, Any]]:
    return {name: res for name, res in resources.items() if res.get("Type") == cfn_type}


def test_cfn_lint_finds_no_errors(built: tuple[Path, package.PackageSizes]) -> None:
    from cfnlint.api import ManualArgs, lint_file

    matches = lint_file(built[0] / "sam.json", config=ManualArgs())
    errors = [f"{m.rule.id} {m.message} (line {m.linenumber})" for m in matches if m.rule.id.startswith("E")]
    warnings = [f"{m.rule.id} {m.message} (line {m.linenumber})" for m in matches if not m.rule.id.startswith("E")]
    print("cfn-lint warnings:", *warnings or ["none"], sep="\n  ")
    assert errors == []


def test_artifact_is_small_and_leaves_the_sdk_to_the_runtime(built: tuple[Path, package.PackageSizes]) -> None:
    out, sizes = built
    assert sizes.zipped == (out / "deployment.zip").stat().st_size <= package.SIZE_GOAL_BYTES
    with zipfile.ZipFile(out / "deployment.zip") as archive:
        tops = {name.split("/", 1)[0] for name in archive.namelist()}
    assert {"app.py", "chalicelib", "pynamodb", "pydantic"} <= tops
    assert not [t for t in tops if t.split("-", 1)[0] in package.RUNTIME_PROVIDED]
    assert {"boto3", "botocore"} <= set(sizes.stripped)
    with zipfile.ZipFile(out / "deployment.zip") as archive:
        kept = sorted(n.rsplit("/", 1)[1] for n in archive.namelist() if n.startswith(package.BABEL_LOCALE_DATA))
    assert kept == ["LICENSE.unicode", "en.dat", "root.dat", "ru.dat", "ru_RU.dat"], "the console languages only"


def test_the_kept_locale_data_is_enough_for_the_console() -> None:
    from chalicelib.console.locales import LOCALES

    assert set(LOCALES) <= package.BABEL_KEPT


def test_tables_are_protected(resources: dict[str, Any]) -> None:
    from chalicelib.storage.tables import TABLES

    tables = _of_type(resources, "AWS::DynamoDB::Table")
    assert len(tables) == len(TABLES)
    for name, table in tables.items():
        props = table["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST", name
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}, name
        assert props["SSESpecification"] == {"SSEEnabled": True}, name
        assert props["DeletionProtectionEnabled"] is True, name


def test_work_queues_have_a_dead_letter_queue_and_encryption(resources: dict[str, Any]) -> None:
    queues = _of_type(resources, "AWS::SQS::Queue")
    work = {name: q["Properties"] for name, q in queues.items() if not name.endswith("DeadLetterQueue")}
    assert set(work) == {"JobsQueue", "MailQueue", "ReportsQueue", "WebhooksQueue", "WalletQueue"}
    for name, props in work.items():
        dlq = props["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        assert queues[dlq]["Properties"]["SqsManagedSseEnabled"] is True, dlq
        assert props["SqsManagedSseEnabled"] is True, name
        assert props["RedrivePolicy"]["maxReceiveCount"] >= 3, name


def test_reports_bucket_is_private_encrypted_tls_only_and_expiring(resources: dict[str, Any]) -> None:
    props = resources["ReportsBucket"]["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert all(rule["ExpirationInDays"] <= 7 for rule in props["LifecycleConfiguration"]["Rules"])
    for policy in _of_type(resources, "AWS::S3::BucketPolicy").values():
        assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
                   for s in policy["Properties"]["PolicyDocument"]["Statement"])


def test_every_function_has_its_own_role_and_no_wildcard_data_grant(resources: dict[str, Any]) -> None:
    functions = _of_type(resources, "AWS::Serverless::Function")
    assert len(functions) == len(template.FUNCTIONS) == 11
    roles = [fn["Properties"]["Role"]["Fn::GetAtt"][0] for fn in functions.values()]
    assert len(set(roles)) == len(roles)
    assert all(resources[role]["Type"] == "AWS::IAM::Role" for role in roles)
    assert set(_of_type(resources, "AWS::IAM::Role")) == set(roles), "no DefaultRole or other role left over"
    assert template.policy_problems(resources) == []


def test_sqs_event_sources_report_partial_batch_failures(resources: dict[str, Any]) -> None:
    sources = [event["Properties"] for fn in _of_type(resources, "AWS::Serverless::Function").values()
               for event in fn["Properties"].get("Events", {}).values() if event["Type"] == "SQS"]
    assert len(sources) == 5
    assert all(source["FunctionResponseTypes"] == ["ReportBatchItemFailures"] for source in sources)


def test_every_schedule_exists(resources: dict[str, Any]) -> None:
    from chalice.app import ScheduledEventConfig
    from chalice.utils import to_cfn_resource_name

    from app import app

    schedules = [s for s in app.event_sources if isinstance(s, ScheduledEventConfig)]
    assert {s.name for s in schedules} >= {"daily_sweep", "mail_triggers", "nightly_reconciliation"}
    for schedule in schedules:
        events = resources[to_cfn_resource_name(schedule.name)]["Properties"]["Events"]
        assert [e["Type"] for e in events.values()] == ["Schedule"], schedule.name


def test_usage_plans_match_the_plan_limits(resources: dict[str, Any]) -> None:
    from chalicelib.domain.rate_limits import PLAN_LIMITS

    plans = [p["Properties"] for p in _of_type(resources, "AWS::ApiGateway::UsagePlan").values()]
    found = {p["UsagePlanName"]["Fn::Sub"].removeprefix("loyalty-${Stage}-"): p for p in plans}
    assert set(found) == set(PLAN_LIMITS)
    for plan, limits in PLAN_LIMITS.items():
        assert found[plan]["Throttle"] == {"RateLimit": limits.rate_per_second, "BurstLimit": limits.burst}
        assert found[plan]["Quota"] == {"Limit": limits.quota_per_day, "Period": "DAY"}
    api = resources["RestAPI"]
    assert api["Type"] == "AWS::Serverless::Api" and api["Properties"]["StageName"] == template.API_STAGE
    assert api["Properties"]["DefinitionBody"]["x-amazon-apigateway-api-key-source"] == "AUTHORIZER"
    assert "USAGE_PLAN_IDS" in resources["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert resources["APIHandler"]["Properties"]["Environment"]["Variables"]["STAGE"] == "dev", "Chalice's env kept"


def test_the_authorizer_is_attached_to_the_api(resources: dict[str, Any]) -> None:
    """Chalice names the `api_key_required` security scheme `api_key`: an authorizer of that name is overwritten."""
    body = resources["RestAPI"]["Properties"]["DefinitionBody"]
    name, _ = template.function_ids()[template.AUTHORIZER]
    assert body["securityDefinitions"][name].get("x-amazon-apigateway-authtype") == "custom", (
        f"the authorizer {name!r} is missing from the API's securityDefinitions: rename it in app.py")


def test_every_dead_letter_queue_and_worker_has_an_alarm(resources: dict[str, Any]) -> None:
    alarms = [a["Properties"] for a in _of_type(resources, "AWS::CloudWatch::Alarm").values()]
    watched = [(a.get("MetricName"), d["Value"]) for a in alarms for d in a.get("Dimensions", [])]
    for name, queue in _of_type(resources, "AWS::SQS::Queue").items():
        if name.endswith("DeadLetterQueue"):
            assert ("ApproximateNumberOfMessagesVisible", queue["Properties"]["QueueName"]) in watched, name
    ids = template.function_ids()
    for key in template.WORKERS:
        assert ("Errors", {"Ref": ids[key][1]}) in watched, key


def test_the_staff_pool_reaches_the_functions_and_the_outputs(sam: dict[str, Any]) -> None:
    resources = sam["Resources"]
    assert resources["StaffUserPool"]["Properties"]["MfaConfiguration"] == "OPTIONAL"
    assert resources["StaffIdentityProvider"]["Condition"] == resources["StaffUserPoolDomain"]["Condition"] == "StaffSso"
    for name, fn in _of_type(resources, "AWS::Serverless::Function").items():
        variables = fn["Properties"]["Environment"]["Variables"]
        assert variables["STAFF_POOL_ID"] == {"Ref": "StaffUserPool"}, name
        assert variables["STAFF_CLIENT_ID"] == {"Ref": "StaffUserPoolClient"}, name
        assert variables["STAGE"] == "dev", f"{name}: Chalice's environment kept beside the template's"
    assert {"StaffUserPoolId", "StaffUserPoolClientId", "EndpointURL"} <= set(sam["Outputs"])
    assert {"StaffSsoType", "StaffAdvancedSecurity", "Stage"} <= set(sam["Parameters"])
