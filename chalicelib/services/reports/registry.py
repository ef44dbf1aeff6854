"""The report types offered: one line per type."""

from __future__ import annotations

from chalicelib.services.reports.base import ReportType
from chalicelib.services.reports.campaigns import CAMPAIGN_RESULTS
from chalicelib.services.reports.ledger import LEDGER
from chalicelib.services.reports.members import MEMBERS
from chalicelib.services.reports.settlement import COALITION_SETTLEMENT
from chalicelib.services.reports.simulation import SIMULATION
from chalicelib.services.reports.summary import PROGRAM_SUMMARY
from chalicelib.services.reports.surveys import SURVEY_RESULTS
from chalicelib.services.reports.tiers import TIER_DISTRIBUTION

TYPES: dict[str, ReportType] = {t.name: t for t in (
    CAMPAIGN_RESULTS,
    COALITION_SETTLEMENT,
    LEDGER,
    MEMBERS,
    PROGRAM_SUMMARY,
    SURVEY_RESULTS,
    TIER_DISTRIBUTION,
    SIMULATION,
)}
