"""The Cognito user pool of staff: passwords and MFA live there, never in our tables or logs.

Every call names the user by e-mail (the pool's username attribute). Cognito's
refusals come back as `PoolRefused` with a short reason the services map to
one answer each; a password or a code never appears in an exception message.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.settings import settings
from chalicelib.storage.aws import client

_ids_lock = threading.Lock()
_ids: tuple[str, str] | None = None

REASONS = {
    "NotAuthorizedException": "not_authorized",
    "UserNotFoundException": "not_authorized",
    "PasswordResetRequiredException": "not_authorized",
    "UserNotConfirmedException": "not_authorized",
    "CodeMismatchException": "code_mismatch",
    "EnableSoftwareTokenMFAException": "code_mismatch",
    "ExpiredCodeException": "expired",
    "InvalidPasswordException": "invalid_password",
    "UsernameExistsException": "exists",
    "ResourceNotFoundException": "expired",
    "TooManyRequestsException": "throttled",
    "LimitExceededException": "throttled",
    "TooManyFailedAttemptsException": "throttled",
}


class PoolRefused(Exception):
    """Cognito said no; `reason` is one of REASONS' values (or `other`), `detail` Cognito's message."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Tokens:
    access: str
    refresh: str


@dataclass(frozen=True)
class PasswordResult:
    """Either tokens (no MFA enrolled yet) or Cognito's MFA challenge session."""

    tokens: Tokens | None
    challenge_session: str | None


def pool_ids() -> tuple[str, str]:
    """(pool id, app client id): from the stage's settings, or found by name on the local stack."""
    global _ids
    with _ids_lock:
        if _ids is None:
            _ids = _resolve_ids()
        return _ids


def forget_ids() -> None:
    global _ids
    with _ids_lock:
        _ids = None


def create_user(email: str) -> None:
    """Create the account (no e-mail from Cognito: our invitation is the message); an existing one is kept."""
    pool_id, _ = pool_ids()
    try:
        _call("admin_create_user", UserPoolId=pool_id, Username=email, MessageAction="SUPPRESS",
              UserAttributes=[{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}])
    except PoolRefused as refused:
        if refused.reason != "exists":
            raise


def set_password(email: str, password: str) -> None:
    pool_id, _ = pool_ids()
    _call("admin_set_user_password", UserPoolId=pool_id, Username=email, Password=password, Permanent=True)


def password_sign_in(email: str, password: str, source_ip: str = "", user_agent: str = "") -> PasswordResult:
    """Cognito checks the password; the client's address and browser go along for its threat protection."""
    pool_id, client_id = pool_ids()
    context: dict[str, Any] = {}
    if source_ip and source_ip != "-":
        context = {"ContextData": {"IpAddress": source_ip, "ServerName": "loyalty", "ServerPath": "/v1/auth/sign-in",
                                   "HttpHeaders": [{"headerName": "User-Agent", "headerValue": user_agent or "-"}]}}
    out = _call("admin_initiate_auth", UserPoolId=pool_id, ClientId=client_id, AuthFlow="ADMIN_USER_PASSWORD_AUTH",
                AuthParameters={"USERNAME": email, "PASSWORD": password}, **context)
    if "AuthenticationResult" in out:
        return PasswordResult(_tokens(out["AuthenticationResult"]), None)
    if out.get("ChallengeName") == "SOFTWARE_TOKEN_MFA":
        return PasswordResult(None, str(out["Session"]))
    raise PoolRefused("not_authorized", f"unexpected challenge {out.get('ChallengeName')}")


def answer_mfa(email: str, challenge_session: str, code: str) -> Tokens:
    pool_id, client_id = pool_ids()
    out = _call("admin_respond_to_auth_challenge", UserPoolId=pool_id, ClientId=client_id,
                ChallengeName="SOFTWARE_TOKEN_MFA", Session=challenge_session,
                ChallengeResponses={"USERNAME": email, "SOFTWARE_TOKEN_MFA_CODE": code})
    if "AuthenticationResult" not in out:
        raise PoolRefused("not_authorized", "no tokens after the MFA challenge")
    return _tokens(out["AuthenticationResult"])


def start_enrolment(access_token: str) -> str:
    """A new authenticator secret (base32) for the signed-in user."""
    return str(_call("associate_software_token", AccessToken=access_token)["SecretCode"])


def finish_enrolment(email: str, access_token: str, code: str) -> None:
    """Check the first code of the new authenticator, then require it at every sign-in."""
    out = _call("verify_software_token", AccessToken=access_token, UserCode=code, FriendlyDeviceName="authenticator")
    if out.get("Status") != "SUCCESS":
        raise PoolRefused("code_mismatch", "the code did not verify")
    set_mfa(email, enabled=True)


def set_mfa(email: str, *, enabled: bool) -> None:
    pool_id, _ = pool_ids()
    _call("admin_set_user_mfa_preference", UserPoolId=pool_id, Username=email,
          SoftwareTokenMfaSettings={"Enabled": enabled, "PreferredMfa": enabled})


def still_valid(refresh_token: str) -> bool:
    """Does Cognito still honour this refresh token (not signed out everywhere, user enabled)?"""
    pool_id, client_id = pool_ids()
    try:
        _call("admin_initiate_auth", UserPoolId=pool_id, ClientId=client_id, AuthFlow="REFRESH_TOKEN_AUTH",
              AuthParameters={"REFRESH_TOKEN": refresh_token})
    except PoolRefused as refused:
        if refused.reason == "not_authorized":
            return False
        raise
    return True


def sign_out_everywhere(email: str) -> None:
    """Revoke every refresh token Cognito issued to the user."""
    pool_id, _ = pool_ids()
    _call("admin_user_global_sign_out", UserPoolId=pool_id, Username=email)


def set_enabled(email: str, *, enabled: bool) -> None:
    pool_id, _ = pool_ids()
    _call("admin_enable_user" if enabled else "admin_disable_user", UserPoolId=pool_id, Username=email)


def delete_user(email: str) -> None:
    pool_id, _ = pool_ids()
    try:
        _call("admin_delete_user", UserPoolId=pool_id, Username=email)
    except PoolRefused as refused:
        if refused.reason != "not_authorized":
            raise


# --- helpers ----------------------------------------------------------------------------------------------------

def _call(operation: str, **params: Any) -> dict[str, Any]:
    try:
        out: dict[str, Any] = getattr(client("cognito-idp"), operation)(**params)
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code", "")
        raise PoolRefused(REASONS.get(code, "other"), f"{code}: {err.response.get('Error', {}).get('Message', '')}"
                          if code == "InvalidPasswordException" else code) from None
    return out


def _tokens(result: dict[str, Any]) -> Tokens:
    return Tokens(str(result["AccessToken"]), str(result.get("RefreshToken", "")))


def _resolve_ids() -> tuple[str, str]:
    pool_id, client_id = settings.staff_pool_id, settings.staff_client_id
    idp = client("cognito-idp")
    if not pool_id:
        pools = idp.list_user_pools(MaxResults=60).get("UserPools", [])
        pool_id = next((p["Id"] for p in pools if p["Name"] == settings.staff_pool_name), "")
        if not pool_id:
            raise RuntimeError(f"no Cognito user pool named {settings.staff_pool_name}")
    if not client_id:
        clients = idp.list_user_pool_clients(UserPoolId=pool_id, MaxResults=60).get("UserPoolClients", [])
        client_name = settings.staff_pool_name.removesuffix("-staff") + "-console"
        client_id = next((c["ClientId"] for c in clients if c["ClientName"] == client_name), "")
        if not client_id:
            raise RuntimeError(f"no app client {client_name} in the staff pool")
    return pool_id, client_id
