"""The staff user pool in the committed template: the settings the sign-in design relies on (issue 20).

The app enforces MFA per role, signs people in server-side (AdminInitiateAuth) and keeps its own sessions;
these tests pin the pool and client settings that design assumes, the optional SSO, and the grants.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra import template


@pytest.fixture(scope="module")
def stack() -> dict[str, Any]:
    return json.loads(template.RESOURCES_PATH.read_text())


@pytest.fixture(scope="module")
def resources(stack: dict[str, Any]) -> dict[str, Any]:
    return stack["Resources"]


def _statements(resources: dict[str, Any], function: str) -> dict[str, dict[str, Any]]:
    (policy,) = resources[f"{function}Role"]["Properties"]["Policies"]
    return {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}


def test_pool_is_invitation_only_with_optional_totp_and_kept_on_stack_deletion(resources: dict[str, Any]) -> None:
    pool = resources["StaffUserPool"]
    assert pool["Type"] == "AWS::Cognito::UserPool"
    assert pool["DeletionPolicy"] == pool["UpdateReplacePolicy"] == "Retain"
    props = pool["Properties"]
    assert props["UserPoolName"] == {"Fn::Sub": "loyalty-${Stage}-staff"}
    assert props["DeletionProtection"] == "ACTIVE"
    assert props["UsernameAttributes"] == ["email"]
    assert props["UsernameConfiguration"] == {"CaseSensitive": False}
    assert props["AutoVerifiedAttributes"] == ["email"]
    # MFA is the app's decision per role: the pool allows TOTP (never SMS) and does not force it on everyone.
    assert props["MfaConfiguration"] == "OPTIONAL"
    assert props["EnabledMfas"] == ["SOFTWARE_TOKEN_MFA"]
    assert props["AdminCreateUserConfig"] == {"AllowAdminCreateUserOnly": True}
    assert props["AccountRecoverySetting"] == {"RecoveryMechanisms": [{"Name": "verified_email", "Priority": 1}]}
    policy = props["Policies"]["PasswordPolicy"]
    assert policy["MinimumLength"] >= 12
    assert policy["RequireLowercase"] and policy["RequireUppercase"] and policy["RequireNumbers"]
    assert policy["TemporaryPasswordValidityDays"] == 7
    assert "EmailConfiguration" not in props, "the app sends its own e-mail through SES"


def test_advanced_security_is_a_parameter_and_brings_the_plus_plan(stack: dict[str, Any]) -> None:
    props = stack["Resources"]["StaffUserPool"]["Properties"]
    assert props["UserPoolAddOns"] == {"AdvancedSecurityMode": {"Ref": "StaffAdvancedSecurity"}}
    parameter = stack["Parameters"]["StaffAdvancedSecurity"]
    assert parameter["Default"] == "OFF" and parameter["AllowedValues"] == ["OFF", "AUDIT", "ENFORCED"]
    assert props["UserPoolTier"] == {"Fn::If": ["StaffAdvancedSecurityOn", "PLUS", "ESSENTIALS"]}
    assert stack["Conditions"]["StaffAdvancedSecurityOn"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "StaffAdvancedSecurity"}, "OFF"]}]}


def test_console_client_signs_in_server_side_only_with_short_tokens(resources: dict[str, Any]) -> None:
    client = resources["StaffUserPoolClient"]
    assert client["Type"] == "AWS::Cognito::UserPoolClient"
    props = client["Properties"]
    assert props["ClientName"] == {"Fn::Sub": "loyalty-${Stage}-console"}
    assert props["UserPoolId"] == {"Ref": "StaffUserPool"}
    assert props["GenerateSecret"] is False
    assert props["ExplicitAuthFlows"] == ["ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    assert props["PreventUserExistenceErrors"] == "ENABLED"
    assert props["EnableTokenRevocation"] is True
    assert (props["AccessTokenValidity"], props["IdTokenValidity"], props["RefreshTokenValidity"]) == (60, 60, 12)
    assert props["TokenValidityUnits"] == {"AccessToken": "minutes", "IdToken": "minutes", "RefreshToken": "hours"}


def test_sso_is_off_by_default_and_everything_it_needs_is_conditional(stack: dict[str, Any]) -> None:
    parameters, resources = stack["Parameters"], stack["Resources"]
    assert parameters["StaffSsoType"]["Default"] == "NONE"
    assert parameters["StaffSsoType"]["AllowedValues"] == ["NONE", "SAML", "OIDC"]
    for name in ("StaffSsoName", "StaffSsoMetadataUrl", "StaffSsoOidcIssuer", "StaffSsoOidcClientId",
                 "StaffSsoOidcClientSecret", "StaffSsoDomainPrefix", "StaffSsoCallbackUrl"):
        assert parameters[name]["Default"] == ("AgencySSO" if name == "StaffSsoName" else ""), name
        assert parameters[name]["Description"].startswith("SSO"), name
    assert parameters["StaffSsoOidcClientSecret"]["NoEcho"] is True
    assert stack["Conditions"]["StaffSso"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "StaffSsoType"}, "NONE"]}]}

    provider = resources["StaffIdentityProvider"]
    assert provider["Type"] == "AWS::Cognito::UserPoolIdentityProvider" and provider["Condition"] == "StaffSso"
    assert provider["Properties"]["ProviderType"] == {"Fn::If": ["StaffSsoSaml", "SAML", "OIDC"]}
    saml, oidc = provider["Properties"]["ProviderDetails"]["Fn::If"][1:]
    assert saml == {"MetadataURL": {"Ref": "StaffSsoMetadataUrl"}}
    assert oidc["oidc_issuer"] == {"Ref": "StaffSsoOidcIssuer"} and "email" in oidc["authorize_scopes"].split()
    assert set(provider["Properties"]["AttributeMapping"]) == {"email"}
    domain = resources["StaffUserPoolDomain"]
    assert domain["Type"] == "AWS::Cognito::UserPoolDomain" and domain["Condition"] == "StaffSso"
    assert domain["Properties"]["Domain"] == {"Fn::If": ["StaffSsoDomainGiven", {"Ref": "StaffSsoDomainPrefix"},
                                                         {"Fn::Sub": "loyalty-${Stage}-${AWS::AccountId}"}]}

    client = resources["StaffUserPoolClient"]["Properties"]
    assert client["SupportedIdentityProviders"] == {
        "Fn::If": ["StaffSso", ["COGNITO", {"Ref": "StaffIdentityProvider"}], ["COGNITO"]]}
    no_value = {"Ref": "AWS::NoValue"}
    assert client["AllowedOAuthFlows"] == {"Fn::If": ["StaffSso", ["code"], no_value]}
    assert client["AllowedOAuthScopes"] == {"Fn::If": ["StaffSso", ["openid", "email"], no_value]}
    assert client["CallbackURLs"] == {"Fn::If": ["StaffSsoCallbackGiven", [{"Ref": "StaffSsoCallbackUrl"}], no_value]}
    assert {"Condition": "StaffSso"} in stack["Conditions"]["StaffSsoCallbackGiven"]["Fn::And"]
    assert client["AllowedOAuthFlowsUserPoolClient"] == {"Fn::If": ["StaffSso", True, no_value]}
    assert {o.get("Condition") for k, o in stack["Outputs"].items() if k.startswith("StaffSso")} == {
        "StaffSso", "StaffSsoSaml"}


def test_only_the_api_manages_accounts_and_only_in_the_staff_pool(resources: dict[str, Any]) -> None:
    api = _statements(resources, "APIHandler")
    staff = api["StaffAccounts"]
    assert staff["Resource"] == [{"Fn::GetAtt": ["StaffUserPool", "Arn"]}]
    assert set(staff["Action"]) == {f"cognito-idp:{a}" for a in (
        "AdminCreateUser", "AdminGetUser", "AdminSetUserPassword", "AdminInitiateAuth",
        "AdminRespondToAuthChallenge", "AdminSetUserMFAPreference", "AdminUserGlobalSignOut", "AdminDisableUser",
        "AdminEnableUser", "AdminDeleteUser", "AdminUpdateUserAttributes")}
    holders = [r for r in resources if r.endswith("Role") and "StaffAccounts" in _statements(resources, r[:-4])]
    assert holders == ["APIHandlerRole"]
    assert not [s for r in holders for s in _statements(resources, r[:-4]).values()
                if any(a.startswith("cognito-idp:") for a in s["Action"]) and s["Resource"] == "*"]

    identity = {"Fn::GetAtt": ["IdentityTable", "Arn"]}
    assert identity in api["TablesWrite"]["Resource"]
    authorizer = _statements(resources, template.function_ids()[template.AUTHORIZER][1])
    assert identity in authorizer["TablesWrite"]["Resource"], "a session is read, touched or ended by the authorizer"
    jobs = _statements(resources, "JobsWorker")
    assert identity in jobs["TablesWrite"]["Resource"], "invitation and password-reset e-mail"
    assert identity not in jobs.get("TablesScan", {}).get("Resource", [])
    assert identity not in _statements(resources, "MailWorker")["TablesRead"]["Resource"]
    assert jobs["SendEmail"]["Action"] == ["ses:SendEmail", "ses:SendRawEmail"], "staff e-mail, from the jobs worker"
    assert "SendSms" not in jobs and "SendEmail" not in api, "the API queues e-mail, it never sends it"
    assert template.policy_problems(resources) == []
    wildcard = {"R": {"Type": "AWS::IAM::Role", "Properties": {"Policies": [{"PolicyDocument": {"Statement": [
        {"Effect": "Allow", "Action": ["cognito-idp:AdminCreateUser"], "Resource": "*"}]}}]}}}
    assert template.policy_problems(wildcard) == ["R: cognito-idp:AdminCreateUser on ['*']"]


def test_every_function_gets_the_pool_client_and_identity_table(resources: dict[str, Any]) -> None:
    for _, logical_id in template.function_ids().values():
        variables = resources[logical_id]["Properties"]["Environment"]["Variables"]
        assert variables["STAFF_POOL_ID"] == {"Ref": "StaffUserPool"}, logical_id
        assert variables["STAFF_CLIENT_ID"] == {"Ref": "StaffUserPoolClient"}, logical_id
        assert variables["IDENTITY_TABLE"] == {"Ref": "IdentityTable"}, logical_id
    assert "USAGE_PLAN_IDS" in resources["APIHandler"]["Properties"]["Environment"]["Variables"]


def test_outputs_name_the_pool_and_the_client(stack: dict[str, Any]) -> None:
    assert stack["Outputs"]["StaffUserPoolId"]["Value"] == {"Ref": "StaffUserPool"}
    assert stack["Outputs"]["StaffUserPoolClientId"]["Value"] == {"Ref": "StaffUserPoolClient"}
