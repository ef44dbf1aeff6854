"""Whether a coupon applies to a receipt, and why not: one stable reason per refused code.

A refused coupon never refuses the purchase: the receipt goes through without
it and the answer says why (unknown, expired, used up...). Codes are
unguessable random strings (80 bits) shown in groups of four.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from chalicelib.schemas.coupons import Campaign, CampaignStatus, EffectKind, GenerationStatus

CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
"""Crockford's base32: no I, L, O, U, so codes read aloud or typed from paper survive."""
CODE_LENGTH = 16
MAX_PER_RECEIPT = 5


def generate_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def display(code: str) -> str:
    """'ABCD-EFGH-JKMN-PQRS' for unique codes; shared codes are shown as chosen."""
    if len(code) == CODE_LENGTH and all(c in CODE_ALPHABET for c in code):
        return "-".join(code[i:i + 4] for i in range(0, CODE_LENGTH, 4))
    return code


@dataclass(frozen=True)
class Refusal:
    reason: str
    message: str


@dataclass(frozen=True)
class Usage:
    uses: int
    """Uses of this code so far."""
    customer_uses: int
    """Uses of this campaign by this receipt's customer (card) so far."""


def check(campaign: Campaign | None, usage: Usage, *, program_id: str, total: int, categories: list[str],
          at: datetime, points_card: bool, seen: set[str], code: str) -> Refusal | None:
    """None when the coupon applies; otherwise the reason it does not."""
    if code in seen:
        return Refusal("duplicate", "This code is already on the receipt.")
    if len(seen) >= MAX_PER_RECEIPT:
        return Refusal("too_many_coupons", f"At most {MAX_PER_RECEIPT} coupons per receipt.")
    if campaign is None:
        return Refusal("unknown_code", "No such coupon code.")
    limits = campaign.limits
    if campaign.program_id != program_id:
        return Refusal("wrong_program", "This coupon belongs to another program.")
    if campaign.status is not CampaignStatus.ACTIVE:
        return Refusal("campaign_paused", "This coupon's campaign is paused.")
    if campaign.mode == "unique" and campaign.generation is GenerationStatus.FAILED:
        return Refusal("campaign_paused", "This coupon's campaign could not be prepared.")
    if limits.starts_at and at < limits.starts_at:
        return Refusal("not_started", f"This coupon is valid from {limits.starts_at.isoformat()}.")
    if limits.ends_at and at >= limits.ends_at:
        return Refusal("expired", f"This coupon expired at {limits.ends_at.isoformat()}.")
    if limits.uses_per_code and usage.uses >= limits.uses_per_code:
        return Refusal("used_up", "This coupon has already been used." if limits.uses_per_code == 1
                       else f"This coupon has been used {usage.uses} times, its limit.")
    if limits.per_customer and usage.customer_uses >= limits.per_customer:
        return Refusal("customer_limit", f"This customer has used this campaign {usage.customer_uses} time(s), "
                       "its limit per customer.")
    if total < limits.min_receipt:
        return Refusal("below_min_receipt", f"The receipt must total at least {limits.min_receipt}.")
    if limits.categories and not any(c in limits.categories for c in categories):
        return Refusal("no_matching_items", "No item on the receipt is in the coupon's categories.")
    if campaign.effect.kind in (EffectKind.BONUS_POINTS, EffectKind.MULTIPLIER) and not points_card:
        return Refusal("needs_points_card", "This coupon gives points: identify a points card.")
    return None


def matching(campaign: Campaign, categories: list[str]) -> list[bool]:
    """Per line: does the coupon's effect apply to it?"""
    wanted = campaign.limits.categories
    return [not wanted or c in wanted for c in categories]
