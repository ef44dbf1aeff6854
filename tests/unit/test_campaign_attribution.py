"""Campaign attribution arithmetic: conversion, revenue per member, uplift and incremental revenue in integers."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.campaigns import Attribution, GroupTotals, attribution, divide_half_even


def test_divide_rounds_half_to_even_for_both_signs() -> None:
    assert [divide_half_even(n, 2) for n in (1, 3, 5, -1, -3, 4)] == [0, 2, 2, 0, -2, 2]
    assert [divide_half_even(n, 3) for n in (1, 2, -1, -2, 10)] == [0, 1, 0, -1, 3]
    with pytest.raises(ValueError, match="positive"):
        divide_half_even(1, 0)


def test_a_campaign_that_worked() -> None:
    target = GroupTotals(members=900, buyers=90, receipts=120, revenue=5_400_000)
    control = GroupTotals(members=100, buyers=6, receipts=7, revenue=300_000)
    assert attribution(target, control) == Attribution(
        target_conversion_bps=1000, control_conversion_bps=600,
        target_revenue_per_member=6000, control_revenue_per_member=3000,
        conversion_uplift_bps=400, incremental_revenue=2_700_000)


def test_uplift_and_increment_come_from_exact_fractions_not_rounded_rates() -> None:
    target = GroupTotals(members=7, buyers=1, receipts=1, revenue=1000)
    control = GroupTotals(members=3, buyers=1, receipts=2, revenue=1000)
    got = attribution(target, control)
    assert (got.target_conversion_bps, got.control_conversion_bps) == (1429, 3333)
    assert (got.target_revenue_per_member, got.control_revenue_per_member) == (143, 333)
    assert got.conversion_uplift_bps == -1905, "1/7 - 1/3 = -0.190476..., not 1429 - 3333 = -1904"
    assert got.incremental_revenue == -1333, "1000 - 1000 * 7 / 3 = -1333.3, not (143 - 333) * 7 = -1330"


def test_empty_groups_have_no_rates_and_no_uplift() -> None:
    target = GroupTotals(members=4, buyers=1, receipts=1, revenue=250)
    empty = GroupTotals(members=0, buyers=0, receipts=0, revenue=0)
    assert attribution(target, empty) == Attribution(2500, None, 62, None, None, None), "62.5 rounds to even"
    assert attribution(empty, target) == Attribution(None, 2500, None, 62, None, None)
    assert attribution(empty, empty) == Attribution(None, None, None, None, None, None)


def test_refunds_can_make_revenue_negative() -> None:
    target = GroupTotals(members=2, buyers=1, receipts=1, revenue=-5)
    control = GroupTotals(members=2, buyers=0, receipts=0, revenue=0)
    got = attribution(target, control)
    assert (got.target_revenue_per_member, got.incremental_revenue, got.conversion_uplift_bps) == (-2, -5, 5000)


@st.composite
def groups(draw: st.DrawFn) -> GroupTotals:
    members = draw(st.integers(min_value=1, max_value=10**6))
    buyers = draw(st.integers(min_value=0, max_value=members))
    return GroupTotals(members=members, buyers=buyers, receipts=draw(st.integers(min_value=buyers, max_value=10**7)),
                       revenue=draw(st.integers(min_value=-(10**9), max_value=10**12)))


@given(groups())
def test_identical_groups_show_no_uplift(group: GroupTotals) -> None:
    got = attribution(group, group)
    assert got.conversion_uplift_bps == 0 and got.incremental_revenue == 0
    assert got.target_conversion_bps == got.control_conversion_bps
    assert 0 <= got.target_conversion_bps <= 10_000  # type: ignore[operator]


@given(groups(), groups())
def test_results_are_the_exact_fractions_rounded_and_signs_follow(target: GroupTotals, control: GroupTotals) -> None:
    got = attribution(target, control)
    per_member = Fraction(target.revenue, target.members) - Fraction(control.revenue, control.members)
    exact_increment = per_member * target.members
    exact_uplift = (Fraction(target.buyers, target.members) - Fraction(control.buyers, control.members)) * 10_000
    assert abs(got.incremental_revenue - exact_increment) <= Fraction(1, 2)  # type: ignore[operator]
    assert abs(got.conversion_uplift_bps - exact_uplift) <= Fraction(1, 2)  # type: ignore[operator]
    if got.incremental_revenue != 0:
        assert (got.incremental_revenue > 0) == (per_member > 0), "the increment's sign is the per-member gap's"
    assert isinstance(got.incremental_revenue, int) and isinstance(got.target_revenue_per_member, int)
    assert got.target_revenue_per_member == round(Fraction(target.revenue, target.members))
