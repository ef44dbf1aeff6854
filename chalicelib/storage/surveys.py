"""Surveys and their responses in the `loyalty` table. Every call takes the tenant (or scope) explicitly.

<tid>#surveys                   / survey#<sid>          the definition, versioned
<tid>#surveys                   / stats#<sid>#<k>       result counters, in SHARDS items (k = 00..15): responses
                                                        add to one shard, so a busy survey is not one hot item
<scope>#customer#<cid>          / survey#<sid>#<rid>    a response summary: non-personal answers only, the
                                                        receipt/store of a feedback invitation, the reward;
                                                        listed by survey through gsi1 `<tid>#survey#<sid>` /
                                                        `<at>#<rid>`
<tid>#survey-answers#<sid>#<rid> / survey#<sid>#<rid>  a response kept as answers only (no customer: unverified
                                                        or anonymous), listed through gsi1 like the others
<scope>#customer#<cid>          / survey-reward#<sid>   the reward marker: one reward per customer per survey
<tid>#survey-invitation#<sid>#<receipt> / used          one response per post-purchase invitation
<tid>#survey-rate#<sid>#<ip sha256> / window#<hour>     responses from one address in one hour (TTL)

Personal answers (free text, dates, phones, e-mails, anything filling a
personal profile field) are never written here: they go to the personal-data
table (storage/people.add_answers).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pynamodb.exceptions import DeleteError, PutError

from chalicelib.storage import pagination, transactions
from chalicelib.storage.customers import customer_pk, move_items
from chalicelib.storage.documents.common import Versioned, raw
from chalicelib.storage.documents.survey import InvitationUse, ResponseDoc, RewardMarker, SurveyDoc
from chalicelib.storage.pagination import StoredPage
from chalicelib.storage.tables import AuditRecord, LoyaltyRecord, count_in_window, get_item
from chalicelib.storage.transactions import TransactionFailed, Tx

SHARDS = 16
COUNTERS_PER_UPDATE = 150
"""Counter ADDs per update expression (well inside DynamoDB's 4 KB expression limit)."""
SURVEY_KIND = "survey"
USED_SK = "used"


def surveys_pk(tenant_id: str) -> str:
    return f"{tenant_id}#surveys"


def survey_sk(survey_id: str) -> str:
    return f"survey#{survey_id}"


def stats_sk(survey_id: str, shard: int) -> str:
    return f"stats#{survey_id}#{shard:02d}"


def responses_index_pk(tenant_id: str, survey_id: str) -> str:
    return f"{tenant_id}#survey#{survey_id}"


def response_sk(survey_id: str, response_id: str) -> str:
    return f"survey#{survey_id}#{response_id}"


def response_pk(tenant_id: str, scope: str, customer_id: str | None, survey_id: str, response_id: str) -> str:
    """A customer's response lives with the customer; one from nobody in particular in a partition of its own."""
    if customer_id is None:
        return f"{tenant_id}#survey-answers#{survey_id}#{response_id}"
    return customer_pk(scope, customer_id)


def reward_sk(survey_id: str) -> str:
    return f"survey-reward#{survey_id}"


def invitation_pk(tenant_id: str, survey_id: str, receipt_id: str) -> str:
    return f"{tenant_id}#survey-invitation#{survey_id}#{receipt_id}"


def rate_pk(tenant_id: str, survey_id: str, address_hash: str) -> str:
    return f"{tenant_id}#survey-rate#{survey_id}#{address_hash}"


# --- definitions ------------------------------------------------------------------------

def get_survey(tenant_id: str, survey_id: str) -> Versioned[SurveyDoc] | None:
    rec = get_item(LoyaltyRecord, surveys_pk(tenant_id), survey_sk(survey_id))
    return Versioned(SurveyDoc.of(rec.doc), int(rec.version)) if rec else None


def add_survey(tenant_id: str, survey_id: str, doc: SurveyDoc, at: datetime, audit_rec: AuditRecord) -> bool:
    """The definition, its empty counter shards and the audit entry in one transaction; False if the id is taken."""

    def build(tx: Tx) -> None:
        tx.save(LoyaltyRecord(surveys_pk(tenant_id), survey_sk(survey_id), kind=SURVEY_KIND, doc=doc.dump(),
                              version=1, at=at), condition=LoyaltyRecord.pk.does_not_exist())
        for shard in range(SHARDS):
            tx.save(LoyaltyRecord(surveys_pk(tenant_id), stats_sk(survey_id, shard), kind="survey_stats",
                                  doc={"n": 0}, at=at), condition=LoyaltyRecord.pk.does_not_exist())
        tx.save(audit_rec)

    return transactions.written(build)


def replace_survey(tenant_id: str, survey_id: str, doc: SurveyDoc, version: int, at: datetime,
                   audit_rec: AuditRecord) -> bool:
    """Replace the definition read at `version`, with its audit entry; False if it changed since."""

    def build(tx: Tx) -> None:
        tx.save(LoyaltyRecord(surveys_pk(tenant_id), survey_sk(survey_id), kind=SURVEY_KIND, doc=doc.dump(),
                              version=version + 1, at=at), condition=LoyaltyRecord.version == version)
        tx.save(audit_rec)

    return transactions.written(build)


def list_surveys(tenant_id: str, limit: int, cursor: str | None) -> StoredPage[SurveyDoc]:
    """The tenant's surveys by id."""
    pk = surveys_pk(tenant_id)
    records, next_cursor = pagination.page_of(
        lambda size, start: LoyaltyRecord.query(pk, LoyaltyRecord.sk.startswith("survey#"), limit=size,
                                                page_size=size, last_evaluated_key=start, consistent_read=True),
        limit=limit, cursor=cursor, hash_attr="pk", hash_value=pk, key_attrs=("pk", "sk"),
    )
    return StoredPage([SurveyDoc.of(r.doc) for r in records], next_cursor)


def counters(tenant_id: str, survey_id: str) -> dict[str, int]:
    """The survey's result counters, summed over the shards (strongly consistent)."""
    total: dict[str, int] = {}
    for rec in LoyaltyRecord.query(surveys_pk(tenant_id), LoyaltyRecord.sk.startswith(f"stats#{survey_id}#"),
                                   consistent_read=True):
        for key, value in raw(rec.doc).items():
            total[key] = total.get(key, 0) + int(value)
    return total


# --- responses ------------------------------------------------------------------------------

def record_response(tenant_id: str, scope: str, customer_id: str | None, survey_id: str, response_id: str,
                    summary: ResponseDoc, counter_keys: list[str], shard: int, invitation_receipt: str | None,
                    at: datetime) -> bool:
    """The summary, the counters and (for an invitation) its one-use marker, all or nothing.

    Counters go to shard `shard` (and the next ones when a response has more
    than COUNTERS_PER_UPDATE of them: one transaction never touches an item
    twice). False when the invitation was already used or a response with
    this id is already recorded (a replay).
    """
    chunks = [counter_keys[i:i + COUNTERS_PER_UPDATE] for i in range(0, len(counter_keys), COUNTERS_PER_UPDATE)]
    if len(chunks) > SHARDS:
        raise ValueError("too many counters for one response")

    def build(tx: Tx) -> None:
        if invitation_receipt is not None:
            tx.save(LoyaltyRecord(invitation_pk(tenant_id, survey_id, invitation_receipt), USED_SK,
                                  kind="survey_invitation", doc=InvitationUse(response_id=response_id).dump(), at=at),
                    condition=LoyaltyRecord.pk.does_not_exist())
        tx.save(LoyaltyRecord(response_pk(tenant_id, scope, customer_id, survey_id, response_id),
                              response_sk(survey_id, response_id), kind="survey_response", doc=summary.dump(), at=at,
                              gsi1pk=responses_index_pk(tenant_id, survey_id),
                              gsi1sk=f"{at.isoformat()}#{response_id}"),
                condition=LoyaltyRecord.pk.does_not_exist())
        for offset, keys in enumerate(chunks):
            tx.update(LoyaltyRecord(surveys_pk(tenant_id), stats_sk(survey_id, (shard + offset) % SHARDS)),
                      actions=[LoyaltyRecord.doc[key].add(1) for key in keys], condition=LoyaltyRecord.pk.exists())

    try:
        transactions.write(build)
    except TransactionFailed as err:
        marker_and_summary = 2 if invitation_receipt is not None else 1
        if any(err.condition_failed(i) for i in range(marker_and_summary)):
            return False
        raise
    return True


def invitation_used(tenant_id: str, survey_id: str, receipt_id: str) -> bool:
    return get_item(LoyaltyRecord, invitation_pk(tenant_id, survey_id, receipt_id), USED_SK) is not None


def set_response_reward(scope: str, customer_id: str, survey_id: str, response_id: str,
                        reward: dict[str, Any]) -> None:
    """What the response earned, once the reward step is over."""
    LoyaltyRecord(customer_pk(scope, customer_id), response_sk(survey_id, response_id)).update(
        actions=[LoyaltyRecord.doc["reward"].set(reward)], condition=LoyaltyRecord.pk.exists())


def _response(rec: LoyaltyRecord) -> ResponseDoc:
    doc = ResponseDoc.of(rec.doc)
    doc.at = rec.at.isoformat()
    return doc


def responses_of(scope: str, customer_id: str) -> list[ResponseDoc]:
    """Every response summary of one customer (the data subject's export): survey_id, response_id, at, answers..."""
    return [_response(r) for r in LoyaltyRecord.query(customer_pk(scope, customer_id),
                                                      LoyaltyRecord.sk.startswith("survey#"), consistent_read=True)]


def reward_markers(scope: str, customer_id: str) -> list[tuple[str, RewardMarker]]:
    """Every survey reward marker of one customer, (survey id, marker): the rewards the member site lists."""
    prefix = reward_sk("")
    return [(rec.sk[len(prefix):], RewardMarker.of(rec.doc)) for rec in LoyaltyRecord.query(
        customer_pk(scope, customer_id), LoyaltyRecord.sk.startswith(prefix), consistent_read=True)]


def list_responses(tenant_id: str, survey_id: str, limit: int, cursor: str | None
                   ) -> StoredPage[ResponseDoc]:
    """One page of a survey's response summaries, oldest first, through gsi1 (eventually consistent)."""
    hash_value = responses_index_pk(tenant_id, survey_id)
    records, next_cursor = pagination.page_of(
        lambda size, start: LoyaltyRecord.due_and_partner.query(hash_value, limit=size, page_size=size,
                                                                last_evaluated_key=start),
        limit=limit, cursor=cursor, hash_attr="gsi1pk", hash_value=hash_value,
        key_attrs=("gsi1pk", "gsi1sk", "pk", "sk"),
    )
    return StoredPage([_response(r) for r in records], next_cursor)


# --- rewards ----------------------------------------------------------------------------------

def claim_reward(scope: str, customer_id: str, survey_id: str, doc: RewardMarker, at: datetime
                 ) -> RewardMarker | None:
    """Write the reward marker if the customer has none for this survey: None when claimed, else the existing one."""
    try:
        LoyaltyRecord(customer_pk(scope, customer_id), reward_sk(survey_id), kind="survey_reward", doc=doc.dump(),
                      at=at).save(condition=LoyaltyRecord.pk.does_not_exist())
        return None
    except PutError as err:
        if err.cause_response_code != "ConditionalCheckFailedException":
            raise
    rec = get_item(LoyaltyRecord, customer_pk(scope, customer_id), reward_sk(survey_id))
    return RewardMarker.of(rec.doc) if rec else claim_reward(scope, customer_id, survey_id, doc, at)


def take_over_reward(scope: str, customer_id: str, survey_id: str, lease_read: str, doc: RewardMarker,
                     at: datetime) -> bool:
    """Take a pending marker whose lease ran out (its request died halfway); False if another request did."""
    try:
        LoyaltyRecord(customer_pk(scope, customer_id), reward_sk(survey_id), kind="survey_reward", doc=doc.dump(),
                      at=at).save(condition=(LoyaltyRecord.doc["status"] == "pending")
                                  & (LoyaltyRecord.doc["lease_until"] == lease_read))
    except PutError as err:
        if err.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise
    return True


def finish_reward(scope: str, customer_id: str, survey_id: str, doc: RewardMarker, at: datetime) -> None:
    LoyaltyRecord(customer_pk(scope, customer_id), reward_sk(survey_id), kind="survey_reward", doc=doc.dump(),
                  at=at).save()


def release_reward(scope: str, customer_id: str, survey_id: str) -> None:
    """Drop a pending marker whose grant was refused, so a later response may earn the reward."""
    try:
        LoyaltyRecord(customer_pk(scope, customer_id), reward_sk(survey_id)).delete(
            condition=LoyaltyRecord.doc["status"] == "pending")
    except DeleteError as err:
        if err.cause_response_code != "ConditionalCheckFailedException":
            raise


# --- rate limit ---------------------------------------------------------------------------------

def count_hit(tenant_id: str, survey_id: str, address_hash: str, window: int, limit: int, expires_at_epoch: int,
              at: datetime) -> bool:
    """Count one response from an address in a fixed window; False (nothing counted) once `limit` is reached."""
    return count_in_window(rate_pk(tenant_id, survey_id, address_hash), window, "survey_rate", limit,
                           expires_at_epoch, at)


def move_responses(scope: str, from_customer: str, to_customer: str) -> int:
    """Merging duplicates: move one customer's response summaries and reward markers to another; how many moved
    (the kept customer's own reward marker for a survey wins)."""

    def owned_by_kept(doc: dict[str, Any]) -> dict[str, Any]:
        return {**doc, "customer_id": to_customer} if "customer_id" in doc else doc

    return move_items(scope, from_customer, to_customer, "survey", owned_by_kept)
