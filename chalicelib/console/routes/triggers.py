"""Trigger messages in the console: per program, switch each automated message on or off, pick its channel and
template and its parameters (the birthday's gift, the days, the send time), and see what the triggers sent.

The same service, model and roles as `GET/PUT /v1/programs/{program_id}/triggers` (the tenant admin's): the
form is parsed into `TriggerSettings` (its errors at their inputs, the typed values kept) and saved by
`triggers.put`, which checks that the templates, the coupon campaign and the survey exist and fit, and audits.
The API keeps no version of these settings, so the form carries the time of the settings it shows and a save
over settings changed meanwhile is refused with what was typed kept (a check, not a lock). "What was sent" is
the per-trigger counters of the deliveries and the last run, and per trigger the messages queued newest first
with their outcome (the customer by id only). Another tenant's program is the API's 404.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from chalice.app import Response
from pydantic import ValidationError

from chalicelib.console.pages import PageRequest, PageRouter, gettext, listed, redirect
from chalicelib.console.routes.customers import tenant_of
from chalicelib.domain.roles import Role
from chalicelib.errors import ApiError, not_found
from chalicelib.lazy import lazy_module
from chalicelib.schemas.tenancy import ProgramStatus
from chalicelib.schemas.triggers import TriggerSettings, TriggerSettingsOut

if TYPE_CHECKING:
    from chalicelib.services.customers import surveys
    from chalicelib.services.marketing import templates, triggers
    from chalicelib.services.program import coupons
    from chalicelib.services.tenancy import listings
else:
    triggers = lazy_module("chalicelib.services.marketing.triggers")
    templates = lazy_module("chalicelib.services.marketing.templates")
    coupons = lazy_module("chalicelib.services.program.coupons")
    surveys = lazy_module("chalicelib.services.customers.surveys")
    listings = lazy_module("chalicelib.services.tenancy.listings")

router = PageRouter("triggers")
ADMIN = frozenset({Role.TENANT_ADMIN})
"""As the API's /v1/programs/{program_id}/triggers routes."""
router.section("/console/triggers", "Triggers", roles=ADMIN, order=49)

_ = str
"""Marks msgids for the catalogue; the templates translate these labels when they render them."""
KINDS: tuple[tuple[str, str], ...] = (
    ("welcome", _("When a card of the program is activated (first purchase or activation).")),
    ("birthday", _("Before the customer's birthday, with its gift: points and a coupon code.")),
    ("points_expiring", _("When the customer's points are about to expire.")),
    ("tier_upgrade", _("When a card reaches a higher tier.")),
    ("win_back", _("When a customer has made no purchase for a number of days.")),
    ("feedback", _("After a purchase: an invitation to a feedback questionnaire.")),
)
"""Each trigger and what it is about (its name: templates/triggers/_labels.html, in the context "trigger")."""
KIND_NAMES = tuple(kind for kind, _hint in KINDS)
PARAMS: dict[str, tuple[str, ...]] = {
    "birthday": ("days_before", "bonus_points", "coupon_campaign_id"),
    "points_expiring": ("within_days", "min_points"),
    "win_back": ("days",),
    "feedback": ("survey_id",),
}
"""Each trigger's own fields past enabled, channel and template_id."""
IDS = ("template_id", "coupon_campaign_id", "survey_id")
"""Fields chosen from a list: empty means none."""
CHANNELS = (("sms", _("SMS")), ("email", _("E-mail")))
STATUS_LABELS = {"queued": _("Queued"), "sending": _("Being sent"), "sent": _("Sent"),
                 "suppressed": _("Not sent (rules)"), "failed": _("Failed")}
REASON_LABELS = {"no_consent": _("no consent"), "quiet_hours": _("quiet hours"), "frequency_cap": _("weekly cap"),
                 "no_contact": _("no contact"), "customer_not_found": _("customer not found"),
                 "no_sender": _("no sender address"), "render_error": _("template error"),
                 "provider_error": _("provider refused"), "opted_out": _("unsubscribed"),
                 "erased": _("data erased"), "inactive": _("customer inactive")}
MODEL_MESSAGES = {
    "template_id is required when the trigger is enabled": ("template_id", _("Pick a template to switch this "
                                                                             "trigger on.")),
    "survey_id is required when the feedback trigger is enabled": ("survey_id", _("Pick a feedback questionnaire "
                                                                                  "to switch this trigger on.")),
}
"""A trigger's own rule (whole-section errors): at the input it is about, in words of the console."""
SENT_PAGE = 25
LIST_MAX = 500


def fields() -> tuple[str, ...]:
    """Every input of the settings form, named `<trigger>-<field>` (the API's `<trigger>.<field>`)."""
    names = ["send_time"]
    for kind in KIND_NAMES:
        names += [f"{kind}-enabled", f"{kind}-channel", f"{kind}-template_id"]
        names += [f"{kind}-{param}" for param in PARAMS.get(kind, ())]
    return tuple(names)


FIELDS = fields()


@router.page("GET", "/console/triggers", roles=ADMIN)
def program_list(req: PageRequest) -> Response:
    """Pick a program: its triggers are set per program."""
    tenant = tenant_of(req)
    rows = []
    for program in listed(listings.programs, tenant.tenant_id, LIST_MAX)[:50]:
        if program.status is ProgramStatus.ARCHIVED:
            continue
        try:
            current = triggers.get(tenant.tenant_id, program.id)
        except ApiError:  # a program whose first rules take effect later: no triggers yet
            rows.append({"program": program, "on": None})
            continue
        rows.append({"program": program, "on": [k for k in KIND_NAMES if getattr(current, k).enabled]})
    return req.render("triggers/programs.html", tenant=tenant, rows=rows)


@router.page("GET", "/console/triggers/{program_id}", roles=ADMIN)
def settings_page(req: PageRequest) -> Response:
    tenant = tenant_of(req)
    current = triggers.get(tenant.tenant_id, req.path["program_id"])
    notice = {"saved": gettext(req.locale, "The trigger settings are saved.")}.get(req.query.get("done", ""))
    return _settings(req, tenant, current, _values_of(current), {}, None, 200, notice)


@router.page("POST", "/console/triggers/{program_id}", roles=ADMIN)
def save(req: PageRequest) -> Response:
    """Replace the program's trigger settings (`PUT /v1/programs/{id}/triggers`)."""
    tenant = tenant_of(req)
    current = triggers.get(tenant.tenant_id, req.path["program_id"])  # another tenant's program: 404 first
    values = {name: req.form.get(name, "")[:200] for name in FIELDS}
    if req.form.get("updated", "") != _stamp(current):
        alert = gettext(req.locale, "These settings were changed by someone else after you opened them. Check "
                                    "them against what you typed below and save again.")
        return _settings(req, tenant, current, values, {}, alert, 409)
    try:
        spec = TriggerSettings.model_validate(_data(values), strict=False)
    except ValidationError as err:
        return _settings(req, tenant, current, values, _model_errors(req, err), None, 400)
    try:
        triggers.put(tenant.tenant_id, current.program_id, spec, req.actor)
    except ApiError as err:
        errors, refused = _api_errors(req, err, spec)
        status = 422 if err.status == 404 or err.status >= 500 else err.status
        return _settings(req, tenant, current, values, errors, refused, status)
    return redirect(f"/console/triggers/{quote(current.program_id, safe='')}?done=saved")


@router.page("GET", "/console/triggers/{program_id}/sent", roles=ADMIN)
def sent(req: PageRequest) -> Response:
    """The messages one trigger queued, newest first, with their outcome (`?trigger=<kind>`, paged)."""
    tenant = tenant_of(req)
    current = triggers.get(tenant.tenant_id, req.path["program_id"])
    kind = req.query.get("trigger", "welcome")
    if kind not in KIND_NAMES:
        raise not_found("Trigger")
    cursor = req.query.get("cursor") or None
    items, next_cursor = triggers.sent(tenant.tenant_id, current.program_id, kind, SENT_PAGE,
                                       cursor[:2048] if cursor else None)
    base = f"/console/triggers/{quote(current.program_id, safe='')}/sent"
    more = f"{base}?{urlencode({'trigger': kind, 'cursor': next_cursor})}" if next_cursor else None
    return req.render("triggers/sent.html", tenant=tenant, current=current, kind=kind, kinds=KINDS, items=items,
                      more=more, base=base, counts=current.stats.get(kind), status_labels=STATUS_LABELS,
                      reason_labels=REASON_LABELS)


# --- helpers ----------------------------------------------------------------------------------------------------

def _stamp(current: TriggerSettingsOut) -> str:
    return current.updated_at.isoformat() if current.updated_at else ""


def _settings(req: PageRequest, tenant: Any, current: TriggerSettingsOut, values: dict[str, str],
              errors: dict[str, str], alert: str | None, status: int, notice: str | None = None) -> Response:
    tenant_id = tenant.tenant_id
    kept = listed(templates.list_templates, tenant_id, LIST_MAX)
    options = {
        "template_id": {channel: [(t.id, t.name) for t in kept if t.channel == channel] for channel, _l in CHANNELS},
        "coupon_campaign_id": [(c.id, c.name) for c in listed(coupons.list_all, tenant_id, LIST_MAX)],
        "survey_id": [(s.id, s.title) for s in listed(surveys.list_all, tenant_id, LIST_MAX)
                      if getattr(s.kind, "value", s.kind) == "feedback"],
    }
    rows = [{"kind": kind, "on": getattr(current, kind).enabled,
             "counts": current.stats.get(kind), "last": (current.last_run.by_kind.get(kind, 0)
                                                         if current.last_run else None)}
            for kind, _hint in KINDS]
    return req.render("triggers/settings.html", status, tenant=tenant, current=current, values=values,
                      errors=errors, error=alert, notice_text=notice, kinds=KINDS, params=PARAMS,
                      channels=CHANNELS, options=options, rows=rows, stamp=_stamp(current),
                      self_url=f"/console/triggers/{quote(current.program_id, safe='')}")


def _values_of(current: TriggerSettingsOut) -> dict[str, str]:
    """Saved settings as the form's values."""
    values = {"send_time": current.send_time}
    for kind in KIND_NAMES:
        trigger = getattr(current, kind)
        values[f"{kind}-enabled"] = "on" if trigger.enabled else ""
        values[f"{kind}-channel"] = trigger.channel
        values[f"{kind}-template_id"] = trigger.template_id or ""
        for param in PARAMS.get(kind, ()):
            value = getattr(trigger, param)
            values[f"{kind}-{param}"] = "" if value is None else str(value)
    return values


def _data(values: Mapping[str, str]) -> dict[str, Any]:
    """The form as the model's input: numbers as typed (the model says what is not one), empty lists as none."""
    data: dict[str, Any] = {"send_time": values.get("send_time", "").strip()}
    for kind in KIND_NAMES:
        section: dict[str, Any] = {"enabled": bool(values.get(f"{kind}-enabled")),
                                   "channel": values.get(f"{kind}-channel", "").strip() or "sms"}
        for param in ("template_id", *PARAMS.get(kind, ())):
            text = values.get(f"{kind}-{param}", "").strip()
            if param in IDS:
                section[param] = text or None
            elif text:
                section[param] = text.replace(" ", "").replace("\u00a0", "")
        data[kind] = section
    return data


def _model_errors(req: PageRequest, err: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for item in err.errors(include_url=False):
        loc = [str(part) for part in item["loc"]]
        message = str(item["msg"]).removeprefix("Value error, ")
        if len(loc) == 1 and loc[0] in KIND_NAMES and message in MODEL_MESSAGES:
            param, said = MODEL_MESSAGES[message]
            name, message = f"{loc[0]}-{param}", said
        elif len(loc) >= 2 and loc[0] in KIND_NAMES:
            name = f"{loc[0]}-{loc[1]}"
        else:
            name = loc[0] if loc and loc[0] in FIELDS else "send_time"
        errors.setdefault(name, gettext(req.locale, message))
    return errors


def _api_errors(req: PageRequest, err: ApiError, spec: TriggerSettings) -> tuple[dict[str, str], str | None]:
    """A refusal of the service at the input it is about (its detail's field, or what a 404 names), else above."""
    message = gettext(req.locale, err.message)
    for detail in err.details or []:
        name = detail.field.replace(".", "-", 1)
        if name in FIELDS:
            return {name: message}, None
    on = [kind for kind in KIND_NAMES if getattr(spec, kind).enabled]
    if err.code == "template_not_found":
        known = {t.id for t in listed(templates.list_templates, req.person.tenant_id or "", LIST_MAX)}
        missing = [kind for kind in on if getattr(spec, kind).template_id not in known]
        if missing:
            return {f"{missing[0]}-template_id": message}, None
    if err.code == "campaign_not_found":
        return {"birthday-coupon_campaign_id": message}, None
    if err.code == "survey_not_found":
        return {"feedback-survey_id": message}, None
    return {}, message
