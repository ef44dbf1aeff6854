"""Cold start: the time to import `app.py` in a fresh interpreter versus a bare `import boto3` in the same run.

A Lambda cold start pays the import of the handler module before the first
request; boto3 is the floor (every function imports it). Each sample is a new
interpreter (`python -X importtime` is not used: it slows what it measures),
alternating the two commands so machine noise hits both sides alike. Figures:
median and p90 wall time of each, the ratio app / boto3 (goal <= 1.8x), and
the heaviest top-level imports `app` pulls in, from one `-X importtime` run.

Run: .venv/bin/python -m bench.cold_start [--samples 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
       "AWS_DEFAULT_REGION": "eu-central-1", "STAGE": "bench", "PYTHONDONTWRITEBYTECODE": "0"}
COMMANDS = {"boto3": "import boto3", "app": "import app"}


def sample(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=ENV, check=True)
    return time.perf_counter() - started


def heaviest(limit: int = 12) -> list[tuple[int, str]]:
    """(cumulative microseconds, module) of the slowest imports under `import app`, from -X importtime."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", "import app"], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, check=True)
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.removeprefix("import time:").split("|")
        if len(name) - len(name.lstrip()) == 1:  # one space before a top-level import, two more per level
            rows.append((int(cumulative), name.strip()))
    return sorted(rows, reverse=True)[:limit]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=15)
    args = parser.parse_args()
    for code in COMMANDS.values():  # warm the page cache and the .pyc files (untimed)
        sample(code)
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.samples):
        for name, code in COMMANDS.items():
            times[name].append(sample(code))
    for name, values in times.items():
        values.sort()
        p90 = values[min(len(values) - 1, int(len(values) * 0.9))]
        print(f"{name:<6} median {statistics.median(values) * 1000:7.1f} ms   p90 {p90 * 1000:7.1f} ms")
    ratio = statistics.median(times["app"]) / statistics.median(times["boto3"])
    print(f"ratio app / boto3 (median): {ratio:.2f}x  (goal <= 1.8x)")
    print("heaviest top-level imports of `import app` (cumulative):")
    for micros, name in heaviest():
        print(f"  {micros / 1000:7.1f} ms  {name}")


if __name__ == "__main__":
    main()
