"""Customer imports from CSV: the request, the inline variant, and the import's status."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from chalicelib.schemas.common import Input, Output, Slug
from chalicelib.schemas.customers import ConsentIn

Column = Literal["phone", "email", "first_name", "last_name", "middle_name", "gender", "birth_date", "tags",
                 "consent_sms", "consent_email", "card_number", "source", "skip"]
Filename = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^/\\\x00-\x1f]+$")]
INLINE_MAX_CHARS = 250_000


class ImportStatus(StrEnum):
    AWAITING_UPLOAD = "awaiting_upload"
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class ImportCreate(Input):
    filename: Filename = Field(description="The file's name, for the tenant's list (not used to store it).")
    program_id: Slug | None = Field(default=None, description="Issue a virtual card of this program to every "
                                    "imported customer who has none of it yet.")
    default_consents: list[ConsentIn] = Field(
        default_factory=list, max_length=3,
        description="Consents recorded for every row; the file's consent_sms / consent_email columns win.")
    consent_text_version: Annotated[str, StringConstraints(min_length=1, max_length=40)] | None = Field(
        default=None, description="Consent text version for the file's consent columns (default: the tenant's).")
    columns: dict[Annotated[str, StringConstraints(min_length=1, max_length=80)], Column] = Field(
        default_factory=dict, max_length=40,
        description="Header names to fields (or `skip`) for columns the importer does not recognise. Known "
                    "names, any case: phone/телефон, email, first_name/имя, last_name/фамилия, "
                    "middle_name/отчество, gender/пол, birth_date/дата рождения, tags, consent_sms, "
                    "consent_email, card_number, source.")


class ImportInline(ImportCreate):
    """A small file sent in the request body and imported at once."""

    filename: Filename = "inline.csv"
    csv: Annotated[str, StringConstraints(min_length=1, max_length=INLINE_MAX_CHARS, strip_whitespace=False)] = Field(
        description="The CSV text, header line first.")


class CustomerImport(Output):
    import_id: str
    filename: str
    status: ImportStatus
    program_id: str | None = None
    rows: int = Field(description="Data rows read so far (blank lines are not rows).")
    created: int = Field(description="New customers.")
    updated: int = Field(description="Rows whose phone already had a customer: merged, missing fields filled.")
    rejected: int = Field(description="Rows refused; each is listed with its reason in the result file.")
    cards_issued: int = 0
    bytes_done: int = Field(description="Bytes of the file processed: bytes_done / bytes_total is the progress.")
    bytes_total: int
    error: str | None = Field(default=None, description="Why the import failed, when it did.")
    result_url: str | None = Field(default=None, description="When finished with rejected rows: a short-lived link "
                                   "to the result CSV (line, original row, reason).")
    created_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None


class ImportCreated(CustomerImport):
    upload_url: str = Field(description="PUT the CSV file here (a presigned S3 URL), then call /start.")
    upload_key: str
    upload_expires_at: datetime
