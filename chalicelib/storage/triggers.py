"""Trigger settings and the daily run's state, in the loyalty table.

<tid>#mail-triggers / program#<program id>   doc: the program's TriggerSettings (JSON form)
<tid>#mail-triggers / run#<program id>       doc: {day_queued, last_run}: the program's daily run
<tid>#trigger-sends#<pid>#<kind> / <queued at ISO>#<dedup key>   a message the run queued (120-day TTL), newest
                                             last: what the console shows as "what was sent"
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from pynamodb.exceptions import UpdateError

from chalicelib.storage import pagination
from chalicelib.storage.documents.trigger import TriggerRunState, TriggerSendDoc, TriggerSettingsDoc
from chalicelib.storage.pagination import StoredPage
from chalicelib.storage.tables import LoyaltyRecord, condition_failed, get_item

RUN_PREFIX = "run#"
PROGRAM_PREFIX = "program#"


def triggers_pk(tenant_id: str) -> str:
    return f"{tenant_id}#mail-triggers"


def _settings(rec: LoyaltyRecord) -> TriggerSettingsDoc:
    doc = TriggerSettingsDoc.of(rec.doc)
    doc.updated_at = rec.at
    return doc


def get_settings(tenant_id: str, program_id: str) -> TriggerSettingsDoc | None:
    """The program's trigger settings (with `updated_at`, the record's time), or None if never saved."""
    rec = get_item(LoyaltyRecord, triggers_pk(tenant_id), PROGRAM_PREFIX + program_id)
    return _settings(rec) if rec else None


def put_settings(tenant_id: str, program_id: str, doc: TriggerSettingsDoc, at: datetime) -> None:
    LoyaltyRecord(triggers_pk(tenant_id), PROGRAM_PREFIX + program_id, kind="mail_triggers", doc=doc.dump(),
                  at=at).save()


def all_settings(tenant_id: str) -> dict[str, TriggerSettingsDoc]:
    """Every program's trigger settings of the tenant: program id -> settings (a handful of items)."""
    return {rec.sk.removeprefix(PROGRAM_PREFIX): _settings(rec)
            for rec in LoyaltyRecord.query(triggers_pk(tenant_id), LoyaltyRecord.sk.startswith(PROGRAM_PREFIX),
                                           consistent_read=True)}


def _ensure(record: LoyaltyRecord) -> None:
    """Create the run record with an empty doc if missing (nested paths can only be set inside an existing doc)."""
    record.update(actions=[LoyaltyRecord.doc.set(LoyaltyRecord.doc | {}), LoyaltyRecord.kind.set("mail_trigger_run")])


def claim_day(tenant_id: str, program_id: str, day: date, at: datetime) -> bool:
    """Mark `day`'s run as queued unless it (or a later day) already is: one run per program per local day."""
    record = LoyaltyRecord(triggers_pk(tenant_id), RUN_PREFIX + program_id)
    _ensure(record)
    queued = LoyaltyRecord.doc["day_queued"]
    try:
        record.update(actions=[queued.set(day.isoformat()), LoyaltyRecord.at.set(at)],
                      condition=queued.does_not_exist() | (queued < day.isoformat()))
        return True
    except UpdateError as err:
        if condition_failed(err):
            return False
        raise


def save_run(tenant_id: str, program_id: str, run: dict[str, Any], at: datetime) -> None:
    """The latest run's figures (what GET triggers shows); the day claim is left as it is."""
    record = LoyaltyRecord(triggers_pk(tenant_id), RUN_PREFIX + program_id)
    _ensure(record)
    record.update(actions=[LoyaltyRecord.doc["last_run"].set(run), LoyaltyRecord.at.set(at)])


def run_state(tenant_id: str, program_id: str) -> TriggerRunState:
    rec = get_item(LoyaltyRecord, triggers_pk(tenant_id), RUN_PREFIX + program_id)
    return TriggerRunState.of(rec.doc) if rec else TriggerRunState()


# --- what the runs queued ------------------------------------------------------------------

SENDS_TTL = timedelta(days=120)
"""As long as the delivery records that hold the outcome."""


def sends_pk(tenant_id: str, program_id: str, kind: str) -> str:
    return f"{tenant_id}#trigger-sends#{program_id}#{kind}"


@dataclass(frozen=True)
class TriggerSendRow:
    queued_at: datetime
    doc: TriggerSendDoc


def log_sends(tenant_id: str, sends: list[tuple[str, str, TriggerSendDoc]], at: datetime) -> None:
    """Record the messages a run queued: (program id, kind, send) each, in batches."""
    expires = int((at + SENDS_TTL).timestamp())
    with LoyaltyRecord.batch_write() as batch:
        for program_id, kind, doc in sends:
            batch.save(LoyaltyRecord(sends_pk(tenant_id, program_id, kind), f"{at.isoformat()}#{doc.dedup_key}",
                                     kind="trigger_send", doc=doc.dump(), at=at, expires_at_epoch=expires))


def recent_sends(tenant_id: str, program_id: str, kind: str, limit: int, cursor: str | None
                 ) -> StoredPage[TriggerSendRow]:
    """The messages one trigger of a program queued, newest first."""
    pk = sends_pk(tenant_id, program_id, kind)
    records, next_cursor = pagination.page_of(
        lambda size, start: LoyaltyRecord.query(pk, limit=size, page_size=size, last_evaluated_key=start,
                                                scan_index_forward=False),
        limit=limit, cursor=cursor, hash_attr="pk", hash_value=pk, key_attrs=("pk", "sk"),
    )
    return StoredPage([TriggerSendRow(rec.at, TriggerSendDoc.of(rec.doc)) for rec in records], next_cursor)
