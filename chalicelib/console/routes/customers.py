"""Customers in the console: find one by phone or card, their profile, consents and cards, each card's ledger,
manual adjustments, blocking, export and erasure; and the masked, read-only call-center view for operators.

The same services, input models and roles as the API's routes (`/v1/customers`, `/v1/cards/{number}/...`,
`/v1/support/customers`): an adjustment carries an id made when its form is rendered, so a form sent twice is
one adjustment, exactly as a till's retried request is. Everything acts in the signed-in person's own tenant;
an id of another tenant is the same 404 as an unknown one. Operators (role `support`) get only the call-center
view: the admin pages, and every form that changes something, answer them 403.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from babel import numbers
from chalice.app import Response
from pydantic import BaseModel, ValidationError

from chalicelib.console.pages import PageRequest, PageRouter, gettext, redirect
from chalicelib.domain.ids import new_id
from chalicelib.domain.roles import Role
from chalicelib.errors import ApiError, ErrorDetail
from chalicelib.lazy import lazy_module
from chalicelib.schemas.customers import CustomerUpdate, EraseIn
from chalicelib.schemas.pos import AdjustmentIn, BlockIn

if TYPE_CHECKING:
    from chalicelib.services.customers import customers, support
    from chalicelib.services.pos import cards
    from chalicelib.services.tenancy import tenancy
else:
    customers = lazy_module("chalicelib.services.customers.customers")
    support = lazy_module("chalicelib.services.customers.support")
    cards = lazy_module("chalicelib.services.pos.cards")
    tenancy = lazy_module("chalicelib.services.tenancy.tenancy")

router = PageRouter("customers")
ADMIN = {Role.TENANT_ADMIN}
"""The API's roles for adjust, block, unblock, export, erase and merge (customers.py, pos.py)."""
CALL_CENTER = {Role.SUPPORT, Role.TENANT_ADMIN}
"""The API's readers of `/v1/support/customers`."""
router.section("/console/customers", "Customers", roles=ADMIN, order=50)
router.section("/console/call-center", "Customer look-up", roles={Role.SUPPORT}, order=50)

LEDGER_PAGE = 25
PROFILE_FIELDS = ("first_name", "middle_name", "last_name", "email", "phone")
WHOLE = re.compile(r"^[+-]?[0-9]{1,15}$")
AMOUNT = re.compile(r"^[+-]?[0-9]{1,13}([.][0-9]{1,4})?$")


# --- finding ----------------------------------------------------------------------------------------------------

@router.page("GET", "/console/customers", roles=ADMIN)
def search(req: PageRequest) -> Response:
    """The search form; with `phone` or `card` in the query, the customer found (or the refusal at its field)."""
    phone, card = req.query.get("phone", "").strip()[:32], req.query.get("card", "").strip()[:32]
    if not phone and not card:
        return req.render("customers/search.html", errors={}, phone="", card="", notice_text=_done(req))
    try:
        found = customers.search(_tenant(req), phone or None, None if phone else card)
    except ApiError as err:
        errors, alert = said_at_fields(req, err, {"phone", "card"})
        if not errors and alert:
            errors, alert = {"phone" if phone else "card": alert}, None
        return req.render("customers/search.html", err.status, errors=errors, phone=phone, card=card,
                          notice_text=None)
    return redirect(f"/console/customers/{quote(found.customer_id, safe='')}")


@router.page("GET", "/console/customers/{customer_id}", roles=ADMIN)
def customer_page(req: PageRequest) -> Response:
    return _customer(req, {}, None, None, 200)


@router.page("POST", "/console/customers/{customer_id}/profile", roles=ADMIN)
def edit_profile(req: PageRequest) -> Response:
    """Change the customer's names and contacts (`PATCH /v1/customers/{id}`): only the fields changed are sent."""
    tenant_id, customer_id = _tenant(req), req.path["customer_id"]
    current = customers.get(tenant_id, customer_id)
    typed = {name: req.form.get(name, "").strip() for name in PROFILE_FIELDS}
    changes: dict[str, Any] = {name: value or None for name, value in typed.items()
                               if (value or None) != getattr(current, name)}
    if not changes:
        return redirect(f"/console/customers/{quote(customer_id, safe='')}")
    parsed, errors = parse(CustomerUpdate, changes)
    if parsed is None:
        return _customer(req, errors, typed, None, 400)
    try:
        customers.update(tenant_id, customer_id, parsed, req.actor)
    except ApiError as err:
        errors, alert = said_at_fields(req, err, set(PROFILE_FIELDS))
        return _customer(req, errors, typed, alert, err.status)
    return redirect(f"/console/customers/{quote(customer_id, safe='')}?done=profile")


# --- a card and its ledger ----------------------------------------------------------------------------------------

@router.page("GET", "/console/customers/{customer_id}/cards/{number}", roles=ADMIN)
def card_page(req: PageRequest) -> Response:
    return _card(req, {}, 200)


@router.page("POST", "/console/customers/{customer_id}/cards/{number}/adjust", roles=ADMIN)
def adjust(req: PageRequest) -> Response:
    """A manual credit or debit with its reason; the form's own adjustment id makes a second send a replay."""
    tenant_id, number = _tenant(req), _card_of_customer(req)[1].number
    typed = {name: req.form.get(name, "").strip() for name in ("points", "reason", "adjustment_id")}
    points, errors = whole_number(req, typed["points"], "points")
    parsed, more = parse(AdjustmentIn, {"points": 1 if points is None else points, "reason": typed["reason"],
                                        "adjustment_id": typed["adjustment_id"]})
    errors = {**more, **errors}
    if parsed is None or errors:
        errors, alert = off_form(req, errors, {"points", "reason"})
        if alert:
            typed["adjustment_id"] = new_id(16)
        return _card(req, {"adjust": {"errors": errors, "alert": alert, **typed}}, 400)
    try:
        cards.adjust(tenant_id, number, parsed, req.actor)
    except ApiError as err:
        errors, alert = said_at_fields(req, err, {"points", "reason"})
        if err.code == "idempotency_key_reused":  # used for another adjustment: a fresh id, the typed values kept
            typed["adjustment_id"] = new_id(16)
        return _card(req, {"adjust": {"errors": errors, "alert": alert, **typed}}, err.status)
    return redirect(_card_url(req) + "?done=adjusted")


@router.page("POST", "/console/customers/{customer_id}/cards/{number}/block", roles=ADMIN)
def block(req: PageRequest) -> Response:
    tenant_id, number = _tenant(req), _card_of_customer(req)[1].number
    reason = req.form.get("block_reason", "").strip()
    parsed, errors = parse(BlockIn, {"reason": reason})
    if parsed is None:
        return _card(req, {"block": {"errors": {f"block_{k}": v for k, v in errors.items()}, "reason": reason}}, 400)
    try:
        cards.set_blocked(tenant_id, number, parsed.reason, req.actor)
    except ApiError as err:  # e.g. the card kept changing (409 card_busy): the reason typed is kept
        errors, alert = said_at_fields(req, err, {"reason"})
        return _card(req, {"block": {"errors": {f"block_{k}": v for k, v in errors.items()}, "alert": alert,
                                     "reason": reason}}, err.status)
    return redirect(_card_url(req) + "?done=blocked")


@router.page("POST", "/console/customers/{customer_id}/cards/{number}/unblock", roles=ADMIN)
def unblock(req: PageRequest) -> Response:
    tenant_id, number = _tenant(req), _card_of_customer(req)[1].number
    cards.set_blocked(tenant_id, number, None, req.actor)
    return redirect(_card_url(req) + "?done=unblocked")


# --- export and erasure -------------------------------------------------------------------------------------------

@router.page("GET", "/console/customers/{customer_id}/export", roles=ADMIN)
def export(req: PageRequest) -> Response:
    """Everything stored about the customer, as the API's JSON, downloaded as a file (the export is audited)."""
    customer_id = req.path["customer_id"]
    exported = customers.export(_tenant(req), customer_id, req.actor)
    name = "customer-" + "".join(c for c in customer_id if c.isalnum() or c in "-_")[:60] + ".json"
    return Response(body=exported.model_dump_json(indent=2), status_code=200,
                    headers={"Content-Type": "application/json; charset=utf-8",
                             "Content-Disposition": f'attachment; filename="{name}"'})


@router.page("GET", "/console/customers/{customer_id}/erase", roles=ADMIN)
def erase_page(req: PageRequest) -> Response:
    customer = customers.get(_tenant(req), req.path["customer_id"])
    return req.render("customers/erase.html", customer=customer, errors={}, confirm="", reason="", error=None)


@router.page("POST", "/console/customers/{customer_id}/erase", roles=ADMIN)
def erase(req: PageRequest) -> Response:
    """Erasure with the API's typed confirmation (`erase`) and a reason; a wrong word erases nothing."""
    tenant_id, customer_id = _tenant(req), req.path["customer_id"]
    customer = customers.get(tenant_id, customer_id)
    typed = {"confirm": req.form.get("confirm", "").strip(), "reason": req.form.get("reason", "").strip()}
    parsed, errors = parse(EraseIn, typed)
    if parsed is None:
        return req.render("customers/erase.html", 400, customer=customer, errors=errors, error=None, **typed)
    try:
        customers.erase(tenant_id, customer_id, parsed.reason, req.actor)
    except ApiError as err:
        errors, alert = said_at_fields(req, err, {"confirm", "reason"})
        return req.render("customers/erase.html", err.status, customer=customer, errors=errors, error=alert,
                          **typed)
    return redirect(f"/console/customers/{quote(customer_id, safe='')}?done=erased")


# --- the call-center view -----------------------------------------------------------------------------------------

@router.page("GET", "/console/call-center", roles=CALL_CENTER)
def call_center(req: PageRequest) -> Response:
    """Look a caller up by phone or card: masked contacts, consents, cards, the recent ledger. Nothing to change."""
    phone, card = req.query.get("phone", "").strip()[:32], req.query.get("card", "").strip()[:32]
    tenant = tenancy.require_tenant(_tenant(req))
    if not phone and not card:
        return req.render("customers/call_center.html", errors={}, phone="", card="", view=None, tenant=tenant)
    try:
        view = support.lookup(tenant.tenant_id, phone or None, None if phone else card)
    except ApiError as err:
        errors, alert = said_at_fields(req, err, {"phone", "card"})
        if not errors and alert:
            errors = {"phone" if phone else "card": alert}
        return req.render("customers/call_center.html", err.status, errors=errors, phone=phone, card=card,
                          view=None, tenant=tenant)
    return req.render("customers/call_center.html", errors={}, phone=phone, card=card, view=view, tenant=tenant)


# --- shared with the cards pages ----------------------------------------------------------------------------------

def parse(model: type[BaseModel], data: dict[str, Any]) -> tuple[Any, dict[str, str]]:
    """The form as the API's own model, or the model's errors by field (the first one each)."""
    try:
        return model.model_validate(data), {}
    except ValidationError as err:
        errors: dict[str, str] = {}
        for item in err.errors(include_url=False):
            errors.setdefault(str(item["loc"][0]) if item["loc"] else "form", item["msg"])
        return None, errors


def said_at_fields(req: PageRequest, err: ApiError, fields: set[str]) -> tuple[dict[str, str], str | None]:
    """An API refusal at the form's field it names (its message, in the person's language where the catalogue
    has it), else as the form's alert."""
    message = gettext(req.locale, err.message)
    named = [d.field for d in err.details if d.field in fields]
    if named:
        return {named[0]: message}, None
    return {}, message


def off_form(req: PageRequest, errors: dict[str, str], shown: set[str]) -> tuple[dict[str, str], str | None]:
    """Errors at the fields a form shows, and one alert for the rest (a hidden id a browser lost or mangled)."""
    stray = [name for name in errors if name not in shown]
    if not stray:
        return errors, None
    return ({k: v for k, v in errors.items() if k in shown},
            gettext(req.locale, "This form was incomplete; check it and send it again."))


def whole_number(req: PageRequest, typed: str, name: str) -> tuple[int | None, dict[str, str]]:
    """A typed integer (spaces allowed between digit groups); the API's models are strict and take no text."""
    text = typed.replace(" ", "").replace("\u00a0", "")
    if WHOLE.fullmatch(text):
        return int(text), {}
    return None, {name: gettext(req.locale, "Enter a whole number, e.g. 100 or -50.")}


def minor_units(req: PageRequest, typed: str, currency: str, name: str) -> tuple[int | None, dict[str, str]]:
    """An amount typed in the currency's units (`1500`, `1 500,50`) as integer minor units, exactly."""
    text = typed.replace(" ", "").replace("\u00a0", "").replace(",", ".")
    exponent = numbers.get_currency_precision(currency)
    decimals = len(text.partition(".")[2])
    if not AMOUNT.fullmatch(text) or decimals > exponent:
        return None, {name: gettext(req.locale, "Enter an amount such as 1500 or 1500.50.")}
    return int(Decimal(text).scaleb(exponent)), {}


def tenant_of(req: PageRequest) -> Any:
    return tenancy.require_tenant(_tenant(req))


def _tenant(req: PageRequest) -> str:
    tenant_id = req.person.tenant_id
    if tenant_id is None:  # the page's roles are tenant roles only
        raise ApiError(403, "forbidden", "")
    return tenant_id


# --- helpers ----------------------------------------------------------------------------------------------------

def _done(req: PageRequest) -> str | None:
    return {"profile": gettext(req.locale, "The profile is saved."),
            "adjusted": gettext(req.locale, "The adjustment is in the ledger."),
            "blocked": gettext(req.locale, "The card is blocked."),
            "unblocked": gettext(req.locale, "The card is unblocked."),
            "erased": gettext(req.locale, "The customer's personal data is erased.")}.get(req.query.get("done", ""))


def _customer(req: PageRequest, errors: dict[str, str], typed: dict[str, str] | None, alert: str | None,
              status: int) -> Response:
    tenant = tenant_of(req)
    customer = customers.get(tenant.tenant_id, req.path["customer_id"])
    held = [cards.get(tenant.tenant_id, number) for number in customer.cards]
    profile = typed or {name: getattr(customer, name) or "" for name in PROFILE_FIELDS}
    return req.render("customers/customer.html", status, customer=customer, cards=held, tenant=tenant,
                      errors=errors, profile=profile, error=alert, notice_text=_done(req))


def _card_of_customer(req: PageRequest) -> tuple[Any, Any]:
    """The path's customer and card, if the card is the customer's in this tenant: any other is a 404, as an
    unknown one."""
    tenant_id = _tenant(req)
    customer = customers.get(tenant_id, req.path["customer_id"])
    number = req.path["number"]
    if number not in customer.cards:
        raise ApiError(404, "card_not_found", "", [ErrorDetail("number", "not found")])
    return customer, cards.get(tenant_id, number)


def _card_url(req: PageRequest) -> str:
    return (f"/console/customers/{quote(req.path['customer_id'], safe='')}"
            f"/cards/{quote(req.path['number'], safe='')}")


def _card(req: PageRequest, forms: dict[str, dict[str, Any]], status: int) -> Response:
    """The card with its ledger page and its forms (`forms`: a refused form's errors and typed values)."""
    tenant = tenant_of(req)
    customer, card = _card_of_customer(req)
    cursor = req.query.get("cursor") or None
    entries, next_cursor = ([], None) if card.money is not None else cards.ledger(
        tenant.tenant_id, card.number, LEDGER_PAGE, cursor[:2000] if cursor else None)
    adjust_form = {"errors": {}, "alert": None, "points": "", "reason": "", "adjustment_id": new_id(16),
                   **forms.get("adjust", {})}
    block_form = {"errors": {}, "alert": None, "reason": "", **forms.get("block", {})}
    more = f"{_card_url(req)}?{urlencode({'cursor': next_cursor})}" if next_cursor else None
    return req.render("customers/card.html", status, customer=customer, card=card, entries=entries, tenant=tenant,
                      adjust=adjust_form, block=block_form, more=more, first_page=cursor is None,
                      base=_card_url(req), notice_text=_done(req))
