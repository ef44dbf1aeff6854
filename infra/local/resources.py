"""Create the stack's tables, queues, bucket and staff user pool from `infra/resources.json` against any AWS endpoint.

The deployed stack and the local/test one share that single template, so a table,
index or queue setting cannot exist in one and not the other. Only what an emulator
needs is interpreted: DynamoDB tables (keys, GSIs, TTL), SQS queues (with the DLQ
redrive), the S3 bucket, the Cognito user pool (with its TOTP setting) and its app client;
API Gateway responses, bucket policies and everything else are skipped. Parameters take
their template defaults (`Stage` excepted) and conditions are evaluated with them, so the
optional SSO identity provider and hosted domain (`StaffSsoType` NONE) are never created locally.

Clients are created on each call, never at import, so this works inside moto's
in-process `mock_aws()` (tests) and against a moto server via `AWS_ENDPOINT_URL`.
Every step is idempotent: what already exists (by name) is left alone, so a restart of `make run`,
whose moto first replays its recording, reuses the pool and client it finds.
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


_NO_VALUE = object()
"""`Ref: AWS::NoValue`: the property (or list item) is left out."""


class _Resolver:
    """Resolves the few intrinsic functions the template uses (Fn::Sub, Fn::GetAtt Arn, Ref, Fn::If)."""

    def __init__(self, stage: str, region: str, session: boto3.session.Session,
                 template: dict[str, Any] | None = None) -> None:
        template = template or {}
        defaults = {name: str(p["Default"]) for name, p in template.get("Parameters", {}).items() if "Default" in p}
        self.params = {
            **defaults,
            "Stage": stage, "AWS::Region": region, "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"
        }
        self.session = session
        self.arns: dict[str, str] = {}
        self.refs: dict[str, str] = {}
        """Logical id -> what `Ref` returns for a resource created here (a pool's or client's id)."""
        self.conditions: dict[str, Any] = template.get("Conditions", {})

    def condition(self, name: str) -> bool:
        return bool(self._evaluate(self.conditions[name]))

    def _evaluate(self, node: Any) -> Any:
        """A condition's value (Fn::Equals/Not/And/Or, Condition, Ref to a parameter)."""
        if isinstance(node, dict) and len(node) == 1:
            (fn, arg), = node.items()
            if fn == "Condition":
                return self.condition(arg)
            if fn == "Fn::Equals":
                left, right = (self._evaluate(a) for a in arg)
                return str(left) == str(right)
            if fn == "Fn::Not":
                return not self._evaluate(arg[0])
            if fn == "Fn::And":
                return all(self._evaluate(a) for a in arg)
            if fn == "Fn::Or":
                return any(self._evaluate(a) for a in arg)
            if fn == "Ref":
                return self._param(arg)
        return node

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
            if fn == "Fn::If":
                return self(arg[1] if self.condition(arg[0]) else arg[2])
            if fn == "Ref" and arg == "AWS::NoValue":
                return _NO_VALUE
            if fn == "Ref" and isinstance(arg, str):
                return self.refs.get(arg) or self.params.get(arg, arg)
        if isinstance(value, dict):
            resolved = {k: self(v) for k, v in value.items()}
            return {k: v for k, v in resolved.items() if v is not _NO_VALUE}
        if isinstance(value, list):
            return [v for v in (self(item) for item in value) if v is not _NO_VALUE]
        return value

    def wanted(self, resource: dict[str, Any]) -> bool:
        """False for a resource whose `Condition` is false with the parameters' defaults."""
        return "Condition" not in resource or self.condition(resource["Condition"])


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
    if "VersioningConfiguration" in props:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration=props["VersioningConfiguration"])
    rules = props.get("LifecycleConfiguration", {}).get("Rules", [])
    if rules:
        s3.put_bucket_lifecycle_configuration(
            Bucket=name,
            LifecycleConfiguration={"Rules": [_lifecycle_rule(rule) for rule in rules]},
        )
    return name


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A CloudFormation lifecycle rule as S3's API takes it (expiry of current or of old versions)."""
    out: dict[str, Any] = {"ID": rule["Id"], "Status": rule["Status"], "Filter": {"Prefix": rule.get("Prefix", "")}}
    if "ExpirationInDays" in rule:
        out["Expiration"] = {"Days": rule["ExpirationInDays"]}
    if "NoncurrentVersionExpiration" in rule:
        out["NoncurrentVersionExpiration"] = {"NoncurrentDays": rule["NoncurrentVersionExpiration"]["NoncurrentDays"]}
    return out


def _api_parameters(client: Any, operation: str, props: dict[str, Any]) -> dict[str, Any]:
    """The CloudFormation properties that are also parameters of `operation` (most share their names)."""
    members = client.meta.service_model.operation_model(operation).input_shape.members
    return {key: value for key, value in props.items() if key in members}


def _create_user_pool(cognito: Any, props: dict[str, Any]) -> str:
    """The pool named `UserPoolName` (the first, if several), created if missing; TOTP as `EnabledMfas` says."""
    name = str(props["UserPoolName"])
    pool_id = next((pool["Id"] for page in cognito.get_paginator("list_user_pools").paginate(MaxResults=60)
                    for pool in page["UserPools"] if pool["Name"] == name), None)
    if pool_id is None:
        kwargs = _api_parameters(cognito, "CreateUserPool", {**props, "PoolName": name})
        pool_id = str(cognito.create_user_pool(**kwargs)["UserPool"]["Id"])
    # EnabledMfas is CloudFormation's; the API sets TOTP separately. moto's MFA challenges compare this
    # configuration to {"Enabled": True}. Only when it differs: `make run` records every change it makes.
    totp = "SOFTWARE_TOKEN_MFA" in props.get("EnabledMfas", [])
    mfa = props.get("MfaConfiguration", "OFF")
    current = cognito.get_user_pool_mfa_config(UserPoolId=pool_id)
    if current.get("MfaConfiguration") != mfa or current.get("SoftwareTokenMfaConfiguration") != {"Enabled": totp}:
        cognito.set_user_pool_mfa_config(
            UserPoolId=pool_id, SoftwareTokenMfaConfiguration={"Enabled": totp}, MfaConfiguration=mfa
        )
    return pool_id


def _create_user_pool_client(cognito: Any, props: dict[str, Any]) -> str:
    """The pool's app client named `ClientName`, created if missing."""
    pool_id, name = str(props["UserPoolId"]), str(props["ClientName"])
    for page in cognito.get_paginator("list_user_pool_clients").paginate(UserPoolId=pool_id, MaxResults=60):
        for client in page["UserPoolClients"]:
            if client["ClientName"] == name:
                return str(client["ClientId"])
    kwargs = _api_parameters(cognito, "CreateUserPoolClient", props)
    return str(cognito.create_user_pool_client(**kwargs)["UserPoolClient"]["ClientId"])


def create_resources(stage: str, template_path: Path = DEFAULT_TEMPLATE) -> dict[str, str]:
    """Create everything the template declares for `stage`; returns logical id -> physical name (for a user
    pool and its app client: their ids, what `Ref` gives in the deployed stack)."""
    template = json.loads(Path(template_path).read_text())
    resources: dict[str, Any] = template["Resources"]
    region = _region()
    session = boto3.session.Session()
    resolve = _Resolver(stage, region, session, template)
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

    pools = {k: r for k, r in resources.items() if r.get("Type") == "AWS::Cognito::UserPool" and resolve.wanted(r)}
    clients = {k: r for k, r in resources.items()
               if r.get("Type") == "AWS::Cognito::UserPoolClient" and resolve.wanted(r)}
    if pools or clients:
        cognito = session.client("cognito-idp", region_name=region)
        for logical_id, res in pools.items():
            created[logical_id] = resolve.refs[logical_id] = _create_user_pool(cognito, resolve(res["Properties"]))
        for logical_id, res in clients.items():
            created[logical_id] = resolve.refs[logical_id] = _create_user_pool_client(
                cognito, resolve(res["Properties"]))
    return created
