"""Card numbers: the Luhn check digit, random generation, and the series number-space budget."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.cards import generate_number, luhn_check_digit, luhn_valid, random_digits, space_problem
from chalicelib.services.pos.card_series import new_series_id

KNOWN_VALID = ["79927398713", "4111111111111111", "4539578763621486", "5555555555554444", "378282246310005",
               "6011111111111117", "30569309025904", "0000000000"]


@pytest.mark.parametrize("number", KNOWN_VALID)
def test_known_valid_numbers_pass(number: str) -> None:
    assert luhn_valid(number)
    assert luhn_check_digit(number[:-1]) == number[-1]


@pytest.mark.parametrize("number", ["79927398710", "79927398719", "4111111111111112", "1234567812345678"])
def test_known_invalid_numbers_fail(number: str) -> None:
    assert not luhn_valid(number)


@pytest.mark.parametrize("number", ["", "7", "7992739871a", "7992 7398713", "-79927398713"])
def test_non_digit_or_too_short_input_is_invalid(number: str) -> None:
    assert not luhn_valid(number)


prefixes = st.text(alphabet="0123456789", max_size=6)


@given(prefix=prefixes, extra=st.integers(min_value=2, max_value=12))
def test_generated_numbers_are_valid_and_keep_the_format(prefix: str, extra: int) -> None:
    length = len(prefix) + extra
    number = generate_number(prefix, length)
    assert len(number) == length and number.startswith(prefix) and number.isdigit()
    assert luhn_valid(number)


@given(st.text(alphabet="0123456789", min_size=1, max_size=18))
def test_every_single_digit_error_is_detected(body: str) -> None:
    number = body + luhn_check_digit(body)
    for i, ch in enumerate(number):
        for d in "0123456789":
            if d != ch:
                assert not luhn_valid(number[:i] + d + number[i + 1:]), (number, i, d)


@given(st.text(alphabet="0123456789", min_size=1, max_size=18))
def test_adjacent_transpositions_are_detected_except_09_and_90(body: str) -> None:
    number = body + luhn_check_digit(body)
    for i in range(len(number) - 1):
        a, b = number[i], number[i + 1]
        if a == b or {a, b} == {"0", "9"}:
            continue  # the one swap Luhn cannot see: 0 and 9 both contribute 0/9 either way
        swapped = number[:i] + b + a + number[i + 2:]
        assert not luhn_valid(swapped), (number, i)


def test_the_09_transposition_is_luhns_known_blind_spot() -> None:
    body = "1090"
    number = body + luhn_check_digit(body)
    assert luhn_valid(number[:1] + "90" + number[3:])


def test_generated_numbers_are_random_not_sequential() -> None:
    numbers = [generate_number("77", 13) for _ in range(200)]
    assert len(set(numbers)) == 200
    bodies = sorted(int(n[2:-1]) for n in numbers)
    gaps = {b - a for a, b in itertools.pairwise(bodies)}
    assert gaps != {1}


# --- the series number-space budget ------------------------------------------------------


def test_random_digits_exclude_prefix_and_check_digit() -> None:
    assert random_digits("", 13) == 12
    assert random_digits("7788", 12) == 7


@pytest.mark.parametrize(("prefix", "length"), [("", 7), ("12345", 12), ("1234567890", 17), ("12", 9)])
def test_fewer_than_seven_random_digits_are_refused(prefix: str, length: int) -> None:
    problem = space_problem(prefix, length, 1)
    assert problem is not None and problem[0] == "number_space_too_small"


def test_seven_random_digits_allow_one_percent_of_the_space() -> None:
    assert space_problem("7788", 12, 100_000) is None
    problem = space_problem("7788", 12, 100_001)
    assert problem is not None and problem[0] == "series_too_large"
    assert "100000" in problem[1]


def test_earlier_series_in_the_same_space_count_against_the_budget() -> None:
    assert space_problem("7788", 12, 40_000, already=60_000) is None
    problem = space_problem("7788", 12, 40_001, already=60_000)
    assert problem is not None and problem[0] == "series_too_large"
    assert space_problem("7788", 12, 1, already=150_000) is not None


def test_long_numbers_leave_plenty_of_room() -> None:
    assert space_problem("", 19, 100_000, already=10**15) is None


def test_series_ids_sort_by_creation_time() -> None:
    from datetime import UTC, datetime

    earlier = new_series_id(datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC))
    later = new_series_id(datetime(2025, 1, 2, 3, 4, 6, tzinfo=UTC))
    assert earlier.startswith("20250102-030405-") and earlier < later
