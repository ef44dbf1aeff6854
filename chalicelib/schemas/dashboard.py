"""The tenant dashboard: today's and this month's figures, from counters kept on write."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import Field

from chalicelib.schemas.common import Output, Query, Slug


class DashboardQuery(Query):
    program_id: Slug | None = Field(default=None, description="Only this program's figures (new_customers stays "
                                    "tenant-wide: customers belong to no program).")


class Figures(Output):
    """Counted on write, in the tenant's local time. Money in minor units, points as integers."""

    receipts: int = Field(description="Purchases processed (a replayed receipt counts once, a refused one never).")
    revenue: int = Field(description="Sum of receipt totals, before discounts.")
    points_earned: int
    points_redeemed: int
    money_redeemed: int = Field(description="Discount given for redeemed points.")
    refunds: int
    refunded: int = Field(description="Money refunded.")
    points_reversed: int
    cards_issued: int = Field(description="Cards issued, and pre-printed cards registered to a customer.")
    cards_activated: int = Field(description="Cards that became active: at issue, registration or first purchase.")
    new_customers: int
    average_receipt: int = Field(description="revenue / receipts, rounded half to even.")
    net_revenue: int = Field(description="revenue - refunded.")
    redemption_share_bps: int = Field(description="money_redeemed / revenue in basis points, rounded half to even.")
    points_net: int = Field(description="points_earned - points_redeemed - points_reversed.")


class Dashboard(Output):
    today: Figures
    month: Figures = Field(description="From the first of this local month up to now, today included.")
    day: date = Field(description="Today in the tenant's time zone.")
    month_start: date
    as_of: datetime
    timezone: str
    program_id: str | None = None
