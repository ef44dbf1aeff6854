"""Earning rules: rates, modes, rounding, exclusions, multipliers, promotions, discount allocation."""

from __future__ import annotations

from datetime import UTC, datetime
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.earning import Line, allocate, compute, round_points
from chalicelib.schemas.tenancy import ProgramSpec, Rounding

AT = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def program(**earning: object) -> ProgramSpec:
    rules = {"rate_bps": 500, **earning}
    return ProgramSpec.model_validate({"id": "p", "name": "P", "earning": rules,
                                       "redemption": {"point_value": 100}}, strict=False)


def lines(*amounts: int, category: str = "coffee") -> list[Line]:
    return [Line(f"sku{i}", category, 1, a) for i, a in enumerate(amounts)]


def test_five_percent_of_1000_rub_is_50_points() -> None:
    assert compute(program(), lines(100_000), total=100_000, discount=0, store_id="s", at=AT).points == 50


def test_rounding_is_once_per_receipt_not_per_line() -> None:
    # Each 19.90 RUB line earns 0.995 points: per line rounding would give 0; per receipt 2.985 -> 2.
    got = compute(program(), lines(1990, 1990, 1990), total=5970, discount=0, store_id="s", at=AT)
    assert got.points == 2
    half_up = compute(program(rounding="half_up"), lines(1990, 1990, 1990), total=5970, discount=0, store_id="s",
                      at=AT)
    assert half_up.points == 3


def test_amount_paid_with_points_earns_nothing() -> None:
    got = compute(program(), lines(60_000, 40_000), total=100_000, discount=30_000, store_id="s", at=AT)
    assert got.points == 35  # 5% of the 700 RUB actually paid
    assert got.weights == [42_000 * 10_000, 28_000 * 10_000]


def test_exclusions_and_minimum_receipt() -> None:
    p = program(excluded_categories=["tobacco"], excluded_skus=["lottery-1"], min_receipt=10_000)
    items = [Line("cig", "tobacco", 1, 50_000), Line("lottery-1", "misc", 1, 10_000), Line("bread", "food", 1, 40_000)]
    got = compute(p, items, total=100_000, discount=0, store_id="s", at=AT)
    assert got.points == 20 and got.weights[:2] == [0, 0]
    assert compute(p, lines(9_999), total=9_999, discount=0, store_id="s", at=AT).points == 0


def test_multipliers_multiply_and_promotions_apply_in_their_window_and_stores() -> None:
    p = program(category_multipliers={"coffee": 20_000}, sku_multipliers={"sku0": 15_000},
                promotions=[{"id": "dbl", "name": "Double", "starts_at": "2026-11-20T00:00:00+03:00",
                             "ends_at": "2026-11-30T00:00:00+03:00", "categories": ["coffee"],
                             "multiplier_bps": 20_000, "bonus_points": 7, "store_ids": ["s"]}])
    got = compute(p, lines(10_000), total=10_000, discount=0, store_id="s", at=AT)
    # 100 RUB at 5% = 5 points, x2 (category) x1.5 (SKU) x2 (promotion) = 30, plus the promotion's 7 bonus points.
    assert got.points == 37 and got.promotions == ["dbl"] and got.bonus_points == 7
    elsewhere = compute(p, lines(10_000), total=10_000, discount=0, store_id="other", at=AT)
    assert elsewhere.points == 15 and elsewhere.promotions == []
    later = compute(p, lines(10_000), total=10_000, discount=0, store_id="s", at=datetime(2026, 12, 1, tzinfo=UTC))
    assert later.points == 15


def test_points_per_amount_mode_counts_whole_steps() -> None:
    p = program(mode="per_amount", per_amount_points=3, per_amount_step=10_000, rate_bps=0)
    assert compute(p, lines(29_999), total=29_999, discount=0, store_id="s", at=AT).points == 6
    p_half = program(mode="per_amount", per_amount_points=3, per_amount_step=10_000, rate_bps=0, rounding="half_up")
    assert compute(p_half, lines(25_000), total=25_000, discount=0, store_id="s", at=AT).points == 9


def test_discount_program_earns_no_points() -> None:
    p = ProgramSpec.model_validate({"id": "d", "name": "D", "kind": "discount", "discount": {"percent_bps": 500}},
                                   strict=False)
    assert compute(p, lines(10_000), total=10_000, discount=0, store_id="s", at=AT).points == 0


@given(total=st.integers(0, 10**9), amounts=st.lists(st.integers(0, 10**7), min_size=1, max_size=30))
def test_allocation_is_exact_and_pro_rata(total: int, amounts: list[int]) -> None:
    shares = allocate(total, amounts)
    if sum(amounts) == 0 or total == 0:
        assert shares == [0] * len(amounts)
        return
    assert sum(shares) == total
    for share, amount in zip(shares, amounts, strict=True):
        exact = Fraction(total * amount, sum(amounts))
        assert abs(share - exact) < 1


@given(st.fractions(min_value=0, max_value=10**6))
def test_rounding_rules(value: Fraction) -> None:
    down, half = round_points(value, Rounding.DOWN), round_points(value, Rounding.HALF_UP)
    assert down <= value < down + 1
    assert abs(half - value) <= Fraction(1, 2)
