"""Report requests and their status: what an admin (or the tenant's agency) asks for and gets back."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from chalicelib.schemas.common import Input, Output, Slug

MAX_PERIOD_DAYS = 400
"""A little over a year: a year-on-year report fits, an accidental decade does not."""

ReportFormat = Literal["csv", "xlsx"]
ReportTypeName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]


class ReportCreate(Input):
    """A report over the days [from, to) in UTC (`to` is excluded: a month is 1st to 1st) about one subject.

    The type says which subject id it needs: `program_id` (ledger, members, program_summary,
    tier_distribution), `campaign_id` (campaign_results; optional), `survey_id` (survey_results) or
    `coalition_id` (coalition_settlement).
    """

    type: ReportTypeName = Field(description="The report type: ledger, members, program_summary, "
                                 "tier_distribution, campaign_results, survey_results, coalition_settlement.")
    program_id: Slug | None = None
    campaign_id: Slug | None = Field(default=None, description="campaign_results: this campaign only (default: "
                                     "every campaign started in the period).")
    survey_id: Slug | None = None
    coalition_id: Slug | None = None
    from_: date = Field(alias="from")
    to: date
    format: ReportFormat = "csv"
    delimiter: Literal[",", ";"] = Field(default=",", description="CSV only: `;` suits Excel in ru-RU and "
                                         "other comma-decimal locales.")

    @model_validator(mode="after")
    def _period(self) -> ReportCreate:
        if self.to <= self.from_:
            raise ValueError("`to` must be after `from` (the period is [from, to))")
        if (self.to - self.from_).days > MAX_PERIOD_DAYS:
            raise ValueError(f"the period may span at most {MAX_PERIOD_DAYS} days")
        return self


class ReportStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    READY = "ready"
    FAILED = "failed"
    EXPIRED = "expired"
    """The file was removed by the bucket's lifecycle rule (7 days after it was made)."""


class ReportFailure(Output):
    code: str
    message: str


class Report(Output):
    """A report request and, when `ready`, a short-lived link to its file."""

    model_config = ConfigDict(extra="forbid", serialize_by_alias=True, populate_by_name=True)

    report_id: str
    type: str
    program_id: str | None = None
    campaign_id: str | None = None
    survey_id: str | None = None
    coalition_id: str | None = None
    from_: date = Field(alias="from")
    to: date
    format: ReportFormat
    status: ReportStatus
    rows: int | None = Field(default=None, description="Data rows in the file (headers excluded), once ready.")
    size_bytes: int | None = None
    failure: ReportFailure | None = Field(default=None, description="Why a `failed` report failed.")
    created_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    download_url: str | None = Field(default=None, description="Presigned GET of the file, when ready.")
    download_expires_at: datetime | None = None
