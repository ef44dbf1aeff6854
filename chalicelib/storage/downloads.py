"""Files made for one download, handed over by a presigned link instead of through API Gateway.

    s3://<reports bucket>/downloads/<tid>/<random id>/<filename>    encrypted; expired by the bucket's lifecycle

Why: a deployed API Gateway returns a binary body as binary only when the
request's *first* Accept type is a binary media type, and a browser following a
link asks for `text/html` first, so a `.pkpass` answered by the API would reach
the member's phone as base64 text. S3 serves the bytes as they are, with the
type and the attachment name the link asks for.
"""

from __future__ import annotations

import secrets
from typing import Any

from chalicelib.settings import settings
from chalicelib.storage.aws import client

PREFIX = "downloads/"
SSE = "AES256"


def _s3() -> Any:
    return client("s3")


def put(tenant_id: str, filename: str, data: bytes, content_type: str, expires_seconds: int) -> str:
    """Store the file under an unguessable key and return a presigned GET that saves it as `filename`
    (ASCII only: built from ids) with `content_type`, valid for `expires_seconds`."""
    key = f"{PREFIX}{tenant_id}/{secrets.token_urlsafe(18)}/{filename}"
    _s3().put_object(Bucket=settings.reports_bucket, Key=key, Body=data, ContentType=content_type,
                     ServerSideEncryption=SSE)
    return str(_s3().generate_presigned_url(
        "get_object", Params={"Bucket": settings.reports_bucket, "Key": key, "ResponseContentType": content_type,
                              "ResponseContentDisposition": f'attachment; filename="{filename}"',
                              "ResponseCacheControl": "no-store"},
        ExpiresIn=expires_seconds))
