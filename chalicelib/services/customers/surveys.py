"""Surveys: definitions (tenant admin), the public form and its responses, rewards, results, invitations.

A public response is processed in this order, each step safe to repeat:

1. the per-address rate limit is counted (a fixed hourly window);
2. the answers are validated: a refusal writes nothing else;
3. the customer is found by phone or created (`customers.ensure`), or taken
   from a signed post-purchase invitation;
4. personal answers go to the personal-data table (only there), then the
   summary (non-personal answers), the result counters and, for an
   invitation, its one-use marker are written in one transaction;
5. the reward: a marker `survey-reward#<sid>` in the customer's partition is
   put only if absent (one reward per customer per survey) with status
   `pending` and a short lease, then the grant runs, then the marker becomes
   `granted`. Every grant is idempotent on its own (the card of the program
   is reused if the customer has one, points go through an adjustment whose
   id is derived from survey and customer, a unique coupon is minted once per
   grant key), so a request that dies between marker and grant leaves a
   pending marker that the customer's next response completes once its lease
   has run out, without granting twice. A grant that is refused (the program
   or campaign went away) drops the pending marker again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from chalicelib import clock
from chalicelib.domain import history, links
from chalicelib.domain import surveys as rules
from chalicelib.domain.ids import is_slug, new_id
from chalicelib.domain.rate_limits import fixed_window
from chalicelib.errors import ApiError, ErrorDetail, conflict, validation_error
from chalicelib.observability import logger
from chalicelib.schemas.customers import ConsentIn, CustomerCreate
from chalicelib.schemas.pos import AdjustmentIn, CardIssue
from chalicelib.schemas.surveys import (
    CardReward,
    CouponReward,
    Invitation,
    InvitationIn,
    PointsReward,
    PublicQuestion,
    PublicSurvey,
    Question,
    ResponseAccepted,
    ResponseIn,
    RewardOut,
    Survey,
    SurveyCreate,
    SurveyDefinition,
    SurveyKind,
    SurveyResponse,
    SurveyResults,
    SurveyStatus,
)
from chalicelib.schemas.tenancy import ProgramKind, ProgramStatus, TenantStatus
from chalicelib.services.customers import customers, verification
from chalicelib.services.pos import cards
from chalicelib.services.program import catalog, coupons
from chalicelib.services.tenancy import signing
from chalicelib.storage import audit, directory, loyalty, people
from chalicelib.storage import coupons as coupon_store
from chalicelib.storage import customers as customer_records
from chalicelib.storage import surveys as store
from chalicelib.storage.documents.common import Versioned
from chalicelib.storage.documents.survey import ResponseDoc, RewardMarker, SurveyDoc, SurveyReward

INVITATION_PURPOSE = "survey"
INVITATION_DAYS = 30
REWARD_LEASE = timedelta(seconds=60)
"""How long a started reward grant is left to its request before a later response may complete it."""
WINDOW_SECONDS = 3600


@dataclass(frozen=True)
class Respondent:
    """Who stands behind a response: a customer (invitation or verified phone), or nobody in particular."""

    scope: str
    customer_id: str | None
    response_id: str
    receipt_id: str | None = None
    store_id: str | None = None
    verification_id: str | None = None
    unrewarded: str | None = None
    """Why a response from nobody in particular earns nothing: phone_not_verified or anonymous."""


def respond(tenant_id: str, survey_id: str, body: ResponseIn, source_ip: str) -> tuple[int, ResponseAccepted]:
    """Take a public response: validate, identify the respondent, record it, reward a customer once.

    Nothing unauthenticated changes a customer: only an invitation or a phone
    verified by SMS code links a response to a customer, fills their profile,
    records consent or pays a reward. Any other response is kept as answers
    only (its choices and ratings still count in the results).
    """
    at = clock.now()
    doc = _open_survey(tenant_id, survey_id, at)
    _count_hit(tenant_id, survey_id, source_ip, doc.rate_limit_per_hour, at)
    questions = _questions(doc)
    checked = rules.check_answers(questions, body.answers, at.date())
    if checked.errors:
        raise validation_error("The answers are invalid.", [ErrorDetail(f, issue) for f, issue in checked.errors])
    profile = rules.profile_of(questions, checked.answers)
    if body.invitation is not None:
        who = _invited_respondent(tenant_id, survey_id, body.invitation, profile, at)
    elif body.phone_verification is not None:
        who = _verified_respondent(tenant_id, survey_id, body.phone_verification, profile, questions)
    else:
        who = _unidentified_respondent(tenant_id, doc, questions)
    kept = checked.answers if who.customer_id is not None else rules.unidentified(questions, checked.answers)
    plain, personal = rules.split(questions, kept)
    if personal and who.customer_id is not None:
        people.add_answers(who.scope, who.customer_id, survey_id, who.response_id, personal, at)
    unrewarded = RewardOut(granted=False, reason=who.unrewarded) if who.unrewarded else None
    summary = ResponseDoc(survey_id=survey_id, response_id=who.response_id, customer_id=who.customer_id,
                          scope=who.scope, answers=plain, receipt_id=who.receipt_id, store_id=who.store_id,
                          reward=unrewarded.model_dump(mode="json") if unrewarded else None)
    shard = int(hashlib.sha256(who.response_id.encode()).hexdigest(), 16) % store.SHARDS
    if not store.record_response(tenant_id, who.scope, who.customer_id, survey_id, who.response_id, summary,
                                 rules.counter_keys(questions, kept), shard, who.receipt_id, at):
        raise _already_answered(body)
    if who.verification_id is not None:
        verification.finish(tenant_id, who.verification_id)
    reward = unrewarded or _rewarded(tenant_id, survey_id, who, doc.reward)
    from chalicelib.services.integrations import webhooks

    webhooks.survey_completed(tenant_id, summary, reward)
    return 201, ResponseAccepted(response_id=who.response_id, verified=who.customer_id is not None, reward=reward,
                                 message="Thank you for your answers.")


def public(tenant_id: str, survey_id: str) -> PublicSurvey:
    """The public form of an open survey: questions without their mapping, the reward in words."""
    doc = _open_survey(tenant_id, survey_id, clock.now())
    questions = [PublicQuestion(id=q.id, type=q.type, label=q.label, required=q.required,
                                options=[{"id": o.id, "label": o.label} for o in q.options],
                                max_length=(q.max_length or rules.DEFAULT_TEXT_LENGTH) if q.type == "text" else None,
                                scale=(q.scale or rules.DEFAULT_SCALE) if q.type == "rating" else None,
                                consent_kind=q.consent_kind, consent_text_version=q.consent_text_version)
                 for q in _questions(doc)]
    return PublicSurvey(tenant_id=tenant_id, survey_id=survey_id, title=doc.title,
                        description=doc.description, kind=doc.kind, questions=questions,
                        reward=rules.reward_text(doc.reward.dump()), ends_at=doc.ends_at,
                        verify_phone=bool(doc.verify_phone))


def check_answers(tenant_id: str, survey_id: str, answers: dict[str, Any]) -> None:
    """What `respond` says of these answers (422 per question), writing nothing: a form's step before the code."""
    at = clock.now()
    doc = _open_survey(tenant_id, survey_id, at)
    checked = rules.check_answers(_questions(doc), answers, at.date())
    if checked.errors:
        raise validation_error("The answers are invalid.", [ErrorDetail(f, issue) for f, issue in checked.errors])


FORM_PURPOSE = "survey_form"
FORM_TTL = timedelta(hours=3)
"""How long a hosted questionnaire's form token lasts: time enough to answer, wait for a code and type it."""


def form_token(tenant_id: str, survey_id: str) -> str:
    """A short-lived signed token the hosted form carries (its CSRF token): bound to this tenant and survey."""
    return links.sign(signing.link_secret(), FORM_PURPOSE, {"t": tenant_id, "s": survey_id},
                      clock.now() + FORM_TTL)


def form_token_valid(tenant_id: str, survey_id: str, token: str | None) -> bool:
    """True for a token `form_token` made for this very tenant and survey that has not expired."""
    if not token or len(token) > 600:
        return False
    try:
        claims = links.verify(signing.link_secret(), FORM_PURPOSE, token, clock.now())
    except links.BadLink:
        return False
    return claims.get("t") == tenant_id and claims.get("s") == survey_id


def create(tenant_id: str, spec: SurveyCreate, actor: str) -> tuple[int, Survey]:
    """A new survey definition (201); the reward must name something that can be given."""
    _check_reward(tenant_id, spec)
    at = clock.now()
    doc = _doc(spec.id, spec, at.isoformat(), None)
    entry = audit.entry(tenant_id, action="survey.created", actor=actor, at=at, target=f"survey:{spec.id}",
                        detail={"kind": spec.kind.value, "status": spec.status.value, "reward": spec.reward.kind})
    if not store.add_survey(tenant_id, spec.id, doc, at, entry):
        raise conflict("survey_exists", f"Survey {spec.id!r} already exists.", "id")
    return 201, _view(doc)


def get(tenant_id: str, survey_id: str) -> Survey:
    """The survey's definition as stored."""
    return _view(_require(tenant_id, survey_id).doc)


def list_all(tenant_id: str, limit: int, cursor: str | None) -> tuple[list[Survey], str | None]:
    """The tenant's surveys by id."""
    docs, next_cursor = store.list_surveys(tenant_id, limit, cursor)
    return [_view(d) for d in docs], next_cursor


def replace(tenant_id: str, survey_id: str, spec: SurveyDefinition, actor: str) -> Survey:
    """Replace the definition. Once it has responses, existing questions keep their meaning (see the domain rule)."""
    _check_reward(tenant_id, spec)
    loaded = _require(tenant_id, survey_id)
    doc, version = loaded.doc, loaded.version
    if store.counters(tenant_id, survey_id).get(rules.TOTAL, 0) > 0:
        problems = rules.incompatible_changes(_questions(doc), list(spec.questions))
        if problems:
            raise ApiError(409, "survey_has_responses", "The survey has responses: existing questions can be "
                           "reworded and options or questions added, but not removed or retyped.",
                           [ErrorDetail(f, issue) for f, issue in problems])
    at = clock.now()
    new_doc = _doc(survey_id, spec, doc.created_at, at.isoformat())
    entry = audit.entry(tenant_id, action="survey.updated", actor=actor, at=at, target=f"survey:{survey_id}",
                        detail={"status": spec.status.value, "questions": str(len(spec.questions))})
    if not store.replace_survey(tenant_id, survey_id, new_doc, version, at, entry):
        raise conflict("survey_changed", "The survey was changed concurrently; read it again and retry.")
    return _view(new_doc)


def results(tenant_id: str, survey_id: str) -> SurveyResults:
    """Aggregates only: counts per option, rating averages, NPS; never an individual answer."""
    doc = _require(tenant_id, survey_id).doc
    summary = rules.results(_questions(doc), store.counters(tenant_id, survey_id))
    return SurveyResults.model_validate({"survey_id": survey_id, **summary})


def responses(tenant_id: str, survey_id: str, limit: int, cursor: str | None
              ) -> tuple[list[SurveyResponse], str | None]:
    """The survey's responses with their personal answers, read back from the personal-data table."""
    _require(tenant_id, survey_id)
    rows, next_cursor = store.list_responses(tenant_id, survey_id, limit, cursor)
    out = []
    for row in rows:
        scope, customer_id = str(row.scope or tenant_id), row.customer_id
        personal = (people.get_answers(scope, str(customer_id), survey_id, row.response_id) or {}
                    if customer_id else {})
        out.append(SurveyResponse(
            response_id=row.response_id, survey_id=survey_id, customer_id=customer_id, at=row.at,
            answers={**(row.answers or {}), **personal}, receipt_id=row.receipt_id,
            store_id=row.store_id, reward=row.reward))
    return out, next_cursor


@dataclass(frozen=True)
class LoggedResponse:
    """A response as the console lists it: when, whether a customer stands behind it, the reward; no answers."""

    response_id: str
    at: datetime
    identified: bool
    reward: dict[str, Any] | None


def response_log(tenant_id: str, survey_id: str, limit: int, cursor: str | None
                 ) -> tuple[list[LoggedResponse], str | None]:
    """The survey's responses, oldest first, without any answer (nothing is read from the personal-data table)."""
    _require(tenant_id, survey_id)
    rows, next_cursor = store.list_responses(tenant_id, survey_id, limit, cursor)
    return [LoggedResponse(row.response_id, datetime.fromisoformat(str(row.at)), bool(row.customer_id), row.reward)
            for row in rows], next_cursor


def invite(tenant_id: str, survey_id: str, body: InvitationIn) -> tuple[int, Invitation]:
    """A signed link for the customer of a receipt to rate it (mailings send it).

    The path is the hosted questionnaire page (`/s/...`, console public_surveys), which takes `?invitation=`
    in place of a phone code, so the link opens a page the customer can answer on.
    """
    doc = _require(tenant_id, survey_id).doc
    if doc.kind != SurveyKind.FEEDBACK.value:
        raise _unprocessable("not_a_feedback_survey", "Invitations are for feedback surveys.", "survey_id")
    if doc.status == SurveyStatus.CLOSED.value:
        raise conflict("survey_closed", "This survey is closed.")
    receipt = loyalty.get_receipt(tenant_id, body.receipt_id)
    if receipt is None:
        raise ApiError(404, "receipt_not_found", "No such receipt.", [ErrorDetail("receipt_id", "not found")])
    number, scope = receipt.doc.card_number, receipt.doc.card_scope or tenant_id
    card = loyalty.get_card(str(scope), str(number)) if number else None
    if card is None or not card.customer_id:
        raise _unprocessable("receipt_without_customer", "This receipt has no registered customer to invite.",
                             "receipt_id")
    expires_at = clock.now() + timedelta(days=INVITATION_DAYS)
    token = links.sign(signing.link_secret(), INVITATION_PURPOSE,
                       {"t": tenant_id, "s": survey_id, "c": card.customer_id, "r": body.receipt_id}, expires_at)
    return 201, Invitation(token=token, url_path=f"/s/{tenant_id}/{survey_id}?invitation={token}",
                           expires_at=expires_at)


def _not_found() -> ApiError:
    return ApiError(404, "survey_not_found", "No such survey.")


def _unprocessable(code: str, message: str, field_name: str) -> ApiError:
    return ApiError(422, code, message, [ErrorDetail(field_name, message)])


def _questions(doc: SurveyDoc) -> list[Question]:
    # Not strict: the stored document holds enum values as JSON text.
    return [Question.model_validate(q, strict=False) for q in doc.questions]


def _view(doc: SurveyDoc) -> Survey:
    return Survey.model_validate(doc.dump())


def _require(tenant_id: str, survey_id: str) -> Versioned[SurveyDoc]:
    loaded = store.get_survey(tenant_id, survey_id) if is_slug(survey_id) else None
    if loaded is None:
        raise _not_found()
    return loaded


def _check_reward(tenant_id: str, spec: SurveyDefinition) -> None:
    """The reward must point at something that can be given: a live points program, an existing campaign."""
    reward = spec.reward
    if isinstance(reward, CardReward | PointsReward):
        program = catalog.program(tenant_id, reward.program_id)
        if program is None or program.status is ProgramStatus.ARCHIVED:
            raise _unprocessable("unknown_program", f"Program {reward.program_id!r} does not exist or is archived.",
                                 "reward.program_id")
        if program.kind is ProgramKind.GIFT or (reward.kind == "points" and program.kind is not ProgramKind.POINTS):
            raise _unprocessable("program_kind_not_supported",
                                 f"Program {reward.program_id!r} cannot take this reward (it has no points).",
                                 "reward.program_id")
    elif isinstance(reward, CouponReward) and coupon_store.get_campaign(tenant_id, reward.campaign_id) is None:
        raise _unprocessable("unknown_campaign", "This coupon campaign does not exist.", "reward.campaign_id")


def _doc(survey_id: str, spec: SurveyDefinition, created_at: str, updated_at: str | None) -> SurveyDoc:
    body = spec.model_dump(mode="json", exclude={"id"})
    return SurveyDoc.load({**body, "id": survey_id, "created_at": created_at, "updated_at": updated_at})


def _open_survey(tenant_id: str, survey_id: str, at: datetime) -> SurveyDoc:
    """An active survey in its window; an unknown or inactive tenant and a draft look like an unknown survey."""
    if not (is_slug(tenant_id) and is_slug(survey_id)):
        raise _not_found()
    tenant = directory.get_tenant(tenant_id)
    if tenant is None or tenant.status is not TenantStatus.ACTIVE:
        raise _not_found()
    loaded = store.get_survey(tenant_id, survey_id)
    if loaded is None or loaded.doc.status == SurveyStatus.DRAFT.value:
        raise _not_found()
    doc = loaded.doc
    if doc.status == SurveyStatus.CLOSED.value:
        raise conflict("survey_closed", "This survey is closed.")
    if doc.starts_at and at < datetime.fromisoformat(doc.starts_at):
        raise conflict("survey_not_started", f"This survey opens at {doc.starts_at}.")
    if doc.ends_at and at >= datetime.fromisoformat(doc.ends_at):
        raise conflict("survey_ended", f"This survey ended at {doc.ends_at}.")
    return doc


def _count_hit(tenant_id: str, survey_id: str, source_ip: str, limit: int, at: datetime) -> None:
    """Fixed hourly window per address and survey; the address is kept only as a keyed SHA-256."""
    address = hashlib.sha256(f"{signing.link_secret()}|{source_ip}".encode()).hexdigest()
    window = fixed_window(at, WINDOW_SECONDS)
    if not store.count_hit(tenant_id, survey_id, address, window.index, limit, window.expires_at_epoch, at):
        raise ApiError(429, "rate_limited", "Too many responses from this address; retry later.",
                       [ErrorDetail("source", f"at most {limit} responses per hour")],
                       headers={"Retry-After": str(window.retry_after)})


def _consents(survey_id: str, profile: rules.Profile) -> list[dict[str, Any]]:
    return [{"kind": c.kind, "granted": c.granted, "source": f"survey:{survey_id}", "text_version": c.text_version}
            for c in profile.consents]


def _customer_spec(survey_id: str, profile: rules.Profile, questions: list[Question]) -> CustomerCreate:
    data: dict[str, Any] = {**profile.personal, "tags": profile.tags, "consents": _consents(survey_id, profile),
                            "acquisition": {"channel": "survey", "source": survey_id}}
    try:
        return CustomerCreate.model_validate_json(json.dumps(data))
    except ValidationError as err:
        by_field = {q.maps_to.value: q.id for q in questions if q.maps_to is not None}
        details = []
        for item in err.errors(include_url=False):
            name = str(item["loc"][0]) if item["loc"] else ""
            details.append(ErrorDetail(f"answers.{by_field[name]}" if name in by_field else "answers", item["msg"]))
        raise validation_error("The answers are invalid.", details) from None


def _invited(tenant_id: str, survey_id: str, token: str, at: datetime) -> tuple[str, str, str, str | None]:
    """(scope, customer id, receipt id, store id) from a valid invitation for this survey."""
    try:
        claims = links.verify(signing.link_secret(), INVITATION_PURPOSE, token, at)
    except links.BadLink:
        claims = {}
    receipt_id = str(claims.get("r", ""))
    receipt = (loyalty.get_receipt(tenant_id, receipt_id)
               if claims.get("t") == tenant_id and claims.get("s") == survey_id else None)
    if receipt is None:
        raise ApiError(400, "invalid_invitation", "This invitation is not valid for this survey.",
                       [ErrorDetail("invitation", "invalid or expired")])
    scope, customer_id = str(receipt.doc.card_scope or tenant_id), str(claims["c"])
    got = customer_records.get(scope, customer_id)
    if got is not None and got.doc.status == "merged" and got.doc.merged_into:
        customer_id = got.doc.merged_into
        got = customer_records.get(scope, customer_id)
    if got is None or got.doc.status == "erased":
        raise ApiError(400, "invalid_invitation", "This invitation's customer no longer exists.",
                       [ErrorDetail("invitation", "customer gone")])
    return scope, customer_id, receipt_id, receipt.doc.store_id


def _already_answered(body: ResponseIn) -> ApiError:
    if body.invitation is not None:
        return conflict("invitation_used", "This invitation was already answered.", "invitation")
    return conflict("verification_used", "This phone verification was already used for a response; verify the "
                    "phone again.", "phone_verification")


def _rewarded(tenant_id: str, survey_id: str, who: Respondent, spec: SurveyReward) -> RewardOut:
    assert who.customer_id is not None
    reward = _reward(tenant_id, who.scope, who.customer_id, survey_id, spec, f"survey:{survey_id}")
    store.set_response_reward(who.scope, who.customer_id, survey_id, who.response_id, reward.model_dump(mode="json"))
    return reward


def _invited_respondent(tenant_id: str, survey_id: str, token: str, profile: rules.Profile,
                        at: datetime) -> Respondent:
    """The receipt's customer, named by a signed invitation that only they were sent; their consents apply."""
    scope, customer_id, receipt_id, store_id = _invited(tenant_id, survey_id, token, at)
    if store.invitation_used(tenant_id, survey_id, receipt_id):
        raise conflict("invitation_used", "This invitation was already answered.", "invitation")
    if profile.consents:
        decisions = [ConsentIn.model_validate_json(json.dumps(c)) for c in _consents(survey_id, profile)]
        customers.set_consents(customers.find(tenant_id, customer_id), decisions, f"survey:{survey_id}")
    response_id = "i" + hashlib.sha256(f"{survey_id}|{receipt_id}".encode()).hexdigest()[:15]
    return Respondent(scope, customer_id, response_id, receipt_id, store_id)


def _verified_respondent(tenant_id: str, survey_id: str, proof: str, profile: rules.Profile,
                         questions: list[Question]) -> Respondent:
    """The customer holding the verified phone (created if new): their answers fill the profile.

    The proof is spent before the customer is touched and names the
    response (one response per verification); a retry of a request that died
    after spending it may go on until the response is recorded, a replay
    after that is refused before anything is written.
    """
    verification_id, phone = verification.proven_phone(tenant_id, proof, "phone_verification")
    phone_q = next((q.id for q in questions if q.maps_to is not None and q.maps_to.value == "phone"), None)
    answered = profile.personal.get("phone")
    if answered is not None and answered != phone:
        raise _unprocessable("phone_mismatch", "This is not the phone that was verified.",
                             f"answers.{phone_q}" if phone_q else "phone_verification")
    verified = dataclasses.replace(profile, personal={**profile.personal, "phone": phone})
    spec = _customer_spec(survey_id, verified, questions)
    verification.spend(tenant_id, verification_id, f"survey:{survey_id}", "phone_verification")
    customer_id, _ = customers.ensure(tenant_id, tenant_id, spec, f"survey:{survey_id}", mode="overwrite")
    response_id = "v" + hashlib.sha256(f"{survey_id}|{verification_id}".encode()).hexdigest()[:15]
    return Respondent(tenant_id, customer_id, response_id, verification_id=verification_id)


def _unidentified_respondent(tenant_id: str, doc: SurveyDoc, questions: list[Question]) -> Respondent:
    """Nobody in particular: kept as answers only, or refused where the survey only takes known respondents."""
    if not doc.verify_phone:
        return Respondent(tenant_id, None, new_id(), unrewarded="anonymous")
    if any(q.maps_to is not None and q.maps_to.value == "phone" for q in questions):
        return Respondent(tenant_id, None, new_id(), unrewarded="phone_not_verified")
    raise ApiError(400, "invitation_required", "This survey is answered through an invitation link or with a "
                   "verified phone.", [ErrorDetail("invitation", "required")])


def _adjustment_id(survey_id: str, customer_id: str) -> str:
    """The deterministic id that makes the points credit exactly-once (at most 64 characters)."""
    plain = f"survey-{survey_id}-{customer_id}"
    return plain if len(plain) <= 64 else "survey-" + hashlib.sha256(plain.encode()).hexdigest()[:48]


def _card_of(tenant_id: str, scope: str, customer_id: str, program_id: str, actor: str) -> str:
    """The customer's card of the program: the one they have (never a second), else a new one issued to them."""
    owned = sorted(n for n, p in customer_records.card_links(scope, customer_id) if p == program_id)
    if owned:
        return owned[0]
    phone = customers.person(scope, customer_id).phone
    if not phone:
        raise _unprocessable("customer_has_no_phone", "A card is issued to a customer identified by phone.",
                             "reward")
    _, card = cards.issue(tenant_id, CardIssue(program_id=program_id, customer=CustomerCreate(phone=phone)), actor)
    return card.number


def _grant(tenant_id: str, scope: str, customer_id: str, survey_id: str, spec: SurveyReward,
           actor: str) -> RewardOut:
    kind = spec.kind
    if kind == "card":
        return RewardOut(granted=True, kind=kind,
                         card_number=_card_of(tenant_id, scope, customer_id, str(spec.program_id), actor))
    if kind == "points":
        number = _card_of(tenant_id, scope, customer_id, str(spec.program_id), actor)
        points = int(spec.points or 0)
        cards.adjust(tenant_id, number, AdjustmentIn(adjustment_id=_adjustment_id(survey_id, customer_id),
                                                     points=points, reason=history.survey_reason(survey_id)), actor)
        return RewardOut(granted=True, kind=kind, card_number=number, points=points)
    code = coupons.grant_code(tenant_id, str(spec.campaign_id), customer_id, f"survey:{survey_id}:{customer_id}",
                              clock.now(), source="survey", origin=survey_id, scope=scope)
    return RewardOut(granted=True, kind=kind, coupon_code=code)


def _reward(tenant_id: str, scope: str, customer_id: str, survey_id: str, spec: SurveyReward,
            actor: str) -> RewardOut:
    """The survey's reward for this customer, exactly once (see the module docstring for the ordering)."""
    kind = spec.kind
    if kind == "none":
        return RewardOut(granted=False, reason="no_reward")
    at = clock.now()
    marker = RewardMarker(status="pending", reward=spec, lease_until=(at + REWARD_LEASE).isoformat(),
                          started_at=at.isoformat())
    existing = store.claim_reward(scope, customer_id, survey_id, marker, at)
    if existing is not None:
        if existing.status == "granted":
            return RewardOut(granted=False, reason="already_rewarded", kind=existing.reward.kind)
        lease = str(existing.lease_until or "")
        marker = RewardMarker(status="pending", reward=existing.reward, lease_until=marker.lease_until,
                              started_at=marker.started_at)
        if lease > at.isoformat() or not store.take_over_reward(scope, customer_id, survey_id, lease, marker, at):
            return RewardOut(granted=False, reason="reward_pending", kind=existing.reward.kind)
    try:
        out = _grant(tenant_id, scope, customer_id, survey_id, marker.reward, actor)
    except ApiError as err:
        if err.status >= 500:
            raise
        store.release_reward(scope, customer_id, survey_id)
        logger.warning("survey reward refused", extra={"tenant_id": tenant_id, "survey_id": survey_id,
                                                       "code": err.code})
        return RewardOut(granted=False, reason="reward_unavailable", kind=kind)
    store.finish_reward(scope, customer_id, survey_id,
                        RewardMarker(status="granted", reward=marker.reward, granted_at=at.isoformat(),
                                     result=out.model_dump(mode="json", exclude_none=True)), at)
    return out
