"""Coupon rules: every reason a code is refused, and the code format (generation, display, normalisation)."""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from chalicelib.domain.coupons import (
    CODE_ALPHABET,
    CODE_LENGTH,
    MAX_PER_RECEIPT,
    Refusal,
    Usage,
    check,
    display,
    generate_code,
    matching,
)
from chalicelib.schemas.coupons import (
    Campaign,
    CampaignCreate,
    CouponEffect,
    CouponLimits,
    EffectKind,
    normalise_code,
)

AT = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
CODE = "ABCDEFGHJKMNPQRS"


def _campaign(**overrides: Any) -> Campaign:
    fields: dict[str, Any] = {
        "id": "spring", "name": "Spring", "program_id": "main", "mode": "unique", "count": 10,
        "effect": {"kind": "percent_off", "value": 1000},
        "limits": {"starts_at": AT - timedelta(days=1), "ends_at": AT + timedelta(days=1), "uses_per_code": 1,
                   "per_customer": 1, "min_receipt": 10_000, "categories": ["coffee", "tea"]},
        "refund_policy": "release", "status": "active", "generation": "ready", "generated": 10,
        "created_at": AT - timedelta(days=2),
    }
    fields.update(overrides)
    return Campaign.model_validate(fields, strict=False)


def _check(campaign: Campaign | None, *, uses: int = 0, customer_uses: int = 0, program_id: str = "main",
           total: int = 20_000, categories: list[str] | None = None, at: datetime = AT, points_card: bool = True,
           seen: set[str] | None = None, code: str = CODE) -> Refusal | None:
    return check(campaign, Usage(uses=uses, customer_uses=customer_uses), program_id=program_id, total=total,
                 categories=["coffee", "bakery"] if categories is None else categories, at=at,
                 points_card=points_card, seen=set() if seen is None else seen, code=code)


def _reason(refusal: Refusal | None) -> str | None:
    return refusal.reason if refusal else None


# --- check: applies ----------------------------------------------------------------------

def test_a_valid_coupon_applies() -> None:
    assert _check(_campaign()) is None


def test_limits_of_zero_mean_unlimited() -> None:
    campaign = _campaign(limits={"uses_per_code": 0, "per_customer": 0})
    assert _check(campaign, uses=10_000, customer_uses=500, total=0, categories=["anything"]) is None


def test_the_window_includes_its_start_and_excludes_its_end() -> None:
    campaign = _campaign(limits={"starts_at": AT, "ends_at": AT + timedelta(hours=1)})
    assert _check(campaign, at=AT) is None
    assert _check(campaign, at=AT + timedelta(hours=1) - timedelta(microseconds=1)) is None
    assert _reason(_check(campaign, at=AT + timedelta(hours=1))) == "expired"
    assert _reason(_check(campaign, at=AT - timedelta(microseconds=1))) == "not_started"


# --- check: every refusal ------------------------------------------------------------------

def test_duplicate_on_the_receipt() -> None:
    refusal = _check(_campaign(), seen={CODE})
    assert refusal == Refusal("duplicate", "This code is already on the receipt.")


def test_too_many_coupons_on_one_receipt() -> None:
    seen = {f"CODE{i}" for i in range(MAX_PER_RECEIPT)}
    assert _check(_campaign(), seen=seen) == Refusal("too_many_coupons", "At most 5 coupons per receipt.")
    assert _check(_campaign(), seen=set(list(seen)[:MAX_PER_RECEIPT - 1])) is None


def test_unknown_code() -> None:
    assert _check(None) == Refusal("unknown_code", "No such coupon code.")


def test_wrong_program() -> None:
    assert _reason(_check(_campaign(), program_id="fuel")) == "wrong_program"


def test_paused_campaign() -> None:
    refusal = _check(_campaign(status="paused"))
    assert refusal == Refusal("campaign_paused", "This coupon's campaign is paused.")


def test_a_unique_campaign_whose_generation_failed_is_refused_as_paused() -> None:
    refusal = _check(_campaign(generation="failed", generation_error="collisions"))
    assert refusal == Refusal("campaign_paused", "This coupon's campaign could not be prepared.")
    # Codes of a campaign still generating are real and usable.
    assert _check(_campaign(generation="generating", generated=3)) is None


def test_not_started() -> None:
    refusal = _check(_campaign(), at=AT - timedelta(days=2))
    assert refusal is not None and refusal.reason == "not_started"
    assert refusal.message == "This coupon is valid from 2026-11-01T10:00:00+00:00."


def test_expired() -> None:
    refusal = _check(_campaign(), at=AT + timedelta(days=1))
    assert refusal == Refusal("expired", "This coupon expired at 2026-11-03T10:00:00+00:00.")


def test_used_up_single_and_multi_use() -> None:
    assert _check(_campaign(), uses=1) == Refusal("used_up", "This coupon has already been used.")
    multi = _campaign(limits={"uses_per_code": 3, "per_customer": 0})
    assert _check(multi, uses=2) is None
    assert _check(multi, uses=3) == Refusal("used_up", "This coupon has been used 3 times, its limit.")


def test_customer_limit() -> None:
    campaign = _campaign(limits={"uses_per_code": 0, "per_customer": 2})
    assert _check(campaign, customer_uses=1) is None
    refusal = _check(campaign, customer_uses=2)
    assert refusal is not None and refusal.reason == "customer_limit"
    assert refusal.message == "This customer has used this campaign 2 time(s), its limit per customer."


def test_below_min_receipt() -> None:
    assert _check(_campaign(), total=10_000) is None
    assert _check(_campaign(), total=9_999) == Refusal("below_min_receipt", "The receipt must total at least 10000.")


def test_no_matching_items() -> None:
    refusal = _check(_campaign(), categories=["bakery", "fuel"])
    assert refusal == Refusal("no_matching_items", "No item on the receipt is in the coupon's categories.")
    assert _check(_campaign(), categories=["bakery", "tea"]) is None


@pytest.mark.parametrize("effect", [{"kind": "bonus_points", "value": 100}, {"kind": "multiplier", "value": 20_000}])
def test_points_effects_need_a_points_card(effect: dict[str, Any]) -> None:
    campaign = _campaign(effect=effect)
    assert _check(campaign, points_card=True) is None
    assert _check(campaign, points_card=False) == Refusal("needs_points_card",
                                                          "This coupon gives points: identify a points card.")


@pytest.mark.parametrize("effect", [{"kind": "percent_off", "value": 1000}, {"kind": "amount_off", "value": 500}])
def test_money_effects_need_no_points_card(effect: dict[str, Any]) -> None:
    assert _check(_campaign(effect=effect), points_card=False) is None


def test_refusals_come_in_a_fixed_order() -> None:
    """The first failing rule wins, so the till shows the most fundamental reason."""
    everything_wrong = {"uses": 1, "customer_uses": 1, "program_id": "fuel", "total": 0, "categories": ["fuel"],
                        "at": AT + timedelta(days=5), "points_card": False}
    paused = _campaign(status="paused", effect={"kind": "bonus_points", "value": 1})
    assert _reason(_check(paused, seen={CODE}, **everything_wrong)) == "duplicate"
    assert _reason(_check(None, **everything_wrong)) == "unknown_code"
    assert _reason(_check(paused, **everything_wrong)) == "wrong_program"
    assert _reason(_check(paused, **{**everything_wrong, "program_id": "main"})) == "campaign_paused"
    active = _campaign(effect={"kind": "bonus_points", "value": 1})
    steps = [("at", AT, "expired"), ("uses", 0, "used_up"), ("customer_uses", 0, "customer_limit"),
             ("total", 20_000, "below_min_receipt"), ("categories", ["tea"], "no_matching_items"),
             ("points_card", True, "needs_points_card")]
    args = {**everything_wrong, "program_id": "main"}
    for name, fixed, reason in steps:
        assert _reason(_check(active, **args)) == reason, name
        args[name] = fixed
    assert _check(active, **args) is None


def test_matching_lines() -> None:
    assert matching(_campaign(), ["coffee", "bakery", "tea"]) == [True, False, True]
    assert matching(_campaign(limits={}), ["coffee", "bakery"]) == [True, True]


# --- code format ----------------------------------------------------------------------------

def test_generated_codes_are_16_crockford_characters() -> None:
    assert CODE_LENGTH == 16 and len(CODE_ALPHABET) == 32 and len(set(CODE_ALPHABET)) == 32
    assert not set("ILOU") & set(CODE_ALPHABET)
    assert math.log2(len(CODE_ALPHABET)) * CODE_LENGTH == 80
    codes = [generate_code() for _ in range(5000)]
    assert all(len(c) == 16 and set(c) <= set(CODE_ALPHABET) for c in codes)
    assert len(set(codes)) == 5000
    counts = Counter("".join(codes))
    assert set(counts) == set(CODE_ALPHABET)
    # 80,000 characters over 32 symbols: 2,500 each expected; a biased generator would stray far more.
    assert all(2000 < n < 3000 for n in counts.values())


def test_display_groups_unique_codes_by_four_and_leaves_shared_codes_alone() -> None:
    assert display(CODE) == "ABCD-EFGH-JKMN-PQRS"
    assert display("WELCOME10") == "WELCOME10"
    assert display("ABCDEFGHIJKLMNOP") == "ABCDEFGHIJKLMNOP"  # I, L, O are not in the alphabet: not a generated code
    assert display("ABCDEFGHJKMNPQR") == "ABCDEFGHJKMNPQR"  # 15 characters


@pytest.mark.parametrize("typed", ["abcd-efgh-jkmn-pqrs", "ABCD EFGH JKMN PQRS", " abcdefghjkmnpqrs ",
                                   "AbCd--EfGh-jKmN-pQrS", "abcd\tefgh\njkmn pqrs"])
def test_normalise_code_ignores_case_spaces_and_dashes(typed: str) -> None:
    assert normalise_code(typed) == CODE
    assert normalise_code(display(CODE)) == CODE


# --- schema rules the API answers with 400 -----------------------------------------------------

def _create(**overrides: Any) -> CampaignCreate:
    body = {"id": "c1", "name": "C1", "program_id": "main", "mode": "shared", "code": "spring-24",
            "effect": {"kind": "amount_off", "value": 500}}
    body.update(overrides)
    return CampaignCreate.model_validate(body, strict=False)


def test_shared_codes_are_stored_normalised() -> None:
    assert _create().code == "SPRING24"


@pytest.mark.parametrize("overrides", [
    {"code": None}, {"count": 10}, {"mode": "unique"}, {"mode": "unique", "code": None, "count": 0},
    {"code": "bad code!"}, {"code": "ab"},
    {"effect": {"kind": "percent_off", "value": 10_001}}, {"effect": {"kind": "multiplier", "value": 10_000}},
    {"effect": {"kind": "multiplier", "value": 100_001}}, {"effect": {"kind": "bonus_points", "value": 0}},
    {"limits": {"ends_at": "2026-12-01T00:00:00"}},
    {"limits": {"starts_at": "2026-12-01T00:00:00Z", "ends_at": "2026-12-01T00:00:00Z"}},
])
def test_invalid_campaigns_are_refused_by_the_schema(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        _create(**overrides)


def test_effect_bounds_accept_their_limits() -> None:
    assert CouponEffect(kind=EffectKind.PERCENT_OFF, value=10_000).value == 10_000
    assert CouponEffect(kind=EffectKind.MULTIPLIER, value=10_001).value == 10_001
    assert CouponEffect(kind=EffectKind.MULTIPLIER, value=100_000).value == 100_000
    assert CouponLimits().uses_per_code == 1 and CouponLimits().per_customer == 1
