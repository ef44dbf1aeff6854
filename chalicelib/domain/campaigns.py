"""Campaign rules without storage: who is held out as the control group, and the uplift arithmetic."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

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


# --- results: attribution against the control group -----------------------------------------

@dataclass(frozen=True)
class GroupTotals:
    """What one group (sent to, or held out) did within the attribution window."""

    members: int
    buyers: int
    """Members with at least one purchase in the window."""
    receipts: int
    revenue: int
    """Money of those purchases net of their refunds, in minor units (may be negative)."""


@dataclass(frozen=True)
class Attribution:
    target_conversion_bps: int | None
    control_conversion_bps: int | None
    target_revenue_per_member: int | None
    control_revenue_per_member: int | None
    conversion_uplift_bps: int | None
    """Target minus control conversion, in basis points of members (150 = 1.5 percentage points)."""
    incremental_revenue: int | None
    """(target - control revenue per member) x target members: what the mailing added, in minor units."""


def divide_half_even(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded to the nearest integer, ties to even (no float, any sign of numerator)."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    quotient, remainder = divmod(numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2 == 1):
        quotient += 1
    return quotient


def attribution(target: GroupTotals, control: GroupTotals) -> Attribution:
    """Conversion, revenue per member and uplift of a campaign, in integers rounded half to even.

    Rates and per-member figures are rounded once each. The uplift and the
    incremental revenue are computed from the exact fractions, not from the
    rounded rates, so they are off by at most half a unit and identical
    groups give exactly zero. A group with no members has no rates, and
    without a control group there is no baseline: the uplift is then None.
    """
    def rates(group: GroupTotals) -> tuple[int | None, int | None]:
        if group.members <= 0:
            return None, None
        return (divide_half_even(group.buyers * BPS, group.members),
                divide_half_even(group.revenue, group.members))

    target_conversion, target_rpm = rates(target)
    control_conversion, control_rpm = rates(control)
    uplift = incremental = None
    if target.members > 0 and control.members > 0:
        both = target.members * control.members
        uplift = divide_half_even((target.buyers * control.members - control.buyers * target.members) * BPS, both)
        incremental = divide_half_even(target.revenue * control.members - control.revenue * target.members,
                                       control.members)
    return Attribution(target_conversion, control_conversion, target_rpm, control_rpm, uplift, incremental)
