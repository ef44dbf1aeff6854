"""The tenant's image library: the record in the `loyalty` table, the file in the assets bucket.

    <tid>#assets / asset#<id>                                   name, type, size, pixels, upload time
    s3://<assets bucket>/tenants/<tid>/assets/<id>              the image, encrypted, with its Content-Type

The bucket is private (public access blocked): images reach mail clients
through our own public route, which reads them here. Ids are random and never
reused, so a served image never changes (cached for a year).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.settings import settings
from chalicelib.storage import transactions
from chalicelib.storage.aws import client
from chalicelib.storage.documents.asset import AssetDoc
from chalicelib.storage.tables import AuditRecord, LoyaltyRecord, get_item
from chalicelib.storage.transactions import Tx

KIND = "asset"
SSE = "AES256"
MAX_LISTED = 500


@dataclass(frozen=True)
class StoredAsset:
    asset_id: str
    doc: AssetDoc


def list_pk(tenant_id: str) -> str:
    return f"{tenant_id}#assets"


def _sk(asset_id: str) -> str:
    return f"asset#{asset_id}"


def object_key(tenant_id: str, asset_id: str) -> str:
    return f"tenants/{tenant_id}/assets/{asset_id}"


def _s3() -> Any:
    return client("s3")


def put(tenant_id: str, asset_id: str, doc: AssetDoc, data: bytes, at: datetime, audit_rec: AuditRecord) -> bool:
    """Store the file, then its record and audit entry together; False if the id is taken (random: practically
    never). The file goes first, so a listed image always has its file."""
    _s3().put_object(Bucket=settings.assets_bucket, Key=object_key(tenant_id, asset_id), Body=data,
                     ContentType=doc.content_type, ServerSideEncryption=SSE)

    def build(tx: Tx) -> None:
        tx.save(LoyaltyRecord(list_pk(tenant_id), _sk(asset_id), kind=KIND, doc=doc.dump(), version=1, at=at),
                condition=LoyaltyRecord.pk.does_not_exist())
        tx.save(audit_rec)

    return transactions.written(build)


def get(tenant_id: str, asset_id: str) -> StoredAsset | None:
    rec = get_item(LoyaltyRecord, list_pk(tenant_id), _sk(asset_id))
    if rec is None or rec.kind != KIND:
        return None
    return StoredAsset(asset_id, AssetDoc.of(rec.doc))


def list_all(tenant_id: str) -> list[StoredAsset]:
    """The tenant's images, at most MAX_LISTED (a library of logos and banners, not a photo archive)."""
    found = LoyaltyRecord.query(list_pk(tenant_id), LoyaltyRecord.sk.startswith("asset#"), limit=MAX_LISTED,
                                consistent_read=True)
    return [StoredAsset(rec.sk.split("#", 1)[1], AssetDoc.of(rec.doc)) for rec in found if rec.kind == KIND]


def count(tenant_id: str) -> int:
    return sum(1 for _ in LoyaltyRecord.query(list_pk(tenant_id), LoyaltyRecord.sk.startswith("asset#"),
                                              attributes_to_get=["pk"], consistent_read=True))


def delete(tenant_id: str, asset_id: str, audit_rec: AuditRecord) -> bool:
    """The record with its audit entry (the image stops being listed or served), then the file; False if there
    was no such record (deleted meanwhile)."""

    def build(tx: Tx) -> None:
        tx.delete(LoyaltyRecord(list_pk(tenant_id), _sk(asset_id)), condition=LoyaltyRecord.pk.exists())
        tx.save(audit_rec)

    if not transactions.written(build):
        return False
    _s3().delete_object(Bucket=settings.assets_bucket, Key=object_key(tenant_id, asset_id))
    return True


def delete_tenant_files_page(tenant_id: str, budget: int) -> tuple[int, bool]:
    """Delete up to `budget` of the tenant's image files (the tenant's purge); (deleted, finished).

    Only the current versions: the bucket's lifecycle expires the noncurrent ones (30 days), so the
    files are gone for good within a month of the purge, as backups of records are.
    """
    prefix = f"tenants/{tenant_id}/"
    listed = _s3().list_objects_v2(Bucket=settings.assets_bucket, Prefix=prefix, MaxKeys=min(budget, 1000))
    keys = [{"Key": str(item["Key"])} for item in listed.get("Contents", [])]
    if keys:
        _s3().delete_objects(Bucket=settings.assets_bucket, Delete={"Objects": keys, "Quiet": True})
    return len(keys), not listed.get("IsTruncated", False)


def read(tenant_id: str, asset_id: str) -> bytes | None:
    """The image's bytes, or None if there is no such object."""
    try:
        response = _s3().get_object(Bucket=settings.assets_bucket, Key=object_key(tenant_id, asset_id))
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
            return None
        raise
    return bytes(response["Body"].read())
