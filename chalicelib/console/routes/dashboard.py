"""The tenant dashboard: today, 7 and 30 days of receipts, revenue, points, new members and active cards.

The same live day counters as `GET /v1/dashboard` (kept inside the purchase,
refund, card and customer writes), for the same role (the tenant admin), read
day by day over the tenant's last 30 local days. Charts are inline SVG drawn
here (charts.py) with the same numbers in a table below them; money in the
tenant's currency, days in its time zone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from babel import dates
from chalice.app import Response
from pydantic import ValidationError

from chalicelib.console import charts, render
from chalicelib.console.pages import PageRequest, PageRouter, gettext
from chalicelib.domain.roles import Role
from chalicelib.errors import ApiError
from chalicelib.lazy import lazy_module
from chalicelib.schemas.dashboard import DashboardQuery

if TYPE_CHECKING:
    from chalicelib.services.reporting import dashboard_days
    from chalicelib.services.tenancy import listings, tenancy
else:
    dashboard_days = lazy_module("chalicelib.services.reporting.dashboard_days")
    listings = lazy_module("chalicelib.services.tenancy.listings")
    tenancy = lazy_module("chalicelib.services.tenancy.tenancy")

router = PageRouter("dashboard")
ROLES = frozenset({Role.TENANT_ADMIN})
"""As `GET /v1/dashboard`."""
router.section("/console/dashboard", "Dashboard", roles=ROLES, order=10)

DAYS = 30
RANGES = (7, 30)
PERIODS = (("today", 1), ("week", 7), ("month", 30))


@router.page("GET", "/console/dashboard", roles=ROLES)
def dashboard(req: PageRequest) -> Response:
    tenant_id = req.person.tenant_id
    assert tenant_id is not None
    program_id = _program_filter(req.query.get("program_id"))
    shown = 7 if req.query.get("range") == "7" else DAYS
    tenant = tenancy.require_tenant(tenant_id)
    programs, _ = listings.programs(tenant_id, 100, None)
    found = dashboard_days.recent_days(tenant_id, DAYS, program_id)
    periods = {name: found.period(count) for name, count in PERIODS}
    days = found.days[-shown:]
    names = {p.id: p.name for p in programs}
    subject = names.get(program_id, program_id) if program_id else tenant.name
    return req.render("dashboard/dashboard.html", tenant=tenant, timezone=found.timezone, as_of=found.as_of,
                      today=found.today, periods=periods, programs=programs, program_id=program_id, shown=shown,
                      ranges=RANGES, days=[(_day(d, req.locale, long=True), f) for d, f in reversed(days)],
                      charts=_charts(req, days, subject or "", tenant.currency))


def _program_filter(value: str | None) -> str | None:
    """The program to narrow to, checked as the API checks its query; a malformed id names nothing: 404."""
    if not value:
        return None
    try:
        return DashboardQuery.model_validate({"program_id": value}).program_id
    except ValidationError:
        raise ApiError(404, "program_not_found", "") from None


def _charts(req: PageRequest, days: list[Any], subject: str, currency: str) -> list[Any]:
    """The four charts of the page: (id, svg), each over the shown days; `subject` is the tenant or program."""
    locale = req.locale
    labels = [_day(d, locale) for d, _ in days]
    desc = gettext(locale, "%(subject)s, %(first)s to %(last)s. The table below has the same numbers.") % {
        "subject": subject, "first": _day(days[0][0], locale, long=True), "last": _day(days[-1][0], locale, long=True)}

    def series(name: str, figure: str) -> charts.Series:
        return charts.Series(name, [int(getattr(f, figure)) for _, f in days])

    def money(minor: int) -> str:
        return render.money(minor, currency, locale)

    def count(value: int) -> str:
        return render.number(value, locale)

    return [
        ("revenue", charts.bar_chart("revenue", gettext(locale, "Revenue per day"), desc, labels,
                                     series(gettext(locale, "Revenue"), "revenue"), money)),
        ("receipts", charts.bar_chart("receipts", gettext(locale, "Receipts per day"), desc, labels,
                                      series(gettext(locale, "Receipts"), "receipts"), count)),
        ("points", charts.line_chart("points", gettext(locale, "Points earned and redeemed per day"), desc, labels,
                                     [series(gettext(locale, "Points earned"), "points_earned"),
                                      series(gettext(locale, "Points redeemed"), "points_redeemed")], count)),
        ("people", charts.line_chart("people", gettext(locale, "New members and activated cards per day"), desc,
                                     labels, [series(gettext(locale, "New members"), "new_customers"),
                                              series(gettext(locale, "Cards activated"), "cards_activated")],
                                     count)),
    ]


def _day(day: Any, locale: str, long: bool = False) -> str:
    return str(dates.format_skeleton("yMMMd" if long else "dM", day, locale=locale))
