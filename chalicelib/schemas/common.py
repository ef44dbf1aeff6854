"""Shared model configuration and envelopes.

Every model defers building its validator (`defer_build`) until its first
use: the API function imports every schema to declare the route table, and
building them all up front was a large part of its cold start.
"""

from __future__ import annotations

import re
from typing import Annotated, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

# Slugs are the ids humans choose (tenant, agency, program, store). They never
# contain '#', the separator of storage keys, so one tenant's partition key is
# never a prefix of another's.
SLUG_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$"


class Input(BaseModel):
    """Base for everything a client sends: unknown fields and type coercion are errors.

    Strict mode means `"100"` or `100.0` is never silently accepted where an
    integer amount is expected.
    """

    model_config = ConfigDict(extra="forbid", strict=True, str_strip_whitespace=True, defer_build=True)


class Query(BaseModel):
    """Base for query strings: values arrive as text, so numbers are parsed, unknown names refused."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, defer_build=True)


class Output(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


def _phone(raw: str) -> str:
    """schemas.phones.normalise, imported on the first phone number (phonenumbers is slow to import)."""
    from chalicelib.schemas.phones import normalise

    return normalise(raw)


Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN, min_length=1, max_length=40)]
_INVISIBLE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _one_visible_line(value: str) -> str:
    """Names reach SMS, mail headers and CSV reports: NUL, line breaks and bidi overrides there forge or break them."""
    if _INVISIBLE.search(value):
        raise ValueError("control characters, line breaks and bidirectional overrides are not allowed")
    return value


Name = Annotated[str, StringConstraints(min_length=1, max_length=120), AfterValidator(_one_visible_line)]
Text = Annotated[str, StringConstraints(max_length=2000)]
Channel = Literal["sms", "email"]
"""How a message reaches a customer: SMS or e-mail (templates, consents, preferences, mailings)."""
Phone = Annotated[str, StringConstraints(min_length=5, max_length=32), AfterValidator(_phone)]
"""A phone number in any common format, stored as E.164: one person is one customer however the till types it."""

T = TypeVar("T")


class Page(Output, Generic[T]):
    """Cursor pagination: pass `cursor` back to get the next page while `has_more`."""

    items: list[T]
    has_more: bool
    cursor: str | None = None


class PageQuery(Query):
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=2048)


class ErrorDetailModel(Output):
    field: str
    issue: str


class ErrorInfo(Output):
    code: str
    message: str
    details: list[ErrorDetailModel] = []
    request_id: str | None = None


class ErrorResponse(Output):
    error: ErrorInfo
