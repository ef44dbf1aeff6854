"""domain.reconciliation: a card agrees with its ledger, or the exact disagreement is named."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.reconciliation import Mismatch, ReconciliationReport, check_card

AT = "2026-11-02T10:00:00+00:00"


def card(points: list[int], debt: int = 0, money: int = 0) -> dict[str, Any]:
    lots = [{"points": p, "earned_at": AT, "source": f"r{i}"} for i, p in enumerate(points)]
    doc: dict[str, Any] = {"program_id": "main", "kind": "virtual", "status": "active", "issued_at": AT,
                           "wallet": {"lots": lots, "debt": debt}}
    if money:
        doc["money"] = money
    return doc


def entry(kind: str, points: int = 0, amount: int = 0, **ids: str) -> dict[str, Any]:
    return {"entry_id": f"e-{kind}-{points}-{amount}-{sorted(ids.items())}", "type": kind, "points": points,
            "amount": amount, "balance_after": 0, "at": AT, **ids}


def test_a_card_whose_lots_equal_its_ledger_is_clean() -> None:
    entries = [entry("accrual", 50, receipt_id="r1"), entry("accrual", 30, receipt_id="r2"),
               entry("redemption", -20, receipt_id="r2"), entry("tier"), entry("bonus", 10, receipt_id="r2")]
    assert check_card("t", "111", card([40, 30]), 3, entries) == (5, [])


def test_points_created_outside_the_ledger_are_reported_with_both_values() -> None:
    seen, found = check_card("t", "111", card([60]), 1, [entry("accrual", 50, receipt_id="r1")])
    assert seen == 1
    assert found == [Mismatch("t", "111", "points", 60, 50)]


def test_debt_counts_against_the_balance() -> None:
    entries = [entry("accrual", 10, receipt_id="r1"), entry("redemption", -10, receipt_id="r2"),
               entry("reversal", -5, refund_id="f1")]
    assert check_card("t", "1", card([], debt=5), 1, entries)[1] == []
    assert check_card("t", "1", card([], debt=0), 1, entries)[1] == [Mismatch("t", "1", "points", 0, -5)]


def test_gift_money_is_checked_against_amounts_not_points() -> None:
    entries = [entry("sale", amount=100_000, operation_id="s1"), entry("spend", amount=-25_000, receipt_id="r1")]
    assert check_card("t", "9", card([], money=75_000), 2, entries)[1] == []
    assert check_card("t", "9", card([], money=80_000), 2, entries)[1] == [
        Mismatch("t", "9", "money", 80_000, 75_000)]


def test_a_receipt_or_refund_written_twice_is_a_duplicate_even_when_the_sums_agree() -> None:
    entries = [entry("accrual", 50, receipt_id="r1"), entry("accrual", 50, receipt_id="r1"),
               entry("reversal", -50, refund_id="f1"), entry("reversal", -50, refund_id="f1")]
    assert check_card("t", "1", card([]), 1, entries)[1] == [
        Mismatch("t", "1", "duplicate:accrual:r1", 2, 1), Mismatch("t", "1", "duplicate:reversal:f1", 2, 1)]


def test_partial_refunds_of_one_receipt_are_distinct_operations() -> None:
    entries = [entry("accrual", 50, receipt_id="r1"), entry("reversal", -20, refund_id="f1", receipt_id="r1"),
               entry("reversal", -30, refund_id="f2", receipt_id="r1")]
    assert check_card("t", "1", card([]), 1, entries)[1] == []


def test_non_positive_lots_and_negative_debt_are_corrupt_state() -> None:
    found = check_card("t", "1", card([0, 5], debt=-5), 1, [entry("accrual", 10, receipt_id="r1")])[1]
    assert Mismatch("t", "1", "lot", 0, 0) in found and Mismatch("t", "1", "debt", -5, 0) in found


def test_entries_without_a_card_are_reported() -> None:
    assert check_card("t", "1", None, 0, [entry("accrual", 7, receipt_id="r1")]) == (
        1, [Mismatch("t", "1", "card", 0, 7)])
    assert check_card("t", "1", None, 0, []) == (0, [])


def test_reports_merge() -> None:
    a = ReconciliationReport(cards=2, entries=5)
    b = ReconciliationReport(cards=1, entries=1, mismatches=[Mismatch("u", "2", "points", 1, 0)])
    a.merge(b)
    assert (a.cards, a.entries, a.ok, a.mismatches) == (3, 6, False, b.mismatches)


@settings(max_examples=200, derandomize=True, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=10**6), max_size=20), st.integers(-10**6, 10**6))
def test_the_sum_is_the_only_thing_that_matters_for_points(lots: list[int], delta: int) -> None:
    """Any split of the same total into lots agrees with the ledger; any other total does not."""
    entries = [entry("accrual", p, receipt_id=f"r{i}") for i, p in enumerate(lots)]
    assert check_card("t", "1", card(lots), 1, entries)[1] == []
    shifted = check_card("t", "1", card(lots), 1, [*entries, entry("adjustment", delta)])[1]
    assert shifted == ([] if delta == 0 else [Mismatch("t", "1", "points", sum(lots), sum(lots) + delta)])
