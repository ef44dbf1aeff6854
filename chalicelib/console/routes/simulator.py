"""The promotion simulator: change a program's earning rules, replay recent receipts, compare, then publish.

The same services and models as the API: the form's earning rules are the
program form's own inputs (named by the model's paths, console/program_form),
laid over the rules of the program's latest version and parsed into
`ProgramUpdate`; the period and the proposal go to `SimulationRequest` and to
`simulation_requests.simulate`, the service of POST
/v1/programs/{id}/simulate. A period the service answers at once shows its
figures on the page; a larger one is a `simulation` report, followed on its
own page (htmx polling, a plain Refresh link without JavaScript) and shown
from its file once ready.

"Publish this change" posts exactly the simulated earning rules (carried in
hidden inputs, or the proposal kept in the report) with the version they were
laid over, and publishes them with `tenancy.replace_program` (PUT
/v1/programs/{id}: its checks, versioning and audit by the person); a version
published by someone else meanwhile is a 409 on the page, never overwritten.
Tenant admin only (as the API's route); another tenant's program is the API's 404.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from chalice.app import Response
from pydantic import ValidationError

from chalicelib import clock
from chalicelib.console import charts
from chalicelib.console import program_form as rules_form
from chalicelib.console.pages import PageRequest, PageRouter, gettext, redirect
from chalicelib.console.render import money, number
from chalicelib.domain.roles import Role
from chalicelib.errors import ApiError, not_found
from chalicelib.lazy import lazy_module
from chalicelib.schemas.reports import Report
from chalicelib.schemas.simulation import SimulationRequest, SimulationResult
from chalicelib.schemas.tenancy import Program, ProgramBody, ProgramKind, ProgramStatus, ProgramUpdate, Tenant

if TYPE_CHECKING:
    from chalicelib.services.program import catalog
    from chalicelib.services.reporting import simulation_requests as simulation
    from chalicelib.services.reporting.reports import service as reports
    from chalicelib.services.tenancy import listings, tenancy
else:
    catalog = lazy_module("chalicelib.services.program.catalog")
    listings = lazy_module("chalicelib.services.tenancy.listings")
    reports = lazy_module("chalicelib.services.reporting.reports.service")
    simulation = lazy_module("chalicelib.services.reporting.simulation_requests")
    tenancy = lazy_module("chalicelib.services.tenancy.tenancy")

router = PageRouter("simulator")
ADMIN = frozenset({Role.TENANT_ADMIN})
"""As the API's POST /v1/programs/{id}/simulate and PUT /v1/programs/{id} (the agency has its own API routes)."""
router.section("/console/simulator", "Simulator", roles=ADMIN, order=75)

DEFAULT_DAYS = 30
CHART_DAYS = 62
"""Up to this many days the per-day chart shows every day of the period; longer: the days with receipts."""
LIST_MAX = 200
EARNING = next(s for s in rules_form.SECTIONS if s.anchor == "earning")
"""The rules the simulator changes: the program form's earning section (rate, multipliers, promotions)."""
PERIOD = ("from", "to")
ACTIVE = ("queued", "running")
STATUS_LABELS = {"queued": "Queued", "running": "Being built", "ready": "Ready", "failed": "Failed",
                 "expired": "Expired"}


# --- pages ------------------------------------------------------------------------------------------------------

@router.page("GET", "/console/simulator", roles=ADMIN)
def programs(req: PageRequest) -> Response:
    """Pick a program: the tenant's points programs in use."""
    tenant = _tenant(req)
    found: list[Program] = []
    cursor: str | None = None
    while len(found) < LIST_MAX:
        items, cursor = listings.programs(tenant.tenant_id, 100, cursor)
        found += items
        if cursor is None:
            break
    shown = [p for p in found if p.kind is ProgramKind.POINTS and p.status is not ProgramStatus.ARCHIVED]
    return req.render("simulator/programs.html", tenant=tenant, programs=shown[:LIST_MAX])


@router.page("GET", "/console/simulator/{program_id}", roles=ADMIN)
def simulator(req: PageRequest) -> Response:
    """The form, filled with the program's rules and the last DEFAULT_DAYS days."""
    tenant = _tenant(req)
    head = _program(tenant, req.path["program_id"])
    values = {**_earning_values(head, tenant), **_default_period()}
    return _page(req, tenant, head, values, {}, {}, 200, base_version=head.version)


@router.page("POST", "/console/simulator/{program_id}/edit", roles=ADMIN)
def edit(req: PageRequest) -> Response:
    """The form again with what was typed and one more blank row of the list whose "add" was pressed."""
    tenant = _tenant(req)
    head = _program(tenant, req.path["program_id"])
    return _page(req, tenant, head, _typed(req.form), {}, _extra(req.form), 200, base_version=_base(req, head))


@router.page("POST", "/console/simulator/{program_id}", roles=ADMIN)
def run(req: PageRequest) -> Response:
    """Replay the period through the rules in force and the form's rules (the service of POST .../simulate)."""
    tenant = _tenant(req)
    head = _program(tenant, req.path["program_id"])
    if req.form.get("add"):
        return edit(req)
    typed, extra, base = _typed(req.form), _extra(req.form), _base(req, head)
    parsed = _parse(tenant, head, req.form)
    errors = dict(parsed.errors)
    body: SimulationRequest | None = None
    try:  # with rules refused, the period is still checked (with a stand-in proposal) so both errors show at once
        body = SimulationRequest.model_validate_json(json.dumps({
            "from": typed.get("from") or None, "to": typed.get("to") or None,
            "proposed": _proposal(parsed.model) if parsed.model is not None else
            head.model_dump(mode="json", include=set(ProgramBody.model_fields))}))
    except ValidationError as err:
        for item in err.errors(include_url=False):
            where = str(item["loc"][0]) if item["loc"] else "to"  # the period rule (to after from) is about `to`
            if where in PERIOD or not item["loc"]:
                errors.setdefault(where if where in PERIOD else "to", _message(str(item["msg"])))
    if errors or body is None:
        return _page(req, tenant, head, typed, errors, extra, 400, base_version=base)
    try:
        answer = simulation.simulate(tenant.tenant_id, head.id, body, req.actor)
    except ApiError as err:
        return _page(req, tenant, head, typed, _api_errors(err, parsed.places), extra,
                     err.status if err.status < 500 else 400, base_version=base)
    if isinstance(answer, SimulationResult):
        shown = _view(answer, tenant, req, body.from_, body.to)
        return _page(req, tenant, head, typed, {}, extra, 200, base_version=base, result=shown, proposal=parsed.model)
    _, report = answer
    return redirect(f"{_self(head)}/runs/{quote(report.report_id, safe='')}?base={base}")


@router.page("GET", "/console/simulator/{program_id}/runs/{report_id}", roles=ADMIN)
def run_page(req: PageRequest) -> Response:
    """A replay too large to answer at once: its progress (polling itself), then its figures and Publish."""
    tenant = _tenant(req)
    head = _program(tenant, req.path["program_id"])
    report, proposal = _run_of(tenant, head, req.path["report_id"])
    proposal_values = _earning_values(proposal, tenant)
    base = req.query.get("base", "")
    base = base if base.isdigit() else str(head.version)
    replay = None
    if report.status.value == "ready":
        try:
            replay = simulation.reported_replay(tenant.tenant_id, report.report_id)
        except Exception:  # the file is gone (expired) or unreadable: the page says so, the rest still shows
            replay = None
    in_force = catalog.program(tenant.tenant_id, head.id) or head
    changes = rules_form.diff(in_force, proposal, tenant.timezone, req.locale, tenant.currency) if replay else []
    return req.render("simulator/run.html", tenant=tenant, program=head, report=report, in_force=in_force,
                      changes=changes,
                      status_label=STATUS_LABELS.get(report.status.value, ""), active=report.status.value in ACTIVE,
                      self_url=f"{_self(head)}/runs/{quote(report.report_id, safe='')}?base={base}",
                      result=_view(replay, tenant, req, report.from_, report.to) if replay else None,
                      carry=sorted(proposal_values.items()), base_version=base,
                      period={"from": report.from_.isoformat(), "to": report.to.isoformat()})


@router.page("POST", "/console/simulator/{program_id}/publish", roles=ADMIN)
def publish(req: PageRequest) -> Response:
    """Publish the simulated earning rules as the program's new version (PUT /v1/programs/{id}'s service)."""
    tenant = _tenant(req)
    head = _program(tenant, req.path["program_id"])
    typed, base = _typed(req.form), req.form.get("base_version", "")
    if base != str(head.version):
        said = gettext(req.locale, "Someone published other rules meanwhile (version %(number)s): nothing was "
                                   "published. The form now starts from your simulated rules again; run the "
                                   "simulation against the rules in force now before you publish.") % {
            "number": head.version}
        return _page(req, tenant, head, typed, {}, {}, 409, base_version=head.version, alert_text=said)
    parsed = _parse(tenant, head, req.form)
    if parsed.model is None:
        return _page(req, tenant, head, typed, parsed.errors, {}, 400, base_version=head.version)
    update: ProgramUpdate = parsed.model
    try:
        published = tenancy.replace_program(tenant.tenant_id, update.with_id(head.id), req.actor, None)
    except ApiError as err:
        return _page(req, tenant, head, typed, _api_errors(err, parsed.places), {},
                     err.status if err.status < 500 else 400, base_version=head.version)
    return redirect(f"/console/programs/{quote(head.id, safe='')}?done=published&version={published.version}")


# --- helpers ----------------------------------------------------------------------------------------------------

def _tenant(req: PageRequest) -> Tenant:
    tenant_id = req.person.tenant_id
    if tenant_id is None:
        raise not_found("Tenant")
    return tenancy.require_tenant(tenant_id)


def _program(tenant: Tenant, program_id: str) -> Program:
    """The program's latest version (the one a publish replaces); the API's 404 for another tenant's."""
    return tenancy.require_program(tenant.tenant_id, program_id)


def _self(head: Program) -> str:
    return f"/console/simulator/{quote(head.id, safe='')}"


def _default_period() -> dict[str, str]:
    """The last DEFAULT_DAYS UTC days, today included: [today - 29, tomorrow)."""
    end = clock.now().date() + timedelta(days=1)
    return {"from": (end - timedelta(days=DEFAULT_DAYS)).isoformat(), "to": end.isoformat()}


def _is_earning(name: str) -> bool:
    return name.startswith("earning.") or name.startswith("extra.earning.")


def _earning_values(program: Program | Any, tenant: Tenant) -> dict[str, str]:
    return {k: v for k, v in rules_form.values_of(program, tenant.timezone).items() if _is_earning(k)}


def _typed(form: Mapping[str, str]) -> dict[str, str]:
    """What the person typed and may see again: the earning inputs and the period (never the token or buttons)."""
    return {k: v for k, v in form.items() if (k.startswith("earning.") or k in PERIOD)}


def _extra(form: Mapping[str, str]) -> dict[str, int]:
    extra: dict[str, int] = {}
    for rows in EARNING.rows:
        shown = form.get(f"extra.{rows.path}", "0")
        extra[rows.path] = min(int(shown), 20) if shown.isdigit() else 0
    added = form.get("add")
    if added in extra:
        extra[added] += 1
    return extra


def _base(req: PageRequest, head: Program) -> int:
    raw = req.form.get("base_version", "")
    return int(raw) if raw.isdigit() and len(raw) < 10 else head.version


def _parse(tenant: Tenant, head: Program, form: Mapping[str, str]) -> rules_form.Parsed:
    """The program's latest rules with the form's earning rules laid over them, parsed as ProgramUpdate."""
    merged = {k: v for k, v in rules_form.values_of(head, tenant.timezone).items() if not _is_earning(k)}
    merged.update({k: v for k, v in form.items() if k.startswith("earning.")})
    return rules_form.parse(ProgramUpdate, merged, tenant.timezone, catalog.stores(tenant.tenant_id))


def _proposal(update: ProgramUpdate) -> dict[str, Any]:
    return update.model_dump(mode="json", exclude={"effective_at"})


def _message(msg: str) -> str:
    return msg.removeprefix("Value error, ")


def _api_errors(err: ApiError, places: Mapping[str, Mapping[Any, int]]) -> dict[str, str]:
    """A service's refusal at the inputs its details name (`proposed.earning.rate_bps` at `earning.rate_bps`)."""
    errors: dict[str, str] = {}
    for detail in err.details:
        field = detail.field.removeprefix("proposed.")
        if field in PERIOD:
            errors.setdefault(field, err.message)
            continue
        parts = tuple(int(p) if p.isdigit() else p for p in field.split("."))
        errors.setdefault(rules_form.place(parts, places, detail.issue), err.message)
    return errors or {"form": err.message}


def _run_of(tenant: Tenant, head: Program, report_id: str) -> tuple[Report, ProgramBody]:
    """The simulation report of this program and its proposal; 404 for any other report."""
    found = simulation.proposal_of_report(tenant.tenant_id, report_id)
    if found is None or found[0] != head.id:
        raise not_found("Report")
    report = reports.get(tenant.tenant_id, report_id, Role.TENANT_ADMIN)
    return report, found[1]


def _every_day(days: list[Any], start: date, end: date) -> list[tuple[date, int, int]]:
    """Each day of the period for the chart (days without receipts at 0), or only the days with receipts when the
    period is longer than CHART_DAYS."""
    found = {d.day: (d.points_current, d.points_proposed) for d in days}
    if (end - start).days > CHART_DAYS:
        return [(day, *found[day]) for day in sorted(found)]
    return [(start + timedelta(days=i), *found.get(start + timedelta(days=i), (0, 0)))
            for i in range((end - start).days)]


def _view(result: Any, tenant: Tenant, req: PageRequest, start: date, end: date) -> dict[str, Any]:
    """The figures a page shows, from a SimulationResult or a ReportedReplay alike, with their two charts."""
    totals = result.totals
    point_value = int(result.point_value) if isinstance(result, SimulationResult) else \
        int(result.proposal.redemption.point_value)
    rate_bps, basis = (result.redemption_rate.rate_bps, result.redemption_rate.basis) \
        if isinstance(result, SimulationResult) else (result.rate_bps, result.basis)
    locale, currency = req.locale, tenant.currency
    in_force, candidate = gettext(locale, "Rules in force"), gettext(locale, "Simulated rules")
    days = result.by_day
    plotted = _every_day(days, start, end)
    labels = [day.strftime("%d.%m") for day, _c, _p in plotted]
    day_chart = charts.line_chart(
        "sim-days", gettext(locale, "Points issued per day"),
        gettext(locale, "Points the replayed receipts earn each day under the rules in force and the simulated "
                        "rules; the table below has the same figures."),
        labels, [charts.Series(in_force, [c for _d, c, _p in plotted]),
                 charts.Series(candidate, [p for _d, _c, p in plotted])],
        lambda v: number(v, locale)) if days else None
    cats = result.by_category
    category_chart = charts.grouped_bar_chart(
        "sim-categories", gettext(locale, "Points issued per category"),
        gettext(locale, "Points per category under the rules in force and the simulated rules; the table below "
                        "has the same figures."),
        [c.category for c in cats], [charts.Series(in_force, [c.points_current for c in cats]),
                                     charts.Series(candidate, [c.points_proposed for c in cats])],
        lambda v: number(v, locale)) if cats else None
    return {
        "totals": totals, "point_value": point_value, "rate_bps": rate_bps, "basis": basis,
        "customers_affected": result.customers_affected,
        "value_current": totals.points_current * point_value, "value_proposed": totals.points_proposed * point_value,
        "by_day": days, "by_category": cats, "tiers": result.tiers, "day_chart": day_chart,
        "category_chart": category_chart, "rate_text": f"{rate_bps / 100:.2f}%",
        "point_value_text": money(point_value, currency, locale),
    }


def _summary(req: PageRequest, errors: dict[str, str]) -> list[tuple[str, str, str]]:
    """Every error, first at the top (anchor, what, message), linking to its input where the page has one."""
    out = []
    for name, message in errors.items():
        control = rules_form.CONTROLS.get(name)
        found = rules_form.ROW_PATTERN.match(name)
        if name in PERIOD:
            what = gettext(req.locale, "From") if name == "from" else gettext(req.locale, "To (not included)")
            anchor = f"f-{name}"
        elif control is not None:
            what, anchor = gettext(req.locale, control.label), f"f-{name}" if _is_earning(name) else "g-form"
        elif found and found["rows"] in rules_form.ROWS:
            rows = rules_form.ROWS[found["rows"]]
            label = next((f.label for f in rows.fields if f.path == found["field"]), "")
            what = f"{gettext(req.locale, rows.label)} {int(found['index']) + 1} · {gettext(req.locale, label)}"
            anchor = f"f-{name}" if _is_earning(name) else "g-form"
        else:
            what = gettext(req.locale, rules_form.GROUP_LABELS.get(name.split(".")[0], "Program"))
            anchor = f"g-{name}" if _is_earning(name) else "g-form"
        out.append((anchor, what, message))
    return out


def _page(req: PageRequest, tenant: Tenant, head: Program, values: dict[str, str], errors: dict[str, str],
          extra: dict[str, int], status: int, *, base_version: int, result: dict[str, Any] | None = None,
          alert_text: str | None = None, proposal: ProgramUpdate | None = None) -> Response:
    in_force = catalog.program(tenant.tenant_id, head.id) or head
    changes = rules_form.diff(in_force, proposal.with_id(head.id), tenant.timezone, req.locale, tenant.currency) \
        if result and proposal else []
    rows = {r.path: rules_form.row_count(r, values, extra.get(r.path, 0)) for r in EARNING.rows}
    carry = sorted((k, v) for k, v in values.items() if k.startswith("earning.")) if result else []
    return req.render("simulator/simulator.html", status, tenant=tenant, program=head, in_force=in_force,
                      values=values, errors=errors, rows=rows, extra=extra, rule_sections=(EARNING,), stores=[],
                      summary=_summary(req, errors), base_version=base_version, result=result, carry=carry,
                      alert_text=alert_text, self_url=_self(head), changes=changes)
