"""The personal-data table's documents: the profile, a survey response's personal answers, the phone index."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from chalicelib.storage.documents.common import Document


class PersonDoc(Document):
    """`<scope>#person#<id>` / `profile`: the personal fields, only those ever given (absent is not None)."""

    phone: str | None = None
    phones: list[str] | None = None
    email: str | None = None
    first_name: str | None = None
    middle_name: str | None = None
    last_name: str | None = None
    gender: str | None = None
    birth_date: str | None = None
    children: list[dict[str, Any]] | None = None
    preferences: list[str] | None = None

    def all_phones(self) -> list[str]:
        """Every phone the person holds: the list, else the one phone."""
        return list(self.phones or ([self.phone] if self.phone else []))


class AnswersDoc(Document):
    """`<scope>#person#<id>` / `answers#<sid>#<rid>`: a survey response's personal answers."""

    survey_id: str
    response_id: str
    answers: dict[str, Any] = Field(default_factory=dict)


class PhoneOwner(Document):
    """`<scope>#phone#<e164>` / `phone`: the phone's one customer in the scope."""

    customer_id: str
