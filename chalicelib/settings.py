"""Runtime configuration, read once from the stage environment.

Every resource name comes from an environment variable set per stage in
`.chalice/config.json`, so the same code runs against AWS, the local moto
server, or any DynamoDB/SQS/S3-compatible endpoint (`AWS_ENDPOINT_URL`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    stage: str
    region: str
    directory_table: str
    api_keys_table: str
    audit_table: str
    loyalty_table: str
    people_table: str
    identity_table: str
    """Staff accounts, memberships and browser sessions (storage/tables.IdentityRecord)."""
    people_region: str
    """Where the personal-data table lives (152-FZ/GDPR placement); the stack's region unless set."""
    link_secret: str
    """Signs public links (unsubscribe, survey invitations). Set per stage; local and test use a fixed one."""
    jobs_queue: str
    mail_queue: str
    """One message per recipient and message: the mail worker sends it (SES e-mail, SNS SMS)."""
    reports_bucket: str
    assets_bucket: str
    """Tenants' image libraries (e-mail images): private, served through the API's public `/assets/` route."""
    reports_queue: str
    """One message per report request: the reports worker builds the file (up to 15 minutes)."""
    webhooks_queue: str
    """One message per webhook delivery attempt (an event to one endpoint); the webhooks worker POSTs it."""
    webhooks_allow_loopback_http: bool
    """Let webhook endpoints be http://127.0.0.1 / localhost (local stack and tests only; off by default)."""
    max_body_bytes: int
    public_base_url: str
    """Where customers reach the public API (unsubscribe links), e.g. `https://api.example.com/api`, no trailing
    slash. Empty: links in messages are relative and e-mail goes without List-Unsubscribe headers."""
    staff_pool_name: str
    staff_pool_id: str
    """The Cognito user pool of staff accounts (set by the template). Empty: found by `staff_pool_name` (local)."""
    staff_client_id: str
    """The pool's app client the API signs people in with. Empty: the pool's client named like the pool."""
    console_origins: tuple[str, ...]
    """Origins a signed-in browser may send state-changing requests from (`CONSOLE_ORIGINS`, comma-separated);
    the API's own origin is always allowed. Cross-site requests are refused."""
    staff_mail_from: str
    """The sender of staff e-mail (invitations, password resets): an address verified in SES."""
    console_base_url: str
    """Where people open the links of staff e-mail (the console), no trailing slash; the public base URL if unset."""
    usage_plan_ids: dict[str, str]
    """API Gateway usage plan id per plan name (`USAGE_PLAN_IDS`, a JSON object set by the template). Empty where
    there is no API Gateway (local stack, tests): tenants' usage keys are then not registered anywhere."""
    wallet_queue: str = ""
    """One message per wallet pass update (a card's balance, tier or status changed): the wallet worker pushes it."""
    wallet_credentials: str = ""
    """Where the wallet's keys are: `dir:<path>` (PEM files, the local stack's generated test ones) or
    `secret:<name>` (a Secrets Manager JSON secret, deployed). Empty: wallet passes are not offered (503)."""
    wallet_pass_type_id: str = ""
    """Apple's Pass Type ID (the certificate's subject UID and the APNs topic), e.g. `pass.com.example.loyalty`."""
    wallet_team_id: str = ""
    """The Apple Developer team identifier that owns the Pass Type ID."""
    apns_url: str = ""
    """APNs: `https://api.push.apple.com` (HTTP/2, the pass certificate as the client certificate)."""
    google_wallet_api: str = ""
    """The Google Wallet REST API base (`https://walletobjects.googleapis.com/walletobjects/v1`)."""
    google_token_url: str = ""
    """Where the service account's JWT is exchanged for an access token (`https://oauth2.googleapis.com/token`)."""
    google_logo_url: str = ""
    """The loyalty classes' logo, an https URL Google fetches (Google requires one to approve a class). Empty (the
    local stack): the class goes without it."""
    google_callback_keys_url: str = ""
    """Where Google publishes its root signing keys for callbacks (`https://pay.google.com/gp/m/issuer/keys`); the
    `wallet_google_keys` schedule fetches them (locally: the recorder's test root key)."""


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def _local_wallet(stage: str) -> str:
    """The local stack and the tests use the test keys `make run` generates under the state directory."""
    if stage not in ("local", "test"):
        return ""
    root = os.environ.get("LOCAL_STATE_DIR") or os.path.join(os.path.dirname(os.path.dirname(__file__)), ".local")
    return "dir:" + os.path.join(os.path.abspath(root), "wallet")


def load() -> Settings:
    stage = _env("STAGE", "local")
    prefix = f"loyalty-{stage}"
    return Settings(
        stage=stage,
        region=_env("AWS_DEFAULT_REGION", _env("AWS_REGION", "eu-central-1")),
        directory_table=_env("DIRECTORY_TABLE", f"{prefix}-directory"),
        api_keys_table=_env("API_KEYS_TABLE", f"{prefix}-api-keys"),
        audit_table=_env("AUDIT_TABLE", f"{prefix}-audit"),
        loyalty_table=_env("LOYALTY_TABLE", f"{prefix}-loyalty"),
        people_table=_env("PEOPLE_TABLE", f"{prefix}-people"),
        identity_table=_env("IDENTITY_TABLE", f"{prefix}-identity"),
        people_region=_env("PEOPLE_REGION", _env("AWS_DEFAULT_REGION", _env("AWS_REGION", "eu-central-1"))),
        link_secret=_env("LINK_SECRET", f"local-only-link-secret-{stage}" if stage in ("local", "test") else ""),
        jobs_queue=_env("JOBS_QUEUE", f"{prefix}-jobs"),
        mail_queue=_env("MAIL_QUEUE", f"{prefix}-mail"),
        reports_bucket=_env("REPORTS_BUCKET", f"{prefix}-reports"),
        assets_bucket=_env("ASSETS_BUCKET", f"{prefix}-assets"),
        reports_queue=_env("REPORTS_QUEUE", f"{prefix}-reports"),
        webhooks_queue=_env("WEBHOOKS_QUEUE", f"{prefix}-webhooks"),
        webhooks_allow_loopback_http=_env("WEBHOOKS_ALLOW_LOOPBACK_HTTP", "false").lower() in ("1", "true", "yes"),
        max_body_bytes=int(_env("MAX_BODY_BYTES", str(256 * 1024))),
        public_base_url=_env("PUBLIC_BASE_URL", "").rstrip("/"),
        staff_pool_name=_env("STAFF_POOL_NAME", f"{prefix}-staff"),
        staff_pool_id=_env("STAFF_POOL_ID", ""),
        staff_client_id=_env("STAFF_CLIENT_ID", ""),
        console_origins=tuple(o.strip().rstrip("/") for o in _env("CONSOLE_ORIGINS", "").split(",") if o.strip()),
        staff_mail_from=_env("STAFF_MAIL_FROM", "Loyalty <no-reply@loyalty.example>"),
        console_base_url=_env("CONSOLE_BASE_URL", _env("PUBLIC_BASE_URL", "")).rstrip("/"),
        usage_plan_ids={str(k): str(v) for k, v in json.loads(_env("USAGE_PLAN_IDS", "{}")).items()},
        wallet_queue=_env("WALLET_QUEUE", f"{prefix}-wallet"),
        wallet_credentials=_env("WALLET_CREDENTIALS", _local_wallet(stage)),
        wallet_pass_type_id=_env("WALLET_PASS_TYPE_ID", "pass.local.loyalty.card"),
        wallet_team_id=_env("WALLET_TEAM_ID", "LOCALTEAM1"),
        apns_url=_env("APNS_URL", "https://api.push.apple.com").rstrip("/"),
        google_wallet_api=_env("GOOGLE_WALLET_API", "https://walletobjects.googleapis.com/walletobjects/v1").rstrip("/"),
        google_token_url=_env("GOOGLE_TOKEN_URL", "https://oauth2.googleapis.com/token"),
        google_logo_url=_env("GOOGLE_WALLET_LOGO_URL", ""),
        google_callback_keys_url=_env("GOOGLE_CALLBACK_KEYS_URL", "https://pay.google.com/gp/m/issuer/keys"),
    )


settings = load()
