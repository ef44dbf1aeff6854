"""Build `infra/resources.json`: the stack's resources, derived from the code that uses them.

The DynamoDB tables come from the PynamoDB models in `chalicelib.storage.tables.TABLES`
(key schema, GSIs, TTL), so the deployed tables, the local moto tables and the models can
never drift apart; the usage plans come from `chalicelib.domain.rate_limits.PLAN_LIMITS`;
the queues, bucket, per-function IAM roles, alarms, gateway responses and the staff user pool
(Amazon Cognito, with an optional SAML/OIDC provider: `staff_pool_resources`) and the console's CloudFront
distribution in front of the REST API (`console_distribution_resources`) are declared here.
Physical names follow `chalicelib/settings.py` (`loyalty-${Stage}-...`), with `Stage` a
template parameter.

The output is merged into Chalice's SAM template (a deep dict merge: fragments without a
`Type` patch the functions and the REST API Chalice generates):

    chalice package --stage dev --merge-template infra/resources.json build/

Usage: `python -m infra.template` rewrites the file; `--check` exits 1 when it is stale.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
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
WEBHOOKS_VISIBILITY_TIMEOUT = 360
"""Six times the webhooks worker's timeout (60 s: up to 5 deliveries of at most 5 s each per invocation)."""
WEBHOOKS_MAX_RECEIVE_COUNT = 5
"""Failed HTTP attempts re-queue themselves with backoff (new messages); only a crashing worker reaches the DLQ."""
WALLET_VISIBILITY_TIMEOUT = 360
"""Six times the wallet worker's timeout (60 s: up to 5 pass updates, each a few pushes of at most 5 s)."""
WALLET_MAX_RECEIVE_COUNT = 5
"""Failed pushes re-queue the update themselves with backoff; only a crashing worker reaches the DLQ."""
REPORTS_PREFIX = "reports/"
REPORTS_EXPIRE_DAYS = 7
IMPORTS_PREFIX = "imports/"
IMPORTS_EXPIRE_DAYS = 7
"""Uploaded customer files and their result files hold personal data: kept a week, then gone."""
DOWNLOADS_PREFIX = "downloads/"
DOWNLOADS_EXPIRE_DAYS = 1
"""Files made for one download (a member's wallet pass), fetched at once through a presigned link: a day at most
(S3's shortest lifecycle), though the link itself lasts two minutes."""

API_NAME = NAME_PREFIX
"""The REST API's name (also its CloudWatch `ApiName` dimension): one per stage, so stages' metrics stay apart."""
API_STAGE = "api"
"""`api_gateway_stage` in .chalice/config.json."""
STAGE_RATE_LIMIT = 1000
STAGE_BURST_LIMIT = 2000
"""Stage-wide throttle (all clients together): above every plan's own rate, the only limit without a usage key."""
API_5XX_PERCENT = 1
RECONCILIATION_ALARM_PERIOD = 24 * 3600
"""The mismatch alarm looks at a day: one nightly run's jobs all fall in it, and it stays raised until a clean night
(a shorter period would return to OK minutes after the run, though nothing was repaired)."""
QUEUE_AGE_ALARM_SECONDS = {"JobsQueue": 900, "MailQueue": 900, "ReportsQueue": 1800, "WebhooksQueue": 1800,
                           "WalletQueue": 1800}
"""How old the oldest waiting message may get (two 5-minute periods in a row) before an alarm: reports take up to
15 minutes each, so a report queued 30 minutes ago and not started means the reports worker is stuck or starved."""
RETRY_AFTER = {"THROTTLED": "1", "QUOTA_EXCEEDED": "3600"}
"""Static Retry-After seconds in the gateway's 429s (gateway responses cannot compute one; the daily quota resets at
midnight UTC, so an hour is a polite upper bound to wait before retrying)."""

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
    # The authorizer names a usage key API Gateway does not know (`usage-keys` not run after a deploy).
    ("INVALID_API_KEY", 403, 403),
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


def _key_schema(keys: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
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


def _queue_pair(name: str, slug: str, visibility_timeout: int, max_receive_count: int) -> dict[str, Any]:
    """A work queue and its dead-letter queue (encrypted; a message failing `max_receive_count` times is kept
    there for DLQ_RETENTION_SECONDS)."""
    return {
        f"{name}DeadLetterQueue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": _sub(f"{NAME_PREFIX}-{slug}-dlq"),
                "SqsManagedSseEnabled": True,
                "MessageRetentionPeriod": DLQ_RETENTION_SECONDS,
            },
        },
        f"{name}Queue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": _sub(f"{NAME_PREFIX}-{slug}"),
                "SqsManagedSseEnabled": True,
                "VisibilityTimeout": visibility_timeout,
                "RedrivePolicy": {
                    "deadLetterTargetArn": {"Fn::GetAtt": [f"{name}DeadLetterQueue", "Arn"]},
                    "maxReceiveCount": max_receive_count,
                },
            },
        },
    }


def queue_resources() -> dict[str, Any]:
    return {
        **_queue_pair("Jobs", "jobs", JOBS_VISIBILITY_TIMEOUT, JOBS_MAX_RECEIVE_COUNT),
        **_queue_pair("Mail", "mail", MAIL_VISIBILITY_TIMEOUT, MAIL_MAX_RECEIVE_COUNT),
        **_queue_pair("Reports", "reports", REPORTS_VISIBILITY_TIMEOUT, REPORTS_MAX_RECEIVE_COUNT),
        **_queue_pair("Webhooks", "webhooks", WEBHOOKS_VISIBILITY_TIMEOUT, WEBHOOKS_MAX_RECEIVE_COUNT),
        **_queue_pair("Wallet", "wallet", WALLET_VISIBILITY_TIMEOUT, WALLET_MAX_RECEIVE_COUNT),
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
                        {
                            "Id": "expire-downloads",
                            "Status": "Enabled",
                            "Prefix": DOWNLOADS_PREFIX,
                            "ExpirationInDays": DOWNLOADS_EXPIRE_DAYS,
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


ASSETS_PREFIX = "tenants/"
"""Tenants' image libraries: `tenants/<tid>/assets/<id>` in the assets bucket (storage/assets.py)."""


def assets_bucket_resources() -> dict[str, Any]:
    """The tenants' e-mail images: private and encrypted like the reports bucket, kept (no expiry), versioned so
    a deletion can be undone for 30 days. Mail clients get the images through the API's public `/assets/` route,
    never from S3."""
    bucket_arn = _sub(f"arn:${{AWS::Partition}}:s3:::{NAME_PREFIX}-assets")
    objects_arn = _sub(f"arn:${{AWS::Partition}}:s3:::{NAME_PREFIX}-assets/*")
    return {
        "AssetsBucket": {
            "Type": "AWS::S3::Bucket",
            "Properties": {
                "BucketName": _sub(f"{NAME_PREFIX}-assets"),
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
                "VersioningConfiguration": {"Status": "Enabled"},
                "LifecycleConfiguration": {
                    "Rules": [
                        {
                            "Id": "forget-deleted-images",
                            "Status": "Enabled",
                            "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
                            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
                        },
                    ]
                },
            },
        },
        "AssetsBucketPolicy": {
            "Type": "AWS::S3::BucketPolicy",
            "Properties": {
                "Bucket": {"Ref": "AssetsBucket"},
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


STAFF_POOL = "StaffUserPool"
STAFF_CLIENT = "StaffUserPoolClient"
STAFF_IDENTITY_PROVIDER = "StaffIdentityProvider"
STAFF_DOMAIN = "StaffUserPoolDomain"
STAFF_PASSWORD_MIN_LENGTH = 12
STAFF_TEMPORARY_PASSWORD_DAYS = 7
"""An invitation's temporary password (never sent by Cognito: the app mails its own invitation link) expires."""
STAFF_ACCESS_TOKEN_MINUTES = 60
STAFF_ID_TOKEN_MINUTES = 60
STAFF_REFRESH_TOKEN_HOURS = 12
"""A working day: the browser session (the app's own, server-side) cannot outlive the refresh token it holds."""
STAFF_ADMIN_ACTIONS = (
    "cognito-idp:AdminCreateUser", "cognito-idp:AdminGetUser", "cognito-idp:AdminSetUserPassword",
    "cognito-idp:AdminInitiateAuth", "cognito-idp:AdminRespondToAuthChallenge",
    "cognito-idp:AdminSetUserMFAPreference", "cognito-idp:AdminUserGlobalSignOut", "cognito-idp:AdminDisableUser",
    "cognito-idp:AdminEnableUser", "cognito-idp:AdminDeleteUser", "cognito-idp:AdminUpdateUserAttributes",
)
"""What the API function may do in the staff pool (and nowhere else). MFA enrolment (AssociateSoftwareToken,
VerifySoftwareToken) and RevokeToken are authorized by the session or token itself, not by IAM."""
STAFF_SSO_DEFAULT_NAME = "AgencySSO"
SAML_EMAIL_CLAIM = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"
"""The e-mail claim of SAML 2.0 assertions (Entra ID, AD FS, Okta and Google Workspace send it by default)."""
_NO_VALUE = {"Ref": "AWS::NoValue"}
_HTTPS_OR_EMPTY = r"^$|^https://\S+$"


def staff_parameters() -> dict[str, Any]:
    """The pool's tunables and an agency's own SSO (bring your own SAML or OIDC identity provider)."""
    def text(description: str, pattern: str | None = None, **extra: Any) -> dict[str, Any]:
        parameter: dict[str, Any] = {"Type": "String", "Default": "", "Description": description, **extra}
        if pattern:
            parameter["AllowedPattern"] = pattern
        return parameter

    return {
        "StaffAdvancedSecurity": {
            "Type": "String",
            "Default": "OFF",
            "AllowedValues": ["OFF", "AUDIT", "ENFORCED"],
            "Description": "Cognito threat protection for the staff pool (needs the Plus feature plan, chosen "
                           "automatically when not OFF; billed per active user). The app has its own lockout and "
                           "rate limits either way.",
        },
        "StaffSsoType": {
            "Type": "String",
            "Default": "NONE",
            "AllowedValues": ["NONE", "SAML", "OIDC"],
            "Description": "Staff single sign-on through the agency's identity provider; NONE: e-mail and "
                           "password (with the app's MFA) only. SAML or OIDC also needs StaffSsoCallbackUrl and "
                           "that type's settings (StaffSsoMetadataUrl, or StaffSsoOidc*).",
        },
        "StaffSsoName": text("SSO: the provider's name in the pool, shown on the hosted sign-in page (federated "
                             "users are <name>_<their id>: renaming replaces the provider).",
                             r"^[A-Za-z0-9][A-Za-z0-9.-]{1,30}[A-Za-z0-9]$", Default=STAFF_SSO_DEFAULT_NAME),
        "StaffSsoMetadataUrl": text("SSO, SAML: the identity provider's metadata document URL (https).",
                                    _HTTPS_OR_EMPTY),
        "StaffSsoOidcIssuer": text("SSO, OIDC: the issuer URL (https; its /.well-known/openid-configuration).",
                                   _HTTPS_OR_EMPTY),
        "StaffSsoOidcClientId": text("SSO, OIDC: the client id registered at the identity provider."),
        "StaffSsoOidcClientSecret": text("SSO, OIDC: that client's secret.", NoEcho=True),
        "StaffSsoDomainPrefix": text("SSO: the pool's hosted sign-in domain, <prefix>.auth.<region>.amazoncognito.com "
                                     "(lower case, digits, hyphens; globally unique; no 'aws', 'amazon', 'cognito'); "
                                     "empty: loyalty-<Stage>-<account id>.",
                                     r"^$|^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"),
        "StaffSsoCallbackUrl": text("SSO (required with it): the console URL the hosted sign-in returns to with an "
                                    "authorization code (https).", _HTTPS_OR_EMPTY),
    }


def wallet_parameters() -> dict[str, Any]:
    """Wallet passes (docs/guides/wallet-passes.md): without the secret, the wallet routes answer 503."""
    def text(description: str, **extra: Any) -> dict[str, Any]:
        return {"Type": "String", "Default": "", "Description": description, **extra}

    return {
        "WalletCredentialsSecret": text("Wallet passes: the Secrets Manager secret (name) holding the Apple Pass "
                                        "Type ID certificate and key, the WWDR certificate, the Google service "
                                        "account and issuer id, and the token secret; empty: no wallet passes."),
        "WalletPassTypeId": text("Wallet passes: Apple's Pass Type ID (pass.com.example.loyalty).",
                                 AllowedPattern=r"^$|^pass\.[A-Za-z0-9.-]+$"),
        "WalletTeamId": text("Wallet passes: the Apple Developer team id owning the Pass Type ID.",
                             AllowedPattern=r"^$|^[A-Z0-9]{10}$"),
        "GoogleWalletLogoUrl": text("Wallet passes: the Google loyalty class's logo (https; Google requires one).",
                                    AllowedPattern=_HTTPS_OR_EMPTY),
    }


def wallet_environment() -> dict[str, Any]:
    return {
        "WALLET_CREDENTIALS": {"Fn::If": ["HasWalletSecret", _sub("secret:${WalletCredentialsSecret}"), ""]},
        "WALLET_PASS_TYPE_ID": {"Ref": "WalletPassTypeId"},
        "WALLET_TEAM_ID": {"Ref": "WalletTeamId"},
        "GOOGLE_WALLET_LOGO_URL": {"Ref": "GoogleWalletLogoUrl"},
    }


def staff_conditions() -> dict[str, Any]:
    return {
        "StaffSso": {"Fn::Not": [{"Fn::Equals": [{"Ref": "StaffSsoType"}, "NONE"]}]},
        "StaffSsoSaml": {"Fn::Equals": [{"Ref": "StaffSsoType"}, "SAML"]},
        "StaffSsoDomainGiven": {"Fn::Not": [{"Fn::Equals": [{"Ref": "StaffSsoDomainPrefix"}, ""]}]},
        # SSO without a callback leaves CallbackURLs out: Cognito then refuses the code flow, and the deploy fails.
        "StaffSsoCallbackGiven": {"Fn::And": [
            {"Condition": "StaffSso"}, {"Fn::Not": [{"Fn::Equals": [{"Ref": "StaffSsoCallbackUrl"}, ""]}]}]},
        "StaffAdvancedSecurityOn": {"Fn::Not": [{"Fn::Equals": [{"Ref": "StaffAdvancedSecurity"}, "OFF"]}]},
    }


def _if_sso(value: Any) -> dict[str, Any]:
    return {"Fn::If": ["StaffSso", value, _NO_VALUE]}


def staff_pool_resources() -> dict[str, Any]:
    """Staff accounts: one Cognito user pool, the console's app client, and an agency's SSO when configured.

    Cognito holds the password and the TOTP secret; memberships, roles and browser sessions are the app's
    (IdentityTable). People join by invitation only; the app sends its own invitation and reset e-mail through
    SES, so the pool's e-mail settings stay Cognito's default. MFA is OPTIONAL in the pool because the app
    decides per role who must have it (platform, agency and tenant-admin roles always; support when the
    tenant asks) and refuses a sign-in without it.
    """
    pool_properties: dict[str, Any] = {
        "UserPoolName": _sub(f"{NAME_PREFIX}-staff"),
        "UsernameAttributes": ["email"],
        "UsernameConfiguration": {"CaseSensitive": False},
        "AutoVerifiedAttributes": ["email"],
        "Policies": {"PasswordPolicy": {
            "MinimumLength": STAFF_PASSWORD_MIN_LENGTH,
            "RequireLowercase": True,
            "RequireUppercase": True,
            "RequireNumbers": True,
            "RequireSymbols": False,
            "TemporaryPasswordValidityDays": STAFF_TEMPORARY_PASSWORD_DAYS,
        }},
        "MfaConfiguration": "OPTIONAL",
        "EnabledMfas": ["SOFTWARE_TOKEN_MFA"],
        "AccountRecoverySetting": {"RecoveryMechanisms": [{"Name": "verified_email", "Priority": 1}]},
        "AdminCreateUserConfig": {"AllowAdminCreateUserOnly": True},
        # Threat protection needs the Plus plan; Essentials (AWS's default for new pools) otherwise.
        "UserPoolTier": {"Fn::If": ["StaffAdvancedSecurityOn", "PLUS", "ESSENTIALS"]},
        "UserPoolAddOns": {"AdvancedSecurityMode": {"Ref": "StaffAdvancedSecurity"}},
        "DeletionProtection": "ACTIVE",
    }
    client_properties: dict[str, Any] = {
        "ClientName": _sub(f"{NAME_PREFIX}-console"),
        "UserPoolId": {"Ref": STAFF_POOL},
        "GenerateSecret": False,
        # Server-side sign-in only (the API calls AdminInitiateAuth with its role): no SRP or plain-password
        # flow a browser could use against Cognito directly.
        "ExplicitAuthFlows": ["ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        "PreventUserExistenceErrors": "ENABLED",
        "EnableTokenRevocation": True,
        "AccessTokenValidity": STAFF_ACCESS_TOKEN_MINUTES,
        "IdTokenValidity": STAFF_ID_TOKEN_MINUTES,
        "RefreshTokenValidity": STAFF_REFRESH_TOKEN_HOURS,
        "TokenValidityUnits": {"AccessToken": "minutes", "IdToken": "minutes", "RefreshToken": "hours"},
        "SupportedIdentityProviders": {
            "Fn::If": ["StaffSso", ["COGNITO", {"Ref": STAFF_IDENTITY_PROVIDER}], ["COGNITO"]]
        },
        # Federated sign-in only: the hosted UI returns an authorization code to the console's callback.
        "AllowedOAuthFlowsUserPoolClient": _if_sso(True),
        "AllowedOAuthFlows": _if_sso(["code"]),
        "AllowedOAuthScopes": _if_sso(["openid", "email"]),
        "CallbackURLs": {"Fn::If": ["StaffSsoCallbackGiven", [{"Ref": "StaffSsoCallbackUrl"}], _NO_VALUE]},
    }
    oidc_details = {
        "client_id": {"Ref": "StaffSsoOidcClientId"},
        "client_secret": {"Ref": "StaffSsoOidcClientSecret"},
        "oidc_issuer": {"Ref": "StaffSsoOidcIssuer"},
        "authorize_scopes": "openid email",
        "attributes_request_method": "GET",
    }
    return {
        # Retain: deleting the stack must not delete everyone's account (and deletion protection is on).
        STAFF_POOL: {
            "Type": "AWS::Cognito::UserPool",
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": pool_properties,
        },
        STAFF_CLIENT: {"Type": "AWS::Cognito::UserPoolClient", "Properties": client_properties},
        STAFF_IDENTITY_PROVIDER: {
            "Type": "AWS::Cognito::UserPoolIdentityProvider",
            "Condition": "StaffSso",
            "Properties": {
                "UserPoolId": {"Ref": STAFF_POOL},
                "ProviderName": {"Ref": "StaffSsoName"},
                "ProviderType": {"Fn::If": ["StaffSsoSaml", "SAML", "OIDC"]},
                "ProviderDetails": {
                    "Fn::If": ["StaffSsoSaml", {"MetadataURL": {"Ref": "StaffSsoMetadataUrl"}}, oidc_details]
                },
                "AttributeMapping": {"email": {"Fn::If": ["StaffSsoSaml", SAML_EMAIL_CLAIM, "email"]}},
            },
        },
        STAFF_DOMAIN: {
            "Type": "AWS::Cognito::UserPoolDomain",
            "Condition": "StaffSso",
            "Properties": {
                "Domain": {"Fn::If": ["StaffSsoDomainGiven", {"Ref": "StaffSsoDomainPrefix"},
                                      _sub(f"{NAME_PREFIX}-${{AWS::AccountId}}")]},
                "UserPoolId": {"Ref": STAFF_POOL},
            },
        },
    }


def staff_outputs() -> dict[str, Any]:
    """The pool and client ids (the functions get them as STAFF_POOL_ID/STAFF_CLIENT_ID); with SSO, what the
    agency's identity provider must be told about us."""
    domain = f"https://${{{STAFF_DOMAIN}}}.auth.${{AWS::Region}}.amazoncognito.com"
    return {
        "StaffUserPoolId": {"Description": "The staff user pool (STAFF_POOL_ID).", "Value": {"Ref": STAFF_POOL}},
        "StaffUserPoolClientId": {"Description": "The console's app client (STAFF_CLIENT_ID).",
                                  "Value": {"Ref": STAFF_CLIENT}},
        "StaffSsoSignInDomain": {"Condition": "StaffSso", "Description": "The pool's hosted sign-in domain.",
                                 "Value": _sub(domain)},
        "StaffSsoReplyUrl": {
            "Condition": "StaffSso",
            "Description": "Give this to the identity provider: SAML assertion consumer service URL, or the OIDC "
                           "redirect URI.",
            "Value": {"Fn::If": ["StaffSsoSaml", _sub(f"{domain}/saml2/idpresponse"),
                                 _sub(f"{domain}/oauth2/idpresponse")]},
        },
        "StaffSsoSamlEntityId": {"Condition": "StaffSsoSaml",
                                 "Description": "Give this to the SAML identity provider: our entity id (audience).",
                                 "Value": _sub(f"urn:amazon:cognito:sp:${{{STAFF_POOL}}}")},
    }


CONSOLE_DISTRIBUTION = "ConsoleDistribution"
CONSOLE_HEADERS_POLICY = "ConsoleResponseHeadersPolicy"
CONSOLE_ORIGIN_ID = "api"
CONSOLE_STATIC_PATTERN = "/console/static/*"
"""Where `chalicelib.console.assets` serves its content-hashed files (cached for a year, never changed)."""
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
"""AWS's managed cache policy `CachingDisabled` (TTL 0; no cache key, no CloudFront compression)."""
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
"""AWS's managed cache policy `CachingOptimized`: the path only (no cookies, headers or query strings) plus the
normalized Accept-Encoding (gzip and brotli); TTL from the origin's Cache-Control, at most a year."""
ALL_VIEWER_EXCEPT_HOST_HEADER = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
"""AWS's managed origin request policy `AllViewerExceptHostHeader`: every viewer header, cookie and query string
(Authorization too, as caching is disabled; Accept-Encoding too, as the cache policy leaves it alone); the Host is
the origin's, which API Gateway needs to find the API."""
ALL_METHODS = ["GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"]
HSTS_MAX_AGE = 2 * 365 * 24 * 3600
"""Two years: browsers refuse plain HTTP to the console's host for that long after one visit."""
API_MIN_COMPRESSION_BYTES = 1024
"""API Gateway gzips answers from this size on when the caller accepts gzip: behind `CachingDisabled` CloudFront
never compresses, so this is what compresses the console's pages (and large API answers) on the wire."""
_CONSOLE_DOMAIN_PATTERN = r"^$|^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
_CONSOLE_CERTIFICATE_PATTERN = r"^$|^arn:aws:acm:us-east-1:[0-9]{12}:certificate/[0-9a-f-]{36}$"


def console_parameters() -> dict[str, Any]:
    """The console's own host name (optional) and how far CloudFront serves it from."""
    return {
        "ConsoleDomainName": {
            "Type": "String", "Default": "", "AllowedPattern": _CONSOLE_DOMAIN_PATTERN,
            "Description": "The console's own host name (e.g. console.example.com, lower case; with "
                           "ConsoleCertificateArn), pointed at the ConsoleDistributionDomainName output by a DNS "
                           "CNAME or alias; empty: the distribution's *.cloudfront.net name.",
        },
        "ConsoleCertificateArn": {
            "Type": "String", "Default": "", "AllowedPattern": _CONSOLE_CERTIFICATE_PATTERN,
            "Description": "With ConsoleDomainName: an issued ACM certificate for that name in us-east-1 "
                           "(CloudFront takes certificates from there only, whatever the stack's region).",
        },
        "ConsolePriceClass": {
            "Type": "String", "Default": "PriceClass_100",
            "AllowedValues": ["PriceClass_100", "PriceClass_200", "PriceClass_All"],
            "Description": "Which CloudFront edge locations serve the console: 100 is North America, Europe and "
                           "Israel (the cheapest); viewers elsewhere are served too, from the nearest of those.",
        },
    }


def console_conditions() -> dict[str, Any]:
    return {
        "ConsoleCustomDomain": {"Fn::And": [
            {"Fn::Not": [{"Fn::Equals": [{"Ref": "ConsoleDomainName"}, ""]}]},
            {"Fn::Not": [{"Fn::Equals": [{"Ref": "ConsoleCertificateArn"}, ""]}]},
        ]},
    }


def console_rules() -> dict[str, Any]:
    """A host name without its certificate (or the reverse) fails before anything is created, instead of
    silently leaving the console on *.cloudfront.net."""
    domain_empty = {"Fn::Equals": [{"Ref": "ConsoleDomainName"}, ""]}
    certificate_empty = {"Fn::Equals": [{"Ref": "ConsoleCertificateArn"}, ""]}
    return {
        "ConsoleDomainNeedsCertificate": {"Assertions": [{
            "Assert": {"Fn::Or": [
                {"Fn::And": [domain_empty, certificate_empty]},
                {"Fn::And": [{"Fn::Not": [domain_empty]}, {"Fn::Not": [certificate_empty]}]},
            ]},
            "AssertDescription": "Set ConsoleDomainName and ConsoleCertificateArn together, or neither.",
        }]},
    }


def console_distribution_resources() -> dict[str, Any]:
    """CloudFront in front of the REST API: the console's pages and the API pass through, its static files are
    cached at the edge.

    The one origin is the API's stage (`OriginPath` /<API_STAGE>), so the console lives at the root of the
    distribution's host (`/console/...`, as the pages link to it) and the API at `/v1/...` there too. Pages and
    API answers are never cached (`CachingDisabled`: the origin sees every cookie, header and query string and
    answers per person with `no-store`); `/console/static/*` (hashed names, `immutable`, a year) is cached by path
    alone, so no cookie or Authorization header ever reaches it or varies it. Every answer gets HSTS; the app
    sets CSP, frame, referrer and content-type headers itself.
    """
    behaviour = {
        "TargetOriginId": CONSOLE_ORIGIN_ID,
        "ViewerProtocolPolicy": "redirect-to-https",
        "Compress": True,
        "ResponseHeadersPolicyId": {"Ref": CONSOLE_HEADERS_POLICY},
    }
    return {
        CONSOLE_HEADERS_POLICY: {
            "Type": "AWS::CloudFront::ResponseHeadersPolicy",
            "Properties": {"ResponseHeadersPolicyConfig": {
                # CloudFront names are per account, not per region: the region keeps two stacks apart.
                "Name": _sub(f"{NAME_PREFIX}-${{AWS::Region}}-console"),
                "Comment": "HSTS on every answer of the console and the API through CloudFront",
                "SecurityHeadersConfig": {"StrictTransportSecurity": {
                    "AccessControlMaxAgeSec": HSTS_MAX_AGE, "IncludeSubdomains": True, "Preload": False,
                    "Override": True,
                }},
            }},
        },
        CONSOLE_DISTRIBUTION: {
            "Type": "AWS::CloudFront::Distribution",
            "Properties": {"DistributionConfig": {
                "Enabled": True,
                "Comment": _sub(f"{NAME_PREFIX}: the console and the API"),
                "HttpVersion": "http2and3",
                "IPV6Enabled": True,
                "PriceClass": {"Ref": "ConsolePriceClass"},
                "Aliases": {"Fn::If": ["ConsoleCustomDomain", [{"Ref": "ConsoleDomainName"}], _NO_VALUE]},
                "ViewerCertificate": {"Fn::If": [
                    "ConsoleCustomDomain",
                    {"AcmCertificateArn": {"Ref": "ConsoleCertificateArn"}, "SslSupportMethod": "sni-only",
                     "MinimumProtocolVersion": "TLSv1.2_2021"},
                    {"CloudFrontDefaultCertificate": True},
                ]},
                "Origins": [{
                    "Id": CONSOLE_ORIGIN_ID,
                    "DomainName": _sub("${RestAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}"),
                    "OriginPath": f"/{API_STAGE}",
                    "CustomOriginConfig": {"OriginProtocolPolicy": "https-only", "HTTPSPort": 443,
                                           "OriginSSLProtocols": ["TLSv1.2"]},
                }],
                "DefaultCacheBehavior": {
                    **behaviour,
                    "AllowedMethods": ALL_METHODS,
                    "CachedMethods": ["GET", "HEAD"],
                    "CachePolicyId": CACHING_DISABLED,
                    "OriginRequestPolicyId": ALL_VIEWER_EXCEPT_HOST_HEADER,
                },
                "CacheBehaviors": [{
                    **behaviour,
                    "PathPattern": CONSOLE_STATIC_PATTERN,
                    "AllowedMethods": ["GET", "HEAD"],
                    "CachedMethods": ["GET", "HEAD"],
                    "CachePolicyId": CACHING_OPTIMIZED,
                }],
            }},
        },
    }


def console_outputs() -> dict[str, Any]:
    """Where the console is, and what its custom domain's DNS record points at."""
    origin = {"Fn::If": ["ConsoleCustomDomain", _sub("https://${ConsoleDomainName}"),
                         _sub(f"https://${{{CONSOLE_DISTRIBUTION}.DomainName}}")]}
    return {
        "ConsoleUrl": {"Description": "The console (sign-in page follows).",
                       "Value": {"Fn::If": ["ConsoleCustomDomain", _sub("https://${ConsoleDomainName}/console"),
                                            _sub(f"https://${{{CONSOLE_DISTRIBUTION}.DomainName}}/console")]}},
        "ConsoleOrigin": {"Description": "Set CONSOLE_BASE_URL and CONSOLE_ORIGINS to this, then deploy again.",
                          "Value": origin},
        "ConsoleDistributionDomainName": {"Description": "The distribution's own host name (*.cloudfront.net): the "
                                                         "target of ConsoleDomainName's CNAME or alias record.",
                                          "Value": {"Fn::GetAtt": [CONSOLE_DISTRIBUTION, "DomainName"]}},
        "ConsoleDistributionId": {"Description": "The CloudFront distribution (for invalidations and metrics).",
                                  "Value": {"Ref": CONSOLE_DISTRIBUTION}},
    }


TABLE_READ = ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:ConditionCheckItem",
              "dynamodb:DescribeTable"]
TABLE_WRITE = ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"]
TABLE_SCAN = ["dynamodb:Scan"]
"""Only tenant offboarding scans (a filtered Scan of the loyalty and people tables, in the jobs worker)."""
QUEUE_SEND = ["sqs:SendMessage", "sqs:GetQueueUrl"]
QUEUE_RECEIVE = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"]
"""What Lambda's SQS event source mapping needs from the function's role."""
R, RW, RWS = "read", "read-write", "read-write-scan"
ALL_TABLES = ("DirectoryTable", "ApiKeysTable", "AuditTable", "LoyaltyTable", "PeopleTable", "IdentityTable")


@dataclass(frozen=True)
class FunctionAccess:
    """What one Lambda function may touch, read from the code it runs (services and storage it reaches)."""

    tables: dict[str, str]
    """Table logical id -> R, RW or RWS."""
    send: tuple[str, ...] = ()
    receive: str | None = None
    s3: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Bucket prefix -> S3 actions on the objects under it (a presigned URL needs them on the signing role)."""
    assets: tuple[str, ...] = ()
    """S3 actions on the tenants' images in the assets bucket (upload, serve, delete)."""
    mail_send: bool = False
    """E-mail (SES) and SMS (SNS): campaign and trigger messages."""
    staff_email: bool = False
    """E-mail only (SES): staff invitations and password-reset links, sent by the platform's address."""
    mail_verify: bool = False
    usage_keys: bool = False
    staff_accounts: bool = False
    """Manage the staff user pool's accounts (STAFF_ADMIN_ACTIONS on that pool only)."""
    wallet_secret: bool = False
    """Read the wallet's keys and certificates (the `WalletCredentialsSecret` secret only)."""


AUTHORIZER = "authorizer"
"""FUNCTIONS' key for the `@app.authorizer` function, whatever app.py names it."""
FUNCTIONS: dict[str, FunctionAccess] = {
    # Keys: Chalice's function names (`api_handler` is the REST API's handler), see `function_ids`.
    # Every route: all tables (never Scan), the work queues, import uploads, report and one-off (a member's wallet
    # pass) downloads (presigned),
    # the tenants' e-mail images (upload, the public image route, delete),
    # the sender-address check of mail settings, a usage key per tenant/agency at provisioning, and staff accounts
    # (sign-in, MFA, invitations, disabling and removing people) in the staff user pool.
    "api_handler": FunctionAccess(
        {t: RW for t in ALL_TABLES}, send=("JobsQueue", "MailQueue", "ReportsQueue", "WebhooksQueue", "WalletQueue"),
        s3={IMPORTS_PREFIX: ("s3:GetObject", "s3:PutObject"), REPORTS_PREFIX: ("s3:GetObject",),
            DOWNLOADS_PREFIX: ("s3:GetObject", "s3:PutObject")},
        mail_verify=True, usage_keys=True, staff_accounts=True, wallet_secret=True,
        assets=("s3:GetObject", "s3:PutObject", "s3:DeleteObject"),
    ),
    # The authorizer reads the key and its tenant's status; for a signed-in person, the account, memberships and
    # session (identity), and it touches an idle session or deletes an expired one. Never Cognito.
    AUTHORIZER: FunctionAccess({"ApiKeysTable": R, "DirectoryTable": R, "IdentityTable": RW}),
    # Jobs: sweeps, trigger runs, campaign fan-out, card series, coupons, customer imports, tenant purge (Scan),
    # staff invitation and password-reset e-mail (identity: the invitation or reset record).
    "jobs_worker": FunctionAccess(
        {"DirectoryTable": RW, "ApiKeysTable": RW, "AuditTable": RW, "LoyaltyTable": RWS, "PeopleTable": RWS,
         "IdentityTable": RW},
        send=("JobsQueue", "MailQueue", "WebhooksQueue", "WalletQueue"), receive="JobsQueue",
        s3={IMPORTS_PREFIX: ("s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload")},
        staff_email=True,
    ),
    # One message per recipient: settings and templates (directory, loyalty), the person's contact (people, read),
    # dedup, weekly cap and counts (loyalty, write); sends by SES or SNS.
    "mail_worker": FunctionAccess(
        {"DirectoryTable": R, "LoyaltyTable": RW, "PeopleTable": R}, receive="MailQueue",
        send=("WebhooksQueue",), mail_send=True,
    ),
    # Builds one report file: reads the data, records the report's state, writes the file under reports/.
    "reports_worker": FunctionAccess(
        {"DirectoryTable": R, "AuditTable": R, "LoyaltyTable": RW, "PeopleTable": R},
        receive="ReportsQueue", send=("WebhooksQueue",),
        s3={REPORTS_PREFIX: ("s3:PutObject", "s3:AbortMultipartUpload")},
    ),
    # One delivery attempt per message: the endpoint and its log (loyalty), the disable notice (audit); failed
    # attempts re-queue themselves. The HTTP POST needs only egress (none to configure outside a VPC).
    "webhooks_worker": FunctionAccess(
        {"DirectoryTable": R, "LoyaltyTable": RW, "AuditTable": RW}, send=("WebhooksQueue",),
        receive="WebhooksQueue",
    ),
    # One pass update per message: the pass, its devices and the update log (loyalty), the card and the tenant's
    # name (directory); the wallet's keys (the secret) for APNs and Google. Pushes need only egress.
    "wallet_worker": FunctionAccess(
        {"DirectoryTable": R, "LoyaltyTable": RW}, send=("WalletQueue",), receive="WalletQueue", wallet_secret=True,
    ),
    # Lists active tenants and their card scopes, queues one sweep job per scope.
    "daily_sweep": FunctionAccess({"DirectoryTable": R, "LoyaltyTable": R}, send=("JobsQueue",)),
    # Reads trigger settings, claims the day (a conditional write), queues one trigger run per program.
    "mail_triggers": FunctionAccess({"DirectoryTable": R, "LoyaltyTable": RW}, send=("JobsQueue",)),
    # Lists active tenants and their card scopes, queues one reconciliation job per scope (the jobs worker scans).
    "nightly_reconciliation": FunctionAccess({"DirectoryTable": R}, send=("JobsQueue",)),
    # Fetches Google's published root signing keys (egress only) and stores them for the callback route.
    "wallet_google_keys": FunctionAccess({"LoyaltyTable": RW}),
}
WORKERS = ("jobs_worker", "mail_worker", "reports_worker", "webhooks_worker", "daily_sweep", "mail_triggers",
           "nightly_reconciliation", "wallet_worker", "wallet_google_keys")
"""Functions without a caller waiting: an error is only visible as the Lambda Errors metric."""


def function_ids() -> dict[str, tuple[str, str]]:
    """FUNCTIONS key -> (Chalice's function name, the logical id of its AWS::Serverless::Function).

    Read from app.py, so a function added there without an entry here fails the build instead of
    deploying without a role.
    """
    from chalice.utils import to_cfn_resource_name

    from app import app

    ids = {"api_handler": ("api_handler", "APIHandler")}
    for handler in app.builtin_auth_handlers:
        ids[AUTHORIZER] = (handler.name, to_cfn_resource_name(handler.name))
    for source in app.event_sources:
        ids[source.name] = (source.name, to_cfn_resource_name(source.name))
    for function in app.pure_lambda_functions:
        ids[function.name] = (function.name, to_cfn_resource_name(function.name))
    if set(ids) != set(FUNCTIONS):
        raise SystemExit(f"app.py functions {sorted(ids)} differ from infra FUNCTIONS {sorted(FUNCTIONS)}")
    return ids


def function_name(key: str) -> dict[str, str]:
    """Physical function names are fixed (like the tables') so log groups and alarms can name them."""
    return _sub(f"{NAME_PREFIX}-{function_ids()[key][0]}")


def _arn(resource: str) -> dict[str, str]:
    return _sub(f"arn:${{AWS::Partition}}:{resource}")


def _table_arns(logical_ids: list[str]) -> list[Any]:
    arns: list[Any] = []
    for logical_id in logical_ids:
        arns.append({"Fn::GetAtt": [logical_id, "Arn"]})
        arns.append(_sub(f"${{{logical_id}.Arn}}/index/*"))
    return arns


def role_policy(key: str) -> list[dict[str, Any]]:
    """The statements of one function's role: its own log group, then only the data it uses."""
    access = FUNCTIONS[key]
    name = function_ids()[key][0]
    log_group = f"logs:${{AWS::Region}}:${{AWS::AccountId}}:log-group:/aws/lambda/{NAME_PREFIX}-{name}"
    statements: list[dict[str, Any]] = [{
        "Sid": "Logs",
        "Effect": "Allow",
        "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": [_arn(log_group), _arn(f"{log_group}:*")],
    }]
    for sid, level, actions in (("TablesRead", R, TABLE_READ), ("TablesWrite", RW, TABLE_WRITE),
                                ("TablesScan", RWS, TABLE_SCAN)):
        order = (R, RW, RWS)
        tables = [t for t, grant in access.tables.items() if order.index(grant) >= order.index(level)]
        if tables:
            statements.append({"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": _table_arns(tables)})
    if access.send:
        statements.append({"Sid": "QueuesSend", "Effect": "Allow", "Action": QUEUE_SEND,
                           "Resource": [{"Fn::GetAtt": [q, "Arn"]} for q in access.send]})
    if access.receive:
        statements.append({"Sid": "QueueReceive", "Effect": "Allow", "Action": QUEUE_RECEIVE,
                           "Resource": [{"Fn::GetAtt": [access.receive, "Arn"]}]})
    for prefix, object_actions in access.s3.items():
        statements.append({
            "Sid": "Objects" + prefix.strip("/").capitalize(), "Effect": "Allow", "Action": list(object_actions),
            "Resource": [_arn(f"s3:::{NAME_PREFIX}-reports/{prefix}*")],
        })
    if access.assets:
        statements.append({"Sid": "ObjectsAssets", "Effect": "Allow", "Action": list(access.assets),
                           "Resource": [_arn(f"s3:::{NAME_PREFIX}-assets/{ASSETS_PREFIX}*")]})
    if access.mail_send or access.staff_email:
        statements.append({"Sid": "SendEmail", "Effect": "Allow", "Action": ["ses:SendEmail", "ses:SendRawEmail"],
                           "Resource": [_arn("ses:${AWS::Region}:${AWS::AccountId}:identity/*"),
                                        _arn("ses:${AWS::Region}:${AWS::AccountId}:configuration-set/*")]})
    if access.mail_send:
        # SNS SMS to a phone number has no resource ARN: Publish can only be granted on "*" (not data).
        statements.append({"Sid": "SendSms", "Effect": "Allow", "Action": ["sns:Publish"], "Resource": "*"})
    if access.mail_verify:
        # SES identity verification has no resource-level permissions (AWS service authorization reference).
        statements.append({"Sid": "VerifySender", "Effect": "Allow", "Action": ["ses:VerifyEmailIdentity"],
                           "Resource": "*"})
    if access.usage_keys:
        apigw = "apigateway:${AWS::Region}::"
        # Usage plans by id would close a cycle (role -> plan -> API stage -> API -> handler -> role): any plan.
        statements.append({
            "Sid": "UsageKeys", "Effect": "Allow",
            "Action": ["apigateway:GET", "apigateway:POST", "apigateway:PATCH", "apigateway:DELETE"],
            "Resource": [_arn(f"{apigw}/apikeys"), _arn(f"{apigw}/apikeys/*"), _arn(f"{apigw}/usageplans/*/keys"),
                         _arn(f"{apigw}/usageplans/*/keys/*")],
        })
    if access.staff_accounts:
        # The pool's ARN only: no ListUserPools (it has no resource-level permission; deployed functions get the
        # pool and client ids from STAFF_POOL_ID/STAFF_CLIENT_ID, only the local stack looks them up by name).
        statements.append({"Sid": "StaffAccounts", "Effect": "Allow", "Action": list(STAFF_ADMIN_ACTIONS),
                           "Resource": [{"Fn::GetAtt": [STAFF_POOL, "Arn"]}]})
    if access.wallet_secret:
        # Secrets Manager appends 6 random characters to a secret's ARN: the name, a dash, then those.
        statements.append({"Sid": "WalletSecret", "Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"],
                           "Resource": [_arn("secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:"
                                             "${WalletCredentialsSecret}-??????")]})
    return statements


def function_roles() -> dict[str, Any]:
    """One role per function, replacing Chalice's shared DefaultRole (`manage_iam_role: false` in config.json)."""
    roles: dict[str, Any] = {}
    for key, (name, logical_id) in function_ids().items():
        roles[f"{logical_id}Role"] = {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "Description": _sub(f"{NAME_PREFIX}: the {name} function"),
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                   "Action": "sts:AssumeRole"}],
                },
                "Policies": [{"PolicyName": "access",
                              "PolicyDocument": {"Version": "2012-10-17", "Statement": role_policy(key)}}],
            },
        }
    return roles


DATA_SERVICES = ("dynamodb:", "sqs:", "s3:", "cognito-idp:")


def policy_problems(resources: dict[str, Any]) -> list[str]:
    """Grants that break least privilege: any `*` action, or a data action (DynamoDB, SQS, S3, Cognito) on `*`.

    Checks every identity policy in `resources` (inline role policies and AWS::IAM::Policy);
    the bucket policy's Deny is not a grant and is skipped.
    """
    problems: list[str] = []
    for logical_id, resource in resources.items():
        properties = resource.get("Properties", {})
        documents = []
        if resource.get("Type") == "AWS::IAM::Role":
            documents = [p["PolicyDocument"] for p in properties.get("Policies", [])]
        elif resource.get("Type") in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            documents = [properties["PolicyDocument"]]
        for document in documents:
            for statement in document["Statement"]:
                if statement.get("Effect") != "Allow":
                    continue
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                targets = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
                for action in actions:
                    if action == "*" or action.endswith(":*"):
                        problems.append(f"{logical_id}: action {action}")
                    elif action.startswith(DATA_SERVICES) and any(t == "*" or t == "arn:*" for t in targets):
                        problems.append(f"{logical_id}: {action} on {targets}")
    return problems


def usage_plans() -> dict[str, Any]:
    """One API Gateway usage plan per tenant plan (`chalicelib.domain.rate_limits.PLAN_LIMITS`)."""
    from chalicelib.domain.rate_limits import PLAN_LIMITS

    plans: dict[str, Any] = {}
    for plan, limits in PLAN_LIMITS.items():
        plans[_logical_id(plan, "UsagePlan")] = {
            "Type": "AWS::ApiGateway::UsagePlan",
            "Properties": {
                "UsagePlanName": _sub(f"{NAME_PREFIX}-{plan}"),
                "Description": f"Tenant plan {plan!r}: one usage key per tenant (or agency) in this plan",
                # RestAPI.Stage is SAM's reference to the stage it generates: the plan waits for that stage.
                "ApiStages": [{"ApiId": {"Ref": "RestAPI"}, "Stage": {"Ref": "RestAPI.Stage"}}],
                "Throttle": {"RateLimit": limits.rate_per_second, "BurstLimit": limits.burst},
                "Quota": {"Limit": limits.quota_per_day, "Period": "DAY"},
            },
        }
    return plans


def usage_plan_ids() -> dict[str, str]:
    """`USAGE_PLAN_IDS` for the API handler: a JSON object plan name -> usage plan id."""
    from chalicelib.domain.rate_limits import PLAN_LIMITS

    pairs = ",".join(f'"{plan}":"${{{_logical_id(plan, "UsagePlan")}}}"' for plan in PLAN_LIMITS)
    return _sub("{" + pairs + "}")


def rest_api_patch() -> dict[str, Any]:
    """Merged into Chalice's `RestAPI` (AWS::Serverless::Api)."""
    return {
        "Properties": {
            "Name": _sub(API_NAME),
            # The usage key comes from the authorizer (`usageIdentifierKey`), never from an x-api-key header.
            "DefinitionBody": {"info": {"title": _sub(API_NAME)}, "x-amazon-apigateway-api-key-source": "AUTHORIZER"},
            # A ceiling for the whole stage, above every plan's rate: it is all that limits requests without a key.
            "MethodSettings": [{"ResourcePath": "/*", "HttpMethod": "*", "ThrottlingRateLimit": STAGE_RATE_LIMIT,
                                "ThrottlingBurstLimit": STAGE_BURST_LIMIT, "MetricsEnabled": True}],
            # gzip for callers that accept it (browsers through CloudFront, whose page behaviour cannot compress).
            "MinimumCompressionSize": API_MIN_COMPRESSION_BYTES,
        }
    }


def _alarm(name: str, description: str, **properties: Any) -> dict[str, Any]:
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmName": _sub(f"{NAME_PREFIX}-{name}"),
            "AlarmDescription": description,
            "AlarmActions": [{"Ref": "AlarmTopic"}],
            "OKActions": [{"Ref": "AlarmTopic"}],
            "TreatMissingData": "notBreaching",
            "EvaluationPeriods": 1,
            **properties,
        },
    }


def _metric(namespace: str, name: str, dimensions: dict[str, Any], stat: str = "Sum",
            period: int = 300) -> dict[str, Any]:
    return {"Metric": {"Namespace": namespace, "MetricName": name,
                       "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()]},
            "Period": period, "Stat": stat}


def alarms(tables: dict[str, Any], queues: dict[str, Any]) -> dict[str, Any]:
    """Alarms to one SNS topic (`AlarmTopic`; e-mail subscription when the `AlarmEmail` parameter is set)."""
    resources: dict[str, Any] = {
        "AlarmTopic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": _sub(f"{NAME_PREFIX}-alarms")}},
        "AlarmEmailSubscription": {
            "Type": "AWS::SNS::Subscription",
            "Condition": "HasAlarmEmail",
            "Properties": {"TopicArn": {"Ref": "AlarmTopic"}, "Protocol": "email", "Endpoint": {"Ref": "AlarmEmail"}},
        },
    }
    for logical_id, queue in queues.items():
        queue_name = queue["Properties"]["QueueName"]
        short = queue_name["Fn::Sub"].removeprefix(f"{NAME_PREFIX}-")
        sqs = {"QueueName": queue_name}
        if "RedrivePolicy" not in queue["Properties"]:
            resources[f"{logical_id}NotEmptyAlarm"] = _alarm(
                f"{short}-not-empty", f"Messages in {short}: they failed every retry; inspect, fix, redrive.",
                Namespace="AWS/SQS", MetricName="ApproximateNumberOfMessagesVisible", Dimensions=_dims(sqs),
                Statistic="Maximum", Period=300, Threshold=0, ComparisonOperator="GreaterThanThreshold",
            )
            continue
        resources[f"{logical_id}AgeAlarm"] = _alarm(
            f"{short}-oldest-message", f"The oldest {short} message waits longer than its threshold: the worker lags.",
            Namespace="AWS/SQS", MetricName="ApproximateAgeOfOldestMessage", Dimensions=_dims(sqs),
            Statistic="Maximum", Period=300, EvaluationPeriods=2, Threshold=QUEUE_AGE_ALARM_SECONDS[logical_id],
            ComparisonOperator="GreaterThanThreshold",
        )
    api = {"ApiName": _sub(API_NAME), "Stage": API_STAGE}
    resources["Api5xxRateAlarm"] = _alarm(
        "api-5xx-rate", f"More than {API_5XX_PERCENT}% of API requests answered 5xx over 5 minutes.",
        Metrics=[
            {"Id": "errors", "MetricStat": _metric("AWS/ApiGateway", "5XXError", api), "ReturnData": False},
            {"Id": "requests", "MetricStat": _metric("AWS/ApiGateway", "Count", api), "ReturnData": False},
            {"Id": "rate", "Expression": "IF(requests > 0, 100 * errors / requests, 0)", "Label": "5xx %",
             "ReturnData": True},
        ],
        Threshold=API_5XX_PERCENT, ComparisonOperator="GreaterThanThreshold",
    )
    for key, (name, logical_id) in function_ids().items():
        fn = {"FunctionName": {"Ref": logical_id}}
        resources[f"{logical_id}ThrottlesAlarm"] = _alarm(
            f"{name}-throttles", "Lambda throttled invocations (concurrency limit reached).",
            Namespace="AWS/Lambda", MetricName="Throttles", Dimensions=_dims(fn), Statistic="Sum", Period=300,
            Threshold=0, ComparisonOperator="GreaterThanThreshold",
        )
        if key in WORKERS:
            resources[f"{logical_id}ErrorsAlarm"] = _alarm(
                f"{name}-errors", "The worker failed (an exception or a timeout).",
                Namespace="AWS/Lambda", MetricName="Errors", Dimensions=_dims(fn), Statistic="Sum", Period=300,
                Threshold=0, ComparisonOperator="GreaterThanThreshold",
            )
    resources["ReconciliationMismatchesAlarm"] = reconciliation_alarm()
    for logical_id, table in tables.items():
        name = table["Properties"]["TableName"]
        short = name["Fn::Sub"].removeprefix(f"{NAME_PREFIX}-")
        ddb = {"TableName": name}
        resources[f"{logical_id}ThrottlesAlarm"] = _alarm(
            f"{short}-table-throttles", f"DynamoDB throttled requests on the {short} table (on-demand limits).",
            Metrics=[
                {"Id": "reads", "MetricStat": _metric("AWS/DynamoDB", "ReadThrottleEvents", ddb), "ReturnData": False},
                {"Id": "writes", "MetricStat": _metric("AWS/DynamoDB", "WriteThrottleEvents", ddb),
                 "ReturnData": False},
                {"Id": "throttled", "Expression": "reads + writes", "Label": "throttle events", "ReturnData": True},
            ],
            Threshold=0, ComparisonOperator="GreaterThanThreshold",
        )
    return resources


def reconciliation_alarm() -> dict[str, Any]:
    """Any card whose balance disagrees with its ledger, found by the nightly reconciliation (its own metric)."""
    from chalicelib.observability import NAMESPACE
    from chalicelib.services.reporting import reconciliation

    return _alarm(
        "reconciliation-mismatches", "The nightly reconciliation found cards whose balance disagrees with their "
        "ledger: see the jobs worker's 'reconciliation mismatch' log lines, then `cli reconcile --scope`.",
        Namespace=NAMESPACE, MetricName=reconciliation.METRIC, Dimensions=_dims(reconciliation.METRIC_DIMENSIONS),
        Statistic="Sum", Period=RECONCILIATION_ALARM_PERIOD, Threshold=0, ComparisonOperator="GreaterThanThreshold",
    )


def _dims(dimensions: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"Name": k, "Value": v} for k, v in dimensions.items()]


def function_environment() -> dict[str, Any]:
    """Environment every function gets from the template (merged into Chalice's from .chalice/config.json).

    The pool and client ids exist only once the stack does; the identity table's name is its Ref, so a
    function also waits for the table. Locally these are unset and `chalicelib/settings.py` derives them.
    """
    return {
        "STAFF_POOL_ID": {"Ref": STAFF_POOL},
        "STAFF_CLIENT_ID": {"Ref": STAFF_CLIENT},
        "IDENTITY_TABLE": {"Ref": "IdentityTable"},
        **wallet_environment(),
    }


def function_patches(queues: dict[str, Any]) -> dict[str, Any]:
    """Per function: its name, its own role, the staff pool's ids; the workers' SQS fixes; the API's usage plans."""
    patches = worker_patches(queues)
    for key, (_, logical_id) in function_ids().items():
        patch = patches.setdefault(logical_id, {})
        properties = patch.setdefault("Properties", {})
        properties["FunctionName"] = function_name(key)
        properties["Role"] = {"Fn::GetAtt": [f"{logical_id}Role", "Arn"]}
        properties["Environment"] = {"Variables": function_environment()}
    patches["APIHandler"]["Properties"]["Environment"]["Variables"]["USAGE_PLAN_IDS"] = usage_plan_ids()
    return patches

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
        if response_type in RETRY_AFTER:
            properties["ResponseParameters"] = {"gatewayresponse.header.Retry-After": f"'{RETRY_AFTER[response_type]}'"}
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
    missing = {t for access in FUNCTIONS.values() for t in access.tables} - set(tables)
    if missing:
        raise SystemExit(f"FUNCTIONS grant tables that do not exist: {sorted(missing)}")
    resources: dict[str, Any] = dict(tables)
    queues = queue_resources()
    resources.update(queues)
    resources.update(bucket_resources())
    resources.update(assets_bucket_resources())
    resources.update(function_roles())
    resources.update(gateway_responses())
    resources.update(usage_plans())
    resources["RestAPI"] = rest_api_patch()
    resources.update(function_patches(queues))
    resources.update(alarms(tables, queues))
    resources.update(staff_pool_resources())
    resources.update(console_distribution_resources())
    return {
        "Parameters": {
            "Stage": {
                "Type": "String",
                "AllowedPattern": "^[a-z][a-z0-9-]{0,20}$",
                "Description": "Chalice stage (dev, prod): physical names are loyalty-<Stage>-<resource>.",
            },
            "AlarmEmail": {
                "Type": "String",
                "Default": "",
                "Description": "Where alarm notifications go (confirm the subscription e-mail); empty: topic only.",
            },
            **staff_parameters(),
            **console_parameters(),
            **wallet_parameters(),
        },
        "Conditions": {
            "HasAlarmEmail": {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]},
            "HasWalletSecret": {"Fn::Not": [{"Fn::Equals": [{"Ref": "WalletCredentialsSecret"}, ""]}]},
            **staff_conditions(),
            **console_conditions(),
        },
        "Rules": console_rules(),
        "Resources": resources,
        "Outputs": {**staff_outputs(), **console_outputs()},
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
