"""The report types offered: one line per type."""

from __future__ import annotations

from chalicelib.services.reporting.reports.base import ReportType
from chalicelib.services.reporting.reports.campaigns import CAMPAIGN_RESULTS
from chalicelib.services.reporting.reports.ledger import LEDGER
from chalicelib.services.reporting.reports.members import MEMBERS
from chalicelib.services.reporting.reports.settlement import COALITION_SETTLEMENT
from chalicelib.services.reporting.reports.simulation import SIMULATION
from chalicelib.services.reporting.reports.summary import PROGRAM_SUMMARY
from chalicelib.services.reporting.reports.surveys import SURVEY_RESULTS
from chalicelib.services.reporting.reports.tiers import TIER_DISTRIBUTION

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
