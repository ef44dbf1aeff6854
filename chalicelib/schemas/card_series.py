"""Plastic card series: what an admin or agency asks for, and what they get back."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import Field, StringConstraints

from chalicelib.schemas.common import Input, Name, Output, Slug

MAX_SERIES = 100_000

Digits = Annotated[str, StringConstraints(pattern=r"^[0-9]{0,12}$")]


class CardSeriesCreate(Input):
    """A batch of pre-printed plastic card numbers (random, Luhn-valid) for one program.

    Prefix and length default to the program's `card_numbers` rules. Whether
    the format leaves room for the count is a business rule (422), not a
    schema one, so its answer can say how much room there is.
    """

    program_id: Slug
    count: int = Field(ge=1, le=MAX_SERIES, description="How many cards; above 500 the series is made by a job.")
    prefix: Digits | None = Field(default=None, description="Leading digits; default: the program's prefix.")
    length: int | None = Field(default=None, ge=8, le=19,
                               description="Total digits including the check digit; default: the program's.")
    name: Name | None = Field(default=None, description="A label for the print shop, e.g. 'Spring 2025 batch'.")


class SeriesStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class CardSeries(Output):
    series_id: str
    program_id: str
    name: str | None = None
    prefix: str
    length: int
    count: int
    created: int = Field(description="Cards created so far; equals `count` once completed.")
    status: SeriesStatus
    error: str | None = None
    created_at: datetime
    completed_at: datetime | None = None


class SeriesCard(Output):
    """One number of a series, in the order it was generated (for the print shop)."""

    number: str
