"""Trigger messages: per-program settings, the hourly start of each program's daily run, and the run itself.

Start. An hourly schedule calls `start_due`: for every active tenant's program
with a trigger on, once the program's `send_time` has passed in the tenant's
time zone, the local day is claimed (a conditional write, so one run per
program per day however often the schedule fires) and a `triggers.run` job is
queued. A run missed by an outage starts at the next hour.

Run. The job walks the tenant's customers (16 index shards, pages of PAGE)
and asks the pure rules (`domain.triggers.due`) which triggers fire for each.
A fire whose message already exists (its delivery record, keyed by the dedup
key) is skipped, so overlapping windows and repeated runs cost a read, not a
message. Birthday points and coupons are granted before the message is queued,
each idempotent on its own key, so a retried run grants nothing twice. The
job stops on its time budget and re-queues itself with its position.

Messages carry `source = {kind: trigger, id: <program>.<kind>, occasion}`; the
per-source counters give the sent / failed / suppressed figures per trigger. Each queued message is also
logged by program and trigger (the customer by id only), so `sent` can list a trigger's messages newest first
with their delivery's outcome: what the console shows as "what was sent".
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from chalicelib import clock
from chalicelib.domain import customers as customer_rules
from chalicelib.domain import delivery_rules
from chalicelib.domain import triggers as rules
from chalicelib.domain.cards import CardState
from chalicelib.errors import ApiError, ErrorDetail, not_found
from chalicelib.observability import logger
from chalicelib.schemas.mail import DeliveryCounts
from chalicelib.schemas.pos import AdjustmentIn
from chalicelib.schemas.surveys import InvitationIn
from chalicelib.schemas.tenancy import Program, TenantStatus
from chalicelib.schemas.triggers import TriggerRun, TriggerSettings, TriggerSettingsOut
from chalicelib.services.customers import customers, surveys
from chalicelib.services.marketing import delivery, mail_settings, templates
from chalicelib.services.pos import cards
from chalicelib.services.program import catalog, coupons
from chalicelib.settings import settings
from chalicelib.storage import audit, deliveries, directory, loyalty, purchase_log, queues
from chalicelib.storage import customers as records
from chalicelib.storage import triggers as store
from chalicelib.storage.documents.customer import CustomerDoc
from chalicelib.storage.documents.trigger import TriggerSendDoc, TriggerSettingsDoc, TriggerSpec

RUN_JOB = "triggers.run"
BUDGET_SECONDS = 10.0
PAGE = 100
SHARDS = customer_rules.SHARDS
TIER_ENTRIES = 20
"""Newest ledger entries read to find the tier a card had before its current one."""
ACTOR = "system:triggers"


@dataclass
class RunProgress:
    done: bool
    position: list[Any] | None = None
    customers: int = 0
    queued: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    skipped: bool = False
    """No such active tenant, program or trigger settings: nothing ran, and no run is recorded."""


def get(tenant_id: str, program_id: str) -> TriggerSettingsOut:
    """The program's trigger settings (all off until saved), counts per trigger and the last run."""
    program = _program(tenant_id, program_id)
    stored = store.get_settings(tenant_id, program.id)
    spec = TriggerSettings.model_validate(stored.dump()) if stored else TriggerSettings()
    last = store.run_state(tenant_id, program.id).last_run
    return TriggerSettingsOut(**spec.model_dump(), program_id=program.id,
                              updated_at=stored.updated_at if stored else None,
                              stats=_stats(tenant_id, program.id),
                              last_run=TriggerRun.model_validate(last) if last else None)


def put(tenant_id: str, program_id: str, spec: TriggerSettings, actor: str) -> TriggerSettingsOut:
    """Save the program's trigger settings (templates and campaigns checked), audited; answers as `get` does."""
    program = _program(tenant_id, program_id)
    _check(tenant_id, spec)
    at = clock.now()
    store.put_settings(tenant_id, program.id, TriggerSettingsDoc.load(spec.model_dump(mode="json")), at)
    audit.put(audit.entry(tenant_id, action="triggers.updated", actor=actor, at=at, target=f"program:{program.id}",
                          detail={"enabled": ",".join(k for k in rules.KINDS if getattr(spec, k).enabled)}))
    return get(tenant_id, program.id)


def start_due(now: datetime) -> list[tuple[str, str, date]]:
    """Queue today's run of every program whose send time has passed locally and whose day is not yet claimed."""
    started = []
    for tenant in catalog.active_tenants():
        programs = {pid: doc for pid, doc in store.all_settings(tenant.tenant_id).items() if _enabled(doc)}
        if not programs:
            continue
        tz = ZoneInfo(tenant.timezone)
        for program_id, doc in programs.items():
            day = rules.local_run_day(now, tz, doc.send_time)
            if day is not None and store.claim_day(tenant.tenant_id, program_id, day, now):
                queues.send(settings.jobs_queue, job_message(tenant.tenant_id, program_id, day))
                started.append((tenant.tenant_id, program_id, day))
    logger.info("trigger runs queued", extra={"runs": len(started)})
    return started


def handle_job(message: dict[str, Any], budget_seconds: float = BUDGET_SECONDS) -> None:
    """The jobs worker's entry: run for a while, then hand the rest (and the running totals) to a new message."""
    tenant_id, program_id = str(message["tenant_id"]), str(message["program_id"])
    day = date.fromisoformat(str(message["day"]))
    totals = message.get("totals") or {"customers": 0, "queued": 0, "by_kind": {},
                                       "started_at": clock.now().isoformat()}
    progress = run_program(tenant_id, program_id, message.get("position"), budget_seconds=budget_seconds)
    if progress.skipped:  # a deleted tenant's or a forged message: a run record would be an orphan no purge finds
        logger.info("trigger run skipped", extra={"tenant_id": tenant_id, "program_id": program_id})
        return
    totals = {**_merge(totals, progress), "started_at": totals.get("started_at", clock.now().isoformat())}
    if not progress.done:
        queues.send(settings.jobs_queue, job_message(tenant_id, program_id, day, progress.position, totals))
        return
    run = TriggerRun(day=day, started_at=datetime.fromisoformat(str(totals["started_at"])),
                     finished_at=clock.now(), customers=totals["customers"], queued=totals["queued"],
                     by_kind=totals["by_kind"])
    store.save_run(tenant_id, program_id, run.model_dump(mode="json"), clock.now())
    logger.info("trigger run done", extra={"tenant_id": tenant_id, "program_id": program_id,
                                           "customers": run.customers, "queued": run.queued})


def run_now(tenant_id: str, program_id: str) -> TriggerRun:
    """The whole run in this process (the local stack's `cli triggers`, tests): today's local day, to the end."""
    now = clock.now()
    day = now.astimezone(ZoneInfo(catalog.timezone(tenant_id))).date()
    progress = run_program(tenant_id, program_id)
    run = TriggerRun(day=day, started_at=now, finished_at=clock.now(), customers=progress.customers,
                     queued=progress.queued, by_kind=progress.by_kind)
    store.save_run(tenant_id, program_id, run.model_dump(mode="json"), clock.now())
    return run


@dataclass(frozen=True)
class SentMessage:
    """One message a trigger queued, as the tenant admin sees it: no personal data but the customer's id."""

    queued_at: datetime
    customer_id: str
    channel: str
    template_id: str | None
    occasion: str
    status: str
    """queued (not picked up yet) | sending | sent | suppressed | failed"""
    reason: str | None = None
    """Why suppressed or failed: the reason's code only (a provider's text may hold the address)."""
    at: datetime | None = None
    """When the outcome was recorded."""


def sent(tenant_id: str, program_id: str, kind: str, limit: int, cursor: str | None
         ) -> tuple[list[SentMessage], str | None]:
    """The messages one trigger of the program queued, newest first, each with its delivery's outcome."""
    program = _program(tenant_id, program_id)
    if kind not in rules.KINDS:
        raise not_found("Trigger")
    rows, next_cursor = store.recent_sends(tenant_id, program.id, kind, limit, cursor)
    out = []
    for row in rows:
        doc = row.doc
        outcome = deliveries.get_delivery(tenant_id, doc.dedup_key)
        out.append(SentMessage(
            queued_at=row.queued_at, customer_id=doc.customer_id, channel=doc.channel, template_id=doc.template_id,
            occasion=doc.occasion, status=outcome.state if outcome else "queued",
            reason=outcome.reason.split(":", 1)[0] if outcome and outcome.reason else None,
            at=datetime.fromisoformat(outcome.at) if outcome and outcome.at else None))
    return out, next_cursor


# --- settings ---------------------------------------------------------------------------

def source_id(program_id: str, kind: str) -> str:
    return f"{program_id}.{kind}"


# --- the hourly start -------------------------------------------------------------------

def job_message(tenant_id: str, program_id: str, day: date, position: list[Any] | None = None,
                totals: dict[str, Any] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"job": RUN_JOB, "tenant_id": tenant_id, "program_id": program_id,
                               "day": day.isoformat()}
    if position is not None:
        message["position"] = position
    if totals is not None:
        message["totals"] = totals
    return message


# --- the run --------------------------------------------------------------------------

def run_program(tenant_id: str, program_id: str, position: list[Any] | None = None, *,
                budget_seconds: float | None = None) -> RunProgress:
    """Run the program's triggers over the tenant's customers from `position`, until done or out of budget
    (checked after each page that held customers, so every run makes progress)."""
    progress = RunProgress(done=False)
    tenant = directory.get_tenant(tenant_id)
    stored = store.get_settings(tenant_id, program_id)
    program = catalog.program_at(tenant_id, program_id, clock.now())
    if tenant is None or tenant.status is not TenantStatus.ACTIVE or stored is None or program is None:
        progress.done = progress.skipped = True
        return progress
    specs = {kind: spec for kind, spec in stored.triggers().items() if spec.enabled}
    on = {kind: spec.dump() for kind, spec in specs.items()}
    tz = ZoneInfo(tenant.timezone)
    deadline = None if budget_seconds is None else time.monotonic() + budget_seconds
    scope = tenant_id
    for rows, after in _walk(scope, position or [0, None]):
        now = clock.now()
        messages = []
        for customer_id, doc in rows:
            progress.customers += 1
            snap = _snapshot(scope, customer_id, doc, program, on, now)
            for fire in rules.due(snap, program.id, on, now, tz):
                message = _message(tenant_id, scope, customer_id, fire, specs[fire.kind], now)
                if message is not None:
                    messages.append(message)
                    progress.by_kind[fire.kind] = progress.by_kind.get(fire.kind, 0) + 1
        for start in range(0, len(messages), 10):
            queues.send_batch(settings.mail_queue, messages[start:start + 10])
        if messages:
            _log_sends(tenant_id, messages, now)  # after they are queued: a log never lists what was not sent
        progress.queued += len(messages)
        if after is None:
            progress.done = True
            return progress
        if progress.customers and deadline is not None and time.monotonic() >= deadline:
            progress.position = after
            return progress
    progress.done = True
    return progress


# --- helpers --------------------------------------------------------------------------------------------

def _program(tenant_id: str, program_id: str) -> Program:
    """A program of the tenant's own scope (a coalition's shared programs are the coalition's to mail)."""
    program = catalog.program_at(tenant_id, program_id, clock.now())
    if program is None:
        raise not_found("Program")
    return program


def _unprocessable(code: str, message: str, field_name: str) -> ApiError:
    return ApiError(422, code, message, [ErrorDetail(field_name, message)])


def _check(tenant_id: str, spec: TriggerSettings) -> None:
    """Everything the settings name exists and fits: templates of the right channel, the coupon campaign, a
    feedback survey; and SMS triggers run outside the quiet hours, where they would all be suppressed."""
    quiet = mail_settings.get(tenant_id).quiet_hours
    for kind in rules.KINDS:
        trigger = getattr(spec, kind)
        if not trigger.enabled:
            continue
        template = templates.get(tenant_id, trigger.template_id)
        if template.channel != trigger.channel:
            raise _unprocessable("template_channel", f"Template {trigger.template_id!r} is for {template.channel}, "
                                 f"the {kind} trigger sends {trigger.channel}.", f"{kind}.template_id")
        if trigger.channel == "sms" and delivery_rules.in_quiet_hours(
                datetime.strptime(spec.send_time, "%H:%M").time(), quiet.start, quiet.end):
            raise _unprocessable("send_time_in_quiet_hours", f"{spec.send_time} is inside the SMS quiet hours "
                                 f"({quiet.start}-{quiet.end}): every SMS would be suppressed.", "send_time")
    if spec.birthday.enabled and spec.birthday.coupon_campaign_id:
        coupons.get(tenant_id, spec.birthday.coupon_campaign_id)
    if spec.feedback.enabled and spec.feedback.survey_id:
        survey = surveys.get(tenant_id, spec.feedback.survey_id)
        if survey.kind != "feedback":
            raise _unprocessable("not_a_feedback_survey", f"Survey {survey.id!r} is not a feedback survey.",
                                 "feedback.survey_id")


def _stats(tenant_id: str, program_id: str) -> dict[str, DeliveryCounts]:
    """Outcome counters per trigger that has sent anything."""
    out = {kind: delivery.counts(tenant_id, "trigger", source_id(program_id, kind)) for kind in rules.KINDS}
    return {kind: counts for kind, counts in out.items() if counts != DeliveryCounts()}


def _enabled(doc: TriggerSettingsDoc) -> bool:
    return any(spec.enabled for spec in doc.triggers().values())


def _previous_tier(scope: str, card: CardState) -> str | None:
    entries, _ = loyalty.list_entries(scope, card.number, TIER_ENTRIES, None)
    for entry in entries:
        if entry.type == "tier" and entry.tier == card.tier:
            return entry.previous_tier
    return None


def _snapshot(scope: str, customer_id: str, doc: CustomerDoc, program: Program, on: dict[str, Any],
              now: datetime) -> rules.Snapshot:
    """Read only what the enabled triggers need: the program's cards, the birth date, recent receipts."""
    numbers = [n for n, p in records.card_links(scope, customer_id) if p == program.id]
    found = (loyalty.get_card(scope, number) for number in numbers)
    cards_now = [card for card in found if card is not None]
    birth_date = None
    if "birthday" in on and cards_now:
        raw = customers.person(scope, customer_id).birth_date
        birth_date = date.fromisoformat(str(raw)) if raw else None
    purchases: list[rules.Purchase] = []
    since = now - timedelta(days=rules.CATCH_UP_DAYS)
    last = doc.stats.last_purchase_at
    if "feedback" in on and cards_now and last and datetime.fromisoformat(str(last)) > since:
        net: dict[str, tuple[datetime, int]] = {}
        for entry in purchase_log.between(scope, customer_id, since, now + timedelta(seconds=1)):
            net[entry.receipt_id] = (entry.purchased_at, net.get(entry.receipt_id, (now, 0))[1] + entry.total)
        purchases = [rules.Purchase(receipt_id, at, total) for receipt_id, (at, total) in net.items()]
    previous: dict[str, str | None] = {}
    if "tier_upgrade" in on:
        for card in cards_now:
            if card.tiers.since is not None and since < card.tiers.since <= now:
                previous[card.number] = _previous_tier(scope, card)
    ranks = {program.id: {t.id: i for i, t in enumerate(program.tiers.levels)}} if program.tiers else {}
    return rules.Snapshot(customer_id, doc.plain(), cards_now, birth_date, purchases, ranks, previous)


def _adjustment_id(fire: rules.Fire, customer_id: str) -> str:
    plain = f"bday-{fire.program_id}-{fire.occasion}-{customer_id}"
    return plain if len(plain) <= 64 else "bday-" + hashlib.sha256(plain.encode()).hexdigest()[:48]


def _birthday_gifts(tenant_id: str, scope: str, spec: TriggerSpec, fire: rules.Fire, customer_id: str,
                    now: datetime) -> tuple[str | None, dict[str, str | int]]:
    """Points and a coupon code for the birthday, each exactly once per customer per program per year."""
    extra: dict[str, str | int] = {}
    points = int(spec.bonus_points or 0)
    if points and fire.card_number:
        cards.adjust(tenant_id, fire.card_number,
                     AdjustmentIn(adjustment_id=_adjustment_id(fire, customer_id), points=points,
                                  reason=f"birthday {fire.occasion}"), ACTOR)
        extra["bonus_points"] = points
    code = None
    if spec.coupon_campaign_id:
        code = coupons.grant_code(tenant_id, spec.coupon_campaign_id, customer_id,
                                  f"trigger:birthday:{fire.program_id}:{fire.occasion}:{customer_id}", now,
                                  source="trigger", origin="birthday", scope=scope)
    return code, extra


def _survey_url(tenant_id: str, survey_id: str, receipt_id: str) -> str:
    invitation = surveys.invite(tenant_id, survey_id, InvitationIn(receipt_id=receipt_id))[1]
    return settings.public_base_url.rstrip("/") + invitation.url_path


def _message(tenant_id: str, scope: str, customer_id: str, fire: rules.Fire, spec: TriggerSpec, now: datetime
             ) -> dict[str, Any] | None:
    """The mail message of one fire, after its gifts; None when it already went out or cannot be made."""
    key = fire.dedup_key(customer_id)
    if deliveries.get_delivery(tenant_id, key) is not None:
        return None
    extra: dict[str, str | int] = dict(fire.extra)
    code = None
    try:
        if fire.kind == "birthday":
            code, gifts = _birthday_gifts(tenant_id, scope, spec, fire, customer_id, now)
            extra.update(gifts)
        if fire.kind == "feedback":
            extra["survey_url"] = _survey_url(tenant_id, str(spec.survey_id), fire.occasion)
    except ApiError as err:
        if err.status >= 500:
            raise
        logger.warning("trigger skipped", extra={"tenant_id": tenant_id, "customer_id": customer_id,
                                                 "trigger": fire.kind, "code": err.code})
        return None
    return {"v": 1, "tenant_id": tenant_id, "scope": scope, "customer_id": customer_id,
            "channel": spec.channel, "template_id": spec.template_id,
            "source": {"kind": "trigger", "id": source_id(fire.program_id, fire.kind), "occasion": fire.occasion},
            "dedup_key": key, "coupon_code": code, "extra": extra}


def _log_sends(tenant_id: str, messages: list[dict[str, Any]], at: datetime) -> None:
    """What the console's "what was sent" lists: one row per queued message, by program and trigger."""
    sends = []
    for message in messages:
        program_id, _, kind = str(message["source"]["id"]).rpartition(".")
        sends.append((program_id, kind, TriggerSendDoc(
            dedup_key=message["dedup_key"], customer_id=message["customer_id"], channel=message["channel"],
            template_id=message["template_id"], occasion=str(message["source"]["occasion"]))))
    try:
        store.log_sends(tenant_id, sends, at)
    except Exception:  # the messages are queued already: a run retried for a view would queue them again
        logger.exception("trigger sends not logged", extra={"tenant_id": tenant_id, "messages": len(sends)})


def _walk(scope: str, position: list[Any]) -> Iterator[tuple[list[records.CustomerRow], list[Any] | None]]:
    """Pages of the scope's customers from `position` ([shard, cursor]) with the position after each page."""
    shard, cursor = int(position[0]), position[1]
    while True:
        rows, cursor = records.list_page(scope, shard, PAGE, cursor)
        if cursor is None:
            shard, cursor = shard + 1, None
            if shard >= SHARDS:
                yield rows, None
                return
        yield rows, [shard, cursor]


def _merge(totals: dict[str, Any] | None, progress: RunProgress) -> dict[str, Any]:
    merged = dict(totals or {"customers": 0, "queued": 0, "by_kind": {}})
    merged["customers"] = int(merged["customers"]) + progress.customers
    merged["queued"] = int(merged["queued"]) + progress.queued
    by_kind = dict(merged.get("by_kind") or {})
    for kind, n in progress.by_kind.items():
        by_kind[kind] = int(by_kind.get(kind, 0)) + n
    merged["by_kind"] = by_kind
    return merged
