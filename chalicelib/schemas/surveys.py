"""Questionnaires: definitions (tenant admin), the public form and its responses, results, invitations."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from chalicelib.schemas.common import Input, Name, Output, Slug, Text
from chalicelib.schemas.customers import ConsentKind, Gender, ShortText
from chalicelib.schemas.grammar import article
from chalicelib.schemas.pos import ReceiptId

MAX_QUESTIONS = 50
MAX_OPTIONS = 30
MAX_TEXT = 2000
Label = Annotated[str, StringConstraints(min_length=1, max_length=500)]


class QuestionType(StrEnum):
    TEXT = "text"
    SINGLE_CHOICE = "single_choice"
    MULTIPLE_CHOICE = "multiple_choice"
    RATING = "rating"
    NPS = "nps"
    DATE = "date"
    PHONE = "phone"
    EMAIL = "email"
    CONSENT = "consent"


class ProfileField(StrEnum):
    """Profile fields a question can fill; all but `tags` are personal (stored only in the personal-data table)."""

    PHONE = "phone"
    EMAIL = "email"
    FIRST_NAME = "first_name"
    LAST_NAME = "last_name"
    MIDDLE_NAME = "middle_name"
    GENDER = "gender"
    BIRTH_DATE = "birth_date"
    PREFERENCES = "preferences"
    TAGS = "tags"


# Which question types can fill which profile field.
MAPPABLE: dict[ProfileField, frozenset[QuestionType]] = {
    ProfileField.PHONE: frozenset({QuestionType.PHONE}),
    ProfileField.EMAIL: frozenset({QuestionType.EMAIL}),
    ProfileField.FIRST_NAME: frozenset({QuestionType.TEXT}),
    ProfileField.LAST_NAME: frozenset({QuestionType.TEXT}),
    ProfileField.MIDDLE_NAME: frozenset({QuestionType.TEXT}),
    ProfileField.GENDER: frozenset({QuestionType.SINGLE_CHOICE}),
    ProfileField.BIRTH_DATE: frozenset({QuestionType.DATE}),
    ProfileField.PREFERENCES: frozenset({QuestionType.SINGLE_CHOICE, QuestionType.MULTIPLE_CHOICE}),
    ProfileField.TAGS: frozenset({QuestionType.SINGLE_CHOICE, QuestionType.MULTIPLE_CHOICE}),
}
CHOICE_TYPES = frozenset({QuestionType.SINGLE_CHOICE, QuestionType.MULTIPLE_CHOICE})


class SurveyKind(StrEnum):
    REGISTRATION = "registration"
    FEEDBACK = "feedback"


class SurveyStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    CLOSED = "closed"


class Option(Input):
    id: Slug
    label: Label


class Question(Input):
    id: Slug
    type: QuestionType
    label: Label
    required: bool = False
    options: list[Option] = Field(default_factory=list, max_length=MAX_OPTIONS,
                                  description="single_choice / multiple_choice: 2 to 30 options.")
    max_length: int | None = Field(default=None, ge=1, le=MAX_TEXT, description="text: longest answer (default 500).")
    scale: int | None = Field(default=None, ge=2, le=10, description="rating: answers 1..scale (default 5).")
    maps_to: ProfileField | None = Field(default=None, description="The profile field the answer fills.")
    consent_kind: ConsentKind | None = Field(default=None, description="consent: which consent the box records.")
    consent_text_version: ShortText | None = Field(default=None,
                                                   description="consent: the version of the text shown next to it.")

    @model_validator(mode="after")
    def _shape(self) -> Question:
        choice = self.type in CHOICE_TYPES
        if choice:
            if len(self.options) < 2:
                raise ValueError("a choice question needs at least 2 options")
            ids = [o.id for o in self.options]
            if len(set(ids)) != len(ids):
                raise ValueError("option ids must be unique")
        elif self.options:
            raise ValueError("only choice questions have options")
        if self.max_length is not None and self.type is not QuestionType.TEXT:
            raise ValueError("only text questions have max_length")
        if self.scale is not None and self.type is not QuestionType.RATING:
            raise ValueError("only rating questions have a scale")
        is_consent = self.type is QuestionType.CONSENT
        if is_consent != (self.consent_kind is not None) or is_consent != (self.consent_text_version is not None):
            raise ValueError("consent questions (and only they) need consent_kind and consent_text_version")
        if self.maps_to is not None:
            if self.type not in MAPPABLE[self.maps_to]:
                raise ValueError(f"{article(self.type.value)} question cannot fill {self.maps_to.value}")
            if self.maps_to is ProfileField.GENDER and not {o.id for o in self.options} <= {g.value for g in Gender}:
                raise ValueError("gender options must be female, male or other")
        return self


class NoReward(Input):
    kind: Literal["none"] = "none"


class CardReward(Input):
    kind: Literal["card"]
    program_id: Slug


class PointsReward(Input):
    kind: Literal["points"]
    program_id: Slug
    points: int = Field(ge=1, le=10_000_000)


class CouponReward(Input):
    kind: Literal["coupon"]
    campaign_id: Slug


Reward = Annotated[NoReward | CardReward | PointsReward | CouponReward, Field(discriminator="kind")]


class SurveyDefinition(Input):
    """Everything but the id: `PUT /v1/surveys/{id}` replaces it whole."""

    title: Name
    description: Text | None = None
    kind: SurveyKind
    status: SurveyStatus = SurveyStatus.DRAFT
    questions: list[Question] = Field(min_length=1, max_length=MAX_QUESTIONS)
    reward: Reward = Field(default_factory=NoReward,
                           description="Given once per customer per survey: a card, bonus points or a coupon.")
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    rate_limit_per_hour: int = Field(default=20, ge=1, le=10_000,
                                     description="Responses accepted per client IP address per hour.")
    verify_phone: bool = Field(
        default=True,
        description="Responses act on a customer only with a phone verified by SMS code (or an invitation). Can "
                    "be switched off only for a survey that collects no phone, e-mail or consent: its responses "
                    "are then anonymous answers.")

    @model_validator(mode="after")
    def _consistent(self) -> SurveyDefinition:
        ids = [q.id for q in self.questions]
        if len(set(ids)) != len(ids):
            raise ValueError("question ids must be unique")
        mapped = [q.maps_to for q in self.questions if q.maps_to is not None]
        if len(set(mapped)) != len(mapped):
            raise ValueError("each profile field can be filled by one question only")
        kinds = [q.consent_kind for q in self.questions if q.consent_kind is not None]
        if len(set(kinds)) != len(kinds):
            raise ValueError("one consent question per consent kind")
        if self.kind is SurveyKind.REGISTRATION and not any(
                q.maps_to is ProfileField.PHONE and q.required for q in self.questions):
            raise ValueError("a registration survey needs a required phone question mapped to phone")
        for value in (self.starts_at, self.ends_at):
            if value is not None and value.tzinfo is None:
                raise ValueError("starts_at and ends_at need a time zone offset")
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if not self.verify_phone and any(_identifying(q) for q in self.questions):
            raise ValueError("verify_phone can be off only for a survey that collects no phone, e-mail or consent")
        return self


def _identifying(question: Question) -> bool:
    """A question whose answer claims an identity or a consent: only a verified person may give it."""
    return (question.type in (QuestionType.PHONE, QuestionType.EMAIL, QuestionType.CONSENT)
            or question.maps_to in (ProfileField.PHONE, ProfileField.EMAIL))


class SurveyCreate(SurveyDefinition):
    id: Slug


class Survey(Output):
    id: str
    title: str
    description: str | None = None
    kind: SurveyKind
    status: SurveyStatus
    questions: list[dict[str, Any]]
    reward: dict[str, Any]
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    rate_limit_per_hour: int
    verify_phone: bool = True
    created_at: datetime
    updated_at: datetime | None = None


class PublicQuestion(Output):
    id: str
    type: QuestionType
    label: str
    required: bool
    options: list[dict[str, str]] = []
    max_length: int | None = None
    scale: int | None = None
    consent_kind: ConsentKind | None = None
    consent_text_version: str | None = None


class PublicSurvey(Output):
    """What a site, an app or an event tablet needs to render the form: no internal configuration."""

    tenant_id: str
    survey_id: str
    title: str
    description: str | None = None
    kind: SurveyKind
    questions: list[PublicQuestion]
    reward: str | None = Field(default=None, description="A short description of the reward, if any.")
    ends_at: datetime | None = None
    verify_phone: bool = Field(description="Ask for the phone's SMS code (`/v1/public/verifications`) before "
                                           "sending the response: without it the response counts only as "
                                           "answers.")


def _bounded_answer(value: Any) -> Any:
    """An answer is text (at most 2000 characters), a whole number, true/false, or a list of up to 30 option ids."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise ValueError(f"at most {MAX_TEXT} characters")
        return value
    if isinstance(value, list):
        if len(value) > MAX_OPTIONS or not all(isinstance(v, str) and len(v) <= 40 for v in value):
            raise ValueError(f"a list holds at most {MAX_OPTIONS} option ids")
        return value
    raise ValueError("must be text, a whole number, true/false or a list of option ids")


AnswerValue = Annotated[Any, AfterValidator(_bounded_answer)]


class ResponseIn(Input):
    answers: dict[Slug, AnswerValue] = Field(max_length=MAX_QUESTIONS,
                                                    description="question id -> answer (text, option id(s), number, "
                                                                "`YYYY-MM-DD`, phone, e-mail, true/false).")
    invitation: Annotated[str, StringConstraints(min_length=10, max_length=600)] | None = Field(
        default=None, description="The signed token of a post-purchase invitation: identifies the customer.")
    phone_verification: Annotated[str, StringConstraints(min_length=10, max_length=600)] | None = Field(
        default=None, description="The `proof` of `POST /v1/public/verifications/{tenant_id}/{id}/check` for the "
                                  "phone answered (or, in a survey without a phone question, the phone that "
                                  "identifies the respondent). Without it the response is kept as answers only.")


class RewardOut(Output):
    granted: bool
    reason: str | None = Field(default=None, description="Why not: no_reward, already_rewarded, reward_pending, "
                               "reward_unavailable, phone_not_verified (the response was kept as answers only), "
                               "anonymous (the survey does not identify respondents).")
    kind: str | None = None
    card_number: str | None = None
    points: int | None = None
    coupon_code: str | None = None


class ResponseAccepted(Output):
    response_id: str
    verified: bool = Field(description="True when the response is linked to a customer (verified phone or "
                                       "invitation); false when it was kept as answers only.")
    reward: RewardOut
    message: str


class OptionCount(Output):
    id: str
    label: str
    count: int


class QuestionResult(Output):
    question_id: str
    type: QuestionType
    label: str
    answered: int
    options: list[OptionCount] | None = None
    distribution: dict[str, int] | None = Field(default=None, description="rating / nps: answers per value.")
    average_x100: int | None = Field(default=None, description="rating: the average times 100, rounded half up.")
    promoters: int | None = None
    passives: int | None = None
    detractors: int | None = None
    nps_bps: int | None = Field(default=None, description="nps: (%promoters - %detractors) in basis points, "
                                "-10000..10000, rounded half away from zero (4250 = NPS 42.5).")
    granted: int | None = Field(default=None, description="consent: boxes ticked.")
    declined: int | None = None


class SurveyResults(Output):
    survey_id: str
    responses: int
    questions: list[QuestionResult]


class SurveyResponse(Output):
    response_id: str
    survey_id: str
    customer_id: str | None = Field(description="None for a response kept as answers only (unverified or "
                                                "anonymous).")
    at: datetime
    answers: dict[str, Any]
    receipt_id: str | None = None
    store_id: str | None = None
    reward: dict[str, Any] | None = None


class InvitationIn(Input):
    receipt_id: ReceiptId


class Invitation(Output):
    token: str
    url_path: str
    expires_at: datetime
