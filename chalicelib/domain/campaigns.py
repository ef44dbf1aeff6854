"""Campaign rules without storage: who is held out as the control group, and the uplift arithmetic."""

from __future__ import annotations

import hashlib

BPS = 10_000


def in_control_group(campaign_id: str, customer_id: str, holdout_bps: int) -> bool:
    """A stable, unpredictable draw per campaign and customer: the same answer on every retry of the fan-out."""
    digest = hashlib.sha256(f"{campaign_id}|{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BPS < holdout_bps


def message_key(campaign_id: str, customer_id: str) -> str:
    """The dedup key of a campaign's message to one customer: never two copies, whatever SQS does."""
    return f"campaign:{campaign_id}:{customer_id}"


def delay_until(seconds_left: float, max_delay: int = 900) -> int:
    """SQS delays a message at most 15 minutes: a campaign scheduled later is re-queued until its time."""
    return max(0, min(max_delay, int(seconds_left + 0.999)))
