"""The load test (bench/load_test.py) at smoke size: a few tills for a few seconds, then its report checked.

It runs as its own process, as `make bench` runs it: the load test imports chalicelib pointed at
its own stack's moto to reconcile, which this process (chalicelib set up for in-process moto by
tests/conftest.py) cannot do. The full-size figures are in bench/RESULTS.md ("Load test").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.load_test import MIX
from tests.e2e.conftest import _SCRUBBED, REPO

CLIENTS, TENANTS, CARDS = 4, 3, 2
RUN_TIMEOUT = 180


def test_a_short_load_run_has_no_error_and_every_write_reconciled(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    done = subprocess.run(
        [sys.executable, "-m", "bench.load_test", "--clients", str(CLIENTS), "--tenants", str(TENANTS),
         "--cards", str(CARDS), "--duration", "6", "--max-requests", "400", "--baseline", "30", "--json", str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    report = json.loads(out.read_text())
    print("\n" + done.stdout)

    assert (report["errors"], report["throttled"], report["ledger_problems"], report["replay_problems"]) == (
        [], 0, [], [])
    assert 0 < report["requests"] <= 400  # bounded by --max-requests
    assert report["requests"] == sum(report["kinds"].values())
    assert report["answered"] == report["requests"] + report["busy_resends"]
    assert {"purchase", "refund"} <= set(report["kinds"]) <= set(MIX)
    # A request re-sent after a 409 card_busy is timed once per answer.
    assert set(report["per_kind"]) == set(report["kinds"])
    assert all(report["per_kind"][k]["count"] >= n for k, n in report["kinds"].items())
    assert report["purchases_ok"] > 0 and report["refunds_ok"] > 0

    cards = CLIENTS * CARDS + TENANTS  # own cards, and one shared card per tenant
    assert report["cards"] == cards
    # Every own card holds its welcome bonus, and every purchase earned points (each basket earns > 0).
    assert report["ledger_entries"] >= CLIENTS * CARDS + report["purchases_ok"]
    assert report["replays"] == min(20, report["purchases_ok"])
    reconciled = report["reconciliation"]
    assert (reconciled["ok"], reconciled["cards"], reconciled["entries"], reconciled["mismatches"]) == (
        True, cards, report["ledger_entries"], [])
    assert report["baseline"]["count"] == 30 and report["baseline"]["p50"] > 0
    assert 0 < report["latency"]["p50"] <= report["latency"]["p95"] <= report["latency"]["p99"] <= \
        report["latency"]["max"]
