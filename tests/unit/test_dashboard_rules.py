"""Dashboard figures: what each write counts, how shards add up, derived figures, local days."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain import dashboard as rules

figures = st.fixed_dictionaries({}, optional={name: st.integers(0, 10**9) for name in rules.FIGURES})
rows = st.lists(st.tuples(st.sampled_from(["main", "fuel", rules.NO_PROGRAM]), figures), max_size=40)


@given(rows, st.lists(st.integers(0, rules.SHARDS - 1), min_size=40, max_size=40), st.randoms())
def test_sum_over_shards_is_independent_of_shard_assignment(events, shards, rnd) -> None:
    """Whatever shard each event lands in (and in whatever order), the day's figures are the same."""
    by_item: dict[tuple[str, int], dict[str, int]] = {}
    for (program, deltas), shard in zip(events, shards, strict=False):
        item = by_item.setdefault((program, shard), {})
        for name, value in deltas.items():
            item[name] = item.get(name, 0) + value
    stored = list(by_item.items())
    rnd.shuffle(stored)
    for program_id in (None, "main", "fuel"):
        assert rules.add_up([(program, item) for (program, _), item in stored], program_id) == \
            rules.add_up(events, program_id)


@given(rows)
def test_program_filters_partition_the_tenant_total(events) -> None:
    """Program totals add up to the tenant total; tenant-wide figures are the same under every filter."""
    total = rules.add_up(events)
    parts = [rules.add_up(events, p) for p in ("main", "fuel", rules.NO_PROGRAM)]
    for name in rules.FIGURES:
        if name in rules.TENANT_WIDE:
            assert all(part[name] == total[name] for part in parts)
        else:
            assert sum(part[name] for part in parts) == total[name]


def test_add_up_reports_every_figure_and_only_the_selected_program() -> None:
    got = rules.add_up([("main", {"receipts": 2, "revenue": 700}), ("fuel", {"receipts": 1, "revenue": 50}),
                        (rules.NO_PROGRAM, {"new_customers": 3})], "main")
    assert got == {**dict.fromkeys(rules.FIGURES, 0), "receipts": 2, "revenue": 700, "new_customers": 3}
    assert rules.add_up([]) == dict.fromkeys(rules.FIGURES, 0)


@pytest.mark.parametrize(("revenue", "receipts", "average"), [
    (1000, 4, 250), (5, 2, 2), (7, 2, 4), (15, 6, 2), (9, 6, 2), (10, 3, 3), (0, 0, 0), (11, 3, 4),
])
def test_average_receipt_rounds_half_to_even(revenue: int, receipts: int, average: int) -> None:
    totals = {**dict.fromkeys(rules.FIGURES, 0), "revenue": revenue, "receipts": receipts}
    assert rules.derived(totals)["average_receipt"] == average


def test_derived_figures() -> None:
    totals = {**dict.fromkeys(rules.FIGURES, 0), "receipts": 3, "revenue": 90_000, "refunded": 10_000,
              "money_redeemed": 4_500, "points_earned": 400, "points_redeemed": 45, "points_reversed": 25}
    assert rules.derived(totals) == {"average_receipt": 30_000, "net_revenue": 80_000, "redemption_share_bps": 500,
                                     "points_net": 330}
    assert rules.ratio(1, 3, rules.BPS) == 3333 and rules.ratio(1, 20_000, rules.BPS) == 0  # 0.5 bps -> even 0
    assert rules.ratio(3, 20_000, rules.BPS) == 2  # 1.5 bps -> even 2


def test_what_each_write_counts() -> None:
    receipt = {"total": 50_000, "points_earned": 2250, "points_redeemed": 50, "points_discount": 5000,
               "discount": 5000}
    assert rules.purchase_figures(receipt, activated=True) == {
        "receipts": 1, "revenue": 50_000, "points_earned": 2250, "points_redeemed": 50, "money_redeemed": 5000,
        "cards_activated": 1}
    assert rules.purchase_figures({"total": 100, "points_earned": 0, "points_redeemed": 0},
                                  activated=False)["money_redeemed"] == 0
    assert rules.refund_figures(amount=300, points_reversed=15) == {"refunds": 1, "refunded": 300,
                                                                     "points_reversed": 15}
    assert rules.card_figures(activated=False) == {"cards_issued": 1, "cards_activated": 0}
    assert rules.customer_figures() == {"new_customers": 1}


def test_nonzero_drops_zero_figures_and_refuses_unknown_ones() -> None:
    assert rules.nonzero({"receipts": 1, "points_redeemed": 0, "cards_activated": 0}) == {"receipts": 1}
    with pytest.raises(ValueError, match="not a dashboard figure"):
        rules.nonzero({"receipt": 1})


@given(st.text(min_size=1, max_size=30))
def test_shard_is_in_range(key: str) -> None:
    assert 0 <= rules.shard_of(key) < rules.SHARDS


def test_shards_spread_receipt_ids() -> None:
    used = {rules.shard_of(f"till1-{n:06d}") for n in range(200)}
    assert used == set(range(rules.SHARDS))
    assert rules.shard_of("till1-000001") == 11  # crc32: the same in every process


def test_local_day_and_month() -> None:
    assert rules.local_day(datetime(2026, 11, 2, 20, 59, tzinfo=UTC), "Europe/Moscow") == date(2026, 11, 2)
    assert rules.local_day(datetime(2026, 11, 2, 21, 0, tzinfo=UTC), "Europe/Moscow") == date(2026, 11, 3)
    assert rules.local_day(datetime(2026, 11, 30, 22, 30, tzinfo=UTC), "Europe/Moscow") == date(2026, 12, 1)
    assert rules.local_day(datetime(2026, 11, 3, 4, 0, tzinfo=UTC), "America/New_York") == date(2026, 11, 2)
    assert rules.month_days(date(2026, 11, 3)) == [date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)]
    assert len(rules.month_days(date(2026, 12, 31))) == 31
