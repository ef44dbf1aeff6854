"""Mailing campaigns and their recipients in the loyalty table. Every call takes the tenant explicitly.

<tid>#mail-campaigns       / campaign#<id>     the campaign: definition, status, counts, fan-out position (versioned)
<tid>#mail-campaign#<id>   / r#<customer id>   one member of the segment: `target` (sent to) or `control` (held out)
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from pynamodb.exceptions import PutError

from chalicelib.storage import pagination
from chalicelib.storage.documents.campaign import MailCampaignDoc, Recipient
from chalicelib.storage.documents.common import Versioned
from chalicelib.storage.pagination import StoredPage
from chalicelib.storage.tables import LoyaltyRecord, condition_failed, get_item, save_if


def campaigns_pk(tenant_id: str) -> str:
    return f"{tenant_id}#mail-campaigns"


def recipients_pk(tenant_id: str, campaign_id: str) -> str:
    return f"{tenant_id}#mail-campaign#{campaign_id}"


class Changed(Exception):
    """The campaign was saved by someone else since it was read (another copy of the job, a cancel)."""


def _campaign(rec: LoyaltyRecord) -> MailCampaignDoc:
    doc = MailCampaignDoc.of(rec.doc)
    doc.created_at = rec.at
    return doc


def get(tenant_id: str, campaign_id: str) -> Versioned[MailCampaignDoc] | None:
    """The campaign (with `created_at`, the record's time) and its version, or None."""
    rec = get_item(LoyaltyRecord, campaigns_pk(tenant_id), f"campaign#{campaign_id}")
    if rec is None:
        return None
    return Versioned(_campaign(rec), int(rec.version))


def add(tenant_id: str, campaign_id: str, doc: MailCampaignDoc, at: datetime) -> bool:
    """False if a campaign with this id exists."""
    record = LoyaltyRecord(campaigns_pk(tenant_id), f"campaign#{campaign_id}", kind="mail_campaign",
                           doc=doc.dump(), version=1, at=at)
    return save_if(record, LoyaltyRecord.pk.does_not_exist())


def save(tenant_id: str, campaign_id: str, doc: MailCampaignDoc, version: int, created_at: datetime) -> int:
    """Replace the campaign if still at `version`; the new version, or Changed."""
    body = doc.dump()
    try:
        LoyaltyRecord(campaigns_pk(tenant_id), f"campaign#{campaign_id}", kind="mail_campaign", doc=body,
                      version=version + 1, at=created_at).save(condition=LoyaltyRecord.version == version)
    except PutError as err:
        if condition_failed(err):
            raise Changed(campaign_id) from None
        raise
    return version + 1


def list_page(tenant_id: str, limit: int, cursor: str | None) -> StoredPage[MailCampaignDoc]:
    pk = campaigns_pk(tenant_id)
    records, next_cursor = pagination.page_of(
        lambda size, start: LoyaltyRecord.query(pk, LoyaltyRecord.sk.startswith("campaign#"), limit=size,
                                                page_size=size, last_evaluated_key=start, scan_index_forward=False),
        limit=limit, cursor=cursor, hash_attr="pk", hash_value=pk, key_attrs=("pk", "sk"))
    return StoredPage([_campaign(r) for r in records], next_cursor)


def add_recipients(tenant_id: str, campaign_id: str, rows: list[tuple[str, str]], at: datetime) -> None:
    """Record (customer id, group) pairs; rewriting the same pair on a retried page changes nothing."""
    with LoyaltyRecord.batch_write() as batch:
        for customer_id, group in rows:
            batch.save(LoyaltyRecord(recipients_pk(tenant_id, campaign_id), f"r#{customer_id}", kind="recipient",
                                     doc=Recipient(group=group).dump(), at=at))


def recipients(tenant_id: str, campaign_id: str) -> Iterator[tuple[str, str, datetime]]:
    """Every (customer id, group, recorded at) of a campaign (results and reports)."""
    for rec in LoyaltyRecord.query(recipients_pk(tenant_id, campaign_id), LoyaltyRecord.sk.startswith("r#")):
        yield rec.sk[2:], Recipient.of(rec.doc).group, rec.at
