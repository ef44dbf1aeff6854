"""`make bench` (bench/run_all.py): every benchmark is in it, and RESULTS.md keeps its hand-written part."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bench import run_all

BENCH_DIR = Path(run_all.__file__).resolve().parent


def test_every_benchmark_module_is_run() -> None:
    modules = {p.stem for p in BENCH_DIR.glob("*.py")} - {"__init__", "run_all"}
    assert {b.module for b in run_all.BENCHES} == modules


def test_the_generated_section_is_replaced_and_the_rest_kept() -> None:
    hand = "# Results\n\n## Cold start\n\nhand-written figures\n"
    bench = run_all.BENCHES[0]
    first = run_all.section([(bench, True, 12.4, "ratio 1.10x")], False, datetime(2026, 11, 23, 1, 0, tzinfo=UTC))
    once = run_all.replace_section(hand, first)
    assert once.startswith(hand) and "ratio 1.10x" in once and "in 12 s" in once
    assert f"`.venv/bin/python -m bench.{bench.module}" in once and "2026-11-23 01:00 UTC" in once
    second = run_all.section([(bench, False, 3.0, "Traceback: boom")], True, datetime(2026, 11, 24, tzinfo=UTC))
    twice = run_all.replace_section(once + "\n## Added later by hand\n", second)
    assert twice.count(run_all.GENERATED_BEGIN) == 1 and "ratio 1.10x" not in twice
    assert "FAILED in 3 s" in twice and "Traceback: boom" in twice and "--quick" in twice
    assert twice.startswith(hand) and twice.rstrip().endswith("## Added later by hand")


def test_an_only_run_keeps_the_other_blocks_with_their_own_run_time() -> None:
    first_bench, second_bench = run_all.BENCHES[0], run_all.BENCHES[1]
    full = run_all.section([(first_bench, True, 10.0, "first figures"), (second_bench, True, 20.0, "second v1")],
                           False, datetime(2026, 11, 23, 1, 0, tzinfo=UTC))
    text = run_all.replace_section("# Results\n", full)
    only = run_all.section([(second_bench, True, 21.0, "second v2")], False,
                           datetime(2026, 11, 23, 5, 0, tzinfo=UTC), text)
    merged = run_all.replace_section(text, only)
    assert "first figures" in merged and "second v2" in merged and "second v1" not in merged
    first_block = merged[merged.index(f"### {first_bench.module}:"):merged.index(f"### {second_bench.module}:")]
    assert "Run 2026-11-23 01:00 UTC." in first_block and "in 10 s" in first_block
    assert "Run 2026-11-23 05:00 UTC." in merged[merged.index(f"### {second_bench.module}:"):]
    assert merged.index(f"### {first_bench.module}:") < merged.index(f"### {second_bench.module}:")
