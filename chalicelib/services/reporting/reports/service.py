"""Report requests: record and queue them, show their status and link, and build them in the worker.

The request writes the record (`queued`) and its audit entry in one
transaction, then sends one message to the reports queue. The worker claims
the report by moving it to `running` under its version: a second copy of the
message (SQS delivers at least once) loses the claim, or finds the report
already `ready`/`failed`, and does nothing, so there is one file. Any
exception while building marks the report `failed` with a code and a short
message (never a traceback or a value from the data) and deletes the message:
the same input would fail the same way. A worker that dies without writing
(timeout, out of memory) is reported as failed `timed_out` on read (see
domain/reporting.py); its redelivered message then records that and stops.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from chalicelib import clock
from chalicelib.domain import reporting
from chalicelib.domain.grammar import article
from chalicelib.domain.ids import new_id
from chalicelib.domain.roles import Role
from chalicelib.errors import ApiError, ErrorDetail, not_found
from chalicelib.observability import logger
from chalicelib.schemas.common import Page
from chalicelib.schemas.reports import Report, ReportCreate, ReportFailure, ReportStatus
from chalicelib.services.customers import surveys
from chalicelib.services.marketing import campaigns
from chalicelib.services.program import catalog, coalitions
from chalicelib.services.reporting.reports import output
from chalicelib.services.reporting.reports.base import ReportContext, ReportError, ReportType
from chalicelib.services.reporting.reports.registry import TYPES
from chalicelib.services.tenancy import tenancy
from chalicelib.settings import settings
from chalicelib.storage import audit, queues, transactions
from chalicelib.storage import reports as store
from chalicelib.storage.documents.report import ReportDoc
from chalicelib.storage.transactions import Tx

REPORT_ID = re.compile(r"^[0-9]{8}-[0-9]{6}-[a-z0-9]{6}$")
URL_SECONDS = 15 * 60


def create(tenant_id: str, spec: ReportCreate, actor: str, role: Role) -> tuple[int, Report]:
    """Record the request and queue it (202)."""
    rtype = _report_type(spec, role)
    ids = _subject(tenant_id, spec, rtype)
    at = clock.now()
    report_id = new_report_id()
    doc = ReportDoc.load({
        "report_id": report_id, "type": rtype.name, **ids,
        "from": spec.from_.isoformat(), "to": spec.to.isoformat(), "format": spec.format,
        "delimiter": spec.delimiter, "status": ReportStatus.QUEUED.value, "created_at": at.isoformat(),
        "requested_by": role.value,
    })

    def build(tx: Tx) -> None:
        store.add(tx, tenant_id, report_id, doc, at)
        audit.add(tx, audit.entry(tenant_id, action="report.requested", actor=actor, at=at,
                                  target=f"report:{report_id}",
                                  detail={"type": rtype.name, **{k: v for k, v in ids.items() if v is not None},
                                          "format": spec.format, "from": doc.from_, "to": doc.to}))

    transactions.write(build)
    try:
        queues.send(settings.reports_queue, job_message(tenant_id, report_id))
    except Exception:
        logger.exception("report not queued", extra={"tenant_id": tenant_id, "report_id": report_id})
        _finish(tenant_id, report_id, {"status": ReportStatus.FAILED.value,
                                       "failure": {"code": "not_queued", "message": "The report could not be queued."}})
        raise ApiError(503, "queue_unavailable", "The report could not be queued; try again.",
                       headers={"Retry-After": "5"}) from None
    return 202, get(tenant_id, report_id, role)


def get(tenant_id: str, report_id: str, role: Role = Role.TENANT_ADMIN) -> Report:
    """One report request with its status and, when ready and allowed, a short-lived download link."""
    loaded = store.get(tenant_id, report_id) if REPORT_ID.fullmatch(report_id) else None
    if loaded is None:
        raise not_found("Report")
    return _view(tenant_id, loaded.doc, role)


def list_all(tenant_id: str, limit: int, cursor: str | None, role: Role = Role.TENANT_ADMIN) -> Page[Report]:
    """The tenant's report requests, newest first."""
    docs, next_cursor = store.list_page(tenant_id, limit, cursor)
    return Page[Report](items=[_view(tenant_id, d, role) for d in docs], has_more=next_cursor is not None,
                        cursor=next_cursor)


def build(tenant_id: str, report_id: str) -> None:
    """The worker's entry for one report: claim it, build it, record the outcome. Safe to repeat."""
    loaded = store.get(tenant_id, report_id)
    if loaded is None:
        logger.warning("report gone; message dropped", extra={"tenant_id": tenant_id, "report_id": report_id})
        return
    doc, version = loaded.doc, loaded.version
    status = doc.status
    log = {"tenant_id": tenant_id, "report_id": report_id, "type": doc.type}
    if status in (ReportStatus.READY, ReportStatus.FAILED):
        logger.info("report already finished; duplicate message ignored", extra=log)
        return
    if status == ReportStatus.RUNNING:
        if reporting.is_stale_running(doc.dump(), clock.now()):
            code, message = reporting.TIMED_OUT
            _save(tenant_id, doc, version, {"status": ReportStatus.FAILED.value,
                                            "failure": {"code": code, "message": message}})
            logger.error("report timed out", extra=log)
        else:
            logger.info("report being built by another worker; duplicate message ignored", extra=log)
        return
    claimed = _save(tenant_id, doc, version, {"status": ReportStatus.RUNNING.value,
                                              "started_at": clock.now().isoformat()})
    if claimed is None:
        logger.info("report claimed by another worker", extra=log)
        return
    doc, version = claimed, version + 1
    try:
        rtype = TYPES.get(doc.type)
        if rtype is None:
            raise ReportError("unknown_report_type", f"Report type {doc.type!r} is no longer offered.")
        context = _context(tenant_id, doc, rtype)
        rows, size = _write(rtype, context, doc.format, str(doc.delimiter or ","))
    except Exception as exc:
        if isinstance(exc, output.TooManyRows):
            exc = ReportError("too_many_rows", f"More than {output.XLSX_MAX_ROWS:,} rows do not fit in one XLSX "
                              "sheet; ask for CSV or a shorter period.")
        if isinstance(exc, ReportError | ApiError):
            failure = reporting.failure_reason(exc.code, exc.message)
            logger.warning("report failed", extra={**log, "code": exc.code})
        else:
            failure = reporting.failure_reason(None, None)
            logger.exception("report build failed", extra=log)
        if _save(tenant_id, doc, version, {"status": ReportStatus.FAILED.value, "failure": failure}) is None:
            logger.error("report failure not recorded: the record changed", extra=log)
        return
    if _save(tenant_id, doc, version, {"status": ReportStatus.READY.value, "rows": rows, "size_bytes": size}) is None:
        logger.error("report outcome not recorded: the record changed", extra=log)
    else:
        logger.info("report ready", extra={**log, "rows": rows, "size_bytes": size})
        from chalicelib.services.integrations import webhooks

        webhooks.report_ready(tenant_id, report_id, doc.type, rows, size)


def new_report_id() -> str:
    """Creation time first, so the tenant's list sorts newest first; random tail against clashes."""
    return f"{clock.now():%Y%m%d-%H%M%S}-{new_id(6)}"


def job_message(tenant_id: str, report_id: str) -> dict[str, str]:
    return {"tenant_id": tenant_id, "report_id": report_id}


# --- requesting and reading ---------------------------------------------------------

def create_for_agency(agency_id: str, tenant_id: str, spec: ReportCreate, actor: str) -> tuple[int, Report]:
    return create(tenancy.require_tenant_of_agency(agency_id, tenant_id).tenant_id, spec, actor, Role.AGENCY)


def get_for_agency(agency_id: str, tenant_id: str, report_id: str) -> Report:
    return get(tenancy.require_tenant_of_agency(agency_id, tenant_id).tenant_id, report_id, Role.AGENCY)


def list_for_agency(agency_id: str, tenant_id: str, limit: int, cursor: str | None) -> Page[Report]:
    return list_all(tenancy.require_tenant_of_agency(agency_id, tenant_id).tenant_id, limit, cursor, Role.AGENCY)


# --- helpers --------------------------------------------------------------------------------------------

def _report_type(spec: ReportCreate, role: Role) -> ReportType:
    rtype = TYPES.get(spec.type)
    if rtype is None:
        known = ", ".join(sorted(TYPES))
        raise ApiError(422, "unknown_report_type", f"There is no report type {spec.type!r} (known: {known}).",
                       [ErrorDetail("type", f"one of: {known}")])
    if role not in rtype.roles:
        allowed = ", ".join(sorted(r.value for r in rtype.roles))
        raise ApiError(403, "forbidden", f"{article(role.value, capital=True)} key may not request "
                       f"{article(rtype.name)} report "
                       f"(allowed: {allowed}).")
    if rtype.max_days is not None and (spec.to - spec.from_).days > rtype.max_days:
        raise ApiError(422, "period_too_long", f"A {rtype.name} report covers at most {rtype.max_days} days.",
                       [ErrorDetail("to", f"at most {rtype.max_days} days after from")])
    if spec.format not in rtype.formats:
        offered = ", ".join(sorted(rtype.formats))
        raise ApiError(422, "format_unsupported", f"A {rtype.name} report comes as {offered}.",
                       [ErrorDetail("format", f"one of: {offered}")])
    return rtype


def _check_subject(tenant_id: str, subject: str, subject_id: str) -> None:
    """The subject exists and is the tenant's: an unknown program is a 422 (as before), any other a 404."""
    if subject == "program":
        if catalog.program(tenant_id, subject_id) is None:
            raise ApiError(422, "unknown_program", f"Program {subject_id!r} does not exist.",
                           [ErrorDetail("program_id", "no such program")])
    elif subject == "campaign":
        campaigns.get(tenant_id, subject_id)
    elif subject == "survey":
        surveys.get(tenant_id, subject_id)
    elif subject_id not in {c.coalition_id for c in coalitions.of_tenant(tenant_id)}:
        raise ApiError(404, "coalition_not_found", "No such coalition among the tenant's.",
                       [ErrorDetail("coalition_id", "not found")])


def _subject(tenant_id: str, spec: ReportCreate, rtype: ReportType) -> dict[str, str | None]:
    """The request's subject ids (one set at most), checked against the type and the tenant's data."""
    wanted = SUBJECT_FIELDS[rtype.subject]
    for name in SUBJECT_FIELDS.values():
        if name != wanted and getattr(spec, name) is not None:
            raise ApiError(422, "field_not_applicable", f"A {rtype.name} report does not take {name}.",
                           [ErrorDetail(name, f"not used by this report type; it takes {wanted}")])
    subject_id: str | None = getattr(spec, wanted)
    if subject_id is None and not rtype.subject_optional:
        raise ApiError(422, "missing_field", f"A {rtype.name} report needs {wanted}.",
                       [ErrorDetail(wanted, "required for this report type")])
    if subject_id is not None:
        _check_subject(tenant_id, rtype.subject, subject_id)
    return {name: subject_id if name == wanted else None for name in SUBJECT_FIELDS.values()}


def _requested_by(doc: ReportDoc) -> Role:
    return Role(str(doc.requested_by or Role.TENANT_ADMIN.value))


def _may_download(doc: ReportDoc, role: Role) -> bool:
    """Only the roles that may request a type get its file (an agency sees a members export's status, no link);
    a file built with the agency's fuller view goes to agency keys only."""
    rtype = TYPES.get(doc.type)
    if rtype is None or role not in rtype.roles:
        return False
    return not (rtype.agency_view and _requested_by(doc) == Role.AGENCY and role != Role.AGENCY)


def _subject_id(doc: ReportDoc) -> str | None:
    subjects = doc.subjects()
    return next((str(subjects[name]) for name in SUBJECT_FIELDS.values() if subjects.get(name)), None)


def _view(tenant_id: str, doc: ReportDoc, role: Role) -> Report:
    now = clock.now()
    status, failure = reporting.effective_status(doc.dump(), now)
    url = expires = None
    if status == ReportStatus.READY and _may_download(doc, role):
        name = reporting.filename(doc.type, _subject_id(doc) or "all", date.fromisoformat(doc.from_),
                                  date.fromisoformat(doc.to), doc.format)
        url = store.download_url(tenant_id, doc.report_id, doc.format, name, URL_SECONDS)
        expires = now + timedelta(seconds=URL_SECONDS)
    subjects = doc.subjects()
    return Report.model_validate({
        "report_id": doc.report_id, "type": doc.type,
        **{name: subjects.get(name) for name in SUBJECT_FIELDS.values()}, "from": doc.from_,
        "to": doc.to, "format": doc.format, "status": status,
        "rows": int(doc.rows) if doc.rows is not None else None,
        "size_bytes": int(doc.size_bytes) if doc.size_bytes is not None else None,
        "failure": ReportFailure(**failure) if failure else None,
        "created_at": doc.created_at, "started_at": doc.started_at,
        "completed_at": doc.completed_at, "download_url": url, "download_expires_at": expires,
    })


def _finish(tenant_id: str, report_id: str, changes: dict[str, Any]) -> bool:
    """Apply `changes` to the report as it is now; False if it is gone or another writer got there first."""
    loaded = store.get(tenant_id, report_id)
    return loaded is not None and _save(tenant_id, loaded.doc, loaded.version, changes) is not None


def _save(tenant_id: str, doc: ReportDoc, version: int, changes: dict[str, Any]) -> ReportDoc | None:
    """The report with `changes`, saved if still at `version` (else None: another writer got there first)."""
    at = clock.now()
    stored = {**doc.dump(), **changes}
    if changes.get("status") in (ReportStatus.READY, ReportStatus.FAILED):
        stored["completed_at"] = at.isoformat()
    changed = ReportDoc.load(stored)
    created = reporting.parse_at(changed.created_at) or at
    return changed if store.save(tenant_id, changed.report_id, changed, version, at, created) else None


def _context(tenant_id: str, doc: ReportDoc, rtype: ReportType) -> ReportContext:
    subject_id = doc.subjects().get(SUBJECT_FIELDS[rtype.subject])
    program = None
    if rtype.subject == "program":
        program = catalog.program(tenant_id, str(subject_id))
        if program is None:
            raise ReportError("unknown_program", f"Program {subject_id!r} no longer exists.")
    return ReportContext(tenant_id=tenant_id, report_id=doc.report_id,
                         start=date.fromisoformat(doc.from_), end=date.fromisoformat(doc.to),
                         subject_id=str(subject_id) if subject_id else None, subject_program=program,
                         role=_requested_by(doc))


def _write(rtype: ReportType, ctx: ReportContext, fmt: str, delimiter: str) -> tuple[int, int]:
    """Build the file into S3; returns (data rows, bytes). A failed build leaves no upload behind."""
    upload = store.Upload(ctx.tenant_id, ctx.report_id, fmt, output.CONTENT_TYPES[fmt])
    try:
        if fmt == "xlsx":
            rows = output.write_xlsx(upload, rtype.columns, rtype.rows(ctx), rtype.name, rtype.charts, ctx)
        else:
            rows = output.write_csv(upload, rtype.columns, rtype.rows(ctx), delimiter)
        upload.complete()
    except BaseException:
        try:
            upload.abort()
        except Exception:
            logger.exception("could not abort a report upload", extra={"report_id": ctx.report_id})
        raise
    return rows, upload.size


SUBJECT_FIELDS: dict[str, str] = {"program": "program_id", "campaign": "campaign_id", "survey": "survey_id",
                                  "coalition": "coalition_id"}
