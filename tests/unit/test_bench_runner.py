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
