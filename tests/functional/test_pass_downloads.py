"""A member's Apple pass handed over as a short-lived presigned S3 link (services/wallet/downloads.py)."""

from __future__ import annotations

import io
import json
import zipfile
from urllib.parse import parse_qs, unquote, urlparse

import boto3

from chalicelib.schemas.wallet import PKPASS_TYPE
from chalicelib.services.wallet import downloads
from chalicelib.settings import settings
from infra.local import wallet_keys
from tests.functional.conftest import Api, TenantKeys


def test_the_pass_link_points_at_a_private_encrypted_object_that_saves_as_the_cards_pass(
        api: Api, tenant: TenantKeys) -> None:
    wallet_keys.ensure_configured()
    card = api.post("/v1/cards", tenant.pos, {"program_id": "main", "customer": {"phone": "+79161239901"}})
    assert card.status_code == 201, card.data
    number = card.data["number"]

    link = urlparse(downloads.apple_pass_link(tenant.tenant_id, number))
    query = parse_qs(link.query)
    assert query["response-content-type"] == [PKPASS_TYPE]
    assert query["response-content-disposition"] == [f'attachment; filename="{number}.pkpass"']
    assert query["response-cache-control"] == ["no-store"]
    assert query["X-Amz-Expires"] == [str(downloads.LINK_SECONDS)] == ["120"]

    assert link.hostname == f"{settings.reports_bucket}.s3.amazonaws.com"
    bucket, key = settings.reports_bucket, unquote(link.path).lstrip("/")
    prefix, tenant_part, random_part, filename = key.split("/")
    assert (prefix, tenant_part, filename) == ("downloads", tenant.tenant_id, f"{number}.pkpass")
    assert len(random_part) >= 24, "an unguessable key"

    stored = boto3.client("s3", region_name=settings.region).get_object(Bucket=bucket, Key=key)
    assert stored["ContentType"] == PKPASS_TYPE and stored["ServerSideEncryption"] == "AES256"
    with zipfile.ZipFile(io.BytesIO(stored["Body"].read())) as pkpass:
        assert json.loads(pkpass.read("pass.json"))["barcodes"][0]["message"] == number

    again = urlparse(downloads.apple_pass_link(tenant.tenant_id, number))
    assert again.path != link.path, "every download is its own object"
