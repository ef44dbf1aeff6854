"""Reports: the request record in the `loyalty` table, the file in the reports bucket (tenant explicit).

    <tid>#report / <report id>        a report request: type, program, period, format, status, rows, size; version

    s3://<reports bucket>/reports/<tid>/<report id>.<csv|xlsx>    the file, encrypted, expired by the bucket's
                                                                  lifecycle rule after 7 days

The record holds no personal data (ids, dates, counts, an error code); a
members export's file does, so it lives only in the private, encrypted bucket
and every object this module writes asks for server-side encryption
explicitly. The record outlives its file (TTL 30 days) so the list still
shows what was asked for and that the file has expired.

Files are written as S3 multipart uploads fed part by part (`Upload`), so a
report of any size holds one part in memory.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import IO, Any

from chalicelib.domain.cards import CardState
from chalicelib.settings import settings
from chalicelib.storage import loyalty, pagination
from chalicelib.storage.aws import client
from chalicelib.storage.documents.card import CardFacts
from chalicelib.storage.documents.common import Versioned, raw
from chalicelib.storage.documents.report import ReportDoc
from chalicelib.storage.pagination import StoredPage
from chalicelib.storage.tables import LoyaltyRecord, get_item, save_if
from chalicelib.storage.transactions import Tx

KIND = "report"
SSE = "AES256"
PART_SIZE = 5 * 1024 * 1024
"""Multipart parts are this big: S3's minimum for every part but the last, so the worker holds at most 5 MiB
of the file whatever its size (10,000 parts allow a 50 GiB file)."""
RECORD_TTL = timedelta(days=30)
FILE_DAYS = 7
"""How long the bucket keeps a report (infra/template.py REPORTS_EXPIRE_DAYS)."""


def list_pk(tenant_id: str) -> str:
    return f"{tenant_id}#report"


def file_key(tenant_id: str, report_id: str, extension: str) -> str:
    return f"reports/{tenant_id}/{report_id}.{extension}"


# --- the request record -----------------------------------------------------------------

def _record(tenant_id: str, report_id: str, doc: ReportDoc, version: int, at: datetime,
            created_at: datetime) -> LoyaltyRecord:
    return LoyaltyRecord(list_pk(tenant_id), report_id, kind=KIND, doc=doc.dump(), version=version, at=at,
                         expires_at_epoch=int((created_at + RECORD_TTL).timestamp()))


def add(tx: Tx, tenant_id: str, report_id: str, doc: ReportDoc, at: datetime) -> None:
    """Record a new request (ids are fresh: the condition only guards against a clash)."""
    tx.save(_record(tenant_id, report_id, doc, 1, at, at), condition=LoyaltyRecord.pk.does_not_exist())


def get(tenant_id: str, report_id: str) -> Versioned[ReportDoc] | None:
    rec = get_item(LoyaltyRecord, list_pk(tenant_id), report_id)
    if rec is None or rec.kind != KIND:
        return None
    return Versioned(ReportDoc.of(rec.doc), int(rec.version))


def save(tenant_id: str, report_id: str, doc: ReportDoc, version: int, at: datetime,
         created_at: datetime) -> bool:
    """Replace a record read at `version`; False if anyone changed it since (a concurrent worker won)."""
    return save_if(_record(tenant_id, report_id, doc, version + 1, at, created_at), LoyaltyRecord.version == version)


def list_page(tenant_id: str, limit: int, cursor: str | None) -> StoredPage[ReportDoc]:
    """The tenant's reports, newest first (ids start with their creation time)."""
    pk = list_pk(tenant_id)
    records, next_cursor = pagination.page_of(
        lambda size, start: LoyaltyRecord.query(pk, scan_index_forward=False, limit=size, page_size=size,
                                                last_evaluated_key=start, consistent_read=True),
        limit=limit, cursor=cursor, hash_attr="pk", hash_value=pk, key_attrs=("pk", "sk"),
    )
    return StoredPage([ReportDoc.of(r.doc) for r in records], next_cursor)


# --- what reports read ------------------------------------------------------------------

def ledger_day(scope: str, day: date, shard: int, page_size: int = 1000) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """One shard of one day of the by-day ledger index, oldest first: (index sort key, card number, entry doc).

    The index is eventually consistent: an entry written a moment ago may be
    missing, which is right for a report of past days.
    """
    pk = f"{scope}#ledger#{day.isoformat()}#{shard}"
    for rec in LoyaltyRecord.ledger_by_day.query(pk, page_size=page_size):
        sort_key = str(rec.gsi2sk)
        yield sort_key, sort_key.rsplit("#", 1)[1], raw(rec.doc)


def card_facts(tenant_id: str, numbers: list[str]) -> dict[str, tuple[str, str | None]]:
    """Card number -> (program id, customer id) for the given cards (BatchGetItem; unknown numbers left out)."""
    prefix = loyalty.card_pk(tenant_id, "")
    found: dict[str, tuple[str, str | None]] = {}
    keys = [(loyalty.card_pk(tenant_id, n), loyalty.CARD_SK) for n in dict.fromkeys(numbers)]
    for rec in LoyaltyRecord.batch_get(keys, attributes_to_get=["pk", "sk", "doc"]):
        facts = CardFacts.of(rec.doc)
        found[rec.pk[len(prefix):]] = (facts.program_id, facts.customer_id or None)
    return found


def card_states(tenant_id: str, numbers: list[str]) -> list[CardState]:
    """The given cards as they are now (BatchGetItem, 100 keys per call; unknown numbers left out)."""
    prefix = loyalty.card_pk(tenant_id, "")
    keys = [(loyalty.card_pk(tenant_id, n), loyalty.CARD_SK) for n in dict.fromkeys(numbers)]
    return [CardState.from_doc(rec.pk[len(prefix):], int(rec.version), raw(rec.doc))
            for rec in LoyaltyRecord.batch_get(keys)]


def receipt_totals(tenant_id: str, receipt_ids: list[str]) -> dict[str, int]:
    """Receipt id -> its total (minor units), for the receipts that exist."""
    return {rid: receipt.total for rid, receipt in loyalty.receipts(tenant_id, receipt_ids).items()}


# --- the file -----------------------------------------------------------------------

def _s3() -> Any:
    return client("s3")


class Upload:
    """One report file written as a stream of bytes: parts of PART_SIZE go to S3 as they fill.

    The part being filled is spooled to a temporary file (Lambda's /tmp), not
    held in memory: S3 wants at least 5 MiB per part, and a 5 MiB buffer
    would be the largest thing in the worker, growing with the file until the
    first part is full. From disk botocore streams the part in chunks, so
    memory is the same for a 3 MB file and a 3 GB one. A file smaller than one
    part is a single PutObject; a larger one a multipart upload, aborted if
    anything fails before `complete()` (the bucket's lifecycle rule also aborts
    forgotten uploads after a day). Rewriting a report (a redelivered message)
    replaces the object.
    """

    def __init__(self, tenant_id: str, report_id: str, extension: str, content_type: str) -> None:
        self.key = file_key(tenant_id, report_id, extension)
        self.content_type = content_type
        self.size = 0
        self._part: IO[bytes] = tempfile.TemporaryFile()
        self._part_size = 0
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []

    def write(self, data: bytes) -> None:
        self._part.write(data)
        self._part_size += len(data)
        self.size += len(data)
        if self._part_size >= PART_SIZE:
            self._flush_part()

    def _rewound(self) -> IO[bytes]:
        self._part.flush()
        self._part.seek(0)
        return self._part

    def _next_part(self) -> None:
        self._part.seek(0)
        self._part.truncate()
        self._part_size = 0

    def _flush_part(self) -> None:
        s3 = _s3()
        if self._upload_id is None:
            self._upload_id = s3.create_multipart_upload(
                Bucket=settings.reports_bucket, Key=self.key, ServerSideEncryption=SSE,
                ContentType=self.content_type)["UploadId"]
        number = len(self._parts) + 1
        etag = s3.upload_part(Bucket=settings.reports_bucket, Key=self.key, UploadId=self._upload_id,
                              PartNumber=number, Body=self._rewound(), ContentLength=self._part_size)["ETag"]
        self._parts.append({"ETag": etag, "PartNumber": number})
        self._next_part()

    def complete(self) -> None:
        try:
            if self._upload_id is None:
                _s3().put_object(Bucket=settings.reports_bucket, Key=self.key, Body=self._rewound(),
                                 ContentLength=self._part_size, ServerSideEncryption=SSE,
                                 ContentType=self.content_type)
                return
            if self._part_size:
                self._flush_part()
            _s3().complete_multipart_upload(Bucket=settings.reports_bucket, Key=self.key,
                                            UploadId=self._upload_id, MultipartUpload={"Parts": self._parts})
            self._upload_id = None
        finally:
            self._part.close()

    def abort(self) -> None:
        """Drop a started multipart upload (its parts are billed until aborted); safe to call twice."""
        self._part.close()
        if self._upload_id is not None:
            upload_id, self._upload_id = self._upload_id, None
            _s3().abort_multipart_upload(Bucket=settings.reports_bucket, Key=self.key, UploadId=upload_id)


def download_url(tenant_id: str, report_id: str, extension: str, filename: str, expires_seconds: int) -> str:
    """A presigned GET of the report that saves it under `filename` (ASCII only: it is built from ids)."""
    return str(_s3().generate_presigned_url(
        "get_object", Params={"Bucket": settings.reports_bucket, "Key": file_key(tenant_id, report_id, extension),
                              "ResponseContentDisposition": f'attachment; filename="{filename}"'},
        ExpiresIn=expires_seconds))


def read_file(tenant_id: str, report_id: str, extension: str) -> bytes:
    """The whole file (tests and small checks; clients download through the presigned URL)."""
    return bytes(_s3().get_object(Bucket=settings.reports_bucket,
                                  Key=file_key(tenant_id, report_id, extension))["Body"].read())
