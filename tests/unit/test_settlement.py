"""Settlement arithmetic between coalition partners: exact integers, balancing transfers, breakage apart."""

from __future__ import annotations

import pytest

from chalicelib.domain.settlement import PartnerSums, settle


def e(entry_type: str, points: int) -> dict[str, object]:
    return {"type": entry_type, "points": points}


def test_each_entry_type_lands_in_its_counter() -> None:
    sums = PartnerSums("a")
    for entry_type, points in [("accrual", 120), ("bonus", 30), ("reversal", -20), ("adjustment", 15),
                               ("adjustment", -5), ("redemption", -70), ("return", 10), ("expiry", -8),
                               ("tier", 0)]:
        sums.add(entry_type, points)
    assert (sums.accrued, sums.bonus, sums.reversed, sums.adjusted) == (120, 30, 20, 10)
    assert (sums.redeemed_gross, sums.returned, sums.expired, sums.entries) == (70, 10, 8, 9)
    assert sums.issued == 120 + 30 - 20 + 10 == 140
    assert sums.redeemed == 60
    assert sums.net == 80


def test_net_is_the_sum_of_the_partners_non_expiry_entries() -> None:
    entries = [e("accrual", 500), e("redemption", -300), e("reversal", -40), e("return", 25), e("adjustment", -7)]
    result = settle({"a": entries}, point_value=100)
    assert result.lines["a"].net == sum(x["points"] for x in entries) == 178


def test_earn_at_a_spend_at_b_a_owes_the_pool_b_is_owed() -> None:
    result = settle({"shop-a": [e("accrual", 250)], "shop-b": [e("redemption", -200)]}, point_value=50)
    a, b = result.lines["shop-a"], result.lines["shop-b"]
    assert (a.issued, a.redeemed, a.net, result.amount(a)) == (250, 0, 250, 12_500)
    assert (b.issued, b.redeemed, b.net, result.amount(b)) == (0, 200, -200, -10_000)
    assert result.total_amount == 2_500
    assert result.pool_amount == -2_500
    assert result.amount(a) + result.amount(b) + result.pool_amount == 0
    assert result.outstanding_change == 50


def test_refunds_net_out_exactly() -> None:
    """A purchase earning 40 and spending 100, fully refunded: the partner's line is back to zero."""
    entries = [e("accrual", 40), e("redemption", -100), e("reversal", -40), e("return", 100)]
    result = settle({"a": entries}, point_value=100)
    line = result.lines["a"]
    assert (line.issued, line.redeemed, line.net, result.amount(line)) == (0, 0, 0, 0)
    assert (line.accrued, line.reversed, line.redeemed_gross, line.returned) == (40, 40, 100, 100)


def test_breakage_stays_out_of_partner_nets_and_counts_in_totals() -> None:
    result = settle({"a": [e("accrual", 100), e("expiry", -30)], "b": [e("redemption", -20)]}, point_value=100,
                    unpartnered=[e("expiry", -12), e("accrual", 999)])
    assert result.lines["a"].net == 100
    assert result.lines["a"].expired == 30
    assert result.breakage == 42
    assert result.breakage_amount == 4_200
    assert result.net == 80
    assert result.outstanding_change == 80 - 42


def test_partners_come_out_sorted_and_empty_partners_are_zero() -> None:
    result = settle({"z": [], "a": [e("accrual", 1)]}, point_value=7)
    assert [p.partner_id for p in result.partners] == ["a", "z"]
    assert result.amount(result.lines["z"]) == 0
    assert result.total_amount == 7


def test_point_value_must_be_positive() -> None:
    with pytest.raises(ValueError):
        settle({}, point_value=0)
