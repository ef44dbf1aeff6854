"""The local stack's first platform admin: a person who can sign in on a fresh stack, and their authenticator codes.

    python -m infra.local.first_admin           # the admin's MFA code now (what an authenticator app shows)
    python -m infra.local.first_admin show      # the admin's e-mail, password, MFA secret and QR code again
    python -m infra.local.first_admin code --secret <base32>   # the code of another secret

`make run` (infra/local/run.py) calls `ensure()` on every start: the first time
it creates the account (`chalicelib.services.identity.bootstrap`, with a
generated password and an enrolled authenticator) and saves its credentials to
`.local/admin.json` (plaintext, owner-only, like keys.json: dev only, the
password and secret cannot be read back from Cognito); later starts find the
account, check the saved password with Cognito, enrol the authenticator again
if the replayed state lost it (`restore_mfa`), and print the saved credentials
again. The e2e tests read the same file.

`code` needs no running stack: it computes the RFC 6238 code from the saved
secret. On the local stack moto's Cognito gives every account the same MFA
secret, so `code` also gives the code of anyone who enrolled locally.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from email.utils import parseaddr
from pathlib import Path
from typing import Any

ADMIN_EMAIL = "admin@loyalty.local"
FILE_NAME = "admin.json"
COOKIE = "Cookie: __Host-lp_session"
FRESH_SECONDS = 3
"""A code with fewer seconds left than this is not offered: it may expire before the server checks it."""


def load(path: Path) -> dict[str, Any] | None:
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict) or not {"email", "password", "mfa_secret", "otpauth_uri"} <= set(saved):
        return None
    return saved


def save(path: Path, admin: dict[str, Any]) -> None:
    """Atomically, readable by the owner only (a live credential, if only a local one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(admin, indent=2) + "\n")
    tmp.chmod(0o600)
    tmp.replace(path)


def ensure(path: Path, email: str = ADMIN_EMAIL) -> tuple[dict[str, Any] | None, str]:
    """(the admin's credentials, what happened: `created`, `found`, `re-enrolled` or why they do not work).

    Credentials are None if the account exists but `path` lost them. Needs the stack's environment
    (run.py sets it) and its user pool and tables.
    """
    from chalicelib.services.identity.bootstrap import ensure_platform_admin

    made = ensure_platform_admin(email)
    if made is not None:
        admin = {"email": made.email, "password": made.password, "mfa_secret": made.mfa_secret,
                 "otpauth_uri": made.otpauth_uri, "user_id": made.user_id}
        save(path, admin)
        return admin, "created"
    saved = load(path)
    if saved is None or saved["email"] != email:
        return None, "found"
    return saved, restore_mfa(path, saved)


def restore_mfa(path: Path, admin: dict[str, Any]) -> str:
    """Check the saved password with Cognito, and enrol the authenticator again if the local pool lost it.

    A restart replays the recorded AWS calls, but not an enrolment: `AssociateSoftwareToken` and
    `VerifySoftwareToken` carry the access token of the earlier run (and a code of its 30 s step), so
    moto refuses them and the account comes back without MFA. Enrolling again here keeps the printed
    credentials true (moto's secret is the same for every enrolment; if it ever differs, it is saved).
    """
    from chalicelib.domain.identity import otpauth_uri
    from chalicelib.services.identity.sign_in import ISSUER
    from chalicelib.storage import staff_pool

    email = admin["email"]
    try:
        result = staff_pool.password_sign_in(email, admin["password"])
    except staff_pool.PoolRefused as refused:
        return f"the saved password no longer signs in ({refused.reason}): was it changed?"
    if result.tokens is None:  # Cognito asks for the code: enrolled as saved
        return "found"
    secret = staff_pool.start_enrolment(result.tokens.access)
    staff_pool.finish_enrolment(email, result.tokens.access, current_code(secret)[0])
    staff_pool.sign_out_everywhere(email)
    if secret != admin["mfa_secret"]:
        admin.update(mfa_secret=secret, otpauth_uri=otpauth_uri(secret, email, ISSUER))
        save(path, admin)
    return "re-enrolled"


def verify_staff_sender() -> str:
    """SES refuses mail from an unverified address: verify the one staff e-mail comes from (idempotent)."""
    import boto3

    from chalicelib.settings import settings

    address = parseaddr(settings.staff_mail_from)[1]
    boto3.client("ses", region_name=settings.region).verify_email_identity(EmailAddress=address)
    return address


def current_code(secret: str, now: float | None = None) -> tuple[str, int]:
    """(code, whole seconds it stays valid), skipping to the next 30 s step when this one is about to end."""
    from chalicelib.domain.identity import TOTP_STEP_SECONDS, totp_code

    now = time.time() if now is None else now
    left = TOTP_STEP_SECONDS - now % TOTP_STEP_SECONDS
    if left < FRESH_SECONDS:
        time.sleep(left + 0.05)
        now += left + 0.05
        left = TOTP_STEP_SECONDS - now % TOTP_STEP_SECONDS
    return totp_code(secret, now), int(left)


def qr_code(uri: str, encoding: str | None) -> list[str]:
    """The URI as a QR code of Unicode half blocks, one string a line; none if the terminal cannot show them."""
    import segno

    try:
        "█▀▄".encode(encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return []
    out = io.StringIO()
    segno.make(uri, error="m").terminal(out=out, compact=True)
    return out.getvalue().rstrip("\n").split("\n")


def banner_lines(admin: dict[str, Any] | None, path: Path, api_url: str, encoding: str | None) -> list[str]:
    """The banner's part about the admin: credentials, the QR code, and how to sign in with curl."""
    if admin is None:
        return [f"Platform admin: {ADMIN_EMAIL} exists, but its password is not in {path}.",
                "  `make reset-local` starts over; or ask for a reset link "
                f"(POST {api_url}/v1/auth/password/forgot, the link lands in the outbox)."]
    code = ".venv/bin/python -m infra.local.first_admin"
    json_header = "-H 'Content-Type: application/json'"
    password_body = json.dumps({"email": admin["email"], "password": admin["password"]})
    code_body = '{"sign_in_id": "<sign_in_id>", "code": "\'$(' + code + ')\'"}'
    session_headers = f"-H 'Authorization: Session <csrf_token>' -H '{COOKIE}=<cookie>'"
    return [
        f"Platform admin, a person (dev only, kept in {path}):",
        f"  e-mail:    {admin['email']}",
        f"  password:  {admin['password']}",
        f"  MFA:       secret {admin['mfa_secret']}  (any authenticator app: scan the QR code or type the secret)",
        f"             {admin['otpauth_uri']}",
        *("    " + row for row in qr_code(admin["otpauth_uri"], encoding)),
        f"  no phone?  {code}   prints the current code",
        "",
        "Sign in: the password, then the code (each code works once, within its 30 s):",
        f"  curl {json_header} -d '{password_body}' {api_url}/v1/auth/sign-in",
        f"  curl -i {json_header} -d '{code_body}' {api_url}/v1/auth/sign-in/code",
        "  then send the answer's session.csrf_token and its cookie (Set-Cookie: __Host-lp_session=<cookie>; ...):",
        f"  curl {session_headers} {api_url}/v1/auth/session",
    ]


def _state_file() -> Path:
    from infra.local.run import state_dir

    return state_dir() / FILE_NAME


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", choices=("code", "show"), default="code")
    parser.add_argument("--secret", help="another base32 MFA secret (default: the saved admin's)")
    args = parser.parse_args(argv)
    path = _state_file()
    admin = load(path)
    if args.command == "show":
        if admin is None:
            print(f"No first admin saved in {path}: start the stack with `make run`.", file=sys.stderr)
            return 1
        api_url = "http://127.0.0.1:8000"
        try:
            api_url = json.loads((path.parent / "stack.json").read_text()).get("api_url") or api_url
        except (OSError, ValueError):
            pass
        print("\n".join(banner_lines(admin, path, api_url, sys.stdout.encoding)))
        return 0
    secret = args.secret or (admin or {}).get("mfa_secret")
    if not secret:
        print(f"No first admin saved in {path}: start the stack with `make run` (or pass --secret).", file=sys.stderr)
        return 1
    code, left = current_code(secret)
    print(code)
    print(f"(valid for {left} s more; each code signs in once, then wait for the next)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
