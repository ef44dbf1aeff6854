"""What every stored document shares: a read's version beside its doc, and exact round trips.

Stored items were written as plain dicts long before these models existed, so
a model must give back exactly the keys it was given: unknown keys are kept
(`extra="allow"`) and a key absent from the item stays absent when the model
is written back (`dump` leaves out fields never set), while readers still get
a default for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, Self, TypeVar

from pydantic import BaseModel, ConfigDict

T = TypeVar("T")


def raw(stored: Any) -> dict[str, Any]:
    """A record's `doc` map as plain values, for the few items with open-ended keys (counters, verbatim copies)."""
    return dict(stored.as_dict())


@dataclass(frozen=True)
class Versioned(Generic[T]):
    """A document as read, with the version an optimistic write must still find."""

    doc: T
    version: int


class Document(BaseModel):
    """Base of the stored-document models: lenient on the way in, byte-for-byte on the way out."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    @classmethod
    def load(cls, raw: Mapping[str, Any]) -> Self:
        return cls.model_validate(dict(raw))

    @classmethod
    def of(cls, stored: Any) -> Self:
        """The document of a record's `doc` map attribute (whose `as_dict` pynamodb leaves untyped)."""
        return cls.model_validate(stored.as_dict())

    def dump(self) -> dict[str, Any]:
        """The stored form: only the keys that were read or set, nested documents alike, under their stored names."""
        return self.model_dump(mode="python", exclude_unset=True, by_alias=True)
