"""The promotion cost simulator: what an admin proposes, and what it would have cost over a past period."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field, model_validator

from chalicelib.schemas.common import Input, Output
from chalicelib.schemas.tenancy import ProgramBody

MAX_SIMULATION_DAYS = 400
"""Like reports: a year-on-year replay fits. Periods over the synchronous limit run as a report."""


class SimulationRequest(Input):
    """Replay the program's receipts of the UTC days [from, to) through its current rules and `proposed`."""

    from_: date = Field(alias="from")
    to: date
    proposed: ProgramBody = Field(description="The full proposed program, as PUT /v1/programs/{id} takes it.")

    @model_validator(mode="after")
    def _period(self) -> SimulationRequest:
        if self.to <= self.from_:
            raise ValueError("`to` must be after `from` (the period is [from, to))")
        if (self.to - self.from_).days > MAX_SIMULATION_DAYS:
            raise ValueError(f"the period may span at most {MAX_SIMULATION_DAYS} days")
        return self


class SimulatedFigures(Output):
    """Points under the current and the proposed rules, and what the difference costs (minor units)."""

    receipts: int
    points_current: int
    points_proposed: int
    extra_points: int
    expected_redemption_cost: int = Field(description="extra_points x redemption_rate_bps x point_value, "
                                          "half-even, minor units.")
    liability_change: int = Field(description="extra_points x point_value, minor units: issued points are owed "
                                  "until redeemed or expired.")


class SimulatedDay(SimulatedFigures):
    day: date


class SimulatedCategory(SimulatedFigures):
    category: str = Field(description="A line category; `(receipt bonus)` for per-receipt promotion bonuses.")


class SimulatedTier(Output):
    tier: str
    cards_current: int = Field(description="Cards of the period's receipts at this tier now.")
    cards_proposed: int = Field(description="The same cards at the level their qualification reaches under the "
                                "proposed thresholds.")


class RedemptionRate(Output):
    model_config = {"extra": "forbid", "serialize_by_alias": True, "populate_by_name": True}

    rate_bps: int = Field(description="Points redeemed per point earned, basis points (half-even).")
    basis: Literal["period", "lookback"] = Field(description="period: the simulated days' ledger; lookback: "
                                                 "the dashboard counters of the 90 tenant-local days up to `to`, "
                                                 "used when the period had too few redemptions.")
    from_: date = Field(alias="from")
    to: date
    points_earned: int
    points_redeemed: int
    redemptions: int = Field(description="Redemption entries in the simulated period (whatever the basis).")


class SimulationResult(Output):
    """The replay of [from, to): totals, per day, per category, and tiers under the proposed thresholds."""

    model_config = {"extra": "forbid", "serialize_by_alias": True, "populate_by_name": True}

    program_id: str
    from_: date = Field(alias="from")
    to: date
    point_value: int = Field(description="The proposed point value (minor units) the money figures use.")
    totals: SimulatedFigures
    customers_affected: int = Field(description="Customers (or anonymous cards) whose points would change.")
    redemption_rate: RedemptionRate
    by_day: list[SimulatedDay]
    by_category: list[SimulatedCategory]
    tiers: list[SimulatedTier] = Field(default_factory=list, description="Only when the proposal has tiers.")
    tiers_approximate: bool = False
    notes: list[str] = Field(description="What the replay leaves out or approximates.")
