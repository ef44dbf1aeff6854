"""Point lots (pending, oldest first, debt) and refund proportions, on their own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain import refunds
from chalicelib.domain.redemption import max_redeemable
from chalicelib.domain.wallet import InsufficientPoints, Lot, Wallet, sale_lot
from chalicelib.schemas.tenancy import ProgramSpec

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def lot(points: int, day: int, *, pending_days: int = 0, expiry_days: int | None = None, source: str = "r") -> Lot:
    at = T0 + timedelta(days=day)
    return Lot(points, at, at + timedelta(days=pending_days),
               at + timedelta(days=expiry_days) if expiry_days else None, source)


def test_pending_points_mature_and_are_not_spendable_before() -> None:
    w = Wallet()
    w.earn(lot(100, 0, pending_days=14, source="r1"))
    assert (w.spendable(T0 + timedelta(days=13)), w.pending(T0 + timedelta(days=13))) == (0, 100)
    assert (w.spendable(T0 + timedelta(days=14)), w.pending(T0 + timedelta(days=14))) == (100, 0)
    with pytest.raises(InsufficientPoints):
        w.spend(1, T0 + timedelta(days=1))


def test_spending_takes_the_soonest_expiring_points_first() -> None:
    w = Wallet()
    w.earn(lot(50, 0, expiry_days=365, source="old"))
    w.earn(lot(50, 10, expiry_days=30, source="promo"))
    w.earn(lot(50, 20, source="forever"))
    w.spend(70, T0 + timedelta(days=21))
    assert sorted((lot.source, lot.points) for lot in w.lots) == [("forever", 50), ("old", 30)]


def test_refund_reverses_its_own_pending_lot_first_then_other_pending_then_oldest() -> None:
    w = Wallet()
    w.earn(lot(40, 0, source="r0"))
    w.earn(lot(30, 5, pending_days=14, source="r1"))
    w.earn(lot(20, 6, pending_days=14, source="r2"))
    written_off = w.reverse(60, "r2", T0 + timedelta(days=7), allow_debt=True)
    assert written_off == 0
    assert sorted((lot.source, lot.points) for lot in w.lots) == [("r0", 30)]


def test_reversing_spent_points_makes_debt_repaid_by_the_next_accrual_or_is_written_off() -> None:
    w = Wallet()
    w.earn(lot(10, 0))
    assert w.reverse(25, "x", T0, allow_debt=True) == 0
    assert (w.total, w.spendable(T0), w.debt) == (-15, -15, 15)
    w.earn(lot(20, 1, source="r2"))
    assert (w.total, w.debt) == (5, 0)
    w2 = Wallet()
    w2.earn(lot(10, 0))
    assert w2.reverse(25, "x", T0, allow_debt=False) == 15
    assert (w2.total, w2.debt) == (0, 0)


def test_compaction_merges_matured_lots_by_expiry_day_and_keeps_the_total() -> None:
    w = Wallet()
    for day in range(30):
        w.earn(lot(10, day, expiry_days=365 - day))
    w.earn(lot(5, 30, pending_days=14, source="fresh"))
    before = (w.total, w.spendable(T0 + timedelta(days=31)), w.pending(T0 + timedelta(days=31)))
    w.compact(T0 + timedelta(days=31))
    assert len(w.lots) == 2
    assert (w.total, w.spendable(T0 + timedelta(days=31)), w.pending(T0 + timedelta(days=31))) == before


ops = st.lists(st.tuples(st.sampled_from(["earn", "spend", "reverse"]), st.integers(1, 500),
                         st.integers(0, 30)), max_size=40)


@given(ops)
def test_wallet_total_is_the_sum_of_what_happened(steps: list[tuple[str, int, int]]) -> None:
    """The invariant the ledger relies on: total == earned - spent - reversed (debt included)."""
    w, expected = Wallet(), 0
    for i, (op, points, day) in enumerate(steps):
        at = T0 + timedelta(days=day)
        if op == "earn":
            w.earn(lot(points, day, pending_days=i % 3 * 7, source=f"r{i}"))
            expected += points
        elif op == "spend":
            try:
                w.spend(points, at)
                expected -= points
            except InsufficientPoints as exc:
                assert points > exc.available
        else:
            assert w.reverse(points, f"r{i - 1}", at, allow_debt=True) == 0
            expected -= points
        w.compact(at)
        assert w.total == expected
        assert all(lot.points > 0 for lot in w.lots) and w.debt >= 0


def _program(**redemption: int) -> ProgramSpec:
    return ProgramSpec.model_validate({"id": "p", "name": "P", "earning": {"rate_bps": 500},
                                       "redemption": {"point_value": 100, "max_share_bps": 3000, **redemption}},
                                      strict=False)


def test_max_redeemable_is_the_smaller_of_balance_and_share_and_respects_min_balance() -> None:
    assert max_redeemable(_program(), spendable=1000, total=100_000).allowed == 300
    assert max_redeemable(_program(), spendable=120, total=100_000).allowed == 120
    limited = max_redeemable(_program(min_balance=200), spendable=150, total=100_000)
    assert limited.allowed == 0 and "at least 200" in limited.reason
    assert max_redeemable(_program(), spendable=-5, total=100_000).allowed == 0


def receipt(total: int = 100_000, earned: int = 50, redeemed: int = 0) -> refunds.ReceiptState:
    return refunds.ReceiptState(total=total, points_earned=earned, points_redeemed=redeemed, lines=[
        refunds.ReceiptLine("coffee", 2, 60_000, 60_000 * 10_000),
        refunds.ReceiptLine("tobacco", 1, 40_000, 0),
    ])


def test_refunding_an_excluded_line_reverses_nothing_and_a_full_refund_everything() -> None:
    state = receipt()
    plan = refunds.plan(state, lines=[refunds.RefundLineRequest("tobacco", 1, 40_000)], amount=None)
    assert (plan.amount, plan.points_reversed) == (40_000, 0)
    refunds.apply(state, plan)
    rest = refunds.plan(state, lines=None, amount=None)
    assert (rest.amount, rest.points_reversed) == (60_000, 50)


def test_refunds_never_exceed_the_receipt_or_a_line() -> None:
    state = receipt()
    with pytest.raises(refunds.RefundRefused) as exc:
        refunds.plan(state, lines=[refunds.RefundLineRequest("coffee", 3, 60_000)], amount=None)
    assert exc.value.code == "refund_exceeds_line" and exc.value.field == "items[0].quantity"
    with pytest.raises(refunds.RefundRefused) as exc:
        refunds.plan(state, lines=None, amount=100_001)
    assert exc.value.code == "refund_exceeds_receipt"
    with pytest.raises(refunds.RefundRefused) as exc:
        refunds.plan(state, lines=[refunds.RefundLineRequest("milk", 1, 1)], amount=None)
    assert exc.value.code == "unknown_line"
    refunds.apply(state, refunds.plan(state, lines=None, amount=None))
    with pytest.raises(refunds.RefundRefused) as exc:
        refunds.plan(state, lines=None, amount=1)
    assert exc.value.code == "already_refunded"


@given(st.lists(st.integers(1, 30_000), min_size=1, max_size=12), st.integers(0, 1000), st.integers(0, 300))
def test_partial_refunds_add_up_to_exactly_one_full_refund(parts: list[int], earned: int, redeemed: int) -> None:
    state = refunds.ReceiptState(total=100_000, points_earned=earned, points_redeemed=redeemed,
                                 lines=[refunds.ReceiptLine("a", 1, 100_000, 100_000 * 10_000)])
    reversed_total = returned_total = 0
    for part in parts:
        if state.refunded_amount + part > state.total:
            break
        plan = refunds.plan(state, lines=None, amount=part)
        refunds.apply(state, plan)
        reversed_total += plan.points_reversed
        returned_total += plan.points_returned
        assert reversed_total <= earned and returned_total <= redeemed
        assert reversed_total == earned * state.refunded_amount // state.total or state.refunded_amount == state.total
    if state.refunded_amount < state.total:
        last = refunds.plan(state, lines=None, amount=None)
        refunds.apply(state, last)
        reversed_total += last.points_reversed
        returned_total += last.points_returned
    assert (reversed_total, returned_total) == (earned, redeemed)


def test_a_sales_points_count_from_the_sale_however_late_it_is_processed() -> None:
    sold = sale_lot(100, T0, pending_days=2, expiry_days=10, source="r1")
    assert (sold.earned_at, sold.available_at, sold.expires_at) == (T0, T0 + timedelta(days=2), T0 + timedelta(days=10))
    assert sale_lot(5, T0, pending_days=0, expiry_days=0, source="r2").expires_at is None, "0: never expires"
    w = Wallet(debt=30)
    assert w.earn_at(sold, T0 + timedelta(days=3)) == 0, "uploaded on day 3: matured, kept"
    assert (w.spendable(T0 + timedelta(days=3)), w.pending(T0 + timedelta(days=3)), w.debt) == (70, 0, 0)


def test_a_sales_points_already_expired_when_processed_are_not_kept_and_repay_no_debt() -> None:
    w = Wallet(debt=30)
    late = sale_lot(40, T0, pending_days=2, expiry_days=10, source="late")
    assert w.earn_at(late, T0 + timedelta(days=10)) == 40
    assert (w.lots, w.debt, w.total) == ([], 30, -30)
