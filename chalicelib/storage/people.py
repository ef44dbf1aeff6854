"""The personal-data table: the only place a customer's phone, e-mail, names and free-text answers are stored.

Every call takes the scope (tenant id, or `coalition.<id>`) explicitly. No
call joins a loyalty-table transaction: this table may live in another region.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pynamodb.exceptions import DeleteError, PutError

from chalicelib.storage.documents.common import Versioned
from chalicelib.storage.documents.person import AnswersDoc, PersonDoc, PhoneOwner
from chalicelib.storage.tables import PersonRecord, get_item

PROFILE_SK = "profile"
PHONE_SK = "phone"


class Conflict(Exception):
    """A versioned write lost to a concurrent one."""


@dataclass(frozen=True)
class StoredAnswers:
    """A response's personal answers with the time they were written (a merge copies both)."""

    doc: AnswersDoc
    at: datetime


@dataclass(frozen=True)
class Partition:
    """Everything in a customer's personal-data partition, by kind: what an export or a merge reads whole."""

    profile: PersonDoc | None = None
    answers: list[StoredAnswers] = field(default_factory=list)


def person_pk(scope: str, customer_id: str) -> str:
    return f"{scope}#person#{customer_id}"


def phone_pk(scope: str, phone: str) -> str:
    return f"{scope}#phone#{phone}"


def customer_by_phone(scope: str, phone: str) -> str | None:
    rec = get_item(PersonRecord, phone_pk(scope, phone), PHONE_SK)
    return PhoneOwner.of(rec.doc).customer_id if rec else None


def claim_phone(scope: str, phone: str, customer_id: str, at: datetime) -> str:
    """Point the phone at `customer_id` unless it already points somewhere: returns the owner."""
    try:
        PersonRecord(phone_pk(scope, phone), PHONE_SK, kind="phone", doc=PhoneOwner(customer_id=customer_id).dump(),
                     at=at).save(condition=PersonRecord.pk.does_not_exist())
        return customer_id
    except PutError as err:
        if err.cause_response_code != "ConditionalCheckFailedException":
            raise
    owner = customer_by_phone(scope, phone)
    return owner or claim_phone(scope, phone, customer_id, at)


def point_phone(scope: str, phone: str, customer_id: str, at: datetime) -> None:
    """Re-point a phone (merging duplicates: the duplicate's phone now finds the kept customer)."""
    PersonRecord(phone_pk(scope, phone), PHONE_SK, kind="phone", doc=PhoneOwner(customer_id=customer_id).dump(),
                 at=at).save()


def release_phone(scope: str, phone: str, customer_id: str) -> None:
    """Free a phone, only if it still points at this customer."""
    try:
        PersonRecord(phone_pk(scope, phone), PHONE_SK).delete(
            condition=PersonRecord.doc["customer_id"] == customer_id)
    except DeleteError as err:
        if err.cause_response_code != "ConditionalCheckFailedException":
            raise


def get_person(scope: str, customer_id: str) -> Versioned[PersonDoc] | None:
    rec = get_item(PersonRecord, person_pk(scope, customer_id), PROFILE_SK)
    return Versioned(PersonDoc.of(rec.doc), int(rec.version)) if rec else None


def put_person(scope: str, customer_id: str, doc: PersonDoc, version: int, at: datetime) -> int:
    """Write the personal fields if the stored version is still `version` (0: not yet stored); the new version."""
    condition = (PersonRecord.pk.does_not_exist() if version == 0 else PersonRecord.version == version)
    try:
        PersonRecord(person_pk(scope, customer_id), PROFILE_SK, kind="person", doc=doc.dump(), version=version + 1,
                     at=at).save(condition=condition)
    except PutError as err:
        if err.cause_response_code == "ConditionalCheckFailedException":
            raise Conflict(customer_id) from None
        raise
    return version + 1


def add_answers(scope: str, customer_id: str, survey_id: str, response_id: str, answers: dict[str, Any],
                at: datetime) -> None:
    """A survey response's personal answers (free text, phone, e-mail, dates), next to the profile they describe."""
    PersonRecord(person_pk(scope, customer_id), f"answers#{survey_id}#{response_id}", kind="answers",
                 doc=AnswersDoc(survey_id=survey_id, response_id=response_id, answers=answers).dump(), at=at).save()


def get_answers(scope: str, customer_id: str, survey_id: str, response_id: str) -> dict[str, Any] | None:
    rec = get_item(PersonRecord, person_pk(scope, customer_id), f"answers#{survey_id}#{response_id}")
    return dict(AnswersDoc.of(rec.doc).answers) if rec else None


def items(scope: str, customer_id: str) -> Partition:
    """Everything in the customer's partition (profile, answers): the export reads it whole."""
    profile: PersonDoc | None = None
    answers: list[StoredAnswers] = []
    for rec in PersonRecord.query(person_pk(scope, customer_id), consistent_read=True):
        if rec.kind == "person" and profile is None:
            profile = PersonDoc.of(rec.doc)
        elif rec.kind == "answers":
            answers.append(StoredAnswers(AnswersDoc.of(rec.doc), rec.at))
    return Partition(profile, answers)


def erase(scope: str, customer_id: str, phones: list[str]) -> int:
    """Delete the customer's partition and the phone index items that point at them; how many items went."""
    deleted = 0
    with PersonRecord.batch_write() as batch:
        for rec in PersonRecord.query(person_pk(scope, customer_id), attributes_to_get=["pk", "sk"]):
            batch.delete(rec)
            deleted += 1
    for phone in phones:
        release_phone(scope, phone, customer_id)
        deleted += 1
    return deleted


def delete_tenant_page(tenant_id: str, max_items: int, cursor: dict[str, Any] | None
                       ) -> tuple[int, dict[str, Any] | None, bool]:
    """Offboarding: delete up to `max_items` of the tenant's personal data (same contract as the loyalty one)."""
    prefix = f"{tenant_id}#"
    result = PersonRecord.scan(PersonRecord.pk.startswith(prefix), attributes_to_get=["pk", "sk"],
                               limit=max_items, page_size=max(max_items, 25), last_evaluated_key=cursor)
    deleted = 0
    with PersonRecord.batch_write() as batch:
        for rec in result:
            if not rec.pk.startswith(prefix):
                continue
            batch.delete(rec)
            deleted += 1
    last = result.last_evaluated_key
    return deleted, last, deleted < max_items and last is None
