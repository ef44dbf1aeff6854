"""Campaigns in the console: the list, a new campaign (segment, channel, template, now or later, the control
group), its progress while it is sent, its results against the control group, and cancel.

The same services, model and roles as the API's `/v1/campaigns` routes (the tenant admin's): the form is parsed
with `CampaignCreate` (its errors at the field, what was typed kept), created by `campaigns.create` with its
audit entry, cancelled by `campaigns.cancel` (409 when it is too late, said on the page), and the results are
`campaign_results.results`, the service of GET /v1/campaigns/{id}/results. The tenant's quiet hours and weekly
cap are shown from its mail settings (read only; they are changed in the mail settings). With htmx the form
asks for the segment's audience and the channel's templates as they are chosen, and a campaign being sent polls
a small progress fragment until its messages are all processed; without JavaScript the "Update" button and a
reload do the same. Another tenant's campaign id is the API's 404.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from babel import numbers
from chalice.app import Response
from pydantic import ValidationError

from chalicelib import clock
from chalicelib.console import charts
from chalicelib.console.pages import PageRequest, PageRouter, gettext, listed, redirect
from chalicelib.console.render import money
from chalicelib.console.routes.customers import tenant_of
from chalicelib.domain.roles import Role
from chalicelib.errors import ApiError
from chalicelib.lazy import lazy_module
from chalicelib.schemas.campaigns import Campaign, CampaignCreate, CampaignResults

if TYPE_CHECKING:
    from chalicelib.services.marketing import campaign_results, campaigns, mail_settings, segments, templates
    from chalicelib.services.program import coupons
else:
    campaigns = lazy_module("chalicelib.services.marketing.campaigns")
    campaign_results = lazy_module("chalicelib.services.marketing.campaign_results")
    mail_settings = lazy_module("chalicelib.services.marketing.mail_settings")
    segments = lazy_module("chalicelib.services.marketing.segments")
    templates = lazy_module("chalicelib.services.marketing.templates")
    coupons = lazy_module("chalicelib.services.program.coupons")

router = PageRouter("campaigns")
ADMIN = frozenset({Role.TENANT_ADMIN})
"""As the API's /v1/campaigns routes."""
router.section("/console/campaigns", "Campaigns", roles=ADMIN, order=48)

PAGE = 25
CHOICES_MAX = 200
FIELDS = ("id", "name", "segment_id", "channel", "template_id", "coupon_campaign_id", "when", "send_at",
          "holdout_pct", "attribution_days")
CHANNELS = ("email", "sms")
_ = str
"""Marks msgids for the catalogue; the templates translate these labels when they render them."""
CHANNEL_LABELS = {"email": _("E-mail"), "sms": _("SMS")}
STATUS_LABELS = {"scheduled": _("Scheduled"), "sending": _("Being sent"), "sent": _("Sent"),
                 "cancelled": _("Cancelled"), "failed": _("Failed")}
REASON_LABELS = {"no_consent": _("no consent"), "opted_out": _("opted out"), "quiet_hours": _("quiet hours"),
                 "frequency_cap": _("weekly cap"), "no_contact": _("no contact"), "inactive": _("customer inactive"),
                 "erased": _("customer erased")}
POLL_AHEAD = timedelta(minutes=15)
"""A scheduled campaign's page polls once its time is this close."""
POLL_AFTER = timedelta(hours=1)
"""A finished campaign's page stops polling for stray deliveries this long after the fan-out ended."""
PERCENT = re.compile(r"^\d{1,2}(?:[.,]\d{1,2})?$")
LOCAL_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2})?$")


@router.page("GET", "/console/campaigns", roles=ADMIN)
def campaign_list(req: PageRequest) -> Response:
    tenant = tenant_of(req)
    cursor = req.query.get("cursor") or None
    items, next_cursor = campaigns.list_all(tenant.tenant_id, PAGE, cursor[:2048] if cursor else None)
    names = {s.segment_id: s.name for s in listed(segments.list_segments, tenant.tenant_id, CHOICES_MAX)}
    more = "/console/campaigns?" + urlencode({"cursor": next_cursor}) if next_cursor else None
    notice = {"cancelled": gettext(req.locale, "The campaign is cancelled.")}.get(req.query.get("done", ""))
    return req.render("campaigns/list.html", tenant=tenant, items=items, segment_names=names, more=more,
                      notice_text=notice, status_labels=STATUS_LABELS, channel_labels=CHANNEL_LABELS)


@router.page("GET", "/console/campaigns/new", roles=ADMIN)
def new_campaign(req: PageRequest) -> Response:
    typed = {name: "" for name in FIELDS}
    typed.update(id=_suggested_id(), channel="email", when="now", holdout_pct="10", attribution_days="7")
    if req.query.get("segment_id"):
        typed["segment_id"] = req.query["segment_id"][:40]
    return _form(req, typed, {}, None, 200)


@router.page("POST", "/console/campaigns", roles=ADMIN)
def create_campaign(req: PageRequest) -> Response:
    """Create the campaign (`POST /v1/campaigns`), or with `do=refresh` show the audience and templates again."""
    typed = _typed(req.form)
    if req.form.get("do") == "refresh":
        return _form(req, typed, {}, None, 200, counted=True)
    tenant = tenant_of(req)
    spec, errors = _parse(req, tenant.timezone, typed)
    if spec is None:
        return _form(req, typed, errors, None, 400, counted=True)
    try:
        made = campaigns.create(tenant.tenant_id, spec, req.actor)
    except ApiError as err:
        errors, alert = _api_errors(req, err)
        return _form(req, typed, errors, alert, err.status if err.status < 500 else 400, counted=True)
    return redirect(f"/console/campaigns/{quote(made.id, safe='')}?done=created")


@router.page("POST", "/console/campaigns/audience", roles=ADMIN)
def audience(req: PageRequest) -> Response:
    """The estimated audience of the chosen segment (htmx swaps it into the form's live region)."""
    typed = _typed(req.form)
    return req.render("campaigns/_audience.html", audience=_audience(tenant_of(req).tenant_id, typed))


@router.page("POST", "/console/campaigns/templates", roles=ADMIN)
def template_choices(req: PageRequest) -> Response:
    """The template field for the chosen channel (htmx swaps it in when the channel changes)."""
    typed = _typed(req.form)
    choices = _templates(tenant_of(req).tenant_id)
    return req.render("campaigns/_template.html", form=typed, errors={},
                      templates=[t for t in choices if t.channel == typed["channel"]])


@router.page("GET", "/console/campaigns/{campaign_id}", roles=ADMIN)
def campaign_page(req: PageRequest) -> Response:
    tenant = tenant_of(req)
    campaign = campaigns.get(tenant.tenant_id, req.path["campaign_id"])
    notice = {"created": gettext(req.locale, "The campaign is created."),
              "cancelled": gettext(req.locale, "The campaign is cancelled.")}.get(req.query.get("done", ""))
    return _campaign(req, tenant, campaign, notice, None, 200)


@router.page("GET", "/console/campaigns/{campaign_id}/progress", roles=ADMIN)
def progress(req: PageRequest) -> Response:
    """The live part of the campaign's page: progress while it is sent, then the results (htmx polls it)."""
    tenant = tenant_of(req)
    campaign = campaigns.get(tenant.tenant_id, req.path["campaign_id"])
    return req.render("campaigns/_live.html", **_live(req, tenant, campaign))


@router.page("GET", "/console/campaigns/{campaign_id}/cancel", roles=ADMIN)
def cancel_confirm(req: PageRequest) -> Response:
    tenant = tenant_of(req)
    campaign = campaigns.get(tenant.tenant_id, req.path["campaign_id"])
    return req.render("campaigns/cancel.html", tenant=tenant, campaign=campaign, error=None,
                      status_labels=STATUS_LABELS)


@router.page("POST", "/console/campaigns/{campaign_id}/cancel", roles=ADMIN)
def cancel(req: PageRequest) -> Response:
    """Cancel (`POST /v1/campaigns/{id}/cancel`); too late (409) is said on the campaign's page."""
    tenant = tenant_of(req)
    campaign = campaigns.get(tenant.tenant_id, req.path["campaign_id"])  # another tenant's id: 404 first
    try:
        campaigns.cancel(tenant.tenant_id, campaign.id, req.actor)
    except ApiError as err:
        if err.status != 409:
            raise
        current = campaigns.get(tenant.tenant_id, campaign.id)
        alert = gettext(req.locale, "Too late to cancel: the campaign's status is “%(status)s”.") % {
            "status": gettext(req.locale, STATUS_LABELS.get(current.status, current.status))}
        return _campaign(req, tenant, current, None, alert, 409)
    return redirect(f"/console/campaigns/{quote(campaign.id, safe='')}?done=cancelled")


# --- helpers ----------------------------------------------------------------------------------------------------

def _suggested_id() -> str:
    return f"c-{clock.now():%Y%m%d}-{secrets.token_hex(3)}"


def _typed(form: Mapping[str, str]) -> dict[str, str]:
    """What the person typed, by field (kept as typed to show it again)."""
    typed = {name: form.get(name, "").strip()[:2000] for name in FIELDS}
    if typed["channel"] not in CHANNELS:
        typed["channel"] = "email"
    if typed["when"] not in ("now", "later"):
        typed["when"] = "now"
    return typed


def _templates(tenant_id: str) -> list[Any]:
    return listed(templates.list_templates, tenant_id, CHOICES_MAX)


def _holdout_bps(text: str) -> int | None:
    """A share typed in percent (10, 12.5 or 12,5) as basis points; None if it is not a percentage."""
    if not PERCENT.fullmatch(text):
        return None
    try:
        return int(Decimal(text.replace(",", ".")) * 100)
    except InvalidOperation:
        return None


def _parse(req: PageRequest, timezone: str, typed: dict[str, str]) -> tuple[CampaignCreate | None, dict[str, str]]:
    """The form as the API's `CampaignCreate`, or the errors at their fields (the first one each)."""
    errors: dict[str, str] = {}
    data: dict[str, Any] = {name: typed[name] for name in ("id", "name", "segment_id", "channel", "template_id")}
    if typed["coupon_campaign_id"]:
        data["coupon_campaign_id"] = typed["coupon_campaign_id"]
    holdout = _holdout_bps(typed["holdout_pct"].replace(" ", "").removesuffix("%"))
    if holdout is None:
        errors["holdout_pct"] = gettext(req.locale, "Enter a share from 0 to 50 %, e.g. 10.")
    else:
        data["holdout_bps"] = holdout
    days = typed["attribution_days"].replace(" ", "")
    if days.isdigit() and len(days) < 6:
        data["attribution_days"] = int(days)
    else:
        errors["attribution_days"] = gettext(req.locale, "Enter a whole number of days, e.g. 7.")
    if typed["when"] == "later":
        if not LOCAL_TIME.fullmatch(typed["send_at"]):
            errors["send_at"] = gettext(req.locale, "Enter the date and time to send.")
        else:
            try:
                local = datetime.fromisoformat(typed["send_at"])
            except ValueError:
                errors["send_at"] = gettext(req.locale, "Enter the date and time to send.")
            else:
                data["send_at"] = local.replace(tzinfo=ZoneInfo(timezone)).isoformat()
    try:
        spec = CampaignCreate.model_validate_json(json.dumps(data))
    except ValidationError as err:
        for item in err.errors(include_url=False):
            name = str(item["loc"][0]) if item["loc"] else "name"
            if name == "holdout_bps":
                errors.setdefault("holdout_pct", gettext(req.locale, "Enter a share from 0 to 50 %, e.g. 10."))
            else:
                errors.setdefault(name if name in FIELDS else "name", str(item["msg"]).removeprefix("Value error, "))
        return None, errors
    return (None, errors) if errors else (spec, {})


def _api_errors(req: PageRequest, err: ApiError) -> tuple[dict[str, str], str | None]:
    """A refusal of the service at the field its detail names, else above the form."""
    message = gettext(req.locale, err.message)
    for detail in err.details or []:
        name = {"holdout_bps": "holdout_pct"}.get(detail.field, detail.field)
        if name in FIELDS:
            extra = f" ({detail.issue})" if detail.issue and detail.issue != err.message else ""
            return {name: message + extra}, None
    return {}, message


def _audience(tenant_id: str, typed: dict[str, str]) -> dict[str, Any] | None:
    """The segment's members now, and how many of them the control group keeps out (an estimate)."""
    if not typed["segment_id"]:
        return None
    try:
        counted = segments.count(tenant_id, typed["segment_id"]).count
    except ApiError:
        return None
    holdout = _holdout_bps(typed["holdout_pct"].replace(" ", "").removesuffix("%"))
    holdout = holdout if holdout is not None and 0 <= holdout <= 5000 else None
    control = counted * holdout // 10_000 if holdout is not None else None
    return {"count": counted, "control": control, "recipients": counted - control if control is not None else None}


def _form(req: PageRequest, typed: dict[str, str], errors: dict[str, str], alert: str | None, status: int, *,
          counted: bool = False) -> Response:
    tenant = tenant_of(req)
    tenant_id = tenant.tenant_id
    choices = _templates(tenant_id)
    settings = mail_settings.get(tenant_id)
    return req.render(
        "campaigns/new.html", status, tenant=tenant, form=typed, errors=errors, error=alert,
        segments=listed(segments.list_segments, tenant_id, CHOICES_MAX),
        templates=[t for t in choices if t.channel == typed["channel"]],
        coupon_campaigns=listed(coupons.list_all, tenant_id, CHOICES_MAX), settings=settings,
        audience=_audience(tenant_id, typed) if counted or typed["segment_id"] else None,
        channel_labels=CHANNEL_LABELS)


def _processed(campaign: Campaign) -> int:
    counts = campaign.counts
    return counts.sent + counts.failed + counts.suppressed


def _active(campaign: Campaign) -> bool:
    """Whether the page should keep polling: the fan-out runs, is due soon, or queued messages are still going."""
    now = clock.now()
    if campaign.status == "sending":
        return True
    if campaign.status == "scheduled":
        return campaign.send_at - now <= POLL_AHEAD
    if campaign.status in ("sent", "cancelled") and _processed(campaign) < campaign.counts.queued:
        return campaign.finished_at is None or now - campaign.finished_at < POLL_AFTER
    return False


def _percent(bps: int | None, locale: str) -> str:
    if bps is None:
        return "—"
    return str(numbers.format_decimal(Decimal(bps).scaleb(-2), format="#,##0.##", locale=locale)) + "\u00a0%"


def _points(bps: int | None, locale: str) -> str:
    if bps is None:
        return "—"
    sign = "+" if bps > 0 else ""
    return sign + str(numbers.format_decimal(Decimal(bps).scaleb(-2), format="#,##0.##", locale=locale))


def _live(req: PageRequest, tenant: Any, campaign: Campaign) -> dict[str, Any]:
    """The live block's context: progress, and once nothing more is coming, the results with their charts."""
    active = _active(campaign)
    counts = campaign.counts
    queued = counts.queued
    processed = _processed(campaign)
    share = min(100, processed * 100 // queued) if queued else (100 if campaign.status == "sent" else 0)
    results = None
    if not active and campaign.started_at is not None:
        results = campaign_results.results(tenant.tenant_id, campaign.id)
    return {"tenant": tenant, "campaign": campaign, "active": active, "processed": processed, "share": share,
            "results": results, "view": _results_view(req, tenant, results) if results else None,
            "status_labels": STATUS_LABELS, "reason_labels": REASON_LABELS,
            "self_url": f"/console/campaigns/{quote(campaign.id, safe='')}"}


def _results_view(req: PageRequest, tenant: Any, results: CampaignResults) -> dict[str, Any]:
    """The results' table rows and charts, formatted in the person's language."""
    locale, currency = req.locale, tenant.currency
    target, control = results.target, results.control

    def cash(value: int | None) -> str:
        return "—" if value is None else money(value, currency, locale)

    def whole(value: int) -> str:
        return str(numbers.format_decimal(value, locale=locale))

    rows = [
        (gettext(locale, "Members"), whole(target.members), whole(control.members)),
        (gettext(locale, "Buyers"), whole(target.buyers), whole(control.buyers)),
        (gettext(locale, "Purchases in the window"), whole(target.receipts), whole(control.receipts)),
        (gettext(locale, "Conversion"), _percent(target.conversion_bps, locale),
         _percent(control.conversion_bps, locale)),
        (gettext(locale, "Revenue (net of refunds)"), cash(target.revenue), cash(control.revenue)),
        (gettext(locale, "Refunded"), cash(target.refunded), cash(control.refunded)),
        (gettext(locale, "Revenue per member"), cash(target.revenue_per_member), cash(control.revenue_per_member)),
    ]
    labels = [gettext(locale, "Recipients"), gettext(locale, "Control group")]
    conversion_chart = charts.bar_chart(
        "campaign-conversion", gettext(locale, "Conversion: recipients and control group"),
        gettext(locale, "Share of members who bought in the attribution window; the same numbers are in the "
                        "table below."),
        labels, charts.Series(gettext(locale, "Conversion"),
                              [target.conversion_bps or 0, control.conversion_bps or 0]),
        fmt=lambda v: _percent(v, locale))
    revenue_chart = charts.bar_chart(
        "campaign-revenue", gettext(locale, "Revenue per member: recipients and control group"),
        gettext(locale, "Net revenue per member in the attribution window; the same numbers are in the table "
                        "below."),
        labels, charts.Series(gettext(locale, "Revenue per member"),
                              [target.revenue_per_member or 0, control.revenue_per_member or 0]),
        fmt=lambda v: money(v, currency, locale))
    return {"rows": rows, "conversion_chart": conversion_chart, "revenue_chart": revenue_chart,
            "uplift": _points(results.conversion_uplift_bps, locale),
            "incremental": cash(results.incremental_revenue),
            "has_control": control.members > 0}


def _campaign(req: PageRequest, tenant: Any, campaign: Campaign, notice: str | None, alert: str | None,
              status: int) -> Response:
    try:
        segment_name: str | None = segments.get(tenant.tenant_id, campaign.segment_id).name
    except ApiError:
        segment_name = None
    try:
        template_name: str | None = templates.get(tenant.tenant_id, campaign.template_id).name
    except ApiError:
        template_name = None
    return req.render("campaigns/campaign.html", status, notice_text=notice, error=alert,
                      segment_name=segment_name, template_name=template_name, channel_labels=CHANNEL_LABELS,
                      holdout=_percent(campaign.holdout_bps, req.locale),
                      cancellable=campaign.status in ("scheduled", "sending"), **_live(req, tenant, campaign))
