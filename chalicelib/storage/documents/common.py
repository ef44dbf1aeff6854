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


@dataclass(frozen=True)
class Versioned(Generic[T]):
    """A document as read, with the version an optimistic write must still find."""

    doc: T
    version: int


class Document(BaseModel):
    """Base of the stored-document models: lenient on the way in, byte-for-byte on the way out."""

    model_config = ConfigDict(extra="allow")

    @classmethod
    def load(cls, raw: Mapping[str, Any]) -> Self:
        return cls.model_validate(dict(raw))

    def dump(self) -> dict[str, Any]:
        """The stored form: only the keys that were read or set, nested documents alike."""
        return self.model_dump(mode="python", exclude_unset=True)
