"""Customer rules without storage: derived stats, merging duplicates, minimal-data checks, referral codes."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

REFERRAL_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
"""Crockford base32: no I, L, O, U, so a code read aloud or typed from a screen survives."""
REFERRAL_LENGTH = 8
SHARDS = 16
"""Customers of a scope are listed through 16 index partitions, so no single one takes every write."""


def new_referral_code() -> str:
    return "".join(secrets.choice(REFERRAL_ALPHABET) for _ in range(REFERRAL_LENGTH))


def normalise_referral_code(raw: str) -> str:
    """Codes are case- and dash-insensitive, and the look-alikes O/I/L read as 0/1/1."""
    text = raw.upper().replace("-", "").replace("O", "0").replace("I", "1").replace("L", "1")
    return text


def shard_of(customer_id: str) -> int:
    """Stable shard from the id's characters (not Python's salted hash)."""
    return sum(map(ord, customer_id)) % SHARDS


def empty_stats() -> dict[str, Any]:
    return {"purchase_count": 0, "refund_count": 0, "spend": 0, "stores": {}, "categories": {}}


@dataclass(frozen=True)
class PurchaseStats:
    """What one receipt adds to its customer's stats (refunds: negative spend, no count)."""

    spend: int
    store_id: str
    categories: dict[str, int]
    """Money per category on this receipt (lines with no category are not counted)."""
    purchase: bool = True


def receipt_stats(total: int, store_id: str, lines: Iterable[tuple[str, int]], *, refund: bool = False
                  ) -> PurchaseStats:
    """The stats change of a receipt (or a refund of `total`) from its (category, amount) lines."""
    categories: dict[str, int] = {}
    for category, amount in lines:
        if category:
            categories[category] = categories.get(category, 0) + amount
    sign = -1 if refund else 1
    return PurchaseStats(sign * total, store_id, {k: sign * v for k, v in categories.items()}, not refund)


def _favourite(counts: Mapping[str, Any]) -> str | None:
    positive = [(int(v), k) for k, v in counts.items() if int(v) > 0]
    if not positive:
        return None
    best = max(v for v, _ in positive)
    return min(k for v, k in positive if v == best)


def stats_view(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The API's view of stored stats: average receipt and favourites derived on read."""
    count = int(doc.get("purchase_count", 0))
    spend = int(doc.get("spend", 0))
    return {
        "purchase_count": count,
        "refund_count": int(doc.get("refund_count", 0)),
        "total_spend": spend,
        "average_receipt": spend // count if count else 0,
        "first_purchase_at": doc.get("first_purchase_at"),
        "last_purchase_at": doc.get("last_purchase_at"),
        "favourite_store": _favourite(doc.get("stores") or {}),
        "favourite_category": _favourite(doc.get("categories") or {}),
    }


def merge_stats(keep: Mapping[str, Any], other: Mapping[str, Any]) -> dict[str, Any]:
    """Stats of two records of one person: counts and amounts added, first the earliest, last the latest."""
    out = empty_stats()
    for field in ("purchase_count", "refund_count", "spend"):
        out[field] = int(keep.get(field, 0)) + int(other.get(field, 0))
    for field in ("stores", "categories"):
        merged: dict[str, int] = {}
        for source in (keep.get(field) or {}, other.get(field) or {}):
            for k, v in source.items():
                merged[k] = merged.get(k, 0) + int(v)
        out[field] = merged
    firsts = [d[f] for d in (keep, other) for f in ("first_purchase_at",) if d.get(f)]
    lasts = [d[f] for d in (keep, other) for f in ("last_purchase_at",) if d.get(f)]
    if firsts:
        out["first_purchase_at"] = min(firsts)
    if lasts:
        out["last_purchase_at"] = max(lasts)
    return out


def merge_personal(keep: Mapping[str, Any], other: Mapping[str, Any]) -> dict[str, Any]:
    """The kept record's fields win; the duplicate fills only what is missing. Preferences are united."""
    out = dict(keep)
    for key, value in other.items():
        if key in ("preferences",):
            continue
        if out.get(key) in (None, "", []) and value not in (None, "", []):
            out[key] = value
    prefs = list(dict.fromkeys([*(keep.get("preferences") or []), *(other.get("preferences") or [])]))
    if prefs:
        out["preferences"] = prefs
    return out


def merge_consents(keep: Mapping[str, Any], other: Mapping[str, Any]) -> dict[str, Any]:
    """Per kind, the most recent decision wins: a withdrawal on either record is never lost to an older grant."""
    out = dict(keep)
    for kind, consent in other.items():
        mine = out.get(kind)
        if mine is None or str(consent["at"]) > str(mine["at"]):
            out[kind] = consent
    return out


def disabled_fields_sent(sent: Mapping[str, Any], disabled: Iterable[str]) -> list[str]:
    """Personal fields the tenant switched off but the request carries a value for (null is allowed: it clears)."""
    off = set(disabled)
    return sorted(k for k, v in sent.items() if k in off and v not in (None, [], ""))


def reference_only(body: Any) -> Any:
    """What an idempotency record keeps of a customer answer: the id it refers to (errors are kept whole)."""
    if isinstance(body, dict) and "customer_id" in body and "error" not in body:
        return {"customer_id": body["customer_id"]}
    return body


def has_consent(consents: Mapping[str, Any], kind: str) -> bool:
    consent = consents.get(kind)
    return bool(consent and consent.get("granted"))


@dataclass(frozen=True)
class ReferralReward:
    """What a friend's qualifying purchase gives: the friend always, the referrer within their limit."""

    friend_points: int
    referrer_points: int
    referrer_note: str
    """Why the referrer got what they got: `rewarded`, `limit_reached` or `no_card`."""


def referral_reward(referral: Mapping[str, Any], receipt_total: int, *, friend_points: int, referrer_points: int,
                    min_purchase: int, max_per_referrer: int, referrer_rewarded: int,
                    referrer_has_card: bool) -> ReferralReward | None:
    """The reward a purchase triggers, or None: not referred, already rewarded, or below the qualifying amount."""
    if not referral.get("referred_by") or referral.get("rewarded_at") or receipt_total < min_purchase:
        return None
    if not referrer_has_card:
        return ReferralReward(friend_points, 0, "no_card")
    if referrer_rewarded >= max_per_referrer:
        return ReferralReward(friend_points, 0, "limit_reached")
    return ReferralReward(friend_points, referrer_points, "rewarded")
