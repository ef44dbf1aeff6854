"""Customer rules without storage: stats, merging, minimal-data checks, referral rewards, signed links."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain import customers as rules
from chalicelib.domain import links

T0 = datetime(2026, 11, 2, 10, tzinfo=UTC)


def test_receipt_stats_split_money_by_category_and_refunds_negate() -> None:
    change = rules.receipt_stats(30_000, "msk-01", [("coffee", 20_000), ("", 5_000), ("coffee", 3_000),
                                                    ("tea", 2_000)])
    assert change == rules.PurchaseStats(30_000, "msk-01", {"coffee": 23_000, "tea": 2_000}, True)
    refund = rules.receipt_stats(5_000, "msk-01", [("tea", 2_000)], refund=True)
    assert refund == rules.PurchaseStats(-5_000, "msk-01", {"tea": -2_000}, False)


def test_stats_view_derives_average_and_favourites_with_stable_ties() -> None:
    view = rules.stats_view({"purchase_count": 3, "refund_count": 1, "spend": 10_000,
                             "stores": {"b": 2, "a": 2, "c": 1}, "categories": {"tea": 0, "coffee": -5}})
    assert view["average_receipt"] == 3_333 and view["favourite_store"] == "a"
    assert view["favourite_category"] is None, "nothing positive: no favourite"
    assert rules.stats_view({})["average_receipt"] == 0


stats_docs = st.fixed_dictionaries({
    "purchase_count": st.integers(0, 10**6), "refund_count": st.integers(0, 10**6),
    "spend": st.integers(-10**9, 10**12),
    "stores": st.dictionaries(st.sampled_from(["a", "b", "c"]), st.integers(0, 1000)),
    "categories": st.dictionaries(st.sampled_from(["x", "y"]), st.integers(-10**6, 10**6)),
})


@given(stats_docs, stats_docs)
def test_merging_stats_loses_nothing_and_is_symmetric(a: dict, b: dict) -> None:
    merged = rules.merge_stats(a, b)
    assert merged == rules.merge_stats(b, a)
    for field in ("purchase_count", "refund_count", "spend"):
        assert merged[field] == a[field] + b[field]
    for field in ("stores", "categories"):
        assert sum(merged[field].values()) == sum(a[field].values()) + sum(b[field].values())


def test_merge_stats_keeps_earliest_first_and_latest_last_purchase() -> None:
    merged = rules.merge_stats({"first_purchase_at": "2026-03-01T00:00:00+00:00",
                                "last_purchase_at": "2026-05-01T00:00:00+00:00"},
                               {"first_purchase_at": "2026-01-01T00:00:00+00:00",
                                "last_purchase_at": "2026-04-01T00:00:00+00:00"})
    assert merged["first_purchase_at"].startswith("2026-01") and merged["last_purchase_at"].startswith("2026-05")


def test_merge_personal_fills_gaps_only_and_unites_preferences() -> None:
    kept = {"phone": "+79161234567", "first_name": "Анна", "email": None, "preferences": ["tea"]}
    dup = {"phone": "+79030000000", "first_name": "Аня", "email": "a@example.com", "preferences": ["tea", "cake"]}
    assert rules.merge_personal(kept, dup) == {"phone": "+79161234567", "first_name": "Анна",
                                               "email": "a@example.com", "preferences": ["tea", "cake"]}


def test_merge_consents_keeps_the_latest_decision_per_kind() -> None:
    kept = {"sms": {"granted": True, "at": "2026-01-01T00:00:00+00:00"}}
    dup = {"sms": {"granted": False, "at": "2026-02-01T00:00:00+00:00"},
           "email": {"granted": True, "at": "2025-01-01T00:00:00+00:00"}}
    merged = rules.merge_consents(kept, dup)
    assert merged["sms"]["granted"] is False and merged["email"]["granted"] is True
    assert rules.has_consent(merged, "email") and not rules.has_consent(merged, "sms")
    assert not rules.has_consent(merged, "personal_data")


def test_disabled_fields_are_refused_only_with_a_value() -> None:
    sent = {"birth_date": "1990-01-01", "children": None, "phone": "+79161234567", "preferences": []}
    assert rules.disabled_fields_sent(sent, ["birth_date", "children", "preferences"]) == ["birth_date"]
    assert rules.disabled_fields_sent(sent, []) == []


def test_referral_codes_read_aloud_survive() -> None:
    code = rules.new_referral_code()
    assert len(code) == 8 and set(code) <= set(rules.REFERRAL_ALPHABET)
    assert rules.normalise_referral_code("o1-lI") == "0111"
    assert rules.shard_of("abc") == rules.shard_of("abc") and 0 <= rules.shard_of("zzzz") < rules.SHARDS


@pytest.mark.parametrize(("referral", "total", "has_card", "rewarded", "expected"), [
    ({}, 99_999, True, 0, None),
    ({"referred_by": "r"}, 4_999, True, 0, None),
    ({"referred_by": "r", "rewarded_at": "2026-01-01"}, 99_999, True, 0, None),
    ({"referred_by": "r"}, 5_000, True, 0, rules.ReferralReward(100, 200, "rewarded")),
    ({"referred_by": "r"}, 5_000, True, 3, rules.ReferralReward(100, 0, "limit_reached")),
    ({"referred_by": "r"}, 5_000, False, 0, rules.ReferralReward(100, 0, "no_card")),
])
def test_referral_reward(referral: dict, total: int, has_card: bool, rewarded: int,
                         expected: rules.ReferralReward | None) -> None:
    assert rules.referral_reward(referral, total, friend_points=100, referrer_points=200, min_purchase=5_000,
                                 max_per_referrer=3, referrer_rewarded=rewarded, referrer_has_card=has_card) == expected


def test_reference_only_keeps_the_id_and_errors_whole() -> None:
    assert rules.reference_only({"customer_id": "c1", "phone": "+7916"}) == {"customer_id": "c1"}
    error = {"error": {"code": "customer_exists", "customer_id": "c1"}}
    assert rules.reference_only(error) == error


def test_signed_links_verify_and_refuse_tampering_other_purposes_and_expiry() -> None:
    token = links.sign("s3cret", "unsubscribe", {"c": "c1", "k": "sms"}, expires_at=T0 + timedelta(days=1))
    assert links.verify("s3cret", "unsubscribe", token, T0) == {"c": "c1", "k": "sms"}
    mac = token.split(".")[1]
    forged = links.sign("s3cret", "unsubscribe", {"c": "c2", "k": "sms"}).split(".")[0] + "." + mac
    for bad, purpose, secret, at in [(forged, "unsubscribe", "s3cret", T0), (token, "survey", "s3cret", T0),
                                     (token, "unsubscribe", "other", T0), ("garbage", "unsubscribe", "s3cret", T0),
                                     (token, "unsubscribe", "s3cret", T0 + timedelta(days=2))]:
        with pytest.raises(links.BadLink):
            links.verify(secret, purpose, bad, at)
    with pytest.raises(RuntimeError):
        links.sign("", "unsubscribe", {})
