"""Segment filters as pure rules: each condition at its boundaries, and conditions composing as AND."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from chalicelib.domain.cards import CardKind, CardState, CardStatus
from chalicelib.domain.segments import (
    Context,
    Filter,
    Snapshot,
    birthday_in,
    days_to_birthday,
    expiring_points,
    failed_conditions,
    matches,
)
from chalicelib.domain.tiers import TierState
from chalicelib.domain.wallet import Lot, Wallet
from chalicelib.schemas.segments import SegmentFilter

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
MSK = ZoneInfo("Europe/Moscow")
CTX = Context(at=T0, tz=MSK, store_regions={"msk-01": "moscow", "spb-01": "spb"})


def customer(*, status: str = "active", tags: list[str] | None = None, spend: int = 0,
             last_purchase: datetime | None = None, stores: dict[str, int] | None = None,
             consents: dict[str, bool] | None = None, channel: str | None = None,
             created: datetime = T0 - timedelta(days=100)) -> dict[str, Any]:
    stats: dict[str, Any] = {"purchase_count": 1 if last_purchase else 0, "refund_count": 0, "spend": spend,
                             "stores": stores or {}, "categories": {}}
    if last_purchase:
        stats["last_purchase_at"] = last_purchase.isoformat()
        stats["first_purchase_at"] = last_purchase.isoformat()
    return {"status": status, "created_at": created.isoformat(),
            "profile": {"tags": tags or [], "acquisition": {"channel": channel} if channel else None},
            "consents": {k: {"granted": v, "at": T0.isoformat(), "source": "pos", "text_version": "v1"}
                         for k, v in (consents or {}).items()},
            "stats": stats}


def card(program_id: str = "main", tier: str | None = None, lots: list[Lot] | None = None,
         number: str = "1000000000009") -> CardState:
    return CardState(number=number, program_id=program_id, kind=CardKind.VIRTUAL, status=CardStatus.ACTIVE,
                     wallet=Wallet(lots=lots or []), issued_at=T0 - timedelta(days=200), tiers=TierState(tier=tier))


def lot(points: int, expires_in_days: float | None) -> Lot:
    earned = T0 - timedelta(days=10)
    return Lot(points, earned, earned, T0 + timedelta(days=expires_in_days) if expires_in_days is not None else None,
               "r")


def snap(doc: dict[str, Any] | None = None, cards: list[CardState] | None = None,
         born: date | None = None) -> Snapshot:
    return Snapshot("c1", doc or customer(), cards or [], born)


def check(flt: Filter, s: Snapshot, ctx: Context = CTX) -> bool:
    return matches(flt, s, ctx)


# --- each condition -------------------------------------------------------------------------

def test_an_empty_filter_selects_every_active_customer_and_never_merged_or_erased_ones() -> None:
    assert check(Filter(), snap())
    assert failed_conditions(Filter(), snap(customer(status="merged")), CTX) == ["status"]
    assert not check(Filter(), snap(customer(status="erased")))


def test_program_and_tiers_look_at_the_programs_cards_only() -> None:
    cards = [card("main", "gold"), card("fuel", "silver", number="2000000000008")]
    assert check(Filter(program_id="main"), snap(cards=cards))
    assert not check(Filter(program_id="other"), snap(cards=cards))
    assert not check(Filter(program_id="main"), snap())
    assert check(Filter(tiers=("gold",)), snap(cards=cards))
    assert check(Filter(tiers=("silver", "platinum")), snap(cards=cards))
    assert not check(Filter(program_id="main", tiers=("silver",)), snap(cards=cards))
    assert check(Filter(program_id="fuel", tiers=("silver",)), snap(cards=cards))
    assert not check(Filter(tiers=("gold",)), snap(cards=[card("main", None)]))


def test_tags_any_and_all() -> None:
    s = snap(customer(tags=["vip", "coffee"]))
    assert check(Filter(tags_any=("vip", "tea")), s)
    assert not check(Filter(tags_any=("tea",)), s)
    assert check(Filter(tags_all=("vip", "coffee")), s)
    assert not check(Filter(tags_all=("vip", "tea")), s)
    assert not check(Filter(tags_any=("vip",)), snap(customer(tags=[])))


@pytest.mark.parametrize(("born", "days", "expected"), [
    (date(1990, 11, 2), 0, True),     # birthday today
    (date(1990, 11, 1), 60, False),   # yesterday: next one is 364 days away
    (date(1990, 11, 9), 7, True),     # exactly in N days
    (date(1990, 11, 10), 7, False),   # N + 1 days
    (date(1990, 11, 3), 0, False),
    (date(1985, 12, 31), 59, True),   # 59 days ahead, still this year
    (date(1985, 1, 1), 60, True),     # crossing the year end: 60 days ahead
    (date(1985, 1, 2), 60, False),
])
def test_birthday_within_days(born: date, days: int, expected: bool) -> None:
    assert check(Filter(birthday_within_days=days), snap(born=born)) is expected


def test_birthday_is_counted_in_the_tenants_time_zone() -> None:
    late_utc = datetime(2026, 11, 2, 22, 30, tzinfo=UTC)  # already 3 November in Moscow (UTC+3)
    born = date(1990, 11, 3)
    assert check(Filter(birthday_within_days=0), snap(born=born), Context(late_utc, MSK))
    assert not check(Filter(birthday_within_days=0), snap(born=born), Context(late_utc, UTC))
    assert not check(Filter(birthday_within_days=60), snap(born=None)), "no birth date: never a birthday"


def test_29_february_falls_on_28_february_in_non_leap_years() -> None:
    leapling = date(2000, 2, 29)
    assert birthday_in(2027, leapling) == date(2027, 2, 28)
    assert birthday_in(2028, leapling) == date(2028, 2, 29)
    assert birthday_in(2100, leapling) == date(2100, 2, 28)
    assert days_to_birthday(leapling, date(2027, 2, 28)) == 0
    assert days_to_birthday(leapling, date(2027, 3, 1)) == (date(2028, 2, 29) - date(2027, 3, 1)).days == 365
    assert days_to_birthday(leapling, date(2028, 2, 28)) == 1
    ctx = Context(datetime(2027, 2, 28, 9, 0, tzinfo=UTC), MSK)
    assert check(Filter(birthday_within_days=0), snap(born=leapling), ctx)
    ctx_before = Context(datetime(2027, 2, 20, 9, 0, tzinfo=UTC), MSK)
    assert check(Filter(birthday_within_days=8), snap(born=leapling), ctx_before)
    assert not check(Filter(birthday_within_days=7), snap(born=leapling), ctx_before)


def test_no_purchase_for_n_days_includes_never_purchased_and_is_the_complement_of_purchased_within() -> None:
    never = snap(customer())
    exactly = snap(customer(last_purchase=T0 - timedelta(days=30)))
    inside = snap(customer(last_purchase=T0 - timedelta(days=30) + timedelta(seconds=1)))
    assert check(Filter(no_purchase_for_days=30), never)
    assert check(Filter(no_purchase_for_days=30), exactly), "a purchase exactly N days ago is outside the window"
    assert not check(Filter(no_purchase_for_days=30), inside)
    assert not check(Filter(purchased_within_days=30), never)
    assert not check(Filter(purchased_within_days=30), exactly)
    assert check(Filter(purchased_within_days=30), inside)


@pytest.mark.parametrize(("spend", "expected"), [(9_999, False), (10_000, True), (50_000, True), (50_001, False)])
def test_spend_range_is_inclusive(spend: int, expected: bool) -> None:
    assert check(Filter(spend_min=10_000, spend_max=50_000), snap(customer(spend=spend))) is expected


def test_spend_bounds_alone_and_zero() -> None:
    assert check(Filter(spend_max=0), snap(customer(spend=0)))
    assert not check(Filter(spend_min=1), snap(customer(spend=0)))
    assert failed_conditions(Filter(spend_min=5, spend_max=9), snap(customer(spend=10)), CTX) == ["spend_max"]


def test_stores_and_regions_are_where_the_customer_bought() -> None:
    s = snap(customer(stores={"msk-01": 2, "old-01": 0}))
    assert check(Filter(store_ids=("msk-01", "spb-01")), s)
    assert not check(Filter(store_ids=("spb-01",)), s)
    assert not check(Filter(store_ids=("old-01",)), s), "a store whose receipts were all refunded does not count"
    assert check(Filter(regions=("moscow",)), s)
    assert not check(Filter(regions=("spb",)), s)
    assert not check(Filter(regions=("moscow",)), snap(customer(stores={"unknown": 1})))


def test_consent_must_be_granted_now() -> None:
    assert check(Filter(consent="sms"), snap(customer(consents={"sms": True})))
    assert not check(Filter(consent="sms"), snap(customer(consents={"sms": False})))
    assert not check(Filter(consent="email"), snap(customer(consents={"sms": True})))


def test_points_expiring_within_days_and_minimum() -> None:
    cards = [card(lots=[lot(40, 5), lot(70, 30), lot(100, 31), lot(500, None)])]
    assert expiring_points(cards, T0, 30) == 110
    assert check(Filter(points_expiring_within_days=30, points_expiring_min=110), snap(cards=cards))
    assert not check(Filter(points_expiring_within_days=30, points_expiring_min=111), snap(cards=cards))
    assert check(Filter(points_expiring_within_days=5), snap(cards=cards))
    assert not check(Filter(points_expiring_within_days=4), snap(cards=cards))
    assert not check(Filter(points_expiring_within_days=30), snap(cards=[card(lots=[lot(5, -1)])])), "already gone"
    assert not check(Filter(program_id="fuel", points_expiring_within_days=30), snap(cards=cards))


def test_acquisition_channel_and_created_within_days() -> None:
    assert check(Filter(acquisition_channels=("site", "app")), snap(customer(channel="app")))
    assert not check(Filter(acquisition_channels=("site",)), snap(customer(channel="store")))
    assert not check(Filter(acquisition_channels=("site",)), snap(customer()))
    assert check(Filter(created_within_days=7), snap(customer(created=T0 - timedelta(days=7) + timedelta(seconds=1))))
    assert not check(Filter(created_within_days=7), snap(customer(created=T0 - timedelta(days=7))))


def test_failed_conditions_name_every_condition_missed() -> None:
    flt = Filter(tags_all=("vip",), spend_min=100, consent="sms", tiers=("gold",))
    assert failed_conditions(flt, snap(), CTX) == ["tiers", "tags_all", "spend_min", "consent"]


# --- the API form ---------------------------------------------------------------------------

def test_filter_validation() -> None:
    with pytest.raises(ValidationError, match="spend_min must not exceed spend_max"):
        SegmentFilter.model_validate_json('{"spend_min": 5, "spend_max": 4}')
    assert SegmentFilter.model_validate_json('{"spend_min": 5, "spend_max": 5}').spend_max == 5
    with pytest.raises(ValidationError, match="nobody can match"):
        SegmentFilter.model_validate_json('{"no_purchase_for_days": 30, "purchased_within_days": 30}')
    with pytest.raises(ValidationError, match="points_expiring_min needs"):
        SegmentFilter.model_validate_json('{"points_expiring_min": 10}')
    for bad in ('{"birthday_within_days": 61}', '{"spend_min": 1.5}', '{"spend_min": "100"}', '{"tiers": []}',
                '{"consent": "personal_data"}', '{"acquisition_channels": ["tv"]}', '{"unknown": 1}'):
        with pytest.raises(ValidationError):
            SegmentFilter.model_validate_json(bad)


def test_api_filter_converts_to_the_domain_filter() -> None:
    api = SegmentFilter.model_validate_json('{"tiers": ["gold"], "acquisition_channels": ["site"], '
                                            '"points_expiring_within_days": 30, "points_expiring_min": 50}')
    assert Filter.from_dict(api.as_doc()) == Filter(tiers=("gold",), acquisition_channels=("site",),
                                                    points_expiring_within_days=30, points_expiring_min=50)


# --- conditions compose as AND ----------------------------------------------------------------

CONDITIONS: dict[str, st.SearchStrategy[Any]] = {
    "program_id": st.sampled_from(["main", "fuel"]),
    "tiers": st.lists(st.sampled_from(["silver", "gold"]), min_size=1, max_size=2).map(tuple),
    "tags_any": st.lists(st.sampled_from(["vip", "coffee", "kids"]), min_size=1, max_size=2).map(tuple),
    "tags_all": st.lists(st.sampled_from(["vip", "coffee", "kids"]), min_size=1, max_size=2).map(tuple),
    "birthday_within_days": st.integers(0, 60),
    "no_purchase_for_days": st.integers(1, 90),
    "spend_min": st.integers(0, 20_000),
    "spend_max": st.integers(0, 20_000),
    "store_ids": st.lists(st.sampled_from(["msk-01", "spb-01"]), min_size=1, max_size=2).map(tuple),
    "regions": st.lists(st.sampled_from(["moscow", "spb"]), min_size=1, max_size=2).map(tuple),
    "consent": st.sampled_from(["sms", "email"]),
    "points_expiring_within_days": st.integers(1, 60),
    "acquisition_channels": st.lists(st.sampled_from(["site", "app", "store"]), min_size=1, max_size=2).map(tuple),
    "created_within_days": st.integers(1, 200),
}


@st.composite
def filter_pairs(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    names = draw(st.lists(st.sampled_from(sorted(CONDITIONS)), max_size=8, unique=True))
    split = draw(st.integers(0, len(names)))
    first = {n: draw(CONDITIONS[n]) for n in names[:split]}
    second = {n: draw(CONDITIONS[n]) for n in names[split:]}
    return first, second


@st.composite
def snapshots(draw: st.DrawFn) -> Snapshot:
    last = draw(st.none() | st.integers(0, 120))
    doc = customer(
        status=draw(st.sampled_from(["active", "active", "active", "merged"])),
        tags=draw(st.lists(st.sampled_from(["vip", "coffee", "kids"]), unique=True)),
        spend=draw(st.integers(0, 20_000)),
        last_purchase=T0 - timedelta(days=last) if last is not None else None,
        stores=draw(st.dictionaries(st.sampled_from(["msk-01", "spb-01"]), st.integers(0, 3))),
        consents=draw(st.dictionaries(st.sampled_from(["sms", "email"]), st.booleans())),
        channel=draw(st.none() | st.sampled_from(["site", "app", "store"])),
        created=T0 - timedelta(days=draw(st.integers(0, 300))),
    )
    cards = [card(program_id=draw(st.sampled_from(["main", "fuel"])), tier=draw(st.none() | st.sampled_from(
        ["silver", "gold"])), lots=[lot(draw(st.integers(1, 100)), draw(st.integers(-5, 90)))], number=str(i))
        for i in range(draw(st.integers(0, 2)))]
    born = draw(st.none() | st.dates(date(1950, 1, 1), date(2010, 12, 31)))
    return Snapshot("c1", doc, cards, born)


@settings(max_examples=300, deadline=None)
@given(pair=filter_pairs(), s=snapshots())
def test_matching_two_filters_together_is_matching_both(pair: tuple[dict[str, Any], dict[str, Any]],
                                                         s: Snapshot) -> None:
    first, second = pair
    together = Filter(**first, **second)
    assert check(together, s) == (check(Filter(**first), s) and check(Filter(**second), s))


@settings(max_examples=200, deadline=None)
@given(days=st.integers(1, 365), s=snapshots())
def test_no_purchase_for_n_days_and_purchased_within_n_days_split_the_active_base(days: int, s: Snapshot) -> None:
    lapsed, recent = check(Filter(no_purchase_for_days=days), s), check(Filter(purchased_within_days=days), s)
    active = s.doc["status"] == "active"
    assert (lapsed != recent) if active else not (lapsed or recent)
