"""Coupon campaigns, codes and their uses (the `loyalty` table). Every call takes the tenant.

<tid>#coupons                    / campaign#<cid>  the campaign (Campaign fields), versioned
<tid>#coupon#<CODE>              / coupon          a code: its campaign and uses so far, versioned;
                                                   indexed by campaign (gsi1) so a campaign's codes can be listed
<tid>#coupon-use#<cid>#<holder>  / use             how many times one customer (or card) used a campaign

A purchase that applies a coupon changes the code's and the customer's use
counts in its own transaction, each guarded by the version it read: two tills
cannot both spend the last use.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pynamodb.exceptions import DoesNotExist

from chalicelib.schemas.coupons import Campaign
from chalicelib.storage.tables import LoyaltyRecord
from chalicelib.storage.transactions import Tx

CAMPAIGN_KIND = "coupon_campaign"
CODE_SK = "coupon"
USE_SK = "use"


def campaigns_pk(tenant_id: str) -> str:
    return f"{tenant_id}#coupons"


def campaign_sk(campaign_id: str) -> str:
    return f"campaign#{campaign_id}"


def code_pk(tenant_id: str, code: str) -> str:
    return f"{tenant_id}#coupon#{code}"


def campaign_codes_pk(tenant_id: str, campaign_id: str) -> str:
    return f"{tenant_id}#campaign#{campaign_id}"


def use_pk(tenant_id: str, campaign_id: str, holder: str) -> str:
    return f"{tenant_id}#coupon-use#{campaign_id}#{holder}"


def _get(pk: str, sk: str) -> LoyaltyRecord | None:
    try:
        return LoyaltyRecord.get(pk, sk, consistent_read=True)
    except DoesNotExist:
        return None


@dataclass
class CodeState:
    code: str
    campaign_id: str
    uses: int
    version: int


def get_campaign(tenant_id: str, campaign_id: str) -> tuple[Campaign, int] | None:
    rec = _get(campaigns_pk(tenant_id), campaign_sk(campaign_id))
    if rec is None:
        return None
    return Campaign.model_validate(rec.doc.as_dict()), int(rec.version)


def get_code(tenant_id: str, code: str) -> CodeState | None:
    rec = _get(code_pk(tenant_id, code), CODE_SK)
    if rec is None:
        return None
    doc = rec.doc.as_dict()
    return CodeState(code=code, campaign_id=str(doc["campaign_id"]), uses=int(doc.get("uses", 0)),
                     version=int(rec.version))


def customer_uses(tenant_id: str, campaign_id: str, holder: str) -> tuple[int, int]:
    """(uses, version) of a campaign by one customer; (0, 0) when never used."""
    rec = _get(use_pk(tenant_id, campaign_id, holder), USE_SK)
    if rec is None:
        return 0, 0
    return int(rec.doc.as_dict().get("uses", 0)), int(rec.version)


def code_record(tenant_id: str, code: str, campaign_id: str, at: datetime) -> LoyaltyRecord:
    """A new code, unused, listed under its campaign."""
    return LoyaltyRecord(code_pk(tenant_id, code), CODE_SK, kind="coupon", doc={"campaign_id": campaign_id, "uses": 0},
                         version=1, at=at, gsi1pk=campaign_codes_pk(tenant_id, campaign_id), gsi1sk=code)


def count_code_use(tx: Tx, tenant_id: str, state: CodeState, delta: int, at: datetime) -> None:
    """Set the code's uses to uses + delta, if nobody changed it since it was read."""
    rec = code_record(tenant_id, state.code, state.campaign_id, at)
    rec.doc = {"campaign_id": state.campaign_id, "uses": max(state.uses + delta, 0)}
    rec.version = state.version + 1
    tx.save(rec, condition=LoyaltyRecord.version == state.version)


def count_customer_use(tx: Tx, tenant_id: str, campaign_id: str, holder: str, uses: int, version: int, delta: int,
                       at: datetime) -> None:
    """Set one customer's uses of a campaign to uses + delta, guarded by the version read (0: must not exist)."""
    rec = LoyaltyRecord(use_pk(tenant_id, campaign_id, holder), USE_SK, kind="coupon_use",
                        doc={"uses": max(uses + delta, 0)}, version=version + 1, at=at)
    condition = LoyaltyRecord.pk.does_not_exist() if version == 0 else LoyaltyRecord.version == version
    tx.save(rec, condition=condition)


def campaign_doc(campaign: Campaign) -> dict[str, Any]:
    return campaign.model_dump(mode="json")
