"""Offline batch rules: receipt time windows, processing order, originals vs duplicates, counts, chunking."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain import pos_batches as rules

NOW = datetime(2026, 11, 12, 11, 0, tzinfo=UTC)


def test_a_receipt_may_be_a_little_in_the_future_and_up_to_the_window_old() -> None:
    assert rules.time_problem(NOW + timedelta(minutes=5), NOW) is None
    assert rules.time_problem(NOW + timedelta(minutes=5, seconds=1), NOW)[0] == "receipt_in_future"
    assert rules.time_problem(NOW - timedelta(days=90), NOW) is None
    assert rules.time_problem(NOW - timedelta(days=90, seconds=1), NOW)[0] == "receipt_too_old"
    assert rules.time_problem(NOW - timedelta(days=10), NOW, window_days=7)[0] == "receipt_too_old"
    assert rules.time_problem(NOW - timedelta(days=6), NOW, window_days=7) is None


def test_order_is_by_time_then_upload_position_and_skips_invalid_receipts() -> None:
    t = [NOW, None, NOW - timedelta(hours=1), NOW, NOW - timedelta(hours=2)]
    assert rules.processing_order(t) == [4, 2, 0, 3]


def test_the_first_occurrence_of_a_new_id_is_the_original() -> None:
    keys = ["a", "b", "a", "c", "b"]
    order = [2, 0, 1, 4, 3]
    assert rules.originals(order, keys, known={"c"}) == {2, 1}


def test_counts_and_batch_state() -> None:
    assert rules.tally(["ok", "ok", "error", "pending", "duplicate"]) == {"ok": 2, "duplicate": 1, "error": 1,
                                                                          "pending": 1}
    assert [rules.batch_state(p, 3) for p in (0, 1, 3)] == ["accepted", "processing", "done"]
    assert rules.batch_state(0, 0) == "done", "a batch of invalid receipts only has nothing to run"


def test_spans_respect_bytes_and_count() -> None:
    assert rules.spans([10, 10, 10, 10], budget=25, max_items=50) == [(0, 2), (2, 4)]
    assert rules.spans([1] * 5, budget=100, max_items=2) == [(0, 2), (2, 4), (4, 5)]
    assert rules.spans([100, 1], budget=10, max_items=50) == [(0, 1), (1, 2)], "an oversize item stands alone"
    assert rules.spans([], budget=10, max_items=5) == []


receipt = st.tuples(st.sampled_from(["card-a", "card-b", "card-c"]),
                    st.one_of(st.none(), st.integers(min_value=0, max_value=20)),
                    st.sampled_from(["r1", "r2", "r3", "r4", "r5"]))


@given(st.lists(receipt, max_size=40), st.sets(st.sampled_from(["r1", "r2", "r3", "r4", "r5"])))
def test_every_receipt_gets_one_result_and_each_card_is_replayed_in_time_order(
        receipts: list[tuple[str, int | None, str]], known: set[str]) -> None:
    times = [NOW + timedelta(minutes=m) if m is not None else None for _, m, _ in receipts]
    order = rules.processing_order(times)
    valid = [i for i, t in enumerate(times) if t is not None]
    assert sorted(order) == valid, "each valid receipt runs exactly once, invalid ones never"

    for card in {c for c, _, _ in receipts}:
        mine = [i for i in order if receipts[i][0] == card]
        assert mine == sorted(mine, key=lambda i: (times[i], i)), "a card's receipts run by time, then upload order"

    keys = [k for _, _, k in receipts]
    firsts = rules.originals(order, keys, known)
    for key in set(keys[i] for i in order):
        runs = [i for i in order if keys[i] == key]
        assert firsts & set(runs) == (set() if key in known else {runs[0]}), "one original per new id"

    statuses = ["error" if t is None else ("ok" if i in firsts else "duplicate") for i, t in enumerate(times)]
    counts = rules.tally(statuses)
    assert sum(counts.values()) == len(receipts) and counts["pending"] == 0


@given(st.lists(st.integers(min_value=0, max_value=20), max_size=30), st.integers(min_value=1, max_value=7))
def test_resuming_from_any_position_runs_the_same_sequence(minutes: list[int], step: int) -> None:
    times = [NOW + timedelta(minutes=m) for m in minutes]
    whole = rules.processing_order(times)
    resumed: list[int] = []
    position = 0
    while position < len(whole):
        resumed.extend(rules.processing_order(times)[position:position + step])
        position += step
    assert resumed == whole


@given(st.lists(st.integers(min_value=1, max_value=400), max_size=60), st.integers(min_value=100, max_value=800),
       st.integers(min_value=1, max_value=10))
def test_spans_cover_every_item_once_in_order(sizes: list[int], budget: int, max_items: int) -> None:
    runs = rules.spans(sizes, budget, max_items)
    covered = [i for a, b in runs for i in range(a, b)]
    assert covered == list(range(len(sizes)))
    for a, b in runs:
        assert b - a <= max_items
        assert b - a == 1 or sum(sizes[a:b]) <= budget
