"""The member's own pages on the tenant's member site (`/m/{tenant_id}/...`): card, history, invite, profile, data.

Every page reads the signed-in member from the member session (`member_page`),
never from the address or a form: the customer id is the session's, and a card
number in an address must be one of that customer's cards (404 otherwise, the
same as a card that does not exist). Pages call services only:

- the card: its number as a Code 128 barcode and a QR code to show at the till, balance, pending points and
  when they mature, points expiring soon, tier and progress to the next, gift-card money, wallet buttons
  (shown only when the deployment has wallet credentials);
- the history in plain words (`domain.history`), a page at a time;
- the referral code and the sign-up link that carries it;
- the profile (the tenant's allowed fields, parsed by the API's own `CustomerUpdate`, errors at the field)
  and consents, each withdrawn (or given again) with one button;
- all my data as a JSON file (the API's export), and account deletion (the API's erasure) after a
  confirmation, which ends the session.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from chalice.app import Response
from markupsafe import Markup
from pydantic import ValidationError

from chalicelib.console import member_profile
from chalicelib.console import render as rendering
from chalicelib.console.member import Member, member_page, render
from chalicelib.console.pages import PageRequest, PageRouter, gettext, redirect
from chalicelib.domain import barcodes
from chalicelib.errors import ApiError
from chalicelib.lazy import lazy_module
from chalicelib.schemas.customers import ConsentIn, ConsentKind, CustomerUpdate
from chalicelib.settings import settings

if TYPE_CHECKING:
    from chalicelib.services.customers import customers, member_pages
    from chalicelib.services.members import sessions as member_sessions
    from chalicelib.services.wallet import credentials, downloads, google
else:
    customers = lazy_module("chalicelib.services.customers.customers")
    member_pages = lazy_module("chalicelib.services.customers.member_pages")
    member_sessions = lazy_module("chalicelib.services.members.sessions")
    credentials = lazy_module("chalicelib.services.wallet.credentials")
    downloads = lazy_module("chalicelib.services.wallet.downloads")
    google = lazy_module("chalicelib.services.wallet.google")

router = PageRouter("member_pages")
BASE = "/m/{tenant_id}"
PROFILE_FIELDS = ("first_name", "middle_name", "last_name", "email", "birth_date", "gender")
"""What a member may edit of themselves (the phone is how they sign in: it changes at the till or by support)."""
FIELD_LABELS = {"first_name": "First name", "middle_name": "Middle name", "last_name": "Last name",
                "email": "E-mail", "birth_date": "Date of birth", "gender": "Gender"}
CONSENT_LABELS = {"sms": "Messages by SMS", "email": "Messages by e-mail",
                  "personal_data": "Processing of my personal data"}
GENDERS = {"female": "Female", "male": "Male", "other": "Other"}
FIELD_ISSUES = {
    "email": "Enter an e-mail address, e.g. anna@example.com.",
    "birth_date": "Enter a date between 1900 and today.",
    "gender": "Choose one of the options.",
}
STATUSES = {"issued": "The card is not activated yet", "active": "The card is active",
            "blocked": "The card is blocked", "expired": "The card has expired"}
ERASE_WORD = "delete"
COUPON_REASONS = {
    "not_started": "Not valid yet.",
    "expired": "This coupon has expired.",
    "used_up": "This coupon has been used.",
    "campaign_paused": "This coupon is paused.",
}
COUPON_SOURCES = {
    "survey": "For a questionnaire",
    "birthday": "Birthday gift",
    "trigger": "A gift from us",
    "campaign": "From our mailing",
    "other": "A gift from us",
}
"""Where a coupon came from, in the member's words (a trigger other than the birthday is just a gift)."""


PROBLEMS = {
    400: "This request is not valid.",
    404: "There is nothing here: the page or card does not exist or is not yours.",
    503: "This is not available just now. Please try again later.",
}
"""What a refused request says on the member's own site (the service's reason stays in the log)."""

MemberHandler = Callable[[PageRequest, Member], Response]


def _page(method: str, path: str) -> Callable[[MemberHandler], MemberHandler]:
    """A member page whose refusals (a card not theirs, wallet not configured...) stay on the tenant's own site."""
    def decorator(handler: MemberHandler) -> MemberHandler:
        @functools.wraps(handler)
        def friendly(req: PageRequest, member: Member) -> Response:
            try:
                return handler(req, member)
            except ApiError as err:
                if err.status >= 500 and err.status != 503:
                    raise
                message = gettext(req.locale, PROBLEMS.get(err.status, err.message))
                return render(req, member, "member/pages/problem.html", err.status, message=message)

        member_page(router, method, path)(friendly)
        return handler

    return decorator


def _actor(member: Member) -> str:
    return f"member:{member.customer_id}"


def _base(member: Member) -> str:
    return f"/m/{quote(member.tenant_id)}"


# --- the card -----------------------------------------------------------------------------------------------------

@_page("GET", BASE + "/card")
def card(req: PageRequest, member: Member) -> Response:
    summary = member_pages.summary(member.tenant_id, member.customer_id)
    faces = [{"points": p, "barcode": _barcode(req, p.card.number), "qr": _qr(req, p.card.number)}
             for p in summary.points]
    return render(req, member, "member/pages/card.html", 200, summary=summary, faces=faces,
                  wallet=_wallet_configured(), notice_text=_notice(req),
                  statuses={k: gettext(req.locale, v) for k, v in STATUSES.items()})


@_page("GET", BASE + "/card/{number}/card.pkpass")
def apple_pass(req: PageRequest, member: Member) -> Response:
    """The card's freshly signed pass, handed over as a two-minute S3 link: a deployed API Gateway would send
    the bytes to a browser as base64 text (see services/wallet/downloads.py)."""
    number = req.path["number"]
    member_pages.owned(member.tenant_id, member.customer_id, number)
    return redirect(downloads.apple_pass_link(member.tenant_id, number))


@_page("POST", BASE + "/card/{number}/google-wallet")
def google_wallet(req: PageRequest, member: Member) -> Response:
    number = req.path["number"]
    member_pages.owned(member.tenant_id, member.customer_id, number)
    link = google.save_link(member.tenant_id, number)
    return redirect(link.save_url)


def _wallet_configured() -> bool:
    try:
        credentials.load()
    except ApiError:
        return False
    return True


def _barcode(req: PageRequest, number: str) -> Markup:
    title = gettext(req.locale, "Barcode of card %(number)s") % {"number": number}
    return Markup(barcodes.svg(number, title, css_class="m-barcode"))  # noqa: S704 - built of escaped parts


def _qr(req: PageRequest, number: str) -> Markup:
    import segno

    title = gettext(req.locale, "QR code of card %(number)s") % {"number": number}
    svg = segno.make(number, error="m").svg_inline(scale=4, omitsize=True, svgclass="m-qr", lineclass="m-qr-line",
                                                   title=title, border=4)
    return Markup(svg.replace("<svg ", '<svg role="img" focusable="false" ', 1))  # noqa: S704 - segno escapes


# --- history ------------------------------------------------------------------------------------------------------

@_page("GET", BASE + "/history")
def history(req: PageRequest, member: Member) -> Response:
    summary = member_pages.summary(member.tenant_id, member.customer_id)
    numbers = [p.card.number for p in summary.points]
    number = req.query.get("card", "")[:40] or (numbers[0] if numbers else "")
    lines: list[dict[str, Any]] = []
    next_cursor = None
    if number:
        found, next_cursor = member_pages.history_page(member.tenant_id, member.customer_id, number,
                                                       req.query.get("cursor") or None)
        lines = [_words(req, at, line, summary.currency) for at, line in found]
    older = None
    if next_cursor:
        older = f"{_base(member)}/history?" + urlencode({"card": number, "cursor": next_cursor, "lang": req.locale})
    return render(req, member, "member/pages/history.html", 200, summary=summary, number=number, numbers=numbers,
                  lines=lines, older=older, first_page=not req.query.get("cursor"))


def _words(req: PageRequest, at: Any, line: Any, currency: str) -> dict[str, Any]:
    values: dict[str, str] = {}
    for name, value in line.values.items():
        if name == "points":
            values[name] = rendering.number(int(value), req.locale)
        elif name == "amount":
            values[name] = rendering.money(int(value), currency, req.locale)
        else:
            values[name] = str(value)
    rule = None
    if line.rule_version is not None:
        rule = gettext(req.locale, "Rule version %(version)s") % {"version": line.rule_version}
    return {"at": at, "text": gettext(req.locale, line.message) % values, "points": line.points, "rule": rule,
            "kind": line.kind}


# --- coupons ------------------------------------------------------------------------------------------------------

@_page("GET", BASE + "/coupons")
def coupon_list(req: PageRequest, member: Member) -> Response:
    found = member_pages.coupons(member.tenant_id, member.customer_id)
    currency = member_pages.currency(member.tenant_id)
    rows = []
    for given in found:
        c = given.coupon
        why = COUPON_REASONS.get(c.reason or "", "This coupon cannot be used now.")
        rows.append({"code": c.code, "name": c.campaign_name,
                     "effect": _effect(req, c.effect.kind.value, c.effect.value, currency),
                     "source": gettext(req.locale, _coupon_source(given.source, given.origin)),
                     "given_at": given.given_at, "starts_at": c.starts_at if c.reason == "not_started" else None,
                     "ends_at": c.ends_at, "usable": c.usable_now, "why": gettext(req.locale, why)})
    return render(req, member, "member/pages/coupons.html", 200, coupons=rows)


def _coupon_source(source: str, origin: str | None) -> str:
    if source == "trigger":
        return COUPON_SOURCES["birthday" if origin == "birthday" else "trigger"]
    return COUPON_SOURCES.get(source, COUPON_SOURCES["other"])


def _effect(req: PageRequest, kind: str, value: int, currency: str) -> str:
    if kind == "percent_off":
        return gettext(req.locale, "%(percent)s off") % {"percent": _decimal(value, 100) + "%"}
    if kind == "amount_off":
        return gettext(req.locale, "%(amount)s off") % {"amount": rendering.money(value, currency, req.locale)}
    if kind == "bonus_points":
        return gettext(req.locale, "Bonus points: %(points)s") % {"points": rendering.number(value, req.locale)}
    return gettext(req.locale, "Points multiplied by %(times)s") % {"times": _decimal(value, 10_000)}


def _decimal(value: int, unit: int) -> str:
    """An integer in 1/unit as a short decimal (1050, 100 -> "10.5"), without going through a float."""
    whole, part = divmod(value, unit)
    digits = len(str(unit)) - 1
    return f"{whole}.{part:0{digits}d}".rstrip("0").rstrip(".") if part else str(whole)


# --- invite -------------------------------------------------------------------------------------------------------

@_page("GET", BASE + "/invite")
def invite(req: PageRequest, member: Member) -> Response:
    customer = customers.get(member.tenant_id, member.customer_id)
    code = customer.referral.code
    link = None
    if code:
        link = f"{settings.console_base_url}{_base(member)}/sign-up?" + urlencode({"referral": code})
    return render(req, member, "member/pages/invite.html", 200, code=code, link=link,
                  friends=customer.referral.friends_rewarded)


# --- profile and consents -----------------------------------------------------------------------------------------

@_page("GET", BASE + "/profile")
def profile(req: PageRequest, member: Member) -> Response:
    customer = customers.get(member.tenant_id, member.customer_id)
    typed = {name: _shown(getattr(customer, name)) for name in PROFILE_FIELDS}
    typed.update(member_profile.shown(customer.children, customer.preferences))
    return _profile(req, member, customer, typed, {}, notice_text=_notice(req))


@_page("POST", BASE + "/profile")
def save_profile(req: PageRequest, member: Member) -> Response:
    customer = customers.get(member.tenant_id, member.customer_id)
    allowed = _allowed_fields(member)
    typed = {name: req.form.get(name, "").strip()[:300] for name in allowed}
    changes: dict[str, Any] = {}
    for name in allowed:
        before = _shown(getattr(customer, name))
        if typed[name] != before:
            changes[name] = typed[name] or None
    extras = _extra_fields(member)
    typed.update(member_profile.typed(req.form, extras))
    wanted, row_of = member_profile.personal(typed, extras)
    stored, _ = member_profile.personal(member_profile.shown(customer.children, customer.preferences), extras)
    for name in extras:
        if wanted.get(name) != stored.get(name):
            changes[name] = wanted.get(name)
    if not changes:
        return redirect(f"{_base(member)}/profile?" + urlencode({"saved": "1", "lang": req.locale}))
    try:
        spec = CustomerUpdate.model_validate(changes, strict=False)
    except ValidationError as err:
        errors: dict[str, str] = {}
        for item in err.errors(include_url=False):
            name = str(item["loc"][0]) if item["loc"] else ""
            if name in typed:
                errors.setdefault(name, gettext(req.locale, FIELD_ISSUES.get(name, "This value is not valid.")))
        errors.update(member_profile.errors(err, row_of, req.locale))
        return _profile(req, member, customer, typed, errors or {"first_name": gettext(
            req.locale, "This value is not valid.")}, status=400)
    try:
        customers.update(member.tenant_id, member.customer_id, spec, _actor(member))
    except ApiError as err:
        errors = {d.field: gettext(req.locale, err.message) for d in err.details or [] if d.field in typed}
        return _profile(req, member, customer, typed, errors, status=err.status,
                        alert_text=None if errors else gettext(req.locale, err.message))
    return redirect(f"{_base(member)}/profile?" + urlencode({"saved": "1", "lang": req.locale}))


@_page("POST", BASE + "/consents")
def consent(req: PageRequest, member: Member) -> Response:
    kind = req.form.get("kind", "")
    granted = req.form.get("granted", "")
    if kind not in {k.value for k in ConsentKind} or granted not in ("0", "1"):
        raise ApiError(400, "validation_error", "This consent cannot be changed.")
    version = customers.privacy(member.tenant_id).consent_text_version
    change = ConsentIn(kind=ConsentKind(kind), granted=granted == "1", source="member_site", text_version=version)
    customers.change_consents(member.tenant_id, member.customer_id, [change], _actor(member))
    done = "withdrawn" if granted == "0" else "given"
    return redirect(f"{_base(member)}/profile?" + urlencode({"consent": done, "lang": req.locale}) + "#consents")


def _extra_fields(member: Member) -> list[str]:
    """Children and preferences, unless the tenant switched them off (minimal-data mode)."""
    off = set(customers.privacy(member.tenant_id).disabled_fields)
    return [name for name in member_profile.EXTRA_FIELDS if name not in off]


def _allowed_fields(member: Member) -> list[str]:
    off = set(customers.privacy(member.tenant_id).disabled_fields)
    return [name for name in PROFILE_FIELDS if name not in off]


def _shown(value: Any) -> str:
    if value is None:
        return ""
    return str(getattr(value, "value", value))


def _profile(req: PageRequest, member: Member, customer: Any, typed: dict[str, str], errors: dict[str, str], *,
             status: int = 200, notice_text: str | None = None, alert_text: str | None = None) -> Response:
    consents = {c.kind.value: c for c in customer.consents}
    rows = [{"kind": kind, "label": label, "consent": consents.get(kind)} for kind, label in CONSENT_LABELS.items()]
    return render(req, member, "member/pages/profile.html", status, customer=customer, typed=typed, errors=errors,
                  fields=_allowed_fields(member), extras=_extra_fields(member), rows=member_profile.rows(typed),
                  labels=FIELD_LABELS, genders=GENDERS, consents=rows,
                  notice_text=notice_text, alert_text=alert_text)


def _notice(req: PageRequest) -> str | None:
    if req.query.get("saved"):
        return gettext(req.locale, "Your profile is saved.")
    if req.query.get("consent") == "withdrawn":
        return gettext(req.locale, "Your consent is withdrawn.")
    if req.query.get("consent") == "given":
        return gettext(req.locale, "Your consent is recorded.")
    return None


# --- my data and deletion -----------------------------------------------------------------------------------------

@_page("GET", BASE + "/my-data")
def my_data(req: PageRequest, member: Member) -> Response:
    return render(req, member, "member/pages/my_data.html", 200, errors={}, erase_word=ERASE_WORD, typed="")


@_page("GET", BASE + "/my-data.json")
def my_data_file(req: PageRequest, member: Member) -> Response:
    exported = customers.export(member.tenant_id, member.customer_id, _actor(member))
    body = json.dumps(exported.model_dump(mode="json"), ensure_ascii=False, indent=2)
    return Response(body=body, status_code=200, headers={
        "Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store",
        "Content-Disposition": f'attachment; filename="my-data-{member.customer_id}.json"'})


@_page("POST", BASE + "/delete")
def delete(req: PageRequest, member: Member) -> Response:
    typed = req.form.get("confirm", "").strip()[:40]
    if typed.lower() not in (ERASE_WORD, gettext(req.locale, ERASE_WORD).lower()):
        error = gettext(req.locale, "Type the word %(word)s to confirm.") % {"word": gettext(req.locale, ERASE_WORD)}
        return render(req, member, "member/pages/my_data.html", 400, errors={"confirm": error},
                      erase_word=ERASE_WORD, typed=typed)
    customers.erase(member.tenant_id, member.customer_id, "the member's own request on the member site",
                    _actor(member))
    member_sessions.end_all(member.tenant_id, member.customer_id)
    response = render(req, None, "member/pages/deleted.html", 200)
    response.headers["Set-Cookie"] = member_sessions.forget_cookie()
    return response
