"""Bulk import of a customer base from CSV: upload, check the header, then rows in resumable chunks.

Flow: `create` records the import and hands out a presigned PUT URL; the
client uploads; `start` reads the header (unknown columns fail the import
there and then) and queues a job; the jobs worker streams the file from the
committed byte offset, chunk by chunk, and re-enqueues itself when its time
budget is spent. Small files can be sent inline and are imported at once.

Chunks are fixed by the file, not by time: `CHUNK_ROWS` records or
`CHUNK_BYTES` from the committed offset, whichever comes first, so any run of
chunk k reads exactly the same rows. After a chunk its rejected rows go to
`result/part-<k>.csv` (a rerun overwrites the same object with the same
rows), then the offset, the line number and the counts are committed under
the record's version. A redelivered message, or two runs at once, therefore
never double-count: the loser's commit fails and it carries on from the
winner's offset. Rows of a chunk that a crashed run had processed are
processed again, which is harmless: `customers.ensure` finds the customer by
phone (mode `fill` only fills gaps), and a card is issued only to a customer
who has none of the program yet. A customer that the crashed run created is
still counted as created: its acquisition source is this import and it is
newer than the last commit.

Rows merge by phone (within the file and with the existing base), so a
phone is required; an e-mail-only row would create a new customer on every
rerun.
"""

from __future__ import annotations

import csv
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from chalicelib import clock
from chalicelib.domain import imports as rules
from chalicelib.domain.cards import luhn_valid
from chalicelib.domain.ids import new_id
from chalicelib.errors import ApiError, ErrorDetail, conflict, not_found
from chalicelib.observability import logger
from chalicelib.schemas.customers import CustomerCreate
from chalicelib.schemas.imports import CustomerImport, ImportCreate, ImportCreated, ImportInline, ImportStatus
from chalicelib.schemas.pos import CardIssue
from chalicelib.schemas.tenancy import ProgramKind, ProgramStatus
from chalicelib.services.customers import customers
from chalicelib.services.pos import cards
from chalicelib.services.program import catalog
from chalicelib.settings import settings
from chalicelib.storage import audit, loyalty, queues, transactions
from chalicelib.storage import customers as customer_records
from chalicelib.storage import imports as store
from chalicelib.storage.documents.common import Versioned
from chalicelib.storage.documents.customer_import import ImportJob
from chalicelib.storage.transactions import Tx

IMPORT_JOB = "customers.import"
BUDGET_SECONDS = 10.0
"""Work per job message, as for card series and coupons."""
CHUNK_ROWS = 200
CHUNK_BYTES = 256 * 1024
UPLOAD_SECONDS = 15 * 60
RESULT_SECONDS = 60 * 60
IMPORT_ID = re.compile(r"^[0-9]{8}-[0-9]{6}-[a-z0-9]{6}$")
TRANSIENT = {"customer_changed", "card_changed", "referral_codes_exhausted", "numbers_exhausted"}
"""ApiError codes that a retry can fix: the job fails and SQS redelivers it, the row is not rejected."""
FINISHED = (ImportStatus.DONE, ImportStatus.FAILED)


@dataclass
class _Chunk:
    end: int
    line: int
    rows: int = 0
    created: int = 0
    updated: int = 0
    rejected: list[tuple[int, str, str]] = field(default_factory=list)
    cards_issued: int = 0
    over_limit_at: int | None = None
    """The line of the first row past `MAX_ROWS`, if the file has more."""


@dataclass
class _Run:
    tenant_id: str
    doc: ImportJob
    ctx: rules.RowContext
    committed_at: datetime
    seen: set[str] = field(default_factory=set)

    @property
    def import_id(self) -> str:
        return self.doc.import_id

    @property
    def actor(self) -> str:
        return f"import:{self.import_id}"


def create(tenant_id: str, spec: ImportCreate, actor: str) -> ImportCreated:
    """The import record and where to PUT the file (a presigned URL, valid 15 minutes)."""
    doc = _record(tenant_id, spec, actor)
    import_id = doc.import_id
    return ImportCreated(**_view(tenant_id, doc).model_dump(),
                         upload_url=store.upload_url(tenant_id, import_id, UPLOAD_SECONDS),
                         upload_key=store.upload_key(tenant_id, import_id),
                         upload_expires_at=clock.now() + timedelta(seconds=UPLOAD_SECONDS))


def start(tenant_id: str, import_id: str, actor: str) -> tuple[int, CustomerImport]:
    """202: queued for the jobs worker (again, if it was queued already: a lost message is replaced)."""
    doc, _ = _begin(tenant_id, import_id, actor)
    queues.send(settings.jobs_queue, job_message(tenant_id, import_id, doc.bytes_done))
    return 202, _view(tenant_id, doc)


def inline(tenant_id: str, spec: ImportInline, actor: str) -> tuple[int, CustomerImport]:
    """A small file in the body: stored like an upload, then imported within the request."""
    doc = _record(tenant_id, spec, actor)
    import_id = doc.import_id
    store.put_upload(tenant_id, import_id, spec.csv.encode("utf-8"))
    _begin(tenant_id, import_id, actor)
    try:
        process(tenant_id, import_id, budget_seconds=None)
    except Exception:
        # Resumable by design: let the worker finish what the request could not.
        logger.exception("inline import failed; queued", extra={"tenant_id": tenant_id, "import_id": import_id})
        queues.send(settings.jobs_queue, job_message(tenant_id, import_id, 0))
    return 201, get(tenant_id, import_id)


def get(tenant_id: str, import_id: str) -> CustomerImport:
    """One import with its progress; the result file's link once it finished with rejected rows."""
    return _view(tenant_id, _require(tenant_id, import_id).doc)


def list_all(tenant_id: str, limit: int, cursor: str | None) -> tuple[list[CustomerImport], str | None]:
    """The tenant's imports, newest first."""
    docs, next_cursor = store.list_page(tenant_id, limit, cursor)
    return [_view(tenant_id, d) for d in docs], next_cursor


        # else: another run committed this chunk first; re-read and go on from its offset
def handle_job(message: dict[str, Any]) -> None:
    """The jobs worker's entry: run for a while, then hand the rest to a fresh message."""
    tenant_id, import_id = str(message["tenant_id"]), str(message["import_id"])
    if not process(tenant_id, import_id, BUDGET_SECONDS):
        loaded = store.get(tenant_id, import_id)
        cursor = loaded.doc.bytes_done if loaded else 0
        queues.send(settings.jobs_queue, job_message(tenant_id, import_id, cursor))


# --- creating, starting, reading --------------------------------------------------------

def job_message(tenant_id: str, import_id: str, cursor: int) -> dict[str, Any]:
    """`cursor` is informative: the committed offset in the record is what a run resumes from."""
    return {"job": IMPORT_JOB, "tenant_id": tenant_id, "import_id": import_id, "cursor": cursor}


# --- processing -----------------------------------------------------------------------------

def process(tenant_id: str, import_id: str, budget_seconds: float | None) -> bool:
    """Import chunks for about `budget_seconds` (None: to the end). True when nothing is left to do.

    At least one chunk per call, so every job message makes progress.
    """
    deadline = None if budget_seconds is None else time.monotonic() + budget_seconds
    chunks_done = 0
    ctx: rules.RowContext | None = None
    while True:
        loaded = store.get(tenant_id, import_id)
        if loaded is None:
            logger.warning("customer import gone; job dropped", extra={"tenant_id": tenant_id, "import_id": import_id})
            return True
        doc, version = loaded.doc, loaded.version
        status = ImportStatus(doc.status)
        if status in FINISHED or status is ImportStatus.AWAITING_UPLOAD:
            return True
        if doc.error or doc.bytes_done >= doc.bytes_total:
            if _finish(tenant_id, doc, version):
                return True
            continue
        if chunks_done and deadline is not None and time.monotonic() >= deadline:
            return False
        ctx = ctx or _context(tenant_id, doc)
        run = _Run(tenant_id, doc, ctx, datetime.fromisoformat(doc.committed_at))
        try:
            chunk = _run_chunk(run)
        except store.FileChanged:
            _fail(tenant_id, doc, version, "the uploaded file was replaced after the import started")
            continue
        if chunk.end == doc.bytes_done and chunk.over_limit_at is None:
            _fail(tenant_id, doc, version, "the uploaded file is shorter than when the import started")
            continue
        if _commit(run, version, chunk):
            chunks_done += 1


# --- helpers --------------------------------------------------------------------------------------------

def _view(tenant_id: str, doc: ImportJob) -> CustomerImport:
    fields = {k: v for k, v in doc.dump().items() if k in CustomerImport.model_fields}
    if doc.status in FINISHED and doc.rejected and doc.result_ready:
        fields["result_url"] = store.result_url(tenant_id, doc.import_id, RESULT_SECONDS)
    return CustomerImport.model_validate(fields)


def _check_program(tenant_id: str, program_id: str | None) -> None:
    """Cards are issued in the tenant's own base, so the program must be the tenant's own points program."""
    if program_id is None:
        return
    program = catalog.program(tenant_id, program_id)
    problem = ("unknown_program", "does not exist") if program is None else (
        ("program_archived", "is archived") if program.status is ProgramStatus.ARCHIVED else (
            ("gift_program", "holds money, not points") if program.kind is ProgramKind.GIFT else None))
    if problem is not None:
        code, issue = problem
        raise ApiError(422, code, f"Program {program_id!r} {issue}.", [ErrorDetail("program_id", issue)])


def _new_doc(tenant_id: str, spec: ImportCreate, at: datetime) -> ImportJob:
    import_id = f"{at:%Y%m%d-%H%M%S}-{new_id(6)}"
    return ImportJob.load({
        "import_id": import_id, "filename": spec.filename, "status": ImportStatus.AWAITING_UPLOAD.value,
        "program_id": spec.program_id,
        "default_consents": [c.model_dump(mode="json") for c in spec.default_consents],
        "consent_text_version": spec.consent_text_version or customers.privacy(tenant_id).consent_text_version,
        "overrides": dict(spec.columns),
        "rows": 0, "created": 0, "updated": 0, "rejected": 0, "cards_issued": 0,
        "bytes_done": 0, "bytes_total": 0, "line": 1, "parts": [], "chunks": 0,
        "error": None, "created_at": at.isoformat(), "started_at": None, "completed_at": None,
        "committed_at": at.isoformat(),
    })


def _record(tenant_id: str, spec: ImportCreate, actor: str) -> ImportJob:
    _check_program(tenant_id, spec.program_id)
    at = clock.now()
    doc = _new_doc(tenant_id, spec, at)

    def build(tx: Tx) -> None:
        store.add(tx, tenant_id, doc.import_id, doc, at)
        audit.add(tx, audit.entry(tenant_id, action="customer_import.created", actor=actor, at=at,
                                  target=f"customer_import:{doc.import_id}",
                                  detail={"program_id": spec.program_id or ""}))

    transactions.write(build)
    return doc


def _require(tenant_id: str, import_id: str) -> Versioned[ImportJob]:
    loaded = store.get(tenant_id, import_id) if IMPORT_ID.fullmatch(import_id) else None
    if loaded is None:
        raise not_found("Customer import")
    return loaded


def _fail(tenant_id: str, doc: ImportJob, version: int, error: str) -> None:
    at = clock.now()
    doc.status, doc.error, doc.completed_at = ImportStatus.FAILED.value, error, at.isoformat()
    store.save(tenant_id, doc.import_id, doc, version, at)


def _begin(tenant_id: str, import_id: str, actor: str) -> tuple[ImportJob, bool]:
    """Check the uploaded file's header and mark the import queued: (doc, whether this call began it).

    An import already queued or running is left as it is (the caller may
    queue another message: a lost one is then replaced, a duplicate is
    harmless); a finished one is a 409.
    """
    loaded = _require(tenant_id, import_id)
    doc, version = loaded.doc, loaded.version
    status = ImportStatus(doc.status)
    if status in (ImportStatus.QUEUED, ImportStatus.RUNNING):
        return doc, False
    if status in FINISHED:
        raise conflict("import_finished", f"This import is already {status.value}.")
    head = store.upload_head(tenant_id, import_id)
    if head is None:
        raise conflict("upload_missing", "Nothing was uploaded yet: PUT the file to the upload_url first.")
    size, etag = head
    limit = rules.MAX_ROWS * rules.MAX_ROW_BYTES
    problem = "the file is empty" if size == 0 else (
        f"the file is larger than {limit} bytes" if size > limit else None)
    header = None
    if problem is None:
        try:
            sample = store.read_upload(tenant_id, import_id, etag, 0, rules.HEADER_SAMPLE_BYTES - 1)
        except store.FileChanged:
            raise conflict("upload_changed", "The file was replaced while starting; start again.") from None
        header = rules.read_header(sample, size, doc.overrides or {})
        if header.unknown:
            problem = ("unknown columns: " + ", ".join(header.unknown)
                       + " (map them with `columns`, or `skip` them)")
        elif header.problems:
            problem = "; ".join(header.problems)
    if problem is not None:
        doc.bytes_total = size
        _fail(tenant_id, doc, version, problem)
        details = [ErrorDetail(f"columns.{name}", "unknown column") for name in header.unknown] if header else []
        raise ApiError(422, "unknown_columns" if header and header.unknown else "bad_file",
                       f"The import cannot start: {problem}.", details or [ErrorDetail("file", problem)])
    assert header is not None
    at = clock.now()
    doc.status, doc.bytes_total, doc.etag, doc.bytes_done = ImportStatus.QUEUED.value, size, etag, header.length
    doc.line, doc.encoding, doc.delimiter = 2, header.encoding, header.delimiter
    doc.columns, doc.started_at, doc.committed_at = list(header.columns), at.isoformat(), at.isoformat()
    if not store.save(tenant_id, import_id, doc, version, at):
        return _require(tenant_id, import_id).doc, False
    audit.put(audit.entry(tenant_id, action="customer_import.started", actor=actor, at=at,
                          target=f"customer_import:{import_id}", detail={"bytes": str(size)}))
    return doc, True


def _reason(err: ApiError) -> str:
    if err.details:
        return "; ".join(f"{d.field}: {d.issue}" for d in err.details)
    return err.message


def _created_here(run: _Run, customer_id: str) -> bool:
    """Not created by this call, but by an earlier run of this same chunk that crashed before committing."""
    if customer_id in run.seen:
        return False
    got = customer_records.get(run.tenant_id, customer_id)
    if got is None:
        return False
    acquisition = got.doc.profile_or_empty().acquisition
    created_at = got.doc.created_at
    return (acquisition is not None and acquisition.channel == "import" and acquisition.source == run.import_id
            and isinstance(created_at, datetime) and created_at > run.committed_at)


def _card_for(run: _Run, number: str, phone: str) -> tuple[CardIssue | None, str | None]:
    """The plastic card registration for a row (None if it is already this phone's), or why it cannot be."""
    card = loyalty.get_card(run.tenant_id, number)
    if card is not None and card.customer_id is not None:
        owner = customers.id_by_phone(run.tenant_id, phone)
        if owner == card.customer_id:
            return None, None
        return None, "card_number: the card belongs to another customer"
    program_id = card.program_id if card is not None else run.doc.program_id
    if card is None and not luhn_valid(number):
        return None, "card_number: fails its Luhn check digit"
    if program_id is None:
        return None, "card_number: no such card (give program_id to register new plastic cards)"
    try:
        return CardIssue(program_id=program_id, kind="plastic", number=number,
                         customer=CustomerCreate(phone=phone)), None
    except ValidationError as err:
        return None, "card_number: " + "; ".join(str(e["msg"]) for e in err.errors(include_url=False))


def _import_row(run: _Run, chunk: _Chunk, customer: CustomerCreate, card_number: str | None) -> str | None:
    """Merge one valid row into the base; the rejection reason, or None."""
    assert customer.phone is not None, "rows without a phone are rejected before"
    registration = None
    if card_number is not None:
        registration, problem = _card_for(run, card_number, customer.phone)
        if problem is not None:
            return problem
    customer_id, created = customers.ensure(run.tenant_id, run.tenant_id, customer, run.actor, mode="fill")
    created = created or _created_here(run, customer_id)
    run.seen.add(customer_id)
    issued = 0
    if registration is not None:
        cards.issue(run.tenant_id, registration, run.actor)
        issued += 1
    program_id = run.doc.program_id
    if program_id and not any(p == program_id for _, p in customer_records.card_links(run.tenant_id, customer_id)):
        cards.issue(run.tenant_id, CardIssue(program_id=program_id, customer=CustomerCreate(phone=customer.phone)),
                    run.actor)
        issued += 1
    chunk.created += int(created)
    chunk.updated += int(not created)
    chunk.cards_issued += issued
    return None


def _row(run: _Run, chunk: _Chunk, record: rules.RawRecord) -> None:
    delimiter = str(run.doc.delimiter)
    text = rules.decode(record.raw, str(run.doc.encoding))
    shown = text if text is not None else record.raw.decode("utf-8", errors="replace")
    if record.too_long:
        chunk.rejected.append((record.line, shown[:200], f"row: longer than {rules.MAX_ROW_BYTES} bytes"))
        return
    if text is None:
        chunk.rejected.append((record.line, shown, "row: not valid text in the file's encoding"))
        return
    try:
        values = rules.split(text, delimiter)
    except csv.Error as exc:
        chunk.rejected.append((record.line, text, f"row: malformed CSV ({exc})"))
        return
    parsed = rules.parse_row(values, run.doc.columns or [], run.ctx)
    if parsed.customer is None:
        chunk.rejected.append((record.line, text, "; ".join(parsed.errors)))
        return
    try:
        problem = _import_row(run, chunk, parsed.customer, parsed.card_number)
    except ApiError as err:
        if err.status >= 500 or err.code in TRANSIENT:
            raise
        problem = _reason(err)
    if problem is not None:
        chunk.rejected.append((record.line, text, problem))


def _run_chunk(run: _Run) -> _Chunk:
    """Rows from the committed offset: `CHUNK_ROWS` records or `CHUNK_BYTES`, whichever ends first."""
    doc = run.doc
    start, rows_before = doc.bytes_done, doc.rows
    chunk = _Chunk(end=start, line=doc.line)
    stream = store.Stream(run.tenant_id, run.import_id, str(doc.etag), start)
    try:
        for count, record in enumerate(rules.records(stream.chunks(), start, chunk.line)):
            if count >= CHUNK_ROWS or record.start - start >= CHUNK_BYTES:
                break
            if not record.blank:
                if rows_before + chunk.rows >= rules.MAX_ROWS:
                    chunk.over_limit_at = record.line
                    break
                chunk.rows += 1
                _row(run, chunk, record)
            chunk.end, chunk.line = record.end, record.line + record.lines
    finally:
        stream.close()
    return chunk


def _commit(run: _Run, version: int, chunk: _Chunk) -> bool:
    doc = run.doc.model_copy(deep=True)
    number = doc.chunks + 1
    if chunk.rejected:
        store.put_part(run.tenant_id, run.import_id, number,
                       rules.result_lines(chunk.rejected, str(doc.delimiter)))
        doc.parts = [*doc.parts, number]
    at = clock.now()
    doc.status, doc.chunks, doc.bytes_done, doc.line = ImportStatus.RUNNING.value, number, chunk.end, chunk.line
    doc.rows, doc.created = doc.rows + chunk.rows, doc.created + chunk.created
    doc.updated, doc.rejected = doc.updated + chunk.updated, doc.rejected + len(chunk.rejected)
    doc.cards_issued, doc.committed_at = doc.cards_issued + chunk.cards_issued, at.isoformat()
    if chunk.over_limit_at is not None:
        doc.error = (f"The file has more than {rules.MAX_ROWS} rows: the rows from line {chunk.over_limit_at} "
                     "on were not imported.")
    return store.save(run.tenant_id, run.import_id, doc, version, at)


def _finish(tenant_id: str, doc: ImportJob, version: int) -> bool:
    """Join the result parts into result.csv (UTF-8 with a BOM, which Excel needs) and close the import."""
    import_id = doc.import_id
    parts = [int(p) for p in doc.parts]
    if parts:
        head = rules.BOM + rules.result_head(str(doc.delimiter)).encode("utf-8")
        store.join_result(tenant_id, import_id, head, parts)
    at = clock.now()
    failed = bool(doc.error)
    doc.status = (ImportStatus.FAILED if failed else ImportStatus.DONE).value
    doc.completed_at, doc.result_ready = at.isoformat(), bool(parts)
    if not store.save(tenant_id, import_id, doc, version, at):
        return False
    if parts:
        store.delete_parts(tenant_id, import_id, parts)
    audit.put(audit.entry(tenant_id, action="customer_import.finished", actor=f"import:{import_id}", at=at,
                          target=f"customer_import:{import_id}",
                          detail={"status": doc.status, "rows": str(doc.rows), "created": str(doc.created),
                                  "updated": str(doc.updated), "rejected": str(doc.rejected)}))
    logger.info("customer import finished", extra={"tenant_id": tenant_id, "import_id": import_id,
                                                   "status": doc.status})
    return True


def _context(tenant_id: str, doc: ImportJob) -> rules.RowContext:
    return rules.RowContext(import_id=doc.import_id, consent_text_version=doc.consent_text_version,
                            default_consents=list(doc.default_consents or []),
                            disabled=frozenset(customers.privacy(tenant_id).disabled_fields))
