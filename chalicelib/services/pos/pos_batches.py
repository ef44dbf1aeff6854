"""Offline receipt batches: a till uploads what it sold while offline; the jobs worker replays it in order.

The upload is checked and stored at once (202): the envelope synchronously
(size, batch id reuse), each receipt on its own (an invalid one is recorded as
an error and the others go ahead). One job per batch then runs the valid
receipts by their own time (ties in upload order), which keeps each card's
receipts in order, through the same `purchases.purchase` and `refunds.refund`
the online routes use: the rules in force at the receipt's time apply, and
each receipt is exactly-once by its `receipt_id` (`refund_id`) there.

Duplicates. A receipt whose id was already processed before the upload, or
that repeats an earlier receipt of the batch, gets the original answer and is
reported `duplicate`; with a different body it is a `receipt_conflict`. The
ids already processed are read at upload, so a job redelivered after a crash
can tell its own earlier work (replayed answers to originals: `ok`) from real
duplicates.

Progress. The job keeps its position (in processing order) and the results in
the batch, saved every `CHECKPOINT_EVERY` receipts and when its time budget
runs out (then it re-enqueues itself). A run that dies between checkpoints is
redelivered and redoes the receipts since the last one: the purchases replay,
and their results are written again, the same.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from chalicelib import clock
from chalicelib.domain import pos_batches as rules
from chalicelib.domain.principal import Principal
from chalicelib.errors import ApiError, ErrorDetail, conflict, not_found
from chalicelib.observability import logger
from chalicelib.schemas.pos import PurchaseIn, PurchaseResult, RefundIn, RefundResult
from chalicelib.schemas.pos_batches import (
    BatchAccepted,
    BatchCounts,
    BatchIn,
    BatchReceipt,
    BatchStatus,
    BatchSummary,
    PurchaseSummary,
    RefundSummary,
    RefundTime,
    error_details,
)
from chalicelib.services.pos import purchases, refunds
from chalicelib.settings import settings
from chalicelib.storage import pos_batches as store
from chalicelib.storage import queues
from chalicelib.storage.documents.pos_batches import BatchHeader

PROCESS_JOB = "pos_batch.process"
BUDGET_SECONDS = 40.0
"""Work per job run: the jobs worker's Lambda times out at 60 s, and one receipt may retry a busy card for 2.5 s."""
CHECKPOINT_EVERY = 25
"""Receipts between two saves of the position and results (what a crash makes the next run redo)."""
CHUNK_BYTES = 300_000
"""Receipts stored per item: well under DynamoDB's 400 KB item limit."""
RECEIPTS_PER_CHUNK = 50
BATCH_ID = r"^[A-Za-z0-9._:-]{1,64}$"


@dataclass
class Valid:
    kind: str
    key: str
    """The receipt's exactly-once id: `receipt_id` of a purchase, `refund_id` of a refund."""
    body: dict[str, Any]
    """What is passed to the purchase or refund, exactly as checked (re-parsed by the job)."""
    at: datetime
    receipt_id: str
    refund_id: str | None


def status_url(batch_id: str) -> str:
    """Where the till polls the batch's progress (returned with the 202)."""
    return f"/v1/pos/batches/{batch_id}"


def job_message(tenant_id: str, batch_id: str) -> dict[str, str]:
    """The jobs-queue message that processes (or carries on processing) one batch."""
    return {"job": PROCESS_JOB, "tenant_id": tenant_id, "batch_id": batch_id}


def fingerprint(body: BatchIn, principal: Principal) -> str:
    """The upload, independent of JSON formatting and key order, and the store its key is bound to."""
    canonical = json.dumps({"body": body.model_dump(mode="json"), "bound_store": principal.store_id},
                           sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


# --- one receipt of an upload ----------------------------------------------------------

def parse_receipt(raw: dict[str, Any], default_store: str | None, now: datetime) -> Valid | dict[str, Any]:
    """The receipt, checked as its online route would check it plus its own time; or the error to record."""
    kind = raw.get("kind")
    if kind not in ("purchase", "refund"):
        return _invalid("The receipt's kind is missing or unknown.",
                        [ErrorDetail("kind", "must be 'purchase' or 'refund'")])
    rest = {k: v for k, v in raw.items() if k != "kind"}
    at: datetime | None
    try:
        if kind == "purchase":
            if default_store is not None and "store_id" not in rest:
                rest["store_id"] = default_store
            purchase = PurchaseIn.model_validate_json(json.dumps(rest))
            at, key, receipt_id, refund_id = purchase.purchased_at, purchase.receipt_id, purchase.receipt_id, None
            where = "purchased_at"
            if at is None:
                return _invalid("An offline purchase needs its time.",
                                [ErrorDetail(where, "required: when the sale happened")])
        else:
            when = RefundTime.model_validate_json(json.dumps({"refunded_at": rest.pop("refunded_at", None)}))
            refund = RefundIn.model_validate_json(json.dumps(rest))
            at, key, receipt_id, refund_id = when.refunded_at, refund.refund_id, refund.receipt_id, refund.refund_id
            where = "refunded_at"
    except ValidationError as err:
        return _invalid("The receipt is invalid.", error_details(err))
    problem = rules.time_problem(at, now)
    if problem is not None:
        return _error(problem[0], problem[1], [ErrorDetail(where, problem[1])])
    body = rest if kind == "purchase" else {k: v for k, v in rest.items() if k != "refunded_at"}
    return Valid(kind, key, body, at, receipt_id, refund_id)


# --- upload ---------------------------------------------------------------------------

def accept(tenant_id: str, principal: Principal, body: BatchIn,
           actor: str) -> tuple[int, BatchAccepted, dict[str, str]]:
    """Check and store an upload, then queue its job (202); the same upload again answers what it is now (200)."""
    if len(body.receipts) > rules.MAX_RECEIPTS:
        raise ApiError(422, "batch_too_large", f"A batch holds at most {rules.MAX_RECEIPTS} receipts.",
                       [ErrorDetail("receipts", f"{len(body.receipts)} receipts; split the upload")])
    if body.store_id is not None:
        purchases.store_of(tenant_id, principal, body.store_id)
    print_ = fingerprint(body, principal)
    found = store.get(tenant_id, body.batch_id)
    if found is not None:
        return _existing(tenant_id, found.doc, print_)

    now = clock.now()
    parsed = [parse_receipt(raw, body.store_id, now) for raw in body.receipts]
    valid = [(i, p) for i, p in enumerate(parsed) if isinstance(p, Valid)]
    seen_receipts, seen_refunds = store.processed(
        tenant_id, [v.key for _, v in valid if v.kind == "purchase"], [v.key for _, v in valid if v.kind == "refund"])
    known = [i for i, v in valid if v.key in (seen_receipts if v.kind == "purchase" else seen_refunds)]
    entries = [_result_entry(i, raw, p) for i, (raw, p) in enumerate(zip(body.receipts, parsed, strict=True))]
    counts = rules.tally([e["status"] for e in entries])
    state = rules.batch_state(0, len(valid))
    header = BatchHeader(
        batch_id=body.batch_id, fingerprint=print_, tag=print_[:12], store_id=body.store_id,
        bound_store=principal.store_id, principal=principal.to_context(), actor=actor,
        created_at=now.isoformat(), completed_at=now.isoformat() if state == "done" else None,
        total=len(entries), to_process=len(valid), position=0, known=known, counts=counts,
        status=state,
    )
    if not store.create(tenant_id, body.batch_id, header, _receipt_chunks(valid), _result_chunks(entries), now):
        raced = store.get(tenant_id, body.batch_id)
        assert raced is not None, "a batch header is never deleted before it expires"
        return _existing(tenant_id, raced.doc, print_)
    if valid:
        queues.send(settings.jobs_queue, job_message(tenant_id, body.batch_id))
    logger.info("offline batch accepted", extra={"tenant_id": tenant_id, "batch_id": body.batch_id,
                                                 "receipts": len(entries), "invalid": counts["error"]})
    return 202, _accepted(header, False), {}


# --- processing ------------------------------------------------------------------------

def process(tenant_id: str, batch_id: str, budget_seconds: float | None) -> bool:
    """Run the batch's receipts in order for about `budget_seconds` (None: to the end).

    True when nothing is left to do (done, gone, or another run is ahead),
    False when the budget ran out first. At least one receipt per call.
    """
    loaded = store.get(tenant_id, batch_id)
    if loaded is None:
        logger.warning("offline batch gone; job dropped", extra={"tenant_id": tenant_id, "batch_id": batch_id})
        return True
    header, version = loaded.doc, loaded.version
    if header.status == "done":
        return True
    tag, total = header.tag, header.total
    items = {int(r["index"]): r for chunk in store.receipt_chunks(tenant_id, batch_id, tag) for r in json.loads(chunk)}
    entries = [e for chunk in store.result_chunks(tenant_id, batch_id, tag) for e in json.loads(chunk)]
    order = rules.processing_order([datetime.fromisoformat(items[i]["at"]) if i in items else None
                                    for i in range(total)])
    keys = [(items[i]["kind"], items[i]["key"]) if i in items else None for i in range(total)]
    originals = rules.originals(order, keys, {keys[i] for i in header.known})
    principal = Principal.from_context(header.principal)
    assert principal is not None, "stored at upload from an authenticated principal"
    run = _Run(tenant_id, batch_id, header, version, entries)
    deadline = None if budget_seconds is None else time.monotonic() + budget_seconds
    position, since, changed = header.position, 0, set()
    while position < len(order):
        index = order[position]
        entries[index] = _run(tenant_id, principal, header.actor, items[index], index in originals,
                              entries[index])
        changed.add(index // store.RESULTS_PER_ITEM)
        position, since = position + 1, since + 1
        finished = position >= len(order)
        out_of_time = deadline is not None and time.monotonic() >= deadline
        if finished or out_of_time or since >= CHECKPOINT_EVERY:
            if not run.save(position, changed):
                logger.info("offline batch moved on by another run", extra={"batch_id": batch_id})
                return True
            since, changed = 0, set()
            if out_of_time and not finished:
                return False
    if run.header.status != "done":
        run.save(position, changed)
    return True


def handle_job(message: dict[str, Any]) -> None:
    """The jobs worker's entry: run for a while, then hand the rest to a fresh message."""
    tenant_id, batch_id = str(message["tenant_id"]), str(message["batch_id"])
    if not process(tenant_id, batch_id, BUDGET_SECONDS):
        queues.send(settings.jobs_queue, job_message(tenant_id, batch_id))
    else:
        logger.info("offline batch finished", extra={"tenant_id": tenant_id, "batch_id": batch_id})


# --- reading ---------------------------------------------------------------------------

def get(tenant_id: str, principal: Principal, batch_id: str, limit: int, cursor: str | None) -> BatchStatus:
    """The batch, and a page of its receipts in upload order with their status and result or error."""
    header = _require(tenant_id, principal, batch_id)
    total, size = header.total, store.RESULTS_PER_ITEM
    start = min(store.decode_position(tenant_id, batch_id, cursor), total)
    end = min(start + limit, total)
    page: list[dict[str, Any]] = []
    if start < end:
        first = start // size
        chunks = store.some_result_chunks(tenant_id, batch_id, header.tag, first, (end - 1) // size)
        flat = [e for chunk in chunks for e in json.loads(chunk)]
        page = flat[start - first * size:end - first * size]
    next_cursor = store.encode_position(tenant_id, batch_id, end) if end < total else None
    receipts = [BatchReceipt.model_validate(e) for e in page]
    return BatchStatus.model_validate({**_summary_of(header), "receipts": receipts,
                                       "has_more": next_cursor is not None, "cursor": next_cursor})


def list_recent(tenant_id: str, principal: Principal, limit: int, cursor: str | None
                ) -> tuple[list[BatchSummary], str | None]:
    """The tenant's batches, newest first (a store-bound key sees its store's only, so a page may be short)."""
    headers, next_cursor = store.list_batches(tenant_id, limit, cursor)
    return [BatchSummary.model_validate(_summary_of(h)) for h in headers if _visible(h, principal)], next_cursor


# --- helpers --------------------------------------------------------------------------------------------

def _error(code: str, message: str, details: list[ErrorDetail]) -> dict[str, Any]:
    return {"code": code, "message": message, "field": details[0].field if details else None,
            "details": [d.as_dict() for d in details]}


def _invalid(message: str, details: list[ErrorDetail]) -> dict[str, Any]:
    return _error("validation_error", message, details)


def _text(raw: dict[str, Any], name: str) -> str | None:
    value = raw.get(name)
    return value if isinstance(value, str) and 0 < len(value) <= 64 else None


def _counts(header: BatchHeader) -> BatchCounts:
    return BatchCounts.model_validate(header.counts)


def _accepted(header: BatchHeader, replayed: bool) -> BatchAccepted:
    return BatchAccepted(batch_id=header.batch_id, status=header.status, receipts=header.total,
                         counts=_counts(header), status_url=status_url(header.batch_id), replayed=replayed)


def _existing(tenant_id: str, header: BatchHeader, print_: str) -> tuple[int, BatchAccepted, dict[str, str]]:
    """The same upload again: its batch as it is now; another body under the same id: 409."""
    if header.fingerprint != print_:
        raise conflict("batch_conflict", f"Batch {header.batch_id!r} was already uploaded with a different "
                       "body.", "batch_id")
    if header.status == "accepted":
        queues.send(settings.jobs_queue, job_message(tenant_id, header.batch_id))  # in case the first send failed
    return 200, _accepted(header, True), {"Idempotent-Replayed": "true"}


def _result_entry(index: int, raw: dict[str, Any], parsed: Valid | dict[str, Any]) -> dict[str, Any]:
    if isinstance(parsed, Valid):
        return {"index": index, "kind": parsed.kind, "receipt_id": parsed.receipt_id, "refund_id": parsed.refund_id,
                "status": "pending", "duplicate": False, "result": None, "error": None}
    kind = raw.get("kind") if raw.get("kind") in ("purchase", "refund") else None
    return {"index": index, "kind": kind, "receipt_id": _text(raw, "receipt_id"), "refund_id": _text(raw, "refund_id"),
            "status": "error", "duplicate": False, "result": None, "error": parsed}


def _receipt_chunks(valid: list[tuple[int, Valid]]) -> list[str]:
    docs = [json.dumps({"index": i, "kind": v.kind, "key": v.key, "at": v.at.isoformat(), "body": v.body},
                       separators=(",", ":")) for i, v in valid]
    runs = rules.spans([len(d) + 1 for d in docs], CHUNK_BYTES, RECEIPTS_PER_CHUNK)
    return ["[" + ",".join(docs[a:b]) + "]" for a, b in runs]


def _result_chunks(entries: list[dict[str, Any]]) -> list[str]:
    size = store.RESULTS_PER_ITEM
    return [json.dumps(entries[k:k + size], separators=(",", ":")) for k in range(0, len(entries), size)]


def _summary(result: PurchaseResult | RefundResult) -> dict[str, Any]:
    model = PurchaseSummary if isinstance(result, PurchaseResult) else RefundSummary
    return model.model_validate(result.model_dump(include=set(model.model_fields))).model_dump(mode="json")


def _run(tenant_id: str, principal: Principal, actor: str, item: dict[str, Any], original: bool,
         entry: dict[str, Any]) -> dict[str, Any]:
    """Process one receipt through the online service; its result entry."""
    try:
        if item["kind"] == "purchase":
            result: PurchaseResult | RefundResult = purchases.purchase(
                tenant_id, principal, PurchaseIn.model_validate_json(json.dumps(item["body"])), actor)
        else:
            result = refunds.refund(tenant_id, principal, RefundIn.model_validate_json(json.dumps(item["body"])),
                                    actor)
    except ValidationError as err:
        return {**entry, "status": "error", "duplicate": False, "result": None,
                "error": _invalid("The receipt is invalid.", error_details(err))}
    except ApiError as err:
        if err.code == "card_busy":
            raise  # transient: the job is retried from its last checkpoint
        if err.code == "idempotency_key_reused":
            what = "receipt_id" if item["kind"] == "purchase" else "refund_id"
            message = f"{what} {item['key']!r} was already processed with a different body."
            error = _error("receipt_conflict", message, [ErrorDetail(what, message)])
        else:
            error = _error(err.code, err.message, err.details)
        return {**entry, "status": "error", "duplicate": False, "result": None, "error": error}
    duplicate = result.replayed and not original
    return {**entry, "status": "duplicate" if duplicate else "ok", "duplicate": duplicate,
            "result": _summary(result), "error": None}


@dataclass
class _Run:
    tenant_id: str
    batch_id: str
    header: BatchHeader
    version: int
    entries: list[dict[str, Any]]

    def save(self, position: int, changed: set[int]) -> bool:
        """Position, counts and the changed results chunks, if no other run got ahead."""
        status = rules.batch_state(position, self.header.to_process)
        at = clock.now()
        progressed: dict[str, Any] = {"position": position, "counts": rules.tally([e["status"] for e in self.entries]),
                                      "status": status}
        if status == "done":
            progressed["completed_at"] = at.isoformat()
        header = self.header.model_copy(update=progressed)
        size = store.RESULTS_PER_ITEM
        payloads = {k: json.dumps(self.entries[k * size:(k + 1) * size], separators=(",", ":")) for k in changed}
        if not store.save_progress(self.tenant_id, self.batch_id, header, self.version, payloads, at):
            return False
        self.header, self.version = header, self.version + 1
        return True


def _visible(header: BatchHeader, principal: Principal) -> bool:
    """A key bound to one store sees only the batches uploaded by keys of that store."""
    return principal.store_id is None or header.bound_store == principal.store_id


def _summary_of(header: BatchHeader) -> dict[str, Any]:
    return {"batch_id": header.batch_id, "status": header.status, "total": header.total,
            "counts": header.counts, "store_id": header.store_id, "created_at": header.created_at,
            "completed_at": header.completed_at}


def _require(tenant_id: str, principal: Principal, batch_id: str) -> BatchHeader:
    found = store.get(tenant_id, batch_id) if re.fullmatch(BATCH_ID, batch_id) else None
    if found is None or not _visible(found.doc, principal):
        raise not_found("Batch")
    return found.doc
