"""Survey documents in the loyalty table: the definition, a response summary, the reward marker.

Questions and the reward stay in their JSON form (`dict`): the API schemas
validate them, and the domain rules read them as such.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from chalicelib.storage.documents.common import Document


class SurveyReward(Document):
    """What a survey gives once per customer: nothing, a card, points on a card, or a coupon."""

    kind: str = "none"
    program_id: str | None = None
    points: int | None = None
    campaign_id: str | None = None


class SurveyDoc(Document):
    """`<tid>#surveys` / `survey#<sid>`: the definition as the admin gave it, with its id and times."""

    id: str
    title: str
    description: str | None = None
    kind: str
    status: str
    questions: list[dict[str, Any]] = Field(default_factory=list)
    reward: SurveyReward = Field(default_factory=SurveyReward)
    starts_at: str | None = None
    ends_at: str | None = None
    rate_limit_per_hour: int = 20
    verify_phone: bool = True
    created_at: str
    updated_at: str | None = None


class ResponseDoc(Document):
    """`survey#<sid>#<rid>`: a response summary (non-personal answers only) and, later, what it earned.

    `at` is the record's time, never stored in the doc.
    """

    survey_id: str
    response_id: str
    customer_id: str | None = None
    scope: str | None = None
    answers: dict[str, Any] | None = None
    receipt_id: str | None = None
    store_id: str | None = None
    reward: dict[str, Any] | None = None
    at: str | None = Field(default=None, exclude=True)

    def exported(self) -> dict[str, Any]:
        """The summary as the data subject's export shows it: the stored fields and `at`."""
        return {**self.dump(), "at": self.at}


class RewardMarker(Document):
    """`<scope>#customer#<cid>` / `survey-reward#<sid>`: one reward per customer per survey.

    `pending` while a grant runs under a lease, `granted` with its result after.
    """

    status: str
    reward: SurveyReward = Field(default_factory=SurveyReward)
    lease_until: str | None = None
    started_at: str | None = None
    granted_at: str | None = None
    result: dict[str, Any] | None = None


class InvitationUse(Document):
    """`<tid>#survey-invitation#<sid>#<receipt>` / `used`: the response that used the invitation."""

    response_id: str
