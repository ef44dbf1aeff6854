"""Customer imports: the job record in the `loyalty` table, the files in the reports bucket (tenant explicit).

    <tid>#imports / import#<iid>     an import: options, status, progress (byte offset, line, counts); version

    s3://<reports bucket>/imports/<tid>/<iid>/upload.csv               the file as the client uploaded it
    s3://<reports bucket>/imports/<tid>/<iid>/result/part-00001.csv    rejected rows of one processed chunk
    s3://<reports bucket>/imports/<tid>/<iid>/result.csv               the parts joined, when the import ends

The record holds no personal data (only counts and offsets); the files do,
so they live in the private, encrypted reports bucket and every object this
module writes asks for server-side encryption explicitly.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.settings import settings
from chalicelib.storage import pagination
from chalicelib.storage.aws import client
from chalicelib.storage.documents.common import Versioned
from chalicelib.storage.documents.customer_import import ImportJob
from chalicelib.storage.pagination import StoredPage
from chalicelib.storage.tables import LoyaltyRecord, get_item, save_if
from chalicelib.storage.transactions import Tx

KIND = "customer_import"
SSE = "AES256"
MULTIPART_MIN = 8 * 1024 * 1024
"""Parts of the joined result file are at least this big (S3 wants 5 MB but for the last one)."""
READ_CHUNK = 64 * 1024


def list_pk(tenant_id: str) -> str:
    return f"{tenant_id}#imports"


def _sk(import_id: str) -> str:
    return f"import#{import_id}"


def prefix(tenant_id: str, import_id: str) -> str:
    return f"imports/{tenant_id}/{import_id}/"


def upload_key(tenant_id: str, import_id: str) -> str:
    return f"{prefix(tenant_id, import_id)}upload.csv"


def part_key(tenant_id: str, import_id: str, part: int) -> str:
    return f"{prefix(tenant_id, import_id)}result/part-{part:05d}.csv"


def result_key(tenant_id: str, import_id: str) -> str:
    return f"{prefix(tenant_id, import_id)}result.csv"


# --- the job record -----------------------------------------------------------------

def add(tx: Tx, tenant_id: str, import_id: str, doc: ImportJob, at: datetime) -> None:
    tx.save(LoyaltyRecord(list_pk(tenant_id), _sk(import_id), kind=KIND, doc=doc.dump(), version=1, at=at),
            condition=LoyaltyRecord.pk.does_not_exist())


def get(tenant_id: str, import_id: str) -> Versioned[ImportJob] | None:
    rec = get_item(LoyaltyRecord, list_pk(tenant_id), _sk(import_id))
    if rec is None:
        return None
    return Versioned(ImportJob.of(rec.doc), int(rec.version))


def save(tenant_id: str, import_id: str, doc: ImportJob, version: int, at: datetime) -> bool:
    """Replace an import read at `version`; False if anyone changed it since (the caller re-reads)."""
    rec = LoyaltyRecord(list_pk(tenant_id), _sk(import_id), kind=KIND, doc=doc.dump(), version=version + 1, at=at)
    return save_if(rec, LoyaltyRecord.version == version)


def list_page(tenant_id: str, limit: int, cursor: str | None) -> StoredPage[ImportJob]:
    """The tenant's imports, newest first (ids start with their creation time)."""
    pk = list_pk(tenant_id)
    records, next_cursor = pagination.page_of(
        lambda size, start: LoyaltyRecord.query(pk, LoyaltyRecord.sk.startswith("import#"), scan_index_forward=False,
                                                limit=size, page_size=size, last_evaluated_key=start,
                                                consistent_read=True),
        limit=limit, cursor=cursor, hash_attr="pk", hash_value=pk, key_attrs=("pk", "sk"),
    )
    return StoredPage([ImportJob.of(r.doc) for r in records], next_cursor)


# --- the files ----------------------------------------------------------------------

def _s3() -> Any:
    return client("s3")


def upload_url(tenant_id: str, import_id: str, expires_seconds: int) -> str:
    """A presigned PUT of the upload object (the bucket's default encryption applies to it)."""
    return str(_s3().generate_presigned_url(
        "put_object", Params={"Bucket": settings.reports_bucket, "Key": upload_key(tenant_id, import_id)},
        ExpiresIn=expires_seconds))


def result_url(tenant_id: str, import_id: str, expires_seconds: int) -> str:
    return str(_s3().generate_presigned_url(
        "get_object", Params={"Bucket": settings.reports_bucket, "Key": result_key(tenant_id, import_id),
                              "ResponseContentDisposition": 'attachment; filename="import-result.csv"'},
        ExpiresIn=expires_seconds))


def put_upload(tenant_id: str, import_id: str, body: bytes) -> None:
    _put(upload_key(tenant_id, import_id), body)


class FileChanged(Exception):
    """The upload is no longer the object the import started on (its ETag changed)."""


def upload_head(tenant_id: str, import_id: str) -> tuple[int, str] | None:
    """The uploaded file's size and ETag, or None if nothing was uploaded yet."""
    try:
        head = _s3().head_object(Bucket=settings.reports_bucket, Key=upload_key(tenant_id, import_id))
    except ClientError as err:
        if err.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    return int(head["ContentLength"]), str(head["ETag"])


def _get_range(tenant_id: str, import_id: str, etag: str, byte_range: str) -> Any:
    """A Range GET of the upload, only if it is still the object with `etag` (a re-upload is FileChanged)."""
    try:
        return _s3().get_object(Bucket=settings.reports_bucket, Key=upload_key(tenant_id, import_id),
                                Range=byte_range, IfMatch=etag)["Body"]
    except ClientError as err:
        if err.response["Error"]["Code"] in ("PreconditionFailed", "412", "NoSuchKey", "404"):
            raise FileChanged from None
        raise


def read_upload(tenant_id: str, import_id: str, etag: str, start: int, end: int) -> bytes:
    """Bytes start..end (inclusive) of the upload."""
    return bytes(_get_range(tenant_id, import_id, etag, f"bytes={start}-{end}").read())


class Stream:
    """The upload from a byte offset on, read in 64 KB pieces; close it when done (the rest is never fetched)."""

    def __init__(self, tenant_id: str, import_id: str, etag: str, start: int) -> None:
        self._body = _get_range(tenant_id, import_id, etag, f"bytes={start}-")

    def chunks(self) -> Iterator[bytes]:
        yield from self._body.iter_chunks(chunk_size=READ_CHUNK)

    def close(self) -> None:
        self._body.close()


def put_part(tenant_id: str, import_id: str, part: int, text: str) -> None:
    """One chunk's rejected rows; a rerun of the chunk writes the same key (never a second copy)."""
    _put(part_key(tenant_id, import_id, part), text.encode("utf-8"))


def _put(key: str, body: bytes) -> None:
    _s3().put_object(Bucket=settings.reports_bucket, Key=key, Body=body, ServerSideEncryption=SSE)


def _read(key: str) -> bytes:
    return bytes(_s3().get_object(Bucket=settings.reports_bucket, Key=key)["Body"].read())


def join_result(tenant_id: str, import_id: str, head: bytes, parts: list[int]) -> None:
    """Write result.csv as `head` + the parts in order: one PUT when small, else a multipart upload.

    Memory stays at one multipart piece (8 MB) plus one part; writing it
    again (a redelivered job) replaces the object with the same bytes.
    """
    s3, bucket, key = _s3(), settings.reports_bucket, result_key(tenant_id, import_id)
    buffer = bytearray(head)
    upload_id: str | None = None
    pieces: list[dict[str, Any]] = []
    try:
        for part in parts:
            buffer += _read(part_key(tenant_id, import_id, part))
            if len(buffer) >= MULTIPART_MIN:
                if upload_id is None:
                    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, ServerSideEncryption=SSE)["UploadId"]
                number = len(pieces) + 1
                etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number,
                                      Body=bytes(buffer))["ETag"]
                pieces.append({"ETag": etag, "PartNumber": number})
                buffer = bytearray()
        if upload_id is None:
            _put(key, bytes(buffer))
            return
        if buffer:
            number = len(pieces) + 1
            etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number,
                                  Body=bytes(buffer))["ETag"]
            pieces.append({"ETag": etag, "PartNumber": number})
        s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": pieces})
    except Exception:
        if upload_id is not None:
            s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        raise


def read_result(tenant_id: str, import_id: str) -> bytes:
    return _read(result_key(tenant_id, import_id))


def delete_parts(tenant_id: str, import_id: str, parts: list[int]) -> None:
    """Drop the per-chunk parts once result.csv holds them (1,000 keys per call)."""
    keys = [{"Key": part_key(tenant_id, import_id, p)} for p in parts]
    for i in range(0, len(keys), 1000):
        _s3().delete_objects(Bucket=settings.reports_bucket, Delete={"Objects": keys[i:i + 1000], "Quiet": True})
