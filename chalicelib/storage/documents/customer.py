"""The loyalty-table customer document (`<scope>#customer#<id>` / `customer`) and its sections.

No personal field lives here (they are in the person profile, by id). Every
section is optional in stored items: records written before a section
existed simply lack it, and readers get the empty default.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from chalicelib.storage.documents.common import Document


class Acquisition(Document):
    """Where the customer came from: a channel plus UTM-like source fields."""

    channel: str | None = None
    source: str | None = None


class Profile(Document):
    """The non-personal profile: tags, preferred channel, acquisition."""

    tags: list[str] = Field(default_factory=list)
    preferred_channel: str | None = None
    acquisition: Acquisition | None = None


class ConsentState(Document):
    """The latest decision on one consent kind (the history lines have the same shape)."""

    kind: str
    granted: bool = False
    source: str | None = None
    text_version: str | None = None
    at: str | None = None
    actor: str | None = None


class ReferralSection(Document):
    """The member's own referral code, who referred them, and how many friends earned them a reward."""

    code: str | None = None
    referred_by: str | None = None
    rewarded_at: str | None = None
    friends_rewarded: int = 0


class Stats(Document):
    """Purchase statistics, moved only by atomic ADDs inside purchase and refund transactions."""

    purchase_count: int = 0
    refund_count: int = 0
    spend: int = 0
    stores: dict[str, int] = Field(default_factory=dict)
    categories: dict[str, int] = Field(default_factory=dict)
    first_purchase_at: str | None = None
    last_purchase_at: str | None = None


class CustomerDoc(Document):
    """A customer without personal data; `created_at` is the record's time, never stored in the doc."""

    profile: Profile | None = None
    consents: dict[str, ConsentState] = Field(default_factory=dict)
    referral: ReferralSection | None = None
    stats: Stats = Field(default_factory=Stats)
    status: str = "active"
    merged_into: str | None = None
    erased_at: str | None = None
    updated_at: str | None = None
    created_at: datetime | None = Field(default=None, exclude=True)

    def profile_or_empty(self) -> Profile:
        return self.profile or Profile()

    def referral_or_empty(self) -> ReferralSection:
        return self.referral or ReferralSection()

    def plain(self) -> dict[str, Any]:
        """The stored fields plus `created_at`: the form the pure domain rules (segments, triggers, reports) read."""
        return {**self.dump(), "created_at": self.created_at}

    def consents_dump(self) -> dict[str, dict[str, Any]]:
        """The consents in their stored form, for the domain rules that work on plain values."""
        return {kind: consent.dump() for kind, consent in self.consents.items()}


class CardLink(Document):
    """`<scope>#customer#<id>` / `card#<number>`: one of the customer's cards."""

    program_id: str = ""


class ReferralCode(Document):
    """`<scope>#referral#<code>` / `referral`: a referral code's owner."""

    customer_id: str
