"""Questionnaires: the tenant's surveys, a builder for every question type, the public link and its QR code, results.

The same service and models as the API's `/v1/surveys` routes: the form is
parsed into `SurveyCreate` / `SurveyDefinition`, saved by `surveys.create` /
`surveys.replace`, and the results are `surveys.results` (aggregates only),
so validation, rules and audit are the API's. The builder works without
JavaScript: every question is a numbered group of inputs (`q-0-type`,
`q-0-text`, options one per line), and the buttons "add", "up", "down" and
"remove" post the whole form, which comes back with every value kept and the
questions rearranged. An error of the model or of the service (`questions.2.options`,
`questions[2].type`, `reward.program_id`) is shown at the input it names.
Every page acts in the signed-in person's own tenant: another tenant's survey
id is the API's 404.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from chalice.app import Response
from markupsafe import Markup
from pydantic import ValidationError

from chalicelib.console import charts
from chalicelib.console.pages import PageRequest, PageRouter, gettext, listed, redirect
from chalicelib.domain.roles import Role
from chalicelib.errors import ApiError, not_found
from chalicelib.lazy import lazy_module
from chalicelib.schemas.customers import ConsentKind
from chalicelib.schemas.surveys import (
    MAX_QUESTIONS,
    ProfileField,
    QuestionType,
    SurveyCreate,
    SurveyDefinition,
    SurveyKind,
    SurveyStatus,
)
from chalicelib.schemas.tenancy import ProgramStatus, Tenant
from chalicelib.settings import settings

if TYPE_CHECKING:
    from chalicelib.services.customers import surveys
    from chalicelib.services.program import coupons
    from chalicelib.services.tenancy import listings, tenancy
else:
    surveys = lazy_module("chalicelib.services.customers.surveys")
    coupons = lazy_module("chalicelib.services.program.coupons")
    listings = lazy_module("chalicelib.services.tenancy.listings")
    tenancy = lazy_module("chalicelib.services.tenancy.tenancy")

router = PageRouter("surveys")
ADMIN = frozenset({Role.TENANT_ADMIN})
"""As the API's /v1/surveys routes."""
router.section("/console/surveys", "Questionnaires", roles=ADMIN, order=55)
PAGE = 50
LIST_MAX = 300
QUESTION_FIELDS = ("id", "type", "text", "required", "options", "maps_to", "scale", "max_length", "consent_kind",
                   "consent_text_version")
SURVEY_FIELDS = ("id", "title", "description", "kind", "status", "reward_kind", "reward_program_id",
                 "reward_points", "reward_campaign_id", "starts_at", "ends_at", "rate_limit_per_hour", "verify_phone")
TYPES = tuple(t.value for t in QuestionType)
MAPPINGS = tuple(f.value for f in ProfileField)
CONSENT_KINDS = tuple(k.value for k in ConsentKind)
REWARD_KINDS = ("none", "card", "points", "coupon")
KINDS = tuple(k.value for k in SurveyKind)
STATUSES = tuple(s.value for s in SurveyStatus)
QUESTION_ERRORS = (("options", "options"), ("max_length", "max_length"), ("scale", "scale"),
                   ("consent", "consent_kind"), ("cannot fill", "maps_to"))
"""A question's own rule, at the input its message names (else at its wording)."""
SURVEY_ERRORS = (("question ids", "questions"), ("profile field", "questions"), ("consent question", "questions"),
                 ("registration survey", "kind"), ("time zone", "starts_at"), ("ends_at", "ends_at"),
                 ("verify_phone", "verify_phone"))
"""A rule between fields of the whole survey, at the input it names."""
ACTION = re.compile(r"^(up|down|remove):(\d{1,3})$")
TRANSLIT = dict(zip("абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
                    ["a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "y", "k", "l", "m", "n", "o", "p", "r", "s",
                     "t", "u", "f", "h", "ts", "ch", "sh", "sch", "", "y", "", "e", "yu", "ya"], strict=True))


@router.page("GET", "/console/surveys", roles=ADMIN)
def survey_list(req: PageRequest) -> Response:
    tenant = _tenant(req)
    cursor = req.query.get("cursor")
    items, next_cursor = surveys.list_all(tenant.tenant_id, PAGE, cursor[:2048] if cursor else None)
    return req.render("surveys/list.html", tenant=tenant, items=items, cursor=next_cursor)


@router.page("GET", "/console/surveys/new", roles=ADMIN)
def new_survey(req: PageRequest) -> Response:
    values: dict[str, Any] = {"kind": "feedback", "status": "draft", "reward_kind": "none", "verify_phone": "on",
                              "rate_limit_per_hour": "20", "questions": [_blank([])]}
    return _builder(req, _tenant(req), None, values, {})


@router.page("POST", "/console/surveys", roles=ADMIN)
def create_survey(req: PageRequest) -> Response:
    tenant = _tenant(req)
    values = _typed(req.form)
    if _rearranged(req.form.get("action", ""), values):
        return _builder(req, tenant, None, values, {})
    if not values["id"].strip():
        values["id"] = _slug(values["title"])
    parsed, errors = _parse(SurveyCreate, _model_data(values, tenant, with_id=True), values)
    if parsed is None:
        return _builder(req, tenant, None, values, errors, status=400)
    try:
        _, made = surveys.create(tenant.tenant_id, parsed, req.actor)
    except ApiError as err:
        return _builder(req, tenant, None, values, _api_errors(req, err, values), status=err.status)
    return redirect(f"/console/surveys/{made.id}?done=saved")


@router.page("GET", "/console/surveys/{survey_id}", roles=ADMIN)
def survey(req: PageRequest) -> Response:
    tenant = _tenant(req)
    current = surveys.get(tenant.tenant_id, req.path["survey_id"])
    notice = {"saved": gettext(req.locale, "The questionnaire is saved.")}.get(req.query.get("done", ""))
    return _builder(req, tenant, current, _values_of(current, tenant), {}, notice=notice)


@router.page("POST", "/console/surveys/{survey_id}", roles=ADMIN)
def save_survey(req: PageRequest) -> Response:
    tenant = _tenant(req)
    current = surveys.get(tenant.tenant_id, req.path["survey_id"])  # another tenant's id: 404 before anything else
    values = _typed(req.form)
    values["id"] = current.id
    if _rearranged(req.form.get("action", ""), values):
        return _builder(req, tenant, current, values, {})
    parsed, errors = _parse(SurveyDefinition, _model_data(values, tenant, with_id=False), values)
    if parsed is None:
        return _builder(req, tenant, current, values, errors, status=400)
    try:
        saved = surveys.replace(tenant.tenant_id, current.id, parsed, req.actor)
    except ApiError as err:
        return _builder(req, tenant, current, values, _api_errors(req, err, values), status=err.status)
    return redirect(f"/console/surveys/{saved.id}?done=saved")


@router.page("GET", "/console/surveys/{survey_id}/qr", roles=ADMIN)
def qr_poster(req: PageRequest) -> Response:
    """A printable page: the questionnaire's title, its QR code and its link (the print stylesheet keeps only these)."""
    tenant = _tenant(req)
    current = surveys.get(tenant.tenant_id, req.path["survey_id"])
    link = public_link(tenant.tenant_id, current.id)
    return req.render("surveys/qr.html", tenant=tenant, current=current, link=link,
                      qr=qr_svg(link, gettext(req.locale, "QR code of the questionnaire's link"), scale=8))


@router.page("GET", "/console/surveys/{survey_id}/results", roles=ADMIN)
def results(req: PageRequest) -> Response:
    tenant = _tenant(req)
    current = surveys.get(tenant.tenant_id, req.path["survey_id"])
    summary = surveys.results(tenant.tenant_id, current.id)
    cursor = req.query.get("cursor")
    log, more = surveys.response_log(tenant.tenant_id, current.id, PAGE, cursor[:2048] if cursor else None)
    rows = [_result_row(req, q, index) for index, q in enumerate(summary.questions)]
    return req.render("surveys/results.html", tenant=tenant, current=current, summary=summary, rows=rows, log=log,
                      cursor=more)


# --- the public link ----------------------------------------------------------------------------------------------

def public_link(tenant_id: str, survey_id: str) -> str:
    """The hosted questionnaire's address (absolute where the stage knows its origin: the QR code needs it)."""
    return f"{settings.console_base_url}/s/{tenant_id}/{survey_id}"


def qr_svg(link: str, title: str, scale: int = 4) -> Markup:
    """The link as a QR code in inline SVG: classes and attributes only (the CSP refuses style attributes)."""
    import segno

    svg = segno.make(link, error="m").svg_inline(scale=scale, omitsize=True, svgclass="sv-qr-code",
                                                 lineclass="sv-qr-line", title=title, border=4)
    return Markup(svg.replace("<svg ", '<svg role="img" focusable="false" ', 1))  # noqa: S704 - segno escapes the title


# --- helpers ------------------------------------------------------------------------------------------------------

def _tenant(req: PageRequest) -> Tenant:
    tenant_id = req.person.tenant_id
    if tenant_id is None:
        raise not_found("Tenant")
    return tenancy.require_tenant(tenant_id)


def _builder(req: PageRequest, tenant: Tenant, current: Any, values: dict[str, Any], errors: dict[str, str], *,
             status: int | None = None, notice: str | None = None) -> Response:
    if status is None:
        status = 400 if errors else 200
    link = public_link(tenant.tenant_id, current.id) if current else None
    qr = qr_svg(link, gettext(req.locale, "QR code of the questionnaire's link")) if link else None
    return req.render("surveys/builder.html", status, tenant=tenant, current=current, values=values, errors=errors,
                      notice_text=notice, types=TYPES, mappings=MAPPINGS, consent_kinds=CONSENT_KINDS,
                      reward_kinds=REWARD_KINDS, kinds=KINDS, statuses=STATUSES, link=link, qr=qr,
                      programs=_programs(tenant.tenant_id), campaigns=_campaigns(tenant.tenant_id),
                      max_questions=MAX_QUESTIONS)


def _programs(tenant_id: str) -> list[tuple[str, str]]:
    found = listed(listings.programs, tenant_id, LIST_MAX)
    return [(p.id, f"{p.name} ({p.id})") for p in found if p.status is not ProgramStatus.ARCHIVED]


def _campaigns(tenant_id: str) -> list[tuple[str, str]]:
    return [(c.id, f"{c.name} ({c.id})") for c in listed(coupons.list_all, tenant_id, LIST_MAX)]


def _typed(form: Mapping[str, str]) -> dict[str, Any]:
    """What the person typed, survey fields and the numbered questions in their order (kept as typed)."""
    values: dict[str, Any] = {name: form.get(name, "")[:4000] for name in SURVEY_FIELDS}
    indexes = sorted({int(m.group(1)) for key in form if (m := re.match(r"^q-(\d{1,3})-", key))})
    values["questions"] = [{name: form.get(f"q-{i}-{name}", "")[:4000] for name in QUESTION_FIELDS}
                           for i in indexes[:MAX_QUESTIONS + 1]]
    return values


def _rearranged(action: str, values: dict[str, Any]) -> bool:
    """Apply a builder button (add, up:i, down:i, remove:i); False for save (or anything else)."""
    questions: list[dict[str, str]] = values["questions"]
    if action == "add":
        if len(questions) < MAX_QUESTIONS:
            questions.append(_blank(questions))
        return True
    found = ACTION.match(action)
    if not found:
        return False
    move, index = found.group(1), int(found.group(2))
    if not 0 <= index < len(questions):
        return True
    if move == "remove":
        questions.pop(index)
    else:
        other = index - 1 if move == "up" else index + 1
        if 0 <= other < len(questions):
            questions[index], questions[other] = questions[other], questions[index]
    return True


def _blank(questions: Sequence[Mapping[str, str]]) -> dict[str, str]:
    taken = {q.get("id", "") for q in questions}
    number = next(n for n in range(1, MAX_QUESTIONS + 2) if f"q{n}" not in taken)
    return {**dict.fromkeys(QUESTION_FIELDS, ""), "id": f"q{number}", "type": "text"}


def _slug(text: str) -> str:
    """A slug from a title or label: lower case, Cyrillic transliterated, other characters as hyphens."""
    lowered = "".join(TRANSLIT.get(ch, ch) for ch in text.lower())
    return re.sub(r"[^a-z0-9]+", "-", lowered).strip("-")[:40].strip("-")


def _options(text: str) -> list[dict[str, str]]:
    """Options one per line: `id | Label`, or just `Label` (its id made from it, unique within the question)."""
    out: list[dict[str, str]] = []
    taken: set[str] = set()
    for line in text.splitlines():
        if not line.strip():
            continue
        given, bar, label = line.partition("|")
        option_id, label = (given.strip(), label.strip()) if bar else ("", line.strip())
        if not option_id:
            base = _slug(label) or f"o{len(out) + 1}"
            option_id, n = base, 2
            while option_id in taken:
                option_id, n = f"{base[:36]}-{n}", n + 1
        taken.add(option_id)
        out.append({"id": option_id, "label": label})
    return out


def _question_data(q: Mapping[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {"id": q.get("id", "").strip(), "type": q.get("type", "").strip(),
                            "label": q.get("text", "").strip(), "required": bool(q.get("required"))}
    options = _options(q.get("options", ""))
    if options:
        data["options"] = options
    for name in ("maps_to", "scale", "max_length", "consent_kind", "consent_text_version"):
        text = q.get(name, "").strip()
        if text:
            data[name] = text
    return data


def _moment(text: str, timezone: str) -> Any:
    """A datetime-local value in the tenant's zone as an aware moment; anything else as typed (the model says why)."""
    text = text.strip()
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(timezone)).isoformat()
    except ValueError:
        return text


def _model_data(values: Mapping[str, Any], tenant: Tenant, *, with_id: bool) -> dict[str, Any]:
    kind = values.get("reward_kind") or "none"
    reward: dict[str, Any] = {"kind": kind}
    if kind in ("card", "points"):
        reward["program_id"] = values.get("reward_program_id", "").strip() or None
    if kind == "points":
        reward["points"] = values.get("reward_points", "").strip().replace(" ", "") or None
    if kind == "coupon":
        reward["campaign_id"] = values.get("reward_campaign_id", "").strip() or None
    data: dict[str, Any] = {
        "title": values.get("title", "").strip(), "kind": values.get("kind", ""), "status": values.get("status", ""),
        "questions": [_question_data(q) for q in values["questions"]], "reward": reward,
        "verify_phone": bool(values.get("verify_phone")),
        "rate_limit_per_hour": values.get("rate_limit_per_hour", "").strip() or 20,
    }
    if with_id:
        data["id"] = values.get("id", "").strip()
    if values.get("description", "").strip():
        data["description"] = values["description"].strip()
    for name in ("starts_at", "ends_at"):
        moment = _moment(values.get(name, ""), tenant.timezone)
        if moment is not None:
            data[name] = moment
    return data


def _parse(model: Any, data: Mapping[str, Any], values: Mapping[str, Any]) -> tuple[Any, dict[str, str]]:
    """The form as the API's own model, or the model's errors at their inputs (the first one each)."""
    try:
        return model.model_validate(data, strict=False), {}
    except ValidationError as err:
        errors: dict[str, str] = {}
        for item in err.errors(include_url=False):
            message = str(item["msg"]).removeprefix("Value error, ")
            errors.setdefault(_field_of([str(p) for p in item["loc"]], message, values), message)
        return None, errors


def _field_of(loc: list[str], message: str, values: Mapping[str, Any]) -> str:
    """The form's input for a model path: `questions.2.options.1.label` -> `q-2-options`, `reward.points.points`
    -> `reward_points`; a whole-question or whole-survey rule at the input its message names."""
    if not loc:
        return next((name for text, name in SURVEY_ERRORS if text in message), "form")
    head = loc[0]
    if head == "questions" and len(loc) >= 2 and loc[1].isdigit():
        index = int(loc[1])
        if index >= len(values["questions"]):
            return "questions"
        name = loc[2] if len(loc) > 2 else next((f for text, f in QUESTION_ERRORS if text in message), "text")
        name = {"label": "text"}.get(name, name)
        return f"q-{index}-{name}" if name in QUESTION_FIELDS else f"q-{index}-text"
    if head == "reward":
        tail = loc[-1]
        return f"reward_{tail}" if f"reward_{tail}" in SURVEY_FIELDS else "reward_kind"
    if head in SURVEY_FIELDS:
        return head
    return "questions" if head == "questions" else "form"


def _api_errors(req: PageRequest, err: ApiError, values: Mapping[str, Any]) -> dict[str, str]:
    """A refusal of the service above the form, and each detail at the input it names (`questions[2].type`)."""
    message = gettext(req.locale, err.message)
    errors: dict[str, str] = {"form": message}
    for detail in err.details or []:
        path = [p for p in re.split(r"[.\[\]]+", detail.field) if p]
        name = _field_of(path, detail.issue, values)
        if name != "form":
            errors.setdefault(name, gettext(req.locale, detail.issue) if detail.issue else message)
    return errors


def _local(moment: datetime | None, timezone: str) -> str:
    return moment.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%dT%H:%M") if moment else ""


def _values_of(current: Any, tenant: Tenant) -> dict[str, Any]:
    """A saved survey as the form's values (options as `id | Label`, so their ids stay)."""
    reward = current.reward or {}
    values: dict[str, Any] = {
        "id": current.id, "title": current.title, "description": current.description or "",
        "kind": current.kind.value, "status": current.status.value, "reward_kind": reward.get("kind", "none"),
        "reward_program_id": reward.get("program_id") or "", "reward_points": str(reward.get("points") or ""),
        "reward_campaign_id": reward.get("campaign_id") or "",
        "starts_at": _local(current.starts_at, tenant.timezone), "ends_at": _local(current.ends_at, tenant.timezone),
        "rate_limit_per_hour": str(current.rate_limit_per_hour), "verify_phone": "on" if current.verify_phone else "",
    }
    questions = []
    for q in current.questions:
        questions.append({
            "id": q["id"], "type": q["type"], "text": q["label"], "required": "on" if q.get("required") else "",
            "options": "\n".join(f"{o['id']} | {o['label']}" for o in q.get("options") or []),
            "maps_to": q.get("maps_to") or "", "scale": str(q.get("scale") or ""),
            "max_length": str(q.get("max_length") or ""), "consent_kind": q.get("consent_kind") or "",
            "consent_text_version": q.get("consent_text_version") or ""})
    values["questions"] = questions
    return values


def _result_row(req: PageRequest, q: Any, index: int) -> dict[str, Any]:
    """One question's results: its chart (inline SVG) and the numbers for the table beside it."""
    row: dict[str, Any] = {"q": q, "chart": None, "table": []}
    title = q.label
    if q.options is not None:
        labels, values = [o.label for o in q.options], [o.count for o in q.options]
        row["table"] = [(o.label, o.count, _share(o.count, q.answered)) for o in q.options]
        row["chart"] = charts.hbar_chart(f"sv-q{index}", title, gettext(req.locale, "Answers per option"),
                                         labels, values)
    elif q.distribution is not None:
        labels = list(q.distribution)
        values = [q.distribution[v] for v in labels]
        row["table"] = [(v, n, _share(n, q.answered)) for v, n in zip(labels, values, strict=True)]
        row["chart"] = charts.bar_chart(f"sv-q{index}", title, gettext(req.locale, "Answers per value"), labels,
                                        charts.Series(gettext(req.locale, "Answers"), values))
    return row


def _share(count: int, total: int) -> str:
    """A share in whole percent (rounded half up), exact integer arithmetic."""
    return f"{(200 * count + total) // (2 * total)} %" if total else "—"
