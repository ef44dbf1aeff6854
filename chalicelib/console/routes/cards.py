"""Cards in the console: plastic series (generate, follow, download the print list), gift and prepaid cards
(sell, look up, money ledger, top up, correct), and the coalitions the tenant is a partner of with its settlement.

The same services, models and roles as `/v1/card-series`, `/v1/gift-cards` and `/v1/coalitions`: a series of
more than 500 cards is queued for the jobs worker exactly as the API queues it; a sale, top-up or correction
carries an id made when its form is rendered, so a form sent twice moves the money once. Everything acts in
the signed-in person's own tenant; another tenant's series, card or coalition is the same 404 as an unknown one.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from chalice.app import Response

from chalicelib import clock
from chalicelib.console.pages import PageRequest, PageRouter, gettext, redirect
from chalicelib.console.routes.customers import (
    minor_units,
    off_form,
    parse,
    said_at_fields,
    tenant_of,
    whole_number,
)
from chalicelib.domain.ids import new_id
from chalicelib.domain.roles import Role
from chalicelib.errors import ApiError
from chalicelib.lazy import lazy_module
from chalicelib.schemas.card_series import CardSeriesCreate
from chalicelib.schemas.coalitions import SettlementQuery
from chalicelib.schemas.gift_cards import GiftCardAdjustmentIn, GiftCardSale, GiftCardTopUp
from chalicelib.schemas.tenancy import ProgramKind, ProgramStatus

if TYPE_CHECKING:
    from chalicelib.services.pos import card_series, gift_cards
    from chalicelib.services.program import coalitions
    from chalicelib.services.tenancy import listings
else:
    card_series = lazy_module("chalicelib.services.pos.card_series")
    gift_cards = lazy_module("chalicelib.services.pos.gift_cards")
    coalitions = lazy_module("chalicelib.services.program.coalitions")
    listings = lazy_module("chalicelib.services.tenancy.listings")

router = PageRouter("cards")
ADMIN = {Role.TENANT_ADMIN}
"""The API's roles: series and settlement are the tenant admin's; sale and top-up also a till's (not a person);
the partner list is also support's, who see only the call-center view in the console."""
router.section("/console/cards", "Cards", roles=ADMIN, order=60)

PAGE = 25
PRINT_PAGE = 1000
SERIES_FIELDS = ("program_id", "count", "prefix", "length", "name")


# --- plastic series -----------------------------------------------------------------------------------------------

@router.page("GET", "/console/cards", roles=ADMIN)
def series_list(req: PageRequest) -> Response:
    return _series_list(req, {}, {"program_id": "", "count": "", "prefix": "", "length": "", "name": ""}, None, 200)


@router.page("POST", "/console/cards/series", roles=ADMIN)
def generate(req: PageRequest) -> Response:
    """A new series through the API's service: made at once up to 500 cards, else queued for the jobs worker."""
    typed = {name: req.form.get(name, "").strip() for name in SERIES_FIELDS}
    data: dict[str, Any] = {"program_id": typed["program_id"], "name": typed["name"] or None,
                            "prefix": typed["prefix"] or None}
    errors: dict[str, str] = {}
    for name in ("count", "length"):
        if typed[name] or name == "count":
            value, problem = whole_number(req, typed[name], name)
            errors.update(problem)
            data[name] = value if value is not None else 1 if name == "count" else 8
    parsed, more = parse(CardSeriesCreate, data)
    errors = {**more, **errors}
    if parsed is None or errors:
        return _series_list(req, errors, typed, None, 400)
    try:
        status, series = card_series.create(tenant_of(req).tenant_id, parsed, req.actor)
    except ApiError as err:
        errors, alert = said_at_fields(req, err, set(SERIES_FIELDS))
        return _series_list(req, errors, typed, alert, err.status)
    done = "created" if status == 201 else "queued"
    return redirect(f"/console/cards/series/{quote(series.series_id, safe='')}?done={done}")


@router.page("GET", "/console/cards/series/{series_id}", roles=ADMIN)
def series_page(req: PageRequest) -> Response:
    tenant = tenant_of(req)
    series = card_series.get(tenant.tenant_id, req.path["series_id"])
    notice = {"created": gettext(req.locale, "The series is made."),
              "queued": gettext(req.locale, "The series is queued: its cards are being made in the background. "
                                            "Reload this page to follow it.")}.get(req.query.get("done", ""))
    return req.render("cards/series.html", series=series, tenant=tenant, notice_text=notice)


@router.page("GET", "/console/cards/series/{series_id}/print-list", roles=ADMIN)
def print_list(req: PageRequest) -> Response:
    """The series' numbers in generation order, one per line (CSV), once the series is complete."""
    tenant_id = tenant_of(req).tenant_id
    series = card_series.get(tenant_id, req.path["series_id"])
    if series.status.value != "completed":
        raise ApiError(409, "series_not_ready", gettext(req.locale, "The print list is ready when the series is "
                                                                    "complete."))
    lines = ["number"]
    cursor: str | None = None
    while True:
        items, cursor = card_series.numbers(tenant_id, series.series_id, PRINT_PAGE, cursor)
        lines += [item.number for item in items]
        if cursor is None:
            break
    return Response(body="\r\n".join(lines) + "\r\n", status_code=200,
                    headers={"Content-Type": "text/csv; charset=utf-8",
                             "Content-Disposition": f'attachment; filename="series-{series.series_id}.csv"'})


# --- gift and prepaid cards ----------------------------------------------------------------------------------------

@router.page("GET", "/console/cards/gift", roles=ADMIN)
def gift_home(req: PageRequest) -> Response:
    """Look a gift card up by number, or sell one."""
    number = req.query.get("number", "").strip().replace(" ", "")[:32]
    if not number:
        return _gift_home(req, {}, "", _empty_sale(), 200)
    try:
        found = gift_cards.get(tenant_of(req).tenant_id, number)
    except ApiError as err:
        errors, alert = said_at_fields(req, err, {"number"})
        return _gift_home(req, errors or {"number": alert or ""}, number, _empty_sale(), err.status)
    return redirect(f"/console/cards/gift/{quote(found.number, safe='')}")


@router.page("POST", "/console/cards/gift", roles=ADMIN)
def sell(req: PageRequest) -> Response:
    """Sell a gift card (`POST /v1/gift-cards`): the form's sale id makes a second send the same sale."""
    tenant = tenant_of(req)
    typed = {name: req.form.get(name, "").strip() for name in ("program_id", "amount", "number", "store_id",
                                                               "sale_id")}
    amount, errors = minor_units(req, typed["amount"], tenant.currency, "amount")
    data = {"sale_id": typed["sale_id"], "program_id": typed["program_id"], "amount": amount or 1,
            "number": typed["number"].replace(" ", "") or None, "store_id": typed["store_id"] or None}
    parsed, more = parse(GiftCardSale, data)
    errors = {**more, **errors}
    if parsed is None or errors:
        errors, alert = off_form(req, errors, {"program_id", "amount", "number", "store_id"})
        if alert:
            typed["sale_id"] = new_id(16)
        return _gift_home(req, {}, "", {**typed, "errors": errors, "alert": alert}, 400)
    try:
        card, _ = gift_cards.sell(tenant.tenant_id, req.person, parsed, req.actor)
    except ApiError as err:
        errors, alert = said_at_fields(req, err, {"program_id", "amount", "number", "store_id"})
        if err.code == "idempotency_key_reused":
            typed["sale_id"] = new_id(16)
        return _gift_home(req, {}, "", {**typed, "errors": errors, "alert": alert}, err.status)
    return redirect(f"/console/cards/gift/{quote(card.number, safe='')}?done=sold")


@router.page("GET", "/console/cards/gift/{number}", roles=ADMIN)
def gift_card(req: PageRequest) -> Response:
    return _gift_card(req, {}, 200)


@router.page("POST", "/console/cards/gift/{number}/top-up", roles=ADMIN)
def top_up(req: PageRequest) -> Response:
    """Load money onto a reloadable card; the form's top-up id makes a second send the same top-up."""
    tenant = tenant_of(req)
    number = gift_cards.get(tenant.tenant_id, req.path["number"]).number
    typed = {name: req.form.get(name, "").strip() for name in ("amount", "topup_id")}
    amount, errors = minor_units(req, typed["amount"], tenant.currency, "amount")
    parsed, more = parse(GiftCardTopUp, {"topup_id": typed["topup_id"], "amount": amount or 1})
    errors = {**more, **errors}
    if parsed is None or errors:
        errors, alert = off_form(req, errors, {"amount"})
        if alert:
            typed["topup_id"] = new_id(16)
        return _gift_card(req, {"top_up": {**typed, "errors": errors, "alert": alert}}, 400)
    try:
        gift_cards.top_up(tenant.tenant_id, req.person, number, parsed, req.actor)
    except ApiError as err:
        errors, alert = said_at_fields(req, err, {"amount"})
        if err.code == "idempotency_key_reused":  # used for another top-up: a fresh id, the typed amount kept
            typed["topup_id"] = new_id(16)
        return _gift_card(req, {"top_up": {**typed, "errors": errors, "alert": alert}}, err.status)
    return redirect(f"/console/cards/gift/{quote(number, safe='')}?done=topped-up")


@router.page("POST", "/console/cards/gift/{number}/adjust", roles=ADMIN)
def correct(req: PageRequest) -> Response:
    """A manual correction of the money with its reason (`POST /v1/gift-cards/{number}/adjustments`)."""
    tenant = tenant_of(req)
    number = gift_cards.get(tenant.tenant_id, req.path["number"]).number
    typed = {"amount": req.form.get("correction", "").strip(), "reason": req.form.get("reason", "").strip(),
             "adjustment_id": req.form.get("adjustment_id", "").strip()}
    amount, errors = minor_units(req, typed["amount"], tenant.currency, "amount")
    parsed, more = parse(GiftCardAdjustmentIn, {"amount": 1 if amount is None else amount,
                                                "reason": typed["reason"], "adjustment_id": typed["adjustment_id"]})
    errors = {**more, **errors}
    if parsed is None or errors:
        errors, alert = off_form(req, errors, {"amount", "reason"})
        if alert:
            typed["adjustment_id"] = new_id(16)
        return _gift_card(req, {"correct": {**typed, "errors": _correction_fields(errors), "alert": alert}}, 400)
    try:
        gift_cards.adjust(tenant.tenant_id, number, parsed, req.actor)
    except ApiError as err:
        errors, alert = said_at_fields(req, err, {"amount", "reason"})
        if err.code == "idempotency_key_reused":
            typed["adjustment_id"] = new_id(16)
        return _gift_card(req, {"correct": {**typed, "errors": _correction_fields(errors), "alert": alert}},
                          err.status)
    return redirect(f"/console/cards/gift/{quote(number, safe='')}?done=corrected")


# --- coalitions -------------------------------------------------------------------------------------------------

@router.page("GET", "/console/cards/coalitions", roles=ADMIN)
def coalition_list(req: PageRequest) -> Response:
    """The coalitions the tenant is a partner of: the partners and the shared program."""
    tenant = tenant_of(req)
    cursor = req.query.get("cursor") or None
    items, next_cursor = coalitions.page_of_tenant(tenant.tenant_id, PAGE, cursor[:2000] if cursor else None)
    more = "/console/cards/coalitions?" + urlencode({"cursor": next_cursor}) if next_cursor else None
    start, end = _default_period(tenant.timezone)
    return req.render("cards/coalitions.html", tenant=tenant, coalitions=items, more=more,
                      start=start.isoformat(), end=end.isoformat())


@router.page("GET", "/console/cards/coalitions/{coalition_id}", roles=ADMIN)
def settlement(req: PageRequest) -> Response:
    """The tenant's own settlement line and the coalition's totals for a period of days in the tenant's zone."""
    tenant = tenant_of(req)
    coalition_id = req.path["coalition_id"]
    known = {c.coalition_id: c for c in coalitions.of_tenant(tenant.tenant_id)}
    coalition = known.get(coalition_id)
    if coalition is None:
        raise ApiError(404, "not_found", "")
    first, last = _default_period(tenant.timezone)
    typed = {"from": req.query.get("from", first.isoformat())[:10], "to": req.query.get("to", last.isoformat())[:10]}
    errors: dict[str, str] = {}
    days: dict[str, date] = {}
    for name, value in typed.items():
        try:
            days[name] = date.fromisoformat(value)
        except ValueError:
            errors[name] = gettext(req.locale, "Enter a date such as 2026-11-01.")
    result, status = None, 200
    if not errors:
        zone = ZoneInfo(tenant.timezone)
        period = {"from": datetime.combine(days["from"], time(), tzinfo=zone),
                  "to": datetime.combine(days["to"] + timedelta(days=1), time(), tzinfo=zone)}
        query, errors = parse(SettlementQuery, period)
        if query is not None:
            try:
                result = coalitions.partner_settlement(tenant.tenant_id, coalition_id, query.start, query.end)
            except ApiError as err:
                errors, alert = said_at_fields(req, err, {"from", "to"})
                errors = errors or {"from": alert or ""}
    if errors:
        status = 400
    return req.render("cards/settlement.html", status, tenant=tenant, coalition=coalition, typed=typed,
                      errors=errors, settlement=result)


# --- helpers ----------------------------------------------------------------------------------------------------

def _programs(tenant_id: str) -> list[Any]:
    found, cursor = [], None
    while True:
        items, cursor = listings.programs(tenant_id, 100, cursor)
        found += [p for p in items if p.status is not ProgramStatus.ARCHIVED]
        if cursor is None:
            return found


def _series_list(req: PageRequest, errors: dict[str, str], typed: dict[str, str], alert: str | None,
                 status: int) -> Response:
    tenant = tenant_of(req)
    cursor = req.query.get("cursor") or None
    items, next_cursor = card_series.list_all(tenant.tenant_id, PAGE, cursor[:2000] if cursor else None)
    more = "/console/cards?" + urlencode({"cursor": next_cursor}) if next_cursor else None
    return req.render("cards/series_list.html", status, tenant=tenant, series=items, more=more,
                      programs=_programs(tenant.tenant_id), errors=errors, form=typed, error=alert)


def _empty_sale() -> dict[str, Any]:
    return {"program_id": "", "amount": "", "number": "", "store_id": "", "sale_id": new_id(16), "errors": {},
            "alert": None}


def _gift_home(req: PageRequest, errors: dict[str, str], number: str, sale: dict[str, Any], status: int
               ) -> Response:
    tenant = tenant_of(req)
    gift_programs = [p for p in _programs(tenant.tenant_id) if p.kind is ProgramKind.GIFT]
    stores, _ = listings.stores(tenant.tenant_id, 100, None)
    return req.render("cards/gift.html", status, tenant=tenant, errors=errors, number=number, sale=sale,
                      programs=gift_programs, stores=[s for s in stores if s.active])


def _correction_fields(errors: dict[str, str]) -> dict[str, str]:
    """The correction form's amount field is `correction` (the top-up's is `amount`: one id per page)."""
    return {("correction" if k == "amount" else k): v for k, v in errors.items()}


def _gift_card(req: PageRequest, forms: dict[str, dict[str, Any]], status: int) -> Response:
    tenant = tenant_of(req)
    card = gift_cards.get(tenant.tenant_id, req.path["number"])
    program = next((p for p in _programs(tenant.tenant_id) if p.id == card.program_id), None)
    cursor = req.query.get("cursor") or None
    entries, next_cursor = gift_cards.ledger(tenant.tenant_id, card.number, PAGE, cursor[:2000] if cursor else None)
    base = f"/console/cards/gift/{quote(card.number, safe='')}"
    more = f"{base}?{urlencode({'cursor': next_cursor})}" if next_cursor else None
    top = {"amount": "", "topup_id": new_id(16), "errors": {}, "alert": None, **forms.get("top_up", {})}
    fix = {"amount": "", "reason": "", "adjustment_id": new_id(16), "errors": {}, "alert": None,
           **forms.get("correct", {})}
    notice = {"sold": gettext(req.locale, "The card is sold."),
              "topped-up": gettext(req.locale, "The money is loaded onto the card."),
              "corrected": gettext(req.locale, "The correction is in the ledger.")}.get(req.query.get("done", ""))
    return req.render("cards/gift_card.html", status, tenant=tenant, card=card, program=program, entries=entries,
                      more=more, first_page=cursor is None, base=base, top=top, fix=fix, notice_text=notice)


def _default_period(timezone: str) -> tuple[date, date]:
    """This month so far, in the tenant's zone."""
    today = clock.now().astimezone(ZoneInfo(timezone)).date()
    return today.replace(day=1), today
