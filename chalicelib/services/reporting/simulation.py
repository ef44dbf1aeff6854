"""The promotion cost simulator: replay a past period's receipts through the current and a proposed rule set.

Receipts are found through the program's ledger entries of each day (the
by-day index, as the ledger report reads it): every receipt that earned or
redeemed points left an accrual, bonus or redemption entry naming it. A
receipt that moved no points under the current rules left none and is not
replayed. Each receipt is then read from its record (lines, categories,
amounts, refunds, tier, points redeemed) and priced by domain/simulation.py.

A period of up to SYNC_DAYS days and SYNC_RECEIPTS receipts is answered at
once and writes nothing; a larger one is recorded as a `simulation` report by
simulation_requests.py and built by the reports worker through
reports/simulation.py, which reads this module (so this module must not
import the reports service: that would close a cycle through the registry).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta

from chalicelib import clock
from chalicelib.domain import dashboard as dashboard_rules
from chalicelib.domain import reporting
from chalicelib.domain import simulation as rules
from chalicelib.domain.tiers import TierState
from chalicelib.errors import ApiError, ErrorDetail, not_found
from chalicelib.schemas.pos import LedgerEntry
from chalicelib.schemas.simulation import (
    RedemptionRate,
    SimulatedCategory,
    SimulatedDay,
    SimulatedFigures,
    SimulatedTier,
    SimulationRequest,
    SimulationResult,
)
from chalicelib.schemas.tenancy import Program, ProgramBody, ProgramKind, ProgramSpec
from chalicelib.services.program import catalog
from chalicelib.services.reporting.reports import ledger
from chalicelib.services.tenancy import tenancy
from chalicelib.storage import dashboard as dashboard_store
from chalicelib.storage import loyalty
from chalicelib.storage import reports as report_store

SYNC_DAYS = 31
SYNC_RECEIPTS = 2_000
MIN_REDEMPTIONS = 5
"""Fewer redemption entries than this in the period: the redemption rate is taken over LOOKBACK_DAYS instead."""
LOOKBACK_DAYS = 90
"""Read from the dashboard counters (tenant-local days, kept 400 days): receipts' points earned and redeemed."""
CARD_BATCH = 100
RECEIPT_TYPES = ("accrual", "bonus", "redemption")
NOTES = (
    "Coupons, referral bonuses and program geography are left out of both rule sets alike.",
    "Receipts that earned and redeemed no points under the rules of their day left no ledger entry and are not "
    "replayed.",
    "Refunds (in full, by amount or by items) reverse the same share of each replayed receipt's points as they "
    "reversed at the till, on each rule set's own line weights.",
    "Each receipt keeps the tier that priced it; tier counts under proposed thresholds use the cards' "
    "qualification figures now.",
)


class TooLarge(Exception):
    """More receipts than a synchronous answer may replay."""


@dataclass
class Observed:
    """Points earned and redeemed in the ledger over some days (for the redemption rate)."""

    earned: int = 0
    redeemed: int = 0
    redemptions: int = 0

    def add(self, entry: LedgerEntry) -> None:
        kind, points = entry.type, entry.points
        if kind in ("accrual", "bonus") and points > 0:
            self.earned += points
        elif kind == "redemption":
            self.redeemed -= points
            self.redemptions += 1


@dataclass
class Outcome:
    replay: rules.Replay
    observed: Observed
    basis: str
    rate_start: date
    tiers: list[tuple[str, int, int]] = field(default_factory=list)
    tiers_approximate: bool = False

    @property
    def rate_bps(self) -> int:
        return rules.rate_bps(self.observed.redeemed, self.observed.earned)


def proposed_spec(program_id: str, body: ProgramBody) -> ProgramSpec:
    return ProgramSpec.model_validate({"id": program_id, **body.model_dump(mode="json")}, strict=False)


def _receipts_of_day(tenant_id: str, program_id: str, day: date, cards: ledger.Cards, observed: Observed
                     ) -> dict[str, tuple[str, str]]:
    """The day's receipts of the program: receipt id -> (card number, holder); counts what the day earned.

    A purchase's accrual, bonus and redemption entries share its moment, so a receipt is on one day only.
    """
    found: dict[str, tuple[str, str]] = {}
    for number, customer_id, doc in ledger.program_entries(tenant_id, day, program_id, cards):
        entry = ledger.entry_of(doc)
        observed.add(entry)
        if entry.type in RECEIPT_TYPES and entry.receipt_id:
            found.setdefault(entry.receipt_id, (number, customer_id or f"card:{number}"))
    return found


def _lookback(tenant_id: str, program_id: str, end: date, redemptions: int) -> tuple[Observed, date]:
    """Points earned and redeemed over LOOKBACK_DAYS up to `end`, from the dashboard counters (one Query a day)."""
    start = end - timedelta(days=LOOKBACK_DAYS)
    observed = Observed(redemptions=redemptions)
    for day in reporting.days(start, end):
        totals = dashboard_rules.add_up(dashboard_store.day_rows(tenant_id, day), program_id)
        observed.earned += totals["points_earned"]
        observed.redeemed += totals["points_redeemed"]
    return observed, start


def _tier_states(tenant_id: str, numbers: set[str]) -> Iterator[TierState]:
    batch = sorted(numbers)
    for i in range(0, len(batch), CARD_BATCH):
        for card in report_store.card_states(tenant_id, batch[i:i + CARD_BATCH]):
            yield card.tiers


def run(tenant_id: str, current: Program, proposed: ProgramSpec, start: date, end: date,
        receipt_limit: int | None = None) -> Outcome:
    """Replay [start, end) day by day (memory holds one day's receipts, and the cards when tiers are proposed).

    Raises TooLarge past `receipt_limit` receipts.
    """
    replay = rules.Replay(current, proposed)
    observed = Observed()
    cards = ledger.Cards(tenant_id)
    numbers: set[str] = set()
    count = 0
    for day in reporting.days(start, end):
        found = _receipts_of_day(tenant_id, current.id, day, cards, observed)
        count += len(found)
        if receipt_limit is not None and count > receipt_limit:
            raise TooLarge
        stored_receipts = loyalty.receipts(tenant_id, list(found))
        for receipt_id, (number, holder) in found.items():
            stored = stored_receipts.get(receipt_id)
            receipt = rules.receipt_from_doc(receipt_id, stored.dump(), holder) if stored else None
            if receipt is not None:
                replay.add(receipt)
                if proposed.tiers is not None:
                    numbers.add(number)
    outcome = Outcome(replay, observed, "period", start)
    if observed.redemptions < MIN_REDEMPTIONS:
        outcome.observed, outcome.rate_start = _lookback(tenant_id, current.id, end, observed.redemptions)
        outcome.basis = "lookback"
    if proposed.tiers is not None:
        states = list(_tier_states(tenant_id, numbers))
        outcome.tiers, outcome.tiers_approximate = rules.tier_counts(current.tiers, proposed.tiers, states,
                                                                     clock.now())
    return outcome


def _figures(figures: rules.Figures, point_value: int, rate_bps: int) -> dict[str, int]:
    return {"receipts": figures.receipts, "points_current": figures.current, "points_proposed": figures.proposed,
            "extra_points": figures.extra,
            "expected_redemption_cost": rules.money(figures.extra, point_value, rate_bps),
            "liability_change": rules.money(figures.extra, point_value)}


def result(program_id: str, start: date, end: date, outcome: Outcome) -> SimulationResult:
    replay, rate = outcome.replay, outcome.rate_bps
    value = replay.proposed.redemption.point_value
    return SimulationResult.model_validate({
        "program_id": program_id, "from": start, "to": end, "point_value": value,
        "totals": SimulatedFigures(**_figures(replay.total, value, rate)),
        "customers_affected": len(replay.affected),
        "redemption_rate": RedemptionRate.model_validate({
            "rate_bps": rate, "basis": outcome.basis, "from": outcome.rate_start, "to": end,
            "points_earned": outcome.observed.earned, "points_redeemed": outcome.observed.redeemed,
            "redemptions": outcome.observed.redemptions}),
        "by_day": [SimulatedDay(day=day, **_figures(f, value, rate)) for day, f in sorted(replay.by_day.items())],
        "by_category": [SimulatedCategory(category=c, **_figures(f, value, rate))
                        for c, f in sorted(replay.by_category.items())],
        "tiers": [SimulatedTier(tier=t, cards_current=now, cards_proposed=then) for t, now, then in outcome.tiers],
        "tiers_approximate": outcome.tiers_approximate,
        "notes": list(NOTES),
    })


def points_program(tenant_id: str, program_id: str) -> Program:
    """The program's rules in force now; 404 for another tenant's or an unknown program."""
    program = catalog.program(tenant_id, program_id)
    if program is None:
        raise not_found("Program")
    if program.kind is not ProgramKind.POINTS:
        raise ApiError(422, "not_a_points_program", f"Program {program_id!r} issues no points: there is nothing "
                       "to simulate.", [ErrorDetail("program_id", "a points program")])
    return program


def answer_at_once(tenant_id: str, program_id: str, body: SimulationRequest) -> SimulationResult | None:
    """The replay's answer (nothing written), or None for a period too large to answer at once.

    The request is checked first, so a refused proposal is refused before any report is recorded.
    """
    current = points_program(tenant_id, program_id)
    proposed = proposed_spec(program_id, body.proposed)
    if proposed.kind is not ProgramKind.POINTS:
        raise ApiError(422, "not_a_points_program", "The proposed program must be a points program.",
                       [ErrorDetail("proposed.kind", "must be points")])
    tenancy.check_program_stores(tenant_id, proposed, "proposed.store_ids")
    if (body.to - body.from_).days <= SYNC_DAYS:
        try:
            return result(program_id, body.from_, body.to,
                          run(tenant_id, current, proposed, body.from_, body.to, SYNC_RECEIPTS))
        except TooLarge:
            pass
    return None


def proposal_of(tenant_id: str, report_id: str) -> ProgramBody | None:
    """The proposal kept in a simulation report's record (None for one requested without it)."""
    loaded = report_store.get(tenant_id, report_id)
    raw = loaded.doc.proposed if loaded else None
    return ProgramBody.model_validate(raw, strict=False) if raw else None
