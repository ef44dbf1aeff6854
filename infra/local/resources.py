"""Create the stack's tables, queues and bucket from `infra/resources.json` against any AWS endpoint.

The deployed stack and the local/test one share that single template, so a table,
index or queue setting cannot exist in one and not the other. Only what an emulator
needs is interpreted: DynamoDB tables (keys, GSIs, TTL), SQS queues (with the DLQ
redrive) and the S3 bucket; API Gateway responses and bucket policies are skipped.

Clients are created on each call, never at import, so this works inside moto's
in-process `mock_aws()` (tests) and against a moto server via `AWS_ENDPOINT_URL`.
Every step is idempotent: what already exists is left alone.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

DEFAULT_TEMPLATE = Path(__file__).resolve().parents[1] / "resources.json"


def _region() -> str:
    return os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or "eu-central-1"


class _Resolver:
    """Resolves the few intrinsic functions the template uses (Fn::Sub, Fn::GetAtt Arn, Ref)."""

    def __init__(self, stage: str, region: str, session: boto3.session.Session) -> None:
        self.params = {
            "Stage": stage, "AWS::Region": region, "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"
        }
        self.session = session
        self.arns: dict[str, str] = {}

    def _param(self, name: str) -> str:
        if name == "AWS::AccountId" and name not in self.params:
            sts = self.session.client("sts", region_name=self.params["AWS::Region"])
            self.params[name] = sts.get_caller_identity()["Account"]
        if name not in self.params:
            raise ValueError(f"cannot resolve ${{{name}}} locally")
        return self.params[name]

    def __call__(self, value: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            (fn, arg), = value.items()
            if fn == "Fn::Sub" and isinstance(arg, str):
                return re.sub(r"\$\{([^}!]+)\}", lambda m: self._param(m.group(1)), arg)
            if fn == "Fn::GetAtt" and arg[1] == "Arn" and arg[0] in self.arns:
                return self.arns[arg[0]]
            if fn == "Ref" and isinstance(arg, str):
                return self.params.get(arg, arg)
        if isinstance(value, dict):
            return {k: self(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self(v) for v in value]
        return value


def _create_table(ddb: Any, props: dict[str, Any]) -> str:
    name = str(props["TableName"])
    kwargs: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }
    for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if props.get(key):
            kwargs[key] = props[key]
    try:
        ddb.create_table(**kwargs)
    except ClientError as err:
        if err.response["Error"]["Code"] != "ResourceInUseException":
            raise
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        current = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        if current.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            ddb.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True}
            )
    return name


def _create_queue(sqs: Any, props: dict[str, Any]) -> str:
    name = str(props["QueueName"])
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError as err:
        if "NonExistentQueue" not in err.response["Error"]["Code"]:
            raise
        attributes: dict[str, str] = {
            key: str(props[key]).lower() if isinstance(props[key], bool) else str(props[key])
            for key in ("VisibilityTimeout", "MessageRetentionPeriod", "SqsManagedSseEnabled", "DelaySeconds")
            if key in props
        }
        if "RedrivePolicy" in props:
            attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


def _create_bucket(s3: Any, props: dict[str, Any], region: str) -> str:
    name = str(props["BucketName"])
    try:
        s3.head_bucket(Bucket=name)
        return name
    except ClientError as err:
        if err.response["Error"]["Code"] not in ("404", "NoSuchBucket", "NotFound"):
            raise
    kwargs: dict[str, Any] = {"Bucket": name}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**kwargs)
    if "PublicAccessBlockConfiguration" in props:
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"])
    if "BucketEncryption" in props:
        s3.put_bucket_encryption(
            Bucket=name,
            ServerSideEncryptionConfiguration={
                "Rules": [
                    {"ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"]}
                    for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
                ]
            },
        )
    rules = props.get("LifecycleConfiguration", {}).get("Rules", [])
    if rules:
        s3.put_bucket_lifecycle_configuration(
            Bucket=name,
            LifecycleConfiguration={
                "Rules": [
                    {
                        "ID": rule["Id"],
                        "Status": rule["Status"],
                        "Filter": {"Prefix": rule.get("Prefix", "")},
                        "Expiration": {"Days": rule["ExpirationInDays"]},
                    }
                    for rule in rules
                ]
            },
        )
    return name


def create_resources(stage: str, template_path: Path = DEFAULT_TEMPLATE) -> dict[str, str]:
    """Create everything the template declares for `stage`; returns logical id -> physical name."""
    template = json.loads(Path(template_path).read_text())
    resources: dict[str, Any] = template["Resources"]
    region = _region()
    session = boto3.session.Session()
    resolve = _Resolver(stage, region, session)
    created: dict[str, str] = {}

    tables = {k: r for k, r in resources.items() if r.get("Type") == "AWS::DynamoDB::Table"}
    if tables:
        ddb = session.client("dynamodb", region_name=region)
        for logical_id, res in tables.items():
            created[logical_id] = _create_table(ddb, resolve(res["Properties"]))

    queues = {k: r for k, r in resources.items() if r.get("Type") == "AWS::SQS::Queue"}
    if queues:
        sqs = session.client("sqs", region_name=region)
        # Dead-letter queues first: the redrive policy of the others needs their ARN.
        for logical_id, res in sorted(queues.items(), key=lambda item: "RedrivePolicy" in item[1]["Properties"]):
            props = resolve(res["Properties"])
            resolve.arns[logical_id] = _create_queue(sqs, props)
            created[logical_id] = props["QueueName"]

    buckets = {k: r for k, r in resources.items() if r.get("Type") == "AWS::S3::Bucket"}
    if buckets:
        s3 = session.client("s3", region_name=region)
        for logical_id, res in buckets.items():
            created[logical_id] = _create_bucket(s3, resolve(res["Properties"]), region)
    return created
