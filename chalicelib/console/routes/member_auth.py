"""The member site's way in: sign in by the phone's SMS code, sign up (profile, consents, referral, card), sign out.

`/m/{tenant_id}/sign-in` asks for the phone and sends the code of the phone
verification (its limits; the same answer for a known and an unknown phone);
the code step then either signs the member in or, for a phone no member holds
(or an erased member's), goes on to the sign-up form, carrying the signed proof
of the phone in a hidden field. Every form before a session exists carries a
signed token bound to this tenant (`member_sessions.form_token`), besides the
Origin check of every page post; after sign-in, the session's CSRF token.
Everything typed comes back on a refusal, errors at their fields.

Also here: the member home (`/m/{tenant_id}/`, the card(s) and their balance)
and the tenant's colours as a stylesheet (`/m/{tenant_id}/brand.css`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from chalice.app import Response
from pydantic import ValidationError

from chalicelib.console import member_profile
from chalicelib.console.member import Member, base_url, current_member, member_page, render, sign_in_url
from chalicelib.console.pages import PUBLIC, PageRequest, PageRouter, gettext, redirect
from chalicelib.errors import ApiError, not_found
from chalicelib.lazy import lazy_module
from chalicelib.schemas.customers import ConsentIn, ConsentKind, CustomerCreate
from chalicelib.schemas.verification import VerificationCheck, VerificationStart

if TYPE_CHECKING:
    from chalicelib.services.customers import customers, verification
    from chalicelib.services.members import sessions as member_sessions
    from chalicelib.services.pos import cards
    from chalicelib.services.tenancy import branding
else:
    customers = lazy_module("chalicelib.services.customers.customers")
    member_sessions = lazy_module("chalicelib.services.members.sessions")
    verification = lazy_module("chalicelib.services.customers.verification")
    cards = lazy_module("chalicelib.services.pos.cards")
    branding = lazy_module("chalicelib.services.tenancy.branding")

router = PageRouter("member_auth")
SITE = "/m/{tenant_id}"
PROFILE_FIELDS = ("first_name", "last_name", "middle_name", "email", "gender", "birth_date")
"""The profile fields the sign-up form may ask (minus those the tenant switched off: minimal-data mode); also
children and preferences (`member_profile`), so every personal field but the phone (proven by the code)."""
TRIES_LEFT = re.compile(r"(\d+) tries left")
REFERRAL = re.compile(r"[0-9A-Za-z-]{4,16}")
FIELD_LABELS = {"first_name": "First name", "last_name": "Last name", "middle_name": "Middle name",
                "email": "E-mail", "gender": "Gender", "birth_date": "Date of birth"}
FIELD_ISSUES = {
    "first_name": "Enter a name of at most 120 characters on one line.",
    "last_name": "Enter a name of at most 120 characters on one line.",
    "middle_name": "Enter a name of at most 120 characters on one line.",
    "email": "Enter an e-mail address such as name@example.com.",
    "gender": "Choose one of the options.",
    "birth_date": "Enter a date of birth between 1900 and today.",
    "referral_code": "A referral code is 4 to 16 letters and digits.",
    "card_number": "A card number is 8 to 19 digits.",
}


# --- the pages ----------------------------------------------------------------------------------------------------

@router.page("GET", SITE + "/brand.css", roles=PUBLIC)
def brand_css(req: PageRequest) -> Response:
    """The tenant's colours (validated #rrggbb only); its URL carries a version, so it is cached for a year."""
    css = branding.stylesheet(branding.brand(req.path["tenant_id"]))
    return Response(body=css, status_code=200, headers={"Content-Type": "text/css; charset=utf-8",
                                                        "Cache-Control": "public, max-age=31536000, immutable"})


@member_page(router, "GET", SITE)
def home(req: PageRequest, member: Member) -> Response:
    """The member's cards and their balance (the member pages add the card, history, profile...)."""
    customer = customers.get(member.tenant_id, member.customer_id)
    held = [cards.get(member.tenant_id, number) for number in customer.cards]
    return _page(req, member, "member/home.html", customer=customer, cards=held,
                 welcome=req.query.get("welcome") == "1")


@router.page("GET", SITE + "/sign-in", roles=PUBLIC)
def sign_in_page(req: PageRequest) -> Response:
    if current_member(req) is not None:
        return redirect(_next(req, req.query.get("next")))
    return _phone_step(req, {}, phone="")


@router.page("GET", SITE + "/sign-up", roles=PUBLIC)
def sign_up_link(req: PageRequest) -> Response:
    """A friend's invitation link (`?referral=CODE`): the phone step, the code carried to the sign-up form."""
    if current_member(req) is not None:
        return redirect(_next(req, None))
    return _phone_step(req, {}, phone="")


@router.page("POST", SITE + "/sign-in", roles=PUBLIC)
def sign_in(req: PageRequest) -> Response:
    tenant_id = req.path["tenant_id"]
    branding.brand(tenant_id)
    phone = req.form.get("phone", "").strip()[:40]
    if not member_sessions.form_token_valid(tenant_id, req.form.get("form_token")):
        return _phone_step(req, {}, phone=phone, status=400,
                           alert=gettext(req.locale, "This form has expired. Send it again."))
    action = req.form.get("action", "send")
    if action in ("send", "resend"):
        return _send_code(req, phone)
    if action == "confirm":
        return _confirm(req, phone)
    return _phone_step(req, {}, phone=phone)


@router.page("POST", SITE + "/sign-up", roles=PUBLIC)
def sign_up(req: PageRequest) -> Response:
    tenant_id = req.path["tenant_id"]
    branding.brand(tenant_id)
    proof = req.form.get("proof", "")[:600]
    typed = _typed_sign_up(req)
    if not member_sessions.form_token_valid(tenant_id, req.form.get("form_token")):
        return _sign_up_step(req, proof, typed, {}, status=400,
                             alert=gettext(req.locale, "This form has expired. Your answers are kept: send them "
                                                       "again."))
    try:
        phone, existing = member_sessions.member_of_proof(tenant_id, proof)
    except ApiError:
        return _phone_step(req, {}, phone="", status=400,
                           alert=gettext(req.locale, "The phone check has expired: ask for a new code."))
    new, errors = _new_member(req, typed, phone)
    if errors:
        return _sign_up_step(req, proof, typed, errors, status=400)
    assert new is not None
    try:
        done = member_sessions.sign_up(tenant_id, proof, new)
    except ApiError as err:
        if err.code in ("invalid_verification", "verification_used", "code_already_used"):
            return _phone_step(req, {}, phone="", status=err.status,
                               alert=gettext(req.locale, "The phone check has expired: ask for a new code."))
        return _sign_up_step(req, proof, typed, _errors_of(req, err), status=err.status,
                             alert=_said(req, err))
    del existing
    return redirect(f"{base_url(tenant_id)}/?welcome=1&lang={req.locale}", done.set_cookie)


@member_page(router, "POST", SITE + "/sign-out")
def sign_out(req: PageRequest, member: Member) -> Response:
    cookie = member_sessions.sign_out(member)
    return redirect(f"{sign_in_url(member.tenant_id)}?lang={req.locale}&signed_out=1", cookie)


@router.page("GET", SITE + "/{page}", roles=PUBLIC)
def unknown_page(req: PageRequest) -> Response:
    """Any other address under the site: the member site's own "page not found" (404), in the tenant's brand."""
    raise not_found("Page")


@router.page("GET", SITE + "/{page}/{rest}", roles=PUBLIC)
def unknown_deeper_page(req: PageRequest) -> Response:
    raise not_found("Page")


# --- the steps ----------------------------------------------------------------------------------------------------

def _send_code(req: PageRequest, phone: str) -> Response:
    tenant_id = req.path["tenant_id"]
    try:
        body = VerificationStart.model_validate({"phone": phone, "language": req.locale}, strict=False)
    except ValidationError:
        return _phone_step(req, {"phone": gettext(req.locale, "Enter a mobile phone number, e.g. +7 916 123-45-67.")},
                           phone=phone, status=400)
    try:
        _, started = verification.start(tenant_id, body, req.source_ip)
    except ApiError as err:
        return _phone_step(req, {"phone": _said(req, err)}, phone=phone, status=err.status)
    return _code_step(req, {}, phone=body.phone, verification_id=started.verification_id)


def _confirm(req: PageRequest, phone: str) -> Response:
    tenant_id = req.path["tenant_id"]
    verification_id = req.form.get("verification_id", "")[:60]
    try:
        body = VerificationCheck.model_validate({"phone": phone, "code": req.form.get("code", "").strip()},
                                                strict=False)
    except ValidationError:
        return _code_step(req, {"code": gettext(req.locale, "Enter the 6 digits of the code.")}, phone=phone,
                          verification_id=verification_id, status=400)
    try:
        proven = verification.check(tenant_id, verification_id, body)
        done = member_sessions.sign_in(tenant_id, proven.proof, req.source_ip, req.user_agent)
    except ApiError as err:
        return _code_step(req, {"code": _code_said(req, err)}, phone=phone, verification_id=verification_id,
                          status=err.status)
    if done is None:
        referral = _referral(req)
        return _sign_up_step(req, proven.proof, {"referral_code": referral} if referral else {}, {})
    return redirect(_next(req, req.form.get("next")), done.set_cookie)


# --- rendering ----------------------------------------------------------------------------------------------------

def _page(req: PageRequest, member: Member | None, template: str, status: int = 200, **context: Any) -> Response:
    context.setdefault("alert_text", None)
    context.setdefault("errors", {})
    return render(req, member, template, status, form_token=member_sessions.form_token(req.path["tenant_id"]),
                  **context)


def _phone_step(req: PageRequest, errors: dict[str, str], *, phone: str, status: int | None = None,
                alert: str | None = None) -> Response:
    return _page(req, None, "member/sign_in.html", status or (400 if errors else 200), errors=errors, phone=phone,
                 next=_safe_next(req, req.form.get("next") or req.query.get("next")), alert_text=alert,
                 signed_out=req.query.get("signed_out") == "1", referral=_referral(req))


def _code_step(req: PageRequest, errors: dict[str, str], *, phone: str, verification_id: str,
               status: int | None = None) -> Response:
    return _page(req, None, "member/code.html", status or (400 if errors else 200), errors=errors, phone=phone,
                 verification_id=verification_id, next=_safe_next(req, req.form.get("next")), referral=_referral(req))


def _sign_up_step(req: PageRequest, proof: str, typed: dict[str, str], errors: dict[str, str], *,
                  status: int | None = None, alert: str | None = None) -> Response:
    tenant_id = req.path["tenant_id"]
    off = set(customers.privacy(tenant_id).disabled_fields)
    fields = [(name, FIELD_LABELS[name]) for name in PROFILE_FIELDS if name not in off]
    extras = [name for name in member_profile.EXTRA_FIELDS if name not in off]
    kinds = [k for k in (ConsentKind.SMS, ConsentKind.EMAIL) if not (k is ConsentKind.EMAIL and "email" in off)]
    try:
        phone, _ = member_sessions.member_of_proof(tenant_id, proof)
    except ApiError:
        phone = ""
    return _page(req, None, "member/sign_up.html", status or (400 if errors else 200), errors=errors, typed=typed,
                 proof=proof, phone=phone, fields=fields, extras=extras, rows=member_profile.rows(typed),
                 consent_kinds=[k.value for k in kinds],
                 text_version=customers.privacy(tenant_id).consent_text_version, alert_text=alert)


# --- reading the sign-up form -------------------------------------------------------------------------------------

def _typed_sign_up(req: PageRequest) -> dict[str, str]:
    names = [*PROFILE_FIELDS, "referral_code", "card", "card_number", "consent_personal_data", "consent_sms",
             "consent_email"]
    off = set(customers.privacy(req.path["tenant_id"]).disabled_fields)
    extras = [name for name in member_profile.EXTRA_FIELDS if name not in off]
    return {**{name: req.form.get(name, "")[:300] for name in names if req.form.get(name)},
            **member_profile.typed(req.form, extras)}


def _new_member(req: PageRequest, typed: dict[str, str], phone: str
                ) -> tuple[member_sessions.NewMember | None, dict[str, str]]:
    """The form as the API's own customer model sees it; its refusals at their fields in the member's words."""
    tenant_id = req.path["tenant_id"]
    errors: dict[str, str] = {}
    privacy = customers.privacy(tenant_id)
    personal: dict[str, Any] = {name: typed[name].strip() for name in PROFILE_FIELDS
                                if typed.get(name, "").strip() and name not in privacy.disabled_fields}
    extras, row_of = member_profile.personal(
        typed, [name for name in member_profile.EXTRA_FIELDS if name not in privacy.disabled_fields])
    personal.update(extras)
    if not typed.get("consent_personal_data"):
        errors["consent_personal_data"] = gettext(req.locale, "Tick the box to join: we cannot keep your card "
                                                              "without it.")
    consents = [ConsentIn(kind=ConsentKind.PERSONAL_DATA, granted=True, source="site",
                          text_version=privacy.consent_text_version)]
    for kind in (ConsentKind.SMS, ConsentKind.EMAIL):
        if kind is ConsentKind.EMAIL and "email" in privacy.disabled_fields:
            continue
        consents.append(ConsentIn(kind=kind, granted=bool(typed.get(f"consent_{kind.value}")), source="site",
                                  text_version=privacy.consent_text_version))
    referral = typed.get("referral_code", "").strip() or None
    card_number = None
    if typed.get("card") == "plastic":
        card_number = re.sub(r"[\s-]", "", typed.get("card_number", ""))
        if not re.fullmatch(r"[0-9]{8,19}", card_number):
            errors["card_number"] = gettext(req.locale, FIELD_ISSUES["card_number"])
    try:
        CustomerCreate.model_validate({**personal, "phone": phone or None, "referral_code": referral},
                                      strict=False)
    except ValidationError as err:
        for item in err.errors(include_url=False):
            loc = str(item["loc"][0]) if item["loc"] else ""
            if loc in FIELD_ISSUES:
                errors.setdefault(loc, gettext(req.locale, FIELD_ISSUES[loc]))
            elif loc not in ("phone", *member_profile.EXTRA_FIELDS):
                errors.setdefault("first_name", gettext(req.locale, "Check this form."))
        for name, issue in member_profile.errors(err, row_of, req.locale).items():
            errors.setdefault(name, issue)
    if errors:
        return None, errors
    return member_sessions.NewMember(personal, consents, referral, card_number), {}


def _errors_of(req: PageRequest, err: ApiError) -> dict[str, str]:
    """A service's refusal at the sign-up form's field it names."""
    errors: dict[str, str] = {}
    for detail in err.details or []:
        name = {"number": "card_number", "program_id": "card_number",
                "children": member_profile.child_key(1, "name")}.get(detail.field, detail.field)
        if name in FIELD_ISSUES or name in PROFILE_FIELDS or name in (*member_profile.EXTRA_FIELDS,
                                                                    member_profile.child_key(1, "name")):
            errors.setdefault(name, _said(req, err))
    return errors


# --- words --------------------------------------------------------------------------------------------------------

SAID = {
    "rate_limited": "Too many codes were asked for. Try again in an hour.",
    "sms_unavailable": "The SMS could not be sent just now. Ask for a new code in a minute.",
    "phone_rejected": "This number cannot receive SMS. Check it.",
    "not_found": "This site does not exist.",
    "unknown_referral_code": "No member has this referral code. Check it or leave it empty.",
    "referral_self": "You cannot use your own referral code.",
    "card_not_found": "There is no card with this number. Check the number on the card.",
    "card_exists": "This card is already registered. Check the number or choose a new virtual card.",
    "card_changed": "This card is already registered. Check the number or choose a new virtual card.",
    "invalid_card_number": "This card number is not right: check the digits.",
    "field_disabled": "This business does not collect this field: leave it empty.",
    "customer_erased": "This phone cannot be used just now. Try again later.",
    "no_program": "This business has no loyalty program open for sign-up.",
    "sign_up_busy": "Your sign-up is already under way: wait a moment and send the form again.",
}


def _said(req: PageRequest, err: ApiError) -> str:
    return gettext(req.locale, SAID.get(err.code, "This could not be done just now. Try again."))


def _code_said(req: PageRequest, err: ApiError) -> str:
    words = {
        "wrong_code": "The code is not right.",
        "code_expired": "This code has expired: ask for a new one.",
        "code_already_used": "This code was already used: ask for a new one.",
        "verification_used": "This code was already used: ask for a new one.",
        "too_many_attempts": "Too many wrong codes: ask for a new one.",
        "verification_not_found": "Ask for a new code.",
        "invalid_verification": "Ask for a new code.",
    }
    text = gettext(req.locale, words.get(err.code, "This could not be done just now. Try again."))
    if err.code == "wrong_code":
        left = next((TRIES_LEFT.search(d.issue) for d in err.details or [] if TRIES_LEFT.search(d.issue)), None)
        if left:
            text += " " + gettext(req.locale, "Tries left: %(n)s.") % {"n": left.group(1)}
    return text


def _referral(req: PageRequest) -> str:
    """A friend's referral code carried from an invitation link through the phone and code steps (or none)."""
    value = (req.form.get("referral") or req.query.get("referral") or "").strip()
    return value if REFERRAL.fullmatch(value) else ""


# --- where to go after signing in -----------------------------------------------------------------------------------

def _safe_next(req: PageRequest, asked: str | None) -> str:
    """A page of this tenant's site only (never another site, another tenant, or a scheme)."""
    site = base_url(req.path["tenant_id"]) + "/"
    value = (asked or "")[:300]
    if value.startswith(site) and "//" not in value and "\\" not in value and ".." not in value:
        return value
    return ""


def _next(req: PageRequest, asked: str | None) -> str:
    return _safe_next(req, asked) or f"{base_url(req.path['tenant_id'])}/?lang={req.locale}"
