"""Signing in and out in the browser: password, the MFA code (or enrolling an authenticator), resets, invitations.

The same services as the API's `/v1/auth/*` routes: the same limits, the
same answers for known and unknown e-mails, the same session cookie. A
refusal is shown at its field with what the person typed kept (never the
password).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalice.app import Response
from pydantic import ValidationError

from chalicelib.console.pages import PUBLIC, PageRequest, PageRouter, gettext, redirect
from chalicelib.domain.identity import PERSON_ROLES
from chalicelib.errors import ApiError
from chalicelib.lazy import lazy_module
from chalicelib.schemas.identity import InvitationAccept, PasswordForgot, PasswordReset, SignIn, SignInCode

if TYPE_CHECKING:
    from chalicelib.services.identity import members, passwords, sessions, sign_in
else:
    members = lazy_module("chalicelib.services.identity.members")
    passwords = lazy_module("chalicelib.services.identity.passwords")
    sessions = lazy_module("chalicelib.services.identity.sessions")
    sign_in = lazy_module("chalicelib.services.identity.sign_in")

router = PageRouter("auth")
ROLE_NAMES = {"platform": "platform operator", "agency": "agency staff", "tenant_admin": "administrator",
              "support": "support operator"}


@router.page("GET", "/console/sign-in", roles=PUBLIC)
def sign_in_page(req: PageRequest) -> Response:
    notice = gettext(req.locale, "Your password is saved. Sign in with it.") if req.query.get("done") == "reset" \
        else gettext(req.locale, "You have joined. Sign in to continue.") if req.query.get("done") == "joined" \
        else None
    return req.render("sign_in.html", errors={}, email="", next=_next(req.query.get("next")), error=None,
                      notice_text=notice)


@router.page("POST", "/console/sign-in", roles=PUBLIC)
def sign_in_submit(req: PageRequest) -> Response:
    email, next_page = req.form.get("email", "").strip(), _next(req.form.get("next"))
    again: dict[str, Any] = {"email": email, "next": next_page, "notice_text": None}
    parsed, errors = _parse(SignIn, {"email": email, "password": req.form.get("password", "")})
    if parsed is None:
        return req.render("sign_in.html", 400, errors=errors, error=None, **again)
    try:
        outcome = sign_in.password_step(parsed.email, parsed.password, req.source_ip, req.user_agent)
    except ApiError as err:
        return req.render("sign_in.html", err.status, errors={}, error=_said(req, err), **again)
    return _after(req, outcome, next_page)


@router.page("POST", "/console/sign-in/code", roles=PUBLIC)
def sign_in_code(req: PageRequest) -> Response:
    sign_in_id, next_page = req.form.get("sign_in_id", ""), _next(req.form.get("next"))
    setup = _setup_from_form(req.form)
    parsed, errors = _parse(SignInCode, {"sign_in_id": sign_in_id, "code": req.form.get("code", "").strip()})
    if parsed is None:
        if "sign_in_id" in errors:
            return redirect("/console/sign-in")
        return req.render("sign_in_code.html", 400, errors=errors, error=None, sign_in_id=sign_in_id,
                          next=next_page, setup=setup)
    try:
        outcome = sign_in.code_step(parsed.sign_in_id, parsed.code, req.source_ip, req.user_agent)
    except ApiError as err:
        if err.code in ("sign_in_expired", "too_many_attempts"):
            return req.render("sign_in.html", err.status, errors={}, email="", next=next_page, notice_text=None,
                              error=_said(req, err))
        return req.render("sign_in_code.html", err.status, errors={"code": _said(req, err)}, error=None,
                          sign_in_id=sign_in_id, next=next_page, setup=setup)
    return _after(req, outcome, next_page)


@router.page("POST", "/console/sign-out", roles=PERSON_ROLES)
def sign_out(req: PageRequest) -> Response:
    _, clear = sessions.sign_out(req.person)
    return redirect("/console/sign-in", clear)


@router.page("GET", "/console/forgot-password", roles=PUBLIC)
def forgot_page(req: PageRequest) -> Response:
    return req.render("forgot.html", errors={}, email="", error=None, sent=False)


@router.page("POST", "/console/forgot-password", roles=PUBLIC)
def forgot_submit(req: PageRequest) -> Response:
    email = req.form.get("email", "").strip()
    parsed, errors = _parse(PasswordForgot, {"email": email})
    if parsed is None:
        return req.render("forgot.html", 400, errors=errors, email=email, error=None, sent=False)
    try:
        passwords.request_reset(parsed.email, req.source_ip)
    except ApiError as err:
        return req.render("forgot.html", err.status, errors={}, email=email, error=_said(req, err), sent=False)
    return req.render("forgot.html", errors={}, email=email, error=None, sent=True)


@router.page("GET", "/console/reset-password", roles=PUBLIC)
def reset_page(req: PageRequest) -> Response:
    return req.render("reset.html", errors={}, token=req.query.get("token", "")[:200], error=None)


@router.page("POST", "/console/reset-password", roles=PUBLIC)
def reset_submit(req: PageRequest) -> Response:
    token = req.form.get("token", "")[:200]
    parsed, errors = _parse(PasswordReset, {"token": token, "password": req.form.get("password", "")})
    if parsed is None:
        error = _said_text(req, "This link is not valid; ask for a new one.") if "token" in errors else None
        return req.render("reset.html", 400, errors=errors, token=token, error=error)
    try:
        passwords.complete_reset(parsed.token, parsed.password)
    except ApiError as err:
        field = err.details[0].field if err.details else None
        if field == "password":
            return req.render("reset.html", err.status, errors={"password": _said(req, err)}, token=token, error=None)
        return req.render("reset.html", err.status, errors={}, token=token, error=_said(req, err))
    return redirect("/console/sign-in?done=reset")


@router.page("GET", "/console/invitation", roles=PUBLIC)
def invitation_page(req: PageRequest) -> Response:
    token = req.query.get("token", "")[:200]
    return _invitation(req, token, {}, None, 200)


@router.page("POST", "/console/invitation", roles=PUBLIC)
def invitation_submit(req: PageRequest) -> Response:
    token = req.form.get("token", "")[:200]
    password = req.form.get("password") or None
    parsed, errors = _parse(InvitationAccept, {"token": token, **({"password": password} if password else {})})
    if parsed is None:
        return _invitation(req, token, errors, None, 400)
    try:
        members.accept(parsed, req.source_ip)
    except ApiError as err:
        field = err.details[0].field if err.details else None
        if field == "password":
            return _invitation(req, token, {"password": _said(req, err)}, None, err.status)
        return _invitation(req, token, {}, _said(req, err), err.status)
    return redirect("/console/sign-in?done=joined")


# --- helpers ----------------------------------------------------------------------------------------------------

def _after(req: PageRequest, outcome: Any, next_page: str) -> Response:
    step = outcome.step
    if step.next == "done":
        return redirect(next_page, outcome.set_cookie)
    setup = {"secret": step.secret, "otpauth_uri": step.otpauth_uri, "qr_svg": step.qr_svg} \
        if step.next == "mfa_setup" else None
    return req.render("sign_in_code.html", errors={}, error=None, sign_in_id=step.sign_in_id, next=next_page,
                      setup=setup)


def _setup_from_form(form: dict[str, str]) -> dict[str, str] | None:
    """The enrolment panel again after a wrong first code (the secret and URI the page itself carried)."""
    secret, uri = form.get("secret", ""), form.get("uri", "")
    if not secret or not secret.isalnum() or len(secret) > 64 or not uri.startswith("otpauth://totp/") \
            or len(uri) > 400:
        return None
    return {"secret": secret, "otpauth_uri": uri, "qr_svg": sign_in.qr_svg(uri)}


def _invitation(req: PageRequest, token: str, errors: dict[str, str], error: str | None, status: int) -> Response:
    try:
        invitation, scope_name, new_account = members.describe_invitation(token)
    except ApiError as err:
        return req.render("error.html", err.status, status=err.status, message=_said(req, err))
    role_name = gettext(req.locale, ROLE_NAMES.get(invitation.role, invitation.role))
    return req.render("invitation.html", status, errors=errors, error=error, token=token, invitation=invitation,
                      scope_name=scope_name, new_account=new_account, role_name=role_name)


def _parse(model: Any, data: dict[str, Any]) -> tuple[Any, dict[str, str]]:
    """The form as the API's own model, or the model's errors by field (the first one each)."""
    try:
        return model.model_validate(data), {}
    except ValidationError as err:
        errors: dict[str, str] = {}
        for item in err.errors(include_url=False):
            errors.setdefault(str(item["loc"][0]) if item["loc"] else "form", item["msg"])
        return None, errors


def _said(req: PageRequest, err: ApiError) -> str:
    """The API's own message for a refusal, in the person's language where the catalogue has it."""
    return _said_text(req, err.message)


def _said_text(req: PageRequest, message: str) -> str:
    return gettext(req.locale, message)


def _next(value: str | None) -> str:
    """Where to go after signing in: only a console path of ours (never another site)."""
    if value and (value == "/console" or value.startswith(("/console/", "/console?"))) and "\\" not in value:
        return value[:300]
    return "/console"
