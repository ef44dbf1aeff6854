"""The hosted questionnaire: a member-facing page per open survey (`/s/{tenant}/{survey}`), no staff session.

It works without JavaScript, in steps that all post to the same address:

1. the questions (`a-<question id>`, a box per option `a-<question id>-<option id>`), checked by the
   service's own rules (`surveys.check_answers`, what `respond` would say) with errors at their questions;
2. the phone: a code by SMS through the phone verification service (`verification.start`: the same limits
   and the same answer for a known and an unknown phone); a phone question's answer is used directly;
3. the code (`verification.check`), then the answers go to `surveys.respond` with the proof, exactly as
   the API's public route takes them (reward once per customer, abuse limits, profile filled);
4. a thank-you page naming the reward.

The answers travel between the steps in hidden fields (escaped like any text), so a wrong code, an expired
form or a refused answer never loses them. A survey without phone verification (anonymous answers) goes from
step 1 straight to `respond`; an invitation link (`?invitation=`) identifies the customer instead of a phone.
Every form carries a short-lived signed token bound to the tenant and the survey (`surveys.form_token`),
besides the Origin check every page post gets; nothing here reads or writes anything but through services.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from chalice.app import Response
from pydantic import ValidationError

from chalicelib.console.pages import PUBLIC, PageRequest, PageRouter, gettext
from chalicelib.errors import ApiError
from chalicelib.lazy import lazy_module
from chalicelib.schemas.surveys import PublicSurvey, QuestionType, ResponseAccepted, ResponseIn
from chalicelib.schemas.verification import VerificationCheck, VerificationStart

if TYPE_CHECKING:
    from chalicelib.services.customers import surveys, verification
    from chalicelib.services.tenancy import tenancy
else:
    surveys = lazy_module("chalicelib.services.customers.surveys")
    verification = lazy_module("chalicelib.services.customers.verification")
    tenancy = lazy_module("chalicelib.services.tenancy.tenancy")

router = PageRouter("public_surveys")
PATH = "/s/{tenant_id}/{survey_id}"
TRIES_LEFT = re.compile(r"(\d+) tries left")
ISSUES = {
    "an answer is required": "An answer is required.",
    "must be one of the option ids": "Choose one of the options.",
    "must be a non-empty list of option ids": "Choose at least one option.",
    "must be a date YYYY-MM-DD": "Enter a date.",
    "a birth date is between 1900-01-01 and today": "A birth date is between 1900 and today.",
    "must be a phone number": "Enter a phone number.",
    "must be an e-mail address": "Enter an e-mail address.",
    "must be accepted": "Tick the box to go on.",
    "must be true or false": "Tick the box or leave it empty.",
    "This is not the phone that was verified.": "This is not the phone that was verified.",
}
"""The service's issues with an answer, in words for a customer (the catalogue has them in Russian)."""
SURVEY_UNAVAILABLE = {
    404: "This questionnaire does not exist or is not open.",
    409: "This questionnaire is not open for answers now.",
}


@router.page("GET", PATH, roles=PUBLIC)
def questionnaire(req: PageRequest) -> Response:
    found = _survey(req)
    if isinstance(found, Response):
        return found
    form, brand = found
    invitation = req.query.get("invitation", "")[:600]
    return _questions(req, form, brand, {}, {}, invitation=invitation)


@router.page("POST", PATH, roles=PUBLIC)
def answer(req: PageRequest) -> Response:
    found = _survey(req)
    if isinstance(found, Response):
        return found
    form, brand = found
    typed = _typed(form, req.form)
    invitation = req.form.get("invitation", "")[:600]
    if not surveys.form_token_valid(form.tenant_id, form.survey_id, req.form.get("form_token")):
        return _questions(req, form, brand, typed, {}, invitation=invitation, status=400,
                          alert=gettext(req.locale, "This form has expired. Your answers are kept: check them and "
                                                    "send them again."))
    action = req.form.get("action", "answers")
    if action == "edit":
        return _questions(req, form, brand, typed, {}, invitation=invitation)
    answers, errors = _answers(req, form, typed)
    if errors:
        return _questions(req, form, brand, typed, errors, invitation=invitation, status=400)
    if action == "answers":
        return _checked(req, form, brand, typed, answers, invitation)
    if action in ("send", "resend"):
        return _send_code(req, form, brand, typed, req.form.get("phone", "").strip()[:40])
    if action == "confirm":
        return _confirm(req, form, brand, typed, answers)
    return _questions(req, form, brand, typed, {}, invitation=invitation)


# --- the steps ----------------------------------------------------------------------------------------------------

def _checked(req: PageRequest, form: PublicSurvey, brand: str, typed: dict[str, str], answers: dict[str, Any],
             invitation: str) -> Response:
    """Step 1 done: the service's check, then the answers go (anonymous, invited) or the phone step comes."""
    try:
        surveys.check_answers(form.tenant_id, form.survey_id, answers)
    except ApiError as err:
        return _refused_answers(req, form, brand, typed, err, invitation)
    if invitation or not form.verify_phone:
        body = ResponseIn.model_validate({"answers": answers, "invitation": invitation or None}, strict=False)
        return _respond(req, form, brand, typed, body, invitation)
    phone = next((str(answers[q.id]) for q in form.questions if q.type is QuestionType.PHONE and q.id in answers),
                 None)
    if phone:
        return _send_code(req, form, brand, typed, phone)
    return _step(req, form, brand, "public/phone.html", typed, {}, phone="")


def _send_code(req: PageRequest, form: PublicSurvey, brand: str, typed: dict[str, str], phone: str) -> Response:
    """A code by SMS to the phone (the verification service's limits); errors at the phone field."""
    try:
        body = VerificationStart.model_validate({"phone": phone, "language": req.locale}, strict=False)
    except ValidationError:
        return _step(req, form, brand, "public/phone.html", typed,
                     {"phone": gettext(req.locale, "Enter a mobile phone number, e.g. +7 916 123-45-67.")},
                     phone=phone, status=400)
    try:
        _, started = verification.start(form.tenant_id, body, req.source_ip)
    except ApiError as err:
        return _step(req, form, brand, "public/phone.html", typed, {"phone": _said(req, err)}, phone=phone,
                     status=err.status)
    return _step(req, form, brand, "public/code.html", typed, {}, phone=body.phone,
                 verification_id=started.verification_id)


def _confirm(req: PageRequest, form: PublicSurvey, brand: str, typed: dict[str, str],
             answers: dict[str, Any]) -> Response:
    """The code checked, then the answers sent with the proof; a refusal comes back at its field, answers kept."""
    phone, verification_id = req.form.get("phone", "")[:40], req.form.get("verification_id", "")[:60]
    again: dict[str, Any] = {"phone": phone, "verification_id": verification_id}
    try:
        body = VerificationCheck.model_validate({"phone": phone, "code": req.form.get("code", "").strip()},
                                                strict=False)
    except ValidationError:
        return _step(req, form, brand, "public/code.html", typed,
                     {"code": gettext(req.locale, "Enter the 6 digits of the code.")}, status=400, **again)
    try:
        proven = verification.check(form.tenant_id, verification_id, body)
    except ApiError as err:
        return _step(req, form, brand, "public/code.html", typed, {"code": _code_said(req, err)},
                     status=err.status, **again)
    response = ResponseIn.model_validate({"answers": answers, "phone_verification": proven.proof}, strict=False)
    return _respond(req, form, brand, typed, response, "", again)


def _respond(req: PageRequest, form: PublicSurvey, brand: str, typed: dict[str, str], body: ResponseIn,
             invitation: str, code_step: dict[str, Any] | None = None) -> Response:
    try:
        _, accepted = surveys.respond(form.tenant_id, form.survey_id, body, req.source_ip)
    except ApiError as err:
        if err.status == 422 and any(d.field.startswith("answers") for d in err.details or []):
            return _refused_answers(req, form, brand, typed, err, invitation)
        if code_step is not None and err.status != 429:
            return _step(req, form, brand, "public/code.html", typed, {"code": _said(req, err)},
                         status=err.status, **code_step)
        return _questions(req, form, brand, typed, {}, invitation=invitation, status=err.status,
                          alert=_said(req, err))
    return _render(req, form, brand, "public/thanks.html", 201, reward=_reward_words(req, accepted))


# --- helpers ------------------------------------------------------------------------------------------------------

def _survey(req: PageRequest) -> tuple[PublicSurvey, str] | Response:
    """The open survey's public form and the tenant's name, or the page that says it cannot be answered."""
    tenant_id, survey_id = req.path["tenant_id"], req.path["survey_id"]
    try:
        form = surveys.public(tenant_id, survey_id)
    except ApiError as err:
        status = err.status if err.status in SURVEY_UNAVAILABLE else 404
        message = gettext(req.locale, SURVEY_UNAVAILABLE[status])
        return req.render("public/unavailable.html", status, brand=None, message=message, self_url=None)
    return form, tenancy.require_tenant(tenant_id).name


def _render(req: PageRequest, form: PublicSurvey, brand: str, template: str, status: int = 200,
            **context: Any) -> Response:
    self_url = f"/s/{quote(form.tenant_id)}/{quote(form.survey_id)}"
    return req.render(template, status, brand=brand, survey=form, self_url=self_url, offer=_offer(req, form.reward),
                      action=f"{self_url}?lang={req.locale}", form_token=surveys.form_token(form.tenant_id,
                                                                                             form.survey_id),
                      **context)


def _questions(req: PageRequest, form: PublicSurvey, brand: str, typed: Mapping[str, str], errors: dict[str, str],
               *, invitation: str, status: int | None = None, alert: str | None = None) -> Response:
    if status is None:
        status = 400 if errors else 200
    return _render(req, form, brand, "public/survey.html", status, typed=typed, errors=errors,
                   invitation=invitation, alert_text=alert)


def _step(req: PageRequest, form: PublicSurvey, brand: str, template: str, typed: Mapping[str, str],
          errors: dict[str, str], *, status: int | None = None, **context: Any) -> Response:
    if status is None:
        status = 400 if errors else 200
    return _render(req, form, brand, template, status, typed=typed, errors=errors, **context)


def _typed(form: PublicSurvey, posted: Mapping[str, str]) -> dict[str, str]:
    """The answers as typed, by input name (only this survey's inputs), to show them again or keep them hidden."""
    typed: dict[str, str] = {}
    for q in form.questions:
        if q.type is QuestionType.MULTIPLE_CHOICE:
            for option in q.options:
                name = f"a-{q.id}-{option['id']}"
                if posted.get(name):
                    typed[name] = "on"
        elif posted.get(f"a-{q.id}"):
            typed[f"a-{q.id}"] = posted[f"a-{q.id}"][:2100]
    return typed


def _answers(req: PageRequest, form: PublicSurvey, typed: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The typed answers as the API's `ResponseIn.answers` values (option ids, numbers, true/false, text)."""
    answers: dict[str, Any] = {}
    for q in form.questions:
        raw = typed.get(f"a-{q.id}", "")
        if q.type is QuestionType.MULTIPLE_CHOICE:
            chosen = [o["id"] for o in q.options if typed.get(f"a-{q.id}-{o['id']}")]
            if chosen:
                answers[q.id] = chosen
        elif q.type is QuestionType.CONSENT:
            answers[q.id] = bool(raw)
        elif q.type in (QuestionType.RATING, QuestionType.NPS):
            if raw.strip():
                answers[q.id] = int(raw) if raw.strip().isdigit() and len(raw.strip()) < 4 else raw.strip()
        elif raw.strip():
            answers[q.id] = raw.strip()
    try:
        ResponseIn.model_validate({"answers": answers}, strict=False)
    except ValidationError as err:
        errors: dict[str, str] = {}
        for item in err.errors(include_url=False):
            loc = [str(p) for p in item["loc"]]
            qid = loc[1] if len(loc) > 1 and loc[0] == "answers" else None
            if qid:
                errors.setdefault(f"a-{qid}", gettext(req.locale, "This answer is too long."))
        return answers, errors or {"form": gettext(req.locale, "The answers are invalid.")}
    return answers, {}


def _refused_answers(req: PageRequest, form: PublicSurvey, brand: str, typed: Mapping[str, str], err: ApiError,
                     invitation: str) -> Response:
    """The service's refusal of answers, at their questions (`answers.<id>`), everything typed kept."""
    errors: dict[str, str] = {}
    for detail in err.details or []:
        qid = detail.field.removeprefix("answers.") if detail.field.startswith("answers.") else None
        if qid:
            errors.setdefault(f"a-{qid}", _issue(req, detail.issue))
    alert = None if errors else _said(req, err)
    return _questions(req, form, brand, typed, errors, invitation=invitation, status=err.status, alert=alert)


def _issue(req: PageRequest, issue: str) -> str:
    known = ISSUES.get(issue)
    if known:
        return gettext(req.locale, known)
    if issue.startswith("at most") and "characters" in issue:
        return gettext(req.locale, "This answer is too long.")
    if issue.startswith("must be a whole number"):
        return gettext(req.locale, "Choose one of the values.")
    return gettext(req.locale, "This answer is not valid.")


def _said(req: PageRequest, err: ApiError) -> str:
    """The service's refusal in the customer's language (its English message when the catalogue lacks it)."""
    return gettext(req.locale, err.message)


def _code_said(req: PageRequest, err: ApiError) -> str:
    if err.code == "wrong_code":
        left = next((TRIES_LEFT.search(d.issue) for d in err.details or [] if TRIES_LEFT.search(d.issue)), None)
        if left:
            return gettext(req.locale, "The code is not right; %(n)s tries left.") % {"n": left.group(1)}
        return gettext(req.locale, "The code is not right and no tries are left: ask for a new code.")
    return _said(req, err)


def _offer(req: PageRequest, reward: str | None) -> str | None:
    """The reward a survey offers (the service's words: a card, N bonus points, a coupon) in the person's language."""
    if not reward:
        return None
    points = re.fullmatch(r"(\d+) bonus points", reward)
    if points:
        return gettext(req.locale, "%(n)s bonus points") % {"n": points.group(1)}
    return gettext(req.locale, reward)


def _reward_words(req: PageRequest, accepted: ResponseAccepted) -> str | None:
    reward = accepted.reward
    if reward.granted and reward.kind == "points":
        return gettext(req.locale, "%(points)s points are on your card %(card)s.") % {
            "points": reward.points, "card": reward.card_number}
    if reward.granted and reward.kind == "card":
        return gettext(req.locale, "Your loyalty card is issued: number %(card)s.") % {"card": reward.card_number}
    if reward.granted and reward.kind == "coupon":
        return gettext(req.locale, "Your coupon code: %(code)s.") % {"code": reward.coupon_code}
    if reward.reason == "already_rewarded":
        return gettext(req.locale, "You have already received the reward for this questionnaire: it is given once "
                                   "per customer. Your new answers are saved.")
    if reward.reason == "reward_pending":
        return gettext(req.locale, "Your reward is on its way: it will be on your card shortly.")
    if reward.reason == "reward_unavailable":
        return gettext(req.locale, "The reward cannot be given just now. Your answers are saved.")
    return None
