"""The personal-data table: the only place a customer's phone, e-mail, names and free-text answers are stored.

Every call takes the scope (tenant id, or `coalition.<id>`) explicitly. No
call joins a loyalty-table transaction: this table may live in another region.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pynamodb.exceptions import DeleteError, PutError

from chalicelib.storage.tables import PersonRecord, get_item

PROFILE_SK = "profile"
PHONE_SK = "phone"


class Conflict(Exception):
    """A versioned write lost to a concurrent one."""


def person_pk(scope: str, customer_id: str) -> str:
    return f"{scope}#person#{customer_id}"


def phone_pk(scope: str, phone: str) -> str:
    return f"{scope}#phone#{phone}"


def customer_by_phone(scope: str, phone: str) -> str | None:
    rec = get_item(PersonRecord, phone_pk(scope, phone), PHONE_SK)
    return str(rec.doc.as_dict()["customer_id"]) if rec else None


def claim_phone(scope: str, phone: str, customer_id: str, at: datetime) -> str:
    """Point the phone at `customer_id` unless it already points somewhere: returns the owner."""
    try:
        PersonRecord(phone_pk(scope, phone), PHONE_SK, kind="phone", doc={"customer_id": customer_id},
                     at=at).save(condition=PersonRecord.pk.does_not_exist())
        return customer_id
    except PutError as err:
        if err.cause_response_code != "ConditionalCheckFailedException":
            raise
    owner = customer_by_phone(scope, phone)
    return owner or claim_phone(scope, phone, customer_id, at)


def point_phone(scope: str, phone: str, customer_id: str, at: datetime) -> None:
    """Re-point a phone (merging duplicates: the duplicate's phone now finds the kept customer)."""
    PersonRecord(phone_pk(scope, phone), PHONE_SK, kind="phone", doc={"customer_id": customer_id}, at=at).save()


def release_phone(scope: str, phone: str, customer_id: str) -> None:
    """Free a phone, only if it still points at this customer."""
    try:
        PersonRecord(phone_pk(scope, phone), PHONE_SK).delete(
            condition=PersonRecord.doc["customer_id"] == customer_id)
    except DeleteError as err:
        if err.cause_response_code != "ConditionalCheckFailedException":
            raise


def get_person(scope: str, customer_id: str) -> tuple[dict[str, Any], int] | None:
    rec = get_item(PersonRecord, person_pk(scope, customer_id), PROFILE_SK)
    return (rec.doc.as_dict(), int(rec.version)) if rec else None


def put_person(scope: str, customer_id: str, doc: dict[str, Any], version: int, at: datetime) -> int:
    """Write the personal fields if the stored version is still `version` (0: not yet stored); the new version."""
    condition = (PersonRecord.pk.does_not_exist() if version == 0 else PersonRecord.version == version)
    try:
        PersonRecord(person_pk(scope, customer_id), PROFILE_SK, kind="person", doc=doc, version=version + 1,
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
                 doc={"survey_id": survey_id, "response_id": response_id, "answers": answers}, at=at).save()


def get_answers(scope: str, customer_id: str, survey_id: str, response_id: str) -> dict[str, Any] | None:
    rec = get_item(PersonRecord, person_pk(scope, customer_id), f"answers#{survey_id}#{response_id}")
    return dict(rec.doc.as_dict()["answers"]) if rec else None


def items(scope: str, customer_id: str) -> list[dict[str, Any]]:
    """Everything in the customer's partition (profile, answers): the export reads it whole."""
    return [{"sk": r.sk, "kind": r.kind, "at": r.at, **r.doc.as_dict()}
            for r in PersonRecord.query(person_pk(scope, customer_id), consistent_read=True)]


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
