"""Surveys: defined by the tenant admin, answered on a public form (site, app, event tablet), rewarded once."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.api.registry import PUBLIC, Request, Router
from chalicelib.api.routes.common import lazy_module, page, tenant_id_of
from chalicelib.domain.roles import Role
from chalicelib.schemas.common import Page, PageQuery
from chalicelib.schemas.surveys import (
    Invitation,
    InvitationIn,
    PublicSurvey,
    ResponseAccepted,
    ResponseIn,
    Survey,
    SurveyCreate,
    SurveyDefinition,
    SurveyResponse,
    SurveyResults,
)

if TYPE_CHECKING:
    from chalicelib.services.customers import surveys
else:
    surveys = lazy_module("chalicelib.services.customers.surveys")

router = Router("Surveys")
ADMIN = {Role.TENANT_ADMIN}
INVITERS = {Role.TENANT_ADMIN, Role.POS}


@router.route("POST", "/v1/surveys", roles=ADMIN, body=SurveyCreate, response=Survey, status=201,
              errors=(409, 422),
              summary="Define a survey: questions (text, choices, rating, NPS, date, phone, e-mail, consent), the "
                      "profile fields they fill, and the reward given once per customer.")
def create_survey(req: Request) -> tuple[int, Survey]:
    return surveys.create(tenant_id_of(req.caller), req.body, req.actor)


@router.route("GET", "/v1/surveys", roles=ADMIN, query=PageQuery, response=Page[Survey],
              summary="The tenant's surveys by id.")
def list_surveys(req: Request) -> Page[Survey]:
    return page(*surveys.list_all(tenant_id_of(req.caller), req.query.limit, req.query.cursor))


@router.route("GET", "/v1/surveys/{survey_id}", roles=ADMIN, response=Survey, errors=(404,),
              summary="A survey's definition.")
def get_survey(req: Request) -> Survey:
    return surveys.get(tenant_id_of(req.caller), req.path["survey_id"])


@router.route("PUT", "/v1/surveys/{survey_id}", roles=ADMIN, body=SurveyDefinition, response=Survey,
              errors=(404, 409, 422),
              summary="Replace a survey's definition. Once it has responses, questions can be reworded and options "
                      "or questions added, but existing ones cannot be removed or change type (409).")
def replace_survey(req: Request) -> Survey:
    return surveys.replace(tenant_id_of(req.caller), req.path["survey_id"], req.body, req.actor)


@router.route("GET", "/v1/surveys/{survey_id}/results", roles=ADMIN, response=SurveyResults, errors=(404,),
              summary="Aggregate results: counts per option, rating averages, NPS; no individual answers.")
def survey_results(req: Request) -> SurveyResults:
    return surveys.results(tenant_id_of(req.caller), req.path["survey_id"])


@router.route("GET", "/v1/surveys/{survey_id}/responses", roles=ADMIN, query=PageQuery,
              response=Page[SurveyResponse], errors=(404,),
              summary="The survey's responses, oldest first, with personal answers (read from the personal-data "
                      "store).")
def survey_responses(req: Request) -> Page[SurveyResponse]:
    return page(*surveys.responses(tenant_id_of(req.caller), req.path["survey_id"], req.query.limit,
                                   req.query.cursor))


@router.route("POST", "/v1/surveys/{survey_id}/invitations", roles=INVITERS, body=InvitationIn, response=Invitation,
              status=201, errors=(404, 409, 422),
              summary="A signed link (30 days) inviting a receipt's customer to a feedback survey.")
def invite(req: Request) -> tuple[int, Invitation]:
    return surveys.invite(tenant_id_of(req.caller), req.path["survey_id"], req.body)


@router.route("GET", "/v1/public/surveys/{tenant_id}/{survey_id}", roles=PUBLIC, response=PublicSurvey,
              errors=(404, 409), summary="An active survey's form. No key.")
def public_survey(req: Request) -> PublicSurvey:
    return surveys.public(req.path["tenant_id"], req.path["survey_id"])


@router.route("POST", "/v1/public/surveys/{tenant_id}/{survey_id}/responses", roles=PUBLIC, body=ResponseIn,
              response=ResponseAccepted, status=201, errors=(400, 404, 409, 422, 429),
              summary="Answer a survey (no key): identifies the customer by phone or invitation, fills their "
                      "profile, and gives the reward once per customer. Rate-limited per address.")
def respond(req: Request) -> tuple[int, ResponseAccepted]:
    return surveys.respond(req.path["tenant_id"], req.path["survey_id"], req.body, req.source_ip)
