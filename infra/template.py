"""Build `infra/resources.json`: the stack's data resources, derived from the code that uses them.

The DynamoDB tables come from the PynamoDB models in `chalicelib.storage.tables.TABLES`
(key schema, GSIs, TTL), so the deployed tables, the local moto tables and the models can
never drift apart; the queue, bucket and gateway responses are declared here. Physical names
follow `chalicelib/settings.py` (`loyalty-${Stage}-...`), with `Stage` a template parameter.

The output is merged into Chalice's SAM template:

    chalice package --stage dev --merge-template infra/resources.json build/

Usage: `python -m infra.template` rewrites the file; `--check` exits 1 when it is stale.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from pynamodb.models import Model

RESOURCES_PATH = Path(__file__).resolve().parent / "resources.json"
NAME_PREFIX = "loyalty-${Stage}"

# Lambda workers time out after 60 s; SQS needs >= 6x that so a slow batch is not redelivered mid-run.
JOBS_VISIBILITY_TIMEOUT = 360
JOBS_MAX_RECEIVE_COUNT = 5
DLQ_RETENTION_SECONDS = 14 * 24 * 3600
MAIL_VISIBILITY_TIMEOUT = 180
"""Six times the mail worker's timeout (30 s), as AWS advises for SQS event sources."""
MAIL_MAX_RECEIVE_COUNT = 4
"""A message that fails four times (a poison message) goes to the mail dead-letter queue."""
REPORTS_WORKER_TIMEOUT = 900
"""The reports worker's Lambda timeout (.chalice/config.json `lambda_functions.reports_worker`)."""
REPORTS_VISIBILITY_TIMEOUT = 6 * REPORTS_WORKER_TIMEOUT
REPORTS_MAX_RECEIVE_COUNT = 3
"""A report message that fails three times goes to the reports dead-letter queue."""
REPORTS_PREFIX = "reports/"
REPORTS_EXPIRE_DAYS = 7
IMPORTS_PREFIX = "imports/"
IMPORTS_EXPIRE_DAYS = 7
"""Uploaded customer files and their result files hold personal data: kept a week, then gone."""

# Gateway responses: (response type, status override or None to keep API Gateway's, status for our body).
GATEWAY_RESPONSES: list[tuple[str, int | None, int]] = [
    ("UNAUTHORIZED", 401, 401),
    ("ACCESS_DENIED", 403, 403),
    ("MISSING_AUTHENTICATION_TOKEN", 404, 404),  # API Gateway's answer to an unknown route
    ("RESOURCE_NOT_FOUND", 404, 404),
    ("REQUEST_TOO_LARGE", 413, 413),
    ("UNSUPPORTED_MEDIA_TYPE", 415, 415),
    ("THROTTLED", 429, 429),
    ("QUOTA_EXCEEDED", 429, 429),
    ("INTEGRATION_TIMEOUT", 504, 504),
    ("DEFAULT_4XX", None, 400),
    ("DEFAULT_5XX", None, 500),
]


def _sub(name: str) -> dict[str, str]:
    return {"Fn::Sub": name}


def _logical_id(suffix: str, kind: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[-_]", suffix)) + kind


def table_suffix(model: type[Model]) -> str:
    """The part of the table name after `loyalty-<stage>-`, as settings.py derives it."""
    from chalicelib.settings import settings

    name: str = model.Meta.table_name
    prefix = f"loyalty-{settings.stage}-"
    if not name.startswith(prefix):
        raise SystemExit(
            f"{model.__name__}.Meta.table_name is {name!r}, not {prefix}<suffix>: build the template without "
            "DIRECTORY_TABLE/API_KEYS_TABLE/AUDIT_TABLE overrides in the environment."
        )
    return name[len(prefix):]


def _key_schema(keys: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{"AttributeName": k["AttributeName"], "KeyType": k["KeyType"]} for k in keys]


def table_resource(model: type[Model], ttl_attribute: str | None) -> dict[str, Any]:
    schema = model._get_schema()
    definitions: dict[str, str] = {}
    for attr in schema["attribute_definitions"]:
        definitions.setdefault(attr["AttributeName"], attr["AttributeType"])
    for index in schema["global_secondary_indexes"] + schema["local_secondary_indexes"]:
        for attr in index["attribute_definitions"]:
            definitions.setdefault(attr["AttributeName"], attr["AttributeType"])
    properties: dict[str, Any] = {
        "TableName": _sub(f"{NAME_PREFIX}-{table_suffix(model)}"),
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": n, "AttributeType": t} for n, t in definitions.items()],
        "KeySchema": _key_schema(schema["key_schema"]),
    }
    if schema["global_secondary_indexes"]:
        properties["GlobalSecondaryIndexes"] = [
            {"IndexName": i["index_name"], "KeySchema": _key_schema(i["key_schema"]), "Projection": i["projection"]}
            for i in schema["global_secondary_indexes"]
        ]
    if schema["local_secondary_indexes"]:
        properties["LocalSecondaryIndexes"] = [
            {"IndexName": i["index_name"], "KeySchema": _key_schema(i["key_schema"]), "Projection": i["projection"]}
            for i in schema["local_secondary_indexes"]
        ]
    properties["PointInTimeRecoverySpecification"] = {"PointInTimeRecoveryEnabled": True}
    properties["SSESpecification"] = {"SSEEnabled": True}
    properties["DeletionProtectionEnabled"] = True
    if ttl_attribute:
        properties["TimeToLiveSpecification"] = {"AttributeName": ttl_attribute, "Enabled": True}
    # Retain: deleting the stack must never delete customer data.
    return {
        "Type": "AWS::DynamoDB::Table",
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": properties,
    }


def queue_resources() -> dict[str, Any]:
    return {
        "JobsDeadLetterQueue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": _sub(f"{NAME_PREFIX}-jobs-dlq"),
                "SqsManagedSseEnabled": True,
                "MessageRetentionPeriod": DLQ_RETENTION_SECONDS,
            },
        },
        "JobsQueue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": _sub(f"{NAME_PREFIX}-jobs"),
                "SqsManagedSseEnabled": True,
                "VisibilityTimeout": JOBS_VISIBILITY_TIMEOUT,
                "RedrivePolicy": {
                    "deadLetterTargetArn": {"Fn::GetAtt": ["JobsDeadLetterQueue", "Arn"]},
                    "maxReceiveCount": JOBS_MAX_RECEIVE_COUNT,
                },
            },
        },
        "MailDeadLetterQueue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": _sub(f"{NAME_PREFIX}-mail-dlq"),
                "SqsManagedSseEnabled": True,
                "MessageRetentionPeriod": DLQ_RETENTION_SECONDS,
            },
        },
        "MailQueue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": _sub(f"{NAME_PREFIX}-mail"),
                "SqsManagedSseEnabled": True,
                "VisibilityTimeout": MAIL_VISIBILITY_TIMEOUT,
                "RedrivePolicy": {
                    "deadLetterTargetArn": {"Fn::GetAtt": ["MailDeadLetterQueue", "Arn"]},
                    "maxReceiveCount": MAIL_MAX_RECEIVE_COUNT,
                },
            },
        },
        "ReportsDeadLetterQueue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": _sub(f"{NAME_PREFIX}-reports-dlq"),
                "SqsManagedSseEnabled": True,
                "MessageRetentionPeriod": DLQ_RETENTION_SECONDS,
            },
        },
        "ReportsQueue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": _sub(f"{NAME_PREFIX}-reports"),
                "SqsManagedSseEnabled": True,
                "VisibilityTimeout": REPORTS_VISIBILITY_TIMEOUT,
                "RedrivePolicy": {
                    "deadLetterTargetArn": {"Fn::GetAtt": ["ReportsDeadLetterQueue", "Arn"]},
                    "maxReceiveCount": REPORTS_MAX_RECEIVE_COUNT,
                },
            },
        },
    }


def bucket_resources() -> dict[str, Any]:
    bucket_arn = _sub(f"arn:${{AWS::Partition}}:s3:::{NAME_PREFIX}-reports")
    objects_arn = _sub(f"arn:${{AWS::Partition}}:s3:::{NAME_PREFIX}-reports/*")
    return {
        "ReportsBucket": {
            "Type": "AWS::S3::Bucket",
            "Properties": {
                "BucketName": _sub(f"{NAME_PREFIX}-reports"),
                "PublicAccessBlockConfiguration": {
                    "BlockPublicAcls": True,
                    "BlockPublicPolicy": True,
                    "IgnorePublicAcls": True,
                    "RestrictPublicBuckets": True,
                },
                "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
                "BucketEncryption": {
                    "ServerSideEncryptionConfiguration": [
                        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                    ]
                },
                "LifecycleConfiguration": {
                    "Rules": [
                        {
                            "Id": "expire-reports",
                            "Status": "Enabled",
                            "Prefix": REPORTS_PREFIX,
                            "ExpirationInDays": REPORTS_EXPIRE_DAYS,
                            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
                        },
                        {
                            "Id": "expire-imports",
                            "Status": "Enabled",
                            "Prefix": IMPORTS_PREFIX,
                            "ExpirationInDays": IMPORTS_EXPIRE_DAYS,
                            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
                        },
                    ]
                },
            },
        },
        "ReportsBucketPolicy": {
            "Type": "AWS::S3::BucketPolicy",
            "Properties": {
                "Bucket": {"Ref": "ReportsBucket"},
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "DenyInsecureTransport",
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "s3:*",
                            "Resource": [bucket_arn, objects_arn],
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                        }
                    ],
                },
            },
        },
    }


def data_access_policy(tables: dict[str, Any], queues: dict[str, Any]) -> dict[str, Any]:
    """Least-privilege data access for Chalice's DefaultRole (shared by the API, authorizer and workers).

    Chalice's policy autogeneration only sees boto3 calls in app.py, not PynamoDB's, so without
    this the deployed functions could not touch their tables.
    """
    table_arns: list[Any] = []
    for logical_id in tables:
        table_arns.append({"Fn::GetAtt": [logical_id, "Arn"]})
        table_arns.append({"Fn::Sub": f"${{{logical_id}.Arn}}/index/*"})
    work_queues = [logical_id for logical_id, res in queues.items() if "RedrivePolicy" in res["Properties"]]
    return {
        "DataAccessPolicy": {
            "Type": "AWS::IAM::Policy",
            "Properties": {
                "PolicyName": {"Fn::Sub": f"{NAME_PREFIX}-data-access"},
                "Roles": [{"Ref": "DefaultRole"}],  # the role Chalice generates when autogen_policy is on
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "Tables",
                            "Effect": "Allow",
                            "Action": [
                                "dynamodb:GetItem",
                                "dynamodb:BatchGetItem",
                                "dynamodb:Query",
                                "dynamodb:PutItem",
                                "dynamodb:UpdateItem",
                                "dynamodb:DeleteItem",
                                "dynamodb:BatchWriteItem",
                                "dynamodb:ConditionCheckItem",
                                "dynamodb:DescribeTable",
                            ],
                            "Resource": table_arns,
                        },
                        {
                            "Sid": "Jobs",
                            "Effect": "Allow",
                            "Action": [
                                "sqs:SendMessage",
                                "sqs:GetQueueUrl",
                                "sqs:GetQueueAttributes",
                                "sqs:ReceiveMessage",
                                "sqs:DeleteMessage",
                                "sqs:ChangeMessageVisibility",
                            ],
                            "Resource": [{"Fn::GetAtt": [q, "Arn"]} for q in work_queues],
                        },
                        {
                            "Sid": "Mail",
                            "Effect": "Allow",
                            "Action": ["ses:SendEmail", "ses:SendRawEmail", "ses:VerifyEmailIdentity", "sns:Publish"],
                            "Resource": "*",
                        },
                        {
                            "Sid": "Reports",
                            "Effect": "Allow",
                            "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                            "Resource": [
                                _sub(f"arn:${{AWS::Partition}}:s3:::{NAME_PREFIX}-reports/{REPORTS_PREFIX}*"),
                                _sub(f"arn:${{AWS::Partition}}:s3:::{NAME_PREFIX}-reports/{IMPORTS_PREFIX}*"),
                            ],
                        },
                    ],
                },
            },
        }
    }


def gateway_body(status: int) -> str:
    """Our error JSON for `status`, with API Gateway's request id substituted at response time."""
    from chalicelib.errors import gateway_error

    body = json.dumps(gateway_error(status, "$context.requestId"), separators=(",", ":"))
    # Gateway response templates only substitute $context/$stageVariables/$method; keep everything else literal.
    stray = re.sub(r"\$context\.requestId", "", body)
    if "$" in stray or "#" in stray:
        raise ValueError(f"gateway error message for {status} must not contain '$' or '#': {body}")
    return body


def gateway_responses() -> dict[str, Any]:
    resources: dict[str, Any] = {}
    for response_type, status, body_status in GATEWAY_RESPONSES:
        properties: dict[str, Any] = {
            "RestApiId": {"Ref": "RestAPI"},  # the logical id Chalice gives the REST API
            "ResponseType": response_type,
            "ResponseTemplates": {"application/json": gateway_body(body_status)},
        }
        if status is not None:
            properties["StatusCode"] = str(status)
        if response_type == "UNAUTHORIZED":
            properties["ResponseParameters"] = {"gatewayresponse.header.WWW-Authenticate": "'Bearer realm=\"loyalty\"'"}
        resources[_logical_id(response_type.lower(), "GatewayResponse")] = {
            "Type": "AWS::ApiGateway::GatewayResponse",
            "Properties": properties,
        }
    return resources


def worker_patches(queues: dict[str, Any]) -> dict[str, Any]:
    """Fragments deep-merged into the SAM functions Chalice generates for `@app.on_sqs_message` handlers.

    Chalice's SQS event source omits FunctionResponseTypes, so Lambda would ignore the workers'
    `batchItemFailures` and delete failed messages with the batch. It also names the queue by an
    ARN built from its name, which gives CloudFormation no ordering: DependsOn creates the queue
    before the function and its event source mapping. (Replacing the ARN is not possible: the
    merge is a deep dict merge, it would combine Fn::Sub and Fn::GetAtt into one invalid node.)
    """
    from chalice.app import SQSEventConfig
    from chalice.utils import to_cfn_resource_name

    from app import app
    from chalicelib.settings import settings

    by_name = {
        props["Properties"]["QueueName"]["Fn::Sub"].replace("${Stage}", settings.stage): logical_id
        for logical_id, props in queues.items()
    }
    patches: dict[str, Any] = {}
    for source in app.event_sources:
        if not isinstance(source, SQSEventConfig):
            continue
        patch: dict[str, Any] = {}
        if source.queue_arn is None:
            if source.queue not in by_name:
                raise SystemExit(f"worker {source.name} reads queue {source.queue!r}, which infra/ does not create")
            patch["DependsOn"] = [by_name[source.queue]]
        # Logical ids as chalice.package names them (deploy/appgraph.py: <name>-sqs-event-source).
        event_id = to_cfn_resource_name(f"{source.name}-sqs-event-source")
        patch["Properties"] = {
            "Events": {event_id: {"Properties": {"FunctionResponseTypes": ["ReportBatchItemFailures"]}}}
        }
        patches[to_cfn_resource_name(source.name)] = patch
    return patches


def build() -> dict[str, Any]:
    from chalicelib.storage.tables import TABLES

    tables = {_logical_id(table_suffix(model), "Table"): table_resource(model, ttl) for model, ttl in TABLES.items()}
    resources: dict[str, Any] = dict(tables)
    queues = queue_resources()
    resources.update(queues)
    resources.update(bucket_resources())
    resources.update(data_access_policy(tables, queues))
    resources.update(gateway_responses())
    resources.update(worker_patches(queues))
    return {
        "Parameters": {
            "Stage": {
                "Type": "String",
                "AllowedPattern": "^[a-z][a-z0-9-]{0,20}$",
                "Description": "Chalice stage (dev, prod): physical names are loyalty-<Stage>-<resource>.",
            }
        },
        "Resources": resources,
    }


def render() -> str:
    return json.dumps(build(), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if infra/resources.json is stale")
    args = parser.parse_args(argv)
    fresh = render()
    if args.check:
        current = RESOURCES_PATH.read_text() if RESOURCES_PATH.exists() else ""
        if current != fresh:
            print(f"{RESOURCES_PATH} is stale: run `python -m infra.template`", file=sys.stderr)
            return 1
        print(f"{RESOURCES_PATH} is up to date")
        return 0
    RESOURCES_PATH.write_text(fresh)
    print(f"wrote {RESOURCES_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
